//! The `batchgen` binary: parse, set up logging, run, map the outcome to an
//! exit code. Everything else is in the library ([`batchgen::program`]).

use batchgen::program::cli::Cli;
use batchgen::program::exit::ExitStatus as _;

use clap::Parser;

fn main() -> std::process::ExitCode {
    batchgen::program::logging::redact_panics();
    let cli = Cli::parse();
    batchgen::program::logging::init_logging(cli.output.verbose, cli.output.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            batchgen::util::term::eprint_line(&format!(
                "batchgen: error: cannot start the async runtime: {e}"
            ));
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(batchgen::program::commands::execute(cli)) {
        Ok(code) => code,
        Err(err) => {
            batchgen::program::exit::print(&err);
            err.exit_code()
        }
    };
    // Don't wait for lingering tasks (a sandbox, idle connections).
    runtime.shutdown_background();
    std::process::ExitCode::from(code.code())
}
