//! The read side of the API: the feeds a client polls for a task's clips
//! and the credit balance.
//!
//! - `GET /api/v2/feed?workId=<id>`: `{"code":200,"message":"success","data":
//!   {"type","request_body","response_data":[clips]}}`; `response_data` is
//!   empty until the task reaches its `text` stage.
//! - `GET /api/feed?workId=<id>`: the legacy feed, a bare array of the same
//!   clips with no envelope; before `text` both clips are already there,
//!   with status `new` and no media URLs.
//! - `GET /api/v2/credits`: `{"code":200,"message":"success","data":
//!   {"credits":left,"used_credits":spent}}`.
//!
//! All need the key (401 otherwise, as for generate). A feed for an unknown
//! `workId` is 404 `{"code":404,"message":"task not found"}` on both feeds;
//! no `workId` is 400. Feeds and credits are never rate limited nor faulty
//! (the faults imitate the submit path), but `--latency` delays them too.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Shared;
use super::api::ApiError;
use super::lifecycle::{self, Phase};
use super::state::Task;

/// Which feed a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    V2,
    Legacy,
}

pub(super) async fn v2(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    feed(&shared, &headers, query.as_deref(), Feed::V2).await
}

pub(super) async fn legacy(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    feed(&shared, &headers, query.as_deref(), Feed::Legacy).await
}

pub(super) async fn credits(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let answer = shared.authorize(&headers).map(|()| {
        let used = shared.lock().records.credits_used;
        json!({
            "code": 200,
            "message": "success",
            "data": {"credits": shared.credits.saturating_sub(used), "used_credits": used},
        })
    });
    answer_after_latency(&shared, answer).await
}

async fn feed(shared: &Shared, headers: &HeaderMap, query: Option<&str>, kind: Feed) -> Response {
    let answer = look_up(shared, headers, query).map(|(task, phase)| {
        let clips = lifecycle::clips(&task, phase, &shared.base_url);
        match kind {
            Feed::Legacy => Value::from(clips),
            Feed::V2 => json!({
                "code": 200,
                "message": "success",
                "data": {
                    "type": phase.task_type(),
                    "request_body": task.fields,
                    "response_data": if phase == Phase::New { Vec::new() } else { clips },
                },
            }),
        }
    });
    answer_after_latency(shared, answer).await
}

/// Counts the request and finds its task (a copy, so no lock is kept) and
/// the task's phase now; or the error answer.
fn look_up(
    shared: &Shared,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(Task, Phase), ApiError> {
    shared.lock().records.feed_requests += 1;
    shared.authorize(headers)?;
    let work_id = query
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(name, _)| name == "workId")
                .map(|(_, value)| value.trim().to_owned())
        })
        .filter(|id| !id.is_empty())
        .ok_or(ApiError(StatusCode::BAD_REQUEST, "workId is required"))?;
    let state = shared.lock();
    let task = state
        .records
        .tasks
        .get(&work_id)
        .ok_or(ApiError(StatusCode::NOT_FOUND, "task not found"))?;
    Ok((task.clone(), shared.lifecycle.phase(task, Instant::now())))
}

async fn answer_after_latency(shared: &Shared, answer: Result<Value, ApiError>) -> Response {
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    match answer {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}
