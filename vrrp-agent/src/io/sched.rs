//! Real-time scheduling for the election thread (keepalived's `vrrp_rt_priority` and
//! `vrrp_rlimit_rttime`).
//!
//! Why it is on by default: at 10 ms adverts a CPU hog delays a `SCHED_OTHER` master's adverts
//! by more than the backup's master-down interval, and the backup takes over while the master
//! lives (measured by `cargo xtask bench`). `SCHED_RR` runs the agent ahead of ordinary work.
//! The safety net is `RLIMIT_RTTIME`: a thread that runs longer than that without sleeping gets
//! SIGXCPU, and our handler drops it back to `SCHED_OTHER` instead of letting it hold a core.
//! `SCHED_RESET_ON_FORK` keeps scripts, the blocking pool and other children ordinary.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// `SCHED_RR` priority when the configuration says nothing (1..99; 0 turns it off).
pub const DEFAULT_RT_PRIORITY: u8 = 10;
/// CPU time a real-time thread may use without sleeping, when the configuration says nothing.
/// Generous next to the election's microseconds per event, small next to a stuck core.
pub const DEFAULT_RLIMIT_RTTIME_US: u64 = 500_000;
/// Where the agent tells its guardian which priority to take.
pub const GUARDIAN_ENV: &str = "VRRP_AGENT_GUARDIAN_RT";

#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error(
        "setrlimit(RLIMIT_RTTIME, {us} µs): {source}{}",
        eperm(source, " (raising the hard limit needs CAP_SYS_RESOURCE)")
    )]
    Rlimit { us: u64, source: io::Error },
    #[error("sigaction(SIGXCPU): {0}")]
    Handler(io::Error),
    #[error(
        "sched_setscheduler(SCHED_RR, priority {priority}): {source}{}",
        eperm(
            source,
            " (needs CAP_SYS_NICE, or an RLIMIT_RTPRIO of at least the priority)"
        )
    )]
    Set { priority: u8, source: io::Error },
    #[error("real-time priority {0} is out of range 1..99")]
    Range(u8),
}

/// The capability hint for a refusal: under systemd a missing capability is the usual cause.
fn eperm(e: &io::Error, hint: &'static str) -> &'static str {
    if e.raw_os_error() == Some(libc::EPERM) {
        hint
    } else {
        ""
    }
}

/// What the process asked for, resolved from the configuration and the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealTime {
    /// 0: stay `SCHED_OTHER`.
    pub priority: u8,
    pub rlimit_rttime_us: u64,
}

impl RealTime {
    pub fn resolve(priority: Option<u8>, rlimit_rttime_us: Option<u64>) -> Self {
        Self {
            priority: priority.unwrap_or(DEFAULT_RT_PRIORITY),
            rlimit_rttime_us: rlimit_rttime_us.unwrap_or(DEFAULT_RLIMIT_RTTIME_US),
        }
    }

    /// `"10:500000"`, for the guardian's environment.
    pub fn to_env(self) -> String {
        format!("{}:{}", self.priority, self.rlimit_rttime_us)
    }

    pub fn from_env(s: &str) -> Option<Self> {
        let (p, us) = s.split_once(':')?;
        Some(Self {
            priority: p.parse().ok()?,
            rlimit_rttime_us: us.parse().ok()?,
        })
    }
}

static DEMOTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigxcpu(_: libc::c_int) {
    let p = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler and an atomic store are async-signal-safe; the signal goes to
    // the thread that overran, which is the one demoted (pid 0 = the calling thread).
    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &p) };
    DEMOTED.store(true, Ordering::Relaxed);
}

/// True once (then false) after a thread overran `RLIMIT_RTTIME` and was demoted.
pub fn take_demoted() -> bool {
    DEMOTED.swap(false, Ordering::Relaxed)
}

/// Makes the calling thread (and threads it starts later) `SCHED_RR` at `rt.priority`.
/// Does nothing for priority 0.
pub fn make_realtime(rt: RealTime) -> Result<(), SchedError> {
    if rt.priority == 0 {
        return Ok(());
    }
    if rt.priority > 99 {
        return Err(SchedError::Range(rt.priority));
    }
    // The limit and the handler first: never real-time without the net under it.
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut cur) } != 0 {
        return Err(SchedError::Rlimit {
            us: rt.rlimit_rttime_us,
            source: io::Error::last_os_error(),
        });
    }
    let want = rt.rlimit_rttime_us as libc::rlim_t;
    let lim = libc::rlimit {
        rlim_cur: want,
        // Keep a higher hard limit (SIGKILL) where there is one; never lower it below the soft.
        rlim_max: cur.rlim_max.max(want),
    };
    // SAFETY: setrlimit reads a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &lim) } != 0 {
        return Err(SchedError::Rlimit {
            us: rt.rlimit_rttime_us,
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: a zeroed sigaction with a plain handler and an empty mask is valid.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_sigxcpu as *const () as usize;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: sa is initialised; the old action is not wanted.
    if unsafe { libc::sigaction(libc::SIGXCPU, &sa, std::ptr::null_mut()) } != 0 {
        return Err(SchedError::Handler(io::Error::last_os_error()));
    }
    let p = libc::sched_param {
        sched_priority: i32::from(rt.priority),
    };
    // SAFETY: p is a valid sched_param; pid 0 is the calling thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &p) } != 0 {
        return Err(SchedError::Set {
            priority: rt.priority,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// The calling thread's policy and priority, for the status: `"SCHED_RR 10"`.
pub fn describe_current() -> String {
    // SAFETY: no preconditions.
    let pol = unsafe { libc::sched_getscheduler(0) } & !libc::SCHED_RESET_ON_FORK;
    let mut p = libc::sched_param { sched_priority: 0 };
    // SAFETY: writes into a valid sched_param.
    unsafe { libc::sched_getparam(0, &mut p) };
    match pol {
        libc::SCHED_RR => format!("SCHED_RR {}", p.sched_priority),
        libc::SCHED_FIFO => format!("SCHED_FIFO {}", p.sched_priority),
        libc::SCHED_OTHER => "SCHED_OTHER".to_string(),
        libc::SCHED_BATCH => "SCHED_BATCH".to_string(),
        libc::SCHED_IDLE => "SCHED_IDLE".to_string(),
        other => format!("policy {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_env_round_trip() {
        let rt = RealTime::resolve(None, None);
        assert_eq!(rt.priority, DEFAULT_RT_PRIORITY);
        assert_eq!(rt.rlimit_rttime_us, DEFAULT_RLIMIT_RTTIME_US);
        let rt = RealTime::resolve(Some(0), Some(10_000));
        assert_eq!(RealTime::from_env(&rt.to_env()), Some(rt));
        assert_eq!(RealTime::from_env("x"), None);
        assert_eq!(RealTime::from_env("5:"), None);
    }

    #[test]
    fn priority_zero_is_a_no_op_and_out_of_range_refused() {
        assert!(
            make_realtime(RealTime {
                priority: 0,
                rlimit_rttime_us: 1
            })
            .is_ok()
        );
        assert!(matches!(
            make_realtime(RealTime {
                priority: 100,
                rlimit_rttime_us: 1
            }),
            Err(SchedError::Range(100))
        ));
    }
}
