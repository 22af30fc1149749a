//! The sandbox's wire faces: how each imitated provider spells the one
//! engine underneath.
//!
//! The engine (the modules beside this one) owns everything a provider's
//! behaviour shares: the order of a submit's checks, faults, the rate
//! limiter, credits, a task's [`Phase`] over time, moderation, the media
//! files, callback delivery and `/sandbox/stats`. A face owns only what its
//! provider's docs spell differently, and no state:
//!
//! | | `udioapi` | `sunoapi` (sunoapi.org, api.box) and `kie` (kie.ai: its own codes, in brackets) | `gcui` (gcui-art/suno-api) | `newapi` (a new-api / one-api relay) |
//! |---|---|---|---|---|
//! | submit | `POST /api/v2/generate`, `/api/generate` | `POST /api/v1/generate` | `POST /api/generate`, `/api/custom_generate` | `POST /suno/submit/music` |
//! | key (account) | Bearer or body `token` | Bearer | none; with several accounts the `Cookie` header picks one | Bearer |
//! | accepted | `{code, message, workId, data.task_id}` | `{code:200, msg, data.taskId}` (32 hex) | a bare array of 2 clips | `{code:"success", message, data: "task_<id>"}` |
//! | errors | `{code, message}`, same HTTP status | `{code, msg, data:null}`, HTTP 200 (or the code, `--error-status http`) | `{error}`, HTTP status | `{code:"<word>", message, data:null}` or `{error:{message, type}}`, HTTP status |
//! | too long / no credits / rate limited | 400 / 402 / 429 | 413 / 429 (402) / 430 (429) | 400 / 402 / 429 | 400 / 403 / 429 |
//! | 500 / 503 faults | 500 JSON / 503 HTML | 500 / 455 maintenance | 500 "Internal server error: …" / 503 HTML | 500 JSON / 503 HTML |
//! | poll | v2 and legacy feeds (`feed`) | `GET /api/v1/generate/record-info?taskId=` | `GET /api/get?ids=a,b` | `GET /suno/fetch/{id}`, batch `POST /suno/fetch {ids}` |
//! | phases | `lifecycle`'s styles | PENDING, TEXT_SUCCESS, FIRST_SUCCESS, SUCCESS, SENSITIVE_WORD_ERROR, GENERATE_AUDIO_FAILED (`--fail-531`) | submitted, queued, streaming, complete, error | task SUBMITTED, QUEUED, IN_PROGRESS, SUCCESS, FAILURE; clips as gcui's |
//! | clips | `response_data[]` | `response.sunoData[]` camelCase, or `response.data[]` snake_case (`--record-shape`) | a bare array | the task's `data[]`, Suno clip objects |
//! | callbacks | bare clip array, `createTime` ISO | `{code, msg, data:{callbackType, task_id, data}}`, codes 200, 400, 531 | none | none |
//! | credits | `GET /api/v2/credits` | `GET /api/v1/generate/credit` (kie: `/api/v1/chat/credit`) | `GET /api/get_limit` | `GET /v1/dashboard/billing/subscription`, `/usage` (dollars) |
//!
//! Every face serves several accounts (`accounts`): the key picks one, a
//! poll sees only its tasks (another account's task is answered as the
//! face answers an unknown id), and the credits route tells its balance.
//!
//! Each face reads its own request bodies into batchgen's [`JobFields`]
//! (its names and its model names read back with its own table, never the
//! client's code), and the engine checks them with the rules for its
//! provider, so the sandbox refuses what batchgen refuses for that
//! provider. Adding a provider is a module here and an arm in each `match`
//! below.

mod gcui;
mod newapi;
mod sunoapi;
mod udioapi;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::config::{ErrorStatus, RecordShape};
use super::faults::Dice;
use super::lifecycle::Phase;
use super::state::Task;
use super::{Host, clips};
use crate::job::{JobFields, Provider};

/// The page a proxy in front of a service serves when it is down.
const UNAVAILABLE_PAGE: &str = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

/// Why the engine refuses a submit, before any face words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No key, or one no account has (gcui: a cookie no account has).
    Unauthorized(&'static str),
    /// The body is unreadable, or its fields break the rules.
    Invalid(String),
    /// A text is over its limit (the rules' `TooLong`).
    TooLong,
    /// sunoapi's required `callBackUrl` is missing.
    CallbackRequired,
    /// The balance cannot cover the task.
    NoCredits,
    /// The rate limiter or the 429 fault.
    RateLimited { retry_after: u64 },
    /// The 500 fault.
    ServerError,
    /// The 503 fault.
    Unavailable,
}

/// What a submit came to: a task, or a refusal.
pub(super) type Outcome = Result<Task, Refusal>;

/// An answer, as a value: the engine counts its status and body code
/// before the state lock is released, then the handler sends it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reply {
    pub status: StatusCode,
    pub body: Body,
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Body {
    Json(Value),
    Html(&'static str),
}

impl Reply {
    pub fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            body: Body::Json(body),
            retry_after: None,
        }
    }

    fn unavailable() -> Reply {
        Reply {
            status: StatusCode::SERVICE_UNAVAILABLE,
            body: Body::Html(UNAVAILABLE_PAGE),
            retry_after: None,
        }
    }

    fn retry_after(mut self, secs: Option<u64>) -> Reply {
        self.retry_after = secs;
        self
    }

    /// The body's numeric `code`, if it has one.
    pub fn body_code(&self) -> Option<u16> {
        match &self.body {
            Body::Json(v) => v.get("code")?.as_u64()?.try_into().ok(),
            Body::Html(_) => None,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Body::Json(v) => (self.status, axum::Json(v)).into_response(),
            Body::Html(page) => {
                (self.status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
            }
        };
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// One provider's wire face; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Face {
    provider: Provider,
    error_status: ErrorStatus,
    record_shape: RecordShape,
}

impl Face {
    pub fn new(provider: Provider, error_status: ErrorStatus, record_shape: RecordShape) -> Face {
        Face {
            provider,
            error_status,
            record_shape,
        }
    }

    /// Where record-info puts its clips (sunoapi only).
    pub fn record_shape(self) -> RecordShape {
        self.record_shape
    }

    pub fn provider(self) -> Provider {
        self.provider
    }

    /// How errors carry their code (sunoapi only).
    pub fn error_status(self) -> ErrorStatus {
        self.error_status
    }

    /// This face's API routes (submit, poll, credits); the engine adds the
    /// media and `/sandbox` routes.
    pub fn routes(self) -> Router<Arc<Host>> {
        match self.provider {
            Provider::Udioapi => udioapi::routes(),
            Provider::Sunoapi => sunoapi::routes(),
            Provider::Kie => sunoapi::kie_routes(),
            Provider::Gcui => gcui::routes(),
            Provider::Newapi => newapi::routes(),
        }
    }

    /// Whether requests must present the key.
    pub fn needs_key(self) -> bool {
        self.provider.needs_key()
    }

    /// A submit body's fields in batchgen's names, before the rules.
    pub fn read(
        self,
        path: &str,
        body: &Map<String, Value>,
        rules: &crate::job::Rules,
    ) -> Result<JobFields, Refusal> {
        match self.provider {
            Provider::Udioapi => udioapi::read(body),
            Provider::Sunoapi | Provider::Kie => sunoapi::read(self.provider, body, rules),
            Provider::Gcui => gcui::read(path, body, rules),
            Provider::Newapi => newapi::read(body, rules),
        }
    }

    /// The id a new task with these clips gets. gcui has none of its own:
    /// its two clip ids, as `/api/get?ids=` takes them, stand for it.
    pub fn task_id(self, dice: &mut Dice, clip_ids: &[String; 2]) -> String {
        match self.provider {
            Provider::Udioapi => dice.task_id(),
            Provider::Sunoapi | Provider::Kie => dice.hex_task_id(),
            Provider::Gcui => clip_ids.join(","),
            Provider::Newapi => format!("task_{}", dice.hex_task_id()),
        }
    }

    /// The answer to a submit.
    pub fn reply(self, shared: &Host, outcome: &Outcome) -> Reply {
        let refusal = match outcome {
            Ok(task) => {
                return match self.provider {
                    Provider::Udioapi => udioapi::accepted(task),
                    Provider::Sunoapi | Provider::Kie => sunoapi::accepted(task),
                    Provider::Gcui => gcui::accepted(shared, task),
                    Provider::Newapi => newapi::accepted(task),
                };
            }
            Err(refusal) => refusal,
        };
        let retry_after = match refusal {
            Refusal::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        };
        match self.provider {
            Provider::Udioapi => udioapi::refused(refusal),
            Provider::Sunoapi | Provider::Kie => {
                sunoapi::refused(self.provider, refusal, self.error_status)
            }
            Provider::Gcui => gcui::refused(refusal),
            Provider::Newapi => newapi::refused(refusal),
        }
        .retry_after(retry_after)
    }

    /// An error answer of a read-side route (poll, credits, unknown path)
    /// in this face's shape.
    pub fn error(self, status: StatusCode, message: &str) -> Reply {
        match self.provider {
            Provider::Udioapi => udioapi::error(status, message),
            Provider::Sunoapi | Provider::Kie => {
                sunoapi::error(status.as_u16(), message, self.error_status)
            }
            Provider::Gcui => gcui::error(status, message),
            Provider::Newapi => newapi::error(status, message),
        }
    }

    /// The answer to a path or method no route takes: with its HTTP
    /// status on every face (a framework answers it, not the API).
    pub fn no_route(self, status: StatusCode, message: &str) -> Reply {
        match self.provider {
            Provider::Sunoapi | Provider::Kie => {
                sunoapi::error(status.as_u16(), message, ErrorStatus::Http)
            }
            Provider::Udioapi | Provider::Gcui | Provider::Newapi => self.error(status, message),
        }
    }

    /// The callback body for `phase`, if this face sends callbacks.
    pub fn callback(self, shared: &Host, task: &Task, phase: Phase) -> Option<Value> {
        match self.provider {
            Provider::Udioapi => Some(Value::Array(clips::callback(
                &shared.lifecycle,
                task,
                phase,
                &shared.base_url,
            ))),
            Provider::Sunoapi | Provider::Kie => Some(sunoapi::callback(shared, task, phase)),
            Provider::Gcui | Provider::Newapi => None,
        }
    }

    /// Whether clip `index`'s final mp3 exists in `phase`: at the end, and
    /// on sunoapi the first clip already at FIRST_SUCCESS ("first track
    /// generation completed").
    pub fn is_final(self, phase: Phase, index: usize) -> bool {
        phase == Phase::Complete
            || (matches!(self.provider, Provider::Sunoapi | Provider::Kie)
                && phase == Phase::First
                && index == 0)
    }
}
