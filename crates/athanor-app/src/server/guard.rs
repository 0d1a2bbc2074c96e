//! Request hygiene in front of every route: foreign `Host` headers and cross-origin calls are refused, and
//! server-function errors get the HTTP status their kind deserves.
//!
//! Why: the server runs on a researcher's laptop. A web page elsewhere could otherwise POST to
//! `http://127.0.0.1:3000/api/start_run`, open the websocket that streams a run's logs, or reach the server through
//! a DNS name it controls that resolves to 127.0.0.1 (DNS rebinding). Browsers always send `Origin` on such
//! requests, and the `Host` they send names the attacker's domain, so checking both closes those doors while
//! leaving non-browser clients (curl, scripts, tests) alone.

use crate::error::AppError;
use athanor_core::api::{ErrorBody, ErrorCode};
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Which `Host` headers this server answers to.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    /// Exact `host[:port]` values accepted. Empty (a public bind with no configured name) accepts IP addresses and
    /// `localhost` only: DNS rebinding needs a DNS name, so refusing every other name closes it without knowing
    /// the machine's own.
    allowed: Vec<String>,
}

impl HostPolicy {
    /// Loopback binds accept only loopback names on the bound port (plus `extra`); other binds accept exactly the
    /// names in `extra` (from `ATHANOR_ALLOWED_HOSTS`) or, when it is empty, IP addresses and `localhost`.
    pub fn for_address(addr: SocketAddr, extra: &[String]) -> HostPolicy {
        let port = addr.port();
        let mut allowed: Vec<String> = extra.to_vec();
        if addr.ip().is_loopback() {
            for name in ["127.0.0.1", "localhost", "[::1]"] {
                allowed.push(format!("{name}:{port}"));
                if port == 80 {
                    allowed.push(name.to_owned());
                }
            }
        }
        HostPolicy { allowed }
    }

    /// The exact `host[:port]` names accepted; empty means "IP addresses and `localhost` only".
    pub fn hosts(&self) -> &[String] {
        &self.allowed
    }

    fn accepts(&self, host: &str) -> bool {
        if self.allowed.is_empty() {
            return is_ip_or_localhost(host);
        }
        self.allowed.iter().any(|allowed| allowed.eq_ignore_ascii_case(host))
    }
}

/// `10.0.0.5:3000`, `[::1]:3000`, `localhost:3000` (with or without a port).
fn is_ip_or_localhost(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':')
            .map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host })
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// A refused request, answered like every other error: an `ErrorBody` with the `forbidden` code and its status.
fn refuse(message: String) -> Response {
    let body = ErrorBody { code: ErrorCode::Forbidden, message, fields: Vec::new() };
    let status = StatusCode::from_u16(body.code.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    (status, axum::Json(body)).into_response()
}

/// The middleware: check `Host` and `Origin`, run the request, then give server-function errors a 4xx/5xx status
/// that matches what went wrong.
pub async fn guard(State(policy): State<Arc<HostPolicy>>, request: Request, next: Next) -> Response {
    let mut response = checked(&policy, request, next).await;
    // On every answer, refusals included: no other site may frame a page (a framed dashboard could be clicked
    // through by a page on top of it: Start, Delete), and no answer is sniffed into another content type.
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

async fn checked(policy: &HostPolicy, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
    if !policy.accepts(&host) {
        return refuse(format!("this server does not answer to Host {host:?}"));
    }
    let path = request.uri().path();
    let is_api = path.starts_with("/api/");
    // Every endpoint that acts: server functions and the JSON API under /api/, and the MCP endpoint.
    if is_api || path == "/mcp" || path.starts_with("/mcp/") {
        // Browsers mark requests another site started; some (older ones, or a `no-cors` fetch) omit `Origin`.
        let fetch_site = request.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok()).unwrap_or("");
        if fetch_site.eq_ignore_ascii_case("cross-site") {
            return refuse("a request started by another site is refused".into());
        }
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest.trim_end_matches('/'));
            if !origin_host.eq_ignore_ascii_case(&host) {
                return refuse(format!("cross-origin request from {origin:?} refused"));
            }
        }
    }
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    let response = next.run(request).await;
    if !is_api || is_read || !response.status().is_server_error() {
        return response;
    }
    // Server functions answer every error with 500; read the (small, JSON) body to pick the honest status.
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, 1 << 20).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "error body too large").into_response();
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = StatusCode::from_u16(error.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_binds_answer_only_to_loopback_names_on_their_port() {
        let policy = HostPolicy::for_address("127.0.0.1:3000".parse().unwrap(), &[]);
        assert!(policy.accepts("127.0.0.1:3000") && policy.accepts("localhost:3000") && policy.accepts("[::1]:3000"));
        assert!(!policy.accepts("127.0.0.1:3001"));
        assert!(!policy.accepts("attacker.example:3000"));
    }

    #[test]
    fn public_binds_without_names_refuse_dns_names() {
        let policy = HostPolicy::for_address("0.0.0.0:3000".parse().unwrap(), &[]);
        assert!(policy.accepts("192.168.1.20:3000") && policy.accepts("[fe80::1]:3000") && policy.accepts("localhost"));
        assert!(!policy.accepts("rebind.attacker.example:3000"));
        let named = HostPolicy::for_address("0.0.0.0:3000".parse().unwrap(), &["lab.example:3000".into()]);
        assert!(named.accepts("lab.example:3000") && !named.accepts("192.168.1.20:3000"));
    }
}
