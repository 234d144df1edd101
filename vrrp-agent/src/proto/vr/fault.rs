//! Local policy, not RFC: keepalived's FAULT state (RFC 9568 has none). A router is FAULT
//! while its link is down, a tracked object with weight 0 has failed, or a sync-group member
//! is at fault; it then holds no addresses and sends nothing.

use std::time::Instant;

use super::{Cause, InitialState, Priority, Reason, State, SyncEvent, VirtualRouter};

impl VirtualRouter {
    pub(super) fn fault_reason(&self) -> Option<Reason> {
        if !self.link_up {
            Some(Reason::LinkDown)
        } else if self.track_fault {
            Some(Reason::TrackFailed)
        } else {
            self.sync_faults
                .iter()
                .next()
                .map(|(member, group)| Reason::SyncGroup {
                    group: group.clone(),
                    member: member.clone(),
                    event: SyncEvent::Fault,
                })
        }
    }

    pub(super) fn reevaluate_fault(&mut self, now: Instant, reason: Reason) {
        let faulted = self.fault_reason();
        match (self.state, faulted) {
            (State::Initialize | State::Stopped | State::Fault, Some(_)) => {}
            (State::Initialize | State::Stopped, None) => {}
            (State::Backup | State::Master, Some(why)) => {
                // A sync input names the member that moved us; our own causes come first.
                let why = match (&why, reason) {
                    (Reason::SyncGroup { .. }, r @ Reason::SyncGroup { .. }) => r,
                    _ => why,
                };
                self.enter_fault(now, why);
            }
            (State::Fault, None) => self.leave_fault(now, reason),
            (State::Backup | State::Master, None) => {}
        }
    }

    pub(super) fn enter_fault(&mut self, now: Instant, reason: Reason) {
        let was_master = self.state == State::Master;
        self.yielded_to = None;
        self.transition(now, State::Fault, reason);
        if was_master {
            // keepalived `vrrp_state_leave_master` (wantstate FAULT) sends priority 0 so the
            // backup takes over after Skew_Time rather than Master_Down_Interval.
            self.send_advert(Priority::RELEASE);
            self.release_master();
        }
        self.deadline = None;
        self.master = None;
        self.sync_held = false;
        // keepalived `vrrp_sync_fault` sets the group state FAULT.
        self.group_master = false;
    }

    /// keepalived `try_up_instance` + `vrrp_state_leave_fault`: the owner with `state MASTER`
    /// goes straight to Master, everyone else to Backup with a fresh Master_Down_Timer.
    pub(super) fn leave_fault(&mut self, now: Instant, reason: Reason) {
        self.master_adver_int = self.cfg.interval;
        self.sync_held = false;
        // `try_up_instance`: "If the sync group can't go to master, we must go to backup state".
        if self.cfg.is_owner()
            && self.cfg.initial == InitialState::Master
            && !self.sync_blocks_master()
        {
            self.become_master(now, reason);
        } else {
            self.transition(now, State::Backup, reason);
            self.preempt_at = None;
            self.arm_master_down(now, self.master_down_interval(), Cause::NoResponse);
        }
    }
}
