//! The quality gate inside `collect --download`: every take measured as it
//! lands, judged by the rules (defaults, the manifest's `[quality]` kept in
//! the store, the flags), one take picked per job, ReplayGain tags in the
//! MP3, and the numbers in the catalog report and the store, against the
//! sandbox's music-like takes and their defects (`--bad-take-kind`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use batchgen::files::catalog::Row;
use batchgen::sandbox::{BadTakeKind, Sandbox, SandboxConfig, TakeLength};

use super::{FAST, manifest, submit};
use crate::common::{self, catalog, run_env};

async fn sandbox(bad_take: f64, kind: BadTakeKind) -> Sandbox {
    common::sandbox(SandboxConfig {
        stage_time: Duration::from_millis(100),
        // Short takes keep the suite fast; all above the 30 s rule.
        take_length: TakeLength::parse("31s..34s").unwrap(),
        bad_take,
        bad_take_kind: kind,
        ..SandboxConfig::default()
    })
    .await
}

/// Submits `n` jobs (none moderated) and collects them into `songs`
/// with `extra` flags; the catalog's rows.
async fn collected(sb: &Sandbox, tmp: &Path, n: usize, extra: &[&str]) -> Vec<Row> {
    let results = submit(sb, &manifest(tmp, n, |_| None)).await;
    collect_again(sb, &results, tmp, extra).await
}

async fn collect_again(sb: &Sandbox, results: &Path, tmp: &Path, extra: &[&str]) -> Vec<Row> {
    let songs = tmp.join("songs");
    let mut args = vec![
        "collect",
        common::arg(results),
        "--download",
        common::arg(&songs),
    ];
    args.extend(FAST);
    args.extend(extra);
    let out = run_env(sb, &args).await;
    assert!(
        [0, 1].contains(&common::code(&out)),
        "{}",
        common::stderr(&out)
    );
    catalog(&tmp.join("jobs.catalog.csv"))
}

fn store_of(tmp: &Path) -> PathBuf {
    tmp.join("jobs.results.db")
}

/// The `TXXX` value `name` of the MP3 at `path`.
fn txxx(path: &Path, name: &str) -> Option<String> {
    let tag = id3::Tag::read_from_path(path).unwrap();
    tag.extended_texts()
        .find(|t| t.description == name)
        .map(|t| t.value.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn good_takes_are_measured_kept_picked_and_tagged_for_players() {
    let sb = sandbox(0.0, BadTakeKind::Mixed).await;
    let tmp = tempfile::tempdir().unwrap();
    let rows = collected(&sb, tmp.path(), 3, &[]).await;
    assert_eq!(rows.len(), 6);
    for row in &rows {
        let decoded = row.measured_duration.expect("measured");
        assert!((31.0..=34.5).contains(&decoded), "{decoded}");
        assert!(
            (decoded - row.duration.unwrap()).abs() < 0.1,
            "the decoded length is the host's claim here: {decoded} vs {:?}",
            row.duration
        );
        let lufs = row.loudness.expect("loudness");
        assert!((-30.0..-5.0).contains(&lufs), "{lufs}");
        assert!(row.true_peak.unwrap() <= 0.0);
        assert_eq!((row.verdict.as_str(), row.reasons.as_str()), ("kept", ""));

        // ReplayGain 2.0 tags, read back with the id3 crate: the gain is
        // the reference −18 LUFS minus the loudness the catalog reports.
        let file = Path::new(&row.file);
        let gain = txxx(file, "REPLAYGAIN_TRACK_GAIN").expect("gain tag");
        let value: f64 = gain.strip_suffix(" dB").unwrap().parse().unwrap();
        assert!((value - (-18.0 - lufs)).abs() <= 0.006, "{gain} for {lufs}");
        let peak: f64 = txxx(file, "REPLAYGAIN_TRACK_PEAK")
            .unwrap()
            .parse()
            .unwrap();
        let true_peak = 10f64.powf(row.true_peak.unwrap() / 20.0);
        assert!((peak - true_peak).abs() < 1e-5, "{peak} vs {true_peak}");
        // The catalog's size is the tagged file's: a rerun fetches nothing.
        assert_eq!(
            std::fs::metadata(file).unwrap().len(),
            row.file_bytes.unwrap()
        );
        // The other frames are batchgen's as before.
        assert!(txxx(file, "batchgen:clip_id").is_some_and(|c| c == row.clip_id));
    }
    for key in ["job-0", "job-1", "job-2"] {
        let picks = rows.iter().filter(|r| *r.key == *key && r.pick).count();
        assert_eq!(picks, 1, "one pick for {key}");
    }

    // A rerun measures nothing again and changes nothing.
    let before: Vec<(String, u64)> = rows
        .iter()
        .map(|r| (r.file.clone(), r.file_bytes.unwrap()))
        .collect();
    let mtimes: Vec<_> = rows
        .iter()
        .map(|r| std::fs::metadata(&r.file).unwrap().modified().unwrap())
        .collect();
    let results = tmp.path().join("jobs.results.csv");
    let again = collect_again(&sb, &results, tmp.path(), &[]).await;
    assert_eq!(again, rows);
    let after: Vec<(String, u64)> = again
        .iter()
        .map(|r| (r.file.clone(), r.file_bytes.unwrap()))
        .collect();
    assert_eq!(after, before);
    for (row, mtime) in again.iter().zip(mtimes) {
        assert_eq!(
            std::fs::metadata(&row.file).unwrap().modified().unwrap(),
            mtime,
            "{} untouched",
            row.file
        );
    }
}

/// Each defect of the sandbox's takes is rejected for its own reason.
#[tokio::test(flavor = "multi_thread")]
async fn each_bad_take_is_rejected_for_what_is_wrong_with_it() {
    let cases: [(BadTakeKind, &[&str], &str); 5] = [
        (BadTakeKind::Clipped, &[], "true peak"),
        (BadTakeKind::SilentTail, &[], "of silence at the end"),
        (BadTakeKind::SilentHead, &[], "of silence at the start"),
        (BadTakeKind::Short, &[], "too short"),
        (BadTakeKind::Quiet, &["--loudness", "-20..-8"], "too quiet"),
    ];
    for (kind, flags, reason) in cases {
        let sb = sandbox(1.0, kind).await;
        let tmp = tempfile::tempdir().unwrap();
        let rows = collected(&sb, tmp.path(), 2, flags).await;
        assert_eq!(rows.len(), 4, "{kind:?}");
        for row in &rows {
            assert_eq!(row.verdict, "rejected", "{kind:?}: {row:?}");
            assert!(
                row.reasons.contains(reason),
                "{kind:?}: {:?} should say {reason:?}",
                row.reasons
            );
        }
        // Both rejected: still one pick per job (the lesser evil), which
        // the playlist leaves out.
        assert_eq!(rows.iter().filter(|r| r.pick).count(), 2, "{kind:?}");
    }
}

/// Of two takes with the same audio, the second is rejected; the first is
/// kept and picked. With `--identical-takes keep`, a rerun judges the
/// takes again (nothing downloaded or measured again) and keeps both.
#[tokio::test(flavor = "multi_thread")]
async fn the_second_of_two_identical_takes_is_rejected_until_the_rule_is_off() {
    let sb = sandbox(1.0, BadTakeKind::Identical).await;
    let tmp = tempfile::tempdir().unwrap();
    let rows = collected(&sb, tmp.path(), 2, &[]).await;
    for pair in rows.chunks(2) {
        assert_eq!(pair[0].verdict, "kept", "{pair:?}");
        assert!(pair[0].pick);
        assert_eq!(pair[1].verdict, "rejected");
        assert_eq!(pair[1].reasons, "the same audio as the take before it");
        assert!(!pair[1].pick);
    }
    let downloads = sb.stats().audio_fetches;
    let results = tmp.path().join("jobs.results.csv");
    let again = collect_again(&sb, &results, tmp.path(), &["--identical-takes", "keep"]).await;
    assert!(again.iter().all(|r| r.verdict == "kept"), "{again:?}");
    assert_eq!(sb.stats().audio_fetches, downloads, "nothing fetched again");
    let unchanged: Vec<_> = again.iter().map(|r| (&r.loudness, &r.file_bytes)).collect();
    let first: Vec<_> = rows.iter().map(|r| (&r.loudness, &r.file_bytes)).collect();
    assert_eq!(unchanged, first);
}

/// The manifest's `[quality]` table reaches a later `collect` through the
/// store, and a flag goes above it.
#[tokio::test(flavor = "multi_thread")]
async fn the_manifests_rules_are_kept_for_collect_and_flags_go_above_them() {
    let sb = sandbox(0.0, BadTakeKind::Mixed).await;
    let tmp = tempfile::tempdir().unwrap();
    let manifest = common::write(
        tmp.path(),
        "jobs.toml",
        "[quality]\nmin_duration = \"40s\"\n\n[[job]]\nid = \"a\"\nprompt = \"a calm song\"\n",
    );
    let out = run_env(&sb, &[common::arg(&manifest), "--rate", "unlimited", "-q"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let results = tmp.path().join("jobs.results.csv");
    let rows = collect_again(&sb, &results, tmp.path(), &[]).await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.verdict, "rejected");
        assert!(row.reasons.starts_with("too short: "), "{}", row.reasons);
        assert!(row.reasons.contains("(at least 40.0 s)"), "{}", row.reasons);
    }
    let rows = collect_again(&sb, &results, tmp.path(), &["--min-duration", "30s"]).await;
    assert!(rows.iter().all(|r| r.verdict == "kept"), "{rows:?}");
    assert!(store_of(tmp.path()).exists());
}

/// A job's own `min_duration` / `max_duration` go above `[quality]` and
/// the flags for that job alone, reach a later `collect` through the
/// store, and a change to them judges its takes again; a job with both
/// ends picks the take nearer the middle.
#[tokio::test(flavor = "multi_thread")]
async fn a_jobs_own_duration_limits_judge_its_takes_and_only_its() {
    let sb = sandbox(0.0, BadTakeKind::Mixed).await;
    let tmp = tempfile::tempdir().unwrap();
    let toml = |own: &str| {
        format!(
            "[quality]\nmin_duration = \"40s\"\n\n\
             [[job]]\nid = \"jingle\"\nprompt = \"a short jingle\"\n{own}\n\
             [[job]]\nid = \"song\"\nprompt = \"a calm song\"\n"
        )
    };
    let manifest = common::write(
        tmp.path(),
        "jobs.toml",
        &toml("min_duration = \"30s\"\nmax_duration = \"35s\"\n"),
    );
    let out = run_env(&sb, &[common::arg(&manifest), "--rate", "unlimited", "-q"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let results = tmp.path().join("jobs.results.csv");
    // The flag is the run's rule: the jingle's own limit is above it.
    let rows = collect_again(&sb, &results, tmp.path(), &["--min-duration", "45s"]).await;
    let of = |rows: &[Row], key: &str| -> Vec<Row> {
        rows.iter().filter(|r| r.key == key).cloned().collect()
    };
    let jingle = of(&rows, "jingle");
    assert_eq!(jingle.len(), 2);
    assert!(jingle.iter().all(|r| r.verdict == "kept"), "{jingle:?}");
    let want = 32.5;
    let picked: Vec<&Row> = jingle.iter().filter(|r| r.pick).collect();
    assert_eq!(picked.len(), 1);
    let other = jingle.iter().find(|r| !r.pick).unwrap();
    let off = |r: &Row| (r.measured_duration.unwrap() - want).abs();
    if picked[0].loudness == other.loudness {
        assert!(off(picked[0]) <= off(other), "{jingle:?}");
    }
    for row in of(&rows, "song") {
        assert_eq!(row.verdict, "rejected");
        assert!(row.reasons.contains("(at least 45.0 s)"), "{}", row.reasons);
    }

    // Without the flag the store's rules judge: the jingle's own, and
    // [quality] for the rest (the jingle's minimum too, now that it sets
    // none). Its maximum narrowed under its takes rejects them as too
    // long, with nothing sent or fetched again.
    std::fs::write(&manifest, toml("max_duration = \"20s\"\n")).unwrap();
    let out = run_env(&sb, &[common::arg(&manifest), "--rate", "unlimited", "-q"]).await;
    assert_eq!(common::code(&out), 0, "{}", common::stderr(&out));
    let fetched = sb.stats().audio_fetches;
    let rows = collect_again(&sb, &results, tmp.path(), &[]).await;
    assert_eq!(
        sb.stats().audio_fetches,
        fetched,
        "judged again, not fetched"
    );
    for row in of(&rows, "jingle") {
        assert_eq!(row.verdict, "rejected");
        assert!(
            row.reasons.contains("(at least 40.0 s); too long: "),
            "{}",
            row.reasons
        );
        assert!(row.reasons.contains("(at most 20.0 s)"), "{}", row.reasons);
    }
    for row in of(&rows, "song") {
        assert!(row.reasons.contains("(at least 40.0 s)"), "{}", row.reasons);
    }
}

/// `--no-measure` downloads as before: no numbers, no verdict, no
/// ReplayGain frame; a later collect that measures measures the songs in
/// place (an earlier release's downloads) and tags them, recording their
/// new size, so the next run fetches nothing.
#[tokio::test(flavor = "multi_thread")]
async fn songs_downloaded_unmeasured_are_measured_in_place_later() {
    let sb = sandbox(0.0, BadTakeKind::Mixed).await;
    let tmp = tempfile::tempdir().unwrap();
    let rows = collected(&sb, tmp.path(), 2, &["--no-measure"]).await;
    for row in &rows {
        assert_eq!((row.verdict.as_str(), row.loudness), ("", None));
        assert!(txxx(Path::new(&row.file), "REPLAYGAIN_TRACK_GAIN").is_none());
    }
    let downloads = sb.stats().audio_fetches;
    let results = tmp.path().join("jobs.results.csv");
    let rows = collect_again(&sb, &results, tmp.path(), &[]).await;
    assert_eq!(sb.stats().audio_fetches, downloads, "nothing fetched again");
    for row in &rows {
        assert_eq!(row.verdict, "kept");
        let file = Path::new(&row.file);
        assert!(txxx(file, "REPLAYGAIN_TRACK_GAIN").is_some());
        assert_eq!(
            std::fs::metadata(file).unwrap().len(),
            row.file_bytes.unwrap()
        );
    }
    let again = collect_again(&sb, &results, tmp.path(), &[]).await;
    assert_eq!(again, rows);
    assert_eq!(sb.stats().audio_fetches, downloads);
}

/// `--wav DIR`: a WAV of each job's pick, when kept; it decodes, and its
/// true peak stays under the ceiling. A rerun leaves them as they are.
#[tokio::test(flavor = "multi_thread")]
async fn wav_writes_each_kept_pick_under_the_ceiling() {
    let sb = sandbox(1.0, BadTakeKind::Identical).await;
    let tmp = tempfile::tempdir().unwrap();
    let wavs = tmp.path().join("wavs");
    let flags = ["--wav", common::arg(&wavs), "--wav-bits", "24"];
    let rows = collected(&sb, tmp.path(), 2, &flags).await;
    let picks: Vec<&Row> = rows.iter().filter(|r| r.pick).collect();
    assert_eq!(picks.len(), 2);
    let mut names: Vec<String> = std::fs::read_dir(&wavs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut wanted: Vec<String> = picks
        .iter()
        .map(|r| {
            Path::new(&r.file)
                .with_extension("wav")
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    wanted.sort();
    assert_eq!(names, wanted, "the picks only, not the identical repeats");
    for name in &names {
        let mut reader = hound::WavReader::open(wavs.join(name)).unwrap();
        let spec = reader.spec();
        assert_eq!(spec.bits_per_sample, 24);
        let scale = f64::from(1 << 23);
        let samples: Vec<f64> = reader
            .samples::<i32>()
            .map(|s| f64::from(s.unwrap()) / scale)
            .collect();
        let mut meter = ebur128::EbuR128::new(
            u32::from(spec.channels),
            spec.sample_rate,
            ebur128::Mode::TRUE_PEAK,
        )
        .unwrap();
        meter.add_frames_f64(&samples).unwrap();
        let peak = (0..u32::from(spec.channels))
            .map(|c| meter.true_peak(c).unwrap())
            .fold(0.0, f64::max);
        let db = 20.0 * peak.log10();
        assert!(db <= -1.0 + 0.1, "{name}: true peak {db:.2} dBTP");
    }
    let mtimes: Vec<_> = names
        .iter()
        .map(|n| std::fs::metadata(wavs.join(n)).unwrap().modified().unwrap())
        .collect();
    let results = tmp.path().join("jobs.results.csv");
    // WAVs come from measured downloads.
    for extra in [&[][..], &["--download", "x", "--no-measure"][..]] {
        let mut args = vec!["collect", common::arg(&results), "--wav", "w"];
        args.extend(extra);
        let out = run_env(&sb, &args).await;
        assert_eq!(common::code(&out), 2, "{}", common::stderr(&out));
    }
    collect_again(&sb, &results, tmp.path(), &flags).await;
    for (n, t) in names.iter().zip(mtimes) {
        assert_eq!(
            std::fs::metadata(wavs.join(n)).unwrap().modified().unwrap(),
            t
        );
    }
}
