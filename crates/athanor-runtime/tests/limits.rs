//! The byte and depth limits on what a run records (`athanor_runtime::limits`), from a Rust experiment and from a
//! command experiment, and the byte budget of a run's live topic, through the real runtime.

use athanor_core::{LogLevel, RunEvent, RunStatus, Schema};
use athanor_runtime::command::{CommandExperiment, CommandSpec};
use athanor_runtime::hub::DEFAULT_RUN_TOPIC_BYTES;
use athanor_runtime::limits::{self, nested, Excess, MAX_DEPTH};
use athanor_runtime::prelude::*;
use athanor_runtime::testing::TestRuntime;
use athanor_runtime::AnyExperiment;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A safety net so a regression fails instead of hanging; nothing waits for it to pass.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// Records one value over each limit (and values exactly at the limits), checking what `result` returns.
struct Oversized;

impl Experiment for Oversized {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("oversized", "1")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.info("start").await;
        ctx.log(LogLevel::Debug, "m".repeat(limits::MAX_MESSAGE_BYTES + 1), None).await;
        ctx.log(LogLevel::Info, "big metadata", Some(json!({"blob": "b".repeat(limits::MAX_METADATA_BYTES)}))).await;
        ctx.log(LogLevel::Info, "deep metadata", Some(json!({"a": nested(MAX_DEPTH, json!(1))}))).await;
        ctx.log_batch([
            (LogLevel::Info, "before".to_owned(), None),
            (LogLevel::Info, "n".repeat(limits::MAX_MESSAGE_BYTES + 5), None),
            (LogLevel::Info, "after".to_owned(), None),
        ])
        .await;

        let refused = ctx.result("k".repeat(limits::MAX_KEY_BYTES + 1), 1).await.unwrap_err();
        ensure!(refused.excess() == Some(Excess::Bytes { found: 1_025, limit: 1_024 }), "{refused:?}");
        // A string of exactly the limit is two bytes over it as JSON: its quotes count.
        let refused = ctx.result("big", "v".repeat(limits::MAX_VALUE_BYTES)).await.unwrap_err();
        let found = limits::MAX_VALUE_BYTES + 2;
        ensure!(refused.excess() == Some(Excess::Bytes { found, limit: limits::MAX_VALUE_BYTES }), "{refused:?}");
        let refused = ctx.result("deep", nested(MAX_DEPTH + 1, json!(1))).await.unwrap_err();
        ensure!(refused.excess() == Some(Excess::Depth { found: 65, limit: 64 }), "{refused:?}");
        // Deeper than serde_json can read back: before the limits, this was stored and then unreadable.
        let refused = ctx.result("deeper than serde reads", nested(200, json!(1))).await.unwrap_err();
        ensure!(refused.excess() == Some(Excess::Depth { found: 200, limit: 64 }), "{refused:?}");
        ctx.series(&"s".repeat(limits::MAX_KEY_BYTES), 7, 0.5).await;

        ctx.result("deepest", nested(MAX_DEPTH, json!("leaf"))).await?;
        ctx.result("largest", "v".repeat(limits::MAX_VALUE_BYTES - 2)).await?;
        ctx.log(LogLevel::Info, "m".repeat(limits::MAX_MESSAGE_BYTES), None).await;
        ctx.info("end").await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_over_each_limit_are_refused_with_an_error_line_and_nothing_is_stored() {
    let report = athanor_runtime::testing::run(Oversized, json!({})).await.unwrap();
    assert_eq!((report.status(), report.error()), (RunStatus::Completed, None), "the run goes on after a refusal");

    let short: Vec<String> = report.logs.iter().map(|log| format!("{} {}", log.level, preview(&log.message))).collect();
    let expected = [
        "info start",
        "error log line refused: its message is 1048577 bytes, over the limit of 1048576 bytes (1 MiB); it began: mmm",
        "error log line refused: its metadata as JSON is 1048587 bytes, over the limit of 1048576 bytes (1 MiB); it \
         began: big metadata",
        "error log line refused: its metadata is nested 65 levels deep, over the limit of 64 levels; it began: deep \
         metadata",
        "info before",
        "error log line refused: its message is 1048581 bytes, over the limit of 1048576 bytes (1 MiB); it began: nnn",
        "info after",
        "error result refused: its key is 1025 bytes, over the limit of 1024 bytes (1 KiB); the key began: \"kkk",
        "error result \"big\" refused: its value as JSON is 16777218 bytes, over the limit of 16777216 bytes (16 MiB)",
        "error result \"deep\" refused: its value is nested 65 levels deep, over the limit of 64 levels",
        "error result \"deeper than serde reads\" refused: its value is nested 200 levels deep, over the limit of 64 \
         levels",
        "error result refused: its key is 1026 bytes, over the limit of 1024 bytes (1 KiB); the key began: \"sss",
        "info mmm",
        "info end",
    ];
    assert_eq!(short.len(), expected.len(), "{short:#?}");
    for (line, expected) in short.iter().zip(expected) {
        assert!(line.starts_with(expected), "{line:?} does not start with {expected:?}");
    }
    let longest = report.logs.iter().map(|log| log.message.len()).max().unwrap();
    assert_eq!(longest, limits::MAX_MESSAGE_BYTES, "the refused lines are not stored, the one at the limit is");
    assert!(report.logs.iter().all(|log| log.metadata.is_none()), "no refused metadata was stored");

    let keys: Vec<_> = report.results.iter().map(|result| result.key.as_str()).collect();
    assert_eq!(keys, ["deepest", "largest"], "nothing was stored under a refused key");
    assert_eq!(report.result("deepest"), Some(&nested(MAX_DEPTH, json!("leaf"))), "64 levels read back");
    assert_eq!(report.result("largest").and_then(Value::as_str).map(str::len), Some(limits::MAX_VALUE_BYTES - 2));
}

/// The start of a long message, for comparing lines.
fn preview(text: &str) -> &str {
    let mut end = text.len().min(300);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// An experiment that returns `?` on a refused result fails with the refusal; its log has it too.
struct Propagates;

impl Experiment for Propagates {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("propagates", "1")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.result("deep", nested(MAX_DEPTH + 1, json!(1))).await?;
        bail!("a refused result was accepted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_result_returned_with_the_question_mark_fails_the_run_with_the_same_sentence() {
    let report = athanor_runtime::testing::run(Propagates, json!({})).await.unwrap();
    let sentence = "result \"deep\" refused: its value is nested 65 levels deep, over the limit of 64 levels";
    assert_eq!((report.status(), report.error()), (RunStatus::Failed, Some(sentence)));
    assert_eq!(report.messages(), [sentence]);
    assert!(report.results.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_experiment_gets_a_protocol_warning_for_each_message_over_a_limit() {
    let program = r#"
import os
pipe = os.fdopen(3, "w")
def nested(depth):
    return "[" * depth + '"leaf"' + "]" * depth
pipe.write('{"type":"result","key":"%s","value":1}\n' % ("k" * 1025))
pipe.write('{"type":"result","key":"deep","value":%s}\n' % nested(65))
pipe.write('{"type":"result","key":"deeper than serde reads","value":%s}\n' % nested(200))
pipe.write('{"type":"log","message":"m","metadata":{"a":%s}}\n' % nested(64))
pipe.write('{"type":"result","key":"deepest","value":%s}\n' % nested(64))
pipe.write('{"type":"result","key":"after","value":true}\n')
pipe.write('{"type":"progress","current":1,"message":"%s"}\n' % ("p" * 10000))
"#;
    let experiment = CommandExperiment::new(CommandSpec {
        definition: ExperimentDefinition::new("limits", "1").schema(Schema::new()),
        command: vec!["python3".into(), "-c".into(), program.into()],
        cwd: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/commands"),
        env: BTreeMap::new(),
        manifest: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/commands/athanor.toml"),
    });
    let harness = TestRuntime::new(vec![Box::new(experiment) as Box<dyn AnyExperiment>]).await.unwrap();
    let run = harness.start("limits", json!({})).await.unwrap();
    let mut progress = Vec::new();
    let report = harness
        .follow(&run, |event| {
            if let RunEvent::Progress(update) = event {
                progress.push(update.clone());
            }
            false
        })
        .await
        .unwrap();
    assert_eq!(report.status(), RunStatus::Completed);

    let warnings: Vec<_> = report
        .logs
        .iter()
        .filter(|log| log.level == LogLevel::Warn && log.metadata == Some(json!({"stream": "protocol"})))
        .map(|log| log.message.as_str())
        .collect();
    let expected = [
        "protocol line ignored: invalid \"result\" message: its key is 1025 bytes, over the limit of 1024 bytes (1 \
         KiB); the line: ",
        "protocol line ignored: invalid \"result\" message: its value is nested 65 levels deep, over the limit of 64 \
         levels; the line: ",
        "protocol line ignored: it is nested more than 127 levels deep, over the limit of 64 levels for metadata and \
         result values; the line: ",
        "protocol line ignored: invalid \"log\" message: its metadata is nested 65 levels deep, over the limit of 64 \
         levels; the line: ",
    ];
    assert_eq!(warnings.len(), expected.len(), "{warnings:#?}");
    for (warning, expected) in warnings.iter().zip(expected) {
        assert!(warning.starts_with(expected), "{warning:?} does not start with {expected:?}");
    }
    let keys: Vec<_> = report.results.iter().map(|result| result.key.as_str()).collect();
    assert_eq!(keys, ["deepest", "after"]);
    assert_eq!(report.result("deepest"), Some(&nested(64, json!("leaf"))));
    // Progress is never stored: a long message is cut, not refused. (The run may end before a viewer sees it.)
    for update in progress {
        let message = update.message.unwrap_or_default();
        assert!(message.len() <= limits::MAX_PROGRESS_MESSAGE_BYTES && message.ends_with('…'), "{}", message.len());
    }
}

/// Records two 10 MiB results, each when the test says so.
struct TwoLarge {
    go: Arc<Notify>,
}

/// 10 MiB: one fits a run topic's 16 MiB byte budget, two do not.
const LARGE: usize = 10 << 20;

impl Experiment for TwoLarge {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("two_large", "1")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        self.go.notified().await;
        ctx.result("first", "1".repeat(LARGE)).await?;
        self.go.notified().await;
        ctx.result("second", "2".repeat(LARGE)).await?;
        Ok(())
    }
}

/// The next event, within the safety limit.
async fn next(events: &mut (impl Stream<Item = Result<RunEvent, athanor_runtime::RuntimeError>> + Unpin)) -> RunEvent {
    tokio::time::timeout(HANG_LIMIT, events.next()).await.expect("an event in time").expect("more events").unwrap()
}

/// The result keys of a `Records` event.
fn result_keys(event: &RunEvent) -> Vec<String> {
    match event {
        RunEvent::Records { results, .. } => results.iter().map(|result| result.key.clone()).collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_records_do_not_pile_up_in_a_slow_viewers_buffer_and_still_arrive_once_each() {
    let go = Arc::new(Notify::new());
    let harness =
        TestRuntime::new(vec![Box::new(TwoLarge { go: go.clone() }) as Box<dyn AnyExperiment>]).await.unwrap();
    let run = harness.start("two_large", json!({})).await.unwrap();
    let hub = harness.runtime().hub();

    // A viewer that takes its snapshot and then reads nothing for a while: what is sent stays in its buffer.
    let mut slow = Box::pin(harness.runtime().run_events(run.id, 0));
    assert!(matches!(next(&mut slow).await, RunEvent::Snapshot { .. }));
    let mut viewer = Box::pin(harness.runtime().run_events(run.id, 0));
    assert!(matches!(next(&mut viewer).await, RunEvent::Snapshot { .. }));

    go.notify_one();
    let mut seen = Vec::new();
    while !seen.contains(&"first".to_owned()) {
        seen.extend(result_keys(&next(&mut viewer).await));
    }
    let held = hub.held_bytes();
    assert!(
        (LARGE..=DEFAULT_RUN_TOPIC_BYTES).contains(&held),
        "the first result is buffered for the slow viewer: {held}"
    );

    // The second does not fit beside the first: the viewer reads it from the database.
    go.notify_one();
    loop {
        let event = next(&mut viewer).await;
        seen.extend(result_keys(&event));
        assert!(hub.held_bytes() <= DEFAULT_RUN_TOPIC_BYTES, "{} bytes held", hub.held_bytes());
        if matches!(&event, RunEvent::Status(run) if run.status.is_terminal()) {
            break;
        }
    }
    assert_eq!(seen, ["first", "second"], "each record once, in order");

    // The slow viewer gets both too, each once: it catches up from the database first, then skips what its
    // buffer still holds.
    let mut slow_seen = Vec::new();
    loop {
        let event = next(&mut slow).await;
        slow_seen.extend(result_keys(&event));
        if matches!(&event, RunEvent::Status(run) if run.status.is_terminal()) {
            break;
        }
    }
    assert_eq!(slow_seen, ["first", "second"]);
    drop((slow, viewer));
    assert_eq!(hub.held_bytes(), 0, "nothing is held once nobody watches");
}
