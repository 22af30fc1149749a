//! Logging set-up: `tracing` on stderr through the bar-aware, redacting
//! writer of [`crate::util::term`].

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::util::term::LogWriter;

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
