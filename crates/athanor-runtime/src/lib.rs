//! Athanor's engine: experiments that really run.
//!
//! - [`experiment`] — the [`Experiment`] trait (a typed `Config`, an `async fn run` returning [`RunResult`]),
//!   [`register_experiment!`] and the [`Registry`] that discovers every registered experiment through
//!   `inventory`.
//! - [`context`] — [`RunContext`], the API a run sees: logs, results, series, progress, cancellation.
//! - [`limits`] — the largest message, metadata, key and value a run may record, and how deep a value may nest.
//! - [`command`] — experiments in any language: programs declared in a manifest (`athanor.toml`), run as child
//!   processes speaking a line protocol, reloaded when the file changes.
//! - [`supervisor`] — [`Runtime`]: FIFO queue under a concurrency limit, one tokio task per run, panics and
//!   errors become `failed`, cooperative then forced cancel, timeouts, start-up recovery.
//! - `executor` — the runtime of its own (threads `athanor-run`) that experiment code runs on, so code that
//!   computes without awaiting cannot stall the server; [`RunContext::blocking`] for blocking calls.
//! - `writer` — the single batching writer: its back-pressure policy (a byte budget, [`RecordBudget`]), retries,
//!   and how a run whose records the database refuses fails alone.
//! - [`node`] — a node of the queue shared on PostgreSQL: claims, heartbeats, housekeeping, cancels across
//!   nodes (the rules themselves are the store's).
//! - [`hub`] and [`subscribe`] — live events, and subscriptions that resume after any `seq` with no gap.
//! - [`testing`] — a temporary-database harness for experiment authors' own tests.
//!
//! This crate is server-only (tokio); the browser never links it. The data it emits (events, progress) is
//! defined in `athanor-core` so the dashboard can decode it.

mod budget;
pub mod command;
pub mod context;
mod executor;
pub mod experiment;
pub mod hub;
pub mod limits;
pub mod node;
pub mod subscribe;
pub mod supervisor;
pub mod testing;
mod writer;

pub use budget::{RecordBudget, DEFAULT_RECORD_BUDGET_BYTES};
pub use context::{RecordError, RunContext};
pub use experiment::{
    AnyExperiment, Experiment, NoConfig, Origin, Registered, Registration, Registry, RegistryError, RunResult,
};
pub use supervisor::{CancelOutcome, RecoveryReport, Runtime, RuntimeConfig, RuntimeError};
pub use writer::{MAX_LINES_PER_MESSAGE, MAX_MESSAGES_PER_COMMIT};

#[doc(hidden)]
pub use inventory;

/// Re-exported so experiment crates need no direct dependency to use `?`, `bail!` and `.context(..)`.
pub use anyhow;

/// Everything an experiment file needs, in one `use athanor_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::{register_experiment, Experiment, NoConfig, RunContext, RunResult};
    pub use anyhow::{anyhow, bail, ensure, Context as _};
    pub use athanor_core::schema::Field;
    pub use athanor_core::{ExperimentDefinition, LogLevel, Schema};
    pub use serde::Deserialize;
}
