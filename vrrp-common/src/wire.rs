//! Wire constants (RFC 9568 §5, RFC 3768 §5, RFC 826, RFC 4861).

/// IP protocol number of VRRP (RFC 9568 §5.1.1.4).
pub const IPPROTO_VRRP: u8 = 112;
/// IPv4 multicast group for adverts (RFC 9568 §5.1.1.2).
pub const VRRP_GROUP_V4: [u8; 4] = [224, 0, 0, 18];
/// IPv6 multicast group for adverts, ff02::12 (RFC 9568 §5.1.2.2).
pub const VRRP_GROUP_V6: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12];
/// Adverts must be sent with TTL / hop limit 255 and dropped otherwise (RFC 9568 §7.1).
pub const VRRP_TTL: u8 = 255;
/// VRRP packet type ADVERTISEMENT, the only type defined.
pub const VRRP_TYPE_ADVERT: u8 = 1;
/// Fixed VRRP header: version/type, VRID, priority, count, (auth, adv int) or max adv int, checksum.
pub const VRRP_HEADER_LEN: usize = 8;
/// VRRPv2 carries 8 bytes of authentication data after the addresses (RFC 3768 §5.3.10).
pub const VRRP_V2_AUTH_LEN: usize = 8;
/// RFC 3768 §5.3.6: type 1 is "simple text password".
pub const VRRP_V2_AUTH_NONE: u8 = 0;
pub const VRRP_V2_AUTH_PASS: u8 = 1;

/// Virtual MAC prefixes 00-00-5E-00-01-{VRID} (IPv4) and 00-00-5E-00-02-{VRID} (IPv6).
pub const VMAC_PREFIX_V4: [u8; 5] = [0x00, 0x00, 0x5e, 0x00, 0x01];
pub const VMAC_PREFIX_V6: [u8; 5] = [0x00, 0x00, 0x5e, 0x00, 0x02];

pub const ETH_HLEN: usize = 14;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

pub const IPV4_MIN_HLEN: usize = 20;
pub const IPV6_HLEN: usize = 40;
pub const IPPROTO_ICMPV6: u8 = 58;

/// ARP over Ethernet for IPv4 (RFC 826): fixed 28-byte body.
pub const ARP_LEN: usize = 28;
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPOP_REQUEST: u16 = 1;
pub const ARPOP_REPLY: u16 = 2;

/// ICMPv6 Neighbor Solicitation / Advertisement (RFC 4861 §4.3, §4.4).
pub const ICMPV6_NS: u8 = 135;
pub const ICMPV6_NA: u8 = 136;

/// The virtual MAC of a VRID for a family (RFC 9568 §7.3).
pub const fn vmac(ipv6: bool, vrid: u8) -> [u8; 6] {
    let p = if ipv6 { VMAC_PREFIX_V6 } else { VMAC_PREFIX_V4 };
    [p[0], p[1], p[2], p[3], p[4], vrid]
}

/// The (IPv6?, VRID) of a VRRP virtual MAC (RFC 9568 §7.3), or `None` for any other MAC.
#[inline(always)]
pub const fn vmac_vrid(mac: &[u8; 6]) -> Option<(bool, u8)> {
    if mac[0] != 0x00 || mac[1] != 0x00 || mac[2] != 0x5e || mac[3] != 0x00 || mac[5] == 0 {
        return None;
    }
    match mac[4] {
        0x01 => Some((false, mac[5])),
        0x02 => Some((true, mac[5])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmac_round_trip() {
        assert_eq!(vmac_vrid(&vmac(false, 51)), Some((false, 51)));
        assert_eq!(vmac_vrid(&vmac(true, 255)), Some((true, 255)));
        // VRID 0 does not exist; other OUI or type bytes are not VRRP.
        assert_eq!(vmac_vrid(&[0, 0, 0x5e, 0, 1, 0]), None);
        assert_eq!(vmac_vrid(&[0, 0, 0x5e, 0, 3, 1]), None);
        assert_eq!(vmac_vrid(&[2, 0, 0x5e, 0, 1, 1]), None);
    }
}
