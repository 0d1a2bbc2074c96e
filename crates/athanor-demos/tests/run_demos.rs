//! Every demo experiment run for real: found by `Registry::discover()` (so through `inventory`, across the crate
//! boundary exactly as the server links them), executed by the runtime, recorded in a temporary SQLite database
//! (`athanor_runtime::testing::TestRuntime`).
//!
//! Tests wait on the run's event stream, never on the clock: each one follows `run_events` to the terminal status.

use athanor_core::{LogLevel, RunEvent, RunStatus};
use athanor_runtime::prelude::*;
use athanor_runtime::testing::{RunReport, TestRuntime};
use athanor_runtime::{AnyExperiment, Registry, RegistryError, RuntimeConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration;

type TestResult<T = ()> = Result<T, Box<dyn Error>>;

/// The server's experiments, as discovered, with a short cancel grace so forced-cancel paths stay quick.
async fn harness() -> TestResult<TestRuntime> {
    let config = RuntimeConfig { cancel_grace: Duration::from_millis(300), ..RuntimeConfig::default() };
    Ok(TestRuntime::with_registry(Registry::discover()?, config).await?)
}

/// Every result of a run, by key.
fn results(report: &RunReport) -> BTreeMap<String, Value> {
    report.results.iter().map(|result| (result.key.clone(), result.value.clone())).collect()
}

/// How many of the run's lines are at `level`.
fn count(report: &RunReport, level: LogLevel) -> usize {
    report.logs_at(level).len()
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

#[test]
fn discovery_checks_every_demos_config_type() {
    // `discover` refuses a schema that contradicts itself, or whose sample configuration does not deserialize
    // into the experiment's `Config`: succeeding means every demo's struct matches its schema.
    match Registry::discover() {
        Ok(registry) => assert_eq!(registry.len(), athanor_demos::experiments().len()),
        Err(error) => panic!("{error}"),
    }
}

/// A schema field `epochs` read by a `Config` that expects `epoch_count`: the mistake the check exists for.
struct Mismatched;

#[derive(Deserialize)]
struct MismatchedConfig {
    epoch_count: u64,
}

impl Experiment for Mismatched {
    type Config = MismatchedConfig;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("mismatched", "1")
            .schema(Schema::new().field(Field::integer("epochs").default(30).min(1)))
    }

    async fn run(&self, _ctx: RunContext, config: MismatchedConfig) -> RunResult {
        bail!("unreachable: {} epochs", config.epoch_count)
    }
}

#[test]
fn a_config_type_that_does_not_match_its_schema_is_refused_at_registration() {
    let experiments = vec![Box::new(Mismatched) as Box<dyn AnyExperiment>];
    match Registry::from_experiments(experiments) {
        Err(RegistryError::ConfigMismatch { experiment, error, .. }) => {
            assert_eq!(experiment, "mismatched");
            assert!(error.contains("epoch_count"), "the error names the field: {error}");
        }
        Err(other) => panic!("expected ConfigMismatch, got {other}"),
        Ok(_) => panic!("a Config type that does not fit its schema was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn training_curve_completes_with_per_epoch_and_summary_results() -> TestResult {
    let harness = harness().await?;
    let report = harness.run("training_curve", json!({"epochs": 5, "epoch_ms": 0})).await?;
    assert_eq!((report.status(), report.error()), (RunStatus::Completed, None));

    let results = results(&report);
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

    assert_eq!(count(&report, LogLevel::Debug), 5);
    assert!(count(&report, LogLevel::Info) >= 5);
    let debug = report.logs_at(LogLevel::Debug);
    let metadata = debug[0].metadata.as_ref().ok_or("debug lines carry metadata")?;
    assert_eq!((metadata["epoch"].as_u64(), metadata["lr"].as_f64()), (Some(1), Some(0.05)));
    assert_eq!(metadata["loss"], results["loss/1"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn training_curve_is_reproducible_from_its_seed() -> TestResult {
    let harness = harness().await?;
    let config = |seed: u64| json!({"epochs": 8, "epoch_ms": 0, "seed": seed, "noise": 0.1});
    let seeded = harness.instance("training_curve", config(42)).await?;
    let first = harness.runtime().start(seeded.id).await?;
    let first = harness.finish(&first).await?;
    let second = harness.runtime().start(seeded.id).await?;
    let second = harness.finish(&second).await?;
    let other = harness.run("training_curve", config(43)).await?;

    let first = results(&first);
    assert_eq!(first.len(), 8 * 2 + 3);
    assert_eq!(first, results(&second), "same seed, same curve");
    assert_ne!(first, results(&other), "another seed, another curve");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn seeded_training_demos_show_every_log_level() -> TestResult {
    // The demo instances are what a new user runs first; they should show warnings and errors, not just info.
    let harness = harness().await?;
    for demo in athanor_demos::demo_instances().into_iter().filter(|demo| demo.experiment == "training_curve") {
        let mut overrides = demo.config.clone();
        overrides["epoch_ms"] = json!(0);
        let report = harness.run("training_curve", overrides).await?;
        assert_eq!(report.status(), RunStatus::Completed);
        for level in LogLevel::ALL {
            assert!(count(&report, level) > 0, "{}: no {level} line", demo.name);
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn training_curve_stops_mid_epoch_when_cancelled() -> TestResult {
    let harness = harness().await?;
    let run = harness.start("training_curve", json!({"epochs": 100, "epoch_ms": 60_000})).await?;
    let report = harness.follow(&run, has_progress).await?;
    // Not "forced": the minute-long epoch ended as soon as the cancel arrived, well inside the 300 ms grace.
    assert_eq!((report.status(), report.error()), (RunStatus::Cancelled, Some("cancelled by user")));
    assert_eq!(count(&report, LogLevel::Warn), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sleeper_stops_within_a_step_when_cancelled() -> TestResult {
    let harness = harness().await?;
    let run = harness.start("sleeper", json!({"seconds": 60})).await?;
    let report = harness.follow(&run, has_progress).await?;
    assert_eq!((report.status(), report.error()), (RunStatus::Cancelled, Some("cancelled by user")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn stubborn_is_aborted_after_the_grace_period() -> TestResult {
    let harness = harness().await?;
    let run = harness.start("stubborn", json!({"seconds": 600})).await?;
    let report = harness.follow(&run, is_running).await?;
    assert_eq!(report.status(), RunStatus::Cancelled);
    let error = report.error().unwrap_or_default();
    assert!(error.contains("forced"), "{error}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_fails_with_the_configured_message_after_logging() -> TestResult {
    let harness = harness().await?;
    let report = harness.run("failing", json!({"message": "out of GPU memory"})).await?;
    assert_eq!((report.status(), report.error()), (RunStatus::Failed, Some("out of GPU memory")));
    for level in [LogLevel::Info, LogLevel::Warn, LogLevel::Error] {
        assert_eq!(count(&report, level), 1, "{level}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn panicking_fails_with_the_panic_message_and_keeps_its_logs() -> TestResult {
    let harness = harness().await?;
    let report = harness.run("panicking", json!({"after_steps": 2})).await?;
    assert_eq!(report.status(), RunStatus::Failed);
    let error = report.error().unwrap_or_default();
    assert!(error.contains("simulated crash in step 3"), "{error}");
    assert_eq!(count(&report, LogLevel::Info), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn big_result_records_over_ten_thousand_leaves() -> TestResult {
    let harness = harness().await?;
    let report = harness.run("big_result", json!({})).await?;
    assert_eq!(report.status(), RunStatus::Completed);
    let weights = report.result("weights").ok_or("weights recorded")?;
    assert!(leaves(weights) >= 10_000, "{} leaves", leaves(weights));
    assert_eq!(weights["layers"].as_array().map(Vec::len), Some(100));
    assert_eq!(report.result("parameter_count"), Some(&json!(10_000)));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn big_result_refuses_a_value_too_large_to_hold() -> TestResult {
    let harness = harness().await?;
    let report = harness.run("big_result", json!({"layers": 10_000, "units": 10_000})).await?;
    assert_eq!(report.status(), RunStatus::Failed);
    assert!(report.error().unwrap_or_default().contains("at most 1000000"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chatty_stores_every_line_in_order_whatever_the_batch() -> TestResult {
    let harness = harness().await?;
    // (lines, batch, lines per second): one line per `log`, batches through `log_batch`, and paced batches.
    for (lines, batch, rate) in [(5_000_i64, 1, 0), (5_000, 100, 0), (60, 7, 3_000)] {
        let report = harness.run("chatty", json!({"lines": lines, "batch": batch, "lines_per_second": rate})).await?;
        assert_eq!(report.status(), RunStatus::Completed);
        assert_eq!(harness.store().count_logs(report.run.id, &[]).await?, lines, "batch {batch}");
        let logs = &report.logs;
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
    let harness = harness().await?;
    let pairs = json!([{"a": "gpt-4", "b": "claude-3", "runs": 3}, {"a": "llama-3", "b": "gpt-4", "runs": 5}]);
    let report = harness.run("model_pairs", json!({"model_pairs": pairs})).await?;
    assert_eq!(report.status(), RunStatus::Completed);

    let results = results(&report);
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
    assert_eq!(count(&report, LogLevel::Info), 3 + 5 + 1);
    Ok(())
}
