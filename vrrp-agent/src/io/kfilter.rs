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
use std::process::Stdio;

use thiserror::Error;
use tokio::io::AsyncWriteExt;

/// The tables' name, in the `arp` and `ip6` families.
pub const TABLE: &str = "vrrp_xdp";

#[derive(Debug, Error)]
pub enum FilterError {
    #[error("cannot run nft (install nftables): {0}")]
    Spawn(std::io::Error),
    #[error("nft rejected the rules: {0}")]
    Nft(String),
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
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(FilterError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(FilterError::Spawn)?;
    }
    let out = child.wait_with_output().await.map_err(FilterError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FilterError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
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
