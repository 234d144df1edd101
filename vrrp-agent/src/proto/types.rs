//! Units and identifiers as types, so that seconds and centiseconds cannot be mixed up.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Virtual Router Identifier, 1..=255 (RFC 9568 §5.2.3).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "u8")]
pub struct Vrid(u8);

impl TryFrom<u8> for Vrid {
    type Error = &'static str;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Self::new(v).ok_or("VRID 0")
    }
}

impl Vrid {
    pub const fn new(v: u8) -> Option<Self> {
        if v == 0 { None } else { Some(Self(v)) }
    }
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Vrid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Router priority (RFC 9568 §5.2.4): 255 is the address owner, 0 means "master is leaving",
/// 1..=254 are backups' values.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Priority(pub u8);

impl Priority {
    pub const OWNER: Self = Self(255);
    pub const RELEASE: Self = Self(0);
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A duration in centiseconds, the unit of VRRPv3's 12-bit Max Advertise Interval
/// (RFC 9568 §5.2.7). VRRPv2's 8-bit seconds field converts into it (×100).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Centisecs(pub u16);

impl Centisecs {
    /// The largest value the 12-bit v3 field can carry (40.95 s).
    pub const V3_MAX: Self = Self(0x0fff);

    pub const fn get(self) -> u16 {
        self.0
    }
    pub const fn from_secs(s: u8) -> Self {
        Self(s as u16 * 100)
    }
    pub const fn as_duration(self) -> Duration {
        Duration::from_millis(self.0 as u64 * 10)
    }
}

impl fmt::Display for Centisecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}s", self.0 / 100, self.0 % 100)
    }
}

/// The protocol version an instance speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Version {
    /// RFC 3768: IPv4 only, seconds, optional simple password.
    V2,
    /// RFC 9568 (obsoletes RFC 5798): IPv4 and IPv6, centiseconds.
    V3,
}

impl Version {
    pub const fn number(self) -> u8 {
        match self {
            Self::V2 => 2,
            Self::V3 => 3,
        }
    }
}

/// Address family of a virtual router.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Family {
    V4,
    V6,
}

/// A MAC address printed as `aa:bb:cc:dd:ee:ff` in error messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MacDisplay(pub [u8; 6]);

impl fmt::Display for MacDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One virtual IP address as `ip addr add` would take it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VipSpec {
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IPv4 only (`ip addr add … label eth0:1`); at most 15 bytes.
    pub label: Option<String>,
    /// IPv4 only; `None` sends no IFA_BROADCAST, as keepalived does without `brd`.
    pub broadcast: Option<Ipv4Addr>,
    /// RT_SCOPE_* value; `None` is the kernel default (global).
    pub scope: Option<u8>,
    /// IFA_F_NODAD: skip duplicate address detection (IPv6). keepalived sets it on every IPv6
    /// VIP so that a VIP is usable at once and a transient split brain cannot leave it
    /// `dadfailed` forever.
    pub nodad: bool,
}

impl VipSpec {
    /// A VIP with keepalived's defaults: no label, no broadcast, default scope, and NODAD for
    /// IPv6.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Self {
        Self {
            addr,
            prefix_len,
            label: None,
            broadcast: None,
            scope: None,
            nodad: addr.is_ipv6(),
        }
    }
}
