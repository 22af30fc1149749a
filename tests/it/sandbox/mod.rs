//! The sandbox over real HTTP: each test starts one on `127.0.0.1:0` and
//! talks to it with reqwest, as batchgen's client will. What it does after
//! a submit is in [`feed`], its other providers' faces in [`providers`],
//! several accounts (keys) on one host in [`keys`],
//! and the real binary's whole journey against its documented mode in
//! [`documented`].

mod documented;
mod feed;
mod keys;
mod providers;

use std::net::SocketAddr;
use std::time::Duration;

use batchgen::job::JobFields;
use batchgen::sandbox::{Injected, KeyStats, Sandbox, SandboxConfig, Stats};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::{Value, json};
use tokio::time::Instant;

/// The key every sandbox of these tests accepts.
const KEY: &str = "sk-test";

async fn start(config: SandboxConfig) -> Sandbox {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let config = SandboxConfig {
        keys: vec![KEY.into()],
        ..config
    };
    Sandbox::start(listen, config).await.unwrap()
}

async fn start_default() -> Sandbox {
    start(SandboxConfig::default()).await
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// Asserts the API's error shape and returns the message.
    fn error(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["code"], status, "{body}");
        body["message"].as_str().expect("message").to_owned()
    }
}

async fn send(sb: &Sandbox, key: Option<&str>, body: reqwest::Body) -> reqwest::Result<Reply> {
    send_with(&reqwest::Client::new(), sb, key, body).await
}

async fn send_with(
    client: &reqwest::Client,
    sb: &Sandbox,
    key: Option<&str>,
    body: reqwest::Body,
) -> reqwest::Result<Reply> {
    let mut req = client
        .post(format!("{}/api/generate", sb.base_url()))
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await?;
    Ok(Reply {
        status,
        headers,
        text,
    })
}

async fn post(sb: &Sandbox, body: Value) -> Reply {
    send(sb, Some(KEY), body.to_string().into()).await.unwrap()
}

fn simple() -> Value {
    json!({"prompt": "rain on a tin roof, slow piano"})
}

async fn fetch_stats(sb: &Sandbox) -> Stats {
    let stats: Stats = reqwest::get(format!("{}/sandbox/stats", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, sb.stats(), "endpoint and method agree");
    stats
}

#[tokio::test]
async fn accepted_request_is_answered_and_recorded_once() {
    let sb = start_default().await;
    let body = json!({
        "prompt": "[Verse]\nneon rain", "title": "Neon", "style": "synthwave",
        "custom_mode": true, "model": "chirp-v4-5", "surprise": {"unknown": 1},
    });
    let reply = post(&sb, body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    let answer = reply.json();
    let id = answer["workId"].as_str().unwrap();
    assert_eq!(
        answer,
        json!({"code": 200, "message": "success", "workId": id, "data": {"task_id": id}})
    );
    assert_eq!(id.len(), 20);
    assert!(id.starts_with("gen2"));
    assert!(
        id[4..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );

    let fields: JobFields = serde_json::from_value(body).unwrap();
    let fp = fields.fingerprint();
    let stats = fetch_stats(&sb).await;
    assert_eq!(stats.requests, 1);
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.accepted_by_fingerprint, [(fp.clone(), 1)].into());
    assert_eq!(stats.tasks.len(), 1);
    assert_eq!(stats.tasks[0].task_id, id);
    assert_eq!(stats.tasks[0].fingerprint, fp);
    assert_eq!(stats.tasks[0].body, fields);
    assert_eq!(stats.tasks[0].path, "/api/generate");
    assert_eq!(stats.responses, [(200, 1)].into());
    assert_eq!(stats.injected, Injected::default());

    // Raw JSON too: status keys are strings, the body has no unknown fields.
    let raw: Value = reqwest::get(format!("{}/sandbox/stats", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["responses"], json!({"200": 1}));
    assert_eq!(raw["tasks"][0]["body"].get("surprise"), None);
    sb.shutdown().await;
}

/// Both documented generate paths take a job, with or without a
/// `callback_url` (the current docs mark it required on `/api/generate`;
/// the sandbox is lenient), and the stats say which path each came by.
#[tokio::test]
async fn v2_path_and_legacy_body_token_are_accepted() {
    let sb = start_default().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v2/generate", sb.base_url()))
        .bearer_auth(KEY)
        .json(&simple())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let mut legacy = simple();
    legacy["token"] = KEY.into();
    let reply = send(&sb, None, legacy.to_string().into()).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    let mut hooked = simple();
    hooked["callback_url"] = "https://example.com/hook".into();
    assert_eq!(post(&sb, hooked).await.status, StatusCode::OK);
    let unauthorized = send(&sb, None, simple().to_string().into()).await;
    assert_eq!(unauthorized.unwrap().status, StatusCode::UNAUTHORIZED);

    let stats = sb.stats();
    assert_eq!(stats.accepted, 3);
    assert_eq!(stats.accepted_by_fingerprint.len(), 1, "same content");
    let body = serde_json::to_value(&stats.tasks[1].body).unwrap();
    assert_eq!(body, simple(), "the token is not part of the task");
    let paths: Vec<&str> = stats.tasks.iter().map(|t| t.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/api/v2/generate", "/api/generate", "/api/generate"]
    );
    let by_path = [("/api/generate".into(), 3), ("/api/v2/generate".into(), 1)];
    assert_eq!(
        stats.requests_by_path,
        by_path.into(),
        "every request counts"
    );
}

#[tokio::test]
async fn missing_or_wrong_key_is_401_json() {
    let sb = start_default().await;
    let body = || simple().to_string().into();
    let missing = send(&sb, None, body()).await.unwrap();
    assert!(missing.error(401).contains("API key"));
    send(&sb, Some("sk-wrong"), body())
        .await
        .unwrap()
        .error(401);
    let mut wrong_token = simple();
    wrong_token["token"] = "sk-wrong".into();
    send(&sb, None, wrong_token.to_string().into())
        .await
        .unwrap()
        .error(401);
    // No key and no JSON: the key problem comes first.
    send(&sb, None, "prompt=x".into()).await.unwrap().error(401);

    let stats = sb.stats();
    assert_eq!(stats.requests, 4);
    assert_eq!(stats.accepted, 0);
    assert_eq!(stats.responses, [(401, 4)].into());
}

#[tokio::test]
async fn each_mode_rule_is_a_400_naming_the_field() {
    let sb = start_default().await;
    let cases = [
        (
            json!({"custom_mode": true, "prompt": "words", "style": "lofi"}),
            "title is required in custom mode",
        ),
        (
            json!({"custom_mode": true, "prompt": "words", "title": "T"}),
            "style is required in custom mode",
        ),
        (
            json!({"custom_mode": true, "make_instrumental": true, "title": "T"}),
            "style is required in custom instrumental mode",
        ),
        (
            json!({"make_instrumental": true, "style": "lofi"}),
            "prompt not set: in description instrumental mode a job needs prompt or gpt_description_prompt",
        ),
        (
            json!({"title": "T"}),
            "prompt not set: in description mode a job needs prompt or gpt_description_prompt",
        ),
        (json!({"prompt": "   "}), "prompt is empty"),
        (json!({"prompt": "p", "model": "chirp-v9"}), "unknown model"),
        (
            json!({"prompt": "p", "custom_mode": "yes"}),
            "custom_mode must be a boolean",
        ),
        (json!({"prompt": 12}), "prompt must be a string"),
    ];
    for (body, expected) in &cases {
        let message = post(&sb, body.clone()).await.error(400);
        assert!(message.contains(expected), "{body}: {message:?}");
    }
    // Custom instrumental needs no prompt.
    let ok = json!({"custom_mode": true, "make_instrumental": true, "title": "T", "style": "lofi"});
    assert_eq!(post(&sb, ok).await.status, StatusCode::OK);
    assert_eq!(sb.stats().accepted, 1);
}

#[tokio::test]
async fn over_length_fields_are_topic_too_long() {
    let sb = start_default().await;
    let long = "x".repeat(3001);
    let msg = post(&sb, json!({"prompt": long})).await.error(400);
    assert_eq!(msg, "Topic too long.");
    let style = json!({"custom_mode": true, "prompt": "p", "title": "T", "style": "s".repeat(201)});
    assert_eq!(post(&sb, style).await.error(400), "Topic too long.");
    // chirp-v4-5 allows 5000.
    let v45 = json!({"prompt": long, "model": "chirp-v4-5"});
    assert_eq!(post(&sb, v45).await.status, StatusCode::OK);
    assert_eq!(sb.stats().accepted, 1);
}

#[tokio::test]
async fn non_json_or_non_object_body_is_400() {
    let sb = start_default().await;
    let not_json = send(&sb, Some(KEY), "prompt=rain".into()).await.unwrap();
    assert!(not_json.error(400).contains("not valid JSON"));
    let array = send(&sb, Some(KEY), "[1, 2]".into()).await.unwrap();
    assert!(array.error(400).contains("JSON object"));
    assert_eq!(sb.stats().accepted, 0);
}

/// On the paused clock: the requests are spaced exactly, whatever the
/// machine's load.
#[tokio::test(start_paused = true)]
async fn requests_at_the_rate_pass_and_faster_ones_get_429() {
    let sb = start(SandboxConfig {
        rate: Some("5/s".parse().unwrap()),
        ..SandboxConfig::default()
    })
    .await;
    // One client, built before the clock starts: building one takes long
    // enough in a debug build to skew the spacing by itself.
    let client = reqwest::Client::new();
    // Spaced like batchgen's own limiter: a late request moves the schedule
    // (Delay), it is never caught up with a quick one (Burst).
    let mut ticks = tokio::time::interval(Duration::from_millis(200));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for i in 0..6 {
        ticks.tick().await;
        let reply = send_with(&client, &sb, Some(KEY), simple().to_string().into())
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "request {i}: {}", reply.text);
        // Unauthenticated requests in between do not use up the rate.
        send_with(&client, &sb, None, "{}".into())
            .await
            .unwrap()
            .error(401);
    }

    assert_eq!(sb.stats().rate_limited, 0);
    sb.shutdown().await;

    // A slow rate, so "back to back" holds however loaded the machine is.
    let sb = start(SandboxConfig {
        rate: Some("1/min".parse().unwrap()),
        ..SandboxConfig::default()
    })
    .await;
    let post = async || {
        send_with(&client, &sb, Some(KEY), simple().to_string().into())
            .await
            .unwrap()
    };
    assert_eq!(post().await.status, StatusCode::OK);
    let limited = post().await;
    assert_eq!(limited.error(429), "rate limit exceeded");
    let retry_after: u64 = limited.headers[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    // Unauthenticated requests are never limited.
    send(&sb, None, simple().to_string().into())
        .await
        .unwrap()
        .error(401);
    assert_eq!(post().await.status, StatusCode::TOO_MANY_REQUESTS);

    let stats = sb.stats();
    assert_eq!(stats.rate_limited, 2);
    assert_eq!(stats.accepted, 1, "a limited request creates no task");
    assert_eq!(stats.responses, [(200, 1), (401, 1), (429, 2)].into());
}

fn faulty(config: SandboxConfig) -> SandboxConfig {
    SandboxConfig { seed: 1, ..config }
}

#[tokio::test]
async fn fail_500_and_fail_429_answer_json() {
    let sb = start(faulty(SandboxConfig {
        fail_500: 1.0,
        ..SandboxConfig::default()
    }))
    .await;
    post(&sb, simple()).await.error(500);
    assert_eq!(sb.stats().injected.fail_500, 1);
    assert_eq!(sb.stats().accepted, 0);

    let sb = start(faulty(SandboxConfig {
        fail_429: 1.0,
        ..SandboxConfig::default()
    }))
    .await;
    let reply = post(&sb, simple()).await;
    reply.error(429);
    assert_eq!(reply.headers[RETRY_AFTER], "1");
    let stats = sb.stats();
    assert_eq!((stats.injected.fail_429, stats.rate_limited), (1, 0));
    assert_eq!(stats.accepted, 0);
}

#[tokio::test]
async fn fail_503_answers_a_page_that_is_not_json() {
    let sb = start(faulty(SandboxConfig {
        fail_503: 1.0,
        ..SandboxConfig::default()
    }))
    .await;
    let reply = post(&sb, simple()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(serde_json::from_str::<Value>(&reply.text).is_err());
    assert!(reply.text.contains("Service Temporarily Unavailable"));
    assert_eq!(reply.headers[CONTENT_TYPE], "text/html");
    let stats = sb.stats();
    assert_eq!(stats.injected.fail_503, 1);
    assert_eq!(stats.responses, [(503, 1)].into());
    assert_eq!(stats.accepted, 0);
}

#[tokio::test(start_paused = true)]
async fn slow_answers_late_but_accepts() {
    let delay = Duration::from_millis(300);
    let sb = start(faulty(SandboxConfig {
        slow: 1.0,
        slow_delay: delay,
        ..SandboxConfig::default()
    }))
    .await;
    let started = Instant::now();
    assert_eq!(post(&sb, simple()).await.status, StatusCode::OK);
    // A lower bound, kept: the delay is the product's (`--slow-delay` must
    // delay), and on the paused clock (as on any) time only moves forward,
    // so it cannot flake.
    assert!(started.elapsed() >= delay);
    let stats = sb.stats();
    assert_eq!((stats.injected.slow, stats.accepted), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn latency_delays_every_answer() {
    let latency = Duration::from_millis(200);
    let sb = start(SandboxConfig {
        latency,
        ..SandboxConfig::default()
    })
    .await;
    let started = Instant::now();
    send(&sb, None, "{}".into()).await.unwrap().error(401);
    // A lower bound, kept: `--latency` must delay every answer; time only
    // moves forward, so it cannot flake.
    assert!(started.elapsed() >= latency);
}

#[tokio::test]
async fn drop_before_closes_without_answer_or_task() {
    let sb = start(faulty(SandboxConfig {
        drop_before: 1.0,
        ..SandboxConfig::default()
    }))
    .await;
    let err = send(&sb, Some(KEY), simple().to_string().into())
        .await
        .err()
        .expect("no response");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    assert!(
        err.is_request(),
        "the connection closed mid-request: {err:?}"
    );
    let stats = sb.stats();
    assert_eq!(stats.injected.drop_before, 1);
    assert_eq!(stats.accepted, 0);
    assert!(stats.responses.is_empty());
    // Unauthenticated requests are answered: faults are for real requests.
    send(&sb, None, "{}".into()).await.unwrap().error(401);
}

#[tokio::test]
async fn drop_after_closes_without_answer_but_keeps_the_task() {
    let sb = start(faulty(SandboxConfig {
        drop_after: 1.0,
        ..SandboxConfig::default()
    }))
    .await;
    let err = send(&sb, Some(KEY), simple().to_string().into())
        .await
        .err()
        .expect("no response");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    let stats = sb.stats();
    assert_eq!(stats.injected.drop_after, 1);
    assert_eq!(stats.accepted, 1);
    assert!(stats.responses.is_empty());
    // An invalid request creates no task, so there is nothing to drop after.
    post(&sb, json!({"title": "no prompt"})).await.error(400);
}

/// Status codes (0 for a dropped connection) and task ids of a run of
/// requests against a fresh sandbox with mixed faults.
async fn run_sequence(seed: u64) -> (Vec<u16>, Vec<String>) {
    let sb = start(SandboxConfig {
        fail_500: 0.3,
        fail_503: 0.2,
        drop_before: 0.1,
        drop_after: 0.1,
        seed,
        ..SandboxConfig::default()
    })
    .await;
    // One client, so dropped connections meet reqwest's connection pool.
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..30 {
        let status = match send_with(&client, &sb, Some(KEY), simple().to_string().into()).await {
            Ok(reply) => reply.status.as_u16(),
            Err(_) => 0,
        };
        statuses.push(status);
    }
    let stats = sb.stats();
    assert_eq!(stats.requests, 30, "the client never resent a request");
    let dropped = statuses.iter().filter(|&&s| s == 0).count() as u64;
    assert_eq!(
        dropped,
        stats.injected.drop_before + stats.injected.drop_after
    );
    let ids = stats.tasks.into_iter().map(|t| t.task_id).collect();
    sb.shutdown().await;
    (statuses, ids)
}

#[tokio::test]
async fn same_seed_same_faults_and_ids() {
    let a = run_sequence(42).await;
    let b = run_sequence(42).await;
    assert_eq!(a, b);
    for code in [0, 200, 500, 503] {
        assert!(a.0.contains(&code), "{code} in {:?}", a.0);
    }
    assert_ne!(a, run_sequence(43).await);
}

#[tokio::test]
async fn reset_forgets_everything_and_restarts_the_sequences() {
    let sb = start_default().await;
    let first = post(&sb, simple()).await.json()["workId"].clone();
    post(&sb, json!({})).await.error(400);
    assert_eq!(sb.stats().requests, 2);

    let resp = reqwest::Client::new()
        .post(format!("{}/sandbox/reset", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let fresh = Stats {
        by_key: [(
            KEY.to_owned(),
            KeyStats {
                credits: 1_000_000,
                credits_left: 1_000_000,
                ..KeyStats::default()
            },
        )]
        .into(),
        ..Stats::default()
    };
    assert_eq!(
        fetch_stats(&sb).await,
        fresh,
        "the key's balance is whole again"
    );

    let again = post(&sb, simple()).await.json()["workId"].clone();
    assert_eq!(first, again, "ids restart from the seed");
    assert_eq!(sb.stats().accepted, 1);
}

#[tokio::test]
async fn unknown_routes_are_json_errors_and_random_keys_work() {
    let sb = Sandbox::start("127.0.0.1:0".parse().unwrap(), SandboxConfig::default())
        .await
        .unwrap();
    assert!(sb.key().starts_with("sk-sandbox-"));
    assert!(sb.base_url().starts_with("http://127.0.0.1:"));
    let resp = reqwest::get(format!("{}/api/nothing", sb.base_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 404);
    let resp = reqwest::get(format!("{}/api/generate", sb.base_url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 405);
    let reply = send(&sb, Some(sb.key()), simple().to_string().into())
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let addr = sb.addr();
    sb.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "port closed"
    );
}
