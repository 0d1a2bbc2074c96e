//! The shapes every front end exchanges with the service: what a request carries and what an answer holds.
//!
//! The JSON API (`/api/v1`), the `athanor` CLI and the dashboard's server functions speak these types, so a field
//! has one name in all of them; the MCP tools answer with them too, under argument names of their own. They are
//! plain serde data and compile to WebAssembly with the rest of this crate.

use crate::experiment::ExperimentDefinition;
use crate::model::{Instance, LogRecord, ResultRecord, Run};
use crate::schema::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// What kind of failure an answer reports: stable, machine-readable, and the only thing that decides an HTTP
/// status ([`ErrorCode::http_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The instance, run or experiment named does not exist (or no longer does).
    NotFound,
    /// The input was refused; `fields` says which field and why. Nothing was written.
    InvalidInput,
    /// The request is valid but the thing is in the wrong state for it (cancelling a finished run).
    Conflict,
    /// The answer would be larger than the server's stated budget (a comparison of too much data).
    TooLarge,
    /// No valid token or session was presented where one is required.
    Unauthorized,
    /// The request came from a place the server does not answer (another site, an unknown host name).
    Forbidden,
    /// The server is at a limit for now (too many live connections); try again later.
    Unavailable,
    /// The server failed; the message says what failed, never a secret.
    Internal,
}

impl ErrorCode {
    /// The HTTP status for this kind of failure. Every HTTP front end answers with this; nothing else decides.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound => 404,
            ErrorCode::InvalidInput => 400,
            ErrorCode::Conflict => 409,
            ErrorCode::TooLarge => 413,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The name used on the wire (`not_found`, `invalid_input`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error answer: `{"code": "invalid_input", "message": "…", "fields": [{"path": …}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What kind of failure.
    pub code: ErrorCode,
    /// One sentence for a person.
    pub message: String,
    /// For `invalid_input`: one message per refused field, keyed by its path (`model_pairs[1].runs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<FieldErrorShape>))]
    pub fields: Vec<FieldError>,
}

/// [`FieldError`] as the OpenAPI document shows it. `FieldError` lives with the schema code, which derives nothing
/// for documentation, so this mirror (same fields, same names) stands in for it under its own name.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)] // Never built: only its shape is read, by the derive.
struct FieldErrorShape {
    /// Where: `name`, `config.epochs`, `config.model_pairs[1].runs`; `""` for the configuration as a whole.
    path: String,
    /// What, in words for the user: "must be at most 100".
    message: String,
}

impl fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for field in &self.fields {
            if !self.message.contains(&field.message) {
                write!(f, "\n  {}: {}", field.path, field.message)?;
            }
        }
        Ok(())
    }
}

/// A new instance as a user describes it, before validation: the service parses the names and validates (and
/// completes with defaults) the configuration against the experiment's schema. Unknown keys are refused by name,
/// so a typo never passes silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceInput {
    /// The experiment to configure, by name.
    pub experiment: String,
    /// A human name (1–200 characters).
    pub name: String,
    /// Optional notes.
    #[serde(default)]
    pub description: String,
    /// The configuration; optional fields left out take the schema's defaults. A required field must be given
    /// even when it has a default (the default is only a form's starting value: "required" means someone decides).
    #[serde(default = "empty_object")]
    pub config: Value,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// An edit of an instance: each field given replaces the stored one; fields left out stay. A new `config`
/// replaces the whole configuration (validated and completed with defaults like a new instance's). Unknown keys are
/// refused by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceChanges {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A new configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

/// An instance with what its page shows: the experiment it configures and its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceDetails {
    /// The instance.
    pub instance: Instance,
    /// Its experiment's definition, or `None` when the server no longer has that experiment.
    pub experiment: Option<ExperimentDefinition>,
    /// Its runs, newest first.
    pub runs: Vec<Run>,
}

/// One page of a long list, and how to ask for the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Paged<T> {
    /// The items of this page, in the list's order.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A run's log lines, oldest first, with where to continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogPage {
    /// The lines, in `seq` order.
    pub items: Vec<LogRecord>,
    /// Pass as `after` to read on (the last `seq` returned, or the `after` asked for when none was).
    pub next_after: i64,
}

/// A run's results, in `seq` order, with where to continue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultPage {
    /// The results, in `seq` order.
    pub items: Vec<ResultRecord>,
    /// Pass as `after` to read on.
    pub next_after: i64,
}

/// What waiting for a run's end found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaitOutcome {
    /// The run as it is now.
    pub run: Run,
    /// Whether it has ended; `false` when the wait timed out first.
    pub ended: bool,
}

/// A process that executes runs from the shared queue (PostgreSQL only): the server itself or an
/// `athanor worker`, as it advertised itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkerNode {
    /// What people call it (`host:pid` unless given).
    pub name: String,
    /// The machine's host name.
    pub host: String,
    /// Its process id there.
    pub pid: i64,
    /// Runs it executes at once.
    pub capacity: i32,
    /// Runs it executes now.
    pub running: i64,
    /// What it can execute, as `name@version`.
    pub experiments: Vec<String>,
    /// When it started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Its last heartbeat (the database's clock).
    pub heartbeat_at: chrono::DateTime<chrono::Utc>,
    /// When it stopped cleanly; `None` while it runs, or when it died (its heartbeat then grows old).
    pub stopped_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The problems of the manifest of command experiments, while it has any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ManifestReport {
    /// The manifest's path as the server was given it.
    pub file: String,
    /// One message per problem, each naming the experiment and the field (the file is `file`).
    pub problems: Vec<String>,
}

/// A run with what its page shows first: its last log lines and first results, read at one cursor so the live
/// stream can continue from `last_seq` with no gap and no duplicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunOverview {
    /// The run.
    pub run: Run,
    /// Its instance's name.
    pub instance_name: String,
    /// Whether the instance's configuration now differs from this run's snapshot.
    pub instance_config_changed: bool,
    /// Exact number of log lines through `last_seq`.
    pub log_total: i64,
    /// Exact number of log lines through `last_seq` at each level (they sum to `log_total`).
    pub log_levels: crate::logs::LevelCounts,
    /// The last lines through `last_seq`, ascending.
    pub logs: Vec<LogRecord>,
    /// Exact number of results through `last_seq`.
    pub result_total: i64,
    /// The first results through `last_seq`, ascending.
    pub results: Vec<ResultRecord>,
    /// The cursor everything above was read at.
    pub last_seq: i64,
    /// The worker node that executes or executed the run, when a node claimed it (PostgreSQL).
    pub node: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_its_own_status_and_wire_name() {
        let codes = [
            ErrorCode::NotFound,
            ErrorCode::InvalidInput,
            ErrorCode::Conflict,
            ErrorCode::TooLarge,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ];
        for code in codes {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, Value::String(code.as_str().into()));
        }
        let statuses: std::collections::HashSet<u16> = codes.iter().map(|c| c.http_status()).collect();
        assert_eq!(statuses.len(), codes.len());
    }

    #[test]
    fn an_instance_input_needs_only_experiment_and_name() {
        let input: InstanceInput = serde_json::from_str(r#"{"experiment":"sleeper","name":"quick"}"#).unwrap();
        assert_eq!(input.description, "");
        assert_eq!(input.config, serde_json::json!({}));
    }
}
