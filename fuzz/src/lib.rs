//! Helpers shared by the fuzz targets.
//!
//! Random bytes almost never carry a valid checksum, so a fuzzer stops at the checksum check
//! and never reaches what lies behind it. [`fix_checksums`] rewrites the IPv4 header checksum
//! and the VRRP checksum of an IP packet, [`fix_icmpv6_checksum`] the ICMPv6 one; the targets
//! run each input as it is and fixed.

/// RFC 1071 sum of big-endian words (an odd last byte padded with zero), unfolded.
pub fn sum16(b: &[u8]) -> u64 {
    b.chunks(2)
        .map(|c| {
            u64::from(u16::from_be_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum()
}

fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Rewrites the IPv4 header checksum and the VRRP checksum of the IP packet `p` (no Ethernet
/// header) as a sender would compute them: VRRPv2 over the message only (RFC 3768 §5.3.8),
/// VRRPv3 with the pseudo-header (RFC 9568 §5.2.8 as keepalived reads it for IPv4; the only
/// form for IPv6). Bytes it cannot make sense of are left alone.
pub fn fix_checksums(p: &mut [u8]) {
    let Some(&first) = p.first() else { return };
    let (hlen, end, pseudo) = match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl {
                return;
            }
            p[10] = 0;
            p[11] = 0;
            let c = fold(sum16(&p[..ihl])).to_be_bytes();
            p[10..12].copy_from_slice(&c);
            let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
            (ihl, total.min(p.len()), sum16(&p[12..20]))
        }
        6 => {
            if p.len() < 40 {
                return;
            }
            let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
            (40, (40 + plen).min(p.len()), sum16(&p[8..40]))
        }
        _ => return,
    };
    if end < hlen + 8 {
        return;
    }
    let msg = &mut p[hlen..end];
    msg[6] = 0;
    msg[7] = 0;
    let mut sum = sum16(msg);
    if msg[0] >> 4 != 2 {
        sum += pseudo + msg.len() as u64 + 112;
    }
    let c = fold(sum).to_be_bytes();
    msg[6..8].copy_from_slice(&c);
}

/// Rewrites the ICMPv6 checksum of the IPv6 packet `p` (no Ethernet header) over the
/// pseudo-header (RFC 4443 §2.3), so that Neighbor Discovery gets past its checksum check.
/// Anything else is left alone.
pub fn fix_icmpv6_checksum(p: &mut [u8]) {
    if p.len() < 44 || p[0] >> 4 != 6 || p[6] != 58 {
        return;
    }
    let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
    let end = (40 + plen).min(p.len());
    let pseudo = sum16(&p[8..40]) + plen as u64 + 58;
    let msg = &mut p[40..end];
    if msg.len() < 4 {
        return;
    }
    msg[2] = 0;
    msg[3] = 0;
    let c = fold(sum16(msg) + pseudo).to_be_bytes();
    msg[2..4].copy_from_slice(&c);
}
