//! The sandbox as a server: start, stats, shutdown.

use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sandbox: SandboxConfig,
}

#[test]
fn default_matches_the_flags() {
    let flags = Cli::parse_from(["x"]).sandbox;
    assert_eq!(flags, SandboxConfig::default());
    assert_eq!(flags.stage_style, StageStyle::Documented, "the docs' style");
}

#[test]
fn flags_parse() {
    let c = Cli::parse_from([
        "x",
        "--rate",
        "5/s",
        "--fail-503",
        "0.5",
        "--slow-delay",
        "250ms",
        "--seed",
        "9",
        "--stage-time",
        "20ms",
        "--moderation-word",
        "",
        "--credits",
        "30",
        "--credits-per-task",
        "15",
        "--callback-complete-only",
        "--stage-style",
        "complete",
        "--bad-audio",
        "0.5",
        "--bad-audio-kind",
        "none-mp3",
        "--fail-captcha",
        "0.25",
        "--fail-531",
        "0.5",
        "--record-shape",
        "snake",
        "--take-length",
        "2m..4m",
        "--bad-take",
        "0.1",
        "--bad-take-kind",
        "silent-tail",
    ])
    .sandbox;
    assert_eq!(c.take_length, TakeLength::parse("120s..240s").unwrap());
    assert_eq!(
        (c.bad_take, c.bad_take_kind),
        (0.1, BadTakeKind::SilentTail)
    );
    let one = Cli::parse_from(["x", "--take-length", "45s"]).sandbox;
    assert_eq!(one.take_length.min(), one.take_length.max());
    for bad in ["70s..35s", "0s", "20m", "long"] {
        assert!(
            Cli::try_parse_from(["x", "--take-length", bad]).is_err(),
            "{bad}"
        );
    }
    assert!(Cli::try_parse_from(["x", "--bad-take-kind", "loud"]).is_err());
    assert_eq!((c.fail_captcha, c.fail_531), (0.25, 0.5));
    assert_eq!(c.record_shape, RecordShape::Snake);
    assert!(Cli::try_parse_from(["x", "--fail-captcha", "1.5"]).is_err());
    assert!(Cli::try_parse_from(["x", "--record-shape", "pascal"]).is_err());
    assert_eq!(c.stage_style, StageStyle::Complete);
    assert_eq!(
        (c.bad_audio, c.bad_audio_kind),
        (0.5, BadAudioKind::NoneMp3)
    );
    let kind = |k: &str| Cli::parse_from(["x", "--bad-audio-kind", k]).sandbox;
    assert_eq!(kind("404").bad_audio_kind, BadAudioKind::NotFound);
    assert!(Cli::try_parse_from(["x", "--stage-style", "fast"]).is_err());
    assert_eq!(c.stage_time, Duration::from_millis(20));
    assert_eq!(c.moderation_word, "");
    assert_eq!((c.credits, c.credits_per_task), (30, 15));
    assert!(c.callback_complete_only);
    assert_eq!(c.rate, Some("5/s".parse().unwrap()));
    assert_eq!(c.fail_503, 0.5);
    assert_eq!(c.slow_delay, Duration::from_millis(250));
    assert_eq!(c.seed, 9);
    assert!(Cli::try_parse_from(["x", "--fail-500", "2"]).is_err());
}

#[test]
fn random_keys_differ() {
    let k = random_key();
    assert!(k.starts_with("sk-sandbox-") && k.len() == 11 + 32);
    assert_ne!(k, random_key());
}

#[test]
fn keys_repeat_each_with_its_own_settings() {
    let c = Cli::parse_from(["x", "--key", "A,credits=5,rate=2/s", "--key", "B"]).sandbox;
    assert_eq!(
        c.keys,
        [
            KeySpec {
                key: "A".into(),
                credits: Some(5),
                rate: Some("2/s".parse().unwrap()),
            },
            KeySpec::new("B"),
        ]
    );
    let accounts = Account::resolve(&c.keys, c.credits, c.rate);
    assert_eq!((accounts[1].credits, accounts[1].rate), (c.credits, None));
    let error = Cli::try_parse_from(["x", "--key", "A,credit=5"])
        .err()
        .expect("a bad spec is refused")
        .to_string();
    assert!(
        error.contains("--key") && error.contains("unknown setting \"credit\""),
        "{error}"
    );
    let error = Cli::try_parse_from(["x", "--key", "A,rate=5/fortnight"])
        .err()
        .expect("a bad rate is refused")
        .to_string();
    assert!(error.contains("rate=\"5/fortnight\""), "{error}");
}

#[tokio::test]
async fn a_key_given_twice_is_refused() {
    let config = SandboxConfig {
        keys: vec!["A".into(), "B".into(), "A".into()],
        ..SandboxConfig::default()
    };
    let error = Sandbox::start(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    assert!(
        error.to_string().contains("\"A\" is given twice"),
        "{error}"
    );
}
