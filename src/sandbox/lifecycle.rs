//! What happens to a task after it is accepted: its [`Phase`] at any moment
//! and the clip objects the feeds and callbacks show for it.
//!
//! Nothing ticks: the phase is a pure function of the time since the task
//! was accepted (on tokio's clock) and the stage time `T`, so a feed poll,
//! a media request and a callback all agree on it without a background
//! timer. With the default `T` = 1 s:
//!
//! | elapsed | phase | v2 `data.type` | clips |
//! |---|---|---|---|
//! | `[0, T/2)` | `New` | `IN_PROGRESS` | none (`response_data: []`; legacy status `new`) |
//! | `[T/2, T)` | `Text` | `IN_PROGRESS` | `text`, no audio yet |
//! | `[T, 2T)` | `First` | `IN_PROGRESS` | `first`, streaming `audio_url` |
//! | `2T` on | `Complete` | `SUCCESS` | `complete`, final mp3 `audio_url`, `duration` |
//!
//! A task caught by moderation goes `New` → `Text` → `Failed` at `T`:
//! `data.type` `FAIL`, clips stay `text` (they never got audio) with
//! `fail_message: "Does Not Meet Guidelines"`.
//!
//! Everything random about a clip (its id, a made-up title) is drawn from
//! the seeded RNG when the task is accepted; its audio length comes from a
//! hash of its id. The two clips of a task deliberately use the API's loose
//! types differently: clip 0 has `duration` as a number and `created_at` as
//! an ISO string, clip 1 a numeric string and epoch milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::media;
use super::state::Task;
use crate::job::JobFields;

/// The `fail_message` of a clip stopped by content moderation.
pub const MODERATION_MESSAGE: &str = "Does Not Meet Guidelines";

/// Where a task is in its life; see the module docs for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    New,
    Text,
    First,
    Complete,
    Failed,
}

impl Phase {
    /// When the phase begins, counted from acceptance.
    pub fn starts_at(self, stage: Duration) -> Duration {
        match self {
            Phase::New => Duration::ZERO,
            Phase::Text => stage / 2,
            Phase::First | Phase::Failed => stage,
            Phase::Complete => stage * 2,
        }
    }

    /// The v2 feed's `data.type`.
    pub fn task_type(self) -> &'static str {
        match self {
            Phase::New | Phase::Text | Phase::First => "IN_PROGRESS",
            Phase::Complete => "SUCCESS",
            Phase::Failed => "FAIL",
        }
    }

    /// A clip's `status`.
    pub fn clip_status(self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::Text | Phase::Failed => "text",
            Phase::First => "first",
            Phase::Complete => "complete",
        }
    }

    /// The phases a callback is sent for, in order.
    pub fn callbacks(moderated: bool, complete_only: bool) -> &'static [Phase] {
        match (moderated, complete_only) {
            (false, false) => &[Phase::Text, Phase::First, Phase::Complete],
            (false, true) => &[Phase::Complete],
            (true, false) => &[Phase::Text, Phase::Failed],
            (true, true) => &[Phase::Failed],
        }
    }
}

/// The lifecycle settings, from [`super::SandboxConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub stage_time: Duration,
    /// Lower-cased; empty disables moderation.
    pub moderation_word: String,
    pub callback_complete_only: bool,
}

impl Lifecycle {
    pub fn new(stage_time: Duration, moderation_word: &str, complete_only: bool) -> Lifecycle {
        Lifecycle {
            stage_time,
            moderation_word: moderation_word.trim().to_lowercase(),
            callback_complete_only: complete_only,
        }
    }

    /// Whether moderation fails a task with these fields: the trigger word
    /// anywhere in the prompt, description, title or style, in any case.
    pub fn is_moderated(&self, fields: &JobFields) -> bool {
        if self.moderation_word.is_empty() {
            return false;
        }
        [
            &fields.prompt,
            &fields.gpt_description_prompt,
            &fields.title,
            &fields.style,
        ]
        .into_iter()
        .flatten()
        .any(|text| text.to_lowercase().contains(&self.moderation_word))
    }

    /// The phase `task` is in at `now`.
    pub fn phase(&self, task: &Task, now: Instant) -> Phase {
        phase_after(
            now.saturating_duration_since(task.accepted_at),
            self.stage_time,
            task.moderated,
        )
    }
}

/// The phase after `elapsed`, for stage time `stage`.
pub fn phase_after(elapsed: Duration, stage: Duration, moderated: bool) -> Phase {
    let reached = |p: Phase| elapsed >= p.starts_at(stage);
    if moderated && reached(Phase::Failed) {
        Phase::Failed
    } else if reached(Phase::Complete) {
        Phase::Complete
    } else if reached(Phase::First) {
        Phase::First
    } else if reached(Phase::Text) {
        Phase::Text
    } else {
        Phase::New
    }
}

/// The task's clips as they look in `phase`, with media URLs under
/// `base_url`. Always both clips; the v2 feed shows none in `New`.
pub fn clips(task: &Task, phase: Phase, base_url: &str) -> Vec<Value> {
    (0..task.clip_ids.len())
        .map(|i| clip(task, i, phase, base_url))
        .collect()
}

fn clip(task: &Task, index: usize, phase: Phase, base_url: &str) -> Value {
    let id = &task.clip_ids[index];
    let fields = &task.fields;
    let audio_url = match phase {
        Phase::First => format!("{base_url}/media/stream/{id}"),
        Phase::Complete => format!("{base_url}/media/{id}.mp3"),
        _ => String::new(),
    };
    let image_url = match phase {
        Phase::Text | Phase::First | Phase::Complete => format!("{base_url}/media/{id}.png"),
        Phase::New | Phase::Failed => String::new(),
    };
    let duration = match (phase, index % 2) {
        (Phase::Complete, 0) => json!(media::duration_secs(id)),
        (Phase::Complete, _) => json!(media::duration_secs(id).to_string()),
        _ => json!(""),
    };
    let extra_message = match phase {
        Phase::New | Phase::Failed => "",
        Phase::Text => "Lyrics ready, generating audio.",
        Phase::First => "Streaming audio ready.",
        Phase::Complete => "All generated successfully.",
    };
    let fail_message = if phase == Phase::Failed {
        MODERATION_MESSAGE
    } else {
        ""
    };
    json!({
        "id": id,
        "status": phase.clip_status(),
        "title": task.title,
        "tags": fields.style.as_deref().unwrap_or(""),
        "audio_url": audio_url,
        "image_url": image_url,
        "video_url": "",
        "duration": duration,
        "model_name": model_name(fields.effective_model()),
        "created_at": created_at(task.created_at, index),
        "fail_message": fail_message,
        "error_message": "",
        "extra_message": extra_message,
        // Not in the API docs: clients must ignore fields they do not know.
        "metadata": {
            "type": "gen",
            "prompt": fields.prompt.as_deref().unwrap_or(""),
            "gpt_description_prompt": fields.gpt_description_prompt.as_deref().unwrap_or(""),
            "make_instrumental": fields.make_instrumental.unwrap_or(false),
            "stream": true,
        },
        "play_count": 0,
    })
}

/// Clips report models dashed, as the service does (`chirp-v3.5` →
/// `chirp-v3-5`).
fn model_name(model: &str) -> String {
    model.replace('.', "-")
}

/// ISO 8601 with milliseconds for even clips, epoch milliseconds for odd
/// ones: both forms occur in the wild.
fn created_at(at: SystemTime, index: usize) -> Value {
    if index.is_multiple_of(2) {
        json!(DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Millis, true))
    } else {
        let millis = at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        json!(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(1000);

    #[test]
    fn phases_follow_the_timeline() {
        let ms = Duration::from_millis;
        let table = [
            (0, false, Phase::New),
            (499, false, Phase::New),
            (500, false, Phase::Text),
            (999, false, Phase::Text),
            (1000, false, Phase::First),
            (1999, false, Phase::First),
            (2000, false, Phase::Complete),
            (60_000, false, Phase::Complete),
            (499, true, Phase::New),
            (500, true, Phase::Text),
            (1000, true, Phase::Failed),
            (5000, true, Phase::Failed),
        ];
        for (elapsed, moderated, phase) in table {
            assert_eq!(
                phase_after(ms(elapsed), T, moderated),
                phase,
                "{elapsed} ms"
            );
        }
        assert_eq!(
            phase_after(Duration::ZERO, Duration::ZERO, false),
            Phase::Complete
        );
    }

    #[test]
    fn moderation_is_case_insensitive_and_can_be_off() {
        let on = Lifecycle::new(T, "Forbidden", false);
        let fields = |title: &str| JobFields {
            prompt: Some("calm".into()),
            title: Some(title.into()),
            ..JobFields::default()
        };
        assert!(on.is_moderated(&fields("A FORBIDDEN song")));
        assert!(!on.is_moderated(&fields("A fine song")));
        assert!(!Lifecycle::new(T, "", false).is_moderated(&fields("forbidden")));
    }

    #[test]
    fn loose_types_alternate_by_clip() {
        let at = UNIX_EPOCH + Duration::from_millis(1_735_769_431_665);
        assert_eq!(created_at(at, 0), json!("2025-01-01T22:10:31.665Z"));
        assert_eq!(created_at(at, 1), json!(1_735_769_431_665_u64));
        assert_eq!(model_name("chirp-v3.5"), "chirp-v3-5");
    }
}
