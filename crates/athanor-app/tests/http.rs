//! The real server on a random port, against a real database, answering real HTTP.

use athanor_app::server::{start, Config, Server};
use std::path::PathBuf;

struct App {
    server: Server,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// Start the app on 127.0.0.1:0 with a fresh SQLite file (or `database_url`), demo instances seeded.
async fn spawn_app(database_url: Option<String>) -> App {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: database_url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("athanor.db").display())),
        addr: "127.0.0.1:0".parse().unwrap(),
        site_root: PathBuf::from(dir.path()),
        seed_demos: true,
        runtime: Default::default(),
    };
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
}

#[tokio::test]
async fn dashboard_is_server_rendered_with_the_demo_instances() {
    let app = spawn_app(None).await;
    dashboard_lists_seeded_instances(&app).await;
}

#[tokio::test]
async fn instance_page_shows_its_configuration() {
    let app = spawn_app(None).await;
    let summaries = app.server.state.store.list_instances().await.unwrap();
    let pairs = summaries.iter().find(|s| s.instance.name.as_str() == "Model pairs").unwrap();
    let (status, html) = app.get(&format!("/instances/{}", pairs.instance.id)).await;
    assert_eq!(status, 200);
    for expected in ["Model pairs", "model_pairs", "llama-3", "timeout", "retries", "No runs yet."] {
        assert!(html.contains(expected), "{expected} missing from the instance page:\n{html}");
    }
}

#[tokio::test]
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

#[tokio::test]
async fn seeding_happens_once_only() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("athanor.db").display());
    let first = spawn_app(Some(url.clone())).await;
    let seeded = first.server.state.store.count_instances().await.unwrap();
    assert!(seeded >= 5);
    let victim = first.server.state.store.list_instances().await.unwrap()[0].instance.id;
    first.server.state.store.delete_instance(victim).await.unwrap();
    drop(first);

    let second = spawn_app(Some(url)).await;
    assert_eq!(second.server.state.store.count_instances().await.unwrap(), seeded - 1, "a restart re-adds nothing");
}

#[tokio::test]
async fn the_same_server_runs_on_postgres() {
    let admin =
        std::env::var("ATHANOR_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("athanor_http_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);

    let app = spawn_app(Some(url)).await;
    dashboard_lists_seeded_instances(&app).await;
    app.server.state.store.close().await;
    drop(app);
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut conn).await.unwrap();
}
