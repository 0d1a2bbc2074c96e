//! [`ServiceError`]: every way an operation can fail, each with its [`ErrorCode`].

use athanor_core::api::{ErrorBody, ErrorCode};
use athanor_core::{FieldError, IdError, ValidationErrors};
use athanor_runtime::RuntimeError;
use athanor_store::StoreError;

/// Why an operation did not happen. A refused operation has written nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// The instance, run or experiment named does not exist (or no longer does).
    #[error("{0}")]
    NotFound(String),
    /// The input was refused; `fields` says which field and why.
    #[error("{message}")]
    Invalid {
        /// A summary sentence.
        message: String,
        /// Per-field messages keyed by path (`config.model_pairs[1].runs`, `name`).
        fields: Vec<FieldError>,
    },
    /// Valid input, but the thing is in the wrong state for it (cancelling a run that has ended).
    #[error("{0}")]
    Conflict(String),
    /// The answer would exceed the server's budget for it; the message says the size and the budget.
    #[error("{0}")]
    TooLarge(String),
    /// The server is at one of its limits for now (too many answers held open); the message says which.
    #[error("{0}")]
    Unavailable(String),
    /// The database or the runtime failed; the message says what failed.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// A refused input that concerns a single field.
    pub fn invalid_field(path: &str, message: impl Into<String>) -> ServiceError {
        let message = message.into();
        ServiceError::Invalid {
            message: format!("{path}: {message}"),
            fields: vec![FieldError { path: path.to_owned(), message }],
        }
    }

    /// Several refused fields at once, with a summary that counts them.
    pub fn invalid_fields(fields: Vec<FieldError>) -> ServiceError {
        let message = match fields.as_slice() {
            [one] => format!("{}: {}", one.path, one.message),
            several => format!("{} fields need attention", several.len()),
        };
        ServiceError::Invalid { message, fields }
    }

    /// The machine-readable kind of this failure; it alone decides an HTTP status.
    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::NotFound(_) => ErrorCode::NotFound,
            ServiceError::Invalid { .. } => ErrorCode::InvalidInput,
            ServiceError::Conflict(_) => ErrorCode::Conflict,
            ServiceError::TooLarge(_) => ErrorCode::TooLarge,
            ServiceError::Unavailable(_) => ErrorCode::Unavailable,
            ServiceError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The error as every front end sends it.
    pub fn body(&self) -> ErrorBody {
        let fields = match self {
            ServiceError::Invalid { fields, .. } => fields.clone(),
            _ => Vec::new(),
        };
        ErrorBody { code: self.code(), message: self.to_string(), fields }
    }

    /// A configuration refused by its schema; paths are prefixed with `prefix` (`config` in the API, where the
    /// configuration is one field of a larger body).
    pub fn invalid_config(errors: ValidationErrors, prefix: Option<&str>) -> ServiceError {
        let fields = errors
            .errors
            .into_iter()
            .map(|error| FieldError {
                path: match prefix {
                    Some(prefix) if error.path.is_empty() => prefix.to_owned(),
                    Some(prefix) if error.path.starts_with('[') => format!("{prefix}{}", error.path),
                    Some(prefix) => format!("{prefix}.{}", error.path),
                    None => error.path,
                },
                message: error.message,
            })
            .collect();
        ServiceError::invalid_fields(fields)
    }
}

impl From<IdError> for ServiceError {
    fn from(error: IdError) -> Self {
        let field = error.kind.replace(' ', "_");
        ServiceError::invalid_field(&field, error.to_string())
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InstanceNotFound(_) | StoreError::RunNotFound(_) => ServiceError::NotFound(error.to_string()),
            StoreError::IllegalTransition { .. } => ServiceError::Conflict(error.to_string()),
            // A lost connection or a pool with no connection to give: the same request succeeds once the database
            // is back, which is what 503 tells a client (and its retry logic).
            other if other.is_transient() => {
                tracing::warn!(error = %other, "database unreachable");
                ServiceError::Unavailable(format!("the database cannot be reached for now; try again: {other}"))
            }
            other => {
                tracing::error!(error = %other, "store error");
                ServiceError::Internal(other.to_string())
            }
        }
    }
}

impl From<RuntimeError> for ServiceError {
    fn from(error: RuntimeError) -> Self {
        match error {
            RuntimeError::InstanceNotFound(_) | RuntimeError::RunNotFound(_) => {
                ServiceError::NotFound(error.to_string())
            }
            RuntimeError::StaleConfiguration { ref errors, .. } => {
                ServiceError::Invalid { message: error.to_string(), fields: errors.errors.clone() }
            }
            RuntimeError::UnknownExperiment { .. } => {
                ServiceError::Invalid { message: error.to_string(), fields: Vec::new() }
            }
            RuntimeError::AlreadyFinished(_) | RuntimeError::QueueFull(_) => ServiceError::Conflict(error.to_string()),
            RuntimeError::Store(store) => store.into(),
        }
    }
}
