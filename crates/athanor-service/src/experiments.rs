//! Experiments: what this server can run, their schemas, and checking a configuration against one.

use crate::{Service, ServiceError, ServiceResult};
use athanor_core::api::ManifestReport;
use athanor_core::ExperimentDefinition;
use serde_json::Value;

impl Service {
    /// Every experiment this server can run now, by name. Follows the manifest of command experiments: an edit
    /// of `athanor.toml` shows here once it is applied.
    pub fn experiments(&self) -> Vec<ExperimentDefinition> {
        let mut definitions: Vec<ExperimentDefinition> = self.runtime.registry().definitions().cloned().collect();
        definitions.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        definitions
    }

    /// One experiment's definition: description, version and configuration schema.
    pub fn experiment(&self, name: &str) -> ServiceResult<ExperimentDefinition> {
        self.runtime
            .registry()
            .get(name.trim())
            .map(|registered| (*registered.definition).clone())
            .ok_or_else(|| ServiceError::NotFound(format!("no experiment named {name:?} on this server")))
    }

    /// Check `config` against `experiment`'s schema without saving anything. Answers the configuration completed
    /// with every default (what an instance would store), or every refused field with its path (`epochs`,
    /// `model_pairs[1].runs`); an experiment this server does not have is `NotFound`.
    pub fn validate_config(&self, experiment: &str, config: &Value) -> ServiceResult<Value> {
        let definition = self.experiment(experiment)?;
        definition.schema.validate(config).map_err(|errors| ServiceError::invalid_config(errors, None))
    }

    /// The problems of the manifest of command experiments while it has any, or `None` when the experiments in
    /// use are the file's current ones (or the server reads no manifest).
    pub fn manifest_report(&self) -> Option<ManifestReport> {
        let manifest = self.manifest.as_ref()?;
        let file = manifest.path().display().to_string();
        // Every message starts with the file's path, which the report names once.
        let prefix = format!("{file}: ");
        manifest.problems().map(|problems| ManifestReport {
            problems: problems.iter().map(|p| p.strip_prefix(&prefix).unwrap_or(p).to_owned()).collect(),
            file,
        })
    }
}
