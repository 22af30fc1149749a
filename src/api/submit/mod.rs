//! The API client: one submit, one answer, classified.
//!
//! This module knows HTTP; the provider's wire knows the response shapes
//! ([`crate::api::provider`]). It does not retry or
//! wait. It turns every way a request can end into a [`SubmitError`] whose
//! [`SubmitError::class`] tells the pool what to do next, so the retry policy
//! lives in one place ([`crate::engine::submit::pool`]) and the wire details in another.
//!
//! Response bodies are treated as hostile: at most `transport::MAX_BODY` (64 KiB) bytes are
//! read, and a body that is not the JSON we expect becomes a row error, never
//! a panic.
//!
//! Its parts: building and sending the request ([`Client`], here), the
//! exchange under it: send errors, capped bodies, redirects (`transport`),
//! and the balance (`credits`). The outcome's class and the task ID rules
//! are [`crate::api::answer`]'s, re-exported here.
//!
//! # Redirects
//! API calls follow **no** redirect. reqwest would follow a 301/302/303 on
//! `POST /api/generate` as a bodyless `GET`, and whatever that answered
//! (a web page, a 401 from a login wall) would be read as the submit's
//! answer: a made-up task ID recorded as `submitted`, or a valid key taken
//! for a refused one. A 3xx is [`HostError::Redirect`](crate::api::answer::HostError::Redirect), `HTTP 301 to
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
//! configuration error naming the setting to change (for a provider other
//! than udioapi: `--provider` and `--base-url`), and the row goes back
//! to `pending`. Only the HTTP status counts; an error `code` 404 in a 200
//! body stays a row error. sunoapi's own 405 (rate limited, in its
//! envelope) is not a missing endpoint ([`Wire::no_endpoint`]). The credits call is not affected: a host without
//! that endpoint is not a problem.
//!
//! # Task IDs
//! The rules a task ID must pass, for every provider, are
//! [`crate::api::answer`]'s ("Task IDs").
//!
//! # Providers
//! A [`Client`] speaks one provider's wire ([`crate::api::provider::Wire`]):
//! [`Client::new`] udioapi's, [`Client::with_provider`] any other's. The
//! wire says where a job goes, what its body is and what the answers mean;
//! the exchange (timeouts, caps, redirects, missing endpoints, the key) is
//! the same for all of them. An empty key sends no `Authorization` header
//! (a self-hosted gcui-art/suno-api takes none; the program decides when an
//! empty key is allowed).

mod credits;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use url::Url;

use super::http::{self, bearer, endpoint, retry_after};
use crate::api::answer::error_status;
use crate::api::provider::{Wire, wire};
use crate::job::{Catalogue, Job, Provider};
use crate::settings::GeneratePaths;
use crate::util::redact::Secret;
use transport::{classify_send_error, cut_off, read_capped, redirect};

pub use crate::api::answer::{
    Accepted, ErrorClass, MAX_TASK_ID, Meaning, SubmitError, parse_answer,
};
pub use credits::{Balance, parse_balance};

/// A client for one API host, key and provider.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// udioapi's generate paths (plain and callback); the other providers
    /// have theirs in their wire.
    paths: GeneratePaths,
    wire: &'static dyn Wire,
    credits: Url,
    /// `Bearer <key>`, built once (see [`bearer`]); `None` for an empty key.
    auth: Option<HeaderValue>,
    /// What each job's `model` is sent as.
    models: Arc<Catalogue>,
}

/// The `Authorization` value of `key`; none for an empty key.
pub(crate) fn authorization(key: &Secret) -> anyhow::Result<Option<HeaderValue>> {
    if key.expose().is_empty() {
        return Ok(None);
    }
    bearer(key).map(Some)
}

impl Client {
    /// A client speaking udioapi's wire; see [`Client::with_provider`].
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS backend failure), or the
    /// key holds a character a header cannot carry.
    pub fn new(base_url: &Url, key: Secret, timeout: Duration) -> anyhow::Result<Client> {
        let http = http::builder(timeout)
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let wire = wire(Provider::Udioapi);
        Ok(Client {
            http,
            base: base_url.clone(),
            paths: GeneratePaths::default(),
            wire,
            credits: endpoint(base_url, wire.credits_path()),
            auth: authorization(&key)?,
            models: Catalogue::built_in(),
        })
    }

    /// Sends each job's model as `models` names it on the provider (the
    /// built-in catalogue by default): see [`Catalogue::wire_model`].
    pub fn with_models(mut self, models: Arc<Catalogue>) -> Client {
        self.models = models;
        self
    }

    /// Speaks `provider`'s wire at `base_url`: its endpoints, bodies and
    /// answers.
    pub fn with_provider(mut self, provider: Provider, base_url: &Url) -> Client {
        self.wire = wire(provider);
        self.base = base_url.clone();
        self.credits = endpoint(base_url, self.wire.credits_path());
        self
    }

    /// Submits to `paths` under the base URL instead of the default ones
    /// (udioapi only: the other providers have one path each).
    pub fn with_generate_paths(mut self, base_url: &Url, paths: &GeneratePaths) -> Client {
        self.base = base_url.clone();
        self.paths = paths.clone();
        self
    }

    /// The provider this client speaks.
    pub fn provider(&self) -> Provider {
        self.wire.provider()
    }

    /// The URL a job is submitted to, by the provider's wire (udioapi: the
    /// callback endpoint when it has a `callback_url`, the plain one
    /// otherwise).
    fn generate_url(&self, job: &Job) -> Url {
        endpoint(&self.base, &self.wire.submit_path(job, &self.paths))
    }

    /// Sends one job. Never retries: see [`crate::engine::submit::pool`].
    pub async fn submit(&self, job: &Job) -> Result<Accepted, SubmitError> {
        let model = self
            .models
            .wire_model(self.wire.provider(), job.fields.model.as_deref());
        let body = self.wire.submit_body(job, model.as_deref());
        let url = self.generate_url(job);
        let mut request = self.http.post(url.clone());
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = request
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(classify_send_error)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(redirect(status, response.headers(), &url));
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
        if self.wire.no_endpoint(status, &body) {
            return Err(SubmitError::NoEndpoint {
                status: status.as_u16(),
                path: url.path().to_owned(),
                fix: self.wire.no_endpoint_fix(job),
                message: error_status(status, &body, None).server_message(),
            });
        }
        self.wire.read_submit(status, &body, retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
