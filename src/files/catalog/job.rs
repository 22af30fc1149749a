//! One job's rows, and what an answer does to them.
//!
//! Every change to the catalog is a change to one job's rows: an answer
//! (a poll or a callback) merged by [`JobRows::apply`], or a download's
//! outcome recorded into one row. So the rule lives here, on the few rows
//! of one job, and the store (`crate::files::state`) only keeps them.

use std::time::Duration;

use crate::api::feed::{self, ClipStatus, TaskClips};
use crate::settings::quality::{QualityRules, Take};

use super::{Measured, Row, Verdict};

/// Most clips kept per job. A task has two; a hostile feed listing
/// thousands must not make one job's rows unbounded.
pub const MAX_CLIPS: usize = 16;

/// The rows of one job, in clip-index order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRows {
    pub rows: Vec<Row>,
}

impl JobRows {
    pub fn new(rows: Vec<Row>) -> JobRows {
        let mut job = JobRows { rows };
        job.rows.sort_by_key(|r| r.clip_index);
        job
    }

    /// Whether polling this task can stop: its rows are all of this task
    /// and pass the task rule ([`feed::task_finished`]: all final, and both
    /// clips or a failure).
    pub fn finished(&self, task_id: &str) -> bool {
        finished(&self.rows, task_id)
    }

    /// The rows of task `task_id` (a job submitted again keeps its old
    /// task's rows until the new one says something).
    pub fn of_task<'a>(&'a self, task_id: &'a str) -> impl Iterator<Item = &'a Row> + 'a {
        self.rows.iter().filter(move |r| r.task_id == task_id)
    }

    pub fn row_mut(&mut self, clip_index: u32) -> Option<&mut Row> {
        self.rows.iter_mut().find(|r| r.clip_index == clip_index)
    }

    /// Merges what a feed or callback said about job `key`'s task. Clips
    /// are matched by id; a new clip takes the next index. A final clip is
    /// never moved back (a late callback of an earlier stage changes
    /// nothing). `audio_url` is recorded for complete clips only: before
    /// that it is a streaming URL, and the catalog's `audio_url` is the
    /// song's file. Returns the clip indexes whose rows changed (a row
    /// dropped because the job has a new task is not listed: the new
    /// task's rows supersede it on disk).
    pub fn apply(&mut self, key: &str, task_id: &str, answer: &TaskClips) -> Vec<u32> {
        // A job submitted again has a new task: its old clips go.
        self.rows.retain(|r| r.task_id == task_id);
        let mut changed = Vec::new();
        if answer.clips.is_empty() && answer.is_finished() && self.rows.is_empty() {
            // Failed before any clip existed: keep the reason in a row.
            self.rows.push(Row {
                status: ClipStatus::Failed.as_str().to_owned(),
                error: answer
                    .failure
                    .clone()
                    .unwrap_or_else(|| "the task failed before any clip was made".to_owned()),
                ..blank(key, task_id, 0, "")
            });
            changed.push(0);
        } else if answer.clips.is_empty() && answer.is_finished() {
            // Failed after its clips were listed, in a body that lists
            // none (sunoapi's error callbacks, a failed record without its
            // clips): the clips not final yet fail with the task, so its
            // rows are finished; a complete clip keeps its song.
            let why = answer
                .failure
                .clone()
                .unwrap_or_else(|| "the task failed".to_owned());
            for row in &mut self.rows {
                if !row.status().is_final() {
                    row.status = ClipStatus::Failed.as_str().to_owned();
                    row.audio_url.clear();
                    row.error.clone_from(&why);
                    changed.push(row.clip_index);
                }
            }
        }
        for clip in &answer.clips {
            let at = match self.rows.iter().position(|r| r.clip_id == clip.id) {
                Some(at) => at,
                None if self.rows.len() >= MAX_CLIPS => continue,
                None => {
                    let next = self.rows.iter().map(|r| r.clip_index).max().unwrap_or(0) + 1;
                    self.rows.push(blank(key, task_id, next, &clip.id));
                    changed.push(next);
                    self.rows.len() - 1
                }
            };
            let row = &mut self.rows[at];
            if merge(row, clip) && !changed.contains(&row.clip_index) {
                changed.push(row.clip_index);
            }
        }
        changed.sort_unstable();
        changed
    }
}

/// One clip's news into its row; whether the row changed. A row is never
/// moved back to a stage before its own: a host that calls a task back
/// several times (sunoapi: text, first, complete, and repeats of each, in
/// any order) or a poll that crosses a callback cannot undo a later stage.
fn merge(row: &mut Row, clip: &feed::Clip) -> bool {
    if rank(clip.status) < rank(row.status()) {
        return false;
    }
    let mut updated = row.clone();
    updated.status = clip.status.as_str().to_owned();
    updated.title.clone_from(&clip.title);
    updated.style.clone_from(&clip.tags);
    updated.model.clone_from(&clip.model_name);
    updated.duration = clip.duration;
    updated.created_at = clip.created_at_text();
    if clip.status == ClipStatus::Complete {
        updated.audio_url.clone_from(&clip.audio_url);
    } else {
        updated.audio_url.clear();
    }
    updated.image_url.clone_from(&clip.image_url);
    if !clip.lyrics.is_empty() {
        updated.lyrics.clone_from(&clip.lyrics);
    }
    // The API's message replaces what was there, but a complete clip said
    // again (a repeated final callback) keeps the downloader's note about
    // its file.
    let keep_note = clip.error.is_empty()
        && clip.status == ClipStatus::Complete
        && row.status() == ClipStatus::Complete;
    if !keep_note {
        updated.error.clone_from(&clip.error);
    }
    if updated == *row {
        return false;
    }
    *row = updated;
    true
}

/// How far along a clip is: a final clip (complete or failed) is past
/// every other stage, so one final verdict may replace another (a
/// complete clip failed by its task), never a stage before them.
fn rank(status: ClipStatus) -> u8 {
    match status {
        ClipStatus::New => 0,
        ClipStatus::Text => 1,
        ClipStatus::First => 2,
        ClipStatus::Complete | ClipStatus::Failed => 3,
    }
}

/// Whether polling task `task_id` can stop, by its job's rows
/// ([`JobRows::finished`]).
pub fn finished(rows: &[Row], task_id: &str) -> bool {
    rows.iter().all(|r| r.task_id == task_id) && feed::task_finished(rows.iter().map(Row::status))
}

fn blank(key: &str, task_id: &str, clip_index: u32, clip_id: &str) -> Row {
    Row {
        key: key.into(),
        task_id: task_id.to_owned(),
        clip_index,
        clip_id: clip_id.to_owned(),
        status: ClipStatus::New.as_str().to_owned(),
        ..Row::default()
    }
}

/// The loudness a pick is judged against when the rules set no window:
/// what Spotify and YouTube normalise to (CATALOG.md), so the pick needs
/// the least gain there.
pub const PICK_LOUDNESS: f64 = -14.0;

impl JobRows {
    /// Judges every measured take of task `task_id` by `rules` (its
    /// verdict and reasons) and picks one ([`pick_order`]). A take is
    /// judged with the takes listed before it: of two with the same audio,
    /// the later one is the repeat. Returns whether any row changed.
    pub fn judge(&mut self, task_id: &str, rules: &QualityRules) -> bool {
        let before = self.rows.clone();
        let mut seen: Vec<&str> = Vec::new();
        let mut judged: Vec<(u32, Vec<String>)> = Vec::new();
        for row in self.rows.iter().filter(|r| r.task_id == task_id) {
            let Some(measured) = row.measured.as_deref() else {
                continue;
            };
            let reasons = match measured {
                Measured::Audio(m) => {
                    let take = Take {
                        duration: secs(m.duration),
                        leading_silence: secs(m.leading_silence),
                        trailing_silence: secs(m.trailing_silence),
                        true_peak: m.true_peak_dbtp,
                        clipped_samples: m.clipped_samples,
                        loudness: m.integrated_lufs,
                        repeats_earlier_take: seen.contains(&m.audio_sha256.as_str()),
                        watermarked: feed::is_watermarked(&row.lyrics),
                    };
                    seen.push(&m.audio_sha256);
                    rules
                        .verdict(&take)
                        .iter()
                        .map(ToString::to_string)
                        .collect()
                }
                Measured::Unreadable(why) => vec![format!("cannot be measured: {why}")],
            };
            judged.push((row.clip_index, reasons));
        }
        for (index, reasons) in judged {
            if let Some(row) = self.row_mut(index) {
                let verdict = if reasons.is_empty() {
                    Verdict::Kept
                } else {
                    Verdict::Rejected
                };
                verdict.as_str().clone_into(&mut row.verdict);
                row.reasons = reasons.join("; ");
            }
        }
        let target = Target {
            loudness: rules
                .loudness
                .map_or(PICK_LOUDNESS, |(low, high)| f64::midpoint(low, high)),
            duration: rules
                .min_duration
                .zip(rules.max_duration)
                .map(|(min, max)| f64::midpoint(min.as_secs_f64(), max.as_secs_f64())),
        };
        let best = self
            .rows
            .iter()
            .filter(|r| r.task_id == task_id && r.verdict().is_some())
            .min_by(|a, b| pick_order(a, b, target))
            .map(|r| r.clip_index);
        for row in self.rows.iter_mut().filter(|r| r.task_id == task_id) {
            row.pick = Some(row.clip_index) == best;
        }
        self.rows != before
    }
}

/// What a pick aims at: the middle of the loudness window (else
/// [`PICK_LOUDNESS`]), and the middle of the duration window when the
/// rules set both ends (a job's own `min_duration` and `max_duration`:
/// what it wants).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// LUFS.
    pub loudness: f64,
    /// Seconds; `None`: the longer take.
    pub duration: Option<f64>,
}

/// Which of two judged takes is the better pick (`Less`: `a`): a kept take
/// before a rejected one; then fewer broken rules; then the loudness
/// nearer the target (a silent take last); then the length nearer the
/// target, or without one the longer take (a song cut short is the
/// commoner defect); then the host's order.
pub fn pick_order(a: &Row, b: &Row, target: Target) -> std::cmp::Ordering {
    let rejected = |r: &Row| r.verdict() != Some(Verdict::Kept);
    let broken = |r: &Row| r.reasons.split("; ").filter(|s| !s.is_empty()).count();
    let off = |r: &Row| {
        r.loudness
            .map_or(f64::INFINITY, |l| (l - target.loudness).abs())
    };
    // Lower is better: the distance to the wanted length, or the length
    // itself negated.
    let length = |r: &Row| {
        let length = r.measured_duration.unwrap_or(0.0);
        target
            .duration
            .map_or(-length, |want| (length - want).abs())
    };
    rejected(a)
        .cmp(&rejected(b))
        .then(broken(a).cmp(&broken(b)))
        .then(off(a).total_cmp(&off(b)))
        .then(length(a).total_cmp(&length(b)))
        .then(a.clip_index.cmp(&b.clip_index))
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> TaskClips {
        feed::parse(body.as_bytes()).unwrap()
    }

    const FINAL: &str = r#"[{"id":"a","status":"first","extra_message":"All generated successfully.","audio_url":"https://cdn.example/a.mp3"},
                           {"id":"b","status":"complete","audio_url":"https://cdn.example/b.mp3"}]"#;

    #[test]
    fn the_task_rule_and_what_a_later_body_may_change() {
        let mut job = JobRows::default();
        let streaming =
            r#"[{"id":"a","status":"first","audio_url":"https://audiopipe.suno.ai/?item_id=a"}]"#;
        assert_eq!(job.apply("k", "t", &answer(streaming)), [1]);
        assert!(!job.finished("t"));
        assert_eq!(job.rows[0].audio_url, "", "a streaming URL is not recorded");

        assert_eq!(job.apply("k", "t", &answer(FINAL)), [1, 2]);
        assert!(job.finished("t"));
        assert!(!job.finished("other task"));
        let statuses: Vec<&str> = job.rows.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(statuses, ["complete", "complete"]);

        // The downloader's note survives the final stage said again, and a
        // late earlier stage changes nothing.
        job.row_mut(1).unwrap().error = "kept without tags: x".into();
        assert!(job.apply("k", "t", &answer(FINAL)).is_empty());
        assert!(job.apply("k", "t", &answer(streaming)).is_empty());
        assert_eq!(job.rows[0].error, "kept without tags: x");
        assert_eq!(job.rows[0].audio_url, "https://cdn.example/a.mp3");

        // One complete clip of two is not a finished task; a failure is.
        let mut one = JobRows::default();
        one.apply(
            "k",
            "t",
            &answer(r#"[{"id":"a","status":"complete","audio_url":"https://cdn.example/a.mp3"}]"#),
        );
        assert!(!one.finished("t"));
        one.apply(
            "k",
            "t",
            &answer(r#"[{"id":"b","fail_message":"Topic too long."}]"#),
        );
        assert!(one.finished("t"));
    }

    #[test]
    fn a_task_that_failed_before_any_clip_keeps_the_reason() {
        let mut job = JobRows::default();
        job.apply(
            "k",
            "t",
            &answer(r#"[{"id":"","fail_message":"Does Not Meet Guidelines"}]"#),
        );
        let row = &job.rows[0];
        assert_eq!(
            (row.clip_index, row.status.as_str(), row.error.as_str()),
            (0, "failed", "Does Not Meet Guidelines")
        );
        assert!(job.finished("t"));
    }

    #[test]
    fn a_new_task_replaces_the_old_rows_and_clips_are_capped() {
        let mut job = JobRows::default();
        job.apply("k", "old", &answer(FINAL));
        job.apply("k", "new", &answer(r#"[{"id":"c","status":"text"}]"#));
        assert_eq!(job.rows.len(), 1);
        assert_eq!(
            (job.rows[0].clip_index, job.rows[0].task_id.as_str()),
            (1, "new")
        );

        let many: Vec<String> = (0..1000)
            .map(|i| format!(r#"{{"id":"c{i}","status":"text"}}"#))
            .collect();
        let mut big = JobRows::default();
        big.apply("k", "t", &answer(&format!("[{}]", many.join(","))));
        assert_eq!(big.rows.len(), MAX_CLIPS);
    }

    #[test]
    fn a_wanted_length_picks_the_take_nearer_it_else_the_longer() {
        let take = |index, length: f64| Row {
            clip_index: index,
            verdict: "kept".into(),
            loudness: Some(-14.0),
            measured_duration: Some(length),
            ..Row::default()
        };
        let (short, long) = (take(1, 31.0), take(2, 34.0));
        let without = Target {
            loudness: PICK_LOUDNESS,
            duration: None,
        };
        assert_eq!(pick_order(&long, &short, without), std::cmp::Ordering::Less);
        let want = Target {
            duration: Some(32.0),
            ..without
        };
        assert_eq!(pick_order(&short, &long, want), std::cmp::Ordering::Less);
        // Loudness comes first: the longer take nearer the target wins.
        let quiet_short = Row {
            loudness: Some(-20.0),
            ..short.clone()
        };
        assert_eq!(
            pick_order(&long, &quiet_short, want),
            std::cmp::Ordering::Less
        );
    }
}
