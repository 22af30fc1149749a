//! The results file: the one place a run's outcome is recorded.
//!
//! # Why the results CSV is also the journal
//! A crash must never lose a job the API accepted (it is recorded with its
//! task ID or, if the answer came in the last milliseconds, as `unknown`),
//! and a rerun must never submit a job twice. The results file therefore
//! doubles as an append-only journal:
//!
//! 1. At start the previous file (if any) is indexed ([`Store`]), merged
//!    with the manifest, and rewritten *compacted* ([`Compactor`]): one row
//!    per job, manifest order, written to a temporary file, fsynced and
//!    renamed over the old one (never half written).
//! 2. During the run, a single recorder task appends a row each time a job's
//!    state changes: `sending` *before* each request goes out (and the worker
//!    waits until that row is on disk), then the final state after. Appends
//!    are grouped and fsynced once per batch; the final state rides with
//!    the batch that carries the worker's next `sending` row, so it is on
//!    disk before that worker sends again.
//! 3. At the end the file is compacted again.
//!
//! Readers take the *last* row for each `id`. A row left `sending` by a crash
//! or `kill -9` becomes `unknown` on the next run (the request may have been
//! accepted), so it is not resent unless the user asks. One file, readable
//! with any CSV tool at any instant, no second store to keep in step.
//!
//! Nothing here holds the whole file: the store keeps 16 bytes per row (a
//! hash of the `id` and where its row starts) and reads a row when asked,
//! so a million-row results file costs a few dozen megabytes, not its size.
//!
//! A lock on `<results>.lock` (an OS advisory lock, released by the kernel
//! when the holder dies) keeps two runs off the same file. The lock is named
//! after the file's *real* path ([`crate::util::fsx::resolve`]), so a run through
//! a symlink and a run through the real path take the same lock; a results
//! file the user made a symlink stays one (the rewrite lands in the
//! target's folder). Every file here is written through [`crate::util::fsx`]: no
//! planted symlink is written through, and a rewrite keeps the file's
//! permission bits.
//!
//! # A results file damaged outside a run
//! A results file is edited by hand, cut short by a full disk, concatenated,
//! appended to by another program. Its rows are what keeps a job from being
//! billed twice, so damage is never a reason to send a job again. The rule:
//! **a row whose `id` can be read settles that job as `unknown`** (not
//! resent without `--retry-unknown`, the damage named in its `error`
//! column), and **a line that names no job stops the run** (exit 78, file
//! and line named, nothing sent), because batchgen cannot tell which job it
//! held. The `id` can be read when the row has a comma after it (so it was
//! not cut short) and it is non-empty UTF-8. Case by case:
//!
//! | damage | what batchgen does |
//! |---|---|
//! | last row cut short mid-field or mid-quote, with its `id` and a comma | that job `unknown`; a task ID is kept only if a comma shows it whole, else the job's earlier one is kept |
//! | a row cut short inside its `id` (no comma yet) | stop, exit 78: the `id` itself may be cut |
//! | a damaged row spanning several lines (an unclosed quote swallows the rows after it) | stop, exit 78: the swallowed rows' jobs cannot be told apart |
//! | a row with a bad value (a status `Submitted`, a line `abc`), too few or too many columns | that job `unknown`, as above |
//! | garbage lines, lines appended by another program | those naming a manifest job: `unknown`; any other: stop, exit 78 naming the line |
//! | a well-formed row for an `id` not in the manifest | kept as it is (it holds a task ID) |
//! | a damaged row for an `id` not in the manifest | stop, exit 78 naming the line |
//! | the header repeated in the middle (two files concatenated) | the repeat is skipped; the latest row of each `id` wins as usual |
//! | a line of only spaces or NUL bytes (a crash's zero-filled tail) | skipped: it names nothing, and no acknowledged row is ever NUL (fsynced) |
//! | NUL bytes inside a row | the row is damaged: as above |
//! | CRLF line ends, a UTF-8 BOM (a spreadsheet saved it) | read as usual; the rewrite uses LF and no BOM |
//! | an empty file (0 bytes) | no rows: a new results file |
//! | a file of another kind (other columns, binary) | refused, exit 78, nothing sent, nothing overwritten; the message never suggests deleting it |
//! | a folder, FIFO, device, a dangling symlink | refused (exit 73): never opened for writing, never blocked on |
//!
//! A row a crash left half-appended used to be ignored (it was never
//! acknowledged, so its request was never sent); it now makes its job
//! `unknown` too, because a cut-short row looks the same whoever cut it.

mod bounded;
pub mod cell;
mod damage;
mod journal;
mod latest;
mod lock;
pub mod ranks;
mod reader;
mod row;
mod store;
mod write;

use std::io;
use std::path::{Path, PathBuf};

pub(crate) use bounded::Bounded;
pub use journal::{GroupCommit, Journal, Recorder, Sink, spawn};
pub use latest::LatestRows;
pub use lock::Lock;
pub use ranks::Ranks;
use reader::LatestPerId;
pub use row::{INTERRUPTED, Record, RowSummary, Status};
pub use store::Store;
pub use write::{Compactor, write_atomic};

/// What goes wrong with a file this layer keeps. The results file and the
/// catalog share the mechanics (lock, bounded reads, atomic rewrites), so
/// they share this type; [`crate::files::catalog::CatalogError`] renames
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
/// that read a run's journal row by row (`tests/unattended.rs`).
///
/// # Errors
/// When the file cannot be read, is not a batchgen results file, or has a
/// line that names no job.
pub fn read(path: &Path) -> Result<Vec<Record>, ResultsError> {
    let mut records = Vec::new();
    reader::each_record(path, |record| records.push(record))?;
    Ok(records)
}

/// The latest row of each `id`, in order of first appearance, as a rerun
/// sees them: a row left `sending` is `unknown`.
///
/// # Errors
/// As [`read()`].
pub fn latest(path: &Path) -> Result<Vec<Record>, ResultsError> {
    let mut latest = LatestPerId::default();
    reader::each_record(path, |record| {
        latest.insert(record.id.clone(), record.settled());
    })?;
    Ok(latest.into_vec())
}

/// Every row of the results file at `path`, in file order, with the line
/// of each damaged one: what the state store imports
/// ([`crate::files::state`]). Stops when `visit` breaks.
///
/// # Errors
/// As [`read()`].
pub fn each_row(
    path: &Path,
    visit: impl FnMut(Record, Option<u64>) -> std::ops::ControlFlow<()>,
) -> Result<(), ResultsError> {
    reader::each_row(path, visit)
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

    #[test]
    fn the_store_finds_the_last_row_and_keeps_orphans() {
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
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.len(), 4);
        assert_eq!(store.get("a").unwrap().unwrap().task_id, "t-a");
        let b = store.get("b").unwrap().unwrap();
        assert_eq!(b.status, Status::Sending);
        let b = b.settled();
        assert_eq!((b.status, b.error.as_str()), (Status::Unknown, INTERRUPTED));
        assert!(store.get("c").unwrap().is_none());
        let orphans: Vec<_> = store.orphans().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(orphans, ["gone"]);
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
        let mut journal = Journal::open(&path).unwrap();
        journal.append(&[&record("a", Status::Sending)]).unwrap();
        journal.append(&[&record("a", Status::Submitted)]).unwrap();
        drop(journal);
        // Cut short after its id (a crash mid-append, a copy cut off):
        // never a reason to send b again.
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"b,2,,sen").unwrap();
        drop(f);
        assert_eq!(read(&path).unwrap().len(), 5);
        let mut store = Store::open(&path).unwrap();
        assert_eq!(store.get("a").unwrap().unwrap().status, Status::Submitted);
        let b = store.get("b").unwrap().unwrap();
        assert_eq!(b.status, Status::Unknown);
        assert!(b.error.contains("line 6"), "{}", b.error);
        let latest: Vec<_> = latest(&path)
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(latest, [Status::Submitted, Status::Unknown]);

        // Cut inside the id: no telling which job it was. The run stops,
        // naming the line, and the message never says to delete the file.
        std::fs::write(
            &path,
            std::fs::read_to_string(&path)
                .unwrap()
                .replace("b,2,,sen", "b"),
        )
        .unwrap();
        for err in [Store::open(&path).err(), read(&path).err()] {
            let text = err.expect("refused").to_string();
            assert!(
                text.contains("r.csv:6:") && text.contains("names no job"),
                "{text}"
            );
            assert!(
                !text.contains("move it away") && !text.contains("delete"),
                "{text}"
            );
        }
    }

    #[test]
    fn a_damaged_latest_row_keeps_the_jobs_task_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(&path, &[record("a", Status::Submitted)]).unwrap();
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"a,2,t-a-cut").unwrap();
        drop(f);
        let a = Store::open(&path).unwrap().get("a").unwrap().unwrap();
        assert_eq!((a.status, a.task_id.as_str()), (Status::Unknown, "t-a"));
        let a = &latest(&path).unwrap()[0];
        assert_eq!((a.status, a.task_id.as_str()), (Status::Unknown, "t-a"));
    }

    #[test]
    fn an_earlier_task_id_of_a_job_is_carried_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(&path, &[record("a", Status::Submitted)]).unwrap();
        // Another program appends a row for the same job, another task.
        let mut journal = Journal::open(&path).unwrap();
        let other = Record {
            task_id: "t-other".into(),
            ..record("a", Status::Submitted)
        };
        journal.append(&[&other]).unwrap();
        drop(journal);
        let a = Store::open(&path).unwrap().get("a").unwrap().unwrap();
        assert_eq!(
            (a.status, a.task_id.as_str()),
            (Status::Submitted, "t-other")
        );
        assert!(a.error.starts_with("also task t-a "), "{}", a.error);
        // Written back and read again, it is said once.
        write_atomic(&path, std::slice::from_ref(&a)).unwrap();
        let mut journal = Journal::open(&path).unwrap();
        journal.append(&[&a]).unwrap();
        drop(journal);
        let again = Store::open(&path).unwrap().get("a").unwrap().unwrap();
        assert_eq!(again.error, a.error);
        // The same task ID in every row is no conflict.
        write_atomic(&path, &[record("b", Status::Submitted)]).unwrap();
        let mut journal = Journal::open(&path).unwrap();
        journal.append(&[&record("b", Status::Submitted)]).unwrap();
        drop(journal);
        let b = Store::open(&path).unwrap().get("b").unwrap().unwrap();
        assert!(b.error.is_empty(), "{}", b.error);
    }

    #[test]
    fn after_a_run_journal_rows_update_their_jobs_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_atomic(
            &path,
            &[record("a", Status::Pending), record("b", Status::Pending)],
        )
        .unwrap();
        let start = std::fs::metadata(&path).unwrap().len();
        let mut journal = Journal::open(&path).unwrap();
        for r in [
            record("b", Status::Sending),
            record("b", Status::Submitted),
            record("a", Status::Sending),
        ] {
            journal.append(&[&r]).unwrap();
        }
        drop(journal);
        let mut store = Store::open_after_run(&path, Some(start)).unwrap();
        assert_eq!(store.len(), 2, "one entry per job, not per row");
        assert_eq!(store.get("b").unwrap().unwrap().task_id, "t-b");
        assert_eq!(store.get("a").unwrap().unwrap().status, Status::Sending);
        assert_eq!(
            Store::open(&path).unwrap().len(),
            5,
            "without the hint, every row"
        );
    }

    #[test]
    fn a_scan_sees_what_get_reads_and_refuses_the_unusual() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let rows = [
            record("a", Status::Submitted),
            Record {
                error: "refused, \"badly\"\non two lines".into(),
                http_status: Some(400),
                ..record("b", Status::Failed)
            },
        ];
        write_atomic(&path, &rows).unwrap();
        let mut seen = Vec::new();
        assert!(Store::scan(&path, |row| {
            seen.push((
                String::from_utf8(row.id.to_vec()).unwrap(),
                row.line,
                row.status,
                String::from_utf8(row.fingerprint.to_vec()).unwrap(),
            ));
            true
        }));
        let mut store = Store::open(&path).unwrap();
        for (id, line, status, fingerprint) in seen {
            let r = store.get(&id).unwrap().unwrap();
            assert_eq!(
                (line, status, fingerprint),
                (r.line, r.status, r.fingerprint)
            );
        }
        assert!(!Store::scan(&path, |_| false), "the visitor stops it");
        assert!(!Store::scan(&dir.path().join("none.csv"), |_| true));
        let text = std::fs::read_to_string(&path).unwrap();
        for unusual in [
            text.replace(",submitted,", ",Submitted,"),
            text.replace("a,2,", "a,+2,"),
            text.replace(",400,", ",4000000,"),
            text + "c,2,,sen",
            "name,age\nann,3\n".into(),
        ] {
            std::fs::write(&path, unusual).unwrap();
            assert!(!Store::scan(&path, |_| true));
        }
    }

    #[test]
    fn a_foreign_file_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "name,age\nann,3\nbob,4\n").unwrap();
        assert!(read(&path).is_err());
        let text = Store::open(&path).err().unwrap().to_string();
        assert!(
            text.contains("restore that line") && text.contains("keep the file"),
            "{text}"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "name,age\nann,3\nbob,4\n"
        );
    }
}
