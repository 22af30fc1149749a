//! sunoapi.org's request schema, spoken by sunoapi.org and its clones
//! (api.box) and by kie.ai: `POST api/v1/generate` with a camelCase body,
//! `data.taskId`, `record-info` polls, callbacks in an envelope, and codes
//! of their own (see the table of [`super`]). The two profiles
//! ([`SUNOAPI`], [`KIE`]) differ only in their codes and credits path.
//!
//! # Codes
//! A code arrives as the HTTP status or in the body's `code` with HTTP 200
//! (some clones); the body's wins when both are there. Where a code's
//! meaning is not HTTP's it becomes a [`Meaning`]:
//!
//! | code | sunoapi | kie |
//! |---|---|---|
//! | 402 | HTTP's (refused) | insufficient credits: the run stops |
//! | 429 | **insufficient credits**: the run stops, never retried | rate limited (the pool's rate limit gives way) |
//! | 405, 430 | rate limited (the pool's rate limit gives way) | HTTP's |
//! | 455 | maintenance: backoff | maintenance: backoff |
//! | 400, 401, 413, 422, 500 | HTTP's | HTTP's (and 404, 451 "cannot fetch the file", 505 "feature disabled": the row fails) |
//!
//! A code in a body that the docs do not list fails the row
//! ([`Meaning::Unknown`]); an HTTP status they do not list (a proxy's 502)
//! keeps HTTP's meaning. Polls map the same codes the same way
//! ([`HostError::Coded`]).

use crate::api::answer::HostError;
use std::time::Duration;

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use url::Url;

use super::Wire;
use crate::api::answer::{self, Accepted, Balance, Meaning, PollError, SubmitError};
use crate::api::feed::{self, FeedError, MAX_FEED_BODY, Shape, TaskClips, TaskType};
use crate::api::http::endpoint;
use crate::job::{Gender, Job, Provider, Weight};
use crate::settings::GeneratePaths;

/// The `callBackUrl` sent for a job without a callback: the hosts require
/// the field (kie.ai answers 422 "Please enter callBackUrl" without it),
/// and a name on the reserved `.invalid` TLD (RFC 2606) can never resolve,
/// so nothing is ever delivered anywhere. Results are polled.
pub const NO_CALLBACK: &str = "https://no-callback.invalid/batchgen";

/// The task stages that fail every clip (`data.status`).
pub const FAILED_STATUSES: &[&str] = &[
    "CREATE_TASK_FAILED",
    "GENERATE_AUDIO_FAILED",
    "CALLBACK_EXCEPTION",
    "SENSITIVE_WORD_ERROR",
];

/// The wire of sunoapi's request schema, with one provider's codes:
/// [`SUNOAPI`] or [`KIE`].
#[derive(Debug)]
pub struct Sunoapi {
    provider: Provider,
}

/// sunoapi.org and its clones.
pub static SUNOAPI: Sunoapi = Sunoapi {
    provider: Provider::Sunoapi,
};

/// kie.ai: sunoapi's requests and answers, its own codes and credits path.
pub static KIE: Sunoapi = Sunoapi {
    provider: Provider::Kie,
};

/// The request body, in the docs' order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    custom_mode: bool,
    instrumental: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    style: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    negative_tags: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vocal_gender: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    style_weight: Option<Weight>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weirdness_constraint: Option<Weight>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio_weight: Option<Weight>,
    call_back_url: &'a str,
}

/// The envelope every answer comes in: `{code, msg, data}`.
#[derive(Deserialize)]
struct Envelope<'a> {
    code: Option<Value>,
    msg: Option<Value>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

impl Envelope<'_> {
    /// The body's `code`, when it is a number (or a string holding one).
    fn code(&self) -> Option<u16> {
        let n = answer::number(self.code.as_ref()?)?;
        (n.fract() == 0.0 && (0.0..1000.0).contains(&n)).then_some(n as u16)
    }

    fn message(&self) -> String {
        self.msg
            .as_ref()
            .map(answer::value_text)
            .unwrap_or_default()
    }
}

/// A code's meaning on `provider` where it is not HTTP's; `None` where it
/// is. The two providers share a schema, not their codes: sunoapi's 429 is
/// "insufficient credits", kie's is "rate limited" and its 402 the credits.
fn meaning(provider: Provider, code: u16, from_body: bool) -> Option<Meaning> {
    match (provider, code) {
        (Provider::Kie, 402) => Some(Meaning::Credits),
        (Provider::Kie, 429) => Some(Meaning::RateLimited),
        (Provider::Kie, 455) => Some(Meaning::Maintenance),
        (Provider::Kie, 400 | 401 | 404 | 413 | 422 | 451 | 500 | 505) => None,
        (_, 429) => Some(Meaning::Credits),
        (_, 405 | 430) => Some(Meaning::RateLimited),
        (_, 455) => Some(Meaning::Maintenance),
        (_, 400 | 401 | 413 | 422 | 500) => None,
        _ if from_body => Some(Meaning::Unknown),
        _ => None,
    }
}

/// The error code of an answer: the body's when it holds one that is not
/// 200, else the HTTP status; and whether it came from the body.
fn error_code(status: StatusCode, envelope: Option<&Envelope>) -> (u16, bool) {
    match envelope.and_then(Envelope::code) {
        Some(code) if code != 200 => (code, true),
        _ => (status.as_u16(), false),
    }
}

fn submit_error(
    provider: Provider,
    code: (u16, bool),
    message: String,
    retry_after: Option<Duration>,
) -> SubmitError {
    match meaning(provider, code.0, code.1) {
        Some(meaning) => SubmitError::Host(HostError::Coded {
            code: code.0,
            meaning,
            message,
            retry_after,
        }),
        None => SubmitError::Host(HostError::Status {
            status: code.0,
            message,
            retry_after,
        }),
    }
}

fn poll_error(
    provider: Provider,
    code: (u16, bool),
    message: String,
    retry_after: Option<Duration>,
) -> PollError {
    match meaning(provider, code.0, code.1) {
        Some(meaning) => PollError::Host(HostError::Coded {
            code: code.0,
            meaning,
            message,
            retry_after,
        }),
        None => PollError::Host(HostError::Status {
            status: code.0,
            message,
            retry_after,
        }),
    }
}

/// The message of an error answer: `msg`, else an excerpt of the body.
fn error_message(envelope: Option<&Envelope>, body: &[u8], status: StatusCode) -> String {
    envelope
        .map(Envelope::message)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| answer::body_excerpt(body, status))
}

impl Wire for Sunoapi {
    fn provider(&self) -> Provider {
        self.provider
    }

    fn submit_path(&self, _job: &Job, _paths: &GeneratePaths) -> String {
        "api/v1/generate".to_owned()
    }

    fn submit_body(&self, job: &Job, model: Option<&str>) -> Vec<u8> {
        let f = &job.fields;
        let mode = f.mode();
        let prompt = match f.prompt.as_deref() {
            None if !mode.custom => f.gpt_description_prompt.as_deref(),
            prompt => prompt,
        };
        let body = Body {
            custom_mode: mode.custom,
            instrumental: mode.instrumental,
            prompt,
            style: f.style.as_deref(),
            title: f.title.as_deref(),
            model,
            negative_tags: f.tags.as_deref(),
            vocal_gender: f.gender.map(|g| match g {
                Gender::Male => "m",
                Gender::Female => "f",
            }),
            style_weight: f.style_weight,
            weirdness_constraint: f.weirdness_constraint,
            audio_weight: f.audio_weight,
            call_back_url: f.callback_url.as_deref().unwrap_or(NO_CALLBACK),
        };
        serde_json::to_vec(&body).expect("a job's fields always serialize")
    }

    fn read_submit(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<Accepted, SubmitError> {
        let envelope: Option<Envelope> = serde_json::from_slice(body).ok();
        if !status.is_success() {
            let message = error_message(envelope.as_ref(), body, status);
            return Err(submit_error(
                self.provider,
                error_code(status, envelope.as_ref()),
                message,
                retry_after,
            ));
        }
        let Some(envelope) = envelope else {
            return Err(SubmitError::Unexpected {
                status: status.as_u16(),
                detail: format!(
                    "not the JSON expected: {}",
                    answer::body_excerpt(body, status)
                ),
            });
        };
        #[derive(Deserialize)]
        struct Data<'a> {
            #[serde(rename = "taskId", borrow)]
            task_id: Option<&'a RawValue>,
        }
        let raw = envelope
            .data
            .and_then(|d| serde_json::from_str::<Data>(d.get()).ok())
            .and_then(|d| d.task_id);
        // A task ID is a task paid for, whatever the code beside it says.
        match raw.map(answer::task_id).transpose() {
            Ok(Some(Some(task_id))) => {
                return Ok(Accepted {
                    task_id,
                    http_status: status.as_u16(),
                });
            }
            Err(why) => {
                return Err(SubmitError::Unexpected {
                    status: status.as_u16(),
                    detail: format!("data.taskId is not a usable task ID: {why}"),
                });
            }
            Ok(_) => {}
        }
        let message = envelope.message();
        match envelope.code() {
            Some(code) if code != 200 => Err(submit_error(
                self.provider,
                (code, true),
                message,
                retry_after,
            )),
            _ => Err(SubmitError::Unexpected {
                status: status.as_u16(),
                detail: format!("no data.taskId in the answer ({message:?})"),
            }),
        }
    }

    fn no_endpoint(&self, status: StatusCode, body: &[u8]) -> bool {
        let code = serde_json::from_slice::<Envelope>(body)
            .ok()
            .and_then(|e| e.code());
        match status.as_u16() {
            // Its own envelope saying 405 (or 430): rate limited, not a
            // missing path.
            405 => !matches!(code, Some(405 | 430)),
            404 => true,
            _ => false,
        }
    }

    fn poll_url(&self, base: &Url, task_id: &str) -> Url {
        let mut url = endpoint(base, "api/v1/generate/record-info");
        url.query_pairs_mut().append_pair("taskId", task_id);
        url
    }

    fn read_poll(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<TaskClips, PollError> {
        if body.len() > MAX_FEED_BODY {
            return Err(FeedError::TooLarge.into());
        }
        let envelope: Option<Envelope> = serde_json::from_slice(body).ok();
        let code = error_code(status, envelope.as_ref());
        if !status.is_success() || code.1 {
            let message = error_message(envelope.as_ref(), body, status);
            return Err(poll_error(self.provider, code, message, retry_after));
        }
        let data = object(body, "data")?;
        record(&data)
    }

    fn read_callback(&self, body: &[u8]) -> Result<TaskClips, FeedError> {
        if body.len() > MAX_FEED_BODY {
            return Err(FeedError::TooLarge);
        }
        let top = object(body, "")?;
        let data = match top.get("data") {
            Some(Value::Object(data)) => data,
            _ => return Err(FeedError::Shape("`data` is not an object")),
        };
        let items = list(data.get("data"))?;
        let kind = data
            .get("callbackType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let code = top.get("code").and_then(answer::number);
        let code = code.filter(|c| c.fract() == 0.0 && (0.0..1000.0).contains(c));
        let stage = match kind.as_str() {
            "text" => "text",
            "first" | "complete" => "streaming",
            _ => "new",
        };
        let mut clips = feed::clips_at_stage(Shape::Callback, items, stage);
        clips.task_id = data.get("task_id").and_then(named_task);
        if code != Some(200.0) || kind == "error" {
            let message = top.get("msg").map(answer::value_text).unwrap_or_default();
            let why = callback_failure(code.map(|c| c as u16), &message);
            feed::fail_task(&mut clips, why);
        }
        Ok(clips)
    }

    fn credits_path(&self) -> &'static str {
        match self.provider {
            Provider::Kie => "api/v1/chat/credit",
            Provider::Sunoapi | Provider::Udioapi | Provider::Gcui | Provider::Newapi => {
                "api/v1/generate/credit"
            }
        }
    }

    fn read_balance(&self, status: StatusCode, body: &[u8]) -> Result<Balance, SubmitError> {
        let envelope: Option<Envelope> = serde_json::from_slice(body).ok();
        let code = error_code(status, envelope.as_ref());
        if !status.is_success() || code.1 {
            let message = error_message(envelope.as_ref(), body, status);
            return Err(submit_error(self.provider, code, message, None));
        }
        let data = envelope
            .and_then(|e| e.data)
            .and_then(|d| serde_json::from_str::<Value>(d.get()).ok());
        match data.as_ref().and_then(answer::number) {
            Some(credits) => Ok(Balance {
                credits,
                used_credits: None,
            }),
            None => Err(answer::no_balance(status, body, "data (a number)")),
        }
    }
}

/// The callback codes the docs list ("Music Generation Callbacks") other
/// than 200, with what each means; every one fails the task's clips.
pub const CALLBACK_CODES: &[(u16, &str)] = &[
    (400, "lyrics contain copyrighted material"),
    (408, "timed out"),
    (413, "the audio matches an existing work"),
    (500, "server error"),
    (501, "audio generation failed"),
    (531, "generation failed, credits refunded; submit again"),
];

/// The code with which the host says a failed task is worth submitting
/// again ("generation failed, credits refunded"; API.md).
pub const RESEND_CODE: u16 = 531;

/// Whether a clip's failure, as the catalog keeps it, is one the host says
/// is worth submitting again: code [`RESEND_CODE`] as `callback_failure`
/// or `record_failure` wrote it. Only the code batchgen wrote in front
/// decides; the host's own message after it is never read, so a message
/// that quotes the code cannot make a job be sent again.
pub fn worth_resending(reason: &str) -> bool {
    let callback = format!("callback code {RESEND_CODE} (");
    if reason.starts_with(&callback) {
        return true;
    }
    reason
        .strip_prefix("the task failed: ")
        .and_then(|rest| rest.split_once(' '))
        .is_some_and(|(status, rest)| {
            !status.is_empty() && rest.starts_with(&format!("(errorCode {RESEND_CODE})"))
        })
}

/// Why a callback failed the task: its code and what the docs say it
/// means, then the host's own message, e.g. `callback code 531
/// (generation failed, credits refunded; submit again): Sorry, …`. Only
/// the code decides; the message is reported, never read.
fn callback_failure(code: Option<u16>, message: &str) -> String {
    let mut why = match code {
        Some(code) => match CALLBACK_CODES.iter().find(|(c, _)| *c == code) {
            Some((_, meaning)) => format!("callback code {code} ({meaning})"),
            None if code == 200 => "callback type error".to_owned(),
            None => format!("callback code {code}"),
        },
        None => "a callback without a code".to_owned(),
    };
    if !message.is_empty() {
        why.push_str(": ");
        why.push_str(message);
    }
    why
}

/// The JSON object of a body, or its member `field` ("" for the body).
fn object(body: &[u8], field: &str) -> Result<Map<String, Value>, FeedError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let mut text = e.to_string();
        text.truncate(200);
        FeedError::NotJson(text)
    })?;
    let value = match (field, value) {
        ("", value) => value,
        (_, Value::Object(mut map)) => map.remove(field).unwrap_or(Value::Null),
        _ => return Err(FeedError::Shape("not an object")),
    };
    match value {
        Value::Object(map) => Ok(map),
        _ if field.is_empty() => Err(FeedError::Shape("not an object")),
        _ => Err(FeedError::Shape("`data` is not an object")),
    }
}

fn list(value: Option<&Value>) -> Result<&[Value], FeedError> {
    match value {
        Some(Value::Array(items)) => Ok(items),
        Some(Value::Null) | None => Ok(&[]),
        Some(_) => Err(FeedError::Shape("the clips are not a list")),
    }
}

/// `record-info`'s `data`: the task's stage, and its clips read as the
/// clip parser's snake_case ones. The clips are in `response.sunoData`
/// (camelCase, sunoapi.org's docs) or in `response.data` (snake_case, the
/// variant of the cn quick-start): both are read, the first that is there.
fn record(data: &Map<String, Value>) -> Result<TaskClips, PollError> {
    let status = data
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    let items = match data.get("response") {
        Some(Value::Object(response)) => {
            let clips = ["sunoData", "data"]
                .iter()
                .find_map(|name| response.get(*name).filter(|v| !v.is_null()));
            list(clips)?
        }
        Some(Value::Null) | None => &[],
        Some(_) => return Err(FeedError::Shape("`data.response` is not an object").into()),
    };
    let items: Vec<Value> = items.iter().map(snake_case).collect();
    let failed = FAILED_STATUSES.contains(&status.as_str());
    let stage = match status.as_str() {
        "TEXT_SUCCESS" => "text",
        "FIRST_SUCCESS" | "SUCCESS" => "streaming",
        _ => "new",
    };
    let mut clips = feed::clips_at_stage(Shape::Record, &items, stage);
    clips.task_id = data.get("taskId").and_then(named_task);
    clips.task_type = Some(match status.as_str() {
        "SUCCESS" => TaskType::Success,
        _ => TaskType::InProgress,
    });
    if failed {
        feed::fail_task(&mut clips, record_failure(data, &status));
    } else if status == "SUCCESS" {
        feed::hold_back_unfinished(&mut clips);
    }
    Ok(clips)
}

/// Why a failed record failed: its status, with its `errorCode` and
/// `errorMessage` when it has them (e.g. `GENERATE_AUDIO_FAILED (errorCode
/// 531): Sorry, generation failed…`), so the catalog says what the host
/// said.
fn record_failure(data: &Map<String, Value>, status: &str) -> String {
    let field = |camel: &str, snake: &str| {
        [camel, snake]
            .iter()
            .filter_map(|f| data.get(*f))
            .map(answer::value_text)
            .find(|m| !m.is_empty())
    };
    let code = field("errorCode", "error_code");
    let message = field("errorMessage", "error_message");
    let mut why = format!("the task failed: {status}");
    if let Some(code) = code {
        why.push_str(&format!(" (errorCode {code})"));
    }
    if let Some(message) = message {
        why.push_str(": ");
        why.push_str(&message);
    }
    why
}

/// A task ID a body names, as text (a number's digits too); `None` when
/// absent or empty.
fn named_task(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// A `sunoData` clip with its camelCase names as the clip parser's; a
/// snake_case clip (`response.data`) passes unchanged.
fn snake_case(clip: &Value) -> Value {
    let Value::Object(map) = clip else {
        return clip.clone();
    };
    let renamed = map.iter().map(|(name, value)| {
        let name = match name.as_str() {
            "audioUrl" => "audio_url",
            "streamAudioUrl" => "stream_audio_url",
            "imageUrl" => "image_url",
            "modelName" => "model_name",
            other => other,
        };
        (name.to_owned(), value.clone())
    });
    Value::Object(renamed.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_code_531_as_batchgen_wrote_it_is_worth_a_resend() {
        assert!(worth_resending(&callback_failure(
            Some(531),
            "Sorry, refunded"
        )));
        let mut data = Map::new();
        data.insert("errorCode".into(), Value::from(531));
        data.insert("errorMessage".into(), Value::from("Sorry"));
        assert!(worth_resending(&record_failure(
            &data,
            "GENERATE_AUDIO_FAILED"
        )));
        data.insert("errorCode".into(), Value::from(400));
        data.insert("errorMessage".into(), Value::from("see (errorCode 531)"));
        assert!(!worth_resending(&record_failure(
            &data,
            "SENSITIVE_WORD_ERROR"
        )));
        assert!(!worth_resending(&callback_failure(
            Some(400),
            "callback code 531 ("
        )));
        assert!(!worth_resending("Does Not Meet Guidelines"));
    }
}
