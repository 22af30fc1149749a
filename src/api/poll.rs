//! The wire half of polling: one `GET` of the provider's feed (udioapi
//! `api/v2/feed?workId=…`, sunoapi `record-info`, gcui `api/get?ids=`, a
//! new-api relay's `suno/fetch/{id}`), or one request for many tasks where
//! the provider has a batch poll (the relay's `POST suno/fetch`,
//! [`FeedClient::poll_many`]), its body read within [`MAX_FEED_BODY`] (the
//! batch's own cap) and by the provider's wire, and what
//! the answer means for the next poll ([`PollError::is_retryable`],
//! [`PollError::refused`]). When to ask
//! and how often is the collect engine's (`crate::engine::collect::poll`);
//! what a body says is the parser's ([`crate::api::feed`]).
//!
//! # How a poll's failure is classed, beside a submit's
//! A poll and a submit answer the same host, but a failed poll costs
//! nothing and is asked again anyway, while a resent submit may pay twice.
//! So the two classifications differ on purpose ([`crate::api::submit`]
//! keeps the mirror of this table):
//!
//! | answer | poll (here) | submit | why they differ |
//! |---|---|---|---|
//! | 408 | retry | the row fails | a poll is a read: asking again is free; a submit's timeout may hide a created task |
//! | 501, 505…599 | retry | the row fails | any 5xx may pass for a poll; a submit retries only the documented transient ones (500, 502, 503, 504) |
//! | an error `code` in a 200 envelope | as that HTTP status (but 408 is a bad answer, not a retry) | as that HTTP status, unless the answer carries a task ID: then it was accepted | a submit's task ID is a task paid for, whatever the envelope says |
//! | 404, 405 | a bad answer for this task (left for the next run after a few in a row, `crate::engine::collect::poll`) | the host serves no such endpoint: stop | a feed 404 is one unknown task ID; a generate 404 is every row |
//! | connection lost after sending | retry | ambiguous: never resent | a poll creates nothing |
//!
//! The same in both: 401, 402, 403 stop the run (and sunoapi's 429,
//! insufficient credits); 429, 500, 502, 503, 504 (and sunoapi's 405, 430,
//! 455) and a failed connection are retried; a 3xx is never followed and stops
//! the run with `HTTP 301 to <Location>: fix --base-url`.

use crate::api::answer::HostError;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use url::Url;

use crate::api::feed::{FeedError, MAX_FEED_BODY, TaskClips};
use crate::api::http::{redirect_location, retry_after};
use crate::api::provider::{Wire, wire};
use crate::api::submit::authorization;
use crate::job::Provider;
use crate::util::redact::Secret;

pub use crate::api::answer::PollError;

/// A client for one host's task feed (udioapi's feed, sunoapi's
/// record-info, gcui's `api/get`: the provider's [`Wire::poll_url`]).
#[derive(Debug, Clone)]
pub struct FeedClient {
    http: reqwest::Client,
    base: Url,
    wire: &'static dyn Wire,
    /// `Bearer <key>` ([`crate::api::http::bearer`]); `None` for an empty key.
    auth: Option<reqwest::header::HeaderValue>,
}

impl FeedClient {
    /// A client polling udioapi's feed; see [`FeedClient::with_provider`].
    ///
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
            base: base_url.clone(),
            wire: wire(Provider::Udioapi),
            auth: authorization(&key)?,
        })
    }

    /// Polls `provider`'s feed at `base_url`.
    pub fn with_provider(mut self, provider: Provider, base_url: &Url) -> FeedClient {
        self.wire = wire(provider);
        self.base = base_url.clone();
        self
    }

    /// Most task IDs one [`FeedClient::poll_many`] request carries: the
    /// provider's batch size ([`crate::api::provider::BatchPoll`]), 1 for
    /// a provider that polls a task per request.
    pub fn batch_size(&self) -> usize {
        self.wire.batch_poll().map_or(1, |b| b.max_batch().max(1))
    }

    /// One poll of `task_id` (as the results file stores it), parsed by the
    /// provider's wire, its server text masked ([`TaskClips::mask_secrets`]).
    ///
    /// # Errors
    /// See [`PollError`].
    pub async fn poll(&self, task_id: &str) -> Result<TaskClips, PollError> {
        let url = self.wire.poll_url(&self.base, task_id);
        let request = self.http.get(url.clone());
        let (status, retry_after, body) = self.send(request, &url, MAX_FEED_BODY).await?;
        let clips = self.wire.read_poll(status, &body, retry_after)?;
        Ok(self.ours(task_id, clips))
    }

    /// One request for `task_ids` (at most [`FeedClient::batch_size`]):
    /// the provider's batch poll for several, [`FeedClient::poll`] for
    /// one. The answer has one result per task, in their order: its clips
    /// (masked, only its own), or why that task has none (a task the
    /// batch answer leaves out is a bad answer for it).
    ///
    /// # Errors
    /// A [`PollError`] of the whole request: every task of it failed the
    /// same way, and the caller counts it once.
    pub async fn poll_many(
        &self,
        task_ids: &[String],
    ) -> Result<Vec<Result<TaskClips, PollError>>, PollError> {
        let batch = self.wire.batch_poll().filter(|_| task_ids.len() > 1);
        let Some(batch) = batch else {
            let mut answers = Vec::with_capacity(task_ids.len());
            for task_id in task_ids {
                answers.push(Ok(self.poll(task_id).await?));
            }
            return Ok(answers);
        };
        let ids: Vec<&str> = task_ids.iter().map(String::as_str).collect();
        let url = batch.batch_url(&self.base);
        let request = self
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(batch.batch_body(&ids));
        let (status, retry_after, body) = self.send(request, &url, batch.max_body()).await?;
        let answers = batch.read_batch(status, &body, retry_after, &ids)?;
        Ok(ids
            .iter()
            .zip(answers)
            .map(|(task_id, answer)| answer.map(|clips| self.ours(task_id, clips)))
            .collect())
    }

    /// Sends a poll request with the key; its status, `Retry-After` and a
    /// body of at most `cap` bytes.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        url: &Url,
        cap: usize,
    ) -> Result<(reqwest::StatusCode, Option<Duration>, Vec<u8>), PollError> {
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| PollError::Connection(without_url(e)))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(PollError::Host(HostError::Redirect {
                status: status.as_u16(),
                location: redirect_location(response.headers(), url),
            }));
        }
        let retry_after = retry_after(response.headers());
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= cap => {
                    body.extend_from_slice(&chunk);
                }
                Ok(Some(_)) => return Err(FeedError::TooLarge.into()),
                Ok(None) => break,
                Err(e) => return Err(PollError::Connection(without_url(e))),
            }
        }
        Ok((status, retry_after, body))
    }

    /// The clips of `task_id` from an answer, its server text masked.
    fn ours(&self, task_id: &str, clips: TaskClips) -> TaskClips {
        let mut clips = self.wire.only_task(task_id, clips);
        clips.mask_secrets();
        clips
    }
}

/// A request error with its whole cause chain ("error sending request" alone
/// says nothing) and without its URL (a query can carry a token). Media
/// downloads word their connection failures with it too.
pub fn without_url(e: reqwest::Error) -> String {
    crate::util::chain::chain(&e.without_url())
}
