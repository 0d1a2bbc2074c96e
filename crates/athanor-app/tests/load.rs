//! The reliability suite: the real server under the loads a shared server meets, judged by what its users would
//! notice.
//!
//! - **100 viewers on 100 live runs**: every stream carries every line its run stored, once, in `seq` order, and
//!   ends with the run's final status.
//! - **A websocket flood**: clients breaking the socket's rules, the socket limit full, and a thousand upgrades
//!   more on top. The refused get `503`; the dashboard, the API and the admitted viewers keep working; the server
//!   process stays under a stated memory bound.
//! - **A comparison too large to load**: 100 runs with 10 MB of results each are refused with `413 too_large`
//!   naming the budget, without the server loading them; five of them compare.
//!
//! Speed goals live in the benchmarks (`cargo xtask bench`), not here: these tests bound only how long anything
//! may hang, and print what they saw. They run one at a time: each loads the machine heavily (100 runs, 2,000
//! sockets, a gigabyte of results), and one test's load must not be another's measurement.

// The server half of the crate (and the `athanor` binary) exist only with `ssr`.
#![cfg(feature = "ssr")]

use athanor_app::error::AppError;
use athanor_app::live::{LiveEvent, WatchRequest};
use athanor_app::server::{start, Config, Server};
use athanor_app::socket::LiveLimits;
use athanor_core::{Description, ExperimentName, InstanceDraft, InstanceName, ResultRecord};
use athanor_core::{LifecycleEvent, Run, RunEvent, RunId, RunStatus};
use athanor_store::{LogQuery, Store};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A safety net so a regression fails instead of hanging: the longest any one answer or event may take. Nothing
/// waits for it to pass; it is long because two cores in a debug build carry a hundred runs here.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// One load test at a time (see the module documentation). A tokio mutex: held across awaits, never poisoned.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// A request as the browser sends it (server_fn's framing: a tag byte, 0 for a value, then JSON).
fn request(request: &WatchRequest) -> Message {
    let mut bytes = vec![0];
    bytes.extend(serde_json::to_vec(request).unwrap());
    Message::binary(bytes)
}

/// What the server sent next.
#[derive(Debug)]
enum Received {
    Event(Box<LiveEvent>),
    Error(AppError),
    /// The close frame's code and reason, if it had one.
    Close(Option<(u16, String)>),
    /// The connection ended without a close frame.
    Ended,
}

async fn receive(socket: &mut Socket) -> Received {
    loop {
        let message = tokio::time::timeout(HANG_LIMIT, socket.next()).await.expect("the server answers in time");
        return match message {
            Some(Ok(Message::Binary(bytes))) => match bytes.split_first() {
                Some((0, json)) => Received::Event(Box::new(serde_json::from_slice(json).unwrap())),
                Some((1, json)) => Received::Error(serde_json::from_slice(json).unwrap()),
                other => panic!("not server_fn's framing: {other:?}"),
            },
            Some(Ok(Message::Close(frame))) => {
                Received::Close(frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
            Some(Err(_)) | None => Received::Ended,
        };
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------------------------
// 100 viewers on 100 live runs
// ---------------------------------------------------------------------------------------------------------------

/// Runs executing and watched at once.
const LIVE_RUNS: usize = 100;
/// Lines each run logs: a few thousand, one `log()` call each.
const LINES_PER_RUN: u64 = 2_000;
/// Each run's steady pace: 100 runs make 20,000 lines a second in all, for about ten seconds.
const LINES_PER_SECOND: u64 = 200;

/// Stops an in-process server however the test ends.
struct InProcess(Server);

impl Drop for InProcess {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one viewer saw of its run.
#[derive(Debug, Default)]
struct Followed {
    /// Whether the stream began with the run's snapshot.
    began_with_snapshot: bool,
    /// Every record's `seq` (logs and results), in arrival order.
    seqs: Vec<i64>,
    /// Every log line as (`seq`, text), in arrival order.
    lines: Vec<(i64, String)>,
    /// The terminal status the stream ended with.
    ended: Option<RunStatus>,
}

/// Open a socket for `run` from its start, as a page does, and read it until the run's terminal status.
async fn follow(url: String, run: RunId) -> Followed {
    let (mut socket, _) = tokio::time::timeout(HANG_LIMIT, tokio_tungstenite::connect_async(&url))
        .await
        .expect("the upgrade is answered in time")
        .expect("the upgrade is accepted");
    socket.send(request(&WatchRequest::Run { run_id: run, after_seq: 0 })).await.unwrap();
    let mut seen = Followed::default();
    let mut first = true;
    loop {
        let event = match receive(&mut socket).await {
            Received::Event(event) => *event,
            other => panic!("run {run}: the stream broke off after {} records: {other:?}", seen.seqs.len()),
        };
        match event {
            LiveEvent::Run(RunEvent::Snapshot { .. }) => seen.began_with_snapshot = first,
            LiveEvent::Run(RunEvent::Records { logs, results }) => {
                // Each list is sorted on its own; together they continue the run's one sequence.
                let mut seqs: Vec<i64> = logs.iter().map(|log| log.seq).chain(results.iter().map(|r| r.seq)).collect();
                seqs.sort_unstable();
                seen.seqs.extend(seqs);
                seen.lines.extend(logs.into_iter().map(|log| (log.seq, log.message)));
            }
            LiveEvent::Run(RunEvent::Status(run)) if run.status.is_terminal() => {
                seen.ended = Some(run.status);
                break;
            }
            LiveEvent::Run(_) => {}
            LiveEvent::Lifecycle(other) => panic!("run {run}: a lifecycle event on a run's stream: {other:?}"),
        }
        first = false;
    }
    // The server keeps a finished run's socket open until the page closes it, as a page does here.
    let _ = socket.close(None).await;
    seen
}

async fn post_json(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {url}: {error}"));
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "POST {url} answered {status}: {text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_viewers_each_see_every_line_of_their_live_run_in_order_and_its_end() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::in_folder(dir.path());
    // Every run executes at once, so every stream is live while the others are.
    config.runtime.max_concurrent_runs = LIVE_RUNS;
    let server = InProcess(start(config).await.unwrap());
    let base = format!("http://{}", server.0.addr);
    let url = format!("ws://{}/api/watch", server.0.addr);
    let client = reqwest::Client::builder().timeout(HANG_LIMIT).build().unwrap();

    let config = json!({"lines": LINES_PER_RUN, "lines_per_second": LINES_PER_SECOND, "batch": 1});
    let instance = post_json(
        &client,
        &format!("{base}/api/v1/instances"),
        json!({"experiment": "chatty", "name": "steady", "config": config}),
    )
    .await;
    let instance_id = instance["id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    let mut viewers = Vec::with_capacity(LIVE_RUNS);
    for _ in 0..LIVE_RUNS {
        let run: Run = serde_json::from_value(
            post_json(&client, &format!("{base}/api/v1/instances/{instance_id}/runs"), json!({})).await,
        )
        .unwrap();
        // Each viewer opens its socket once its run has started, so most join a stream already under way.
        viewers.push((run.id, tokio::spawn(follow(url.clone(), run.id))));
    }

    let store = server.0.state.service.store();
    let mut lines = 0;
    for (run, viewer) in viewers {
        let seen = viewer.await.expect("the viewer finished");
        assert!(seen.began_with_snapshot, "run {run}: the stream begins with the run as it is");
        // Strictly increasing, no gap, no duplicate: the n-th record to arrive is `seq` n.
        if let Some((index, seq)) = seen.seqs.iter().enumerate().find(|(index, seq)| **seq != *index as i64 + 1) {
            let before = if index == 0 { "the start".to_owned() } else { format!("seq {}", seen.seqs[index - 1]) };
            panic!("run {run}: after {before} came seq {seq} (record {} of the stream)", index + 1);
        }
        let stored: Vec<(i64, String)> = store
            .logs(run, &LogQuery::first(LINES_PER_RUN as u32 + 1))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|log| (log.seq, log.message))
            .collect();
        assert_eq!(stored.len() as u64, LINES_PER_RUN, "run {run}: the run stored every line it logged");
        assert_eq!(store.count_logs(run, &[]).await.unwrap(), stored.len() as i64);
        assert_eq!(seen.lines.len(), stored.len(), "run {run}: every stored line arrived");
        assert!(seen.lines == stored, "run {run}: the lines that arrived are the lines stored");
        assert_eq!(seen.ended, Some(RunStatus::Completed), "run {run}: the stream ends with the final status");
        lines += seen.lines.len();
    }
    eprintln!("{LIVE_RUNS} live runs, {lines} lines, each run followed by its own socket: {:.1?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------------------------
// The real binary, for what is measured per process
// ---------------------------------------------------------------------------------------------------------------

/// The `athanor` binary serving a SQLite file in a folder of its own; killed however the test ends.
struct ServerProcess {
    child: Child,
    addr: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    /// Start the binary on a free port over `database_url` and wait until it logs that it is serving (recovered,
    /// bound, ready): an event, rather than probing the port. It seeds the demo instances, as a first start does.
    async fn start(dir: &Path, database_url: &str) -> ServerProcess {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_athanor"))
            // Its own folder: no `athanor.toml` or token file of this checkout is read.
            .current_dir(dir)
            .env("DATABASE_URL", database_url)
            .env("ATHANOR_ADDR", &addr)
            .env_remove("ATHANOR_TOKEN")
            .env_remove("ATHANOR_EXPERIMENTS")
            .env_remove("ATHANOR_SEED_DEMOS")
            .env("RUST_LOG", "warn,athanor=info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the athanor binary");
        let stderr = child.stderr.take().expect("stderr is piped");
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
        let server = ServerProcess { child, addr };
        tokio::time::timeout(HANG_LIMIT, ready)
            .await
            .expect("the server did not start serving in time")
            .expect("the server exited before serving");
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn socket_url(&self) -> String {
        format!("ws://{}/api/watch", self.addr)
    }

    /// A line of `/proc/<pid>/status` in MiB: `VmRSS` (resident now) or `VmHWM` (the most ever resident).
    fn memory_mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|line| line.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
        let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024.0
    }
}

// ---------------------------------------------------------------------------------------------------------------
// A websocket flood
// ---------------------------------------------------------------------------------------------------------------

/// Upgrade attempts beyond the full socket limit.
const FLOOD: usize = 1_000;
/// Clients of each rule-breaking kind (an oversized message, a second message).
const RULE_BREAKERS: usize = 100;
/// Connections the rule breakers and the flood open at once: a steady storm rather than one burst of SYNs.
const CONCURRENCY: usize = 64;
/// The server process's memory bound through the flood (the most it is ever resident, `VmHWM`): a promise that
/// the socket limit bounds memory. Measured on 2 cores with this debug build: ~42 MiB idle and ~180 MiB with
/// 1,000 open sockets, nearly all of it ~128 KiB per socket of websocket read buffer (tungstenite's default,
/// zero-filled to its capacity on every read). 256 MiB leaves room for SQLite's page cache; a socket or a refusal
/// holding more than its bounds allow would cross it.
const FLOOD_MEMORY_BOUND_MIB: f64 = 256.0;

/// What a rule-breaking client was told before its socket ended: the error's text and the close code (`None`
/// when the connection ended first, which a client may see when the server closes while it is still sending).
async fn told(socket: &mut Socket) -> Option<(String, Option<u16>)> {
    loop {
        return match receive(socket).await {
            // The lifecycle topic of a socket that asked for it before breaking a rule.
            Received::Event(_) => continue,
            Received::Error(AppError::Invalid { message, .. }) => match receive(socket).await {
                Received::Close(Some((code, _))) => Some((message, Some(code))),
                Received::Ended => Some((message, None)),
                other => panic!("expected the socket to close after the error, got {other:?}"),
            },
            Received::Ended => None,
            other => panic!("expected the reason as an error first, got {other:?}"),
        };
    }
}

async fn connect(url: &str) -> Result<Socket, WsError> {
    tokio::time::timeout(HANG_LIMIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("the upgrade is answered in time")
        .map(|(socket, _)| socket)
}

/// A socket once the server admits it: refused with `503` while every place is taken, so try again until one frees
/// (each attempt awaits its answer; the deadline turns a place never freed into a failure).
async fn admitted(url: &str) -> Socket {
    let deadline = Instant::now() + HANG_LIMIT;
    loop {
        match connect(url).await {
            Ok(socket) => return socket,
            Err(WsError::Http(response)) if response.status() == 503 && Instant::now() < deadline => {
                tokio::task::yield_now().await;
            }
            Err(other) => panic!("the upgrade failed: {other:?}"),
        }
    }
}

/// Sends a request padded past the 4 KiB limit; returns what it was told.
async fn oversized(url: String) -> Option<(String, Option<u16>)> {
    let mut socket = admitted(&url).await;
    let mut padded = vec![0];
    padded.extend(serde_json::to_vec(&WatchRequest::Lifecycle).unwrap());
    padded.resize(2 * LiveLimits::default().max_message_bytes, b' ');
    let _ = socket.send(Message::binary(padded)).await;
    told(&mut socket).await
}

/// Asks twice on one socket; returns what it was told.
async fn asks_twice(url: String) -> Option<(String, Option<u16>)> {
    let mut socket = admitted(&url).await;
    socket.send(request(&WatchRequest::Lifecycle)).await.unwrap();
    socket.send(request(&WatchRequest::Lifecycle)).await.unwrap();
    told(&mut socket).await
}

/// A viewer of the lifecycle topic: admitted (say so on `joined`), then reading until it sees a run end. Returns
/// its socket, still open, and the run it saw end.
async fn lifecycle_viewer(url: String, joined: tokio::sync::mpsc::Sender<()>) -> (Socket, Run) {
    let mut socket = admitted(&url).await;
    socket.send(request(&WatchRequest::Lifecycle)).await.unwrap();
    joined.send(()).await.unwrap();
    loop {
        match receive(&mut socket).await {
            Received::Event(event) => {
                if let LiveEvent::Lifecycle(LifecycleEvent::RunChanged(run)) = *event {
                    if run.status.is_terminal() {
                        return (socket, run);
                    }
                }
            }
            other => panic!("an admitted viewer lost its stream during the flood: {other:?}"),
        }
    }
}

/// One upgrade beyond the limit: its status, `Retry-After` and error.
async fn refused_upgrade(url: String) -> (u16, Option<String>, Option<AppError>) {
    match connect(&url).await {
        Ok(_) => (101, None, None),
        Err(WsError::Http(response)) => {
            let retry = response.headers().get("retry-after").and_then(|value| value.to_str().ok()).map(str::to_owned);
            let error = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).ok();
            (response.status().as_u16(), retry, error)
        }
        Err(other) => panic!("the upgrade failed without an answer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_flood_is_refused_with_503_while_pages_api_and_viewers_keep_working_in_bounded_memory() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("athanor.db").display());
    let server = ServerProcess::start(dir.path(), &database_url).await;
    let url = server.socket_url();
    let client = reqwest::Client::builder().timeout(HANG_LIMIT).build().unwrap();
    let idle = server.memory_mib("VmRSS");
    let cap = LiveLimits::default().max_sockets;

    // Clients that break the socket's rules are told why and closed, all at once.
    let breakers = futures::stream::iter(0..2 * RULE_BREAKERS)
        .map(|n| {
            let url = url.clone();
            async move { (n % 2 == 0, if n % 2 == 0 { oversized(url).await } else { asks_twice(url).await }) }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let limit = LiveLimits::default().max_message_bytes;
    for (oversize, outcome) in breakers {
        if oversize {
            // The server refuses the frame from its header and closes; the client may see the reset first.
            if let Some((message, code)) = outcome {
                assert_eq!(message, format!("a message may be at most {limit} bytes"));
                assert!(matches!(code, Some(1009) | None), "closed with {code:?}");
            }
        } else {
            let (message, code) = outcome.expect("a client asking twice is told why");
            assert_eq!(message, "this socket takes one request and then only listens; open another to ask again");
            assert_eq!(code, Some(1008));
        }
    }

    // Every place taken by a viewer of the lifecycle topic (as the dashboard follows it). A place frees once the
    // server has seen its socket end, so the rule breakers' places come back while these wait for them.
    let (joined, mut joins) = tokio::sync::mpsc::channel(cap);
    let viewers: Vec<_> = (0..cap).map(|_| tokio::spawn(lifecycle_viewer(url.clone(), joined.clone()))).collect();
    for _ in 0..cap {
        tokio::time::timeout(HANG_LIMIT, joins.recv()).await.expect("every viewer is admitted in time");
    }

    // The flood: a thousand more upgrades, while the dashboard, the API and a run are used.
    let flooding = std::sync::atomic::AtomicBool::new(true);
    let flood = async {
        let answers = futures::stream::iter(0..FLOOD)
            .map(|_| refused_upgrade(url.clone()))
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        flooding.store(false, std::sync::atomic::Ordering::Release);
        answers
    };
    let pages = async {
        let mut answered = Vec::new();
        // At least one round, begun while the flood is under way.
        loop {
            for path in ["/", "/api/v1/instances", "/api/v1/runs"] {
                let asked = Instant::now();
                let response = client.get(server.url(path)).send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
                let status = response.status().as_u16();
                let body = response.text().await.unwrap();
                answered.push((path, status, asked.elapsed()));
                assert_eq!(status, 200, "GET {path} during the flood: {body}");
                if path == "/" {
                    assert!(body.contains("GPT-4 Baseline"), "the dashboard lists the instances during the flood");
                }
            }
            if !flooding.load(std::sync::atomic::Ordering::Acquire) {
                return answered;
            }
        }
    };
    let run = async {
        let config = json!({"lines": 100, "lines_per_second": 0, "batch": 1});
        let input = json!({"experiment": "chatty", "name": "during the flood", "config": config});
        let instance = post_json(&client, &server.url("/api/v1/instances"), input).await;
        let path = format!("/api/v1/instances/{}/runs", instance["id"].as_str().unwrap());
        serde_json::from_value::<Run>(post_json(&client, &server.url(&path), json!({})).await).unwrap()
    };
    let flood_started = Instant::now();
    let (answers, answered, started) = tokio::join!(flood, pages, run);
    let flood_took = flood_started.elapsed();

    let expected = AppError::Unavailable(format!(
        "too many live connections: {cap} are open, the most this server keeps; close other tabs or try again later"
    ));
    for (status, retry_after, error) in &answers {
        assert_eq!(*status, 503, "an upgrade beyond the limit is refused");
        assert_eq!(retry_after.as_deref(), Some("10"));
        assert_eq!(error.as_ref(), Some(&expected));
    }
    // Every admitted viewer saw the run started during the flood end.
    let mut held = Vec::with_capacity(cap);
    for viewer in viewers {
        let (socket, ended) =
            tokio::time::timeout(HANG_LIMIT, viewer).await.expect("the viewer saw the run end").unwrap();
        assert_eq!((ended.id, ended.status), (started.id, RunStatus::Completed));
        held.push(socket);
    }
    let peak = server.memory_mib("VmHWM");
    let slowest = answered.iter().map(|(_, _, took)| *took).max().unwrap_or_default();
    eprintln!(
        "flood: {} upgrades refused in {flood_took:.1?}; {} page and API answers during it, the slowest {slowest:.1?}; \
         server memory idle {idle:.1} MiB, peak {peak:.1} MiB, now {:.1} MiB",
        answers.len(),
        answered.len(),
        server.memory_mib("VmRSS")
    );
    assert!(
        peak < FLOOD_MEMORY_BOUND_MIB,
        "the server's memory peaked at {peak:.1} MiB, over the {FLOOD_MEMORY_BOUND_MIB} MiB bound"
    );

    // The viewers leave; their places free up for the next one.
    drop(held);
    let mut socket = admitted(&url).await;
    socket.send(request(&WatchRequest::Lifecycle)).await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// A comparison too large to load
// ---------------------------------------------------------------------------------------------------------------

/// Runs in the comparison that is refused.
const COMPARED_RUNS: usize = 100;
/// Each run's result: 10 MB of JSON.
const RESULT_BYTES: usize = 10_000_000;
/// Runs in the comparison that fits the 64 MiB budget (50 MB).
const FITTING_RUNS: usize = 5;
/// How much the server's peak memory may grow while it refuses the comparison: SQLite's page cache (64 MiB per
/// connection) and the answer, with room to spare. Loading the results would take a gigabyte.
const REFUSAL_GROWTH_BOUND_MIB: f64 = 256.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparing_a_hundred_runs_of_ten_megabytes_each_is_refused_with_413_without_loading_them() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // A gigabyte of results: in memory-backed /dev/shm where there is one, so that writing it (twice, through
    // SQLite's write-ahead log) costs the test seconds rather than a minute of disk; what is asserted is the same.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("athanor.db").display());

    // 100 finished runs with one 10 MB result each, written through the store before the server starts.
    let written = Instant::now();
    let store = Store::connect(&database_url).await.unwrap();
    let draft = InstanceDraft {
        experiment: ExperimentName::parse("big_result").unwrap(),
        name: InstanceName::parse("ten megabytes each").unwrap(),
        description: Description::parse("").unwrap(),
        config: json!({"layers": 1000, "units": 1000}),
    };
    let instance = store.create_instance(&draft).await.unwrap();
    // A text of 10 MB as one result value (quotes included); the same for every run, built once.
    let text: String = "weights ".repeat(RESULT_BYTES / 8).chars().take(RESULT_BYTES - 2).collect();
    let record = ResultRecord { seq: 1, ts: chrono::Utc::now(), key: "report".into(), value: Value::String(text) };
    let mut ids = Vec::with_capacity(COMPARED_RUNS);
    for _ in 0..COMPARED_RUNS {
        let run = store.create_run(instance.id, &draft.config, "1").await.unwrap();
        store.transition_run(run.id, RunStatus::Running, None).await.unwrap();
        store.transition_run(run.id, RunStatus::Completed, None).await.unwrap();
        ids.push(run.id);
    }
    // The first run's result goes through the store as a run's would; the others get a copy made inside SQLite,
    // since pushing a gigabyte through a debug build's JSON encoder would take most of a minute.
    store.append_records(ids[0], &[], std::slice::from_ref(&record)).await.unwrap();
    let mut sqlite = <sqlx::SqliteConnection as sqlx::Connection>::connect(&database_url).await.unwrap();
    for id in &ids[1..] {
        sqlx::query(
            "INSERT INTO run_results (run_id, seq, ts, key, value) SELECT $1, seq, ts, key, value FROM run_results \
             WHERE run_id = $2",
        )
        .bind(id.to_string())
        .bind(ids[0].to_string())
        .execute(&mut sqlite)
        .await
        .unwrap();
    }
    drop(sqlite);
    store.close().await;
    eprintln!("compare: {COMPARED_RUNS} runs × {RESULT_BYTES} bytes written in {:.1?}", written.elapsed());

    let server = ServerProcess::start(dir.path(), &database_url).await;
    let client = reqwest::Client::builder().timeout(HANG_LIMIT).build().unwrap();
    let compare = |ids: &[RunId]| {
        let list: Vec<String> = ids.iter().map(ToString::to_string).collect();
        server.url(&format!("/api/v1/compare?runs={}", list.join(",")))
    };
    let before = server.memory_mib("VmHWM");

    let asked = Instant::now();
    let response = client.get(compare(&ids)).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let refused_in = asked.elapsed();
    let after = server.memory_mib("VmHWM");
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "too_large");
    let message = body["message"].as_str().unwrap();
    // The results as stored: the value's JSON text and the key, per run.
    let stored = (COMPARED_RUNS * (RESULT_BYTES + "report".len())) as f64 / 1_048_576.0;
    assert!(message.contains(&format!("these {COMPARED_RUNS} runs have {stored:.1} MiB of results")), "{message}");
    assert!(message.contains("more than the 64.0 MiB a comparison loads"), "the budget is named: {message}");
    assert!(
        after - before < REFUSAL_GROWTH_BOUND_MIB,
        "refusing the comparison took the server from {before:.1} to {after:.1} MiB at its peak"
    );

    let asked = Instant::now();
    let response = client.get(compare(&ids[..FITTING_RUNS])).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let compared_in = asked.elapsed();
    assert_eq!(status, 200, "{}", &text[..text.len().min(500)]);
    let comparison: Value = serde_json::from_str(&text).unwrap();
    let columns: Vec<&str> =
        comparison["runs"].as_array().unwrap().iter().map(|run| run["id"].as_str().unwrap()).collect();
    let expected: Vec<String> = ids[..FITTING_RUNS].iter().map(ToString::to_string).collect();
    assert_eq!(columns, expected, "the runs, in the order asked");
    let report = comparison["results"].as_array().unwrap().iter().find(|row| row["key"] == "report").unwrap();
    let values = report["values"].as_array().unwrap();
    assert_eq!(values.len(), FITTING_RUNS);
    assert!(values.iter().all(|value| value == &record.value), "each run's whole result is compared");
    eprintln!(
        "compare: {COMPARED_RUNS} runs refused in {refused_in:.1?} (peak memory {before:.1} → {after:.1} MiB); \
         {FITTING_RUNS} runs compared in {compared_in:.1?} ({:.1} MiB answer, peak now {:.1} MiB)",
        text.len() as f64 / 1_048_576.0,
        server.memory_mib("VmHWM")
    );
}
