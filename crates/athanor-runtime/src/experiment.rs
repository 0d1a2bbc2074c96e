//! The experiment trait, and discovery of every experiment linked into the binary.
//!
//! Writing an experiment takes three steps: a type, an `impl Experiment`, and one `register_experiment!` line.
//!
//! ```
//! use athanor_core::{schema::Field, ExperimentDefinition, ExperimentName, LogLevel, Schema};
//! use athanor_runtime::{register_experiment, Experiment, RunContext};
//!
//! struct Countdown;
//!
//! #[athanor_runtime::async_trait]
//! impl Experiment for Countdown {
//!     fn definition(&self) -> ExperimentDefinition {
//!         ExperimentDefinition {
//!             name: ExperimentName::parse("countdown").unwrap(),
//!             description: "Counts down and records the result.".into(),
//!             version: "1.0.0".into(),
//!             schema: Schema::new().field(Field::integer("from").default(10).min(0)),
//!         }
//!     }
//!
//!     async fn run(&self, ctx: RunContext) -> Result<(), String> {
//!         let from = ctx.config()["from"].as_i64().unwrap_or(10);
//!         for n in (0..=from).rev() {
//!             ctx.log(LogLevel::Info, format!("{n}…"), None).await;
//!             if ctx.is_cancelled() {
//!                 return Err("stopped early".into());
//!             }
//!         }
//!         ctx.result("liftoff", serde_json::json!(true)).await;
//!         Ok(())
//!     }
//! }
//!
//! register_experiment!(Countdown);
//! ```

use crate::context::RunContext;
use athanor_core::ExperimentDefinition;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An experiment: a definition (name, description, version, schema) and the code of one run.
///
/// `run` receives the run's context (configuration, logging, results, progress, cancellation) and ends the run
/// by returning: `Ok(())` marks it completed, `Err(message)` failed with that message. A panic fails the run with
/// the panic message and touches nothing else.
#[async_trait::async_trait]
pub trait Experiment: Send + Sync + 'static {
    /// Identity and configuration schema. Called once at discovery; must be cheap and deterministic.
    fn definition(&self) -> ExperimentDefinition;

    /// Execute one run.
    async fn run(&self, ctx: RunContext) -> Result<(), String>;
}

/// One experiment linked into the binary, collected by [`inventory`]. Made by [`register_experiment!`].
pub struct Registration {
    /// Builds the experiment value.
    pub make: fn() -> Box<dyn Experiment>,
}

inventory::collect!(Registration);

/// Register an experiment type so the server finds it without a hand-kept list.
///
/// The argument is an expression that builds the experiment (a unit struct's name is enough).
#[macro_export]
macro_rules! register_experiment {
    ($make:expr) => {
        $crate::inventory::submit! {
            $crate::Registration { make: || ::std::boxed::Box::new($make) }
        }
    };
}

/// A registered experiment with its definition computed once.
#[derive(Clone)]
pub struct Registered {
    /// What the experiment declares.
    pub definition: Arc<ExperimentDefinition>,
    /// Its code.
    pub experiment: Arc<dyn Experiment>,
}

/// Two experiments claim the same name; the binary is misconfigured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("two experiments are registered under the name {0:?}; experiment names must be unique")]
pub struct DuplicateExperiment(pub String);

/// Every experiment this binary was built with, by name.
#[derive(Clone, Default)]
pub struct Registry {
    by_name: BTreeMap<String, Registered>,
}

impl Registry {
    /// Collect every [`register_experiment!`] in the linked crates.
    pub fn discover() -> Result<Registry, DuplicateExperiment> {
        Registry::from_experiments(
            inventory::iter::<Registration>.into_iter().map(|registration| (registration.make)()),
        )
    }

    /// Build a registry from explicit experiments (tests; embedding).
    pub fn from_experiments(
        experiments: impl IntoIterator<Item = Box<dyn Experiment>>,
    ) -> Result<Registry, DuplicateExperiment> {
        let mut by_name = BTreeMap::new();
        for experiment in experiments {
            let definition = experiment.definition();
            let name = definition.name.to_string();
            let registered = Registered { definition: Arc::new(definition), experiment: Arc::from(experiment) };
            if by_name.insert(name.clone(), registered).is_some() {
                return Err(DuplicateExperiment(name));
            }
        }
        Ok(Registry { by_name })
    }

    /// The experiment called `name`, if this binary has it.
    pub fn get(&self, name: &str) -> Option<&Registered> {
        self.by_name.get(name)
    }

    /// Every definition, by name.
    pub fn definitions(&self) -> impl Iterator<Item = &ExperimentDefinition> {
        self.by_name.values().map(|registered| registered.definition.as_ref())
    }

    /// How many experiments are registered.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when no experiment is registered.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
