//! Where experiments come from, through the real server on a random port: a manifest of command experiments that
//! is re-read while serving (and refuses to start when it is wrong), and Rust experiments of a crate of one's own.

use athanor_app::server::{start, Config, Server};
use athanor_core::{
    Description, ExperimentDefinition, ExperimentName, InstanceDraft, InstanceName, LifecycleEvent, Run, RunStatus,
};
use athanor_runtime::prelude::*;
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An experiment compiled into this test binary, as a user's own crate would register it: nothing in the
/// workspace lists it, and the server discovers it like the demos.
struct Greeting;

#[derive(Deserialize)]
struct GreetingConfig {
    name: String,
}

impl Experiment for Greeting {
    type Config = GreetingConfig;

    fn definition(&self) -> ExperimentDefinition {
        ExperimentDefinition::new("own_greeting", "0.1.0")
            .description("Lives in a crate of its own.")
            .schema(Schema::new().field(Field::string("name").default("world")))
    }

    async fn run(&self, ctx: RunContext, config: GreetingConfig) -> RunResult {
        ctx.info(format!("hello, {}", config.name)).await;
        ctx.result("greeted", config.name).await?;
        Ok(())
    }
}

register_experiment!(Greeting);

const HELLO: &str = r#"
[[experiment]]
name = "hello"
version = "1"
command = ["sh", "-c", "echo hello"]
"#;

const ADDED: &str = r#"
[[experiment]]
name = "added_later"
version = "1"
command = ["sh", "-c", "true"]
"#;

/// A bound on waiting for an event, so a regression fails instead of hanging.
const LIMIT: Duration = Duration::from_secs(30);

fn config(dir: &Path, manifest: Option<PathBuf>) -> Config {
    Config { experiments_manifest: manifest, ..Config::in_folder(dir) }
}

async fn call(server: &Server, endpoint: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response =
        reqwest::Client::new().post(format!("http://{}/api/{endpoint}", server.addr)).form(form).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Wait for the server to announce that its experiments changed (it re-reads the manifest on its own schedule).
async fn experiments_changed(lifecycle: &mut (impl futures::Stream<Item = LifecycleEvent> + Unpin)) {
    let seen = tokio::time::timeout(LIMIT, async {
        while let Some(event) = lifecycle.next().await {
            if event == LifecycleEvent::ExperimentsChanged {
                return true;
            }
        }
        false
    });
    assert!(seen.await.unwrap_or(false), "the server noticed the edit");
}

async fn experiment_names(server: &Server) -> Vec<String> {
    let (status, body) = call(server, "list_experiments", &[]).await;
    assert_eq!(status, 200, "{body}");
    let definitions: Vec<ExperimentDefinition> = serde_json::from_str(&body).unwrap();
    definitions.into_iter().map(|d| d.name.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_manifest_stops_the_server_at_start_naming_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("athanor.toml");
    let broken = format!("{HELLO}{ADDED}").replace("version = \"1\"", "version = \"\"").replace("true", "");
    std::fs::write(&manifest, broken).unwrap();
    let error = start(config(dir.path(), Some(manifest))).await.err().expect("the server refuses to start");
    let message = format!("{error:#}");
    assert!(message.contains("athanor.toml"), "{message}");
    assert!(message.contains("\"hello\"") && message.contains("\"added_later\""), "both experiments: {message}");
    assert!(message.contains("version"), "{message}");
    assert!(!dir.path().join("athanor.db").exists(), "nothing was written: the database was never opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_edits_reach_the_server_while_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("athanor.toml");
    std::fs::write(&manifest, HELLO).unwrap();
    let server = start(config(dir.path(), Some(manifest.clone()))).await.unwrap();
    let mut lifecycle = Box::pin(server.state.service.runtime().lifecycle_events());
    assert!(experiment_names(&server).await.contains(&"hello".to_owned()));
    assert!(experiment_names(&server).await.contains(&"own_greeting".to_owned()), "built-ins stay");
    let (_, problems) = call(&server, "manifest_problems", &[]).await;
    assert_eq!(problems, "null");

    std::fs::write(&manifest, format!("{HELLO}{ADDED}")).unwrap();
    experiments_changed(&mut lifecycle).await;
    let names = experiment_names(&server).await;
    assert!(names.contains(&"added_later".to_owned()) && names.contains(&"hello".to_owned()), "{names:?}");

    std::fs::write(&manifest, format!("{HELLO}{ADDED}").replace("command = [\"sh\", \"-c\", \"true\"]", "")).unwrap();
    experiments_changed(&mut lifecycle).await;
    let (status, problems) = call(&server, "manifest_problems", &[]).await;
    assert_eq!(status, 200);
    assert!(problems.contains("added_later") && problems.contains("command"), "{problems}");
    assert!(experiment_names(&server).await.contains(&"added_later".to_owned()), "the last good version stays");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crate_of_its_own_registers_rust_experiments_that_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), None)).await.unwrap();
    assert!(experiment_names(&server).await.contains(&"own_greeting".to_owned()));

    let draft = InstanceDraft {
        experiment: ExperimentName::parse("own_greeting").unwrap(),
        name: InstanceName::parse("greet Ada").unwrap(),
        description: Description::parse("").unwrap(),
        config: serde_json::json!({"name": "Ada"}),
    };
    let instance = server.state.service.store().create_instance(&draft).await.unwrap();
    let (status, body) = call(&server, "start_run", &[("instance_id", &instance.id.to_string())]).await;
    assert_eq!(status, 200, "{body}");
    let run: Run = serde_json::from_str(&body).unwrap();
    let ended =
        tokio::time::timeout(LIMIT, server.state.service.runtime().wait_for_end(run.id)).await.unwrap().unwrap();
    assert_eq!(ended.status, RunStatus::Completed, "{:?}", ended.error);
    let results = server.state.service.store().results(run.id, 0, 10).await.unwrap();
    assert_eq!(results.items[0].value, serde_json::json!("Ada"));
    server.abort();
}
