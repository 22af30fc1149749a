//! batchgen's integration tests: one test binary (`cargo test --test it`),
//! one module per feature, so a change to the crate links one test binary
//! instead of one per file.
//!
//! Each module drives the library or the real binary
//! (`CARGO_BIN_EXE_batchgen`) from outside, as a user or a host meets it;
//! helpers shared between features are in [`common`]. Data stays where it
//! was: `tests/fixtures/` and `tests/manifests/`, found from
//! `CARGO_MANIFEST_DIR`. Run one feature with its module path as the
//! filter, e.g. `cargo test --test it collect::` or
//! `cargo test --test it hostile::wire::`.

mod common;

mod bench_smoke;
mod cli;
mod collect;
mod conformance;
mod feed_parser;
mod hostile;
mod hygiene;
mod layers;
mod manifest;
mod measure;
mod operator;
mod page;
mod page_quality;
mod providers;
mod sandbox;
mod status;
mod submit;
mod tags;
mod unattended;
mod upgrade;
