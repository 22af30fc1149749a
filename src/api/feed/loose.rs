//! The loose types of the provider's clip objects, read leniently and
//! capped: ids, text fields, URLs, numbers and time stamps. Separate from
//! the parser ([`super`]) because these rules are about one JSON value
//! each, never about a body's shape or the completion rule.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use super::{MAX_LYRICS, MAX_TEXT};

/// A clip id goes into a CSV cell, file names and URLs: printable ASCII
/// only, at most 200 characters; `""` is no id (yet).
pub(super) fn id_text(v: &Value) -> Option<String> {
    let id = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let ok = !id.is_empty() && id.len() <= 200 && id.chars().all(|c| c.is_ascii_graphic());
    ok.then_some(id)
}

/// Text of a field: strings as they are, numbers and booleans written out,
/// anything else empty; one line, at most [`MAX_TEXT`] characters.
pub(super) fn text(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Number(n) => return n.to_string(),
        Value::Bool(b) => return b.to_string(),
        _ => return String::new(),
    };
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_TEXT)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Lyrics: a string's lines kept (`\r\n` and `\r` read as `\n`), tabs as
/// spaces, every other control character (NUL included) dropped, at most
/// [`MAX_LYRICS`] characters, trimmed; anything but a string is none.
pub(super) fn lyrics_text(v: &Value) -> String {
    let Value::String(s) = v else {
        return String::new();
    };
    s.replace("\r\n", "\n")
        .chars()
        .filter_map(|c| match c {
            '\n' | '\r' => Some('\n'),
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .take(MAX_LYRICS)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Only http(s) URLs are kept: a body cannot point a download at a file.
pub(super) fn url_text(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        s.to_owned()
    } else {
        String::new()
    }
}

/// A number, or a string holding one; finite only.
pub(super) fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// An RFC 3339 string, a zoneless `2024-09-05 13:09:01` (or with `T`,
/// fractions allowed) taken as UTC, or epoch milliseconds (number or string).
pub(super) fn timestamp(v: &Value) -> Option<DateTime<Utc>> {
    if let Value::String(s) = v {
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(t.with_timezone(&Utc));
        }
        for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
                return Some(t.and_utc());
            }
        }
    }
    let millis = number(v)?;
    if !(0.0..=1.0e15).contains(&millis) {
        return None;
    }
    DateTime::from_timestamp_millis(millis as i64)
}
