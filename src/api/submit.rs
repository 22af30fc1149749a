//! The API client: one submit, one answer, classified.
//!
//! This module knows HTTP and the API's response shapes; it does not retry or
//! wait. It turns every way a request can end into a [`SubmitError`] whose
//! [`SubmitError::class`] tells the pool what to do next, so the retry policy
//! lives in one place ([`crate::engine::submit::pool`]) and the wire details in another.
//!
//! Response bodies are treated as hostile: at most [`MAX_BODY`] bytes are
//! read, and a body that is not the JSON we expect becomes a row error, never
//! a panic.
//!
//! # Redirects
//! API calls follow **no** redirect. reqwest would follow a 301/302/303 on
//! `POST /api/generate` as a bodyless `GET`, and whatever that answered
//! (a web page, a 401 from a login wall) would be read as the submit's
//! answer: a made-up task ID recorded as `submitted`, or a valid key taken
//! for a refused one. A 3xx is [`SubmitError::Redirect`], `HTTP 301 to
//! <Location>: fix --base-url` (the Location shown by
//! [`crate::util::redact::url`]), whose class [`ErrorClass::Misdirected`] stops the
//! run as a configuration error: every row would get the same answer, and
//! a redirect is not the server acting on the request, so the rows go back
//! to `pending` for the run after the base URL is fixed.
//!
//! # Missing endpoints
//! Hosts of the same backend serve different generate paths (API.md: "some
//! hosts serve only one of the two"). A 404 or 405 to the POST is not about
//! the row: every row sent there would get it, and 1000 rows would fail one
//! by one, each needing `--retry-failed`. It is [`SubmitError::NoEndpoint`]
//! (class [`ErrorClass::Misdirected`]): the run stops at the first one as a
//! configuration error naming the setting to change, and the row goes back
//! to `pending`. Only the HTTP status counts; an error `code` 404 in a 200
//! body stays a row error. The credits call is not affected: a host without
//! that endpoint is not a problem.
//!
//! # Task IDs
//! A task ID is kept as the exact text the server sent: a numeric `workId`
//! is read as its raw JSON text (serde_json would turn
//! `123456789012345678901234567890` into `1.2345678901234568e+29`), and only
//! whole numbers are accepted as numbers. An ID goes into a CSV cell and
//! later into feed URLs, so it must be 1 to [`MAX_TASK_ID`] printable ASCII
//! characters (no space, no control character) and hold no known secret
//! (a server echoing the key must not write it into the results file). An
//! ID the server sent that breaks these rules is not silently replaced by
//! the other field: the answer is [`SubmitError::Unexpected`], so the row
//! is `unknown` (a task may exist) with the reason in its `error`.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use url::Url;

use crate::settings::GeneratePaths;

use super::http::{self, bearer, endpoint};
use crate::job::Job;
use crate::util::redact::Secret;

/// Responses larger than this are cut off: a submit answer is a few hundred
/// bytes, so anything bigger is a misbehaving proxy or server.
pub const MAX_BODY: usize = 64 * 1024;

/// Longest `Retry-After` honoured. A server asking for an hour is more likely
/// wrong than right; the pool's own backoff takes over from there.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Longest task ID kept (see the module docs); real ones are ~20 chars.
pub const MAX_TASK_ID: usize = 200;

/// How the API client identifies itself.
/// A submission the API accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub task_id: String,
    pub http_status: u16,
}

/// What the pool should do about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient, and the server did not act on it: try again later.
    Retry,
    /// The server may have created (and billed) the task: do not resend
    /// unless the user opted in.
    Ambiguous,
    /// The key or account is refused: every row would fail, stop the run.
    Fatal,
    /// The API answered with a redirect: the base URL is wrong, every row
    /// would get the same answer. Stop the run as a configuration error.
    Misdirected,
    /// This row is wrong: fail it, carry on with the others.
    Row,
}

/// Why a submission did not return a task ID.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The server answered with an error status.
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The connection could not be made: nothing was sent.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The request may have reached the server but no answer came back.
    #[error(
        "{0}; the request may have been accepted (the API has no idempotency key, so it was not resent)"
    )]
    Lost(String),
    /// A read (`GET /api/v2/credits`) got no whole answer. Nothing was
    /// created, so unlike [`SubmitError::Lost`] nothing may have been
    /// billed.
    #[error("{0}")]
    NoAnswer(String),
    /// The server answered 2xx but without a usable task ID.
    #[error("HTTP {status}: unexpected answer: {detail}")]
    Unexpected { status: u16, detail: String },
    /// The server answered 3xx. Never followed (see the module docs).
    #[error("HTTP {status} to {location}: fix --base-url")]
    Redirect {
        status: u16,
        /// Where it pointed, for display ([`crate::util::redact::url`]).
        location: String,
    },
    /// The host has no such generate endpoint (HTTP 404 or 405 to the
    /// POST): every row sent there would get the same answer. See the
    /// module docs, "Missing endpoints".
    #[error(
        "HTTP {status} to POST {path}: this host does not serve that endpoint ({message}); set {setting} to the path it serves (api/v2/generate or api/generate)"
    )]
    NoEndpoint {
        status: u16,
        /// The path posted to.
        path: String,
        /// The setting that chose it: `--generate-path` or
        /// `--callback-generate-path`, with their other spellings.
        setting: &'static str,
        message: String,
    },
}

impl SubmitError {
    pub fn class(&self) -> ErrorClass {
        match self {
            SubmitError::Status { status, .. } => match status {
                401..=403 => ErrorClass::Fatal,
                429 | 500 | 502 | 503 | 504 => ErrorClass::Retry,
                _ => ErrorClass::Row,
            },
            SubmitError::Connect(_) | SubmitError::NoAnswer(_) => ErrorClass::Retry,
            SubmitError::Lost(_) => ErrorClass::Ambiguous,
            // A 2xx without an ID may still have created a task.
            SubmitError::Unexpected { .. } => ErrorClass::Ambiguous,
            SubmitError::Redirect { .. } | SubmitError::NoEndpoint { .. } => {
                ErrorClass::Misdirected
            }
        }
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            SubmitError::Status { status, .. }
            | SubmitError::Unexpected { status, .. }
            | SubmitError::Redirect { status, .. }
            | SubmitError::NoEndpoint { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What the server said, without the `HTTP <status>:` this error's
    /// `Display` puts in front (for messages that name the status
    /// themselves, such as [`crate::program::exit::Error::Refused`]).
    pub fn server_message(&self) -> String {
        match self {
            SubmitError::Status { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SubmitError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub fn is_rate_limited(&self) -> bool {
        self.http_status() == Some(429)
    }
}

/// The account's balance, from `GET /api/v2/credits`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Balance {
    pub credits: f64,
    pub used_credits: Option<f64>,
}

/// A client for one API host and key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// Where jobs without a `callback_url` go (see [`GeneratePaths`]).
    generate: Url,
    /// Where jobs with a `callback_url` go.
    generate_callback: Url,
    credits: Url,
    /// `Bearer <key>`, built once (see [`bearer`]).
    auth: HeaderValue,
}

impl Client {
    /// # Errors
    /// When the HTTP client cannot be built (TLS backend failure).
    pub fn new(base_url: &Url, key: Secret, timeout: Duration) -> anyhow::Result<Client> {
        let http = http::builder(timeout)
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let paths = GeneratePaths::default();
        Ok(Client {
            http,
            generate: endpoint(base_url, &paths.plain),
            generate_callback: endpoint(base_url, &paths.callback),
            credits: endpoint(base_url, "api/v2/credits"),
            auth: bearer(&key)?,
        })
    }

    /// Submits to `paths` under the base URL instead of the default ones.
    pub fn with_generate_paths(mut self, base_url: &Url, paths: &GeneratePaths) -> Client {
        self.generate = endpoint(base_url, &paths.plain);
        self.generate_callback = endpoint(base_url, &paths.callback);
        self
    }

    /// The URL a job is submitted to: the callback endpoint when it has a
    /// `callback_url`, the plain one otherwise.
    pub fn generate_url(&self, job: &Job) -> &Url {
        if GeneratePaths::takes_callback_path(job) {
            &self.generate_callback
        } else {
            &self.generate
        }
    }

    /// Asks for the balance: a cheap way to check the key before a run.
    ///
    /// # Errors
    /// As for [`Client::submit`]; an answer without `data.credits` is
    /// [`SubmitError::Unexpected`].
    pub async fn balance(&self) -> Result<Balance, SubmitError> {
        let response = self
            .http
            .get(self.credits.clone())
            .header(AUTHORIZATION, self.auth.clone())
            .send()
            .await
            .map_err(|e| match classify_send_error(e) {
                SubmitError::Lost(detail) => SubmitError::NoAnswer(detail),
                other => other,
            })?;
        let status = response.status();
        if status.is_redirection() {
            return Err(redirect(status, response.headers(), &self.credits));
        }
        let body = match read_capped(response).await {
            Ok(body) => body,
            // A cut 2xx body is no balance, and must not read as a host
            // without `data.credits`; an error status says enough.
            Err(e) if status.is_success() => {
                return Err(SubmitError::NoAnswer(format!(
                    "HTTP {status}: {}",
                    cut_off(&e)
                )));
            }
            Err(_) => Vec::new(),
        };
        parse_balance(status, &body)
    }

    /// Sends one job. Never retries: see [`crate::engine::submit::pool`].
    pub async fn submit(&self, job: &Job) -> Result<Accepted, SubmitError> {
        self.submit_announced(job, None).await
    }

    /// Sends one job, and says on `leaving` the moment its bytes are handed
    /// to the connection for writing (after any connecting), so the pool can
    /// pace on when requests really leave (see [`crate::engine::submit::pool`]). If the
    /// request fails before that, `leaving` is dropped unsent.
    pub async fn submit_announced(
        &self,
        job: &Job,
        leaving: Option<oneshot::Sender<()>>,
    ) -> Result<Accepted, SubmitError> {
        let body = serde_json::to_vec(job.body())
            .map_err(|e| SubmitError::Connect(format!("could not encode the job: {e}")))?;
        let response = self
            .http
            .post(self.generate_url(job).clone())
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(reqwest::Body::wrap(Announced {
                data: Some(body.into()),
                leaving,
            }))
            .send()
            .await
            .map_err(classify_send_error)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(redirect(status, response.headers(), &self.generate));
        }
        let retry_after = retry_after(response.headers());
        let body = read_capped(response).await;
        let body = match body {
            Ok(body) => body,
            Err(e) if status.is_success() => {
                return Err(SubmitError::Lost(format!("HTTP {status}: {}", cut_off(&e))));
            }
            Err(_) => Vec::new(),
        };
        let url = self.generate_url(job);
        if matches!(status.as_u16(), 404 | 405) {
            let setting = if std::ptr::eq(url, &self.generate_callback) {
                "--callback-generate-path ([run] callback_generate_path, BATCHGEN_CALLBACK_GENERATE_PATH)"
            } else {
                "--generate-path ([run] generate_path, BATCHGEN_GENERATE_PATH)"
            };
            return Err(no_endpoint(status, &body, url, setting));
        }
        parse_answer(status, &body, retry_after)
    }
}

/// A 404/405 to a generate endpoint: the path is wrong for this host, not
/// the row (module docs, "Missing endpoints").
fn no_endpoint(status: StatusCode, body: &[u8], url: &Url, setting: &'static str) -> SubmitError {
    SubmitError::NoEndpoint {
        status: status.as_u16(),
        path: url.path().to_owned(),
        setting,
        message: error_status(status, body, None).server_message(),
    }
}

/// A request body that announces when the connection takes its bytes.
///
/// hyper polls the body right after writing the head into its buffer and
/// flushes both together, so the first poll is, to within microseconds, the
/// moment the request leaves for the server.
struct Announced {
    data: Option<bytes::Bytes>,
    leaving: Option<oneshot::Sender<()>>,
}

impl http_body::Body for Announced {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        if let Some(leaving) = self.leaving.take() {
            let _ = leaving.send(());
        }
        std::task::Poll::Ready(self.data.take().map(|d| Ok(http_body::Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        // Exact, so the request carries Content-Length, not chunks.
        http_body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// A 3xx answer to a request for `url`, with where it pointed (relative
/// locations resolved, secrets masked).
fn redirect(status: StatusCode, headers: &reqwest::header::HeaderMap, url: &Url) -> SubmitError {
    SubmitError::Redirect {
        status: status.as_u16(),
        location: redirect_location(headers, url),
    }
}

/// Where a 3xx answer to a request for `url` pointed, for a message: the
/// `Location` resolved against `url`, with secrets masked. The feed poller
/// words its redirects with it too, so both say the same thing.
pub fn redirect_location(headers: &reqwest::header::HeaderMap, url: &Url) -> String {
    match headers.get(reqwest::header::LOCATION) {
        None => "no Location".to_owned(),
        Some(value) => match value.to_str().ok().and_then(|v| url.join(v.trim()).ok()) {
            Some(to) => crate::util::redact::url(&to),
            None => "an unreadable Location".to_owned(),
        },
    }
}

/// Reads at most [`MAX_BODY`] bytes of the body.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY {
            break;
        }
    }
    Ok(body)
}

/// Why an answer's body stopped before its end, naming a timeout as one
/// (reqwest's own text, "error decoding response body", hides it).
fn cut_off(e: &reqwest::Error) -> String {
    let why = if e.is_timeout() {
        "the whole answer did not arrive before the timeout"
    } else {
        "connection lost while reading the answer"
    };
    format!("{why} ({})", error_chain(e))
}

fn classify_send_error(e: reqwest::Error) -> SubmitError {
    // reqwest reports a failed connect (refused, DNS, TLS handshake, connect
    // timeout) as is_connect: the request never left. Anything else after
    // that point (timeout, reset, closed) may have reached the server.
    let detail = error_chain(&e);
    if e.is_connect() {
        SubmitError::Connect(detail)
    } else if e.is_timeout() {
        SubmitError::Lost(format!("no answer before the timeout ({detail})"))
    } else {
        SubmitError::Lost(format!("connection lost ({detail})"))
    }
}

/// The error and its sources on one line, without the URL's query (none is
/// ever sent, but keep logs clean of anything request-shaped).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !parts.iter().any(|p| p.contains(&s_text)) {
            parts.push(s_text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The API's answer envelope. Every field optional: hosts differ. The IDs
/// stay raw JSON text until [`task_id`] reads them (see the module docs).
#[derive(Debug, Deserialize)]
struct Answer<'a> {
    code: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
    #[serde(rename = "workId", borrow)]
    work_id: Option<&'a RawValue>,
    /// Raw, so that a `data` of another shape (`[]`, a string) does not
    /// hide a good `workId`.
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct AnswerData<'a> {
    #[serde(borrow)]
    task_id: Option<&'a RawValue>,
}

/// Turns a status and body into a task ID or an error.
pub fn parse_answer(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<Accepted, SubmitError> {
    if !status.is_success() {
        return Err(error_status(status, body, retry_after));
    }
    let answer: Option<Answer> = serde_json::from_slice(body).ok();
    let Some(answer) = answer else {
        return Err(SubmitError::Unexpected {
            status: status.as_u16(),
            detail: format!("not the JSON expected: {}", body_excerpt(body, status)),
        });
    };
    let data_task_id = answer
        .data
        .and_then(|d| serde_json::from_str::<AnswerData>(d.get()).ok())
        .and_then(|d| d.task_id);
    let unusable = |field: &str, why: String| SubmitError::Unexpected {
        status: status.as_u16(),
        detail: format!("{field} is not a usable task ID: {why}"),
    };
    let task_id = match answer.work_id.map(task_id).transpose() {
        Err(why) => return Err(unusable("workId", why)),
        Ok(Some(Some(id))) => Some(id),
        Ok(_) => data_task_id
            .map(task_id)
            .transpose()
            .map_err(|why| unusable("data.task_id", why))?
            .flatten(),
    };
    if let Some(task_id) = task_id {
        return Ok(Accepted {
            task_id,
            http_status: status.as_u16(),
        });
    }
    // Some hosts answer HTTP 200 with an error code in the envelope.
    let code = answer.code.as_ref().and_then(|c| match c {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    });
    let message = answer.message.as_ref().map(value_text).unwrap_or_default();
    match code {
        Some(code @ 400..=599) => Err(SubmitError::Status {
            status: code as u16,
            message,
            retry_after,
        }),
        _ => Err(SubmitError::Unexpected {
            status: status.as_u16(),
            detail: format!("no workId or data.task_id in the answer ({message:?})"),
        }),
    }
}

/// A task ID from its raw JSON: `Ok(None)` when absent (`null`, `""`),
/// `Err` with the reason when the server sent one that cannot be kept
/// (see the module docs for the rules).
fn task_id(raw: &RawValue) -> Result<Option<String>, String> {
    let text = raw.get().trim();
    let id = if text == "null" {
        return Ok(None);
    } else if text.starts_with('"') {
        let s: String = serde_json::from_str(text).map_err(|e| e.to_string())?;
        s.trim().to_owned()
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        // The digits exactly as sent, however many.
        text.to_owned()
    } else if text.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        return Err(format!(
            "the number {} is not a whole number",
            one_line(text, 40)
        ));
    } else {
        return Err(format!("expected a string, got {}", one_line(text, 40)));
    };
    if id.is_empty() {
        return Ok(None);
    }
    let length = id.chars().count();
    if length > MAX_TASK_ID {
        return Err(format!("{length} characters long (at most {MAX_TASK_ID})"));
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "holds {c:?} (only printable ASCII without spaces is kept): {:?}",
            id.chars().take(40).collect::<String>()
        ));
    }
    if crate::util::redact::holds_secret(&id) {
        return Err("it holds a secret of this run (the server echoed it)".into());
    }
    Ok(Some(id))
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => one_line(s, 300),
        other => one_line(&other.to_string(), 300),
    }
}

/// A short, single-line rendering of a body that is not the JSON expected.
fn body_excerpt(body: &[u8], status: StatusCode) -> String {
    let text = String::from_utf8_lossy(body);
    let text = one_line(&text, 120);
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("empty answer")
            .to_owned()
    } else {
        format!("non-JSON answer: {text}")
    }
}

fn one_line(s: &str, max_chars: usize) -> String {
    let mut out: String = s
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars + 1)
        .collect();
    if out.chars().count() > max_chars {
        out = out.chars().take(max_chars).collect::<String>() + "…";
    }
    out
}

/// An error status with the server's `message`, or an excerpt of a body
/// that is not the documented `{"code", "message"}` JSON.
fn error_status(status: StatusCode, body: &[u8], retry_after: Option<Duration>) -> SubmitError {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<serde_json::Value>,
    }
    let message = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.message)
        .as_ref()
        .map(value_text)
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| body_excerpt(body, status));
    SubmitError::Status {
        status: status.as_u16(),
        message,
        retry_after,
    }
}

/// Turns a credits answer into a balance. Numbers may come as strings.
pub fn parse_balance(status: StatusCode, body: &[u8]) -> Result<Balance, SubmitError> {
    if !status.is_success() {
        return Err(error_status(status, body, None));
    }
    let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let number = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let data = value.as_ref().and_then(|v| v.get("data"));
    let credits = data.and_then(|d| d.get("credits")).and_then(number);
    match credits {
        Some(credits) => Ok(Balance {
            credits,
            used_credits: data.and_then(|d| d.get("used_credits")).and_then(number),
        }),
        None => Err(SubmitError::Unexpected {
            status: status.as_u16(),
            detail: format!(
                "no data.credits in the answer: {}",
                body_excerpt(body, status)
            ),
        }),
    }
}

/// A response's `Retry-After`, if present and readable (see
/// [`parse_retry_after`]).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// Parses `Retry-After`: delay-seconds or an HTTP date, clamped to
/// [`MAX_RETRY_AFTER`]. A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return None;
        }
        Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Result<Accepted, SubmitError> {
        parse_answer(StatusCode::OK, body.as_bytes(), None)
    }

    #[test]
    fn the_authorization_header_is_checked_once_and_kept_out_of_debug_output() {
        let value = bearer(&Secret::new("sk-Live_123.abc")).unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer sk-Live_123.abc");
        assert!(value.is_sensitive());
        for bad in ["sk-\u{e9}", "sk live", "sk-\u{1}", "sk-\u{a0}x"] {
            assert!(bearer(&Secret::new(bad)).is_err(), "{bad:?}");
        }
        let base = Url::parse("http://127.0.0.1:9/").unwrap();
        let client =
            Client::new(&base, Secret::new("sk-secret-9"), Duration::from_secs(1)).unwrap();
        assert!(!format!("{client:?}").contains("sk-secret-9"));
    }

    #[test]
    fn task_id_from_work_id_then_data() {
        let both = r#"{"code":200,"message":"success","workId":"w1","data":{"task_id":"t1"}}"#;
        assert_eq!(ok(both).unwrap().task_id, "w1");
        assert_eq!(ok(r#"{"data":{"task_id":"t2"}}"#).unwrap().task_id, "t2");
        assert_eq!(
            ok(r#"{"workId":"","data":{"task_id":"t3"}}"#)
                .unwrap()
                .task_id,
            "t3"
        );
        assert_eq!(ok(r#"{"workId":12345}"#).unwrap().task_id, "12345");
    }

    #[test]
    fn task_ids_are_the_text_the_server_sent() {
        let big = r#"{"workId":123456789012345678901234567890}"#;
        assert_eq!(ok(big).unwrap().task_id, "123456789012345678901234567890");
        let nested = r#"{"data":{"task_id":98765432109876543210987654321}}"#;
        assert_eq!(ok(nested).unwrap().task_id, "98765432109876543210987654321");
        // A `data` of another shape does not hide a good workId.
        assert_eq!(ok(r#"{"workId":"w1","data":[]}"#).unwrap().task_id, "w1");
        assert_eq!(
            ok(r#"{"workId":"  padded-1 "}"#).unwrap().task_id,
            "padded-1"
        );
    }

    #[test]
    fn task_ids_that_cannot_be_kept_make_the_answer_unexpected() {
        let long = format!(r#"{{"workId":"{}"}}"#, "a".repeat(MAX_TASK_ID + 1));
        let cases = [
            (r#"{"workId":1.5e29}"#, "not a whole number"),
            (r#"{"workId":-12}"#, "not a whole number"),
            (r#"{"workId":"a\u0007b"}"#, r"holds '\u{7}'"),
            (r#"{"workId":"a\nb"}"#, r"holds '\n'"),
            (r#"{"workId":{"x":1}}"#, "expected a string"),
            (r#"{"workId":"","data":{"task_id":"t\tx"}}"#, "data.task_id"),
            (long.as_str(), "201 characters long"),
        ];
        for (body, why) in cases {
            let e = ok(body).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Ambiguous, "{body}");
            let text = e.to_string();
            assert!(
                text.contains("not a usable task ID") && text.contains(why),
                "{body}: {text}"
            );
            assert!(text.len() < 300 && !text.contains('\n'), "{text}");
        }
        // A server that echoes a secret of this run does not get it into
        // the results file.
        let key = Secret::new("sk-echoed-key-0042");
        let e = ok(&format!(r#"{{"workId":"{}"}}"#, key.expose())).unwrap_err();
        assert!(!e.to_string().contains(key.expose()), "{e}");
    }

    #[test]
    fn redirects_name_where_they_point_without_secrets() {
        let url = Url::parse("http://127.0.0.1:9/api/generate").unwrap();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LOCATION,
            HeaderValue::from_static("https://user:pw@new.example/api/generate?token=abc"),
        );
        let e = redirect(StatusCode::MOVED_PERMANENTLY, &headers, &url);
        assert_eq!(
            e.to_string(),
            "HTTP 301 to https://new.example/api/generate?token=<redacted>: fix --base-url"
        );
        assert_eq!(e.class(), ErrorClass::Misdirected);
        assert_eq!(e.http_status(), Some(301));
        headers.insert(reqwest::header::LOCATION, HeaderValue::from_static("/v2/x"));
        let e = redirect(StatusCode::FOUND, &headers, &url);
        assert_eq!(
            e.to_string(),
            "HTTP 302 to http://127.0.0.1:9/v2/x: fix --base-url"
        );
        let e = redirect(StatusCode::SEE_OTHER, &Default::default(), &url);
        assert_eq!(e.to_string(), "HTTP 303 to no Location: fix --base-url");
    }

    #[test]
    fn success_without_id_is_ambiguous() {
        for body in [
            "{}",
            "[]",
            "<html>",
            "",
            r#"{"workId":null,"data":[]}"#,
            r#"{"workId":"a b"}"#,
        ] {
            let e = ok(body).unwrap_err();
            assert_eq!(e.class(), ErrorClass::Ambiguous, "{body:?}");
        }
    }

    #[test]
    fn error_envelope_inside_200_is_an_error() {
        let e = ok(r#"{"code":400,"message":"Topic too long."}"#).unwrap_err();
        assert_eq!(e.http_status(), Some(400));
        assert_eq!(e.to_string(), "HTTP 400: Topic too long.");
    }

    #[test]
    fn status_classes() {
        let class = |status: u16, body: &str| {
            parse_answer(StatusCode::from_u16(status).unwrap(), body.as_bytes(), None)
                .unwrap_err()
                .class()
        };
        assert_eq!(
            class(400, r#"{"code":400,"message":"Topic too long."}"#),
            ErrorClass::Row
        );
        assert_eq!(class(401, "{}"), ErrorClass::Fatal);
        assert_eq!(class(402, "{}"), ErrorClass::Fatal);
        assert_eq!(class(403, "{}"), ErrorClass::Fatal);
        assert_eq!(class(404, "{}"), ErrorClass::Row);
        for s in [429, 500, 502, 503, 504] {
            assert_eq!(class(s, "<html>busy</html>"), ErrorClass::Retry);
        }
        assert_eq!(class(501, "{}"), ErrorClass::Row);
    }

    #[test]
    fn non_json_error_bodies_become_short_messages() {
        let big = format!("<html>{}</html>", "x\n".repeat(100_000));
        let e = parse_answer(StatusCode::SERVICE_UNAVAILABLE, big.as_bytes(), None).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("HTTP 503: non-JSON answer: <html>"),
            "{text}"
        );
        assert!(text.chars().count() < 200 && !text.contains('\n'));
        let e = parse_answer(StatusCode::BAD_GATEWAY, b"", None).unwrap_err();
        assert_eq!(e.to_string(), "HTTP 502: Bad Gateway");
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn balances_parse_leniently() {
        let ok = |b: &str| parse_balance(StatusCode::OK, b.as_bytes());
        let b = ok(r#"{"code":200,"message":"success","data":{"credits":195,"used_credits":5}}"#)
            .unwrap();
        assert_eq!((b.credits, b.used_credits), (195.0, Some(5.0)));
        assert_eq!(ok(r#"{"data":{"credits":"12.5"}}"#).unwrap().credits, 12.5);
        assert!(ok(r#"{"data":{}}"#).is_err());
        assert!(ok("<html>").is_err());
        let refused = parse_balance(
            StatusCode::UNAUTHORIZED,
            br#"{"code":401,"message":"bad key"}"#,
        );
        assert_eq!(refused.unwrap_err().class(), ErrorClass::Fatal);
    }

    #[test]
    fn endpoints_keep_a_path_prefix() {
        let u = |s: &str| endpoint(&Url::parse(s).unwrap(), "api/generate").to_string();
        assert_eq!(u("https://udioapi.pro"), "https://udioapi.pro/api/generate");
        assert_eq!(u("http://127.0.0.1:9/"), "http://127.0.0.1:9/api/generate");
        assert_eq!(u("https://h/proxy"), "https://h/proxy/api/generate");
    }

    #[test]
    fn jobs_with_a_callback_go_to_the_callback_endpoint() {
        let base = Url::parse("https://h/proxy").unwrap();
        let client = Client::new(&base, Secret::new("k"), Duration::from_secs(1)).unwrap();
        let mut job = Job::new(
            crate::job::JobFields {
                prompt: Some("p".into()),
                ..Default::default()
            },
            1,
        );
        assert_eq!(
            client.generate_url(&job).as_str(),
            "https://h/proxy/api/v2/generate"
        );
        job.fields.callback_url = Some("https://example.com/hook".into());
        assert_eq!(
            client.generate_url(&job).as_str(),
            "https://h/proxy/api/generate"
        );
        let paths = GeneratePaths {
            plain: "gen".into(),
            callback: "gen/cb".into(),
        };
        let client = client.with_generate_paths(&base, &paths);
        assert_eq!(client.generate_url(&job).as_str(), "https://h/proxy/gen/cb");
        job.fields.callback_url = None;
        assert_eq!(client.generate_url(&job).as_str(), "https://h/proxy/gen");
    }
}
