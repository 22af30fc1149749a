//! A server that answers badly: huge bodies, HTML, the wrong JSON shape.
//! Each becomes a clear row outcome, never a panic, never a huge message.

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use batchgen::files::results::Status;

use crate::common::*;

/// Answers according to the prompt it receives.
async fn generate(body: String) -> Response {
    let prompt: serde_json::Value = serde_json::from_str(&body).unwrap();
    let prompt = prompt["prompt"].as_str().unwrap_or_default().to_owned();
    let (status, content_type, body): (StatusCode, &str, Body) = match prompt.as_str() {
        "huge-ok" => (
            StatusCode::OK,
            "application/json",
            Body::from(vec![b'{'; 50 << 20]),
        ),
        "html-ok" => (
            StatusCode::OK,
            "text/html",
            Body::from("<html><body>hi</body></html>"),
        ),
        "wrong-shape" => (
            StatusCode::OK,
            "application/json",
            Body::from(r#"{"data":[1,2,3],"workId":{"x":1}}"#),
        ),
        "huge-error" => {
            let message = "x".repeat(10 << 20);
            let json = serde_json::json!({"code": 400, "message": message}).to_string();
            (
                StatusCode::BAD_REQUEST,
                "application/json",
                Body::from(json),
            )
        }
        "garbage-500" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            Body::from(vec![0xffu8, 0xfe, 0x00, 0x01]),
        ),
        "teapot" => (
            StatusCode::IM_A_TEAPOT,
            "application/json",
            Body::from("null"),
        ),
        _ => (
            StatusCode::OK,
            "application/json",
            Body::from(r#"{"code":200,"message":"success","workId":"fine-1"}"#),
        ),
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_answers_become_row_errors() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new().route("/api/v2/generate", post(generate));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let cases = [
        "huge-ok",
        "html-ok",
        "wrong-shape",
        "huge-error",
        "garbage-500",
        "teapot",
        "fine",
    ];
    let mut csv = String::from("id,prompt\n");
    for case in cases {
        csv.push_str(&format!("{case},{case}\n"));
    }
    let manifest = write(dir.path(), "hostile.csv", &csv);
    let args = [
        manifest.to_str().unwrap(),
        "--rate",
        "unlimited",
        "--max-attempts",
        "2",
    ];
    let out = run_at(&url, "k", &args).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let rows = results(&dir.path().join("hostile.results.csv"));
    let by_id = |id: &str| rows.iter().find(|r| r.key == id).unwrap();
    for id in ["huge-ok", "html-ok", "wrong-shape"] {
        let row = by_id(id);
        assert_eq!(
            row.status,
            Status::Unknown,
            "a 2xx without a task id may have created one: {row:?}"
        );
        assert!(row.error.contains("unexpected answer"), "{row:?}");
    }
    let huge = by_id("huge-error");
    assert_eq!((huge.status, huge.http_status), (Status::Failed, Some(400)));
    let garbage = by_id("garbage-500");
    assert_eq!(
        (garbage.status, garbage.attempts),
        (Status::Failed, 2),
        "500s are retried"
    );
    assert_eq!(by_id("teapot").status, Status::Failed);
    assert_eq!(by_id("fine").task_id, "fine-1");
    for row in &rows {
        assert!(
            row.error.len() < 600,
            "error messages stay short: {} bytes",
            row.error.len()
        );
        assert!(!row.error.contains('\n'));
    }
}
