//! Node-level tests: decisions above one router, without sockets or root.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::proto::codec::DecodeError;
use crate::proto::vr::InitialState;
use crate::proto::{Centisecs, Vrid};

const IF: u32 = 7;

use crate::proto::clock::test_epoch as clock;

pub(crate) fn spec(name: &str, vrid: u8, vip: &str) -> InstanceSpec {
    let vip: IpAddr = vip.parse().unwrap();
    let src: IpAddr = "192.0.2.1".parse().unwrap();
    let mut vr =
        VrConfig::keepalived_defaults(Vrid::new(vrid).unwrap(), Family::V4, src, vec![vip]);
    vr.version = Version::V3;
    vr.interval = Centisecs(100);
    InstanceSpec {
        name: name.into(),
        iface: "eth0".into(),
        ifindex: IF,
        vr,
        src,
        vips: vec![VipBinding {
            ifindex: IF,
            spec: VipSpec::new(vip, 24),
        }],
        destinations: vec!["224.0.0.18".parse().unwrap()],
        ttl: 255,
        heartbeats: Vec::new(),
        form: ChecksumForm::WithPseudoHeader,
        form_auto: false,
        vmac: None,
        vmac_xmit_base: false,
        garp_repeat: 5,
        garp_refresh_repeat: 1,
        tracks: false,
    }
}

/// VRID 51's advert at `prio`, VIP 192.0.2.3.
fn advert(prio: u8) -> Advert {
    Advert {
        version: Version::V3,
        vrid: Vrid::new(51).unwrap(),
        priority: Priority(prio),
        interval: Centisecs(100),
        addresses: vec!["192.0.2.3".parse().unwrap()],
        auth: Auth::None,
    }
}

fn iface(xdp: bool) -> IfaceSpec {
    IfaceSpec {
        index: IF,
        name: "eth0".into(),
        mac: [2, 0, 0, 0, 0, 1],
        up: true,
        xdp,
    }
}

fn cfg(instances: Vec<InstanceSpec>, groups: &[(&str, &[&str])]) -> NodeConfig {
    NodeConfig {
        ifaces: vec![iface(true)],
        instances,
        sync_groups: groups
            .iter()
            .map(|(g, m)| (g.to_string(), m.iter().map(|s| s.to_string()).collect()))
            .collect(),
        garp_interval: Duration::ZERO,
        gna_interval: Duration::ZERO,
    }
}

fn master(mut s: InstanceSpec) -> InstanceSpec {
    s.vr.priority = Priority(200);
    s.vr.initial = InitialState::Master;
    s
}

fn drain(n: &mut Node) -> Vec<Action> {
    std::iter::from_fn(|| n.poll_action()).collect()
}

/// Fires every timer up to `until`, answering `Watch` with no cover.
fn run_until(n: &mut Node, t0: Instant, until: Duration) -> Vec<Action> {
    let mut out = Vec::new();
    while let Some(t) = n.poll_timeout().filter(|t| *t <= t0 + until) {
        n.handle(
            t,
            NodeInput::Timer {
                early: None,
                slots: Vec::new(),
            },
        );
        out.extend(drain(n));
    }
    out
}

fn state(n: &Node, name: &str) -> State {
    n.instances()
        .find(|(_, i)| i.spec.name == name)
        .map(|(_, i)| i.vr.state())
        .unwrap()
}

fn started(c: NodeConfig, t0: Instant) -> (Node, Vec<Action>) {
    let mut n = Node::new(c, t0).unwrap();
    n.handle(t0, NodeInput::Prepare);
    n.handle(t0, NodeInput::Start);
    let mut acts = drain(&mut n);
    acts.extend(run_until(&mut n, t0, Duration::from_secs(5)));
    (n, acts)
}

#[test]
fn reload_restarting_a_sync_member_sends_no_false_group_stop() {
    // Defect: the reload swapped the whole instance vector for the restarted member alone, so
    // `group_notify` saw one member, Stopped, and notified the group STOP.
    let t0 = clock();
    let a = master(spec("VI_1", 51, "192.0.2.3"));
    let b = master(spec("VI_2", 52, "192.0.2.4"));
    let groups: &[(&str, &[&str])] = &[("G", &["VI_1", "VI_2"])];
    let (mut n, _) = started(cfg(vec![a.clone(), b.clone()], groups), t0);
    assert_eq!(state(&n, "VI_1"), State::Master);
    assert_eq!(state(&n, "VI_2"), State::Master);
    let mut a2 = a.clone();
    a2.vr.vrid = Vrid::new(61).unwrap();
    let t1 = t0 + Duration::from_secs(10);
    let plan = n.reload(cfg(vec![a2, b], groups), t1).unwrap();
    assert_eq!(plan.instances[0].1, reload::Change::Restart);
    let acts = drain(&mut n);
    let group_notes: Vec<_> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Notify(n) if n.group => Some(n.state),
            _ => None,
        })
        .collect();
    assert!(
        !group_notes.contains(&State::Stopped),
        "group notified {group_notes:?}: {acts:#?}"
    );
}

#[test]
fn a_refused_reload_changes_nothing_and_asks_for_nothing() {
    let t0 = clock();
    let (mut n, _) = started(cfg(vec![master(spec("VI_1", 51, "192.0.2.3"))], &[]), t0);
    let mut bad = spec("VI_1", 51, "192.0.2.3");
    bad.vr.interval = Centisecs(0);
    assert!(
        n.reload(cfg(vec![bad], &[]), t0 + Duration::from_secs(6))
            .is_err()
    );
    assert!(drain(&mut n).is_empty());
    assert_eq!(state(&n, "VI_1"), State::Master);
}

/// Unicast across routers: `unicast_ttl` is the TTL of the adverts and of the guardian's
/// priority 0, and each peer's `min_ttl`/`max_ttl` reach its XDP slot.
#[test]
fn unicast_ttl_and_peer_limits_reach_the_sends_and_the_data_plane() {
    use vrrp_common::maps::PeerLimits;
    let t0 = clock();
    let (near, far): (IpAddr, IpAddr) = (
        "198.51.100.2".parse().unwrap(),
        "198.51.100.3".parse().unwrap(),
    );
    let mut s = master(spec("VI_1", 51, "192.0.2.3"));
    s.destinations = vec![near, far];
    s.vr.unicast_peers = vec![near, far];
    s.vr.peer_ttl = vec![(near, crate::proto::vr::TtlRange { min: 255, max: 255 })];
    s.ttl = 64;
    let (mut n, acts) = started(cfg(vec![s], &[]), t0);
    assert_eq!(state(&n, "VI_1"), State::Master);
    let slot = acts
        .iter()
        .find_map(|a| match a {
            Action::Dataplane(DpOp::SetSlot {
                ipv6: false,
                vrid: 51,
                slot,
                ..
            }) => Some(slot.clone()),
            _ => None,
        })
        .expect("slot 51 written");
    assert_eq!(
        slot.peers,
        [(near, PeerLimits::new(255, 255)), (far, PeerLimits::ANY)]
    );
    let armed = acts
        .iter()
        .find_map(|a| match a {
            Action::GuardianArm(a) => Some(a.clone()),
            _ => None,
        })
        .expect("guardian armed");
    assert_eq!((armed.ttl, armed.release.len()), (64, 2));
    let id = n.instances().next().map(|(id, _)| id).unwrap();
    let out = n.adverts(id, Priority(200)).expect("adverts");
    assert_eq!(out.ttl, 64);
    let dsts: Vec<IpAddr> = out.adverts.iter().map(|a| a.0).collect();
    assert_eq!(dsts, [near, far]);
}

/// Heartbeat paths are links: a unicast advert arriving there with a TTL below 255 is
/// refused like a malformed one.
#[test]
fn a_unicast_advert_with_a_low_ttl_is_refused_on_a_heartbeat_path_only() {
    let t0 = clock();
    let peer: IpAddr = "198.51.100.2".parse().unwrap();
    let mut s = spec("VI_1", 51, "192.0.2.3");
    s.vr.unicast_peers = vec!["192.0.2.9".parse().unwrap()];
    s.heartbeats = vec![HeartbeatSpec {
        iface: "hb0".into(),
        ifindex: 9,
        src: "198.51.100.1".parse().unwrap(),
        peers: vec![peer],
    }];
    let mut c = cfg(vec![s], &[]);
    c.ifaces.push(IfaceSpec {
        index: 9,
        name: "hb0".into(),
        mac: [2, 0, 0, 0, 0, 9],
        up: true,
        xdp: false,
    });
    let (mut n, _) = started(c, t0);
    let rx = |src: IpAddr, ifindex: u32, ttl: u8| NodeInput::Advert {
        ifindex,
        family: Family::V4,
        src,
        result: Ok(advert(200)),
        form: None,
        ttl: Some(ttl),
    };
    n.handle(t0 + Duration::from_secs(1), rx(peer, 9, 64));
    let inst = n.instances().next().map(|(_, i)| i).unwrap();
    assert_eq!(inst.paths[0].decode_errors, 1);
    // On the instance's own interface a unicast peer may be routed hops away.
    n.handle(
        t0 + Duration::from_secs(1),
        rx("192.0.2.9".parse().unwrap(), IF, 64),
    );
    let inst = n.instances().next().map(|(_, i)| i).unwrap();
    assert_eq!(inst.vr.counters().adverts_rx, 1);
    assert_eq!(inst.vr.counters().dropped_ttl, 0);
}

#[test]
fn a_malformed_advert_is_counted_once_per_interface() {
    // Defect: counted once per instance on the interface (x255 at scale).
    let t0 = clock();
    let insts = (1..=5)
        .map(|v| spec(&format!("VI_{v}"), v, &format!("192.0.2.{}", 10 + v)))
        .collect();
    let (mut n, _) = started(cfg(insts, &[]), t0);
    n.handle(
        t0,
        NodeInput::Advert {
            ttl: None,
            ifindex: IF,
            form: None,
            family: Family::V4,
            src: "192.0.2.9".parse().unwrap(),
            result: Err(DecodeError::BadTtl { ttl: 1 }),
        },
    );
    let total: u64 = n.decode_errors.values().flat_map(|m| m.values()).sum();
    assert_eq!(total, 1);
}

#[test]
fn a_reload_dropping_an_interface_releases_it() {
    // Defect: interfaces and sockets were only ever pushed.
    let t0 = clock();
    let mut other = spec("VI_2", 52, "198.51.100.4");
    other.ifindex = 9;
    other.iface = "eth1".into();
    other.src = "198.51.100.1".parse().unwrap();
    other.vr.primary = other.src;
    other.vips[0].ifindex = 9;
    let mut c = cfg(vec![spec("VI_1", 51, "192.0.2.3"), other], &[]);
    c.ifaces.push(IfaceSpec {
        index: 9,
        name: "eth1".into(),
        ..iface(true)
    });
    let (mut n, _) = started(c, t0);
    assert_eq!(in_use(&n).0.len(), 2);
    n.reload(
        cfg(vec![spec("VI_1", 51, "192.0.2.3")], &[]),
        t0 + Duration::from_secs(6),
    )
    .unwrap();
    let (ifaces, socks) = in_use(&n);
    assert_eq!(ifaces.into_iter().collect::<Vec<_>>(), vec![IF]);
    assert_eq!(socks.len(), 1);
    assert!(n.ifaces().all(|i| i.spec.index == IF));
}

fn in_use(
    n: &Node,
) -> (
    std::collections::BTreeSet<u32>,
    std::collections::BTreeSet<(u32, IpAddr)>,
) {
    resources_in_use(n.specs())
}

#[test]
fn a_flood_of_spoofed_sources_is_bounded_and_changes_no_state() {
    let t0 = clock();
    let (mut n, _) = started(cfg(vec![master(spec("VI_1", 51, "192.0.2.3"))], &[]), t0);
    let before = state(&n, "VI_1");
    for i in 0..20_000u32 {
        let src = IpAddr::V4(std::net::Ipv4Addr::from(
            0xc000_0200u32 + 2 + (i % 250) + (i / 250) * 256,
        ));
        n.handle(
            t0 + Duration::from_secs(6),
            NodeInput::Advert {
                ttl: None,
                ifindex: IF,
                form: None,
                family: Family::V4,
                src,
                result: Ok(advert(100)),
            },
        );
    }
    drain(&mut n);
    let (_, inst) = n.instances().next().unwrap();
    assert_eq!(inst.peers.len(), peers::PEERS_MAX);
    assert!(inst.peers.evictions() > 19_000);
    assert_eq!(state(&n, "VI_1"), before);
}

#[test]
fn becoming_master_owns_the_vips_in_xdp_before_binding_them_and_filters_the_kernel() {
    let t0 = clock();
    let (_, acts) = started(cfg(vec![master(spec("VI_1", 51, "192.0.2.3"))], &[]), t0);
    let vip: IpAddr = "192.0.2.3".parse().unwrap();
    let own = acts
        .iter()
        .position(|a| matches!(a, Action::Dataplane(DpOp::Own { vip: v, .. }) if *v == vip))
        .expect("owned in XDP");
    let bind = acts
        .iter()
        .position(|a| matches!(a, Action::InstallVips { .. }))
        .expect("bound");
    assert!(own < bind, "{acts:#?}");
    assert!(acts.iter().any(|a| *a == Action::KernelFilter(vec![vip])));
    // The 510 slots of the fresh program were written once, the VRID's once more after its
    // first advert, with the priority XDP yields above (VRID_F_YIELD).
    let slots = acts
        .iter()
        .filter(|a| matches!(a, Action::Dataplane(DpOp::SetSlot { .. })))
        .count();
    assert_eq!(slots, 511);
}

#[test]
fn the_kernel_answers_once_xdp_tx_fails() {
    let t0 = clock();
    let (mut n, _) = started(cfg(vec![master(spec("VI_1", 51, "192.0.2.3"))], &[]), t0);
    n.handle(
        t0 + Duration::from_secs(6),
        NodeInput::XdpTxFailing { ifindex: IF },
    );
    let acts = drain(&mut n);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Dataplane(DpOp::Disown { .. })))
    );
    assert!(acts.contains(&Action::KernelFilter(Vec::new())));
    assert!(!n.answering(IF));
}

#[test]
fn split_brain_runs_the_hooks_once_per_episode() {
    let t0 = clock();
    let (mut n, _) = started(cfg(vec![master(spec("VI_1", 51, "192.0.2.3"))], &[]), t0);
    let mut hooks = 0;
    for k in 0..5 {
        n.handle(
            t0 + Duration::from_secs(10 + k),
            NodeInput::VipClaimed {
                ifindex: IF,
                vip: "192.0.2.3".parse().unwrap(),
                mac: [2, 0, 0, 0, 0, 9],
            },
        );
        hooks += drain(&mut n)
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Hook {
                        hook: HookKind::Fence,
                        ..
                    }
                )
            })
            .count();
    }
    assert_eq!(hooks, 1);
    let (_, inst) = n.instances().next().unwrap();
    assert!(inst.split_brain.active());
    assert_eq!(inst.conflicts, 5);
    // Quiet for a master-down interval: over.
    n.handle(t0 + Duration::from_secs(30), NodeInput::Tick);
    let (_, inst) = n.instances().next().unwrap();
    assert!(!inst.split_brain.active());
}

#[test]
fn a_heartbeat_advert_reaches_only_its_instance_and_path() {
    let t0 = clock();
    let mut a = spec("VI_1", 51, "192.0.2.3");
    a.heartbeats.push(HeartbeatSpec {
        iface: "hb0".into(),
        ifindex: 20,
        src: "198.51.100.1".parse().unwrap(),
        peers: vec!["198.51.100.2".parse().unwrap()],
    });
    let (mut n, _) = started(cfg(vec![a], &[]), t0);
    let advert = advert(100);
    for src in ["198.51.100.2", "198.51.100.3"] {
        n.handle(
            t0,
            NodeInput::Advert {
                ttl: None,
                ifindex: 20,
                form: None,
                family: Family::V4,
                src: src.parse().unwrap(),
                result: Ok(advert.clone()),
            },
        );
    }
    let (_, inst) = n.instances().next().unwrap();
    assert_eq!(inst.paths[0].heard.len(), 1);
    // Heartbeat adverts are liveness only: no peer entry on the primary path.
    assert!(inst.peers.is_empty());
}

#[test]
fn a_vip_removed_behind_a_masters_back_is_restored_and_other_addresses_are_not() {
    let t0 = clock();
    let (mut n, _) = started(
        cfg(
            vec![
                master(spec("VI_1", 51, "192.0.2.3")),
                spec("VI_2", 52, "192.0.2.4"),
            ],
            &[],
        ),
        t0,
    );
    assert_eq!(state(&n, "VI_2"), State::Master, "alone on the segment");
    for vip in ["192.0.2.3", "192.0.2.9"] {
        n.handle(
            t0 + Duration::from_secs(6),
            NodeInput::AddressRemoved {
                ifindex: IF,
                addr: vip.parse().unwrap(),
            },
        );
    }
    let acts = drain(&mut n);
    let restored: Vec<_> = acts
        .iter()
        .filter_map(|a| match a {
            Action::InstallVips { vips, .. } => Some(vips[0].spec.addr.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(restored, ["192.0.2.3"]);
    assert!(acts.contains(&Action::Publish));
    let restored: u64 = n.instances().map(|(_, i)| i.vips_restored).sum();
    assert_eq!(restored, 1);
}

#[test]
fn a_peer_in_the_other_checksum_form_is_warned_once_and_counted() {
    // issue 18 item 1: the raw-socket path threw the form away; a strict RFC 9568 peer that
    // refuses our pseudo-header form while we accept its form makes two masters silently.
    let t0 = clock();
    let (mut n, _) = started(cfg(vec![spec("VI_1", 51, "192.0.2.3")], &[]), t0);
    for k in 0..3 {
        n.handle(
            t0 + Duration::from_millis(100 * k),
            NodeInput::Advert {
                ttl: None,
                ifindex: IF,
                family: Family::V4,
                src: "192.0.2.7".parse().unwrap(),
                form: Some(ChecksumForm::WithoutPseudoHeader),
                result: Ok(advert(200)),
            },
        );
    }
    let (_, inst) = n.instances().next().unwrap();
    assert_eq!(inst.form_mismatches, 3);
    assert_eq!(inst.form_warned.len(), 1);
    let (_, p) = inst.peers.iter().next().unwrap();
    assert_eq!(p.form, Some(ChecksumForm::WithoutPseudoHeader));
}

/// Issue 16 (soak seed 2026, fault #56): a master SIGSTOPped past its dead-man bound came back
/// and reopened its XDP gate at once, while the backup that had taken over still answered:
/// 13.8 ms of two answerers. After a stall the advert goes first and the gate reopens behind it.
#[test]
fn after_a_stall_past_the_dead_man_bound_the_advert_goes_before_xdp_answers_again() {
    let t0 = clock();
    let (mut n, acts) = started(cfg(vec![master(spec("VI_1", 51, "192.0.2.3"))], &[]), t0);
    assert_eq!(state(&n, "VI_1"), State::Master);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::RefreshLiveness { .. }))
    );
    // Healthy: each advert stamps the gate right behind it.
    let acts = run_until(&mut n, t0, Duration::from_secs(7));
    let send = acts
        .iter()
        .position(|a| matches!(a, Action::SendAdvert { .. }))
        .expect("an advert");
    assert!(
        matches!(acts.get(send + 1), Some(Action::RefreshLiveness { .. })),
        "{acts:#?}"
    );
    assert_eq!(n.gate_stalls, 0);
    // Stalled for 20 s (the bound is 3 s): the overdue timer sends, the gate stays shut.
    let back = t0 + Duration::from_secs(27);
    n.handle(
        back,
        NodeInput::Timer {
            early: None,
            slots: Vec::new(),
        },
    );
    let acts = drain(&mut n);
    assert!(
        acts.iter().any(|a| matches!(a, Action::SendAdvert { .. })),
        "{acts:#?}"
    );
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::RefreshLiveness { .. })),
        "{acts:#?}"
    );
    assert_eq!(n.gate_stalls, 1);
    // A tick meanwhile does not reopen it either.
    n.handle(back, NodeInput::Tick);
    assert!(
        !drain(&mut n)
            .iter()
            .any(|a| matches!(a, Action::RefreshLiveness { .. }))
    );
    let hold = n.poll_timeout().expect("the hold's end");
    assert!(hold <= back + GATE_REOPEN_HOLD);
    n.handle(
        back + GATE_REOPEN_HOLD,
        NodeInput::Timer {
            early: None,
            slots: Vec::new(),
        },
    );
    let acts = drain(&mut n);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::RefreshLiveness { .. })),
        "{acts:#?}"
    );
}

/// Where the first action matching `f` is.
fn at(acts: &[Action], what: &str, f: impl Fn(&Action) -> bool) -> usize {
    acts.iter()
        .position(f)
        .unwrap_or_else(|| panic!("no {what} in {acts:#?}"))
}

#[test]
fn a_handover_is_make_before_break_the_new_master_answers_before_its_first_advert() {
    // Defect (issue 15, item 0): the new master's first advert left before its XDP answered
    // (the advert came first, and the dead-man stamp, stale in a backup, was only refreshed
    // by the *next* advert), while that advert is what makes the resigning master stop: a
    // client saw up to one advert interval with no answer.
    let t0 = clock();
    let vip: IpAddr = "192.0.2.3".parse().unwrap();
    let old_src: IpAddr = "192.0.2.1".parse().unwrap();
    let new_src: IpAddr = "192.0.2.2".parse().unwrap();
    let master_advert = |prio: u8| NodeInput::Advert {
        ttl: None,
        ifindex: IF,
        form: None,
        family: Family::V4,
        src: old_src,
        result: Ok(advert(prio)),
    };

    // The backup (priority 50, the default 100 lowered) takes over on the priority 0.
    let mut b = spec("VI_1", 51, "192.0.2.3");
    b.src = new_src;
    b.vr.primary = new_src;
    b.vr.priority = Priority(50);
    let mut n = Node::new(cfg(vec![b], &[]), t0).unwrap();
    n.handle(t0, NodeInput::Prepare);
    n.handle(t0, NodeInput::Start);
    drain(&mut n);
    let t1 = t0 + Duration::from_millis(100);
    n.handle(t1, master_advert(100));
    drain(&mut n);
    assert_eq!(state(&n, "VI_1"), State::Backup);
    let t2 = t1 + Duration::from_millis(50);
    n.handle(t2, master_advert(0));
    let mut acts = drain(&mut n);
    acts.extend(run_until(&mut n, t2, Duration::from_secs(1)));
    assert_eq!(state(&n, "VI_1"), State::Master);
    let fresh = at(&acts, "liveness refresh", |a| {
        matches!(a, Action::RefreshLiveness { ifindex: IF, .. })
    });
    let own = at(
        &acts,
        "XDP ownership",
        |a| matches!(a, Action::Dataplane(DpOp::Own { vip: v, .. }) if *v == vip),
    );
    let advert_out = at(
        &acts,
        "advert",
        |a| matches!(a, Action::SendAdvert { priority, .. } if *priority == Priority(50)),
    );
    let bind = at(&acts, "binding", |a| {
        matches!(a, Action::InstallVips { .. })
    });
    assert!(
        fresh < own && own < advert_out && advert_out < bind,
        "{acts:#?}"
    );

    // The resigning master keeps its answers after its priority 0 and drops them only on the
    // new master's first advert (which, above, leaves only once that master answers).
    let (mut m, _) = started(cfg(vec![master(spec("VI_1", 51, "192.0.2.3"))], &[]), t0);
    let t3 = t0 + Duration::from_secs(6);
    m.handover(t3, None).unwrap();
    let acts = drain(&mut m);
    assert!(
        acts.iter().any(
            |a| matches!(a, Action::SendAdvert { priority, .. } if *priority == Priority::RELEASE)
        ),
        "{acts:#?}"
    );
    assert!(
        !acts.iter().any(|a| matches!(
            a,
            Action::Dataplane(DpOp::Disown { .. }) | Action::RemoveVips { .. }
        )),
        "{acts:#?}"
    );
    assert!(m.answering(IF));
    m.handle(
        t3 + Duration::from_millis(8),
        NodeInput::Advert {
            ttl: None,
            ifindex: IF,
            form: None,
            family: Family::V4,
            src: new_src,
            result: Ok(advert(50)),
        },
    );
    let acts = drain(&mut m);
    at(
        &acts,
        "XDP release",
        |a| matches!(a, Action::Dataplane(DpOp::Disown { vip: v, .. }) if *v == vip),
    );
    assert_eq!(state(&m, "VI_1"), State::Backup);
    assert!(!m.answering(IF));
}

/// Issue 16 (soak seed 1, fault #24): with a 1 s and a 100 ms instance on one interface the
/// gate took the 1 s instance's bound (3 s), so a SIGSTOPped master answered for the 100 ms
/// instance's VIP long after its backup took over. The gate follows the fastest instance.
#[test]
fn the_dead_man_bound_of_an_interface_is_its_fastest_instances() {
    let t0 = clock();
    let mut fast = master(spec("VI_F", 52, "192.0.2.4"));
    fast.vr.interval = Centisecs(10);
    let (mut n, _) = started(
        cfg(vec![master(spec("VI_1", 51, "192.0.2.3")), fast], &[]),
        t0,
    );
    let acts = run_until(&mut n, t0, Duration::from_secs(10));
    let bounds: BTreeSet<Duration> = acts
        .iter()
        .filter_map(|a| match a {
            Action::RefreshLiveness { bound, .. } => Some(*bound),
            _ => None,
        })
        .collect();
    assert_eq!(
        bounds,
        BTreeSet::from([liveness_bound(Centisecs(10))]),
        "{bounds:?}"
    );
}

#[test]
fn a_vip_removed_again_and_again_is_restored_with_a_back_off_not_a_fight() {
    // Something that keeps deleting our VIP (a network manager, a cleanup loop) met one
    // restore and one warning per removal: a netlink fight at full speed. Now repeats wait.
    let t0 = clock();
    let (mut n, _) = started(cfg(vec![master(spec("VI_1", 51, "192.0.2.3"))], &[]), t0);
    drain(&mut n);
    let vip: IpAddr = "192.0.2.3".parse().unwrap();
    let installs = |acts: &[Action]| {
        acts.iter()
            .filter(|a| matches!(a, Action::InstallVips { .. }))
            .count()
    };
    let t = t0 + Duration::from_secs(6);
    let mut restored_now = 0;
    for k in 0..50u32 {
        n.handle(
            t + Duration::from_millis(u64::from(k)),
            NodeInput::AddressRemoved {
                ifindex: IF,
                addr: vip,
            },
        );
        restored_now += installs(&drain(&mut n));
    }
    assert_eq!(restored_now, 1, "only the first removal is undone at once");
    let inst = n.instances().next().unwrap().1;
    assert_eq!(inst.restore.held, 49);
    let due = inst.restore.due().expect("a held restore is due later");
    assert!(
        n.poll_timeout().is_some_and(|p| p <= due),
        "the driver wakes for it"
    );
    n.handle(
        due,
        NodeInput::Timer {
            early: None,
            slots: vec![],
        },
    );
    let acts = drain(&mut n);
    assert_eq!(
        installs(&acts),
        1,
        "the held VIP comes back once, at its time"
    );
    assert_eq!(n.instances().next().unwrap().1.vips_restored, 2);
}

#[test]
fn rfc9568_8_4_a_master_in_v2_interop_sends_both_versions_and_xdp_takes_both() {
    // Checklist item 58: during a rolling upgrade the v2 routers drop our v3 adverts; without
    // a v2 copy they would each become master beside us.
    let t0 = clock();
    let mut s = master(spec("VI_1", 51, "192.0.2.3"));
    s.vr.v2_interop = true;
    s.vr.auth = Auth::Pass(*b"1111\0\0\0\0");
    let (mut n, acts) = started(cfg(vec![s], &[]), t0);
    let slot = acts
        .iter()
        .find_map(|a| match a {
            Action::Dataplane(dataplane::DpOp::SetSlot { vrid: 51, slot, .. }) => {
                Some(slot.clone())
            }
            _ => None,
        })
        .expect("the VRID's slot is written");
    assert_ne!(slot.cfg.flags & vrrp_common::maps::VRID_F_V2_INTEROP, 0);
    assert_ne!(slot.cfg.flags & vrrp_common::maps::VRID_F_AUTH_PASS, 0);
    assert_eq!(
        slot.cfg.interval_cs, 100,
        "v2 adverts are held to our interval"
    );
    let id = n.instances().next().unwrap().0;
    let out = n.adverts(id, Priority(200)).expect("an advert");
    let versions: Vec<u8> = out.adverts.iter().map(|(_, m)| m[0] >> 4).collect();
    assert_eq!(versions, [3, 2], "one advert per version, to 224.0.0.18");
    // The v2 copy carries whole seconds and the v2 nodes' password (RFC 3768 §5.3.6-7), the
    // v3 one none (RFC 9568 §9.1).
    let v2 = &out.adverts[1].1;
    assert_eq!((v2[4], v2[5]), (1, 1));
    assert_eq!(&v2[12..16], b"1111");
    assert_eq!(out.adverts[0].1.len(), 12);
}

/// The checksum form of each message the instance sends now (priority 200), by destination.
fn sent_forms(n: &mut Node, id: InstanceId) -> Vec<(IpAddr, ChecksumForm)> {
    let out = n.adverts(id, Priority(200)).expect("instance");
    let src = out.src;
    out.adverts
        .iter()
        .map(|(dst, msg)| {
            let meta = codec::RxMeta {
                src,
                dst: *dst,
                ttl: 255,
            };
            (*dst, codec::decode(&meta, msg).expect("decodes").checksum)
        })
        .collect()
}

fn heard_in(n: &mut Node, at: Instant, src: &str, prio: u8, form: ChecksumForm) {
    n.handle(
        at,
        NodeInput::Advert {
            ifindex: IF,
            family: Family::V4,
            src: src.parse().unwrap(),
            form: Some(form),
            ttl: None,
            result: Ok(advert(prio)),
        },
    );
}

/// The priority-0 messages the guardian was last armed with, by form.
fn armed_forms(acts: &[Action]) -> Option<Vec<ChecksumForm>> {
    acts.iter().rev().find_map(|a| match a {
        Action::GuardianArm(armed) if armed.key == "VI_1" => Some(
            armed
                .release
                .iter()
                .map(|(dst, msg)| {
                    let meta = codec::RxMeta {
                        src: armed.src,
                        dst: *dst,
                        ttl: 255,
                    };
                    let d = codec::decode(&meta, msg).expect("decodes");
                    assert_eq!(d.advert.priority, Priority::RELEASE);
                    d.checksum
                })
                .collect(),
        ),
        _ => None,
    })
}

#[test]
fn checksum_auto_answers_each_form_on_a_multicast_segment() {
    // issue 18 item 1: a strict RFC 9568 peer drops our pseudo-header adverts and claims
    // master; in auto mode it gets an advert in its own form too, ours first, in the adverts
    // and in the guardian's pre-encoded priority 0. Without auto: one form, as before.
    use ChecksumForm::*;
    let t0 = clock();
    let group: IpAddr = "224.0.0.18".parse().unwrap();
    for auto in [false, true] {
        let mut s = master(spec("VI_1", 51, "192.0.2.3"));
        s.form_auto = auto;
        let (mut n, acts) = started(cfg(vec![s], &[]), t0);
        let id = n.instances().next().unwrap().0;
        assert_eq!(state(&n, "VI_1"), State::Master);
        assert_eq!(armed_forms(&acts), Some(vec![WithPseudoHeader]));
        // Filled the cache: it must not survive the change.
        assert_eq!(sent_forms(&mut n, id), [(group, WithPseudoHeader)]);
        let t1 = t0 + Duration::from_secs(6);
        heard_in(&mut n, t1, "192.0.2.7", 100, WithoutPseudoHeader);
        let acts = drain(&mut n);
        if !auto {
            assert_eq!(sent_forms(&mut n, id), [(group, WithPseudoHeader)]);
            assert_eq!(armed_forms(&acts), None);
            continue;
        }
        assert_eq!(
            sent_forms(&mut n, id),
            [(group, WithPseudoHeader), (group, WithoutPseudoHeader)]
        );
        assert_eq!(
            armed_forms(&acts),
            Some(vec![WithPseudoHeader, WithoutPseudoHeader]),
            "the guardian's priority 0 follows"
        );
        // A second peer in our form: still one message per form, nothing re-armed.
        heard_in(&mut n, t1, "192.0.2.8", 100, WithPseudoHeader);
        assert_eq!(armed_forms(&drain(&mut n)), None);
        assert_eq!(sent_forms(&mut n, id).len(), 2);
        // The strict peer, now a backup that accepts our advert in its form, is silent: its
        // form stays (aged out after 3 intervals, it would time out and claim master again).
        let acts = run_until(&mut n, t0, Duration::from_secs(60));
        assert_eq!(armed_forms(&acts), None);
        assert_eq!(
            sent_forms(&mut n, id),
            [(group, WithPseudoHeader), (group, WithoutPseudoHeader)]
        );
        // No peer uses the strict form any more: back to one message.
        let t2 = t0 + Duration::from_secs(61);
        heard_in(&mut n, t2, "192.0.2.7", 100, WithPseudoHeader);
        assert_eq!(armed_forms(&drain(&mut n)), Some(vec![WithPseudoHeader]));
        assert_eq!(sent_forms(&mut n, id), [(group, WithPseudoHeader)]);
    }
}

#[test]
fn checksum_auto_answers_each_unicast_peer_in_its_form() {
    // issue 18 item 1: each unicast peer gets the form it uses; one never heard gets ours
    // (v3_checksum_as_v2 here). VRRPv2 and IPv6 have one form: auto changes nothing there.
    use ChecksumForm::*;
    let t0 = clock();
    let peers: Vec<IpAddr> = ["192.0.2.7", "192.0.2.8", "192.0.2.9"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let mut s = master(spec("VI_1", 51, "192.0.2.3"));
    s.form_auto = true;
    s.form = WithoutPseudoHeader;
    s.destinations = peers.clone();
    let (mut n, _) = started(cfg(vec![s.clone()], &[]), t0);
    let id = n.instances().next().unwrap().0;
    assert!(
        sent_forms(&mut n, id)
            .iter()
            .all(|(_, f)| *f == WithoutPseudoHeader)
    );
    let t1 = t0 + Duration::from_secs(6);
    heard_in(&mut n, t1, "192.0.2.7", 100, WithoutPseudoHeader);
    heard_in(&mut n, t1, "192.0.2.8", 100, WithPseudoHeader);
    // A form unknown (a transcript, the data plane) keeps the one heard before.
    n.handle(
        t1,
        NodeInput::Advert {
            ifindex: IF,
            family: Family::V4,
            src: peers[1],
            form: None,
            ttl: None,
            result: Ok(advert(100)),
        },
    );
    assert_eq!(
        sent_forms(&mut n, id),
        [
            (peers[0], WithoutPseudoHeader),
            (peers[1], WithPseudoHeader),
            (peers[2], WithoutPseudoHeader)
        ]
    );
    // VRRPv2: the form is not ours to choose.
    s.vr.version = Version::V2;
    let (mut n, _) = started(cfg(vec![s], &[]), t0);
    let id = n.instances().next().unwrap().0;
    heard_in(&mut n, t1, "192.0.2.8", 100, WithPseudoHeader);
    let plan = n.instances().next().unwrap().1.form_plan();
    assert!(
        plan.iter().all(|(_, f)| *f == WithoutPseudoHeader),
        "{plan:?}"
    );
    assert_eq!(n.adverts(id, Priority(200)).unwrap().adverts.len(), 3);
}

#[test]
fn xdp_yields_to_a_priority_above_the_one_we_advertise_even_while_handing_over() {
    // The old master's XDP stops answering on the new master's advert (VRID_F_YIELD) only if
    // it knows the priority we advertise: 200 as master, 0 once we hand over.
    let t0 = clock();
    let (mut n, acts) = started(cfg(vec![master(spec("VI_1", 51, "192.0.2.3"))], &[]), t0);
    let slots = |acts: &[Action]| -> Vec<(u32, u8)> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Dataplane(dataplane::DpOp::SetSlot { vrid: 51, slot, .. }) => Some((
                    slot.cfg.flags & vrrp_common::maps::VRID_F_YIELD,
                    slot.cfg.own_priority,
                )),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        slots(&acts).last(),
        Some(&(vrrp_common::maps::VRID_F_YIELD, 200))
    );
    let t1 = t0 + Duration::from_secs(6);
    n.handover(t1, None).expect("a master");
    assert_eq!(
        slots(&drain(&mut n)).last(),
        Some(&(vrrp_common::maps::VRID_F_YIELD, 0))
    );
}
