//! Who may use a server that listens beyond loopback: whoever holds its token.
//!
//! Threat model (also in ARCHITECTURE.md): on a plain loopback bind only processes of this machine can connect, and
//! the Host/Origin checks in [`super::guard`] keep web pages out, so no token is asked unless the operator sets one
//! (`ATHANOR_TOKEN`, e.g. on a machine shared with other accounts). On any other bind, or behind a proxy
//! (`ATHANOR_ALLOWED_HOSTS`), anyone who can reach the port could start runs (which execute the operator's code with
//! the operator's rights), read every configuration and result, and delete instances; so every request needs the
//! token. Scripts, the CLI and MCP
//! clients send it as `Authorization: Bearer <token>`; a browser exchanges it once at `/login` for a session
//! cookie (HttpOnly, so page scripts cannot read it; SameSite=Strict, so another site cannot ride on it). The
//! token travels in clear over plain HTTP: put a TLS proxy in front of a server reachable from untrusted networks.
//!
//! What stays open without a token: `/login` itself and the static build files that exist (`/pkg/…`,
//! `/favicon.svg`), which hold no data. A missing static file is not open: the fallback behind it renders pages.

use athanor_core::api::{ErrorBody, ErrorCode};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The shortest token accepted: shorter ones can be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

/// Sessions kept at most; past this the oldest logins must log in again (memory stays bounded whatever
/// logins a client attempts).
const MAX_SESSIONS: usize = 10_000;

/// The cookie a browser gets at `/login`.
const SESSION_COOKIE: &str = "athanor_session";

/// The token a server requires, and the browser sessions opened with it.
pub struct Access {
    token: String,
    /// The folder of the static build files, which are served without a token.
    site_root: PathBuf,
    /// Session ids handed out, in login order (oldest first), so the cap drops the oldest.
    sessions: Mutex<Vec<String>>,
}

impl Access {
    /// Require `token` (at least [`MIN_TOKEN_LEN`] characters); the files under `site_root` stay open.
    pub fn new(token: String, site_root: PathBuf) -> anyhow::Result<Access> {
        if token.trim().len() < MIN_TOKEN_LEN {
            anyhow::bail!(
                "the access token (ATHANOR_TOKEN or its token file) is too short ({} characters); use at least \
                 {MIN_TOKEN_LEN}, e.g. from `openssl rand -hex 32`",
                token.trim().len()
            );
        }
        Ok(Access { token: token.trim().to_owned(), site_root, sessions: Mutex::new(Vec::new()) })
    }

    /// `/favicon.svg` or a file under `/pkg/` that exists in the site folder (no `..` can leave it).
    fn is_static_file(&self, path: &str) -> bool {
        let static_path = path == "/favicon.svg" || path.starts_with("/pkg/");
        let relative = path.trim_start_matches('/');
        static_path
            && !relative.split('/').any(|part| part == ".." || part.is_empty())
            && self.site_root.join(relative).is_file()
    }

    fn accepts_token(&self, given: &str) -> bool {
        constant_time_eq(given.trim().as_bytes(), self.token.as_bytes())
    }

    fn open_session(&self) -> String {
        let id = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let mut sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if sessions.len() >= MAX_SESSIONS {
            sessions.remove(0);
        }
        sessions.push(id.clone());
        id
    }

    fn has_session(&self, id: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sessions.iter().any(|known| constant_time_eq(known.as_bytes(), id.as_bytes()))
    }

    /// Whether the request carries the token or a live session.
    fn admits(&self, headers: &HeaderMap) -> bool {
        // The scheme name is case-insensitive (RFC 9110); some clients send `bearer`.
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token);
        if bearer.is_some_and(|token| self.accepts_token(token)) {
            return true;
        }
        cookie(headers, SESSION_COOKIE).is_some_and(|id| self.has_session(&id))
    }
}

/// Compare without an early exit, so the time taken does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok()).find_map(|line| {
        line.split(';').find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
    })
}

/// The token for a server on a non-loopback address: `ATHANOR_TOKEN` when set, else the one in `file`, else a new
/// one written to `file` (readable by its owner only) and printed once to stderr.
pub fn resolve_token(from_env: Option<String>, file: &Path) -> anyhow::Result<String> {
    use anyhow::Context as _;
    if let Some(token) = from_env {
        return Ok(token);
    }
    if file.exists() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %file.display(),
                "the token file can be read by other accounts (mode {:o}); `chmod 600` it",
                mode & 0o777
            );
        }
        return std::fs::read_to_string(file).map(|text| text.trim().to_owned()).with_context(|| {
            format!("could not read the token file {}; set ATHANOR_TOKEN or fix the file", file.display())
        });
    }
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    write_private(file, &token)
        .with_context(|| format!("could not create the token file {}; set ATHANOR_TOKEN instead", file.display()))?;
    eprintln!(
        "\nThis server listens beyond loopback, so every client needs its access token (saved in {}; shown once):\n\n    {token}\n\nBrowsers ask for it once; scripts and the CLI send it with ATHANOR_TOKEN.\n",
        file.display()
    );
    Ok(token)
}

fn write_private(file: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // Created with owner-only permissions from the start: there is no moment when others could read it.
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file)?;
    writeln!(out, "{token}")
}

/// The middleware: admit requests with the token or a session; send browsers without one to `/login`, answer
/// everything else 401.
pub async fn require_token(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let open = path == "/login" || access.is_static_file(path);
    if open || access.admits(request.headers()) {
        return next.run(request).await;
    }
    let wants_page = request.method() == Method::GET
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"));
    if wants_page {
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let next_param: String = url_escape(target);
        return Redirect::to(&format!("/login?next={next_param}")).into_response();
    }
    let body = ErrorBody {
        code: ErrorCode::Unauthorized,
        message: "this server needs its access token: send `Authorization: Bearer <token>` (ATHANOR_TOKEN)".into(),
        fields: Vec::new(),
    };
    let status = StatusCode::from_u16(body.code.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    (status, [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))], axum::Json(body)).into_response()
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Where to go after logging in: a path on this server only, never another site. Only visible ASCII is accepted
/// (browsers drop tabs and newlines from URLs, so `/\t/evil.example` would become `//evil.example`), and the second
/// character must not start an authority (`//evil.example`, `/\\evil.example`).
fn local_target(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && path.bytes().all(|b| (0x21..=0x7e).contains(&b))
                && !matches!(path.as_bytes().get(1), Some(b'/' | b'\\')) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    next: Option<String>,
}

/// `GET /login` and `POST /login`.
pub fn routes(access: Arc<Access>) -> Router {
    Router::new()
        .route(
            "/login",
            get(|axum::extract::Query(query): axum::extract::Query<LoginQuery>| async move {
                login_page(&local_target(query.next.as_deref()), None)
            })
            .post(|State(access): State<Arc<Access>>, Form(form): Form<LoginForm>| async move {
                let target = local_target(form.next.as_deref());
                if !access.accepts_token(&form.token) {
                    let page = login_page(&target, Some("That is not this server's token."));
                    return (StatusCode::UNAUTHORIZED, page).into_response();
                }
                let session = access.open_session();
                let cookie = format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict");
                ([(header::SET_COOKIE, cookie)], Redirect::to(&target)).into_response()
            }),
        )
        .with_state(access)
}

/// The login page: plain HTML (no WebAssembly needed), styled by the dashboard's stylesheet.
fn login_page(next: &str, error: Option<&str>) -> Html<String> {
    let escape =
        |text: &str| text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let error = error.map(|e| format!(r#"<p class="error-text" role="alert">{}</p>"#, escape(e))).unwrap_or_default();
    Html(format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Sign in · Athanor</title>
<link rel="icon" type="image/svg+xml" href="/favicon.svg">
<link rel="stylesheet" href="/pkg/athanor.css">
</head>
<body>
<main class="page login">
<section class="card">
<h1>Athanor</h1>
<p>This server is reachable from the network, so it asks for its access token once. The operator has it: it is
the server's <code>ATHANOR_TOKEN</code>, or the token file the server named when it first started
(<code>athanor.token</code> unless <code>ATHANOR_TOKEN_FILE</code> says otherwise).</p>
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
{error}
<div class="form-actions"><button type="submit" class="primary">Sign in</button></div>
</form>
</section>
</main>
</body>
</html>"#,
        next = escape(next),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens_are_refused_with_the_reason() {
        let error = Access::new("short".into(), PathBuf::new()).err().unwrap().to_string();
        assert!(error.contains("too short"), "{error}");
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(local_target(Some("/runs?status=failed")), "/runs?status=failed");
        assert_eq!(local_target(Some("//evil.example/")), "/");
        assert_eq!(local_target(Some("https://evil.example/")), "/");
        assert_eq!(local_target(Some("/\t/evil.example/")), "/", "a tab browsers would drop");
        assert_eq!(local_target(Some("/\n/evil.example/")), "/");
        assert_eq!(local_target(Some("/\\evil.example/")), "/");
        assert_eq!(local_target(None), "/");
    }

    #[test]
    fn a_token_file_is_created_private_once_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("athanor.token");
        let first = resolve_token(None, &file).unwrap();
        assert!(first.len() >= MIN_TOKEN_LEN);
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(resolve_token(None, &file).unwrap(), first, "the next start reuses it");
        assert_eq!(resolve_token(Some("from-the-environment!".into()), &file).unwrap(), "from-the-environment!");
    }

    #[test]
    fn sessions_are_bounded_and_checked_exactly() {
        let access = Access::new("0123456789abcdef0123".into(), PathBuf::new()).unwrap();
        let first = access.open_session();
        assert!(access.has_session(&first) && !access.has_session("nope"));
        for _ in 0..MAX_SESSIONS {
            access.open_session();
        }
        assert!(!access.has_session(&first), "the oldest session is dropped at the cap");
    }
}
