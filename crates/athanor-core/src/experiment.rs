//! What the dashboard and the store know about an experiment: its definition, not its code.
//!
//! The code (an async `run`) lives with the runtime on the server; the definition is plain data that also travels
//! to the browser, where the schema drives the instance form.

use crate::names::ExperimentName;
use crate::schema::Schema;
use serde::{Deserialize, Serialize};

/// The identity and configuration schema of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentDefinition {
    /// Unique registered name, e.g. `training_curve`; instances refer to it.
    pub name: ExperimentName,
    /// One or two sentences shown in the experiment picker.
    pub description: String,
    /// Version string recorded on every run, so a run says which code produced it.
    pub version: String,
    /// The configuration it accepts.
    pub schema: Schema,
}
