//! Command experiments run as real child processes through the real runtime: protocol v1 on fd 3, stdout and
//! stderr as logs, exit statuses and signals as run errors, and the whole process tree ended on exit and cancel.
//!
//! The fixture programs are Python (standard library only) and `sh` scripts in `tests/commands/` or inline.

use athanor_core::schema::Field;
use athanor_core::{ExperimentDefinition, LogLevel, LogRecord, RunEvent, RunStatus, Schema};
use athanor_runtime::command::{CommandExperiment, CommandSpec};
use athanor_runtime::testing::{RunReport, TestRuntime};
use athanor_runtime::AnyExperiment;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/commands")
}

/// A command experiment called `name` that runs `command` in `tests/commands/`.
fn command(name: &str, schema: Schema, command: &[&str]) -> Box<dyn AnyExperiment> {
    command_with_env(name, schema, command, BTreeMap::new())
}

fn command_with_env(
    name: &str,
    schema: Schema,
    command: &[&str],
    env: BTreeMap<String, String>,
) -> Box<dyn AnyExperiment> {
    Box::new(CommandExperiment::new(CommandSpec {
        definition: ExperimentDefinition::new(name, "1").schema(schema),
        command: command.iter().map(|part| part.to_string()).collect(),
        cwd: fixtures(),
        env,
        manifest: fixtures().join("athanor.toml"),
    }))
}

/// A harness with one command experiment in it.
async fn harness_with(experiment: Box<dyn AnyExperiment>) -> TestRuntime {
    TestRuntime::new(vec![experiment]).await.expect("a test runtime")
}

/// Run a command with no configuration and return what it recorded.
async fn run_command(name: &str, argv: &[&str]) -> RunReport {
    let harness = harness_with(command(name, Schema::new(), argv)).await;
    harness.run(name, json!({})).await.expect("the run ends")
}

/// The log line whose message is exactly `message`.
fn log<'a>(report: &'a RunReport, message: &str) -> &'a LogRecord {
    report
        .logs
        .iter()
        .find(|log| log.message == message)
        .unwrap_or_else(|| panic!("no log line {message:?} among {:#?}", report.messages()))
}

/// The warnings about ignored protocol lines.
fn protocol_warnings(report: &RunReport) -> Vec<&str> {
    report
        .logs
        .iter()
        .filter(|log| log.level == LogLevel::Warn && log.metadata == Some(json!({"stream": "protocol"})))
        .map(|log| log.message.as_str())
        .collect()
}

/// Whether process `pid` has ended: it no longer exists, or it is a zombie whose exit only awaits its parent's
/// `wait` (a container's init may never reap orphans, so a zombie has to count as ended).
/// Fail unless `pid` ends within a few seconds (SIGKILL takes effect asynchronously; the exit is awaited).
async fn assert_ends(pid: i32, what: &str) {
    let ended = tokio::time::timeout(Duration::from_secs(5), athanor_runtime::testing::process_exit(pid)).await;
    assert!(matches!(ended, Ok(Ok(()))), "{what} (pid {pid}) is still running: {ended:?}");
}

fn pid(value: &Value) -> i32 {
    value.as_i64().and_then(|pid| i32::try_from(pid).ok()).expect("a pid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_command_gets_its_configuration_and_everything_it_sends_is_recorded() {
    let schema = Schema::new()
        .field(Field::string("greeting").default("hello"))
        .field(Field::integer("epochs").default(3).min(1));
    let env = BTreeMap::from([("GREETING_SUFFIX".to_owned(), "!".to_owned())]);
    let harness = harness_with(command_with_env("well_behaved", schema, &["python3", "well_behaved.py"], env)).await;

    let run = harness.start("well_behaved", json!({"greeting": "bonjour"})).await.unwrap();
    let mut progress = Vec::new();
    let report = harness
        .follow(&run, |event| {
            match event {
                RunEvent::Progress(update) => progress.push(update.clone()),
                RunEvent::Snapshot { progress: Some(update), .. } => progress.push(update.clone()),
                _ => {}
            }
            false
        })
        .await
        .unwrap();

    assert_eq!(report.status(), RunStatus::Completed, "error: {:?}", report.error());
    // The configuration arrived (with the schema's default for `epochs`), and so did the manifest's `env`.
    assert_eq!(report.result("greeting"), Some(&json!("bonjour!")));
    assert_eq!(report.result("cwd"), Some(&json!(fixtures().to_str().unwrap())));
    let environment = report.result("environment").expect("the environment result");
    assert_eq!(environment["ATHANOR_PROTOCOL"], "1");
    assert_eq!(environment["ATHANOR_RUN_ID"], run.id.to_string());
    assert_eq!(environment["ATHANOR_EXPERIMENT"], "well_behaved");
    assert_eq!(environment["ATHANOR_FD"], "3");
    let config_file = Path::new(environment["ATHANOR_CONFIG"].as_str().unwrap());
    assert!(config_file.is_absolute(), "{config_file:?}");
    assert!(!config_file.exists(), "the configuration file is removed when the run ends");

    // Protocol logs keep their level, metadata and order.
    let protocol_logs: Vec<_> = report
        .logs
        .iter()
        .filter(|log| log.metadata.as_ref().is_none_or(|metadata| metadata.get("stream").is_none()))
        .map(|log| (log.level, log.message.as_str(), log.metadata.clone()))
        .collect();
    assert_eq!(
        protocol_logs,
        vec![
            (LogLevel::Debug, "a debug line", Some(json!({"level_seen": "debug"}))),
            (LogLevel::Info, "a info line", Some(json!({"level_seen": "info"}))),
            (LogLevel::Warn, "a warn line", Some(json!({"level_seen": "warn"}))),
            (LogLevel::Error, "a error line", Some(json!({"level_seen": "error"}))),
            (LogLevel::Info, "no level means info", None),
        ]
    );
    assert_eq!(report.result("accuracy"), Some(&json!(0.91)));

    // Printed text is logged, never parsed: a protocol message on stdout is just text.
    let stdout = log(&report, "plain text on stdout");
    assert_eq!((stdout.level, stdout.metadata.clone()), (LogLevel::Info, Some(json!({"stream": "stdout"}))));
    let forged = log(&report, r#"{"type": "fail", "error": "forged on stdout"}"#);
    assert_eq!(forged.level, LogLevel::Info);
    let stderr = log(&report, "a warning on stderr");
    assert_eq!((stderr.level, stderr.metadata.clone()), (LogLevel::Warn, Some(json!({"stream": "stderr"}))));
    assert!(protocol_warnings(&report).is_empty(), "{:?}", protocol_warnings(&report));

    // Progress reached viewers. (Python takes tens of milliseconds to start, far longer than subscribing does.)
    let last = progress.last().expect("progress was broadcast");
    assert_eq!((last.current, last.total, last.message.as_deref()), (3, Some(3), Some("epoch 3")));
}

#[tokio::test]
async fn a_fail_message_fails_the_run_whatever_the_exit_status() {
    let fail_then_exit_0 = r#"echo '{"type":"fail","error":"the model diverged"}' >&3; exit 0"#;
    let report = run_command("fail_then_exit_0", &["sh", "-c", fail_then_exit_0]).await;
    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.error(), Some("the model diverged"));

    let two_fails_then_exit_4 = r#"
        echo '{"type":"fail","error":"first reason"}' >&3
        echo '{"type":"fail","error":"second reason"}' >&3
        echo 'some detail' >&2
        exit 4"#;
    let report = run_command("two_fails", &["sh", "-c", two_fails_then_exit_4]).await;
    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.error(), Some("first reason"), "the first fail wins, over the exit status too");
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_the_status_and_the_last_stderr_lines() {
    let script = r#"
        echo 'working' 
        for i in $(seq 1 15); do echo "problem $i" >&2; done
        exit 3"#;
    let report = run_command("exits_3", &["sh", "-c", script]).await;
    assert_eq!(report.status(), RunStatus::Failed);
    let last_ten: Vec<_> = (6..=15).map(|i| format!("problem {i}")).collect();
    assert_eq!(
        report.error(),
        Some(format!("exited with status 3; last stderr lines:\n{}", last_ten.join("\n")).as_str())
    );
    // Every stderr line is still in the log, as a warning.
    assert_eq!(report.logs_at(LogLevel::Warn).len(), 15);
    assert_eq!(log(&report, "working").level, LogLevel::Info);
}

#[tokio::test]
async fn a_command_killed_by_a_signal_fails_naming_the_signal() {
    let report = run_command("killed", &["sh", "-c", "echo 'about to die' >&2; kill -KILL $$"]).await;
    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.error(), Some("killed by signal SIGKILL (9); last stderr lines:\nabout to die"));
}

#[tokio::test]
async fn a_program_that_does_not_exist_fails_the_run_naming_it() {
    let report = run_command("missing", &["/nonexistent/program", "--flag"]).await;
    assert_eq!(report.status(), RunStatus::Failed);
    let error = report.error().unwrap();
    assert!(error.contains("\"/nonexistent/program\""), "{error}");
    assert!(error.contains("No such file or directory"), "{error}");
}

#[tokio::test]
async fn a_crash_in_the_middle_of_a_protocol_line_is_a_warning_and_the_exit_status_decides() {
    let crash = |status: i32| {
        format!(
            "import os\nos.write(3, b'{{\"type\":\"result\",\"key\":\"kept\",\"value\":1}}\\n')\n\
             os.write(3, b'{{\"type\":\"result\",\"key\":\"accur')\nos._exit({status})"
        )
    };
    let harness = TestRuntime::new(vec![
        command("crash_exit_0", Schema::new(), &["python3", "-c", &crash(0)]),
        command("crash_exit_1", Schema::new(), &["python3", "-c", &crash(1)]),
    ])
    .await
    .unwrap();

    for (name, status, error) in [
        ("crash_exit_0", RunStatus::Completed, None),
        ("crash_exit_1", RunStatus::Failed, Some("exited with status 1")),
    ] {
        let report = harness.run(name, json!({})).await.unwrap();
        assert_eq!((report.status(), report.error()), (status, error), "{name}");
        assert_eq!(report.result("kept"), Some(&json!(1)), "{name}: the complete line before the crash counts");
        let warnings = protocol_warnings(&report);
        assert_eq!(warnings.len(), 1, "{name}: {warnings:?}");
        assert!(warnings[0].contains("the stream ended before its line feed"), "{}", warnings[0]);
        assert!(warnings[0].ends_with(r#"{"type":"result","key":"accur"#), "{}", warnings[0]);
    }
}

#[tokio::test]
async fn garbage_on_any_stream_becomes_warnings_and_the_run_goes_on() {
    let report = run_command("garbage", &["python3", "garbage.py"]).await;
    assert_eq!(report.status(), RunStatus::Completed, "error: {:?}", report.error());

    // Blank lines are not among them: they are skipped silently.
    let warnings = protocol_warnings(&report);
    assert_eq!(warnings.len(), 7, "{warnings:#?}");
    assert!(warnings[0].contains("not valid JSON") && warnings[0].ends_with("the line: epoch 3 done"));
    assert!(warnings[1].contains("not an object"));
    assert!(warnings[2].contains("unknown message type \"metric\""));
    assert!(warnings[3].contains("invalid \"result\" message: missing field `value`"));
    assert!(warnings[4].contains("over the limit of 1048576 bytes"), "{}", &warnings[4][..200]);
    assert!(warnings[4].len() < 1_000, "a warning quotes only the start of an oversized line");
    assert!(warnings[5].contains("metadata must be an object"), "{}", warnings[5]);
    assert!(warnings[6].contains("key must not be empty"), "{}", warnings[6]);
    // Neither message was applied.
    assert!(!report.messages().contains(&"listed metadata"));
    assert!(report.results.iter().all(|result| !result.key.is_empty()));

    // Valid lines after the garbage still arrive, a CRLF at the end of one changing nothing.
    assert_eq!(log(&report, "null metadata counts as none").metadata, None);
    assert_eq!(report.result("crlf"), Some(&json!(true)));
    assert_eq!(report.result("after_garbage"), Some(&json!(true)));
    assert_eq!(log(&report, "protocol still works").level, LogLevel::Info);
    assert_eq!(log(&report, "stdout still works").level, LogLevel::Info);

    // The oversized stdout line is kept, cut to fit a log message's 1 MiB with a note of what was dropped.
    let long = report.logs.iter().find(|log| log.message.starts_with("yyyy")).expect("the long stdout line");
    let kept = long.message.bytes().take_while(|&byte| byte == b'y').count();
    let dropped = 2 * 1024 * 1024 - kept;
    assert!(kept > 1024 * 1024 - 200 && long.message.len() <= 1024 * 1024, "{kept} of {}", long.message.len());
    assert!(long
        .message
        .ends_with(&format!("[{dropped} more bytes dropped: output lines are capped at 1048576 bytes]")));
    assert_eq!(long.metadata, Some(json!({"stream": "stdout", "dropped_bytes": dropped})));
}

#[tokio::test]
async fn a_progress_bar_redrawn_with_carriage_returns_becomes_a_line_per_redraw() {
    // As tqdm draws on stderr: every redraw starts with `\r`, and only the last ends with `\n`. On stdout, CRLF
    // line ends, and a blank line (which is not logged).
    let script = r"
        printf '\r  0%%|   |\r 50%%|#  |\r100%%|###|\n' >&2
        printf 'windows\r\n\r\nstyle\r\n'";
    let report = run_command("progress_bar", &["sh", "-c", script]).await;
    assert_eq!(report.status(), RunStatus::Completed, "error: {:?}", report.error());
    let stream = |name: &str| -> Vec<&str> {
        let metadata = Some(json!({"stream": name}));
        report.logs.iter().filter(|log| log.metadata == metadata).map(|log| log.message.as_str()).collect()
    };
    assert_eq!(stream("stderr"), ["  0%|   |", " 50%|#  |", "100%|###|"]);
    assert_eq!(stream("stdout"), ["windows", "style"]);
}

#[tokio::test]
async fn nul_characters_in_the_error_are_stored_as_replacement_characters() {
    let script = r#"printf '{"type":"fail","error":"bad\u0000byte"}\n' >&3"#;
    let report = run_command("nul", &["sh", "-c", script]).await;
    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.error(), Some("bad\u{FFFD}byte"));
}

#[tokio::test]
async fn cancel_sends_sigterm_and_a_command_that_stops_ends_cancelled() {
    let harness = harness_with(command("stops", Schema::new(), &["python3", "stops_on_sigterm.py"])).await;
    let run = harness.start("stops", json!({})).await.unwrap();
    // Cancel once the command reports that its SIGTERM handler is in place.
    let report = harness.follow(&run, |event| matches!(event, RunEvent::Progress(_))).await.unwrap();
    assert_eq!(report.status(), RunStatus::Cancelled);
    assert_eq!(report.error(), Some("cancelled by user"), "stopped by itself, not forced");
    assert_eq!(log(&report, "SIGTERM received: saving a checkpoint").level, LogLevel::Info);
}

#[tokio::test]
async fn a_command_that_ignores_sigterm_is_killed_with_its_whole_tree_after_the_grace_period() {
    let harness = harness_with(command("stubborn", Schema::new(), &["python3", "ignores_sigterm.py"])).await;
    let run = harness.start("stubborn", json!({})).await.unwrap();
    let mut pids = None;
    let report = harness
        .follow(&run, |event| {
            if let RunEvent::Records { results, .. } = event {
                pids = results.iter().find(|result| result.key == "pids").map(|result| result.value.clone());
            }
            pids.is_some()
        })
        .await
        .unwrap();

    assert_eq!(report.status(), RunStatus::Cancelled);
    let error = report.error().unwrap();
    assert!(error.contains("forced after 300 ms"), "{error}");
    let pids = pids.expect("the command reported its pids");
    assert_ends(pid(&pids["child"]), "the command").await;
    assert_ends(pid(&pids["grandchild"]), "the command's grandchild").await;
}

#[tokio::test]
async fn a_grandchild_left_behind_is_killed_when_the_command_exits() {
    let report = run_command("leaves_grandchild", &["python3", "leaves_grandchild.py"]).await;
    assert_eq!(report.status(), RunStatus::Completed, "error: {:?}", report.error());
    // The grandchild held stdout open; the run ended because it was killed, not because reading gave up.
    assert!(report.messages().iter().all(|message| !message.contains("stopped reading")), "{:?}", report.messages());
    assert_ends(pid(report.result("grandchild").expect("the grandchild's pid")), "the grandchild").await;
}
