//! Which jobs `--regenerate` sends again: a submitted job whose current
//! task's takes were all measured and all rejected, or whose task failed
//! with every clip for a reason the host says is worth a resend (sunoapi's
//! code 531, [`crate::api::provider::sunoapi::worth_resending`]), and that
//! was regenerated fewer times than the limit.
//!
//! Never a moderation failure, a failed download or a task still running:
//! a job whose task failed for any other reason, or that has a complete
//! take not measured yet, is not one. A regeneration is a new task of the
//! job, sent through the same pool and journal as any send (`sending`
//! before the request, so a kill never bills it twice); its earlier tasks,
//! their takes and their files are kept.

use std::collections::HashSet;

use rusqlite::Connection;

/// The keys of the jobs to regenerate, at most `limit` regenerations each
/// (module docs).
pub(super) fn due(conn: &Connection, limit: u32) -> rusqlite::Result<HashSet<String>> {
    let mut keys = HashSet::new();
    if limit == 0 {
        return Ok(keys);
    }
    // Every take of the current task rejected, and every clip of it that
    // did not fail measured.
    let mut rejected = conn.prepare(
        "SELECT j.key FROM jobs j
         WHERE j.status = 'submitted' AND j.task_id <> '' AND j.regenerations < ?1
           AND EXISTS (SELECT 1 FROM takes t WHERE t.job_id = j.id AND t.task_id = j.task_id)
           AND NOT EXISTS (SELECT 1 FROM takes t
                           WHERE t.job_id = j.id AND t.task_id = j.task_id AND t.verdict = 'kept')
           AND NOT EXISTS (SELECT 1 FROM clips c
                           WHERE c.job_id = j.id AND c.task_id = j.task_id AND c.status <> 'failed'
                             AND NOT EXISTS (SELECT 1 FROM takes t WHERE t.job_id = c.job_id
                                             AND t.task_id = c.task_id AND t.clip_id = c.clip_id))",
    )?;
    for key in rejected.query_map([limit], |r| r.get::<_, String>(0))? {
        keys.insert(key?);
    }
    // Every clip of the current task failed, each for a reason worth a
    // resend.
    let mut failed = conn.prepare(
        "SELECT j.key, c.error FROM jobs j JOIN clips c ON c.job_id = j.id AND c.task_id = j.task_id
         WHERE j.status = 'submitted' AND j.task_id <> '' AND j.regenerations < ?1
           AND NOT EXISTS (SELECT 1 FROM clips o
                           WHERE o.job_id = j.id AND o.task_id = j.task_id AND o.status <> 'failed')
         ORDER BY j.id",
    )?;
    let mut rows = failed.query([limit])?;
    let mut worth: Option<(String, bool)> = None;
    while let Some(row) = rows.next()? {
        let key: String = row.get(0)?;
        let resend = crate::api::provider::sunoapi::worth_resending(row.get_ref(1)?.as_str()?);
        match &mut worth {
            Some((k, all)) if *k == key => *all &= resend,
            _ => {
                if let Some((k, true)) = worth.take() {
                    keys.insert(k);
                }
                worth = Some((key, resend));
            }
        }
    }
    if let Some((k, true)) = worth {
        keys.insert(k);
    }
    Ok(keys)
}
