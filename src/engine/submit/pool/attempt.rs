//! One job's way through the pool, from its first attempt to its final
//! state: record `sending`, wait for a turn, send, then settle the row or
//! decide the next attempt (the retry policy of the module docs of
//! [`super`], and the checks of "Answers that don't add up").

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::account::Account;
use super::{PoolState, StopReason, Turn};
use crate::api::answer::Halt;
use crate::api::submit::{Accepted, ErrorClass, SubmitError};
use crate::files::results::{Record, Status};
use crate::job::Job;
use crate::util::clock::now_rfc3339;
use crate::util::retry::full_jitter;

/// A job's row while the pool works on it, and what its attempts found.
struct Row {
    record: Record,
    /// The last failed attempt's error, for a row put back.
    last_error: Option<SubmitError>,
    /// Whether an earlier attempt may have been accepted.
    ambiguous: bool,
    /// This row's 429s: requests, but not attempts that count against
    /// `max_attempts`.
    rate_limited: u32,
    /// Whether any attempt reached the host (anything but a failed
    /// connect): a row none of whose requests left was never billed.
    reached: bool,
    /// The turn the latest attempt was sent in.
    turn: Turn,
}

/// What a failed attempt leads to.
enum Next {
    /// Another attempt (its wait already waited).
    Again(Row),
    /// The row's final state for this run.
    Done(Record),
}

impl PoolState {
    /// Takes one job from first attempt to final state.
    /// `None` when the job was not started: its price would take the run
    /// past `--budget`, or an earlier job's did (no job is started after
    /// that; the job's row is left as it is).
    pub(super) async fn submit(&self, account: &Account, job: &Job) -> Option<Record> {
        let budget = &self.config.budget;
        let price = budget.price(job);
        if self.is_budget_spent() {
            return None;
        }
        if !budget.reserve(&self.counters.credits, price) {
            if budget.limit().is_some() {
                self.budget_spent();
            }
            return None;
        }
        let record = self.attempts(account, job).await;
        // Nothing was created (refused as a row, never reached, or put
        // back): the job cost nothing.
        if matches!(record.status, Status::Failed | Status::Pending) {
            budget.release(&self.counters.credits, price);
        }
        Some(record)
    }

    /// The job's attempts with `account`, from the first to its final
    /// state.
    async fn attempts(&self, account: &Account, job: &Job) -> Record {
        let mut row = Row {
            record: Record::pending(job),
            last_error: None,
            ambiguous: false,
            rate_limited: 0,
            reached: false,
            turn: Turn { slot: None },
        };
        loop {
            let Some(turn) = self.begin_attempt(account, &mut row.record).await else {
                return self.put_back(row.record, row.last_error, row.ambiguous);
            };
            row.turn = turn;
            let answer = account.client.submit(job).await;
            let rate_limited = answer.as_ref().is_err_and(SubmitError::is_rate_limited);
            account.answered(turn, rate_limited);
            let error = match answer {
                Ok(accepted) => {
                    account.count_rate_limit(false);
                    return self.accepted(row.record, job, accepted);
                }
                Err(e) => e,
            };
            row = match self.after_failure(account, job, row, error).await {
                Next::Again(row) => row,
                Next::Done(record) => return record,
            };
        }
    }

    /// Records the row `sending` (durably), then waits for a turn to send.
    /// `None` when it must not be sent: the run stopped, or the row could
    /// not be recorded (which stops the run). Counts the request.
    async fn begin_attempt(&self, account: &Account, record: &mut Record) -> Option<Turn> {
        if self.stop.is_cancelled() {
            return None;
        }
        record.attempts += 1;
        record.status = Status::Sending;
        if !self.recorder.record_durably(record.clone()).await {
            // Never send what cannot be recorded.
            record.attempts -= 1;
            self.stop_with(StopReason::Unrecorded);
            return None;
        }
        // The limiter's slot comes last, right before the send: the gaps
        // the server sees are the limiter's, not the disk's. (A crash
        // while waiting leaves this row `unknown` though it was not
        // sent; that is at most one row per worker.)
        let Some(turn) = account.wait_turn(&self.stop).await else {
            record.attempts -= 1;
            return None;
        };
        if record.attempts > 1 {
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        Some(turn)
    }

    /// The API accepted the job: `submitted`, unless its task ID repeats
    /// one already given to another job (the pool's docs, "Answers that
    /// don't add up").
    fn accepted(&self, mut record: Record, job: &Job, accepted: Accepted) -> Record {
        self.consecutive_give_ups.store(0, Ordering::Relaxed);
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
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        record.status = Status::Submitted;
        record.task_id = accepted.task_id;
        record.http_status = Some(accepted.http_status);
        record.error.clear();
        record.submitted_at = now_rfc3339();
        record
    }

    /// Decides what a failed attempt leads to, by its [`ErrorClass`]:
    /// wait and try again, settle the row, or stop the run.
    async fn after_failure(
        &self,
        account: &Account,
        job: &Job,
        mut row: Row,
        error: SubmitError,
    ) -> Next {
        row.record.http_status = error.http_status();
        let class = error.class();
        tracing::debug!(key = %job.key, attempt = row.record.attempts, "{error}");
        if !matches!(error, SubmitError::Connect(_)) {
            row.reached = true;
        }
        if error.is_rate_limited() {
            row.rate_limited += 1;
        }
        if self.rate_limits_exhausted(account, &error) {
            return Next::Done(self.put_back(row.record, Some(error), row.ambiguous));
        }
        let out_of_attempts = row.record.attempts - row.rate_limited >= self.config.max_attempts;
        match class {
            ErrorClass::Retry if !out_of_attempts => {
                let backoff = full_jitter(row.record.attempts);
                if error.is_rate_limited() {
                    account.rate_limited(&error, row.turn, backoff);
                } else if !self.sleep(error.retry_after().unwrap_or(backoff)).await {
                    return Next::Done(self.put_back(row.record, Some(error), row.ambiguous));
                }
                row.last_error = Some(error);
                Next::Again(row)
            }
            ErrorClass::Retry => Next::Done(self.give_up(row, &error)),
            ErrorClass::Ambiguous if self.config.retry_ambiguous && !out_of_attempts => {
                row.ambiguous = true;
                // The request may have created (and billed) a task: the
                // resend is paid for again, or not sent.
                let price = self.config.budget.price(job);
                if !self.config.budget.reserve(&self.counters.credits, price) {
                    if self.config.budget.limit().is_some() {
                        self.budget_spent();
                    }
                    return Next::Done(self.finish(row.record, Status::Unknown, error.to_string()));
                }
                if !self.sleep(full_jitter(row.record.attempts)).await {
                    return Next::Done(self.put_back(row.record, Some(error), row.ambiguous));
                }
                row.last_error = Some(error);
                Next::Again(row)
            }
            ErrorClass::Ambiguous => {
                Next::Done(self.finish(row.record, Status::Unknown, error.to_string()))
            }
            ErrorClass::Fatal => {
                if let Some((status, message)) = error.refusal() {
                    self.stop_with(StopReason::Host(Halt::Refused { status, message }));
                }
                // The API refused the key, not this row: send it next run.
                Next::Done(self.put_back(row.record, Some(error), false))
            }
            ErrorClass::Misdirected => {
                self.stop_with(StopReason::Host(Halt::Misdirected(error.to_string())));
                // A redirect is not the server acting on the request:
                // send it again once the base URL is fixed.
                Next::Done(self.put_back(row.record, Some(error), row.ambiguous))
            }
            ErrorClass::Row => {
                Next::Done(self.finish(row.record, Status::Failed, error.to_string()))
            }
        }
    }

    /// Counts `error` in `account`'s run of 429s (any other answer ends
    /// the run of them), and stops the run as unavailable when the run of
    /// them is too long (the pool's docs, "429 is flow control"). `true` when
    /// it stopped the run.
    fn rate_limits_exhausted(&self, account: &Account, error: &SubmitError) -> bool {
        if error.is_rate_limited() {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        let Some((in_a_row, lasted)) = account.count_rate_limit(error.is_rate_limited()) else {
            return false;
        };
        self.stop_with(StopReason::Host(Halt::Unavailable(format!(
            "the API answered {in_a_row} requests in a row with 429 (rate limited) over {}; last: {error}",
            humantime::format_duration(Duration::from_secs(lasted.as_secs()))
        ))));
        true
    }

    /// A row out of attempts on transient errors: `failed` (or `unknown`
    /// if an earlier attempt may have been accepted; or back to `pending`
    /// when no attempt ever reached the host: nothing was sent, nothing
    /// billed, and a rerun sends it without `--retry-failed`), and one more
    /// for the circuit breaker, which stops the run after `give_up_after`
    /// in a row.
    fn give_up(&self, row: Row, error: &SubmitError) -> Record {
        let give_ups = self.consecutive_give_ups.fetch_add(1, Ordering::Relaxed) + 1;
        if give_ups >= self.config.give_up_after {
            self.stop_with(StopReason::Host(Halt::Unavailable(format!(
                "{give_ups} rows in a row failed after {} attempts each; last error: {error}",
                self.config.max_attempts
            ))));
        }
        if !row.reached && !row.ambiguous {
            return Record {
                status: Status::Pending,
                error: crate::util::redact::text(&format!(
                    "never sent: none of {} attempts reached the host ({error}); the next run sends it",
                    self.config.max_attempts
                ))
                .into_owned(),
                ..row.record
            };
        }
        let status = if row.ambiguous {
            Status::Unknown
        } else {
            Status::Failed
        };
        self.finish(
            row.record,
            status,
            format!(
                "gave up after {} attempts: {error}",
                self.config.max_attempts
            ),
        )
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
