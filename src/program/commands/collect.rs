//! `batchgen collect RESULTS` and `batchgen receive`: flags into a
//! [`CollectConfig`] / [`ReceiveConfig`], then the library, then a one-line
//! summary on stderr.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use super::{Signals, first_signal, read_key};
use crate::engine::collect::download::{self, DownloadConfig, MeasureConfig};
use crate::engine::collect::receive::{self, ReceiveConfig};
use crate::engine::collect::{self, CollectConfig, POLL_CONCURRENCY};
use crate::program::cli::{CollectArgs, OutputArgs, ReceiveArgs};
use crate::program::exit::{Error, ExitCode, ExitStatus as _};
use crate::settings::{base_url_or_default, check_provider_host, parse_base_url};
use crate::util::term::eprint_line;

pub async fn collect(args: CollectArgs, output: &OutputArgs) -> Result<ExitCode, Error> {
    let provider = args.provider.or_default();
    let base = base_url_or_default(args.base_url.as_deref(), provider);
    let base_url = parse_base_url(base)?;
    check_provider_host(&base_url, provider)?;
    crate::settings::check_transport(&base_url, args.allow_insecure_http)?;
    if args.download_concurrency == 0 {
        return Err(Error::Usage(
            "--download-concurrency must be at least 1".into(),
        ));
    }
    let api_key = read_key(args.api_key_file.as_deref(), provider)?;
    let quality = args.quality.settings()?;
    if let Some(dir) = &args.wav.wav {
        if args.download.is_none() || args.no_measure {
            return Err(Error::Usage(
                "--wav writes the picked takes collect measured: it needs --download, without --no-measure".into(),
            ));
        }
        // Before any request: a folder that cannot be made is found now.
        std::fs::create_dir_all(dir).map_err(|source| Error::WavDir {
            path: dir.clone(),
            source,
        })?;
    }
    let catalog = args
        .catalog
        .clone()
        .unwrap_or_else(|| collect::default_catalog_path(&args.results));
    check_catalog_path(&args.results, &catalog)?;
    let callbacks = match args.listen {
        Some(_) if !provider.sends_callbacks() => {
            return Err(Error::Usage(format!(
                "provider {provider} ({}) sends no callbacks: drop --listen",
                provider.describe()
            )));
        }
        Some(listen) => Some(receive::Embedded {
            listen,
            provider,
            // From the environment only: a flag would show in `ps`.
            secret: crate::program::secrets::callback_secret_from_env(|| {
                format!(
                    "--listen needs the callback secret the run used: set {}",
                    receive::SECRET_ENV
                )
            })?,
            webhook_key: crate::program::secrets::webhook_key_from_env(provider),
            changed: None,
        }),
        None => None,
    };
    let config = CollectConfig {
        results: args.results.clone(),
        catalog,
        provider,
        base_url,
        api_key,
        poll_interval: args.poll_interval,
        poll_rate: args.poll_rate,
        poll_concurrency: POLL_CONCURRENCY,
        window: args.window,
        callbacks,
        deadline: args.deadline,
        timeout: args.timeout,
        download: args.download.clone().map(|dir| DownloadConfig {
            dir,
            name: args.name.clone(),
            concurrency: args.download_concurrency,
            rate: args.download_rate,
            images: args.images,
            timeout: args.timeout,
            artist: artist_or_default(args.artist.as_deref()),
            album: album_or_default(args.album.as_deref(), &args.results),
            measure: (!args.no_measure).then(|| MeasureConfig {
                quality,
                ..MeasureConfig::default()
            }),
        }),
    };

    let results = config.results.clone();
    let code = run_collect(config, output).await?;
    if let Some(dir) = &args.wav.wav {
        let settings = args.wav.settings();
        let (dir, quiet) = (dir.clone(), output.quiet);
        tokio::task::spawn_blocking(move || write_picks(&results, &dir, &settings, quiet))
            .await
            .map_err(|e| Error::Other(e.into()))??;
    }
    Ok(code)
}

/// `collect --wav DIR`: a WAV of each job's pick, when it was kept and
/// its song is on disk ([`super::measure::wav`]: one gain toward the
/// target, never past the ceiling; a file at a WAV's name is left as it
/// is). A WAV that cannot be written is a warning with its reason: the
/// songs and the catalog are whole whatever happens here.
fn write_picks(
    results: &std::path::Path,
    dir: &std::path::Path,
    settings: &crate::audio::WavSettings,
    quiet: bool,
) -> Result<(), Error> {
    use crate::files::catalog::{Measured, Verdict};
    let store = crate::files::state::path_for(results);
    let (mut written, mut there, mut failed) = (0u64, 0u64, 0u64);
    crate::files::state::each_job_in(&store, crate::files::state::Which::Every, |job| {
        for row in &job.rows {
            let Some(Measured::Audio(m)) = row.measured.as_deref() else {
                continue;
            };
            if !row.pick || row.verdict() != Some(Verdict::Kept) || row.file.is_empty() {
                continue;
            }
            let wav = super::measure::wav(std::path::Path::new(&row.file), m, dir, settings);
            match wav.outcome {
                "written" => written += 1,
                "exists" => there += 1,
                _ => {
                    failed += 1;
                    eprint_line(&format!(
                        "batchgen: warning: no WAV for {}: {}",
                        row.file,
                        wav.error.unwrap_or_default()
                    ));
                }
            }
        }
        Ok::<_, Error>(())
    })?;
    if !quiet || failed > 0 {
        eprint_line(&format!(
            "batchgen: WAVs of the picked takes: {written} written, {there} already there, {failed} failed → {}",
            dir.display()
        ));
    }
    Ok(())
}

/// The tags' artist when none is set: all of batchgen's songs under one
/// artist, each run an album of its own ([`album_or_default`]), so a
/// library shows them together, apart from the music people made. The
/// model is no artist, and a user name would leak into shared files.
pub const DEFAULT_ARTIST: &str = "batchgen";

/// `--artist` / `[run] artist`, else [`DEFAULT_ARTIST`]; `""` writes none.
/// Refuses a `--catalog` that names the results file or its state file
/// (through any name): the catalog is rewritten whole, and either holds
/// the task IDs that keep jobs from being billed twice.
pub(super) fn check_catalog_path(
    results: &std::path::Path,
    catalog: &std::path::Path,
) -> Result<(), Error> {
    let [store, log, index] = crate::files::state::files_for(results);
    for (what, file) in [
        ("the results file", results),
        ("its state file", store.as_path()),
        ("its state file's log", log.as_path()),
        ("its state file's index", index.as_path()),
    ] {
        if crate::util::fsx::same_file(catalog, file) {
            return Err(Error::Usage(format!(
                "--catalog {} is {what} ({}): the catalog is a file of its own; leave --catalog out (it defaults to {}) or name another file",
                catalog.display(),
                file.display(),
                collect::default_catalog_path(results).display()
            )));
        }
    }
    Ok(())
}

pub(super) fn artist_or_default(artist: Option<&str>) -> String {
    artist.unwrap_or(DEFAULT_ARTIST).to_owned()
}

/// `--album` / `[run] album`, else the run's name: the results file's
/// name without `.csv`, `.results` and `.sandbox` (`jobs.results.csv`
/// and `jobs.sandbox.results.csv` → `jobs`), so `batchgen jobs.toml
/// --wait` and a later `batchgen collect jobs.results.csv` file their
/// songs under one album. `""` writes none.
pub(super) fn album_or_default(album: Option<&str>, results: &std::path::Path) -> String {
    if let Some(album) = album {
        return album.to_owned();
    }
    let name = results
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut stem = name.as_str();
    for suffix in [".csv", ".results", ".sandbox"] {
        stem = stem.strip_suffix(suffix).unwrap_or(stem);
    }
    stem.to_owned()
}

/// What `batchgen MANIFEST --wait` collects with: the defaults of
/// `batchgen collect` under the run's host, key, timeout, artist and album,
/// downloads into `download` when given (the caller sets `--images`), each
/// take measured and judged by the manifest's `[quality]`.
pub(super) fn after_run_config(
    run: &crate::settings::Config,
    download: Option<PathBuf>,
    poll_interval: std::time::Duration,
) -> CollectConfig {
    let results = run.results.clone();
    CollectConfig {
        catalog: collect::default_catalog_path(&results),
        provider: run.provider,
        base_url: run.base_url.clone(),
        api_key: run.api_key.clone(),
        poll_interval,
        poll_rate: collect::DEFAULT_POLL_RATE,
        poll_concurrency: POLL_CONCURRENCY,
        window: collect::WINDOW,
        callbacks: None,
        deadline: collect::DEFAULT_DEADLINE,
        timeout: run.timeout,
        download: download.map(|dir| DownloadConfig {
            dir,
            name: Default::default(),
            concurrency: download::DEFAULT_CONCURRENCY,
            rate: download::DEFAULT_RATE,
            images: false,
            timeout: run.timeout,
            artist: artist_or_default(run.artist.as_deref()),
            album: album_or_default(run.album.as_deref(), &results),
            measure: Some(MeasureConfig {
                quality: run.quality.clone(),
                ..MeasureConfig::default()
            }),
        }),
        results,
    }
}

/// Warnings listed one by one at most; the rest are counted.
const SHOWN: usize = 20;

/// `n` clips, in words.
fn clips(n: usize) -> String {
    match n {
        1 => "1 clip".to_owned(),
        n => format!("{n} clips"),
    }
}

/// Collects under `config` with signal handling, and prints the summary.
/// The accounts other than `current` that made tasks (not those made
/// before accounts were recorded: they were made by some key, which one
/// is not known).
fn foreign_accounts<'a>(
    accounts: &'a [crate::files::state::AccountTasks],
    current: &'a str,
) -> impl Iterator<Item = &'a crate::files::state::AccountTasks> {
    accounts
        .iter()
        .filter(move |a| !a.account.is_empty() && a.account != current)
}

pub(super) async fn run_collect(
    config: CollectConfig,
    output: &OutputArgs,
) -> Result<ExitCode, Error> {
    let downloading = config.download.is_some();
    let account = crate::settings::account_of(&config.api_key);
    let signals = Signals::watch(output.quiet);
    let report = collect::collect(config, signals.shutdown.clone()).await?;
    let code = signals.exit_code(report.exit_code());
    drop(signals);
    if !output.quiet || code != ExitCode::Success {
        let d = &report.downloads;
        let mut line = format!(
            "batchgen: {}/{} tasks finished: {} clips complete, {} failed, {} pending; {} polls",
            report.counts.tasks_finished,
            report.counts.tasks,
            report.counts.clips_complete,
            report.counts.clips_failed,
            report.counts.clips_pending,
            report.polls.polls,
        );
        if report.polls.by_callback > 0 {
            line.push_str(&format!(
                " ({} tasks finished by callback, unpolled)",
                report.polls.by_callback
            ));
        }
        if downloading {
            line.push_str(&format!(
                "; {} downloaded, {} already there, {} failed",
                d.downloaded, d.skipped, d.failed
            ));
        }
        let takes = &report.counts.takes;
        if takes.kept + takes.rejected > 0 {
            line.push_str(&format!(
                "; takes {} kept, {} rejected",
                takes.kept, takes.rejected
            ));
            if takes.jobs_none_kept > 0 {
                line.push_str(&format!(
                    " ({} {} no take kept: see the page's \"needs review\")",
                    takes.jobs_none_kept,
                    if takes.jobs_none_kept == 1 {
                        "job has"
                    } else {
                        "jobs have"
                    }
                ));
            }
        }
        eprint_line(&format!("{line}; catalog {}", report.catalog.display()));
        let counts = &report.counts;
        for (why, n) in counts.pending_reasons.iter().take(SHOWN) {
            eprint_line(&format!("batchgen: warning: {} pending: {why}", clips(*n)));
        }
        if report.deadline_hit {
            let explained: usize = counts.pending_reasons.iter().map(|(_, n)| n).sum();
            let making = counts.clips_pending.saturating_sub(explained);
            let left = match (making, explained) {
                (0, 0) => String::new(),
                (m, 0) => format!(" with {} still being made", clips(m)),
                (0, e) => format!(" with {} pending for the reasons above", clips(e)),
                (m, e) => format!(
                    " with {} still being made and {e} pending for the reasons above",
                    clips(m)
                ),
            };
            eprint_line(&format!(
                "batchgen: the deadline passed{left}; rerun to continue where this run stopped"
            ));
        }
        let given_up = &report.polls.given_up;
        for (key, why) in given_up.iter().take(SHOWN) {
            eprint_line(&format!(
                "batchgen: warning: {key}: left for the next run: {why}"
            ));
        }
        if given_up.len() > SHOWN {
            eprint_line(&format!(
                "batchgen: warning: and {} more tasks left for the next run (batchgen status shows them)",
                given_up.len() - SHOWN
            ));
        }
        if let Some(Ok(page)) = &report.page {
            eprint_line(&format!(
                "batchgen: catalog page {} (open it in a browser)",
                page.display()
            ));
        }
    }
    if let Some(Err(why)) = &report.page {
        eprint_line(&format!(
            "batchgen: warning: the catalog page was not written: {why}"
        ));
    }
    // Even with --quiet: a feed is per account, so tasks another key made
    // may never be collected with this one.
    for other in foreign_accounts(&report.counts.accounts, &account) {
        eprint_line(&format!(
            "batchgen: warning: {} {} made with {}, not the key set now{}: a host's feed is per account; if their polls fail, collect them with the key that made them",
            other.tasks,
            if other.tasks == 1 {
                "task was"
            } else {
                "tasks were"
            },
            other.account,
            if account.is_empty() {
                String::new()
            } else {
                format!(" ({account})")
            },
        ));
    }
    // Even with --quiet: songs about to be deleted need the user now.
    if let Some(warning) = report.counts.expiring.warning() {
        crate::util::term::eprint_line(&format!("batchgen: warning: {warning}"));
    }
    Ok(code)
}

pub async fn receive(args: ReceiveArgs, _output: &OutputArgs) -> Result<ExitCode, Error> {
    let provider = args.provider.or_default();
    if !provider.sends_callbacks() {
        return Err(Error::Usage(format!(
            "provider {provider} ({}) sends no callbacks: collect its songs with `batchgen collect {}`",
            provider.describe(),
            args.results.display()
        )));
    }
    let secret = crate::program::secrets::callback_secret(&args.secret, || {
        format!(
            "no callback secret: set {} or pass --secret",
            receive::SECRET_ENV
        )
    })?;
    let catalog = args
        .catalog
        .clone()
        .unwrap_or_else(|| collect::default_catalog_path(&args.results));
    check_catalog_path(&args.results, &catalog)?;
    let config = ReceiveConfig {
        listen: args.listen,
        provider,
        secret,
        webhook_key: crate::program::secrets::webhook_key_from_env(provider),
        results: args.results,
        catalog,
    };
    let shutdown = CancellationToken::new();
    let stopper = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            first_signal().await;
            shutdown.cancel();
        })
    };
    let result = receive::serve(config, shutdown).await;
    stopper.abort();
    result.map(|()| ExitCode::Success).map_err(Error::from)
}
