//! Conformance: every body API.md shows (revision 3), as a file under
//! `tests/fixtures/api/`, driven through the parser that reads it in
//! production: feeds and callbacks through `collect::feed::parse`, submit
//! answers and error bodies through `client::parse_answer`, the credits
//! body through `client::parse_balance`. Where the docs contradict each
//! other (the final stage as `complete` or as `first` + "All generated
//! successfully."; the legacy feed as an object or a bare array; `workId`
//! or `data.task_id`), each form is its own fixture. The docs' own samples
//! are kept verbatim (`*-docs-sample.json`), abbreviations and all. The
//! same status in other words (the 401s of three pages) must be classified
//! alike: by its code, never its text ([`errors_are_classified_by_status_alone`]).
//!
//! A fixture no table names, or a table row without its file, fails
//! [`every_fixture_is_checked`]: a body added here is a body tested.

use batchgen::api::answer::HostError;
use std::collections::BTreeSet;
use std::path::PathBuf;

use batchgen::api::feed::{ClipStatus, FeedError, Shape, TaskType, WATERMARK_REASON, parse};
use batchgen::api::submit::{ErrorClass, SubmitError, parse_answer, parse_balance};
use reqwest::StatusCode;

fn fixture(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/api")
}

const A: &str = "7c0e5d1a-3f6b-4d8e-9a2c-1b5f0e7d3c42";
const B: &str = "e91b2f40-8d3a-4c6e-b7f1-52a09c8d6e13";
const A_MP3: &str = "https://cdn1.suno.ai/7c0e5d1a-3f6b-4d8e-9a2c-1b5f0e7d3c42.mp3";
const B_MP3: &str = "https://cdn1.suno.ai/e91b2f40-8d3a-4c6e-b7f1-52a09c8d6e13.mp3";
const A_STREAM: &str = "https://audiopipe.suno.ai/?item_id=7c0e5d1a-3f6b-4d8e-9a2c-1b5f0e7d3c42";
const B_STREAM: &str = "https://audiopipe.suno.ai/?item_id=e91b2f40-8d3a-4c6e-b7f1-52a09c8d6e13";
/// `created_at` `2025-01-01T22:10:31.665Z`, and the same instant as epoch ms.
const AT: &str = "2025-01-01T22:10:31.665Z";
/// The legacy samples' `createTime` 1717587606036.
const LEGACY_AT: &str = "2024-06-05T11:40:06.036Z";
/// The legacy task's zoneless `"2024-09-05 13:09:01"`, read as UTC.
const LEGACY_TASK_AT: &str = "2024-09-05T13:09:01.000Z";
/// The current callback page's `createTime` (udioapi.pro/docs/generate-callback).
const ISO_CREATE_TIME: &str = "2025-08-19T23:07:28.936Z";
const GUIDELINES: &str = "Does Not Meet Guidelines";
const INAPPROPRIATE: &str = "Prompt contained inappropriate material";
const POLICY: &str = "This song violates Suno's content moderation policy";

/// (id, status, audio_url, duration, created_at, error)
type WantClip = (
    &'static str,
    ClipStatus,
    &'static str,
    Option<f64>,
    &'static str,
    &'static str,
);

/// (file, shape, data.type, clips, task finished, why it matters)
type FeedCase = (
    &'static str,
    Shape,
    Option<TaskType>,
    Vec<WantClip>,
    bool,
    &'static str,
);

fn feed_cases() -> Vec<FeedCase> {
    use ClipStatus::*;
    let success = Some(TaskType::Success);
    let fail = Some(TaskType::Fail);
    vec![
        (
            "v2-feed-docs-sample.json",
            Shape::V2,
            success,
            vec![(
                "d23e...",
                Text,
                "https://audiopipe.suno.ai/?item_id=d23e...",
                None,
                AT,
                "",
            )],
            false,
            "the docs' sample: SUCCESS while the clip is only lyrics",
        ),
        (
            "v2-feed-empty.json",
            Shape::V2,
            Some(TaskType::InProgress),
            vec![],
            false,
            "response_data is empty at first",
        ),
        (
            "v2-feed-text-empty-ids.json",
            Shape::V2,
            success,
            vec![],
            false,
            "an id of \"\" is not a clip yet: skipped, not an error",
        ),
        (
            "v2-feed-text.json",
            Shape::V2,
            success,
            vec![
                (A, Text, A_STREAM, None, AT, ""),
                (B, Text, "", None, AT, ""),
            ],
            false,
            "text stage: a streaming URL or none, duration \"\"",
        ),
        (
            "v2-feed-text-in-progress.json",
            Shape::V2,
            Some(TaskType::InProgress),
            vec![
                (A, Text, A_STREAM, None, AT, ""),
                (B, Text, B_STREAM, None, AT, ""),
            ],
            false,
            "IN_PROGRESS",
        ),
        (
            "v2-feed-first.json",
            Shape::V2,
            success,
            vec![
                (A, First, A_STREAM, None, AT, ""),
                (B, First, B_STREAM, None, AT, ""),
            ],
            false,
            "first audio, streaming",
        ),
        (
            "v2-feed-first-with-mp3.json",
            Shape::V2,
            success,
            vec![
                (A, First, A_MP3, Some(98.4), AT, ""),
                (B, First, B_STREAM, None, AT, ""),
            ],
            false,
            "first audio with an mp3 and a duration is still not final",
        ),
        (
            "v2-feed-complete-as-first.json",
            Shape::V2,
            success,
            vec![
                (A, Complete, A_MP3, Some(98.4), AT, ""),
                (B, Complete, B_MP3, Some(109.8), AT, ""),
            ],
            true,
            "the current docs' final stage: first + All generated successfully.; \
             duration a number and a numeric string; time from `timestamp`",
        ),
        (
            "v2-feed-complete-older-form.json",
            Shape::V2,
            success,
            vec![
                (A, Complete, A_MP3, Some(98.4), AT, ""),
                (
                    B,
                    Complete,
                    B_MP3,
                    Some(109.8),
                    "2025-01-01T22:10:31.000Z",
                    "",
                ),
            ],
            true,
            "the older final stage: status complete; a zoneless time stamp is UTC",
        ),
        (
            "v2-feed-half-complete.json",
            Shape::V2,
            success,
            vec![
                (A, Complete, A_MP3, Some(98.4), AT, ""),
                (B, First, B_STREAM, None, AT, ""),
            ],
            false,
            "a task is finished when both clips are",
        ),
        (
            "v2-feed-streaming-final-mp3.json",
            Shape::V2,
            success,
            vec![
                (A, Complete, A_MP3, Some(98.4), AT, ""),
                (B, First, B_STREAM, None, AT, ""),
            ],
            false,
            "undocumented: streaming + a final mp3 + a numeric duration is done",
        ),
        (
            "v2-feed-fail.json",
            Shape::V2,
            fail,
            vec![
                (A, Failed, "", None, AT, "generation failed"),
                (B, Failed, "", None, AT, "generation failed"),
            ],
            true,
            "type FAIL fails the task, with the envelope's message",
        ),
        (
            "v2-feed-fail-no-clips.json",
            Shape::V2,
            fail,
            vec![],
            true,
            "FAIL before any clip",
        ),
        (
            "v2-feed-moderated-guidelines.json",
            Shape::V2,
            fail,
            vec![
                (A, Failed, "", None, AT, GUIDELINES),
                (B, Failed, "", None, AT, GUIDELINES),
            ],
            true,
            "moderation, first documented message",
        ),
        (
            "v2-feed-moderated-inappropriate.json",
            Shape::V2,
            success,
            vec![
                (A, Failed, "", None, AT, INAPPROPRIATE),
                (B, Failed, "", None, AT, INAPPROPRIATE),
            ],
            true,
            "moderation under SUCCESS: fail_message decides",
        ),
        (
            "legacy-feed-docs-sample.json",
            Shape::Legacy,
            None,
            vec![(
                "59001af3-...",
                Complete,
                "https://xxx.mp3",
                Some(146.08),
                LEGACY_AT,
                "",
            )],
            false,
            "the docs' legacy sample: complete, but one clip of two is not the task",
        ),
        (
            "legacy-feed-new.json",
            Shape::Legacy,
            None,
            vec![],
            false,
            "legacy: submitted",
        ),
        (
            "legacy-feed-text.json",
            Shape::Legacy,
            None,
            vec![
                (A, Text, "", None, LEGACY_AT, ""),
                (B, Text, "", None, LEGACY_TASK_AT, ""),
            ],
            false,
            "legacy: clips without status take the task's type; no time: the task's",
        ),
        (
            "legacy-feed-first.json",
            Shape::Legacy,
            None,
            vec![
                (A, First, A_STREAM, None, LEGACY_AT, ""),
                (B, First, B_STREAM, None, LEGACY_AT, ""),
            ],
            false,
            "legacy: first audio",
        ),
        (
            "legacy-feed-complete.json",
            Shape::Legacy,
            None,
            vec![
                (A, Complete, A_MP3, Some(146.08), LEGACY_AT, ""),
                (B, Complete, B_MP3, Some(131.2), LEGACY_TASK_AT, ""),
            ],
            true,
            "legacy: complete",
        ),
        (
            "legacy-feed-bare-array.json",
            Shape::Clips,
            None,
            vec![
                (A, New, "", None, "2024-09-05T13:09:01.000Z", ""),
                (B, New, "", None, "2024-09-05T13:09:01.000Z", ""),
            ],
            false,
            "the older legacy shape: a bare array with status new",
        ),
        (
            "callback-text.json",
            Shape::Clips,
            None,
            vec![
                (A, Text, A_STREAM, None, AT, ""),
                (B, Text, B_STREAM, None, AT, ""),
            ],
            false,
            "callback, text stage",
        ),
        (
            "callback-first.json",
            Shape::Clips,
            None,
            vec![
                (A, First, A_STREAM, None, AT, ""),
                (B, First, B_STREAM, None, AT, ""),
            ],
            false,
            "callback, first audio",
        ),
        (
            "callback-complete.json",
            Shape::Clips,
            None,
            vec![
                (A, Complete, A_MP3, Some(98.4), AT, ""),
                (B, Complete, B_MP3, Some(109.8), AT, ""),
            ],
            true,
            "callback, final stage as first + All generated; time from createTime",
        ),
        (
            "callback-complete-older-form.json",
            Shape::Clips,
            None,
            vec![
                (A, Complete, A_MP3, Some(98.4), AT, ""),
                (B, Complete, B_MP3, Some(109.8), AT, ""),
            ],
            true,
            "callback, final stage as complete",
        ),
        (
            "callback-complete-iso-create-time.json",
            Shape::Clips,
            None,
            vec![
                (A, Complete, A_MP3, Some(98.4), ISO_CREATE_TIME, ""),
                (B, Complete, B_MP3, Some(109.8), ISO_CREATE_TIME, ""),
            ],
            true,
            "callback, createTime an ISO string as on the current page",
        ),
        (
            "callback-complete-watermarked.json",
            Shape::Clips,
            None,
            vec![
                (A, Failed, A_MP3, Some(98.4), AT, WATERMARK_REASON),
                (B, Failed, B_MP3, Some(109.8), AT, WATERMARK_REASON),
            ],
            true,
            "watermarked lyrics fail a clip its host calls finished, in any case and spacing",
        ),
        (
            "callback-moderated-policy.json",
            Shape::Clips,
            None,
            vec![
                (A, Failed, "", None, AT, POLICY),
                (B, Failed, "", None, AT, POLICY),
            ],
            true,
            "moderation, third documented message, in error_message",
        ),
    ]
}

#[test]
fn feeds_and_callbacks() {
    for (file, shape, task_type, clips, finished, why) in feed_cases() {
        let feed = parse(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(feed.shape, shape, "{file}: {why}");
        assert_eq!(feed.task_type, task_type, "{file}: {why}");
        let got: Vec<WantClip> = feed
            .clips
            .iter()
            .map(|c| {
                (
                    leak(&c.id),
                    c.status,
                    leak(&c.audio_url),
                    c.duration,
                    leak(&c.created_at_text()),
                    leak(&c.error),
                )
            })
            .collect();
        assert_eq!(got, clips, "{file}: {why}");
        for clip in &feed.clips {
            assert_eq!(clip.is_finished(), clip.status.is_final(), "{file}");
        }
        assert_eq!(feed.is_finished(), finished, "{file}: {why}");
    }
}

/// Test-only: the parsed strings, comparable with the table's literals.
fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// (file, HTTP status, code in the body, message)
const ERRORS: [(&str, u16, &str); 8] = [
    ("error-400-topic-too-long.json", 400, "Topic too long."),
    (
        "error-400-prompt-required.json",
        400,
        "Bad Request: 'prompt' is required.",
    ),
    (
        "error-401.json",
        401,
        "Unauthorized: Invalid or missing API key",
    ),
    (
        "error-401-extend-page.json",
        401,
        "No API key provided in Authorization header",
    ),
    (
        "error-401-lyrics-page.json",
        401,
        "Missing or invalid Authorization header. Use 'Bearer YOUR_API_KEY'",
    ),
    (
        "error-402-insufficient-balance.json",
        402,
        "Insufficient balance, please recharge",
    ),
    (
        "error-429.json",
        429,
        "Rate limit exceeded. Please try again later.",
    ),
    ("error-500.json", 500, "Internal Server Error"),
];

#[test]
fn error_bodies() {
    for (file, code, message) in ERRORS {
        let body = fixture(file);
        // As a feed answer: the envelope's code and message.
        match parse(&body) {
            Err(FeedError::Api {
                code: c,
                message: m,
            }) => {
                assert_eq!((c, m.as_str()), (code, message), "{file}");
            }
            other => panic!("{file}: {other:?}"),
        }
        // As a submit answer, with the same HTTP status, and inside a 200.
        for status in [code, 200] {
            let status = StatusCode::from_u16(status).unwrap();
            match parse_answer(status, &body, None) {
                Err(SubmitError::Host(HostError::Status {
                    status: s,
                    message: m,
                    ..
                })) => assert_eq!((s, m.as_str()), (code, message), "{file} as {status}"),
                other => panic!("{file} as {status}: {other:?}"),
            }
        }
    }
}

/// The documented bodies' classes, one per status whatever the words:
/// the three 401 texts stop the run alike, and each body's text under
/// another status takes that status's class.
#[test]
fn errors_are_classified_by_status_alone() {
    let want = |code: u16| match code {
        400 => ErrorClass::Row,
        401 | 402 => ErrorClass::Fatal,
        429 | 500 => ErrorClass::Retry,
        _ => unreachable!("{code}"),
    };
    for (file, code, _) in ERRORS {
        let body = fixture(file);
        for status in [400, 401, 402, 429, 500] {
            // The body's own words under every documented status.
            let e = parse_answer(StatusCode::from_u16(status).unwrap(), &body, None).unwrap_err();
            assert_eq!(e.class(), want(status), "{file} as HTTP {status}");
        }
        // In a 200, the body's code decides.
        let e = parse_answer(StatusCode::OK, &body, None).unwrap_err();
        assert_eq!(e.class(), want(code), "{file} in a 200");
        assert_eq!(e.is_rate_limited(), code == 429, "{file}");
    }
}

/// (file, task ID)
const SUBMITS: [(&str, &str); 3] = [
    ("submit-work-id-and-task-id.json", "gen2abc123def456bksv"),
    ("submit-work-id-only.json", "gen2extend0987wxyz"),
    ("submit-task-id-only.json", "gen2cover4567abcd"),
];

#[test]
fn submit_answers_and_credits() {
    for (file, task_id) in SUBMITS {
        let accepted = parse_answer(StatusCode::OK, &fixture(file), None)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            (accepted.task_id.as_str(), accepted.http_status),
            (task_id, 200),
            "{file}"
        );
    }
    let balance = parse_balance(StatusCode::OK, &fixture("credits.json")).unwrap();
    assert_eq!((balance.credits, balance.used_credits), (195.0, Some(5.0)));
    // Feed bodies are not submit answers: no task ID is made up from them.
    assert!(parse_answer(StatusCode::OK, &fixture("v2-feed-text.json"), None).is_err());
}

#[test]
fn every_fixture_is_checked() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut named: BTreeSet<String> = BTreeSet::new();
    let names = feed_cases()
        .into_iter()
        .map(|c| c.0)
        .chain(ERRORS.iter().map(|c| c.0))
        .chain(SUBMITS.iter().map(|c| c.0))
        .chain(["credits.json"]);
    for name in names {
        assert!(named.insert(name.to_owned()), "{name} is in two tables");
    }
    assert_eq!(on_disk, named);
}
