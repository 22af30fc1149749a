//! The API's error answer, `{"code": N, "message": "..."}` with the same
//! HTTP status, as every route of the sandbox gives it.
//!
//! Its own module because the generate path, the feeds and the media
//! routes all answer errors in this shape: kept in any one of them, the
//! others would import a sibling that imports them back.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An error answer in the API's shape, for the read-side routes (and the
/// 401 of any route).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ApiError(pub StatusCode, pub &'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, error_body(self.0, self.1)).into_response()
    }
}

/// The body of an error answer with `status`.
pub(super) fn error_body(status: StatusCode, message: &str) -> Json<Value> {
    Json(json!({"code": status.as_u16(), "message": message}))
}
