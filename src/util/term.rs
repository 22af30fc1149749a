//! Lines on stderr that never tear the progress bar and never carry a
//! secret.
//!
//! The bar on screen, when one shows, is registered here ([`show_bar`]);
//! the `tracing` writer ([`LogWriter`]) and [`eprint_line`] print above it
//! (`ProgressBar::suspend`), so progress and logs can share stderr. Every
//! line passes [`crate::util::redact::text`] on its way out. This is a
//! mechanism of the lowest layer so that the engines (which draw the bar)
//! and the program (which sets up logging and prints errors) share it
//! without importing each other.

use std::io::Write;
use std::sync::Mutex;

use indicatif::ProgressBar;
use tracing_subscriber::fmt::MakeWriter;

/// The bar currently on screen, if any; the log writer prints above it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Registers the bar now on screen (`None` when it is gone).
pub fn show_bar(bar: Option<ProgressBar>) {
    *BAR.lock().expect("poisoned") = bar;
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
    /// Prints the event through [`crate::util::redact::text`]: a log line may
    /// quote a URL or an error chain, and no secret may reach stderr.
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        let line = crate::util::redact::text(&line);
        let print = || {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        };
        match BAR.lock().ok().and_then(|bar| bar.clone()) {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}

/// Prints one line on stderr through [`crate::util::redact::text`], above the
/// bar if one shows. A failed write (a terminal gone after SIGHUP, a closed
/// pipe) is ignored: `eprintln!` would panic there, and losing a message is
/// better than losing the run's last records.
pub fn eprint_line(line: &str) {
    let mut line = crate::util::redact::text(line).into_owned();
    line.push('\n');
    let print = || {
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    };
    match BAR.lock().ok().and_then(|bar| bar.clone()) {
        Some(bar) => bar.suspend(print),
        None => print(),
    }
}
