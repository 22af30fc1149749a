//! `--regenerate N`: a job whose takes were all rejected by the quality
//! rules, or whose task failed with the host's "refunded, submit again"
//! (sunoapi's 531), is sent again as a new task of the job through the
//! same pool and journal, at most N times, within `--budget`; never for a
//! moderation failure. The earlier task, its takes and its files stay.

use std::path::Path;
use std::time::Duration;

use batchgen::job::Provider;
use batchgen::sandbox::{BadTakeKind, Sandbox, SandboxConfig, TakeLength};

use super::{FAST, manifest, run_as};
use crate::common::{self, catalog, run_env};

fn config(bad_take: f64) -> SandboxConfig {
    SandboxConfig {
        stage_time: Duration::from_millis(100),
        take_length: TakeLength::parse("31s..34s").unwrap(),
        bad_take,
        bad_take_kind: BadTakeKind::Short,
        ..SandboxConfig::default()
    }
}

/// Runs the manifest (with `extra`) and collects with downloads; the
/// run's stderr.
async fn run_then_collect(sb: &Sandbox, tmp: &Path, extra: &[&str]) -> String {
    let manifest = tmp.join("jobs.csv");
    let mut args = vec![common::arg(&manifest), "--rate", "unlimited"];
    args.extend(extra);
    let out = run_env(sb, &args).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let run = common::stderr(&out);
    collect(sb, tmp).await;
    run
}

async fn collect(sb: &Sandbox, tmp: &Path) {
    let results = tmp.join("jobs.results.csv");
    let songs = tmp.join("songs");
    let mut args = vec![
        "collect",
        common::arg(&results),
        "--download",
        common::arg(&songs),
    ];
    args.extend(FAST);
    let out = run_env(sb, &args).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
}

/// Each job's task IDs, in the order it was given them, and its
/// regenerations, from the store.
fn tasks(tmp: &Path) -> Vec<(String, Vec<String>, u32)> {
    let conn = rusqlite::Connection::open(tmp.join("jobs.results.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, key, regenerations FROM jobs ORDER BY position")
        .unwrap();
    let jobs: Vec<(i64, String, u32)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    jobs.into_iter()
        .map(|(id, key, n)| {
            let mut t = conn
                .prepare("SELECT task_id FROM tasks WHERE job_id = ?1 ORDER BY seq")
                .unwrap();
            let ids = t
                .query_map([id], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (key, ids, n)
        })
        .collect()
}

fn mp3s(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "mp3"))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_with_every_take_rejected_is_regenerated_up_to_n_times_and_its_old_takes_kept() {
    let sb = common::sandbox(config(1.0)).await;
    let tmp = tempfile::tempdir().unwrap();
    manifest(tmp.path(), 2, |_| None);
    run_then_collect(&sb, tmp.path(), &[]).await;
    let first = catalog(&tmp.path().join("jobs.catalog.csv"));
    assert!(first.iter().all(|r| r.verdict == "rejected"), "{first:?}");
    assert_eq!(sb.stats().accepted, 2);

    // Without --regenerate nothing is sent again.
    run_then_collect(&sb, tmp.path(), &[]).await;
    assert_eq!(sb.stats().accepted, 2);

    // A dry run says what a run would regenerate, and sends nothing.
    let manifest = tmp.path().join("jobs.csv");
    let out = run_env(
        &sb,
        &[common::arg(&manifest), "--regenerate", "1", "--dry-run"],
    )
    .await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("2 to send (2 to regenerate)"), "{said}");
    assert_eq!(sb.stats().accepted, 2);

    let run = run_then_collect(&sb, tmp.path(), &["--regenerate", "1"]).await;
    assert!(run.contains("regenerating 2 jobs"), "{run}");
    assert_eq!(sb.stats().accepted, 4, "each job sent once more");
    let jobs = tasks(tmp.path());
    for (key, ids, regenerations) in &jobs {
        assert_eq!(ids.len(), 2, "{key}: both tasks kept: {ids:?}");
        assert_eq!(*regenerations, 1, "{key}");
    }
    let second = catalog(&tmp.path().join("jobs.catalog.csv"));
    assert_eq!(second.len(), 4);
    for row in &second {
        let (_, ids, _) = jobs.iter().find(|(k, _, _)| *k == *row.key).unwrap();
        assert_eq!(row.task_id, ids[1], "the catalog shows the new task");
        assert_eq!(row.verdict, "rejected", "the sandbox's takes are all short");
    }
    for row in &first {
        assert!(Path::new(&row.file).exists(), "{} kept", row.file);
    }
    assert_eq!(mp3s(&tmp.path().join("songs")), 8, "old and new takes");

    // The limit is per job, across runs.
    let run = run_then_collect(&sb, tmp.path(), &["--regenerate", "1"]).await;
    assert!(!run.contains("regenerating"), "{run}");
    assert_eq!(sb.stats().accepted, 4);
    run_then_collect(&sb, tmp.path(), &["--regenerate", "2"]).await;
    assert_eq!(sb.stats().accepted, 6);
    assert!(
        tasks(tmp.path())
            .iter()
            .all(|(_, ids, n)| ids.len() == 3 && *n == 2)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kept_takes_and_moderation_failures_are_never_regenerated() {
    let sb = common::sandbox(config(0.0)).await;
    let tmp = tempfile::tempdir().unwrap();
    common::write(
        tmp.path(),
        "jobs.csv",
        "id,prompt\ngood,a calm song with rain\nbanned,a forbidden song\n",
    );
    run_then_collect(&sb, tmp.path(), &[]).await;
    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    assert!(
        rows.iter()
            .any(|r| *r.key == *"banned" && r.status == "failed")
    );
    let run = run_then_collect(&sb, tmp.path(), &["--regenerate", "3"]).await;
    assert!(!run.contains("regenerating"), "{run}");
    assert_eq!(sb.stats().accepted, 2, "nothing sent again");
}

/// A run's budget covers regenerations: the one that would go past it is
/// not sent, and stays as it was for a later run.
#[tokio::test(flavor = "multi_thread")]
async fn the_budget_caps_regenerations() {
    let sb = common::sandbox(config(1.0)).await;
    let tmp = tempfile::tempdir().unwrap();
    manifest(tmp.path(), 2, |_| None);
    run_then_collect(&sb, tmp.path(), &[]).await;
    let run = run_then_collect(
        &sb,
        tmp.path(),
        &[
            "--regenerate",
            "1",
            "--budget",
            "15",
            "--credits-per-job",
            "10",
        ],
    )
    .await;
    assert!(run.contains("regenerating 2 jobs"), "{run}");
    assert_eq!(
        sb.stats().accepted,
        3,
        "one regeneration fits 15 credits: {run}"
    );
    let jobs = tasks(tmp.path());
    let regenerated: Vec<u32> = jobs.iter().map(|(_, _, n)| *n).collect();
    assert_eq!(regenerated.iter().sum::<u32>(), 1, "{jobs:?}");
    // The other is regenerated by the next run.
    run_then_collect(&sb, tmp.path(), &["--regenerate", "1"]).await;
    assert_eq!(sb.stats().accepted, 4);
}

/// sunoapi's 531 ("generation failed, credits refunded"): the task is
/// sent again under --regenerate.
#[tokio::test(flavor = "multi_thread")]
async fn a_task_the_host_says_to_resend_is_regenerated() {
    let sb = common::sandbox(SandboxConfig {
        provider: Provider::Sunoapi,
        fail_531: 1.0,
        ..config(0.0)
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = common::write(
        tmp.path(),
        "jobs.csv",
        "id,prompt\nsea,a calm song about the sea\n",
    );
    let results = tmp.path().join("jobs.results.csv");
    let songs = tmp.path().join("songs");
    let mut collect = vec![
        "collect",
        common::arg(&results),
        "--download",
        common::arg(&songs),
    ];
    collect.extend(FAST);
    for (extra, accepted) in [(&[][..], 1), (&["--regenerate", "1"][..], 2)] {
        let mut run = vec![common::arg(&manifest), "--rate", "unlimited"];
        run.extend(extra);
        let out = run_as(&sb, Provider::Sunoapi, run).await;
        assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
        assert_eq!(sb.stats().accepted, accepted);
        let out = run_as(&sb, Provider::Sunoapi, collect.clone()).await;
        assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    }
    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    assert!(
        rows.iter()
            .all(|r| r.status == "failed" && r.error.contains("531")),
        "{rows:?}"
    );
    assert_eq!(tasks(tmp.path())[0].1.len(), 2);
}

/// `batchgen MANIFEST --wait --download songs/ …extra` over a one-job
/// manifest in `tmp`: its output and the songs folder.
async fn wait_one_job(
    sb: &Sandbox,
    tmp: &Path,
    extra: &[&str],
) -> (std::process::Output, std::path::PathBuf) {
    let manifest = manifest(tmp, 1, |_| None);
    let songs = tmp.join("songs");
    let mut args = vec![
        common::arg(&manifest),
        "--rate",
        "unlimited",
        "--wait",
        "--download",
        common::arg(&songs),
    ];
    args.extend(extra);
    let out = run_env(sb, &args).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    (out, songs)
}

/// With `--wait`, a run collects, regenerates what the collect rejected,
/// and collects again, round after round up to N.
#[tokio::test(flavor = "multi_thread")]
async fn wait_regenerates_and_collects_in_one_command() {
    let sb = common::sandbox(config(1.0)).await;
    let tmp = tempfile::tempdir().unwrap();
    let (out, songs) = wait_one_job(&sb, tmp.path(), &["--regenerate", "2"]).await;
    let stderr = common::stderr(&out);
    assert_eq!(
        stderr.matches("regenerating 1 job ").count(),
        2,
        "two rounds: {stderr}"
    );
    assert_eq!(sb.stats().accepted, 3);
    assert_eq!(tasks(tmp.path())[0].1.len(), 3);
    assert_eq!(mp3s(&songs), 6, "every round's takes kept");
}

/// kill -9 in the middle of a run of regenerations, then a rerun: no job
/// is accepted more than once per regeneration it was allowed, a job in
/// flight at the kill is `unknown` and not sent again, and the earlier
/// task of every job is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_kill_during_regeneration_bills_no_job_twice() {
    use crate::common::wait::Watched;
    let sb = common::sandbox(SandboxConfig {
        latency: Duration::from_millis(20),
        ..config(1.0)
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = manifest(tmp.path(), 30, |_| None);
    run_then_collect(&sb, tmp.path(), &[]).await;
    let first = sb.stats().accepted;
    let child = Watched::spawn(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("batchgen"))
            .args([
                common::arg(&manifest),
                "--regenerate",
                "1",
                "--rate",
                "20/s",
                "-j",
                "2",
            ])
            .env("BATCHGEN_API_KEY", sb.key())
            .env("BATCHGEN_BASE_URL", sb.base_url()),
    );
    let before = sb.stats().requests;
    common::poll::stats_until(&sb, "a few regenerations", |s| s.requests >= before + 5).await;
    let ok = std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let out = child.output().await;
    assert!(out.status.code().is_none(), "killed");
    let mid = sb.stats().accepted;
    assert!(mid > first && mid < first + 30, "killed mid-way: {mid}");

    // Exit 1: the rows in flight at the kill are `unknown`, not resent.
    let out = run_env(
        &sb,
        &[
            common::arg(&manifest),
            "--rate",
            "unlimited",
            "--regenerate",
            "1",
        ],
    )
    .await;
    assert_eq!(common::code(&out), 1, "{}", common::stderr(&out));
    let stats = sb.stats();
    assert!(
        stats.accepted_by_fingerprint.values().all(|&n| n <= 2),
        "no job accepted more than its first time and one regeneration"
    );
    let rows = batchgen::files::results::latest(&tmp.path().join("jobs.results.csv")).unwrap();
    let unknown = rows
        .iter()
        .filter(|r| r.status == batchgen::files::results::Status::Unknown)
        .count();
    assert!(unknown <= 2, "at most the rows in flight: {unknown}");
    for (key, ids, n) in tasks(tmp.path()) {
        assert!(n <= 1, "{key}: {n}");
        assert!(!ids.is_empty() && ids.len() <= 2, "{key}: {ids:?}");
    }
}

/// `--budget` is the whole command's: the rounds of `--wait --regenerate`
/// share it, and `--summary-json` adds them up.
#[tokio::test(flavor = "multi_thread")]
async fn wait_rounds_share_one_budget_and_one_summary() {
    let sb = common::sandbox(config(1.0)).await;
    let tmp = tempfile::tempdir().unwrap();
    let summary = tmp.path().join("summary.json");
    let (out, _) = wait_one_job(
        &sb,
        tmp.path(),
        &[
            "--regenerate",
            "3",
            "--budget",
            "25",
            "--credits-per-job",
            "10",
            "--summary-json",
            common::arg(&summary),
        ],
    )
    .await;
    assert_eq!(
        sb.stats().accepted,
        2,
        "10 + 10 fit in 25, a third 10 does not: {}",
        common::stderr(&out)
    );
    let stderr = common::stderr(&out);
    assert_eq!(
        stderr.matches("regenerating 1 job ").count(),
        2,
        "a round that cannot send ends the rounds: {stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["requests"], 2, "{json}");
    assert_eq!(json["credits_estimated"], 20.0, "{json}");
    assert_eq!(json["budget"], 25.0, "{json}");
}
