//! `failing` — how a run reports failure: return an error.
//!
//! `run` returns [`RunResult`], which is `anyhow::Result<()>`: `bail!("…")` (or `return Err(anyhow!("…"))`) ends
//! the run as `failed` with that message, shown on the run page and in lists, so write it for the person who will
//! read it: what went wrong, in their terms. Everything logged before the failure is kept (the writer commits a
//! run's records before its final status), so the log tells the story that led to the error.
//!
//! Errors you did not phrase yourself fail the run just as well: `?` works on any error type (I/O, HTTP, parsing),
//! and `.context("reading data.csv")` puts what the run was doing in front of the cause, so the run's error reads
//! `reading data.csv: No such file or directory (os error 2)`. `ensure!(condition, "…")` is `bail!` behind a test.
//!
//! Logging at `error` level and failing are separate things: an error *line* records a problem, and the run goes
//! on (see the gradient spikes in [`crate::training_curve`]); returning `Err` ends the run as `failed`. Here the
//! run does both, which is the usual pattern: log the detail, return the summary.
//!
//! For failures you did not anticipate, a panic also fails only its own run; see [`crate::panicking`].

use athanor_runtime::prelude::*;

/// Always fails; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct Failing;

register_experiment!(Failing);

/// The schema's default message, and what a blank message is replaced with.
const DEFAULT_MESSAGE: &str = "the model diverged (loss = NaN)";

/// The configuration of a run, mirroring the schema.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The error the run fails with. Required, so always present (possibly blank).
    pub message: String,
}

impl Experiment for Failing {
    type Config = Config;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("failing", env!("CARGO_PKG_VERSION"))
            .description("Logs a few lines, then fails with the configured message.")
            .schema(
                Schema::new()
                    .field(Field::string("message").label("Error message").default(DEFAULT_MESSAGE).required()),
            )
    }

    async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
        // A blank error would leave the run page with nothing to say, so the default stands in for that too.
        let message = if config.message.trim().is_empty() { DEFAULT_MESSAGE.to_owned() } else { config.message };
        ctx.info("loaded 50,000 training examples; starting").await;
        ctx.warn("loss is not finite at step 812; halving the learning rate and retrying").await;
        ctx.error(format!("still not finite after 3 retries; giving up: {message}")).await;
        bail!(message)
    }
}
