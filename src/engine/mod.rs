//! The engines: submitting a manifest's jobs ([`submit`]) and turning the
//! task IDs into songs on disk ([`collect`]).

pub mod collect;
pub mod submit;
