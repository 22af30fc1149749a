//! The clip objects a task shows in a phase, in the three shapes the
//! provider's docs give them (API.md, "Results"):
//!
//! - [`v2`]: the v2 feed's `response_data`, with `status`, `extra_message`,
//!   `fail_message`/`error_message`, `created_at` and `timestamp`;
//! - [`callback`]: the same clips plus `createTime`, an ISO string as the
//!   current callback page shows it (epoch milliseconds stay in the
//!   legacy feed);
//! - [`legacy`]: the legacy feed's clips, **without** `status` or messages
//!   of a stage (the feed's top-level `type` is their stage), with
//!   `createTime`; a moderated clip carries its `fail_message` or
//!   `error_message`, the only place a client could learn it failed.
//!
//! The docs' quirks are reproduced on purpose: a streaming `audio_url`
//! (`…/media/stream/<id>?item_id=<id>`) before the final mp3, `duration`
//! `""` until the end, a blank clip (`id: ""`, no title) early in the text
//! stage. The two clips of a task use the API's loose types differently:
//! clip 0 has `duration` as a number and `created_at` as an ISO string,
//! clip 1 a numeric string and epoch milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::lifecycle::{Lifecycle, Phase};
use super::state::{BadAudio, Task};
use super::written;

/// The URLs of one clip in one phase.
struct Urls {
    audio: String,
    image: String,
}

/// A clip's streaming URL: a partial body, never the final file.
pub fn stream_url(base_url: &str, id: &str) -> String {
    format!("{base_url}/media/stream/{id}?item_id={id}")
}

/// Clip `index`'s final `audio_url`: its mp3, or what `--bad-audio` made
/// of it. Every face uses it once the clip is final.
pub fn final_url(task: &Task, index: usize, base_url: &str) -> String {
    let id = &task.clip_ids[index];
    match task.bad_audio[index] {
        Some(BadAudio::NoneMp3) => format!("{base_url}/media/None.mp3"),
        Some(BadAudio::Forbidden) => format!("{base_url}/api/forbidden"),
        Some(BadAudio::Streaming) => stream_url(base_url, id),
        Some(BadAudio::Missing) => String::new(),
        Some(BadAudio::Html | BadAudio::Json | BadAudio::NotFound) | None => {
            format!("{base_url}/media/{id}.mp3")
        }
    }
}

/// Clip `index`'s cover URL in `phase`: there once its text exists.
pub fn image_url(task: &Task, index: usize, phase: Phase, base_url: &str) -> String {
    let id = &task.clip_ids[index];
    match phase {
        Phase::Text | Phase::First | Phase::Complete => format!("{base_url}/media/{id}.png"),
        Phase::New | Phase::Lyrics | Phase::Failed => String::new(),
    }
}

fn urls(lc: &Lifecycle, task: &Task, index: usize, phase: Phase, base_url: &str) -> Urls {
    let id = &task.clip_ids[index];
    let audio = match phase {
        Phase::Text | Phase::First if lc.streams(phase) => stream_url(base_url, id),
        Phase::Complete => final_url(task, index, base_url),
        _ => String::new(),
    };
    let image = image_url(task, index, phase, base_url);
    Urls { audio, image }
}

/// The task's clips as the v2 feed shows them in `phase`: always both (the
/// feed itself shows none in `New`).
pub fn v2(lc: &Lifecycle, task: &Task, phase: Phase, base_url: &str) -> Vec<Value> {
    (0..task.clip_ids.len())
        .map(|i| v2_clip(lc, task, i, phase, base_url))
        .collect()
}

/// The task's clips as a callback body carries them: [`v2`] plus
/// `createTime` (`"2025-08-19T23:07:28.936Z"`).
pub fn callback(lc: &Lifecycle, task: &Task, phase: Phase, base_url: &str) -> Vec<Value> {
    let mut clips = v2(lc, task, phase, base_url);
    for clip in &mut clips {
        clip["createTime"] = json!(iso(task.created_at));
    }
    clips
}

fn v2_clip(lc: &Lifecycle, task: &Task, index: usize, phase: Phase, base_url: &str) -> Value {
    let fields = &task.fields;
    let urls = urls(lc, task, index, phase, base_url);
    // Early in the text stage the docs' sample shows a clip with nothing in
    // it yet, not even an id.
    let blank = phase == Phase::Lyrics;
    let text = |s: &str| if blank { String::new() } else { s.to_owned() };
    let id = text(&task.clip_ids[index]);
    let duration = match (phase, index % 2) {
        (Phase::Complete, 0) => json!(task.takes[index].duration_secs()),
        (Phase::Complete, _) => json!(task.takes[index].duration_secs().to_string()),
        _ => json!(""),
    };
    let (fail_message, error_message) = failure(task, phase);
    json!({
        "id": id,
        "status": lc.clip_status(phase),
        "title": text(&task.title),
        "prompt": text(lyrics(task, index)),
        "tags": text(&task.style),
        "audio_url": urls.audio,
        "image_url": urls.image,
        "image_large_url": urls.image,
        "video_url": "",
        "duration": duration,
        "model_name": model_name(&task.model),
        "created_at": created_at(task.created_at, index),
        "timestamp": epoch_millis(task.created_at),
        "fail_message": fail_message,
        "error_message": error_message,
        "extra_message": Lifecycle::extra_message(phase),
        // Not in the API docs: clients must ignore fields they do not know.
        "metadata": {
            "type": "gen",
            "gpt_description_prompt": fields.gpt_description_prompt.as_deref().unwrap_or(""),
            "make_instrumental": fields.make_instrumental.unwrap_or(false),
            "stream": true,
        },
        "play_count": 0,
    })
}

/// `(fail_message, error_message)` of a clip in `phase`.
fn failure(task: &Task, phase: Phase) -> (&'static str, &'static str) {
    match task.moderation {
        Some(r) if phase == Phase::Failed && r.in_error_message => ("", r.message),
        Some(r) if phase == Phase::Failed => (r.message, ""),
        _ => ("", ""),
    }
}

/// The task's clips as the legacy feed shows them in `phase`: always both,
/// with their ids, even in `New`.
pub fn legacy(lc: &Lifecycle, task: &Task, phase: Phase, base_url: &str) -> Vec<Value> {
    (0..task.clip_ids.len())
        .map(|index| {
            let id = &task.clip_ids[index];
            let urls = urls(lc, task, index, phase, base_url);
            let duration = if phase == Phase::Complete {
                json!(task.takes[index].duration_secs())
            } else {
                json!("")
            };
            let mut clip = json!({
                "id": id,
                "audio_url": urls.audio,
                "image_url": urls.image,
                "createTime": epoch_millis(task.created_at),
                "duration": duration,
                "model_name": model_name(&task.model),
                "prompt": lyrics(task, index),
                "tags": task.style,
                "title": task.title,
            });
            match failure(task, phase) {
                ("", "") => {}
                ("", message) => clip["error_message"] = json!(message),
                (message, _) => clip["fail_message"] = json!(message),
            }
            clip
        })
        .collect()
}

/// The legacy feed's `request_body`: the fields received, with the two
/// mode flags under the names the legacy docs give them (`customMode`,
/// `instrumental`).
pub fn legacy_request_body(task: &Task) -> Value {
    let Ok(Value::Object(body)) = serde_json::to_value(&task.fields) else {
        return json!({});
    };
    let renamed: Map<String, Value> = body
        .into_iter()
        .map(|(name, value)| match name.as_str() {
            "custom_mode" => ("customMode".to_owned(), value),
            "make_instrumental" => ("instrumental".to_owned(), value),
            _ => (name, value),
        })
        .collect();
    Value::Object(renamed)
}

/// Clip `index`'s `prompt`: its lyrics, which in custom mode are the
/// job's `prompt`. Outside custom mode the job's `prompt` is a
/// description, and the real service would put the lyrics it wrote there;
/// the sandbox writes none, so a description never passes for lyrics. A
/// clip `--fail-captcha` picked has the watermark instead, in any mode.
pub fn lyrics(task: &Task, index: usize) -> &str {
    let fields = &task.fields;
    match fields.custom_mode {
        _ if task.watermarked[index] => written::WATERMARK,
        Some(true) => fields.prompt.as_deref().unwrap_or(""),
        _ => "",
    }
}

/// Clips report models dashed, as the service does (`chirp-v3.5` →
/// `chirp-v3-5`).
pub fn model_name(model: &str) -> String {
    model.replace('.', "-")
}

/// ISO 8601 with milliseconds for even clips, epoch milliseconds for odd
/// ones: both forms occur in the wild.
fn created_at(at: SystemTime, index: usize) -> Value {
    if index.is_multiple_of(2) {
        json!(iso(at))
    } else {
        json!(epoch_millis(at))
    }
}

/// RFC 3339 in UTC with milliseconds, as the v2 feed writes time stamps.
pub fn iso(at: SystemTime) -> String {
    DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `"2024-09-05 13:09:01"`: the legacy feed's time stamp, with no zone
/// (the sandbox writes UTC).
pub fn legacy_time(at: SystemTime) -> String {
    DateTime::<Utc>::from(at)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

pub fn epoch_millis(at: SystemTime) -> u64 {
    let millis = at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_stamps_take_the_documented_forms() {
        let at = UNIX_EPOCH + std::time::Duration::from_millis(1_735_769_431_665);
        assert_eq!(created_at(at, 0), json!("2025-01-01T22:10:31.665Z"));
        assert_eq!(created_at(at, 1), json!(1_735_769_431_665_u64));
        assert_eq!(legacy_time(at), "2025-01-01 22:10:31");
        assert_eq!(model_name("chirp-v3.5"), "chirp-v3-5");
    }

    #[test]
    fn streaming_urls_name_the_item() {
        assert_eq!(
            stream_url("http://h", "c1"),
            "http://h/media/stream/c1?item_id=c1"
        );
    }
}
