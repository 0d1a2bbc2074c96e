//! `training_curve` — the worked example. Read this one first.
//!
//! It simulates training a model for a number of epochs and uses every part of the run API the way a real
//! training loop would: configuration, logs at all four levels with structured metadata, per-epoch and summary
//! results, live progress, and prompt cancellation. Copy it, replace the simulated numbers with your own training
//! step, and you have an Athanor experiment.
//!
//! # Anatomy of an experiment
//!
//! Everything an experiment file needs comes from one `use athanor_runtime::prelude::*;`.
//!
//! 1. **A type.** [`TrainingCurve`] is a unit struct. One value is shared by every run of the experiment, possibly
//!    several at once (the trait requires `Send + Sync`), so per-run state lives in local variables of `run`, not
//!    in the struct.
//! 2. **A configuration type.** [`Config`] is a `#[derive(Deserialize)]` struct whose fields mirror the schema's,
//!    name for name; it is the trait's `type Config`. See "Reading the configuration" below.
//! 3. **A definition** ([`Experiment::definition`]): `ExperimentDefinition::new(name, version)` with a
//!    `.description(..)` and the configuration `.schema(..)`. The schema is what the dashboard renders as the
//!    instance form, and the server validates every configuration against it before a run starts. The name is
//!    what instances store, so renaming an experiment orphans its instances: pick it once. The version (here the
//!    crate's, `env!("CARGO_PKG_VERSION")`) is recorded on every run, so a run says which code produced it.
//! 4. **A run** ([`Experiment::run`]): `async fn run(&self, ctx: RunContext, config: Config) -> RunResult`.
//!    Returning `Ok(())` marks the run completed; an error marks it failed with the error's message — `bail!`,
//!    `ensure!`, `?` on any error type, `.context(..)` to say what was being done (see [`crate::failing`]); a
//!    panic fails it with the panic message and touches no other run (see [`crate::panicking`]).
//! 5. **Registration**: `register_experiment!(TrainingCurve);` beside the impl. The server finds every registered
//!    experiment at start-up (`Registry::discover()`), so there is no list to keep in sync.
//!
//! # Reading the configuration
//!
//! `run` receives its configuration already validated against the schema — defaults filled in, numbers within
//! their bounds, and every field present except optional ones without a default that the user left empty — and deserialized into [`Config`]. So `config.epochs` is simply a `u64`: no
//! lookup by string, no unwrap, no fallback. A default is stated once, in the schema, and nowhere else.
//!
//! The struct and the schema must agree, and the runtime checks that they do before any run: registering an
//! experiment (at server start-up, or `Registry::from_experiments` in a test) deserializes into `Config` a
//! configuration with every field set, one with the optional fields left empty, and, one field at a time, every
//! number at its bounds and every option of a string. It refuses the experiment with
//! `RegistryError::ConfigMismatch`, naming the field and the value, if one does not fit, and with
//! `RegistryError::UnreadFields` if `Config` ignores a schema field (a knob in the form that would do nothing). A
//! field renamed on one side only stops the server from starting; it never fails a user's run.
//!
//! Pick each field's type from the schema: an integer field with `min(0)` fits a `u64` (without a `min`, the field
//! admits negative numbers and needs an `i64`), a float an `f64`, a string
//! (with or without `options`) a `String`, a group a nested struct (see [`crate::model_pairs`]), a list a
//! `Vec` of item structs. Only an optional field *without* a default can be absent, so only it needs an
//! `Option<T>`. The raw JSON is still there as [`RunContext::config`], for code that wants it.
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
//! [`RunContext::result`] records any value serde can serialize — a number, a string, a struct, a map — under a
//! key. It returns an error only for a value that cannot be JSON (a map with non-string keys, say), and then
//! records nothing; `?` turns that into the run's failure.
//!
//! A number per step is a series: `ctx.series("loss", epoch, loss)` records one point, stored as the result
//! `loss/1`, `loss/2`, … — the convention charts, exports and plain SQL all read. Each epoch's points are recorded
//! as soon as the epoch ends, so a viewer sees the curve grow, and the compare page draws one line per run. At the
//! end the run records the final scalars `loss` and `accuracy` (what you compare across runs) and `curve`, the
//! whole history as one nested value `{"loss": [..], "accuracy": [..]}`.
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
use athanor_runtime::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::time::Duration;

/// A simulated training run; see the [module documentation](self) for a tour of the API it uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainingCurve;

register_experiment!(TrainingCurve);

/// The configuration of a run: one field per schema field, same names (see "Reading the configuration").
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// How many epochs to simulate.
    pub epochs: u64,
    /// Higher learns faster but noisier.
    pub learning_rate: f64,
    /// Standard deviation of the metric noise.
    pub noise: f64,
    /// Random seed, for reproducible curves.
    pub seed: u64,
    /// Wall time per simulated epoch, in milliseconds.
    pub epoch_ms: u64,
    /// One of the schema's `options`.
    pub model: String,
}

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

impl Experiment for TrainingCurve {
    type Config = Config;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("training_curve", env!("CARGO_PKG_VERSION"))
            .description(
                "Simulates training a model: per-epoch loss and accuracy with noise, logs at every level, live \
                 progress.",
            )
            .schema(
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
                        Field::string("model")
                            .label("Model")
                            .options(["gpt-4", "claude-3", "llama-3"])
                            .default("gpt-4"),
                    ),
            )
    }

    async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
        // Validated and complete: every default is already filled in (see "Reading the configuration").
        let Config { epochs, learning_rate, noise, seed, epoch_ms, model } = config;
        let epoch_time = Duration::from_millis(epoch_ms);

        let ceiling = sim::accuracy_ceiling(&model);
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

            ctx.series("loss", epoch, loss).await;
            ctx.series("accuracy", epoch, accuracy).await;
            losses.push(loss);
            accuracies.push(accuracy);
            ctx.progress(epoch, Some(epochs), Some(&format!("epoch {epoch}/{epochs}")));
        }

        // Also reached after a cancel: the summary covers whatever epochs finished.
        if let (Some(&loss), Some(&accuracy)) = (losses.last(), accuracies.last()) {
            ctx.result("accuracy", accuracy).await?;
            ctx.result("loss", loss).await?;
            ctx.result("curve", json!({"loss": losses, "accuracy": accuracies})).await?;
            ctx.info(format!("finished {} epochs: loss={loss:.3} acc={accuracy:.2}", losses.len())).await;
        }
        Ok(())
    }
}
