//! The read side every face shares: an account's task (or clip) and its
//! phase now, an account's credit balance, and the `--latency` every read
//! answer waits.
//!
//! Its own module because the faces word these differently (udioapi's
//! feeds, sunoapi's `record-info`, gcui's `/api/get`) but must agree on
//! what they report: one lookup, one count of poll requests
//! (`feed_requests` in the stats, see `auth`), one balance. A lookup sees
//! only the asking account's tasks: another account's task is, to it, one
//! that does not exist, and each face answers it as such.

use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::Host;
use super::accounts::AccountId;
use super::lifecycle::Phase;
use super::state::Task;

impl Host {
    /// The account's task with this id (a copy, so no lock is kept) and
    /// its phase now.
    pub(super) fn task_now(&self, id: &str, account: AccountId) -> Option<(Task, Phase)> {
        let state = self.lock();
        let task = state.records.tasks.get(id)?;
        (task.account == account)
            .then(|| (task.clone(), self.lifecycle.phase(task, Instant::now())))
    }

    /// The account's clips with these ids, in the order asked (each with
    /// its task, its index in the task and the task's phase now); without
    /// ids, its newest `cap` clips, newest first.
    pub(super) fn clips_now(
        &self,
        ids: Option<&[&str]>,
        cap: usize,
        account: AccountId,
    ) -> Vec<(Task, usize, Phase)> {
        let state = self.lock();
        let tasks = &state.records.tasks;
        let now = Instant::now();
        let with_phase =
            |task: &Task, index| (task.clone(), index, self.lifecycle.phase(task, now));
        match ids {
            Some(ids) => ids
                .iter()
                .filter_map(|id| {
                    let task = tasks.by_clip(id).filter(|t| t.account == account)?;
                    let index = task.clip_ids.iter().position(|c| c == id)?;
                    Some(with_phase(task, index))
                })
                .collect(),
            None => {
                let all: Vec<&Task> = tasks.iter().filter(|t| t.account == account).collect();
                all.iter()
                    .rev()
                    .flat_map(|task| (0..task.clip_ids.len()).map(move |i| (*task, i)))
                    .take(cap)
                    .map(|(task, i)| with_phase(task, i))
                    .collect()
            }
        }
    }

    /// The account's credits left and spent.
    pub(super) fn balance(&self, account: AccountId) -> (u64, u64) {
        let used =
            self.lock()
                .records
                .credits_spent(Instant::now(), self.credits_per_task, account);
        (self.account(account).credits.saturating_sub(used), used)
    }

    /// Waits `--latency`, then gives the answer.
    pub(super) async fn after_latency(&self, answer: impl IntoResponse) -> Response {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        answer.into_response()
    }
}

/// A query parameter's value, trimmed; `None` when absent or blank.
pub(super) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let query = query?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::query_param;

    #[test]
    fn query_params_are_decoded_and_blank_is_absent() {
        assert_eq!(
            query_param(Some("taskId=ab%20"), "taskId"),
            Some("ab".into())
        );
        assert_eq!(query_param(Some("ids=a,b&x=1"), "ids"), Some("a,b".into()));
        assert_eq!(query_param(Some("taskId="), "taskId"), None);
        assert_eq!(query_param(None, "ids"), None);
    }
}
