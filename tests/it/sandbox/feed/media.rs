//! The media files: real MP3s and PNGs, ranges, and 404s before their
//! stage; streaming URLs that serve only a partial body, and the bad final
//! URLs of `--bad-audio`.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use serde_json::{Value, json};

use std::time::Duration;

use batchgen::sandbox::{BadAudioKind, SandboxConfig, StageStyle};

use super::{
    KEY, custom, feed_until, finished, get, get_with, ms, stage, staged, start, submit_ok,
};

/// Walks MPEG-1 Layer III frame headers from the start to the exact end;
/// returns the duration in seconds.
fn mp3_duration(bytes: &[u8]) -> f64 {
    const KBPS: [u32; 15] = [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    let (mut at, mut samples, mut rate) = (0, 0, 0);
    while at < bytes.len() {
        let h = &bytes[at..at + 4];
        assert!(h[0] == 0xFF && h[1] & 0xE0 == 0xE0, "frame sync at {at}");
        assert_eq!((h[1] >> 3) & 3, 3, "MPEG-1 at {at}");
        assert_eq!((h[1] >> 1) & 3, 1, "Layer III at {at}");
        let kbps = KBPS[usize::from(h[2] >> 4)];
        rate = [44_100, 48_000, 32_000][usize::from((h[2] >> 2) & 3)];
        assert!(kbps > 0);
        at += (144 * kbps * 1000 / rate + u32::from((h[2] >> 1) & 1)) as usize;
        samples += 1152;
    }
    assert_eq!(at, bytes.len(), "the last frame ends the file");
    f64::from(samples) / f64::from(rate)
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// Checks every chunk's CRC and the stored-deflate image data.
fn check_png(png: &[u8]) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let (mut at, mut kinds, mut size, mut idat) = (8, Vec::new(), (0, 0), Vec::new());
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let (kind, data) = (&png[at + 4..at + 8], &png[at + 8..at + 8 + len]);
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc, crc32(&png[at + 4..at + 8 + len]), "CRC of {kind:?}");
        match kind {
            b"IHDR" => {
                size = (
                    u32::from_be_bytes(data[..4].try_into().unwrap()),
                    u32::from_be_bytes(data[4..8].try_into().unwrap()),
                );
                assert_eq!(&data[8..10], [8, 2], "8-bit RGB");
            }
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        kinds.push(kind.to_vec());
        at += 12 + len;
    }
    assert_eq!(
        kinds,
        [b"IHDR".to_vec(), b"IDAT".to_vec(), b"IEND".to_vec()]
    );
    assert_eq!(
        (u32::from(idat[0]) * 256 + u32::from(idat[1])) % 31,
        0,
        "zlib header"
    );
    assert_eq!(idat[2], 1, "one final stored block");
    let len = u16::from_le_bytes([idat[3], idat[4]]);
    assert_eq!(!len, u16::from_le_bytes([idat[5], idat[6]]));
    assert_eq!(usize::from(len), (size.1 * (1 + 3 * size.0)) as usize);
    assert_eq!(idat.len(), 7 + usize::from(len) + 4);
}

#[tokio::test(start_paused = true)]
async fn media_are_real_files_served_with_ranges() {
    let sb = start(staged(ms(20))).await;
    let id = submit_ok(&sb, &custom()).await;
    let done = feed_until(&sb, &id, finished).await;
    let http = reqwest::Client::new();
    for (i, clip) in done["data"]["response_data"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let resp = http
            .get(clip["audio_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_TYPE], "audio/mpeg");
        assert_eq!(resp.headers()[ACCEPT_RANGES], "bytes");
        let len: usize = resp.headers()[CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let mp3 = resp.bytes().await.unwrap();
        assert_eq!(mp3.len(), len);
        let reported = match &clip["duration"] {
            Value::String(s) => s.parse::<f64>().unwrap(),
            number => number.as_f64().unwrap(),
        };
        assert!(
            (mp3_duration(&mp3) - reported).abs() < 0.05,
            "clip {i}: {reported}"
        );

        let ranged = async |range: String| {
            let resp = http
                .get(clip["audio_url"].as_str().unwrap())
                .header(RANGE, range);
            let resp = resp.send().await.unwrap();
            let content_range = resp.headers().get(CONTENT_RANGE).cloned();
            (resp.status(), content_range, resp.bytes().await.unwrap())
        };
        let (status, content_range, part) = ranged("bytes=100-199".into()).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            content_range.unwrap(),
            format!("bytes 100-199/{len}").as_str()
        );
        assert_eq!(part, mp3[100..200]);
        let (status, _, tail) = ranged(format!("bytes={}-", len - 10)).await;
        assert_eq!(
            (status, &tail[..]),
            (StatusCode::PARTIAL_CONTENT, &mp3[len - 10..])
        );
        let (status, content_range, _) = ranged(format!("bytes={len}-")).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(content_range.unwrap(), format!("bytes */{len}").as_str());

        let image = http
            .get(clip["image_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(image.headers()[CONTENT_TYPE], "image/png");
        check_png(&image.bytes().await.unwrap());
    }
    let clip = done["data"]["response_data"][0]["id"].as_str().unwrap();
    for path in [
        "/media/nope.mp3",
        "/media/nope.png",
        "/media/stream/nope",
        &format!("/media/{clip}.wav"),
    ] {
        let (status, body) = get(&sb, path, None).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::NOT_FOUND, &json!(404)),
            "{path}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn no_file_exists_before_the_clips_do() {
    // Stage "new" lasts 30 s here.
    let sb = start(staged(Duration::from_secs(60))).await;
    let id = submit_ok(&sb, &custom()).await;
    // The legacy feed names the clips before the v2 feed shows them.
    let (_, legacy) = get(&sb, &format!("/api/feed?workId={id}"), Some(KEY)).await;
    for clip in legacy["response_data"].as_array().unwrap() {
        let clip = clip["id"].as_str().unwrap();
        for path in [
            format!("/media/{clip}.png"),
            format!("/media/stream/{clip}"),
            format!("/media/{clip}.mp3"),
        ] {
            let (status, body) = get(&sb, &path, None).await;
            let not_ready = json!({"code": 404, "message": "not ready"});
            assert_eq!((status, body), (StatusCode::NOT_FOUND, not_ready), "{path}");
        }
    }
}

/// Checks, stage by stage, which files exist; `stages` are the style's
/// stages (as `super::stage` names them) and each file's first stage in it.
async fn files_appear_at_their_stage(style: StageStyle, stages: &[&str], firsts: [usize; 3]) {
    // One client: building one per request is slow in a debug build.
    let http = reqwest::Client::new();
    let sb = start(SandboxConfig {
        stage_style: style,
        ..staged(ms(500))
    })
    .await;
    let id = submit_ok(&sb, &custom()).await;
    let (_, legacy) = get_with(&http, &sb, &format!("/api/feed?workId={id}"), Some(KEY)).await;
    let clip = legacy["response_data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let files = [
        format!("/media/{clip}.png"),
        format!("/media/stream/{clip}?item_id={clip}"),
        format!("/media/{clip}.mp3"),
    ];
    let feed_url = format!("{}/api/v2/feed?workId={id}", sb.base_url());
    let now = async || {
        let resp = http.get(&feed_url).bearer_auth(KEY).send().await.unwrap();
        let name = stage(&resp.json().await.unwrap());
        stages.iter().position(|&s| s == name).unwrap()
    };
    // Each request is bracketed by two stage reads: when both agree on
    // which side of the file's stage the request fell, its status must too.
    loop {
        for (path, &exists_from) in files.iter().zip(&firsts) {
            let before = now().await;
            let url = format!("{}{path}", sb.base_url());
            let status = http.get(url).send().await.unwrap().status();
            let after = now().await;
            if after < exists_from {
                assert_eq!(status, StatusCode::NOT_FOUND, "{path} in {}", stages[after]);
            } else if before >= exists_from {
                assert_eq!(status, StatusCode::OK, "{path} in {}", stages[before]);
            }
        }
        if now().await == stages.len() - 1 {
            break;
        }
        // On the paused clock:
        // simulates: a client polling the feed and the files every 50 ms.
        tokio::time::sleep(ms(50)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn files_appear_at_their_documented_stage() {
    let stages = ["new", "lyrics", "text", "first", "final"];
    // The cover from the text stage, streaming from when the feed shows
    // its URL, the mp3 at the end.
    files_appear_at_their_stage(StageStyle::Documented, &stages, [1, 2, 4]).await;
}

#[tokio::test(start_paused = true)]
async fn files_appear_at_their_complete_style_stage() {
    let stages = ["new", "text", "first", "final"];
    files_appear_at_their_stage(StageStyle::Complete, &stages, [1, 2, 3]).await;
}

#[tokio::test(start_paused = true)]
async fn streaming_urls_serve_a_short_partial_body_and_are_counted() {
    let sb = start(staged(ms(200))).await;
    let id = submit_ok(&sb, &custom()).await;
    let first = feed_until(&sb, &id, |b| stage(b) == "first").await;
    let clip = &first["data"]["response_data"][0];
    let url = clip["audio_url"].as_str().unwrap().to_owned();
    assert!(
        url.contains("/media/stream/") && url.contains("?item_id="),
        "{url}"
    );
    assert_eq!(sb.stats().stream_fetches, 0);
    let http = reqwest::Client::new();
    let partial = http.get(&url).send().await.unwrap();
    assert_eq!(partial.status(), StatusCode::OK);
    assert_eq!(partial.headers()[CONTENT_TYPE], "audio/mpeg");
    let partial = partial.bytes().await.unwrap();
    // Even a Range for the whole file gets only the partial body.
    let ranged = http
        .get(&url)
        .header(RANGE, "bytes=0-")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::OK);
    assert_eq!(ranged.bytes().await.unwrap(), partial);

    let done = feed_until(&sb, &id, finished).await;
    let whole = http
        .get(
            done["data"]["response_data"][0]["audio_url"]
                .as_str()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        partial.len() < whole.len() / 4,
        "{} of {}",
        partial.len(),
        whole.len()
    );
    assert_eq!(partial, whole[..partial.len()], "the start of the song");
    let stats = sb.stats();
    assert_eq!((stats.stream_fetches, stats.audio_fetches), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn bad_final_urls_answer_what_public_reports_show() {
    let http = reqwest::Client::new();
    let table: [(BadAudioKind, StatusCode, Option<&str>, &str); 5] = [
        (
            BadAudioKind::Html,
            StatusCode::OK,
            Some("text/html"),
            ".mp3",
        ),
        (
            BadAudioKind::Json,
            StatusCode::OK,
            Some("application/json"),
            ".mp3",
        ),
        (BadAudioKind::NotFound, StatusCode::NOT_FOUND, None, ".mp3"),
        (
            BadAudioKind::NoneMp3,
            StatusCode::NOT_FOUND,
            None,
            "/media/None.mp3",
        ),
        (
            BadAudioKind::Forbidden,
            StatusCode::FORBIDDEN,
            None,
            "/api/forbidden",
        ),
    ];
    for (kind, status, content_type, url_end) in table {
        let sb = start(SandboxConfig {
            bad_audio: 1.0,
            bad_audio_kind: kind,
            ..staged(ms(10))
        })
        .await;
        let id = submit_ok(&sb, &custom()).await;
        let done = feed_until(&sb, &id, finished).await;
        for clip in done["data"]["response_data"].as_array().unwrap() {
            let url = clip["audio_url"].as_str().unwrap();
            assert!(url.ends_with(url_end), "{kind:?}: {url}");
            let resp = http.get(url).send().await.unwrap();
            assert_eq!(resp.status(), status, "{kind:?}");
            if let Some(content_type) = content_type {
                assert_eq!(resp.headers()[CONTENT_TYPE], content_type, "{kind:?}");
            }
            let body = resp.bytes().await.unwrap();
            assert!(
                !body.starts_with(b"\xFF\xFB") && !body.starts_with(b"ID3"),
                "{kind:?}"
            );
        }
        assert_eq!(sb.stats().audio_fetches, 2, "{kind:?}");
    }
    // Off by default; at 0.5, some clips of a batch and not others.
    let sb = start(SandboxConfig {
        bad_audio: 0.5,
        ..staged(ms(10))
    })
    .await;
    let mut good = 0;
    for i in 0..8 {
        let id = submit_ok(&sb, &json!({"prompt": format!("song {i}")})).await;
        let done = feed_until(&sb, &id, finished).await;
        for clip in done["data"]["response_data"].as_array().unwrap() {
            let resp = http
                .get(clip["audio_url"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            let is_mp3 = resp
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|t| t == "audio/mpeg");
            good += usize::from(resp.status() == StatusCode::OK && is_mp3);
        }
    }
    assert!((1..16).contains(&good), "{good} of 16 good");
}
