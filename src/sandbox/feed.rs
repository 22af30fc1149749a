//! The read side of the API: the feeds a client polls for a task's clips
//! and the credit balance.
//!
//! - `GET /api/v2/feed?workId=<id>`: `{"code":200,"message":"success","data":
//!   {"type","request_body","response_data":[clips],"created_at"}}`;
//!   `response_data` is empty until the task reaches its text stage, and
//!   `type` follows the stage style (see `lifecycle`).
//! - `GET` or `POST /api/feed?workId=<id>` (the legacy docs' curl sample
//!   POSTs; a JSON body `{"workId": ...}` is read too): the legacy feed, a
//!   bare object **without** the envelope, `{"type","request_body",
//!   "response_data","created_at"}`: `type` is `new|text|first|complete`,
//!   the clips have no `status` and are there from the start, and
//!   `created_at` looks like `"2024-09-05 13:09:01"` (UTC, no zone).
//! - `GET /api/v2/credits`: `{"code":200,"message":"success","data":
//!   {"credits":left,"used_credits":spent}}`.
//!
//! All need the key (401 otherwise, as for generate). A feed for an unknown
//! `workId` is 404 `{"code":404,"message":"task not found"}` on both feeds,
//! and so is another account's task (the docs say nothing of it: the same
//! answer as an unknown id); no `workId` is 400. Credits are the
//! presenting key's own balance. Feeds and credits are never rate limited nor faulty
//! (the faults imitate the submit path), but `--latency` delays them too.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Host;
use super::clips;
use super::lifecycle::{Lifecycle, Phase};
use super::reply::ApiError;
use super::state::Task;

/// Which feed a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FeedKind {
    V2,
    Legacy,
}

pub(super) async fn v2(
    State(shared): State<Arc<Host>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    feed(
        &shared,
        &headers,
        work_id(query.as_deref(), b""),
        FeedKind::V2,
    )
    .await
}

/// The legacy feed, for `GET` and `POST` alike.
pub(super) async fn legacy(
    State(shared): State<Arc<Host>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let id = work_id(query.as_deref(), &body);
    feed(&shared, &headers, id, FeedKind::Legacy).await
}

/// The `workId` of a feed request: from the query, else from a JSON body.
fn work_id(query: Option<&str>, body: &[u8]) -> Option<String> {
    let from_query = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "workId")
            .map(|(_, value)| value.trim().to_owned())
    });
    let from_body = || {
        let body: Value = serde_json::from_slice(body).ok()?;
        Some(body.get("workId")?.as_str()?.trim().to_owned())
    };
    from_query
        .filter(|id| !id.is_empty())
        .or_else(from_body)
        .filter(|id| !id.is_empty())
}

pub(super) async fn credits(State(shared): State<Arc<Host>>, headers: HeaderMap) -> Response {
    let answer = shared.authorize(&headers).map(|account| {
        let (left, used) = shared.balance(account);
        json!({
            "code": 200,
            "message": "success",
            "data": {"credits": left, "used_credits": used},
        })
    });
    answer_after_latency(&shared, answer).await
}

async fn feed(shared: &Host, headers: &HeaderMap, id: Option<String>, kind: FeedKind) -> Response {
    let answer = look_up(shared, headers, id, kind).map(|(task, phase)| {
        let lc = &shared.lifecycle;
        if kind == FeedKind::V2 && lc.task_type(phase) == "SUCCESS" && phase != Phase::Complete {
            shared.lock().records.counts.success_before_final += 1;
        }
        let base = &shared.base_url;
        match kind {
            FeedKind::Legacy => json!({
                "type": Lifecycle::legacy_type(phase),
                "request_body": clips::legacy_request_body(&task),
                "response_data": clips::legacy(lc, &task, phase, base),
                "created_at": clips::legacy_time(task.created_at),
            }),
            FeedKind::V2 => json!({
                "code": 200,
                "message": "success",
                "data": {
                    "type": lc.task_type(phase),
                    "request_body": task.fields,
                    "response_data": if phase == Phase::New {
                        Vec::new()
                    } else {
                        clips::v2(lc, &task, phase, base)
                    },
                    "created_at": clips::iso(task.created_at),
                },
            }),
        }
    });
    answer_after_latency(shared, answer).await
}

/// Counts the request and finds its task (a copy, so no lock is kept) and
/// the task's phase now; or the error answer.
fn look_up(
    shared: &Host,
    headers: &HeaderMap,
    work_id: Option<String>,
    kind: FeedKind,
) -> Result<(Task, Phase), ApiError> {
    if kind == FeedKind::Legacy {
        shared.lock().records.counts.legacy_feed_requests += 1;
    }
    let account = shared
        .poll_account(headers)
        .map_err(|message| ApiError(StatusCode::UNAUTHORIZED, message))?;
    let work_id = work_id.ok_or(ApiError(StatusCode::BAD_REQUEST, "workId is required"))?;
    shared
        .task_now(&work_id, account)
        .ok_or(ApiError(StatusCode::NOT_FOUND, "task not found"))
}

async fn answer_after_latency(shared: &Host, answer: Result<Value, ApiError>) -> Response {
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    match answer {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::work_id;

    #[test]
    fn work_id_from_the_query_or_a_json_body() {
        let id = |q: Option<&str>, body: &str| work_id(q, body.as_bytes());
        assert_eq!(id(Some("workId=gen2a"), ""), Some("gen2a".into()));
        assert_eq!(id(Some("x=1&workId=%20gen2a%20"), ""), Some("gen2a".into()));
        assert_eq!(id(None, r#"{"workId": "gen2b"}"#), Some("gen2b".into()));
        assert_eq!(
            id(Some("workId="), r#"{"workId": "gen2b"}"#),
            Some("gen2b".into())
        );
        for (q, body) in [(None, ""), (Some("workId="), "{}"), (None, "[1]")] {
            assert_eq!(id(q, body), None, "{q:?} {body}");
        }
    }
}
