//! Counters the XDP program keeps, and the records it hands to the agent.

use core::mem::size_of;

/// `EventHeader::kind`: a valid advert with news (first, new source, priority or interval
/// change, priority 0, return after silence). The data is the IP packet, from its header.
pub const EVENT_ADVERT: u16 = 1;
/// An ARP packet claiming an owned IPv4 VIP from another MAC. The data is the Ethernet frame.
pub const EVENT_ARP_CONFLICT: u16 = 2;
/// A Neighbor Advertisement for an owned IPv6 VIP with another link-layer address. The data
/// is the Ethernet frame.
pub const EVENT_NA_CONFLICT: u16 = 3;

/// A virtual router's `SILENCE` timer ran out: no advert from its master for the interval the
/// agent set. The data is a [`SilentRecord`]; `ifindex` is the interface of the master's last
/// advert.
pub const EVENT_MASTER_SILENT: u16 = 4;

/// Data of an `EVENT_MASTER_SILENT` record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SilentRecord {
    /// The `maps::vrid_slot` of the virtual router.
    pub slot: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// `SilenceTimer::started_ns`: the kernel time of the master's last advert.
    pub started_ns: u64,
}

pub const SILENT_RECORD_LEN: usize = size_of::<SilentRecord>();
const _: () = assert!(SILENT_RECORD_LEN == 16);

/// A `EVENT_MASTER_SILENT` record as the program reserves it.
#[repr(C)]
pub struct SilentEvent {
    pub header: EventHeader,
    pub data: SilentRecord,
}

/// Data capacity of a small record: every ARP/NA frame, and adverts up to 512 bytes of IP
/// packet (IPv4 with up to 113 addresses, IPv6 with up to 29).
pub const EVENT_DATA_SMALL: usize = 512;
/// Data capacity of a large record: the largest valid advert, IPv6 header + VRRPv3 with 255
/// IPv6 addresses (40 + 8 + 255 × 16 = 4128; IPv4 with options and 255 addresses + v2 auth is
/// 1096). Longer packets (an IP length beyond the VRRP message) are truncated to this:
/// `EventHeader::len < orig_len` then, and the agent cannot decode the packet.
pub const EVENT_DATA_MAX: usize = 4128;

/// Head of every `EVENTS` record; `len` bytes of data follow it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// `EVENT_*`.
    pub kind: u16,
    /// Explicit padding.
    pub _pad: u16,
    /// Interface the frame arrived on (0 under BPF_PROG_TEST_RUN).
    pub ifindex: u32,
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) at reception.
    pub ts_ns: u64,
    /// Bytes of data following the header (at most the record's capacity).
    pub len: u32,
    /// Bytes the packet (adverts: IP packet; conflicts: frame) had; more than `len` when
    /// truncated.
    pub orig_len: u32,
}

pub const EVENT_HEADER_LEN: usize = size_of::<EventHeader>();
const _: () = assert!(EVENT_HEADER_LEN == 24);

/// A record as the program reserves it in the ring: header and fixed-capacity data.
#[repr(C)]
pub struct EventRecord<const N: usize> {
    pub header: EventHeader,
    pub data: [u8; N],
}

const _: () = assert!(size_of::<EventRecord<EVENT_DATA_SMALL>>() == 24 + 512);
const _: () = assert!(size_of::<EventRecord<EVENT_DATA_MAX>>() == 24 + 4128);
const _: () = assert!(EVENT_DATA_MAX.is_multiple_of(8) && EVENT_DATA_SMALL.is_multiple_of(8));

/// Index into the per-CPU `COUNTERS` array. Drop reasons come first, in the order the
/// program checks them (ETH/IP bounds, protocol, TTL, version/type, VRID, length, auth, checksum).
pub mod counter {
    /// A VRRP advert that passed every check the data plane makes.
    pub const ADVERT_VALID: u32 = 0;
    /// The frame ends before the VRRP header or the length the IP header claims.
    pub const DROP_TRUNCATED: u32 = 1;
    /// A fragment of a VRRP packet; adverts are never fragmented in practice.
    pub const DROP_FRAGMENT: u32 = 2;
    /// TTL / hop limit is not 255: the advert did not originate on this link (RFC 9568 §7.1).
    pub const DROP_BAD_TTL: u32 = 3;
    /// Version is neither 2 nor 3, or not the one configured for the VRID.
    pub const DROP_BAD_VERSION: u32 = 4;
    /// Type is not ADVERTISEMENT (1).
    pub const DROP_BAD_TYPE: u32 = 5;
    /// No instance on this interface uses the VRID (counted per VRID as well).
    pub const DROP_UNKNOWN_VRID: u32 = 6;
    /// The VRRP length is not what the address count requires (shorter, or trailing bytes),
    /// or the advert has no address.
    pub const DROP_BAD_LENGTH: u32 = 7;
    /// VRRPv2 authentication mismatch: another auth type than configured, or the wrong
    /// simple password (RFC 3768 §5.3.6.1).
    pub const DROP_AUTH: u32 = 8;
    /// Unicast mode: the source is not one of the configured peers.
    pub const DROP_PEER_NOT_ALLOWED: u32 = 9;
    /// The VRRP checksum is wrong in every form the family allows.
    pub const DROP_BAD_CHECKSUM: u32 = 10;
    /// A valid IPv4 VRRPv3 advert whose checksum covers the pseudo-header (keepalived, FRR).
    pub const V3_CSUM_WITH_PSEUDO: u32 = 11;
    /// A valid IPv4 VRRPv3 advert whose checksum is the RFC 9568 form, without pseudo-header.
    pub const V3_CSUM_WITHOUT_PSEUDO: u32 = 12;
    /// A valid advert handed to the agent through the events ring buffer.
    pub const ADVERT_EVENT: u32 = 13;
    /// A valid advert absorbed in the kernel (nothing new: only its timestamp was refreshed).
    pub const ADVERT_ABSORBED: u32 = 14;
    /// The events ring buffer was full: the record was lost (the advert's `ADVERTS` state is
    /// still updated, and the advert itself is passed to the stack).
    pub const EVENT_RING_FULL: u32 = 15;
    /// ARP requests for an owned VIP answered with XDP_TX.
    pub const ARP_REPLIED: u32 = 16;
    /// Neighbor Solicitations for an owned VIP answered with XDP_TX.
    pub const NS_REPLIED: u32 = 17;
    /// ARP replies / gratuitous ARP claiming an owned VIP from another MAC (split-brain signal).
    pub const ARP_CONFLICT: u32 = 18;
    /// Neighbor Advertisements claiming an owned VIP from another MAC.
    pub const NA_CONFLICT: u32 = 19;
    /// Requests for an owned VIP not answered because the agent's liveness stamp is stale
    /// (passed to the stack instead).
    pub const DEADMAN_SILENCED: u32 = 20;

    /// A VRRPv2 advert whose interval differs from ours (RFC 3768 §7.1: MUST be discarded), or
    /// an advert with an interval of 0.
    pub const DROP_BAD_INTERVAL: u32 = 21;
    /// An IPv4 header whose checksum is wrong (the stack would drop it; so do we, before it
    /// can stand in for the master in `ADVERTS`).
    pub const DROP_BAD_IP_HEADER: u32 = 22;
    /// A `SILENCE` timer ran out: the master was silent for the agent's Master_Down_Interval
    /// (reported as `EVENT_MASTER_SILENT`).
    pub const MASTER_SILENT: u32 = 23;
    /// `bpf_timer_init`, `bpf_timer_set_callback` or `bpf_timer_start` failed: the agent's own
    /// timer still covers the instance.
    pub const SILENCE_TIMER_ERROR: u32 = 24;
    /// Frames for an owned virtual MAC (`use_vmac`) re-addressed to the interface MAC.
    pub const VMAC_TO_HOST: u32 = 25;
    /// RFC 9568 erratum 8300: an IPv6 advert whose first address is not link-local, dropped
    /// for a VRID with `VRID_F_FIRST_LINK_LOCAL`.
    pub const DROP_FIRST_NOT_LINK_LOCAL: u32 = 26;

    /// Requests for an owned VIP not answered because a higher-priority master's advert holds
    /// the VRID's slot (`VRID_F_YIELD`): the new master answers, we are about to leave.
    pub const YIELDED: u32 = 27;

    pub const COUNT: u32 = 28;

    /// Prometheus/status label of each counter, indexed like the array.
    pub const NAMES: [&str; COUNT as usize] = [
        "valid",
        "truncated",
        "fragment",
        "bad_ttl",
        "bad_version",
        "bad_type",
        "unknown_vrid",
        "bad_length",
        "auth_mismatch",
        "peer_not_allowed",
        "bad_checksum",
        "v3_checksum_with_pseudo_header",
        "v3_checksum_without_pseudo_header",
        "advert_event",
        "advert_absorbed",
        "event_ring_full",
        "arp_replied",
        "ns_replied",
        "arp_conflict",
        "na_conflict",
        "deadman_silenced",
        "bad_interval",
        "bad_ip_header",
        "master_silent",
        "silence_timer_error",
        "vmac_to_host",
        "first_address_not_link_local",
        "yielded_to_higher_priority",
    ];

    /// True for the counters that mean "this advert was dropped".
    pub const fn is_drop(c: u32) -> bool {
        (c >= DROP_TRUNCATED && c <= DROP_BAD_CHECKSUM)
            || c == DROP_BAD_INTERVAL
            || c == DROP_BAD_IP_HEADER
            || c == DROP_FIRST_NOT_LINK_LOCAL
    }
}
