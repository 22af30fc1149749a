//! What the sandbox does after a submit, over real HTTP: the v2 feed's
//! stages in both styles, moderation and credits here; the legacy feed,
//! callbacks and media files in the submodules. Every sandbox and receiver
//! listens on `127.0.0.1:0`.
//!
//! The tests run on tokio's paused clock (`start_paused`): the sandbox's
//! stages, callbacks and retries pass on virtual time, which moves only
//! when every task waits, so a poll lands where a test puts it whatever
//! the machine's load, and no stage is waited out in real time.
//!
//! The default style imitates the provider's docs, traps included:
//! `data.type` is `SUCCESS` from the text stage on, a clip's final stage is
//! status `first` with "All generated successfully.", and clips have an
//! empty `id` early in the text stage. So these tests tell a clip's stage
//! the way a client must ([`clip_stage`]), never from `data.type`.

mod callbacks;
mod legacy;
mod media;
mod takes;

use std::time::Duration;

use batchgen::sandbox::{MODERATION_MESSAGES, Sandbox, SandboxConfig, StageStyle};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::KEY;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn start(config: SandboxConfig) -> Sandbox {
    let config = SandboxConfig {
        keys: vec![KEY.into()],
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

/// Polls the v2 feed until `done` holds (at most 10 s of the tests'
/// paused clock); returns that body.
async fn feed_until(sb: &Sandbox, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let http = reqwest::Client::new();
    let path = format!("/api/v2/feed?workId={id}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get_with(&http, sb, &path, Some(KEY)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {body}");
        // On the paused clock, so the stages pass in no real time:
        // simulates: a client polling the feed every 10 ms.
        tokio::time::sleep(ms(10)).await;
    }
}

/// A clip's stage as API.md tells a client to read it: `final` for status
/// `complete` or `first` + "All generated successfully.", `failed` for a
/// message, `lyrics` for a text-stage clip without an id yet.
fn clip_stage(clip: &Value) -> &'static str {
    let failed = |k: &str| clip[k].as_str().is_some_and(|m| !m.is_empty());
    if failed("fail_message") || failed("error_message") {
        return "failed";
    }
    let all_done = clip["extra_message"]
        .as_str()
        .is_some_and(|m| m.contains("All generated successfully."));
    match clip["status"].as_str().unwrap_or_default() {
        "complete" => "final",
        "first" if all_done => "final",
        "first" => "first",
        "text" if clip["id"] == "" => "lyrics",
        "text" => "text",
        other => panic!("unexpected status {other:?} in {clip}"),
    }
}

/// The stage of a v2 feed body's first clip; `new` while there is none.
fn stage(body: &Value) -> &'static str {
    match body["data"]["response_data"].get(0) {
        Some(clip) => clip_stage(clip),
        None => "new",
    }
}

/// Whether every clip of a v2 feed body is finished (final or failed).
fn finished(body: &Value) -> bool {
    let clips = body["data"]["response_data"].as_array().unwrap();
    !clips.is_empty()
        && clips
            .iter()
            .all(|c| matches!(clip_stage(c), "final" | "failed"))
}

/// A style's timeline: each stage with its `data.type`, and when each
/// stage after the first begins, in stage times.
struct Timeline {
    stages: &'static [(&'static str, &'static str)],
    starts: &'static [f64],
}

fn timeline(style: StageStyle) -> Timeline {
    match style {
        StageStyle::Documented => Timeline {
            stages: &[
                ("new", "IN_PROGRESS"),
                ("lyrics", "SUCCESS"),
                ("text", "SUCCESS"),
                ("first", "SUCCESS"),
                ("final", "SUCCESS"),
            ],
            starts: &[0.5, 0.75, 1.0, 2.0],
        },
        StageStyle::Complete => Timeline {
            stages: &[
                ("new", "IN_PROGRESS"),
                ("text", "IN_PROGRESS"),
                ("first", "IN_PROGRESS"),
                ("final", "SUCCESS"),
            ],
            starts: &[0.5, 1.0, 2.0],
        },
    }
}

impl Timeline {
    /// Where in `stages` a task is after `elapsed`, for the stage time `t`.
    fn expected(&self, elapsed: Duration, t: Duration) -> usize {
        self.starts
            .iter()
            .filter(|&&start| elapsed >= t.mul_f64(start))
            .count()
    }

    /// Poll targets: the middle of each stage (the last: half a stage in).
    fn middles(&self, t: Duration) -> Vec<Duration> {
        let mut edges = vec![0.0];
        edges.extend_from_slice(self.starts);
        edges.push(self.starts[self.starts.len() - 1] + 1.0);
        edges
            .windows(2)
            .map(|w| t.mul_f64((w[0] + w[1]) / 2.0))
            .collect()
    }
}

const DOCUMENTED: [&str; 16] = [
    "id",
    "status",
    "title",
    "prompt",
    "tags",
    "audio_url",
    "image_url",
    "image_large_url",
    "duration",
    "model_name",
    "created_at",
    "timestamp",
    "fail_message",
    "error_message",
    "extra_message",
    "video_url",
];

fn check_clip(clip: &Value, i: usize, stage: &str, style: StageStyle, base: &str) {
    let obj = clip.as_object().unwrap();
    for key in DOCUMENTED {
        assert!(obj.contains_key(key), "{key} in {clip}");
    }
    assert!(
        obj.keys().any(|k| !DOCUMENTED.contains(&k.as_str())),
        "an unknown field"
    );
    let status = match (stage, style) {
        ("lyrics" | "text", _) => "text",
        ("final", StageStyle::Complete) => "complete",
        _ => "first",
    };
    assert_eq!(clip["status"], status, "{clip}");
    let extra = match stage {
        "lyrics" | "text" => "Text generated successfully.",
        "first" => "First audio generated successfully.",
        _ => "All generated successfully.",
    };
    assert_eq!(clip["extra_message"], extra);
    assert_eq!(
        (&clip["fail_message"], &clip["error_message"]),
        (&json!(""), &json!(""))
    );
    assert_eq!(clip["model_name"], "chirp-v4-5");
    if i == 0 {
        let iso = clip["created_at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(iso).is_ok(), "{iso}");
    } else {
        assert!(clip["created_at"].as_u64().unwrap() > 1_700_000_000_000);
    }
    assert!(clip["timestamp"].as_u64().unwrap() > 1_700_000_000_000);
    if stage == "lyrics" {
        // The docs' sample: nothing identifiable yet.
        for key in ["id", "title", "tags", "audio_url", "image_url", "duration"] {
            assert_eq!(clip[key], "", "{key} in {clip}");
        }
        return;
    }
    let id = clip["id"].as_str().unwrap();
    assert_eq!(
        id.split('-').map(str::len).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert_eq!(
        (&clip["title"], &clip["tags"]),
        (&json!("Neon"), &json!("synthwave"))
    );
    let audio = clip["audio_url"].as_str().unwrap();
    let stream = format!("{base}/media/stream/{id}?item_id={id}");
    match (stage, style) {
        ("text", StageStyle::Complete) => assert_eq!(audio, ""),
        ("text" | "first", _) => assert_eq!(audio, stream),
        _ => assert_eq!(audio, format!("{base}/media/{id}.mp3")),
    }
    assert_eq!(clip["image_url"], format!("{base}/media/{id}.png"));
    let duration = &clip["duration"];
    match (stage, i) {
        ("final", 0) => assert!(duration.as_f64().unwrap() > 2.0, "{duration}"),
        ("final", _) => assert!(duration.as_str().unwrap().parse::<f64>().unwrap() > 2.0),
        _ => assert_eq!(duration, ""),
    }
}

/// Polls a task in the middle of each stage of `style` and checks the
/// whole body each time.
async fn walk_the_stages(style: StageStyle, t: Duration) {
    let sb = start(SandboxConfig {
        stage_style: style,
        ..staged(t)
    })
    .await;
    let line = timeline(style);
    let sent = Instant::now();
    let id = submit_ok(&sb, &custom()).await;
    let answered = Instant::now();
    let mut request_body = custom();
    request_body.as_object_mut().unwrap().remove("surprise");

    let http = reqwest::Client::new();
    let path = format!("/api/v2/feed?workId={id}");
    let mut clip_ids = None;
    for (target, &(name, _)) in line.middles(t).into_iter().zip(line.stages) {
        // On the paused clock, exactly there:
        // simulates: a client polling in the middle of each stage.
        tokio::time::sleep_until(answered + target).await;
        let asked = Instant::now();
        let (status, body) = get_with(&http, &sb, &path, Some(KEY)).await;
        assert_eq!(status, StatusCode::OK);
        // The server's clock read lies between these bounds (on the paused
        // clock, nothing moves it while the request is served).
        let early = line.expected(asked - answered, t);
        let late = line.expected(Instant::now() - sent, t);
        let seen = (stage(&body), body["data"]["type"].as_str().unwrap());
        let at = line.stages.iter().position(|&p| p == seen);
        let ok = at.is_some_and(|at| (early..=late).contains(&at));
        assert!(ok, "{name}: {seen:?}, expected {early}..={late}: {body}");

        assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
        assert_eq!(
            (&body["code"], &body["message"]),
            (&json!(200), &json!("success"))
        );
        let data = &body["data"];
        assert_eq!(data.as_object().unwrap().len(), 4, "{data}");
        assert_eq!(data["request_body"], request_body);
        let created = data["created_at"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok());
        let clips = data["response_data"].as_array().unwrap();
        if seen.0 == "new" {
            assert!(clips.is_empty(), "response_data is empty at first");
            continue;
        }
        assert_eq!(clips.len(), 2);
        for (i, clip) in clips.iter().enumerate() {
            check_clip(clip, i, seen.0, style, &sb.base_url());
        }
        if seen.0 != "lyrics" {
            let ids: Vec<Value> = clips.iter().map(|c| c["id"].clone()).collect();
            assert_eq!(clip_ids.get_or_insert(ids.clone()), &ids, "ids stay");
        }
    }
    let stats = sb.stats();
    assert_eq!(stats.feed_requests, line.stages.len() as u64);
    assert_eq!(stats.stream_fetches, 0);
    // Lyrics, text and first say SUCCESS in the documented style.
    let early = match style {
        StageStyle::Documented => 3,
        StageStyle::Complete => 0,
    };
    assert_eq!(stats.success_before_final, early, "{style:?}");
    sb.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn v2_feed_walks_the_documented_stages_in_time() {
    walk_the_stages(StageStyle::Documented, ms(400)).await;
}

#[tokio::test(start_paused = true)]
async fn v2_feed_walks_the_complete_style_stages_in_time() {
    walk_the_stages(StageStyle::Complete, ms(300)).await;
}

#[tokio::test(start_paused = true)]
async fn clips_are_seeded_and_untitled_jobs_get_a_title() {
    let mut seen = Vec::new();
    for _ in 0..2 {
        let sb = start(staged(ms(10))).await;
        let id = submit_ok(&sb, &json!({"prompt": "a calm song"})).await;
        let body = feed_until(&sb, &id, finished).await;
        let clips = body["data"]["response_data"].clone();
        assert_ne!(clips[0]["id"], clips[1]["id"]);
        assert!(!clips[0]["title"].as_str().unwrap().is_empty());
        // No model sent: the host's own default, the newest it lists.
        assert_eq!(clips[0]["model_name"], "chirp-v5-5");
        seen.push((
            clips[0]["id"].clone(),
            clips[1]["id"].clone(),
            clips[0]["title"].clone(),
        ));
    }
    assert_eq!(seen[0], seen[1], "same seed, same clips");
}

/// The moderation message of a failed clip: one of the documented three, in
/// `fail_message` or `error_message` (the other empty). `true` when it was
/// in `error_message`.
fn moderation_message(clip: &Value) -> (&str, bool) {
    let fail = clip["fail_message"].as_str().unwrap();
    let error = clip["error_message"].as_str().unwrap();
    let (message, in_error) = match (fail, error) {
        (m, "") if !m.is_empty() => (m, false),
        ("", m) if !m.is_empty() => (m, true),
        _ => panic!("exactly one message expected: {clip}"),
    };
    assert!(MODERATION_MESSAGES.contains(&message), "{message}");
    (message, in_error)
}

#[tokio::test(start_paused = true)]
async fn moderation_fails_matching_tasks_after_the_first_stage() {
    let table = [
        (None, json!({"prompt": "a FORBIDDEN love song"}), true),
        (
            None,
            json!({"custom_mode": true, "prompt": "p", "title": "T", "style": "Forbidden-core"}),
            true,
        ),
        (
            None,
            json!({"prompt": "calm", "gpt_description_prompt": "forbidden fruit"}),
            true,
        ),
        (None, json!({"prompt": "a calm song"}), false),
        (Some(""), json!({"prompt": "forbidden"}), false),
        (Some("Banana"), json!({"prompt": "banana split"}), true),
    ];
    for style in [StageStyle::Documented, StageStyle::Complete] {
        for (word, body, fails) in &table {
            let mut config = SandboxConfig {
                stage_style: style,
                ..staged(ms(100))
            };
            if let Some(word) = word {
                config.moderation_word = (*word).into();
            }
            let sb = start(config).await;
            let id = submit_ok(&sb, body).await;
            let done = feed_until(&sb, &id, |b| b["data"]["type"] == "FAIL" || finished(b)).await;
            let outcome = if *fails { "FAIL" } else { "SUCCESS" };
            assert_eq!(done["data"]["type"], outcome, "{body}");
            let clips = done["data"]["response_data"].as_array().unwrap();
            assert_eq!(clips.len(), 2);
            for clip in clips {
                if *fails {
                    moderation_message(clip);
                    assert_eq!(
                        (&clip["status"], &clip["audio_url"]),
                        (&json!("text"), &json!(""))
                    );
                } else {
                    assert_eq!(clip_stage(clip), "final", "{clip}");
                }
            }
            // The same job always gets the same message.
            assert_eq!(clips[0]["fail_message"], clips[1]["fail_message"]);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn moderation_uses_all_three_documented_messages() {
    // Stage time 0: every task is at its last stage at once.
    let sb = start(staged(Duration::ZERO)).await;
    let mut seen = Vec::new();
    for i in 0..24 {
        let id = submit_ok(&sb, &json!({"prompt": format!("forbidden song {i}")})).await;
        let body = feed(&sb, &id).await;
        assert_eq!(body["data"]["type"], "FAIL");
        let (message, in_error) = moderation_message(&body["data"]["response_data"][0]);
        seen.push((message.to_owned(), in_error));
    }
    for message in MODERATION_MESSAGES {
        assert!(seen.iter().any(|(m, _)| m == message), "{message}");
    }
    assert!(seen.iter().any(|&(_, in_error)| in_error), "error_message");
    assert!(seen.iter().any(|&(_, in_error)| !in_error), "fail_message");
}

#[tokio::test(start_paused = true)]
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
