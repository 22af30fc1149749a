//! The sandbox's sunoapi, gcui and newapi faces over real HTTP, driven
//! with plain reqwest and serde_json (never batchgen's client): submit
//! answers and every error form, each face's phase words on its poll
//! route, moderation, sunoapi's callbacks to a loopback receiver, credits,
//! gcui's clip-id poll, the relay's batch fetch. Then the real binary
//! against the newapi face: the whole journey with `--sandbox --wait
//! --download`, and collect asking many tasks per request. The udioapi
//! face is the existing tests' (`sandbox`, `sandbox::feed`, …), which run
//! unchanged. Every server listens on `127.0.0.1:0`.
//!
//! Phases are watched by polling and keeping each status the first time it
//! shows: the test asserts the order seen, never a time. The in-process
//! tests run on tokio's paused clock, so the phases pass on virtual time.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use batchgen::job::Provider;
use batchgen::sandbox::{ErrorStatus, MODERATION_MESSAGES, Sandbox, SandboxConfig};
use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::KEY;

use crate::common;

/// Long enough that a poll every few milliseconds sees every phase.
const STAGE: Duration = Duration::from_millis(800);

async fn start(provider: Provider, config: SandboxConfig) -> Sandbox {
    let config = SandboxConfig {
        provider,
        keys: vec![KEY.into()],
        ..config
    };
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn staged() -> SandboxConfig {
    SandboxConfig {
        stage_time: STAGE,
        ..SandboxConfig::default()
    }
}

async fn post_json(sb: &Sandbox, path: &str, key: Option<&str>, body: &Value) -> Answer {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", sb.base_url()))
        .json(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    Answer::of(req.send().await.unwrap()).await
}

async fn get(http: &reqwest::Client, sb: &Sandbox, path: &str) -> Answer {
    let resp = http
        .get(format!("{}{path}", sb.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    Answer::of(resp).await
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl Answer {
    async fn of(resp: reqwest::Response) -> Answer {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            retry_after,
            body,
        }
    }
}

/// A sunoapi description-mode body, complete with its required fields.
fn suno_body(callback: &str) -> Value {
    json!({"customMode": false, "instrumental": false, "model": "V3_5",
           "prompt": "a calm piano track about rain", "callBackUrl": callback})
}

const PLACEHOLDER: &str = "https://batchgen.invalid/callback";

async fn suno_submit(sb: &Sandbox, body: &Value) -> Answer {
    post_json(sb, "/api/v1/generate", Some(KEY), body).await
}

/// Asserts a sunoapi error: `code` in the body, with `http` as the status.
fn suno_error(a: &Answer, code: u64, http: u16) {
    assert_eq!(a.status.as_u16(), http, "{a:?}");
    assert_eq!(a.body["code"], code, "{a:?}");
    assert!(
        a.body["msg"].as_str().is_some_and(|m| !m.is_empty()),
        "{a:?}"
    );
    assert_eq!(a.body["data"], Value::Null, "{a:?}");
}

#[tokio::test(start_paused = true)]
async fn sunoapi_answers_in_its_envelope_with_errors_under_http_200() {
    let sb = start(
        Provider::Sunoapi,
        SandboxConfig {
            credits: 10,
            ..SandboxConfig::default()
        },
    )
    .await;
    let ok = suno_submit(&sb, &suno_body(PLACEHOLDER)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        (&ok.body["code"], &ok.body["msg"]),
        (&json!(200), &json!("success"))
    );
    let id = ok.body["data"]["taskId"].as_str().unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );

    let wrong_key = post_json(
        &sb,
        "/api/v1/generate",
        Some("nope"),
        &suno_body(PLACEHOLDER),
    )
    .await;
    suno_error(&wrong_key, 401, 200);
    let mut no_url = suno_body(PLACEHOLDER);
    no_url.as_object_mut().unwrap().remove("callBackUrl");
    let a = suno_submit(&sb, &no_url).await;
    suno_error(&a, 422, 200);
    assert_eq!(a.body["msg"], "Please enter callBackUrl.");
    let mut bad_model = suno_body(PLACEHOLDER);
    bad_model["model"] = json!("chirp-v3-5");
    suno_error(&suno_submit(&sb, &bad_model).await, 400, 200);
    let mut no_mode = suno_body(PLACEHOLDER);
    no_mode.as_object_mut().unwrap().remove("instrumental");
    suno_error(&suno_submit(&sb, &no_mode).await, 400, 200);
    // sunoapi takes at most 500 characters of description.
    let mut long = suno_body(PLACEHOLDER);
    long["prompt"] = json!("la ".repeat(200));
    suno_error(&suno_submit(&sb, &long).await, 413, 200);
    // The one task spent the 10 credits: 429 is "insufficient credits".
    let broke = suno_submit(&sb, &suno_body(PLACEHOLDER)).await;
    suno_error(&broke, 429, 200);
    assert!(
        broke.retry_after.is_none(),
        "out of credits is not a rate limit"
    );

    let stats = sb.stats();
    assert_eq!(stats.provider, Provider::Sunoapi);
    assert_eq!(stats.accepted, 1);
    assert_eq!(
        stats.responses,
        [(200, 7)].into(),
        "every answer is HTTP 200"
    );
    let codes = [(200, 1), (400, 2), (401, 1), (413, 1), (422, 1), (429, 1)];
    assert_eq!(stats.body_codes, codes.into());
    assert_eq!(stats.tasks[0].path, "/api/v1/generate");
    assert_eq!(stats.tasks[0].body.model.as_deref(), Some("chirp-v3.5"));
    let raw: Value = reqwest::get(format!("{}/sandbox/stats", sb.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["provider"], "sunoapi");
    sb.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn sunoapi_error_status_http_rate_limits_and_faults() {
    let http = SandboxConfig {
        error_status: ErrorStatus::Http,
        ..SandboxConfig::default()
    };
    let limited = start(
        Provider::Sunoapi,
        SandboxConfig {
            rate: Some("1/h".parse().unwrap()),
            ..http.clone()
        },
    )
    .await;
    assert_eq!(
        suno_submit(&limited, &suno_body(PLACEHOLDER)).await.status,
        StatusCode::OK
    );
    let a = suno_submit(&limited, &suno_body(PLACEHOLDER)).await;
    suno_error(&a, 430, 430);
    assert!(a.retry_after.is_some(), "a rate limit says when to retry");
    let a = post_json(&limited, "/api/v1/generate", None, &suno_body(PLACEHOLDER)).await;
    suno_error(&a, 401, 401);
    limited.shutdown().await;

    for (fault, code) in [("500", 500), ("503", 455), ("429", 430)] {
        let config = SandboxConfig {
            fail_500: if fault == "500" { 1.0 } else { 0.0 },
            fail_503: if fault == "503" { 1.0 } else { 0.0 },
            fail_429: if fault == "429" { 1.0 } else { 0.0 },
            fail_429_retry_after: 0,
            ..http.clone()
        };
        let sb = start(Provider::Sunoapi, config.clone()).await;
        suno_error(
            &suno_submit(&sb, &suno_body(PLACEHOLDER)).await,
            code,
            code as u16,
        );
        sb.shutdown().await;
        // The same fault in the default form: the code with HTTP 200.
        let sb = start(
            Provider::Sunoapi,
            SandboxConfig {
                error_status: ErrorStatus::Body,
                ..config
            },
        )
        .await;
        suno_error(&suno_submit(&sb, &suno_body(PLACEHOLDER)).await, code, 200);
        assert_eq!(sb.stats().accepted, 0);
        sb.shutdown().await;
    }
}

/// Polls `path` until `done` says the answer is final; returns each
/// distinct `status` in the order first seen, with the answer then.
async fn watch(
    sb: &Sandbox,
    path: &str,
    status: impl Fn(&Value) -> String,
    done: impl Fn(&str) -> bool,
) -> Vec<(String, Value)> {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen: Vec<(String, Value)> = Vec::new();
    loop {
        let a = get(&http, sb, path).await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        let s = status(&a.body);
        if seen.last().is_none_or(|(last, _)| *last != s) {
            seen.push((s.clone(), a.body));
        }
        if done(&s) || Instant::now() > deadline {
            return seen;
        }
        // simulates: a client polling every 5 ms (on the paused clock).
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn fetch_bytes(url: &str) -> Vec<u8> {
    let resp = reqwest::get(url).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test(start_paused = true)]
async fn sunoapi_record_info_walks_the_documented_statuses() {
    let sb = start(Provider::Sunoapi, staged()).await;
    let mut body = suno_body(PLACEHOLDER);
    body["customMode"] = json!(true);
    body["model"] = json!("V4_5PLUS");
    body["style"] = json!("synthwave");
    body["title"] = json!("Neon");
    body["negativeTags"] = json!("metal");
    let id = suno_submit(&sb, &body).await.body["data"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/generate/record-info?taskId={id}");
    let status = |b: &Value| b["data"]["status"].as_str().unwrap().to_owned();
    let seen = watch(&sb, &path, status, |s| s == "SUCCESS").await;
    let names: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        names,
        ["PENDING", "TEXT_SUCCESS", "FIRST_SUCCESS", "SUCCESS"]
    );

    let data = |i: usize| &seen[i].1["data"];
    assert_eq!(data(0)["response"]["sunoData"], json!([]));
    for i in 0..4 {
        assert_eq!(data(i)["taskId"], id.as_str());
        assert_eq!(data(i)["type"], "GENERATE");
        assert_eq!(data(i)["errorCode"], Value::Null);
        let param: Value = serde_json::from_str(data(i)["param"].as_str().unwrap()).unwrap();
        assert_eq!(param["model"], "V4_5PLUS", "param is the request as sent");
    }
    let clips = |i: usize| data(i)["response"]["sunoData"].as_array().unwrap().clone();
    let text = clips(1);
    assert_eq!(text.len(), 2);
    assert!(
        text.iter()
            .all(|c| c["audioUrl"] == "" && !c["id"].as_str().unwrap().is_empty())
    );
    let first = clips(2);
    assert_ne!(
        first[0]["audioUrl"], "",
        "the first clip is final at FIRST_SUCCESS"
    );
    assert_eq!(first[1]["audioUrl"], "", "the second only streams");
    assert_ne!(first[1]["streamAudioUrl"], "");
    let done = clips(3);
    for clip in &done {
        assert_eq!(clip["tags"], "synthwave");
        assert_eq!(clip["title"], "Neon");
        assert_eq!(clip["modelName"], "chirp-v4-5-plus");
        let created = clip["createTime"].as_str().unwrap();
        assert!(
            created.len() == 19 && created.as_bytes()[10] == b' ',
            "{created}"
        );
        let mp3 = fetch_bytes(clip["audioUrl"].as_str().unwrap()).await;
        assert_eq!(&mp3[..2], [0xFF, 0xFB], "a real MP3");
        let secs = clip["duration"].as_f64().unwrap();
        assert!((secs - common::sandbox_mp3_secs(mp3.len())).abs() < 1e-6);
    }

    let http = reqwest::Client::new();
    let unknown = get(&http, &sb, "/api/v1/generate/record-info?taskId=nope").await;
    assert_eq!(
        (unknown.status, &unknown.body["code"]),
        (StatusCode::OK, &json!(404))
    );
    let credit = get(&http, &sb, "/api/v1/generate/credit").await;
    assert_eq!(
        credit.body,
        json!({"code": 200, "msg": "success", "data": 1_000_000 - 10})
    );
    assert!(sb.stats().feed_requests >= 4);
    assert_eq!(
        sb.stats().callbacks_sent,
        0,
        "nothing is posted to .invalid"
    );
    sb.shutdown().await;
}

/// A callback receiver on loopback that records every body, and tells.
async fn receiver() -> (String, watch::Receiver<Vec<Value>>) {
    let (log, got) = watch::channel(Vec::new());
    let log = Arc::new(log);
    let hook = move |axum::Json(body): axum::Json<Value>| {
        log.send_modify(|got| got.push(body));
        std::future::ready(axum::http::StatusCode::OK)
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = Router::new().route("/hook", post(hook));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// Waits for the `n`th callback body (told by the receiver, not polled).
async fn wait_for(got: &watch::Receiver<Vec<Value>>, n: usize) -> Vec<Value> {
    let mut got = got.clone();
    let arrived =
        tokio::time::timeout(common::wait::WAIT, got.wait_for(|got| got.len() >= n)).await;
    let arrived = arrived.unwrap_or_else(|_| panic!("{n} callbacks never came"));
    arrived.expect("the receiver runs").clone()
}

#[tokio::test(start_paused = true)]
async fn sunoapi_callbacks_come_at_each_stage_in_its_envelope() {
    let sb = start(Provider::Sunoapi, staged()).await;
    let (url, got) = receiver().await;
    let ok = suno_submit(&sb, &suno_body(&url)).await;
    let id = ok.body["data"]["taskId"].as_str().unwrap().to_owned();
    let mut bad = suno_body(&url);
    bad["prompt"] = json!("a forbidden song");
    let bad_id = suno_submit(&sb, &bad).await.body["data"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let bodies = wait_for(&got, 5).await;
    let of = |task: &str| -> Vec<Value> {
        bodies
            .iter()
            .filter(|b| b["data"]["task_id"] == task)
            .cloned()
            .collect()
    };
    let good = of(&id);
    let kinds: Vec<(&Value, &Value, &Value)> = good
        .iter()
        .map(|b| (&b["code"], &b["msg"], &b["data"]["callbackType"]))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                &json!(200),
                &json!("Text generation completed successfully."),
                &json!("text")
            ),
            (
                &json!(200),
                &json!("First audio generated successfully."),
                &json!("first")
            ),
            (
                &json!(200),
                &json!("All generated successfully."),
                &json!("complete")
            ),
        ]
    );
    let complete = good[2]["data"]["data"].as_array().unwrap();
    assert_eq!(complete.len(), 2);
    let info = get(
        &reqwest::Client::new(),
        &sb,
        &format!("/api/v1/generate/record-info?taskId={id}"),
    )
    .await;
    for (clip, polled) in complete.iter().zip(
        info.body["data"]["response"]["sunoData"]
            .as_array()
            .unwrap(),
    ) {
        assert_eq!(clip["id"], polled["id"]);
        assert_eq!(clip["audio_url"], polled["audioUrl"], "snake_case here");
        assert!(clip.get("audioUrl").is_none());
        assert_ne!(clip["audio_url"], "");
        assert!(clip["duration"].as_f64().unwrap() > 0.0);
    }

    let moderated = of(&bad_id);
    assert_eq!(moderated.len(), 2, "text, then the error");
    let error = &moderated[1];
    assert_eq!(error["code"], 400);
    assert_eq!(error["data"]["callbackType"], "error");
    assert_eq!(error["data"]["data"], json!([]));
    assert!(MODERATION_MESSAGES.contains(&error["msg"].as_str().unwrap()));
    let info = get(
        &reqwest::Client::new(),
        &sb,
        &format!("/api/v1/generate/record-info?taskId={bad_id}"),
    )
    .await;
    assert_eq!(info.body["data"]["status"], "SENSITIVE_WORD_ERROR");
    assert_eq!(info.body["data"]["errorCode"], 400);
    assert_eq!(info.body["data"]["errorMessage"], error["msg"]);
    assert_eq!(info.body["data"]["response"]["sunoData"], json!([]));
    assert_eq!(sb.stats().callbacks_sent, 5);
    sb.shutdown().await;
}

/// `--record-shape snake` puts record-info's clips in `response.data[]`
/// in snake_case; a description job's clips carry the title and style the
/// service wrote; `--fail-531` fails a task after its text stage with
/// callback code 531 and GENERATE_AUDIO_FAILED, and gives its credits back.
#[tokio::test(start_paused = true)]
async fn sunoapi_snake_records_generated_titles_and_the_531_failure() {
    let config = SandboxConfig {
        stage_time: Duration::from_millis(100),
        record_shape: batchgen::sandbox::RecordShape::Snake,
        credits: 30,
        ..SandboxConfig::default()
    };
    let sb = start(Provider::Sunoapi, config.clone()).await;
    let http = reqwest::Client::new();
    let id = suno_submit(&sb, &suno_body(PLACEHOLDER)).await.body["data"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/generate/record-info?taskId={id}");
    let done = loop {
        let a = get(&http, &sb, &path).await;
        if a.body["data"]["status"] == "SUCCESS" {
            break a.body;
        }
        // simulates: a client polling every 20 ms (on the paused clock).
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let response = &done["data"]["response"];
    assert!(response.get("sunoData").is_none(), "{response}");
    let clips = response["data"].as_array().unwrap();
    assert_eq!(clips.len(), 2);
    for clip in clips {
        assert!(
            clip["audio_url"].as_str().unwrap().ends_with(".mp3"),
            "{clip}"
        );
        assert!(clip.get("audioUrl").is_none(), "snake_case only: {clip}");
        assert_eq!(clip["title"], "Calm Piano Rain", "from the description");
        let style = clip["tags"].as_str().unwrap();
        assert!(style.ends_with(" bpm") && style.contains(", "), "{style}");
    }

    let (url, got) = receiver().await;
    let sb = start(
        Provider::Sunoapi,
        SandboxConfig {
            fail_531: 1.0,
            ..config
        },
    )
    .await;
    let id = suno_submit(&sb, &suno_body(&url)).await.body["data"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned();
    let credit = |a: Answer| a.body["data"].as_u64().unwrap();
    assert_eq!(credit(get(&http, &sb, "/api/v1/generate/credit").await), 20);
    let calls = wait_for(&got, 2).await;
    let kinds: Vec<(&Value, &Value)> = calls
        .iter()
        .map(|c| (&c["code"], &c["data"]["callbackType"]))
        .collect();
    assert_eq!(
        kinds,
        [
            (&json!(200), &json!("text")),
            (&json!(531), &json!("error"))
        ]
    );
    assert!(calls[1]["msg"].as_str().unwrap().contains("refunded"));
    let path = format!("/api/v1/generate/record-info?taskId={id}");
    let record = get(&http, &sb, &path).await.body;
    assert_eq!(record["data"]["status"], "GENERATE_AUDIO_FAILED");
    assert_eq!(record["data"]["errorCode"], 531);
    assert_eq!(
        credit(get(&http, &sb, "/api/v1/generate/credit").await),
        30,
        "the credits are given back"
    );
    assert_eq!(sb.stats().credits_refunded, 10);
}

fn gcui_custom() -> Value {
    json!({"prompt": "[Verse]\nneon rain", "tags": "synthwave", "title": "Neon",
           "negative_tags": "metal", "make_instrumental": false, "model": "chirp-v4",
           "wait_audio": false})
}

#[tokio::test(start_paused = true)]
async fn gcui_answers_two_clips_and_polls_them_by_id() {
    let sb = start(Provider::Gcui, staged()).await;
    // No key: a self-hosted gcui holds the Suno cookie itself.
    let a = post_json(&sb, "/api/custom_generate", None, &gcui_custom()).await;
    assert_eq!(a.status, StatusCode::OK);
    let clips = a.body.as_array().expect("a bare array of clips");
    assert_eq!(clips.len(), 2);
    for clip in clips {
        assert_eq!(clip["status"], "submitted");
        assert_eq!(
            (&clip["tags"], &clip["negative_tags"]),
            (&json!("synthwave"), &json!("metal"))
        );
        assert_eq!(clip["model_name"], "chirp-v4");
        assert_eq!(clip["type"], "gen");
        assert!(chrono::DateTime::parse_from_rfc3339(clip["created_at"].as_str().unwrap()).is_ok());
    }
    let ids: Vec<&str> = clips.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let joined = ids.join(",");
    let stats = sb.stats();
    assert_eq!(
        stats.tasks[0].task_id, joined,
        "the two clip ids are the task"
    );
    assert_eq!(stats.tasks[0].body.custom_mode, Some(true));
    assert_eq!(stats.tasks[0].body.style.as_deref(), Some("synthwave"));
    assert_eq!(stats.tasks[0].body.model.as_deref(), Some("chirp-v4-0"));

    let path = format!("/api/get?ids={joined}");
    let status = |b: &Value| {
        let s: Vec<&str> = b
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["status"].as_str().unwrap())
            .collect();
        assert_eq!(s.len(), 2);
        s[0].to_owned()
    };
    let seen = watch(&sb, &path, status, |s| s == "complete").await;
    let names: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(names, ["submitted", "queued", "streaming", "complete"]);
    let streaming = &seen[2].1[0];
    assert!(
        streaming["audio_url"]
            .as_str()
            .unwrap()
            .contains("/media/stream/")
    );
    assert_eq!(streaming["duration"], Value::Null);
    for (clip, id) in seen[3].1.as_array().unwrap().iter().zip(&ids) {
        assert_eq!(clip["id"], *id, "in the order asked");
        let mp3 = fetch_bytes(clip["audio_url"].as_str().unwrap()).await;
        assert_eq!(&mp3[..2], [0xFF, 0xFB]);
        assert!(clip["duration"].as_f64().unwrap() > 0.0);
        assert_eq!(clip["lyric"], "[Verse]\nneon rain");
    }

    let http = reqwest::Client::new();
    let one = get(&http, &sb, &format!("/api/get?ids={}", ids[1])).await;
    assert_eq!(one.body.as_array().unwrap().len(), 1);
    assert_eq!(one.body[0]["id"], ids[1]);
    assert_eq!(
        get(&http, &sb, "/api/get?ids=unknown").await.body,
        json!([])
    );
    let described = post_json(
        &sb,
        "/api/generate",
        None,
        &json!({"prompt": "tides at dusk"}),
    )
    .await;
    assert_eq!(described.status, StatusCode::OK, "{described:?}");
    assert_eq!(described.body[0]["gpt_description_prompt"], "tides at dusk");
    assert_eq!(
        described.body[0]["model_name"], "chirp-fenix",
        "no model sent: the host's default (the catalogue's, as batchgen sends it)"
    );
    let all = get(&http, &sb, "/api/get").await;
    assert_eq!(
        all.body.as_array().unwrap().len(),
        4,
        "every clip, newest first"
    );
    assert_eq!(all.body[0]["id"], described.body[0]["id"]);
    let limit = get(&http, &sb, "/api/get_limit").await;
    assert_eq!(
        limit.body,
        json!({"credits_left": 1_000_000 - 20, "period": "month",
               "monthly_limit": 1_000_000, "monthly_usage": 20})
    );
    assert_eq!(sb.stats().provider, Provider::Gcui);
    sb.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn gcui_errors_and_moderation() {
    let sb = start(
        Provider::Gcui,
        SandboxConfig {
            credits: 10,
            rate: Some("1/h".parse().unwrap()),
            ..staged()
        },
    )
    .await;
    let error = |a: &Answer, status: u16| {
        assert_eq!(a.status.as_u16(), status, "{a:?}");
        a.body["error"].as_str().unwrap().to_owned()
    };
    let mut no_title = gcui_custom();
    no_title.as_object_mut().unwrap().remove("title");
    // The limiter judges a request before its body: the first takes the
    // hour's one slot, and the next is refused whatever it says.
    let mut forbidden = gcui_custom();
    forbidden["title"] = json!("Forbidden Neon");
    let ok = post_json(&sb, "/api/custom_generate", None, &forbidden).await;
    assert_eq!(ok.status, StatusCode::OK);
    let a = post_json(&sb, "/api/custom_generate", None, &no_title).await;
    assert!(!error(&a, 429).is_empty());
    assert!(a.retry_after.is_some());
    sb.shutdown().await;

    let sb = start(
        Provider::Gcui,
        SandboxConfig {
            credits: 10,
            ..staged()
        },
    )
    .await;
    assert!(
        error(
            &post_json(&sb, "/api/custom_generate", None, &no_title).await,
            400
        )
        .contains("title")
    );
    let mut bad_model = gcui_custom();
    bad_model["model"] = json!("V5");
    error(
        &post_json(&sb, "/api/custom_generate", None, &bad_model).await,
        400,
    );
    let ok = post_json(&sb, "/api/custom_generate", None, &forbidden).await;
    let id = ok.body[0]["id"].as_str().unwrap().to_owned();
    let broke = post_json(&sb, "/api/custom_generate", None, &gcui_custom()).await;
    assert_eq!(error(&broke, 402), "Insufficient credits");
    let status = |b: &Value| b[0]["status"].as_str().unwrap().to_owned();
    let seen = watch(&sb, &format!("/api/get?ids={id}"), status, |s| s == "error").await;
    let last = &seen.last().unwrap().1[0];
    assert_eq!(last["status"], "error");
    assert!(MODERATION_MESSAGES.contains(&last["error_message"].as_str().unwrap()));
    assert_eq!(last["audio_url"], "");
    sb.shutdown().await;

    let sb = start(
        Provider::Gcui,
        SandboxConfig {
            fail_500: 1.0,
            ..SandboxConfig::default()
        },
    )
    .await;
    let a = post_json(&sb, "/api/generate", None, &json!({"prompt": "x"})).await;
    assert!(error(&a, 500).starts_with("Internal server error: "));
    assert_eq!(sb.stats().accepted, 0);
    sb.shutdown().await;
}

#[test]
fn the_flags_pick_the_provider_and_the_error_form() {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sandbox: SandboxConfig,
    }
    let c = Cli::parse_from(["x", "--provider", "kie.ai", "--error-status", "http"]).sandbox;
    assert_eq!(
        (c.provider, c.error_status),
        (Provider::Kie, ErrorStatus::Http)
    );
    let d = Cli::parse_from(["x"]).sandbox;
    assert_eq!(
        (d.provider, d.error_status),
        (Provider::Udioapi, ErrorStatus::Body)
    );
    assert!(Cli::try_parse_from(["x", "--provider", "suno"]).is_err());
}

// ---------------------------------------------------------------- newapi

#[tokio::test(start_paused = true)]
async fn newapi_answers_in_the_relays_shapes_and_fetches_in_batches() {
    let sb = start(
        Provider::Newapi,
        SandboxConfig {
            credits: 20,
            ..SandboxConfig::default()
        },
    )
    .await;
    let body = json!({"gpt_description_prompt": "tides at dusk", "mv": "chirp-crow",
                      "make_instrumental": false});
    let ok = post_json(&sb, "/suno/submit/music", Some(KEY), &body).await;
    assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
    assert_eq!(ok.body["code"], "success");
    let id = ok.body["data"].as_str().unwrap().to_owned();
    let custom = json!({"prompt": "[Verse] neon", "tags": "synthwave", "title": "Neon",
                        "mv": "chirp-bluejay"});
    let ok = post_json(&sb, "/suno/submit/music", Some(KEY), &custom).await;
    let second = ok.body["data"].as_str().unwrap().to_owned();

    let bad_key = post_json(&sb, "/suno/submit/music", Some("nope"), &body).await;
    assert_eq!(bad_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad_key.body["error"]["type"], "new_api_error");
    let mut stale = body.clone();
    stale.as_object_mut().unwrap().remove("mv");
    let a = post_json(&sb, "/suno/submit/music", Some(KEY), &stale).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "the relay's chirp-v3-0");
    assert_eq!(a.body["code"], "invalid_request");
    let broke = post_json(&sb, "/suno/submit/music", Some(KEY), &body).await;
    assert_eq!(broke.status, StatusCode::FORBIDDEN, "{broke:?}");
    assert_eq!(broke.body["code"], "insufficient_user_quota");

    let http = reqwest::Client::new();
    let one = get(&http, &sb, &format!("/suno/fetch/{id}")).await;
    assert_eq!(one.body["code"], "success");
    assert_eq!(one.body["data"]["task_id"], id.as_str());
    assert_eq!(one.body["data"]["action"], "MUSIC");
    let unknown = get(&http, &sb, "/suno/fetch/task_nope").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["code"], "task_not_exist");
    let before = sb.stats().feed_requests;
    let many = reqwest::Client::new()
        .post(format!("{}/suno/fetch", sb.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"ids": [second, "task_nope", id], "action": "MUSIC"}))
        .send()
        .await
        .unwrap();
    let many = Answer::of(many).await;
    assert_eq!(many.body["code"], "success");
    let listed: Vec<&str> = many.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 2, "the unknown ID is left out: {listed:?}");
    assert!(listed.contains(&id.as_str()) && listed.contains(&second.as_str()));
    assert_eq!(
        sb.stats().feed_requests,
        before + 1,
        "one request, many tasks"
    );
    assert_eq!(sb.stats().tasks[0].body.model.as_deref(), Some("chirp-v5"));
    let usage = get(&http, &sb, "/v1/dashboard/billing/usage").await;
    assert!(usage.body["total_usage"].as_f64().unwrap() > 0.0);
    sb.shutdown().await;
}

/// Jobs of every mode, the default model included (sent as the relay's
/// current model, never its stale default).
fn newapi_manifest(dir: &std::path::Path, jobs: usize) -> std::path::PathBuf {
    let mut text = String::from("id,prompt,custom_mode,make_instrumental,title,style\n");
    for i in 0..jobs {
        match i % 3 {
            0 => text.push_str(&format!(
                "desc-{i},\"a calm song about rain, take {i}\",,,,\n"
            )),
            1 => text.push_str(&format!(
                "custom-{i},\"[Verse] harbor lights {i}\",true,false,Harbor {i},\"indie folk\"\n"
            )),
            _ => text.push_str(&format!("inst-{i},,true,true,Theme {i},orchestral\n")),
        }
    }
    common::write(dir, "jobs.csv", &text)
}

/// The catalog CSV batchgen wrote in `dir`, as rows of name → value.
fn catalog_rows(dir: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let path = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".catalog.csv"))
        .expect("a catalog");
    let mut reader = csv::Reader::from_path(path).unwrap();
    reader.deserialize().map(Result::unwrap).collect()
}

/// The count of polls collect reported (`…; N polls`).
fn polls_reported(stderr: &str) -> u64 {
    let at = stderr.find(" polls").expect("the collect line");
    let digits: String = stderr[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn newapi_the_whole_journey_with_sandbox_wait_download() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = 9;
    let manifest = newapi_manifest(dir.path(), jobs);
    let songs = dir.path().join("songs");
    let out = common::run_with_env(
        vec![
            common::arg(&manifest).into(),
            "--provider".into(),
            "newapi".into(),
            "--sandbox".into(),
            "--wait".into(),
            "--download".into(),
            common::arg(&songs).into(),
            "--rate".into(),
            "unlimited".into(),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let rows = catalog_rows(dir.path());
    assert_eq!(rows.len(), 2 * jobs, "two songs a job: {rows:?}");
    for row in &rows {
        assert_eq!(row["status"], "complete", "{row:?}");
        let bytes = std::fs::read(&row["file"]).unwrap();
        assert!(bytes.starts_with(b"ID3") && bytes.len() > 10_000, "{row:?}");
        assert_eq!(row["model"], "chirp-crow", "the current model: {row:?}");
    }
    let mp3s = std::fs::read_dir(&songs)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "mp3")
        })
        .count();
    assert_eq!(mp3s, 2 * jobs);
    let polls = polls_reported(&common::stderr(&out));
    assert!(
        polls < jobs as u64,
        "{polls} poll requests for {jobs} tasks: {}",
        common::stderr(&out)
    );
}

/// collect asks the relay for many tasks per request: fewer requests than
/// tasks reach the sandbox, each counted once, and every song arrives.
#[tokio::test(flavor = "multi_thread")]
async fn newapi_collect_polls_many_tasks_per_request() {
    let sb = common::sandbox(SandboxConfig {
        provider: Provider::Newapi,
        stage_time: Duration::from_millis(150),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = 30;
    let manifest = newapi_manifest(dir.path(), jobs);
    let results = dir.path().join("jobs.results.csv");
    let key = vec![("BATCHGEN_API_KEY".to_owned(), sb.key().to_owned())];
    let base = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend([
            "--provider".into(),
            "newapi".into(),
            "--base-url".into(),
            sb.base_url(),
        ]);
        all
    };
    let out = common::run_with_env(
        base(&[
            common::arg(&manifest),
            "--out",
            common::arg(&results),
            "--rate",
            "unlimited",
        ]),
        key.clone(),
    )
    .await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    assert_eq!(sb.stats().accepted, jobs as u64);
    let before = sb.stats().feed_requests;
    let out = common::run_with_env(
        base(&[
            "collect",
            common::arg(&results),
            "--download",
            common::arg(&dir.path().join("songs")),
            "--poll-interval",
            "100ms",
            "--poll-rate",
            "unlimited",
            "--deadline",
            "120s",
        ]),
        key,
    )
    .await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let rows = catalog_rows(dir.path());
    assert_eq!(rows.len(), 2 * jobs);
    assert!(rows.iter().all(|r| r["status"] == "complete"), "{rows:?}");
    let requests = sb.stats().feed_requests - before;
    assert!(
        requests < jobs as u64 / 2,
        "{requests} poll requests for {jobs} tasks"
    );
    assert_eq!(
        polls_reported(&common::stderr(&out)),
        requests,
        "collect counts requests, as the sandbox does"
    );
    sb.shutdown().await;
}

/// `credits` against a relay checks the key and says why it shows no
/// balance, rather than guessing one; a refused key is exit 77.
#[tokio::test(flavor = "multi_thread")]
async fn newapi_credits_check_the_key_and_show_no_balance() {
    let sb = start(Provider::Newapi, SandboxConfig::default()).await;
    let credits = |key: &str| {
        common::run_with_env(
            vec![
                "credits".into(),
                "--provider".into(),
                "newapi".into(),
                "--base-url".into(),
                sb.base_url(),
            ],
            vec![("BATCHGEN_API_KEY".into(), key.into())],
        )
    };
    let out = credits(KEY).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("the key is accepted") && said.contains("no balance in credits"),
        "{said}"
    );
    let out = credits("sk-wrong-key-1").await;
    assert_eq!(common::code(&out), 77, "{}", common::stderr(&out));
    sb.shutdown().await;
}

/// `--provider kie --sandbox --wait --download`: kie's face (its codes,
/// its credits path) from submit to songs on disk, the jobs naming no
/// model sent the catalogue's current default.
#[tokio::test(flavor = "multi_thread")]
async fn kie_the_whole_journey_with_sandbox_wait_download() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = 6;
    let manifest = newapi_manifest(dir.path(), jobs);
    let songs = dir.path().join("songs");
    let out = common::run_with_env(
        vec![
            common::arg(&manifest).into(),
            "--provider".into(),
            "kie".into(),
            "--sandbox".into(),
            "--wait".into(),
            "--download".into(),
            common::arg(&songs).into(),
            "--rate".into(),
            "unlimited".into(),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let rows = catalog_rows(dir.path());
    assert_eq!(rows.len(), 2 * jobs, "two songs a job: {rows:?}");
    for row in &rows {
        assert_eq!(row["status"], "complete", "{row:?}");
        let bytes = std::fs::read(&row["file"]).unwrap();
        assert!(bytes.starts_with(b"ID3") && bytes.len() > 10_000, "{row:?}");
        assert_eq!(
            row["model"], "chirp-v4-5-all",
            "the current default: {row:?}"
        );
    }
}
