//! RFC 9568 §6.4.2 Backup (RFC 3768 §6.4.2): adverts received and the Master_Down_Timer.

use std::net::IpAddr;
use std::time::Instant;

use super::timers::later;
use super::{Advert, Cause, MasterInfo, Priority, Reason, Version, VirtualRouter};

impl VirtualRouter {
    /// RFC 9568 §6.4.2 (Backup, ADVERTISEMENT received); keepalived `vrrp_state_backup`.
    pub(super) fn backup_rx(&mut self, at: Instant, src: IpAddr, adv: &Advert, replay: bool) {
        if adv.priority == Priority::RELEASE {
            // RFC 9568 §6.4.2: priority 0 → Master_Down_Timer = Skew_Time.
            self.arm_master_down(at, self.skew_time(), Cause::PriorityZero(src));
            return;
        }
        // keepalived: with preempt_delay, lower priority adverts are still accepted until
        // preempt_time (armed by the first one) has passed; then they are discarded and the
        // master-down timer runs out. This applies whenever we are Backup, not only at startup.
        let delaying = !self.cfg.preempt_delay.is_zero() && self.preempt_at.is_none_or(|t| t > at);
        // RFC 9568 §6.4.2: accept if Preempt_Mode is False or the priority is >= ours. After a
        // handover we accept the master we handed over to, whatever its priority.
        if !self.cfg.preempt
            || self.yielded_to == Some(src)
            || adv.priority >= self.effective
            || delaying
        {
            // RFC 9568 §6.4.2: Master_Adver_Interval := the advert's; Skew_Time and
            // Master_Down_Interval are recomputed from it (master_down_interval() reads it).
            // An interval of 0 would make us take over at once on every advert: not learnt.
            if self.cfg.version == Version::V3 && adv.interval.get() != 0 {
                self.master_adver_int = adv.interval;
            }
            let wait = self.master_down_interval();
            let next = later(at, wait);
            // A replayed timestamp may be older than a reset we already did: never go back.
            if !(replay && self.deadline.is_some_and(|d| d > next)) {
                self.arm_master_down(at, wait, Cause::NoResponse);
            }
            self.master = Some(MasterInfo {
                addr: src,
                priority: adv.priority,
                interval: adv.interval,
            });
            // keepalived: "We might have been held in backup by a sync group ... Now we have
            // received a higher priority advert, we want to be in BACKUP state."
            self.sync_held = false;
            if !self.cfg.preempt_delay.is_zero() {
                if adv.priority >= self.effective {
                    self.preempt_at = None;
                } else if self.preempt_at.is_none() {
                    self.preempt_at = Some(later(at, self.cfg.preempt_delay));
                }
            }
        } else {
            // RFC 9568 §6.4.2: discard; the running timer makes us preempt. A lower priority
            // sender is only "the master we preempt" when no better master is known: a third
            // host's low priority adverts (a stray router, a flood) must not displace the
            // master whose adverts keep resetting our timer (and whose kernel timestamps the
            // driver trusts), or we would take over while it is alive.
            self.counters.discarded_lower_priority += 1;
            if self
                .master
                .is_none_or(|m| m.addr == src || m.priority < self.effective)
            {
                self.cause = Cause::Preempt(src, adv.priority);
                self.master = Some(MasterInfo {
                    addr: src,
                    priority: adv.priority,
                    interval: adv.interval,
                });
            }
        }
    }

    /// A `Timeout` in Backup: RFC 9568 §6.4.2 Master_Down_Timer.
    pub(super) fn backup_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            let after = now.saturating_duration_since(self.armed_at);
            let reason = match self.cause {
                Cause::NoResponse => Reason::MasterDown { after },
                Cause::InitialMaster => Reason::InitialMaster { after },
                Cause::PriorityZero(src) => Reason::PriorityZeroReceived { src },
                Cause::Preempt(src, priority) => Reason::Preempt { src, priority },
            };
            if self.sync_blocks_master() {
                // keepalived `vrrp_state_goto_master` → `vrrp_sync_can_goto_master`
                // false: stay BACKUP wanting MASTER, re-arm ms_down_timer.
                self.sync_held = true;
                self.counters.sync_held += 1;
                let cause = self.cause;
                self.arm_master_down(now, self.master_down_interval(), cause);
                return;
            }
            // RFC 9568 §6.4.2: Master_Down_Timer fires → become Master.
            self.become_master(now, reason);
        }
    }
}
