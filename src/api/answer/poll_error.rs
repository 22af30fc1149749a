//! What one poll can end in besides clips, and what that means for the
//! next poll ([`PollError::is_retryable`], [`PollError::refused`]); the
//! table beside a submit's is in `crate::api::poll`'s docs.

use std::time::Duration;

use reqwest::StatusCode;

use super::outcome::{HostError, Meaning};
use crate::api::feed::{self, FeedError};

/// What one poll can end in, besides an answer.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// An error status, a provider's code (sunoapi's 429 credits, 405/430
    /// rate limited, 455 maintenance) or a redirect: what a submit gets
    /// too. A 3xx stops collect, which names the place it pointed to.
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{0}")]
    Connection(String),
    #[error("{0}")]
    Feed(#[from] FeedError),
}

impl PollError {
    /// Transient: ask again later (`crate::api::poll`'s table).
    pub fn is_retryable(&self) -> bool {
        match self {
            PollError::Host(HostError::Status { status, .. }) => {
                matches!(status, 408 | 429 | 500..=599)
            }
            PollError::Host(HostError::Coded { meaning, .. }) => {
                matches!(meaning, Meaning::RateLimited | Meaning::Maintenance)
            }
            PollError::Host(HostError::Redirect { .. }) => false,
            PollError::Connection(_) => true,
            PollError::Feed(FeedError::Api { code, .. }) => matches!(code, 429 | 500..=599),
            PollError::Feed(_) => false,
        }
    }

    /// The key or account is refused: every poll would fail. The status
    /// is the canonical one (sunoapi's 429, insufficient credits, is 402).
    pub fn refused(&self) -> Option<u16> {
        match self {
            PollError::Host(host) => host.refusal().map(|(status, _)| status),
            PollError::Feed(FeedError::Api { code, .. }) if (401..=403).contains(code) => {
                Some(*code)
            }
            _ => None,
        }
    }

    /// The host told this client to go elsewhere: a wrong `--base-url`.
    pub fn is_misdirected(&self) -> bool {
        matches!(self, PollError::Host(HostError::Redirect { .. }))
    }

    /// A 429's `Retry-After` (`Some(None)`: a 429 without one), or that of
    /// a provider's code meaning the same; `None` for any other failure.
    pub fn rate_limited(&self) -> Option<Option<Duration>> {
        match self {
            PollError::Host(host) => host.rate_limited(),
            PollError::Connection(_) | PollError::Feed(_) => None,
        }
    }
}

/// udioapi's error status: the envelope's `message`, else the reason.
pub(crate) fn poll_status(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> PollError {
    let message = match feed::parse(body) {
        Err(FeedError::Api { message, .. }) if !message.is_empty() => message,
        _ => super::task_id::server_text(body)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
    };
    PollError::Host(HostError::Status {
        status: status.as_u16(),
        message,
        retry_after,
    })
}
