//! What happens to a task after it is accepted: its [`Phase`] at any moment,
//! and how each phase is reported in the [`StageStyle`] chosen.
//!
//! Nothing ticks: the phase is a pure function of the time since the task
//! was accepted (on tokio's clock) and the stage time `T`, so a feed poll,
//! a media request and a callback all agree on it without a background
//! timer. With the default style, [`StageStyle::Documented`], a task looks
//! the way the provider's current docs show it (API.md, "Results"):
//!
//! | elapsed | phase | v2 `data.type` | legacy `type` | clips |
//! |---|---|---|---|---|
//! | `[0, T/2)` | `New` | `IN_PROGRESS` | `new` | none in v2 (`response_data: []`) |
//! | `[T/2, 3T/4)` | `Lyrics` | **`SUCCESS`** | `text` | `text`, **`id: ""`**, no URLs, blank title |
//! | `[3T/4, T)` | `Text` | `SUCCESS` | `text` | `text`, streaming `audio_url` |
//! | `[T, 2T)` | `First` | `SUCCESS` | `first` | `first`, streaming `audio_url`, `duration: ""` |
//! | `2T` on | `Complete` | `SUCCESS` | `complete` | **`first`** + "All generated successfully.", final mp3, `duration` |
//!
//! So `data.type` says nothing about completion, and a clip's final stage
//! is told by `extra_message`, exactly the traps the docs set for a client.
//! [`StageStyle::Complete`] is the older style some hosts still have: no
//! `Lyrics` phase (`Text` from `T/2`, without audio), `data.type`
//! `IN_PROGRESS` until the end, and status `complete` at the end.
//!
//! A task caught by moderation goes `New` → `Lyrics` → `Text` → `Failed`
//! at `T`: `data.type` `FAIL`, clips stay `text` without audio and carry
//! one of the three documented moderation messages (see [`Rejection`]).

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::config::StageStyle;
use super::state::{Rejection, Task};
use crate::job::JobFields;

/// The messages the provider's docs list for clips stopped by content
/// moderation.
pub const MODERATION_MESSAGES: [&str; 3] = [
    "Does Not Meet Guidelines",
    "Prompt contained inappropriate material",
    "This song violates Suno's content moderation policy",
];

/// `extra_message` of the text stage, as the docs' sample has it.
const TEXT_MESSAGE: &str = "Text generated successfully.";
/// `extra_message` of the first-audio stage (wording undocumented).
const FIRST_MESSAGE: &str = "First audio generated successfully.";
/// `extra_message` of the final stage: in the documented style, the only
/// thing that tells it from the first-audio stage.
const COMPLETE_MESSAGE: &str = "All generated successfully.";

/// Where a task is in its life; see the module docs for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    New,
    /// The text stage before its clips are identifiable (documented style).
    Lyrics,
    Text,
    First,
    Complete,
    Failed,
}

/// The lifecycle settings, from [`super::SandboxConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    stage_time: Duration,
    style: StageStyle,
    /// Lower-cased; empty disables moderation.
    moderation_word: String,
    callback_complete_only: bool,
}

impl Lifecycle {
    pub fn new(
        stage_time: Duration,
        style: StageStyle,
        moderation_word: &str,
        complete_only: bool,
    ) -> Lifecycle {
        Lifecycle {
            stage_time,
            style,
            moderation_word: moderation_word.trim().to_lowercase(),
            callback_complete_only: complete_only,
        }
    }

    /// How moderation treats a task with these fields: rejected when the
    /// trigger word is anywhere in the prompt, description, title or style,
    /// in any case. Which of the documented messages it gets, and whether
    /// in `fail_message` or `error_message`, follows from the fields, so a
    /// job gets the same answer whatever order it was submitted in.
    pub fn moderation(&self, fields: &JobFields) -> Option<Rejection> {
        if self.moderation_word.is_empty() {
            return None;
        }
        let hit = [
            &fields.prompt,
            &fields.gpt_description_prompt,
            &fields.title,
            &fields.style,
        ]
        .into_iter()
        .flatten()
        .any(|text| text.to_lowercase().contains(&self.moderation_word));
        hit.then(|| {
            let d = Sha256::digest(fields.fingerprint().as_bytes());
            Rejection {
                message: MODERATION_MESSAGES[usize::from(d[0]) % MODERATION_MESSAGES.len()],
                in_error_message: d[1] & 1 == 1,
            }
        })
    }

    /// When `phase` begins, counted from acceptance. (`Lyrics` has no
    /// length in the complete style: it begins when `Text` does.)
    pub fn starts_at(&self, phase: Phase) -> Duration {
        let t = self.stage_time;
        match (phase, self.style) {
            (Phase::New, _) => Duration::ZERO,
            (Phase::Lyrics, _) | (Phase::Text, StageStyle::Complete) => t / 2,
            (Phase::Text, StageStyle::Documented) => t * 3 / 4,
            (Phase::First | Phase::Failed, _) => t,
            (Phase::Complete, _) => t * 2,
        }
    }

    /// The phase after `elapsed`.
    fn phase_after(&self, elapsed: Duration, moderated: bool) -> Phase {
        let reached = |p: Phase| elapsed >= self.starts_at(p);
        if moderated && reached(Phase::Failed) {
            Phase::Failed
        } else if reached(Phase::Complete) {
            Phase::Complete
        } else if reached(Phase::First) {
            Phase::First
        } else if reached(Phase::Text) {
            Phase::Text
        } else if reached(Phase::Lyrics) {
            Phase::Lyrics
        } else {
            Phase::New
        }
    }

    /// The phase `task` is in at `now`.
    pub fn phase(&self, task: &Task, now: Instant) -> Phase {
        self.phase_after(
            now.saturating_duration_since(task.accepted_at),
            task.fails(),
        )
    }

    /// The v2 feed's `data.type`.
    pub fn task_type(&self, phase: Phase) -> &'static str {
        match (phase, self.style) {
            (Phase::New, _) => "IN_PROGRESS",
            (Phase::Failed, _) => "FAIL",
            (_, StageStyle::Documented) | (Phase::Complete, _) => "SUCCESS",
            (_, StageStyle::Complete) => "IN_PROGRESS",
        }
    }

    /// A clip's `status`.
    pub fn clip_status(&self, phase: Phase) -> &'static str {
        match (phase, self.style) {
            (Phase::New, _) => "new",
            (Phase::Lyrics | Phase::Text | Phase::Failed, _) => "text",
            (Phase::First, _) | (Phase::Complete, StageStyle::Documented) => "first",
            (Phase::Complete, StageStyle::Complete) => "complete",
        }
    }

    /// The legacy feed's `type`, which is also its clips' stage. A failed
    /// task stays at the stage it reached; its clips carry the message.
    pub fn legacy_type(phase: Phase) -> &'static str {
        match phase {
            Phase::New => "new",
            Phase::Lyrics | Phase::Text | Phase::Failed => "text",
            Phase::First => "first",
            Phase::Complete => "complete",
        }
    }

    /// A clip's `extra_message`.
    pub fn extra_message(phase: Phase) -> &'static str {
        match phase {
            Phase::New | Phase::Failed => "",
            Phase::Lyrics | Phase::Text => TEXT_MESSAGE,
            Phase::First => FIRST_MESSAGE,
            Phase::Complete => COMPLETE_MESSAGE,
        }
    }

    /// Whether a clip's streaming URL answers in `phase`: from the moment
    /// the feed shows one until the clip is finished, and after.
    pub fn streams(&self, phase: Phase) -> bool {
        match phase {
            Phase::Text => self.style == StageStyle::Documented,
            Phase::First | Phase::Complete => true,
            Phase::New | Phase::Lyrics | Phase::Failed => false,
        }
    }

    /// The phases a callback is sent for, in order. The text stage's
    /// callback names its clips: a callback without ids would be of no use
    /// to any receiver.
    pub fn callbacks(&self, moderated: bool) -> &'static [Phase] {
        match (moderated, self.callback_complete_only) {
            (false, false) => &[Phase::Text, Phase::First, Phase::Complete],
            (false, true) => &[Phase::Complete],
            (true, false) => &[Phase::Text, Phase::Failed],
            (true, true) => &[Phase::Failed],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(1000);

    fn lifecycle(style: StageStyle) -> Lifecycle {
        Lifecycle::new(T, style, "forbidden", false)
    }

    #[test]
    fn phases_follow_the_documented_timeline() {
        let ms = Duration::from_millis;
        let lc = lifecycle(StageStyle::Documented);
        let table = [
            (0, false, Phase::New, "IN_PROGRESS", "new"),
            (499, false, Phase::New, "IN_PROGRESS", "new"),
            (500, false, Phase::Lyrics, "SUCCESS", "text"),
            (749, false, Phase::Lyrics, "SUCCESS", "text"),
            (750, false, Phase::Text, "SUCCESS", "text"),
            (999, false, Phase::Text, "SUCCESS", "text"),
            (1000, false, Phase::First, "SUCCESS", "first"),
            (1999, false, Phase::First, "SUCCESS", "first"),
            (2000, false, Phase::Complete, "SUCCESS", "first"),
            (60_000, false, Phase::Complete, "SUCCESS", "first"),
            (499, true, Phase::New, "IN_PROGRESS", "new"),
            (500, true, Phase::Lyrics, "SUCCESS", "text"),
            (750, true, Phase::Text, "SUCCESS", "text"),
            (1000, true, Phase::Failed, "FAIL", "text"),
            (5000, true, Phase::Failed, "FAIL", "text"),
        ];
        for (elapsed, moderated, phase, task_type, status) in table {
            let got = lc.phase_after(ms(elapsed), moderated);
            assert_eq!(got, phase, "{elapsed} ms");
            assert_eq!(lc.task_type(got), task_type, "{elapsed} ms");
            assert_eq!(lc.clip_status(got), status, "{elapsed} ms");
        }
        assert_eq!(
            Lifecycle::extra_message(Phase::Complete),
            "All generated successfully."
        );
        let instant = Lifecycle::new(Duration::ZERO, StageStyle::Documented, "", false);
        assert_eq!(instant.phase_after(Duration::ZERO, false), Phase::Complete);
    }

    #[test]
    fn the_complete_style_says_success_and_complete_only_at_the_end() {
        let ms = Duration::from_millis;
        let lc = lifecycle(StageStyle::Complete);
        let table = [
            (0, Phase::New, "IN_PROGRESS", "new"),
            (500, Phase::Text, "IN_PROGRESS", "text"),
            (999, Phase::Text, "IN_PROGRESS", "text"),
            (1000, Phase::First, "IN_PROGRESS", "first"),
            (2000, Phase::Complete, "SUCCESS", "complete"),
        ];
        for (elapsed, phase, task_type, status) in table {
            let got = lc.phase_after(ms(elapsed), false);
            assert_eq!(got, phase, "{elapsed} ms");
            assert_eq!(lc.task_type(got), task_type, "{elapsed} ms");
            assert_eq!(lc.clip_status(got), status, "{elapsed} ms");
        }
        assert!(!lc.streams(Phase::Text) && lc.streams(Phase::First));
        assert!(lifecycle(StageStyle::Documented).streams(Phase::Text));
    }

    #[test]
    fn legacy_types_are_the_stages() {
        let types: Vec<_> = [
            Phase::New,
            Phase::Lyrics,
            Phase::Text,
            Phase::First,
            Phase::Complete,
            Phase::Failed,
        ]
        .map(Lifecycle::legacy_type)
        .into();
        assert_eq!(types, ["new", "text", "text", "first", "complete", "text"]);
    }

    #[test]
    fn moderation_is_case_insensitive_stable_and_can_be_off() {
        let on = Lifecycle::new(T, StageStyle::Documented, "Forbidden", false);
        let fields = |title: &str| JobFields {
            prompt: Some("calm".into()),
            title: Some(title.into()),
            ..JobFields::default()
        };
        let rejected = on.moderation(&fields("A FORBIDDEN song")).unwrap();
        assert!(MODERATION_MESSAGES.contains(&rejected.message));
        assert_eq!(on.moderation(&fields("A FORBIDDEN song")), Some(rejected));
        assert_eq!(on.moderation(&fields("A fine song")), None);
        let off = Lifecycle::new(T, StageStyle::Documented, "", false);
        assert_eq!(off.moderation(&fields("forbidden")), None);

        // Over many jobs, every message and both fields occur.
        let all: Vec<Rejection> = (0..64)
            .filter_map(|i| on.moderation(&fields(&format!("forbidden {i}"))))
            .collect();
        assert_eq!(all.len(), 64);
        for message in MODERATION_MESSAGES {
            assert!(all.iter().any(|r| r.message == message), "{message}");
        }
        assert!(all.iter().any(|r| r.in_error_message));
        assert!(all.iter().any(|r| !r.in_error_message));
    }
}
