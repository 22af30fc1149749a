//! Reading a results or catalog file in bounded memory.
//!
//! The `csv` crate holds a whole record in memory, and one unclosed quote
//! makes the rest of the file one record: a 1 GB file of garbage (a disk
//! image copied over the results file, a cut-off copy ending in `"`) would
//! cost 1 GB and minutes before any diagnostic. [`Bounded`] follows the CSV
//! quoting as the bytes go past (the `csv` crate's rules: a quote opens a
//! quoted cell only at a cell's start, `""` inside one is a quote) and
//! fails the read once one record passes [`MAX_ROW`]; the longest row
//! batchgen writes is a few KB. [`Bounded::oversized`] then says where that
//! record began, so the caller can name the line.
//!
//! The manifest's CSV reader follows the same quoting in its own tracker
//! (`crate::files::manifest`'s `tracker`), on purpose apart: that one also
//! counts lines, cells, opening quotes and a BOM for its diagnostics; this
//! one needs only the size, on every read of a million-row results file.

use std::io::{self, Read, Seek, SeekFrom};

/// Longest record read: 1 MiB, as for a manifest's CSV.
pub const MAX_ROW: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    RecordStart,
    CellStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// A reader that fails once a CSV record grows past [`MAX_ROW`].
#[derive(Debug)]
pub struct Bounded<R> {
    inner: R,
    offset: u64,
    state: State,
    /// Byte offset where the record being read began.
    record: u64,
    /// Set once a record grew too long: the offset it began at.
    oversized: Option<u64>,
}

impl<R> Bounded<R> {
    pub fn new(inner: R) -> Bounded<R> {
        Bounded {
            inner,
            offset: 0,
            state: State::RecordStart,
            record: 0,
            oversized: None,
        }
    }

    /// The byte offset of the record that grew past [`MAX_ROW`], if one did.
    pub fn oversized(&self) -> Option<u64> {
        self.oversized
    }

    fn scan(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            // Inside a cell nothing changes until a byte that can end it.
            let skip = match self.state {
                State::Quoted => memchr::memchr(b'"', &bytes[i..]),
                State::Unquoted => memchr::memchr3(b',', b'\r', b'\n', &bytes[i..]),
                _ => Some(0),
            }
            .unwrap_or(bytes.len() - i);
            if skip > 0 {
                i += skip;
                continue;
            }
            let b = bytes[i];
            let at = self.offset + i as u64;
            if self.state == State::RecordStart {
                if matches!(b, b'\r' | b'\n') {
                    i += 1;
                    continue;
                }
                self.record = at;
                self.state = State::CellStart;
            }
            self.state = match (self.state, b) {
                (State::CellStart, b'"') | (State::QuoteInQuoted, b'"') => State::Quoted,
                (State::Quoted, b'"') => State::QuoteInQuoted,
                (State::Quoted, _) => State::Quoted,
                (_, b',') => State::CellStart,
                (_, b'\r' | b'\n') => State::RecordStart,
                _ => State::Unquoted,
            };
            i += 1;
        }
        self.offset += bytes.len() as u64;
    }
}

fn too_long() -> io::Error {
    io::Error::other(format!("a row over {MAX_ROW} bytes"))
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.oversized.is_some() {
            return Err(too_long());
        }
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]);
        if self.state != State::RecordStart && self.offset.saturating_sub(self.record) > MAX_ROW {
            // These bytes are not handed on: the record stops growing.
            self.oversized = Some(self.record);
            return Err(too_long());
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for Bounded<R> {
    /// A seek lands at the start of a record (the store seeks to rows it
    /// indexed), so the quoting starts over there.
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let at = self.inner.seek(to)?;
        self.offset = at;
        self.record = at;
        self.state = State::RecordStart;
        self.oversized = None;
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> (io::Result<usize>, Option<u64>) {
        let mut r = Bounded::new(bytes);
        let mut sink = Vec::new();
        let got = r.read_to_end(&mut sink);
        (got, r.oversized())
    }

    #[test]
    fn long_files_of_short_rows_pass_and_one_long_record_stops() {
        let row = b"a,2,\"x\"\"y\nz\",\"\",submitted\r\n";
        let many: Vec<u8> = row
            .iter()
            .copied()
            .cycle()
            .take(row.len() * 100_000)
            .collect();
        assert!(read_all(&many).0.is_ok());
        // An unclosed quote swallows everything after it.
        let mut open = b"id,line\nok,1\nbad,\"".to_vec();
        open.extend(many.iter().filter(|&&b| b != b'"'));
        let (got, at) = read_all(&open);
        assert!(got.is_err());
        assert_eq!(at, Some(13));
        // A quote inside an unquoted cell is a plain character, as csv reads it.
        let mut stray = Vec::new();
        for _ in 0..100_000 {
            stray.extend_from_slice(b"a,b\"c,d\n");
        }
        assert!(read_all(&stray).0.is_ok());
        // One long line without any quote.
        let (got, at) = read_all(&vec![b'x'; (MAX_ROW + 10) as usize]);
        assert!(got.is_err() && at == Some(0));
    }
}
