//! Command experiments: any program, in any language, declared in a manifest (`athanor.toml`) and run as a child
//! process that speaks the line protocol of `docs/protocol.md`.
//!
//! - `manifest` — reading and checking `athanor.toml` into [`CommandSpec`]s, every error named.
//! - `process` — spawning one run's process (own process group, configuration file, protocol pipe on fd 3),
//!   turning its output into logs, results and progress, and ending its whole process tree on cancel.
//! - `protocol` — the messages a process writes on fd 3, parsed one line at a time.
//! - `watch` — [`CommandManifest`]: the manifest re-read while the server runs, with the last good version kept
//!   when an edit has errors.
//! - `lines` — a line splitter with a byte cap, so no line can grow memory without bound.
//!
//! Commands come only from the manifest file on the server's disk: nothing reachable over HTTP can add or change
//! what the server executes.

mod lines;
pub mod manifest;
mod watch;

pub use watch::{CommandManifest, Reload, MAX_MANIFEST_BYTES, POLL_INTERVAL};
mod process;
mod protocol;

use crate::context::RunContext;
use crate::experiment::{Experiment, RunResult};
use athanor_core::ExperimentDefinition;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One command experiment as the manifest declares it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    /// Name, description, version and configuration schema, as any experiment has.
    pub definition: ExperimentDefinition,
    /// The program and its arguments (never a shell line); `command[0]` is looked up on `PATH` when it has no
    /// `/`.
    pub command: Vec<String>,
    /// Working directory of the process: the manifest's `cwd` resolved against the manifest's folder, or the
    /// manifest's folder itself.
    pub cwd: PathBuf,
    /// Extra environment variables, on top of the server's own environment.
    pub env: BTreeMap<String, String>,
    /// The manifest file that declared it (for messages).
    pub manifest: PathBuf,
}

/// A [`CommandSpec`] as an [`Experiment`]: each run spawns the command.
#[derive(Debug, Clone)]
pub struct CommandExperiment {
    spec: Arc<CommandSpec>,
}

impl CommandExperiment {
    /// Wrap a checked spec.
    pub fn new(spec: CommandSpec) -> CommandExperiment {
        CommandExperiment { spec: Arc::new(spec) }
    }

    /// What the manifest declared.
    pub fn spec(&self) -> &CommandSpec {
        &self.spec
    }
}

impl Experiment for CommandExperiment {
    /// A command receives its configuration as JSON, so it stays untyped here.
    type Config = Value;

    fn definition(&self) -> ExperimentDefinition {
        self.spec.definition.clone()
    }

    async fn run(&self, ctx: RunContext, config: Value) -> RunResult {
        process::run_command(&self.spec, &ctx, &config).await
    }
}
