use core::mem::size_of;

use aya_ebpf::bindings::xdp_action::{XDP_DROP, XDP_PASS};
use aya_ebpf::macros::{map, xdp};
use aya_ebpf::maps::{Array, PerCpuArray};
use aya_ebpf::programs::XdpContext;
use vrrp_common::event::counter;
use vrrp_common::maps::{VRID_F_AUTH_PASS, VRID_SLOTS, VridConfig, vrid_slot};
use vrrp_common::verdict::{AdvertFields, auth_ok, classify, csum_fold};
use vrrp_common::wire::{
    ETH_HLEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_VRRP, IPV4_MIN_HLEN, IPV6_HLEN, VRRP_HEADER_LEN,
};

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

#[map]
static VRID_CONFIG: Array<VridConfig> = Array::with_max_entries(VRID_SLOTS, 0);

#[map]
static FOREIGN_VRIDS: PerCpuArray<u64> = PerCpuArray::with_max_entries(VRID_SLOTS, 0);

/// Variable packet offsets are masked to this so the verifier can bound them: pointer offset
/// plus access size must stay within its 64 KiB packet-offset limit.
const MAX_OFF: usize = 0x3fff;

/// Largest VRRP message: header + 255 IPv6 addresses (RFC 9568 §5.1); bounds the checksum loop.
const MAX_VRRP_LEN: usize = VRRP_HEADER_LEN + 255 * 16;

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
fn try_xdp(ctx: &XdpContext) -> Option<u32> {
    // VLAN-tagged frames belong to VLAN devices, not to this interface's instances.
    match be16_at(ctx, 12)? {
        ETH_P_IP => vrrp_v4(ctx),
        ETH_P_IPV6 => vrrp_v6(ctx),
        _ => Some(XDP_PASS),
    }
}

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
    // Source and destination addresses, for the pseudo-header (RFC 9568 §5.2.8).
    // SAFETY: ptr_at checked the 8 address bytes lie inside the frame.
    let addrs = unsafe { *ptr_at::<[u8; 8]>(ctx, ip + 12)? };
    verdict(ctx, &f, ip + ihl, sum_words(&addrs))
}

#[inline(always)]
fn vrrp_v6(ctx: &XdpContext) -> Option<u32> {
    let ip = ETH_HLEN;
    if byte_at(ctx, ip)? >> 4 != 6 {
        return None;
    }
    // Extension headers before VRRP are not parsed here: the stack gets them (fail open).
    if byte_at(ctx, ip + 6)? != IPPROTO_VRRP {
        return Some(XDP_PASS);
    }
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
    // SAFETY: ptr_at checked the 32 address bytes lie inside the frame.
    let addrs = unsafe { *ptr_at::<[u8; 32]>(ctx, ip + 8)? };
    verdict(ctx, &f, ip + IPV6_HLEN, sum_words(&addrs))
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
                ..AdvertFields::default()
            }
        }
        None => AdvertFields::default(),
    }
}

#[inline(always)]
fn verdict(ctx: &XdpContext, f: &AdvertFields, vrrp: usize, pseudo_addrs: u64) -> Option<u32> {
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
        let auth_type = (be16_at(ctx, vrrp + 4)? >> 8) as u8;
        let at = vrrp + VRRP_HEADER_LEN + (f.count as usize) * 4;
        // SAFETY: ptr_at checked the 8 auth bytes lie inside the frame.
        let data = unsafe { *ptr_at::<[u8; 8]>(ctx, at & MAX_OFF)? };
        if !auth_ok(&cfg, auth_type, &data) {
            count(counter::DROP_AUTH);
            return Some(XDP_DROP);
        }
    }
    let sum = sum16(ctx, vrrp, len)?;
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
    // The agent receives adverts on its raw socket for now.
    Some(XDP_PASS)
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

/// One's-complement sum of `len` bytes from `off`, as big-endian 16-bit words.
#[inline(always)]
fn sum16(ctx: &XdpContext, off: usize, len: usize) -> Option<u64> {
    let mut sum = 0u64;
    let words = len / 2;
    let mut i = 0;
    while i < MAX_VRRP_LEN / 2 {
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

/// Passes every frame. The lab attaches it to the bridge-side veth ends: a veth delivers an
/// XDP_TX'd frame only if its peer runs an XDP program too (TOOLCHAIN.md).
#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    XDP_PASS
}
