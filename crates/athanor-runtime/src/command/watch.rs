//! Keeping the manifest's experiments current while the server runs: re-read on change, swap the registry, and
//! keep the last good definitions (with the errors on show) when an edit is refused.

use super::manifest::{self, ManifestErrors};
use super::CommandExperiment;
use crate::experiment::{Origin, Registry, RegistryError};
use crate::supervisor::Runtime;
use athanor_core::LifecycleEvent;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A manifest larger than this is refused unread: a hand-written experiment list is a few kilobytes, and the file
/// is re-read on every change.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// How often [`CommandManifest::watch`] looks at the file. Reading a small file twice a second costs nothing, and
/// unlike change notifications it sees every way an editor saves (in place, by rename, over a network mount).
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The manifest file of command experiments, and what became of its latest version.
pub struct CommandManifest {
    path: PathBuf,
    /// The compiled-in experiments, which every version of the manifest is added to.
    builtins: Registry,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// What the previous look at the file found (its bytes, or why it could not be read). A version is considered
    /// only once two looks in a row agree, so a save caught half-written (an editor that truncates, then writes) is
    /// never applied.
    last_look: Option<Result<Vec<u8>, String>>,
    /// The version last considered (applied or refused), so an unchanged file (or a mere `touch`) is not re-applied.
    considered: Option<Result<Vec<u8>, String>>,
    /// Why the file's current version was refused; `None` while the experiments in use are the file's own.
    problems: Option<Vec<String>>,
}

/// What one [`CommandManifest::reload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The file has not changed since it was last considered (or is still refused for the same reasons).
    Unchanged,
    /// The file changed since the previous look; it is considered at the next look if it stays the same.
    Settling,
    /// The new version is in use.
    Applied {
        /// Experiments the new version adds.
        added: Vec<String>,
        /// Experiments whose definition changed.
        changed: Vec<String>,
        /// Experiments it no longer declares.
        removed: Vec<String>,
    },
    /// The new version was refused; the previous experiments stay in use.
    Refused(Vec<String>),
}

impl CommandManifest {
    /// Read the manifest at start-up and build the registry: `builtins` plus every experiment the file declares.
    ///
    /// # Errors
    ///
    /// Every problem in the file (each naming the file, the experiment and the field), or a name clash with a
    /// built-in experiment. The server refuses to start then: it would otherwise serve without experiments the
    /// user expects.
    pub fn load(path: &Path, builtins: Registry) -> Result<(CommandManifest, Registry), Vec<String>> {
        let bytes = read_capped(path).map_err(|problem| vec![problem])?;
        let registry = build(path, &bytes, &builtins)?;
        let state = State { last_look: Some(Ok(bytes.clone())), considered: Some(Ok(bytes)), problems: None };
        Ok((CommandManifest { path: path.to_owned(), builtins, state: Mutex::new(state) }, registry))
    }

    /// The file this watches.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the file as it is now was refused, one message per problem; `None` when the experiments in use are the
    /// file's current ones.
    pub fn problems(&self) -> Option<Vec<String>> {
        self.lock().problems.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The critical sections only swap plain values; a panic cannot leave them half-done.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Look at the file. A version seen the same in two looks in a row, and different from the one in use, is
    /// applied to `runtime` or, when it has errors, refused with the experiments in use kept and the errors recorded.
    /// A refused version is checked again at every look, since what it refers to (a `cwd`) may appear meanwhile.
    /// Viewers are told of every applied or newly refused version ([`LifecycleEvent::ExperimentsChanged`]).
    pub fn reload(&self, runtime: &Runtime) -> Reload {
        let read = read_capped(&self.path);
        let outcome = {
            let mut state = self.lock();
            let settled = state.last_look.as_ref() == Some(&read);
            state.last_look = Some(read.clone());
            if !settled {
                return Reload::Settling;
            }
            if state.considered.as_ref() == Some(&read) && state.problems.is_none() {
                return Reload::Unchanged;
            }
            state.considered = Some(read.clone());
            let built =
                read.map_err(|problem| vec![problem]).and_then(|bytes| build(&self.path, &bytes, &self.builtins));
            if let Err(problems) = &built {
                if state.problems.as_ref() == Some(problems) {
                    return Reload::Unchanged;
                }
            }
            state.problems = built.as_ref().err().cloned();
            built
        };
        match outcome {
            Ok(registry) => {
                let (added, changed, removed) = differences(&runtime.registry(), &registry);
                tracing::info!(
                    manifest = %self.path.display(), ?added, ?changed, ?removed,
                    "experiment manifest reloaded"
                );
                runtime.set_registry(registry);
                Reload::Applied { added, changed, removed }
            }
            Err(problems) => {
                tracing::error!(
                    manifest = %self.path.display(),
                    "experiment manifest refused; the previous experiments stay in use:\n{}",
                    problems.join("\n")
                );
                runtime.hub().publish_lifecycle(LifecycleEvent::ExperimentsChanged);
                Reload::Refused(problems)
            }
        }
    }

    /// Look at the file every [`POLL_INTERVAL`] and [`reload`](Self::reload) it when it changes, for as long as
    /// the returned task runs.
    pub fn watch(self: Arc<Self>, runtime: Runtime) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POLL_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                // Reading and parsing is synchronous file work; it is small (capped) and rare (on change only).
                self.reload(&runtime);
            }
        })
    }
}

/// The file's bytes, or a message saying why they cannot be had.
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let describe = |error: std::io::Error| format!("{}: cannot read the experiment manifest: {error}", path.display());
    let metadata = std::fs::metadata(path).map_err(describe)?;
    // A FIFO or a device would block the reading thread or never end; a manifest is a plain file.
    if !metadata.is_file() {
        return Err(format!("{}: the experiment manifest must be a regular file", path.display()));
    }
    let mut bytes = Vec::new();
    // `take` as well as the size check: the file may grow between the two.
    std::fs::File::open(path)
        .and_then(|file| file.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes))
        .map_err(describe)?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{}: the experiment manifest is larger than the {MAX_MANIFEST_BYTES} bytes this server reads",
            path.display()
        ));
    }
    Ok(bytes)
}

/// `builtins` plus the experiments declared in `bytes`, or every problem.
fn build(path: &Path, bytes: &[u8], builtins: &Registry) -> Result<Registry, Vec<String>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|error| vec![format!("{}: the experiment manifest is not UTF-8 text: {error}", path.display())])?;
    let specs = manifest::parse(text, path).map_err(|errors: ManifestErrors| lines(&errors))?;
    let mut registry = builtins.clone();
    let mut problems = Vec::new();
    for spec in specs {
        let name = spec.definition.name.to_string();
        let experiment = Arc::new(CommandExperiment::new(spec));
        let origin = Origin::Command { manifest: path.to_owned(), command: experiment.spec().command.clone() };
        match registry.add(experiment, origin) {
            Ok(()) => {}
            Err(RegistryError::Duplicate(_)) => problems.push(format!(
                "{}: experiment {name:?}: a built-in experiment already has this name; choose another",
                path.display()
            )),
            Err(other) => problems.push(format!("{}: {other}", path.display())),
        }
    }
    if problems.is_empty() {
        Ok(registry)
    } else {
        Err(problems)
    }
}

/// One message per problem (a message may span lines: a TOML syntax error quotes the offending line).
fn lines(errors: &ManifestErrors) -> Vec<String> {
    errors.errors.iter().map(ToString::to_string).collect()
}

/// Names added, changed and removed between two registries.
fn differences(before: &Registry, after: &Registry) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for registered in after.iter() {
        let name = registered.definition.name.to_string();
        match before.get(&name) {
            None => added.push(name),
            // A new origin covers an edit that changed only the command line.
            Some(old) if old.definition != registered.definition || old.origin != registered.origin => {
                changed.push(name)
            }
            Some(_) => {}
        }
    }
    let removed = before
        .iter()
        .map(|registered| registered.definition.name.to_string())
        .filter(|name| after.get(name).is_none())
        .collect();
    (added, changed, removed)
}
