//! The pure decision the XDP program makes about a VRRP packet, testable on the host.
//!
//! The program extracts [`AdvertFields`] with bounds-checked reads and asks [`classify`]; the
//! checks run in the order of RFC 9568 §7.1 so the reason counted is the first one that fails.

use crate::event::counter;
use crate::maps::{PeerLimits, VRID_F_AUTH_PASS, VRID_F_UNICAST_PEERS, VridConfig};
use crate::wire::{
    VRRP_HEADER_LEN, VRRP_TTL, VRRP_TYPE_ADVERT, VRRP_V2_AUTH_LEN, VRRP_V2_AUTH_NONE,
    VRRP_V2_AUTH_PASS,
};

/// Header fields of a VRRP packet, as read from the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdvertFields {
    pub ipv6: bool,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Sent to a unicast address (ours), not to the VRRP group: with unicast peers its TTL is
    /// the peer's `PeerLimits` business, not held to 255.
    pub unicast: bool,
    /// The IP packet is a fragment (IPv4 MF or offset != 0, or an IPv6 fragment header).
    pub fragment: bool,
    /// Length of the VRRP message according to the IP header.
    pub vrrp_len: u16,
    /// Bytes of the VRRP message actually present in the frame.
    pub captured_len: u16,
    /// First byte of the VRRP header: version (high nibble) and type (low nibble).
    pub version_type: u8,
    pub vrid: u8,
    pub priority: u8,
    /// Count of IPvX addresses.
    pub count: u8,
    /// Bytes 4-5 of the header: v2 auth type and interval in seconds, or v3 reserved bits and
    /// Max Adver Int in centiseconds.
    pub word2: u16,
}

impl AdvertFields {
    #[inline(always)]
    pub const fn version(&self) -> u8 {
        self.version_type >> 4
    }
    #[inline(always)]
    pub const fn kind(&self) -> u8 {
        self.version_type & 0x0f
    }
    /// The advertisement interval in centiseconds: v2 counts whole seconds in byte 5
    /// (RFC 3768 §5.3.7), v3 centiseconds in the low 12 bits (RFC 9568 §5.2.7).
    #[inline(always)]
    pub const fn interval_cs(&self) -> u16 {
        if self.version() == 2 {
            (self.word2 & 0xff) * 100
        } else {
            self.word2 & 0x0fff
        }
    }
    /// v2 authentication type (byte 4, RFC 3768 §5.3.6).
    #[inline(always)]
    pub const fn auth_type(&self) -> u8 {
        (self.word2 >> 8) as u8
    }
}

/// Bytes a VRRP message of this version/family/count occupies (RFC 9568 §5.1, RFC 3768 §5.1).
#[inline(always)]
pub const fn expected_len(version: u8, ipv6: bool, count: u8) -> usize {
    let addr = if ipv6 { 16 } else { 4 };
    let auth = if version == 2 { VRRP_V2_AUTH_LEN } else { 0 };
    VRRP_HEADER_LEN + count as usize * addr + auth
}

/// Checks a VRRP packet against the configuration of its VRID, everything but the
/// checksum and the authentication data (which need the payload bytes).
///
/// Returns `Ok(())` or the `counter::DROP_*` index of the first failed check.
#[inline(always)]
pub const fn classify(f: &AdvertFields, cfg: &VridConfig) -> Result<(), u32> {
    if (f.captured_len as usize) < VRRP_HEADER_LEN {
        return Err(counter::DROP_TRUNCATED);
    }
    if f.fragment {
        return Err(counter::DROP_FRAGMENT);
    }
    // RFC 9568 §7.1: "MUST verify that the IPv4 TTL / IPv6 Hop Limit is 255". keepalived
    // skips it for unicast (a peer may be routed hops away); the peer's range applies then
    // (`ttl_ok`, once the peer is known).
    if f.ttl != VRRP_TTL && !held_to_peer_limits(f, cfg) {
        return Err(counter::DROP_BAD_TTL);
    }
    let version = f.version();
    if version != 2 && version != 3 {
        return Err(counter::DROP_BAD_VERSION);
    }
    // VRRPv2 is IPv4 only (RFC 3768).
    if version == 2 && f.ipv6 {
        return Err(counter::DROP_BAD_VERSION);
    }
    if f.kind() != VRRP_TYPE_ADVERT {
        return Err(counter::DROP_BAD_TYPE);
    }
    if !cfg.is_configured() {
        return Err(counter::DROP_UNKNOWN_VRID);
    }
    if version != cfg.version() && !(version == 2 && cfg.v2_interop()) {
        return Err(counter::DROP_BAD_VERSION);
    }
    // RFC 9568 §7.1: the length must be the header and the addresses it counts, no more
    // (the agent's codec refuses trailing bytes: an advert it refuses must not refresh ADVERTS).
    let need = expected_len(version, f.ipv6, f.count);
    if f.count == 0 || (f.vrrp_len as usize) != need {
        return Err(counter::DROP_BAD_LENGTH);
    }
    if (f.captured_len as usize) < need || f.captured_len < f.vrrp_len {
        return Err(counter::DROP_TRUNCATED);
    }
    // An interval of 0 is refused by the agent's codec too (every timer would fire at once).
    if f.interval_cs() == 0 {
        return Err(counter::DROP_BAD_INTERVAL);
    }
    // RFC 3768 §7.1: a VRRPv2 advert with another interval MUST be discarded.
    if version == 2 && cfg.interval_cs != 0 && f.interval_cs() != cfg.interval_cs {
        return Err(counter::DROP_BAD_INTERVAL);
    }
    // RFC 3768 §7.1: the auth type must be the configured one, as the agent checks it (the
    // password itself is in the payload: `auth_ok`).
    if version == 2 {
        let want = if cfg.flags & VRID_F_AUTH_PASS != 0 {
            VRRP_V2_AUTH_PASS
        } else {
            VRRP_V2_AUTH_NONE
        };
        if f.auth_type() != want {
            return Err(counter::DROP_AUTH);
        }
    }
    Ok(())
}

/// Whether the advert's TTL is checked against its peer's `PeerLimits` rather than held to
/// 255: a unicast advert to an instance with unicast peers.
#[inline(always)]
pub const fn held_to_peer_limits(f: &AdvertFields, cfg: &VridConfig) -> bool {
    f.unicast && cfg.flags & VRID_F_UNICAST_PEERS != 0
}

/// The TTL check once the sender is known to be the peer with `limits` (`classify` held
/// everything else to 255 already).
#[inline(always)]
pub const fn ttl_ok(f: &AdvertFields, cfg: &VridConfig, limits: &PeerLimits) -> bool {
    !held_to_peer_limits(f, cfg) || limits.admits(f.ttl)
}

/// RFC 3768 §5.3.6.1: with simple-password auth, the 8 auth bytes must equal the password.
#[inline(always)]
pub const fn auth_ok(cfg: &VridConfig, auth_type: u8, data: &[u8; 8]) -> bool {
    if cfg.flags & VRID_F_AUTH_PASS == 0 {
        return true;
    }
    if auth_type != VRRP_V2_AUTH_PASS {
        return false;
    }
    let mut i = 0;
    while i < 8 {
        if data[i] != cfg.auth_pass[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// One's-complement sum folding, shared by the XDP program and the agent's codec.
///
/// A fixed number of folds rather than a loop: the verifier cannot bound a data-dependent
/// loop here. Any u64 fits in 16 bits after these four steps.
#[inline(always)]
pub const fn csum_fold(sum: u64) -> u16 {
    let mut s = (sum & 0xffff_ffff) + (sum >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{VRID_F_AUTH_PASS, VRID_F_CONFIGURED, VRID_F_V2};

    fn v3() -> VridConfig {
        VridConfig {
            flags: VRID_F_CONFIGURED,
            ..Default::default()
        }
    }
    fn good() -> AdvertFields {
        AdvertFields {
            ipv6: false,
            ttl: 255,
            unicast: false,
            fragment: false,
            vrrp_len: 12,
            captured_len: 12,
            version_type: 0x31,
            vrid: 51,
            priority: 100,
            count: 1,
            word2: 100,
        }
    }

    #[test]
    fn valid_v3_passes() {
        assert_eq!(classify(&good(), &v3()), Ok(()));
    }

    #[test]
    fn each_check_has_its_reason() {
        let c = v3();
        let cases: [(AdvertFields, u32); 9] = [
            (
                AdvertFields {
                    captured_len: 7,
                    ..good()
                },
                counter::DROP_TRUNCATED,
            ),
            (
                AdvertFields {
                    fragment: true,
                    ..good()
                },
                counter::DROP_FRAGMENT,
            ),
            (AdvertFields { ttl: 64, ..good() }, counter::DROP_BAD_TTL),
            (
                AdvertFields {
                    version_type: 0x41,
                    ..good()
                },
                counter::DROP_BAD_VERSION,
            ),
            (
                AdvertFields {
                    version_type: 0x32,
                    ..good()
                },
                counter::DROP_BAD_TYPE,
            ),
            (
                AdvertFields { count: 0, ..good() },
                counter::DROP_BAD_LENGTH,
            ),
            (
                AdvertFields { count: 2, ..good() },
                counter::DROP_BAD_LENGTH,
            ),
            (
                AdvertFields {
                    vrrp_len: 16,
                    count: 2,
                    ..good()
                },
                counter::DROP_TRUNCATED,
            ),
            (
                AdvertFields {
                    version_type: 0x21,
                    vrrp_len: 20,
                    captured_len: 20,
                    ..good()
                },
                counter::DROP_BAD_VERSION,
            ),
        ];
        for (f, want) in cases {
            assert_eq!(classify(&f, &c), Err(want), "{f:?}");
        }
        assert_eq!(
            classify(&good(), &VridConfig::default()),
            Err(counter::DROP_UNKNOWN_VRID)
        );
    }

    #[test]
    fn unicast_ttl_is_left_to_the_peer_limits() {
        use crate::maps::{PeerLimits, VRID_F_UNICAST_PEERS};
        let uc = VridConfig {
            flags: VRID_F_CONFIGURED | VRID_F_UNICAST_PEERS,
            ..Default::default()
        };
        let f = AdvertFields {
            ttl: 64,
            unicast: true,
            ..good()
        };
        assert_eq!(classify(&f, &uc), Ok(()));
        assert!(ttl_ok(&f, &uc, &PeerLimits::ANY));
        assert!(ttl_ok(&f, &uc, &PeerLimits::new(64, 64)));
        assert!(!ttl_ok(&f, &uc, &PeerLimits::new(65, 255)));
        assert!(!ttl_ok(&f, &uc, &PeerLimits::new(0, 63)));
        // Multicast, or an instance without unicast peers: 255 only.
        let mc = AdvertFields {
            unicast: false,
            ..f
        };
        assert_eq!(classify(&mc, &uc), Err(counter::DROP_BAD_TTL));
        assert_eq!(classify(&f, &v3()), Err(counter::DROP_BAD_TTL));
        assert!(ttl_ok(
            &AdvertFields { ttl: 255, ..mc },
            &uc,
            &PeerLimits::new(0, 1)
        ));
    }

    #[test]
    fn v2_needs_auth_bytes_and_ipv4() {
        let c = VridConfig {
            flags: VRID_F_CONFIGURED | VRID_F_V2,
            ..Default::default()
        };
        let f = AdvertFields {
            version_type: 0x21,
            vrrp_len: 20,
            captured_len: 20,
            ..good()
        };
        assert_eq!(classify(&f, &c), Ok(()));
        let short = AdvertFields {
            vrrp_len: 12,
            captured_len: 12,
            ..f
        };
        assert_eq!(classify(&short, &c), Err(counter::DROP_BAD_LENGTH));
        let v6 = AdvertFields { ipv6: true, ..f };
        assert_eq!(classify(&v6, &c), Err(counter::DROP_BAD_VERSION));
    }

    #[test]
    fn a_v3_instance_in_v2_interop_takes_v2_at_its_own_interval_only() {
        // RFC 9568 §8.4 (checklist item 58): a rolling upgrade from v2 hears both versions.
        let c = VridConfig {
            flags: VRID_F_CONFIGURED | crate::maps::VRID_F_V2_INTEROP,
            interval_cs: 100,
            ..Default::default()
        };
        let v2 = AdvertFields {
            version_type: 0x21,
            vrrp_len: 20,
            captured_len: 20,
            word2: 1,
            ..good()
        };
        assert_eq!(
            classify(&v2, &v3()),
            Err(counter::DROP_BAD_VERSION),
            "not in interop"
        );
        assert_eq!(classify(&v2, &c), Ok(()));
        assert_eq!(classify(&good(), &c), Ok(()), "v3 still");
        let other = AdvertFields { word2: 2, ..v2 };
        assert_eq!(classify(&other, &c), Err(counter::DROP_BAD_INTERVAL));
    }

    /// Adverts the agent's codec or its configuration checks refuse are dropped here too, so
    /// that they cannot refresh `ADVERTS` (the auth type case was found by the `xdp_classify` fuzz
    /// target, the others while writing its model of the program).
    #[test]
    fn what_the_agent_refuses_is_dropped_and_counted() {
        let v3c = v3();
        let trailing = AdvertFields {
            vrrp_len: 14,
            captured_len: 14,
            ..good()
        };
        assert_eq!(classify(&trailing, &v3c), Err(counter::DROP_BAD_LENGTH));
        let zero = AdvertFields { word2: 0, ..good() };
        assert_eq!(classify(&zero, &v3c), Err(counter::DROP_BAD_INTERVAL));
        let reserved_only = AdvertFields {
            word2: 0xf000,
            ..good()
        };
        assert_eq!(
            classify(&reserved_only, &v3c),
            Err(counter::DROP_BAD_INTERVAL)
        );
        // VRRPv2: the auth type must be the configured one (RFC 3768 §7.1).
        let open = VridConfig {
            flags: VRID_F_CONFIGURED | VRID_F_V2,
            interval_cs: 100,
            ..Default::default()
        };
        let with_pass = VridConfig {
            flags: open.flags | VRID_F_AUTH_PASS,
            ..open
        };
        let v2 = |auth_type: u16| AdvertFields {
            version_type: 0x21,
            vrrp_len: 20,
            captured_len: 20,
            word2: (auth_type << 8) | 1,
            ..good()
        };
        assert_eq!(classify(&v2(0), &open), Ok(()));
        assert_eq!(classify(&v2(1), &open), Err(counter::DROP_AUTH));
        assert_eq!(classify(&v2(2), &open), Err(counter::DROP_AUTH));
        assert_eq!(classify(&v2(1), &with_pass), Ok(()));
        assert_eq!(classify(&v2(0), &with_pass), Err(counter::DROP_AUTH));
        let v2_zero = AdvertFields { word2: 0, ..v2(0) };
        assert_eq!(classify(&v2_zero, &open), Err(counter::DROP_BAD_INTERVAL));
    }

    #[test]
    fn password_check() {
        let mut c = VridConfig {
            flags: VRID_F_CONFIGURED | VRID_F_V2 | VRID_F_AUTH_PASS,
            ..Default::default()
        };
        c.auth_pass = *b"1111\0\0\0\0";
        assert!(auth_ok(&c, 1, b"1111\0\0\0\0"));
        assert!(!auth_ok(&c, 1, b"1112\0\0\0\0"));
        assert!(!auth_ok(&c, 0, b"1111\0\0\0\0"));
        let open = VridConfig {
            flags: VRID_F_CONFIGURED | VRID_F_V2,
            ..Default::default()
        };
        assert!(auth_ok(&open, 0, &[0; 8]));
    }

    #[test]
    fn intervals_in_centiseconds() {
        assert_eq!(good().interval_cs(), 100);
        let v3 = AdvertFields {
            word2: 0xf00a,
            ..good()
        };
        assert_eq!(v3.interval_cs(), 10, "reserved bits ignored");
        let v2 = AdvertFields {
            version_type: 0x21,
            word2: 0x0103,
            ..good()
        };
        assert_eq!((v2.interval_cs(), v2.auth_type()), (300, 1));
    }

    #[test]
    fn fold_matches_a_loop() {
        fn slow(mut s: u64) -> u16 {
            while s >> 16 != 0 {
                s = (s & 0xffff) + (s >> 16);
            }
            !(s as u16)
        }
        for s in [
            0,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            u64::MAX,
            0xffff_ffff,
            0x1234_5678_9abc_def0,
        ] {
            assert_eq!(csum_fold(s), slow(s), "{s:#x}");
        }
    }

    #[test]
    fn slots_are_distinct_per_family() {
        use crate::maps::vrid_slot;
        assert_eq!(vrid_slot(false, 51), 51);
        assert_eq!(vrid_slot(true, 51), 307);
        assert!(vrid_slot(true, 255) < crate::maps::VRID_SLOTS);
        assert_eq!(counter::NAMES.len() as u32, counter::COUNT);
    }
}
