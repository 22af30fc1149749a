//! batchgen: submit a manifest of music prompts to a Suno-style API.
//!
//! # Layout
//! The modules follow a job's journey:
//!
//! | stage | module | owns |
//! |---|---|---|
//! | settings | [`config`] | flags + environment + `[run]` merged into one immutable `Config` |
//! | input | [`manifest`] | reading TOML/CSV manifests, line numbers, every diagnostic |
//! | rules | [`job`] | job fields, the API's validation rules, job identity |
//! | errors | [`error`] | run-ending errors and their exit codes |

pub mod config;
pub mod error;
pub mod job;
pub mod manifest;
