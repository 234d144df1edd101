//! Local policy, not RFC: our `vrrp_xdp_heartbeat` extension. The same instance's adverts,
//! sent unicast over a second interface, keep a Backup from declaring a live master down when
//! only the primary path is cut; they never make anyone Master.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::Instant;

use super::receive::addr_cmp;
use super::timers::later;
use super::{
    Advert, Cause, DropReason, Output, Priority, State, Version, VirtualRouter,
    master_down_interval,
};

/// Consecutive heartbeat-path adverts of another master (none more than a Master_Down_Interval
/// apart) before a Master reports it. One is expected during every ordinary takeover: the new
/// master's first advert goes out on both paths, and the heartbeat copy may arrive before the
/// primary one that makes us yield (or before ours makes it yield).
const HEARTBEAT_CONFLICT_ADVERTS: u32 = 2;

/// Another master heard on a heartbeat path while we are Master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HeartbeatConflict {
    last: Instant,
    count: u32,
}

impl VirtualRouter {
    /// An advert on a heartbeat path (`Input::HeartbeatAdvert`): liveness only.
    ///
    /// Backup: it restarts the Master_Down_Timer exactly when the same advert on the primary
    /// path would have (RFC 9568 §6.4.2: priority >= ours, or no preemption), so the master is
    /// declared down only once every path is silent; priority 0 sets Skew_Time as on the
    /// primary path. It never changes who we think the master is, nor the learned interval, and
    /// a lower priority (one we would preempt) restarts nothing: preemption follows the primary
    /// path's rules alone.
    ///
    /// Master: the peer advertising too means two masters. We stay Master and report it
    /// (`Output::HeartbeatMaster`, the split-brain alarm) rather than yield, because the
    /// heartbeat path proves the peer alive, not reachable by the clients on the primary
    /// segment: yielding to a peer whose primary link is cut would leave nobody serving the
    /// VIPs, while two masters on the two sides of a primary-path partition each serve their
    /// side, and the primary path's own rules settle the election once it heals. A resigning
    /// Master waits for the new master on the primary path for the same reason.
    pub(super) fn heartbeat_rx(&mut self, now: Instant, src: IpAddr, local: IpAddr, adv: &Advert) {
        if !matches!(self.state, State::Backup | State::Master) {
            self.counters.ignored_not_running += 1;
            return;
        }
        if src == local {
            self.counters.dropped_own_address += 1;
            self.emit(Output::Dropped {
                src,
                reason: DropReason::OwnAddress,
            });
            return;
        }
        if let Err(reason) = self.check(src, adv, false, None) {
            self.emit(Output::Dropped { src, reason });
            return;
        }
        self.counters.heartbeat_rx += 1;
        match self.state {
            State::Backup => {
                if adv.priority == Priority::RELEASE {
                    // RFC 9568 §6.4.2, as on the primary path: the master is leaving.
                    self.counters.heartbeat_priority_zero_rx += 1;
                    self.arm_master_down(now, self.skew_time(), Cause::PriorityZero(src));
                    return;
                }
                let delaying =
                    !self.cfg.preempt_delay.is_zero() && self.preempt_at.is_none_or(|t| t > now);
                // Heartbeat adverts come from configured peers only: the one we yielded to.
                if !self.cfg.preempt
                    || self.yielded_to.is_some()
                    || adv.priority >= self.effective
                    || delaying
                {
                    // The interval the advert carries (VRRPv3), not learnt: a master with a
                    // longer interval than ours must not look silent between its adverts.
                    let int = if self.cfg.version == Version::V3 && adv.interval.get() != 0 {
                        adv.interval
                    } else {
                        self.master_adver_int
                    };
                    let wait = master_down_interval(
                        self.cfg.version,
                        self.effective,
                        int,
                        self.cfg.down_timer_adverts,
                    )
                    .max(self.master_down_interval());
                    // Never earlier than a restart the primary path already gave us.
                    let keep = self.cause == Cause::NoResponse
                        && self.deadline.is_some_and(|d| d > later(now, wait));
                    if !keep {
                        self.arm_master_down(now, wait, Cause::NoResponse);
                    }
                    self.counters.heartbeat_restarts += 1;
                } else {
                    self.counters.heartbeat_lower_priority += 1;
                }
            }
            State::Master => {
                if self.resign.is_some() {
                    return;
                }
                if adv.priority == Priority::RELEASE {
                    // The other master is leaving: no conflict any more.
                    self.heartbeat_conflict = None;
                    return;
                }
                let window = self.master_down_interval();
                let count = match self.heartbeat_conflict {
                    Some(c) if now.saturating_duration_since(c.last) <= window => {
                        c.count.saturating_add(1)
                    }
                    _ => 1,
                };
                self.heartbeat_conflict = Some(HeartbeatConflict { last: now, count });
                if count >= HEARTBEAT_CONFLICT_ADVERTS {
                    self.counters.heartbeat_conflicts += 1;
                    // RFC 9568 §6.4.3 with the heartbeat addresses, which both ends compare
                    // the same way.
                    let better = adv.priority > self.effective
                        || (adv.priority == self.effective
                            && addr_cmp(src, local) == Some(Ordering::Greater));
                    self.emit(Output::HeartbeatMaster {
                        src,
                        priority: adv.priority,
                        better,
                    });
                }
            }
            State::Initialize | State::Fault | State::Stopped => {}
        }
    }
}
