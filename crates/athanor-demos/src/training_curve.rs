//! `training_curve` — the worked example. Read this one first.
//!
//! It simulates training a model for a number of epochs and uses every part of the run API the way a real
//! training loop would: configuration, logs at all four levels with structured metadata, per-epoch and summary
//! results, live progress, and prompt cancellation. Copy it, replace the simulated numbers with your own training
//! step, and you have an Athanor experiment.
//!
//! # Anatomy of an experiment
//!
//! 1. **A type.** [`TrainingCurve`] is a unit struct. One value is shared by every run of the experiment, possibly
//!    several at once (the trait requires `Send + Sync`), so per-run state lives in local variables of `run`, not
//!    in the struct.
//! 2. **A definition** ([`Experiment::definition`]): name, description, version and the configuration
//!    [`Schema`]. The schema is what the dashboard renders as the instance form, and the server validates every
//!    configuration against it before a run starts. The name is what instances store, so renaming an experiment
//!    orphans its instances: pick it once.
//! 3. **A run** ([`Experiment::run`]): an `async fn` receiving a [`RunContext`]. Returning `Ok(())` marks the run
//!    completed; `Err(message)` marks it failed with that message (see [`crate::failing`]); a panic fails it with
//!    the panic message and touches no other run (see [`crate::panicking`]).
//! 4. **Registration**: `athanor_runtime::register_experiment!(TrainingCurve);` beside the impl. The server finds
//!    every registered experiment at start-up (`Registry::discover()`), so there is no list to keep in sync.
//!
//! # Reading the configuration
//!
//! [`RunContext::config`] is the instance's configuration *after* validation: every field the schema declares is
//! present, defaults are filled in, and numbers are within their bounds. Reading it still never unwraps —
//! `config["epochs"].as_u64().unwrap_or(30)` falls back to the schema's default — because a run should not be
//! able to panic on its own input, and the fallback documents the default where the value is used.
//!
//! # Logs
//!
//! Each level has a job, and the log viewer filters by level:
//!
//! - **debug** — per-epoch detail you only want when digging, here with structured `metadata`
//!   (`{"epoch", "lr", "loss"}`) that the viewer shows beside the message;
//! - **info** — one line per epoch, the run's narrative;
//! - **warn** — something odd that does not stop the run: the loss went *up*;
//! - **error** — something went wrong but was handled: a simulated gradient-norm spike. An error *line* does not
//!   fail the run; only returning `Err` (or panicking) does.
//!
//! Logging is `async` because of back-pressure: while the database keeps up, `.await` completes at once (it is a
//! channel send); under sustained overload it waits for room instead of dropping lines.
//!
//! # Results
//!
//! A result is any JSON value under a key. Keys with a `/` form series: `loss/1`, `loss/2`, … are one value per
//! epoch, recorded as soon as the epoch ends so a viewer sees the curve grow. At the end the run records the
//! final scalars `loss` and `accuracy` (what you compare across runs) and `curve`, the whole history as one
//! nested value `{"loss": [..], "accuracy": [..]}`.
//!
//! # Progress
//!
//! [`RunContext::progress`] is synchronous and cheap: the latest value is broadcast to viewers and never stored,
//! so report it whenever something moves.
//!
//! # Cancellation
//!
//! The only long wait is the epoch itself, so it runs in `tokio::select!` beside [`RunContext::cancelled`]: a
//! cancel ends the wait at once rather than after the epoch. The loop then `break`s, and the run still records
//! the summary of the epochs it finished — cancelling means "stop now", not "throw away what you have". What `run`
//! returns after a cancel does not matter: the run is recorded `cancelled` either way. A run that ignores the
//! request is aborted after a grace period (see [`crate::stubborn`]), and whatever it would have recorded
//! afterwards is lost.
//!
//! In a loop without a long wait, checking [`RunContext::is_cancelled`] once per step is enough (see
//! [`crate::sleeper`]).
//!
//! # The simulation
//!
//! The loss decays exponentially from `ln 10` (a uniform guess over ten classes) towards a model-dependent floor,
//! at a rate proportional to the learning rate; accuracy rises from chance (0.1) towards the model's ceiling
//! (GPT-4 0.87, Claude 0.91, Llama 0.84). Both get gaussian noise whose spread is `noise`, widened by a higher
//! learning rate. The generator is seeded from `seed` and makes exactly two draws per epoch, so equal
//! configurations give identical curves — which is what makes two runs comparable.

use crate::sim;
use athanor_core::schema::Field;
use athanor_core::{ExperimentDefinition, LogLevel, Schema};
use athanor_runtime::{Experiment, RunContext};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::time::Duration;

/// A simulated training run; see the [module documentation](self) for a tour of the API it uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainingCurve;

athanor_runtime::register_experiment!(TrainingCurve);

/// Loss of an untrained classifier: cross-entropy of a uniform guess over ten classes.
const INITIAL_LOSS: f64 = std::f64::consts::LN_10;
/// Accuracy of an untrained classifier over ten classes.
const CHANCE_ACCURACY: f64 = 0.1;
/// Fraction of the remaining gap one epoch closes, per unit of learning rate (0.05 closes 14% per epoch).
const DECAY_PER_LEARNING_RATE: f64 = 3.0;
/// How much a higher learning rate widens the noise ("learns faster but noisier", as the form says).
const NOISE_PER_LEARNING_RATE: f64 = 4.0;
/// A noise draw this many standard deviations out is reported as a gradient-norm spike: about one epoch in 14, so
/// a 30-epoch run usually shows one (both seeded demo instances do, and a test keeps it so).
const SPIKE_SIGMA: f64 = 1.8;
/// Noise never pushes the loss to zero or below, which no real cross-entropy reaches.
const MIN_LOSS: f64 = 0.001;

#[athanor_runtime::async_trait]
impl Experiment for TrainingCurve {
    fn definition(&self) -> ExperimentDefinition {
        crate::definition(
            "training_curve",
            "Simulates training a model: per-epoch loss and accuracy with noise, logs at every level, live progress.",
            Schema::new()
                .field(
                    Field::integer("epochs")
                        .label("Epochs")
                        .description("How many epochs to simulate.")
                        .default(30)
                        .min(1)
                        .max(10_000),
                )
                .field(
                    Field::float("learning_rate")
                        .label("Learning rate")
                        .description("Higher learns faster but noisier.")
                        .default(0.05)
                        .min(0.0001)
                        .max(1.0),
                )
                .field(
                    Field::float("noise")
                        .label("Noise")
                        .description("Standard deviation of the metric noise.")
                        .default(0.02)
                        .min(0.0)
                        .max(0.5),
                )
                .field(
                    Field::integer("seed")
                        .label("Seed")
                        .description("Random seed, for reproducible curves.")
                        .default(42)
                        .min(0),
                )
                .field(
                    Field::integer("epoch_ms")
                        .label("Epoch duration (ms)")
                        .description("Wall time per simulated epoch.")
                        .default(200)
                        .min(0)
                        .max(60_000),
                )
                .field(
                    Field::string("model").label("Model").options(["gpt-4", "claude-3", "llama-3"]).default("gpt-4"),
                ),
        )
    }

    async fn run(&self, ctx: RunContext) -> Result<(), String> {
        // Validated and complete; the fallbacks are the schema's defaults (see "Reading the configuration").
        let config = ctx.config();
        let epochs = config["epochs"].as_u64().unwrap_or(30);
        let learning_rate = config["learning_rate"].as_f64().unwrap_or(0.05);
        let noise = config["noise"].as_f64().unwrap_or(0.02);
        let seed = config["seed"].as_u64().unwrap_or(42);
        let epoch_time = Duration::from_millis(config["epoch_ms"].as_u64().unwrap_or(200));
        let model = config["model"].as_str().unwrap_or("gpt-4");

        let ceiling = sim::accuracy_ceiling(model);
        // A model that reaches a higher accuracy also reaches a lower loss.
        let loss_floor = 0.1 + 1.5 * (1.0 - ceiling);
        let decay = DECAY_PER_LEARNING_RATE * learning_rate;
        let sigma = noise * (1.0 + NOISE_PER_LEARNING_RATE * learning_rate);
        // ChaCha8 rather than `StdRng`: its output for a seed is fixed across library versions, so a stored run
        // can be reproduced years later from its configuration alone.
        let mut rng = ChaCha8Rng::seed_from_u64(seed);

        ctx.info(format!(
            "training {model} for {epochs} epochs (learning rate {learning_rate}, noise {noise}, seed {seed})"
        ))
        .await;
        ctx.progress(0, Some(epochs), Some("starting"));

        let mut losses: Vec<f64> = Vec::new();
        let mut accuracies: Vec<f64> = Vec::new();
        for epoch in 1..=epochs {
            // The epoch's "training". Waiting beside `cancelled()` makes a cancel take effect now, not after the
            // epoch. `biased` polls the branches in order, so a pending cancel wins even when the sleep has
            // finished too (as a zero-length epoch may have); without it `select!` picks a ready branch at random.
            tokio::select! {
                biased;
                () = ctx.cancelled() => {
                    let finished = epoch - 1;
                    ctx.warn(format!("cancelled during epoch {epoch}/{epochs}; keeping the {finished} finished epochs"))
                        .await;
                    break;
                }
                () = tokio::time::sleep(epoch_time) => {}
            }

            // Exactly one pair of draws per epoch, used or not, keeps the sequence aligned for a given seed.
            let (z_loss, z_accuracy) = sim::standard_normal_pair(&mut rng);
            let remaining = (-decay * epoch as f64).exp();
            let loss =
                sim::round4((loss_floor + (INITIAL_LOSS - loss_floor) * remaining + z_loss * sigma).max(MIN_LOSS));
            let accuracy =
                sim::round4((ceiling - (ceiling - CHANCE_ACCURACY) * remaining + z_accuracy * sigma).clamp(0.0, 1.0));

            ctx.log(
                LogLevel::Debug,
                format!(
                    "epoch {epoch}: lr={learning_rate} loss={loss:.4} accuracy={accuracy:.4} noise draw {z_loss:+.2}σ"
                ),
                Some(json!({"epoch": epoch, "lr": learning_rate, "loss": loss})),
            )
            .await;
            ctx.info(format!("epoch {epoch}/{epochs} loss={loss:.3} acc={accuracy:.2}")).await;
            if let Some(&previous) = losses.last() {
                if loss > previous {
                    ctx.warn(format!("loss went up at epoch {epoch}: {previous:.4} → {loss:.4}")).await;
                }
            }
            if sigma > 0.0 && z_loss.abs() > SPIKE_SIGMA {
                ctx.log(
                    LogLevel::Error,
                    format!("gradient norm spike at epoch {epoch} ({z_loss:+.1}σ); clipped the update and continued"),
                    Some(json!({"epoch": epoch, "sigma": z_loss})),
                )
                .await;
            }

            ctx.result(format!("loss/{epoch}"), json!(loss)).await;
            ctx.result(format!("accuracy/{epoch}"), json!(accuracy)).await;
            losses.push(loss);
            accuracies.push(accuracy);
            ctx.progress(epoch, Some(epochs), Some(&format!("epoch {epoch}/{epochs}")));
        }

        // Also reached after a cancel: the summary covers whatever epochs finished.
        if let (Some(&loss), Some(&accuracy)) = (losses.last(), accuracies.last()) {
            ctx.result("accuracy", json!(accuracy)).await;
            ctx.result("loss", json!(loss)).await;
            ctx.result("curve", json!({"loss": losses, "accuracy": accuracies})).await;
            ctx.info(format!("finished {} epochs: loss={loss:.3} acc={accuracy:.2}", losses.len())).await;
        }
        Ok(())
    }
}
