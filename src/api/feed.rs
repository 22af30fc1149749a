//! The one parser for clips, and the one rule for when they are finished.
//!
//! Clips reach batchgen three ways, all in the same clip objects (API.md,
//! "Results"):
//!
//! - the v2 feed: `{"code","message","data":{"type","request_body",
//!   "response_data":[clips]}}`;
//! - the legacy feed (`GET /api/feed`): a bare object `{"type",
//!   "request_body","response_data","created_at"}` without the envelope,
//!   whose clips carry **no** `status`: the task's `type` (`new`, `text`,
//!   `first`, `complete`) is their stage. Older hosts answered a bare array
//!   instead; both are read;
//! - a callback body: a bare array, the same clips plus `createTime`.
//!
//! [`parse`] takes any of them and returns normalised [`Clip`]s, so polling
//! and the callback receiver can never disagree about what a body means.
//! The other providers' bodies reach the same clip parser and completion
//! rule through their wires (`crate::api::provider`): gcui's bare arrays
//! through [`parse`], sunoapi's record-info and callbacks and a new-api
//! relay's task objects, their clips renamed to these fields, through
//! [`clips_at_stage`] and [`fail_task`].
//! A clip that names its streaming URL (`stream_audio_url`) and has the same
//! one in `audio_url` has no final file yet.
//!
//! # When a clip is finished
//! The provider's docs contradict each other and its `data.type` says
//! `SUCCESS` while both clips are still lyrics, so the rule is the clip's
//! own, and it is applied here only ([`Clip::status`] is already the
//! verdict):
//!
//! - it **failed** when `fail_message` or `error_message` is non-empty, or
//!   the v2 `data.type` is `FAIL` (the task failed: every clip with it);
//! - it is **complete** when its status is `complete` (older hosts, the
//!   legacy feed, callbacks), or it is `first` with "All generated
//!   successfully." in `extra_message` (the current docs' final stage;
//!   matched trimmed, case-insensitive, anywhere in the message);
//! - *undocumented*: `streaming` counts as complete when `audio_url` is a
//!   final mp3 (an `http(s)` URL whose path ends in `.mp3`, not a streaming
//!   URL) **and** `duration` is a positive number, as public clients do;
//!   otherwise it is still streaming ([`ClipStatus::First`]);
//! - a clip that would be complete but whose `audio_url` is a streaming URL
//!   ([`is_streaming_url`]: an `audiopipe` host or an `item_id=` query), or
//!   is empty (or not http(s)), is **not** complete: a streaming URL serves
//!   a partial, growing body, no URL is no file, and polling goes on until
//!   the final URL appears (the deadline is the cap). Were it complete, the
//!   task would count as finished and never be polled again, and the song,
//!   already paid for, would be lost to a download error. Its message says
//!   why it waits ([`NO_FINAL_URL`], [`ONLY_STREAMING_URL`]), so a run that
//!   ends with it pending counts it under that reason, not as "pending".
//!
//! - it **failed**, whatever its stage and whatever the host says, when
//!   its lyrics (gcui's `lyric` or the `prompt` every provider's clips
//!   carry) hold `This is a fake app http://suno.com` ([`is_watermarked`]:
//!   any case, any whitespace): a relay that failed Suno's captcha wrote
//!   them, and the song is not what was asked (API.md, "Results"). Its
//!   reason is [`WATERMARK_REASON`]; it is never complete, so its file is
//!   never downloaded as a song.
//!
//! `data.type` `SUCCESS` / `IN_PROGRESS` decides nothing. A task is
//! finished ([`TaskClips::is_finished`], [`task_finished`]) when every clip seen
//! is finished and there are [`CLIPS_PER_TASK`] of them, or one of them
//! failed (moderation refuses the prompt, so it fails both): a body that
//! lists one complete clip while the other is not listed yet must not end
//! polling, or the second song, already paid for, would never be
//! collected. An empty `response_data` is never finished (unless `FAIL`).
//!
//! # Loose types
//! `duration` is `""`, a number or a numeric string. Time stamps are ISO
//! 8601 / RFC 3339, epoch milliseconds (a number or a numeric string), or
//! `"2024-09-05 13:09:01"` (no zone, taken as **UTC**); they are read from
//! the clip's `created_at`, else `createTime`, else `timestamp`, else the
//! task's `created_at`. A clip whose `id` is `""` (the text stage, in the
//! docs' sample) is not a clip yet: it is skipped, not an error. Unknown
//! fields are ignored.
//!
//! Bodies are hostile: at most [`MAX_FEED_BODY`] bytes, [`MAX_CLIPS`] clips
//! and [`MAX_TEXT`] characters per field are taken, nothing here can panic,
//! and a body of the wrong shape is a [`FeedError`] that says what was
//! wrong.

mod loose;
mod rule;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use loose::{id_text, lyrics_text, number, text, timestamp, url_text};
use rule::stage;

pub use rule::{
    NO_FINAL_URL, ONLY_STREAMING_URL, WATERMARK, WATERMARK_REASON, is_final_mp3, is_streaming_url,
    is_watermarked,
};

/// Largest feed or callback body accepted. A task's two clips are a few KiB.
pub const MAX_FEED_BODY: usize = 1024 * 1024;
/// Most clips taken from one body (a task has two).
pub const MAX_CLIPS: usize = 16;
/// Longest text kept from one field (URLs, titles, messages), in characters.
pub const MAX_TEXT: usize = 2048;
/// Longest lyrics kept, in characters: the API's largest `prompt` limit
/// (5000 on chirp-v4-5 and later), so a song's own lyrics always fit and a
/// hostile body cannot put a megabyte into every catalog row and tag.
pub const MAX_LYRICS: usize = 5000;
/// Clips a task makes (API.md: "Each task produces two clips"); a task is
/// not finished with fewer, unless one failed.
pub const CLIPS_PER_TASK: usize = 2;

/// Where a clip is in its life. In a [`Clip`] this is the verdict of the
/// completion rule (module docs), not the word the host used: a clip the
/// host calls `first` with "All generated successfully." is `Complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClipStatus {
    /// Accepted, nothing generated yet (or a stage this parser does not know).
    New,
    /// Lyrics and title ready, no audio.
    Text,
    /// Audio on its way (first audio, streaming): not final.
    First,
    /// Finished: the final MP3 is at `audio_url`.
    Complete,
    /// The clip failed (moderation or an error); never retried.
    Failed,
}

impl ClipStatus {
    /// The word the catalog writes.
    pub fn as_str(self) -> &'static str {
        match self {
            ClipStatus::New => "new",
            ClipStatus::Text => "text",
            ClipStatus::First => "first",
            ClipStatus::Complete => "complete",
            ClipStatus::Failed => "failed",
        }
    }

    /// Parses a status as the catalog writes it ([`ClipStatus::as_str`]);
    /// unknown words count as `new`: still running. Not for API bodies:
    /// there the completion rule needs more than the word ([`parse`]).
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

/// The v2 feed's `data.type`. Only `Fail` means anything (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskType {
    InProgress,
    Success,
    Fail,
}

/// Which of the documented bodies was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// `{"code","message","data":{…}}` (or `data` a list).
    V2,
    /// The legacy feed's bare object `{"type","response_data",…}`.
    Legacy,
    /// A bare array of clips: a callback, an older legacy feed, or
    /// gcui-art/suno-api's answers.
    #[default]
    Clips,
    /// sunoapi's `record-info`: `{"code","msg","data":{"status",
    /// "response":{"sunoData":[camelCase clips]}}}`.
    Record,
    /// sunoapi's callback: `{"code","msg","data":{"callbackType",
    /// "task_id","data":[clips]}}`.
    Callback,
    /// A new-api relay's task object: `{"task_id","status","fail_reason",
    /// "data":[Suno clips, their `metadata` read into the clip]}`, alone
    /// (`GET suno/fetch/{id}`) or one of a batch (`POST suno/fetch`).
    Task,
}

/// One clip, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub id: String,
    /// The completion rule's verdict (module docs).
    pub status: ClipStatus,
    pub title: String,
    /// The style tags (`tags` in the API's clip objects).
    pub tags: String,
    pub model_name: String,
    /// As the host sent it (http(s) only): a streaming URL until the clip
    /// is complete. Only a complete clip's URL is a file to download.
    pub audio_url: String,
    pub image_url: String,
    /// The clip's lyrics: gcui's `lyric`, else `prompt` (udioapi's and
    /// sunoapi's clips carry them there, API.md "Results"); several lines,
    /// NULs and other control characters dropped, at most [`MAX_LYRICS`]
    /// characters. Empty when the host sent none.
    pub lyrics: String,
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

    /// Complete or failed.
    pub fn is_finished(&self) -> bool {
        self.status.is_final()
    }
}

/// What one body (a feed answer or a callback) said about one task's
/// clips. Named for what it holds, not where it came from: the sandbox's
/// feed and the submit engine's job feeds are other things.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskClips {
    pub shape: Shape,
    /// `data.type` of the v2 envelope; `None` for the other shapes.
    pub task_type: Option<TaskType>,
    /// In the body's order; at most [`MAX_CLIPS`].
    pub clips: Vec<Clip>,
    /// Entries dropped: not objects, or without a usable `id` (yet).
    pub skipped: usize,
    /// Why the task failed as a whole: `data.type` `FAIL`, or a clip
    /// without an id yet that carried a `fail_message`.
    pub failure: Option<String>,
    /// The task the body says it is about, for the bodies that name one
    /// (sunoapi's `data.taskId` and callbacks' `data.task_id`): a body
    /// about another task is not this task's
    /// ([`crate::api::provider::Wire::only_task`]).
    pub task_id: Option<String>,
}

impl TaskClips {
    /// Whether the body says it is about a task other than `task_id`
    /// (see [`TaskClips::task_id`]); a body that names none is not.
    pub fn names_other_task(&self, task_id: &str) -> bool {
        self.task_id
            .as_deref()
            .is_some_and(|named| named != task_id)
    }

    /// Whether this body alone says the task is over: `FAIL`, a failure
    /// before any clip had an id, or [`task_finished`] over its clips.
    pub fn is_finished(&self) -> bool {
        self.task_type == Some(TaskType::Fail)
            || (self.clips.is_empty() && self.failure.is_some())
            || task_finished(self.clips.iter().map(|c| c.status))
    }

    /// Masks every registered secret in the server text (clip IDs,
    /// titles, style, model, URLs, failure messages): a host that echoes
    /// the key must not get it into the catalog, a file name or an ID3 tag
    /// ([`crate::util::redact::secrets`]). Polls and callbacks both pass
    /// here before anything is recorded.
    pub fn mask_secrets(&mut self) {
        use crate::util::redact::mask_in_place;
        for clip in &mut self.clips {
            for text in [
                &mut clip.id,
                &mut clip.title,
                &mut clip.tags,
                &mut clip.model_name,
                &mut clip.audio_url,
                &mut clip.image_url,
                &mut clip.lyrics,
                &mut clip.error,
            ] {
                mask_in_place(text);
            }
        }
        if let Some(failure) = &mut self.failure {
            mask_in_place(failure);
        }
    }
}

/// The task rule, for a body's clips and the catalog's rows alike: some
/// clips, all final, and [`CLIPS_PER_TASK`] of them or one failed.
pub fn task_finished(statuses: impl IntoIterator<Item = ClipStatus>) -> bool {
    let (mut count, mut all_final, mut any_failed) = (0, true, false);
    for status in statuses {
        count += 1;
        all_final &= status.is_final();
        any_failed |= status == ClipStatus::Failed;
    }
    count > 0 && all_final && (count >= CLIPS_PER_TASK || any_failed)
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
pub fn parse(body: &[u8]) -> Result<TaskClips, FeedError> {
    if body.len() > MAX_FEED_BODY {
        return Err(FeedError::TooLarge);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let mut text = e.to_string();
        text.truncate(200);
        FeedError::NotJson(text)
    })?;
    let map = match value {
        Value::Array(items) => return Ok(clips(Shape::Clips, &items, &Context::default())),
        Value::Object(map) => map,
        _ => return Err(FeedError::Shape("neither a list of clips nor an envelope")),
    };
    if let Some(code) = map.get("code").and_then(number)
        && !(200.0..300.0).contains(&code)
    {
        let message = map.get("message").map(text).unwrap_or_default();
        return Err(FeedError::Api {
            code: code.clamp(0.0, 999.0) as u16,
            message,
        });
    }
    let data = match map.get("data") {
        Some(data) => data,
        // The legacy feed: no envelope, the task object itself.
        None if map.contains_key("response_data")
            || (map.contains_key("type") && !map.contains_key("code")) =>
        {
            return legacy(&map);
        }
        None => return Err(FeedError::Shape("no `data`")),
    };
    let data = match data {
        Value::Array(items) => return Ok(clips(Shape::V2, items, &Context::default())),
        Value::Object(data) => data,
        _ => return Err(FeedError::Shape("`data` is neither an object nor a list")),
    };
    let task_type =
        data.get("type")
            .map(text)
            .and_then(|t| match t.to_ascii_uppercase().as_str() {
                "SUCCESS" | "COMPLETE" => Some(TaskType::Success),
                "FAIL" | "FAILED" | "ERROR" => Some(TaskType::Fail),
                "IN_PROGRESS" | "PENDING" | "RUNNING" => Some(TaskType::InProgress),
                _ => None,
            });
    // Some hosts nest the array as `data.data` (callbacks).
    let items = list(data.get("response_data").or_else(|| data.get("data")))?;
    let context = Context {
        created_at: data.get("created_at").and_then(timestamp),
        ..Context::default()
    };
    let mut feed = clips(Shape::V2, items, &context);
    feed.task_type = task_type;
    if task_type == Some(TaskType::Fail) {
        let why = feed
            .failure
            .clone()
            .or_else(|| {
                map.get("message")
                    .map(text)
                    .filter(|m| !m.is_empty() && !m.eq_ignore_ascii_case("success"))
            })
            .unwrap_or_else(|| "the task failed".to_owned());
        fail_task(&mut feed, why);
    }
    Ok(feed)
}

/// The host says the task is finished (sunoapi's `SUCCESS`) while a clip
/// has no final file yet: that clip waits for a reason batchgen knows
/// ([`NO_FINAL_URL`], or [`ONLY_STREAMING_URL`] when its only URL
/// streams), said by its message until an answer with the file replaces it.
pub fn hold_back_unfinished(feed: &mut TaskClips) {
    for clip in &mut feed.clips {
        if !clip.is_finished() && clip.error.is_empty() {
            clip.error = if is_streaming_url(&clip.audio_url) {
                ONLY_STREAMING_URL
            } else {
                NO_FINAL_URL
            }
            .to_owned();
        }
    }
}

/// The task failed as a whole: every clip with it, `why` as the reason of
/// those without their own, and the task's [`TaskType::Fail`].
pub fn fail_task(feed: &mut TaskClips, why: String) {
    feed.task_type = Some(TaskType::Fail);
    for clip in &mut feed.clips {
        clip.status = ClipStatus::Failed;
        if clip.error.is_empty() || rule::is_held_back(&clip.error) {
            clip.error.clone_from(&why);
        }
    }
    feed.failure = Some(why);
}

/// Clips without a `status` of their own, in snake_case clip objects (the
/// fields of the module docs), all at the task's `stage`: how another
/// provider's body (sunoapi's record-info and callbacks) is read by the
/// same clip parser and completion rule.
pub fn clips_at_stage(shape: Shape, items: &[Value], stage: &str) -> TaskClips {
    let context = Context {
        stage: stage.to_owned(),
        created_at: None,
    };
    clips(shape, items, &context)
}

/// The legacy feed's object: its `type` is the stage of clips without one.
fn legacy(map: &Map<String, Value>) -> Result<TaskClips, FeedError> {
    let items = list(map.get("response_data"))?;
    let context = Context {
        stage: map.get("type").map(text).unwrap_or_default(),
        created_at: map.get("created_at").and_then(timestamp),
    };
    Ok(clips(Shape::Legacy, items, &context))
}

fn list(value: Option<&Value>) -> Result<&[Value], FeedError> {
    match value {
        Some(Value::Array(items)) => Ok(items.as_slice()),
        Some(Value::Null) | None => Ok(&[]),
        Some(_) => Err(FeedError::Shape("`response_data` is not a list")),
    }
}

/// What the task object around the clips says about them.
#[derive(Debug, Default)]
struct Context {
    /// The stage of clips without a `status` (the legacy feed's `type`).
    stage: String,
    /// The task's `created_at`, for clips without a time stamp.
    created_at: Option<DateTime<Utc>>,
}

fn clips(shape: Shape, items: &[Value], context: &Context) -> TaskClips {
    let mut feed = TaskClips {
        shape,
        ..TaskClips::default()
    };
    for item in items {
        if feed.clips.len() == MAX_CLIPS {
            feed.skipped += 1;
            continue;
        }
        let Some(object) = item.as_object() else {
            feed.skipped += 1;
            continue;
        };
        match clip(object, context) {
            Ok(c) => feed.clips.push(c),
            Err(failure) => {
                feed.skipped += 1;
                if feed.failure.is_none() {
                    feed.failure = failure;
                }
            }
        }
    }
    feed
}

/// Where a clip's lyrics are, in the order they are taken: gcui's
/// `lyric`, then `prompt` (udioapi's and sunoapi's clips, gcui's too).
const LYRICS_FIELDS: [&str; 2] = ["lyric", "prompt"];

/// A clip, or (no usable id yet) the failure message it carried, if any.
fn clip(o: &Map<String, Value>, context: &Context) -> Result<Clip, Option<String>> {
    let field = |name: &str| o.get(name).map(text).unwrap_or_default();
    let error = [field("fail_message"), field("error_message")]
        .into_iter()
        .find(|m| !m.is_empty())
        .unwrap_or_default();
    let Some(id) = o.get("id").and_then(id_text) else {
        return Err((!error.is_empty()).then_some(error));
    };
    let audio_url = url_text(&field("audio_url"));
    // A host that names its streaming URL (sunoapi's `stream_audio_url`)
    // and puts the same one in `audio_url` has no final file yet.
    let stream_url = field("stream_audio_url");
    let final_url = if !stream_url.is_empty() && stream_url == audio_url {
        ""
    } else {
        audio_url.as_str()
    };
    let duration = o.get("duration").and_then(number).filter(|d| *d >= 0.0);
    let reported = o.get("status").map(text).unwrap_or_default();
    let reported = if reported.is_empty() {
        &context.stage
    } else {
        &reported
    };
    let (mut status, mut held_back) = stage(reported, &field("extra_message"), final_url, duration);
    if held_back.is_some() && final_url.is_empty() && !audio_url.is_empty() {
        // Its only URL is the streaming one, whatever its spelling.
        held_back = Some(ONLY_STREAMING_URL);
    }
    let mut error = error;
    if !error.is_empty() {
        status = ClipStatus::Failed;
    } else if let Some(why) = held_back {
        // Pending for a reason batchgen knows: the clip's message says it,
        // until an answer with the final file replaces the clip.
        error = why.to_owned();
    } else if status == ClipStatus::Failed {
        error = format!("the host reported status {reported:?}");
    } else if LYRICS_FIELDS
        .iter()
        .filter_map(|name| o.get(*name).and_then(Value::as_str))
        .any(is_watermarked)
    {
        status = ClipStatus::Failed;
        error = WATERMARK_REASON.to_owned();
    }
    let created_at = ["created_at", "createTime", "timestamp"]
        .iter()
        .find_map(|name| o.get(*name).and_then(timestamp))
        .or(context.created_at);
    Ok(Clip {
        id,
        status,
        title: field("title"),
        tags: field("tags"),
        model_name: field("model_name"),
        audio_url,
        image_url: url_text(&field("image_url")),
        lyrics: LYRICS_FIELDS
            .iter()
            .filter_map(|name| o.get(*name).map(lyrics_text))
            .find(|l| !l.is_empty())
            .unwrap_or_default(),
        duration,
        created_at,
        error,
    })
}
