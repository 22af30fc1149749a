//! The latest row of each job, streamed: what `collect` and `receive`
//! read the results file as, in memory that does not hold it.
//!
//! [`super::latest()`] keeps every job's row; at a million rows that is
//! hundreds of megabytes. [`LatestRows`] reads the file in passes
//! instead. The first keeps a 64-bit hash and the row number of each row
//! (16 bytes a row, then 16 a job: they become the [`Ranks`]), and so
//! learns which hashes occur more than once: a job written again (the
//! journal of a run) or, rarely, two keys of one hash. Only those rows are
//! read again, exactly, by `id` ([`super::reader::LatestPerId`]'s rule:
//! the latest row, at the place of the first). [`LatestRows::each`] then
//! streams the file once more, handing over each job's latest row at its
//! first place. A compacted results file (the state every run leaves) has
//! no repeated job, so that second pass is skipped and nothing but the
//! ranks is kept.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::ranks::Ranks;
use super::reader::{LatestPerId, each_record_until};
use super::{Record, ResultsError};
use crate::job::key_hash;

/// A results file's jobs, to be streamed in order by [`LatestRows::each`].
#[derive(Debug)]
pub struct LatestRows {
    path: PathBuf,
    ranks: Ranks,
    /// Hashes of more than one row.
    repeated: HashSet<u64>,
    /// The latest row of each job with a repeated hash, by `id`.
    latest: HashMap<String, Record>,
}

impl LatestRows {
    /// Reads the file at `path` (a missing file has no jobs).
    ///
    /// # Errors
    /// As [`super::read`]: unreadable, not a results file, or a line that
    /// names no job.
    pub fn read(path: &Path) -> Result<LatestRows, ResultsError> {
        let mut pairs: Vec<(u64, u32)> = Vec::new();
        each_record_until(
            path,
            |_| false,
            |record| {
                let seq = u32::try_from(pairs.len()).unwrap_or(u32::MAX - 1);
                pairs.push((key_hash(record.id.as_bytes()), seq));
                ControlFlow::Continue(())
            },
        )?;
        pairs.sort_unstable();
        let repeated: HashSet<u64> = pairs
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[0].0)
            .collect();
        let ranks = Ranks::from_pairs(&mut pairs);
        drop(pairs);
        let mut latest = LatestPerId::default();
        if !repeated.is_empty() {
            let repeats = |id: &str| repeated.contains(&key_hash(id.as_bytes()));
            each_record_until(path, repeats, |record| {
                if repeats(&record.id) {
                    latest.insert(record.id.clone(), record.settled());
                }
                ControlFlow::Continue(())
            })?;
        }
        Ok(LatestRows {
            path: path.to_owned(),
            ranks,
            repeated,
            latest: latest.into_map(),
        })
    }

    /// Where each job sorts: the row number of its first row.
    pub fn ranks(&self) -> &Ranks {
        &self.ranks
    }

    /// Takes the ranks (for a catalog that outlives this reader).
    pub fn take_ranks(&mut self) -> Ranks {
        std::mem::take(&mut self.ranks)
    }

    /// Jobs in the file.
    pub fn jobs(&self) -> usize {
        self.ranks.len()
    }

    /// Reads the file again and hands `visit` each job's latest row (as a
    /// rerun sees it: [`Record::settled`]) with its place, in results
    /// order, until `visit` breaks.
    ///
    /// # Errors
    /// As [`LatestRows::read`]. A file rewritten since (a run compacting
    /// it) is read as it is now; a job it adds comes with its place.
    pub fn each(
        &self,
        mut visit: impl FnMut(u32, Record) -> ControlFlow<()>,
    ) -> Result<(), ResultsError> {
        let mut seq: u32 = 0;
        let mut given: HashSet<&str> = HashSet::new();
        each_record_until(
            &self.path,
            |_| false,
            |record| {
                let place = seq;
                seq = seq.saturating_add(1);
                let h = key_hash(record.id.as_bytes());
                if !self.repeated.contains(&h) {
                    return visit(place, record.settled());
                }
                match self.latest.get_key_value(&record.id) {
                    Some((id, latest)) if given.insert(id.as_str()) => visit(place, latest.clone()),
                    Some(_) => ControlFlow::Continue(()),
                    // Not there when the file was read: as written.
                    None => visit(place, record.settled()),
                }
            },
        )
    }
}
