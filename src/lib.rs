//! batchgen: submit a manifest of music prompts to a Suno-style API.

pub mod api;
pub mod engine;
pub mod files;
pub mod job;
pub mod program;
pub mod sandbox;
pub mod settings;
pub mod util;
