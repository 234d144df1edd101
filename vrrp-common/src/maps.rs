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

/// What the data plane knows of one configured virtual router.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VridConfig {
    /// `VRID_F_*` bits.
    pub flags: u32,
    /// Explicit padding: the layout must not depend on the compiler.
    pub _pad: u32,
    /// The v2 password, NUL-padded to 8 bytes as on the wire.
    pub auth_pass: [u8; 8],
}

impl VridConfig {
    pub const fn is_configured(&self) -> bool {
        self.flags & VRID_F_CONFIGURED != 0
    }
    /// The VRRP version this instance accepts.
    pub const fn version(&self) -> u8 {
        if self.flags & VRID_F_V2 != 0 { 2 } else { 3 }
    }
}

const _: () = assert!(size_of::<VridConfig>() == 16);

#[cfg(feature = "user")]
mod pod {
    // SAFETY: repr(C), no padding (asserted above), every bit pattern is valid.
    unsafe impl aya::Pod for super::VridConfig {}
}
