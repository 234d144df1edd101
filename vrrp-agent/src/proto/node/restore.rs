//! How fast a MASTER puts back a VIP that something else keeps removing.
//!
//! One removal (`ip addr flush` by mistake) is undone at once. A program that removes the
//! address again and again (a network manager, a second VRRP daemon, a cleanup loop) would
//! otherwise meet a restore per removal: a netlink fight at full speed and a warning per round.
//! Repeats wait 100 ms, doubling to 30 s, and the back-off resets after 60 s without a removal.

use std::time::{Duration, Instant};

use super::VipBinding;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A removal this long after the previous one starts over (restored at once).
const QUIET_RESET: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Backoff {
    /// No restore before this.
    not_before: Option<Instant>,
    delay: Duration,
    last_removal: Option<Instant>,
    /// Removed VIPs waiting for `not_before`.
    pending: Vec<VipBinding>,
    /// Removals that waited for the back-off (not restored at once).
    pub held: u64,
}

/// What to do with a removal.
#[derive(Debug, PartialEq, Eq)]
pub enum Removal {
    /// Put these back now.
    RestoreNow,
    /// Held until [`Backoff::due`]; `first` is the first hold of this round (log it once).
    Held { first: bool },
}

impl Backoff {
    pub fn removed(&mut self, now: Instant, vips: Vec<VipBinding>) -> Removal {
        if self
            .last_removal
            .is_none_or(|l| now.saturating_duration_since(l) >= QUIET_RESET)
        {
            self.delay = FIRST_DELAY;
            self.not_before = None;
        }
        self.last_removal = Some(now);
        if self.not_before.is_none_or(|t| now >= t) && self.pending.is_empty() {
            self.arm(now);
            return Removal::RestoreNow;
        }
        let first = self.pending.is_empty();
        self.held += 1;
        for v in vips {
            if !self.pending.contains(&v) {
                self.pending.push(v);
            }
        }
        Removal::Held { first }
    }

    /// When held VIPs are due back.
    pub fn due(&self) -> Option<Instant> {
        (!self.pending.is_empty()).then_some(self.not_before?)
    }

    /// The held VIPs, if their time has come.
    pub fn release(&mut self, now: Instant) -> Option<Vec<VipBinding>> {
        if self.due().is_none_or(|t| now < t) {
            return None;
        }
        self.arm(now);
        Some(std::mem::take(&mut self.pending))
    }

    /// Leaving MASTER: nothing is ours to restore.
    pub fn forget(&mut self) {
        self.pending.clear();
    }

    fn arm(&mut self, now: Instant) {
        self.not_before = Some(now + self.delay);
        self.delay = (self.delay * 2).min(MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip() -> Vec<VipBinding> {
        vec![VipBinding {
            ifindex: 7,
            spec: crate::proto::VipSpec::new([192, 0, 2, 3].into(), 24),
        }]
    }

    #[test]
    fn one_removal_is_undone_at_once_and_repeats_back_off_doubling() {
        let t0 = crate::proto::clock::test_epoch();
        let mut b = Backoff::default();
        assert_eq!(b.removed(t0, vip()), Removal::RestoreNow);
        // Again 10 ms later: held until 100 ms after the first restore.
        assert_eq!(
            b.removed(t0 + Duration::from_millis(10), vip()),
            Removal::Held { first: true }
        );
        assert_eq!(
            b.removed(t0 + Duration::from_millis(20), vip()),
            Removal::Held { first: false }
        );
        assert_eq!(b.not_before, Some(t0 + FIRST_DELAY));
        assert_eq!(b.held, 2);
        assert_eq!(b.release(t0 + Duration::from_millis(99)), None);
        assert_eq!(
            b.release(t0 + FIRST_DELAY),
            Some(vip()),
            "held once, given back once"
        );
        let mut t = t0 + FIRST_DELAY;
        assert_eq!(b.not_before, Some(t + 2 * FIRST_DELAY));
        for _ in 0..20 {
            t += b.delay;
            b.arm(t);
        }
        assert_eq!(b.delay, MAX_DELAY, "the back-off is bounded");
    }

    #[test]
    fn a_quiet_minute_starts_over() {
        let t0 = crate::proto::clock::test_epoch();
        let mut b = Backoff::default();
        assert_eq!(b.removed(t0, vip()), Removal::RestoreNow);
        assert!(matches!(
            b.removed(t0 + Duration::from_millis(1), vip()),
            Removal::Held { .. }
        ));
        b.forget();
        assert_eq!(b.removed(t0 + QUIET_RESET * 2, vip()), Removal::RestoreNow);
        assert_eq!(b.delay, FIRST_DELAY * 2);
    }
}
