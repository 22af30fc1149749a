//! A new-api / one-api relay's Suno task API (docs.newapi.pro/api/suno-music;
//! QuantumNous/new-api `dto/suno.go`, `relay/relay_task.go`), which
//! self-hosted new-api and many resellers serve: `POST suno/submit/music`,
//! a task ID in `data`, task objects polled one by one (`GET
//! suno/fetch/{id}`) or many at once (`POST suno/fetch`).
//!
//! # Bodies
//! Submit `{prompt, tags, mv, title, gpt_description_prompt,
//! make_instrumental}`: in custom mode `prompt` is the lyrics and `tags`
//! the style; outside it the description (batchgen's `prompt`, or its
//! `gpt_description_prompt`) goes in `gpt_description_prompt`. `mv` is
//! Suno's internal model name (the model catalogue's, `batchgen models
//! --provider newapi`); a job without a model is sent the catalogue's
//! default, never an empty `mv`, which the relay fills with a retired
//! model. Accepted:
//! `{"code":"success","message":"","data":"<task id>"}`.
//!
//! A task object is `{task_id, action, status, fail_reason, submit_time,
//! start_time, finish_time, progress, data}`, `data` the task's Suno clips
//! (`id`, `status` submitted/queued/streaming/complete/error, `audio_url`,
//! `image_url`, `title`, `model_name`, `created_at`, and `metadata` with
//! `tags`, `prompt`, `duration`, `error_message`). The clips' `metadata`
//! is read into the clip, so the one completion rule of
//! [`crate::api::feed`] judges them. The task's `status`: `NOT_START`,
//! `SUBMITTED`, `QUEUED`, `IN_PROGRESS` in progress, `SUCCESS` (its clips
//! still decide), `FAILURE` fails every clip with `fail_reason`.
//!
//! # Errors
//! Errors come as `{"code":"<word>","message":"...","data":null}` (the
//! relay's task errors) or OpenAI's `{"error":{"message":...}}` (its
//! token check, its rate limiter) and are classed by the HTTP status
//! only: 400 the row fails, 401 and 403 refused, 402 and the relay's
//! "insufficient quota" (a 403) refused, 429 retried, 5xx retried as every
//! submit is (`crate::api::submit`'s table). An unknown task ID answers
//! 400 `task_not_exist`: a bad answer for that task, as a 404 is.
//!
//! # Batch polls
//! `POST suno/fetch {"ids":[…],"action":"MUSIC"}` answers
//! `{"code":"success","data":[task objects]}`, in no promised order, and
//! without the tasks it does not know. Collect packs up to [`MAX_BATCH`]
//! due tasks in one request ([`BatchPoll`]); a task missing from the
//! answer is a bad answer for that task.
//!
//! # Credits
//! A relay shows a token no balance in credits (see [`BALANCE`]); its
//! token-checked `GET v1/dashboard/billing/subscription` is asked only to
//! check the key.

use crate::api::answer::HostError;
use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use url::Url;

use super::{BatchPoll, Wire};
use crate::api::answer::{self, Accepted, Balance, PollError, SubmitError};
use crate::api::feed::{self, FeedError, MAX_FEED_BODY, Shape, TaskClips, TaskType};
use crate::api::http::endpoint;
use crate::job::{Job, Provider};
use crate::settings::GeneratePaths;

/// Where a job is submitted.
pub const SUBMIT_PATH: &str = "suno/submit/music";
/// One task (`GET suno/fetch/{id}`), or many (`POST suno/fetch`).
pub const FETCH_PATH: &str = "suno/fetch";
/// Most task IDs one batch poll carries. The relay takes any number (one
/// database query); 50 keeps an answer (two clips a task, lyrics
/// included) to a few hundred KiB.
pub const MAX_BATCH: usize = 50;
/// Largest batch answer read: [`MAX_BATCH`] tasks at 160 KiB each, where
/// one task's two clips are a few KiB.
pub const MAX_BATCH_BODY: usize = 8 * 1024 * 1024;
/// The task statuses of a task still in progress.
pub const IN_PROGRESS: &[&str] = &["NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS"];
/// The path asked for the balance, only to check the key (module docs).
pub const SUBSCRIPTION_PATH: &str = "v1/dashboard/billing/subscription";
/// Why `batchgen credits` shows no balance for a relay.
pub const BALANCE: &str = "a new-api relay shows a token no balance in credits: its OpenAI-style billing endpoints give the quota in the site's display unit (dollars, yuan or tokens, a setting of each site that the answer does not name), an unlimited token as 100000000, and the balance only as the difference of two answers; see the relay's own dashboard";

/// A relay's wire.
#[derive(Debug)]
pub struct Newapi;

/// The submit body, in the relay's order (`dto.SunoSubmitReq`).
#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a str>,
    /// Left out only when the catalogue names no default for the relay
    /// (its own is the retired `chirp-v3-0`: see the built-in catalogue).
    #[serde(skip_serializing_if = "Option::is_none")]
    mv: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gpt_description_prompt: Option<&'a str>,
    make_instrumental: bool,
}

/// The envelope of every answer: `{code, message, data}`, `code` a word.
#[derive(Deserialize)]
struct Envelope<'a> {
    code: Option<Value>,
    message: Option<Value>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

impl Envelope<'_> {
    fn is_success(&self) -> bool {
        self.code
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("success"))
    }

    fn describe(&self) -> String {
        let field = |v: &Option<Value>| v.as_ref().map(answer::value_text).unwrap_or_default();
        format!(
            "code {:?}, message {:?}",
            field(&self.code),
            field(&self.message)
        )
    }
}

/// The message of an error answer: the task error's `message`, OpenAI's
/// `error.message`, the other providers' names, else an excerpt.
fn error_message(body: &[u8], status: StatusCode) -> String {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let text = |v: Option<&Value>| {
        v.map(answer::value_text)
            .filter(|m| !m.is_empty() && m != "null")
    };
    let from_openai = || text(value.as_ref()?.get("error")?.get("message"));
    value
        .as_ref()
        .and_then(|v| text(v.get("message")))
        .or_else(from_openai)
        .or_else(|| answer::server_text(body))
        .unwrap_or_else(|| answer::body_excerpt(body, status))
}

fn poll_status(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> PollError {
    PollError::Host(HostError::Status {
        status: status.as_u16(),
        message: error_message(body, status),
        retry_after,
    })
}

impl Wire for Newapi {
    fn provider(&self) -> Provider {
        Provider::Newapi
    }

    fn submit_path(&self, _job: &Job, _paths: &GeneratePaths) -> String {
        SUBMIT_PATH.to_owned()
    }

    fn submit_body(&self, job: &Job, model: Option<&str>) -> Vec<u8> {
        let f = &job.fields;
        let mode = f.mode();
        let (prompt, description) = if mode.custom {
            (f.prompt.as_deref(), None)
        } else {
            (
                None,
                f.prompt.as_deref().or(f.gpt_description_prompt.as_deref()),
            )
        };
        let body = Body {
            prompt,
            tags: f.style.as_deref(),
            mv: model,
            title: f.title.as_deref(),
            gpt_description_prompt: description,
            make_instrumental: mode.instrumental,
        };
        serde_json::to_vec(&body).expect("a job's fields always serialize")
    }

    fn read_submit(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<Accepted, SubmitError> {
        if !status.is_success() {
            return Err(SubmitError::Host(HostError::Status {
                status: status.as_u16(),
                message: error_message(body, status),
                retry_after,
            }));
        }
        let unexpected = |detail: String| SubmitError::Unexpected {
            status: status.as_u16(),
            detail,
        };
        let envelope: Envelope = serde_json::from_slice(body).map_err(|_| {
            unexpected(format!(
                "not the JSON expected: {}",
                answer::body_excerpt(body, status)
            ))
        })?;
        // The relay answers `success` with the ID or an error status, never
        // a 2xx with another code: one is not taken for a task (the row is
        // `unknown`, never resent).
        if !envelope.is_success() {
            return Err(unexpected(format!(
                "not a success ({})",
                envelope.describe()
            )));
        }
        match envelope.data.map(answer::task_id).transpose() {
            Ok(Some(Some(task_id))) => Ok(Accepted {
                task_id,
                http_status: status.as_u16(),
            }),
            Err(why) => Err(unexpected(format!("data is not a usable task ID: {why}"))),
            Ok(_) => Err(unexpected(format!(
                "no task ID in data ({})",
                envelope.describe()
            ))),
        }
    }

    fn poll_url(&self, base: &Url, task_id: &str) -> Url {
        let mut url = endpoint(base, FETCH_PATH);
        url.path_segments_mut()
            .expect("an http URL has path segments")
            .pop_if_empty()
            .push(task_id);
        url
    }

    fn read_poll(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<TaskClips, PollError> {
        if !status.is_success() {
            return Err(poll_status(status, body, retry_after));
        }
        if body.len() > MAX_FEED_BODY {
            return Err(FeedError::TooLarge.into());
        }
        match success_data(body)? {
            Value::Object(object) => Ok(task(&object)?),
            _ => Err(FeedError::Shape("`data` is not a task object").into()),
        }
    }

    fn read_callback(&self, _body: &[u8]) -> Result<TaskClips, FeedError> {
        Err(FeedError::Shape(
            "a new-api relay sends its clients no callbacks",
        ))
    }

    fn batch_poll(&self) -> Option<&dyn BatchPoll> {
        Some(self)
    }

    fn credits_path(&self) -> &'static str {
        SUBSCRIPTION_PATH
    }

    fn no_balance(&self) -> Option<&'static str> {
        Some(BALANCE)
    }

    fn read_balance(&self, status: StatusCode, body: &[u8]) -> Result<Balance, SubmitError> {
        if !status.is_success() {
            return Err(SubmitError::Host(HostError::Status {
                status: status.as_u16(),
                message: error_message(body, status),
                retry_after: None,
            }));
        }
        // The relay's answer to a token it took, or another host's.
        let value: Option<Value> = serde_json::from_slice(body).ok();
        let relay = value
            .as_ref()
            .and_then(|v| v.get("object"))
            .and_then(Value::as_str)
            == Some("billing_subscription");
        Err(SubmitError::Unexpected {
            status: status.as_u16(),
            detail: if relay {
                BALANCE.to_owned()
            } else {
                format!(
                    "not a new-api relay's billing answer: {}",
                    answer::body_excerpt(body, status)
                )
            },
        })
    }
}

impl BatchPoll for Newapi {
    fn max_batch(&self) -> usize {
        MAX_BATCH
    }

    fn max_body(&self) -> usize {
        MAX_BATCH_BODY
    }

    fn batch_url(&self, base: &Url) -> Url {
        endpoint(base, FETCH_PATH)
    }

    fn batch_body(&self, task_ids: &[&str]) -> Vec<u8> {
        let body = serde_json::json!({"ids": task_ids, "action": "MUSIC"});
        serde_json::to_vec(&body).expect("task IDs always serialize")
    }

    fn read_batch(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
        task_ids: &[&str],
    ) -> Result<Vec<Result<TaskClips, PollError>>, PollError> {
        if !status.is_success() {
            return Err(poll_status(status, body, retry_after));
        }
        if body.len() > MAX_BATCH_BODY {
            return Err(FeedError::TooLarge.into());
        }
        let objects = match success_data(body)? {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            _ => return Err(FeedError::Shape("`data` is not a list of tasks").into()),
        };
        let mut by_id: HashMap<String, Map<String, Value>> = HashMap::new();
        for item in objects {
            if let Value::Object(object) = item
                && let Some(id) = object.get("task_id").and_then(named_task)
            {
                by_id.entry(id).or_insert(object);
            }
        }
        Ok(task_ids
            .iter()
            .map(|id| match by_id.get(*id) {
                Some(object) => task(object).map_err(PollError::from),
                None => Err(FeedError::Shape("the batch answer does not list this task").into()),
            })
            .collect())
    }
}

/// `data` of a 2xx answer whose `code` is `success`.
fn success_data(body: &[u8]) -> Result<Value, FeedError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let mut text = e.to_string();
        text.truncate(200);
        FeedError::NotJson(text)
    })?;
    let Value::Object(mut map) = value else {
        return Err(FeedError::Shape("not an object"));
    };
    let success = map
        .get("code")
        .and_then(Value::as_str)
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("success"));
    if !success {
        return Err(FeedError::Shape("its `code` is not \"success\""));
    }
    Ok(map.remove("data").unwrap_or(Value::Null))
}

/// A task object: its status, and its Suno clips read by the one parser.
fn task(object: &Map<String, Value>) -> Result<TaskClips, FeedError> {
    let status = object
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    let items: Vec<Value> = match object.get("data") {
        Some(Value::Array(items)) => items.iter().map(flatten_metadata).collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(_) => return Err(FeedError::Shape("the task's `data` is not a list of clips")),
    };
    // Suno's clips carry their own status; one without is at the task's.
    let stage = if status == "SUCCESS" {
        "complete"
    } else {
        "new"
    };
    let mut clips = feed::clips_at_stage(Shape::Task, &items, stage);
    clips.task_id = object.get("task_id").and_then(named_task);
    clips.task_type = Some(match status.as_str() {
        "SUCCESS" => TaskType::Success,
        _ => TaskType::InProgress,
    });
    if status == "FAILURE" {
        let why = object
            .get("fail_reason")
            .map(answer::value_text)
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| "the task failed (FAILURE)".to_owned());
        feed::fail_task(&mut clips, why);
    }
    Ok(clips)
}

/// A Suno clip with its `metadata` fields (`tags`, `prompt`, `duration`,
/// `error_message`) where the clip parser reads them, unless the clip
/// has them itself.
fn flatten_metadata(clip: &Value) -> Value {
    let Value::Object(map) = clip else {
        return clip.clone();
    };
    let mut out = map.clone();
    if let Some(Value::Object(metadata)) = map.get("metadata") {
        for name in ["tags", "prompt", "duration", "error_message"] {
            match metadata.get(name) {
                None | Some(Value::Null) => {}
                Some(value) => {
                    out.entry(name).or_insert_with(|| value.clone());
                }
            }
        }
    }
    Value::Object(out)
}

/// A task ID a body names, as text; `None` when absent or empty.
fn named_task(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_read_into_the_clip_unless_the_clip_has_it() {
        let clip = serde_json::json!({"id": "c", "tags": "own",
            "metadata": {"tags": "meta", "duration": 12.5, "error_message": null}});
        let flat = flatten_metadata(&clip);
        assert_eq!(flat["tags"], "own");
        assert_eq!(flat["duration"], 12.5);
        assert!(flat.get("error_message").is_none());
    }

    #[test]
    fn the_fetch_url_escapes_the_task_id() {
        let base = Url::parse("https://relay.example/prefix").unwrap();
        assert_eq!(
            Newapi.poll_url(&base, "a/b c").as_str(),
            "https://relay.example/prefix/suno/fetch/a%2Fb%20c"
        );
        assert_eq!(
            Newapi.batch_url(&base).as_str(),
            "https://relay.example/prefix/suno/fetch"
        );
    }
}
