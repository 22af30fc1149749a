//! `batchgen MANIFEST`: validate, check the key and balance, run (or show
//! what would run), then report on stderr and, if asked, as JSON.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Signals, read_key, start_sandbox};
use crate::api::submit::{Client, ErrorClass};
use crate::engine::submit::pool::StopReason;
use crate::engine::submit::{Plan, RunReport, Session};
use crate::files::manifest::{self, Manifest};
use crate::program::cli::{OutputArgs, RunArgs};
use crate::program::exit::{Error, ExitCode, ExitStatus as _};
use crate::settings::ProgressMode;
use crate::settings::{Config, GeneratePaths, RunSettings};
use crate::util::redact::Secret;
use crate::util::term::eprint_line;

/// Credits a job is assumed to cost when `--credits-per-job` is not given.
pub const DEFAULT_CREDITS_PER_JOB: f64 = 10.0;

/// How many request bodies `--dry-run` prints.
const DRY_RUN_BODIES: usize = 3;

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
            eprintln!("batchgen: warning: cannot write {}: {e}", path.display());
        }
    }
    result
}

/// What the summary needs from a run that may have ended anywhere.
#[derive(Default)]
struct Outcome {
    results: Option<PathBuf>,
    report: Option<RunReport>,
    /// `--summary-json` names a file the run reads or writes: it is not
    /// written at all (see [`check_summary_path`]).
    summary_refused: bool,
}

/// Refuses a `--summary-json` that is one of the files the run depends on
/// (compared as real files, so a symlink or `./` spelling is caught): the
/// summary, written last, would replace the manifest, its CSV, or every
/// task ID in the results file. Checked before anything is sent.
///
/// # Errors
/// [`Error::Usage`] naming which file it is.
fn check_summary_path(
    summary: Option<&Path>,
    files: &[(&str, &Path)],
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let Some(summary) = summary else {
        return Ok(());
    };
    for (what, file) in files {
        if crate::util::fsx::same_file(summary, file) {
            outcome.summary_refused = true;
            return Err(Error::Usage(format!(
                "--summary-json {} is {what} ({}); writing the summary there would replace it: choose another path",
                summary.display(),
                file.display()
            )));
        }
    }
    Ok(())
}

async fn submit_inner(
    args: &RunArgs,
    output: &OutputArgs,
    outcome: &mut Outcome,
) -> Result<ExitCode, Error> {
    // Signals are watched from the start, so a Ctrl-C during validation or
    // set-up already means "stop cleanly", never the default kill.
    let signals = Signals::watch(output.quiet);

    let path = args.manifest.clone().expect("checked by execute");
    let summary = args.summary_json.as_deref();
    check_summary_path(summary, &[("the manifest", &path)], outcome)?;
    let manifest = manifest::load_with(&path, &args.models.rules())?;
    check_summary_path(
        summary,
        &[("the manifest's CSV", &manifest.rows_path)],
        outcome,
    )?;

    let mut flags = args.settings();
    let mut _sandbox = None;
    let key = if args.sandbox {
        let sandbox = start_sandbox(&manifest.rules).await?;
        flags.base_url = Some(sandbox.base_url());
        // Sandbox task IDs must never be mistaken for real ones by a later run.
        flags.results = flags
            .results
            .or_else(|| Some(crate::settings::beside(&path, "sandbox.results.csv")));
        if !output.quiet && !args.dry_run {
            eprintln!(
                "batchgen: running against the sandbox at {}",
                sandbox.base_url()
            );
        }
        let key = Secret::new(sandbox.key());
        _sandbox = Some(sandbox);
        key
    } else if args.dry_run {
        // A dry run sends nothing, so it needs no key (and never shows one).
        read_key(args.api_key_file.as_deref()).unwrap_or_else(|_| Secret::new(""))
    } else {
        read_key(args.api_key_file.as_deref())?
    };
    let config = build_config(flags, &manifest, key, args, output)?;
    outcome.results = Some(config.results.clone());
    let lock = results_lock(&config.results);
    let catalog = crate::engine::collect::default_catalog_path(&config.results);
    let mut files = vec![
        ("the results file", config.results.as_path()),
        ("the results file's lock", lock.as_path()),
    ];
    if args.wait {
        files.push(("the catalog --wait writes", catalog.as_path()));
    }
    check_summary_path(summary, &files, outcome)?;

    if args.dry_run {
        let plan = Plan::read(&manifest, &config)?;
        print_dry_run(&manifest, &config, &plan, &base_url_source(args, &manifest))?;
        return Ok(ExitCode::Success);
    }

    let session = Session::open(&manifest, &config)?;
    let todo = session.plan().todo.len();
    if todo > 0 {
        check_balance(&config, todo, args.credits_per_job, output.quiet).await?;
    }

    let report = session
        .run(&manifest, &config, signals.shutdown.clone())
        .await?;

    let mut code = report.exit_code();
    if code == ExitCode::Interrupted {
        code = signals.exit_code(code);
    }
    if !output.quiet || code != ExitCode::Success {
        for warning in &report.warnings {
            eprint_line(&format!("batchgen: warning: {warning}"));
        }
        eprintln!(
            "batchgen: {} → {}",
            report.summary(),
            config.results.display()
        );
        if let Some(hint) = report.hint() {
            eprintln!("batchgen: hint: {hint}");
        }
    }
    let stop = report.stop.clone();
    outcome.report = Some(report);
    match stop {
        Some(StopReason::Refused { status, message }) => Err(Error::Refused { status, message }),
        Some(StopReason::Unavailable(why)) => Err(Error::Unavailable(why)),
        Some(StopReason::Misdirected(why)) => Err(Error::Config(why)),
        Some(StopReason::Journal) => Err(Error::Results {
            path: config.results.clone(),
            source: std::io::Error::other("a write to the results file failed"),
        }),
        Some(StopReason::Cancelled) => {
            eprintln!(
                "batchgen: stopped by a signal; rows not sent stay pending: rerun to continue"
            );
            Ok(code)
        }
        None if args.wait => {
            // The sandbox (if any) is still up: collect from the same host.
            let poll = if args.sandbox {
                Duration::from_secs(1)
            } else {
                crate::engine::collect::DEFAULT_POLL_INTERVAL
            };
            let collect = super::collect::after_run_config(
                config.results.clone(),
                config.base_url.clone(),
                config.api_key.clone(),
                args.download.clone(),
                poll,
                config.timeout,
            );
            drop(signals);
            let collected = super::collect::run_collect(collect, output).await?;
            Ok(if collected == ExitCode::Success {
                code
            } else {
                collected
            })
        }
        None => Ok(code),
    }
}

fn build_config(
    flags: RunSettings,
    manifest: &Manifest,
    key: Secret,
    args: &RunArgs,
    output: &OutputArgs,
) -> Result<Config, Error> {
    let settings = flags.or(manifest.settings.clone());
    let config = Config::new(settings, key, &manifest.path, args.retry()).map_err(Error::Config)?;
    // Before anything is sent, a dry run included: it shows what a run does.
    crate::settings::check_transport(&config.as_config().base_url, args.allow_insecure_http)
        .map_err(Error::Config)?;
    Ok(config
        .max_jobs(args.max_jobs)
        .give_up_after(args.give_up_after)
        .quiet(output.quiet)
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
    let secret = std::env::var(crate::engine::collect::receive::SECRET_ENV).unwrap_or_default();
    if secret.trim().is_empty() {
        return Err(Error::Config(format!(
            "--callback-base needs a shared secret in {}, the same one `batchgen receive` uses",
            crate::engine::collect::receive::SECRET_ENV
        )));
    }
    // The same rule as `batchgen receive`, which would refuse it later.
    if let Some(why) = crate::engine::collect::receive::weak_secret(secret.trim()) {
        return Err(Error::Config(why));
    }
    Ok(Some(crate::settings::CallbackBase {
        base,
        secret: Secret::new(secret.trim()),
    }))
}

/// Asks for the balance before spending any. A refused key stops here
/// (exit 77) instead of on the first submit; a host without the endpoint,
/// or one that does not answer quickly, is not a reason to stop.
async fn check_balance(
    config: &Config,
    todo: usize,
    per_job: Option<f64>,
    quiet: bool,
) -> Result<(), Error> {
    let client = Client::new(
        &config.base_url,
        config.api_key.clone(),
        Duration::from_secs(10),
    )?;
    match client.balance().await {
        Ok(balance) => {
            let needed = todo as f64 * per_job.unwrap_or(DEFAULT_CREDITS_PER_JOB);
            if balance.credits < needed && !quiet {
                eprintln!(
                    "batchgen: warning: this run needs about {needed} credits for {todo} jobs, the balance is {}; rows past it will stop the run with HTTP 402",
                    balance.credits
                );
            }
            tracing::info!("balance: {} credits", balance.credits);
            Ok(())
        }
        Err(e) if e.class() == ErrorClass::Fatal => Err(Error::Refused {
            status: e.http_status().unwrap_or(401),
            message: e.server_message(),
        }),
        // Every submit would be redirected too: stop before sending any.
        Err(e) if e.class() == ErrorClass::Misdirected => Err(Error::Config(e.to_string())),
        Err(e) => {
            tracing::info!("could not check the balance: {e}");
            Ok(())
        }
    }
}

/// Where the base URL in effect came from, for the line that names the
/// host the key goes to.
fn base_url_source(args: &RunArgs, manifest: &Manifest) -> String {
    if args.sandbox {
        "the in-process sandbox".into()
    } else if args.base_url.is_some() {
        "--base-url or BATCHGEN_BASE_URL".into()
    } else if manifest.settings.base_url.is_some() {
        format!("[run] base_url in {}", manifest.path.display())
    } else {
        "the default".into()
    }
}

fn print_dry_run(
    manifest: &Manifest,
    config: &Config,
    plan: &Plan,
    source: &str,
) -> Result<(), Error> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dry run: {} jobs in {} · {} to send · {} already settled · nothing will be sent",
        manifest.len(),
        manifest.path.display(),
        plan.todo.len(),
        plan.skipped,
    );
    let _ = writeln!(
        out,
        "the API key would go to {} (from {source})",
        crate::util::redact::url(&config.base_url)
    );
    if let Some(interval) = config.rate.interval()
        && !plan.todo.is_empty()
    {
        let secs = interval.as_secs_f64() * (plan.todo.len() - 1) as f64;
        let _ = writeln!(
            out,
            "at {} with {} in flight: at least {}",
            config.rate,
            config.concurrency,
            humantime::format_duration(Duration::from_secs(secs.ceil() as u64))
        );
    }
    // Every job to send is read, to count where each would go; the first
    // few are shown whole.
    let mut todo = plan.todo.iter().map(|&i| i as usize).peekable();
    let mut to_callback_path = 0;
    for (i, job) in manifest.jobs()?.enumerate() {
        let Some(&next) = todo.peek() else { break };
        let mut job = job?;
        if i < next {
            continue;
        }
        todo.next();
        if let Some(callback) = &config.callback {
            callback.apply(&mut job);
        }
        let takes_callback = GeneratePaths::takes_callback_path(&job);
        to_callback_path += usize::from(takes_callback);
        let shown = plan.todo.len() - todo.len();
        if shown <= DRY_RUN_BODIES {
            let body = serde_json::to_string(job.body()).expect("fields serialize");
            // What would be sent, but the callback secret (and any other)
            // stays off the screen: the same rule as every other output.
            let body = crate::util::redact::text(&body);
            let url = crate::api::http::endpoint(&config.base_url, config.generate.for_job(&job));
            let _ = writeln!(
                out,
                "POST {}  # line {}, {}\n{body}",
                crate::util::redact::url(&url),
                job.line,
                job.key
            );
        }
    }
    if plan.todo.len() > DRY_RUN_BODIES {
        let _ = writeln!(out, "… and {} more", plan.todo.len() - DRY_RUN_BODIES);
    }
    let endpoint = |path: &str| crate::api::http::endpoint(&config.base_url, path);
    for (n, url, which) in [
        (
            plan.todo.len() - to_callback_path,
            endpoint(&config.generate.plain),
            "without a callback_url",
        ),
        (
            to_callback_path,
            endpoint(&config.generate.callback),
            "with a callback_url",
        ),
    ] {
        if n > 0 {
            let _ = writeln!(out, "{n} {which} would go to POST {url}");
        }
    }
    for warning in &plan.warnings {
        eprint_line(&format!("batchgen: warning: {warning}"));
    }
    let _ = writeln!(out, "results would go to {}", config.results.display());
    // Ignore a closed pipe (`--dry-run | head`): the reader has seen enough.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    Ok(())
}

/// The `--summary-json` document.
#[derive(Debug, Serialize)]
struct Summary {
    exit_code: u8,
    error: Option<String>,
    manifest: Option<PathBuf>,
    results: Option<PathBuf>,
    /// Final status of every manifest row.
    totals: Option<std::collections::BTreeMap<&'static str, u64>>,
    /// Rows this run settled, by status.
    this_run: Option<std::collections::BTreeMap<&'static str, u64>>,
    skipped: u64,
    requests: u64,
    retries: u64,
    rate_limited: u64,
    elapsed_seconds: f64,
    requests_per_second: f64,
    stopped: Option<String>,
    finished_at: String,
}

impl Summary {
    fn new(
        args: &RunArgs,
        outcome: &Outcome,
        code: ExitCode,
        error: Option<&Error>,
        elapsed: Duration,
    ) -> Summary {
        let report = outcome.report.as_ref();
        let secs = elapsed.as_secs_f64();
        let requests = report.map_or(0, |r| r.requests);
        Summary {
            exit_code: code.code(),
            error: error.map(|e| crate::util::redact::text(&e.to_string()).into_owned()),
            manifest: args.manifest.clone(),
            results: outcome.results.clone(),
            totals: report.map(|r| r.totals.clone()),
            this_run: report.map(|r| r.this_run.clone()),
            skipped: report.map_or(0, |r| r.skipped),
            requests,
            retries: report.map_or(0, |r| r.retries),
            rate_limited: report.map_or(0, |r| r.rate_limited),
            elapsed_seconds: (secs * 1000.0).round() / 1000.0,
            requests_per_second: if secs > 0.0 {
                requests as f64 / secs
            } else {
                0.0
            },
            stopped: report
                .and_then(|r| r.stop.as_ref())
                .map(|s| crate::util::redact::text(&format!("{s:?}")).into_owned()),
            finished_at: crate::util::clock::now_rfc3339(),
        }
    }
}

/// The lock file of the results file `results` (as [`crate::files::results::Lock`]
/// names it: after the real file).
fn results_lock(results: &Path) -> PathBuf {
    let real = crate::util::fsx::resolve(results).unwrap_or_else(|_| results.to_owned());
    let mut name = real.into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Writes JSON atomically, so a monitor never reads half a file, and never
/// through a symlink planted under its name ([`crate::util::fsx`]).
fn write_json(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let mut tmp = crate::util::fsx::AtomicFile::create_unlinked(path)?;
    let mut out = std::io::BufWriter::new(tmp.file_mut());
    serde_json::to_writer_pretty(&mut out, value)?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    tmp.commit()
}
