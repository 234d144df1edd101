//! Keeps the kernel from answering ARP / Neighbor Solicitations for our VIPs while XDP does.
//!
//! While XDP answers for a VIP the kernel never sees the requests. But if the agent dies, the
//! XDP program detaches with it and the kernel would answer for a VIP that is still bound:
//! keepalived's duplicate-address failure after a crash. So the kernel's own replies for our
//! VIPs are dropped by an nftables rule that outlives the process: ARP replies whose sender is
//! a VIP, and Neighbor Advertisements from a VIP (the kernel sends solicited NAs from the
//! target address). Our gratuitous ARPs and unsolicited NAs go out through AF_PACKET and XDP
//! replies through XDP_TX; neither passes these hooks.
//!
//! The set holds every VIP that XDP answers for (master or not: a backup has none bound, so it
//! costs nothing), so nothing changes on the failover path. It is emptied when the kernel must
//! answer again (XDP_TX broken) and removed on a clean exit; a crashed agent's rule stays until
//! the next start, which first unbinds the stale VIPs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use thiserror::Error;
use tokio::io::AsyncWriteExt;

/// The tables' name, in the `arp` and `ip6` families.
pub const TABLE: &str = "vrrp_xdp";

/// Where Debian (and most distributions) install nft: run by absolute path, never found
/// through `PATH`, so a `PATH` of the agent's environment cannot pick what runs as root.
pub const NFT_PATHS: [&str; 2] = ["/usr/sbin/nft", "/sbin/nft"];
/// An nft run longer than this is killed: the agent waits for it at start, on the failover
/// path's filter updates and at exit.
pub const NFT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum FilterError {
    #[error("nft not found at {} (install nftables)", .0.join(" or "))]
    Missing(Vec<String>),
    #[error("cannot run {0}: {1}")]
    Spawn(PathBuf, std::io::Error),
    #[error("{} did not finish within {} ms and was killed", .0.display(), .1.as_millis())]
    Timeout(PathBuf, Duration),
    #[error("nft rejected the rules: {0}")]
    Nft(String),
}

/// The first of `candidates` that is an executable regular file.
pub fn find_nft(candidates: &[&str]) -> Result<PathBuf, FilterError> {
    use std::os::unix::fs::PermissionsExt;
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| FilterError::Missing(candidates.iter().map(|c| c.to_string()).collect()))
}

/// The nft script that replaces our tables with ones dropping the kernel's replies for `vips`
/// (in one transaction: never a moment without the filter when it had one).
pub fn script(vips: &[IpAddr]) -> String {
    let v4: Vec<String> = vips
        .iter()
        .filter(|a| a.is_ipv4())
        .map(ToString::to_string)
        .collect();
    let v6: Vec<String> = vips
        .iter()
        .filter(|a| a.is_ipv6())
        .map(ToString::to_string)
        .collect();
    let mut s = clear_script();
    let elements = |v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", v.join(", "))
        }
    };
    s.push_str(&format!(
        "table arp {TABLE} {{\n  set vips {{ type ipv4_addr;{} }}\n  chain out {{ type filter hook output priority 0; policy accept; arp operation reply arp saddr ip @vips counter drop; }}\n}}\n",
        elements(&v4)
    ));
    s.push_str(&format!(
        "table ip6 {TABLE} {{\n  set vips {{ type ipv6_addr;{} }}\n  chain out {{ type filter hook output priority 0; policy accept; icmpv6 type nd-neighbor-advert ip6 saddr @vips counter drop; }}\n}}\n",
        elements(&v6)
    ));
    s
}

/// Removes our tables (declaring them first makes the delete succeed when they are absent).
pub fn clear_script() -> String {
    format!(
        "table arp {TABLE} {{}}\ndelete table arp {TABLE}\ntable ip6 {TABLE} {{}}\ndelete table ip6 {TABLE}\n"
    )
}

async fn nft(script: &str) -> Result<(), FilterError> {
    let prog = find_nft(&NFT_PATHS)?;
    run(&prog, &["-f", "-"], script, NFT_TIMEOUT).await
}

/// Runs `prog args` with `input` on its stdin; killed (kill_on_drop) if it outlives
/// `limit`, so a hung nft (a netlink lock, a stuck kernel) cannot stall the agent.
async fn run(prog: &Path, args: &[&str], input: &str, limit: Duration) -> Result<(), FilterError> {
    let spawn_err = |e| FilterError::Spawn(prog.to_path_buf(), e);
    let mut child = tokio::process::Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)?;
    let exchange = async {
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).await.map_err(spawn_err)?;
        }
        child.wait_with_output().await.map_err(spawn_err)
    };
    let out = tokio::time::timeout(limit, exchange)
        .await
        .map_err(|_| FilterError::Timeout(prog.to_path_buf(), limit))??;
    if out.status.success() {
        Ok(())
    } else {
        Err(FilterError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Whether both of our tables are in place (`nft list table` of each).
pub async fn present() -> Result<bool, FilterError> {
    let prog = find_nft(&NFT_PATHS)?;
    for family in ["arp", "ip6"] {
        match run(&prog, &["list", "table", family, TABLE], "", NFT_TIMEOUT).await {
            Ok(()) => {}
            Err(FilterError::Nft(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Installs (replaces) the filter for exactly `vips`.
pub async fn install(vips: &[IpAddr]) -> Result<(), FilterError> {
    nft(&script(vips)).await
}

/// Removes the filter: the kernel answers for whatever is bound.
pub async fn clear() -> Result<(), FilterError> {
    nft(&clear_script()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nft_by_absolute_path_or_a_clear_error() {
        assert_eq!(
            find_nft(&["/nonexistent/nft", "/bin/sh"]).ok(),
            Some(PathBuf::from("/bin/sh"))
        );
        // A directory or a non-executable file is not nft.
        let e = find_nft(&["/nonexistent/nft", "/etc/passwd", "/tmp"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "nft not found at /nonexistent/nft or /etc/passwd or /tmp (install nftables)"
        );
    }

    #[tokio::test]
    async fn a_hung_nft_is_killed_at_its_timeout() {
        let e = run(
            Path::new("/bin/sleep"),
            &["30"],
            "",
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, FilterError::Timeout(..)), "{e}");
        assert!(
            e.to_string()
                .starts_with("/bin/sleep did not finish within 200 ms"),
            "{e}"
        );
        let e = run(
            Path::new("/bin/sh"),
            &["-c", "echo bad rule >&2; exit 1"],
            "",
            NFT_TIMEOUT,
        )
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "nft rejected the rules: bad rule");
    }

    #[test]
    fn script_lists_each_family() {
        let vips: Vec<IpAddr> = ["192.0.2.3", "2001:db8::3", "192.0.2.4"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let s = script(&vips);
        assert!(s.starts_with(&clear_script()));
        assert!(s.contains("elements = { 192.0.2.3, 192.0.2.4 };"));
        assert!(s.contains("elements = { 2001:db8::3 };"));
        assert!(s.contains("arp operation reply arp saddr ip @vips counter drop"));
        assert!(s.contains("icmpv6 type nd-neighbor-advert ip6 saddr @vips counter drop"));
        // An empty family has a set without elements (nft rejects `elements = { }`).
        let s = script(&vips[..1]);
        assert!(s.contains("set vips { type ipv6_addr; }"));
    }
}
