//! What the dashboard and the store know about an experiment: its definition, not its code.
//!
//! The code (an async `run`) lives with the runtime on the server; the definition is plain data that also travels
//! to the browser, where the schema drives the instance form.

use crate::names::ExperimentName;
use crate::schema::Schema;
use serde::{Deserialize, Serialize};

/// The identity and configuration schema of an experiment.
///
/// Build one with [`ExperimentDefinition::new`] and the chained setters:
///
/// ```
/// use athanor_core::{schema::Field, ExperimentDefinition, Schema};
///
/// let definition = ExperimentDefinition::new("countdown", "1.0.0")
///     .description("Counts down and records the result.")
///     .schema(Schema::new().field(Field::integer("from").default(10).min(0)));
/// assert_eq!(definition.name.as_str(), "countdown");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExperimentDefinition {
    /// Unique registered name, e.g. `training_curve`; instances refer to it.
    pub name: ExperimentName,
    /// One or two sentences shown in the experiment picker.
    pub description: String,
    /// Version string recorded on every run, so a run says which code produced it.
    pub version: String,
    /// The configuration it accepts.
    // `Schema` describes itself (its fields, types, bounds and defaults); the document does not repeat its shape.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub schema: Schema,
}

impl ExperimentDefinition {
    /// A definition with an empty description and an empty schema (no configuration).
    ///
    /// # Panics
    ///
    /// When `name` is not a valid experiment name (see [`ExperimentName::parse`]). Names are literals in the
    /// experiment's code, and definitions are built once when the server starts, so a bad name stops the server
    /// at start-up with this message rather than failing any user's run.
    #[must_use]
    pub fn new(name: &str, version: impl Into<String>) -> ExperimentDefinition {
        let name = ExperimentName::parse(name).unwrap_or_else(|error| panic!("experiment name {name:?}: {error}"));
        ExperimentDefinition { name, description: String::new(), version: version.into(), schema: Schema::new() }
    }

    /// Set the description shown in the experiment picker.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> ExperimentDefinition {
        self.description = description.into();
        self
    }

    /// Set the configuration schema.
    #[must_use]
    pub fn schema(mut self, schema: Schema) -> ExperimentDefinition {
        self.schema = schema;
        self
    }
}
