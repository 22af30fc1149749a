//! Callbacks, delivered to a receiver started here on `127.0.0.1:0`.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use batchgen::sandbox::{SandboxConfig, StageStyle};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{clip_stage, custom, feed, ms, staged, start, submit_ok};
use crate::common::poll::stats_until;
use crate::common::wait::WAIT;

/// Every POST body a receiver got, with when (on the paused clock).
type Got = Vec<(Instant, Value)>;

/// A callback receiver: records every POST body; answers 500 to the first
/// `failures` of them, 200 after.
struct Receiver {
    url: String,
    got: watch::Receiver<Got>,
}

async fn receiver(failures: usize) -> Receiver {
    let (log, got) = watch::channel(Got::new());
    let log = Arc::new(log);
    let hook = move |axum::Json(body): axum::Json<Value>| {
        let mut n = 0;
        log.send_modify(|got| {
            got.push((Instant::now(), body));
            n = got.len();
        });
        let status = if n <= failures {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        std::future::ready(status)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().route("/hook", post(hook));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got }
}

impl Receiver {
    /// Waits for the `n`th callback (told by the receiver, not polled).
    async fn wait_for(&self, n: usize) -> Got {
        let mut got = self.got.clone();
        let arrived = tokio::time::timeout(WAIT, got.wait_for(|got| got.len() >= n)).await;
        let arrived = arrived.unwrap_or_else(|_| panic!("{n} callbacks never came"));
        arrived.expect("the receiver runs").clone()
    }

    fn got(&self) -> Got {
        self.got.borrow().clone()
    }
}

fn with_callback(url: &str) -> Value {
    let mut body = custom();
    body["callback_url"] = url.into();
    body
}

/// A callback body without `createTime`, to compare with the feed's clips.
fn without_create_time(body: &Value) -> Value {
    let mut body = body.clone();
    for clip in body.as_array_mut().unwrap() {
        clip.as_object_mut().unwrap().remove("createTime");
    }
    body
}

#[tokio::test(start_paused = true)]
async fn callbacks_arrive_at_each_stage_and_are_retried() {
    let rx = receiver(1).await;
    let sb = start(staged(ms(150))).await;
    let id = submit_ok(&sb, &with_callback(&rx.url)).await;
    let got = rx.wait_for(4).await;
    let stages: Vec<(&str, &str)> = got
        .iter()
        .map(|(_, body)| (body[0]["status"].as_str().unwrap(), clip_stage(&body[0])))
        .collect();
    assert_eq!(
        stages,
        [
            ("text", "text"),
            ("text", "text"),
            ("first", "first"),
            ("first", "final")
        ],
        "the 500 is retried; the final stage is `first` + All generated"
    );
    // A lower bound (the sandbox's backoff must wait): time only moves
    // forward, so it cannot flake.
    assert!(got[1].0 - got[0].0 >= ms(90), "a backoff before the retry");
    for (_, body) in &got {
        let clips = body.as_array().expect("a bare array of clips");
        assert_eq!(clips.len(), 2);
        for clip in clips {
            // An ISO string, as the current callback page shows it.
            let at = clip["createTime"].as_str().unwrap();
            let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
            assert!(at.timestamp_millis() > 1_700_000_000_000, "{at}");
            assert!(!clip["created_at"].is_null(), "both time stamps");
            assert_ne!(clip["id"], "", "callbacks name their clips");
        }
    }
    let complete = feed(&sb, &id).await["data"]["response_data"].clone();
    assert_eq!(
        without_create_time(&got[3].1),
        complete,
        "the same clips as the feed"
    );

    // The sandbox counts a delivery once it has read the answer: after the
    // receiver above saw the body.
    let stats = stats_until(&sb, "the last callback counted", |s| s.callbacks_sent == 3).await;
    let counts = (
        stats.callbacks_sent,
        stats.callback_retries,
        stats.callbacks_failed,
    );
    assert_eq!(counts, (3, 1, 0));
    assert_eq!(rx.got().len(), 4, "nothing more");
    sb.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn complete_only_callbacks_and_an_unreachable_receiver() {
    let rx = receiver(0).await;
    // A port that was free a moment ago: connections are refused.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let sb = start(SandboxConfig {
        callback_complete_only: true,
        ..staged(ms(20))
    })
    .await;
    submit_ok(&sb, &with_callback(&dead)).await;
    submit_ok(&sb, &with_callback(&rx.url)).await;
    let got = rx.wait_for(1).await;
    stats_until(&sb, "the dead receiver given up", |s| {
        s.callbacks_failed > 0
    })
    .await;
    assert_eq!(got.len(), 1);
    assert_eq!(clip_stage(&got[0].1[0]), "final");
    let stats = sb.stats();
    let counts = (
        stats.callbacks_sent,
        stats.callback_retries,
        stats.callbacks_failed,
    );
    assert_eq!(counts, (1, 3, 1), "four tries, then given up");
    sb.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn complete_style_callbacks_end_with_status_complete() {
    let rx = receiver(0).await;
    let sb = start(SandboxConfig {
        stage_style: StageStyle::Complete,
        ..staged(ms(50))
    })
    .await;
    submit_ok(&sb, &with_callback(&rx.url)).await;
    let got = rx.wait_for(3).await;
    let statuses: Vec<&str> = got
        .iter()
        .map(|(_, body)| body[1]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["text", "first", "complete"]);
    assert!(got[2].1[1]["audio_url"].as_str().unwrap().ends_with(".mp3"));
    sb.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_cancels_pending_callbacks() {
    let rx = receiver(0).await;
    let sb = start(staged(ms(500))).await;
    submit_ok(&sb, &with_callback(&rx.url)).await;
    sb.shutdown().await;
    // A callback the shutdown left would be posted in this time (on the
    // paused clock, no real time):
    // simulates: the stages passing, past the last one (at 2 × 500 ms).
    tokio::time::sleep(ms(1200)).await;
    assert!(rx.got().is_empty());
}
