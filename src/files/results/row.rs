//! One row of the results file: the [`Record`] type, the columns of each
//! format, and reading a row's bytes back into a record.
//!
//! Separate from the readers and the writers because every one of them
//! needs it: the damage rules ([`super::damage`]) ask whether a row reads
//! back, the front-to-back reader turns rows into records, the report writer
//! writes records as rows. Keeping the row
//! here, below all of them, is what lets them form no cycle.

use serde::{Deserialize, Serialize};

use super::cell;
use crate::job::{Job, JobKey};

/// The columns of the results file this release writes (format
/// [`FORMAT`]): a job's columns ([`COLUMNS`]), then every task ID the job
/// was ever given (oldest first, separated by spaces) and the format of
/// the row.
pub const REPORT_COLUMNS: &[&str] = &REPORT;

const REPORT: [&str; 11] = [
    "key",
    "line",
    "task_id",
    "status",
    "attempts",
    "http_status",
    "error",
    "submitted_at",
    "fingerprint",
    "task_ids",
    "format",
];

/// A job's columns, the first of [`REPORT_COLUMNS`].
pub const COLUMNS: &[&str] = REPORT_COLUMNS.split_at(9).0;

/// The format named in each row of a results file this release writes.
pub const FORMAT: &str = "results/3";

/// The header of format `results/2`, the first report of the state store:
/// [`REPORT_COLUMNS`] with the job's key in a column named `id` (the
/// manifest's field, which is not a key when a row has none). Its rows
/// read as `results/3`'s.
pub const REPORT_COLUMNS_2: &[&str] = &{
    let mut columns = REPORT;
    columns[0] = "id";
    columns
};

/// The header of format `results/1`, the whole of a file written by the
/// releases that kept their state in it: the first nine of
/// [`REPORT_COLUMNS_2`].
pub const COLUMNS_1: &[&str] = REPORT_COLUMNS_2.split_at(9).0;

/// A job's state in the results file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Not attempted yet.
    Pending,
    /// A request is (or was, at a crash) in flight. Journal only.
    Sending,
    /// The API returned a task ID.
    Submitted,
    /// The API refused the row, or retries ran out.
    Failed,
    /// The request may or may not have been accepted.
    Unknown,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sending => "sending",
            Status::Submitted => "submitted",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
        }
    }
}

/// One row of the results file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The job's key ([`JobKey`]).
    pub key: JobKey,
    /// Line in the manifest where the job starts.
    pub line: u64,
    /// The server's text exactly; written defused ([`cell`]).
    #[serde(default, with = "cell")]
    pub task_id: String,
    pub status: Status,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub http_status: Option<u16>,
    /// Often the server's message; written defused ([`cell`]).
    #[serde(default, with = "cell")]
    pub error: String,
    /// RFC 3339, when the API accepted the job.
    #[serde(default)]
    pub submitted_at: String,
    /// Content hash, to notice a job edited under the same `id`.
    #[serde(default)]
    pub fingerprint: String,
}

impl Record {
    pub fn pending(job: &Job) -> Record {
        Record {
            key: job.key.clone(),
            line: job.line,
            task_id: String::new(),
            status: Status::Pending,
            attempts: 0,
            http_status: None,
            error: String::new(),
            submitted_at: String::new(),
            fingerprint: job.fingerprint.clone(),
        }
    }
}

impl Record {
    /// The row as a rerun treats it: a request left `sending` by a crash
    /// may have been accepted, so it is `unknown`.
    pub fn settled(mut self) -> Record {
        if self.status == Status::Sending {
            self.status = Status::Unknown;
            self.error = INTERRUPTED.to_owned();
        }
        self
    }
}

/// What an interrupted request is recorded as.
pub const INTERRUPTED: &str = "the run stopped while this request was in flight; it may have been accepted (rerun with --retry-unknown to send it again)";

/// The columns of one results row that are checked before the row is
/// read back whole, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowSummary<'a> {
    pub id: &'a [u8],
    pub line: u64,
    pub status: Status,
    /// As written: a task ID that looked like a formula carries the `'`
    /// of [`cell::escape`] (checked as UTF-8).
    pub task_id: &'a [u8],
    pub fingerprint: &'a [u8],
    /// Why the row failed or is unknown, as written (checked as UTF-8).
    pub error: &'a [u8],
}

/// The plan's columns of a row, when every column reads back as the
/// [`Record`] field it is (text as UTF-8, numbers as plain decimals, a
/// known status); `None` otherwise.
pub(super) fn summary(row: &csv::ByteRecord) -> Option<RowSummary<'_>> {
    if row.len() != COLUMNS.len() {
        return None;
    }
    for text in [0, 2, 6, 7, 8] {
        std::str::from_utf8(&row[text]).ok()?;
    }
    decimal::<u32>(&row[4])?;
    if !row[5].is_empty() {
        decimal::<u16>(&row[5])?;
    }
    Some(RowSummary {
        id: &row[0],
        line: decimal(&row[1])?,
        status: status(&row[3])?,
        task_id: &row[2],
        fingerprint: &row[8],
        error: &row[6],
    })
}

/// A row as a [`Record`], when it is one: read by hand (see [`record`]),
/// or else by serde (which accepts a little more, such as a `+2`), but only
/// with every column there (serde would fill missing ones with defaults,
/// and a row cut short is not a row).
pub(super) fn parse(row: &csv::ByteRecord) -> Option<Record> {
    if row.len() != COLUMNS.len() {
        return None;
    }
    record(row).or_else(|| {
        let headers = csv::ByteRecord::from(COLUMNS.to_vec());
        row.deserialize(Some(&headers)).ok()
    })
}

/// A row as the [`Record`] serde would read, for the rows this crate
/// writes (see [`summary`]); `None` for anything else. A million-row rerun
/// that merges reads every row, and serde was most of the cost of each.
pub(super) fn record(row: &csv::ByteRecord) -> Option<Record> {
    let summary = summary(row)?;
    // Checked as UTF-8 by `summary`.
    let text = |i: usize| std::str::from_utf8(&row[i]).ok().map(str::to_owned);
    Some(Record {
        key: JobKey::from(text(0)?),
        line: summary.line,
        task_id: cell::unescape(&text(2)?).to_owned(),
        status: summary.status,
        attempts: decimal(&row[4])?,
        http_status: match &row[5] {
            b"" => None,
            status => Some(decimal(status)?),
        },
        error: cell::unescape(&text(6)?).to_owned(),
        submitted_at: text(7)?,
        fingerprint: text(8)?,
    })
}

/// Digits only: what this crate writes. Anything else a serde read might
/// also accept (a sign, a hex prefix) is left to it.
fn decimal<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn status(bytes: &[u8]) -> Option<Status> {
    [
        Status::Pending,
        Status::Sending,
        Status::Submitted,
        Status::Failed,
        Status::Unknown,
    ]
    .into_iter()
    .find(|s| s.as_str().as_bytes() == bytes)
}

/// A record serialized as a bare row of [`REPORT_COLUMNS`] (a tuple has
/// no header of its own), with the job's task IDs: how the report writer
/// writes it under the header it wrote by hand.
pub(super) struct RowOnly<'a>(pub(super) &'a Record, pub(super) &'a str);

impl serde::Serialize for RowOnly<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        (
            &r.key,
            r.line,
            cell::escape(&r.task_id),
            r.status,
            r.attempts,
            r.http_status,
            cell::escape(&r.error),
            &r.submitted_at,
            &r.fingerprint,
            cell::escape(self.1),
            FORMAT,
        )
            .serialize(s)
    }
}
