//! Worker nodes on PostgreSQL, as processes: one server that executes nothing itself (`ATHANOR_WORKERS=0`) and
//! three `athanor worker`s sharing its queue. Runs are spread over the workers and execute exactly once; a worker
//! killed with SIGKILL has its runs failed when their leases run out while the others go on; a cancel reaches the
//! worker that executes the run.

use athanor_core::RunStatus;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uuid::Uuid;

/// Short leases so a dead worker is noticed in seconds (the default is 60 s, with a heartbeat every 10 s).
const LEASE_SECS: &str = "3";
const HEARTBEAT_SECS: &str = "1";

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A PostgreSQL database of its own, dropped at the end.
struct Database {
    name: String,
    url: String,
}

fn admin_url() -> String {
    std::env::var("ATHANOR_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl Database {
    async fn create() -> Database {
        let name = format!("athanor_workers_{}", Uuid::new_v4().simple());
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url()).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
        let server = admin_url().rsplit_once('/').unwrap().0.to_owned();
        Database { url: format!("{server}/{name}"), name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                if let Ok(mut admin) = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url()).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
                }
            });
        })
        .join();
    }
}

/// Start the binary with `args`; resolves once its stderr shows `ready_line`.
async fn spawn(args: &[&str], database_url: &str, extra: &[(&str, &str)], ready_line: &'static str) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_athanor"));
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("ATHANOR_SEED_DEMOS", "0")
        .env("ATHANOR_NODE_LEASE_SECS", LEASE_SECS)
        .env("ATHANOR_NODE_HEARTBEAT_SECS", HEARTBEAT_SECS)
        .env("RUST_LOG", "warn,athanor=info,athanor_runtime=info")
        .env("NO_COLOR", "1")
        .env_remove("ATHANOR_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start the athanor binary");
    let stderr = child.stderr.take().unwrap();
    let (ready, is_ready) = tokio::sync::oneshot::channel();
    let label = args.join(" ");
    std::thread::spawn(move || {
        let mut ready = Some(ready);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(ready_line) {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            eprintln!("[{label}] {line}");
        }
    });
    tokio::time::timeout(Duration::from_secs(60), is_ready)
        .await
        .expect("the process did not get ready within 60 s")
        .expect("the process exited before it was ready");
    Process(child)
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{status}: {body:#}");
        body
    }

    async fn instance(&self, experiment: &str, config: Value) -> String {
        let body =
            json!({"experiment": experiment, "name": format!("{experiment} {}", Uuid::new_v4()), "config": config});
        let created = self.send(self.client.post(format!("{}/instances", self.base)).json(&body)).await;
        created["id"].as_str().unwrap().to_owned()
    }

    async fn start(&self, instance: &str) -> String {
        let run = self.send(self.client.post(format!("{}/instances/{instance}/runs", self.base))).await;
        run["id"].as_str().unwrap().to_owned()
    }

    /// The run once it has ended (the API's wait, an event on the server's side).
    async fn ended(&self, run: &str) -> Value {
        let waited = self.send(self.client.get(format!("{}/runs/{run}/wait?timeout_s=120", self.base))).await;
        assert_eq!(waited["ended"], true, "{waited:#}");
        waited["run"].clone()
    }
}

/// Which node executed each run, and under which attempt.
async fn owners(database_url: &str) -> HashMap<String, (String, i32)> {
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(database_url).await.unwrap();
    let rows: Vec<(Uuid, Option<String>, i32)> =
        sqlx::query_as("SELECT r.id, w.name, r.attempt FROM runs r LEFT JOIN workers w ON w.id = r.node_id")
            .fetch_all(&mut db)
            .await
            .unwrap();
    rows.into_iter().map(|(id, node, attempt)| (id.to_string(), (node.unwrap_or_default(), attempt))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_the_queue_and_a_killed_one_fails_only_its_own_runs() {
    let db = Database::create().await;
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let _server =
        spawn(&["serve"], &db.url, &[("ATHANOR_ADDR", &addr), ("ATHANOR_WORKERS", "0")], "Athanor is serving").await;
    let mut workers = Vec::new();
    for index in 0..3 {
        let name = format!("w{index}");
        let worker =
            spawn(&["worker", "--name", &name, "--capacity", "4"], &db.url, &[], "joined the shared queue").await;
        workers.push(Some(worker));
    }
    let api = Api { client: reqwest::Client::new(), base: format!("http://{addr}/api/v1") };
    let nodes = api.send(api.client.get(format!("{}/workers", api.base))).await;
    let names: HashSet<&str> = nodes.as_array().unwrap().iter().map(|node| node["name"].as_str().unwrap()).collect();
    assert!(["w0", "w1", "w2"].iter().all(|name| names.contains(name)), "{nodes:#}");

    // 300 short runs: every one completes, executed once, by a worker (the server executes nothing).
    let quick = api.instance("sleeper", json!({"seconds": 0, "step_ms": 1})).await;
    let mut runs = Vec::new();
    for _ in 0..300 {
        runs.push(api.start(&quick).await);
    }
    for run in &runs {
        assert_eq!(api.ended(run).await["status"], "completed");
    }
    let owned = owners(&db.url).await;
    let mut per_worker: HashMap<&str, usize> = HashMap::new();
    for run in &runs {
        let (node, attempt) = &owned[run];
        assert_eq!(*attempt, 1, "run {run} executed once");
        *per_worker.entry(node.as_str()).or_default() += 1;
    }
    assert!(per_worker.keys().all(|node| ["w0", "w1", "w2"].contains(node)), "{per_worker:?}");
    assert!(per_worker.len() >= 2, "spread over the workers: {per_worker:?}");

    // Long runs fill the workers; then w0 dies without a word.
    let long = api.instance("sleeper", json!({"seconds": 3600, "step_ms": 50})).await;
    let mut long_runs = Vec::new();
    for _ in 0..12 {
        long_runs.push(api.start(&long).await);
    }
    let mut db_conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url).await.unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..600 {
        tick.tick().await;
        let running: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE status = 'running'")
            .fetch_one(&mut db_conn)
            .await
            .unwrap();
        if running == 12 {
            break;
        }
    }
    let owned = owners(&db.url).await;
    let of = |worker: &str| -> Vec<String> {
        long_runs.iter().filter(|run| owned[run.as_str()].0 == worker).cloned().collect()
    };
    let (on_w0, on_w1) = (of("w0"), of("w1"));
    assert_eq!((on_w0.len(), on_w1.len(), of("w2").len()), (4, 4, 4), "every worker full: {owned:?}");
    let mut killed = workers[0].take().unwrap();
    killed.0.kill().unwrap(); // SIGKILL: no chance to say goodbye.
    killed.0.wait().unwrap();
    for run in &on_w0 {
        let ended = api.ended(run).await;
        assert_eq!(
            (ended["status"].as_str(), ended["error"].as_str()),
            (Some("failed"), Some("worker w0 stopped responding"))
        );
    }

    // A cancel in the dashboard's API reaches the worker that executes the run.
    let cancelled = &on_w1[0];
    api.send(api.client.post(format!("{}/runs/{cancelled}/cancel", api.base))).await;
    let ended = api.ended(cancelled).await;
    assert_eq!((ended["status"].as_str(), ended["error"].as_str()), (Some("cancelled"), Some("cancelled by user")));
    // The other workers' runs go on.
    for run in of("w2").iter().chain(&on_w1[1..]) {
        let now = api.send(api.client.get(format!("{}/runs/{run}", api.base))).await;
        assert_eq!(now["status"], RunStatus::Running.as_str(), "{now:#}");
    }
}

/// Read a server-sent event stream to its end: `(event name, data)` pairs, handed to `seen` as they arrive.
async fn read_events(response: reqwest::Response, mut seen: impl FnMut(&str, &Value)) {
    use futures::StreamExt;
    let mut body = response.bytes_stream();
    let mut text = String::new();
    while let Some(chunk) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut name = "";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            if !name.is_empty() {
                seen(name, &serde_json::from_str(&data).unwrap());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_a_worker_streams_live_from_the_server_through_a_listener_reconnect() {
    let db = Database::create().await;
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let _server =
        spawn(&["serve"], &db.url, &[("ATHANOR_ADDR", &addr), ("ATHANOR_WORKERS", "0")], "Athanor is serving").await;
    let _worker = spawn(&["worker", "--name", "far"], &db.url, &[], "joined the shared queue").await;
    let api = Api { client: reqwest::Client::new(), base: format!("http://{addr}/api/v1") };
    // 20,000 lines over about ten seconds, on the worker.
    let chatty = api.instance("chatty", json!({"lines": 20_000, "lines_per_second": 2_000})).await;
    let run = api.start(&chatty).await;
    let stream = api.client.get(format!("{}/runs/{run}/events", api.base)).send().await.unwrap();
    assert!(stream.status().is_success());

    let (cut, cut_done) = tokio::sync::mpsc::unbounded_channel::<()>();
    let database_url = db.url.clone();
    // Once lines flow, every listening connection (the server's among them) is terminated by the database.
    let cutter = tokio::spawn(async move {
        let mut cut_done = cut_done;
        cut_done.recv().await;
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&database_url).await.unwrap();
        let name = database_url.rsplit_once('/').unwrap().1.to_owned();
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE '%LISTEN%' \
             AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .fetch_all(&mut admin)
        .await
        .unwrap();
        terminated.len()
    });
    let mut seqs = Vec::new();
    let mut last_status = String::new();
    let mut progress_reports = 0;
    let mut asked_to_cut = false;
    read_events(stream, |name, data| match name {
        "records" => {
            seqs.extend(data["logs"].as_array().unwrap().iter().map(|line| line["seq"].as_i64().unwrap()));
            if !asked_to_cut && seqs.len() >= 2_000 {
                asked_to_cut = true;
                let _ = cut.send(());
            }
        }
        "status" => last_status = data["status"].as_str().unwrap().to_owned(),
        "progress" => progress_reports += 1,
        _ => {}
    })
    .await;
    let terminated = cutter.await.unwrap();
    assert!(terminated >= 1, "no listener was cut");
    assert_eq!(last_status, "completed", "the stream ends with the run's end");
    assert!(progress_reports > 0, "the worker's progress reaches the server's viewers");
    assert_eq!(seqs, (1..=20_000).collect::<Vec<i64>>(), "every line once, in order, through the reconnect");
    assert_eq!(owners(&db.url).await[&run].0, "far");
}
