//! Operator experience: init, dry runs, summaries, progress with and without
//! a terminal, log formats, completions and the man page.

use std::process::Command;

use batchgen::sandbox::SandboxConfig;

use crate::common::*;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn bin(args: &[&str]) -> std::process::Output {
    run_with_env(args.iter().map(|s| s.to_string()).collect(), vec![]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn init_writes_a_starter_that_validates_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("songs.toml");
    let out = bin(&["init", toml.to_str().unwrap()]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let csv = dir.path().join("songs.csv");
    let a = batchgen::files::manifest::load(&toml).unwrap();
    let b = batchgen::files::manifest::load(&csv).unwrap();
    let keys = |m: &batchgen::files::manifest::Manifest| {
        m.collect_jobs()
            .unwrap()
            .iter()
            .map(|j| (j.key.clone(), j.fingerprint.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&a), keys(&b), "the CSV holds the same jobs");
    let modes: std::collections::HashSet<_> = a
        .collect_jobs()
        .unwrap()
        .iter()
        .map(|j| j.fields.mode())
        .collect();
    assert_eq!(modes.len(), 5, "one job per mode, inspiration included");

    let again = bin(&["init", toml.to_str().unwrap()]).await;
    assert_ne!(code(&again), 0);
    assert!(stderr(&again).contains("--force"));
    assert_eq!(
        code(&bin(&["init", toml.to_str().unwrap(), "--force"]).await),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_shows_bodies_sends_nothing_and_needs_no_key() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 5);
    let out = run_with_env(
        vec![
            manifest.to_str().unwrap().into(),
            "--dry-run".into(),
            "--base-url".into(),
            sandbox.base_url(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("5 to send"), "{text}");
    assert!(
        text.contains(r#"{"prompt":"a calm song number 0, with rain"}"#),
        "{text}"
    );
    assert!(text.contains("… and 2 more"), "{text}");
    assert_eq!(sandbox.stats().requests, 0);
    assert!(
        !dir.path().join("jobs.results.csv").exists(),
        "a dry run writes nothing"
    );

    let with_key = run_bin(&sandbox, &[manifest.to_str().unwrap(), "--dry-run"]).await;
    assert!(
        !stdout(&with_key).contains(sandbox.key()) && !stderr(&with_key).contains(sandbox.key())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn summary_json_matches_the_results_file() {
    let sandbox = sandbox(SandboxConfig {
        drop_after: 0.2,
        fail_500: 0.2,
        seed: 5,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 40);
    let summary_path = dir.path().join("summary.json");
    let out = run_bin(
        &sandbox,
        &[
            manifest.to_str().unwrap(),
            "--rate",
            "unlimited",
            "--summary-json",
            summary_path.to_str().unwrap(),
        ],
    )
    .await;
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], code(&out));
    let rows = results(&dir.path().join("jobs.results.csv"));
    for status in ["submitted", "failed", "unknown", "pending"] {
        let n = rows
            .iter()
            .filter(|r| format!("{:?}", r.status).to_lowercase() == status)
            .count();
        assert_eq!(summary["totals"][status], n, "{status}");
    }
    assert_eq!(summary["requests"], sandbox.stats().requests);
    assert!(summary["retries"].as_u64().unwrap() > 0);
    assert_eq!(
        summary["results"],
        dir.path().join("jobs.results.csv").to_str().unwrap()
    );

    // Written for early failures too, with the code and the reason.
    let bad = write(dir.path(), "bad.csv", "promt\nx\n");
    let out = run_bin(
        &sandbox,
        &[
            bad.to_str().unwrap(),
            "--summary-json",
            summary_path.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code(&out), 65);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary_path).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 65);
    assert!(summary["error"].as_str().unwrap().contains("promt"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_bar_off_a_terminal_but_plain_lines_with_v_and_json_logs() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 12);
    let out = run_bin(&sandbox, &[manifest.to_str().unwrap(), "--rate", "20/s"]).await;
    assert_eq!(code(&out), 0);
    let err = stderr(&out);
    assert!(
        !err.contains('\r') && !err.contains("ETA") && !err.contains('\u{1b}'),
        "no bar: {err:?}"
    );
    assert_eq!(err.lines().count(), 1, "only the summary: {err}");

    std::fs::remove_file(dir.path().join("jobs.results.csv")).unwrap();
    remove_state(&dir.path().join("jobs.results.csv"));
    let out = run_bin(
        &sandbox,
        &[
            manifest.to_str().unwrap(),
            "--rate",
            "20/s",
            "-v",
            "--log-interval",
            "150ms",
        ],
    )
    .await;
    let err = stderr(&out);
    assert!(
        err.lines().filter(|l| l.contains("progress:")).count() >= 2,
        "{err}"
    );

    std::fs::remove_file(dir.path().join("jobs.results.csv")).unwrap();
    remove_state(&dir.path().join("jobs.results.csv"));
    let out = run_bin(
        &sandbox,
        &[
            manifest.to_str().unwrap(),
            "--rate",
            "20/s",
            "-v",
            "--log-interval",
            "150ms",
            "--log-format",
            "json",
        ],
    )
    .await;
    let logs: Vec<_> = stderr(&out)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(str::to_owned)
        .collect();
    assert!(logs.len() >= 2, "{}", stderr(&out));
    for line in logs {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_gets_a_live_bar() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 10);
    let command = format!(
        "BATCHGEN_API_KEY={} {} {} --base-url {} --rate 10/s",
        sandbox.key(),
        assert_cmd::cargo::cargo_bin("batchgen").display(),
        manifest.display(),
        sandbox.base_url()
    );
    // `script` runs the command on a pseudo-terminal and copies what it drew.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let screen = stdout(&out);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("ETA") && screen.contains("/10"),
        "a bar was drawn: {screen:?}"
    );
    assert!(screen.contains("10 submitted"), "{screen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_and_man_page_are_generated_from_the_cli() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bin(&["completions", shell]).await;
        assert_eq!(code(&out), 0, "{shell}");
        assert!(stdout(&out).contains("max-jobs"), "{shell}");
    }
    let man = bin(&["man"]).await;
    assert_eq!(code(&man), 0);
    assert!(stdout(&man).starts_with(".ie") && stdout(&man).contains("batchgen"));
}

#[tokio::test(flavor = "multi_thread")]
async fn credits_are_checked_before_and_402_stops_the_run() {
    let sandbox = sandbox(SandboxConfig {
        credits: 50,
        credits_per_task: 10,
        ..SandboxConfig::default()
    })
    .await;
    let out = run_with_env(
        vec!["credits".into(), "--base-url".into(), sandbox.base_url()],
        vec![("BATCHGEN_API_KEY".into(), sandbox.key().into())],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("50 credits left (0 used)"),
        "{}",
        stdout(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 10);
    let out = run_bin(
        &sandbox,
        &[manifest.to_str().unwrap(), "--rate", "unlimited", "-j", "1"],
    )
    .await;
    let err = stderr(&out);
    assert!(
        err.contains("needs about 100 credits for 10 jobs, the balance is 50"),
        "{err}"
    );
    assert_eq!(code(&out), 77, "{err}");
    assert!(
        err.contains("HTTP 402") && err.contains("out of credits"),
        "{err}"
    );
    let rows = results(&dir.path().join("jobs.results.csv"));
    assert_eq!(
        rows.iter()
            .filter(|r| r.status == batchgen::files::results::Status::Submitted)
            .count(),
        5
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.status == batchgen::files::results::Status::Pending)
            .count(),
        5
    );

    let wrong = run_with_env(
        vec!["credits".into(), "--base-url".into(), sandbox.base_url()],
        vec![("BATCHGEN_API_KEY".into(), "nope".into())],
    )
    .await;
    assert_eq!(code(&wrong), 77);
    assert!(
        stderr(&wrong).contains("BATCHGEN_API_KEY"),
        "the hint names the key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_collects_and_downloads_after_submitting() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "few.csv",
        "id,prompt\none,a calm song\ntwo,a forbidden song\nthree,a happy song\n",
    );
    let songs = dir.path().join("songs");
    let out = run_with_env(
        vec![
            manifest.to_str().unwrap().into(),
            "--sandbox".into(),
            "--rate".into(),
            "unlimited".into(),
            "--wait".into(),
            "--download".into(),
            songs.to_str().unwrap().into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(
        code(&out),
        0,
        "every clip settled, one job by moderation: {}",
        stderr(&out)
    );
    let mut files: Vec<_> = std::fs::read_dir(&songs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["one-1.mp3", "one-2.mp3", "three-1.mp3", "three-2.mp3"]
    );
    let catalog = std::fs::read_to_string(dir.path().join("few.sandbox.catalog.csv")).unwrap();
    assert!(
        batchgen::sandbox::MODERATION_MESSAGES
            .iter()
            .any(|m| catalog.contains(m)),
        "{catalog}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_base_sends_each_job_to_the_receiver() {
    use batchgen::engine::collect::receive::{ReceiveConfig, Receiver};
    use batchgen::util::redact::Secret;
    let sandbox = sandbox(SandboxConfig {
        stage_time: std::time::Duration::from_millis(100),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let watch = wait::DirWatch::new(dir.path());
    let manifest = csv_manifest(dir.path(), 5);
    let receiver = Receiver::start(ReceiveConfig {
        webhook_key: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        provider: Default::default(),
        secret: Secret::new("s3cret-callback-0123"),
        results: dir.path().join("jobs.results.csv"),
        catalog: dir.path().join("received.catalog.csv"),
    })
    .await
    .unwrap();
    let base = format!("http://{}/", receiver.addr());
    let out = run_with_env(
        vec![
            manifest.to_str().unwrap().into(),
            "--base-url".into(),
            sandbox.base_url(),
            "--rate".into(),
            "unlimited".into(),
            "--callback-base".into(),
            base,
        ],
        vec![
            ("BATCHGEN_API_KEY".into(), sandbox.key().into()),
            (
                "BATCHGEN_CALLBACK_SECRET".into(),
                "s3cret-callback-0123".into(),
            ),
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = sandbox.stats();
    for task in &stats.tasks {
        let url = task.body.callback_url.as_deref().unwrap();
        assert!(url.contains("/callback/s3cret-callback-0123/job-"), "{url}");
    }
    // Callbacks arrive at each stage; wait for the report that has the
    // last ones (looked at each time the receiver writes it).
    let catalog = dir.path().join("received.catalog.csv");
    watch
        .until(
            "two clips for each of five jobs complete by callback",
            || {
                let complete = std::fs::read_to_string(&catalog)
                    .map(|t| t.matches(",complete,").count())
                    .unwrap_or(0);
                if complete == 10 {
                    Ok(())
                } else {
                    Err(format!(
                        "{complete} complete; {}",
                        callback_counts(&sandbox)
                    ))
                }
            },
        )
        .await;
    receiver.shutdown().await.unwrap();

    let missing = run_with_env(
        vec![
            manifest.to_str().unwrap().into(),
            "--dry-run".into(),
            "--callback-base".into(),
            "https://h/".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&missing), 78, "no secret: {}", stderr(&missing));
}
