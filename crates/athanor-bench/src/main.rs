//! `cargo xtask bench`: how fast Athanor persists logs, what a `log()` call costs, how much memory it takes, and
//! the same workload through MLflow for comparison. Prints a Markdown table.
//!
//! The server rows (`server.rs`) run the release `athanor` binary as a child process: its memory idle and under
//! 100 watched live runs, log line → viewer latency over the websocket, and run page times. `--only-server`
//! measures just those.
//!
//! Workload (same for every other row): one run, N records of (level/key, text, number), batched. Throughput is measured
//! end to end: from the run's start until its terminal status is written, which the runtime only does after the
//! final flush, so every counted line is committed.

mod server;

use anyhow::{bail, Context, Result};
use athanor_core::{Description, ExperimentName, InstanceDraft, InstanceName};
use athanor_core::{LifecycleEvent, RunStatus};
use athanor_runtime::command::{CommandExperiment, CommandSpec};
use athanor_runtime::prelude::*;
use athanor_runtime::{AnyExperiment, Registry, Runtime, RuntimeConfig};
use athanor_store::Store;
use futures::StreamExt;
use serde_json::json;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Emits `lines` log lines through `log()` (one call per line) and remembers how long the calls took.
struct Firehose;

#[derive(Deserialize)]
struct FirehoseConfig {
    lines: u64,
}

static EMIT_NANOS: AtomicU64 = AtomicU64::new(0);

/// Lines in a burst: fewer than the record channel holds, so no call waits for the writer.
const BURST_LINES: u64 = 5_000;

impl Experiment for Firehose {
    type Config = FirehoseConfig;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("firehose", "bench")
            .description("benchmark workload")
            .schema(Schema::new().field(Field::integer("lines").default(1_000).min(0)))
    }

    async fn run(&self, ctx: RunContext, config: FirehoseConfig) -> RunResult {
        let lines = config.lines;
        let levels = [LogLevel::Debug, LogLevel::Info, LogLevel::Info, LogLevel::Warn];
        let message = |i: u64| format!("step {i} loss={:.6}", 1.0 / (i as f64 + 1.0));
        if lines <= BURST_LINES {
            // A burst measures the call alone: messages are formatted before the clock starts.
            let messages: Vec<String> = (0..lines).map(message).collect();
            let started = Instant::now();
            for (i, text) in messages.into_iter().enumerate() {
                ctx.log(levels[i % 4], text, None).await;
            }
            EMIT_NANOS.store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        } else {
            let started = Instant::now();
            for i in 0..lines {
                ctx.log(levels[(i % 4) as usize], message(i), None).await;
            }
            EMIT_NANOS.store(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

struct Measurement {
    lines_per_second: f64,
    ns_per_call: f64,
}

/// Run the firehose once with `lines` lines on `store`; returns persisted lines/s and ns per `log()` call.
async fn firehose(store: &Store, lines: u64) -> Result<Measurement> {
    let lines_per_second = persisted_per_second(store, Box::new(Firehose), lines).await?;
    Ok(Measurement { lines_per_second, ns_per_call: EMIT_NANOS.load(Ordering::Relaxed) as f64 / lines as f64 })
}

/// The same workload written by a Python program through the command-experiment protocol (`clients/python`),
/// so the price of a process boundary, JSON lines and a pipe shows beside the in-process row.
fn python_firehose() -> CommandExperiment {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().unwrap_or(root);
    CommandExperiment::new(CommandSpec {
        definition: ExperimentDefinition::new("firehose", "bench")
            .description("benchmark workload, in Python")
            .schema(Schema::new().field(Field::integer("lines").default(1_000).min(0))),
        command: vec!["python3".into(), root.join("crates/athanor-bench/python_firehose.py").display().to_string()],
        cwd: root.clone(),
        env: [("PYTHONPATH".to_owned(), root.join("clients/python").display().to_string())].into(),
        manifest: root.join("athanor.toml"),
    })
}

/// Start one run of `experiment` (named `firehose`, configured with `lines`) and return the log lines persisted per
/// second, from the start until the terminal status (written only after the final flush).
async fn persisted_per_second<E: AnyExperiment>(store: &Store, experiment: Box<E>, lines: u64) -> Result<f64> {
    let registry = Registry::from_experiments(vec![experiment as Box<dyn AnyExperiment>])?;
    let runtime = Runtime::new(store.clone(), registry, RuntimeConfig::default());
    let draft = InstanceDraft {
        experiment: ExperimentName::parse("firehose")?,
        name: InstanceName::parse("bench")?,
        description: Description::parse("")?,
        config: json!({ "lines": lines }),
    };
    let instance = store.create_instance(&draft).await?;
    // Lifecycle events, not the run's own stream: watching the run would make the writer build live events for it.
    let mut lifecycle = Box::pin(runtime.lifecycle_events());
    let started = Instant::now();
    let run = runtime.start(instance.id).await?;
    while let Some(event) = lifecycle.next().await {
        if let LifecycleEvent::RunChanged(changed) = event {
            if changed.id == run.id && changed.status.is_terminal() {
                if changed.status != RunStatus::Completed {
                    bail!("benchmark run ended {}: {:?}", changed.status, changed.error);
                }
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let stored = store.count_logs(run.id, &[]).await?;
    if stored != lines as i64 {
        bail!("expected {lines} stored lines, found {stored}");
    }
    Ok(lines as f64 / seconds)
}

/// The store alone: append `lines` prepared rows in writer-sized transactions, no runtime, no channel.
async fn store_only(store: &Store, lines: u64) -> Result<f64> {
    let draft = InstanceDraft {
        experiment: ExperimentName::parse("firehose")?,
        name: InstanceName::parse("store only")?,
        description: Description::parse("")?,
        config: json!({}),
    };
    let instance = store.create_instance(&draft).await?;
    let run = store.create_run(instance.id, &json!({}), "bench").await?;
    let now = chrono::Utc::now();
    let rows: Vec<(athanor_core::RunId, athanor_core::LogRecord)> = (1..=lines as i64)
        .map(|seq| {
            let log = athanor_core::LogRecord {
                seq,
                ts: now,
                level: LogLevel::Info,
                message: format!("step {seq} loss={:.6}", 1.0 / seq as f64),
                metadata: None,
            };
            (run.id, log)
        })
        .collect();
    let started = Instant::now();
    for chunk in rows.chunks(4_096) {
        let refs: Vec<(athanor_core::RunId, &athanor_core::LogRecord)> =
            chunk.iter().map(|(id, log)| (*id, log)).collect();
        store.append_rows(&refs, &[]).await?;
    }
    Ok(lines as f64 / started.elapsed().as_secs_f64())
}

/// Server-side time to build the compare view of `runs` runs with `results` numeric results each: the same
/// store reads and pure comparison the compare page's server function performs, plus its JSON encoding.
async fn compare_view(store: &Store, runs: usize, results: usize) -> Result<(f64, usize)> {
    let draft = InstanceDraft {
        experiment: ExperimentName::parse("firehose")?,
        name: InstanceName::parse("compare bench")?,
        description: Description::parse("")?,
        config: json!({"lines": 1, "lr": 0.1}),
    };
    let instance = store.create_instance(&draft).await?;
    let mut ids = Vec::with_capacity(runs);
    let now = chrono::Utc::now();
    for r in 0..runs {
        let run = store.create_run(instance.id, &json!({"lines": 1, "lr": r as f64 / 1000.0}), "bench").await?;
        let records: Vec<athanor_core::ResultRecord> = (0..results)
            .map(|k| athanor_core::ResultRecord {
                seq: k as i64 + 1,
                ts: now,
                key: format!("metric{k:02}"),
                value: json!((r * results + k) as f64 / 7.0),
            })
            .collect();
        store.append_records(run.id, &[], &records).await?;
        ids.push(run.id);
    }
    let started = Instant::now();
    let found = store.runs_by_ids(&ids).await?;
    let stored = store.results_of_runs(&ids).await?;
    let comparison = athanor_core::compare::compare(&found, &stored, chrono::Utc::now());
    let encoded = serde_json::to_vec(&comparison)?;
    let seconds = started.elapsed().as_secs_f64();
    if comparison.runs.len() != runs || comparison.results.len() != results {
        bail!("compare bench built an incomplete view");
    }
    Ok((seconds * 1000.0, encoded.len()))
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

async fn sqlite_store(dir: &tempfile::TempDir) -> Result<Store> {
    Ok(Store::connect(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?)
}

struct PgBench {
    admin: String,
    name: String,
}

impl PgBench {
    async fn create() -> Result<(PgBench, Store)> {
        let admin =
            std::env::var("ATHANOR_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("athanor_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .with_context(|| format!("PostgreSQL at {admin}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
        let url = format!("{}/{name}", admin.rsplit_once('/').map_or(admin.as_str(), |(server, _)| server));
        let store = Store::connect(&url).await?;
        Ok((PgBench { admin, name }, store))
    }

    async fn drop_database(self, store: Store) -> Result<()> {
        store.close().await;
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.admin).await?;
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).execute(&mut conn).await?;
        Ok(())
    }
}

/// MLflow's throughput on the same workload, if a Python with MLflow was given.
fn mlflow(python: &str, records: u64) -> Result<f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mlflow_bench.py");
    let output = Command::new(python).arg(script).arg(records.to_string()).output().context("running MLflow")?;
    if !output.status.success() {
        bail!("MLflow benchmark failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().context("MLflow benchmark printed nothing")?;
    let parsed: serde_json::Value = serde_json::from_str(line)?;
    let seconds = parsed["seconds"].as_f64().context("no seconds in MLflow output")?;
    Ok(records as f64 / seconds)
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<()> {
    // Found before anything is measured, so a missing server binary fails at once.
    let athanor = server::binary(arg("--athanor"))?;
    if std::env::args().any(|a| a == "--only-server") {
        let rows = server::measure(&athanor).await?;
        println!("| measurement | value |");
        println!("| --- | ---: |");
        server::print(&rows);
        return Ok(());
    }
    let lines: u64 = arg("--lines").map(|n| n.parse()).transpose()?.unwrap_or(1_000_000);
    let mlflow_records: u64 = arg("--mlflow-records").map(|n| n.parse()).transpose()?.unwrap_or(100_000);

    let dir = tempfile::tempdir()?;
    let sqlite = sqlite_store(&dir).await?;
    // A short burst that fits in the channel measures the pure cost of a call, without back-pressure; the best
    // of five, since the first also pays for warming allocator and caches.
    let mut burst_cost = f64::MAX;
    for _ in 0..5 {
        burst_cost = burst_cost.min(firehose(&sqlite, BURST_LINES).await?.ns_per_call);
    }
    // Throughput: the median of three runs, as the machine's other load moves single runs by ±10 %.
    // Each in a fresh database file, so the runs measure the same thing rather than an ever larger file.
    let mut runs = Vec::new();
    for _ in 0..3 {
        let fresh_dir = tempfile::tempdir()?;
        let fresh = sqlite_store(&fresh_dir).await?;
        runs.push(firehose(&fresh, lines).await?);
        fresh.close().await;
    }
    runs.sort_by(|a, b| a.lines_per_second.total_cmp(&b.lines_per_second));
    let on_sqlite = runs.swap_remove(1);
    // Peak memory of the runtime path, read before the store-only row below builds its million rows in memory.
    let rss = peak_rss_mib();
    // The same workload from a Python process through the protocol; median of three, fresh databases.
    let mut python_runs = Vec::new();
    for _ in 0..3 {
        let fresh_dir = tempfile::tempdir()?;
        let fresh = sqlite_store(&fresh_dir).await?;
        python_runs.push(persisted_per_second(&fresh, Box::new(python_firehose()), lines).await?);
        fresh.close().await;
    }
    python_runs.sort_by(f64::total_cmp);
    let python_rate = python_runs[1];
    let rss_after_python = peak_rss_mib();
    let store_rate = store_only(&sqlite, lines).await?;

    let (compare_ms, compare_bytes) = compare_view(&sqlite, 1_000, 50).await?;

    let (pg, postgres) = PgBench::create().await?;
    let on_postgres = firehose(&postgres, lines).await;
    pg.drop_database(postgres).await?;
    let on_postgres = on_postgres?;

    let server_rows = server::measure(&athanor).await?;

    let mlflow_rate = match arg("--mlflow-python") {
        Some(python) => Some(mlflow(&python, mlflow_records)?),
        None => None,
    };

    println!("| measurement | value |");
    println!("| --- | ---: |");
    println!(
        "| log lines persisted per second, one run, SQLite ({lines} lines, median of 3) | {:.0} |",
        on_sqlite.lines_per_second
    );
    println!(
        "| log lines persisted per second, one run, PostgreSQL ({lines} lines) | {:.0} |",
        on_postgres.lines_per_second
    );
    println!(
        "| log lines persisted per second, a Python command experiment (`clients/python`, fd 3), SQLite ({lines} lines, median of 3) | {python_rate:.0} |"
    );
    println!("| Python command ÷ in-process Rust, SQLite | {:.2} |", python_rate / on_sqlite.lines_per_second);
    println!("| rows per second through `Store::append_rows` alone, SQLite (no runtime) | {store_rate:.0} |");
    println!("| ns per `log()` call, burst of {BURST_LINES} (writer keeping up; best of 5) | {burst_cost:.0} |");
    println!(
        "| ns per `log()` call, sustained {lines} lines on SQLite (includes back-pressure waits) | {:.0} |",
        on_sqlite.ns_per_call
    );
    println!(
        "| compare view of 1000 runs × 50 numeric results, server side, SQLite (ms; {:.1} MiB of JSON) | {compare_ms:.0} |",
        compare_bytes as f64 / 1_048_576.0
    );
    if let Some(rss) = rss {
        println!("| peak RSS after the SQLite run, whole process (MiB) | {rss:.1} |");
    }
    if let Some(rss) = rss_after_python {
        println!("| peak RSS after the Python command runs too, Athanor's process (MiB) | {rss:.1} |");
    }
    server::print(&server_rows);
    match mlflow_rate {
        Some(rate) => {
            println!("| MLflow `log_batch` into SQLite, records per second ({mlflow_records} records) | {rate:.0} |");
            println!("| Athanor SQLite ÷ MLflow | {:.0}× |", on_sqlite.lines_per_second / rate);
            println!("| Athanor Python command ÷ MLflow (both Python clients) | {:.0}× |", python_rate / rate);
        }
        None => println!("| MLflow | not measured (pass --mlflow-python) |"),
    }
    Ok(())
}
