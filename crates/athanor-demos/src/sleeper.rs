//! `sleeper` — a long job that stops promptly when cancelled, by polling.
//!
//! This is the simplest correct way to make a long run cancellable: do the work in short steps and check
//! [`RunContext::is_cancelled`] between them. A cancel then takes effect within one step (`step_ms`), well inside
//! the grace period, so the run ends `cancelled` with the plain message "cancelled by user" rather than being
//! aborted. Returning `Ok(())` on cancel is fine: the supervisor records the run as cancelled whatever it returns.
//!
//! Polling suits loops whose steps are short. When a single await can be long (an epoch, a network call), race it
//! against [`RunContext::cancelled`] with `tokio::select!` instead, as [`crate::training_curve`] does.
//!
//! Progress is reported after every step in milliseconds, so the bar moves smoothly, with a message such as
//! "slept 3.2 s of 30 s". Steps are timed from the start with `tokio::time::Instant`, so the total is accurate
//! however late each wake-up is.

use athanor_runtime::prelude::*;
use std::time::Duration;
use tokio::time::Instant;

/// Sleeps in small steps; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sleeper;

register_experiment!(Sleeper);

/// The configuration of a run, mirroring the schema.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// How long to sleep in all.
    pub seconds: u64,
    /// How often to check for cancellation, in milliseconds.
    pub step_ms: u64,
}

impl Experiment for Sleeper {
    type Config = Config;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("sleeper", env!("CARGO_PKG_VERSION"))
            .description("Sleeps for a while in small steps and stops promptly when cancelled.")
            .schema(
                Schema::new().field(Field::integer("seconds").label("Seconds").default(30).min(0).max(86_400)).field(
                    Field::integer("step_ms")
                        .label("Step (ms)")
                        .description("How often it checks for cancellation.")
                        .default(100)
                        .min(1)
                        .max(10_000),
                ),
            )
    }

    async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
        let seconds = config.seconds;
        // `max(1)`: a zero step would spin without ever sleeping (the schema's `min(1)` already rules it out).
        let step = Duration::from_millis(config.step_ms.max(1));
        let total = Duration::from_secs(seconds);
        let total_ms = millis(total);

        ctx.info(format!("sleeping {seconds} s, checking for cancellation every {} ms", step.as_millis())).await;
        let start = Instant::now();
        let deadline = start + total;
        loop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep_until((now + step).min(deadline)).await;

            let slept = start.elapsed().min(total);
            let message = format!("slept {:.1} s of {seconds} s", slept.as_secs_f64());
            ctx.progress(millis(slept), Some(total_ms), Some(&message));
            if ctx.is_cancelled() {
                ctx.info(format!("cancelled after {:.1} s; stopping", slept.as_secs_f64())).await;
                return Ok(());
            }
        }
        ctx.info(format!("woke up after {seconds} s")).await;
        Ok(())
    }
}

/// Whole milliseconds, saturating (a `u128` of milliseconds only overflows `u64` after 584 million years).
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
