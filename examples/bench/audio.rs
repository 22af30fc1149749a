//! The `measure` target: what measuring a take costs, and how close its
//! loudness and true peak are to ffmpeg's.
//!
//! - **time per 3-minute take**: `batchgen::audio::measure_file` on a
//!   3-minute 192 kbps stereo MP3, in this process (the library, not the
//!   binary: nothing in the CLI measures yet). The take is built by
//!   repeating the frames of `tests/fixtures/audio/music-nores-192k.mp3`,
//!   encoded without a bit reservoir or LAME tag so that every frame
//!   decodes on its own: decoding it costs what decoding any 3-minute
//!   192 kbps take costs, and the repository ships 73 KB instead of 4 MB.
//!   The figure is this thread's CPU time (the goal is < 0.5 s of one
//!   core) with the wall time beside it, and a decode-only pass and a
//!   16-bit WAV write for scale.
//! - **accuracy**: integrated loudness and true peak of every fixture and
//!   of the 3-minute take against ffmpeg's `ebur128` filter
//!   (`ebur128=peak=true:metadata=1`: the loudness to 0.001 LU, the true
//!   peak as a linear value to 0.001), goal within 0.1 LU / 0.1 dB plus
//!   the resolution ffmpeg prints. Run only when `ffmpeg` is on PATH.
//!   A take that decodes past full scale is shown but not judged:
//!   symphonia 0.5 clamps its output at ±1.0, ffmpeg does not, so their
//!   true peaks of it differ by design (see `batchgen::audio::Measurement`).
//! - **collect, measuring on vs off**: N jobs (200; 10 with `--quick`)
//!   submitted once to the sandbox, their finished tasks collected with
//!   `--download` twice from copies of the same results and state file,
//!   once with `--no-measure` and once measuring every take: the time to
//!   catalog (the `collect` process' wall time) of each, over the same
//!   2·N takes. Goal: measuring within 10 % of not measuring.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use batchgen::audio::{self, Measurement, PcmStream, SilenceSettings, WavSettings};

use super::measure::Summary;
use super::{Bench, Verdict};

/// The fixtures compared with ffmpeg.
const FIXTURES: [&str; 5] = [
    "sine-1k-20dbfs.mp3",
    "silence-3s-12s.mp3",
    "same-a.mp3",
    "music-nores-192k.mp3",
    "clipped.mp3",
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/audio")
        .join(name)
}

/// This thread's CPU time so far, in seconds.
fn thread_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Runs `f` and returns its (wall, CPU) seconds and result.
fn timed<T>(f: impl FnOnce() -> T) -> (f64, f64, T) {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    let out = f();
    (wall.elapsed().as_secs_f64(), thread_cpu() - cpu, out)
}

/// An MP3 of at least `secs` seconds: the no-reservoir fixture's frames
/// repeated.
fn long_take(path: &Path, secs: f64) {
    let frames = std::fs::read(fixture("music-nores-192k.mp3")).expect("fixture");
    let copies = (secs / 3.0).ceil() as usize;
    std::fs::write(path, frames.repeat(copies)).expect("write the long take");
}

/// ffmpeg's integrated loudness (LUFS) and true peak (dBTP) of `file`,
/// and the true peak's printed resolution in dB; `None` if ffmpeg fails.
fn ffmpeg_r128(file: &Path) -> Option<(f64, f64, f64)> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-filter_complex",
            "ebur128=peak=true:metadata=1,ametadata=mode=print:file=-",
            "-f",
            "null",
            "-",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = |key: &str| {
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix(key)?.trim().parse::<f64>().ok())
    };
    let lufs = last("lavfi.r128.I=")?;
    let peak = last("lavfi.r128.true_peak=")?;
    let db = 20.0 * peak.log10();
    let resolution = 20.0 * ((peak + 0.0005) / peak).log10();
    Some((lufs, db, resolution))
}

fn ffmpeg_present() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Bench {
    /// The `measure` target (see the module docs).
    pub(crate) async fn measure_audio(&mut self) {
        println!("\n== measure ==");
        let secs = if self.o.quick { 12.0 } else { 180.0 };
        let take = self.dir.path().join("take.mp3");
        long_take(&take, secs);
        let settings = SilenceSettings::default();
        let (mut cpu, mut wall, mut decode, mut wav) = (vec![], vec![], vec![], vec![]);
        let mut last: Option<Measurement> = None;
        for _ in 0..self.o.runs {
            let (w, c, m) = timed(|| audio::measure_file(&take, &settings).expect("measure"));
            cpu.push(c);
            wall.push(w);
            let (_, c, ()) = timed(|| {
                let mut s = PcmStream::open(&take).expect("open");
                while s.next_chunk().expect("decode").is_some() {}
            });
            decode.push(c);
            let out = self.dir.path().join("take.wav");
            let (_, c, _) =
                timed(|| audio::write_wav(&take, &out, &m, &WavSettings::default()).expect("wav"));
            wav.push(c);
            last = Some(m);
        }
        let m = last.expect("at least one run");
        let per_take = 180.0 / m.duration;
        let (c, w) = (Summary::of(&cpu), Summary::of(&wall));
        println!(
            "take: {:.1} s, {} Hz × {}, {} bytes",
            m.duration, m.sample_rate, m.channels, m.file_bytes
        );
        println!(
            "measure: CPU {} s, wall {} s; decode only: CPU {} s; 16-bit WAV: CPU {} s",
            c.show(3),
            w.show(3),
            Summary::of(&decode).show(3),
            Summary::of(&wav).show(3)
        );
        let per = c.median * per_take;
        println!("per 3-minute take: {per:.3} s of one core");
        self.verdicts.push(Verdict {
            target: "measure",
            figure: format!(
                "{per:.3} s CPU per 3-min take ({:.0}× real time)",
                180.0 / per
            ),
            goal: "< 0.5 s of one core",
            pass: per < 0.5,
        });
        self.measure_accuracy(&take);
        self.measure_in_collect().await;
    }

    /// Collect with and without measuring, over the same takes (module
    /// docs).
    async fn measure_in_collect(&mut self) {
        use batchgen::sandbox::{Sandbox, SandboxConfig};
        let n: u64 = if self.o.quick { 10 } else { 200 };
        let sandbox = Sandbox::start(
            ([127, 0, 0, 1], 0).into(),
            SandboxConfig {
                keys: vec![super::KEY.into()],
                stage_time: std::time::Duration::from_millis(100),
                moderation_word: String::new(),
                ..SandboxConfig::default()
            },
        )
        .await
        .expect("sandbox starts");
        let url = sandbox.base_url();
        let manifest = self.manifest(n, super::gen_manifest::Format::Csv);
        let results = self.results("measured");
        let extra = ["--rate", "unlimited", "--concurrency", "64"];
        let m = super::measure::run_bin(
            &self.o.bin,
            &Self::args(&manifest, &url, &results, &extra),
            super::KEY,
        )
        .await;
        super::measure::expect_ok(&m, "the submission");
        // Every task finished before either collect starts.
        while sandbox
            .accepted_span()
            .is_some_and(|(_, last)| last.elapsed() < std::time::Duration::from_millis(500))
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut walls = Vec::new();
        for (name, flags) in [("off", &["--no-measure"][..]), ("on", &[][..])] {
            let dir = self.dir.path().join(format!("collect-measure-{name}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("folder");
            let copy = dir.join("r.results.csv");
            let sources =
                std::iter::once(results.clone()).chain(batchgen::files::state::files_for(&results));
            let targets =
                std::iter::once(copy.clone()).chain(batchgen::files::state::files_for(&copy));
            for (from, to) in sources.zip(targets).filter(|(from, _)| from.exists()) {
                std::fs::copy(&from, &to).expect("copy the results and their state");
            }
            let mut args: Vec<String> = vec![
                "collect".into(),
                copy.display().to_string(),
                "--base-url".into(),
                url.clone(),
                "--download".into(),
                dir.join("songs").display().to_string(),
                "--poll-interval".into(),
                "100ms".into(),
                "--poll-rate".into(),
                "unlimited".into(),
                "--quiet".into(),
            ];
            args.extend(flags.iter().map(|s| s.to_string()));
            let m = super::measure::run_bin(&self.o.bin, &args, super::KEY).await;
            super::measure::expect_ok(&m, "collect");
            walls.push((name, m.wall, m.cpu));
        }
        sandbox.shutdown().await;
        for (name, wall, cpu) in &walls {
            println!(
                "collect --download, measuring {name}: {wall:.2} s wall, CPU {} s ({} takes)",
                cpu.map_or("?".into(), |c| format!("{c:.2}")),
                2 * n
            );
        }
        let (off, on) = (walls[0].1, walls[1].1);
        let ratio = on / off;
        self.verdicts.push(Verdict {
            target: "measure",
            figure: format!(
                "collect of {} takes: {on:.2} s measuring, {off:.2} s not ({:+.0} %)",
                2 * n,
                (ratio - 1.0) * 100.0
            ),
            goal: "time to catalog within 10 %",
            pass: ratio <= 1.10,
        });
    }

    /// The comparison with ffmpeg (see the module docs).
    fn measure_accuracy(&mut self, take: &Path) {
        if !ffmpeg_present() {
            println!("accuracy: skipped (no ffmpeg on PATH)");
            self.verdicts.push(Verdict {
                target: "measure accuracy",
                figure: "skipped: no ffmpeg on PATH".into(),
                goal: "±0.1 LU, ±0.1 dB vs ffmpeg",
                pass: true,
            });
            return;
        }
        println!("| take | LUFS ours | LUFS ffmpeg | Δ | dBTP ours | dBTP ffmpeg | Δ | judged |");
        println!("|---|---|---|---|---|---|---|---|");
        let mut files: Vec<PathBuf> = FIXTURES.iter().map(|f| fixture(f)).collect();
        files.push(take.to_owned());
        let (mut worst_i, mut worst_tp, mut pass, mut skipped) = (0f64, 0f64, true, Vec::new());
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let ours = audio::measure_file(file, &SilenceSettings::default()).expect("measure");
            let Some((lufs, tp, resolution)) = ffmpeg_r128(file) else {
                println!("| {name} | ffmpeg failed | | | | | | |");
                pass = false;
                continue;
            };
            let (i, p) = (ours.integrated_lufs.unwrap(), ours.true_peak_dbtp.unwrap());
            let judged = ours.sample_peak_dbfs.unwrap() < -0.001;
            println!(
                "| {name} | {i:.3} | {lufs:.3} | {:+.3} | {p:.3} | {tp:.3} | {:+.3} | {} |",
                i - lufs,
                p - tp,
                if judged { "yes" } else { "no: at full scale" }
            );
            if !judged {
                skipped.push(name);
                continue;
            }
            worst_i = worst_i.max((i - lufs).abs());
            worst_tp = worst_tp.max((p - tp).abs() - resolution);
            pass &= (i - lufs).abs() <= 0.1 + 0.0005 && (p - tp).abs() <= 0.1 + resolution;
        }
        let not_judged = if skipped.is_empty() {
            String::new()
        } else {
            format!(" (not judged, clamped: {})", skipped.join(", "))
        };
        self.verdicts.push(Verdict {
            target: "measure accuracy",
            figure: format!(
                "worst |ΔI| {worst_i:.3} LU, |ΔTP| {worst_tp:.3} dB beyond ffmpeg's resolution{not_judged}"
            ),
            goal: "±0.1 LU, ±0.1 dB vs ffmpeg",
            pass,
        });
    }
}
