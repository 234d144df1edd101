//! Debian packages the lab, the demo and the tests use, installed when missing.

use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{self, run};

/// Packages for the test suite: a real keepalived peer, captures with a VRRP dissector,
/// ARP probes, nftables for partitions, ethtool for XDP TX counters, man-db for the Debian
/// package test's `man -w`, prometheus for promtool and the alert-rule lab test, debootstrap
/// for the root file system the systemd lab test boots a real systemd in.
pub const TEST_PACKAGES: &[&str] = &[
    "iproute2",
    "keepalived",
    "tshark",
    "tcpdump",
    "iputils-arping",
    "iputils-ping",
    "ethtool",
    "nftables",
    "bpftool",
    "man-db",
    "prometheus",
    "debootstrap",
];

/// Packages for the bench: the baseline daemon, the kernel ARP filter, the lab's ARP checks.
/// Not the capture tools: a fresh machine's bench should not wait for tshark's download.
pub const BENCH_PACKAGES: &[&str] = &["iproute2", "keepalived", "iputils-arping", "nftables"];

/// Packages for the demo.
pub const DEMO_PACKAGES: &[&str] = &["iproute2"];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

pub fn ensure_debian_packages(pkgs: &[&str]) -> Result<()> {
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !util::is_root() {
        bail!(
            "missing Debian packages: {}; run as root or `apt-get install {}`",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
