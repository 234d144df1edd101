//! Building the [`Snapshot`] from the node's read-only view and the driver's I/O state.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::info;

use super::{
    CheckStatus, DataPlaneMode, DataPlaneStatus, ForeignVrid, HeartbeatPathInfo, HeartbeatPeerInfo,
    InstanceStatus, IpFamily, PeerInfo, Snapshot, TransitionInfo,
};
use crate::io::xdp::{self, DataPlane};
use crate::proto::node::Node;
use crate::proto::vr::State;

/// An interface as the driver holds it.
pub struct IfaceIo<'a> {
    pub name: &'a str,
    pub index: u32,
    pub dataplane: Option<&'a DataPlane>,
    pub tx_errors: Option<u64>,
    pub foreign: &'a [(bool, u8, u64)],
}

pub struct Sources<'a> {
    pub node: &'a Node,
    pub res_ifaces: Vec<IfaceIo<'a>>,
    pub io: &'a crate::driver::IoStats,
    pub checks: Vec<crate::track::CheckStatus>,
    pub router_id: Option<String>,
    pub config_file: Option<String>,
    pub scheduling: String,
    pub started_unix: f64,
    pub now: Instant,
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

/// The status label of a checksum form.
fn form_label(f: crate::proto::codec::ChecksumForm) -> &'static str {
    match f {
        crate::proto::codec::ChecksumForm::WithPseudoHeader => "pseudo_header",
        crate::proto::codec::ChecksumForm::WithoutPseudoHeader => "rfc9568",
    }
}

pub fn build(s: &Sources<'_>) -> Snapshot {
    let t = s.now;
    let mut snap = Snapshot::new(std::process::id(), s.started_unix);
    snap.generated_at_unix = super::unix_now();
    snap.router_id = s.router_id.clone();
    snap.config_file = s.config_file.clone();
    snap.scheduling = s.scheduling.clone();
    snap.kernel_filter_restored = s.io.filter_restored;
    for (id, inst) in s.node.instances() {
        let st = inst.vr.status(t);
        let c = &st.counters;
        let mut drops: BTreeMap<String, u64> = BTreeMap::new();
        for (k, v) in [
            ("vrid_mismatch", c.dropped_vrid),
            ("version_mismatch", c.dropped_version),
            ("family_mismatch", c.dropped_family),
            ("auth_mismatch", c.dropped_auth),
            ("interval_mismatch", c.dropped_interval),
            ("owner_ignores_adverts", c.dropped_owner),
            ("unknown_unicast_source", c.dropped_unknown_unicast_src),
            ("bad_ttl", c.dropped_ttl),
            ("own_address", c.dropped_own_address),
            ("address_list_mismatch", c.dropped_address_list),
            ("v2_from_v3_sender", c.dropped_v2_from_v3),
            (
                "first_address_not_link_local",
                c.dropped_first_not_link_local,
            ),
        ] {
            if v > 0 {
                drops.insert(k.to_string(), v);
            }
        }
        // Malformed adverts are counted once per interface and family (their VRID may be
        // unreadable); each instance there shows that count.
        if let Some(errors) = s
            .node
            .decode_errors
            .get(&(inst.spec.ifindex, inst.spec.vr.family))
        {
            for (k, v) in errors {
                *drops.entry((*k).to_string()).or_default() += v;
            }
        }
        let spec = &inst.spec;
        snap.instances.push(InstanceStatus {
            name: spec.name.clone(),
            interface: spec.iface.clone(),
            vrid: spec.vr.vrid.get(),
            family: spec.vr.family.into(),
            version: spec.vr.version.number(),
            state: st.state.into(),
            priority_base: st.base_priority.get(),
            priority_effective: st.effective_priority.get(),
            master: match st.state {
                State::Master => Some(spec.src.to_string()),
                _ => st.master.map(|m| m.addr.to_string()),
            },
            master_priority: match st.state {
                State::Master => Some(st.effective_priority.get()),
                _ => st.master.map(|m| m.priority.get()),
            },
            advert_interval_ms: u64::from(spec.vr.interval.get()) * 10,
            master_advert_interval_ms: st.master.map(|m| u64::from(m.interval.get()) * 10),
            vips: spec
                .vips
                .iter()
                .map(|v| format!("{}/{}", v.spec.addr, v.spec.prefix_len))
                .collect(),
            last_transition: inst.vr.last_transition().map(|r| TransitionInfo {
                from: r.from.into(),
                to: r.to.into(),
                reason: r.reason.to_string(),
                ago_ms: ms(t.saturating_duration_since(r.at)),
            }),
            transitions: inst.transitions.clone(),
            split_brain_alarm: inst.split_brain.active(),
            split_brain_episodes: inst.split_brain.episodes,
            vip_conflicts: inst.conflicts,
            vips_restored: inst.vips_restored,
            vip_removals_held: inst.restore.held,
            checksum_form_mismatches: inst.form_mismatches,
            checksum_auto: spec.form_auto,
            // Only VRRPv3 over IPv4 has a choice of forms.
            checksum_forms_sent: {
                let mut forms: Vec<String> = Vec::new();
                let v3v4 = (spec.vr.version, spec.vr.family)
                    == (crate::proto::Version::V3, crate::proto::Family::V4);
                for (_, f) in inst.form_plan().into_iter().filter(|_| v3v4) {
                    let f = form_label(f).to_string();
                    if !forms.contains(&f) {
                        forms.push(f);
                    }
                }
                forms
            },
            timer_wakeups: inst.timer_wakeups,
            kernel_watch: inst.cover.is_some(),
            master_silent_reports: inst.silent_reports,
            heartbeat_restarts: c.heartbeat_restarts,
            heartbeat_paths: spec
                .heartbeats
                .iter()
                .zip(&inst.paths)
                .enumerate()
                .map(|(pi, (h, p))| {
                    let (sent, errors, _) =
                        s.io.heartbeat.get(&(id, pi)).copied().unwrap_or_default();
                    HeartbeatPathInfo {
                        interface: h.iface.clone(),
                        source: h.src.to_string(),
                        adverts_sent: sent,
                        send_errors: errors,
                        decode_errors: p.decode_errors,
                        peers: h
                            .peers
                            .iter()
                            .map(|a| {
                                let heard = p.heard.get(a);
                                HeartbeatPeerInfo {
                                    addr: a.to_string(),
                                    adverts_received: heard.map_or(0, |x| x.adverts),
                                    priority: heard.map(|x| x.priority.get()),
                                    last_heard_ago_ms: heard
                                        .map(|x| ms(t.saturating_duration_since(x.last))),
                                }
                            })
                            .collect(),
                    }
                })
                .collect(),
            adverts_sent: c.adverts_tx,
            adverts_received: c.adverts_rx,
            priority_zero_sent: c.priority_zero_tx,
            priority_zero_received: c.priority_zero_rx,
            drops,
            peers: inst
                .peers
                .iter()
                .map(|(a, p)| PeerInfo {
                    addr: a.to_string(),
                    priority: p.priority.get(),
                    interval_ms: u64::from(p.interval.get()) * 10,
                    last_seen_ago_ms: ms(t.saturating_duration_since(p.last_seen)),
                    checksum_form: p.form.map(|f| form_label(f).to_string()),
                })
                .collect(),
            peers_evicted: inst.peers.evictions(),
            ..Default::default()
        });
    }
    for iface in &s.res_ifaces {
        let mut d = DataPlaneStatus {
            interface: iface.name.to_string(),
            mode: DataPlaneMode::RawSocket,
            ..Default::default()
        };
        for family in [crate::proto::Family::V4, crate::proto::Family::V6] {
            if let Some(errors) = s.node.decode_errors.get(&(iface.index, family)) {
                for (k, v) in errors {
                    *d.decode_errors.entry((*k).to_string()).or_default() += v;
                }
            }
        }
        if let Some(dp) = iface.dataplane {
            d.mode = match dp.mode() {
                xdp::AttachMode::Native => DataPlaneMode::Native,
                xdp::AttachMode::Generic => DataPlaneMode::Generic,
            };
            if let Ok(c) = dp.counters() {
                for (i, v) in c.iter().enumerate() {
                    d.counters
                        .insert(vrrp_common::event::counter::NAMES[i].to_string(), *v);
                }
                d.xdp_tx_errors = iface.tx_errors;
                d.arp_replies = c[vrrp_common::event::counter::ARP_REPLIED as usize];
                d.ns_replies = c[vrrp_common::event::counter::NS_REPLIED as usize];
            }
            d.liveness_errors = s.io.liveness.count;
            d.foreign_vrids = iface
                .foreign
                .iter()
                .map(|&(ipv6, vrid, n)| ForeignVrid {
                    vrid,
                    family: if ipv6 { IpFamily::Ipv6 } else { IpFamily::Ipv4 },
                    adverts: n,
                })
                .collect();
        }
        snap.dataplanes.push(d);
    }
    for c in &s.checks {
        snap.checks.push(CheckStatus {
            name: c.name.clone(),
            kind: format!("{:?}", c.kind).to_lowercase(),
            up: c.up,
            runs: c.runs,
            failures: c.failures,
            last_duration_ms: c.last_duration.map(ms),
        });
    }
    snap
}

/// SIGUSR1: one log line per instance and per data plane (keepalived logs its data too).
pub fn log_status(snap: &Snapshot) {
    for i in &snap.instances {
        info!(
            instance = %i.name,
            state = i.state.as_str(),
            priority = i.priority_effective,
            master = ?i.master,
            "status"
        );
    }
    for d in &snap.dataplanes {
        if d.mode == DataPlaneMode::RawSocket {
            continue;
        }
        let nz: Vec<String> = d
            .counters
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        info!(iface = %d.interface, mode = d.mode.as_str(), counters = %nz.join(" "), "data plane");
    }
}
