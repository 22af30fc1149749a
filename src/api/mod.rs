//! The wire layer: what batchgen sends to the provider and how it reads
//! the answers. Submitting one job and classifying its outcome
//! ([`submit`]); the task feed and callback bodies, and the one completion
//! rule ([`feed`]); one feed poll and its outcome's class ([`poll`]); what
//! every HTTP client shares ([`http`]).

pub mod feed;
pub mod http;
pub mod poll;
pub mod submit;
