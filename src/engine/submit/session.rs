//! A run that holds the state store, from the lock to the last report: it
//! opens (lock, import or upgrade, merge, report, so the store and the
//! results file are known to be writable before a single request, and
//! credit, is spent), then sends its plan through the feeder and the pool,
//! writing the results report every few seconds and at the end. The
//! module docs of [`super`] draw the moving parts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::budget::Budget;
use super::counters::Counters;
use super::error::RunError;
use super::feeder::{self, JobSource};
use super::plan::Plan;
use super::pool::{self, PoolConfig, StopReason};
use super::progress::Progress;
use super::report::{Balances, RunReport};
use crate::api::submit::Client;
use crate::files::manifest::Manifest;
use crate::files::results::{self, Record, ResultsError};
use crate::files::state::{Origin, Reporter, State};
use crate::job::Job;
use crate::settings::Config;

/// A run that holds the state store: locked, merged and reported, so it is
/// known to be writable before a single request (and credit) is spent.
pub struct Session {
    state: State,
    pub(super) plan: Plan,
    started: Instant,
}

impl Session {
    /// # Errors
    /// [`ResultsError::Locked`] when another run holds the store;
    /// [`ResultsError::Io`] when it or the report cannot be written;
    /// [`ResultsError::Refused`] for a store or results file that is not
    /// ours, or a store from a newer batchgen.
    pub fn open(manifest: &Manifest, config: &Config) -> Result<Session, RunError> {
        let started = Instant::now();
        let dir = crate::util::fsx::parent_dir(&config.results);
        std::fs::create_dir_all(dir).map_err(|source| ResultsError::Io {
            path: config.results.clone(),
            source,
        })?;
        let mut state = State::open(&config.results)?;
        state.set_origin(Origin::new(
            config.provider.name(),
            &config.base_url,
            &config.account(),
        ));
        state.keep_quality(&config.quality)?;
        state.keep_job_quality(&manifest.job_quality)?;
        let plan = Plan::of(manifest, &mut state, config, true)?;
        // The hourly rerun with nothing new finds a report that already
        // says everything, and leaves it alone.
        state.write_report()?;
        Ok(Session {
            state,
            plan,
            started,
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Sends the planned rows until done or `shutdown`: the feeder, the
    /// recorder thread, the pool's workers, the reporter and the progress
    /// ticker, drawn in [`super`]'s docs. `balance_before` is the host's
    /// balance checked before the run, if it reports one: the run asks
    /// again after its last request, and keeps both in the store's row
    /// for the run (what `status` sums) and in the report.
    ///
    /// # Errors
    /// Only what prevents recording results or building the client, or a
    /// manifest that changed under the run. Failed rows are in the report.
    pub async fn send_planned(
        self,
        manifest: &Manifest,
        config: &Config,
        shutdown: CancellationToken,
        balance_before: Option<f64>,
    ) -> Result<RunReport, RunError> {
        let Session {
            state,
            mut plan,
            started,
        } = self;
        let held = plan.take_held();
        let Plan {
            todo,
            skipped,
            warnings,
            totals,
            ..
        } = plan;
        let (totals, counters, stop, after) = if todo.is_empty() {
            (totals, Arc::default(), None, None)
        } else {
            let run = Run {
                todo,
                held,
                balance_before,
            };
            send(manifest, config, state, shutdown, run).await?
        };
        let mut report = RunReport::new(
            &totals,
            &counters,
            skipped,
            started,
            stop,
            warnings,
            config.results.clone(),
        );
        report.budget = config.budget;
        if report.requests > 0 {
            report.balance = Balances {
                before: balance_before,
                after,
            };
        }
        Ok(report)
    }
}

/// What [`send`] leaves: the store's totals after the run, this run's
/// counts, why the pool stopped early, if it did, and the host's balance
/// after the last request.
type Sent = (
    BTreeMap<&'static str, u64>,
    Arc<Counters>,
    Option<StopReason>,
    Option<f64>,
);

/// What one run sends: the jobs at the manifest positions `todo` (`held`,
/// when the plan kept them), and the host's balance before it.
struct Run {
    todo: Vec<u32>,
    held: Option<Vec<Job>>,
    balance_before: Option<f64>,
}

/// Sends `run`'s jobs, recording into `state`, and writes the final
/// report: the parts of [`super`]'s diagram, started in order and awaited
/// in order, between the store's start and finish of the run.
async fn send(
    manifest: &Manifest,
    config: &Config,
    mut state: State,
    shutdown: CancellationToken,
    run: Run,
) -> Result<Sent, RunError> {
    let Run {
        todo,
        held,
        balance_before,
    } = run;
    let client = Client::new(&config.base_url, config.api_key.clone(), config.timeout)?
        .with_provider(config.provider, &config.base_url)
        .with_generate_paths(&config.base_url, &config.generate)
        .with_models(manifest.rules.catalogue().clone());
    let workers = config.concurrency.clamp(1, todo.len());
    let budget = Budget::new(
        config.budget,
        Arc::clone(manifest.rules.catalogue()),
        config.provider,
        config.credits_per_job,
    );
    let pool_config = pool_config(config, &state, budget)?;
    let balance_client = balance_before.map(|_| client.clone());
    let run = state.start_run(balance_before)?;
    let reporter = state.reporter();
    let (recorder, recorder_task) =
        results::spawn(state, results::GroupCommit::for_workers(workers));
    let counters = Arc::new(Counters::default());
    let progress = Progress::start(todo.len() as u64, counters.clone(), config.progress);
    let reporting = CancellationToken::new();
    let report_task = reporter.map(|r| tokio::spawn(report_while(r, reporting.clone())));
    // The feeder stops the pool if the manifest turns out to have
    // changed; the pool stops the feeder by dropping the queue.
    let stop = shutdown.child_token();
    let (queue, chunks) = feeder::chunk_channel();
    let source = match held {
        Some(held) => JobSource::Held(held),
        None => JobSource::Manifest(manifest.jobs()?),
    };
    let feeder = feeder::spawn(source, todo, queue, config.callback.clone(), stop.clone());
    let pool_stop = pool::submit_all(
        pool_config,
        client,
        chunks,
        recorder,
        counters.clone(),
        stop,
    )
    .await;
    progress.finish();
    let fed = feeder
        .await
        .map_err(|e| anyhow::anyhow!("the manifest reader failed: {e}"))?;
    let (lost, mut state) = recorder_task
        .await
        .map_err(|e| anyhow::anyhow!("the results writer failed: {e}"))?;
    reporting.cancel();
    if let Some(task) = report_task {
        let _ = task.await;
    }
    let reported = state.write_report();
    if reported.is_err() || lost.failure.is_some() {
        print_unrecorded(&lost.submitted);
    }
    if let Some(source) = lost.failure {
        return Err(ResultsError::Io {
            path: state.path().to_owned(),
            source,
        }
        .into());
    }
    reported?;
    // The balance after the last request: what the host charged, besides
    // any other use of the account meanwhile.
    let requests = counters.requests.load(Ordering::Relaxed);
    let after = match balance_client {
        Some(client) if requests > 0 => client.balance().await.ok().map(|b| b.credits),
        _ => None,
    };
    let credits = super::budget::credits(counters.credits.load(Ordering::Relaxed));
    state.finish_run(run, requests, credits, after)?;
    let totals = state.totals(manifest.summary.jobs)?;
    fed?;
    Ok((totals, counters, pool_stop, after))
}

/// The shortest wait between two reports written while a run sends.
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// Writes the results report while a run sends, until `done`: at most
/// every [`REPORT_EVERY`], and never more than a fifth of the time (a
/// million-row report takes seconds), so any CSV tool sees the run's
/// progress within seconds. A report that cannot be written is retried at
/// the next turn; the run's last report says it.
async fn report_while(reporter: Reporter, done: CancellationToken) {
    let mut wait = REPORT_EVERY;
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let r = reporter.clone();
        let began = Instant::now();
        let written = tokio::task::spawn_blocking(move || r.write_if_changed()).await;
        if let Ok(Err(e)) = written {
            tracing::warn!("cannot write the results report yet: {e}");
        }
        wait = REPORT_EVERY.max(began.elapsed() * 4);
    }
}

/// The pool's slice of the settings, and the task IDs the store already
/// holds.
fn pool_config(config: &Config, state: &State, budget: Budget) -> Result<PoolConfig, RunError> {
    Ok(PoolConfig {
        concurrency: config.concurrency,
        rate: config.rate,
        burst: config.burst,
        max_attempts: config.max_attempts,
        retry_ambiguous: config.retry.ambiguous,
        give_up_after: config.give_up_after,
        budget,
        earlier_task_ids: state.task_id_hashes()?,
    })
}

/// Last resort when the disk refused: put task IDs where the user will see
/// them, so no accepted job is lost.
fn print_unrecorded(submitted: &[Record]) {
    if submitted.is_empty() {
        return;
    }
    crate::util::term::eprint_line(
        "batchgen: these accepted jobs could not be recorded (id,task_id):",
    );
    for r in submitted {
        crate::util::term::eprint_line(&format!("{},{}", r.key, r.task_id));
    }
}
