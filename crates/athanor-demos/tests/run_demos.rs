//! Every demo experiment run for real: found by `Registry::discover()` (so through `inventory`, across the crate
//! boundary exactly as the server links them), executed by the runtime, recorded in a temporary SQLite database.
//!
//! Tests wait on the run's event stream, never on the clock: each one follows `run_events` to the terminal status.

use athanor_core::{
    Description, ExperimentName, Instance, InstanceDraft, InstanceName, LogLevel, Run, RunEvent, RunStatus,
};
use athanor_demos::DemoInstance;
use athanor_runtime::{Registry, Runtime, RuntimeConfig};
use athanor_store::{LogQuery, Store};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration;

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// A generous bound on any one run, so a regression fails the test instead of hanging it.
const RUN_LIMIT: Duration = Duration::from_secs(60);

struct Harness {
    store: Store,
    runtime: Runtime,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> TestResult<Harness> {
        let dir = tempfile::tempdir()?;
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("demos.db").display())).await?;
        let registry = Registry::discover()?;
        let config = RuntimeConfig { cancel_grace: Duration::from_millis(300), ..Default::default() };
        let runtime = Runtime::new(store.clone(), registry, config);
        Ok(Harness { store, runtime, _dir: dir })
    }

    /// An instance of `experiment`: the schema's defaults with `overrides` on top, validated as the form does.
    async fn instance(&self, experiment: &'static str, overrides: Value) -> TestResult<Instance> {
        let registered = self.runtime.registry().get(experiment).ok_or_else(|| format!("{experiment} not found"))?;
        let demo = DemoInstance { experiment, name: "test", description: "", config: overrides };
        let draft = InstanceDraft {
            experiment: ExperimentName::parse(experiment)?,
            name: InstanceName::parse(&format!("test {experiment}"))?,
            description: Description::parse("")?,
            config: demo.configuration(&registered.definition.schema)?,
        };
        Ok(self.store.create_instance(&draft).await?)
    }

    /// Start a run of a new instance and follow it to its end.
    async fn run(&self, experiment: &'static str, overrides: Value) -> TestResult<Run> {
        let instance = self.instance(experiment, overrides).await?;
        self.run_instance(&instance).await
    }

    async fn run_instance(&self, instance: &Instance) -> TestResult<Run> {
        let run = self.runtime.start(instance.id).await?;
        self.follow(&run, |_| false).await
    }

    /// Follow `run`'s events until it ends; the first event for which `cancel_when` is true cancels the run.
    async fn follow(&self, run: &Run, cancel_when: impl FnMut(&RunEvent) -> bool) -> TestResult<Run> {
        tokio::time::timeout(RUN_LIMIT, self.follow_to_end(run, cancel_when))
            .await
            .map_err(|_| format!("run {} did not end within {RUN_LIMIT:?}", run.id))?
    }

    async fn follow_to_end(&self, run: &Run, mut cancel_when: impl FnMut(&RunEvent) -> bool) -> TestResult<Run> {
        let mut events = std::pin::pin!(self.runtime.run_events(run.id, 0));
        let mut cancel_sent = false;
        while let Some(event) = events.next().await {
            let event = event?;
            if let RunEvent::Snapshot { run, .. } | RunEvent::Status(run) = &event {
                if run.status.is_terminal() {
                    return Ok(run.clone());
                }
            }
            if !cancel_sent && cancel_when(&event) {
                self.runtime.cancel(run.id).await?;
                cancel_sent = true;
            }
        }
        Err("the event stream ended before the run did".into())
    }

    /// Every result of a run, by key.
    async fn results(&self, run: &Run) -> TestResult<BTreeMap<String, Value>> {
        let page = self.store.results(run.id, 0, 10_000).await?;
        Ok(page.items.into_iter().map(|result| (result.key, result.value)).collect())
    }

    async fn count(&self, run: &Run, level: LogLevel) -> TestResult<i64> {
        Ok(self.store.count_logs(run.id, &[level]).await?)
    }
}

fn is_running(event: &RunEvent) -> bool {
    matches!(event, RunEvent::Snapshot { run, .. } | RunEvent::Status(run) if run.status == RunStatus::Running)
}

fn has_progress(event: &RunEvent) -> bool {
    matches!(event, RunEvent::Progress(_) | RunEvent::Snapshot { progress: Some(_), .. })
}

fn leaves(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.iter().map(leaves).sum(),
        Value::Object(fields) => fields.values().map(leaves).sum(),
        _ => 1,
    }
}

#[tokio::test]
async fn discovery_finds_exactly_the_demos_with_their_definitions() -> TestResult {
    let registry = Registry::discover()?;
    let discovered: Vec<_> = registry.definitions().cloned().collect();
    let mut declared = athanor_demos::definitions();
    declared.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    let names: Vec<_> = discovered.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["big_result", "chatty", "failing", "model_pairs", "panicking", "sleeper", "stubborn", "training_curve"]
    );
    assert_eq!(discovered, declared, "definitions() and the registered experiments disagree");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn training_curve_completes_with_per_epoch_and_summary_results() -> TestResult {
    let harness = Harness::new().await?;
    let run = harness.run("training_curve", json!({"epochs": 5, "epoch_ms": 0})).await?;
    assert_eq!((run.status, run.error.as_deref()), (RunStatus::Completed, None));

    let results = harness.results(&run).await?;
    for epoch in 1..=5 {
        let loss = results[&format!("loss/{epoch}")].as_f64().ok_or("loss is a number")?;
        let accuracy = results[&format!("accuracy/{epoch}")].as_f64().ok_or("accuracy is a number")?;
        assert!(loss > 0.0 && loss.is_finite(), "loss/{epoch} = {loss}");
        assert!((0.0..=1.0).contains(&accuracy), "accuracy/{epoch} = {accuracy}");
    }
    assert_eq!(results["accuracy"], results["accuracy/5"]);
    assert_eq!(results["loss"], results["loss/5"]);
    let curve = &results["curve"];
    let losses: Vec<_> = (1..=5).map(|epoch| results[&format!("loss/{epoch}")].clone()).collect();
    assert_eq!(curve["loss"], Value::Array(losses));
    assert_eq!(curve["accuracy"].as_array().map(Vec::len), Some(5));
    // Five epochs of ln 10 decaying at 0.15 per epoch: the trend beats the noise.
    assert!(results["loss/5"].as_f64() < results["loss/1"].as_f64());

    assert_eq!(harness.count(&run, LogLevel::Debug).await?, 5);
    assert!(harness.count(&run, LogLevel::Info).await? >= 5);
    let debug = harness.store.logs(run.id, &LogQuery { levels: vec![LogLevel::Debug], ..LogQuery::first(10) }).await?;
    let metadata = debug.items[0].metadata.as_ref().ok_or("debug lines carry metadata")?;
    assert_eq!((metadata["epoch"].as_u64(), metadata["lr"].as_f64()), (Some(1), Some(0.05)));
    assert_eq!(metadata["loss"], results["loss/1"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn training_curve_is_reproducible_from_its_seed() -> TestResult {
    let harness = Harness::new().await?;
    let config = |seed: u64| json!({"epochs": 8, "epoch_ms": 0, "seed": seed, "noise": 0.1});
    let seeded = harness.instance("training_curve", config(42)).await?;
    let first = harness.run_instance(&seeded).await?;
    let second = harness.run_instance(&seeded).await?;
    let other = harness.run("training_curve", config(43)).await?;

    let first = harness.results(&first).await?;
    assert_eq!(first.len(), 8 * 2 + 3);
    assert_eq!(first, harness.results(&second).await?, "same seed, same curve");
    assert_ne!(first, harness.results(&other).await?, "another seed, another curve");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn seeded_training_demos_show_every_log_level() -> TestResult {
    // The demo instances are what a new user runs first; they should show warnings and errors, not just info.
    let harness = Harness::new().await?;
    for demo in athanor_demos::demo_instances().into_iter().filter(|demo| demo.experiment == "training_curve") {
        let mut overrides = demo.config.clone();
        overrides["epoch_ms"] = json!(0);
        let run = harness.run("training_curve", overrides).await?;
        assert_eq!(run.status, RunStatus::Completed);
        for level in LogLevel::ALL {
            assert!(harness.count(&run, level).await? > 0, "{}: no {level} line", demo.name);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn training_curve_stops_mid_epoch_when_cancelled() -> TestResult {
    let harness = Harness::new().await?;
    let instance = harness.instance("training_curve", json!({"epochs": 100, "epoch_ms": 60_000})).await?;
    let run = harness.runtime.start(instance.id).await?;
    let run = harness.follow(&run, has_progress).await?;
    // Not "forced": the minute-long epoch ended as soon as the cancel arrived, well inside the 300 ms grace.
    assert_eq!((run.status, run.error.as_deref()), (RunStatus::Cancelled, Some("cancelled by user")));
    assert_eq!(harness.count(&run, LogLevel::Warn).await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sleeper_stops_within_a_step_when_cancelled() -> TestResult {
    let harness = Harness::new().await?;
    let instance = harness.instance("sleeper", json!({"seconds": 60})).await?;
    let run = harness.runtime.start(instance.id).await?;
    let run = harness.follow(&run, has_progress).await?;
    assert_eq!((run.status, run.error.as_deref()), (RunStatus::Cancelled, Some("cancelled by user")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn stubborn_is_aborted_after_the_grace_period() -> TestResult {
    let harness = Harness::new().await?;
    let instance = harness.instance("stubborn", json!({"seconds": 600})).await?;
    let run = harness.runtime.start(instance.id).await?;
    let run = harness.follow(&run, is_running).await?;
    assert_eq!(run.status, RunStatus::Cancelled);
    let error = run.error.clone().unwrap_or_default();
    assert!(error.contains("forced"), "{error}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_fails_with_the_configured_message_after_logging() -> TestResult {
    let harness = Harness::new().await?;
    let run = harness.run("failing", json!({"message": "out of GPU memory"})).await?;
    assert_eq!((run.status, run.error.as_deref()), (RunStatus::Failed, Some("out of GPU memory")));
    for level in [LogLevel::Info, LogLevel::Warn, LogLevel::Error] {
        assert_eq!(harness.count(&run, level).await?, 1, "{level}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn panicking_fails_with_the_panic_message_and_keeps_its_logs() -> TestResult {
    let harness = Harness::new().await?;
    let run = harness.run("panicking", json!({"after_steps": 2})).await?;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.clone().unwrap_or_default();
    assert!(error.contains("simulated crash in step 3"), "{error}");
    assert_eq!(harness.count(&run, LogLevel::Info).await?, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn big_result_records_over_ten_thousand_leaves() -> TestResult {
    let harness = Harness::new().await?;
    let run = harness.run("big_result", json!({})).await?;
    assert_eq!(run.status, RunStatus::Completed);
    let results = harness.results(&run).await?;
    assert!(leaves(&results["weights"]) >= 10_000, "{} leaves", leaves(&results["weights"]));
    assert_eq!(results["weights"]["layers"].as_array().map(Vec::len), Some(100));
    assert_eq!(results["parameter_count"], json!(10_000));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn big_result_refuses_a_value_too_large_to_hold() -> TestResult {
    let harness = Harness::new().await?;
    let run = harness.run("big_result", json!({"layers": 10_000, "units": 10_000})).await?;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap_or_default().contains("at most 1000000"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chatty_stores_every_line_in_order_whatever_the_batch() -> TestResult {
    let harness = Harness::new().await?;
    // (lines, batch, lines per second): one line per `log`, batches through `log_batch`, and paced batches.
    for (lines, batch, rate) in [(5_000_i64, 1, 0), (5_000, 100, 0), (60, 7, 3_000)] {
        let run = harness.run("chatty", json!({"lines": lines, "batch": batch, "lines_per_second": rate})).await?;
        assert_eq!(run.status, RunStatus::Completed);
        assert_eq!(harness.store.count_logs(run.id, &[]).await?, lines, "batch {batch}");
        let logs = harness.store.logs(run.id, &LogQuery::first(10_000)).await?.items;
        let seqs: Vec<i64> = logs.iter().map(|log| log.seq).collect();
        assert_eq!(seqs, (1..=lines).collect::<Vec<_>>(), "batch {batch}: seqs are contiguous from 1");
        assert_eq!(logs.last().map(|log| log.message.clone()), Some(format!("line {lines} of {lines}")));
        assert_eq!(
            logs[..5].iter().map(|log| log.level).collect::<Vec<_>>(),
            [LogLevel::Debug, LogLevel::Info, LogLevel::Info, LogLevel::Info, LogLevel::Warn]
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn model_pairs_records_one_result_per_pair_and_win_rates() -> TestResult {
    let harness = Harness::new().await?;
    let pairs = json!([{"a": "gpt-4", "b": "claude-3", "runs": 3}, {"a": "llama-3", "b": "gpt-4", "runs": 5}]);
    let run = harness.run("model_pairs", json!({"model_pairs": pairs})).await?;
    assert_eq!(run.status, RunStatus::Completed);

    let results = harness.results(&run).await?;
    let pair_keys: Vec<_> = results.keys().filter(|key| key.starts_with("pairs/")).collect();
    assert_eq!(pair_keys, ["pairs/0/gpt-4_vs_claude-3", "pairs/1/llama-3_vs_gpt-4"]);
    for (key, runs) in [("pairs/0/gpt-4_vs_claude-3", 3), ("pairs/1/llama-3_vs_gpt-4", 5)] {
        let pair = &results[key];
        let outcomes = ["wins_a", "wins_b", "ties"].map(|field| pair[field].as_u64().unwrap_or(u64::MAX));
        assert_eq!(outcomes.iter().sum::<u64>(), runs, "{key}: {pair}");
        assert!(pair["a"].as_f64().is_some_and(|accuracy| (0.0..=1.0).contains(&accuracy)), "{key}: {pair}");
    }
    let rates: Vec<_> = results.keys().filter(|key| key.starts_with("win_rate/")).collect();
    assert_eq!(rates, ["win_rate/claude-3", "win_rate/gpt-4", "win_rate/llama-3"]);
    // Three trials plus five, and the opening line.
    assert_eq!(harness.count(&run, LogLevel::Info).await?, 3 + 5 + 1);
    Ok(())
}
