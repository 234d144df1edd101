//! The XDP program's decisions on arbitrary Ethernet frames, on the host.
//!
//! The program itself only runs in the kernel, so this target re-traces its parsing
//! (vrrp-ebpf/src/prog.rs: the same offsets, the same bounded reads) around the pure parts it
//! shares with the host, `vrrp_common::verdict` (classify, auth_ok, csum_fold),
//! `vrrp_common::maps` (observe, takes_slot) and `vrrp_common::respond` (the ARP and NA
//! builders). It checks that:
//! - nothing panics or reads out of bounds, whatever the frame says;
//! - a drop is counted under a drop reason;
//! - an advert the program accepts (counts as valid and files into `ADVERTS`, which keeps a
//!   master alive for the agent) is one the agent accepts too: the codec decodes it and the
//!   configuration checks the data plane stands in for (version, password, v2 interval) pass.
//!   Otherwise a malformed advert would change state that the agent would have refused;
//! - the ARP replies and Neighbor Advertisements built are well formed (RFC 826, RFC 4861).

#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use vrrp_agent::proto::codec::decode_ip;
use vrrp_agent::proto::{Auth, Centisecs, Version};
use vrrp_common::event::counter;
use vrrp_common::maps::{
    AdvertState, VRID_F_AUTH_PASS, VRID_F_CONFIGURED, VRID_F_V2, VridConfig, observe, takes_slot,
};
use vrrp_common::respond::{
    ALL_NODES, ALL_NODES_MAC, Arp, NA_FRAME_LEN, NA_MSG_LEN, ND_FIXED_LEN, ND_HOP_LIMIT,
    ND_OPT_SOURCE_LL, ND_OPT_TARGET_LL, arp_reply, is_solicited_node, is_unspecified,
    neighbor_advert,
};
use vrrp_common::verdict::{AdvertFields, auth_ok, classify, csum_fold};
use vrrp_common::wire::{
    ARP_LEN, ARPOP_REPLY, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ICMPV6_NA, ICMPV6_NS,
    IPPROTO_ICMPV6, IPPROTO_VRRP, IPV4_MIN_HLEN, IPV6_HLEN, VRRP_HEADER_LEN,
};
use vrrp_fuzz::fix_checksums;

/// The program's bounds (prog.rs).
const MAX_OFF: usize = 0x3fff;
const MAX_IPV4_HLEN: usize = 60;
const MAX_VRRP_LEN: usize = VRRP_HEADER_LEN + 255 * 16;
const MAX_ND_LEN: usize = 256;
const MAX_ND_OPTIONS: usize = 4;

/// The VIPs the model owns, and its MAC.
const VIP4: [u8; 4] = [192, 0, 2, 100];
const VIP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
const MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x33];
const PASS: [u8; 8] = *b"1111\0\0\0\0";

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// XDP_PASS untouched (includes "cannot parse": the program fails open).
    Pass,
    /// XDP_DROP, counted under this reason.
    Drop(u32),
    /// A valid advert of `ip_len` bytes of IP packet: counted valid, filed into ADVERTS.
    Valid { ip_len: usize },
    /// XDP_TX of this frame.
    Tx(Vec<u8>),
}

fuzz_target!(|frame: &[u8]| {
    check_frame(frame);
    // The same frame with valid IPv4 header and VRRP checksums, to get past those checks.
    if frame.len() > ETH_HLEN {
        let mut fixed = frame.to_vec();
        fix_checksums(&mut fixed[ETH_HLEN..]);
        check_frame(&fixed);
    }
    builders(frame);
});

fn check_frame(frame: &[u8]) {
    let (ipv6, vrid) = match be16(frame, 12) {
        Some(ETH_P_IPV6) => (true, byte(frame, ETH_HLEN + IPV6_HLEN + 1).unwrap_or(0)),
        _ => (false, advert_vrid_v4(frame).unwrap_or(0)),
    };
    for cfg in configs(vrid) {
        let out = xdp(frame, &cfg).unwrap_or(Outcome::Pass);
        match out {
            Outcome::Drop(reason) => {
                assert!(counter::is_drop(reason), "dropped under {reason}")
            }
            Outcome::Valid { ip_len } => agent_agrees(frame, ipv6, ip_len, &cfg),
            Outcome::Tx(ref f) => assert!(f.len() >= 42, "short TX frame"),
            Outcome::Pass => {}
        }
    }
}

/// The VridConfigs the agent writes (daemon.rs): none for an unknown VRID (never for VRID 0),
/// VRRPv3, VRRPv2 with its interval, with and without a password.
fn configs(vrid: u8) -> Vec<VridConfig> {
    let mut v = vec![VridConfig::default()];
    if vrid == 0 {
        return v;
    }
    v.push(VridConfig {
        flags: VRID_F_CONFIGURED,
        ..Default::default()
    });
    for (flags, pass) in [(0, [0; 8]), (VRID_F_AUTH_PASS, PASS)] {
        v.push(VridConfig {
            flags: VRID_F_CONFIGURED | VRID_F_V2 | flags,
            interval_cs: 100,
            auth_pass: pass,
            ..Default::default()
        });
    }
    v
}

/// The program accepted the advert: the agent must accept it too.
fn agent_agrees(frame: &[u8], ipv6: bool, ip_len: usize, cfg: &VridConfig) {
    let packet = frame
        .get(ETH_HLEN..ETH_HLEN + ip_len)
        .expect("a valid advert lies inside the frame");
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

fn byte(f: &[u8], off: usize) -> Option<u8> {
    f.get(off).copied()
}

fn be16(f: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(read::<2>(f, off)?))
}

fn read<const N: usize>(f: &[u8], off: usize) -> Option<[u8; N]> {
    f.get(off..off.checked_add(N)?)?.try_into().ok()
}

fn advert_vrid_v4(f: &[u8]) -> Option<u8> {
    let ihl = usize::from(byte(f, ETH_HLEN)? & 0x0f) * 4;
    byte(f, ETH_HLEN + ihl + 1)
}

// ------------------------------------------------------------------------------------------
// The program, traced (prog.rs, function by function).

fn xdp(f: &[u8], cfg: &VridConfig) -> Option<Outcome> {
    match be16(f, 12)? {
        ETH_P_IP => vrrp_v4(f, cfg),
        ETH_P_IPV6 => ipv6(f, cfg),
        ETH_P_ARP => arp(f),
        _ => Some(Outcome::Pass),
    }
}

fn captured(f: &[u8], off: usize) -> u16 {
    u16::try_from(f.len().saturating_sub(off)).unwrap_or(u16::MAX)
}

fn header_fields(f: &[u8], off: usize) -> AdvertFields {
    match read::<VRRP_HEADER_LEN>(f, off) {
        Some(h) => AdvertFields {
            version_type: h[0],
            vrid: h[1],
            priority: h[2],
            count: h[3],
            word2: u16::from_be_bytes([h[4], h[5]]),
            ..AdvertFields::default()
        },
        None => AdvertFields::default(),
    }
}

fn vrrp_v4(f: &[u8], cfg: &VridConfig) -> Option<Outcome> {
    let ip = ETH_HLEN;
    let vihl = byte(f, ip)?;
    if byte(f, ip + 9)? != IPPROTO_VRRP {
        return Some(Outcome::Pass);
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < IPV4_MIN_HLEN {
        return None;
    }
    let total = usize::from(be16(f, ip + 2)?);
    let frag = be16(f, ip + 6)?;
    let a = AdvertFields {
        ipv6: false,
        ttl: byte(f, ip + 8)?,
        fragment: frag & 0x3fff != 0,
        vrrp_len: total.saturating_sub(ihl) as u16,
        captured_len: captured(f, ip + ihl),
        ..header_fields(f, ip + ihl)
    };
    if csum_fold(sum16(f, ip, ihl, MAX_IPV4_HLEN / 2)?) != 0 {
        return Some(Outcome::Drop(counter::DROP_BAD_IP_HEADER));
    }
    let addrs: [u8; 8] = read(f, ip + 12)?;
    verdict(f, &a, cfg, ip + ihl, sum_words(&addrs), total)
}

fn ipv6(f: &[u8], cfg: &VridConfig) -> Option<Outcome> {
    let ip = ETH_HLEN;
    if byte(f, ip)? >> 4 != 6 {
        return None;
    }
    match byte(f, ip + 6)? {
        IPPROTO_VRRP => vrrp_v6(f, cfg),
        IPPROTO_ICMPV6 => nd(f),
        _ => Some(Outcome::Pass),
    }
}

fn vrrp_v6(f: &[u8], cfg: &VridConfig) -> Option<Outcome> {
    let ip = ETH_HLEN;
    let a = AdvertFields {
        ipv6: true,
        ttl: byte(f, ip + 7)?,
        fragment: false,
        vrrp_len: be16(f, ip + 4)?,
        captured_len: captured(f, ip + IPV6_HLEN),
        ..header_fields(f, ip + IPV6_HLEN)
    };
    let addrs: [u8; 32] = read(f, ip + 8)?;
    let total = IPV6_HLEN + usize::from(a.vrrp_len);
    verdict(f, &a, cfg, ip + IPV6_HLEN, sum_words(&addrs), total)
}

fn verdict(
    f: &[u8],
    a: &AdvertFields,
    cfg: &VridConfig,
    vrrp: usize,
    pseudo_addrs: u64,
    ip_len: usize,
) -> Option<Outcome> {
    if let Err(reason) = classify(a, cfg) {
        return Some(Outcome::Drop(reason));
    }
    let len = usize::from(a.vrrp_len);
    if a.version() == 2 && cfg.flags & VRID_F_AUTH_PASS != 0 {
        let at = vrrp + VRRP_HEADER_LEN + usize::from(a.count) * 4;
        let data: [u8; 8] = read(f, at & MAX_OFF)?;
        if !auth_ok(cfg, a.auth_type(), &data) {
            return Some(Outcome::Drop(counter::DROP_AUTH));
        }
    }
    let sum = sum16(f, vrrp, len, MAX_VRRP_LEN / 2)?;
    let with_pseudo = sum + pseudo_addrs + len as u64 + u64::from(IPPROTO_VRRP);
    let ok = if a.version() == 2 {
        csum_fold(sum) == 0
    } else if a.ipv6 {
        csum_fold(with_pseudo) == 0
    } else {
        csum_fold(with_pseudo) == 0 || csum_fold(sum) == 0
    };
    if !ok {
        return Some(Outcome::Drop(counter::DROP_BAD_CHECKSUM));
    }
    deliver(a);
    Some(Outcome::Valid { ip_len })
}

/// The slot logic on a few states (pure: only for panics).
fn deliver(a: &AdvertFields) {
    let advert = AdvertState {
        priority: a.priority,
        version: a.version(),
        interval_cs: a.interval_cs(),
        ..AdvertState::default()
    };
    for state in [
        AdvertState::default(),
        AdvertState {
            last_ns: 1,
            ..advert
        },
        AdvertState {
            last_ns: u64::MAX,
            priority: a.priority.wrapping_add(1),
            interval_cs: u16::MAX,
            ..advert
        },
    ] {
        for now in [0, 1, u64::MAX] {
            let _ = observe(&state, &advert, now);
            let _ = takes_slot(&state, &advert, now);
        }
    }
}

fn sum_words<const N: usize>(b: &[u8; N]) -> u64 {
    b.chunks_exact(2)
        .map(|w| u64::from(u16::from_be_bytes([w[0], w[1]])))
        .sum()
}

fn sum16(f: &[u8], off: usize, len: usize, maxw: usize) -> Option<u64> {
    let mut sum = 0u64;
    let words = len / 2;
    let mut i = 0;
    while i < maxw {
        if i >= words {
            break;
        }
        sum += u64::from(be16(f, (off + i * 2) & MAX_OFF)?);
        i += 1;
    }
    if len % 2 == 1 {
        let w = be16(f, (off + len - 2) & MAX_OFF)?;
        sum += u64::from(w & 0xff) << 8;
    }
    Some(sum)
}

fn arp(f: &[u8]) -> Option<Outcome> {
    let body: [u8; ARP_LEN] = read(f, ETH_HLEN)?;
    let a = Arp::parse(&body)?;
    if a.spa == VIP4 && a.sha != MAC {
        return Some(Outcome::Pass); // conflict, reported
    }
    if !a.is_request() || a.is_gratuitous() || a.tpa != VIP4 {
        return Some(Outcome::Pass);
    }
    let reply = arp_reply(&a, a.tpa, MAC);
    // RFC 826: a reply to the requester, from us, saying the VIP is at MAC.
    assert_eq!(&reply[0..6], &a.sha);
    assert_eq!(&reply[6..12], &MAC);
    assert_eq!(be16(&reply, 12), Some(ETH_P_ARP));
    let parsed = read::<ARP_LEN>(&reply, ETH_HLEN).and_then(|b| Arp::parse(&b));
    let parsed = parsed.expect("the reply parses as Ethernet/IPv4 ARP");
    assert_eq!(parsed.op, ARPOP_REPLY);
    assert_eq!((parsed.sha, parsed.spa), (MAC, VIP4));
    assert_eq!((parsed.tha, parsed.tpa), (a.sha, a.spa));
    let mut out = f.to_vec();
    out.get_mut(..reply.len())?.copy_from_slice(&reply);
    Some(Outcome::Tx(out))
}

enum LlOption {
    Absent,
    Found([u8; 6]),
    Invalid,
}

fn ll_option(f: &[u8], start: usize, end: usize, want: u8) -> Option<LlOption> {
    let mut off = start;
    for _ in 0..MAX_ND_OPTIONS {
        if off + 8 > end {
            return Some(LlOption::Absent);
        }
        let o: [u8; 8] = read(f, off & MAX_OFF)?;
        if o[1] == 0 {
            return Some(LlOption::Invalid);
        }
        if o[0] == want {
            return Some(LlOption::Found([o[2], o[3], o[4], o[5], o[6], o[7]]));
        }
        off += usize::from(o[1]) * 8;
    }
    Some(LlOption::Absent)
}

fn nd(f: &[u8]) -> Option<Outcome> {
    let ip = ETH_HLEN;
    let m = ip + IPV6_HLEN;
    let hdr: [u8; IPV6_HLEN] = read(f, ip)?;
    let fixed: [u8; ND_FIXED_LEN] = read(f, m)?;
    let kind = fixed[0];
    if kind != ICMPV6_NS && kind != ICMPV6_NA {
        return Some(Outcome::Pass);
    }
    let plen = usize::from(u16::from_be_bytes([hdr[4], hdr[5]]));
    if hdr[7] != ND_HOP_LIMIT || fixed[1] != 0 || !(ND_FIXED_LEN..=MAX_ND_LEN).contains(&plen) {
        return Some(Outcome::Pass);
    }
    if usize::from(captured(f, m)) < plen {
        return Some(Outcome::Pass);
    }
    let target: [u8; 16] = fixed[8..24].try_into().ok()?;
    if target[0] == 0xff || target != VIP6 {
        return Some(Outcome::Pass);
    }
    let addrs: [u8; 32] = hdr[8..40].try_into().ok()?;
    let sum = sum_words(&addrs)
        + plen as u64
        + u64::from(IPPROTO_ICMPV6)
        + sum16(f, m, plen, MAX_ND_LEN / 2)?;
    if csum_fold(sum) != 0 {
        return Some(Outcome::Pass);
    }
    let opts = m + ND_FIXED_LEN;
    let end = m + plen;
    if kind == ICMPV6_NA {
        // Another node's link-layer address for our VIP is a conflict, reported; the stack
        // gets the NA either way.
        if let LlOption::Found(mac) = ll_option(f, opts, end, ND_OPT_TARGET_LL)? {
            let _conflict = mac != MAC;
        }
        return Some(Outcome::Pass);
    }
    let src: [u8; 16] = hdr[8..24].try_into().ok()?;
    if is_unspecified(&src) {
        let dst: [u8; 16] = hdr[24..40].try_into().ok()?;
        if !is_solicited_node(&dst) {
            return Some(Outcome::Pass);
        }
        match ll_option(f, opts, end, ND_OPT_SOURCE_LL)? {
            LlOption::Absent => {}
            _ => return Some(Outcome::Pass),
        }
    } else if let LlOption::Invalid = ll_option(f, opts, end, ND_OPT_SOURCE_LL)? {
        return Some(Outcome::Pass);
    }
    let eth_src: [u8; 6] = read(f, 6)?;
    let na = neighbor_advert(eth_src, MAC, target, src, false);
    check_na(&na, eth_src, target, src);
    Some(Outcome::Tx(na.to_vec()))
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
        let _ = arp_reply(&a, a.tpa, MAC);
    }
    let eth: [u8; 6] = b[0..6].try_into().unwrap_or_default();
    let vip: [u8; 16] = b[6..22].try_into().unwrap_or_default();
    let src: [u8; 16] = b[22..38].try_into().unwrap_or_default();
    let router = b[38] & 1 != 0;
    let na = neighbor_advert(eth, MAC, vip, src, router);
    check_na(&na, eth, vip, src);
    let _ = is_solicited_node(&src);
}
