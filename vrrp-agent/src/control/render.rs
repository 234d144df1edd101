//! `vrrp-agent status` output: a table for people, JSON for scripts.

use std::fmt::Write as _;

use super::{DataPlaneMode, InstanceState, InstanceStatus, Snapshot};

/// How many VIPs the instance table lists before summarizing the rest as "+N".
const VIPS_SHOWN: usize = 3;

/// The snapshot as pretty JSON (the same data `status` sends, for `status --json`).
pub fn render_json(snap: &Snapshot) -> String {
    // Only strings, numbers and string-keyed maps: serialization cannot fail.
    serde_json::to_string_pretty(snap).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// A human-readable overview: instances, per-instance counters and peers, data planes, checks.
pub fn render_table(snap: &Snapshot) -> String {
    let mut out = String::new();
    header(&mut out, snap);
    out.push('\n');
    if snap.instances.is_empty() {
        out.push_str("No VRRP instances.\n");
    } else {
        instances(&mut out, &snap.instances);
        notes(&mut out, &snap.instances);
        for inst in &snap.instances {
            out.push('\n');
            instance_detail(&mut out, inst);
        }
    }
    for dp in &snap.dataplanes {
        out.push('\n');
        let mode = match dp.mode {
            DataPlaneMode::Native => "native XDP",
            DataPlaneMode::Generic => "generic XDP",
            DataPlaneMode::RawSocket => "raw socket, no XDP",
        };
        let _ = writeln!(out, "Data plane {}: {mode}", clean(&dp.interface));
        let rows: Vec<Vec<String>> = dp
            .counters
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(k, v)| vec![clean(k), v.to_string()])
            .collect();
        if rows.is_empty() {
            out.push_str("  no packets counted\n");
        } else {
            table(&mut out, "  ", &["COUNTER", "PACKETS"], &rows);
        }
        if !dp.foreign_vrids.is_empty() {
            let list: Vec<String> = dp
                .foreign_vrids
                .iter()
                .map(|f| format!("{}/{} ({} adverts)", f.vrid, f.family, f.adverts))
                .collect();
            let _ = writeln!(out, "  foreign VRIDs: {}", list.join(", "));
        }
        let _ = write!(
            out,
            "  ARP replies {}, NS replies {}",
            dp.arp_replies, dp.ns_replies
        );
        if let Some(e) = dp.xdp_tx_errors {
            let _ = write!(out, ", XDP_TX errors {e}");
        }
        out.push('\n');
    }
    if !snap.checks.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = snap
            .checks
            .iter()
            .map(|c| {
                vec![
                    clean(&c.name),
                    clean(&c.kind),
                    if c.up { "up" } else { "DOWN" }.to_owned(),
                    c.runs.to_string(),
                    c.failures.to_string(),
                    c.last_duration_ms
                        .map_or_else(|| "-".to_owned(), format_duration_ms),
                ]
            })
            .collect();
        table(
            &mut out,
            "",
            &[
                "CHECK",
                "KIND",
                "STATUS",
                "RUNS",
                "FAILURES",
                "LAST RUN TOOK",
            ],
            &rows,
        );
    }
    out
}

fn header(out: &mut String, snap: &Snapshot) {
    let _ = write!(out, "vrrp-agent {}  pid {}", clean(&snap.version), snap.pid);
    if snap.generated_at_unix > 0.0 && snap.generated_at_unix >= snap.started_at_unix {
        // Float seconds to whole milliseconds; the cast saturates and the value is >= 0.
        let up_ms = ((snap.generated_at_unix - snap.started_at_unix) * 1000.0) as u64;
        let _ = write!(out, "  up {}", format_duration_ms(up_ms));
    }
    if let Some(id) = &snap.router_id {
        let _ = write!(out, "  router_id {}", clean(id));
    }
    if let Some(cfg) = &snap.config_file {
        let _ = write!(out, "  config {}", clean(cfg));
    }
    if !snap.scheduling.is_empty() {
        let _ = write!(out, "  {}", clean(&snap.scheduling));
    }
    out.push('\n');
}

fn instances(out: &mut String, list: &[InstanceStatus]) {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            let master = match (&i.master, i.master_priority) {
                (Some(m), Some(p)) => format!("{} ({p})", clean(m)),
                (Some(m), None) => clean(m),
                (None, _) => "-".to_owned(),
            };
            let mut interval = format_duration_ms(i.advert_interval_ms);
            if let Some(learned) = i.master_advert_interval_ms
                && learned != i.advert_interval_ms
            {
                let _ = write!(interval, " (master {})", format_duration_ms(learned));
            }
            let mut vips: Vec<String> = i.vips.iter().take(VIPS_SHOWN).map(|v| clean(v)).collect();
            if i.vips.len() > VIPS_SHOWN {
                vips.push(format!("+{}", i.vips.len() - VIPS_SHOWN));
            }
            let last = i.last_transition.as_ref().map_or_else(
                || "-".to_owned(),
                |t| {
                    format!(
                        "{}->{} {}, {} ago",
                        t.from,
                        t.to,
                        clean(&t.reason),
                        format_duration_ms(t.ago_ms)
                    )
                },
            );
            let mut state = i.state.to_string();
            if i.split_brain_alarm {
                state.push('!');
            }
            vec![
                clean(&i.name),
                clean(&i.interface),
                i.vrid.to_string(),
                format!("v{} {}", i.version, i.family),
                state,
                format!("{}/{}", i.priority_base, i.priority_effective),
                master,
                interval,
                if vips.is_empty() {
                    "-".to_owned()
                } else {
                    vips.join(",")
                },
                last,
            ]
        })
        .collect();
    table(
        out,
        "",
        &[
            "INSTANCE",
            "IFACE",
            "VRID",
            "PROTO",
            "STATE",
            "PRIO B/E",
            "MASTER (PRIO)",
            "INTERVAL",
            "VIPS",
            "LAST TRANSITION",
        ],
        &rows,
    );
}

/// Things an operator must not miss, below the table.
fn notes(out: &mut String, list: &[InstanceStatus]) {
    for i in list {
        if i.split_brain_alarm {
            let _ = writeln!(
                out,
                "! {}: split brain suspected: another router answers for our VIPs",
                clean(&i.name)
            );
        }
        if i.state == InstanceState::Fault && !i.fault_reasons.is_empty() {
            let reasons: Vec<String> = i.fault_reasons.iter().map(|r| clean(r)).collect();
            let _ = writeln!(out, "! {}: FAULT: {}", clean(&i.name), reasons.join(", "));
        }
    }
}

fn instance_detail(out: &mut String, i: &InstanceStatus) {
    let _ = write!(
        out,
        "{} ({} VRID {}",
        clean(&i.name),
        clean(&i.interface),
        i.vrid
    );
    if let Some(g) = &i.sync_group {
        let _ = write!(out, ", sync group {}", clean(g));
    }
    let _ = writeln!(
        out,
        "): adverts sent {}, received {}; priority 0 sent {}, received {}",
        i.adverts_sent, i.adverts_received, i.priority_zero_sent, i.priority_zero_received
    );
    let counts = |m: &std::collections::BTreeMap<String, u64>| {
        m.iter()
            .filter(|(_, v)| **v != 0)
            .map(|(k, v)| format!("{} {v}", clean(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let transitions = counts(&i.transitions);
    if !transitions.is_empty() {
        let _ = writeln!(out, "  transitions: {transitions}");
    }
    let drops = counts(&i.drops);
    if !drops.is_empty() {
        let _ = writeln!(out, "  dropped adverts: {drops}");
    }
    if i.peers.is_empty() {
        out.push_str("  no peers heard\n");
    } else {
        let rows: Vec<Vec<String>> = i
            .peers
            .iter()
            .map(|p| {
                vec![
                    clean(&p.addr),
                    p.priority.to_string(),
                    format_duration_ms(p.interval_ms),
                    format!("{} ago", format_duration_ms(p.last_seen_ago_ms)),
                ]
            })
            .collect();
        table(out, "  ", &["PEER", "PRIO", "INTERVAL", "LAST SEEN"], &rows);
    }
    if !i.heartbeat_paths.is_empty() {
        let rows: Vec<Vec<String>> = i
            .heartbeat_paths
            .iter()
            .flat_map(|h| {
                h.peers.iter().map(move |p| {
                    vec![
                        clean(&h.interface),
                        clean(&h.source),
                        clean(&p.addr),
                        p.priority.map_or_else(|| "-".into(), |v| v.to_string()),
                        p.last_heard_ago_ms.map_or_else(
                            || "never".into(),
                            |ms| format!("{} ago", format_duration_ms(ms)),
                        ),
                        h.adverts_sent.to_string(),
                    ]
                })
            })
            .collect();
        table(
            out,
            "  ",
            &["HEARTBEAT", "SOURCE", "PEER", "PRIO", "LAST HEARD", "SENT"],
            &rows,
        );
    }
}

/// Left-aligned columns two spaces apart, without trailing blanks.
fn table(out: &mut String, indent: &str, headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::from(indent);
        for (cell, w) in cells.zip(&widths) {
            let _ = write!(s, "{cell:<w$}  ");
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

/// Control characters from a name or reason must not reach the terminal.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// "850ms", "1s", "12.3s", "5m12s", "3h04m", "2d03h".
pub fn format_duration_ms(ms: u64) -> String {
    const S: u64 = 1000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;
    match ms {
        _ if ms < S => format!("{ms}ms"),
        _ if ms < M && ms % S < 100 => format!("{}s", ms / S),
        _ if ms < M => format!("{}.{}s", ms / S, ms % S / 100),
        _ if ms < H => format!("{}m{:02}s", ms / M, ms % M / S),
        _ if ms < D => format!("{}h{:02}m", ms / H, ms % H / M),
        _ => format!("{}d{:02}h", ms / D, ms % D / H),
    }
}
