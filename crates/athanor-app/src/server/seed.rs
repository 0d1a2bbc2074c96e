//! Demo instances for a brand-new database, so the first thing a user sees is something to run.

use athanor_core::{Description, ExperimentName, InstanceDraft, InstanceName};
use athanor_runtime::Registry;
use athanor_store::Store;

/// Create the demo instances if the database has no instance at all; returns how many were created.
///
/// Only an empty database is seeded: once a user has any instance (or deleted the demos) we never add them back.
pub async fn seed_demo_instances(store: &Store, experiments: &Registry) -> anyhow::Result<usize> {
    if store.count_instances().await? > 0 {
        return Ok(0);
    }
    let mut created = 0;
    // Oldest first, so the dashboard (newest first) shows them in reverse list order: the last demo on top would
    // be odd, so create them in reverse.
    for demo in athanor_demos::demo_instances().into_iter().rev() {
        let definition = &experiments
            .get(demo.experiment)
            .ok_or_else(|| anyhow::anyhow!("demo {:?} names unknown experiment {}", demo.name, demo.experiment))?
            .definition;
        let config = demo
            .configuration(&definition.schema)
            .map_err(|errors| anyhow::anyhow!("demo {:?}: {errors}", demo.name))?;
        let draft = InstanceDraft {
            experiment: ExperimentName::parse(demo.experiment)?,
            name: InstanceName::parse(demo.name)?,
            description: Description::parse(demo.description)?,
            config,
        };
        store.create_instance(&draft).await?;
        created += 1;
    }
    Ok(created)
}
