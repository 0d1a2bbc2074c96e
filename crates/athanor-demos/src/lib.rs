//! Demo experiments that ship with Athanor.
//!
//! Each one shows something a researcher will want to see the dashboard do, and each is a worked example of one
//! part of the API for writing your own experiment:
//!
//! | Module | Shows |
//! |---|---|
//! | [`training_curve`] | **Start here.** An experiment's anatomy, its typed `Config`, the whole run API. |
//! | [`sleeper`] | Cancellation by polling `is_cancelled()` between short steps. |
//! | [`failing`] | Failing a run with `bail!`, `?` and `.context(..)`. |
//! | [`panicking`] | A panic fails only its own run. |
//! | [`stubborn`] | What a forced abort does to a run that ignores cancellation. |
//! | [`big_result`] | A large nested JSON result beside a small scalar one. |
//! | [`chatty`] | `log` versus `log_batch`, paced output, back-pressure. |
//! | [`model_pairs`] | Lists and groups in the configuration schema, as nested `Config` structs. |
//!
//! Every experiment registers itself with `athanor_runtime::register_experiment!`, so linking this crate is enough
//! for `athanor_runtime::Registry::discover()` to find them all. [`experiments`] lists them explicitly, for
//! embedding without discovery.

pub mod big_result;
pub mod chatty;
pub mod failing;
pub mod model_pairs;
pub mod panicking;
mod sim;
pub mod sleeper;
pub mod stubborn;
pub mod training_curve;

pub use big_result::BigResult;
pub use chatty::Chatty;
pub use failing::Failing;
pub use model_pairs::ModelPairs;
pub use panicking::Panicking;
pub use sleeper::Sleeper;
pub use stubborn::Stubborn;
pub use training_curve::TrainingCurve;

use athanor_core::{ExperimentDefinition, Schema};
use athanor_runtime::AnyExperiment;
use serde_json::{json, Value};

/// Every demo experiment, for building a `Registry` explicitly (`Registry::from_experiments`).
pub fn experiments() -> Vec<Box<dyn AnyExperiment>> {
    vec![
        Box::new(TrainingCurve),
        Box::new(Sleeper),
        Box::new(Failing),
        Box::new(Panicking),
        Box::new(Stubborn),
        Box::new(BigResult),
        Box::new(Chatty),
        Box::new(ModelPairs),
    ]
}

/// Every demo experiment's definition.
pub fn definitions() -> Vec<ExperimentDefinition> {
    experiments().iter().map(|experiment| experiment.definition()).collect()
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
            description: "A baseline training curve.",
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

    #[test]
    fn every_demo_instance_fits_its_experiments_config_type() {
        let experiments = experiments();
        for demo in demo_instances() {
            let experiment = experiments
                .iter()
                .find(|e| e.definition().name.as_str() == demo.experiment)
                .unwrap_or_else(|| panic!("{} names unknown experiment {}", demo.name, demo.experiment));
            let config = demo
                .configuration(&experiment.definition().schema)
                .unwrap_or_else(|err| panic!("{}: {err}", demo.name));
            experiment.check_config(&config).unwrap_or_else(|err| panic!("{}: {err}", demo.name));
        }
    }

    #[test]
    fn every_demo_registers() {
        let registry = athanor_runtime::Registry::from_experiments(experiments()).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(registry.len(), experiments().len());
    }
}
