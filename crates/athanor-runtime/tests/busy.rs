//! Runs whose code computes without awaiting cannot hold up the runtime: they are cancelled, forced and timed out
//! on schedule, and other runs' records are committed meanwhile.
//!
//! Each test runs the supervisor on a single-threaded runtime (`#[tokio::test]`), the harshest case: were
//! experiment code on that thread, the first busy run would stop everything else in the test.

use athanor_core::{RunEvent, RunId, RunStatus};
use athanor_runtime::prelude::*;
use athanor_runtime::testing::TestRuntime;
use athanor_runtime::{AnyExperiment, Registry, RuntimeConfig};
use futures::StreamExt;
use serde_json::json;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Grace period of these tests.
const GRACE: Duration = Duration::from_millis(300);
/// Lateness tolerated on a loaded machine. Far below [`SPIN_CAP`]: code that held up the supervisor would be late
/// by seconds.
const SLACK: Duration = Duration::from_secs(2);
/// The longest a spinning run computes, so a regression fails on a timing assertion instead of spinning forever.
const SPIN_CAP: u64 = 30;
/// A bound on any wait, so a regression fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs the tests let go of: their abandoned code returns, so it does not take the CPU other tests need.
static RELEASED: Mutex<Vec<RunId>> = Mutex::new(Vec::new());

fn released(run_id: RunId) -> bool {
    RELEASED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&run_id)
}

/// Releases its runs when dropped, even when an assertion failed first.
struct Release(Vec<RunId>);

impl Drop for Release {
    fn drop(&mut self) {
        RELEASED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(self.0.drain(..));
    }
}

/// Says it is spinning (a log line and progress), then computes without a single `.await` until released or
/// `cap_seconds` have passed, looking at `ctx.is_cancelled()` only if `cooperative`.
struct Spin;

#[derive(Deserialize)]
struct SpinConfig {
    cooperative: bool,
    cap_seconds: u64,
}

impl Experiment for Spin {
    type Config = SpinConfig;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("spin", "1").schema(
            Schema::new()
                .field(Field::boolean("cooperative").default(false))
                .field(Field::integer("cap_seconds").default(SPIN_CAP).min(1).max(600)),
        )
    }

    async fn run(&self, ctx: RunContext, config: SpinConfig) -> RunResult {
        ctx.info("spinning").await;
        ctx.progress(0, None, Some("spinning"));
        let until = Instant::now() + Duration::from_secs(config.cap_seconds);
        let mut state: u64 = 1;
        loop {
            for _ in 0..10_000 {
                state = std::hint::black_box(state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
            if config.cooperative && ctx.is_cancelled() {
                ctx.info("stopping as asked").await;
                return Ok(());
            }
            if released(ctx.run_id()) || Instant::now() > until {
                ctx.info(format!("stopped spinning on its own ({state})")).await;
                return Ok(());
            }
        }
    }
}

/// Logs `lines` lines, awaiting each, and completes.
struct Chatty;

#[derive(Deserialize)]
struct ChattyConfig {
    lines: u64,
}

impl Experiment for Chatty {
    type Config = ChattyConfig;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("chatty", "1")
            .schema(Schema::new().field(Field::integer("lines").default(200).min(1)))
    }

    async fn run(&self, ctx: RunContext, config: ChattyConfig) -> RunResult {
        for i in 1..=config.lines {
            ctx.info(format!("line {i}")).await;
        }
        ctx.result("lines", config.lines).await?;
        Ok(())
    }
}

/// Sums squares in `ctx.blocking`, stopping early when cancelled; panics in it when asked to.
struct Crunch;

#[derive(Deserialize)]
struct CrunchConfig {
    count: u64,
    panic: bool,
}

impl Experiment for Crunch {
    type Config = CrunchConfig;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("crunch", "1").schema(
            Schema::new()
                .field(Field::integer("count").default(1_000).min(0))
                .field(Field::boolean("panic").default(false)),
        )
    }

    async fn run(&self, ctx: RunContext, config: CrunchConfig) -> RunResult {
        let steps = ctx.clone();
        let (sum, finished) = ctx
            .blocking(move || {
                assert!(!config.panic, "crunching went wrong");
                let mut sum = 0_u64;
                for step in 0..config.count {
                    if step % 1_000 == 0 && steps.is_cancelled() {
                        return (sum, false);
                    }
                    sum = sum.wrapping_add(step.wrapping_mul(step));
                }
                (sum, true)
            })
            .await;
        ensure!(finished, "stopped as asked, at sum {sum}");
        ctx.result("sum", sum).await?;
        Ok(())
    }
}

fn experiments() -> Vec<Box<dyn AnyExperiment>> {
    vec![Box::new(Spin), Box::new(Chatty), Box::new(Crunch)]
}

async fn harness(config: RuntimeConfig) -> TestRuntime {
    let config = RuntimeConfig { cancel_grace: GRACE, max_concurrent_runs: 16, ..config };
    TestRuntime::with_registry(Registry::from_experiments(experiments()).unwrap(), config).await.unwrap()
}

/// Start a spinning run and return once its code is computing.
async fn spinning(h: &TestRuntime, cooperative: bool) -> RunId {
    let run = h.start("spin", json!({"cooperative": cooperative})).await.unwrap();
    let mut events = Box::pin(h.runtime().run_events(run.id, 0));
    let started = tokio::time::timeout(LIMIT, async {
        while let Some(event) = events.next().await {
            match event.unwrap() {
                RunEvent::Progress(_) | RunEvent::Snapshot { progress: Some(_), .. } => return,
                _ => {}
            }
        }
        panic!("run {} ended before it spun", run.id);
    });
    started.await.expect("the run started spinning");
    run.id
}

/// Start a spinning run whose code may never get a thread (all are taken): it is `running` for the supervisor.
async fn running(h: &TestRuntime) -> RunId {
    let run = h.start("spin", json!({})).await.unwrap();
    let mut events = Box::pin(h.runtime().run_events(run.id, 0));
    let started = tokio::time::timeout(LIMIT, async {
        while let Some(event) = events.next().await {
            if let RunEvent::Snapshot { run, .. } | RunEvent::Status(run) = event.unwrap() {
                if run.status == RunStatus::Running {
                    return;
                }
            }
        }
    });
    started.await.expect("the run is running");
    run.id
}

async fn end_of(h: &TestRuntime, run_id: RunId) -> athanor_core::Run {
    tokio::time::timeout(LIMIT, h.runtime().wait_for_end(run_id)).await.expect("the run ended").unwrap()
}

fn assert_on_time(elapsed: Duration, due: Duration, what: &str) {
    assert!(elapsed >= due, "{what} ended after {elapsed:?}, before it was due ({due:?})");
    assert!(elapsed < due + SLACK, "{what} ended after {elapsed:?}, due after {due:?}");
}

#[tokio::test]
async fn a_busy_run_that_checks_is_cancelled_stops_cooperatively() {
    let h = harness(RuntimeConfig::default()).await;
    let run_id = spinning(&h, true).await;
    let _release = Release(vec![run_id]);
    let asked = Instant::now();
    h.runtime().cancel(run_id).await.unwrap();
    let run = end_of(&h, run_id).await;
    assert_eq!(run.status, RunStatus::Cancelled);
    assert_eq!(run.error.as_deref(), Some("cancelled by user"), "stopped by itself, not forced");
    assert!(asked.elapsed() < GRACE + SLACK, "{:?}", asked.elapsed());
    let report = h.report(run).await.unwrap();
    assert_eq!(report.messages(), ["spinning", "stopping as asked"]);
}

#[tokio::test]
async fn busy_runs_that_never_yield_are_forced_on_schedule_even_beyond_the_experiment_threads() {
    // Two threads, four runs that ignore cancellation: two compute, two are `running` but never get a thread.
    let h = harness(RuntimeConfig { experiment_threads: 2, ..RuntimeConfig::default() }).await;
    let computing = [spinning(&h, false).await, spinning(&h, false).await];
    let waiting = [running(&h).await, running(&h).await];
    let _release = Release(computing.iter().chain(&waiting).copied().collect());

    let asked = Instant::now();
    for run_id in computing.iter().chain(&waiting) {
        h.runtime().cancel(*run_id).await.unwrap();
    }
    for run_id in computing.iter().chain(&waiting) {
        let run = end_of(&h, *run_id).await;
        assert_eq!(run.status, RunStatus::Cancelled);
        let error = run.error.as_deref().unwrap_or_default();
        assert!(error.contains("forced after 300 ms"), "{error}");
        let report = h.report(run).await.unwrap();
        if computing.contains(run_id) {
            assert_eq!(report.messages(), ["spinning"], "what it logged before the force-stop is kept");
        }
    }
    assert_on_time(asked.elapsed(), GRACE, "forcing four busy runs");
}

#[tokio::test]
async fn a_busy_run_that_never_yields_times_out_on_schedule() {
    let limit = Duration::from_millis(400);
    let h = harness(RuntimeConfig { run_timeout: Some(limit), ..RuntimeConfig::default() }).await;
    let started = Instant::now();
    let run_id = spinning(&h, false).await;
    let _release = Release(vec![run_id]);
    let run = end_of(&h, run_id).await;
    assert_on_time(started.elapsed(), limit, "a busy run with a timeout");
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("timed out after 400 ms"));
    assert_eq!(h.report(run).await.unwrap().messages(), ["spinning"], "its records are kept");
}

#[tokio::test]
async fn other_runs_commit_their_records_while_busy_runs_compute() {
    let h = harness(RuntimeConfig { experiment_threads: 3, ..RuntimeConfig::default() }).await;
    let busy = [spinning(&h, false).await, spinning(&h, false).await];
    let _release = Release(busy.to_vec());

    let chatty = h.start("chatty", json!({"lines": 500})).await.unwrap();
    let report = tokio::time::timeout(LIMIT, h.finish(&chatty)).await.expect("the chatty run ended").unwrap();
    assert_eq!(report.status(), RunStatus::Completed, "{:?}", report.error());
    assert_eq!(report.logs.len(), 500);
    assert_eq!(report.result("lines"), Some(&json!(500)));
    for run_id in busy {
        let run = h.store().get_run(run_id).await.unwrap().unwrap();
        assert_eq!(run.status, RunStatus::Running, "the busy runs were computing all along");
    }

    let asked = Instant::now();
    for run_id in busy {
        h.runtime().cancel(run_id).await.unwrap();
    }
    for run_id in busy {
        assert_eq!(end_of(&h, run_id).await.status, RunStatus::Cancelled);
    }
    assert_on_time(asked.elapsed(), GRACE, "forcing two busy runs");
}

#[tokio::test]
async fn blocking_work_returns_its_value_stops_when_asked_and_a_panic_in_it_fails_the_run() {
    let h = harness(RuntimeConfig::default()).await;
    let report = h.run("crunch", json!({"count": 1_000})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Completed, "{:?}", report.error());
    let expected: u64 = (0..1_000_u64).map(|step| step * step).sum();
    assert_eq!(report.result("sum"), Some(&json!(expected)));

    let report = h.run("crunch", json!({"panic": true})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.error(), Some("panicked: crunching went wrong"));

    // Long enough to be cancelled midway; it looks at `is_cancelled` every thousand steps.
    let run = h.start("crunch", json!({"count": u64::MAX / 2})).await.unwrap();
    let report = h.follow(&run, |event| match event {
        RunEvent::Snapshot { run, .. } | RunEvent::Status(run) => run.status == RunStatus::Running,
        _ => false,
    });
    let report = report.await.unwrap();
    assert_eq!(report.status(), RunStatus::Cancelled);
    assert_eq!(report.error(), Some("cancelled by user"), "it stopped by itself within the grace period");
}

#[tokio::test]
async fn shutdown_ends_busy_runs_on_schedule_and_the_runtime_then_drops_inside_async_code() {
    let h = harness(RuntimeConfig::default()).await;
    let deaf = spinning(&h, false).await;
    let cooperative = spinning(&h, true).await;
    let _release = Release(vec![deaf, cooperative]);

    let asked = Instant::now();
    h.runtime().shutdown().await;
    assert_on_time(asked.elapsed(), GRACE, "shutting down with a run that never yields");
    let deaf = h.store().get_run(deaf).await.unwrap().unwrap();
    assert_eq!(deaf.status, RunStatus::Failed);
    let error = deaf.error.as_deref().unwrap_or_default();
    assert!(error.starts_with("server shutting down; forced after 300 ms"), "{error}");
    let cooperative = h.store().get_run(cooperative).await.unwrap().unwrap();
    assert_eq!((cooperative.status, cooperative.error.as_deref()), (RunStatus::Failed, Some("server shutting down")));
    // The experiment threads go with the runtime, here inside a task, while one of them still computes: a tokio
    // runtime dropped this way must not block (or panic, as a plain drop would).
    drop(h);
}

#[tokio::test]
async fn runtimes_come_and_go_inside_async_code() {
    for _ in 0..10 {
        let h = harness(RuntimeConfig::default()).await;
        let report = h.run("chatty", json!({"lines": 3})).await.unwrap();
        assert_eq!(report.status(), RunStatus::Completed);
    }
}
