//! Athanor's engine: experiments that really run.
//!
//! - [`experiment`] — the [`Experiment`] trait, [`register_experiment!`] and the [`Registry`] that discovers
//!   every registered experiment through `inventory`.
//! - [`context`] — [`RunContext`], the API a run sees: config, logs, results, progress, cancellation.
//! - [`supervisor`] — [`Runtime`]: FIFO queue under a concurrency limit, one tokio task per run, panics and
//!   errors become `failed`, cooperative then forced cancel, timeouts, start-up recovery.
//! - `writer` — the single batching writer and its back-pressure policy (nothing accepted is dropped).
//! - [`hub`] and [`subscribe`] — live events, and subscriptions that resume after any `seq` with no gap.
//!
//! This crate is server-only (tokio); the browser never links it. The data it emits (events, progress) is
//! defined in `athanor-core` so the dashboard can decode it.

pub mod context;
pub mod experiment;
pub mod hub;
pub mod subscribe;
pub mod supervisor;
mod writer;

pub use async_trait::async_trait;
pub use context::RunContext;
pub use experiment::{DuplicateExperiment, Experiment, Registered, Registration, Registry};
pub use supervisor::{CancelOutcome, RecoveryReport, Runtime, RuntimeConfig, RuntimeError};
pub use writer::{MAX_LINES_PER_MESSAGE, MAX_MESSAGES_PER_COMMIT};

#[doc(hidden)]
pub use inventory;
