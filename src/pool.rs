//! The worker pool: N workers, one rate limiter, one retry policy.
//!
//! ```text
//! feeder (run.rs) ──(bounded queue)──▶ worker × concurrency ──▶ Recorder (report/)
//!                               │  every attempt:
//!                               │  1. journal `sending` (durably)
//!                               │  2. wait out a pool-wide 429 pause
//!                               │  3. take a cell from the rate limiter
//!                               │  4. client.submit
//!                               ▼  5. classify: done / retry / stop the run
//! ```
//!
//! Every attempt, retries included, passes the limiter, so the configured
//! rate is a ceiling on what the API sees, not on how many rows start. A 429
//! pauses the whole pool (the server is telling *us*, not one worker, to slow
//! down). At most `concurrency` requests are in flight because only that many
//! workers exist. Stopping is a [`CancellationToken`]: once cancelled no
//! request starts, and in-flight ones finish.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::RngExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{Client, ErrorClass, SubmitError};
use crate::config::Rate;
use crate::job::Job;
use crate::report::{Record, Recorder, Status};

/// First retry waits up to this long (full jitter), doubling per attempt.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// No single backoff waits longer than this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// How the pool behaves; a slice of [`crate::config::Config`].
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub concurrency: usize,
    pub rate: Rate,
    pub burst: NonZeroU32,
    pub max_attempts: u32,
    pub retry_ambiguous: bool,
    /// Consecutive rows exhausting their retries before the run gives up.
    pub give_up_after: u32,
}

/// Why a run stopped before its queue was empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// 401/402/403: the key or account was refused.
    Refused { status: u16, message: String },
    /// Too many rows in a row failed on server or connection errors.
    Unavailable(String),
    /// The results file could not be written.
    Journal,
    /// The caller cancelled (a signal).
    Cancelled,
}

/// Live counts, read by the progress display and the summary.
#[derive(Debug, Default)]
pub struct Counters {
    pub submitted: AtomicU64,
    pub failed: AtomicU64,
    pub unknown: AtomicU64,
    /// Rows put back to `pending` because the run stopped.
    pub returned: AtomicU64,
    /// Requests sent (attempts), retries included.
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl Counters {
    pub fn done(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
            + self.failed.load(Ordering::Relaxed)
            + self.unknown.load(Ordering::Relaxed)
    }
}

/// State the workers share.
struct Shared {
    config: PoolConfig,
    client: Client,
    recorder: Recorder,
    limiter: Option<DefaultDirectRateLimiter>,
    /// Set by a 429: nobody sends before this instant.
    pause_until: Mutex<Option<Instant>>,
    /// Consecutive rows that gave up on transient errors (circuit breaker).
    consecutive_give_ups: AtomicU32,
    stop: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    counters: Arc<Counters>,
}

/// Submits every job that arrives on `feed`, recording every change through
/// `recorder`. Returns why the pool stopped early, if it did.
pub async fn run(
    config: PoolConfig,
    client: Client,
    feed: mpsc::Receiver<Job>,
    recorder: Recorder,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) -> Option<StopReason> {
    let limiter = config.rate.interval().map(|interval| {
        let quota = Quota::with_period(interval)
            .expect("rate interval is never zero")
            .allow_burst(config.burst);
        RateLimiter::direct(quota)
    });
    let workers = config.concurrency.max(1);
    let shared = Arc::new(Shared {
        config,
        client,
        recorder,
        limiter,
        pause_until: Mutex::new(None),
        consecutive_give_ups: AtomicU32::new(0),
        stop: shutdown.child_token(),
        reason: Mutex::new(None),
        counters,
    });

    let feed = Arc::new(tokio::sync::Mutex::new(feed));
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (shared, feed) = (shared.clone(), feed.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let next = {
                    let mut feed = feed.lock().await;
                    tokio::select! {
                        biased;
                        () = shared.stop.cancelled() => None,
                        job = feed.recv() => job,
                    }
                };
                let Some(job) = next else { break };
                let record = shared.submit(&job).await;
                shared.recorder.record(record).await;
            }
        }));
    }
    for handle in handles {
        if let Err(e) = handle.await {
            // A worker panic is a bug; the row it held stays `sending` in
            // the journal and becomes `unknown` on the next run.
            tracing::error!("worker failed: {e}");
        }
    }
    // Closing the queue tells the feeder to stop reading.
    drop(feed);
    if shutdown.is_cancelled() {
        shared.stop_with(StopReason::Cancelled);
    }
    shared.reason.lock().expect("poisoned").clone()
}

impl Shared {
    fn stop_with(&self, reason: StopReason) {
        let mut slot = self.reason.lock().expect("poisoned");
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.stop.cancel();
    }

    /// Waits until this worker may send: no pool-wide pause, a limiter cell.
    /// `false` when the run stopped meanwhile.
    async fn wait_turn(&self) -> bool {
        loop {
            let until = *self.pause_until.lock().expect("poisoned");
            if let Some(until) = until.filter(|u| *u > Instant::now()) {
                tokio::select! {
                    () = self.stop.cancelled() => return false,
                    () = tokio::time::sleep_until(until) => continue,
                }
            }
            if let Some(limiter) = &self.limiter {
                tokio::select! {
                    () = self.stop.cancelled() => return false,
                    () = until_ready(limiter) => {}
                }
            }
            // A 429 may have arrived while this worker waited for the limiter.
            let paused = self
                .pause_until
                .lock()
                .expect("poisoned")
                .is_some_and(|u| u > Instant::now());
            if !paused {
                return !self.stop.is_cancelled();
            }
        }
    }

    fn pause_all(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut slot = self.pause_until.lock().expect("poisoned");
        if slot.is_none_or(|u| u < until) {
            *slot = Some(until);
        }
    }

    /// Sleeps unless the run stops first; `false` when it stopped.
    async fn sleep(&self, wait: Duration) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// Takes one job from first attempt to final state.
    async fn submit(&self, job: &Job) -> Record {
        let counters = &self.counters;
        let mut record = Record::pending(job);
        let mut last_error: Option<SubmitError> = None;
        let mut ambiguous = false;
        loop {
            if self.stop.is_cancelled() {
                return self.put_back(record, last_error, ambiguous);
            }
            record.attempts += 1;
            record.status = Status::Sending;
            if !self.recorder.record_durably(record.clone()).await {
                // Never send what cannot be recorded.
                record.attempts -= 1;
                self.stop_with(StopReason::Journal);
                return self.put_back(record, last_error, ambiguous);
            }
            // The limiter's slot comes last, right before the send: the gaps
            // the server sees are the limiter's, not the disk's. (A crash
            // while waiting leaves this row `unknown` though it was not
            // sent; that is at most one row per worker.)
            if !self.wait_turn().await {
                record.attempts -= 1;
                return self.put_back(record, last_error, ambiguous);
            }
            if record.attempts > 1 {
                counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let error = match self.client.submit(job).await {
                Ok(accepted) => {
                    self.consecutive_give_ups.store(0, Ordering::Relaxed);
                    counters.submitted.fetch_add(1, Ordering::Relaxed);
                    record.status = Status::Submitted;
                    record.task_id = accepted.task_id;
                    record.http_status = Some(accepted.http_status);
                    record.error.clear();
                    record.submitted_at = now_rfc3339();
                    return record;
                }
                Err(e) => e,
            };
            record.http_status = error.http_status();
            let class = error.class();
            tracing::debug!(key = %job.key, attempt = record.attempts, "{error}");
            let out_of_attempts = record.attempts >= self.config.max_attempts;
            match class {
                ErrorClass::Retry if !out_of_attempts => {
                    let backoff = full_jitter(record.attempts);
                    if error.is_rate_limited() {
                        counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                        self.pause_all(error.retry_after().unwrap_or(backoff));
                    } else if !self.sleep(error.retry_after().unwrap_or(backoff)).await {
                        return self.put_back(record, Some(error), ambiguous);
                    }
                    last_error = Some(error);
                }
                ErrorClass::Retry => {
                    if error.is_rate_limited() {
                        counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                    }
                    let give_ups = self.consecutive_give_ups.fetch_add(1, Ordering::Relaxed) + 1;
                    if give_ups >= self.config.give_up_after {
                        self.stop_with(StopReason::Unavailable(format!(
                            "{give_ups} rows in a row failed after {} attempts each; last error: {error}",
                            self.config.max_attempts
                        )));
                    }
                    let status = if ambiguous {
                        Status::Unknown
                    } else {
                        Status::Failed
                    };
                    return self.finish(
                        record,
                        status,
                        format!(
                            "gave up after {} attempts: {error}",
                            self.config.max_attempts
                        ),
                    );
                }
                ErrorClass::Ambiguous if self.config.retry_ambiguous && !out_of_attempts => {
                    ambiguous = true;
                    if !self.sleep(full_jitter(record.attempts)).await {
                        return self.put_back(record, Some(error), ambiguous);
                    }
                    last_error = Some(error);
                }
                ErrorClass::Ambiguous => {
                    return self.finish(record, Status::Unknown, error.to_string());
                }
                ErrorClass::Fatal => {
                    if let SubmitError::Status {
                        status, message, ..
                    } = &error
                    {
                        self.stop_with(StopReason::Refused {
                            status: *status,
                            message: message.clone(),
                        });
                    }
                    // The API refused the key, not this row: send it next run.
                    return self.put_back(record, Some(error), false);
                }
                ErrorClass::Row => {
                    return self.finish(record, Status::Failed, error.to_string());
                }
            }
        }
    }

    fn finish(&self, mut record: Record, status: Status, error: String) -> Record {
        let counter = match status {
            Status::Failed => &self.counters.failed,
            _ => &self.counters.unknown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        record.status = status;
        record.error = error;
        record
    }

    /// The run stopped before this job finished. If an earlier attempt may
    /// have been accepted the job is `unknown`; otherwise nothing was
    /// created and it goes back to `pending` for the next run.
    fn put_back(&self, record: Record, last: Option<SubmitError>, ambiguous: bool) -> Record {
        let error = last.map(|e| e.to_string()).unwrap_or_default();
        if ambiguous {
            return self.finish(record, Status::Unknown, error);
        }
        self.counters.returned.fetch_add(1, Ordering::Relaxed);
        Record {
            status: Status::Pending,
            error: if record.attempts == 0 {
                String::new()
            } else {
                format!("not finished when the run stopped; last error: {error}")
            },
            ..record
        }
    }
}

/// Waits for a cell from the limiter. Sleeps on tokio's timer (which wakes
/// at millisecond ticks, never early) until less than a tick remains, then
/// yields until the cell is due: a request leaves within microseconds of its
/// slot, so the gaps a server measures are the limiter's gaps. (governor's
/// own `until_ready` sleeps on a separate timer thread, whose wake-ups
/// wander by a millisecond or more on a busy machine: at 500/s that is half
/// the interval.)
async fn until_ready(limiter: &DefaultDirectRateLimiter) {
    use governor::clock::{Clock, DefaultClock};
    let clock = DefaultClock::default();
    loop {
        let Err(not_until) = limiter.check() else {
            return;
        };
        let wait = not_until.wait_time_from(clock.now());
        if wait > Duration::from_millis(2) {
            tokio::time::sleep(wait - Duration::from_millis(1)).await;
        } else {
            tokio::task::yield_now().await;
        }
    }
}

/// Exponential backoff with full jitter: uniform in
/// `[0, min(cap, base · 2^(attempt-1))]`. Jitter spreads workers that failed
/// together so they do not retry together.
pub fn full_jitter(attempt: u32) -> Duration {
    let ceiling = BACKOFF_BASE
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_CAP);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(0..=millis))
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..200 {
            assert!(full_jitter(1) <= BACKOFF_BASE);
            assert!(full_jitter(3) <= BACKOFF_BASE * 4);
            assert!(full_jitter(40) <= BACKOFF_CAP);
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| full_jitter(5)).collect();
        assert!(spread.len() > 10, "jitter should spread retries");
    }
}
