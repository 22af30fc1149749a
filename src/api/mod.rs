//! The wire layer: what batchgen sends to the provider and how it reads
//! the answers. What an answer means, for every provider: the outcome
//! types and the task ID rules ([`answer`]); the task feed and callback
//! bodies, and the one completion rule ([`feed`]); each provider's wire
//! face, its requests and how its bodies read ([`provider`]); submitting
//! one job ([`submit`]) and one feed poll ([`poll`]), the clients; what
//! every HTTP client shares ([`http`]).
//!
//! Within the layer, lowest first: `feed` and `http`, then `answer`, then
//! `provider`, then the clients `submit` and `poll`.

pub mod answer;
pub mod feed;
pub mod http;
pub mod poll;
pub mod provider;
pub mod submit;
