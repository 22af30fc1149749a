//! Telling a damaged results row from a good one, and what a damaged row
//! means: the table in the [module docs](super) made code. Shared by
//! [`super::read`] and [`super::Store`], so the two readers cannot disagree.

use super::{COLUMNS, Record, Status};

/// What one line of a results file (after its header) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// Nothing to read: a blank line, a run of NUL bytes, the header again.
    Skip(&'static str),
    /// A row whose `id` can be read (it may still be damaged: see
    /// [`record`]).
    Names,
    /// A line that names no job: the run must stop.
    NamesNoJob(&'static str),
}

/// Classifies a line of a results file after its header.
pub(super) fn classify(row: &csv::ByteRecord) -> Line {
    if row
        .iter()
        .all(|f| f.iter().all(|&b| b == 0 || b.is_ascii_whitespace()))
    {
        return Line::Skip("a line of only spaces or NUL bytes");
    }
    if row.iter().eq(COLUMNS.iter().map(|c| c.as_bytes())) {
        return Line::Skip("the header, repeated");
    }
    let good = super::store::parse(row).is_some();
    if !good && row.iter().any(|f| f.contains(&b'\n') || f.contains(&b'\r')) {
        return Line::NamesNoJob(
            "a damaged row spanning several lines: a quote in it is not closed where a row would close it, so the rows after it may be inside it",
        );
    }
    if row.len() < 2 {
        return Line::NamesNoJob("no comma after its first field, so the id may be cut short");
    }
    match std::str::from_utf8(&row[0]) {
        Ok(id) if id.trim().is_empty() => Line::NamesNoJob("its id is empty"),
        Ok(id) if id.chars().any(char::is_control) => {
            Line::NamesNoJob("its id holds control characters")
        }
        Ok(_) => Line::Names,
        Err(_) => Line::NamesNoJob("its id is not UTF-8"),
    }
}

/// The record a [`Line::Names`] row stands for, and whether it was
/// damaged. A damaged row settles its job as `unknown`: it may have been
/// sent, and damage is never a reason to send it again. Its task ID is kept
/// when a comma after it shows it whole (a cut-short one would be wrong);
/// the caller may fill in the job's earlier one.
/// `line` is called only for a damaged row, to name it.
pub(super) fn record(row: &csv::ByteRecord, line: impl FnOnce() -> u64) -> (Record, bool) {
    if let Some(record) = super::store::parse(row) {
        return (record, false);
    }
    let line = line();
    let text = |i: usize| {
        row.get(i)
            .and_then(|f| std::str::from_utf8(f).ok())
            .filter(|t| !t.chars().any(char::is_control))
            .unwrap_or_default()
            .to_owned()
    };
    let why = if row.len() == COLUMNS.len() {
        "a value that does not read back".to_owned()
    } else {
        format!("{} of the {} columns", row.len(), COLUMNS.len())
    };
    let record = Record {
        id: text(0),
        line: 0,
        task_id: if row.len() > 3 {
            super::cell::unescape(&text(2)).to_owned()
        } else {
            String::new()
        },
        status: Status::Unknown,
        attempts: row
            .get(4)
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        http_status: None,
        error: format!(
            "line {line} of the results file was damaged ({why}); this job may have been sent: check the provider's dashboard, then rerun with --retry-unknown to send it again"
        ),
        submitted_at: String::new(),
        fingerprint: String::new(),
    };
    (record, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(fields: &[&[u8]]) -> csv::ByteRecord {
        fields.iter().copied().collect()
    }

    #[test]
    fn every_kind_of_line_is_classified() {
        let good: &[&[u8]] = &[b"a", b"2", b"t-1", b"submitted", b"1", b"", b"", b"", b"f"];
        assert_eq!(classify(&row(good)), Line::Names);
        assert!(!record(&row(good), || 5).1);
        for (fields, expect) in [
            (&[&b"  "[..]][..], "skip"),
            (&[b"\0\0\0", b"\0"], "skip"),
            (
                &COLUMNS.iter().map(|c| c.as_bytes()).collect::<Vec<_>>()[..],
                "skip",
            ),
            (&[b"job-1"], "stop"),
            (&[b"", b"2"], "stop"),
            (&[b"\xff", b"2"], "stop"),
            (&[b"a\x1b", b"2"], "stop"),
            (
                &[
                    b"a",
                    b"2",
                    b"",
                    b"failed",
                    b"1",
                    b"",
                    b"said\nc,3,t-3,submitted",
                ],
                "stop",
            ),
            (&[b"a", b"2", b"", b"sen"], "names"),
            (
                &[b"a", b"2", b"t-1", b"Submitted", b"1", b"", b"", b"", b"f"],
                "names",
            ),
        ] {
            let got = match classify(&row(fields)) {
                Line::Skip(_) => "skip",
                Line::Names => "names",
                Line::NamesNoJob(_) => "stop",
            };
            assert_eq!(got, expect, "{fields:?}");
        }
    }

    #[test]
    fn a_damaged_row_is_unknown_and_keeps_only_a_whole_task_id() {
        let (r, damaged) = record(&row(&[b"a", b"2", b"t-12", b"submi"]), || 7);
        assert!(damaged);
        assert_eq!((r.id.as_str(), r.status), ("a", Status::Unknown));
        assert_eq!(r.task_id, "t-12", "a comma after it: whole");
        assert!(r.error.contains("line 7") && r.error.contains("--retry-unknown"));
        let (r, _) = record(&row(&[b"a", b"2", b"t-1"]), || 7);
        assert_eq!(r.task_id, "", "cut inside the task ID: not kept");
    }
}
