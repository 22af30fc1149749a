//! Sleeping to within tens of microseconds of a deadline, for the pacer.
//!
//! # Why not tokio's timer
//! tokio's timer wheel has millisecond resolution: a sleep ends at the
//! first tick at or after its deadline, up to a millisecond late. At 500
//! requests per second that is half an interval, and the pacer loses every
//! microsecond a request leaves late (see [`crate::engine::submit::pool`]).
//!
//! # Why a timerfd
//! The last stretch of the wait is on a Linux `timerfd`: a high-resolution
//! kernel timer that becomes readable at the deadline. tokio's I/O driver
//! watches it like a socket, so the worker thread parked in `epoll_wait` is
//! woken by the kernel and polls the waiting task itself: no second thread,
//! no hand-off between threads. (A blocking thread's `sleep`, used before,
//! costs two cross-thread wake-ups, a few hundred microseconds on a busy
//! 2-core machine; spinning would be precise but keeps a core busy.)
//! Elsewhere, or if the timerfd cannot be made, the last stretch is a
//! blocking thread's `sleep`.

use std::time::Duration;

use tokio::time::Instant;

/// The coarse part of a wait ends this long before the deadline: more than
/// tokio's timer can be late.
const TICK: Duration = Duration::from_millis(2);

/// A reusable precise timer. Holding one keeps its file descriptor open, so
/// a pacer that sleeps hundreds of times a second does not make one each
/// time.
#[derive(Default)]
pub struct Precise {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<sys::TimerFd>>,
}

impl Precise {
    /// Sleeps until `deadline`: the bulk of the wait on tokio's timer, the
    /// last stretch on a high-resolution one.
    pub async fn sleep_until(&mut self, deadline: Instant) {
        let now = Instant::now();
        if deadline <= now {
            return;
        }
        if deadline - now > TICK {
            tokio::time::sleep_until(deadline - TICK).await;
        }
        #[cfg(target_os = "linux")]
        if self.fd.is_none() {
            self.fd = sys::TimerFd::new().and_then(sys::TimerFd::register).ok();
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd
            && sys::wait(fd, deadline).await.is_ok()
        {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            // If the blocking pool is gone (the runtime is shutting down),
            // the wait is simply shorter.
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(left)).await;
        }
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    use tokio::io::unix::AsyncFd;
    use tokio::time::Instant;

    /// A non-blocking `CLOCK_MONOTONIC` timerfd.
    pub struct TimerFd(OwnedFd);

    impl AsRawFd for TimerFd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }
    }

    impl TimerFd {
        pub fn new() -> io::Result<TimerFd> {
            // SAFETY: no pointers; the result is checked before use.
            let fd = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            Ok(TimerFd(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        /// Hands the timer to tokio's I/O driver.
        pub fn register(self) -> io::Result<AsyncFd<TimerFd>> {
            // SAFETY: `TimerFd` owns its descriptor, which stays open and the
            // same until the `AsyncFd` (which then owns the `TimerFd`) drops.
            unsafe { AsyncFd::register_with_interest(self, tokio::io::Interest::READABLE) }
                .map_err(io::Error::from)
        }

        /// Arms the timer to fire once, `after` from now.
        fn arm(&self, after: std::time::Duration) -> io::Result<()> {
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: after.as_secs() as libc::time_t,
                    // At least 1 ns: an all-zero value disarms the timer.
                    tv_nsec: libc::c_long::from(after.subsec_nanos().max(1)),
                },
            };
            // SAFETY: a valid timerfd and a pointer to a live itimerspec;
            // the old value is not asked for.
            let rc = unsafe {
                libc::timerfd_settime(self.as_raw_fd(), 0, &raw const spec, std::ptr::null_mut())
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }

        /// Reads (and so clears) the expiration count.
        fn clear(&self) -> io::Result<()> {
            let mut count = 0u64;
            // SAFETY: reads 8 bytes into a live u64.
            let n = unsafe {
                libc::read(
                    self.as_raw_fd(),
                    (&raw mut count).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }

    /// Waits on `fd` until `deadline`.
    ///
    /// The timer is armed relative to a fresh reading of tokio's clock
    /// (`CLOCK_MONOTONIC` too, but possibly paused in tests, so no absolute
    /// deadline is handed to the kernel).
    pub async fn wait(fd: &AsyncFd<TimerFd>, deadline: Instant) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        // An expiry nobody read (a wait given up half-way) would end this
        // wait at once.
        let _ = fd.get_ref().clear();
        fd.get_ref().arm(left)?;
        loop {
            let mut ready = fd.readable().await?;
            match ready.try_io(|fd| fd.get_ref().clear()) {
                Ok(result) => return result,
                // Readiness left over from an earlier wait: wait again.
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_until_the_deadline_and_not_much_longer() {
        let mut timer = Precise::default();
        for wait in [0u64, 300, 2_500, 5_000] {
            let start = Instant::now();
            let deadline = start + Duration::from_micros(wait);
            timer.sleep_until(deadline).await;
            let woke = Instant::now();
            assert!(woke >= deadline, "woke {:?} early", deadline - woke);
            // Generous: a loaded CI machine may be slow to schedule us, but
            // tokio's timer alone would often be a whole millisecond late.
            assert!(woke - deadline < Duration::from_millis(50));
        }
    }
}
