//! udioapi.pro and the hosts of its backend, the reference provider: the
//! body is batchgen's own fields (`crate::job::JobFields`, unset ones left
//! out), answers are read by [`crate::api::answer::parse_answer`], feeds and
//! callbacks by [`crate::api::feed::parse`] (`../shared/API.md` whole).

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use super::Wire;
use crate::api::answer::{self, Accepted, Balance, PollError, SubmitError};
use crate::api::feed::{self, FeedError, TaskClips};
use crate::api::http::endpoint;
use crate::job::{Job, Provider};
use crate::settings::GeneratePaths;

/// The feed polled for a task: `GET api/v2/feed?workId=`.
pub const FEED_PATH: &str = "api/v2/feed";

/// udioapi's wire.
#[derive(Debug)]
pub struct Udioapi;

impl Wire for Udioapi {
    fn provider(&self) -> Provider {
        Provider::Udioapi
    }

    fn submit_path(&self, job: &Job, paths: &GeneratePaths) -> String {
        paths.for_job(job).to_owned()
    }

    fn submit_body(&self, job: &Job, model: Option<&str>) -> Vec<u8> {
        let fields = job.body();
        if fields.model.as_deref() == model {
            return serde_json::to_vec(fields).expect("a job's fields always serialize");
        }
        // An alias sent under the model's name: the fields are batchgen's
        // names, in the API's order, with that one value changed.
        let mut fields = fields.clone();
        fields.model = model.map(str::to_owned);
        serde_json::to_vec(&fields).expect("a job's fields always serialize")
    }

    fn read_submit(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<Accepted, SubmitError> {
        answer::parse_answer(status, body, retry_after)
    }

    fn no_endpoint_fix(&self, job: &Job) -> &'static str {
        if GeneratePaths::takes_callback_path(job) {
            "set --callback-generate-path ([run] callback_generate_path, BATCHGEN_CALLBACK_GENERATE_PATH) to the path it serves (api/v2/generate or api/generate)"
        } else {
            "set --generate-path ([run] generate_path, BATCHGEN_GENERATE_PATH) to the path it serves (api/v2/generate or api/generate)"
        }
    }

    fn poll_url(&self, base: &Url, task_id: &str) -> Url {
        let mut url = endpoint(base, FEED_PATH);
        url.query_pairs_mut().append_pair("workId", task_id);
        url
    }

    fn read_poll(
        &self,
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Result<TaskClips, PollError> {
        if !status.is_success() {
            return Err(answer::poll_status(status, body, retry_after));
        }
        Ok(feed::parse(body)?)
    }

    fn read_callback(&self, body: &[u8]) -> Result<TaskClips, FeedError> {
        feed::parse(body)
    }

    fn credits_path(&self) -> &'static str {
        "api/v2/credits"
    }

    fn read_balance(&self, status: StatusCode, body: &[u8]) -> Result<Balance, SubmitError> {
        answer::parse_balance(status, body)
    }
}
