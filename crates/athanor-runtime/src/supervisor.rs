//! The supervisor: starts runs in FIFO order under a concurrency limit, watches each one, and writes its end.

use crate::budget::RecordBudget;
use crate::context::RunContext;
use crate::executor::{ExperimentThreads, RunTask};
use crate::experiment::{Registered, Registry};
use crate::hub::Hub;
use crate::writer::{WriterHandle, WriterMessage};
use athanor_core::{InstanceId, RunId};
use athanor_core::{LifecycleEvent, LogLevel, NewLog, Run, RunEvent, RunStatus};
use athanor_store::{Claim, Store, StoreError};
use chrono::Utc;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Tunables of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Runs executing at once; more wait as `pending` and start in creation order.
    pub max_concurrent_runs: usize,
    /// How long a cancelled run may take to stop by itself before it is aborted.
    pub cancel_grace: Duration,
    /// A run still executing after this long fails as timed out. `None` lets runs go on forever.
    pub run_timeout: Option<Duration>,
    /// Messages the record channel holds before `log` waits (see the writer's back-pressure policy).
    pub channel_capacity: usize,
    /// Bytes of records accepted from runs and not yet committed before `log` waits (see the writer's
    /// back-pressure policy). Default: 64 MiB.
    pub record_budget_bytes: usize,
    /// Events a run's live topic buffers per viewer before the viewer lags (and catches up from the database).
    pub event_buffer: usize,
    /// Runs that may wait as `pending` at once; a start beyond it is refused (a script in a loop cannot queue
    /// without bound).
    pub max_queued_runs: usize,
    /// Threads experiment code runs on (a tokio runtime of their own, threads named `athanor-run`), apart from the
    /// server's: code that computes without awaiting holds one of these, never a thread that serves requests,
    /// commits records or ends runs on time. Default: one per core.
    pub experiment_threads: usize,
    /// Execute runs from the queue shared with other processes (PostgreSQL), as this node, instead of an
    /// in-memory queue of this process's own starts. See [`crate::node`]. Default: `None`.
    pub node: Option<NodeConfig>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_concurrent_runs: 8,
            cancel_grace: Duration::from_secs(5),
            run_timeout: Some(Duration::from_secs(24 * 3_600)),
            channel_capacity: 8_192,
            record_budget_bytes: crate::budget::DEFAULT_RECORD_BUDGET_BYTES,
            event_buffer: crate::hub::DEFAULT_RUN_TOPIC_CAPACITY,
            max_queued_runs: 10_000,
            experiment_threads: crate::executor::default_threads(),
            node: None,
        }
    }
}

/// How a node takes part in the queue shared on PostgreSQL (see [`crate::node`]).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// What the workers page calls it. Default: `host:pid`.
    pub name: String,
    /// How long a claimed run stays this node's without a heartbeat. Default: 60 s.
    pub lease: Duration,
    /// How often leases are renewed (well inside `lease`). Default: 10 s.
    pub heartbeat: Duration,
    /// How often the queue is looked at without being told of a new run. Default: 2 s.
    pub poll: Duration,
}

impl NodeConfig {
    /// The defaults, named after this machine and process.
    pub fn here() -> NodeConfig {
        NodeConfig {
            name: format!("{}:{}", host_name(), std::process::id()),
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            poll: Duration::from_secs(2),
        }
    }
}

/// This machine's name, for the workers page (`/etc/hostname`, else `HOSTNAME`, else `localhost`).
pub fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Why the runtime refused a request.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No such instance.
    #[error("no instance with id {0}")]
    InstanceNotFound(InstanceId),
    /// No such run.
    #[error("no run with id {0}")]
    RunNotFound(RunId),
    /// The instance names an experiment this server was not built with.
    #[error("experiment {experiment:?} is not available on this server (instance {instance}); it may have been renamed or removed")]
    UnknownExperiment {
        /// The instance.
        instance: InstanceId,
        /// The experiment name it stores.
        experiment: String,
    },
    /// The instance's configuration no longer fits its experiment's schema (the experiment changed).
    #[error(
        "the configuration of instance {instance} is no longer valid for {experiment}: {errors}; edit the instance"
    )]
    StaleConfiguration {
        /// The instance.
        instance: InstanceId,
        /// The experiment.
        experiment: String,
        /// What is wrong.
        errors: athanor_core::ValidationErrors,
    },
    /// The run has already ended.
    #[error("run {0} has already finished")]
    AlreadyFinished(RunId),
    /// As many runs as the queue holds are already waiting.
    #[error("{0} runs are already waiting to start, the most this server queues; start more once some have run")]
    QueueFull(usize),
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `cancel` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run had not started; it is now `cancelled`.
    CancelledWhilePending,
    /// The run was asked to stop; it ends `cancelled` by itself or, after the grace period, by force.
    Requested,
}

/// What start-up recovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Runs left `running` by a dead process, now `failed`.
    pub interrupted: Vec<RunId>,
    /// `pending` runs queued again.
    pub requeued: Vec<RunId>,
    /// `pending` runs whose experiment is gone or no longer accepts their configuration, now `failed`.
    pub refused: Vec<RunId>,
}

/// A run waiting for a slot, with the experiment as it was when the run was created: a manifest reload in
/// between does not change what an accepted run executes.
struct Queued {
    run: Run,
    registered: Registered,
}

struct Queue {
    waiting: VecDeque<Queued>,
    running: usize,
}

struct Inner {
    store: Store,
    /// Replaced whole when the experiment manifest changes; readers take a snapshot (`Arc`) and never block it.
    registry: RwLock<Arc<Registry>>,
    hub: Arc<Hub>,
    writer: WriterHandle,
    /// Where runs' code executes (the supervision of each run stays on the runtime that called [`Runtime::new`]).
    experiments: ExperimentThreads,
    config: RuntimeConfig,
    queue: Mutex<Queue>,
    /// Cancellation handles of runs that have left the queue and not yet finished.
    active: Mutex<HashMap<RunId, CancellationToken>>,
    tasks: TaskTracker,
    /// Cancelled by [`Runtime::shutdown`]: no run starts after it, and stopped runs end as "server shutting down".
    shutdown: CancellationToken,
    /// Woken when a node should look for runs to claim: a run was started here or ended here.
    pub(crate) claim_wake: tokio::sync::Notify,
}

/// The engine. Cheap to clone; all clones drive the same runs.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below is a handful of collection operations that cannot panic midway.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Runtime {
    /// Build the runtime and start its writer. Call [`Runtime::recover`] once before serving.
    pub fn new(store: Store, registry: Registry, config: RuntimeConfig) -> Runtime {
        let hub = Arc::new(Hub::new(config.event_buffer));
        let writer = WriterHandle::spawn(
            store.clone(),
            hub.clone(),
            config.channel_capacity,
            config.record_budget_bytes,
            config.node.is_some(),
        );
        Runtime {
            inner: Arc::new(Inner {
                store,
                registry: RwLock::new(Arc::new(registry)),
                hub,
                writer,
                experiments: ExperimentThreads::new(config.experiment_threads),
                config,
                queue: Mutex::new(Queue { waiting: VecDeque::new(), running: 0 }),
                active: Mutex::new(HashMap::new()),
                tasks: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                claim_wake: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The experiments this server knows now (a snapshot: a later [`Runtime::set_registry`] does not change it).
    pub fn registry(&self) -> Arc<Registry> {
        self.inner.registry.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Replace the experiments this server knows, e.g. after the manifest file changed. Runs already created keep
    /// the experiment they were created with; new runs and the dashboard see the new set at once.
    pub fn set_registry(&self, registry: Registry) {
        *self.inner.registry.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(registry);
        self.inner.hub.publish_lifecycle(LifecycleEvent::ExperimentsChanged);
    }

    /// The event hub, for subscriptions and for announcing instance changes.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The byte budget of records accepted from runs and not yet committed: what it holds now, and the most it
    /// ever held (never more than its capacity).
    pub fn record_budget(&self) -> &RecordBudget {
        self.inner.writer.budget()
    }

    pub(crate) fn hub_handle(&self) -> Arc<Hub> {
        self.inner.hub.clone()
    }

    /// After a restart: runs left `running` become `failed` ("interrupted by restart"); `pending` runs are queued
    /// again in creation order.
    pub async fn recover(&self) -> Result<RecoveryReport, RuntimeError> {
        let mut report = RecoveryReport::default();
        if self.is_node() {
            // The queue is shared: another node may own a `running` run and will claim `pending` ones. Runs of a
            // node that died end when their leases expire (see `crate::node`).
            return Ok(report);
        }
        // Only runs this kind of process executed itself: a run a worker node claimed is that node's, however this
        // process restarts, and ends by its lease.
        for run_id in self.inner.store.unclaimed_running_runs().await? {
            let failed =
                self.inner.store.transition_run(run_id, RunStatus::Failed, Some("interrupted by restart")).await?;
            self.inner.hub.publish_lifecycle(LifecycleEvent::RunChanged(failed));
            report.interrupted.push(run_id);
        }
        let registry = self.registry();
        for run in self.inner.store.runs_with_status(RunStatus::Pending).await? {
            let experiment = match self.inner.store.get_instance(run.instance_id).await? {
                Some(instance) => instance.experiment,
                None => continue, // deleted with its runs meanwhile
            };
            // Checked against the experiment as it is now, as `start` does: the definition may have changed while the
            // server was down (a manifest edit), and the run must get every field its experiment now declares.
            let checked = match registry.get(experiment.as_str()) {
                None => Err(format!("experiment {:?} is not available on this server", experiment.as_str())),
                Some(registered) => match registered.definition.schema.validate(&run.config) {
                    Ok(config) => Ok((config, registered.clone())),
                    Err(errors) => Err(format!(
                        "the configuration no longer fits experiment {:?} as it is now: {errors}",
                        experiment.as_str()
                    )),
                },
            };
            match checked {
                Ok((config, registered)) => {
                    report.requeued.push(run.id);
                    self.enqueue(Run { config, ..run }, registered);
                }
                Err(message) => {
                    // The state machine has no `pending → failed`: a run fails once it has started, here at once.
                    self.inner.store.transition_run(run.id, RunStatus::Running, None).await?;
                    let failed = self.inner.store.transition_run(run.id, RunStatus::Failed, Some(&message)).await?;
                    self.inner.hub.publish_lifecycle(LifecycleEvent::RunChanged(failed));
                    report.refused.push(run.id);
                }
            }
        }
        Ok(report)
    }

    /// Create a run of `instance_id` (with its own copy of the configuration and the experiment's version) and
    /// queue it. Returns the new `pending` run.
    pub async fn start(&self, instance_id: InstanceId) -> Result<Run, RuntimeError> {
        let waiting = lock(&self.inner.queue).waiting.len();
        if waiting >= self.inner.config.max_queued_runs.max(1) {
            return Err(RuntimeError::QueueFull(waiting));
        }
        let instance =
            self.inner.store.get_instance(instance_id).await?.ok_or(RuntimeError::InstanceNotFound(instance_id))?;
        let registry = self.registry();
        let registered = registry.get(instance.experiment.as_str()).ok_or_else(|| RuntimeError::UnknownExperiment {
            instance: instance_id,
            experiment: instance.experiment.to_string(),
        })?;
        // Re-validate against the schema as it is now: it fills defaults of fields added since the instance was
        // saved, and refuses to start a configuration the experiment would misread.
        let config = registered.definition.schema.validate(&instance.config).map_err(|errors| {
            RuntimeError::StaleConfiguration {
                instance: instance_id,
                experiment: instance.experiment.to_string(),
                errors,
            }
        })?;
        let run = self.inner.store.create_run(instance_id, &config, &registered.definition.version).await?;
        self.inner.hub.publish_lifecycle(LifecycleEvent::RunChanged(run.clone()));
        if self.is_node() {
            // Whichever node has room claims it; ours looks at once, the others when notified (or on their poll).
            self.inner.claim_wake.notify_one();
            if let Err(error) = self.inner.store.announce_pending().await {
                tracing::debug!(%error, "could not announce a pending run; nodes find it on their next poll");
            }
        } else {
            self.enqueue(run.clone(), registered.clone());
        }
        Ok(run)
    }

    /// Cancel a run: a pending one at once, a running one cooperatively then by force after the grace period.
    pub async fn cancel(&self, run_id: RunId) -> Result<CancelOutcome, RuntimeError> {
        let queued = {
            let mut queue = lock(&self.inner.queue);
            let position = queue.waiting.iter().position(|queued| queued.run.id == run_id);
            position.and_then(|index| queue.waiting.remove(index))
        };
        if let Some(queued) = queued {
            match self
                .inner
                .store
                .transition_run(run_id, RunStatus::Cancelled, Some("cancelled before it started"))
                .await
            {
                Ok(run) => {
                    self.announce_status(run);
                    return Ok(CancelOutcome::CancelledWhilePending);
                }
                Err(error) => {
                    // The database did not take the cancel for a passing reason (it is unreachable, say): the run
                    // is still `pending` there, so it goes back to its place in the queue and runs in its turn, as
                    // the error tells the caller; left out, it would wait as `pending` until the next restart.
                    if error.is_transient() {
                        self.requeue(queued);
                    }
                    return Err(error.into());
                }
            }
        }
        if let Some(token) = lock(&self.inner.active).get(&run_id) {
            token.cancel();
            return Ok(CancelOutcome::Requested);
        }
        if self.is_node() || self.inner.store.backend() == athanor_store::Backend::Postgres {
            // Another node may own it: mark it and notify its owner, which ends it the usual way.
            return match self.inner.store.request_cancel(run_id).await? {
                Some(RunStatus::Running) => Ok(CancelOutcome::Requested),
                Some(_) => {
                    if let Some(run) = self.inner.store.get_run(run_id).await? {
                        self.announce_status(run);
                    }
                    Ok(CancelOutcome::CancelledWhilePending)
                }
                None => match self.inner.store.get_run(run_id).await? {
                    None => Err(RuntimeError::RunNotFound(run_id)),
                    Some(_) => Err(RuntimeError::AlreadyFinished(run_id)),
                },
            };
        }
        match self.inner.store.get_run(run_id).await? {
            None => Err(RuntimeError::RunNotFound(run_id)),
            Some(run) if run.status.is_terminal() => Err(RuntimeError::AlreadyFinished(run_id)),
            // Pending or running in the database but unknown here: left by another process (or not yet recovered).
            Some(_) => {
                let run =
                    self.inner.store.transition_run(run_id, RunStatus::Cancelled, Some("cancelled by user")).await?;
                self.announce_status(run);
                Ok(CancelOutcome::CancelledWhilePending)
            }
        }
    }

    /// Runs that are executing or waiting now.
    pub fn busy(&self) -> (usize, usize) {
        let queue = lock(&self.inner.queue);
        (queue.running, queue.waiting.len())
    }

    /// Stop the server's work cleanly: start no more runs, ask every executing run to stop (the cooperative, then
    /// forced path of a cancel, within the cancel grace period), and return once each has committed its records and
    /// its terminal status (`failed`, "server shutting down"). Runs still waiting stay `pending` and are started
    /// again by [`Runtime::recover`] at the next start: nothing accepted is lost.
    pub async fn shutdown(&self) {
        let executing: Vec<CancellationToken> = {
            // Under the queue's lock, which `pump` holds while it starts a run: every run is either started (and
            // in `active`) before the flag is set, or not started at all.
            let _queue = lock(&self.inner.queue);
            self.inner.shutdown.cancel();
            lock(&self.inner.active).values().cloned().collect()
        };
        executing.iter().for_each(CancellationToken::cancel);
        self.wait_idle().await;
    }

    /// Stop accepting work and wait for every started run to finish (tests and graceful shutdown).
    pub async fn wait_idle(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.tasks.reopen();
    }

    fn enqueue(&self, run: Run, registered: Registered) {
        lock(&self.inner.queue).waiting.push_back(Queued { run, registered });
        self.pump();
    }

    /// Put a run taken out of the queue back where its creation time places it (the queue is oldest first).
    fn requeue(&self, queued: Queued) {
        {
            let mut queue = lock(&self.inner.queue);
            let key = |run: &Run| (run.created_at, run.id);
            let place = queue.waiting.partition_point(|waiting| key(&waiting.run) <= key(&queued.run));
            queue.waiting.insert(place, queued);
        }
        self.pump();
    }

    /// Start queued runs while there is room, oldest first.
    fn pump(&self) {
        let mut queue = lock(&self.inner.queue);
        while queue.running < self.inner.config.max_concurrent_runs.max(1) && !self.inner.shutdown.is_cancelled() {
            let Some(Queued { run, registered }) = queue.waiting.pop_front() else { break };
            self.spawn_run(&mut queue, run, registered, None);
        }
    }

    /// Execute `run` in a task of its own, counted in `queue` (whose lock the caller holds) and cancellable
    /// through `active` while it lasts. When it ends, its slot goes to the next run: the in-memory queue's
    /// (`pump`) or the shared queue's (the node's claimer, woken).
    fn spawn_run(&self, queue: &mut Queue, run: Run, registered: Registered, claim: Option<Claim>) {
        queue.running += 1;
        let token = CancellationToken::new();
        lock(&self.inner.active).insert(run.id, token.clone());
        let runtime = self.clone();
        self.inner.tasks.spawn(async move {
            let run_id = run.id;
            runtime.execute(run, registered, token, claim).await;
            lock(&runtime.inner.active).remove(&run_id);
            lock(&runtime.inner.queue).running -= 1;
            match claim {
                None => runtime.pump(),
                Some(_) => runtime.inner.claim_wake.notify_one(),
            }
        });
    }

    fn announce_status(&self, run: Run) {
        self.inner.hub.publish_run(run.id, RunEvent::Status(run.clone()));
        self.inner.hub.publish_lifecycle(LifecycleEvent::RunChanged(run));
    }

    /// Whether this runtime executes runs from the shared queue (see [`crate::node`]).
    pub(crate) fn is_node(&self) -> bool {
        self.inner.config.node.is_some()
    }

    /// The runs executing here now.
    pub(crate) fn active_runs(&self) -> Vec<RunId> {
        lock(&self.inner.active).keys().copied().collect()
    }

    /// The cancellation handle of a run executing here, if it does.
    pub(crate) fn active_run(&self, run_id: RunId) -> Option<CancellationToken> {
        lock(&self.inner.active).get(&run_id).cloned()
    }

    /// Whether the runtime is stopping (no more claims).
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Execute a run this node claimed from the shared queue, if there is room (`false` when there is none or the
    /// runtime is stopping: the caller gives the claim up).
    pub(crate) fn spawn_claimed(&self, run: Run, registered: Registered, claim: Claim) -> bool {
        let mut queue = lock(&self.inner.queue);
        if queue.running >= self.inner.config.max_concurrent_runs || self.inner.shutdown.is_cancelled() {
            return false;
        }
        self.spawn_run(&mut queue, run, registered, Some(claim));
        true
    }

    /// How this runtime takes part in the queue shared on PostgreSQL, if it does ([`RuntimeConfig::node`]).
    pub fn node_config(&self) -> Option<&NodeConfig> {
        self.inner.config.node.as_ref()
    }

    /// Runs executing here at once at most.
    pub(crate) fn capacity(&self) -> usize {
        self.inner.config.max_concurrent_runs
    }

    /// Completes when a run was started or ended here (a node should look at the queue).
    pub(crate) async fn claim_wakeup(&self) {
        self.inner.claim_wake.notified().await;
    }

    /// Wake the claimer (another node announced a run).
    pub(crate) fn wake_claimer(&self) {
        self.inner.claim_wake.notify_one();
    }

    /// Completes once [`Runtime::shutdown`] was called.
    pub(crate) async fn shutdown_signal(&self) {
        self.inner.shutdown.cancelled().await;
    }

    /// Tell viewers and lists that a run's status changed (it was ended elsewhere).
    pub(crate) fn announce_status_of(&self, run: Run) {
        self.announce_status(run);
    }

    /// Whether another run can start here now.
    pub(crate) fn has_room(&self) -> bool {
        lock(&self.inner.queue).running < self.inner.config.max_concurrent_runs
    }

    /// Execute one run to its end. Never panics: every failure becomes the run's status. A run claimed from the
    /// shared queue (`claim`) is already `running`, and its end is written fenced by the claim.
    async fn execute(&self, run: Run, registered: Registered, cancel: CancellationToken, claim: Option<Claim>) {
        let run_id = run.id;
        if let Some(claim) = claim {
            self.inner.hub.publish_lifecycle(LifecycleEvent::RunChanged(run.clone()));
            self.inner.hub.publish_run(run_id, RunEvent::Status(run.clone()));
            self.run_to_end(run, registered, cancel, Some(claim)).await;
            return;
        }
        if cancel.is_cancelled() {
            if self.inner.shutdown.is_cancelled() {
                return; // never started: it stays `pending`, and the next start runs it
            }
            self.finish(run_id, RunStatus::Cancelled, Some("cancelled before it started".into())).await;
            return;
        }
        match self.transition_with_retry(run_id, RunStatus::Running, None).await {
            Ok(running) => self.announce_status(running),
            Err(error) => {
                // Cancelled or deleted between queueing and starting, or a database still down when the server
                // stopped: nothing to run (recovery at the next start re-queues a run still `pending`).
                tracing::warn!(%run_id, %error, "run not started");
                return;
            }
        }
        self.run_to_end(run, registered, cancel, None).await;
    }

    /// Execute a `running` run's experiment and write how it ended.
    async fn run_to_end(&self, run: Run, registered: Registered, cancel: CancellationToken, claim: Option<Claim>) {
        let run_id = run.id;

        if let Err(reason) = self.inner.writer.open(run_id, 0, cancel.clone()).await {
            self.finish_owned(run_id, claim, RunStatus::Failed, Some(reason)).await;
            return;
        }
        let ctx = RunContext::new(
            run_id,
            run.config.clone(),
            self.inner.writer.clone(),
            self.inner.hub.clone(),
            cancel.clone(),
        );
        let experiment = registered.experiment.clone();
        // Whether a cancel had been requested when the experiment's `run` returned (unset if it never returned:
        // a panic, an abort). See `ended`.
        let returned = Arc::new(OnceLock::new());
        let (returned_by_run, cancel_seen_by_run) = (returned.clone(), cancel.clone());
        // On the experiment threads, so code that never awaits cannot hold up this supervision (timers, cancel,
        // the status writes) or anything else on the server's runtime.
        let mut task = match self.inner.experiments.spawn(async move {
            let result = experiment.run_erased(ctx).await;
            let _ = returned_by_run.set(Returned { after_cancel: cancel_seen_by_run.is_cancelled() });
            result
        }) {
            Ok(task) => task,
            Err(error) => {
                tracing::error!(%run_id, %error, "could not start the experiment threads");
                self.close_records(run_id).await;
                let message = format!("could not start the threads experiments run on: {error}");
                self.finish_owned(run_id, claim, RunStatus::Failed, Some(message)).await;
                return;
            }
        };

        let deadline = async {
            match self.inner.config.run_timeout {
                Some(limit) => tokio::time::sleep(limit).await,
                None => std::future::pending().await,
            }
        };
        let Ended { status, error, stopped_with } = tokio::select! {
            // `biased`, the run's end first: code that has returned is judged by what it returned (see `ended`),
            // even when a cancel or the deadline is ready at the same moment.
            biased;
            joined = &mut task => self.ended(joined, returned.get()),
            () = cancel.cancelled() => {
                let grace = self.inner.config.cancel_grace;
                match tokio::time::timeout(grace, &mut task).await {
                    Ok(joined) => self.ended(joined, returned.get()),
                    Err(_) => {
                        self.abort(run_id, &mut task).await;
                        Ended::from(self.stopped(Some(grace)))
                    }
                }
            }
            () = deadline => {
                self.abort(run_id, &mut task).await;
                let limit = self.inner.config.run_timeout.map(human_duration).unwrap_or_default();
                Ended::from((RunStatus::Failed, Some(format!("timed out after {limit}"))))
            }
        };
        if let Some(error) = stopped_with {
            // Still before `Close`, so the line is committed with the run's other records.
            let message = format!("the experiment returned an error after it was asked to stop: {error}");
            let log = NewLog { ts: Utc::now(), level: LogLevel::Warn, message: storable_line(message), metadata: None };
            let _ = self.inner.writer.send(WriterMessage::Log { run_id, log }).await;
        }

        // Everything the run logged is committed before its terminal status is written; a run whose records
        // could not all be stored (or whose writer stopped) fails, saying why, however it ended.
        let (status, error) = match self.close_records(run_id).await {
            None => (status, error),
            Some(reason) => (RunStatus::Failed, Some(reason)),
        };
        self.finish_owned(run_id, claim, status, error).await;
    }

    /// Commit every record `run_id` sent so far and refuse later ones (see the writer). Returns why the run must
    /// fail instead, if some of its records could not be stored or the writer stopped.
    async fn close_records(&self, run_id: RunId) -> Option<String> {
        self.inner.writer.close(run_id).await
    }

    /// Force a run's code to stop, without waiting on code that does not yield (see `executor`).
    async fn abort(&self, run_id: RunId, task: &mut RunTask) {
        if !task.stop().await {
            tracing::warn!(
                %run_id,
                "ending the run while its code still executes (it does not yield, or every experiment thread is \
                 busy); code that never yields keeps its thread until it returns: check ctx.is_cancelled()"
            );
        }
    }

    /// How a run whose code has ended ends. When a cancel (or the server's shutdown) and the experiment's own end
    /// meet, the rule is:
    ///
    /// - **What the experiment returned before the cancel was requested stands**: it completed, or it failed with
    ///   its message. A cancel that arrives a moment after a failure — the user pressed the button while the error
    ///   was on its way — never turns that failure into `cancelled` and never hides its message. What counts is
    ///   whether a cancel had been requested when `run` returned, not which of the two the supervisor noticed
    ///   first.
    /// - **A panic always fails the run with its message**, before or after a cancel: a panic is a bug to show, not
    ///   a way to stop.
    /// - **After a cancel, returning ends the run as stopped** (`cancelled`, "cancelled by user"; `failed`, "server
    ///   shutting down"), with `Ok` or with an error: returning early, even with an error, is how code obeys a
    ///   cancel (`RunContext::is_cancelled` says so, and a command killed by the SIGTERM of a cancel fails that way
    ///   while the protocol promises such a run ends `cancelled`). The error's message is not dropped: it is kept
    ///   as the run's last log line, a `warn` ("the experiment returned an error after it was asked to stop: …"),
    ///   where the user sees what the experiment said — a checkpoint it could not save, say.
    fn ended(&self, joined: Result<crate::RunResult, tokio::task::JoinError>, returned: Option<&Returned>) -> Ended {
        let after_cancel = returned.is_some_and(|returned| returned.after_cancel);
        match joined {
            Ok(Ok(())) if after_cancel => Ended::from(self.stopped(None)),
            Ok(Err(error)) if after_cancel => {
                Ended { stopped_with: Some(format!("{error:#}")), ..Ended::from(self.stopped(None)) }
            }
            joined => Ended::from(outcome(joined)),
        }
    }

    /// How a run that was asked to stop ends: `cancelled` when a user asked, `failed` ("server shutting down", like
    /// "interrupted by restart") when the server is stopping; `forced_after` says the grace period ran out.
    fn stopped(&self, forced_after: Option<Duration>) -> (RunStatus, Option<String>) {
        let (status, reason) = if self.inner.shutdown.is_cancelled() {
            (RunStatus::Failed, "server shutting down")
        } else {
            (RunStatus::Cancelled, "cancelled by user")
        };
        let error = match forced_after {
            None => reason.to_owned(),
            Some(grace) => {
                format!("{reason}; forced after {} because the experiment did not stop", human_duration(grace))
            }
        };
        (status, Some(error))
    }

    /// A status change that survives the database going away: a passing error (the connection lost, no
    /// connection to be had, a busy SQLite file: [`StoreError::is_transient`]) is retried with backoff (100 ms
    /// doubling to 5 s) for as long as it lasts, so an outage of any length never leaves a run `running` or a
    /// started run `pending`. Once the server is shutting down it gives up after `SHUTDOWN_STATUS_RETRY`: the
    /// process must exit, and recovery at the next start settles a run left `running`. Refusals that retrying
    /// cannot change (no such run, an illegal step) return at once.
    async fn transition_with_retry(
        &self,
        run_id: RunId,
        status: RunStatus,
        error: Option<&str>,
    ) -> Result<Run, StoreError> {
        let mut backoff = Duration::from_millis(100);
        let mut give_up_at: Option<Instant> = None;
        let mut failed_before = false;
        loop {
            match self.inner.store.transition_run(run_id, status, error).await {
                Ok(run) => {
                    self.inner.writer.database().reachable();
                    return Ok(run);
                }
                Err(cause) if cause.is_transient() => {
                    self.inner.writer.database().unreachable(&cause, "writing a run's status");
                    failed_before = true;
                    if self.inner.shutdown.is_cancelled() {
                        let deadline = *give_up_at.get_or_insert_with(|| Instant::now() + SHUTDOWN_STATUS_RETRY);
                        if Instant::now() >= deadline {
                            return Err(cause);
                        }
                    }
                    tracing::debug!(%run_id, %cause, ?status, "status change failed; retrying");
                    // Backoff between retries of a failing database; there is no event to wait for.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(refused @ StoreError::IllegalTransition { .. }) if failed_before => {
                    // An earlier attempt may have landed with its answer lost with the connection: the run is then
                    // already where it was sent, which is success, not a refusal.
                    match self.inner.store.get_run(run_id).await {
                        Ok(Some(run)) if run.status == status => return Ok(run),
                        _ => return Err(refused),
                    }
                }
                Err(refused) => return Err(refused),
            }
        }
    }

    /// Write a run's end: fenced by its claim when it came from the shared queue, else as [`Runtime::finish`].
    async fn finish_owned(&self, run_id: RunId, claim: Option<Claim>, status: RunStatus, error: Option<String>) {
        let Some(claim) = claim else { return self.finish(run_id, status, error).await };
        let error = error.map(crate::context::storable);
        let mut backoff = Duration::from_millis(100);
        let started = Instant::now();
        loop {
            match self.inner.store.finish_claim(claim, status, error.as_deref()).await {
                Ok(true) => break,
                Ok(false) => {
                    // The lease ran out and the run was rescued (or cancelled) meanwhile: the outcome written
                    // then stands, as the fencing token says.
                    tracing::warn!(%run_id, "this node lost the run's lease; its recorded outcome stands");
                    break;
                }
                Err(cause) if cause.is_transient() && started.elapsed() < SHUTDOWN_STATUS_RETRY * 4 => {
                    self.inner.writer.database().unreachable(&cause, "writing a run's status");
                    // Backoff between retries of a failing database; there is no event to wait for.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(cause) => {
                    tracing::error!(%run_id, %cause, "could not record the end of a run; its lease will expire");
                    break;
                }
            }
        }
        if let Ok(Some(run)) = self.inner.store.get_run(run_id).await {
            self.announce_status(run);
        }
        self.inner.hub.retire_run(run_id);
    }

    async fn finish(&self, run_id: RunId, status: RunStatus, error: Option<String>) {
        // An error can quote anything an experiment produced (a command's stderr, a panic message); a NUL in it
        // would make PostgreSQL refuse the update and leave the run `running`.
        let error = error.map(crate::context::storable);
        match self.transition_with_retry(run_id, status, error.as_deref()).await {
            Ok(run) => self.announce_status(run),
            Err(StoreError::RunNotFound(_)) => {} // its instance was deleted meanwhile
            // Only while shutting down with the database gone (see `transition_with_retry`): the next start's
            // recovery fails the run left `running` ("interrupted by restart").
            Err(error) => tracing::error!(%run_id, %error, "could not record the end of a run"),
        }
        self.inner.hub.retire_run(run_id);
    }
}

/// How long a status change is still retried through passing database errors once the server is shutting down
/// (see `transition_with_retry`).
const SHUTDOWN_STATUS_RETRY: Duration = Duration::from_secs(30);

/// How a run ends: its terminal status and error, and the error its experiment returned after it was asked to stop
/// (kept as a log line; see `Runtime::ended`).
struct Ended {
    status: RunStatus,
    error: Option<String>,
    stopped_with: Option<String>,
}

impl From<(RunStatus, Option<String>)> for Ended {
    fn from((status, error): (RunStatus, Option<String>)) -> Ended {
        Ended { status, error, stopped_with: None }
    }
}

/// `message`, storable as a log line: NUL replaced, and cut (at a character boundary, ending with `…`) to the
/// limit of a log message.
fn storable_line(message: String) -> String {
    let message = crate::context::storable(message);
    let limit = crate::limits::MAX_MESSAGE_BYTES;
    if message.len() <= limit {
        return message;
    }
    let mut end = limit - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// What the supervisor learns when an experiment's `run` returns (see `Runtime::ended`).
#[derive(Debug, Clone, Copy)]
struct Returned {
    /// A cancel (or the server's shutdown) had been requested by then.
    after_cancel: bool,
}

/// The status an experiment's own end gives its run, when no cancel came before it.
fn outcome(joined: Result<crate::RunResult, tokio::task::JoinError>) -> (RunStatus, Option<String>) {
    match joined {
        Ok(Ok(())) => (RunStatus::Completed, None),
        // `{:#}` prints the error with its causes ("reading data.csv: permission denied"), one line.
        Ok(Err(error)) => (RunStatus::Failed, Some(format!("{error:#}"))),
        Err(join_error) if join_error.is_panic() => {
            let payload = join_error.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(a non-text panic payload)".to_owned());
            (RunStatus::Failed, Some(format!("panicked: {message}")))
        }
        Err(_) => (RunStatus::Cancelled, Some("aborted".to_owned())),
    }
}

/// `5 s`, `2 min`, `1.5 h` — for messages.
fn human_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 1.0 {
        format!("{} ms", duration.as_millis())
    } else if seconds < 120.0 {
        format!("{} s", (seconds * 10.0).round() / 10.0)
    } else if seconds < 7_200.0 {
        format!("{} min", (seconds / 6.0).round() / 10.0)
    } else {
        format!("{} h", (seconds / 360.0).round() / 10.0)
    }
}
