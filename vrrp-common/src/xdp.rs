//! The XDP program: parsing (Ethernet, IPv4, IPv6, VRRP, ARP, Neighbor Discovery) and every
//! decision, generic over where the frame and the maps live. vrrp-ebpf runs [`run`] on an
//! `XdpContext` and its BPF maps; the host runs it on a `[u8]` and [`host::Plane`] (unit tests
//! below, the `xdp_classify` fuzz target), so both exercise the same code.
//!
//! The program fails open: whatever it cannot parse is passed to the kernel stack untouched.
//! Everything is `#[inline(always)]`: the verifier must see each bounded read next to its
//! check, and the BPF target gains nothing from calls.

use crate::event::{EVENT_ADVERT, EVENT_ARP_CONFLICT, EVENT_NA_CONFLICT, counter};
use crate::maps::{
    AdvertState, DataPlaneConfig, OWNED_F_ROUTER, Observation, OwnedVip, PeerKey, PeerLimits,
    VRID_F_AUTH_PASS, VRID_F_FIRST_LINK_LOCAL, VRID_F_UNICAST_PEERS, VRID_F_VMAC_OWNED,
    VRID_F_YIELD, VridConfig, observe, same_sender, takes_slot, vrid_slot,
};
use crate::respond::{
    Arp, NA_FRAME_LEN, ND_FIXED_LEN, ND_HOP_LIMIT, ND_OPT_SOURCE_LL, ND_OPT_TARGET_LL, arp_reply,
    is_solicited_node, is_unspecified, neighbor_advert,
};
use crate::verdict::{AdvertFields, auth_ok, classify, csum_fold, ttl_ok};
use crate::wire::{
    ARP_LEN, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ICMPV6_NA, ICMPV6_NS, IPPROTO_ICMPV6,
    IPPROTO_VRRP, IPV4_MIN_HLEN, IPV6_HLEN, VRRP_HEADER_LEN, vmac_vrid,
};

#[cfg(any(test, feature = "host"))]
pub mod host;
#[cfg(test)]
mod tests;

/// Bounded reads of the frame.
pub trait Packet {
    /// Bytes in the frame.
    fn frame_len(&self) -> usize;
    /// A copy of the `N` bytes at `off`, if the frame holds them all.
    fn read<const N: usize>(&self, off: usize) -> Option<[u8; N]>;
}

impl Packet for [u8] {
    #[inline(always)]
    fn frame_len(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn read<const N: usize>(&self, off: usize) -> Option<[u8; N]> {
        let b = self.get(off..off.checked_add(N)?)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Some(out)
    }
}

/// The program's maps and kernel services: lookups, and the effects it has (counters, the
/// `EVENTS` ring, the `SILENCE` timer, writes to the frame).
pub trait DataPlane {
    /// `VRID_CONFIG[slot]`.
    fn vrid_config(&self, slot: u32) -> Option<VridConfig>;
    /// `CONFIG[0]`.
    fn config(&self) -> Option<DataPlaneConfig>;
    /// `PEERS[key]`: the peer is allowed, with these TTL limits.
    fn peer(&self, key: &PeerKey) -> Option<PeerLimits>;
    /// `OWNED_VIPS[addr]`.
    fn owned4(&self, addr: [u8; 4]) -> Option<OwnedVip>;
    /// `OWNED_VIPS6[addr]`.
    fn owned6(&self, addr: &[u8; 16]) -> Option<OwnedVip>;
    /// Whether `DEATH` records a SIGKILL for the agent.
    fn agent_killed(&self) -> bool;
    /// CLOCK_MONOTONIC in ns (`bpf_ktime_get_ns`).
    fn now_ns(&self) -> u64;
    /// `ADVERTS[slot]` and `OTHERS[slot]`, to update in place.
    fn slots(&mut self, slot: u32) -> (Option<&mut AdvertState>, Option<&mut AdvertState>);
    /// Adds one to `COUNTERS[c]`.
    fn count(&mut self, c: u32);
    /// Adds one to `FOREIGN_VRIDS[slot]`.
    fn count_foreign(&mut self, slot: u32);
    /// Posts an `EVENTS` record of `kind` holding `len` bytes of the frame from `off`; false
    /// if none was posted (ring full, counted; or the bytes are not in the frame).
    fn report(&mut self, kind: u16, off: usize, len: usize) -> bool;
    /// (Re)starts `SILENCE[slot]` to run out `interval_ns` after `now_ns`.
    fn start_silence(&mut self, slot: u32, interval_ns: u64, now_ns: u64);
    /// Writes `bytes` at the start of the frame; false if the frame is shorter.
    fn write<const N: usize>(&mut self, bytes: &[u8; N]) -> bool;
    /// Grows (`delta > 0`) or shrinks the frame at its tail; false if it could not.
    fn adjust_tail(&mut self, delta: i32) -> bool;
}

/// What becomes of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `XDP_DROP`.
    Drop,
    /// `XDP_PASS`: the kernel stack gets it.
    Pass,
    /// `XDP_TX`: the frame, rewritten in place, goes back out.
    Tx,
}

/// Variable packet offsets are masked to this so the verifier can bound them: pointer offset
/// plus access size must stay within its 64 KiB packet-offset limit.
pub const MAX_OFF: usize = 0x3fff;

/// Largest IPv4 header: IHL 15 words (RFC 791 §3.1); bounds the header checksum loop.
const MAX_IPV4_HLEN: usize = 60;

/// Largest VRRP message: header + 255 IPv6 addresses (RFC 9568 §5.1); bounds the checksum loop.
const MAX_VRRP_LEN: usize = VRRP_HEADER_LEN + 255 * 16;

/// Largest NS/NA we check and answer: the fixed part and a few options. Longer ones (never
/// seen in practice) go to the stack untouched.
pub const MAX_ND_LEN: usize = 256;

/// Options looked at in an NS or NA; RFC 4861 messages carry one link-layer option.
const MAX_ND_OPTIONS: usize = 4;

/// The program on one frame.
#[inline(always)]
pub fn run<P: Packet + ?Sized, D: DataPlane>(p: &P, dp: &mut D) -> Action {
    match frame(p, dp) {
        Some(action) => action,
        // Anything we cannot parse belongs to the kernel stack (fail open).
        None => Action::Pass,
    }
}

/// One byte at a constant offset. (At a variable offset LLVM turns `p + 1 > end` into
/// `p >= end`, which the verifier does not accept as a bound: read a 16-bit word there.)
#[inline(always)]
fn byte<P: Packet + ?Sized>(p: &P, off: usize) -> Option<u8> {
    Some(p.read::<1>(off)?[0])
}

#[inline(always)]
fn be16<P: Packet + ?Sized>(p: &P, off: usize) -> Option<u16> {
    Some(u16::from_be_bytes(p.read::<2>(off)?))
}

#[inline(always)]
fn config<D: DataPlane>(dp: &D) -> DataPlaneConfig {
    dp.config().unwrap_or_default()
}

/// Bytes present in the frame from `off` to its end.
#[inline(always)]
fn captured<P: Packet + ?Sized>(p: &P, off: usize) -> u16 {
    let len = p.frame_len().saturating_sub(off);
    if len > u16::MAX as usize {
        u16::MAX
    } else {
        len as u16
    }
}

#[inline(always)]
fn frame<P: Packet + ?Sized, D: DataPlane>(p: &P, dp: &mut D) -> Option<Action> {
    vmac_to_host(p, dp);
    // VLAN-tagged frames belong to VLAN devices, not to this interface's instances.
    match be16(p, 12)? {
        ETH_P_IP => vrrp_v4(p, dp),
        ETH_P_IPV6 => ipv6(p, dp),
        ETH_P_ARP => arp(p, dp),
        _ => Some(Action::Pass),
    }
}

/// A frame for the virtual MAC of a VRID we are master of with `use_vmac` is ours: give it
/// the interface's MAC so the stack does not drop it as another host's.
#[inline(always)]
fn vmac_to_host<P: Packet + ?Sized, D: DataPlane>(p: &P, dp: &mut D) {
    let Some(dst) = p.read::<6>(0) else {
        return;
    };
    let Some((ipv6, vrid)) = vmac_vrid(&dst) else {
        return;
    };
    let owned = dp
        .vrid_config(vrid_slot(ipv6, vrid))
        .is_some_and(|c| c.flags & VRID_F_VMAC_OWNED != 0);
    if !owned {
        return;
    }
    let mac = config(dp).mac;
    if dp.write(&mac) {
        dp.count(counter::VMAC_TO_HOST);
    }
}

// ------------------------------------------------------------------------------------------
// VRRP adverts.

#[inline(always)]
fn vrrp_v4<P: Packet + ?Sized, D: DataPlane>(p: &P, dp: &mut D) -> Option<Action> {
    let ip = ETH_HLEN;
    let vihl = byte(p, ip)?;
    if byte(p, ip + 9)? != IPPROTO_VRRP {
        return Some(Action::Pass);
    }
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if vihl >> 4 != 4 || ihl < IPV4_MIN_HLEN {
        return None;
    }
    let total = be16(p, ip + 2)? as usize;
    let frag = be16(p, ip + 6)?;
    let f = AdvertFields {
        ipv6: false,
        ttl: byte(p, ip + 8)?,
        // The destination is not 224.0.0.0/4: sent to us, unicast.
        unicast: byte(p, ip + 16)? & 0xf0 != 0xe0,
        // More-fragments flag or a non-zero offset.
        fragment: frag & 0x3fff != 0,
        vrrp_len: total.saturating_sub(ihl) as u16,
        captured_len: captured(p, ip + ihl),
        ..header_fields(p, ip + ihl)
    };
    // The stack drops a bad IPv4 header; so do we, before it can touch ADVERTS. With options
    // too: the agent's codec refuses them, so they must not refresh ADVERTS either.
    if csum_fold(sum16::<P, { MAX_IPV4_HLEN / 2 }>(p, ip, ihl)?) != 0 {
        dp.count(counter::DROP_BAD_IP_HEADER);
        return Some(Action::Drop);
    }
    // Source and destination addresses, for the pseudo-header (RFC 9568 §5.2.8).
    let addrs: [u8; 8] = p.read(ip + 12)?;
    let mut src = [0u8; 16];
    src[0] = addrs[0];
    src[1] = addrs[1];
    src[2] = addrs[2];
    src[3] = addrs[3];
    verdict(p, dp, &f, ip + ihl, sum_words(&addrs), src, total)
}

#[inline(always)]
fn ipv6<P: Packet + ?Sized, D: DataPlane>(p: &P, dp: &mut D) -> Option<Action> {
    let ip = ETH_HLEN;
    if byte(p, ip)? >> 4 != 6 {
        return None;
    }
    // Extension headers before VRRP or ICMPv6 are not parsed here: the stack gets them
    // (fail open).
    match byte(p, ip + 6)? {
        IPPROTO_VRRP => vrrp_v6(p, dp),
        IPPROTO_ICMPV6 => nd(p, dp),
        _ => Some(Action::Pass),
    }
}

#[inline(always)]
fn vrrp_v6<P: Packet + ?Sized, D: DataPlane>(p: &P, dp: &mut D) -> Option<Action> {
    let ip = ETH_HLEN;
    let f = AdvertFields {
        ipv6: true,
        ttl: byte(p, ip + 7)?,
        // The destination is not ff00::/8.
        unicast: byte(p, ip + 24)? != 0xff,
        fragment: false,
        vrrp_len: be16(p, ip + 4)?,
        captured_len: captured(p, ip + IPV6_HLEN),
        ..header_fields(p, ip + IPV6_HLEN)
    };
    // Source and destination addresses, for the pseudo-header (RFC 8200 §8.1). One fixed-size
    // read: a loop of packet reads invites LLVM to do arithmetic on pkt_end, which the
    // verifier forbids.
    let addrs: [u8; 32] = p.read(ip + 8)?;
    let src: [u8; 16] = p.read(ip + 8)?;
    let total = IPV6_HLEN + f.vrrp_len as usize;
    verdict(p, dp, &f, ip + IPV6_HLEN, sum_words(&addrs), src, total)
}

/// The fixed VRRP header fields, left zero when the frame is too short (classify reports it).
#[inline(always)]
fn header_fields<P: Packet + ?Sized>(p: &P, off: usize) -> AdvertFields {
    match p.read::<VRRP_HEADER_LEN>(off) {
        Some(h) => AdvertFields {
            version_type: h[0],
            vrid: h[1],
            priority: h[2],
            count: h[3],
            word2: u16::from_be_bytes([h[4], h[5]]),
            ..AdvertFields::default()
        },
        None => AdvertFields::default(),
    }
}

/// The checks of RFC 9568 §7.1 (RFC 3768 §7.1 for v2), then what to do with a valid advert.
/// `src` is the IP source (IPv4 in the first 4 bytes), `ip_len` the IP packet's length.
#[inline(always)]
fn verdict<P: Packet + ?Sized, D: DataPlane>(
    p: &P,
    dp: &mut D,
    f: &AdvertFields,
    vrrp: usize,
    pseudo_addrs: u64,
    src: [u8; 16],
    ip_len: usize,
) -> Option<Action> {
    let slot = vrid_slot(f.ipv6, f.vrid);
    let cfg = dp.vrid_config(slot).unwrap_or_default();
    if let Err(reason) = classify(f, &cfg) {
        dp.count(reason);
        if reason == counter::DROP_UNKNOWN_VRID {
            // Not ours: another VRRP daemon on this interface (keepalived running other VRIDs
            // during a cut-over) and tcpdump must still see it. Counted, then passed on.
            dp.count_foreign(slot);
            return Some(Action::Pass);
        }
        return Some(Action::Drop);
    }
    let len = f.vrrp_len as usize;
    if f.version() == 2 && cfg.flags & VRID_F_AUTH_PASS != 0 {
        // RFC 3768 §5.1: auth type is byte 4, the 8 auth bytes follow the addresses.
        let at = vrrp + VRRP_HEADER_LEN + (f.count as usize) * 4;
        let data: [u8; 8] = p.read(at & MAX_OFF)?;
        if !auth_ok(&cfg, f.auth_type(), &data) {
            dp.count(counter::DROP_AUTH);
            return Some(Action::Drop);
        }
    }
    // keepalived's unicast_peer: adverts from anyone else are not ours to consider, and a
    // peer's unicast adverts must arrive within its min_ttl/max_ttl.
    if cfg.flags & VRID_F_UNICAST_PEERS != 0 {
        let Some(limits) = dp.peer(&PeerKey { slot, addr: src }) else {
            dp.count(counter::DROP_PEER_NOT_ALLOWED);
            return Some(Action::Drop);
        };
        if !ttl_ok(f, &cfg, &limits) {
            dp.count(counter::DROP_BAD_TTL);
            return Some(Action::Drop);
        }
    }
    let sum = sum16::<P, { MAX_VRRP_LEN / 2 }>(p, vrrp, len)?;
    // Pseudo-header tail: upper-layer length and protocol (RFC 8200 §8.1, RFC 9568 §5.2.8).
    let with_pseudo = sum + pseudo_addrs + len as u64 + IPPROTO_VRRP as u64;
    if f.version() == 2 {
        // RFC 3768 §5.3.8: the checksum covers the VRRP message only.
        if csum_fold(sum) != 0 {
            dp.count(counter::DROP_BAD_CHECKSUM);
            return Some(Action::Drop);
        }
    } else if f.ipv6 {
        if csum_fold(with_pseudo) != 0 {
            dp.count(counter::DROP_BAD_CHECKSUM);
            return Some(Action::Drop);
        }
    } else if csum_fold(with_pseudo) == 0 {
        // keepalived and FRR include the pseudo-header for IPv4 v3 by default.
        dp.count(counter::V3_CSUM_WITH_PSEUDO);
    } else if csum_fold(sum) == 0 {
        // RFC 9568 §5.2.8 as written, also Cisco and Juniper.
        dp.count(counter::V3_CSUM_WITHOUT_PSEUDO);
    } else {
        dp.count(counter::DROP_BAD_CHECKSUM);
        return Some(Action::Drop);
    }
    // RFC 9568 erratum 8300 (strict mode): the first IPv6 address must be link-local
    // (fe80::/10). The agent's router drops it too; here it must not restart the master's timer.
    if f.ipv6 && cfg.flags & VRID_F_FIRST_LINK_LOCAL != 0 {
        let first: [u8; 2] = p.read((vrrp + VRRP_HEADER_LEN) & MAX_OFF)?;
        if first[0] != 0xfe || first[1] & 0xc0 != 0x80 {
            dp.count(counter::DROP_FIRST_NOT_LINK_LOCAL);
            return Some(Action::Drop);
        }
    }
    dp.count(counter::ADVERT_VALID);
    Some(deliver(dp, f, slot, src, ip_len))
}

/// How the first look at a valid advert's slots ended.
enum Filing {
    /// The advert takes the `ADVERTS` slot (the old holder, if another sender, is in
    /// `OTHERS` now); it is filed there after the timer is restarted.
    Takes,
    /// Filed already (in `OTHERS`), or there is no slot to file it in.
    Done(Observation),
}

/// A valid advert: timestamp it in `ADVERTS`, then absorb it, report it, or pass it.
#[inline(always)]
fn deliver<D: DataPlane>(
    dp: &mut D,
    f: &AdvertFields,
    slot: u32,
    src: [u8; 16],
    ip_len: usize,
) -> Action {
    if f.version() == 2 && dp.vrid_config(slot).is_some_and(|c| c.v2_interop()) {
        // RFC 9568 §8.4: the agent decides (it ignores v2 from a sender that also speaks v3);
        // filing it beside that sender's v3 adverts would make every advert news.
        if !config(dp).consume_adverts() {
            return Action::Pass;
        }
        return if dp.report(EVENT_ADVERT, ETH_HLEN, ip_len) {
            dp.count(counter::ADVERT_EVENT);
            Action::Drop
        } else {
            Action::Pass
        };
    }
    let now = dp.now_ns();
    let advert = AdvertState {
        src,
        priority: f.priority,
        version: f.version(),
        interval_cs: f.interval_cs(),
        ..AdvertState::default()
    };
    let seen = match file(dp, slot, &advert, now) {
        Filing::Takes => {
            // Priority 0 is the master leaving: the agent hears it (news) and runs the
            // short Skew_Time itself.
            if f.priority != 0 {
                watch_master(dp, slot, now);
            }
            match dp.slots(slot).0 {
                Some(state) => record(state, &advert, now),
                None => Observation::News,
            }
        }
        Filing::Done(seen) => seen,
    };
    if !config(dp).consume_adverts() {
        // Raw-socket receive mode: the agent reads adverts from the stack.
        return Action::Pass;
    }
    match seen {
        Observation::Absorb => {
            dp.count(counter::ADVERT_ABSORBED);
            Action::Drop
        }
        Observation::News => {
            if dp.report(EVENT_ADVERT, ETH_HLEN, ip_len) {
                dp.count(counter::ADVERT_EVENT);
                Action::Drop
            } else {
                // Lost record: the state is updated (the agent re-reads ADVERTS lazily), and
                // the stack may still deliver the advert to a raw socket.
                Action::Pass
            }
        }
    }
}

/// The slot keeps following the master: another sender's advert is reported but leaves the
/// master's timestamp alone (see `takes_slot`).
#[inline(always)]
fn file<D: DataPlane>(dp: &mut D, slot: u32, advert: &AdvertState, now: u64) -> Filing {
    let (state, others) = dp.slots(slot);
    let Some(state) = state else {
        return Filing::Done(Observation::News);
    };
    if takes_slot(state, advert, now) {
        // Another sender takes the slot (the master fell silent, or a better one spoke): the
        // old holder moves to `OTHERS`, so the agent can still read when its master last
        // spoke. Without this a flood's lower-priority adverts erased the master's last
        // timestamp and the backup timed out early.
        if state.last_ns != 0
            && !same_sender(state, advert)
            && let Some(q) = others
        {
            *q = *state;
        }
        return Filing::Takes;
    }
    // Another sender: remembered on its own, so that its repeats are absorbed instead of
    // waking the agent per packet (a lower-priority router, a flood).
    match others {
        Some(q) => Filing::Done(record(q, advert, now)),
        None => Filing::Done(Observation::News),
    }
}

/// (Re)starts the virtual router's `SILENCE` timer from an advert of its master at `now`, if
/// the agent asked for one (`VridConfig::master_down_ns`). The agent then sleeps until the
/// timer reports the master silent, instead of waking up every Master_Down_Interval.
#[inline(always)]
fn watch_master<D: DataPlane>(dp: &mut D, slot: u32, now: u64) {
    // Read after `now` was taken: an advert stamped after the agent's write of the interval
    // is known to have started the timer with it.
    let interval = match dp.vrid_config(slot) {
        Some(c) => c.master_down_ns,
        None => 0,
    };
    if interval != 0 {
        dp.start_silence(slot, interval, now);
    }
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
fn sum16<P: Packet + ?Sized, const MAXW: usize>(p: &P, off: usize, len: usize) -> Option<u64> {
    let mut sum = 0u64;
    let words = len / 2;
    let mut i = 0;
    while i < MAXW {
        if i >= words {
            break;
        }
        sum += be16(p, (off + i * 2) & MAX_OFF)? as u64;
        i += 1;
    }
    if len % 2 == 1 {
        // The odd last byte is the low byte of the word that ends with it (len >= 9 here).
        let w = be16(p, (off + len - 2) & MAX_OFF)?;
        sum += ((w & 0xff) as u64) << 8;
    }
    Some(sum)
}

// ------------------------------------------------------------------------------------------
// ARP responder (RFC 826) and conflict detection (RFC 5227).

/// The dead-man gate: answer for the agent only while its liveness stamp is fresh and no
/// SIGKILL for it has been seen.
#[inline(always)]
fn may_answer<D: DataPlane>(dp: &mut D) -> bool {
    if !config(dp).alive(dp.now_ns()) || dp.agent_killed() {
        dp.count(counter::DEADMAN_SILENCED);
        return false;
    }
    true
}

/// A higher-priority master spoke within two of its intervals (`VRID_F_YIELD`): it answers
/// now, and so must we no longer. Two intervals, not three: a master that died is stale here
/// before our Master_Down_Interval (3 intervals + skew) makes us master again.
#[inline(always)]
fn superseded<D: DataPlane>(dp: &mut D, slot: u32) -> bool {
    let Some(cfg) = dp.vrid_config(slot) else {
        return false;
    };
    if cfg.flags & VRID_F_YIELD == 0 {
        return false;
    }
    let now = dp.now_ns();
    let (last_ns, priority, interval_cs) = match dp.slots(slot).0 {
        Some(s) => (s.last_ns, s.priority, s.interval_cs),
        None => return false,
    };
    let window = 2 * interval_cs as u64 * 10_000_000;
    if last_ns == 0 || priority <= cfg.own_priority || now.saturating_sub(last_ns) > window {
        return false;
    }
    dp.count(counter::YIELDED);
    true
}

#[inline(always)]
fn arp<P: Packet + ?Sized, D: DataPlane>(p: &P, dp: &mut D) -> Option<Action> {
    let body: [u8; ARP_LEN] = p.read(ETH_HLEN)?;
    // Not Ethernet/IPv4 ARP: not ours (fail open).
    let a = Arp::parse(&body)?;
    // RFC 5227 §2.4: any ARP packet whose sender IP is ours but whose sender hardware address
    // is not is a conflict (another node answers or announces our VIP: split brain).
    if let Some(v) = dp.owned4(a.spa)
        && v.mac != a.sha
    {
        dp.count(counter::ARP_CONFLICT);
        dp.report(EVENT_ARP_CONFLICT, 0, p.frame_len());
        return Some(Action::Pass);
    }
    // RFC 826: only requests are answered; an announcement (spa == tpa, RFC 5227 §3) asks
    // nothing.
    if !a.is_request() || a.is_gratuitous() {
        return Some(Action::Pass);
    }
    let Some(v) = dp.owned4(a.tpa) else {
        return Some(Action::Pass);
    };
    if superseded(dp, vrid_slot(false, v.vrid)) || !may_answer(dp) {
        return Some(Action::Pass);
    }
    if !dp.write(&arp_reply(&a, a.tpa, v.mac)) {
        return None;
    }
    dp.count(counter::ARP_REPLIED);
    Some(Action::Tx)
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
fn ll_option<P: Packet + ?Sized>(p: &P, start: usize, end: usize, want: u8) -> Option<LlOption> {
    let mut off = start;
    let mut i = 0;
    while i < MAX_ND_OPTIONS {
        if off + 8 > end {
            return Some(LlOption::Absent);
        }
        let o: [u8; 8] = p.read(off & MAX_OFF)?;
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
fn nd<P: Packet + ?Sized, D: DataPlane>(p: &P, dp: &mut D) -> Option<Action> {
    let ip = ETH_HLEN;
    let m = ip + IPV6_HLEN;
    let hdr: [u8; IPV6_HLEN] = p.read(ip)?;
    let fixed: [u8; ND_FIXED_LEN] = p.read(m)?;
    let kind = fixed[0];
    if kind != ICMPV6_NS && kind != ICMPV6_NA {
        return Some(Action::Pass);
    }
    let plen = u16::from_be_bytes([hdr[4], hdr[5]]) as usize;
    // RFC 4861 §7.1.1 / §7.1.2 validity checks; whatever fails them is the stack's to drop.
    #[expect(
        clippy::manual_range_contains,
        reason = "with `contains` LLVM drops the MAX_OFF mask of the checksum reads below \
                  and the verifier rejects the program"
    )]
    let bad_len = plen < ND_FIXED_LEN || plen > MAX_ND_LEN;
    if hdr[7] != ND_HOP_LIMIT || fixed[1] != 0 || bad_len {
        return Some(Action::Pass);
    }
    if (captured(p, m) as usize) < plen {
        return Some(Action::Pass);
    }
    let mut target = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        target[i] = fixed[8 + i];
        i += 1;
    }
    // The target must not be a multicast address.
    if target[0] == 0xff {
        return Some(Action::Pass);
    }
    let Some(v) = dp.owned6(&target) else {
        return Some(Action::Pass);
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
        + sum16::<P, { MAX_ND_LEN / 2 }>(p, m, plen)?;
    if csum_fold(sum) != 0 {
        return Some(Action::Pass);
    }
    let opts = m + ND_FIXED_LEN;
    let end = m + plen;
    if kind == ICMPV6_NA {
        // RFC 4861 §7.2.5: an advertisement for our VIP with another link-layer address
        // would move the VIP's traffic away: a conflict, reported; the stack still gets it.
        if let LlOption::Found(mac) = ll_option(p, opts, end, ND_OPT_TARGET_LL)?
            && mac != v.mac
        {
            dp.count(counter::NA_CONFLICT);
            dp.report(EVENT_NA_CONFLICT, 0, p.frame_len());
        }
        return Some(Action::Pass);
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
            return Some(Action::Pass);
        }
        match ll_option(p, opts, end, ND_OPT_SOURCE_LL)? {
            LlOption::Absent => {}
            _ => return Some(Action::Pass),
        }
    } else if let LlOption::Invalid = ll_option(p, opts, end, ND_OPT_SOURCE_LL)? {
        return Some(Action::Pass);
    }
    if superseded(dp, vrid_slot(true, v.vrid)) || !may_answer(dp) {
        return Some(Action::Pass);
    }
    let eth_src: [u8; 6] = p.read(6)?;
    let na = neighbor_advert(eth_src, v.mac, target, src, v.flags & OWNED_F_ROUTER != 0);
    // Make the frame exactly the NA's length: grow an NS without options, shrink one with
    // other options or padding.
    let delta = NA_FRAME_LEN as i64 - p.frame_len() as i64;
    if delta != 0 && !dp.adjust_tail(delta as i32) {
        return Some(Action::Pass);
    }
    if !dp.write(&na) {
        return None;
    }
    dp.count(counter::NS_REPLIED);
    Some(Action::Tx)
}
