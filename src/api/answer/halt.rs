//! Why a run stops early because of what the host answered: the one type
//! submits, polls, `credits` and the program share, so "refused",
//! "misdirected" and "unavailable" each have one name, one message and
//! (in `crate::program::exit`) one exit code and hint.

/// What the host's answers make of a whole run: every further request
/// would get the same answer, so the run stops and says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Halt {
    /// The key or account is refused (401, 402, 403, or a provider's code
    /// meaning the same, as its canonical HTTP status): exit 77.
    #[error("the API refused the request with HTTP {status}: {}", without_status(*status, message))]
    Refused { status: u16, message: String },
    /// The host answered with a redirect: the base URL is wrong (exit 78).
    /// The message names where it pointed and the flag to fix.
    #[error("{0}")]
    Misdirected(String),
    /// Too many requests in a row failed on server or connection errors,
    /// or on 429s that never let up (exit 69).
    #[error("the API is unreachable: {0}")]
    Unavailable(String),
}

/// `message` without a leading `HTTP <status>: `, which the refusal's own
/// text already says (a message built from an error's `Display` has it).
fn without_status(status: u16, message: &str) -> &str {
    let prefix = format!("HTTP {status}: ");
    message.strip_prefix(prefix.as_str()).unwrap_or(message)
}
