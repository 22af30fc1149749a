//! `batchgen MANIFEST`: validate, check the key and balance, run (or show
//! what would run), then report on stderr and, if asked, as JSON.
//!
//! The command reads as its phases: load the manifest, set up (the
//! sandbox, the key, the settings), refuse a summary path that would
//! overwrite an input, then a dry run (`dry_run`) or the run itself, its
//! report, and how it ends (`--wait` collects after it). What
//! `--summary-json` says is `summary`'s.

mod dry_run;
mod summary;

use std::time::{Duration, Instant};

use super::{Signals, read_key, start_sandbox};
use crate::api::answer::Halt;
use crate::api::submit::{Client, ErrorClass};
use crate::engine::submit::plan::Plan;
use crate::engine::submit::report::{Balances, RunReport};
use crate::engine::submit::session::Session;
use crate::files::manifest::{self, Manifest};
use crate::program::cli::{OutputArgs, RunArgs};
use crate::program::exit::{Error, ExitCode, ExitStatus as _};
use crate::sandbox::Sandbox;
use crate::settings::ProgressMode;
use crate::settings::{Config, DEFAULT_CREDITS_PER_JOB, RunSettings};
use crate::util::redact::Secret;
use crate::util::term::eprint_line;
use summary::{Outcome, Summary, check_summary_path, write_json};

/// Runs `batchgen MANIFEST`, then writes `--summary-json` whatever happened.
pub async fn submit(args: RunArgs, output: &OutputArgs) -> Result<ExitCode, Error> {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let result = submit_inner(&args, output, &mut outcome).await;
    if let Some(path) = args
        .summary_json
        .as_ref()
        .filter(|_| !outcome.summary_refused)
    {
        let code = match &result {
            Ok(code) => *code,
            Err(e) => e.exit_code(),
        };
        let summary = Summary::new(
            &args,
            &outcome,
            code,
            result.as_ref().err(),
            started.elapsed(),
        );
        if let Err(e) = write_json(path, &summary) {
            eprint_line(&format!(
                "batchgen: warning: cannot write {}: {e}",
                path.display()
            ));
        }
    }
    result
}

async fn submit_inner(
    args: &RunArgs,
    output: &OutputArgs,
    outcome: &mut Outcome,
) -> Result<ExitCode, Error> {
    // Signals are watched from the start, so a Ctrl-C during validation or
    // set-up already means "stop cleanly", never the default kill.
    let signals = Signals::watch(output.quiet);
    let manifest = load_manifest(args, outcome)?;
    // Before anything is sent, and whatever --quiet says: a model the
    // provider no longer lists may fail every job that names it.
    for warning in manifest.warnings() {
        eprint_line(&format!("batchgen: warning: {warning}"));
    }
    // Kept to the end: `--wait` collects from the same sandbox.
    let (config, _sandbox) = set_up(args, output, &manifest).await?;
    outcome.results = Some(config.results.clone());
    check_results_against_manifest(&manifest, &config, args.sandbox)?;
    check_summary_against_results(args, &config, outcome)?;

    if args.dry_run {
        let plan = Plan::read(&manifest, &config)?;
        dry_run::print(
            &manifest,
            &config,
            &plan,
            &dry_run::base_url_source(args, &manifest),
        )?;
        return Ok(ExitCode::Success);
    }

    let session = Session::open(&manifest, &config)?;
    let (code, signals) =
        match send(args, output, &manifest, &config, session, signals, outcome).await? {
            Sent::Stopped(code) => return Ok(code),
            Sent::Done(code, signals) => (code, signals),
        };
    if !args.wait {
        return Ok(code);
    }
    let mut code = collect_after(args, output, &config, signals, code).await?;
    // `--regenerate` with `--wait`: what the collect judged is sent again
    // and collected, round after round; each round sends a job at most
    // once, so `--regenerate N` ends after N rounds at most.
    for _ in 0..config.regenerate {
        if code != ExitCode::Success {
            break;
        }
        // `--budget` is the whole command's: each round gets what the
        // rounds before it left.
        let spent = outcome.report.as_ref().map_or(0.0, |r| r.credits);
        let requests = outcome.report.as_ref().map_or(0, |r| r.requests);
        let round_config = Config {
            budget: config.budget.map(|b| (b - spent).max(0.0)),
            ..config.clone()
        };
        let session = Session::open(&manifest, &round_config)?;
        if session.plan().regenerating == 0 {
            break;
        }
        let signals = Signals::watch(output.quiet);
        let sent = send(
            args,
            output,
            &manifest,
            &round_config,
            session,
            signals,
            outcome,
        )
        .await?;
        let round = match sent {
            Sent::Stopped(code) => return Ok(code),
            // Nothing could be sent (the budget is spent): nothing to
            // collect, and no later round would do better.
            Sent::Done(round, _)
                if outcome.report.as_ref().map_or(0, |r| r.requests) == requests =>
            {
                code = round;
                break;
            }
            Sent::Done(round, signals) => {
                let collected = collect_after(args, output, &config, signals, round).await?;
                if collected == ExitCode::Success {
                    round
                } else {
                    collected
                }
            }
        };
        code = round;
    }
    Ok(code)
}

/// How one round of sending ended.
enum Sent {
    /// Stopped by a signal (its code): nothing more this run.
    Stopped(ExitCode),
    /// Done, with its code; the signals watched go on to `--wait`.
    Done(ExitCode, Signals),
}

/// Sends what `session` planned (after the balance check), prints the
/// report and keeps it for `--summary-json`.
async fn send(
    args: &RunArgs,
    output: &OutputArgs,
    manifest: &Manifest,
    config: &Config,
    session: Session,
    signals: Signals,
    outcome: &mut Outcome,
) -> Result<Sent, Error> {
    let plan = session.plan();
    let todo = plan.todo.len();
    if plan.regenerating > 0 && !output.quiet {
        eprint_line(&format!(
            "batchgen: regenerating {} {} (every take rejected, or the task failed and the host says to resend; --regenerate {})",
            plan.regenerating,
            if plan.regenerating == 1 {
                "job"
            } else {
                "jobs"
            },
            config.regenerate
        ));
    }
    let before = if todo > 0 {
        check_balance(config, todo, args.credits_per_job, output.quiet).await?
    } else {
        None
    };
    let report = session
        .send_planned(manifest, config, signals.shutdown.clone(), before)
        .await?;
    let mut code = report.exit_code();
    if code == ExitCode::Interrupted {
        code = signals.exit_code(code);
    }
    // What the host charged, by its balance before the first send and
    // after the last (other use of the account included).
    let charged = match (report.balance.spent(), report.balance) {
        (
            Some(spent),
            Balances {
                before: Some(first),
                after: Some(after),
            },
        ) => Some(format!(
            " · {spent} credits charged (balance {first} → {after})"
        )),
        _ => None,
    };
    print_report(&report, config, output.quiet, code, charged.as_deref());
    let ended = crate::program::exit::run_outcome(&report);
    // `--summary-json` describes the whole command, every round of it.
    outcome.report = Some(match outcome.report.take() {
        Some(earlier) => earlier.and_then(report),
        None => report,
    });
    match ended {
        Err(e) => Err(e),
        Ok(ExitCode::Interrupted) => {
            eprint_line(
                "batchgen: stopped by a signal; rows not sent stay pending: rerun to continue",
            );
            Ok(Sent::Stopped(code))
        }
        Ok(_) => Ok(Sent::Done(code, signals)),
    }
}

/// Loads and validates the manifest, refusing a `--summary-json` that
/// names it or its CSV first.
fn load_manifest(args: &RunArgs, outcome: &mut Outcome) -> Result<Manifest, Error> {
    let path = args.manifest.clone().expect("checked by execute");
    let summary = args.summary_json.as_deref();
    check_summary_path(summary, &[("the manifest", &path)], outcome)?;
    let manifest = manifest::load_with(&path, &args.models.rules()?)?;
    check_summary_path(
        summary,
        &[("the manifest's CSV", &manifest.rows_path)],
        outcome,
    )?;
    Ok(manifest)
}

/// The settings of the run, with its key: from the flags, the environment
/// and the manifest, or, with `--sandbox`, a sandbox started here (and
/// returned, to keep it up) with its own key and results file.
async fn set_up(
    args: &RunArgs,
    output: &OutputArgs,
    manifest: &Manifest,
) -> Result<(Config, Option<Sandbox>), Error> {
    let mut flags = args.settings();
    let mut sandbox = None;
    let key = if args.sandbox {
        let started = start_sandbox(&manifest.rules).await?;
        flags.base_url = Some(started.base_url());
        // Sandbox task IDs must never be mistaken for real ones by a later
        // run: their own file, beside the manifest as the command line named it.
        let path = args.manifest.as_deref().expect("checked by execute");
        flags.results = flags
            .results
            .or_else(|| Some(crate::settings::beside(path, "sandbox.results.csv")));
        if !output.quiet && !args.dry_run {
            eprint_line(&format!(
                "batchgen: running against the sandbox at {}",
                started.base_url()
            ));
        }
        let key = Secret::new(started.key());
        sandbox = Some(started);
        key
    } else if args.dry_run {
        // A dry run sends nothing, so it needs no key (and never shows one).
        read_key(args.api_key_file.as_deref(), manifest.rules.provider())
            .unwrap_or_else(|_| Secret::new(""))
    } else {
        read_key(args.api_key_file.as_deref(), manifest.rules.provider())?
    };
    let config = build_config(flags, manifest, key, args, output)?;
    Ok((config, sandbox))
}

/// Refuses a results file (or its lock or state files) that is the
/// manifest or its CSV through any name (a hard link, a bind mount, a
/// symlink), before any file is made: the manifest is not a results file
/// to read back, and no state file is made beside it.
fn check_results_against_manifest(
    manifest: &Manifest,
    config: &Config,
    sandbox: bool,
) -> Result<(), Error> {
    let default = if sandbox {
        crate::settings::beside(&manifest.path, "sandbox.results.csv")
    } else {
        crate::settings::default_results_path(&manifest.path)
    };
    let lock = crate::files::results::Lock::path_for(&config.results);
    let [store, wal, shm] = crate::files::state::files_for(&config.results);
    let ours = [
        ("the results file", config.results.as_path()),
        ("the results file's lock", lock.as_path()),
        ("the results file's state file", store.as_path()),
        ("the results file's state file", wal.as_path()),
        ("the results file's state file", shm.as_path()),
    ];
    let inputs = [
        ("the manifest", manifest.path.as_path()),
        ("the manifest's CSV", manifest.rows_path.as_path()),
    ];
    for (what, file) in ours {
        for (input, path) in inputs {
            if crate::util::fsx::same_file(file, path) {
                return Err(Error::Usage(format!(
                    "{what} {} is {input} ({}): the results are a file of their own; \
                     leave --out out (the results go to {}) or name another file",
                    file.display(),
                    path.display(),
                    default.display(),
                )));
            }
        }
    }
    Ok(())
}

/// Refuses a `--summary-json` that names the results file, its lock, its
/// state file (or the state file's WAL files), or the catalog `--wait`
/// writes.
fn check_summary_against_results(
    args: &RunArgs,
    config: &Config,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let lock = crate::files::results::Lock::path_for(&config.results);
    let catalog = crate::engine::collect::default_catalog_path(&config.results);
    let [store, wal, shm] = crate::files::state::files_for(&config.results);
    let mut files = vec![
        ("the results file", config.results.as_path()),
        ("the results file's lock", lock.as_path()),
        ("the results file's state file", store.as_path()),
        ("the results file's state file", wal.as_path()),
        ("the results file's state file", shm.as_path()),
    ];
    if args.wait {
        files.push(("the catalog --wait writes", catalog.as_path()));
    }
    check_summary_path(args.summary_json.as_deref(), &files, outcome)
}

/// The run's warnings, summary line and hint on stderr: always when the
/// run did not succeed, otherwise unless `--quiet`.
fn print_report(
    report: &RunReport,
    config: &Config,
    quiet: bool,
    code: ExitCode,
    charged: Option<&str>,
) {
    if quiet && code == ExitCode::Success {
        return;
    }
    for warning in &report.warnings {
        eprint_line(&format!("batchgen: warning: {warning}"));
    }
    eprint_line(&format!(
        "batchgen: {}{} → {}",
        report.summary(),
        charged.unwrap_or_default(),
        config.results.display()
    ));
    if let Some(hint) = report.hint() {
        eprint_line(&format!("batchgen: hint: {hint}"));
    }
}

/// `--wait`: collects the run's songs from the same host (the sandbox, if
/// any, is still up), and ends with the run's code unless collecting
/// failed.
async fn collect_after(
    args: &RunArgs,
    output: &OutputArgs,
    config: &Config,
    signals: Signals,
    code: ExitCode,
) -> Result<ExitCode, Error> {
    let poll = if args.sandbox {
        Duration::from_secs(1)
    } else {
        crate::engine::collect::DEFAULT_POLL_INTERVAL
    };
    let mut collect = super::collect::after_run_config(config, args.download.clone(), poll);
    if let Some(download) = &mut collect.download {
        download.images = args.images;
    }
    drop(signals);
    let collected = super::collect::run_collect(collect, output).await?;
    Ok(if collected == ExitCode::Success {
        code
    } else {
        collected
    })
}

fn build_config(
    flags: RunSettings,
    manifest: &Manifest,
    key: Secret,
    args: &RunArgs,
    output: &OutputArgs,
) -> Result<Config, Error> {
    let settings = flags.or(manifest.settings.clone());
    let config = Config::new(settings, key, &manifest.path, args.retry())?;
    // Before anything is sent, a dry run included: it shows what a run does.
    crate::settings::check_transport(&config.as_config().base_url, args.allow_insecure_http)?;
    Ok(config
        .max_jobs(args.max_jobs)
        .give_up_after(args.give_up_after)
        .progress(ProgressMode::pick(
            output.quiet,
            output.verbose,
            output.log_interval,
        ))
        .callback(callback_base(args)?)
        .build())
}

/// `--callback-base` with its secret from the environment.
fn callback_base(args: &RunArgs) -> Result<Option<crate::settings::CallbackBase>, Error> {
    let Some(base) = args.callback_base.clone() else {
        return Ok(None);
    };
    let secret = crate::program::secrets::callback_secret_from_env(|| {
        format!(
            "--callback-base needs a shared secret in {}, the same one `batchgen receive` uses",
            crate::engine::collect::receive::SECRET_ENV
        )
    })?;
    Ok(Some(crate::settings::CallbackBase { base, secret }))
}

/// Asks for the balance before spending any. A refused key stops here
/// (exit 77) instead of on the first submit; a host without the endpoint,
/// or one that does not answer quickly, is not a reason to stop.
async fn check_balance(
    config: &Config,
    todo: usize,
    per_job: Option<f64>,
    quiet: bool,
) -> Result<Option<f64>, Error> {
    match balance_client(config)?.balance().await {
        Ok(balance) => {
            let needed = todo as f64 * per_job.unwrap_or(DEFAULT_CREDITS_PER_JOB);
            if balance.credits < needed && !quiet {
                eprint_line(&format!(
                    "batchgen: warning: this run needs about {needed} credits for {todo} jobs, the balance is {}; rows past it will stop the run with HTTP 402",
                    balance.credits
                ));
            }
            tracing::info!("balance: {} credits", balance.credits);
            Ok(Some(balance.credits))
        }
        Err(e) if e.class() == ErrorClass::Fatal => {
            let (status, message) = e.refusal().unwrap_or((401, e.server_message()));
            Err(Halt::Refused { status, message }.into())
        }
        // Every submit would be redirected too: stop before sending any.
        Err(e) if e.class() == ErrorClass::Misdirected => {
            Err(Halt::Misdirected(e.to_string()).into())
        }
        Err(e) => {
            tracing::info!("could not check the balance: {e}");
            Ok(None)
        }
    }
}

/// The client that asks the host for the balance (10 s at most).
fn balance_client(config: &Config) -> Result<Client, Error> {
    Ok(Client::new(
        &config.base_url,
        config.api_key.clone(),
        Duration::from_secs(10),
    )?
    .with_provider(config.provider, &config.base_url))
}
