//! A cancel that meets the experiment's own end: what the run's status and message say (the rule is documented on
//! the supervisor's `Runtime::ended`).
//!
//! - An experiment that failed (or completed) a moment **before** the cancel arrived keeps its outcome and its
//!   message, even when the supervisor notices both at once.
//! - A panic fails the run with its message, cancel or not.
//! - An experiment that returns an error **because** it was asked to stop ends `cancelled`, and its message is
//!   kept as the run's last log line.

use athanor_core::RunStatus;
use athanor_runtime::prelude::*;
use athanor_runtime::testing::{RunReport, TestRuntime};
use athanor_runtime::{AnyExperiment, CancelOutcome};
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Ends when the test says so, the way the test says: `Ok`, or an error with the given message. On start it hands
/// the test the handle of the runtime it runs on (the experiment threads), whose task count tells the test when
/// its `run` has returned.
struct EndsWhenTold {
    started: Mutex<Option<oneshot::Sender<Handle>>>,
    end: Mutex<Option<oneshot::Receiver<Result<(), String>>>>,
}

impl Experiment for EndsWhenTold {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("ends_when_told", "1")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        let end = self.end.lock().unwrap().take().expect("one run only");
        let started = self.started.lock().unwrap().take().expect("one run only");
        ctx.info("waiting to be told how to end").await;
        started.send(Handle::current()).expect("the test is waiting");
        match end.await.expect("the test tells") {
            Ok(()) => Ok(()),
            Err(message) => Err(anyhow!(message)),
        }
    }
}

/// The experiment ends as `end` says; then, once its `run` has returned and before the supervisor has had a
/// chance to see that, a cancel arrives. Returns the report of the run.
///
/// The supervisor runs on this test's runtime, which has one thread (`current_thread`): while the test blocks
/// that thread, the supervisor cannot see anything. The experiment runs on the experiment threads, so it ends
/// meanwhile. The cancel is then requested with nothing awaited before it (`Runtime::cancel` cancels the run's
/// token in its first poll), so when the supervisor next runs, the experiment's end and the cancel are both
/// there: the case where the supervisor used to let the cancel win.
async fn end_then_cancel(end: Result<(), &str>) -> RunReport {
    let (started, experiment_threads) = oneshot::channel();
    let (tell, told) = oneshot::channel();
    let experiment = EndsWhenTold { started: Mutex::new(Some(started)), end: Mutex::new(Some(told)) };
    let h = TestRuntime::new([Box::new(experiment) as Box<dyn AnyExperiment>]).await.unwrap();
    let run = h.start("ends_when_told", Value::Null).await.unwrap();
    let experiment_threads = experiment_threads.await.unwrap();

    tell.send(end.map_err(str::to_owned)).unwrap();
    // No event says "the run's task has ended" without letting the supervisor run too, so poll the experiment
    // runtime's task count, blocking this thread on purpose (it ends within microseconds of being told); the
    // deadline turns a hang into a clear failure.
    let deadline = Instant::now() + Duration::from_secs(30);
    while experiment_threads.metrics().num_alive_tasks() > 0 {
        assert!(Instant::now() < deadline, "the experiment did not return within 30 s");
        std::thread::yield_now();
    }
    assert_eq!(h.runtime().cancel(run.id).await.unwrap(), CancelOutcome::Requested, "the run is still active");
    h.finish(&run).await.unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn a_failure_a_moment_before_a_cancel_keeps_the_failed_status_and_its_message() {
    let report = end_then_cancel(Err("the model diverged at step 12")).await;
    assert_eq!((report.status(), report.error()), (RunStatus::Failed, Some("the model diverged at step 12")));
    assert_eq!(report.messages(), ["waiting to be told how to end"], "its logs are kept");
}

#[tokio::test(flavor = "current_thread")]
async fn a_completion_a_moment_before_a_cancel_stays_completed() {
    let report = end_then_cancel(Ok(())).await;
    assert_eq!((report.status(), report.error()), (RunStatus::Completed, None));
}

/// Waits to be cancelled, then ends the way its name says.
struct OnCancel {
    name: &'static str,
}

impl Experiment for OnCancel {
    type Config = Value;
    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new(self.name, "1")
    }
    async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
        ctx.progress(0, None, Some("waiting to be cancelled"));
        ctx.cancelled().await;
        match self.name {
            "panics_on_cancel" => panic!("the checkpoint file vanished"),
            "fails_on_cancel" => bail!("could not save the checkpoint"),
            _ => Ok(()),
        }
    }
}

/// Start `name`, cancel it once it runs its body (its progress), and report its end.
async fn cancelled(name: &'static str) -> RunReport {
    let h = TestRuntime::new([Box::new(OnCancel { name }) as Box<dyn AnyExperiment>]).await.unwrap();
    let run = h.start(name, Value::Null).await.unwrap();
    h.follow(&run, |event| matches!(event, athanor_core::RunEvent::Progress(_))).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_when_cancelled_fails_the_run_with_the_panic_message() {
    let report = cancelled("panics_on_cancel").await;
    assert_eq!(
        (report.status(), report.error()),
        (RunStatus::Failed, Some("panicked: the checkpoint file vanished")),
        "a panic is a bug to show, cancel or not"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_returned_because_of_the_cancel_ends_cancelled_and_its_message_is_logged() {
    let report = cancelled("fails_on_cancel").await;
    // Returning, even with an error, is how code obeys a cancel (a command killed by the cancel's SIGTERM does).
    assert_eq!((report.status(), report.error()), (RunStatus::Cancelled, Some("cancelled by user")));
    let last = report.logs.last().expect("the error is logged");
    assert_eq!(last.level, LogLevel::Warn);
    assert_eq!(
        last.message,
        "the experiment returned an error after it was asked to stop: could not save the checkpoint"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_ok_when_cancelled_ends_cancelled_by_user_and_logs_nothing() {
    let report = cancelled("stops_on_cancel").await;
    assert_eq!((report.status(), report.error()), (RunStatus::Cancelled, Some("cancelled by user")));
    assert!(report.logs.is_empty(), "{:?}", report.messages());
}
