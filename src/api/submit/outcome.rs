//! How a submit ended when it did not return a task ID, and what the pool
//! should do about it: [`SubmitError`] and its [`ErrorClass`].

use std::time::Duration;

/// A submission the API accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub task_id: String,
    pub http_status: u16,
}

/// What the pool should do about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient, and the server did not act on it: try again later.
    Retry,
    /// The server may have created (and billed) the task: do not resend
    /// unless the user opted in.
    Ambiguous,
    /// The key or account is refused: every row would fail, stop the run.
    Fatal,
    /// The API answered with a redirect: the base URL is wrong, every row
    /// would get the same answer. Stop the run as a configuration error.
    Misdirected,
    /// This row is wrong: fail it, carry on with the others.
    Row,
}

/// Why a submission did not return a task ID.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The server answered with an error status.
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The connection could not be made: nothing was sent.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The request may have reached the server but no answer came back.
    #[error(
        "{0}; the request may have been accepted (the API has no idempotency key, so it was not resent)"
    )]
    Lost(String),
    /// A read (`GET /api/v2/credits`) got no whole answer. Nothing was
    /// created, so unlike [`SubmitError::Lost`] nothing may have been
    /// billed.
    #[error("{0}")]
    NoAnswer(String),
    /// The server answered 2xx but without a usable task ID.
    #[error("HTTP {status}: unexpected answer: {detail}")]
    Unexpected { status: u16, detail: String },
    /// The server answered 3xx. Never followed (see [`super`]'s docs,
    /// "Redirects").
    #[error("HTTP {status} to {location}: fix --base-url")]
    Redirect {
        status: u16,
        /// Where it pointed, for display ([`crate::util::redact::url`]).
        location: String,
    },
    /// The host has no such generate endpoint (HTTP 404 or 405 to the
    /// POST): every row sent there would get the same answer. See the
    /// [`super`]'s docs, "Missing endpoints".
    #[error(
        "HTTP {status} to POST {path}: this host does not serve that endpoint ({message}); set {setting} to the path it serves (api/v2/generate or api/generate)"
    )]
    NoEndpoint {
        status: u16,
        /// The path posted to.
        path: String,
        /// The setting that chose it: `--generate-path` or
        /// `--callback-generate-path`, with their other spellings.
        setting: &'static str,
        message: String,
    },
}

impl SubmitError {
    /// What the pool does next about this error.
    ///
    /// # Which answers are retried, here and in the feed poll
    /// The feed poll (`PollError::is_retryable` in
    /// `crate::engine::collect::poll`) has its own rule, and where the two
    /// differ it is deliberate: a submit is a `POST` that creates and bills
    /// a task, so only the answers known to mean "not done, ask later" are
    /// resent on their own; a poll is a `GET` that creates nothing, so
    /// asking again is always safe.
    ///
    /// | answer | submit (here) | feed poll | why |
    /// |---|---|---|---|
    /// | 429, 500, 502, 503, 504 | retried | retried | the same |
    /// | 408, 501, 505–599 | the row fails (`--retry-failed` resends it) | retried | a resent `POST` costs credits if the guess is wrong; a read costs nothing |
    /// | an error `code` in a 200 body | as that HTTP status | 429 and 5xx retried, 401–403 refused, others a bad answer | the same rule each side, applied to the code |
    /// | 401–403 | the run stops (refused) | the run stops (refused) | the same |
    /// | 404, 405 | the run stops (no such endpoint) | a bad answer: the task is left after `TASK_ATTEMPTS` | a missing generate path is the host's; a missing task is one task's |
    /// | could not connect (nothing sent) | retried | retried | the same |
    /// | timeout or lost connection after sending | `unknown`, resent only with `--retry-ambiguous` | retried | the `POST` may have created a task; a read did not |
    /// | 3xx | the run stops (misdirected) | the run stops | the same |
    pub fn class(&self) -> ErrorClass {
        match self {
            SubmitError::Status { status, .. } => match status {
                401..=403 => ErrorClass::Fatal,
                429 | 500 | 502 | 503 | 504 => ErrorClass::Retry,
                _ => ErrorClass::Row,
            },
            SubmitError::Connect(_) | SubmitError::NoAnswer(_) => ErrorClass::Retry,
            SubmitError::Lost(_) => ErrorClass::Ambiguous,
            // A 2xx without an ID may still have created a task.
            SubmitError::Unexpected { .. } => ErrorClass::Ambiguous,
            SubmitError::Redirect { .. } | SubmitError::NoEndpoint { .. } => {
                ErrorClass::Misdirected
            }
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            SubmitError::Status { status, .. }
            | SubmitError::Unexpected { status, .. }
            | SubmitError::Redirect { status, .. }
            | SubmitError::NoEndpoint { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What the server said, without the `HTTP <status>:` this error's
    /// `Display` puts in front (for messages that name the status
    /// themselves, such as the program's refusal of a key).
    pub fn server_message(&self) -> String {
        match self {
            SubmitError::Status { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SubmitError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn is_rate_limited(&self) -> bool {
        self.http_status() == Some(429)
    }
}
