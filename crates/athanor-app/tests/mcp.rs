//! The MCP endpoint of the real server, driven by the official Python SDK (`clients/mcp/check_mcp.py`): what an
//! agent does, from "which experiments exist?" to a finished run's results, through every layer a real client
//! meets (host and origin checks, the token on a public bind, the service, the runtime).
//!
//! The Python client runs in a virtual environment at `$CARGO_TARGET_DIR/test-venv` (or `target/test-venv`),
//! created with `pip install 'mcp>=2,<3'` the first time, so `cargo test` needs nothing installed beforehand but
//! `python3`.

use athanor_app::server::{start, Config, Server};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tokio::process::Command;

fn config(dir: &Path, addr: &str, token: Option<&str>) -> Config {
    Config { addr: addr.parse().unwrap(), token: token.map(str::to_owned), ..Config::in_folder(dir) }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_owned()
}

/// Tests of this binary run in parallel; the first one creates the virtual environment while the others wait
/// (two creating it at once trip over each other's files).
static VENV: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A Python with the `mcp` 2.x package, creating the virtual environment on first use.
async fn python_with_mcp() -> PathBuf {
    let _only_one = VENV.lock().await;
    // A relative CARGO_TARGET_DIR is relative to where cargo was started, normally the workspace root (a test runs
    // in its crate's folder instead).
    let target = workspace_root().join(std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into()));
    let venv = target.join("test-venv");
    let python = venv.join("bin").join("python");
    let has_mcp = |python: PathBuf| async move {
        let probe = "import importlib.metadata as m, mcp; assert m.version('mcp').startswith('2.')";
        Command::new(python).args(["-c", probe]).output().await.is_ok_and(|out| out.status.success())
    };
    if has_mcp(python.clone()).await {
        return python;
    }
    // `--clear`: a folder left by an interrupted creation is made again from scratch.
    run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv), "creating the test virtual environment")
        .await;
    run(
        Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", "mcp>=2,<3"]),
        "installing the mcp package into the test virtual environment",
    )
    .await;
    assert!(has_mcp(python.clone()).await, "mcp 2.x is still not importable from {}", python.display());
    python
}

async fn run(command: &mut Command, doing: &str) -> Output {
    let output = command.output().await.unwrap_or_else(|error| panic!("{doing}: {error}"));
    assert!(
        output.status.success(),
        "{doing} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Run `check_mcp.py` against `url` (with `ATHANOR_TOKEN` when given) and assert it passed.
async fn check_mcp(url: &str, token: Option<&str>) {
    let python = python_with_mcp().await;
    let script = workspace_root().join("clients/mcp/check_mcp.py");
    let mut command = Command::new(python);
    command.arg(&script).arg(url).env_remove("ATHANOR_TOKEN").kill_on_drop(true);
    if let Some(token) = token {
        command.env("ATHANOR_TOKEN", token);
    }
    // The script bounds itself (two minutes); this only guards against a Python that never starts.
    let output = tokio::time::timeout(Duration::from_secs(300), command.output())
        .await
        .expect("check_mcp.py did not finish")
        .expect("check_mcp.py could not be started");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "check_mcp.py failed ({}):\n{stdout}\n{stderr}", output.status);
    // Shown with `--nocapture`: what the agent's side saw.
    println!("{stdout}");
    assert!(stdout.contains("MCP check passed"), "{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_goes_from_listing_experiments_to_a_finished_runs_results() {
    let dir = tempfile::tempdir().unwrap();
    let server: Server = start(config(dir.path(), "127.0.0.1:0", None)).await.unwrap();
    check_mcp(&format!("http://{}/mcp", server.addr), None).await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reaches_a_public_server_with_its_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = "mcp-test-token-0123456789";
    let server = start(config(dir.path(), "0.0.0.0:0", Some(token))).await.unwrap();
    check_mcp(&format!("http://127.0.0.1:{}/mcp", server.addr.port()), Some(token)).await;
    server.abort();
}
