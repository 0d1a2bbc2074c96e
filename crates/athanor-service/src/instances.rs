//! Instances: create, read, edit, clone and delete saved configurations.
//!
//! Every write parses the names, validates the configuration against the experiment's schema (completing it with
//! defaults), writes, and then publishes the lifecycle event that live pages follow; a refused write stores nothing
//! and publishes nothing.

use crate::{instance_not_found, Service, ServiceError, ServiceResult};
use athanor_core::api::{InstanceChanges, InstanceDetails, InstanceInput};
use athanor_core::{
    Description, ExperimentName, FieldError, Instance, InstanceDraft, InstanceId, InstanceName, InstanceSummary,
    LifecycleEvent,
};
use serde_json::Value;

/// The longest prefix kept when a clone's name is derived from its source's (names are capped in length).
const CLONE_NAME_ROOM: usize = 180;

impl Service {
    /// Every instance with its run count and latest run, newest first.
    pub async fn list_instances(&self) -> ServiceResult<Vec<InstanceSummary>> {
        Ok(self.store.list_instances().await?)
    }

    /// One instance.
    pub async fn instance(&self, id: InstanceId) -> ServiceResult<Instance> {
        self.store.get_instance(id).await?.ok_or_else(|| instance_not_found(id))
    }

    /// One instance with its experiment's definition (when the server still has it) and its runs, newest first.
    pub async fn instance_details(&self, id: InstanceId) -> ServiceResult<InstanceDetails> {
        let instance = self.instance(id).await?;
        let runs = self.store.list_runs(id).await?;
        let experiment = self
            .runtime
            .registry()
            .get(instance.experiment.as_str())
            .map(|registered| (*registered.definition).clone());
        Ok(InstanceDetails { instance, experiment, runs })
    }

    /// Save a new instance. Refused fields are reported together (`name`, `description`, `experiment`,
    /// `config.<path>`), and nothing is written unless all are fine.
    pub async fn create_instance(&self, input: InstanceInput) -> ServiceResult<Instance> {
        let mut fields = Vec::new();
        let name = parse_field(&mut fields, "name", InstanceName::parse(&input.name));
        let description = parse_field(&mut fields, "description", Description::parse(&input.description));
        // A bad experiment is reported with the other fields; only the configuration check needs a good one.
        let experiment = match self.experiment_field(&input.experiment) {
            Ok(experiment) => Some(experiment),
            Err(error) => {
                fields.push(error);
                None
            }
        };
        let config =
            experiment.as_ref().and_then(|experiment| self.config_field(&mut fields, experiment, &input.config));
        let Some(experiment) = experiment else {
            return Err(ServiceError::invalid_fields(fields));
        };
        let (Some(name), Some(description), Some(config)) = (name, description, config) else {
            return Err(ServiceError::invalid_fields(fields));
        };
        let instance = self.store.create_instance(&InstanceDraft { experiment, name, description, config }).await?;
        self.runtime.hub().publish_lifecycle(LifecycleEvent::InstanceSaved(instance.clone()));
        Ok(instance)
    }

    /// Change an instance's name, description or configuration; fields left out keep their value. Past runs keep
    /// their own configuration snapshots. An instance's experiment never changes: create a new instance instead.
    pub async fn update_instance(&self, id: InstanceId, changes: InstanceChanges) -> ServiceResult<Instance> {
        let existing = self.instance(id).await?;
        let mut fields = Vec::new();
        let name = match &changes.name {
            Some(text) => parse_field(&mut fields, "name", InstanceName::parse(text)),
            None => Some(existing.name.clone()),
        };
        let description = match &changes.description {
            Some(text) => parse_field(&mut fields, "description", Description::parse(text)),
            None => Some(existing.description.clone()),
        };
        let config = match &changes.config {
            Some(config) => self.config_field(&mut fields, &existing.experiment, config),
            None => Some(existing.config.clone()),
        };
        let (Some(name), Some(description), Some(config)) = (name, description, config) else {
            return Err(ServiceError::invalid_fields(fields));
        };
        let draft = InstanceDraft { experiment: existing.experiment, name, description, config };
        let instance = self.store.update_instance(id, &draft).await?;
        self.runtime.hub().publish_lifecycle(LifecycleEvent::InstanceSaved(instance.clone()));
        Ok(instance)
    }

    /// A new instance with the same experiment, description and configuration as `id`, named `name` or
    /// "<name> (copy)". Runs are not copied.
    pub async fn clone_instance(&self, id: InstanceId, name: Option<String>) -> ServiceResult<Instance> {
        let source = self.instance(id).await?;
        let name = match name.filter(|name| !name.trim().is_empty()) {
            Some(name) => name,
            None => {
                let base: String = source.name.as_str().chars().take(CLONE_NAME_ROOM).collect();
                format!("{base} (copy)")
            }
        };
        self.create_instance(InstanceInput {
            experiment: source.experiment.to_string(),
            name,
            description: source.description.to_string(),
            config: source.config,
        })
        .await
    }

    /// Delete an instance with its runs, logs and results. New runs of it are refused from the start of the delete;
    /// its active runs are cancelled and waited for (at most the cancel grace period), so their viewers see a final
    /// status and no writer batch races the delete.
    pub async fn delete_instance(&self, id: InstanceId) -> ServiceResult<()> {
        // From here no run of this instance starts, and the starts already under way have created their runs.
        let _closed = self
            .gate
            .close(id)
            .await
            .ok_or_else(|| ServiceError::Conflict(format!("instance {id} is already being deleted")))?;
        let active: Vec<_> =
            self.store.list_runs(id).await?.into_iter().filter(|run| !run.status.is_terminal()).collect();
        for run in &active {
            // Already finished between the list and the cancel: nothing to stop.
            let _ = self.runtime.cancel(run.id).await;
        }
        for run in &active {
            let _ = self.runtime.wait_for_end(run.id).await;
        }
        if !self.store.delete_instance(id).await? {
            return Err(instance_not_found(id));
        }
        self.runtime.hub().publish_lifecycle(LifecycleEvent::InstanceDeleted(id));
        Ok(())
    }

    /// The experiment of a new instance: a valid name that this server can run, or why not.
    fn experiment_field(&self, text: &str) -> Result<ExperimentName, FieldError> {
        let refused = |message: String| FieldError { path: "experiment".into(), message };
        let name = ExperimentName::parse(text.trim()).map_err(|error| refused(error.to_string()))?;
        if self.runtime.registry().get(name.as_str()).is_none() {
            return Err(refused(format!("no experiment named {:?} on this server", name.as_str())));
        }
        Ok(name)
    }

    /// `config` validated against the experiment's schema and completed with defaults; refused fields are added
    /// to `fields` with a `config.` prefix.
    fn config_field(&self, fields: &mut Vec<FieldError>, experiment: &ExperimentName, config: &Value) -> Option<Value> {
        let Some(registered) = self.runtime.registry().get(experiment.as_str()).map(|r| r.definition.clone()) else {
            fields.push(FieldError {
                path: "experiment".into(),
                message: format!("experiment {experiment} is not available on this server"),
            });
            return None;
        };
        match registered.schema.validate(config) {
            Ok(config) => Some(config),
            Err(errors) => {
                if let ServiceError::Invalid { fields: refused, .. } =
                    ServiceError::invalid_config(errors, Some("config"))
                {
                    fields.extend(refused);
                }
                None
            }
        }
    }
}

fn parse_field<T, E: std::fmt::Display>(fields: &mut Vec<FieldError>, path: &str, parsed: Result<T, E>) -> Option<T> {
    parsed.map_err(|error| fields.push(FieldError { path: path.to_owned(), message: error.to_string() })).ok()
}
