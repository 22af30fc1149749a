//! `collect --download` against a hostile host on 127.0.0.1:0: a feed that
//! reports the documented final stage (`first` + "All generated
//! successfully.", `type` SUCCESS from the text stage on) for clips whose
//! final URLs answer anything but a song. Each bad answer must fail its
//! clip's catalog row with the URL's host and path and the reason; no file
//! may appear under a final name, no `.part` be left for a later run to
//! resume as audio, and the summary must count it. A streaming URL is never
//! fetched, and polling goes on past `SUCCESS` until the clips are final.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use batchgen::engine::collect::download::{DownloadConfig, TAG_FAILED};
use batchgen::engine::collect::{self, CollectConfig, CollectReport};
use batchgen::files::catalog::Row;
use batchgen::program::exit::{ExitCode, ExitStatus as _};
use batchgen::util::{redact::Secret, units::Rate};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::v2;
use crate::common;

const KEY: &str = "sk-hostile-downloads-0123456789";

/// What the host does: feed bodies per task, by poll number (the last one
/// repeats), and how often each path (with its query) was requested.
struct Host {
    feeds: HashMap<String, Vec<Value>>,
    polls: Mutex<HashMap<String, usize>>,
    hits: Mutex<HashMap<String, usize>>,
}

impl Host {
    fn hits(&self, path: &str) -> usize {
        let hits = self.hits.lock().unwrap();
        hits.iter()
            .filter(|(p, _)| p.starts_with(path))
            .map(|(_, n)| n)
            .sum()
    }
}

/// 50 whole MPEG frames, no tag: what a CDN serves.
fn song(seed: u8) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..50u8 {
        let mut frame = vec![seed ^ i; 384];
        frame[..4].copy_from_slice(&[0xFF, 0xFB, 0x94, 0xC4]);
        bytes.extend(frame);
    }
    bytes
}

/// An ID3 header of a version no parser knows, then audio.
fn badly_tagged() -> Vec<u8> {
    let mut bytes = b"ID3\x07\x00\x00\x00\x00\x00\x0a".to_vec();
    bytes.extend([0u8; 10]);
    bytes.extend(song(9));
    bytes
}

async fn feed(State(host): State<Arc<Host>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let task = q.get("workId").cloned().unwrap_or_default();
    let Some(bodies) = host.feeds.get(&task) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": 404, "message": "task not found", "data": null})),
        )
            .into_response();
    };
    let n = {
        let mut polls = host.polls.lock().unwrap();
        let n = polls.entry(task).or_default();
        *n += 1;
        *n
    };
    axum::Json(bodies[(n - 1).min(bodies.len() - 1)].clone()).into_response()
}

/// Every other path: a media file, good or hostile, by name.
async fn media(State(host): State<Arc<Host>>, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().to_owned();
    let full = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    *host.hits.lock().unwrap().entry(full).or_default() += 1;
    let typed =
        |kind: &'static str, body: Vec<u8>| ([(header::CONTENT_TYPE, kind)], body).into_response();
    match path.as_str() {
        "/media/html.mp3" => typed(
            "text/html; charset=utf-8",
            b"<!DOCTYPE html><html><body>Error 500</body></html>".to_vec(),
        ),
        "/media/json.mp3" => typed(
            "application/json",
            br#"{"code":404,"message":"file not found","data":null}"#.to_vec(),
        ),
        "/api/forbidden" => typed("application/octet-stream", b"Forbidden".to_vec()),
        "/media/liar.mp3" => typed(
            "audio/mpeg",
            b"<html><body>Access denied</body></html>".to_vec(),
        ),
        "/media/badtag.mp3" => typed("audio/mpeg", badly_tagged()),
        "/media/cover.png" => typed("image/png", {
            let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
            png.extend([7u8; 64]);
            png
        }),
        "/media/page.png" => typed(
            "image/png",
            b"<!DOCTYPE html><html><body>Error 503</body></html>".to_vec(),
        ),
        p if p.starts_with("/media/good-") => {
            let body = song(p.len() as u8);
            let start = headers
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes="))
                .and_then(|v| v.strip_suffix('-'))
                .and_then(|v| v.parse::<usize>().ok());
            match start {
                Some(start) if start < body.len() => (
                    StatusCode::PARTIAL_CONTENT,
                    [
                        (header::CONTENT_TYPE, "audio/mpeg".to_owned()),
                        (
                            header::CONTENT_RANGE,
                            format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
                        ),
                    ],
                    body[start..].to_vec(),
                )
                    .into_response(),
                _ => typed("audio/mpeg", body),
            }
        }
        // Streaming URLs serve a growing, partial body: never to be fetched.
        _ if uri.query().is_some_and(|q| q.contains("item_id=")) => {
            typed("audio/mpeg", song(1)[..1000].to_vec())
        }
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// Starts the host with `feeds(base)`: task ID → bodies by poll.
async fn start(feeds: impl FnOnce(&str) -> HashMap<String, Vec<Value>>) -> (String, Arc<Host>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let host = Arc::new(Host {
        feeds: feeds(&base),
        polls: Mutex::default(),
        hits: Mutex::default(),
    });
    let app = Router::new()
        .route("/api/v2/feed", get(feed))
        .fallback(media)
        .with_state(Arc::clone(&host));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, host)
}

/// A clip as the v2 feed shows it.
fn clip(id: &str, status: &str, extra: &str, url: &str, duration: Value) -> Value {
    json!({"id": id, "status": status, "title": format!("Song {id}"), "tags": "lofi",
           "audio_url": url, "image_url": "", "duration": duration,
           "model_name": "chirp-v3-5", "created_at": "2025-01-01T22:10:31.665Z",
           "extra_message": extra, "fail_message": "", "error_message": ""})
}

/// The documented final stage.
fn done(id: &str, url: &str) -> Value {
    clip(id, "first", "All generated successfully.", url, json!(12.0))
}

/// Writes a results file with one submitted task per key (task ID `t-KEY`).
fn results(dir: &Path, keys: &[&str]) -> std::path::PathBuf {
    let tasks: Vec<String> = keys.iter().map(|key| format!("t-{key}")).collect();
    let jobs: Vec<(&str, &str)> = keys
        .iter()
        .copied()
        .zip(tasks.iter().map(String::as_str))
        .collect();
    common::submitted_results(dir, &jobs)
}

async fn collect(base: &str, dir: &Path, results: &Path, deadline: Duration) -> CollectReport {
    collect_with(base, dir, results, deadline, false).await
}

/// [`collect`], keeping each clip's cover (`--images`) when `images`.
async fn collect_with(
    base: &str,
    dir: &Path,
    results: &Path,
    deadline: Duration,
    images: bool,
) -> CollectReport {
    let config = CollectConfig {
        provider: Default::default(),
        results: results.to_owned(),
        catalog: dir.join("jobs.catalog.csv"),
        base_url: url::Url::parse(base).unwrap(),
        api_key: Secret::new(KEY),
        poll_interval: Duration::from_millis(20),
        poll_rate: Rate::Unlimited,
        poll_concurrency: 4,
        window: collect::WINDOW,
        callbacks: None,
        deadline,
        timeout: Duration::from_secs(5),
        download: Some(DownloadConfig {
            dir: dir.join("songs"),
            name: Default::default(),
            concurrency: 4,
            rate: Rate::Unlimited,
            images,
            timeout: Duration::from_secs(5),
            artist: String::new(),
            album: String::new(),
            measure: None,
        }),
    };
    collect::collect(config, CancellationToken::new())
        .await
        .unwrap()
}

fn catalog(dir: &Path) -> (String, Vec<Row>) {
    let path = dir.join("jobs.catalog.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let rows = csv::Reader::from_path(&path)
        .unwrap()
        .deserialize()
        .map(|r| r.unwrap())
        .collect();
    (text, rows)
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("songs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_that_are_not_audio_fail_their_clip_and_leave_no_file() {
    // (key, clip 1's URL path, what its row's error must say)
    // A final stage without an `audio_url` is not complete yet: it is polled
    // on (tests/it/providers/docs/, a_final_stage_without_its_url_yet_...).
    let cases: [(&str, &str, &str); 7] = [
        (
            "html",
            "/media/html.mp3?token=sekrit",
            "/media/html.mp3: not audio: Content-Type \"text/html; charset=utf-8\"",
        ),
        (
            "json",
            "/media/json.mp3",
            "/media/json.mp3: not audio: Content-Type \"application/json\"",
        ),
        (
            "gone",
            "/media/gone.mp3",
            "/media/gone.mp3: HTTP 404 Not Found",
        ),
        (
            "none",
            "/media/None.mp3",
            "/media/None.mp3: the API's audio_url names no file (None.mp3)",
        ),
        (
            "forbidden",
            "/api/forbidden",
            "/api/forbidden: not audio: the body starts with \"Forbidden\"",
        ),
        (
            "liar",
            "/media/liar.mp3",
            "/media/liar.mp3: not audio: the body starts with \"<html><body>Access",
        ),
        ("dead", "http://127.0.0.1:1/x.mp3", "127.0.0.1:1/x.mp3: "),
    ];
    let (base, host) = start(|base| {
        cases
            .iter()
            .map(|(key, path, _)| {
                let url = match *path {
                    "" => String::new(),
                    p if p.starts_with("http") => p.to_owned(),
                    p => format!("{base}{p}"),
                };
                let good = format!("{base}/media/good-{key}-2.mp3");
                let body = v2(vec![
                    done(&format!("{key}-a"), &url),
                    done(&format!("{key}-b"), &good),
                ]);
                (format!("t-{key}"), vec![body])
            })
            .collect()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let keys: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let results = results(tmp.path(), &keys);
    let report = collect(&base, tmp.path(), &results, Duration::from_secs(60)).await;

    assert_eq!((report.counts.tasks, report.counts.tasks_finished), (7, 7));
    assert_eq!(
        (report.counts.clips_complete, report.counts.clips_pending),
        (14, 0)
    );
    assert_eq!(
        (report.downloads.downloaded, report.downloads.failed),
        (7, 7)
    );
    assert_eq!(report.exit_code(), ExitCode::RowsFailed);
    assert_eq!(
        host.hits("/media/None.mp3"),
        0,
        "a None.mp3 URL is not even asked"
    );

    let (text, rows) = catalog(tmp.path());
    assert!(!text.contains(KEY), "{text}");
    // The catalog keeps the URL the API gave; messages keep no query.
    assert!(rows.iter().all(|r| !r.error.contains("sekrit")), "{text}");
    let port = base.rsplit(':').next().unwrap();
    for (key, _, why) in cases {
        let row = rows
            .iter()
            .find(|r| r.key == key && r.clip_index == 1)
            .unwrap();
        assert_eq!(row.status, "complete", "{key}");
        assert!(
            row.error.starts_with("download failed: "),
            "{key}: {}",
            row.error
        );
        assert!(
            row.error.contains(why),
            "{key}: {:?} lacks {why:?}",
            row.error
        );
        if key != "dead" {
            assert!(
                row.error.contains(&format!("127.0.0.1:{port}/")),
                "{key}: {}",
                row.error
            );
        }
        assert_eq!((row.file.as_str(), row.file_bytes), ("", None), "{key}");
        let good = rows
            .iter()
            .find(|r| r.key == key && r.clip_index == 2)
            .unwrap();
        assert_eq!(good.error, "", "{key}");
        assert_eq!(
            Path::new(&good.file).file_name().unwrap(),
            format!("{key}-2.mp3").as_str()
        );
    }
    // The cause of a connection failure is kept, not "error sending request".
    let dead = rows.iter().find(|r| r.key == "dead").unwrap();
    assert!(
        dead.error.to_lowercase().contains("connection refused"),
        "{}",
        dead.error
    );
    // Only the good clips are on disk: no bad file, no .part to resume.
    let want: Vec<String> = {
        let mut w: Vec<String> = keys.iter().map(|k| format!("{k}-2.mp3")).collect();
        w.sort();
        w
    };
    assert_eq!(files(tmp.path()), want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_that_cannot_be_written_keeps_the_audio_and_says_so() {
    let (base, host) = start(|base| {
        let body = v2(vec![
            done("bt-a", &format!("{base}/media/badtag.mp3")),
            done("bt-b", &format!("{base}/media/good-bt-2.mp3")),
        ]);
        HashMap::from([("t-bt".to_owned(), vec![body])])
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let results = results(tmp.path(), &["bt"]);
    let report = collect(&base, tmp.path(), &results, Duration::from_secs(60)).await;
    assert_eq!(
        (report.downloads.downloaded, report.downloads.failed),
        (2, 0)
    );
    assert_eq!(report.exit_code(), ExitCode::Success);
    let (_, rows) = catalog(tmp.path());
    let row = &rows[0];
    assert!(row.error.starts_with(TAG_FAILED), "{}", row.error);
    let bytes = std::fs::read(&row.file).unwrap();
    assert_eq!(bytes, badly_tagged(), "the audio is kept as served");
    assert_eq!(row.file_bytes, Some(bytes.len() as u64));
    assert_eq!(rows[1].error, "");

    // A rerun neither downloads it again nor forgets why it has no tags.
    let report = collect(&base, tmp.path(), &results, Duration::from_secs(60)).await;
    assert_eq!(
        (report.downloads.downloaded, report.downloads.skipped),
        (0, 2)
    );
    assert_eq!(host.hits("/media/badtag.mp3"), 1);
    let (_, again) = catalog(tmp.path());
    assert_eq!(again, rows);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_left_by_an_earlier_run_that_is_not_audio_is_started_over() {
    let (base, _host) = start(|base| {
        let body = v2(vec![
            done("r-a", &format!("{base}/media/good-r-1.mp3")),
            done("r-b", &format!("{base}/media/good-r-2.mp3")),
        ]);
        HashMap::from([("t-r".to_owned(), vec![body])])
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let songs = tmp.path().join("songs");
    std::fs::create_dir_all(&songs).unwrap();
    // An earlier release's `.part` (the plain name), and this release's
    // (the clip's own).
    std::fs::write(songs.join(".r-1.mp3.part"), b"<html>502 Bad Gateway</html>").unwrap();
    let part =
        batchgen::engine::collect::download::resumable_part(&songs.join("r-2.mp3"), "t-r", "r-b");
    std::fs::write(part, b"<html>502 Bad Gateway</html>").unwrap();
    let results = results(tmp.path(), &["r"]);
    let report = collect(&base, tmp.path(), &results, Duration::from_secs(60)).await;
    assert_eq!(
        (report.downloads.downloaded, report.downloads.failed),
        (2, 0)
    );
    let (_, rows) = catalog(tmp.path());
    let bytes = std::fs::read(&rows[0].file).unwrap();
    assert!(bytes.starts_with(b"ID3"), "tagged");
    assert!(
        bytes.ends_with(&song("/media/good-r-1.mp3".len() as u8)),
        "whole, from the start"
    );
    let bytes = std::fs::read(&rows[1].file).unwrap();
    assert!(bytes.ends_with(&song("/media/good-r-2.mp3".len() as u8)));
    assert_eq!(files(tmp.path()), ["r-1.mp3", "r-2.mp3"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_goes_past_success_and_never_fetches_a_streaming_url() {
    let (base, host) = start(|base| {
        let stream = |id: &str| format!("{base}/stream?item_id={id}");
        let text = v2(vec![
            clip(
                "s-a",
                "text",
                "Text generated successfully.",
                &stream("s-a"),
                json!(""),
            ),
            clip("", "text", "Text generated successfully.", "", json!("")),
        ]);
        let first = v2(vec![
            clip(
                "s-a",
                "first",
                "First audio generated successfully.",
                &stream("s-a"),
                json!(""),
            ),
            // Final in words with a streaming URL: not final yet.
            done("s-b", &stream("s-b")),
        ]);
        let last = v2(vec![
            done("s-a", &format!("{base}/media/good-s-1.mp3")),
            done("s-b", &format!("{base}/media/good-s-2.mp3")),
        ]);
        // Polls 1-2 text, 3-4 first audio, 5 on final; the other task never ends.
        let stuck = v2(vec![
            clip("x-a", "first", "", &stream("x-a"), json!("")),
            done("x-b", &stream("x-b")),
        ]);
        HashMap::from([
            (
                "t-s".to_owned(),
                vec![text.clone(), text, first.clone(), first, last],
            ),
            ("t-x".to_owned(), vec![stuck]),
        ])
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let results = results(tmp.path(), &["s", "x"]);
    let report = collect(&base, tmp.path(), &results, Duration::from_secs(3)).await;

    assert!(report.deadline_hit);
    assert_eq!((report.counts.tasks, report.counts.tasks_finished), (2, 1));
    assert_eq!(
        (report.counts.clips_complete, report.counts.clips_pending),
        (2, 2)
    );
    assert_eq!(report.downloads.downloaded, 2);
    assert_eq!(report.exit_code(), ExitCode::RowsFailed);
    assert!(
        host.polls.lock().unwrap()["t-s"] >= 5,
        "polled past SUCCESS"
    );
    assert!(
        host.polls.lock().unwrap()["t-x"] >= 10,
        "polled until the deadline"
    );
    assert_eq!(host.hits("/stream"), 0, "no streaming URL fetched");

    let (text, rows) = catalog(tmp.path());
    assert!(
        !text.contains("item_id"),
        "no streaming URL recorded: {text}"
    );
    let status: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.clip_id.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(
        status,
        [
            ("s-a", "complete"),
            ("s-b", "complete"),
            ("x-a", "first"),
            ("x-b", "first")
        ]
    );
    assert_eq!(files(tmp.path()), ["s-1.mp3", "s-2.mp3"]);
}

/// The clip ID an MP3's tag names (`TXXX` `batchgen:clip_id`).
fn tagged_clip(path: &Path) -> String {
    let tag = id3::Tag::read_from_path(path).unwrap();
    tag.extended_texts()
        .find(|t| t.description == "batchgen:clip_id")
        .map(|t| t.value.clone())
        .unwrap_or_default()
}

/// A job sent again (a second task, as `--retry-unknown` records it) is
/// collected end to end: its new clips get files of their own, tagged with
/// their own clip IDs, and the first task's files stay as they were.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_sent_again_gets_files_of_its_own() {
    let (base, host) = start(|base| {
        let media = |name: &str| format!("{base}/media/good-{name}.mp3");
        HashMap::from([
            (
                "t-k".to_owned(),
                vec![v2(vec![
                    done("old-1", &media("o1")),
                    done("old-2", &media("o22")),
                ])],
            ),
            (
                "t-again".to_owned(),
                vec![v2(vec![
                    done("new-1", &media("n333")),
                    done("new-2", &media("n4444")),
                ])],
            ),
        ])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let results = results(dir.path(), &["k"]);
    let first = collect(&base, dir.path(), &results, Duration::from_secs(30)).await;
    assert_eq!(first.exit_code(), ExitCode::Success, "{first:?}");
    assert_eq!(files(dir.path()), ["k-1.mp3", "k-2.mp3"]);
    let songs = dir.path().join("songs");
    let before: Vec<Vec<u8>> = ["k-1.mp3", "k-2.mp3"]
        .map(|f| std::fs::read(songs.join(f)).unwrap())
        .into();

    let mut state = batchgen::files::state::State::open(&results).unwrap();
    state
        .record(&[&common::submitted("k", 2, "t-again")])
        .unwrap();
    drop(state);
    for run in 0..2 {
        let again = collect(&base, dir.path(), &results, Duration::from_secs(30)).await;
        assert_eq!(again.exit_code(), ExitCode::Success, "run {run}: {again:?}");
        let (text, rows) = catalog(dir.path());
        assert_eq!(rows.len(), 2, "{text}");
        let mut new_files = Vec::new();
        for row in &rows {
            assert_eq!(row.task_id, "t-again", "{text}");
            assert!(
                !["k-1.mp3", "k-2.mp3"].iter().any(|f| row.file.ends_with(f)),
                "{text}"
            );
            assert_eq!(tagged_clip(Path::new(&row.file)), row.clip_id, "{text}");
            new_files.push(row.file.clone());
        }
        assert_ne!(new_files[0], new_files[1]);
        assert_eq!(files(dir.path()).len(), 4, "{:?}", files(dir.path()));
        for (name, bytes) in ["k-1.mp3", "k-2.mp3"].iter().zip(&before) {
            assert_eq!(
                &std::fs::read(songs.join(name)).unwrap(),
                bytes,
                "{name} untouched"
            );
            assert!(tagged_clip(&songs.join(name)).starts_with("old-"));
        }
    }
    assert_eq!(
        host.hits("/media/good-n333"),
        1,
        "fetched once, not again on the rerun"
    );
}

/// Covers get the audio's treatment: a body that is not an image (an HTML
/// error page, whatever its `Content-Type` says) is neither kept nor
/// recorded and is fetched again by the next run; a real one is kept once.
#[tokio::test(flavor = "multi_thread")]
async fn a_cover_that_is_not_an_image_is_not_kept() {
    let (base, host) = start(|base| {
        let with_image = |id: &str, song: &str, image: &str| {
            let mut clip = done(id, &format!("{base}/media/good-{song}.mp3"));
            clip["image_url"] = json!(format!("{base}/media/{image}"));
            clip
        };
        HashMap::from([(
            "t-k".to_owned(),
            vec![v2(vec![
                with_image("c1", "a1", "page.png"),
                with_image("c2", "b22", "cover.png"),
            ])],
        )])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let results = results(dir.path(), &["k"]);
    for run in 1..=2 {
        let report = collect_with(&base, dir.path(), &results, Duration::from_secs(30), true).await;
        assert_eq!(
            report.exit_code(),
            ExitCode::RowsFailed,
            "run {run}: {report:?}"
        );
        let (text, rows) = catalog(dir.path());
        assert_eq!(rows[0].image_file, "", "run {run}: {text}");
        assert!(
            rows[0]
                .error
                .contains("/media/page.png: the image is not a PNG, JPEG or WebP"),
            "run {run}: {text}"
        );
        assert!(rows[1].image_file.ends_with("k-2.png"), "run {run}: {text}");
        assert_eq!(
            files(dir.path()),
            ["k-1.mp3", "k-2.mp3", "k-2.png"],
            "run {run}: no page kept as an image"
        );
    }
    assert!(
        host.hits("/media/page.png") >= 2,
        "fetched again by the next run"
    );
    assert_eq!(
        host.hits("/media/cover.png"),
        1,
        "a kept cover is not fetched again"
    );
}
