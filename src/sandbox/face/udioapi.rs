//! The udioapi face: udioapi.pro as `API.md` describes it, the sandbox's
//! behaviour before it had faces, unchanged.
//!
//! Submits on both documented paths (`POST /api/v2/generate`,
//! `POST /api/generate`), answered `{"code":200,"message":"success",
//! "workId":id,"data":{"task_id":id}}`; errors `{"code":N,"message":"..."}`
//! with the same HTTP status (400, 401, 402 no credits, 429 rate limited
//! with `Retry-After`, 500) and the 503 fault as a proxy's HTML page. The
//! read side (v2 and legacy feeds, credits) is `feed`, its clips `clips`.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::{Refusal, Reply};
use crate::job::JobFields;
use crate::sandbox::state::Task;
use crate::sandbox::{Host, api, feed, request};

pub(super) fn routes() -> Router<Arc<Host>> {
    Router::new()
        .route("/api/generate", post(api::generate))
        .route("/api/v2/generate", post(api::generate))
        .route("/api/v2/feed", get(feed::v2))
        .route("/api/feed", get(feed::legacy).post(feed::legacy))
        .route("/api/v2/credits", get(feed::credits))
}

/// The body read field by field in batchgen's own names (see `request`).
pub(super) fn read(body: &Map<String, Value>) -> Result<JobFields, Refusal> {
    request::to_fields(body.clone()).map_err(Refusal::Invalid)
}

pub(super) fn accepted(task: &Task) -> Reply {
    Reply::json(
        StatusCode::OK,
        json!({
            "code": 200,
            "message": "success",
            "workId": task.id,
            "data": {"task_id": task.id},
        }),
    )
}

pub(super) fn refused(refusal: &Refusal) -> Reply {
    let (status, message) = match refusal {
        Refusal::Unauthorized(message) => (StatusCode::UNAUTHORIZED, *message),
        Refusal::Invalid(message) => (StatusCode::BAD_REQUEST, message.as_str()),
        Refusal::TooLong => (StatusCode::BAD_REQUEST, "Topic too long."),
        Refusal::CallbackRequired => (StatusCode::BAD_REQUEST, "callback_url is required"),
        Refusal::NoCredits => (StatusCode::PAYMENT_REQUIRED, "insufficient credits"),
        Refusal::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded"),
        Refusal::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "internal server error"),
        Refusal::Unavailable => return Reply::unavailable(),
    };
    error(status, message)
}

/// `{"code": N, "message": "..."}` with the same HTTP status.
pub(super) fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, json!({"code": status.as_u16(), "message": message}))
}
