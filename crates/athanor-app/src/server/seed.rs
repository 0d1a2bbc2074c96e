//! Demo instances for a brand-new database, so the first thing a user sees is something to run.

use athanor_core::{Description, ExperimentName, InstanceDraft, InstanceName};
use athanor_demos::DemoInstance;
use athanor_runtime::Registry;
use athanor_store::Store;
use serde_json::json;

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
    let builtin = athanor_demos::demo_instances().into_iter().map(|demo| (demo, true));
    let commands = command_demo_instances().into_iter().map(|demo| (demo, false));
    for (demo, required) in builtin.chain(commands).collect::<Vec<_>>().into_iter().rev() {
        let definition = match experiments.get(demo.experiment) {
            Some(registered) => &registered.definition,
            // Command demos exist only when the repository's `athanor.toml` is the manifest in use.
            None if !required => continue,
            None => anyhow::bail!("demo {:?} names unknown experiment {}", demo.name, demo.experiment),
        };
        let config = match demo.configuration(&definition.schema) {
            Ok(config) => config,
            // A manifest of the user's own may declare an experiment of the same name with another schema.
            Err(_) if !required => continue,
            Err(errors) => anyhow::bail!("demo {:?}: {errors}", demo.name),
        };
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

/// Instances of the command demos that the repository's `athanor.toml` declares (Python and shell programs).
fn command_demo_instances() -> Vec<DemoInstance> {
    vec![
        DemoInstance {
            experiment: "llm_eval",
            name: "LLM eval: GPT-4, baseline prompt",
            description: "A Python experiment: 40 simulated questions, accuracy and token counts.",
            config: json!({"model": "gpt-4", "prompt_variant": "baseline"}),
        },
        DemoInstance {
            experiment: "llm_eval",
            name: "LLM eval: Claude 3, chain of thought",
            description: "The same evaluation with another model and prompt; compare it with the GPT-4 one.",
            config: json!({"model": "claude-3", "prompt_variant": "chain-of-thought"}),
        },
        DemoInstance {
            experiment: "ignore_sigterm",
            name: "Ignores SIGTERM (cancel me)",
            description: "A Python process that ignores SIGTERM: cancel shows the forced stop after the grace period.",
            config: json!({}),
        },
        DemoInstance {
            experiment: "shell_countdown",
            name: "Shell countdown",
            description: "A POSIX shell script speaking the protocol with printf.",
            config: json!({}),
        },
    ]
}
