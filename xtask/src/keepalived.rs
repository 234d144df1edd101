//! keepalived 2.4.3 built from its source tarball, once, into `target/keepalived-2.4.3/`: the
//! interoperability peer for `auth_hmac` (keepalived 2.4.0+; Debian 12 ships 2.2.7, which stays
//! the default peer elsewhere). Only the VRRP side is configured (no LVS, BFD, SNMP, DBus,
//! firewall), so the build takes about a minute.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::deps;
use crate::util::{self, run};

pub const VERSION: &str = "2.4.3";

/// What `autogen.sh`, `configure` and `make` need (the tarball is a git snapshot: no
/// `configure` script of its own).
const BUILD_PACKAGES: &[&str] = &[
    "build-essential",
    "autoconf",
    "automake",
    "pkg-config",
    "libssl-dev",
    "libnl-3-dev",
    "libnl-genl-3-dev",
];

/// The tarball: `VRRP_KEEPALIVED_TARBALL`, else `../shared/keepalived-2.4.3.tar.gz` beside the
/// checkout.
fn tarball(root: &Path) -> PathBuf {
    std::env::var_os("VRRP_KEEPALIVED_TARBALL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            root.join("..")
                .join("shared")
                .join(format!("keepalived-{VERSION}.tar.gz"))
        })
}

/// Where the build lives, and the binary in it.
pub fn prefix() -> PathBuf {
    util::root()
        .join("target")
        .join(format!("keepalived-{VERSION}"))
}

pub fn binary() -> PathBuf {
    prefix().join("sbin").join("keepalived")
}

/// Builds keepalived 2.4.3 unless `target/keepalived-2.4.3/sbin/keepalived` already runs and
/// says it is 2.4.3. Returns the binary's path.
pub fn ensure() -> Result<PathBuf> {
    let bin = binary();
    if is_built(&bin) {
        return Ok(bin);
    }
    let root = util::root();
    let tar = tarball(&root);
    if !tar.is_file() {
        bail!(
            "keepalived {VERSION}'s source {} is missing (set VRRP_KEEPALIVED_TARBALL)",
            tar.display()
        );
    }
    deps::ensure_debian_packages(BUILD_PACKAGES)?;
    let prefix = prefix();
    let work = root
        .join("target")
        .join(format!("keepalived-{VERSION}-build"));
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    run(Command::new("tar")
        .arg("xzf")
        .arg(&tar)
        .arg("-C")
        .arg(&work)
        .arg("--strip-components=1"))?;
    run(Command::new("sh").arg("./autogen.sh").current_dir(&work))?;
    run(Command::new("./configure")
        .current_dir(&work)
        .arg(format!("--prefix={}", prefix.display()))
        .args([
            "--disable-lvs",
            "--disable-bfd",
            "--disable-snmp",
            "--disable-dbus",
            "--disable-iptables",
            "--disable-nftables",
            "--disable-track-process",
            "--disable-systemd",
            "--disable-libnl-dynamic",
        ]))?;
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    run(Command::new("make")
        .current_dir(&work)
        .arg(format!("-j{jobs}")))?;
    run(Command::new("make").current_dir(&work).arg("install"))?;
    if !is_built(&bin) {
        bail!(
            "{} was built but does not report version {VERSION}",
            bin.display()
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(bin)
}

fn is_built(bin: &Path) -> bool {
    // `keepalived --version` prints "Keepalived v2.4.3 (...)" on stderr.
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| {
            let all = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&all).contains(&format!("v{VERSION}"))
        })
        .unwrap_or(false)
}
