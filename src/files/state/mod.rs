//! The state file: where a run keeps what it knows about every job, in one
//! SQLite database beside the results file (`jobs.results.csv` →
//! `jobs.results.db`), and the only module that speaks SQL.
//!
//! # Why a database
//! Every guarantee against a second bill rests on this file: a job is
//! recorded `sending` (a committed transaction, fsynced: `synchronous =
//! FULL` in WAL mode) before its request leaves, a job found `sending` at
//! the next start is `unknown` and not sent again without
//! `--retry-unknown`, and every task ID a job was ever given stays in the
//! `tasks` table (a resend adds one, never replaces one). SQLite keeps
//! those promises through a kill, a crash or a full disk, readers see a
//! consistent snapshot while a run writes, and the file carries its schema
//! version ([`schema`]).
//!
//! # The results CSV is a report
//! The results file the user asked for is written from this store (one row
//! per job, manifest order, each row's task ID), through a temporary file
//! and a rename: after the merge that starts a run, every few seconds while
//! it sends ([`Reporter`]), and at its end. A report is read back only to
//! build the store when there is none: on the first run after an upgrade
//! (an earlier release's results files, journal rows and damage
//! included: the `import` module)
//! or when the store was deleted. Hand edits of the report are not state:
//! the next run writes it again from the store.
//!
//! # One owner
//! A run holds, for as long as it lives: the lock file batchgen has always
//! taken (`<results>.lock`, with its pid), an OS lock on the store file
//! itself (the inode, so hard links, bind mounts and `..` paths are one
//! lock), and an OS lock on the results file's inode as it found it and as
//! it last wrote it (so a second run through a hard link of the results
//! file is refused too, though it would name another store). A second run
//! gets [`ResultsError::Locked`]. Readers (`status`, `collect`) take no
//! lock: WAL lets them read while a run writes.
//!
//! The store's lock is an `flock` on a descriptor of the database file that
//! outlives every connection of this process: closing a descriptor of a
//! file drops the POSIX locks SQLite holds on it, so the descriptor is
//! closed last ([`State`]'s field order).

mod catalog;
mod clips;
mod import;
mod merge;
mod regenerate;
mod report;
mod runs;
pub mod schema;
mod snapshot;
mod sql;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior, params};

use crate::files::catalog::CatalogError;
use crate::files::results::{Lock, Record, ResultsError, Status};
use crate::settings::quality::{QualitySettings, Written};
use crate::util::fsx;

pub use catalog::{Applied, Catalog, FLUSH_EVERY, REPORT_EVERY, URGENT, flusher};
pub use clips::{AccountTasks, JobBrief, JobClips, TakeCounts, TaskCounts, Unfetched, Which};
pub use merge::Merge;
pub use report::Reporter;
pub use runs::{RunSpend, Spending};
pub use snapshot::Snapshot;
use sql::{
    INSERT_TASK, RECORD_JOB, UPSERT_JOB, bump, connect, io_error, job_params, meta, newer,
    sql_error, status, to_io, try_lock,
};

/// Quality rules as the store keeps them: a JSON object of each rule the
/// settings set, written as its `[quality]` key takes it (`""`: none).
fn quality_json(quality: &QualitySettings) -> String {
    let written: serde_json::Map<String, serde_json::Value> = quality
        .written()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
        .collect();
    if written.is_empty() {
        String::new()
    } else {
        serde_json::Value::Object(written).to_string()
    }
}

/// The quality rules [`quality_json`] wrote (`""`: none).
fn quality_from(kept: &str) -> Result<QualitySettings, String> {
    let mut settings = QualitySettings::default();
    if kept.is_empty() {
        return Ok(settings);
    }
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(kept).map_err(|e| e.to_string())?;
    for (key, value) in &map {
        settings
            .set(key, Written::Text(value))
            .map_err(|why| format!("{key}: {why}"))?;
    }
    Ok(settings)
}

/// Where the store of the results file at `results` lives: beside the file
/// it really is (a symlink followed), named after it, `.csv` replaced by
/// `.db` (or `.db` added to a name without `.csv`).
pub fn path_for(results: &Path) -> PathBuf {
    let real = fsx::resolve(results).unwrap_or_else(|_| results.to_owned());
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match name.len().checked_sub(4) {
        Some(cut) if name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(".csv") => {
            &name[..cut]
        }
        _ => name.as_str(),
    };
    real.with_file_name(format!("{stem}.db"))
}

/// The files of the store of `results`: the database, then its log and
/// its index (`-wal`, `-shm`), which SQLite keeps beside it while a run
/// holds it. What a backup copies, what a check against overwriting names.
pub fn files_for(results: &Path) -> [PathBuf; 3] {
    let store = path_for(results);
    let beside = |suffix: &str| {
        let mut name = store.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (wal, shm) = (beside("-wal"), beside("-shm"));
    [store, wal, shm]
}

/// Where a task came from: recorded with each task ID, so a later reader
/// knows which host and which account made it (a feed is per account:
/// another account's key cannot poll the task).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub provider: String,
    /// Scheme, host, port and path only: never a user or a query, which
    /// could hold a secret.
    pub base_url: String,
    /// The account's name: its label, or its key's fingerprint
    /// ([`crate::util::redact::Secret::fingerprint`]); never the key.
    /// Empty on a host that takes no key.
    pub account: String,
}

impl Origin {
    pub fn new(provider: &str, base_url: &url::Url, account: &str) -> Origin {
        let mut url = base_url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        Origin {
            provider: provider.to_owned(),
            base_url: url.to_string(),
            account: account.to_owned(),
        }
    }
}

/// The OS locks on the results file's inodes: the one found at the start,
/// and the one last written (a report replaces the file, so the inode a
/// second run would find changes).
#[derive(Debug, Default)]
struct ReportLocks {
    _found: Option<File>,
    written: Option<File>,
}

/// The results file's store, open for one run (or read-only for a plan).
pub struct State {
    /// Dropped first: see the module docs.
    conn: Connection,
    store: PathBuf,
    results: PathBuf,
    origin: Origin,
    /// Commits this process made since it opened the store: what tells the
    /// reporter a report is due while a run records.
    changes: Arc<AtomicU64>,
    /// `None` when read-only (a dry run).
    held: Option<Held>,
}

/// What a writing [`State`] holds, released when it drops (after `conn`).
struct Held {
    reports: Arc<Mutex<ReportLocks>>,
    _store: File,
    _lock: Lock,
}

impl State {
    /// Opens the store of `results` for a run: locks it (see the module
    /// docs), brings its schema up to date, builds it from the results
    /// file when there is no store yet, and settles jobs a killed run left
    /// `sending` as `unknown`.
    ///
    /// # Errors
    /// [`ResultsError::Locked`] when another run holds it;
    /// [`ResultsError::Refused`] for a store written by a newer batchgen,
    /// a file that is not a store, or a results file that cannot be
    /// imported; [`ResultsError::Io`] when it cannot be written.
    pub fn open(results: &Path) -> Result<State, ResultsError> {
        let lock = Lock::acquire(results)?;
        // The results file's inode first: a run through another name of it
        // is refused before it makes a store of its own.
        let found = match crate::files::results::open_regular(results)? {
            Some(file) => {
                try_lock(&file, results)?;
                Some(file)
            }
            None => None,
        };
        let store = path_for(results);
        let store_file = fsx::open_in_place(
            &store,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )
        .map_err(|e| io_error(&store, e))?;
        try_lock(&store_file, results)?;
        check_sides(results)?;
        let conn = connect(&store, false)?;
        let mut state = State {
            conn,
            store,
            results: results.to_owned(),
            origin: Origin::default(),
            changes: Arc::default(),
            held: Some(Held {
                reports: Arc::new(Mutex::new(ReportLocks {
                    _found: found,
                    written: None,
                })),
                _store: store_file,
                _lock: lock,
            }),
        };
        state.upgrade()?;
        state.settle_interrupted()?;
        Ok(state)
    }

    /// Opens the store of `results` to plan without writing (a dry run):
    /// read-only when it exists, else built in memory from the results
    /// file, as a run would build it. Takes no lock.
    ///
    /// # Errors
    /// As [`State::open`], but never `Locked`.
    pub fn open_read_only(results: &Path) -> Result<State, ResultsError> {
        let (conn, store) = open_for_reading(results, false)?;
        Ok(State {
            conn,
            store,
            results: results.to_owned(),
            origin: Origin::default(),
            changes: Arc::default(),
            held: None,
        })
    }

    /// Whether a store was built for `results` (a file a failed first
    /// import left holds no schema, and is not one).
    pub fn exists(results: &Path) -> bool {
        let store = path_for(results);
        std::fs::metadata(&store).is_ok_and(|m| m.len() > 0)
            && connect(&store, true)
                .and_then(|c| schema::version(&c).map_err(|e| sql_error(&store, e)))
                .is_ok_and(|v| v > 0)
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.store
    }

    /// Where this run's tasks come from, recorded with each task ID.
    pub fn set_origin(&mut self, origin: Origin) {
        self.origin = origin;
    }

    /// Keeps the manifest's `[quality]` table (`quality`, as its keys
    /// write it), for a later `collect` that reads no manifest
    /// ([`Catalog::quality`]). A manifest without one clears it.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn keep_quality(&mut self, quality: &QualitySettings) -> Result<(), ResultsError> {
        self.conn
            .execute(
                "UPDATE meta SET value = ?1 WHERE name = 'quality' AND value <> ?1",
                [quality_json(quality)],
            )
            .map(drop)
            .map_err(|e| sql_error(&self.store, e))
    }

    /// Keeps the quality rules of the jobs that set their own (by key), in
    /// place of those the last run kept, for a later `collect`
    /// ([`Catalog::job_quality`]). Written only when they changed.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn keep_job_quality(
        &mut self,
        jobs: &BTreeMap<String, QualitySettings>,
    ) -> Result<(), ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let wanted: BTreeMap<&str, String> = jobs
            .iter()
            .map(|(key, rules)| (key.as_str(), quality_json(rules)))
            .collect();
        let kept: BTreeMap<String, String> = self
            .conn
            .prepare("SELECT key, rules FROM job_quality")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(err)?;
        if kept.len() == wanted.len()
            && kept
                .iter()
                .all(|(key, rules)| wanted.get(key.as_str()) == Some(rules))
        {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute("DELETE FROM job_quality", []).map_err(err)?;
        {
            let mut insert = tx
                .prepare("INSERT INTO job_quality (key, rules) VALUES (?1, ?2)")
                .map_err(err)?;
            for (key, rules) in &wanted {
                insert.execute(params![key, rules]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Records that a run starts sending now, with the host's balance
    /// before its first request where it reports one; the run's row, for
    /// [`State::finish_run`]. A run killed before it finishes stays a row
    /// with no end, which `status` reports.
    ///
    /// # Errors
    /// When the store cannot be written: nothing is sent then.
    pub fn start_run(&mut self, balance_before: Option<f64>) -> Result<i64, ResultsError> {
        self.conn
            .execute(
                "INSERT INTO runs (started_at, balance_before) VALUES (?1, ?2)",
                params![crate::util::clock::now_rfc3339(), balance_before],
            )
            .map_err(|e| sql_error(&self.store, e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Completes run `run`'s row: its requests, the credits its jobs were
    /// estimated to cost, and the host's balance after its last request.
    /// A run that sent nothing after all (its budget, or a signal, stopped
    /// it first) spent nothing: its row goes.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn finish_run(
        &mut self,
        run: i64,
        requests: u64,
        credits: f64,
        balance_after: Option<f64>,
    ) -> Result<(), ResultsError> {
        if requests == 0 {
            return self
                .conn
                .execute("DELETE FROM runs WHERE id = ?1", [run])
                .map(drop)
                .map_err(|e| sql_error(&self.store, e));
        }
        self.conn
            .execute(
                "UPDATE runs SET finished_at = ?2, requests = ?3, credits = ?4, balance_after = ?5
                 WHERE id = ?1",
                params![
                    run,
                    crate::util::clock::now_rfc3339(),
                    requests,
                    credits,
                    balance_after
                ],
            )
            .map(drop)
            .map_err(|e| sql_error(&self.store, e))
    }

    /// Brings the schema up to date and, for a new store, builds it from
    /// the results file: one transaction, so a failed import leaves no
    /// store (the next run imports again) and a store is never built twice.
    fn upgrade(&mut self) -> Result<(), ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        build(&tx, &self.results, &self.store)?;
        tx.commit().map_err(err)
    }

    /// A job a killed run left `sending` may have been accepted: `unknown`.
    fn settle_interrupted(&mut self) -> Result<(), ResultsError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_error(&self.store, e))?;
        let n = tx
            .execute(
                "UPDATE jobs SET status = 'unknown', error = ?1 WHERE status = 'sending'",
                [crate::files::results::INTERRUPTED],
            )
            .map_err(|e| sql_error(&self.store, e))?;
        if n > 0 {
            bump(&tx).map_err(|e| sql_error(&self.store, e))?;
        }
        tx.commit().map_err(|e| sql_error(&self.store, e))
    }

    /// Starts the pass that pairs the manifest's jobs with their rows
    /// ([`Merge`]). In a read-only state nothing it does is kept.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn merge(&mut self) -> Result<Merge<'_>, ResultsError> {
        let write = self.held.is_some();
        Merge::begin(&mut self.conn, write, &self.store, &self.results)
    }

    /// When the store's jobs are exactly the manifest's (the digest and
    /// count [`Merge::finish`] recorded equal `digest`), hands `visit` each
    /// job's status in manifest order and returns `true`: the hourly rerun
    /// of a finished manifest plans without a merge. `false` (nothing
    /// visited) when anything differs or a job is still `sending`.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn statuses_if_unchanged(
        &self,
        digest: &[u8; 32],
        jobs: u64,
        mut visit: impl FnMut(Status),
    ) -> Result<bool, ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let stored = meta(&self.conn, "digest").map_err(err)?;
        if stored.as_deref() != Some(&format!("{}:{jobs}", hex::encode(digest))) {
            return Ok(false);
        }
        let count: u64 = self
            .conn
            .query_row(
                "SELECT count(*), count(*) FILTER (WHERE status = 'sending') FROM jobs",
                [],
                |r| Ok((r.get::<_, u64>(0)?, r.get::<_, u64>(1)?)),
            )
            .map(|(all, sending)| if sending > 0 { u64::MAX } else { all })
            .map_err(err)?;
        if count != jobs {
            return Ok(false);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT status FROM jobs ORDER BY position, id")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let text: String = row.get(0).map_err(err)?;
            visit(status(&text));
        }
        Ok(true)
    }

    /// The keys of the jobs `--regenerate limit` sends again (see the
    /// `regenerate` module): none when `limit` is 0.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn to_regenerate(
        &self,
        limit: u32,
    ) -> Result<std::collections::HashSet<String>, ResultsError> {
        regenerate::due(&self.conn, limit).map_err(|e| sql_error(&self.store, e))
    }

    /// Records `rows` (a worker's `sending` row, an outcome) in one
    /// transaction, durable when this returns. A `submitted` row's task ID
    /// joins the job's tasks. A row with no task ID never erases the job's
    /// last one.
    ///
    /// # Errors
    /// Any write error (a full disk): then nothing of `rows` is recorded.
    pub fn record(&mut self, rows: &[&Record]) -> io::Result<()> {
        let State {
            conn,
            origin,
            changes,
            ..
        } = self;
        // IMMEDIATE, as every write of the store (see `Catalog::flush`).
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(to_io)?;
        {
            let mut update = tx.prepare_cached(RECORD_JOB).map_err(to_io)?;
            let mut insert = tx.prepare_cached(UPSERT_JOB).map_err(to_io)?;
            let mut task = tx.prepare_cached(INSERT_TASK).map_err(to_io)?;
            for r in rows {
                let fields = job_params(r, &None);
                // The merge placed every job of the run: an update that
                // leaves its place (and the place's index) alone.
                if update.execute(fields).map_err(to_io)? == 0 {
                    insert.execute(fields).map_err(to_io)?;
                }
                if r.status == Status::Submitted && !r.task_id.is_empty() {
                    task.execute(params![
                        r.key,
                        r.task_id,
                        r.attempts,
                        r.submitted_at,
                        origin.provider,
                        origin.base_url,
                        origin.account
                    ])
                    .map_err(to_io)?;
                }
            }
        }
        // The first commit marks the report out of date in the store, so a
        // run killed at any moment leaves a store whose report the next one
        // writes again; later commits count in memory only
        // ([`Reporter::write_if_changed`]).
        if changes.load(Ordering::Relaxed) == 0 {
            bump(&tx).map_err(to_io)?;
        }
        tx.commit().map_err(to_io)?;
        changes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Every task ID ever recorded, for the pool's check that the server
    /// does not hand one out twice: [`crate::job::key_hash`] of each,
    /// sorted and deduplicated.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn task_id_hashes(&self) -> Result<Vec<u64>, ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let mut stmt = self
            .conn
            .prepare("SELECT task_id FROM tasks UNION SELECT task_id FROM jobs WHERE status = 'submitted' AND task_id <> ''")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let mut hashes = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let id: String = row.get(0).map_err(err)?;
            hashes.push(crate::job::key_hash(id.as_bytes()));
        }
        hashes.sort_unstable();
        hashes.dedup();
        Ok(hashes)
    }

    /// Every task ID `key` was given, oldest first.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn tasks_of(&self, key: &str) -> Result<Vec<String>, ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let mut stmt = self
            .conn
            .prepare_cached("SELECT t.task_id FROM tasks t JOIN jobs j ON t.job_id = j.id WHERE j.key = ?1 ORDER BY t.seq")
            .map_err(err)?;
        let ids: Result<Vec<String>, _> =
            stmt.query_map([key], |r| r.get(0)).map_err(err)?.collect();
        ids.map_err(err)
    }

    /// The number of the manifest's jobs (the first `jobs` places) by
    /// status.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn totals(
        &self,
        jobs: u64,
    ) -> Result<std::collections::BTreeMap<&'static str, u64>, ResultsError> {
        let err = |e| sql_error(&self.store, e);
        let mut stmt = self
            .conn
            .prepare("SELECT status, count(*) FROM jobs WHERE position < ?1 GROUP BY status")
            .map_err(err)?;
        let mut rows = stmt.query([jobs]).map_err(err)?;
        let mut totals = std::collections::BTreeMap::new();
        while let Some(row) = rows.next().map_err(err)? {
            let text: String = row.get(0).map_err(err)?;
            totals.insert(status(&text).as_str(), row.get(1).map_err(err)?);
        }
        Ok(totals)
    }

    /// A handle that writes the results report from its own connection, on
    /// any thread, while this state records. `None` when read-only.
    pub fn reporter(&self) -> Option<Reporter> {
        let held = self.held.as_ref()?;
        Some(Reporter::new(
            self.store.clone(),
            self.results.clone(),
            held.reports.clone(),
            self.changes.clone(),
        ))
    }

    /// Writes the results report if the store changed since the last one.
    ///
    /// # Errors
    /// When the report cannot be written (the store is untouched).
    pub fn write_report(&self) -> Result<(), ResultsError> {
        match self.reporter() {
            Some(reporter) => reporter.write_if_stale(),
            None => Ok(()),
        }
    }
}

/// The recorder's sink: each batch one transaction.
impl crate::files::results::Sink for State {
    fn append(&mut self, rows: &[&Record]) -> io::Result<()> {
        self.record(rows)
    }
}

/// SQLite opens the database's log and index by name, following a link:
/// one planted there (a folder others can write) would have it write into
/// another file. The store's own name is opened by its writers the same
/// way ([`fsx::open_in_place`]).
fn check_sides(results: &Path) -> Result<(), ResultsError> {
    for side in &files_for(results)[1..] {
        if std::fs::symlink_metadata(side).is_ok() {
            fsx::open_in_place(side, OpenOptions::new().read(true).write(true))
                .map_err(|e| io_error(side, e))?;
        }
    }
    Ok(())
}

/// Hands `visit` every job of the store at `store` with its rows, in
/// report order, from one consistent read.
fn each_job_of<E: From<CatalogError>>(
    store: &Path,
    visit: impl FnMut(JobClips) -> Result<(), E>,
) -> Result<(), E> {
    let conn = connect(store, true).map_err(|e| E::from(CatalogError::from(e)))?;
    each_job_on(&conn, store, visit)
}

/// Hands `visit` every job of the store at `store` with its rows, in
/// report order, a page at a time, each page a read of its own: for a
/// reader that feeds a run for hours and must not hold one snapshot (it
/// would keep the store's log from being folded back) or a lock.
///
/// # Errors
/// The store unreadable, or what `visit` returns.
pub fn each_job_in<E: From<CatalogError>>(
    store: &Path,
    which: Which,
    mut visit: impl FnMut(JobClips) -> Result<(), E>,
) -> Result<(), E> {
    let conn = connect(store, true).map_err(|e| E::from(CatalogError::from(e)))?;
    for job in clips::JobsWithClips::new(&conn, store, which) {
        visit(job.map_err(E::from)?)?;
    }
    Ok(())
}

/// [`each_job_of`] on an open connection.
fn each_job_on<E: From<CatalogError>>(
    conn: &Connection,
    store: &Path,
    mut visit: impl FnMut(JobClips) -> Result<(), E>,
) -> Result<(), E> {
    let snapshot = conn
        .unchecked_transaction()
        .map_err(|e| E::from(clips::catalog_error(store, e)))?;
    for job in clips::JobsWithClips::new(&snapshot, store, Which::Every) {
        visit(job.map_err(E::from)?)?;
    }
    Ok(())
}

/// Within `tx`: brings the store up to date (or refuses a newer one) and,
/// when it was never built, imports the results file into it.
fn build(tx: &Connection, results: &Path, store: &Path) -> Result<(), ResultsError> {
    let err = |e| sql_error(store, e);
    if let schema::Found::Newer(found) = schema::migrate(tx).map_err(err)? {
        return Err(newer(store, found));
    }
    if meta(tx, "imported").map_err(err)?.is_some() {
        return Ok(());
    }
    import::from_results(tx, results, store)?;
    tx.execute(
        "INSERT INTO meta (name, value) VALUES ('imported', ?1)",
        [crate::util::clock::now_rfc3339()],
    )
    .map_err(err)?;
    bump(tx).map_err(err)
}

/// A connection to read the store of `results`: read-only when a store
/// was built. On first contact with a results file of an earlier release
/// (no store yet), the store is built from it when `persist` says so (a
/// reader that may write: not a dry run), as a run would build it, when no
/// run holds the file; else (an earlier release's run holds it, or
/// the folder is read-only) the store is built in memory and nothing is
/// written. A store at an older version is read through an upgraded copy
/// in memory.
fn open_for_reading(results: &Path, persist: bool) -> Result<(Connection, PathBuf), ResultsError> {
    let store = path_for(results);
    let err = |e| sql_error(&store, e);
    let older = || {
        connect(&store, true)
            .and_then(|c| schema::version(&c).map_err(|e| sql_error(&store, e)))
            .is_ok_and(|v| v > 0 && v < schema::VERSION)
    };
    if persist && ((!State::exists(results) && results.is_file()) || older()) {
        // A failure here (locked, read-only) is the in-memory import's to
        // report, if it is an error at all.
        drop(State::open(results));
    }
    if std::fs::metadata(&store).is_ok_and(|m| m.len() > 0) {
        let conn = connect(&store, true)?;
        match schema::version(&conn).map_err(err)? {
            0 => {}
            v if v > schema::VERSION => return Err(newer(&store, v)),
            v if v == schema::VERSION => return Ok((conn, store)),
            _ => {
                let mut copy = Connection::open_in_memory().map_err(err)?;
                rusqlite::backup::Backup::new(&conn, &mut copy)
                    .and_then(|b| b.run_to_completion(256, std::time::Duration::ZERO, None))
                    .map_err(err)?;
                let tx = copy.transaction().map_err(err)?;
                build(&tx, results, &store)?;
                tx.commit().map_err(err)?;
                return Ok((copy, store));
            }
        }
    }
    let mut conn = Connection::open_in_memory().map_err(err)?;
    let tx = conn.transaction().map_err(err)?;
    build(&tx, results, &store)?;
    tx.commit().map_err(err)?;
    Ok((conn, store))
}

#[cfg(test)]
mod tests;
