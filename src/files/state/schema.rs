//! The state file's schema: its version, and the ordered migrations that
//! bring an older file up to it.
//!
//! The version is SQLite's `PRAGMA user_version` (0 in a new, empty file:
//! no store yet). Each migration takes the file from version `n` to
//! `n + 1`; they run in order, all in one transaction with the version bump
//! (and, for a new store, with its import), so a file is either wholly at
//! the old version or wholly at the new one, whatever stops the process. A file whose version is above [`VERSION`] was written by a newer
//! batchgen: it is refused, never rewritten, with both versions named.
//!
//! # Compatibility rules
//! - A migration is never edited once released: a change is a new one.
//! - New state is a new table or a new column with a default, added by a
//!   migration, never a spare column kept for later.
//! - Every released version has a test that opens a file written at that
//!   version (`tests/fixtures/prev`, and the unit tests below).

use rusqlite::Connection;

/// The schema version this batchgen writes and reads.
pub const VERSION: u32 = 4;

/// Migration `i` takes a file from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: jobs and every task ID a job was ever given.
    r"
    CREATE TABLE meta (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    INSERT INTO meta (name, value) VALUES ('generation', '0'), ('reported', '-1');

    -- One row per job: its latest state. `id` is given in the order jobs
    -- first reach the store (the manifest's, as a rule), so the jobs one
    -- commit of a run records sit together on a page or two; `key` finds
    -- them. `position` is the job's place in the results report: its
    -- manifest order at the last merge, then the jobs no longer in the
    -- manifest, in their earlier order. `damaged_line` is set when the row
    -- was imported from a damaged line of a results file: such a job must
    -- be in the manifest (or the run stops).
    CREATE TABLE jobs (
        id           INTEGER PRIMARY KEY,
        key          TEXT NOT NULL UNIQUE,
        position     INTEGER NOT NULL,
        line         INTEGER NOT NULL,
        fingerprint  TEXT NOT NULL DEFAULT '',
        status       TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'submitted', 'failed', 'unknown')),
        attempts     INTEGER NOT NULL DEFAULT 0,
        http_status  INTEGER,
        error        TEXT NOT NULL DEFAULT '',
        submitted_at TEXT NOT NULL DEFAULT '',
        task_id      TEXT NOT NULL DEFAULT '',
        damaged_line INTEGER
    ) STRICT;
    CREATE INDEX jobs_by_position ON jobs (position);

    -- Every task ID a job was given, in the order it was given them
    -- (`seq` 1, 2, …): never deleted, whatever happens to the job later (a
    -- resend adds a row). Stored by the job's `id`, so a commit of the run
    -- touches a page or two here too.
    CREATE TABLE tasks (
        job_id    INTEGER NOT NULL REFERENCES jobs (id),
        seq       INTEGER NOT NULL,
        task_id   TEXT NOT NULL,
        attempt   INTEGER NOT NULL,
        issued_at TEXT NOT NULL,
        provider  TEXT NOT NULL,
        base_url  TEXT NOT NULL,
        PRIMARY KEY (job_id, seq)
    ) STRICT, WITHOUT ROWID;
    ",
    // 1 → 2: the catalog: the clips of each job's current task, and every
    // file downloaded for a clip.
    r"
    INSERT INTO meta (name, value) VALUES ('catalog_generation', '0'), ('catalog_reported', '-1');

    -- A job's clips as the host last described them, of the task that
    -- last said anything (a job sent again has its new task's clips here;
    -- its tasks stay in `tasks`). `clip_index` is 1, 2, … in the order
    -- the host lists the clips, 0 for a task that failed before it had
    -- any. Stored by the job's `id`, so a job's clips sit together.
    CREATE TABLE clips (
        job_id     INTEGER NOT NULL REFERENCES jobs (id),
        clip_index INTEGER NOT NULL,
        task_id    TEXT NOT NULL,
        clip_id    TEXT NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('new', 'text', 'first', 'complete', 'failed')),
        title      TEXT NOT NULL DEFAULT '',
        style      TEXT NOT NULL DEFAULT '',
        model      TEXT NOT NULL DEFAULT '',
        duration   REAL,
        created_at TEXT NOT NULL DEFAULT '',
        audio_url  TEXT NOT NULL DEFAULT '',
        image_url  TEXT NOT NULL DEFAULT '',
        error      TEXT NOT NULL DEFAULT '',
        lyrics     TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (job_id, clip_index)
    ) STRICT, WITHOUT ROWID;
    -- A clip's status and task without its text: what counting and the
    -- task rule read, a tenth of the table's bytes. And the clips that
    -- carry a message, for the reasons `status` groups.
    CREATE INDEX clips_by_job ON clips (job_id, status, task_id);
    CREATE INDEX clips_with_error ON clips (status, error) WHERE error <> '';

    -- Every file downloaded for a clip: its song (`audio`, with its size
    -- after tagging: a file of another size is not ours) or its cover
    -- (`image`). A file belongs to one clip of one task (task and clip
    -- ID), never to a clip's place: a job's later task never adopts an
    -- earlier task's files, and their names stay taken.
    CREATE TABLE files (
        job_id  INTEGER NOT NULL REFERENCES jobs (id),
        task_id TEXT NOT NULL,
        clip_id TEXT NOT NULL,
        kind    TEXT NOT NULL CHECK (kind IN ('audio', 'image')),
        path    TEXT NOT NULL,
        bytes   INTEGER,
        PRIMARY KEY (job_id, task_id, clip_id, kind)
    ) STRICT, WITHOUT ROWID;
    ",
    // 2 → 3: what measuring each downloaded take found, the verdict, and
    // how often a job was regenerated.
    r"
    -- The rules the verdicts below were reached under (see `takes`), and
    -- the manifest's `[quality]` table as the last run merged it (JSON),
    -- which a `collect` without a manifest judges by.
    INSERT INTO meta (name, value) VALUES ('judged_by', ''), ('quality', '');

    -- How many times a job was sent again to regenerate it (`--regenerate`:
    -- every take of its task rejected, or its task failed for a reason the
    -- host says is worth a resend): what caps it.
    ALTER TABLE jobs ADD COLUMN regenerations INTEGER NOT NULL DEFAULT 0;

    -- One row per measured take: a file downloaded for one clip of one
    -- task (as `files`), never for a clip's place, so a job's earlier
    -- tasks keep their takes' numbers. `method` is the measuring method's
    -- version (`crate::audio::VERSION`): a take measured by another one is
    -- measured again. `measurement` is the whole measurement as JSON, NULL
    -- when the file could not be measured (`error` says why); `duration`,
    -- `loudness` and `true_peak` are copied out of it for the reports.
    -- `verdict` and `reasons` are what the quality rules made of it;
    -- `picked` marks the take of the job's task the playlist takes.
    CREATE TABLE takes (
        job_id      INTEGER NOT NULL REFERENCES jobs (id),
        task_id     TEXT NOT NULL,
        clip_id     TEXT NOT NULL,
        method      INTEGER NOT NULL,
        measurement TEXT,
        error       TEXT NOT NULL DEFAULT '',
        duration    REAL,
        loudness    REAL,
        true_peak   REAL,
        verdict     TEXT NOT NULL CHECK (verdict IN ('kept', 'rejected')),
        reasons     TEXT NOT NULL DEFAULT '',
        picked      INTEGER NOT NULL DEFAULT 0 CHECK (picked IN (0, 1)),
        PRIMARY KEY (job_id, task_id, clip_id)
    ) STRICT, WITHOUT ROWID;
    ",
    // 3 → 4: what each run spent, the quality rules jobs set for
    // themselves, and the account that made each task.
    r"
    -- The account a task was made with: the label of its key, a short
    -- fingerprint of it (`key-1a2b3c4d`), never the key; empty for tasks
    -- made before accounts were recorded, and on hosts that take no key.
    ALTER TABLE tasks ADD COLUMN account TEXT NOT NULL DEFAULT '';

    -- The quality rules of the jobs that set their own (their duration
    -- limits, as the job's manifest row wrote them, JSON like `[quality]`'s
    -- in `meta`), by job key, as the last run's manifest had them: what
    -- a `collect` without a manifest judges those jobs' takes by. Only
    -- jobs with rules of their own have a row.
    CREATE TABLE job_quality (
        key   TEXT PRIMARY KEY,
        rules TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;

    -- One row per run that sent anything: written before its first
    -- request (`finished_at` empty) and completed after its last, so a
    -- run killed in between shows as one. `credits` is the estimate by
    -- the model catalogue's prices (`--credits-per-job` where it has
    -- none); the balances are the host's, before the first request and
    -- after the last, where it reports one.
    CREATE TABLE runs (
        id             INTEGER PRIMARY KEY,
        started_at     TEXT NOT NULL,
        finished_at    TEXT NOT NULL DEFAULT '',
        requests       INTEGER NOT NULL DEFAULT 0,
        credits        REAL NOT NULL DEFAULT 0,
        balance_before REAL,
        balance_after  REAL
    ) STRICT;
    ",
];

/// What opening found about the file's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// At [`VERSION`], after migrating from `from` (equal when nothing ran).
    Current { from: u32 },
    /// Written by a newer batchgen.
    Newer(u32),
}

/// The version of the file `conn` has open.
///
/// # Errors
/// When the file cannot be read (not a database, say).
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the file up to [`VERSION`] within the caller's transaction
/// `tx` (committed by the caller, with whatever else must be atomic with
/// it: a new store's import). A newer file is left as it is.
///
/// # Errors
/// When the file cannot be read or written.
pub fn migrate(tx: &Connection) -> rusqlite::Result<Found> {
    let from = version(tx)?;
    if from > VERSION {
        return Ok(Found::Newer(from));
    }
    for step in &MIGRATIONS[from as usize..] {
        tx.execute_batch(step)?;
    }
    if from < VERSION {
        tx.pragma_update(None, "user_version", VERSION)?;
    }
    Ok(Found::Current { from })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_at_each_earlier_version_is_brought_up_to_date() {
        for at in 1..VERSION {
            let mut conn = Connection::open_in_memory().unwrap();
            for step in &MIGRATIONS[..at as usize] {
                conn.execute_batch(step).unwrap();
            }
            conn.pragma_update(None, "user_version", at).unwrap();
            let tx = conn.transaction().unwrap();
            assert_eq!(migrate(&tx).unwrap(), Found::Current { from: at });
            tx.commit().unwrap();
            assert_eq!(version(&conn).unwrap(), VERSION);
        }
    }

    #[test]
    fn every_migration_is_counted_and_runs_once() {
        assert_eq!(MIGRATIONS.len(), VERSION as usize);
        let conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&conn).unwrap(), Found::Current { from: 0 });
        assert_eq!(migrate(&conn).unwrap(), Found::Current { from: VERSION });
        assert_eq!(version(&conn).unwrap(), VERSION);
    }

    #[test]
    fn a_newer_file_is_left_as_it_is() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1)
            .unwrap();
        assert_eq!(migrate(&conn).unwrap(), Found::Newer(VERSION + 1));
        assert_eq!(version(&conn).unwrap(), VERSION + 1);
        let tables: u32 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0, "nothing created in a newer file");
    }
}
