//! Collect at catalog scale: a results file far larger than the run's
//! window of jobs in memory, against a host that answers any task, ends
//! with the catalog a reference says, and never held more than its bound.

#![allow(clippy::needless_range_loop)] // jobs are indexes into the keys and the reference

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use batchgen::engine::collect::{self, CollectConfig};
use batchgen::files::catalog::Row;
use batchgen::files::results::Record;
use batchgen::files::state::URGENT;
use batchgen::util::{redact::Secret, units::Rate};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common;

/// Polls per task ID.
type Polls = Arc<Mutex<HashMap<String, u32>>>;

/// A host whose every task is finished: clips `<task>-1` and `<task>-2`.
async fn host() -> (String, Polls) {
    async fn feed(
        State(polls): State<Polls>,
        Query(q): Query<HashMap<String, String>>,
    ) -> axum::Json<serde_json::Value> {
        let task = q.get("workId").cloned().unwrap_or_default();
        *polls.lock().unwrap().entry(task.clone()).or_default() += 1;
        let clip = |n: u32| {
            json!({"id": format!("{task}-{n}"), "status": "complete", "title": format!("Song {task}"),
                   "tags": "lofi", "audio_url": format!("https://cdn.example/{task}-{n}.mp3"),
                   "image_url": "", "duration": 30.0, "model_name": "chirp-v3-5",
                   "created_at": "2026-01-01T00:00:00Z", "extra_message": "", "fail_message": ""})
        };
        axum::Json(json!({"code": 200, "message": "success",
            "data": {"type": "SUCCESS", "request_body": {}, "response_data": [clip(1), clip(2)]}}))
    }
    let polls = Polls::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/api/v2/feed", get(feed))
        .with_state(Arc::clone(&polls));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, polls)
}

fn record(id: &str, task: &str) -> Record {
    Record {
        submitted_at: "2026-01-01T00:00:00Z".into(),
        ..common::submitted(id, 2, task)
    }
}

fn row(key: &str, task: &str, clip: u32, status: &str) -> Row {
    Row {
        key: key.into(),
        task_id: task.into(),
        clip_index: clip,
        clip_id: format!("{task}-{clip}"),
        status: status.into(),
        audio_url: format!("https://cdn.example/{task}-{clip}.mp3"),
        ..Row::default()
    }
}

fn read(path: &Path) -> Vec<Row> {
    csv::Reader::from_path(path)
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collect_far_larger_than_its_window_ends_with_the_reference_catalog() {
    const JOBS: usize = 3 * URGENT;
    const WINDOW: usize = 16;
    let (base, polls) = host().await;
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..JOBS).map(|i| format!("job-{i:05}")).collect();
    let task = |i: usize| format!("t-{}", keys[i]);

    // The results: one row a job, then a run's journal: job 5 submitted
    // again (a new task), job 7 failed on a resend (not a task any more).
    let results = dir.path().join("jobs.results.csv");
    let rows: Vec<Record> = (0..JOBS).map(|i| record(&keys[i], &task(i))).collect();
    batchgen::files::results::write_atomic(&results, &rows).unwrap();
    let mut journal = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    journal.serialize(record(&keys[5], "t-again")).unwrap();
    let mut failed = record(&keys[7], "");
    failed.status = batchgen::files::results::Status::Failed;
    journal.serialize(failed).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&results)
        .unwrap();
    std::io::Write::write_all(&mut file, &journal.into_inner().unwrap()).unwrap();
    drop(file);

    // The catalog a run left: jobs 10..20 finished, job 5's old task, a
    // job no longer in the results.
    let catalog = dir.path().join("jobs.catalog.csv");
    let mut before = csv::Writer::from_path(&catalog).unwrap();
    for r in [
        row(&keys[5], &task(5), 1, "complete"),
        row(&keys[5], &task(5), 2, "text"),
    ] {
        before.serialize(r).unwrap();
    }
    for i in 10..20 {
        for clip in 1..=2 {
            before
                .serialize(row(&keys[i], &task(i), clip, "complete"))
                .unwrap();
        }
    }
    before
        .serialize(row("gone", "t-gone", 1, "failed"))
        .unwrap();
    before.flush().unwrap();
    drop(before);

    let config = CollectConfig {
        provider: Default::default(),
        results: results.clone(),
        catalog: catalog.clone(),
        base_url: url::Url::parse(&base).unwrap(),
        api_key: Secret::new("sk-scale-0123456789abcdef"),
        poll_interval: Duration::from_millis(1),
        poll_rate: Rate::Unlimited,
        poll_concurrency: 8,
        window: WINDOW,
        callbacks: None,
        deadline: Duration::from_secs(300),
        timeout: Duration::from_secs(10),
        download: None,
    };
    let report = collect::collect(config, CancellationToken::new())
        .await
        .unwrap();

    // The reference: every task's two clips, in results order, then the
    // stranger as it was; job 5 with its new task only; job 7 untouched.
    let mut expected = Vec::new();
    for i in 0..JOBS {
        if i == 7 {
            continue;
        }
        let t = if i == 5 {
            "t-again".to_owned()
        } else {
            task(i)
        };
        expected.push((
            keys[i].clone(),
            t.clone(),
            1,
            format!("{t}-1"),
            "complete".to_owned(),
        ));
        expected.push((
            keys[i].clone(),
            t.clone(),
            2,
            format!("{t}-2"),
            "complete".to_owned(),
        ));
    }
    expected.push((
        "gone".into(),
        "t-gone".into(),
        1,
        "t-gone-1".into(),
        "failed".into(),
    ));
    let found: Vec<(String, String, u32, String, String)> = read(&catalog)
        .into_iter()
        .map(|r| {
            (
                r.key.into_string(),
                r.task_id,
                r.clip_index,
                r.clip_id,
                r.status,
            )
        })
        .collect();
    assert_eq!(found.len(), expected.len());
    assert!(found == expected, "the catalog differs from the reference");

    // Job 7 is no task any more; the stranger is kept as a job of its own
    // (its failed task finished, never polled).
    assert_eq!(report.counts.tasks, JOBS - 1 + 1);
    assert_eq!(report.counts.tasks_finished, JOBS - 1 + 1);
    assert_eq!(report.counts.clips_complete, 2 * (JOBS - 1));
    let polls = polls.lock().unwrap();
    for i in 10..20 {
        assert!(!polls.contains_key(&task(i)), "a finished task was polled");
    }
    assert!(
        !polls.contains_key(&task(5)),
        "the old task of job 5 was polled"
    );
    assert_eq!(polls.len(), JOBS - 1 - 10, "every other task polled");
    assert!(polls.values().all(|&n| n == 1), "one poll a finished task");
    // Memory: the window, and the jobs waiting for their commit; never
    // the whole catalog.
    assert!(
        report.peak_jobs_in_memory <= WINDOW + URGENT + 64,
        "{} jobs held at once",
        report.peak_jobs_in_memory
    );
}

/// `kill -9` at moments spread over a collect's life (opening, polling,
/// committing, writing the report), then a rerun: after every kill the
/// store and the report read as a catalog, and the run that finishes leaves exactly the
/// reference catalog, each task polled to its end.
#[tokio::test(flavor = "multi_thread")]
async fn kills_at_any_moment_leave_a_catalog_the_next_run_finishes() {
    const JOBS: usize = 1500;
    let (base, polls) = host().await;
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..JOBS).map(|i| format!("job-{i:05}")).collect();
    let results = dir.path().join("jobs.results.csv");
    let rows: Vec<Record> = keys.iter().map(|k| record(k, &format!("t-{k}"))).collect();
    batchgen::files::results::write_atomic(&results, &rows).unwrap();
    let catalog = dir.path().join("jobs.catalog.csv");
    let run = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_batchgen"));
        c.args([
            "collect",
            results.to_str().unwrap(),
            "--poll-interval",
            "1ms",
        ])
        .args(["--poll-rate", "2000/s", "--window", "64", "-q"])
        .env("BATCHGEN_API_KEY", "sk-scale-0123456789abcdef")
        .env("BATCHGEN_BASE_URL", &base)
        .env_remove("BATCHGEN_PROVIDER")
        .stderr(std::process::Stdio::null());
        c
    };
    for (n, after_ms) in [40u64, 120, 250, 400, 90, 600].into_iter().enumerate() {
        let mut child = run().spawn().unwrap();
        // Spread from opening to writing the report:
        // simulates: a kill -9 at some moment of the run's life.
        std::thread::sleep(Duration::from_millis(after_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The store reads as one, each job with at most its two clips,
        // and the report (if one was written yet) as a whole catalog.
        let store = batchgen::files::state::Snapshot::open_with_catalog(&results, &catalog)
            .unwrap_or_else(|e| panic!("kill {n}: the store does not read: {e}"));
        store
            .each_job(|job| {
                assert!(job.rows.len() <= 2, "kill {n}: {job:?}");
                Ok::<_, batchgen::files::catalog::CatalogError>(())
            })
            .unwrap_or_else(|e| panic!("kill {n}: {e}"));
        batchgen::files::catalog::each_row(&catalog, |_, row| {
            assert!(row.clip_index <= 2, "kill {n}: {row:?}");
        })
        .unwrap_or_else(|e| panic!("kill {n}: the report does not read: {e}"));
    }
    let status = run().status().unwrap();
    assert_eq!(status.code(), Some(0));
    let found: Vec<(String, u32, String)> = read(&catalog)
        .into_iter()
        .map(|r| (r.key.into_string(), r.clip_index, r.status))
        .collect();
    let expected: Vec<(String, u32, String)> = keys
        .iter()
        .flat_map(|k| {
            [
                (k.clone(), 1, "complete".to_owned()),
                (k.clone(), 2, "complete".to_owned()),
            ]
        })
        .collect();
    assert!(
        found == expected,
        "the catalog after the kills differs from the reference"
    );
    // Within one run a task found finished is never polled again: seven
    // runs, at most seven polls (a finish the kill kept off the disk is
    // polled once more by the next run, which costs a poll, not a song).
    let polls = polls.lock().unwrap();
    assert_eq!(polls.len(), JOBS);
    assert!(
        polls.values().all(|&n| n <= 7),
        "a task polled twice in one run"
    );
}
