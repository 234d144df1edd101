//! Local policy, not RFC: planned handover (`Input::Resign`), make-before-break. RFC 9568
//! §6.4.3's priority 0 advert, but the addresses stay until the new master is heard.

use std::net::IpAddr;
use std::time::Instant;

use super::timers::later;
use super::{Advert, Cause, MasterInfo, Output, Priority, Reason, State, Version, VirtualRouter};

impl VirtualRouter {
    /// `Input::Resign`.
    pub(super) fn resign(&mut self, now: Instant, exit: bool) {
        match self.state {
            State::Master => {
                if let Some(was) = self.resign {
                    self.resign = Some(was || exit);
                    return;
                }
                self.resign = Some(exit);
                self.counters.resigned += 1;
                // RFC 9568 §6.4.3 priority 0: a backup takes over after its Skew_Time. We keep
                // the addresses until its first advert, so clients always have an answer.
                self.send_advert(Priority::RELEASE);
                self.garp_at = None;
                self.garp_refresh_at = None;
                self.deadline = Some(later(now, self.master_down_interval()));
            }
            _ if exit => self.shutdown(now),
            _ => {}
        }
    }

    /// A `Timeout` while resigning: has a Master_Down_Interval passed with no new master?
    pub(super) fn resign_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            let exit = self.resign == Some(true);
            self.emit(Output::ResignTimedOut { resumed: !exit });
            if exit {
                self.shutdown(now);
            } else {
                // Nobody took over: stay the one owner rather than leave none.
                self.resign = None;
                self.send_advert(self.effective);
                self.deadline = Some(later(now, self.cfg.interval.as_duration()));
            }
        }
    }

    /// The new master's first advert reached a resigning Master: only now the addresses go.
    pub(super) fn handed_over(&mut self, now: Instant, src: IpAddr, adv: &Advert, exit: bool) {
        if exit {
            self.transition(now, State::Stopped, Reason::Shutdown);
            self.release_master();
            self.deadline = None;
            self.master = None;
            self.group_master = false;
            return;
        }
        if self.cfg.version == Version::V3 && adv.interval.get() != 0 {
            self.master_adver_int = adv.interval;
        }
        self.transition(now, State::Backup, Reason::HandedOver { to: src });
        self.release_master();
        self.preempt_at = None;
        self.group_master = false;
        self.yielded_to = Some(src);
        self.arm_master_down(now, self.master_down_interval(), Cause::NoResponse);
        self.master = Some(MasterInfo {
            addr: src,
            priority: adv.priority,
            interval: adv.interval,
        });
    }
}
