//! What the runs of a store spent: each run's row of the `runs` table
//! ([`super::State::start_run`], [`super::State::finish_run`]) summed for
//! `status`.

use rusqlite::Connection;
use serde::Serialize;

/// The credits the runs of a store spent: estimated by the model
/// catalogue's prices, and measured by the host's balance where it
/// reports one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spending {
    /// Runs that sent anything and finished.
    pub runs: u64,
    /// Runs that started sending and never finished (killed, or the
    /// machine went down): what they spent is in no figure here.
    pub unfinished: u64,
    /// The estimate over the finished runs.
    pub credits_estimated: f64,
    /// What the balance went down by over the finished runs that have a
    /// balance before and after (other use of the account included).
    pub credits_measured: f64,
    /// Finished runs with both balances: the runs `credits_measured`
    /// covers.
    pub runs_measured: u64,
    /// The latest finished run.
    pub last: Option<RunSpend>,
}

/// One finished run's spending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RunSpend {
    pub credits_estimated: f64,
    pub balance_before: Option<f64>,
    pub balance_after: Option<f64>,
}

impl RunSpend {
    /// What the balance went down by (never negative: a top-up in between
    /// reads as 0).
    pub fn credits_measured(&self) -> Option<f64> {
        Some((self.balance_before? - self.balance_after?).max(0.0))
    }
}

impl Spending {
    /// Of the store open on `conn`.
    pub(super) fn of(conn: &Connection) -> rusqlite::Result<Spending> {
        let mut spending = Spending::default();
        let mut stmt = conn.prepare_cached(
            "SELECT finished_at <> '', credits, balance_before, balance_after FROM runs ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            if !row.get::<_, bool>(0)? {
                spending.unfinished += 1;
                continue;
            }
            let run = RunSpend {
                credits_estimated: row.get(1)?,
                balance_before: row.get(2)?,
                balance_after: row.get(3)?,
            };
            spending.runs += 1;
            spending.credits_estimated += run.credits_estimated;
            if let Some(measured) = run.credits_measured() {
                spending.credits_measured += measured;
                spending.runs_measured += 1;
            }
            spending.last = Some(run);
        }
        Ok(spending)
    }
}
