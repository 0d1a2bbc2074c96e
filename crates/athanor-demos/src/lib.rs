//! Demo experiments that ship with Athanor.
//!
//! Each one shows something a researcher will want to see the dashboard do: a noisy training curve, a slow job to
//! cancel, failures and panics, a huge nested result, a firehose of logs, and a schema with groups and lists.
//! They double as worked examples for writing your own experiment: read [`training_curve`] first.

use athanor_core::schema::Field;
use athanor_core::{ExperimentDefinition, ExperimentName, Schema};
use serde_json::{json, Value};

fn definition(name: &str, description: &str, schema: Schema) -> ExperimentDefinition {
    ExperimentDefinition {
        // The names below are literals checked by the `every_definition_is_sane` test.
        name: ExperimentName::parse(name).unwrap_or_else(|err| panic!("demo experiment name {name:?}: {err}")),
        description: description.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        schema,
    }
}

/// A simulated training run: loss falls and accuracy rises with noise, one result per epoch.
pub fn training_curve() -> ExperimentDefinition {
    definition(
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
            .field(Field::string("model").label("Model").options(["gpt-4", "claude-3", "llama-3"]).default("gpt-4")),
    )
}

/// Sleeps in small steps, checking for cancellation between them.
pub fn sleeper() -> ExperimentDefinition {
    definition(
        "sleeper",
        "Sleeps for a while in small steps and stops promptly when cancelled.",
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

/// Always fails with a message, after a little work.
pub fn failing() -> ExperimentDefinition {
    definition(
        "failing",
        "Logs a few lines, then fails with the configured message.",
        Schema::new().field(
            Field::string("message").label("Error message").default("the model diverged (loss = NaN)").required(),
        ),
    )
}

/// Panics, to show that a panic fails only its own run.
pub fn panicking() -> ExperimentDefinition {
    definition(
        "panicking",
        "Panics partway through; only this run fails, with the panic message.",
        Schema::new().field(Field::integer("after_steps").label("Panic after steps").default(3).min(0).max(1_000)),
    )
}

/// Ignores cancellation, so only the forced abort after the grace period stops it.
pub fn stubborn() -> ExperimentDefinition {
    definition(
        "stubborn",
        "Never checks for cancellation: a cancel becomes a forced abort after the grace period.",
        Schema::new().field(Field::integer("seconds").label("Seconds").default(600).min(0).max(86_400)),
    )
}

/// Emits one big nested JSON result.
pub fn big_result() -> ExperimentDefinition {
    definition(
        "big_result",
        "Records one nested result with over 10,000 nodes, to exercise the lazy JSON tree.",
        Schema::new()
            .field(Field::integer("layers").label("Layers").default(100).min(1).max(10_000))
            .field(Field::integer("units").label("Units per layer").default(100).min(1).max(10_000)),
    )
}

/// Logs as fast as asked, for benchmarks and for the log viewer.
pub fn chatty() -> ExperimentDefinition {
    definition(
        "chatty",
        "Emits a configurable volume of log lines at a configurable rate.",
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

/// Compares pairs of models over several trials: a schema with a group and a list.
pub fn model_pairs() -> ExperimentDefinition {
    definition(
        "model_pairs",
        "Compares pairs of models over N trials each; shows groups and lists in the configuration form.",
        Schema::new()
            .field(
                Field::list(
                    "model_pairs",
                    vec![
                        Field::string("a").label("Model A").options(["gpt-4", "claude-3", "llama-3"]).required(),
                        Field::string("b").label("Model B").options(["gpt-4", "claude-3", "llama-3"]).required(),
                        Field::integer("runs").label("Trials").default(3).min(1).max(100),
                    ],
                )
                .label("Model pairs")
                .min_items(1)
                .default_items(json!([{"a": "gpt-4", "b": "claude-3", "runs": 3}])),
            )
            .field(
                Field::group(
                    "api",
                    vec![
                        Field::integer("timeout").label("Timeout (s)").default(30).min(1).max(600),
                        Field::integer("retries").label("Retries").default(2).min(0).max(10),
                    ],
                )
                .label("API"),
            ),
    )
}

/// Every demo experiment's definition.
pub fn definitions() -> Vec<ExperimentDefinition> {
    vec![training_curve(), sleeper(), failing(), panicking(), stubborn(), big_result(), chatty(), model_pairs()]
}

/// A demo instance created on first start: experiment, name, description, configuration overrides.
#[derive(Debug, Clone)]
pub struct DemoInstance {
    /// The experiment it configures.
    pub experiment: &'static str,
    /// Instance name.
    pub name: &'static str,
    /// What it demonstrates.
    pub description: &'static str,
    /// Values that differ from the schema's defaults (validated like any user input).
    pub config: Value,
}

impl DemoInstance {
    /// The complete configuration: the schema's defaults (as a new-instance form starts) with this demo's
    /// values on top, validated.
    pub fn configuration(&self, schema: &Schema) -> Result<Value, athanor_core::ValidationErrors> {
        let mut config = schema.defaults();
        if let (Value::Object(base), Value::Object(overrides)) = (&mut config, &self.config) {
            base.extend(overrides.clone());
        }
        schema.validate(&config)
    }
}

/// The instances a fresh database starts with, so a new user has something to run at once.
pub fn demo_instances() -> Vec<DemoInstance> {
    vec![
        DemoInstance {
            experiment: "training_curve",
            name: "GPT-4 Baseline",
            description: "The seed's example: a baseline training curve.",
            config: json!({"model": "gpt-4", "epochs": 30}),
        },
        DemoInstance {
            experiment: "training_curve",
            name: "Claude Baseline",
            description: "Same curve, different model and learning rate; compare it with GPT-4 Baseline.",
            config: json!({"model": "claude-3", "epochs": 30, "learning_rate": 0.08, "seed": 7}),
        },
        DemoInstance {
            experiment: "sleeper",
            name: "Long sleep (cancel me)",
            description: "Runs for two minutes unless cancelled.",
            config: json!({"seconds": 120}),
        },
        DemoInstance {
            experiment: "failing",
            name: "Diverging model",
            description: "Always fails, to show how errors look.",
            config: json!({}),
        },
        DemoInstance {
            experiment: "panicking",
            name: "Panicking experiment",
            description: "Panics; only its own run fails.",
            config: json!({}),
        },
        DemoInstance {
            experiment: "big_result",
            name: "Big nested result",
            description: "One result with 10,000+ JSON nodes.",
            config: json!({}),
        },
        DemoInstance {
            experiment: "model_pairs",
            name: "Model pairs",
            description: "Pairs of models compared over several trials.",
            config: json!({"model_pairs": [{"a": "gpt-4", "b": "claude-3", "runs": 3}, {"a": "llama-3", "b": "gpt-4", "runs": 5}]}),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_is_sane_and_names_are_unique() {
        let definitions = definitions();
        for definition in &definitions {
            definition.schema.check().unwrap_or_else(|err| panic!("{}: {err}", definition.name));
        }
        let mut names: Vec<_> = definitions.iter().map(|d| d.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), definitions.len());
    }

    #[test]
    fn every_demo_instance_is_valid_for_its_experiment() {
        let definitions = definitions();
        for demo in demo_instances() {
            let definition = definitions
                .iter()
                .find(|d| d.name.as_str() == demo.experiment)
                .unwrap_or_else(|| panic!("{} names unknown experiment {}", demo.name, demo.experiment));
            demo.configuration(&definition.schema).unwrap_or_else(|err| panic!("{}: {err}", demo.name));
        }
    }
}
