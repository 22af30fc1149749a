//! The decision each generate request gets, made in one synchronous step
//! under the state lock ([`Host::decide`]), in the order a real front end
//! works. Each phase is a function of its own; a phase that settles the
//! answer early ends the request there (see [`Step`]):
//!
//! 1. count it ([`Records::count_request`]); find its account by its key
//!    (or gcui's cookie; 401 for an unknown one) and count it there —
//!    only authenticated requests go further;
//! 2. draw its faults (always, so the seeded sequence depends only on the
//!    sequence of authenticated requests);
//! 3. the account's rate limit (429 + Retry-After, or the face's word for
//!    it; faults drawn for it are discarded);
//! 4. the slow fault (counted, and its delay added, even when a later phase
//!    settles the answer), then the pre-empting faults: drop the
//!    connection, 500, 503 (HTML), 429;
//! 5. read the body as the face does and check it with the rules for its
//!    provider (400, or the face's "too long"), the same rules batchgen
//!    applies before sending to that provider;
//! 6. charge the account `--credits-per-task` (402 "insufficient
//!    credits", or the face's word for it, when its balance cannot cover
//!    it, and no task);
//! 7. record the task as the account's (its clip ids, title and style, moderation, a 531
//!    failure, watermarked lyrics, bad final URLs and the clips' takes are
//!    decided now), start its callbacks if it has a `callback_url`;
//!    then maybe drop the connection anyway (`drop_after`).
//!
//! A phase settles a [`Refusal`] or a task; the face (`face`) words it as
//! its provider does. Whatever the answer, its status (and body code) is
//! counted before the lock is released, so the stats are final before the
//! client reads the answer. The handler (`api`) then waits the delay
//! decided here and answers.
//!
//! Its own module because the order of these phases *is* the imitation:
//! the routes only carry a request in and a [`Reply`] out.

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::HeaderMap;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::accounts::AccountId;
use super::face::{Outcome, Refusal, Reply};
use super::faults::{Early as Fault, Roll, drawn_for};
use super::lifecycle::Phase;
use super::limit::retry_after_secs;
use super::request::{parse_body, problems_message};
use super::state::{Injected, Records, Task};
use super::{Host, State, assets, audio, callbacks, written};
use crate::job::{JobFields, ProblemKind, Provider};

/// How a request ends other than with a task answered: a refusal the face
/// words, or a connection closed without an answer (after `drop_after`,
/// the task exists).
#[derive(Debug, Clone)]
enum Early {
    Refused(Refusal),
    Drop,
}

/// What a phase gives the next one; `Err` is the request's fate, settled
/// early: the later phases do not run.
type Step<T> = Result<T, Early>;

fn refuse(refusal: Refusal) -> Early {
    Early::Refused(refusal)
}

impl Host {
    /// Decides a generate request and records it; returns how long to wait
    /// before answering, and the answer in the face's words (`None`: close
    /// the connection without one).
    pub(super) fn decide(
        self: &Arc<Self>,
        now: Instant,
        path: &'static str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Duration, Option<Reply>) {
        let mut state = self.lock();
        let state = &mut *state;
        state.records.count_request(path);
        let mut delay = self.latency;
        let outcome: Outcome = match self.phases(state, now, path, headers, body, &mut delay) {
            Ok(task) => Ok(task),
            Err(Early::Refused(refusal)) => Err(refusal),
            Err(Early::Drop) => {
                tracing::debug!("sandbox generate: connection dropped");
                return (delay, None);
            }
        };
        let reply = self.face.reply(self, &outcome);
        state
            .records
            .count_response(reply.status.as_u16(), reply.body_code());
        let reply = Some(reply);
        tracing::debug!(?reply, "sandbox generate");
        (delay, reply)
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
    ) -> Step<Task> {
        let body = parse_body(body);
        let account = self.authenticate(headers, body.as_ref().ok())?;
        state.records.account(account).requests += 1;
        let roll = state.dice.roll(&self.faults);
        rate_limit(state, account, now)?;
        *delay += self.slow_down(&mut state.records.counts.injected, roll);
        self.pre_empt(&mut state.records.counts.injected, roll)?;
        let (fields, request) = self.validate(path, body)?;
        self.charge(&mut state.records, account, now)?;
        let task = self.accept(state, account, now, path, fields, request);
        if roll.drop_after {
            state.records.counts.injected.drop_after += 1;
            return Err(Early::Drop);
        }
        Ok(task)
    }

    /// The account presented by the header or the body's `token` (or
    /// gcui's cookie); 401 for none.
    fn authenticate(
        &self,
        headers: &HeaderMap,
        body: Option<&Map<String, Value>>,
    ) -> Step<AccountId> {
        self.account_of(headers, body)
            .map_err(|message| refuse(Refusal::Unauthorized(message)))
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
        let early = match roll.early() {
            None => return Ok(()),
            Some(Fault::DropBefore) => {
                injected.drop_before += 1;
                Early::Drop
            }
            Some(Fault::Fail500) => {
                injected.fail_500 += 1;
                refuse(Refusal::ServerError)
            }
            Some(Fault::Fail503) => {
                injected.fail_503 += 1;
                refuse(Refusal::Unavailable)
            }
            Some(Fault::Fail429) => {
                injected.fail_429 += 1;
                refuse(Refusal::RateLimited {
                    retry_after: self.fail_429_retry_after,
                })
            }
        };
        Err(early)
    }

    /// The body's fields as the face reads them, if they pass the rules for
    /// its provider (the face's refusal otherwise: 400, or the rules'
    /// "too long"); and the body as received, for the task.
    fn validate(
        &self,
        path: &str,
        body: Result<Map<String, Value>, String>,
    ) -> Step<(JobFields, String)> {
        let mut body = body.map_err(|message| refuse(Refusal::Invalid(message)))?;
        let fields = self.face.read(path, &body, &self.rules).map_err(refuse)?;
        let problems = self.rules.check(&fields);
        if problems
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::TooLong { .. }))
        {
            return Err(refuse(Refusal::TooLong));
        }
        if !problems.is_empty() {
            return Err(refuse(Refusal::Invalid(problems_message(&problems))));
        }
        body.remove("token");
        let request = Value::Object(body).to_string();
        Ok((fields, request))
    }

    /// Spends a task's credits from the account, or refuses it when its
    /// balance (refunds due by `now` given back) cannot cover them.
    fn charge(&self, records: &mut Records, account: AccountId, now: Instant) -> Step<()> {
        let spent = records.credits_spent(now, self.credits_per_task, account);
        if spent.saturating_add(self.credits_per_task) > self.account(account).credits {
            records.account(account).no_credits += 1;
            return Err(refuse(Refusal::NoCredits));
        }
        records.spend(account, self.credits_per_task);
        Ok(())
    }

    /// Records the task, with what is decided at acceptance, and starts its
    /// callbacks; returns a copy of it.
    fn accept(
        self: &Arc<Self>,
        state: &mut State,
        account: AccountId,
        now: Instant,
        path: &'static str,
        fields: JobFields,
        request: String,
    ) -> Task {
        // Task ids and clip ids come from separate seeded streams, so the
        // order of these draws changes neither.
        let clip_ids = [state.dice.clip_id(), state.dice.clip_id()];
        let id = self.face.task_id(&mut state.dice, &clip_ids);
        let (title, style) = written::title_and_style(&fields);
        let bad_audio = clip_ids
            .each_ref()
            .map(|c| assets::bad_audio_for(c, self.bad_audio, self.bad_audio_kind));
        let watermarked = clip_ids
            .each_ref()
            .map(|c| written::watermarked(c, self.fail_captcha));
        let takes = audio::takes_for(&clip_ids, &self.takes);
        let moderation = self.lifecycle.moderation(&fields);
        // Only sunoapi documents the 531 failure; a moderated task fails
        // for that reason instead.
        let refunded = self.face.provider() == Provider::Sunoapi
            && moderation.is_none()
            && drawn_for(&id, "531", self.fail_531);
        if refunded {
            let due = now + self.lifecycle.starts_at(Phase::Failed);
            state.records.refunds.push(Reverse((due, account)));
        }
        let task = Task {
            id,
            account,
            fingerprint: fields.fingerprint(),
            model: fields
                .model
                .clone()
                .or_else(|| {
                    let catalogue = self.rules.catalogue();
                    let used = catalogue.host_default(self.face.provider())?;
                    Some(used.name.clone())
                })
                .unwrap_or_default(),
            moderation,
            refunded,
            bad_audio,
            takes,
            watermarked,
            path,
            clip_ids,
            title,
            style,
            fields,
            accepted_at: now,
            created_at: SystemTime::now(),
            request,
        };
        self.start_callbacks(state, &task);
        state.records.account(account).accepted += 1;
        state.records.tasks.insert(task.clone());
        task
    }

    /// Starts posting the task's clips to its `callback_url`, if it has
    /// one the sandbox may post to (see `callbacks`).
    fn start_callbacks(self: &Arc<Self>, state: &mut State, task: &Task) {
        let callback_url = task.fields.callback_url.as_deref().map(str::trim);
        let Some(url) = callback_url.filter(|u| !u.is_empty()) else {
            return;
        };
        if callbacks::is_reserved_invalid(url) {
            // The placeholder a polling client sends where a callback URL
            // is required: it can never resolve, so nothing is posted.
            tracing::debug!("sandbox: not posting callbacks to {url}: a .invalid host");
        } else if self.callback_any_host || callbacks::is_loopback(url) {
            callbacks::spawn(self, &mut state.callbacks, task.clone(), url.to_owned());
        } else {
            tracing::warn!(
                "sandbox: not posting callbacks to {url}: not a loopback address (see --callback-any-host)"
            );
        }
    }
}

/// Admits the request by its account's rate limiter, if it has one (429
/// with `Retry-After`, or the face's word for it, otherwise).
fn rate_limit(state: &mut State, account: AccountId, now: Instant) -> Step<()> {
    if let Some(limiter) = &mut state.limiters[account.0]
        && let Err(wait) = limiter.check(now)
    {
        state.records.counts.rate_limited += 1;
        state.records.account(account).rate_limited += 1;
        return Err(refuse(Refusal::RateLimited {
            retry_after: retry_after_secs(wait),
        }));
    }
    Ok(())
}
