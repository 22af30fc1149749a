//! The catalog held by one writer: the jobs in memory, the rows appended,
//! and the compaction.
//!
//! Memory is bounded by the work in progress, not the catalog: only the
//! jobs a run is working on (held by collect's window, its downloads, or
//! a callback being recorded) are in memory, with the places of every key
//! ([`Ranks`], 12 bytes a job) and the file's [`Layout`] (a sparse body
//! index and the tail's offsets). Everything else stays on disk and is
//! read back when asked ([`scan::job_rows`]).
//!
//! A change marks the job's changed clips; the one writer ([`flusher`])
//! appends those rows to the file at most once per [`FLUSH_EVERY`], fsynced
//! before it goes on, so a kill loses at most the last second of changes
//! (which the next run polls again). A row a kill cut short in mid-append
//! is dropped when the file is next opened, and an append that failed
//! half way (a full disk) is cut off before the next ([`scan`]). When the
//! tail holds more than a quarter of the body (at least [`MIN_TAIL`] rows,
//! at most [`MAX_TAIL`]), when a quiet catalog is small ([`IDLE`]), and at
//! the end of every run, the file is
//! compacted: every job's current rows, in order, written to a temporary
//! file, fsynced and renamed over the catalog (the results file's recipe,
//! [`AtomicFile`]). So the file on disk is always a whole catalog: the
//! last compaction plus the rows since, each later one superseding.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::job::JobRows;
use super::scan::{self, Job, Jobs, Layout};
use super::{CatalogError, Row};
use crate::api::feed::TaskClips;
use crate::files::results::Ranks;
use crate::job::key_hash;
use crate::util::fsx::AtomicFile;

/// Most frequent append while clips keep changing.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Jobs waiting for an append that make it come at once: jobs let go of
/// stay in memory until their rows are on disk, so at thousands of answers
/// a second this, not the second, bounds them.
pub const URGENT: usize = 512;
/// The tail is compacted into the body past a quarter of it, never below
/// this many rows and never above [`MAX_TAIL`].
pub const MIN_TAIL: usize = 65_536;
/// Most tail rows kept before a compaction: the tail's index is the one
/// structure that grows with the rows a run writes (~48 bytes a row with
/// the table's slack), so it is capped; a collect that writes two million
/// rows compacts about fifteen times.
pub const MAX_TAIL: usize = 131_072;

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

/// A job in memory: its rows and how many users hold it.
#[derive(Debug, Default)]
struct Live {
    rows: JobRows,
    holds: u32,
}

struct State {
    ranks: Arc<Ranks>,
    layout: Layout,
    live: HashMap<String, Live>,
    /// Clips changed since the last append, per job (all live).
    pending: HashMap<String, BTreeSet<u32>>,
    out: Option<Appender>,
    compactions: u32,
    /// Most jobs in memory at once.
    peak: usize,
    /// Jobs changed while no one held them (hashes of their keys).
    touched: HashSet<u64>,
    /// Rows appended this run.
    appended: u64,
}

/// The catalog file opened for appending, and where the next row lands.
struct Appender {
    file: BufWriter<File>,
    at: u64,
}

/// The catalog shared by the tasks that change it, and its file.
pub struct SharedCatalog {
    path: PathBuf,
    state: Mutex<State>,
    dirty: Notify,
    /// [`URGENT`] jobs wait for the file.
    urgent: Notify,
}

impl std::fmt::Debug for SharedCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCatalog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SharedCatalog {
    /// Opens the catalog at `path` (the caller holds its lock) with the
    /// places of `ranks`: reads its layout, compacts it if it is not one
    /// sorted body (a tail, or an order the results no longer have), and
    /// proves it can be written before any request: a missing catalog is
    /// created (its header), an existing one opened for appending.
    ///
    /// # Errors
    /// The catalog unreadable, not a catalog, or unwritable.
    pub fn open(path: &Path, ranks: Arc<Ranks>) -> Result<Arc<SharedCatalog>, CatalogError> {
        let layout = match scan::Layout::read(path, &ranks)? {
            Some(layout) if layout.len > 0 => layout,
            _ => Layout::empty(write_header_only(path)?),
        };
        let store = Arc::new(SharedCatalog {
            path: path.to_owned(),
            state: Mutex::new(State {
                ranks,
                layout,
                live: HashMap::new(),
                pending: HashMap::new(),
                out: None,
                compactions: 0,
                peak: 0,
                touched: HashSet::new(),
                appended: 0,
            }),
            dirty: Notify::new(),
            urgent: Notify::new(),
        });
        {
            let mut state = store.lock();
            if state.layout.is_compact() {
                // The compaction at the end writes beside the file.
                let dir = crate::util::fsx::parent_dir(
                    &crate::util::fsx::resolve(path).map_err(|e| io_error(path, e))?,
                );
                tempfile::tempfile_in(&dir).map_err(|e| io_error(path, e))?;
            } else {
                store.compact_locked(&mut state)?;
            }
            state.out = Some(Appender::open(path, state.layout.len)?);
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The places the catalog sorts by.
    pub fn ranks(&self) -> Arc<Ranks> {
        Arc::clone(&self.lock().ranks)
    }

    /// Sorts by `ranks` from now on (the receiver read a results file
    /// that grew): the rows in memory are appended, the file's layout is
    /// read again under the new places and compacted if it is no longer
    /// in order. Unchanged places change nothing.
    ///
    /// # Errors
    /// The file unreadable or unwritable.
    pub fn set_ranks(&self, ranks: Ranks) -> Result<(), CatalogError> {
        let mut state = self.lock();
        if ranks.len() == state.ranks.len() {
            return Ok(());
        }
        self.append_pending(&mut state)?;
        let ranks = Arc::new(ranks);
        let layout = Layout::read(&self.path, &ranks)?.unwrap_or_else(|| Layout::empty(0));
        state.ranks = ranks;
        state.layout = layout;
        if !state.layout.is_compact() {
            self.compact_locked(&mut state)?;
        }
        Ok(())
    }

    /// Every job's current rows as of now, in order, from the file (the
    /// rows still in memory only are not in it: hold a job to see them).
    ///
    /// # Errors
    /// The file unreadable.
    pub fn jobs(&self) -> Result<Jobs, CatalogError> {
        let (layout, ranks) = {
            let state = self.lock();
            (state.layout.clone(), Arc::clone(&state.ranks))
        };
        Jobs::new(&self.path, layout, ranks)
    }

    /// Keeps job `job.key` in memory until [`SharedCatalog::release`]d,
    /// starting from `job.rows` (read from the file as the run began)
    /// unless this run changed it since (it is in memory, or was changed
    /// while no one held it); its current rows.
    ///
    /// # Errors
    /// The file unreadable (reading newer rows back).
    pub fn hold(&self, job: Job) -> Result<Vec<Row>, CatalogError> {
        let mut state = self.lock();
        if !state.live.contains_key(&job.key) {
            let touched = state.touched.contains(&key_hash(job.key.as_bytes()));
            let rows = if touched {
                // Changed since the snapshot `job` came from (a callback
                // recorded it before the run got to it).
                scan::job_rows(&self.path, &state.layout, &state.ranks, &job.key)?
            } else {
                job.rows
            };
            state.live.insert(job.key.clone(), Live::new(rows));
            state.peak = state.peak.max(state.live.len());
        }
        let live = state.live.get_mut(&job.key).expect("just made");
        live.holds += 1;
        Ok(live.rows.rows.clone())
    }

    /// Lets go of a held job: once its rows are on disk it leaves memory.
    pub fn release(&self, key: &str) {
        let mut state = self.lock();
        let pending = state.pending.contains_key(key);
        if let Some(live) = state.live.get_mut(key) {
            live.holds = live.holds.saturating_sub(1);
            if live.holds == 0 && !pending {
                state.live.remove(key);
            }
        }
    }

    /// The job's rows in memory, read back from the file first if not.
    fn live<'s>(&self, state: &'s mut State, key: &str) -> Result<&'s mut Live, CatalogError> {
        if !state.live.contains_key(key) {
            let rows = scan::job_rows(&self.path, &state.layout, &state.ranks, key)?;
            // A change to a job no one holds: a later hold must read it
            // back, not trust a snapshot taken before.
            state.touched.insert(key_hash(key.as_bytes()));
            state.live.insert(key.to_owned(), Live::new(rows));
            state.peak = state.peak.max(state.live.len());
        }
        Ok(state.live.get_mut(key).expect("just made"))
    }

    /// Merges an answer about job `key`'s task ([`JobRows::apply`]) and
    /// schedules the changed rows for the file.
    ///
    /// # Errors
    /// The job's rows could not be read back from the file.
    pub fn apply(
        &self,
        key: &str,
        task_id: &str,
        answer: &TaskClips,
    ) -> Result<Applied, CatalogError> {
        let mut state = self.lock();
        let live = self.live(&mut state, key)?;
        let changed = live.rows.apply(key, task_id, answer);
        let applied = Applied {
            changed: !changed.is_empty(),
            finished: live.rows.finished(task_id),
            rows: live.rows.of_task(task_id).cloned().collect(),
        };
        let unheld = live.holds == 0;
        if changed.is_empty() {
            if unheld && !state.pending.contains_key(key) {
                state.live.remove(key);
            }
        } else {
            state
                .pending
                .entry(key.to_owned())
                .or_default()
                .extend(changed);
            self.changed(&state);
        }
        Ok(applied)
    }

    /// Changes clip `clip_index` of job `key`, if that row is still of
    /// task `task_id` (a download recording its file); whether it was.
    ///
    /// # Errors
    /// The job's rows could not be read back from the file.
    pub fn update(
        &self,
        key: &str,
        clip_index: u32,
        task_id: &str,
        change: impl FnOnce(&mut Row),
    ) -> Result<bool, CatalogError> {
        let mut state = self.lock();
        let live = self.live(&mut state, key)?;
        let Some(row) = live
            .rows
            .row_mut(clip_index)
            .filter(|r| r.task_id == task_id)
        else {
            return Ok(false);
        };
        let before = row.clone();
        change(row);
        if *row != before {
            state
                .pending
                .entry(key.to_owned())
                .or_default()
                .insert(clip_index);
            self.changed(&state);
        }
        Ok(true)
    }

    /// Tells the writer: soon, or at once when [`URGENT`] jobs wait.
    fn changed(&self, state: &State) {
        self.dirty.notify_one();
        if state.pending.len() >= URGENT {
            self.urgent.notify_one();
        }
    }

    /// The current rows of job `key` (in memory or on disk).
    ///
    /// # Errors
    /// The file unreadable.
    pub fn rows_of(&self, key: &str) -> Result<Vec<Row>, CatalogError> {
        let state = &mut *self.lock();
        match state.live.get(key) {
            Some(live) => Ok(live.rows.rows.clone()),
            None => scan::job_rows(&self.path, &state.layout, &state.ranks, key),
        }
    }

    /// Jobs in memory now (the bench and the tests watch it stay small).
    pub fn jobs_in_memory(&self) -> usize {
        self.lock().live.len()
    }

    /// Rows this run wrote (appended) so far.
    pub fn rows_written(&self) -> u64 {
        self.lock().appended
    }

    /// Jobs in the file's body (as of the last compaction or opening).
    pub fn body_jobs(&self) -> u64 {
        self.lock().layout.body_jobs
    }

    /// Most jobs in memory at once so far.
    pub fn peak_jobs_in_memory(&self) -> usize {
        self.lock().peak
    }

    /// Compactions so far this run.
    pub fn compactions(&self) -> u32 {
        self.lock().compactions
    }

    /// Appends the changed rows, fsynced, then lets go of the jobs no one
    /// holds, and compacts when the tail has grown (module docs).
    ///
    /// # Errors
    /// Any I/O error: the rows stay pending, the file as it was (but for a
    /// torn last row, which the next open reads as the damage it is).
    pub fn flush(&self) -> Result<(), CatalogError> {
        let mut state = self.lock();
        self.append_pending(&mut state)?;
        let trigger = (state.layout.body_rows as usize / 4).clamp(MIN_TAIL, MAX_TAIL);
        if state.layout.tail.len() >= trigger {
            self.compact_locked(&mut state)?;
        }
        Ok(())
    }

    /// Appends, then rewrites the file as one sorted body: the end of a run.
    ///
    /// # Errors
    /// Any I/O error; the file is then left as it was.
    pub fn compact(&self) -> Result<(), CatalogError> {
        let mut state = self.lock();
        self.append_pending(&mut state)?;
        if !state.layout.is_compact() {
            self.compact_locked(&mut state)?;
        }
        Ok(())
    }

    fn append_pending(&self, state: &mut State) -> Result<(), CatalogError> {
        if state.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut state.pending);
        match self.append(state, &pending) {
            Ok(written) => {
                state.appended += written.len() as u64;
                for (key, clip, at) in written {
                    state.layout.tail.record(&key, clip, at);
                }
                state.layout.len = state.out.as_ref().map_or(state.layout.len, |o| o.at);
                state.live.retain(|_, live| live.holds > 0);
                Ok(())
            }
            Err(e) => {
                // Nothing of this batch counts as written: all of it is
                // pending again, and the next append first cuts the file
                // back to the end of the last whole batch.
                state.pending = pending;
                state.out = None;
                Err(e)
            }
        }
    }

    /// Writes the pending rows and fsyncs; (key, clip, offset) of each.
    fn append(
        &self,
        state: &mut State,
        pending: &HashMap<String, BTreeSet<u32>>,
    ) -> Result<Vec<(String, u32, u64)>, CatalogError> {
        if state.out.is_none() {
            state.out = Some(Appender::open(&self.path, state.layout.len)?);
        }
        let State { live, out, .. } = state;
        let out = out.as_mut().expect("just opened");
        let mut written = Vec::new();
        for (key, clips) in pending {
            let Some(job) = live.get(key) else { continue };
            for row in job
                .rows
                .rows
                .iter()
                .filter(|r| clips.contains(&r.clip_index))
            {
                let at = out.write(row).map_err(|e| io_error(&self.path, e))?;
                written.push((row.key.clone(), row.clip_index, at));
            }
        }
        out.sync().map_err(|e| io_error(&self.path, e))?;
        Ok(written)
    }

    /// Rewrites the file as its jobs' current rows, in order.
    fn compact_locked(&self, state: &mut State) -> Result<(), CatalogError> {
        // The layout moves into the reader (no second copy of the tail's
        // index at the moment memory peaks); if writing fails it is read
        // again from the file, which is then as it was.
        let layout = std::mem::take(&mut state.layout);
        let written = Jobs::new(&self.path, layout, Arc::clone(&state.ranks))
            .and_then(|jobs| write_body(&self.path, jobs));
        let layout = match written {
            Ok(layout) => layout,
            Err(e) => {
                state.layout =
                    Layout::read(&self.path, &state.ranks)?.unwrap_or_else(|| Layout::empty(0));
                return Err(e);
            }
        };
        state.layout = layout;
        state.out = None;
        state.out = Some(Appender::open(&self.path, state.layout.len)?);
        state.compactions += 1;
        Ok(())
    }
}

impl Live {
    fn new(rows: Vec<Row>) -> Live {
        Live {
            rows: JobRows::new(rows),
            holds: 0,
        }
    }
}

impl Appender {
    /// The catalog opened for appending (through the link the user made,
    /// never one planted since), cut back to `good` bytes: what is past
    /// them is an append that failed half way (a full disk), never
    /// acknowledged, and a row cut short there would swallow the next.
    fn open(path: &Path, good: u64) -> Result<Appender, CatalogError> {
        let file = crate::util::fsx::resolve(path)
            .and_then(|real| {
                crate::util::fsx::open_in_place(&real, OpenOptions::new().append(true))
            })
            .map_err(|e| io_error(path, e))?;
        let len = file.metadata().map_err(|e| io_error(path, e))?.len();
        if len < good {
            return Err(CatalogError::Refused(format!(
                "{}: the catalog was cut short while this run held it ({len} bytes, {good} expected)",
                path.display()
            )));
        }
        if len > good {
            file.set_len(good).map_err(|e| io_error(path, e))?;
        }
        Ok(Appender {
            file: BufWriter::new(file),
            at: good,
        })
    }

    /// Writes one row; the offset it starts at.
    fn write(&mut self, row: &Row) -> io::Result<u64> {
        let bytes = encode(row, false)?;
        let at = self.at;
        self.file.write_all(&bytes)?;
        self.at += bytes.len() as u64;
        Ok(at)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()
    }
}

/// One row as a CSV line (with the header line before it, if asked). The
/// `error` column quotes servers and download failures: it passes the one
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

/// The header line: [`Row`]'s field names.
fn header() -> Vec<u8> {
    let line = encode(&Row::default(), true).unwrap_or_default();
    let end = line
        .iter()
        .position(|&b| b == b'\n')
        .map_or(line.len(), |i| i + 1);
    line[..end].to_vec()
}

/// A catalog of no rows (its header), written whole; its length.
fn write_header_only(path: &Path) -> Result<u64, CatalogError> {
    let header = header();
    let mut tmp = AtomicFile::create(path).map_err(|e| io_error(path, e))?;
    tmp.file_mut()
        .write_all(&header)
        .map_err(|e| io_error(path, e))?;
    tmp.commit().map_err(|e| io_error(path, e))?;
    Ok(header.len() as u64)
}

/// Writes `jobs` as the new body of the catalog at `path`, whole and
/// atomically; its layout.
///
/// # Errors
/// Any I/O error, or a row that cannot be read back; the file is then
/// left as it was.
pub fn write_body(path: &Path, jobs: Jobs) -> Result<Layout, CatalogError> {
    let error = |e| io_error(path, e);
    let mut tmp = AtomicFile::create(path).map_err(error)?;
    let mut out = BufWriter::new(tmp.file_mut());
    let header = header();
    out.write_all(&header).map_err(error)?;
    let mut at = header.len() as u64;
    let (mut count, mut rows, mut sparse, mut ranks) = (0u64, 0u64, Vec::new(), Vec::new());
    for job in jobs {
        let job = job?;
        if job.rows.is_empty() {
            continue;
        }
        if count.is_multiple_of(scan::SPARSE_EVERY) {
            sparse.push((job.rank, at));
        }
        ranks.push(job.rank);
        count += 1;
        for row in &job.rows {
            let bytes = encode(row, false).map_err(error)?;
            out.write_all(&bytes).map_err(error)?;
            at += bytes.len() as u64;
            rows += 1;
        }
    }
    out.flush().map_err(error)?;
    drop(out);
    tmp.commit().map_err(error)?;
    Ok(Layout::written(at, rows, sparse, ranks))
}

fn io_error(path: &Path, source: io::Error) -> CatalogError {
    CatalogError::Io {
        path: path.to_owned(),
        source,
    }
}

/// After this long without a change, a tail is folded into the body
/// (if that is cheap: [`SharedCatalog::idle_compaction_due`]), so a
/// receiver that waits for hours leaves a clean file, not its appends.
pub const IDLE: Duration = Duration::from_secs(2);
/// Rows up to which an idle catalog is always compacted (a second's work).
pub const IDLE_COMPACT_ROWS: u64 = 200_000;

impl SharedCatalog {
    /// Whether a quiet moment should compact: a tail, and a file small
    /// enough (or a tail large enough) for it to be cheap.
    pub fn idle_compaction_due(&self) -> bool {
        let state = self.lock();
        let tail = state.layout.tail.len() as u64;
        tail > 0
            && (state.layout.body_rows + tail <= IDLE_COMPACT_ROWS
                || tail >= state.layout.body_rows / 8)
    }
}

/// The only writer of the catalog file: appends after changes, at most
/// once per [`FLUSH_EVERY`]; compacts after [`IDLE`] without changes
/// when that is cheap; and when `stop` is cancelled appends a last time
/// and compacts. Ends with the first write error (the caller stops the
/// run: exit 73).
pub fn flusher(
    store: Arc<SharedCatalog>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), CatalogError>> {
    tokio::spawn(async move {
        loop {
            let idle_due = store.idle_compaction_due();
            let (stopping, idle) = tokio::select! {
                biased;
                () = stop.cancelled() => (true, false),
                () = store.dirty.notified() => (false, false),
                () = tokio::time::sleep(IDLE), if idle_due => (false, true),
            };
            let s = Arc::clone(&store);
            tokio::task::spawn_blocking(move || {
                if stopping || idle {
                    s.compact()
                } else {
                    s.flush()
                }
            })
            .await
            .map_err(|e| CatalogError::Writer(e.to_string()))??;
            if stopping {
                return Ok(());
            }
            if !idle {
                tokio::select! {
                    () = tokio::time::sleep(FLUSH_EVERY) => {}
                    () = store.urgent.notified() => {}
                    () = stop.cancelled() => {}
                }
            }
        }
    })
}
