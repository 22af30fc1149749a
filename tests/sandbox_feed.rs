//! What the sandbox does after a submit, over real HTTP: feeds, moderation
//! and credits here; callbacks and media files in the submodules. Every
//! sandbox and receiver listens on `127.0.0.1:0`.

use std::time::{Duration, Instant};

use batchgen::sandbox::{Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

// A test crate's root resolves modules next to itself, hence the paths.
#[path = "sandbox_feed/callbacks.rs"]
mod callbacks;
#[path = "sandbox_feed/media.rs"]
mod media;

const KEY: &str = "sk-test";
fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn start(config: SandboxConfig) -> Sandbox {
    let config = SandboxConfig {
        key: Some(KEY.into()),
        ..config
    };
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn staged(stage_time: Duration) -> SandboxConfig {
    SandboxConfig {
        stage_time,
        ..SandboxConfig::default()
    }
}

fn custom() -> Value {
    json!({"custom_mode": true, "prompt": "[Verse]\nneon rain", "title": "Neon",
           "style": "synthwave", "model": "chirp-v4-5", "surprise": 1})
}

/// Submits `body`; returns the HTTP status and the answer.
async fn submit(sb: &Sandbox, body: &Value) -> (StatusCode, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/generate", sb.base_url()))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn submit_ok(sb: &Sandbox, body: &Value) -> String {
    let (status, answer) = submit(sb, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["workId"].as_str().unwrap().to_owned()
}

/// GETs `path` on the sandbox with the key (or without); status and JSON.
async fn get(sb: &Sandbox, path: &str, key: Option<&str>) -> (StatusCode, Value) {
    get_with(&reqwest::Client::new(), sb, path, key).await
}

/// [`get`] with a given client: building one per request is slow in a
/// debug build, too slow for polls that must land inside a stage.
async fn get_with(
    http: &reqwest::Client,
    sb: &Sandbox,
    path: &str,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = http.get(format!("{}{path}", sb.base_url()));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.json().await.unwrap())
}

async fn feed(sb: &Sandbox, id: &str) -> Value {
    let (status, body) = get(sb, &format!("/api/v2/feed?workId={id}"), Some(KEY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Polls the v2 feed until `done` holds (at most 10 s); returns that body.
async fn feed_until(sb: &Sandbox, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body = feed(sb, id).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {body}");
        tokio::time::sleep(ms(10)).await;
    }
}

fn clip_status(body: &Value) -> &str {
    match body["data"]["response_data"][0]["status"].as_str() {
        Some(status) => status,
        None => "new",
    }
}

/// The documented timeline: clip status (`new` for no clips yet) and
/// `data.type`, one after the other.
const TIMELINE: [(&str, &str); 4] = [
    ("new", "IN_PROGRESS"),
    ("text", "IN_PROGRESS"),
    ("first", "IN_PROGRESS"),
    ("complete", "SUCCESS"),
];

/// Where in [`TIMELINE`] a task is after `elapsed`, for the stage time `t`.
fn expected(elapsed: Duration, t: Duration) -> usize {
    [t / 2, t, 2 * t]
        .iter()
        .filter(|&&start| elapsed >= start)
        .count()
}

const DOCUMENTED: [&str; 13] = [
    "id",
    "status",
    "title",
    "tags",
    "audio_url",
    "image_url",
    "duration",
    "model_name",
    "created_at",
    "fail_message",
    "error_message",
    "extra_message",
    "video_url",
];

fn check_clip(clip: &Value, i: usize, status: &str, base: &str) {
    let obj = clip.as_object().unwrap();
    for key in DOCUMENTED {
        assert!(obj.contains_key(key), "{key} in {clip}");
    }
    assert!(
        obj.keys().any(|k| !DOCUMENTED.contains(&k.as_str())),
        "an unknown field"
    );
    let id = clip["id"].as_str().unwrap();
    assert_eq!(
        id.split('-').map(str::len).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert_eq!(clip["status"], status);
    assert_eq!(
        (&clip["title"], &clip["tags"]),
        (&json!("Neon"), &json!("synthwave"))
    );
    assert_eq!(clip["model_name"], "chirp-v4-5");
    assert_eq!(
        (&clip["fail_message"], &clip["error_message"]),
        (&json!(""), &json!(""))
    );
    if i == 0 {
        let iso = clip["created_at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(iso).is_ok(), "{iso}");
    } else {
        assert!(clip["created_at"].as_u64().unwrap() > 1_700_000_000_000);
    }
    let audio = clip["audio_url"].as_str().unwrap();
    match status {
        "text" => assert_eq!(audio, ""),
        "first" => assert_eq!(audio, format!("{base}/media/stream/{id}")),
        _ => assert_eq!(audio, format!("{base}/media/{id}.mp3")),
    }
    assert_eq!(clip["image_url"], format!("{base}/media/{id}.png"));
    let duration = &clip["duration"];
    match (status, i) {
        ("complete", 0) => assert!(duration.as_f64().unwrap() > 2.0, "{duration}"),
        ("complete", _) => assert!(duration.as_str().unwrap().parse::<f64>().unwrap() > 2.0),
        _ => assert_eq!(duration, ""),
    }
}

#[tokio::test]
async fn v2_feed_walks_the_stages_in_time() {
    let t = ms(300);
    let sb = start(staged(t)).await;
    let sent = Instant::now();
    let id = submit_ok(&sb, &custom()).await;
    let answered = Instant::now();
    let mut request_body = custom();
    request_body.as_object_mut().unwrap().remove("surprise");

    let http = reqwest::Client::new();
    let path = format!("/api/v2/feed?workId={id}");
    let mut clip_ids = None;
    // Poll targets: the middle of each phase.
    for (offset, phase) in [
        (75, "new"),
        (225, "text"),
        (450, "first"),
        (750, "complete"),
    ] {
        tokio::time::sleep_until((answered + ms(offset)).into()).await;
        let asked = Instant::now();
        let (status, body) = get_with(&http, &sb, &path, Some(KEY)).await;
        assert_eq!(status, StatusCode::OK);
        // The server's clock read lies between these bounds; on a loaded
        // machine the poll may land in the next phase, never elsewhere.
        let early = expected(asked - answered, t);
        let late = expected(Instant::now() - sent, t);
        let seen = (clip_status(&body), body["data"]["type"].as_str().unwrap());
        let at = TIMELINE.iter().position(|&p| p == seen);
        let ok = at.is_some_and(|at| (early..=late).contains(&at));
        assert!(ok, "{phase}: {seen:?}, expected {early}..={late}: {body}");

        assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
        assert_eq!(
            (&body["code"], &body["message"]),
            (&json!(200), &json!("success"))
        );
        let data = &body["data"];
        assert_eq!(data.as_object().unwrap().len(), 3, "{data}");
        assert_eq!(data["request_body"], request_body);
        let clips = data["response_data"].as_array().unwrap();
        if seen.0 == "new" {
            assert!(clips.is_empty(), "response_data is empty at first");
            continue;
        }
        assert_eq!(clips.len(), 2);
        for (i, clip) in clips.iter().enumerate() {
            check_clip(clip, i, seen.0, &sb.base_url());
        }
        let ids: Vec<Value> = clips.iter().map(|c| c["id"].clone()).collect();
        assert_eq!(clip_ids.get_or_insert(ids.clone()), &ids, "ids stay");
    }
    assert_eq!(sb.stats().feed_requests, 4);
    sb.shutdown().await;
}

#[tokio::test]
async fn clips_are_seeded_and_untitled_jobs_get_a_title() {
    let mut seen = Vec::new();
    for _ in 0..2 {
        let sb = start(staged(ms(10))).await;
        let id = submit_ok(&sb, &json!({"prompt": "a calm song"})).await;
        let body = feed_until(&sb, &id, |b| clip_status(b) == "complete").await;
        let clips = body["data"]["response_data"].clone();
        assert_ne!(clips[0]["id"], clips[1]["id"]);
        assert!(!clips[0]["title"].as_str().unwrap().is_empty());
        assert_eq!(clips[0]["model_name"], "chirp-v3-5");
        seen.push((
            clips[0]["id"].clone(),
            clips[1]["id"].clone(),
            clips[0]["title"].clone(),
        ));
    }
    assert_eq!(seen[0], seen[1], "same seed, same clips");
}

#[tokio::test]
async fn legacy_feed_is_a_bare_array_with_lower_case_statuses() {
    // A slow sandbox stays at "new" for 30 s; a fast one, seeded the same,
    // completes the very same clips in 40 ms.
    let slow = start(staged(Duration::from_secs(60))).await;
    let id = submit_ok(&slow, &custom()).await;
    let path = format!("/api/feed?workId={id}");
    let (status, early) = get(&slow, &path, Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    let clips = early.as_array().expect("a bare array");
    assert_eq!(clips.len(), 2);
    assert!(
        clips
            .iter()
            .all(|c| c["status"] == "new" && c["audio_url"] == "")
    );

    assert!(feed(&slow, &id).await["data"]["response_data"] == json!([]));

    let sb = start(staged(ms(20))).await;
    assert_eq!(submit_ok(&sb, &custom()).await, id);
    feed_until(&sb, &id, |b| clip_status(b) == "complete").await;
    let (_, late) = get(&sb, &path, Some(KEY)).await;
    assert_eq!(late[0]["status"], "complete");
    assert_eq!(
        late,
        feed(&sb, &id).await["data"]["response_data"],
        "same clips"
    );
    assert_eq!(late[0]["id"], early[0]["id"]);

    for feed in ["/api/feed", "/api/v2/feed"] {
        let unknown = get(&sb, &format!("{feed}?workId=gen2nope"), Some(KEY)).await;
        let not_found = json!({"code": 404, "message": "task not found"});
        assert_eq!(unknown, (StatusCode::NOT_FOUND, not_found));
        let (status, body) = get(&sb, feed, Some(KEY)).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::BAD_REQUEST, &json!(400))
        );
        let (status, body) = get(&sb, &format!("{feed}?workId={id}"), None).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::UNAUTHORIZED, &json!(401))
        );
        let wrong = get(&sb, &format!("{feed}?workId={id}"), Some("sk-wrong")).await;
        assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);
    }
    let stats = sb.stats();
    assert!(stats.feed_requests >= 11, "{}", stats.feed_requests);
    assert_eq!(slow.stats().feed_requests, 2);
    assert_eq!(stats.requests, 1, "feeds are not generate requests");
}

#[tokio::test]
async fn moderation_fails_matching_tasks_after_the_first_stage() {
    let table = [
        (None, json!({"prompt": "a FORBIDDEN love song"}), "FAIL"),
        (
            None,
            json!({"custom_mode": true, "prompt": "p", "title": "T", "style": "Forbidden-core"}),
            "FAIL",
        ),
        (None, json!({"prompt": "a calm song"}), "SUCCESS"),
        (Some(""), json!({"prompt": "forbidden"}), "SUCCESS"),
        (Some("Banana"), json!({"prompt": "banana split"}), "FAIL"),
    ];
    for (word, body, outcome) in table {
        let mut config = staged(ms(100));
        if let Some(word) = word {
            config.moderation_word = word.into();
        }
        let sb = start(config).await;
        let id = submit_ok(&sb, &body).await;
        let done = feed_until(&sb, &id, |b| b["data"]["type"] != "IN_PROGRESS").await;
        assert_eq!(done["data"]["type"], outcome, "{body}");
        let clips = done["data"]["response_data"].as_array().unwrap();
        assert_eq!(clips.len(), 2);
        for clip in clips {
            if outcome == "FAIL" {
                assert_eq!(clip["fail_message"], "Does Not Meet Guidelines");
                assert_eq!(
                    (&clip["status"], &clip["audio_url"]),
                    (&json!("text"), &json!(""))
                );
            } else {
                assert_eq!(clip["fail_message"], "");
            }
        }
    }
}

#[tokio::test]
async fn credits_run_down_and_then_submits_are_402_without_a_task() {
    let sb = start(SandboxConfig {
        credits: 25,
        credits_per_task: 10,
        ..SandboxConfig::default()
    })
    .await;
    let balance = async || get(&sb, "/api/v2/credits", Some(KEY)).await;
    let expect = |left: u64, used: u64| {
        let data = json!({"credits": left, "used_credits": used});
        (
            StatusCode::OK,
            json!({"code": 200, "message": "success", "data": data}),
        )
    };
    assert_eq!(balance().await, expect(25, 0));
    submit_ok(&sb, &custom()).await;
    assert_eq!(balance().await, expect(15, 10));
    submit_ok(&sb, &custom()).await;
    assert_eq!(balance().await, expect(5, 20));
    let refused = submit(&sb, &custom()).await;
    let no_credits = json!({"code": 402, "message": "insufficient credits"});
    assert_eq!(refused, (StatusCode::PAYMENT_REQUIRED, no_credits));
    assert_eq!(balance().await, expect(5, 20));
    assert_eq!(
        get(&sb, "/api/v2/credits", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    let stats = sb.stats();
    assert_eq!(
        (stats.accepted, stats.tasks.len(), stats.credits_used),
        (2, 2, 20)
    );
    assert_eq!(stats.responses, [(200, 2), (402, 1)].into());
}
