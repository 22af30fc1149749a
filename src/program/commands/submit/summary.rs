//! What `--summary-json` writes, whatever happened, and the check that it
//! would not overwrite a file the run reads or writes. Apart from the
//! command because the document outlives every phase of it: it is built
//! from an [`Outcome`] the phases fill in as far as they got.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::engine::submit::report::RunReport;
use crate::program::cli::RunArgs;
use crate::program::exit::{Error, ExitCode};

/// What the summary needs from a run that may have ended anywhere.
#[derive(Default)]
pub(super) struct Outcome {
    pub(super) results: Option<PathBuf>,
    pub(super) report: Option<RunReport>,
    /// `--summary-json` names a file the run reads or writes: it is not
    /// written at all (see [`check_summary_path`]).
    pub(super) summary_refused: bool,
}

/// Refuses a `--summary-json` that is one of the files the run depends on
/// (compared as real files, so a symlink or `./` spelling is caught): the
/// summary, written last, would replace the manifest, its CSV, or every
/// task ID in the results file. Checked before anything is sent.
///
/// # Errors
/// [`Error::Usage`] naming which file it is.
pub(super) fn check_summary_path(
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

/// The `--summary-json` document.
#[derive(Debug, Serialize)]
pub(super) struct Summary {
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
    /// Credits this run's jobs cost by the catalogue's prices (estimated).
    credits_estimated: f64,
    /// `--budget`, if the run had one.
    budget: Option<f64>,
    /// The balance before and after, as the host reports it (`null` when
    /// it reports none), and their difference: what the host charged
    /// while the run sent, other use of the account included.
    balance_before: Option<f64>,
    balance_after: Option<f64>,
    credits_measured: Option<f64>,
    elapsed_seconds: f64,
    requests_per_second: f64,
    stopped: Option<String>,
    finished_at: String,
}

impl Summary {
    pub(super) fn new(
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
            credits_estimated: report.map_or(0.0, |r| r.credits),
            budget: report.and_then(|r| r.budget),
            balance_before: report.and_then(|r| r.balance.before),
            balance_after: report.and_then(|r| r.balance.after),
            credits_measured: report.and_then(|r| r.balance.spent()),
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

/// Writes JSON atomically, so a monitor never reads half a file, and never
/// through a symlink planted under its name ([`crate::util::fsx`]).
pub(super) fn write_json(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let mut tmp = crate::util::fsx::AtomicFile::create_unlinked(path)?;
    let mut out = std::io::BufWriter::new(tmp.file_mut());
    serde_json::to_writer_pretty(&mut out, value)?;
    std::io::Write::flush(&mut out)?;
    drop(out);
    tmp.commit()
}
