//! The account's balance, `GET /api/v2/credits`: a cheap way to check the
//! key before a run spends anything.

use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;

use super::Client;
use super::answer::{body_excerpt, error_status};
use super::outcome::SubmitError;
use super::transport::{classify_send_error, cut_off, read_capped, redirect};

/// The account's balance, from `GET /api/v2/credits`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Balance {
    pub credits: f64,
    pub used_credits: Option<f64>,
}

impl Client {
    /// Asks for the balance: a cheap way to check the key before a run.
    ///
    /// # Errors
    /// As for [`Client::submit`]; an answer without `data.credits` is
    /// [`SubmitError::Unexpected`].
    pub async fn balance(&self) -> Result<Balance, SubmitError> {
        let response = self
            .http
            .get(self.credits.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .send()
            .await
            .map_err(|e| match classify_send_error(e) {
                SubmitError::Lost(detail) => SubmitError::NoAnswer(detail),
                other => other,
            })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(redirect(status, response.headers(), &self.credits));
        }
        let body = match read_capped(response).await {
            Ok(body) => body,
            // A cut 2xx body is no balance, and must not read as a host
            // without `data.credits`; an error status says enough.
            Err(e) if status.is_success() => {
                return Err(SubmitError::NoAnswer(format!(
                    "HTTP {status}: {}",
                    cut_off(&e)
                )));
            }
            Err(_) => Vec::new(),
        };
        parse_balance(status, &body)
    }
}

/// Turns a credits answer into a balance. Numbers may come as strings.
pub fn parse_balance(status: StatusCode, body: &[u8]) -> Result<Balance, SubmitError> {
    if !status.is_success() {
        return Err(error_status(status, body, None));
    }
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let number = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let data = value.as_ref().and_then(|v| v.get("data"));
    let credits = data.and_then(|d| d.get("credits")).and_then(number);
    match credits {
        Some(credits) => Ok(Balance {
            credits,
            used_credits: data.and_then(|d| d.get("used_credits")).and_then(number),
        }),
        None => Err(SubmitError::Unexpected {
            status: status.as_u16(),
            detail: format!(
                "no data.credits in the answer: {}",
                body_excerpt(body, status)
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::submit::ErrorClass;

    #[test]
    fn balances_parse_leniently() {
        let ok = |b: &str| parse_balance(StatusCode::OK, b.as_bytes());
        let b = ok(r#"{"code":200,"message":"success","data":{"credits":195,"used_credits":5}}"#)
            .unwrap();
        assert_eq!((b.credits, b.used_credits), (195.0, Some(5.0)));
        assert_eq!(ok(r#"{"data":{"credits":"12.5"}}"#).unwrap().credits, 12.5);
        assert!(ok(r#"{"data":{}}"#).is_err());
        assert!(ok("<html>").is_err());
        let refused = parse_balance(
            StatusCode::UNAUTHORIZED,
            br#"{"code":401,"message":"bad key"}"#,
        );
        assert_eq!(refused.unwrap_err().class(), ErrorClass::Fatal);
    }
}
