//! Submitting a manifest with the real binary: end to end against the
//! sandbox ([`run`]), the exact request bodies on the wire ([`bodies`]),
//! and the pool's pause on a 429 ([`pool_pause`]).

mod accounts;
mod bodies;
mod budget;
mod pool_pause;
mod run;
