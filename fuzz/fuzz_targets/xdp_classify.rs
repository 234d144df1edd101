//! The XDP program on arbitrary Ethernet frames, on the host.
//!
//! It runs `vrrp_common::xdp::run`, the very code vrrp-ebpf runs in the kernel, over
//! `xdp::host::Plane` (the program's maps as plain data, its effects recorded). Each frame is
//! tried as it is and with valid checksums, under the configurations the agent writes (an
//! unknown VRID, VRRPv3, VRRPv2 with and without a password, unicast peers with the sender
//! listed or not, the virtual MAC owned or not, the dead-man gate fresh, stale or tripped by
//! a SIGKILL). It checks that:
//! - nothing panics or reads out of bounds, whatever the frame says;
//! - a drop is counted under exactly one drop reason;
//! - an advert the program accepts (counts as valid and files into `ADVERTS`, which keeps a
//!   master alive for the agent) is reported whole and is one the agent accepts too: the
//!   codec decodes it and the configuration checks the data plane stands in for (version,
//!   password, v2 interval) pass. Otherwise a malformed advert would change state that the
//!   agent would have refused;
//! - with unicast peers, an advert from a sender not in `PEERS` is never accepted;
//! - an accepted advert had TTL 255, or was unicast to a unicast instance within its peer's
//!   `min_ttl`/`max_ttl`;
//! - the destination MAC is rewritten to the interface's exactly when it is the virtual MAC
//!   of a VRID we own, and nothing else of a frame that is not answered changes;
//! - nothing is answered while the agent's liveness stamp is stale or it was killed;
//! - the ARP replies and Neighbor Advertisements sent are well formed (RFC 826, RFC 4861).

#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use vrrp_agent::proto::codec::decode_ip;
use vrrp_agent::proto::{Auth, Centisecs, Version};
use vrrp_common::event::{EVENT_ADVERT, counter};
use vrrp_common::maps::{
    CFG_F_CONSUME_ADVERTS, OwnedVip, PeerKey, PeerLimits, VRID_F_AUTH_PASS, VRID_F_CONFIGURED,
    VRID_F_UNICAST_PEERS, VRID_F_V2, VRID_F_VMAC_OWNED, VridConfig, vrid_slot,
};
use vrrp_common::respond::{
    ALL_NODES, ALL_NODES_MAC, Arp, NA_FRAME_LEN, NA_MSG_LEN, ND_HOP_LIMIT, arp_reply,
    is_solicited_node, is_unspecified, neighbor_advert,
};
use vrrp_common::verdict::csum_fold;
use vrrp_common::wire::{
    ARP_LEN, ARPOP_REPLY, ETH_HLEN, ETH_P_ARP, ETH_P_IPV6, ICMPV6_NA, IPPROTO_ICMPV6, IPV6_HLEN,
    vmac_vrid,
};
use vrrp_common::xdp::Action;
use vrrp_common::xdp::host::Plane;
use vrrp_fuzz::{fix_checksums, fix_icmpv6_checksum};

/// The VIPs the data plane owns besides those the frame asks about, the MAC it answers with,
/// and the interface's MAC.
const VIP4: [u8; 4] = [192, 0, 2, 100];
const VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33];
const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PASS: [u8; 8] = *b"1111\0\0\0\0";

/// The clock, and the dead-man bound the agent sets.
const NOW: u64 = 1_000_000_000_000;
const BOUND: u64 = 3_000_000_000;

fuzz_target!(|frame: &[u8]| {
    check_frame(frame);
    // The same frame with valid IPv4 header, VRRP and ICMPv6 checksums, to get past them.
    if frame.len() > ETH_HLEN {
        let mut fixed = frame.to_vec();
        fix_checksums(&mut fixed[ETH_HLEN..]);
        check_frame(&fixed);
        let mut fixed = frame.to_vec();
        fix_icmpv6_checksum(&mut fixed[ETH_HLEN..]);
        check_frame(&fixed);
    }
    builders(frame);
});

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    Fresh,
    Stale,
    Killed,
}

/// One data-plane state to run a frame against.
#[derive(Clone, Copy, Debug)]
struct Case {
    cfg: VridConfig,
    /// The frame's source is in `PEERS` for its virtual router.
    listed: bool,
    /// With these TTL limits.
    limits: PeerLimits,
    /// The VRID of the frame's destination, if a virtual MAC, is ours (`VRID_F_VMAC_OWNED`).
    vmac_owned: bool,
    /// The frame's ARP sender address is an owned VIP too (so a claim on it is a conflict).
    own_sender: bool,
    gate: Gate,
}

fn check_frame(frame: &[u8]) {
    let ipv6 = at::<2>(frame, 12) == Some(ETH_P_IPV6.to_be_bytes());
    for case in cases(advert_vrid(frame, ipv6).unwrap_or(0)) {
        check_case(frame, ipv6, &case);
    }
}

/// The VridConfigs the agent writes (driver): none for an unknown VRID (never for VRID 0),
/// VRRPv3, VRRPv2 with its interval, with and without a password, unicast peers; and the
/// other maps in the states that change what the program may do.
fn cases(vrid: u8) -> Vec<Case> {
    let base = Case {
        cfg: VridConfig::default(),
        listed: false,
        limits: PeerLimits::ANY,
        vmac_owned: false,
        own_sender: false,
        gate: Gate::Fresh,
    };
    let mut v = vec![base];
    if vrid == 0 {
        return v;
    }
    let v3 = VridConfig {
        flags: VRID_F_CONFIGURED,
        ..Default::default()
    };
    let unicast = VridConfig {
        flags: VRID_F_CONFIGURED | VRID_F_UNICAST_PEERS,
        ..Default::default()
    };
    let mut cfgs = vec![(v3, false), (unicast, true), (unicast, false)];
    for (flags, pass) in [(0, [0; 8]), (VRID_F_AUTH_PASS, PASS)] {
        let v2 = VridConfig {
            flags: VRID_F_CONFIGURED | VRID_F_V2 | flags,
            interval_cs: 100,
            auth_pass: pass,
            ..Default::default()
        };
        cfgs.push((v2, false));
    }
    for (i, (cfg, listed)) in cfgs.into_iter().enumerate() {
        v.push(Case {
            cfg,
            listed,
            limits: PeerLimits::ANY,
            vmac_owned: i % 2 == 0,
            own_sender: i % 2 == 1,
            gate: Gate::Fresh,
        });
    }
    // A peer that must be on the link (`min_ttl 255`), and one a few hops away.
    for limits in [PeerLimits::new(255, 255), PeerLimits::new(60, 70)] {
        v.push(Case {
            cfg: unicast,
            listed: true,
            limits,
            ..base
        });
    }
    for gate in [Gate::Stale, Gate::Killed] {
        v.push(Case {
            cfg: v3,
            vmac_owned: true,
            gate,
            ..base
        });
    }
    v
}

/// The data plane of a case: VIPs owned for what the frame asks (ARP target, NS/NA target).
fn plane(frame: &[u8], ipv6: bool, vrid: u8, src: Option<[u8; 16]>, case: &Case) -> Plane {
    let mut p = Plane {
        now_ns: NOW,
        killed: case.gate == Gate::Killed,
        ..Plane::default()
    };
    let c = p.config_mut();
    c.flags = CFG_F_CONSUME_ADVERTS;
    c.mac = OUR_MAC;
    c.liveness_bound_ns = BOUND;
    c.liveness_ns = match case.gate {
        Gate::Stale => NOW - BOUND - 1,
        _ => NOW - 1,
    };
    p.set_vrid(ipv6, vrid, case.cfg);
    if case.listed
        && let Some(addr) = src
    {
        let key = PeerKey {
            slot: vrid_slot(ipv6, vrid),
            addr,
        };
        p.peers.push((key, case.limits));
    }
    if case.vmac_owned
        && let Some((v6, id)) = at::<6>(frame, 0).and_then(|d| vmac_vrid(&d))
    {
        p.vrid_mut(vrid_slot(v6, id)).flags |= VRID_F_VMAC_OWNED;
    }
    let vip = |router: bool| OwnedVip {
        vrid: 51,
        flags: u8::from(router),
        mac: MAC,
    };
    p.owned4.push((VIP4, vip(false)));
    p.owned6.push((VIP6, vip(false)));
    let arp = ETH_HLEN;
    if let Some(tpa) = at::<4>(frame, arp + 24) {
        p.owned4.push((tpa, vip(false)));
    }
    if case.own_sender
        && let Some(spa) = at::<4>(frame, arp + 14)
    {
        p.owned4.push((spa, vip(false)));
    }
    if let Some(target) = at::<16>(frame, ETH_HLEN + IPV6_HLEN + 8) {
        p.owned6.push((target, vip(case.own_sender)));
    }
    p
}

fn check_case(frame: &[u8], ipv6: bool, case: &Case) {
    let vrid = advert_vrid(frame, ipv6).unwrap_or(0);
    let src = source(frame, ipv6);
    let mut p = plane(frame, ipv6, vrid, src, case);
    let action = p.run(frame);
    let n = |c: u32| p.counters[c as usize];
    let drops: Vec<u32> = (0..counter::COUNT)
        .filter(|&c| counter::is_drop(c) && n(c) != 0)
        .collect();
    let valid = n(counter::ADVERT_VALID) != 0;
    // An advert for a VRID we do not run is counted and passed on (other daemons, tcpdump).
    let foreign = action == Action::Pass && n(counter::DROP_UNKNOWN_VRID) != 0;
    if (action == Action::Drop && !valid) || foreign {
        assert_eq!(drops.len(), 1, "a drop counts one reason: {drops:?}");
        assert_eq!(n(drops[0]), 1);
        assert!(!foreign || drops[0] == counter::DROP_UNKNOWN_VRID);
    } else {
        assert!(drops.is_empty(), "{action:?} counted drops {drops:?}");
    }
    if valid {
        assert!(
            !(case.cfg.flags & VRID_F_UNICAST_PEERS != 0 && !case.listed),
            "an advert from a sender not in PEERS was accepted"
        );
        // TTL 255, or a unicast advert of a unicast instance within its peer's limits.
        let (ttl, multicast) = if ipv6 {
            (at::<1>(frame, ETH_HLEN + 7), at::<1>(frame, ETH_HLEN + 24).map(|d| d[0] == 0xff))
        } else {
            (at::<1>(frame, ETH_HLEN + 8), at::<1>(frame, ETH_HLEN + 16).map(|d| d[0] & 0xf0 == 0xe0))
        };
        let (ttl, multicast) = (ttl.expect("ttl")[0], multicast.expect("dst"));
        assert!(
            ttl == 255
                || (case.cfg.flags & VRID_F_UNICAST_PEERS != 0
                    && !multicast
                    && case.limits.admits(ttl)),
            "TTL {ttl} accepted (multicast {multicast}, limits {:?})",
            case.limits
        );
        // A fresh slot: the advert is news, reported whole.
        let ev = p
            .events
            .iter()
            .find(|e| e.kind == EVENT_ADVERT)
            .expect("a valid advert is reported");
        assert_eq!(ev.data.len(), ev.orig_len, "advert truncated");
        assert_eq!(p.advert(vrid_slot(ipv6, vrid)).count, 1);
        agent_agrees(&ev.data, ipv6, &case.cfg);
    }
    if case.gate != Gate::Fresh {
        assert_ne!(action, Action::Tx, "answered past the dead-man gate");
    }
    let dst = at::<6>(frame, 0);
    let rewrite = case.vmac_owned && dst.and_then(|d| vmac_vrid(&d)).is_some();
    assert_eq!(n(counter::VMAC_TO_HOST), u64::from(rewrite));
    match action {
        Action::Tx => check_tx(frame, &p),
        _ if rewrite => {
            assert_eq!(p.frame[..6], OUR_MAC);
            assert_eq!(p.frame[6..], frame[6..]);
        }
        _ => assert_eq!(p.frame, frame, "a frame not answered was changed"),
    }
}

/// An answer: an ARP reply to an ARP request, or an NA to an NS.
fn check_tx(frame: &[u8], p: &Plane) {
    let out = &p.frame;
    if at::<2>(frame, 12) == Some(ETH_P_ARP.to_be_bytes()) {
        let body = at::<ARP_LEN>(frame, ETH_HLEN).expect("answered ARP has a body");
        let a = Arp::parse(&body).expect("answered ARP parses");
        check_arp_reply(&out[..ETH_HLEN + ARP_LEN], &a);
        assert_eq!(out[ETH_HLEN + ARP_LEN..], frame[ETH_HLEN + ARP_LEN..]);
        assert_eq!(p.counters[counter::ARP_REPLIED as usize], 1);
    } else {
        let na: [u8; NA_FRAME_LEN] = out[..].try_into().expect("an NA is exactly one NA long");
        let eth_src = at::<6>(frame, 6).expect("Ethernet source");
        let ns_src = at::<16>(frame, ETH_HLEN + 8).expect("IPv6 source");
        let target = at::<16>(frame, ETH_HLEN + IPV6_HLEN + 8).expect("NS target");
        check_na(&na, eth_src, target, ns_src);
        assert_eq!(p.counters[counter::NS_REPLIED as usize], 1);
    }
}

/// RFC 826: a reply to the requester, from us, saying the VIP is at MAC.
fn check_arp_reply(reply: &[u8], a: &Arp) {
    assert_eq!(&reply[0..6], &a.sha);
    assert_eq!(&reply[6..12], &MAC);
    assert_eq!(at::<2>(reply, 12), Some(ETH_P_ARP.to_be_bytes()));
    let parsed = at::<ARP_LEN>(reply, ETH_HLEN).and_then(|b| Arp::parse(&b));
    let parsed = parsed.expect("the reply parses as Ethernet/IPv4 ARP");
    assert_eq!(parsed.op, ARPOP_REPLY);
    assert_eq!((parsed.sha, parsed.spa), (MAC, a.tpa));
    assert_eq!((parsed.tha, parsed.tpa), (a.sha, a.spa));
}

/// The program accepted the advert: the agent must accept it too.
fn agent_agrees(packet: &[u8], ipv6: bool, cfg: &VridConfig) {
    let (meta, decoded) = match decode_ip(packet) {
        Ok(d) => d,
        Err(e) => panic!(
            "XDP accepts an advert (cfg {cfg:?}) that the codec refuses: {e} ({})",
            e.kind()
        ),
    };
    let a = &decoded.advert;
    assert_eq!(matches!(meta.src, IpAddr::V6(_)), ipv6, "family");
    let version = if cfg.version() == 2 {
        Version::V2
    } else {
        Version::V3
    };
    assert_eq!(
        a.version, version,
        "XDP accepts another version than configured"
    );
    if version == Version::V2 {
        let want = if cfg.flags & VRID_F_AUTH_PASS != 0 {
            Auth::Pass(cfg.auth_pass)
        } else {
            Auth::None
        };
        assert_eq!(
            a.auth, want,
            "XDP accepts an advert the agent's auth check drops"
        );
        assert_eq!(
            a.interval,
            Centisecs(cfg.interval_cs),
            "XDP accepts an advert the agent's v2 interval check drops"
        );
    }
}

/// `N` bytes of the frame at `off`, to set up the maps the frame would find (not to parse it:
/// the program does that).
fn at<const N: usize>(f: &[u8], off: usize) -> Option<[u8; N]> {
    f.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// The VRID byte of the VRRP header, if the frame is IP.
fn advert_vrid(f: &[u8], ipv6: bool) -> Option<u8> {
    let hlen = if ipv6 {
        IPV6_HLEN
    } else {
        usize::from(at::<1>(f, ETH_HLEN)?[0] & 0x0f) * 4
    };
    Some(at::<1>(f, ETH_HLEN + hlen + 1)?[0])
}

/// The IP source as `PeerKey` holds it (IPv4 in the first 4 bytes).
fn source(f: &[u8], ipv6: bool) -> Option<[u8; 16]> {
    if ipv6 {
        return at::<16>(f, ETH_HLEN + 8);
    }
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&at::<4>(f, ETH_HLEN + 12)?);
    Some(a)
}

/// RFC 4861 §7.2.4: an NA from the VIP, to the soliciting node (all-nodes for DAD), with a
/// checksum that verifies.
fn check_na(na: &[u8; NA_FRAME_LEN], eth_dst: [u8; 6], vip: [u8; 16], ns_src: [u8; 16]) {
    let m = ETH_HLEN + IPV6_HLEN;
    let mut sum = NA_MSG_LEN as u64 + u64::from(IPPROTO_ICMPV6);
    sum += na[ETH_HLEN + 8..]
        .chunks_exact(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u64>();
    assert_eq!(csum_fold(sum), 0, "NA checksum");
    assert_eq!(na[m], ICMPV6_NA);
    assert_eq!(na[ETH_HLEN + 7], ND_HOP_LIMIT);
    assert_eq!(&na[ETH_HLEN + 8..ETH_HLEN + 24], &vip);
    assert_eq!(&na[m + 8..m + 24], &vip);
    if is_unspecified(&ns_src) {
        assert_eq!(&na[0..6], &ALL_NODES_MAC);
        assert_eq!(&na[ETH_HLEN + 24..ETH_HLEN + 40], &ALL_NODES);
    } else {
        assert_eq!(&na[0..6], &eth_dst);
        assert_eq!(&na[ETH_HLEN + 24..ETH_HLEN + 40], &ns_src);
    }
}

/// The builders on whatever the frame holds, valid or not: total functions over fixed arrays.
fn builders(f: &[u8]) {
    let mut b = [0u8; 64];
    let n = f.len().min(b.len());
    b[..n].copy_from_slice(&f[..n]);
    let body: [u8; ARP_LEN] = b[..ARP_LEN].try_into().unwrap_or([0; ARP_LEN]);
    if let Some(a) = Arp::parse(&body) {
        let _ = (a.is_request(), a.is_gratuitous());
        check_arp_reply(&arp_reply(&a, a.tpa, MAC), &a);
    }
    let eth: [u8; 6] = b[0..6].try_into().unwrap_or_default();
    let vip: [u8; 16] = b[6..22].try_into().unwrap_or_default();
    let src: [u8; 16] = b[22..38].try_into().unwrap_or_default();
    let router = b[38] & 1 != 0;
    let na = neighbor_advert(eth, MAC, vip, src, router);
    check_na(&na, eth, vip, src);
    let _ = is_solicited_node(&src);
}
