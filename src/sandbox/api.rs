//! The sandbox's HTTP routes and the decision each generate request gets.
//!
//! A generate request is decided in one synchronous step under the state
//! lock ([`Shared::decide`]), in the order a real front end works:
//!
//! 1. count it; check the key (401) — only authenticated requests go further;
//! 2. draw its faults (always, so the seeded sequence depends only on the
//!    sequence of authenticated requests);
//! 3. rate limit (429 + Retry-After; faults drawn for it are discarded);
//! 4. pre-empting faults: drop the connection, 500, 503 (HTML), 429;
//! 5. parse the body and run [`job::check`] (400), the same rules batchgen
//!    applies before sending;
//! 6. charge `--credits-per-task` (402 "insufficient credits" when the
//!    balance cannot cover it, and no task);
//! 7. record the task (its clip ids, title, moderation and bad final URLs
//!    are decided now), start its callbacks if it has a `callback_url`;
//!    then maybe drop the connection anyway (`drop_after`).
//!
//! Both documented paths, `POST /api/v2/generate` and `POST /api/generate`,
//! take the same body and behave the same. The current docs mark
//! `callback_url` required on `/api/generate` and the older ones optional:
//! the sandbox is lenient and takes a job without one there too, but
//! counts requests per path (`requests_by_path`, and each task's `path` in
//! the stats), so a test can assert which one a client used.
//!
//! The read-side routes live in `feed` (feeds, credits) and `media`.
//!
//! Only then does the handler wait (latency, slow fault) and answer, so no
//! lock is held across an await and the stats are final before the client
//! reads the answer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::arrival::ArrivedAt;
use super::faults::Early;
use super::limit::retry_after_secs;
use super::reply::{ApiError, error_body};
use super::state::{Stats, Task};
use super::{ConnControl, Shared, callbacks, feed, media};
use crate::job::{self, Field, Gender, JobFields, Kind, Problem, ProblemKind, Weight, WeightError};

/// The page a proxy in front of the service serves when it is down.
const UNAVAILABLE_PAGE: &str = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/generate", post(generate))
        .route("/api/v2/generate", post(generate))
        .route("/api/v2/feed", get(feed::v2))
        .route("/api/feed", get(feed::legacy).post(feed::legacy))
        .route("/api/v2/credits", get(feed::credits))
        .route("/api/forbidden", get(media::forbidden))
        .route("/media/stream/{clip}", get(media::stream))
        .route("/media/{file}", get(media::file))
        .route("/sandbox/stats", get(stats))
        .route("/sandbox/reset", post(reset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// What a generate request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Accepted(String),
    Error {
        status: StatusCode,
        message: String,
        retry_after: Option<u64>,
    },
    /// 503 with an HTML body.
    Unavailable,
    /// Close the connection without answering.
    Drop,
}

impl Answer {
    fn error(status: StatusCode, message: impl Into<String>) -> Answer {
        Answer::Error {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn too_many(retry_after: u64) -> Answer {
        Answer::Error {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "rate limit exceeded".into(),
            retry_after: Some(retry_after),
        }
    }

    fn status(&self) -> Option<StatusCode> {
        match self {
            Answer::Accepted(_) => Some(StatusCode::OK),
            Answer::Error { status, .. } => Some(*status),
            Answer::Unavailable => Some(StatusCode::SERVICE_UNAVAILABLE),
            Answer::Drop => None,
        }
    }
}

async fn generate(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnControl>,
    arrived: Option<Extension<ArrivedAt>>,
    path: MatchedPath,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The limiter judges when the request reached the socket, not when this
    // handler got to run (see `arrival`).
    let now = arrived.map_or_else(Instant::now, |Extension(ArrivedAt(at))| at);
    let path = generate_path(path.as_str());
    let (delay, answer) = shared.decide(now, path, &headers, &body);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match answer {
        Answer::Accepted(id) => Json(json!({
            "code": 200,
            "message": "success",
            "workId": id,
            "data": {"task_id": id},
        }))
        .into_response(),
        Answer::Error {
            status,
            message,
            retry_after,
        } => {
            let mut response = (status, error_body(status, &message)).into_response();
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            response
        }
        Answer::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html")],
            UNAVAILABLE_PAGE,
        )
            .into_response(),
        Answer::Drop => conn.drop_connection().await,
    }
}

/// The generate route a request came by, as a `'static` name for the task.
fn generate_path(matched: &str) -> &'static str {
    if matched == "/api/generate" {
        "/api/generate"
    } else {
        "/api/v2/generate"
    }
}

impl Shared {
    /// Checks the key of a request without a body (feeds, credits); the
    /// error is the 401 answer.
    pub(super) fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        self.check_key(presented_key(headers, None))
            .map_err(|message| ApiError(StatusCode::UNAUTHORIZED, message))
    }

    /// The 401 message for a presented key, if it is not the right one.
    fn check_key(&self, presented: Option<&str>) -> Result<(), &'static str> {
        match presented {
            None => Err("missing API key: send Authorization: Bearer <key>"),
            Some(key) if key != self.key => Err("invalid API key"),
            Some(_) => Ok(()),
        }
    }

    /// Decides a generate request and records it; returns how long to wait
    /// before answering, and the answer.
    fn decide(
        self: &Arc<Self>,
        now: Instant,
        path: &'static str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (Duration, Answer) {
        let mut state = self.lock();
        let state = &mut *state;
        state.records.requests += 1;
        *state
            .records
            .requests_by_path
            .entry(path.into())
            .or_default() += 1;
        let mut delay = self.latency;
        let body = parse_body(body);

        let answer = 'answer: {
            if let Err(message) = self.check_key(presented_key(headers, body.as_ref().ok())) {
                break 'answer Answer::error(StatusCode::UNAUTHORIZED, message);
            }

            let roll = state.dice.roll(&self.faults);
            if let Some(limiter) = &mut state.limiter
                && let Err(wait) = limiter.check(now)
            {
                state.records.rate_limited += 1;
                break 'answer Answer::too_many(retry_after_secs(wait));
            }
            let injected = &mut state.records.injected;
            if roll.slow {
                injected.slow += 1;
                delay += self.faults.slow_delay;
            }
            match roll.early() {
                Some(Early::DropBefore) => {
                    injected.drop_before += 1;
                    break 'answer Answer::Drop;
                }
                Some(Early::Fail500) => {
                    injected.fail_500 += 1;
                    break 'answer Answer::error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal server error",
                    );
                }
                Some(Early::Fail503) => {
                    injected.fail_503 += 1;
                    break 'answer Answer::Unavailable;
                }
                Some(Early::Fail429) => {
                    injected.fail_429 += 1;
                    break 'answer Answer::too_many(self.fail_429_retry_after);
                }
                None => {}
            }

            let fields = match body.and_then(to_fields) {
                Ok(fields) => fields,
                Err(message) => break 'answer Answer::error(StatusCode::BAD_REQUEST, message),
            };
            let problems = self.rules.check(&fields);
            if !problems.is_empty() {
                break 'answer Answer::error(StatusCode::BAD_REQUEST, problems_message(&problems));
            }

            let used = state
                .records
                .credits_used
                .saturating_add(self.credits_per_task);
            if used > self.credits {
                break 'answer Answer::error(StatusCode::PAYMENT_REQUIRED, "insufficient credits");
            }
            state.records.credits_used = used;

            let id = state.dice.task_id();
            let clip_ids = [state.dice.clip_id(), state.dice.clip_id()];
            let title = match &fields.title {
                Some(title) => title.clone(),
                None => state.dice.title(),
            };
            let bad_audio = clip_ids
                .each_ref()
                .map(|c| media::bad_audio_for(c, self.bad_audio, self.bad_audio_kind));
            let task = Task {
                id: id.clone(),
                fingerprint: fields.fingerprint(),
                moderation: self.lifecycle.moderation(&fields),
                bad_audio,
                path,
                clip_ids,
                title,
                fields,
                accepted_at: now,
                created_at: SystemTime::now(),
            };
            let callback_url = task.fields.callback_url.as_deref().map(str::trim);
            if let Some(url) = callback_url.filter(|u| !u.is_empty()) {
                if self.callback_any_host || callbacks::is_loopback(url) {
                    callbacks::spawn(self, &mut state.callbacks, task.clone(), url.to_owned());
                } else {
                    tracing::warn!(
                        "sandbox: not posting callbacks to {url}: not a loopback address (see --callback-any-host)"
                    );
                }
            }
            state.records.tasks.insert(task);
            if roll.drop_after {
                state.records.injected.drop_after += 1;
                break 'answer Answer::Drop;
            }
            Answer::Accepted(id)
        };

        if let Some(status) = answer.status() {
            state.records.count_response(status.as_u16());
        }
        tracing::debug!(?answer, "sandbox generate");
        (delay, answer)
    }
}

/// The body as a JSON object, or the 400 message saying why it is not one.
fn parse_body(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("request body must be a JSON object".into()),
        Err(e) => Err(format!("request body is not valid JSON: {e}")),
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

/// Reads the API's fields out of a body. Unknown fields (and `token`) are
/// ignored and `null` means unset, as the service does; a field of the wrong
/// type is a 400 naming it. Each field is read as batchgen writes it: a
/// weight is a JSON number from 0 to 1 with at most two decimals (a string
/// `"0.5"` is refused: the docs type it as a number), `gender` is `"male"`
/// or `"female"` exactly.
fn to_fields(body: Map<String, Value>) -> Result<JobFields, String> {
    let mut fields = JobFields::default();
    for (name, value) in body {
        // `id` is batchgen's row identity, never part of a request body.
        let Some(field) = Field::from_name(&name).filter(|&f| f != Field::Id) else {
            continue;
        };
        let typed = match (field.kind(), value) {
            (_, Value::Null) => continue,
            (Kind::Bool, Value::Bool(b)) => job::Value::Bool(b),
            (Kind::Text, Value::String(s)) => job::Value::Str(s),
            (Kind::Weight, Value::Number(n)) => {
                let weight = n.as_f64().ok_or(WeightError::NotANumber);
                match weight.and_then(Weight::from_f64) {
                    Ok(w) => job::Value::Weight(w),
                    Err(e) => return Err(format!("{field} {n} {e}")),
                }
            }
            (Kind::Gender, Value::String(s)) => match s.as_str() {
                "male" => job::Value::Gender(Gender::Male),
                "female" => job::Value::Gender(Gender::Female),
                _ => return Err(format!("{field} must be \"male\" or \"female\", not {s:?}")),
            },
            (kind, other) => {
                let expected = match kind {
                    Kind::Bool => "a boolean",
                    Kind::Text | Kind::Gender => "a string",
                    Kind::Weight => "a number",
                };
                return Err(format!("{field} must be {expected}, not {other}"));
            }
        };
        fields.set(field, typed);
    }
    Ok(fields)
}

/// The 400 message for failed checks: the service's own "Topic too long."
/// when any limit is exceeded, otherwise each problem with its field.
fn problems_message(problems: &[Problem]) -> String {
    if problems
        .iter()
        .any(|p| matches!(p.kind, ProblemKind::TooLong { .. }))
    {
        return "Topic too long.".into();
    }
    problems
        .iter()
        .map(|p| match &p.kind {
            ProblemKind::Missing(mode) => format!("{} is required in {mode} mode", p.field),
            ProblemKind::UnknownModel(_) => p.to_string(),
            _ => format!("{} {p}", p.field),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(shared.lock().records.stats())
}

async fn reset(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.reset();
    Json(json!({"code": 200, "message": "reset"}))
}

async fn not_found() -> Response {
    let status = StatusCode::NOT_FOUND;
    (status, error_body(status, "not found")).into_response()
}

async fn method_not_allowed() -> Response {
    let status = StatusCode::METHOD_NOT_ALLOWED;
    (status, error_body(status, "method not allowed")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn fields_are_read_leniently_but_typed() {
        let f = to_fields(body(json!({
            "prompt": "rain", "token": "k", "id": "x", "extra": [1], "title": null,
            "make_instrumental": true,
        })))
        .unwrap();
        assert_eq!(
            f,
            JobFields {
                prompt: Some("rain".into()),
                make_instrumental: Some(true),
                ..JobFields::default()
            }
        );
        let err = to_fields(body(json!({"custom_mode": "yes"}))).unwrap_err();
        assert_eq!(err, r#"custom_mode must be a boolean, not "yes""#);
        assert!(to_fields(body(json!({"prompt": 3}))).is_err());
    }

    #[test]
    fn new_fields_are_typed_as_batchgen_sends_them() {
        let f = to_fields(body(json!({
            "gpt_description_prompt": "tides", "model": "chirp-v5", "gender": "female",
            "style_weight": 0.65, "weirdness_constraint": 0, "audio_weight": 1.0,
        })))
        .unwrap();
        assert_eq!(
            f,
            JobFields {
                gpt_description_prompt: Some("tides".into()),
                model: Some("chirp-v5".into()),
                gender: Some(Gender::Female),
                style_weight: Weight::from_hundredths(65),
                weirdness_constraint: Some(Weight::ZERO),
                audio_weight: Some(Weight::ONE),
                ..JobFields::default()
            }
        );
        assert_eq!(
            job::check(&f),
            [],
            "inspiration mode and chirp-v5 are accepted"
        );
        let refused = |v: Value| to_fields(body(v)).unwrap_err();
        assert_eq!(
            refused(json!({"style_weight": "0.5"})),
            r#"style_weight must be a number, not "0.5""#
        );
        assert_eq!(
            refused(json!({"audio_weight": 0.655})),
            "audio_weight 0.655 has more than two decimals: expected a number from 0 to 1 with at most two decimals, like 0.65"
        );
        assert!(refused(json!({"weirdness_constraint": 1.5})).contains("out of range"));
        assert!(refused(json!({"weirdness_constraint": -0.1})).contains("out of range"));
        assert_eq!(
            refused(json!({"gender": "Female"})),
            r#"gender must be "male" or "female", not "Female""#
        );
        assert_eq!(
            refused(json!({"gender": true})),
            "gender must be a string, not true"
        );
    }

    #[test]
    fn messages_name_the_field() {
        let custom = JobFields {
            custom_mode: Some(true),
            prompt: Some("words".into()),
            style: Some("lofi".into()),
            ..JobFields::default()
        };
        assert_eq!(
            problems_message(&job::check(&custom)),
            "title is required in custom mode"
        );
        let empty = JobFields {
            prompt: Some(" ".into()),
            ..JobFields::default()
        };
        assert_eq!(problems_message(&job::check(&empty)), "prompt is empty");
    }

    #[test]
    fn both_generate_routes_are_named() {
        assert_eq!(generate_path("/api/generate"), "/api/generate");
        assert_eq!(generate_path("/api/v2/generate"), "/api/v2/generate");
    }

    #[test]
    fn bearer_wins_over_body_token() {
        let mut headers = HeaderMap::new();
        let b = body(json!({"token": "t"}));
        assert_eq!(presented_key(&headers, Some(&b)), Some("t"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer k"));
        assert_eq!(presented_key(&headers, Some(&b)), Some("k"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic k"));
        assert_eq!(presented_key(&headers, Some(&b)), None);
    }
}
