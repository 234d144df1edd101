//! VRRP wire codec, sans-IO: VRRPv3 (RFC 9568, which obsoletes RFC 5798) over IPv4 and IPv6,
//! VRRPv2 (RFC 3768) over IPv4.
//!
//! Three layers, in the manner of smoltcp:
//! - [`VrrpPacket`]: a checked view over the bytes of one VRRP message (field accessors only);
//! - [`Advert`]: the parsed representation ([`decode`] builds it, after every receive check of
//!   RFC 9568 §7.1 / RFC 3768 §7.1 that needs no configuration);
//! - [`encode`]: emits an [`Advert`] as a VRRP message (the raw socket adds the IP header), and
//!   [`encode_ip`] / [`decode_ip`] do the same with the IPv4/IPv6 header (XDP events and IPv4
//!   raw sockets deliver whole IP packets; tests and tools build them).
//!
//! Checks that depend on configuration (VRID configured on the interface, password, v2 interval
//! equal to ours, address list equal to ours, "am I the owner") belong to the state machine.
//!
//! Checksum forms ([`ChecksumForm`]):
//! - VRRPv2 (RFC 3768 §5.3.8): the VRRP message only. Decode reports
//!   [`ChecksumForm::WithoutPseudoHeader`]; encode ignores the requested form.
//! - VRRPv3 over IPv6 (RFC 9568 §5.2.8): always with the IPv6 pseudo-header (RFC 8200 §8.1).
//!   Decode reports [`ChecksumForm::WithPseudoHeader`]; encode ignores the requested form.
//! - VRRPv3 over IPv4: both forms exist in the field. RFC 5798 §5.2.8 was read by keepalived
//!   and FRR as "with the IPv4 pseudo-header" (their default), RFC 9568 §5.2.8 says the message
//!   only. Decode accepts both and reports which matched (the pseudo-header form is tried first;
//!   if both match, the two encodings are the same bytes); encode uses the requested form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vrrp_common::verdict::csum_fold;
use vrrp_common::wire::{
    IPPROTO_VRRP, IPV4_MIN_HLEN, IPV6_HLEN, VRRP_HEADER_LEN, VRRP_TTL, VRRP_TYPE_ADVERT,
    VRRP_V2_AUTH_LEN, VRRP_V2_AUTH_NONE, VRRP_V2_AUTH_PASS,
};

use super::advert::{Advert, Auth};
use super::auth_hmac::TRAILER_LEN;
use super::types::{Centisecs, Family, Priority, Version, Vrid};

/// RFC 3768 §5.3.6: auth type 2 was IP Authentication Header (from RFC 2338), removed by
/// RFC 3768 and still seen from old peers.
pub const VRRP_V2_AUTH_AH: u8 = 2;

/// IPv4 TOS / IPv6 traffic class [`encode_ip`] uses: precedence "internetwork control" (0xc0),
/// as keepalived sends (RFC 9568 does not specify one).
pub const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;

/// Which bytes the VRRP checksum covers (see the module documentation for v2 and IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ChecksumForm {
    /// The VRRP message preceded by the IP pseudo-header (IPv4: RFC 768-style src, dst, zero,
    /// protocol 112, VRRP length; IPv6: RFC 8200 §8.1). keepalived/FRR default for v3 IPv4; the
    /// only form for v3 IPv6.
    WithPseudoHeader,
    /// The VRRP message only: RFC 9568 §5.2.8 for v3 IPv4, and the only form for VRRPv2
    /// (RFC 3768 §5.3.8).
    WithoutPseudoHeader,
}

impl ChecksumForm {
    /// The form actually used for a message of this version and family: `self` for VRRPv3 over
    /// IPv4, the only possible form otherwise.
    pub const fn effective(self, version: Version, family: Family) -> Self {
        match (version, family) {
            (Version::V2, _) => Self::WithoutPseudoHeader,
            (Version::V3, Family::V6) => Self::WithPseudoHeader,
            (Version::V3, Family::V4) => self,
        }
    }
}

/// What the IP layer tells us about a received VRRP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RxMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
}

impl RxMeta {
    /// The TTL of an advert sent to a unicast address, which [`decode`] leaves to the instance
    /// (keepalived holds a unicast instance's adverts to its peers' `min_ttl`/`max_ttl`, not
    /// to 255: a peer may be routed hops away); `None` for one to a multicast group, which
    /// `decode` holds to 255.
    pub fn unchecked_ttl(&self) -> Option<u8> {
        (!self.dst.is_multicast()).then_some(self.ttl)
    }
}

/// A VRRP message that passed every configuration-independent receive check.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Decoded {
    pub advert: Advert,
    /// The checksum form the message used.
    pub checksum: ChecksumForm,
}

/// Why a received packet was discarded: one variant per receive check.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
pub enum DecodeError {
    // --- IP layer (decode_ip / split_ip) ---
    /// Fewer bytes than the IP header needs (fixed part, options, or the total length field).
    #[error("IP packet truncated: {len} bytes, need {need}")]
    IpTruncated { len: usize, need: usize },
    #[error("IP version {version} is neither 4 nor 6")]
    BadIpVersion { version: u8 },
    /// IPv4 IHL below 5 words, or a total length shorter than the header.
    #[error("bad IPv4 header length: IHL {ihl}, total length {total_len}")]
    BadIpHeaderLength { ihl: u8, total_len: u16 },
    #[error("bad IPv4 header checksum {got:#06x}, expected {expected:#06x}")]
    BadIpChecksum { got: u16, expected: u16 },
    /// A fragment (MF set or offset != 0): VRRP adverts are never fragmented.
    #[error("IPv4 fragment (flags/offset {frag:#06x})")]
    IpFragment { frag: u16 },
    #[error("IP protocol {protocol} is not VRRP (112)")]
    NotVrrp { protocol: u8 },
    /// An IPv6 extension header before VRRP (RFC 8200 §4); not supported.
    #[error("IPv6 extension header {next_header} before VRRP is not supported")]
    UnsupportedIpv6ExtHeader { next_header: u8 },

    // --- VRRP message, in the order of RFC 9568 §7.1 ---
    /// RFC 9568 §7.1: the packet must contain the complete VRRP message (header, the addresses
    /// it counts and, for v2, the authentication data).
    #[error("VRRP message truncated: {len} bytes, need {need}")]
    Truncated { len: usize, need: usize },
    /// RFC 9568 §7.1, RFC 3768 §7.1: TTL / hop limit must be 255.
    #[error("TTL/hop limit {ttl}, must be 255")]
    BadTtl { ttl: u8 },
    /// RFC 9568 §7.1 / RFC 3768 §7.1: version must be 3 (or 2).
    #[error("VRRP version {version} is not supported")]
    BadVersion { version: u8 },
    /// RFC 3768 defines VRRPv2 for IPv4 only.
    #[error("VRRPv2 over IPv6")]
    V2OverIpv6,
    /// The source and destination addresses are of different families.
    #[error("source {src} and destination {dst} are of different address families")]
    WrongFamilyAddress { src: IpAddr, dst: IpAddr },
    /// RFC 9568 §5.2.2: only type 1 (ADVERTISEMENT) exists; others must be discarded.
    #[error("VRRP type {kind} is not ADVERTISEMENT (1)")]
    BadType { kind: u8 },
    /// RFC 9568 §5.2.3: VRID is 1..=255.
    #[error("VRID 0")]
    VridZero,
    /// RFC 9568 §5.2.5: the count of addresses is at least 1.
    #[error("address count 0")]
    AddressCountZero,
    /// RFC 9568 §7.1: the message is longer than its header and addresses (trailing bytes).
    #[error("VRRP message is {len} bytes, its header says {expected}")]
    LengthMismatch { len: usize, expected: usize },
    /// RFC 9568 §7.1 / RFC 3768 §7.1: the checksum must verify. For v3 over IPv4, `expected`
    /// is the pseudo-header form and `alternative` the message-only form.
    #[error("bad VRRP checksum {got:#06x}, expected {expected:#06x}")]
    BadChecksum {
        got: u16,
        expected: u16,
        alternative: Option<u16>,
    },
    /// RFC 3768 §5.3.6: auth type 2 (IP Authentication Header) is no longer supported.
    #[error("VRRPv2 IP AH authentication (type 2) is not supported")]
    AuthTypeAh,
    /// RFC 3768 §5.3.6: auth types other than 0, 1 (and the obsolete 2) are undefined.
    #[error("unknown VRRPv2 auth type {auth_type}")]
    BadAuthType { auth_type: u8 },
    /// An advertisement interval of 0 would make every timer fire at once.
    #[error("advertisement interval 0")]
    IntervalZero,
}

impl DecodeError {
    /// A stable label for counters and metrics.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::IpTruncated { .. } => "ip_truncated",
            Self::BadIpVersion { .. } => "bad_ip_version",
            Self::BadIpHeaderLength { .. } => "bad_ip_header_length",
            Self::BadIpChecksum { .. } => "bad_ip_checksum",
            Self::IpFragment { .. } => "ip_fragment",
            Self::NotVrrp { .. } => "not_vrrp",
            Self::UnsupportedIpv6ExtHeader { .. } => "unsupported_ipv6_ext_header",
            Self::Truncated { .. } => "truncated",
            Self::BadTtl { .. } => "bad_ttl",
            Self::BadVersion { .. } => "bad_version",
            Self::V2OverIpv6 => "v2_over_ipv6",
            Self::WrongFamilyAddress { .. } => "wrong_family_address",
            Self::BadType { .. } => "bad_type",
            Self::VridZero => "vrid_zero",
            Self::AddressCountZero => "address_count_zero",
            Self::LengthMismatch { .. } => "length_mismatch",
            Self::BadChecksum { .. } => "bad_checksum",
            Self::AuthTypeAh => "auth_type_ah",
            Self::BadAuthType { .. } => "bad_auth_type",
            Self::IntervalZero => "interval_zero",
        }
    }

    /// Every label [`DecodeError::kind`] can return (to pre-register metrics).
    pub const KINDS: [&'static str; 20] = [
        "ip_truncated",
        "bad_ip_version",
        "bad_ip_header_length",
        "bad_ip_checksum",
        "ip_fragment",
        "not_vrrp",
        "unsupported_ipv6_ext_header",
        "truncated",
        "bad_ttl",
        "bad_version",
        "v2_over_ipv6",
        "wrong_family_address",
        "bad_type",
        "vrid_zero",
        "address_count_zero",
        "length_mismatch",
        "bad_checksum",
        "auth_type_ah",
        "bad_auth_type",
        "interval_zero",
    ];
}

/// Why an [`Advert`] cannot be emitted.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
pub enum EncodeError {
    /// RFC 9568 §5.2.5: at least one address.
    #[error("an advert needs at least one address")]
    NoAddresses,
    /// The count field is 8 bits (RFC 9568 §5.2.5).
    #[error("{count} addresses do not fit the 8-bit count")]
    TooManyAddresses { count: usize },
    /// Source, destination and every virtual address must share one family.
    #[error("address {addr} is not of the packet's family")]
    WrongFamilyAddress { addr: IpAddr },
    /// RFC 3768 is IPv4 only.
    #[error("VRRPv2 over IPv6")]
    V2OverIpv6,
    /// RFC 9568 §9.1: VRRPv3 has no authentication.
    #[error("VRRPv3 has no authentication")]
    AuthOnV3,
    /// v2: whole seconds 1..=255 (RFC 3768 §5.3.7); v3: 1..=4095 centiseconds (RFC 9568 §5.2.7).
    #[error("interval {interval} cannot be sent in VRRP{version:?}")]
    IntervalOutOfRange {
        interval: Centisecs,
        version: Version,
    },
}

// ------------------------------------------------------------------------------------------
// Byte helpers: every read is bounds-checked.

fn byte(buf: &[u8], off: usize) -> Option<u8> {
    buf.get(off).copied()
}

fn be16(buf: &[u8], off: usize) -> Option<u16> {
    let b = buf.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

fn array<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
    buf.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// One's-complement sum of big-endian 16-bit words (an odd last byte is padded with zero),
/// RFC 1071. Not folded: pass it to [`csum_fold`].
fn sum16(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u64 = chunks
        .by_ref()
        .map(|c| {
            u64::from(u16::from_be_bytes([
                c.first().copied().unwrap_or(0),
                c.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum();
    if let Some(&last) = chunks.remainder().first() {
        sum += u64::from(last) << 8;
    }
    sum
}

/// Whether a received checksum field verifies against the computed one. In one's-complement
/// arithmetic 0x0000 and 0xffff are both zero (RFC 1071 §1): a receiver that sums the whole
/// message, as the XDP program and keepalived do, accepts either, so the codec does too.
const fn same_checksum(got: u16, expected: u16) -> bool {
    got == expected || (got == 0 && expected == 0xffff) || (got == 0xffff && expected == 0)
}

/// Unfolded sum of the pseudo-header for a VRRP message of `len` bytes.
/// IPv4: src, dst, zero, protocol, length (RFC 768 layout, as keepalived/FRR use it);
/// IPv6: src, dst, 32-bit length, 3 zero bytes, next header (RFC 8200 §8.1).
/// `None` if src and dst are of different families.
fn pseudo_sum(src: IpAddr, dst: IpAddr, len: usize) -> Option<u64> {
    let proto = u64::from(IPPROTO_VRRP);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            Some(sum16(&s.octets()) + sum16(&d.octets()) + proto + (len as u64 & 0xffff))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let len = len as u64 & 0xffff_ffff;
            Some(sum16(&s.octets()) + sum16(&d.octets()) + (len >> 16) + (len & 0xffff) + proto)
        }
        _ => None,
    }
}

const fn family_of(addr: &IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

const fn addr_len(family: Family) -> usize {
    match family {
        Family::V4 => 4,
        Family::V6 => 16,
    }
}

/// Length of a VRRP message (RFC 9568 §5.1, RFC 3768 §5.1): header, addresses, v2 auth data.
pub const fn message_len(version: Version, family: Family, count: u8) -> usize {
    let auth = match version {
        Version::V2 => VRRP_V2_AUTH_LEN,
        Version::V3 => 0,
    };
    VRRP_HEADER_LEN + count as usize * addr_len(family) + auth
}

// ------------------------------------------------------------------------------------------
// Checked view.

/// A view over the bytes of one VRRP message whose length was checked against its header:
/// every accessor is in bounds. No semantic check (version, type, checksum) is implied.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// |Version| Type  | Virtual Rtr ID|   Priority    | Count IPvX Addr|
/// v3: |(rsvd) |     Max Adver Int     |          Checksum             |  RFC 9568 §5.1
/// v2: |   Auth Type   |   Adver Int   |          Checksum             |  RFC 3768 §5.1
/// |                      IPvX Address(es) ...                         |
/// v2: |              Authentication Data (8 bytes)                    |
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VrrpPacket<'a> {
    buf: &'a [u8],
    family: Family,
}

impl<'a> VrrpPacket<'a> {
    /// Checks that `buf` holds exactly one whole VRRP message of `family` (header, the counted
    /// addresses, v2 auth data): RFC 9568 §7.1 "contains the complete VRRP packet".
    /// Versions other than 2 are laid out as v3.
    pub fn new_checked(buf: &'a [u8], family: Family) -> Result<Self, DecodeError> {
        let first = byte(buf, 0).ok_or(DecodeError::Truncated {
            len: buf.len(),
            need: VRRP_HEADER_LEN,
        })?;
        if buf.len() < VRRP_HEADER_LEN {
            return Err(DecodeError::Truncated {
                len: buf.len(),
                need: VRRP_HEADER_LEN,
            });
        }
        let version = if first >> 4 == 2 {
            Version::V2
        } else {
            Version::V3
        };
        let count = byte(buf, 3).unwrap_or(0);
        let need = message_len(version, family, count);
        if buf.len() < need {
            return Err(DecodeError::Truncated {
                len: buf.len(),
                need,
            });
        }
        if buf.len() > need {
            return Err(DecodeError::LengthMismatch {
                len: buf.len(),
                expected: need,
            });
        }
        Ok(Self { buf, family })
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    pub const fn family(&self) -> Family {
        self.family
    }
    pub fn version(&self) -> u8 {
        byte(self.buf, 0).unwrap_or(0) >> 4
    }
    pub fn kind(&self) -> u8 {
        byte(self.buf, 0).unwrap_or(0) & 0x0f
    }
    pub fn vrid(&self) -> u8 {
        byte(self.buf, 1).unwrap_or(0)
    }
    pub fn priority(&self) -> u8 {
        byte(self.buf, 2).unwrap_or(0)
    }
    pub fn count(&self) -> u8 {
        byte(self.buf, 3).unwrap_or(0)
    }
    /// v2 only: Auth Type (RFC 3768 §5.3.6).
    pub fn auth_type(&self) -> u8 {
        byte(self.buf, 4).unwrap_or(0)
    }
    /// v2 only: Adver Int in seconds (RFC 3768 §5.3.7).
    pub fn adver_int_secs(&self) -> u8 {
        byte(self.buf, 5).unwrap_or(0)
    }
    /// v3 only: the 12-bit Max Adver Int in centiseconds; the 4 reserved bits are masked off
    /// (RFC 9568 §5.2.6: ignored on receive).
    pub fn max_adver_int(&self) -> Centisecs {
        Centisecs(be16(self.buf, 4).unwrap_or(0) & 0x0fff)
    }
    /// v3 only: the 4 reserved bits (RFC 9568 §5.2.6).
    pub fn reserved(&self) -> u8 {
        byte(self.buf, 4).unwrap_or(0) >> 4
    }
    pub fn checksum(&self) -> u16 {
        be16(self.buf, 6).unwrap_or(0)
    }
    /// The virtual addresses, in wire order.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + 'a {
        let family = self.family;
        let alen = addr_len(family);
        let end = VRRP_HEADER_LEN + usize::from(self.count()) * alen;
        self.buf
            .get(VRRP_HEADER_LEN..end)
            .unwrap_or(&[])
            .chunks_exact(alen)
            .filter_map(move |c| match family {
                Family::V4 => <[u8; 4]>::try_from(c)
                    .ok()
                    .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
                Family::V6 => <[u8; 16]>::try_from(c)
                    .ok()
                    .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
            })
    }
    /// v2 only: the 8 bytes of Authentication Data (RFC 3768 §5.3.10).
    pub fn auth_data(&self) -> [u8; 8] {
        let off = VRRP_HEADER_LEN + usize::from(self.count()) * addr_len(self.family);
        array(self.buf, off).unwrap_or([0; 8])
    }
    /// Unfolded sum of the message with the checksum field taken as zero (the field is the
    /// aligned word at offset 6, so it contributes exactly its value).
    fn sum_without_checksum(&self) -> u64 {
        sum16(self.buf).saturating_sub(u64::from(self.checksum()))
    }
}

// ------------------------------------------------------------------------------------------
// Decode.

/// Decodes one VRRP message (the IP payload) with every receive check of RFC 9568 §7.1 /
/// RFC 3768 §7.1 that needs no configuration, in the RFC's order.
pub fn decode(meta: &RxMeta, vrrp: &[u8]) -> Result<Decoded, DecodeError> {
    decode_inner(meta, vrrp, &[])
}

/// The `auth_hmac` trailer after a VRRP message, with the message it follows (the HMAC
/// covers the message as received).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Signed {
    pub pdu: Vec<u8>,
    pub trailer: [u8; TRAILER_LEN],
}

/// [`decode`], and a message exactly [`TRAILER_LEN`] bytes longer than its header says is
/// read as one with an `auth_hmac` trailer (keepalived 2.4: "detection from the length is
/// unambiguous since padding cannot reach this size"). Over IPv6 the checksum then covers the
/// trailer too (the kernel's `IPV6_CHECKSUM` on the sender's socket), over IPv4 the message
/// only. Whether a trailer is welcome is the instance's business.
pub fn decode_signed(
    meta: &RxMeta,
    payload: &[u8],
) -> Result<(Decoded, Option<Signed>), DecodeError> {
    let family = family_of(&meta.src);
    if let (Some(first), Some(count)) = (byte(payload, 0), byte(payload, 3)) {
        let version = if first >> 4 == 2 {
            Version::V2
        } else {
            Version::V3
        };
        let need = message_len(version, family, count);
        if payload.len() == need + TRAILER_LEN {
            let (pdu, rest) = payload.split_at(need);
            let mut trailer = [0u8; TRAILER_LEN];
            trailer.copy_from_slice(rest);
            let covered: &[u8] = if family == Family::V6 { rest } else { &[] };
            let d = decode_inner(meta, pdu, covered)?;
            return Ok((
                d,
                Some(Signed {
                    pdu: pdu.to_vec(),
                    trailer,
                }),
            ));
        }
    }
    decode(meta, payload).map(|d| (d, None))
}

/// Recomputes the checksum of an IPv6 VRRP payload (message and whatever follows it) as
/// the kernel's `IPV6_CHECKSUM` would: the RFC 8200 §8.1 pseudo header and every byte.
pub fn rechecksum_v6(payload: &mut [u8], src: IpAddr, dst: IpAddr) {
    if payload.len() < VRRP_HEADER_LEN {
        return;
    }
    payload[6] = 0;
    payload[7] = 0;
    let sum = sum16(payload) + pseudo_sum(src, dst, payload.len()).unwrap_or(0);
    let csum = csum_fold(sum).to_be_bytes();
    payload[6..8].copy_from_slice(&csum);
}

/// [`decode`] with `covered`: bytes after the message the checksum covers too (an IPv6
/// `auth_hmac` trailer), counted in the pseudo header's length.
fn decode_inner(meta: &RxMeta, vrrp: &[u8], covered: &[u8]) -> Result<Decoded, DecodeError> {
    let len = vrrp.len();
    let first = byte(vrrp, 0).ok_or(DecodeError::Truncated {
        len,
        need: VRRP_HEADER_LEN,
    })?;
    if len < VRRP_HEADER_LEN {
        return Err(DecodeError::Truncated {
            len,
            need: VRRP_HEADER_LEN,
        });
    }
    // RFC 9568 §7.1 / RFC 3768 §7.1: "MUST verify that the IP TTL is 255", here for adverts
    // to the group; for one to our unicast address the instance decides (`unchecked_ttl`).
    if meta.unchecked_ttl().is_none() && meta.ttl != VRRP_TTL {
        return Err(DecodeError::BadTtl { ttl: meta.ttl });
    }
    // RFC 9568 §7.1: "MUST verify that the VRRP version is 3"; RFC 3768 §7.1: "is 2".
    let version = match first >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        v => return Err(DecodeError::BadVersion { version: v }),
    };
    let family = family_of(&meta.src);
    if family_of(&meta.dst) != family {
        return Err(DecodeError::WrongFamilyAddress {
            src: meta.src,
            dst: meta.dst,
        });
    }
    // RFC 3768 §1: VRRPv2 is for IPv4 only.
    if version == Version::V2 && family == Family::V6 {
        return Err(DecodeError::V2OverIpv6);
    }
    // RFC 9568 §5.2.2: "A packet with unknown type MUST be discarded."
    let kind = first & 0x0f;
    if kind != VRRP_TYPE_ADVERT {
        return Err(DecodeError::BadType { kind });
    }
    // RFC 9568 §5.2.3: VRID 1..=255.
    let vrid = byte(vrrp, 1)
        .and_then(Vrid::new)
        .ok_or(DecodeError::VridZero)?;
    // RFC 9568 §5.2.5: "(the minimum value is 1)".
    if byte(vrrp, 3) == Some(0) {
        return Err(DecodeError::AddressCountZero);
    }
    // RFC 9568 §7.1: "MUST verify that the received packet contains the complete VRRP packet
    // (including fixed fields, and IPvX address(es))".
    let pkt = VrrpPacket::new_checked(vrrp, family)?;

    // RFC 9568 §7.1 / RFC 3768 §7.1: "MUST verify the VRRP checksum".
    let got = pkt.checksum();
    let body = pkt.sum_without_checksum();
    let checksum = match (version, family) {
        // RFC 3768 §5.3.8: "the entire VRRP message starting with the version field".
        (Version::V2, _) => {
            let expected = csum_fold(body);
            if !same_checksum(got, expected) {
                return Err(DecodeError::BadChecksum {
                    got,
                    expected,
                    alternative: None,
                });
            }
            ChecksumForm::WithoutPseudoHeader
        }
        // RFC 9568 §5.2.8: IPv6 includes the pseudo-header of RFC 8200 §8.1.
        (Version::V3, Family::V6) => {
            let expected = csum_fold(
                body + sum16(covered)
                    + pseudo_sum(meta.src, meta.dst, len + covered.len()).unwrap_or(0),
            );
            if !same_checksum(got, expected) {
                return Err(DecodeError::BadChecksum {
                    got,
                    expected,
                    alternative: None,
                });
            }
            ChecksumForm::WithPseudoHeader
        }
        // RFC 9568 §5.2.8 (message only) vs keepalived/FRR (with pseudo-header): accept both.
        (Version::V3, Family::V4) => {
            let with = csum_fold(body + pseudo_sum(meta.src, meta.dst, len).unwrap_or(0));
            let without = csum_fold(body);
            if same_checksum(got, with) {
                ChecksumForm::WithPseudoHeader
            } else if same_checksum(got, without) {
                ChecksumForm::WithoutPseudoHeader
            } else {
                return Err(DecodeError::BadChecksum {
                    got,
                    expected: with,
                    alternative: Some(without),
                });
            }
        }
    };

    let (interval, auth) = match version {
        Version::V2 => {
            // RFC 3768 §5.3.6: 0 = no authentication, 1 = simple text password, 2 = IP AH.
            let auth = match pkt.auth_type() {
                // RFC 3768 §5.3.10: with type 0 the data "SHOULD be ... ignored on reception".
                VRRP_V2_AUTH_NONE => Auth::None,
                VRRP_V2_AUTH_PASS => Auth::Pass(pkt.auth_data()),
                VRRP_V2_AUTH_AH => return Err(DecodeError::AuthTypeAh),
                other => return Err(DecodeError::BadAuthType { auth_type: other }),
            };
            // RFC 3768 §5.3.7: Adver Int in seconds.
            (Centisecs::from_secs(pkt.adver_int_secs()), auth)
        }
        // RFC 9568 §5.2.6/§5.2.7: 4 reserved bits ignored, 12-bit centiseconds; §9.1: no auth.
        Version::V3 => (pkt.max_adver_int(), Auth::None),
    };
    if interval.get() == 0 {
        return Err(DecodeError::IntervalZero);
    }

    Ok(Decoded {
        advert: Advert {
            version,
            vrid,
            priority: Priority(pkt.priority()),
            interval,
            addresses: pkt.addresses().collect(),
            auth,
        },
        checksum,
    })
}

/// IPv6 extension headers that may precede an upper-layer header (RFC 8200 §4, RFC 7045):
/// hop-by-hop, routing, fragment, ESP, AH, destination options, mobility, HIP, shim6,
/// experimental.
const IPV6_EXT_HEADERS: [u8; 11] = [0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254];

/// Parses the IPv4 (with options) or IPv6 header (no extension headers) of a whole IP packet
/// and returns the metadata and the VRRP message (trailing link-layer padding removed).
/// Useful on its own when a caller wants the source even if [`decode`] then fails.
pub fn split_ip(packet: &[u8]) -> Result<(RxMeta, &[u8]), DecodeError> {
    let first = byte(packet, 0).ok_or(DecodeError::IpTruncated { len: 0, need: 1 })?;
    let len = packet.len();
    match first >> 4 {
        4 => {
            if len < IPV4_MIN_HLEN {
                return Err(DecodeError::IpTruncated {
                    len,
                    need: IPV4_MIN_HLEN,
                });
            }
            let ihl = first & 0x0f;
            let hlen = usize::from(ihl) * 4;
            let total_len = be16(packet, 2).unwrap_or(0);
            if hlen < IPV4_MIN_HLEN || usize::from(total_len) < hlen {
                return Err(DecodeError::BadIpHeaderLength { ihl, total_len });
            }
            if len < usize::from(total_len) {
                return Err(DecodeError::IpTruncated {
                    len,
                    need: usize::from(total_len),
                });
            }
            let header = packet
                .get(..hlen)
                .ok_or(DecodeError::IpTruncated { len, need: hlen })?;
            // RFC 791 §3.1: the header checksum (nobody verified it on the XDP path).
            let got = be16(header, 10).unwrap_or(0);
            let expected = csum_fold(sum16(header).saturating_sub(u64::from(got)));
            if !same_checksum(got, expected) {
                return Err(DecodeError::BadIpChecksum { got, expected });
            }
            // MF flag or a fragment offset: never a whole advert.
            let frag = be16(header, 6).unwrap_or(0);
            if frag & 0x3fff != 0 {
                return Err(DecodeError::IpFragment { frag });
            }
            let protocol = byte(header, 9).unwrap_or(0);
            if protocol != IPPROTO_VRRP {
                return Err(DecodeError::NotVrrp { protocol });
            }
            let src = IpAddr::V4(Ipv4Addr::from(array::<4>(header, 12).unwrap_or([0; 4])));
            let dst = IpAddr::V4(Ipv4Addr::from(array::<4>(header, 16).unwrap_or([0; 4])));
            let ttl = byte(header, 8).unwrap_or(0);
            let payload = packet.get(hlen..usize::from(total_len)).unwrap_or(&[]);
            Ok((RxMeta { src, dst, ttl }, payload))
        }
        6 => {
            if len < IPV6_HLEN {
                return Err(DecodeError::IpTruncated {
                    len,
                    need: IPV6_HLEN,
                });
            }
            let payload_len = usize::from(be16(packet, 4).unwrap_or(0));
            let end = IPV6_HLEN + payload_len;
            if len < end {
                return Err(DecodeError::IpTruncated { len, need: end });
            }
            let next_header = byte(packet, 6).unwrap_or(0);
            if next_header != IPPROTO_VRRP {
                return Err(if IPV6_EXT_HEADERS.contains(&next_header) {
                    DecodeError::UnsupportedIpv6ExtHeader { next_header }
                } else {
                    DecodeError::NotVrrp {
                        protocol: next_header,
                    }
                });
            }
            let src = IpAddr::V6(Ipv6Addr::from(array::<16>(packet, 8).unwrap_or([0; 16])));
            let dst = IpAddr::V6(Ipv6Addr::from(array::<16>(packet, 24).unwrap_or([0; 16])));
            let ttl = byte(packet, 7).unwrap_or(0);
            let payload = packet.get(IPV6_HLEN..end).unwrap_or(&[]);
            Ok((RxMeta { src, dst, ttl }, payload))
        }
        version => Err(DecodeError::BadIpVersion { version }),
    }
}

/// Decodes a whole IPv4 or IPv6 packet carrying a VRRP message: [`split_ip`] then [`decode`].
pub fn decode_ip(packet: &[u8]) -> Result<(RxMeta, Decoded), DecodeError> {
    let (meta, vrrp) = split_ip(packet)?;
    let decoded = decode(&meta, vrrp)?;
    Ok((meta, decoded))
}

// ------------------------------------------------------------------------------------------
// Encode.

/// Validates an advert for sending from `src` to `dst`; returns its family and address count.
fn check_encodable(advert: &Advert, src: IpAddr, dst: IpAddr) -> Result<(Family, u8), EncodeError> {
    let family = family_of(&src);
    if family_of(&dst) != family {
        return Err(EncodeError::WrongFamilyAddress { addr: dst });
    }
    if let Some(addr) = advert.addresses.iter().find(|a| family_of(a) != family) {
        return Err(EncodeError::WrongFamilyAddress { addr: *addr });
    }
    let count = match advert.addresses.len() {
        0 => return Err(EncodeError::NoAddresses),
        n => u8::try_from(n).map_err(|_| EncodeError::TooManyAddresses { count: n })?,
    };
    let interval_ok = match advert.version {
        Version::V2 => {
            if family == Family::V6 {
                return Err(EncodeError::V2OverIpv6);
            }
            // RFC 3768 §5.3.7: whole seconds in 8 bits.
            let i = advert.interval.get();
            i != 0 && i.is_multiple_of(100) && i / 100 <= 255
        }
        Version::V3 => {
            // RFC 9568 §9.1: no authentication in v3.
            if advert.auth != Auth::None {
                return Err(EncodeError::AuthOnV3);
            }
            // RFC 9568 §5.2.7: 12 bits of centiseconds.
            advert.interval.get() != 0 && advert.interval <= Centisecs::V3_MAX
        }
    };
    if !interval_ok {
        return Err(EncodeError::IntervalOutOfRange {
            interval: advert.interval,
            version: advert.version,
        });
    }
    Ok((family, count))
}

/// Appends the VRRP message for `advert` sent from `src` to `dst` to `out` (the IP header is
/// the raw socket's job). `form` is used for VRRPv3 over IPv4 only (see [`ChecksumForm`]).
/// On error `out` is left unchanged.
pub fn encode(
    advert: &Advert,
    src: IpAddr,
    dst: IpAddr,
    form: ChecksumForm,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let (family, count) = check_encodable(advert, src, dst)?;
    let start = out.len();
    let len = message_len(advert.version, family, count);
    out.reserve(len);
    out.push((advert.version.number() << 4) | VRRP_TYPE_ADVERT);
    out.push(advert.vrid.get());
    out.push(advert.priority.get());
    out.push(count);
    match advert.version {
        Version::V2 => {
            let auth_type = match advert.auth {
                Auth::None => VRRP_V2_AUTH_NONE,
                Auth::Pass(_) => VRRP_V2_AUTH_PASS,
            };
            out.push(auth_type);
            // Checked above: a whole number of seconds <= 255.
            out.push(u8::try_from(advert.interval.get() / 100).unwrap_or(u8::MAX));
        }
        // RFC 9568 §5.2.6: reserved bits zero on send.
        Version::V3 => out.extend_from_slice(&(advert.interval.get() & 0x0fff).to_be_bytes()),
    }
    out.extend_from_slice(&[0, 0]); // checksum, filled in below
    for addr in &advert.addresses {
        match addr {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
    }
    if advert.version == Version::V2 {
        // RFC 3768 §5.3.10: the password NUL-padded, or zeros without authentication.
        match advert.auth {
            Auth::None => out.extend_from_slice(&[0; VRRP_V2_AUTH_LEN]),
            Auth::Pass(p) => out.extend_from_slice(&p),
        }
    }
    let msg = out.get(start..).unwrap_or(&[]);
    let mut sum = sum16(msg);
    if form.effective(advert.version, family) == ChecksumForm::WithPseudoHeader {
        sum += pseudo_sum(src, dst, msg.len()).unwrap_or(0);
    }
    let csum = csum_fold(sum).to_be_bytes();
    if let Some(field) = out.get_mut(start + 6..start + 8) {
        field.copy_from_slice(&csum);
    }
    Ok(())
}

/// Appends a whole IPv4 or IPv6 packet (header + VRRP message) to `out`, for tests and tools.
/// IPv4: no options, TOS 0xc0, ID 0, no fragmentation flags, header checksum; IPv6: traffic
/// class 0xc0, flow label 0, no extension headers. `ttl` is the TTL / hop limit (255 on the
/// wire, RFC 9568 §5.1.1.3 / §5.1.2.3). On error `out` is left unchanged.
pub fn encode_ip(
    advert: &Advert,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    form: ChecksumForm,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let (family, count) = check_encodable(advert, src, dst)?;
    let len = message_len(advert.version, family, count);
    let start = out.len();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total =
                u16::try_from(IPV4_MIN_HLEN + len).map_err(|_| EncodeError::TooManyAddresses {
                    count: advert.addresses.len(),
                })?;
            out.extend_from_slice(&[0x45, TOS_INTERNETWORK_CONTROL]);
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]); // ID 0, no flags, offset 0
            out.extend_from_slice(&[ttl, IPPROTO_VRRP, 0, 0]); // header checksum below
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let csum = csum_fold(sum16(out.get(start..).unwrap_or(&[]))).to_be_bytes();
            if let Some(field) = out.get_mut(start + 10..start + 12) {
                field.copy_from_slice(&csum);
            }
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen = u16::try_from(len).map_err(|_| EncodeError::TooManyAddresses {
                count: advert.addresses.len(),
            })?;
            // Version 6, traffic class, flow label 0 (RFC 8200 §3).
            let vtf: u32 = (6 << 28) | (u32::from(TOS_INTERNETWORK_CONTROL) << 20);
            out.extend_from_slice(&vtf.to_be_bytes());
            out.extend_from_slice(&plen.to_be_bytes());
            out.extend_from_slice(&[IPPROTO_VRRP, ttl]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        // check_encodable rejected mixed families.
        _ => return Err(EncodeError::WrongFamilyAddress { addr: dst }),
    }
    if let Err(e) = encode(advert, src, dst, form, out) {
        out.truncate(start);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3_advert(addrs: &[IpAddr]) -> Advert {
        Advert {
            version: Version::V3,
            vrid: Vrid::new(51).unwrap(),
            priority: Priority(100),
            interval: Centisecs(100),
            addresses: addrs.to_vec(),
            auth: Auth::None,
        }
    }

    /// Found by the xdp_classify fuzz target: the XDP program accepted this VRRPv2 advert
    /// (its checksum field is 0xffff, the computed one 0x0000: both one's-complement zero)
    /// and the codec refused it.
    #[test]
    fn negative_zero_checksum_is_accepted() {
        let hex = "45c0002c00030000ff70188bc0000201e0000012\
                   21330102 0001ffff fffff69c c0000264 c0000265 31313131";
        let packet: Vec<u8> = hex
            .split_whitespace()
            .collect::<String>()
            .as_bytes()
            .chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect();
        let (_, d) = decode_ip(&packet).unwrap();
        assert_eq!(d.checksum, ChecksumForm::WithoutPseudoHeader);
        let mut positive = packet.clone();
        positive[26] = 0;
        positive[27] = 0;
        assert_eq!(decode_ip(&positive).unwrap().1, d);
        assert!(same_checksum(0, 0xffff) && same_checksum(0xffff, 0));
        assert!(!same_checksum(1, 0xffff) && !same_checksum(0xfffe, 0));
    }

    #[test]
    fn sum16_pads_odd_bytes() {
        assert_eq!(sum16(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum16(&[]), 0);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded), checksum 220d.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(csum_fold(sum16(&bytes)), !0xddf2);
    }

    #[test]
    fn view_accessors() {
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let dst: IpAddr = "224.0.0.18".parse().unwrap();
        let a = v3_advert(&["192.0.2.100".parse().unwrap()]);
        let mut out = Vec::new();
        encode(&a, src, dst, ChecksumForm::WithPseudoHeader, &mut out).unwrap();
        let p = VrrpPacket::new_checked(&out, Family::V4).unwrap();
        assert_eq!(
            (p.version(), p.kind(), p.vrid(), p.priority(), p.count()),
            (3, 1, 51, 100, 1)
        );
        assert_eq!(p.max_adver_int(), Centisecs(100));
        assert_eq!(p.reserved(), 0);
        assert_eq!(p.addresses().collect::<Vec<_>>(), a.addresses);
        assert!(VrrpPacket::new_checked(out.get(..11).unwrap(), Family::V4).is_err());
    }

    #[test]
    fn encode_appends_and_leaves_out_alone_on_error() {
        let src: IpAddr = "192.0.2.1".parse().unwrap();
        let dst: IpAddr = "224.0.0.18".parse().unwrap();
        let mut out = vec![0xaa];
        encode(
            &v3_advert(&[]),
            src,
            dst,
            ChecksumForm::WithPseudoHeader,
            &mut out,
        )
        .unwrap_err();
        encode_ip(
            &v3_advert(&[]),
            src,
            dst,
            255,
            ChecksumForm::WithPseudoHeader,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(out, [0xaa]);
        encode(
            &v3_advert(&[src]),
            src,
            dst,
            ChecksumForm::WithPseudoHeader,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1 + 12);
        let meta = RxMeta { src, dst, ttl: 255 };
        assert!(decode(&meta, out.get(1..).unwrap()).is_ok());
    }

    #[test]
    fn kinds_are_listed() {
        let e = DecodeError::IntervalZero;
        assert!(DecodeError::KINDS.contains(&e.kind()));
        let mut k = DecodeError::KINDS.to_vec();
        k.sort_unstable();
        k.dedup();
        assert_eq!(k.len(), DecodeError::KINDS.len());
    }
}
