//! The real server on a random port, against a real database, answering real HTTP.

use athanor_app::server::{start, Config, Server};

struct App {
    server: Server,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Start the app on 127.0.0.1:0 with a fresh SQLite file (or `database_url`), demo instances seeded.
async fn spawn_app(database_url: Option<String>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let defaults = Config::in_folder(dir.path());
    let config =
        Config { database_url: database_url.unwrap_or(defaults.database_url.clone()), seed_demos: true, ..defaults };
    let server = start(config).await.unwrap();
    let base = format!("http://{}", server.addr);
    App { server, base, client: reqwest::Client::new(), _dir: dir }
}

impl App {
    async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn dashboard_lists_seeded_instances(app: &App) {
    let (status, html) = app.get("/").await;
    assert_eq!(status, 200);
    for name in ["GPT-4 Baseline", "Claude Baseline", "Long sleep (cancel me)", "Model pairs", "Big nested result"] {
        assert!(html.contains(name), "{name} missing from the server-rendered dashboard:\n{html}");
    }
    assert!(html.contains("training_curve"), "experiment names are shown");
    assert!(html.contains("never run"), "instances without runs say so");
    assert!(html.contains("/pkg/athanor.js"), "the page loads the hydration bundle");
    assert!(html.contains("/pkg/athanor.wasm"), "and names the WebAssembly file cargo-leptos writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_is_server_rendered_with_the_demo_instances() {
    let app = spawn_app(None).await;
    dashboard_lists_seeded_instances(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_page_shows_its_configuration() {
    let app = spawn_app(None).await;
    let summaries = app.server.state.service.store().list_instances().await.unwrap();
    let pairs = summaries.iter().find(|s| s.instance.name.as_str() == "Model pairs").unwrap();
    let (status, html) = app.get(&format!("/instances/{}", pairs.instance.id)).await;
    assert_eq!(status, 200);
    for expected in ["Model pairs", "model_pairs", "llama-3", "timeout", "retries", "No runs yet."] {
        assert!(html.contains(expected), "{expected} missing from the instance page:\n{html}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_addresses_render_readable_errors() {
    let app = spawn_app(None).await;
    let (status, html) = app.get("/no/such/page").await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found"));

    let (_, html) = app.get("/instances/not-a-uuid").await;
    assert!(html.contains("is not a valid instance id"), "{html}");
    let (_, html) = app.get("/instances/00000000-0000-4000-8000-000000000000").await;
    assert!(html.contains("no instance with id 00000000-0000-4000-8000-000000000000"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_happens_once_only() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("athanor.db").display());
    let first = spawn_app(Some(url.clone())).await;
    let seeded = first.server.state.service.store().count_instances().await.unwrap();
    assert!(seeded >= 5);
    let victim = first.server.state.service.store().list_instances().await.unwrap()[0].instance.id;
    first.server.state.service.store().delete_instance(victim).await.unwrap();
    drop(first);

    let second = spawn_app(Some(url)).await;
    assert_eq!(
        second.server.state.service.store().count_instances().await.unwrap(),
        seeded - 1,
        "a restart re-adds nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_server_runs_on_postgres() {
    let admin =
        std::env::var("ATHANOR_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("athanor_http_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);

    let app = spawn_app(Some(url)).await;
    dashboard_lists_seeded_instances(&app).await;
    app.server.state.service.store().close().await;
    drop(app);
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut conn).await.unwrap();
}

impl App {
    /// POST a form-encoded server-function call; returns status and body.
    async fn call(&self, endpoint: &str, form: &[(&str, &str)], origin: Option<&str>) -> (u16, String) {
        let mut request = self.client.post(format!("{}/api/{endpoint}", self.base)).form(form);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    async fn first_instance(&self, name: &str) -> athanor_core::Instance {
        let all = self.server.state.service.store().list_instances().await.unwrap();
        all.into_iter().find(|s| s.instance.name.as_str() == name).unwrap().instance
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_cancel_refuse_bad_ids_with_4xx() {
    let app = spawn_app(None).await;
    let (status, body) = app.call("start_run", &[("instance_id", "not-a-uuid")], None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not a valid instance id"), "{body}");

    let (status, body) = app.call("start_run", &[("instance_id", "00000000-0000-4000-8000-000000000000")], None).await;
    assert_eq!(status, 404, "{body}");

    let (status, body) = app.call("start_run", &[("wrong_field", "x")], None).await;
    assert_eq!(status, 400, "a malformed body is the caller's fault: {body}");

    let (status, _) = app.call("cancel_run", &[("run_id", "nope")], None).await;
    assert_eq!(status, 400);
    let (status, _) = app.call("cancel_run", &[("run_id", "00000000-0000-4000-8000-000000000000")], None).await;
    assert_eq!(status, 404);

    let failing = app.first_instance("Diverging model").await;
    let (status, body) = app.call("start_run", &[("instance_id", &failing.id.to_string())], None).await;
    assert_eq!(status, 200, "{body}");
    let run: athanor_core::Run = serde_json::from_str(&body).unwrap();
    app.server.state.service.runtime().wait_idle().await;
    let (status, body) = app.call("cancel_run", &[("run_id", &run.id.to_string())], None).await;
    assert_eq!(status, 409, "cancelling a finished run is a conflict, not a malformed request: {body}");
    assert!(body.contains("already finished"), "{body}");
    let runs = app.server.state.service.store().list_runs(failing.id).await.unwrap();
    assert_eq!(runs.len(), 1, "only the valid call created a run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_calls_and_foreign_hosts_are_refused_and_write_nothing() {
    let app = spawn_app(None).await;
    let instance = app.first_instance("GPT-4 Baseline").await;
    let id = instance.id.to_string();

    let (status, body) = app.call("start_run", &[("instance_id", &id)], Some("http://evil.example")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("cross-origin"), "{body}");
    let (status, _) = app.call("delete_instance", &[("id", &id)], Some("http://127.0.0.1:1")).await;
    assert_eq!(status, 403, "another port on the same machine is another origin");
    assert!(app.server.state.service.store().list_runs(instance.id).await.unwrap().is_empty());
    assert!(app.server.state.service.store().get_instance(instance.id).await.unwrap().is_some());

    // A page's own origin is fine.
    let own = app.base.clone();
    let (status, body) = app.call("start_run", &[("instance_id", &id)], Some(&own)).await;
    assert_eq!(status, 200, "{body}");

    // DNS rebinding: a foreign name that resolves to us.
    let response = app.client.get(format!("{}/", app.base)).header("host", "attacker.example").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);

    // The websocket that streams runs refuses foreign pages too.
    let response = app
        .client
        .get(format!("{}/api/watch", app.base))
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "x3JJHMbDL1EzLkh9GBhXDw==")
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_an_instance_validates_every_field_and_writes_nothing_when_refused() {
    let app = spawn_app(None).await;
    let before = app.server.state.service.store().count_instances().await.unwrap();

    let bad = [
        ("experiment", "training_curve"),
        ("name", "   "),
        ("description", ""),
        ("config_json", r#"{"epochs": 0, "model": "gpt-5", "typo": 1}"#),
    ];
    let (status, body) = app.call("save_instance", &bad, None).await;
    assert_eq!(status, 400, "{body}");
    let error: athanor_app::error::AppError = serde_json::from_str(&body).unwrap();
    let athanor_app::error::AppError::Invalid { fields, .. } = error else { panic!("{body}") };
    let mut paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, vec!["epochs", "model", "name", "typo"]);
    assert!(fields.iter().any(|f| f.path == "epochs" && f.message == "must be at least 1"));

    let (status, body) = app
        .call(
            "save_instance",
            &[("experiment", "training_curve"), ("name", "x"), ("description", ""), ("config_json", "{oops")],
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("config_json") && body.contains("is not valid JSON"), "{body}");

    let (status, body) = app
        .call(
            "save_instance",
            &[("experiment", "no_such"), ("name", "x"), ("description", ""), ("config_json", "{}")],
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("no experiment named"), "{body}");
    assert_eq!(
        app.server.state.service.store().count_instances().await.unwrap(),
        before,
        "refused saves wrote nothing"
    );

    let good = [
        ("experiment", "training_curve"),
        ("name", "  From the API "),
        ("description", "made by a test"),
        ("config_json", r#"{"epochs": 3}"#),
    ];
    let (status, body) = app.call("save_instance", &good, None).await;
    assert_eq!(status, 200, "{body}");
    let saved: athanor_core::Instance = serde_json::from_str(&body).unwrap();
    assert_eq!(saved.name.as_str(), "From the API");
    assert_eq!(saved.config["epochs"], 3);
    assert_eq!(saved.config["learning_rate"], 0.05, "defaults are filled in at creation");

    // Editing keeps past runs' configuration.
    let run = app.server.state.service.runtime().start(saved.id).await.unwrap();
    let edit = [
        ("id", saved.id.to_string()),
        ("experiment", "training_curve".into()),
        ("name", "From the API".into()),
        ("description", "".into()),
        ("config_json", r#"{"epochs": 9}"#.into()),
    ];
    let edit: Vec<(&str, &str)> = edit.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body) = app.call("save_instance", &edit, None).await;
    assert_eq!(status, 200, "{body}");
    let stored_run = app.server.state.service.store().get_run(run.id).await.unwrap().unwrap();
    assert_eq!(stored_run.config["epochs"], 3);

    let (status, _) = app.call("delete_instance", &[("id", &saved.id.to_string())], None).await;
    assert_eq!(status, 200);
    assert!(app.server.state.service.store().get_run(run.id).await.unwrap().is_none(), "runs go with their instance");
    let (status, _) = app.call("delete_instance", &[("id", &saved.id.to_string())], None).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comparison_refuses_bad_ids_and_empty_selections() {
    let app = spawn_app(None).await;
    let (status, body) = app.call("get_comparison", &[("runs", "")], None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("choose at least one run"), "{body}");
    let (status, body) = app.call("get_comparison", &[("runs", "abc,def")], None).await;
    assert_eq!(status, 400);
    assert!(body.contains("\\\"abc\\\" is not a valid run id"), "{body}");
    let unknown = "00000000-0000-4000-8000-000000000000";
    let (status, body) = app.call("get_comparison", &[("runs", unknown)], None).await;
    assert_eq!(status, 404);
    assert!(body.contains(unknown), "{body}");

    let response = app.client.get(format!("{}/export/compare.csv?runs=", app.base)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let response = app.client.get(format!("{}/export/runs/{unknown}/logs.csv", app.base)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let response = app.client.get(format!("{}/export/runs/nope/logs.csv", app.base)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_read_back_with_a_csv_reader() {
    let app = spawn_app(None).await;
    let first = app.first_instance("GPT-4 Baseline").await;
    let second = app.first_instance("Claude Baseline").await;
    let store = &app.server.state.service.store();
    // Two finished runs with a result each, a tricky log line, and a series.
    let mut ids = Vec::new();
    for (instance, accuracy) in [(&first, 0.87), (&second, 0.91)] {
        let run = store.create_run(instance.id, &instance.config, "1").await.unwrap();
        let logs = [athanor_core::LogRecord {
            seq: 1,
            ts: chrono::Utc::now(),
            level: athanor_core::LogLevel::Warn,
            message: "quote \" comma , newline \n end".into(),
            metadata: Some(serde_json::json!({"k": [1, 2]})),
        }];
        let results = [
            athanor_core::ResultRecord {
                seq: 2,
                ts: chrono::Utc::now(),
                key: "accuracy".into(),
                value: accuracy.into(),
            },
            athanor_core::ResultRecord { seq: 3, ts: chrono::Utc::now(), key: "loss/1".into(), value: 0.5.into() },
        ];
        store.append_records(run.id, &logs, &results).await.unwrap();
        ids.push(run.id.to_string());
    }

    let text = app.client.get(format!("{}/export/runs/{}/logs.csv", app.base, ids[0])).send().await.unwrap();
    assert!(text.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let text = text.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(reader.headers().unwrap(), vec!["seq", "ts", "level", "message", "metadata"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(&rows[0][3], "quote \" comma , newline \n end");
    assert_eq!(&rows[0][4], r#"{"k":[1,2]}"#);

    let text = app
        .client
        .get(format!("{}/export/compare.csv?runs={}", app.base, ids.join(",")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let accuracy: Vec<(&str, &str)> =
        rows.iter().filter(|r| &r[3] == "result" && &r[4] == "accuracy").map(|r| (&r[0], &r[6])).collect();
    assert_eq!(accuracy, vec![(ids[0].as_str(), "0.87"), (ids[1].as_str(), "0.91")]);
    assert!(rows.iter().any(|r| &r[3] == "series" && &r[4] == "loss" && &r[5] == "1" && &r[6] == "0.5"));
    assert!(rows.iter().any(|r| &r[3] == "config" && &r[4] == "model" && &r[6] == "claude-3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_api_and_mcp_refuse_requests_another_site_starts_and_write_nothing() {
    let app = spawn_app(None).await;
    let instance = app.first_instance("GPT-4 Baseline").await;
    let start = format!("{}/api/v1/instances/{}/runs", app.base, instance.id);
    let cross_site = [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        // A `no-cors` request or an older browser may omit `Origin`; the fetch metadata still says where it came from.
        ("sec-fetch-site", "cross-site"),
    ];
    for (header, value) in cross_site {
        let refused = app.client.post(&start).header(header, value).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 403, "{header}: {value}");
        let body: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
        assert_eq!(body["code"], "forbidden", "{body}");
        let mcp = app.client.post(format!("{}/mcp", app.base)).header(header, value).body("{}").send().await;
        assert_eq!(mcp.unwrap().status().as_u16(), 403, "/mcp, {header}: {value}");
    }
    let store = app.server.state.service.store();
    assert!(store.list_runs(instance.id).await.unwrap().is_empty(), "no refused request started a run");

    let same_origin = app.client.post(&start).header("origin", &app.base).send().await.unwrap();
    assert_eq!(same_origin.status().as_u16(), 201, "the dashboard's own origin is welcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_can_be_framed_by_another_site() {
    let app = spawn_app(None).await;
    // One guard sets these on every answer; pages are checked by the browser tests, which load them whole.
    for path in ["/api/v1/instances", "/api/v1/openapi.json", "/export/compare.csv?runs="] {
        let response = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        let headers = response.headers().clone();
        // Read to the end: a page streams out, and an answer left half-read would keep its connection busy.
        response.text().await.unwrap();
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["content-security-policy"], "frame-ancestors 'none'", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
}
