//! What each command does: the glue between the parsed command line and the
//! library's stages. `main` calls [`execute`] and maps its result to an exit
//! code; everything here returns typed errors and prints only summaries.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, OutputArgs, RunArgs, SandboxArgs, ValidateArgs};
use crate::config::{Config, RunSettings, Secret};
use crate::error::{Error, ExitCode};
use crate::manifest::{self, Manifest};
use crate::pool::StopReason;
use crate::run;
use crate::sandbox::{Sandbox, SandboxConfig};

/// The environment variable holding the API key.
pub const KEY_ENV: &str = "BATCHGEN_API_KEY";

/// Runs the parsed command line.
///
/// # Errors
/// Whatever ends the run early; see [`Error::exit_code`].
pub async fn execute(cli: Cli) -> Result<ExitCode, Error> {
    ignore_file_size_signal();
    match cli.command {
        Some(Command::Run(args)) => submit(args, &cli.output).await,
        Some(Command::Validate(args)) => validate(&args, &cli.output),
        Some(Command::Sandbox(args)) => serve_sandbox(args).await,
        None if cli.run.manifest.is_some() => submit(cli.run, &cli.output).await,
        None => Err(Error::Usage(
            "a manifest is required: batchgen MANIFEST (see --help)".into(),
        )),
    }
}

async fn submit(args: RunArgs, output: &OutputArgs) -> Result<ExitCode, Error> {
    let path = args.manifest.clone().expect("checked by execute");
    let manifest = manifest::load(&path)?;

    let mut flags = args.settings();
    let mut _sandbox = None;
    let key = if args.sandbox {
        let sandbox = Sandbox::start(([127, 0, 0, 1], 0).into(), SandboxConfig::default())
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the sandbox: {e}"))?;
        flags.base_url = Some(sandbox.base_url());
        flags.results = flags.results.or_else(|| Some(sandbox_results_path(&path)));
        let key = Secret::new(sandbox.key());
        if !output.quiet {
            eprintln!(
                "batchgen: running against the sandbox at {}",
                sandbox.base_url()
            );
        }
        _sandbox = Some(sandbox);
        key
    } else {
        read_key(args.api_key_file.as_deref())?
    };
    let config = build_config(flags, &manifest, key, &args, output)?;

    let shutdown = CancellationToken::new();
    let signal = Arc::new(AtomicU8::new(0));
    let watcher = tokio::spawn(watch_signals(
        shutdown.clone(),
        signal.clone(),
        output.quiet,
    ));
    let report = run::run(&manifest, &config, shutdown).await;
    watcher.abort();
    let report = report?;

    let mut code = report.exit_code();
    if code == ExitCode::Interrupted && signal.load(Ordering::SeqCst) == 15 {
        code = ExitCode::Terminated;
    }
    let loud = !output.quiet || code != ExitCode::Success;
    if loud {
        for warning in &report.warnings {
            eprintln!("batchgen: warning: {warning}");
        }
        eprintln!(
            "batchgen: {} → {}",
            report.summary(),
            config.results.display()
        );
    }
    match &report.stop {
        Some(StopReason::Refused { status, message }) => {
            return Err(Error::Refused {
                status: *status,
                message: message.clone(),
            });
        }
        Some(StopReason::Unavailable(why)) => return Err(Error::Unavailable(why.clone())),
        Some(StopReason::Journal) => {
            return Err(Error::Results {
                path: config.results.clone(),
                source: std::io::Error::other("a write to the results file failed"),
            });
        }
        Some(StopReason::Cancelled) => {
            eprintln!(
                "batchgen: stopped by a signal; rows not sent stay pending: rerun to continue"
            );
        }
        None => {}
    }
    Ok(code)
}

fn build_config(
    flags: RunSettings,
    manifest: &Manifest,
    key: Secret,
    args: &RunArgs,
    output: &OutputArgs,
) -> Result<Config, Error> {
    let settings = flags.or(manifest.settings.clone());
    Ok(Config::new(settings, key, &manifest.path, args.retry())
        .map_err(Error::Config)?
        .max_jobs(args.max_jobs)
        .give_up_after(args.give_up_after)
        .quiet(output.quiet)
        .build())
}

/// `jobs.toml` → `jobs.sandbox.results.csv`: sandbox task IDs must never be
/// mistaken for real ones by a later real run.
fn sandbox_results_path(manifest: &Path) -> PathBuf {
    let stem = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "batchgen".into());
    manifest.with_file_name(format!("{stem}.sandbox.results.csv"))
}

/// The API key, from `--api-key-file` or `BATCHGEN_API_KEY`.
fn read_key(file: Option<&Path>) -> Result<Secret, Error> {
    let key = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!(
                    "cannot read the API key file {}: {e}",
                    path.display()
                ))
            })?;
            warn_if_shared(path);
            text.trim().to_owned()
        }
        None => std::env::var(KEY_ENV).unwrap_or_default().trim().to_owned(),
    };
    if key.is_empty() {
        return Err(Error::Config(format!(
            "no API key: set {KEY_ENV} or pass --api-key-file PATH (or try --sandbox, which needs none)"
        )));
    }
    Ok(Secret::new(key))
}

#[cfg(unix)]
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "batchgen: warning: {} is readable by other users; chmod 600 it",
            path.display()
        );
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_: &Path) {}

/// First SIGINT/SIGTERM: stop starting requests and let in-flight ones
/// finish. Second: exit at once; the journal keeps the results consistent.
async fn watch_signals(shutdown: CancellationToken, seen: Arc<AtomicU8>, quiet: bool) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            let number = tokio::select! {
                _ = int.recv() => 2,
                _ = term.recv() => 15,
            };
            if seen.swap(number, Ordering::SeqCst) != 0 {
                eprintln!(
                    "batchgen: stopping now; requests in flight will be `unknown` on the next run"
                );
                std::process::exit(128 + i32::from(number));
            }
            if !quiet {
                eprintln!(
                    "batchgen: stopping: waiting for requests in flight (press Ctrl-C again to quit at once)"
                );
            }
            shutdown.cancel();
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_ok() {
            seen.store(2, Ordering::SeqCst);
            shutdown.cancel();
        }
    }
}

/// A write past RLIMIT_FSIZE raises SIGXFSZ, whose default action kills the
/// process before it can record what it knows. With a handler installed the
/// write fails with EFBIG instead, and the run stops cleanly (exit 73) like
/// on any full disk.
fn ignore_file_size_signal() {
    #[cfg(target_os = "linux")]
    {
        const SIGXFSZ: i32 = 25;
        // Tokio keeps the handler for the life of the process.
        let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ));
    }
}

/// Resolves on the first SIGINT or SIGTERM.
async fn first_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn validate(args: &ValidateArgs, output: &OutputArgs) -> Result<ExitCode, Error> {
    let manifest = manifest::load(&args.manifest)?;
    let config = Config::new(
        manifest.settings.clone(),
        Secret::new(""),
        &manifest.path,
        Default::default(),
    )
    .map_err(Error::Config)?
    .build();
    if output.quiet {
        return Ok(ExitCode::Success);
    }
    let mut modes: BTreeMap<String, usize> = BTreeMap::new();
    let mut models: BTreeMap<&str, usize> = BTreeMap::new();
    for job in &manifest.jobs {
        *modes.entry(job.fields.mode().to_string()).or_default() += 1;
        *models.entry(job.fields.effective_model()).or_default() += 1;
    }
    let join = |m: Vec<(String, usize)>| {
        m.into_iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}: {} jobs, all valid",
        manifest.path.display(),
        manifest.jobs.len()
    );
    if !manifest.jobs.is_empty() {
        let _ = writeln!(out, "  modes:   {}", join(modes.into_iter().collect()));
        let _ = writeln!(
            out,
            "  models:  {}",
            join(models.into_iter().map(|(k, n)| (k.to_owned(), n)).collect())
        );
    }
    let _ = writeln!(
        out,
        "  rate:    {} · concurrency {}",
        config.rate, config.concurrency
    );
    let _ = writeln!(out, "  results: {}", config.results.display());
    Ok(ExitCode::Success)
}

async fn serve_sandbox(args: SandboxArgs) -> Result<ExitCode, Error> {
    let sandbox = Sandbox::start(args.listen, args.config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    {
        // The first line is for scripts: `eval "export $(head -1)"`.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "BATCHGEN_BASE_URL={} BATCHGEN_API_KEY={}",
            sandbox.base_url(),
            sandbox.key()
        );
        let _ = out.flush();
    }
    eprintln!(
        "batchgen sandbox: listening on {} (stats at {}/sandbox/stats); Ctrl-C to stop",
        sandbox.addr(),
        sandbox.base_url()
    );
    first_signal().await;
    sandbox.shutdown().await;
    Ok(ExitCode::Success)
}
