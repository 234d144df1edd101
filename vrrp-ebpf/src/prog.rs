use core::ffi::c_void;
use core::mem::size_of;

use aya_ebpf::bindings::xdp_action::{XDP_DROP, XDP_PASS, XDP_TX};
use aya_ebpf::btf_maps;
use aya_ebpf::helpers::generated::{
    bpf_ktime_get_ns, bpf_timer_init, bpf_timer_set_callback, bpf_timer_start, bpf_xdp_adjust_tail,
    bpf_xdp_load_bytes,
};
use aya_ebpf::macros::{btf_map, map, tracepoint, xdp};
use aya_ebpf::maps::{Array, HashMap, PerCpuArray, RingBuf};
use aya_ebpf::programs::TracePointContext;
use aya_ebpf::programs::XdpContext;
use vrrp_common::event::{
    EVENT_ADVERT, EVENT_ARP_CONFLICT, EVENT_DATA_MAX, EVENT_DATA_SMALL, EVENT_MASTER_SILENT,
    EVENT_NA_CONFLICT, EventHeader, EventRecord, SILENT_RECORD_LEN, SilentEvent, SilentRecord,
    counter,
};
use vrrp_common::maps::{
    AdvertState, DEATH_RING_BYTES, DataPlaneConfig, DeathWatch, EVENT_RING_BYTES, OWNED_F_ROUTER,
    OWNED_VIPS_MAX, Observation, OwnedVip, PEERS_MAX, PeerKey, SILENCE_F_READY, SilenceTimer,
    VRID_F_AUTH_PASS, VRID_F_UNICAST_PEERS, VRID_F_VMAC_OWNED, VRID_SLOTS, VridConfig, observe,
    same_sender, takes_slot, vrid_slot,
};
use vrrp_common::respond::{
    Arp, NA_FRAME_LEN, ND_FIXED_LEN, ND_HOP_LIMIT, ND_OPT_SOURCE_LL, ND_OPT_TARGET_LL, arp_reply,
    is_solicited_node, is_unspecified, neighbor_advert,
};
use vrrp_common::verdict::{AdvertFields, auth_ok, classify, csum_fold};
use vrrp_common::wire::{
    ARP_LEN, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ICMPV6_NA, ICMPV6_NS, IPPROTO_ICMPV6,
    IPPROTO_VRRP, IPV4_MIN_HLEN, IPV6_HLEN, VRRP_HEADER_LEN, vmac_vrid,
};

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

#[map]
static VRID_CONFIG: Array<VridConfig> = Array::with_max_entries(VRID_SLOTS, 0);

#[map]
static FOREIGN_VRIDS: PerCpuArray<u64> = PerCpuArray::with_max_entries(VRID_SLOTS, 0);

#[map]
static ADVERTS: Array<AdvertState> = Array::with_max_entries(VRID_SLOTS, 0);

#[map]
static OTHERS: Array<AdvertState> = Array::with_max_entries(VRID_SLOTS, 0);

#[map]
static CONFIG: Array<DataPlaneConfig> = Array::with_max_entries(1, 0);

#[map]
static PEERS: HashMap<PeerKey, u32> = HashMap::with_max_entries(PEERS_MAX, 0);

#[map]
static OWNED_VIPS: HashMap<u32, OwnedVip> = HashMap::with_max_entries(OWNED_VIPS_MAX, 0);

#[map]
static OWNED_VIPS6: HashMap<[u8; 16], OwnedVip> = HashMap::with_max_entries(OWNED_VIPS_MAX, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(EVENT_RING_BYTES, 0);

#[map]
static DEATH: Array<DeathWatch> = Array::with_max_entries(1, 0);

#[map]
static DEATH_RING: RingBuf = RingBuf::with_byte_size(DEATH_RING_BYTES, 0);

/// A map value holding a `bpf_timer` must be described by BTF (the verifier finds the timer
/// by its type), hence a BTF-defined map.
#[btf_map]
static SILENCE: btf_maps::Array<SilenceTimer, { VRID_SLOTS as usize }> = btf_maps::Array::new();

/// `CLOCK_MONOTONIC` for `bpf_timer_init`, the clock of `bpf_ktime_get_ns`.
const CLOCK_MONOTONIC: u64 = 1;

/// Variable packet offsets are masked to this so the verifier can bound them: pointer offset
/// plus access size must stay within its 64 KiB packet-offset limit.
const MAX_OFF: usize = 0x3fff;

/// Largest IPv4 header: IHL 15 words (RFC 791 §3.1); bounds the header checksum loop.
const MAX_IPV4_HLEN: usize = 60;

/// Largest VRRP message: header + 255 IPv6 addresses (RFC 9568 §5.1); bounds the checksum loop.
const MAX_VRRP_LEN: usize = VRRP_HEADER_LEN + 255 * 16;

/// Largest NS/NA we check and answer: the fixed part and a few options. Longer ones (never
/// seen in practice) go to the stack untouched.
const MAX_ND_LEN: usize = 256;

/// Options looked at in an NS or NA; RFC 4861 messages carry one link-layer option.
const MAX_ND_OPTIONS: usize = 4;

#[xdp]
pub fn vrrp_xdp(ctx: XdpContext) -> u32 {
    match try_xdp(&ctx) {
        Some(action) => action,
        // Anything we cannot parse belongs to the kernel stack (fail open).
        None => XDP_PASS,
    }
}

/// A pointer to a `T` at `off` bytes into the frame, if the frame is long enough.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

/// A writable pointer to a `T` at `off` bytes into the frame, if the frame is long enough.
#[inline(always)]
fn ptr_at_mut<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    Some(ptr_at::<T>(ctx, off)? as *mut T)
}

/// A copy of the `T` at `off` bytes into the frame.
#[inline(always)]
fn read<T: Copy>(ctx: &XdpContext, off: usize) -> Option<T> {
    // SAFETY: ptr_at checked that the `size_of::<T>()` bytes lie inside the frame; T is a
    // byte array or integer (any bit pattern valid), read unaligned.
    Some(unsafe { ptr_at::<T>(ctx, off)?.read_unaligned() })
}

/// One byte at a constant offset. (At a variable offset LLVM turns `p + 1 > end` into
/// `p >= end`, which the verifier does not accept as a bound: read a 16-bit word there.)
#[inline(always)]
fn byte_at(ctx: &XdpContext, off: usize) -> Option<u8> {
    // SAFETY: ptr_at checked that the byte lies inside the frame.
    Some(unsafe { *ptr_at::<u8>(ctx, off)? })
}

#[inline(always)]
fn be16_at(ctx: &XdpContext, off: usize) -> Option<u16> {
    // SAFETY: ptr_at checked that both bytes lie inside the frame.
    let b = unsafe { *ptr_at::<[u8; 2]>(ctx, off)? };
    Some(u16::from_be_bytes(b))
}

#[inline(always)]
fn count(c: u32) {
    if let Some(p) = COUNTERS.get_ptr_mut(c) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while the program runs.
        unsafe { *p += 1 };
    }
}

#[inline(always)]
fn now_ns() -> u64 {
    // SAFETY: bpf_ktime_get_ns has no arguments and no preconditions (CLOCK_MONOTONIC).
    unsafe { bpf_ktime_get_ns() }
}

#[inline(always)]
fn config() -> DataPlaneConfig {
    match CONFIG.get(0) {
        Some(c) => *c,
        None => DataPlaneConfig::default(),
    }
}

/// Bytes in the frame.
#[inline(always)]
fn frame_len(ctx: &XdpContext) -> usize {
    ctx.data_end().saturating_sub(ctx.data())
}

#[inline(always)]
fn try_xdp(ctx: &XdpContext) -> Option<u32> {
    vmac_to_host(ctx);
    // VLAN-tagged frames belong to VLAN devices, not to this interface's instances.
    match be16_at(ctx, 12)? {
        ETH_P_IP => vrrp_v4(ctx),
        ETH_P_IPV6 => ipv6(ctx),
        ETH_P_ARP => arp(ctx),
        _ => Some(XDP_PASS),
    }
}

/// A frame for the virtual MAC of a VRID we are master of with `use_vmac` is ours: give it
/// the interface's MAC so the stack does not drop it as another host's.
#[inline(always)]
fn vmac_to_host(ctx: &XdpContext) {
    let Some(dst) = read::<[u8; 6]>(ctx, 0) else {
        return;
    };
    let Some((ipv6, vrid)) = vmac_vrid(&dst) else {
        return;
    };
    let owned = VRID_CONFIG
        .get(vrid_slot(ipv6, vrid))
        .is_some_and(|c| c.flags & VRID_F_VMAC_OWNED != 0);
    if !owned {
        return;
    }
    let mac = config().mac;
    if let Some(p) = ptr_at_mut::<[u8; 6]>(ctx, 0) {
        // SAFETY: ptr_at checked the 6 bytes lie inside the frame, which XDP may rewrite.
        unsafe { p.write_unaligned(mac) };
        count(counter::VMAC_TO_HOST);
    }
}

// ------------------------------------------------------------------------------------------
// Events.

/// Copies `len` bytes of the frame from `off` into an `EVENTS` record of kind `kind`.
/// Returns false if it could not (ring full: counted; copy failure: record discarded).
#[inline(always)]
fn report(ctx: &XdpContext, kind: u16, off: usize, len: usize) -> bool {
    if len <= EVENT_DATA_SMALL {
        emit::<EVENT_DATA_SMALL>(ctx, kind, off, len)
    } else {
        emit::<EVENT_DATA_MAX>(ctx, kind, off, len)
    }
}

#[inline(always)]
fn emit<const N: usize>(ctx: &XdpContext, kind: u16, off: usize, len: usize) -> bool {
    // The reservation size must be a verifier constant: records have a fixed capacity and
    // `len` says how much of it is data (truncation is documented with EVENT_DATA_MAX).
    let Some(mut entry) = EVENTS.reserve::<EventRecord<N>>(0) else {
        count(counter::EVENT_RING_FULL);
        return false;
    };
    let n = if len > N { N } else { len };
    // Re-read through the stack so LLVM keeps both bound checks on the very register passed
    // to the helper (otherwise it tests `len != 0` on another copy and the verifier sees a
    // possibly zero size).
    // SAFETY: reading a local.
    let n = unsafe { core::ptr::read_volatile(&n) };
    if n == 0 || n > N {
        entry.discard(0);
        return false;
    }
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points to a reserved record of size_of::<EventRecord<N>>() bytes; the
    // header is written whole, and bpf_xdp_load_bytes writes at most `n <= N` bytes into the
    // data array (it checks `off + n` against the frame itself and fails otherwise).
    let copied = unsafe {
        (*rec).header = EventHeader {
            kind,
            _pad: 0,
            ifindex: ctx.ingress_ifindex() as u32,
            ts_ns: now_ns(),
            len: n as u32,
            orig_len: len as u32,
        };
        bpf_xdp_load_bytes(
            ctx.ctx,
            off as u32,
            (*rec).data.as_mut_ptr() as *mut c_void,
            n as u32,
        )
    };
    if copied != 0 {
        entry.discard(0);
        return false;
    }
    entry.submit(0);
    true
}

// ------------------------------------------------------------------------------------------
// VRRP adverts.

#[inline(always)]
fn vrrp_v4(ctx: &XdpContext) -> Option<u32> {
    let ip = ETH_HLEN;
    let vihl = byte_at(ctx, ip)?;
    if byte_at(ctx, ip + 9)? != IPPROTO_VRRP {
        return Some(XDP_PASS);
    }
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if vihl >> 4 != 4 || ihl < IPV4_MIN_HLEN {
        return None;
    }
    let total = be16_at(ctx, ip + 2)? as usize;
    let frag = be16_at(ctx, ip + 6)?;
    let f = AdvertFields {
        ipv6: false,
        ttl: byte_at(ctx, ip + 8)?,
        // More-fragments flag or a non-zero offset.
        fragment: frag & 0x3fff != 0,
        vrrp_len: total.saturating_sub(ihl) as u16,
        captured_len: captured(ctx, ip + ihl),
        ..header_fields(ctx, ip + ihl)
    };
    // The stack drops a bad IPv4 header; so do we, before it can touch ADVERTS. With options
    // too: the agent's codec refuses them, so they must not refresh ADVERTS either.
    if csum_fold(sum16::<{ MAX_IPV4_HLEN / 2 }>(ctx, ip, ihl)?) != 0 {
        count(counter::DROP_BAD_IP_HEADER);
        return Some(XDP_DROP);
    }
    // Source and destination addresses, for the pseudo-header (RFC 9568 §5.2.8).
    let addrs: [u8; 8] = read(ctx, ip + 12)?;
    let mut src = [0u8; 16];
    src[0] = addrs[0];
    src[1] = addrs[1];
    src[2] = addrs[2];
    src[3] = addrs[3];
    verdict(ctx, &f, ip + ihl, sum_words(&addrs), src, total)
}

#[inline(always)]
fn ipv6(ctx: &XdpContext) -> Option<u32> {
    let ip = ETH_HLEN;
    if byte_at(ctx, ip)? >> 4 != 6 {
        return None;
    }
    // Extension headers before VRRP or ICMPv6 are not parsed here: the stack gets them
    // (fail open).
    match byte_at(ctx, ip + 6)? {
        IPPROTO_VRRP => vrrp_v6(ctx),
        IPPROTO_ICMPV6 => nd(ctx),
        _ => Some(XDP_PASS),
    }
}

#[inline(always)]
fn vrrp_v6(ctx: &XdpContext) -> Option<u32> {
    let ip = ETH_HLEN;
    let f = AdvertFields {
        ipv6: true,
        ttl: byte_at(ctx, ip + 7)?,
        fragment: false,
        vrrp_len: be16_at(ctx, ip + 4)?,
        captured_len: captured(ctx, ip + IPV6_HLEN),
        ..header_fields(ctx, ip + IPV6_HLEN)
    };
    // Source and destination addresses, for the pseudo-header (RFC 8200 §8.1). One fixed-size
    // read: a loop of packet reads invites LLVM to do arithmetic on pkt_end, which the
    // verifier forbids.
    let addrs: [u8; 32] = read(ctx, ip + 8)?;
    let src: [u8; 16] = read(ctx, ip + 8)?;
    let total = IPV6_HLEN + f.vrrp_len as usize;
    verdict(ctx, &f, ip + IPV6_HLEN, sum_words(&addrs), src, total)
}

/// Bytes present in the frame from `off` to its end.
#[inline(always)]
fn captured(ctx: &XdpContext, off: usize) -> u16 {
    let len = ctx.data_end().saturating_sub(ctx.data() + off);
    if len > u16::MAX as usize {
        u16::MAX
    } else {
        len as u16
    }
}

/// The fixed VRRP header fields, left zero when the frame is too short (classify reports it).
#[inline(always)]
fn header_fields(ctx: &XdpContext, off: usize) -> AdvertFields {
    match ptr_at::<[u8; VRRP_HEADER_LEN]>(ctx, off) {
        // SAFETY: ptr_at checked the 8 header bytes lie inside the frame.
        Some(p) => {
            let h = unsafe { *p };
            AdvertFields {
                version_type: h[0],
                vrid: h[1],
                priority: h[2],
                count: h[3],
                word2: u16::from_be_bytes([h[4], h[5]]),
                ..AdvertFields::default()
            }
        }
        None => AdvertFields::default(),
    }
}

/// The checks of RFC 9568 §7.1 (RFC 3768 §7.1 for v2), then what to do with a valid advert.
/// `src` is the IP source (IPv4 in the first 4 bytes), `ip_len` the IP packet's length.
#[inline(always)]
fn verdict(
    ctx: &XdpContext,
    f: &AdvertFields,
    vrrp: usize,
    pseudo_addrs: u64,
    src: [u8; 16],
    ip_len: usize,
) -> Option<u32> {
    let slot = vrid_slot(f.ipv6, f.vrid);
    let cfg = match VRID_CONFIG.get(slot) {
        Some(c) => *c,
        None => VridConfig::default(),
    };
    if let Err(reason) = classify(f, &cfg) {
        count(reason);
        if reason == counter::DROP_UNKNOWN_VRID {
            if let Some(p) = FOREIGN_VRIDS.get_ptr_mut(slot) {
                // SAFETY: per-CPU slot, no concurrent writer on this CPU.
                unsafe { *p += 1 };
            }
        }
        return Some(XDP_DROP);
    }
    let len = f.vrrp_len as usize;
    if f.version() == 2 && cfg.flags & VRID_F_AUTH_PASS != 0 {
        // RFC 3768 §5.1: auth type is byte 4, the 8 auth bytes follow the addresses.
        let at = vrrp + VRRP_HEADER_LEN + (f.count as usize) * 4;
        let data: [u8; 8] = read(ctx, at & MAX_OFF)?;
        if !auth_ok(&cfg, f.auth_type(), &data) {
            count(counter::DROP_AUTH);
            return Some(XDP_DROP);
        }
    }
    // keepalived's unicast_peer: adverts from anyone else are not ours to consider.
    if cfg.flags & VRID_F_UNICAST_PEERS != 0 {
        let key = PeerKey { slot, addr: src };
        if PEERS.get_ptr(&key).is_none() {
            count(counter::DROP_PEER_NOT_ALLOWED);
            return Some(XDP_DROP);
        }
    }
    let sum = sum16::<{ MAX_VRRP_LEN / 2 }>(ctx, vrrp, len)?;
    // Pseudo-header tail: upper-layer length and protocol (RFC 8200 §8.1, RFC 9568 §5.2.8).
    let with_pseudo = sum + pseudo_addrs + len as u64 + IPPROTO_VRRP as u64;
    if f.version() == 2 {
        // RFC 3768 §5.3.8: the checksum covers the VRRP message only.
        if csum_fold(sum) != 0 {
            count(counter::DROP_BAD_CHECKSUM);
            return Some(XDP_DROP);
        }
    } else if f.ipv6 {
        if csum_fold(with_pseudo) != 0 {
            count(counter::DROP_BAD_CHECKSUM);
            return Some(XDP_DROP);
        }
    } else if csum_fold(with_pseudo) == 0 {
        // keepalived and FRR include the pseudo-header for IPv4 v3 by default.
        count(counter::V3_CSUM_WITH_PSEUDO);
    } else if csum_fold(sum) == 0 {
        // RFC 9568 §5.2.8 as written, also Cisco and Juniper.
        count(counter::V3_CSUM_WITHOUT_PSEUDO);
    } else {
        count(counter::DROP_BAD_CHECKSUM);
        return Some(XDP_DROP);
    }
    count(counter::ADVERT_VALID);
    Some(deliver(ctx, f, slot, src, ip_len))
}

/// A valid advert: timestamp it in `ADVERTS`, then absorb it, report it, or pass it.
#[inline(always)]
fn deliver(ctx: &XdpContext, f: &AdvertFields, slot: u32, src: [u8; 16], ip_len: usize) -> u32 {
    let now = now_ns();
    let interval = f.interval_cs();
    let seen = match ADVERTS.get_ptr_mut(slot) {
        Some(p) => {
            // SAFETY: `p` points to this slot's value in the array map. Adverts of one VRID
            // arrive one at a time in practice; a racing update on another CPU can at worst
            // mix two adverts' fields, which the next advert repairs.
            let state = unsafe { &mut *p };
            let advert = AdvertState {
                src,
                priority: f.priority,
                version: f.version(),
                interval_cs: interval,
                ..AdvertState::default()
            };
            // The slot keeps following the master: another sender's advert is reported but
            // leaves the master's timestamp alone (see `takes_slot`).
            if takes_slot(state, &advert, now) {
                // Another sender takes the slot (the master fell silent, or a better one
                // spoke): the old holder moves to `OTHERS`, so the agent can still read when
                // its master last spoke. Without this a flood's lower-priority adverts erased
                // the master's last timestamp and the backup timed out early.
                if state.last_ns != 0
                    && !same_sender(state, &advert)
                    && let Some(q) = OTHERS.get_ptr_mut(slot)
                {
                    // SAFETY: `q` points to this slot's value in the array map; as above.
                    unsafe { *q = *state };
                }
                // Priority 0 is the master leaving: the agent hears it (news) and runs the
                // short Skew_Time itself.
                if f.priority != 0 {
                    watch_master(ctx, slot, now);
                }
                record(state, &advert, now)
            } else {
                // Another sender: remembered on its own, so that its repeats are absorbed
                // instead of waking the agent per packet (a lower-priority router, a flood).
                match OTHERS.get_ptr_mut(slot) {
                    // SAFETY: `q` points to this slot's value in the array map; as above.
                    Some(q) => record(unsafe { &mut *q }, &advert, now),
                    None => Observation::News,
                }
            }
        }
        None => Observation::News,
    };
    if !config().consume_adverts() {
        // Raw-socket receive mode: the agent reads adverts from the stack.
        return XDP_PASS;
    }
    match seen {
        Observation::Absorb => {
            count(counter::ADVERT_ABSORBED);
            XDP_DROP
        }
        Observation::News => {
            if report(ctx, EVENT_ADVERT, ETH_HLEN, ip_len) {
                count(counter::ADVERT_EVENT);
                XDP_DROP
            } else {
                // Lost record: the state is updated (the agent re-reads ADVERTS lazily), and
                // the stack may still deliver the advert to a raw socket.
                XDP_PASS
            }
        }
    }
}

/// (Re)starts the virtual router's `SILENCE` timer from an advert of its master at `now`, if
/// the agent asked for one (`VridConfig::master_down_ns`). The agent then sleeps until the
/// timer reports the master silent, instead of waking up every Master_Down_Interval.
#[inline(always)]
fn watch_master(ctx: &XdpContext, slot: u32, now: u64) {
    // Read after `now` was taken: an advert stamped after the agent's write of the interval
    // is known to have started the timer with it.
    let interval = match VRID_CONFIG.get(slot) {
        Some(c) => c.master_down_ns,
        None => 0,
    };
    if interval == 0 {
        return;
    }
    let Some(p) = SILENCE.get_ptr_mut(slot) else {
        return;
    };
    // SAFETY: `p` points to this slot's value in the array map (stable for the program's
    // run). The timer helpers take the timer's address inside the map value, as they must.
    unsafe {
        let t = &mut *p;
        if t.flags & SILENCE_F_READY == 0 {
            let timer = &mut t.timer as *mut _ as *mut aya_ebpf::bindings::bpf_timer;
            // -EBUSY: another CPU initialised it meanwhile, which is as good.
            let r = bpf_timer_init(timer, &SILENCE as *const _ as *mut c_void, CLOCK_MONOTONIC);
            if r != 0 && r != -16 {
                count(counter::SILENCE_TIMER_ERROR);
                return;
            }
            if bpf_timer_set_callback(timer, master_silent as *mut c_void) != 0 {
                count(counter::SILENCE_TIMER_ERROR);
                return;
            }
            t.flags |= SILENCE_F_READY;
        }
        let timer = &mut t.timer as *mut _ as *mut aya_ebpf::bindings::bpf_timer;
        if bpf_timer_start(timer, interval, 0) != 0 {
            // The agent sees an old `started_ns` and keeps waking up on its own.
            count(counter::SILENCE_TIMER_ERROR);
            return;
        }
        t.started_ns = now;
        t.interval_ns = interval;
        t.ifindex = ctx.ingress_ifindex() as u32;
    }
}

/// The `SILENCE` timer callback: the master of the slot `*key` has been silent for the
/// interval the agent set. Posts `EVENT_MASTER_SILENT` to wake the agent. Runs in softirq
/// context, not on a packet.
extern "C" fn master_silent(_map: *mut c_void, key: *mut u32, value: *mut SilenceTimer) -> i32 {
    // SAFETY: the kernel passes the timer's own map key and value.
    let (slot, t) = unsafe { (*key, &mut *value) };
    t.fired += 1;
    count(counter::MASTER_SILENT);
    let Some(mut entry) = EVENTS.reserve::<SilentEvent>(0) else {
        count(counter::EVENT_RING_FULL);
        return 0;
    };
    // SAFETY: `entry` is a reserved record of size_of::<SilentEvent>() bytes, written whole.
    unsafe {
        entry.as_mut_ptr().write(SilentEvent {
            header: EventHeader {
                kind: EVENT_MASTER_SILENT,
                _pad: 0,
                ifindex: t.ifindex,
                ts_ns: now_ns(),
                len: SILENT_RECORD_LEN as u32,
                orig_len: SILENT_RECORD_LEN as u32,
            },
            data: SilentRecord {
                slot,
                _pad: 0,
                started_ns: t.started_ns,
            },
        });
    }
    entry.submit(0);
    0
}

/// Files a valid advert into a slot: the timestamp always, the fields when they are news.
#[inline(always)]
fn record(slot: &mut AdvertState, advert: &AdvertState, now: u64) -> Observation {
    let seen = observe(slot, advert, now);
    slot.last_ns = now;
    slot.count += 1;
    if seen == Observation::News {
        slot.src = advert.src;
        slot.priority = advert.priority;
        slot.version = advert.version;
        slot.interval_cs = advert.interval_cs;
    }
    seen
}

/// One's-complement sum of a fixed-size array of big-endian 16-bit words.
#[inline(always)]
fn sum_words<const N: usize>(b: &[u8; N]) -> u64 {
    let mut sum = 0u64;
    let mut i = 0;
    while i + 1 < N {
        sum += u16::from_be_bytes([b[i], b[i + 1]]) as u64;
        i += 2;
    }
    sum
}

/// One's-complement sum of `len` bytes from `off`, as big-endian 16-bit words; `MAXW` bounds
/// the loop (a data-dependent loop needs a constant bound for the verifier).
#[inline(always)]
fn sum16<const MAXW: usize>(ctx: &XdpContext, off: usize, len: usize) -> Option<u64> {
    let mut sum = 0u64;
    let words = len / 2;
    let mut i = 0;
    while i < MAXW {
        if i >= words {
            break;
        }
        sum += be16_at(ctx, (off + i * 2) & MAX_OFF)? as u64;
        i += 1;
    }
    if len % 2 == 1 {
        // The odd last byte is the low byte of the word that ends with it (len >= 9 here).
        let w = be16_at(ctx, (off + len - 2) & MAX_OFF)?;
        sum += ((w & 0xff) as u64) << 8;
    }
    Some(sum)
}

// ------------------------------------------------------------------------------------------
// ARP responder (RFC 826) and conflict detection (RFC 5227).

#[inline(always)]
fn owned4(addr: [u8; 4]) -> Option<OwnedVip> {
    // SAFETY: the value is copied out at once; a concurrent delete can only make us answer
    // with the previous (still valid) entry once.
    unsafe { OWNED_VIPS.get(&u32::from_ne_bytes(addr)).copied() }
}

#[inline(always)]
fn owned6(addr: &[u8; 16]) -> Option<OwnedVip> {
    // SAFETY: as in owned4.
    unsafe { OWNED_VIPS6.get(addr).copied() }
}

#[inline(always)]
fn arp(ctx: &XdpContext) -> Option<u32> {
    let body: [u8; ARP_LEN] = read(ctx, ETH_HLEN)?;
    // Not Ethernet/IPv4 ARP: not ours (fail open).
    let a = Arp::parse(&body)?;
    // RFC 5227 §2.4: any ARP packet whose sender IP is ours but whose sender hardware address
    // is not is a conflict (another node answers or announces our VIP: split brain).
    if let Some(v) = owned4(a.spa) {
        if v.mac != a.sha {
            count(counter::ARP_CONFLICT);
            report(ctx, EVENT_ARP_CONFLICT, 0, frame_len(ctx));
            return Some(XDP_PASS);
        }
    }
    // RFC 826: only requests are answered; an announcement (spa == tpa, RFC 5227 §3) asks
    // nothing.
    if !a.is_request() || a.is_gratuitous() {
        return Some(XDP_PASS);
    }
    let Some(v) = owned4(a.tpa) else {
        return Some(XDP_PASS);
    };
    if !config().alive(now_ns()) || agent_killed() {
        count(counter::DEADMAN_SILENCED);
        return Some(XDP_PASS);
    }
    let reply = arp_reply(&a, a.tpa, v.mac);
    let p = ptr_at_mut::<[u8; 42]>(ctx, 0)?;
    // SAFETY: ptr_at checked the 42 bytes lie inside the frame, which XDP lets us rewrite.
    unsafe { p.write_unaligned(reply) };
    count(counter::ARP_REPLIED);
    Some(XDP_TX)
}

// ------------------------------------------------------------------------------------------
// Neighbor Discovery responder and conflict detection (RFC 4861).

/// What the link-layer option search found.
enum LlOption {
    Absent,
    Found([u8; 6]),
    /// An option of length 0: the message is invalid (RFC 4861 §7.1.1); leave it to the stack.
    Invalid,
}

/// Looks for the first option of type `want` among the options in `[start, end)`.
#[inline(always)]
fn ll_option(ctx: &XdpContext, start: usize, end: usize, want: u8) -> Option<LlOption> {
    let mut off = start;
    let mut i = 0;
    while i < MAX_ND_OPTIONS {
        if off + 8 > end {
            return Some(LlOption::Absent);
        }
        let o: [u8; 8] = read(ctx, off & MAX_OFF)?;
        if o[1] == 0 {
            return Some(LlOption::Invalid);
        }
        if o[0] == want {
            return Some(LlOption::Found([o[2], o[3], o[4], o[5], o[6], o[7]]));
        }
        off += o[1] as usize * 8;
        i += 1;
    }
    Some(LlOption::Absent)
}

#[inline(always)]
fn nd(ctx: &XdpContext) -> Option<u32> {
    let ip = ETH_HLEN;
    let m = ip + IPV6_HLEN;
    let hdr: [u8; IPV6_HLEN] = read(ctx, ip)?;
    let fixed: [u8; ND_FIXED_LEN] = read(ctx, m)?;
    let kind = fixed[0];
    if kind != ICMPV6_NS && kind != ICMPV6_NA {
        return Some(XDP_PASS);
    }
    let plen = u16::from_be_bytes([hdr[4], hdr[5]]) as usize;
    // RFC 4861 §7.1.1 / §7.1.2 validity checks; whatever fails them is the stack's to drop.
    if hdr[7] != ND_HOP_LIMIT || fixed[1] != 0 || plen < ND_FIXED_LEN || plen > MAX_ND_LEN {
        return Some(XDP_PASS);
    }
    if (captured(ctx, m) as usize) < plen {
        return Some(XDP_PASS);
    }
    let mut target = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        target[i] = fixed[8 + i];
        i += 1;
    }
    // The target must not be a multicast address.
    if target[0] == 0xff {
        return Some(XDP_PASS);
    }
    let Some(v) = owned6(&target) else {
        return Some(XDP_PASS);
    };
    // The ICMPv6 checksum over the pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1).
    let mut addrs = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        addrs[i] = hdr[8 + i];
        i += 1;
    }
    let sum = sum_words(&addrs)
        + plen as u64
        + IPPROTO_ICMPV6 as u64
        + sum16::<{ MAX_ND_LEN / 2 }>(ctx, m, plen)?;
    if csum_fold(sum) != 0 {
        return Some(XDP_PASS);
    }
    let opts = m + ND_FIXED_LEN;
    let end = m + plen;
    if kind == ICMPV6_NA {
        // RFC 4861 §7.2.5: an advertisement for our VIP with another link-layer address
        // would move the VIP's traffic away: a conflict, reported; the stack still gets it.
        if let LlOption::Found(mac) = ll_option(ctx, opts, end, ND_OPT_TARGET_LL)? {
            if mac != v.mac {
                count(counter::NA_CONFLICT);
                report(ctx, EVENT_NA_CONFLICT, 0, frame_len(ctx));
            }
        }
        return Some(XDP_PASS);
    }
    let mut src = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        src[i] = hdr[8 + i];
        i += 1;
    }
    if is_unspecified(&src) {
        // RFC 4861 §7.1.1: from ::, the destination must be a solicited-node address and
        // there must be no source link-layer address option.
        let mut dst = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            dst[i] = hdr[24 + i];
            i += 1;
        }
        if !is_solicited_node(&dst) {
            return Some(XDP_PASS);
        }
        match ll_option(ctx, opts, end, ND_OPT_SOURCE_LL)? {
            LlOption::Absent => {}
            _ => return Some(XDP_PASS),
        }
    } else if let LlOption::Invalid = ll_option(ctx, opts, end, ND_OPT_SOURCE_LL)? {
        return Some(XDP_PASS);
    }
    if !config().alive(now_ns()) || agent_killed() {
        count(counter::DEADMAN_SILENCED);
        return Some(XDP_PASS);
    }
    let eth_src: [u8; 6] = read(ctx, 6)?;
    let na = neighbor_advert(eth_src, v.mac, target, src, v.flags & OWNED_F_ROUTER != 0);
    // Make the frame exactly the NA's length: grow an NS without options, shrink one with
    // other options or padding.
    let delta = NA_FRAME_LEN as i64 - frame_len(ctx) as i64;
    if delta != 0 {
        // SAFETY: plain helper call on our context; every packet pointer is re-derived below.
        if unsafe { bpf_xdp_adjust_tail(ctx.ctx, delta as i32) } != 0 {
            return Some(XDP_PASS);
        }
    }
    let p = ptr_at_mut::<[u8; NA_FRAME_LEN]>(ctx, 0)?;
    // SAFETY: ptr_at checked the NA_FRAME_LEN bytes lie inside the (adjusted) frame.
    unsafe { p.write_unaligned(na) };
    count(counter::NS_REPLIED);
    Some(XDP_TX)
}

/// Passes every frame. The lab attaches it to the bridge-side veth ends: a veth delivers an
/// XDP_TX'd frame only if its peer runs an XDP program too (TOOLCHAIN.md).
#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    XDP_PASS
}

/// Whether a SIGKILL for the agent has been generated (`DEATH`, stamped by
/// [`vrrp_agent_killed`]).
#[inline(always)]
fn agent_killed() -> bool {
    match DEATH.get(0) {
        Some(d) => d.dead_ns != 0,
        None => false,
    }
}

/// `signal/signal_generate`: the instant a SIGKILL for the agent's process is generated (in
/// the killer's context), stamp `DEATH` and wake the guardian. The agent is dead from here
/// on; its teardown, which detaches this program, takes a few milliseconds more, during which
/// the XDP program must no longer answer for it.
#[tracepoint]
pub fn vrrp_agent_killed(ctx: TracePointContext) -> u32 {
    let Some(p) = DEATH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: `p` points to the single entry of the array map; only this program writes
    // `dead_ns`, the agent writes the rest once before attaching.
    let w = unsafe { &mut *p };
    if w.tgid == 0 || w.dead_ns != 0 {
        return 0;
    }
    // SAFETY: bpf_probe_read_kernel of 4 bytes at offsets taken from the tracepoint's format.
    let sig: i32 = match unsafe { ctx.read_at(w.sig_off as usize) } {
        Ok(v) => v,
        Err(_) => return 0,
    };
    if sig != SIGKILL {
        return 0;
    }
    // SAFETY: as above.
    let pid: i32 = match unsafe { ctx.read_at(w.pid_off as usize) } {
        Ok(v) => v,
        Err(_) => return 0,
    };
    if pid as u32 != w.tgid {
        return 0;
    }
    // SAFETY: as above.
    let result: i32 = match unsafe { ctx.read_at(w.result_off as usize) } {
        Ok(v) => v,
        Err(_) => return 0,
    };
    // include/trace/events/signal.h: 1 ignored, 3 overflow_fail: the signal did not land.
    if result == 1 || result == 3 {
        return 0;
    }
    let now = now_ns();
    w.dead_ns = now;
    let _ = DEATH_RING.output::<u64>(&now, 0);
    0
}

/// SIGKILL's number on every Linux architecture.
const SIGKILL: i32 = 9;
