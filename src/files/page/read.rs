//! Reading a catalog for the page: the latest row of each clip, in the
//! order the clips first appear, streamed.
//!
//! # Why two passes
//! A catalog may carry a journal tail: rows appended after the sorted
//! body, each superseding an earlier row of the same `key` and
//! `clip_index`. The page wants manifest order (where a clip first
//! appears) with the newest content (the last row), and must not hold a
//! million rows to get it. So the first pass reads every row, keeps a
//! 64-bit hash of each clip's identity, and holds only the rows that
//! supersede an earlier one (the tail: a handful after a kill, none in a
//! compacted file). The second pass reads the same open file again and
//! yields, at each clip's first appearance, its last row.
//!
//! Memory is then one hash per clip (about 16 bytes with the table's
//! slack: 16 MB at 10^6 clips) plus the tail. Two identities with one hash
//! would show as one clip; for a million clips the odds are about 1 in
//! 3·10^7, and it changes what a page shows, never a file.
//!
//! # A file that changes meanwhile
//! `status --html` takes no lock: `collect` may rewrite the catalog (a
//! rename: the open file keeps the old content) or append to it (more
//! rows). The second pass reads the same open file and stops after the
//! rows the first pass counted, so the page shows one moment's catalog.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::PageError;
use crate::files::catalog::Row;
use crate::files::results::Bounded;

/// The catalog's rows, latest per clip, in the order of first appearance:
/// an iterator of `Result<Row, PageError>` (an error ends it).
pub struct LatestRows {
    path: PathBuf,
    records: csv::DeserializeRecordsIntoIter<Bounded<File>, Row>,
    /// Rows the first pass counted; the second reads no more.
    left: u64,
    /// Clips not yielded yet (a hash each).
    pending: HashSet<u64>,
    /// The last row of each clip that appears more than once.
    tail: HashMap<u64, Row>,
    failed: bool,
}

/// Opens the catalog at `path` and reads it once through (see the module
/// docs); the rows come from the returned iterator.
///
/// # Errors
/// The file cannot be opened or read, or is not a catalog (a row that does
/// not parse, a record over the bounded reader's limit).
pub fn latest_rows(path: &Path) -> Result<LatestRows, PageError> {
    let read_error = |source| PageError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut pending = HashSet::new();
    let mut tail = HashMap::new();
    let mut count = 0u64;
    let mut reader = csv::Reader::from_reader(Bounded::new(&file));
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(|e| not_catalog(path, &e))?;
        let id = identity(&row);
        if !pending.insert(id) {
            tail.insert(id, row);
        }
        count += 1;
    }
    drop(reader);
    let mut file = file;
    file.seek(SeekFrom::Start(0)).map_err(read_error)?;
    Ok(LatestRows {
        path: path.to_owned(),
        records: csv::Reader::from_reader(Bounded::new(file)).into_deserialize(),
        left: count,
        pending,
        tail,
        failed: false,
    })
}

impl std::fmt::Debug for LatestRows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatestRows")
            .field("path", &self.path)
            .field("left", &self.left)
            .field("tail", &self.tail.len())
            .finish_non_exhaustive()
    }
}

impl Iterator for LatestRows {
    type Item = Result<Row, PageError>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.left > 0 && !self.failed {
            self.left -= 1;
            let row = match self.records.next()? {
                Ok(row) => row,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(not_catalog(&self.path, &e)));
                }
            };
            let id = identity(&row);
            if self.pending.remove(&id) {
                return Some(Ok(self.tail.remove(&id).unwrap_or(row)));
            }
        }
        None
    }
}

/// A clip's identity: its job's key and its index.
fn identity(row: &Row) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&row.key, row.clip_index).hash(&mut hasher);
    hasher.finish()
}

fn not_catalog(path: &Path, e: &csv::Error) -> PageError {
    PageError::NotCatalog {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "key,task_id,clip_index,clip_id,title,style,model,status,duration,created_at,audio_url,image_url,file,file_bytes,image_file,error\n";

    fn line(key: &str, index: u32, title: &str, status: &str) -> String {
        format!("{key},t-{key},{index},c-{key}-{index},{title},,m,{status},,,,,,,,\n")
    }

    #[test]
    fn the_last_row_of_a_clip_wins_in_the_place_it_first_had() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.catalog.csv");
        let text = [
            HEADER.to_owned(),
            line("a", 1, "A1", "first"),
            line("a", 2, "A2", "first"),
            line("b", 1, "B1", "complete"),
            // The journal tail: later rows of earlier clips.
            line("a", 2, "A2 final", "complete"),
            line("a", 1, "A1 final", "failed"),
            line("a", 2, "A2 last", "complete"),
        ]
        .concat();
        std::fs::write(&path, text).unwrap();
        let rows: Vec<Row> = latest_rows(&path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let seen: Vec<(&str, u32, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.key.as_str(),
                    r.clip_index,
                    r.title.as_str(),
                    r.status.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("a", 1, "A1 final", "failed"),
                ("a", 2, "A2 last", "complete"),
                ("b", 1, "B1", "complete"),
            ]
        );
    }

    #[test]
    fn rows_appended_after_the_first_pass_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.catalog.csv");
        std::fs::write(
            &path,
            [HEADER.to_owned(), line("a", 1, "A", "new")].concat(),
        )
        .unwrap();
        let rows = latest_rows(&path).unwrap();
        let mut more = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut more, line("z", 1, "Z", "new").as_bytes()).unwrap();
        let keys: Vec<String> = rows.map(|r| r.unwrap().key).collect();
        assert_eq!(keys, ["a"]);
    }

    #[test]
    fn a_file_that_is_not_a_catalog_is_refused_before_any_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.catalog.csv");
        std::fs::write(&path, "id,prompt\nx,y\n").unwrap();
        let err = latest_rows(&path).unwrap_err();
        assert!(matches!(err, PageError::NotCatalog { .. }), "{err}");
        assert!(err.to_string().contains("c.catalog.csv"), "{err}");
        let missing = latest_rows(&dir.path().join("none.csv")).unwrap_err();
        assert!(matches!(missing, PageError::Read { .. }), "{missing}");
    }
}
