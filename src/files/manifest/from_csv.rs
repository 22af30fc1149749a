//! CSV rows: a header naming job fields, then one job per record.
//!
//! Used for `.csv` manifests and for the CSV a TOML manifest names with
//! `csv = "..."`. Parsing is the `csv` crate's (quoted commas, quotes and
//! newlines, CRLF, a UTF-8 BOM); this file maps columns to [`Field`]s, reads
//! cells as typed values and keeps going past bad records so every problem is
//! reported. Records are read as bytes so that invalid UTF-8 is a diagnostic
//! naming the row and column rather than an error that stops the reader.
//!
//! A record is read whole into memory, so its size is capped
//! ([`MAX_RECORD`]): a 600 MB cell (an unclosed quote, a file that is not
//! a manifest) is a `FILE:LINE: field:` diagnostic after reading 1 MiB,
//! not an out-of-memory abort after reading 600.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::tracker::{MAX_RECORD, Tracker};
use super::{Rows, did_you_mean, quoted, suggest_field};
use crate::job::{Field, JobFields, Kind, Value};

/// A CSV file's data rows, read one at a time from a stream: the file is
/// never held in memory, so a million-row manifest costs what one row costs.
pub(super) struct CsvRows<R: Read> {
    file: PathBuf,
    reader: csv::Reader<Tracker<R>>,
    columns: Vec<Option<Field>>,
    header_unread: Vec<Field>,
    /// One record read ahead: only at the end of the file is it known whether
    /// the last record swallowed an unterminated quote.
    ahead: Option<Ahead>,
    /// The next read would return nothing more.
    done: bool,
    /// A record already handed out and done with, read into again so that
    /// reading a row does not allocate.
    spare: Option<csv::ByteRecord>,
    /// Fields of rows done with, whose strings hold later rows' cells.
    pub(super) used: Vec<JobFields>,
}

/// A record read but not yet returned.
struct Ahead {
    line: u64,
    offset: u64,
    record: csv::ByteRecord,
}

impl<R: Read> CsvRows<R> {
    /// Reads the header row. `None` when there is no usable header (the
    /// problem is already in `rows`).
    pub(super) fn open(file: &Path, source: R, rows: &mut Rows) -> Option<CsvRows<R>> {
        let this = CsvRows::open_quiet(file, source, rows);
        if this.is_none() {
            no_header(file, rows);
        }
        this
    }

    /// [`CsvRows::open`] without the diagnostic for a file with no header
    /// at all, which depends on what else is wrong (see [`no_header`]).
    pub(super) fn open_quiet(file: &Path, source: R, rows: &mut Rows) -> Option<CsvRows<R>> {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            // Ragged records are our diagnostic, not the reader's fatal error.
            .flexible(true)
            .from_reader(Tracker::new(source));
        let mut this = CsvRows {
            file: file.to_path_buf(),
            reader,
            columns: Vec::new(),
            header_unread: Vec::new(),
            ahead: None,
            done: false,
            spare: None,
            used: Vec::new(),
        };
        let head = this.take(rows)?;
        let (columns, unread) = header(file, head.line, &head.record, rows);
        this.columns = columns;
        this.header_unread = unread;
        this.spare = Some(head.record);
        Some(this)
    }

    /// The next data row: its line, its fields, and the fields whose cell
    /// could not be read. Problems go to `rows`; a ragged record is reported
    /// and skipped.
    pub(super) fn next_row(&mut self, rows: &mut Rows) -> Option<(u64, JobFields, Vec<Field>)> {
        loop {
            let row = self.take(rows)?;
            let file = self.file.as_path();
            let reuse = self.used.pop().unwrap_or_default();
            let cells = cells(file, row.line, &row.record, &self.columns, reuse, rows);
            self.spare = Some(row.record);
            if let Some((fields, mut unread)) = cells {
                unread.extend_from_slice(&self.header_unread);
                return Some((row.line, fields, unread));
            }
        }
    }

    /// The next record, unless it is the one an unterminated quote swallowed
    /// (the csv crate reads such a quote as a cell running to the end of the
    /// file, silently: a stray `"` would turn the rest of the file into one
    /// cell and leave a valid-looking, shorter manifest).
    fn take(&mut self, rows: &mut Rows) -> Option<Ahead> {
        let current = match self.ahead.take() {
            Some(a) => a,
            None => match self.read_one(rows) {
                Some(a) => a,
                None => {
                    self.report_oversized(rows);
                    return None;
                }
            },
        };
        self.ahead = self.read_one(rows);
        if self.ahead.is_none()
            && self.reader.get_ref().oversized.is_none()
            && let Some((offset, line)) = self.reader.get_ref().unterminated()
        {
            let msg = "unterminated quoted cell: this `\"` is never closed, so the rest of the file would be one cell; close it or double it (`\"\"`)";
            rows.problem(&self.file, line, None, msg);
            if offset >= current.offset {
                return None;
            }
        }
        Some(current)
    }

    /// The diagnostic for a record over [`MAX_RECORD`], once (reading
    /// stopped there), naming the column it was in when the header is known.
    fn report_oversized(&mut self, rows: &mut Rows) {
        let Some((line, cell)) = self.reader.get_mut().oversized.take() else {
            return;
        };
        let field = self.columns.get(cell).copied().flatten();
        let msg = format!(
            "this row is over {MAX_RECORD} bytes, far more than a valid row can hold (an unclosed quote, or not a manifest); nothing after it was read"
        );
        rows.problem(&self.file, line, field.map(Field::name), msg);
    }

    fn read_one(&mut self, rows: &mut Rows) -> Option<Ahead> {
        if self.done {
            return None;
        }
        let mut record = self.spare.take().unwrap_or_default();
        match self.reader.read_byte_record(&mut record) {
            Ok(true) => {
                let offset = record.position().map_or(0, csv::Position::byte);
                let line = self.reader.get_mut().line_of(offset);
                Some(Ahead {
                    line,
                    offset,
                    record,
                })
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                // An I/O error mid-file: the reader cannot be trusted to
                // resynchronise after it.
                self.done = true;
                if self.reader.get_ref().oversized.is_some() {
                    // Reported by `take` once the columns are known.
                    return None;
                }
                let offset = e.position().map_or(0, csv::Position::byte);
                let line = self.reader.get_mut().line_of(offset);
                rows.problem(&self.file, line, None, e.to_string());
                None
            }
        }
    }
}

/// A file with no header row is reported as empty only when nothing else
/// was found wrong: an unterminated quote or a read error also leaves no
/// header, and is the real problem.
pub(super) fn no_header(file: &Path, rows: &mut Rows) {
    if rows.diagnostics.is_empty() {
        let msg = "empty file: expected a header row naming the columns";
        rows.problem(file, 1, None, msg);
    }
}

/// Largest string kept to hold a later row's cell: a hostile row's huge
/// cell is freed, not carried along (and held) for the rest of the file.
const MAX_REUSED: usize = 16 * 1024;

/// Maps each header cell to its field; `None` for a column that names none
/// (each such column gets a diagnostic). Also returns the fields every row
/// may be missing because of a bad column: the one a misspelt name suggests,
/// or all of them when there is no telling.
fn header(
    file: &Path,
    line: u64,
    record: &csv::ByteRecord,
    rows: &mut Rows,
) -> (Vec<Option<Field>>, Vec<Field>) {
    let mut unread = Vec::new();
    let mut first_at: HashMap<Field, usize> = HashMap::new();
    let mut columns = Vec::with_capacity(record.len());
    for (i, cell) in record.iter().enumerate() {
        let column = i + 1;
        let Ok(name) = std::str::from_utf8(cell) else {
            let msg =
                format!("column {column}: the name is not valid UTF-8; save the file as UTF-8");
            rows.problem(file, line, None, msg);
            unread.extend(Field::ALL);
            columns.push(None);
            continue;
        };
        let name = name.trim();
        let field = match Field::from_name(name) {
            _ if name.is_empty() => {
                let msg =
                    format!("column {column} has no name; the header row must name every column");
                rows.problem(file, line, None, msg);
                unread.extend(Field::ALL);
                None
            }
            Some(field) => match first_at.get(&field) {
                Some(&first) => {
                    let msg = format!("duplicate column (also column {first})");
                    rows.problem(file, line, Some(name), msg);
                    unread.push(field);
                    None
                }
                None => {
                    first_at.insert(field, column);
                    Some(field)
                }
            },
            None => {
                rows.problem(file, line, Some(name), unknown_column(name));
                match suggest_field(name) {
                    Some(meant) => unread.push(meant),
                    None => unread.extend(Field::ALL),
                }
                None
            }
        };
        columns.push(field);
    }
    (columns, unread)
}

fn unknown_column(name: &str) -> String {
    match suggest_field(name) {
        Some(field) => format!("unknown column{}", did_you_mean(Some(field.name()))),
        None => {
            let known: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
            format!("unknown column; columns are: {}", known.join(", "))
        }
    }
}

/// Reads one record's cells, with the fields whose cell could not be read;
/// `None` for a ragged record. An empty cell leaves its field unset.
fn cells(
    file: &Path,
    line: u64,
    record: &csv::ByteRecord,
    columns: &[Option<Field>],
    mut reuse: JobFields,
    rows: &mut Rows,
) -> Option<(JobFields, Vec<Field>)> {
    if record.len() != columns.len() {
        let msg = format!(
            "has {} field{}, the header has {}",
            record.len(),
            if record.len() == 1 { "" } else { "s" },
            columns.len()
        );
        rows.problem(file, line, None, msg);
        return None;
    }
    let mut fields = JobFields::default();
    let mut unread = Vec::new();
    for (i, (cell, column)) in record.iter().zip(columns).enumerate() {
        let Some(field) = *column else { continue };
        if cell.is_empty() {
            continue;
        }
        let text = match std::str::from_utf8(cell) {
            Ok(text) => text,
            Err(e) => {
                let msg = format!(
                    "column {}: invalid UTF-8 at byte {} of the cell; save the file as UTF-8",
                    i + 1,
                    e.valid_up_to() + 1
                );
                rows.problem(file, line, Some(field.name()), msg);
                unread.push(field);
                continue;
            }
        };
        let value = match field.kind() {
            Kind::Text => {
                // Verbatim: leading spaces and newlines in lyrics are content.
                let mut value = reuse
                    .take_str(field)
                    .filter(|s| s.capacity() <= MAX_REUSED)
                    .unwrap_or_default();
                value.clear();
                value.push_str(text);
                fields.set_str(field, value);
                continue;
            }
            Kind::Bool => match parse_bool(text) {
                Ok(Some(value)) => Ok(Value::Bool(value)),
                Ok(None) => continue,
                Err(()) => Err(format!(
                    "{} is not a boolean (use true/false, yes/no or 1/0)",
                    quoted(text)
                )),
            },
            // A cell of spaces is as empty as an empty one.
            _ if text.trim().is_empty() => continue,
            Kind::Weight => text
                .parse()
                .map(Value::Weight)
                .map_err(|e| format!("{} {e}", quoted(text))),
            Kind::Gender => text
                .parse()
                .map(Value::Gender)
                .map_err(|e| format!("{} {e}", quoted(text))),
            Kind::Duration => crate::job::parse_duration_limit(text).map(Value::Duration),
        };
        match value {
            Ok(value) => fields.set(field, value),
            Err(msg) => {
                rows.problem(file, line, Some(field.name()), msg);
                unread.push(field);
            }
        }
    }
    Some((fields, unread))
}

/// Spreadsheets write booleans many ways; accept the common ones. A blank
/// cell is "not set".
fn parse_bool(text: &str) -> Result<Option<bool>, ()> {
    let text = text.trim();
    let is = |word: &str| text.eq_ignore_ascii_case(word);
    if text.is_empty() {
        Ok(None)
    } else if is("true") || is("yes") || text == "1" {
        Ok(Some(true))
    } else if is("false") || is("no") || text == "0" {
        Ok(Some(false))
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        assert_eq!(parse_bool(" YES "), Ok(Some(true)));
        assert_eq!(parse_bool("0"), Ok(Some(false)));
        assert_eq!(parse_bool("  "), Ok(None));
        assert_eq!(parse_bool("maybe"), Err(()));
    }
}
