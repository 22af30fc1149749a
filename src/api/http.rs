//! What every HTTP client batchgen builds has in common: the user agent,
//! a connect timeout, the bearer header and how a path joins a base URL.
//!
//! Each client adds its deliberate differences on top of [`builder`], at
//! the place that knows why:
//!
//! | client | total timeout | redirects | where |
//! |---|---|---|---|
//! | submit, credits | the request timeout, whole exchange | never followed: a 3xx is refused as misdirected | [`crate::api::submit`] |
//! | feed polls | the request timeout, whole exchange | never followed | [`crate::api::poll`] |
//! | media downloads | between reads only: a long song may take longer than any one timeout | up to 5 hops, no `Referer` (a signed link's token must not leak) | `crate::engine::collect::download` |

use std::time::Duration;

use reqwest::header::HeaderValue;
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
