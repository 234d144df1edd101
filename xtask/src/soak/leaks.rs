//! The end-of-run checks: what the daemons and the lab leave behind.

use std::path::Path;

use serde_json::Value;

use super::Node;

pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// What a stopped daemon left in its namespace: processes, the agent's nft table, an XDP
/// program on the interface.
pub fn node_leftovers(lab: &vrrp_tests::Lab, node: &Node) -> Vec<String> {
    let mut v = Vec::new();
    let pids = vrrp_tests::ns_pids(&node.host.ns);
    if !pids.is_empty() {
        v.push(format!(
            "{}: processes after the daemon stopped: {:?}",
            node.host.name,
            pids.iter().map(|p| cmdline(*p)).collect::<Vec<_>>()
        ));
    }
    if node.keepalived {
        return v;
    }
    if let Ok(t) = lab.sh(&node.host.ns, "nft list tables")
        && t.contains("vrrp_xdp")
    {
        v.push(format!("{}: nft tables left: {t}", node.host.name));
    }
    if let Ok(l) = lab.ip(&node.host.ns, "-d link show dev eth0")
        && l.contains("prog/xdp")
    {
        v.push(format!(
            "{}: an XDP program is still attached: {l}",
            node.host.name
        ));
    }
    v
}

/// The ids of every BPF link on the machine (empty without bpftool).
pub fn bpf_link_ids() -> Vec<u64> {
    std::process::Command::new("bpftool")
        .args(["-j", "link", "show"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l["id"].as_u64())
        .collect()
}

/// The BPF link ids some live process holds an fd of (from `/proc/*/fdinfo`).
fn held_links() -> Vec<u64> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in rd.flatten() {
        let Ok(fds) = std::fs::read_dir(e.path().join("fdinfo")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(t) = std::fs::read_to_string(fd.path())
                && let Some(l) = t.lines().find(|l| l.starts_with("link_id:"))
                && let Some(id) = l.split_whitespace().nth(1).and_then(|s| s.parse().ok())
            {
                v.push(id);
            }
        }
    }
    v
}

/// After the lab is dropped: no namespace of ours, no process running from the lab's
/// directory, and no BPF link created during the run that outlived every process (a link
/// nobody holds is pinned or leaked; bpftool does not say which namespace an XDP link is
/// in, so links other sessions hold are told apart by their holders).
pub fn after_lab(tag: &str, dir: &Path, before: &[u64]) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(o) = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
    {
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            if l.starts_with(&format!("{tag}-")) {
                v.push(format!("namespace left: {l}"));
            }
        }
    }
    let d = dir.display().to_string();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() {
                let c = cmdline(pid);
                if c.contains(&d) {
                    v.push(format!("process left: {pid} {c}"));
                }
            }
        }
    }
    let held = held_links();
    for id in bpf_link_ids() {
        if !before.contains(&id) && !held.contains(&id) {
            v.push(format!(
                "BPF link {id} created during the run is held by no process"
            ));
        }
    }
    v
}
