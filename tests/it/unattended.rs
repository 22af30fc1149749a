//! Unattended use: reruns, quotas, locks, signals, kill -9, a dead API, a
//! full disk. Each test drives the real binary against the sandbox.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use batchgen::files::results::{self, Status};
use batchgen::sandbox::{Sandbox, SandboxConfig};

use crate::common::poll::stats_until;
use crate::common::wait::Watched;
use crate::common::{self, *};

/// Starts the binary without waiting, for tests that signal or kill it;
/// its stderr is read as it comes.
fn spawn(sandbox: &Sandbox, args: &[&str]) -> Watched {
    Watched::spawn(
        Command::new(assert_cmd::cargo::cargo_bin("batchgen"))
            .args(["--base-url", &sandbox.base_url()])
            .args(args)
            .env("BATCHGEN_API_KEY", sandbox.key())
            .env_remove("BATCHGEN_BASE_URL"),
    )
}

fn signal(child: &Watched, name: &str) {
    let ok = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Waits until the sandbox has seen at least `n` requests: the run is
/// under way, whatever the machine's load did to its start-up.
async fn until_requests(sandbox: &Sandbox, n: u64) {
    let what = format!("the run's first {n} requests");
    stats_until(sandbox, &what, |s| s.requests >= n).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn max_jobs_is_a_quota_and_reruns_continue() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 10);
    let results_path = dir.path().join("jobs.results.csv");
    for (run, submitted) in [(1, 4), (2, 8), (3, 10)] {
        let out = run_bin(
            &sandbox,
            &[arg(&manifest), "--rate", "unlimited", "--max-jobs", "4"],
        )
        .await;
        assert_eq!(code(&out), 0, "run {run}: {}", stderr(&out));
        let rows = results(&results_path);
        let done = rows
            .iter()
            .filter(|r| r.status == Status::Submitted)
            .count();
        assert_eq!(done, submitted, "run {run}");
        assert_eq!(rows.len() - done, 10 - submitted, "the rest stay pending");
    }
    assert_eq!(sandbox.stats().accepted, 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_rows_are_retried_only_when_asked() {
    let broken = sandbox(SandboxConfig {
        fail_500: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 3);
    let args = [
        arg(&manifest),
        "--rate",
        "unlimited",
        "--max-attempts",
        "2",
        "--give-up-after",
        "100",
    ];
    let out = run_bin(&broken, &args).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let rows = results(&dir.path().join("jobs.results.csv"));
    assert!(
        rows.iter()
            .all(|r| r.status == Status::Failed && r.attempts == 2)
    );
    assert!(
        rows[0]
            .error
            .starts_with("gave up after 2 attempts: HTTP 500"),
        "{}",
        rows[0].error
    );

    let healthy = sandbox(SandboxConfig::default()).await;
    let again = run_bin(&healthy, &args).await;
    assert_eq!(
        code(&again),
        1,
        "failed rows stay failed without --retry-failed"
    );
    assert_eq!(healthy.stats().requests, 0);
    let mut retry = args.to_vec();
    retry.push("--retry-failed");
    let fixed = run_bin(&healthy, &retry).await;
    assert_eq!(code(&fixed), 0, "{}", stderr(&fixed));
    assert_eq!(healthy.stats().accepted, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_on_the_same_results_file_exits_75() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 3);
    let results_path = dir.path().join("jobs.results.csv");
    let held = results::Lock::acquire(&results_path).unwrap();
    let out = run_bin(&sandbox, &[arg(&manifest)]).await;
    assert_eq!(code(&out), 75, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("jobs.results.csv") && err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert_eq!(sandbox.stats().requests, 0);
    drop(held);
    let out = run_bin(&sandbox, &[arg(&manifest), "--rate", "unlimited"]).await;
    assert_eq!(
        code(&out),
        0,
        "the lock goes with its holder: {}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_api_trips_the_circuit_breaker() {
    let sandbox = sandbox(SandboxConfig {
        fail_503: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 50);
    let out = run_bin(
        &sandbox,
        &[
            arg(&manifest),
            "--rate",
            "unlimited",
            "-j",
            "1",
            "--max-attempts",
            "2",
            "--give-up-after",
            "3",
        ],
    )
    .await;
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3 rows in a row failed"),
        "{}",
        stderr(&out)
    );
    let rows = results(&dir.path().join("jobs.results.csv"));
    let count = |s| rows.iter().filter(|r| r.status == s).count();
    assert_eq!(count(Status::Failed), 3);
    assert_eq!(count(Status::Pending), 47, "the rest wait for the next run");
    assert_eq!(sandbox.stats().requests, 6);

    // Nothing listening at all: connection refused is retried, then 69.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let args = [arg(&manifest), "--rate", "unlimited", "--max-attempts", "2"];
    let out = run_at(&url, "k", &args).await;
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not connect"),
        "{}",
        stderr(&out)
    );
    // Nothing left the machine, so nothing was billed: those rows stay
    // `pending` (not `failed`), and the next run sends them without
    // --retry-failed.
    let rows = results(&dir.path().join("jobs.results.csv"));
    let never_sent: Vec<_> = rows
        .iter()
        .filter(|r| {
            r.error
                .starts_with("never sent: none of 2 attempts reached the host")
        })
        .collect();
    assert!(!never_sent.is_empty(), "{rows:?}");
    assert!(never_sent.iter().all(|r| r.status == Status::Pending));
    let failed = rows.iter().filter(|r| r.status == Status::Failed).count();
    assert_eq!(failed, 3, "the earlier run's failed rows only");
    let up = common::sandbox(SandboxConfig::default()).await;
    let out = run_bin(&up, &[arg(&manifest), "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 1, "the 3 failed rows remain: {}", stderr(&out));
    assert_eq!(up.stats().requests, 47, "every pending row sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_and_sigterm_finish_in_flight_requests_then_stop() {
    for (name, expected) in [("INT", 130), ("TERM", 143)] {
        let sandbox = sandbox(SandboxConfig {
            latency: Duration::from_millis(300),
            ..SandboxConfig::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = csv_manifest(dir.path(), 100);
        let child = spawn(&sandbox, &[arg(&manifest), "--rate", "10/s", "-j", "4"]);
        until_requests(&sandbox, 5).await;
        signal(&child, name);
        let out = child.output().await;
        assert_eq!(code(&out), expected, "SIG{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("stopped by a signal"),
            "{}",
            stderr(&out)
        );
        let rows = results(&dir.path().join("jobs.results.csv"));
        assert_eq!(rows.len(), 100, "compacted");
        let submitted = rows
            .iter()
            .filter(|r| r.status == Status::Submitted)
            .count();
        assert!(submitted > 0 && submitted < 100);
        assert!(
            rows.iter()
                .all(|r| matches!(r.status, Status::Submitted | Status::Pending)),
            "in-flight requests were allowed to finish"
        );
        assert_eq!(sandbox.stats().accepted, submitted as u64);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_ctrl_c_exits_at_once_and_leaves_a_consistent_file() {
    let sandbox = sandbox(SandboxConfig {
        latency: Duration::from_secs(3),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 20);
    let mut child = spawn(
        &sandbox,
        &[arg(&manifest), "--rate", "unlimited", "-j", "4"],
    );
    until_requests(&sandbox, 4).await;
    signal(&child, "INT");
    // The second Ctrl-C only once the first was taken: two signals sent
    // at once may arrive as one.
    child
        .line("the first Ctrl-C taken", |l| {
            l.contains("stopping: waiting")
        })
        .await;
    signal(&child, "INT");
    let out = child.output().await;
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    // The process exited at once: the state holds what the report (written
    // every few seconds) may not have caught up with yet.
    let rows = jobs(&dir.path().join("jobs.results.csv"));
    let unknown = rows.iter().filter(|r| r.status == Status::Unknown).count();
    assert_eq!(
        unknown, 4,
        "the four requests in flight are unknown, not lost"
    );
}

/// kill -9 at many moments, then a clean rerun: no accepted job is lost,
/// none is accepted twice, and the results file always parses.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_moments_never_loses_or_duplicates_a_job() {
    let sandbox = sandbox(SandboxConfig {
        latency: Duration::from_millis(15),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    // More rows than the kills can get through, so every run is cut short.
    let manifest = csv_manifest(dir.path(), 1000);
    let results_path = dir.path().join("jobs.results.csv");
    let args = [arg(&manifest), "--rate", "200/s", "-j", "4"];
    let kills = 12;
    for i in 0..kills {
        let baseline = sandbox.stats().requests;
        let child = spawn(&sandbox, &args);
        if i % 2 == 0 {
            // Mid-run: after the run has sent a few requests, whatever the
            // machine's load did to start-up.
            until_requests(&sandbox, baseline + 1 + i % 7).await;
        } else {
            // Anywhere, start-up and the first report included:
            // simulates: a kill at any moment, 20 to 270 ms in.
            tokio::time::sleep(Duration::from_millis(20 + (i * 37 % 11) * 25)).await;
        }
        signal(&child, "KILL");
        let out = child.output().await;
        assert!(out.status.code().is_none(), "killed, run {i}");
        results::read(&results_path).expect("the results file parses after kill -9");
    }
    let before = sandbox.stats().accepted;
    assert!(
        before > 20 && before < 1000,
        "the kills landed mid-run: {before} accepted"
    );
    let out = run_bin(
        &sandbox,
        &[arg(&manifest), "--rate", "unlimited", "-j", "4"],
    )
    .await;
    assert!(matches!(code(&out), 0 | 1), "{}", stderr(&out));

    let rows = results(&results_path);
    assert_eq!(rows.len(), 1000);
    let stats = sandbox.stats();
    assert!(
        stats.accepted_by_fingerprint.values().all(|&n| n == 1),
        "no job accepted twice"
    );
    let accepted: HashMap<&str, &str> = stats
        .tasks
        .iter()
        .map(|t| (t.fingerprint.as_str(), t.task_id.as_str()))
        .collect();
    let mut unknown = 0;
    for row in &rows {
        match row.status {
            Status::Submitted => assert_eq!(
                accepted.get(row.fingerprint.as_str()),
                Some(&row.task_id.as_str())
            ),
            Status::Unknown => unknown += 1,
            other => panic!("row {} is {other:?} after a full rerun", row.key),
        }
    }
    assert!(
        unknown <= 4 * kills as usize,
        "at most the in-flight rows per kill: {unknown}"
    );
    let recorded = rows
        .iter()
        .filter(|r| r.status == Status::Submitted)
        .count();
    assert!(
        recorded + unknown >= stats.accepted as usize,
        "every accepted job is recorded or unknown"
    );
}

/// A state store that stops accepting writes mid-run (RLIMIT_FSIZE stands
/// in for a full disk): submitting stops at once, exit 73, and every task
/// the API accepted is either in the store or printed.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_stops_submitting_and_loses_no_task() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 200);
    let bin = assert_cmd::cargo::cargo_bin("batchgen");
    // The store and its write-ahead log pass 1 MB a few dozen commits
    // into the run (a commit adds a page or two to the log).
    let script = format!(
        "ulimit -f 1024 && exec {} --base-url {} {} --rate unlimited -j 2",
        bin.display(),
        sandbox.base_url(),
        manifest.display()
    );
    let key = sandbox.key().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-c", &script])
            .env("BATCHGEN_API_KEY", key)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(code(&out), 73, "{}", stderr(&out));
    let err = stderr(&out);
    let stats = sandbox.stats();
    assert!(stats.accepted < 200, "stopped early: {}", stats.accepted);
    let recorded: Vec<String> = jobs(&dir.path().join("jobs.results.csv"))
        .into_iter()
        .map(|r| r.task_id)
        .collect();
    for task in &stats.tasks {
        assert!(
            recorded.contains(&task.task_id) || err.contains(&task.task_id),
            "task {} neither recorded nor printed",
            task.task_id
        );
    }
}
