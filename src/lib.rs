//! batchgen: submit a manifest of music prompts to a Suno-style API, then
//! turn the task IDs into a catalog of songs on disk.
//!
//! # Layout
//! The crate is layered, lowest first. A module uses only modules of a
//! strictly lower layer (and its own submodules); within a folder the
//! modules' imports form no cycle. `tests/it/layers.rs` reads this table and
//! every `crate::` / `super::` path in `src/`, and fails on an arrow that
//! runs upward or closes a cycle, so the picture below stays true.
//!
//! | layer | module | owns | why it sits here |
//! |---|---|---|---|
//! | 1 mechanisms | [`util`] | safe files (`fsx`), the redaction rule and `Secret`, stderr above the bar, units, backoff, time stamps, error chains, the rate limiter (`limit`) | knows nothing of jobs or providers: anything may use it |
//! | 2 values | [`job`] | job fields and typed values, the API's validation rules (modes, models, limits), the providers (`Provider`: which fields, models and limits each host takes), job identity | what a job *is*, before any setting or file |
//! | 2 measures | [`audio`] | a take's numbers: MP3 decoding (`PcmStream`), one-pass loudness, peaks, silences, clipping and fingerprint (`Measurement`), ReplayGain tags, the WAV writer | knows samples and files, not jobs or providers; uses only `util` (the atomic rewrite), so the engines above may measure what they download |
//! | 3 settings | [`settings`] | flags + environment + `[run]` merged into one immutable `Config`; the base URL and generate paths | needs the job rules (models, a job's endpoint), nothing above |
//! | 3 imitation | [`sandbox`] | a local imitation of the API as its docs describe it | built from layers 1–2 only, never from batchgen's wire code, so it cannot agree with a client bug by construction |
//! | 4 wire | [`api`] | the HTTP client recipe (`http`), answers and their classes (`answer`), one wire profile per provider (`provider`: udioapi, sunoapi and kie, gcui, newapi), one submit (`submit`), one feed poll (`poll`), the clip bodies and the completion rule (`feed`) | speaks HTTP and JSON; knows settings and jobs, no files |
//! | 5 files | [`files`] | the manifest, the state store (`state`: SQLite, its schema and migrations, the import of older results files, the results report, read-only snapshots), the results file (rows, formats, reader, damage rules, recorder, lock, writer, places), the clip catalog (one job's rows, body and tail, the held jobs and the writer), where both stand (`status`), the catalog page and the playlist | what is on disk; the catalog's rows are the wire's clips |
//! | 6 engines | [`engine`] | `submit`: plan, session, feeder, pool (attempt, account), counters, progress, report; `collect`: state, the reader (`load`), poll loop and schedule, downloads, names, tags, the callback receiver | the moving parts of a run, over the files and the wire |
//! | 7 program | [`program`] | the command line, each command, signals, secrets, logging, and `exit`: the one place errors and reports become exit codes and hints | the only layer that knows a process exits |
//!
//! Each layer returns its own error type ([`files::manifest::ManifestError`],
//! [`files::results::ResultsError`] (the state store's too), [`files::catalog::CatalogError`], the
//! engines' `RunError` and `CollectError`); [`program::exit`] maps each to
//! the exit code and hint the README's table lists. A run's tasks,
//! channels and cancellation tokens are drawn in [`engine::submit`].

pub mod api;
pub mod audio;
pub mod engine;
pub mod files;
pub mod job;
pub mod program;
pub mod sandbox;
pub mod settings;
pub mod util;
