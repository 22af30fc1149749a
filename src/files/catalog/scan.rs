//! Reading a catalog file as its sorted body and its tail, without
//! holding it.
//!
//! A catalog file is a **body**, rows in order (results order of the job,
//! then clip index, each job and clip once), followed by a **tail**: rows
//! appended since the last compaction, in the order they changed, where a
//! later row of a job and clip supersedes any earlier one. The body ends
//! at the first row that does not sort after the one before it; nothing
//! marks it in the file, so a file written by an older batchgen, by a
//! spreadsheet or by hand reads the same way.
//!
//! [`Layout::read`] makes one pass: the body's end, every 64th job's
//! offset in the body ([`SPARSE_EVERY`], to find one job's rows with one
//! seek), and the tail's latest row per job and clip (an offset each).
//! [`Jobs`] then gives every job's current rows, in order, from a second
//! pass over the body with the tail's rows merged in; the compaction, the
//! collect run, `status` and the page all read the catalog through it.
//! A job's current rows are those of the task of its latest row (a job
//! submitted again has a new task, whose rows replace the old ones).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{CatalogError, Row};
use crate::files::results::Bounded;
use crate::files::results::Ranks;
use crate::files::results::ranks::UNRANKED;
use crate::job::key_hash;

/// One body offset is kept per this many jobs.
pub const SPARSE_EVERY: u64 = 64;

/// Where a catalog file's parts are, from one pass over it.
#[derive(Debug, Default, Clone)]
pub struct Layout {
    /// Byte offset where the tail starts (the file's length without one).
    pub body_end: u64,
    /// The file's length when read (appends go after it).
    pub len: u64,
    /// Jobs and rows in the body.
    pub body_jobs: u64,
    pub body_rows: u64,
    /// (place, byte offset) of every [`SPARSE_EVERY`]-th job in the body.
    sparse: Vec<(u32, u64)>,
    /// The place of each body job, in body order (4 bytes a job): the
    /// second pass ([`Jobs`]) reads them in order instead of looking each
    /// key up again, which at a million jobs is a cache miss each.
    body_ranks: Arc<Vec<u32>>,
    /// The latest tail row of each (key hash, clip index): its offset.
    pub tail: Tail,
    /// Where a last row cut short starts (`len` is then that offset).
    pub torn: Option<u64>,
}

/// The tail's rows, by job and clip: the offset of the latest of each.
#[derive(Debug, Default, Clone)]
pub struct Tail {
    latest: HashMap<(u64, u32), u64>,
}

impl Tail {
    pub fn record(&mut self, key: &str, clip_index: u32, offset: u64) {
        self.latest
            .insert((key_hash(key.as_bytes()), clip_index), offset);
    }

    /// Rows kept (latest per job and clip).
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// The offsets of the tail rows that may be `key`'s (a hash shared
    /// with another key is sorted out by the caller, who reads the row).
    fn offsets_of(&self, h: u64) -> Vec<u64> {
        // Few clips a job: asking each index beats a second map.
        (0..=super::job::MAX_CLIPS as u32)
            .filter_map(|clip| self.latest.get(&(h, clip)).copied())
            .collect()
    }
}

/// Columns a file must have to be read as a catalog.
const REQUIRED: [&str; 4] = ["key", "task_id", "clip_index", "status"];

/// A catalog file read row by row, with each row's byte offset.
pub(super) struct RowFile {
    path: PathBuf,
    reader: csv::Reader<Bounded<File>>,
    headers: csv::StringRecord,
    record: csv::StringRecord,
    bytes: csv::ByteRecord,
    /// The columns of `key` and `clip_index` (for [`RowFile::next_place`]).
    key_at: usize,
    clip_at: usize,
    /// Where the record read last began.
    last: u64,
}

impl RowFile {
    /// The file at `path`; `None` when there is none.
    pub(super) fn open(path: &Path) -> Result<Option<RowFile>, CatalogError> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
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
            return Ok(None);
        }
        let named = |name: &str| headers.iter().any(|h| h == name);
        if !REQUIRED.iter().all(|c| named(c)) {
            return Err(CatalogError::Refused(format!(
                "{}: not a batchgen catalog (its header lacks {}); move it away or choose another --catalog",
                path.display(),
                REQUIRED
                    .iter()
                    .filter(|c| !named(c))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let at = |name: &str| headers.iter().position(|h| h == name).unwrap_or(0);
        let (key_at, clip_at) = (at("key"), at("clip_index"));
        Ok(Some(RowFile {
            path: path.to_owned(),
            reader,
            headers,
            record: csv::StringRecord::new(),
            bytes: csv::ByteRecord::new(),
            key_at,
            clip_at,
            last: 0,
        }))
    }

    /// The next row and the byte offset it starts at.
    pub(super) fn next(&mut self) -> Result<Option<(u64, Row)>, CatalogError> {
        self.last = self.reader.position().byte();
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let offset = self.record.position().map_or(0, csv::Position::byte);
                self.last = offset;
                let row = self
                    .record
                    .deserialize::<Row>(Some(&self.headers))
                    .map_err(|e| refused(&self.path, &e))?;
                Ok(Some((offset, row)))
            }
            Err(e) => Err(refused(&self.path, &e)),
        }
    }

    /// The next row's offset, key and clip index, without the rest of it:
    /// the layout's pass, over every row of the file, needs no more (the
    /// rows it keeps are read whole, and checked, when read).
    pub(super) fn next_place(&mut self) -> Result<Option<(u64, String, u32)>, CatalogError> {
        self.last = self.reader.position().byte();
        match self.reader.read_byte_record(&mut self.bytes) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let offset = self.bytes.position().map_or(0, csv::Position::byte);
                self.last = offset;
                let bad = |what: &str| {
                    CatalogError::Refused(format!(
                        "{}: not a batchgen catalog (the row at byte {offset}: {what}); move it away or choose another --catalog",
                        self.path.display()
                    ))
                };
                let key = std::str::from_utf8(self.bytes.get(self.key_at).unwrap_or_default())
                    .map_err(|_| bad("its key is not UTF-8"))?
                    .to_owned();
                let clip = std::str::from_utf8(self.bytes.get(self.clip_at).unwrap_or_default())
                    .ok()
                    .and_then(|c| c.trim().parse().ok())
                    .ok_or_else(|| bad("its clip_index is not a number"))?;
                Ok(Some((offset, key, clip)))
            }
            Err(e) => Err(refused(&self.path, &e)),
        }
    }

    /// Where the record read last (or failed last) began.
    pub(super) fn last_offset(&self) -> u64 {
        self.last
    }

    /// Whether nothing follows the record read last: after a damaged one,
    /// whether it was the file's last.
    pub(super) fn at_end(&mut self) -> bool {
        if self.reader.get_ref().oversized().is_some() {
            return false;
        }
        let mut rest = csv::ByteRecord::new();
        matches!(self.reader.read_byte_record(&mut rest), Ok(false))
    }

    /// Continues from byte `offset` (a row's start).
    pub(super) fn seek(&mut self, offset: u64) -> Result<(), CatalogError> {
        let mut position = csv::Position::new();
        position.set_byte(offset);
        self.reader
            .seek(position)
            .map_err(|e| refused(&self.path, &e))
    }

    /// The row at byte `offset`.
    pub(super) fn row_at(&mut self, offset: u64) -> Result<Row, CatalogError> {
        self.seek(offset)?;
        self.next()?.map(|(_, row)| row).ok_or_else(|| {
            CatalogError::Refused(format!(
                "{}: no row at byte {offset}: the catalog changed under this run",
                self.path.display()
            ))
        })
    }
}

fn refused(path: &Path, e: &csv::Error) -> CatalogError {
    let line = e
        .position()
        .map(|p| format!(" at line {}", p.line()))
        .unwrap_or_default();
    CatalogError::Refused(format!(
        "{}: not a batchgen catalog{line} ({e}); move it away or choose another --catalog",
        path.display()
    ))
}

impl Layout {
    /// Reads the layout of the catalog at `path`, with places from
    /// `ranks`; `None` when there is no file.
    ///
    /// # Errors
    /// The file unreadable, or a row that is not a catalog row.
    pub fn read(path: &Path, ranks: &Ranks) -> Result<Option<Layout>, CatalogError> {
        let Some(mut file) = RowFile::open(path)? else {
            return Ok(None);
        };
        let mut layout = Layout::default();
        let mut body_ranks = Vec::new();
        let mut last: Option<(u32, String, u32)> = None;
        let mut in_tail = false;
        loop {
            let (offset, key, clip_index) = match file.next_place() {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(e) => {
                    // A last row cut short (a kill or a full disk in the
                    // middle of an append) is not a row; damage with rows
                    // after it is a file batchgen did not write.
                    let at = file.last_offset();
                    if file.at_end() {
                        layout.torn = Some(at);
                        break;
                    }
                    return Err(e);
                }
            };
            if !in_tail {
                // A job's rows are together in the body: one look-up a job.
                let rank = match &last {
                    Some((r, k, _)) if *k == key => *r,
                    _ => ranks.of(&key),
                };
                let place = (rank, key.as_str(), clip_index);
                match &last {
                    Some((r, k, c)) if place <= (*r, k.as_str(), *c) => {
                        in_tail = true;
                        layout.body_end = offset;
                    }
                    Some((_, k, _)) if *k == key => layout.body_rows += 1,
                    _ => {
                        if layout.body_jobs.is_multiple_of(SPARSE_EVERY) {
                            layout.sparse.push((place.0, offset));
                        }
                        body_ranks.push(place.0);
                        layout.body_jobs += 1;
                        layout.body_rows += 1;
                    }
                }
                if !in_tail {
                    last = Some((place.0, key, clip_index));
                    continue;
                }
            }
            layout.tail.record(&key, clip_index, offset);
        }
        layout.len =
            std::fs::metadata(path)
                .map(|m| m.len())
                .map_err(|source| CatalogError::Io {
                    path: path.to_owned(),
                    source,
                })?;
        if let Some(torn) = layout.torn {
            layout.len = torn;
        }
        body_ranks.shrink_to_fit();
        layout.body_ranks = Arc::new(body_ranks);
        if !in_tail {
            layout.body_end = layout.len;
        }
        Ok(Some(layout))
    }

    /// A layout of an empty catalog `len` bytes long (its header).
    pub fn empty(len: u64) -> Layout {
        Layout {
            body_end: len,
            len,
            ..Layout::default()
        }
    }

    /// A body just written: `starts` are (place, offset) of each job.
    pub fn written(len: u64, rows: u64, sparse: Vec<(u32, u64)>, body_ranks: Vec<u32>) -> Layout {
        let jobs = body_ranks.len() as u64;
        Layout {
            body_end: len,
            len,
            body_jobs: jobs,
            body_rows: rows,
            sparse,
            body_ranks: Arc::new(body_ranks),
            tail: Tail::default(),
            torn: None,
        }
    }

    /// Whether the file is one compacted body (no tail, nothing torn).
    pub fn is_compact(&self) -> bool {
        self.tail.is_empty() && self.body_end == self.len && self.torn.is_none()
    }
}

/// Job `key`'s current rows in the catalog at `path`: its body rows (one
/// seek through the sparse offsets) with the tail's merged in.
///
/// # Errors
/// The file unreadable or changed under the caller.
pub fn job_rows(
    path: &Path,
    layout: &Layout,
    ranks: &Ranks,
    key: &str,
) -> Result<Vec<Row>, CatalogError> {
    let Some(mut file) = RowFile::open(path)? else {
        return Ok(Vec::new());
    };
    let rank = ranks.of(key);
    let mut rows = Vec::new();
    // The last sampled job placed before `key` (an unranked key: the
    // first unranked sample, or the last ranked one).
    let at = layout.sparse.partition_point(|(r, _)| *r < rank);
    let start = at.checked_sub(1).and_then(|i| layout.sparse.get(i));
    if let Some(&(_, offset)) = start.or(layout.sparse.first()) {
        file.seek(offset)?;
        while let Some((offset, row)) = file.next()? {
            if offset >= layout.body_end || (ranks.of(&row.key), row.key.as_str()) > (rank, key) {
                break;
            }
            if row.key == key {
                rows.push((offset, row));
            }
        }
    }
    for offset in layout.tail.offsets_of(key_hash(key.as_bytes())) {
        let row = file.row_at(offset)?;
        if row.key == key {
            rows.push((offset, row));
        }
    }
    Ok(current(rows))
}

/// A job's current rows from all its rows with their offsets: the latest
/// row of each clip, of the task of its latest row, in clip order.
fn current(mut rows: Vec<(u64, Row)>) -> Vec<Row> {
    let Some(task) = rows
        .iter()
        .max_by_key(|(o, _)| *o)
        .map(|(_, r)| r.task_id.clone())
    else {
        return Vec::new();
    };
    rows.retain(|(_, r)| r.task_id == task);
    rows.sort_by_key(|(o, r)| (r.clip_index, std::cmp::Reverse(*o)));
    rows.dedup_by_key(|(_, r)| r.clip_index);
    rows.into_iter().map(|(_, r)| r).collect()
}

/// One job's current rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub key: String,
    pub rank: u32,
    pub rows: Vec<Row>,
}

/// A job's place, key, and every row read of it with its offset.
type RawJob = (u32, String, Vec<(u64, Row)>);

/// Every job's current rows, in order: the body's jobs and the tail's,
/// merged by place (a job in both gets the tail's rows over the body's).
/// Memory: one body job's rows, and the tail's keys with their offsets
/// (the tail is bounded by the compaction rule, [`super::store`]).
pub struct Jobs {
    body: Option<RowFile>,
    /// For the tail's rows, read by offset.
    tail_file: Option<RowFile>,
    layout: Layout,
    ranks: Arc<Ranks>,
    /// A row read ahead: the first of the next body job.
    ahead: Option<(u64, Row)>,
    /// The next body job, read but not given yet.
    next_body: Option<RawJob>,
    /// Body jobs read so far (the index into the layout's places).
    body_index: usize,
    /// The tail's jobs by place: (place, key, offsets), in order.
    tail: Option<TailJobs>,
}

impl Jobs {
    /// # Errors
    /// The file unreadable.
    pub fn new(path: &Path, layout: Layout, ranks: Arc<Ranks>) -> Result<Jobs, CatalogError> {
        Ok(Jobs {
            body: RowFile::open(path)?,
            tail_file: if layout.tail.is_empty() {
                None
            } else {
                RowFile::open(path)?
            },
            layout,
            ranks,
            ahead: None,
            next_body: None,
            body_index: 0,
            tail: None,
        })
    }

    fn next_body_row(&mut self) -> Result<Option<(u64, Row)>, CatalogError> {
        if let Some(row) = self.ahead.take() {
            return Ok(Some(row));
        }
        let Some(body) = &mut self.body else {
            return Ok(None);
        };
        match body.next()? {
            Some((offset, row)) if offset < self.layout.body_end => Ok(Some((offset, row))),
            _ => {
                self.body = None;
                Ok(None)
            }
        }
    }

    /// The next body job's rows (without the tail's).
    fn read_body_job(&mut self) -> Result<Option<RawJob>, CatalogError> {
        let Some((offset, first)) = self.next_body_row()? else {
            return Ok(None);
        };
        let key = first.key.clone();
        let mut rows = vec![(offset, first)];
        while let Some((offset, row)) = self.next_body_row()? {
            if row.key != key {
                self.ahead = Some((offset, row));
                break;
            }
            rows.push((offset, row));
        }
        let rank = match self.layout.body_ranks.get(self.body_index) {
            Some(&rank) => rank,
            None => self.ranks.of(&key),
        };
        self.body_index += 1;
        Ok(Some((rank, key, rows)))
    }

    /// The tail's rows by job, in place order: the ranked ones as (place,
    /// key hash, offset), 24 bytes a row with no key held (the place comes
    /// from the hash); the few unranked ones (keys not in the results) by
    /// key, which orders them.
    fn tail_jobs(&mut self) -> Result<TailJobs, CatalogError> {
        let mut ranked = Vec::with_capacity(self.layout.tail.len());
        let mut unranked: Vec<u64> = Vec::new();
        for (&(h, _), &offset) in &self.layout.tail.latest {
            match self.ranks.of_hash(h) {
                UNRANKED => unranked.push(offset),
                rank => ranked.push((rank, h, offset)),
            }
        }
        ranked.sort_unstable();
        let mut by_key: Vec<(String, u64)> = Vec::with_capacity(unranked.len());
        if let Some(file) = &mut self.tail_file {
            for offset in unranked {
                by_key.push((file.row_at(offset)?.key, offset));
            }
        }
        by_key.sort();
        let mut strangers: VecDeque<(String, Vec<u64>)> = VecDeque::new();
        for (key, offset) in by_key {
            match strangers.back_mut() {
                Some((k, offsets)) if *k == key => offsets.push(offset),
                _ => strangers.push_back((key, vec![offset])),
            }
        }
        Ok(TailJobs {
            ranked: ranked.into(),
            strangers,
        })
    }

    fn read_at(&mut self, offsets: &[u64]) -> Result<Vec<(u64, Row)>, CatalogError> {
        let Some(file) = &mut self.tail_file else {
            return Ok(Vec::new());
        };
        offsets
            .iter()
            .map(|&o| file.row_at(o).map(|row| (o, row)))
            .collect()
    }

    fn next_job(&mut self) -> Result<Option<Job>, CatalogError> {
        if self.tail.is_none() {
            self.tail = Some(self.tail_jobs()?);
        }
        if self.next_body.is_none() {
            self.next_body = self.read_body_job()?;
        }
        let tail = self.tail.as_mut().expect("just read");
        let body = self.next_body.as_ref().map(|(r, k, _)| (*r, k.as_str()));
        let (rank, key, mut rows) = match tail.next_before(body) {
            // A job only the tail has, placed before the next body job.
            Some(TailJob::Alone(rank, key_or_hash, offsets)) => {
                let rows = self.read_at(&offsets)?;
                let key = match key_or_hash {
                    Ok(key) => key,
                    Err(_) => match rows.iter().max_by_key(|(o, _)| *o) {
                        Some((_, row)) => row.key.clone(),
                        None => return self.next_job(),
                    },
                };
                (rank, key, rows)
            }
            // The next body job, with its tail rows.
            Some(TailJob::Same(offsets)) => {
                let (rank, key, mut rows) = self.next_body.take().expect("just seen");
                rows.extend(self.read_at(&offsets)?);
                (rank, key, rows)
            }
            None => match self.next_body.take() {
                Some(job) => job,
                None => return Ok(None),
            },
        };
        rows.retain(|(_, r)| r.key == key);
        Ok(Some(Job {
            key,
            rank,
            rows: current(rows),
        }))
    }
}

/// The tail's jobs, taken in place order beside the body's.
struct TailJobs {
    /// (place, key hash, offset), sorted.
    ranked: VecDeque<(u32, u64, u64)>,
    /// Keys not in the results, sorted, with their rows' offsets.
    strangers: VecDeque<(String, Vec<u64>)>,
}

/// What the tail has at the front, against the next body job.
enum TailJob {
    /// A job of the tail alone: its place, its key (or only its hash, for
    /// a ranked one: read from its rows), its rows' offsets.
    Alone(u32, Result<String, u64>, Vec<u64>),
    /// The body job's own tail rows.
    Same(Vec<u64>),
}

impl TailJobs {
    /// The tail job that comes before the body job (place, key), or is
    /// it; `None` when the body job comes first (or both are done).
    fn next_before(&mut self, body: Option<(u32, &str)>) -> Option<TailJob> {
        if let Some(&(rank, h, _)) = self.ranked.front() {
            let before = match body {
                None => true,
                Some((rb, kb)) => {
                    let hb = key_hash(kb.as_bytes());
                    if (rank, h) == (rb, hb) {
                        return Some(TailJob::Same(self.take_ranked(rank, h)));
                    }
                    (rank, h) < (rb, hb)
                }
            };
            if before {
                return Some(TailJob::Alone(rank, Err(h), self.take_ranked(rank, h)));
            }
            return None;
        }
        let (key, _) = self.strangers.front()?;
        match body {
            Some((rb, kb)) if rb == UNRANKED && kb == key => {
                self.strangers.pop_front().map(|(_, o)| TailJob::Same(o))
            }
            Some((rb, kb)) if rb < UNRANKED || kb < key.as_str() => None,
            _ => self
                .strangers
                .pop_front()
                .map(|(k, o)| TailJob::Alone(UNRANKED, Ok(k), o)),
        }
    }

    fn take_ranked(&mut self, rank: u32, h: u64) -> Vec<u64> {
        let mut offsets = Vec::new();
        while let Some(&(r, hh, o)) = self.ranked.front() {
            if (r, hh) != (rank, h) {
                break;
            }
            offsets.push(o);
            self.ranked.pop_front();
        }
        offsets
    }
}

impl Iterator for Jobs {
    type Item = Result<Job, CatalogError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_job() {
            Ok(job) => job.map(Ok),
            Err(e) => {
                // One error ends the stream.
                self.body = None;
                self.next_body = None;
                self.tail = Some(TailJobs {
                    ranked: VecDeque::new(),
                    strangers: VecDeque::new(),
                });
                Some(Err(e))
            }
        }
    }
}
