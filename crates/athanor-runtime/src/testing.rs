//! Run experiments in your own unit tests: a real runtime over a temporary SQLite file, and a report of what a run
//! recorded.
//!
//! ```
//! use athanor_runtime::prelude::*;
//! use athanor_runtime::testing;
//! use athanor_core::RunStatus;
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     times: u32,
//! }
//!
//! struct Echo;
//!
//! impl Experiment for Echo {
//!     type Config = Config;
//!     fn definition(&self) -> ExperimentDefinition {
//!         ExperimentDefinition::new("echo", "1")
//!             .schema(Schema::new().field(Field::integer("times").default(2).min(0).max(100)))
//!     }
//!     async fn run(&self, ctx: RunContext, config: Config) -> RunResult {
//!         for i in 0..config.times {
//!             ctx.info(format!("echo {i}")).await;
//!         }
//!         ctx.result("times", config.times).await?;
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let report = testing::run(Echo, serde_json::json!({"times": 3})).await?;
//! assert_eq!(report.status(), RunStatus::Completed);
//! assert_eq!(report.messages(), ["echo 0", "echo 1", "echo 2"]);
//! assert_eq!(report.result("times"), Some(&serde_json::json!(3)));
//! # Ok(())
//! # }
//! ```
//!
//! The run goes through exactly the path a server run takes — schema validation with defaults, the typed
//! `Config`, the batching writer, the terminal status written after every record — so what passes here behaves the
//! same in the dashboard. Waiting is on the run's own event stream, never on the clock.

use crate::experiment::{AnyExperiment, Registry};
use crate::supervisor::{Runtime, RuntimeConfig};
use anyhow::{anyhow, Context as _};
use athanor_core::RunId;
use athanor_core::{
    Description, ExperimentName, Instance, InstanceDraft, InstanceName, LogLevel, LogRecord, ResultRecord, Run,
    RunEvent, RunStatus,
};
use athanor_store::{LogQuery, Store};
use futures::StreamExt;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// How long [`TestRuntime::finish`] waits for a run before failing the test, so a regression fails instead of
/// hanging CI. Generous: it is a safety net, not a performance assertion.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// Wait until the process `pid` has ended (a zombie nobody has reaped yet counts as ended: it runs no code).
///
/// For tests of experiments that start processes: "nothing was left running" is then an event to await, not a state
/// to poll. It waits on a pidfd, which the kernel makes readable when the process exits; a pid that no longer exists
/// has ended already. Bound it with `tokio::time::timeout`.
///
/// # Errors
///
/// When the kernel offers no pidfd (Linux before 5.3) or the pid is invalid.
pub async fn process_exit(pid: i32) -> std::io::Result<()> {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; nothing is borrowed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        return if error.raw_os_error() == Some(libc::ESRCH) { Ok(()) } else { Err(error) };
    }
    // SAFETY: the descriptor was just created for us and is owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as std::os::fd::RawFd) };
    // SAFETY: the `OwnedFd` moves into the `AsyncFd`, so the descriptor stays open and the same until it is dropped.
    let pidfd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) }
        .map_err(std::io::Error::from)?;
    pidfd.readable().await?.retain_ready();
    Ok(())
}

/// Run one experiment once with `config` (the schema's defaults with these values on top) in a fresh temporary
/// runtime, and report what it recorded.
pub async fn run<E: AnyExperiment>(experiment: E, config: Value) -> anyhow::Result<RunReport> {
    let definition = experiment.definition();
    let harness = TestRuntime::new(vec![Box::new(experiment) as Box<dyn AnyExperiment>]).await?;
    harness.run(definition.name.as_str(), config).await
}

/// A runtime over a temporary SQLite database that is deleted on drop.
pub struct TestRuntime {
    runtime: Runtime,
    store: Store,
    _dir: tempfile::TempDir,
}

impl TestRuntime {
    /// A runtime knowing exactly these experiments, with a short cancel grace (300 ms) so forced-cancel paths
    /// stay quick.
    pub async fn new(experiments: impl IntoIterator<Item = Box<dyn AnyExperiment>>) -> anyhow::Result<TestRuntime> {
        let config = RuntimeConfig { cancel_grace: Duration::from_millis(300), ..RuntimeConfig::default() };
        TestRuntime::with_registry(Registry::from_experiments(experiments)?, config).await
    }

    /// A runtime over any registry (e.g. [`Registry::discover`]) and configuration.
    pub async fn with_registry(registry: Registry, config: RuntimeConfig) -> anyhow::Result<TestRuntime> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("test.db").display())).await?;
        let runtime = Runtime::new(store.clone(), registry, config);
        Ok(TestRuntime { runtime, store, _dir: dir })
    }

    /// The runtime, for what this harness does not wrap (cancel, subscriptions, registry swaps).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Save an instance of `experiment`: the schema's defaults (as a new-instance form starts) with `overrides`
    /// on top, validated as the form does.
    pub async fn instance(&self, experiment: &str, overrides: Value) -> anyhow::Result<Instance> {
        let registry = self.runtime.registry();
        let registered = registry.get(experiment).ok_or_else(|| anyhow!("no experiment named {experiment:?}"))?;
        let schema = &registered.definition.schema;
        let mut config = schema.defaults();
        match (&mut config, overrides) {
            (Value::Object(base), Value::Object(overrides)) => base.extend(overrides),
            (_, Value::Null) => {}
            (_, other) => anyhow::bail!("overrides must be a JSON object, not {other}"),
        }
        let config = schema.validate(&config).map_err(|errors| anyhow!("invalid configuration: {errors}"))?;
        let draft = InstanceDraft {
            experiment: ExperimentName::parse(experiment)?,
            name: InstanceName::parse(&format!("test {experiment} {}", Uuid::new_v4().simple()))?,
            description: Description::parse("")?,
            config,
        };
        Ok(self.store.create_instance(&draft).await?)
    }

    /// Create an instance and start a run of it; returns the `pending` run.
    pub async fn start(&self, experiment: &str, overrides: Value) -> anyhow::Result<Run> {
        let instance = self.instance(experiment, overrides).await?;
        Ok(self.runtime.start(instance.id).await?)
    }

    /// Start a run and wait for its end.
    pub async fn run(&self, experiment: &str, overrides: Value) -> anyhow::Result<RunReport> {
        let run = self.start(experiment, overrides).await?;
        self.finish(&run).await
    }

    /// Wait for `run` to end and report it.
    pub async fn finish(&self, run: &Run) -> anyhow::Result<RunReport> {
        self.follow(run, |_| false).await
    }

    /// Follow `run`'s live events to its end; the first event for which `cancel_when` is true cancels the run
    /// (e.g. "once it is running", "once it reported progress").
    pub async fn follow(&self, run: &Run, cancel_when: impl FnMut(&RunEvent) -> bool) -> anyhow::Result<RunReport> {
        let ended = tokio::time::timeout(RUN_LIMIT, self.follow_to_end(run.id, cancel_when))
            .await
            .map_err(|_| anyhow!("run {} did not end within {RUN_LIMIT:?}", run.id))??;
        self.report(ended).await
    }

    async fn follow_to_end(
        &self,
        run_id: RunId,
        mut cancel_when: impl FnMut(&RunEvent) -> bool,
    ) -> anyhow::Result<Run> {
        let mut events = std::pin::pin!(self.runtime.run_events(run_id, 0));
        let mut cancel_sent = false;
        while let Some(event) = events.next().await {
            let event = event?;
            if let RunEvent::Snapshot { run, .. } | RunEvent::Status(run) = &event {
                if run.status.is_terminal() {
                    return Ok(run.clone());
                }
            }
            if !cancel_sent && cancel_when(&event) {
                self.runtime.cancel(run_id).await?;
                cancel_sent = true;
            }
        }
        Err(anyhow!("the event stream of run {run_id} ended before the run did"))
    }

    /// Everything `run` recorded, read back from the database.
    pub async fn report(&self, run: Run) -> anyhow::Result<RunReport> {
        let mut logs = Vec::new();
        let mut query = LogQuery::first(10_000);
        loop {
            let page = self.store.logs(run.id, &query).await?;
            let done = page.items.is_empty();
            logs.extend(page.items);
            if done {
                break;
            }
            query = query.after(page.next_after_seq);
        }
        let mut results = Vec::new();
        let mut after = 0;
        loop {
            let page = self.store.results(run.id, after, 10_000).await?;
            if page.items.is_empty() {
                break;
            }
            results.extend(page.items);
            after = page.next_after_seq;
        }
        Ok(RunReport { run, logs, results })
    }
}

/// What one run recorded: its final row, every log line and every result, in `seq` order.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run as stored at its end (status, error, timing, configuration snapshot).
    pub run: Run,
    /// Every log line.
    pub logs: Vec<LogRecord>,
    /// Every result.
    pub results: Vec<ResultRecord>,
}

impl RunReport {
    /// The terminal status.
    pub fn status(&self) -> RunStatus {
        self.run.status
    }

    /// The error a failed or cancelled run ended with.
    pub fn error(&self) -> Option<&str> {
        self.run.error.as_deref()
    }

    /// The latest value recorded under `key`.
    pub fn result(&self, key: &str) -> Option<&Value> {
        self.results.iter().rev().find(|result| result.key == key).map(|result| &result.value)
    }

    /// The latest value of every result key.
    pub fn results_by_key(&self) -> std::collections::BTreeMap<String, Value> {
        self.results.iter().map(|result| (result.key.clone(), result.value.clone())).collect()
    }

    /// Every log message, in order.
    pub fn messages(&self) -> Vec<&str> {
        self.logs.iter().map(|log| log.message.as_str()).collect()
    }

    /// The log lines at `level`.
    pub fn logs_at(&self, level: LogLevel) -> Vec<&LogRecord> {
        self.logs.iter().filter(|log| log.level == level).collect()
    }
}
