//! Local policy, not RFC: the effective priority from tracking (keepalived's weights).

use super::timers::later;
use super::{Output, Priority, State, VirtualRouter};

impl VirtualRouter {
    /// keepalived `vrrp_set_effective_priority`.
    pub(super) fn set_effective(&mut self, p: Priority) {
        // The owner's priority is never changed by tracking.
        if self.cfg.is_owner() {
            return;
        }
        let new = Priority(p.get().clamp(1, 254));
        if new == self.effective {
            return;
        }
        let old_down = self.master_down_interval();
        let from = self.effective;
        self.effective = new;
        if self.state == State::Backup
            && let Some(d) = self.deadline
        {
            // keepalived shifts the running Master_Down_Timer by the change in Skew_Time, so a
            // higher priority takes over sooner.
            let new_down = self.master_down_interval();
            self.deadline = Some(if new_down >= old_down {
                later(d, new_down - old_down)
            } else {
                d.checked_sub(old_down - new_down).unwrap_or(d)
            });
        }
        // In Master the next advert carries the new priority (keepalived does not send at once).
        self.emit(Output::PriorityChanged { from, to: new });
    }
}
