//! The account's balance, at the provider's credits endpoint (udioapi
//! `GET /api/v2/credits`, sunoapi `GET /api/v1/generate/credit`, gcui
//! `GET /api/get_limit`): a cheap way to check the key before a run
//! spends anything. The answer is read by the provider's profile.

use reqwest::header::AUTHORIZATION;

use super::Client;
use super::transport::{classify_send_error, cut_off, read_capped, redirect};
use crate::api::answer::SubmitError;

pub use crate::api::answer::{Balance, parse_balance};

impl Client {
    /// Asks for the balance: a cheap way to check the key before a run.
    ///
    /// # Errors
    /// As for [`Client::submit`]; an answer without the balance is
    /// [`SubmitError::Unexpected`].
    pub async fn balance(&self) -> Result<Balance, SubmitError> {
        let mut request = self.http.get(self.credits.clone());
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let response = request
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
            // without the balance field; an error status says enough.
            Err(e) if status.is_success() => {
                return Err(SubmitError::NoAnswer(format!(
                    "HTTP {status}: {}",
                    cut_off(&e)
                )));
            }
            Err(_) => Vec::new(),
        };
        self.wire.read_balance(status, &body)
    }
}
