//! The record writer under failure and pressure, against a real SQLite database: a run whose records the
//! database refuses fails alone while the others go on, and the bytes waiting for the database stay within the
//! budget however large the lines.

use athanor_core::{LogLevel, RunEvent, RunStatus};
use athanor_runtime::prelude::*;
use athanor_runtime::testing::TestRuntime;
use athanor_runtime::{AnyExperiment, Registry, RuntimeConfig};
use athanor_store::Store;
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::LazyLock;
use tokio::sync::{Barrier, Semaphore};

fn definition(name: &str) -> ExperimentDefinition {
    ExperimentDefinition::new(name, "test-1")
}

/// Both logging runs of the poisoning test start logging together, so their records share batches.
static START_TOGETHER: LazyLock<Barrier> = LazyLock::new(|| Barrier::new(2));

/// The line the test trigger refuses.
const POISON: &str = "poison";
/// Lines the poisoned run logs before the poison.
const BEFORE_POISON: usize = 999;

/// Logs `line 1` … `line 999`, then [`POISON`], then keeps logging until it is stopped.
struct Poisoned;
impl Experiment for Poisoned {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        definition("poisoned")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        START_TOGETHER.wait().await;
        for i in 1..=BEFORE_POISON {
            ctx.info(format!("line {i}")).await;
        }
        ctx.info(POISON).await;
        // The writer stops the run once it has found the record the database refuses; until then its lines are
        // accepted (and discarded).
        let mut after = 0_u64;
        while !ctx.is_cancelled() {
            after += 1;
            ctx.log(LogLevel::Info, format!("after {after}"), Some(json!({"after": after}))).await;
            tokio::task::yield_now().await;
        }
        Ok(())
    }
}

/// Logs `lines` lines, starting together with [`Poisoned`] when `together`.
struct Healthy;
#[derive(Deserialize)]
struct HealthyConfig {
    lines: u64,
    together: bool,
}
impl Experiment for Healthy {
    type Config = HealthyConfig;
    fn definition(&self) -> ExperimentDefinition {
        definition("healthy").schema(
            Schema::new()
                .field(Field::integer("lines").default(2_000).min(0))
                .field(Field::boolean("together").default(false)),
        )
    }
    async fn run(&self, ctx: RunContext, config: HealthyConfig) -> RunResult {
        if config.together {
            START_TOGETHER.wait().await;
        }
        for i in 1..=config.lines {
            ctx.info(format!("healthy {i}")).await;
        }
        ctx.result("done", true).await?;
        Ok(())
    }
}

/// Released by the budget test once the database is locked.
static LARGE_GATE: Semaphore = Semaphore::const_new(0);
/// Bytes of each large line.
const LARGE_LINE: usize = 128 * 1024;
const LARGE_LINES: usize = 24;
/// Larger than the budget of the test below.
const HUGE_LINE: usize = 1_000_000;

/// Waits at [`LARGE_GATE`], then logs [`LARGE_LINES`] lines of [`LARGE_LINE`] bytes and one of [`HUGE_LINE`].
struct Large;
impl Experiment for Large {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        definition("large")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.progress(0, None, Some("waiting for the database to be locked"));
        LARGE_GATE.acquire().await?.forget();
        for i in 0..LARGE_LINES {
            let mut line = format!("{i:02} ");
            line.push_str(&"x".repeat(LARGE_LINE - line.len()));
            ctx.info(line).await;
        }
        ctx.info("h".repeat(HUGE_LINE)).await;
        Ok(())
    }
}

async fn harness(config: RuntimeConfig) -> TestRuntime {
    let experiments: Vec<Box<dyn AnyExperiment>> = vec![Box::new(Poisoned), Box::new(Healthy), Box::new(Large)];
    TestRuntime::with_registry(Registry::from_experiments(experiments).unwrap(), config).await.unwrap()
}

fn sqlite_pool(h: &TestRuntime) -> sqlx::SqlitePool {
    match h.store() {
        Store::Sqlite(pool) => pool.clone(),
        Store::Postgres(_) => unreachable!("the test runtime is on SQLite"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_records_the_database_refuses_fails_alone_and_the_others_go_on() {
    let h = harness(RuntimeConfig::default()).await;
    // What an operator's constraint does to a value it does not accept: the database refuses the row, the same way
    // on every retry (a constraint violation, SQLITE_CONSTRAINT_TRIGGER).
    sqlx::query(&format!(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON run_logs WHEN NEW.message = '{POISON}'
         BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"
    ))
    .execute(&sqlite_pool(&h))
    .await
    .unwrap();

    let poisoned = h.start("poisoned", json!({})).await.unwrap();
    let healthy = h.start("healthy", json!({"lines": 2_000, "together": true})).await.unwrap();
    let (poisoned, healthy) = tokio::join!(h.finish(&poisoned), h.finish(&healthy));
    let (poisoned, healthy) = (poisoned.unwrap(), healthy.unwrap());

    // The poisoned run failed, saying why; it kept every line before the refused one and nothing after it.
    assert_eq!(poisoned.status(), RunStatus::Failed);
    let error = poisoned.error().unwrap();
    assert!(error.starts_with("its records could not be stored: "), "{error}");
    assert!(error.contains("refused by the test trigger"), "{error}");
    let expected: Vec<String> = (1..=BEFORE_POISON).map(|i| format!("line {i}")).collect();
    assert_eq!(poisoned.messages(), expected);
    let seqs: Vec<i64> = poisoned.logs.iter().map(|log| log.seq).collect();
    assert_eq!(seqs, (1..=BEFORE_POISON as i64).collect::<Vec<_>>());

    // The run logging at the same time lost nothing.
    assert_eq!((healthy.status(), healthy.error()), (RunStatus::Completed, None));
    assert_eq!(healthy.logs.len(), 2_000);
    assert!(healthy.logs.iter().enumerate().all(|(i, log)| log.message == format!("healthy {}", i + 1)));
    let seqs: Vec<i64> = healthy.logs.iter().map(|log| log.seq).chain(healthy.results.iter().map(|r| r.seq)).collect();
    assert_eq!(seqs, (1..=2_001).collect::<Vec<_>>());

    // The writer is not stalled: a run started afterwards stores everything.
    let later = h.run("healthy", json!({"lines": 500})).await.unwrap();
    assert_eq!(
        (later.status(), later.logs.len(), later.result("done")),
        (RunStatus::Completed, 500, Some(&json!(true)))
    );
    // And every byte the runs queued, stored or discarded, was given back.
    assert_eq!(h.runtime().record_budget().queued(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_lines_wait_for_room_and_the_queued_bytes_never_exceed_the_budget() {
    let budget = 512 * 1024;
    let h = harness(RuntimeConfig { record_budget_bytes: budget, ..RuntimeConfig::default() }).await;
    let run = h.start("large", json!({})).await.unwrap();
    let mut events = Box::pin(h.runtime().run_events(run.id, 0));
    while let Some(event) = events.next().await {
        if let RunEvent::Progress(_) | RunEvent::Snapshot { progress: Some(_), .. } = event.unwrap() {
            break;
        }
    }

    // Stall the database: another connection holds SQLite's write lock, so no commit can land.
    let pool = sqlite_pool(&h);
    let mut lock = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *lock).await.unwrap();
    LARGE_GATE.add_permits(1);

    // 3 MiB of lines against a 512 KiB budget: the run waits for room, with the budget full but never over.
    let gauge = h.runtime().record_budget();
    gauge.waited(1).await;
    assert_eq!(gauge.capacity(), budget);
    let queued = gauge.queued();
    assert!(queued <= budget, "{queued} bytes queued");
    assert!(queued > budget - 2 * LARGE_LINE, "the budget, not something else, held the run back: {queued} bytes");
    let stored_so_far = h.store().count_logs(run.id, &[]).await.unwrap();
    assert_eq!(stored_so_far, 0, "nothing could be committed");

    // Let the database go: everything is stored, the line larger than the whole budget included.
    sqlx::query("ROLLBACK").execute(&mut *lock).await.unwrap();
    drop(lock);
    let report = h.finish(&run).await.unwrap();
    assert_eq!((report.status(), report.error()), (RunStatus::Completed, None));
    let lengths: Vec<usize> = report.logs.iter().map(|log| log.message.len()).collect();
    let mut expected = vec![LARGE_LINE; LARGE_LINES];
    expected.push(HUGE_LINE);
    assert_eq!(lengths, expected);
    assert!(gauge.high_water() <= budget, "at most {} bytes were ever queued", gauge.high_water());
    assert_eq!(gauge.queued(), 0, "all the room is given back once committed");
}
