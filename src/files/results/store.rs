//! Reading and rewriting a results file without holding it in memory.
//!
//! [`Store`] indexes a results file by `id`: 16 bytes per row (a hash of
//! the `id` and the row's byte offset), sorted, so a job's latest row is a
//! binary search and one seek away. Hash matches are confirmed against the
//! row's real `id`, so a collision can cost a read but never a wrong row.
//! [`Store::scan`] is the fast path beside it: the file front to back, no
//! index, for a rerun that only needs to know the file matches the plan.
//! (The replacement file is written by [`super::Compactor`].)
//!
//! Damaged rows are indexed like any other, by the `id` they name, and
//! read back as what [`super::damage`] says they mean; a line that names no
//! job stops the opening of the store.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::bounded::Bounded;
use super::damage;
use super::reader::{LatestPerId, Lines, line_at, open_existing, unreadable};
use super::row::{COLUMNS, Record, RowSummary, summary};
use super::{ResultsError, results_error};
use crate::job::key_hash as hash;

/// A results file, indexed by `id`.
pub struct Store {
    path: PathBuf,
    reader: Option<csv::Reader<Bounded<File>>>,
    /// (hash of id, byte offset of a row), sorted: every row of the file.
    index: Vec<(u64, u64)>,
    /// Index entries whose `id` a [`Store::get`] asked for; the rest are
    /// rows of jobs no longer in the manifest.
    claimed: Vec<bool>,
    row: csv::ByteRecord,
}

impl Store {
    /// Indexes the file at `path`; a missing file is an empty store. A torn
    /// last row (a crash mid-append) is ignored: it was never acknowledged.
    ///
    /// # Errors
    /// When the file cannot be read or is not a batchgen results file.
    pub fn open(path: &Path) -> Result<Store, ResultsError> {
        Store::open_after_run(path, None)
    }

    /// [`Store::open`] for a file known to be one compacted row per job up to
    /// byte `journal`, then the journal rows of one run. Journal rows update
    /// their job's entry instead of adding one, so the index stays at one
    /// entry per job however many attempts the run made.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_after_run(path: &Path, journal: Option<u64>) -> Result<Store, ResultsError> {
        let mut store = Store {
            path: path.to_owned(),
            reader: None,
            index: Vec::new(),
            claimed: Vec::new(),
            row: csv::ByteRecord::new(),
        };
        let Some(mut lines) = Lines::open(path)? else {
            return Ok(store);
        };
        // Length of the sorted prefix, once the journal begins.
        let mut sorted: Option<usize> = None;
        while let Some(row) = lines.next_row()? {
            let offset = row.position().map_or(0, csv::Position::byte);
            let h = hash(&row[0]);
            match journal {
                Some(start) if offset >= start => {
                    if sorted.is_none() {
                        store.index.sort_unstable();
                        sorted = Some(store.index.len());
                    }
                    store.update(h, offset, sorted.unwrap_or_default());
                }
                _ => store.index.push((h, offset)),
            }
        }
        store.index.sort_unstable();
        store.claimed = vec![false; store.index.len()];
        store.reader = Some(lines.into_reader());
        Ok(store)
    }

    /// Points the entry of the job with hash `h` at a newer row, when the
    /// sorted part of the index has exactly one entry with that hash (the
    /// job's own: every job of a run has its compacted row). Otherwise (a
    /// collision, or a row of no compacted job) the row gets an entry of its
    /// own: [`Store::get`] reads all entries of a hash and keeps the latest
    /// row of the right id, so an extra entry costs memory, never a row.
    fn update(&mut self, h: u64, offset: u64, sorted: usize) {
        let lo = lower_bound(&self.index[..sorted], h);
        let hi = lo + entries_of(&self.index[lo..sorted], h);
        if hi - lo == 1 {
            self.index[lo].1 = offset;
        } else {
            self.index.push((h, offset));
        }
    }

    /// Rows in the file.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The latest row for `id`, as written (a rerun settles it:
    /// [`Record::settled`]). A damaged latest row is an `unknown` record
    /// (see the damage table in [`super`]) that keeps the task ID of the job's latest row
    /// with one, when its own is not whole.
    ///
    /// # Errors
    /// When a row cannot be read back.
    pub fn get(&mut self, id: &str) -> Result<Option<Record>, ResultsError> {
        let h = hash(id.as_bytes());
        let lo = lower_bound(&self.index, h);
        let hi = lo + entries_of(&self.index[lo..], h);
        let mut rows: Vec<(u64, Record, bool)> = Vec::new();
        for i in lo..hi {
            let offset = self.index[i].1;
            let (record, damaged, _) = self.read_at(offset)?;
            if record.id != id {
                continue;
            }
            self.claimed[i] = true;
            rows.push((offset, record, damaged));
        }
        rows.sort_unstable_by_key(|r| r.0);
        let task = rows
            .iter()
            .rev()
            .find(|r| !r.1.task_id.is_empty())
            .map(|r| r.1.task_id.clone());
        let latest_task = rows.last().map(|r| r.1.task_id.clone()).unwrap_or_default();
        // Another task ID in an earlier row of this job (a resend after
        // `unknown`, a row another program appended): both tasks may exist
        // and be billed, and the rewrite would keep only the latest row, so
        // the earlier IDs are carried in the job's `error` cell, never
        // dropped in silence.
        let mut earlier: Vec<&str> = Vec::new();
        for (_, r, _) in &rows[..rows.len().saturating_sub(1)] {
            if !r.task_id.is_empty()
                && r.task_id != latest_task
                && !earlier.contains(&r.task_id.as_str())
            {
                earlier.push(&r.task_id);
            }
        }
        let also = (!latest_task.is_empty() && !earlier.is_empty()).then(|| {
            format!(
                "{EARLIER_TASKS}{} (an earlier row of this job had {}: both tasks may exist; collect fetches only {latest_task})",
                earlier.join(" "),
                if earlier.len() == 1 { "it" } else { "them" },
            )
        });
        Ok(rows.pop().map(|(_, mut latest, damaged)| {
            if damaged && latest.task_id.is_empty() {
                latest.task_id = task.unwrap_or_default();
            }
            if let Some(also) = also
                && !latest.error.contains(EARLIER_TASKS)
            {
                tracing::warn!(id = %latest.id, "{also}");
                latest.error = if latest.error.is_empty() {
                    also
                } else {
                    format!("{}; {also}", latest.error)
                };
            }
            latest
        }))
    }

    /// The latest row of every `id` no [`Store::get`] asked for, in file
    /// order: jobs that left the manifest. Kept, never dropped: they hold
    /// task IDs.
    ///
    /// # Errors
    /// When a row cannot be read back, or the latest row of one of these
    /// ids is damaged: it names no job of the manifest, so there is no
    /// telling which job it held (see the module docs of [`super`]).
    pub fn orphans(&mut self) -> Result<Vec<Record>, ResultsError> {
        let mut offsets: Vec<u64> = (0..self.index.len())
            .filter(|&i| !self.claimed[i])
            .map(|i| self.index[i].1)
            .collect();
        offsets.sort_unstable();
        let mut latest = LatestPerId::default();
        for offset in offsets {
            let (record, damaged, line) = self.read_at(offset)?;
            let damaged = damaged.then_some(line);
            latest.insert(record.id.clone(), (record.settled(), damaged));
        }
        let mut out = Vec::new();
        for (record, damaged) in latest.into_vec() {
            match damaged {
                Some(line) => return Err(damage::damaged_orphan(&self.path, line, &record.id)),
                None => out.push(record),
            }
        }
        Ok(out)
    }

    /// The row at `offset`: its record, whether it was damaged, its line.
    fn read_at(&mut self, offset: u64) -> Result<(Record, bool, u64), ResultsError> {
        let reader = self.reader.as_mut().expect("an indexed store has a reader");
        // Rows asked for in file order (the usual case: a compacted file
        // and a manifest in the same order) need no seek.
        if reader.position().byte() != offset {
            let mut position = csv::Position::new();
            position.set_byte(offset);
            reader
                .seek(position)
                .map_err(|e| results_error(&self.path, io::Error::other(e)))?;
        }
        let found = reader
            .read_byte_record(&mut self.row)
            .map_err(|e| unreadable(&self.path, &e))?;
        if !found {
            return Err(results_error(
                &self.path,
                io::Error::other("the file changed while it was read"),
            ));
        }
        let mut line = 0;
        let (path, row) = (&self.path, &self.row);
        let (record, damaged) = damage::record(row, || {
            line = line_at(path, row);
            line
        });
        Ok((record, damaged, line))
    }
}

/// The position of the first entry of `index` (sorted) with a hash of at
/// least `h`, as `partition_point` finds it. The hashes are uniform, so
/// that entry sits about `h / 2^64` of the way through: the search starts
/// there and widens until it brackets it. A binary search from the middle
/// of a million-entry index touches a dozen scattered cache lines (and
/// pages) per lookup, which made the lookups of a merge most of its cost;
/// this touches a few neighbouring ones.
fn lower_bound(index: &[(u64, u64)], h: u64) -> usize {
    let n = index.len();
    if n == 0 {
        return 0;
    }
    let guess = usize::try_from((u128::from(h) * n as u128) >> 64).unwrap_or(n - 1);
    let (mut lo, mut hi);
    let mut step = 1;
    if index[guess].0 < h {
        // The answer is after `guess`.
        lo = guess + 1;
        loop {
            let probe = guess.saturating_add(step);
            if probe >= n {
                hi = n;
                break;
            }
            if index[probe].0 >= h {
                hi = probe;
                break;
            }
            lo = probe + 1;
            step *= 2;
        }
    } else {
        // The answer is `guess` or before it.
        hi = guess;
        loop {
            let Some(probe) = guess.checked_sub(step) else {
                lo = 0;
                break;
            };
            if index[probe].0 < h {
                lo = probe + 1;
                break;
            }
            hi = probe;
            step *= 2;
        }
    }
    lo + index[lo..hi].partition_point(|e| e.0 < h)
}

/// How the `error` cell of a job with another task ID in an earlier row
/// begins (see [`Store::get`]); a cell that already says it is not said
/// twice.
const EARLIER_TASKS: &str = "also task ";

/// How many entries at the start of `index` have hash `h` (usually one).
fn entries_of(index: &[(u64, u64)], h: u64) -> usize {
    index.iter().take_while(|e| e.0 == h).count()
}

impl Store {
    /// Reads the file at `path` row by row, in file order, handing `visit`
    /// the columns a plan needs. No index and no serde: a rerun of a
    /// finished million-row manifest only needs to know that the file is
    /// what the manifest would produce, and reading it front to back is a
    /// fraction of indexing it and reading each row back.
    ///
    /// Each row is first checked to be one [`Store::get`] would read back
    /// without error (every column present and parsable), so a caller that
    /// trusts a scan sees what [`Store::get`] would have returned.
    ///
    /// Returns whether every row passed and `visit` (which returns `false`
    /// to stop) took them all. A missing, foreign, torn or unreadable file
    /// is `false`, not an error: the caller falls back to [`Store::open`],
    /// which says what is wrong.
    pub fn scan(path: &Path, mut visit: impl FnMut(RowSummary<'_>) -> bool) -> bool {
        let Ok(Some(file)) = open_existing(path) else {
            return false;
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(Bounded::new(file));
        match reader.byte_headers() {
            Ok(headers) if headers.iter().eq(COLUMNS.iter().map(|c| c.as_bytes())) => {}
            _ => return false,
        }
        let mut row = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut row) {
                Ok(true) => {}
                Ok(false) => return true,
                Err(_) => return false,
            }
            match summary(&row) {
                Some(summary) if visit(summary) => {}
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guided_search_finds_what_a_binary_search_finds() {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state
        };
        for n in [0usize, 1, 2, 3, 10, 1000] {
            let mut index: Vec<(u64, u64)> = (0..n).map(|i| (next(), i as u64)).collect();
            // Runs of equal hashes, and the extremes.
            if n >= 10 {
                index[3].0 = index[2].0;
                index[4].0 = index[2].0;
                index[0].0 = 0;
                index[1].0 = u64::MAX;
            }
            index.sort_unstable();
            let mut probes: Vec<u64> = index.iter().map(|e| e.0).collect();
            probes.extend([0, 1, u64::MAX, u64::MAX - 1, u64::MAX / 2]);
            probes.extend((0..100).map(|_| next()));
            for h in probes {
                let expected = index.partition_point(|e| e.0 < h);
                assert_eq!(lower_bound(&index, h), expected, "n={n} h={h}");
            }
        }
    }
}
