//! Reading a submit's answer: a status and a body become a task ID or a
//! [`SubmitError`], by the task ID rules of [`super`]'s docs ("Task IDs").

use crate::api::answer::HostError;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::outcome::{Accepted, SubmitError};

/// Longest task ID kept (see [`super`]'s docs, "Task IDs"); real ones are ~20 chars.
pub const MAX_TASK_ID: usize = 200;

/// The API's answer envelope. Every field optional: hosts differ. The IDs
/// stay raw JSON text until [`task_id`] reads them (see [`super`]'s docs).
#[derive(Debug, Deserialize)]
struct Answer<'a> {
    code: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
    #[serde(rename = "workId", borrow)]
    work_id: Option<&'a RawValue>,
    /// Raw, so that a `data` of another shape (`[]`, a string) does not
    /// hide a good `workId`.
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct AnswerData<'a> {
    #[serde(borrow)]
    task_id: Option<&'a RawValue>,
}

/// Turns a status and body into a task ID or an error.
pub fn parse_answer(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<Accepted, SubmitError> {
    if !status.is_success() {
        return Err(error_status(status, body, retry_after));
    }
    let answer: Option<Answer> = serde_json::from_slice(body).ok();
    let Some(answer) = answer else {
        return Err(SubmitError::Unexpected {
            status: status.as_u16(),
            detail: format!("not the JSON expected: {}", body_excerpt(body, status)),
        });
    };
    let data_task_id = answer
        .data
        .and_then(|d| serde_json::from_str::<AnswerData>(d.get()).ok())
        .and_then(|d| d.task_id);
    let unusable = |field: &str, why: String| SubmitError::Unexpected {
        status: status.as_u16(),
        detail: format!("{field} is not a usable task ID: {why}"),
    };
    let task_id = match answer.work_id.map(task_id).transpose() {
        Err(why) => return Err(unusable("workId", why)),
        Ok(Some(Some(id))) => Some(id),
        Ok(_) => data_task_id
            .map(task_id)
            .transpose()
            .map_err(|why| unusable("data.task_id", why))?
            .flatten(),
    };
    if let Some(task_id) = task_id {
        return Ok(Accepted {
            task_id,
            http_status: status.as_u16(),
        });
    }
    // Some hosts answer HTTP 200 with an error code in the envelope.
    let code = answer.code.as_ref().and_then(|c| match c {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    });
    let message = answer.message.as_ref().map(value_text).unwrap_or_default();
    match code {
        Some(code @ 400..=599) => Err(SubmitError::Host(HostError::Status {
            status: code as u16,
            message,
            retry_after,
        })),
        _ => Err(SubmitError::Unexpected {
            status: status.as_u16(),
            detail: format!("no workId or data.task_id in the answer ({message:?})"),
        }),
    }
}

/// A task ID from its raw JSON: `Ok(None)` when absent (`null`, `""`),
/// `Err` with the reason when the server sent one that cannot be kept
/// (see [`super`]'s docs for the rules). Every provider's task ID passes
/// here (gcui's clip ids too, one by one and joined).
pub fn task_id(raw: &RawValue) -> Result<Option<String>, String> {
    let text = raw.get().trim();
    let id = if text == "null" {
        return Ok(None);
    } else if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
        s.trim().to_owned()
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        // The digits exactly as sent, however many.
        text.to_owned()
    } else if text.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        return Err(format!(
            "the number {} is not a whole number",
            one_line(text, 40)
        ));
    } else {
        return Err(format!("expected a string, got {}", one_line(text, 40)));
    };
    checked_task_id(id)
}

/// The rules of [`task_id`] for text already read: `Ok(None)` for `""`.
pub fn checked_task_id(id: String) -> Result<Option<String>, String> {
    if id.is_empty() {
        return Ok(None);
    }
    let length = id.chars().count();
    if length > MAX_TASK_ID {
        return Err(format!("{length} characters long (at most {MAX_TASK_ID})"));
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "holds {c:?} (only printable ASCII without spaces is kept): {:?}",
            id.chars().take(40).collect::<String>()
        ));
    }
    if crate::util::redact::holds_secret(&id) {
        return Err("it holds a secret of this run (the server echoed it)".into());
    }
    Ok(Some(id))
}

pub(crate) fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => one_line(s, 300),
        other => one_line(&other.to_string(), 300),
    }
}

/// A short, single-line rendering of a body that is not the JSON expected.
pub(crate) fn body_excerpt(body: &[u8], status: StatusCode) -> String {
    let text = String::from_utf8_lossy(body);
    let text = one_line(&text, 120);
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("empty answer")
            .to_owned()
    } else {
        format!("non-JSON answer: {text}")
    }
}

/// Server text for a message: one line, at most `max_chars`, and the
/// run's secrets masked before it is cut (a cut secret would not be found
/// later).
pub(crate) fn one_line(s: &str, max_chars: usize) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = crate::util::redact::secrets(&joined)
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars + 1)
        .collect();
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars).collect::<String>() + "…";
    }
    out
}

/// An error status with the server's `message` (sunoapi: `msg`; gcui:
/// `error`), or an excerpt of a body that is not the documented JSON.
pub(crate) fn error_status(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> SubmitError {
    let message = server_text(body).unwrap_or_else(|| body_excerpt(body, status));
    SubmitError::Host(HostError::Status {
        status: status.as_u16(),
        message,
        retry_after,
    })
}

/// The message of an error body, by the names the providers give it:
/// `message` (udioapi), `msg` (sunoapi), `error` (gcui); `None` when the
/// body is not JSON or holds none of them.
pub(crate) fn server_text(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<serde_json::Value>,
        msg: Option<serde_json::Value>,
        error: Option<serde_json::Value>,
    }
    let b = serde_json::from_slice::<ErrorBody>(body).ok()?;
    [b.message, b.msg, b.error]
        .iter()
        .flatten()
        .map(value_text)
        .find(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::answer::ErrorClass;
    use crate::util::redact::Secret;

    fn ok(body: &str) -> Result<Accepted, SubmitError> {
        parse_answer(StatusCode::OK, body.as_bytes(), None)
    }

    #[test]
    fn task_id_from_work_id_then_data() {
        let both = r#"{"code":200,"message":"success","workId":"w1","data":{"task_id":"t1"}}"#;
        assert_eq!(ok(both).unwrap().task_id, "w1");
        assert_eq!(ok(r#"{"data":{"task_id":"t2"}}"#).unwrap().task_id, "t2");
        assert_eq!(
            ok(r#"{"workId":"","data":{"task_id":"t3"}}"#)
                .unwrap()
                .task_id,
            "t3"
        );
        assert_eq!(ok(r#"{"workId":12345}"#).unwrap().task_id, "12345");
    }

    #[test]
    fn task_ids_are_the_text_the_server_sent() {
        let big = r#"{"workId":123456789012345678901234567890}"#;
        assert_eq!(ok(big).unwrap().task_id, "123456789012345678901234567890");
        let nested = r#"{"data":{"task_id":98765432109876543210987654321}}"#;
        assert_eq!(ok(nested).unwrap().task_id, "98765432109876543210987654321");
        // A `data` of another shape does not hide a good workId.
        assert_eq!(ok(r#"{"workId":"w1","data":[]}"#).unwrap().task_id, "w1");
        assert_eq!(
            ok(r#"{"workId":"  padded-1 "}"#).unwrap().task_id,
            "padded-1"
        );
    }

    #[test]
    fn task_ids_that_cannot_be_kept_make_the_answer_unexpected() {
        let long = format!(r#"{{"workId":"{}"}}"#, "a".repeat(MAX_TASK_ID + 1));
        let cases = [
            (r#"{"workId":1.5e29}"#, "not a whole number"),
            (r#"{"workId":-12}"#, "not a whole number"),
            (r#"{"workId":"a\u0007b"}"#, r"holds '\u{7}'"),
            (r#"{"workId":"a\nb"}"#, r"holds '\n'"),
            (r#"{"workId":{"x":1}}"#, "expected a string"),
            (r#"{"workId":"","data":{"task_id":"t\tx"}}"#, "data.task_id"),
            (long.as_str(), "201 characters long"),
        ];
        for (body, why) in cases {
            let e = ok(body).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Ambiguous, "{body}");
            let text = e.to_string();
            assert!(
                text.contains("not a usable task ID") && text.contains(why),
                "{body}: {text}"
            );
            assert!(text.len() < 300 && !text.contains('\n'), "{text}");
        }
        // A server that echoes a secret of this run does not get it into
        // the results file.
        let key = Secret::new("sk-echoed-key-0042");
        let e = ok(&format!(r#"{{"workId":"{}"}}"#, key.expose())).unwrap_err();
        assert!(!e.to_string().contains(key.expose()), "{e}");
    }

    #[test]
    fn success_without_id_is_ambiguous() {
        for body in [
            "{}",
            "[]",
            "<html>",
            "",
            r#"{"workId":null,"data":[]}"#,
            r#"{"workId":"a b"}"#,
        ] {
            let e = ok(body).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Ambiguous, "{body:?}");
        }
    }

    #[test]
    fn error_envelope_inside_200_is_an_error() {
        let e = ok(r#"{"code":400,"message":"Topic too long."}"#).unwrap_err();
        assert_eq!(e.http_status(), Some(400));
        assert_eq!(e.to_string(), "HTTP 400: Topic too long.");
    }

    #[test]
    fn status_classes() {
        let class = |status: u16, body: &str| {
            parse_answer(StatusCode::from_u16(status).unwrap(), body.as_bytes(), None)
                .unwrap_err()
                .class()
        };
        assert_eq!(
            class(400, r#"{"code":400,"message":"Topic too long."}"#),
            ErrorClass::Row
        );
        assert_eq!(class(401, "{}"), ErrorClass::Fatal);
        assert_eq!(class(402, "{}"), ErrorClass::Fatal);
        assert_eq!(class(403, "{}"), ErrorClass::Fatal);
        assert_eq!(class(404, "{}"), ErrorClass::Row);
        for s in [429, 500, 502, 503, 504] {
            assert_eq!(class(s, "<html>busy</html>"), ErrorClass::Retry);
        }
        assert_eq!(class(501, "{}"), ErrorClass::Row);
    }

    #[test]
    fn non_json_error_bodies_become_short_messages() {
        let big = format!("<html>{}</html>", "x\n".repeat(100_000));
        let e = parse_answer(StatusCode::SERVICE_UNAVAILABLE, big.as_bytes(), None).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("HTTP 503: non-JSON answer: <html>"),
            "{text}"
        );
        assert!(text.chars().count() < 200 && !text.contains('\n'));
        let e = parse_answer(StatusCode::BAD_GATEWAY, b"", None).unwrap_err();
        assert_eq!(e.to_string(), "HTTP 502: Bad Gateway");
    }
}
