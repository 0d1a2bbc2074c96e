//! The database goes away for two minutes while the real server binary runs experiments on PostgreSQL, then comes
//! back. The server must keep answering HTTP throughout (requests that need the database with an error, within
//! seconds), and afterwards every run must end as it should, with every log line it was allowed to write.
//!
//! The server reaches PostgreSQL through a TCP proxy in this test, whose switch cuts the database off: every
//! proxied connection is closed, and new ones are first closed as soon as they are accepted (as a pooler whose
//! database is gone does), then swallowed without an answer (as a network partition does) until the switch is
//! turned back on.

use athanor_core::{Description, ExperimentName, InstanceDraft, InstanceName, LogRecord, Run, RunStatus};
use athanor_core::{InstanceId, RunId};
use athanor_store::{LogQuery, Store};
use serde_json::json;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How long the database stays unreachable. Longer than sqlx's default 30 s wait for a connection and than the
/// minute the supervisor used to retry a status change: what lasts this long must be waited out, not timed out.
const OUTAGE: Duration = Duration::from_secs(120);

/// How soon a request that needs the database must answer while it is gone: the pool's 5 s wait for a connection
/// (`athanor_store::POSTGRES_ACQUIRE_TIMEOUT`), and room for a busy machine.
const DATABASE_ANSWER_WITHIN: Duration = Duration::from_secs(9);

/// How soon a request that needs no database must answer, outage or not.
const PLAIN_ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// How long the run that logs through the outage waits before its first line: long enough for the quiet run to
/// end while no record is waiting for the database, since a waiting record holds every run's end behind it (ends
/// are written after their records) and the quiet run's status change would then never be tried during the outage.
const LOGGER_DELAY_S: u64 = 40;

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Database {
    /// Forward to PostgreSQL.
    Up,
    /// Close every connection: the server gets an answer at once, that there is no database.
    Refusing,
    /// Accept connections and never answer: the server hears nothing, as across a network partition.
    Swallowing,
}

/// A TCP proxy to PostgreSQL with a switch.
struct Proxy {
    addr: SocketAddr,
    switch: watch::Sender<Database>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (switch, state) = watch::channel(Database::Up);
        let accepting = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                let mode = *state.borrow();
                let state = state.clone();
                let target = target.clone();
                match mode {
                    Database::Up => drop(tokio::spawn(forward(client, target, state))),
                    Database::Refusing => drop(client),
                    Database::Swallowing => drop(tokio::spawn(swallow(client, state))),
                }
            }
        });
        Proxy { addr, switch, accepting }
    }

    fn set(&self, database: Database) {
        self.switch.send_replace(database);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accepting.abort();
        // The connections' tasks end too: their `wait_for` fails once the switch is gone.
    }
}

/// Carry one connection both ways until either side closes it or the database is cut off.
async fn forward(mut client: TcpStream, target: String, mut state: watch::Receiver<Database>) {
    let Ok(mut server) = TcpStream::connect(&target).await else { return };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = state.wait_for(|database| *database != Database::Up) => {}
    }
}

/// Hold a connection without a word until the client gives up or the database is back (then close it).
async fn swallow(mut client: TcpStream, mut state: watch::Receiver<Database>) {
    let mut sink = [0_u8; 1024];
    let gave_up = async { while matches!(client.read(&mut sink).await, Ok(read) if read > 0) {} };
    tokio::select! {
        () = gave_up => {}
        _ = state.wait_for(|database| *database == Database::Up) => {}
    }
}

/// A database of its own on the test server, dropped when the test ends, pass or fail.
struct TestDatabase {
    admin: String,
    name: String,
}

impl TestDatabase {
    async fn create() -> TestDatabase {
        let admin =
            std::env::var("ATHANOR_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("athanor_outage_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|error| panic!("PostgreSQL must run at {admin} for this test: {error}"));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        TestDatabase { admin, name }
    }

    /// The database's URL on `server` (`host:port`).
    fn url_via(&self, server: &str) -> String {
        let (scheme, rest) = self.admin.split_once("://").unwrap();
        let user = rest.rsplit_once('@').map(|(user, _)| format!("{user}@")).unwrap_or_default();
        format!("{scheme}://{user}{server}/{}", self.name)
    }

    /// `host:port` of the PostgreSQL server.
    fn server(&self) -> String {
        let rest = self.admin.split_once("://").unwrap().1;
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        host.split('/').next().unwrap().to_owned()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs outside any async context we could await in: a short-lived runtime on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await {
                    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(&drop).execute(&mut conn).await;
                }
            });
        })
        .join();
    }
}

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything the server wrote to stderr so far.
#[derive(Clone, Default)]
struct ServerLog(Arc<Mutex<Vec<String>>>);

impl ServerLog {
    fn contains(&self, text: &str) -> bool {
        self.0.lock().unwrap().iter().any(|line| line.contains(text))
    }
}

/// Start the binary on `database_url` with the command experiments of `manifest`; the returned receiver fires
/// when it logs that it is serving (after recovery and bind), so the test awaits that event instead of probing
/// the port.
fn spawn_server(
    database_url: &str,
    manifest: &std::path::Path,
) -> (ServerProcess, u16, tokio::sync::oneshot::Receiver<()>, ServerLog) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_athanor"))
        .env("DATABASE_URL", database_url)
        .env("ATHANOR_ADDR", format!("127.0.0.1:{port}"))
        .env("ATHANOR_EXPERIMENTS", manifest)
        .env("ATHANOR_SEED_DEMOS", "0")
        .env("ATHANOR_MAX_CONCURRENT_RUNS", "2")
        .env("RUST_LOG", "warn,athanor=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the athanor binary");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (serving, ready) = tokio::sync::oneshot::channel();
    let log = ServerLog::default();
    let lines = log.clone();
    std::thread::spawn(move || {
        let mut serving = Some(serving);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Athanor is serving") {
                if let Some(serving) = serving.take() {
                    let _ = serving.send(());
                }
            }
            eprintln!("[server] {line}");
            lines.0.lock().unwrap().push(line);
        }
    });
    (ServerProcess(child), port, ready, log)
}

/// Wait for a condition in the database the server process writes. That process offers no event for "the queued
/// run finished", so poll briefly; the deadline turns a hang into a clear failure.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn instance(store: &Store, experiment: &str, name: &str, config: serde_json::Value) -> InstanceId {
    let draft = InstanceDraft {
        experiment: ExperimentName::parse(experiment).unwrap(),
        name: InstanceName::parse(name).unwrap(),
        description: Description::parse("").unwrap(),
        config,
    };
    store.create_instance(&draft).await.unwrap().id
}

/// A client of the server's JSON API that times every answer.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    /// Send a request; returns its status and how long the answer took. A request still unanswered after 30 s is
    /// a hung server, reported as such.
    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> (u16, Duration) {
        let started = Instant::now();
        let response = request
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|error| panic!("{what}: no answer ({error})"));
        let status = response.status().as_u16();
        // The body too: a page that streams must finish streaming.
        response.bytes().await.unwrap_or_else(|error| panic!("{what}: the answer broke off ({error})"));
        (status, started.elapsed())
    }

    async fn get(&self, path: &str) -> (u16, Duration) {
        self.send(self.client.get(format!("{}{path}", self.base)), &format!("GET {path}")).await
    }

    async fn post(&self, path: &str) -> (u16, Duration) {
        self.send(self.client.post(format!("{}{path}", self.base)), &format!("POST {path}")).await
    }

    async fn start_run(&self, instance: InstanceId) -> Run {
        let response =
            self.client.post(format!("{}/api/v1/instances/{instance}/runs", self.base)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 201, "starting a run");
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }
}

async fn run(store: &Store, id: RunId) -> Run {
    store.get_run(id).await.unwrap().unwrap()
}

/// Wait for the end of `id`, which the server writes once the database is back: the API's wait, which answers on
/// the server's own event of the run's end.
async fn end_of(api: &Api, id: RunId, what: &str) -> Run {
    let url = format!("{}/api/v1/runs/{id}/wait?timeout_s=90", api.base);
    let response = api.client.get(url).timeout(Duration::from_secs(120)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "waiting for {what}");
    let outcome: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(outcome["ended"], true, "timed out waiting for {what}: {outcome}");
    serde_json::from_value(outcome["run"].clone()).unwrap()
}

/// Every stored log line of `id`, in `seq` order. Page by page: one read stops at `PAGE_BYTES`.
async fn all_logs(store: &Store, id: RunId) -> Vec<LogRecord> {
    let mut logs = Vec::new();
    let mut query = LogQuery::first(100_000);
    loop {
        let page = store.logs(id, &query).await.unwrap();
        logs.extend(page.items);
        if !page.full {
            return logs;
        }
        query = query.after(page.next_after_seq);
    }
}

async fn all_seqs(store: &Store, id: RunId) -> Vec<i64> {
    all_logs(store, id).await.iter().map(|log| log.seq).collect()
}

fn no_holes(seqs: &[i64]) -> bool {
    seqs.iter().copied().eq(1..=seqs.len() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_minute_database_outage_loses_no_run_and_no_line_and_the_server_keeps_answering() {
    let test_started = Instant::now();
    let database = TestDatabase::create().await;
    let proxy = Proxy::start(database.server()).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("athanor.toml");
    // `quiet` writes nothing (so its end waits for no record); `late_logger` is silent at first, then prints
    // numbered lines (stdout lines become `info` logs) until it is cancelled.
    std::fs::write(
        &manifest,
        format!(
            r#"
[[experiment]]
name = "quiet"
version = "1"
command = ["sleep", "15"]

[[experiment]]
name = "late_logger"
version = "1"
command = ["python3", "-u", "-c", '''
import time
time.sleep({LOGGER_DELAY_S})
i = 0
while True:
    i += 1
    print(f"line {{i}}")
    time.sleep(0.005)
''']
"#
        ),
    )
    .unwrap();

    let (server, port, ready, log) = spawn_server(&database.url_via(&proxy.addr.to_string()), &manifest);
    tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .expect("the server did not start serving within 60 s")
        .expect("the server exited before serving");
    // The test reads and writes the database directly, not through the proxy: it sees what the server stored.
    let direct = Store::connect(&database.url_via(&database.server())).await.unwrap();
    let store = &direct;
    let api = Api { client: reqwest::Client::new(), base: format!("http://127.0.0.1:{port}") };

    let logger = instance(store, "late_logger", "logs through the outage", json!({})).await;
    let quiet = instance(store, "quiet", "ends during the outage", json!({})).await;
    let chatty = json!({"lines": 300, "lines_per_second": 0, "batch": 1});
    let queued = instance(store, "chatty", "waits in the queue", chatty.clone()).await;
    let cancelled_in_outage = instance(store, "chatty", "cancelled during the outage", chatty.clone()).await;
    let after = instance(store, "chatty", "started after the outage", chatty).await;

    // Two runs at once (ATHANOR_MAX_CONCURRENT_RUNS), two wait.
    let logging = api.start_run(logger).await;
    let ending = api.start_run(quiet).await;
    let waiting = api.start_run(queued).await;
    let to_cancel = api.start_run(cancelled_in_outage).await;
    for id in [logging.id, ending.id] {
        eventually("the first two runs to be running", Duration::from_secs(30), || async move {
            (run(store, id).await.status == RunStatus::Running).then_some(())
        })
        .await;
    }
    assert_eq!(run(store, waiting.id).await.status, RunStatus::Pending);
    assert_eq!(run(store, to_cancel.id).await.status, RunStatus::Pending);

    // --- The outage. ---------------------------------------------------------------------------------------
    let cut = Instant::now();
    proxy.set(Database::Refusing);
    let mut refused_answers = 0;
    let mut probes = 0;
    let mut cancel_tried = false;
    let mut start_tried = false;
    let (mut slowest_plain, mut slowest_database) = (Duration::ZERO, Duration::ZERO);
    let mut pace = tokio::time::interval(Duration::from_secs(1));
    while cut.elapsed() < OUTAGE {
        pace.tick().await;
        if cut.elapsed() >= OUTAGE / 2 {
            // The second half: silence instead of refusals, so only the pool's own timeout ends a wait.
            proxy.set(Database::Swallowing);
        }
        let in_outage = cut.elapsed();
        // Every request at once, as users of the dashboard, scripts and MCP clients would send them.
        let run_path = format!("/api/v1/runs/{}", logging.id);
        let ((experiments, plain), (run_answer, run_took), (_, page_took)) =
            tokio::join!(api.get("/api/v1/experiments"), api.get(&run_path), api.get("/"),);
        probes += 1;
        assert_eq!(experiments, 200, "the experiments need no database ({in_outage:?} into the outage)");
        assert!(plain < PLAIN_ANSWER_WITHIN, "GET /api/v1/experiments took {plain:?} ({in_outage:?} in)");
        assert!(run_took < DATABASE_ANSWER_WITHIN, "GET a run took {run_took:?} ({in_outage:?} in)");
        assert!(page_took < DATABASE_ANSWER_WITHIN, "the dashboard took {page_took:?} ({in_outage:?} in)");
        slowest_plain = slowest_plain.max(plain);
        slowest_database = slowest_database.max(run_took).max(page_took);
        if run_answer >= 500 {
            refused_answers += 1;
        }

        if !cancel_tried && in_outage > Duration::from_secs(5) {
            // A cancel of a waiting run during the outage cannot be written: the caller hears so in seconds, and
            // the run must keep its place in the queue rather than vanish from it.
            cancel_tried = true;
            let (status, took) = api.post(&format!("/api/v1/runs/{}/cancel", to_cancel.id)).await;
            assert!(status >= 500, "a cancel the database cannot take is an error, not {status}");
            assert!(took < DATABASE_ANSWER_WITHIN, "the cancel took {took:?}");
        }
        if !start_tried && in_outage > OUTAGE / 2 + Duration::from_secs(5) {
            start_tried = true;
            let (status, took) = api.post(&format!("/api/v1/instances/{after}/runs")).await;
            assert!(status >= 500, "a start the database cannot take is an error, not {status}");
            assert!(took < DATABASE_ANSWER_WITHIN, "the start took {took:?} while the database swallowed packets");
        }
    }
    assert!(cancel_tried && start_tried);
    assert!(
        refused_answers * 2 > probes,
        "the proxy cut the database off: most reads during the outage failed ({refused_answers} of {probes})"
    );
    assert!(log.contains("the database is unavailable"), "the server says loudly that the database is gone");
    // The quiet run ended about 15 s into the outage and its status could not be written since.
    assert_eq!(run(store, ending.id).await.status, RunStatus::Running, "nothing was written during the outage");
    let seqs_at_return = all_seqs(store, logging.id).await.len();

    // --- The database is back. ---------------------------------------------------------------------------------
    proxy.set(Database::Up);
    let back = Instant::now();

    let ended = end_of(&api, ending.id, "the quiet run's end to be written").await;
    assert_eq!((ended.status, ended.error.as_deref()), (RunStatus::Completed, None));
    for (id, what) in [(waiting.id, "the queued run"), (to_cancel.id, "the run whose cancel failed")] {
        let ended = end_of(&api, id, what).await;
        assert_eq!(ended.status, RunStatus::Completed, "{what} ran in its turn: {:?}", ended.error);
        assert_eq!(all_seqs(store, id).await, (1..=300).collect::<Vec<_>>(), "{what} stored every line");
    }
    assert!(log.contains("the database is available again"), "the server says that the database is back");

    // The logger's lines from the outage reach the database, and it logs on.
    let resumed = eventually("the logger's held lines to be committed", Duration::from_secs(60), || async move {
        let count = store.count_logs(logging.id, &[]).await.unwrap();
        (count > seqs_at_return as i64 + 1_000).then_some(count)
    })
    .await;
    let (status, _) = api.post(&format!("/api/v1/runs/{}/cancel", logging.id)).await;
    assert_eq!(status, 200);
    let logged = end_of(&api, logging.id, "the logger to stop").await;
    assert_eq!(logged.status, RunStatus::Cancelled);
    assert!(logged.error.as_deref().unwrap_or_default().starts_with("cancelled by user"), "{:?}", logged.error);
    let lines = all_logs(store, logging.id).await;
    let seqs: Vec<i64> = lines.iter().map(|line| line.seq).collect();
    assert!(seqs.len() as i64 >= resumed);
    assert!(no_holes(&seqs), "the logger's lines have seqs 1..={} with no hole", seqs.len());
    // What the program printed, in order, with no line missing: a line held through the outage and lost would
    // leave a gap in the numbers.
    let printed: Vec<&str> = lines
        .iter()
        .filter(|line| line.metadata == Some(json!({"stream": "stdout"})))
        .map(|line| line.message.as_str())
        .collect();
    let expected: Vec<String> = (1..=printed.len()).map(|i| format!("line {i}")).collect();
    assert_eq!(printed, expected, "every printed line, in order");
    assert!(printed.len() > 5_000, "the logger printed through the outage ({} lines)", printed.len());

    // A run started now runs as usual.
    let fresh = api.start_run(after).await;
    let fresh_end = end_of(&api, fresh.id, "a run started after the outage").await;
    assert_eq!(fresh_end.status, RunStatus::Completed, "{:?}", fresh_end.error);
    assert_eq!(store.count_logs(fresh.id, &[]).await.unwrap(), 300);
    assert_eq!(store.list_runs(after).await.unwrap().len(), 1, "the start refused during the outage left no run");

    for status in [RunStatus::Running, RunStatus::Pending] {
        assert_eq!(store.runs_with_status(status).await.unwrap(), [], "no run is left {status:?}");
    }
    assert!(server_alive(server), "the server is still up");
    eprintln!(
        "outage test: {:.0} s in all; during the outage the slowest answer took {slowest_plain:?} without the \
         database and {slowest_database:?} with it; {:.1} s from its return to the end of the checks; the logger \
         printed {} lines",
        test_started.elapsed().as_secs_f64(),
        back.elapsed().as_secs_f64(),
        printed.len()
    );
    direct.close().await;
}

fn server_alive(mut server: ServerProcess) -> bool {
    matches!(server.0.try_wait(), Ok(None))
}
