//! What a run would do: the rows to send, chosen from the manifest and
//! the state store ([`crate::files::state`]), and the one pass (`merge`)
//! that pairs each job with its row in the store.
//!
//! What a plan keeps per row is the index of the rows it will send, plus,
//! while they fit in `Config::hold_budget` (8 MiB), those jobs themselves,
//! so that sending them does not read the manifest again. A rerun whose
//! store already holds exactly the manifest's jobs skips the merge: the
//! digest validation took is compared with the one the last merge
//! recorded (`Plan::from_state`).

use std::collections::BTreeMap;

use super::error::RunError;
use crate::files::manifest::Manifest;
use crate::files::results::{Record, Status};
use crate::files::state::State;
use crate::job::Job;
use crate::settings::Config;

/// Warnings listed one by one before the rest are only counted.
const MAX_WARNINGS: usize = 20;

/// What a run would do, computed from the manifest and the results file.
#[derive(Debug, Default)]
pub struct Plan {
    /// Manifest positions of the jobs to send, in order.
    pub todo: Vec<u32>,
    /// Rows an earlier run settled that this one leaves alone.
    pub skipped: u64,
    /// Submitted jobs this run sends again to regenerate them
    /// (`--regenerate`), among `todo`.
    pub regenerating: u64,
    pub warnings: Vec<String>,
    /// Status of every manifest row before this run, by status.
    pub totals: BTreeMap<&'static str, u64>,
    /// Whether the results file needs rewriting to match the manifest.
    pub changed: bool,
    /// The jobs to send, in `todo` order, and the bytes they take: kept
    /// from the pass that chose them while they fit in
    /// `Config::hold_budget` (see [`crate::settings::DEFAULT_HOLD_BUDGET`] for
    /// why); `None` when not being kept.
    pub(super) held: Option<(Vec<Job>, usize)>,
}

impl Plan {
    /// The plan without writing anything (`--dry-run`): from the store
    /// read-only, or from the results file when there is no store yet.
    ///
    /// # Errors
    /// When the store or the results file cannot be read or is not ours.
    pub fn read(manifest: &Manifest, config: &Config) -> Result<Plan, RunError> {
        let mut state = State::open_read_only(&config.results)?;
        Plan::of(manifest, &mut state, config, false)
    }

    /// The plan from `state` (open for the run, or read-only), merging the
    /// manifest into it unless it already holds exactly the manifest's
    /// jobs. `hold` keeps the jobs to send (a run); a dry run needs only
    /// the counts.
    ///
    /// # Errors
    /// When the store cannot be read or written, or the manifest read
    /// again.
    pub fn of(
        manifest: &Manifest,
        state: &mut State,
        config: &Config,
        hold: bool,
    ) -> Result<Plan, RunError> {
        // The jobs to regenerate are known by key: the merge that pairs
        // keys with places decides them (no shortcut then).
        let regenerate = state.to_regenerate(config.regenerate)?;
        if regenerate.is_empty()
            && let Some(plan) = Plan::from_state(manifest, state, config)?
        {
            return Ok(plan);
        }
        let mut plan = Plan {
            held: hold.then(|| (Vec::new(), 0)),
            ..Plan::default()
        };
        plan.changed = merge(manifest, state, |i, job, record| {
            let again = record.status == Status::Submitted && regenerate.contains(&*job.key);
            plan.consider(i, job, record, config, again)
        })?;
        Ok(plan)
    }

    /// The plan from the store alone, when its jobs are exactly the
    /// manifest's: each with the job's key, line and fingerprint in
    /// manifest order (the digest the last merge recorded equals the one
    /// validation took), none `sending`. [`merge`] would then change
    /// nothing, so the manifest need not be read a second time: the hourly
    /// rerun of a finished manifest costs its validation and one read of
    /// the statuses. `None` for anything else: the full merge decides, and
    /// reports.
    pub(super) fn from_state(
        manifest: &Manifest,
        state: &State,
        config: &Config,
    ) -> Result<Option<Plan>, RunError> {
        let mut plan = Plan::default();
        let mut i = 0usize;
        let same =
            state.statuses_if_unchanged(manifest.digest(), manifest.summary.jobs, |status| {
                plan.count(i, status, config, false);
                i += 1;
            })?;
        Ok(same.then_some(plan))
    }

    /// Counts job `i` and its row, and keeps the job if this run sends it;
    /// `regenerate`: a submitted job sent again (`--regenerate`).
    pub(super) fn consider(
        &mut self,
        i: usize,
        job: &Job,
        record: &Record,
        config: &Config,
        regenerate: bool,
    ) {
        let todo = self.todo.len();
        if let Some(warning) = content_change(job, record) {
            if self.warnings.len() < MAX_WARNINGS {
                self.warnings.push(warning);
            } else if self.warnings.len() == MAX_WARNINGS {
                self.warnings
                    .push("… more jobs changed under the same id".into());
            }
        }
        self.count(i, record.status, config, regenerate);
        if self.todo.len() > todo {
            self.hold(job, config.hold_budget);
        }
    }

    /// Keeps a job to send, while the jobs kept fit in `budget` bytes;
    /// past it, lets them all go.
    fn hold(&mut self, job: &Job, budget: usize) {
        let Some((jobs, bytes)) = self.held.as_mut() else {
            return;
        };
        *bytes += job.footprint();
        if *bytes > budget {
            self.held = None;
        } else {
            jobs.push(job.clone());
        }
    }

    /// The jobs to send, if all of them were kept.
    pub(super) fn take_held(&mut self) -> Option<Vec<Job>> {
        let (jobs, _) = self.held.take()?;
        (jobs.len() == self.todo.len()).then_some(jobs)
    }

    /// Counts job `i`, whose row before this run has `status` (settled),
    /// and decides whether this run sends it (a submitted one only to
    /// `regenerate` it).
    fn count(&mut self, i: usize, status: Status, config: &Config, regenerate: bool) {
        *self.totals.entry(status.as_str()).or_default() += 1;
        let wanted = match status {
            Status::Pending | Status::Sending => true,
            Status::Failed => config.retry.failed,
            Status::Unknown => config.retry.unknown,
            Status::Submitted => regenerate,
        };
        if !wanted {
            self.skipped += 1;
        } else if self.todo.len() < config.max_jobs.unwrap_or(usize::MAX) {
            self.todo
                .push(u32::try_from(i).expect("fewer than 4 billion jobs"));
            if status == Status::Submitted {
                self.regenerating += 1;
            }
        }
    }
}

/// One pass over the manifest: each job with its row in `state` (or a
/// new `pending` row), put in the manifest's order, then the rows of jobs
/// that left the manifest, placed after them. `visit` sees every job and
/// its row. Returns whether any row differs from the store's.
pub(super) fn merge(
    manifest: &Manifest,
    state: &mut State,
    mut visit: impl FnMut(usize, &Job, &Record),
) -> Result<bool, RunError> {
    let mut merge = state.merge()?;
    let mut changed = false;
    for (i, job) in manifest.jobs()?.enumerate() {
        let job = job?;
        let record = match merge.get(&job.key)? {
            Some(stored) => {
                let mut r = stored.clone().settled();
                r.line = job.line;
                // An unsent job takes its current content; a sent one keeps
                // what was sent, so an edit can be noticed.
                if r.fingerprint.is_empty()
                    || r.status == Status::Pending
                    || cut_short(&r.fingerprint, &job.fingerprint)
                {
                    r.fingerprint.clone_from(&job.fingerprint);
                }
                changed |= r != stored;
                r
            }
            None => {
                changed = true;
                Record::pending(&job)
            }
        };
        visit(i, &job, &record);
        merge.put(&record)?;
    }
    // Read in a dry run too: a damaged row of a job no longer in the
    // manifest stops a dry run as it would stop the run.
    let orphans = merge.orphans()?.len();
    merge.finish(orphans)?;
    Ok(changed || orphans > 0)
}

/// Whether `recorded` is `fingerprint` cut short (what a full disk or a
/// kill leaves in a damaged results file): the same job, as far as can be
/// told, whose record is repaired rather than reported as changed.
fn cut_short(recorded: &str, fingerprint: &str) -> bool {
    !recorded.is_empty() && recorded.len() < fingerprint.len() && fingerprint.starts_with(recorded)
}

/// A job whose `id` stayed but whose content changed since an earlier run
/// settled it: the earlier result is kept (its task exists and was paid
/// for) and the user is told how to get the new version, and what that
/// costs. A recorded fingerprint cut short that matches the job as far as
/// it goes is no change (the merge repairs it); one that does not match is
/// said to be either, and no new `id` is urged: that would bill again.
fn content_change(job: &Job, r: &Record) -> Option<String> {
    let settled = matches!(
        r.status,
        Status::Submitted | Status::Unknown | Status::Failed
    );
    if !settled
        || r.fingerprint.is_empty()
        || r.fingerprint == job.fingerprint
        || cut_short(&r.fingerprint, &job.fingerprint)
    {
        return None;
    }
    let task = if r.task_id.is_empty() {
        "none"
    } else {
        &r.task_id
    };
    if r.fingerprint.len() < job.fingerprint.len() {
        return Some(format!(
            "line {}: job {:?} ({}, task {task}): its recorded fingerprint is cut short (a damaged results file), so whether the job changed cannot be told; its earlier result is kept and nothing is sent. Only if you did edit it, a new id sends it as a new job, billed again",
            job.line,
            job.key,
            r.status.as_str(),
        ));
    }
    Some(format!(
        "line {}: job {:?} changed since it was {} (task {task}); keeping the earlier result — give it a new id to generate the new version (it is then sent, and billed, as a new job)",
        job.line,
        job.key,
        r.status.as_str(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobFields;

    #[test]
    fn advice_about_a_changed_job_says_what_it_costs_and_never_urges_a_second_bill() {
        let job = Job::new(
            JobFields {
                id: Some("song".into()),
                prompt: Some("second version".into()),
                ..JobFields::default()
            },
            2,
        );
        let record = |fingerprint: &str| Record {
            status: Status::Unknown,
            task_id: "t1".into(),
            fingerprint: fingerprint.into(),
            ..Record::pending(&job)
        };
        let full = job.fingerprint.clone();
        assert_eq!(content_change(&job, &record(&full)), None);
        assert_eq!(
            content_change(&job, &record(&full[..5])),
            None,
            "cut short, and the same as far as it goes: repaired, not a change"
        );
        let other: String = full
            .chars()
            .map(|c| if c == '0' { '1' } else { '0' })
            .collect();
        let damaged = content_change(&job, &record(&other[..6])).unwrap();
        assert!(
            damaged.contains("cut short") && damaged.contains("cannot be told"),
            "{damaged}"
        );
        assert!(
            damaged.contains("Only if you did edit it") && damaged.contains("billed again"),
            "{damaged}"
        );
        let changed = content_change(&job, &record(&other)).unwrap();
        assert!(
            changed.contains("changed since it was unknown (task t1)"),
            "{changed}"
        );
        assert!(changed.contains("billed, as a new job"), "{changed}");
        assert!(cut_short("ab", "abc") && !cut_short("", "abc") && !cut_short("abc", "abc"));
    }
}
