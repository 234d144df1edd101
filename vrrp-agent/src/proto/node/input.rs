//! What each [`NodeInput`] does: routing adverts to routers by interface, family and VRID,
//! kernel timestamps and master-silent reports, VIP claims, links, tracking, the tick.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};
use vrrp_common::maps::AdvertState;

use super::*;

impl Node {
    // ---- inputs --------------------------------------------------------------------------

    /// The RFC's Startup event, after telling the router its sync group and link state.
    pub(super) fn start(&mut self, id: InstanceId, now: Instant) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        inst.started = true;
        let name = inst.spec.name.clone();
        let up = self.ifaces.get(&inst.spec.ifindex).is_none_or(|i| i.up);
        if let Some(join) = self.sync.join(&name) {
            self.feed(id, now, join);
        }
        if !up {
            self.feed(id, now, Input::Link { up: false });
        }
        self.feed(id, now, Input::Startup);
    }

    pub(super) fn has_xdp(&self, i: &Instance) -> bool {
        self.ifaces.get(&i.spec.ifindex).is_some_and(|f| f.spec.xdp)
    }

    /// `on`: the interface and family it came in on.
    pub(super) fn on_advert(
        &mut self,
        now: Instant,
        (ifindex, family): (u32, Family),
        src: IpAddr,
        result: Result<Advert, DecodeError>,
        form: Option<ChecksumForm>,
        ttl: Option<u8>,
    ) {
        // No instance runs on a heartbeat interface (the config refuses it).
        if self
            .instances
            .values()
            .any(|i| i.spec.heartbeats.iter().any(|p| p.ifindex == ifindex))
        {
            // Heartbeat paths are links: their adverts are held to TTL 255 like multicast.
            let result = match (result, ttl) {
                (Ok(_), Some(ttl)) if ttl != vrrp_common::wire::VRRP_TTL => {
                    Err(DecodeError::BadTtl { ttl })
                }
                (r, _) => r,
            };
            return self.on_heartbeat_advert(now, ifindex, family, src, result);
        }
        let advert = match result {
            Ok(a) => a,
            Err(e) => {
                // Once per interface and family: the VRID may be unreadable, and a malformed
                // packet never changes state.
                debug!(%src, error = %e, "malformed advert dropped");
                *self
                    .decode_errors
                    .entry((ifindex, family))
                    .or_default()
                    .entry(e.kind())
                    .or_default() += 1;
                return;
            }
        };
        let Some(id) = self
            .instances
            .iter()
            .find(|(_, i)| {
                i.spec.ifindex == ifindex
                    && i.spec.vr.family == family
                    && i.spec.vr.vrid == advert.vrid
            })
            .map(|(id, _)| *id)
        else {
            self.unknown_vrid += 1;
            debug!(%src, vrid = %advert.vrid, "advert for a VRID we do not run");
            return;
        };
        let mut rearm = false;
        if let Some(i) = self.instances.get_mut(&id) {
            let before = i.spec.form_auto.then(|| i.form_plan());
            i.peers.heard(
                src,
                peers::Peer {
                    priority: advert.priority,
                    interval: advert.interval,
                    last_seen: now,
                    form,
                },
            );
            // VRRPv3 over IPv4 has two checksum forms; a strict RFC 9568 peer refuses the
            // pseudo-header one we (like keepalived and FRR) send by default while we accept
            // its form: two masters and no word. Said once per peer, counted always.
            let ours = i.spec.form.effective(i.spec.vr.version, i.spec.vr.family);
            if let Some(theirs) = form
                && theirs.effective(i.spec.vr.version, i.spec.vr.family) != ours
            {
                i.form_mismatches += 1;
                if i.form_warned.len() < peers::PEERS_MAX && i.form_warned.insert(src) {
                    if i.spec.form_auto {
                        info!(instance = %i.spec.name, %src, theirs = ?theirs, ours = ?ours, "this peer uses the other VRRPv3 checksum form: answering it in its form (vrrp_xdp_checksum_auto)");
                    } else {
                        warn!(instance = %i.spec.name, %src, theirs = ?theirs, ours = ?ours, "this peer uses the other VRRPv3 checksum form: it may drop our adverts (two masters); set v3_checksum_as_v2 to match it, or vrrp_xdp_checksum_auto");
                    }
                }
            }
            // Auto mode: new forms to send make the pre-encoded adverts stale, the guardian's
            // priority 0 included.
            if let Some(before) = before {
                let after = i.form_plan();
                if after != before {
                    info!(instance = %i.spec.name, forms = ?after, "checksum forms we send changed");
                    i.advert_cache = None;
                    rearm = i.installed;
                }
            }
        }
        if rearm {
            self.arm_guardian(id);
        }
        self.feed(id, now, Input::Advert { src, advert, ttl });
    }

    pub(super) fn on_heartbeat_advert(
        &mut self,
        now: Instant,
        ifindex: u32,
        family: Family,
        src: IpAddr,
        result: Result<Advert, DecodeError>,
    ) {
        let advert = match result {
            Ok(a) => a,
            Err(e) => {
                debug!(%src, error = %e, "malformed advert on a heartbeat path dropped");
                for inst in self
                    .instances
                    .values_mut()
                    .filter(|i| i.spec.vr.family == family)
                {
                    for (spec, st) in inst.spec.heartbeats.iter().zip(&mut inst.paths) {
                        if spec.ifindex == ifindex && spec.peers.contains(&src) {
                            st.decode_errors += 1;
                        }
                    }
                }
                return;
            }
        };
        let ids: Vec<InstanceId> = self.instances.keys().copied().collect();
        let found = heartbeat::route(
            self.instances
                .values()
                .map(|i| (i.spec.vr.family, i.spec.vr.vrid, &i.spec.heartbeats[..])),
            ifindex,
            family,
            advert.vrid,
            src,
        );
        let Some((pos, path)) = found else {
            debug!(%src, vrid = %advert.vrid, "advert on a heartbeat path from no configured peer of that VRID: dropped");
            return;
        };
        let id = ids[pos];
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let local = inst.spec.heartbeats[path].src;
        inst.paths[path].heard(now, src, advert.priority);
        self.feed(id, now, Input::HeartbeatAdvert { src, local, advert });
    }

    /// A kernel record newer than the last one given to the router, from its master: the slot
    /// follows the master (`takes_slot`); when another sender took it after a silence of the
    /// master, the master's record moved to `OTHERS`, which is read too.
    pub(super) fn kernel_seen(
        inst: &Instance,
        now: Instant,
        slot: &KernelSlot,
    ) -> Option<(IpAddr, Instant, u64)> {
        let ipv6 = inst.spec.vr.family == Family::V6;
        let master = inst.vr.master().map(|m| m.addr)?;
        let of_master = |st: Option<AdvertState>| {
            st.filter(|st| advert_source(st, ipv6) == master)
                .map(|st| st.last_ns)
        };
        let ns = of_master(slot.current).or_else(|| of_master(slot.others))?;
        if ns <= inst.kernel_seen_ns || ns > slot.mono_now_ns {
            return None;
        }
        let at = now.checked_sub(Duration::from_nanos(slot.mono_now_ns - ns))?;
        Some((master, at, ns))
    }

    pub(super) fn due(
        &self,
        inst: &Instance,
        now: Instant,
        early: Option<Instant>,
    ) -> Option<Instant> {
        let w = inst.wake_at()?;
        // A master's advert due within a twentieth of its interval goes now, as if at its
        // time: with hundreds of instances the adverts share wake-ups (timer slack), and the
        // phase of each is kept.
        let master = inst.vr.state() == State::Master;
        let slack = inst.spec.vr.interval.as_duration() / 20;
        let due = w <= now
            || (master && w <= now + slack)
            || early.is_some_and(|e| inst.cover.is_some() && w <= e);
        due.then_some(w)
    }

    pub(super) fn on_timer(
        &mut self,
        now: Instant,
        early: Option<Instant>,
        slots: &[(SlotKey, KernelSlot)],
    ) {
        self.release_gates(now);
        self.release_restores(now);
        let ids: Vec<InstanceId> = self.instances.keys().copied().collect();
        for id in ids {
            let Some(inst) = self.instances.get(&id) else {
                continue;
            };
            let Some(w) = self.due(inst, now, early) else {
                continue;
            };
            let state = inst.vr.state();
            let seen = (state == State::Backup)
                .then(|| slots.iter().find(|(k, _)| *k == inst.key()))
                .flatten()
                .and_then(|(_, s)| Self::kernel_seen(inst, now, s));
            let inst = self.instances.get_mut(&id).expect("present");
            inst.timer_wakeups += 1;
            if state == State::Master && w > now {
                self.feed(id, w, Input::Timeout);
                continue;
            }
            // The master-down timer reads the kernel's timestamps lazily: adverts that said
            // nothing new were absorbed in XDP, so a fresher one may exist. Re-arm from it.
            if let Some((src, at, ns)) = seen {
                inst.kernel_seen_ns = ns;
                self.feed(id, now, Input::AdvertSeenAt { src, at });
            }
            self.feed(id, now, Input::Timeout);
        }
    }

    /// The kernel timer watching a backup's master ran out: the master was silent for the
    /// Master_Down_Interval. The router gets the master's last advert time, then its timeout.
    pub(super) fn on_master_silent(&mut self, now: Instant, key: SlotKey, slot: KernelSlot) {
        let Some(id) = self
            .instances
            .iter()
            .find(|(_, i)| i.key() == key)
            .map(|(id, _)| *id)
        else {
            return;
        };
        let inst = self.instances.get_mut(&id).expect("found");
        inst.silent_reports += 1;
        // The kernel watches the primary path only. Heartbeat-path adverts (user space) move
        // the router's own deadline past this report, so the Timeout below then does nothing.
        // A report from before a transition still only feeds a Timeout, which the router
        // checks against its own deadline.
        if inst.vr.state() == State::Backup
            && let Some((src, at, ns)) = Self::kernel_seen(inst, now, &slot)
        {
            inst.kernel_seen_ns = ns;
            self.feed(id, now, Input::AdvertSeenAt { src, at });
        }
        self.feed(id, now, Input::Timeout);
    }

    pub(super) fn on_claim(&mut self, now: Instant, ifindex: u32, vip: IpAddr, mac: [u8; 6]) {
        let iface = self
            .ifaces
            .get(&ifindex)
            .map(|i| i.spec.name.clone())
            .unwrap_or_default();
        let mac = crate::proto::MacDisplay(mac);
        let ids: Vec<InstanceId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.spec.vips.iter().any(|v| v.spec.addr == vip))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let inst = self.instances.get_mut(&id).expect("listed");
            // Only a claim while we hold the VIP is a conflict; during a handover the new
            // master's gratuitous ARP can reach us just before its advert does.
            if inst.vr.state() != State::Master {
                debug!(instance = %inst.spec.name, %vip, "VIP announced by another node while we are not master");
                continue;
            }
            inst.conflicts += 1;
            if inst.split_brain.active() {
                debug!(instance = %inst.spec.name, %iface, %vip, %mac, "another node claims our VIP while we are MASTER");
            } else {
                warn!(instance = %inst.spec.name, %iface, %vip, %mac, "another node claims our VIP while we are MASTER");
            }
            self.split_brain_signal(id, now, "vip_claimed", format!("{vip} by {mac}"));
        }
    }

    pub(super) fn on_link(&mut self, now: Instant, ifindex: u32, up: bool) {
        let Some(iface) = self.ifaces.get_mut(&ifindex) else {
            return;
        };
        if iface.up == up {
            return;
        }
        iface.up = up;
        info!(iface = %iface.spec.name, up, "link state changed");
        let ids: Vec<InstanceId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.spec.ifindex == ifindex)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.feed(id, now, Input::Link { up });
        }
    }

    pub(super) fn on_tracking(
        &mut self,
        now: Instant,
        instance: &str,
        priority: Priority,
        fault: bool,
        reasons: Vec<String>,
    ) {
        let Some(id) = self
            .instances
            .iter()
            .find(|(_, i)| i.spec.name == instance)
            .map(|(id, _)| *id)
        else {
            return;
        };
        let inst = self.instances.get_mut(&id).expect("found");
        let now_tracked = (priority, fault, reasons);
        if inst.tracked.as_ref() == Some(&now_tracked) {
            return;
        }
        if fault || !now_tracked.2.is_empty() {
            info!(instance, %priority, fault, reasons = %now_tracked.2.join("; "), "tracking changed");
        } else {
            info!(instance, %priority, "tracking changed");
        }
        inst.tracked = Some(now_tracked);
        let started = inst.started;
        self.feed(id, now, Input::Fault(fault));
        self.feed(id, now, Input::Priority(priority));
        if !started {
            self.start(id, now);
        }
    }

    pub(super) fn on_tick(&mut self, now: Instant) {
        let mut changed = false;
        for inst in self.instances.values_mut() {
            let (state, mdi) = (inst.vr.state(), inst.vr.master_down_interval());
            if inst.split_brain.expire(now, state, mdi) {
                info!(instance = %inst.spec.name, state = %state, "split brain over");
                changed = true;
            }
        }
        // The dead-man gate stays fresh on every interface whose program answers for us.
        // A master's adverts stamp its interface (and only they: a stamp between adverts would
        // keep a hung master answering past the backup's Master_Down_Interval, two answerers).
        // The tick covers what answers without advertising (an old master handing over).
        let bounds = self.gate_bounds();
        self.gates.retain(|ifindex, _| bounds.contains_key(ifindex));
        for (ifindex, bound) in bounds {
            let advertised = self.instances.values().any(|i| {
                i.spec.ifindex == ifindex && i.vr.state() == State::Master && self.owned(i)
            });
            if !advertised {
                self.gates.remove(&ifindex);
            }
            if !advertised || !self.gates.contains_key(&ifindex) {
                self.stamp_gate(now, ifindex, bound, None);
            }
        }
        if changed {
            debug!("split-brain episodes ended");
        }
        self.actions.push_back(Action::Publish);
    }

    /// The dead-man bound of every interface whose program answers for us: that of its
    /// fastest instance. The gate is per interface, and a hung master must fall silent before
    /// the backup of each of its instances takes over (the slowest one's bound kept a hung
    /// master answering for 3 s beside the new master of a 100 ms instance: 394 ms of two
    /// answerers in the soak). A slower instance's VIPs go quiet early instead: a gap, never two.
    fn gate_bounds(&self) -> BTreeMap<u32, Duration> {
        let mut bounds: BTreeMap<u32, Duration> = BTreeMap::new();
        for i in self.instances.values() {
            if self.owned(i) {
                let b = liveness_bound(i.spec.vr.interval);
                bounds
                    .entry(i.spec.ifindex)
                    .and_modify(|e| *e = (*e).min(b))
                    .or_insert(b);
            }
        }
        bounds
    }

    /// [`Node::gate_bounds`] of one interface.
    pub(super) fn gate_bound(&self, ifindex: u32) -> Option<Duration> {
        self.instances
            .values()
            .filter(|i| i.spec.ifindex == ifindex && self.owned(i))
            .map(|i| liveness_bound(i.spec.vr.interval))
            .min()
    }

    /// Stamps an interface's dead-man gate, unless it may have closed while we were stalled
    /// (the driver skips writes within half the bound, so past half of it): then our
    /// masters there advertise first (`sent`: one whose advert is already queued) and the gate
    /// reopens [`GATE_REOPEN_HOLD`] later ([`Node::release_gates`]).
    pub(super) fn stamp_gate(
        &mut self,
        now: Instant,
        ifindex: u32,
        bound: Duration,
        sent: Option<InstanceId>,
    ) {
        match self.gates.get(&ifindex).copied() {
            Some(Gate { hold: Some(h), .. }) if now < h => return,
            Some(Gate {
                stamped,
                bound: b,
                hold: None,
            }) if now.saturating_duration_since(stamped) >= b / 2 => {
                self.gate_stalls += 1;
                warn!(
                    ifindex,
                    stalled_ms = now.saturating_duration_since(stamped).as_millis() as u64,
                    "the agent was stalled past its dead-man bound (XDP stopped answering): our adverts go out before XDP answers again"
                );
                let masters: Vec<(InstanceId, Priority)> = self
                    .instances
                    .iter()
                    .filter(|(id, i)| {
                        i.spec.ifindex == ifindex
                            && Some(**id) != sent
                            && i.vr.state() == State::Master
                            && self.owned(i)
                    })
                    .map(|(id, i)| (*id, i.vr.effective_priority()))
                    .collect();
                for (id, priority) in masters {
                    self.actions.push_back(Action::SendAdvert { id, priority });
                }
                self.gates.insert(
                    ifindex,
                    Gate {
                        stamped,
                        bound: b,
                        hold: Some(now + GATE_REOPEN_HOLD),
                    },
                );
                return;
            }
            _ => {}
        }
        self.open_gate(now, ifindex, bound);
    }

    /// Stamps an interface's gate now (no stall check: a new owner's gate is stale anyway).
    pub(super) fn open_gate(&mut self, now: Instant, ifindex: u32, bound: Duration) {
        let gate = Gate {
            stamped: now,
            bound,
            hold: None,
        };
        self.gates.insert(ifindex, gate);
        self.actions
            .push_back(Action::RefreshLiveness { ifindex, bound });
    }

    /// Reopens the gates whose stall hold is over, where we still own VIPs.
    /// A VIP we hold as MASTER went from its interface behind our back: put it back, at once
    /// the first time, paced by [`restore::Backoff`] when it keeps going.
    pub(super) fn on_address_removed(&mut self, now: Instant, ifindex: u32, addr: IpAddr) {
        for (id, inst) in &mut self.instances {
            if !inst.installed {
                continue;
            }
            let gone: Vec<VipBinding> = inst
                .spec
                .vips
                .iter()
                .filter(|v| v.ifindex == ifindex && v.spec.addr == addr)
                .cloned()
                .collect();
            if gone.is_empty() {
                continue;
            }
            match inst.restore.removed(now, gone.clone()) {
                restore::Removal::RestoreNow => {
                    inst.vips_restored += 1;
                    warn!(instance = %inst.spec.name, vip = %addr, "a VIP we hold as MASTER was removed behind our back: restoring it");
                    self.actions.push_back(Action::InstallVips {
                        id: *id,
                        vips: gone,
                    });
                }
                restore::Removal::Held { first } => {
                    if first {
                        warn!(instance = %inst.spec.name, vip = %addr, "a VIP keeps being removed behind our back: restoring it with a back-off (up to 30 s); find what removes it");
                    } else {
                        debug!(instance = %inst.spec.name, vip = %addr, "VIP removed again: restore held by the back-off");
                    }
                }
            }
            self.actions.push_back(Action::Publish);
        }
    }

    /// Restores held by the back-off whose time has come (still MASTER).
    pub(super) fn release_restores(&mut self, now: Instant) {
        for (id, inst) in &mut self.instances {
            let Some(vips) = inst.restore.release(now) else {
                continue;
            };
            if !inst.installed {
                continue;
            }
            inst.vips_restored += 1;
            info!(instance = %inst.spec.name, vips = vips.len(), "restoring VIPs removed behind our back (back-off)");
            self.actions
                .push_back(Action::InstallVips { id: *id, vips });
            self.actions.push_back(Action::Publish);
        }
    }

    pub(super) fn release_gates(&mut self, now: Instant) {
        let due: Vec<u32> = self
            .gates
            .iter()
            .filter(|(_, g)| g.hold.is_some_and(|h| h <= now))
            .map(|(k, _)| *k)
            .collect();
        if due.is_empty() {
            return;
        }
        let bounds = self.gate_bounds();
        for ifindex in due {
            match bounds.get(&ifindex) {
                Some(&bound) => self.stamp_gate(now, ifindex, bound, None),
                None => {
                    self.gates.remove(&ifindex);
                }
            }
        }
    }

    /// Whether XDP answers for the instance's VIPs now.
    pub(super) fn owned(&self, i: &Instance) -> bool {
        i.wants_ownership
            && self
                .ifaces
                .get(&i.spec.ifindex)
                .is_some_and(|f| f.spec.xdp && f.xdp_answers)
    }

    /// Interfaces with XDP whose instances hold VIPs there (the dead-man gate watches them).
    pub fn answering(&self, ifindex: u32) -> bool {
        self.instances
            .values()
            .any(|i| i.spec.ifindex == ifindex && self.owned(i))
    }
}
