//! Kill -9 the real server binary mid-run, restart it, and check that nothing committed was lost and every run
//! ends in the right state.

use athanor_core::{Description, ExperimentName, InstanceDraft, InstanceName, LogLevel, Run, RunStatus};
use athanor_core::{InstanceId, RunId};
use athanor_store::{LogQuery, Store};
use serde_json::json;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start the binary; the returned receiver fires when it logs that it is serving (after recovery and bind), so
/// the test awaits that event instead of probing the port.
fn spawn_server(database_url: &str, port: u16) -> (ServerProcess, tokio::sync::oneshot::Receiver<()>) {
    spawn_server_with(database_url, port, None)
}

/// [`spawn_server`] reading a manifest of command experiments.
fn spawn_server_with(
    database_url: &str,
    port: u16,
    manifest: Option<&std::path::Path>,
) -> (ServerProcess, tokio::sync::oneshot::Receiver<()>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_athanor"));
    if let Some(manifest) = manifest {
        command.env("ATHANOR_EXPERIMENTS", manifest);
    }
    let mut child = command
        .env("DATABASE_URL", database_url)
        .env("ATHANOR_ADDR", format!("127.0.0.1:{port}"))
        .env("ATHANOR_MAX_CONCURRENT_RUNS", "1")
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
    (ServerProcess(child), ready)
}

/// Wait for a condition in the database the server process writes. That process offers no event for "500 lines
/// committed" or "the queued run finished", so poll briefly; the deadline turns a hang into a clear failure.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn serving(ready: tokio::sync::oneshot::Receiver<()>) {
    tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .expect("the server did not start serving within 60 s")
        .expect("the server exited before serving");
}

async fn start_run(client: &reqwest::Client, port: u16, instance: InstanceId) -> Run {
    let response = client
        .post(format!("http://127.0.0.1:{port}/api/start_run"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("instance_id={instance}"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "start_run answered {}", response.status());
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

async fn chatty_instance(store: &Store, name: &str, lines: u64, lines_per_second: u64) -> InstanceId {
    let draft = InstanceDraft {
        experiment: ExperimentName::parse("chatty").unwrap(),
        name: InstanceName::parse(name).unwrap(),
        description: Description::parse("").unwrap(),
        config: json!({"lines": lines, "lines_per_second": lines_per_second, "batch": 1}),
    };
    store.create_instance(&draft).await.unwrap().id
}

/// The `seq` of every stored log line of `run`, in order. Page by page: one read stops at `PAGE_BYTES`.
async fn all_seqs(store: &Store, run: RunId) -> Vec<i64> {
    let mut seqs = Vec::new();
    let mut query = LogQuery::first(100_000);
    loop {
        let page = store.logs(run, &query).await.unwrap();
        seqs.extend(page.items.iter().map(|log| log.seq));
        if !page.full {
            return seqs;
        }
        query = query.after(page.next_after_seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_loses_no_committed_log_and_restart_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("athanor.db").display());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = reqwest::Client::new();

    let (mut server, ready) = spawn_server(&database_url, port);
    serving(ready).await;
    let store = Store::connect(&database_url).await.unwrap();
    // A long, paced run that is mid-flight at the kill, and a short one queued behind it (limit 1).
    let long = chatty_instance(&store, "long", 10_000_000, 4_000).await;
    let short = chatty_instance(&store, "short", 100, 0).await;
    let interrupted = start_run(&client, port, long).await;
    let queued = start_run(&client, port, short).await;
    assert_eq!(queued.status, RunStatus::Pending);

    eventually("the long run to commit 500 lines", || {
        let store = store.clone();
        async move { (store.count_logs(interrupted.id, &[]).await.unwrap() >= 500).then_some(()) }
    })
    .await;
    server.0.kill().unwrap(); // SIGKILL: no shutdown hook, no final flush.
    server.0.wait().unwrap();

    let committed = all_seqs(&store, interrupted.id).await;
    assert!(committed.len() >= 500);
    assert_eq!(committed, (1..=committed.len() as i64).collect::<Vec<_>>(), "committed logs have no holes");
    let at_kill = store.get_run(interrupted.id).await.unwrap().unwrap();
    assert_eq!(at_kill.status, RunStatus::Running);
    assert_eq!(store.get_run(queued.id).await.unwrap().unwrap().status, RunStatus::Pending);

    let (_restarted, ready) = spawn_server(&database_url, port);
    serving(ready).await;
    let failed = store.get_run(interrupted.id).await.unwrap().unwrap();
    assert_eq!(failed.status, RunStatus::Failed, "recovery runs before the server listens");
    assert_eq!(failed.error.as_deref(), Some("interrupted by restart"));
    assert_eq!(all_seqs(&store, interrupted.id).await, committed, "every committed line is still there");

    let finished = eventually("the queued run to complete after the restart", || {
        let store = store.clone();
        async move { store.get_run(queued.id).await.unwrap().filter(|run| run.status.is_terminal()) }
    })
    .await;
    assert_eq!(finished.status, RunStatus::Completed);
    assert_eq!(store.count_logs(queued.id, &[]).await.unwrap(), 100);
    assert!(store.count_logs(queued.id, &[LogLevel::Info]).await.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_experiment_dies_with_a_server_killed_by_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("athanor.db").display());
    let manifest = dir.path().join("athanor.toml");
    // Reports its pid, then becomes `sleep` (same pid) for ten minutes, ignoring SIGTERM on the way.
    std::fs::write(
        &manifest,
        r#"
[[experiment]]
name = "sleeps_on"
version = "1"
command = ["sh", "-c", "trap '' TERM; printf '{\"type\":\"result\",\"key\":\"pid\",\"value\":%d}\n' $$ >&3; exec sleep 600"]
"#,
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (mut server, ready) = spawn_server_with(&database_url, port, Some(&manifest));
    serving(ready).await;
    let store = Store::connect(&database_url).await.unwrap();
    let draft = InstanceDraft {
        experiment: ExperimentName::parse("sleeps_on").unwrap(),
        name: InstanceName::parse("sleeps on").unwrap(),
        description: Description::parse("").unwrap(),
        config: json!({}),
    };
    let instance = store.create_instance(&draft).await.unwrap().id;
    let run = start_run(&reqwest::Client::new(), port, instance).await;
    let pid = eventually("the command to report its pid", || {
        let store = store.clone();
        async move { store.results(run.id, 0, 10).await.unwrap().items.first().and_then(|r| r.value.as_i64()) }
    })
    .await;
    let pid = i32::try_from(pid).unwrap();
    let mut exit = Box::pin(athanor_runtime::testing::process_exit(pid));
    assert!(futures::poll!(&mut exit).is_pending(), "the command runs while the server does");

    server.0.kill().unwrap(); // SIGKILL: the server gets no chance to stop its runs.
    server.0.wait().unwrap();
    // PR_SET_PDEATHSIG: the kernel kills the command when the server dies.
    let ended = tokio::time::timeout(Duration::from_secs(30), exit).await;
    assert!(matches!(ended, Ok(Ok(()))), "the command (pid {pid}) outlived the server: {ended:?}");
}

/// Follow a run's progress over the JSON API's event stream (server-sent events) until the stream ends. The watch
/// holds the highest progress count seen so far; the task returns the highest of all. `after` is past any `seq`,
/// so the stream carries no records, only the snapshot, progress and the status.
async fn follow_progress(
    client: &reqwest::Client,
    port: u16,
    run: RunId,
) -> (tokio::sync::watch::Receiver<u64>, tokio::task::JoinHandle<u64>) {
    let url = format!("http://127.0.0.1:{port}/api/v1/runs/{run}/events?after={}", i64::MAX);
    let mut response = client.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (seen, watch) = tokio::sync::watch::channel(0);
    let task = tokio::spawn(async move {
        let mut text = String::new();
        // Ends when the server closes the stream (after the run's status) or exits; an error is the same end here.
        while let Ok(Some(chunk)) = response.chunk().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                let field = |name: &str| {
                    event.lines().find_map(|line| line.strip_prefix(name).map(|value| value.trim().to_owned()))
                };
                if field("event:").as_deref() == Some("progress") {
                    let data: serde_json::Value = serde_json::from_str(&field("data:").unwrap()).unwrap();
                    let current = data["current"].as_u64().unwrap();
                    seen.send_modify(|last| *last = (*last).max(current));
                }
            }
        }
        let last = *seen.borrow();
        last
    });
    (watch, task)
}

/// Send `signal` (SIGINT, as Ctrl-C does, or SIGTERM, as `systemctl stop` and `kill` do) to a server while a run
/// floods its log: the server ends the run itself, with every line the run was told was accepted, and exits 0.
async fn stop_signal_mid_run_ends_it_with_a_status_the_server_writes_and_keeps_every_line(signal: libc::c_int) {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("athanor.db").display());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = reqwest::Client::new();

    let (server, ready) = spawn_server(&database_url, port);
    serving(ready).await;
    let store = Store::connect(&database_url).await.unwrap();
    // As fast as it can, so the writer's channel holds accepted lines at the signal; a short one queued behind it.
    // Chatty reports progress every 1% (10,000 lines here), each time after `log` accepted the lines it counts.
    let flood = chatty_instance(&store, "flood", 1_000_000, 0).await;
    let short = chatty_instance(&store, "short", 100, 0).await;
    let stopped = start_run(&client, port, flood).await;
    let queued = start_run(&client, port, short).await;
    let (mut seen, progress) = follow_progress(&client, port, stopped.id).await;
    tokio::time::timeout(Duration::from_secs(60), seen.wait_for(|current| *current >= 50_000))
        .await
        .expect("the flood reports 50,000 lines within 60 s")
        .unwrap();

    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(server.0.id() as i32, signal) }, 0);
    let status = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.0.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(status.success(), "a stop signal ends the server cleanly: {status}");
    // The stream ends with the server at the latest; its last progress is the most the run was told was accepted.
    let last_progress = tokio::time::timeout(Duration::from_secs(30), progress).await.unwrap().unwrap();
    assert!(last_progress >= 50_000);

    let ended = store.get_run(stopped.id).await.unwrap().unwrap();
    assert_eq!((ended.status, ended.error.as_deref()), (RunStatus::Failed, Some("server shutting down")));
    let seqs = all_seqs(&store, stopped.id).await;
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "every line, with no hole");
    assert!(
        seqs.len() as u64 >= last_progress,
        "every line the run reported as logged is stored: {} stored, progress said {last_progress}",
        seqs.len()
    );
    eprintln!("signal {signal}: {} lines stored, the last progress seen said {last_progress}", seqs.len());
    assert_eq!(store.get_run(queued.id).await.unwrap().unwrap().status, RunStatus::Pending, "still to do");

    let (_restarted, ready) = spawn_server(&database_url, port);
    serving(ready).await;
    let ended_again = store.get_run(stopped.id).await.unwrap().unwrap();
    assert_eq!(ended_again.error.as_deref(), Some("server shutting down"), "not re-labelled by recovery");
    let finished = eventually("the queued run to complete after the restart", || {
        let store = store.clone();
        async move { store.get_run(queued.id).await.unwrap().filter(|run| run.status.is_terminal()) }
    })
    .await;
    assert_eq!(finished.status, RunStatus::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_mid_run_ends_it_with_a_status_the_server_writes_and_keeps_every_line() {
    stop_signal_mid_run_ends_it_with_a_status_the_server_writes_and_keeps_every_line(libc::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_ends_it_with_a_status_the_server_writes_and_keeps_every_line() {
    stop_signal_mid_run_ends_it_with_a_status_the_server_writes_and_keeps_every_line(libc::SIGTERM).await;
}
