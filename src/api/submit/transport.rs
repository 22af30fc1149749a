//! The exchange under the JSON: how a request failed (before it left, or
//! after, which decides whether a task may exist), a body read up to
//! [`MAX_BODY`] and cut off when it stops early, a 3xx that is never
//! followed (worded by [`crate::api::http::redirect_location`]).

use crate::api::answer::HostError;
use reqwest::StatusCode;
use url::Url;

use crate::api::answer::SubmitError;
use crate::api::http::redirect_location;

/// Responses larger than this are cut off: a submit answer is a few hundred
/// bytes, so anything bigger is a misbehaving proxy or server.
pub(super) const MAX_BODY: usize = 64 * 1024;

/// A 3xx answer to a request for `url`, with where it pointed (relative
/// locations resolved, secrets masked).
pub(super) fn redirect(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    url: &Url,
) -> SubmitError {
    SubmitError::Host(HostError::Redirect {
        status: status.as_u16(),
        location: redirect_location(headers, url),
    })
}

/// Reads at most [`MAX_BODY`] bytes of the body.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY {
            break;
        }
    }
    Ok(body)
}

/// Why an answer's body stopped before its end, naming a timeout as one
/// (reqwest's own text, "error decoding response body", hides it).
pub(super) fn cut_off(e: &reqwest::Error) -> String {
    let why = if e.is_timeout() {
        "the whole answer did not arrive before the timeout"
    } else {
        "connection lost while reading the answer"
    };
    format!("{why} ({})", crate::util::chain::chain(e))
}

pub(super) fn classify_send_error(e: reqwest::Error) -> SubmitError {
    // reqwest reports a failed connect (refused, DNS, TLS handshake, connect
    // timeout) as is_connect: the request never left. Anything else after
    // that point (timeout, reset, closed) may have reached the server.
    let detail = crate::util::chain::chain(&e);
    if e.is_connect() {
        SubmitError::Connect(detail)
    } else if e.is_timeout() {
        SubmitError::Lost(format!("no answer before the timeout ({detail})"))
    } else {
        SubmitError::Lost(format!("connection lost ({detail})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::submit::ErrorClass;
    use reqwest::header::HeaderValue;

    #[test]
    fn redirects_name_where_they_point_without_secrets() {
        let url = Url::parse("http://127.0.0.1:9/api/generate").unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LOCATION,
            HeaderValue::from_static("https://user:pw@new.example/api/generate?token=abc"),
        );
        let e = redirect(StatusCode::MOVED_PERMANENTLY, &headers, &url);
        assert_eq!(
            e.to_string(),
            "HTTP 301 to https://new.example/api/generate?token=<redacted>: fix --base-url"
        );
        assert_eq!(e.class(), ErrorClass::Misdirected);
        assert_eq!(e.http_status(), Some(301));
        headers.insert(reqwest::header::LOCATION, HeaderValue::from_static("/v2/x"));
        let e = redirect(StatusCode::FOUND, &headers, &url);
        assert_eq!(
            e.to_string(),
            "HTTP 302 to http://127.0.0.1:9/v2/x: fix --base-url"
        );
        let e = redirect(StatusCode::SEE_OTHER, &Default::default(), &url);
        assert_eq!(e.to_string(), "HTTP 303 to no Location: fix --base-url");
    }
}
