//! Polling the v2 feed: when each task is asked about, and what an answer
//! means.
//!
//! ```text
//! schedule (due time per task) ──▶ ≤ concurrency polls in flight
//!                                    │ each: rate limiter cell, GET feed
//!                                    ▼ answer → Store::apply → on_change(key)
//!                                      finished?  done : due again in --poll-interval
//! ```
//!
//! A task is polled until its clips are finished by the one rule
//! ([`super::feed`]: failed, `complete`, or `first` with "All generated
//! successfully."), judged on the catalog's rows so every clip seen counts.
//! The host's `data.type` is not asked: it says `SUCCESS` from the text
//! stage on. The deadline ([`super::CollectConfig::deadline`]) is the cap.
//!
//! Two limits apply, as the provider asks: a task is polled at most once
//! per `interval` (5 s by default), and all polls together pass one
//! no-burst rate limiter (`--poll-rate`). 429s, 5xx and connection errors
//! push the task back with the pool's backoff (and a 429 pauses every poll,
//! honouring `Retry-After`); 401/402/403 end the run ([`Error::Refused`]);
//! a 3xx ends it as [`Error::Config`] (`HTTP 301 to <Location>: fix
//! --base-url`: API calls follow no redirect, see [`crate::api::submit`]);
//! [`GIVE_UP_AFTER`] failures in a row with no success between end it as
//! [`Error::Unavailable`]. A task with [`TASK_ATTEMPTS`] bad answers in a row
//! (404, a body of the wrong shape) is left for the next run.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::api::feed::{self, Feed, FeedError};
use crate::api::http::{bearer, endpoint};
use crate::api::submit::{redirect_location, retry_after};
use crate::files::catalog::Store;
use crate::program::exit::Error;
use crate::util::redact::Secret;
use crate::util::retry::full_jitter;
use crate::util::units::Rate;

/// Failed polls in a row (any task) before the API counts as unreachable.
pub const GIVE_UP_AFTER: u32 = 10;
/// Bad answers in a row for one task before it is left for the next run.
pub const TASK_ATTEMPTS: u32 = 6;

/// What one poll can end in, besides a feed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// A 3xx: API calls follow no redirect, and every poll would get the
    /// same answer, so collect stops and names the place it pointed to.
    #[error("HTTP {status} to {location}: fix --base-url")]
    Redirect { status: u16, location: String },
    #[error("{0}")]
    Connection(String),
    #[error("{0}")]
    Feed(#[from] FeedError),
}

impl PollError {
    /// Transient: ask again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            PollError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            PollError::Redirect { .. } => false,
            PollError::Connection(_) => true,
            PollError::Feed(FeedError::Api { code, .. }) => matches!(code, 429 | 500..=599),
            PollError::Feed(_) => false,
        }
    }

    /// The key or account is refused: every poll would fail.
    pub fn refused(&self) -> Option<u16> {
        match self {
            PollError::Status { status, .. } if (401..=403).contains(status) => Some(*status),
            PollError::Feed(FeedError::Api { code, .. }) if (401..=403).contains(code) => {
                Some(*code)
            }
            _ => None,
        }
    }
}

/// A client for one host's feed.
#[derive(Debug, Clone)]
pub struct FeedClient {
    http: reqwest::Client,
    feed: Url,
    /// `Bearer <key>` ([`crate::api::http::bearer`]).
    auth: reqwest::header::HeaderValue,
}

impl FeedClient {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base_url: &Url, key: Secret, timeout: Duration) -> anyhow::Result<FeedClient> {
        let http = crate::api::http::builder(timeout)
            .timeout(timeout)
            // An API call follows no redirect (see `crate::api::submit`).
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(FeedClient {
            http,
            feed: endpoint(base_url, "api/v2/feed"),
            auth: bearer(&key)?,
        })
    }

    /// `GET /api/v2/feed?workId=<task_id>`, parsed.
    ///
    /// # Errors
    /// See [`PollError`].
    pub async fn poll(&self, task_id: &str) -> Result<Feed, PollError> {
        let mut url = self.feed.clone();
        url.query_pairs_mut().append_pair("workId", task_id);
        let mut response = self
            .http
            .get(url.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .send()
            .await
            .map_err(|e| PollError::Connection(without_url(e)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(PollError::Redirect {
                status: status.as_u16(),
                location: redirect_location(response.headers(), &url),
            });
        }
        let retry_after = retry_after(response.headers());
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= feed::MAX_FEED_BODY => {
                    body.extend_from_slice(&chunk);
                }
                Ok(Some(_)) => return Err(FeedError::TooLarge.into()),
                Ok(None) => break,
                Err(e) => return Err(PollError::Connection(without_url(e))),
            }
        }
        if !status.is_success() {
            return Err(error_status(status, &body, retry_after));
        }
        let mut feed = feed::parse(&body)?;
        mask_secrets(&mut feed);
        Ok(feed)
    }
}

/// Masks every registered secret in the server text of `feed` (clip IDs,
/// titles, style, model, URLs, failure messages): a host that echoes the
/// key must not get it into the catalog, a file name or an ID3 tag
/// ([`crate::util::redact::secrets`]). Polls and callbacks both pass here.
pub fn mask_secrets(feed: &mut Feed) {
    use crate::util::redact::mask_in_place;
    for clip in &mut feed.clips {
        for text in [
            &mut clip.id,
            &mut clip.title,
            &mut clip.tags,
            &mut clip.model_name,
            &mut clip.audio_url,
            &mut clip.image_url,
            &mut clip.error,
        ] {
            mask_in_place(text);
        }
    }
    if let Some(failure) = &mut feed.failure {
        mask_in_place(failure);
    }
}

/// A request error with its whole cause chain ("error sending request" alone
/// says nothing) and without its URL (a query can carry a token).
pub(super) fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

fn error_status(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> PollError {
    let message = match feed::parse(body) {
        Err(FeedError::Api { message, .. }) if !message.is_empty() => message,
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    PollError::Status {
        status: status.as_u16(),
        message,
        retry_after,
    }
}

/// How polling behaves; a slice of [`super::CollectConfig`].
#[derive(Debug, Clone)]
pub struct PollSettings {
    pub interval: Duration,
    pub rate: Rate,
    pub concurrency: usize,
}

/// A task to poll: the job key and the task ID from the results file.
#[derive(Debug, Clone)]
pub struct Task {
    pub key: String,
    pub task_id: String,
}

/// What polling did.
#[derive(Debug, Clone, Default)]
pub struct PollSummary {
    pub polls: u64,
    pub retries: u64,
    pub rate_limited: u64,
    /// Tasks whose clips all finished while polling.
    pub finished: usize,
    /// Tasks left for the next run after too many bad answers, with why.
    pub given_up: Vec<(String, String)>,
}

/// Polls every task until it is finished, given up, or `stop` is cancelled.
/// After each answer the clips go into `store` and `on_change(key)` is
/// called (the downloader's cue).
///
/// # Errors
/// [`Error::Refused`] on 401/402/403, [`Error::Unavailable`] after
/// [`GIVE_UP_AFTER`] failures in a row.
pub async fn run(
    client: FeedClient,
    settings: PollSettings,
    tasks: Vec<Task>,
    store: Arc<Store>,
    on_change: impl Fn(&str),
    stop: CancellationToken,
) -> Result<PollSummary, Error> {
    let limiter: Option<Arc<DefaultDirectRateLimiter>> = settings.rate.interval().map(|every| {
        let quota = Quota::with_period(every).expect("rate interval is never zero");
        Arc::new(RateLimiter::direct(quota))
    });
    let client = Arc::new(client);
    let start = Instant::now();
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> =
        (0..tasks.len()).map(|i| Reverse((start, i))).collect();
    let mut failures = vec![0u32; tasks.len()];
    let mut in_flight: JoinSet<(usize, Result<Feed, PollError>)> = JoinSet::new();
    let mut pause_until = start;
    let mut failures_in_a_row = 0u32;
    let mut summary = PollSummary::default();
    let concurrency = settings.concurrency.max(1);

    loop {
        let now = Instant::now();
        while in_flight.len() < concurrency && pause_until <= now {
            match due.peek() {
                Some(Reverse((at, _))) if *at <= now => {}
                _ => break,
            }
            let Some(Reverse((_, i))) = due.pop() else {
                break;
            };
            let (client, limiter, task_id) = (
                Arc::clone(&client),
                limiter.clone(),
                tasks[i].task_id.clone(),
            );
            summary.polls += 1;
            in_flight.spawn(async move {
                if let Some(limiter) = limiter {
                    limiter.until_ready().await;
                }
                (i, client.poll(&task_id).await)
            });
        }
        if due.is_empty() && in_flight.is_empty() {
            return Ok(summary);
        }
        let wake = due
            .peek()
            .map(|Reverse((at, _))| (*at).max(pause_until))
            .filter(|_| in_flight.len() < concurrency);
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(summary),
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let Ok((i, answer)) = joined else { continue };
                let task = &tasks[i];
                match answer {
                    Ok(feed) => {
                        failures_in_a_row = 0;
                        failures[i] = 0;
                        store.apply(&task.key, &task.task_id, &feed);
                        on_change(&task.key);
                        // The catalog holds every clip seen so far; `data.type`
                        // (SUCCESS from the text stage on) decides nothing.
                        if store.lock().task_finished(&task.key, &task.task_id) {
                            summary.finished += 1;
                        } else {
                            due.push(Reverse((Instant::now() + settings.interval, i)));
                        }
                    }
                    Err(e) => {
                        if let Some(status) = e.refused() {
                            return Err(Error::Refused { status, message: e.to_string() });
                        }
                        if matches!(e, PollError::Redirect { .. }) {
                            return Err(Error::Config(e.to_string()));
                        }
                        failures[i] += 1;
                        tracing::debug!(key = %task.key, "poll failed: {e}");
                        if e.is_retryable() {
                            failures_in_a_row += 1;
                            if failures_in_a_row >= GIVE_UP_AFTER {
                                return Err(Error::Unavailable(format!(
                                    "{failures_in_a_row} feed polls in a row failed; last: {e}"
                                )));
                            }
                        }
                        if failures[i] >= TASK_ATTEMPTS {
                            tracing::warn!(key = %task.key, "leaving the task for the next run: {e}");
                            summary.given_up.push((task.key.clone(), e.to_string()));
                            continue;
                        }
                        summary.retries += 1;
                        let mut wait = full_jitter(failures[i]).max(settings.interval);
                        if let PollError::Status { status: 429, retry_after, .. } = &e {
                            summary.rate_limited += 1;
                            let pause = retry_after.unwrap_or_else(|| full_jitter(failures[i]));
                            pause_until = pause_until.max(Instant::now() + pause);
                            wait = wait.max(pause);
                        }
                        due.push(Reverse((Instant::now() + wait, i)));
                    }
                }
            }
            () = sleep_until(wake) => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
