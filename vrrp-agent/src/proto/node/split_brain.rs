//! Split-brain episodes (local policy, not RFC): while MASTER, evidence that another node acts
//! as master too (its adverts, a claim on our VIPs, a master on a heartbeat path) starts an
//! episode; the first signal of an episode raises the alarm and runs the hooks once, later
//! ones only extend it, and it ends after a quiet Master_Down_Interval or when we leave MASTER.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::proto::vr::State;

/// What a signal did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Signal {
    /// Not an alarm: we are not MASTER, we are handing over (the new master announces itself),
    /// or it came within one advert interval of our takeover (the old master may not have
    /// heard us yet).
    Expected,
    /// A new episode: raise the alarm, run the hooks.
    Started,
    /// The episode in progress goes on.
    Continued,
}

/// One instance's episodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SplitBrain {
    /// The last signal of the episode in progress.
    #[serde(skip)]
    last: Option<Instant>,
    pub episodes: u64,
}

/// What the rules need of the router at the time of a signal.
#[derive(Clone, Copy, Debug)]
pub struct RouterView {
    pub state: State,
    pub resigning: bool,
    /// When we last became MASTER, if that was our last transition.
    pub master_since: Option<Instant>,
    pub advert_int: Duration,
}

impl SplitBrain {
    pub fn active(&self) -> bool {
        self.last.is_some()
    }

    pub fn signal(&mut self, now: Instant, r: RouterView) -> Signal {
        if r.state != State::Master || r.resigning {
            return Signal::Expected;
        }
        if r.master_since
            .is_some_and(|at| now.saturating_duration_since(at) < r.advert_int)
        {
            return Signal::Expected;
        }
        let started = self.last.is_none();
        self.last = Some(now);
        if started {
            self.episodes += 1;
            Signal::Started
        } else {
            Signal::Continued
        }
    }

    /// Ends the episode if it went quiet for `master_down` or we are no longer MASTER; true
    /// when it ended now.
    pub fn expire(&mut self, now: Instant, state: State, master_down: Duration) -> bool {
        let Some(last) = self.last else {
            return false;
        };
        if now.saturating_duration_since(last) > master_down || state != State::Master {
            self.last = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::proto::clock::test_epoch as clock;

    fn master(t0: Instant) -> RouterView {
        RouterView {
            state: State::Master,
            resigning: false,
            master_since: Some(t0),
            advert_int: Duration::from_secs(1),
        }
    }

    #[test]
    fn one_episode_per_burst_of_signals() {
        let t0 = clock() - Duration::from_secs(100);
        let mut sb = SplitBrain::default();
        let t = t0 + Duration::from_secs(10);
        assert_eq!(sb.signal(t, master(t0)), Signal::Started);
        assert_eq!(
            sb.signal(t + Duration::from_secs(1), master(t0)),
            Signal::Continued
        );
        assert!(sb.active());
        assert_eq!(sb.episodes, 1);
        // Quiet for longer than the master-down interval: over; the next signal starts anew.
        assert!(!sb.expire(
            t + Duration::from_secs(2),
            State::Master,
            Duration::from_secs(3)
        ));
        assert!(sb.expire(
            t + Duration::from_secs(5),
            State::Master,
            Duration::from_secs(3)
        ));
        assert_eq!(
            sb.signal(t + Duration::from_secs(6), master(t0)),
            Signal::Started
        );
        assert_eq!(sb.episodes, 2);
    }

    #[test]
    fn no_alarm_right_after_takeover_while_resigning_or_not_master() {
        let t0 = clock();
        let mut sb = SplitBrain::default();
        assert_eq!(
            sb.signal(t0 + Duration::from_millis(500), master(t0)),
            Signal::Expected
        );
        let mut r = master(t0);
        r.resigning = true;
        assert_eq!(sb.signal(t0 + Duration::from_secs(5), r), Signal::Expected);
        r.resigning = false;
        r.state = State::Backup;
        assert_eq!(sb.signal(t0 + Duration::from_secs(5), r), Signal::Expected);
        assert_eq!(sb.episodes, 0);
    }

    #[test]
    fn leaving_master_ends_the_episode() {
        let t0 = clock();
        let mut sb = SplitBrain::default();
        sb.signal(t0 + Duration::from_secs(5), master(t0));
        assert!(sb.expire(
            t0 + Duration::from_secs(5),
            State::Backup,
            Duration::from_secs(3)
        ));
        assert!(!sb.active());
    }
}
