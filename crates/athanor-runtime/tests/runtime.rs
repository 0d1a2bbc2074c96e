//! Every execution path of the runtime, against a real SQLite database in a temp dir
//! ([`athanor_runtime::testing::TestRuntime`]).

use athanor_core::{Description, ExperimentName, InstanceDraft, InstanceName, RunEvent, RunStatus};
use athanor_core::{InstanceId, RunId};
use athanor_runtime::prelude::*;
use athanor_runtime::testing::TestRuntime;
use athanor_runtime::{AnyExperiment, CancelOutcome, Registry, RuntimeConfig, RuntimeError};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Semaphore;
use uuid::Uuid;

fn definition(name: &str) -> ExperimentDefinition {
    ExperimentDefinition::new(name, "test-1").description(format!("test experiment {name}"))
}

/// Logs `lines` lines (in `log` calls, or `log_batch` when `batch` > 1), records two results, completes.
struct Quick;

#[derive(Deserialize)]
struct QuickConfig {
    lines: u64,
    batch: usize,
}

impl Experiment for Quick {
    type Config = QuickConfig;
    fn definition(&self) -> ExperimentDefinition {
        definition("quick").schema(
            Schema::new()
                .field(Field::integer("lines").default(10).min(0))
                .field(Field::integer("batch").default(1).min(1)),
        )
    }
    async fn run(&self, ctx: RunContext, config: QuickConfig) -> RunResult {
        let QuickConfig { lines, batch } = config;
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
        ctx.result("accuracy", 0.91).await?;
        ctx.result("curve", [0.5, 0.7, 0.91]).await?;
        Ok(())
    }
}

struct Fails;
impl Experiment for Fails {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        definition("fails")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.info("about to fail").await;
        bail!("the model diverged")
    }
}

/// Fails with an error that has a cause, the way `?` on a failed read does.
struct FailsWithCause;
impl Experiment for FailsWithCause {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        definition("fails_with_cause")
    }
    async fn run(&self, _ctx: RunContext, _config: Value) -> RunResult {
        let read: std::io::Result<Vec<u8>> =
            Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied"));
        let _data = read.context("reading data.csv")?;
        Ok(())
    }
}

struct Panics;
impl Experiment for Panics {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        definition("panics")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.info("logged before the panic").await;
        panic!("index out of bounds in step 3");
    }
}

/// Waits for cancellation, then stops politely.
struct Polite;
impl Experiment for Polite {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        definition("polite")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.progress(1, Some(100), Some("waiting to be cancelled"));
        ctx.cancelled().await;
        ctx.info("stopping as asked").await;
        Ok(())
    }
}

/// Never looks at cancellation; only an abort stops it.
struct Deaf;
impl Experiment for Deaf {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        definition("deaf")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.progress(0, None, Some("ignoring everyone"));
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Records the order runs start in, then waits for a permit from [`GATE`] before completing.
struct Gated;
static GATE: Semaphore = Semaphore::const_new(0);
static STARTED: Mutex<Vec<RunId>> = Mutex::new(Vec::new());
impl Experiment for Gated {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        definition("gated")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        STARTED.lock().unwrap().push(ctx.run_id());
        ctx.progress(0, None, Some("waiting at the gate"));
        GATE.acquire().await?.forget();
        Ok(())
    }
}

/// Tries to record a map with tuple keys, which JSON cannot hold; with `propagate` it returns the error with `?`,
/// otherwise it logs it and records a plain result after it.
struct Unrepresentable;

#[derive(Deserialize)]
struct UnrepresentableConfig {
    propagate: bool,
}

impl Experiment for Unrepresentable {
    type Config = UnrepresentableConfig;
    fn definition(&self) -> ExperimentDefinition {
        definition("unrepresentable").schema(Schema::new().field(Field::boolean("propagate").default(false)))
    }
    async fn run(&self, ctx: RunContext, config: UnrepresentableConfig) -> RunResult {
        let confusion: HashMap<(u8, u8), u8> = HashMap::from([((0, 1), 3), ((1, 0), 2)]);
        if config.propagate {
            ctx.result("confusion", &confusion).await?;
            bail!("a map with tuple keys was recorded");
        }
        match ctx.result("confusion", &confusion).await {
            Ok(()) => bail!("a map with tuple keys was recorded"),
            Err(error) => ctx.info(format!("refused: {error}")).await,
        }
        ctx.result("after", true).await?;
        Ok(())
    }
}

/// Records a short series, ending with a value JSON cannot hold.
struct Series;
impl Experiment for Series {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        definition("series")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.series("loss", 1, 0.5).await;
        ctx.series("loss", 2, 0.25).await;
        ctx.series("loss", 3, f64::NAN).await;
        ctx.series("accuracy", 1, 0.75).await;
        Ok(())
    }
}

fn experiments() -> Vec<Box<dyn AnyExperiment>> {
    vec![
        Box::new(Quick),
        Box::new(Fails),
        Box::new(FailsWithCause),
        Box::new(Panics),
        Box::new(Polite),
        Box::new(Deaf),
        Box::new(Gated),
        Box::new(Unrepresentable),
        Box::new(Series),
    ]
}

fn fast_config() -> RuntimeConfig {
    RuntimeConfig { cancel_grace: Duration::from_millis(200), ..RuntimeConfig::default() }
}

/// The test experiments on a fresh temporary database, under `config`.
async fn harness(config: RuntimeConfig) -> TestRuntime {
    let registry = Registry::from_experiments(experiments()).unwrap();
    TestRuntime::with_registry(registry, config).await.unwrap()
}

/// An instance saved exactly as given, neither completed with defaults nor validated: what an older server, or an
/// experiment that has since changed or vanished, may have left in the database.
async fn stored_instance(h: &TestRuntime, experiment: &str, config: Value) -> InstanceId {
    let draft = InstanceDraft {
        experiment: ExperimentName::parse(experiment).unwrap(),
        name: InstanceName::parse(&format!("{experiment} instance {}", Uuid::new_v4().simple())).unwrap(),
        description: Description::parse("").unwrap(),
        config,
    };
    h.store().create_instance(&draft).await.unwrap().id
}

/// An instance of `experiment` (its defaults with `overrides` on top).
async fn instance(h: &TestRuntime, experiment: &str, overrides: Value) -> InstanceId {
    h.instance(experiment, overrides).await.unwrap().id
}

/// Follow the run's event stream until it reports a terminal status.
async fn wait_for_end(h: &TestRuntime, run_id: RunId) -> athanor_core::Run {
    h.runtime().wait_for_end(run_id).await.unwrap()
}

/// Follow the run's event stream until the experiment reports progress (it is running its body).
async fn wait_for_progress(h: &TestRuntime, run_id: RunId) {
    let mut events = Box::pin(h.runtime().run_events(run_id, 0));
    while let Some(event) = events.next().await {
        match event.unwrap() {
            RunEvent::Progress(_) | RunEvent::Snapshot { progress: Some(_), .. } => return,
            _ => {}
        }
    }
    panic!("run {run_id} ended without reporting progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_completes_with_every_log_and_result_stored_in_order() {
    let h = harness(fast_config()).await;
    let instance = stored_instance(&h, "quick", json!({"lines": 1_000})).await;
    let run = h.runtime().start(instance).await.unwrap();
    assert_eq!(run.status, RunStatus::Pending);
    assert_eq!(run.experiment_version, "test-1");
    assert_eq!(run.config, json!({"lines": 1_000, "batch": 1}), "the snapshot has defaults filled in");

    let report = h.finish(&run).await.unwrap();
    let done = &report.run;
    assert_eq!(done.status, RunStatus::Completed);
    assert!(done.error.is_none());
    assert!(done.started_at.is_some() && done.completed_at >= done.started_at);

    assert_eq!(h.store().count_logs(run.id, &[]).await.unwrap(), 1_000);
    assert_eq!(h.store().count_logs(run.id, &[LogLevel::Warn]).await.unwrap(), 100);
    let logs = &report.logs;
    let seqs: Vec<i64> = logs.iter().map(|l| l.seq).collect();
    assert_eq!(seqs, (1..=1_000).collect::<Vec<_>>(), "seq numbers are contiguous and in emission order");
    assert_eq!(logs[41].message, "line 42");
    assert_eq!(logs[41].metadata, Some(json!({"i": 42})));
    assert_eq!(
        report.results.iter().map(|r| (r.seq, r.key.as_str())).collect::<Vec<_>>(),
        vec![(1_001, "accuracy"), (1_002, "curve")]
    );
    assert_eq!(report.result("curve"), Some(&json!([0.5, 0.7, 0.91])));
    assert_eq!(h.runtime().hub().run_topic_count(), 0, "finished runs leave no topics behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_batch_keeps_order_across_message_boundaries() {
    let h = harness(fast_config()).await;
    let report = h.run("quick", json!({"lines": 1_000, "batch": 300})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Completed);
    let expected: Vec<String> = (1..=1_000).map(|i| format!("line {i}")).collect();
    assert_eq!(report.messages(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_fails_the_run_with_its_message_and_keeps_its_logs() {
    let h = harness(fast_config()).await;
    let report = h.run("fails", json!({})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.error(), Some("the model diverged"));
    assert_eq!(h.store().count_logs(report.run.id, &[]).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_with_a_cause_fails_the_run_with_context_then_cause() {
    let h = harness(fast_config()).await;
    let report = h.run("fails_with_cause", json!({})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.error(), Some("reading data.csv: permission denied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_cannot_be_json_is_an_error_and_records_nothing() {
    let h = harness(fast_config()).await;
    let report = h.run("unrepresentable", json!({})).await.unwrap();
    assert_eq!((report.status(), report.error()), (RunStatus::Completed, None));
    let messages = report.messages();
    assert_eq!(messages.len(), 2, "{messages:?}");
    // The refusal is in the log even for code that ignores the error; the experiment logged it too.
    assert!(
        messages[0].starts_with("result \"confusion\" refused: its value cannot be represented as JSON: ")
            && messages[0].contains("key must be a string"),
        "{messages:?}"
    );
    assert_eq!(report.logs[0].level, LogLevel::Error);
    assert_eq!(messages[1], format!("refused: {}", messages[0]));
    let keys: Vec<_> = report.results.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["after"], "nothing was recorded under the refused key");

    // Returned with `?`, the same error fails the run with serde's message.
    let report = h.run("unrepresentable", json!({"propagate": true})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Failed);
    let error = report.error().unwrap_or_default();
    assert!(error.contains("key must be a string"), "{error}");
    assert!(report.results.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_series_is_stored_as_name_slash_step() {
    let h = harness(fast_config()).await;
    let report = h.run("series", json!({})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Completed);
    let stored: Vec<_> = report.results.iter().map(|r| (r.key.as_str(), r.value.clone())).collect();
    assert_eq!(
        stored,
        [("loss/1", json!(0.5)), ("loss/2", json!(0.25)), ("loss/3", Value::Null), ("accuracy/1", json!(0.75))],
        "in order, a non-finite value as null"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_only_its_own_run() {
    let h = harness(fast_config()).await;
    let doomed = h.start("panics", json!({})).await.unwrap();
    let healthy = h.start("quick", json!({"lines": 50})).await.unwrap();
    let doomed = h.finish(&doomed).await.unwrap();
    assert_eq!(doomed.status(), RunStatus::Failed);
    assert_eq!(doomed.error(), Some("panicked: index out of bounds in step 3"));
    assert_eq!(doomed.logs.len(), 1, "lines logged before the panic are kept");
    assert_eq!(wait_for_end(&h, healthy.id).await.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_cooperative_first() {
    let h = harness(fast_config()).await;
    let run = h.start("polite", json!({})).await.unwrap();
    wait_for_progress(&h, run.id).await;
    assert_eq!(h.runtime().cancel(run.id).await.unwrap(), CancelOutcome::Requested);
    let report = h.finish(&run).await.unwrap();
    assert_eq!(report.status(), RunStatus::Cancelled);
    assert_eq!(report.error(), Some("cancelled by user"));
    assert_eq!(report.messages().last(), Some(&"stopping as asked"), "its last words were kept");
    assert!(h.runtime().cancel(run.id).await.is_err(), "a finished run cannot be cancelled again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_becomes_forced_after_the_grace_period() {
    let h = harness(fast_config()).await;
    let run = h.start("deaf", json!({})).await.unwrap();
    wait_for_progress(&h, run.id).await;
    h.runtime().cancel(run.id).await.unwrap();
    let report = h.finish(&run).await.unwrap();
    assert_eq!(report.status(), RunStatus::Cancelled);
    let error = report.error().unwrap();
    assert!(error.contains("forced after 200 ms"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_run_times_out_and_fails() {
    let h = harness(RuntimeConfig { run_timeout: Some(Duration::from_millis(300)), ..fast_config() }).await;
    let report = h.run("deaf", json!({})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.error(), Some("timed out after 300 ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_more_starts_and_creates_no_run() {
    let h = harness(RuntimeConfig { max_concurrent_runs: 1, max_queued_runs: 2, ..fast_config() }).await;
    // Not `gated`: its gate and start list belong to the FIFO test, which runs alongside.
    let instance = instance(&h, "polite", json!({})).await;
    let running = h.runtime().start(instance).await.unwrap();
    wait_for_progress(&h, running.id).await;
    for _ in 0..2 {
        h.runtime().start(instance).await.unwrap();
    }
    let refused = h.runtime().start(instance).await.unwrap_err();
    assert!(matches!(refused, RuntimeError::QueueFull(2)), "{refused:?}");
    assert!(refused.to_string().contains("already waiting"), "{refused}");
    assert_eq!(h.store().list_runs(instance).await.unwrap().len(), 3, "the refused start created no run");
    for run in h.store().list_runs(instance).await.unwrap() {
        let _ = h.runtime().cancel(run.id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_beyond_the_limit_wait_pending_and_start_in_order() {
    let h = harness(RuntimeConfig { max_concurrent_runs: 2, ..fast_config() }).await;
    let instance = instance(&h, "gated", json!({})).await;
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(h.runtime().start(instance).await.unwrap());
    }
    // The first two start; the rest stay pending in the database.
    wait_for_progress(&h, runs[0].id).await;
    wait_for_progress(&h, runs[1].id).await;
    assert_eq!(h.runtime().busy(), (2, 3));
    for run in &runs[2..] {
        assert_eq!(h.store().get_run(run.id).await.unwrap().unwrap().status, RunStatus::Pending);
    }
    // Cancelling a queued run takes it out of the queue at once.
    assert_eq!(h.runtime().cancel(runs[3].id).await.unwrap(), CancelOutcome::CancelledWhilePending);
    let cancelled = h.store().get_run(runs[3].id).await.unwrap().unwrap();
    assert_eq!(
        (cancelled.status, cancelled.error.as_deref()),
        (RunStatus::Cancelled, Some("cancelled before it started"))
    );

    // Free one slot at a time: the oldest waiting run must take it each time.
    GATE.add_permits(1);
    wait_for_progress(&h, runs[2].id).await;
    assert_eq!(h.store().get_run(runs[4].id).await.unwrap().unwrap().status, RunStatus::Pending);
    GATE.add_permits(1);
    wait_for_progress(&h, runs[4].id).await;
    GATE.add_permits(2);
    for run in [&runs[0], &runs[1], &runs[2], &runs[4]] {
        assert_eq!(wait_for_end(&h, run.id).await.status, RunStatus::Completed);
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
    let instance = instance(&h, "quick", json!({"lines": 5, "batch": 1})).await;
    let config = json!({"lines": 5, "batch": 1});
    let interrupted = h.store().create_run(instance, &config, "test-1").await.unwrap();
    h.store().transition_run(interrupted.id, RunStatus::Running, None).await.unwrap();
    let waiting = h.store().create_run(instance, &config, "test-1").await.unwrap();

    let report = h.runtime().recover().await.unwrap();
    assert_eq!(report.interrupted, vec![interrupted.id]);
    assert_eq!(report.requeued, vec![waiting.id]);
    let failed = h.store().get_run(interrupted.id).await.unwrap().unwrap();
    assert_eq!((failed.status, failed.error.as_deref()), (RunStatus::Failed, Some("interrupted by restart")));
    let waited = h.finish(&waiting).await.unwrap();
    assert_eq!(waited.status(), RunStatus::Completed);
    assert_eq!(waited.logs.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_checks_pending_runs_against_the_experiment_as_it_is_now() {
    let h = harness(fast_config()).await;
    let instance = instance(&h, "quick", json!({})).await;
    // Stored before the experiment gained `batch` (so it has no value for it), and one it no longer accepts.
    let older = h.store().create_run(instance, &json!({"lines": 3}), "test-0").await.unwrap();
    let unfit = h.store().create_run(instance, &json!({"lines": -1, "batch": 1}), "test-0").await.unwrap();

    let report = h.runtime().recover().await.unwrap();
    assert_eq!(report.requeued, vec![older.id]);
    assert_eq!(report.refused, vec![unfit.id]);
    let refused = h.store().get_run(unfit.id).await.unwrap().unwrap();
    assert_eq!(refused.status, RunStatus::Failed);
    assert!(refused.error.unwrap().contains("lines: must be at least 0"));
    let older = h.finish(&older).await.unwrap();
    assert_eq!(older.status(), RunStatus::Completed, "the new field took its default: {:?}", older.error());
    assert_eq!(older.logs.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_experiment_is_a_clear_error_not_a_crash() {
    let h = harness(fast_config()).await;
    let instance = stored_instance(&h, "renamed_long_ago", json!({})).await;
    let error = h.runtime().start(instance).await.unwrap_err().to_string();
    assert!(error.contains("\"renamed_long_ago\" is not available on this server"), "{error}");
    assert!(h.store().list_runs(instance).await.unwrap().is_empty(), "no run was created");

    let stale = stored_instance(&h, "quick", json!({"lines": "many"})).await;
    let error = h.runtime().start(stale).await.unwrap_err().to_string();
    assert!(error.contains("lines: must be"), "{error}");
}

/// Experiment `a`, version 1: waits for a permit from [`SWAP_GATE`], then records which code ran.
struct AVersionOne;
static SWAP_GATE: Semaphore = Semaphore::const_new(0);
impl Experiment for AVersionOne {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("a", "1")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.progress(0, None, Some("waiting for the registry swap"));
        SWAP_GATE.acquire().await?.forget();
        ctx.result("code", "one").await?;
        Ok(())
    }
}

/// Experiment `a`, version 2: the replacement, which records that it ran.
struct AVersionTwo;
impl Experiment for AVersionTwo {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("a", "2")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.result("code", "two").await?;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_keeps_the_experiment_it_started_with_across_registry_swaps() {
    let first = Registry::from_experiments(vec![Box::new(AVersionOne) as Box<dyn AnyExperiment>]).unwrap();
    // One slot: `running` holds it (waiting at the gate) while `queued` waits in the queue through both swaps.
    let h = TestRuntime::with_registry(first, RuntimeConfig { max_concurrent_runs: 1, ..fast_config() }).await.unwrap();
    let instance = instance(&h, "a", json!({})).await;
    let running = h.runtime().start(instance).await.unwrap();
    wait_for_progress(&h, running.id).await;
    let queued = h.runtime().start(instance).await.unwrap();
    assert_eq!((running.experiment_version.as_str(), queued.experiment_version.as_str()), ("1", "1"));

    // A new version of `a`: runs started from now on get it.
    let second = Registry::from_experiments(vec![Box::new(AVersionTwo) as Box<dyn AnyExperiment>]).unwrap();
    h.runtime().set_registry(second);
    let newer = h.runtime().start(instance).await.unwrap();
    assert_eq!(newer.experiment_version, "2");

    // Then `a` is gone altogether: a new start is refused.
    h.runtime().set_registry(Registry::default());
    match h.runtime().start(instance).await {
        Err(RuntimeError::UnknownExperiment { experiment, .. }) => assert_eq!(experiment, "a"),
        other => panic!("expected UnknownExperiment, got {other:?}"),
    }

    // The runs already accepted finish with the code they were started with, whatever the registry says now.
    SWAP_GATE.add_permits(2);
    for (run, code, version) in [(&running, "one", "1"), (&queued, "one", "1"), (&newer, "two", "2")] {
        let report = h.finish(run).await.unwrap();
        assert_eq!((report.status(), report.error()), (RunStatus::Completed, None), "{code}");
        assert_eq!(report.result("code"), Some(&json!(code)), "run of version {version} executed its own code");
        assert_eq!(report.run.experiment_version, version);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_subscriber_sees_every_record_once_and_can_resume_from_any_seq() {
    // A tiny live buffer guarantees the slow subscriber below overflows it.
    let h = harness(RuntimeConfig { event_buffer: 2, max_concurrent_runs: 1, ..fast_config() }).await;
    // A blocker holds the only slot, so the run below stays pending until we have subscribed to it.
    let blocker = h.start("polite", json!({})).await.unwrap();
    wait_for_progress(&h, blocker.id).await;
    let instance = instance(&h, "quick", json!({"lines": 3_000, "batch": 1})).await;
    let run = h.runtime().start(instance).await.unwrap();
    let mut slow = Box::pin(h.runtime().run_events(run.id, 0));
    // The first poll subscribes (and yields the snapshot); then this subscriber stops reading while the run
    // produces far more events than its two-event buffer holds.
    assert!(matches!(slow.next().await, Some(Ok(RunEvent::Snapshot { .. }))));
    h.runtime().cancel(blocker.id).await.unwrap();
    assert_eq!(wait_for_end(&h, run.id).await.status, RunStatus::Completed);

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
        .runtime()
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
    let instance = instance(&h, "quick", json!({"lines": 10, "batch": 1})).await;
    let mut ids = Vec::new();
    for _ in 0..1_000 {
        ids.push(h.runtime().start(instance).await.unwrap().id);
    }
    h.runtime().wait_idle().await;
    let runs = h.store().list_runs(instance).await.unwrap();
    assert_eq!(runs.len(), 1_000);
    assert!(runs.iter().all(|run| run.status == RunStatus::Completed), "every run completed");
    for id in ids.iter().step_by(97) {
        assert_eq!(h.store().count_logs(*id, &[]).await.unwrap(), 10);
        assert_eq!(h.store().count_results(*id).await.unwrap(), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_with_the_terminal_status_after_every_record() {
    let h = harness(fast_config()).await;
    let run = h.start("quick", json!({"lines": 2_500})).await.unwrap();
    // Subscribe while the run may still be going; collect everything until the stream ends.
    let events: Vec<RunEvent> = h.runtime().run_events(run.id, 0).map(Result::unwrap).collect().await;
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
    let again: Vec<RunEvent> = h.runtime().run_events(run.id, 2_400).map(Result::unwrap).collect().await;
    assert!(matches!(again.first(), Some(RunEvent::Snapshot { .. })));
    assert!(matches!(again.last(), Some(RunEvent::Status(run)) if run.status == RunStatus::Completed));
    assert_eq!(h.runtime().wait_for_end(run.id).await.unwrap().status, RunStatus::Completed);
}

/// An experiment whose `Config` is `C`, over `schema`: registration is what is under test.
struct Typed<C>(Schema, std::marker::PhantomData<fn() -> C>);

impl<C: serde::de::DeserializeOwned + Send + 'static> Experiment for Typed<C> {
    type Config = C;
    fn definition(&self) -> ExperimentDefinition {
        definition("typed").schema(self.0.clone())
    }
    async fn run(&self, _ctx: RunContext, _config: C) -> RunResult {
        Ok(())
    }
}

fn register<C: serde::de::DeserializeOwned + Send + 'static>(schema: Schema) -> Result<Registry, String> {
    let experiment = Typed::<C>(schema, std::marker::PhantomData);
    Registry::from_experiments(vec![Box::new(experiment) as Box<dyn AnyExperiment>]).map_err(|error| error.to_string())
}

#[test]
fn a_config_type_too_narrow_for_the_schemas_maximum_is_refused_at_registration() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Narrow {
        layers: u8,
    }
    let error = register::<Narrow>(Schema::new().field(Field::integer("layers").default(2).min(1).max(10_000)))
        .err()
        .expect("a u8 cannot hold 10,000");
    assert!(error.contains("`layers` = 10000"), "the probe names the field and value: {error}");
}

#[test]
fn an_enum_missing_an_option_and_an_unsigned_type_for_a_signed_field_are_refused() {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "kebab-case")]
    #[allow(dead_code)]
    enum Model {
        Gpt4,
        Claude3,
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Choice {
        model: Model,
    }
    let schema =
        |options: &[&str]| Schema::new().field(Field::string("model").options(options.to_vec()).default("gpt4"));
    assert!(register::<Choice>(schema(&["gpt4", "claude3"])).is_ok());
    let error = register::<Choice>(schema(&["gpt4", "claude3", "llama3"])).err().expect("llama3 has no variant");
    assert!(error.contains("`model` = \"llama3\""), "{error}");

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Unsigned {
        offset: u32,
    }
    let error = register::<Unsigned>(Schema::new().field(Field::integer("offset").default(0)))
        .err()
        .expect("the schema admits negative offsets");
    assert!(error.contains("`offset` = -9223372036854775808"), "{error}");
    assert!(register::<Unsigned>(Schema::new().field(Field::integer("offset").default(0).min(0).max(1_000))).is_ok());
}

#[test]
fn an_optional_field_without_default_must_be_an_option() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Plain {
        note: String,
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Optional {
        note: Option<String>,
    }
    let schema = Schema::new().field(Field::string("note"));
    let error = register::<Plain>(schema.clone()).err().expect("a user may leave `note` empty");
    assert!(error.contains("optional fields left empty") && error.contains("missing field `note`"), "{error}");
    assert!(register::<Optional>(schema).is_ok());
}

#[test]
fn a_schema_field_the_config_never_reads_is_refused() {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct ReadsOne {
        epochs: u32,
    }
    let schema = Schema::new().field(Field::integer("epochs").default(3)).field(Field::float("lr").default(0.1));
    let error = register::<ReadsOne>(schema).err().expect("lr is a knob that would do nothing");
    assert!(error.contains("does not read the schema field(s) lr"), "{error}");
}

#[test]
fn no_config_fits_an_empty_schema_and_an_untyped_value_fits_any() {
    let schema = Schema::new().field(Field::integer("epochs").default(3));
    assert!(register::<NoConfig>(Schema::new()).is_ok());
    assert!(register::<NoConfig>(schema.clone()).is_err(), "epochs would be ignored");
    assert!(register::<Value>(schema).is_ok());
}
