//! The sandbox's HTTP routes, and the generate handler that carries a
//! request to [`Shared::decide`] (in `decide`) and its answer back.
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
//! The decision is made under the state lock; only then does the handler
//! wait (latency, slow fault) and answer, so no lock is held across an
//! await and the stats are final before the client reads the answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::arrival::ArrivedAt;
use super::decide::Answer;
use super::reply::error_body;
use super::state::Stats;
use super::{ConnControl, Shared, feed, media};

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

    #[test]
    fn both_generate_routes_are_named() {
        assert_eq!(generate_path("/api/generate"), "/api/generate");
        assert_eq!(generate_path("/api/v2/generate"), "/api/v2/generate");
    }
}
