//! The wire half of polling: one `GET /api/v2/feed?workId=…`, its body
//! read within [`MAX_FEED_BODY`], and what the answer means for the next
//! poll ([`PollError::is_retryable`], [`PollError::refused`]). When to ask
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
//! The same in both: 401, 402, 403 stop the run; 429, 500, 502, 503, 504
//! and a failed connection are retried; a 3xx is never followed and stops
//! the run with `HTTP 301 to <Location>: fix --base-url`.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;
use url::Url;

use crate::api::feed::{self, FeedError, MAX_FEED_BODY, TaskClips};
use crate::api::http::{bearer, endpoint};
use crate::api::http::{redirect_location, retry_after};
use crate::util::redact::Secret;

/// What one poll can end in, besides an answer.
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
    /// Transient: ask again later (the module docs' table).
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

    /// The host told this client to go elsewhere: a wrong `--base-url`.
    pub fn is_misdirected(&self) -> bool {
        matches!(self, PollError::Redirect { .. })
    }

    /// A 429's `Retry-After` (`Some(None)`: a 429 without one); `None`
    /// for any other failure.
    pub fn rate_limited(&self) -> Option<Option<Duration>> {
        match self {
            PollError::Status {
                status: 429,
                retry_after,
                ..
            } => Some(*retry_after),
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

    /// `GET /api/v2/feed?workId=<task_id>`, parsed, its server text masked
    /// ([`TaskClips::mask_secrets`]).
    ///
    /// # Errors
    /// See [`PollError`].
    pub async fn poll(&self, task_id: &str) -> Result<TaskClips, PollError> {
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
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_FEED_BODY => {
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
        let mut clips = feed::parse(&body)?;
        clips.mask_secrets();
        Ok(clips)
    }
}

/// A request error with its whole cause chain ("error sending request" alone
/// says nothing) and without its URL (a query can carry a token). Media
/// downloads word their connection failures with it too.
pub fn without_url(e: reqwest::Error) -> String {
    crate::util::chain::chain(&e.without_url())
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
