//! RFC 9568 §6.4.1 Initialize: the Startup event; and the Shutdown event of §6.4.2 and §6.4.3.

use std::time::Instant;

use super::{Cause, InitialState, Priority, Reason, State, VirtualRouter, skew_time};

impl VirtualRouter {
    /// RFC 9568 §6.4.1 Startup; keepalived `vrrp_init_state`.
    pub(super) fn startup(&mut self, now: Instant) {
        self.master_adver_int = self.cfg.interval;
        self.master = None;
        self.heard.clear();
        self.yielded_to = None;
        self.sync_held = false;
        self.group_master = false;
        if let Some(reason) = self.fault_reason() {
            // keepalived enters FAULT from init when the interface is down or a script failed.
            self.transition(now, State::Fault, reason);
            return;
        }
        match (self.cfg.is_owner(), self.cfg.initial) {
            // RFC 9568 §6.4.1: priority 255 goes straight to Master. keepalived does the same
            // for an owner with (default) `state MASTER`, via a 1 µs master-down timer.
            // In a sync group that may not go MASTER (`vrrp_init_state` takes the group's state)
            // it waits like a non-owner `state MASTER`.
            (true, InitialState::Master) if !self.sync_blocks_master() => {
                self.become_master(now, Reason::Owner);
            }
            (_, initial) => {
                self.transition(now, State::Backup, Reason::Startup);
                self.preempt_at = None;
                if initial == InitialState::Master {
                    // keepalived `vrrp_init_state`: a non-owner with `state MASTER` starts in
                    // BACKUP but waits only Master_Adver_Interval + SKEW_MIN (interval/256), "to
                    // ensure there is no other master".
                    let wait = self.master_adver_int.as_duration()
                        + skew_time(self.cfg.version, Priority(255), self.master_adver_int);
                    self.arm_master_down(now, wait, Cause::InitialMaster);
                } else {
                    self.arm_master_down(now, self.master_down_interval(), Cause::NoResponse);
                }
            }
        }
    }

    pub(super) fn shutdown(&mut self, now: Instant) {
        match self.state {
            State::Master => {
                self.transition(now, State::Stopped, Reason::Shutdown);
                // RFC 9568 §6.4.3 Shutdown: send an advert with priority 0 so a backup takes
                // over after Skew_Time (keepalived `vrrp_restore_interface(advF = true)`).
                self.send_advert(Priority::RELEASE);
                self.release_master();
            }
            State::Backup | State::Fault | State::Initialize => {
                self.transition(now, State::Stopped, Reason::Shutdown);
            }
            State::Stopped => {}
        }
        self.deadline = None;
        self.master = None;
        self.sync_held = false;
        self.group_master = false;
    }
}
