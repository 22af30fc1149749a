//! The API key check every API route makes: which key a request presents
//! and whether it is the sandbox's.
//!
//! Its own module because the generate path and the feeds both check the
//! key, the same way, and neither should import the other for it. A key
//! is presented as `Authorization: Bearer <key>` or, as the legacy docs
//! show, as a `token` field of a JSON body; the header wins.

use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use super::Host;
use super::reply::ApiError;

impl Host {
    /// Checks the key of a request without a body (feeds, credits); the
    /// error is the 401 answer.
    pub(super) fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        self.check_key(presented_key(headers, None))
            .map_err(|message| ApiError(StatusCode::UNAUTHORIZED, message))
    }

    /// The 401 message for a presented key, if it is not the right one.
    pub(super) fn check_key(&self, presented: Option<&str>) -> Result<(), &'static str> {
        match presented {
            None => Err("missing API key: send Authorization: Bearer <key>"),
            Some(key) if key != self.key => Err("invalid API key"),
            Some(_) => Ok(()),
        }
    }
}

/// The key the request presents: the bearer token if there is an
/// `Authorization` header, else the legacy `token` field of the body.
pub(super) fn presented_key<'a>(
    headers: &'a HeaderMap,
    body: Option<&'a Map<String, Value>>,
) -> Option<&'a str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, key) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| key.trim())
            .filter(|k| !k.is_empty());
    }
    body?.get("token")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    #[test]
    fn bearer_wins_over_body_token() {
        let mut headers = HeaderMap::new();
        let b = json!({"token": "t"}).as_object().unwrap().clone();
        assert_eq!(presented_key(&headers, Some(&b)), Some("t"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k"));
        assert_eq!(presented_key(&headers, Some(&b)), Some("k"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic k"));
        assert_eq!(presented_key(&headers, Some(&b)), None);
    }
}
