//! The `collect` target: polls per finished task and time to catalog.
//!
//! N jobs are submitted to the real sandbox (unlimited rate, so the
//! submission is over in moments and every task starts its generation at
//! about the same time), then `batchgen collect` runs as a process at its
//! default settings (`--poll-interval 5s`, `--poll-rate 2/s`, no download).
//! The sandbox's generation time T is two of its stages (`--stage-time`:
//! clips appear at half a stage, stream after one, are final after two), so
//! the scenario runs it with `stage_time = T / 2`.
//!
//! - **polls per finished task**: the sandbox's feed request count over
//!   the tasks the catalog calls finished;
//! - **time to catalog**: from the last acceptance at the sandbox to the
//!   moment `collect` exits, which is after its last catalog write (it
//!   exits once every clip is final). It includes the process' exit, and
//!   no download (none is asked).

use std::path::Path;
use std::time::Duration;

use batchgen::sandbox::{Sandbox, SandboxConfig};

use super::gen_manifest::Format;
use super::measure::{expect_ok, run_bin};
use super::{Bench, KEY, Verdict};

/// One scenario's figures.
struct Figures {
    polls: u64,
    finished: usize,
    to_catalog: f64,
    wall: f64,
}

impl Bench {
    /// The `collect` target over every (T, N) asked for.
    pub(crate) async fn collect(&mut self) {
        println!("\n== collect ==");
        let times: Vec<u64> = if self.o.collect_t.is_empty() {
            if self.o.quick { vec![2] } else { vec![20, 60] }
        } else {
            self.o.collect_t.clone()
        };
        let sizes: Vec<u64> = if self.o.collect_n.is_empty() {
            if self.o.quick {
                vec![10]
            } else {
                vec![100, 1000]
            }
        } else {
            self.o.collect_n.clone()
        };
        println!(
            "| T s | N | polls | polls per finished task | time to catalog s | T + 5 s | collect wall s |"
        );
        println!("|---|---|---|---|---|---|---|");
        for &t in &times {
            for &n in &sizes {
                let f = self.collect_once(Duration::from_secs(t), n).await;
                let per = f.polls as f64 / f.finished.max(1) as f64;
                println!(
                    "| {t} | {n} | {} | {per:.2} | {:.1} | {} | {:.1} |",
                    f.polls,
                    f.to_catalog,
                    t + 5,
                    f.wall
                );
                self.verdicts.push(Verdict {
                    target: "collect",
                    figure: format!(
                        "T={t}s N={n}: {per:.2} polls/task, catalog {:.1} s after the last submission ({}/{n} finished)",
                        f.to_catalog, f.finished
                    ),
                    goal: "≤ 1.5 polls/task; ≤ T + 5 s",
                    pass: per <= 1.5 && f.to_catalog <= (t + 5) as f64 && f.finished == n as usize,
                });
            }
        }
    }

    async fn collect_once(&self, generation: Duration, n: u64) -> Figures {
        let config = SandboxConfig {
            keys: vec![KEY.into()],
            stage_time: generation / 2,
            // Every task takes T: a moderated one would fail after T/2.
            moderation_word: String::new(),
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::start(([127, 0, 0, 1], 0).into(), config)
            .await
            .expect("sandbox starts");
        let url = sandbox.base_url();
        let manifest = self.manifest(n, Format::Csv);
        let res = self.results("collect");
        let catalog = res.with_file_name("collect.catalog.csv");
        let _ = std::fs::remove_file(&catalog);
        let _ = std::fs::remove_file(catalog.with_extension("csv.lock"));
        let extra = ["--rate", "unlimited", "--concurrency", "64"];
        let m = run_bin(&self.o.bin, &Self::args(&manifest, &url, &res, &extra), KEY).await;
        expect_ok(&m, "collect's submission");
        let (_, last) = sandbox.accepted_span().expect("tasks were accepted");
        let before = sandbox.stats().feed_requests;
        let args = vec![
            "collect".into(),
            res.display().to_string(),
            "--base-url".into(),
            url.clone(),
            "--catalog".into(),
            catalog.display().to_string(),
            "--quiet".into(),
        ];
        let m = run_bin(&self.o.bin, &args, KEY).await;
        let to_catalog = last.elapsed().as_secs_f64();
        expect_ok(&m, "collect");
        let polls = sandbox.stats().feed_requests - before;
        sandbox.shutdown().await;
        Figures {
            polls,
            finished: finished_tasks(&catalog),
            to_catalog,
            wall: m.wall,
        }
    }
}

/// Tasks of the catalog whose every clip is complete or failed.
fn finished_tasks(catalog: &Path) -> usize {
    let mut reader = csv::Reader::from_path(catalog).expect("catalog parses");
    let headers = reader.headers().expect("catalog header").clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("catalog has no {name} column"))
    };
    let (key, status) = (col("key"), col("status"));
    let mut open = std::collections::BTreeMap::<String, bool>::new();
    for row in reader.records() {
        let row = row.expect("catalog row");
        let done = matches!(&row[status], "complete" | "failed");
        let entry = open.entry(row[key].to_owned()).or_insert(true);
        *entry &= done;
    }
    open.values().filter(|d| **d).count()
}
