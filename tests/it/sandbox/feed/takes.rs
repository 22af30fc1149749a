//! The takes a finished clip's mp3 serves, over HTTP: music of the
//! `--take-length` asked, a `duration` that is the file's, and the bad
//! takes of `--bad-take` (identical clips byte for byte, short takes),
//! composing with the captcha watermark of `--fail-captcha`.

use batchgen::sandbox::{BadTakeKind, Sandbox, SandboxConfig, TakeLength};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::{custom, feed_until, finished, ms, staged, start, submit_ok};
use crate::common::{SANDBOX_FRAME, SANDBOX_HEADER, sandbox_mp3_secs};

/// A finished task's two clips: their feed `duration`, lyrics and mp3.
async fn takes(sb: &Sandbox) -> Vec<(f64, String, Vec<u8>)> {
    let id = submit_ok(sb, &custom()).await;
    let done = feed_until(sb, &id, finished).await;
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for clip in done["data"]["response_data"].as_array().unwrap() {
        let resp = http
            .get(clip["audio_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_TYPE], "audio/mpeg");
        let mp3 = resp.bytes().await.unwrap().to_vec();
        assert!(
            mp3.chunks(SANDBOX_FRAME).all(|f| f[..4] == SANDBOX_HEADER),
            "whole frames"
        );
        let duration = match &clip["duration"] {
            Value::String(s) => s.parse::<f64>().unwrap(),
            number => number.as_f64().unwrap(),
        };
        assert!(
            (sandbox_mp3_secs(mp3.len()) - duration).abs() < 1e-9,
            "duration {duration} is the file's"
        );
        let lyrics = clip["prompt"].as_str().unwrap().to_owned();
        out.push((duration, lyrics, mp3));
    }
    assert_eq!(out.len(), 2);
    out
}

#[tokio::test(start_paused = true)]
async fn takes_are_songs_of_the_length_asked() {
    let sb = start(staged(ms(10))).await;
    for _ in 0..3 {
        let clips = takes(&sb).await;
        for (duration, _, _) in &clips {
            assert!((35.0..=70.0).contains(duration), "{duration}");
        }
        assert_ne!(clips[0].2, clips[1].2, "two songs");
    }
    let sb = start(SandboxConfig {
        take_length: TakeLength::parse("3s..4s").unwrap(),
        ..staged(ms(10))
    })
    .await;
    for (duration, _, _) in takes(&sb).await {
        assert!((3.0..=4.0).contains(&duration), "{duration}");
    }
}

#[tokio::test(start_paused = true)]
async fn bad_takes_are_served_as_asked_and_compose_with_the_watermark() {
    let bad = |kind| SandboxConfig {
        bad_take: 1.0,
        bad_take_kind: kind,
        ..staged(ms(10))
    };
    let sb = start(bad(BadTakeKind::Identical)).await;
    let clips = takes(&sb).await;
    assert_eq!(clips[0].2, clips[1].2, "the same bytes");
    assert_eq!(clips[0].0, clips[1].0);
    assert!((35.0..=70.0).contains(&clips[0].0));

    let sb = start(SandboxConfig {
        fail_captcha: 1.0,
        ..bad(BadTakeKind::Short)
    })
    .await;
    for (duration, lyrics, _) in takes(&sb).await {
        assert!((12.0..=20.0).contains(&duration), "{duration}");
        assert_eq!(lyrics, "This is a fake app http://suno.com");
    }
}
