//! The parsed representation of a VRRP advertisement, shared by the codec and the state machine.

use std::net::IpAddr;

use super::types::{Centisecs, Priority, Version, Vrid};

/// VRRPv2 authentication (RFC 3768 §5.3.6). VRRPv3 has none (RFC 9568 §9.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Auth {
    None,
    /// Simple text password, NUL-padded to the 8 bytes it occupies on the wire.
    Pass([u8; 8]),
}

/// A VRRP advertisement, version and family independent.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Advert {
    pub version: Version,
    pub vrid: Vrid,
    pub priority: Priority,
    /// Advertisement interval. VRRPv2 carries whole seconds, converted here (×100).
    pub interval: Centisecs,
    /// The virtual addresses, all of one family (IPv4 for v2).
    pub addresses: Vec<IpAddr>,
    /// Always `Auth::None` for VRRPv3.
    pub auth: Auth,
}
