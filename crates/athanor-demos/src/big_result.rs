//! `big_result` — one result holding a large nested JSON value.
//!
//! A result can be any JSON value, not just a number: a confusion matrix, a list of predictions, a model's weights.
//! This demo records `weights`, a simulated multi-layer network shaped like
//!
//! ```json
//! {"model": "simulated MLP", "layers": [
//!     {"name": "layer_0", "units": 100, "weights": [0.0123, -0.0871, ...], "stats": {"mean": .., "std": .., "min": .., "max": ..}},
//!     ...
//! ]}
//! ```
//!
//! With the defaults (100 layers × 100 units) that is over 10,000 leaves, which is what the dashboard's lazy JSON
//! tree is built to browse. Beside it the run records the small scalar `parameter_count`: keep headline numbers in
//! their own keys, so lists and comparisons can show them without loading the big value.
//!
//! A result is stored as one row and held in memory whole while it is built, so the run refuses configurations
//! beyond [`MAX_WEIGHTS`] instead of exhausting the server's memory (which would take every other run down with
//! it). Split truly large outputs into several keys (`weights/layer_0`, …) or write them to files.

use crate::sim;
use athanor_runtime::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// Records one large nested result; see the [module documentation](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct BigResult;

register_experiment!(BigResult);

/// The most weights one run builds: 100 times the default, a value of roughly 10 MB.
pub const MAX_WEIGHTS: u64 = 1_000_000;

/// The configuration of a run, mirroring the schema.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// Layers of the simulated network.
    pub layers: u64,
    /// Units in each layer.
    pub units: u64,
}

impl Experiment for BigResult {
    type Config = Config;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("big_result", env!("CARGO_PKG_VERSION"))
            .description("Records one nested result with over 10,000 nodes, to exercise the lazy JSON tree.")
            .schema(
                Schema::new()
                    .field(Field::integer("layers").label("Layers").default(100).min(1).max(10_000))
                    .field(Field::integer("units").label("Units per layer").default(100).min(1).max(10_000)),
            )
    }

    async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
        // The schema keeps both at least 1; `max(1)` keeps the initialisation bound finite whatever.
        let layers = config.layers.max(1);
        let units = config.units.max(1);
        let parameter_count = layers.saturating_mul(units);
        ensure!(
            parameter_count <= MAX_WEIGHTS,
            "{layers} layers × {units} units is {parameter_count} weights; this demo builds at most {MAX_WEIGHTS} in \
             one result"
        );

        ctx.info(format!("initialising {layers} layers of {units} units")).await;
        // A fixed seed: every run records the same value, so two runs' results can be compared node by node.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        // Glorot-uniform initialisation for a square layer: weights in ±sqrt(3 / units).
        let bound = (3.0 / units as f64).sqrt();
        let layer_values: Vec<Value> = (0..layers)
            .map(|index| {
                let weights: Vec<f64> =
                    (0..units).map(|_| sim::round4((rng.random::<f64>() * 2.0 - 1.0) * bound)).collect();
                json!({
                    "name": format!("layer_{index}"),
                    "units": units,
                    "stats": stats(&weights),
                    "weights": weights,
                })
            })
            .collect();
        let weights = json!({"model": "simulated MLP", "layers": layer_values});

        let (nodes, leaves) = count_nodes(&weights);
        ctx.info(format!("recording `weights`: {nodes} JSON nodes, {leaves} of them leaves")).await;
        ctx.result("parameter_count", parameter_count).await?;
        ctx.result("weights", weights).await?;
        Ok(())
    }
}

/// Summary statistics of one layer's weights (`weights` is never empty: `units >= 1`).
fn stats(weights: &[f64]) -> Value {
    let count = weights.len().max(1) as f64;
    let mean = weights.iter().sum::<f64>() / count;
    let std = (weights.iter().map(|w| (w - mean).powi(2)).sum::<f64>() / count).sqrt();
    let min = weights.iter().copied().fold(f64::INFINITY, f64::min);
    let max = weights.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    json!({"mean": sim::round4(mean), "std": sim::round4(std), "min": min, "max": max})
}

/// Every node of a JSON value (objects, arrays and leaves), and how many of them are leaves.
///
/// Iterative, so a deeply nested value cannot overflow the stack.
fn count_nodes(value: &Value) -> (u64, u64) {
    let (mut nodes, mut leaves) = (0, 0);
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        nodes += 1;
        match value {
            Value::Array(items) => stack.extend(items),
            Value::Object(fields) => stack.extend(fields.values()),
            _ => leaves += 1,
        }
    }
    (nodes, leaves)
}

#[cfg(test)]
mod tests {
    use super::count_nodes;
    use serde_json::json;

    #[test]
    fn counts_containers_and_leaves() {
        assert_eq!(count_nodes(&json!(1)), (1, 1));
        assert_eq!(count_nodes(&json!({"a": [1, 2, {"b": null}], "c": "x"})), (7, 4));
    }
}
