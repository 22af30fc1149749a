//! The one pass over every job that `status` and collect's summary count
//! from: each job's brief, the tasks' counts, the jobs not on disk.

use rusqlite::Connection;

use crate::api::feed::ClipStatus;
use crate::files::results::Status;

/// What a collect run reports of the store's submitted tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskCounts {
    /// Submitted jobs with a task ID.
    pub tasks: u64,
    /// Tasks finished by the task rule ([`crate::files::catalog::job::finished`]).
    pub finished: u64,
    /// The clips of each job's latest task, by status.
    pub complete: u64,
    pub failed: u64,
    pub pending: u64,
    /// Complete clips with no audio file recorded.
    pub unfiled: u64,
    /// The pending clips (of each job's latest task) that carry a message:
    /// why they wait, when batchgen knows ([`crate::api::feed::NO_FINAL_URL`]),
    /// most first.
    pub pending_reasons: Vec<(String, u64)>,
    /// The jobs sent before the cutoff that still have a song to fetch.
    pub unfetched: Unfetched,
    /// The measured takes of each job's latest task, by verdict.
    pub takes: TakeCounts,
    /// The submitted jobs' latest tasks by the account that made them.
    pub accounts: Vec<AccountTasks>,
}

/// The measured takes of each submitted job's latest task, by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TakeCounts {
    pub kept: u64,
    pub rejected: u64,
    /// Jobs with a measured take and none kept: nothing of theirs to
    /// release until someone listens or they are made again.
    pub jobs_none_kept: u64,
}

impl TakeCounts {
    /// Of the store open on `conn`.
    pub(in crate::files::state) fn of(conn: &Connection) -> rusqlite::Result<TakeCounts> {
        conn.prepare_cached(
            "SELECT coalesce(sum(kept), 0), coalesce(sum(takes - kept), 0), coalesce(sum(kept = 0), 0) FROM (
                 SELECT count(*) AS takes, sum(t.verdict = 'kept') AS kept
                 FROM takes t JOIN jobs j ON j.id = t.job_id AND j.task_id = t.task_id
                 CROSS JOIN clips c ON c.job_id = t.job_id AND c.task_id = t.task_id AND c.clip_id = t.clip_id
                 WHERE j.status = 'submitted'
                 GROUP BY t.job_id)",
        )?
        .query_row([], |r| {
            Ok(TakeCounts {
                kept: r.get(0)?,
                rejected: r.get(1)?,
                jobs_none_kept: r.get(2)?,
            })
        })
    }
}

/// The submitted jobs whose latest task one account made.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccountTasks {
    /// Its label or key fingerprint; `""` for tasks made before accounts
    /// were recorded, or on a host that takes no key.
    pub account: String,
    pub tasks: u64,
}

impl AccountTasks {
    /// Of the store open on `conn`, most tasks first.
    pub(in crate::files::state) fn of(conn: &Connection) -> rusqlite::Result<Vec<AccountTasks>> {
        conn.prepare_cached(
            "SELECT t.account, count(*) FROM jobs j
                 JOIN tasks t ON t.job_id = j.id AND t.task_id = j.task_id
                 WHERE j.status = 'submitted'
                 GROUP BY t.account ORDER BY count(*) DESC, t.account",
        )?
        .query_map([], |r| {
            Ok(AccountTasks {
                account: r.get(0)?,
                tasks: r.get(1)?,
            })
        })?
        .collect()
    }
}

/// One job as the counting passes see it (`each_job_brief`: one pass over
/// the jobs, their clips and their files, side by side).
#[derive(Debug)]
pub struct JobBrief<'a> {
    pub id: i64,
    pub status: Status,
    pub submitted_at: &'a str,
    /// Its clips' statuses, each with whether it is of the job's latest
    /// task.
    pub clips: &'a [(ClipStatus, bool)],
    /// Submitted before the cutoff, and a song still to fetch: never
    /// collected, or a clip that is not failed and has no audio file of
    /// its task. The provider deletes its files 14–15 days after a task
    /// (API.md): these are the songs a late collect would lose. (A failed
    /// clip that has a file, a rare leftover, may hide one that lacks it.)
    /// False when no cutoff was asked.
    pub unfetched: bool,
}

/// Hands `visit` every job (only the submitted ones with a task ID, when
/// `submitted`) with its clips, in id order; with a `cutoff` (RFC 3339,
/// as `submitted_at` is stored), also whether it is
/// [`JobBrief::unfetched`]. Ordered scans side by side, never a look-up
/// per job: the jobs by id, the clips' narrow index, and (with a cutoff)
/// the audio files by job, in their key's order.
pub(in crate::files::state) fn each_job_brief(
    conn: &Connection,
    submitted: bool,
    cutoff: Option<&str>,
    mut visit: impl FnMut(&JobBrief<'_>),
) -> rusqlite::Result<()> {
    let mut jobs = conn.prepare_cached(if submitted {
        "SELECT id, status, task_id, submitted_at FROM jobs
         WHERE status = 'submitted' AND task_id <> '' ORDER BY id"
    } else {
        "SELECT id, status, task_id, submitted_at FROM jobs ORDER BY id"
    })?;
    let mut clips =
        conn.prepare_cached("SELECT job_id, status, task_id FROM clips ORDER BY job_id")?;
    let mut files = conn.prepare_cached(
        "SELECT job_id, task_id FROM files WHERE kind = 'audio' AND ?1 ORDER BY job_id",
    )?;
    let mut jobs = jobs.query([])?;
    let mut clips = clips.query([])?;
    let mut files = files.query([cutoff.is_some()])?;
    let (mut clip, mut file) = (clips.next()?, files.next()?);
    let mut of_job: Vec<(ClipStatus, bool)> = Vec::new();
    let mut clip_task = String::new();
    while let Some(job) = jobs.next()? {
        let id: i64 = job.get(0)?;
        let status = crate::files::state::sql::status(job.get_ref(1)?.as_str()?);
        let task = job.get_ref(2)?.as_str()?;
        let submitted_at = job.get_ref(3)?.as_str()?;
        of_job.clear();
        clip_task.clear();
        while let Some(c) = clip {
            let job_id: i64 = c.get(0)?;
            if job_id > id {
                break;
            }
            if job_id == id {
                let status = ClipStatus::parse(c.get_ref(1)?.as_str()?);
                let of_task = c.get_ref(2)?.as_str()?;
                of_job.push((status, of_task == task));
                clip_task.clear();
                clip_task.push_str(of_task);
            }
            clip = clips.next()?;
        }
        let mut filed = 0u64;
        while let Some(f) = file {
            let job_id: i64 = f.get(0)?;
            if job_id > id {
                break;
            }
            if job_id == id && f.get_ref(1)?.as_str()? == clip_task {
                filed += 1;
            }
            file = files.next()?;
        }
        let unfetched = cutoff.is_some_and(|cutoff| {
            let wanted = of_job
                .iter()
                .filter(|(s, _)| *s != ClipStatus::Failed)
                .count() as u64;
            status == Status::Submitted
                && !submitted_at.is_empty()
                && submitted_at < cutoff
                && (of_job.is_empty() || filed < wanted)
        });
        visit(&JobBrief {
            id,
            status,
            submitted_at,
            clips: &of_job,
            unfetched,
        });
    }
    Ok(())
}

/// The task rule of [`crate::files::catalog::job::finished`] over a
/// [`JobBrief`]'s clips.
fn brief_finished(clips: &[(ClipStatus, bool)]) -> bool {
    clips.iter().all(|&(_, current)| current)
        && crate::api::feed::task_finished(clips.iter().map(|&(status, _)| status))
}

/// The [`JobBrief::unfetched`] jobs of one pass: their count and the
/// oldest one's time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unfetched {
    pub count: u64,
    pub oldest: Option<String>,
}

impl Unfetched {
    pub fn add(&mut self, brief: &JobBrief<'_>) {
        if !brief.unfetched {
            return;
        }
        self.count += 1;
        if self
            .oldest
            .as_deref()
            .is_none_or(|o| brief.submitted_at < o)
        {
            self.oldest = Some(brief.submitted_at.to_owned());
        }
    }
}

/// [`TaskCounts`] of the store, in one pass ([`each_job_brief`]);
/// `unfiled` only when `files` is asked; the unfetched jobs sent before
/// `cutoff`.
pub(in crate::files::state) fn task_counts(
    conn: &Connection,
    files: bool,
    cutoff: &str,
) -> rusqlite::Result<TaskCounts> {
    let mut n = TaskCounts::default();
    each_job_brief(conn, true, Some(cutoff), |brief| {
        n.tasks += 1;
        n.unfetched.add(brief);
        if brief_finished(brief.clips) {
            n.finished += 1;
        }
        for &(status, current) in brief.clips {
            match (current, status) {
                (false, _) => {}
                (true, ClipStatus::Complete) => n.complete += 1,
                (true, ClipStatus::Failed) => n.failed += 1,
                (true, _) => n.pending += 1,
            }
        }
    })?;
    if files {
        let filed: u64 = conn.query_row(
            "SELECT count(*) FROM files f CROSS JOIN clips c
                 ON c.job_id = f.job_id AND c.task_id = f.task_id AND c.clip_id = f.clip_id
             JOIN jobs j ON j.id = f.job_id
             WHERE f.kind = 'audio' AND c.status = 'complete'
                 AND j.status = 'submitted' AND j.task_id = c.task_id",
            [],
            |r| r.get(0),
        )?;
        n.unfiled = n.complete.saturating_sub(filed);
    }
    // From the index of the clips that carry a message: few rows.
    let mut reasons = conn.prepare_cached(
        "SELECT c.error, count(*) FROM clips c JOIN jobs j ON j.id = c.job_id
         WHERE c.error <> '' AND c.status IN ('new', 'text', 'first')
             AND j.status = 'submitted' AND j.task_id = c.task_id
         GROUP BY c.error ORDER BY count(*) DESC, c.error",
    )?;
    n.pending_reasons = reasons
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    n.takes = TakeCounts::of(conn)?;
    n.accounts = AccountTasks::of(conn)?;
    Ok(n)
}

/// The ids of the submitted jobs whose task is finished by the task rule,
/// as a bit set indexed by job id.
pub(super) fn finished_ids(conn: &Connection) -> rusqlite::Result<Vec<u64>> {
    let mut bits = Vec::new();
    each_job_brief(conn, true, None, |brief| {
        if brief_finished(brief.clips) {
            let id = usize::try_from(brief.id).unwrap_or(0);
            if bits.len() <= id / 64 {
                bits.resize(id / 64 + 1, 0u64);
            }
            bits[id / 64] |= 1 << (id % 64);
        }
    })?;
    Ok(bits)
}

pub(super) fn in_set(bits: &[u64], id: i64) -> bool {
    usize::try_from(id).is_ok_and(|id| bits.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0))
}
