//! Every execution path of the runtime, against a real SQLite database in a temp dir.

use athanor_core::schema::Field;
use athanor_core::{
    Description, ExperimentDefinition, ExperimentName, InstanceDraft, InstanceName, LogLevel, Run, RunEvent, RunStatus,
    Schema,
};
use athanor_runtime::{async_trait, CancelOutcome, Experiment, Registry, RunContext, Runtime, RuntimeConfig};
use athanor_store::{LogQuery, Store};
use futures::StreamExt;
use serde_json::json;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;
use uuid::Uuid;

fn definition(name: &str, schema: Schema) -> ExperimentDefinition {
    ExperimentDefinition {
        name: ExperimentName::parse(name).unwrap(),
        description: format!("test experiment {name}"),
        version: "test-1".into(),
        schema,
    }
}

/// Logs `lines` lines (in `log` calls, or `log_batch` when `batch` > 1), records two results, completes.
struct Quick;
#[async_trait]
impl Experiment for Quick {
    fn definition(&self) -> ExperimentDefinition {
        definition(
            "quick",
            Schema::new()
                .field(Field::integer("lines").default(10).min(0))
                .field(Field::integer("batch").default(1).min(1)),
        )
    }
    async fn run(&self, ctx: RunContext) -> Result<(), String> {
        let lines = ctx.config()["lines"].as_i64().unwrap_or(10);
        let batch = ctx.config()["batch"].as_i64().unwrap_or(1) as usize;
        if batch > 1 {
            let all: Vec<_> = (1..=lines).map(|i| (LogLevel::Info, format!("line {i}"), None)).collect();
            for chunk in all.chunks(batch) {
                ctx.log_batch(chunk.iter().cloned()).await;
            }
        } else {
            for i in 1..=lines {
                let level = if i % 10 == 0 { LogLevel::Warn } else { LogLevel::Info };
                ctx.log(level, format!("line {i}"), Some(json!({"i": i}))).await;
            }
        }
        ctx.result("accuracy", json!(0.91)).await;
        ctx.result("curve", json!([0.5, 0.7, 0.91])).await;
        Ok(())
    }
}

struct Fails;
#[async_trait]
impl Experiment for Fails {
    fn definition(&self) -> ExperimentDefinition {
        definition("fails", Schema::new())
    }
    async fn run(&self, ctx: RunContext) -> Result<(), String> {
        ctx.info("about to fail").await;
        Err("the model diverged".into())
    }
}

struct Panics;
#[async_trait]
impl Experiment for Panics {
    fn definition(&self) -> ExperimentDefinition {
        definition("panics", Schema::new())
    }
    async fn run(&self, ctx: RunContext) -> Result<(), String> {
        ctx.info("logged before the panic").await;
        panic!("index out of bounds in step 3");
    }
}

/// Waits for cancellation, then stops politely.
struct Polite;
#[async_trait]
impl Experiment for Polite {
    fn definition(&self) -> ExperimentDefinition {
        definition("polite", Schema::new())
    }
    async fn run(&self, ctx: RunContext) -> Result<(), String> {
        ctx.progress(1, Some(100), Some("waiting to be cancelled"));
        ctx.cancelled().await;
        ctx.info("stopping as asked").await;
        Ok(())
    }
}

/// Never looks at cancellation; only an abort stops it.
struct Deaf;
#[async_trait]
impl Experiment for Deaf {
    fn definition(&self) -> ExperimentDefinition {
        definition("deaf", Schema::new())
    }
    async fn run(&self, ctx: RunContext) -> Result<(), String> {
        ctx.progress(0, None, Some("ignoring everyone"));
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Records the order runs start in, then waits for a permit from [`GATE`] before completing.
struct Gated;
static GATE: Semaphore = Semaphore::const_new(0);
static STARTED: Mutex<Vec<Uuid>> = Mutex::new(Vec::new());
#[async_trait]
impl Experiment for Gated {
    fn definition(&self) -> ExperimentDefinition {
        definition("gated", Schema::new())
    }
    async fn run(&self, ctx: RunContext) -> Result<(), String> {
        STARTED.lock().unwrap().push(ctx.run_id());
        ctx.progress(0, None, Some("waiting at the gate"));
        GATE.acquire().await.map_err(|e| e.to_string())?.forget();
        Ok(())
    }
}

fn registry() -> Registry {
    Registry::from_experiments(vec![
        Box::new(Quick) as Box<dyn Experiment>,
        Box::new(Fails),
        Box::new(Panics),
        Box::new(Polite),
        Box::new(Deaf),
        Box::new(Gated),
    ])
    .unwrap()
}

struct Harness {
    runtime: Runtime,
    store: Store,
    _dir: tempfile::TempDir,
}

async fn harness(config: RuntimeConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("runtime.db").display())).await.unwrap();
    let runtime = Runtime::new(store.clone(), registry(), config);
    Harness { runtime, store, _dir: dir }
}

impl Harness {
    async fn instance(&self, experiment: &str, config: serde_json::Value) -> Uuid {
        let draft = InstanceDraft {
            experiment: ExperimentName::parse(experiment).unwrap(),
            name: InstanceName::parse(&format!("{experiment} instance")).unwrap(),
            description: Description::parse("").unwrap(),
            config,
        };
        self.store.create_instance(&draft).await.unwrap().id
    }

    /// Start a run of a fresh instance of `experiment`.
    async fn start(&self, experiment: &str, config: serde_json::Value) -> Run {
        let instance = self.instance(experiment, config).await;
        self.runtime.start(instance).await.unwrap()
    }

    /// Follow the run's event stream until it reports a terminal status.
    async fn wait_for_end(&self, run_id: Uuid) -> Run {
        let mut events = Box::pin(self.runtime.run_events(run_id, 0));
        while let Some(event) = events.next().await {
            match event.unwrap() {
                RunEvent::Snapshot { run, .. } | RunEvent::Status(run) if run.status.is_terminal() => return run,
                _ => {}
            }
        }
        panic!("stream of run {run_id} ended without a terminal status");
    }

    /// Follow the run's event stream until the experiment reports progress (it is running its body).
    async fn wait_for_progress(&self, run_id: Uuid) {
        let mut events = Box::pin(self.runtime.run_events(run_id, 0));
        while let Some(event) = events.next().await {
            match event.unwrap() {
                RunEvent::Progress(_) | RunEvent::Snapshot { progress: Some(_), .. } => return,
                _ => {}
            }
        }
        panic!("run {run_id} ended without reporting progress");
    }
}

fn fast_config() -> RuntimeConfig {
    RuntimeConfig { cancel_grace: Duration::from_millis(200), ..RuntimeConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_completes_with_every_log_and_result_stored_in_order() {
    let h = harness(fast_config()).await;
    let run = h.start("quick", json!({"lines": 1_000})).await;
    assert_eq!(run.status, RunStatus::Pending);
    assert_eq!(run.experiment_version, "test-1");
    assert_eq!(run.config, json!({"lines": 1_000, "batch": 1}), "the snapshot has defaults filled in");

    let done = h.wait_for_end(run.id).await;
    assert_eq!(done.status, RunStatus::Completed);
    assert!(done.error.is_none());
    assert!(done.started_at.is_some() && done.completed_at >= done.started_at);

    assert_eq!(h.store.count_logs(run.id, &[]).await.unwrap(), 1_000);
    assert_eq!(h.store.count_logs(run.id, &[LogLevel::Warn]).await.unwrap(), 100);
    let logs = h.store.logs(run.id, &LogQuery::first(2_000)).await.unwrap().items;
    let seqs: Vec<i64> = logs.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (1..=1_000).collect::<Vec<_>>(), "seq numbers are contiguous and in emission order");
    assert_eq!(logs[41].message, "line 42");
    assert_eq!(logs[41].metadata, Some(json!({"i": 42})));
    let results = h.store.results(run.id, 0, 10).await.unwrap().items;
    assert_eq!(
        results.iter().map(|r| (r.seq, r.key.as_str())).collect::<Vec<_>>(),
        vec![(1_001, "accuracy"), (1_002, "curve")]
    );
    assert_eq!(h.runtime.hub().run_topic_count(), 0, "finished runs leave no topics behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_batch_keeps_order_across_message_boundaries() {
    let h = harness(fast_config()).await;
    let run = h.start("quick", json!({"lines": 1_000, "batch": 300})).await;
    assert_eq!(h.wait_for_end(run.id).await.status, RunStatus::Completed);
    let logs = h.store.logs(run.id, &LogQuery::first(2_000)).await.unwrap().items;
    let messages: Vec<String> = logs.iter().map(|l| l.message.clone()).collect();
    let expected: Vec<String> = (1..=1_000).map(|i| format!("line {i}")).collect();
    assert_eq!(messages, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_fails_the_run_with_its_message_and_keeps_its_logs() {
    let h = harness(fast_config()).await;
    let run = h.start("fails", json!({})).await;
    let done = h.wait_for_end(run.id).await;
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("the model diverged"));
    assert_eq!(h.store.count_logs(run.id, &[]).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_only_its_own_run() {
    let h = harness(fast_config()).await;
    let doomed = h.start("panics", json!({})).await;
    let healthy = h.start("quick", json!({"lines": 50})).await;
    let doomed = h.wait_for_end(doomed.id).await;
    assert_eq!(doomed.status, RunStatus::Failed);
    assert_eq!(doomed.error.as_deref(), Some("panicked: index out of bounds in step 3"));
    assert_eq!(h.store.count_logs(doomed.id, &[]).await.unwrap(), 1, "lines logged before the panic are kept");
    assert_eq!(h.wait_for_end(healthy.id).await.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_cooperative_first() {
    let h = harness(fast_config()).await;
    let run = h.start("polite", json!({})).await;
    h.wait_for_progress(run.id).await;
    assert_eq!(h.runtime.cancel(run.id).await.unwrap(), CancelOutcome::Requested);
    let done = h.wait_for_end(run.id).await;
    assert_eq!(done.status, RunStatus::Cancelled);
    assert_eq!(done.error.as_deref(), Some("cancelled by user"));
    let logs = h.store.logs(run.id, &LogQuery::first(10)).await.unwrap().items;
    assert_eq!(logs.last().map(|l| l.message.as_str()), Some("stopping as asked"), "its last words were kept");
    assert!(h.runtime.cancel(run.id).await.is_err(), "a finished run cannot be cancelled again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_becomes_forced_after_the_grace_period() {
    let h = harness(fast_config()).await;
    let run = h.start("deaf", json!({})).await;
    h.wait_for_progress(run.id).await;
    h.runtime.cancel(run.id).await.unwrap();
    let done = h.wait_for_end(run.id).await;
    assert_eq!(done.status, RunStatus::Cancelled);
    let error = done.error.unwrap();
    assert!(error.contains("forced after 200 ms"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_run_times_out_and_fails() {
    let h = harness(RuntimeConfig { run_timeout: Some(Duration::from_millis(300)), ..fast_config() }).await;
    let run = h.start("deaf", json!({})).await;
    let done = h.wait_for_end(run.id).await;
    assert_eq!(done.status, RunStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("timed out after 300 ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_beyond_the_limit_wait_pending_and_start_in_order() {
    let h = harness(RuntimeConfig { max_concurrent_runs: 2, ..fast_config() }).await;
    let instance = h.instance("gated", json!({})).await;
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(h.runtime.start(instance).await.unwrap());
    }
    // The first two start; the rest stay pending in the database.
    h.wait_for_progress(runs[0].id).await;
    h.wait_for_progress(runs[1].id).await;
    assert_eq!(h.runtime.busy(), (2, 3));
    for run in &runs[2..] {
        assert_eq!(h.store.get_run(run.id).await.unwrap().unwrap().status, RunStatus::Pending);
    }
    // Cancelling a queued run takes it out of the queue at once.
    assert_eq!(h.runtime.cancel(runs[3].id).await.unwrap(), CancelOutcome::CancelledWhilePending);
    let cancelled = h.store.get_run(runs[3].id).await.unwrap().unwrap();
    assert_eq!(
        (cancelled.status, cancelled.error.as_deref()),
        (RunStatus::Cancelled, Some("cancelled before it started"))
    );

    // Free one slot at a time: the oldest waiting run must take it each time.
    GATE.add_permits(1);
    h.wait_for_progress(runs[2].id).await;
    assert_eq!(h.store.get_run(runs[4].id).await.unwrap().unwrap().status, RunStatus::Pending);
    GATE.add_permits(1);
    h.wait_for_progress(runs[4].id).await;
    GATE.add_permits(2);
    for run in [&runs[0], &runs[1], &runs[2], &runs[4]] {
        assert_eq!(h.wait_for_end(run.id).await.status, RunStatus::Completed);
    }
    let started = STARTED.lock().unwrap().clone();
    // The first two started together, in either order; after them, strictly oldest first.
    assert_eq!(started.len(), 4);
    let mut first_two = started[..2].to_vec();
    first_two.sort();
    let mut expected_first_two = vec![runs[0].id, runs[1].id];
    expected_first_two.sort();
    assert_eq!(first_two, expected_first_two);
    assert_eq!(started[2..], [runs[2].id, runs[4].id], "FIFO order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_fails_interrupted_runs_and_restarts_pending_ones() {
    let h = harness(fast_config()).await;
    let instance = h.instance("quick", json!({"lines": 5, "batch": 1})).await;
    let config = json!({"lines": 5, "batch": 1});
    let interrupted = h.store.create_run(instance, &config, "test-1").await.unwrap();
    h.store.transition_run(interrupted.id, RunStatus::Running, None).await.unwrap();
    let waiting = h.store.create_run(instance, &config, "test-1").await.unwrap();

    let report = h.runtime.recover().await.unwrap();
    assert_eq!(report.interrupted, vec![interrupted.id]);
    assert_eq!(report.requeued, vec![waiting.id]);
    let failed = h.store.get_run(interrupted.id).await.unwrap().unwrap();
    assert_eq!((failed.status, failed.error.as_deref()), (RunStatus::Failed, Some("interrupted by restart")));
    assert_eq!(h.wait_for_end(waiting.id).await.status, RunStatus::Completed);
    assert_eq!(h.store.count_logs(waiting.id, &[]).await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_experiment_is_a_clear_error_not_a_crash() {
    let h = harness(fast_config()).await;
    let instance = h.instance("renamed_long_ago", json!({})).await;
    let error = h.runtime.start(instance).await.unwrap_err().to_string();
    assert!(error.contains("\"renamed_long_ago\" is not available on this server"), "{error}");
    assert!(h.store.list_runs(instance).await.unwrap().is_empty(), "no run was created");

    let stale = h.instance("quick", json!({"lines": "many"})).await;
    let error = h.runtime.start(stale).await.unwrap_err().to_string();
    assert!(error.contains("lines: must be"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_sees_every_record_once_and_can_resume_from_any_seq() {
    // A tiny live buffer guarantees the slow subscriber below overflows it.
    let h = harness(RuntimeConfig { event_buffer: 2, max_concurrent_runs: 1, ..fast_config() }).await;
    // A blocker holds the only slot, so the run below stays pending until we have subscribed to it.
    let blocker = h.start("polite", json!({})).await;
    h.wait_for_progress(blocker.id).await;
    let instance = h.instance("quick", json!({"lines": 3_000, "batch": 1})).await;
    let run = h.runtime.start(instance).await.unwrap();
    let mut slow = Box::pin(h.runtime.run_events(run.id, 0));
    // The first poll subscribes (and yields the snapshot); then this subscriber stops reading while the run
    // produces far more events than its two-event buffer holds.
    assert!(matches!(slow.next().await, Some(Ok(RunEvent::Snapshot { .. }))));
    h.runtime.cancel(blocker.id).await.unwrap();
    assert_eq!(h.wait_for_end(run.id).await.status, RunStatus::Completed);

    let mut seqs = Vec::new();
    while let Some(event) = slow.next().await {
        if let RunEvent::Records { logs, results } = event.unwrap() {
            seqs.extend(logs.iter().map(|l| l.seq));
            seqs.extend(results.iter().map(|r| r.seq));
        }
    }
    seqs.sort_unstable();
    let before_dedup = seqs.len();
    seqs.dedup();
    assert_eq!(before_dedup, seqs.len(), "no record delivered twice");
    assert_eq!(seqs, (1..=3_002).collect::<Vec<_>>(), "no record missing");

    // A reconnecting viewer that had seen up to seq 2_500 gets exactly the rest.
    let resumed: Vec<i64> = h
        .runtime
        .run_events(run.id, 2_500)
        .filter_map(|event| async move {
            match event.unwrap() {
                RunEvent::Records { logs, results } => {
                    Some(logs.iter().map(|l| l.seq).chain(results.iter().map(|r| r.seq)).collect::<Vec<_>>())
                }
                _ => None,
            }
        })
        .concat()
        .await;
    let mut resumed = resumed;
    resumed.sort_unstable();
    assert_eq!(resumed, (2_501..=3_002).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_short_runs_all_complete() {
    let h = harness(RuntimeConfig { max_concurrent_runs: 64, ..fast_config() }).await;
    let instance = h.instance("quick", json!({"lines": 10, "batch": 1})).await;
    let mut ids = Vec::new();
    for _ in 0..1_000 {
        ids.push(h.runtime.start(instance).await.unwrap().id);
    }
    h.runtime.wait_idle().await;
    let runs = h.store.list_runs(instance).await.unwrap();
    assert_eq!(runs.len(), 1_000);
    assert!(runs.iter().all(|run| run.status == RunStatus::Completed), "every run completed");
    for id in ids.iter().step_by(97) {
        assert_eq!(h.store.count_logs(*id, &[]).await.unwrap(), 10);
        assert_eq!(h.store.count_results(*id).await.unwrap(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_with_the_terminal_status_after_every_record() {
    let h = harness(fast_config()).await;
    let run = h.start("quick", json!({"lines": 2_500})).await;
    // Subscribe while the run may still be going; collect everything until the stream ends.
    let events: Vec<RunEvent> = h.runtime.run_events(run.id, 0).map(Result::unwrap).collect().await;
    let last = events.last().expect("some events");
    assert!(matches!(last, RunEvent::Status(run) if run.status == RunStatus::Completed), "{last:?}");
    let seqs: Vec<i64> = events
        .iter()
        .flat_map(|event| match event {
            RunEvent::Records { logs, results } => {
                logs.iter().map(|l| l.seq).chain(results.iter().map(|r| r.seq)).collect::<Vec<_>>()
            }
            _ => Vec::new(),
        })
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=2_502).collect::<Vec<_>>(), "every record, once, before the end");

    // Subscribing to the finished run gives the same: its records, then its terminal status.
    let again: Vec<RunEvent> = h.runtime.run_events(run.id, 2_400).map(Result::unwrap).collect().await;
    assert!(matches!(again.first(), Some(RunEvent::Snapshot { .. })));
    assert!(matches!(again.last(), Some(RunEvent::Status(run)) if run.status == RunStatus::Completed));
    assert_eq!(h.runtime.wait_for_end(run.id).await.unwrap().status, RunStatus::Completed);
}
