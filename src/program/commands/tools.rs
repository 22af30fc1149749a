//! The smaller commands: `validate`, `sandbox`, `init`, `credits`,
//! `completions`, `man`.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::{first_signal, read_key, start_sandbox};
use crate::api::answer::Halt;
use crate::api::submit::{Client, ErrorClass};
use crate::files::manifest;
use crate::program::cli::{Cli, CreditsArgs, InitArgs, OutputArgs, SandboxArgs, ValidateArgs};
use crate::program::exit::{Error, ExitCode};
use crate::sandbox::Sandbox;
use crate::settings::{Config, base_url_or_default, parse_base_url};
use crate::util::redact::Secret;

/// The starter manifest `batchgen init` writes; a test checks it validates.
pub const STARTER_TOML: &str = include_str!("starter.toml");
/// The same jobs as a CSV manifest.
pub const STARTER_CSV: &str = include_str!("starter.csv");

pub fn validate(args: &ValidateArgs, output: &OutputArgs) -> Result<ExitCode, Error> {
    let manifest = manifest::load_with(&args.manifest, &args.models.rules()?)?;
    // The rules already chose the provider: --provider, else [run].
    let mut settings = manifest.settings.clone();
    settings.provider = Some(manifest.rules.provider());
    let config = Config::new(
        settings,
        Secret::new(""),
        &manifest.path,
        Default::default(),
    )?
    .build();
    crate::settings::check_transport(&config.base_url, args.allow_insecure_http)?;
    // Warnings are not errors: they print even with --quiet, as a run's do.
    for warning in manifest.warnings() {
        crate::util::term::eprint_line(&format!("batchgen: warning: {warning}"));
    }
    if !output.quiet {
        print_validated(&manifest, &config);
    }
    Ok(ExitCode::Success)
}

/// What `validate` prints for a valid manifest: its jobs by mode and model,
/// and the settings a run would use.
fn print_validated(manifest: &manifest::Manifest, config: &crate::settings::Config) {
    let summary = &manifest.summary;
    let join = |m: Vec<(String, u64)>| {
        m.into_iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let modes = summary
        .modes
        .iter()
        .map(|(m, n)| (m.to_string(), *n))
        .collect();
    let unset = match manifest.unset_model() {
        Some(model) => format!("(none: {model}, the provider's default)"),
        None => "(none: the host's own default)".to_owned(),
    };
    let models = summary
        .models
        .iter()
        .map(|(m, n)| match m.as_str() {
            "" => (unset.clone(), *n),
            _ => (m.clone(), *n),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}: {} jobs, all valid",
        manifest.path.display(),
        summary.jobs
    );
    if !manifest.is_empty() {
        let _ = writeln!(out, "  modes:   {}", join(modes));
        let _ = writeln!(out, "  models:  {}", join(models));
    }
    if !manifest.rules.extra_models().is_empty() {
        let _ = writeln!(
            out,
            "  added:   {} ({})",
            manifest.rules.extra_models().join(", "),
            crate::job::EXTRA_MODEL_LIMITS
        );
    }
    let _ = writeln!(
        out,
        "  rate:    {} · concurrency {}",
        config.rate, config.concurrency
    );
    let _ = writeln!(
        out,
        "  provider: {} ({})",
        config.provider,
        config.provider.describe()
    );
    let source = match manifest.settings.base_url {
        Some(_) => "[run] base_url; --base-url or BATCHGEN_BASE_URL would override it",
        None => "the provider's default; --base-url or BATCHGEN_BASE_URL would override it",
    };
    let goes = if config.provider.needs_key() {
        "API key goes to"
    } else {
        "requests go to"
    };
    let _ = writeln!(
        out,
        "  {goes}: {} ({source})",
        crate::util::redact::url(&config.base_url)
    );
    let _ = writeln!(out, "  results: {}", config.results.display());
}

pub async fn serve_sandbox(args: SandboxArgs) -> Result<ExitCode, Error> {
    let mut config = args.config;
    if let Some(path) = &config.models_file {
        let mut rules = crate::job::Rules::default();
        for name in &config.extra_models {
            rules.add_model(name).map_err(Error::Usage)?;
        }
        let rules = rules
            .with_models_file(path)
            .map_err(|e| Error::Config(e.to_string()))?;
        config.catalogue = Some(rules.catalogue().clone());
    }
    let sandbox = Sandbox::start(args.listen, config)
        .await
        .map_err(|e| match e.kind() {
            // A key given twice: the flags are at fault, not the address.
            std::io::ErrorKind::InvalidInput => Error::Usage(e.to_string()),
            _ => Error::Config(format!("cannot listen on {}: {e}", args.listen)),
        })?;
    {
        // The first line is for scripts: `eval "export $(head -1)"`.
        let mut out = std::io::stdout().lock();
        // The provider too, so the commands that follow speak its schema.
        let _ = writeln!(
            out,
            "BATCHGEN_BASE_URL={} BATCHGEN_API_KEY={} BATCHGEN_PROVIDER={}",
            sandbox.base_url(),
            sandbox.key(),
            sandbox.provider()
        );
        let _ = out.flush();
    }
    // The first key is on stdout; a key pool's others are the user's own
    // --key values, so only their number is worth a word.
    let accounts = match sandbox.keys().count() {
        1 => String::new(),
        n => format!(", {n} accounts"),
    };
    crate::util::term::eprint_line(&format!(
        "batchgen sandbox: imitating {} on {}{accounts} (stats at {}/sandbox/stats); Ctrl-C to stop",
        sandbox.provider(),
        sandbox.addr(),
        sandbox.base_url()
    ));
    first_signal().await;
    sandbox.shutdown().await;
    Ok(ExitCode::Success)
}

pub fn init(args: &InitArgs, output: &OutputArgs) -> Result<ExitCode, Error> {
    // `init jobs.csv` names the CSV: the TOML goes beside it, never into it.
    let names_csv = args
        .path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let toml_path = if args.path.extension().is_some() && !names_csv {
        args.path.clone()
    } else {
        args.path.with_extension("toml")
    };
    let csv_path = toml_path.with_extension("csv");
    for path in [&toml_path, &csv_path] {
        // `symlink_metadata`: a dangling symlink exists too.
        if std::fs::symlink_metadata(path).is_ok() && !args.force {
            return Err(Error::Config(format!(
                "{} exists; pass --force to overwrite it",
                path.display()
            )));
        }
    }
    write_new(&toml_path, STARTER_TOML, args.force)?;
    write_new(&csv_path, STARTER_CSV, args.force)?;
    if !output.quiet {
        println!("wrote {} and {}", toml_path.display(), csv_path.display());
        println!(
            "next: batchgen validate {0} && batchgen {0} --sandbox",
            toml_path.display()
        );
    }
    Ok(ExitCode::Success)
}

/// Writes a starter file: a new file (`O_EXCL`), or with `--force` an
/// atomic replacement of a regular file; never through a symlink planted
/// under its name ([`crate::util::fsx`]).
fn write_new(path: &Path, text: &str, force: bool) -> Result<(), Error> {
    let dir = crate::util::fsx::parent_dir(path);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
    let written = if force {
        crate::util::fsx::AtomicFile::create_unlinked(path).and_then(|mut out| {
            out.write_all(text.as_bytes())?;
            out.commit()
        })
    } else {
        crate::util::fsx::create_new(path).and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
    };
    written.map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
}

pub async fn credits(args: &CreditsArgs) -> Result<ExitCode, Error> {
    let provider = args.provider.or_default();
    let mut _sandbox = None;
    let (base_url, key) = if args.sandbox {
        let rules = crate::job::Rules::default().for_provider(provider);
        let sandbox = start_sandbox(&rules).await?;
        let pair = (sandbox.base_url(), Secret::new(sandbox.key()));
        _sandbox = Some(sandbox);
        pair
    } else {
        let base = base_url_or_default(args.base_url.as_deref(), provider).to_owned();
        (base, read_key(args.api_key_file.as_deref(), provider)?)
    };
    let base_url = parse_base_url(&base_url)?;
    crate::settings::check_provider_host(&base_url, provider)?;
    crate::settings::check_transport(&base_url, args.allow_insecure_http)?;
    let client = Client::new(&base_url, key, std::time::Duration::from_secs(30))?
        .with_provider(provider, &base_url);
    let answer = client.balance().await;
    if let Some(why) = crate::api::provider::wire(provider).no_balance() {
        return key_only(answer, provider, &base_url, why);
    }
    match answer {
        Ok(balance) => {
            match balance.used_credits {
                Some(used) => println!(
                    "{} credits left ({used} used) at {}",
                    balance.credits,
                    crate::util::redact::url(&base_url)
                ),
                None => println!(
                    "{} credits left at {}",
                    balance.credits,
                    crate::util::redact::url(&base_url)
                ),
            }
            Ok(ExitCode::Success)
        }
        Err(e) => match (e.class(), e.http_status()) {
            (ErrorClass::Misdirected, _) => Err(Halt::Misdirected(e.to_string()).into()),
            (_, Some(status @ 401..=403)) => Err(Halt::Refused {
                status,
                message: e.server_message(),
            }
            .into()),
            _ => Err(Error::Credits {
                url: crate::util::redact::url(&crate::api::http::endpoint(
                    &base_url,
                    crate::api::provider::wire(provider).credits_path(),
                )),
                message: e.to_string(),
            }),
        },
    }
}

/// `credits` for a provider that shows a key no balance in credits: its
/// endpoint only checks the key; the answer says so, and why.
fn key_only(
    answer: Result<crate::api::submit::Balance, crate::api::submit::SubmitError>,
    provider: crate::job::Provider,
    base_url: &url::Url,
    why: &str,
) -> Result<ExitCode, Error> {
    let host = crate::util::redact::url(base_url);
    match answer {
        Err(e) if e.class() == ErrorClass::Misdirected => {
            Err(Halt::Misdirected(e.to_string()).into())
        }
        Err(e) if e.refusal().is_some() => {
            let (status, message) = e.refusal().unwrap_or((401, e.server_message()));
            Err(Halt::Refused { status, message }.into())
        }
        // The provider's own answer to a key it took, which holds no
        // balance (its wire says so with `why`).
        Err(crate::api::submit::SubmitError::Unexpected { detail, .. }) if detail == why => {
            println!(
                "the key is accepted at {host}; no balance to show: {why} (provider {provider})"
            );
            Ok(ExitCode::Success)
        }
        Ok(_) => Err(Error::Credits {
            url: host,
            message: "a balance from a provider that has none".to_owned(),
        }),
        Err(e) => Err(Error::Credits {
            url: crate::util::redact::url(&crate::api::http::endpoint(
                base_url,
                crate::api::provider::wire(provider).credits_path(),
            )),
            message: e.to_string(),
        }),
    }
}

pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode, Error> {
    // Generated into memory first: clap_complete panics on a write error,
    // and `batchgen completions bash | head` closes the pipe early.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "batchgen", &mut script);
    print_bytes(&script)
}

pub fn man() -> Result<ExitCode, Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| anyhow::anyhow!("cannot render the man page: {e}"))?;
    print_bytes(&page)
}

/// Writes to stdout; a closed pipe is the reader's choice, not an error.
fn print_bytes(bytes: &[u8]) -> Result<ExitCode, Error> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Output(e)),
        _ => Ok(ExitCode::Success),
    }
}
