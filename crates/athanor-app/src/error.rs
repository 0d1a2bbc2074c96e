//! The error every server function returns, so the browser gets a message it can show as is.
//!
//! On the server it is a [`ServiceError`](athanor_service::ServiceError) seen from the browser: same kinds, same
//! per-field messages, plus [`AppError::Transport`] for a request that never got an answer.

use athanor_core::api::ErrorCode;
use athanor_core::{FieldError, IdError};
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What went wrong, in words meant for the person at the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// The thing asked for does not exist (or no longer does).
    #[error("{0}")]
    NotFound(String),
    /// The input was refused; `fields` says which field and why, for display beside each input.
    #[error("{message}")]
    Invalid {
        /// A summary sentence.
        message: String,
        /// Per-field messages keyed by path (`model_pairs[1].runs`).
        fields: Vec<FieldError>,
    },
    /// Valid, but the thing is in the wrong state for it (cancelling a run that has already ended).
    #[error("{0}")]
    Conflict(String),
    /// The answer would exceed the server's budget for it (a comparison of too much data).
    #[error("{0}")]
    TooLarge(String),
    /// The server is at a limit for now (too many live connections); try again later.
    #[error("{0}")]
    Unavailable(String),
    /// The server failed; the message says what failed, never a secret.
    #[error("{0}")]
    Server(String),
    /// The request did not get through, or the answer could not be read.
    #[error("could not reach the server: {0}")]
    Transport(String),
}

impl AppError {
    /// A refused input that concerns a single field.
    pub fn invalid_field(path: &str, message: impl Into<String>) -> AppError {
        let message = message.into();
        AppError::Invalid {
            message: format!("{path}: {message}"),
            fields: vec![FieldError { path: path.to_owned(), message }],
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(message) | ServerFnErrorErr::Deserialization(message) => {
                AppError::Invalid { message: format!("malformed request: {message}"), fields: Vec::new() }
            }
            other => AppError::Transport(other.to_string()),
        }
    }
}

impl AppError {
    /// The machine-readable kind of this error, which decides its HTTP status ([`ErrorCode::http_status`]).
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Invalid { .. } => ErrorCode::InvalidInput,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::TooLarge(_) => ErrorCode::TooLarge,
            AppError::Unavailable(_) => ErrorCode::Unavailable,
            AppError::Server(_) | AppError::Transport(_) => ErrorCode::Internal,
        }
    }
}

/// An id typed into a URL or form that is not one: refused before any request is made.
impl From<IdError> for AppError {
    fn from(error: IdError) -> Self {
        // Named like the service names it (`run_id`), so a field error reads the same from every front end.
        AppError::invalid_field(&error.kind.replace(' ', "_"), error.to_string())
    }
}

/// Every server function is a call into the service; its errors keep their kind and per-field messages.
#[cfg(feature = "ssr")]
impl From<athanor_service::ServiceError> for AppError {
    fn from(error: athanor_service::ServiceError) -> Self {
        use athanor_service::ServiceError;
        match error {
            ServiceError::NotFound(message) => AppError::NotFound(message),
            ServiceError::Invalid { message, fields } => AppError::Invalid { message, fields },
            ServiceError::Conflict(message) => AppError::Conflict(message),
            ServiceError::TooLarge(message) => AppError::TooLarge(message),
            ServiceError::Unavailable(message) => AppError::Unavailable(message),
            ServiceError::Internal(message) => AppError::Server(message),
        }
    }
}
