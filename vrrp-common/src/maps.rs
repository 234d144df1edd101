//! Map names and the `#[repr(C)]` layouts of their keys and values.
//!
//! One copy of the XDP object is loaded per interface, so every map here is per interface.

use core::mem::size_of;

/// `PerCpuArray<u64>` of `event::counter::COUNT` entries.
pub const COUNTERS: &str = "COUNTERS";
/// `Array<VridConfig>` of [`VRID_SLOTS`] entries, indexed by [`vrid_slot`].
pub const VRID_CONFIG: &str = "VRID_CONFIG";
/// `PerCpuArray<u64>` of [`VRID_SLOTS`] entries: adverts seen for VRIDs we do not run.
pub const FOREIGN_VRIDS: &str = "FOREIGN_VRIDS";
/// `Array<AdvertState>` of [`VRID_SLOTS`] entries, indexed by [`vrid_slot`]: the last valid
/// advert of each virtual router, timestamped by the kernel.
pub const ADVERTS: &str = "ADVERTS";
/// `Array<AdvertState>` like [`ADVERTS`], for the last sender that did not take the slot (a
/// lower-priority router, a stray): its repeats are absorbed too, so a steady stream of them
/// (or a flood) wakes the agent once, not per packet.
pub const OTHERS: &str = "OTHERS";
/// `Array<DataPlaneConfig>` of one entry (index 0): mode flags and the dead-man gate.
pub const CONFIG: &str = "CONFIG";
/// `HashMap<PeerKey, PeerLimits>` of at most [`PEERS_MAX`] entries: the unicast peers allowed
/// per virtual router when its [`VRID_F_UNICAST_PEERS`] flag is set, each with the TTL range
/// its unicast adverts must arrive with.
pub const PEERS: &str = "PEERS";
/// `HashMap<u32, OwnedVip>` of at most [`OWNED_VIPS_MAX`] entries: IPv4 VIPs this node
/// answers ARP for. The key is the address as stored on the wire (`u32::from_ne_bytes` of
/// the four octets).
pub const OWNED_VIPS: &str = "OWNED_VIPS";
/// `HashMap<[u8; 16], OwnedVip>` of at most [`OWNED_VIPS_MAX`] entries: IPv6 VIPs this node
/// answers Neighbor Solicitations for.
pub const OWNED_VIPS6: &str = "OWNED_VIPS6";
/// `RingBuf` of [`EVENT_RING_BYTES`]: records (`event::EventHeader` + bytes) for the agent.
pub const EVENTS: &str = "EVENTS";

/// BTF-defined `Array<SilenceTimer>` of [`VRID_SLOTS`] entries, indexed by [`vrid_slot`]: per
/// virtual router, a kernel timer that the program (re)starts with
/// [`VridConfig::master_down_ns`] on every advert from the master and that reports
/// `event::EVENT_MASTER_SILENT` when it runs out, so that a backup's agent sleeps while the
/// master talks. The agent only reads it (a write would cancel the timer).
pub const SILENCE: &str = "SILENCE";

/// `DEATH`: one [`DeathWatch`]. The tracepoint program [`DEATH_PROGRAM`] (on
/// `signal/signal_generate`) stamps `dead_ns` the instant a SIGKILL for the agent is
/// generated; from then on the XDP program answers no ARP/NS (the agent is dying, and its
/// teardown, which ends the XDP attachment, takes milliseconds more).
pub const DEATH: &str = "DEATH";
/// `DEATH_RING`: a small ring buffer the tracepoint program writes to when it stamps `DEATH`,
/// so the guardian process wakes at the kill instead of at the end of the agent's teardown.
pub const DEATH_RING: &str = "DEATH_RING";
/// The tracepoint program's name in the object.
pub const DEATH_PROGRAM: &str = "vrrp_agent_killed";
/// Byte size of `DEATH_RING` (one page: a handful of 8-byte records at most).
pub const DEATH_RING_BYTES: u32 = 4096;

/// The single entry of `DEATH`. The agent writes it once (its PID and the tracepoint's field
/// offsets, read from tracefs); the tracepoint program writes `dead_ns` only.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeathWatch {
    /// CLOCK_MONOTONIC ns of the kill; 0 while the agent lives.
    pub dead_ns: u64,
    /// The agent's PID (thread group id); 0: not watching.
    pub tgid: u32,
    /// Offsets of `sig`, `pid` and `result` in the tracepoint's record.
    pub sig_off: u16,
    pub pid_off: u16,
    pub result_off: u16,
    /// Explicit padding.
    pub _pad: [u16; 3],
}

const _: () = assert!(size_of::<DeathWatch>() == 24);

/// Capacity of `PEERS`.
pub const PEERS_MAX: u32 = 1024;
/// Capacity of `OWNED_VIPS` and of `OWNED_VIPS6` (keepalived's own limit per instance is
/// far lower; 255 VRIDs with a few VIPs each fit).
pub const OWNED_VIPS_MAX: u32 = 4096;
/// Size of the `EVENTS` ring: a power-of-two multiple of the page size (kernel rule).
pub const EVENT_RING_BYTES: u32 = 256 * 1024;

/// Slots in the per-VRID arrays: 256 VRIDs for IPv4, then 256 for IPv6 (RFC 9568 §7.3: the
/// two families are separate virtual routers even with the same VRID).
pub const VRID_SLOTS: u32 = 512;

/// Index of a (family, VRID) pair in the per-VRID arrays.
#[inline(always)]
pub const fn vrid_slot(ipv6: bool, vrid: u8) -> u32 {
    vrid as u32 + if ipv6 { 256 } else { 0 }
}

/// The VRID has an instance on this interface.
pub const VRID_F_CONFIGURED: u32 = 1 << 0;
/// The instance speaks VRRPv2 (RFC 3768); otherwise VRRPv3.
pub const VRID_F_V2: u32 = 1 << 1;
/// VRRPv2 simple-password authentication: `auth_pass` must match (RFC 3768 §5.3.6.1).
pub const VRID_F_AUTH_PASS: u32 = 1 << 2;
/// Unicast mode: only sources listed in `PEERS` for this slot are accepted (keepalived's
/// `unicast_peer`); others are dropped with `DROP_PEER_NOT_ALLOWED`.
pub const VRID_F_UNICAST_PEERS: u32 = 1 << 3;
/// `VridConfig::flags`: we are master with `use_vmac`: frames sent to the VRID's virtual MAC
/// are ours, and XDP rewrites their destination to the interface MAC so the stack takes them
/// (it drops frames for any other MAC as PACKET_OTHERHOST; keepalived needs a macvlan for it).
pub const VRID_F_VMAC_OWNED: u32 = 1 << 4;
/// RFC 9568 §8.4 VRRPv2 interoperation on a VRRPv3 instance: v2 adverts are accepted too
/// (held to `interval_cs`, as v2 adverts always are) and reported to the agent every time,
/// never filed: the agent alone knows whether their sender also speaks v3 (then it ignores
/// them), and filing both would make every advert news.
pub const VRID_F_V2_INTEROP: u32 = 1 << 6;
/// We are master and advertise `own_priority` (VRRPv3): stop answering for the VRID's VIPs at
/// once when a fresh advert of a higher priority holds the slot. The agent leaves MASTER on
/// that advert anyway (RFC 9568 §6.4.3), but only after a ring event and a wake-up: under
/// load 13-36 ms of two answerers at each preemption and handover (soak seed 20261204).
pub const VRID_F_YIELD: u32 = 1 << 7;
/// RFC 9568 erratum 8300 (`vrrp_strict`): an IPv6 advert whose first address is not link-local
/// is dropped with `DROP_FIRST_NOT_LINK_LOCAL`, as the agent's router drops it.
pub const VRID_F_FIRST_LINK_LOCAL: u32 = 1 << 5;

/// What the data plane knows of one configured virtual router.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VridConfig {
    /// `VRID_F_*` bits.
    pub flags: u32,
    /// VRRPv2: the configured advert interval in centiseconds; adverts with another one are
    /// dropped (RFC 3768 §7.1). 0 = not checked (VRRPv3 learns the master's interval).
    pub interval_cs: u16,
    /// With `VRID_F_YIELD`: the priority of our adverts (0 while handing over).
    pub own_priority: u8,
    /// Explicit padding: the layout must not depend on the compiler.
    pub _pad: u8,
    /// The v2 password, NUL-padded to 8 bytes as on the wire.
    pub auth_pass: [u8; 8],
    /// The agent's Master_Down_Interval in ns while it is a backup that lets the kernel watch
    /// the master (`SILENCE`); 0 = no kernel timer.
    pub master_down_ns: u64,
}

impl VridConfig {
    #[inline(always)]
    pub const fn is_configured(&self) -> bool {
        self.flags & VRID_F_CONFIGURED != 0
    }
    /// The VRRP version this instance accepts.
    #[inline(always)]
    pub const fn version(&self) -> u8 {
        if self.flags & VRID_F_V2 != 0 { 2 } else { 3 }
    }
    /// A v3 instance that also takes VRRPv2 (RFC 9568 §8.4).
    #[inline(always)]
    pub const fn v2_interop(&self) -> bool {
        self.flags & VRID_F_V2_INTEROP != 0
    }
}

const _: () = assert!(size_of::<VridConfig>() == 24);

/// The kernel's `struct bpf_timer` (uapi/linux/bpf.h): opaque, 16 bytes, 8-aligned. The
/// verifier finds it in a map value by this BTF name, so the name must stay `bpf_timer`.
#[allow(
    non_camel_case_types,
    reason = "the verifier looks the type up by this BTF name"
)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct bpf_timer {
    pub opaque: [u64; 2],
}

/// `SilenceTimer::flags`: `bpf_timer_init` and `bpf_timer_set_callback` were done.
pub const SILENCE_F_READY: u32 = 1 << 0;

/// One `SILENCE` entry: the timer and what it was last started with. A user-space read sees
/// the timer zeroed (the kernel hides it) and the rest as the program wrote it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SilenceTimer {
    pub timer: bpf_timer,
    /// `bpf_ktime_get_ns()` of the advert that last (re)started the timer; 0 = never.
    pub started_ns: u64,
    /// The interval it was started with (`VridConfig::master_down_ns` at that advert).
    pub interval_ns: u64,
    /// Times it ran out (each posted `EVENT_MASTER_SILENT`, unless the ring was full).
    pub fired: u64,
    /// The interface of the advert that started it (for the event header).
    pub ifindex: u32,
    /// `SILENCE_F_*` bits.
    pub flags: u32,
}

const _: () = assert!(size_of::<SilenceTimer>() == 48);

impl SilenceTimer {
    /// When the timer runs out (or ran out) if no other advert restarts it; `None` if it was
    /// never started.
    #[inline(always)]
    pub const fn expiry_ns(&self) -> Option<u64> {
        if self.started_ns == 0 {
            None
        } else {
            Some(self.started_ns.saturating_add(self.interval_ns))
        }
    }
}

/// The last valid advert seen for one virtual router (one `ADVERTS` slot).
///
/// Written by the XDP program only; the agent reads it lazily (when its master-down timer
/// fires) and may clear a slot to get the next advert as an event again.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdvertState {
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) of the last valid advert; 0 = none yet.
    pub last_ns: u64,
    /// Valid adverts seen in this slot (absorbed and reported).
    pub count: u64,
    /// Source address of the last advert; IPv4 in the first 4 bytes, the rest zero.
    pub src: [u8; 16],
    pub priority: u8,
    /// VRRP version of the last advert (2 or 3).
    pub version: u8,
    /// Advertisement interval in centiseconds (v2 seconds × 100), host byte order.
    pub interval_cs: u16,
    /// Explicit padding: the layout must not depend on the compiler.
    pub _pad: u32,
}

const _: () = assert!(size_of::<AdvertState>() == 40);

/// What the data plane decides about a valid advert, given the state of its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Nothing new: refresh the timestamp and consume it.
    Absorb,
    /// New information (or the first advert, or one after a silence): report it.
    News,
}

/// Decides whether a valid advert says something the agent does not know yet.
///
/// New are: the first advert in the slot, another source, another priority, priority 0 (a
/// master resigning, RFC 9568 §6.4.3, always acted upon), another interval or version, and an
/// advert after a silence longer than three of its intervals (the agent may have declared the
/// master down meanwhile, RFC 9568 §6.4.2, so the sender's return is news even if unchanged).
///
/// `advert` carries the new advert's `src`, `priority`, `version` and `interval_cs`.
#[inline(always)]
pub const fn observe(state: &AdvertState, advert: &AdvertState, now_ns: u64) -> Observation {
    if state.last_ns == 0 || advert.priority == 0 {
        return Observation::News;
    }
    if state.priority != advert.priority
        || state.version != advert.version
        || state.interval_cs != advert.interval_cs
    {
        return Observation::News;
    }
    let mut i = 0;
    while i < 16 {
        if state.src[i] != advert.src[i] {
            return Observation::News;
        }
        i += 1;
    }
    // 1 cs = 10 ms; three intervals.
    let silence = advert.interval_cs as u64 * 30_000_000;
    if now_ns.wrapping_sub(state.last_ns) > silence {
        return Observation::News;
    }
    Observation::Absorb
}

/// Whether a valid advert takes over its VRID's `ADVERTS` slot: the slot follows the router a
/// backup listens to, so that a stray or rogue sender cannot hide the master's timestamps.
///
/// It does when the slot is empty, the sender is the same, its priority is higher, equal with
/// a higher address (RFC 9568 §6.4.3 tie-break), or the slot's sender has been silent for
/// three of its intervals. Otherwise the advert is still reported (it is news) but the slot
/// keeps the master's state.
#[inline(always)]
pub const fn takes_slot(state: &AdvertState, advert: &AdvertState, now_ns: u64) -> bool {
    if state.last_ns == 0 || advert.priority > state.priority {
        return true;
    }
    let silence = state.interval_cs as u64 * 30_000_000;
    if now_ns.wrapping_sub(state.last_ns) > silence {
        return true;
    }
    // Compare addresses as big-endian numbers: same sender, or the tie-break winner.
    let mut i = 0;
    while i < 16 {
        if advert.src[i] != state.src[i] {
            return advert.priority == state.priority && advert.src[i] > state.src[i];
        }
        i += 1;
    }
    true
}

/// Whether two slots hold the same sender (a loop: no `memcmp` in the BPF program).
#[inline(always)]
pub const fn same_sender(a: &AdvertState, b: &AdvertState) -> bool {
    let mut i = 0;
    while i < 16 {
        if a.src[i] != b.src[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `DataPlaneConfig::flags`: valid adverts are consumed in XDP (absorbed, or reported
/// through `EVENTS`) instead of being passed to the stack for a raw socket. All-zero (the
/// map's initial value) is raw-socket receive mode.
pub const CFG_F_CONSUME_ADVERTS: u32 = 1 << 0;

/// The single entry of `CONFIG`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataPlaneConfig {
    /// `CFG_F_*` bits.
    pub flags: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// CLOCK_MONOTONIC ns of the agent's last liveness refresh.
    pub liveness_ns: u64,
    /// The dead-man gate: when `now - liveness_ns > liveness_bound_ns` the program stops
    /// answering ARP/NS (the agent is hung or starved). 0 disables the gate.
    pub liveness_bound_ns: u64,
    /// The interface's own MAC: frames for an owned virtual MAC are re-addressed to it.
    pub mac: [u8; 6],
    /// Explicit padding.
    pub _pad2: [u8; 2],
}

const _: () = assert!(size_of::<DataPlaneConfig>() == 32);

impl DataPlaneConfig {
    #[inline(always)]
    pub const fn consume_adverts(&self) -> bool {
        self.flags & CFG_F_CONSUME_ADVERTS != 0
    }
    /// Whether the program may answer for the agent at `now_ns`.
    #[inline(always)]
    pub const fn alive(&self, now_ns: u64) -> bool {
        self.liveness_bound_ns == 0
            || now_ns.saturating_sub(self.liveness_ns) <= self.liveness_bound_ns
    }
}

/// Key of `PEERS`: a slot ([`vrid_slot`]) and an address (IPv4 in the first 4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerKey {
    pub slot: u32,
    pub addr: [u8; 16],
}

const _: () = assert!(size_of::<PeerKey>() == 20);

/// Value of `PEERS`: keepalived's `unicast_peer { A min_ttl N max_ttl M }`. A unicast advert
/// from the peer is accepted with a TTL / hop limit in `min_ttl..=max_ttl` (keepalived holds
/// unicast adverts to no fixed TTL, so that a peer a routed hop away works); 0..=255 when
/// not configured. Adverts to the multicast group stay held to 255.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    pub min_ttl: u8,
    pub max_ttl: u8,
    /// Explicit padding.
    pub _pad: u16,
}

const _: () = assert!(size_of::<PeerLimits>() == 4);

impl PeerLimits {
    /// No limit: keepalived's default for a `unicast_peer` line without options.
    pub const ANY: Self = Self::new(0, 255);

    #[inline(always)]
    pub const fn new(min_ttl: u8, max_ttl: u8) -> Self {
        Self {
            min_ttl,
            max_ttl,
            _pad: 0,
        }
    }

    #[inline(always)]
    pub const fn admits(&self, ttl: u8) -> bool {
        ttl >= self.min_ttl && ttl <= self.max_ttl
    }
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self::ANY
    }
}

/// `OwnedVip::flags`: answer Neighbor Solicitations with the Router flag (RFC 4861 §4.4). The
/// agent sets it for every VIP (RFC 9568 §6.4.3: the Active Router's NAs say "router").
pub const OWNED_F_ROUTER: u8 = 1 << 0;

/// A VIP this node answers for (value of `OWNED_VIPS` / `OWNED_VIPS6`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnedVip {
    /// The virtual router that owns it (for reports).
    pub vrid: u8,
    /// `OWNED_F_*` bits.
    pub flags: u8,
    /// The MAC to answer with: the interface's, or the VMAC 00:00:5e:00:01:{vrid}.
    pub mac: [u8; 6],
}

const _: () = assert!(size_of::<OwnedVip>() == 8);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), no implicit padding (sizes asserted above), every bit pattern is a
    // valid value. The same holds for each type below.
    unsafe impl aya::Pod for super::VridConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::AdvertState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DataPlaneConfig {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PeerKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PeerLimits {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::OwnedVip {}
    // SAFETY: as above (the timer is opaque bytes to user space).
    unsafe impl aya::Pod for super::SilenceTimer {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DeathWatch {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen() -> AdvertState {
        AdvertState {
            last_ns: 1_000_000_000,
            count: 3,
            src: [192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            priority: 100,
            version: 3,
            interval_cs: 100,
            _pad: 0,
        }
    }

    #[test]
    fn the_slot_follows_the_master_not_a_lower_or_stray_sender() {
        let s = seen();
        let now = s.last_ns + 1_000_000_000;
        let mut lower_addr = s.src;
        lower_addr[3] = 0;
        let mut higher_addr = s.src;
        higher_addr[3] = 9;
        assert!(takes_slot(&AdvertState::default(), &s, now));
        assert!(takes_slot(&s, &s, now));
        assert!(
            takes_slot(&s, &AdvertState { priority: 0, ..s }, now),
            "the master resigning"
        );
        assert!(takes_slot(
            &s,
            &AdvertState {
                src: lower_addr,
                priority: 101,
                ..s
            },
            now
        ));
        assert!(
            takes_slot(
                &s,
                &AdvertState {
                    src: higher_addr,
                    ..s
                },
                now
            ),
            "tie-break winner"
        );
        assert!(
            !takes_slot(
                &s,
                &AdvertState {
                    src: lower_addr,
                    ..s
                },
                now
            ),
            "tie-break loser"
        );
        assert!(!takes_slot(
            &s,
            &AdvertState {
                src: higher_addr,
                priority: 50,
                ..s
            },
            now
        ));
        // After three silent intervals of the master, anyone takes the slot.
        let late = s.last_ns + 3_100_000_000;
        assert!(takes_slot(
            &s,
            &AdvertState {
                src: higher_addr,
                priority: 50,
                ..s
            },
            late
        ));
    }

    #[test]
    fn unchanged_adverts_are_absorbed() {
        let s = seen();
        let now = s.last_ns + 1_000_000_000;
        assert_eq!(observe(&s, &s, now), Observation::Absorb);
    }

    #[test]
    fn anything_new_is_news() {
        let s = seen();
        let now = s.last_ns + 1_000_000_000;
        let mut other = s.src;
        other[3] = 2;
        let news = |a: AdvertState, at: u64| observe(&s, &a, at) == Observation::News;
        assert_eq!(observe(&AdvertState::default(), &s, now), Observation::News);
        assert!(news(AdvertState { src: other, ..s }, now));
        assert!(news(AdvertState { priority: 101, ..s }, now));
        assert!(news(AdvertState { priority: 0, ..s }, now));
        assert!(news(
            AdvertState {
                interval_cs: 50,
                ..s
            },
            now
        ));
        assert!(news(AdvertState { version: 2, ..s }, now));
        // Back after more than three intervals of silence.
        assert!(news(s, s.last_ns + 3_000_000_001));
        assert!(!news(s, s.last_ns + 3_000_000_000));
    }

    #[test]
    fn dead_man_gate() {
        let mut c = DataPlaneConfig::default();
        assert!(c.alive(u64::MAX), "bound 0 disables the gate");
        c.liveness_ns = 1_000;
        c.liveness_bound_ns = 500;
        assert!(c.alive(1_500));
        assert!(!c.alive(1_501));
        // A stamp from the future (clock read races) counts as fresh.
        assert!(c.alive(10));
    }
}
