//! Vectors and cases of keepalived 2.4.3's own `test/auth_hmac_test.c` (the draft appendix
//! images: key 00..1f, VRID 51, priority 200, sequence 0x6800000080000000), plus the
//! behaviour of each mode, key rotation and the replay marks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::proto::codec::{self, RxMeta};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const IPV4_VEC: &str = concat!(
    "3133c80100644402c0000264",
    "010100006800000080000000",
    "1b84bc4e8e43892dc6d98448f8ee2265"
);
const IPV6_VEC: &str = concat!(
    "3133c8010064a2e9",
    "fe800000000000000000000000000100",
    "010100006800000080000000",
    "c8c56146ebfd66ee10ec4d8186461b78"
);

fn key() -> Vec<u8> {
    (0u8..32).collect()
}

fn cfg(anti_replay: AntiReplay, mode: Mode) -> HmacConfig {
    HmacConfig {
        keys: [(1, key())].into_iter().collect(),
        active_key: 1,
        mode,
        anti_replay,
        time_window: 5,
    }
}

fn vrid() -> Vrid {
    Vrid::new(51).unwrap()
}

fn v6src() -> IpAddr {
    IpAddr::V6("fe80::10".parse::<Ipv6Addr>().unwrap())
}

fn v4src() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10))
}

fn state(family: Family, anti_replay: AntiReplay) -> HmacState {
    HmacState::new(cfg(anti_replay, Mode::Enforce), family, Version::V3, vrid())
}

fn split(img: &[u8], mlen: usize) -> (&[u8], [u8; TRAILER_LEN]) {
    let mut t = [0u8; TRAILER_LEN];
    t.copy_from_slice(&img[mlen..]);
    (&img[..mlen], t)
}

/// The time of the vectors' sequence (0x68000000 s + 1/2 s).
fn vec_time() -> WallTime {
    WallTime {
        secs: 0x6800_0000,
        nanos: 500_000_000,
    }
}

#[test]
fn keepalived_appendix_vectors_verify() {
    for (img, family, src, mlen) in [
        (hex(IPV4_VEC), Family::V4, v4src(), 12),
        (hex(IPV6_VEC), Family::V6, v6src(), 24),
    ] {
        let (pdu, t) = split(&img, mlen);
        let mut st = state(family, AntiReplay::Monotonic);
        assert_eq!(
            st.verify(vec_time(), src, pdu, Some(&t), None),
            Ok(Verified::Signed {
                key_id: 1,
                skew: None
            }),
            "{family:?}"
        );
    }
}

#[test]
fn signing_reproduces_the_appendix_vectors() {
    for (img, family, src, mlen) in [
        (hex(IPV4_VEC), Family::V4, v4src(), 12),
        (hex(IPV6_VEC), Family::V6, v6src(), 24),
    ] {
        let mut st = state(family, AntiReplay::Monotonic);
        let t = st.sign(vec_time(), src, &img[..mlen]).unwrap();
        assert_eq!(&t[..], &img[mlen..], "{family:?}");
    }
}

#[test]
fn ipv6_vector_checksum_covers_the_trailer() {
    // The image's checksum is the kernel's for destination fe80::20 over the whole payload.
    let img = hex(IPV6_VEC);
    let mut again = img.clone();
    let dst = IpAddr::V6("fe80::20".parse().unwrap());
    codec::rechecksum_v6(&mut again, v6src(), dst);
    assert_eq!(again, img);
    let meta = RxMeta {
        src: v6src(),
        dst,
        ttl: 255,
    };
    let (d, signed) = codec::decode_signed(&meta, &img).unwrap();
    assert_eq!(d.advert.priority.get(), 200);
    let signed = signed.unwrap();
    assert_eq!(signed.pdu, &img[..24]);
    assert_eq!(&signed.trailer[..], &img[24..]);
    // Without the trailer the same bytes are too long for plain decode.
    assert!(matches!(
        codec::decode(&meta, &img),
        Err(codec::DecodeError::LengthMismatch { .. })
    ));
}

#[test]
fn ipv4_vector_decodes_with_its_message_only_checksum() {
    let img = hex(IPV4_VEC);
    let meta = RxMeta {
        src: v4src(),
        dst: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        ttl: 255,
    };
    let (d, signed) = codec::decode_signed(&meta, &img).unwrap();
    assert_eq!(d.checksum, codec::ChecksumForm::WithoutPseudoHeader);
    assert!(signed.is_some());
}

#[test]
fn keepalived_mutations() {
    // (offset flipped in the IPv6 image, expected outcome), as auth_hmac_test.c.
    let cases: [(usize, Result<(), Reject>); 10] = [
        (2, Err(Reject::BadHmac)),                   // priority
        (4, Err(Reject::BadHmac)),                   // advert interval
        (6, Ok(())),                                 // checksum (read as zero)
        (8 + 15, Err(Reject::BadHmac)),              // the VIP
        (24, Err(Reject::Malformed)),                // ext type
        (25, Err(Reject::UnknownKey { key_id: 0 })), // key id 1 -> 0
        (26, Err(Reject::Malformed)),                // reserved
        (28, Err(Reject::BadHmac)),                  // seconds
        (34, Err(Reject::BadHmac)),                  // counter
        (36, Err(Reject::BadHmac)),                  // hmac
    ];
    let img = hex(IPV6_VEC);
    for (off, want) in cases {
        let mut buf = img.clone();
        buf[off] ^= 1;
        let (pdu, t) = split(&buf, 24);
        let mut st = state(Family::V6, AntiReplay::Monotonic);
        let got = st
            .verify(vec_time(), v6src(), pdu, Some(&t), None)
            .map(|_| ());
        assert_eq!(got, want, "offset {off}");
    }
    // The pseudo header binds the source and the VRID.
    let (pdu, t) = split(&img, 24);
    let mut st = state(Family::V6, AntiReplay::Monotonic);
    let other = IpAddr::V6("fe80::20".parse().unwrap());
    assert_eq!(
        st.verify(vec_time(), other, pdu, Some(&t), None),
        Err(Reject::BadHmac)
    );
    let mut st = HmacState::new(
        cfg(AntiReplay::Monotonic, Mode::Enforce),
        Family::V6,
        Version::V3,
        Vrid::new(52).unwrap(),
    );
    assert_eq!(
        st.verify(vec_time(), v6src(), pdu, Some(&t), None),
        Err(Reject::BadHmac)
    );
}

fn pdu6() -> Vec<u8> {
    hex(IPV6_VEC)[..24].to_vec()
}

fn at(secs: u64) -> WallTime {
    WallTime { secs, nanos: 0 }
}

#[test]
fn replay_is_refused_and_a_second_receiver_accepts_the_same_copy() {
    let now = at(1_800_000_000);
    let mut tx = state(Family::V6, AntiReplay::Time);
    let t = tx.sign(now, v6src(), &pdu6()).unwrap();
    let mut rx = state(Family::V6, AntiReplay::Time);
    assert!(rx.verify(now, v6src(), &pdu6(), Some(&t), None).is_ok());
    assert_eq!(
        rx.verify(now, v6src(), &pdu6(), Some(&t), None),
        Err(Reject::Replay)
    );
    let mut rx2 = state(Family::V6, AntiReplay::Time);
    assert!(rx2.verify(now, v6src(), &pdu6(), Some(&t), None).is_ok());
    // The next advert in the same instant grows by its counter.
    let t2 = tx.sign(now, v6src(), &pdu6()).unwrap();
    assert_eq!(
        Trailer::parse(&t2).seq,
        Trailer::parse(&t).seq + 1,
        "counter"
    );
    assert!(rx.verify(now, v6src(), &pdu6(), Some(&t2), None).is_ok());
}

#[test]
fn freshness_window_sheds_old_and_future_stamps() {
    let now = at(1_800_000_000);
    let mut tx = state(Family::V6, AntiReplay::Time);
    let t = tx.sign(now, v6src(), &pdu6()).unwrap();
    let mut rx = state(Family::V6, AntiReplay::Time);
    assert_eq!(
        rx.verify(at(1_800_000_100), v6src(), &pdu6(), Some(&t), None),
        Err(Reject::Stale {
            skew: 100,
            window: 5
        })
    );
    assert_eq!(
        rx.verify(at(1_799_999_900), v6src(), &pdu6(), Some(&t), None),
        Err(Reject::Stale {
            skew: -100,
            window: 5
        })
    );
    // Monotonic: no window, only growth.
    let mut rx = state(Family::V6, AntiReplay::Monotonic);
    let mut tx = state(Family::V6, AntiReplay::Monotonic);
    let t = tx.sign(now, v6src(), &pdu6()).unwrap();
    assert!(
        rx.verify(at(1_800_000_100), v6src(), &pdu6(), Some(&t), None)
            .is_ok()
    );
}

#[test]
fn time_mode_resets_a_stranded_sequence_monotonic_keeps_growing() {
    let now = at(1_800_000_000);
    let mut tx = state(Family::V6, AntiReplay::Time);
    tx.send_seq = (1_800_003_600u64) << 32;
    let t = Trailer::parse(&tx.sign(now, v6src(), &pdu6()).unwrap());
    assert_eq!((t.seq >> 32) as u32, 1_800_000_000);
    let mut tx = state(Family::V6, AntiReplay::Monotonic);
    tx.send_seq = (1_800_003_600u64) << 32;
    let t = Trailer::parse(&tx.sign(now, v6src(), &pdu6()).unwrap());
    assert_eq!(t.seq, ((1_800_003_600u64) << 32) + 1);
}

#[test]
fn a_receiver_mark_past_the_window_expires_in_time_mode() {
    let now = at(1_800_000_000);
    let mut tx = state(Family::V6, AntiReplay::Time);
    let t = tx.sign(now, v6src(), &pdu6()).unwrap();
    let mut rx = state(Family::V6, AntiReplay::Time);
    *rx.mcast_mark(v6src()) = ReplayMark {
        valid: true,
        seq: (1_800_003_600u64) << 32,
    };
    assert!(rx.verify(now, v6src(), &pdu6(), Some(&t), None).is_ok());
    assert_eq!(
        rx.verify(now, v6src(), &pdu6(), Some(&t), None),
        Err(Reject::Replay)
    );
}

#[test]
fn modes_as_keepalived() {
    let now = at(1_800_000_000);
    for (mode, signs, unsigned_ok) in [
        (Mode::Enforce, true, false),
        (Mode::Permissive, true, true),
        (Mode::ReceiveOnly, false, true),
    ] {
        let mut st = HmacState::new(cfg(AntiReplay::Time, mode), Family::V6, Version::V3, vrid());
        assert_eq!(st.sign(now, v6src(), &pdu6()).is_some(), signs, "{mode:?}");
        let got = st.verify(now, v6src(), &pdu6(), None, None);
        if unsigned_ok {
            assert_eq!(got, Ok(Verified::Unsigned), "{mode:?}");
        } else {
            assert_eq!(got, Err(Reject::Missing), "{mode:?}");
        }
        // Every mode verifies a trailer that is there: a bad one is refused.
        let mut tx = state(Family::V6, AntiReplay::Time);
        let mut t = tx.sign(now, v6src(), &pdu6()).unwrap();
        t[TRAILER_LEN - 1] ^= 1;
        assert_eq!(
            st.verify(now, v6src(), &pdu6(), Some(&t), None),
            Err(Reject::BadHmac),
            "{mode:?}"
        );
    }
}

#[test]
fn rotation_verifies_both_keys_and_keeps_the_marks() {
    let now = at(1_800_000_000);
    let two = |active| HmacConfig {
        keys: [(1, key()), (2, vec![0x42; 40])].into_iter().collect(),
        active_key: active,
        mode: Mode::Enforce,
        anti_replay: AntiReplay::Time,
        time_window: 5,
    };
    let mut tx = HmacState::new(two(1), Family::V6, Version::V3, vrid());
    let mut rx = HmacState::new(two(1), Family::V6, Version::V3, vrid());
    let t1 = tx.sign(now, v6src(), &pdu6()).unwrap();
    assert!(rx.verify(now, v6src(), &pdu6(), Some(&t1), None).is_ok());
    tx.reconfigure(two(2));
    let t2 = tx.sign(now, v6src(), &pdu6()).unwrap();
    assert_eq!(Trailer::parse(&t2).key_id, 2);
    assert_eq!(
        rx.verify(now, v6src(), &pdu6(), Some(&t2), None),
        Ok(Verified::Signed {
            key_id: 2,
            skew: Some(0)
        })
    );
    // The old key's capture is still a replay after the rotation.
    rx.reconfigure(two(2));
    assert_eq!(
        rx.verify(now, v6src(), &pdu6(), Some(&t1), None),
        Err(Reject::Replay)
    );
}

#[test]
fn unicast_senders_must_be_peers_and_have_their_own_marks() {
    let now = at(1_800_000_000);
    let peer = v4src();
    let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 11));
    let pdu = hex(IPV4_VEC)[..12].to_vec();
    let mut tx = state(Family::V4, AntiReplay::Time);
    let t = tx.sign(now, peer, &pdu).unwrap();
    let mut rx = state(Family::V4, AntiReplay::Time);
    assert_eq!(
        rx.verify(now, peer, &pdu, Some(&t), Some(&[other])),
        Err(Reject::NotAPeer)
    );
    assert!(
        rx.verify(now, peer, &pdu, Some(&t), Some(&[peer, other]))
            .is_ok()
    );
    assert_eq!(
        rx.verify(now, peer, &pdu, Some(&t), Some(&[peer])),
        Err(Reject::Replay)
    );
}

#[test]
fn multicast_slots_evict_the_least_recently_used() {
    let now = at(1_800_000_000);
    let pdu = pdu6();
    let mut rx = state(Family::V6, AntiReplay::Time);
    let srcs: Vec<IpAddr> = (1..=5)
        .map(|i| IpAddr::V6(format!("fe80::{i}").parse().unwrap()))
        .collect();
    let mut first = None;
    for s in &srcs {
        let mut tx = state(Family::V6, AntiReplay::Time);
        let t = tx.sign(now, *s, &pdu).unwrap();
        assert!(rx.verify(now, *s, &pdu, Some(&t), None).is_ok());
        first.get_or_insert(t);
    }
    // fe80::1 was evicted by the fifth sender: its first advert is no longer a replay
    // (keepalived's 4 slots).
    let t = first.unwrap();
    assert!(rx.verify(now, srcs[0], &pdu, Some(&t), None).is_ok());
}

#[test]
fn keys_decode_as_keepalived() {
    assert_eq!(decode_key("hex:0a0B 0c").unwrap(), vec![0x0a, 0x0b, 0x0c]);
    assert_eq!(decode_key("hex:a bc").unwrap(), vec![0x0a, 0xbc]);
    assert_eq!(decode_key("plain").unwrap(), b"plain".to_vec());
    assert!(decode_key("hex:zz").is_err());
    assert_eq!(decode_key_file(b"hex:0001\r\n").unwrap(), vec![0x00, 0x01]);
    assert!(decode_key_file(&[b'a'; 200]).is_err());
    assert_eq!(derived_window(100), 5);
    assert_eq!(derived_window(300), 9);
    assert_eq!(derived_window(25500), 300);
}

#[test]
fn debug_never_shows_key_bytes() {
    let s = format!("{:?}", cfg(AntiReplay::Time, Mode::Enforce));
    assert!(!s.contains("31"), "{s}");
    assert!(s.contains("key_ids"));
}
