//! Mechanisms with no knowledge of jobs or providers: the lowest layer.
//! Nothing here imports anything else of the crate, so any module may use
//! these without forming a cycle.
//!
//! | module | owns |
//! |---|---|
//! | [`fsx`] | safe file creation: no writing through planted symlinks, atomic rewrites that keep a file's mode |
//! | [`redact`] | the one rule that keeps keys, callback secrets and URL tokens out of every output, and [`Secret`](redact::Secret) |
//! | [`term`] | lines on stderr above the progress bar, through the redaction rule |
//! | [`units`] | rates, durations and counts as settings write them |
//! | [`retry`] | exponential backoff with full jitter |
//! | [`chain`] | an error and its causes on one line |
//! | [`clock`] | the RFC 3339 time stamps written to files |
//! | [`limit`] | the rate limiter: governor's GCRA on tokio's clock, with a pace that gives way on 429 |

pub mod chain;
pub mod clock;
pub mod fsx;
pub mod limit;
pub mod redact;
pub mod retry;
pub mod term;
pub mod units;
