//! What the live streams carry to viewers. Plain data: the runtime produces these, the dashboard consumes them.
//!
//! A run's stream starts with a [`RunEvent::Snapshot`], then replays stored records after the viewer's last seen
//! `seq`, then follows live. Records only ever appear in a stream after they are committed to the database, so
//! "after seq N" read back from the database and the live tail fit together with no gap and no duplicate.

use crate::ids::InstanceId;
use crate::model::{Instance, LogRecord, ResultRecord, Run};
use serde::{Deserialize, Serialize};

/// How far a run has got, as the experiment last reported. Latest wins; never stored per update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    /// Units done.
    pub current: u64,
    /// Units in all, when known.
    pub total: Option<u64>,
    /// What it is doing now, e.g. "epoch 57/100 — evaluating".
    pub message: Option<String>,
}

impl Progress {
    /// Fraction done in `0.0..=1.0`, when the total is known and non-zero.
    pub fn fraction(&self) -> Option<f64> {
        match self.total {
            Some(total) if total > 0 => Some((self.current as f64 / total as f64).clamp(0.0, 1.0)),
            _ => None,
        }
    }
}

/// One event on a run's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RunEvent {
    /// The run as it is now, and its latest progress; always the first event of a subscription.
    Snapshot {
        /// The run row.
        run: Run,
        /// Latest progress, if the run is active and has reported any.
        progress: Option<Progress>,
    },
    /// Committed logs and results, each sorted by `seq`; every `seq` here is greater than any sent before.
    Records {
        /// New log lines.
        logs: Vec<LogRecord>,
        /// New results.
        results: Vec<ResultRecord>,
    },
    /// The experiment reported progress.
    Progress(Progress),
    /// The run's status changed (the row after the change). A terminal status is the stream's last event.
    Status(Run),
}

/// Changes to instances and runs, for the dashboard and instance pages. Low volume, so one topic carries all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LifecycleEvent {
    /// An instance was created or edited.
    InstanceSaved(Instance),
    /// An instance (and its runs) was deleted.
    InstanceDeleted(InstanceId),
    /// A run was created or changed status.
    RunChanged(Run),
    /// The set of experiments changed (the manifest was edited, or an edit was refused): reload the experiment
    /// list and the manifest's error banner.
    ExperimentsChanged,
    /// The viewer fell behind and missed events: reload the page's data, then continue.
    Resync,
}

impl LifecycleEvent {
    /// Whether a viewer of one instance's page cares about this event.
    pub fn concerns_instance(&self, instance_id: InstanceId) -> bool {
        match self {
            LifecycleEvent::InstanceSaved(instance) => instance.id == instance_id,
            LifecycleEvent::InstanceDeleted(id) => *id == instance_id,
            LifecycleEvent::RunChanged(run) => run.instance_id == instance_id,
            LifecycleEvent::ExperimentsChanged | LifecycleEvent::Resync => true,
        }
    }
}
