//! The `collect-memory` target: `batchgen collect` over N submitted tasks
//! (10^4 … 10^6), its wall time and peak RSS, polling every task once and
//! then again over the finished catalog.
//!
//! The host is the counting server's stateless feed ([`Counter`]: every
//! task finished, two clips), so the bench holds nothing per task and
//! the figures are batchgen's alone. The results file is written directly
//! (N `submitted` rows, long ago, so every task is due at once), and
//! collect runs with `--poll-rate unlimited --poll-interval 1ms`: the run
//! is as fast as loopback and the catalog writes allow, which is the
//! worst case for memory (answers arrive faster than any real host sends
//! them).
//!
//! - **first collect**: every task polled once, every clip written (the
//!   catalog grows from nothing to 2N rows);
//! - **rerun**: the catalog is finished; nothing is polled, every task is
//!   read and passed over;
//! - **status**: `batchgen status --json` over the finished store (N jobs,
//!   2N clips).
//!
//! The goals: peak RSS under 64 MB at 10^6 tasks, for all three (issue
//! 16); the rerun under 2 s and `status` under 1 s at 10^6 (issue 23).

use std::path::Path;

use batchgen::files::results::{self, Status};

use super::measure::{Measured, expect_ok, run_bin};
use super::servers::{Counter, Limit};
use super::{Bench, KEY, Verdict};

/// A results file of `n` submitted tasks (`job-i`, task `bench-i`), in
/// format `results/1` (the nine columns of the release before the state
/// store), so this binary and the previous release's read the same file:
/// for this one the first collect includes the store's import.
fn results_file(path: &Path, n: u64) {
    let mut out = csv::Writer::from_path(path).expect("results file");
    out.write_record(results::COLUMNS_1).expect("write results");
    for i in 0..n {
        let (id, line, task) = (
            format!("job-{i}"),
            (i + 2).to_string(),
            format!("bench-{i}"),
        );
        out.write_record([
            id.as_str(),
            &line,
            &task,
            Status::Submitted.as_str(),
            "1",
            "200",
            "",
            "2025-01-01T00:00:00Z",
            "",
        ])
        .expect("write results");
    }
    out.flush().expect("write results");
}

fn catalog_rows(path: &Path) -> usize {
    csv::Reader::from_path(path)
        .map(|r| r.into_byte_records().count())
        .unwrap_or(0)
}

impl Bench {
    pub(crate) async fn collect_memory(&mut self) {
        println!("\n== collect-memory: collect over N tasks ==");
        let sizes: Vec<u64> = if !self.o.collect_memory_n.is_empty() {
            self.o.collect_memory_n.clone()
        } else if self.o.quick {
            vec![10_000]
        } else {
            vec![10_000, 100_000, 1_000_000]
        };
        println!(
            "| N | first collect s | first RSS MB | catalog rows | rerun s | rerun RSS MB | polls | status s | status RSS MB |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        let mb = |m: &Measured| m.rss_kb.map_or(f64::NAN, |k| k as f64 / 1024.0);
        for n in sizes {
            let res = self.dir.path().join(format!("cm{n}.results.csv"));
            let cat = self.dir.path().join(format!("cm{n}.catalog.csv"));
            let _ = std::fs::remove_file(&cat);
            results_file(&res, n);
            let host = Counter::start(Limit::Unlimited).await;
            let args: Vec<String> = [
                "collect",
                &res.display().to_string(),
                "--catalog",
                &cat.display().to_string(),
                "--base-url",
                &host.base_url,
                "--poll-rate",
                "unlimited",
                "--poll-interval",
                "1ms",
                "--deadline",
                "3h",
                "-q",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let first = run_bin(&self.o.bin, &args, KEY).await;
            expect_ok(&first, "collect");
            let rows = catalog_rows(&cat);
            let polls = host.all_requests();
            let rerun = run_bin(&self.o.bin, &args, KEY).await;
            expect_ok(&rerun, "collect rerun");
            let status_args: Vec<String> = [
                "status",
                &res.display().to_string(),
                "--catalog",
                &cat.display().to_string(),
                "--json",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let status = run_bin(&self.o.bin, &status_args, KEY).await;
            expect_ok(&status, "status");
            println!(
                "| {n} | {:.1} | {:.0} | {rows} | {:.1} | {:.0} | {polls} | {:.2} | {:.0} |",
                first.wall,
                mb(&first),
                rerun.wall,
                mb(&rerun),
                status.wall,
                mb(&status)
            );
            if n >= 1_000_000 {
                let worst = mb(&first).max(mb(&rerun));
                self.verdicts.push(Verdict {
                    target: "collect-memory",
                    figure: format!("peak RSS {worst:.0} MB at {n} tasks"),
                    goal: "< 64 MB at 10^6",
                    pass: worst < 64.0 && rows as u64 == 2 * n,
                });
                self.verdicts.push(Verdict {
                    target: "collect-rerun",
                    figure: format!("{:.2} s at {n} finished tasks", rerun.wall),
                    goal: "< 2 s at 10^6",
                    pass: rerun.wall < 2.0,
                });
                self.verdicts.push(Verdict {
                    target: "status-catalog",
                    figure: format!(
                        "{:.2} s, {:.0} MB over {n} jobs and {rows} clips",
                        status.wall,
                        mb(&status)
                    ),
                    goal: "< 1 s and < 64 MB at 10^6 jobs",
                    pass: status.wall < 1.0 && mb(&status) < 64.0,
                });
            }
            let _ = std::fs::remove_file(&cat);
            let _ = std::fs::remove_file(&res);
            let _ = std::fs::remove_file(batchgen::files::state::path_for(&res));
        }
    }
}
