//! batchgen: submit a manifest of music prompts to a Suno-style API, then
//! turn the task IDs into a catalog of songs on disk.
//!
//! # Layout
//! The crate is layered, lowest first. A module uses only modules of a
//! strictly lower layer (and its own submodules); within a folder the
//! modules' imports form no cycle. `tests/layers.rs` reads this table and
//! every `crate::` / `super::` path in `src/`, and fails on an arrow that
//! runs upward or closes a cycle, so the picture below stays true.
//!
//! | layer | module | owns | why it sits here |
//! |---|---|---|---|
//! | 1 mechanisms | [`util`] | safe files, the redaction rule and `Secret`, stderr above the bar, units, backoff, time stamps, the precise timer | knows nothing of jobs or providers: anything may use it |
//! | 2 values | [`job`] | job fields and typed values, the API's validation rules (modes, models, limits), job identity | what a job *is*, before any setting or file |
//! | 3 settings | [`settings`] | flags + environment + `[run]` merged into one immutable `Config` | needs the job rules (models, paths per job), nothing above |
//! | 3 imitation | [`sandbox`] | a local imitation of the API as its docs describe it | built from the values only, never from batchgen's own wire code, so it cannot agree with a client bug by construction |
//! | 4 wire | [`api`] | one submit request and its outcome's class; the task feed, callbacks, the completion rule | speaks HTTP and JSON; knows settings and jobs, no files |
//! | 5 files | [`files`] | the manifest, the results file (journal, lock, compaction, damage), the clip catalog | what is on disk; the catalog's rows are the wire's clips |
//! | 6 engines | [`engine`] | submit: plan, session, pool, pacer, progress; collect: poll, downloads, receive | the moving parts of a run, over the files and the wire |
//! | 7 program | [`program`] | the command line, each command, the one place errors become exit codes and hints, logging | the only layer that knows a process exits |

pub mod api;
pub mod engine;
pub mod files;
pub mod job;
pub mod program;
pub mod sandbox;
pub mod settings;
pub mod util;
