//! The one parser for clips, wherever they come from.
//!
//! Clips reach batchgen three ways, all in the same clip objects (API.md,
//! "Results"):
//!
//! - the v2 feed: `{"code","message","data":{"type","request_body",
//!   "response_data":[clips]}}`;
//! - the legacy feed: a bare array of clips (status `new` before `text`);
//! - a callback body: a bare array, the same as `response_data`.
//!
//! [`parse`] takes any of them and returns normalised [`Clip`]s, so polling
//! and the callback receiver can never disagree about what a body means.
//! The API's loose types are absorbed here: `duration` is `""`, a number or
//! a numeric string; `created_at` (or `createTime`) is an ISO string or epoch
//! milliseconds; unknown fields are ignored. Bodies are hostile: at most
//! [`MAX_FEED_BODY`] bytes, [`MAX_CLIPS`] clips and [`MAX_TEXT`] characters
//! per field are taken, nothing here can panic, and a body of the wrong shape
//! is a [`FeedError`] that says what was wrong.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// Largest feed or callback body accepted. A task's two clips are a few KiB.
pub const MAX_FEED_BODY: usize = 1024 * 1024;
/// Most clips taken from one body (a task has two).
pub const MAX_CLIPS: usize = 16;
/// Longest text kept from one field (URLs, titles, messages), in characters.
pub const MAX_TEXT: usize = 2048;

/// Where a clip is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClipStatus {
    /// Accepted, nothing generated yet (legacy feed only).
    New,
    /// Lyrics and title ready, no audio.
    Text,
    /// A streaming `audio_url` exists; not final.
    First,
    /// The final MP3 is at `audio_url`.
    Complete,
    /// The clip failed (moderation or an error); never retried.
    Failed,
}

impl ClipStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClipStatus::New => "new",
            ClipStatus::Text => "text",
            ClipStatus::First => "first",
            ClipStatus::Complete => "complete",
            ClipStatus::Failed => "failed",
        }
    }

    /// Parses a status as the API or the catalog writes it; unknown words
    /// (a host's own stages) count as `new`: still running.
    pub fn parse(s: &str) -> ClipStatus {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => ClipStatus::Text,
            "first" | "streaming" => ClipStatus::First,
            "complete" | "completed" | "success" => ClipStatus::Complete,
            "failed" | "fail" | "error" => ClipStatus::Failed,
            _ => ClipStatus::New,
        }
    }

    /// Complete or failed: nothing more will happen to the clip.
    pub fn is_final(self) -> bool {
        matches!(self, ClipStatus::Complete | ClipStatus::Failed)
    }
}

/// The v2 feed's `data.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskType {
    InProgress,
    Success,
    Fail,
}

/// One clip, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub id: String,
    pub status: ClipStatus,
    pub title: String,
    /// The style tags (`tags` in the API's clip objects).
    pub tags: String,
    pub model_name: String,
    pub audio_url: String,
    pub image_url: String,
    /// Seconds; `None` while unknown (`""`) or nonsensical.
    pub duration: Option<f64>,
    pub created_at: Option<DateTime<Utc>>,
    /// `fail_message`, else `error_message`; empty unless failed.
    pub error: String,
}

impl Clip {
    /// `created_at` as the catalog writes it: RFC 3339 with milliseconds.
    pub fn created_at_text(&self) -> String {
        self.created_at
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
            .unwrap_or_default()
    }
}

/// What one body said.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Feed {
    /// `data.type` of the v2 envelope; `None` for bare arrays.
    pub task_type: Option<TaskType>,
    /// In the body's order; at most [`MAX_CLIPS`].
    pub clips: Vec<Clip>,
    /// Entries dropped: not objects, or without a usable `id`.
    pub skipped: usize,
}

impl Feed {
    /// Whether the task is over: the host said so, or (bare arrays) every
    /// clip is final.
    pub fn is_finished(&self) -> bool {
        match self.task_type {
            Some(TaskType::Success | TaskType::Fail) => true,
            Some(TaskType::InProgress) => false,
            None => !self.clips.is_empty() && self.clips.iter().all(|c| c.status.is_final()),
        }
    }
}

/// Why a body could not be read as clips.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the body is larger than {MAX_FEED_BODY} bytes")]
    TooLarge,
    #[error("not JSON: {0}")]
    NotJson(String),
    /// An envelope whose `code` is an error, e.g. `{"code":404,...}`.
    #[error("the API answered code {code}: {message}")]
    Api { code: u16, message: String },
    #[error("unexpected shape: {0}")]
    Shape(&'static str),
}

/// Parses a v2 feed, legacy feed or callback body.
///
/// # Errors
/// A [`FeedError`] for a body that is too large, not JSON, an error
/// envelope, or JSON of another shape.
pub fn parse(body: &[u8]) -> Result<Feed, FeedError> {
    if body.len() > MAX_FEED_BODY {
        return Err(FeedError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let mut text = e.to_string();
        text.truncate(200);
        FeedError::NotJson(text)
    })?;
    match value {
        Value::Array(items) => Ok(clips(&items, None)),
        Value::Object(ref map) => {
            if let Some(code) = map.get("code").and_then(number)
                && !(200.0..300.0).contains(&code)
            {
                let message = map.get("message").map(text).unwrap_or_default();
                return Err(FeedError::Api {
                    code: code.clamp(0.0, 999.0) as u16,
                    message,
                });
            }
            let data = map.get("data").ok_or(FeedError::Shape("no `data`"))?;
            match data {
                Value::Array(items) => Ok(clips(items, None)),
                Value::Object(data) => {
                    let task_type = data.get("type").map(text).and_then(|t| {
                        match t.to_ascii_uppercase().as_str() {
                            "SUCCESS" | "COMPLETE" => Some(TaskType::Success),
                            "FAIL" | "FAILED" | "ERROR" => Some(TaskType::Fail),
                            "IN_PROGRESS" | "PENDING" | "RUNNING" => Some(TaskType::InProgress),
                            _ => None,
                        }
                    });
                    // Some hosts nest the array as `data.data` (callbacks).
                    let items = match data.get("response_data").or_else(|| data.get("data")) {
                        Some(Value::Array(items)) => items.as_slice(),
                        Some(Value::Null) | None => &[],
                        Some(_) => return Err(FeedError::Shape("`response_data` is not a list")),
                    };
                    let mut feed = clips(items, task_type);
                    if task_type == Some(TaskType::Fail) {
                        let why = map
                            .get("message")
                            .map(text)
                            .filter(|m| !m.is_empty() && !m.eq_ignore_ascii_case("success"))
                            .unwrap_or_else(|| "the task failed".to_owned());
                        for clip in &mut feed.clips {
                            clip.status = ClipStatus::Failed;
                            if clip.error.is_empty() {
                                clip.error.clone_from(&why);
                            }
                        }
                    }
                    Ok(feed)
                }
                _ => Err(FeedError::Shape("`data` is neither an object nor a list")),
            }
        }
        _ => Err(FeedError::Shape("neither a list of clips nor an envelope")),
    }
}

fn clips(items: &[Value], task_type: Option<TaskType>) -> Feed {
    let mut feed = Feed {
        task_type,
        ..Feed::default()
    };
    for item in items {
        if feed.clips.len() == MAX_CLIPS {
            feed.skipped += 1;
            continue;
        }
        match item.as_object().and_then(clip) {
            Some(c) => feed.clips.push(c),
            None => feed.skipped += 1,
        }
    }
    feed
}

fn clip(o: &serde_json::Map<String, Value>) -> Option<Clip> {
    let id = o.get("id").and_then(id_text)?;
    let field = |name: &str| o.get(name).map(text).unwrap_or_default();
    let error = [field("fail_message"), field("error_message")]
        .into_iter()
        .find(|m| !m.is_empty())
        .unwrap_or_default();
    let mut status = ClipStatus::parse(&field("status"));
    if !error.is_empty() {
        status = ClipStatus::Failed;
    }
    Some(Clip {
        id,
        status,
        title: field("title"),
        tags: field("tags"),
        model_name: field("model_name"),
        audio_url: url_text(&field("audio_url")),
        image_url: url_text(&field("image_url")),
        duration: o.get("duration").and_then(number).filter(|d| *d >= 0.0),
        created_at: o
            .get("created_at")
            .or_else(|| o.get("createTime"))
            .and_then(timestamp),
        error,
    })
}

/// A clip id goes into a CSV cell, file names and URLs: printable ASCII
/// only, at most 200 characters.
fn id_text(v: &Value) -> Option<String> {
    let id = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let ok = !id.is_empty() && id.len() <= 200 && id.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(id)
}

/// Text of a field: strings as they are, numbers and booleans written out,
/// anything else empty; one line, at most [`MAX_TEXT`] characters.
fn text(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return n.to_string(),
        Value::Bool(b) => return b.to_string(),
        _ => return String::new(),
    };
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Only http(s) URLs are kept: a body cannot point a download at a file.
fn url_text(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        s.to_owned()
    } else {
        String::new()
    }
}

/// A number, or a string holding one; finite only.
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// An ISO 8601 / RFC 3339 string or epoch milliseconds (number or string).
fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    if let Value::String(s) = v
        && let Ok(t) = DateTime::parse_from_rfc3339(s.trim())
    {
        return Some(t.with_timezone(&Utc));
    }
    let millis = number(v)?;
    if !(0.0..=1.0e15).contains(&millis) {
        return None;
    }
    DateTime::from_timestamp_millis(millis as i64)
}
