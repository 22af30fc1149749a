//! What one poll can end in besides clips, and what that means for the
//! next poll ([`PollError::is_retryable`], [`PollError::refused`]); the
//! table beside a submit's is in `crate::api::poll`'s docs.

use std::time::Duration;

use reqwest::StatusCode;

use super::outcome::Meaning;
use crate::api::feed::{self, FeedError};

/// What one poll can end in, besides an answer.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// A provider's code whose meaning is its own (sunoapi's 429 credits,
    /// 405/430 rate limited, 455 maintenance), as the HTTP status or in
    /// the body of an HTTP 200; see [`Meaning`].
    #[error("code {code} ({}): {message}", meaning.describe())]
    Coded {
        code: u16,
        meaning: Meaning,
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
    /// Transient: ask again later (`crate::api::poll`'s table).
    pub fn is_retryable(&self) -> bool {
        match self {
            PollError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            PollError::Coded { meaning, .. } => {
                matches!(meaning, Meaning::RateLimited | Meaning::Maintenance)
            }
            PollError::Redirect { .. } => false,
            PollError::Connection(_) => true,
            PollError::Feed(FeedError::Api { code, .. }) => matches!(code, 429 | 500..=599),
            PollError::Feed(_) => false,
        }
    }

    /// The key or account is refused: every poll would fail. The status
    /// is the canonical one (sunoapi's 429, insufficient credits, is 402).
    pub fn refused(&self) -> Option<u16> {
        match self {
            PollError::Status { status, .. } if (401..=403).contains(status) => Some(*status),
            PollError::Coded {
                meaning: Meaning::Credits,
                ..
            } => Some(402),
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

    /// A 429's `Retry-After` (`Some(None)`: a 429 without one), or that of
    /// a provider's code meaning the same; `None` for any other failure.
    pub fn rate_limited(&self) -> Option<Option<Duration>> {
        match self {
            PollError::Status {
                status: 429,
                retry_after,
                ..
            }
            | PollError::Coded {
                meaning: Meaning::RateLimited,
                retry_after,
                ..
            } => Some(*retry_after),
            _ => None,
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
    PollError::Status {
        status: status.as_u16(),
        message,
        retry_after,
    }
}
