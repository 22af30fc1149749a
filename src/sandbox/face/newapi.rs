//! The newapi face: a new-api / one-api relay's Suno task API, as its docs
//! (docs.newapi.pro/api/suno-music) and code (QuantumNous/new-api
//! `dto/suno.go`, `relay/relay_task.go`, `controller/billing.go`) show it.
//!
//! - `POST /suno/submit/music {prompt, tags, mv, title,
//!   gpt_description_prompt, make_instrumental}`, Bearer token. With
//!   `gpt_description_prompt` the job is a description (inspiration
//!   mode); without it, custom mode: `prompt` the lyrics, `tags` the style.
//!   `mv` is Suno's internal model name (`chirp-v3-5`, `chirp-v4`,
//!   `chirp-auk`, `chirp-bluejay`, `chirp-crow`, `chirp-fenix`); an empty
//!   or absent `mv` is the relay's own default, `chirp-v3-0`, which Suno
//!   retired: refused (400), as the upstream fails it. Accepted:
//!   `{"code":"success","message":"","data":"task_<id>"}`.
//! - Errors with the HTTP status: the relay's task errors `{"code":
//!   "<word>","message":"...","data":null}` (400 `invalid_request`, 403
//!   `insufficient_user_quota` for no credits, 500 `do_request_failed`,
//!   400 `task_not_exist` for a fetch of an unknown task, or of another
//!   token's: the relay looks tasks up by user), its token check
//!   and rate limiter OpenAI's `{"error":{"message","type"}}` (401, 429
//!   with `Retry-After`), and the 503 fault a proxy's HTML page.
//! - `GET /suno/fetch/{id}`: `{"code":"success","data":<task>}`, a task
//!   object `{task_id, action: "MUSIC", status, fail_reason, submit_time,
//!   start_time, finish_time, progress, data: [Suno clips]}`. Status
//!   `SUBMITTED` → `QUEUED` → `IN_PROGRESS` → `SUCCESS`, or `FAILURE`
//!   with the moderation message in `fail_reason`. The clips: `id`,
//!   `status` (`submitted`, `queued`, `streaming`, `complete`, `error`),
//!   `audio_url` (the streaming URL, then the mp3), `image_url`, `title`,
//!   `model_name`, `created_at`, `metadata{tags, prompt,
//!   gpt_description_prompt, duration, error_message, type}`.
//! - `POST /suno/fetch {"ids":[…],"action":"MUSIC"}`: `{"code":"success",
//!   "data":[task objects]}` for the ids it knows, ordered by task id
//!   (not as asked: the relay's database query promises no order), and
//!   of those only the token's own (the relay's query is by user). Each
//!   request counts once in `feed_requests`, however many ids it holds.
//! - `GET /v1/dashboard/billing/subscription` and `/usage`: new-api's
//!   OpenAI-style billing, in dollars of [`QUOTA_PER_UNIT`] credits
//!   (`hard_limit_usd` the token's total quota, `total_usage` its used
//!   part in cents).
//! - No callbacks to clients: the relay's upstream calls back the relay.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::{Refusal, Reply};
use crate::job::{JobFields, Provider, Rules};
use crate::sandbox::accounts::AccountId;
use crate::sandbox::lifecycle::Phase;
use crate::sandbox::state::Task;
use crate::sandbox::{Host, api, clips};

/// The relay's `mv` when a body has none.
const RELAY_DEFAULT_MV: &str = "chirp-v3-0";

/// new-api's quota units per dollar (its `QuotaPerUnit`).
pub const QUOTA_PER_UNIT: f64 = 500_000.0;

pub(super) fn routes() -> Router<Arc<Host>> {
    Router::new()
        .route("/suno/submit/music", post(api::generate))
        .route("/suno/fetch", post(fetch_many))
        .route("/suno/fetch/{id}", get(fetch_one))
        .route("/v1/dashboard/billing/subscription", get(subscription))
        .route("/v1/dashboard/billing/usage", get(usage))
}

/// A text field: absent, `null` or `""` is unset (the relay's Go struct
/// has `omitempty` strings); another type is a 400.
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

/// Reads a submit body into batchgen's fields; see the module docs.
pub(super) fn read(body: &Map<String, Value>, rules: &Rules) -> Result<JobFields, Refusal> {
    let make_instrumental = match body.get("make_instrumental") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(Refusal::Invalid(format!(
                "make_instrumental must be a boolean, not {other}"
            )));
        }
    };
    let description = text(body, "gpt_description_prompt")?;
    let mv = text(body, "mv")?.unwrap_or_else(|| RELAY_DEFAULT_MV.to_owned());
    Ok(JobFields {
        custom_mode: description.is_none().then_some(true),
        make_instrumental,
        prompt: text(body, "prompt")?,
        style: text(body, "tags")?,
        title: text(body, "title")?,
        gpt_description_prompt: description,
        model: Some(model(&mv, rules)?),
        ..JobFields::default()
    })
}

/// The model named by `mv`, in batchgen's names: the catalogue's model
/// the relay takes under that name (see the sunoapi face's `model`).
fn model(name: &str, rules: &Rules) -> Result<String, Refusal> {
    let catalogue = rules.catalogue();
    if let Some(model) = catalogue.from_wire(Provider::Newapi, name) {
        return Ok(model.name.clone());
    }
    let names: Vec<&str> = catalogue
        .models()
        .iter()
        .filter_map(|m| {
            Some(
                m.offers
                    .get(&Provider::Newapi)
                    .filter(|o| o.listed)?
                    .wire
                    .as_str(),
            )
        })
        .collect();
    Err(Refusal::Invalid(format!(
        "upstream refused mv {:?} (retired or unknown); current: {}",
        name.chars().take(64).collect::<String>(),
        names.join(", ")
    )))
}

pub(super) fn accepted(task: &Task) -> Reply {
    Reply::json(
        StatusCode::OK,
        json!({"code": "success", "message": "", "data": task.id}),
    )
}

pub(super) fn refused(refusal: &Refusal) -> Reply {
    let (status, code, message) = match refusal {
        Refusal::Unauthorized(message) => return openai_error(StatusCode::UNAUTHORIZED, message),
        Refusal::RateLimited { .. } => {
            return openai_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate limit reached: too many requests in the last minute",
            );
        }
        Refusal::Unavailable => return Reply::unavailable(),
        Refusal::Invalid(message) => (StatusCode::BAD_REQUEST, "invalid_request", message.as_str()),
        Refusal::TooLong => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Topic too long.",
        ),
        Refusal::CallbackRequired => (
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "callback required",
        ),
        Refusal::NoCredits => (
            StatusCode::FORBIDDEN,
            "insufficient_user_quota",
            "user quota is not enough",
        ),
        Refusal::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "do_request_failed",
            "upstream error: do request failed",
        ),
    };
    task_error(status, code, message)
}

/// The relay's task error: `{"code","message","data":null}` with `status`.
fn task_error(status: StatusCode, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"code": code, "message": message, "data": null}),
    )
}

/// The relay's token check and rate limiter: OpenAI's error object.
fn openai_error(status: StatusCode, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"error": {"message": message, "type": "new_api_error"}}),
    )
}

/// An error of a read-side route.
pub(super) fn error(status: StatusCode, message: &str) -> Reply {
    match status {
        StatusCode::UNAUTHORIZED => openai_error(status, message),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => openai_error(status, message),
        _ => task_error(status, "invalid_request", message),
    }
}

/// The task's `status` and `progress` in `phase`.
fn task_status(phase: Phase) -> (&'static str, &'static str) {
    match phase {
        Phase::New => ("SUBMITTED", "0%"),
        Phase::Lyrics => ("QUEUED", "10%"),
        Phase::Text => ("IN_PROGRESS", "40%"),
        Phase::First => ("IN_PROGRESS", "80%"),
        Phase::Complete => ("SUCCESS", "100%"),
        Phase::Failed => ("FAILURE", "100%"),
    }
}

/// A clip's `status` in `phase`, as Suno's feed words it.
fn clip_status(shared: &Host, phase: Phase) -> &'static str {
    match phase {
        Phase::New => "submitted",
        Phase::Lyrics => "queued",
        Phase::Text if !shared.lifecycle.streams(phase) => "queued",
        Phase::Text | Phase::First => "streaming",
        Phase::Complete => "complete",
        Phase::Failed => "error",
    }
}

/// Clip `index` of `task` in `phase`: a Suno clip object.
fn clip(shared: &Host, task: &Task, index: usize, phase: Phase) -> Value {
    let base = &shared.base_url;
    let id = &task.clip_ids[index];
    let fields = &task.fields;
    let status = clip_status(shared, phase);
    let audio_url = match status {
        "streaming" => clips::stream_url(base, id),
        "complete" => clips::final_url(task, index, base),
        _ => String::new(),
    };
    let error_message = match (phase, task.moderation) {
        (Phase::Failed, Some(r)) => json!(r.message),
        _ => Value::Null,
    };
    json!({
        "id": id,
        "video_url": "",
        "audio_url": audio_url,
        "image_url": clips::image_url(task, index, phase, base),
        "image_large_url": clips::image_url(task, index, phase, base),
        "major_model_version": "",
        "model_name": model_name(shared, task),
        "status": status,
        "title": task.title,
        "created_at": clips::iso(task.created_at),
        "metadata": {
            "tags": task.style,
            "prompt": clips::lyrics(task, index),
            "gpt_description_prompt": fields.gpt_description_prompt,
            "audio_prompt_id": null,
            "duration": if phase == Phase::Complete {
                json!(task.takes[index].duration_secs())
            } else {
                Value::Null
            },
            "error_type": if error_message.is_null() { Value::Null } else { json!("moderation") },
            "error_message": error_message,
            "type": "gen",
        },
    })
}

/// What this host calls a task's model in its clips: its `mv`.
fn model_name(shared: &Host, task: &Task) -> String {
    let catalogue = shared.rules.catalogue();
    let offer = catalogue
        .find(&task.model)
        .and_then(|m| m.offers.get(&Provider::Newapi));
    offer.map_or_else(|| clips::model_name(&task.model), |o| o.wire.clone())
}

/// The task object of `task` in `phase`.
fn task_object(shared: &Host, task: &Task, phase: Phase) -> Value {
    let (status, progress) = task_status(phase);
    let submitted = clips::epoch_millis(task.created_at) / 1000;
    let clips: Vec<Value> = if phase == Phase::New {
        Vec::new()
    } else {
        (0..task.clip_ids.len())
            .map(|i| clip(shared, task, i, phase))
            .collect()
    };
    let finished = matches!(phase, Phase::Complete | Phase::Failed);
    json!({
        "task_id": task.id,
        "action": "MUSIC",
        "status": status,
        "fail_reason": match (phase, task.moderation) {
            (Phase::Failed, Some(r)) => r.message,
            _ => "",
        },
        "submit_time": submitted,
        "start_time": if phase == Phase::New { 0 } else { submitted },
        "finish_time": if finished { submitted } else { 0 },
        "progress": progress,
        "data": clips,
    })
}

/// The account of a read-side request, or its 401.
fn authorize(shared: &Host, headers: &HeaderMap) -> Result<AccountId, Reply> {
    shared
        .account_of(headers, None)
        .map_err(|m| openai_error(StatusCode::UNAUTHORIZED, m))
}

/// The account of a poll (counted), or its 401.
fn poll_account(shared: &Host, headers: &HeaderMap) -> Result<AccountId, Reply> {
    shared
        .poll_account(headers)
        .map_err(|m| openai_error(StatusCode::UNAUTHORIZED, m))
}

async fn fetch_one(
    State(shared): State<Arc<Host>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let answer = (|| {
        let account = poll_account(&shared, &headers)?;
        let (task, phase) = shared.task_now(id.trim(), account).ok_or_else(|| {
            task_error(StatusCode::BAD_REQUEST, "task_not_exist", "task_not_exist")
        })?;
        Ok(Reply::json(
            StatusCode::OK,
            json!({"code": "success", "message": "", "data": task_object(&shared, &task, phase)}),
        ))
    })();
    shared
        .after_latency(answer.unwrap_or_else(|e: Reply| e))
        .await
}

async fn fetch_many(State(shared): State<Arc<Host>>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = (|| {
        let account = poll_account(&shared, &headers)?;
        let invalid = |m: &str| task_error(StatusCode::BAD_REQUEST, "invalid_request", m);
        let body: Value = serde_json::from_slice(&body).map_err(|e| invalid(&e.to_string()))?;
        let ids: Vec<String> = match body.get("ids") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .filter_map(|id| id.as_str().map(|s| s.trim().to_owned()))
                .collect(),
            Some(_) => return Err(invalid("ids must be a list")),
        };
        let mut found: Vec<(Task, Phase)> = ids
            .iter()
            .filter_map(|id| shared.task_now(id, account))
            .collect();
        found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        found.dedup_by(|a, b| a.0.id == b.0.id);
        let tasks: Vec<Value> = found
            .iter()
            .map(|(task, phase)| task_object(&shared, task, *phase))
            .collect();
        Ok(Reply::json(
            StatusCode::OK,
            json!({"code": "success", "message": "", "data": tasks}),
        ))
    })();
    shared
        .after_latency(answer.unwrap_or_else(|e: Reply| e))
        .await
}

async fn subscription(State(shared): State<Arc<Host>>, headers: HeaderMap) -> Response {
    let answer = authorize(&shared, &headers).map(|account| {
        let total = shared.account(account).credits as f64 / QUOTA_PER_UNIT;
        Reply::json(
            StatusCode::OK,
            json!({"object": "billing_subscription", "has_payment_method": true,
                   "soft_limit_usd": total, "hard_limit_usd": total,
                   "system_hard_limit_usd": total, "access_until": 0}),
        )
    });
    shared.after_latency(answer.unwrap_or_else(|e| e)).await
}

async fn usage(State(shared): State<Arc<Host>>, headers: HeaderMap) -> Response {
    let answer = authorize(&shared, &headers).map(|account| {
        let used = shared.balance(account).1 as f64 / QUOTA_PER_UNIT;
        Reply::json(
            StatusCode::OK,
            json!({"object": "list", "total_usage": used * 100.0}),
        )
    });
    shared.after_latency(answer.unwrap_or_else(|e| e)).await
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
    fn bodies_read_into_batchgens_names() {
        let rules = Rules::default();
        let custom = read(
            &body(json!({"prompt": "words", "tags": "lofi", "title": "T",
                         "mv": "chirp-bluejay", "make_instrumental": false})),
            &rules,
        )
        .unwrap();
        assert_eq!(custom.custom_mode, Some(true));
        assert_eq!(custom.style.as_deref(), Some("lofi"));
        assert_eq!(custom.model.as_deref(), Some("chirp-v4-5-plus"));
        let described = read(
            &body(json!({"gpt_description_prompt": "rain", "mv": "chirp-crow"})),
            &rules,
        )
        .unwrap();
        assert_eq!(described.custom_mode, None);
        assert_eq!(described.gpt_description_prompt.as_deref(), Some("rain"));
        assert_eq!(described.model.as_deref(), Some("chirp-v5"));
        let stale = read(&body(json!({"gpt_description_prompt": "rain"})), &rules);
        assert!(matches!(stale, Err(Refusal::Invalid(m)) if m.contains("chirp-v3-0")));
    }

    #[test]
    fn errors_carry_the_http_status() {
        let r = refused(&Refusal::NoCredits);
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = refused(&Refusal::Unauthorized("bad token"));
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.body,
            super::super::Body::Json(
                json!({"error": {"message": "bad token", "type": "new_api_error"}})
            )
        );
    }
}
