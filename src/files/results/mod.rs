//! The results file: its rows, the damage rules it is read by, the atomic
//! way it is written, and the recorder that hands a run's rows to the
//! state store.
//!
//! # What the results file is now
//! The results CSV is a **report** of the state store
//! ([`crate::files::state`]): one row per job, manifest order, written
//! whole through a temporary file and a rename ([`ReportWriter`]). It is read
//! back only to build a store where there is none: the first run after an
//! upgrade from a release that kept its state in this file (a compacted
//! file followed by the journal rows a run appended, `sending` before each
//! request and the outcome after), or a run after the store was deleted.
//! Readers take the *last* row of each key (the first column: `key`, or
//! `id` in files before `results/3`); a row left `sending` is
//! `unknown` (the request may have been accepted), so it is not resent
//! unless the user asks ([`Record::settled`]).
//!
//! # A results file damaged outside a run
//! A results file is edited by hand, cut short by a full disk, concatenated,
//! appended to by another program. Its rows are what keeps a job from being
//! billed twice, so damage is never a reason to send a job again. The rule:
//! **a row whose key can be read settles that job as `unknown`** (not
//! resent without `--retry-unknown`, the damage named in its `error`
//! column), and **a line that names no job stops the run** (exit 78, file
//! and line named, nothing sent), because batchgen cannot tell which job it
//! held. The key can be read when the row has a comma after it (so it was
//! not cut short) and it is non-empty UTF-8. Case by case:
//!
//! | damage | what batchgen does |
//! |---|---|
//! | last row cut short mid-field or mid-quote, with its key and a comma | that job `unknown`; a task ID is kept only if a comma shows it whole, else the job's earlier one is kept |
//! | a row cut short inside its key (no comma yet) | stop, exit 78: the key itself may be cut |
//! | a damaged row spanning several lines (an unclosed quote swallows the rows after it) | stop, exit 78: the swallowed rows' jobs cannot be told apart |
//! | a row with a bad value (a status `Submitted`, a line `abc`), too few or too many columns | that job `unknown`, as above |
//! | garbage lines, lines appended by another program | those naming a manifest job: `unknown`; any other: stop, exit 78 naming the line |
//! | a well-formed row for a key not in the manifest | kept as it is (it holds a task ID) |
//! | a damaged row for a key not in the manifest | stop, exit 78 naming the line |
//! | the header repeated in the middle (two files concatenated) | the repeat is skipped; the latest row of each key wins as usual |
//! | a line of only spaces or NUL bytes (a crash's zero-filled tail) | skipped: it names nothing, and no acknowledged row is ever NUL (fsynced) |
//! | NUL bytes inside a row | the row is damaged: as above |
//! | CRLF line ends, a UTF-8 BOM (a spreadsheet saved it) | read as usual; the rewrite uses LF and no BOM |
//! | an empty file (0 bytes) | no rows: a new results file |
//! | a file of another kind (other columns, binary) | refused, exit 78, nothing sent, nothing overwritten; the message never suggests deleting it |
//! | a folder, FIFO, device, a dangling symlink | refused (exit 73): never opened for writing, never blocked on |
//!
//! A row a crash left half-appended makes its job `unknown` too: a
//! cut-short row looks the same whoever cut it.

mod bounded;
pub mod cell;
mod damage;
mod lock;
mod reader;
mod recorder;
mod row;
mod write;

use std::io;
use std::path::{Path, PathBuf};

pub(crate) use bounded::Bounded;
pub use lock::Lock;
use reader::LatestPerKey;
pub use recorder::{GroupCommit, Recorder, Sink, spawn};
pub use row::{
    COLUMNS, COLUMNS_1, FORMAT, INTERRUPTED, REPORT_COLUMNS, REPORT_COLUMNS_2, Record, Status,
};
pub use write::{ReportWriter, write_atomic};

/// What goes wrong with a file this layer keeps. The results file, its
/// store and the catalog share the mechanics (lock, bounded reads, atomic
/// rewrites), so they share this type; [`crate::files::catalog::CatalogError`] renames
/// its variants for the catalog. Which exit code each one means is the
/// program's choice, not this layer's.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// The file (or its lock, or its folder) cannot be created, read or
    /// written.
    #[error("cannot write the results file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Another live batchgen process holds the file's lock.
    #[error("{} is in use by another batchgen run{}", path.display(), holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, holder: Option<u32> },
    /// The file is not batchgen's, or damaged so that going on could send a
    /// job twice: left untouched, nothing sent. The message says what to do.
    #[error("{0}")]
    Refused(String),
}

/// Every row of a results file as written (journal rows included), in file
/// order, with damaged rows settled as the module docs' table says (an
/// attributable damaged row is an `unknown` record). Public for the tests
/// that read a run's journal row by row (`tests/it/unattended.rs`).
///
/// # Errors
/// When the file cannot be read, is not a batchgen results file, or has a
/// line that names no job.
pub fn read(path: &Path) -> Result<Vec<Record>, ResultsError> {
    let mut records = Vec::new();
    reader::each_record(path, |record| records.push(record))?;
    Ok(records)
}

/// The latest row of each key, in order of first appearance, as a rerun
/// sees them: a row left `sending` is `unknown`.
///
/// # Errors
/// As [`read()`].
pub fn latest(path: &Path) -> Result<Vec<Record>, ResultsError> {
    let mut latest = LatestPerKey::default();
    reader::each_record(path, |record| {
        latest.insert(record.key.clone(), record.settled());
    })?;
    Ok(latest.into_vec())
}

/// Every row of the results file at `path`, in file order, with the line
/// of each damaged one and the job's task IDs the row lists (format
/// `results/2` and later): what the state store imports
/// ([`crate::files::state`]). Stops when `visit` breaks.
///
/// # Errors
/// As [`read()`].
pub fn each_row(
    path: &Path,
    visit: impl FnMut(Record, Option<u64>, &[String]) -> std::ops::ControlFlow<()>,
) -> Result<(), ResultsError> {
    reader::each_row(path, visit)
}

/// Whether the file at `path` starts with the header this release writes:
/// a report of an earlier format (or none) is written again even when the
/// store has not changed since, so an upgrade leaves every report in one
/// format. Only a regular file is opened (a FIFO would block).
pub fn is_current(path: &Path) -> bool {
    use std::io::Read;
    let header = REPORT_COLUMNS.join(",") + "\n";
    let mut start = vec![0; header.len()];
    let Ok(Some(mut file)) = open_regular(path) else {
        return false;
    };
    file.read_exact(&mut start).is_ok() && start == header.as_bytes()
}

/// The results file at `path` opened for reading, when it exists: a
/// regular file only (a FIFO would block, a device never end).
///
/// # Errors
/// When it is not a regular file, a dangling link, or cannot be opened.
pub fn open_regular(path: &Path) -> Result<Option<std::fs::File>, ResultsError> {
    reader::open_existing(path)
}

/// The message that stops a run at a damaged row of a job that is no
/// longer in the manifest.
pub fn damaged_orphan(path: &Path, line: u64, id: &str) -> ResultsError {
    damage::damaged_orphan(path, line, id)
}

/// A [`ResultsError::Io`] about `path`.
fn results_error(path: &Path, source: io::Error) -> ResultsError {
    ResultsError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::io::Write;

    use super::row::INTERRUPTED;
    use super::*;
    use crate::job::{Job, JobFields};

    fn job(id: &str) -> Job {
        Job::new(
            JobFields {
                id: Some(id.into()),
                prompt: Some(format!("song {id}")),
                ..JobFields::default()
            },
            2,
        )
    }

    fn record(id: &str, status: Status) -> Record {
        Record {
            status,
            task_id: if status == Status::Submitted {
                format!("t-{id}")
            } else {
                String::new()
            },
            ..Record::pending(&job(id))
        }
    }

    /// Appends raw bytes, as a journal row of the previous release or a
    /// crash's cut-short write.
    fn append(path: &Path, bytes: &[u8]) {
        let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(bytes).unwrap();
    }

    #[test]
    fn the_latest_row_of_each_id_wins_in_order_of_first_appearance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(
            &path,
            &[
                record("b", Status::Sending),
                record("gone", Status::Submitted),
                record("a", Status::Sending),
                record("a", Status::Submitted),
            ],
        )
        .unwrap();
        assert_eq!(read(&path).unwrap().len(), 4);
        let latest = latest(&path).unwrap();
        let ids: Vec<_> = latest.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(ids, ["b", "gone", "a"]);
        assert_eq!(
            (latest[0].status, latest[0].error.as_str()),
            (Status::Unknown, INTERRUPTED)
        );
        assert_eq!(latest[2].task_id, "t-a");
    }

    #[test]
    fn a_torn_last_row_that_names_its_job_makes_it_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(
            &path,
            &[record("a", Status::Pending), record("b", Status::Pending)],
        )
        .unwrap();
        append(&path, b"a,2,,sending,1,,,,\na,2,t-a,submitted,1,,,,\n");
        // Cut short after its id (a crash mid-append, a copy cut off):
        // never a reason to send b again.
        append(&path, b"b,2,,sen");
        assert_eq!(read(&path).unwrap().len(), 5);
        let mut lines = Vec::new();
        each_row(&path, |r, damaged, _| {
            lines.push((r.key.into_string(), damaged));
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(lines.last().unwrap(), &("b".to_owned(), Some(6)));
        let latest: Vec<_> = latest(&path)
            .unwrap()
            .into_iter()
            .map(|r| (r.status, r.error.contains("line 6")))
            .collect();
        assert_eq!(
            latest,
            [(Status::Submitted, false), (Status::Unknown, true)]
        );

        // Cut inside the id: no telling which job it was. The read stops,
        // naming the line, and the message never says to delete the file.
        fs::write(
            &path,
            fs::read_to_string(&path).unwrap().replace("b,2,,sen", "b"),
        )
        .unwrap();
        let text = read(&path).expect_err("refused").to_string();
        assert!(
            text.contains("r.csv:6:") && text.contains("names no job"),
            "{text}"
        );
        assert!(
            !text.contains("move it away") && !text.contains("delete"),
            "{text}"
        );
    }

    #[test]
    fn a_damaged_latest_row_keeps_the_jobs_task_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(&path, &[record("a", Status::Submitted)]).unwrap();
        append(&path, b"a,2,t-a-cut");
        let a = &latest(&path).unwrap()[0];
        assert_eq!((a.status, a.task_id.as_str()), (Status::Unknown, "t-a"));
    }

    #[test]
    fn a_foreign_file_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        fs::write(&path, "name,age\nann,3\nbob,4\n").unwrap();
        let text = read(&path).err().unwrap().to_string();
        assert!(
            text.contains("restore that line") && text.contains("keep the file"),
            "{text}"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "name,age\nann,3\nbob,4\n"
        );
    }
}
