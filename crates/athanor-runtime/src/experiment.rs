//! The experiment trait, and discovery of every experiment linked into the binary.
//!
//! Writing an experiment takes a configuration struct, a type, an `impl Experiment`, and one
//! `register_experiment!` line:
//!
//! ```
//! use athanor_runtime::prelude::*;
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     from: u32,
//! }
//!
//! struct Countdown;
//!
//! impl Experiment for Countdown {
//!     type Config = Config;
//!
//!     fn definition(&self) -> ExperimentDefinition {
//!         ExperimentDefinition::new("countdown", "1.0.0")
//!             .description("Counts down and records the result.")
//!             .schema(Schema::new().field(Field::integer("from").label("Start at").default(10).min(0).max(1_000)))
//!     }
//!
//!     async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
//!         for n in (0..=config.from).rev() {
//!             ctx.info(format!("{n}…")).await;
//!             ctx.progress(u64::from(config.from - n), Some(config.from.into()), None);
//!             ensure!(!ctx.is_cancelled(), "stopped at {n}");
//!         }
//!         ctx.result("liftoff", true).await?;
//!         Ok(())
//!     }
//! }
//!
//! register_experiment!(Countdown);
//! ```
//!
//! `run` receives the configuration already validated against the schema (defaults filled in, bounds checked) and
//! deserialized into `Config`, so a default is stated once, in the schema. Registration proves that `Config` can hold
//! what the schema lets through — every field set, optional fields left empty, and one field at a time each integer
//! at its bounds (`i64`'s when unbounded), each float bound and each string option — and that it reads every schema
//! field, so a field renamed on one side and not the other stops the server at start-up, not a user's run.

use crate::context::RunContext;
use athanor_core::schema::{Field, FieldKind};
use athanor_core::{ExperimentDefinition, Schema};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// What `run` returns: `Ok(())` completes the run; an error fails it with the error's message (and its causes,
/// outermost first). `anyhow::Error` converts from any error type, so `?` works on I/O, HTTP and parse errors, and
/// `bail!`/`ensure!`/`.context(..)` (in the [`prelude`](crate::prelude)) phrase failures for the reader.
pub type RunResult = anyhow::Result<()>;

/// An experiment: a definition (name, description, version, schema) and the code of one run.
///
/// A panic in `run` fails that run with the panic message and touches nothing else. One value serves every run
/// of the experiment, possibly several at once, so per-run state belongs in `run`'s locals.
pub trait Experiment: Send + Sync + 'static {
    /// The configuration `run` receives: usually a `#[derive(Deserialize)]` struct whose fields mirror the
    /// schema's. `serde_json::Value` takes it untyped.
    type Config: DeserializeOwned + Send + 'static;

    /// Identity and configuration schema. Called once at registration; must be cheap and deterministic.
    fn definition(&self) -> ExperimentDefinition;

    /// Execute one run with its validated configuration. Write it as `async fn run(..) -> RunResult`.
    fn run(&self, ctx: RunContext, config: Self::Config) -> impl Future<Output = RunResult> + Send;
}

/// An [`Experiment`] with its configuration type erased, so experiments of different `Config` types can sit in
/// one [`Registry`]. Every `Experiment` is one; there is nothing to implement.
#[async_trait::async_trait]
pub trait AnyExperiment: Send + Sync + 'static {
    /// See [`Experiment::definition`].
    fn definition(&self) -> ExperimentDefinition;

    /// Whether `config` (a validated configuration) deserializes into the experiment's `Config`: `Ok` with the
    /// paths of the keys `Config` has no field for (they would be silently unused), or serde's error.
    fn check_config(&self, config: &serde_json::Value) -> Result<Vec<String>, String>;

    /// Deserialize the run's configuration and run.
    async fn run_erased(&self, ctx: RunContext) -> RunResult;
}

#[async_trait::async_trait]
impl<E: Experiment> AnyExperiment for E {
    fn definition(&self) -> ExperimentDefinition {
        Experiment::definition(self)
    }

    fn check_config(&self, config: &serde_json::Value) -> Result<Vec<String>, String> {
        let mut unread = Vec::new();
        serde_ignored::deserialize(config, |path| unread.push(path.to_string()))
            .map(|_: E::Config| unread)
            .map_err(|error: serde_json::Error| error.to_string())
    }

    async fn run_erased(&self, ctx: RunContext) -> RunResult {
        let config = E::Config::deserialize(ctx.config()).map_err(|error| {
            anyhow::anyhow!("the validated configuration does not fit the experiment's Config type: {error}")
        })?;
        self.run(ctx, config).await
    }
}

/// One experiment linked into the binary, collected by [`inventory`]. Made by [`register_experiment!`].
pub struct Registration {
    /// Builds the experiment value.
    pub make: fn() -> Box<dyn AnyExperiment>,
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

/// Where an experiment came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled into this binary.
    Builtin,
    /// Declared in a manifest file, run as a command.
    Command {
        /// The manifest that declares it.
        manifest: std::path::PathBuf,
        /// The program and its arguments.
        command: Vec<String>,
    },
}

/// A registered experiment with its definition computed once.
#[derive(Clone)]
pub struct Registered {
    /// What the experiment declares.
    pub definition: Arc<ExperimentDefinition>,
    /// Its code.
    pub experiment: Arc<dyn AnyExperiment>,
    /// Compiled in, or declared in a manifest.
    pub origin: Origin,
}

/// Why a set of experiments cannot form a registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Two experiments claim the same name.
    #[error("two experiments are registered under the name {0:?}; experiment names must be unique")]
    Duplicate(String),
    /// The schema is inconsistent (a default outside its own bounds, …).
    #[error("experiment {experiment:?} has an inconsistent schema: {errors}")]
    BadSchema {
        /// The experiment.
        experiment: String,
        /// What is wrong.
        errors: athanor_core::ValidationErrors,
    },
    /// A configuration the schema accepts does not deserialize into the experiment's `Config` type.
    #[error(
        "experiment {experiment:?}: {probe} does not deserialize into its Config type: {error}; the schema's fields \
         are {fields}: make the struct's fields match them (an optional field without a default is an `Option`)"
    )]
    ConfigMismatch {
        /// The experiment.
        experiment: String,
        /// Which configuration failed, e.g. "a configuration with every number at its maximum".
        probe: String,
        /// serde's message, naming the field.
        error: String,
        /// The schema's top-level field names, for comparison with the struct's.
        fields: String,
    },
    /// The schema declares fields that the `Config` type does not read: a knob in the form that does nothing.
    #[error(
        "experiment {experiment:?}: its Config type does not read the schema field(s) {unread}; add them to the \
         struct or remove them from the schema"
    )]
    UnreadFields {
        /// The experiment.
        experiment: String,
        /// The unread paths, comma-separated.
        unread: String,
    },
}

/// Every experiment this server knows, by name.
#[derive(Clone, Default)]
pub struct Registry {
    by_name: BTreeMap<String, Registered>,
}

impl Registry {
    /// Collect every [`register_experiment!`] in the linked crates.
    pub fn discover() -> Result<Registry, RegistryError> {
        Registry::from_experiments(
            inventory::iter::<Registration>.into_iter().map(|registration| (registration.make)()),
        )
    }

    /// Build a registry from explicit experiments (tests; embedding).
    pub fn from_experiments(
        experiments: impl IntoIterator<Item = Box<dyn AnyExperiment>>,
    ) -> Result<Registry, RegistryError> {
        let mut registry = Registry::default();
        for experiment in experiments {
            registry.add(Arc::from(experiment), Origin::Builtin)?;
        }
        Ok(registry)
    }

    /// Add one experiment after checking it: a unique name, a consistent schema, and a `Config` type that the
    /// schema's sample configuration deserializes into.
    pub fn add(&mut self, experiment: Arc<dyn AnyExperiment>, origin: Origin) -> Result<(), RegistryError> {
        let definition = experiment.definition();
        let name = definition.name.to_string();
        if self.by_name.contains_key(&name) {
            return Err(RegistryError::Duplicate(name));
        }
        definition.schema.check().map_err(|errors| RegistryError::BadSchema { experiment: name.clone(), errors })?;
        check_config_type(experiment.as_ref(), &definition.schema, &name)?;
        self.by_name.insert(name, Registered { definition: Arc::new(definition), experiment, origin });
        Ok(())
    }

    /// The experiment called `name`, if this server has it.
    pub fn get(&self, name: &str) -> Option<&Registered> {
        self.by_name.get(name)
    }

    /// Every definition, by name.
    pub fn definitions(&self) -> impl Iterator<Item = &ExperimentDefinition> {
        self.by_name.values().map(|registered| registered.definition.as_ref())
    }

    /// Every experiment, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Registered> {
        self.by_name.values()
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

/// The `Config` of an experiment whose schema has no fields: holds nothing. (With fields in the schema, registration
/// refuses it, since every field would be a knob that does nothing; take `serde_json::Value` to read them untyped.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoConfig;

impl<'de> Deserialize<'de> for NoConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<NoConfig, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(NoConfig)
    }
}

/// Prove at registration that `Config` can hold what the schema lets through, so a mismatch stops the server at
/// start-up instead of failing a user's run. Probes, each validated first so that only configurations a user could
/// really send are tried: every field set; every optional field without a default left out (what a user who leaves
/// them empty sends); then, one field at a time, every integer at its bounds (`i64`'s when unbounded, so a `u32` for
/// a field that admits negative numbers is caught), every float at its bounds, and every option of a string.
fn check_config_type(experiment: &dyn AnyExperiment, schema: &Schema, name: &str) -> Result<(), RegistryError> {
    let full = schema.sample();
    let mut sparse = full.clone();
    without_unset_optionals(&schema.fields, &mut sparse);
    let mut probes = vec![
        ("a configuration with every field set".to_owned(), full.clone()),
        ("a configuration with the optional fields left empty".to_owned(), sparse),
    ];
    for (path, value) in field_variants(&schema.fields, "") {
        let mut probe = full.clone();
        if set_path(&mut probe, &path, value.clone()) {
            probes.push((format!("a configuration with `{path}` = {value}"), probe));
        }
    }
    for (index, (probe, config)) in probes.into_iter().enumerate() {
        let Ok(config) = schema.validate(&config) else { continue };
        match experiment.check_config(&config) {
            // Unread keys are checked on the full configuration only, where every field is present.
            Ok(unread) if index == 0 && !unread.is_empty() && config.as_object().is_some_and(|o| !o.is_empty()) => {
                return Err(RegistryError::UnreadFields { experiment: name.to_owned(), unread: unread.join(", ") });
            }
            Ok(_) => {}
            Err(error) => {
                let fields = schema.fields.iter().map(|field| format!("`{}`", field.name)).collect::<Vec<_>>();
                return Err(RegistryError::ConfigMismatch {
                    experiment: name.to_owned(),
                    probe,
                    error,
                    fields: if fields.is_empty() { "none".to_owned() } else { fields.join(", ") },
                });
            }
        }
    }
    Ok(())
}

/// Remove every optional scalar without a default (validation leaves those absent when a user leaves them empty).
fn without_unset_optionals(fields: &[Field], value: &mut serde_json::Value) {
    let Some(object) = value.as_object_mut() else { return };
    for field in fields {
        match &field.kind {
            FieldKind::Group { fields } => {
                if let Some(inner) = object.get_mut(&field.name) {
                    without_unset_optionals(fields, inner);
                }
            }
            FieldKind::List { item, .. } => {
                if let Some(serde_json::Value::Array(items)) = object.get_mut(&field.name) {
                    items.iter_mut().for_each(|entry| without_unset_optionals(item, entry));
                }
            }
            _ if !field.required && field.default_value().is_none() => {
                object.remove(&field.name);
            }
            _ => {}
        }
    }
}

/// The extreme and enumerated values of every field, by path (`api.timeout`, `pairs[0].runs`).
fn field_variants(fields: &[Field], prefix: &str) -> Vec<(String, serde_json::Value)> {
    let mut variants = Vec::new();
    for field in fields {
        let path = if prefix.is_empty() { field.name.clone() } else { format!("{prefix}.{}", field.name) };
        match &field.kind {
            FieldKind::Integer { min, max, step, .. } => {
                let on_grid = |value: i64| match step {
                    // The largest value on the step grid (counted from `min`, or 0) not past `value`.
                    Some(step) if *step > 0 => {
                        let base = i128::from(min.unwrap_or(0));
                        let snapped =
                            base + (i128::from(value) - base).div_euclid(i128::from(*step)) * i128::from(*step);
                        i64::try_from(snapped).unwrap_or(value)
                    }
                    _ => value,
                };
                for bound in [min.unwrap_or(i64::MIN), on_grid(max.unwrap_or(i64::MAX))] {
                    variants.push((path.clone(), serde_json::Value::from(bound)));
                }
            }
            FieldKind::Float { min, max, .. } => {
                variants.extend(
                    [min, max].into_iter().flatten().map(|bound| (path.clone(), serde_json::Value::from(*bound))),
                );
            }
            FieldKind::String { options: Some(options), .. } => {
                variants.extend(options.iter().map(|option| (path.clone(), serde_json::Value::from(option.as_str()))));
            }
            FieldKind::Group { fields } => variants.extend(field_variants(fields, &path)),
            // The sample holds at least one item of every list; its fields stand for all items'.
            FieldKind::List { item, .. } => variants.extend(field_variants(item, &format!("{path}[0]"))),
            FieldKind::String { .. } | FieldKind::Boolean { .. } => {}
        }
    }
    variants
}

/// Replace the value at `path` (as [`field_variants`] writes it) in `config`; false when the path is not there.
fn set_path(config: &mut serde_json::Value, path: &str, value: serde_json::Value) -> bool {
    let mut target = config;
    for segment in path.split('.') {
        let (name, index) = match segment.strip_suffix("[0]") {
            Some(name) => (name, Some(0)),
            None => (segment, None),
        };
        let Some(next) = target.get_mut(name) else { return false };
        target = match index {
            Some(index) => match next.get_mut(index) {
                Some(item) => item,
                None => return false,
            },
            None => next,
        };
    }
    *target = value;
    true
}
