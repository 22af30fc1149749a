//! The first pass over a CSV of rows: every row validated, on two threads
//! when it can, then the duplicate keys confirmed.
//!
//! Separate from the reading of one CSV ([`super::from_csv`]) and from
//! what one row must pass ([`super::rows`]): this is the orchestration of a
//! whole file, the threads and the hand-offs between them, and the
//! re-read that confirms a duplicate key. The second pass, which hands the
//! jobs to a run, is [`super::jobs`].

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use super::from_csv::{CsvRows, no_header};
use super::open::open;
use super::{Diagnostic, ManifestError, Rows};
use crate::job::{Field, JobFields};

/// Validates every row of a CSV file (the first pass) into `rows`.
///
/// # Errors
/// When the file cannot be opened.
pub(super) fn read_csv(rows: &mut Rows, file: &Path) -> Result<(), ManifestError> {
    if validate(file, open(file)?, rows).is_err() {
        // No second thread to be had: the same pass on this one.
        if let Some(mut csv) = CsvRows::open(file, open(file)?, rows) {
            while let Some((line, fields, unread)) = csv.next_row(rows) {
                rows.row(file, line, fields, unread);
            }
        }
    }
    check_marks(rows, file)
}

/// Finds duplicate keys among the CSV marks: sort, compare neighbours,
/// and confirm each hash match by reading those rows' keys again.
fn check_marks(rows: &mut Rows, file: &Path) -> Result<(), ManifestError> {
    let mut marks = std::mem::take(&mut rows.marks);
    marks.sort_unstable();
    let suspects: HashSet<u64> = marks
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .flat_map(|w| [w[0].1, w[1].1])
        .collect();
    drop(marks);
    if suspects.is_empty() {
        return Ok(());
    }
    // Lines in file order, with their jobs, read again.
    let mut first_at: HashMap<crate::job::JobKey, u64> = HashMap::new();
    let mut scratch = Rows::checking(
        rows.defaults.clone(),
        rows.defaults_unread.clone(),
        rows.rules.clone(),
    );
    let source = open(file)?;
    if let Some(mut csv) = CsvRows::open(file, source, &mut scratch) {
        while let Some((line, fields, unread)) = csv.next_row(&mut scratch) {
            if !suspects.contains(&line) {
                continue;
            }
            let Some(job) = scratch.build(file, line, fields, unread) else {
                continue;
            };
            match first_at.get(&job.key) {
                Some(&first) => rows.duplicate(file, line, &job, first),
                None => {
                    first_at.insert(job.key.clone(), line);
                }
            }
        }
    }
    Ok(())
}

/// Rows handed from the reading thread to the checking one at a time: one
/// hand-off per batch, not per row.
const BATCH: usize = 256;

/// Batches read ahead of the checks; bounds the memory the reading thread
/// can run ahead by.
const BATCHES_AHEAD: usize = 4;

/// What goes from the reading thread to the checking one and back.
#[derive(Default)]
struct Batch {
    /// What the reading thread found, in file order.
    items: Vec<Item>,
    /// Going back: fields of checked rows, to hold later rows' cells. Their
    /// strings are allocated and freed by the reading thread only, which
    /// is cheaper than freeing them on another thread.
    used: Vec<JobFields>,
}

/// What the reading thread found. Nearly every item is a row, so the
/// rows' size is what a batch costs anyway; boxing them would allocate once
/// per row for the rare problem's sake.
#[expect(
    clippy::large_enum_variant,
    reason = "rows are nearly every item: boxing would allocate per row"
)]
enum Item {
    /// A problem with the file or one row's cells.
    Problem(Diagnostic),
    /// A row whose cells could be read, for the checks.
    Row(u64, JobFields, Vec<Field>),
    /// The file has no header row.
    NoHeader,
}

/// Validates every data row of a CSV (the first pass) on two threads: one
/// reads the file, splits records, notes their lines and reads the cells
/// into fields; the calling one applies the defaults and the rules, hashes
/// and counts. Each side is about half the work, and validating a
/// million-row manifest is what every run (and every rerun) waits for
/// first. Rows and problems arrive in file order, so `rows` ends exactly
/// as a one-thread pass would leave it.
///
/// # Errors
/// When the reading thread cannot be started; nothing was read then, and
/// the caller can read the file on its own thread instead.
fn validate<R: Read + Send>(file: &Path, source: R, rows: &mut Rows) -> std::io::Result<()> {
    let (full, read) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_AHEAD);
    let (done, empty) = std::sync::mpsc::channel::<Batch>();
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("manifest-reader".into())
            .spawn_scoped(scope, move || read_items(file, source, &full, &empty))?;
        for mut batch in read {
            for item in batch.items.drain(..) {
                match item {
                    Item::Problem(d) => rows.diagnostics.push(d),
                    Item::Row(line, fields, unread) => {
                        batch.used.extend(rows.row(file, line, fields, unread));
                    }
                    Item::NoHeader => no_header(file, rows),
                }
            }
            // Back for reuse; the reader may have finished already.
            let _ = done.send(batch);
        }
        Ok(())
    })
}

/// The reading side of [`validate`]: sends everything it finds to `full`
/// in batches, reusing the ones that come back on `empty`.
fn read_items<R: Read>(
    file: &Path,
    source: R,
    full: &std::sync::mpsc::SyncSender<Batch>,
    empty: &std::sync::mpsc::Receiver<Batch>,
) {
    // Collects this side's problems, which go out as items.
    let mut found = Rows::default();
    let mut batch = Batch::default();
    let mut csv = CsvRows::open_quiet(file, source, &mut found);
    batch
        .items
        .extend(found.diagnostics.drain(..).map(Item::Problem));
    if csv.is_none() {
        batch.items.push(Item::NoHeader);
    }
    while let Some(csv) = csv.as_mut() {
        let row = csv.next_row(&mut found);
        batch
            .items
            .extend(found.diagnostics.drain(..).map(Item::Problem));
        let Some((line, fields, unread)) = row else {
            break;
        };
        batch.items.push(Item::Row(line, fields, unread));
        if batch.items.len() >= BATCH {
            let mut next = empty.try_recv().unwrap_or_default();
            csv.used.append(&mut next.used);
            if full.send(std::mem::replace(&mut batch, next)).is_err() {
                return;
            }
        }
    }
    let _ = full.send(batch);
}
