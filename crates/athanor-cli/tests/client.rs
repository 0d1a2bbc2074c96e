//! The CLI through real sockets against a scripted server: exit statuses of followed runs, resuming a dropped
//! event stream from the last `seq`, the bearer token, error answers, and refusals made before any request.
//!
//! These run the library entry point (`athanor_cli::run`) exactly as the binary does. They print what the CLI
//! prints (a few lines); the assertions are on exit statuses and on what the server was asked.

mod support;

use athanor_cli::Cli;
use clap::Parser;
use serde_json::{json, Value};
use std::process::ExitCode;
use support::{FakeServer, Reply, Request};

const INSTANCE: &str = "0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e22";
const RUN: &str = "0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e11";

fn run_json(status: &str, error: Option<&str>) -> Value {
    json!({
        "id": RUN,
        "instance_id": INSTANCE,
        "status": status,
        "config": {"steps": 3},
        "experiment_version": "1.0.0",
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": "2026-01-01T00:00:01Z",
        "completed_at": if status == "running" || status == "pending" { Value::Null } else { json!("2026-01-01T00:00:04Z") },
        "error": error,
    })
}

fn records(from: i64, to: i64) -> Value {
    let logs: Vec<Value> = (from..=to)
        .map(|seq| json!({"seq": seq, "ts": "2026-01-01T00:00:02Z", "level": "info", "message": format!("step {seq} ✓"), "metadata": null}))
        .collect();
    json!({"logs": logs, "results": []})
}

async fn athanor(server: &FakeServer, args: &[&str]) -> ExitCode {
    let mut argv = vec!["athanor", "--url", server.url.as_str(), "--token", "t0ken"];
    argv.extend_from_slice(args);
    athanor_cli::run(Cli::try_parse_from(argv).unwrap()).await
}

/// A server whose run ends with `status`; its event stream arrives in 7-byte chunks.
async fn server_ending(status: &'static str, error: Option<&'static str>) -> FakeServer {
    FakeServer::start(move |request: &Request| match (request.method.as_str(), request.path.as_str()) {
        ("POST", path) if path == format!("/api/v1/instances/{INSTANCE}/runs") => {
            Reply::json(201, run_json("pending", None))
        }
        ("GET", path) if path == format!("/api/v1/runs/{RUN}/events") => Reply::events(
            &[
                ("snapshot", json!({"run": run_json("running", None), "progress": null})),
                ("records", records(1, 2)),
                ("progress", json!({"current": 2, "total": 3, "message": "almost"})),
                ("status", run_json(status, error)),
            ],
            7,
        ),
        _ => Reply::json(404, json!({"code": "not_found", "message": "no such route"})),
    })
    .await
}

#[tokio::test]
async fn following_a_run_exits_with_its_outcome() {
    for (status, error, code) in
        [("completed", None, 0), ("failed", Some("boom: step 3 diverged"), 3), ("cancelled", Some("cancelled"), 4)]
    {
        let server = server_ending(status, error).await;
        let exit = athanor(&server, &["runs", "start", INSTANCE, "--follow"]).await;
        assert_eq!(exit, ExitCode::from(code), "{status}");
        let requests = server.requests();
        assert_eq!(requests.len(), 2, "{requests:?}");
        assert_eq!(requests[1].query, "after=0");
        // Every request carries the token.
        assert!(requests.iter().all(|r| r.header("authorization") == Some("Bearer t0ken")), "{requests:?}");
    }
}

#[tokio::test]
async fn json_following_exits_the_same_way() {
    let server = server_ending("failed", Some("boom")).await;
    assert_eq!(athanor(&server, &["--json", "runs", "logs", RUN, "--follow"]).await, ExitCode::from(3));
}

#[tokio::test]
async fn a_dropped_stream_is_resumed_after_the_last_seq_seen() {
    let server = FakeServer::start(|request: &Request| {
        if request.query == "after=0" {
            // The connection drops before the run ends.
            Reply::events(
                &[
                    ("snapshot", json!({"run": run_json("running", None), "progress": null})),
                    ("records", records(1, 4)),
                ],
                5,
            )
        } else {
            Reply::events(
                &[
                    ("snapshot", json!({"run": run_json("running", None), "progress": null})),
                    ("records", records(5, 6)),
                    ("status", run_json("completed", None)),
                ],
                64,
            )
        }
    })
    .await;
    assert_eq!(athanor(&server, &["runs", "logs", RUN, "--follow"]).await, ExitCode::SUCCESS);
    let queries: Vec<String> = server.requests().into_iter().map(|r| r.query).collect();
    assert_eq!(queries, ["after=0", "after=4"]);
}

#[tokio::test]
async fn a_stream_that_closes_after_a_finished_runs_snapshot_still_ends_with_its_outcome() {
    // Opened on a run that had already failed, and closed (by a proxy, say) before the closing status event: the
    // snapshot already says how the run ended, so the CLI does not wait for more.
    let server = FakeServer::start(|_: &Request| {
        Reply::events(
            &[
                ("snapshot", json!({"run": run_json("failed", Some("x")), "progress": null})),
                ("records", records(1, 2)),
            ],
            11,
        )
    })
    .await;
    assert_eq!(athanor(&server, &["runs", "logs", RUN, "--follow"]).await, ExitCode::from(3));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn error_answers_exit_1() {
    let server = FakeServer::start(|request: &Request| match request.path.as_str() {
        "/api/v1/instances" => Reply::json(
            400,
            json!({"code": "invalid_input", "message": "the configuration has 1 error",
                   "fields": [{"path": "config.steps", "message": "must be at least 1"}]}),
        ),
        _ => Reply::json(401, json!({"code": "unauthorized", "message": "a token is required"})),
    })
    .await;
    let create = [
        "instances",
        "create",
        "--experiment",
        "countdown",
        "--name",
        "n",
        "--set",
        "steps=0",
        "--set",
        "api.retries=2",
    ];
    assert_eq!(athanor(&server, &create).await, ExitCode::from(1));
    let sent: Value = serde_json::from_str(&server.requests()[0].body).unwrap();
    assert_eq!(
        sent,
        json!({"experiment": "countdown", "name": "n", "description": "", "config": {"steps": 0, "api": {"retries": 2}}})
    );
    assert_eq!(athanor(&server, &["runs", "list"]).await, ExitCode::from(1));
}

#[tokio::test]
async fn an_unreachable_server_exits_1() {
    let argv = ["athanor", "--url", "http://127.0.0.1:1", "experiments"];
    assert_eq!(athanor_cli::run(Cli::try_parse_from(argv).unwrap()).await, ExitCode::from(1));
}

#[tokio::test]
async fn editing_with_set_alone_keeps_the_rest_of_the_configuration() {
    let server = FakeServer::start(|request: &Request| {
        let instance = json!({"id": INSTANCE, "experiment": "countdown", "name": "n", "description": "",
                              "config": {"steps": 3, "api": {"retries": 1, "timeout": 30}},
                              "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"});
        match request.method.as_str() {
            "GET" => Reply::json(200, json!({"instance": instance, "experiment": null, "runs": []})),
            _ => Reply::json(200, instance),
        }
    })
    .await;
    assert_eq!(athanor(&server, &["instances", "edit", INSTANCE, "--set", "api.retries=5"]).await, ExitCode::SUCCESS);
    let requests = server.requests();
    assert_eq!(requests[1].method, "PATCH");
    let sent: Value = serde_json::from_str(&requests[1].body).unwrap();
    assert_eq!(sent, json!({"config": {"steps": 3, "api": {"retries": 5, "timeout": 30}}}));
}

#[tokio::test]
async fn runs_list_all_follows_the_cursor() {
    let server = FakeServer::start(|request: &Request| {
        let listing = json!({"run": run_json("completed", None), "instance_name": "n", "experiment": "countdown"});
        if request.query.contains("cursor=") {
            Reply::json(200, json!({"items": [listing]}))
        } else {
            Reply::json(200, json!({"items": [listing], "next_cursor": "c1"}))
        }
    })
    .await;
    assert_eq!(
        athanor(&server, &["--json", "runs", "list", "--all", "--status", "completed"]).await,
        ExitCode::SUCCESS
    );
    let queries: Vec<String> = server.requests().into_iter().map(|r| r.query).collect();
    assert_eq!(queries, ["status=completed", "status=completed&cursor=c1"]);
}
