//! When the driver wakes up for a backup whose master the kernel watches.
//!
//! With XDP, a backup's master-down timer need not wake the agent once per
//! Master_Down_Interval: the program restarts a kernel timer (the `SILENCE` map) with the same
//! interval on every advert of the master, and reports the master silent when it runs out.
//! The state machine keeps its own deadline, unchanged (it is fed the kernel's timestamps
//! when the agent does wake up); this module only decides whether the driver may sleep past
//! that deadline, relying on the kernel's report, and until when at most (the backstop, in
//! case a report is lost).
//!
//! Pure: the driver reads the kernel state and the clock and passes them in.

use std::time::{Duration, Instant};

/// Clock conversion slack: a kernel expiry converted to an `Instant` may land a few µs after
/// the state machine's deadline computed from the same kernel timestamp.
pub const SLACK: Duration = Duration::from_millis(1);

/// The least time the driver sleeps on a kernel watch before looking again anyway.
pub const MIN_BACKSTOP: Duration = Duration::from_secs(1);

/// How long the driver may sleep on a kernel watch before looking again: at least
/// [`MIN_BACKSTOP`], and no less than the Master_Down_Interval (never more wake-ups than
/// without the kernel's help). Only a lost report (full ring) makes a failover wait for it.
pub fn backstop(master_down: Duration) -> Duration {
    master_down.max(MIN_BACKSTOP)
}

/// What the driver last read of a backup's kernel timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// The interval the agent wrote for the timer (ns), and CLOCK_MONOTONIC ns right after
    /// the write: only an advert stamped later is known to have used it.
    pub written_ns: u64,
    pub written_at_ns: u64,
    /// The timer as the program last started it (`SilenceTimer::started_ns`, `interval_ns`).
    pub started_ns: u64,
    pub interval_ns: u64,
    /// CLOCK_MONOTONIC ns when this was read.
    pub now_ns: u64,
}

impl Kernel {
    /// When the kernel timer reports the master silent unless another advert of the master
    /// restarts it (CLOCK_MONOTONIC ns); `None` if it cannot be relied on: not started since
    /// the agent wrote the current interval, started with another one, or already run out.
    pub fn expiry_ns(&self) -> Option<u64> {
        if self.written_ns == 0
            || self.started_ns == 0
            || self.started_ns <= self.written_at_ns
            || self.interval_ns != self.written_ns
        {
            return None;
        }
        let expiry = self.started_ns.checked_add(self.interval_ns)?;
        (expiry > self.now_ns).then_some(expiry)
    }
}

/// A kernel timer the driver may sleep on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cover {
    /// When the kernel timer runs out unless the master talks again.
    pub expiry: Instant,
    /// When the driver looks again at the latest.
    pub backstop: Instant,
}

impl Cover {
    /// The cover given by `kernel` read at `now` (`None` if it gives none), with `expiry`
    /// converted from kernel ns by `to_instant`, and the backstop `backstop` after `now` (at
    /// least [`backstop`] of the Master_Down_Interval).
    pub fn new(
        kernel: &Kernel,
        now: Instant,
        backstop: Duration,
        to_instant: impl FnOnce(u64) -> Option<Instant>,
    ) -> Option<Self> {
        let expiry = to_instant(kernel.expiry_ns()?)?;
        Some(Self {
            expiry,
            backstop: now.checked_add(backstop)?,
        })
    }
}

/// When the driver must wake up for one instance: the state machine's deadline, unless a
/// kernel timer runs out no later than it (then the kernel's report wakes the driver, and
/// it looks again at the backstop in any case).
///
/// A deadline earlier than the kernel's expiry is one the kernel does not cover: the state
/// machine discarded adverts the kernel counted (a lower-priority master being preempted),
/// a priority 0 advert set Skew_Time, or the interval changed since.
pub fn wake_at(deadline: Option<Instant>, cover: Option<Cover>) -> Option<Instant> {
    let d = deadline?;
    match cover {
        Some(c) if c.expiry <= d.checked_add(SLACK).unwrap_or(d) => Some(c.backstop),
        _ => Some(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn kernel() -> Kernel {
        Kernel {
            written_ns: 38 * MS,
            written_at_ns: 1_000 * MS,
            started_ns: 2_000 * MS,
            interval_ns: 38 * MS,
            now_ns: 2_010 * MS,
        }
    }

    #[test]
    fn a_timer_started_with_the_current_interval_covers() {
        assert_eq!(kernel().expiry_ns(), Some(2_038 * MS));
    }

    #[test]
    fn a_timer_the_agent_cannot_rely_on_does_not() {
        let k = kernel();
        assert_eq!(
            Kernel { written_ns: 0, ..k }.expiry_ns(),
            None,
            "no watch asked for"
        );
        assert_eq!(
            Kernel { started_ns: 0, ..k }.expiry_ns(),
            None,
            "never started"
        );
        assert_eq!(
            Kernel {
                started_ns: 900 * MS,
                ..k
            }
            .expiry_ns(),
            None,
            "last advert before the interval was written: first master-down after becoming backup"
        );
        assert_eq!(
            Kernel {
                interval_ns: 40 * MS,
                ..k
            }
            .expiry_ns(),
            None,
            "started with an older interval (priority or learned interval changed)"
        );
        assert_eq!(
            Kernel {
                now_ns: 2_038 * MS,
                ..k
            }
            .expiry_ns(),
            None,
            "already ran out: the report is on its way or lost"
        );
    }

    #[test]
    fn the_driver_sleeps_past_a_covered_deadline_until_the_backstop() {
        #[expect(clippy::disallowed_methods, reason = "test clock")]
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let k = kernel();
        let cover = Cover::new(&k, at(10), backstop(Duration::from_millis(38)), |ns| {
            Some(t0 + Duration::from_nanos(ns - 2_000 * MS))
        })
        .expect("cover");
        assert_eq!(cover.expiry, at(38));
        assert_eq!(cover.backstop, at(1_010), "at least a second");
        // The state machine's deadline from the same advert: covered.
        assert_eq!(wake_at(Some(at(38)), Some(cover)), Some(at(1_010)));
        // Within the conversion slack.
        assert_eq!(
            wake_at(Some(at(38) - Duration::from_micros(5)), Some(cover)),
            Some(at(1_010))
        );
        // A later deadline (a newer advert the driver fed): still covered.
        assert_eq!(wake_at(Some(at(60)), Some(cover)), Some(at(1_010)));
        // An earlier one is not: Skew_Time after priority 0, or preempting.
        assert_eq!(wake_at(Some(at(20)), Some(cover)), Some(at(20)));
        assert_eq!(wake_at(Some(at(20)), None), Some(at(20)));
        assert_eq!(wake_at(None, Some(cover)), None);
    }

    #[test]
    fn a_deadline_moved_by_a_heartbeat_path_is_kept_after_the_kernel_ran_out() {
        #[expect(clippy::disallowed_methods, reason = "test clock")]
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // The primary path fell silent: the kernel timer ran out and gives no cover any more...
        let k = Kernel {
            now_ns: 2_040 * MS,
            ..kernel()
        };
        let cover = Cover::new(&k, at(40), backstop(Duration::from_millis(38)), |ns| {
            Some(t0 + Duration::from_nanos(ns - 2_000 * MS))
        });
        assert_eq!(cover, None);
        // ...and the router's deadline, restarted by heartbeat adverts, is what wakes us.
        assert_eq!(wake_at(Some(at(75)), cover), Some(at(75)));
    }

    #[test]
    fn the_backstop_is_never_shorter_than_the_master_down_interval() {
        assert_eq!(backstop(Duration::from_millis(38)), MIN_BACKSTOP);
        assert_eq!(
            backstop(Duration::from_millis(3_609)),
            Duration::from_millis(3_609)
        );
    }
}
