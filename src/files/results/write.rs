//! Writing the results file whole: the report of the state store.
//!
//! [`AtomicCsv`] is the recipe: rows through the `csv` crate and a
//! buffer into an [`AtomicFile`] (a temporary file beside the target, the
//! real file's folder when the target is a user's symlink, with its
//! permission bits), fsynced and renamed over the target on
//! [`AtomicCsv::commit`]; dropped uncommitted, it leaves the old file as
//! it was. [`ReportWriter`] writes the results file through it (the header by
//! hand, then each [`Record`]). The catalog report uses the same
//! [`AtomicFile`] with rows of its own (`crate::files::catalog`). Kept apart
//! from the readers: nothing here reads a file.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::row::{REPORT_COLUMNS, Record, RowOnly};
use super::{ResultsError, results_error};
use crate::util::fsx::AtomicFile;

/// A CSV file being replaced whole (see the module docs).
pub(super) struct AtomicCsv {
    writer: csv::Writer<BufWriter<AtomicFile>>,
}

impl AtomicCsv {
    /// Starts replacing `path`. The writer is the `csv` crate's default:
    /// a struct's first row writes the header from its field names; a
    /// tuple writes none.
    ///
    /// # Errors
    /// What [`AtomicFile::create`] refuses (a dangling symlink, not a
    /// regular file), or the temporary file cannot be created.
    pub(super) fn create(path: &Path) -> io::Result<AtomicCsv> {
        let tmp = AtomicFile::create(path)?;
        Ok(AtomicCsv {
            writer: csv::Writer::from_writer(BufWriter::new(tmp)),
        })
    }

    /// Writes one record of plain fields (a header, say).
    ///
    /// # Errors
    /// Any I/O error (a full disk).
    pub(super) fn write_record(&mut self, fields: &[&str]) -> io::Result<()> {
        self.writer.write_record(fields).map_err(io::Error::from)
    }

    /// Writes one row as serde serializes it.
    ///
    /// # Errors
    /// Any I/O error (a full disk).
    pub(super) fn serialize(&mut self, row: impl Serialize) -> io::Result<()> {
        self.writer.serialize(row).map_err(io::Error::from)
    }

    /// The temporary file being written.
    pub(super) fn file(&self) -> &std::fs::File {
        self.writer.get_ref().get_ref().file()
    }

    /// Makes the new file durable and puts it in place.
    ///
    /// # Errors
    /// Any I/O error; the old file is then left as it was.
    pub(super) fn commit(self) -> io::Result<()> {
        let buffered = self
            .writer
            .into_inner()
            .map_err(csv::IntoInnerError::into_error)?;
        let tmp = buffered
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        tmp.commit()
    }
}

/// Writes a replacement results file, row by row, through the one CSV
/// rewrite recipe (`AtomicCsv`, in this module):
/// [`ReportWriter::finish`] puts it in place. Dropped unfinished, it leaves
/// the old file as it was.
pub struct ReportWriter {
    path: PathBuf,
    out: AtomicCsv,
}

impl ReportWriter {
    /// # Errors
    /// When the temporary file cannot be created, or `path` is a dangling
    /// symlink or not a regular file.
    pub fn new(path: &Path) -> Result<ReportWriter, ResultsError> {
        let mut out = AtomicCsv::create(path).map_err(|e| results_error(path, e))?;
        // The header even when there are no rows, so the file is ours.
        out.write_record(REPORT_COLUMNS)
            .map_err(|e| results_error(path, e))?;
        Ok(ReportWriter {
            path: path.to_owned(),
            out,
        })
    }

    /// Writes a job's row, its task ID its only one.
    ///
    /// # Errors
    /// Any I/O error (a full disk).
    pub fn write(&mut self, record: &Record) -> Result<(), ResultsError> {
        self.write_with_tasks(record, &record.task_id)
    }

    /// Writes a job's row with every task ID it was given (`task_ids`,
    /// oldest first, separated by spaces).
    ///
    /// # Errors
    /// Any I/O error (a full disk).
    pub fn write_with_tasks(
        &mut self,
        record: &Record,
        task_ids: &str,
    ) -> Result<(), ResultsError> {
        // The header is written by hand: serialize must not add another.
        self.out
            .serialize(RowOnly(record, task_ids))
            .map_err(|e| results_error(&self.path, e))
    }

    /// A descriptor of the new file, OS-locked, for a run that must keep
    /// it while it owns the file (a second run through a hard link of the
    /// file is then refused: [`crate::files::state`]).
    ///
    /// # Errors
    /// When the descriptor cannot be duplicated or locked.
    pub fn hold(&self) -> Result<std::fs::File, ResultsError> {
        let file = self
            .out
            .file()
            .try_clone()
            .map_err(|e| results_error(&self.path, e))?;
        file.lock().map_err(|e| results_error(&self.path, e))?;
        Ok(file)
    }

    /// Makes the new file durable and puts it in place.
    ///
    /// # Errors
    /// Any I/O error; the old file is then left as it was.
    pub fn finish(self) -> Result<(), ResultsError> {
        self.out.commit().map_err(|e| results_error(&self.path, e))
    }
}

/// Writes `rows` as the whole results file, atomically. Runs write it
/// through [`ReportWriter`] row by row; this is for the tests and tools that
/// write a prepared results file (`tests/it/common`, the engine's tests).
///
/// # Errors
/// Any I/O error; `path` is then left as it was.
pub fn write_atomic(path: &Path, rows: &[Record]) -> Result<(), ResultsError> {
    let mut out = ReportWriter::new(path)?;
    for row in rows {
        out.write(row)?;
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::super::row::{COLUMNS, FORMAT, Status, record};
    use super::*;

    #[test]
    fn rows_read_by_hand_are_the_rows_serde_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut out = ReportWriter::new(&path).unwrap();
        let statuses = [
            Status::Pending,
            Status::Sending,
            Status::Submitted,
            Status::Failed,
            Status::Unknown,
        ];
        for (i, status) in statuses.into_iter().enumerate() {
            out.write(&Record {
                key: format!("job-{i}").into(),
                line: 2 + i as u64,
                task_id: if i % 2 == 0 {
                    format!("t-{i}")
                } else {
                    String::new()
                },
                status,
                attempts: i as u32,
                http_status: (i % 2 == 1).then_some(400 + i as u16),
                error: "said \"no\",\non two lines, é".repeat(i),
                submitted_at: "2025-01-01T00:00:00Z".into(),
                fingerprint: "0123456789abcdef".into(),
            })
            .unwrap();
        }
        out.finish().unwrap();
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let headers = reader.byte_headers().unwrap().clone();
        let mut row = csv::ByteRecord::new();
        let mut n = 0;
        while reader.read_byte_record(&mut row).unwrap() {
            let by_serde: Record = row.deserialize(Some(&headers)).unwrap();
            assert_eq!(&row[10], FORMAT.as_bytes());
            // The job's columns, as the reader takes them from a
            // report row.
            row.truncate(COLUMNS.len());
            assert_eq!(record(&row), Some(by_serde));
            n += 1;
        }
        assert_eq!(n, statuses.len());
    }
}
