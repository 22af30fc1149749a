//! The whole journey against the sandbox in its default, documented mode,
//! the provider as its docs describe it (API.md, "Results"): `data.type`
//! says `SUCCESS` from the text stage on, the final stage is status `first`
//! with "All generated successfully.", clips have streaming URLs (a short
//! partial body) before the final mp3, and `id: ""` early in the text stage.
//!
//! Each journey drives the real binary: submit a manifest, then `collect
//! --download` (or `receive` the callbacks). Every clip must end
//! `complete` in the catalog and every file must be a whole MP3 from the
//! final URL, with no streaming URL ever fetched (the sandbox counts them).
//! Polling must go on past `type: SUCCESS`, which comes a stage and a half
//! before the final mp3: the sandbox counts the answers that said SUCCESS
//! too early, and a catalog of complete clips after one of them proves the
//! client kept asking.
//! Callbacks and the older `--stage-style complete` must give the same
//! catalog. Submissions go one at a time (`-j 1`) to sandboxes with the
//! same seed, so the two sides of a comparison get the same task and clip
//! ids.

use std::path::{Path, PathBuf};
use std::time::Duration;

use batchgen::engine::collect::receive::{ReceiveConfig, Receiver};
use batchgen::files::catalog::Row;
use batchgen::sandbox::{MODERATION_MESSAGES, Sandbox, SandboxConfig, StageStyle, Stats};
use batchgen::util::redact::Secret;
use url::Url;

use crate::common::wait::DirWatch;
use crate::common::{self, run_env};

/// Jobs in the manifest, and the one content moderation stops.
const JOBS: usize = 6;
const MODERATED: usize = 3;
const SECRET: &str = "documented-journey-secret-0123456789abcdef";
const FAST: [&str; 6] = [
    "--poll-interval",
    "100ms",
    "--poll-rate",
    "unlimited",
    "--deadline",
    "60s",
];

async fn sandbox(style: StageStyle) -> Sandbox {
    common::sandbox(SandboxConfig {
        // Long enough that a collect started after the submit run, on a
        // busy machine, still polls a task in its SUCCESS-before-final
        // stage (the trap `check_files` wants sprung at least once).
        stage_time: Duration::from_millis(400),
        stage_style: style,
        ..SandboxConfig::default()
    })
    .await
}

/// A CSV manifest: custom-mode jobs and description-mode ones (whose
/// titles the sandbox makes up); job [`MODERATED`] trips moderation.
fn manifest(dir: &Path, callback: impl Fn(&str) -> Option<String>) -> PathBuf {
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
    for i in 0..JOBS {
        let key = format!("job-{i}");
        let word = if i == MODERATED { "forbidden" } else { "calm" };
        let (custom, title, style) = if i % 2 == 0 {
            ("yes", format!("Song {i}"), format!("lofi, {} bpm", 70 + i))
        } else {
            ("no", String::new(), String::new())
        };
        let prompt = format!("a {word} song about harbour lights, number {i}");
        let callback = callback(&key).unwrap_or_default();
        w.write_record([key.as_str(), custom, &title, &style, &prompt, &callback])
            .unwrap();
    }
    w.flush().unwrap();
    path
}

/// Submits the manifest one job at a time; returns the results path.
async fn submit(sb: &Sandbox, manifest: &Path) -> PathBuf {
    let path = manifest.to_str().unwrap();
    let out = run_env(sb, &[path, "--rate", "unlimited", "-j", "1", "-q"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    manifest.with_file_name("jobs.results.csv")
}

fn catalog(path: &Path) -> Vec<Row> {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    reader.deserialize().map(|r| r.unwrap()).collect()
}

/// One finished journey: the catalog, where the songs went, what the
/// sandbox saw by the end of it, and the sandbox (kept up to compare files).
struct Journey {
    style: StageStyle,
    rows: Vec<Row>,
    songs: PathBuf,
    stats: Stats,
    sandbox: Sandbox,
    _tmp: tempfile::TempDir,
}

/// Submit, then `collect --download` until every clip is finished.
async fn by_polling(style: StageStyle) -> Journey {
    let sandbox = sandbox(style).await;
    let tmp = tempfile::tempdir().unwrap();
    let results = submit(&sandbox, &manifest(tmp.path(), |_| None)).await;
    let songs = tmp.path().join("songs");
    let mut args = vec![
        "collect",
        results.to_str().unwrap(),
        "--download",
        songs.to_str().unwrap(),
    ];
    args.extend(FAST);
    let out = run_env(&sandbox, &args).await;
    let rows = catalog(&tmp.path().join("jobs.catalog.csv"));
    let stats = sandbox.stats();
    let stderr = common::stderr(&out);
    check_statuses(&rows, &format!("{style:?} style; collect said: {stderr}"));
    assert_eq!(common::code(&out), 0, "{stderr}");
    Journey {
        style,
        rows,
        songs,
        stats,
        sandbox,
        _tmp: tmp,
    }
}

/// Every clip finished as the catalog must say it: `complete`, or
/// `failed` with a documented moderation message for the moderated job.
fn check_statuses(rows: &[Row], context: &str) {
    assert_eq!(rows.len(), 2 * JOBS, "{rows:#?}\n{context}");
    for row in rows {
        if row.key == format!("job-{MODERATED}") {
            assert_eq!(row.status, "failed", "{row:?}\n{context}");
            assert!(MODERATION_MESSAGES.contains(&row.error.as_str()), "{row:?}");
        } else {
            assert_eq!(
                (row.status.as_str(), row.error.as_str()),
                ("complete", ""),
                "{} clip {}: {row:?}\n{context}",
                row.key,
                row.clip_index
            );
        }
    }
}

/// Length of the ID3v2 tag at the start of `bytes` (header included).
fn id3_len(bytes: &[u8]) -> usize {
    assert!(
        bytes.len() >= 10 && &bytes[..3] == b"ID3",
        "an ID3 tag first"
    );
    let size = bytes[6..10]
        .iter()
        .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
    10 + size
}

/// The catalog and the files of a polling journey: each complete clip's
/// `audio_url` is its final mp3, its file that mp3 whole (after the tag),
/// and no streaming URL was fetched.
async fn check_files(j: &Journey) {
    let base = j.sandbox.base_url();
    let mut complete = 0;
    for row in j.rows.iter().filter(|r| r.status == "complete") {
        complete += 1;
        let final_url = format!("{base}/media/{}.mp3", row.clip_id);
        assert_eq!(row.audio_url, final_url, "the final URL, not a stream");
        assert!(row.duration.unwrap() > 2.0, "{row:?}");
        let file = j.songs.join(format!("{}-{}.mp3", row.key, row.clip_index));
        assert_eq!(Path::new(&row.file), file);
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(row.file_bytes, Some(bytes.len() as u64));
        let original = reqwest::get(&final_url)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[id3_len(&bytes)..], &original[..], "{file:?} whole");
        let seconds = common::sandbox_mp3_secs(original.len());
        assert!((row.duration.unwrap() - seconds).abs() < 1e-6, "{row:?}");
    }
    assert_eq!(complete, 2 * (JOBS - 1));
    let mut names: Vec<String> = std::fs::read_dir(&j.songs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        complete,
        "only the songs, no temp files: {names:?}"
    );
    assert_eq!(j.stats.stream_fetches, 0, "no streaming URL fetched");
    let early = j.stats.success_before_final;
    match j.style {
        StageStyle::Documented => assert!(early > 0, "no SUCCESS came before the end"),
        StageStyle::Complete => assert_eq!(early, 0),
    }
    assert!(j.stats.audio_fetches >= complete as u64, "{:?}", j.stats);
}

/// The rows without what differs between two journeys: the host's address
/// in URLs, the wall-clock time stamps and the local files.
/// What the host said of each clip: without what downloading made of it
/// (the files, and the take's measurement, verdict and pick).
fn comparable(rows: &[Row], base: &str) -> Vec<Row> {
    rows.iter()
        .map(|r| Row {
            key: r.key.clone(),
            task_id: r.task_id.clone(),
            clip_index: r.clip_index,
            clip_id: r.clip_id.clone(),
            title: r.title.clone(),
            style: r.style.clone(),
            model: r.model.clone(),
            status: r.status.clone(),
            duration: r.duration,
            audio_url: r.audio_url.replace(base, "<base>"),
            image_url: r.image_url.replace(base, "<base>"),
            error: r.error.clone(),
            lyrics: r.lyrics.clone(),
            ..Row::default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn collect_downloads_every_final_mp3_and_never_a_stream() {
    let j = by_polling(StageStyle::Documented).await;
    check_files(&j).await;
    j.sandbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_give_the_same_catalog_as_polling() {
    let sb = sandbox(StageStyle::Documented).await;
    let tmp = tempfile::tempdir().unwrap();
    let watch = DirWatch::new(tmp.path());
    let receiver = Receiver::start(ReceiveConfig {
        webhook_key: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        provider: Default::default(),
        secret: Secret::new(SECRET),
        results: tmp.path().join("jobs.results.csv"),
        catalog: tmp.path().join("jobs.catalog.csv"),
    })
    .await
    .unwrap();
    let hook = Url::parse(&format!("http://{}", receiver.addr())).unwrap();
    let manifest = manifest(tmp.path(), |key| {
        Some(batchgen::settings::callback_url(&hook, SECRET, key).to_string())
    });
    submit(&sb, &manifest).await;

    // The last callback leaves 2 stage times after each submit; wait for
    // the receiver's report to show every clip finished (each time the
    // receiver writes it).
    let path = tmp.path().join("jobs.catalog.csv");
    let finished = |rows: &[Row]| {
        rows.len() == 2 * JOBS
            && rows
                .iter()
                .all(|r| r.status == "complete" || r.status == "failed")
    };
    watch
        .until("every clip finished by callback", || {
            let rows = if path.exists() {
                catalog(&path)
            } else {
                Vec::new()
            };
            if finished(&rows) {
                Ok(())
            } else {
                Err(format!(
                    "{} rows; {}",
                    rows.len(),
                    common::callback_counts(&sb)
                ))
            }
        })
        .await;
    receiver.shutdown().await.unwrap();
    let by_callback = catalog(&path);
    let stats = sb.stats();
    check_statuses(&by_callback, &format!("sandbox stats: {stats:?}"));
    assert_eq!(stats.callbacks_failed, 0);
    assert_eq!(stats.stream_fetches, 0);

    let polled = by_polling(StageStyle::Documented).await;
    assert_eq!(
        comparable(&by_callback, &sb.base_url()),
        comparable(&polled.rows, &polled.sandbox.base_url())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_complete_style_gives_the_same_catalog() {
    let older = by_polling(StageStyle::Complete).await;
    check_files(&older).await;
    let documented = by_polling(StageStyle::Documented).await;
    check_files(&documented).await;
    assert_eq!(
        comparable(&older.rows, &older.sandbox.base_url()),
        comparable(&documented.rows, &documented.sandbox.base_url())
    );
    for row in older.rows.iter().filter(|r| r.status == "complete") {
        let name = Path::new(&row.file).file_name().unwrap();
        // The audio after the tag: the tags name each run's own task and
        // time (tests/it/tags/ checks them).
        let (a, b) = (
            std::fs::read(&row.file).unwrap(),
            std::fs::read(documented.songs.join(name)).unwrap(),
        );
        assert_eq!(
            &a[id3_len(&a)..],
            &b[id3_len(&b)..],
            "{name:?}: the same song either way"
        );
    }
}
