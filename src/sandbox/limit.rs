//! The sandbox's own rate limiter: GCRA (virtual scheduling) with no burst.
//!
//! Why GCRA: it keeps one number, the theoretical arrival time (TAT) of the
//! next request, and accepts a request when it arrives no earlier than that
//! minus a tolerance. That is exactly "one request per interval, no burst",
//! which is what batchgen promises a provider.
//!
//! Why a tolerance: a client that spaces requests exactly one interval apart
//! still reaches the server a little early now and then (timer wake-ups,
//! loopback scheduling, and the sandbox's own: it stamps a request when
//! hyper has read it, on a machine it shares with the client). Without
//! slack such a client would see spurious 429s and tests built on it would
//! flake. The tolerance is half an interval, at least [`MIN_TOLERANCE`] (a
//! host on a network forgives at least that much jitter, or no client could
//! keep its rate) and at most [`MAX_TOLERANCE`], so it absorbs jitter but
//! never admits a second request "early" by a meaningful amount. Because an early request does not
//! move the schedule earlier (`TAT = max(TAT, now) + T`), jitter never
//! accumulates into a burst.
//!
//! The limiter takes `now` as an argument, so its rules are tested without a
//! clock.
//!
//! # Why not governor, as the client
//! batchgen's own limiter (`util::limit`) is governor's GCRA. The sandbox
//! keeps its own, deliberately: it stands for the provider, so it must
//! judge requests by when they arrived (`api::ArrivedAt`) and place one
//! judged after a later arrival where it belongs (see [`HostLimit::check`]),
//! which governor, reading its own clock at the moment it is asked, cannot;
//! and a server built from the client's rate code would agree with the
//! client's rate bugs.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The most jitter the limiter forgives, whatever the interval.
pub const MAX_TOLERANCE: Duration = Duration::from_millis(50);
/// The least jitter it forgives, whatever the rate: a client's timer and
/// both sides' scheduling on a shared machine are late by a few
/// milliseconds now and then (tokio's timer: 1 to 2 ms, with spikes of 3
/// to 5 ms on two busy cores).
pub const MIN_TOLERANCE: Duration = Duration::from_millis(5);

/// How many recent admissions the limiter remembers to place a request that
/// is judged after a later one (see [`HostLimit::check`]).
const HISTORY: usize = 16;

/// A GCRA limiter for one request per `interval`.
#[derive(Debug, Clone)]
pub struct HostLimit {
    interval: Duration,
    tolerance: Duration,
    /// When the next request is due; `None` before the first request.
    tat: Option<Instant>,
    /// The latest admissions in arrival order: each one's arrival and the
    /// TAT it was judged against.
    recent: VecDeque<(Instant, Option<Instant>)>,
}

impl HostLimit {
    pub fn new(interval: Duration) -> HostLimit {
        let tolerance = (interval / 2).clamp(MIN_TOLERANCE, MAX_TOLERANCE);
        HostLimit::with_tolerance(interval, tolerance)
    }

    /// A limiter that forgives no earliness at all: what nginx's
    /// `limit_req` without `burst` does, the most common limiter in front of
    /// an API. The bench's `limit` target runs the client against it.
    pub fn strict(interval: Duration) -> HostLimit {
        HostLimit::with_tolerance(interval, Duration::ZERO)
    }

    fn with_tolerance(interval: Duration, tolerance: Duration) -> HostLimit {
        HostLimit {
            interval,
            tolerance,
            tat: None,
            recent: VecDeque::with_capacity(HISTORY),
        }
    }

    /// Admits a request that arrived at `now`, or says how long until one
    /// would be admitted. A refused request does not move the schedule.
    ///
    /// Requests are judged by when they reached the socket, but connections
    /// are served concurrently, so now and then one is judged after a
    /// request that arrived later. Judging it against a schedule that later
    /// request already moved would refuse a request that arrived on time (a
    /// real service, judging on arrival, would not). So the limiter replays
    /// the schedule in arrival order from where the late-judged request
    /// belongs, and admits it if it and every later admission still keep
    /// the rate.
    pub fn check(&mut self, now: Instant) -> Result<(), Duration> {
        let at = self.recent.partition_point(|(arrived, _)| *arrived <= now);
        if at == self.recent.len() {
            let judged = self.tat;
            self.tat = Some(self.judge(judged, now)?);
            self.admit(at, now, judged);
            return Ok(());
        }
        // Arrived before admissions already made: replay from its place.
        let before = self.recent[at].1;
        let mut tat = self.judge(before, now)?;
        let mut replayed = Vec::with_capacity(self.recent.len() - at);
        for (arrived, _) in self.recent.range(at..) {
            replayed.push(tat);
            // An admission it would turn into a refusal: it cannot stay.
            tat = self.judge(Some(tat), *arrived).map_err(|_| self.interval)?;
        }
        for ((_, judged), new) in self.recent.range_mut(at..).zip(replayed) {
            *judged = Some(new);
        }
        self.admit(at, now, before);
        self.tat = Some(tat);
        Ok(())
    }

    /// The TAT after a request arriving at `now` against `tat`, or how
    /// early it is.
    fn judge(&self, tat: Option<Instant>, now: Instant) -> Result<Instant, Duration> {
        let tat = tat.unwrap_or(now);
        let earliest = tat.checked_sub(self.tolerance).unwrap_or(tat);
        if now < earliest {
            return Err(earliest - now);
        }
        Ok(tat.max(now) + self.interval)
    }

    /// Records an admission at position `at` of the history.
    fn admit(&mut self, at: usize, now: Instant, judged: Option<Instant>) {
        self.recent.insert(at, (now, judged));
        if self.recent.len() > HISTORY {
            self.recent.pop_front();
        }
    }
}

/// The `Retry-After` value for a wait: whole seconds, rounded up, at least 1.
pub(super) fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(200);

    #[test]
    fn exact_spacing_and_small_jitter_pass() {
        let start = Instant::now();
        let mut l = HostLimit::new(T);
        assert!(l.check(start).is_ok());
        // 40 ms early is inside the 50 ms tolerance.
        assert!(l.check(start + T - Duration::from_millis(40)).is_ok());
        // The early arrival did not pull the schedule forward.
        assert!(l.check(start + 2 * T).is_ok());
        assert!(l.check(start + 3 * T + Duration::from_millis(7)).is_ok());
    }

    #[test]
    fn back_to_back_and_early_requests_fail() {
        let start = Instant::now();
        let mut l = HostLimit::new(T);
        assert!(l.check(start).is_ok());
        let wait = l.check(start).unwrap_err();
        assert_eq!(wait, T - MAX_TOLERANCE);
        assert!(l.check(start + T - Duration::from_millis(60)).is_err());
        // Refusals do not push the schedule back.
        assert!(l.check(start + T - MAX_TOLERANCE).is_ok());
    }

    #[test]
    fn no_burst_after_idle() {
        let start = Instant::now();
        let mut l = HostLimit::new(T);
        assert!(l.check(start).is_ok());
        let later = start + 10 * T;
        assert!(l.check(later).is_ok());
        assert!(l.check(later + Duration::from_millis(1)).is_err());
    }

    #[test]
    fn tolerance_is_half_a_short_interval() {
        let start = Instant::now();
        let mut l = HostLimit::new(Duration::from_millis(20));
        assert!(l.check(start).is_ok());
        assert!(l.check(start + Duration::from_millis(9)).is_err());
        assert!(l.check(start + Duration::from_millis(10)).is_ok());
    }

    #[test]
    fn a_request_judged_after_a_later_one_is_placed_by_its_arrival() {
        let start = Instant::now();
        let mut l = HostLimit::new(T);
        assert!(l.check(start).is_ok());
        // Arrivals at 1T and 2T, judged in the wrong order: both on time.
        assert!(l.check(start + 2 * T).is_ok());
        assert!(l.check(start + T).is_ok());
        // The schedule is the same as if they had been judged in order.
        assert!(l.check(start + 3 * T - MAX_TOLERANCE).is_ok());
        assert!(
            l.check(start + 4 * T - MAX_TOLERANCE - Duration::from_millis(1))
                .is_err()
        );
    }

    #[test]
    fn a_late_judged_request_that_breaks_the_rate_is_refused() {
        let start = Instant::now();
        let mut l = HostLimit::new(T);
        assert!(l.check(start).is_ok());
        assert!(l.check(start + T).is_ok());
        // Between two admissions one interval apart: either it or the later
        // one would be early, and the later one was already answered.
        assert!(l.check(start + T / 2).is_err());
        // Before the first admission: early for nobody, but the first one
        // would then be too close to it.
        assert!(l.check(start - Duration::from_millis(10)).is_err());
        // The refusals changed nothing.
        assert!(l.check(start + 2 * T - MAX_TOLERANCE).is_ok());
    }

    #[test]
    fn tolerance_is_at_least_a_few_milliseconds_at_high_rates() {
        let start = Instant::now();
        let mut l = HostLimit::new(Duration::from_millis(2));
        for at in [0, 100, 200] {
            assert!(l.check(start + Duration::from_micros(at)).is_ok(), "{at}");
        }
        // But no fourth: the schedule moved on by one interval each.
        assert!(l.check(start + Duration::from_micros(300)).is_err());
    }

    #[test]
    fn the_strict_limiter_forgives_no_earliness() {
        let start = Instant::now();
        let mut l = HostLimit::strict(T);
        assert!(l.check(start).is_ok());
        assert!(l.check(start + T - Duration::from_micros(1)).is_err());
        assert!(l.check(start + T).is_ok());
        // Lateness moves the schedule, as nginx's does.
        assert!(l.check(start + 2 * T + Duration::from_millis(5)).is_ok());
        assert!(l.check(start + 3 * T).is_err());
        assert!(l.check(start + 3 * T + Duration::from_millis(5)).is_ok());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(150)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }
}
