//! The gcui face: a self-hosted gcui-art/suno-api, as its README and
//! routes (`src/app/api/*/route.ts`) show it.
//!
//! - No key: it holds the Suno cookie itself, so any `Authorization` (or
//!   none) is accepted.
//! - Accounts: its README lets a `Cookie` header per request choose the
//!   Suno account ("one client per cookie"). With one account (one
//!   `--key`, or none) every request is that account's, whatever its
//!   cookie. With several, the `Cookie` header's text must equal one
//!   `--key` exactly and picks that account; a request without a `Cookie`
//!   gets the first (the server's own `SUNO_COOKIE`). A cookie no account
//!   has is refused with 401 `{"error": "Unauthorized: …"}` on every
//!   route: the real server falls back to its own cookie when the header
//!   lacks `__client`, and fails a stale session with a 500 of its
//!   catch-all, but a sandbox that billed a mistyped cookie to the first
//!   account (or hid it among server errors) would let a key pool's bug
//!   through, and `API.md` documents no answer for it.
//! - `POST /api/generate {prompt, make_instrumental, model, wait_audio}`
//!   (description mode: `prompt` is the description) and
//!   `POST /api/custom_generate {prompt, tags, title, negative_tags,
//!   make_instrumental, model, wait_audio}` (custom mode: `tags` is
//!   batchgen's `style`, `negative_tags` its `tags`). Models `chirp-v3-5`
//!   (batchgen's default, `chirp-v3.5`, so a job naming none keeps its
//!   fingerprint), `chirp-v3-0`, `chirp-v4`; absent means `chirp-v3-5`.
//!   `wait_audio` is read and ignored: the answer comes at once, as with
//!   `false`.
//! - Accepted: HTTP 200 and a bare array of the task's two clips
//!   (`AudioInfo`), status `submitted`. There is no task id: the two clip
//!   ids are the task (the stats name it `"<id1>,<id2>"`, what `/api/get`
//!   takes).
//! - Errors `{"error": "..."}` with the HTTP status: 400 bad body, 402
//!   "Insufficient credits" (Suno's 402 passed through), 429 rate limited
//!   (with `Retry-After`), 500 "Internal server error: ..." (its
//!   catch-all, the 500 fault); the 503 fault is a proxy's HTML page.
//! - `GET /api/get?ids=a,b`: a bare array of those clips (ids it does not
//!   know are left out, as Suno's feed leaves them out, and so are
//!   another account's: Suno's feed is per account); without `ids` the
//!   account's newest [`ALL_CAP`] clips. Status `submitted` → `queued` →
//!   `streaming` (`audio_url` the streaming URL) → `complete` (the mp3,
//!   `duration` set), or `error` with `error_message` (moderation).
//! - `GET /api/get_limit`: `{"credits_left","period","monthly_limit",
//!   "monthly_usage"}` of the cookie's account.
//! - No callbacks: a callback URL is not part of its bodies.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::{Refusal, Reply};
use crate::job::{Field, JobFields, Provider, Rules};
use crate::sandbox::lifecycle::Phase;
use crate::sandbox::poll::query_param;
use crate::sandbox::state::Task;
use crate::sandbox::{Host, api, clips};

/// The most clips `/api/get` without `ids` answers.
pub const ALL_CAP: usize = 50;

/// The custom-mode submit path.
const CUSTOM_PATH: &str = "/api/custom_generate";

pub(super) fn routes() -> Router<Arc<Host>> {
    Router::new()
        .route("/api/generate", post(api::generate))
        .route(CUSTOM_PATH, post(api::generate))
        .route("/api/get", get(get_clips))
        .route("/api/get_limit", get(get_limit))
}

/// A text field. Its TypeScript types make every field present, so a
/// client sends `""` for one it has no value for (an instrumental's
/// `prompt`): empty is unset, as Suno takes it.
fn text(body: &Map<String, Value>, name: &str) -> Result<Option<String>, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Refusal::Invalid(format!(
            "{name} must be a string, not {other}"
        ))),
    }
}

fn flag(body: &Map<String, Value>, name: &str) -> Result<Option<bool>, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(Refusal::Invalid(format!(
            "{name} must be a boolean, not {other}"
        ))),
    }
}

/// Reads a generate body; `path` tells the mode. See the module docs.
pub(super) fn read(
    path: &str,
    body: &Map<String, Value>,
    rules: &Rules,
) -> Result<JobFields, Refusal> {
    let custom = path == CUSTOM_PATH;
    let mut fields = JobFields {
        custom_mode: custom.then_some(true),
        make_instrumental: flag(body, "make_instrumental")?,
        prompt: text(body, "prompt")?,
        ..JobFields::default()
    };
    flag(body, "wait_audio")?;
    if custom {
        for (name, field) in [
            ("tags", Field::Style),
            ("title", Field::Title),
            ("negative_tags", Field::Tags),
        ] {
            if let Some(value) = text(body, name)? {
                fields.set_str(field, value);
            }
        }
    }
    fields.model = match text(body, "model")? {
        None => None,
        Some(name) => Some(model(&name, rules)?),
    };
    Ok(fields)
}

/// The model named, in batchgen's names: the catalogue's model gcui takes
/// under that name (see the sunoapi face's `model`).
fn model(name: &str, rules: &Rules) -> Result<String, Refusal> {
    match rules.catalogue().from_wire(Provider::Gcui, name) {
        Some(model) => Ok(model.name.clone()),
        None => Err(Refusal::Invalid(format!(
            "unknown model {:?}",
            name.chars().take(64).collect::<String>()
        ))),
    }
}

/// What this host calls a task's model in its clips: its wire name.
fn model_name(shared: &Host, task: &Task) -> String {
    let catalogue = shared.rules.catalogue();
    let offer = catalogue
        .find(&task.model)
        .and_then(|m| m.offers.get(&Provider::Gcui));
    offer.map_or_else(|| clips::model_name(&task.model), |o| o.wire.clone())
}

pub(super) fn accepted(shared: &Host, task: &Task) -> Reply {
    let phase = shared.lifecycle.phase(task, tokio::time::Instant::now());
    let clips: Vec<Value> = (0..task.clip_ids.len())
        .map(|i| clip(shared, task, i, phase))
        .collect();
    Reply::json(StatusCode::OK, Value::Array(clips))
}

pub(super) fn refused(refusal: &Refusal) -> Reply {
    let (status, message) = match refusal {
        Refusal::Unauthorized(message) => (StatusCode::UNAUTHORIZED, (*message).to_owned()),
        Refusal::Invalid(message) => (StatusCode::BAD_REQUEST, message.clone()),
        Refusal::TooLong => (StatusCode::BAD_REQUEST, "Topic too long.".to_owned()),
        Refusal::CallbackRequired => (StatusCode::BAD_REQUEST, "callback URL required".to_owned()),
        Refusal::NoCredits => (
            StatusCode::PAYMENT_REQUIRED,
            "Insufficient credits".to_owned(),
        ),
        Refusal::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests".to_owned(),
        ),
        Refusal::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error: AxiosError: Request failed with status code 500".to_owned(),
        ),
        Refusal::Unavailable => return Reply::unavailable(),
    };
    error(status, &message)
}

/// `{"error": "..."}` with the HTTP status.
pub(super) fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, json!({"error": message}))
}

/// A clip's `status` in `phase`.
fn status(shared: &Host, phase: Phase) -> &'static str {
    match phase {
        Phase::New => "submitted",
        Phase::Lyrics => "queued",
        Phase::Text if !shared.lifecycle.streams(phase) => "queued",
        Phase::Text | Phase::First => "streaming",
        Phase::Complete => "complete",
        Phase::Failed => "error",
    }
}

/// Clip `index` of `task` in `phase`, as gcui's `AudioInfo`.
fn clip(shared: &Host, task: &Task, index: usize, phase: Phase) -> Value {
    let base = &shared.base_url;
    let id = &task.clip_ids[index];
    let fields = &task.fields;
    let status = status(shared, phase);
    let audio_url = match status {
        "streaming" => clips::stream_url(base, id),
        "complete" => clips::final_url(task, index, base),
        _ => String::new(),
    };
    let custom = fields.custom_mode == Some(true);
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    let lyric = clips::lyrics(task, index);
    let description = if custom {
        String::new()
    } else {
        text(&fields.prompt)
    };
    json!({
        "id": id,
        "title": task.title,
        "image_url": clips::image_url(task, index, phase, base),
        "lyric": lyric,
        "audio_url": audio_url,
        "video_url": "",
        "created_at": clips::iso(task.created_at),
        "model_name": model_name(shared, task),
        "status": status,
        "gpt_description_prompt": description,
        "prompt": lyric,
        "type": "gen",
        "tags": task.style,
        "negative_tags": text(&fields.tags),
        "duration": if phase == Phase::Complete {
            json!(task.takes[index].duration_secs())
        } else {
            Value::Null
        },
        "error_message": match (phase, task.moderation) {
            (Phase::Failed, Some(r)) => json!(r.message),
            _ => Value::Null,
        },
    })
}

async fn get_clips(
    State(shared): State<Arc<Host>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let account = match shared.poll_account(&headers) {
        Ok(account) => account,
        Err(message) => {
            return shared
                .after_latency(error(StatusCode::UNAUTHORIZED, message))
                .await;
        }
    };
    let ids = query_param(query.as_deref(), "ids");
    let ids: Option<Vec<&str>> = ids.as_deref().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .collect()
    });
    let clips: Vec<Value> = shared
        .clips_now(ids.as_deref(), ALL_CAP, account)
        .iter()
        .map(|(task, index, phase)| clip(&shared, task, *index, *phase))
        .collect();
    shared
        .after_latency(Reply::json(StatusCode::OK, Value::Array(clips)))
        .await
}

async fn get_limit(State(shared): State<Arc<Host>>, headers: HeaderMap) -> Response {
    let answer = match shared.account_of(&headers, None) {
        Err(message) => error(StatusCode::UNAUTHORIZED, message),
        Ok(account) => {
            let (left, used) = shared.balance(account);
            Reply::json(
                StatusCode::OK,
                json!({
                    "credits_left": left,
                    "period": "month",
                    "monthly_limit": shared.account(account).credits,
                    "monthly_usage": used,
                }),
            )
        }
    };
    shared.after_latency(answer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn both_paths_read_into_batchgens_names() {
        let rules = Rules::default();
        let custom = read(
            CUSTOM_PATH,
            &body(json!({"prompt": "words", "tags": "lofi", "title": "T",
                         "negative_tags": "metal", "model": "chirp-v4", "wait_audio": false})),
            &rules,
        )
        .unwrap();
        assert_eq!(custom.custom_mode, Some(true));
        assert_eq!(custom.style.as_deref(), Some("lofi"));
        assert_eq!(custom.tags.as_deref(), Some("metal"));
        assert_eq!(custom.model.as_deref(), Some("chirp-v4-0"));
        let plain = read(
            "/api/generate",
            &body(json!({"prompt": "rain", "tags": "ignored", "make_instrumental": true})),
            &rules,
        )
        .unwrap();
        assert_eq!(plain.custom_mode, None);
        assert_eq!(plain.style, None, "no style outside custom mode");
        assert_eq!(plain.model, None, "absent is the default model");
        assert_eq!(
            plain.fingerprint(),
            JobFields {
                prompt: Some("rain".into()),
                make_instrumental: Some(true),
                model: Some("chirp-v3.5".into()),
                ..JobFields::default()
            }
            .fingerprint()
        );
        let bad = read("/api/generate", &body(json!({"model": "V5"})), &rules);
        assert!(matches!(bad, Err(Refusal::Invalid(m)) if m.contains("unknown model \"V5\"")));
        let v5 = read(
            "/api/generate",
            &body(json!({"model": "chirp-crow"})),
            &rules,
        )
        .unwrap();
        assert_eq!(
            v5.model.as_deref(),
            Some("chirp-v5"),
            "Suno's internal name"
        );
    }
}
