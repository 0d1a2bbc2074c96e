//! `failing` — how a run reports failure: return `Err(message)`.
//!
//! The message becomes the run's error, shown on the run page and in lists, so write it for the person who will
//! read it: what went wrong, in their terms. Everything logged before the failure is kept (the writer commits a
//! run's records before its final status), so the log tells the story that led to the error.
//!
//! Logging at `error` level and failing are separate things: an error *line* records a problem, and the run goes
//! on (see the gradient spikes in [`crate::training_curve`]); returning `Err` ends the run as `failed`. Here the
//! run does both, which is the usual pattern: log the detail, return the summary.
//!
//! For failures you did not anticipate, a panic also fails only its own run; see [`crate::panicking`].

use athanor_core::schema::Field;
use athanor_core::{ExperimentDefinition, Schema};
use athanor_runtime::{Experiment, RunContext};

/// Always fails; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct Failing;

athanor_runtime::register_experiment!(Failing);

const DEFAULT_MESSAGE: &str = "the model diverged (loss = NaN)";

#[athanor_runtime::async_trait]
impl Experiment for Failing {
    fn definition(&self) -> ExperimentDefinition {
        crate::definition(
            "failing",
            "Logs a few lines, then fails with the configured message.",
            Schema::new().field(Field::string("message").label("Error message").default(DEFAULT_MESSAGE).required()),
        )
    }

    async fn run(&self, ctx: RunContext) -> Result<(), String> {
        // A blank error would leave the run page with nothing to say, so fall back to the default for that too.
        let message = match ctx.config()["message"].as_str() {
            Some(message) if !message.trim().is_empty() => message.to_owned(),
            _ => DEFAULT_MESSAGE.to_owned(),
        };
        ctx.info("loaded 50,000 training examples; starting").await;
        ctx.warn("loss is not finite at step 812; halving the learning rate and retrying").await;
        ctx.error(format!("still not finite after 3 retries; giving up: {message}")).await;
        Err(message)
    }
}
