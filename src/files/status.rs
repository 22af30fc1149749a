//! Where a catalog stands: the store's jobs and clips read front to back
//! into counts (`batchgen status`).
//!
//! # Memory and time
//! The store does the counting: jobs and clips grouped by status and
//! failure reason, tasks by the task rule, in a few aggregate queries, so
//! what `status` holds is the groups, whatever the catalog's size. Only a
//! clip with a recorded file is looked at one by one (is the file there, at
//! its size?). Failure reasons (and the reasons clips in progress wait,
//! when batchgen knows one) are grouped by their text (the first
//! [`REASON_CHARS`] characters), at most [`MAX_REASONS`] distinct ones; the
//! rest count as "other reasons".
//!
//! # What it never does
//! It takes no lock and writes nothing but the store's first build: a run
//! or a `collect` may be writing, and `status` shows the store as of the
//! moment it read it. A results file or catalog with no store yet (an
//! earlier batchgen's) is imported by the rules a run or `collect` would
//! import it with, in memory when the store cannot be written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::catalog::CatalogError;
use super::results::{ResultsError, Status};
use super::state::{AccountTasks, Snapshot, Spending, TakeCounts, Unfetched};
use crate::api::feed::{ClipStatus, task_finished};

/// Distinct failure reasons kept per kind; more are "other reasons".
pub const MAX_REASONS: usize = 64;
/// Characters of a reason that group it.
pub const REASON_CHARS: usize = 160;

/// Jobs by the latest status of their row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub total: u64,
    pub pending: u64,
    pub submitted: u64,
    pub failed: u64,
    pub unknown: u64,
}

/// Submitted tasks by what the catalog says of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TaskCounts {
    /// Submitted jobs (one task each).
    pub submitted: u64,
    /// Every clip final (complete or failed) in the catalog.
    pub finished: u64,
    /// In the catalog, not finished yet.
    pub running: u64,
    /// Submitted, but not in the catalog yet: never collected.
    pub not_collected: u64,
}

/// Clips in the catalog by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Clips {
    pub total: u64,
    pub new: u64,
    pub text: u64,
    pub first: u64,
    pub complete: u64,
    pub failed: u64,
}

/// Complete clips with and without their MP3 on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Downloads {
    /// The file the catalog names is there, at the size it recorded.
    pub done: u64,
    /// Not downloaded, or the file is gone or of another size.
    pub left: u64,
}

/// One failure reason and how many rows gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub reason: String,
    pub count: u64,
}

/// The whole answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub results: PathBuf,
    pub catalog: PathBuf,
    /// Whether the catalog exists (no catalog: nothing was collected).
    pub catalog_found: bool,
    pub jobs: JobCounts,
    /// Failed and unknown jobs, grouped by their results `error`.
    pub job_failures: Vec<Reason>,
    pub tasks: TaskCounts,
    pub clips: Clips,
    pub downloads: Downloads,
    /// The measured takes of each job's latest task, by verdict.
    pub takes: TakeCounts,
    /// What the runs spent, estimated and measured.
    pub credits: Spending,
    /// The submitted jobs' latest tasks by the account that made them.
    pub accounts: Vec<AccountTasks>,
    /// Failed clips (and failed downloads) grouped by the catalog `error`.
    pub clip_failures: Vec<Reason>,
    /// Clips in progress that wait for a reason batchgen knows (the host
    /// calls them finished but gives no file to fetch), grouped by it.
    pub clip_pending: Vec<Reason>,
    /// Jobs sent more than [`RETENTION_WARNING`] ago with songs not yet on
    /// disk: the provider deletes them after 14–15 days.
    pub expiring: Expiring,
}

/// How long after a task its songs are fetched before a warning says the
/// provider may delete them: its files are kept 14–15 days (API.md rev 3),
/// so 10 days leaves a few crons' worth of room.
pub const RETENTION_WARNING: chrono::TimeDelta = chrono::TimeDelta::days(10);

/// Jobs whose songs may expire before they are fetched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Expiring {
    pub jobs: u64,
    /// When the oldest was sent (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<String>,
}

impl Expiring {
    /// The cutoff for a warning at `now`, as the store writes
    /// `submitted_at`: jobs sent before it are [`RETENTION_WARNING`] old.
    pub fn cutoff(now: chrono::DateTime<chrono::Utc>) -> String {
        (now - RETENTION_WARNING).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// The jobs a pass over the store found unfetched before the cutoff.
    pub fn from(unfetched: Unfetched) -> Expiring {
        Expiring {
            jobs: unfetched.count,
            oldest: unfetched.oldest,
        }
    }

    /// The warning, when there is one to give.
    pub fn warning(&self) -> Option<String> {
        (self.jobs > 0).then(|| {
            let jobs = match self.jobs {
                1 => "1 job was".to_owned(),
                n => format!("{n} jobs were"),
            };
            format!(
                "{jobs} sent more than {} days ago (the oldest at {}) and still have songs not on disk: the provider deletes its files 14-15 days after a task, so collect and download them now",
                RETENTION_WARNING.num_days(),
                self.oldest.as_deref().unwrap_or("?")
            )
        })
    }
}

/// Why a status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Results(#[from] ResultsError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// No results file: nothing was run with it.
    #[error("{} does not exist: no run has written it", .0.display())]
    NoResults(PathBuf),
}

/// Reads the store into a [`Report`].
///
/// # Errors
/// A missing or unreadable results file; a catalog that is not one.
pub fn read(results_path: &Path, catalog_path: &Path) -> Result<Report, StatusError> {
    read_with_snapshot(results_path, catalog_path).map(|(report, _)| report)
}

/// [`read`], and the store it read (what the catalog page needs next).
///
/// # Errors
/// As [`read`].
pub fn read_with_snapshot(
    results_path: &Path,
    catalog_path: &Path,
) -> Result<(Report, Snapshot), StatusError> {
    if !results_path.exists() && !super::state::State::exists(results_path) {
        return Err(StatusError::NoResults(results_path.to_owned()));
    }
    let mut report = Report {
        results: results_path.to_owned(),
        catalog: catalog_path.to_owned(),
        ..Report::default()
    };
    let snapshot = Snapshot::open_with_catalog(results_path, catalog_path)?;
    report.catalog_found = catalog_path.is_file() || snapshot.has_clips()?;
    let (mut job_failures, mut clip_failures, mut clip_pending) =
        (Reasons::default(), Reasons::default(), Reasons::default());
    snapshot.job_failures(|status, error, n| match status {
        // As a rerun sees it (`Record::settled`).
        Status::Sending => job_failures.add(super::results::INTERRUPTED, n),
        Status::Failed | Status::Unknown => job_failures.add(error, n),
        Status::Pending | Status::Submitted => {}
    })?;
    // Jobs by status, their clips by status, each job's task by the task
    // rule, and the jobs whose songs may expire before they are fetched:
    // one pass over the jobs and their clips, a job's together.
    let mut unfetched = Unfetched::default();
    snapshot.job_briefs(&Expiring::cutoff(chrono::Utc::now()), |brief| {
        count_job(&mut report.jobs, brief.status, 1);
        unfetched.add(brief);
        if !brief.clips.is_empty() {
            if task_finished(brief.clips.iter().map(|&(status, _)| status)) {
                report.tasks.finished += 1;
            } else {
                report.tasks.running += 1;
            }
        }
        let clips = &mut report.clips;
        for &(status, _) in brief.clips {
            clips.total += 1;
            match status {
                ClipStatus::New => clips.new += 1,
                ClipStatus::Text => clips.text += 1,
                ClipStatus::First => clips.first += 1,
                ClipStatus::Complete => clips.complete += 1,
                ClipStatus::Failed => clips.failed += 1,
            }
        }
    })?;
    report.expiring = Expiring::from(unfetched);
    // Reasons: a failed clip's, and a complete clip's that has no file (its
    // download failed). A complete clip with a file counts below.
    let mut failed_with_reason = 0;
    snapshot.clip_messages(|status, error, filed| match ClipStatus::parse(status) {
        ClipStatus::Failed => {
            failed_with_reason += 1;
            clip_failures.add(error, 1);
        }
        ClipStatus::Complete if !filed => clip_failures.add(&format!("download: {error}"), 1),
        ClipStatus::Complete => {}
        ClipStatus::New | ClipStatus::Text | ClipStatus::First => clip_pending.add(error, 1),
    })?;
    if report.clips.failed > failed_with_reason {
        clip_failures.add("", report.clips.failed - failed_with_reason);
    }
    // A complete clip is downloaded when the file recorded for it is there
    // at the size recorded.
    snapshot.filed(|path, bytes, error| {
        if downloaded(path, bytes) {
            report.downloads.done += 1;
        } else if !error.is_empty() {
            clip_failures.add(&format!("download: {error}"), 1);
        }
    })?;
    report.downloads.left = report.clips.complete.saturating_sub(report.downloads.done);
    report.takes = snapshot.take_counts()?;
    report.credits = snapshot.spending()?;
    report.accounts = snapshot.account_tasks()?;
    report.job_failures = job_failures.sorted();
    report.clip_failures = clip_failures.sorted();
    report.clip_pending = clip_pending.sorted();
    report.tasks.submitted = report.jobs.submitted;
    report.tasks.not_collected = report
        .tasks
        .submitted
        .saturating_sub(report.tasks.finished + report.tasks.running);
    Ok((report, snapshot))
}

fn count_job(jobs: &mut JobCounts, status: Status, n: u64) {
    jobs.total += n;
    match status {
        Status::Pending => jobs.pending += n,
        Status::Submitted => jobs.submitted += n,
        Status::Failed => jobs.failed += n,
        // A row left `sending` by a crash is `unknown`, as a rerun sees it.
        Status::Sending | Status::Unknown => jobs.unknown += n,
    }
}

/// A reason as it is grouped: one line, at most [`REASON_CHARS`].
fn reason_text(text: &str) -> String {
    let line: String = text
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(REASON_CHARS)
        .collect();
    line.trim_end().to_owned()
}

/// Counts by reason.
#[derive(Default)]
struct Reasons {
    counts: HashMap<String, u64>,
}

const OTHER: &str = "other reasons";
const NONE_GIVEN: &str = "no reason recorded";

impl Reasons {
    fn add(&mut self, text: &str, n: u64) {
        let text = reason_text(text);
        let key = if text.is_empty() {
            NONE_GIVEN.to_owned()
        } else if self.counts.len() >= MAX_REASONS && !self.counts.contains_key(&text) {
            OTHER.to_owned()
        } else {
            text
        };
        *self.counts.entry(key).or_default() += n;
    }

    /// Most frequent first; equal counts by text.
    fn sorted(self) -> Vec<Reason> {
        let mut reasons: Vec<Reason> = self
            .counts
            .into_iter()
            .map(|(reason, count)| Reason { reason, count })
            .collect();
        reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
        reasons
    }
}

/// The file recorded for a clip is there, at the size recorded.
fn downloaded(path: &str, bytes: Option<u64>) -> bool {
    !path.is_empty()
        && std::fs::symlink_metadata(path)
            .is_ok_and(|m| m.is_file() && bytes.is_none_or(|n| n == m.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_grouped_capped_and_sorted() {
        let mut r = Reasons::default();
        for _ in 0..3 {
            r.add("HTTP 400: Topic too long.", 1);
        }
        r.add("  HTTP 400: Topic too long.\n", 1);
        r.add("", 1);
        for i in 0..MAX_REASONS + 5 {
            r.add(&format!("reason {i}"), 1);
        }
        let sorted = r.sorted();
        let topic = sorted
            .iter()
            .find(|x| x.reason == "HTTP 400: Topic too long.");
        assert_eq!(topic.unwrap().count, 4, "trimmed texts group together");
        assert!(
            sorted.windows(2).all(|w| w[0].count >= w[1].count),
            "most first"
        );
        assert_eq!(sorted.len(), MAX_REASONS + 1, "the cap, plus other reasons");
        let other = sorted.iter().find(|x| x.reason == OTHER).unwrap();
        assert!(other.count >= 5);
        assert!(sorted.iter().any(|x| x.reason == NONE_GIVEN));
    }
}
