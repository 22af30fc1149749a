//! Where a catalog stands: the results file and the catalog read front to
//! back into counts (`batchgen status`).
//!
//! # Memory
//! Both files are streamed, never held. The results file may hold a job's
//! row several times (the journal appends; the latest wins), so what is
//! kept per job is its latest status and failure reason, and its place,
//! under a 64-bit hash of its key: a table of 16 bytes a row, sorted and
//! folded to 20 bytes a job (a million jobs in ~20 MB). Two keys with the
//! same hash would count as one job; for a million keys the odds are about
//! 1 in 3·10^7, and it changes a count shown, never a file. The catalog is
//! read as every job's current rows in order ([`catalog::read_jobs`]: the
//! places find where its sorted body ends and a run's appended tail
//! begins), one job at a time. Failure reasons are grouped by
//! their text (the first [`REASON_CHARS`] characters), at most
//! [`MAX_REASONS`] distinct ones; the rest count as "other reasons".
//!
//! # What it never does
//! It takes no lock and writes nothing: a run or a `collect` may be
//! writing either file, and `status` shows the state as of the moment it
//! read each row. A results file that cannot be read whole falls back to
//! the damage rules of [`results`] (the same verdict a rerun would reach).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::catalog::{self, CatalogError, Row};
use super::results::{self, Ranks, ResultsError, Status, Store};
use crate::api::feed::{ClipStatus, task_finished};
use crate::job::key_hash;

/// Distinct failure reasons kept per kind; more are "other reasons".
pub const MAX_REASONS: usize = 64;
/// Characters of a reason that group it.
pub const REASON_CHARS: usize = 160;

/// Jobs by the latest status of their row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Jobs {
    pub total: u64,
    pub pending: u64,
    pub submitted: u64,
    pub failed: u64,
    pub unknown: u64,
}

/// Submitted tasks by what the catalog says of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tasks {
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
    pub jobs: Jobs,
    /// Failed and unknown jobs, grouped by their results `error`.
    pub job_failures: Vec<Reason>,
    pub tasks: Tasks,
    pub clips: Clips,
    pub downloads: Downloads,
    /// Failed clips (and failed downloads) grouped by the catalog `error`.
    pub clip_failures: Vec<Reason>,
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

/// Reads both files into a [`Report`].
///
/// # Errors
/// A missing or unreadable results file; a catalog that is not one.
pub fn read(results_path: &Path, catalog_path: &Path) -> Result<Report, StatusError> {
    read_with_ranks(results_path, catalog_path).map(|(report, _)| report)
}

/// [`read`], and the results' places it read the catalog by (what the
/// catalog page needs next, without reading the results file again).
///
/// # Errors
/// As [`read`].
pub fn read_with_ranks(
    results_path: &Path,
    catalog_path: &Path,
) -> Result<(Report, std::sync::Arc<Ranks>), StatusError> {
    if !results_path.exists() {
        return Err(StatusError::NoResults(results_path.to_owned()));
    }
    let mut report = Report {
        results: results_path.to_owned(),
        catalog: catalog_path.to_owned(),
        ..Report::default()
    };
    let mut failures = Reasons::default();
    let (ranks, latest, texts) = latest_jobs(results_path)?;
    for (status, reason) in latest.into_iter().map(unpack) {
        count_job(&mut report.jobs, status);
        if matches!(status, Status::Failed | Status::Unknown) {
            failures.add_interned(reason, &texts);
        }
    }
    report.job_failures = failures.sorted();
    report.tasks.submitted = report.jobs.submitted;
    let ranks = std::sync::Arc::new(ranks);
    read_catalog(catalog_path, std::sync::Arc::clone(&ranks), &mut report)?;
    report.tasks.not_collected = report
        .tasks
        .submitted
        .saturating_sub(report.tasks.finished + report.tasks.running);
    Ok((report, ranks))
}

fn count_job(jobs: &mut Jobs, status: Status) {
    jobs.total += 1;
    match status {
        Status::Pending => jobs.pending += 1,
        Status::Submitted => jobs.submitted += 1,
        Status::Failed => jobs.failed += 1,
        // A row left `sending` by a crash is `unknown`, as a rerun sees it.
        Status::Sending | Status::Unknown => jobs.unknown += 1,
    }
}

const STATUSES: [Status; 5] = [
    Status::Pending,
    Status::Sending,
    Status::Submitted,
    Status::Failed,
    Status::Unknown,
];
/// The reason field of a packed entry that means "no reason".
const NO_REASON: u32 = (1 << 28) - 1;

/// A status (3 bits) and a reason index (28 bits; [`Interner`] keeps far
/// fewer) in one word: 12 bytes a job with the key hash, not 24.
fn pack(status: Status, reason: Option<u32>) -> u32 {
    let s = STATUSES.iter().position(|&x| x == status).unwrap_or(0) as u32;
    let r = reason.map_or(NO_REASON, |i| i.min(NO_REASON - 1));
    (s << 28) | r
}

fn unpack(word: u32) -> (Status, Option<u32>) {
    let status = STATUSES[(word >> 28) as usize % STATUSES.len()];
    let r = word & NO_REASON;
    (status, (r != NO_REASON).then_some(r))
}

/// Every job's latest status and reason (packed: [`pack`]) and its place
/// in the results ([`Ranks`], for reading the catalog), and the reason
/// texts the packed indexes name. Fast path: [`Store::scan`], which reads
/// the columns without building records; a file it refuses (damaged,
/// torn) is read by the damage rules instead.
fn latest_jobs(path: &Path) -> Result<(Ranks, Vec<u32>, Vec<String>), ResultsError> {
    // (hash, row number, packed) of every row, sorted in place and folded
    // to one entry a job: 16 bytes a row, never a map of keys.
    let mut entries: Vec<(u64, u32, u32)> = Vec::new();
    let mut texts = Interner::default();
    let whole = Store::scan(path, |row| {
        let reason = texts.intern(&String::from_utf8_lossy(row.error));
        let seq = u32::try_from(entries.len()).unwrap_or(u32::MAX - 1);
        entries.push((key_hash(row.id), seq, pack(row.status, reason)));
        true
    });
    if !whole {
        entries.clear();
        texts = Interner::default();
        for record in results::latest(path)? {
            let reason = texts.intern(&record.error);
            let seq = u32::try_from(entries.len()).unwrap_or(u32::MAX - 1);
            entries.push((
                key_hash(record.id.as_bytes()),
                seq,
                pack(record.status, reason),
            ));
        }
    }
    entries.sort_unstable();
    // Each job: its first place, its last row's status.
    let mut folded = 0;
    for i in 0..entries.len() {
        if folded > 0 && entries[folded - 1].0 == entries[i].0 {
            entries[folded - 1].2 = entries[i].2;
        } else {
            entries[folded] = entries[i];
            folded += 1;
        }
    }
    entries.truncate(folded);
    let packed = entries.iter().map(|e| e.2).collect();
    let mut pairs: Vec<(u64, u32)> = entries.iter().map(|e| (e.0, e.1)).collect();
    drop(entries);
    Ok((Ranks::from_pairs(&mut pairs), packed, texts.texts))
}

/// Distinct reason texts, at most [`MAX_REASONS`]: `None` for an empty
/// text, `MAX_REASONS` (an index with no text) for one past the cap.
#[derive(Default)]
struct Interner {
    index: HashMap<String, u32>,
    texts: Vec<String>,
    /// A text past the cap was seen.
    overflow: bool,
}

impl Interner {
    fn intern(&mut self, text: &str) -> Option<u32> {
        let text = reason_text(text);
        if text.is_empty() {
            return None;
        }
        if let Some(&i) = self.index.get(&text) {
            return Some(i);
        }
        if self.texts.len() >= MAX_REASONS {
            self.overflow = true;
            // No text at this index: counted as "other reasons".
            return Some(MAX_REASONS as u32);
        }
        let i = self.texts.len() as u32;
        self.index.insert(text.clone(), i);
        self.texts.push(text);
        Some(i)
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
    fn add(&mut self, text: &str) {
        let text = reason_text(text);
        let key = if text.is_empty() {
            NONE_GIVEN.to_owned()
        } else if self.counts.len() >= MAX_REASONS && !self.counts.contains_key(&text) {
            OTHER.to_owned()
        } else {
            text
        };
        *self.counts.entry(key).or_default() += 1;
    }

    /// A reason [`Interner::intern`] gave an index, counted by its text.
    fn add_interned(&mut self, reason: Option<u32>, texts: &[String]) {
        let text = match reason.map(|i| texts.get(i as usize)) {
            None => NONE_GIVEN.to_owned(),
            Some(None) => OTHER.to_owned(),
            Some(Some(text)) => text.clone(),
        };
        *self.counts.entry(text).or_default() += 1;
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

/// Streams the catalog into the clip, download and task counts: every
/// job's current rows ([`catalog::read_jobs`]: a tail a run appended is
/// merged in, as the next run would read it).
fn read_catalog(
    path: &Path,
    ranks: std::sync::Arc<Ranks>,
    report: &mut Report,
) -> Result<(), CatalogError> {
    let Some(jobs) = catalog::read_jobs(path, ranks)? else {
        return Ok(());
    };
    report.catalog_found = true;
    let mut failures = Reasons::default();
    for job in jobs {
        let job = job?;
        if job.rows.is_empty() {
            continue;
        }
        for row in &job.rows {
            count_clip(report, row, &mut failures);
        }
        count_task(
            &mut report.tasks,
            job.rows.iter().map(Row::status).collect(),
        );
    }
    report.clip_failures = failures.sorted();
    Ok(())
}

fn count_clip(report: &mut Report, row: &Row, failures: &mut Reasons) {
    let clips = &mut report.clips;
    clips.total += 1;
    match row.status() {
        ClipStatus::New => clips.new += 1,
        ClipStatus::Text => clips.text += 1,
        ClipStatus::First => clips.first += 1,
        ClipStatus::Complete => {
            clips.complete += 1;
            if downloaded(row) {
                report.downloads.done += 1;
            } else {
                report.downloads.left += 1;
                if !row.error.is_empty() {
                    failures.add(&format!("download: {}", row.error));
                }
            }
        }
        ClipStatus::Failed => {
            clips.failed += 1;
            failures.add(&row.error);
        }
    }
}

/// The catalog's file is there at the size it recorded.
fn downloaded(row: &Row) -> bool {
    !row.file.is_empty()
        && std::fs::symlink_metadata(&row.file)
            .is_ok_and(|m| m.is_file() && row.file_bytes.is_none_or(|n| n == m.len()))
}

fn count_task(tasks: &mut Tasks, statuses: Vec<ClipStatus>) {
    if task_finished(statuses) {
        tasks.finished += 1;
    } else {
        tasks.running += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_grouped_capped_and_sorted() {
        let mut r = Reasons::default();
        for _ in 0..3 {
            r.add("HTTP 400: Topic too long.");
        }
        r.add("  HTTP 400: Topic too long.\n");
        r.add("");
        for i in 0..MAX_REASONS + 5 {
            r.add(&format!("reason {i}"));
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

    #[test]
    fn the_interner_keeps_the_cap() {
        let mut t = Interner::default();
        assert_eq!(t.intern(""), None);
        assert_eq!(t.intern("a"), Some(0));
        assert_eq!(t.intern(" a "), Some(0));
        for i in 0..MAX_REASONS * 2 {
            t.intern(&format!("r{i}"));
        }
        assert_eq!(t.texts.len(), MAX_REASONS);
        assert!(t.overflow);
        assert_eq!(t.intern("new"), Some(MAX_REASONS as u32));
        for status in STATUSES {
            for reason in [None, Some(0), Some(MAX_REASONS as u32)] {
                assert_eq!(unpack(pack(status, reason)), (status, reason));
            }
        }
    }
}
