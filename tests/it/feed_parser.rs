//! The one clip parser, table-driven: every shape and loose type (API.md
//! "Results"), the completion rule's edges (the documented bodies
//! themselves are in `tests/it/conformance.rs`), then hostile bodies that must
//! give a clear error or a lenient result, never a panic.

use batchgen::api::feed::{
    ClipStatus, FeedError, MAX_CLIPS, MAX_FEED_BODY, Shape, TaskType, parse,
};
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

/// The same clip under another id: a task's second clip.
fn second(v: Value) -> Value {
    with(v, "id", json!("9a2b"))
}

/// A clip at `status` with this `extra_message`, `audio_url` and `duration`.
fn staged(status: &str, extra: &str, url: &str, duration: Value) -> Value {
    let c = with(clip(status), "extra_message", json!(extra));
    with(with(c, "audio_url", json!(url)), "duration", duration)
}

const MP3: &str = "https://cdn1.suno.ai/0f1c.mp3";
const STREAM: &str = "https://audiopipe.suno.ai/?item_id=0f1c";

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
            v2("SUCCESS", vec![clip("complete"), second(clip("complete"))]),
            Some(TaskType::Success),
            vec![Complete, Complete],
            true,
        ),
        (
            "SUCCESS is no completion signal",
            v2("SUCCESS", vec![clip("text"), second(clip("first"))]),
            Some(TaskType::Success),
            vec![Text, First],
            false,
        ),
        (
            "one complete clip is not the whole task",
            v2("SUCCESS", vec![clip("complete")]),
            Some(TaskType::Success),
            vec![Complete],
            false,
        ),
        (
            "IN_PROGRESS does not hold back finished clips",
            v2(
                "IN_PROGRESS",
                vec![clip("complete"), second(clip("complete"))],
            ),
            Some(TaskType::InProgress),
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
            json!({"code":"200","data":{"type":"SUCCESS",
                   "response_data":[clip("complete"), second(clip("complete"))]}}),
            Some(TaskType::Success),
            vec![Complete, Complete],
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
            json!([clip("complete"), second(clip("complete"))]),
            None,
            vec![Complete, Complete],
            true,
        ),
        (
            "one failed clip fails the task",
            json!([with(clip("text"), "fail_message", json!("Topic too long."))]),
            None,
            vec![Failed],
            true,
        ),
        (
            "a failed and an unfinished clip",
            json!([
                with(clip("text"), "fail_message", json!("x")),
                second(clip("first"))
            ]),
            None,
            vec![Failed, First],
            false,
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
            json!([clip("COMPLETE"), second(clip("Complete"))]),
            None,
            vec![Complete, Complete],
            true,
        ),
        (
            "a status of error fails",
            json!([clip("error")]),
            None,
            vec![Failed],
            true,
        ),
        (
            "nested data.data",
            json!({"code":200,"data":{"callbackType":"complete",
                   "data":[clip("complete"), second(clip("complete"))]}}),
            None,
            vec![Complete, Complete],
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

/// The completion rule for one clip: (name, clip, verdict).
#[test]
fn the_completion_rule() {
    use ClipStatus::*;
    let cases: Vec<(&str, Value, ClipStatus)> = vec![
        (
            "first + the final message",
            staged("first", "All generated successfully.", MP3, json!(98.4)),
            Complete,
        ),
        (
            "the final message, loosely",
            staged("FIRST", "  ok: all GENERATED successfully ", MP3, json!("")),
            Complete,
        ),
        (
            "first audio is not final",
            staged(
                "first",
                "First audio generated successfully.",
                MP3,
                json!(98.4),
            ),
            First,
        ),
        (
            "first with no message",
            staged("first", "", MP3, json!(98.4)),
            First,
        ),
        (
            "the final message at text is not final",
            staged("text", "All generated successfully.", "", json!("")),
            Text,
        ),
        (
            "complete whatever the message",
            staged("complete", "", MP3, json!(1)),
            Complete,
        ),
        (
            "final in words, streaming URL: not yet",
            staged("first", "All generated successfully.", STREAM, json!("")),
            First,
        ),
        (
            "complete with a streaming URL: not yet",
            staged("complete", "", STREAM, json!(5)),
            First,
        ),
        (
            "item_id on another host is streaming too",
            staged(
                "complete",
                "",
                "https://cdn.example/play?item_id=0f1c",
                json!(5),
            ),
            First,
        ),
        (
            "streaming + final mp3 + numeric duration",
            staged("streaming", "", MP3, json!(98.4)),
            Complete,
        ),
        (
            "streaming + final mp3 + numeric string",
            staged("streaming", "", MP3, json!("98.4")),
            Complete,
        ),
        (
            "streaming without a duration",
            staged("streaming", "", MP3, json!("")),
            First,
        ),
        (
            "streaming with a zero duration",
            staged("streaming", "", MP3, json!(0)),
            First,
        ),
        (
            "streaming at a streaming URL",
            staged("streaming", "", STREAM, json!(98.4)),
            First,
        ),
        (
            "streaming at a URL that is no mp3",
            staged("streaming", "", "https://cdn1.suno.ai/0f1c", json!(98.4)),
            First,
        ),
        (
            "a failure beats everything",
            with(
                staged("first", "All generated successfully.", MP3, json!(9)),
                "error_message",
                json!("This song violates Suno's content moderation policy"),
            ),
            Failed,
        ),
    ];
    for (name, c, want) in cases {
        let feed = parse(json!([c]).to_string().as_bytes()).unwrap();
        assert_eq!(feed.clips[0].status, want, "{name}");
        assert_eq!(feed.clips[0].is_finished(), want.is_final(), "{name}");
    }
}

#[test]
fn the_legacy_feed_object_gives_its_type_to_clips_without_status() {
    use ClipStatus::*;
    let legacy = |kind: &str, clips: Vec<Value>| {
        json!({"type": kind, "request_body": {"prompt": "p"}, "response_data": clips,
               "created_at": "2024-09-05 13:09:01"})
    };
    let bare = |id: &str| {
        json!({"id": id, "audio_url": MP3, "createTime": 1_717_587_606_036_u64,
               "duration": 146.08, "title": "t"})
    };
    let cases = [
        ("new", vec![], vec![], false),
        ("text", vec![bare("a"), bare("b")], vec![Text, Text], false),
        (
            "first",
            vec![bare("a"), bare("b")],
            vec![First, First],
            false,
        ),
        (
            "complete",
            vec![bare("a"), bare("b")],
            vec![Complete, Complete],
            true,
        ),
        ("complete", vec![bare("a")], vec![Complete], false),
        (
            "complete",
            vec![bare("a"), with(bare("b"), "status", json!("first"))],
            vec![Complete, First],
            false,
        ),
        (
            "rendering",
            vec![bare("a"), bare("b")],
            vec![New, New],
            false,
        ),
    ];
    for (kind, clips, want, finished) in cases {
        let feed = parse(legacy(kind, clips).to_string().as_bytes()).unwrap();
        assert_eq!(feed.shape, Shape::Legacy, "{kind}");
        assert_eq!(feed.task_type, None, "{kind}");
        let got: Vec<_> = feed.clips.iter().map(|c| c.status).collect();
        assert_eq!(got, want, "{kind}");
        assert_eq!(feed.is_finished(), finished, "{kind}");
    }
    // A clip without a time stamp takes the task's (zoneless: UTC).
    let mut c = bare("a");
    c.as_object_mut().unwrap().remove("createTime");
    let feed = parse(legacy("text", vec![c]).to_string().as_bytes()).unwrap();
    assert_eq!(feed.clips[0].created_at_text(), "2024-09-05T13:09:01.000Z");
    // The object without response_data yet.
    let feed = parse(br#"{"type":"new","request_body":{}}"#).unwrap();
    assert_eq!((feed.shape, feed.clips.len()), (Shape::Legacy, 0));
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
        (
            "created_at",
            json!("2024-09-05 13:09:01"),
            "2024-09-05T13:09:01.000Z",
        ),
        (
            "created_at",
            json!("2024-09-05T13:09:01.25"),
            "2024-09-05T13:09:01.250Z",
        ),
        (
            "timestamp",
            json!(1_740_620_331_100_u64),
            "2025-02-27T01:38:51.100Z",
        ),
        ("created_at", json!("yesterday"), ""),
        ("created_at", json!("2024-13-05 13:09:01"), ""),
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

    // An id of "" is not a clip yet: skipped, not an error, and not done...
    let feed = parse(
        json!([with(clip("text"), "id", json!(""))])
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        (feed.clips.len(), feed.skipped, feed.failure.is_none()),
        (0, 1, true)
    );
    assert!(!feed.is_finished());
    // ...unless it carried a failure: then the task failed, with that reason.
    let refused = with(
        with(clip("text"), "id", json!("")),
        "fail_message",
        json!("Does Not Meet Guidelines"),
    );
    let feed = parse(json!([refused]).to_string().as_bytes()).unwrap();
    assert_eq!(feed.failure.as_deref(), Some("Does Not Meet Guidelines"));
    assert!(feed.is_finished());

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
