//! Reading a results file front to back: the one loop over its lines that
//! every reader shares, and the "latest row of each `id`" rule.
//!
//! [`Lines`] opens the file (a regular file only), checks the header and
//! hands out the rows that name a job, applying the damage rules of
//! [`super::damage`] on the way: a blank or repeated line is skipped with a
//! warning, a line that names no job stops the read. [`super::read()`],
//! [`super::latest()`] and [`super::each_row()`] (the state store's import)
//! turn those rows into records here. [`LatestPerKey`] keeps the last item
//! of each `id` in order of first appearance, for [`super::latest()`].

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::bounded::{Bounded, MAX_ROW};
use super::damage::{self, Format, Line};
use super::row::{COLUMNS, REPORT_COLUMNS, Record};
use super::{ResultsError, results_error};
use crate::job::JobKey;
use crate::util::fsx;

/// A results file being read front to back, line by line.
pub(super) struct Lines {
    path: PathBuf,
    reader: csv::Reader<Bounded<File>>,
    row: csv::ByteRecord,
    /// The header is still to be checked.
    first: bool,
    /// The file's format, once its header was read.
    format: Format,
    /// The `task_ids` cell of the row last handed out (a report's row).
    task_ids: Vec<String>,
}

impl Lines {
    /// Opens the results file at `path`; `None` when there is none.
    ///
    /// # Errors
    /// As [`open_existing`].
    pub(super) fn open(path: &Path) -> Result<Option<Lines>, ResultsError> {
        let Some(file) = open_existing(path)? else {
            return Ok(None);
        };
        let reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(Bounded::new(file));
        Ok(Some(Lines {
            path: path.to_owned(),
            reader,
            row: csv::ByteRecord::new(),
            first: true,
            format: Format::One,
            task_ids: Vec::new(),
        }))
    }

    /// The next row that names a job (it may still be damaged: see
    /// [`damage::record`]); `None` at the end of the file.
    ///
    /// # Errors
    /// When the file cannot be read, is not a results file (its header),
    /// or has a line that names no job.
    pub(super) fn next_row(&mut self) -> Result<Option<&csv::ByteRecord>, ResultsError> {
        let path = self.path.as_path();
        loop {
            match self.reader.read_byte_record(&mut self.row) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => return Err(read_error(path, &self.reader, &e)),
            }
            if std::mem::take(&mut self.first) {
                self.format = damage::check_header(path, &self.row)?;
                continue;
            }
            self.task_ids.clear();
            if self.format.is_report()
                && self.row.len() == REPORT_COLUMNS.len()
                && !Format::ALL.iter().any(|f| f.is_header(&self.row))
                && damage::check_format(path, || line_at(path, &self.row), &self.row[10])?
            {
                // The job's columns are read as `results/1`'s.
                self.task_ids = std::str::from_utf8(&self.row[9])
                    .map(|t| {
                        super::cell::unescape(t)
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                self.row.truncate(COLUMNS.len());
            }
            match damage::classify(&self.row) {
                Line::Names => return Ok(Some(&self.row)),
                Line::Skip(why) => {
                    tracing::warn!(
                        "{}:{}: skipping {why}",
                        path.display(),
                        line_at(path, &self.row)
                    );
                }
                Line::NamesNoJob(why) => {
                    return Err(damage::names_no_job(path, line_at(path, &self.row), why));
                }
            }
        }
    }
}

/// Hands `visit` every row of the file at `path` as a record, in file
/// order, damaged rows settled as [`damage::record`] says; a damaged row
/// whose own task ID is not whole gets its job's latest one before it
/// (which costs a map of every job's task ID: for the tests and tools that
/// read a file whole, not for the import, whose store keeps a job's task
/// ID by itself).
///
/// # Errors
/// As [`Lines::next_row`].
pub(super) fn each_record(path: &Path, mut visit: impl FnMut(Record)) -> Result<(), ResultsError> {
    let mut previous: HashMap<JobKey, String> = HashMap::new();
    each_row(path, |mut record, damaged, _| {
        if damaged.is_some()
            && record.task_id.is_empty()
            && let Some(task) = previous.get(&record.key)
        {
            record.task_id.clone_from(task);
        }
        if !record.task_id.is_empty() {
            previous.insert(record.key.clone(), record.task_id.clone());
        }
        visit(record);
        std::ops::ControlFlow::Continue(())
    })
}

/// Hands `visit` every row of the file at `path` as a record, in file
/// order, with the line of a damaged one (see [`damage::record`]) and the
/// job's other task IDs (a report row's `task_ids`). A damaged row
/// whose own task ID is not whole has none: the caller keeps the job's
/// earlier one. Stops when `visit` breaks.
///
/// # Errors
/// As [`Lines::next_row`].
pub(super) fn each_row(
    path: &Path,
    mut visit: impl FnMut(Record, Option<u64>, &[String]) -> std::ops::ControlFlow<()>,
) -> Result<(), ResultsError> {
    let Some(mut lines) = Lines::open(path)? else {
        return Ok(());
    };
    while let Some(row) = lines.next_row()? {
        let mut line = None;
        let (record, damaged) = damage::record(row, || *line.insert(line_at(path, row)));
        let damaged_line = damaged.then(|| line.unwrap_or_else(|| line_at(path, row)));
        if visit(record, damaged_line, &lines.task_ids).is_break() {
            break;
        }
    }
    Ok(())
}

/// The last item seen for each `id`, in order of each `id`'s first
/// appearance: how a reader of the journal sees the file.
pub(super) struct LatestPerKey<T> {
    order: Vec<JobKey>,
    last: HashMap<JobKey, T>,
}

impl<T> Default for LatestPerKey<T> {
    fn default() -> Self {
        LatestPerKey {
            order: Vec::new(),
            last: HashMap::new(),
        }
    }
}

impl<T> LatestPerKey<T> {
    /// `item` is now the latest for `key`.
    pub(super) fn insert(&mut self, key: JobKey, item: T) {
        if !self.last.contains_key(&key) {
            self.order.push(key.clone());
        }
        self.last.insert(key, item);
    }

    /// The latest item of each key, in order of first appearance.
    pub(super) fn into_vec(self) -> Vec<T> {
        let mut last = self.last;
        self.order
            .into_iter()
            .filter_map(|id| last.remove(&id))
            .collect()
    }
}

/// The line (1-based, as an editor counts them) where `row` starts: only
/// for a message about a damaged row, so it reads the file again rather
/// than have every read count lines.
pub(super) fn line_at(path: &Path, row: &csv::ByteRecord) -> u64 {
    line_at_offset(path, row.position().map_or(0, csv::Position::byte))
}

/// The line (1-based) of byte `offset` of the file at `path`.
fn line_at_offset(path: &Path, offset: u64) -> u64 {
    let Ok(file) = File::open(path) else {
        return 0;
    };
    let mut newlines = 0;
    let mut left = offset;
    let mut reader = io::BufReader::new(file.take(offset));
    let mut buf = [0u8; 1 << 16];
    while left > 0 {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                newlines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
                left = left.saturating_sub(n as u64);
            }
        }
    }
    newlines + 1
}

/// Opens an existing results file for reading; `None` when there is none.
/// Only a regular file is opened: a FIFO would block the run, a device
/// never end.
pub(super) fn open_existing(path: &Path) -> Result<Option<File>, ResultsError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => File::open(path)
            .map(Some)
            .map_err(|e| results_error(path, e)),
        Ok(_) => Err(results_error(
            path,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file (a folder, FIFO, socket or device)",
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                // A dangling link: nothing to read, and nothing to create
                // through it either (see `fsx::resolve`).
                return Err(results_error(path, fsx::resolve(path).err().unwrap_or(e)));
            }
            Ok(None)
        }
        Err(e) => Err(results_error(path, e)),
    }
}

pub(super) fn unreadable(path: &Path, e: &csv::Error) -> ResultsError {
    results_error(path, io::Error::other(e.to_string()))
}

/// A read error of a results file read through [`Bounded`]: a record over
/// [`MAX_ROW`] (an unclosed quote swallowing the rest, a file of garbage)
/// names no job, so the run stops there, naming the line; anything else is
/// [`unreadable`].
fn read_error<R: io::Read>(
    path: &Path,
    reader: &csv::Reader<Bounded<R>>,
    e: &csv::Error,
) -> ResultsError {
    match reader.get_ref().oversized() {
        Some(offset) => damage::names_no_job(
            path,
            line_at_offset(path, offset),
            &format!(
                "a row starting here is over {MAX_ROW} bytes, far more than any results row (an unclosed quote, or not a results file); nothing after it was read"
            ),
        ),
        None => unreadable(path, e),
    }
}
