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
    EVENT_DATA_MAX, EVENT_DATA_SMALL, EVENT_MASTER_SILENT, EventHeader, EventRecord,
    SILENT_RECORD_LEN, SilentEvent, SilentRecord, counter,
};
use vrrp_common::maps::{
    AdvertState, DEATH_RING_BYTES, DataPlaneConfig, DeathWatch, EVENT_RING_BYTES, OWNED_VIPS_MAX,
    OwnedVip, PEERS_MAX, PeerKey, PeerLimits, SILENCE_F_READY, SilenceTimer, VRID_SLOTS,
    VridConfig,
};
use vrrp_common::xdp::{self, Action, DataPlane, Packet};

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
static PEERS: HashMap<PeerKey, PeerLimits> = HashMap::with_max_entries(PEERS_MAX, 0);

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

/// Parsing and decisions are `vrrp_common::xdp` (shared with the host); this file holds the
/// maps, the effects and the entry points.
#[xdp]
pub fn vrrp_xdp(ctx: XdpContext) -> u32 {
    match xdp::run(&Frame(&ctx), &mut Kernel(&ctx)) {
        Action::Drop => XDP_DROP,
        Action::Pass => XDP_PASS,
        Action::Tx => XDP_TX,
    }
}

/// The frame of an `XdpContext`, read with the bounds checks the verifier wants to see.
/// (Newtypes: `Packet`, `DataPlane` and `XdpContext` are all foreign to this crate.)
struct Frame<'a>(&'a XdpContext);

/// The maps and helpers, on behalf of one `XdpContext`.
struct Kernel<'a>(&'a XdpContext);

/// A pointer to a `T` at `off` bytes into the frame, if the frame is long enough.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *mut T)
}

impl Packet for Frame<'_> {
    #[inline(always)]
    fn frame_len(&self) -> usize {
        self.0.data_end().saturating_sub(self.0.data())
    }

    #[inline(always)]
    fn read<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let p = ptr_at::<[u8; N]>(self.0, off)?;
        // SAFETY: ptr_at checked that the N bytes lie inside the frame; any bytes are valid.
        Some(unsafe { p.read_unaligned() })
    }
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

impl DataPlane for Kernel<'_> {
    #[inline(always)]
    fn vrid_config(&self, slot: u32) -> Option<VridConfig> {
        VRID_CONFIG.get(slot).copied()
    }

    #[inline(always)]
    fn config(&self) -> Option<DataPlaneConfig> {
        CONFIG.get(0).copied()
    }

    #[inline(always)]
    fn peer(&self, key: &PeerKey) -> Option<PeerLimits> {
        // SAFETY: copied out at once; a concurrent update can only give the old limits once.
        unsafe { PEERS.get(key).copied() }
    }

    #[inline(always)]
    fn owned4(&self, addr: [u8; 4]) -> Option<OwnedVip> {
        // SAFETY: the value is copied out at once; a concurrent delete can only make us
        // answer with the previous (still valid) entry once.
        unsafe { OWNED_VIPS.get(u32::from_ne_bytes(addr)).copied() }
    }

    #[inline(always)]
    fn owned6(&self, addr: &[u8; 16]) -> Option<OwnedVip> {
        // SAFETY: as in owned4.
        unsafe { OWNED_VIPS6.get(addr).copied() }
    }

    /// Whether a SIGKILL for the agent has been generated (`DEATH`, stamped by
    /// [`vrrp_agent_killed`]).
    #[inline(always)]
    fn agent_killed(&self) -> bool {
        match DEATH.get(0) {
            Some(d) => d.dead_ns != 0,
            None => false,
        }
    }

    #[inline(always)]
    fn now_ns(&self) -> u64 {
        now_ns()
    }

    #[inline(always)]
    fn slots(&mut self, slot: u32) -> (Option<&mut AdvertState>, Option<&mut AdvertState>) {
        // SAFETY: the pointers are to this slot's values in two array maps, valid for the
        // program's run; the references live no longer than this borrow of `self`. Adverts
        // of one VRID arrive one at a time in practice; a racing update on another CPU can
        // at worst mix two adverts' fields, which the next advert repairs.
        unsafe {
            (
                ADVERTS.get_ptr_mut(slot).map(|p| &mut *p),
                OTHERS.get_ptr_mut(slot).map(|p| &mut *p),
            )
        }
    }

    #[inline(always)]
    fn count(&mut self, c: u32) {
        count(c);
    }

    #[inline(always)]
    fn count_foreign(&mut self, slot: u32) {
        if let Some(p) = FOREIGN_VRIDS.get_ptr_mut(slot) {
            // SAFETY: per-CPU slot, no concurrent writer on this CPU.
            unsafe { *p += 1 };
        }
    }

    #[inline(always)]
    fn report(&mut self, kind: u16, off: usize, len: usize) -> bool {
        if len <= EVENT_DATA_SMALL {
            emit::<EVENT_DATA_SMALL>(self.0, kind, off, len)
        } else {
            emit::<EVENT_DATA_MAX>(self.0, kind, off, len)
        }
    }

    #[inline(always)]
    fn start_silence(&mut self, slot: u32, interval_ns: u64, now_ns: u64) {
        start_silence(self.0, slot, interval_ns, now_ns);
    }

    #[inline(always)]
    fn write<const N: usize>(&mut self, bytes: &[u8; N]) -> bool {
        match ptr_at::<[u8; N]>(self.0, 0) {
            Some(p) => {
                // SAFETY: ptr_at checked the N bytes lie inside the frame, which XDP may
                // rewrite.
                unsafe { p.write_unaligned(*bytes) };
                true
            }
            None => false,
        }
    }

    #[inline(always)]
    fn adjust_tail(&mut self, delta: i32) -> bool {
        // SAFETY: plain helper call on our context; every packet pointer is re-derived from
        // the context after it (`Frame::read`, `write`).
        unsafe { bpf_xdp_adjust_tail(self.0.ctx, delta) == 0 }
    }
}

// ------------------------------------------------------------------------------------------
// Events.

/// Copies `len` bytes of the frame from `off` into an `EVENTS` record of kind `kind`.
/// Returns false if it could not (ring full: counted; copy failure: record discarded).
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
// The SILENCE timer.

/// (Re)starts the `SILENCE` timer of `slot` to run out `interval` ns after `now` (the
/// decision to is `vrrp_common::xdp`'s), initialising it on first use.
#[inline(always)]
fn start_silence(ctx: &XdpContext, slot: u32, interval: u64, now: u64) {
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

/// Passes every frame. The lab attaches it to the bridge-side veth ends: a veth delivers an
/// XDP_TX'd frame only if its peer runs an XDP program too (TOOLCHAIN.md).
#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    XDP_PASS
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
