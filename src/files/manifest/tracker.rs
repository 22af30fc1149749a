//! Where each CSV record starts, and where a quote opens: the bytes watched
//! on their way to the `csv` reader.
//!
//! The `csv` crate does not say which line a record starts on (its
//! `Position::line` misses blank lines and CRLF), nor that a quote was
//! never closed (it reads the rest of the file as one cell), nor stop a
//! record from growing without bound. [`Tracker`] follows the quoting as
//! the bytes go past and answers all three, so [`super::from_csv`] can name
//! lines. Separate from the reader because it is a byte-level state
//! machine with its own tests. (The results file's
//! `crate::files::results::Bounded` follows the same quoting for the size
//! cap alone: it needs no lines, no cell numbers and no BOM, and runs on
//! every read of a million-row results file, so it stays the lean one.)

use std::collections::VecDeque;
use std::io::Read;

/// Largest record read, in bytes. The longest valid row is the sum of the
/// fields' limits (the model catalogue's, `crate::job::models`: a 5000-character prompt
/// is up to 20 KB of UTF-8, twice that with every quote doubled, plus the
/// other fields): about 50 KB. 1 MiB is twenty times that, and bounds what
/// one record can cost in memory.
pub(super) const MAX_RECORD: u64 = 1 << 20;

/// Watches the bytes on their way to the csv reader and notes where each
/// record starts (byte offset and line) and where a quoted cell opens,
/// following the csv crate's rules for its default dialect: a `"` opens a
/// quoted cell only as a cell's first byte (elsewhere it is text, as in
/// `12" vinyl`), `""` inside one is a quote, and `,`, CR and LF end cells
/// outside quotes. csv's own `Position::line` is where the previous record
/// ended, which misses blank lines and the `\n` of a CRLF; this does not.
pub(super) struct Tracker<R> {
    inner: R,
    offset: u64,
    /// Line of the byte at `offset`, 1-based.
    line: u64,
    state: QuoteState,
    /// Starts of records not yet asked about: (byte offset, line).
    starts: VecDeque<(u64, u64)>,
    /// The latest opening quote: (byte offset, line).
    open_quote: Option<(u64, u64)>,
    /// Where the record being read began (byte offset, line), and which
    /// of its cells (0-based) is being read.
    record: (u64, u64),
    cell: usize,
    /// Set when a record grew past [`MAX_RECORD`]: its line and the cell
    /// it was in. Reading stops there with an error.
    pub(super) oversized: Option<(u64, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    RecordStart,
    CellStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

impl<R: Read> Tracker<R> {
    pub(super) fn new(inner: R) -> Tracker<R> {
        Tracker {
            inner,
            offset: 0,
            line: 1,
            state: QuoteState::RecordStart,
            starts: VecDeque::new(),
            open_quote: None,
            record: (0, 1),
            cell: 0,
            oversized: None,
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if self.offset == 0 && bytes.starts_with(b"\xef\xbb\xbf") {
            bytes = &bytes[3..];
            self.offset = 3;
        }
        let mut i = 0;
        while i < bytes.len() {
            // Inside a cell nothing changes until a byte that can end it:
            // jump there (memchr), counting the line breaks passed over.
            let stop = match self.state {
                QuoteState::Quoted => memchr::memchr(b'"', &bytes[i..]),
                QuoteState::Unquoted => memchr::memchr3(b',', b'\r', b'\n', &bytes[i..]),
                _ => Some(0),
            };
            let skip = stop.unwrap_or(bytes.len() - i);
            if skip > 0 {
                // A plain count: spans are a cell long, too short for
                // memchr's set-up to pay, and the loop vectorizes.
                let span = &bytes[i..i + skip];
                self.line += span.iter().filter(|&&b| b == b'\n').count() as u64;
                self.offset += skip as u64;
                i += skip;
                continue;
            }
            self.step(bytes[i]);
            i += 1;
        }
    }

    fn step(&mut self, b: u8) {
        if self.state == QuoteState::RecordStart && !matches!(b, b'\r' | b'\n') {
            self.starts.push_back((self.offset, self.line));
            self.record = (self.offset, self.line);
            self.cell = 0;
            self.state = QuoteState::CellStart;
        }
        self.state = match (self.state, b) {
            (QuoteState::Quoted, b'"') => QuoteState::QuoteInQuoted,
            (QuoteState::Quoted, _) => QuoteState::Quoted,
            (QuoteState::CellStart, b'"') => {
                self.open_quote = Some((self.offset, self.line));
                QuoteState::Quoted
            }
            (QuoteState::QuoteInQuoted, b'"') => QuoteState::Quoted,
            (_, b',') => {
                self.cell += 1;
                QuoteState::CellStart
            }
            (_, b'\r' | b'\n') => QuoteState::RecordStart,
            _ => QuoteState::Unquoted,
        };
        if b == b'\n' {
            self.line += 1;
        }
        self.offset += 1;
    }

    /// Line of the record csv reports at byte `offset` (which may sit just
    /// before the line break that ends the previous record).
    pub(super) fn line_of(&mut self, offset: u64) -> u64 {
        while self
            .starts
            .front()
            .is_some_and(|&(start, _)| start < offset)
        {
            self.starts.pop_front();
        }
        match self.starts.pop_front() {
            Some((_, line)) => line,
            None => self.line,
        }
    }

    /// Where a quoted cell still open at the end of the input began.
    pub(super) fn unterminated(&self) -> Option<(u64, u64)> {
        (self.state == QuoteState::Quoted)
            .then_some(self.open_quote)
            .flatten()
    }
}

impl<R: Read> Read for Tracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.oversized.is_some() {
            return Err(std::io::Error::other("a record over the size limit"));
        }
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]);
        if self.state != QuoteState::RecordStart
            && self.offset.saturating_sub(self.record.0) > MAX_RECORD
        {
            // The bytes of this read are not handed on: the record stops
            // growing here.
            self.oversized = Some((self.record.1, self.cell));
            return Err(std::io::Error::other("a record over the size limit"));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (byte offset, line) pairs.
    type At = (u64, u64);

    fn starts(text: &[u8]) -> (Vec<At>, Option<At>) {
        let mut t = Tracker::new(text);
        t.scan(text);
        (t.starts.iter().copied().collect(), t.unterminated())
    }

    #[test]
    fn record_starts_skip_blank_lines_and_crlf() {
        let (s, open) = starts(b"a,b\r\n\r\nc,\"x\ny\"\n\nd\n");
        assert_eq!(s, [(0, 1), (7, 3), (16, 6)]);
        assert_eq!(open, None);
        let (s, _) = starts(b"\xef\xbb\xbfid\n1\n");
        assert_eq!(s, [(3, 1), (6, 2)], "a BOM belongs to line 1");
    }

    #[test]
    fn unterminated_quotes() {
        let open = |text: &[u8]| starts(text).1;
        assert_eq!(open(b"a,\"b\"\"c\"\n\"d\ne\"\n"), None);
        assert_eq!(
            open(b"a,12\" vinyl\n"),
            None,
            "a quote inside a cell is text"
        );
        assert_eq!(open(b"\xef\xbb\xbf\"id\"\n"), None, "after a BOM");
        assert_eq!(open(b"a\r\nb,\"c\nd\n"), Some((5, 2)));
        assert_eq!(open(b"\""), Some((0, 1)));
    }
}
