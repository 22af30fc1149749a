//! Logging set-up: `tracing` on stderr through the bar-aware, redacting
//! writer of [`crate::util::term`].

use std::io::{IsTerminal, Write as _};

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

/// A panic's message passes the one redaction rule too: it can quote a
/// value (a URL, a server's answer) that holds a secret. The default hook's
/// text is kept, location included, and a panic still exits 101.
pub fn redact_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        // Not `eprintln!`: a closed terminal must not panic inside the hook.
        let _ = writeln!(
            std::io::stderr(),
            "batchgen: thread '{name}' panicked{at}: {}\nbatchgen: this is a bug; please report it",
            crate::util::redact::text(&message)
        );
    }));
}
