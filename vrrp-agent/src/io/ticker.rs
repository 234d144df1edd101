//! A periodic CLOCK_MONOTONIC timerfd for the driver's housekeeping tick.
//!
//! tokio's timer wheel keeps a timer more than 64 ms away in a coarse slot and wakes the
//! thread when that slot comes up (up to 64 ms early) to move it to a finer one: a 1 s
//! `tokio::time::interval` costs two wake-ups a second. A timerfd costs one, which is what an
//! idle backup should cost.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

pub struct Ticker {
    fd: AsyncFd<OwnedFd>,
}

impl Ticker {
    /// Ticks every `period`, the first time at once (as `tokio::time::interval`). Needs a
    /// tokio runtime.
    pub fn new(period: Duration) -> io::Result<Self> {
        let fd = timerfd()?;
        // 1 ns from now: the first tick at once (all-zero would disarm the timer).
        settime(&fd, timespec(period), timespec(Duration::from_nanos(1)))?;
        Ok(Self { fd })
    }

    /// Waits for the next tick; returns how many periods passed since the last one (more
    /// than 1 when the caller was late: missed ticks are merged, not replayed).
    pub async fn tick(&mut self) -> io::Result<u64> {
        expirations(&self.fd).await
    }
}

/// The driver's one-shot deadline on a timerfd. tokio's timers round up to the next
/// millisecond, which at 10 ms adverts is a tenth of an interval of lateness on every advert
/// and on every takeover; a timerfd fires at the nanosecond asked for.
pub struct Deadline {
    fd: AsyncFd<OwnedFd>,
    armed: Option<std::time::Instant>,
}

impl Deadline {
    /// A disarmed deadline. Needs a tokio runtime.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            fd: timerfd()?,
            armed: None,
        })
    }

    /// Fires at `at` (`None`: never), `now` being the driver's clock. A system call only when
    /// the deadline changed.
    pub fn set(
        &mut self,
        at: Option<std::time::Instant>,
        now: std::time::Instant,
    ) -> io::Result<()> {
        if at == self.armed {
            return Ok(());
        }
        let value = match at {
            // At least 1 ns: all-zero would disarm instead of firing at once.
            Some(t) => t
                .saturating_duration_since(now)
                .max(Duration::from_nanos(1)),
            None => Duration::ZERO,
        };
        settime(&self.fd, timespec(Duration::ZERO), timespec(value))?;
        self.armed = at;
        Ok(())
    }

    /// Waits until the deadline fires (for ever while disarmed). Cancel-safe: the expiry is
    /// consumed only when this returns.
    pub async fn fired(&mut self) -> io::Result<()> {
        expirations(&self.fd).await?;
        // Fired: the next `set` arms again even for the same instant.
        self.armed = None;
        Ok(())
    }
}

/// A non-blocking CLOCK_MONOTONIC timerfd, registered for reading. Needs a tokio runtime.
fn timerfd() -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: plain syscall; the returned descriptor is checked and owned below.
    let raw = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: the OwnedFd moves into the AsyncFd, so the descriptor stays open and the
    // same for as long as the registration lives.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos()),
    }
}

/// Arms `fd` (relative to now): first expiry after `value`, then every `interval` (zero: once).
fn settime(
    fd: &AsyncFd<OwnedFd>,
    interval: libc::timespec,
    value: libc::timespec,
) -> io::Result<()> {
    let spec = libc::itimerspec {
        it_interval: interval,
        it_value: value,
    };
    // SAFETY: a timerfd and a valid itimerspec; no old value is asked for.
    if unsafe { libc::timerfd_settime(fd.get_ref().as_raw_fd(), 0, &spec, std::ptr::null_mut()) }
        < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits until the timerfd has expired; the number of expirations since the last read.
async fn expirations(fd: &AsyncFd<OwnedFd>) -> io::Result<u64> {
    loop {
        let mut guard = fd.readable().await?;
        let mut buf = [0u8; 8];
        let read = guard.try_io(|fd| {
            // SAFETY: reads at most 8 bytes into `buf`, which has 8.
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n)
            }
        });
        match read {
            Ok(Ok(8)) => {
                // Nothing more to read until the next expiry: the next wait goes to epoll at
                // once instead of a read that finds nothing (a system call per tick saved).
                guard.clear_ready();
                return Ok(u64::from_ne_bytes(buf));
            }
            Ok(Ok(_)) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(Err(e)) => return Err(e),
            // Spurious readiness: wait again.
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ticks_at_once_then_every_period() {
        let mut t = Ticker::new(Duration::from_millis(20)).expect("timerfd");
        for _ in 0..3 {
            let n = tokio::time::timeout(Duration::from_secs(5), t.tick())
                .await
                .expect("a tick within 5 s")
                .expect("read");
            assert!(n >= 1);
        }
    }
}
