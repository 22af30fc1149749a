//! The worker pool: N workers, one rate limiter, one retry policy.
//!
//! ```text
//! feeder (run.rs) ──(chunks of jobs)──▶ worker × concurrency ──▶ Recorder (report/)
//!                               │  every attempt:
//!                               │  1. journal `sending` (durably)
//!                               │  2. wait out a pool-wide 429 pause
//!                               │  3. wait for a slot from the rate limiter
//!                               │  4. client.submit
//!                               ▼  5. classify: done / retry / stop the run
//! ```
//!
//! Every attempt, retries included, passes the limiter, so the configured
//! rate is a ceiling on what the API sees, not on how many rows start. The
//! limiter is a `Pacer` (the server's GCRA, no burst) unless `--burst` asks
//! for governor's bursty GCRA. A 429 pauses the whole pool (the server is
//! telling *us*, not one worker, to slow down). At most `concurrency`
//! requests are in flight because only that many workers exist. Stopping is
//! a [`CancellationToken`]: once cancelled no request starts, and in-flight
//! ones finish.
//!
//! # 429 is flow control
//! A 429 is the host pacing the whole client, not a verdict on the row, so
//! it does not use up the row's `--max-attempts` (only other retryable
//! answers do). What bounds a host that answers nothing but 429 is the
//! pool-wide pause (each 429 holds every worker for its `Retry-After`, or a
//! backoff that grows with the row's requests), and a breaker of its own:
//! [`RATE_LIMITED_GIVE_UP`] 429s in a row, pool-wide, with no other answer
//! between them, or an unbroken run of 429s lasting
//! [`RATE_LIMITED_GIVE_UP_AFTER`] (a host asking `Retry-After: 300` each
//! time would otherwise hold a run for 100 × 5 minutes), stop the run as
//! unavailable (exit 69) with the rows not sent back to `pending`.
//!
//! # Answers that don't add up
//! Two rows of one run answered with the same task ID: the first keeps it,
//! the second is `unknown` with both named in its `error`. A task ID is one
//! task; the server either created this job's task under another ID (which
//! batchgen never saw) or none at all, so neither `submitted` (a wrong ID
//! would be collected twice) nor `pending` (a resend may bill twice) would
//! be honest. The check keeps a 64-bit hash of each ID and the line it
//! went to, not the IDs themselves, so a 10^6-row run pays ~16 bytes a row.
//! The same holds across runs: an answer repeating a task ID the results
//! file already holds as `submitted` for another job (read once before
//! sending, 8 bytes a row: [`PoolConfig::earlier_task_ids`]) is `unknown`
//! too. A 64-bit collision between two different IDs would make a row
//! `unknown`, never a resend: the safe side.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::submit::{Accepted, Client, ErrorClass, SubmitError};
use crate::files::results::{Record, Recorder, Status};
use crate::job::Job;
use crate::util::clock::now_rfc3339;
use crate::util::retry::full_jitter;
use crate::util::units::Rate;

/// 429s in a row, pool-wide and with no other answer between them, after
/// which the run stops as unavailable (see the module docs).
pub const RATE_LIMITED_GIVE_UP: u32 = 100;
/// How long an unbroken run of 429s may last before the run stops as
/// unavailable, however few they were (see the module docs).
pub const RATE_LIMITED_GIVE_UP_AFTER: Duration = Duration::from_secs(15 * 60);

/// Whether an unbroken run of `in_a_row` 429s that has lasted `lasted`
/// ends the run (see the module docs): by count, or by time however few.
fn rate_limit_exhausted(in_a_row: u32, lasted: Duration) -> bool {
    in_a_row >= RATE_LIMITED_GIVE_UP || lasted >= RATE_LIMITED_GIVE_UP_AFTER
}

/// How the pool behaves; a slice of [`crate::settings::Config`].
#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub concurrency: usize,
    pub rate: Rate,
    pub burst: NonZeroU32,
    pub max_attempts: u32,
    pub retry_ambiguous: bool,
    /// Consecutive rows exhausting their retries before the run gives up.
    pub give_up_after: u32,
    /// [`crate::job::key_hash`] of every task ID the results file already
    /// holds as `submitted`, sorted: an answer repeating one of them is
    /// not trusted (see "Answers that don't add up"). Empty for a new file.
    pub earlier_task_ids: Vec<u64>,
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
    /// The API answered with a redirect: the base URL is wrong (exit 78).
    Misdirected(String),
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
    limiter: Option<Limiter>,
    /// Set by a 429: nobody sends before this instant.
    pause_until: Mutex<Option<Instant>>,
    /// Consecutive rows that gave up on transient errors (circuit breaker).
    consecutive_give_ups: AtomicU32,
    /// 429s in a row, pool-wide (the rate limit's own breaker).
    rate_limited_in_a_row: AtomicU32,
    /// When the current run of 429s began; `None` after any other answer.
    rate_limited_since: Mutex<Option<Instant>>,
    /// Hash of each task ID answered in this run → the manifest line it
    /// went to (see "Answers that don't add up").
    task_ids: Mutex<std::collections::HashMap<u64, u64>>,
    stop: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    counters: Arc<Counters>,
}

/// How many jobs the feeder hands over at a time.
///
/// Why chunks: the feeder is a thread reading the manifest. Handing jobs over
/// one at a time wakes it (a context switch) for every job, which profiling
/// showed was a large share of the pool's own CPU time at thousands of
/// requests per second. A chunk is shared by all workers (see `Feed`), so
/// it never leaves one worker with a backlog while others idle.
pub const CHUNK: usize = 64;

/// The jobs waiting to be sent: the feeder's chunks, opened one at a time
/// into a queue every worker takes from.
struct Feed {
    chunks: tokio::sync::Mutex<mpsc::Receiver<Vec<Job>>>,
    ready: Mutex<std::collections::VecDeque<Job>>,
}

impl Feed {
    fn pop(&self) -> Option<Job> {
        self.ready.lock().expect("poisoned").pop_front()
    }

    /// The next job, or `None` when the feeder is done or the run stopped.
    async fn next(&self, stop: &CancellationToken) -> Option<Job> {
        loop {
            if let Some(job) = self.pop() {
                return Some(job);
            }
            // One worker at a time opens the next chunk; the others find
            // its jobs in `ready` once they get the lock.
            let mut chunks = self.chunks.lock().await;
            if let Some(job) = self.pop() {
                return Some(job);
            }
            let chunk = tokio::select! {
                biased;
                () = stop.cancelled() => return None,
                chunk = chunks.recv() => chunk?,
            };
            self.ready.lock().expect("poisoned").extend(chunk);
        }
    }
}

/// Submits every job that arrives on `feed`, recording every change through
/// `recorder`. Returns why the pool stopped early, if it did.
pub async fn run(
    config: PoolConfig,
    client: Client,
    feed: mpsc::Receiver<Vec<Job>>,
    recorder: Recorder,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) -> Option<StopReason> {
    let limiter = config.rate.interval().map(|interval| {
        if config.burst.get() == 1 {
            return Limiter::Paced(Pacer::new(interval));
        }
        let quota = Quota::with_period(interval)
            .expect("rate interval is never zero")
            .allow_burst(config.burst);
        Limiter::Bursty(RateLimiter::direct(quota))
    });
    let workers = config.concurrency.max(1);
    let shared = Arc::new(Shared {
        config,
        client,
        recorder,
        limiter,
        pause_until: Mutex::new(None),
        consecutive_give_ups: AtomicU32::new(0),
        rate_limited_in_a_row: AtomicU32::new(0),
        rate_limited_since: Mutex::new(None),
        task_ids: Mutex::default(),
        stop: shutdown.child_token(),
        reason: Mutex::new(None),
        counters,
    });

    let feed = Arc::new(Feed {
        chunks: tokio::sync::Mutex::new(feed),
        ready: Mutex::default(),
    });
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (shared, feed) = (shared.clone(), feed.clone());
        handles.push(tokio::spawn(async move {
            loop {
                if shared.stop.is_cancelled() {
                    break;
                }
                let Some(job) = feed.next(&shared.stop).await else {
                    break;
                };
                let record = shared.submit(&job).await;
                shared.recorder.record(record);
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

    /// Waits until this worker may send: no pool-wide pause, a limiter slot.
    /// `None` when the run stopped meanwhile; otherwise a [`Turn`] to keep
    /// until the request leaves.
    async fn wait_turn(&self) -> Option<Turn<'_>> {
        loop {
            let until = *self.pause_until.lock().expect("poisoned");
            if let Some(until) = until.filter(|u| *u > Instant::now()) {
                tokio::select! {
                    () = self.stop.cancelled() => return None,
                    () = tokio::time::sleep_until(until) => continue,
                }
            }
            let turn = match &self.limiter {
                Some(limiter) => tokio::select! {
                    () = self.stop.cancelled() => return None,
                    turn = limiter.until_ready() => turn,
                },
                None => Turn(None),
            };
            // A 429 may have arrived while this worker waited for the limiter.
            let paused = self
                .pause_until
                .lock()
                .expect("poisoned")
                .is_some_and(|u| u > Instant::now());
            if !paused {
                return (!self.stop.is_cancelled()).then_some(turn);
            }
        }
    }

    /// Sends `job` in `turn`, which ends the moment the request leaves (or
    /// fails before leaving): the pacer's next slot counts from then.
    async fn send(&self, job: &Job, turn: Turn<'_>) -> Result<Accepted, SubmitError> {
        if turn.0.is_none() {
            return self.client.submit(job).await;
        }
        let (leaving, left) = tokio::sync::oneshot::channel();
        let request = self.client.submit_announced(job, Some(leaving));
        tokio::pin!(request);
        let answer = tokio::select! {
            biased;
            _ = left => None,
            answer = &mut request => Some(answer),
        };
        // The instant this worker hears the request left, not the instant
        // of the body's poll: see `Pacer` for why the later one.
        drop(turn);
        match answer {
            Some(answer) => answer,
            None => request.await,
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
        // This row's 429s: requests, but not attempts that count against
        // `max_attempts`.
        let mut rate_limited = 0;
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
            let Some(turn) = self.wait_turn().await else {
                record.attempts -= 1;
                return self.put_back(record, last_error, ambiguous);
            };
            if record.attempts > 1 {
                counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            counters.requests.fetch_add(1, Ordering::Relaxed);
            let error = match self.send(job, turn).await {
                Ok(accepted) => {
                    self.consecutive_give_ups.store(0, Ordering::Relaxed);
                    self.rate_limited_in_a_row.store(0, Ordering::Relaxed);
                    *self.rate_limited_since.lock().expect("poisoned") = None;
                    if let Some(first) = self.claim_task_id(&accepted.task_id, job.line) {
                        record.http_status = Some(accepted.http_status);
                        let first = match first {
                            Some(line) => format!("the job on line {line} in this run"),
                            None => "another job in an earlier run (see the results file)".into(),
                        };
                        return self.finish(
                            record,
                            Status::Unknown,
                            format!(
                                "the server answered task ID {:?}, which it already gave {first}: not trusted as this job's task (check the account; rerun with --retry-unknown if this job was not created)",
                                accepted.task_id
                            ),
                        );
                    }
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
            if error.is_rate_limited() {
                rate_limited += 1;
                counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                let in_a_row = self.rate_limited_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                let lasted = self
                    .rate_limited_since
                    .lock()
                    .expect("poisoned")
                    .get_or_insert_with(Instant::now)
                    .elapsed();
                if rate_limit_exhausted(in_a_row, lasted) {
                    self.stop_with(StopReason::Unavailable(format!(
                        "the API answered {in_a_row} requests in a row with 429 (rate limited) over {}; last: {error}",
                        humantime::format_duration(Duration::from_secs(lasted.as_secs()))
                    )));
                    return self.put_back(record, Some(error), ambiguous);
                }
            } else {
                self.rate_limited_in_a_row.store(0, Ordering::Relaxed);
                *self.rate_limited_since.lock().expect("poisoned") = None;
            }
            let out_of_attempts = record.attempts - rate_limited >= self.config.max_attempts;
            match class {
                ErrorClass::Retry if !out_of_attempts => {
                    let backoff = full_jitter(record.attempts);
                    if error.is_rate_limited() {
                        self.pause_all(error.retry_after().unwrap_or(backoff));
                    } else if !self.sleep(error.retry_after().unwrap_or(backoff)).await {
                        return self.put_back(record, Some(error), ambiguous);
                    }
                    last_error = Some(error);
                }
                ErrorClass::Retry => {
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
                ErrorClass::Misdirected => {
                    self.stop_with(StopReason::Misdirected(error.to_string()));
                    // A redirect is not the server acting on the request:
                    // send it again once the base URL is fixed.
                    return self.put_back(record, Some(error), ambiguous);
                }
                ErrorClass::Row => {
                    return self.finish(record, Status::Failed, error.to_string());
                }
            }
        }
    }

    /// Records that `task_id` went to the job on `line`. `Some` when it is
    /// not new: `Some(Some(line))` when another job of this run had it,
    /// `Some(None)` when the results file held it from an earlier run.
    fn claim_task_id(&self, task_id: &str, line: u64) -> Option<Option<u64>> {
        let hash = crate::job::key_hash(task_id.as_bytes());
        if self.config.earlier_task_ids.binary_search(&hash).is_ok() {
            return Some(None);
        }
        let mut seen = self.task_ids.lock().expect("poisoned");
        match seen.entry(hash) {
            std::collections::hash_map::Entry::Occupied(first) if *first.get() != line => {
                Some(Some(*first.get()))
            }
            std::collections::hash_map::Entry::Occupied(_) => None,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }

    /// Settles the row; its `error` goes through [`crate::util::redact::text`]
    /// (a server's message can echo the key).
    fn finish(&self, mut record: Record, status: Status, error: String) -> Record {
        let counter = match status {
            Status::Failed => &self.counters.failed,
            _ => &self.counters.unknown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        record.status = status;
        record.error = crate::util::redact::text(&error).into_owned();
        record
    }

    /// The run stopped before this job finished. If an earlier attempt may
    /// have been accepted the job is `unknown`; otherwise nothing was
    /// created and it goes back to `pending` for the next run.
    fn put_back(&self, record: Record, last: Option<SubmitError>, ambiguous: bool) -> Record {
        let error = last
            .map(|e| crate::util::redact::text(&e.to_string()).into_owned())
            .unwrap_or_default();
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

/// The pool's rate limit.
enum Limiter {
    /// No burst (the default): [`Pacer`].
    Paced(Pacer),
    /// `--burst N`: governor's GCRA, which lets N requests go at once after
    /// a quiet spell, as asked.
    Bursty(DefaultDirectRateLimiter),
}

impl Limiter {
    /// Returns when this worker may send.
    async fn until_ready(&self) -> Turn<'_> {
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
struct Turn<'a>(Option<PacedTurn<'a>>);

struct PacedTurn<'a> {
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
struct Pacer {
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
    fn a_run_of_429s_ends_by_count_or_by_time() {
        let minute = Duration::from_secs(60);
        assert!(!rate_limit_exhausted(1, Duration::ZERO));
        assert!(!rate_limit_exhausted(RATE_LIMITED_GIVE_UP - 1, minute));
        assert!(rate_limit_exhausted(RATE_LIMITED_GIVE_UP, Duration::ZERO));
        // A host answering `Retry-After: 300` every time: three 429s span
        // the quarter hour, and that ends the run as surely as a hundred.
        assert!(!rate_limit_exhausted(3, 14 * minute));
        assert!(rate_limit_exhausted(4, 15 * minute));
    }

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
