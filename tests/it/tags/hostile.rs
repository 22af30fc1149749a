//! A hostile host on 127.0.0.1:0: covers that are HTML, 50 MB or of the
//! wrong kind, lyrics of hundreds of kilobytes with NULs. Each song must be
//! kept and tagged (without its cover, the reason in the catalog), the
//! lyrics capped, and a rerun must leave it all as it was.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use batchgen::engine::collect::download::DownloadConfig;
use batchgen::engine::collect::{self, CollectConfig};
use batchgen::util::{redact::Secret, units::Rate};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{check_tag, cover, lyrics};

use crate::common::{self, catalog};

/// 40 whole MPEG frames: a CDN's song.
fn song() -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..40u8 {
        let mut frame = vec![i; 384];
        frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x94, 0xC4]);
        bytes.extend(frame);
    }
    bytes
}

/// 50 MB of PNG-looking bytes in 1 MiB chunks, with no `Content-Length`:
/// only a cap on what is read stops it.
struct HugeImage {
    sent: usize,
}

impl http_body::Body for HugeImage {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.sent == 50 {
            return std::task::Poll::Ready(None);
        }
        let mut chunk = vec![0x42u8; 1 << 20];
        if self.sent == 0 {
            chunk[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
        }
        self.sent += 1;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk.into()))))
    }
}

fn huge_image() -> Response {
    let body = Body::new(HugeImage { sent: 0 });
    ([(header::CONTENT_TYPE, "image/png")], body).into_response()
}

async fn media(uri: Uri) -> Response {
    let typed =
        |kind: &'static str, body: Vec<u8>| ([(header::CONTENT_TYPE, kind)], body).into_response();
    match uri.path() {
        p if p.ends_with(".mp3") => typed("audio/mpeg", song()),
        "/img/html.png" => typed("text/html", b"<!doctype html><p>Not found</p>".to_vec()),
        "/img/gif.png" => typed("image/png", b"GIF89a\x01\x00\x01\x00rest".to_vec()),
        "/img/huge.png" => huge_image(),
        "/img/jpeg.png" => typed(
            "image/png",
            b"\xFF\xD8\xFF\xE0 a jpeg, whatever the URL says".to_vec(),
        ),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// A v2 feed answering every task with two complete clips whose image is
/// `/img/<KEY>.png` and whose lyrics are `lyric`.
async fn hostile_host(lyric: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let feed_base = base.clone();
    let feed = move |Query(q): Query<HashMap<String, String>>| {
        let (base, lyric) = (feed_base.clone(), lyric.clone());
        async move {
            let task = q.get("workId").cloned().unwrap_or_default();
            let key = task.strip_prefix("t-").unwrap_or_default().to_owned();
            let clip = |n: u32| {
                json!({"id": format!("{key}-{n}"), "status": "complete", "title": format!("Song {key}"),
                       "tags": "lofi", "prompt": lyric, "duration": 0.96, "model_name": "chirp-v3-5",
                       "audio_url": format!("{base}/media/{key}-{n}.mp3"),
                       "image_url": format!("{base}/img/{key}.png"),
                       "created_at": "2025-01-01T22:10:31.665Z"})
            };
            let body: Value = json!({"code": 200, "message": "success",
                "data": {"type": "SUCCESS", "response_data": [clip(1), clip(2)]}});
            axum::Json(body)
        }
    };
    let app = Router::new()
        .route("/api/v2/feed", get(feed))
        .fallback(media);
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_covers_and_lyrics_never_cost_the_song() {
    // Two clips of 440 KB each once JSON escapes the NULs: under the
    // feed's 1 MiB body cap (a larger body is refused whole).
    let lyric = "la\0la ".repeat(40_000);
    let base = hostile_host(lyric).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = ["html", "gif", "huge", "jpeg"];
    let tasks: Vec<String> = keys.iter().map(|k| format!("t-{k}")).collect();
    let jobs: Vec<(&str, &str)> = keys
        .iter()
        .copied()
        .zip(tasks.iter().map(String::as_str))
        .collect();
    let results = common::submitted_results(dir.path(), &jobs);
    let config = CollectConfig {
        download: Some(DownloadConfig {
            dir: dir.path().join("songs"),
            name: Default::default(),
            concurrency: 4,
            rate: Rate::Unlimited,
            images: false,
            timeout: Duration::from_secs(10),
            artist: "A\0rtist".into(),
            album: "jobs".into(),
            measure: None,
        }),
        ..collect_config_like(&base, dir.path(), &results)
    };
    let report = collect::collect(config, CancellationToken::new())
        .await
        .unwrap();
    let rows = catalog(&dir.path().join("jobs.catalog.csv"));
    assert_eq!(report.downloads.downloaded, 8, "every song kept: {rows:#?}");
    assert_eq!(rows.len(), 8);
    for (i, row) in rows.iter().enumerate() {
        let tag = check_tag(row, i as u32 / 2 + 1, "Artist", "jobs");
        let words = lyrics(&tag);
        assert_eq!(words.len(), 1);
        assert!(
            words[0].starts_with("lala la"),
            "NULs dropped: {:?}",
            &words[0][..20]
        );
        assert!(!words[0].contains('\0'));
        let kept = words[0].chars().count();
        let cap = batchgen::api::feed::MAX_LYRICS;
        assert!(
            kept <= cap && kept >= cap - 1,
            "capped (then trimmed): {kept}"
        );
        assert_eq!(row.lyrics, words[0], "the catalog holds the capped lyrics");
        if row.key == "jpeg" {
            // The bytes decide the type, not the URL or Content-Type.
            assert_eq!(cover(&tag).mime_type, "image/jpeg");
            assert_eq!(row.error, "");
            continue;
        }
        assert_eq!(tag.pictures().count(), 0, "{}: no cover", row.key);
        let why = match row.key.as_str() {
            "html" | "gif" => "not a PNG, JPEG or WebP",
            "huge" => "larger than",
            other => panic!("{other}"),
        };
        assert!(
            row.error.starts_with("tagged without cover: ") && row.error.contains(why),
            "{}: {}",
            row.key,
            row.error
        );
        assert!(
            row.error.contains("/img/"),
            "names the image: {}",
            row.error
        );
    }

    // A rerun keeps the note and downloads nothing again.
    let again = CollectConfig {
        download: Some(DownloadConfig {
            dir: dir.path().join("songs"),
            name: Default::default(),
            concurrency: 1,
            rate: Rate::Unlimited,
            images: false,
            timeout: Duration::from_secs(10),
            artist: String::new(),
            album: String::new(),
            measure: None,
        }),
        ..collect_config_like(&base, dir.path(), &results)
    };
    let report = collect::collect(again, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.downloads.downloaded, 0);
    let rerun = catalog(&dir.path().join("jobs.catalog.csv"));
    assert_eq!(rerun, rows);
}

fn collect_config_like(base: &str, dir: &Path, results: &Path) -> CollectConfig {
    CollectConfig {
        provider: Default::default(),
        results: results.to_owned(),
        catalog: dir.join("jobs.catalog.csv"),
        base_url: url::Url::parse(base).unwrap(),
        api_key: Secret::new("sk-tags-test-0123456789"),
        poll_interval: Duration::from_millis(20),
        poll_rate: Rate::Unlimited,
        poll_concurrency: 4,
        window: collect::WINDOW,
        callbacks: None,
        deadline: Duration::from_secs(60),
        timeout: Duration::from_secs(10),
        download: None,
    }
}
