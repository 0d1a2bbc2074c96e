//! The MCP endpoint served for real and driven by the official Python SDK (`clients/mcp/check_mcp.py`).
//!
//! The server is the one the app mounts: `nest_service("/mcp", athanor_mcp::service(..))` in an axum router on
//! 127.0.0.1:0, over a service on a SQLite file in a temporary folder with the demo experiments. The Python client
//! runs in a virtual environment at `$CARGO_TARGET_DIR/test-venv` (or `target/test-venv`), created with
//! `pip install 'mcp>=2,<3'` the first time, so `cargo test` needs nothing installed beforehand but `python3`.

use athanor_runtime::{Registry, Runtime, RuntimeConfig};
use athanor_service::Service;
use athanor_store::Store;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// A server with the MCP endpoint and nothing else, on a free loopback port. The temporary folder holding its
/// database lives as long as the returned guard.
async fn serve() -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("mcp.db").display())).await.unwrap();
    // Naming the demos keeps the linker from dropping their registrations before discovery looks for them.
    assert!(!athanor_demos::definitions().is_empty());
    let registry = Registry::discover().unwrap();
    let runtime = Runtime::new(store.clone(), registry, RuntimeConfig::default());
    let service = Service::new(store, runtime, None);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let port = addr.port();
    let hosts = vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    let router = axum::Router::new().nest_service("/mcp", athanor_mcp::service(service, hosts));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, dir)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).unwrap().to_owned()
}

/// A Python with the `mcp` 2.x package, creating the virtual environment on first use.
async fn python_with_mcp() -> PathBuf {
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
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv), "creating the test virtual environment").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_an_experiment_through_every_step() {
    let python = python_with_mcp().await;
    let (addr, _dir) = serve().await;
    let script = workspace_root().join("clients/mcp/check_mcp.py");
    let mut command = Command::new(python);
    command.arg(&script).arg(format!("http://{addr}/mcp")).kill_on_drop(true);
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

/// The `Host` allow-list handed to `service` is enforced by rmcp: another name for the same address (what DNS
/// rebinding produces) is refused before any tool runs, and an allowed one gets through.
#[tokio::test]
async fn a_foreign_host_header_is_refused() {
    let (addr, _dir) = serve().await;
    let list_tools = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    assert_eq!(post(addr, "attacker.example", list_tools).await, 403);
    assert_eq!(post(addr, &format!("localhost:{}", addr.port()), list_tools).await, 200);
}

/// The status code of a raw HTTP/1.1 POST to `/mcp` with the given `Host` header.
async fn post(addr: SocketAddr, host: &str, body: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // The status line is all this needs; SSE answers close once their one message is sent.
    let mut buffer = [0; 1024];
    while !response.windows(2).any(|w| w == b"\r\n") {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "connection closed before a status line");
        response.extend_from_slice(&buffer[..read]);
    }
    let status_line = String::from_utf8_lossy(&response);
    status_line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("{status_line}"))
}
