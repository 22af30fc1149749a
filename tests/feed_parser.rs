//! The one clip parser, table-driven: every documented shape and loose type
//! (API.md "Results"), then hostile bodies that must give a clear error or
//! a lenient result, never a panic.

use batchgen::collect::feed::{ClipStatus, FeedError, MAX_CLIPS, MAX_FEED_BODY, TaskType, parse};
use serde_json::{Value, json};

fn clip(status: &str) -> Value {
    json!({"id": "0f1c", "status": status, "title": "Neon", "tags": "lofi",
           "audio_url": "https://cdn.example/a.mp3", "image_url": "https://cdn.example/a.png",
           "duration": "", "model_name": "chirp-v3-5",
           "created_at": "2025-01-01T22:10:31.665Z",
           "fail_message": "", "error_message": "", "extra_message": "..."})
}

fn v2(kind: &str, clips: Vec<Value>) -> Value {
    json!({"code": 200, "message": "success",
           "data": {"type": kind, "request_body": {"prompt": "p"}, "response_data": clips}})
}

fn with(mut v: Value, field: &str, value: Value) -> Value {
    v[field] = value;
    v
}

/// (name, body, task type, statuses, finished)
type Case = (&'static str, Value, Option<TaskType>, Vec<ClipStatus>, bool);

#[test]
fn documented_shapes() {
    use ClipStatus::*;
    let cases: Vec<Case> = vec![
        (
            "v2 empty at first",
            v2("IN_PROGRESS", vec![]),
            Some(TaskType::InProgress),
            vec![],
            false,
        ),
        (
            "v2 text",
            v2("IN_PROGRESS", vec![clip("text"), clip("text")]),
            Some(TaskType::InProgress),
            vec![Text, Text],
            false,
        ),
        (
            "v2 first",
            v2("IN_PROGRESS", vec![clip("first")]),
            Some(TaskType::InProgress),
            vec![First],
            false,
        ),
        (
            "v2 success",
            v2("SUCCESS", vec![clip("complete"), clip("complete")]),
            Some(TaskType::Success),
            vec![Complete, Complete],
            true,
        ),
        (
            "v2 FAIL marks clips failed",
            v2("FAIL", vec![clip("text")]),
            Some(TaskType::Fail),
            vec![Failed],
            true,
        ),
        (
            "v2 FAIL without clips",
            v2("FAIL", vec![]),
            Some(TaskType::Fail),
            vec![],
            true,
        ),
        (
            "v2 unknown type",
            v2("QUEUED", vec![clip("text")]),
            None,
            vec![Text],
            false,
        ),
        (
            "v2 null response_data",
            json!({"code":200,"data":{"type":"IN_PROGRESS","response_data":null}}),
            Some(TaskType::InProgress),
            vec![],
            false,
        ),
        (
            "v2 code as string",
            json!({"code":"200","data":{"type":"SUCCESS","response_data":[clip("complete")]}}),
            Some(TaskType::Success),
            vec![Complete],
            true,
        ),
        (
            "legacy new",
            json!([clip("new"), clip("new")]),
            None,
            vec![New, New],
            false,
        ),
        (
            "legacy complete",
            json!([clip("complete"), clip("complete")]),
            None,
            vec![Complete, Complete],
            true,
        ),
        (
            "callback mixed",
            json!([clip("complete"), clip("first")]),
            None,
            vec![Complete, First],
            false,
        ),
        (
            "callback moderated",
            json!([with(
                clip("text"),
                "fail_message",
                json!("Does Not Meet Guidelines")
            )]),
            None,
            vec![Failed],
            true,
        ),
        (
            "error_message fails too",
            json!([with(clip("complete"), "error_message", json!("boom"))]),
            None,
            vec![Failed],
            true,
        ),
        (
            "unknown status is still running",
            json!([clip("rendering")]),
            None,
            vec![New],
            false,
        ),
        (
            "status in capitals",
            json!([clip("COMPLETE")]),
            None,
            vec![Complete],
            true,
        ),
        (
            "nested data.data",
            json!({"code":200,"data":{"callbackType":"complete","data":[clip("complete")]}}),
            None,
            vec![Complete],
            true,
        ),
        (
            "data as a list",
            json!({"code":200,"data":[clip("text")]}),
            None,
            vec![Text],
            false,
        ),
        ("empty callback", json!([]), None, vec![], false),
    ];
    for (name, body, task_type, statuses, finished) in cases {
        let feed = parse(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(feed.task_type, task_type, "{name}");
        let got: Vec<_> = feed.clips.iter().map(|c| c.status).collect();
        assert_eq!(got, statuses, "{name}");
        assert_eq!(feed.is_finished(), finished, "{name}");
    }
}

#[test]
fn fields_are_normalised() {
    let body = json!([clip("complete")]).to_string();
    let c = &parse(body.as_bytes()).unwrap().clips[0];
    assert_eq!(
        (
            c.id.as_str(),
            c.title.as_str(),
            c.tags.as_str(),
            c.model_name.as_str()
        ),
        ("0f1c", "Neon", "lofi", "chirp-v3-5")
    );
    assert_eq!(c.audio_url, "https://cdn.example/a.mp3");
    assert_eq!(c.image_url, "https://cdn.example/a.png");
    assert_eq!(c.created_at_text(), "2025-01-01T22:10:31.665Z");
    assert_eq!((c.duration, c.error.as_str()), (None, ""));

    // (duration value, expected seconds)
    let durations = [
        (json!(""), None),
        (json!(123.5), Some(123.5)),
        (json!(60), Some(60.0)),
        (json!("98.4"), Some(98.4)),
        (json!(" 7 "), Some(7.0)),
        (json!("n/a"), None),
        (json!(-3), None),
        (json!(null), None),
        (json!({"s": 1}), None),
        (json!("NaN"), None),
        (json!("inf"), None),
    ];
    for (value, want) in durations {
        let body = json!([with(clip("complete"), "duration", value.clone())]).to_string();
        assert_eq!(
            parse(body.as_bytes()).unwrap().clips[0].duration,
            want,
            "{value}"
        );
    }

    // (created_at field, value, expected RFC 3339)
    let times = [
        (
            "created_at",
            json!("2025-01-01T22:10:31.665Z"),
            "2025-01-01T22:10:31.665Z",
        ),
        (
            "created_at",
            json!("2025-01-01T23:10:31+01:00"),
            "2025-01-01T22:10:31.000Z",
        ),
        (
            "created_at",
            json!(1_735_769_431_665_u64),
            "2025-01-01T22:10:31.665Z",
        ),
        (
            "created_at",
            json!("1735769431665"),
            "2025-01-01T22:10:31.665Z",
        ),
        (
            "createTime",
            json!(1_735_769_431_665_u64),
            "2025-01-01T22:10:31.665Z",
        ),
        ("created_at", json!("yesterday"), ""),
        ("created_at", json!(-5), ""),
        ("created_at", json!(1e300), ""),
    ];
    for (field, value, want) in times {
        let mut c = clip("complete");
        c.as_object_mut().unwrap().remove("created_at");
        c[field] = value.clone();
        let body = json!([c]).to_string();
        let got = parse(body.as_bytes()).unwrap().clips[0].created_at_text();
        assert_eq!(got, want, "{field}: {value}");
    }

    // Unknown fields are ignored; numbers as ids are kept; fail_message wins.
    let mut c = clip("text");
    c["id"] = json!(12345);
    c["surprise"] = json!({"deep": [1, 2, 3]});
    c["fail_message"] = json!("Does Not Meet Guidelines");
    c["error_message"] = json!("other");
    let got = &parse(json!([c]).to_string().as_bytes()).unwrap().clips[0];
    assert_eq!(got.id, "12345");
    assert_eq!(got.error, "Does Not Meet Guidelines");
    assert_eq!(got.status, ClipStatus::Failed);
}

#[test]
fn hostile_bodies() {
    // Errors, each naming what was wrong.
    let errors: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", b"".to_vec(), "not JSON"),
        ("html", b"<html>502 Bad Gateway</html>".to_vec(), "not JSON"),
        (
            "truncated",
            br#"{"code":200,"data":{"type":"#.to_vec(),
            "not JSON",
        ),
        ("invalid utf-8", b"[\"\xff\xfe\"]".to_vec(), "not JSON"),
        ("a string", br#""hello""#.to_vec(), "unexpected shape"),
        ("a number", b"42".to_vec(), "unexpected shape"),
        ("null", b"null".to_vec(), "unexpected shape"),
        (
            "no data",
            br#"{"code":200,"message":"success"}"#.to_vec(),
            "no `data`",
        ),
        (
            "data a string",
            br#"{"code":200,"data":"x"}"#.to_vec(),
            "unexpected shape",
        ),
        (
            "response_data an object",
            br#"{"data":{"type":"SUCCESS","response_data":{}}}"#.to_vec(),
            "not a list",
        ),
        (
            "error envelope",
            br#"{"code":404,"message":"task not found"}"#.to_vec(),
            "code 404: task not found",
        ),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            "not JSON",
        ),
        ("too large", vec![b' '; MAX_FEED_BODY + 1], "larger than"),
    ];
    for (name, body, want) in errors {
        let e = parse(&body).expect_err(name);
        assert!(e.to_string().contains(want), "{name}: {e}");
    }
    assert!(matches!(
        parse(br#"{"code":401,"message":"bad key"}"#),
        Err(FeedError::Api { code: 401, .. })
    ));

    // Lenient: bad entries are skipped, the rest kept, fields capped.
    let mut no_id = clip("text");
    no_id.as_object_mut().unwrap().remove("id");
    let body = json!([
        1,
        "x",
        null,
        no_id,
        with(clip("text"), "id", json!("has space")),
        with(clip("text"), "id", json!("x".repeat(201))),
        clip("first")
    ]);
    let feed = parse(body.to_string().as_bytes()).unwrap();
    assert_eq!((feed.clips.len(), feed.skipped), (1, 6));

    let many: Vec<Value> = (0..100)
        .map(|i| with(clip("text"), "id", json!(format!("c{i}"))))
        .collect();
    let feed = parse(json!(many).to_string().as_bytes()).unwrap();
    assert_eq!(
        (feed.clips.len(), feed.skipped),
        (MAX_CLIPS, 100 - MAX_CLIPS)
    );

    let long = with(
        clip("text"),
        "title",
        json!(format!("a\nb\u{0}{}", "t".repeat(100_000))),
    );
    let c = &parse(json!([long]).to_string().as_bytes()).unwrap().clips[0];
    assert!(c.title.chars().count() <= 2048 && !c.title.contains('\n') && !c.title.contains('\0'));

    // Only http(s) URLs survive: a body cannot aim a download at a file.
    let c = with(clip("complete"), "audio_url", json!("file:///etc/passwd"));
    let c = with(c, "image_url", json!(["not", "a", "string"]));
    let got = &parse(json!([c]).to_string().as_bytes()).unwrap().clips[0];
    assert_eq!((got.audio_url.as_str(), got.image_url.as_str()), ("", ""));
}
