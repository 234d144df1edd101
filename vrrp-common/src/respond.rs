//! The ARP and Neighbor Discovery answers the XDP program gives for owned VIPs, as pure
//! functions over fixed-size arrays (the program reads the request into one, rewrites it
//! here, and writes it back), testable on the host.

use crate::verdict::csum_fold;
use crate::wire::{
    ARP_LEN, ARPHRD_ETHER, ARPOP_REPLY, ARPOP_REQUEST, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6,
    ICMPV6_NA, IPPROTO_ICMPV6, IPV6_HLEN,
};

/// An ARP frame over Ethernet without padding (RFC 826).
pub const ARP_FRAME_LEN: usize = ETH_HLEN + ARP_LEN;
/// An NA with one Target Link-Layer Address option: 24 + 8 bytes (RFC 4861 §4.4).
pub const NA_MSG_LEN: usize = 32;
/// Ethernet + IPv6 + the NA.
pub const NA_FRAME_LEN: usize = ETH_HLEN + IPV6_HLEN + NA_MSG_LEN;
/// The fixed part of an NS or NA, before options: type, code, checksum, 4 bytes, target.
pub const ND_FIXED_LEN: usize = 24;
/// RFC 4861 §7.1: ND messages are sent, and accepted, only with hop limit 255.
pub const ND_HOP_LIMIT: u8 = 255;
/// ND option types (RFC 4861 §4.6.1).
pub const ND_OPT_SOURCE_LL: u8 = 1;
pub const ND_OPT_TARGET_LL: u8 = 2;
/// NA flags (RFC 4861 §4.4).
pub const NA_FLAG_ROUTER: u8 = 0x80;
pub const NA_FLAG_SOLICITED: u8 = 0x40;
pub const NA_FLAG_OVERRIDE: u8 = 0x20;
/// ff02::1, all nodes (RFC 4291 §2.7.1), and its Ethernet mapping (RFC 2464 §7).
pub const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// The fields of an Ethernet/IPv4 ARP packet (RFC 826), read from a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

impl Arp {
    /// Parses the ARP body (the 28 bytes after the Ethernet header). `None` unless it is
    /// Ethernet hardware, IPv4 protocol, 6/4-byte addresses (RFC 826 "Packet Reception":
    /// check hardware and protocol type and lengths first).
    #[inline(always)]
    pub const fn parse(b: &[u8; ARP_LEN]) -> Option<Self> {
        let htype = u16::from_be_bytes([b[0], b[1]]);
        let ptype = u16::from_be_bytes([b[2], b[3]]);
        if htype != ARPHRD_ETHER || ptype != ETH_P_IP || b[4] != 6 || b[5] != 4 {
            return None;
        }
        Some(Self {
            op: u16::from_be_bytes([b[6], b[7]]),
            sha: [b[8], b[9], b[10], b[11], b[12], b[13]],
            spa: [b[14], b[15], b[16], b[17]],
            tha: [b[18], b[19], b[20], b[21], b[22], b[23]],
            tpa: [b[24], b[25], b[26], b[27]],
        })
    }

    #[inline(always)]
    pub const fn is_request(&self) -> bool {
        self.op == ARPOP_REQUEST
    }

    /// An ARP announcement / gratuitous ARP: sender and target protocol addresses equal
    /// (RFC 5227 §3). It asks nothing, so it gets no reply.
    #[inline(always)]
    pub const fn is_gratuitous(&self) -> bool {
        u32::from_ne_bytes(self.spa) == u32::from_ne_bytes(self.tpa)
    }
}

/// The reply to an ARP request for `vip`, answered with `mac` (RFC 826 "Packet Reception":
/// swap hardware and protocol fields, put the local hardware and protocol addresses in the
/// sender fields, set the opcode to reply, send it to the requester's hardware address).
///
/// Ethernet: to the requester's sha, from `mac`. A probe from 0.0.0.0 (RFC 5227 §2.1.1) gets
/// tpa 0.0.0.0, as Linux answers it.
#[inline(always)]
pub const fn arp_reply(req: &Arp, vip: [u8; 4], mac: [u8; 6]) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    put(&mut f, 0, &req.sha);
    put(&mut f, 6, &mac);
    put(&mut f, 12, &ETH_P_ARP.to_be_bytes());
    put(&mut f, 14, &ARPHRD_ETHER.to_be_bytes());
    put(&mut f, 16, &ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    put(&mut f, 20, &ARPOP_REPLY.to_be_bytes());
    put(&mut f, 22, &mac);
    put(&mut f, 28, &vip);
    put(&mut f, 32, &req.sha);
    put(&mut f, 38, &req.spa);
    f
}

/// The Neighbor Advertisement answering a Neighbor Solicitation for `vip` (RFC 4861 §7.2.4):
///
/// - from the VIP, with hop limit 255, to the solicitation's source with Solicited set; or,
///   when that source is the unspecified address (Duplicate Address Detection), to all-nodes
///   ff02::1 with Solicited clear;
/// - Override set (the VIP is ours to claim), Router when `router`;
/// - target the VIP, one Target Link-Layer Address option carrying `mac`;
/// - Ethernet from `mac` to `eth_dst` (the solicitation's Ethernet source; 33:33:00:00:00:01
///   for DAD), and the ICMPv6 checksum over the pseudo-header (RFC 8200 §8.1).
#[inline(always)]
pub const fn neighbor_advert(
    eth_dst: [u8; 6],
    mac: [u8; 6],
    vip: [u8; 16],
    ns_src: [u8; 16],
    router: bool,
) -> [u8; NA_FRAME_LEN] {
    let dad = is_unspecified(&ns_src);
    let (dst, eth_dst, solicited) = if dad {
        (ALL_NODES, ALL_NODES_MAC, 0)
    } else {
        (ns_src, eth_dst, NA_FLAG_SOLICITED)
    };
    let mut f = [0u8; NA_FRAME_LEN];
    put(&mut f, 0, &eth_dst);
    put(&mut f, 6, &mac);
    put(&mut f, 12, &ETH_P_IPV6.to_be_bytes());
    let ip = ETH_HLEN;
    f[ip] = 0x60; // version 6, traffic class 0, flow label 0
    put(&mut f, ip + 4, &(NA_MSG_LEN as u16).to_be_bytes());
    f[ip + 6] = IPPROTO_ICMPV6;
    f[ip + 7] = ND_HOP_LIMIT;
    put(&mut f, ip + 8, &vip);
    put(&mut f, ip + 24, &dst);
    let m = ip + IPV6_HLEN;
    f[m] = ICMPV6_NA;
    f[m + 4] = NA_FLAG_OVERRIDE | solicited | if router { NA_FLAG_ROUTER } else { 0 };
    put(&mut f, m + 8, &vip);
    f[m + 24] = ND_OPT_TARGET_LL;
    f[m + 25] = 1; // in units of 8 bytes
    put(&mut f, m + 26, &mac);
    // Pseudo-header (source, destination, length, next header) and the message.
    let mut sum = NA_MSG_LEN as u64 + IPPROTO_ICMPV6 as u64;
    let mut i = ip + 8;
    while i < NA_FRAME_LEN {
        sum += u16::from_be_bytes([f[i], f[i + 1]]) as u64;
        i += 2;
    }
    let c = csum_fold(sum).to_be_bytes();
    f[m + 2] = c[0];
    f[m + 3] = c[1];
    f
}

/// The unspecified address `::`.
#[inline(always)]
pub const fn is_unspecified(a: &[u8; 16]) -> bool {
    let mut i = 0;
    while i < 16 {
        if a[i] != 0 {
            return false;
        }
        i += 1;
    }
    true
}

/// A solicited-node multicast address, ff02::1:ffXX:XXXX (RFC 4291 §2.7.1).
#[inline(always)]
pub const fn is_solicited_node(a: &[u8; 16]) -> bool {
    const P: [u8; 13] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff];
    let mut i = 0;
    while i < 13 {
        if a[i] != P[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[inline(always)]
const fn put<const N: usize, const M: usize>(f: &mut [u8; N], at: usize, b: &[u8; M]) {
    let mut i = 0;
    while i < M {
        f[at + i] = b[i];
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: Arp = Arp {
        op: ARPOP_REQUEST,
        sha: [2, 0, 0, 0, 0, 2],
        spa: [192, 0, 2, 2],
        tha: [0; 6],
        tpa: [192, 0, 2, 100],
    };

    #[test]
    fn arp_parse_and_reply() {
        let mut body = [0u8; ARP_LEN];
        body[..8].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        body[8..14].copy_from_slice(&REQ.sha);
        body[14..18].copy_from_slice(&REQ.spa);
        body[24..28].copy_from_slice(&REQ.tpa);
        assert_eq!(Arp::parse(&body), Some(REQ));
        let mut bad = body;
        bad[5] = 16;
        assert_eq!(Arp::parse(&bad), None);
        let mac = [0, 0, 0x5e, 0, 1, 51];
        let r = arp_reply(&REQ, REQ.tpa, mac);
        assert_eq!(&r[0..6], &REQ.sha);
        assert_eq!(&r[6..12], &mac);
        assert_eq!(&r[20..22], &[0, 2]);
        assert_eq!(&r[22..28], &mac);
        assert_eq!(&r[28..32], &REQ.tpa);
        assert_eq!(&r[32..38], &REQ.sha);
        assert_eq!(&r[38..42], &REQ.spa);
        assert!(!REQ.is_gratuitous());
    }

    fn verify(f: &[u8; NA_FRAME_LEN]) -> u16 {
        let mut sum = NA_MSG_LEN as u64 + IPPROTO_ICMPV6 as u64;
        for w in f[ETH_HLEN + 8..].chunks(2) {
            sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        csum_fold(sum)
    }

    #[test]
    fn na_solicited_and_dad() {
        let vip = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x64,
        ];
        let src = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let peer = [2, 0, 0, 0, 0, 2];
        let mac = [2, 0, 0, 0, 0, 1];
        let na = neighbor_advert(peer, mac, vip, src, false);
        assert_eq!(verify(&na), 0);
        assert_eq!(&na[0..6], &peer);
        assert_eq!(na[54 + 4], NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE);
        assert_eq!(&na[38..54], &src);
        let dad = neighbor_advert(peer, mac, vip, [0; 16], true);
        assert_eq!(verify(&dad), 0);
        assert_eq!(&dad[0..6], &ALL_NODES_MAC);
        assert_eq!(&dad[38..54], &ALL_NODES);
        assert_eq!(dad[54 + 4], NA_FLAG_ROUTER | NA_FLAG_OVERRIDE);
        assert!(is_solicited_node(&[
            0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0x64
        ]));
        assert!(!is_solicited_node(&ALL_NODES));
    }
}
