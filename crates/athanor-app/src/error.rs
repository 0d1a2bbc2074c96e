//! The one error type every server function returns, so the browser gets a message it can show as is.

use athanor_core::FieldError;
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

#[cfg(feature = "ssr")]
impl From<athanor_runtime::RuntimeError> for AppError {
    fn from(error: athanor_runtime::RuntimeError) -> Self {
        use athanor_runtime::RuntimeError;
        match error {
            RuntimeError::InstanceNotFound(_) | RuntimeError::RunNotFound(_) => AppError::NotFound(error.to_string()),
            RuntimeError::StaleConfiguration { ref errors, .. } => {
                AppError::Invalid { message: error.to_string(), fields: errors.errors.clone() }
            }
            RuntimeError::UnknownExperiment { .. } | RuntimeError::AlreadyFinished(_) => {
                AppError::Invalid { message: error.to_string(), fields: Vec::new() }
            }
            RuntimeError::Store(store) => store.into(),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<athanor_store::StoreError> for AppError {
    fn from(error: athanor_store::StoreError) -> Self {
        use athanor_store::StoreError;
        match error {
            StoreError::InstanceNotFound(_) | StoreError::RunNotFound(_) => AppError::NotFound(error.to_string()),
            StoreError::IllegalTransition { .. } => AppError::Invalid { message: error.to_string(), fields: vec![] },
            other => {
                tracing::error!(error = %other, "store error");
                AppError::Server(other.to_string())
            }
        }
    }
}
