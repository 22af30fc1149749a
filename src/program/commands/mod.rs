//! What each command does: the glue between the parsed command line and the
//! library's stages. `main` calls [`execute`] and maps its result to an exit
//! code; everything here returns typed errors and prints only summaries.

mod collect;
mod measure;
mod models;
mod status;
mod submit;
mod tools;

use crate::program::cli::{Cli, Command};
use crate::program::exit::{Error, ExitCode};
use crate::program::secrets::read_key;
use crate::program::signals::{Signals, first_signal, ignore_file_size_signal};
use crate::sandbox::{Sandbox, SandboxConfig};

/// Runs the parsed command line.
///
/// # Errors
/// Whatever ends the run early; [`crate::program::exit`] says which exit
/// code each error means.
pub async fn execute(cli: Cli) -> Result<ExitCode, Error> {
    ignore_file_size_signal();
    match cli.command {
        Some(Command::Run(args)) => submit::submit(args, &cli.output).await,
        Some(Command::Validate(args)) => tools::validate(&args, &cli.output),
        Some(Command::Sandbox(args)) => tools::serve_sandbox(args).await,
        Some(Command::Init(args)) => tools::init(&args, &cli.output),
        Some(Command::Credits(args)) => tools::credits(&args).await,
        Some(Command::Models(args)) => models::print(&args),
        Some(Command::Completions { shell }) => tools::completions(shell),
        Some(Command::Man) => tools::man(),
        Some(Command::Collect(args)) => collect::collect(args, &cli.output).await,
        Some(Command::Receive(args)) => collect::receive(args, &cli.output).await,
        Some(Command::Status(args)) => status::status(&args),
        Some(Command::Measure(args)) => measure::measure(&args, &cli.output),
        None if cli.run.manifest.is_some() => submit::submit(cli.run, &cli.output).await,
        None => Err(Error::Usage(
            "a manifest is required: batchgen MANIFEST (see --help)".into(),
        )),
    }
}

/// Starts a sandbox in-process on a free loopback port, with a throwaway key,
/// imitating the run's provider and knowing the models the run was told to
/// accept (`--extra-model`, `[run] extra_models`), as the real host knows
/// models batchgen doesn't.
async fn start_sandbox(rules: &crate::job::Rules) -> Result<Sandbox, Error> {
    let config = SandboxConfig {
        provider: rules.provider(),
        extra_models: rules.extra_models().to_vec(),
        catalogue: Some(rules.catalogue().clone()),
        ..SandboxConfig::default()
    };
    Sandbox::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .map_err(|e| Error::Other(anyhow::anyhow!("cannot start the sandbox: {e}")))
}
