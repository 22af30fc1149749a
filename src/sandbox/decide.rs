//! The decision each generate request gets, made in one synchronous step
//! under the state lock ([`Shared::decide`]), in the order a real front end
//! works. Each phase is a function of its own; a phase that settles the
//! answer early ends the request there (see [`Step`]):
//!
//! 1. count it ([`Records::count_request`]); check the key (401) — only
//!    authenticated requests go further;
//! 2. draw its faults (always, so the seeded sequence depends only on the
//!    sequence of authenticated requests);
//! 3. rate limit (429 + Retry-After; faults drawn for it are discarded);
//! 4. the slow fault (counted, and its delay added, even when a later phase
//!    settles the answer), then the pre-empting faults: drop the
//!    connection, 500, 503 (HTML), 429;
//! 5. parse the body and run [`crate::job::check`] (400), the same rules
//!    batchgen applies before sending;
//! 6. charge `--credits-per-task` (402 "insufficient credits" when the
//!    balance cannot cover it, and no task);
//! 7. record the task (its clip ids, title, moderation and bad final URLs
//!    are decided now), start its callbacks if it has a `callback_url`;
//!    then maybe drop the connection anyway (`drop_after`).
//!
//! Whatever the answer, its status is counted before the lock is released,
//! so the stats are final before the client reads the answer. The handler
//! (`api`) then waits the delay decided here and answers.
//!
//! Its own module because the order of these phases *is* the imitation:
//! the routes only carry a request in and an [`Answer`] out.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::auth::presented_key;
use super::faults::{Early, Roll};
use super::limit::retry_after_secs;
use super::request::{parse_body, problems_message, to_fields};
use super::state::{Injected, Records, Task};
use super::{Shared, State, assets, callbacks};
use crate::job::JobFields;

/// What a generate request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer {
    Accepted(String),
    Error {
        status: StatusCode,
        message: String,
        retry_after: Option<u64>,
    },
    /// 503 with an HTML body.
    Unavailable,
    /// Close the connection without answering.
    Drop,
}

impl Answer {
    fn error(status: StatusCode, message: impl Into<String>) -> Answer {
        Answer::Error {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn too_many(retry_after: u64) -> Answer {
        Answer::Error {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "rate limit exceeded".into(),
            retry_after: Some(retry_after),
        }
    }

    fn status(&self) -> Option<StatusCode> {
        match self {
            Answer::Accepted(_) => Some(StatusCode::OK),
            Answer::Error { status, .. } => Some(*status),
            Answer::Unavailable => Some(StatusCode::SERVICE_UNAVAILABLE),
            Answer::Drop => None,
        }
    }
}

/// What a phase gives the next one; `Err` is the request's answer, settled
/// early: the later phases do not run.
type Step<T> = Result<T, Answer>;

impl Shared {
    /// Decides a generate request and records it; returns how long to wait
    /// before answering, and the answer.
    pub(super) fn decide(
        self: &Arc<Self>,
        now: Instant,
        path: &'static str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Duration, Answer) {
        let mut state = self.lock();
        let state = &mut *state;
        state.records.count_request(path);
        let mut delay = self.latency;
        let answer = self
            .phases(state, now, path, headers, body, &mut delay)
            .unwrap_or_else(|early| early);
        if let Some(status) = answer.status() {
            state.records.count_response(status.as_u16());
        }
        tracing::debug!(?answer, "sandbox generate");
        (delay, answer)
    }

    /// The phases of the module docs, 1 to 7, in order.
    fn phases(
        self: &Arc<Self>,
        state: &mut State,
        now: Instant,
        path: &'static str,
        headers: &HeaderMap,
        body: &[u8],
        delay: &mut Duration,
    ) -> Step<Answer> {
        let body = parse_body(body);
        self.authenticate(headers, body.as_ref().ok())?;
        let roll = state.dice.roll(&self.faults);
        rate_limit(state, now)?;
        *delay += self.slow_down(&mut state.records.counts.injected, roll);
        self.pre_empt(&mut state.records.counts.injected, roll)?;
        let fields = self.validate(body)?;
        self.charge(&mut state.records)?;
        let id = self.accept(state, now, path, fields);
        if roll.drop_after {
            state.records.counts.injected.drop_after += 1;
            return Ok(Answer::Drop);
        }
        Ok(Answer::Accepted(id))
    }

    /// The key presented by the header or the body's `token` (401).
    fn authenticate(&self, headers: &HeaderMap, body: Option<&Map<String, Value>>) -> Step<()> {
        self.check_key(presented_key(headers, body))
            .map_err(|message| Answer::error(StatusCode::UNAUTHORIZED, message))
    }

    /// The extra wait of the slow fault, if it fired (and counts it).
    fn slow_down(&self, injected: &mut Injected, roll: Roll) -> Duration {
        if !roll.slow {
            return Duration::ZERO;
        }
        injected.slow += 1;
        self.faults.slow_delay
    }

    /// The fault that answers instead of the API, if one fired (and counts
    /// it).
    fn pre_empt(&self, injected: &mut Injected, roll: Roll) -> Step<()> {
        let answer = match roll.early() {
            None => return Ok(()),
            Some(Early::DropBefore) => {
                injected.drop_before += 1;
                Answer::Drop
            }
            Some(Early::Fail500) => {
                injected.fail_500 += 1;
                Answer::error(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
            }
            Some(Early::Fail503) => {
                injected.fail_503 += 1;
                Answer::Unavailable
            }
            Some(Early::Fail429) => {
                injected.fail_429 += 1;
                Answer::too_many(self.fail_429_retry_after)
            }
        };
        Err(answer)
    }

    /// The body's fields, if they are well typed and pass the API's rules
    /// (400 otherwise).
    fn validate(&self, body: Result<Map<String, Value>, String>) -> Step<JobFields> {
        let fields = body
            .and_then(to_fields)
            .map_err(|message| Answer::error(StatusCode::BAD_REQUEST, message))?;
        let problems = self.rules.check(&fields);
        if !problems.is_empty() {
            return Err(Answer::error(
                StatusCode::BAD_REQUEST,
                problems_message(&problems),
            ));
        }
        Ok(fields)
    }

    /// Spends a task's credits, or refuses it (402) when the balance cannot
    /// cover them.
    fn charge(&self, records: &mut Records) -> Step<()> {
        let used = records
            .counts
            .credits_used
            .saturating_add(self.credits_per_task);
        if used > self.credits {
            return Err(Answer::error(
                StatusCode::PAYMENT_REQUIRED,
                "insufficient credits",
            ));
        }
        records.counts.credits_used = used;
        Ok(())
    }

    /// Records the task, with what is decided at acceptance, and starts its
    /// callbacks; returns its id.
    fn accept(
        self: &Arc<Self>,
        state: &mut State,
        now: Instant,
        path: &'static str,
        fields: JobFields,
    ) -> String {
        let id = state.dice.task_id();
        let clip_ids = [state.dice.clip_id(), state.dice.clip_id()];
        let title = match &fields.title {
            Some(title) => title.clone(),
            None => state.dice.title(),
        };
        let bad_audio = clip_ids
            .each_ref()
            .map(|c| assets::bad_audio_for(c, self.bad_audio, self.bad_audio_kind));
        let task = Task {
            id: id.clone(),
            fingerprint: fields.fingerprint(),
            moderation: self.lifecycle.moderation(&fields),
            bad_audio,
            path,
            clip_ids,
            title,
            fields,
            accepted_at: now,
            created_at: SystemTime::now(),
        };
        self.start_callbacks(state, &task);
        state.records.tasks.insert(task);
        id
    }

    /// Starts posting the task's clips to its `callback_url`, if it has
    /// one the sandbox may post to (see `callbacks`).
    fn start_callbacks(self: &Arc<Self>, state: &mut State, task: &Task) {
        let callback_url = task.fields.callback_url.as_deref().map(str::trim);
        let Some(url) = callback_url.filter(|u| !u.is_empty()) else {
            return;
        };
        if self.callback_any_host || callbacks::is_loopback(url) {
            callbacks::spawn(self, &mut state.callbacks, task.clone(), url.to_owned());
        } else {
            tracing::warn!(
                "sandbox: not posting callbacks to {url}: not a loopback address (see --callback-any-host)"
            );
        }
    }
}

/// Admits the request by the rate limiter, if there is one (429 with
/// `Retry-After` otherwise).
fn rate_limit(state: &mut State, now: Instant) -> Step<()> {
    if let Some(limiter) = &mut state.limiter
        && let Err(wait) = limiter.check(now)
    {
        state.records.counts.rate_limited += 1;
        return Err(Answer::too_many(retry_after_secs(wait)));
    }
    Ok(())
}
