//! The nouns of Athanor: instances, runs, and the log and result records a run produces.
//!
//! These are plain serialisable data. The store loads and saves them; the server functions send them to the
//! browser; nothing here knows how.

use crate::ids::{InstanceId, RunId};
use crate::names::{Description, ExperimentName, InstanceName};
use crate::status::RunStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// A configured experiment: which experiment code to run, and with which (validated, complete) configuration.
///
/// The configuration is a snapshot taken at creation or edit, with every default filled in, so a later change to
/// the experiment's defaults never changes what this instance runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Instance {
    /// Stable identifier.
    pub id: InstanceId,
    /// The experiment this instance configures.
    pub experiment: ExperimentName,
    /// Human name shown in lists.
    pub name: InstanceName,
    /// Optional notes.
    pub description: Description,
    /// The complete configuration, valid against the experiment's schema when it was saved.
    pub config: Value,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When its name, description or configuration last changed (UTC).
    pub updated_at: DateTime<Utc>,
}

/// What a user submits to create or edit an instance, after parsing.
///
/// The configuration here is already validated and completed with defaults by
/// [`Schema::validate`](crate::schema::Schema::validate); the store trusts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceDraft {
    /// The experiment to configure.
    pub experiment: ExperimentName,
    /// Human name.
    pub name: InstanceName,
    /// Optional notes.
    pub description: Description,
    /// Complete, validated configuration.
    pub config: Value,
}

/// One line of the dashboard: an instance with a summary of its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceSummary {
    /// The instance itself.
    pub instance: Instance,
    /// How many runs it has ever had.
    pub run_count: i64,
    /// Its newest run, if any.
    pub last_run: Option<RunSummary>,
}

/// The little that a list needs to know about a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSummary {
    /// The run's id.
    pub id: RunId,
    /// Its status now.
    pub status: RunStatus,
    /// When it was created (UTC).
    pub created_at: DateTime<Utc>,
}

/// A run with the names a list of runs across instances needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunListing {
    /// The run.
    pub run: Run,
    /// Its instance's name.
    pub instance_name: String,
    /// Its instance's experiment.
    pub experiment: String,
}

/// One execution of an instance.
///
/// A run keeps its **own** copy of the configuration and the experiment version it ran with: editing the instance
/// afterwards never rewrites what this run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    /// Stable identifier.
    pub id: RunId,
    /// The instance it executes.
    pub instance_id: InstanceId,
    /// Where it is in its life; see [`RunStatus`].
    pub status: RunStatus,
    /// The configuration it ran with (a copy of the instance's at start).
    pub config: Value,
    /// The experiment's version string when the run was created.
    pub experiment_version: String,
    /// When the run was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When its task began executing.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal status.
    pub completed_at: Option<DateTime<Utc>>,
    /// Why it failed or how it was cancelled.
    pub error: Option<String>,
}

impl Run {
    /// Wall time from start to end, or to `now` while still running.
    pub fn duration(&self, now: DateTime<Utc>) -> Option<chrono::Duration> {
        let started = self.started_at?;
        Some(self.completed_at.unwrap_or(now) - started)
    }
}

/// Severity of a log line, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Detail for debugging an experiment.
    Debug,
    /// Normal progress.
    Info,
    /// Something odd that did not stop the run.
    Warn,
    /// Something went wrong.
    Error,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 4] = [LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error];

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no log level.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log level {0:?} (expected debug, info, warn or error)")]
pub struct UnknownLevel(pub String);

impl FromStr for LogLevel {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogLevel::ALL.into_iter().find(|level| level.as_str() == s).ok_or_else(|| UnknownLevel(s.to_owned()))
    }
}

/// A log line as an experiment emits it, before it has a sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLog {
    /// When it was emitted (UTC).
    pub ts: DateTime<Utc>,
    /// Severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
    /// Optional structured detail.
    pub metadata: Option<Value>,
}

/// A stored log line. `seq` orders a run's logs and results together and never repeats within a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogRecord {
    /// Position in the run's record sequence (shared with results), from 1.
    pub seq: i64,
    /// When it was emitted (UTC).
    pub ts: DateTime<Utc>,
    /// Severity.
    pub level: LogLevel,
    /// The text.
    pub message: String,
    /// Optional structured detail.
    pub metadata: Option<Value>,
}

/// A result as an experiment records it, before it has a sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewResult {
    /// When it was recorded (UTC).
    pub ts: DateTime<Utc>,
    /// Name of the result, e.g. `accuracy` or `loss/12`.
    pub key: String,
    /// Any JSON value.
    pub value: Value,
}

/// A stored result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultRecord {
    /// Position in the run's record sequence (shared with logs), from 1.
    pub seq: i64,
    /// When it was recorded (UTC).
    pub ts: DateTime<Utc>,
    /// Name of the result.
    pub key: String,
    /// Any JSON value.
    pub value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_by_severity_and_parse_back() {
        assert!(LogLevel::Debug < LogLevel::Info && LogLevel::Warn < LogLevel::Error);
        for level in LogLevel::ALL {
            assert_eq!(level.as_str().parse::<LogLevel>(), Ok(level));
        }
        assert!("verbose".parse::<LogLevel>().is_err());
    }

    #[test]
    fn duration_runs_to_now_until_completed() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let mut run = Run {
            id: RunId::from(uuid::Uuid::nil()),
            instance_id: InstanceId::from(uuid::Uuid::nil()),
            status: RunStatus::Running,
            config: Value::Null,
            experiment_version: "1".into(),
            created_at: start,
            started_at: Some(start),
            completed_at: None,
            error: None,
        };
        let now = start + chrono::Duration::seconds(42);
        assert_eq!(run.duration(now), Some(chrono::Duration::seconds(42)));
        run.completed_at = Some(start + chrono::Duration::seconds(7));
        assert_eq!(run.duration(now), Some(chrono::Duration::seconds(7)));
        run.started_at = None;
        assert_eq!(run.duration(now), None);
    }
}
