//! Error answers: every failure leaves this crate as an [`ErrorBody`] with the status its [`ErrorCode`] decides.

use athanor_core::api::{ErrorBody, ErrorCode};
use athanor_core::IdError;
use athanor_service::ServiceError;
use axum::extract::OriginalUri;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// What a handler or an extractor fails with: a [`ServiceError`] on its way out as JSON.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) ServiceError);

impl ApiError {
    /// A refused input concerning one field (`limit`, `body`, `config.epochs`).
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError(ServiceError::invalid_field(field, message))
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        ApiError(error)
    }
}

impl From<IdError> for ApiError {
    fn from(error: IdError) -> Self {
        ApiError(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.0.body())
    }
}

/// `body` as JSON with the status of its code. [`ErrorCode::http_status`] is the only thing that picks a status.
pub(crate) fn error_response(body: ErrorBody) -> Response {
    let status = StatusCode::from_u16(body.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

/// The answer for a path or method the API does not have: `not_found` as JSON rather than axum's empty 404/405,
/// so a client reading every error as [`ErrorBody`] never meets another shape. A wrong method is `not_found` too:
/// there is no error code (and so no status) for "wrong method", and the message points at the list of endpoints.
pub(crate) async fn no_such_endpoint(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    error_response(ErrorBody {
        code: ErrorCode::NotFound,
        message: format!(
            "there is no endpoint {method} {}; the endpoints are listed in /api/v1/openapi.json",
            uri.path()
        ),
        fields: Vec::new(),
    })
}
