//! CSV rows: a header naming job fields, then one job per record.
//!
//! Used for `.csv` manifests and for the CSV a TOML manifest names with
//! `csv = "..."`. Parsing is the `csv` crate's (quoted commas, quotes and
//! newlines, CRLF, a UTF-8 BOM); this file maps columns to [`Field`]s, reads
//! cells as typed values and keeps going past bad records so every problem is
//! reported. Records are read as bytes so that invalid UTF-8 is a diagnostic
//! naming the row and column rather than an error that stops the reader.

use std::collections::HashMap;
use std::path::Path;

use super::{LineIndex, Rows, did_you_mean, suggest_field};
use crate::job::{Field, JobFields};

/// Reads every record of `bytes` (the contents of `file`) into `rows`.
pub(super) fn read(file: &Path, bytes: &[u8], rows: &mut Rows) {
    let index = LineIndex::new(bytes);
    // The csv crate reads a quote that is never closed as a cell running to
    // the end of the file, silently: a stray `"` would swallow every row after
    // it into one cell and leave a valid-looking, shorter manifest. Report it
    // and read only the records before it.
    let bytes = match unterminated_quote(bytes) {
        Some(Unterminated { record, quote }) => {
            let msg = "unterminated quoted cell: this `\"` is never closed, so the rest of the file would be one cell; close it or double it (`\"\"`)";
            rows.problem(file, index.line(quote), None, msg);
            if record == 0 {
                return;
            }
            &bytes[..record]
        }
        None => bytes,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Ragged records are our diagnostic, not the reader's fatal error.
        .flexible(true)
        .from_reader(bytes);
    let lines = Lines { bytes, index };
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {}
        Ok(false) => {
            let msg = "empty file: expected a header row naming the columns";
            rows.problem(file, 1, None, msg);
            return;
        }
        Err(e) => {
            rows.problem(file, lines.of(e.position()), None, e.to_string());
            return;
        }
    }
    let (columns, header_unread) = header(file, lines.of(record.position()), &record, rows);
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // Reading from memory, only a malformed stream gets here; the
                // reader cannot be trusted to resynchronise after it.
                rows.problem(file, lines.of(e.position()), None, e.to_string());
                break;
            }
        }
        let line = lines.of(record.position());
        if let Some((fields, mut unread)) = cells(file, line, &record, &columns, rows) {
            unread.extend_from_slice(&header_unread);
            rows.row(file, line, fields, unread);
        }
    }
}

/// Where a quoted cell that never closes begins.
struct Unterminated {
    /// Byte offset of the record holding it.
    record: usize,
    /// Byte offset of its opening `"`.
    quote: usize,
}

/// Finds a quoted cell still open at the end of `bytes`, following the csv
/// crate's rules for its default dialect: a `"` opens a quoted cell only as a
/// cell's first byte (elsewhere it is text, as in `12" vinyl`), `""` inside
/// one is a quote, and `,`, CR and LF end cells outside quotes.
fn unterminated_quote(bytes: &[u8]) -> Option<Unterminated> {
    enum State {
        CellStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let start = if bytes.starts_with(b"\xef\xbb\xbf") {
        3
    } else {
        0
    };
    let (mut state, mut record, mut quote) = (State::CellStart, 0, 0);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        state = match (state, b) {
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::CellStart, b'"') => {
                quote = i;
                State::Quoted
            }
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (_, b',') => State::CellStart,
            (_, b'\r' | b'\n') => {
                record = i + 1;
                State::CellStart
            }
            _ => State::Unquoted,
        };
    }
    matches!(state, State::Quoted).then_some(Unterminated { record, quote })
}

/// Record start lines. csv's `Position::line` is where the previous record
/// ended: it misses blank lines skipped before a record, and the `\n` of a
/// CRLF. So take the byte offset, step over line breaks, and count lines.
struct Lines<'a> {
    bytes: &'a [u8],
    index: LineIndex,
}

impl Lines<'_> {
    fn of(&self, position: Option<&csv::Position>) -> u64 {
        let mut at = position.map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX));
        while at < self.bytes.len() && matches!(self.bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        self.index.line(at)
    }
}

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
        if !field.is_bool() {
            // Verbatim: leading spaces and newlines in lyrics are content.
            fields.set_str(field, text.to_owned());
            continue;
        }
        match parse_bool(text) {
            Ok(Some(value)) => fields.set_bool(field, value),
            Ok(None) => {}
            Err(()) => {
                let msg = format!("{text:?} is not a boolean (use true/false, yes/no or 1/0)");
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
    let text = text.trim().to_ascii_lowercase();
    match text.as_str() {
        "" => Ok(None),
        "true" | "yes" | "1" => Ok(Some(true)),
        "false" | "no" | "0" => Ok(Some(false)),
        _ => Err(()),
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

    #[test]
    fn unterminated_quotes() {
        let open = |text: &[u8]| unterminated_quote(text).map(|u| (u.record, u.quote));
        assert_eq!(open(b"a,\"b\"\"c\"\n\"d\ne\"\n"), None);
        assert_eq!(
            open(b"a,12\" vinyl\n"),
            None,
            "a quote inside a cell is text"
        );
        assert_eq!(open(b"\xef\xbb\xbf\"id\"\n"), None, "after a BOM");
        assert_eq!(open(b"a\r\nb,\"c\nd\n"), Some((3, 5)));
        assert_eq!(open(b"\""), Some((0, 0)));
    }
}
