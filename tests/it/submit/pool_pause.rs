//! A 429 slows the whole pool, not just the worker that got it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::common::*;

/// Arrival times; the very first request is answered 429 + Retry-After: 1.
type Arrivals = Arc<Mutex<Vec<Instant>>>;

async fn generate(State(arrivals): State<Arrivals>) -> Response {
    let n = {
        let mut a = arrivals.lock().unwrap();
        a.push(Instant::now());
        a.len()
    };
    if n == 1 {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"code":429,"message":"slow down"}"#,
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    // Slow, so the 429 (answered at once) is seen while the other workers
    // still wait for their answers.
    // simulates: a slow API, 200 ms an answer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = format!(r#"{{"code":200,"message":"success","workId":"t{n}"}}"#);
    (StatusCode::OK, body).into_response()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_pauses_every_worker_for_its_retry_after() {
    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/api/v2/generate", post(generate))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 12);
    let args = [manifest.to_str().unwrap(), "--rate", "unlimited", "-j", "4"];
    let out = run_at(&url, "k", &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 13, "12 jobs + the one retry");
    let first = arrivals[0];
    // Before Retry-After has passed, only the requests already in flight
    // when the 429 went out arrive: the first and at most one more per
    // other worker. Counted, not timed: a slow machine delays those, it
    // cannot add to them; a pool that did not pause would send all 12
    // jobs in about 600 ms.
    let early: Vec<_> = arrivals
        .iter()
        .map(|t| t.duration_since(first))
        .filter(|d| *d < Duration::from_millis(950))
        .collect();
    assert!(early.len() <= 4, "requests during the pause: {early:?}");
    // A lower bound (the pause is the product's, and time only moves
    // forward, so it cannot flake).
    let last = arrivals.last().unwrap().duration_since(first);
    assert!(
        last >= Duration::from_secs(1),
        "the pause happened: {last:?}"
    );
}
