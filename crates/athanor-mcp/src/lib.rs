//! Athanor's MCP server: every operation of [`athanor_service::Service`] as a tool an AI agent can call, served
//! over MCP's streamable HTTP transport.
//!
//! Mount it in the app's axum router:
//!
//! ```
//! fn with_mcp(router: axum::Router, service: athanor_service::Service, hosts: Vec<String>) -> axum::Router {
//!     router.nest_service("/mcp", athanor_mcp::service(service, hosts))
//! }
//! ```
//!
//! An agent connects to `http://<host>/mcp`, lists the tools and calls them. The sixteen tools and what each
//! answers are in [`AthanorMcp`]'s `tools/list` (each description is written for the agent). Their vocabulary is
//! the one agents know from the system Athanor re-implements: an *experiment* is a saved configuration (Athanor's
//! instance), a *module* is experiment code (Athanor's experiment).
//!
//! - `tools.rs` — the tools, each a thin translation: parse the arguments, call the service, answer JSON;
//! - `args.rs` — their argument structs, which are also their input JSON Schemas;
//! - `answer.rs` — how success and refusal look on the wire (every refusal is a tool error carrying an
//!   [`ErrorBody`](athanor_core::api::ErrorBody));
//! - `results.rs` — the per-key summary of a run's results and the values of one key.

mod answer;
mod args;
mod results;
mod tools;

pub use tools::AthanorMcp;

use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;

/// The MCP endpoint as a tower service; see [`service`].
pub type McpService = StreamableHttpService<AthanorMcp, NeverSessionManager>;

/// The MCP endpoint as an axum service, to mount with `router.nest_service("/mcp", athanor_mcp::service(service,
/// allowed_hosts))`.
///
/// `allowed_hosts` is the `Host` allow-list that rmcp enforces itself against DNS rebinding (a refused host gets
/// 403): entries are `host` (any port) or `host:port` (that port only), compared case-insensitively, IPv6 with or
/// without brackets (`[::1]:3000`). Pass the same names the rest of the server answers to. An empty list turns
/// rmcp's check off (rmcp's own convention); do that only when a middleware in front already checks `Host`.
/// `Origin` is not checked here: the app's middleware does that for every route alike.
///
/// The server is **stateless**: every POST carries one JSON-RPC message and is answered on its own, with no
/// `Mcp-Session-Id` to keep (rmcp's `legacy_session_mode` off, [`NeverSessionManager`]). Every tool reads and
/// writes the database through the service, so a session would hold nothing worth keeping, and without one a
/// simple client (curl, a script) needs no handshake bookkeeping, a server restart does not strand clients on a
/// session id the new process never issued, and abandoned sessions cannot accumulate in memory. Clients that still
/// send `initialize` first (the handshake of protocol versions before 2026-07-28) are answered as usual.
///
/// Answers are streamed as server-sent events, not plain JSON, because `wait_for_run` may hold a call for up to
/// ten minutes: rmcp's SSE keep-alive (a comment every 15 s) keeps clients' read timeouts (the Python SDK's is
/// 5 minutes) and proxies' idle timeouts from cutting a wait short.
pub fn service(service: athanor_service::Service, allowed_hosts: Vec<String>) -> McpService {
    let tools = AthanorMcp::new(service);
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(false)
        .with_allowed_hosts(allowed_hosts);
    // A handler per request is a clone: two reference-count increments.
    StreamableHttpService::new(move || Ok(tools.clone()), Arc::new(NeverSessionManager::default()), config)
}
