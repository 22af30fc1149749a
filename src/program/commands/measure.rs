//! `batchgen measure PATH…`: what each take sounds like, in numbers
//! ([`crate::audio`]), and whether the quality rules keep it
//! ([`crate::settings::quality`]), for songs already on disk: a catalog
//! collected before, a folder a user assembled. The takes are only read;
//! with `--wav DIR`, each kept take is also written as a WAV there
//! ([`crate::audio::write_wav`]).
//!
//! The rules are the defaults, under a manifest's `[quality]` table
//! (`--manifest`), under the flags. Of takes with the same audio, every
//! one after the first (in the order given) repeats an earlier take. A
//! take's lyrics are its ID3 `USLT` frame, as `collect` writes it.
//!
//! Exit 0 when every take is kept (and its WAV written); 1 when one is
//! rejected or cannot be measured, or a WAV cannot be written (each named
//! on its own line); 66 for a path that is not there; 73 for a WAV folder
//! that cannot be made.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::audio::{Measurement, SilenceSettings, WavSettings, measure_file, write_wav};
use crate::program::cli::{MeasureArgs, OutputArgs};
use crate::program::exit::{Error, ExitCode};
use crate::settings::quality::{QualityRules, Reason, Take};

/// One take's line of the report.
#[derive(Debug, Serialize)]
struct Judged {
    file: PathBuf,
    verdict: &'static str,
    reasons: Vec<Why>,
    #[serde(skip_serializing_if = "Option::is_none")]
    measurement: Option<Measurement>,
    /// With `--wav`, for a kept take: what became of its WAV.
    #[serde(skip_serializing_if = "Option::is_none")]
    wav: Option<Wav>,
}

/// A kept take's WAV.
#[derive(Debug, Serialize)]
pub(super) struct Wav {
    pub(super) path: PathBuf,
    /// `written`, `exists` (a file was at its name: left as it is) or
    /// `failed`.
    pub(super) outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    gain_db: Option<f64>,
    /// What set the gain: `target`, `ceiling` or `unity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Why {
    code: &'static str,
    message: String,
}

pub fn measure(args: &MeasureArgs, output: &OutputArgs) -> Result<ExitCode, Error> {
    let mut quality = args.quality.settings()?;
    if let Some(manifest) = &args.manifest {
        let manifest = crate::files::manifest::load(manifest)?;
        quality = quality.or(manifest.settings.quality.clone());
    }
    let rules = quality.rules();
    let files = takes(&args.paths)?;
    if let Some(dir) = &args.wav.wav {
        std::fs::create_dir_all(dir).map_err(|source| Error::WavDir {
            path: dir.clone(),
            source,
        })?;
    }
    let wav_settings = args.wav.settings();
    let measured = measure_all(&files);
    let mut seen = HashSet::new();
    let mut rejected = 0;
    let mut lines = String::new();
    if !args.json && !output.quiet {
        lines.push_str(HEADER);
    }
    for (file, result) in files.into_iter().zip(measured) {
        let mut judged = judge(file, result, &rules, &mut seen);
        if let (Some(dir), Some(m), "kept") = (&args.wav.wav, &judged.measurement, judged.verdict) {
            judged.wav = Some(wav(&judged.file, m, dir, &wav_settings));
        }
        let wav_failed = judged.wav.as_ref().is_some_and(|w| w.outcome == "failed");
        if judged.verdict != "kept" || wav_failed {
            rejected += 1;
        }
        if args.json {
            let json = serde_json::to_string(&judged)
                .map_err(|e| anyhow::anyhow!("cannot encode a measurement: {e}"))?;
            lines.push_str(&json);
            lines.push('\n');
        } else if !output.quiet || judged.verdict != "kept" {
            lines.push_str(&row(&judged));
        }
    }
    let text = crate::util::redact::text(&lines);
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(if rejected == 0 {
        ExitCode::Success
    } else {
        ExitCode::RowsFailed
    })
}

/// The MP3 files `paths` name, in order: each file as given, each folder's
/// `.mp3` files (any case) by name.
fn takes(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let unreadable = |path: &Path, source| {
        Error::Manifest(crate::files::manifest::ManifestError::Unreadable {
            path: path.to_owned(),
            source,
        })
    };
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| unreadable(path, e))?;
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| unreadable(path, e))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("mp3")) && p.is_file())
            .collect();
        inside.sort();
        files.extend(inside);
    }
    Ok(files)
}

/// Every file measured, in order, on as many threads as the machine has
/// cores: decoding is CPU work.
fn measure_all(files: &[PathBuf]) -> Vec<Result<Measurement, String>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(files.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<Measurement, String>>>> =
        files.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let result =
                        measure_file(file, &SilenceSettings::default()).map_err(|e| e.to_string());
                    *results[i].lock().expect("poisoned") = Some(result);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("poisoned")
                .expect("every file is measured")
        })
        .collect()
}

/// A take's verdict under `rules`; `seen` holds the audio of the takes
/// before it.
fn judge(
    file: PathBuf,
    measured: Result<Measurement, String>,
    rules: &QualityRules,
    seen: &mut HashSet<String>,
) -> Judged {
    let m = match measured {
        Ok(m) => m,
        Err(why) => {
            return Judged {
                file,
                verdict: "unmeasurable",
                reasons: vec![Why {
                    code: "unmeasurable",
                    message: why,
                }],
                measurement: None,
                wav: None,
            };
        }
    };
    let take = Take {
        duration: Duration::from_secs_f64(m.duration),
        leading_silence: Duration::from_secs_f64(m.leading_silence),
        trailing_silence: Duration::from_secs_f64(m.trailing_silence),
        true_peak: m.true_peak_dbtp,
        clipped_samples: m.clipped_samples,
        loudness: m.integrated_lufs,
        repeats_earlier_take: !seen.insert(m.audio_sha256.clone()),
        watermarked: lyrics(&file).is_some_and(|l| crate::api::feed::is_watermarked(&l)),
    };
    let reasons: Vec<Why> = rules
        .verdict(&take)
        .iter()
        .map(|r: &Reason| Why {
            code: r.code(),
            message: r.to_string(),
        })
        .collect();
    Judged {
        file,
        verdict: if reasons.is_empty() {
            "kept"
        } else {
            "rejected"
        },
        reasons,
        measurement: Some(m),
        wav: None,
    }
}

/// Writes the WAV of the kept take `mp3` into `dir`, unless a file is
/// already at its name.
pub(super) fn wav(mp3: &Path, m: &Measurement, dir: &Path, settings: &WavSettings) -> Wav {
    let name = mp3
        .file_stem()
        .map_or_else(|| "take".into(), |s| s.to_os_string());
    let path = dir.join(name).with_extension("wav");
    let mut wav = Wav {
        path: path.clone(),
        outcome: "exists",
        gain_db: None,
        limit: None,
        error: None,
    };
    if std::fs::symlink_metadata(&path).is_ok() {
        return wav;
    }
    match write_wav(mp3, &path, m, settings) {
        Ok(report) => {
            wav.outcome = "written";
            wav.gain_db = Some(report.gain_db);
            wav.limit = Some(match report.limit {
                crate::audio::Limit::Target => "target",
                crate::audio::Limit::Ceiling => "ceiling",
                crate::audio::Limit::Unity => "unity",
            });
        }
        Err(e) => {
            wav.outcome = "failed";
            wav.error = Some(e.to_string());
        }
    }
    wav
}

/// The take's lyrics tag, if it has one.
fn lyrics(file: &Path) -> Option<String> {
    let tag = id3::Tag::read_from_path(file).ok()?;
    let text: Vec<String> = tag.lyrics().map(|l| l.text.clone()).collect();
    (!text.is_empty()).then(|| text.join("\n"))
}

const HEADER: &str =
    "  length      LUFS    LRA   dBTP   head   tail  clipped  verdict       take\n";

/// One take as a line of the table, its reasons after it.
fn row(j: &Judged) -> String {
    let secs = |seconds: f64| format!("{seconds:.1}s");
    let db = |v: Option<f64>| v.map_or_else(|| "-inf".to_owned(), |v| format!("{v:.1}"));
    let mut line = match &j.measurement {
        Some(m) => format!(
            "{:>8} {:>9} {:>6.1} {:>6} {:>6} {:>6} {:>8}  {:<13} {}\n",
            secs(m.duration),
            db(m.integrated_lufs),
            m.loudness_range_lu,
            db(m.true_peak_dbtp),
            secs(m.leading_silence),
            secs(m.trailing_silence),
            m.clipped_samples,
            j.verdict,
            j.file.display()
        ),
        None => format!(
            "{:>8} {:>9} {:>6} {:>6} {:>6} {:>6} {:>8}  {:<13} {}\n",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            "-",
            j.verdict,
            j.file.display()
        ),
    };
    for why in &j.reasons {
        line.push_str(&format!("          {}\n", why.message));
    }
    if let Some(wav) = &j.wav {
        let said = match (wav.outcome, wav.gain_db, wav.limit, &wav.error) {
            ("written", Some(gain), Some(limit), _) => {
                format!("written, gain {gain:+.1} dB (set by the {limit})")
            }
            ("exists", ..) => "a file is already there: left as it is".to_owned(),
            (_, _, _, Some(error)) => format!("not written: {error}"),
            (outcome, ..) => outcome.to_owned(),
        };
        line.push_str(&format!("          wav {}: {said}\n", wav.path.display()));
    }
    line
}
