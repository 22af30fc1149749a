//! The sunoapi face: sunoapi.org and its clones (api.box), and kie.ai with
//! its own codes (402 no credits, 429 rate limited) and signed callbacks, as their
//! docs describe them (`API.md`, "Other Suno-style hosts";
//! docs.sunoapi.org "Generate Music", "Get Music Generation Details",
//! "Music Generation Callbacks").
//!
//! - `POST /api/v1/generate`, Bearer key, a camelCase body: `customMode`,
//!   `instrumental` and `model` (`V3_5`, `V4`, `V4_5`, `V4_5PLUS`, `V5`)
//!   required; `prompt`, `style`, `title`, `negativeTags` (batchgen's
//!   `tags`), `vocalGender` `"m"`/`"f"`, `styleWeight`,
//!   `weirdnessConstraint`, `audioWeight`; `callBackUrl` required too
//!   (code 422 "Please enter callBackUrl." without it, as kie.ai answers).
//!   Accepted: `{"code":200,"msg":"success","data":{"taskId":"<32 hex>"}}`.
//! - Errors `{"code":N,"msg":"...","data":null}`, **with HTTP 200** by
//!   default ("errors travel in the body's code with HTTP 200 on some
//!   clones"), or with the code as the HTTP status under `--error-status
//!   http`: 401 key, 400 parameters, 413 too long, **429 insufficient
//!   credits**, **430 rate limited** (the limiter and the 429 fault, with
//!   `Retry-After`), 455 maintenance (the 503 fault's form here), 500.
//! - `GET /api/v1/generate/record-info?taskId=`: the task's `status`
//!   PENDING → TEXT_SUCCESS → FIRST_SUCCESS → SUCCESS over the lifecycle's
//!   phases (a moderated task: SENSITIVE_WORD_ERROR, `errorCode` 400 and
//!   the message, no clips; a `--fail-531` task: GENERATE_AUDIO_FAILED,
//!   `errorCode` 531 and "Sorry, generation failed… refunded…"), `param`
//!   the request as a JSON string and the clips in `response.sunoData`
//!   (camelCase), or with `--record-shape snake` in `response.data`
//!   (snake_case, as the cn quick-start shows). `audioUrl` is `""` until a
//!   clip is final: at FIRST_SUCCESS the first clip is, the second only
//!   streams. An unknown taskId is code 404, and so is another account's
//!   task (the docs say nothing of it: the same answer as an unknown id).
//! - Callbacks to `callBackUrl` at each stage: `{"code":200,"msg":...,
//!   "data":{"callbackType":"text|first|complete","task_id",
//!   "data":[clips in snake_case]}}`; a moderated task ends with
//!   `{"code":400,"msg":"<reason>","data":{"callbackType":"error",
//!   "task_id","data":[]}}`, a `--fail-531` task with code 531 and the
//!   refund message (its credits are given back as it fails). The docs leave the text callback's clips
//!   empty on some endpoints; here they carry their ids (and no audio),
//!   as a callback without ids would be of no use to a receiver.
//! - `GET /api/v1/generate/credit`: `{"code":200,"msg":"success","data":N}`,
//!   the presenting key's own balance.
//!
//! The documented limit is 20 requests per 10 s; the sandbox's limit
//! stays `--rate` (e.g. `--rate 2/s`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::{Refusal, Reply};
use crate::job::{Field, Gender, JobFields, Provider, Rules, Weight};
use crate::sandbox::config::{ErrorStatus, RecordShape};
use crate::sandbox::lifecycle::Phase;
use crate::sandbox::poll::query_param;
use crate::sandbox::state::Task;
use crate::sandbox::{Host, api, clips};

pub(super) fn routes() -> Router<Arc<Host>> {
    Router::new()
        .route("/api/v1/generate", post(api::generate))
        .route("/api/v1/generate/record-info", get(record_info))
        .route("/api/v1/generate/credit", get(credit))
}

/// kie.ai's routes: sunoapi's, with its own credits path.
pub(super) fn kie_routes() -> Router<Arc<Host>> {
    Router::new()
        .route("/api/v1/generate", post(api::generate))
        .route("/api/v1/generate/record-info", get(record_info))
        .route("/api/v1/chat/credit", get(credit))
}

/// A text field: absent or `null` is unset; another type is a 400.
fn text(body: &Map<String, Value>, name: &str) -> Result<Option<String>, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Refusal::Invalid(format!(
            "{name} must be a string, not {other}"
        ))),
    }
}

fn required_bool(body: &Map<String, Value>, name: &str) -> Result<bool, Refusal> {
    match body.get(name) {
        Some(Value::Bool(b)) => Ok(*b),
        None | Some(Value::Null) => Err(Refusal::Invalid(format!("{name} is required"))),
        Some(other) => Err(Refusal::Invalid(format!(
            "{name} must be a boolean, not {other}"
        ))),
    }
}

fn weight(body: &Map<String, Value>, name: &str) -> Result<Option<Weight>, Refusal> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or(crate::job::WeightError::NotANumber)
            .and_then(Weight::from_f64)
            .map(Some)
            .map_err(|e| Refusal::Invalid(format!("{name} {n} {e}"))),
        Some(other) => Err(Refusal::Invalid(format!(
            "{name} must be a number, not {other}"
        ))),
    }
}

/// The model named, in batchgen's names: the catalogue's model that this
/// host (sunoapi or kie) offers under that name. The catalogue is the
/// hosts' published model lists as data (with the models a run adds), not
/// the client's code.
fn model(provider: Provider, name: &str, rules: &Rules) -> Result<String, Refusal> {
    let catalogue = rules.catalogue();
    if let Some(model) = catalogue.from_wire(provider, name) {
        return Ok(model.name.clone());
    }
    let names: Vec<&str> = catalogue
        .models()
        .iter()
        .filter_map(|m| Some(m.offers.get(&provider).filter(|o| o.listed)?.wire.as_str()))
        .collect();
    Err(Refusal::Invalid(format!(
        "model must be one of {}, not {:?}",
        names.join(", "),
        name.chars().take(64).collect::<String>()
    )))
}

/// Reads a generate body into batchgen's fields; see the module docs.
pub(super) fn read(
    provider: Provider,
    body: &Map<String, Value>,
    rules: &Rules,
) -> Result<JobFields, Refusal> {
    let mut fields = JobFields {
        custom_mode: Some(required_bool(body, "customMode")?),
        make_instrumental: Some(required_bool(body, "instrumental")?),
        ..JobFields::default()
    };
    for (name, field) in [
        ("prompt", Field::Prompt),
        ("style", Field::Style),
        ("title", Field::Title),
        ("negativeTags", Field::Tags),
    ] {
        if let Some(value) = text(body, name)? {
            fields.set_str(field, value);
        }
    }
    let Some(name) = text(body, "model")? else {
        return Err(Refusal::Invalid("model is required".into()));
    };
    fields.model = Some(model(provider, &name, rules)?);
    fields.gender = match text(body, "vocalGender")?.as_deref() {
        None => None,
        Some("m") => Some(Gender::Male),
        Some("f") => Some(Gender::Female),
        Some(other) => {
            return Err(Refusal::Invalid(format!(
                "vocalGender must be \"m\" or \"f\", not {other:?}"
            )));
        }
    };
    fields.style_weight = weight(body, "styleWeight")?;
    fields.weirdness_constraint = weight(body, "weirdnessConstraint")?;
    fields.audio_weight = weight(body, "audioWeight")?;
    match text(body, "callBackUrl")? {
        Some(url) if !url.trim().is_empty() => fields.callback_url = Some(url),
        _ => return Err(Refusal::CallbackRequired),
    }
    Ok(fields)
}

pub(super) fn accepted(task: &Task) -> Reply {
    Reply::json(
        StatusCode::OK,
        json!({"code": 200, "msg": "success", "data": {"taskId": task.id}}),
    )
}

pub(super) fn refused(provider: Provider, refusal: &Refusal, how: ErrorStatus) -> Reply {
    let kie = provider == Provider::Kie;
    let (code, message) = match refusal {
        // kie.ai's own codes (docs.kie.ai): 402 no credits, 429 rate limited.
        Refusal::NoCredits if kie => (402, "Insufficient credits"),
        Refusal::RateLimited { .. } if kie => (429, "Rate limited, please try again later"),
        Refusal::Unauthorized(message) => (401, *message),
        Refusal::Invalid(message) => (400, message.as_str()),
        Refusal::TooLong => (413, "Theme or prompt too long"),
        Refusal::CallbackRequired => (422, "Please enter callBackUrl."),
        Refusal::NoCredits => (429, "The current credits are insufficient. Please top up."),
        Refusal::RateLimited { .. } => (
            430,
            "Your call frequency is too high. Please try again later.",
        ),
        Refusal::ServerError => (500, "Server error"),
        Refusal::Unavailable => (
            455,
            "The system is currently undergoing maintenance. Please try again later.",
        ),
    };
    error(code, message, how)
}

/// `{"code": N, "msg": "...", "data": null}`, with HTTP 200 or `code`.
pub(super) fn error(code: u16, message: &str, how: ErrorStatus) -> Reply {
    let status = match how {
        ErrorStatus::Body => StatusCode::OK,
        ErrorStatus::Http => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
    };
    Reply::json(status, json!({"code": code, "msg": message, "data": null}))
}

/// What a task that fails with code 531 is told, in the docs' words.
const REFUNDED: &str =
    "Sorry, generation failed due to an issue. Your credits have been refunded. Please try again.";

/// The task's `status` in `phase`.
fn status(task: &Task, phase: Phase) -> &'static str {
    match phase {
        Phase::New => "PENDING",
        Phase::Lyrics | Phase::Text => "TEXT_SUCCESS",
        Phase::First => "FIRST_SUCCESS",
        Phase::Complete => "SUCCESS",
        Phase::Failed if task.refunded => "GENERATE_AUDIO_FAILED",
        Phase::Failed => "SENSITIVE_WORD_ERROR",
    }
}

/// The code and message of a failed task: moderation's 400, or 531.
fn failure(task: &Task) -> (u16, &'static str) {
    match task.moderation {
        Some(r) => (400, r.message),
        None if task.refunded => (531, REFUNDED),
        None => (500, "Generation failed"),
    }
}

/// Clip `index` in `phase`, camelCase (`record-info`) or snake_case
/// (callbacks), as the docs spell each.
fn clip(shared: &Host, task: &Task, index: usize, phase: Phase, snake: bool) -> Value {
    let base = &shared.base_url;
    let id = &task.clip_ids[index];
    let fin = shared.face.is_final(phase, index);
    let audio = if fin {
        clips::final_url(task, index, base)
    } else {
        String::new()
    };
    let stream = if shared.lifecycle.streams(phase) {
        clips::stream_url(base, id)
    } else {
        String::new()
    };
    let image = clips::image_url(task, index, phase, base);
    let name = |camel: &'static str, snake_name: &'static str| {
        if snake { snake_name } else { camel }
    };
    let mut clip = Map::new();
    let mut put = |key: &str, value: Value| {
        clip.insert(key.to_owned(), value);
    };
    put("id", json!(id));
    put(name("audioUrl", "audio_url"), json!(audio));
    put(name("sourceAudioUrl", "source_audio_url"), json!(audio));
    put(name("streamAudioUrl", "stream_audio_url"), json!(stream));
    put(
        name("sourceStreamAudioUrl", "source_stream_audio_url"),
        json!(stream),
    );
    put(name("imageUrl", "image_url"), json!(image));
    put(name("sourceImageUrl", "source_image_url"), json!(image));
    put("prompt", json!(clips::lyrics(task, index)));
    put(
        name("modelName", "model_name"),
        json!(clips::model_name(&task.model)),
    );
    put("title", json!(task.title));
    put("tags", json!(task.style));
    put("createTime", json!(clips::legacy_time(task.created_at)));
    put(
        "duration",
        if fin {
            json!(task.takes[index].duration_secs())
        } else {
            Value::Null
        },
    );
    Value::Object(clip)
}

fn clips_of(shared: &Host, task: &Task, phase: Phase, snake: bool) -> Vec<Value> {
    if matches!(phase, Phase::New | Phase::Failed) {
        return Vec::new();
    }
    (0..task.clip_ids.len())
        .map(|i| clip(shared, task, i, phase, snake))
        .collect()
}

/// The `record-info` answer for a task in `phase`, its clips where
/// `--record-shape` puts them.
fn record(shared: &Host, task: &Task, phase: Phase) -> Value {
    let (error_code, error_message) = match phase {
        Phase::Failed => {
            let (code, message) = failure(task);
            (json!(code), json!(message))
        }
        _ => (Value::Null, Value::Null),
    };
    let response = match shared.face.record_shape() {
        RecordShape::Camel => {
            json!({"taskId": task.id, "sunoData": clips_of(shared, task, phase, false)})
        }
        RecordShape::Snake => {
            json!({"task_id": task.id, "data": clips_of(shared, task, phase, true)})
        }
    };
    json!({
        "code": 200,
        "msg": "success",
        "data": {
            "taskId": task.id,
            "parentMusicId": "",
            "param": task.request,
            "response": response,
            "status": status(task, phase),
            "type": "GENERATE",
            "operationType": "generate",
            "errorCode": error_code,
            "errorMessage": error_message,
        },
    })
}

async fn record_info(
    State(shared): State<Arc<Host>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let how = shared.face.error_status();
    let answer = (|| {
        let account = shared
            .poll_account(&headers)
            .map_err(|m| error(401, m, how))?;
        let id = query_param(query.as_deref(), "taskId")
            .ok_or_else(|| error(400, "taskId is required", how))?;
        let (task, phase) = shared
            .task_now(&id, account)
            .ok_or_else(|| error(404, "Task not found", how))?;
        Ok(Reply::json(StatusCode::OK, record(&shared, &task, phase)))
    })();
    shared
        .after_latency(answer.unwrap_or_else(|e: Reply| e))
        .await
}

async fn credit(State(shared): State<Arc<Host>>, headers: HeaderMap) -> Response {
    let how = shared.face.error_status();
    let answer = match shared.account_of(&headers, None) {
        Err(m) => error(401, m, how),
        Ok(account) => Reply::json(
            StatusCode::OK,
            json!({"code": 200, "msg": "success", "data": shared.balance(account).0}),
        ),
    };
    shared.after_latency(answer).await
}

/// The callback body for `phase`; see the module docs.
pub(super) fn callback(shared: &Host, task: &Task, phase: Phase) -> Value {
    let (code, message, kind) = match phase {
        Phase::Failed => {
            let (code, message) = failure(task);
            (code, message, "error")
        }
        Phase::First => (200, "First audio generated successfully.", "first"),
        Phase::Complete => (200, "All generated successfully.", "complete"),
        Phase::New | Phase::Lyrics | Phase::Text => {
            (200, "Text generation completed successfully.", "text")
        }
    };
    // The text stage's callback names its clips even in the `Lyrics`
    // phase, where `record-info` already does too.
    let phase_shown = if phase == Phase::Lyrics || phase == Phase::New {
        Phase::Text
    } else {
        phase
    };
    json!({
        "code": code,
        "msg": message,
        "data": {
            "callbackType": kind,
            "task_id": task.id,
            "data": clips_of(shared, task, phase_shown, true),
        },
    })
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
    fn bodies_are_read_into_batchgens_names() {
        let rules = Rules::default();
        let f = read(
            Provider::Sunoapi,
            &body(json!({
                "customMode": true, "instrumental": false, "model": "V4_5PLUS",
                "prompt": "words", "style": "lofi", "title": "T", "negativeTags": "metal",
                "vocalGender": "f", "styleWeight": 0.65, "callBackUrl": "http://127.0.0.1:9/cb",
            })),
            &rules,
        )
        .unwrap();
        assert_eq!(f.model.as_deref(), Some("chirp-v4-5-plus"));
        assert_eq!(f.tags.as_deref(), Some("metal"));
        assert_eq!(f.gender, Some(Gender::Female));
        assert_eq!(f.style_weight, Weight::from_hundredths(65));
        assert_eq!(f.custom_mode, Some(true));
        let refused = |v: Value| read(Provider::Sunoapi, &body(v), &rules).unwrap_err();
        let ok = json!({"customMode": false, "instrumental": false, "model": "V5",
                        "prompt": "rain", "callBackUrl": "http://x.invalid/"});
        assert!(read(Provider::Sunoapi, &body(ok.clone()), &rules).is_ok());
        let mut no_url = ok.clone();
        no_url["callBackUrl"] = json!("");
        assert_eq!(refused(no_url), Refusal::CallbackRequired);
        let mut bad_model = ok.clone();
        bad_model["model"] = json!("chirp-v5");
        assert!(matches!(refused(bad_model), Refusal::Invalid(m) if m.contains("V4_5PLUS")));
        let mut no_mode = ok.clone();
        no_mode.as_object_mut().unwrap().remove("customMode");
        assert_eq!(
            refused(no_mode),
            Refusal::Invalid("customMode is required".into())
        );
        let mut gender = ok;
        gender["vocalGender"] = json!("male");
        assert!(matches!(refused(gender), Refusal::Invalid(_)));
    }

    #[test]
    fn errors_travel_with_http_200_unless_asked() {
        let r = refused(Provider::Sunoapi, &Refusal::NoCredits, ErrorStatus::Body);
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body_code(), Some(429));
        let r = refused(
            Provider::Sunoapi,
            &Refusal::RateLimited { retry_after: 1 },
            ErrorStatus::Http,
        );
        assert_eq!(r.status.as_u16(), 430);
        assert_eq!(
            refused(Provider::Sunoapi, &Refusal::Unavailable, ErrorStatus::Http)
                .status
                .as_u16(),
            455
        );
        assert_eq!(
            refused(Provider::Sunoapi, &Refusal::TooLong, ErrorStatus::Body).body_code(),
            Some(413)
        );
        // kie.ai: the same schema, its own codes.
        let kie = |r: &Refusal| refused(Provider::Kie, r, ErrorStatus::Http).status.as_u16();
        assert_eq!(kie(&Refusal::NoCredits), 402);
        assert_eq!(kie(&Refusal::RateLimited { retry_after: 1 }), 429);
        assert_eq!(kie(&Refusal::CallbackRequired), 422);
    }
}
