//! The command demos of the repository's `athanor.toml` (Python and shell programs under `demos/`), read through the
//! real manifest reader and run by the real runtime, exactly as `cargo xtask serve` runs them.

use athanor_core::{LogLevel, RunEvent, RunStatus};
use athanor_runtime::command::CommandManifest;
use athanor_runtime::testing::TestRuntime;
use athanor_runtime::{Registry, RuntimeConfig};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

async fn demos() -> TestRuntime {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../athanor.toml");
    let (_, registry) = CommandManifest::load(&manifest, Registry::default()).expect("the repository's manifest");
    let config = RuntimeConfig { cancel_grace: Duration::from_millis(500), ..RuntimeConfig::default() };
    TestRuntime::with_registry(registry, config).await.expect("a runtime")
}

/// Fail unless `pid` ends within a few seconds (SIGKILL takes effect asynchronously; the exit is awaited).
async fn assert_gone(pid: i64, what: &str) {
    let pid = i32::try_from(pid).expect("a pid");
    let ended = tokio::time::timeout(Duration::from_secs(5), athanor_runtime::testing::process_exit(pid)).await;
    assert!(matches!(ended, Ok(Ok(()))), "{what} (pid {pid}) is still running: {ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_llm_evaluation_reports_logs_results_and_progress_and_completes() {
    let harness = demos().await;
    let run = harness.start("llm_eval", json!({"questions": 12, "question_ms": 0, "seed": 3})).await.unwrap();
    let mut progress = Vec::new();
    let report = harness
        .follow(&run, |event| {
            if let RunEvent::Progress(reported) = event {
                progress.push((reported.current, reported.total));
            }
            false
        })
        .await
        .unwrap();
    assert_eq!(report.status(), RunStatus::Completed, "{:?}", report.error());

    let accuracy = report.result("accuracy").and_then(|value| value.as_f64()).expect("a final accuracy");
    assert!((0.0..=1.0).contains(&accuracy), "{accuracy}");
    assert_eq!(report.result("questions"), Some(&json!(12)));
    let correct = report.result("correct").and_then(|value| value.as_i64()).unwrap();
    let per_question: i64 = (1..=12).map(|i| report.result(&format!("correct/{i}")).unwrap().as_i64().unwrap()).sum();
    assert_eq!(per_question, correct, "per-question results add up to the total");
    assert!(report.result("accuracy/12").is_some(), "the running accuracy is a series");
    for tokens in ["prompt_tokens", "completion_tokens"] {
        assert!(report.result(tokens).and_then(|value| value.as_i64()).is_some_and(|n| n > 0), "{tokens}");
    }
    assert_eq!(report.logs_at(LogLevel::Debug).len(), 12, "one debug line per question");
    let stdout = report.logs.iter().filter(|log| log.metadata == Some(json!({"stream": "stdout"}))).count();
    assert!(stdout >= 2, "printed lines become info logs");
    assert!(!progress.is_empty(), "progress reached the viewer live");
    assert!(progress.iter().all(|&(current, total)| total == Some(12) && current <= 12), "{progress:?}");

    let again = harness.run("llm_eval", json!({"questions": 12, "question_ms": 0, "seed": 3})).await.unwrap();
    assert_eq!(again.result("accuracy"), report.result("accuracy"), "the same configuration, the same numbers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_demo_that_crashes_mid_line_fails_and_keeps_its_lines() {
    let harness = demos().await;
    let report = harness.run("crash_midline", json!({"lines": 4})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Failed);
    assert!(report.error().unwrap().contains("exited with status 1"), "{:?}", report.error());
    assert!(report.logs_at(LogLevel::Info).len() >= 4, "{:?}", report.messages());
    let cut_off = report.logs_at(LogLevel::Warn);
    assert!(cut_off.iter().any(|log| log.message.contains("never_fin")), "the half line is quoted: {cut_off:?}");
    assert!(report.result("never_finished").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_demo_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let harness = demos().await;
    let run = harness.start("ignore_sigterm", json!({"seconds": 600})).await.unwrap();
    let mut pid = None;
    let report = harness
        .follow(&run, |event| {
            if let RunEvent::Records { results, .. } = event {
                pid = pid.or_else(|| results.iter().find(|r| r.key == "pid").and_then(|r| r.value.as_i64()));
            }
            pid.is_some()
        })
        .await
        .unwrap();
    assert_eq!(report.status(), RunStatus::Cancelled);
    assert!(report.error().unwrap().contains("forced after 500 ms"), "{:?}", report.error());
    let pid = pid.expect("the demo reported its pid");
    assert_gone(pid, "the process that ignores SIGTERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_countdown_and_the_orphan_spawner_complete_and_leave_nothing_behind() {
    let harness = demos().await;
    let countdown = harness.run("shell_countdown", json!({"from": 2})).await.unwrap();
    assert_eq!(countdown.status(), RunStatus::Completed, "{:?}", countdown.error());
    assert!(!countdown.results.is_empty(), "the shell script recorded a result");

    let spawner = harness.run("orphan_spawner", json!({"child_seconds": 600})).await.unwrap();
    assert_eq!(spawner.status(), RunStatus::Completed, "{:?}", spawner.error());
    let child = spawner.result("child_pid").and_then(|value| value.as_i64()).expect("the child's pid");
    assert_gone(child, "the child that would have outlived its parent").await;
}
