//! Experiments cannot starve the server: eight runs that compute without ever awaiting, started through the JSON
//! API of the real server, leave its pages and API answering quickly, and still stop when cancelled.
//!
//! The server runs on this test's runtime (two worker threads, like a small machine). The client — every HTTP call,
//! every wait and every clock it reads — runs on a thread and runtime of its own, so a starved server shows up as
//! slow or refused answers (and the test fails), never as a test that hangs.

use athanor_app::server::{start, Config};
use athanor_core::{LifecycleEvent, Run, RunId, RunStatus};
use athanor_runtime::prelude::*;
use futures::{Stream, StreamExt};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Computes for up to `seconds` without a single `.await`, looking only at `ctx.is_cancelled()`: CPU-bound code
/// written the cooperative way.
struct BusySpin;

#[derive(Deserialize)]
struct BusyConfig {
    seconds: u64,
}

impl Experiment for BusySpin {
    type Config = BusyConfig;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("busy_spin", "1")
            .description("Computes without awaiting until cancelled (or for `seconds`).")
            .schema(Schema::new().field(Field::integer("seconds").default(30).min(1).max(600)))
    }

    async fn run(&self, ctx: RunContext, config: BusyConfig) -> RunResult {
        let until = Instant::now() + Duration::from_secs(config.seconds);
        let mut state: u64 = 1;
        while !ctx.is_cancelled() && Instant::now() < until {
            for _ in 0..1_000 {
                state = std::hint::black_box(state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
            }
        }
        ensure!(ctx.is_cancelled(), "was never cancelled ({state})");
        Ok(())
    }
}

register_experiment!(BusySpin);

/// Busy runs started at once.
const RUNS: usize = 8;
/// Requests timed per path.
const SAMPLES: usize = 20;
/// The bound on the median answer time while the runs compute.
const MEDIAN_BOUND: Duration = Duration::from_millis(100);
/// A request the server has not answered after this long fails the test (a starved server answers nothing).
const REQUEST_LIMIT: Duration = Duration::from_secs(5);
/// A bound on waiting for lifecycle events, so a regression fails instead of hanging.
const EVENT_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_busy_runs_leave_the_server_responsive_and_still_stop_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_folder(dir.path());
    config.runtime.max_concurrent_runs = RUNS;
    let server = start(config).await.unwrap();
    // Subscribed before any run exists, so no status change is missed.
    let lifecycle = server.state.service.lifecycle_events();
    let base = format!("http://{}", server.addr);

    let (done, outcome) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("starvation-client".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                runtime.block_on(exercise(&base, Box::pin(lifecycle)))
            }));
            let _ = done.send(outcome);
        })
        .unwrap();
    let outcome = outcome.await.expect("the client thread ended without an answer");
    server.abort();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Everything the client does; panics (inside the client thread) on the first thing that goes wrong.
async fn exercise(base: &str, mut lifecycle: std::pin::Pin<Box<impl Stream<Item = LifecycleEvent>>>) {
    let client = reqwest::Client::builder().timeout(REQUEST_LIMIT).build().unwrap();

    let input = json!({"experiment": "busy_spin", "name": "spin", "config": {}});
    let created = client
        .post(format!("{base}/api/v1/instances"))
        .header("content-type", "application/json")
        .body(input.to_string())
        .send()
        .await
        .expect("creating the instance");
    assert_eq!(created.status().as_u16(), 201);
    let instance: Value = serde_json::from_str(&created.text().await.unwrap()).unwrap();
    let instance_id = instance["id"].as_str().expect("the instance's id").to_owned();

    let mut runs = HashSet::new();
    for n in 1..=RUNS {
        let started = Instant::now();
        let response =
            client.post(format!("{base}/api/v1/instances/{instance_id}/runs")).send().await.unwrap_or_else(|error| {
                panic!(
                    "starting run {n} of {RUNS}: no answer after {:?}, with {} busy run(s) started: {error}",
                    started.elapsed(),
                    n - 1
                )
            });
        assert_eq!(response.status().as_u16(), 201);
        let run: Run = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        runs.insert(run.id);
    }
    let running = until_all(&mut lifecycle, &runs, "running", |run| run.status == RunStatus::Running).await;
    assert_eq!(running.len(), RUNS);

    let mut report = Vec::new();
    for path in ["/", "/api/v1/instances"] {
        let mut times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let started = Instant::now();
            let response = client.get(format!("{base}{path}")).send().await.unwrap_or_else(|error| {
                panic!("GET {path}: no answer after {:?} while {RUNS} runs compute: {error}", started.elapsed())
            });
            let status = response.status().as_u16();
            response.bytes().await.expect("the whole answer");
            times.push(started.elapsed());
            assert_eq!(status, 200, "GET {path}");
        }
        times.sort();
        let median = times[SAMPLES / 2];
        let milliseconds: Vec<String> = times.iter().map(|time| format!("{:.1}", time.as_secs_f64() * 1e3)).collect();
        println!(
            "GET {path} while {RUNS} runs compute: median {:.1} ms, max {:.1} ms; all (ms, sorted): {}",
            median.as_secs_f64() * 1e3,
            times[SAMPLES - 1].as_secs_f64() * 1e3,
            milliseconds.join(" ")
        );
        report.push((path, median));
    }
    for (path, median) in report {
        assert!(
            median < MEDIAN_BOUND,
            "GET {path}: median {median:?} while {RUNS} runs compute (bound {MEDIAN_BOUND:?})"
        );
    }

    let cancelled_at = Instant::now();
    for run_id in &runs {
        let response = client.post(format!("{base}/api/v1/runs/{run_id}/cancel")).send().await.expect("cancelling");
        assert_eq!(response.status().as_u16(), 200, "cancel {run_id}");
    }
    let ended = until_all(&mut lifecycle, &runs, "ended", |run| run.status.is_terminal()).await;
    println!("all {RUNS} runs ended {:?} after the first cancel", cancelled_at.elapsed());
    for run in ended.values() {
        assert_eq!(run.status, RunStatus::Cancelled, "run {}: {:?}", run.id, run.error);
        assert!(run.error.as_deref().unwrap_or_default().starts_with("cancelled by user"), "{:?}", run.error);
    }
}

/// Wait until every run in `runs` has been announced in a state `wanted` accepts; returns those announcements.
async fn until_all(
    lifecycle: &mut (impl Stream<Item = LifecycleEvent> + Unpin),
    runs: &HashSet<RunId>,
    what: &str,
    wanted: impl Fn(&Run) -> bool,
) -> HashMap<RunId, Run> {
    let mut seen = HashMap::new();
    let waited = tokio::time::timeout(EVENT_LIMIT, async {
        while seen.len() < runs.len() {
            match lifecycle.next().await.expect("the lifecycle stream ended") {
                LifecycleEvent::RunChanged(run) if runs.contains(&run.id) && wanted(&run) => {
                    seen.insert(run.id, run);
                }
                LifecycleEvent::Resync => panic!("the lifecycle stream lagged"),
                _ => {}
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "only {} of {} runs were {what} after {EVENT_LIMIT:?}", seen.len(), runs.len());
    seen
}
