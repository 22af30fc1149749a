//! `cargo fuzz run csv_manifest`: arbitrary bytes as a `.csv` manifest.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| common::check(data, "jobs.csv"));
