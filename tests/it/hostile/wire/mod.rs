//! A hostile wire: servers on 127.0.0.1:0 that redirect, answer IDs that
//! don't add up, echo the key, rate-limit without end or lack endpoints;
//! settings that would send the key in clear text or make every row
//! `unknown`; feed and media hosts that echo the key into the data
//! batchgen keeps (clip titles, IDs, URLs: catalog cells, file names, ID3
//! tags), redirects that would carry a signed URL to another host, and
//! answers whose body never arrives; and (in the submodules) a receiver
//! under a slow-loris flood and signals sent to the real binary. Each test
//! asserts what the server accepted, the exit code, what is on disk, and
//! that no secret (the API key, the callback secret) appears in any output.

mod host;
mod receive;
mod server;
mod signals;

use std::path::Path;

use batchgen::files::results::Status;
use host::clip;
use server::{Got, KEY, json, no_secret, redirect, serve, unique_ok};

use super::v2;
use crate::common::*;

/// `batchgen credits` against `url` with the test key.
async fn credits(url: &str) -> std::process::Output {
    let args = ["credits", "--base-url", url].map(String::from).to_vec();
    run_with_env(args, vec![("BATCHGEN_API_KEY".into(), KEY.into())]).await
}

/// A CSV manifest whose ids are also the prompts (so a server can answer
/// per row).
fn per_row_manifest(dir: &std::path::Path, ids: &[&str]) -> std::path::PathBuf {
    let mut csv = String::from("id,prompt\n");
    for id in ids {
        csv.push_str(&format!("{id},{id}\n"));
    }
    write(dir, "jobs.csv", &csv)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_on_submit_is_never_followed_and_stops_the_run_as_a_config_error() {
    for status in [301u16, 302, 303, 307, 308] {
        let server = serve(
            move |got: &Got, _| match (got.method.as_str(), got.path.as_str()) {
                ("POST", "/api/v2/generate") => redirect(
                    status,
                    "https://user:pw@elsewhere.example/api/generate?token=tok-123",
                ),
                ("GET", "/api/v2/credits") => json(404, "{}"),
                // What a followed redirect would have found.
                _ => json(200, r#"{"workId":"made-up-by-a-get"}"#),
            },
        )
        .await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = csv_manifest(dir.path(), 3);
        let args = [manifest.to_str().unwrap(), "--rate", "unlimited", "-j", "1"];
        let out = run_at(&server.url, KEY, &args).await;
        let err = stderr(&out);
        assert_eq!(code(&out), 78, "{status}: {err}");
        let expected = format!(
            "HTTP {status} to https://elsewhere.example/api/generate?token=<redacted>: fix --base-url"
        );
        assert!(err.contains(&expected), "{err}");
        assert!(!err.contains("tok-123") && !err.contains("pw@"), "{err}");
        let got = server.got();
        assert!(
            !got.iter()
                .any(|g| g.method == "GET" && g.path == "/api/v2/generate"),
            "the redirect was followed: {got:?}"
        );
        assert_eq!(
            server.count("POST", "/api/v2/generate"),
            1,
            "the first answer stops the run"
        );
        let rows = results(&dir.path().join("jobs.results.csv"));
        assert!(rows.iter().all(|r| r.status == Status::Pending), "{rows:?}");
        assert!(rows.iter().all(|r| r.task_id.is_empty()), "{rows:?}");
        assert!(rows[0].error.contains(&expected), "{:?}", rows[0]);
        no_secret(&out, &[]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirecting_credits_endpoint_stops_before_anything_is_sent_and_is_not_a_refused_key() {
    let server = serve(|got: &Got, _| match got.path.as_str() {
        "/api/v2/credits" => redirect(302, "/login"),
        _ => unique_ok(got),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let out = run_at(&server.url, KEY, &[manifest.to_str().unwrap()]).await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HTTP 302 to http://127.0.0.1:"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.count("POST", "/api/v2/generate"), 0);
    assert_eq!(server.count("GET", "/login"), 0, "never followed");

    let credits = credits(&server.url).await;
    assert_eq!(code(&credits), 78, "not 77: {}", stderr(&credits));
    assert!(stderr(&credits).contains("/login: fix --base-url"));
    no_secret(&out, &[]);
    no_secret(&credits, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn task_ids_are_kept_as_sent_and_odd_or_repeated_ones_are_not_trusted() {
    let server = serve(|got: &Got, _| {
        let prompt = got.prompt();
        match prompt.as_str() {
            "big" => json(200, r#"{"workId":123456789012345678901234567890}"#),
            "ctrl" => json(200, r#"{"workId":"abc\u0001def"}"#),
            "long" => json(200, &format!(r#"{{"workId":"{}"}}"#, "x".repeat(300))),
            "float" => json(200, r#"{"workId":1.5e3}"#),
            "dup-1" | "dup-2" => json(200, r#"{"workId":"same-task"}"#),
            "echo" => json(200, &format!(r#"{{"workId":"{KEY}"}}"#)),
            _ => unique_ok(got),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ids = [
        "big", "ctrl", "long", "float", "dup-1", "dup-2", "echo", "fine",
    ];
    let manifest = per_row_manifest(dir.path(), &ids);
    let args = [manifest.to_str().unwrap(), "--rate", "unlimited", "-j", "1"];
    let out = run_at(&server.url, KEY, &args).await;
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(
        server.count("POST", "/api/v2/generate"),
        ids.len(),
        "each sent once"
    );

    let path = dir.path().join("jobs.results.csv");
    let rows = results(&path);
    let row = |id: &str| rows.iter().find(|r| r.key == id).unwrap().clone();
    assert_eq!(
        (row("big").status, row("big").task_id),
        (
            Status::Submitted,
            "123456789012345678901234567890".to_owned()
        )
    );
    for id in ["ctrl", "long", "float", "echo"] {
        let r = row(id);
        assert_eq!(r.status, Status::Unknown, "{r:?}");
        assert!(r.error.contains("not a usable task ID"), "{r:?}");
        assert!(r.task_id.is_empty() && r.error.len() < 400, "{r:?}");
    }
    assert_eq!(row("dup-1").status, Status::Submitted);
    let second = row("dup-2");
    assert_eq!(second.status, Status::Unknown, "{second:?}");
    assert!(
        second.error.contains("\"same-task\"") && second.error.contains("already gave"),
        "{second:?}"
    );
    assert_eq!(row("fine").status, Status::Submitted);
    let on_disk = std::fs::read_to_string(&path).unwrap();
    assert!(
        !on_disk.contains(KEY),
        "the echoed key reached the results file"
    );
    assert!(!on_disk.contains('\u{1}'));
    no_secret(&out, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_echoing_the_key_never_gets_it_into_any_output() {
    let message = format!("bad request for {KEY} via http://u:pw@x.example/?token=t0k");
    let server = serve(move |got: &Got, _| match got.prompt().as_str() {
        "four-hundred" => json(
            400,
            &serde_json::json!({"code": 400, "message": message}).to_string(),
        ),
        "refused" => json(
            403,
            &format!(r#"{{"code":403,"message":"key {KEY} not allowed"}}"#),
        ),
        _ => unique_ok(got),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = per_row_manifest(dir.path(), &["four-hundred", "refused"]);
    let summary = dir.path().join("summary.json");
    let args = [
        manifest.to_str().unwrap(),
        "-j",
        "1",
        "--rate",
        "unlimited",
        "--summary-json",
        summary.to_str().unwrap(),
    ];
    let out = run_at(&server.url, KEY, &args).await;
    assert_eq!(code(&out), 77, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("HTTP 403").count(), 1, "said once: {err}");
    let rows = std::fs::read_to_string(dir.path().join("jobs.results.csv")).unwrap();
    let summary = std::fs::read_to_string(&summary).unwrap();
    for text in [&rows, &summary] {
        assert!(
            !text.contains(KEY) && !text.contains("t0k") && !text.contains("pw@"),
            "{text}"
        );
    }
    assert!(rows.contains("bad request for <redacted>"), "{rows}");
    no_secret(&out, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_and_the_dry_run_mask_the_callback_secret_the_same_way() {
    let secret = "cb-secret-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 3);
    let summary = dir.path().join("s.json");
    let env = vec![("BATCHGEN_CALLBACK_SECRET".to_owned(), secret.to_owned())];
    let sandbox = run_with_env(
        [
            manifest.to_str().unwrap(),
            "--sandbox",
            "--rate",
            "unlimited",
            "-v",
            "--callback-base",
            "https://hooks.example.com/",
            "--summary-json",
            summary.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec(),
        env.clone(),
    )
    .await;
    assert_eq!(code(&sandbox), 0, "{}", stderr(&sandbox));
    let err = stderr(&sandbox);
    assert!(
        err.contains(
            "not posting callbacks to https://hooks.example.com/callback/<redacted>/job-0"
        ),
        "the sandbox's warning still names the URL, masked: {err}"
    );
    let dry = run_with_env(
        [
            manifest.to_str().unwrap(),
            "--dry-run",
            "--callback-base",
            "https://hooks.example.com/",
        ]
        .map(String::from)
        .to_vec(),
        env,
    )
    .await;
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("/callback/<redacted>/job-0"),
        "{}",
        String::from_utf8_lossy(&dry.stdout)
    );
    let results = std::fs::read_to_string(dir.path().join("jobs.sandbox.results.csv")).unwrap();
    assert!(!results.contains(secret));
    assert!(!std::fs::read_to_string(&summary).unwrap().contains(secret));
    no_secret(&sandbox, &[secret]);
    no_secret(&dry, &[secret]);

    let weak = run_with_env(
        [
            manifest.to_str().unwrap(),
            "--dry-run",
            "--callback-base",
            "https://h.example/",
        ]
        .map(String::from)
        .to_vec(),
        vec![(
            "BATCHGEN_CALLBACK_SECRET".to_owned(),
            "weak-secret".to_owned(),
        )],
    )
    .await;
    assert_eq!(code(&weak), 78, "{}", stderr(&weak));
    assert!(stderr(&weak).contains("at least 16"), "{}", stderr(&weak));
    no_secret(&weak, &["weak-secret"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_the_key_goes_to_is_shown_and_plain_http_elsewhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let job = "[[job]]\nid = \"a\"\nprompt = \"a calm song\"\n";
    let other = write(
        dir.path(),
        "other.toml",
        &format!("[run]\nbase_url = \"https://other.example/api/\"\n{job}"),
    );
    let validate = run_with_env(
        vec!["validate".into(), other.to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&validate), 0, "{}", stderr(&validate));
    let shown = String::from_utf8_lossy(&validate.stdout).into_owned();
    assert!(
        shown.contains("API key goes to: https://other.example/api/ ([run] base_url"),
        "{shown}"
    );
    let dry = run_with_env(
        vec![other.to_str().unwrap().into(), "--dry-run".into()],
        vec![],
    )
    .await;
    let shown = String::from_utf8_lossy(&dry.stdout).into_owned();
    assert!(
        shown
            .contains("the API key would go to https://other.example/api/ (from [run] base_url in"),
        "{shown}"
    );

    let insecure = write(
        dir.path(),
        "insecure.toml",
        &format!("[run]\nbase_url = \"http://evil.example/\"\n{job}"),
    );
    let path = insecure.to_str().unwrap().to_owned();
    for args in [
        vec!["validate".to_owned(), path.clone()],
        vec![path.clone(), "--dry-run".into()],
        vec![path.clone()],
    ] {
        let out = run_with_env(args.clone(), vec![("BATCHGEN_API_KEY".into(), KEY.into())]).await;
        assert_eq!(code(&out), 78, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--allow-insecure-http"),
            "{}",
            stderr(&out)
        );
        no_secret(&out, &[]);
    }
    assert!(
        !dir.path().join("insecure.results.csv").exists(),
        "nothing was started"
    );
    let allowed = run_with_env(
        vec![
            "validate".into(),
            path.clone(),
            "--allow-insecure-http".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&allowed), 0, "{}", stderr(&allowed));
    let refused = run_with_env(
        vec![
            "credits".into(),
            "--base-url".into(),
            "http://10.1.2.3/".into(),
        ],
        vec![("BATCHGEN_API_KEY".into(), KEY.into())],
    )
    .await;
    assert_eq!(code(&refused), 78, "{}", stderr(&refused));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_does_not_use_up_a_rows_attempts() {
    // ~10 % 429 and ~15 % 500, spread by a fixed hash of the request number.
    let server = serve(|got: &Got, n| {
        let roll = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57; // 0..128
        if got.prompt() == "stubborn" && got.prompt_count <= 8 {
            return server::too_many(0);
        }
        match roll {
            0..=12 => server::too_many(0),
            13..=31 => json(500, r#"{"code":500,"message":"oops"}"#),
            _ => unique_ok(got),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut ids: Vec<String> = (0..150).map(|i| format!("row-{i}")).collect();
    ids.push("stubborn".into());
    let manifest = per_row_manifest(
        dir.path(),
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let args = [
        manifest.to_str().unwrap(),
        "--rate",
        "unlimited",
        "-j",
        "8",
        "--max-attempts",
        "6",
    ];
    let out = run_at(&server.url, KEY, &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = results(&dir.path().join("jobs.results.csv"));
    assert!(
        rows.iter().all(|r| r.status == Status::Submitted),
        "{rows:?}"
    );
    let stubborn = rows.iter().find(|r| r.key == "stubborn").unwrap();
    assert!(
        stubborn.attempts >= 9,
        "eight 429s, then an answer: {stubborn:?}"
    );
    assert!(server.count_status(429) >= 20, "the server did rate-limit");

    // A host answering nothing but 429 is bounded by the pool's breaker.
    let always = serve(|_: &Got, _| server::too_many(0)).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 5);
    let out = run_at(
        &always.url,
        KEY,
        &[manifest.to_str().unwrap(), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 69, "{}", stderr(&out));
    assert!(stderr(&out).contains("429"), "{}", stderr(&out));
    let sent = always.count("POST", "/api/v2/generate");
    assert!((100..=110).contains(&sent), "{sent} requests");
    let rows = results(&dir.path().join("jobs.results.csv"));
    assert!(rows.iter().all(|r| r.status == Status::Pending), "{rows:?}");
    no_secret(&out, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn credits_messages_name_the_real_problem() {
    let missing = serve(|_: &Got, _| json(404, "not here")).await;
    let out = credits(&missing.url).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 69, "{err}");
    assert!(
        err.contains("no balance from http://127.0.0.1:") && err.contains("/api/v2/credits"),
        "{err}"
    );
    assert!(
        !err.contains("pending") && !err.contains("unreachable"),
        "{err}"
    );

    let refused = serve(|_: &Got, _| json(401, r#"{"code":401,"message":"Unauthorized"}"#)).await;
    let out = credits(&refused.url).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 77, "{err}");
    assert_eq!(err.matches("HTTP 401").count(), 1, "{err}");
    no_secret(&out, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn collect_errors_name_the_catalog_and_the_download_folder() {
    let sb = sandbox(Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let out = run_bin(&sb, &[manifest.to_str().unwrap(), "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let results = dir.path().join("jobs.results.csv");
    let catalog = dir.path().join("jobs.catalog.csv");
    let collect = |extra: Vec<String>| {
        let mut args = vec![
            "collect".to_owned(),
            results.to_str().unwrap().to_owned(),
            "--base-url".into(),
            sb.base_url(),
        ];
        args.extend(extra);
        run_with_env(args, vec![("BATCHGEN_API_KEY".into(), sb.key().into())])
    };
    {
        let _held = batchgen::files::results::Lock::acquire(&catalog).unwrap();
        let out = collect(vec![]).await;
        let err = stderr(&out);
        assert_eq!(code(&out), 75, "{err}");
        assert!(err.contains("--catalog") && !err.contains("--out"), "{err}");
    }
    // A "folder" under a regular file: unwritable even for root.
    let file = write(dir.path(), "not-a-folder", "x");
    let out = collect(vec![
        "--download".into(),
        file.join("mp3").to_str().unwrap().into(),
    ])
    .await;
    let err = stderr(&out);
    assert_eq!(code(&out), 73, "{err}");
    assert!(
        err.contains("cannot write into the download folder") && err.contains("--download"),
        "{err}"
    );
    assert!(!err.contains("results file"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn values_that_would_make_every_row_unknown_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let m = manifest.to_str().unwrap();
    for (args, flag) in [
        (vec![m, "--timeout", "1ns"], "--timeout"),
        (vec![m, "--timeout", "50ms"], "--timeout"),
        (vec![m, "-j", "0"], "--concurrency"),
        (vec![m, "--max-attempts", "0"], "--max-attempts"),
        (
            vec!["collect", "x.results.csv", "--timeout", "1ns"],
            "--timeout",
        ),
        (
            vec!["collect", "x.results.csv", "--download-concurrency", "0"],
            "--download-concurrency",
        ),
    ] {
        let out = run_with_env(
            args.iter().map(|s| s.to_string()).collect(),
            vec![("BATCHGEN_API_KEY".into(), KEY.into())],
        )
        .await;
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{args:?}: {}", stderr(&out));
    }
    let in_manifest = write(
        dir.path(),
        "fast.toml",
        "[run]\ntimeout = \"1ns\"\n[[job]]\nprompt = \"a calm song\"\n",
    );
    let out = run_with_env(
        vec!["validate".into(), in_manifest.to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("timeout 1ns is too short"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("jobs.results.csv").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirecting_feed_stops_collect_as_a_config_error_and_is_never_followed() {
    let sb = sandbox(Default::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = csv_manifest(dir.path(), 2);
    let out = run_bin(&sb, &[manifest.to_str().unwrap(), "--rate", "unlimited"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let results = dir.path().join("jobs.results.csv");

    let server = serve(|got: &Got, _| match got.path.as_str() {
        "/api/v2/feed" => redirect(301, "https://elsewhere.example/feed?token=tok-456"),
        // What a followed redirect would have found.
        _ => json(
            200,
            r#"{"code":200,"data":{"type":"SUCCESS","response_data":[]}}"#,
        ),
    })
    .await;
    let args = [
        "collect",
        results.to_str().unwrap(),
        "--base-url",
        &server.url,
        "--poll-interval",
        "100ms",
    ]
    .map(String::from)
    .to_vec();
    let out = run_with_env(args, vec![("BATCHGEN_API_KEY".into(), KEY.into())]).await;
    let err = stderr(&out);
    assert_eq!(code(&out), 78, "{err}");
    assert!(
        err.contains("HTTP 301 to https://elsewhere.example/feed?token=<redacted>: fix --base-url"),
        "{err}"
    );
    assert!(!err.contains("tok-456"), "{err}");
    assert_eq!(server.count("GET", "/feed"), 0, "never followed");
    // Polls are paced at --poll-rate (2/s): the first redirect stops
    // collect long before the rest could go out.
    let polls = server.count("GET", "/api/v2/feed");
    assert!((1..=2).contains(&polls), "{polls} polls");
    no_secret(&out, &[]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_id_an_earlier_run_recorded_is_not_trusted_for_another_job() {
    // A server (or a proxy in front of it) that hands out one task ID,
    // even as a formula: a spreadsheet-safe `'` on disk must not hide it.
    for task in ["same-task", "=1+2"] {
        let server = serve(move |_: &Got, _| json(200, &format!(r#"{{"workId":"{task}"}}"#))).await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = per_row_manifest(dir.path(), &["first"]);
        let args = [manifest.to_str().unwrap(), "--rate", "unlimited", "-j", "1"];
        let out = run_at(&server.url, KEY, &args).await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));

        // The next run sends a new row and gets the same answer.
        per_row_manifest(dir.path(), &["first", "second"]);
        let out = run_at(&server.url, KEY, &args).await;
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        assert_eq!(
            server.count("POST", "/api/v2/generate"),
            2,
            "each sent once"
        );
        let rows = results(&dir.path().join("jobs.results.csv"));
        let row = |id: &str| rows.iter().find(|r| r.key == id).unwrap().clone();
        assert_eq!(
            (row("first").status, row("first").task_id),
            (Status::Submitted, task.to_owned())
        );
        let second = row("second");
        assert_eq!(second.status, Status::Unknown, "{second:?}");
        assert!(second.task_id.is_empty(), "{second:?}");
        assert!(
            second
                .error
                .contains("already gave another job in an earlier run"),
            "{second:?}"
        );
        no_secret(&out, &[]);
    }
}

// Hosts that echo the key into the data batchgen keeps, redirects that
// would carry a signed URL along, and answers whose body never arrives.

/// The API key the tests against a [`host`] (or a raw one) run with: long
/// enough to be a real secret.
const HOST_KEY: &str = "sk-wire2-test-key-0123456789";

/// A results file with one submitted task, `t-1` for `job-1`.
fn one_task_results(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "r.csv",
        "id,line,task_id,status,attempts,http_status,error,submitted_at,fingerprint\n\
         job-1,2,t-1,submitted,1,200,,,\n",
    )
}

/// Every file under `dir`, with its bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(tree(&path));
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

/// Neither the name nor the bytes of any file under `dir` hold `secret`.
fn nowhere_on_disk(dir: &Path, secret: &str) {
    for (name, bytes) in tree(dir) {
        assert!(!name.contains(secret), "{secret:?} in a file name: {name}");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(secret),
            "{secret:?} inside {name}: {text:.300}"
        );
    }
}

async fn collect(base: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    let results = one_task_results(dir);
    let download = dir.join("dl");
    let mut args = vec![
        "collect".to_owned(),
        results.display().to_string(),
        "--base-url".into(),
        base.into(),
        "--poll-interval".into(),
        "1s".into(),
        "--deadline".into(),
        "20s".into(),
        "--download".into(),
        download.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run_with_env(args, vec![("BATCHGEN_API_KEY".into(), HOST_KEY.into())]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_echoing_the_key_gets_it_into_no_catalog_cell_file_name_or_tag() {
    let host = host::start(|base| {
        let echo = |i: u32| {
            let mut c = clip(
                &format!("c{i}-{HOST_KEY}"),
                &format!("Song {HOST_KEY} {i}"),
                &format!("{base}/media/{i}.mp3?k={HOST_KEY}"),
            );
            c["tags"] = format!("lofi {HOST_KEY}").into();
            c["model_name"] = HOST_KEY.into();
            c
        };
        v2(vec![echo(1), echo(2)])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = collect(&host.base, dir.path(), &["--name", "{title_slug}-{index}"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!text.contains(HOST_KEY), "{text}");
    // Both songs were fetched and kept, under names without the key.
    let songs: Vec<String> = tree(&dir.path().join("dl"))
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.ends_with(".mp3"))
        .collect();
    assert_eq!(songs.len(), 2, "{songs:?}");
    nowhere_on_disk(dir.path(), HOST_KEY);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_echoing_the_secrets_gets_them_into_no_catalog_cell() {
    use batchgen::engine::collect::receive::{ReceiveConfig, Receiver};
    use batchgen::settings::callback_url;
    use batchgen::util::redact::Secret;
    // The key is registered as the binary registers it; the callback
    // secret by its `Secret`.
    let _key = Secret::new(HOST_KEY);
    let callback_secret = "cb-wire2-secret-0123456789abcdef";
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("r.catalog.csv");
    let receiver = Receiver::start(ReceiveConfig {
        webhook_key: None,
        listen: ([127, 0, 0, 1], 0).into(),
        provider: Default::default(),
        secret: Secret::new(callback_secret),
        results: one_task_results(dir.path()),
        catalog: catalog.clone(),
    })
    .await
    .unwrap();
    let base = url::Url::parse(&format!("http://{}", receiver.addr())).unwrap();
    let mut echo = clip(
        &format!("c1-{callback_secret}"),
        &format!("{HOST_KEY} / {callback_secret}"),
        &format!("https://cdn.example/{HOST_KEY}.mp3"),
    );
    echo["tags"] = callback_secret.into();
    let body = serde_json::to_vec(&vec![echo]).unwrap();
    let answer = reqwest::Client::new()
        .post(callback_url(&base, callback_secret, "job-1"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    receiver.shutdown().await.unwrap();
    let written = std::fs::read_to_string(&catalog).unwrap();
    assert!(written.contains("job-1,t-1,1,"), "{written}");
    for secret in [HOST_KEY, callback_secret] {
        assert!(!written.contains(secret), "{secret:?}: {written}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirected_download_does_not_carry_the_signed_url_along() {
    let host = host::start(|base| {
        v2(vec![
            clip(
                "c1",
                "One",
                &format!("{base}/redirect/1.mp3?sig=signed-token-1"),
            ),
            clip(
                "c2",
                "Two",
                &format!("{base}/redirect/2.mp3?sig=signed-token-2"),
            ),
        ])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let out = collect(&host.base, dir.path(), &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let media: Vec<_> = host
        .seen()
        .into_iter()
        .filter(|s| s.uri.starts_with("/media/"))
        .collect();
    assert_eq!(media.len(), 2, "{media:?}");
    for seen in media {
        // No header (a `Referer`, an `Authorization`) of the request the
        // redirect answered goes to where it points.
        for (name, value) in &seen.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            assert!(
                !value.contains("signed-token") && !value.contains(HOST_KEY),
                "{name}: {value}"
            );
        }
        assert!(seen.headers.get("referer").is_none(), "{seen:?}");
    }
}

/// A host on 127.0.0.1:0 that reads each request head and answers the raw
/// bytes `answer`, then closes the connection.
async fn raw_host(answer: &'static [u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn a_balance_cut_off_or_never_answered_says_so_and_not_that_a_task_may_exist() {
    let cases: [(&[u8], &str); 2] = [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n{\"data\":{\"cre",
            "connection lost while reading the answer",
        ),
        (b"", "connection lost"),
    ];
    for (answer, says) in cases {
        let base = raw_host(answer).await;
        let args = ["credits", "--base-url", &base].map(String::from).to_vec();
        let out = run_with_env(args, vec![("BATCHGEN_API_KEY".into(), HOST_KEY.into())]).await;
        let text = stderr(&out);
        assert_eq!(code(&out), 69, "{text}");
        assert!(text.contains(says), "{says:?}: {text}");
        // A GET creates nothing, and a cut answer is not a host without
        // `data.credits`.
        for wrong in ["may have been accepted", "no data.credits"] {
            assert!(!text.contains(wrong), "{wrong:?}: {text}");
        }
        assert!(!text.contains(HOST_KEY), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_file_with_a_bom_and_crlf_is_read_as_the_key() {
    let base = raw_host(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 34\r\n\r\n{\"code\":200,\"data\":{\"credits\":42}}",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("bom", format!("\u{feff}{HOST_KEY}\r\n")),
        ("crlf", format!("{HOST_KEY}\r\n")),
    ] {
        let path = write(dir.path(), name, &text);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let args = ["credits", "--base-url", &base, "--api-key-file"]
            .iter()
            .map(|s| s.to_string())
            .chain([path.display().to_string()])
            .collect();
        let out = run_with_env(args, vec![]).await;
        assert_eq!(code(&out), 0, "{name}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("42 credits left"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_url_with_a_password_or_query_is_refused_before_anything_is_sent() {
    let host = host::start(|_| v2(vec![])).await;
    let authority = host.base.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "jobs.csv", "id,prompt\njob-1,a calm song\n");
    let password = "proxy-pass-0123456789";
    for base in [
        format!("http://me:{password}@{authority}/"),
        format!("http://{password}@{authority}/"),
        format!("http://{authority}/?token={password}"),
    ] {
        for command in [
            vec!["credits".to_owned(), "--base-url".into(), base.clone()],
            vec![
                "run".to_owned(),
                manifest.display().to_string(),
                "--base-url".into(),
                base.clone(),
            ],
            vec![
                "collect".to_owned(),
                one_task_results(dir.path()).display().to_string(),
                "--base-url".into(),
                base.clone(),
            ],
        ] {
            let out = run_with_env(
                command.clone(),
                vec![("BATCHGEN_API_KEY".into(), HOST_KEY.into())],
            )
            .await;
            let text = stderr(&out);
            assert_eq!(code(&out), 78, "{command:?}: {text}");
            assert!(!text.contains(password), "{command:?}: {text}");
        }
    }
    // Nothing reached the host: no second `Authorization` went out.
    assert!(host.seen().is_empty(), "{:?}", host.seen());
}
