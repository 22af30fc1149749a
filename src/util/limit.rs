//! The one rate limiter, used the same way by submits, polls and downloads:
//! governor's GCRA on tokio's clock and timer, with a pace that gives way a
//! few percent when the host answers 429 and probes back up slowly (AIMD).
//!
//! # Why governor on a coarse clock
//! governor decides; tokio's timer waits. tokio's timer has millisecond
//! resolution, so a wait for a slot ends up to a millisecond (and a wake-up)
//! late. A no-burst GCRA counts that lateness against the rate: the next
//! slot is an interval after the *late* request, and at 500/s half a
//! millisecond a request is a fifth of the rate. So governor reads tokio's
//! clock on a grid (`Grid`: steps of at least 2 ms, and an exact
//! fraction of the interval): slots fall on the grid, a wait for one ends
//! within the same step of the grid, and the limiter sees it on time. A
//! request therefore never leaves before its slot, and lateness under one
//! step costs no rate; a host sees the spacing vary by the wake-up jitter,
//! not by a millisecond tick.
//!
//! Reading tokio's clock (not the system's) is also what lets tests run the
//! limiter on a paused clock (`tokio::time::pause`): every wait is virtual.
//!
//! # Why AIMD
//! A host that allows exactly r/s with no tolerance (nginx's `limit_req`
//! without `burst`, the most common limiter in front of an API) refuses
//! about every other request from a client that sends at exactly r/s over a
//! real network: the jitter makes half the gaps a little short. Backing off
//! for seconds on each 429 then costs far more than the 429 itself. So a
//! 429 with no `Retry-After` lowers the pace by [`DECREASE`] and the next
//! request waits one interval of the new pace; every [`PROBE_EVERY`] (or
//! [`PROBE_ANSWERS`] requests, if sooner) of calm at a pace below the
//! configured rate raises it by [`INCREASE`] of the configured rate, never
//! above it. A 429 for a request that left
//! before the pace was last lowered lowers it no further (the [`Slot`]
//! says when it left): one burst of refusals is one step down.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::units::Rate;

/// How much a 429 lowers the pace: to 97 % of what it was.
pub const DECREASE: f64 = 0.97;
/// How much calm raises it: by 1 % of the configured rate.
pub const INCREASE: f64 = 0.01;
/// How long the pace must go without a 429 before it rises.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// The pace never falls below this share of the configured rate: a host
/// that refuses even that is in a storm, which the caller's backoff handles.
pub const FLOOR: f64 = 0.1;
/// How long after a 429 calm probes no higher than [`BELOW_REFUSED`] of
/// the fastest pace refused.
pub const REMEMBER: Duration = Duration::from_secs(60);
/// The share of the fastest refused pace calm probes up to: two steps
/// below it, a margin for the jitter that made it refused.
pub const BELOW_REFUSED: f64 = 1.0 - 2.0 * INCREASE;
/// Or after this many requests answered without a 429, if sooner: at high
/// rates ten seconds is thousands of requests.
pub const PROBE_ANSWERS: u32 = 50;
/// 429s in a row, beyond one per request in flight (those may all have
/// left together), after which a 429 with no `Retry-After` is a storm: the
/// caller adds its backoff to the slower pace.
pub const STORM_AFTER: u32 = 2;

/// Whether `in_a_row` refusals in a row, with up to `in_flight` requests
/// sent together, are a storm ([`STORM_AFTER`]): the one rule submits and
/// polls share.
pub fn is_storm(in_a_row: u32, in_flight: u32) -> bool {
    in_a_row > in_flight.saturating_add(STORM_AFTER)
}
/// The shortest step of the grid governor's clock reads (see the module
/// docs): more than tokio's timer is late.
const MIN_QUANTUM: Duration = Duration::from_millis(2);
/// How much earlier than a slot a wait asks tokio's timer to wake it: the
/// least it is late.
const TIMER_LATENESS: Duration = Duration::from_millis(1);

/// The rate limiter; `None` from [`Limiter::new`] when the rate is unlimited.
pub struct Limiter {
    /// The configured interval: the pace never goes faster.
    ceiling: Duration,
    burst: NonZeroU32,
    pace: Mutex<Pace>,
}

type Gcra = RateLimiter<NotKeyed, InMemoryState, Grid, NoOpMiddleware<std::time::Instant>>;

/// The current pace and governor's limiter for it.
struct Pace {
    gcra: Arc<Gcra>,
    interval: Duration,
    /// Bumped each time the pace changes.
    generation: u64,
    /// When the pace last changed.
    since: tokio::time::Instant,
    /// Requests answered without a 429 at this pace.
    calm: u32,
    /// The fastest pace refused lately (its interval), and when a pace was
    /// last refused.
    refused: Option<(Duration, tokio::time::Instant)>,
}

/// A slot the limiter gave: which pace it was given under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    generation: u64,
}

impl Limiter {
    /// A limiter for `rate` that lets `burst` requests go at once after a
    /// quiet spell (1: no burst at all). `None` when the rate is unlimited.
    pub fn new(rate: Rate, burst: NonZeroU32) -> Option<Limiter> {
        let ceiling = rate.interval()?;
        let now = tokio::time::Instant::now();
        Some(Limiter {
            ceiling,
            burst,
            pace: Mutex::new(Pace {
                gcra: Arc::new(gcra(ceiling, burst)),
                interval: ceiling,
                generation: 0,
                since: now,
                calm: 0,
                refused: None,
            }),
        })
    }

    /// Waits for a slot. Cancel-safe: dropping the future gives up nothing
    /// (a slot is only taken when it is granted).
    pub async fn until_ready(&self) -> Slot {
        loop {
            let (gcra, generation) = {
                let pace = self.pace.lock().expect("poisoned");
                (Arc::clone(&pace.gcra), pace.generation)
            };
            match gcra.check() {
                Ok(()) => return Slot { generation },
                Err(not_until) => {
                    let slot = gcra.clock().step_at_or_after(not_until.earliest_possible());
                    let slot = tokio::time::Instant::from_std(slot);
                    // tokio's timer wakes a task 1 to 2 ms after the
                    // deadline it is given (it rounds up to its millisecond
                    // tick, then parks for whole milliseconds): asking for
                    // TIMER_LATENESS early lands the wake inside the slot's
                    // step of the grid. A wake before the slot finds it not
                    // yet due and waits for the slot itself.
                    let now = tokio::time::Instant::now();
                    let wake = slot
                        .checked_sub(TIMER_LATENESS)
                        .filter(|early| *early > now)
                        .unwrap_or(slot);
                    tokio::time::sleep_until(wake).await;
                }
            }
        }
    }

    /// The host refused a request sent in `slot` with a 429 that named no
    /// wait: lowers the pace by [`DECREASE`] (unless it was lowered since
    /// that request left) and holds the next slot one new interval from
    /// now. Returns the interval now in force.
    pub fn refused(&self, slot: Slot) -> Duration {
        let mut pace = self.pace.lock().expect("poisoned");
        if slot.generation == pace.generation {
            // The fastest pace refused lately: a refusal at a slower pace
            // (one unlucky gap) does not ratchet the probe's cap down.
            let now = tokio::time::Instant::now();
            let fastest = match pace.refused {
                Some((refused, at)) if at.elapsed() < REMEMBER => refused.min(pace.interval),
                _ => pace.interval,
            };
            pace.refused = Some((fastest, now));
            let floor = self.ceiling.div_f64(FLOOR);
            let slower = pace.interval.div_f64(DECREASE).min(floor);
            self.set(&mut pace, slower);
        }
        pace.interval
    }

    /// A request sent in `slot` was answered with anything but a 429:
    /// after [`PROBE_EVERY`] or [`PROBE_ANSWERS`] of such calm below the
    /// configured rate, the pace rises by [`INCREASE`] of it.
    pub fn answered(&self, slot: Slot) {
        let mut pace = self.pace.lock().expect("poisoned");
        if slot.generation != pace.generation || pace.interval == self.ceiling {
            return;
        }
        pace.calm += 1;
        if pace.calm < PROBE_ANSWERS && pace.since.elapsed() < PROBE_EVERY {
            return;
        }
        let ceiling = 1.0 / self.ceiling.as_secs_f64();
        let mut most = ceiling;
        match pace.refused {
            Some((_, at)) if at.elapsed() >= REMEMBER => pace.refused = None,
            Some((refused, _)) => most = most.min(BELOW_REFUSED / refused.as_secs_f64()),
            None => {}
        }
        let now = 1.0 / pace.interval.as_secs_f64();
        let faster = (now + INCREASE * ceiling).min(most);
        if faster <= now {
            return;
        }
        let interval = Duration::from_secs_f64(1.0 / faster).max(self.ceiling);
        self.set(&mut pace, interval);
    }

    /// The interval between requests at the current pace.
    pub fn interval(&self) -> Duration {
        self.pace.lock().expect("poisoned").interval
    }

    /// Moves to a pace of one request per `interval`, its first slot one
    /// interval from now (the new limiter's burst is taken now: a pace
    /// change is no quiet spell).
    fn set(&self, pace: &mut Pace, interval: Duration) {
        let gcra = gcra(interval, self.burst);
        let _ = gcra.check_n(self.burst);
        pace.gcra = Arc::new(gcra);
        pace.interval = interval;
        pace.generation += 1;
        pace.since = tokio::time::Instant::now();
        pace.calm = 0;
    }
}

/// governor's limiter for one request per `interval` (rounded to a whole
/// number of grid steps), `burst` at once.
fn gcra(interval: Duration, burst: NonZeroU32) -> Gcra {
    let grid = Grid::new(interval);
    let interval = grid.quantum * grid.steps;
    let quota = Quota::with_period(interval)
        .expect("an interval is never zero")
        .allow_burst(burst);
    RateLimiter::direct_with_clock(quota, grid)
}

/// tokio's clock, read on a grid of `quantum` from `origin` (see the module
/// docs).
#[derive(Debug, Clone)]
pub struct Grid {
    origin: std::time::Instant,
    quantum: Duration,
    /// Grid steps per interval.
    steps: u32,
}

impl Grid {
    /// The grid for `interval`: steps of at least [`MIN_QUANTUM`] (or the
    /// whole interval, if shorter) that divide it.
    fn new(interval: Duration) -> Grid {
        let steps = (interval.as_nanos() / MIN_QUANTUM.as_nanos()).clamp(1, u128::from(u32::MAX));
        let steps = u32::try_from(steps).unwrap_or(u32::MAX);
        Grid {
            origin: tokio::time::Instant::now().into_std(),
            quantum: (interval / steps).max(Duration::from_nanos(1)),
            steps,
        }
    }

    /// The first point of the grid at or after `at`.
    fn step_at_or_after(&self, at: std::time::Instant) -> std::time::Instant {
        let floor = self.floor(at);
        if floor < at {
            floor + self.quantum
        } else {
            floor
        }
    }

    /// The point of the grid at or before `at`.
    fn floor(&self, at: std::time::Instant) -> std::time::Instant {
        let since = at.saturating_duration_since(self.origin).as_nanos();
        let q = self.quantum.as_nanos();
        let steps = u64::try_from(since / q * q).unwrap_or(u64::MAX);
        self.origin + Duration::from_nanos(steps)
    }
}

impl Clock for Grid {
    type Instant = std::time::Instant;

    fn now(&self) -> std::time::Instant {
        self.floor(tokio::time::Instant::now().into_std())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: &str) -> Limiter {
        Limiter::new(rate.parse().unwrap(), NonZeroU32::MIN).unwrap()
    }

    /// When each of `n` slots was granted, from the first.
    async fn slots(limiter: &Limiter, n: usize) -> Vec<Duration> {
        let start = tokio::time::Instant::now();
        let mut at = Vec::new();
        for _ in 0..n {
            limiter.until_ready().await;
            at.push(start.elapsed());
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn slots_are_one_interval_apart_with_no_start_up_burst() {
        for (rate, interval) in [
            ("5/s", Duration::from_millis(200)),
            ("500/s", Duration::from_millis(2)),
            ("3.8/s", Duration::from_secs_f64(1.0 / 3.8)),
        ] {
            let l = limiter(rate);
            let at = slots(&l, 20).await;
            assert_eq!(at[0], Duration::ZERO, "{rate}: the first goes at once");
            for (k, at) in at.iter().enumerate() {
                // Never before its slot, and late by less than a timer tick:
                // lateness does not accumulate into a lower rate.
                let slot = interval * u32::try_from(k).unwrap();
                assert!(
                    *at + Duration::from_micros(1) >= slot,
                    "{rate}: #{k} at {at:?}"
                );
                assert!(
                    *at < slot + Duration::from_millis(1),
                    "{rate}: #{k} at {at:?}"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_spell_does_not_bank_a_burst() {
        let l = limiter("10/s");
        slots(&l, 3).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let at = slots(&l, 3).await;
        assert_eq!(at[0], Duration::ZERO);
        assert!(at[1] >= Duration::from_millis(100), "{at:?}");
        assert!(at[2] >= Duration::from_millis(200), "{at:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn burst_lets_that_many_go_at_once() {
        let l = Limiter::new("1/s".parse().unwrap(), NonZeroU32::new(3).unwrap()).unwrap();
        let at = slots(&l, 4).await;
        assert_eq!(&at[..3], &[Duration::ZERO; 3]);
        assert!(at[3] >= Duration::from_secs(1) - Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_lowers_the_pace_once_per_burst_and_waits_one_interval() {
        let l = limiter("4/s");
        let first = l.until_ready().await;
        let second = l.until_ready().await;
        let start = tokio::time::Instant::now();
        let slower = l.refused(first);
        assert_eq!(slower, Duration::from_millis(250).div_f64(DECREASE));
        // The other request in flight under the old pace: no second step.
        assert_eq!(l.refused(second), slower);
        let next = l.until_ready().await;
        let waited = start.elapsed();
        assert!(waited >= slower - Duration::from_micros(1), "{waited:?}");
        assert!(waited < slower + Duration::from_millis(3), "{waited:?}");
        // A 429 for a request sent at the new pace lowers it again.
        assert!(l.refused(next) > slower);
    }

    /// `requests` slots, each answered calmly; how many raised the pace.
    async fn calm(l: &Limiter, requests: usize) -> usize {
        let mut rises = 0;
        for _ in 0..requests {
            let slot = l.until_ready().await;
            let before = l.interval();
            l.answered(slot);
            if l.interval() < before {
                rises += 1;
            }
        }
        rises
    }

    #[tokio::test(start_paused = true)]
    async fn calm_probes_back_up_below_the_refused_pace_then_to_the_configured_rate() {
        let l = limiter("4/s");
        let ceiling = Duration::from_millis(250);
        let slot = l.until_ready().await;
        l.refused(slot);
        let lowered = l.interval();
        assert_eq!(lowered, ceiling.div_f64(DECREASE));
        // Calm shorter than the probe period changes nothing.
        for _ in 0..10 {
            let slot = l.until_ready().await;
            l.answered(slot);
        }
        assert_eq!(l.interval(), lowered);
        // Calm for a while: up in steps, but short of the refused 4/s.
        let rises = calm(&l, 160).await;
        let settled = l.interval();
        assert!(rises >= 1, "{rises}");
        assert!(settled > ceiling, "{settled:?}");
        let refused_pace = 4.0;
        let settled_pace = 1.0 / settled.as_secs_f64();
        assert!(
            settled_pace <= refused_pace * BELOW_REFUSED * (1.0 + 1e-6),
            "{settled_pace}"
        );
        // Once the refusal is old news, calm reaches the configured rate,
        // and no further.
        calm(&l, 400).await;
        assert_eq!(l.interval(), ceiling);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unlucky_refusal_below_the_cap_does_not_lower_it() {
        let l = limiter("20/s");
        let ceiling = Duration::from_millis(50);
        let slot = l.until_ready().await;
        l.refused(slot); // at 20/s: probes stop at 98 % of it
        let slot = l.until_ready().await;
        l.refused(slot); // at 97 %: one unlucky gap
        calm(&l, 1000).await;
        let settled = 1.0 / l.interval().as_secs_f64();
        assert!(
            settled > 20.0 * 0.975 && settled <= 20.0 * 0.98 * (1.0 + 1e-6),
            "{settled}"
        );
        assert!(l.interval() > ceiling);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pace_has_a_floor() {
        let l = limiter("10/s");
        for _ in 0..200 {
            let slot = l.until_ready().await;
            l.refused(slot);
        }
        assert_eq!(l.interval(), Duration::from_millis(100).div_f64(FLOOR));
    }
}
