//! The command line, as clap sees it. Only parsing lives here: turning flags
//! into settings is [`RunArgs::settings`], and what each command does is in
//! [`crate::program::commands`].
//!
//! The doc comments on flags are clap's `--help` text, written for a
//! terminal (`<stem>.results.csv`, bare URLs), not for rustdoc; hence the
//! lints allowed below.
#![allow(
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls,
    rustdoc::broken_intra_doc_links
)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::settings::{RetryPolicy, RunSettings, parse_api_path, parse_timeout};

use crate::job::{Provider, Rules, parse_model_name};
use crate::program::logging::LogFormat;
use crate::sandbox::SandboxConfig;
use crate::util::units::{Rate, parse_duration, parse_positive};

/// Submit a manifest of music prompts to a Suno-style generation API:
/// validated first, rate-limited, retried, resumable.
///
/// `batchgen MANIFEST` validates every row, submits the new ones and writes
/// MANIFEST's results CSV (one row per job with its task ID). Rerunning it
/// continues where the last run stopped and never resubmits a job.
#[derive(Debug, Parser)]
#[command(
    name = "batchgen",
    version,
    args_conflicts_with_subcommands = true,
    after_help = "Exit codes: 0 all submitted · 1 some rows failed/unknown · 2 usage · 65 invalid manifest · 66 manifest unreadable · 69 API unreachable · 70 a bug in batchgen · 73 results file unwritable · 75 results file locked · 77 API refused the key · 78 configuration (no key, a redirecting or insecure base URL) · 129/130/143 stopped by SIGHUP/SIGINT/SIGTERM"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit a manifest (the same as `batchgen MANIFEST`).
    Run(RunArgs),
    /// Check a manifest and its settings; send nothing.
    Validate(ValidateArgs),
    /// Run the local imitation of the API (no credits spent).
    Sandbox(SandboxArgs),
    /// Write a commented starter manifest (TOML) and a matching CSV.
    Init(InitArgs),
    /// Check the API key and print the account's credit balance.
    Credits(CreditsArgs),
    /// Print the model catalogue: each model's name on every provider, its
    /// limits, whether the provider lists it now, and where each entry
    /// came from (built in, a models file, --extra-model).
    Models(ModelsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout: `batchgen man > batchgen.1`.
    Man,
    /// Poll the submitted tasks of a results file until their clips are done;
    /// write the catalog CSV and, with --download, the MP3 files.
    Collect(CollectArgs),
    /// Receive the API's callbacks over HTTP and record the clips in the
    /// catalog (the state file and its catalog CSV, as `collect` does).
    Receive(ReceiveArgs),
    /// Where a catalog stands: jobs, tasks, clips and downloads by status,
    /// failures by reason, and the command to run next. Reads the state
    /// file beside the results (built from the CSVs of an earlier release
    /// on first contact); sends nothing.
    Status(StatusArgs),
    /// Measure MP3 takes (length, loudness, true peak, silences, clipping)
    /// and judge each by the quality rules; sends nothing, changes nothing.
    Measure(MeasureArgs),
}

/// Output flags, accepted before or after the command.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Print nothing when the run succeeds (for cron, which mails any output).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// More log lines on stderr (-v: info, and a progress line every 30 s
    /// when stderr is not a terminal; -vv: debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Interval of the progress log lines written when stderr is not a
    /// terminal (with -v).
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration, default_value = "30s", hide = true)]
    pub log_interval: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The manifest: a .toml file or a .csv file with one job per row.
    #[arg(value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,

    /// Run against a sandbox started in-process on a free loopback port with
    /// a throwaway key: try a manifest without spending credits. Results go
    /// to <stem>.sandbox.results.csv unless --out says otherwise.
    #[arg(long)]
    pub sandbox: bool,

    /// API base URL [default: [run] base_url, else the provider's:
    /// https://udioapi.pro, https://api.sunoapi.org, http://localhost:3000].
    #[arg(long, env = "BATCHGEN_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,

    /// Read the API key from this file instead of BATCHGEN_API_KEY.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// Submit udioapi jobs without a callback_url to this path under the base URL
    /// [default: api/v2/generate, or [run] generate_path].
    #[arg(long, env = "BATCHGEN_GENERATE_PATH", value_name = "PATH", value_parser = parse_api_path)]
    pub generate_path: Option<String>,

    /// Submit udioapi jobs with a callback_url (their own, or one --callback-base
    /// fills in) to this path under the base URL [default: api/generate, or
    /// [run] callback_generate_path].
    #[arg(long, env = "BATCHGEN_CALLBACK_GENERATE_PATH", value_name = "PATH", value_parser = parse_api_path)]
    pub callback_generate_path: Option<String>,

    #[command(flatten)]
    pub models: ModelArgs,

    /// Request rate: N/s, N/min, N/h, N per a duration (20/10s) or "unlimited"
    /// [default: 1/s]; N may be fractional (3.8/s). Every attempt, retries
    /// included, counts; a 429 without Retry-After slows the pace a little.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<Rate>,

    /// Requests allowed at once before the rate applies [default: 1, no burst].
    #[arg(long, value_name = "N")]
    pub burst: Option<NonZeroU32>,

    /// Requests in flight at most [default: 4].
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_positive)]
    pub concurrency: Option<usize>,

    /// Attempts per row for 5xx and connection failures [default: 6]. A 429
    /// (rate limited) does not use one up: the pace gives way instead.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: Option<u32>,

    /// Timeout of one request, e.g. 30s or 2m [default: 60s; at least 100ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// Accept a plain http:// base URL to a host other than this machine.
    /// The API key then crosses the network unencrypted.
    #[arg(long)]
    pub allow_insecure_http: bool,

    /// Results CSV [default: <manifest stem>.results.csv beside the manifest].
    #[arg(short, long, value_name = "PATH")]
    pub out: Option<PathBuf>,

    /// Resend a request that timed out or lost its connection after being
    /// sent. The API has no idempotency key: this can create (and bill) a
    /// task twice.
    #[arg(long)]
    pub retry_ambiguous: bool,

    /// Retry rows an earlier run recorded as failed.
    #[arg(long)]
    pub retry_failed: bool,

    /// Resend rows an earlier run recorded as unknown. They may already have
    /// been accepted: this can bill them twice.
    #[arg(long)]
    pub retry_unknown: bool,

    /// Submit at most N new jobs in this run; the rest stay pending for the
    /// next one (a daily quota, and a cap on what a mistake can spend).
    #[arg(long, value_name = "N")]
    pub max_jobs: Option<usize>,

    /// Spend at most CREDITS in this run, by the model catalogue's prices
    /// (see `batchgen models`, else --credits-per-job): a job that would go
    /// past it is not sent, and it and the rest stay pending for the next
    /// run.
    #[arg(long, value_name = "CREDITS")]
    pub budget: Option<f64>,

    /// Send a job again, at most N times, when every take of its task was
    /// measured and rejected (collect --download judges them) or its task
    /// failed for a reason the host says is worth a resend (sunoapi's 531);
    /// never for a moderation failure. Each regeneration is billed, within
    /// --budget; its earlier takes are kept [default: 0; at most 5].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::settings::MAX_REGENERATE)))]
    pub regenerate: Option<u32>,

    /// Stop the run (exit 69) after N rows in a row exhausted their retries
    /// on server or connection errors [default: 5].
    #[arg(long, value_name = "N")]
    pub give_up_after: Option<u32>,

    /// Print what would be sent (the first request bodies and the totals)
    /// and send nothing. Needs no key; writes nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Write a machine-readable summary of the run (counts, attempts, 429s,
    /// elapsed, rate, exit code, paths) to this JSON file, for monitoring.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,

    /// Credits one job costs where the model catalogue names no price (see
    /// `batchgen models`), for --budget and for the warning before a run
    /// the balance cannot cover [default: 10]. Set it to your plan's price.
    #[arg(long, value_name = "N")]
    pub credits_per_job: Option<f64>,

    /// After submitting, collect: poll until every task's clips are done and
    /// write the catalog CSV (as `batchgen collect RESULTS` does).
    #[arg(long)]
    pub wait: bool,

    /// With --wait: download each finished clip's MP3 into this directory.
    #[arg(long, value_name = "DIR", requires = "wait")]
    pub download: Option<PathBuf>,

    /// With --download: also keep each clip's cover image (<name>.png).
    #[arg(long, requires = "download")]
    pub images: bool,

    /// With --download: the artist in the MP3 tags [default: [run] artist,
    /// else "batchgen"; "" for none].
    #[arg(long, value_name = "NAME", requires = "download")]
    pub artist: Option<String>,

    /// With --download: the album in the MP3 tags [default: [run] album,
    /// else the run's name, e.g. "jobs" for jobs.toml; "" for none].
    #[arg(long, value_name = "NAME", requires = "download")]
    pub album: Option<String>,

    /// Fill in each job's callback_url (unless it sets its own) as
    /// URL/callback/<secret>/<job key>, for `batchgen receive`. The secret
    /// comes from BATCHGEN_CALLBACK_SECRET.
    #[arg(long, value_name = "URL")]
    pub callback_base: Option<url::Url>,
}

impl RunArgs {
    /// The settings the flags (and BATCHGEN_BASE_URL) set.
    pub fn settings(&self) -> RunSettings {
        RunSettings {
            provider: self.models.provider.provider,
            base_url: self.base_url.clone(),
            rate: self.rate,
            burst: self.burst,
            concurrency: self.concurrency,
            max_attempts: self.max_attempts,
            timeout: self.timeout,
            results: self.out.clone(),
            generate_path: self.generate_path.clone(),
            callback_generate_path: self.callback_generate_path.clone(),
            artist: self.artist.clone(),
            album: self.album.clone(),
            budget: self.budget,
            regenerate: self.regenerate,
            credits_per_job: self.credits_per_job,
            quality: Default::default(),
        }
    }

    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy {
            ambiguous: self.retry_ambiguous,
            failed: self.retry_failed,
            unknown: self.retry_unknown,
        }
    }
}

/// Which host schema a command speaks.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct ProviderArg {
    /// The host's schema: udioapi (udioapi.pro), sunoapi (sunoapi.org,
    /// api.box), kie (kie.ai), gcui (a self-hosted gcui-art/suno-api) or
    /// newapi (a new-api / one-api relay's Suno tasks) [default: [run]
    /// provider, else udioapi]. collect and receive need
    /// the one the run used.
    #[arg(long, env = "BATCHGEN_PROVIDER", value_name = "NAME", value_parser = Provider::parse)]
    pub provider: Option<Provider>,
}

impl ProviderArg {
    /// The provider given, else udioapi (for commands without a manifest).
    pub fn or_default(self) -> Provider {
        self.provider.unwrap_or_default()
    }
}

/// What a manifest's rows are checked against: the provider, and models
/// batchgen does not know yet.
#[derive(Debug, Clone, Default, Args)]
pub struct ModelArgs {
    #[command(flatten)]
    pub provider: ProviderArg,

    /// Accept this model name besides the documented ones, for a model the
    /// provider added after this release (repeatable, or comma-separated in
    /// the variable; adds to [run] extra_models). Its jobs get the
    /// short-form limits: prompt 3000, style 200 characters.
    #[arg(
        long = "extra-model",
        env = "BATCHGEN_EXTRA_MODELS",
        value_name = "NAME",
        value_delimiter = ',',
        value_parser = parse_model_name
    )]
    pub extra_models: Vec<String>,

    /// A models file over the built-in catalogue (and over the manifest's
    /// [run] models): models to add, or any name, limit or default to
    /// change, in the format `batchgen models --help` describes.
    #[arg(long = "models", env = "BATCHGEN_MODELS", value_name = "FILE")]
    pub models_file: Option<PathBuf>,
}

impl ModelArgs {
    /// The rules a manifest's rows are checked with: the catalogue with
    /// `--models` over it, and the names added (the manifest's `[run]
    /// models` and `[run] extra_models` add their own).
    ///
    /// # Errors
    /// A models file that cannot be read or is malformed (exit 78).
    pub fn rules(&self) -> Result<Rules, crate::program::exit::Error> {
        // Each name passed `parse_model_name` already, as clap read it.
        let mut rules =
            Rules::with_extra_models(&self.extra_models).expect("names checked by clap");
        if let Some(path) = &self.models_file {
            rules = rules
                .with_models_file(path)
                .map_err(|e| crate::program::exit::Error::Config(e.to_string()))?;
        }
        Ok(match self.provider.provider {
            Some(provider) => rules.for_provider(provider),
            None => rules,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    pub models: ModelArgs,

    /// Print JSON: the providers' settings and every model with its
    /// offers, as the catalogue holds them.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Where to write the manifest; the CSV goes beside it with the same
    /// stem.
    #[arg(value_name = "PATH", default_value = "jobs.toml")]
    pub path: PathBuf,

    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CreditsArgs {
    #[command(flatten)]
    pub provider: ProviderArg,

    /// API base URL [default: the provider's, e.g. https://udioapi.pro].
    #[arg(long, env = "BATCHGEN_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,

    /// Read the API key from this file instead of BATCHGEN_API_KEY.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// Ask an in-process sandbox instead (shows how the command behaves).
    #[arg(long)]
    pub sandbox: bool,

    /// Accept a plain http:// base URL to a host other than this machine.
    #[arg(long)]
    pub allow_insecure_http: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// The manifest to check.
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,

    /// Accept a plain http:// `[run] base_url` to a host other than this
    /// machine (as the run's flag of the same name).
    #[arg(long)]
    pub allow_insecure_http: bool,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SandboxArgs {
    /// Address to listen on; port 0 picks a free port. The first line printed
    /// names the address and key actually used.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub config: SandboxConfig,
}

#[derive(Debug, Clone, Args)]
pub struct CollectArgs {
    /// The results CSV of a run (`batchgen MANIFEST` writes it).
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    /// Catalog CSV, one row per clip, written from the state file (and an
    /// earlier release's catalog to import, the first time) [default:
    /// <stem>.catalog.csv beside the results, e.g. jobs.results.csv →
    /// jobs.catalog.csv].
    #[arg(long, value_name = "PATH")]
    pub catalog: Option<PathBuf>,

    #[command(flatten)]
    pub provider: ProviderArg,

    /// API base URL, e.g. the address `batchgen sandbox` printed
    /// [default: the provider's, e.g. https://udioapi.pro].
    #[arg(long, env = "BATCHGEN_BASE_URL", value_name = "URL")]
    pub base_url: Option<String>,

    /// Read the API key from this file instead of BATCHGEN_API_KEY.
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// Poll each task at most this often (the provider asks for 5 s or more).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub poll_interval: Duration,

    /// All feed polls together, at most: N/s, N/min, N/h, N/10s or "unlimited".
    #[arg(long, value_name = "RATE", default_value_t = crate::engine::collect::DEFAULT_POLL_RATE)]
    pub poll_rate: Rate,

    /// Stop after this long; unfinished tasks are left for the next run.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30m")]
    pub deadline: Duration,

    /// Also take the provider's callbacks on this address while polling
    /// (as `batchgen receive` would, into the same catalog): a task a
    /// callback finished is not polled again. Needs the callback secret
    /// ($BATCHGEN_CALLBACK_SECRET) the run put into its callback URLs.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,

    /// Jobs held in memory at once (polled or downloading). Hidden: the
    /// default bounds memory at any catalog size; tests and the bench
    /// shrink it to see the bound hold.
    #[arg(long, value_name = "N", default_value_t = crate::engine::collect::WINDOW, hide = true)]
    pub window: usize,

    /// Timeout of one request (a download: of each wait for data); at
    /// least 100ms.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, default_value = "60s")]
    pub timeout: Duration,

    /// Accept a plain http:// base URL to a host other than this machine.
    /// The API key then crosses the network unencrypted.
    #[arg(long)]
    pub allow_insecure_http: bool,

    /// Download each complete clip's MP3 into this directory, tagged (title,
    /// artist, album, genre, date, lyrics, cover, and the job it came from).
    /// Files already there are not fetched again.
    #[arg(long, value_name = "DIR")]
    pub download: Option<PathBuf>,

    /// File name template under DIR, without extension: {key}, {index},
    /// {clip_id}, {task_id}, {title_slug}; `/` makes folders.
    #[arg(long, value_name = "TEMPLATE", default_value = crate::engine::collect::names::DEFAULT_NAME)]
    pub name: crate::engine::collect::names::NameTemplate,

    /// Downloads in flight at most.
    #[arg(long, value_name = "N", default_value_t = crate::engine::collect::download::DEFAULT_CONCURRENCY, value_parser = parse_positive)]
    pub download_concurrency: usize,

    /// Download requests, at most: N/s, N/min, N/h, N/10s or "unlimited".
    #[arg(long, value_name = "RATE", default_value_t = crate::engine::collect::download::DEFAULT_RATE)]
    pub download_rate: Rate,

    /// Also download each clip's cover image (<name>.png).
    #[arg(long)]
    pub images: bool,

    /// The artist in the MP3 tags [default: "batchgen"; "" for none].
    #[arg(long, value_name = "NAME")]
    pub artist: Option<String>,

    /// The album in the MP3 tags [default: the run's name, e.g. "jobs" for
    /// jobs.results.csv; "" for none].
    #[arg(long, value_name = "NAME")]
    pub album: Option<String>,

    /// Do not measure the downloaded takes: no loudness, verdict, pick or
    /// ReplayGain tags (takes measured earlier keep theirs).
    #[arg(long)]
    pub no_measure: bool,

    /// The quality rules over the manifest's [quality] table (which the
    /// last run kept) and the defaults.
    #[command(flatten)]
    pub quality: QualityArgs,

    #[command(flatten)]
    pub wav: WavArgs,
}

#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// The results CSV of a run.
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    /// Catalog CSV [default: <stem>.catalog.csv beside the results].
    #[arg(long, value_name = "PATH")]
    pub catalog: Option<PathBuf>,

    /// Print one JSON object (for monitors) instead of the summary.
    #[arg(long)]
    pub json: bool,

    /// Also write the catalog page (<stem>.catalog.html, to open in a
    /// browser) and the playlist of the downloaded songs (<stem>.m3u8)
    /// beside the catalog, and print their paths.
    #[arg(long, conflicts_with = "json")]
    pub html: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MeasureArgs {
    /// MP3 files, or folders of them (the `.mp3` files directly inside).
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,

    /// A manifest whose `[quality]` table sets the rules (the flags below
    /// win over it).
    #[arg(long, value_name = "MANIFEST")]
    pub manifest: Option<PathBuf>,

    #[command(flatten)]
    pub quality: QualityArgs,

    /// Print one JSON object per take, one per line, instead of the table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub wav: WavArgs,
}

/// WAVs for release, made from measured takes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "WAVs")]
pub struct WavArgs {
    /// Write a WAV into DIR (`<name>.wav`) of each kept take (`collect`:
    /// of each job's pick, when kept), at one gain toward --wav-target,
    /// never past --wav-ceiling. A WAV made from an MP3 is a change of
    /// format, not of quality. A file already at a WAV's name is left as
    /// it is.
    #[arg(long, value_name = "DIR")]
    pub wav: Option<PathBuf>,

    /// Bits per sample of the WAVs: 16 (dithered) or 24.
    #[arg(long, value_name = "BITS", default_value_t = 16, value_parser = clap::builder::TypedValueParser::map(clap::builder::PossibleValuesParser::new(["16", "24"]), |s: String| s.parse::<u16>().expect("16 or 24")))]
    pub wav_bits: u16,

    /// Integrated loudness the WAVs aim at, LUFS.
    #[arg(long, value_name = "LUFS", default_value_t = -14.0, allow_hyphen_values = true)]
    pub wav_target: f64,

    /// True peak no WAV exceeds, dBTP (the gain stops there: no limiter).
    #[arg(long, value_name = "DBTP", default_value_t = -1.0, allow_hyphen_values = true)]
    pub wav_ceiling: f64,
}

impl WavArgs {
    /// The WAV writer's settings the flags give.
    pub fn settings(&self) -> crate::audio::WavSettings {
        crate::audio::WavSettings {
            bits: crate::audio::WavBits::from_bits(self.wav_bits)
                .unwrap_or(crate::audio::WavBits::Sixteen),
            target_lufs: self.wav_target,
            ceiling_dbtp: self.wav_ceiling,
        }
    }
}

/// The quality gate's rules as flags; each takes what its `[quality]` key
/// takes, and `off` turns a limit off.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Quality rules")]
pub struct QualityArgs {
    /// Shortest take kept [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub min_duration: Option<String>,
    /// Longest take kept [default: off].
    #[arg(long, value_name = "DURATION")]
    pub max_duration: Option<String>,
    /// Most silence at the start of a take [default: 2s].
    #[arg(long, value_name = "DURATION")]
    pub max_leading_silence: Option<String>,
    /// Most silence at the end of a take [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub max_trailing_silence: Option<String>,
    /// Highest true peak, in dBTP [default: 0].
    #[arg(long, value_name = "DB", allow_hyphen_values = true)]
    pub max_true_peak: Option<String>,
    /// Most clipped samples [default: 0].
    #[arg(long, value_name = "N")]
    pub max_clipped_samples: Option<String>,
    /// Integrated loudness window in LUFS, e.g. -16..-12 [default: off:
    /// measured and reported only].
    #[arg(long, value_name = "LOW..HIGH", allow_hyphen_values = true)]
    pub loudness: Option<String>,
    /// `reject` or `keep` the second of two takes with the same audio
    /// [default: reject].
    #[arg(long, value_name = "POLICY")]
    pub identical_takes: Option<String>,
    /// `reject` or `keep` a take whose lyrics carry a relay's watermark
    /// [default: reject].
    #[arg(long, value_name = "POLICY")]
    pub watermarked_lyrics: Option<String>,
}

impl QualityArgs {
    /// The rules the flags set, each checked as its `[quality]` key is.
    ///
    /// # Errors
    /// A flag's value the rule does not take: a usage error naming it.
    pub fn settings(
        &self,
    ) -> Result<crate::settings::quality::QualitySettings, crate::program::exit::Error> {
        use crate::settings::quality::{QualitySettings, Written};
        let mut settings = QualitySettings::default();
        let flags = [
            ("min_duration", &self.min_duration),
            ("max_duration", &self.max_duration),
            ("max_leading_silence", &self.max_leading_silence),
            ("max_trailing_silence", &self.max_trailing_silence),
            ("max_true_peak", &self.max_true_peak),
            ("max_clipped_samples", &self.max_clipped_samples),
            ("loudness", &self.loudness),
            ("identical_takes", &self.identical_takes),
            ("watermarked_lyrics", &self.watermarked_lyrics),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                // A flag's value is text, which every rule reads.
                settings.set(key, Written::Text(value)).map_err(|why| {
                    crate::program::exit::Error::Usage(format!(
                        "--{}: {why}",
                        key.replace('_', "-")
                    ))
                })?;
            }
        }
        Ok(settings)
    }
}

#[derive(Debug, Clone, Args)]
pub struct ReceiveArgs {
    /// Address to listen on; port 0 picks a free port. The first line printed
    /// names the address actually used.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,

    /// The results CSV: maps the job key in a callback URL to its task.
    #[arg(long, value_name = "PATH")]
    pub results: PathBuf,

    /// Whose callback bodies arrive (gcui and newapi send none).
    #[command(flatten)]
    pub provider: ProviderArg,

    /// Catalog CSV [default: <stem>.catalog.csv beside the results].
    #[arg(long, value_name = "PATH")]
    pub catalog: Option<PathBuf>,

    /// The shared secret callback URLs carry: /callback/<SECRET>/<job key>.
    /// Prefer the environment variable: a flag shows in `ps`.
    #[arg(
        long,
        env = "BATCHGEN_CALLBACK_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub secret: String,
}

#[cfg(test)]
mod tests;
