//! Telling a damaged results row from a good one, what a damaged row
//! means, and what batchgen says about a file it will not touch: the table
//! in the [module docs](super) made code, with the file's formats and
//! their headers. Used by the one front-to-back reader
//! ([`super::read()`], [`super::each_row()`]: the state store's import),
//! and kept apart from it because it is the one place the damage rules
//! and their messages can be read whole.

use std::path::Path;

use super::ResultsError;
use super::row::{
    COLUMNS, COLUMNS_1, FORMAT, REPORT_COLUMNS, REPORT_COLUMNS_2, Record, Status, parse,
};
use crate::job::JobKey;

/// What one line of a results file (after its header) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// Nothing to read: a blank line, a run of NUL bytes, the header again.
    Skip(&'static str),
    /// A row whose key can be read (it may still be damaged: see
    /// [`record`]).
    Names,
    /// A line that names no job: the run must stop.
    NamesNoJob(&'static str),
}

/// Classifies a line of a results file after its header.
pub(super) fn classify(row: &csv::ByteRecord) -> Line {
    if row
        .iter()
        .all(|f| f.iter().all(|&b| b == 0 || b.is_ascii_whitespace()))
    {
        return Line::Skip("a line of only spaces or NUL bytes");
    }
    if Format::ALL.iter().any(|f| f.is_header(row)) {
        return Line::Skip("the header, repeated");
    }
    let good = parse(row).is_some();
    if !good && row.iter().any(|f| f.contains(&b'\n') || f.contains(&b'\r')) {
        return Line::NamesNoJob(
            "a damaged row spanning several lines: a quote in it is not closed where a row would close it, so the rows after it may be inside it",
        );
    }
    if row.len() < 2 {
        return Line::NamesNoJob("no comma after its first field, so the key may be cut short");
    }
    match std::str::from_utf8(&row[0]) {
        Ok(key) if key.trim().is_empty() => Line::NamesNoJob("its key is empty"),
        Ok(key) if key.chars().any(char::is_control) => {
            Line::NamesNoJob("its key holds control characters")
        }
        Ok(_) => Line::Names,
        Err(_) => Line::NamesNoJob("its key is not UTF-8"),
    }
}

/// The record a [`Line::Names`] row stands for, and whether it was
/// damaged. A damaged row settles its job as `unknown`: it may have been
/// sent, and damage is never a reason to send it again. Its task ID is kept
/// when a comma after it shows it whole (a cut-short one would be wrong);
/// the caller may fill in the job's earlier one.
/// `line` is called only for a damaged row, to name it.
pub(super) fn record(row: &csv::ByteRecord, line: impl FnOnce() -> u64) -> (Record, bool) {
    if let Some(record) = parse(row) {
        return (record, false);
    }
    let line = line();
    let text = |i: usize| {
        row.get(i)
            .and_then(|f| std::str::from_utf8(f).ok())
            .filter(|t| !t.chars().any(char::is_control))
            .unwrap_or_default()
            .to_owned()
    };
    let why = if row.len() == COLUMNS.len() {
        "a value that does not read back".to_owned()
    } else {
        format!("{} of the {} columns", row.len(), COLUMNS.len())
    };
    let record = Record {
        key: JobKey::from(text(0)),
        line: 0,
        task_id: if row.len() > 3 {
            super::cell::unescape(&text(2)).to_owned()
        } else {
            String::new()
        },
        status: Status::Unknown,
        attempts: row
            .get(4)
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        http_status: None,
        error: format!(
            "line {line} of the results file was damaged ({why}); this job may have been sent: check the provider's dashboard, then rerun with --retry-unknown to send it again"
        ),
        submitted_at: String::new(),
        fingerprint: String::new(),
    };
    (record, true)
}

/// The formats a results file can be in, each told by its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `results/1`: [`COLUMNS_1`], a release that kept its state here.
    One,
    /// `results/2`: [`REPORT_COLUMNS_2`], the first report of the state
    /// store (the key's column named `id`).
    Two,
    /// `results/3`: [`REPORT_COLUMNS`], what this release writes.
    Three,
}

impl Format {
    pub(super) const ALL: [Format; 3] = [Format::One, Format::Two, Format::Three];

    fn header(self) -> &'static [&'static str] {
        match self {
            Format::One => COLUMNS_1,
            Format::Two => REPORT_COLUMNS_2,
            Format::Three => REPORT_COLUMNS,
        }
    }

    /// Whether `row` is this format's header.
    pub(super) fn is_header(self, row: &csv::ByteRecord) -> bool {
        row.iter().eq(self.header().iter().map(|c| c.as_bytes()))
    }

    /// Whether rows carry `task_ids` and `format` after the job's columns
    /// (the reports of the state store; their rows are laid out alike).
    pub(super) fn is_report(self) -> bool {
        self != Format::One
    }
}

/// The first row must be a results header: anything else is not a file
/// batchgen may read (an empty file is a new one). A header of a later
/// format (the job's columns, then columns this release does not know) is
/// a newer batchgen's, named as such.
pub(super) fn check_header(path: &Path, row: &csv::ByteRecord) -> Result<Format, ResultsError> {
    if let Some(format) = Format::ALL.into_iter().find(|f| f.is_header(row)) {
        return Ok(format);
    }
    let starts_as_ours = row.len() > REPORT_COLUMNS.len()
        && row
            .iter()
            .zip(REPORT_COLUMNS)
            .all(|(a, b)| a == b.as_bytes());
    if starts_as_ours {
        return Err(newer_format(path, 1, "columns this batchgen does not know"));
    }
    let why = if row.len() == COLUMNS.len() || row.len() == REPORT_COLUMNS.len() {
        "other column names"
    } else {
        "other columns"
    };
    Err(not_ours(path, why))
}

/// Checks the `format` cell of a report's row: a format this release reads
/// (`results/2` and `results/3` rows are laid out alike), or a later one
/// (refused, named), or damage (`false`).
pub(super) fn check_format(
    path: &Path,
    line: impl FnOnce() -> u64,
    cell: &[u8],
) -> Result<bool, ResultsError> {
    if cell == FORMAT.as_bytes() || cell == b"results/2" {
        return Ok(true);
    }
    let later = std::str::from_utf8(cell)
        .ok()
        .and_then(|c| c.strip_prefix("results/"))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n > 3);
    if later {
        return Err(newer_format(
            path,
            line(),
            &format!("a row of format {}", String::from_utf8_lossy(cell)),
        ));
    }
    Ok(false)
}

/// A results file written by a newer batchgen: left as it is.
fn newer_format(path: &Path, line: u64, what: &str) -> ResultsError {
    ResultsError::Refused(format!(
        "{}:{line}: written by a newer batchgen ({what}); this batchgen ({}) reads results formats results/1 to {FORMAT}. \
         It is left untouched and nothing was sent: run the newer batchgen",
        path.display(),
        env!("CARGO_PKG_VERSION"),
    ))
}

/// The message for a file that does not start with the results header. It
/// must never lead anyone to delete a file that holds task IDs.
fn not_ours(path: &Path, why: &str) -> ResultsError {
    ResultsError::Refused(format!(
        "{}:1: not a batchgen results file: its first line is not the results header ({why}), so batchgen leaves it untouched and sends nothing. \
         If it is a results file whose first line was damaged, restore that line to `{}` and keep the file: its task IDs are what stop jobs being billed twice. \
         If it is another file, choose another --out",
        path.display(),
        REPORT_COLUMNS.join(","),
    ))
}

/// A line that names no job: the run stops, so no job it may have held is
/// sent again.
pub(super) fn names_no_job(path: &Path, line: u64, why: &str) -> ResultsError {
    ResultsError::Refused(format!(
        "{}:{line}: this line of the results file names no job ({why}); batchgen cannot tell which job it held, so it stops rather than risk sending one twice. \
         Repair that line, putting back its job's key (the job's `id` in the manifest), then rerun: removing it would let its job be sent, and billed, again",
        path.display()
    ))
}

/// A damaged row whose `id` is not in the manifest (see [`names_no_job`]).
pub(super) fn damaged_orphan(path: &Path, line: u64, key: &str) -> ResultsError {
    ResultsError::Refused(format!(
        "{}:{line}: a damaged row for key {}, which is not in the manifest; batchgen cannot tell which job it held, so it stops rather than risk sending one twice. \
         Repair that line, putting back its job's key (the job's `id` in the manifest), then rerun: removing it would let its job be sent, and billed, again",
        path.display(),
        crate::files::manifest::quoted(key),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[&[u8]]) -> csv::ByteRecord {
        fields.iter().copied().collect()
    }

    #[test]
    fn every_kind_of_line_is_classified() {
        let good: &[&[u8]] = &[b"a", b"2", b"t-1", b"submitted", b"1", b"", b"", b"", b"f"];
        assert_eq!(classify(&row(good)), Line::Names);
        assert!(!record(&row(good), || 5).1);
        for (fields, expect) in [
            (&[&b"  "[..]][..], "skip"),
            (&[b"\0\0\0", b"\0"], "skip"),
            (
                &COLUMNS_1.iter().map(|c| c.as_bytes()).collect::<Vec<_>>()[..],
                "skip",
            ),
            (
                &REPORT_COLUMNS_2
                    .iter()
                    .map(|c| c.as_bytes())
                    .collect::<Vec<_>>()[..],
                "skip",
            ),
            (
                &REPORT_COLUMNS
                    .iter()
                    .map(|c| c.as_bytes())
                    .collect::<Vec<_>>()[..],
                "skip",
            ),
            (&[b"job-1"], "stop"),
            (&[b"", b"2"], "stop"),
            (&[b"\xff", b"2"], "stop"),
            (&[b"a\x1b", b"2"], "stop"),
            (
                &[
                    b"a",
                    b"2",
                    b"",
                    b"failed",
                    b"1",
                    b"",
                    b"said\nc,3,t-3,submitted",
                ],
                "stop",
            ),
            (&[b"a", b"2", b"", b"sen"], "names"),
            (
                &[b"a", b"2", b"t-1", b"Submitted", b"1", b"", b"", b"", b"f"],
                "names",
            ),
        ] {
            let got = match classify(&row(fields)) {
                Line::Skip(_) => "skip",
                Line::Names => "names",
                Line::NamesNoJob(_) => "stop",
            };
            assert_eq!(got, expect, "{fields:?}");
        }
    }

    #[test]
    fn a_damaged_row_is_unknown_and_keeps_only_a_whole_task_id() {
        let (r, damaged) = record(&row(&[b"a", b"2", b"t-12", b"submi"]), || 7);
        assert!(damaged);
        assert_eq!((r.key.as_str(), r.status), ("a", Status::Unknown));
        assert_eq!(r.task_id, "t-12", "a comma after it: whole");
        assert!(r.error.contains("line 7") && r.error.contains("--retry-unknown"));
        let (r, _) = record(&row(&[b"a", b"2", b"t-1"]), || 7);
        assert_eq!(r.task_id, "", "cut inside the task ID: not kept");
    }
}
