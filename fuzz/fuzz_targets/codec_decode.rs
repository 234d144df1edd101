//! The VRRP codec on arbitrary bytes: never a panic, and whatever decodes re-encodes to
//! something that decodes to the same advert (v2/v3, IPv4/IPv6).
//!
//! The input is tried four ways: as a whole IP packet (`decode_ip`, what XDP events and IPv4
//! raw sockets deliver), the same with its checksums made valid, and as a bare VRRP message
//! (`decode`, what the IPv6 raw socket delivers) received over IPv4 and over IPv6.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use vrrp_agent::proto::Family;
use vrrp_agent::proto::codec::{
    Decoded, RxMeta, VrrpPacket, decode, decode_ip, encode, encode_ip, split_ip,
};
use vrrp_fuzz::fix_checksums;

fuzz_target!(|data: &[u8]| {
    whole_ip_packet(data);
    // The same packet with valid checksums, to get past the checksum check.
    let mut fixed = data.to_vec();
    fix_checksums(&mut fixed);
    whole_ip_packet(&fixed);
    // Documentation addresses (RFC 5737, RFC 3849) and the VRRP groups (RFC 9568 §5.1.1.2,
    // §5.1.2.2); TTL 255 so the checks past the TTL are reached.
    let v4 = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        dst: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        ttl: 255,
    };
    let v6 = RxMeta {
        src: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
        dst: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        ttl: 255,
    };
    bare_message(&v4, data);
    bare_message(&v6, data);
    // The payload of a well-formed IP header, under both families' views.
    if let Ok((meta, payload)) = split_ip(data) {
        view(payload);
        bare_message(&meta, payload);
    }
    view(data);
});

fn whole_ip_packet(data: &[u8]) {
    let Ok((meta, decoded)) = decode_ip(data) else {
        return;
    };
    let mut out = Vec::new();
    if let Err(e) = encode_ip(
        &decoded.advert,
        meta.src,
        meta.dst,
        meta.ttl,
        decoded.checksum,
        &mut out,
    ) {
        panic!("decoded {decoded:?} from {meta:?} but cannot encode it: {e}");
    }
    match decode_ip(&out) {
        Ok((meta2, decoded2)) => {
            assert_eq!(meta2, meta, "round trip changed the IP metadata");
            assert_eq!(decoded2, decoded, "round trip changed the advert");
        }
        Err(e) => panic!("re-encoded {decoded:?} does not decode: {e}"),
    }
}

fn bare_message(meta: &RxMeta, data: &[u8]) {
    let Ok(decoded) = decode(meta, data) else {
        return;
    };
    // decode accepts exactly one whole message: the view agrees.
    let family = match meta.src {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    };
    assert!(VrrpPacket::new_checked(data, family).is_ok());
    round_trip(meta, &decoded);
}

fn round_trip(meta: &RxMeta, decoded: &Decoded) {
    let mut out = Vec::new();
    if let Err(e) = encode(
        &decoded.advert,
        meta.src,
        meta.dst,
        decoded.checksum,
        &mut out,
    ) {
        panic!("decoded {decoded:?} from {meta:?} but cannot encode it: {e}");
    }
    match decode(meta, &out) {
        Ok(again) => assert_eq!(&again, decoded, "round trip changed the advert"),
        Err(e) => panic!("re-encoded {decoded:?} does not decode: {e}"),
    }
}

/// Every accessor of the checked view stays in bounds, whatever the header says.
fn view(data: &[u8]) {
    for family in [Family::V4, Family::V6] {
        if let Ok(p) = VrrpPacket::new_checked(data, family) {
            let n = p.addresses().count();
            assert_eq!(n, usize::from(p.count()));
            let _ = (
                p.version(),
                p.kind(),
                p.vrid(),
                p.priority(),
                p.auth_type(),
                p.adver_int_secs(),
                p.max_adver_int(),
                p.reserved(),
                p.checksum(),
                p.auth_data(),
                p.as_bytes().len(),
            );
        }
    }
}
