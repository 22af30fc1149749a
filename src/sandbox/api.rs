//! The sandbox's HTTP router, and the generate handler every face's submit
//! routes share: it carries a request to [`Host::decide`] (in `decide`)
//! and the face's answer back.
//!
//! The routes of the API are the face's (`face`): udioapi's two documented
//! submit paths (`POST /api/v2/generate` and `POST /api/generate`, which
//! take the same body: the current docs mark `callback_url` required on
//! the latter, the older ones optional, and the sandbox takes a job
//! without one there too), sunoapi's `/api/v1/generate`, gcui's
//! `/api/generate` and `/api/custom_generate`, a new-api relay's
//! `/suno/submit/music`. Requests are counted per
//! path (`requests_by_path`, and each task's `path` in the stats), so a
//! test can assert which one a client used. The media routes (`media`)
//! and `/sandbox/stats` and `/sandbox/reset` are the same on every face.
//!
//! The decision is made under the state lock; only then does the handler
//! wait (latency, slow fault) and answer, so no lock is held across an
//! await and the stats are final before the client reads the answer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::state::Stats;
use super::{ConnControl, Host, media};

/// Every submit path of every face, as `'static` names for the tasks.
const GENERATE_PATHS: [&str; 5] = [
    "/api/v2/generate",
    "/api/generate",
    "/api/v1/generate",
    "/api/custom_generate",
    "/suno/submit/music",
];

pub(super) fn router(shared: Arc<Host>) -> Router {
    shared
        .face
        .routes()
        .route("/api/forbidden", get(media::forbidden))
        .route("/media/stream/{clip}", get(media::stream))
        .route("/media/{file}", get(media::file))
        .route("/sandbox/stats", get(stats))
        .route("/sandbox/reset", post(reset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// When a request arrived: stamped as soon as hyper has read its head, so
/// the rate limiter judges the spacing the client produced, not the
/// handler's own scheduling delays (a handler may run after a later
/// request's: the limiter places each by its arrival, see
/// [`super::limit::HostLimit::check`]).
#[derive(Debug, Clone, Copy)]
pub struct ArrivedAt(pub Instant);

/// The submit handler of every face.
pub(super) async fn generate(
    State(shared): State<Arc<Host>>,
    Extension(conn): Extension<ConnControl>,
    arrived: Option<Extension<ArrivedAt>>,
    path: MatchedPath,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The limiter judges when the request arrived, not when this handler
    // got to run.
    let now = arrived.map_or_else(Instant::now, |Extension(ArrivedAt(at))| at);
    let path = generate_path(path.as_str());
    let (delay, reply) = shared.decide(now, path, &headers, &body);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match reply {
        Some(reply) => reply.into_response(),
        None => conn.drop_connection().await,
    }
}

/// The generate route a request came by, as a `'static` name for the task.
fn generate_path(matched: &str) -> &'static str {
    GENERATE_PATHS
        .into_iter()
        .find(|p| *p == matched)
        .unwrap_or(GENERATE_PATHS[0])
}

async fn stats(State(shared): State<Arc<Host>>) -> Json<Stats> {
    Json(shared.stats())
}

async fn reset(State(shared): State<Arc<Host>>) -> Json<Value> {
    shared.reset();
    Json(json!({"code": 200, "message": "reset"}))
}

async fn not_found(State(shared): State<Arc<Host>>) -> Response {
    shared
        .face
        .no_route(StatusCode::NOT_FOUND, "not found")
        .into_response()
}

async fn method_not_allowed(State(shared): State<Arc<Host>>) -> Response {
    shared
        .face
        .no_route(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generate_route_is_named() {
        for path in GENERATE_PATHS {
            assert_eq!(generate_path(path), path);
        }
    }
}
