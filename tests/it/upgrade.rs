//! Upgrades: files the previous release wrote (`tests/fixtures/prev`, made
//! by the binary of commit cf2aa8d as its README says) opened by this one.
//! The promise: nothing sent again, nothing downloaded again, no task ID
//! lost, and the results file read by the damage rules it was written
//! under. Also the store's own promises at the binary's edge: one owner
//! whatever name leads to it, a resend that keeps the first task, a
//! deleted store rebuilt without a request.

use std::path::{Path, PathBuf};
use std::process::Output;

use batchgen::files::results::{self, Status};
use batchgen::files::state::{self, State};
use batchgen::sandbox::{Sandbox, SandboxConfig};

use crate::common::{self, *};

/// A collect of a fixture's results that downloads into its `songs`.
const COLLECT: [&str; 6] = [
    "collect",
    "jobs.results.csv",
    "--download",
    "songs",
    "--poll-interval",
    "100ms",
];

/// A copy of the fixture folder `name` (under `tests/fixtures/prev`, or a
/// path under `tests/fixtures`), to run in.
fn fixture(name: &str) -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let from = if name.contains('/') {
        root.join(name)
    } else {
        root.join("prev").join(name)
    };
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&from, dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs the binary inside `dir` (the fixtures' paths are relative to it)
/// against `sandbox`.
async fn run_in(dir: &Path, sandbox: &Sandbox, args: &[&str]) -> Output {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (url, key) = (sandbox.base_url(), sandbox.key().to_owned());
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("batchgen")
            .unwrap()
            .current_dir(dir)
            .env_remove("BATCHGEN_PROVIDER")
            .env("BATCHGEN_API_KEY", key)
            .env("BATCHGEN_BASE_URL", url)
            .args(args)
            .timeout(std::time::Duration::from_secs(120))
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn statuses(results: &Path) -> Vec<(String, Status, String)> {
    jobs(results)
        .into_iter()
        .map(|r| (r.key.into_string(), r.status, r.task_id))
        .collect()
}

fn bytes_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.path(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_catalog_upgrades_without_a_request_or_a_download() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = fixture("finished");
    let results = dir.path().join("jobs.results.csv");
    let songs = bytes_of(&dir.path().join("songs"));
    let out = run_in(
        dir.path(),
        &sandbox,
        &["jobs.toml", "--out", "jobs.results.csv"],
    )
    .await;
    assert_eq!(
        code(&out),
        1,
        "nothing to do; failed and unknown rows remain: {}",
        stderr(&out)
    );
    assert!(State::exists(&results), "the store was built");
    let want = [
        ("rain", Status::Failed, ""),
        ("surf", Status::Submitted, "gen29s69dj4cs0qyj4dr"),
        ("neon", Status::Submitted, "gen2z8j63d0yr3s1lzo9"),
        ("banned", Status::Submitted, "gen2dmjp3wmia1nzg02q"),
        ("drums", Status::Submitted, "gen26o55r8ebejh61et1"),
        ("night", Status::Unknown, ""),
    ]
    .map(|(k, s, t)| (k.to_owned(), s, t.to_owned()));
    assert_eq!(statuses(&results), want);
    // The report says the same, in the new format.
    let report = common::results(&results);
    assert_eq!(
        report
            .iter()
            .map(|r| (r.key.to_string(), r.status, r.task_id.clone()))
            .collect::<Vec<_>>(),
        want
    );
    let out = run_in(dir.path(), &sandbox, &COLLECT).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = sandbox.stats();
    assert_eq!(
        (stats.requests, stats.feed_requests, stats.audio_fetches),
        (0, 0, 0),
        "no request, no poll, no download"
    );
    assert_eq!(
        bytes_of(&dir.path().join("songs")),
        songs,
        "every song as it was"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_runs_journal_upgrades_with_its_in_flight_job_unknown() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = fixture("journal");
    let results = dir.path().join("jobs.results.csv");
    let out = run_in(
        dir.path(),
        &sandbox,
        &["jobs.toml", "--out", "jobs.results.csv"],
    )
    .await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, 0, "nothing sent again");
    let want = [
        ("one", Status::Submitted, "gen2yyldujye002y2fov"),
        ("two", Status::Submitted, "gen2m7fz1gw1gxwyzh03"),
        ("three", Status::Submitted, "gen2mzqx56n21oqmk7fo"),
        ("four", Status::Submitted, "gen2w8ogrj6ale2js01l"),
        ("five", Status::Submitted, "gen2gi0nt4ph5pyvpww0"),
        ("six", Status::Unknown, ""),
    ]
    .map(|(k, s, t)| (k.to_owned(), s, t.to_owned()));
    assert_eq!(statuses(&results), want);
    // And again: the store, not the file, is read now.
    let out = run_in(
        dir.path(),
        &sandbox,
        &["jobs.toml", "--out", "jobs.results.csv"],
    )
    .await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, 0);
    assert_eq!(statuses(&results), want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_short_results_file_upgrades_with_the_named_job_unknown() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = fixture("damaged");
    let results = dir.path().join("jobs.results.csv");
    let out = run_in(
        dir.path(),
        &sandbox,
        &["jobs.toml", "--out", "jobs.results.csv"],
    )
    .await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        sandbox.stats().requests,
        0,
        "six is never sent without --retry-unknown"
    );
    let jobs = jobs(&results);
    let six = jobs.iter().find(|r| r.key == "six").unwrap();
    assert_eq!(six.status, Status::Unknown);
    assert!(six.error.contains("line 7"), "{}", six.error);
    assert_eq!(
        jobs.iter()
            .filter(|r| r.status == Status::Submitted)
            .count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_with_a_tail_upgrades_and_polls_only_the_unfinished_task() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = fixture("catalog_tail");
    let out = run_in(
        dir.path(),
        &sandbox,
        &[
            "collect",
            "jobs.results.csv",
            "--poll-interval",
            "100ms",
            "--deadline",
            "2s",
        ],
    )
    .await;
    // delta's task is unknown to this fresh sandbox: it is the only one
    // asked about, and the finished ones are not polled.
    let stats = sandbox.stats();
    assert_eq!(stats.requests, 0);
    assert!(stats.feed_requests >= 1, "{}", stderr(&out));
    let catalog = std::fs::read_to_string(dir.path().join("jobs.catalog.csv")).unwrap();
    for finished in [
        "gen2ijtryrft0jh85ryz",
        "gen2yvichb4p7csm8p5l",
        "gen22fusv1yitc76mg21",
    ] {
        assert_eq!(
            catalog
                .lines()
                .filter(|l| l.contains(finished) && l.contains(",complete,"))
                .count(),
            2,
            "{finished}: {catalog}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_store_is_rebuilt_from_the_report_without_a_request() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 5);
    let results = dir.path().join("jobs.results.csv");
    let out = run_bin(&sandbox, &[arg(&manifest), "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = statuses(&results);
    let report = std::fs::read(&results).unwrap();
    remove_state(&results);
    let out = run_bin(&sandbox, &[arg(&manifest), "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(sandbox.stats().requests, 5, "no request the second time");
    assert_eq!(statuses(&results), before);
    assert_eq!(std::fs::read(&results).unwrap(), report);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hard_linked_names_of_one_results_file_are_one_run() {
    let sandbox = common::sandbox(SandboxConfig {
        latency: std::time::Duration::from_millis(50),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 40);
    // A results file of the previous release, every job pending, under
    // two names.
    let first = dir.path().join("a.csv");
    let rows: Vec<_> = (0..40)
        .map(|i| batchgen::files::results::Record {
            key: format!("job-{i}").into(),
            line: 2 + i,
            task_id: String::new(),
            status: Status::Pending,
            attempts: 0,
            http_status: None,
            error: String::new(),
            submitted_at: String::new(),
            fingerprint: String::new(),
        })
        .collect();
    batchgen::files::results::write_atomic(&first, &rows).unwrap();
    let second = dir.path().join("b.csv");
    std::fs::hard_link(&first, &second).unwrap();
    let first_args = [arg(&manifest), "--out", arg(&first), "--rate", "100/s"];
    let store = state::path_for(&first);
    let watch = wait::DirWatch::new(store.parent().unwrap());
    let a = run_bin(&sandbox, &first_args);
    let b = async {
        // The second starts once the first holds its files.
        watch
            .until("the first run's store", || {
                store.exists().then_some(()).ok_or("none yet")
            })
            .await;
        run_bin(
            &sandbox,
            &[arg(&manifest), "--out", arg(&second), "--rate", "100/s"],
        )
        .await
    };
    let (a, b) = tokio::join!(a, b);
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    assert_eq!(code(&b), 75, "{}", stderr(&b));
    let stats = sandbox.stats();
    assert_eq!(stats.requests, 40, "one request per job");
    assert!(stats.accepted_by_fingerprint.values().all(|&n| n == 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resend_keeps_the_first_task_in_the_store_and_the_report() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    // The previous release left job-1 unknown with the task ID a damaged
    // row still showed whole.
    let results = common::write(
        dir.path(),
        "jobs.results.csv",
        "id,line,task_id,status,attempts,http_status,error,submitted_at,fingerprint\n\
         job-0,2,t-first-0,submitted,1,200,,,\n\
         job-1,3,,pending,0,,,,\n\
         job-1,3,t-first-1,submitted,1,200",
    );
    let out = run_bin(
        &sandbox,
        &[arg(&manifest), "--retry-unknown", "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        sandbox.stats().requests,
        1,
        "only the unknown job is sent again"
    );
    let store = State::open_read_only(&results).unwrap();
    let tasks = store.tasks_of("job-1").unwrap();
    assert_eq!(tasks.len(), 2, "{tasks:?}");
    assert_eq!(tasks[0], "t-first-1", "the first, billed task is kept");
    let report = std::fs::read_to_string(&results).unwrap();
    let row = report.lines().find(|l| l.starts_with("job-1,")).unwrap();
    assert!(
        row.contains(&format!(",t-first-1 {},{}", tasks[1], results::FORMAT)),
        "{row}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_from_a_newer_batchgen_is_refused_and_left_alone() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let results = dir.path().join("jobs.results.csv");
    let out = run_bin(&sandbox, &[arg(&manifest), "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let store = state::path_for(&results);
    // As a far newer batchgen would leave it.
    rusqlite::Connection::open(&store)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let before = std::fs::read(&store).unwrap();
    for args in [
        vec![arg(&manifest), "--rate", "unlimited"],
        vec!["status", arg(&results)],
        vec!["collect", arg(&results)],
    ] {
        let out = run_in(dir.path(), &sandbox, &args).await;
        let err = stderr(&out);
        assert_eq!(code(&out), 78, "{args:?}: {err}");
        assert!(
            err.contains("newer batchgen") && err.contains("version 99"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&store).unwrap(), before, "never rewritten");
    assert_eq!(sandbox.stats().requests, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_naming_the_results_or_its_state_file_is_refused() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let out = run_in(
        dir.path(),
        &sandbox,
        &[arg(&manifest), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = std::fs::read(dir.path().join("jobs.results.db")).unwrap();
    for (catalog, what) in [
        ("jobs.results.csv", "is the results file"),
        ("jobs.results.db", "is its state file"),
        ("jobs.results.db-wal", "is its state file's log"),
    ] {
        for command in ["collect", "status"] {
            let out = run_in(
                dir.path(),
                &sandbox,
                &[command, "jobs.results.csv", "--catalog", catalog],
            )
            .await;
            let err = stderr(&out);
            assert_eq!(code(&out), 2, "{command}: {err}");
            assert!(err.contains(what) && !err.contains("move it away"), "{err}");
            if catalog == "jobs.results.csv" {
                assert_eq!(
                    err.lines().next().unwrap(),
                    "batchgen: error: --catalog jobs.results.csv is the results file (jobs.results.csv): \
                     the catalog is a file of its own; leave --catalog out (it defaults to jobs.catalog.csv) \
                     or name another file",
                    "{command}"
                );
            }
        }
    }
    assert!(!dir.path().join("jobs.results.db-wal").exists());
    assert_eq!(
        std::fs::read(dir.path().join("jobs.results.db")).unwrap(),
        before
    );
    assert_eq!(sandbox.stats().feed_requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reads_the_store_while_a_run_writes_it() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 40);
    let results = dir.path().join("jobs.results.csv");
    let run_args = [arg(&manifest), "--rate", "10/s"];
    let run = run_in(dir.path(), &sandbox, &run_args);
    let look = async {
        // Once the run has a few jobs accepted (an event, not a time).
        poll::stats_until(&sandbox, "five jobs accepted", |s| s.accepted >= 5).await;
        let args = ["status", arg(&results), "--json"];
        run_in(dir.path(), &sandbox, &args).await
    };
    let (run, status) = tokio::join!(run, look);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    assert_eq!(code(&status), 0, "{}", stderr(&status));
    let seen: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let submitted = seen["jobs"]["submitted"].as_u64().unwrap();
    assert_eq!(seen["jobs"]["total"], 40, "{seen}");
    assert!(
        (1..40).contains(&submitted),
        "live progress, not the start or the end: {seen}"
    );
}

/// Clips as the catalog report lists them: (key, clip, status, file).
fn catalog_rows(catalog: &Path) -> Vec<(String, u32, String, String)> {
    let mut rows = Vec::new();
    batchgen::files::catalog::each_row(catalog, |_, r| {
        rows.push((r.key.into_string(), r.clip_index, r.status, r.file));
    })
    .unwrap();
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_store_is_rebuilt_with_its_catalog_without_a_poll_or_a_download() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = fixture("finished");
    let results = dir.path().join("jobs.results.csv");
    let catalog = dir.path().join("jobs.catalog.csv");
    let out = run_in(dir.path(), &sandbox, &COLLECT).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let before = catalog_rows(&catalog);
    assert_eq!(before.len(), 8, "{before:?}");
    let mut report = csv::Reader::from_path(&catalog).unwrap();
    let at = report.headers().unwrap().iter().position(|h| h == "format");
    let formats: Vec<String> = report
        .records()
        .map(|r| r.unwrap()[at.expect("a format column")].to_owned())
        .collect();
    assert!(
        formats.len() == 8
            && formats
                .iter()
                .all(|f| f == batchgen::files::catalog::FORMAT),
        "the report is in this release's format: {formats:?}"
    );
    let songs = bytes_of(&dir.path().join("songs"));

    remove_state(&results);
    let out = run_in(dir.path(), &sandbox, &COLLECT).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = sandbox.stats();
    assert_eq!(
        (stats.requests, stats.feed_requests, stats.audio_fetches),
        (0, 0, 0),
        "no request, no poll, no download"
    );
    assert_eq!(catalog_rows(&catalog), before, "the same catalog");
    assert_eq!(bytes_of(&dir.path().join("songs")), songs);

    // Hand edits of the report are not state: the store still knows.
    std::fs::write(&catalog, "key,task_id,clip_index,status,format\n").unwrap();
    let out = run_in(
        dir.path(),
        &sandbox,
        &["status", "jobs.results.csv", "--json"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["clips"]["total"], 8, "{seen}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_status_html_at_once_leave_a_complete_page() {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = fixture("finished");
    let args = ["status", "jobs.results.csv", "--html"];
    let (a, b) = tokio::join!(
        run_in(dir.path(), &sandbox, &args),
        run_in(dir.path(), &sandbox, &args)
    );
    assert_eq!(code(&a), 0, "{}", stderr(&a));
    assert_eq!(code(&b), 0, "{}", stderr(&b));
    let page = std::fs::read_to_string(dir.path().join("jobs.catalog.html")).unwrap();
    for key in ["surf", "neon", "banned", "drums"] {
        assert!(
            page.contains(&format!("\"key\":\"{key}\"")),
            "{key} missing"
        );
    }
    let playlist = std::fs::read_to_string(dir.path().join("jobs.m3u8")).unwrap();
    assert_eq!(
        playlist.lines().filter(|l| l.ends_with(".mp3")).count(),
        6,
        "{playlist}"
    );
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    assert_eq!(sandbox.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_schema_store_upgrades_without_a_request_or_a_download() {
    a_stores_fixture_upgrades_without_a_request_or_a_download("store_v1/finished").await;
}

/// The release before `results/3` (`tests/fixtures/store_v2`): its report
/// named the key's column `id`; the rewrite names it `key` and keeps every
/// task ID.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_schema_store_upgrades_without_a_request_or_a_download() {
    a_stores_fixture_upgrades_without_a_request_or_a_download("store_v2/finished").await;
}

/// The release before the `runs` table (`tests/fixtures/store_v3`): its
/// takes were measured, judged under its manifest's `[quality]` table and
/// picked; the upgrade measures nothing again, judges the same, and keeps
/// the picks the playlist plays.
#[tokio::test(flavor = "multi_thread")]
async fn a_third_schema_store_upgrades_without_measuring_or_judging_again() {
    let fixture_name = "store_v3/finished";
    let takes = |dir: &Path| {
        let conn = rusqlite::Connection::open(dir.join("jobs.results.db")).unwrap();
        let mut stmt = conn
            .prepare(
                "SELECT task_id, clip_id, method, measurement, verdict, reasons, picked FROM takes ORDER BY task_id, clip_id",
            )
            .unwrap();
        stmt.query_map([], |r| {
            Ok(format!(
                "{}|{}|{}|{}|{}|{}|{}",
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?
            ))
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
    };
    let original = fixture(fixture_name);
    let before = takes(original.path());
    assert_eq!(before.len(), 6, "{before:?}");
    let playlist = std::fs::read_to_string(original.path().join("jobs.m3u8")).unwrap();
    drop(original);

    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = fixture(fixture_name);
    let out = run_in(dir.path(), &sandbox, &COLLECT).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("takes 3 kept, 3 rejected"),
        "{}",
        stderr(&out)
    );
    assert_eq!(takes(dir.path()), before, "measured and judged once");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("jobs.m3u8")).unwrap(),
        playlist,
        "the same picks"
    );
    drop(dir);
    a_stores_fixture_upgrades_without_a_request_or_a_download(fixture_name).await;
}

/// A store and its reports as a release wrote them (`fixture`, with the
/// jobs and task IDs of `tests/fixtures/store_v1`'s recipe): a collect and
/// a rerun send nothing, poll nothing, download nothing, and leave the
/// songs and the catalog as they were; the report is rewritten in the
/// current format.
async fn a_stores_fixture_upgrades_without_a_request_or_a_download(fixture_name: &str) {
    let sandbox = common::sandbox(SandboxConfig::default()).await;
    let dir = fixture(fixture_name);
    let results = dir.path().join("jobs.results.csv");
    let catalog = dir.path().join("jobs.catalog.csv");
    let songs = bytes_of(&dir.path().join("songs"));
    let before = catalog_rows(&catalog);
    assert_eq!(before.len(), 8);
    let out = run_in(dir.path(), &sandbox, &COLLECT).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_in(
        dir.path(),
        &sandbox,
        &["jobs.toml", "--out", "jobs.results.csv"],
    )
    .await;
    assert_eq!(
        code(&out),
        1,
        "failed and unknown rows remain: {}",
        stderr(&out)
    );
    let stats = sandbox.stats();
    assert_eq!(
        (stats.requests, stats.feed_requests, stats.audio_fetches),
        (0, 0, 0),
        "no request, no poll, no download"
    );
    assert_eq!(
        bytes_of(&dir.path().join("songs")),
        songs,
        "every song as it was"
    );
    assert_eq!(
        catalog_rows(&catalog),
        before,
        "the same catalog, now a report"
    );
    let store = state::path_for(&results);
    let conn = rusqlite::Connection::open(&store).unwrap();
    let version: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, state::schema::VERSION, "migrated");
    let statuses: Vec<(String, String)> = statuses(&results)
        .into_iter()
        .map(|(k, s, t)| (k, format!("{}:{t}", s.as_str())))
        .collect();
    assert_eq!(
        statuses,
        [
            ("rain", "failed:"),
            ("surf", "submitted:gen29s69dj4cs0qyj4dr"),
            ("neon", "submitted:gen2z8j63d0yr3s1lzo9"),
            ("banned", "submitted:gen2dmjp3wmia1nzg02q"),
            ("drums", "submitted:gen26o55r8ebejh61et1"),
            ("night", "unknown:"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let report = std::fs::read_to_string(&results).unwrap();
    assert!(
        report.starts_with(&format!("{}\n", results::REPORT_COLUMNS.join(","))),
        "the report's header is the current one:\n{report}"
    );
    let rows: Vec<&str> = report.lines().skip(1).collect();
    assert_eq!(rows.len(), 6, "{report}");
    assert!(
        rows.iter()
            .all(|row| row.ends_with(&format!(",{}", results::FORMAT))),
        "every row in the current format:\n{report}"
    );
}
