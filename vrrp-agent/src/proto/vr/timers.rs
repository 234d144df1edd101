//! RFC 9568 §6.1 / RFC 3768 §6.1 timer parameters, and which state's timers a `Timeout` runs.

use std::time::{Duration, Instant};

use super::{Cause, Centisecs, Priority, State, Version, VirtualRouter};

/// RFC 9568 §6.1 Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256 centiseconds;
/// RFC 3768 §6.1 Skew_Time = (256 - Priority) / 256 seconds.
///
/// Computed in nanoseconds, which is exact for v2 and within 0.5 ns for v3 (keepalived truncates
/// to microseconds: `VRRP_TIMER_SKEW_CALC`).
pub fn skew_time(version: Version, priority: Priority, master_adver_int: Centisecs) -> Duration {
    let weight = 256 - u64::from(priority.get());
    let unit_ns = match version {
        Version::V3 => u64::from(master_adver_int.get()) * 10_000_000,
        Version::V2 => 1_000_000_000,
    };
    Duration::from_nanos(weight * unit_ns / 256)
}

/// RFC 9568 §6.1 / RFC 3768 §6.1: Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time
/// (3 is keepalived's `down_timer_adverts`). For v2 the interval is always the configured one.
pub fn master_down_interval(
    version: Version,
    priority: Priority,
    master_adver_int: Centisecs,
    down_timer_adverts: u8,
) -> Duration {
    master_adver_int.as_duration() * u32::from(down_timer_adverts)
        + skew_time(version, priority, master_adver_int)
}

pub(super) fn later(t: Instant, d: Duration) -> Instant {
    // An Instant this far in the future cannot be represented; firing early is the safe side.
    t.checked_add(d).unwrap_or(t)
}

impl VirtualRouter {
    pub(super) fn arm_master_down(&mut self, at: Instant, wait: Duration, cause: Cause) {
        self.deadline = Some(later(at, wait));
        self.armed_at = at;
        self.cause = cause;
    }

    pub(super) fn on_timeout(&mut self, now: Instant) {
        match self.state {
            State::Master if self.resign.is_some() => self.resign_timeout(now),
            State::Master => self.master_timeout(now),
            State::Backup => self.backup_timeout(now),
            State::Initialize | State::Fault | State::Stopped => {}
        }
    }
}
