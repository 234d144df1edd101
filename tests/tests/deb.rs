//! The Debian package (`cargo xtask deb`) on this machine: `apt-get install ./….deb`, the
//! installed agent and its man page, then `apt-get remove` (only the conffile stays) and
//! `apt-get purge` (nothing stays). Root; `cargo xtask test` builds the package and passes its
//! path in VRRP_DEB. A guard purges the package if the test fails half-way, so the machine is
//! left as it was.
#![cfg(feature = "lab")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use vrrp_tests::require_lab;

const PKG: &str = "vrrp-agent";
const CONFFILE: &str = "/etc/vrrp-agent/keepalived.conf";

fn sh(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

fn ok(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let (good, out) = sh(cmd);
    assert!(good, "{shown} failed:\n{out}");
    out
}

/// apt-get, waiting for the dpkg lock rather than failing when another install holds it.
fn apt(args: &[&str]) -> Command {
    let mut c = Command::new("apt-get");
    c.args(["-y", "-q", "-o", "DPkg::Lock::Timeout=600"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// dpkg's status of the package, or None when dpkg knows nothing of it.
fn status() -> Option<String> {
    let (good, out) = sh(Command::new("dpkg-query").args(["-W", "-f=${Status}", PKG]));
    let out = out.trim().to_string();
    (good && !out.is_empty() && !out.ends_with("not-installed")).then_some(out)
}

/// Purges the package on drop if it is still known to dpkg (a failed assertion half-way).
struct Purge;
impl Drop for Purge {
    fn drop(&mut self) {
        if status().is_some() {
            let _ = apt(&["purge", PKG]).status();
        }
    }
}

/// Offset of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let head = &needle[..needle.len().min(64)];
    hay.windows(head.len())
        .enumerate()
        .filter(|(_, w)| *w == head)
        .map(|(i, _)| i)
        .find(|&i| hay[i..].starts_with(needle))
}

#[test]
fn deb_package_installs_removes_and_purges() {
    require_lab();
    let deb = PathBuf::from(std::env::var_os("VRRP_DEB").expect(
        "VRRP_DEB is not set: `cargo xtask test` builds the package (cargo xtask deb) and sets it",
    ));
    let name = deb.file_name().unwrap().to_string_lossy().into_owned();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(name, format!("{PKG}_{version}_amd64.deb"));
    // Never take over (and then purge) an installation this test did not make.
    assert_eq!(
        status(),
        None,
        "{PKG} is already installed on this machine; purge it (apt-get purge {PKG}) to run this test"
    );

    // What the archive holds, before anything is installed.
    let fields = ok(Command::new("dpkg-deb").args(["-f"]).arg(&deb));
    let depends = fields
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .unwrap_or_else(|| panic!("no Depends in\n{fields}"));
    // nftables for the kernel ARP filter, procps for the unit's /bin/kill (ExecReload).
    for need in ["nftables", "procps"] {
        assert!(
            depends.split(',').any(|d| d.trim() == need),
            "{need} not in {depends}"
        );
    }
    let conffiles = ok(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("conffiles"));
    assert_eq!(conffiles.trim(), CONFFILE);
    let listing = ok(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let files: BTreeSet<String> = listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches('.').to_string())
        .collect();
    for want in [
        "/usr/sbin/vrrp-agent",
        "/lib/systemd/system/vrrp-agent.service",
        "/usr/share/man/man8/vrrp-agent.8.gz",
        "/usr/share/bash-completion/completions/vrrp-agent",
        "/usr/share/zsh/vendor-completions/_vrrp-agent",
        "/usr/share/fish/vendor_completions.d/vrrp-agent.fish",
        CONFFILE,
        "/usr/share/doc/vrrp-agent/copyright",
    ] {
        assert!(
            files.contains(want),
            "{want} not in the package:\n{listing}"
        );
    }

    let _purge = Purge;
    ok(apt(&["install", "--no-install-recommends"]).arg(deb.canonicalize().unwrap()));
    assert_eq!(status().as_deref(), Some("install ok installed"));
    for f in &files {
        assert!(Path::new(f).exists(), "{f} not installed");
    }

    let out = ok(Command::new("/usr/sbin/vrrp-agent").arg("--version"));
    assert_eq!(out.trim(), format!("vrrp-agent {version}"));
    // The installed agent is the XDP build: the object xtask built is embedded in it.
    let bin = std::fs::read("/usr/sbin/vrrp-agent").expect("read the installed agent");
    let obj = std::fs::read(vrrp_tests::ebpf_object()).expect("read the XDP object");
    assert!(
        find(&bin, &obj).is_some(),
        "the packaged agent does not embed the XDP object"
    );
    // The example conffile is one the agent accepts, as the unit's ExecStartPre runs it.
    let out = ok(Command::new("/usr/sbin/vrrp-agent").args(["--check", "-f", CONFFILE]));
    assert!(out.contains("configuration OK: 1 instance(s)"), "{out}");
    let out = ok(Command::new("man").args(["-w", PKG]));
    assert_eq!(out.trim(), "/usr/share/man/man8/vrrp-agent.8.gz");
    let page = ok(Command::new("man")
        .args(["-P", "cat", "8", PKG])
        .env("MANWIDTH", "200"));
    for want in [
        "CONFIGURATION KEYWORDS",
        "vrrp_xdp_heartbeat",
        "vrrp_xdp_check",
        "--config",
        "handover",
    ] {
        assert!(page.contains(want), "{want} not in the man page:\n{page}");
    }
    let bash = std::fs::read_to_string("/usr/share/bash-completion/completions/vrrp-agent")
        .expect("bash completion");
    assert!(bash.contains("--xdp-mode"), "{bash}");

    // Remove: of the package's files only the conffile stays, and dpkg says so.
    ok(&mut apt(&["remove", PKG]));
    assert_eq!(status().as_deref(), Some("deinstall ok config-files"));
    let left: Vec<&String> = files.iter().filter(|f| Path::new(f).exists()).collect();
    assert_eq!(left, vec![CONFFILE], "left after apt-get remove");
    let listed = ok(Command::new("dpkg").args(["-L", PKG]));
    let listed_files: Vec<&str> = listed.lines().filter(|l| !Path::new(l).is_dir()).collect();
    assert_eq!(
        listed_files,
        vec![CONFFILE],
        "dpkg -L after remove:\n{listed}"
    );

    // Purge: nothing stays, not even the package's own directories.
    ok(&mut apt(&["purge", PKG]));
    assert_eq!(status(), None);
    let left: Vec<&String> = files.iter().filter(|f| Path::new(f).exists()).collect();
    assert!(left.is_empty(), "left after apt-get purge: {left:?}");
    for dir in ["/etc/vrrp-agent", "/usr/share/doc/vrrp-agent"] {
        assert!(!Path::new(dir).exists(), "{dir} left after purge");
    }
}
