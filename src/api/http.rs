//! What every HTTP client batchgen builds has in common: the user agent,
//! a connect timeout, the bearer header, how a path joins a base URL, and
//! how an answer's `Retry-After` and `Location` are read (submit and the
//! feed poll word them the same).
//!
//! Each client adds its deliberate differences on top of [`builder`], at
//! the place that knows why:
//!
//! | client | total timeout | redirects | where |
//! |---|---|---|---|
//! | submit, credits | the request timeout, whole exchange | never followed: a 3xx is refused as misdirected | [`crate::api::submit`] |
//! | feed polls | the request timeout, whole exchange | never followed | [`crate::api::poll`] |
//! | media downloads | between reads only: a long song may take longer than any one timeout | up to 5 hops, no `Referer` (a signed link's token must not leak) | `crate::engine::collect::download` |

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderValue, RETRY_AFTER};
use url::Url;

use crate::util::redact::Secret;

/// Sent with every request batchgen makes.
pub const USER_AGENT: &str = concat!("batchgen/", env!("CARGO_PKG_VERSION"));

/// Longest wait for a connection, whatever the request timeout: a host
/// that does not accept in 10 s is down, not slow.
pub const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(10);

/// A client builder with the user agent and the connect timeout set.
pub fn builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT_CAP))
}

/// The `Authorization` value for `key`, marked sensitive so that debug
/// output and HTTP/2 header compression leave it out.
///
/// Built once per client rather than formatted for every request: that
/// checks the key up front (a key with a character a header cannot carry
/// would otherwise be left off each request, and every row would come
/// back 401 "missing API key"), and leaves one copy of it in memory.
///
/// # Errors
/// When the key holds anything but visible ASCII (`http` would take bytes
/// above 127, but servers read such a header as no key at all).
pub fn bearer(key: &Secret) -> anyhow::Result<HeaderValue> {
    let invalid = || anyhow::anyhow!("the API key holds a character other than visible ASCII");
    if !key.expose().bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid());
    }
    let mut value =
        HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| invalid())?;
    value.set_sensitive(true);
    Ok(value)
}

/// Joins a path onto the base URL, keeping any path prefix the base has
/// (`https://host/prefix/` + `api/generate`).
pub fn endpoint(base: &Url, path: &str) -> Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    base.join(path)
        .expect("a relative path joins onto an http URL")
}

/// Longest `Retry-After` honoured. A server asking for an hour is more likely
/// wrong than right; the pool's own backoff takes over from there.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Where a 3xx answer to a request for `url` pointed, for a message: the
/// `Location` resolved against `url`, with secrets masked. The feed poller
/// words its redirects with it too, so both say the same thing.
pub fn redirect_location(headers: &reqwest::header::HeaderMap, url: &Url) -> String {
    match headers.get(reqwest::header::LOCATION) {
        None => "no Location".to_owned(),
        Some(value) => match value.to_str().ok().and_then(|v| url.join(v.trim()).ok()) {
            Some(to) => crate::util::redact::url(&to),
            None => "an unreadable Location".to_owned(),
        },
    }
}

/// A response's `Retry-After`, if present and readable (see
/// `parse_retry_after`).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// Parses `Retry-After`: delay-seconds or an HTTP date, clamped to
/// [`MAX_RETRY_AFTER`]. A date in the past means "now".
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return None;
        }
        Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }
}
