//! The life of a run as a small state machine.
//!
//! ```text
//! pending ──► running ──► completed | failed | cancelled
//!    └──────────────────► cancelled
//! ```
//!
//! Terminal states never change. Every status change in the system goes through [`RunStatus::transition`], so an
//! illegal change (a completed run "restarting", a cancelled run "completing" after its task was aborted) is an
//! error at the place it is attempted instead of silently rewriting history.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a run is in its life. Stored as the lowercase name (`"running"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Created, waiting for a free slot under the concurrency limit.
    Pending,
    /// Its task is executing.
    Running,
    /// `run` returned `Ok`.
    Completed,
    /// `run` returned `Err`, panicked, timed out, or its process died.
    Failed,
    /// Stopped by a user's request (cooperatively or by force).
    Cancelled,
}

/// A status change the machine does not allow, e.g. `completed → running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a run cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// The status the run had.
    pub from: RunStatus,
    /// The status that was asked for.
    pub to: RunStatus,
}

impl RunStatus {
    /// Every status, in life order; handy for filters and exhaustive tests.
    pub const ALL: [RunStatus; 5] =
        [RunStatus::Pending, RunStatus::Running, RunStatus::Completed, RunStatus::Failed, RunStatus::Cancelled];

    /// True once the run has ended; such a status never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled)
    }

    /// Whether `self → to` is a legal step.
    pub fn can_become(self, to: RunStatus) -> bool {
        use RunStatus::*;
        matches!((self, to), (Pending, Running) | (Pending, Cancelled) | (Running, Completed | Failed | Cancelled))
    }

    /// The status after a legal step, or the reason it is refused.
    pub fn transition(self, to: RunStatus) -> Result<RunStatus, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run status {0:?} (expected pending, running, completed, failed or cancelled)")]
pub struct UnknownStatus(pub String);

impl FromStr for RunStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::RunStatus::{self, *};

    /// The complete table of legal steps; anything not listed must be refused.
    const LEGAL: [(RunStatus, RunStatus); 5] =
        [(Pending, Running), (Pending, Cancelled), (Running, Completed), (Running, Failed), (Running, Cancelled)];

    #[test]
    fn every_pair_is_legal_exactly_when_listed() {
        for from in RunStatus::ALL {
            for to in RunStatus::ALL {
                let expected = LEGAL.contains(&(from, to));
                let got = from.transition(to);
                assert_eq!(got.is_ok(), expected, "{from} -> {to}");
                if let Err(err) = got {
                    assert_eq!(err.to_string(), format!("a run cannot go from {from} to {to}"));
                }
            }
        }
    }

    #[test]
    fn terminal_states_never_change() {
        for from in RunStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RunStatus::ALL {
                assert!(from.transition(to).is_err(), "{from} -> {to} must be refused");
            }
        }
        assert!(!Pending.is_terminal());
        assert!(!Running.is_terminal());
    }

    #[test]
    fn names_round_trip_through_text_and_json() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        let err = "done".parse::<RunStatus>().unwrap_err();
        assert!(err.to_string().contains("\"done\""));
    }
}
