//! The `batchgen` binary: parse, set up logging, run, map the outcome to an
//! exit code. Everything else is in the library.

use batchgen::files::manifest::ManifestError;
use batchgen::program::cli::Cli;
use batchgen::program::exit::{Error, ExitCode, ExitStatus as _};
use std::io::Write as _;

use clap::Parser;

fn main() -> std::process::ExitCode {
    redact_panics();
    let cli = Cli::parse();
    batchgen::program::logging::init_logging(cli.output.verbose, cli.output.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("batchgen: error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(batchgen::program::commands::execute(cli)) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            err.exit_code()
        }
    };
    // Don't wait for lingering tasks (a sandbox, idle connections).
    runtime.shutdown_background();
    std::process::ExitCode::from(code.code())
}

/// A panic's message passes the one redaction rule too: it can quote a
/// value (a URL, a server's answer) that holds a secret. The default hook's
/// text is kept, location included, and a panic still exits 101.
fn redact_panics() {
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
            batchgen::util::redact::text(&message)
        );
    }));
}

/// Prints a run-ending error once, with a hint when there is one.
/// Every line goes through the one redaction rule ([`batchgen::util::redact`]):
/// an error chain can quote a URL or a server's echo of the key.
fn report(err: &Error) {
    use batchgen::util::term::eprint_line;
    match err {
        // Diagnostics are already `FILE:LINE: field: message` lines.
        Error::Manifest(e @ ManifestError::Invalid { .. }) => eprint_line(&e.to_string()),
        _ => eprint_line(&format!("batchgen: error: {}", DisplayChain(err))),
    }
    if let Some(hint) = err.hint() {
        eprint_line(&format!("batchgen: hint: {hint}"));
    }
    if err.exit_code() == ExitCode::Usage {
        eprint_line("Usage: batchgen [OPTIONS] MANIFEST | batchgen <COMMAND>; see batchgen --help");
    }
}

/// Lets `{:#}` print an error with its sources on one line.
#[derive(Debug)]
struct DisplayChain<'a>(&'a Error);

impl std::fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::error::Error as _;
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            let text = s.to_string();
            if !self.0.to_string().contains(&text) {
                write!(f, ": {text}")?;
            }
            source = s.source();
        }
        Ok(())
    }
}

impl std::error::Error for DisplayChain<'_> {}
