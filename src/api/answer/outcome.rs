//! How a submit ended when it did not return a task ID, and what the pool
//! should do about it: [`SubmitError`] and its [`ErrorClass`]; and what a
//! provider's own code means where it is not HTTP's ([`Meaning`]).

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

/// What a provider's code means where its meaning is not HTTP's: sunoapi.org
/// answers 429 for *insufficient credits* (HTTP: too many requests), 405
/// and 430 for *rate limited*, 455 for *maintenance*. Kept beside the real
/// code ([`HostError::Coded`]), so the results file
/// records what the host said and the class follows what it meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Out of credits: every row would fail; stop the run (as HTTP 402).
    Credits,
    /// Rate limited: retried, and the pool's rate limit gives way (as for HTTP 429).
    RateLimited,
    /// The host is under maintenance: retried with backoff (as HTTP 503).
    Maintenance,
    /// A code the provider does not document: this row fails (a resent
    /// `POST` costs credits if the guess is wrong).
    Unknown,
}

impl Meaning {
    /// The HTTP status that means the same, for the refusal message and
    /// the exit code: 402, 429, 503; `None` for [`Meaning::Unknown`].
    pub fn as_http(self) -> Option<u16> {
        match self {
            Meaning::Credits => Some(402),
            Meaning::RateLimited => Some(429),
            Meaning::Maintenance => Some(503),
            Meaning::Unknown => None,
        }
    }

    /// A few words for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Meaning::Credits => "insufficient credits",
            Meaning::RateLimited => "rate limited",
            Meaning::Maintenance => "under maintenance",
            Meaning::Unknown => "an undocumented code",
        }
    }
}

/// What a host answered instead of what was asked, the same for a submit
/// and a poll: an error status, a provider's own code, or a redirect.
/// What each means for the run is the caller's ([`SubmitError::class`],
/// `PollError::is_retryable`); what they share is here.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The server answered with an error status.
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The provider answered a code whose meaning is its own, not HTTP's
    /// (see [`Meaning`]), as the HTTP status or in the body of an HTTP 200.
    #[error("code {code} ({}): {message}", meaning.describe())]
    Coded {
        /// The code as the host sent it: what the results file records.
        code: u16,
        meaning: Meaning,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The server answered 3xx. Never followed (see `crate::api::submit`'s
    /// docs, "Redirects"): every request would get the same answer.
    #[error("HTTP {status} to {location}: fix --base-url")]
    Redirect {
        status: u16,
        /// Where it pointed, for display ([`crate::util::redact::url`]).
        location: String,
    },
}

impl HostError {
    /// The status or code as the host sent it.
    pub fn status(&self) -> u16 {
        match self {
            HostError::Status { status, .. }
            | HostError::Coded { code: status, .. }
            | HostError::Redirect { status, .. } => *status,
        }
    }

    /// What the server said, without the `HTTP <status>:` the `Display`
    /// puts in front (a provider's code is named after it).
    pub fn server_message(&self) -> String {
        match self {
            HostError::Status { message, .. } => message.clone(),
            HostError::Coded {
                code,
                meaning,
                message,
                ..
            } => format!("{message} (code {code}: {})", meaning.describe()),
            HostError::Redirect { .. } => self.to_string(),
        }
    }

    /// A 429's (or a code meaning the same's) `Retry-After`; `Some(None)`
    /// for one without; `None` for any other answer. Never sunoapi's 429,
    /// which means credits.
    pub fn rate_limited(&self) -> Option<Option<Duration>> {
        match self {
            HostError::Status {
                status: 429,
                retry_after,
                ..
            }
            | HostError::Coded {
                meaning: Meaning::RateLimited,
                retry_after,
                ..
            } => Some(*retry_after),
            _ => None,
        }
    }

    /// The host's `Retry-After`, on whatever answer carried one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HostError::Status { retry_after, .. } | HostError::Coded { retry_after, .. } => {
                *retry_after
            }
            HostError::Redirect { .. } => None,
        }
    }

    /// For a refused key or account: the canonical HTTP status (401, 402
    /// or 403) and the server's message, which stop the run (exit 77).
    /// sunoapi's 429 (insufficient credits) is 402 here, whatever code it
    /// came as. `None` for every other answer.
    pub fn refusal(&self) -> Option<(u16, String)> {
        match self {
            HostError::Status {
                status: status @ 401..=403,
                message,
                ..
            } => Some((*status, message.clone())),
            HostError::Coded {
                meaning: Meaning::Credits,
                ..
            } => Some((402, self.server_message())),
            _ => None,
        }
    }
}

/// Why a submission did not return a task ID.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// An error status, a provider's code or a redirect ([`HostError`]).
    #[error(transparent)]
    Host(#[from] HostError),
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
    /// The host has no such generate endpoint (HTTP 404 or 405 to the
    /// POST): every row sent there would get the same answer. See
    /// `crate::api::submit`'s docs, "Missing endpoints".
    #[error(
        "HTTP {status} to POST {path}: this host does not serve that endpoint ({message}); {fix}"
    )]
    NoEndpoint {
        status: u16,
        /// The path posted to.
        path: String,
        /// What to change: for udioapi the setting that chose the path
        /// (`--generate-path` or `--callback-generate-path`, with their
        /// other spellings); for the others `--provider` and `--base-url`.
        fix: &'static str,
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
            SubmitError::Host(HostError::Status { status, .. }) => match status {
                401..=403 => ErrorClass::Fatal,
                429 | 500 | 502 | 503 | 504 => ErrorClass::Retry,
                _ => ErrorClass::Row,
            },
            SubmitError::Host(HostError::Coded { meaning, .. }) => match meaning {
                Meaning::Credits => ErrorClass::Fatal,
                Meaning::RateLimited | Meaning::Maintenance => ErrorClass::Retry,
                Meaning::Unknown => ErrorClass::Row,
            },
            SubmitError::Connect(_) | SubmitError::NoAnswer(_) => ErrorClass::Retry,
            SubmitError::Lost(_) => ErrorClass::Ambiguous,
            // A 2xx without an ID may still have created a task.
            SubmitError::Unexpected { .. } => ErrorClass::Ambiguous,
            SubmitError::Host(HostError::Redirect { .. }) | SubmitError::NoEndpoint { .. } => {
                ErrorClass::Misdirected
            }
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            SubmitError::Host(host) => Some(host.status()),
            SubmitError::Unexpected { status, .. } | SubmitError::NoEndpoint { status, .. } => {
                Some(*status)
            }
            SubmitError::Connect(_) | SubmitError::Lost(_) | SubmitError::NoAnswer(_) => None,
        }
    }

    /// What the server said, without the `HTTP <status>:` this error's
    /// `Display` puts in front (for messages that name the status
    /// themselves, such as the program's refusal of a key).
    pub fn server_message(&self) -> String {
        match self {
            SubmitError::Host(host) => host.server_message(),
            other => other.to_string(),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SubmitError::Host(host) => host.retry_after(),
            _ => None,
        }
    }

    /// Flow control: an HTTP 429, or a provider's code that means the same
    /// (sunoapi's 405 and 430). Never sunoapi's 429, which means credits.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, SubmitError::Host(host) if host.rate_limited().is_some())
    }

    /// For a refused key or account ([`ErrorClass::Fatal`]): see
    /// [`HostError::refusal`]. `None` for every other error.
    pub fn refusal(&self) -> Option<(u16, String)> {
        match self {
            SubmitError::Host(host) => host.refusal(),
            _ => None,
        }
    }
}
