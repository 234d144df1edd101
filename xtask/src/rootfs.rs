//! The root file system the systemd lab test (tests/tests/systemd.rs) boots a real systemd in:
//! Debian bookworm by `debootstrap --variant=minbase`, made once and cached in
//! `target/systemd-rootfs/`. The test never writes to it: it mounts an overlay over it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{self, run};

const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";

/// What the container needs beyond minbase: systemd as PID 1 and its bus; iproute2 for the
/// test's looks at the container's addresses; the package's dependencies (nftables; procps
/// for the unit's /bin/kill), so that `dpkg -i` of the .deb needs no network; man-db, the
/// package's recommendation, so that `systemd-analyze verify` checks the unit's
/// `Documentation=man:`; keepalived for the unit's `Conflicts=keepalived.service`.
const INCLUDE: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "nftables",
    "procps",
    "man-db",
    "keepalived",
];

/// The cached root file system, made on the first call. Its name carries the package list, so
/// a changed list makes a new one instead of reusing a stale one.
pub fn ensure() -> Result<PathBuf> {
    let include = INCLUDE.join(",");
    let base = util::root().join("target/systemd-rootfs");
    let dir = base.join(format!("{SUITE}-{:016x}", fnv1a(include.as_bytes())));
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    if !util::is_root() {
        bail!("making the systemd test's root file system needs root (debootstrap)");
    }
    // Made aside and renamed when complete: an interrupted debootstrap is never taken for a
    // cache hit.
    let tmp = base.join(format!("{SUITE}.partial"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&base)?;
    eprintln!("xtask: making the systemd test's root file system (once; a few minutes)");
    run(Command::new("debootstrap")
        .arg("--variant=minbase")
        .arg(format!("--include={include}"))
        .arg(SUITE)
        .arg(&tmp)
        .arg(MIRROR))?;
    // The downloaded packages are installed already; the cache need not keep them.
    for e in std::fs::read_dir(tmp.join("var/cache/apt/archives"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "deb") {
            std::fs::remove_file(p)?;
        }
    }
    std::fs::write(tmp.join(".complete"), &include)?;
    std::fs::rename(&tmp, &dir)?;
    Ok(dir)
}

/// FNV-1a, 64 bits: a stable name for the package list (std's hasher is not stable).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
