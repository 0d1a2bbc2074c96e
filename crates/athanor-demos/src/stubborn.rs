//! `stubborn` — what happens to a run that ignores cancellation.
//!
//! This experiment never looks at [`RunContext::is_cancelled`] or [`RunContext::cancelled`]. When a user cancels
//! it, the supervisor asks politely, waits the grace period (5 s by default), then aborts the run's task. The run
//! ends `cancelled` with an error saying the cancel was forced.
//!
//! Two things to know about a forced abort, and why you should not rely on it:
//!
//! - It takes effect only at an `.await`. Here every second is a `tokio::time::sleep(..).await`, so the abort lands
//!   at once. A run stuck in blocking code (`std::thread::sleep`, a long computation without awaits) cannot be
//!   aborted at all: it keeps its thread until it returns by itself.
//! - The task is dropped where it stands: code after that `.await` never runs, so final results are never
//!   recorded and cleanup only happens in `Drop` implementations.
//!
//! To stop cleanly instead, see [`crate::sleeper`] (polling) and [`crate::training_curve`] (`tokio::select!`).

use athanor_runtime::prelude::*;
use std::time::Duration;

/// Works on regardless of cancellation; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stubborn;

register_experiment!(Stubborn);

/// The configuration of a run, mirroring the schema.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// How long to work.
    pub seconds: u64,
}

impl Experiment for Stubborn {
    type Config = Config;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("stubborn", env!("CARGO_PKG_VERSION"))
            .description("Never checks for cancellation: a cancel becomes a forced abort after the grace period.")
            .schema(Schema::new().field(Field::integer("seconds").label("Seconds").default(600).min(0).max(86_400)))
    }

    async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
        let seconds = config.seconds;
        ctx.info(format!("working for {seconds} s; this experiment never checks for cancellation")).await;
        ctx.progress(0, Some(seconds), Some("starting"));
        for second in 1..=seconds {
            // Deliberately no `select!` with `ctx.cancelled()`: only the forced abort, landing on this await, stops
            // the run.
            tokio::time::sleep(Duration::from_secs(1)).await;
            ctx.info(format!("still working: {second} s of {seconds} s")).await;
            ctx.progress(second, Some(seconds), Some(&format!("{second} s of {seconds} s")));
        }
        ctx.info("done").await;
        Ok(())
    }
}
