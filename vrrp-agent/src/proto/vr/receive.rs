//! RFC 9568 §7.1 / RFC 3768 §7.1 receive checks, and where an accepted advert goes.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::Instant;

use super::{
    Advert, DropReason, Family, Output, Priority, RxWarning, State, TtlRange, Version,
    VirtualRouter,
};

pub(super) fn family_of(a: IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// RFC 9568 §6.4.3: "based on an unsigned integer comparison of the IPvX addresses in network
/// byte order". `None` across families (dropped before this is asked).
pub(super) fn addr_cmp(a: IpAddr, b: IpAddr) -> Option<Ordering> {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Some(u32::from(a).cmp(&u32::from(b))),
        (IpAddr::V6(a), IpAddr::V6(b)) => Some(u128::from(a).cmp(&u128::from(b))),
        _ => None,
    }
}

pub(super) fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// RFC 9568 §5.2.9 and erratum 8300 (§7.1): an IPv6 advert's first address is link-local
/// (fe80::/10). True for IPv4 adverts.
pub(super) fn first_is_link_local(adv: &Advert) -> bool {
    match adv.addresses.first() {
        Some(IpAddr::V6(a)) => a.is_unicast_link_local(),
        _ => true,
    }
}

/// Senders remembered for `AdvertSeenAt` replays.
pub(super) const HEARD_MAX: usize = 8;

impl VirtualRouter {
    /// RFC 9568 §7.1 / RFC 3768 §7.1 receive checks that depend on configuration, in
    /// keepalived's order (`vrrp_check_packet`). The codec has done the rest.
    /// `unicast_allowlist`: apply `check_unicast_src` (primary path only; the driver accepts
    /// heartbeat adverts from the path's configured peers only). `ttl`: see `Input::Advert`.
    pub(super) fn check(
        &mut self,
        src: IpAddr,
        adv: &Advert,
        unicast_allowlist: bool,
        ttl: Option<u8>,
    ) -> Result<(), DropReason> {
        // RFC 9568 §7.1 "MUST verify that the IPv4 TTL / IPv6 Hop Limit is 255", which
        // keepalived skips for a unicast instance (its peers may be routed hops away), then
        // holding each peer to the min_ttl/max_ttl of its unicast_peer line.
        if let Some(ttl) = ttl {
            let range = if unicast_allowlist && !self.cfg.unicast_peers.is_empty() {
                self.cfg.peer_ttl(src)
            } else {
                TtlRange::RFC
            };
            if !range.contains(ttl) {
                self.counters.dropped_ttl += 1;
                return Err(DropReason::BadTtl {
                    ttl,
                    min: range.min,
                    max: range.max,
                });
            }
        }
        if adv.vrid != self.cfg.vrid {
            self.counters.dropped_vrid += 1;
            return Err(DropReason::VridMismatch { got: adv.vrid });
        }
        if adv.version != self.cfg.version && !(self.cfg.v2_interop && adv.version == Version::V2) {
            self.counters.dropped_version += 1;
            return Err(DropReason::VersionMismatch { got: adv.version });
        }
        if family_of(src) != self.cfg.family
            || adv
                .addresses
                .iter()
                .any(|a| family_of(*a) != self.cfg.family)
        {
            self.counters.dropped_family += 1;
            return Err(DropReason::FamilyMismatch);
        }
        if self.cfg.first_address_link_local && !first_is_link_local(adv) {
            self.counters.dropped_first_not_link_local += 1;
            return Err(DropReason::FirstAddressNotLinkLocal);
        }
        if adv.version == Version::V2 {
            // RFC 3768 §7.1: MUST perform the authentication given by Auth Type.
            if adv.auth != self.cfg.auth {
                self.counters.dropped_auth += 1;
                return Err(DropReason::AuthMismatch);
            }
            // RFC 3768 §7.1: MUST verify the Adver Interval equals ours, else discard.
            // keepalived: "to prevent concurrent VRID running => multiple master in 1 VRID".
            if adv.interval != self.cfg.interval {
                self.counters.dropped_interval += 1;
                return Err(DropReason::IntervalMismatch {
                    ours: self.cfg.interval,
                    theirs: adv.interval,
                });
            }
        }
        if adv.version == Version::V2
            && adv.priority != Priority::OWNER
            && !same_set(&adv.addresses, &self.cfg.addresses)
        {
            self.counters.dropped_address_list += 1;
            return Err(DropReason::AddressListMismatch);
        }
        if src == self.cfg.primary {
            self.counters.dropped_own_address += 1;
            return Err(DropReason::OwnAddress);
        }
        // RFC 9568 §7.1: the owner discards adverts; keepalived only with owner_ignore_adverts.
        if self.cfg.owner_ignore_adverts && self.effective == Priority::OWNER {
            self.counters.dropped_owner += 1;
            return Err(DropReason::OwnerIgnoresAdverts);
        }
        if unicast_allowlist
            && self.cfg.check_unicast_src
            && !self.cfg.unicast_peers.is_empty()
            && !self.cfg.unicast_peers.contains(&src)
        {
            self.counters.dropped_unknown_unicast_src += 1;
            return Err(DropReason::UnknownUnicastSource);
        }
        Ok(())
    }

    /// RFC 9568 §8.4: a router in interoperation sends both versions; its v2 copy is ignored
    /// (the v3 one carries the real interval), while a v2-only router is heard as usual.
    /// A sender counts as speaking v3 for a Master_Down_Interval after its last v3 advert.
    fn v2_shadowed(&mut self, at: Instant, src: IpAddr, adv: &Advert) -> bool {
        match adv.version {
            Version::V3 => {
                if self.v3_heard.len() >= HEARD_MAX && !self.v3_heard.contains_key(&src) {
                    // Bounded against spoofed sources: the one heard longest ago goes.
                    if let Some(old) = self
                        .v3_heard
                        .iter()
                        .min_by_key(|(_, t)| **t)
                        .map(|(k, _)| *k)
                    {
                        self.v3_heard.remove(&old);
                    }
                }
                self.v3_heard.insert(src, at);
                false
            }
            Version::V2 => {
                let window = self.master_down_interval();
                self.v3_heard
                    .get(&src)
                    .is_some_and(|t| at.saturating_duration_since(*t) <= window)
            }
        }
    }

    pub(super) fn warnings(&mut self, src: IpAddr, adv: &Advert, replay: bool) {
        let mut found = Vec::new();
        if self.cfg.version == Version::V3 && adv.interval != self.cfg.interval {
            self.counters.interval_mismatch += 1;
            found.push(RxWarning::IntervalMismatch {
                ours: self.cfg.interval,
                theirs: adv.interval,
            });
        }
        if !same_set(&adv.addresses, &self.cfg.addresses) {
            self.counters.address_list_mismatch += 1;
            found.push(RxWarning::AddressListMismatch);
        }
        if !first_is_link_local(adv) {
            self.counters.first_not_link_local += 1;
            found.push(RxWarning::FirstAddressNotLinkLocal);
        }
        if adv.priority == Priority::OWNER && self.effective == Priority::OWNER {
            self.counters.another_owner += 1;
            found.push(RxWarning::AnotherOwner);
        } else if adv.priority == self.effective && adv.priority != Priority::RELEASE {
            self.counters.equal_priority += 1;
            found.push(RxWarning::EqualPriority);
        }
        // Log once per distinct advert (keepalived rate-limits these logs the same way).
        let new = self
            .last_rx
            .as_ref()
            .is_none_or(|(s, a)| *s != src || a != adv);
        if !replay && new {
            for warning in found {
                self.emit(Output::Warning { src, warning });
            }
        }
    }

    /// `now` is when we act (sends, advert timer); `at` is when the advert arrived (master-down
    /// timer), different only for `AdvertSeenAt`.
    pub(super) fn receive(
        &mut self,
        now: Instant,
        at: Instant,
        src: IpAddr,
        adv: Advert,
        ttl: Option<u8>,
        replay: bool,
    ) {
        if !matches!(self.state, State::Backup | State::Master) {
            // keepalived `vrrp_dispatcher_read`: ignored in FAULT and INIT.
            self.counters.ignored_not_running += 1;
            return;
        }
        if let Err(reason) = self.check(src, &adv, true, ttl) {
            self.emit(Output::Dropped { src, reason });
            return;
        }
        if self.cfg.v2_interop && self.v2_shadowed(at, src, &adv) {
            self.counters.dropped_v2_from_v3 += 1;
            self.emit(Output::Dropped {
                src,
                reason: DropReason::V2FromV3Sender,
            });
            return;
        }
        self.warnings(src, &adv, replay);
        if !replay {
            self.counters.adverts_rx += 1;
        }
        if adv.priority == Priority::RELEASE {
            self.counters.priority_zero_rx += 1;
        }
        match self.state {
            State::Backup => self.backup_rx(at, src, &adv, replay),
            State::Master => self.master_rx(now, src, &adv),
            _ => {}
        }
        if self.heard.len() >= HEARD_MAX && !self.heard.contains_key(&src) {
            // Bounded: a flood of spoofed sources forgets old ones, never the current master.
            let master = self.master.map(|m| m.addr);
            if let Some(old) = self.heard.keys().find(|k| Some(**k) != master).copied() {
                self.heard.remove(&old);
            }
        }
        self.heard.insert(src, adv.clone());
        self.last_rx = Some((src, adv));
    }
}
