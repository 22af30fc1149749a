//! `batchgen measure`: the quality rules over takes on disk (the fixtures
//! of `tests/fixtures/audio`, whose README says how each was made).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{code, run_with_env, stderr, write};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio")
}

async fn measure(args: &[&str]) -> std::process::Output {
    let mut all = vec!["measure".to_owned()];
    all.extend(args.iter().map(|s| s.to_string()));
    run_with_env(all, Vec::new()).await
}

/// Each take's file name, verdict and reason codes, from `--json`.
fn verdicts(stdout: &[u8]) -> Vec<(String, String, Vec<String>)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let file = Path::new(v["file"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let reasons = v["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["code"].as_str().unwrap().to_owned())
                .collect();
            (file, v["verdict"].as_str().unwrap().to_owned(), reasons)
        })
        .collect()
}

fn owned(rows: &[(&str, &str, &[&str])]) -> Vec<(String, String, Vec<String>)> {
    rows.iter()
        .map(|(f, v, r)| {
            (
                f.to_string(),
                v.to_string(),
                r.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_rule_rejects_its_defect_and_keeps_the_rest() {
    let dir = fixtures();
    // The fixtures are seconds long: the length rule is off here.
    let out = measure(&[dir.to_str().unwrap(), "--min-duration", "off", "--json"]).await;
    assert_eq!(code(&out), 1, "a take was rejected: {}", stderr(&out));
    assert_eq!(
        verdicts(&out.stdout),
        owned(&[
            ("clipped.mp3", "rejected", &["true_peak", "clipped"]),
            ("music-nores-192k.mp3", "kept", &[]),
            ("same-a.mp3", "kept", &[]),
            ("same-b.mp3", "rejected", &["identical"]),
            (
                "silence-3s-12s.mp3",
                "rejected",
                &["leading_silence", "trailing_silence"]
            ),
            ("sine-1k-20dbfs.mp3", "kept", &[]),
        ])
    );
    let sine = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["file"].as_str().unwrap().ends_with("sine-1k-20dbfs.mp3"))
        .unwrap();
    let lufs = sine["measurement"]["integrated_lufs"].as_f64().unwrap();
    assert!((lufs + 20.0).abs() < 0.2, "{lufs}");
    assert!((sine["measurement"]["duration"].as_f64().unwrap() - 5.0).abs() < 0.01);
}

#[tokio::test]
async fn the_default_length_rule_rejects_short_takes_and_the_table_says_why() {
    let sine = fixtures().join("sine-1k-20dbfs.mp3");
    let out = measure(&[sine.to_str().unwrap()]).await;
    assert_eq!(code(&out), 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("  length      LUFS"), "{text}");
    assert!(text.contains("rejected"), "{text}");
    assert!(
        text.contains("too short: 5.0 s (at least 30.0 s)"),
        "{text}"
    );
    // -q prints only what is rejected, and nothing when all is kept.
    let out = measure(&[sine.to_str().unwrap(), "--min-duration", "4s", "-q"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn a_manifests_quality_table_sets_the_rules_and_flags_win() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = write(
        tmp.path(),
        "jobs.toml",
        "[quality]\nmin_duration = \"off\"\nmax_true_peak = \"off\"\nmax_clipped_samples = \"off\"\nidentical_takes = \"keep\"\nmax_leading_silence = \"5s\"\nmax_trailing_silence = \"15s\"\n",
    );
    let dir = fixtures();
    let args = [
        dir.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--json",
    ];
    let out = measure(&args).await;
    assert_eq!(
        code(&out),
        0,
        "all kept: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut with_flag = args.to_vec();
    with_flag.extend(["--max-trailing-silence", "10s"]);
    let out = measure(&with_flag).await;
    assert_eq!(code(&out), 1);
    let rejected: Vec<_> = verdicts(&out.stdout)
        .into_iter()
        .filter(|(_, v, _)| v != "kept")
        .collect();
    assert_eq!(
        rejected,
        owned(&[("silence-3s-12s.mp3", "rejected", &["trailing_silence"])])
    );
}

#[tokio::test]
async fn a_window_catches_quiet_and_loud_takes() {
    let dir = fixtures();
    let sine = dir.join("sine-1k-20dbfs.mp3");
    let music = dir.join("music-nores-192k.mp3");
    let out = measure(&[
        sine.to_str().unwrap(),
        music.to_str().unwrap(),
        "--min-duration=off",
        "--loudness=-17..-15",
        "--json",
    ])
    .await;
    assert_eq!(
        verdicts(&out.stdout),
        owned(&[
            ("sine-1k-20dbfs.mp3", "rejected", &["too_quiet"]),
            ("music-nores-192k.mp3", "kept", &[]),
        ])
    );
}

#[tokio::test]
async fn watermarked_lyrics_in_the_tag_are_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let take = tmp.path().join("take.mp3");
    std::fs::copy(fixtures().join("sine-1k-20dbfs.mp3"), &take).unwrap();
    let mut tag = id3::Tag::read_from_path(&take).unwrap_or_default();
    id3::TagLike::add_frame(
        &mut tag,
        id3::frame::Lyrics {
            lang: "eng".into(),
            description: String::new(),
            text: "[Verse]\nThis is a fake app   http://suno.com\n".into(),
        },
    );
    tag.write_to_path(&take, id3::Version::Id3v24).unwrap();
    let out = measure(&[take.to_str().unwrap(), "--min-duration", "off", "--json"]).await;
    assert_eq!(
        verdicts(&out.stdout),
        owned(&[("take.mp3", "rejected", &["watermarked"])])
    );
    let out = measure(&[
        take.to_str().unwrap(),
        "--min-duration",
        "off",
        "--watermarked-lyrics",
        "keep",
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test]
async fn bad_input_has_its_own_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let page = write(
        tmp.path(),
        "page.mp3",
        "<html><body>Not found</body></html>",
    );
    let out = measure(&[page.to_str().unwrap()]).await;
    assert_eq!(code(&out), 1, "an unmeasurable take is not kept");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("unmeasurable") && text.contains("is not an MP3"),
        "{text}"
    );

    let missing = tmp.path().join("gone.mp3");
    let out = measure(&[missing.to_str().unwrap()]).await;
    assert_eq!(code(&out), 66, "{}", stderr(&out));
    assert!(stderr(&out).contains("gone.mp3"), "{}", stderr(&out));

    let out = measure(&[page.to_str().unwrap(), "--max-true-peak", "loud"]).await;
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("--max-true-peak: \"loud\" is not a level in dB"),
        "{}",
        stderr(&out)
    );

    let manifest = write(tmp.path(), "jobs.toml", "[quality]\nmin_duration = 30\n");
    let out = measure(&[
        page.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code(&out), 65, "an invalid manifest: {}", stderr(&out));
    assert!(
        stderr(&out).contains("jobs.toml:2: min_duration:"),
        "{}",
        stderr(&out)
    );
}

/// The sandbox's bad takes, collected and downloaded as a user would, then
/// measured: each kind is rejected by the rule made for it, and the good
/// takes of the same run are kept.
#[tokio::test(flavor = "multi_thread")]
async fn the_sandboxs_bad_takes_are_rejected_by_the_rule_made_for_each() {
    use batchgen::sandbox::{BadTakeKind, SandboxConfig, TakeLength};
    let cases: [(BadTakeKind, &[&str], &[&str]); 6] = [
        (BadTakeKind::Clipped, &["true_peak", "clipped"], &[]),
        (BadTakeKind::SilentTail, &["trailing_silence"], &[]),
        (BadTakeKind::SilentHead, &["leading_silence"], &[]),
        (BadTakeKind::Short, &["too_short"], &[]),
        (BadTakeKind::Quiet, &["too_quiet"], &["--loudness=-16..-12"]),
        (BadTakeKind::Identical, &["identical"], &[]),
    ];
    for (kind, reasons, flags) in cases {
        let sb = crate::common::sandbox(SandboxConfig {
            stage_time: std::time::Duration::from_millis(50),
            take_length: TakeLength::parse("31s..33s").unwrap(),
            bad_take: 1.0,
            bad_take_kind: kind,
            ..SandboxConfig::default()
        })
        .await;
        let tmp = tempfile::tempdir().unwrap();
        let manifest = crate::common::csv_manifest(tmp.path(), 2);
        let out = crate::common::run_bin(
            &sb,
            &[manifest.to_str().unwrap(), "--rate", "unlimited", "-q"],
        )
        .await;
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let results = tmp.path().join("jobs.results.csv");
        let songs = tmp.path().join("songs");
        let out = crate::common::run_env(
            &sb,
            &[
                "collect",
                results.to_str().unwrap(),
                "--download",
                songs.to_str().unwrap(),
                "--poll-interval",
                "100ms",
                "--poll-rate",
                "unlimited",
                "-q",
            ],
        )
        .await;
        assert_eq!(code(&out), 0, "{kind:?}: {}", stderr(&out));
        let mut args = vec![songs.to_str().unwrap(), "--json"];
        args.extend(flags);
        let out = measure(&args).await;
        let got = verdicts(&out.stdout);
        assert_eq!(got.len(), 4, "{kind:?}: two jobs, two takes each: {got:?}");
        for (take, verdict, codes) in &got {
            // Identical takes: the second of each task repeats the first.
            let expected: &[&str] = if kind == BadTakeKind::Identical && take.ends_with("-1.mp3") {
                &[]
            } else {
                reasons
            };
            assert_eq!(codes, expected, "{kind:?}: {take} {verdict}");
        }
        sb.shutdown().await;
    }
}

/// A WAV's samples through the same meter the takes go through.
fn measure_wav(path: &Path) -> batchgen::audio::Measurement {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    // Scaled by 2^(bits - 1), as they were written.
    let scale = (1u32 << (spec.bits_per_sample - 1)) as f32;
    let samples: Vec<f32> = reader
        .samples::<i32>()
        .map(|s| s.unwrap() as f32 / scale)
        .collect();
    let mut meter = batchgen::audio::Meter::new(
        spec.sample_rate,
        spec.channels,
        &batchgen::audio::SilenceSettings::default(),
    )
    .unwrap();
    meter.push(&samples).unwrap();
    meter.finish().unwrap()
}

#[tokio::test]
async fn wavs_of_kept_takes_meet_the_target_or_the_ceiling_and_are_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let wavs = tmp.path().join("wavs");
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sandbox/audio");
    // Every rule off but the clipped one's: the quiet and the normal take
    // are kept and get a WAV; the clipped one is rejected and gets none.
    let out = measure(&[
        assets.to_str().unwrap(),
        "--min-duration=off",
        "--max-true-peak=off",
        "--wav",
        wavs.to_str().unwrap(),
        "--wav-bits",
        "24",
        "--json",
    ])
    .await;
    assert_eq!(
        code(&out),
        1,
        "the clipped take is rejected: {}",
        stderr(&out)
    );
    let mut names: Vec<String> = std::fs::read_dir(&wavs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["normal.wav", "quiet.wav"]);
    for name in names {
        let path = wavs.join(&name);
        let spec = hound::WavReader::open(&path).unwrap().spec();
        assert_eq!((spec.bits_per_sample, spec.sample_rate), (24, 48_000));
        let m = measure_wav(&path);
        let lufs = m.integrated_lufs.unwrap();
        let peak = m.true_peak_dbtp.unwrap();
        assert!(peak <= -1.0 + 0.05, "{name}: true peak {peak}");
        assert!(
            (lufs + 14.0).abs() < 0.2 || peak > -1.2,
            "{name}: {lufs} LUFS, {peak} dBTP"
        );
    }
    // The ceiling binds: a -6 dBTP ceiling makes the quiet take quieter
    // than the target, never louder than the ceiling.
    let strict = tmp.path().join("strict");
    let quiet = assets.join("quiet.mp3");
    let out = measure(&[
        quiet.to_str().unwrap(),
        "--min-duration=off",
        "--wav",
        strict.to_str().unwrap(),
        "--wav-ceiling=-6",
        "--json",
    ])
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["wav"]["outcome"], "written");
    assert_eq!(line["wav"]["limit"], "ceiling");
    let wav = strict.join("quiet.wav");
    let m = measure_wav(&wav);
    assert!(m.true_peak_dbtp.unwrap() <= -6.0 + 0.05, "{m:?}");
    assert!(m.integrated_lufs.unwrap() < -14.5, "{m:?}");
    // A second run leaves the WAV as it is.
    let before = std::fs::read(&wav).unwrap();
    let out = measure(&[
        quiet.to_str().unwrap(),
        "--min-duration=off",
        "--wav",
        strict.to_str().unwrap(),
        "--json",
    ])
    .await;
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["wav"]["outcome"], "exists");
    assert_eq!(std::fs::read(&wav).unwrap(), before);
}
