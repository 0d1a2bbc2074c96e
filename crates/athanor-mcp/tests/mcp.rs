//! The MCP endpoint served for real: `nest_service("/mcp", athanor_mcp::service(..))` in an axum router on
//! 127.0.0.1:0, over a service on a SQLite file in a temporary folder with the demo experiments.
//!
//! The whole agent flow through the official Python SDK runs against the real server, with its host, origin and
//! token checks, in `crates/athanor-app/tests/mcp.rs`.

use athanor_runtime::{Registry, Runtime, RuntimeConfig};
use athanor_service::Service;
use athanor_store::Store;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
