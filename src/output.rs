//! What a person sees while a run goes: a live bar on a terminal, periodic
//! plain lines elsewhere (with `-v`), and log lines routed so they never tear
//! the bar.
//!
//! Logs go through `tracing`. Its writer ([`LogWriter`]) buffers each event
//! and prints it in one piece, above the bar when one is showing
//! (`ProgressBar::suspend`), so progress and logs can share stderr. Every
//! log line, and every message printed through [`eprint_line`], passes
//! [`crate::redact::text`] on its way out: no secret reaches stderr
//! through a log.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::pool::Counters;

/// The bar currently on screen, if any; the log writer prints above it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Sets up `tracing` on stderr. `RUST_LOG` overrides the level `-v` picks.
pub fn init_logging(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "batchgen=warn",
        1 => "batchgen=info",
        _ => "batchgen=debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A `tracing` writer that prints each event whole, above the progress bar.
#[derive(Debug, Clone, Copy)]
pub struct LogWriter;

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One buffered log event; printed when dropped.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    /// Prints the event through [`crate::redact::text`]: a log line may
    /// quote a URL or an error chain, and no secret may reach stderr.
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        let line = crate::redact::text(&line);
        let print = || {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        };
        match BAR.lock().ok().and_then(|bar| bar.clone()) {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}

/// Prints one line on stderr through [`crate::redact::text`], above the
/// bar if one shows. A failed write (a terminal gone after SIGHUP, a closed
/// pipe) is ignored: `eprintln!` would panic there, and losing a message is
/// better than losing the run's last records.
pub fn eprint_line(line: &str) {
    let mut line = crate::redact::text(line).into_owned();
    line.push('\n');
    let print = || {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    };
    match BAR.lock().ok().and_then(|bar| bar.clone()) {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live bar (stderr is a terminal).
    Bar,
    /// A plain log line at this interval (not a terminal, `-v`).
    Lines(Duration),
    /// Nothing (`--quiet`, or not a terminal without `-v`).
    Off,
}

impl ProgressMode {
    /// The bar only on a terminal; plain lines only when asked for.
    pub fn pick(quiet: bool, verbose: u8, interval: Duration) -> ProgressMode {
        if quiet {
            ProgressMode::Off
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else if verbose > 0 {
            ProgressMode::Lines(interval)
        } else {
            ProgressMode::Off
        }
    }
}

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
                *BAR.lock().expect("poisoned") = Some(bar.clone());
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
            *BAR.lock().expect("poisoned") = None;
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
