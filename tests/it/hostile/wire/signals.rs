//! SIGHUP (a closed terminal, a dropped ssh session) sent to the real
//! binary stops `run` and `collect` cleanly, as SIGTERM does: requests in
//! flight finish and are recorded, the rest stay `pending`, exit 129.

use std::time::Duration;

use batchgen::files::results::Status;
use batchgen::sandbox::SandboxConfig;

use super::server::{KEY, serve_slowly, unique_ok};

use crate::common::wait::Watched;
use crate::common::*;

fn spawn(args: &[&str], env: &[(&str, &str)]) -> Watched {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("batchgen"));
    cmd.args(args)
        .env_remove("BATCHGEN_API_KEY")
        .env_remove("BATCHGEN_BASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Watched::spawn(&mut cmd)
}

fn hang_up(child: &Watched) {
    // SAFETY: a plain kill(2) to a child this test started.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    assert_eq!(rc, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_stops_a_run_cleanly() {
    let server = serve_slowly(Duration::from_millis(300), |got, _| unique_ok(got)).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 30);
    let child = spawn(
        &[
            manifest.to_str().unwrap(),
            "--base-url",
            &server.url,
            "--rate",
            "unlimited",
            "-j",
            "2",
        ],
        &[("BATCHGEN_API_KEY", KEY)],
    );
    server
        .until("the run's first two answers", |s| {
            s.count("POST", "/api/v2/generate") >= 2
        })
        .await;
    hang_up(&child);
    let out = child.output().await;
    let err = stderr(&out);
    assert_eq!(code(&out), 129, "{err}");
    assert!(err.contains("stopped by a signal"), "{err}");
    let rows = results(&dir.path().join("jobs.results.csv"));
    let submitted = rows
        .iter()
        .filter(|r| r.status == Status::Submitted)
        .count();
    let pending = rows.iter().filter(|r| r.status == Status::Pending).count();
    assert_eq!(
        submitted,
        server.count("POST", "/api/v2/generate"),
        "every request the server answered is recorded"
    );
    assert!(submitted >= 2 && pending > 0, "{rows:?}");
    assert_eq!(
        submitted + pending,
        30,
        "nothing unknown or failed: {rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_stops_a_collect_cleanly() {
    let sb = sandbox(SandboxConfig {
        stage_time: Duration::from_secs(600),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let out = run_bin(&sb, &[manifest.to_str().unwrap(), "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let results = dir.path().join("jobs.results.csv");
    let base = sb.base_url();
    let mut child = spawn(
        &[
            "collect",
            results.to_str().unwrap(),
            "--base-url",
            &base,
            "--poll-interval",
            "100ms",
            "--poll-rate",
            "unlimited",
            "-v",
        ],
        &[("BATCHGEN_API_KEY", sb.key())],
    );
    // Under way: the catalog is open and the polls begin.
    child
        .line("the collect under way", |l| l.contains("collecting into"))
        .await;
    hang_up(&child);
    let out = child.output().await;
    let err = stderr(&out);
    assert_eq!(code(&out), 129, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains("0/2 tasks finished"),
        "the summary is printed: {err}"
    );
    assert!(dir.path().join("jobs.catalog.csv").exists());
    // The catalog's lock was let go: a second collect is not refused.
    let results = results.to_str().unwrap();
    let args = ["collect", results, "--base-url", &base, "--deadline", "1s"];
    let again = run_with_env(
        args.map(String::from).to_vec(),
        vec![("BATCHGEN_API_KEY".into(), sb.key().into())],
    )
    .await;
    assert!(!stderr(&again).contains("in use"), "{}", stderr(&again));
    assert_ne!(code(&again), 75);
}
