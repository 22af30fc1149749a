//! Which account a request presents: its API key, or on gcui its
//! `Cookie`, checked against the sandbox's accounts.
//!
//! Its own module because the generate path, the polls and the credit
//! routes all check the account, the same way, and none should import
//! another for it. A key is presented as `Authorization: Bearer <key>`
//! or, as the legacy docs show, as a `token` field of a JSON body; the
//! header wins. gcui takes no key: its README lets a `Cookie` header per
//! request choose the Suno account (see `face::gcui`).

use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use super::Host;
use super::accounts::AccountId;
use super::reply::ApiError;

/// What a gcui request with a cookie no account has is told.
pub(super) const UNKNOWN_COOKIE: &str =
    "Unauthorized: the Cookie header is not a Suno session this server holds";

impl Host {
    /// The account of a request without a body (feeds, credits); the
    /// error is the 401 answer.
    pub(super) fn authorize(&self, headers: &HeaderMap) -> Result<AccountId, ApiError> {
        self.account_of(headers, None)
            .map_err(|message| ApiError(StatusCode::UNAUTHORIZED, message))
    }

    /// The account a request presents, as the face takes it (a key, or
    /// gcui's cookie), or the 401 message.
    pub(super) fn account_of(
        &self,
        headers: &HeaderMap,
        body: Option<&Map<String, Value>>,
    ) -> Result<AccountId, &'static str> {
        if self.face.needs_key() {
            self.check_key(presented_key(headers, body))
        } else {
            self.check_cookie(headers)
        }
    }

    /// The account whose key this is, or the 401 message.
    fn check_key(&self, presented: Option<&str>) -> Result<AccountId, &'static str> {
        let key = presented.ok_or("missing API key: send Authorization: Bearer <key>")?;
        self.find(key).ok_or("invalid API key")
    }

    /// gcui: with one account, any request is its (the server holds the
    /// cookie); with several, a `Cookie` header picks one by its exact
    /// text, and a request without one gets the first.
    fn check_cookie(&self, headers: &HeaderMap) -> Result<AccountId, &'static str> {
        if self.accounts.len() == 1 {
            return Ok(AccountId(0));
        }
        let mut cookies = headers.get_all(header::COOKIE).iter();
        let Some(first) = cookies.next() else {
            return Ok(AccountId(0));
        };
        // Several Cookie headers (HTTP/2 splits them) are one cookie list.
        let mut cookie = first.to_str().map_err(|_| UNKNOWN_COOKIE)?.to_owned();
        for more in cookies {
            cookie.push_str("; ");
            cookie.push_str(more.to_str().map_err(|_| UNKNOWN_COOKIE)?);
        }
        self.find(cookie.trim()).ok_or(UNKNOWN_COOKIE)
    }

    fn find(&self, key: &str) -> Option<AccountId> {
        self.accounts
            .iter()
            .position(|a| a.key == key)
            .map(AccountId)
    }

    /// Counts a poll request, and once its account is known, counts it
    /// there too; the error is the 401 message.
    pub(super) fn poll_account(&self, headers: &HeaderMap) -> Result<AccountId, &'static str> {
        self.lock().records.counts.feed_requests += 1;
        let account = self.account_of(headers, None)?;
        self.lock().records.account(account).feed_requests += 1;
        Ok(account)
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
