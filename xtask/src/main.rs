//! Build automation for Athanor, in Rust so it runs wherever cargo does.
//!
//! - `cargo xtask serve` — install what is missing, build the server and the WebAssembly, serve the dashboard on
//!   <http://127.0.0.1:3000> with `sqlite://athanor.db` (or `DATABASE_URL`).
//! - `cargo xtask test` — install what is missing, then format check, clippy (server and browser builds), every
//!   Rust test, and the Playwright browser tests against a freshly started server.
//! - `cargo xtask bench` — log throughput on SQLite and PostgreSQL, `log()` cost, peak memory, the release server
//!   under 100 watched live runs (memory, log line → viewer latency) and its run page times, and MLflow on the same
//!   workload; prints a Markdown table.
//!
//! Every step prints the command it runs, so a failure says exactly what to re-run by hand.

mod tidy;
mod tools;

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root()?;
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("serve") => serve(&root),
        Some("test") => test(&root),
        Some("install") => tools::ensure_build_tools(&root).map(|_| ()),
        Some("bench") => bench(&root),
        Some("tidy") => tidy::check(&root),
        _ => {
            eprintln!("usage: cargo xtask <serve | test | bench | tidy | install>");
            eprintln!("  serve    install missing tools, build, and serve the dashboard on 127.0.0.1:3000");
            eprintln!("  test     install missing tools, then fmt, clippy, Rust tests and browser tests");
            eprintln!("  bench    measure log throughput, log() cost and memory, against MLflow; prints a table");
            eprintln!("  tidy     check the architecture: crate layers, no module cycles, self-contained docs");
            eprintln!("  install  only install the missing tools");
            std::process::exit(2);
        }
    }
}

/// The workspace this command was run in: the nearest folder at or above the current one whose Cargo.toml has a
/// `[workspace]` table. (Not the compile-time manifest dir: a target dir shared between clones can hand this clone
/// an xtask binary compiled in another one.)
fn workspace_root() -> Result<PathBuf> {
    let here = std::env::current_dir()?;
    here.ancestors()
        .find(|dir| std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|text| text.contains("[workspace]")))
        .map(Path::to_path_buf)
        .with_context(|| format!("no Cargo workspace at or above {}", here.display()))
}

/// Run a command to completion, echoing it first; a non-zero exit is an error naming the command.
pub(crate) fn run(command: &mut Command) -> Result<()> {
    eprintln!("\n$ {}", describe(command));
    let status = command.status().with_context(|| format!("could not start `{}`", describe(command)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(command));
    }
    Ok(())
}

pub(crate) fn describe(command: &Command) -> String {
    std::iter::once(command.get_program().to_string_lossy().into_owned())
        .chain(command.get_args().map(|arg| arg.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn serve(root: &Path) -> Result<()> {
    let started = Instant::now();
    tools::ensure_build_tools(root)?;
    build_site()?;
    let addr = std::env::var("ATHANOR_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    eprintln!("\nReady after {:.0?}. Serving http://{addr} (Ctrl-C stops).", started.elapsed());
    let mut server = Command::new(target_dir(root).join("debug/athanor"));
    server.arg("serve").env("LEPTOS_SITE_ROOT", root.join("target/site")).env("ATHANOR_ADDR", &addr);
    run(&mut server)
}

/// Build the server binary and the hydrate bundle (WebAssembly, JS glue, CSS) into `target/site`.
fn build_site() -> Result<()> {
    run(cargo().args(["leptos", "build"]))
}

/// Build the benchmark in release mode and run it, with MLflow (from PyPI, in a venv under the target dir). The
/// server rows run the release `athanor` binary, which the benchmark finds beside its own, so that is built first.
fn bench(root: &Path) -> Result<()> {
    let python = tools::ensure_mlflow_venv(&target_dir(root))?;
    run(cargo().args(["build", "--release", "--package", "athanor-app", "--features", "ssr", "--bin", "athanor"]))?;
    run(cargo().args(["run", "--release", "--package", "athanor-bench", "--", "--mlflow-python"]).arg(python))
}

fn test(root: &Path) -> Result<()> {
    let started = Instant::now();
    tools::ensure_build_tools(root)?;
    tools::ensure_browser_tools(root)?;

    run(cargo().args(["fmt", "--all", "--check"]))?;
    tidy::check(root)?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--features",
        "athanor-app/ssr",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "clippy",
        "--package",
        "athanor-app",
        "--package",
        "athanor-core",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--features",
        "athanor-app/hydrate",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace", "--features", "athanor-app/ssr"]))?;
    // The Python client of command experiments has its own tests (standard library only).
    run(Command::new("python3").args(["-m", "unittest", "discover", "--start-directory", "clients/python"]))?;

    build_site()?;
    end2end(root)?;
    eprintln!("\nAll checks passed in {:.0?}.", started.elapsed());
    Ok(())
}

/// The token of the second server the browser tests use (the one on a non-loopback address).
const E2E_TOKEN: &str = "e2e-public-token-0123456789";

/// Start the real server on a free port against a fresh SQLite file, and a second one on 0.0.0.0 that requires a
/// token; run Playwright against them; stop them.
fn end2end(root: &Path) -> Result<()> {
    let data = tempdir()?;
    let manifest = e2e_manifest(root, &data)?;
    let port = free_port()?;
    let base_url = format!("http://127.0.0.1:{port}");
    let server = start_server(root, &format!("127.0.0.1:{port}"), &data.join("e2e.db"), |command| {
        command.env("ATHANOR_EXPERIMENTS", &manifest);
    })?;
    let public_port = free_port()?;
    let public = start_server(root, &format!("0.0.0.0:{public_port}"), &data.join("public.db"), |command| {
        command.env("ATHANOR_TOKEN", E2E_TOKEN);
    })?;
    // A server on PostgreSQL that executes nothing itself, and a worker node that executes its runs.
    let shared = SharedQueue::start(root)?;
    let result = run(Command::new("npx")
        .args(["playwright", "test"])
        .current_dir(root.join("end2end"))
        .env("BASE_URL", &base_url)
        .env("ATHANOR_MANIFEST", &manifest)
        .env("PUBLIC_URL", format!("http://127.0.0.1:{public_port}"))
        .env("PUBLIC_TOKEN", E2E_TOKEN)
        .env("WORKERS_URL", &shared.url)
        .env("WORKER_NAME", SharedQueue::WORKER));
    drop((server, public, shared));
    let _ = std::fs::remove_dir_all(&data);
    result
}

/// The debug `athanor` binary serving `addr` on a fresh SQLite file, once it says it is serving.
fn start_server(root: &Path, addr: &str, database: &Path, configure: impl FnOnce(&mut Command)) -> Result<ServerGuard> {
    let mut command = Command::new(target_dir(root).join("debug/athanor"));
    command
        .arg("serve")
        .env("LEPTOS_SITE_ROOT", root.join("target/site"))
        .env("ATHANOR_ADDR", addr)
        .env("DATABASE_URL", format!("sqlite://{}", database.display()))
        .env_remove("ATHANOR_SEED_DEMOS")
        .env_remove("ATHANOR_TOKEN");
    configure(&mut command);
    eprintln!("\n$ {} &", describe(&command));
    command.env("RUST_LOG", "warn,athanor=info").env("NO_COLOR", "1").stderr(Stdio::piped());
    let mut child = command.spawn().context("could not start the athanor server for the browser tests")?;
    let ready = forward_until_serving(&mut child);
    let server = ServerGuard(child);
    ready
        .recv_timeout(Duration::from_secs(60))
        .with_context(|| format!("the server on {addr} did not start serving within 60 s"))?;
    Ok(server)
}

/// The repository's `athanor.toml`, copied into `data` for the browser tests (which edit their manifest while the
/// server runs) with every experiment's `cwd` made absolute, so the copy runs the same programs from elsewhere.
fn e2e_manifest(root: &Path, data: &Path) -> Result<PathBuf> {
    let source = root.join("athanor.toml");
    let text = std::fs::read_to_string(&source).with_context(|| format!("reading {}", source.display()))?;
    let mut manifest: toml::Table = text.parse().with_context(|| format!("parsing {}", source.display()))?;
    if let Some(toml::Value::Array(experiments)) = manifest.get_mut("experiment") {
        for table in experiments.iter_mut().filter_map(toml::Value::as_table_mut) {
            let cwd = table.get("cwd").and_then(toml::Value::as_str).unwrap_or(".");
            let absolute = root.join(cwd).display().to_string();
            table.insert("cwd".into(), toml::Value::String(absolute));
        }
    }
    let copy = data.join("athanor.toml");
    std::fs::write(&copy, toml::to_string(&manifest)?)?;
    Ok(copy)
}

/// A server and one worker node sharing a fresh PostgreSQL database (created with `psql`, dropped at the end).
struct SharedQueue {
    url: String,
    database: String,
    _server: ServerGuard,
    _worker: ServerGuard,
}

impl SharedQueue {
    /// The worker's name, which the browser test looks for on the run page.
    const WORKER: &'static str = "e2e-worker";

    fn start(root: &Path) -> Result<SharedQueue> {
        let database = format!("athanor_e2e_{}", std::process::id());
        psql(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))?;
        psql(&format!("CREATE DATABASE {database}"))?;
        let database_url = format!("postgres://postgres@127.0.0.1:5432/{database}");
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let server = start_node(root, &["serve"], "Athanor is serving", "shared-server", |command| {
            command.env("DATABASE_URL", &database_url).env("ATHANOR_ADDR", &addr).env("ATHANOR_WORKERS", "0");
        })?;
        let worker = start_node(root, &["worker", "--name", Self::WORKER], "joined the shared queue", "worker", |c| {
            c.env("DATABASE_URL", &database_url);
        })?;
        Ok(SharedQueue { url: format!("http://{addr}"), database, _server: server, _worker: worker })
    }
}

impl Drop for SharedQueue {
    fn drop(&mut self) {
        let _ = psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database));
    }
}

/// Run one SQL command on the machine's PostgreSQL as `postgres`.
fn psql(sql: &str) -> Result<()> {
    run(Command::new("psql").args(["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", sql]))
}

/// The debug `athanor` binary with `args`, once its log shows `ready` (within 60 s).
fn start_node(
    root: &Path,
    args: &[&str],
    ready: &'static str,
    label: &'static str,
    configure: impl FnOnce(&mut Command),
) -> Result<ServerGuard> {
    let mut command = Command::new(target_dir(root).join("debug/athanor"));
    command
        .args(args)
        .env("LEPTOS_SITE_ROOT", root.join("target/site"))
        .env_remove("ATHANOR_SEED_DEMOS")
        .env_remove("ATHANOR_TOKEN");
    configure(&mut command);
    eprintln!("\n$ {} &", describe(&command));
    command.env("RUST_LOG", "warn,athanor=info,athanor_runtime=info").env("NO_COLOR", "1").stderr(Stdio::piped());
    let mut child = command.spawn().with_context(|| format!("could not start the {label} for the browser tests"))?;
    let is_ready = forward_until(&mut child, ready, label);
    let guard = ServerGuard(child);
    is_ready.recv_timeout(Duration::from_secs(60)).with_context(|| format!("the {label} was not ready within 60 s"))?;
    Ok(guard)
}

/// Kills the server when the tests end, however they end.
struct ServerGuard(Child);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Echo the server's log and signal once it logs that it is serving (recovered, bound, ready): an event to wait
/// for, rather than probing the port.
fn forward_until_serving(child: &mut Child) -> mpsc::Receiver<()> {
    forward_until(child, "Athanor is serving", "server")
}

/// Echo a process's log, prefixed with `label`, and signal once a line contains `ready`.
fn forward_until(child: &mut Child, ready: &'static str, label: &'static str) -> mpsc::Receiver<()> {
    let (seen, is_ready) = mpsc::channel();
    if let Some(stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains(ready) {
                    let _ = seen.send(());
                }
                eprintln!("[{label}] {line}");
            }
        });
    }
    is_ready
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("athanor-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
