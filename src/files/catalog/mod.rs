//! The catalog CSV: one row per clip, its format, and the rule that merges
//! what the host says into a job's rows.
//!
//! The catalog is the product (what was made, where the files are). Its
//! state lives in the state store (`crate::files::state`: the `clips`,
//! `files` and `takes` tables); the CSV is a **report** of it, written whole (a
//! temporary file renamed over the old one) at the end of every `collect`
//! or `receive` and at most every few seconds during one, so a CSV tool
//! sees a complete file at any instant. Each row names its format
//! ([`FORMAT`]) in its last column; hand edits are not state (the next run
//! writes the report again from the store).
//!
//! A catalog CSV is read back only to build the store when it has no
//! clips yet: the first `collect` after an upgrade (an earlier release's
//! file, whose last rows may be appended changes of one job and clip, the
//! later superseding, and whose very last row may be cut short by a kill)
//! or a store deleted while its reports remain ([`each_row`]).
//!
//! - [`job`]: one job's rows and the merge rule (what an answer may change).

pub mod job;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::api::feed::ClipStatus;
use crate::audio::Measurement;
use crate::files::results::{Bounded, ResultsError};
use crate::job::JobKey;
use crate::util::fsx::AtomicFile;
pub use job::JobRows;

/// The format named in each row of a catalog this release writes. An
/// earlier release wrote no such column (read as `catalog/1`: the same
/// columns but `format`); `catalog/2` lacks the take's measurement
/// (`measured_duration` to `pick`). All three are read.
pub const FORMAT: &str = "catalog/3";

/// The formats this release reads: an earlier release's catalog is
/// imported (its missing columns empty), never refused.
const READS: [&str; 2] = ["catalog/2", FORMAT];

/// Columns a file must have to be read as a catalog.
const REQUIRED: [&str; 4] = ["key", "task_id", "clip_index", "status"];

/// What goes wrong with the catalog file; the results file's mechanics
/// ([`ResultsError`]) under the catalog's own names, so a message points
/// at `--catalog`, not `--out`.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog cannot be created, read or written.
    #[error("cannot write the catalog {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Another `collect` or `receive` holds the catalog.
    #[error("the catalog {} is in use by another batchgen collect or receive{}", path.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, holder: Option<u32> },
    /// The file is not a catalog: left untouched.
    #[error("{0}")]
    Refused(String),
    /// The writer task itself failed (it panicked): a bug, not the disk.
    #[error("catalog writer failed: {0}")]
    Writer(String),
}

impl From<ResultsError> for CatalogError {
    fn from(e: ResultsError) -> CatalogError {
        match e {
            ResultsError::Io { path, source } => CatalogError::Io { path, source },
            ResultsError::Locked { path, holder } => CatalogError::Locked { path, holder },
            ResultsError::Refused(message) => CatalogError::Refused(message),
        }
    }
}

/// One row of the catalog: one clip of one job. Server-supplied text is
/// written defused against spreadsheet formulas and read back exactly
/// ([`crate::files::results::cell`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The job's key, as in the results report and the store.
    pub key: JobKey,
    #[serde(with = "crate::files::results::cell")]
    pub task_id: String,
    /// 1, 2, … in the order the API lists the clips; 0 for a task that
    /// failed before it had any clip.
    pub clip_index: u32,
    #[serde(with = "crate::files::results::cell")]
    pub clip_id: String,
    #[serde(default, with = "crate::files::results::cell")]
    pub title: String,
    /// The clip's style tags.
    #[serde(default, with = "crate::files::results::cell")]
    pub style: String,
    #[serde(default, with = "crate::files::results::cell")]
    pub model: String,
    /// `new`, `text`, `first`, `complete` or `failed`.
    pub status: String,
    /// Seconds.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default, with = "crate::files::results::cell")]
    pub created_at: String,
    #[serde(default, with = "crate::files::results::cell")]
    pub audio_url: String,
    #[serde(default, with = "crate::files::results::cell")]
    pub image_url: String,
    /// The downloaded MP3, as given (relative to where collect ran if
    /// `--download` was relative); empty until downloaded.
    #[serde(default, with = "crate::files::results::cell")]
    pub file: String,
    /// Size of `file` on disk after tagging: a file of another size is not
    /// ours (or was cut short) and is downloaded again.
    #[serde(default)]
    pub file_bytes: Option<u64>,
    #[serde(default, with = "crate::files::results::cell")]
    pub image_file: String,
    /// Why the clip failed, or why its download did.
    #[serde(default, with = "crate::files::results::cell")]
    pub error: String,
    /// The clip's lyrics ([`crate::api::feed::Clip::lyrics`]), for the MP3's tag.
    #[serde(default, with = "crate::files::results::cell")]
    pub lyrics: String,
    /// The downloaded take's length as decoded, seconds (the host's claim
    /// is `duration`); empty until measured.
    #[serde(default)]
    pub measured_duration: Option<f64>,
    /// Integrated loudness, LUFS; empty for a silent or unmeasured take.
    #[serde(default)]
    pub loudness: Option<f64>,
    /// True peak, dBTP; empty for a silent or unmeasured take.
    #[serde(default)]
    pub true_peak: Option<f64>,
    /// What the quality rules made of the take: `kept`, `rejected`, or
    /// empty until it is measured ([`Verdict`]).
    #[serde(default)]
    pub verdict: String,
    /// Every rule the take breaks, `; `-separated.
    #[serde(default, with = "crate::files::results::cell")]
    pub reasons: String,
    /// The take of its job's task the playlist takes ([`JobRows::judge`]).
    #[serde(default)]
    pub pick: bool,
    /// The whole measurement, or why the file could not be measured: kept
    /// in the store, not a column of the report.
    #[serde(skip)]
    pub measured: Option<Arc<Measured>>,
}

impl Row {
    pub fn status(&self) -> ClipStatus {
        ClipStatus::parse(&self.status)
    }

    /// The verdict column as a value.
    pub fn verdict(&self) -> Option<Verdict> {
        Verdict::parse(&self.verdict)
    }

    /// Records what measuring the take found, with the columns copied out
    /// of it; the verdict waits for [`JobRows::judge`].
    pub fn set_measured(&mut self, measured: Measured) {
        let m = measured.audio();
        self.measured_duration = m.map(|m| m.duration);
        self.loudness = m.and_then(|m| m.integrated_lufs);
        self.true_peak = m.and_then(|m| m.true_peak_dbtp);
        self.measured = Some(Arc::new(measured));
    }

    /// Whether this row's take is measured by the current method (a take
    /// measured by another one is measured again).
    pub fn is_measured(&self) -> bool {
        self.measured.is_some()
    }
}

/// What measuring a downloaded take found.
#[derive(Debug, Clone, PartialEq)]
pub enum Measured {
    /// Its numbers ([`crate::audio::Measurement`]).
    Audio(Measurement),
    /// Why it could not be measured (not an MP3 after all, no frame that
    /// decodes): such a take is rejected.
    Unreadable(String),
}

impl Measured {
    pub fn audio(&self) -> Option<&Measurement> {
        match self {
            Measured::Audio(m) => Some(m),
            Measured::Unreadable(_) => None,
        }
    }
}

/// What the quality rules made of a measured take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It breaks no rule.
    Kept,
    /// It breaks at least one (the `reasons` column names each).
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Kept => "kept",
            Verdict::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Verdict> {
        match text {
            "kept" => Some(Verdict::Kept),
            "rejected" => Some(Verdict::Rejected),
            _ => None,
        }
    }
}

/// Hands `visit` every row of the catalog CSV at `path` with its line, in
/// file order (a later row of a job and clip supersedes an earlier one,
/// as an earlier release appended changes); `Ok(false)` when there is no
/// file or it is empty. A last row cut short (a kill in the middle of an
/// append) is not a row and is skipped.
///
/// # Errors
/// [`CatalogError::Refused`] for a file that is not a catalog (its header
/// lacks a catalog's columns, a row that cannot be read with rows after
/// it) or one written by a newer batchgen (a `format` it does not know);
/// [`CatalogError::Io`] when it cannot be read.
pub fn each_row(path: &Path, mut visit: impl FnMut(u64, Row)) -> Result<bool, CatalogError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(CatalogError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut reader = csv::Reader::from_reader(Bounded::new(file));
    let headers = reader.headers().map_err(|e| refused(path, &e))?.clone();
    if headers.is_empty() {
        return Ok(false);
    }
    check_header(path, &headers)?;
    let format_at = headers.iter().position(|h| h == "format");
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(true),
            Ok(true) => {}
            Err(e) => {
                // A last row cut short (a kill or a full disk in the
                // middle of an append) is not a row; damage with rows
                // after it is a file batchgen did not write.
                let oversized = reader.get_ref().oversized().is_some();
                let mut rest = csv::ByteRecord::new();
                if !oversized && matches!(reader.read_byte_record(&mut rest), Ok(false)) {
                    return Ok(true);
                }
                return Err(refused(path, &e));
            }
        }
        let line = record.position().map_or(0, csv::Position::line);
        if let Some(format) = format_at.and_then(|at| record.get(at))
            && !READS.contains(&format)
            && !format.is_empty()
        {
            return Err(CatalogError::Refused(format!(
                "{}: line {line} is in catalog format {format:?}, which this batchgen ({}, format {FORMAT}) does not read; \
                 it is left untouched: collect with the batchgen that wrote it",
                path.display(),
                env!("CARGO_PKG_VERSION"),
            )));
        }
        match record.deserialize::<Row>(Some(&headers)) {
            Ok(row) => visit(line, row),
            Err(e) => {
                let mut rest = csv::ByteRecord::new();
                if matches!(reader.read_byte_record(&mut rest), Ok(false)) {
                    return Ok(true);
                }
                return Err(refused(path, &e));
            }
        }
    }
}

/// Refuses a file at `path` that is there and not empty but does not start
/// with a catalog's header: the report replaces only a catalog (an
/// earlier one of its own), never a manifest or any other file named by
/// mistake, through whatever name (a hard link, a bind mount) reaches it.
///
/// # Errors
/// [`CatalogError::Refused`] for such a file; [`CatalogError::Io`] when it
/// cannot be read.
pub fn check_ours(path: &Path) -> Result<(), CatalogError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CatalogError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut reader = csv::Reader::from_reader(Bounded::new(file));
    let headers = reader.headers().map_err(|e| refused(path, &e))?;
    if headers.is_empty() {
        return Ok(());
    }
    check_header(path, headers)
}

fn check_header(path: &Path, headers: &csv::StringRecord) -> Result<(), CatalogError> {
    let named = |name: &str| headers.iter().any(|h| h == name);
    if REQUIRED.iter().all(|c| named(c)) {
        return Ok(());
    }
    Err(CatalogError::Refused(format!(
        "{}: not a batchgen catalog (its header lacks {}); batchgen leaves it untouched and fetched nothing. {NAME_ANOTHER}",
        path.display(),
        REQUIRED
            .iter()
            .filter(|c| !named(c))
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The advice for a `--catalog` that is not a catalog: it may be the
/// user's manifest or any file of theirs, so it is never "move it away".
pub const NAME_ANOTHER: &str = "Name a file of its own with --catalog, or leave --catalog out for the one beside the results file";

fn refused(path: &Path, e: &csv::Error) -> CatalogError {
    let line = e
        .position()
        .map(|p| format!(" at line {}", p.line()))
        .unwrap_or_default();
    CatalogError::Refused(format!(
        "{}: not a batchgen catalog{line} ({e}); batchgen leaves it untouched and fetched nothing. {NAME_ANOTHER}",
        path.display()
    ))
}

/// Writes a catalog report whole: the header, then each row with its
/// [`FORMAT`], into a temporary file that [`ReportWriter::finish`] puts
/// in place. Dropped unfinished, it leaves the old report as it was.
pub struct ReportWriter {
    path: PathBuf,
    out: BufWriter<AtomicFile>,
    line: Vec<u8>,
}

impl ReportWriter {
    /// # Errors
    /// When the temporary file cannot be created, or `path` is a dangling
    /// symlink or not a regular file.
    pub fn new(path: &Path) -> Result<ReportWriter, CatalogError> {
        let error = |e| io_error(path, e);
        let mut out = BufWriter::new(AtomicFile::create(path).map_err(error)?);
        let mut header = encode(&Row::default(), true).map_err(error)?;
        let end = header
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(header.len());
        header.truncate(end);
        header.extend_from_slice(b",format\n");
        out.write_all(&header).map_err(error)?;
        Ok(ReportWriter {
            path: path.to_owned(),
            out,
            line: Vec::with_capacity(512),
        })
    }

    /// Writes one clip's row.
    ///
    /// # Errors
    /// Any I/O error (a full disk).
    pub fn write(&mut self, row: &Row) -> Result<(), CatalogError> {
        let error = |e| io_error(&self.path, e);
        self.line = encode(row, false).map_err(error)?;
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        }
        self.line.push(b',');
        self.line.extend_from_slice(FORMAT.as_bytes());
        self.line.push(b'\n');
        self.out.write_all(&self.line).map_err(error)
    }

    /// Makes the new report durable and puts it in place.
    ///
    /// # Errors
    /// Any I/O error; the old report is then left as it was.
    pub fn finish(self) -> Result<(), CatalogError> {
        let error = |e| io_error(&self.path, e);
        let tmp = self.out.into_inner().map_err(|e| error(e.into_error()))?;
        tmp.commit().map_err(error)
    }
}

/// One row as a CSV line (after the header line, if asked). The `error`
/// column quotes servers and download failures: it passes the one
/// redaction rule, like every other output.
fn encode(row: &Row, header: bool) -> io::Result<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(header)
        .from_writer(Vec::with_capacity(512));
    let written = match crate::util::redact::text(&row.error) {
        std::borrow::Cow::Borrowed(_) => writer.serialize(row),
        std::borrow::Cow::Owned(masked) => writer.serialize(Row {
            error: masked,
            ..row.clone()
        }),
    };
    written.map_err(io::Error::other)?;
    writer
        .into_inner()
        .map_err(|e| io::Error::other(e.to_string()))
}

fn io_error(path: &Path, source: io::Error) -> CatalogError {
    CatalogError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests;
