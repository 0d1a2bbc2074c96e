//! `panicking` — a panic fails its own run and nothing else.
//!
//! Every run executes in its own tokio task, and the supervisor turns a panicking task into a `failed` run whose
//! error is `panicked: <message>`. Other runs, the server and the dashboard carry on; the lines logged before the
//! panic are kept.
//!
//! Prefer returning `Err` for failures you can foresee (see [`crate::failing`]): you choose the message and can
//! log context first. A panic is the safety net for the ones you did not foresee — an index out of range, an
//! `unwrap` on a bad file — and this demo shows that the net holds.

use athanor_runtime::prelude::*;

/// Panics after a few steps; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct Panicking;

register_experiment!(Panicking);

/// The configuration of a run, mirroring the schema.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Steps that succeed before the one that panics.
    pub after_steps: u64,
}

impl Experiment for Panicking {
    type Config = Config;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("panicking", env!("CARGO_PKG_VERSION"))
            .description("Panics partway through; only this run fails, with the panic message.")
            .schema(
                Schema::new()
                    .field(Field::integer("after_steps").label("Panic after steps").default(3).min(0).max(1_000)),
            )
    }

    async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
        let after_steps = config.after_steps;
        let crash_step = after_steps + 1;
        for step in 1..=after_steps {
            ctx.info(format!("step {step} of {after_steps}: all good")).await;
            ctx.progress(step, Some(crash_step), Some(&format!("step {step}")));
        }
        // The point of this demo; the supervisor reports it as the run's error.
        panic!("simulated crash in step {crash_step}");
    }
}
