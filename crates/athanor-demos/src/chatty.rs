//! `chatty` — logging at volume: [`RunContext::log`] versus [`RunContext::log_batch`], and pacing.
//!
//! It emits `lines` log lines, `"line 123 of 10000"`, cycling through the levels debug, info, info, info, warn,
//! and nothing else, so the stored count is exact for benchmarks.
//!
//! - With `batch = 1` each line is one `ctx.log(..).await`: simplest, and fast enough for almost any experiment
//!   (a channel send while the database keeps up).
//! - With a larger `batch`, lines go out through `ctx.log_batch(..)` in chunks: fewer channel operations and one
//!   timestamp per chunk. Lines keep their order either way, and every line gets its own `seq`.
//!
//! Either way, logging applies back-pressure: if the database falls behind, the `.await` waits for room rather
//! than dropping lines or growing memory, so the run slows to the database's pace.
//!
//! `lines_per_second > 0` paces the chunks with a `tokio::time::interval`; 0 logs as fast as the system takes
//! it. The wait for the next tick races [`RunContext::cancelled`], and cancellation is also checked before every
//! chunk, so even a slow trickle stops at once. Progress is reported about every 1%: reporting is cheap, but a
//! hundred updates are all a progress bar can show.

use athanor_runtime::prelude::*;
use std::time::Duration;

/// Emits a configurable volume of log lines; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct Chatty;

register_experiment!(Chatty);

/// The configuration of a run, mirroring the schema.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// How many lines to log.
    pub lines: u64,
    /// Pace; 0 means as fast as possible.
    pub lines_per_second: u64,
    /// Lines per `log_batch` call; 1 uses `log()`.
    pub batch: u64,
}

impl Experiment for Chatty {
    type Config = Config;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("chatty", env!("CARGO_PKG_VERSION"))
            .description("Emits a configurable volume of log lines at a configurable rate.")
            .schema(
                Schema::new()
                    .field(Field::integer("lines").label("Lines").default(10_000).min(0).max(100_000_000))
                    .field(
                        Field::integer("lines_per_second")
                            .label("Lines per second")
                            .description("0 means as fast as possible.")
                            .default(0)
                            .min(0),
                    )
                    .field(
                        Field::integer("batch")
                            .label("Batch size")
                            .description("Lines per log_batch call; 1 uses log().")
                            .default(1)
                            .min(1)
                            .max(100_000),
                    ),
            )
    }

    async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
        let lines = config.lines;
        let rate = config.lines_per_second;
        // The schema's `min(1)` already rules out 0; `max(1)` keeps the loop below finite whatever.
        let batch = config.batch.max(1);

        let mut pace = (rate > 0).then(|| {
            // One tick per chunk. The schema bounds the period above (100,000 s at most); the floor keeps it
            // non-zero (`interval` panics on zero) for absurd rates. The default `Burst` behaviour catches up
            // after a slow chunk, so the average rate holds.
            let period = Duration::from_secs_f64(batch as f64 / rate as f64).max(Duration::from_nanos(1));
            tokio::time::interval(period)
        });
        let progress_step = (lines / 100).max(1);
        let mut next_progress = progress_step;

        let mut sent = 0;
        while sent < lines {
            if let Some(interval) = pace.as_mut() {
                // `biased`: a cancel wins over a tick that is already due (see `training_curve`).
                tokio::select! {
                    biased;
                    () = ctx.cancelled() => return Ok(()),
                    _ = interval.tick() => {}
                }
            }
            if ctx.is_cancelled() {
                return Ok(());
            }

            let end = lines.min(sent.saturating_add(batch));
            if batch == 1 {
                let number = sent + 1;
                ctx.log(level(number), format!("line {number} of {lines}"), None).await;
            } else {
                ctx.log_batch(
                    (sent + 1..=end).map(|number| (level(number), format!("line {number} of {lines}"), None)),
                )
                .await;
            }
            sent = end;

            if sent >= next_progress || sent == lines {
                ctx.progress(sent, Some(lines), Some(&format!("{sent} of {lines} lines")));
                next_progress = sent + progress_step;
            }
        }
        Ok(())
    }
}

/// The level of line `number` (from 1): debug, info, info, info, warn, repeating — mostly info, like a real run.
fn level(number: u64) -> LogLevel {
    match (number - 1) % 5 {
        0 => LogLevel::Debug,
        4 => LogLevel::Warn,
        _ => LogLevel::Info,
    }
}
