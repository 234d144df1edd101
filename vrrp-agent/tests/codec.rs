//! Codec tests on real packets: adverts captured from Debian's keepalived 2.2.7
//! (`scripts/capture-vectors.sh`, files in `testdata/vectors`), mutated negatives for every
//! receive check, and property tests.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;

use proptest::prelude::*;
use vrrp_agent::proto::codec::{
    ChecksumForm, DecodeError, Decoded, EncodeError, RxMeta, decode, decode_ip, encode, encode_ip,
    split_ip,
};
use vrrp_agent::proto::{Advert, Auth, Centisecs, Family, Priority, Version, Vrid};

// ---------------------------------------------------------------------------------------------
// Vectors.

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
}

/// Reads a vector file: `#` comment lines, then the Ethernet frame as hex.
fn read_frame(name: &str) -> Vec<u8> {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    assert!(
        hex.len().is_multiple_of(2),
        "{name}: odd number of hex digits"
    );
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

/// The IP packet inside an Ethernet frame (no VLAN tags in the vectors).
fn ip_packet(frame: &[u8]) -> &[u8] {
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    assert!(
        ethertype == 0x0800 || ethertype == 0x86dd,
        "ethertype {ethertype:#06x}"
    );
    &frame[14..]
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

struct Vector {
    file: &'static str,
    src: &'static str,
    dst: &'static str,
    advert: Advert,
    form: ChecksumForm,
}

const KA_V4: &str = "192.0.2.1";
const KA_V6: &str = "fe80::5eff:fec0:de0a";
const GROUP_V4: &str = "224.0.0.18";
const GROUP_V6: &str = "ff02::12";

fn advert(version: Version, vrid: u8, cs: u16, addrs: &[&str], auth: Auth) -> Advert {
    Advert {
        version,
        vrid: Vrid::new(vrid).unwrap(),
        priority: Priority(100),
        interval: Centisecs(cs),
        addresses: addrs.iter().map(|a| ip(a)).collect(),
        auth,
    }
}

/// Every captured advert with the values of the keepalived config that produced it; each has
/// a `-prio0` sibling, the same advert with priority 0 sent when keepalived stopped.
fn vectors() -> Vec<Vector> {
    use ChecksumForm::*;
    use Version::*;
    let base = vec![
        Vector {
            file: "keepalived-v2-auth",
            src: KA_V4,
            dst: GROUP_V4,
            advert: advert(
                V2,
                51,
                100,
                &["192.0.2.100", "192.0.2.101"],
                Auth::Pass(*b"1111\0\0\0\0"),
            ),
            form: WithoutPseudoHeader,
        },
        Vector {
            file: "keepalived-v2-noauth",
            src: KA_V4,
            dst: GROUP_V4,
            advert: advert(V2, 52, 200, &["192.0.2.102"], Auth::None),
            form: WithoutPseudoHeader,
        },
        Vector {
            file: "keepalived-v3-ipv4",
            src: KA_V4,
            dst: GROUP_V4,
            advert: advert(
                V3,
                53,
                100,
                &["192.0.2.110", "192.0.2.111", "192.0.2.112"],
                Auth::None,
            ),
            form: WithPseudoHeader,
        },
        Vector {
            file: "keepalived-v3-ipv4-frac",
            src: KA_V4,
            dst: GROUP_V4,
            advert: advert(V3, 54, 50, &["192.0.2.120"], Auth::None),
            form: WithPseudoHeader,
        },
        Vector {
            file: "keepalived-v3-ipv4-unicast",
            src: KA_V4,
            dst: "192.0.2.2",
            advert: advert(V3, 56, 100, &["192.0.2.130"], Auth::None),
            form: WithPseudoHeader,
        },
        Vector {
            file: "keepalived-v3-ipv6",
            src: KA_V6,
            dst: GROUP_V6,
            advert: advert(
                V3,
                55,
                100,
                &["2001:db8::100", "2001:db8::101", "2001:db8:0:1::1"],
                Auth::None,
            ),
            form: WithPseudoHeader,
        },
        Vector {
            file: "keepalived-v3-ipv6-frac",
            src: KA_V6,
            dst: GROUP_V6,
            advert: advert(V3, 57, 25, &["2001:db8::200"], Auth::None),
            form: WithPseudoHeader,
        },
    ];
    let mut all = Vec::new();
    for v in base {
        let mut prio0 = v.advert.clone();
        prio0.priority = Priority::RELEASE;
        let file0: &'static str = Box::leak(format!("{}-prio0", v.file).into_boxed_str());
        all.push(Vector {
            file: file0,
            src: v.src,
            dst: v.dst,
            advert: prio0,
            form: v.form,
        });
        all.push(v);
    }
    all
}

#[test]
fn every_vector_file_is_listed() {
    let listed: BTreeSet<String> = vectors()
        .iter()
        .map(|v| format!("{}.hex", v.file))
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("keepalived-") && n.ends_with(".hex"))
        .collect();
    assert_eq!(listed, on_disk);
}

#[test]
fn vectors_decode_to_the_configured_advert() {
    for v in vectors() {
        let frame = read_frame(&format!("{}.hex", v.file));
        let (meta, decoded) =
            decode_ip(ip_packet(&frame)).unwrap_or_else(|e| panic!("{}: {e}", v.file));
        assert_eq!(
            meta,
            RxMeta {
                src: ip(v.src),
                dst: ip(v.dst),
                ttl: 255
            },
            "{}",
            v.file
        );
        assert_eq!(
            decoded,
            Decoded {
                advert: v.advert.clone(),
                checksum: v.form
            },
            "{}",
            v.file
        );
    }
}

#[test]
fn vectors_reencode_byte_for_byte() {
    for v in vectors() {
        let frame = read_frame(&format!("{}.hex", v.file));
        let packet = ip_packet(&frame);
        let (meta, vrrp) = split_ip(packet).unwrap();
        let decoded = decode(&meta, vrrp).unwrap();
        let mut out = Vec::new();
        encode(
            &decoded.advert,
            meta.src,
            meta.dst,
            decoded.checksum,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, vrrp, "{}: VRRP message", v.file);

        // The whole IP packet, except what keepalived varies per packet: the IPv4 ID (and so
        // the header checksum) and the IPv6 flow label.
        let mut whole = Vec::new();
        encode_ip(
            &decoded.advert,
            meta.src,
            meta.dst,
            meta.ttl,
            decoded.checksum,
            &mut whole,
        )
        .unwrap();
        assert_eq!(whole.len(), packet.len(), "{}", v.file);
        let masked = |p: &[u8]| -> Vec<u8> {
            let mut p = p.to_vec();
            if p[0] >> 4 == 4 {
                p[4..6].fill(0);
                p[10..12].fill(0);
            } else {
                p[1] &= 0xf0;
                p[2..4].fill(0);
            }
            p
        };
        assert_eq!(masked(&whole), masked(packet), "{}: IP packet", v.file);
        assert_eq!(decode_ip(&whole).unwrap(), (meta, decoded), "{}", v.file);
    }
}

#[test]
fn v3_ipv4_vector_in_both_checksum_forms() {
    let frame = read_frame("keepalived-v3-ipv4.hex");
    let (meta, vrrp) = split_ip(ip_packet(&frame)).unwrap();
    let d = decode(&meta, vrrp).unwrap();
    assert_eq!(d.checksum, ChecksumForm::WithPseudoHeader);
    let mut rfc = Vec::new();
    encode(
        &d.advert,
        meta.src,
        meta.dst,
        ChecksumForm::WithoutPseudoHeader,
        &mut rfc,
    )
    .unwrap();
    assert_ne!(rfc, vrrp);
    assert_eq!(&rfc[..6], &vrrp[..6]);
    assert_eq!(&rfc[8..], &vrrp[8..]);
    assert_eq!(rfc[6..8], checksum(&rfc, None).to_be_bytes());
    let d2 = decode(&meta, &rfc).unwrap();
    assert_eq!(
        d2,
        Decoded {
            advert: d.advert.clone(),
            checksum: ChecksumForm::WithoutPseudoHeader
        }
    );

    // The pseudo-header form depends on the addresses, the RFC 9568 form does not.
    let other = RxMeta {
        src: ip("192.0.2.9"),
        ..meta
    };
    assert!(matches!(
        decode(&other, vrrp),
        Err(DecodeError::BadChecksum { .. })
    ));
    assert_eq!(decode(&other, &rfc).unwrap(), d2);
}

/// A frame in the RFC 9568 form that keepalived cannot send, built by `encode_ip` and checked
/// with tshark (see the file's header).
#[test]
fn rfc9568_form_vector() {
    let frame = read_frame("vrrp-xdp-v3-ipv4-rfc9568.hex");
    let packet = ip_packet(&frame);
    let (meta, d) = decode_ip(packet).unwrap();
    assert_eq!(
        meta,
        RxMeta {
            src: ip(KA_V4),
            dst: ip(GROUP_V4),
            ttl: 255
        }
    );
    let want = Advert {
        priority: Priority(150),
        ..advert(
            Version::V3,
            64,
            75,
            &["192.0.2.53", "192.0.2.54"],
            Auth::None,
        )
    };
    assert_eq!(
        d,
        Decoded {
            advert: want,
            checksum: ChecksumForm::WithoutPseudoHeader
        }
    );
    let mut out = Vec::new();
    encode_ip(&d.advert, meta.src, meta.dst, 255, d.checksum, &mut out).unwrap();
    assert_eq!(out, packet);
}

#[test]
fn forms_are_fixed_for_v2_and_ipv6() {
    for v in vectors()
        .iter()
        .filter(|v| v.advert.version == Version::V2 || v.src == KA_V6)
    {
        let frame = read_frame(&format!("{}.hex", v.file));
        let (meta, vrrp) = split_ip(ip_packet(&frame)).unwrap();
        for form in [
            ChecksumForm::WithPseudoHeader,
            ChecksumForm::WithoutPseudoHeader,
        ] {
            let mut out = Vec::new();
            encode(&v.advert, meta.src, meta.dst, form, &mut out).unwrap();
            assert_eq!(out, vrrp, "{}: {form:?} is ignored", v.file);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// An independent checksum (RFC 1071) to build mutated negatives.

fn checksum(msg: &[u8], pseudo: Option<(IpAddr, IpAddr)>) -> u16 {
    let mut data = Vec::new();
    match pseudo {
        Some((IpAddr::V4(s), IpAddr::V4(d))) => {
            data.extend_from_slice(&s.octets());
            data.extend_from_slice(&d.octets());
            data.extend_from_slice(&[0, 112]);
            data.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        }
        Some((IpAddr::V6(s), IpAddr::V6(d))) => {
            data.extend_from_slice(&s.octets());
            data.extend_from_slice(&d.octets());
            data.extend_from_slice(&(msg.len() as u32).to_be_bytes());
            data.extend_from_slice(&[0, 0, 0, 112]);
        }
        Some(_) => panic!("mixed families"),
        None => {}
    }
    let mut m = msg.to_vec();
    m[6..8].fill(0);
    data.extend_from_slice(&m);
    if data.len() % 2 == 1 {
        data.push(0);
    }
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn fix_vrrp(msg: &mut [u8], meta: &RxMeta, form: ChecksumForm) {
    let c = checksum(
        msg,
        (form == ChecksumForm::WithPseudoHeader).then_some((meta.src, meta.dst)),
    );
    msg[6..8].copy_from_slice(&c.to_be_bytes());
}

fn fix_ipv4(packet: &mut [u8]) {
    let hlen = usize::from(packet[0] & 0x0f) * 4;
    packet[10..12].fill(0);
    let mut sum: u32 = packet[..hlen]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    packet[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

fn vector_parts(file: &str) -> (Vec<u8>, RxMeta, Vec<u8>) {
    let frame = read_frame(file);
    let packet = ip_packet(&frame).to_vec();
    let (meta, vrrp) = split_ip(&packet).unwrap();
    let vrrp = vrrp.to_vec();
    (packet, meta, vrrp)
}

#[test]
fn independent_checksum_agrees_with_keepalived() {
    for v in vectors() {
        let (_, meta, vrrp) = vector_parts(&format!("{}.hex", v.file));
        let pseudo = (v.form == ChecksumForm::WithPseudoHeader).then_some((meta.src, meta.dst));
        assert_eq!(
            u16::from_be_bytes([vrrp[6], vrrp[7]]),
            checksum(&vrrp, pseudo),
            "{}",
            v.file
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Mutated negatives: one per receive check.

#[test]
fn mutated_negatives_cover_every_error() {
    let (p4, m4, v3) = vector_parts("keepalived-v3-ipv4.hex");
    let (p6, m6, v3_6) = vector_parts("keepalived-v3-ipv6.hex");
    let (_, m2, v2) = vector_parts("keepalived-v2-auth.hex");
    let pseudo = ChecksumForm::WithPseudoHeader;
    let plain = ChecksumForm::WithoutPseudoHeader;

    let mut seen = BTreeSet::new();
    let mut check =
        |what: &str, got: Result<Decoded, DecodeError>, want: &dyn Fn(&DecodeError) -> bool| {
            match got {
                Err(e) if want(&e) => {
                    seen.insert(e.kind());
                }
                other => panic!("{what}: unexpected {other:?}"),
            }
        };
    let ip_dec = |p: &[u8]| decode_ip(p).map(|(_, d)| d);
    let mutate = |base: &[u8], f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.to_vec();
        f(&mut b);
        b
    };

    // --- IP layer.
    check("ip truncated", ip_dec(&p4[..10]), &|e| {
        *e == DecodeError::IpTruncated { len: 10, need: 20 }
    });
    check("ip empty", ip_dec(&[]), &|e| {
        matches!(e, DecodeError::IpTruncated { .. })
    });
    check(
        "ipv4 total length > captured",
        ip_dec(&p4[..p4.len() - 1]),
        &|e| matches!(e, DecodeError::IpTruncated { need, .. } if *need == p4.len()),
    );
    check(
        "ipv6 payload length > captured",
        ip_dec(&p6[..p6.len() - 1]),
        &|e| matches!(e, DecodeError::IpTruncated { need, .. } if *need == p6.len()),
    );
    check(
        "ip version 5",
        ip_dec(&mutate(&p4, &|p| p[0] = 0x55)),
        &|e| *e == DecodeError::BadIpVersion { version: 5 },
    );
    check("ihl 4", ip_dec(&mutate(&p4, &|p| p[0] = 0x44)), &|e| {
        matches!(e, DecodeError::BadIpHeaderLength { ihl: 4, .. })
    });
    check(
        "ip header checksum",
        ip_dec(&mutate(&p4, &|p| p[1] = 0)),
        &|e| matches!(e, DecodeError::BadIpChecksum { .. }),
    );
    check(
        "ip fragment (MF)",
        ip_dec(&mutate(&p4, &|p| {
            p[6] = 0x20;
            fix_ipv4(p);
        })),
        &|e| *e == DecodeError::IpFragment { frag: 0x2000 },
    );
    check(
        "ipv4 protocol udp",
        ip_dec(&mutate(&p4, &|p| {
            p[9] = 17;
            fix_ipv4(p);
        })),
        &|e| *e == DecodeError::NotVrrp { protocol: 17 },
    );
    check(
        "ipv6 next header udp",
        ip_dec(&mutate(&p6, &|p| p[6] = 17)),
        &|e| *e == DecodeError::NotVrrp { protocol: 17 },
    );
    for nh in [0u8, 43, 44, 60] {
        check(
            "ipv6 ext header",
            ip_dec(&mutate(&p6, &|p| p[6] = nh)),
            &|e| *e == DecodeError::UnsupportedIpv6ExtHeader { next_header: nh },
        );
    }

    // --- VRRP message.
    check("vrrp truncated header", decode(&m4, &v3[..7]), &|e| {
        *e == DecodeError::Truncated { len: 7, need: 8 }
    });
    check("vrrp empty", decode(&m4, &[]), &|e| {
        *e == DecodeError::Truncated { len: 0, need: 8 }
    });
    check(
        "vrrp missing address",
        decode(&m4, &v3[..v3.len() - 4]),
        &|e| *e == DecodeError::Truncated { len: 16, need: 20 },
    );
    check(
        "v2 missing auth data",
        decode(&m2, &v2[..v2.len() - 8]),
        &|e| {
            *e == DecodeError::Truncated {
                len: 8 + 8,
                need: 24,
            }
        },
    );
    check(
        "count > present",
        decode(&m6, &mutate(&v3_6, &|v| v[3] = 4)),
        &|e| {
            *e == DecodeError::Truncated {
                len: 8 + 48,
                need: 8 + 64,
            }
        },
    );
    check("ttl 64", decode(&RxMeta { ttl: 64, ..m4 }, &v3), &|e| {
        *e == DecodeError::BadTtl { ttl: 64 }
    });
    check(
        "ttl 254 via ip",
        ip_dec(&mutate(&p4, &|p| {
            p[8] = 254;
            fix_ipv4(p);
        })),
        &|e| *e == DecodeError::BadTtl { ttl: 254 },
    );
    check("hop limit 1", ip_dec(&mutate(&p6, &|p| p[7] = 1)), &|e| {
        *e == DecodeError::BadTtl { ttl: 1 }
    });
    // To our unicast address: the TTL is the instance's to check (keepalived: unicast peers
    // may be routed hops away), so it decodes and the TTL comes along.
    let d = decode(&m4, &v3).expect("vector");
    for (dst, ttl) in [("192.0.2.9", 64u8), ("2001:db8:2::9", 1)] {
        let dst: IpAddr = dst.parse().expect("addr");
        let src: IpAddr = if dst.is_ipv6() {
            "2001:db8:1::1".parse().expect("addr")
        } else {
            m4.src
        };
        let mut advert = d.advert.clone();
        advert.addresses = vec![src];
        let mut pkt = Vec::new();
        encode_ip(
            &advert,
            src,
            dst,
            ttl,
            ChecksumForm::WithPseudoHeader,
            &mut pkt,
        )
        .expect("encode");
        let (meta, _) = decode_ip(&pkt).unwrap_or_else(|e| panic!("unicast TTL {ttl}: {e}"));
        assert_eq!(meta.unchecked_ttl(), Some(ttl));
    }
    assert_eq!(RxMeta { ttl: 64, ..m4 }.unchecked_ttl(), None);
    for version in [0u8, 1, 4, 15] {
        check(
            "version",
            decode(&m4, &mutate(&v3, &|v| v[0] = version << 4 | 1)),
            &|e| *e == DecodeError::BadVersion { version },
        );
    }
    check(
        "v2 over ipv6",
        decode(&m6, &mutate(&v3_6, &|v| v[0] = 0x21)),
        &|e| *e == DecodeError::V2OverIpv6,
    );
    check(
        "mixed families",
        decode(
            &RxMeta {
                dst: ip(GROUP_V6),
                ..m4
            },
            &v3,
        ),
        &|e| matches!(e, DecodeError::WrongFamilyAddress { .. }),
    );
    for kind in [0u8, 2, 15] {
        check(
            "type",
            decode(&m4, &mutate(&v3, &|v| v[0] = 0x30 | kind)),
            &|e| *e == DecodeError::BadType { kind },
        );
    }
    check("vrid 0", decode(&m4, &mutate(&v3, &|v| v[1] = 0)), &|e| {
        *e == DecodeError::VridZero
    });
    check("count 0", decode(&m4, &mutate(&v3, &|v| v[3] = 0)), &|e| {
        *e == DecodeError::AddressCountZero
    });
    check(
        "trailing byte",
        decode(&m4, &mutate(&v3, &|v| v.push(0))),
        &|e| {
            *e == DecodeError::LengthMismatch {
                len: 21,
                expected: 20,
            }
        },
    );
    check(
        "count < present",
        decode(&m4, &mutate(&v3, &|v| v[3] = 2)),
        &|e| {
            *e == DecodeError::LengthMismatch {
                len: 20,
                expected: 16,
            }
        },
    );
    check(
        "v3 ipv4 checksum",
        decode(&m4, &mutate(&v3, &|v| v[2] = 99)),
        &|e| {
            matches!(
                e,
                DecodeError::BadChecksum {
                    got: 0x807b,
                    alternative: Some(_),
                    ..
                }
            )
        },
    );
    check(
        "v3 ipv6 checksum",
        decode(&m6, &mutate(&v3_6, &|v| v[2] = 99)),
        &|e| {
            matches!(
                e,
                DecodeError::BadChecksum {
                    alternative: None,
                    ..
                }
            )
        },
    );
    check(
        "v3 ipv6 checksum without pseudo-header",
        decode(&m6, &mutate(&v3_6, &|v| fix_vrrp(v, &m6, plain))),
        &|e| matches!(e, DecodeError::BadChecksum { .. }),
    );
    check(
        "v2 checksum",
        decode(&m2, &mutate(&v2, &|v| v[2] = 99)),
        &|e| {
            matches!(
                e,
                DecodeError::BadChecksum {
                    alternative: None,
                    ..
                }
            )
        },
    );
    check(
        "v2 checksum with pseudo-header",
        decode(&m2, &mutate(&v2, &|v| fix_vrrp(v, &m2, pseudo))),
        &|e| matches!(e, DecodeError::BadChecksum { .. }),
    );
    check(
        "v2 auth AH",
        decode(
            &m2,
            &mutate(&v2, &|v| {
                v[4] = 2;
                fix_vrrp(v, &m2, plain);
            }),
        ),
        &|e| *e == DecodeError::AuthTypeAh,
    );
    check(
        "v2 auth 3",
        decode(
            &m2,
            &mutate(&v2, &|v| {
                v[4] = 3;
                fix_vrrp(v, &m2, plain);
            }),
        ),
        &|e| *e == DecodeError::BadAuthType { auth_type: 3 },
    );
    check(
        "v2 interval 0",
        decode(
            &m2,
            &mutate(&v2, &|v| {
                v[5] = 0;
                fix_vrrp(v, &m2, plain);
            }),
        ),
        &|e| *e == DecodeError::IntervalZero,
    );
    check(
        "v3 interval 0 (reserved bits set)",
        decode(
            &m4,
            &mutate(&v3, &|v| {
                v[4] = 0xf0;
                v[5] = 0;
                fix_vrrp(v, &m4, pseudo);
            }),
        ),
        &|e| *e == DecodeError::IntervalZero,
    );

    let all: BTreeSet<&str> = DecodeError::KINDS.into_iter().collect();
    assert_eq!(seen, all, "every DecodeError variant has a negative test");
}

#[test]
fn accepted_variations() {
    let (p4, m4, v3) = vector_parts("keepalived-v3-ipv4.hex");
    let (_, m2, v2) = vector_parts("keepalived-v2-noauth.hex");
    // RFC 9568 §5.2.6: reserved bits are ignored on receive (and zero on send).
    let mut r = v3.clone();
    r[4] |= 0xf0;
    fix_vrrp(&mut r, &m4, ChecksumForm::WithPseudoHeader);
    let d = decode(&m4, &r).unwrap();
    assert_eq!(d.advert.interval, Centisecs(100));
    let mut out = Vec::new();
    encode(&d.advert, m4.src, m4.dst, d.checksum, &mut out).unwrap();
    assert_eq!(out, v3);
    // RFC 3768 §5.3.10: auth data is ignored with auth type 0.
    let mut a = v2.clone();
    let n = a.len();
    a[n - 8..].copy_from_slice(b"garbage!");
    fix_vrrp(&mut a, &m2, ChecksumForm::WithoutPseudoHeader);
    assert_eq!(decode(&m2, &a).unwrap().advert.auth, Auth::None);
    // Ethernet padding after the IPv4 total length is not part of the message.
    let mut padded = p4.clone();
    padded.extend_from_slice(&[0; 6]);
    assert!(decode_ip(&padded).is_ok());
    // IPv4 options (a 4-byte NOP/EOL option) are skipped.
    let mut opt = p4[..20].to_vec();
    opt[0] = 0x46;
    let total = u16::from_be_bytes([opt[2], opt[3]]) + 4;
    opt[2..4].copy_from_slice(&total.to_be_bytes());
    opt.extend_from_slice(&[1, 1, 1, 0]);
    opt.extend_from_slice(&p4[20..]);
    fix_ipv4(&mut opt);
    assert_eq!(decode_ip(&opt).unwrap().1, decode_ip(&p4).unwrap().1);
}

#[test]
fn encode_errors() {
    let src = ip(KA_V4);
    let dst = ip(GROUP_V4);
    let f = ChecksumForm::WithPseudoHeader;
    let base = advert(Version::V3, 1, 100, &["192.0.2.100"], Auth::None);
    let enc = |a: &Advert, s: IpAddr, d: IpAddr| {
        let mut out = Vec::new();
        encode(a, s, d, f, &mut out).map(|()| out)
    };
    assert_eq!(
        enc(
            &Advert {
                addresses: vec![],
                ..base.clone()
            },
            src,
            dst
        ),
        Err(EncodeError::NoAddresses)
    );
    let many = Advert {
        addresses: vec![ip("192.0.2.7"); 256],
        ..base.clone()
    };
    assert_eq!(
        enc(&many, src, dst),
        Err(EncodeError::TooManyAddresses { count: 256 })
    );
    let max = Advert {
        addresses: vec![ip("2001:db8::7"); 255],
        ..base.clone()
    };
    let out = enc(&max, ip(KA_V6), ip(GROUP_V6)).unwrap();
    assert_eq!(out.len(), 8 + 255 * 16);
    assert_eq!(
        enc(
            &Advert {
                addresses: vec![ip("2001:db8::1")],
                ..base.clone()
            },
            src,
            dst
        ),
        Err(EncodeError::WrongFamilyAddress {
            addr: ip("2001:db8::1")
        })
    );
    assert_eq!(
        enc(&base, src, ip(GROUP_V6)),
        Err(EncodeError::WrongFamilyAddress { addr: ip(GROUP_V6) })
    );
    let v2_6 = advert(Version::V2, 1, 100, &["2001:db8::1"], Auth::None);
    assert_eq!(
        enc(&v2_6, ip(KA_V6), ip(GROUP_V6)),
        Err(EncodeError::V2OverIpv6)
    );
    assert_eq!(
        enc(
            &Advert {
                auth: Auth::Pass([1; 8]),
                ..base.clone()
            },
            src,
            dst
        ),
        Err(EncodeError::AuthOnV3)
    );
    for (version, cs) in [
        (Version::V3, 0),
        (Version::V3, 4096),
        (Version::V2, 0),
        (Version::V2, 150),
        (Version::V2, 25600),
    ] {
        let a = Advert {
            version,
            interval: Centisecs(cs),
            ..base.clone()
        };
        assert_eq!(
            enc(&a, src, dst),
            Err(EncodeError::IntervalOutOfRange {
                interval: Centisecs(cs),
                version
            }),
            "{version:?} {cs}"
        );
    }
    let ok = Advert {
        version: Version::V2,
        interval: Centisecs(25500),
        ..base.clone()
    };
    assert!(enc(&ok, src, dst).is_ok());
    let ok = Advert {
        interval: Centisecs::V3_MAX,
        ..base
    };
    assert!(enc(&ok, src, dst).is_ok());
}

#[test]
fn effective_forms() {
    use ChecksumForm::*;
    for f in [WithPseudoHeader, WithoutPseudoHeader] {
        assert_eq!(f.effective(Version::V2, Family::V4), WithoutPseudoHeader);
        assert_eq!(f.effective(Version::V3, Family::V6), WithPseudoHeader);
        assert_eq!(f.effective(Version::V3, Family::V4), f);
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests.

fn v4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(IpAddr::from)
}

fn v6() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 16]>().prop_map(IpAddr::from)
}

fn form() -> impl Strategy<Value = ChecksumForm> {
    prop_oneof![
        Just(ChecksumForm::WithPseudoHeader),
        Just(ChecksumForm::WithoutPseudoHeader)
    ]
}

/// An arbitrary valid advert with a source, a destination and a requested checksum form.
fn case() -> impl Strategy<Value = (Advert, IpAddr, IpAddr, ChecksumForm)> {
    let v2 = (
        1u8..=255,
        any::<u8>(),
        1u8..=255,
        prop::collection::vec(v4(), 1..=20),
        prop::option::of(any::<[u8; 8]>()),
        v4(),
        v4(),
        form(),
    )
        .prop_map(|(vrid, prio, secs, addresses, pass, src, dst, form)| {
            let advert = Advert {
                version: Version::V2,
                vrid: Vrid::new(vrid).unwrap(),
                priority: Priority(prio),
                interval: Centisecs::from_secs(secs),
                addresses,
                auth: pass.map_or(Auth::None, Auth::Pass),
            };
            (advert, src, dst, form)
        });
    let v3 = |addr: BoxedStrategy<IpAddr>| {
        (
            1u8..=255,
            any::<u8>(),
            1u16..=0x0fff,
            prop::collection::vec(addr.clone(), 1..=20),
            addr.clone(),
            addr,
            form(),
        )
            .prop_map(|(vrid, prio, cs, addresses, src, dst, form)| {
                let advert = Advert {
                    version: Version::V3,
                    vrid: Vrid::new(vrid).unwrap(),
                    priority: Priority(prio),
                    interval: Centisecs(cs),
                    addresses,
                    auth: Auth::None,
                };
                (advert, src, dst, form)
            })
    };
    prop_oneof![v2, v3(v4().boxed()), v3(v6().boxed())]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_encode_round_trip((advert, src, dst, form) in case()) {
        let family = if src.is_ipv4() { Family::V4 } else { Family::V6 };
        let mut out = Vec::new();
        encode(&advert, src, dst, form, &mut out).unwrap();
        let meta = RxMeta { src, dst, ttl: 255 };
        let d = decode(&meta, &out).unwrap();
        prop_assert_eq!(&d.advert, &advert);
        let want = form.effective(advert.version, family);
        if d.checksum != want {
            // v3 over IPv4 only: when the pseudo-header sums to zero, both forms are the same
            // bytes and decode reports the pseudo-header form.
            let mut other = Vec::new();
            encode(&advert, src, dst, d.checksum, &mut other).unwrap();
            prop_assert_eq!(&other, &out);
        }
        // Re-encoding with the reported form gives the same bytes.
        let mut again = Vec::new();
        encode(&d.advert, src, dst, d.checksum, &mut again).unwrap();
        prop_assert_eq!(&again, &out);

        let mut whole = Vec::new();
        encode_ip(&advert, src, dst, 255, form, &mut whole).unwrap();
        let (m, d2) = decode_ip(&whole).unwrap();
        prop_assert_eq!(m, meta);
        prop_assert_eq!(d2, d);
    }

    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), src in v4(), dst in v4(),
                           s6 in v6(), d6 in v6(), ttl in any::<u8>()) {
        let _ = decode(&RxMeta { src, dst, ttl }, &bytes);
        let _ = decode(&RxMeta { src: s6, dst: d6, ttl }, &bytes);
        let _ = decode(&RxMeta { src, dst: d6, ttl }, &bytes);
        let _ = decode_ip(&bytes);
    }

    /// Random corruption of valid packets reaches the deeper checks.
    #[test]
    fn corrupted_packets_never_panic((advert, src, dst, form) in case(),
                                     edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
                                     cut in any::<prop::sample::Index>()) {
        let mut whole = Vec::new();
        encode_ip(&advert, src, dst, 255, form, &mut whole).unwrap();
        for (i, b) in edits {
            let i = i.index(whole.len());
            whole[i] = b;
        }
        let _ = decode_ip(&whole);
        let _ = decode_ip(&whole[..cut.index(whole.len() + 1)]);
        if let Ok((meta, vrrp)) = split_ip(&whole) {
            let _ = decode(&meta, vrrp);
        }
    }
}
