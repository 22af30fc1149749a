//! The catalog held by one collector (`collect` or `receive`): answers
//! merged into the store's clips, downloads recorded, and the catalog
//! report written from the store.
//!
//! An answer (a poll, a callback) or a download changes one job's rows in
//! memory ([`JobRows::apply`], or one row); the one writer ([`flusher`])
//! commits the changed jobs in one transaction at most once per
//! [`FLUSH_EVERY`] (at once when [`URGENT`] jobs wait), so a kill loses at
//! most the last second of answers, which the next run polls again. The
//! catalog report (the CSV) is written whole from the store at most every
//! few seconds while changes come in ([`REPORT_EVERY`], or four times as
//! long as writing it took) and at the end of the run.
//!
//! # One owner
//! A collector holds the lock file batchgen has always taken beside the
//! catalog (`<catalog>.lock`), and an OS lock on one byte of the store
//! file ([`crate::util::fsx::try_lock_byte`]): two collectors of one store
//! are refused whatever names lead to it, while a run (which holds the
//! store's `flock`) may send beside a collector, as `receive` needs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::State;
use super::clips::{self, JobsWithClips, catalog_error};
use super::sql::{bump_catalog, connect, meta};
use crate::api::feed::TaskClips;
use crate::files::catalog::{CatalogError, JobRows, ReportWriter, Row};
use crate::files::results::Lock;
use crate::job::key_hash;
use crate::settings::quality::{Gate, QualitySettings};
use crate::util::fsx;

/// Most frequent commit while clips keep changing.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Jobs waiting for a commit that make it come at once: changed jobs stay
/// in memory until committed, so at thousands of answers a second this,
/// not the second, bounds them.
pub const URGENT: usize = 512;
/// Least time between two catalog reports while a run changes clips.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);
/// The byte of the store file a collector locks (see the module docs).
const COLLECTOR_BYTE: i64 = 1 << 20;

/// What an answer did to a job.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Some row changed.
    pub changed: bool,
    /// The task is finished by the task rule ([`JobRows::finished`]).
    pub finished: bool,
    /// The job's rows of this task after the change.
    pub rows: Vec<Row>,
}

struct Inner {
    /// Reads a job's rows (a connection of its own: a commit in progress
    /// never holds up an answer).
    reader: Connection,
    /// Jobs changed since the last commit: all their current rows.
    pending: HashMap<String, JobRows>,
    /// Jobs being committed now (taken from `pending`), read as current
    /// until their commit is done.
    committing: Arc<HashMap<String, JobRows>>,
    /// Jobs this run changed (hashes of their keys): a job read before
    /// (by the reader that feeds a collect run) is read again.
    touched: HashSet<u64>,
    /// Commits this run made.
    commits: u64,
    /// Clip rows committed this run.
    written: u64,
    /// Most jobs pending at once.
    peak: usize,
}

/// The catalog of one store, open for one collector (see the module docs).
pub struct Catalog {
    store: PathBuf,
    report: PathBuf,
    inner: Mutex<Inner>,
    /// The connection that commits, one commit at a time.
    writer: Mutex<Connection>,
    dirty: Notify,
    urgent: Notify,
    /// `commits` when the last report was written.
    reported: AtomicU64,
    /// Why the writer stopped, once it has: from then on no answer is
    /// taken ([`Catalog::apply`] fails), so a callback is never
    /// acknowledged into a catalog that can no longer keep it.
    broken: std::sync::OnceLock<String>,
    /// Dropped after the connection: closing a descriptor of the store
    /// file must not come before SQLite's own.
    _store_file: File,
    _lock: Lock,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("store", &self.store)
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// Opens the catalog of the results file at `results` for one
    /// collector, its report at `report`: takes the locks (module docs),
    /// builds the store if there is none (as a run would, from the results
    /// file), brings it up to date, imports the catalog CSV at `report`
    /// the first time (an earlier release's catalog), and proves the
    /// report's folder writable, all before any request.
    ///
    /// # Errors
    /// [`CatalogError::Locked`] when another collector holds it (or a run
    /// of an earlier release holds the results file while no store
    /// exists); [`CatalogError::Refused`] for a store from a newer batchgen,
    /// a file that is not a store or a catalog; [`CatalogError::Io`] when
    /// a file cannot be read or written.
    pub fn open(results: &Path, report: &Path) -> Result<Arc<Catalog>, CatalogError> {
        // The report is replaced whole: never over the results file or a
        // file of the store (the program says so earlier, as a usage error).
        let [store, log, index] = super::files_for(results);
        for own in [results, &store, &log, &index] {
            if fsx::same_file(report, own) {
                return Err(CatalogError::Refused(format!(
                    "--catalog {} is {}: the catalog report is a file of its own",
                    report.display(),
                    own.display()
                )));
            }
        }
        // Nor over a file that is not a catalog (a manifest named by
        // mistake), whichever name reaches it.
        crate::files::catalog::check_ours(report)?;
        let lock = Lock::acquire(report)?;
        if !State::exists(results) {
            drop(State::open(results)?);
        }
        let io = |e| CatalogError::Io {
            path: store.clone(),
            source: e,
        };
        let store_file =
            fsx::open_in_place(&store, OpenOptions::new().read(true).write(true)).map_err(io)?;
        if !fsx::try_lock_byte(&store_file, COLLECTOR_BYTE).map_err(io)? {
            return Err(CatalogError::Locked {
                path: report.to_owned(),
                holder: None,
            });
        }
        super::check_sides(results)?;
        let mut conn = connect(&store, false)?;
        {
            let err = |e| catalog_error(&store, e);
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(err)?;
            super::build(&tx, results, &store)?;
            clips::import_once(&tx, report, &store, results)?;
            tx.commit().map_err(err)?;
        }
        let reader = connect(&store, true)?;
        let catalog = Catalog {
            store,
            report: report.to_owned(),
            inner: Mutex::new(Inner {
                reader,
                pending: HashMap::new(),
                committing: Arc::default(),
                touched: HashSet::new(),
                commits: 0,
                written: 0,
                peak: 0,
            }),
            writer: Mutex::new(conn),
            dirty: Notify::new(),
            urgent: Notify::new(),
            reported: AtomicU64::new(0),
            broken: std::sync::OnceLock::new(),
            _store_file: store_file,
            _lock: lock,
        };
        // The report is there from the start (a reader may look at it at
        // once), and a folder that cannot take it is found before any
        // request; else its folder must take the file that replaces it.
        if report.exists() {
            let dir = fsx::parent_dir(&fsx::resolve(report).map_err(|e| CatalogError::Io {
                path: report.to_owned(),
                source: e,
            })?);
            tempfile::tempfile_in(&dir).map_err(|e| CatalogError::Io {
                path: report.to_owned(),
                source: e,
            })?;
        } else {
            catalog.write_report()?;
        }
        Ok(Arc::new(catalog))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The catalog report's path (the page and playlist are named after it).
    pub fn path(&self) -> &Path {
        &self.report
    }

    /// The store file's path.
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// The current rows of job `key`: this run's changes included.
    ///
    /// # Errors
    /// The store unreadable.
    pub fn rows_of(&self, key: &str) -> Result<Vec<Row>, CatalogError> {
        let inner = self.lock();
        Self::current(&inner, key, &self.store).map(|j| j.rows)
    }

    /// `rows`, read from the store before this run could change them,
    /// unless this run changed job `key` since (then its current rows).
    ///
    /// # Errors
    /// The store unreadable.
    pub fn unless_changed(&self, key: &str, rows: Vec<Row>) -> Result<Vec<Row>, CatalogError> {
        let inner = self.lock();
        if inner.touched.contains(&key_hash(key.as_bytes())) {
            Self::current(&inner, key, &self.store).map(|j| j.rows)
        } else {
            Ok(rows)
        }
    }

    fn current(inner: &Inner, key: &str, store: &Path) -> Result<JobRows, CatalogError> {
        match inner.pending.get(key).or_else(|| inner.committing.get(key)) {
            Some(job) => Ok(job.clone()),
            None => clips::rows_of(&inner.reader, key)
                .map(JobRows::new)
                .map_err(|e| catalog_error(store, e)),
        }
    }

    /// Merges an answer about job `key`'s task ([`JobRows::apply`]) and
    /// schedules the job for the next commit if it changed.
    ///
    /// # Errors
    /// The job's rows could not be read, or the writer has stopped on an
    /// error (nothing taken now would be kept).
    pub fn apply(
        &self,
        key: &str,
        task_id: &str,
        answer: &TaskClips,
    ) -> Result<Applied, CatalogError> {
        if let Some(why) = self.broken.get() {
            return Err(CatalogError::Writer(why.clone()));
        }
        let mut inner = self.lock();
        let mut job = Self::current(&inner, key, &self.store)?;
        let changed = job.apply(key, task_id, answer);
        let applied = Applied {
            changed: !changed.is_empty(),
            finished: job.finished(task_id),
            rows: job.of_task(task_id).cloned().collect(),
        };
        if applied.changed {
            self.changed(&mut inner, key, job);
        }
        Ok(applied)
    }

    /// Changes job `key`'s rows through `change`, if its clip
    /// `clip_index` is still of task `task_id` (a download recording a
    /// take's file and measurement, then judging the task's takes);
    /// whether it was.
    ///
    /// # Errors
    /// The job's rows could not be read.
    pub fn update_job(
        &self,
        key: &str,
        clip_index: u32,
        task_id: &str,
        change: impl FnOnce(&mut JobRows),
    ) -> Result<bool, CatalogError> {
        let mut inner = self.lock();
        let mut job = Self::current(&inner, key, &self.store)?;
        if job
            .rows
            .iter()
            .all(|r| r.clip_index != clip_index || r.task_id != task_id)
        {
            return Ok(false);
        }
        let before = job.clone();
        change(&mut job);
        if job != before {
            self.changed(&mut inner, key, job);
        }
        Ok(true)
    }

    /// The manifest's `[quality]` table as the last run kept it
    /// ([`State::keep_quality`]): what a `collect` judges takes by, under
    /// its own flags.
    ///
    /// # Errors
    /// The store unreadable, or a rule it holds that this batchgen does
    /// not take.
    pub fn quality(&self) -> Result<QualitySettings, CatalogError> {
        let inner = self.lock();
        let kept = meta(&inner.reader, "quality")
            .map_err(|e| catalog_error(&self.store, e))?
            .unwrap_or_default();
        super::quality_from(&kept).map_err(|why| {
            CatalogError::Refused(format!(
                "{}: the quality rules a run kept there do not read ({why}); batchgen changed nothing",
                self.store.display()
            ))
        })
    }

    /// The quality rules of the jobs that set their own, as the last run's
    /// manifest had them ([`State::keep_job_quality`]), by key.
    ///
    /// # Errors
    /// The store unreadable, or a rule in it this batchgen does not take.
    pub fn job_quality(&self) -> Result<BTreeMap<String, QualitySettings>, CatalogError> {
        let inner = self.lock();
        let kept: Vec<(String, String)> = inner
            .reader
            .prepare("SELECT key, rules FROM job_quality")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(|e| catalog_error(&self.store, e))?;
        kept.into_iter()
            .map(|(key, rules)| {
                let settings = super::quality_from(&rules).map_err(|why| {
                    CatalogError::Refused(format!(
                        "{}: the quality rules a run kept there for job {key:?} do not read ({why}); batchgen changed nothing",
                        self.store.display()
                    ))
                })?;
                Ok((key, settings))
            })
            .collect()
    }

    /// `gate` ([`JobRows::judge`]) when they are not the rules the takes
    /// were last judged by, in one transaction; how many jobs changed. A
    /// collect that measures calls it before its first download, so the
    /// catalog's verdicts are always those of the rules in force.
    ///
    /// # Errors
    /// Any read or write error; the store is then left as it was.
    pub fn judge_all(&self, gate: &Gate) -> Result<u64, CatalogError> {
        let err = |e| catalog_error(&self.store, e);
        let by = format!("method {}; {}", crate::audio::VERSION, gate.fingerprint());
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if meta(&writer, "judged_by").map_err(err)?.as_deref() == Some(by.as_str()) {
            return Ok(0);
        }
        let tx = writer
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let keys: Vec<String> = tx
            .prepare("SELECT DISTINCT j.key FROM takes t JOIN jobs j ON j.id = t.job_id")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(err)?;
        let mut changed = 0;
        for key in keys {
            let mut job = JobRows::new(clips::rows_of(&tx, &key).map_err(err)?);
            let mut tasks: Vec<String> = job.rows.iter().map(|r| r.task_id.clone()).collect();
            tasks.dedup();
            let mut any = false;
            for task in &tasks {
                any |= job.judge(task, gate.rules(&key));
            }
            if any {
                clips::write_job(&tx, &key, &job.rows).map_err(err)?;
                changed += 1;
            }
        }
        if changed > 0 {
            bump_catalog(&tx).map_err(err)?;
        }
        tx.execute("UPDATE meta SET value = ?1 WHERE name = 'judged_by'", [by])
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(changed)
    }

    /// Keeps `job` for the next commit and tells the writer: soon, or at
    /// once when [`URGENT`] jobs wait.
    fn changed(&self, inner: &mut Inner, key: &str, job: JobRows) {
        inner.touched.insert(key_hash(key.as_bytes()));
        inner.pending.insert(key.to_owned(), job);
        inner.peak = inner.peak.max(inner.pending.len());
        self.dirty.notify_one();
        if inner.pending.len() >= URGENT {
            self.urgent.notify_one();
        }
    }

    /// Jobs in the store.
    ///
    /// # Errors
    /// The store unreadable.
    pub fn jobs(&self) -> Result<u64, CatalogError> {
        self.lock()
            .reader
            .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
            .map_err(|e| catalog_error(&self.store, e))
    }

    /// What a collect run reports: its tasks and their clips as the store
    /// has them now (commit first), with the complete clips that have no
    /// file when `files` (a run that downloads), and the jobs sent before
    /// `cutoff` with songs still to fetch.
    ///
    /// # Errors
    /// The store unreadable.
    pub fn task_counts(
        &self,
        files: bool,
        cutoff: &str,
    ) -> Result<super::TaskCounts, CatalogError> {
        clips::task_counts(&self.lock().reader, files, cutoff)
            .map_err(|e| catalog_error(&self.store, e))
    }

    /// Clip rows this run committed so far.
    pub fn rows_written(&self) -> u64 {
        self.lock().written
    }

    /// Most jobs waiting for a commit at once so far (the tests watch it
    /// stay bounded).
    pub fn peak_pending(&self) -> usize {
        self.lock().peak
    }

    /// Commits the changed jobs in one transaction, durable when this
    /// returns. The run's first commit marks the report out of date in the
    /// store, so a run killed at any moment leaves a store whose report
    /// the next run writes again.
    ///
    /// # Errors
    /// Any write error (a full disk): the jobs stay pending, the store as
    /// it was.
    pub fn flush(&self) -> Result<(), CatalogError> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let (batch, first) = {
            let mut inner = self.lock();
            if inner.pending.is_empty() {
                return Ok(());
            }
            let batch = Arc::new(std::mem::take(&mut inner.pending));
            inner.committing = Arc::clone(&batch);
            (batch, inner.commits == 0)
        };
        // Without the lock: answers go on meanwhile (into `pending`).
        // IMMEDIATE: the write lock is taken (waiting out another writer,
        // a run recording beside a receiver) before the first read; a
        // transaction that read first and then wrote would fail at once
        // (SQLITE_BUSY_SNAPSHOT) whenever the other one committed between.
        let committed = (|| {
            let tx = writer.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut rows = 0u64;
            for (key, job) in batch.iter() {
                if clips::write_job(&tx, key, &job.rows)? {
                    rows += job.rows.len() as u64;
                }
            }
            if first {
                bump_catalog(&tx)?;
            }
            tx.commit()?;
            Ok(rows)
        })();
        let mut inner = self.lock();
        inner.committing = Arc::default();
        match committed {
            Ok(rows) => {
                inner.commits += 1;
                inner.written += rows;
                Ok(())
            }
            Err(e) => {
                // Nothing of it counts as written: all of it waits again,
                // under what changed since.
                drop(writer);
                let batch = Arc::try_unwrap(batch).unwrap_or_else(|b| (*b).clone());
                let newer = std::mem::replace(&mut inner.pending, batch);
                inner.pending.extend(newer);
                Err(catalog_error(&self.store, e))
            }
        }
    }

    /// While a run changes clips: writes the report if it committed
    /// anything since the last one.
    ///
    /// # Errors
    /// As [`Catalog::write_report`].
    pub fn report_if_changed(&self) -> Result<(), CatalogError> {
        let commits = self.lock().commits;
        if commits == self.reported.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.write_report_from_snapshot()?;
        self.reported.store(commits, Ordering::Relaxed);
        Ok(())
    }

    /// The end of a run: commits what is pending, then writes the report
    /// if the store's clips changed since the last one (or it is missing).
    ///
    /// # Errors
    /// When the store cannot be read or the report written; the old
    /// report is then left as it was.
    pub fn write_report(&self) -> Result<(), CatalogError> {
        self.flush()?;
        let err = |e| catalog_error(&self.store, e);
        let generation = {
            let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let generation = meta(&writer, "catalog_generation").map_err(err)?;
            let reported = meta(&writer, "catalog_reported").map_err(err)?;
            if generation == reported && self.report.exists() {
                return Ok(());
            }
            generation.unwrap_or_default()
        };
        self.write_report_from_snapshot()?;
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .execute(
                "UPDATE meta SET value = ?1 WHERE name = 'catalog_reported'",
                [generation],
            )
            .map_err(err)?;
        Ok(())
    }

    /// Writes the report from one consistent read of the store, on a
    /// connection of its own (the writer goes on committing meanwhile).
    fn write_report_from_snapshot(&self) -> Result<(), CatalogError> {
        let err = |e| catalog_error(&self.store, e);
        let mut conn = connect(&self.store, true)?;
        let snapshot = conn.transaction().map_err(err)?;
        let mut out = ReportWriter::new(&self.report)?;
        for job in JobsWithClips::new(&snapshot, &self.store, super::Which::Every) {
            for row in &job?.rows {
                out.write(row)?;
            }
        }
        out.finish()
    }

    /// Hands `visit` every job with its rows, in report order, from one
    /// consistent read of the store (what this run committed).
    ///
    /// # Errors
    /// The store unreadable, or what `visit` returns.
    pub fn each_job<E: From<CatalogError>>(
        &self,
        visit: impl FnMut(super::JobClips) -> Result<(), E>,
    ) -> Result<(), E> {
        super::each_job_of(&self.store, visit)
    }

    /// Every audio file the store records, of any task.
    ///
    /// # Errors
    /// The store unreadable.
    pub fn audio_paths(&self, visit: impl FnMut(&str)) -> Result<(), CatalogError> {
        let conn = connect(&self.store, true)?;
        clips::audio_paths(&conn, visit).map_err(|e| catalog_error(&self.store, e))
    }
}

/// The only writer of the store's clips and of the catalog report: commits
/// after changes, at most once per [`FLUSH_EVERY`] (at once when
/// [`URGENT`] jobs wait); writes the report, beside the commits, when
/// changes were committed and [`REPORT_EVERY`] (or four times its last
/// writing time) has passed; and when `stop` is cancelled commits a last
/// time and writes the report. Ends with the first write error, and then
/// cancels `failed`: the run stops at once (exit 73) rather than take
/// answers it cannot keep.
pub fn flusher(
    catalog: Arc<Catalog>,
    stop: CancellationToken,
    failed: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), CatalogError>> {
    tokio::spawn(async move {
        let written = write_until(Arc::clone(&catalog), stop).await;
        if let Err(e) = &written {
            let _ = catalog.broken.set(e.to_string());
            failed.cancel();
        }
        written
    })
}

/// The flusher's loop (see [`flusher`]).
async fn write_until(catalog: Arc<Catalog>, stop: CancellationToken) -> Result<(), CatalogError> {
    {
        let mut next_report = Instant::now() + REPORT_EVERY;
        // A report being written, beside the commits (at a million jobs it
        // takes seconds, and answers keep coming meanwhile).
        let mut reporting: Option<tokio::task::JoinHandle<Result<Duration, CatalogError>>> = None;
        loop {
            let stopping = tokio::select! {
                biased;
                () = stop.cancelled() => true,
                () = catalog.dirty.notified() => false,
                () = tokio::time::sleep_until(next_report.into()) => false,
            };
            if let Some(report) = reporting.take_if(|r| r.is_finished() || stopping) {
                let took = report
                    .await
                    .map_err(|e| CatalogError::Writer(e.to_string()))??;
                next_report = Instant::now() + REPORT_EVERY.max(took * 4);
            }
            let c = Arc::clone(&catalog);
            tokio::task::spawn_blocking(move || {
                if stopping {
                    c.write_report()
                } else {
                    c.flush()
                }
            })
            .await
            .map_err(|e| CatalogError::Writer(e.to_string()))??;
            if stopping {
                return Ok(());
            }
            if reporting.is_none() && Instant::now() >= next_report {
                let c = Arc::clone(&catalog);
                reporting = Some(tokio::task::spawn_blocking(move || {
                    let started = Instant::now();
                    c.report_if_changed()?;
                    Ok(started.elapsed())
                }));
                next_report = Instant::now() + REPORT_EVERY;
            }
            tokio::select! {
                () = tokio::time::sleep(FLUSH_EVERY) => {}
                () = catalog.urgent.notified() => {}
                () = stop.cancelled() => {}
            }
        }
    }
}
