//! The HTTP side: building URLs under `--url`, sending the token, and turning every failure into a [`CliError`]
//! that says what happened (the server's error body, an unreachable server, an unexpected answer).
//!
//! Answers are read as [`serde_json::Value`] first ([`Answer`]): `--json` prints exactly what the server sent,
//! and the human renderings decode the same value into the wire types of `athanor_core`.

use crate::error::CliError;
use athanor_core::api::ErrorBody;
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// How long to wait for a connection before saying the server is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a response may stay silent before the connection counts as dead. Longer than the server's longest
/// deliberate silence (the CLI asks `/runs/{id}/wait` to hold for 30 s at most; event streams send keep-alive
/// comments more often).
const READ_TIMEOUT: Duration = Duration::from_secs(90);

/// A client of one Athanor server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The server's root (`--url`), e.g. `http://127.0.0.1:3000/` or `https://lab.example.org/athanor/`.
    base: Url,
    token: Option<String>,
}

/// A successful answer: its JSON (`null` for an empty body, as after `DELETE`) and where it came from.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The URL asked, for error messages.
    pub url: Url,
    /// The body, parsed.
    pub value: Value,
    /// The body as the server sent it (`--json` prints it in the server's key order).
    pub raw: String,
}

impl Answer {
    /// The body as a wire type; an answer of another shape is a [`CliError::Decode`] naming the URL.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CliError> {
        T::deserialize(&self.value)
            .map_err(|error| CliError::Decode { url: self.url.to_string(), detail: error.to_string() })
    }
}

impl Client {
    /// A client of the server at `base`, sending `token` as a bearer token when given.
    pub fn new(base: Url, token: Option<String>) -> Result<Client, CliError> {
        if base.scheme() == "https" && !cfg!(feature = "tls") {
            return Err(CliError::local(format!(
                "{base} is an https:// URL, but this athanor was built without TLS (build it with the `tls` feature \
                 of athanor-cli, or use http://)"
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("athanor-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|error| CliError::local(format!("cannot set up HTTP: {error}")))?;
        // Trimmed like the server trims it (a token read with `$(cat athanor.token)` may end in a newline); an empty
        // token (`ATHANOR_TOKEN=`) means none.
        let token = token.map(|token| token.trim().to_owned()).filter(|token| !token.is_empty());
        Ok(Client { http, base, token })
    }

    /// A URL of the JSON API: `segments` under `<base>/api/v1/`, each percent-encoded as one path segment.
    pub fn api(&self, segments: &[&str]) -> Url {
        let mut all = vec!["api", "v1"];
        all.extend_from_slice(segments);
        self.url(&all)
    }

    /// A URL under the server's root, outside the API (the `/export/…` downloads).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            // `--url` was checked to be a base URL, so it has path segments.
            let mut path = url.path_segments_mut().expect("an http(s) URL has a path");
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// `GET url?query` and read the JSON answer.
    pub async fn get(&self, url: Url, query: &[(&str, String)]) -> Result<Answer, CliError> {
        let request = self.http.get(url.clone()).query(query);
        self.json(url, request).await
    }

    /// `POST url` with a JSON body, or none.
    pub async fn post(&self, url: Url, body: Option<&impl Serialize>) -> Result<Answer, CliError> {
        let mut request = self.http.post(url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        self.json(url, request).await
    }

    /// `PATCH url` with a JSON body.
    pub async fn patch(&self, url: Url, body: &impl Serialize) -> Result<Answer, CliError> {
        let request = self.http.request(Method::PATCH, url.clone()).json(body);
        self.json(url, request).await
    }

    /// `DELETE url`.
    pub async fn delete(&self, url: Url) -> Result<Answer, CliError> {
        let request = self.http.delete(url.clone());
        self.json(url, request).await
    }

    /// `GET url?query` and hand back the response to read as a stream (event streams, downloads), once its
    /// status says it succeeded.
    pub async fn open(&self, url: Url, query: &[(&str, String)], accept: &str) -> Result<Response, CliError> {
        let request = self.http.get(url.clone()).query(query).header(reqwest::header::ACCEPT, accept);
        self.send(&url, request).await
    }

    async fn json(&self, url: Url, request: RequestBuilder) -> Result<Answer, CliError> {
        let request = request.header(reqwest::header::ACCEPT, "application/json");
        let response = self.send(&url, request).await?;
        let bytes = response.bytes().await.map_err(|error| self.transport(&error))?;
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        let value = if raw.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw)
                .map_err(|error| CliError::Decode { url: url.to_string(), detail: format!("not JSON ({error})") })?
        };
        Ok(Answer { url, value, raw })
    }

    /// Send with the token; an error status becomes the server's [`ErrorBody`] (or a [`CliError::Status`]).
    async fn send(&self, url: &Url, mut request: RequestBuilder) -> Result<Response, CliError> {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|error| self.transport(&error))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        Err(error_from_answer(url, status, &text))
    }

    fn transport(&self, error: &reqwest::Error) -> CliError {
        if error.is_connect() {
            return CliError::Connect { base: self.base_text(), detail: root_cause(error) };
        }
        if error.is_timeout() {
            return CliError::Transport(format!("the server at {} stopped answering (timed out)", self.base_text()));
        }
        CliError::Transport(format!("talking to {}: {}", self.base_text(), root_cause(error)))
    }

    /// The base URL as the user typed it: `http://127.0.0.1:3000`, not `http://127.0.0.1:3000/`.
    fn base_text(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }
}

/// What an error status and its body mean: the server's error body when there is one, else the status and the
/// start of whatever text came (a proxy's page, a plain-text message).
pub fn error_from_answer(url: &Url, status: StatusCode, text: &str) -> CliError {
    if let Ok(body) = serde_json::from_str::<ErrorBody>(text) {
        return CliError::Api { status: status.as_u16(), body };
    }
    let first_line = text.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or("");
    let mut text: String = first_line.chars().take(200).collect();
    if text.len() < first_line.len() {
        text.push('…');
    }
    CliError::Status { status: status.as_u16(), url: url.to_string(), text }
}

/// The innermost error's message: "Connection refused (os error 111)" rather than "error sending request".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use athanor_core::api::ErrorCode;

    fn client(base: &str) -> Client {
        Client::new(Url::parse(base).unwrap(), None).unwrap()
    }

    #[test]
    fn api_urls_go_under_the_base_and_encode_each_segment() {
        let local = client("http://127.0.0.1:3000");
        assert_eq!(local.api(&["runs", "abc", "logs"]).as_str(), "http://127.0.0.1:3000/api/v1/runs/abc/logs");
        assert_eq!(
            local.url(&["export", "runs", "x", "logs.csv"]).as_str(),
            "http://127.0.0.1:3000/export/runs/x/logs.csv"
        );
        // Behind a proxy at a path, with or without the trailing slash.
        for base in ["http://lab/athanor", "http://lab/athanor/"] {
            assert_eq!(client(base).api(&["experiments"]).as_str(), "http://lab/athanor/api/v1/experiments");
        }
        assert_eq!(local.api(&["experiments", "a/b c"]).as_str(), "http://127.0.0.1:3000/api/v1/experiments/a%2Fb%20c");
    }

    #[test]
    fn error_answers_become_the_servers_error_or_the_status() {
        let url = Url::parse("http://x/api/v1/runs").unwrap();
        let body = r#"{"code":"not_found","message":"no run with id 1"}"#;
        match error_from_answer(&url, StatusCode::NOT_FOUND, body) {
            CliError::Api { status: 404, body } => assert_eq!(body.code, ErrorCode::NotFound),
            other => panic!("{other:?}"),
        }
        match error_from_answer(&url, StatusCode::BAD_GATEWAY, "\n  <html>Bad gateway</html>\nmore") {
            CliError::Status { status: 502, text, .. } => assert_eq!(text, "<html>Bad gateway</html>"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn https_needs_the_tls_feature() {
        let result = Client::new(Url::parse("https://lab.example.org").unwrap(), None);
        assert_eq!(result.is_ok(), cfg!(feature = "tls"));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connect_error_naming_the_url() {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let error = client("http://127.0.0.1:1").get(client("http://127.0.0.1:1").api(&["runs"]), &[]).await;
        match error {
            Err(CliError::Connect { base, .. }) => assert_eq!(base, "http://127.0.0.1:1"),
            other => panic!("{other:?}"),
        }
    }
}
