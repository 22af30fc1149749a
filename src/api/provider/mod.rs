//! The wire face of each provider: how a job becomes that host's request,
//! and how its answers, polls, callbacks and balance are read into the
//! types every provider shares ([`crate::api::answer`], [`crate::api::feed`]).
//! The clients ([`crate::api::submit::Client`], [`crate::api::poll::FeedClient`])
//! send and receive the bytes; a profile ([`Wire`], one per module) only
//! knows what they say. Which fields and models a provider takes is
//! checked before any of this, by `crate::job::Rules` for its
//! [`Provider`].
//!
//! Each provider's endpoints, task IDs, polls, callbacks, balance and
//! documented limit are in one table, the README's "Providers" (what a
//! user needs to choose and run one); the table below adds only what the
//! wire layer needs besides: the body, the envelope, the stage words and
//! the codes.
//!
//! | | udioapi | sunoapi (sunoapi.org, api.box) and kie (kie.ai: its codes differ, see [`sunoapi`]) | gcui (gcui-art/suno-api) | newapi (a new-api / one-api relay) |
//! |---|---|---|---|---|
//! | body | batchgen's field names, unset ones left out | camelCase; `customMode`, `instrumental`, `model`, `callBackUrl` always sent (an inert [`sunoapi::NO_CALLBACK`] without a callback) | `prompt`, `make_instrumental`, `model`, `wait_audio: false`; custom: `tags` ← style, `negative_tags` ← tags, `title` | `prompt` (custom: lyrics), `tags` ← style, `mv` (always: the catalogue's default without a model), `title`, `gpt_description_prompt` ← the description, `make_instrumental` |
//! | envelope | `{code, message, data}`; errors with the same HTTP status, or in a 200 | `{code, msg, data}`; codes as the HTTP status or in a 200 | none: bare arrays; errors `{"error"}` with the HTTP status | `{code: "success", message, data}`; errors `{code: "<word>", message}` or `{"error": {message}}` with the HTTP status |
//! | stage words → clip states | the clip's `status` (`text`, `first`, `complete`) and `extra_message` | the task's `status`: `PENDING` new, `TEXT_SUCCESS` text, `FIRST_SUCCESS`/`SUCCESS` each clip by its final mp3 and duration; `CREATE_TASK_FAILED`, `GENERATE_AUDIO_FAILED`, `CALLBACK_EXCEPTION`, `SENSITIVE_WORD_ERROR` fail every clip | the clip's `status`: `submitted`/`queued` new, `streaming`, `complete`, `error` | the clip's `status` as gcui's, its `metadata` read into it; the task's `FAILURE` fails every clip with `fail_reason` |
//! | codes → classes | HTTP's (`crate::api::submit`'s table) | 400, 413, 422 the row fails; 401 refused; **429 insufficient credits: refused** (402); 405, 430 rate limited; 455 maintenance: retried; 500 retried; others the row fails (kie: 402 refused, 429 rate limited, 455 retried) | HTTP's: 400 the row fails, 402 refused, 500 retried | HTTP's: 400 the row fails, 401–403 refused (its "insufficient quota" is a 403), 429 and 5xx retried |
//!
//! Whatever the provider, the completion rule is [`crate::api::feed`]'s
//! (a clip is complete only with its final mp3), a task ID passes the
//! rules of [`crate::api::answer`], server text is masked by the client
//! ([`crate::api::feed::TaskClips::mask_secrets`]), an empty key sends no
//! `Authorization` header, and no redirect is followed.
//!
//! # Adding a provider
//! One recipe; the compiler and the tests walk it with you, since every
//! `match` on a provider names each one and the list of providers is the
//! enum itself:
//! 1. `crate::job::Provider`: the variant (its name is derived; `ALL`, the
//!    `--provider` parser's list and every loop follow), its aliases in
//!    `parse`, and the arms `describe`, `default_base_url`, `known_hosts`,
//!    `sends_callbacks`, `needs_key` and `unsupported` ask for.
//! 2. The model catalogue (`crate::job::models`, `built_in.toml`): a
//!    `[provider.NAME]` table and an `offers.NAME` on each model it takes
//!    (its test fails for a provider that lists no model).
//! 3. Here: a module implementing [`Wire`] (and [`BatchPoll`], if its host
//!    answers many tasks in one poll), named in [`wire`], and its column in
//!    the table above; its fixtures and table tests in
//!    `tests/it/providers/bodies.rs`.
//! 4. Its face in the sandbox (`crate::sandbox::face`: the arms of `Face`).
//! 5. The `--provider` help of `ProviderArg` and `SandboxConfig`, and the
//!    README's providers table: `tests/it/cli.rs` checks each names every
//!    provider.
//!
//! Nothing above the wire layer changes.

pub mod gcui;
pub mod newapi;
pub mod signature;
pub mod sunoapi;
pub mod udioapi;

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use crate::api::answer::{Accepted, Balance, PollError, SubmitError};
use crate::api::feed::{FeedError, TaskClips};
use crate::job::{Job, Provider};
use crate::settings::GeneratePaths;

/// One provider's wire: requests out, answers in. Implementations hold no
/// state: [`wire`] hands out one `'static` of each.
pub trait Wire: Send + Sync + std::fmt::Debug {
    fn provider(&self) -> Provider;

    /// The path under the base URL this job is POSTed to. Only udioapi
    /// reads `paths` (plain vs callback, the `--generate-path` settings).
    fn submit_path(&self, job: &Job, paths: &GeneratePaths) -> String;

    /// The JSON request body, with `model` as the provider names it
    /// (`None`: leave the field out; see [`crate::job::Catalogue::wire_model`]).
    fn submit_body(&self, job: &Job, model: Option<&str>) -> Vec<u8>;

    /// A submit's answer: a task ID, or why not.
    ///
    /// # Errors
    /// A [`SubmitError`] whose class tells the pool what to do next.
    fn read_submit(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<Accepted, SubmitError>;

    /// Whether an HTTP 404 or 405 to the POST means the host serves no such
    /// endpoint (stop the run: `crate::api::submit`'s docs, "Missing
    /// endpoints"). sunoapi's 405 in its own envelope means rate limited.
    fn no_endpoint(&self, status: StatusCode, _body: &[u8]) -> bool {
        matches!(status.as_u16(), 404 | 405)
    }

    /// What to change when [`Wire::no_endpoint`]: for udioapi the setting
    /// that chose the path, for the others the provider and base URL.
    fn no_endpoint_fix(&self, _job: &Job) -> &'static str {
        "check --provider and --base-url"
    }

    /// The poll URL for one task ID as the results file stores it.
    fn poll_url(&self, base: &Url, task_id: &str) -> Url;

    /// A poll's answer (its body at most
    /// [`crate::api::feed::MAX_FEED_BODY`]), its server text not yet masked.
    ///
    /// # Errors
    /// A [`PollError`] whose methods tell collect what to do next.
    fn read_poll(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<TaskClips, PollError>;

    /// A callback body, its server text not yet masked.
    ///
    /// # Errors
    /// A [`FeedError`] for a body of the wrong shape, or from a provider
    /// that sends no callbacks (the receiver refuses those earlier).
    fn read_callback(&self, body: &[u8]) -> Result<TaskClips, FeedError>;

    /// Keeps only the clips of `task_id` from a poll's answer. A body that
    /// can list other tasks' clips (gcui's `/api/get` lists the newest
    /// clips of the account when a proxy drops its `ids`) must not file
    /// them, and their songs, under this job. Dropped clips are counted in
    /// [`TaskClips::skipped`]. By default a body that names another task
    /// ([`TaskClips::names_other_task`]: sunoapi's records and callbacks)
    /// keeps nothing, and any other is kept whole.
    fn only_task(&self, task_id: &str, clips: TaskClips) -> TaskClips {
        drop_if_another_task(task_id, clips)
    }

    /// Whether `task_id` looks like one this provider issues. A gcui task
    /// is two clip IDs (letters, digits, `-`) joined by a comma, which
    /// batchgen wrote itself; other providers' IDs are the host's text,
    /// which may hold a comma too, so they own anything but that shape.
    /// Used on a whole results file: see `crate::engine::collect`'s check.
    fn owns_task_id(&self, task_id: &str) -> bool {
        !super::provider::gcui::is_clip_pair(task_id)
    }

    /// The batch poll, for a provider that answers many tasks in one
    /// request; `None` (the default) for one that polls a task per request
    /// at [`Wire::poll_url`].
    fn batch_poll(&self) -> Option<&dyn BatchPoll> {
        None
    }

    /// The path of the balance endpoint under the base URL.
    fn credits_path(&self) -> &'static str;

    /// Why this provider shows a key no balance in credits, if it shows
    /// none: its [`Wire::credits_path`] then only checks the key, and
    /// `batchgen credits` says so instead of printing a number.
    fn no_balance(&self) -> Option<&'static str> {
        None
    }

    /// A credits answer.
    ///
    /// # Errors
    /// As [`Wire::read_submit`]; an answer without the balance is
    /// [`SubmitError::Unexpected`].
    fn read_balance(&self, status: StatusCode, body: &[u8]) -> Result<Balance, SubmitError>;
}

/// Many tasks in one poll request: an optional capability of a [`Wire`]
/// ([`Wire::batch_poll`]). Which tasks are due is the collect engine's
/// schedule; it packs up to [`BatchPoll::max_batch`] of them into one
/// request (`crate::api::poll::FeedClient::poll_many`), which passes the
/// poll rate limiter once.
pub trait BatchPoll: Send + Sync + std::fmt::Debug {
    /// Most task IDs one request carries.
    fn max_batch(&self) -> usize;

    /// Largest answer read, for a request of [`BatchPoll::max_batch`] tasks.
    fn max_body(&self) -> usize;

    /// Where the batch is POSTed.
    fn batch_url(&self, base: &Url) -> Url;

    /// The JSON request body asking for `task_ids`.
    fn batch_body(&self, task_ids: &[&str]) -> Vec<u8>;

    /// A batch answer: one result per task of `task_ids`, in their order,
    /// its server text not yet masked. A task the answer does not list is
    /// a bad answer for that task, as a 404 is for a single poll.
    ///
    /// # Errors
    /// A [`PollError`] for the whole request (an error status, a body of
    /// the wrong shape): every task of it failed the same way, once.
    fn read_batch(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
        task_ids: &[&str],
    ) -> Result<Vec<Result<TaskClips, PollError>>, PollError>;
}

/// `clips` emptied when they name another task than `task_id`: an earlier
/// submission's callback (after `--retry-unknown`), or a misrouted answer,
/// must not be filed under the task the results file holds.
pub fn drop_if_another_task(task_id: &str, mut clips: TaskClips) -> TaskClips {
    if clips.names_other_task(task_id) {
        clips.skipped += clips.clips.len();
        clips.clips.clear();
        clips.failure = None;
        clips.task_type = None;
    }
    clips
}

/// The wire of `provider`.
pub fn wire(provider: Provider) -> &'static dyn Wire {
    match provider {
        Provider::Udioapi => &udioapi::Udioapi,
        Provider::Sunoapi => &sunoapi::SUNOAPI,
        Provider::Kie => &sunoapi::KIE,
        Provider::Gcui => &gcui::Gcui,
        Provider::Newapi => &newapi::Newapi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_its_wire() {
        for &p in Provider::ALL {
            assert_eq!(wire(p).provider(), p);
        }
    }
}
