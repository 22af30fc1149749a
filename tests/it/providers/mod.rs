//! The same manifest against every provider's sandbox, through the real
//! binary: submit with faults injected, a rerun that sends nothing,
//! collect with downloads (every clip complete, every file a whole MP3),
//! callbacks through `receive` into the same catalog, and each provider's
//! own ways to fail (sunoapi's 429 that means "no credits", its 430 rate
//! limit, errors inside an HTTP 200; gcui's task that is two clip IDs).
//!
//! Each provider's documented bodies, read through its wire, are in
//! [`bodies`]; the journey against an independent imitation of
//! udioapi.pro, in [`docs`].

mod bodies;
mod docs;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use batchgen::engine::collect::receive::{ReceiveConfig, Receiver};
use batchgen::files::catalog::Row;
use batchgen::files::results::{self, Status};
use batchgen::job::Provider;
use batchgen::sandbox::{Sandbox, SandboxConfig};
use batchgen::util::redact::Secret;
use serde_json::json;

use crate::common::poll::stats_until;
use crate::common::wait::DirWatch;
use crate::common::{
    self, arg, catalog, code, is_whole_mp3, no_secret, run_with_env, stderr, write,
};

const SECRET: &str = "s3cret-callback-providers";

/// The manifest every provider runs unchanged: description and custom
/// jobs, instrumental or not, the default model, no provider-specific
/// field.
fn manifest(dir: &Path, jobs: usize) -> PathBuf {
    let mut text = String::from("id,prompt,custom_mode,make_instrumental,title,style\n");
    for i in 0..jobs {
        match i % 3 {
            0 => text.push_str(&format!("desc-{i},\"a calm song about rain, take {i}\",,,,\n")),
            1 => text.push_str(&format!(
                "custom-{i},\"[Verse] harbor lights {i}\",true,false,Harbor {i},\"indie folk, 90 bpm\"\n"
            )),
            _ => text.push_str(&format!(
                "inst-{i},,true,true,Theme {i},\"orchestral, strings\"\n"
            )),
        }
    }
    write(dir, "jobs.csv", &text)
}

async fn sandbox(provider: Provider, faulty: bool) -> Sandbox {
    let p = if faulty { 0.15 } else { 0.0 };
    common::sandbox(SandboxConfig {
        provider,
        stage_time: Duration::from_millis(150),
        fail_500: p,
        fail_429: p,
        fail_429_retry_after: 0,
        drop_before: p / 2.0,
        seed: 7,
        ..SandboxConfig::default()
    })
    .await
}

/// Runs the binary with `--provider` and the sandbox's address and key.
async fn run(sb: &Sandbox, provider: Provider, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "--provider".to_owned(),
        provider.name().to_owned(),
        "--base-url".to_owned(),
        sb.base_url(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    // collect and receive take the provider as a flag after the command
    // too; the run takes it before the manifest: both spellings work.
    let out = run_with_env(
        reorder(all),
        vec![("BATCHGEN_API_KEY".into(), sb.key().to_owned())],
    )
    .await;
    no_secret(&out, sb.key());
    out
}

/// Puts a subcommand (`collect`) first, where clap wants it.
fn reorder(mut args: Vec<String>) -> Vec<String> {
    if let Some(i) = args.iter().position(|a| a == "collect") {
        let command = args.remove(i);
        args.insert(0, command);
    }
    args
}

/// Submit with faults, rerun, collect with downloads: the whole journey.
async fn journey(provider: Provider) {
    let sb = sandbox(provider, true).await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = 12;
    let manifest = manifest(dir.path(), jobs);
    let results_path = dir.path().join("jobs.results.csv");
    let submit = [
        arg(&manifest),
        "--out",
        arg(&results_path),
        "--rate",
        "unlimited",
        "--max-attempts",
        "20",
        "--retry-ambiguous",
    ];
    let out = run(&sb, provider, &submit).await;
    assert_eq!(code(&out), 0, "{provider}: {}", stderr(&out));
    let rows = common::results(&results_path);
    assert_eq!(rows.len(), jobs);
    assert!(
        rows.iter().all(|r| r.status == Status::Submitted),
        "{rows:?}"
    );
    let stats = sb.stats();
    assert!(
        stats.injected.fail_500 + stats.injected.fail_429 > 0,
        "{provider}: faults were injected: {:?}",
        stats.injected
    );
    assert!(
        stats.accepted_by_fingerprint.values().all(|&n| n == 1),
        "{provider}: no job accepted twice"
    );
    let accepted: BTreeSet<&str> = stats.tasks.iter().map(|t| t.task_id.as_str()).collect();
    let recorded: BTreeSet<&str> = rows.iter().map(|r| r.task_id.as_str()).collect();
    if provider == Provider::Gcui {
        // The task is its two clips: both IDs, in the answer's order.
        assert!(
            rows.iter().all(|r| r.task_id.split(',').count() == 2),
            "{rows:?}"
        );
    }
    assert!(
        recorded.is_subset(&accepted) || provider == Provider::Gcui,
        "{provider}: every recorded task ID is one the host issued"
    );

    // A rerun sends nothing.
    let before = sb.stats().requests;
    let out = run(&sb, provider, &submit).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        sb.stats().requests,
        before,
        "{provider}: the rerun sent nothing"
    );

    // Collect with downloads: every clip complete, every file whole.
    let songs = dir.path().join("songs");
    let out = run(
        &sb,
        provider,
        &[
            "collect",
            arg(&results_path),
            "--download",
            arg(&songs),
            "--poll-interval",
            "100ms",
            "--poll-rate",
            "unlimited",
            "--deadline",
            "60s",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{provider}: {}", stderr(&out));
    let rows = catalog(&dir.path().join("jobs.catalog.csv"));
    assert_eq!(rows.len(), 2 * jobs, "{provider}: two clips per job");
    for row in &rows {
        assert_eq!(row.status, "complete", "{provider}: {row:?}");
        assert!(row.duration.is_some_and(|d| d > 0.0), "{row:?}");
        let bytes = std::fs::read(&row.file).unwrap();
        assert!(is_whole_mp3(&bytes), "{provider}: {} is whole", row.file);
        assert_eq!(Some(bytes.len() as u64), row.file_bytes);
    }
    if provider == Provider::Gcui {
        for row in &rows {
            assert!(
                row.task_id.split(',').any(|id| id == row.clip_id),
                "{row:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_journey_against_the_udioapi_sandbox() {
    journey(Provider::Udioapi).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_journey_against_the_sunoapi_sandbox() {
    journey(Provider::Sunoapi).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_journey_against_the_kie_sandbox() {
    journey(Provider::Kie).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_journey_against_the_gcui_sandbox() {
    journey(Provider::Gcui).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_journey_against_the_newapi_sandbox() {
    journey(Provider::Newapi).await;
}

/// Callbacks into `receive` give the catalog polling gives, for each
/// provider that sends them.
async fn callbacks_match_polling(provider: Provider, hmac_key: Option<&str>) {
    let sb = common::sandbox(SandboxConfig {
        provider,
        stage_time: Duration::from_millis(150),
        seed: 7,
        webhook_hmac_key: hmac_key.map(str::to_owned),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let watch = DirWatch::new(dir.path());
    let results_path = dir.path().join("jobs.results.csv");
    let receiver = Receiver::start(ReceiveConfig {
        webhook_key: hmac_key.map(Secret::new),
        listen: "127.0.0.1:0".parse().unwrap(),
        provider,
        secret: Secret::new(SECRET),
        results: results_path.clone(),
        catalog: dir.path().join("callback.catalog.csv"),
    })
    .await
    .unwrap();
    let jobs = 9;
    let manifest = manifest(dir.path(), jobs);
    let base = format!("http://{}", receiver.addr());
    let out = run_with_env(
        vec![
            "--provider".into(),
            provider.name().into(),
            "--base-url".into(),
            sb.base_url(),
            arg(&manifest).into(),
            "--out".into(),
            arg(&results_path).into(),
            "--rate".into(),
            "unlimited".into(),
            "--callback-base".into(),
            base,
        ],
        vec![
            ("BATCHGEN_API_KEY".into(), sb.key().to_owned()),
            ("BATCHGEN_CALLBACK_SECRET".into(), SECRET.into()),
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{provider}: {}", stderr(&out));
    no_secret(&out, SECRET);

    // Each time the receiver writes its report: until it shows every clip
    // finished.
    let path = dir.path().join("callback.catalog.csv");
    watch
        .until(
            &format!("{provider}: callbacks finishing every clip"),
            || {
                let rows = if path.exists() {
                    catalog(&path)
                } else {
                    Vec::new()
                };
                let complete = rows.iter().filter(|r| r.status == "complete").count();
                if rows.len() == 2 * jobs && complete == rows.len() {
                    Ok(())
                } else {
                    let rows = rows.len();
                    Err(format!(
                        "{complete} of {rows} rows complete; {}",
                        common::callback_counts(&sb)
                    ))
                }
            },
        )
        .await;
    if let Some(key) = hmac_key {
        forged_callbacks_are_refused(&receiver, key, &catalog(&path)).await;
        assert!(
            catalog(&path).iter().all(|r| r.status == "complete"),
            "nothing a refused callback said was recorded"
        );
    }
    receiver.shutdown().await.unwrap();

    let out = run(
        &sb,
        provider,
        &[
            "collect",
            arg(&results_path),
            "--catalog",
            arg(&dir.path().join("polled.catalog.csv")),
            "--poll-interval",
            "100ms",
            "--poll-rate",
            "unlimited",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let by_clip = |rows: Vec<Row>| -> BTreeMap<String, (String, String, String, String)> {
        rows.into_iter()
            .map(|r| {
                (
                    r.clip_id,
                    (r.key.into_string(), r.task_id, r.status, r.audio_url),
                )
            })
            .collect()
    };
    assert_eq!(
        by_clip(catalog(&path)),
        by_clip(catalog(&dir.path().join("polled.catalog.csv"))),
        "{provider}: the same catalog both ways"
    );
}

/// kie.ai callbacks that are unsigned, signed with another key, signed
/// for another task, or stale are refused (401) before anything is read
/// into the catalog; they would fail the first job's clips if taken.
async fn forged_callbacks_are_refused(receiver: &Receiver, key: &str, rows: &[Row]) {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    let sign = |key: &str, message: String| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(message.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let row = &rows[0];
    let body = json!({"code": 501, "msg": "generation failed",
        "data": {"callbackType": "error", "task_id": row.task_id, "data": []}});
    let url = format!("http://{}/callback/{SECRET}/{}", receiver.addr(), row.key);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fresh = now.to_string();
    let stale = (now - 3600).to_string();
    let cases: [(&str, Option<(String, String)>); 4] = [
        ("unsigned", None),
        (
            "another key",
            Some((
                fresh.clone(),
                sign("not-the-key", format!("{}.{fresh}", row.task_id)),
            )),
        ),
        (
            "another task",
            Some((fresh.clone(), sign(key, format!("other-task.{fresh}")))),
        ),
        (
            "stale",
            Some((stale.clone(), sign(key, format!("{}.{stale}", row.task_id)))),
        ),
    ];
    let client = reqwest::Client::new();
    for (case, headers) in cases {
        let mut request = client.post(&url).json(&body);
        if let Some((ts, sig)) = headers {
            request = request
                .header("X-Webhook-Timestamp", ts)
                .header("X-Webhook-Signature", sig);
        }
        let status = request.send().await.unwrap().status();
        assert_eq!(status.as_u16(), 401, "{case}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn udioapi_callbacks_give_the_polled_catalog() {
    callbacks_match_polling(Provider::Udioapi, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sunoapi_callbacks_give_the_polled_catalog() {
    callbacks_match_polling(Provider::Sunoapi, None).await;
}

/// kie.ai signs its callbacks; `receive` given the key checks each one.
#[tokio::test(flavor = "multi_thread")]
async fn kie_signed_callbacks_give_the_polled_catalog_and_forgeries_are_refused() {
    callbacks_match_polling(Provider::Kie, Some("whk-rehearsal-key-1")).await;
}

/// sunoapi's body code 429 means the account is out of credits: the run
/// stops at once with exit 77, nothing is retried, and the rest of the
/// rows stay `pending` for the run after a top-up.
#[tokio::test(flavor = "multi_thread")]
async fn sunoapi_429_means_out_of_credits_and_stops_the_run() {
    let sb = common::sandbox(SandboxConfig {
        provider: Provider::Sunoapi,
        credits: 50,
        credits_per_task: 10,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 20);
    let results_path = dir.path().join("jobs.results.csv");
    let out = run(
        &sb,
        Provider::Sunoapi,
        &[
            arg(&manifest),
            "--out",
            arg(&results_path),
            "-j",
            "1",
            "--rate",
            "unlimited",
        ],
    )
    .await;
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("credit"),
        "{}",
        stderr(&out)
    );
    let rows = results::latest(&results_path).unwrap();
    let count = |s| rows.iter().filter(|r| r.status == s).count();
    assert_eq!(count(Status::Submitted), 5, "{rows:?}");
    assert_eq!(
        count(Status::Pending),
        15,
        "the rest wait for credits: {rows:?}"
    );
    assert_eq!(sb.stats().accepted, 5);
    assert_eq!(
        sb.stats().requests,
        6,
        "the 429 was not retried: {:?}",
        sb.stats().responses
    );
}

/// sunoapi's 430 is its rate limit: retried through the pool's pause until
/// every job is in.
#[tokio::test(flavor = "multi_thread")]
async fn sunoapi_430_is_retried() {
    let sb = common::sandbox(SandboxConfig {
        provider: Provider::Sunoapi,
        fail_429: 0.4,
        fail_429_retry_after: 0,
        seed: 3,
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 10);
    let results_path = dir.path().join("jobs.results.csv");
    let out = run(
        &sb,
        Provider::Sunoapi,
        &[
            arg(&manifest),
            "--out",
            arg(&results_path),
            "--rate",
            "unlimited",
            "-v",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(sb.stats().injected.fail_429 > 0);
    let rows = results::latest(&results_path).unwrap();
    assert!(
        rows.iter().all(|r| r.status == Status::Submitted),
        "{rows:?}"
    );
}

/// gcui: kill -9 at several moments, then a clean rerun: no job is
/// accepted twice, and every recorded task is its two clip IDs.
#[tokio::test(flavor = "multi_thread")]
async fn gcui_survives_kill_9_without_submitting_twice() {
    let sb = common::sandbox(SandboxConfig {
        provider: Provider::Gcui,
        latency: Duration::from_millis(15),
        ..SandboxConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 300);
    let results_path = dir.path().join("jobs.results.csv");
    let bin = assert_cmd::cargo::cargo_bin("batchgen");
    for i in 0..6u64 {
        let mut child = std::process::Command::new(&bin)
            .args(["--provider", "gcui", "--base-url", &sb.base_url()])
            .args([
                arg(&manifest),
                "--out",
                arg(&results_path),
                "--rate",
                "200/s",
                "-q",
            ])
            .env_remove("BATCHGEN_API_KEY")
            .env_remove("BATCHGEN_PROVIDER")
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Mid-run whatever the machine's load does to start-up: after the
        // run's first request, then a little later each time.
        let baseline = sb.stats().requests;
        stats_until(&sb, "the run's first request", |s| s.requests > baseline).await;
        // simulates: a kill a little later into the run each time.
        tokio::time::sleep(Duration::from_millis(i * 40)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        results::read(&results_path).expect("the results file parses after kill -9");
    }
    let before = sb.stats().accepted;
    assert!(
        before > 0 && before < 300,
        "the kills landed mid-run: {before} accepted"
    );
    let out = run_with_env(
        vec![
            "--provider".into(),
            "gcui".into(),
            "--base-url".into(),
            sb.base_url(),
            arg(&manifest).into(),
            "--out".into(),
            arg(&results_path).into(),
            "--rate".into(),
            "unlimited".into(),
        ],
        Vec::new(),
    )
    .await;
    assert!(matches!(code(&out), 0 | 1), "{}", stderr(&out));
    let stats = sb.stats();
    assert!(
        stats.accepted_by_fingerprint.values().all(|&n| n == 1),
        "no job accepted twice"
    );
    let rows = results::latest(&results_path).unwrap();
    assert_eq!(rows.len(), 300);
    for row in &rows {
        match row.status {
            Status::Submitted => assert_eq!(row.task_id.split(',').count(), 2, "{row:?}"),
            Status::Unknown => {}
            other => panic!("{} is {other:?} after a full rerun", row.key),
        }
    }
}

/// A field a provider has no place for is refused before anything is
/// sent, naming the provider; the same field passes where it exists.
#[tokio::test(flavor = "multi_thread")]
async fn provider_specific_fields_are_refused_naming_the_provider() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "jobs.toml",
        "[[job]]\nid = \"a\"\nprompt = \"rain\"\ngender = \"female\"\nstyle_weight = 0.5\n\n[[job]]\nid = \"b\"\nprompt = \"sun\"\ncluster = \"default\"\n",
    );
    let validate = |provider: &'static str| {
        let manifest = manifest.clone();
        async move {
            run_with_env(
                vec![
                    "validate".into(),
                    arg(&manifest).into(),
                    "--provider".into(),
                    provider.into(),
                ],
                Vec::new(),
            )
            .await
        }
    };
    let out = validate("gcui").await;
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("jobs.toml:1: gender: is not supported by provider gcui"),
        "{err}"
    );
    assert!(
        err.contains("style_weight: is not supported by provider gcui"),
        "{err}"
    );
    let out = validate("sunoapi").await;
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cluster: is not supported by provider sunoapi"),
        "{err}"
    );
    assert!(!err.contains("gender"), "sunoapi takes gender: {err}");
    let out = validate("udioapi").await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// The commands that can only fail against the wrong host refuse early.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_host_and_callbackless_provider_are_refused_early() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 3);
    let out = run_with_env(
        vec![
            arg(&manifest).into(),
            "--base-url".into(),
            "https://api.kie.ai".into(),
        ],
        vec![("BATCHGEN_API_KEY".into(), "sk-test-key-1".into())],
    )
    .await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert!(stderr(&out).contains("--provider kie"), "{}", stderr(&out));
    let out = run_with_env(
        vec![
            "receive".into(),
            "--results".into(),
            arg(&dir.path().join("r.csv")).into(),
            "--provider".into(),
            "gcui".into(),
        ],
        vec![("BATCHGEN_CALLBACK_SECRET".into(), SECRET.into())],
    )
    .await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sends no callbacks"),
        "{}",
        stderr(&out)
    );

    // A results file of one provider collected as another's: refused
    // before a poll, both ways.
    let gcui = common::submitted_results(dir.path(), &[("a", "clip-1,clip-2")]);
    for provider in ["udioapi", "sunoapi"] {
        let out = run_with_env(
            vec![
                "collect".into(),
                arg(&gcui).into(),
                "--provider".into(),
                provider.into(),
                "--base-url".into(),
                "http://127.0.0.1:9".into(),
            ],
            vec![("BATCHGEN_API_KEY".into(), "sk-test-key-1".into())],
        )
        .await;
        assert_eq!(code(&out), 78, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("--provider the run used"),
            "{}",
            stderr(&out)
        );
    }
    let other = tempfile::tempdir().unwrap();
    let udio = common::submitted_results(other.path(), &[("a", "gen2abc123def456bksv")]);
    let out = run_with_env(
        vec![
            "collect".into(),
            arg(&udio).into(),
            "--provider".into(),
            "gcui".into(),
            "--base-url".into(),
            "http://127.0.0.1:9".into(),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
}

/// A sunoapi callback about another task than the job's (an earlier
/// submission of it, resent with --retry-unknown) is acknowledged but not
/// recorded; the job's own is.
#[tokio::test(flavor = "multi_thread")]
async fn receive_ignores_a_sunoapi_callback_about_another_task() {
    let dir = tempfile::tempdir().unwrap();
    let results_path = common::submitted_results(dir.path(), &[("job-a", "task-now")]);
    let catalog_path = dir.path().join("jobs.catalog.csv");
    let receiver = Receiver::start(ReceiveConfig {
        webhook_key: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        provider: Provider::Sunoapi,
        secret: Secret::new(SECRET),
        results: results_path,
        catalog: catalog_path.clone(),
    })
    .await
    .unwrap();
    let url = format!("http://{}/callback/{SECRET}/job-a", receiver.addr());
    let body = |task: &str| {
        serde_json::json!({"code": 200, "msg": "All generated successfully.", "data": {
            "callbackType": "complete", "task_id": task, "data": [
                {"id": format!("{task}-1"), "audio_url": "https://cdn.example/1.mp3", "duration": 100.5,
                 "title": "T", "tags": "lofi", "model_name": "chirp-v3-5", "createTime": "2025-01-01 00:00:00"},
                {"id": format!("{task}-2"), "audio_url": "https://cdn.example/2.mp3", "duration": 99.0,
                 "title": "T", "tags": "lofi", "model_name": "chirp-v3-5", "createTime": "2025-01-01 00:00:00"}]}})
    };
    let client = reqwest::Client::new();
    for task in ["task-before", "task-now"] {
        let answer = client.post(&url).json(&body(task)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{task}: acknowledged");
    }
    receiver.shutdown().await.unwrap();
    let rows = catalog(&catalog_path);
    let ids: Vec<&str> = rows.iter().map(|r| r.clip_id.as_str()).collect();
    assert_eq!(
        ids,
        ["task-now-1", "task-now-2"],
        "only the job's own task: {rows:?}"
    );
    assert!(
        rows.iter()
            .all(|r| r.task_id == "task-now" && r.status == "complete")
    );
}
