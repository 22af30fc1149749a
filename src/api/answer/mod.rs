//! What an answer means, for every provider: the outcome types of a submit
//! ([`SubmitError`], its [`ErrorClass`], [`Accepted`]) and of a poll
//! ([`PollError`]), a provider's own codes ([`Meaning`]), the task ID
//! rules ([`task_id()`]), udioapi's submit and credits answers
//! ([`parse_answer`], [`parse_balance`]).
//!
//! Below the provider profiles (`crate::api::provider`), which read each
//! host's bodies into these types, and below the clients
//! (`crate::api::submit`, `crate::api::poll`), which send the requests and
//! re-export them: so a profile and a client never import each other.
//!
//! # Task IDs
//! A task ID is kept as the exact text the server sent: a numeric `workId`
//! is read as its raw JSON text (serde_json would turn
//! `123456789012345678901234567890` into `1.2345678901234568e+29`), and only
//! whole numbers are accepted as numbers. An ID goes into a CSV cell and
//! later into feed URLs, so it must be 1 to [`MAX_TASK_ID`] (200) printable
//! ASCII characters (no space, no control character) and hold no known
//! secret (a server echoing the key must not write it into the results
//! file). An ID the server sent that breaks these rules is not silently
//! replaced by the other field: the answer is [`SubmitError::Unexpected`],
//! so the row is `unknown` (a task may exist) with the reason in its
//! `error`. Every provider's ID passes the same rules ([`task_id()`],
//! [`checked_task_id`]); gcui's two clip ids each, and joined.

mod balance;
mod halt;
mod outcome;
mod poll_error;
mod task_id;

pub use balance::{Balance, parse_balance};
pub use halt::Halt;
pub use outcome::{Accepted, ErrorClass, HostError, Meaning, SubmitError};
pub use poll_error::PollError;
pub use task_id::{MAX_TASK_ID, checked_task_id, parse_answer, task_id};

pub(crate) use balance::{no_balance, number};
pub(crate) use poll_error::poll_status;
pub(crate) use task_id::{body_excerpt, error_status, server_text, value_text};
