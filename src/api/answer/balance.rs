//! Reading a credits answer into a [`Balance`]: udioapi's shape here
//! ([`parse_balance`]); each provider's in its profile
//! (`crate::api::provider`).

use reqwest::StatusCode;

use super::outcome::SubmitError;
use super::task_id::{body_excerpt, error_status};

/// The account's balance, from the provider's credits endpoint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Balance {
    pub credits: f64,
    pub used_credits: Option<f64>,
}

/// A number, or a string holding one.
pub(crate) fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

/// Turns udioapi's credits answer (`GET /api/v2/credits`) into a balance.
/// Numbers may come as strings.
///
/// # Errors
/// An error status as [`HostError::Status`](super::HostError::Status); an answer without
/// `data.credits` is [`SubmitError::Unexpected`].
pub fn parse_balance(status: StatusCode, body: &[u8]) -> Result<Balance, SubmitError> {
    if !status.is_success() {
        return Err(error_status(status, body, None));
    }
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let data = value.as_ref().and_then(|v| v.get("data"));
    let credits = data.and_then(|d| d.get("credits")).and_then(number);
    match credits {
        Some(credits) => Ok(Balance {
            credits,
            used_credits: data.and_then(|d| d.get("used_credits")).and_then(number),
        }),
        None => Err(no_balance(status, body, "data.credits")),
    }
}

/// A 2xx credits answer without the balance where the provider puts it.
pub(crate) fn no_balance(status: StatusCode, body: &[u8], field: &str) -> SubmitError {
    SubmitError::Unexpected {
        status: status.as_u16(),
        detail: format!("no {field} in the answer: {}", body_excerpt(body, status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::answer::ErrorClass;

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
