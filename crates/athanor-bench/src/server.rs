//! Rows measured against the real server: the release `athanor` binary as a child process, spoken to over HTTP and
//! over its live websocket the way the dashboard speaks to it.
//!
//! - The server's resident memory idle, and at its peak while 100 live runs are each followed by a viewer.
//! - How long a log line takes from `ctx.log(..)` to a viewer: the experiment stamps each line's `ts` as it logs
//!   it, and the viewer subtracts that from its own clock once the line has arrived and been decoded (one machine,
//!   one clock). Only lines logged after the viewer's subscription was live count: earlier ones are a catch-up
//!   read from the database, not latency.
//! - What the server writes to disk per line while it does that (`/proc/<pid>/io`, `write_bytes`: what reached
//!   the block layer, the write-ahead log and its checkpoints included).
//! - How long a run page takes for a run of a million lines, against one of a hundred: the server-rendered page
//!   (`GET /runs/<id>`) and the server function behind it (`get_run_page`).

use anyhow::{bail, Context, Result};
use athanor_core::{Run, RunEvent, RunId};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Live runs at once, each followed by its own websocket viewer.
pub const LIVE_RUNS: usize = 100;
/// Lines each live run logs, one `log()` call each (the `chatty` demo).
pub const LIVE_LINES: u64 = 2_000;
/// Each live run's pace: 100 runs make 10,000 lines a second in all, for 20 seconds a round.
pub const LIVE_LINES_PER_SECOND: u64 = 100;
/// The long run whose page is timed, and the short one it is compared with.
pub const LONG_RUN_LINES: u64 = 1_000_000;
/// The short run.
pub const SHORT_RUN_LINES: u64 = 100;
/// Rounds of the live workload, each on a fresh server; each figure is the median of the rounds' figures, since
/// the machine's other load moves a single round's tail by hundreds of milliseconds.
pub const LIVE_ROUNDS: usize = 3;
/// Requests timed per page, after one untimed; the median is reported.
pub const PAGE_SAMPLES: usize = 11;
/// A bound on any one answer or event, so a broken server fails the benchmark instead of hanging it.
const HANG_LIMIT: Duration = Duration::from_secs(120);

/// What the server rows measured.
pub struct ServerRows {
    /// Resident memory after start and one dashboard page (MiB).
    pub idle_mib: f64,
    /// The most ever resident (`VmHWM`) by the end of the live runs (MiB).
    pub watched_peak_mib: f64,
    /// The same, in the round that used the most (MiB).
    pub watched_peak_max_mib: f64,
    /// Bytes the server wrote to disk during the live runs, per line they logged (KiB).
    pub written_per_line_kib: f64,
    /// Log line → viewer latency, median (ms).
    pub latency_p50_ms: f64,
    /// Log line → viewer latency, 99th percentile (ms).
    pub latency_p99_ms: f64,
    /// The slowest line of any round (ms).
    pub latency_max_ms: f64,
    /// Lines the latencies were measured on, in each round.
    pub latency_lines: usize,
    /// `GET /runs/<id>` of the long run, median (ms).
    pub page_long_ms: f64,
    /// `GET /runs/<id>` of the short run, median (ms).
    pub page_short_ms: f64,
    /// `get_run_page` of the long run, median (ms).
    pub overview_long_ms: f64,
    /// `get_run_page` of the short run, median (ms).
    pub overview_short_ms: f64,
    /// The long run's line count as the run page's server function reports it.
    pub long_total: i64,
}

/// Measure every server row with the `athanor` binary at `binary`.
pub async fn measure(binary: &Path) -> Result<ServerRows> {
    let mut rounds = Vec::with_capacity(LIVE_ROUNDS);
    for _ in 0..LIVE_ROUNDS {
        rounds.push(live_runs(binary).await?);
    }
    let median = |figure: &dyn Fn(&Live) -> f64| {
        let mut figures: Vec<f64> = rounds.iter().map(figure).collect();
        figures.sort_by(f64::total_cmp);
        figures[figures.len() / 2]
    };
    let pages = run_pages(binary).await?;
    Ok(ServerRows {
        idle_mib: median(&|live| live.idle_mib),
        watched_peak_mib: median(&|live| live.peak_mib),
        watched_peak_max_mib: rounds.iter().map(|live| live.peak_mib).fold(0.0, f64::max),
        written_per_line_kib: median(&|live| {
            live.written_bytes as f64 / (LIVE_RUNS as f64 * LIVE_LINES as f64) / 1024.0
        }),
        latency_p50_ms: median(&|live| percentile(&live.latencies_ms, 0.50)),
        latency_p99_ms: median(&|live| percentile(&live.latencies_ms, 0.99)),
        latency_max_ms: rounds.iter().filter_map(|live| live.latencies_ms.last().copied()).fold(0.0, f64::max),
        latency_lines: median(&|live| live.latencies_ms.len() as f64) as usize,
        page_long_ms: pages.page_long_ms,
        page_short_ms: pages.page_short_ms,
        overview_long_ms: pages.overview_long_ms,
        overview_short_ms: pages.overview_short_ms,
        long_total: pages.long_total,
    })
}

/// The release server binary: `--athanor <path>`, or `athanor` beside this benchmark's own binary (both are built
/// into the same target folder; `cargo xtask bench` builds it first).
pub fn binary(given: Option<String>) -> Result<PathBuf> {
    let path = match given {
        Some(path) => PathBuf::from(path),
        None => std::env::current_exe()?.parent().context("the benchmark binary has no folder")?.join("athanor"),
    };
    if !path.is_file() {
        bail!(
            "the server binary {} is missing: build it with `cargo build --release -p athanor-app --features ssr \
             --bin athanor` (cargo xtask bench does), or pass --athanor <path>",
            path.display()
        );
    }
    Ok(path)
}

/// The `athanor` binary serving a fresh SQLite file in a folder of its own; killed when dropped.
struct ServerProcess {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Start it and wait until it logs that it is serving (recovered, bound, ready).
    async fn start(binary: &Path, max_concurrent_runs: usize) -> Result<ServerProcess> {
        let dir = tempfile::tempdir()?;
        let addr = format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
        let mut child = Command::new(binary)
            .arg("serve")
            // Its own folder, so no `athanor.toml` or token file of this checkout is read.
            .current_dir(dir.path())
            .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("athanor.db").display()))
            .env("ATHANOR_ADDR", &addr)
            .env("ATHANOR_MAX_CONCURRENT_RUNS", max_concurrent_runs.to_string())
            .env("ATHANOR_SEED_DEMOS", "0")
            .env_remove("ATHANOR_TOKEN")
            .env_remove("ATHANOR_EXPERIMENTS")
            .env("RUST_LOG", "warn,athanor=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (serving, ready) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut serving = Some(serving);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Athanor is serving") {
                    if let Some(serving) = serving.take() {
                        let _ = serving.send(());
                    }
                }
                eprintln!("[server] {line}");
            }
        });
        let server = ServerProcess { child, addr, _dir: dir };
        tokio::time::timeout(HANG_LIMIT, ready)
            .await
            .context("the server did not start serving in time")?
            .context("the server exited before serving")?;
        Ok(server)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Bytes the process has caused to be written to storage (`write_bytes` of `/proc/<pid>/io`).
    fn written_bytes(&self) -> Result<u64> {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.child.id()))?;
        let line = io.lines().find(|line| line.starts_with("write_bytes:")).context("no write_bytes")?;
        Ok(line.split_whitespace().nth(1).context("no value")?.parse()?)
    }

    /// A line of `/proc/<pid>/status` in MiB: `VmRSS` (resident now) or `VmHWM` (the most ever resident).
    fn memory_mib(&self, field: &str) -> Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status.lines().find(|line| line.starts_with(field)).with_context(|| format!("no {field}"))?;
        let kib: f64 = line.split_whitespace().nth(1).context("no value")?.parse()?;
        Ok(kib / 1024.0)
    }
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(HANG_LIMIT).build()?)
}

/// POST a JSON body; the answer's JSON, which must come with `201 Created`.
async fn create(client: &reqwest::Client, url: &str, body: Value) -> Result<Value> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    if status != 201 {
        bail!("POST {url} answered {status}: {text}");
    }
    Ok(serde_json::from_str(&text)?)
}

/// A `chatty` instance logging `lines` lines at `per_second` (0: as fast as it can) in `log_batch` calls of
/// `batch`; returns its id.
async fn chatty(
    server: &ServerProcess,
    client: &reqwest::Client,
    lines: u64,
    per_second: u64,
    batch: u64,
) -> Result<String> {
    let config = json!({"lines": lines, "lines_per_second": per_second, "batch": batch});
    let input = json!({"experiment": "chatty", "name": format!("{lines} lines"), "config": config});
    let instance = create(client, &server.url("/api/v1/instances"), input).await?;
    Ok(instance["id"].as_str().context("the instance's id")?.to_owned())
}

async fn start_run(server: &ServerProcess, client: &reqwest::Client, instance: &str) -> Result<Run> {
    let run = create(client, &server.url(&format!("/api/v1/instances/{instance}/runs")), json!({})).await?;
    Ok(serde_json::from_value(run)?)
}

/// One message on a run's live socket, as the dashboard decodes it (`athanor_app::live::LiveEvent`, whose other
/// variant a run's socket never carries).
#[derive(Deserialize)]
enum LiveEvent {
    Run(RunEvent),
}

/// What one viewer measured.
struct Viewed {
    /// Every record's `seq` (logs and results), in arrival order.
    seqs: Vec<i64>,
    latencies_ms: Vec<f64>,
    /// The run as the stream's terminal status showed it.
    ended: Option<Run>,
}

/// Follow `run` over the live socket from its start until its terminal status, as a run page does.
async fn view(url: String, run: RunId) -> Result<Viewed> {
    let (mut socket, _) =
        tokio::time::timeout(HANG_LIMIT, tokio_tungstenite::connect_async(&url)).await.context("upgrade")??;
    // server_fn's framing: a tag byte (0 a value, 1 an error), then JSON.
    let mut request = vec![0];
    request.extend(serde_json::to_vec(&json!({"Run": {"run_id": run, "after_seq": 0}}))?);
    socket.send(Message::binary(request)).await?;
    let mut viewed = Viewed { seqs: Vec::new(), latencies_ms: Vec::new(), ended: None };
    // When the subscription was known to be live: lines logged before are a catch-up, not latency.
    let mut live_since = None;
    loop {
        let message = tokio::time::timeout(HANG_LIMIT, socket.next()).await.context("the stream stalled")?;
        let bytes = match message {
            Some(Ok(Message::Binary(bytes))) => bytes,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => bail!("run {run}: the stream broke off: {other:?}"),
        };
        let (tag, body) = bytes.split_first().context("an empty message")?;
        if *tag != 0 {
            bail!("run {run}: the server sent an error: {}", String::from_utf8_lossy(body));
        }
        let LiveEvent::Run(event) = serde_json::from_slice(body)?;
        let now = chrono::Utc::now();
        match event {
            RunEvent::Snapshot { .. } => live_since = Some(now),
            RunEvent::Records { logs, results } => {
                let mut seqs: Vec<i64> = logs.iter().map(|log| log.seq).chain(results.iter().map(|r| r.seq)).collect();
                seqs.sort_unstable();
                viewed.seqs.extend(seqs);
                if let Some(since) = live_since {
                    viewed.latencies_ms.extend(
                        logs.iter()
                            .filter(|log| log.ts >= since)
                            .map(|log| (now - log.ts).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0),
                    );
                }
            }
            RunEvent::Status(ended) if ended.status.is_terminal() => {
                viewed.ended = Some(ended);
                break;
            }
            _ => {}
        }
    }
    let _ = socket.close(None).await;
    Ok(viewed)
}

struct Live {
    idle_mib: f64,
    peak_mib: f64,
    /// Written to disk by the server from the first run's start to the last run's end.
    written_bytes: u64,
    /// Sorted.
    latencies_ms: Vec<f64>,
}

/// 100 live runs at a steady pace, each followed by one viewer: the server's memory and the lines' latency.
async fn live_runs(binary: &Path) -> Result<Live> {
    let server = ServerProcess::start(binary, LIVE_RUNS).await?;
    let client = client()?;
    let dashboard = client.get(server.url("/")).send().await?;
    if !dashboard.status().is_success() {
        bail!("the dashboard answered {}", dashboard.status());
    }
    dashboard.bytes().await?;
    let idle_mib = server.memory_mib("VmRSS")?;
    let written_before = server.written_bytes()?;

    let instance = chatty(&server, &client, LIVE_LINES, LIVE_LINES_PER_SECOND, 1).await?;
    let url = format!("ws://{}/api/watch", server.addr);
    let mut viewers = Vec::with_capacity(LIVE_RUNS);
    for _ in 0..LIVE_RUNS {
        let run = start_run(&server, &client, &instance).await?;
        viewers.push((run.id, tokio::spawn(view(url.clone(), run.id))));
    }
    let mut latencies_ms = Vec::new();
    for (run, viewer) in viewers {
        let viewed = viewer.await??;
        // The measurement counts only if the viewer saw what a page must: every line, once, in order, then the end.
        let ended = viewed.ended.as_ref().map(|run| (run.status, run.error.as_deref()));
        if ended != Some((athanor_core::RunStatus::Completed, None)) {
            bail!("run {run}: its viewer saw it end {ended:?}");
        }
        if let Some(index) = (0..LIVE_LINES as usize).find(|&i| viewed.seqs.get(i) != Some(&(i as i64 + 1))) {
            bail!(
                "run {run}: its viewer received {} records of {LIVE_LINES}, the first out of place seq {:?} where \
                 seq {} belonged (those around it: {:?})",
                viewed.seqs.len(),
                viewed.seqs.get(index),
                index + 1,
                &viewed.seqs[index.saturating_sub(3)..(index + 3).min(viewed.seqs.len())]
            );
        }
        latencies_ms.extend(viewed.latencies_ms);
    }
    latencies_ms.sort_by(f64::total_cmp);
    let written_bytes = server.written_bytes()? - written_before;
    Ok(Live { idle_mib, peak_mib: server.memory_mib("VmHWM")?, written_bytes, latencies_ms })
}

struct Pages {
    page_long_ms: f64,
    page_short_ms: f64,
    overview_long_ms: f64,
    overview_short_ms: f64,
    long_total: i64,
}

/// A run of a million lines and one of a hundred, logged by runs (so whatever the writer keeps about a run is
/// kept), then each one's page timed.
async fn run_pages(binary: &Path) -> Result<Pages> {
    let server = ServerProcess::start(binary, 8).await?;
    let client = client()?;
    let mut runs = Vec::new();
    for lines in [LONG_RUN_LINES, SHORT_RUN_LINES] {
        let instance = chatty(&server, &client, lines, 0, 1_000).await?;
        let run = start_run(&server, &client, &instance).await?;
        let waited = client.get(server.url(&format!("/api/v1/runs/{}/wait?timeout_s=600", run.id))).send().await?;
        let outcome: Value = serde_json::from_str(&waited.text().await?)?;
        if outcome["run"]["status"] != "completed" {
            bail!("the {lines}-line run did not complete: {outcome}");
        }
        runs.push(run.id);
    }
    let (long, short) = (runs[0], runs[1]);

    let page = |run: RunId| {
        let client = client.clone();
        let url = server.url(&format!("/runs/{run}"));
        async move {
            let response = client.get(&url).send().await?;
            let status = response.status();
            let html = response.text().await?;
            if !status.is_success() || !html.contains(&run.to_string()) {
                bail!("GET {url} answered {status} without the run");
            }
            Ok(html)
        }
    };
    let overview = |run: RunId| {
        let client = client.clone();
        let url = server.url("/api/get_run_page");
        async move {
            let response = client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("run_id={run}"))
                .send()
                .await?;
            let status = response.status();
            let text = response.text().await?;
            if !status.is_success() {
                bail!("POST {url} answered {status}: {text}");
            }
            Ok(serde_json::from_str::<Value>(&text)?)
        }
    };
    let page_long_ms = median_ms(|| page(long)).await?;
    let page_short_ms = median_ms(|| page(short)).await?;
    let overview_long_ms = median_ms(|| overview(long)).await?;
    let overview_short_ms = median_ms(|| overview(short)).await?;
    let long_total = overview(long).await?["log_total"].as_i64().context("no log_total in the run page's data")?;
    Ok(Pages { page_long_ms, page_short_ms, overview_long_ms, overview_short_ms, long_total })
}

/// The median time of [`PAGE_SAMPLES`] calls, after one untimed call (which warms caches on both sides).
async fn median_ms<T, F, Fut>(mut call: F) -> Result<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    call().await?;
    let mut times = Vec::with_capacity(PAGE_SAMPLES);
    for _ in 0..PAGE_SAMPLES {
        let started = Instant::now();
        call().await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[PAGE_SAMPLES / 2])
}

/// The value below which `fraction` of `sorted` lie (nearest rank).
fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The rows, in the table's format.
pub fn print(rows: &ServerRows) {
    let total = LIVE_RUNS as u64 * LIVE_LINES_PER_SECOND;
    let rounds = format!("median of {LIVE_ROUNDS} rounds, each on a fresh server");
    println!(
        "| server RSS idle: release `athanor`, SQLite, after start and one dashboard page (MiB; {rounds}) | {:.1} |",
        rows.idle_mib
    );
    println!(
        "| server peak RSS with {LIVE_RUNS} live runs ({LIVE_LINES} lines at {LIVE_LINES_PER_SECOND}/s each), each \
         followed by a websocket viewer (MiB; {rounds}; the most in one round {:.1}) | {:.1} |",
        rows.watched_peak_max_mib, rows.watched_peak_mib
    );
    println!(
        "| server disk writes during those live runs, per line logged (KiB; `/proc/<pid>/io` `write_bytes`, WAL and \
         checkpoints included; {rounds}) | {:.1} |",
        rows.written_per_line_kib
    );
    println!(
        "| log line → websocket viewer latency, p50, {LIVE_RUNS} live runs, {total} lines/s in all (ms; {} lines a \
         round; {rounds}) | {:.1} |",
        rows.latency_lines, rows.latency_p50_ms
    );
    println!(
        "| log line → websocket viewer latency, p99, same (ms; goal < 250; slowest line of any round {:.0}) | {:.1} |",
        rows.latency_max_ms, rows.latency_p99_ms
    );
    println!(
        "| run page `GET /runs/<id>`, {LONG_RUN_LINES} lines (ms, median of {PAGE_SAMPLES}; the page counts {}) | {:.1} |",
        rows.long_total, rows.page_long_ms
    );
    println!(
        "| run page `GET /runs/<id>`, {SHORT_RUN_LINES} lines (ms, median of {PAGE_SAMPLES}) | {:.1} |",
        rows.page_short_ms
    );
    println!(
        "| the run page's server function `get_run_page`, {LONG_RUN_LINES} lines (ms, median of {PAGE_SAMPLES}) | {:.1} |",
        rows.overview_long_ms
    );
    println!(
        "| the run page's server function `get_run_page`, {SHORT_RUN_LINES} lines (ms, median of {PAGE_SAMPLES}) | {:.1} |",
        rows.overview_short_ms
    );
}
