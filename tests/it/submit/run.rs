//! End to end: the real binary against the sandbox, asserting what the
//! sandbox received and what the results file says.

use std::collections::HashMap;
use std::time::Instant;

use batchgen::files::results::Status;
use batchgen::sandbox::SandboxConfig;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_retried_and_every_row_is_accepted_exactly_once() {
    let sandbox = sandbox(SandboxConfig {
        fail_500: 0.10,
        fail_503: 0.05,
        fail_429: 0.10,
        // Honoured, so 0 keeps fifty injected 429s from costing a second each.
        fail_429_retry_after: 0,
        seed: 7,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 500);
    let out = run_bin(
        &sandbox,
        &[
            manifest.to_str().unwrap(),
            "--rate",
            "unlimited",
            "--concurrency",
            "8",
            "--max-attempts",
            "10",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let rows = results(&dir.path().join("jobs.results.csv"));
    assert_eq!(rows.len(), 500, "one row per job, compacted");
    let stats = sandbox.stats();
    let injected = &stats.injected;
    assert!(
        injected.fail_500 > 20 && injected.fail_503 > 10 && injected.fail_429 > 20,
        "faults were injected: {injected:?}"
    );
    assert_eq!(stats.accepted, 500);
    assert!(stats.accepted_by_fingerprint.values().all(|&n| n == 1));
    let task_ids: HashMap<_, _> = stats
        .tasks
        .iter()
        .map(|t| (t.task_id.clone(), t.fingerprint.clone()))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.key, format!("job-{i}"), "manifest order");
        assert_eq!(row.line, i as u64 + 2);
        assert_eq!(row.status, Status::Submitted);
        assert_eq!(
            task_ids.get(&row.task_id),
            Some(&row.fingerprint),
            "task id recorded for the right job"
        );
        assert!(!row.submitted_at.is_empty());
    }
    assert!(
        stderr(&out).contains("500 submitted, 0 failed, 0 unknown"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configured_rate_is_kept_from_the_first_second() {
    const RATE: u32 = 20;
    const N: usize = 60;
    let sandbox = sandbox(SandboxConfig {
        rate: Some(format!("{RATE}/s").parse().unwrap()),
        // Retries must pass the limiter too: a retry sent outside it would
        // draw a 429 from the sandbox's own limit.
        fail_500: 0.15,
        seed: 9,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), N);
    let started = Instant::now();
    let out = run_bin(
        &sandbox,
        &[
            manifest.to_str().unwrap(),
            "--rate",
            &format!("{RATE}/s"),
            "--concurrency",
            "8",
        ],
    )
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = sandbox.stats();
    assert_eq!(stats.rate_limited, 0, "no 429 from the sandbox");
    assert_eq!(stats.accepted, N as u64);
    assert!(stats.injected.fail_500 > 0, "some requests were retried");
    // Every request at R/s with no burst: the first at once, then one per
    // 1/R. A lower bound only: the rate is the product's, and time only
    // moves forward, so it cannot flake. How much slower a loaded machine
    // makes the run is no property of batchgen's.
    let ideal = (stats.requests - 1) as f64 / f64::from(RATE);
    assert!(
        elapsed > ideal * 0.97,
        "too fast: {elapsed:.2}s for ideal {ideal:.2}s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_stops_the_run_with_77() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 100);
    let args = [manifest.to_str().unwrap(), "--rate", "unlimited"];
    let out = run_at(&sandbox.base_url(), "sk-wrong", &args).await;
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));
    let stats = sandbox.stats();
    assert!(
        stats.requests <= 8,
        "stopped after a handful: {}",
        stats.requests
    );
    assert_eq!(stats.accepted, 0);
    let rows = results(&dir.path().join("jobs.results.csv"));
    assert!(
        rows.iter().all(|r| r.status == Status::Pending),
        "refused rows stay pending for the next run"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("sk-wrong"));
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_dropped_after_acceptance_are_unknown_and_never_resent() {
    let sandbox = sandbox(SandboxConfig {
        drop_after: 0.2,
        seed: 3,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 100);
    let out = run_bin(
        &sandbox,
        &[manifest.to_str().unwrap(), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 1, "some rows unknown: {}", stderr(&out));
    let rows = results(&dir.path().join("jobs.results.csv"));
    let unknown: Vec<_> = rows
        .iter()
        .filter(|r| r.status == Status::Unknown)
        .collect();
    let submitted = rows
        .iter()
        .filter(|r| r.status == Status::Submitted)
        .count();
    assert!(!unknown.is_empty());
    assert_eq!(unknown.len() + submitted, 100);
    assert!(
        unknown
            .iter()
            .all(|r| r.attempts == 1 && r.error.contains("may have been accepted"))
    );
    let stats = sandbox.stats();
    assert_eq!(
        stats.accepted, 100,
        "every request was accepted once, dropped or not"
    );
    assert!(
        stats.accepted_by_fingerprint.values().all(|&n| n == 1),
        "nothing resent"
    );

    // A rerun leaves unknown rows alone unless asked.
    let again = run_bin(
        &sandbox,
        &[manifest.to_str().unwrap(), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&again), 1);
    assert_eq!(
        sandbox.stats().requests,
        stats.requests,
        "rerun sent nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prompts_round_trip_byte_for_byte() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let prompts = [
        "commas, everywhere, really",
        "she said \"hello\" and left",
        "line one\nline two\r\nline three",
        "Ünïcödé — 日本語の歌 🎵",
        "  leading and trailing spaces  ",
    ];
    let mut csv = String::from("\u{feff}id,prompt,style,title,custom_mode\r\n");
    for (i, p) in prompts.iter().enumerate() {
        let quoted = p.replace('"', "\"\"");
        csv.push_str(&format!(
            "r{i},\"{quoted}\",\"lofi, chill\",Title {i},yes\r\n"
        ));
    }
    let manifest = write(dir.path(), "odd.csv", &csv);
    let out = run_bin(
        &sandbox,
        &[manifest.to_str().unwrap(), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = sandbox.stats();
    let received: Vec<String> = stats
        .tasks
        .iter()
        .map(|t| t.body.prompt.clone().unwrap())
        .collect();
    for p in prompts {
        assert!(
            received.contains(&p.to_owned()),
            "{p:?} not received intact: {received:?}"
        );
    }
    assert!(
        stats
            .tasks
            .iter()
            .all(|t| t.body.style.as_deref() == Some("lofi, chill"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_manifests_send_nothing() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "bad.csv",
        "id,prompt,custom_mode,title\nok,fine,,\nbad,x,maybe,\nworse,,true,\n",
    );
    let out = run_bin(&sandbox, &[manifest.to_str().unwrap()]).await;
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bad.csv:3: custom_mode:"), "{err}");
    assert!(err.contains("bad.csv:4: prompt:"), "{err}");
    assert!(err.contains("bad.csv:4: title:"), "{err}");
    assert_eq!(sandbox.stats().requests, 0);
    assert!(
        !dir.path().join("bad.results.csv").exists(),
        "no results file for an invalid manifest"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reruns_send_only_what_is_new() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 10);
    let path = manifest.to_str().unwrap();
    let first = run_bin(&sandbox, &[path, "--rate", "unlimited"]).await;
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let before = results(&dir.path().join("jobs.results.csv"));

    let again = run_bin(&sandbox, &[path, "--rate", "unlimited"]).await;
    assert_eq!(code(&again), 0);
    assert!(
        stderr(&again).contains("nothing to do"),
        "{}",
        stderr(&again)
    );
    assert_eq!(sandbox.stats().requests, 10);

    // Reorder and append: only the two new rows go out; old task IDs stay.
    let mut text = String::from("id,prompt\nnew-1,a brand new song\n");
    for i in (0..10).rev() {
        text.push_str(&format!("job-{i},\"a calm song number {i}, with rain\"\n"));
    }
    text.push_str("new-2,another new song\n");
    std::fs::write(&manifest, text).unwrap();
    let third = run_bin(&sandbox, &[path, "--rate", "unlimited", "--quiet"]).await;
    assert_eq!(code(&third), 0, "{}", stderr(&third));
    assert!(third.stderr.is_empty(), "--quiet prints nothing on success");
    assert_eq!(sandbox.stats().requests, 12);
    let after = results(&dir.path().join("jobs.results.csv"));
    assert_eq!(after.len(), 12);
    assert_eq!(after[0].key, "new-1");
    for old in &before {
        let now = after.iter().find(|r| r.key == old.key).unwrap();
        assert_eq!(now.task_id, old.task_id);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_errors_have_their_own_codes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let no_key = run_with_env(vec![manifest.to_str().unwrap().into()], vec![]).await;
    assert_eq!(code(&no_key), 78, "{}", stderr(&no_key));
    assert!(stderr(&no_key).contains("BATCHGEN_API_KEY"));

    // A key a header cannot carry (a pasted curly quote) is named before
    // anything is written or sent, and not printed.
    let curly = run_with_env(
        vec![manifest.to_str().unwrap().into()],
        vec![("BATCHGEN_API_KEY".into(), "sk-live\u{201d}".into())],
    )
    .await;
    assert_eq!(code(&curly), 78, "{}", stderr(&curly));
    let err = stderr(&curly);
    assert!(
        err.contains("visible ASCII") && err.contains("BATCHGEN_API_KEY"),
        "{err}"
    );
    assert!(!err.contains("sk-live"), "the key is never printed: {err}");
    assert!(!dir.path().join("jobs.results.csv").exists());

    let missing = run_with_env(
        vec![dir.path().join("nope.toml").to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&missing), 66, "{}", stderr(&missing));

    let usage = run_with_env(
        vec!["--rate".into(), "fast".into(), "x.toml".into()],
        vec![],
    )
    .await;
    assert_eq!(code(&usage), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_key_never_appears_in_output_or_results() {
    let sandbox = sandbox(SandboxConfig {
        fail_500: 0.3,
        drop_after: 0.1,
        seed: 11,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 30);
    let out = run_bin(
        &sandbox,
        &[manifest.to_str().unwrap(), "--rate", "unlimited", "-vv"],
    )
    .await;
    let key = sandbox.key();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(key));
    assert!(!stderr(&out).contains(key));
    let file = std::fs::read_to_string(dir.path().join("jobs.results.csv")).unwrap();
    assert!(!file.contains(key));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_quick_start_runs_against_the_embedded_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for name in ["jobs.toml", "prompts.csv", "catalog.toml"] {
        std::fs::copy(examples.join(name), dir.path().join(name)).unwrap();
    }
    let manifest = dir.path().join("jobs.toml");
    let out = run_with_env(
        vec![
            manifest.to_str().unwrap().into(),
            "--sandbox".into(),
            "--rate".into(),
            "50/s".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = results(&dir.path().join("jobs.sandbox.results.csv"));
    assert!(rows.len() >= 15);
    assert!(
        rows.iter()
            .all(|r| r.status == Status::Submitted && !r.task_id.is_empty())
    );
    assert!(
        !dir.path().join("jobs.results.csv").exists(),
        "sandbox results never mix with real ones"
    );

    let validate = run_with_env(
        vec![
            "validate".into(),
            dir.path().join("catalog.toml").to_str().unwrap().into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
    assert!(String::from_utf8_lossy(&validate.stdout).contains("all valid"));
}

/// A run sends the jobs its merge kept in memory or, past the budget, reads
/// them from the manifest again: the same requests and rows either way.
#[tokio::test(flavor = "multi_thread")]
async fn jobs_kept_from_the_merge_or_read_again_are_sent_alike() {
    use batchgen::settings::{Config, RetryPolicy, RunSettings};
    use batchgen::util::{redact::Secret, units::Rate};
    let sandbox = sandbox(SandboxConfig::default()).await;
    for budget in [batchgen::settings::DEFAULT_HOLD_BUDGET, 0] {
        let before = sandbox.stats().accepted;
        let dir = tempfile::tempdir().unwrap();
        let path = csv_manifest(dir.path(), 300);
        let manifest = batchgen::files::manifest::load(&path).unwrap();
        let settings = RunSettings {
            base_url: Some(sandbox.base_url()),
            rate: Some(Rate::Unlimited),
            concurrency: Some(8),
            ..RunSettings::default()
        };
        let config = Config::new(
            settings,
            Secret::new(sandbox.key()),
            &path,
            RetryPolicy::default(),
        )
        .unwrap()
        .max_jobs(Some(250))
        .hold_budget(budget)
        .build();
        let run = batchgen::engine::submit::submit_manifest(
            &manifest,
            &config,
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(run.requests, 250, "budget {budget}");
        assert_eq!(sandbox.stats().accepted - before, 250);
        let rows = batchgen::files::results::latest(&config.results).unwrap();
        assert_eq!(rows.len(), 300);
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.key, format!("job-{i}"));
            let want = if i < 250 {
                Status::Submitted
            } else {
                Status::Pending
            };
            assert_eq!(row.status, want, "budget {budget}, row {i}");
        }
    }
}
