//! The `athanor` binary as a user runs it from a terminal or a CI job, against the real server on a random port:
//! exit codes, `--follow`, `--json`, and field errors a person can act on.

use athanor_app::server::{start, Config, Server};
use std::path::Path;
use std::process::Output;

struct Served {
    server: Server,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { seed_demos: true, ..Config::in_folder(dir.path()) };
    let server = start(config).await.unwrap();
    let url = format!("http://{}", server.addr);
    Served { server, url, _dir: dir }
}

/// Run `athanor <args>` against `url` and wait for it; the server keeps serving on this test's runtime meanwhile.
async fn athanor(url: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_athanor"))
        .args(args)
        .env("ATHANOR_URL", url)
        .env_remove("ATHANOR_TOKEN")
        .env("NO_COLOR", "1")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", text(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("not JSON ({error}): {}", text(output)))
}

async fn instance_named(served: &Served, name: &str) -> String {
    let list = json(&athanor(&served.url, &["instances", "list", "--json"]).await);
    let found = list.as_array().unwrap().iter().find(|summary| summary["instance"]["name"] == name);
    found.unwrap_or_else(|| panic!("no instance {name:?} in {list}"))["instance"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_run_that_fails_prints_its_error_and_exits_non_zero() {
    let served = serve().await;
    let failing = instance_named(&served, "Diverging model").await;
    let output = athanor(&served.url, &["runs", "start", &failing, "--follow"]).await;
    assert_eq!(output.status.code(), Some(3), "a failed run has its own exit status: {}", text(&output));
    let all = text(&output);
    assert!(all.contains("failed"), "the terminal status is named: {all}");
    assert!(all.contains("diverged"), "and the run's error and logs are shown: {all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_created_and_followed_from_the_terminal_completes_with_exit_zero() {
    let served = serve().await;
    let created = athanor(
        &served.url,
        &[
            "instances",
            "create",
            "--experiment",
            "training_curve",
            "--name",
            "cli",
            "--set",
            "epochs=3",
            "--set",
            "epoch_ms=0",
            "--json",
        ],
    )
    .await;
    let instance = json(&created)["id"].as_str().unwrap().to_owned();
    let output = athanor(&served.url, &["runs", "start", &instance, "--follow"]).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("epoch 3/3"), "the run's log lines stream to the terminal: {stdout}");
    assert!(stdout.contains("completed"), "{stdout}");

    let runs = json(&athanor(&served.url, &["runs", "list", "--instance", &instance, "--json"]).await);
    let run = &runs["items"][0]["run"];
    assert_eq!(run["status"], "completed", "{runs}");
    let results = json(&athanor(&served.url, &["runs", "results", run["id"].as_str().unwrap(), "--json"]).await);
    assert!(results.to_string().contains("accuracy"), "{results}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_is_refused_with_each_field_named_and_nothing_saved() {
    let served = serve().await;
    let before = json(&athanor(&served.url, &["instances", "list", "--json"]).await).as_array().unwrap().len();
    let output = athanor(
        &served.url,
        &["instances", "create", "--experiment", "training_curve", "--name", "", "--set", "epochs=0"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("config.epochs: must be at least 1"), "{stderr}");
    assert!(stderr.lines().any(|line| line.trim_start().starts_with("name:")), "the name's own line: {stderr}");
    let after = json(&athanor(&served.url, &["instances", "list", "--json"]).await).as_array().unwrap().len();
    assert_eq!(after, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_named_with_what_to_do() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let output = athanor(&format!("http://127.0.0.1:{port}"), &["experiments"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("athanor serve"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_run_cancelled_from_another_terminal_exits_with_the_cancelled_status() {
    use athanor_core::{LifecycleEvent, RunStatus};
    use futures::StreamExt;
    let served = serve().await;
    let sleeper = instance_named(&served, "Long sleep (cancel me)").await;
    // Subscribed before the start, so the run's `running` event cannot be missed.
    let mut lifecycle = Box::pin(served.server.state.service.lifecycle_events());
    let follower = tokio::process::Command::new(env!("CARGO_BIN_EXE_athanor"))
        .args(["runs", "start", &sleeper, "--follow"])
        .env("ATHANOR_URL", &served.url)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let run_id = loop {
        match lifecycle.next().await.expect("the lifecycle stream ended") {
            LifecycleEvent::RunChanged(run) if run.status == RunStatus::Running => break run.id,
            _ => continue,
        }
    };
    let cancelled = athanor(&served.url, &["runs", "cancel", &run_id.to_string()]).await;
    assert!(cancelled.status.success(), "{}", text(&cancelled));
    let output = follower.wait_with_output().await.unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("cancelled"), "{}", text(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_requires_a_token_gets_it_from_athanor_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = "cli-test-token-0123456789";
    let config = Config { token: Some(token.to_owned()), ..Config::in_folder(dir.path()) };
    let server = start(config).await.unwrap();
    let url = format!("http://{}", server.addr);
    let refused = athanor(&url, &["experiments"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("ATHANOR_TOKEN"), "{}", text(&refused));
    let admitted = tokio::process::Command::new(env!("CARGO_BIN_EXE_athanor"))
        .args(["experiments", "--json"])
        .env("ATHANOR_URL", &url)
        .env("ATHANOR_TOKEN", token)
        .output()
        .await
        .unwrap();
    assert!(json(&admitted).to_string().contains("training_curve"));
    server.abort();
}
