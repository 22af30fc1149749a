//! What goes on the wire for each kind of job: the exact request body and
//! the path, as a capturing server on 127.0.0.1:0 received them from the
//! real binary.
//!
//! API.md (revision 2, "Submit"): a job with a `callback_url` goes to
//! `POST /api/generate`, one without to `POST /api/v2/generate`; optional
//! fields the job does not set are left out (never `null`); the weights are
//! JSON numbers with at most two decimals; `gender` is `"male"` or
//! `"female"`. Bodies are compared as bytes, so a weight sent as `"0.65"` or
//! `0.6500000001`, a stray `null`, or a field in the fingerprint-only
//! defaults would all fail here.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::post;
use batchgen::sandbox::SandboxConfig;

use crate::common::*;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: String,
    content_type: Option<String>,
    body: String,
}

type Log = Arc<Mutex<Vec<Seen>>>;

async fn capture(
    State(log): State<Log>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut log = log.lock().unwrap();
    let n = log.len();
    log.push(Seen {
        path: uri.path().to_owned(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let id = format!("gen2task{n}");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        format!(
            r#"{{"code":200,"message":"success","workId":"{id}","data":{{"task_id":"{id}"}}}}"#
        ),
    )
}

/// A server that records every POST to either generate path (and to any
/// other path, so a request to the wrong one shows up as what it is).
async fn capturing_server() -> (String, Log) {
    let log: Log = Arc::default();
    let app = Router::new()
        .route("/api/generate", post(capture))
        .route("/api/v2/generate", post(capture))
        .route("/custom/plain", post(capture))
        .route("/custom/hook", post(capture))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

/// One job per mode (inspiration, description, custom, custom
/// instrumental), with chirp-v5 and every newer field somewhere, two of
/// them with a callback_url.
const MANIFEST: &str = r#"
[defaults]
model = "chirp-v5"

[[job]]
id = "inspiration"
gpt_description_prompt = "A folk ballad about a lighthouse keeper"
gender = "female"
style_weight = 0.65

[[job]]
id = "description"
prompt = "An upbeat song about finishing your taxes"
gpt_description_prompt = "Keep it under two minutes"
model = "chirp-v4-5"
weirdness_constraint = 0
audio_weight = 1
callback_url = "https://example.com/hook/1"

[[job]]
id = "custom"
custom_mode = true
title = "Rainy Window"
style = "lofi, chill, 80 bpm"
tags = "heavy metal"
prompt = "[Verse]\nDrops on the glass"
gender = "male"
style_weight = 0.5
weirdness_constraint = 0.07

[[job]]
id = "instrumental"
custom_mode = true
make_instrumental = true
title = "Deep Focus"
style = "ambient, minimal"
audio_weight = 0.3
callback_url = "https://example.com/hook/2"
"#;

/// The same jobs as CSV cells: text to be parsed, so `0.50` and `MALE`.
const MANIFEST_CSV: &str = "\
id,prompt,gpt_description_prompt,title,style,tags,custom_mode,make_instrumental,model,gender,style_weight,weirdness_constraint,audio_weight,callback_url
inspiration,,A folk ballad about a lighthouse keeper,,,,,,chirp-v5,female,0.65,,,
description,An upbeat song about finishing your taxes,Keep it under two minutes,,,,,,chirp-v4-5,,,0.00,1,https://example.com/hook/1
custom,\"[Verse]
Drops on the glass\",,Rainy Window,\"lofi, chill, 80 bpm\",heavy metal,yes,,chirp-v5,MALE,0.50,.07,,
instrumental,,,Deep Focus,\"ambient, minimal\",,true,true,chirp-v5,,,,0.3,https://example.com/hook/2
";

/// What API.md says each job's request is: (path, body).
fn expected() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "/api/v2/generate",
            r#"{"gpt_description_prompt":"A folk ballad about a lighthouse keeper","model":"chirp-v5","gender":"female","style_weight":0.65}"#,
        ),
        (
            "/api/generate",
            r#"{"prompt":"An upbeat song about finishing your taxes","gpt_description_prompt":"Keep it under two minutes","model":"chirp-v4-5","weirdness_constraint":0.0,"audio_weight":1.0,"callback_url":"https://example.com/hook/1"}"#,
        ),
        (
            "/api/v2/generate",
            r#"{"prompt":"[Verse]\nDrops on the glass","title":"Rainy Window","style":"lofi, chill, 80 bpm","tags":"heavy metal","custom_mode":true,"model":"chirp-v5","gender":"male","style_weight":0.5,"weirdness_constraint":0.07}"#,
        ),
        (
            "/api/generate",
            r#"{"title":"Deep Focus","style":"ambient, minimal","custom_mode":true,"make_instrumental":true,"model":"chirp-v5","audio_weight":0.3,"callback_url":"https://example.com/hook/2"}"#,
        ),
    ]
}

fn seen(log: &Log) -> Vec<(String, String)> {
    let log = log.lock().unwrap();
    for s in log.iter() {
        assert_eq!(s.content_type.as_deref(), Some("application/json"), "{s:?}");
    }
    log.iter()
        .map(|s| (s.path.clone(), s.body.clone()))
        .collect()
}

fn as_owned(pairs: Vec<(&str, &str)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .map(|(p, b)| (p.to_owned(), b.to_owned()))
        .collect()
}

/// Submits `manifest` one request at a time (so they arrive in manifest
/// order) and returns what the server received.
async fn submit(manifest: &std::path::Path, extra: &[&str]) -> Vec<(String, String)> {
    let (url, log) = capturing_server().await;
    let mut args = vec![manifest.to_str().unwrap(), "--rate", "unlimited", "-j", "1"];
    args.extend_from_slice(extra);
    let out = run_at(&url, "k", &args).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("4 submitted, 0 failed"),
        "{}",
        stderr(&out)
    );
    seen(&log)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_mode_validates_and_sends_exactly_the_documented_body_to_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "jobs.toml", MANIFEST);

    let out = run_with_env(
        vec!["validate".into(), manifest.to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(summary.contains("4 jobs, all valid"), "{summary}");
    assert!(
        summary
            .contains("modes:   description 1 · inspiration 1 · custom 1 · custom instrumental 1"),
        "{summary}"
    );
    assert!(
        summary.contains("models:  chirp-v4-5 1 · chirp-v5 3"),
        "{summary}"
    );

    assert_eq!(submit(&manifest, &[]).await, as_owned(expected()));

    // The results file holds the task ids the server answered, per job.
    let rows = results(&dir.path().join("jobs.results.csv"));
    let ids: Vec<_> = rows
        .iter()
        .map(|r| (r.key.as_str(), r.task_id.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("inspiration", "gen2task0"),
            ("description", "gen2task1"),
            ("custom", "gen2task2"),
            ("instrumental", "gen2task3"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_cells_become_the_same_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "jobs.csv", MANIFEST_CSV);
    assert_eq!(submit(&manifest, &[]).await, as_owned(expected()));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generate_paths_are_settings() {
    let dir = tempfile::tempdir().unwrap();
    // From [run]...
    let with_run = format!(
        "[run]\ngenerate_path = \"/custom/plain\"\ncallback_generate_path = \"custom/hook\"\n{MANIFEST}"
    );
    let manifest = write(dir.path(), "jobs.toml", &with_run);
    let paths: Vec<_> = submit(&manifest, &[])
        .await
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert_eq!(
        paths,
        [
            "/custom/plain",
            "/custom/hook",
            "/custom/plain",
            "/custom/hook"
        ]
    );
    // ... and from the flags, which win over [run].
    let manifest = write(dir.path(), "flags.toml", &with_run);
    let paths: Vec<_> = submit(
        &manifest,
        &[
            "--generate-path",
            "api/generate",
            "--callback-generate-path",
            "/api/v2/generate",
        ],
    )
    .await
    .into_iter()
    .map(|(path, _)| path)
    .collect();
    assert_eq!(
        paths,
        [
            "/api/generate",
            "/api/v2/generate",
            "/api/generate",
            "/api/v2/generate"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_base_sends_every_job_to_the_callback_path() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "jobs.toml", MANIFEST);
    let (url, log) = capturing_server().await;
    let out = run_with_env(
        vec![
            "--base-url".into(),
            url,
            manifest.to_str().unwrap().into(),
            "--rate".into(),
            "unlimited".into(),
            "-j".into(),
            "1".into(),
            "--callback-base".into(),
            "https://hooks.example.com".into(),
        ],
        vec![
            ("BATCHGEN_API_KEY".into(), "k".into()),
            (
                "BATCHGEN_CALLBACK_SECRET".into(),
                "s3cret-s3cret-s3cret".into(),
            ),
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let seen = seen(&log);
    assert!(
        seen.iter().all(|(path, _)| path == "/api/generate"),
        "{seen:?}"
    );
    // Jobs with their own callback_url keep it.
    assert!(
        seen[1]
            .1
            .contains(r#""callback_url":"https://example.com/hook/1""#)
    );
    assert!(
        seen[0]
            .1
            .contains(r#""callback_url":"https://hooks.example.com/callback/"#)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dry_run_shows_where_each_job_would_go() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "jobs.toml", MANIFEST);
    let out = run_with_env(
        vec![
            manifest.to_str().unwrap().into(),
            "--dry-run".into(),
            "--base-url".into(),
            "https://h.example/prefix".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let posts: Vec<_> = stdout.lines().filter(|l| l.starts_with("POST ")).collect();
    assert_eq!(
        posts,
        [
            "POST https://h.example/prefix/api/v2/generate  # line 5, inspiration",
            "POST https://h.example/prefix/api/generate  # line 11, description",
            "POST https://h.example/prefix/api/v2/generate  # line 20, custom",
        ]
    );
    assert!(
        stdout.contains("2 jobs would go to POST https://h.example/prefix/api/v2/generate\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 jobs would go to POST https://h.example/prefix/api/generate\n"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_accepts_what_batchgen_sends() {
    let sandbox = sandbox(SandboxConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // Callbacks to example.com are not posted by the sandbox (not loopback):
    // what is checked here is that it accepts every body.
    let manifest = write(dir.path(), "jobs.toml", MANIFEST);
    let out = run_bin(
        &sandbox,
        &[manifest.to_str().unwrap(), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stats = sandbox.stats();
    assert_eq!(stats.accepted, 4, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_added_model_is_sent_as_named() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "jobs.csv",
        "id,prompt,model\nnext,a song for the next model,chirp-v7\n",
    );
    let (url, log) = capturing_server().await;
    let refused = run_at(&url, "k", &[manifest.to_str().unwrap()]).await;
    assert_eq!(code(&refused), 65, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--extra-model chirp-v7"),
        "{}",
        stderr(&refused)
    );
    assert!(
        seen(&log).is_empty(),
        "nothing is sent for an invalid manifest"
    );

    // validate takes the same names, from the flag or the variable.
    let validate = |extra: Vec<(String, String)>| {
        run_with_env(
            vec!["validate".into(), manifest.to_str().unwrap().into()],
            extra,
        )
    };
    let env = vec![("BATCHGEN_EXTRA_MODELS".into(), "chirp-v7,chirp-v8".into())];
    let out = validate(env).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        stdout.contains(
            "added:   chirp-v7, chirp-v8 (the short-form limits: prompt 3000, style 200, title 80 characters)"
        ),
        "{stdout}"
    );
    assert_eq!(code(&validate(vec![]).await), 65);

    let out = run_at(
        &url,
        "k",
        &[
            manifest.to_str().unwrap(),
            "--extra-model",
            "chirp-v7",
            "--rate",
            "unlimited",
        ],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        seen(&log),
        [(
            "/api/v2/generate".to_owned(),
            r#"{"prompt":"a song for the next model","model":"chirp-v7"}"#.to_owned()
        )]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sandbox_knows_the_models_the_run_was_told_to_accept() {
    let dir = tempfile::tempdir().unwrap();
    // From the flag, and from the manifest's own list.
    let manifest = write(
        dir.path(),
        "jobs.toml",
        "[run]\nextra_models = [\"chirp-v8\"]\n\n\
         [[job]]\nid = \"six\"\nprompt = \"a song for the next model\"\nmodel = \"chirp-v7\"\n\n\
         [[job]]\nid = \"seven\"\nprompt = \"a song for the one after\"\nmodel = \"chirp-v8\"\n",
    );
    let args = [
        manifest.to_str().unwrap().to_owned(),
        "--sandbox".into(),
        "--extra-model".into(),
        "chirp-v7".into(),
        "--rate".into(),
        "unlimited".into(),
    ]
    .to_vec();
    let out = run_with_env(args, vec![]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = results(&dir.path().join("jobs.sandbox.results.csv"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.status == batchgen::files::results::Status::Submitted),
        "the sandbox accepted both: {rows:?}"
    );

    // A standalone sandbox is told with its own flag; without it, the
    // model is refused as the API refuses a name it does not know.
    let strict = sandbox(Default::default()).await;
    let open = sandbox(batchgen::sandbox::SandboxConfig {
        extra_models: vec!["chirp-v7".into()],
        ..Default::default()
    })
    .await;
    let body = serde_json::json!({"prompt": "p", "model": "chirp-v7"});
    for (sb, expected) in [(&strict, 400), (&open, 200)] {
        let answer = reqwest::Client::new()
            .post(format!("{}/api/v2/generate", sb.base_url()))
            .bearer_auth(sb.key())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), expected);
    }
}

/// A models file that adds a model with its names and limits: validate
/// takes it (and its limits, not the short-form ones), the wire sends the
/// provider's name for it, and a sandbox given the same file accepts it.
/// The same file from `[run] models`, beside the manifest.
#[tokio::test(flavor = "multi_thread")]
async fn a_models_file_is_honoured_by_validate_the_wire_and_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "models.toml",
        "format = 1\n\n[[model]]\nname = \"chirp-v7\"\n\
         limits = { prompt = 6000, style = 1200, title = 120, description = 500 }\n\
         offers.sunoapi = { wire = \"V7\" }\n",
    );
    let title = "t".repeat(110);
    let jobs = format!(
        "[[job]]\nid = \"seven\"\ncustom_mode = true\nprompt = \"[Verse] next\"\nstyle = \"lofi\"\ntitle = \"{title}\"\nmodel = \"chirp-v7\"\n"
    );
    let manifest = write(dir.path(), "jobs.toml", &jobs);
    let models = dir.path().join("models.toml");
    let flags = |extra: &[&str]| {
        let mut all = vec![
            manifest.to_str().unwrap().to_owned(),
            "--provider".into(),
            "sunoapi".into(),
            "--models".into(),
            models.to_str().unwrap().to_owned(),
        ];
        all.extend(extra.iter().map(|s| (*s).to_owned()));
        all
    };
    let mut validate = flags(&[]);
    validate.insert(0, "validate".into());
    let out = run_with_env(validate, vec![]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // Without the file the model is unknown.
    let out = run_with_env(
        vec![
            "validate".into(),
            manifest.to_str().unwrap().into(),
            "--provider".into(),
            "sunoapi".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 65, "{}", stderr(&out));

    // The dry run shows the provider's name for it.
    let out = run_with_env(flags(&["--dry-run"]), vec![]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(r#""model":"V7""#),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The in-process sandbox is given the run's catalogue and accepts it.
    let out = run_with_env(flags(&["--sandbox", "--rate", "unlimited"]), vec![]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rows = results(&dir.path().join("jobs.sandbox.results.csv"));
    assert!(
        rows.iter()
            .all(|r| r.status == batchgen::files::results::Status::Submitted),
        "{rows:?}"
    );

    // The same file named by the manifest.
    let with_run = write(
        dir.path(),
        "run.toml",
        &format!("[run]\nmodels = \"models.toml\"\nprovider = \"sunoapi\"\n\n{jobs}"),
    );
    let out = run_with_env(
        vec!["validate".into(), with_run.to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// A malformed models file is refused before anything is sent, naming its
/// file and line: exit 78 from the flag, 65 at the manifest's key.
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_models_file_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let models = write(
        dir.path(),
        "models.toml",
        "[[model]]\nname = \"chirp-v7\"\nlimits = { promt = 6000 }\n",
    );
    let manifest = write(dir.path(), "jobs.csv", "prompt\na calm song\n");
    let out = run_with_env(
        vec![
            "validate".into(),
            manifest.to_str().unwrap().into(),
            "--models".into(),
            models.to_str().unwrap().into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 78, "{}", stderr(&out));
    let shown = format!("{}:3: ", models.display());
    assert!(stderr(&out).contains(&shown), "{}", stderr(&out));
    assert!(stderr(&out).contains("promt"), "{}", stderr(&out));

    let toml = write(
        dir.path(),
        "jobs.toml",
        "[run]\nmodels = \"models.toml\"\n\n[[job]]\nprompt = \"a calm song\"\n",
    );
    let out = run_with_env(
        vec!["validate".into(), toml.to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 65, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("jobs.toml:2: models:"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&shown), "{}", stderr(&out));
}

/// `batchgen models` shows what each provider takes and what a job naming
/// no model sends; `--json` is the same as data.
#[tokio::test(flavor = "multi_thread")]
async fn the_models_command_shows_the_catalogue() {
    let out = run_with_env(
        vec!["models".into(), "--provider".into(), "sunoapi".into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("sent as chirp-v4-5-all (V4_5ALL)"), "{text}");
    assert!(
        text.contains("chirp-v5-5") && text.contains("V5_5"),
        "{text}"
    );
    assert!(!text.contains("gcui"), "one provider: {text}");
    let out = run_with_env(vec!["models".into(), "--json".into()], vec![]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["providers"]["udioapi"]["default"],
        serde_json::Value::Null
    );
    assert_eq!(json["providers"]["gcui"]["counts"], "utf16");
    let sunoapi = json["providers"]["sunoapi"]["models"].as_array().unwrap();
    let v4_5 = sunoapi.iter().find(|m| m["name"] == "chirp-v4-5").unwrap();
    assert_eq!(v4_5["wire"], "V4_5");
    assert_eq!(v4_5["limits"]["title"], 100);
    assert_eq!(v4_5["from"]["kind"], "built_in");
}

/// A model the provider takes but no longer lists is sent, with a warning
/// that names the file, the line of its first job and the count.
#[tokio::test(flavor = "multi_thread")]
async fn an_unlisted_model_is_a_warning_not_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "jobs.csv",
        "prompt,model\na,chirp-v5\nb,chirp-v3-5\nc,chirp-v3-5\n",
    );
    let (url, log) = capturing_server().await;
    let out = run_at(
        &url,
        "k",
        &[manifest.to_str().unwrap(), "--rate", "unlimited"],
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown = format!(
        "batchgen: warning: {}:3: model: \"chirp-v3-5\" (2 jobs) is not listed by udioapi now",
        manifest.display()
    );
    assert!(stderr(&out).contains(&shown), "{}", stderr(&out));
    assert_eq!(seen(&log).len(), 3, "every job is sent");
    let out = run_with_env(
        vec!["validate".into(), manifest.to_str().unwrap().into()],
        vec![],
    )
    .await;
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains(&shown), "{}", stderr(&out));
}
