//! The virtual-router state machine: RFC 9568 (VRRPv3) and RFC 3768 (VRRPv2), with keepalived's
//! choices where the RFCs leave room (each such place names the keepalived function it mirrors).
//!
//! Sans-IO in the shape of smoltcp/quinn: the driver feeds [`Input`]s with the current time,
//! drains [`Output`]s with [`VirtualRouter::poll_output`] after every [`VirtualRouter::handle`],
//! and calls `handle(now, Input::Timeout)` once `now >= poll_timeout()`. Timers are data; a
//! spurious or early `Timeout` is harmless because deadlines are compared with `now`.
//!
//! Lifecycle: [`VirtualRouter::new`] leaves the router in `Initialize` so the driver can report
//! link and tracking state first; `Input::Startup` is the RFC's Startup event.
//!
//! Where things are. The RFC 9568 §6 core, read in this order:
//! - `config.rs` ([`VrConfig`]) and `types.rs` (states, inputs, outputs, reasons, counters);
//! - `timers.rs`: §6.1 Skew_Time and Master_Down_Interval, the timer dispatch;
//! - `initialize.rs`: §6.4.1 Initialize (the Startup event) and the Shutdown event;
//! - `backup.rs`: §6.4.2 Backup; `master.rs`: §6.4.3 Master;
//! - `receive.rs`: §7.1 receive checks.
//!
//! Local policy, not RFC (each file says so at the top): `fault.rs` (keepalived's FAULT
//! state), `priority.rs` (tracking weights), `reload.rs` (a new configuration in place),
//! `sync_group.rs` (keepalived `vrrp_sync_group`), `heartbeat.rs` (our redundant heartbeat
//! paths) and `handover.rs` (`Input::Resign`, make-before-break).

mod backup;
mod config;
mod fault;
mod handover;
mod heartbeat;
mod initialize;
mod master;
mod priority;
mod receive;
mod reload;
mod sync_group;
mod timers;
mod types;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::advert::{Advert, Auth};
use super::types::{Centisecs, Family, Priority, Version, Vrid};

pub use config::{ConfigError, DEFAULT_DOWN_TIMER_ADVERTS, InitialState, TtlRange, VrConfig};
pub use master::LOWER_PRIO_ANNOUNCE_EVERY;
pub use sync_group::{SyncEvent, SyncStatus};
pub use timers::{master_down_interval, skew_time};
pub use types::{
    AnnounceKind, Counters, DropReason, Input, MasterInfo, Output, Reason, RxWarning, State,
    Status, TransitionRecord, TransitionStatus,
};

use heartbeat::HeartbeatConflict;
#[cfg(test)]
use receive::addr_cmp;
#[cfg(test)]
use std::cmp::Ordering;
use sync_group::SyncMembership;
use types::Cause;

/// One virtual router (one VRID on one interface, one family).
#[derive(Debug)]
pub struct VirtualRouter {
    cfg: VrConfig,
    state: State,
    effective: Priority,
    /// RFC 9568 §6.1 Master_Adver_Interval: learned from the master in Backup (v3).
    master_adver_int: Centisecs,
    /// Adver_Timer in Master, Master_Down_Timer in Backup, none otherwise.
    deadline: Option<Instant>,
    /// When the Master_Down_Timer was last (re)armed, for `Reason::MasterDown { after }`.
    armed_at: Instant,
    cause: Cause,
    garp_at: Option<Instant>,
    garp_refresh_at: Option<Instant>,
    /// keepalived's `preempt_time`: lower priority adverts are accepted until then.
    preempt_at: Option<Instant>,
    link_up: bool,
    track_fault: bool,
    /// Our sync group and its other members, each with whether it wants MASTER.
    sync: Option<SyncMembership>,
    /// Members (with their group) whose own FAULT holds us in FAULT (keepalived
    /// `num_member_fault`).
    sync_faults: BTreeMap<String, String>,
    /// keepalived `GROUP_STATE(sgroup) == VRRP_STATE_MAST` as far as we know.
    group_master: bool,
    /// keepalived `wantstate == MASTER` while Backup: held by `vrrp_sync_can_goto_master`.
    sync_held: bool,
    master: Option<MasterInfo>,
    /// `Input::Resign` in progress (Master only): `Some(exit)`.
    resign: Option<bool>,
    /// After a handover, to this master: accept its adverts whatever their priority (behave
    /// as `nopreempt` towards it) until we are Master again. Only its: a third sender's
    /// lower-priority adverts (a flood) must not hold us in BACKUP when it dies.
    yielded_to: Option<IpAddr>,
    /// The last advert that passed the checks, for `AdvertSeenAt` and for warning once.
    last_rx: Option<(IpAddr, Advert)>,
    /// The last advert of each recent sender, for `AdvertSeenAt`: the data plane replays the
    /// master's timestamps even when another sender (a stray router, a flood) was heard last.
    heard: BTreeMap<IpAddr, Advert>,
    /// RFC 9568 §8.4: when each sender last spoke v3 (v2 interoperation only; bounded).
    v3_heard: BTreeMap<IpAddr, Instant>,
    last_transition: Option<TransitionRecord>,
    /// Another master heard on a heartbeat path during this Master episode.
    heartbeat_conflict: Option<HeartbeatConflict>,
    /// When the last lower-priority announce burst went (at most one per
    /// [`LOWER_PRIO_ANNOUNCE_EVERY`]).
    lower_prio_announced: Option<Instant>,
    counters: Counters,
    out: VecDeque<Output>,
}

impl VirtualRouter {
    /// A router in `Initialize`; send `Input::Startup` to start it.
    pub fn new(mut cfg: VrConfig, now: Instant) -> Result<Self, ConfigError> {
        cfg.validate()?;
        cfg.normalize();
        Ok(Self {
            effective: cfg.priority,
            master_adver_int: cfg.interval,
            cfg,
            state: State::Initialize,
            deadline: None,
            armed_at: now,
            cause: Cause::NoResponse,
            garp_at: None,
            garp_refresh_at: None,
            preempt_at: None,
            link_up: true,
            track_fault: false,
            sync: None,
            sync_faults: BTreeMap::new(),
            group_master: false,
            sync_held: false,
            master: None,
            resign: None,
            yielded_to: None,
            last_rx: None,
            heard: BTreeMap::new(),
            v3_heard: BTreeMap::new(),
            last_transition: None,
            heartbeat_conflict: None,
            lower_prio_announced: None,
            counters: Counters::default(),
            out: VecDeque::new(),
        })
    }

    /// Processes one input. Never blocks, never reads a clock.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Startup => {
                if matches!(self.state, State::Initialize | State::Stopped) {
                    self.startup(now);
                }
            }
            Input::Shutdown => self.shutdown(now),
            Input::Resign { exit } => self.resign(now, exit),
            Input::Timeout => self.on_timeout(now),
            Input::Link { up } => {
                self.link_up = up;
                let reason = if up { Reason::LinkUp } else { Reason::LinkDown };
                self.reevaluate_fault(now, reason);
            }
            Input::Fault(failed) => {
                self.track_fault = failed;
                let reason = if failed {
                    Reason::TrackFailed
                } else {
                    Reason::TrackRecovered
                };
                self.reevaluate_fault(now, reason);
            }
            Input::Priority(p) => self.set_effective(p),
            Input::Advert { src, advert, ttl } => self.receive(now, now, src, advert, ttl, false),
            Input::HeartbeatAdvert { src, local, advert } => {
                self.heartbeat_rx(now, src, local, &advert)
            }
            Input::AdvertSeenAt { src, at } => {
                let at = at.min(now);
                match self.heard.get(&src) {
                    Some(adv) => {
                        let adv = adv.clone();
                        self.counters.adverts_seen += 1;
                        self.receive(now, at, src, adv, None, true);
                    }
                    _ => self.counters.seen_unmatched += 1,
                }
            }
            Input::Config(cfg) => self.reconfigure(now, cfg),
            Input::SyncJoin { group, peers } => self.sync_join(now, group, peers),
            Input::SyncMaster { group, member } => self.sync_master(now, group, member),
            Input::SyncBackup { group, member } => self.sync_backup(now, group, member),
            Input::SyncFault {
                group,
                member,
                fault,
            } => self.sync_fault(now, group, member, fault),
            Input::SyncWantMaster {
                group: _,
                member,
                want,
            } => {
                if let Some(s) = self.sync.as_mut() {
                    s.peers.insert(member, want);
                }
            }
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The one next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.deadline, self.garp_at, self.garp_refresh_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &VrConfig {
        &self.cfg
    }

    pub fn effective_priority(&self) -> Priority {
        self.effective
    }

    /// The current master: ourselves in Master, the last accepted advertiser in Backup.
    pub fn master(&self) -> Option<MasterInfo> {
        match self.state {
            State::Master => Some(MasterInfo {
                addr: self.cfg.primary,
                priority: self.effective,
                interval: self.cfg.interval,
            }),
            State::Backup => self.master,
            _ => None,
        }
    }

    pub fn master_adver_int(&self) -> Centisecs {
        self.master_adver_int
    }

    pub fn skew_time(&self) -> Duration {
        skew_time(self.cfg.version, self.effective, self.master_adver_int)
    }

    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(
            self.cfg.version,
            self.effective,
            self.master_adver_int,
            self.cfg.down_timer_adverts,
        )
    }

    pub fn last_transition(&self) -> Option<&TransitionRecord> {
        self.last_transition.as_ref()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// RFC 9568 §6.4.3 (Accept_Mode): the master accepts packets addressed to the virtual
    /// addresses if it is the owner or Accept_Mode is set.
    pub fn accepts_vip_traffic(&self) -> bool {
        self.state == State::Master && (self.cfg.is_owner() || self.cfg.accept)
    }

    pub fn status(&self, now: Instant) -> Status {
        Status {
            vrid: self.cfg.vrid,
            state: self.state,
            base_priority: self.cfg.priority,
            effective_priority: self.effective,
            master: self.master(),
            master_adver_int: self.master_adver_int,
            master_down_interval: self.master_down_interval(),
            resigning: self.resign.is_some(),
            yielded: self.yielded_to.is_some(),
            last_transition: self.last_transition.as_ref().map(|t| TransitionStatus {
                from: t.from,
                to: t.to,
                reason: t.reason.clone(),
                ago: now.saturating_duration_since(t.at),
            }),
            counters: self.counters.clone(),
        }
    }

    pub(super) fn emit(&mut self, o: Output) {
        self.out.push_back(o);
    }

    pub(super) fn transition(&mut self, now: Instant, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        if to != State::Master {
            self.resign = None;
        }
        self.heartbeat_conflict = None;
        self.last_transition = Some(TransitionRecord {
            at: now,
            from,
            to,
            reason: reason.clone(),
        });
        self.emit(Output::Transition { from, to, reason });
    }

    pub(super) fn send_advert(&mut self, priority: Priority) {
        self.counters.adverts_tx += 1;
        if priority == Priority::RELEASE {
            self.counters.priority_zero_tx += 1;
        }
        self.emit(Output::SendAdvert { priority });
    }
}

#[cfg(test)]
mod tests;
