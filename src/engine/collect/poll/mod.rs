//! The polling loop: polls in flight, the limits, and what an answer or a
//! failure does. When each task is due is the [`schedule`]'s (oldest
//! first, around the learnt time to finish: see its docs for the policy);
//! the estimate it learns is [`estimate`]'s. One request and its
//! classification are the wire layer's ([`crate::api::poll`]).
//!
//! ```text
//! Scheduler (next due, oldest first) ──▶ ≤ concurrency requests in flight
//!   packed: ≤ batch size tasks each  │ each: rate limiter cell, one request
//!   ▲ tasks come in (the window)     ▼ per task: answer → Catalog::apply → on_answer
//!                                      finished? Scheduler::finished : running
//!                                      failed?   the handling below, then Scheduler::failed
//! ```
//!
//! A request carries one task, or, where the provider answers many in one
//! request (a new-api relay, [`FeedClient::batch_size`]), up to that many:
//! the schedule packs them ([`Scheduler::next_batch`]). Either way the
//! rate limiter counts requests, `concurrency` bounds requests in flight,
//! and [`PollSummary::polls`] counts requests. A request that fails as a
//! whole (429, 5xx, a lost connection) counts once toward
//! [`GIVE_UP_AFTER`], and once for each of its tasks toward
//! [`TASK_ATTEMPTS`].
//!
//! Tasks come in over a channel while polling goes on: the caller keeps a
//! window of them (collect: at most [`super::WINDOW`] held at once), so a
//! million-task results file is polled with only the window in memory.
//!
//! A task is polled until its clips are finished by the one rule
//! ([`crate::api::feed`]: failed, `complete`, or `first` with "All generated
//! successfully."), judged on the catalog's rows so every clip seen counts.
//! The host's `data.type` is not asked: it says `SUCCESS` from the text
//! stage on. The deadline ([`super::CollectConfig::deadline`]) is the cap.
//!
//! Two limits apply, as the provider asks: a task is polled at most once
//! per `interval` (5 s by default), and all polls together pass one
//! no-burst rate limiter (`--poll-rate`). 429s, 5xx and connection errors
//! push the task back with the pool's backoff. A 429 also slows every poll,
//! as it slows submits: its `Retry-After` pauses them all; without one the
//! limiter's pace gives way (AIMD, [`crate::util::limit`]), and in a storm
//! (more than [`STORM_AFTER`](crate::util::limit::STORM_AFTER) beyond the polls in flight, in a row) every
//! poll also waits out a backoff; 401/402/403 end the run
//! ([`Halt::Refused`]); a 3xx ends it as
//! [`Halt::Misdirected`] (`HTTP 301 to <Location>: fix
//! --base-url`: API calls follow no redirect, see [`crate::api::submit`]);
//! [`GIVE_UP_AFTER`] failures in a row with no success between end it as
//! [`Halt::Unavailable`]. A task with [`TASK_ATTEMPTS`] bad answers
//! in a row (404, a body of the wrong shape) is left for the next run.

pub mod estimate;
pub mod schedule;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use schedule::Scheduler;

use super::CollectError;
use super::state::Task;
use crate::api::answer::Halt;
use crate::api::feed::TaskClips;
use crate::api::poll::{FeedClient, PollError};
use crate::files::state::{Applied, Catalog};
use crate::job::JobKey;
use crate::util::limit::{Limiter, Slot, is_storm};
use crate::util::retry::full_jitter;
use crate::util::units::Rate;

/// Failed polls in a row (any task) before the API counts as unreachable.
pub const GIVE_UP_AFTER: u32 = 10;
/// Bad answers in a row for one task before it is left for the next run.
pub const TASK_ATTEMPTS: u32 = 6;

/// How polling behaves; a slice of [`super::CollectConfig`].
#[derive(Debug, Clone)]
pub struct PollSettings {
    pub interval: Duration,
    pub rate: Rate,
    pub concurrency: usize,
}

/// What polling did.
#[derive(Debug, Clone, Default)]
pub struct PollSummary {
    /// Poll requests sent (one may carry many tasks).
    pub polls: u64,
    /// Tasks a callback finished before their poll was due (not polled).
    pub by_callback: u64,
    /// Tasks left for the next run after too many bad answers, with why.
    pub given_up: Vec<(JobKey, String)>,
}

/// A task in the window: what the poller needs, and what keeps the job in
/// memory while anyone works on it (dropped when the poller is done with
/// it, the job leaves memory once its downloads are done too).
pub struct Held<H> {
    pub task: Task,
    pub hold: H,
}

/// Polls every task that comes in until it is finished, given up, or
/// `stop` is cancelled; ends when `incoming` is closed and every task is
/// done. After each answer the clips go into `store` and `on_answer` is
/// called with what they did (the downloader's cue).
///
/// # Errors
/// [`Halt::Refused`] on 401/402/403, [`Halt::Misdirected`]
/// on a 3xx, [`Halt::Unavailable`] after [`GIVE_UP_AFTER`]
/// failures in a row; a catalog that cannot be read back.
pub async fn poll_until_finished<H>(
    client: FeedClient,
    settings: PollSettings,
    mut incoming: mpsc::Receiver<Held<H>>,
    mut callbacks: Option<mpsc::UnboundedReceiver<String>>,
    store: Arc<Catalog>,
    on_answer: impl Fn(&Held<H>, &Applied),
    stop: CancellationToken,
) -> Result<PollSummary, CollectError> {
    let limiter = Limiter::new(settings.rate, NonZeroU32::MIN).map(Arc::new);
    let client = Arc::new(client);
    let concurrency = settings.concurrency.max(1);
    let mut poller = Poller::new(settings.interval);
    if limiter.is_some() {
        poller.paced_in_flight = Some(u32::try_from(concurrency).unwrap_or(u32::MAX));
    }
    let mut in_flight: JoinSet<(Vec<usize>, Instant, Option<Slot>, Answers)> = JoinSet::new();
    let batch_size = client.batch_size();
    let mut open = true;

    loop {
        // Every task already waiting in the channel joins before a request
        // is packed, so tasks that came in together are polled together.
        while open && let Ok(held) = incoming.try_recv() {
            poller.add(held);
        }
        let now = Instant::now();
        while in_flight.len() < concurrency {
            let batch = poller.next_batch(now, batch_size, &store, &on_answer);
            if batch.is_empty() {
                break;
            }
            let task_ids: Vec<String> = batch
                .iter()
                .map(|&i| poller.task(i).task_id.clone())
                .collect();
            let (client, limiter) = (Arc::clone(&client), limiter.clone());
            poller.summary.polls += 1;
            poller.in_flight.extend(batch.iter().copied());
            in_flight.spawn(async move {
                let slot = match &limiter {
                    Some(limiter) => Some(limiter.until_ready().await),
                    None => None,
                };
                let sent = Instant::now();
                (batch, sent, slot, client.poll_many(&task_ids).await)
            });
        }
        if !open && poller.schedule.left() == 0 && in_flight.is_empty() {
            return Ok(poller.summary);
        }
        let wake = poller.wake().filter(|_| in_flight.len() < concurrency);
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(poller.summary),
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let Ok((batch, sent, slot, answers)) = joined else { continue };
                if let (Some(limiter), Some(slot)) = (&limiter, slot) {
                    pace(limiter, slot, &answers);
                }
                for i in &batch {
                    poller.in_flight.remove(i);
                }
                poller.settle(&batch, sent, answers, &store, &on_answer)?;
            }
            held = incoming.recv(), if open => match held {
                Some(held) => poller.add(held),
                None => open = false,
            },
            key = next_key(&mut callbacks), if callbacks.is_some() => match key {
                Some(key) => poller.called_back(&key, &store, &on_answer),
                None => callbacks = None,
            },
            () = sleep_until(wake) => {}
        }
    }
}

/// What one request came to: per task of it, its clips or why not; or
/// why the whole request failed.
type Answers = Result<Vec<Result<TaskClips, PollError>>, PollError>;

/// Tells the limiter how the request sent in `slot` was answered: a 429
/// that named no wait slows the pace, anything else counts as calm.
fn pace(limiter: &Limiter, slot: Slot, answers: &Answers) {
    let unnamed_429 = |e: &PollError| e.rate_limited() == Some(None);
    let refused = match answers {
        Err(e) => unnamed_429(e),
        Ok(each) => each.iter().any(|a| a.as_ref().is_err_and(unnamed_429)),
    };
    if refused {
        limiter.refused(slot);
    } else {
        limiter.answered(slot);
    }
}

/// One task of the window, by its schedule index.
struct Entry<H> {
    held: Held<H>,
    /// Bad answers in a row.
    failures: u32,
}

/// The schedule, the window's tasks, and the failure counts that move it.
struct Poller<H> {
    schedule: Scheduler,
    /// By schedule index; `None` once ended (the index is reused).
    tasks: Vec<Option<Entry<H>>>,
    /// Schedule index by job key, for the window's tasks.
    by_key: std::collections::HashMap<JobKey, usize>,
    /// Schedule indexes in flight (a callback must not end one of them).
    in_flight: std::collections::HashSet<usize>,
    /// No poll starts before this (a 429's pause).
    pause_until: Instant,
    /// Retryable failures in a row, any task.
    failures_in_a_row: u32,
    /// With a rate limit, the polls that may be in flight together, for
    /// telling a storm ([`is_storm`]: a 429 with no `Retry-After` then
    /// pauses every poll); `None` without one (every such 429 pauses them).
    paced_in_flight: Option<u32>,
    summary: PollSummary,
    /// Clock readings for placing tasks by their submission time.
    wall: chrono::DateTime<chrono::Utc>,
    start: Instant,
}

impl<H> Poller<H> {
    fn new(interval: Duration) -> Poller<H> {
        let start = Instant::now();
        Poller {
            schedule: Scheduler::new(&[], interval, start),
            tasks: Vec::new(),
            by_key: std::collections::HashMap::new(),
            in_flight: std::collections::HashSet::new(),
            pause_until: start,
            failures_in_a_row: 0,
            paced_in_flight: None,
            summary: PollSummary::default(),
            wall: chrono::Utc::now(),
            start,
        }
    }

    /// A task joins the window, placed by its submission time (one
    /// without a usable `submitted_at` counts as submitted now).
    fn add(&mut self, held: Held<H>) {
        let now = Instant::now();
        let wall = self.wall + chrono::Duration::from_std(now - self.start).unwrap_or_default();
        let i = self.schedule.add(held.task.age(wall), now);
        if self.tasks.len() <= i {
            self.tasks.resize_with(i + 1, || None);
        }
        self.by_key.insert(held.task.key.clone(), i);
        self.tasks[i] = Some(Entry { held, failures: 0 });
    }

    fn entry(&mut self, i: usize) -> &mut Entry<H> {
        self.tasks[i]
            .as_mut()
            .expect("a task in flight is in the window")
    }

    fn task(&mut self, i: usize) -> &Task {
        &self.entry(i).held.task
    }

    /// Task `i` leaves the window.
    fn end(&mut self, i: usize) {
        if let Some(entry) = self.tasks[i].take() {
            self.by_key.remove(&entry.held.task.key);
        }
    }

    /// A callback changed job `key`: its complete clips go to `on_answer`
    /// now, and a finished task leaves the schedule (unless a poll of it
    /// is in flight: its answer ends it).
    fn called_back(&mut self, key: &str, store: &Catalog, on_answer: impl Fn(&Held<H>, &Applied)) {
        let Some(&i) = self.by_key.get(key) else {
            return;
        };
        if self.in_flight.contains(&i) {
            return;
        }
        if !self.finished_elsewhere(i, store, &on_answer)
            && let (Some(entry), Ok(rows)) = (self.tasks[i].as_ref(), store.rows_of(key))
        {
            let applied = Applied {
                changed: true,
                finished: false,
                rows,
            };
            on_answer(&entry.held, &applied);
        }
    }

    /// The tasks of the next request at `now` (empty: none due, or polls
    /// paused): up to `max`, packed by the schedule, without those a
    /// callback finished meanwhile. Tasks due within the next interval
    /// ride along only in a request of several.
    fn next_batch(
        &mut self,
        now: Instant,
        max: usize,
        store: &Catalog,
        on_answer: impl Fn(&Held<H>, &Applied),
    ) -> Vec<usize> {
        let mut batch = Vec::new();
        if self.pause_until > now {
            return batch;
        }
        let ahead = if max > 1 {
            self.schedule.interval()
        } else {
            Duration::ZERO
        };
        loop {
            let room = max - batch.len();
            let due = self.schedule.next_batch(now, room, ahead);
            if due.is_empty() {
                return batch;
            }
            for i in due {
                if !self.finished_elsewhere(i, store, &on_answer) {
                    batch.push(i);
                }
            }
            if batch.len() == max {
                return batch;
            }
        }
    }

    /// What one request came to, for each of its tasks: a failure of the
    /// whole request is handled once for the run, then for every task.
    fn settle(
        &mut self,
        batch: &[usize],
        sent: Instant,
        answers: Answers,
        store: &Catalog,
        on_answer: impl Fn(&Held<H>, &Applied),
    ) -> Result<(), CollectError> {
        match answers {
            Err(e) => {
                let pause = self.request_failed(&e)?;
                for &i in batch {
                    self.task_failed(i, sent, &e, pause);
                }
            }
            Ok(answers) => {
                for (&i, answer) in batch.iter().zip(answers) {
                    match answer {
                        Ok(clips) => self.answered(i, sent, &clips, store, &on_answer)?,
                        Err(e) => {
                            let pause = self.request_failed(&e)?;
                            self.task_failed(i, sent, &e, pause);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// When the next task is due (not before a pause ends).
    fn wake(&self) -> Option<Instant> {
        self.schedule.wake().map(|at| at.max(self.pause_until))
    }

    /// An answer: its clips go into the catalog; the task is done if its
    /// rows are finished, else the schedule places its next poll.
    fn answered(
        &mut self,
        i: usize,
        sent: Instant,
        clips: &TaskClips,
        store: &Catalog,
        on_answer: impl Fn(&Held<H>, &Applied),
    ) -> Result<(), CollectError> {
        self.failures_in_a_row = 0;
        let entry = self.entry(i);
        entry.failures = 0;
        let task = &entry.held.task;
        let applied = store.apply(&task.key, &task.task_id, clips)?;
        on_answer(&entry.held, &applied);
        let model = clips.clips.first().map_or("", |c| c.model_name.as_str());
        // The catalog holds every clip seen so far; `data.type`
        // (SUCCESS from the text stage on) decides nothing.
        if applied.finished {
            self.schedule.finished(i, sent, model, Instant::now());
            self.end(i);
        } else {
            self.schedule.running(i, sent, model);
        }
        Ok(())
    }

    /// Whether task `i`, due now, was finished meanwhile by a callback
    /// (the receiver inside the run writes the same catalog): then it
    /// leaves the schedule without a poll, its clips go to `on_answer`
    /// as a poll's would.
    fn finished_elsewhere(
        &mut self,
        i: usize,
        store: &Catalog,
        on_answer: impl Fn(&Held<H>, &Applied),
    ) -> bool {
        let entry = self.entry(i);
        let task = &entry.held.task;
        let Ok(rows) = store.rows_of(&task.key) else {
            return false;
        };
        let job = crate::files::catalog::JobRows::new(rows);
        if job.rows.is_empty() || !job.finished(&task.task_id) {
            return false;
        }
        let applied = Applied {
            changed: false,
            finished: true,
            rows: job.rows,
        };
        on_answer(&entry.held, &applied);
        self.summary.by_callback += 1;
        self.schedule.give_up(i, Instant::now());
        self.end(i);
        true
    }

    /// A failed request (or one task's failed answer in a batch), for the
    /// run: it ends (refused, misdirected, too many in a row), or a 429
    /// pauses every poll; returns that pause.
    fn request_failed(&mut self, e: &PollError) -> Result<Option<Duration>, CollectError> {
        if let Some(status) = e.refused() {
            return Err(Halt::Refused {
                status,
                message: e.to_string(),
            }
            .into());
        }
        if e.is_misdirected() {
            return Err(Halt::Misdirected(e.to_string()).into());
        }
        if e.is_retryable() {
            self.failures_in_a_row += 1;
            if self.failures_in_a_row >= GIVE_UP_AFTER {
                return Err(Halt::Unavailable(format!(
                    "{} feed polls in a row failed; last: {e}",
                    self.failures_in_a_row
                ))
                .into());
            }
        }
        let storm = self
            .paced_in_flight
            .is_none_or(|in_flight| is_storm(self.failures_in_a_row, in_flight));
        let pause = e.rate_limited().and_then(|retry_after| match retry_after {
            Some(wait) => Some(wait),
            None => storm.then(|| full_jitter(self.failures_in_a_row)),
        });
        if let Some(pause) = pause {
            self.pause_until = self.pause_until.max(Instant::now() + pause);
        }
        Ok(pause)
    }

    /// Task `i`'s poll failed: it is given up, or due again after a
    /// backoff (and not before `pause`).
    fn task_failed(&mut self, i: usize, sent: Instant, e: &PollError, pause: Option<Duration>) {
        let entry = self.entry(i);
        entry.failures += 1;
        let failures = entry.failures;
        let key = entry.held.task.key.clone();
        tracing::debug!(key = %key, "poll failed: {e}");
        if failures >= TASK_ATTEMPTS {
            tracing::warn!(key = %key, "leaving the task for the next run: {e}");
            self.summary.given_up.push((key, e.to_string()));
            self.schedule.give_up(i, Instant::now());
            self.end(i);
            return;
        }
        let interval = self.schedule.interval();
        let wait = full_jitter(failures)
            .max(interval)
            .max(pause.unwrap_or_default());
        self.schedule.failed(i, sent, Instant::now() + wait);
    }
}

async fn next_key(keys: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match keys {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
