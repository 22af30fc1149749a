//! `--budget`: a run never starts a job it cannot pay for, by the model
//! catalogue's prices (else `--credits-per-job`); what is left stays
//! pending for the next run, which has a budget of its own.

use batchgen::files::results::Status;
use batchgen::sandbox::SandboxConfig;

use crate::common::{self, code, csv_manifest, run_bin, stderr};

fn statuses(results: &std::path::Path) -> Vec<Status> {
    batchgen::files::results::latest(results)
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_budget_caps_first_submissions_and_nothing_is_sent_past_it() {
    let sb = common::sandbox(SandboxConfig::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(tmp.path(), 5);
    let results = tmp.path().join("jobs.results.csv");
    let summary = tmp.path().join("summary.json");
    // udioapi's catalogue has no price: --credits-per-job prices a job.
    let out = run_bin(
        &sb,
        &[
            manifest.to_str().unwrap(),
            "--rate",
            "unlimited",
            "-j",
            "1",
            "--budget",
            "25",
            "--credits-per-job",
            "10",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "the cap did its job: {err}");
    assert_eq!(
        sb.stats().requests,
        2,
        "two jobs of 10 fit in 25, a third does not"
    );
    assert_eq!(
        statuses(&results),
        [
            Status::Submitted,
            Status::Submitted,
            Status::Pending,
            Status::Pending,
            Status::Pending
        ]
    );
    assert!(err.contains("~20 of 25 credits"), "{err}");
    assert!(
        err.contains("the budget of 25 credits is spent: 3 jobs stay pending"),
        "{err}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(json["credits_estimated"], 20.0);
    assert_eq!(json["budget"], 25.0);

    // The next run has a budget of its own; a [run] budget works alike,
    // and a flag wins over it.
    let toml = tmp.path().join("jobs.toml");
    std::fs::write(
        &toml,
        "csv = \"jobs.csv\"\n[run]\nbudget = 10\ncredits_per_job = 10\nresults = \"jobs.results.csv\"\n",
    )
    .unwrap();
    let out = run_bin(
        &sb,
        &[toml.to_str().unwrap(), "--rate", "unlimited", "-j", "1"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(sb.stats().requests, 3);
    let out = run_bin(
        &sb,
        &[
            toml.to_str().unwrap(),
            "--rate",
            "unlimited",
            "-j",
            "1",
            "--budget",
            "100",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(sb.stats().requests, 5, "the rest, and nothing twice");
    assert!(statuses(&results).iter().all(|s| *s == Status::Submitted));
    let stats = sb.stats();
    assert_eq!(stats.accepted_by_fingerprint.len(), 5);
    assert!(
        stats.accepted_by_fingerprint.values().all(|&n| n == 1),
        "nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_fails_costs_nothing_and_a_bad_budget_is_refused() {
    let sb = common::sandbox(SandboxConfig::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = common::write(
        tmp.path(),
        "jobs.toml",
        "[run]\nbudget = -5\n\n[[job]]\nprompt = \"rain\"\n",
    );
    let out = run_bin(&sb, &[manifest.to_str().unwrap()]).await;
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("jobs.toml:2: budget: expected a number of credits, zero or more"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sb.stats().requests, 0);

    // Every request refused with a 500 (nothing created): each job's price
    // is given back, so a budget of one job lets all three be tried.
    let failing = common::sandbox(SandboxConfig {
        fail_500: 1.0,
        ..SandboxConfig::default()
    })
    .await;
    let csv = csv_manifest(tmp.path(), 3);
    let out = run_bin(
        &failing,
        &[
            csv.to_str().unwrap(),
            "--rate",
            "unlimited",
            "-j",
            "1",
            "--max-attempts",
            "1",
            "--budget",
            "10",
            "--credits-per-job",
            "10",
        ],
    )
    .await;
    assert_eq!(code(&out), 1, "rows failed: {}", stderr(&out));
    assert_eq!(failing.stats().requests, 3, "each failure cost nothing");
    assert!(
        stderr(&out).contains("~0 of 10 credits"),
        "{}",
        stderr(&out)
    );
}

/// With several workers, the jobs that reserved their price before the
/// cap was reached are all sent; nothing after them starts.
#[tokio::test(flavor = "multi_thread")]
async fn with_several_workers_every_job_that_fits_is_sent_and_no_more() {
    let sb = common::sandbox(SandboxConfig::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(tmp.path(), 12);
    let results = tmp.path().join("jobs.results.csv");
    let out = run_bin(
        &sb,
        &[
            manifest.to_str().unwrap(),
            "--rate",
            "unlimited",
            "-j",
            "8",
            "--budget",
            "45",
            "--credits-per-job",
            "10",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(sb.stats().requests, 4, "four jobs of 10 fit in 45");
    let sent = statuses(&results)
        .iter()
        .filter(|s| **s == Status::Submitted)
        .count();
    assert_eq!(sent, 4);
    assert!(
        statuses(&results)
            .iter()
            .all(|s| matches!(s, Status::Submitted | Status::Pending))
    );
}

/// The credits the host charged, measured from its balance before the
/// first send and after the last: in the summary line and the JSON.
#[tokio::test(flavor = "multi_thread")]
async fn the_balance_before_and_after_measures_what_the_run_cost() {
    let sb = common::sandbox(SandboxConfig {
        credits: 1000,
        credits_per_task: 10,
        ..SandboxConfig::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(tmp.path(), 3);
    let summary = tmp.path().join("summary.json");
    let out = run_bin(
        &sb,
        &[
            manifest.to_str().unwrap(),
            "--rate",
            "unlimited",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    )
    .await;
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert!(
        err.contains(" · 30 credits charged (balance 1000 → 970) → "),
        "{err}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["balance_before"], 1000.0);
    assert_eq!(json["balance_after"], 970.0);
    assert_eq!(json["credits_measured"], 30.0);
}

#[tokio::test]
async fn status_sums_what_every_run_spent_estimated_and_by_the_balance() {
    let sb = common::sandbox(SandboxConfig {
        credits: 1000,
        credits_per_task: 10,
        ..SandboxConfig::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(tmp.path(), 3);
    let m = manifest.to_str().unwrap();
    let out = run_bin(&sb, &[m, "--rate", "unlimited", "--max-jobs", "2"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run_bin(&sb, &[m, "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A rerun with nothing to send is no run of the store's.
    let out = run_bin(&sb, &[m, "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let results = tmp.path().join("jobs.results.csv");
    let status = |json: bool| {
        let mut args = vec!["status".to_owned(), common::arg(&results).to_owned()];
        if json {
            args.push("--json".into());
        }
        common::run_with_env(args, vec![])
    };
    let out = status(true).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let credits = &json["credits"];
    assert_eq!(credits["runs"], 2, "{credits}");
    assert_eq!(credits["unfinished"], 0);
    assert_eq!(credits["credits_measured"], 30.0, "three tasks at 10");
    assert_eq!(credits["runs_measured"], 2);
    let estimated = credits["credits_estimated"].as_f64().unwrap();
    assert!(estimated > 0.0, "{credits}");
    assert_eq!(
        credits["last"],
        serde_json::json!({
            "credits_estimated": estimated / 3.0,
            "balance_before": 980.0,
            "balance_after": 970.0,
        })
    );
    let out = status(false).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "  credits:   ~{estimated} estimated over 2 runs · 30 charged by the balance over 2 of them · last run ~{} (balance 980 → 970)\n",
            estimated / 3.0
        )),
        "{text}"
    );
}
