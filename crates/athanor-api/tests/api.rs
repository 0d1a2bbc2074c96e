//! The JSON API over real HTTP: a server on a random loopback port, a real SQLite file in a temporary folder, the
//! demo experiments, and `reqwest` as the client. Nothing sleeps to synchronise: runs are awaited through
//! `/wait` and the event stream.

use athanor_runtime::{Registry, Runtime, RuntimeConfig};
use athanor_service::Service;
use athanor_store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use tempfile::TempDir;

/// A server with its own database, and a client pointed at it.
struct Api {
    base: String,
    root: String,
    client: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
    _dir: TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// An answer: its status and its body as JSON (`Null` when empty).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    /// Assert this is an error answer with `code` and `status`; returns the refused fields' paths.
    #[track_caller]
    fn error(&self, status: u16, code: &str) -> Vec<String> {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.body["code"], code, "{:#}", self.body);
        assert!(self.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{:#}", self.body);
        self.body["fields"]
            .as_array()
            .map(|fields| fields.iter().map(|f| f["path"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    }

    #[track_caller]
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        &self.body
    }
}

async fn spawn() -> Api {
    spawn_with_compare_budget(athanor_service::DEFAULT_COMPARE_BUDGET).await
}

/// [`spawn`], with a comparison budget of `bytes`.
async fn spawn_with_compare_budget(bytes: u64) -> Api {
    spawn_with(|service| service.with_compare_budget(bytes)).await
}

/// [`spawn`], with the service adjusted by `adjust`.
async fn spawn_with(adjust: impl FnOnce(Service) -> Service) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("a.db").display())).await.unwrap();
    // Naming the demos keeps the linker from dropping their registrations; discovery then finds them.
    assert!(!athanor_demos::definitions().is_empty());
    let registry = Registry::discover().unwrap();
    let runtime = Runtime::new(store.clone(), registry, RuntimeConfig::default());
    let service = adjust(Service::new(store, runtime, None));
    let app = axum::Router::new()
        .nest("/api/v1", athanor_api::router(service.clone()))
        .merge(athanor_api::export_routes(service));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Api {
        base: format!("http://{addr}/api/v1"),
        root: format!("http://{addr}"),
        client: reqwest::Client::new(),
        server,
        _dir: dir,
    }
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_string());
        }
        read(request.send().await.unwrap()).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    /// A POST without any body.
    async fn post_empty(&self, path: &str) -> Answer {
        read(self.client.post(format!("{}{path}", self.base)).send().await.unwrap()).await
    }

    /// A POST with `text` as the body and `content_type` (or none).
    async fn post_raw(&self, path: &str, content_type: Option<&str>, text: &str) -> Answer {
        let mut request = self.client.post(format!("{}{path}", self.base)).body(text.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        read(request.send().await.unwrap()).await
    }

    /// Save an instance of `experiment` and answer its id.
    async fn instance(&self, experiment: &str, name: &str, config: Value) -> String {
        let answer = self.post("/instances", json!({"experiment": experiment, "name": name, "config": config})).await;
        answer.ok(201)["id"].as_str().unwrap().to_owned()
    }

    /// Start a run of `instance` and answer its id.
    async fn start(&self, instance: &str) -> String {
        let answer = self.post_empty(&format!("/instances/{instance}/runs")).await;
        answer.ok(201)["id"].as_str().unwrap().to_owned()
    }

    /// Wait for `run` to end (through the API) and answer it as it ended.
    async fn finish(&self, run: &str) -> Value {
        let answer = self.get(&format!("/runs/{run}/wait?timeout_s=120")).await;
        let outcome = answer.ok(200);
        assert_eq!(outcome["ended"], true, "{outcome:#}");
        outcome["run"].clone()
    }

    /// A fast training run: five epochs of no wall time.
    async fn quick_training_instance(&self, name: &str) -> String {
        self.instance("training_curve", name, json!({"epochs": 5, "epoch_ms": 0})).await
    }
}

async fn read(response: reqwest::Response) -> Answer {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"))
    };
    Answer { status, body }
}

/// One server-sent event.
#[derive(Debug)]
struct SseEvent {
    name: String,
    id: Option<String>,
    data: Value,
}

/// Read a whole event stream until the server ends it; keep-alive comments are skipped.
async fn read_events(mut response: reqwest::Response) -> Vec<SseEvent> {
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text.split("\n\n")
        .filter_map(|block| {
            let (mut name, mut id, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("id: ") {
                    id = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data.push_str(value);
                }
            }
            Some(SseEvent { name: name?, id, data: serde_json::from_str(&data).unwrap() })
        })
        .collect()
}

fn seqs(items: &Value) -> Vec<i64> {
    items.as_array().unwrap().iter().map(|item| item["seq"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn experiments_are_listed_by_name_and_an_unknown_one_is_not_found() {
    let api = spawn().await;
    let all = api.get("/experiments").await;
    let names: Vec<&str> = all.ok(200).as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"training_curve") && names.contains(&"sleeper"), "{names:?}");
    assert!(names.windows(2).all(|pair| pair[0] <= pair[1]), "sorted by name: {names:?}");

    let one = api.get("/experiments/training_curve").await;
    let one = one.ok(200);
    assert_eq!(one["name"], "training_curve");
    assert!(one["schema"]["fields"].as_array().is_some_and(|fields| !fields.is_empty()), "{one:#}");

    api.get("/experiments/no_such_thing").await.error(404, "not_found");
}

#[tokio::test]
async fn a_configuration_is_validated_with_defaults_filled_in_or_every_refused_field_named() {
    let api = spawn().await;
    let accepted = api.post("/experiments/training_curve/validate", json!({"epochs": 3})).await;
    let config = &accepted.ok(200)["config"];
    assert_eq!(config["epochs"], 3);
    assert_eq!(config["learning_rate"], 0.05, "defaults are filled in: {config:#}");

    let refused = api.post("/experiments/training_curve/validate", json!({"epochs": 0, "epochz": 1})).await;
    let fields = refused.error(400, "invalid_input");
    assert!(fields.contains(&"epochs".to_owned()) && fields.contains(&"epochz".to_owned()), "{fields:?}");

    let unknown = api.post("/experiments/no_such_thing/validate", json!({})).await;
    assert!(unknown.error(404, "not_found").is_empty(), "an experiment the server lacks is not found, like its page");
}

#[tokio::test]
async fn creating_an_instance_with_a_bad_name_and_a_bad_config_field_lists_both_and_stores_nothing() {
    let api = spawn().await;
    let refused =
        api.post("/instances", json!({"experiment": "training_curve", "name": "   ", "config": {"epochs": 0}})).await;
    let fields = refused.error(400, "invalid_input");
    assert!(fields.contains(&"name".to_owned()), "{fields:?}");
    assert!(fields.contains(&"config.epochs".to_owned()), "{fields:?}");
    assert_eq!(api.get("/instances").await.ok(200), &json!([]), "nothing was stored");

    let unknown = api.post("/instances", json!({"experiment": "no_such_thing", "name": "x"})).await;
    assert_eq!(unknown.error(400, "invalid_input"), vec!["experiment"]);
    assert_eq!(api.get("/instances").await.ok(200), &json!([]));

    let created = api.post("/instances", json!({"experiment": "training_curve", "name": "Baseline"})).await;
    let created = created.ok(201);
    assert_eq!(created["name"], "Baseline");
    assert_eq!(created["config"]["epochs"], 30, "completed with defaults: {created:#}");
    let listed = api.get("/instances").await;
    assert_eq!(listed.ok(200)[0]["instance"]["id"], created["id"]);
}

#[tokio::test]
async fn malformed_bodies_are_refused_as_json_naming_the_field() {
    let api = spawn().await;
    let broken = api.post_raw("/instances", Some("application/json"), "{\"name\": ").await;
    assert_eq!(broken.error(400, "invalid_input"), vec!["body"]);

    let trailing =
        api.post_raw("/instances", Some("application/json"), r#"{"experiment": "sleeper", "name": "x"} {}"#).await;
    assert_eq!(trailing.error(400, "invalid_input"), vec!["body"]);

    let wrong_type = api.post("/instances", json!({"experiment": "sleeper", "name": 5})).await;
    assert_eq!(wrong_type.error(400, "invalid_input"), vec!["name"]);

    let missing = api.post("/instances", json!({"experiment": "sleeper"})).await;
    assert_eq!(missing.error(400, "invalid_input"), vec!["name"]);

    let not_json = api.post_raw("/instances", None, "experiment=sleeper&name=x").await;
    assert_eq!(not_json.error(400, "invalid_input"), vec!["body"]);
    let form = api.post_raw("/instances", Some("application/x-www-form-urlencoded"), "name=x").await;
    assert_eq!(form.error(400, "invalid_input"), vec!["body"]);

    assert_eq!(api.get("/instances").await.ok(200), &json!([]));
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_malformed_ids_are_refused_naming_the_id() {
    let api = spawn().await;
    let nobody = "00000000-0000-4000-8000-000000000000";
    for (method, path) in [
        (Method::GET, format!("/instances/{nobody}")),
        (Method::DELETE, format!("/instances/{nobody}")),
        (Method::POST, format!("/instances/{nobody}/clone")),
        (Method::POST, format!("/instances/{nobody}/runs")),
        (Method::GET, format!("/runs/{nobody}")),
        (Method::POST, format!("/runs/{nobody}/cancel")),
        (Method::GET, format!("/runs/{nobody}/wait?timeout_s=1")),
        (Method::GET, format!("/runs/{nobody}/logs")),
        (Method::GET, format!("/runs/{nobody}/results")),
        (Method::GET, format!("/runs/{nobody}/events")),
        (Method::GET, format!("/compare?runs={nobody}")),
    ] {
        let answer = api.call(method.clone(), &path, None).await;
        answer.error(404, "not_found");
        assert!(answer.body["message"].as_str().unwrap().contains(nobody), "{method} {path}: {:#}", answer.body);
    }
    let patch = api.call(Method::PATCH, &format!("/instances/{nobody}"), Some(json!({"name": "x"}))).await;
    patch.error(404, "not_found");

    for (method, path, field) in [
        (Method::GET, "/instances/nope", "instance_id"),
        (Method::DELETE, "/instances/nope", "instance_id"),
        (Method::POST, "/instances/nope/runs", "instance_id"),
        (Method::GET, "/runs/nope", "run_id"),
        (Method::POST, "/runs/nope/cancel", "run_id"),
        (Method::GET, "/runs/nope/logs", "run_id"),
        (Method::GET, "/runs/nope/events", "run_id"),
        (Method::GET, "/compare?runs=nope", "runs"),
        (Method::GET, "/runs?instance=nope", "instance"),
    ] {
        let answer = api.call(method.clone(), path, None).await;
        assert_eq!(answer.error(400, "invalid_input"), vec![field], "{method} {path}");
        assert!(answer.body["message"].as_str().unwrap().contains("\"nope\""), "{:#}", answer.body);
    }
}

#[tokio::test]
async fn paths_and_methods_the_api_does_not_have_are_not_found_as_an_error_body() {
    let api = spawn().await;
    api.get("/no/such/thing").await.error(404, "not_found");
    api.call(Method::PUT, "/experiments", None).await.error(404, "not_found");
}

#[tokio::test]
async fn a_finished_run_is_waited_for_and_its_logs_and_results_read_back() {
    let api = spawn().await;
    let instance = api.quick_training_instance("Quick").await;
    let started = api.post_empty(&format!("/instances/{instance}/runs")).await;
    let started = started.ok(201);
    assert!(["pending", "running"].contains(&started["status"].as_str().unwrap()), "{started:#}");
    let run = started["id"].as_str().unwrap().to_owned();

    let ended = api.finish(&run).await;
    assert_eq!(ended["status"], "completed", "{ended:#}");
    assert_eq!(api.get(&format!("/runs/{run}")).await.ok(200), &ended);

    // Every line, then reading on from a `seq`, then the lines just before one.
    let all = api.get(&format!("/runs/{run}/logs")).await;
    let all_seqs = seqs(&all.ok(200)["items"]);
    assert!(all_seqs.len() >= 10, "a debug and an info line per epoch: {all_seqs:?}");
    assert!(all_seqs.windows(2).all(|pair| pair[0] < pair[1]), "oldest first: {all_seqs:?}");
    assert_eq!(all.body["next_after"], *all_seqs.last().unwrap());

    let first_page = api.get(&format!("/runs/{run}/logs?limit=3")).await;
    let first_seqs = seqs(&first_page.ok(200)["items"]);
    assert_eq!(first_seqs, all_seqs[..3]);
    let next = api.get(&format!("/runs/{run}/logs?after={}&limit=3", first_page.body["next_after"])).await;
    assert_eq!(seqs(&next.ok(200)["items"]), all_seqs[3..6]);

    let before = all_seqs[5];
    let tail = api.get(&format!("/runs/{run}/logs?before={before}&limit=2")).await;
    assert_eq!(seqs(&tail.ok(200)["items"]), all_seqs[3..5]);
    let last = api.get(&format!("/runs/{run}/logs?before=9223372036854775807&limit=2")).await;
    assert_eq!(seqs(&last.ok(200)["items"]), all_seqs[all_seqs.len() - 2..]);

    // By level, one or several.
    let debug = api.get(&format!("/runs/{run}/logs?level=debug")).await;
    let debug = debug.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(debug.len(), 5, "one debug line per epoch");
    assert!(debug.iter().all(|line| line["level"] == "debug"));
    let loud = api.get(&format!("/runs/{run}/logs?level=warn,%20error")).await;
    assert!(loud.ok(200)["items"].as_array().unwrap().iter().all(|l| l["level"] == "warn" || l["level"] == "error"));
    let bad_level = api.get(&format!("/runs/{run}/logs?level=info,verbose")).await;
    assert_eq!(bad_level.error(400, "invalid_input"), vec!["level"]);
    assert!(bad_level.body["message"].as_str().unwrap().contains("verbose"));
    let both = api.get(&format!("/runs/{run}/logs?after=1&before=5")).await;
    assert_eq!(both.error(400, "invalid_input"), vec!["before"]);
    let bad_limit = api.get(&format!("/runs/{run}/logs?limit=many")).await;
    assert_eq!(bad_limit.error(400, "invalid_input"), vec!["limit"]);
    let typo = api.get(&format!("/runs/{run}/logs?levl=info")).await;
    assert_eq!(typo.error(400, "invalid_input"), vec!["levl"]);

    // By text, anywhere in the run, ignoring case; with a level too.
    let third = api.get(&format!("/runs/{run}/logs?q=EPOCH%203/")).await;
    let third = third.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(third.len(), 1, "{third:#?}");
    assert!(third[0]["message"].as_str().unwrap().starts_with("epoch 3/5 loss="));
    let third_debug = api.get(&format!("/runs/{run}/logs?q=epoch%203/&level=debug&before=9223372036854775807")).await;
    assert!(third_debug.ok(200)["items"].as_array().unwrap().is_empty(), "the epoch line is info");
    let long = api.get(&format!("/runs/{run}/logs?q={}", "x".repeat(1_025))).await;
    assert_eq!(long.error(400, "invalid_input"), vec!["q"]);

    // Results: all of them, and those under one key.
    let results = api.get(&format!("/runs/{run}/results")).await;
    let results = results.ok(200)["items"].as_array().unwrap().clone();
    let keys: HashSet<&str> = results.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert!(keys.contains("loss") && keys.contains("accuracy") && keys.contains("loss/5"), "{keys:?}");
    let loss = api.get(&format!("/runs/{run}/results?key=loss")).await;
    let loss = loss.ok(200)["items"].as_array().unwrap().clone();
    assert_eq!(loss.len(), 1);
    assert_eq!(Some(&loss[0]), results.iter().find(|r| r["key"] == "loss"));
    let page = api.get(&format!("/runs/{run}/results?limit=2")).await;
    let after = page.ok(200)["next_after"].as_i64().unwrap();
    let rest = api.get(&format!("/runs/{run}/results?after={after}&limit=5000")).await;
    assert_eq!(rest.ok(200)["items"].as_array().unwrap().len(), results.len() - 2);
}

#[tokio::test]
async fn two_runs_are_compared_side_by_side_and_bad_selections_are_refused() {
    let api = spawn().await;
    let a = api.quick_training_instance("A").await;
    let b = api.instance("training_curve", "B", json!({"epochs": 5, "epoch_ms": 0, "model": "claude-3"})).await;
    let (run_a, run_b) = (api.start(&a).await, api.start(&b).await);
    api.finish(&run_a).await;
    api.finish(&run_b).await;

    let comparison = api.get(&format!("/compare?runs={run_a},{run_b}")).await;
    let comparison = comparison.ok(200);
    let columns: Vec<&str> = comparison["runs"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(columns, vec![run_a.as_str(), run_b.as_str()]);
    let model = comparison["config"].as_array().unwrap().iter().find(|row| row["key"] == "model").unwrap();
    assert_eq!(model["values"], json!(["gpt-4", "claude-3"]));
    assert_eq!(model["differs"], true);
    assert!(comparison["series"].as_array().unwrap().iter().any(|s| s["name"] == "loss"), "{comparison:#}");

    assert_eq!(api.get("/compare?runs=").await.error(400, "invalid_input"), vec!["runs"]);
    assert_eq!(api.get("/compare").await.error(400, "invalid_input"), vec!["runs"]);
    assert_eq!(api.get(&format!("/compare?runs={run_a},x")).await.error(400, "invalid_input"), vec!["runs"]);
}

#[tokio::test]
async fn a_comparison_larger_than_the_budget_is_refused_before_anything_is_loaded() {
    let api = spawn_with_compare_budget(200).await;
    let a = api.quick_training_instance("A").await;
    let (run_a, run_b) = (api.start(&a).await, api.start(&a).await);
    api.finish(&run_a).await;
    api.finish(&run_b).await;
    let refused = api.get(&format!("/compare?runs={run_a},{run_b}")).await;
    assert!(refused.error(413, "too_large").is_empty());
    assert!(refused.body["message"].as_str().unwrap().contains("compare fewer runs"), "{:#}", refused.body);
    let download = api.client.get(format!("{}/export/compare.csv?runs={run_a},{run_b}", api.root)).send().await;
    assert_eq!(download.unwrap().status().as_u16(), 413, "the download has the same budget");
}

#[tokio::test]
async fn pages_of_runs_follow_cursors_through_every_run_once_with_no_gap() {
    let api = spawn().await;
    let failing = api.instance("failing", "Fails", json!({"message": "diverged"})).await;
    let other = api.quick_training_instance("Other").await;
    let mut created = Vec::new();
    for _ in 0..7 {
        created.push(api.start(&failing).await);
    }
    let other_run = api.start(&other).await;
    for run in &created {
        assert_eq!(api.finish(run).await["status"], "failed");
    }
    api.finish(&other_run).await;

    let mut seen = Vec::new();
    let mut path = format!("/runs?instance={failing}&limit=3");
    let mut pages = 0;
    loop {
        let page = api.get(&path).await;
        let page = page.ok(200);
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        for item in items {
            assert_eq!(item["instance_name"], "Fails");
            assert_eq!(item["experiment"], "failing");
            seen.push(item["run"]["id"].as_str().unwrap().to_owned());
        }
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(cursor) => path = format!("/runs?instance={failing}&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "every run once, newest first");

    // Filters, alone and together.
    let everything = api.get("/runs").await;
    assert_eq!(everything.ok(200)["items"].as_array().unwrap().len(), 8);
    assert!(everything.body.get("next_cursor").is_none(), "one page holds all: {:#}", everything.body);
    let by_experiment = api.get("/runs?experiment=training_curve").await;
    assert_eq!(by_experiment.ok(200)["items"][0]["run"]["id"], other_run.as_str());
    let failed = api.get("/runs?status=failed&experiment=failing&limit=500").await;
    assert_eq!(failed.ok(200)["items"].as_array().unwrap().len(), 7);
    let blank = api.get("/runs?experiment=&instance=&status=&cursor=&limit=").await;
    assert_eq!(blank.ok(200)["items"].as_array().unwrap().len(), 8, "blank parameters are left out");

    assert_eq!(api.get("/runs?status=finished").await.error(400, "invalid_input"), vec!["status"]);
    assert_eq!(api.get("/runs?cursor=page-2").await.error(400, "invalid_input"), vec!["cursor"]);
    assert_eq!(api.get("/runs?limit=-1").await.error(400, "invalid_input"), vec!["limit"]);
    assert_eq!(api.get("/runs?page=2").await.error(400, "invalid_input"), vec!["page"]);
}

#[tokio::test]
async fn a_waiting_or_running_run_is_cancelled_and_cancelling_a_finished_one_is_a_conflict() {
    let api = spawn().await;
    let sleeper = api.instance("sleeper", "Long", json!({"seconds": 3600, "step_ms": 10})).await;
    let run = api.start(&sleeper).await;

    let waited = api.get(&format!("/runs/{run}/wait?timeout_s=0")).await;
    assert_eq!(waited.ok(200)["ended"], false, "a zero timeout answers at once");

    let cancelled = api.post_empty(&format!("/runs/{run}/cancel")).await;
    assert_eq!(cancelled.ok(200)["id"], run.as_str());
    let ended = api.finish(&run).await;
    assert_eq!(ended["status"], "cancelled", "{ended:#}");

    let again = api.post_empty(&format!("/runs/{run}/cancel")).await;
    again.error(409, "conflict");
    let bad = api.get(&format!("/runs/{run}/wait?timeout_s=soon")).await;
    assert_eq!(bad.error(400, "invalid_input"), vec!["timeout_s"]);
}

#[tokio::test]
async fn streams_and_waits_beyond_the_limit_are_unavailable_until_one_ends() {
    let api = spawn_with(|service| service.with_max_held_answers(2)).await;
    let sleeper = api.instance("sleeper", "Long", json!({"seconds": 3600, "step_ms": 10})).await;
    let run = api.start(&sleeper).await;
    let open_stream = || api.client.get(format!("{}/runs/{run}/events", api.base)).send();
    let first = open_stream().await.unwrap();
    let second = open_stream().await.unwrap();
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));

    let third = read(open_stream().await.unwrap()).await;
    assert!(third.error(503, "unavailable").is_empty());
    assert!(third.body["message"].as_str().unwrap().contains("2 event streams and waits"), "{:#}", third.body);
    api.get(&format!("/runs/{run}/wait?timeout_s=0")).await.error(503, "unavailable");

    // Ending the run ends both streams, and their places free.
    api.post_empty(&format!("/runs/{run}/cancel")).await.ok(200);
    let (first, second) = (first.text().await.unwrap(), second.text().await.unwrap());
    assert!(first.contains("event: status") && second.contains("event: status"));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waited = api.get(&format!("/runs/{run}/wait?timeout_s=0")).await;
        if waited.status == StatusCode::OK {
            assert_eq!(waited.body["run"]["status"], "cancelled");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no place freed: {:#}", waited.body);
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn the_event_stream_sends_every_record_and_ends_with_the_terminal_status() {
    let api = spawn().await;
    let instance = api.quick_training_instance("Streamed").await;
    let run = api.start(&instance).await;
    // Subscribed while the run may still be going; the stream itself says when it is over.
    let response = api.client.get(format!("{}/runs/{run}/events", api.base)).send().await.unwrap();
    let events = read_events(response).await;

    assert_eq!(events.first().unwrap().name, "snapshot");
    assert_eq!(events[0].data["run"]["id"], run.as_str());
    let last = events.last().unwrap();
    assert_eq!(last.name, "status");
    assert_eq!(last.data["status"], "completed");
    assert!(events.iter().all(|e| ["snapshot", "records", "progress", "status"].contains(&e.name.as_str())));

    let mut streamed_logs = Vec::new();
    let mut streamed_results = Vec::new();
    for event in events.iter().filter(|e| e.name == "records") {
        let (logs, results) = (seqs(&event.data["logs"]), seqs(&event.data["results"]));
        let highest = logs.iter().chain(&results).max().unwrap();
        assert_eq!(event.id.as_deref(), Some(highest.to_string().as_str()), "a records event's id is its last seq");
        streamed_logs.extend(logs);
        streamed_results.extend(results);
    }
    let stored_logs = seqs(&api.get(&format!("/runs/{run}/logs?limit=5000")).await.ok(200)["items"]);
    let stored_results = seqs(&api.get(&format!("/runs/{run}/results?limit=5000")).await.ok(200)["items"]);
    assert_eq!(streamed_logs, stored_logs, "every log line, once, in order, before the status");
    assert_eq!(streamed_results, stored_results, "every result, once, in order, before the status");

    // Resuming after a `seq` (by parameter or by `Last-Event-ID`) replays only what came after it.
    let resume = *stored_logs.last().unwrap() - 1;
    for request in [
        api.client.get(format!("{}/runs/{run}/events?after={resume}", api.base)),
        api.client.get(format!("{}/runs/{run}/events", api.base)).header("last-event-id", resume.to_string()),
    ] {
        let events = read_events(request.send().await.unwrap()).await;
        let replayed: Vec<i64> = events
            .iter()
            .filter(|e| e.name == "records")
            .flat_map(|e| seqs(&e.data["logs"]).into_iter().chain(seqs(&e.data["results"])))
            .collect();
        assert!(replayed.iter().all(|seq| *seq > resume), "{replayed:?}");
        assert_eq!(events.last().unwrap().name, "status");
    }
}

#[tokio::test]
async fn an_instance_is_patched_partially_cloned_and_deleted() {
    let api = spawn().await;
    let id = api.quick_training_instance("Original").await;
    let path = format!("/instances/{id}");

    let patched = api.call(Method::PATCH, &path, Some(json!({"description": "notes"}))).await;
    let patched = patched.ok(200);
    assert_eq!(patched["description"], "notes");
    assert_eq!(patched["name"], "Original", "fields left out keep their value");
    assert_eq!(patched["config"]["epochs"], 5);

    let refused = api.call(Method::PATCH, &path, Some(json!({"name": "", "config": {"epochs": -1}}))).await;
    let fields = refused.error(400, "invalid_input");
    assert!(fields.contains(&"name".to_owned()) && fields.contains(&"config.epochs".to_owned()), "{fields:?}");
    let details = api.get(&path).await;
    let details = details.ok(200);
    assert_eq!(details["instance"]["name"], "Original", "a refused edit changes nothing");
    assert_eq!(details["experiment"]["name"], "training_curve");
    assert_eq!(details["runs"], json!([]));

    let copy = api.post_empty(&format!("{path}/clone")).await;
    let copy = copy.ok(201);
    assert_eq!(copy["name"], "Original (copy)");
    assert_eq!(copy["config"], patched["config"]);
    let named = api.post(&format!("{path}/clone"), json!({"name": "Second"})).await;
    assert_eq!(named.ok(201)["name"], "Second");
    let typo = api.post(&format!("{path}/clone"), json!({"nmae": "Second"})).await;
    assert_eq!(typo.error(400, "invalid_input"), vec!["nmae"]);
    assert_eq!(api.get("/instances").await.ok(200).as_array().unwrap().len(), 3);

    let run = api.start(&id).await;
    api.finish(&run).await;
    let deleted = api.call(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, 204);
    assert_eq!(deleted.body, Value::Null);
    api.get(&path).await.error(404, "not_found");
    api.get(&format!("/runs/{run}")).await.error(404, "not_found");
    api.call(Method::DELETE, &path, None).await.error(404, "not_found");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_its_error_body() {
    let api = spawn().await;
    let document = api.get("/openapi.json").await;
    let document = document.ok(200);
    assert!(document["openapi"].as_str().unwrap().starts_with("3."), "{:#}", document["openapi"]);
    let routes = [
        ("get", "/experiments"),
        ("get", "/experiments/{name}"),
        ("post", "/experiments/{name}/validate"),
        ("get", "/instances"),
        ("post", "/instances"),
        ("get", "/instances/{id}"),
        ("patch", "/instances/{id}"),
        ("delete", "/instances/{id}"),
        ("post", "/instances/{id}/clone"),
        ("post", "/instances/{id}/runs"),
        ("get", "/runs"),
        ("get", "/runs/{id}"),
        ("post", "/runs/{id}/cancel"),
        ("get", "/runs/{id}/wait"),
        ("get", "/runs/{id}/logs"),
        ("get", "/runs/{id}/results"),
        ("get", "/runs/{id}/events"),
        ("get", "/workers"),
        ("get", "/compare"),
        ("get", "/openapi.json"),
    ];
    let paths = document["paths"].as_object().unwrap();
    for (method, path) in routes {
        let operation = &paths.get(path).unwrap_or_else(|| panic!("{path} is missing"))[method];
        assert!(operation.is_object(), "{method} {path} is missing");
        let errors: Vec<&str> = operation["responses"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(status, _)| status.starts_with('4'))
            .map(|(_, response)| response["content"]["application/json"]["schema"]["$ref"].as_str().unwrap())
            .collect();
        assert!(errors.iter().all(|schema| schema.ends_with("/ErrorBody")), "{method} {path}: {errors:?}");
    }
    let documented: usize = paths.values().map(|item| item.as_object().unwrap().len()).sum();
    assert_eq!(documented, routes.len(), "no route beyond the list: {:?}", paths.keys().collect::<Vec<_>>());
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for name in [
        "ErrorBody",
        "ErrorCode",
        "FieldError",
        "Run",
        "Instance",
        "InstanceInput",
        "LogPage",
        "Comparison",
        "WorkerNode",
    ] {
        assert!(schemas.contains_key(name), "schema {name} is missing: {:?}", schemas.keys().collect::<Vec<_>>());
    }
    assert_eq!(document, &serde_json::to_value(athanor_api::openapi()).unwrap());
}

#[tokio::test]
async fn downloads_stream_csv_and_json_and_refuse_as_json() {
    let api = spawn().await;
    let instance = api.quick_training_instance("Exported").await;
    let (first, second) = (api.start(&instance).await, api.start(&instance).await);
    api.finish(&first).await;
    api.finish(&second).await;
    let download = |path: String| {
        let client = api.client.clone();
        let url = format!("{}{path}", api.root);
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
            response.text().await.unwrap()
        }
    };

    let stored_logs = api.get(&format!("/runs/{first}/logs?limit=5000")).await.ok(200)["items"].clone();
    let csv_text = download(format!("/export/runs/{first}/logs.csv")).await;
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["seq", "ts", "level", "message", "metadata"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), stored_logs.as_array().unwrap().len());
    assert_eq!(&rows[0][3], stored_logs[0]["message"].as_str().unwrap());

    let json_logs: Value = serde_json::from_str(&download(format!("/export/runs/{first}/logs.json")).await).unwrap();
    assert_eq!(json_logs, stored_logs);
    let stored_results = api.get(&format!("/runs/{first}/results?limit=5000")).await.ok(200)["items"].clone();
    let json_results: Value =
        serde_json::from_str(&download(format!("/export/runs/{first}/results.json")).await).unwrap();
    assert_eq!(json_results, stored_results);
    let results_csv = download(format!("/export/runs/{first}/results.csv")).await;
    let mut reader = csv::Reader::from_reader(results_csv.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["seq", "ts", "key", "value"]);
    assert_eq!(reader.records().count(), stored_results.as_array().unwrap().len());

    let comparison = download(format!("/export/compare.csv?runs={first},{second}")).await;
    let mut reader = csv::Reader::from_reader(comparison.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["run_id", "instance", "status", "section", "key", "step", "value"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(rows.iter().any(|r| &r[0] == second.as_str() && &r[3] == "series" && &r[4] == "loss"));
    let comparison: Value =
        serde_json::from_str(&download(format!("/export/compare.json?runs={first},{second}")).await).unwrap();
    assert_eq!(comparison["runs"].as_array().unwrap().len(), 2);

    let refused = |path: &str| {
        let request = api.client.get(format!("{}{path}", api.root));
        async move { read(request.send().await.unwrap()).await }
    };
    refused(&format!("/export/runs/{first}/logs.xml")).await.error(404, "not_found");
    refused("/export/runs/00000000-0000-4000-8000-000000000000/logs.csv").await.error(404, "not_found");
    assert_eq!(refused("/export/runs/nope/logs.csv").await.error(400, "invalid_input"), vec!["run_id"]);
    assert_eq!(refused("/export/compare.csv?runs=").await.error(400, "invalid_input"), vec!["runs"]);
}
