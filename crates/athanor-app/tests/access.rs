//! Access control on the real server: a non-loopback bind requires its token from every client, browsers log in
//! once for a session cookie, and a server that cannot have a good token does not start.

use athanor_app::server::{start, Config, Server};
use reqwest::redirect::Policy;
use std::path::Path;

const TOKEN: &str = "test-token-0123456789abcdef";

fn config(dir: &Path, addr: &str, token: Option<&str>) -> Config {
    Config { addr: addr.parse().unwrap(), seed_demos: true, token: token.map(str::to_owned), ..Config::in_folder(dir) }
}

struct Public {
    server: Server,
    /// The server through the loopback interface (it listens on every interface).
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Public {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn public_server() -> Public {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "0.0.0.0:0", Some(TOKEN))).await.unwrap();
    let base = format!("http://127.0.0.1:{}", server.addr.port());
    let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    Public { server, base, client, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_server_answers_the_api_and_mcp_only_with_its_token() {
    let app = public_server().await;
    let url = format!("{}/api/v1/instances", app.base);
    let refused = app.client.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = serde_json::from_str(&refused.text().await.unwrap()).unwrap();
    assert_eq!(body["code"], "unauthorized", "{body}");

    let wrong = app.client.get(&url).bearer_auth("test-token-0123456789abcdeX").send().await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401, "a near miss is still refused");

    let admitted = app.client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(admitted.status().as_u16(), 200);
    let instances: Vec<serde_json::Value> = serde_json::from_str(&admitted.text().await.unwrap()).unwrap();
    assert!(!instances.is_empty(), "the demo instances are listed");

    let mcp = app.client.post(format!("{}/mcp", app.base)).body("{}").send().await.unwrap();
    assert_eq!(mcp.status().as_u16(), 401, "the MCP endpoint needs the token too");
    let server_fn = app.client.post(format!("{}/api/list_instances", app.base)).send().await.unwrap();
    assert_eq!(server_fn.status().as_u16(), 401, "and so do the dashboard's server functions");
    let export = app.client.get(format!("{}/export/compare.csv?runs=", app.base)).send().await.unwrap();
    assert_eq!(export.status().as_u16(), 401, "and the downloads");
    let missing_asset = app.client.get(format!("{}/pkg/no-such-file.js", app.base)).send().await.unwrap();
    assert_eq!(missing_asset.status().as_u16(), 401, "only static files that exist are open");
    let lowercase = app.client.get(&url).header("authorization", format!("bearer {TOKEN}")).send().await.unwrap();
    assert_eq!(lowercase.status().as_u16(), 200, "the scheme name is case-insensitive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_logs_in_once_and_keeps_a_strict_http_only_session() {
    let app = public_server().await;
    let page = app.client.get(format!("{}/runs?status=failed", app.base)).header("accept", "text/html").send().await;
    let page = page.unwrap();
    assert_eq!(page.status().as_u16(), 303, "a page without a session goes to the login page");
    assert_eq!(page.headers()["location"], "/login?next=/runs%3Fstatus%3Dfailed");

    let login = app.client.get(format!("{}/login?next=/runs", app.base)).send().await.unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let html = login.text().await.unwrap();
    assert!(html.contains("Access token") && html.contains(r#"name="next" value="/runs""#), "{html}");

    let wrong = app.client.post(format!("{}/login", app.base)).form(&[("token", "guess"), ("next", "/")]).send();
    let wrong = wrong.await.unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none(), "a wrong token opens no session");
    assert!(wrong.text().await.unwrap().contains("not this server's token"));

    let form = [("token", TOKEN), ("next", "/runs")];
    let right = app.client.post(format!("{}/login", app.base)).form(&form).send().await.unwrap();
    assert_eq!(right.status().as_u16(), 303);
    assert_eq!(right.headers()["location"], "/runs");
    let cookie = right.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();

    let dashboard = app.client.get(format!("{}/", app.base)).header("cookie", &session).send().await.unwrap();
    assert_eq!(dashboard.status().as_u16(), 200);
    assert!(dashboard.text().await.unwrap().contains("GPT-4 Baseline"), "the session opens the dashboard");
    let api = app.client.get(format!("{}/api/v1/instances", app.base)).header("cookie", &session).send().await;
    assert_eq!(api.unwrap().status().as_u16(), 200, "and the calls its pages make");

    for next in ["//evil.example/", "/\t/evil.example/", "https://evil.example/"] {
        let offsite = [("token", TOKEN), ("next", next)];
        let offsite = app.client.post(format!("{}/login", app.base)).form(&offsite).send().await.unwrap();
        assert_eq!(offsite.headers()["location"], "/", "login never sends a browser to another site ({next:?})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_server_with_a_guessable_token_refuses_to_start_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let error = start(config(dir.path(), "0.0.0.0:0", Some("short"))).await.err().expect("refused");
    assert!(error.to_string().contains("too short"), "{error}");
    assert!(!dir.path().join("athanor.db").exists(), "no database was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_server_without_a_token_makes_one_and_keeps_it_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = start(config(dir.path(), "0.0.0.0:0", None)).await.unwrap();
    let token = std::fs::read_to_string(dir.path().join("athanor.token")).unwrap().trim().to_owned();
    let base = format!("http://127.0.0.1:{}", first.addr.port());
    let client = reqwest::Client::new();
    let admitted = client.get(format!("{base}/api/v1/experiments")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(admitted.status().as_u16(), 200);
    first.abort();
    let second = start(config(dir.path(), "0.0.0.0:0", None)).await.unwrap();
    let base = format!("http://127.0.0.1:{}", second.addr.port());
    let again = client.get(format!("{base}/api/v1/experiments")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 200, "the saved token still opens the restarted server");
    second.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_server_with_a_token_set_requires_it() {
    // A machine shared with other accounts, or a proxy in front: the operator sets a token and every client needs it.
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "127.0.0.1:0", Some(TOKEN))).await.unwrap();
    let url = format!("http://{}/api/v1/instances", server.addr);
    let client = reqwest::Client::new();
    assert_eq!(client.get(&url).send().await.unwrap().status().as_u16(), 401);
    assert_eq!(client.get(&url).bearer_auth(TOKEN).send().await.unwrap().status().as_u16(), 200);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_server_asks_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path(), "127.0.0.1:0", None)).await.unwrap();
    let response = reqwest::get(format!("http://{}/api/v1/instances", server.addr)).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(!dir.path().join("athanor.token").exists(), "no token file on loopback");
    server.abort();
}
