//! `batchgen receive`, in-process on `127.0.0.1:0`: the callback path gives
//! the same catalog as polling, and hostile requests get 413/400/404.

use std::path::Path;
use std::time::Duration;

use batchgen::engine::collect::receive::{ReceiveConfig, Receiver};
use batchgen::files::catalog::Row;
use batchgen::util::redact::Secret;
use reqwest::StatusCode;
use serde_json::json;
use url::Url;

use super::{FAST, manifest, sandbox, submit};
use crate::common::wait::DirWatch;
use crate::common::{callback_counts, catalog, run_env};

const SECRET: &str = "s3cret-Callback";

async fn start(dir: &Path, catalog: &str) -> Receiver {
    Receiver::start(ReceiveConfig {
        webhook_key: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        provider: Default::default(),
        secret: Secret::new(SECRET),
        results: dir.join("jobs.results.csv"),
        catalog: dir.join(catalog),
    })
    .await
    .unwrap()
}

/// The rows without what only one path knows: local files.
fn comparable(rows: Vec<Row>) -> Vec<Row> {
    rows.into_iter()
        .map(|r| Row {
            file: String::new(),
            file_bytes: None,
            image_file: String::new(),
            ..r
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_build_the_same_catalog_as_polling() {
    let sb = sandbox().await;
    let tmp = tempfile::tempdir().unwrap();
    let watch = DirWatch::new(tmp.path());
    let receiver = start(tmp.path(), "callback.catalog.csv").await;
    let base = Url::parse(&format!("http://{}", receiver.addr())).unwrap();
    let jobs = 40;
    let manifest = manifest(tmp.path(), jobs, |key| {
        Some(batchgen::settings::callback_url(&base, SECRET, key).to_string())
    });
    submit(&sb, &manifest).await;

    // Every clip final (failed or complete) in the receiver's catalog,
    // looked at each time the receiver writes it.
    let path = tmp.path().join("callback.catalog.csv");
    watch
        .until("every clip final by callback", || {
            let rows = if path.exists() {
                catalog(&path)
            } else {
                Vec::new()
            };
            let done = rows
                .iter()
                .filter(|r| r.status == "complete" || r.status == "failed")
                .count();
            if done == 2 * jobs {
                Ok(())
            } else {
                Err(format!("{done} final; {}", callback_counts(&sb)))
            }
        })
        .await;
    receiver.shutdown().await.unwrap();
    let stats = sb.stats();
    assert_eq!(stats.callbacks_failed, 0);
    assert!(stats.callbacks_sent >= 2 * jobs as u64, "{stats:?}");

    // The same tasks polled from a store that knows no clip: rebuilt from
    // the results report alone, with a catalog of its own.
    let polled = tmp.path().join("polled.catalog.csv");
    let results = tmp.path().join("jobs.results.csv");
    crate::common::remove_state(&results);
    let mut args = vec![
        "collect",
        results.to_str().unwrap(),
        "--catalog",
        polled.to_str().unwrap(),
    ];
    args.extend(FAST);
    let out = run_env(&sb, &args).await;
    assert_eq!(
        crate::common::code(&out),
        0,
        "{}",
        crate::common::stderr(&out)
    );

    let by_callback = comparable(catalog(&path));
    assert_eq!(by_callback.len(), 2 * jobs);
    assert_eq!(by_callback, comparable(catalog(&polled)));
}

#[tokio::test]
async fn hostile_requests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    crate::common::submitted_results(tmp.path(), &[("job-1", "task-1")]);
    let receiver = start(tmp.path(), "jobs.catalog.csv").await;
    let base = format!("http://{}", receiver.addr());
    let http = reqwest::Client::new();
    let clip = json!([{"id": "c1", "status": "complete", "title": "T", "tags": "lofi",
                       "audio_url": "https://cdn.example/c1.mp3", "duration": "12.5",
                       "created_at": 1_735_769_431_665_u64, "fail_message": ""}]);
    let post = |path: String, body: Vec<u8>| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move { http.post(url).body(body).send().await.unwrap().status() }
    };
    let good = clip.to_string().into_bytes();
    let ok = format!("/callback/{SECRET}/job-1");
    let cases: Vec<(&str, String, Vec<u8>, StatusCode)> = vec![
        (
            "oversize",
            ok.clone(),
            vec![b' '; 2 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "bad JSON",
            ok.clone(),
            b"{\"id\":".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong shape",
            ok.clone(),
            b"{\"hello\":1}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong secret",
            "/callback/guess/job-1".into(),
            good.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "wrong secret, oversize",
            "/callback/guess/job-1".into(),
            vec![b' '; 2 * 1024 * 1024],
            StatusCode::NOT_FOUND,
        ),
        (
            "wrong query secret",
            "/callback/job-1?secret=guess".into(),
            good.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "no secret",
            "/callback/job-1".into(),
            good.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "unknown job",
            format!("/callback/{SECRET}/job-9"),
            good.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "other path",
            "/".into(),
            good.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "query secret",
            format!("/callback/job-1?secret={SECRET}"),
            good.clone(),
            StatusCode::OK,
        ),
        ("path secret", ok.clone(), good.clone(), StatusCode::OK),
    ];
    for (name, path, body, want) in cases {
        assert_eq!(post(path, body).await, want, "{name}");
    }
    let answer: serde_json::Value = http
        .post(format!("{base}{ok}"))
        .body(good)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer, json!({"ok": true}));
    receiver.shutdown().await.unwrap();
    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (
            row.key.as_str(),
            row.task_id.as_str(),
            row.clip_index,
            row.clip_id.as_str()
        ),
        ("job-1", "task-1", 1, "c1")
    );
    assert_eq!(
        (row.status.as_str(), row.duration),
        ("complete", Some(12.5))
    );
    assert_eq!(row.created_at, "2025-01-01T22:10:31.665Z");
}

/// The documented callback sequence, from the conformance fixtures: text
/// (streaming URL), first audio (streaming), then the final stage as
/// `first` + "All generated successfully.", then a late first-audio
/// callback. Until the final stage no row is complete and no streaming URL
/// is recorded; after it, a late earlier stage changes nothing.
#[tokio::test]
async fn callbacks_follow_the_completion_rule() {
    let tmp = tempfile::tempdir().unwrap();
    crate::common::submitted_results(tmp.path(), &[("job-1", "task-1")]);
    let fixture = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/api")
                .join(name),
        )
        .unwrap()
    };
    let http = reqwest::Client::new();
    let deliver = |receiver: &Receiver, names: &[&str]| {
        let url = format!("http://{}/callback/{SECRET}/job-1", receiver.addr());
        let bodies: Vec<Vec<u8>> = names.iter().map(|n| fixture(n)).collect();
        let http = http.clone();
        async move {
            for body in bodies {
                let status = http.post(&url).body(body).send().await.unwrap().status();
                assert_eq!(status, StatusCode::OK);
            }
        }
    };
    let stages = |rows: &[Row]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| (r.status.clone(), r.audio_url.clone()))
            .collect()
    };

    let receiver = start(tmp.path(), "jobs.catalog.csv").await;
    deliver(&receiver, &["callback-text.json", "callback-first.json"]).await;
    receiver.shutdown().await.unwrap();
    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    let pending = vec![("first".to_owned(), String::new()); 2];
    assert_eq!(stages(&rows), pending, "streaming is not final");

    let receiver = start(tmp.path(), "jobs.catalog.csv").await;
    deliver(
        &receiver,
        &["callback-complete.json", "callback-first.json"],
    )
    .await;
    receiver.shutdown().await.unwrap();
    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    let done: Vec<(String, String)> = [
        "7c0e5d1a-3f6b-4d8e-9a2c-1b5f0e7d3c42",
        "e91b2f40-8d3a-4c6e-b7f1-52a09c8d6e13",
    ]
    .iter()
    .map(|id| {
        (
            "complete".to_owned(),
            format!("https://cdn1.suno.ai/{id}.mp3"),
        )
    })
    .collect();
    assert_eq!(stages(&rows), done);
    assert_eq!(
        rows.iter().map(|r| r.duration).collect::<Vec<_>>(),
        [Some(98.4), Some(109.8)]
    );
    assert!(
        rows.iter()
            .all(|r| r.created_at == "2025-01-01T22:10:31.665Z")
    );
}

/// A callback whose body is still arriving when the receiver is asked to
/// stop is answered, and so it must be in the catalog the shutdown writes
/// last: the final write comes after the last connection, not beside it.
#[tokio::test(flavor = "multi_thread")]
async fn a_callback_in_flight_at_shutdown_reaches_the_catalog() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().unwrap();
    crate::common::submitted_results(tmp.path(), &[("job-1", "task-1")]);
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/api/callback-complete.json"),
    )
    .unwrap();
    let receiver = start(tmp.path(), "jobs.catalog.csv").await;
    let mut stream = tokio::net::TcpStream::connect(receiver.addr())
        .await
        .unwrap();
    // `Expect: 100-continue`: the server says `100 Continue` when the
    // handler starts reading the body, the event that it is under way.
    let head = format!(
        "POST /callback/{SECRET}/job-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reading = Vec::new();
    while !reading.ends_with(b"\r\n\r\n") {
        reading.push(stream.read_u8().await.unwrap());
    }
    let reading = String::from_utf8_lossy(&reading);
    assert!(reading.starts_with("HTTP/1.1 100"), "{reading}");
    stream.write_all(&body[..10]).await.unwrap();
    // The shutdown's first step is to stop accepting and tell the open
    // connections: done by the time its future is first polled.
    let mut stopping = Box::pin(receiver.shutdown());
    let asked = std::future::poll_fn(|cx| std::task::Poll::Ready(stopping.as_mut().poll(cx))).await;
    assert!(asked.is_pending(), "the shutdown waits for the callback");
    stream.write_all(&body[10..]).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    stopping.await.unwrap();
    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r.status == "complete"), "{rows:?}");
}

/// A secret `collect --listen` accepts (16 characters at least).
const LONG_SECRET: &str = "s3cret-Callback-for-collect";

/// `collect --listen`: the callbacks a run asked for arrive at the
/// collect run itself, fill the same catalog, and take their tasks out of
/// the poll schedule: the tasks finish without the polls a scheduler that
/// knew nothing of them would have spent.
#[tokio::test(flavor = "multi_thread")]
async fn collect_with_listen_takes_callbacks_instead_of_polls() {
    let sb = crate::common::sandbox(batchgen::sandbox::SandboxConfig {
        stage_time: Duration::from_millis(400),
        ..batchgen::sandbox::SandboxConfig::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let jobs = 12;
    let manifest = manifest(tmp.path(), jobs, |key| {
        Some(batchgen::settings::callback_url(&base, LONG_SECRET, key).to_string())
    });
    let results = submit(&sb, &manifest).await;
    let listen = format!("127.0.0.1:{port}");
    let out = crate::common::run_with_env(
        ["collect", results.to_str().unwrap(), "--listen", &listen]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        vec![
            ("BATCHGEN_API_KEY".into(), sb.key().into()),
            ("BATCHGEN_BASE_URL".into(), sb.base_url()),
            ("BATCHGEN_CALLBACK_SECRET".into(), LONG_SECRET.into()),
        ],
    )
    .await;
    let stderr = crate::common::stderr(&out);
    assert_eq!(crate::common::code(&out), 0, "{stderr}");
    assert!(stderr.contains("taking callbacks at"), "{stderr}");
    crate::common::no_secret(&out, LONG_SECRET);

    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    assert_eq!(rows.len(), 2 * jobs);
    assert!(
        rows.iter()
            .all(|r| r.status == "complete" || r.status == "failed"),
        "{rows:?}"
    );
    let stats = sb.stats();
    assert!(stats.callbacks_sent >= jobs as u64, "{stats:?}");
    // Before any estimate only the oldest few tasks are polled (at the
    // default 5 s interval); the rest finished by callback, unpolled.
    assert!(stderr.contains("finished by callback"), "{stderr}");
    assert!(
        stats.feed_requests < jobs as u64,
        "{} polls for {jobs} tasks that callbacks finished",
        stats.feed_requests
    );
}
