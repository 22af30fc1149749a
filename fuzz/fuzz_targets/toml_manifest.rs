//! `cargo fuzz run toml_manifest`: arbitrary bytes as a `.toml` manifest.
//! A `csv = "rows.csv"` in the input finds no file (Unreadable): the CSV
//! reader has its own target.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| common::check(data, "jobs.toml"));
