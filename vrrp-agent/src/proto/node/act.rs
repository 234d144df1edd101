//! From the routers' outputs to the node's actions: sync-group fan-out, group notify, the
//! master-silence watch, split-brain signals, announcements, the guardian, the data plane.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;

use tracing::{debug, error, info, warn};

use super::*;

impl Node {
    // ---- routers and their outputs -------------------------------------------------------

    /// Hands an input to one router and carries out everything it asks for, in order. A
    /// change that a sync group must follow becomes inputs to the other members, fed the same
    /// way until nothing more follows (group-caused changes are not echoed back).
    pub(super) fn feed(&mut self, id: InstanceId, now: Instant, input: Input) {
        let mut queue = VecDeque::from([(id, input)]);
        let mut touched = Vec::new();
        let mut changed = false;
        while let Some((i, input)) = queue.pop_front() {
            let Some(inst) = self.instances.get_mut(&i) else {
                continue;
            };
            if !touched.contains(&i) {
                touched.push(i);
            }
            let name = inst.spec.name.clone();
            let before = inst.vr.sync_status();
            inst.vr.handle(now, input);
            while let Some(out) = self.instances.get_mut(&i).and_then(|x| x.vr.poll_output()) {
                changed |= matches!(
                    out,
                    Output::Transition { .. } | Output::PriorityChanged { .. }
                );
                for (member, inp) in self.sync.on_output(&name, &out) {
                    if let Some(j) = self.by_name(&member) {
                        queue.push_back((j, inp));
                    }
                }
                let transition = matches!(out, Output::Transition { .. });
                self.act(i, now, out);
                if transition {
                    self.group_notify(&name);
                }
            }
            let Some(after) = self.instances.get(&i).map(|x| x.vr.sync_status()) else {
                continue;
            };
            for (member, inp) in self.sync.on_status(&name, before, after) {
                if let Some(j) = self.by_name(&member) {
                    queue.push_back((j, inp));
                }
            }
        }
        for i in touched {
            self.watch(i);
        }
        if changed {
            self.actions.push_back(Action::Publish);
        }
    }

    pub(super) fn by_name(&self, name: &str) -> Option<InstanceId> {
        self.instances
            .iter()
            .find(|(_, i)| i.spec.name == name)
            .map(|(id, _)| *id)
    }

    /// Keeps the data plane's master-silence timer in step with the router (a backup's
    /// Master_Down_Interval, which follows the priority and the learned interval; none in any
    /// other state); the driver answers whether it may sleep on it.
    pub(super) fn watch(&mut self, id: InstanceId) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        if !self.has_xdp(inst) {
            return;
        }
        let backup = inst.vr.state() == State::Backup;
        let want = backup.then(|| inst.vr.master_down_interval());
        if !backup && inst.watch == Some(want) {
            return;
        }
        let action = Action::Watch {
            id,
            key: inst.key(),
            master_down: want,
            master: inst.vr.master().map(|m| m.addr),
            backup,
        };
        let inst = self.instances.get_mut(&id).expect("present");
        inst.watch = Some(want);
        if !backup {
            inst.cover = None;
        }
        self.actions.push_back(action);
    }

    /// keepalived's group notify scripts: when every member of a sync group is in the same
    /// state and that differs from the group's last one.
    pub(super) fn group_notify(&mut self, member: &str) {
        let Some(group) = self.sync.group_of(member).map(str::to_string) else {
            return;
        };
        let members: Vec<String> = self
            .sync
            .groups()
            .find(|(g, _)| *g == group)
            .map(|(_, m)| m.to_vec())
            .unwrap_or_default();
        let states: Vec<State> = members
            .iter()
            .filter_map(|m| self.by_name(m).map(|id| self.instances[&id].vr.state()))
            .collect();
        // A member missing from the node (configured in the group but not as an instance)
        // means the group is not in one state.
        if states.len() != members.len() {
            return;
        }
        let Some(first) = states.first().copied() else {
            return;
        };
        if states.iter().any(|s| *s != first) || self.group_state.get(&group) == Some(&first) {
            return;
        }
        self.group_state.insert(group.clone(), first);
        info!(group = %group, state = %first, "sync group state");
        self.actions.push_back(Action::Notify(Notify {
            group: true,
            name: group,
            state: first,
            priority: Priority(0),
        }));
    }

    pub(super) fn act(&mut self, id: InstanceId, now: Instant, out: Output) {
        // The hot path (every advert of every master) first, without the name's allocation.
        if let Output::SendAdvert { priority } = out {
            // The advert before the stamp: after a stall, the gate reopens only behind it.
            self.actions.push_back(Action::SendAdvert { id, priority });
            // XDP yields to a higher priority than the one we advertise (`VRID_F_YIELD`): it
            // must know that one (0 while handing over).
            if let Some(inst) = self.instances.get_mut(&id)
                && inst.advertised != Some(priority)
            {
                inst.advertised = Some(priority);
                self.dp_dirty = true;
            }
            if let Some(inst) = self.instances.get(&id)
                && self.owned(inst)
                && let Some(bound) = self.gate_bound(inst.spec.ifindex)
            {
                let ifindex = inst.spec.ifindex;
                self.stamp_gate(now, ifindex, bound, Some(id));
            }
            return;
        }
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let name = inst.spec.name.clone();
        match out {
            Output::SendAdvert { .. } => {}
            Output::Announce { kind } => {
                let a = self.announce(id, kind);
                self.actions.extend(a.map(Action::Announce));
            }
            Output::InstallVips => {
                inst.installed = true;
                self.actions.push_back(Action::InstallVips {
                    id,
                    vips: inst.spec.vips.clone(),
                });
                self.arm_guardian(id);
            }
            Output::RemoveVips => {
                inst.installed = false;
                inst.restore.forget();
                self.actions.push_back(Action::RemoveVips {
                    id,
                    vips: inst.spec.vips.clone(),
                });
                self.actions.extend(disarm(&inst.spec));
            }
            Output::SetXdpOwnership(own) => {
                inst.wants_ownership = own;
                let (ifindex, vmac) = (inst.spec.ifindex, inst.spec.vmac);
                // The virtual MAC is in the NIC's filter exactly while we answer with it.
                if let Some(mac) = vmac
                    && own
                {
                    self.actions.push_back(Action::VmacFilter {
                        ifindex,
                        mac,
                        add: true,
                    });
                }
                // The dead-man gate first: a backup does not keep the stamp fresh, and with a
                // stale one the program would not answer for the VIPs written next until the
                // first refresh after them (the next advert: an interval with no answerer).
                if own
                    && let Some(inst) = self.instances.get(&id)
                    && self.owned(inst)
                    && let Some(bound) = self.gate_bound(ifindex)
                {
                    self.open_gate(now, ifindex, bound);
                }
                self.plan_dataplane();
                if let Some(mac) = vmac
                    && !own
                {
                    self.actions.push_back(Action::VmacFilter {
                        ifindex,
                        mac,
                        add: false,
                    });
                }
            }
            Output::Transition { from, to, reason } => {
                let key = inst.key();
                *inst
                    .transitions
                    .entry(reason.label().to_string())
                    .or_default() += 1;
                let priority = inst.vr.effective_priority();
                let vrid = inst.spec.vr.vrid;
                if self.ifaces.get(&key.0).is_some_and(|f| f.spec.xdp) {
                    self.actions.push_back(Action::ForgetAdvert { key });
                }
                self.actions.push_back(Action::Notify(Notify {
                    group: false,
                    name: name.clone(),
                    state: to,
                    priority,
                }));
                info!(
                    instance = %name,
                    vrid = %vrid,
                    from = %from,
                    to = %to,
                    reason = %reason,
                    "state transition"
                );
            }
            Output::Dropped { src, reason } => {
                // At warn, once per reason and sender every WARN_EVERY; the router counts each.
                // The table is bounded: past it (a spoofed flood) only the counters move.
                let key = (reason.label(), src);
                let log = match inst.discards_logged.get(&key) {
                    Some(at) => now.saturating_duration_since(*at) >= WARN_EVERY,
                    None => inst.discards_logged.len() < DISCARD_LOG_PEERS,
                };
                if log {
                    inst.discards_logged.insert(key, now);
                    warn!(instance = %name, %src, reason = reason.label(), detail = ?reason, "advert dropped (logged at most every 10 s per reason and sender)");
                } else {
                    debug!(instance = %name, %src, ?reason, "advert dropped");
                }
            }
            Output::Warning { src, warning } => {
                // Once per WARN_EVERY per instance: a flood of such adverts is counted by the
                // router, not logged one line each.
                if inst
                    .warned_at
                    .is_none_or(|at| now.saturating_duration_since(at) >= WARN_EVERY)
                {
                    inst.warned_at = Some(now);
                    warn!(instance = %name, %src, ?warning, "advert does not match our configuration (warned at most every 10 s)");
                } else {
                    debug!(instance = %name, %src, ?warning, "advert does not match our configuration");
                }
            }
            Output::MasterRxLowerPriority { src, priority } => {
                // Once per episode at info: in a partition this repeats every advert interval.
                if inst.split_brain.active() {
                    debug!(instance = %name, %src, %priority, "master heard a lower priority advert; re-asserting");
                } else {
                    info!(instance = %name, %src, %priority, "master heard a lower priority advert; re-asserting");
                }
                self.actions.push_back(Action::Hook {
                    instance: name,
                    hook: HookKind::MasterRxLowerPriority,
                    args: Vec::new(),
                });
                self.split_brain_signal(id, now, "other_master", src.to_string());
            }
            Output::PriorityChanged { from, to } => {
                info!(instance = %name, %from, %to, "effective priority changed");
            }
            Output::HeartbeatMaster {
                src,
                priority,
                better,
            } => {
                // Heartbeat paths are liveness only (proto::vr `heartbeat_rx`): we stay MASTER
                // and say so loudly, once per episode; the fence hook may act.
                if !inst.split_brain.active() {
                    warn!(instance = %name, %src, %priority, better, "another master heard on a heartbeat path while we are MASTER; staying MASTER (heartbeat paths never decide the election)");
                }
                self.split_brain_signal(id, now, "heartbeat_master", src.to_string());
            }
            Output::ConfigRejected { error } => {
                error!(instance = %name, %error, "configuration change rejected");
            }
            Output::ResignTimedOut { resumed: true } => {
                warn!(instance = %name, "handover: no new master within the master-down interval; staying MASTER");
            }
            Output::ResignTimedOut { resumed: false } => {
                warn!(instance = %name, "stopping: no new master within the master-down interval; releasing the VIPs anyway");
            }
        }
    }

    /// Another node acts as master for the instance while we are MASTER (see [`split_brain`]):
    /// the first signal of an episode raises the alarm and runs the hooks once.
    pub(super) fn split_brain_signal(
        &mut self,
        id: InstanceId,
        now: Instant,
        kind: &str,
        source: String,
    ) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let view = split_brain::RouterView {
            state: inst.vr.state(),
            resigning: inst.vr.status(now).resigning,
            master_since: inst
                .vr
                .last_transition()
                .filter(|r| r.to == State::Master)
                .map(|r| r.at),
            advert_int: inst.spec.vr.interval.as_duration(),
        };
        match inst.split_brain.signal(now, view) {
            split_brain::Signal::Expected => {
                debug!(instance = %inst.spec.name, kind, %source, "another master while taking over or handing over: expected");
            }
            split_brain::Signal::Continued => {}
            split_brain::Signal::Started => {
                let name = inst.spec.name.clone();
                error!(instance = %name, kind, %source, "SPLIT BRAIN: another node acts as master for our VRID while we are MASTER");
                let args = vec![
                    "INSTANCE".to_string(),
                    name.clone(),
                    kind.to_string(),
                    source,
                ];
                self.actions.push_back(Action::Hook {
                    instance: name.clone(),
                    hook: HookKind::SplitBrain,
                    args: args.clone(),
                });
                self.actions.push_back(Action::Hook {
                    instance: name,
                    hook: HookKind::Fence,
                    args,
                });
                self.actions.push_back(Action::Publish);
            }
        }
    }

    pub(super) fn announce(&self, id: InstanceId, kind: AnnounceKind) -> Option<Announce> {
        let inst = self.instances.get(&id)?;
        let iface = self.ifaces.get(&inst.spec.ifindex)?;
        let repeat = match kind {
            AnnounceKind::Refresh => inst.spec.garp_refresh_repeat,
            _ => inst.spec.garp_repeat,
        }
        .max(1);
        Some(Announce {
            instance: inst.spec.name.clone(),
            ifindex: inst.spec.ifindex,
            mac: inst.spec.vmac.unwrap_or(iface.spec.mac),
            vips: inst.spec.vips.iter().map(|v| v.spec.addr).collect(),
            repeat,
            gap: if inst.spec.vr.family == Family::V4 {
                self.garp_interval
            } else {
                self.gna_interval
            },
            kind,
        })
    }

    /// Tells the guardian what to say for the instance if we die now: priority 0 and its VIPs,
    /// also on each heartbeat path (with the primary path cut, the only way the backup learns
    /// at once that we are gone).
    pub(super) fn arm_guardian(&mut self, id: InstanceId) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let Some(iface) = self.ifaces.get(&inst.spec.ifindex) else {
            return;
        };
        let s = &inst.spec;
        self.actions.push_back(Action::GuardianArm(Armed {
            key: s.name.clone(),
            ifname: iface.spec.name.clone(),
            ifindex: s.ifindex,
            src: s.src,
            // The forms we send now (auto mode): re-armed when they change.
            release: inst.encode_plan(Priority::RELEASE, s.src, &inst.form_plan()),
            ttl: s.ttl,
            vips: s
                .vips
                .iter()
                .map(|v| (v.ifindex, v.spec.addr, v.spec.prefix_len))
                .collect(),
        }));
        for p in &s.heartbeats {
            self.actions.push_back(Action::GuardianArm(Armed {
                key: heartbeat::guardian_key(&s.name, &p.iface),
                ifname: p.iface.clone(),
                ifindex: p.ifindex,
                src: p.src,
                release: inst.encode_to(Priority::RELEASE, p.src, &p.peers),
                ttl: vrrp_common::wire::VRRP_TTL,
                vips: Vec::new(),
            }));
        }
    }

    /// Brings the data plane (slots, owned VIPs, the kernel filter) in line with the routers.
    pub(super) fn plan_dataplane(&mut self) {
        self.dp_dirty = false;
        let contribs = self.instances.values().map(|i| {
            let iface = self.ifaces.get(&i.spec.ifindex);
            let has_xdp = iface.is_some_and(|f| f.spec.xdp);
            let answers = iface.is_some_and(|f| f.spec.xdp && f.xdp_answers);
            dataplane::Contribution {
                ifindex: i.spec.ifindex,
                family: i.spec.vr.family,
                vrid: i.spec.vr.vrid.get(),
                version: i.spec.vr.version,
                interval_cs: i.spec.vr.interval.get(),
                v2_interop: i.spec.vr.v2_interop,
                advertised: i.advertised.map(|p| p.0),
                auth: i.spec.vr.auth,
                unicast_peers: &i.spec.vr.unicast_peers,
                peer_ttl: &i.spec.vr.peer_ttl,
                answers,
                has_xdp,
                owned: i.wants_ownership && answers,
                mac: i
                    .spec
                    .vmac
                    .or(iface.map(|f| f.spec.mac))
                    .unwrap_or_default(),
                vmac: i.spec.vmac.is_some(),
                first_link_local: i.spec.vr.first_address_link_local,
                own_vips: i
                    .spec
                    .vips
                    .iter()
                    .filter(|v| v.ifindex == i.spec.ifindex)
                    .map(|v| v.spec.addr)
                    .collect(),
                all_vips: &[],
            }
        });
        let mut plan = dataplane::plan(contribs);
        // The kernel filter: every VIP of an instance whose interface's XDP answers.
        let mut kf: Vec<IpAddr> = self
            .instances
            .values()
            .filter(|i| {
                self.ifaces
                    .get(&i.spec.ifindex)
                    .is_some_and(|f| f.spec.xdp && f.xdp_answers)
            })
            .flat_map(|i| i.spec.vips.iter().map(|v| v.spec.addr))
            .collect();
        kf.sort();
        kf.dedup();
        plan.kfilter = kf;
        let fresh = std::mem::take(&mut self.fresh);
        for op in dataplane::diff(&self.written, &plan, &fresh) {
            self.actions.push_back(Action::Dataplane(op));
        }
        if self.kfilter.as_ref() != Some(&plan.kfilter) {
            self.actions
                .push_back(Action::KernelFilter(plan.kfilter.clone()));
            self.kfilter = Some(plan.kfilter.clone());
        }
        self.written = plan;
    }

    /// The kernel filter could not be written: try again at the next plan.
    pub fn kernel_filter_failed(&mut self) {
        self.kfilter = None;
    }
}
