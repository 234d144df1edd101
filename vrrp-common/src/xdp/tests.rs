//! The program's parser and decisions on the host, through the same [`run`] the kernel runs.

use std::vec;
use std::vec::Vec;

use super::host::Plane;
use super::{Action, run};
use crate::event::{EVENT_ADVERT, counter};
use crate::maps::{
    CFG_F_CONSUME_ADVERTS, OwnedVip, PeerKey, PeerLimits, VRID_F_CONFIGURED, VRID_F_UNICAST_PEERS,
    VRID_F_VMAC_OWNED, VridConfig, vrid_slot,
};
use crate::respond::{Arp, arp_reply};
use crate::verdict::csum_fold;
use crate::wire::{ARP_LEN, ETH_HLEN, vmac};

const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const MASTER: [u8; 4] = [192, 0, 2, 1];
const VIP4: [u8; 4] = [192, 0, 2, 100];

fn sum(b: &[u8]) -> u64 {
    b.chunks(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum()
}

/// A VRRPv3 advert over IPv4 for VRID 51 (one VIP), both checksums as keepalived sends them.
fn advert(src: [u8; 4], priority: u8) -> Vec<u8> {
    advert_to(src, [224, 0, 0, 18], 255, priority)
}

/// [`advert`] to `dst` with TTL `ttl`.
fn advert_to(src: [u8; 4], dst: [u8; 4], ttl: u8, priority: u8) -> Vec<u8> {
    let mut f = vec![0u8; ETH_HLEN + 20 + 12];
    f[0..6].copy_from_slice(&[0x01, 0, 0x5e, 0, 0, 0x12]);
    f[6..12].copy_from_slice(&PEER_MAC);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = ETH_HLEN;
    f[ip..ip + 12].copy_from_slice(&[0x45, 0, 0, 32, 0, 0, 0, 0, ttl, 112, 0, 0]);
    f[ip + 12..ip + 16].copy_from_slice(&src);
    f[ip + 16..ip + 20].copy_from_slice(&dst);
    let c = csum_fold(sum(&f[ip..ip + 20])).to_be_bytes();
    f[ip + 10..ip + 12].copy_from_slice(&c);
    let v = ip + 20;
    f[v..v + 8].copy_from_slice(&[0x31, 51, priority, 1, 0, 100, 0, 0]);
    f[v + 8..v + 12].copy_from_slice(&VIP4);
    let c = csum_fold(sum(&f[v..]) + sum(&f[ip + 12..ip + 20]) + 12 + 112).to_be_bytes();
    f[v + 6..v + 8].copy_from_slice(&c);
    f
}

/// An ARP request from the peer for `tpa`.
fn arp_request(tpa: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&[192, 0, 2, 2]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&tpa);
    f
}

fn consuming() -> Plane {
    let mut p = Plane::default();
    p.config_mut().flags = CFG_F_CONSUME_ADVERTS;
    p.config_mut().mac = OUR_MAC;
    p.now_ns = 1_000_000_000;
    p
}

fn v3(flags: u32) -> VridConfig {
    VridConfig {
        flags: VRID_F_CONFIGURED | flags,
        ..Default::default()
    }
}

fn peer(ipv6: bool, vrid: u8, addr: [u8; 4]) -> PeerKey {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&addr);
    PeerKey {
        slot: vrid_slot(ipv6, vrid),
        addr: a,
    }
}

/// VRID 51 owns [`VIP4`], answering with `mac`.
fn own_vip4(p: &mut Plane, mac: [u8; 6]) {
    p.owned4.push((
        VIP4,
        OwnedVip {
            vrid: 51,
            flags: 0,
            mac,
        },
    ));
}

/// Runs a frame; returns the action and the counters it moved.
fn run_on(p: &mut Plane, frame: &[u8]) -> (Action, Vec<(u32, u64)>) {
    let before = p.counters.clone();
    let a = p.run(frame);
    (a, p.moved(&before))
}

#[test]
fn a_slice_reads_only_what_it_holds() {
    use super::Packet;
    let b: &[u8] = &[1, 2, 3];
    assert_eq!(b.read::<2>(1), Some([2, 3]));
    assert_eq!(b.read::<2>(2), None);
    assert_eq!(b.read::<1>(usize::MAX), None);
    assert_eq!(run(&[0u8; 5][..], &mut Plane::default()), Action::Pass);
}

#[test]
fn unicast_peers_are_an_allowlist() {
    let mut p = consuming();
    p.set_vrid(false, 51, v3(VRID_F_UNICAST_PEERS));
    let f = advert(MASTER, 100);
    assert_eq!(
        run_on(&mut p, &f),
        (Action::Drop, vec![(counter::DROP_PEER_NOT_ALLOWED, 1)])
    );
    // Allowed for another virtual router, or the other family: still not for this one.
    p.peers.push((peer(false, 52, MASTER), PeerLimits::ANY));
    p.peers.push((peer(true, 51, MASTER), PeerLimits::ANY));
    assert_eq!(
        run_on(&mut p, &f).1,
        vec![(counter::DROP_PEER_NOT_ALLOWED, 1)]
    );
    assert!(p.events.is_empty() && p.advert(51).last_ns == 0);
    p.peers.push((peer(false, 51, MASTER), PeerLimits::ANY));
    assert_eq!(
        run_on(&mut p, &f),
        (
            Action::Drop,
            vec![
                (counter::ADVERT_VALID, 1),
                (counter::V3_CSUM_WITH_PSEUDO, 1),
                (counter::ADVERT_EVENT, 1)
            ]
        )
    );
    assert_eq!(p.events.len(), 1);
    assert_eq!(p.events[0].kind, EVENT_ADVERT);
    assert_eq!(p.events[0].data, f[ETH_HLEN..]);
    assert_eq!(p.advert(51).src[..4], MASTER);
    // Without the flag the list is not consulted.
    p.set_vrid(false, 51, v3(0));
    p.peers.clear();
    assert!(run_on(&mut p, &f).1.contains(&(counter::ADVERT_VALID, 1)));
}

/// keepalived skips the TTL 255 check for unicast: a peer a routed hop away works, held to
/// the `min_ttl`/`max_ttl` of its `unicast_peer` line if given. Multicast stays held to 255.
#[test]
fn a_unicast_adverts_ttl_is_held_to_its_peers_limits_only() {
    const US: [u8; 4] = [198, 51, 100, 2];
    let valid = |r: &(Action, Vec<(u32, u64)>)| r.1.contains(&(counter::ADVERT_VALID, 1));
    let bad_ttl = (Action::Drop, vec![(counter::DROP_BAD_TTL, 1)]);
    let mut p = consuming();
    p.set_vrid(false, 51, v3(VRID_F_UNICAST_PEERS));
    p.peers.push((peer(false, 51, MASTER), PeerLimits::ANY));
    assert!(valid(&run_on(&mut p, &advert_to(MASTER, US, 64, 100))));
    assert_eq!(
        run_on(&mut p, &advert_to(MASTER, [224, 0, 0, 18], 64, 100)),
        bad_ttl,
        "multicast stays held to 255"
    );
    // Not a peer: refused as such, whatever its TTL.
    assert_eq!(
        run_on(&mut p, &advert_to([192, 0, 2, 9], US, 64, 100)),
        (Action::Drop, vec![(counter::DROP_PEER_NOT_ALLOWED, 1)])
    );
    p.peers[0].1 = PeerLimits::new(60, 70);
    for (ttl, ok) in [
        (59, false),
        (60, true),
        (64, true),
        (70, true),
        (71, false),
        (255, false),
    ] {
        let r = run_on(&mut p, &advert_to(MASTER, US, ttl, 100));
        assert_eq!(valid(&r), ok, "ttl {ttl}: {r:?}");
        if !ok {
            assert_eq!(r, bad_ttl, "ttl {ttl}");
        }
    }
    // min_ttl 255: only a peer on the link.
    p.peers[0].1 = PeerLimits::new(255, 255);
    assert_eq!(run_on(&mut p, &advert_to(MASTER, US, 254, 100)), bad_ttl);
    assert!(valid(&run_on(&mut p, &advert_to(MASTER, US, 255, 100))));
    // An instance without unicast peers holds unicast adverts to 255 too.
    p.set_vrid(false, 51, v3(0));
    assert_eq!(run_on(&mut p, &advert_to(MASTER, US, 64, 100)), bad_ttl);
}

#[test]
fn frames_for_an_owned_vmac_are_readdressed_to_the_interface() {
    let mut p = consuming();
    let mut f = arp_request([192, 0, 2, 200]);
    f[0..6].copy_from_slice(&vmac(false, 51));
    // Not owned: untouched.
    p.set_vrid(false, 51, v3(0));
    assert_eq!(run_on(&mut p, &f), (Action::Pass, vec![]));
    assert_eq!(p.frame, f);
    // Owned by the IPv6 router of the same VRID: another virtual router, untouched.
    p.set_vrid(true, 51, v3(VRID_F_VMAC_OWNED));
    assert_eq!(run_on(&mut p, &f), (Action::Pass, vec![]));
    assert_eq!(p.frame, f);
    p.set_vrid(false, 51, v3(VRID_F_VMAC_OWNED));
    assert_eq!(
        run_on(&mut p, &f),
        (Action::Pass, vec![(counter::VMAC_TO_HOST, 1)])
    );
    assert_eq!(p.frame[0..6], OUR_MAC);
    assert_eq!(p.frame[6..], f[6..]);
    // Any other destination is left alone.
    let g = arp_request([192, 0, 2, 200]);
    assert_eq!(run_on(&mut p, &g), (Action::Pass, vec![]));
    assert_eq!(p.frame, g);
}

#[test]
fn the_dead_man_gate_silences_the_responder() {
    let mut p = consuming();
    own_vip4(&mut p, vmac(false, 51));
    let req = arp_request(VIP4);
    let body: [u8; ARP_LEN] = req[ETH_HLEN..].try_into().expect("ARP body");
    let reply = arp_reply(&Arp::parse(&body).expect("ARP"), VIP4, vmac(false, 51));
    assert_eq!(
        run_on(&mut p, &req),
        (Action::Tx, vec![(counter::ARP_REPLIED, 1)])
    );
    assert_eq!(p.frame, reply);
    // A fresh stamp answers; a stale one does not (the agent is hung).
    let now = p.now_ns;
    let c = p.config_mut();
    c.liveness_ns = now - 400;
    c.liveness_bound_ns = 500;
    assert_eq!(run_on(&mut p, &req).0, Action::Tx);
    p.now_ns += 101;
    assert_eq!(
        run_on(&mut p, &req),
        (Action::Pass, vec![(counter::DEADMAN_SILENCED, 1)])
    );
    assert_eq!(p.frame, req);
    // A SIGKILL seen for the agent silences it whatever its stamp.
    p.config_mut().liveness_bound_ns = 0;
    p.killed = true;
    assert_eq!(
        run_on(&mut p, &req),
        (Action::Pass, vec![(counter::DEADMAN_SILENCED, 1)])
    );
    p.killed = false;
    assert_eq!(run_on(&mut p, &req).0, Action::Tx);
}

#[test]
fn the_masters_adverts_restart_its_timer_and_repeats_are_absorbed() {
    let mut p = consuming();
    p.set_vrid(
        false,
        51,
        VridConfig {
            master_down_ns: 3_600_000_000,
            ..v3(0)
        },
    );
    let f = advert(MASTER, 100);
    assert!(run_on(&mut p, &f).1.contains(&(counter::ADVERT_EVENT, 1)));
    p.now_ns += 1_000_000_000;
    assert!(
        run_on(&mut p, &f)
            .1
            .contains(&(counter::ADVERT_ABSORBED, 1))
    );
    let starts: Vec<u64> = p.timers.iter().map(|t| t.started_ns).collect();
    assert_eq!(starts, vec![1_000_000_000, 2_000_000_000]);
    assert!(p.timers.iter().all(|t| t.slot == 51));
    // A lower-priority sender is news once, then absorbed, and leaves the master's slot and
    // timer alone.
    let other = advert([192, 0, 2, 7], 50);
    assert!(
        run_on(&mut p, &other)
            .1
            .contains(&(counter::ADVERT_EVENT, 1))
    );
    assert!(
        run_on(&mut p, &other)
            .1
            .contains(&(counter::ADVERT_ABSORBED, 1))
    );
    assert_eq!(p.advert(51).src[..4], MASTER);
    assert_eq!(p.other(51).src[..4], [192, 0, 2, 7]);
    assert_eq!(p.timers.len(), 2);
    // Priority 0, the master leaving: news, and no timer.
    assert!(
        run_on(&mut p, &advert(MASTER, 0))
            .1
            .contains(&(counter::ADVERT_EVENT, 1))
    );
    assert_eq!(p.timers.len(), 2);
}

#[test]
fn a_master_stops_answering_the_moment_a_higher_priority_master_speaks() {
    // Soak seed 20261204 faults #128, #254, #268: at a preemption or a planned handover the
    // old master's agent left MASTER only after a ring event and a wake-up, and both nodes
    // answered ARP/ND for 25-36 ms under load. The old master's XDP now yields on the advert.
    let mut p = consuming();
    own_vip4(&mut p, OUR_MAC);
    let yielding = |own_priority| VridConfig {
        own_priority,
        ..v3(crate::maps::VRID_F_YIELD)
    };
    p.set_vrid(false, 51, yielding(100));
    let req = arp_request(VIP4);
    assert_eq!(run_on(&mut p, &req).0, Action::Tx, "alone: we answer");
    run_on(&mut p, &advert([192, 0, 2, 7], 50));
    assert_eq!(
        run_on(&mut p, &req).0,
        Action::Tx,
        "a lower priority changes nothing"
    );
    run_on(&mut p, &advert(MASTER, 200));
    assert_eq!(
        run_on(&mut p, &req),
        (Action::Pass, vec![(counter::YIELDED, 1)]),
        "a higher priority master answers from now on"
    );
    // Without the flag (a backup's slot, VRRPv2) nothing yields.
    p.set_vrid(false, 51, v3(0));
    assert_eq!(run_on(&mut p, &req).0, Action::Tx);
    // It died: two of its intervals (1 s each) later we answer again, before our
    // Master_Down_Interval would make us master.
    p.set_vrid(false, 51, yielding(100));
    p.now_ns += 2_000_000_001;
    assert_eq!(
        run_on(&mut p, &req).0,
        Action::Tx,
        "a stale advert is no master"
    );
    // Handing over we advertise priority 0: the new master, at any priority, takes over.
    p.set_vrid(false, 51, yielding(0));
    run_on(&mut p, &advert(MASTER, 50));
    assert_eq!(
        run_on(&mut p, &req),
        (Action::Pass, vec![(counter::YIELDED, 1)])
    );
}
