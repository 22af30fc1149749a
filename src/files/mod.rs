//! Files on disk: the manifest a person writes ([`manifest`]), the results
//! file a run keeps ([`results`]), and the clip catalog `collect` and
//! `receive` keep ([`catalog`]).

pub mod catalog;
pub mod manifest;
pub mod results;
