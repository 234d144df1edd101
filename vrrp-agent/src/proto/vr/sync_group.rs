//! Local policy, not RFC: keepalived's `vrrp_sync_group` (vrrp_sync.c), as one member sees
//! it. The fan-out between members is [`crate::proto::sync`].

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Cause, Reason, State, VirtualRouter};

/// What a sync-group member did (for [`Reason::SyncGroup`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncEvent {
    /// The member became MASTER (keepalived `vrrp_sync_master`).
    Master,
    /// The member left MASTER for BACKUP (keepalived `vrrp_sync_backup`).
    Backup,
    /// The member went FAULT by its own cause (keepalived `vrrp_sync_fault`).
    Fault,
    /// The member's own fault cleared (keepalived `try_up_instance` → `vrrp_sync_backup`).
    Recovered,
}

/// What other sync-group members need to know about one router, beyond its state transitions
/// (see [`crate::proto::sync`]). Compare before and after each `handle`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct SyncStatus {
    /// Our own FAULT causes (link down or a weight-0 tracking failure), not a sync group's:
    /// keepalived's `flags_if_fault`, counted in the group's `num_member_fault`.
    pub fault: bool,
    /// Our Master_Down_Timer fired but the sync group held us in Backup: keepalived's
    /// `wantstate == MASTER` while `state == BACKUP` (`vrrp_sync_can_goto_master`).
    pub wants_master: bool,
}

/// Our sync group as this router knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SyncMembership {
    pub(super) group: String,
    /// The other members, each with whether it is held in Backup wanting MASTER.
    pub(super) peers: BTreeMap<String, bool>,
}

impl VirtualRouter {
    /// What the other members of our sync group must hear about ([`crate::proto::sync`]).
    pub fn sync_status(&self) -> SyncStatus {
        SyncStatus {
            fault: !self.link_up || self.track_fault,
            wants_master: self.sync_held,
        }
    }

    /// The members whose own FAULT holds us in FAULT.
    pub fn sync_faults(&self) -> impl Iterator<Item = &str> {
        self.sync_faults.keys().map(String::as_str)
    }

    /// keepalived `vrrp_sync_can_goto_master` is false: the group is not MASTER and some other
    /// member does not want MASTER ("prefer backup state to avoid thrashing").
    pub(super) fn sync_blocks_master(&self) -> bool {
        !self.group_master
            && self
                .sync
                .as_ref()
                .is_some_and(|s| s.peers.values().any(|wants| !wants))
    }

    pub(super) fn sync_join(&mut self, now: Instant, group: String, peers: Vec<String>) {
        let old = self.sync.take();
        let before = self.sync_faults.len();
        if peers.is_empty() {
            self.sync_faults.clear();
            self.group_master = false;
        } else {
            let peers: BTreeMap<String, bool> = peers
                .into_iter()
                .map(|p| {
                    let wants = old.as_ref().and_then(|o| o.peers.get(&p)).copied();
                    (p, wants.unwrap_or(false))
                })
                .collect();
            self.sync_faults.retain(|m, _| peers.contains_key(m));
            self.sync = Some(SyncMembership {
                group: group.clone(),
                peers,
            });
        }
        if self.sync_faults.len() != before {
            let reason = Reason::SyncGroup {
                group,
                member: String::new(),
                event: SyncEvent::Recovered,
            };
            self.reevaluate_fault(now, reason);
        }
    }

    /// keepalived `vrrp_sync_master` for another member: `wantstate = MASTER` and
    /// `vrrp_state_goto_master` unless already MASTER, from BACKUP or FAULT (our own FAULT
    /// causes still win: keepalived never has a member up while `num_member_fault` is non-zero).
    pub(super) fn sync_master(&mut self, now: Instant, group: String, member: String) {
        self.group_master = true;
        // A member that is MASTER is not at fault.
        self.sync_faults.remove(&member);
        let go = match self.state {
            State::Backup => true,
            State::Fault => self.fault_reason().is_none(),
            State::Master | State::Initialize | State::Stopped => false,
        };
        if go {
            let reason = Reason::SyncGroup {
                group,
                member,
                event: SyncEvent::Master,
            };
            self.become_master(now, reason);
        }
    }

    /// keepalived `vrrp_sync_backup` for another member: a MASTER leaves through
    /// `vrrp_state_leave_master(isync, false)` with `wantstate = BACKUP` (no priority 0 advert,
    /// unlike FAULT), the Master_Down_Timer re-armed (`VRRP_MS_DOWN_TIMER`); a FAULT left only
    /// by this member's fault goes BACKUP (`vrrp_state_leave_fault`).
    pub(super) fn sync_backup(&mut self, now: Instant, group: String, member: String) {
        self.group_master = false;
        let was_fault = self.sync_faults.remove(&member).is_some();
        let reason = Reason::SyncGroup {
            group,
            member,
            event: SyncEvent::Backup,
        };
        match self.state {
            State::Master => {
                self.transition(now, State::Backup, reason);
                self.release_master();
                self.preempt_at = None;
                self.arm_master_down(now, self.master_down_interval(), Cause::NoResponse);
                self.master = None;
            }
            State::Fault if was_fault => self.reevaluate_fault(now, reason),
            _ => {}
        }
    }

    /// keepalived `down_instance` → `vrrp_sync_fault` (a MASTER leaves with a priority 0
    /// advert, `vrrp_state_leave_master` with `wantstate = FAULT`) and `try_up_instance` →
    /// `vrrp_sync_backup` (up again once `num_member_fault` is zero).
    pub(super) fn sync_fault(&mut self, now: Instant, group: String, member: String, fault: bool) {
        let changed = if fault {
            self.group_master = false;
            self.sync_faults
                .insert(member.clone(), group.clone())
                .is_none()
        } else {
            self.sync_faults.remove(&member).is_some()
        };
        if changed {
            let event = if fault {
                SyncEvent::Fault
            } else {
                SyncEvent::Recovered
            };
            let reason = Reason::SyncGroup {
                group,
                member,
                event,
            };
            self.reevaluate_fault(now, reason);
        }
    }
}
