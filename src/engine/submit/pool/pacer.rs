//! The pool's rate limit: the [`Pacer`] (the server's own no-burst GCRA,
//! driven by when requests really left) or, for `--burst`, governor's.
//! A module of its own because a worker's [`Turn`] spans the wait for a
//! slot and the send, and the why of that (below, on [`Pacer`]) is long.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

use crate::util::units::Rate;

/// The pool's rate limit.
pub(super) enum Limiter {
    /// No burst (the default): [`Pacer`].
    Paced(Pacer),
    /// `--burst N`: governor's GCRA, which lets N requests go at once after
    /// a quiet spell, as asked.
    Bursty(DefaultDirectRateLimiter),
}

impl Limiter {
    /// The limiter for `rate` and `burst`; `None` when the rate is
    /// unlimited.
    pub(super) fn for_rate(rate: Rate, burst: NonZeroU32) -> Option<Limiter> {
        rate.interval().map(|interval| {
            if burst.get() == 1 {
                return Limiter::Paced(Pacer::new(interval));
            }
            let quota = Quota::with_period(interval)
                .expect("rate interval is never zero")
                .allow_burst(burst);
            Limiter::Bursty(RateLimiter::direct(quota))
        })
    }

    /// Returns when this worker may send.
    pub(super) async fn until_ready(&self) -> Turn<'_> {
        match self {
            Limiter::Paced(pacer) => Turn(Some(pacer.until_ready().await)),
            Limiter::Bursty(limiter) => {
                limiter.until_ready().await;
                Turn(None)
            }
        }
    }
}

/// A worker's turn to send. For the pacer it holds the schedule (no other
/// worker's slot is decided) until dropped, which is when the request has
/// left: the next slot then counts from when it really left.
pub(super) struct Turn<'a>(pub(super) Option<PacedTurn<'a>>);

pub(super) struct PacedTurn<'a> {
    pacer: &'a Pacer,
    state: tokio::sync::MutexGuard<'a, PacerState>,
}

impl Drop for PacedTurn<'_> {
    /// The request left (or failed before leaving, or the run stopped: the
    /// pacer cannot know it did not reach the server) just before now.
    fn drop(&mut self) {
        self.state.tat = Some(self.pacer.after(self.state.tat, Instant::now()));
    }
}

/// One request per interval with no burst: the same GCRA a strict server
/// runs, driven by when requests really left.
///
/// # Why not governor here
/// A no-burst server (the sandbox's GCRA, or any strict provider) keeps a
/// theoretical arrival time (TAT) that only moves *later*: a request that
/// arrives after it pushes it on by the lateness, for good, and a request
/// that arrives before it is refused unless it is within the server's
/// tolerance. governor checks the clock when a task asks for a slot, not
/// when the request leaves, and a task always wakes a little late (a timer
/// tick, a busy core): at 500/s that unseen lateness either costs rate or,
/// if forgiven, makes the next request early by more than the server
/// forgives.
///
/// The pacer mirrors the server. It keeps the TAT the server must have
/// reached, computed from the instants requests *left* (taken once the
/// request is on its way, so this TAT is not earlier than the server's:
/// see below), and lets a request go [`Pacer::slack`] before it. A request
/// that leaves up to `slack` late is therefore still on the server's
/// schedule and costs no rate; only lateness beyond that moves the TAT,
/// by the excess, exactly as it moves the server's. The request that
/// leaves `slack` early is early by at most `slack` on a schedule the
/// server has not passed, which its tolerance (half an interval for the
/// sandbox; some milliseconds for any provider reached over a network)
/// forgives, and over any second at most R + 1 requests leave.
///
/// Workers take turns on one lock, held from the wait for a slot until the
/// request has left (its bytes handed to the connection, after connecting
/// if need be: see `Client::submit_announced`). So a slot is claimed only
/// by the worker about to use it, lateness anywhere before the wire (a busy
/// core, a new connection) counts, and a moved TAT applies to every later
/// request.
///
/// # When a request "left"
/// The instant used is when the worker hears that the connection took the
/// body, a little after the body's poll. The body's poll itself is earlier
/// than the bytes reaching the socket, and now and then (the connection's
/// thread preempted on a busy machine) by over a millisecond: a TAT built
/// on it then runs behind the server's, and the next request, on time for
/// the pacer, is early for the server. Measured at 500/s: with the poll's
/// instant, one run in two drew a 429; with the worker's, none in 22.
pub(super) struct Pacer {
    interval: Duration,
    /// How early before the TAT a request may leave: a quarter of the
    /// interval, at most [`MAX_SLACK`]. Enough to absorb the pacer's own
    /// wake-up and hand-off (about 0.1–0.3 ms with a timerfd, see
    /// [`crate::util::timer`]), and half of the tolerance a server keeps for
    /// network jitter (the sandbox's is half an interval): the other half
    /// is left for that jitter.
    slack: Duration,
    state: tokio::sync::Mutex<PacerState>,
}

/// What the worker whose turn it is owns.
#[derive(Default)]
struct PacerState {
    /// The TAT; `None` before the first request.
    tat: Option<Instant>,
    timer: crate::util::timer::Precise,
}

/// The most a request leaves before its TAT, whatever the rate: at low
/// rates a millisecond of lateness costs nothing worth claiming back.
const MAX_SLACK: Duration = Duration::from_millis(1);

impl Pacer {
    fn new(interval: Duration) -> Pacer {
        Pacer {
            interval,
            slack: (interval / 4).min(MAX_SLACK),
            state: tokio::sync::Mutex::default(),
        }
    }

    /// Waits for the next slot; the TAT moves on when the turn is dropped.
    async fn until_ready(&self) -> PacedTurn<'_> {
        let mut state = self.state.lock().await;
        if let Some(tat) = state.tat {
            // After a quiet spell the TAT is in the past: no catching up.
            let slot = tat.checked_sub(self.slack).unwrap_or(tat);
            state.timer.sleep_until(slot).await;
        }
        PacedTurn { pacer: self, state }
    }

    /// The TAT after a request left at `sent`, given the TAT before it.
    fn after(&self, tat: Option<Instant>, sent: Instant) -> Instant {
        tat.map_or(sent, |tat| tat.max(sent)) + self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_loses_rate_only_to_lateness_beyond_its_slack() {
        let pacer = Pacer::new(Duration::from_millis(20));
        assert_eq!(pacer.slack, Duration::from_millis(1));
        let tat = Instant::now();
        let ms = Duration::from_millis;
        // The first request sets the schedule from when it left.
        assert_eq!(pacer.after(None, tat), tat + ms(20));
        // Early (within the slack) or on time: the schedule does not move,
        // so the rate does not sag and an early request gains nothing.
        assert_eq!(pacer.after(Some(tat), tat - ms(1)), tat + ms(20));
        assert_eq!(pacer.after(Some(tat), tat), tat + ms(20));
        // Late: it moves by the lateness, as a strict server's does.
        assert_eq!(pacer.after(Some(tat), tat + ms(6)), tat + ms(26));
        // A quarter of the interval at high rates.
        assert_eq!(Pacer::new(ms(2)).slack, Duration::from_micros(500));
    }

    #[tokio::test]
    async fn the_pacer_spaces_requests_and_does_not_burst_after_a_pause() {
        let interval = Duration::from_millis(10);
        let pacer = Pacer::new(interval);
        let mut sent = Vec::new();
        for _ in 0..5 {
            drop(pacer.until_ready().await);
            sent.push(Instant::now());
        }
        // A quiet spell: the next two must still be an interval apart.
        tokio::time::sleep(interval * 5).await;
        drop(pacer.until_ready().await);
        let a = Instant::now();
        drop(pacer.until_ready().await);
        let b = Instant::now();
        for pair in sent.windows(2) {
            assert!(pair[1] - pair[0] >= interval - pacer.slack, "{pair:?}");
        }
        assert!(b - a >= interval - pacer.slack);
        // Early by the slack at most: five requests span four intervals.
        assert!(sent[4] - sent[0] >= interval * 4 - pacer.slack);
    }
}
