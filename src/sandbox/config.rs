//! The sandbox's settings: the flags of `batchgen sandbox`, and what
//! `--sandbox` and the tests start it with (`SandboxConfig::default()`).
//!
//! The default imitates the provider as its current docs describe it
//! ([`StageStyle::Documented`]): a client that works against the default
//! sandbox works against the docs. The older `complete` style stays one flag
//! away, because older hosts of the same backend still answer that way and a
//! client must handle both.

use std::time::Duration;

use super::accounts::KeySpec;
use super::audio::{BadTakeKind, TakeLength, TakeSettings};
use super::faults::{FaultSettings, parse_probability};
use crate::job::Provider;
use crate::util::units::{Rate, parse_duration};

/// The default of `--slow-delay`.
const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(2);
/// The default of `--stage-time`.
const DEFAULT_STAGE_TIME: Duration = Duration::from_secs(1);
/// The default of `--moderation-word`.
const DEFAULT_MODERATION_WORD: &str = "forbidden";
/// The default of `--credits`: enough never to run out by accident.
const DEFAULT_CREDITS: u64 = 1_000_000;
/// The default of `--credits-per-task`: Suno's 5 credits per clip, two
/// clips per task.
const DEFAULT_CREDITS_PER_TASK: u64 = 10;

/// How a task reports its stages: see the timeline in `lifecycle`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StageStyle {
    /// As the provider's current docs show: `data.type` is `SUCCESS` from
    /// the text stage on, the clips' ids are `""` early in the text stage,
    /// streaming URLs come before the mp3, and the final stage is status
    /// `first` with "All generated successfully.".
    #[default]
    Documented,
    /// The older style: `data.type` is `SUCCESS` only at the end, and the
    /// final stage is status `complete`.
    Complete,
}

/// What a clip's final `audio_url` answers under `--bad-audio`: the bad
/// final URLs public reports show, for testing that a client keeps only
/// audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BadAudioKind {
    /// Each bad clip gets one of the kinds below, picked from its id.
    #[default]
    Mixed,
    /// The mp3 URL answers 200 with an HTML page.
    Html,
    /// The mp3 URL answers 200 with a JSON error body.
    Json,
    /// The mp3 URL answers 404.
    #[value(name = "404")]
    NotFound,
    /// `audio_url` is `<base>/media/None.mp3` (404).
    #[value(name = "none-mp3")]
    NoneMp3,
    /// `audio_url` is `<base>/api/forbidden` (403, JSON).
    Forbidden,
    /// The final clip's `audio_url` is still its streaming URL (never the
    /// file), as hosts answer when their final file is late. Not in `mixed`.
    Streaming,
    /// The final clip's `audio_url` is `""`. Not in `mixed`.
    Missing,
}

/// How the sunoapi face carries an error's code (see `face::sunoapi`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ErrorStatus {
    /// In the body's `code` only, with HTTP 200, as some sunoapi.org clones
    /// answer: a client that trusts the HTTP status takes an error for a
    /// success.
    #[default]
    Body,
    /// In the body's `code` and as the HTTP status too.
    Http,
}

/// Where the sunoapi face's `record-info` puts a task's clips (see
/// `face::sunoapi`): both forms are documented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordShape {
    /// `data.response.sunoData[]` in camelCase (`audioUrl`, `imageUrl`,
    /// `streamAudioUrl`), as sunoapi.org's docs show.
    #[default]
    Camel,
    /// `data.response.data[]` in snake_case (`audio_url`, `image_url`,
    /// `stream_audio_url`), as the cn quick-start shows.
    Snake,
}

/// How the sandbox behaves. The fields are the flags of `batchgen sandbox`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SandboxConfig {
    /// Which host to imitate: udioapi (udioapi.pro), sunoapi (sunoapi.org
    /// and its clones: api.box), kie (kie.ai), gcui (a self-hosted
    /// gcui-art/suno-api) or newapi (a new-api / one-api relay). Each
    /// answers on its own routes in its own
    /// shapes; faults, limits, timing and credits work the same on all.
    #[arg(long, value_name = "NAME", default_value = "udioapi", value_parser = Provider::parse)]
    pub provider: Provider,

    /// sunoapi only: send an error's code in the body with HTTP 200
    /// ("body", as some clones do) or as the HTTP status too ("http").
    #[arg(long, value_name = "HOW", value_enum, default_value_t = ErrorStatus::Body)]
    pub error_status: ErrorStatus,

    /// sunoapi only: where record-info puts the clips: "camel"
    /// (`data.response.sunoData[]`, camelCase) or "snake"
    /// (`data.response.data[]`, snake_case, the cn quick-start's form).
    #[arg(long, value_name = "SHAPE", value_enum, default_value_t = RecordShape::Camel)]
    pub record_shape: RecordShape,

    /// API key clients must send (as `Authorization: Bearer <KEY>` or a
    /// `token` field in the body; on gcui, the `Cookie` header picks the
    /// account). Repeatable: each key is an account with its own credits,
    /// rate limit and tasks, and may set its own as
    /// `KEY,credits=N,rate=R` (else --credits and --rate apply). The first
    /// is the default account. Without any, a random `sk-sandbox-…` key is
    /// made up and printed at startup.
    #[arg(long = "key", value_name = "KEY[,credits=N][,rate=R]", value_parser = KeySpec::parse)]
    pub keys: Vec<KeySpec>,

    /// Reject requests faster than this with 429 and Retry-After (on
    /// sunoapi: code 430), like the real service: N/s, N/min, N/h, N/10s or "unlimited". No burst is allowed;
    /// a client spacing requests exactly at the rate never sees a 429.
    /// Each key has a limiter of its own. Default: no limit.
    #[arg(long, value_name = "RATE")]
    pub rate: Option<Rate>,

    /// Probability (0 to 1) of answering 500 with a JSON error body.
    #[arg(long = "fail-500", value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_500: f64,

    /// Probability (0 to 1) of answering 503 with an HTML page instead of
    /// JSON, as a proxy in front of the service does (on sunoapi: code 455,
    /// "under maintenance", its documented form of the same trouble).
    #[arg(long = "fail-503", value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_503: f64,

    /// Probability (0 to 1) of answering 429 (on sunoapi: code 430) with
    /// `Retry-After: --fail-429-retry-after`, whatever the rate.
    #[arg(long = "fail-429", value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_429: f64,

    /// The `Retry-After` seconds of an injected 429 (0 lets tests inject
    /// many without waiting a second each).
    #[arg(
        long = "fail-429-retry-after",
        value_name = "SECS",
        default_value_t = 1
    )]
    pub fail_429_retry_after: u64,

    /// Probability (0 to 1) of answering only after --slow-delay more. The
    /// task is still created, so a client that times out must not resend it
    /// blindly.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub slow: f64,

    /// The extra wait of a slow answer, e.g. 2s, 500ms, 1m.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub slow_delay: Duration,

    /// Probability (0 to 1) of closing the connection without an answer
    /// before creating the task.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub drop_before: f64,

    /// Probability (0 to 1) of creating the task and then closing the
    /// connection without an answer: the client cannot know it succeeded.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub drop_after: f64,

    /// Extra time before every API answer, e.g. 300ms.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration)]
    pub latency: Duration,

    /// Seed for fault injection and task ids. The same seed and the same
    /// requests give the same faults and ids on every run; the default 0 is
    /// a fixed seed too, so pick another to see a different sequence.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// How long each stage of a task takes. Clips appear (status "text")
    /// after half of it, reach "first" (streaming audio) after one and are
    /// finished (final mp3) after two, e.g. 1s, 50ms.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub stage_time: Duration,

    /// How a task reports its stages: as the provider's current docs show
    /// them, or in the older style some hosts still have.
    #[arg(long, value_name = "STYLE", value_enum, default_value_t = StageStyle::Documented)]
    pub stage_style: StageStyle,

    /// A task whose prompt, description, title or style contains this word
    /// (in any case) fails content moderation after its first stage, with
    /// one of the provider's three documented messages. Empty disables
    /// moderation.
    #[arg(long, value_name = "WORD", default_value = DEFAULT_MODERATION_WORD)]
    pub moderation_word: String,

    /// Probability (0 to 1) that a finished clip's final audio_url is bad:
    /// an HTML page, a JSON body, a 404 or a ".../None.mp3" URL instead of
    /// the mp3, or (asked for by kind) a streaming URL or none at all (see
    /// --bad-audio-kind). Decided per clip from its id, so the
    /// same seed gives the same bad clips.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub bad_audio: f64,

    /// Probability (0 to 1) that a clip's lyrics read `This is a fake app
    /// http://suno.com`, as hosts whose relay failed Suno's captcha answer:
    /// the clip still reaches its final stage with an mp3, and a client
    /// must not take it for the song asked for. Decided per clip from its
    /// id, so the same seed gives the same clips.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_captcha: f64,

    /// sunoapi only: probability (0 to 1) that a task fails after its text
    /// stage as callback code 531 says ("generation failed, credits
    /// refunded, retry"): the callback has code 531, record-info says
    /// GENERATE_AUDIO_FAILED with errorCode 531, and the task's credits are
    /// given back when it fails. Decided per task from its id.
    #[arg(long = "fail-531", value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub fail_531: f64,

    /// What a bad final audio_url answers (see --bad-audio).
    #[arg(long, value_name = "KIND", value_enum, default_value_t = BadAudioKind::Mixed)]
    pub bad_audio_kind: BadAudioKind,

    /// How long a finished clip's song is (its mp3, and the duration the
    /// feed reports): MIN..MAX, each clip's length drawn from its id (e.g.
    /// 35s..70s, 2m..4m), or one duration for all. The songs are real,
    /// music-like MP3s (48 kHz mono, 64 kbit/s: 8 KB a second).
    #[arg(long, value_name = "MIN..MAX", default_value_t = TakeLength::default(), value_parser = TakeLength::parse)]
    pub take_length: TakeLength,

    /// Probability (0 to 1) that a finished clip's song is one a release
    /// gate must reject (see --bad-take-kind): far too quiet, clipped,
    /// ending in silence, starting with silence, too short, or the same
    /// audio as the task's other clip. Decided per clip from its id (per
    /// task for identical), so the same seed gives the same bad songs.
    #[arg(long, value_name = "P", default_value_t = 0.0, value_parser = parse_probability)]
    pub bad_take: f64,

    /// What a bad song is (see --bad-take).
    #[arg(long, value_name = "KIND", value_enum, default_value_t = BadTakeKind::Mixed)]
    pub bad_take_kind: BadTakeKind,

    /// Starting credit balance of each key that sets none. A submit the
    /// key's balance cannot cover is answered 402 "insufficient credits"
    /// (on sunoapi: code 429) and creates no task.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CREDITS)]
    pub credits: u64,

    /// Credits each accepted task costs (two clips at 5 each, as on Suno).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CREDITS_PER_TASK)]
    pub credits_per_task: u64,

    /// Send a job's callback only once its clips are complete (or failed),
    /// not at every stage; the real service may do either.
    #[arg(long)]
    pub callback_complete_only: bool,

    /// Accept a model name the docs don't list yet (repeatable), as the
    /// provider accepts new models without notice; it gets the short-form
    /// limits, as on the client. `--sandbox` passes the run's own
    /// `--extra-model` / `[run] extra_models` names.
    #[arg(long = "extra-model", value_name = "NAME", value_parser = crate::job::parse_model_name)]
    pub extra_models: Vec<String>,

    /// A models file over the built-in catalogue: the models this host
    /// offers, under its names, with its limits (the format of `batchgen
    /// models`). `--sandbox` passes the run's own catalogue.
    #[arg(long = "models", value_name = "FILE")]
    pub models_file: Option<std::path::PathBuf>,

    /// The catalogue itself, for a sandbox started in-process; over
    /// `models_file`.
    #[arg(skip)]
    pub catalogue: Option<std::sync::Arc<crate::job::Catalogue>>,

    /// kie only: sign every callback with this webhook HMAC key, as kie.ai
    /// does once the key is enabled in its settings (`X-Webhook-Timestamp`,
    /// `X-Webhook-Signature`). A rehearsal key, never a real one.
    #[arg(long, value_name = "KEY")]
    pub webhook_hmac_key: Option<String>,

    /// Deliver callbacks to any host. By default the sandbox posts only to
    /// loopback addresses (localhost, 127.0.0.0/8, ::1), so rehearsing a
    /// manifest whose callback_url points at a real receiver never feeds it
    /// fake clips. (The real service does the opposite: it refuses
    /// non-public addresses.)
    #[arg(long)]
    pub callback_any_host: bool,
}

impl Default for SandboxConfig {
    /// The same values as the flags' defaults: no faults, no limit, no delay.
    fn default() -> SandboxConfig {
        SandboxConfig {
            provider: Provider::Udioapi,
            error_status: ErrorStatus::Body,
            record_shape: RecordShape::Camel,
            keys: Vec::new(),
            rate: None,
            fail_500: 0.0,
            fail_503: 0.0,
            fail_429: 0.0,
            fail_429_retry_after: 1,
            slow: 0.0,
            slow_delay: DEFAULT_SLOW_DELAY,
            drop_before: 0.0,
            drop_after: 0.0,
            latency: Duration::ZERO,
            seed: 0,
            stage_time: DEFAULT_STAGE_TIME,
            stage_style: StageStyle::Documented,
            moderation_word: DEFAULT_MODERATION_WORD.into(),
            bad_audio: 0.0,
            bad_audio_kind: BadAudioKind::Mixed,
            take_length: TakeLength::default(),
            bad_take: 0.0,
            bad_take_kind: BadTakeKind::Mixed,
            fail_captcha: 0.0,
            fail_531: 0.0,
            credits: DEFAULT_CREDITS,
            credits_per_task: DEFAULT_CREDITS_PER_TASK,
            callback_complete_only: false,
            callback_any_host: false,
            extra_models: Vec::new(),
            models_file: None,
            catalogue: None,
            webhook_hmac_key: None,
        }
    }
}

impl SandboxConfig {
    pub(super) fn takes(&self) -> TakeSettings {
        TakeSettings {
            bad_take: self.bad_take,
            bad_take_kind: self.bad_take_kind,
            take_length: self.take_length,
        }
    }

    pub(super) fn faults(&self) -> FaultSettings {
        FaultSettings {
            fail_500: self.fail_500,
            fail_503: self.fail_503,
            fail_429: self.fail_429,
            slow: self.slow,
            slow_delay: self.slow_delay,
            drop_before: self.drop_before,
            drop_after: self.drop_after,
        }
    }
}
