//! The configuration of one virtual router and its validation.

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::receive::family_of;
use super::{Auth, Centisecs, Family, Priority, Version, Vrid};

/// keepalived's `VRRP_DOWN_TIMER_ADVERTS`: adverts missed before the master is declared down
/// (RFC 9568 §6.1 and RFC 3768 §6.1 fix it at 3; keepalived's `down_timer_adverts` can change it).
pub const DEFAULT_DOWN_TIMER_ADVERTS: u8 = 3;

/// The state the instance wants at startup: keepalived's `state MASTER|BACKUP`.
///
/// keepalived derives it from the priority when it is not configured (`vrrp_complete_instance`:
/// owner → MASTER, else BACKUP); [`InitialState::for_priority`] gives that default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InitialState {
    Backup,
    Master,
}

impl InitialState {
    /// keepalived's default when `state` is not configured.
    pub const fn for_priority(p: Priority) -> Self {
        if p.0 == Priority::OWNER.0 {
            Self::Master
        } else {
            Self::Backup
        }
    }
}

/// The configuration of one virtual router, already resolved from keepalived.conf (global
/// defaults and `vrrp_strict` applied by the config layer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrConfig {
    pub vrid: Vrid,
    pub version: Version,
    pub family: Family,
    /// Base priority, 1..=255 (255 = address owner).
    pub priority: Priority,
    /// Advertisement_Interval. VRRPv2 requires whole seconds.
    pub interval: Centisecs,
    /// `false` is keepalived's `nopreempt`.
    pub preempt: bool,
    /// keepalived's `preempt_delay` (see `backup_rx` for its exact semantics).
    pub preempt_delay: Duration,
    /// Accept_Mode (RFC 9568 §6.1). Only stored: the I/O shell decides address binding; see
    /// [`super::VirtualRouter::accepts_vip_traffic`].
    pub accept: bool,
    /// The virtual addresses, all of `family`.
    pub addresses: Vec<IpAddr>,
    /// Our own primary address: the advert source, and the tie-breaker (RFC 9568 §6.4.3).
    pub primary: IpAddr,
    /// VRRPv2 authentication (RFC 3768 §5.3.6). Forced to `Auth::None` for VRRPv3.
    pub auth: Auth,
    pub initial: InitialState,
    pub unicast_peers: Vec<IpAddr>,
    /// keepalived's `min_ttl` / `max_ttl` of the `unicast_peers` that have them: the TTL range
    /// their unicast adverts must arrive with (others: any TTL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_ttl: Vec<(IpAddr, TtlRange)>,
    /// keepalived's `check_unicast_src`: drop unicast adverts from addresses not in
    /// `unicast_peers`. Off by default in keepalived.
    pub check_unicast_src: bool,
    /// keepalived's `down_timer_adverts` (1..=100, default 3).
    pub down_timer_adverts: u8,
    /// keepalived's `lower_prio_no_advert`: as master, do not re-advertise on a lower priority
    /// advert.
    pub lower_prio_no_advert: bool,
    /// keepalived's `higher_prio_send_advert`: as master, advertise once more before yielding.
    pub higher_prio_send_advert: bool,
    /// keepalived's `garp_lower_prio_repeat` != 0: as master, re-announce on a lower priority
    /// advert.
    pub garp_lower_prio: bool,
    /// keepalived's `garp_master_delay` (default 5 s; zero = no second burst).
    pub garp_master_delay: Duration,
    /// keepalived's `garp_master_refresh` (default none).
    pub garp_master_refresh: Option<Duration>,
    /// keepalived's `owner_ignore_adverts`: an address owner drops every advert, as RFC 3768
    /// §7.1 and RFC 9568 §7.1 literally say. keepalived's default (false) processes them.
    pub owner_ignore_adverts: bool,
    /// RFC 9568 erratum 8300: discard an IPv6 advert whose first address is not link-local.
    /// keepalived's `vrrp_strict` (it refuses such a VIP list there too); otherwise counted and
    /// logged but processed, as keepalived 2.4.3 runs and sends such lists.
    #[serde(default)]
    pub first_address_link_local: bool,
    /// RFC 9568 §8.4 (our `vrrp_xdp_v2_interop`): a v3 router that also sends and takes
    /// VRRPv2, for a rolling upgrade of a v2 cluster. IPv4, whole-second intervals.
    #[serde(default)]
    pub v2_interop: bool,
}

/// A TTL / hop limit range, both ends included (keepalived's `min_ttl` / `max_ttl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TtlRange {
    pub min: u8,
    pub max: u8,
}

impl TtlRange {
    /// keepalived's default for a peer: any TTL.
    pub const ANY: Self = Self { min: 0, max: 255 };
    /// RFC 9568 §7.1: what multicast adverts, and unicast ones to a multicast instance, need.
    pub const RFC: Self = Self { min: 255, max: 255 };

    pub const fn contains(self, ttl: u8) -> bool {
        ttl >= self.min && ttl <= self.max
    }
}

impl VrConfig {
    /// The TTL range unicast adverts from `peer` must arrive with.
    pub fn peer_ttl(&self, peer: IpAddr) -> TtlRange {
        self.peer_ttl
            .iter()
            .find(|(a, _)| *a == peer)
            .map_or(TtlRange::ANY, |(_, r)| *r)
    }

    /// A configuration with keepalived's defaults for everything not given (non-strict mode):
    /// VRRPv2, priority 100, advert_int 1 s, preempt, accept, garp_master_delay 5 s.
    pub fn keepalived_defaults(
        vrid: Vrid,
        family: Family,
        primary: IpAddr,
        addresses: Vec<IpAddr>,
    ) -> Self {
        Self {
            vrid,
            version: Version::V2,
            family,
            priority: Priority(100),
            interval: Centisecs(100),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: true,
            addresses,
            primary,
            auth: Auth::None,
            initial: InitialState::Backup,
            unicast_peers: Vec::new(),
            peer_ttl: Vec::new(),
            check_unicast_src: false,
            down_timer_adverts: DEFAULT_DOWN_TIMER_ADVERTS,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            garp_lower_prio: true,
            garp_master_delay: Duration::from_secs(5),
            garp_master_refresh: None,
            owner_ignore_adverts: false,
            v2_interop: false,
            first_address_link_local: false,
        }
    }

    pub(super) fn is_owner(&self) -> bool {
        self.priority == Priority::OWNER
    }

    /// Rejects what no VRRP router can run.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.priority == Priority::RELEASE {
            return Err(ConfigError::PriorityZero);
        }
        if self.interval.get() == 0 {
            return Err(ConfigError::IntervalZero);
        }
        match self.version {
            // RFC 9568 §5.2.7: a 12-bit field.
            Version::V3 if self.interval > Centisecs::V3_MAX => {
                return Err(ConfigError::IntervalTooLarge(self.interval));
            }
            Version::V2 => {
                // RFC 3768 §5.3.7: 8-bit whole seconds; RFC 3768 is IPv4 only.
                if !self.interval.get().is_multiple_of(100) || self.interval.get() > 255 * 100 {
                    return Err(ConfigError::V2Interval(self.interval));
                }
                if self.family == Family::V6 {
                    return Err(ConfigError::V2Ipv6);
                }
            }
            Version::V3 => {}
        }
        if self.v2_interop
            && (self.version != Version::V3
                || self.family == Family::V6
                || !self.interval.get().is_multiple_of(100)
                || self.interval.get() > 255 * 100)
        {
            return Err(ConfigError::V2Interop);
        }
        if self.addresses.is_empty() {
            return Err(ConfigError::NoAddresses);
        }
        if self.addresses.len() > 255 {
            return Err(ConfigError::TooManyAddresses(self.addresses.len()));
        }
        if let Some(a) = self
            .addresses
            .iter()
            .find(|a| family_of(**a) != self.family)
        {
            return Err(ConfigError::AddressFamily(*a));
        }
        if family_of(self.primary) != self.family {
            return Err(ConfigError::AddressFamily(self.primary));
        }
        if self.down_timer_adverts == 0 || self.down_timer_adverts > 100 {
            return Err(ConfigError::DownTimerAdverts(self.down_timer_adverts));
        }
        Ok(())
    }

    /// keepalived's silent corrections in `vrrp_complete_instance` (it logs and resets).
    pub(super) fn normalize(&mut self) {
        if self.version == Version::V3 && !self.v2_interop {
            // RFC 9568 §9.1: no authentication in v3 (the v2 copies of §8.4 keep theirs).
            self.auth = Auth::None;
        }
        // "nopreempt is incompatible with priority 255" / "will not work with initial state
        // MASTER": keepalived clears nopreempt (and preempt_delay with state MASTER).
        if self.is_owner() || self.initial == InitialState::Master {
            self.preempt = true;
        }
        if self.initial == InitialState::Master || !self.preempt {
            self.preempt_delay = Duration::ZERO;
        }
    }
}

/// Errors in a [`VrConfig`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum ConfigError {
    #[error("priority 0 is reserved for a master that is leaving (RFC 9568 §5.2.4)")]
    PriorityZero,
    #[error("advertisement interval must not be zero")]
    IntervalZero,
    #[error("advertisement interval {0} exceeds the 12-bit VRRPv3 field (40.95s)")]
    IntervalTooLarge(Centisecs),
    #[error("VRRPv2 advertisement interval {0} must be whole seconds, 1..=255")]
    V2Interval(Centisecs),
    #[error("VRRPv2 (RFC 3768) is IPv4 only")]
    V2Ipv6,
    #[error(
        "VRRPv2 interoperation (RFC 9568 §8.4) needs a VRRPv3 IPv4 instance with a whole-second advert_int (1..255), the interval v2 routers use"
    )]
    V2Interop,
    #[error("no virtual addresses")]
    NoAddresses,
    #[error("{0} virtual addresses, at most 255 fit in an advert")]
    TooManyAddresses(usize),
    #[error("address {0} is not of the virtual router's family")]
    AddressFamily(IpAddr),
    #[error("down_timer_adverts {0} outside 1..=100")]
    DownTimerAdverts(u8),
    #[error("VRID, version or family changed; create a new virtual router instead")]
    IdentityChanged,
}
