//! What a person sees while a run goes: a live bar on a terminal, periodic
//! plain lines elsewhere (with `-v`), or nothing. Log lines print above the
//! bar through [`crate::util::term`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::counters::Counters;
use crate::settings::ProgressMode;

/// The running display; [`Progress::finish`] removes it.
pub struct Progress {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(total: u64, counters: Arc<Counters>, mode: ProgressMode) -> Progress {
        match mode {
            ProgressMode::Off => Progress {
                bar: None,
                ticker: None,
            },
            ProgressMode::Bar => {
                let bar = ProgressBar::new(total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{elapsed_precise} [{bar:30.cyan/blue}] {pos}/{len} {per_sec} ETA {eta} {msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                crate::util::term::show_bar(Some(bar.clone()));
                let shown = bar.clone();
                let ticker = tokio::spawn(async move {
                    loop {
                        shown.set_position(counters.done());
                        shown.set_message(status_counts(&counters));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
                Progress {
                    bar: Some(bar),
                    ticker: Some(ticker),
                }
            }
            ProgressMode::Lines(interval) => {
                let ticker = tokio::spawn(async move {
                    let started = tokio::time::Instant::now();
                    loop {
                        tokio::time::sleep(interval).await;
                        let done = counters.done();
                        let secs = started.elapsed().as_secs_f64();
                        tracing::info!(
                            "progress: {done}/{total} done, {:.2} rows/s, {}",
                            done as f64 / secs.max(0.001),
                            status_counts(&counters)
                        );
                    }
                });
                Progress {
                    bar: None,
                    ticker: Some(ticker),
                }
            }
        }
    }

    pub fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        if let Some(bar) = self.bar {
            crate::util::term::show_bar(None);
            bar.finish_and_clear();
        }
    }
}

fn status_counts(c: &Counters) -> String {
    format!(
        "{} retries · {} × 429 · {} failed · {} unknown",
        c.retries.load(Ordering::Relaxed),
        c.rate_limited.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        c.unknown.load(Ordering::Relaxed),
    )
}
