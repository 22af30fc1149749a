//! The worker pool: workers sending with an account each, one rate
//! limiter per account, one retry policy.
//!
//! ```text
//! feeder ──(chunks of jobs)──▶ Backlog ──▶ worker × concurrency ──▶ Recorder (files::results → files::state)
//!                               │  every attempt:
//!                               │  1. record `sending` (durably)
//!                               │  2. wait out the account's 429 pause
//!                               │  3. wait for a slot from the account's rate limiter
//!                               │  4. client.submit
//!                               ▼  5. classify: done / retry / stop the run
//! ```
//!
//! Every attempt, retries included, passes the limiter
//! ([`crate::util::limit`], no burst unless `--burst`), so the configured
//! rate is a ceiling on what the API sees, not on how many rows start. At
//! most `concurrency` requests are in flight because only that many
//! workers exist. Stopping is a [`CancellationToken`]: once cancelled no
//! request starts, and in-flight ones finish.
//!
//! Here: the workers, what they share, and why a run stops. One job's way
//! from first attempt to final state, the retry policy below, is
//! `attempt`'s. What a host paces and refuses per account (its client,
//! limiter, 429 pause and run of 429s) is `account`'s: every worker sends
//! with one account, and all take from the one backlog, so a job goes to
//! whichever account has a worker free. A run sends with one account, its
//! key's.
//!
//! # 429 is flow control
//! A 429 is the host pacing the whole account (not one worker), not a
//! verdict on the row, so it does not use up the row's `--max-attempts`
//! (only other retryable answers do). What it costs depends on what the host
//! said:
//! - a `Retry-After`: every worker of the account waits that long (a pause);
//! - nothing, the first few in a row: the limiter's pace gives way a few
//!   percent and the next request waits one interval of it (AIMD: see
//!   [`crate::util::limit`]). A host that allows exactly the configured
//!   rate with no tolerance costs a 429 now and then, not seconds of
//!   backoff each time;
//! - nothing, in a storm (more than `concurrency` + [`STORM_AFTER`](crate::util::limit::STORM_AFTER) in a
//!   row): the pace still gives way, and every worker also waits out a
//!   backoff that grows with the row's requests, as for a 5xx.
//!
//! What bounds a host that answers nothing but 429 is a breaker of its own:
//! [`RATE_LIMITED_GIVE_UP`] 429s in a row on one account, with no other answer
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

mod account;
mod attempt;

use std::num::NonZeroU32;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use account::Account;

use super::budget::Budget;
use super::counters::Counters;
use super::feeder::ChunkReceiver;
use crate::api::answer::Halt;
use crate::api::submit::Client;
use crate::files::results::Recorder;
use crate::job::Job;
use crate::util::limit::Slot;
use crate::util::units::Rate;

/// 429s in a row on one account, with no other answer between them, after
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
    /// Each job's price and the run's cap ([`super::budget`]).
    pub budget: Budget,
    /// [`crate::job::key_hash`] of every task ID the results file already
    /// holds as `submitted`, sorted: an answer repeating one of them is
    /// not trusted (see "Answers that don't add up"). Empty for a new file.
    pub earlier_task_ids: Vec<u64>,
}

/// Why a run stopped before its queue was empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The host's answers: refused, misdirected, or unavailable (too many
    /// rows in a row failed on server or connection errors).
    Host(Halt),
    /// The state store could not be written (a full disk): nothing more
    /// is sent, since nothing more could be recorded.
    Unrecorded,
    /// The caller cancelled (a signal).
    Cancelled,
    /// The next job would have taken the run past `--budget`: it and the
    /// rest stay `pending` (not an error: the cap did its job).
    BudgetSpent,
}

/// A worker's permission to send: the limiter's slot, if there is a
/// limiter (its pace hears how the request was answered).
#[derive(Debug, Clone, Copy)]
struct Turn {
    slot: Option<Slot>,
}

/// State the workers share.
struct PoolState {
    config: PoolConfig,
    /// The accounts the workers send with: each worker sends with one.
    accounts: Vec<Account>,
    recorder: Recorder,
    /// Consecutive rows that gave up on transient errors (circuit breaker).
    consecutive_give_ups: AtomicU32,
    /// Hash of each task ID answered in this run → the manifest line it
    /// went to (see "Answers that don't add up").
    task_ids: Mutex<std::collections::HashMap<u64, u64>>,
    stop: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    /// The budget is spent: no job is started any more, while those that
    /// reserved their price before it was go on to their end.
    budget_spent: std::sync::atomic::AtomicBool,
    counters: Arc<Counters>,
}

/// The jobs waiting to be sent, the pool's end of the chunk channel: the
/// feeder's chunks, opened one at a time into a queue every worker takes
/// from.
struct Backlog {
    chunks: tokio::sync::Mutex<ChunkReceiver>,
    ready: Mutex<std::collections::VecDeque<Job>>,
}

impl Backlog {
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

/// Submits every job that arrives on `chunks`, recording every change
/// through `recorder`. Returns why the pool stopped early, if it did.
pub async fn submit_all(
    config: PoolConfig,
    client: Client,
    chunks: ChunkReceiver,
    recorder: Recorder,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
) -> Option<StopReason> {
    let account = Account::new(client, config.rate, config.burst, config.concurrency);
    let shared = Arc::new(PoolState {
        config,
        accounts: vec![account],
        recorder,
        consecutive_give_ups: AtomicU32::new(0),
        task_ids: Mutex::default(),
        stop: shutdown.child_token(),
        reason: Mutex::new(None),
        budget_spent: std::sync::atomic::AtomicBool::new(false),
        counters,
    });

    let backlog = Arc::new(Backlog {
        chunks: tokio::sync::Mutex::new(chunks),
        ready: Mutex::default(),
    });
    let handles: Vec<_> = (0..shared.accounts.len())
        .flat_map(|account| {
            let workers = shared.accounts[account].concurrency;
            std::iter::repeat_n(account, workers)
        })
        .map(|account| tokio::spawn(work(shared.clone(), backlog.clone(), account)))
        .collect();
    for handle in handles {
        if let Err(e) = handle.await {
            // A worker panic is a bug; the job it held stays `sending` in
            // the state store and becomes `unknown` on the next run.
            tracing::error!("worker failed: {e}");
        }
    }
    // Closing the queue tells the feeder to stop reading.
    drop(backlog);
    if shutdown.is_cancelled() {
        shared.stop_with(StopReason::Cancelled);
    }
    shared.reason.lock().expect("poisoned").clone()
}

/// One worker: takes jobs from the backlog and submits each with the
/// account at `account`, until the backlog is empty or the pool stops.
async fn work(shared: Arc<PoolState>, backlog: Arc<Backlog>, account: usize) {
    let account = &shared.accounts[account];
    loop {
        if shared.stop.is_cancelled() {
            break;
        }
        let Some(job) = backlog.next(&shared.stop).await else {
            break;
        };
        if let Some(record) = shared.submit(account, &job).await {
            shared.recorder.record(record);
        }
    }
}

impl PoolState {
    fn stop_with(&self, reason: StopReason) {
        let mut slot = self.reason.lock().expect("poisoned");
        // A spent budget is a quiet end; any other reason says more.
        if slot.is_none() || *slot == Some(StopReason::BudgetSpent) {
            *slot = Some(reason);
        }
        self.stop.cancel();
    }

    /// The next job would go past `--budget`: no job is started from now
    /// on (each stays as it was), but the jobs that reserved their price
    /// are sent to their end; unlike [`PoolState::stop_with`], nothing is
    /// cancelled.
    fn budget_spent(&self) {
        self.budget_spent
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut slot = self.reason.lock().expect("poisoned");
        if slot.is_none() {
            *slot = Some(StopReason::BudgetSpent);
        }
    }

    fn is_budget_spent(&self) -> bool {
        self.budget_spent.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sleeps unless the run stops first; `false` when it stopped.
    async fn sleep(&self, wait: Duration) -> bool {
        tokio::select! {
            () = self.stop.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
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
}
