//! `batchgen collect` and `batchgen receive` against the in-process sandbox
//! (stage time 100 ms), driving the real binary. Catalogs are compared
//! whole; MP3s are checked byte for byte against the sandbox's files.
//! `receive` in-process is in [`receiver`], collect at catalog scale in
//! [`scale`].

mod quality;
mod receiver;
mod regenerate;
mod scale;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use batchgen::files::catalog::Row;
use batchgen::sandbox::{Sandbox, SandboxConfig};

use crate::common::wait::{self, DirWatch};
use crate::common::{self, catalog, id3_len, is_whole_mp3, run_env};

const MODERATED: [usize; 3] = [7, 19, 33];

async fn sandbox() -> Sandbox {
    common::sandbox(SandboxConfig {
        stage_time: Duration::from_millis(100),
        ..SandboxConfig::default()
    })
    .await
}

/// A custom-mode CSV manifest of `n` jobs; [`MODERATED`] ones trip the
/// sandbox's moderation. `callback(key)` gives a job's callback_url.
fn manifest(dir: &Path, n: usize, callback: impl Fn(&str) -> Option<String>) -> PathBuf {
    let path = dir.join("jobs.csv");
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record([
        "id",
        "custom_mode",
        "title",
        "style",
        "prompt",
        "callback_url",
    ])
    .unwrap();
    for i in 0..n {
        let key = format!("job-{i}");
        let word = if MODERATED.contains(&i) {
            "forbidden"
        } else {
            "calm"
        };
        w.write_record([
            key.as_str(),
            "yes",
            &format!("Song {i}, \"take\" {i}"),
            &format!("lofi, {} bpm", 60 + i),
            &format!("[Verse]\na {word} song, number {i}"),
            &callback(&key).unwrap_or_default(),
        ])
        .unwrap();
    }
    w.flush().unwrap();
    path
}

/// Runs the binary with the sandbox's base URL and key, as `provider`.
fn run_as(
    sb: &Sandbox,
    provider: batchgen::job::Provider,
    args: Vec<&str>,
) -> impl std::future::Future<Output = std::process::Output> + use<> {
    let env = vec![
        ("BATCHGEN_API_KEY".to_owned(), sb.key().to_owned()),
        ("BATCHGEN_BASE_URL".to_owned(), sb.base_url()),
        ("BATCHGEN_PROVIDER".to_owned(), provider.name().to_owned()),
    ];
    common::run_with_env(args.iter().map(|s| s.to_string()).collect(), env)
}

/// Submits the manifest; returns the results path.
async fn submit(sb: &Sandbox, manifest: &Path) -> PathBuf {
    let out = run_env(
        sb,
        &[
            manifest.to_str().unwrap(),
            "--rate",
            "unlimited",
            "-j",
            "8",
            "-q",
        ],
    )
    .await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    manifest.with_file_name("jobs.results.csv")
}

const FAST: [&str; 4] = ["--poll-interval", "100ms", "--poll-rate", "unlimited"];

/// The MP3 the sandbox serves for `url`.
async fn original(url: &str) -> Vec<u8> {
    reqwest::get(url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

fn mp3s(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "mp3"));
    files.sort();
    files
}

/// The whole catalog, file by file: rows in manifest order, moderated jobs
/// failed, the rest complete and downloaded: tag, audio bytes and size.
async fn check_catalog_and_files(rows: &[Row], dir: &Path) {
    assert_eq!(rows.len(), 100);
    for (i, pair) in rows.chunks(2).enumerate() {
        let key = format!("job-{i}");
        for (n, row) in pair.iter().enumerate() {
            assert_eq!(
                (row.key.as_str(), row.clip_index),
                (key.as_str(), n as u32 + 1)
            );
            assert_eq!(row.title, format!("Song {i}, \"take\" {i}"));
            assert_eq!(row.style, format!("lofi, {} bpm", 60 + i));
            // The jobs name no model: none is sent, and the host (the
            // sandbox) uses the newest one it lists.
            assert_eq!(row.model, "chirp-v5-5");
            assert!(!row.task_id.is_empty() && !row.clip_id.is_empty());
            if MODERATED.contains(&i) {
                assert_eq!(row.status, "failed", "{key}");
                assert!(
                    batchgen::sandbox::MODERATION_MESSAGES.contains(&row.error.as_str()),
                    "{}",
                    row.error
                );
                assert!(row.file.is_empty() && row.audio_url.is_empty());
                continue;
            }
            assert_eq!(row.status, "complete", "{key}");
            assert_eq!(row.error, "");
            let file = dir.join(format!("{key}-{}.mp3", n + 1));
            assert_eq!(Path::new(&row.file), file);
            let bytes = std::fs::read(&file).unwrap();
            assert_eq!(row.file_bytes, Some(bytes.len() as u64));
            let tag = id3::Tag::read_from_path(&file).unwrap();
            use id3::TagLike;
            assert_eq!(tag.title(), Some(row.title.as_str()));
            // The style's tags are the genres, its tempo TBPM (tests/it/tags/).
            assert_eq!(tag.genres(), Some(vec!["lofi"]));
            let audio = &bytes[id3_len(&bytes).unwrap()..];
            assert_eq!(audio, original(&row.audio_url).await, "{key}");
            let seconds = common::sandbox_mp3_secs(audio.len());
            assert!((row.duration.unwrap() - seconds).abs() < 1e-6, "{key}");
        }
    }
    let files = mp3s(dir);
    assert_eq!(files.len(), 100 - 2 * MODERATED.len());
    assert!(
        files
            .iter()
            .all(|f| is_whole_mp3(&std::fs::read(f).unwrap()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn collect_downloads_the_whole_catalog() {
    let sb = sandbox().await;
    let tmp = tempfile::tempdir().unwrap();
    let results = submit(&sb, &manifest(tmp.path(), 50, |_| None)).await;
    let dir = tmp.path().join("songs");
    let mut args = vec![
        "collect",
        results.to_str().unwrap(),
        "--download",
        dir.to_str().unwrap(),
    ];
    args.extend(FAST);
    let out = run_env(&sb, &args).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let stderr = common::stderr(&out);
    assert!(
        stderr.contains("50/50 tasks finished: 94 clips complete, 6 failed, 0 pending"),
        "{stderr}"
    );
    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    check_catalog_and_files(&rows, &dir).await;

    // A rerun polls nothing and downloads nothing.
    let feeds = sb.stats().feed_requests;
    let out = run_env(&sb, &args).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("0 downloaded, 94 already there"));
    assert_eq!(
        sb.stats().feed_requests,
        feeds,
        "finished tasks are not polled"
    );
    assert_eq!(catalog(&tmp.path().join("jobs.catalog.csv")), rows);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_collect_resumes_without_downloading_twice() {
    use std::os::unix::fs::MetadataExt;
    let sb = sandbox().await;
    let tmp = tempfile::tempdir().unwrap();
    let results = submit(&sb, &manifest(tmp.path(), 50, |_| None)).await;
    let dir = tmp.path().join("songs");
    let bin_path = assert_cmd::cargo::cargo_bin("batchgen");
    let command = |dir: &Path| {
        let mut c = std::process::Command::new(&bin_path);
        c.args(["collect", results.to_str().unwrap(), "--download"])
            .arg(dir)
            .args(FAST)
            .args([
                "--download-rate",
                "25/s",
                "--download-concurrency",
                "2",
                "-q",
            ])
            .env("BATCHGEN_API_KEY", sb.key())
            .env("BATCHGEN_BASE_URL", sb.base_url())
            .stderr(std::process::Stdio::null());
        c
    };
    // Every *.mp3 ever seen must be whole, and never change afterwards.
    let mut seen: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    let scan = |seen: &mut HashMap<PathBuf, Vec<u8>>| {
        for file in mp3s(&dir) {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            assert!(
                is_whole_mp3(&bytes),
                "partial file under its final name: {file:?}"
            );
            let first = seen.entry(file.clone()).or_insert_with(|| bytes.clone());
            assert_eq!(*first, bytes, "{file:?} changed");
        }
    };

    // The folder is looked at each time a file in it changes.
    let watch = DirWatch::new(tmp.path());
    let mut child = command(&dir).spawn().unwrap();
    watch
        .until("the download folder", || {
            dir.is_dir().then_some(()).ok_or("none yet")
        })
        .await;
    watch.add(&dir);
    watch
        .until("30 downloads", || {
            assert!(
                child.try_wait().unwrap().is_none(),
                "finished before the kill"
            );
            scan(&mut seen);
            let done = mp3s(&dir).len();
            (done >= 30).then_some(()).ok_or(done)
        })
        .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    scan(&mut seen);
    let before: HashMap<PathBuf, (u64, i64, i64)> = mp3s(&dir)
        .into_iter()
        .map(|f| {
            let m = std::fs::metadata(&f).unwrap();
            (f, (m.ino(), m.mtime(), m.mtime_nsec()))
        })
        .collect();
    assert!(before.len() >= 30 && before.len() < 94, "{}", before.len());

    let exited = wait::exit(command(&dir).spawn().unwrap());
    tokio::pin!(exited);
    let finish = async {
        loop {
            scan(&mut seen);
            tokio::select! {
                status = &mut exited => break status,
                () = watch.changed() => {}
            }
        }
    };
    let status = tokio::time::timeout(wait::WAIT, finish)
        .await
        .expect("the second collect ends");
    assert_eq!(status.code(), Some(0));
    scan(&mut seen);
    for (file, stamp) in &before {
        let m = std::fs::metadata(file).unwrap();
        assert_eq!(
            (m.ino(), m.mtime(), m.mtime_nsec()),
            *stamp,
            "{file:?} downloaded again"
        );
    }
    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    check_catalog_and_files(&rows, &dir).await;
    assert!(
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".part")),
        "no temp file left"
    );
    // Killed while measuring too: every take's numbers are what measuring
    // its file again gives, whichever run measured it.
    let out = common::run_with_env(
        vec!["measure".into(), common::arg(&dir).into(), "--json".into()],
        Vec::new(),
    )
    .await;
    let again: HashMap<String, f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let file = v["file"].as_str().unwrap().to_owned();
            (file, v["measurement"]["integrated_lufs"].as_f64().unwrap())
        })
        .collect();
    let complete: Vec<&Row> = rows.iter().filter(|r| r.status == "complete").collect();
    assert_eq!(again.len(), complete.len());
    for row in complete {
        assert_eq!(row.verdict, "kept", "{row:?}");
        assert_eq!(row.loudness, again.get(&row.file).copied(), "{}", row.file);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes() {
    let sb = sandbox().await;
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("none.results.csv");
    let out = run_env(&sb, &["collect", missing.to_str().unwrap()]).await;
    assert_eq!(common::code(&out), 66, "{}", common::stderr(&out));

    let results = submit(&sb, &manifest(tmp.path(), 2, |_| None)).await;
    let results = results.to_str().unwrap();
    let env = vec![
        ("BATCHGEN_API_KEY".to_owned(), "sk-wrong".to_owned()),
        ("BATCHGEN_BASE_URL".to_owned(), sb.base_url()),
    ];
    let args: Vec<String> = ["collect", results].iter().map(|s| s.to_string()).collect();
    let out = common::run_with_env(args, env).await;
    assert_eq!(common::code(&out), 77, "{}", common::stderr(&out));

    let file = common::write(tmp.path(), "plain.txt", "x");
    let blocked = file.join("songs");
    let out = run_env(
        &sb,
        &["collect", results, "--download", blocked.to_str().unwrap()],
    )
    .await;
    assert_eq!(common::code(&out), 73, "{}", common::stderr(&out));

    // Not finished by the deadline: exit 1, and the next run finishes.
    let mut args = vec!["collect", results, "--deadline", "0s"];
    args.extend(FAST);
    let out = run_env(&sb, &args).await;
    assert_eq!(common::code(&out), 1, "{}", common::stderr(&out));
    let mut args = vec!["collect", results];
    args.extend(FAST);
    let out = run_env(&sb, &args).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));

    // A store rebuilt from the results report alone (a new catalog, none
    // imported): every task is polled again, at a host that is not there.
    common::remove_state(std::path::Path::new(results));
    let dead = "http://127.0.0.1:9".to_owned();
    let env = vec![
        ("BATCHGEN_API_KEY".to_owned(), sb.key().to_owned()),
        ("BATCHGEN_BASE_URL".to_owned(), dead),
    ];
    let fresh = tmp.path().join("other.catalog.csv");
    let args: Vec<String> = [
        "collect",
        results,
        "--catalog",
        fresh.to_str().unwrap(),
        "--poll-interval",
        "10ms",
        "--poll-rate",
        "unlimited",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = common::run_with_env(args, env).await;
    assert_eq!(common::code(&out), 69, "{}", common::stderr(&out));
}

/// Clips whose lyrics are the captcha watermark (`--fail-captcha 1`) reach
/// their final stage with an mp3 on every provider's face, and collect
/// fails each with the watermark's reason and downloads none of them.
#[tokio::test(flavor = "multi_thread")]
async fn watermarked_clips_fail_and_are_never_downloaded() {
    use batchgen::api::feed::WATERMARK_REASON;
    use batchgen::job::Provider;
    for provider in [Provider::Udioapi, Provider::Sunoapi, Provider::Gcui] {
        let sb = common::sandbox(SandboxConfig {
            provider,
            stage_time: Duration::from_millis(100),
            fail_captcha: 1.0,
            ..SandboxConfig::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = common::csv_manifest(dir.path(), 2);
        let songs = dir.path().join("songs");
        let run = |args: Vec<&str>| run_as(&sb, provider, args);
        let out = run(vec![common::arg(&manifest), "--rate", "unlimited", "-q"]).await;
        assert_eq!(
            common::code(&out),
            0,
            "{provider}: {}",
            common::stderr(&out)
        );
        let results = dir.path().join("jobs.results.csv");
        let mut args = vec!["collect", common::arg(&results), "--download"];
        args.extend([common::arg(&songs)]);
        args.extend(FAST);
        let out = run(args).await;
        let rows = catalog(&dir.path().join("jobs.catalog.csv"));
        assert_eq!(rows.len(), 4, "{provider}: {}", common::stderr(&out));
        for row in &rows {
            assert_eq!(
                (row.status.as_str(), row.error.as_str()),
                ("failed", WATERMARK_REASON),
                "{provider}: {row:?}"
            );
            assert!(row.file.is_empty() && row.audio_url.is_empty(), "{row:?}");
        }
        assert!(mp3s(&songs).is_empty(), "{provider}: nothing downloaded");
        assert_eq!(sb.stats().audio_fetches, 0, "{provider}");
    }
}

/// Clips the host calls finished without a file to fetch (no audio URL,
/// or only the streaming one) stay pending, and a collect that ends at its
/// deadline says why, counted by reason, as `status` does: never a bare
/// "0 failed".
#[tokio::test(flavor = "multi_thread")]
async fn clips_the_host_holds_back_are_counted_by_reason() {
    use batchgen::api::feed::{NO_FINAL_URL, ONLY_STREAMING_URL};
    use batchgen::job::Provider;
    use batchgen::sandbox::BadAudioKind;
    let cases = [
        (Provider::Udioapi, BadAudioKind::Missing, NO_FINAL_URL),
        (
            Provider::Udioapi,
            BadAudioKind::Streaming,
            ONLY_STREAMING_URL,
        ),
        (
            Provider::Sunoapi,
            BadAudioKind::Streaming,
            ONLY_STREAMING_URL,
        ),
        (Provider::Sunoapi, BadAudioKind::Missing, NO_FINAL_URL),
    ];
    for (provider, kind, reason) in cases {
        let sb = common::sandbox(SandboxConfig {
            provider,
            stage_time: Duration::from_millis(50),
            bad_audio: 1.0,
            bad_audio_kind: kind,
            ..SandboxConfig::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let manifest = common::csv_manifest(dir.path(), 2);
        let run = |args: Vec<&str>| run_as(&sb, provider, args);
        let out = run(vec![common::arg(&manifest), "--rate", "unlimited", "-q"]).await;
        assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
        let results = dir.path().join("jobs.results.csv");
        let mut args = vec!["collect", common::arg(&results), "--deadline", "1s"];
        args.extend(FAST);
        let out = run(args).await;
        let err = common::stderr(&out);
        assert_eq!(common::code(&out), 1, "{provider} {kind:?}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert!(
            lines[0].starts_with(
                "batchgen: 0/2 tasks finished: 0 clips complete, 0 failed, 4 pending; "
            ),
            "{provider} {kind:?}: {err}"
        );
        assert_eq!(
            lines[1..],
            [
                format!("batchgen: warning: 4 clips pending: {reason}").as_str(),
                "batchgen: the deadline passed with 4 clips pending for the reasons above; rerun to continue where this run stopped",
                format!(
                    "batchgen: catalog page {} (open it in a browser)",
                    dir.path().join("jobs.catalog.html").display()
                )
                .as_str(),
            ],
            "{provider} {kind:?}: {err}"
        );
        for row in catalog(&dir.path().join("jobs.catalog.csv")) {
            assert_eq!(
                (row.status.as_str(), row.error.as_str()),
                ("first", reason),
                "{row:?}"
            );
        }

        let out = run(vec!["status", common::arg(&results), "--json"]).await;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            json["clip_pending"],
            serde_json::json!([{ "reason": reason, "count": 4 }]),
            "{json}"
        );
        assert_eq!(json["clip_failures"], serde_json::json!([]), "{json}");
        let out = run(vec!["status", common::arg(&results)]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!(
                "  clips pending for a reason:\n         4  {reason}\n"
            )),
            "{text}"
        );
    }
}
