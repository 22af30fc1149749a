//! The real binary's whole journey (submit, collect, receive) against an
//! independent imitation of udioapi.pro built from `/work/shared/API.md`
//! alone ([`server`]), in every form the docs allow or contradict
//! themselves with. What is asserted is what a user needs: every clip
//! complete in the catalog with the right fields, every file a whole MP3
//! from the final URL, no streaming URL fetched, nothing submitted twice,
//! the right exit codes.

mod server;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use batchgen::files::catalog::Row;
use batchgen::files::results::{Record, Status};
use serde_json::{Value, json};

use server::{Config, Reply, World, accepted, final_clip, first_clip, text_clip, v2};

use crate::common;

const SECRET: &str = "Docs-Callback-s3cret-42";

/// A CSV manifest: one job per prompt, keys `job-0`, `job-1`, …;
/// `callback` adds a callback_url column.
fn manifest(dir: &Path, prompts: &[&str], callback: bool) -> PathBuf {
    let path = dir.join("jobs.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    if callback {
        w.write_record(["id", "prompt", "callback_url"]).unwrap();
    } else {
        w.write_record(["id", "prompt"]).unwrap();
    }
    for (i, p) in prompts.iter().enumerate() {
        let key = format!("job-{i}");
        let url = format!("https://hooks.example.com/callback/{SECRET}/{key}");
        if callback {
            w.write_record([key.as_str(), p, url.as_str()]).unwrap();
        } else {
            w.write_record([key.as_str(), p]).unwrap();
        }
    }
    w.flush().unwrap();
    path
}

async fn bin(world: &World, args: &[&str]) -> std::process::Output {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--base-url".to_owned(), world.base()]);
    common::run_with_env(all, vec![("BATCHGEN_API_KEY".into(), server::KEY.into())]).await
}

/// Submits `manifest` (unlimited rate, 4 workers); returns the output.
async fn submit(world: &World, manifest: &Path, extra: &[&str]) -> std::process::Output {
    let out = manifest.with_file_name("jobs.results.csv");
    let mut args = vec![
        manifest.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--rate",
        "unlimited",
    ];
    if !extra.contains(&"-j") {
        args.extend(["-j", "4"]);
    }
    args.extend(extra);
    bin(world, &args).await
}

async fn collect(world: &World, dir: &Path) -> std::process::Output {
    let results = dir.join("jobs.results.csv");
    let songs = dir.join("songs");
    bin(
        world,
        &[
            "collect",
            results.to_str().unwrap(),
            "--download",
            songs.to_str().unwrap(),
            "--poll-interval",
            "10ms",
            "--poll-rate",
            "unlimited",
            "--deadline",
            "20s",
        ],
    )
    .await
}

fn catalog(dir: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(dir.join("jobs.catalog.csv")).unwrap();
    r.deserialize().map(|r| r.unwrap()).collect()
}

fn results(dir: &Path) -> Vec<Record> {
    common::results(&dir.join("jobs.results.csv"))
}

/// The audio of a downloaded file: its bytes after the ID3v2 tag.
fn audio_of(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if bytes.starts_with(b"ID3") && bytes.len() >= 10 {
        let size = bytes[6..10]
            .iter()
            .fold(0usize, |n, b| (n << 7) | usize::from(*b & 0x7f));
        let footer = if bytes[5] & 0x10 != 0 { 10 } else { 0 };
        return bytes[10 + size + footer..].to_vec();
    }
    bytes
}

/// Every clip complete with its final URL, and its file the whole MP3.
fn assert_complete_with_files(world: &World, dir: &Path, rows: &[Row]) {
    for row in rows {
        assert_eq!(row.status, "complete", "{row:?}");
        assert_eq!(
            row.audio_url,
            format!("{}/files/{}.mp3", world.base(), row.clip_id),
            "{row:?}"
        );
        assert!(!row.file.is_empty(), "no file: {row:?}");
        assert_eq!(
            audio_of(Path::new(&row.file)),
            server::mp3(&row.clip_id),
            "{} is not the whole MP3 of {}",
            row.file,
            row.clip_id
        );
        assert!(row.error.is_empty(), "{row:?}");
    }
    let _ = dir;
    let streams = world.log().streams.clone();
    assert!(streams.is_empty(), "streaming URLs fetched: {streams:?}");
}

/// Each prompt was sent exactly `n` times.
fn assert_sent(world: &World, prompts: &[&str], n: usize) {
    let log = world.log();
    for p in prompts {
        let count = log
            .submits
            .iter()
            .filter(|(_, b)| b.get("prompt").and_then(Value::as_str) == Some(*p))
            .count();
        assert_eq!(count, n, "{p:?} sent {count} times, not {n}");
    }
}

fn clip_ids(task: &str) -> (String, String) {
    (format!("{task}-a"), format!("{task}-b"))
}

/// The stages of the current docs, one per poll: nothing, one clip without
/// an id yet, both at text, first audio, one final, both final (forms vary
/// by task).
fn docs_stages(index: usize, task: &str, poll: usize, base: &str) -> Value {
    let (a, b) = clip_ids(task);
    match poll {
        0 => v2("IN_PROGRESS", vec![]),
        1 => v2(
            "SUCCESS",
            vec![text_clip("", base, false), text_clip(&a, base, true)],
        ),
        2 => v2(
            "SUCCESS",
            vec![text_clip(&a, base, true), text_clip(&b, base, true)],
        ),
        3 => v2(
            "SUCCESS",
            vec![first_clip(&a, base), text_clip(&b, base, true)],
        ),
        4 => v2(
            "SUCCESS",
            vec![final_clip(&a, base, index), first_clip(&b, base)],
        ),
        _ => v2(
            "SUCCESS",
            vec![final_clip(&a, base, index), final_clip(&b, base, index + 1)],
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_journey_by_polling_in_the_documented_forms() {
    let world = server::start(Config {
        answer: Box::new(|_, _, id| {
            let n: usize = id[1..].parse().unwrap();
            accepted(n - 1, id)
        }),
        feed: Box::new(docs_stages),
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let prompts = ["p one", "p two", "p three", "p four", "p five", "p six"];
    let m = manifest(tmp.path(), &prompts, false);
    let out = submit(&world, &m, &["-j", "1"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    assert_sent(&world, &prompts, 1);
    let records = results(tmp.path());
    let ids: Vec<&str> = records.iter().map(|r| r.task_id.as_str()).collect();
    assert_eq!(
        ids,
        ["w1", "w2", "w3", "9000000004", "w5", "w6"],
        "{records:?}"
    );
    assert!(records.iter().all(|r| r.status == Status::Submitted));

    let out = collect(&world, tmp.path()).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let rows = catalog(tmp.path());
    assert_eq!(rows.len(), 12, "{rows:#?}");
    assert_complete_with_files(&world, tmp.path(), &rows);
    for row in &rows {
        assert_eq!(row.title, format!("Title {}", row.clip_id));
        assert_eq!(row.style, "lofi, chill");
        assert_eq!(row.model, "chirp-v3-5");
        let form = if row.clip_id.ends_with("-a") { 0 } else { 1 };
        let task: usize = records
            .iter()
            .position(|r| r.key == row.key)
            .expect("a key of the results");
        let (duration, created) = match (task + form) % 3 {
            0 => (109.8, "2025-01-01T22:10:31.665Z"),
            1 => (109.8, "2024-06-05T11:40:06.036Z"),
            _ => (146.08, "2024-09-05T13:09:01.000Z"),
        };
        assert_eq!(row.duration, Some(duration), "{row:?}");
        assert_eq!(row.created_at, created, "{row:?}");
    }
    // A rerun has nothing to poll and nothing to fetch.
    let polls = world.log().requests.len();
    let files = world.log().files.len();
    let out = collect(&world, tmp.path()).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    assert_eq!(world.log().requests.len(), polls);
    assert_eq!(world.log().files.len(), files);
    assert_eq!(files, 12);
}

/// Final files as `application/octet-stream` from a host that ignores
/// `Range`, whose first transfer of each file breaks off halfway.
#[tokio::test(flavor = "multi_thread")]
async fn files_without_range_support_after_a_broken_transfer_are_whole() {
    let world = server::start(Config {
        feed: Box::new(|i, task, _, base| {
            let (a, b) = clip_ids(task);
            v2(
                "SUCCESS",
                vec![final_clip(&a, base, i), final_clip(&b, base, i + 1)],
            )
        }),
        file_type: "application/octet-stream",
        ranges: false,
        cut_first_transfer: true,
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), &["cut one", "cut two"], false);
    let out = submit(&world, &m, &[]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let out = collect(&world, tmp.path()).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let rows = catalog(tmp.path());
    assert_eq!(rows.len(), 4);
    assert_complete_with_files(&world, tmp.path(), &rows);
}

#[tokio::test(flavor = "multi_thread")]
async fn moderation_and_failed_tasks_are_final_and_never_fetched() {
    let world = server::start(Config {
        feed: Box::new(|i, task, _, base| {
            let (a, b) = clip_ids(task);
            let mut ca = text_clip(&a, base, true);
            let mut cb = text_clip(&b, base, true);
            match i {
                0 => {
                    ca["fail_message"] = json!("Does Not Meet Guidelines");
                    cb["fail_message"] = json!("Does Not Meet Guidelines");
                    v2("SUCCESS", vec![ca, cb])
                }
                1 => {
                    // One clip moderated, the other one made: it is paid for.
                    ca["error_message"] = json!("Prompt contained inappropriate material");
                    v2("SUCCESS", vec![ca, final_clip(&b, base, 0)])
                }
                _ => json!({"code": 200, "message": "This song violates Suno's content moderation policy",
                            "data": {"type": "FAIL", "response_data": []}}),
            }
        }),
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), &["mod one", "mod two", "mod three"], false);
    let out = submit(&world, &m, &["-j", "1"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let out = collect(&world, tmp.path()).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let rows = catalog(tmp.path());
    let by_key = |k: &str| rows.iter().filter(|r| r.key == k).collect::<Vec<_>>();
    assert!(
        by_key("job-0")
            .iter()
            .all(|r| r.status == "failed" && r.error == "Does Not Meet Guidelines"),
        "{rows:#?}"
    );
    assert!(
        by_key("job-1")
            .iter()
            .any(|r| r.status == "failed" && r.error == "Prompt contained inappropriate material"),
        "{rows:#?}"
    );
    assert!(
        by_key("job-2")
            .iter()
            .all(|r| r.status == "failed" && r.error.contains("moderation policy")),
        "{rows:#?}"
    );
    let made: Vec<&Row> = rows.iter().filter(|r| r.status == "complete").collect();
    assert_eq!(made.len(), 1, "{rows:#?}");
    assert_complete_with_files(
        &world,
        tmp.path(),
        &made.into_iter().cloned().collect::<Vec<_>>(),
    );
    assert!(
        rows.iter()
            .filter(|r| r.status == "failed")
            .all(|r| r.file.is_empty() && r.audio_url.is_empty())
    );
    assert_eq!(world.log().files.len(), 1);
    assert!(world.log().streams.is_empty());
    let polls = world.log().polls.clone();
    assert!(polls.values().all(|n| *n == 1), "{polls:?}");
}

/// Each documented error, by prompt: how often it was sent and what the
/// results file says.
#[tokio::test(flavor = "multi_thread")]
async fn documented_error_answers_fail_retry_or_stop_as_the_table_says() {
    let world = server::start(Config {
        answer: Box::new(|before, body, id| {
            let p = body["prompt"].as_str().unwrap();
            let status: u16 = p.split(' ').nth(1).unwrap().parse().unwrap_or(200);
            if p.starts_with("always") {
                return match status {
                    400 => Reply::error(400, "Topic too long."),
                    _ => Reply::json(
                        200,
                        json!({"code": 400, "message": "Bad Request: 'prompt' is required.", "data": null}),
                    ),
                };
            }
            if before > 0 {
                return accepted(before, id);
            }
            let mut r = match status {
                429 => Reply::error(429, "Rate limit exceeded. Please try again later."),
                s => Reply::error(s, "Internal Server Error"),
            };
            if p.contains("after") {
                r.retry_after = Some("1".into());
            }
            r
        }),
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let once = ["always 400", "always 200-with-code-400"];
    let twice = [
        "once 429 after",
        "once 429",
        "once 500",
        "once 502",
        "once 503",
        "once 504",
    ];
    let all: Vec<&str> = once.iter().chain(&twice).copied().collect();
    let m = manifest(tmp.path(), &all, false);
    let out = submit(&world, &m, &["-j", "8"]).await;
    assert_eq!(common::code(&out), 1, "{}", common::stderr(&out));
    assert_sent(&world, &once, 1);
    assert_sent(&world, &twice, 2);
    let records = results(tmp.path());
    assert_eq!(records[0].status, Status::Failed);
    assert!(records[0].error.contains("Topic too long."), "{records:?}");
    assert_eq!(records[1].status, Status::Failed, "{records:?}");
    assert!(
        records[1].error.contains("'prompt' is required"),
        "{records:?}"
    );
    assert!(
        records[2..].iter().all(|r| r.status == Status::Submitted),
        "{records:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_keys_and_credits_stop_the_run_before_more_is_sent() {
    for status in [401u16, 402, 403] {
        let world = server::start(Config {
            answer: Box::new(move |_, _, _| Reply::error(status, "refused")),
            credits: None,
            ..Config::default()
        })
        .await;
        let tmp = tempfile::tempdir().unwrap();
        let m = manifest(tmp.path(), &["r one", "r two", "r three", "r four"], false);
        let out = submit(&world, &m, &["-j", "1"]).await;
        assert_eq!(common::code(&out), 77, "{status}: {}", common::stderr(&out));
        assert_eq!(world.log().submits.len(), 1, "{status}");
        let records = results(tmp.path());
        assert_eq!(
            records
                .iter()
                .filter(|r| r.status == Status::Pending)
                .count(),
            4,
            "{records:?}"
        );
    }
    // A wrong key is caught by the credits call: nothing is submitted.
    let world = server::start(Config::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), &["k one"], false);
    let results_path = tmp.path().join("jobs.results.csv");
    let out = common::run_with_env(
        vec![
            m.to_str().unwrap().into(),
            "--out".into(),
            results_path.to_str().unwrap().into(),
            "--base-url".into(),
            world.base(),
        ],
        vec![("BATCHGEN_API_KEY".into(), "wrong-key-000000000000".into())],
    )
    .await;
    assert_eq!(common::code(&out), 77, "{}", common::stderr(&out));
    assert!(world.log().submits.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn hosts_that_serve_one_generate_path_work_by_the_settings() {
    // Only the callback endpoint: every job goes there.
    let world = server::start(Config {
        generate_paths: vec!["api/generate"],
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), &["one path a", "one path b"], false);
    let out = submit(&world, &m, &["--generate-path", "api/generate"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    assert!(
        world
            .log()
            .submits
            .iter()
            .all(|(p, _)| p == "/api/generate")
    );
    assert_eq!(world.log().submits.len(), 2);

    // Only v2: jobs with a callback_url go there too.
    let world = server::start(Config {
        generate_paths: vec!["api/v2/generate"],
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), &["v2 only a", "v2 only b"], true);
    let out = submit(
        &world,
        &m,
        &["--callback-generate-path", "/api/v2/generate"],
    )
    .await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let log = world.log();
    assert_eq!(log.submits.len(), 2);
    assert!(log.submits.iter().all(|(p, b)| {
        p == "/api/v2/generate"
            && b["callback_url"]
                .as_str()
                .unwrap()
                .starts_with("https://hooks.example.com/")
    }));
}

#[tokio::test(flavor = "multi_thread")]
async fn credits_in_the_documented_shape_and_hosts_without_the_endpoint() {
    let world = server::start(Config::default()).await;
    let out = bin(&world, &["credits"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("195"), "{text}");

    // 30 jobs at 10 credits need more than 195: a warning, and the run goes on.
    let tmp = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..30).map(|i| format!("credit song {i}")).collect();
    let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let m = manifest(tmp.path(), &prompts, false);
    let out = submit(&world, &m, &[]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("195"),
        "{}",
        common::stderr(&out)
    );
    assert_sent(&world, &prompts, 1);

    let world = server::start(Config {
        credits: None,
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), &["no credits endpoint"], false);
    let out = submit(&world, &m, &[]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    assert_eq!(world.log().submits.len(), 1);
}

/// `batchgen receive` as a child process.
struct Receive {
    child: std::process::Child,
    base: String,
}

impl Receive {
    fn start(dir: &Path) -> Receive {
        let mut child = Command::new(env!("CARGO_BIN_EXE_batchgen"))
            .args(["receive", "--listen", "127.0.0.1:0", "--results"])
            .arg(dir.join("jobs.results.csv"))
            .env("BATCHGEN_CALLBACK_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("BATCHGEN_CALLBACK_LISTEN=")
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_owned();
        Receive { child, base }
    }

    async fn post(&self, key: &str, body: &Value) {
        let url = format!("{}/callback/{SECRET}/{key}", self.base);
        let r = reqwest::Client::new()
            .post(url)
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{key}: {}", r.status());
    }

    /// SIGTERM, then wait: the catalog is written a last time.
    fn stop(mut self) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: signalling our own child by its id.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        self.child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_in_any_order_then_collect_downloads_without_polling() {
    let world = server::start(Config {
        feed: Box::new(|_, _, _, _| panic!("a task the callbacks finished was polled")),
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let prompts = [
        "cb stages",
        "cb skip",
        "cb repeat",
        "cb late text",
        "cb one by one",
    ];
    let m = manifest(tmp.path(), &prompts, true);
    let out = submit(&world, &m, &["-j", "1"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let records = results(tmp.path());
    let receive = Receive::start(tmp.path());
    let base = world.base();
    let stage = |task: &str, n: usize, form: usize| -> Value {
        let (a, b) = clip_ids(task);
        match n {
            0 => json!([text_clip(&a, &base, true), text_clip(&b, &base, true)]),
            1 => json!([first_clip(&a, &base), first_clip(&b, &base)]),
            _ => json!([final_clip(&a, &base, form), final_clip(&b, &base, form + 1)]),
        }
    };
    for (i, r) in records.iter().enumerate() {
        let (key, task) = (r.key.as_str(), r.task_id.as_str());
        let (a, b) = clip_ids(task);
        let order: Vec<Value> = match i {
            0 => vec![stage(task, 0, i), stage(task, 1, i), stage(task, 2, i)],
            1 => vec![stage(task, 2, i)],
            2 => vec![stage(task, 2, i), stage(task, 2, i), stage(task, 2, i)],
            3 => vec![stage(task, 2, i), stage(task, 0, i), stage(task, 1, i)],
            _ => vec![
                json!([text_clip(&a, &base, true)]),
                json!([final_clip(&b, &base, i)]),
                json!([final_clip(&a, &base, i + 1)]),
                json!([first_clip(&b, &base)]),
            ],
        };
        for body in order {
            receive.post(key, &body).await;
        }
    }
    receive.stop();
    let rows = catalog(tmp.path());
    assert_eq!(rows.len(), 10, "{rows:#?}");
    for row in &rows {
        assert_eq!(row.status, "complete", "{row:?}");
        assert!(row.duration.is_some(), "{row:?}");
        assert!(!row.created_at.is_empty(), "{row:?}");
    }

    let out = collect(&world, tmp.path()).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let rows = catalog(tmp.path());
    assert_complete_with_files(&world, tmp.path(), &rows);
    let polls = world.log().polls.clone();
    assert!(polls.is_empty(), "{polls:?}");
}

/// A host without the configured generate endpoint answers 404 to every
/// row: the run stops at the first one and names the setting, instead of
/// failing every row of the manifest one by one.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_generate_endpoint_stops_the_run_and_names_the_setting() {
    let world = server::start(Config {
        generate_paths: vec!["api/generate"],
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..12).map(|i| format!("nowhere {i}")).collect();
    let prompts: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let m = manifest(tmp.path(), &prompts, false);
    let out = submit(&world, &m, &["-j", "1"]).await;
    let err = common::stderr(&out);
    assert_eq!(common::code(&out), 78, "a configuration error: {err}");
    assert!(err.contains("--generate-path"), "{err}");
    assert_eq!(
        world
            .log()
            .requests
            .iter()
            .filter(|r| r.starts_with("POST"))
            .count(),
        1
    );
    let records = results(tmp.path());
    assert!(
        records.iter().all(|r| r.status == Status::Pending),
        "{records:?}"
    );
}

/// The final stage said before its URL is there (`audio_url` `""`): the
/// clip is not complete yet, polling goes on, and the song is downloaded
/// once the URL appears, instead of the task counting as finished with a
/// download error and never being polled again.
#[tokio::test(flavor = "multi_thread")]
async fn a_final_stage_without_its_url_yet_is_polled_until_the_url_appears() {
    let world = server::start(Config {
        feed: Box::new(|i, task, poll, base| {
            let (a, b) = clip_ids(task);
            let (mut ca, mut cb) = (final_clip(&a, base, i), final_clip(&b, base, i + 1));
            if poll < 2 {
                ca["audio_url"] = json!("");
                cb["audio_url"] = json!("");
            }
            v2("SUCCESS", vec![ca, cb])
        }),
        ..Config::default()
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), &["url late one", "url late two"], false);
    let out = submit(&world, &m, &["-j", "1"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let out = collect(&world, tmp.path()).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let rows = catalog(tmp.path());
    assert_eq!(rows.len(), 4);
    assert_complete_with_files(&world, tmp.path(), &rows);
}
