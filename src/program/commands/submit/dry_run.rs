//! `--dry-run`: what a run would send and where, printed on stdout,
//! without a request: the plan's counts, the host the key would go to, the
//! first few bodies whole, and how many jobs go to each endpoint.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::engine::submit::plan::Plan;
use crate::files::manifest::Manifest;
use crate::program::cli::RunArgs;
use crate::program::exit::Error;
use crate::settings::Config;
use crate::util::term::eprint_line;

/// How many request bodies `--dry-run` prints.
const DRY_RUN_BODIES: usize = 3;

/// Where the base URL in effect came from, for the line that names the
/// host the key goes to.
pub(super) fn base_url_source(args: &RunArgs, manifest: &Manifest) -> String {
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

/// Prints what a run would do (stdout) and the plan's warnings (stderr).
///
/// # Errors
/// When the manifest cannot be read again; nothing is printed then.
pub(super) fn print(
    manifest: &Manifest,
    config: &Config,
    plan: &Plan,
    source: &str,
) -> Result<(), Error> {
    let mut out = String::new();
    overview(&mut out, manifest, config, plan, source);
    let by_path = bodies(&mut out, manifest, config, plan)?;
    endpoints(&mut out, config, &by_path);
    for warning in &plan.warnings {
        eprint_line(&format!("batchgen: warning: {warning}"));
    }
    let _ = writeln!(out, "results would go to {}", config.results.display());
    // Ignore a closed pipe (`--dry-run | head`): the reader has seen enough.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes());
    Ok(())
}

/// The counts, the host the key would go to, and how long the run takes
/// at least.
fn overview(out: &mut String, manifest: &Manifest, config: &Config, plan: &Plan, source: &str) {
    let _ = writeln!(
        out,
        "dry run: {} jobs in {} · {} to send{} · {} already settled · nothing will be sent",
        manifest.len(),
        manifest.path.display(),
        plan.todo.len(),
        if plan.regenerating > 0 {
            format!(" ({} to regenerate)", plan.regenerating)
        } else {
            String::new()
        },
        plan.skipped,
    );
    let _ = writeln!(
        out,
        "the API key would go to {} (from {source})",
        crate::util::redact::url(&config.base_url)
    );
    let _ = writeln!(
        out,
        "speaking provider {} ({})",
        config.provider,
        config.provider.describe()
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
}

/// The first [`DRY_RUN_BODIES`] request bodies whole, as the run's
/// provider would send them. Every job to send is read, to count how many
/// go to each endpoint: returns the counts by path.
fn bodies(
    out: &mut String,
    manifest: &Manifest,
    config: &Config,
    plan: &Plan,
) -> Result<BTreeMap<String, usize>, Error> {
    let wire = crate::api::provider::wire(config.provider);
    let mut todo = plan.todo.iter().map(|&i| i as usize).peekable();
    let mut by_path = BTreeMap::new();
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
        let path = wire.submit_path(&job, &config.generate);
        let shown = plan.todo.len() - todo.len();
        if shown <= DRY_RUN_BODIES {
            let model = manifest
                .rules
                .catalogue()
                .wire_model(config.provider, job.fields.model.as_deref());
            let body = wire.submit_body(&job, model.as_deref());
            let body = String::from_utf8_lossy(&body).into_owned();
            // What would be sent, but the callback secret (and any other)
            // stays off the screen: the same rule as every other output.
            let body = crate::util::redact::text(&body);
            let url = crate::api::http::endpoint(&config.base_url, &path);
            let _ = writeln!(
                out,
                "POST {}  # line {}, {}\n{body}",
                crate::util::redact::url(&url),
                job.line,
                job.key
            );
        }
        *by_path.entry(path).or_insert(0) += 1;
    }
    if plan.todo.len() > DRY_RUN_BODIES {
        let _ = writeln!(out, "… and {} more", plan.todo.len() - DRY_RUN_BODIES);
    }
    Ok(by_path)
}

/// How many jobs would go to each generate endpoint.
fn endpoints(out: &mut String, config: &Config, by_path: &BTreeMap<String, usize>) {
    for (path, n) in by_path {
        let url = crate::api::http::endpoint(&config.base_url, path);
        let _ = writeln!(
            out,
            "{n} jobs would go to POST {}",
            crate::util::redact::url(&url)
        );
    }
}
