//! The time stamps batchgen writes: RFC 3339, UTC, milliseconds.

/// Now, as the results file and the catalog write it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
