//! The legacy feed, `GET`/`POST /api/feed?workId=`: the bare object of the
//! legacy docs, whose clips carry no status (the top-level `type` is their
//! stage).

use std::time::Duration;

use batchgen::sandbox::{SandboxConfig, StageStyle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{KEY, custom, feed, feed_until, finished, get, ms, staged, start, submit_ok};

/// The fields a legacy clip has: those of the docs' sample.
const LEGACY_CLIP: [&str; 9] = [
    "id",
    "audio_url",
    "image_url",
    "createTime",
    "duration",
    "model_name",
    "prompt",
    "tags",
    "title",
];

/// Checks the object's shape and returns its clips.
fn check_shape(body: &Value, stage: &str) -> Vec<Value> {
    let obj = body.as_object().expect("a bare object");
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "request_body", "response_data", "type"],
        "no envelope: {body}"
    );
    assert_eq!(body["type"], stage, "{body}");
    // "2024-09-05 13:09:01": no zone, no `T`.
    let created = body["created_at"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%d %H:%M:%S").is_ok(),
        "{created}"
    );
    let request = &body["request_body"];
    assert_eq!(
        (&request["customMode"], &request["title"]),
        (&json!(true), &json!("Neon"))
    );
    assert_eq!(request.get("custom_mode"), None, "{request}");
    let clips = body["response_data"].as_array().unwrap().clone();
    assert_eq!(clips.len(), 2);
    for clip in &clips {
        let mut keys: Vec<&str> = clip
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut want = LEGACY_CLIP.to_vec();
        want.sort_unstable();
        assert_eq!(keys, want, "no status, no messages: {clip}");
        assert!(clip["createTime"].as_u64().unwrap() > 1_700_000_000_000);
        assert_ne!(clip["id"], "", "legacy clips always have their id");
    }
    clips
}

#[tokio::test(start_paused = true)]
async fn legacy_feed_is_a_bare_object_whose_type_is_the_stage() {
    // A slow sandbox stays at "new" for 30 s; a fast one, seeded the same,
    // finishes the very same clips in 40 ms.
    let slow = start(staged(Duration::from_secs(60))).await;
    let id = submit_ok(&slow, &custom()).await;
    let path = format!("/api/feed?workId={id}");
    let (status, early) = get(&slow, &path, Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    let clips = check_shape(&early, "new");
    assert!(
        clips
            .iter()
            .all(|c| c["audio_url"] == "" && c["duration"] == "")
    );
    assert!(feed(&slow, &id).await["data"]["response_data"] == json!([]));

    let sb = start(staged(ms(20))).await;
    assert_eq!(submit_ok(&sb, &custom()).await, id);
    let v2 = feed_until(&sb, &id, finished).await;
    let (_, late) = get(&sb, &path, Some(KEY)).await;
    let clips = check_shape(&late, "complete");
    for (clip, v2) in clips
        .iter()
        .zip(v2["data"]["response_data"].as_array().unwrap())
    {
        assert_eq!(clip["id"], v2["id"]);
        assert_eq!(clip["audio_url"], v2["audio_url"]);
        assert!(clip["audio_url"].as_str().unwrap().ends_with(".mp3"));
        assert!(clip["duration"].as_f64().unwrap() > 2.0, "a number");
    }
    assert_eq!(clips[0]["id"], early["response_data"][0]["id"]);

    // The legacy docs' curl sample POSTs; a JSON body may name the task.
    let http = reqwest::Client::new();
    let url = format!("{}/api/feed", sb.base_url());
    let by_query = http.post(format!("{url}?workId={id}")).bearer_auth(KEY);
    let by_body = http
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({"workId": id}));
    for request in [by_query, by_body] {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.json::<Value>().await.unwrap(), late);
    }

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
    assert!(stats.feed_requests >= 12, "{}", stats.feed_requests);
    assert_eq!(stats.legacy_feed_requests, 7);
    assert_eq!(
        (
            slow.stats().feed_requests,
            slow.stats().legacy_feed_requests
        ),
        (2, 1)
    );
    assert_eq!(stats.requests, 1, "feeds are not generate requests");
}

#[tokio::test(start_paused = true)]
async fn legacy_types_follow_the_stages_in_both_styles() {
    let http = reqwest::Client::new();
    for style in [StageStyle::Documented, StageStyle::Complete] {
        let sb = start(SandboxConfig {
            stage_style: style,
            ..staged(ms(200))
        })
        .await;
        let id = submit_ok(&sb, &custom()).await;
        let url = format!("{}/api/feed?workId={id}", sb.base_url());
        let mut types = Vec::new();
        loop {
            let body: Value = http
                .get(&url)
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let stage = body["type"].as_str().unwrap().to_owned();
            let clips = check_shape(&body, &stage);
            let audio = clips[0]["audio_url"].as_str().unwrap();
            match stage.as_str() {
                "new" => assert_eq!(audio, ""),
                "first" => assert!(audio.contains("/media/stream/"), "{audio}"),
                "complete" => assert!(audio.ends_with(".mp3"), "{audio}"),
                "text" => {}
                other => panic!("{other}"),
            }
            if types.last() != Some(&stage) {
                types.push(stage.clone());
            }
            if stage == "complete" {
                break;
            }
            // On the paused clock:
            // simulates: a client polling the legacy feed every 10 ms.
            tokio::time::sleep(ms(10)).await;
        }
        assert_eq!(types, ["new", "text", "first", "complete"], "{style:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_moderated_task_stays_at_text_with_its_message() {
    let sb = start(staged(ms(20))).await;
    let mut body = custom();
    body["prompt"] = "a forbidden song".into();
    let id = submit_ok(&sb, &body).await;
    feed_until(&sb, &id, |b| b["data"]["type"] == "FAIL").await;
    let (_, legacy) = get(&sb, &format!("/api/feed?workId={id}"), Some(KEY)).await;
    assert_eq!(legacy["type"], "text");
    for clip in legacy["response_data"].as_array().unwrap() {
        let message = clip
            .get("fail_message")
            .or_else(|| clip.get("error_message"))
            .and_then(Value::as_str)
            .unwrap();
        assert!(
            batchgen::sandbox::MODERATION_MESSAGES.contains(&message),
            "{clip}"
        );
        assert_eq!(clip["audio_url"], "");
    }
}
