//! `batchgen status`: its counts, reasons and next steps match the files
//! it reads, on screen and in `--json`; a journal's repeated rows count
//! once (the latest), a damaged results file is read by the damage rules,
//! and a missing one is exit 66.

use std::path::Path;

use batchgen::files::catalog::Row;
use batchgen::files::results::{Record, Status};
use serde_json::Value;

use crate::common::{arg, code, run_with_env, stderr, submitted};

fn row(id: &str, status: Status, error: &str) -> Record {
    Record {
        status,
        error: error.into(),
        task_id: if status == Status::Submitted {
            format!("task-{id}")
        } else {
            String::new()
        },
        ..submitted(id, 2, "")
    }
}

fn clip(key: &str, index: u32, status: &str, file: &str, bytes: Option<u64>, error: &str) -> Row {
    Row {
        key: key.into(),
        task_id: format!("task-{key}"),
        clip_index: index,
        clip_id: format!("{key}-clip-{index}"),
        title: "t".into(),
        style: "s".into(),
        model: "chirp-v3-5".into(),
        status: status.into(),
        duration: Some(10.0),
        created_at: String::new(),
        audio_url: "https://cdn.example/x.mp3".into(),
        image_url: String::new(),
        file: file.into(),
        file_bytes: bytes,
        image_file: String::new(),
        error: error.into(),
        ..Row::default()
    }
}

/// A results file with every status (and a journal row that supersedes an
/// earlier one) and a catalog with every clip state.
fn files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let results = dir.join("jobs.results.csv");
    let mut rows = vec![
        row("a", Status::Submitted, ""),
        row("b", Status::Submitted, ""),
        row("c", Status::Submitted, ""),
        row("d", Status::Submitted, ""),
        row("e", Status::Failed, "HTTP 400: Topic too long."),
        row("f", Status::Failed, "HTTP 400: Topic too long."),
        row("g", Status::Unknown, "no answer before the timeout"),
        row("h", Status::Pending, ""),
    ];
    // The journal: h was pending, then sent and accepted.
    rows.push(row("h", Status::Submitted, ""));
    batchgen::files::results::write_atomic(&results, &rows).unwrap();

    let song = dir.join("a-1.mp3");
    std::fs::write(&song, vec![7u8; 1000]).unwrap();
    let gone = dir.join("b-1.mp3");
    let song = song.to_str().unwrap();
    let catalog = dir.join("jobs.catalog.csv");
    let mut w = csv::Writer::from_path(&catalog).unwrap();
    for r in [
        // a: finished, one clip on disk, one not downloaded
        clip("a", 1, "complete", song, Some(1000), ""),
        clip("a", 2, "complete", "", None, ""),
        // b: finished, its file gone; the other failed its download
        clip("b", 1, "complete", gone.to_str().unwrap(), Some(1000), ""),
        clip("b", 2, "complete", "", None, "HTTP 403 from the CDN"),
        // c: moderated, both failed
        clip(
            "c",
            1,
            "failed",
            "",
            None,
            "Moderation: contains a banned word",
        ),
        clip(
            "c",
            2,
            "failed",
            "",
            None,
            "Moderation: contains a banned word",
        ),
        // d: still running (one streaming, one text)
        clip("d", 1, "first", "", None, ""),
        clip("d", 2, "text", "", None, ""),
    ] {
        w.serialize(r).unwrap();
    }
    w.flush().unwrap();
    (results, catalog)
}

#[tokio::test]
async fn status_counts_what_the_files_say() {
    let dir = tempfile::tempdir().unwrap();
    let (results, _) = files(dir.path());
    let out = run_with_env(
        vec!["status".into(), arg(&results).into(), "--json".into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["jobs"],
        serde_json::json!({"total": 8, "pending": 0, "submitted": 5, "failed": 2, "unknown": 1}),
        "h counts once, as its latest row"
    );
    assert_eq!(
        json["tasks"],
        serde_json::json!({"submitted": 5, "finished": 3, "running": 1, "not_collected": 1})
    );
    assert_eq!(
        json["clips"],
        serde_json::json!({"total": 8, "new": 0, "text": 1, "first": 1, "complete": 4, "failed": 2})
    );
    assert_eq!(json["downloads"], serde_json::json!({"done": 1, "left": 3}));
    assert_eq!(
        json["job_failures"],
        serde_json::json!([
            {"reason": "HTTP 400: Topic too long.", "count": 2},
            {"reason": "no answer before the timeout", "count": 1},
        ])
    );
    assert_eq!(
        json["clip_failures"],
        serde_json::json!([
            {"reason": "Moderation: contains a banned word", "count": 2},
            {"reason": "download: HTTP 403 from the CDN", "count": 1},
        ])
    );
    let next: Vec<&str> = json["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["command"].as_str().unwrap())
        .collect();
    let r = arg(&results);
    assert_eq!(
        next,
        [
            format!("batchgen collect {r}"),
            format!("batchgen collect {r} --download DIR"),
            "batchgen MANIFEST --retry-failed".into(),
            "batchgen MANIFEST --retry-unknown".into(),
        ]
    );

    // The screen says the same.
    let out = run_with_env(vec!["status".into(), arg(&results).into()], vec![]).await;
    assert_eq!(code(&out), 0);
    let screen = String::from_utf8(out.stdout).unwrap();
    for line in [
        "8 jobs · 5 submitted · 2 failed · 1 unknown · 0 pending",
        "tasks:     3 finished · 1 running · 1 not collected",
        "clips:     8 · 4 complete · 2 failed · 2 in progress (new 0, text 1, first 1)",
        "downloads: 1 done · 3 left",
        "     2  HTTP 400: Topic too long.",
        "     2  Moderation: contains a banned word",
        "--retry-unknown    # 1 jobs may or may not have been created",
    ] {
        assert!(screen.contains(line), "{line:?} in\n{screen}");
    }
}

#[tokio::test]
async fn status_of_damaged_missing_and_uncollected_files() {
    let dir = tempfile::tempdir().unwrap();
    let (results, catalog) = files(dir.path());
    std::fs::remove_file(&catalog).unwrap();
    // A torn last line, as a kill mid-append leaves it.
    let mut text = std::fs::read_to_string(&results).unwrap();
    text.push_str("x,9,task-x,subm");
    std::fs::write(&results, text).unwrap();
    let out = run_with_env(
        vec!["status".into(), arg(&results).into(), "--json".into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["catalog_found"], false);
    assert_eq!(json["tasks"]["not_collected"], 5);
    assert_eq!(
        json["jobs"]["submitted"], 5,
        "the torn row is not a submitted job"
    );

    let out = run_with_env(
        vec!["status".into(), arg(&dir.path().join("nope.csv")).into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 66, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no run has written it"),
        "{}",
        stderr(&out)
    );

    let out = run_with_env(
        vec!["status".into(), arg(&dir.path().join("jobs.toml")).into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 66, "{}", stderr(&out));
}

/// A results file far larger than the reasons table: distinct reasons are
/// capped, the counts stay exact.
#[tokio::test]
async fn many_distinct_reasons_are_capped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("jobs.results.csv");
    let rows: Vec<Record> = (0..5000)
        .map(|i| {
            row(
                &format!("j{i}"),
                Status::Failed,
                &format!("HTTP 400: bad field {i}"),
            )
        })
        .collect();
    batchgen::files::results::write_atomic(&results, &rows).unwrap();
    let out = run_with_env(
        vec!["status".into(), arg(&results).into(), "--json".into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["jobs"]["failed"], 5000);
    let reasons = json["job_failures"].as_array().unwrap();
    assert_eq!(reasons.len(), batchgen::files::status::MAX_REASONS + 1);
    let total: u64 = reasons.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 5000);
    assert_eq!(reasons[0]["reason"], "other reasons");
}

/// The provider deletes its files 14–15 days after a task: `status` and
/// `collect` warn about jobs sent more than 10 days ago whose songs are not
/// on disk (never collected, or a clip neither failed nor downloaded), and
/// only about those.
#[tokio::test]
async fn songs_about_to_expire_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let days_ago = |d: i64| {
        (chrono::Utc::now() - chrono::TimeDelta::days(d))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let old = days_ago(12);
    let at = |id: &str, when: &str| Record {
        submitted_at: when.to_owned(),
        ..row(id, Status::Submitted, "")
    };
    let results = dir.path().join("jobs.results.csv");
    let rows = [
        at("uncollected", &old),
        at("on-disk", &days_ago(13)),
        at("failed", &days_ago(13)),
        at("not-downloaded", &days_ago(11)),
        at("recent", &days_ago(1)),
    ];
    batchgen::files::results::write_atomic(&results, &rows).unwrap();
    let song = dir.path().join("on-disk.mp3");
    std::fs::write(&song, vec![7u8; 10]).unwrap();
    let song = song.to_str().unwrap();
    let mut w = csv::Writer::from_path(dir.path().join("jobs.catalog.csv")).unwrap();
    for r in [
        clip("on-disk", 1, "complete", song, Some(10), ""),
        clip("on-disk", 2, "failed", "", None, "moderated"),
        clip("failed", 1, "failed", "", None, "moderated"),
        clip("failed", 2, "failed", "", None, "moderated"),
        clip("not-downloaded", 1, "complete", "", None, ""),
        clip("not-downloaded", 2, "complete", "", None, ""),
    ] {
        w.serialize(r).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let out = run_with_env(
        vec!["status".into(), arg(&results).into(), "--json".into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["expiring"],
        serde_json::json!({"jobs": 2, "oldest": old}),
        "uncollected and not-downloaded; not the one on disk, the failed one or the recent one"
    );
    let out = run_with_env(vec!["status".into(), arg(&results).into()], vec![]).await;
    let screen = String::from_utf8(out.stdout).unwrap();
    assert!(
        screen.contains("warning:   2 jobs were sent more than 10 days ago"),
        "{screen}"
    );
}
