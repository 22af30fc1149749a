//! gcui-art/suno-api, self-hosted (its `src/app/api/*` and
//! `src/lib/SunoApi.ts`): `POST api/generate` (description) or
//! `api/custom_generate` (custom mode), answered with a bare array of the
//! two clips it made; `GET api/get?ids=` answers the same clips later.
//!
//! # The task ID is the clips
//! The host has no task ID: a task is its two clips. The task ID batchgen
//! keeps (the results file's `task_id`, the poll's `ids=`) is the two clip
//! ids joined by `,` in the answer's order, `a,b`. Each id passes the task
//! ID rules of [`crate::api::answer`] and holds no `,`, the joined text
//! too; an answer without exactly two usable, distinct ids is
//! [`SubmitError::Unexpected`] (class `Ambiguous`: the clips may exist and
//! be billed, so the row is `unknown`, not resent).
//!
//! Errors come as `{"error": "..."}` with the HTTP status and mean what
//! HTTP says: 400 the row fails, 402 (no credits) stops the run, 500 is
//! retried. It sends no callbacks, and takes no key: an empty key sends
//! no `Authorization` header (the client's rule for every provider).

use crate::api::answer::HostError;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use url::Url;

use super::Wire;
use crate::api::answer::{self, Accepted, Balance, PollError, SubmitError};
use crate::api::feed::{self, FeedError, TaskClips};
use crate::api::http::endpoint;
use crate::job::{Job, Provider};
use crate::settings::GeneratePaths;

/// Between the clip ids of one task ID.
pub const ID_SEPARATOR: char = ',';

/// Whether `task_id` has the shape of a gcui task as batchgen stores it:
/// two clip IDs of letters, digits and `-`, joined by [`ID_SEPARATOR`].
pub fn is_clip_pair(task_id: &str) -> bool {
    let mut ids = task_id.split(ID_SEPARATOR);
    let clip = |id: Option<&str>| {
        id.is_some_and(|id| {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    };
    clip(ids.next()) && clip(ids.next()) && ids.next().is_none()
}

/// gcui's wire.
#[derive(Debug)]
pub struct Gcui;

/// `POST api/generate`: a description (ours: `prompt`, or
/// `gpt_description_prompt` without one).
#[derive(Serialize)]
struct Description<'a> {
    prompt: &'a str,
    make_instrumental: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    wait_audio: bool,
}

/// `POST api/custom_generate`: lyrics, its `tags` are our `style`, its
/// `negative_tags` our `tags`.
#[derive(Serialize)]
struct Custom<'a> {
    prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    negative_tags: Option<&'a str>,
    make_instrumental: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    wait_audio: bool,
}

impl Wire for Gcui {
    fn provider(&self) -> Provider {
        Provider::Gcui
    }

    fn submit_path(&self, job: &Job, _paths: &GeneratePaths) -> String {
        if job.fields.mode().custom {
            "api/custom_generate".to_owned()
        } else {
            "api/generate".to_owned()
        }
    }

    fn submit_body(&self, job: &Job, model: Option<&str>) -> Vec<u8> {
        let f = &job.fields;
        let mode = f.mode();
        let encoded = if mode.custom {
            serde_json::to_vec(&Custom {
                prompt: f.prompt.as_deref().unwrap_or_default(),
                tags: f.style.as_deref(),
                title: f.title.as_deref(),
                negative_tags: f.tags.as_deref(),
                make_instrumental: mode.instrumental,
                model,
                wait_audio: false,
            })
        } else {
            let prompt = f.prompt.as_deref().or(f.gpt_description_prompt.as_deref());
            serde_json::to_vec(&Description {
                prompt: prompt.unwrap_or_default(),
                make_instrumental: mode.instrumental,
                model,
                wait_audio: false,
            })
        };
        encoded.expect("a job's fields always serialize")
    }

    fn read_submit(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<Accepted, SubmitError> {
        if !status.is_success() {
            return Err(answer::error_status(status, body, retry_after));
        }
        let unexpected = |detail: String| SubmitError::Unexpected {
            status: status.as_u16(),
            detail,
        };
        let task_id = clip_ids(body).map_err(unexpected)?;
        Ok(Accepted {
            task_id,
            http_status: status.as_u16(),
        })
    }

    fn poll_url(&self, base: &Url, task_id: &str) -> Url {
        let mut url = endpoint(base, "api/get");
        url.query_pairs_mut().append_pair("ids", task_id);
        url
    }

    fn read_poll(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<TaskClips, PollError> {
        if !status.is_success() {
            let message = answer::server_text(body)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
            return Err(PollError::Host(HostError::Status {
                status: status.as_u16(),
                message,
                retry_after,
            }));
        }
        if body.len() <= feed::MAX_FEED_BODY && !body.trim_ascii_start().starts_with(b"[") {
            return Err(FeedError::Shape("not a list of clips").into());
        }
        Ok(feed::parse(body)?)
    }

    fn owns_task_id(&self, task_id: &str) -> bool {
        is_clip_pair(task_id)
    }

    fn only_task(&self, task_id: &str, mut clips: TaskClips) -> TaskClips {
        let ours: Vec<&str> = task_id.split(ID_SEPARATOR).collect();
        let before = clips.clips.len();
        clips.clips.retain(|c| ours.contains(&c.id.as_str()));
        clips.skipped += before - clips.clips.len();
        clips
    }

    fn read_callback(&self, _body: &[u8]) -> Result<TaskClips, FeedError> {
        Err(FeedError::Shape("gcui-art/suno-api sends no callbacks"))
    }

    fn credits_path(&self) -> &'static str {
        "api/get_limit"
    }

    fn read_balance(&self, status: StatusCode, body: &[u8]) -> Result<Balance, SubmitError> {
        if !status.is_success() {
            return Err(answer::error_status(status, body, None));
        }
        let value: Option<Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| value.as_ref()?.get(name).and_then(answer::number);
        match field("credits_left") {
            Some(credits) => Ok(Balance {
                credits,
                used_credits: field("monthly_usage"),
            }),
            None => Err(answer::no_balance(status, body, "credits_left")),
        }
    }
}

/// The task ID of a submit's answer: its two clip ids joined (module docs).
fn clip_ids(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Clip<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
    }
    let clips: Vec<&RawValue> = serde_json::from_slice(body).map_err(|_| {
        format!(
            "not the list of two clips expected: {}",
            answer::body_excerpt(body, StatusCode::OK)
        )
    })?;
    if clips.len() != 2 {
        return Err(format!("{} clips, not the two a task makes", clips.len()));
    }
    let mut ids = Vec::with_capacity(2);
    for (i, raw) in clips.iter().enumerate() {
        let id = serde_json::from_str::<Clip>(raw.get())
            .ok()
            .and_then(|c| c.id)
            .map(answer::task_id)
            .transpose()
            .map_err(|why| format!("clip {i}'s id is not a usable task ID: {why}"))?
            .flatten()
            .ok_or_else(|| format!("clip {i} has no id"))?;
        if id.contains(ID_SEPARATOR) {
            return Err(format!("clip {i}'s id holds {ID_SEPARATOR:?}"));
        }
        ids.push(id);
    }
    if ids[0] == ids[1] {
        return Err("both clips have the same id".to_owned());
    }
    let joined = ids.join(&ID_SEPARATOR.to_string());
    answer::checked_task_id(joined.clone())
        .map_err(|why| format!("the clip ids joined are not a usable task ID: {why}"))?
        .ok_or_else(|| "no clip ids".to_owned())
}
