//! batchgen: submit a manifest of music prompts to a Suno-style API.
//!
//! # Layout
//! The modules follow a job's journey, manifest → job → client → pool →
//! report, with the settings beside them and the sandbox across the wire:
//!
//! | stage | module | owns |
//! |---|---|---|
//! | settings | [`config`] | flags + environment + `[run]` merged into one immutable `Config` |
//! | input | [`manifest`] | reading TOML/CSV manifests, line numbers, every diagnostic |
//! | rules | [`job`] | job fields and their typed values, the API's validation rules (modes, models, limits), job identity |
//! | wire | [`client`] | one submit request and the classification of its outcome |
//! | sending | [`pool`] | the rate limiter, the workers, retries and backoff, stopping |
//! | pacing | [`timer`] | sleeping to within a tenth of a millisecond, for the pacer |
//! | output | [`report`] | the results CSV: lock, journal, atomic compaction, damaged files |
//! | files | [`fsx`] | safe file creation: no writing through planted symlinks, atomic rewrites that keep a file's mode |
//! | after submit | [`collect`] | polling the feed, the one completion rule (the provider's final stage is `first` + "All generated successfully."), the clip catalog CSV, resumable tagged downloads checked to be audio |
//! | callbacks | [`receive`] | the HTTP receiver that records callback clips into the same catalog |
//! | a run | [`run`] | one run start to finish: select rows, drive the pool, summarize |
//! | display | [`output`] | progress bar or periodic lines, logs that don't tear the bar |
//! | commands | [`cli`], [`app`] | the command line and what each command does |
//! | errors | [`error`] | run-ending errors and their exit codes |
//! | secrets | [`redact`] | the one rule that keeps keys, callback secrets and URL tokens out of every output |
//! | sandbox | [`sandbox`] | a local imitation of the API as its docs describe it (auth, validation, rate limit, injected faults, task stages, both feeds, credits, callbacks, streaming and final media) for rehearsals and tests |

pub mod app;
pub mod cli;
pub mod client;
pub mod collect;
pub mod config;
pub mod error;
pub mod fsx;
pub mod job;
pub mod manifest;
pub mod output;
pub mod pool;
pub mod receive;
pub mod redact;
pub mod report;
pub mod run;
pub mod sandbox;
pub mod timer;
