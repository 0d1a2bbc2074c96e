//! Athanor's domain model, shared by the server and the browser.
//!
//! Everything here is plain data and pure functions: no I/O, no async runtime, no SQL. That is what lets the
//! hydrated dashboard (compiled to `wasm32-unknown-unknown`) run the very same [`schema::Schema::validate`] as
//! the server, so a form shows exactly the errors the server would answer with.
//!
//! - [`api`] — what front ends exchange with the service: inputs, pages, [`api::ErrorBody`] and its codes.
//! - [`schema`] — the typed configuration schema an experiment declares, and validation of configuration values.
//! - [`status`] — [`status::RunStatus`] and the only transitions a run may make.
//! - [`names`] — parsed newtypes for the names users type.
//! - [`compare`] — side-by-side comparison of runs: config diff, aligned results, numeric series.
//! - [`events`] — what live streams carry: [`events::RunEvent`], [`events::LifecycleEvent`], [`events::Progress`].
//! - [`experiment`] — [`experiment::ExperimentDefinition`]: name, description, version and schema.
//! - [`ids`] — [`RunId`] and [`InstanceId`]: UUIDs that cannot be mixed up, parsed once at the edge.
//! - [`logs`] — [`LogFilter`] (which log lines a reader wants) and [`LevelCounts`] (lines per level).
//! - [`text`] — wording the front ends share (`relative_time`).
//! - [`model`] — [`model::Instance`], [`model::Run`] and the records a run produces.

pub mod api;
pub mod compare;
pub mod events;
pub mod experiment;
pub mod ids;
pub mod logs;
pub mod model;
pub mod names;
pub mod schema;
pub mod status;
pub mod text;

pub use events::{LifecycleEvent, Progress, RunEvent};
pub use experiment::ExperimentDefinition;
pub use ids::{IdError, InstanceId, RunId};
pub use logs::{LevelCounts, LogFilter};
pub use model::{
    Instance, InstanceDraft, InstanceSummary, LogLevel, LogRecord, NewLog, NewResult, ResultRecord, Run, RunListing,
    RunSummary,
};
pub use names::{Description, ExperimentName, InstanceName, NameError};
pub use schema::{FieldError, Schema, ValidationErrors};
pub use status::{IllegalTransition, RunStatus};
