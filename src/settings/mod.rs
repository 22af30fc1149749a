//! Settings, from three layers into one immutable [`Config`].
//!
//! Flags beat environment variables, which beat the manifest's `[run]` table,
//! which beats the defaults. Every layer is a [`RunSettings`] of `Option`s so
//! the merge is one line per setting, and nothing past this module sees where
//! a value came from.
//!
//! # Values that would make every row `unknown`
//! A request timeout shorter than [`MIN_TIMEOUT`] (`--timeout 1ns`) cannot
//! get an answer from any host, so every row would end `unknown` after
//! being sent, and billed. Such a flag is a usage error (exit 2, naming
//! the flag, from [`parse_timeout`]); such a `[run] timeout` a configuration
//! error (exit 78). Zero rates, concurrencies and attempts are refused the
//! same way.
//!
//! # Where the key goes
//! The key is sent to the base URL, which a manifest's `[run] base_url`
//! can set: `validate` and `--dry-run` show the host. Plain `http://` to a
//! host other than this machine would send the key in clear text, so
//! [`check_transport`] refuses it (exit 78) unless `--allow-insecure-http`
//! accepts it.

use std::io::IsTerminal as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

pub mod base_url;
mod error;
pub mod generate;
pub mod quality;

pub use base_url::{
    DEFAULT_BASE_URL, base_url_or_default, check_provider_host, check_transport, parse_base_url,
};
pub use error::SettingsError;
pub use generate::{
    DEFAULT_CALLBACK_GENERATE_PATH, DEFAULT_GENERATE_PATH, GeneratePaths, parse_api_path,
};

use crate::job::Provider;
use crate::util::redact::Secret;
use crate::util::units::{Rate, parse_duration};

pub const DEFAULT_RATE: Rate = Rate::new(NonZeroU32::MIN, Duration::from_secs(1));
pub const DEFAULT_CONCURRENCY: usize = 4;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 6;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Shortest request timeout accepted (see the module docs).
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Consecutive rows that exhaust their retries on server or connection
/// errors before the run concludes the API is down (exit 69).
pub const DEFAULT_GIVE_UP_AFTER: u32 = 5;

/// Parses a request timeout: [`parse_duration`], at least [`MIN_TIMEOUT`].
pub fn parse_timeout(s: &str) -> Result<Duration, SettingsError> {
    let timeout = parse_duration(s).map_err(SettingsError::Duration)?;
    if timeout < MIN_TIMEOUT {
        return Err(SettingsError::TooShort {
            what: s.trim().to_owned(),
            least: MIN_TIMEOUT,
        });
    }
    Ok(timeout)
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live bar (stderr is a terminal).
    Bar,
    /// A plain log line at this interval (not a terminal, `-v`).
    Lines(Duration),
    /// Nothing (`--quiet`, or not a terminal without `-v`).
    Off,
}

impl ProgressMode {
    /// The bar only on a terminal; plain lines only when asked for.
    pub fn pick(quiet: bool, verbose: u8, interval: Duration) -> ProgressMode {
        if quiet {
            ProgressMode::Off
        } else if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else if verbose > 0 {
            ProgressMode::Lines(interval)
        } else {
            ProgressMode::Off
        }
    }
}

/// The URL the service should POST a job's clips to:
/// `<base>/callback/<secret>/<key>`, with both percent-encoded; a path
/// prefix of `base` is kept.
pub fn callback_url(base: &Url, secret: &str, key: &str) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(["callback", secret, key]);
    }
    url
}

/// One layer of run settings. The manifest's `[run]` and `[quality]`
/// tables, the environment and the flags each produce one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSettings {
    /// The host schema ([`Provider`]); udioapi when unset.
    pub provider: Option<Provider>,
    pub base_url: Option<String>,
    pub rate: Option<Rate>,
    pub burst: Option<NonZeroU32>,
    pub concurrency: Option<usize>,
    pub max_attempts: Option<u32>,
    pub timeout: Option<Duration>,
    /// Results file. In a manifest, relative to the manifest's folder.
    pub results: Option<PathBuf>,
    /// Path (under the base URL) for jobs without a `callback_url`.
    pub generate_path: Option<String>,
    /// Path (under the base URL) for jobs with a `callback_url`.
    pub callback_generate_path: Option<String>,
    /// The artist and album `--wait --download` writes into MP3 tags.
    pub artist: Option<String>,
    pub album: Option<String>,
    /// Most credits a run spends (`--budget`, `[run] budget`).
    pub budget: Option<f64>,
    /// Most times a job is sent again to regenerate it (`--regenerate`,
    /// `[run] regenerate`).
    pub regenerate: Option<u32>,
    /// The price of a job the model catalogue has none for.
    pub credits_per_job: Option<f64>,
    /// The quality gate's rules this layer sets ([`quality`]).
    pub quality: quality::QualitySettings,
}

impl RunSettings {
    /// `self` where set, else `lower`.
    pub fn or(self, lower: RunSettings) -> RunSettings {
        RunSettings {
            provider: self.provider.or(lower.provider),
            base_url: self.base_url.or(lower.base_url),
            rate: self.rate.or(lower.rate),
            burst: self.burst.or(lower.burst),
            concurrency: self.concurrency.or(lower.concurrency),
            max_attempts: self.max_attempts.or(lower.max_attempts),
            timeout: self.timeout.or(lower.timeout),
            results: self.results.or(lower.results),
            generate_path: self.generate_path.or(lower.generate_path),
            callback_generate_path: self.callback_generate_path.or(lower.callback_generate_path),
            artist: self.artist.or(lower.artist),
            album: self.album.or(lower.album),
            budget: self.budget.or(lower.budget),
            regenerate: self.regenerate.or(lower.regenerate),
            credits_per_job: self.credits_per_job.or(lower.credits_per_job),
            quality: self.quality.or(lower.quality),
        }
    }
}

/// What to do with rows that earlier runs already attempted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Resend a request that may have reached the server (timeout or
    /// connection lost after sending). Can bill a task twice.
    pub ambiguous: bool,
    /// Rerun rows an earlier run recorded as `failed`.
    pub failed: bool,
    /// Rerun rows an earlier run recorded as `unknown`. Can bill twice.
    pub unknown: bool,
}

/// Everything a run needs, merged and checked once.
#[derive(Debug, Clone)]
pub struct Config {
    /// The host schema the wire speaks.
    pub provider: Provider,
    pub base_url: Url,
    pub api_key: Secret,
    pub rate: Rate,
    pub burst: NonZeroU32,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub timeout: Duration,
    pub results: PathBuf,
    pub retry: RetryPolicy,
    /// Submit at most this many new jobs in this run.
    pub max_jobs: Option<usize>,
    pub give_up_after: u32,
    /// How progress is shown while the run goes.
    pub progress: ProgressMode,
    /// Where jobs without a `callback_url` get their callbacks sent.
    pub callback: Option<CallbackBase>,
    /// Most bytes of jobs a run keeps from its merge so as not to read the
    /// manifest again while sending ([`DEFAULT_HOLD_BUDGET`]).
    pub hold_budget: usize,
    /// Where jobs are submitted, with and without a `callback_url`.
    pub generate: GeneratePaths,
    /// The artist and album of the MP3 tags (`--wait --download`); unset,
    /// the collect command's defaults.
    pub artist: Option<String>,
    pub album: Option<String>,
    /// Most credits the run spends, by the catalogue's prices
    /// (`crate::engine::submit::budget`); `None`: no cap.
    pub budget: Option<f64>,
    /// Most times a job is sent again to regenerate it
    /// (`crate::files::state::State::to_regenerate`); 0: never.
    pub regenerate: u32,
    /// The price of a job the catalogue has none for.
    pub credits_per_job: f64,
    /// The manifest's `[quality]` table (flags of `collect` go above it):
    /// kept in the state store, so a later `collect` judges takes by it.
    pub quality: quality::QualitySettings,
}

/// The price of a job the model catalogue names none for.
pub const DEFAULT_CREDITS_PER_JOB: f64 = 10.0;

/// The most `--regenerate` / `[run] regenerate` takes: each regeneration
/// is billed, and a prompt whose takes fail the rules this often needs a
/// person, not another try.
pub const MAX_REGENERATE: u32 = 5;

/// 8 MiB: ~10^4 jobs of typical size. Why a run keeps them at all: reading
/// a row again (CSV, checks, fingerprint) costs ~2–3 µs of CPU, paid while
/// requests go out, and on a busy machine that CPU is taken from the
/// requests (BENCHMARKS.md, target 2). A larger manifest is read again one
/// row at a time, so memory stays bounded whatever its size.
pub const DEFAULT_HOLD_BUDGET: usize = 8 << 20;

/// `--callback-base`: each job's callbacks go to
/// `<base>/callback/<secret>/<job key>` (see [`crate::engine::collect::receive`]).
#[derive(Debug, Clone)]
pub struct CallbackBase {
    pub base: Url,
    pub secret: Secret,
}

impl CallbackBase {
    /// Sets the job's `callback_url` unless the manifest set one. The job's
    /// key does not change: delivery fields are not part of it.
    pub fn apply(&self, job: &mut crate::job::Job) {
        if job.fields.callback_url.is_none() {
            let url = callback_url(&self.base, self.secret.expose(), &job.key);
            job.fields.callback_url = Some(url.into());
        }
    }
}

/// The name of the account `key` sends with, as the state file and the
/// reports keep it: its fingerprint, or `""` for no key (a self-hosted
/// gcui holds its own cookie).
pub fn account_of(key: &Secret) -> String {
    if key.expose().is_empty() {
        String::new()
    } else {
        key.fingerprint()
    }
}

impl Config {
    /// The name of the account the run sends with, as the state file and
    /// the reports keep it: its key's fingerprint, or `""` on a host that
    /// takes no key (a self-hosted gcui holds its own cookie).
    pub fn account(&self) -> String {
        account_of(&self.api_key)
    }

    /// Merges the layers (highest first is `settings`, already merged by the
    /// caller) and checks each value.
    ///
    /// # Errors
    /// A message naming the setting when a value is out of range.
    #[allow(clippy::new_ret_no_self)] // finished by ConfigParts::build
    pub fn new(
        settings: RunSettings,
        api_key: Secret,
        manifest: &Path,
        retry: RetryPolicy,
    ) -> Result<ConfigParts, SettingsError> {
        let provider = settings.provider.unwrap_or_default();
        let base_url = base_url_or_default(settings.base_url.as_deref(), provider);
        let base_url = parse_base_url(base_url)?;
        check_provider_host(&base_url, provider)?;
        let concurrency = settings.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 || concurrency > 1024 {
            return Err(SettingsError::OutOfRange {
                setting: "concurrency",
                min: 1,
                max: 1024,
                value: concurrency as u64,
            });
        }
        let max_attempts = settings.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if max_attempts == 0 || max_attempts > 100 {
            return Err(SettingsError::OutOfRange {
                setting: "max_attempts",
                min: 1,
                max: 100,
                value: u64::from(max_attempts),
            });
        }
        let timeout = settings.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout < MIN_TIMEOUT {
            return Err(SettingsError::TooShort {
                what: format!("timeout {}", humantime::format_duration(timeout)),
                least: MIN_TIMEOUT,
            });
        }
        let results = settings
            .results
            .unwrap_or_else(|| default_results_path(manifest));
        let defaults = GeneratePaths::default();
        if provider != Provider::Udioapi
            && (settings.generate_path.is_some() || settings.callback_generate_path.is_some())
        {
            return Err(SettingsError::GeneratePath(provider));
        }
        let generate = GeneratePaths {
            plain: match &settings.generate_path {
                Some(path) => parse_api_path(path)?,
                None => defaults.plain,
            },
            callback: match &settings.callback_generate_path {
                Some(path) => parse_api_path(path)?,
                None => defaults.callback,
            },
        };
        Ok(ConfigParts(Config {
            provider,
            base_url,
            api_key,
            rate: settings.rate.unwrap_or(DEFAULT_RATE),
            burst: settings.burst.unwrap_or(NonZeroU32::MIN),
            concurrency,
            max_attempts,
            timeout,
            results,
            retry,
            max_jobs: None,
            give_up_after: DEFAULT_GIVE_UP_AFTER,
            progress: ProgressMode::Off,
            callback: None,
            hold_budget: DEFAULT_HOLD_BUDGET,
            generate,
            artist: settings.artist,
            album: settings.album,
            budget: settings.budget,
            regenerate: settings.regenerate.unwrap_or(0),
            credits_per_job: settings.credits_per_job.unwrap_or(DEFAULT_CREDITS_PER_JOB),
            quality: settings.quality,
        }))
    }
}

/// A [`Config`] still open for the few settings that only flags set; `build`
/// freezes it.
#[derive(Debug)]
pub struct ConfigParts(Config);

impl ConfigParts {
    pub fn max_jobs(mut self, n: Option<usize>) -> Self {
        self.0.max_jobs = n;
        self
    }
    /// Bytes of jobs a run may keep between its merge and its requests; 0
    /// reads the manifest again, whatever its size.
    pub fn hold_budget(mut self, bytes: usize) -> Self {
        self.0.hold_budget = bytes;
        self
    }
    pub fn give_up_after(mut self, n: Option<u32>) -> Self {
        self.0.give_up_after = n.unwrap_or(DEFAULT_GIVE_UP_AFTER).max(1);
        self
    }
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.0.progress = mode;
        self
    }
    pub fn callback(mut self, callback: Option<CallbackBase>) -> Self {
        self.0.callback = callback;
        self
    }
    /// The config so far, to check a value before the rest is set.
    pub fn as_config(&self) -> &Config {
        &self.0
    }
    pub fn build(self) -> Config {
        self.0
    }
}

/// `jobs.toml` → `jobs.results.csv`, beside the manifest.
pub fn default_results_path(manifest: &Path) -> PathBuf {
    beside(manifest, "results.csv")
}

/// `jobs.toml` + `sandbox.results.csv` → `jobs.sandbox.results.csv`: a file
/// named after the manifest, in its folder.
pub fn beside(manifest: &Path, suffix: &str) -> PathBuf {
    let stem = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "batchgen".into());
    manifest.with_file_name(format!("{stem}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_too_short_for_an_answer_are_refused() {
        assert_eq!(parse_timeout("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_timeout("100ms").unwrap(), MIN_TIMEOUT);
        for bad in ["1ns", "0", "99ms", "0s"] {
            let e = parse_timeout(bad).unwrap_err().to_string();
            assert!(e.contains("too short") && e.contains("100ms"), "{bad}: {e}");
        }
        let settings = RunSettings {
            timeout: Some(Duration::from_nanos(1)),
            ..RunSettings::default()
        };
        let e = Config::new(
            settings,
            Secret::new(""),
            Path::new("j.toml"),
            RetryPolicy::default(),
        )
        .unwrap_err();
        assert!(matches!(e, SettingsError::TooShort { .. }), "{e}");
        assert!(e.to_string().starts_with("timeout 1ns is too short"), "{e}");
    }

    #[test]
    fn callback_urls_encode_and_keep_a_prefix() {
        let u = |base: &str, secret: &str, key: &str| {
            callback_url(&Url::parse(base).unwrap(), secret, key).to_string()
        };
        assert_eq!(
            u("https://hooks.example.com", "s3cret", "rain-1"),
            "https://hooks.example.com/callback/s3cret/rain-1"
        );
        assert_eq!(
            u("https://h.example/prefix/?x=1", "a/b", "k.1"),
            "https://h.example/prefix/callback/a%2Fb/k.1"
        );
    }

    #[test]
    fn layers_merge_highest_first() {
        let flags = RunSettings {
            rate: Some(Rate::Unlimited),
            ..RunSettings::default()
        };
        let file = RunSettings {
            rate: Some(DEFAULT_RATE),
            concurrency: Some(9),
            ..RunSettings::default()
        };
        let merged = flags.or(file);
        assert_eq!(merged.rate, Some(Rate::Unlimited));
        assert_eq!(merged.concurrency, Some(9));
    }

    #[test]
    fn generate_paths_are_paths_under_the_base() {
        assert_eq!(
            parse_api_path("/api/v2/generate").unwrap(),
            "api/v2/generate"
        );
        assert_eq!(parse_api_path(" api/generate ").unwrap(), "api/generate");
        for bad in [
            "",
            "/",
            "https://h/api/generate",
            "api/generate?x=1",
            "api/../x",
            "api generate",
            "api/#x",
        ] {
            assert!(parse_api_path(bad).is_err(), "{bad:?}");
        }
        let settings = RunSettings {
            generate_path: Some("/v3/generate".into()),
            ..RunSettings::default()
        };
        let config = Config::new(
            settings,
            Secret::new(""),
            Path::new("m.toml"),
            RetryPolicy::default(),
        )
        .unwrap()
        .build();
        assert_eq!(
            config.generate,
            GeneratePaths {
                plain: "v3/generate".into(),
                callback: DEFAULT_CALLBACK_GENERATE_PATH.into(),
            }
        );
        let bad = RunSettings {
            callback_generate_path: Some("x?y".into()),
            ..RunSettings::default()
        };
        let err = Config::new(
            bad,
            Secret::new(""),
            Path::new("m.toml"),
            RetryPolicy::default(),
        );
        assert!(err.is_err());
    }

    #[test]
    fn results_default_beside_manifest() {
        assert_eq!(
            default_results_path(Path::new("/x/jobs.toml")),
            PathBuf::from("/x/jobs.results.csv")
        );
    }
}
