//! Table tests of each provider's documented bodies, read through its wire
//! (`batchgen::api::provider::wire`): submit answers, errors in both forms
//! (as the HTTP status and inside an HTTP 200), polls at each stage and each
//! failure, callbacks of each type, credits. Fixtures are under
//! `tests/fixtures/providers/<provider>/`, each a body as the provider's
//! docs show it (`../shared/API.md` and the pages it cites). Then the
//! exact request bodies, hostile bodies per provider, and the clients'
//! provider plumbing against a local server.

use batchgen::api::answer::HostError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use batchgen::api::feed::{ClipStatus, TaskClips};
use batchgen::api::poll::{FeedClient, PollError};
use batchgen::api::provider::{Wire, sunoapi, wire};
use batchgen::api::submit::{Client, ErrorClass, Meaning, SubmitError};
use batchgen::job::{Catalogue, Gender, Job, JobFields, Provider, Weight};
use batchgen::util::redact::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

fn fixture(provider: Provider, name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/providers/{}/{name}",
        env!("CARGO_MANIFEST_DIR"),
        provider.name()
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

fn poll(p: Provider, name: &str) -> TaskClips {
    wire(p)
        .read_poll(StatusCode::OK, &fixture(p, name), None)
        .unwrap_or_else(|e| panic!("{p} {name}: {e}"))
}

fn states(clips: &TaskClips) -> Vec<ClipStatus> {
    clips.clips.iter().map(|c| c.status).collect()
}

use ClipStatus::{Complete, Failed, First, New, Text};

// ---------------------------------------------------------------- udioapi

#[test]
fn udioapi_reads_its_documented_bodies_as_before() {
    let w = wire(Provider::Udioapi);
    let p = Provider::Udioapi;
    let accepted = w
        .read_submit(
            StatusCode::OK,
            &fixture(p, "submit-work-id-and-task-id.json"),
            None,
        )
        .unwrap();
    assert_eq!(accepted.task_id, "gen2abc123def456bksv");
    for (name, want, finished) in [
        ("v2-feed-text.json", vec![Text, Text], false),
        (
            "v2-feed-complete-as-first.json",
            vec![Complete, Complete],
            true,
        ),
        ("v2-feed-fail.json", vec![Failed, Failed], true),
        ("legacy-feed-complete.json", vec![Complete, Complete], true),
    ] {
        let clips = poll(p, name);
        assert_eq!(states(&clips), want, "{name}");
        assert_eq!(clips.is_finished(), finished, "{name}");
    }
    let first = poll(p, "v2-feed-first.json");
    assert!(!first.is_finished());
    let callback = w
        .read_callback(&fixture(p, "callback-complete.json"))
        .unwrap();
    assert_eq!(states(&callback), vec![Complete, Complete]);
    // createTime as epoch milliseconds (legacy) and as an ISO string (the
    // current callback page) give the clip its time alike.
    let iso = w
        .read_callback(&fixture(p, "callback-complete-iso-create-time.json"))
        .unwrap();
    assert_eq!(states(&iso), vec![Complete, Complete]);
    for clip in &iso.clips {
        assert_eq!(clip.created_at_text(), "2025-08-19T23:07:28.936Z");
    }
    assert_eq!(
        callback.clips[0].created_at_text(),
        "2025-01-01T22:10:31.665Z"
    );
    let balance = w
        .read_balance(StatusCode::OK, &fixture(p, "credits.json"))
        .unwrap();
    assert_eq!((balance.credits, balance.used_credits), (195.0, Some(5.0)));
    for (name, code, class, limited) in [
        ("error-429.json", 429, ErrorClass::Retry, true),
        ("error-401.json", 401, ErrorClass::Fatal, false),
        ("error-400-topic-too-long.json", 400, ErrorClass::Row, false),
    ] {
        for http in [code, 200] {
            let e = w
                .read_submit(status(http), &fixture(p, name), None)
                .unwrap_err();
            assert_eq!(e.class(), class, "{name} as HTTP {http}");
            assert_eq!(e.is_rate_limited(), limited, "{name}");
            assert_eq!(e.http_status(), Some(code), "{name}");
        }
    }
    assert_eq!(
        w.submit_path(&job(custom()), &Default::default()),
        "api/v2/generate"
    );
    let url = w.poll_url(&Url::parse("https://h/p/").unwrap(), "t1");
    assert_eq!(url.as_str(), "https://h/p/api/v2/feed?workId=t1");
    assert_eq!(w.credits_path(), "api/v2/credits");
}

// ---------------------------------------------------------------- sunoapi

#[test]
fn sunoapi_submit_answer_and_every_code_in_both_forms() {
    let p = Provider::Sunoapi;
    let w = wire(p);
    let accepted = w
        .read_submit(StatusCode::OK, &fixture(p, "submit-ok.json"), None)
        .unwrap();
    assert_eq!(accepted.task_id, "5c79e3a1b2c4d5e6f7a8b9c0d1e2be8e");
    // (fixture, code, class, rate limited, refusal)
    let table: &[(&str, u16, ErrorClass, bool, Option<u16>)] = &[
        ("error-400.json", 400, ErrorClass::Row, false, None),
        ("error-401.json", 401, ErrorClass::Fatal, false, Some(401)),
        ("error-405.json", 405, ErrorClass::Retry, true, None),
        ("error-413.json", 413, ErrorClass::Row, false, None),
        (
            "error-422-callback-url.json",
            422,
            ErrorClass::Row,
            false,
            None,
        ),
        (
            "error-429-credits.json",
            429,
            ErrorClass::Fatal,
            false,
            Some(402),
        ),
        ("error-430.json", 430, ErrorClass::Retry, true, None),
        ("error-455.json", 455, ErrorClass::Retry, false, None),
        ("error-500.json", 500, ErrorClass::Retry, false, None),
        (
            "error-418-undocumented.json",
            418,
            ErrorClass::Row,
            false,
            None,
        ),
    ];
    for &(name, code, class, limited, refusal) in table {
        for http in [code, 200] {
            let e = w
                .read_submit(
                    status(http),
                    &fixture(p, name),
                    Some(Duration::from_secs(3)),
                )
                .unwrap_err();
            let what = format!("{name} as HTTP {http}: {e}");
            assert_eq!(e.class(), class, "{what}");
            assert_eq!(e.is_rate_limited(), limited, "{what}");
            assert_eq!(e.http_status(), Some(code), "{what}");
            assert_eq!(e.refusal().map(|r| r.0), refusal, "{what}");
            if limited {
                assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
            }
        }
    }
    let credits = w
        .read_submit(StatusCode::OK, &fixture(p, "error-429-credits.json"), None)
        .unwrap_err();
    assert!(matches!(
        credits,
        SubmitError::Host(HostError::Coded {
            code: 429,
            meaning: Meaning::Credits,
            ..
        })
    ));
    let (_, message) = credits.refusal().unwrap();
    assert!(message.contains("Insufficient credits"), "{message}");
    // A proxy's 502 without the envelope keeps HTTP's meaning.
    let e = w
        .read_submit(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", None)
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Retry);
    // Its own 405 is rate limiting, not a missing endpoint; a bare 405 is.
    assert!(!w.no_endpoint(status(405), &fixture(p, "error-405.json")));
    assert!(w.no_endpoint(status(405), b"Method Not Allowed"));
    assert!(w.no_endpoint(status(404), &fixture(p, "error-400.json")));
}

#[test]
fn sunoapi_record_info_at_each_stage_and_each_failure() {
    let p = Provider::Sunoapi;
    let pending = poll(p, "record-pending.json");
    assert!(pending.clips.is_empty() && !pending.is_finished());
    assert_eq!(states(&poll(p, "record-text.json")), vec![Text, Text]);
    let first = poll(p, "record-first.json");
    assert_eq!(states(&first), vec![Complete, First]);
    assert!(!first.is_finished());
    assert_eq!(first.clips[0].duration, Some(198.44));
    assert!(first.clips[0].audio_url.ends_with(".mp3"));
    assert_eq!(first.clips[0].model_name, "chirp-v3-5");
    assert!(
        first.clips[0]
            .image_url
            .starts_with("https://cdn2.suno.ai/")
    );
    assert!(first.clips[0].created_at.is_some());
    let done = poll(p, "record-success.json");
    assert_eq!(states(&done), vec![Complete, Complete]);
    assert!(done.is_finished());
    assert_eq!(done.clips[1].duration, Some(201.2));
    // SUCCESS, but one clip's audioUrl is its streaming URL: not complete.
    let half = poll(p, "record-success-without-final-url.json");
    assert_eq!(states(&half), vec![Complete, First]);
    assert!(!half.is_finished());
    for (name, reason) in [
        (
            "record-create-task-failed.json",
            "CREATE_TASK_FAILED (errorCode 400): Create task failed",
        ),
        (
            "record-generate-audio-failed.json",
            "GENERATE_AUDIO_FAILED (errorCode 500): Generate audio failed",
        ),
        (
            "record-generate-audio-failed-531.json",
            "GENERATE_AUDIO_FAILED (errorCode 531): Sorry, generation failed due to an issue. Your credits have been refunded.",
        ),
        ("record-callback-exception.json", "Callback exception"),
        ("record-sensitive-word-error.json", "sensitive words"),
    ] {
        let failed = poll(p, name);
        assert!(failed.is_finished(), "{name}");
        // Only the documented "refunded, submit again" is worth a resend
        // (`--regenerate`).
        assert_eq!(
            batchgen::api::provider::sunoapi::worth_resending(
                failed.failure.as_deref().unwrap_or_default()
            ),
            name.ends_with("-531.json"),
            "{name}: {:?}",
            failed.failure
        );
        assert!(
            failed
                .failure
                .as_deref()
                .unwrap_or_default()
                .contains(reason),
            "{name}: {:?}",
            failed.failure
        );
    }
}

/// record-info's clips in `data.response.sunoData[]` (camelCase) and in
/// the cn quick-start's `data.response.data[]` (snake_case) read alike.
#[test]
fn sunoapi_record_info_in_both_clip_shapes() {
    let p = Provider::Sunoapi;
    let camel = poll(p, "record-success.json");
    let snake = poll(p, "record-success-snake-case.json");
    assert_eq!(snake.clips.len(), 2);
    assert_eq!(snake, camel);
    let clip = &snake.clips[0];
    assert_eq!(clip.status, Complete);
    assert_eq!(
        clip.audio_url,
        "https://musicfile.api.box/8551b6f0-2c4e-4b7a-9d3f-6e1a0c5b662c.mp3"
    );
    assert!(clip.image_url.ends_with(".jpeg"), "{}", clip.image_url);
    assert_eq!(
        (
            clip.title.as_str(),
            clip.tags.as_str(),
            clip.lyrics.as_str()
        ),
        ("Peaceful Piano", "classical, calm", "[Verse] calm keys")
    );
    assert_eq!(clip.model_name, "chirp-v3-5");
    assert_eq!(clip.duration, Some(198.44));
    assert!(snake.is_finished());
}

#[test]
fn sunoapi_poll_codes_map_like_the_submits() {
    let p = Provider::Sunoapi;
    let w = wire(p);
    // (fixture, retryable, rate limited, refused)
    let table: &[(&str, bool, bool, Option<u16>)] = &[
        ("error-405.json", true, true, None),
        ("error-430.json", true, true, None),
        ("error-455.json", true, false, None),
        ("error-500.json", true, false, None),
        ("error-401.json", false, false, Some(401)),
        ("error-429-credits.json", false, false, Some(402)),
        ("error-400.json", false, false, None),
        ("error-418-undocumented.json", false, false, None),
    ];
    for &(name, retryable, limited, refused) in table {
        let code: u16 = name[6..9].parse().unwrap();
        for http in [code, 200] {
            let e = w
                .read_poll(status(http), &fixture(p, name), None)
                .unwrap_err();
            let what = format!("{name} as HTTP {http}: {e}");
            assert_eq!(e.is_retryable(), retryable, "{what}");
            assert_eq!(e.rate_limited().is_some(), limited, "{what}");
            assert_eq!(e.refused(), refused, "{what}");
        }
    }
}

#[test]
fn sunoapi_callbacks_of_each_type() {
    let p = Provider::Sunoapi;
    let w = wire(p);
    let read = |name: &str| w.read_callback(&fixture(p, name)).unwrap();
    assert_eq!(states(&read("callback-text.json")), vec![Text, Text]);
    let first = read("callback-first.json");
    assert_eq!(states(&first), vec![Complete, First]);
    assert!(!first.is_finished());
    let complete = read("callback-complete.json");
    assert_eq!(states(&complete), vec![Complete, Complete]);
    assert_eq!(complete.clips[0].title, "Peaceful Piano");
    let error = read("callback-error.json");
    assert!(error.is_finished());
    assert!(error.failure.unwrap().contains("sensitive words"));
}

/// Every documented callback code but 200 fails the task, with a reason
/// that names the code, what it means and the host's message.
#[test]
fn sunoapi_callbacks_of_each_error_code() {
    let p = Provider::Sunoapi;
    let w = wire(p);
    for (name, code, meaning) in [
        ("callback-400-copyright.json", 400, "copyrighted"),
        ("callback-408-timeout.json", 408, "timed out"),
        ("callback-413-existing-work.json", 413, "existing work"),
        ("callback-500.json", 500, "server error"),
        ("callback-501.json", 501, "audio generation failed"),
        ("callback-531-refunded.json", 531, "credits refunded"),
    ] {
        let body = fixture(p, name);
        let clips = w.read_callback(&body).unwrap();
        assert!(clips.is_finished(), "{name}");
        assert_eq!(clips.task_type, Some(batchgen::api::feed::TaskType::Fail));
        let why = clips.failure.unwrap();
        let msg = serde_json::from_slice::<Value>(&body).unwrap()["msg"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(why.starts_with(&format!("callback code {code} (")), "{why}");
        assert_eq!(
            batchgen::api::provider::sunoapi::worth_resending(&why),
            code == 531,
            "{name}: {why}"
        );
        assert!(
            why.contains(meaning) && why.ends_with(&msg),
            "{name}: {why}"
        );
    }
    // The same clips with a failing code fail, whatever the type says.
    let mut complete: Value =
        serde_json::from_slice(&fixture(p, "callback-complete.json")).unwrap();
    complete["code"] = json!(531);
    let failed = w
        .read_callback(&serde_json::to_vec(&complete).unwrap())
        .unwrap();
    assert_eq!(states(&failed), vec![Failed, Failed]);
    assert!(failed.clips[0].error.starts_with("callback code 531"));
}

/// sunoapi calls a task back at each stage and may repeat any of them, in
/// any order: the catalog's rows end at the latest stage, never go back,
/// and a failure after the clips were listed fails those not finished.
#[test]
fn sunoapi_repeated_callbacks_merge_to_the_latest_stage() {
    use batchgen::files::catalog::JobRows;
    let p = Provider::Sunoapi;
    let w = wire(p);
    let read = |name: &str| w.read_callback(&fixture(p, name)).unwrap();
    let task = "5c79e3a1b2c4d5e6f7a8b9c0d1e2be8e";
    let statuses =
        |job: &JobRows| -> Vec<String> { job.rows.iter().map(|r| r.status.clone()).collect() };
    let mut job = JobRows::default();
    for name in [
        "callback-text.json",
        "callback-text.json",
        "callback-first.json",
        "callback-text.json",
        "callback-first.json",
    ] {
        job.apply("k", task, &read(name));
    }
    assert_eq!(statuses(&job), ["complete", "first"], "never back to text");
    assert!(!job.finished(task));
    job.apply("k", task, &read("callback-complete.json"));
    assert_eq!(statuses(&job), ["complete", "complete"]);
    let urls: Vec<String> = job.rows.iter().map(|r| r.audio_url.clone()).collect();
    for name in [
        "callback-complete.json",
        "callback-first.json",
        "callback-text.json",
    ] {
        assert!(
            job.apply("k", task, &read(name)).is_empty(),
            "{name} repeated"
        );
    }
    assert!(job.finished(task));
    assert_eq!(
        job.rows
            .iter()
            .map(|r| r.audio_url.clone())
            .collect::<Vec<_>>(),
        urls
    );

    // Text, first, then 531 with no clips: the finished song stays, the
    // other fails with the callback's reason, and the task is over.
    let mut job = JobRows::default();
    job.apply("k", task, &read("callback-text.json"));
    job.apply("k", task, &read("callback-first.json"));
    assert_eq!(
        job.apply("k", task, &read("callback-531-refunded.json")),
        [2]
    );
    assert_eq!(statuses(&job), ["complete", "failed"]);
    assert!(job.rows[1].error.starts_with("callback code 531"));
    assert!(job.finished(task));
    // A late text callback changes nothing.
    assert!(job.apply("k", task, &read("callback-text.json")).is_empty());
}

#[test]
fn sunoapi_credits_are_a_number_or_a_string() {
    let p = Provider::Sunoapi;
    let w = wire(p);
    let b = w
        .read_balance(StatusCode::OK, &fixture(p, "credits.json"))
        .unwrap();
    assert_eq!(b.credits, 100.0);
    let b = w
        .read_balance(StatusCode::OK, &fixture(p, "credits-string.json"))
        .unwrap();
    assert_eq!(b.credits, 87.5);
    let e = w
        .read_balance(StatusCode::OK, &fixture(p, "error-401.json"))
        .unwrap_err();
    assert_eq!(e.refusal().map(|r| r.0), Some(401));
    let e = w
        .read_balance(StatusCode::OK, br#"{"code":200,"data":{"credits":1}}"#)
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Ambiguous);
}

// ---------------------------------------------------------------- gcui

#[test]
fn gcui_the_task_is_its_two_clips() {
    let p = Provider::Gcui;
    let w = wire(p);
    let accepted = w
        .read_submit(StatusCode::OK, &fixture(p, "generate-answer.json"), None)
        .unwrap();
    assert_eq!(
        accepted.task_id,
        "f6e2a1b0-3c4d-4e5f-9a8b-7c6d5e4f3a21,0b9c8d7e-6f5a-4b3c-8d2e-1f0a9b8c7d65"
    );
    let url = w.poll_url(
        &Url::parse("http://127.0.0.1:3000").unwrap(),
        &accepted.task_id,
    );
    let ids: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/api/get");
    assert_eq!(ids, vec![("ids".to_owned(), accepted.task_id.clone())]);
    assert_eq!(states(&poll(p, "get-queued.json")), vec![New, New]);
    let streaming = poll(p, "get-streaming.json");
    assert_eq!(states(&streaming), vec![First, First]);
    let half = poll(p, "get-half-complete.json");
    assert_eq!(states(&half), vec![Complete, First]);
    assert!(!half.is_finished());
    let done = poll(p, "get-complete.json");
    assert!(done.is_finished());
    assert_eq!(done.clips[0].duration, Some(146.08));
    assert_eq!(
        done.clips[1].audio_url,
        "https://cdn1.suno.ai/0b9c8d7e-6f5a-4b3c-8d2e-1f0a9b8c7d65.mp3"
    );
    let error = poll(p, "get-error.json");
    assert_eq!(states(&error), vec![Failed, Failed]);
    assert!(error.clips[0].error.contains("content policy"));
    let b = w
        .read_balance(StatusCode::OK, &fixture(p, "get-limit.json"))
        .unwrap();
    assert_eq!((b.credits, b.used_credits), (50.0, Some(0.0)));
    assert!(w.read_callback(&fixture(p, "get-complete.json")).is_err());
}

/// A gcui answer that lists other tasks' clips (a proxy dropped `ids`, and
/// gcui answered the account's newest clips) files only this task's.
#[test]
fn gcui_keeps_only_the_clips_of_the_task_asked_for() {
    let p = Provider::Gcui;
    let w = wire(p);
    let done = poll(p, "get-complete.json");
    let ours = format!("{},{}", done.clips[0].id, done.clips[1].id);
    let mut foreign = done.clone();
    for c in &mut foreign.clips {
        c.id = format!("other-{}", c.id);
    }
    let mut mixed = done.clone();
    mixed.clips.extend(foreign.clips.clone());
    let kept = w.only_task(&ours, mixed);
    assert_eq!(kept.clips, done.clips);
    assert_eq!(kept.skipped, done.skipped + 2);
    let none = w.only_task(&ours, foreign);
    assert!(
        none.clips.is_empty() && !none.is_finished(),
        "not ours: not finished"
    );
    // The other providers' answers are about the task asked for.
    let suno = wire(Provider::Sunoapi).only_task("x", done.clone());
    assert_eq!(suno, done);
}

#[test]
fn gcui_errors_mean_what_http_says() {
    let p = Provider::Gcui;
    let w = wire(p);
    for (name, code, class, refusal) in [
        ("error-400.json", 400, ErrorClass::Row, None),
        ("error-402.json", 402, ErrorClass::Fatal, Some(402)),
        ("error-500.json", 500, ErrorClass::Retry, None),
    ] {
        let body = fixture(p, name);
        let e = w.read_submit(status(code), &body, None).unwrap_err();
        assert_eq!(e.class(), class, "{name}");
        assert_eq!(e.refusal().map(|r| r.0), refusal, "{name}");
        let wanted = serde_json::from_slice::<Value>(&body).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(e.server_message(), wanted, "{name}");
        let e = w.read_poll(status(code), &body, None).unwrap_err();
        assert_eq!(e.refused(), refusal, "{name}");
        assert_eq!(e.is_retryable(), code == 500, "{name}");
    }
}

// ---------------------------------------------------------------- every provider

/// Lyrics that read "This is a fake app http://suno.com" (any case, any
/// spacing) fail the clip on every provider, polled or called back, even
/// when the host calls it complete with its mp3.
#[test]
fn watermarked_lyrics_fail_the_clip_on_every_provider() {
    use batchgen::api::feed::WATERMARK_REASON;
    let read: [(Provider, &str, bool); 4] = [
        (
            Provider::Sunoapi,
            "callback-complete-watermarked.json",
            true,
        ),
        (Provider::Gcui, "get-complete-watermarked.json", false),
        (Provider::Udioapi, "callback-complete.json", true),
        (Provider::Sunoapi, "record-success.json", false),
    ];
    for (p, name, callback) in read {
        let w = wire(p);
        let mut body: Value = serde_json::from_slice(&fixture(p, name)).unwrap();
        if p == Provider::Udioapi {
            body[0]["prompt"] = json!("THIS IS A FAKE APP   http://SUNO.com");
            body[1]["prompt"] = json!("[Verse]\nThis is a fake\napp http://suno.com\n");
        }
        if name == "record-success.json" {
            for clip in body["data"]["response"]["sunoData"].as_array_mut().unwrap() {
                clip["prompt"] = json!("this is a fake app http://suno.com");
            }
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        let clips = if callback {
            w.read_callback(&bytes).unwrap()
        } else {
            w.read_poll(StatusCode::OK, &bytes, None).unwrap()
        };
        assert_eq!(states(&clips), vec![Failed, Failed], "{p} {name}");
        for clip in &clips.clips {
            assert_eq!(clip.error, WATERMARK_REASON, "{p} {name}");
        }
        assert!(clips.is_finished(), "{p} {name}");
    }
    // The words alone, in other lyrics, are not the watermark.
    assert!(!batchgen::api::feed::is_watermarked(
        "this is a fake app, she said; see https://suno.com"
    ));
}

// ---------------------------------------------------------------- newapi

#[test]
fn newapi_submit_answer_and_errors_by_http_status_only() {
    let p = Provider::Newapi;
    let w = wire(p);
    let accepted = w
        .read_submit(StatusCode::OK, &fixture(p, "submit-ok.json"), None)
        .unwrap();
    assert_eq!(accepted.task_id, "task_b3kXq2n9ZrQ8cV1mYfP0wT7sLd4Ha6Ej");
    // (fixture, HTTP status, class, rate limited, refusal)
    let table: &[(&str, u16, ErrorClass, bool, Option<u16>)] = &[
        ("error-400.json", 400, ErrorClass::Row, false, None),
        ("error-401.json", 401, ErrorClass::Fatal, false, Some(401)),
        ("error-402.json", 402, ErrorClass::Fatal, false, Some(402)),
        (
            "error-403-quota.json",
            403,
            ErrorClass::Fatal,
            false,
            Some(403),
        ),
        ("error-429.json", 429, ErrorClass::Retry, true, None),
        ("error-500.json", 500, ErrorClass::Retry, false, None),
        ("error-500.json", 502, ErrorClass::Retry, false, None),
        ("error-500.json", 503, ErrorClass::Retry, false, None),
    ];
    for &(name, code, class, limited, refusal) in table {
        let e = w
            .read_submit(
                status(code),
                &fixture(p, name),
                Some(Duration::from_secs(2)),
            )
            .unwrap_err();
        let what = format!("{name} as HTTP {code}: {e}");
        assert_eq!(e.class(), class, "{what}");
        assert_eq!(e.is_rate_limited(), limited, "{what}");
        assert_eq!(e.http_status(), Some(code), "{what}");
        assert_eq!(e.refusal().map(|r| r.0), refusal, "{what}");
        assert!(!e.server_message().is_empty(), "{what}");
    }
    // The message is the relay's, in either of its error shapes.
    let quota = w
        .read_submit(status(403), &fixture(p, "error-403-quota.json"), None)
        .unwrap_err();
    assert!(quota.server_message().contains("用户额度不足"), "{quota}");
    let token = w
        .read_submit(status(401), &fixture(p, "error-401.json"), None)
        .unwrap_err();
    assert!(token.server_message().starts_with("无效的令牌"), "{token}");
    // Classed by the HTTP status, never by the body's word: a task error
    // body under 429 is still a rate limit.
    let e = w
        .read_submit(status(429), &fixture(p, "error-400.json"), None)
        .unwrap_err();
    assert!(e.is_rate_limited(), "{e}");
    // A 2xx that is not `success` is no task, and may have been one.
    let e = w
        .read_submit(StatusCode::OK, &fixture(p, "error-400.json"), None)
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Ambiguous, "{e}");
    assert!(w.no_endpoint(status(404), b"Not Found"));
}

#[test]
fn newapi_fetch_at_each_status() {
    let p = Provider::Newapi;
    let w = wire(p);
    let url = w.poll_url(&Url::parse("https://relay.example/").unwrap(), "task_1");
    assert_eq!(url.as_str(), "https://relay.example/suno/fetch/task_1");
    let submitted = poll(p, "fetch-submitted.json");
    assert!(submitted.clips.is_empty() && !submitted.is_finished());
    let running = poll(p, "fetch-in-progress.json");
    assert_eq!(states(&running), vec![First, New]);
    assert!(!running.is_finished());
    assert_eq!(running.clips[0].tags, "indie folk, 90 bpm", "metadata.tags");
    assert_eq!(running.clips[0].lyrics, "[Verse]\nharbor lights");
    let done = poll(p, "fetch-success.json");
    assert_eq!(states(&done), vec![Complete, Complete]);
    assert!(done.is_finished());
    assert_eq!(done.clips[0].duration, Some(198.4), "metadata.duration");
    assert_eq!(done.clips[1].duration, Some(201.2), "a numeric string");
    assert_eq!(done.clips[0].model_name, "chirp-crow");
    assert!(done.clips[0].created_at.is_some());
    assert_eq!(
        done.task_id.as_deref(),
        Some("task_b3kXq2n9ZrQ8cV1mYfP0wT7sLd4Ha6Ej")
    );
    // SUCCESS with one clip still on its streaming URL: not finished.
    let half = poll(p, "fetch-success-one-streaming.json");
    assert_eq!(states(&half), vec![Complete, First]);
    assert!(!half.is_finished());
    let failed = poll(p, "fetch-failure.json");
    assert!(failed.is_finished());
    assert!(
        failed
            .failure
            .as_deref()
            .unwrap()
            .contains("content moderation"),
        "{:?}",
        failed.failure
    );
    let moderated = poll(p, "fetch-clip-error.json");
    assert_eq!(states(&moderated), vec![Failed, Failed]);
    assert_eq!(
        moderated.clips[0].error,
        "Prompt contained inappropriate material"
    );
    // An unknown task is HTTP 400 `task_not_exist`: a bad answer for the
    // task (left after a few), not a retry and not a refusal.
    let e = w
        .read_poll(status(400), &fixture(p, "fetch-task-not-exist.json"), None)
        .unwrap_err();
    assert!(!e.is_retryable() && e.refused().is_none(), "{e}");
    for (name, code, retryable, refused) in [
        ("error-401.json", 401, false, Some(401)),
        ("error-403-quota.json", 403, false, Some(403)),
        ("error-429.json", 429, true, None),
        ("error-500.json", 500, true, None),
    ] {
        let e = w
            .read_poll(status(code), &fixture(p, name), None)
            .unwrap_err();
        assert_eq!(e.is_retryable(), retryable, "{name}: {e}");
        assert_eq!(e.refused(), refused, "{name}: {e}");
    }
    // Another task's object is not this task's.
    let other = w.only_task("task_other", done.clone());
    assert!(other.clips.is_empty() && !other.is_finished());
    assert!(w.read_callback(&fixture(p, "fetch-success.json")).is_err());
}

#[test]
fn newapi_batch_fetch_answers_each_task_asked_in_the_order_asked() {
    let p = Provider::Newapi;
    let batch = wire(p).batch_poll().expect("the relay polls in batches");
    assert!(batch.max_batch() >= 2);
    assert!(wire(Provider::Udioapi).batch_poll().is_none());
    assert!(wire(Provider::Sunoapi).batch_poll().is_none());
    assert!(wire(Provider::Gcui).batch_poll().is_none());
    let base = Url::parse("https://relay.example/v/").unwrap();
    assert_eq!(
        batch.batch_url(&base).as_str(),
        "https://relay.example/v/suno/fetch"
    );
    let sent: Value = serde_json::from_slice(&batch.batch_body(&["t1", "t2"])).unwrap();
    assert_eq!(sent, json!({"ids": ["t1", "t2"], "action": "MUSIC"}));

    let asked = ["task_first", "task_missing", "task_second", "task_failed"];
    let answers = batch
        .read_batch(
            StatusCode::OK,
            &fixture(p, "batch-fetch.json"),
            None,
            &asked,
        )
        .unwrap();
    assert_eq!(answers.len(), asked.len());
    let first = answers[0].as_ref().unwrap();
    assert_eq!(states(first), vec![Complete, Complete]);
    assert_eq!(first.clips[0].id, "c1-a");
    let missing = answers[1].as_ref().unwrap_err();
    assert!(
        !missing.is_retryable() && missing.refused().is_none(),
        "a task the answer leaves out is a bad answer: {missing}"
    );
    let second = answers[2].as_ref().unwrap();
    assert_eq!(states(second), vec![New, New]);
    assert_eq!(second.task_id.as_deref(), Some("task_second"));
    let failed = answers[3].as_ref().unwrap();
    assert!(failed.is_finished() && failed.clips.is_empty());
    assert_eq!(failed.failure.as_deref(), Some("upstream: task failed"));

    // Errors of the whole request, classed by the HTTP status.
    for (name, code, retryable, refused) in [
        ("error-401.json", 401, false, Some(401)),
        ("error-429.json", 429, true, None),
        ("error-500.json", 502, true, None),
        ("error-400.json", 400, false, None),
    ] {
        let e = batch
            .read_batch(status(code), &fixture(p, name), None, &asked)
            .unwrap_err();
        assert_eq!(e.is_retryable(), retryable, "{name}: {e}");
        assert_eq!(e.refused(), refused, "{name}: {e}");
    }
    for bad in [
        &br#"{"code":"success","data":{"task_id":"task_first"}}"#[..],
        br#"{"code":"get_tasks_failed","data":[]}"#,
        b"<html>",
    ] {
        assert!(batch.read_batch(StatusCode::OK, bad, None, &asked).is_err());
    }
    let none = batch
        .read_batch(
            StatusCode::OK,
            br#"{"code":"success","data":[]}"#,
            None,
            &asked,
        )
        .unwrap();
    assert!(none.iter().all(Result::is_err));
}

#[test]
fn newapi_credits_check_the_key_and_show_no_balance() {
    let p = Provider::Newapi;
    let w = wire(p);
    assert!(w.no_balance().is_some());
    assert!(wire(Provider::Udioapi).no_balance().is_none());
    assert_eq!(w.credits_path(), "v1/dashboard/billing/subscription");
    let e = w
        .read_balance(status(401), &fixture(p, "error-401.json"))
        .unwrap_err();
    assert_eq!(e.refusal().map(|r| r.0), Some(401));
    let e = w
        .read_balance(StatusCode::OK, &fixture(p, "subscription.json"))
        .unwrap_err();
    assert_eq!(
        e.class(),
        ErrorClass::Ambiguous,
        "no number is guessed: {e}"
    );
}

// ---------------------------------------------------------------- request bodies

fn job(fields: JobFields) -> Job {
    Job::new(fields, 1)
}

fn custom() -> JobFields {
    JobFields {
        prompt: Some("[Verse] neon lights".into()),
        title: Some("Neon Harbor".into()),
        style: Some("synthwave".into()),
        tags: Some("heavy metal".into()),
        custom_mode: Some(true),
        model: Some("chirp-v4-5".into()),
        ..JobFields::default()
    }
}

/// The bytes sent for `fields` to `p`, its model as the built-in
/// catalogue names it there (as the client sends it).
fn sent(p: Provider, fields: JobFields) -> Vec<u8> {
    let model = Catalogue::built_in().wire_model(p, fields.model.as_deref());
    wire(p).submit_body(&job(fields), model.as_deref())
}

fn body(p: Provider, fields: JobFields) -> Value {
    serde_json::from_slice(&sent(p, fields)).unwrap()
}

#[test]
fn sunoapi_request_bodies() {
    let p = Provider::Sunoapi;
    let mut with_all = custom();
    with_all.gender = Some(Gender::Female);
    with_all.style_weight = Weight::from_hundredths(65);
    with_all.weirdness_constraint = Weight::from_hundredths(0);
    with_all.audio_weight = Weight::from_hundredths(100);
    with_all.callback_url = Some("https://example.com/hook".into());
    assert_eq!(
        body(p, with_all),
        json!({"customMode": true, "instrumental": false, "prompt": "[Verse] neon lights",
               "style": "synthwave", "title": "Neon Harbor", "model": "V4_5",
               "negativeTags": "heavy metal", "vocalGender": "f", "styleWeight": 0.65,
               "weirdnessConstraint": 0.0, "audioWeight": 1.0,
               "callBackUrl": "https://example.com/hook"})
    );
    // Exactly these bytes: the field order of the docs.
    let description = JobFields {
        prompt: Some("a calm piano piece".into()),
        gender: Some(Gender::Male),
        ..JobFields::default()
    };
    assert_eq!(
        String::from_utf8(sent(p, description.clone())).unwrap(),
        format!(
            r#"{{"customMode":false,"instrumental":false,"prompt":"a calm piano piece","model":"V4_5ALL","vocalGender":"m","callBackUrl":"{}"}}"#,
            sunoapi::NO_CALLBACK
        ),
        "sunoapi requires a model: a job naming none gets the catalogue's current default, never a retired V3_5"
    );
    // kie.ai takes sunoapi's requests byte for byte.
    assert_eq!(sent(Provider::Kie, description), {
        let mut fields = custom();
        fields.custom_mode = Some(false);
        fields.title = None;
        fields.style = None;
        fields.tags = None;
        fields.model = None;
        fields.prompt = Some("a calm piano piece".into());
        fields.gender = Some(Gender::Male);
        sent(p, fields)
    });
    let v5_5 = JobFields {
        model: Some("chirp-v5-5".into()),
        ..custom()
    };
    assert_eq!(body(p, v5_5)["model"], "V5_5");
    let inspiration = JobFields {
        gpt_description_prompt: Some("a song about rain".into()),
        make_instrumental: Some(true),
        model: Some("my-new-model".into()),
        ..JobFields::default()
    };
    assert_eq!(
        body(p, inspiration),
        json!({"customMode": false, "instrumental": true, "prompt": "a song about rain",
               "model": "my-new-model", "callBackUrl": sunoapi::NO_CALLBACK})
    );
    let instrumental = JobFields {
        prompt: None,
        make_instrumental: Some(true),
        ..custom()
    };
    assert_eq!(
        body(p, instrumental),
        json!({"customMode": true, "instrumental": true, "style": "synthwave",
               "title": "Neon Harbor", "model": "V4_5", "negativeTags": "heavy metal",
               "callBackUrl": sunoapi::NO_CALLBACK})
    );
    assert!(
        Url::parse(sunoapi::NO_CALLBACK)
            .unwrap()
            .host_str()
            .unwrap()
            .ends_with(".invalid")
    );
    assert_eq!(
        wire(p).submit_path(&job(custom()), &Default::default()),
        "api/v1/generate"
    );
}

#[test]
fn gcui_request_bodies() {
    let p = Provider::Gcui;
    let w = wire(p);
    assert_eq!(
        w.submit_path(&job(custom()), &Default::default()),
        "api/custom_generate"
    );
    let custom = JobFields {
        model: Some("chirp-v4-0".into()),
        ..custom()
    };
    assert_eq!(
        body(p, custom),
        json!({"prompt": "[Verse] neon lights", "tags": "synthwave", "title": "Neon Harbor",
               "negative_tags": "heavy metal", "make_instrumental": false,
               "model": "chirp-v4", "wait_audio": false})
    );
    let description = JobFields {
        prompt: Some("a calm piano piece".into()),
        make_instrumental: Some(true),
        ..JobFields::default()
    };
    assert_eq!(
        w.submit_path(&job(description.clone()), &Default::default()),
        "api/generate"
    );
    assert_eq!(
        String::from_utf8(sent(p, description)).unwrap(),
        r#"{"prompt":"a calm piano piece","make_instrumental":true,"model":"chirp-fenix","wait_audio":false}"#,
        "gcui's own default (chirp-v3-5) is retired: the catalogue's is sent"
    );
    let inspiration = JobFields {
        gpt_description_prompt: Some("a song about rain".into()),
        ..JobFields::default()
    };
    assert_eq!(
        body(p, inspiration),
        json!({"prompt": "a song about rain", "make_instrumental": false,
               "model": "chirp-fenix", "wait_audio": false})
    );
}

#[test]
fn newapi_request_bodies() {
    let p = Provider::Newapi;
    let w = wire(p);
    let lyrics = JobFields {
        tags: None,
        ..custom()
    };
    assert_eq!(
        w.submit_path(&job(lyrics.clone()), &Default::default()),
        "suno/submit/music"
    );
    // Exactly these bytes: the relay's field order.
    assert_eq!(
        String::from_utf8(sent(p, lyrics)).unwrap(),
        r#"{"prompt":"[Verse] neon lights","tags":"synthwave","mv":"chirp-auk","title":"Neon Harbor","make_instrumental":false}"#
    );
    // A description goes in gpt_description_prompt; a job without a model
    // is sent the current model, never the relay's stale default.
    let description = JobFields {
        prompt: Some("a calm piano piece".into()),
        make_instrumental: Some(true),
        ..JobFields::default()
    };
    assert_eq!(
        body(p, description),
        json!({"mv": "chirp-crow",
               "gpt_description_prompt": "a calm piano piece", "make_instrumental": true})
    );
    let inspiration = JobFields {
        gpt_description_prompt: Some("a song about rain".into()),
        model: Some("chirp-v5-5".into()),
        ..JobFields::default()
    };
    assert_eq!(
        body(p, inspiration),
        json!({"mv": "chirp-fenix", "gpt_description_prompt": "a song about rain",
               "make_instrumental": false})
    );
    let named_default = JobFields {
        prompt: Some("rain".into()),
        model: Some("chirp-v3.5".into()),
        ..JobFields::default()
    };
    assert_eq!(
        body(p, named_default)["mv"],
        "chirp-v3-5",
        "a model named is sent"
    );
    let instrumental = JobFields {
        prompt: None,
        tags: None,
        make_instrumental: Some(true),
        model: Some("my-new-model".into()),
        ..custom()
    };
    assert_eq!(
        body(p, instrumental),
        json!({"tags": "synthwave", "mv": "my-new-model", "title": "Neon Harbor",
               "make_instrumental": true})
    );
}

#[test]
fn udioapi_request_body_is_the_jobs_fields() {
    let fields = JobFields {
        callback_url: Some("https://example.com/hook".into()),
        ..custom()
    };
    assert_eq!(
        sent(Provider::Udioapi, fields.clone()),
        serde_json::to_vec(&fields).unwrap()
    );
    // No model set, none sent: the host's default is current.
    let unset = JobFields {
        model: None,
        ..fields.clone()
    };
    assert_eq!(
        sent(Provider::Udioapi, unset.clone()),
        serde_json::to_vec(&unset).unwrap()
    );
    assert!(body(Provider::Udioapi, unset).get("model").is_none());
    // An alias is sent under the model's name.
    let alias = JobFields {
        model: Some("chirp-v4".into()),
        ..fields.clone()
    };
    assert_eq!(body(Provider::Udioapi, alias)["model"], "chirp-v4-0");
    let paths = Default::default();
    assert_eq!(
        wire(Provider::Udioapi).submit_path(&job(fields), &paths),
        "api/generate"
    );
}

// ---------------------------------------------------------------- hostile bodies

#[test]
fn hostile_bodies_never_panic_nor_invent_a_task() {
    let key = Secret::new("sk-provider-bodies-echo-77");
    let huge = format!("[{}]", vec![r#"{"id":"x"}"#; 200_000].join(","));
    let long_id = "a".repeat(300);
    let bodies: Vec<String> = vec![
        String::new(),
        "null".into(),
        "[]".into(),
        "{}".into(),
        "\"data\"".into(),
        r#"{"code":200,"msg":"success","data":"task-1"}"#.into(),
        r#"{"code":200,"data":{"taskId":"a b"}}"#.into(),
        r#"{"code":200,"data":{"taskId":{"x":1}}}"#.into(),
        format!(r#"{{"code":200,"data":{{"taskId":"{long_id}"}}}}"#),
        format!(r#"{{"code":200,"data":{{"taskId":"{}"}}}}"#, key.expose()),
        r#"[{"id":"a b"},{"id":"c"}]"#.into(),
        r#"[{"id":"a"}]"#.into(),
        r#"[{"id":"a"},{"id":"a"}]"#.into(),
        r#"[{"id":"a,b"},{"id":"c"}]"#.into(),
        r#"[{"id":"a"},{"id":"b"},{"id":"c"}]"#.into(),
        format!(r#"[{{"id":"{}"}},{{"id":"b"}}]"#, key.expose()),
        format!(r#"[{{"id":"{long_id}"}},{{"id":"{long_id}"}}]"#),
        r#"{"code":"200","data":{"taskId":null}}"#.into(),
        r#"{"code":1e400}"#.into(),
        huge.clone(),
    ];
    for &p in Provider::ALL {
        let w: &dyn Wire = wire(p);
        for b in &bodies {
            let what = format!("{p}: {}", b.chars().take(80).collect::<String>());
            if let Ok(accepted) = w.read_submit(StatusCode::OK, b.as_bytes(), None) {
                panic!("{what}: accepted {accepted:?}");
            }
            let e = w
                .read_submit(StatusCode::OK, b.as_bytes(), None)
                .unwrap_err();
            assert!(!e.to_string().contains(key.expose()), "{what}: {e}");
            let _ = w.read_poll(StatusCode::OK, b.as_bytes(), None);
            let _ = w.read_callback(b.as_bytes());
            let _ = w.read_balance(StatusCode::OK, b.as_bytes());
            let _ = w.read_poll(status(500), b.as_bytes(), None);
        }
        // Bodies past the cap are refused, not parsed.
        let big = format!("{{\"data\":{huge}}}");
        let _ = w.read_poll(StatusCode::OK, big.as_bytes(), None);
    }
}

#[test]
fn hostile_poll_bodies_are_errors_not_clips() {
    let p = Provider::Sunoapi;
    let w = wire(p);
    for b in [
        r#"{"code":200,"data":"SUCCESS"}"#,
        r#"{"code":200,"data":{"status":"SUCCESS","response":"x"}}"#,
        r#"{"code":200,"data":{"status":"SUCCESS","response":{"sunoData":{}}}}"#,
        r#"{"code":200}"#,
        "[1,2]",
    ] {
        assert!(
            w.read_poll(StatusCode::OK, b.as_bytes(), None).is_err(),
            "{b}"
        );
    }
    // A clip without an id is skipped, not an error; no clip is complete
    // on a streaming-only body.
    let clips = w
        .read_poll(
            StatusCode::OK,
            br#"{"code":200,"data":{"status":"SUCCESS","response":{"sunoData":[{"id":""},{"id":"c1","audioUrl":"ftp://x/a.mp3","duration":5}]}}}"#,
            None,
        )
        .unwrap();
    assert_eq!(clips.skipped, 1);
    assert_eq!(states(&clips), vec![First]);
    let e = wire(Provider::Gcui)
        .read_poll(StatusCode::OK, br#"{"error":"x"}"#, None)
        .unwrap_err();
    assert!(matches!(e, PollError::Feed(_)), "{e}");
}

// ---------------------------------------------------------------- clients

/// What a local host saw of each request: method, path and query, and
/// whether it carried an `Authorization` header.
type Seen = Arc<Mutex<Vec<(String, bool)>>>;

/// A host answering every request with `status` and `body`.
async fn host(status: u16, body: &'static str) -> (Url, Seen) {
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let log = Arc::clone(&log);
        async move {
            let target = format!(
                "{} {}",
                request.method(),
                request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("")
            );
            let auth = request.headers().contains_key("authorization");
            log.lock().unwrap().push((target, auth));
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/json")],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn clients_speak_the_provider_and_send_no_key_when_it_is_empty() {
    let (base, seen) = host(
        200,
        r#"[{"id":"c1","status":"submitted"},{"id":"c2","status":"submitted"}]"#,
    )
    .await;
    let client = Client::new(&base, Secret::new(""), Duration::from_secs(5))
        .unwrap()
        .with_provider(Provider::Gcui, &base);
    let accepted = client.submit(&job(custom())).await.unwrap();
    assert_eq!(accepted.task_id, "c1,c2");
    let feed = FeedClient::new(&base, Secret::new(""), Duration::from_secs(5))
        .unwrap()
        .with_provider(Provider::Gcui, &base);
    let clips = feed.poll(&accepted.task_id).await.unwrap();
    assert_eq!(clips.clips.len(), 2);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("POST /api/custom_generate".to_owned(), false),
            ("GET /api/get?ids=c1%2Cc2".to_owned(), false),
        ]
    );
}

#[tokio::test]
async fn a_missing_endpoint_names_the_provider_setting() {
    let (base, seen) = host(404, r#"{"code":404,"msg":"Not Found"}"#).await;
    let client = Client::new(&base, Secret::new("sk-x"), Duration::from_secs(5))
        .unwrap()
        .with_provider(Provider::Sunoapi, &base);
    let e = client.submit(&job(custom())).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Misdirected);
    let text = e.to_string();
    assert!(
        text.contains("POST /api/v1/generate") && text.contains("check --provider and --base-url"),
        "{text}"
    );
    assert_eq!(
        seen.lock().unwrap()[0],
        ("POST /api/v1/generate".to_owned(), true)
    );
    // sunoapi's own 405 is rate limiting: retried, not a missing endpoint.
    let (base, _) = host(405, r#"{"code":405,"msg":"Rate limit exceeded"}"#).await;
    let client = Client::new(&base, Secret::new("sk-x"), Duration::from_secs(5))
        .unwrap()
        .with_provider(Provider::Sunoapi, &base);
    let e = client.submit(&job(custom())).await.unwrap_err();
    assert!(e.is_rate_limited() && e.class() == ErrorClass::Retry, "{e}");
}

#[tokio::test]
async fn credits_and_polls_use_the_providers_endpoints() {
    let (base, seen) = host(200, r#"{"code":200,"msg":"success","data":42}"#).await;
    let client = Client::new(&base, Secret::new("sk-x"), Duration::from_secs(5))
        .unwrap()
        .with_provider(Provider::Sunoapi, &base);
    assert_eq!(client.balance().await.unwrap().credits, 42.0);
    let feed = FeedClient::new(&base, Secret::new("sk-x"), Duration::from_secs(5))
        .unwrap()
        .with_provider(Provider::Sunoapi, &base);
    assert!(feed.poll("t-1").await.is_err(), "data 42 is no record");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            ("GET /api/v1/generate/credit".to_owned(), true),
            (
                "GET /api/v1/generate/record-info?taskId=t-1".to_owned(),
                true
            ),
        ]
    );
}

/// Which task IDs each provider takes as its own, for collect's check of a
/// results file written with another `--provider`.
#[test]
fn task_id_shapes_tell_gcui_pairs_from_other_ids() {
    let gcui = wire(Provider::Gcui);
    let udio = wire(Provider::Udioapi);
    for pair in [
        "f6e2a1b0-3c4d-4e5f-9a8b-7c6d5e4f3a21,0b9c8d7e-6f5a-4b3c",
        "clip-1,clip-2",
    ] {
        assert!(
            gcui.owns_task_id(pair) && !udio.owns_task_id(pair),
            "{pair}"
        );
    }
    for other in [
        "gen2abc123def456bksv",
        "a,b,c",
        ",b",
        "=HYPERLINK(\"x\",\"y\")",
        "a b,c",
    ] {
        assert!(!gcui.owns_task_id(other), "{other}");
        assert!(wire(Provider::Sunoapi).owns_task_id(other), "{other}");
    }
}

/// A sunoapi record or callback that names another task is not filed
/// under this one (a callback of an earlier submission of the job, a
/// misrouted answer); one that names this task, or none, is kept.
#[test]
fn sunoapi_bodies_about_another_task_are_dropped() {
    let p = Provider::Sunoapi;
    let w = wire(p);
    let ours = "5c79e3a1b2c4d5e6f7a8b9c0d1e2be8e";
    let record = poll(p, "record-success.json");
    assert_eq!(record.task_id.as_deref(), Some(ours));
    assert_eq!(w.only_task(ours, record.clone()), record);
    let other = w.only_task("another-task", record.clone());
    assert!(other.clips.is_empty() && !other.is_finished());
    let callback = w
        .read_callback(&fixture(p, "callback-complete.json"))
        .unwrap();
    assert_eq!(callback.task_id.as_deref(), Some(ours));
    let failed = w.read_callback(&fixture(p, "callback-error.json")).unwrap();
    let dropped = w.only_task("another-task", failed);
    assert!(
        dropped.failure.is_none() && !dropped.is_finished(),
        "another task's failure is not ours"
    );
}

// ---------------------------------------------------------------- kie

/// kie.ai takes sunoapi's requests but has its own codes (docs.kie.ai):
/// 402 is out of credits (the run stops), 429 rate limited (the pool's
/// pause), 455 maintenance; 422, 451 and 505 fail the row. In the body of
/// an HTTP 200 or as the status, read the same.
#[test]
fn kie_codes_are_its_own() {
    let p = Provider::Kie;
    let w = wire(p);
    let accepted = w
        .read_submit(StatusCode::OK, &fixture(p, "submit-ok.json"), None)
        .unwrap();
    assert_eq!(accepted.task_id, "5c79e3a1b2c4d5e6f7a8b9c0d1e2be8e");
    // (fixture, code, class, rate limited, refusal)
    let table: &[(&str, u16, ErrorClass, bool, Option<u16>)] = &[
        ("error-402.json", 402, ErrorClass::Fatal, false, Some(402)),
        ("error-429.json", 429, ErrorClass::Retry, true, None),
        ("error-455.json", 455, ErrorClass::Retry, false, None),
        (
            "error-422-callback-url.json",
            422,
            ErrorClass::Row,
            false,
            None,
        ),
        ("error-451.json", 451, ErrorClass::Row, false, None),
        ("error-505.json", 505, ErrorClass::Row, false, None),
    ];
    for &(name, code, class, limited, refusal) in table {
        for http in [code, 200] {
            let e = w
                .read_submit(
                    status(http),
                    &fixture(p, name),
                    Some(Duration::from_secs(3)),
                )
                .unwrap_err();
            let what = format!("{name} as HTTP {http}: {e}");
            assert_eq!(e.class(), class, "{what}");
            assert_eq!(e.is_rate_limited(), limited, "{what}");
            assert_eq!(e.refusal().map(|r| r.0), refusal, "{what}");
            if limited {
                assert_eq!(e.retry_after(), Some(Duration::from_secs(3)), "{what}");
            }
        }
    }
    // The same bodies mean the opposite on sunoapi: its 429 is the credits.
    let sunoapi = wire(Provider::Sunoapi)
        .read_submit(StatusCode::OK, &fixture(p, "error-429.json"), None)
        .unwrap_err();
    assert_eq!(sunoapi.refusal().map(|r| r.0), Some(402));
    // Polls read the codes the same way.
    let e = w
        .read_poll(StatusCode::OK, &fixture(p, "error-429.json"), None)
        .unwrap_err();
    assert!(e.is_retryable() && e.refused().is_none(), "{e}");
    let e = w
        .read_poll(StatusCode::OK, &fixture(p, "error-402.json"), None)
        .unwrap_err();
    assert_eq!(e.refused(), Some(402), "{e}");
    // Its own credits path and answer.
    assert_eq!(w.credits_path(), "api/v1/chat/credit");
    let balance = w
        .read_balance(StatusCode::OK, &fixture(p, "credit.json"))
        .unwrap();
    assert_eq!(balance.credits, 100.0);
    // Its callbacks are sunoapi's, and their signature covers data.task_id.
    let clips = w
        .read_callback(&fixture(p, "callback-complete.json"))
        .unwrap();
    assert_eq!(states(&clips), vec![Complete, Complete]);
    let task = clips.task_id.as_deref();
    assert_eq!(task, Some("2fac0d1e2f3a4b5c6d7e8f9a0b1c9f72"));
    use batchgen::api::provider::signature;
    let now = 1_765_000_000;
    let sig = signature::sign(b"whk", task.unwrap(), &now.to_string());
    assert_eq!(
        signature::verify(b"whk", task, Some(&now.to_string()), Some(&sig), now),
        Ok(())
    );
}
