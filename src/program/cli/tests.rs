//! The command line: every flag parses, and the help is whole.

use super::*;
use clap::CommandFactory;

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

/// clap shows a default as the text it parses, and a `Duration` has no
/// `Display` for `default_value_t`; so the texts are written here and
/// this test keeps them equal to the engines' constants.
#[test]
fn collect_defaults_are_the_engines_constants() {
    let cli = Cli::try_parse_from(["batchgen", "collect", "r.csv"]).unwrap();
    let Some(Command::Collect(args)) = cli.command else {
        panic!("not a collect");
    };
    assert_eq!(
        args.poll_interval,
        crate::engine::collect::DEFAULT_POLL_INTERVAL
    );
    assert_eq!(args.poll_rate, crate::engine::collect::DEFAULT_POLL_RATE);
    assert_eq!(args.deadline, crate::engine::collect::DEFAULT_DEADLINE);
    assert_eq!(args.timeout, crate::settings::DEFAULT_TIMEOUT);
}

#[test]
fn bare_manifest_is_a_run() {
    let cli = Cli::try_parse_from(["batchgen", "jobs.toml", "--rate", "5/s"]).unwrap();
    assert!(cli.command.is_none());
    assert_eq!(cli.run.manifest, Some(PathBuf::from("jobs.toml")));
    assert_eq!(cli.run.rate, Some("5/s".parse().unwrap()));
    let cli = Cli::try_parse_from(["batchgen", "validate", "jobs.toml"]).unwrap();
    assert!(matches!(cli.command, Some(Command::Validate(_))));
    let cli = Cli::try_parse_from(["batchgen", "-q", "jobs.toml", "--log-format", "json"]).unwrap();
    assert!(cli.output.quiet && cli.output.log_format == LogFormat::Json);
}

#[test]
fn endpoint_and_model_flags() {
    let cli = Cli::try_parse_from([
        "batchgen",
        "jobs.toml",
        "--generate-path",
        "/v3/generate",
        "--callback-generate-path",
        "api/cb",
        "--extra-model",
        "chirp-v6",
        "--extra-model",
        "chirp-v7",
    ])
    .unwrap();
    let settings = cli.run.settings();
    assert_eq!(settings.generate_path.as_deref(), Some("v3/generate"));
    assert_eq!(settings.callback_generate_path.as_deref(), Some("api/cb"));
    assert_eq!(cli.run.models.extra_models, ["chirp-v6", "chirp-v7"]);
    for bad in [
        ["batchgen", "jobs.toml", "--extra-model", "chirp v6"],
        ["batchgen", "jobs.toml", "--generate-path", "https://h/x"],
    ] {
        assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
    }
    let cli =
        Cli::try_parse_from(["batchgen", "validate", "j.toml", "--extra-model", "x1"]).unwrap();
    let Some(Command::Validate(args)) = cli.command else {
        panic!("validate")
    };
    assert_eq!(args.models.extra_models, ["x1"]);
}
