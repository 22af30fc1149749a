//! `batchgen status RESULTS`: the one-screen answer to "where does this
//! catalog stand?", from [`crate::files::status`], and the commands that
//! move it on. `--json` prints the same as one object for monitors;
//! `--html` also writes the catalog page and the playlist
//! ([`crate::files::page`]) from the catalog as it is, on demand.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::engine::collect::default_catalog_path;
use crate::files::page;
use crate::files::state::Spending;
use crate::files::status::{self, Reason, Report};
use crate::program::cli::StatusArgs;
use crate::program::exit::{Error, ExitCode};

/// Reasons shown per kind on the screen (`--json` has them all).
const SHOWN_REASONS: usize = 5;

/// One thing to do next, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Next {
    pub command: String,
    pub why: String,
}

#[derive(Serialize)]
struct Json<'a> {
    #[serde(flatten)]
    report: &'a Report,
    next: Vec<Next>,
}

pub fn status(args: &StatusArgs) -> Result<ExitCode, Error> {
    let catalog = args
        .catalog
        .clone()
        .unwrap_or_else(|| default_catalog_path(&args.results));
    super::collect::check_catalog_path(&args.results, &catalog)?;
    let (report, snapshot) = status::read_with_snapshot(&args.results, &catalog)?;
    let next = next_steps(&report, args.catalog.is_some());
    let mut text = if args.json {
        let mut json = serde_json::to_string_pretty(&Json {
            report: &report,
            next,
        })
        .map_err(|e| anyhow::anyhow!("cannot encode the status: {e}"))?;
        json.push('\n');
        json
    } else {
        screen(&report, &next)
    };
    if args.html {
        text.push_str(&html(&catalog, &snapshot, report.catalog_found)?);
    }
    // The results' text is the server's and the user's: the same masking
    // as every other output.
    let text = crate::util::redact::text(&text);
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(ExitCode::Success)
}

/// Writes the page and the playlist of `catalog`; the lines that name them.
fn html(
    catalog: &Path,
    snapshot: &crate::files::state::Snapshot,
    found: bool,
) -> Result<String, Error> {
    if !found {
        return Err(Error::Usage(format!(
            "{} does not exist yet: nothing collected, no page to write (run batchgen collect first)",
            catalog.display()
        )));
    }
    let out = page::write_outputs_from_store(catalog, |emit| snapshot.each_job(emit))?;
    let mut text = String::new();
    let _ = writeln!(text, "  page:      {}", out.page.display());
    if let Some(dir) = &out.data_dir {
        let _ = writeln!(text, "             (its data in {})", dir.display());
    }
    let _ = writeln!(
        text,
        "  playlist:  {} ({} songs)",
        out.playlist.display(),
        out.playlist_entries
    );
    Ok(text)
}

/// The commands that move the catalog on, most useful first.
pub fn next_steps(report: &Report, catalog_given: bool) -> Vec<Next> {
    let results = report.results.display().to_string();
    let catalog = if catalog_given {
        format!(" --catalog {}", report.catalog.display())
    } else {
        String::new()
    };
    let (jobs, tasks) = (&report.jobs, &report.tasks);
    let mut next = Vec::new();
    let mut push = |command: String, why: String| next.push(Next { command, why });
    if jobs.pending > 0 {
        push(
            "batchgen MANIFEST".into(),
            format!("{} jobs not sent yet", jobs.pending),
        );
    }
    if tasks.running + tasks.not_collected > 0 {
        push(
            format!("batchgen collect {results}{catalog}"),
            format!(
                "{} tasks still running, {} not collected yet",
                tasks.running, tasks.not_collected
            ),
        );
    }
    if report.downloads.left > 0 {
        push(
            format!("batchgen collect {results}{catalog} --download DIR"),
            format!("{} complete clips not on disk", report.downloads.left),
        );
    }
    if jobs.failed > 0 {
        push(
            "batchgen MANIFEST --retry-failed".into(),
            format!(
                "{} jobs failed (see the reasons; fix the rows first)",
                jobs.failed
            ),
        );
    }
    if jobs.unknown > 0 {
        push(
            "batchgen MANIFEST --retry-unknown".into(),
            format!(
                "{} jobs may or may not have been created: check the account first, a resend can bill twice",
                jobs.unknown
            ),
        );
    }
    next
}

fn screen(report: &Report, next: &[Next]) -> String {
    let (j, t, c, d) = (
        &report.jobs,
        &report.tasks,
        &report.clips,
        &report.downloads,
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} jobs · {} submitted · {} failed · {} unknown · {} pending",
        report.results.display(),
        j.total,
        j.submitted,
        j.failed,
        j.unknown,
        j.pending
    );
    let _ = writeln!(
        out,
        "  tasks:     {} finished · {} running · {} not collected",
        t.finished, t.running, t.not_collected
    );
    if let Some(line) = credits_line(&report.credits) {
        let _ = writeln!(out, "  credits:   {line}");
    }
    if report.accounts.iter().any(|a| !a.account.is_empty()) {
        let accounts: Vec<String> = report
            .accounts
            .iter()
            .map(|a| {
                let name = if a.account.is_empty() {
                    "(not recorded)"
                } else {
                    &a.account
                };
                format!(
                    "{name} {} {}",
                    a.tasks,
                    if a.tasks == 1 { "task" } else { "tasks" }
                )
            })
            .collect();
        let _ = writeln!(out, "  accounts:  {}", accounts.join(" · "));
    }
    if report.catalog_found {
        let _ = writeln!(
            out,
            "  clips:     {} · {} complete · {} failed · {} in progress (new {}, text {}, first {})",
            c.total,
            c.complete,
            c.failed,
            c.new + c.text + c.first,
            c.new,
            c.text,
            c.first
        );
        let _ = writeln!(out, "  downloads: {} done · {} left", d.done, d.left);
        let k = &report.takes;
        if k.kept + k.rejected > 0 {
            let _ = writeln!(
                out,
                "  takes:     {} kept · {} rejected · {} jobs with none kept",
                k.kept, k.rejected, k.jobs_none_kept
            );
        }
        let _ = writeln!(out, "  catalog:   {}", report.catalog.display());
    } else {
        let _ = writeln!(
            out,
            "  catalog:   {} does not exist yet (nothing collected)",
            report.catalog.display()
        );
    }
    if let Some(warning) = report.expiring.warning() {
        let _ = writeln!(out, "  warning:   {warning}");
    }
    reasons(&mut out, "job failures", &report.job_failures);
    reasons(&mut out, "clip failures", &report.clip_failures);
    reasons(&mut out, "clips pending for a reason", &report.clip_pending);
    if next.is_empty() {
        let _ = writeln!(
            out,
            "nothing left to do: every job is in and every clip final"
        );
    } else {
        let _ = writeln!(out, "next:");
        for n in next {
            let _ = writeln!(out, "  {}    # {}", n.command, n.why);
        }
    }
    out
}

fn reasons(out: &mut String, title: &str, reasons: &[Reason]) {
    if reasons.is_empty() {
        return;
    }
    let _ = writeln!(out, "  {title}:");
    for r in reasons.iter().take(SHOWN_REASONS) {
        let _ = writeln!(out, "    {:>6}  {}", r.count, r.reason);
    }
    if reasons.len() > SHOWN_REASONS {
        let rest: u64 = reasons[SHOWN_REASONS..].iter().map(|r| r.count).sum();
        let _ = writeln!(
            out,
            "    {rest:>6}  … {} more reasons (--json lists them all)",
            reasons.len() - SHOWN_REASONS
        );
    }
}

/// The credits line: the estimate over the finished runs, what the
/// balance measured where the host reports one, the last run, and the
/// runs that never finished (their spending is in no figure). `None` for
/// a store no run sent from.
fn credits_line(s: &Spending) -> Option<String> {
    if s.runs + s.unfinished == 0 {
        return None;
    }
    let runs = |n: u64| if n == 1 { "run" } else { "runs" };
    let mut line = format!(
        "~{} estimated over {} {}",
        round(s.credits_estimated),
        s.runs,
        runs(s.runs)
    );
    if s.runs_measured > 0 {
        line += &format!(
            " · {} charged by the balance over {} of them",
            round(s.credits_measured),
            s.runs_measured
        );
    }
    if let Some(last) = &s.last {
        line += &format!(" · last run ~{}", round(last.credits_estimated));
        if let (Some(before), Some(after)) = (last.balance_before, last.balance_after) {
            line += &format!(" (balance {} → {})", round(before), round(after));
        }
    }
    if s.unfinished > 0 {
        line += &format!(
            " · {} {} stopped before the end: not counted (see the provider's dashboard)",
            s.unfinished,
            runs(s.unfinished)
        );
    }
    Some(line)
}

/// Credits to two decimals at most, as the host shows them.
fn round(credits: f64) -> f64 {
    (credits * 100.0).round() / 100.0
}
