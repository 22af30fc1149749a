//! The rerunnable benchmark: every performance target of the issue, measured
//! on the release binary as users run it, with a pass/fail verdict.
//!
//! ```sh
//! cargo run --release --example bench -- [--quick] [--only rate|overhead|memory|validate|rerun|sandbox|collect|collect-memory] [--runs K] [--rates 5,50,500]
//! cargo run --release --example bench -- --only collect [--collect-t 20,60] [--collect-n 100,1000]
//! cargo run --release --example bench -- --only collect-memory [--collect-memory-n 100000,1000000]
//! cargo run --release --example bench -- --only measure      # audio measuring: time per take, accuracy vs ffmpeg
//! ```
//!
//! The binary runs as a subprocess against servers inside this process: the
//! real sandbox (`batchgen::sandbox`) for the overhead comparison, and a
//! counting server (see `servers.rs` for why) where arrival times or a cheap
//! sink are needed. Figures are medians of `--runs` runs with the range in
//! parentheses; the machine line says what they depend on. `--quick` shrinks
//! every size so `tests/it/bench_smoke.rs` can run the whole thing in seconds
//! (its verdicts are then meaningless; it only keeps the bench from rotting).
//! `--bin-path` points at another binary (the smoke test's debug build).

mod audio;
mod collect;
mod collect_memory;
#[allow(dead_code)] // its `main` and `usage` belong to the example binary
#[path = "../gen_manifest.rs"]
mod gen_manifest;
mod measure;
mod servers;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use batchgen::files::results::{self, Record, Status};
use batchgen::job::Job;
use batchgen::sandbox::{Sandbox, SandboxConfig};
use gen_manifest::Format;
use measure::{Measured, Summary, expect_ok, run_bin};
use servers::{Counter, Limit};

const TARGETS: [&str; 10] = [
    "rate",
    "limit",
    "overhead",
    "sandbox",
    "memory",
    "validate",
    "rerun",
    "collect",
    "collect-memory",
    "measure",
];
const KEY: &str = "sk-bench-key";
/// The limit target's network delay between client and host: uniform in
/// `[0, LIMIT_JITTER]`.
const LIMIT_JITTER: Duration = Duration::from_millis(1);

/// Command-line options.
struct Opts {
    quick: bool,
    only: Vec<String>,
    runs: usize,
    bin: PathBuf,
    /// Largest manifest actually *run* (not just validated) for peak RSS.
    max_run_rows: u64,
    /// The rates the rate target runs (`--rates 500` to look at one).
    rates: Vec<u32>,
    /// The rates the limit target runs (`--limit-rates 4`).
    limit_rates: Vec<f64>,
    /// The collect target's generation times T, in seconds.
    collect_t: Vec<u64>,
    /// The collect target's task counts N.
    collect_n: Vec<u64>,
    /// The collect-memory target's task counts N.
    collect_memory_n: Vec<u64>,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        quick: false,
        only: Vec::new(),
        runs: 0,
        bin: PathBuf::new(),
        max_run_rows: 100_000,
        rates: Vec::new(),
        limit_rates: Vec::new(),
        collect_t: Vec::new(),
        collect_n: Vec::new(),
        collect_memory_n: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().expect("flag needs a value");
        match a.as_str() {
            "--quick" => o.quick = true,
            "--only" => o.only.extend(value().split(',').map(str::to_owned)),
            "--runs" => o.runs = value().parse().expect("--runs N"),
            "--bin-path" => o.bin = PathBuf::from(value()),
            "--max-run-rows" => o.max_run_rows = value().parse().expect("--max-run-rows N"),
            "--rates" => {
                let list = value();
                o.rates.extend(
                    list.split(',')
                        .map(|r| r.parse::<u32>().expect("--rates R,R")),
                );
            }
            "--limit-rates" => {
                let list = value();
                o.limit_rates.extend(
                    list.split(',')
                        .map(|r| r.parse::<f64>().expect("--limit-rates R,R")),
                );
            }
            "--collect-t" => o.collect_t.extend(numbers(&value(), "--collect-t S,S")),
            "--collect-n" => o.collect_n.extend(numbers(&value(), "--collect-n N,N")),
            "--collect-memory-n" => o
                .collect_memory_n
                .extend(numbers(&value(), "--collect-memory-n N,N")),
            _ => {
                eprintln!(
                    "usage: bench [--quick] [--only {}] [--runs K] [--bin-path PATH] [--max-run-rows N] [--rates R,R] [--limit-rates R,R] [--collect-t S,S] [--collect-n N,N] [--collect-memory-n N,N]",
                    TARGETS.join("|")
                );
                std::process::exit(2);
            }
        }
    }
    if let Some(bad) = o.only.iter().find(|t| !TARGETS.contains(&t.as_str())) {
        eprintln!("bench: unknown target {bad:?}");
        std::process::exit(2);
    }
    if o.runs == 0 {
        o.runs = if o.quick { 1 } else { 3 };
    }
    if o.bin.as_os_str().is_empty() {
        o.bin = measure::release_binary();
    }
    o
}

/// A comma-separated list of numbers, or exit with `usage`.
fn numbers(list: &str, usage: &str) -> Vec<u64> {
    list.split(',')
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{usage}")))
        .collect()
}

/// One target's outcome, for the closing table.
struct Verdict {
    target: &'static str,
    figure: String,
    goal: &'static str,
    pass: bool,
}

struct Bench {
    o: Opts,
    dir: tempfile::TempDir,
    verdicts: Vec<Verdict>,
}

#[tokio::main]
async fn main() {
    let o = parse_args();
    println!("machine: {}", measure::machine(&o.bin));
    println!("binary: {}", o.bin.display());
    if o.quick {
        println!("quick mode: sizes reduced, verdicts are not meaningful");
    }
    let mut b = Bench {
        o,
        dir: tempfile::tempdir().expect("temp dir"),
        verdicts: Vec::new(),
    };
    let on = |t: &str| b.o.only.is_empty() || b.o.only.iter().any(|x| x == t);
    let (rate, over, sand) = (on("rate"), on("overhead"), on("sandbox"));
    let limit = on("limit");
    let scale = on("memory") || on("validate") || on("rerun");
    let coll = on("collect");
    let coll_mem = on("collect-memory");
    let meas = on("measure");
    if rate {
        b.rate().await;
    }
    if limit {
        b.limit().await;
    }
    if over || sand {
        b.overhead_and_sandbox(over, sand).await;
    }
    if scale {
        b.scale().await;
    }
    if coll {
        b.collect().await;
    }
    if coll_mem {
        b.collect_memory().await;
    }
    if meas {
        b.measure_audio().await;
    }
    println!("\n== summary ==");
    println!("| target | figure | goal | status |\n|---|---|---|---|");
    for v in &b.verdicts {
        let status = if v.pass { "PASS" } else { "FAIL" };
        println!("| {} | {} | {} | {status} |", v.target, v.figure, v.goal);
    }
}

impl Bench {
    /// The manifest of `rows` jobs in `format`, generated once per size.
    fn manifest(&self, rows: u64, format: Format) -> PathBuf {
        let ext = if format == Format::Csv { "csv" } else { "toml" };
        let path = self.dir.path().join(format!("m{rows}.{ext}"));
        if !path.exists() {
            let file = std::fs::File::create(&path).expect("create manifest");
            gen_manifest::write_manifest(file, rows, format, 7).expect("write manifest");
        }
        path
    }

    /// A fresh results path (the file and its lock removed).
    fn results(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.results.csv"));
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(path.with_extension("csv.lock"));
        // And its state file (the previous design had none).
        for file in batchgen::files::state::files_for(&path) {
            let _ = std::fs::remove_file(file);
        }
        path
    }

    fn args(manifest: &Path, url: &str, results: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = vec![manifest.display().to_string(), "--base-url".into()];
        a.push(url.to_owned());
        a.extend(["-o".into(), results.display().to_string(), "--quiet".into()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// Target 1: R in {5, 50, 500}/s over N = 20·R jobs.
    async fn rate(&mut self) {
        println!("\n== rate ==");
        let rates: &[u32] = match (&self.o.rates[..], self.o.quick) {
            ([], true) => &[5],
            ([], false) => &[5, 50, 500],
            (chosen, _) => chosen,
        };
        for &r in rates {
            let n = if self.o.quick { 20 } else { 20 * u64::from(r) };
            let manifest = self.manifest(n, Format::Csv);
            let (mut achieved, mut limited, mut window, mut failed_runs) = (Vec::new(), 0, 0, 0);
            for _ in 0..self.o.runs {
                let counter = Counter::start(Limit::Sandbox(Duration::from_secs(1) / r)).await;
                let res = self.results("rate");
                let rate = format!("{r}/s");
                let args = Self::args(&manifest, &counter.base_url, &res, &["--rate", &rate]);
                // Twice the ideal duration, plus start-up: enough for any
                // run that keeps the rate.
                let limit = Duration::from_secs_f64(2.0 * n as f64 / f64::from(r) + 5.0);
                let m = measure::run_bin_for(&self.o.bin, &args, KEY, limit).await;
                if m.code != 0 {
                    // Measured, not fatal: exit 1 here means rows failed on 429s.
                    println!("  run exited {}: {}", m.code, m.stderr.trim());
                    failed_runs += 1;
                }
                let arrivals = counter.arrivals();
                achieved.push(measure::achieved_rate(&arrivals));
                limited += counter.rate_limited();
                window = window.max(measure::max_per_second(&arrivals));
            }
            let s = Summary::of(&achieved);
            let worst = achieved
                .iter()
                .map(|a| (a - f64::from(r)).abs() / f64::from(r))
                .fold(0.0, f64::max);
            let pass =
                worst <= 0.01 && limited == 0 && window <= r as usize + 1 && failed_runs == 0;
            println!(
                "R={r}/s N={n}: achieved {}/s (first to last arrival), worst deviation {:.2}%, 429s {limited}, busiest 1-s window {window} (limit {})",
                s.show(2),
                worst * 100.0,
                r + 1
            );
            self.verdicts.push(Verdict {
                target: "rate",
                figure: format!(
                    "R={r}: {:.2}/s, {limited}×429, max window {window}, {failed_runs}/{} runs not exit 0",
                    s.median, self.o.runs
                ),
                goal: "±1%, 0×429, window ≤ R+1",
                pass,
            });
        }
    }

    /// The limit target: `--rate r` against a host that allows exactly r
    /// with zero tolerance, each request judged after up to
    /// [`LIMIT_JITTER`] of network delay, answering a bare 429 (no
    /// `Retry-After`). Goal: throughput ≥ 0.95·r (jobs accepted per second,
    /// first request to last) with 429s ≤ 5 % of requests.
    async fn limit(&mut self) {
        println!("\n== limit (zero-tolerance host, {LIMIT_JITTER:?} jitter) ==");
        let rates: &[f64] = match (&self.o.limit_rates[..], self.o.quick) {
            ([], true) => &[20.0],
            ([], false) => &[2.0, 4.0, 20.0],
            (chosen, _) => chosen,
        };
        for &r in rates {
            // 30 s of requests at the configured rate (a few in quick mode).
            let n = if self.o.quick { 10 } else { (30.0 * r) as u64 };
            let manifest = self.manifest(n, Format::Csv);
            let (mut throughput, mut share, mut failed_runs) = (Vec::new(), Vec::new(), 0);
            for _ in 0..self.o.runs {
                let interval = Duration::from_secs_f64(1.0 / r);
                let counter = Counter::start(Limit::Strict {
                    interval,
                    jitter: LIMIT_JITTER,
                })
                .await;
                let res = self.results("limit");
                let rate = format!("{r}/s");
                let args = Self::args(&manifest, &counter.base_url, &res, &["--rate", &rate]);
                let limit = Duration::from_secs_f64(4.0 * n as f64 / r + 30.0);
                let m = measure::run_bin_for(&self.o.bin, &args, KEY, limit).await;
                if m.code != 0 {
                    println!("  run exited {}: {}", m.code, m.stderr.trim());
                    failed_runs += 1;
                }
                // Jobs accepted per second, first request to last (429s and
                // their resends included; the process's start-up not).
                let arrivals = counter.arrivals();
                throughput.push(measure::achieved_rate_of(&arrivals, n));
                let requests = arrivals.len() as f64;
                share.push(counter.rate_limited() as f64 / requests.max(1.0));
            }
            let t = Summary::of(&throughput);
            let percent: Vec<f64> = share.iter().map(|x| x * 100.0).collect();
            let worst_t = throughput.iter().copied().fold(f64::INFINITY, f64::min);
            let worst_l = share.iter().copied().fold(0.0, f64::max);
            let pass = worst_t >= 0.95 * r && worst_l <= 0.05 && failed_runs == 0;
            println!(
                "r={r}/s N={n}: {}/s jobs, first request to last ({:.1}% of r), 429s {}% of requests",
                t.show(2),
                100.0 * t.median / r,
                Summary::of(&percent).show(1)
            );
            self.verdicts.push(Verdict {
                target: "limit",
                figure: format!(
                    "r={r}: {:.2}/s ({:.1}% of r) worst, 429s {:.1}% worst, {failed_runs}/{} runs not exit 0",
                    worst_t,
                    100.0 * worst_t / r,
                    100.0 * worst_l,
                    self.o.runs
                ),
                goal: "≥ 0.95·r, 429s ≤ 5%",
                pass,
            });
        }
    }

    /// Targets 2 and 6: batchgen vs a bare reqwest loop against a
    /// zero-latency, unlimited sandbox; then the sandbox driven as hard as
    /// the bench can (256 client tasks).
    async fn overhead_and_sandbox(&mut self, over: bool, sand: bool) {
        let n: u64 = if self.o.quick { 200 } else { 10_000 };
        let manifest = self.manifest(n, Format::Csv);
        let jobs: Arc<[Job]> = batchgen::files::manifest::load(&manifest)
            .expect("generated manifest is valid")
            .collect_jobs()
            .expect("readable")
            .into();
        let config = SandboxConfig {
            keys: vec![KEY.into()],
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::start(([127, 0, 0, 1], 0).into(), config)
            .await
            .expect("sandbox starts");
        let url = sandbox.base_url();
        let bare = |tasks: usize, count: u64| {
            let (url, jobs) = (url.clone(), jobs.clone());
            async move {
                tokio::task::spawn_blocking(move || {
                    servers::bare_loop(&url, KEY, jobs, tasks, count as usize)
                })
                .await
                .unwrap()
            }
        };
        let (mut ours, mut loop64, mut cpu, mut sandbox_cpu) = (vec![], vec![], vec![], vec![]);
        // The same two, over the submission phase only: first to last
        // acceptance, as the sandbox saw it (no start-up, validation or
        // final rewrite; the loop's client set-up is left out likewise).
        let (mut ours_phase, mut loop_phase, mut loop_cpu) = (vec![], vec![], vec![]);
        let phase = |sandbox: &Sandbox| {
            let (first, last) = sandbox.accepted_span().expect("tasks were accepted");
            (n - 1) as f64 / (last - first).as_secs_f64()
        };
        if over {
            println!("\n== overhead ==");
            for _ in 0..self.o.runs {
                sandbox.reset();
                let res = self.results("overhead");
                let extra = ["--rate", "unlimited", "--concurrency", "64"];
                let before = measure::own_cpu_seconds();
                let m = run_bin(&self.o.bin, &Self::args(&manifest, &url, &res, &extra), KEY).await;
                let after = measure::own_cpu_seconds();
                expect_ok(&m, "overhead run");
                assert_eq!(sandbox.stats().accepted, n, "every job reached the sandbox");
                ours.push(n as f64 / m.wall);
                ours_phase.push(phase(&sandbox));
                if let Some(c) = m.cpu {
                    cpu.push(c / n as f64 * 1000.0);
                }
                if let (Some(a), Some(b)) = (before, after) {
                    sandbox_cpu.push((b - a) / n as f64 * 1000.0);
                }
                sandbox.reset();
                let before = measure::own_cpu_seconds();
                let l = bare(64, n).await;
                let after = measure::own_cpu_seconds();
                assert_eq!(l.errors, 0, "the bare loop saw errors");
                loop64.push(l.per_second);
                loop_phase.push(phase(&sandbox));
                if let (Some(a), Some(b)) = (before, after) {
                    loop_cpu.push((b - a) / n as f64 * 1000.0);
                }
            }
            let (o, l) = (Summary::of(&ours), Summary::of(&loop64));
            let (op, lp) = (Summary::of(&ours_phase), Summary::of(&loop_phase));
            let ratio = op.median / lp.median;
            let end_to_end = o.median / l.median;
            println!("N={n}, concurrency 64, sandbox without limit or latency");
            println!("submission phase (first to last acceptance at the sandbox):");
            println!("  batchgen:          {} req/s", op.show(0));
            println!("  bare reqwest loop: {} req/s", lp.show(0));
            println!("  ratio: {:.1}% (goal ≥ 90%)", ratio * 100.0);
            // Each batchgen run next to the loop run that followed it: the
            // machine's drift between runs (a busy neighbour) cancels out,
            // so this spread says how far the median ratio can be trusted.
            let paired: Vec<f64> = ours_phase
                .iter()
                .zip(&loop_phase)
                .map(|(o, l)| o / l * 100.0)
                .collect();
            println!(
                "  run by run (each batchgen run over the loop run after it): {} %",
                Summary::of(&paired).show(1)
            );
            println!(
                "end to end (batchgen: process wall time, start-up and final rewrite included):"
            );
            println!("  batchgen:          {} req/s", o.show(0));
            println!("  bare reqwest loop: {} req/s", l.show(0));
            println!("  ratio: {:.1}%", end_to_end * 100.0);
            if !cpu.is_empty() {
                let c = Summary::of(&cpu);
                println!("batchgen CPU per 1,000 submissions: {} s", c.show(3));
            }
            if !sandbox_cpu.is_empty() {
                let c = Summary::of(&sandbox_cpu);
                println!(
                    "sandbox CPU per 1,000 requests (bench process): {} s",
                    c.show(3)
                );
            }
            if !loop_cpu.is_empty() {
                let c = Summary::of(&loop_cpu);
                println!(
                    "bare loop + sandbox CPU per 1,000 requests (bench process): {} s",
                    c.show(3)
                );
            }
            self.verdicts.push(Verdict {
                target: "overhead",
                figure: format!(
                    "submitting {:.0} vs {:.0} req/s = {:.0}% (end to end {:.0}%); {} CPU-s/1k",
                    op.median,
                    lp.median,
                    ratio * 100.0,
                    end_to_end * 100.0,
                    cpu.first()
                        .map_or("?".into(), |_| format!("{:.3}", Summary::of(&cpu).median))
                ),
                goal: "≥ 90% of bare loop",
                pass: ratio >= 0.9,
            });
        }
        if sand {
            println!("\n== sandbox ==");
            // Its capacity is the most any client drew from it: the bare
            // loop at a few concurrencies (client and server share the
            // 2 cores, so this is a floor on what it could serve alone).
            let count = n * 2;
            let mut best = Summary::of(&[0.0]);
            for tasks in [16, 64, 256] {
                let mut alone = vec![];
                for _ in 0..self.o.runs {
                    sandbox.reset();
                    let l = bare(tasks, count).await;
                    assert_eq!(l.errors, 0, "the bare loop saw errors");
                    alone.push(l.per_second);
                }
                let a = Summary::of(&alone);
                println!(
                    "bare loop, {tasks} tasks, {count} requests: {} req/s",
                    a.show(0)
                );
                if a.median > best.median {
                    best = a;
                }
            }
            sandbox.reset();
            // What batchgen drew while submitting (not averaged over its
            // start-up and final rewrite).
            let needed = if ours_phase.is_empty() {
                0.0
            } else {
                Summary::of(&ours_phase).median
            };
            let pass = needed == 0.0 || best.median >= 1.1 * needed;
            println!(
                "sandbox capacity {:.0} req/s vs batchgen's {needed:.0} req/s in the overhead target",
                best.median
            );
            self.verdicts.push(Verdict {
                target: "sandbox",
                figure: format!(
                    "{:.0} req/s served (batchgen drew {needed:.0})",
                    best.median
                ),
                goal: "≥ 1.1 × batchgen's overhead rate",
                pass,
            });
        }
        sandbox.shutdown().await;
    }

    /// Targets 3–5 and the growth table: validate, run and rerun manifests
    /// of 10^3 … 10^6 rows.
    async fn scale(&mut self) {
        println!("\n== memory / validate / rerun: cost by N ==");
        let sizes: &[u64] = if self.o.quick {
            &[1_000]
        } else {
            &[1_000, 10_000, 100_000, 1_000_000]
        };
        println!(
            "| N | validate s | validate RSS MB | run s | run RSS MB | rerun s | rerun RSS MB | rerun requests | status s | status RSS MB |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let mb = |m: &Measured| m.rss_kb.map_or(f64::NAN, |k| k as f64 / 1024.0);
        let mut last = None;
        let mut imports = Vec::new();
        for &n in sizes {
            let csv = self.manifest(n, Format::Csv);
            let mut val = Vec::new();
            for _ in 0..self.o.runs {
                let m = run_bin(
                    &self.o.bin,
                    &["validate".into(), csv.display().to_string()],
                    KEY,
                )
                .await;
                expect_ok(&m, "validate");
                val.push(m);
            }
            let mut run = Vec::new();
            if n <= self.o.max_run_rows {
                for _ in 0..self.o.runs {
                    let sink = Counter::start(Limit::Unlimited).await;
                    let res = self.results("scale");
                    let extra = ["--rate", "unlimited", "--concurrency", "64"];
                    let m = run_bin(
                        &self.o.bin,
                        &Self::args(&csv, &sink.base_url, &res, &extra),
                        KEY,
                    )
                    .await;
                    expect_ok(&m, "run");
                    run.push(m);
                }
            }
            let res = self.results("rerun");
            finished_results(&csv, &res);
            // The first run over a results file of the release before the
            // state store builds the store from it (the upgrade's import);
            // the reruns measured after it read the store.
            let sink = Counter::start(Limit::Unlimited).await;
            let first = run_bin(
                &self.o.bin,
                &Self::args(&csv, &sink.base_url, &res, &[]),
                KEY,
            )
            .await;
            expect_ok(&first, "import");
            imports.push(format!(
                "| {n} | {:.2} | {:.0} | {} |",
                first.wall,
                mb(&first),
                sink.all_requests()
            ));
            let (mut rerun, mut sent) = (Vec::new(), sink.all_requests());
            for _ in 0..self.o.runs {
                let sink = Counter::start(Limit::Unlimited).await;
                let m = run_bin(
                    &self.o.bin,
                    &Self::args(&csv, &sink.base_url, &res, &[]),
                    KEY,
                )
                .await;
                expect_ok(&m, "rerun");
                sent += sink.all_requests();
                rerun.push(m);
            }
            // `batchgen status` over the same finished results file (a
            // binary from before `status` has none: shown as not run).
            let mut status = Vec::new();
            for _ in 0..self.o.runs {
                let args = ["status".into(), res.display().to_string(), "--json".into()];
                let m = run_bin(&self.o.bin, &args, KEY).await;
                if m.code != 0 {
                    status.clear();
                    break;
                }
                status.push(m);
            }
            let wall = |v: &[Measured]| Summary::of(&v.iter().map(|m| m.wall).collect::<Vec<_>>());
            let rss = |v: &[Measured]| Summary::of(&v.iter().map(mb).collect::<Vec<_>>());
            let (vw, vr, rw, rr) = (wall(&val), rss(&val), wall(&rerun), rss(&rerun));
            let (run_w, run_r) = if run.is_empty() {
                ("not run".to_owned(), "not run".to_owned())
            } else {
                (wall(&run).show(2), rss(&run).show(0))
            };
            let (status_w, status_r) = if status.is_empty() {
                ("not run".to_owned(), "not run".to_owned())
            } else {
                (wall(&status).show(2), rss(&status).show(0))
            };
            println!(
                "| {n} | {} | {} | {run_w} | {run_r} | {} | {} | {sent} | {status_w} | {status_r} |",
                vw.show(2),
                vr.show(0),
                rw.show(2),
                rr.show(0)
            );
            let run_rss = (!run.is_empty()).then(|| rss(&run));
            let status_rss = (!status.is_empty()).then(|| rss(&status));
            last = Some((n, vw, vr, run_rss, rw, sent, status_rss));
        }
        println!(
            "\nThe first run over a finished results file with no state store beside it (the import an upgrade makes):"
        );
        println!("| N | import s | import RSS MB | requests |");
        println!("|---|---|---|---|");
        for line in &imports {
            println!("{line}");
        }
        let toml_rows = if self.o.quick { 1_000 } else { 100_000 };
        let toml = self.manifest(toml_rows, Format::Toml);
        let mut tv = Vec::new();
        for _ in 0..self.o.runs {
            let m = run_bin(
                &self.o.bin,
                &["validate".into(), toml.display().to_string()],
                KEY,
            )
            .await;
            expect_ok(&m, "validate toml");
            tv.push(m.wall);
        }
        let tv = Summary::of(&tv);
        println!("TOML, {toml_rows} jobs: validate {} s", tv.show(2));

        let (n, vw, vr, run_rss, rw, sent, status_rss) = last.expect("at least one size");
        let run_fig = run_rss.map_or(
            format!("run not measured at {n} (over --max-run-rows)"),
            |r| format!("run {:.0} MB", r.median),
        );
        let run_ok = run_rss.is_some_and(|r| r.median < 64.0);
        self.verdicts.push(Verdict {
            target: "memory",
            figure: format!(
                "N={n}: validate {:.0} MB, {run_fig}; TOML {toml_rows}: {:.2} s",
                vr.median, tv.median
            ),
            goal: "< 64 MB at 10^6; TOML 10^5 < 2 s",
            pass: vr.median < 64.0 && run_ok && tv.median < 2.0,
        });
        self.verdicts.push(Verdict {
            target: "validate",
            figure: format!("N={n}: {:.2} s", vw.median),
            goal: "< 3 s at 10^6",
            pass: vw.median < 3.0,
        });
        self.verdicts.push(Verdict {
            target: "status",
            figure: status_rss.map_or(format!("N={n}: not run (no `status` command)"), |r| {
                format!("N={n}: {:.0} MB", r.median)
            }),
            goal: "< 64 MB at 10^6",
            pass: status_rss.is_some_and(|r| r.median < 64.0),
        });
        self.verdicts.push(Verdict {
            target: "rerun",
            figure: format!("N={n}: {:.2} s, {sent} requests", rw.median),
            goal: "< 5 s, 0 requests at 10^6",
            pass: rw.median < 5.0 && sent == 0,
        });
    }
}

/// Writes the results file of a run that submitted every job of `manifest`,
/// through batchgen's own writer, so a rerun has nothing to do. Synthesised
/// rather than produced by a real run: at 10^6 rows that run would take
/// minutes and measure nothing about reruns.
fn finished_results(manifest: &Path, results: &Path) {
    let loaded = batchgen::files::manifest::load(manifest).expect("valid");
    let mut out = results::ReportWriter::new(results).expect("results file");
    for (i, job) in loaded.jobs().expect("readable").enumerate() {
        let job = job.expect("valid");
        let row = Record {
            task_id: format!("task-{i}"),
            status: Status::Submitted,
            attempts: 1,
            http_status: Some(200),
            submitted_at: "2025-01-01T00:00:00Z".into(),
            ..Record::pending(&job)
        };
        out.write(&row).expect("write results");
    }
    out.finish().expect("write results");
}
