//! Everything that exists only on the server: configuration, start-up and wiring, shutdown, demo seeding.
//!
//! Nothing else in the crate imports this module: it is the top of the crate's module graph (see `state` for what
//! request handlers share).

mod access;
mod guard;
mod seed;

use crate::app::{shell, App};
use crate::socket::{LiveLimits, LiveSockets};
use crate::state::AppState;
use anyhow::Context as _;
use athanor_runtime::command::CommandManifest;
use athanor_runtime::{Registry, Runtime, RuntimeConfig};
use athanor_service::Service;
use athanor_store::Store;
use axum::Router;
use leptos::config::LeptosOptions;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub use seed::seed_demo_instances;

/// How the server is set up; [`Config::from_env`] reads it from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Where to listen. Port 0 picks a free port (tests use this).
    pub addr: SocketAddr,
    /// The folder holding `pkg/` (the compiled WebAssembly, JavaScript and CSS) and public assets.
    pub site_root: PathBuf,
    /// Create the demo instances when the database has no instance at all.
    pub seed_demos: bool,
    /// Concurrency limit, cancel grace period and run timeout.
    pub runtime: RuntimeConfig,
    /// The manifest of command experiments (`athanor.toml`), if any; re-read whenever it changes.
    pub experiments_manifest: Option<PathBuf>,
    /// The access token every client must send (`ATHANOR_TOKEN`). Required on a non-loopback address and behind a
    /// proxy (`ATHANOR_ALLOWED_HOSTS`), where `None` takes it from `token_file`, creating that file on first start;
    /// on a plain loopback bind `None` means no token is asked, and a token given is required all the same.
    pub token: Option<String>,
    /// Where the token is kept when `token` is not given (`ATHANOR_TOKEN_FILE`, default `./athanor.token`).
    pub token_file: PathBuf,
    /// Bounds of the live sockets at `/api/watch`: how many at once, the largest message, how soon the request.
    pub live: LiveLimits,
}

/// The manifest file read when `ATHANOR_EXPERIMENTS` is not set, if it exists in the current directory.
pub const DEFAULT_MANIFEST: &str = "athanor.toml";

impl Config {
    /// A server on a free loopback port (`127.0.0.1:0`) over a SQLite file in `dir`, with the site files, the
    /// token file (unused on loopback) and nothing else there: no demo instances, no manifest, no token. Tests and
    /// programs that embed a server start from this and change what they need.
    pub fn in_folder(dir: &std::path::Path) -> Config {
        Config {
            database_url: format!("sqlite://{}", dir.join("athanor.db").display()),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            site_root: dir.to_owned(),
            seed_demos: false,
            runtime: RuntimeConfig::default(),
            experiments_manifest: None,
            token: None,
            token_file: dir.join("athanor.token"),
            live: LiveLimits::default(),
        }
    }

    /// Read `DATABASE_URL` (default `sqlite://athanor.db`), `ATHANOR_ADDR` (default `127.0.0.1:3000`, also taken
    /// from cargo-leptos' `LEPTOS_SITE_ADDR`), `LEPTOS_SITE_ROOT` (default `target/site`) and
    /// `ATHANOR_SEED_DEMOS` (`0` turns seeding off), `ATHANOR_MAX_CONCURRENT_RUNS` (default 8),
    /// `ATHANOR_CANCEL_GRACE_SECS` (default 5), `ATHANOR_RUN_TIMEOUT_SECS` (default 86400; 0 means none) and
    /// `ATHANOR_EXPERIMENT_THREADS` (the threads experiment code runs on; default one per core).
    /// `ATHANOR_ALLOWED_HOSTS` (comma-separated `host:port`) is read at start: extra names the server answers to.
    /// `ATHANOR_EXPERIMENTS` names the manifest of command experiments (default `./athanor.toml` when it exists;
    /// a named file must exist). `ATHANOR_TOKEN` / `ATHANOR_TOKEN_FILE` give the access token a non-loopback
    /// server requires. `ATHANOR_WORKERS` (PostgreSQL only) makes the server a node of the queue shared with
    /// `athanor worker`s, executing that many runs itself (0: none); `ATHANOR_NODE_LEASE_SECS` (default 60) and
    /// `ATHANOR_NODE_HEARTBEAT_SECS` (default 10) tune every node's lease and heartbeat.
    pub fn from_env() -> anyhow::Result<Config> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        let number = |name: &str| -> anyhow::Result<Option<u64>> {
            var(name)
                .map(|text| {
                    text.trim().parse::<u64>().with_context(|| format!("{name} {text:?} is not a whole number"))
                })
                .transpose()
        };
        let defaults = RuntimeConfig::default();
        let runtime = RuntimeConfig {
            max_concurrent_runs: number("ATHANOR_MAX_CONCURRENT_RUNS")?
                .map_or(defaults.max_concurrent_runs, |n| n.max(1) as usize),
            cancel_grace: number("ATHANOR_CANCEL_GRACE_SECS")?.map_or(defaults.cancel_grace, Duration::from_secs),
            experiment_threads: number("ATHANOR_EXPERIMENT_THREADS")?
                .map_or(defaults.experiment_threads, |n| n.max(1) as usize),
            run_timeout: match number("ATHANOR_RUN_TIMEOUT_SECS")? {
                None => defaults.run_timeout,
                Some(0) => None,
                Some(seconds) => Some(Duration::from_secs(seconds)),
            },
            ..defaults
        };
        let mut runtime = runtime;
        let mut node = athanor_runtime::node::NodeConfig::here();
        node.lease = number("ATHANOR_NODE_LEASE_SECS")?.map_or(node.lease, |s| Duration::from_secs(s.max(1)));
        node.heartbeat =
            number("ATHANOR_NODE_HEARTBEAT_SECS")?.map_or(node.heartbeat, |s| Duration::from_secs(s.max(1)));
        if let Some(workers) = number("ATHANOR_WORKERS")? {
            runtime.max_concurrent_runs = workers as usize;
            runtime.node = Some(node.clone());
        }
        let addr_text = var("ATHANOR_ADDR").or_else(|| var("LEPTOS_SITE_ADDR")).unwrap_or("127.0.0.1:3000".into());
        let addr = addr_text
            .parse()
            .with_context(|| format!("ATHANOR_ADDR {addr_text:?} is not an address like 127.0.0.1:3000"))?;
        Ok(Config {
            database_url: var("DATABASE_URL").unwrap_or_else(|| athanor_store::DEFAULT_DATABASE_URL.to_owned()),
            addr,
            site_root: var("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()).into(),
            seed_demos: var("ATHANOR_SEED_DEMOS").as_deref() != Some("0"),
            runtime,
            experiments_manifest: match var("ATHANOR_EXPERIMENTS") {
                Some(path) => Some(PathBuf::from(path)),
                None => Some(PathBuf::from(DEFAULT_MANIFEST)).filter(|path| path.is_file()),
            },
            token: var("ATHANOR_TOKEN"),
            token_file: var("ATHANOR_TOKEN_FILE").unwrap_or_else(|| "athanor.token".into()).into(),
            live: LiveLimits::default(),
        })
    }
}

/// A running server.
pub struct Server {
    /// The address it listens on (with the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// Its state, for tests that want to look at the database directly.
    pub state: AppState,
    task: JoinHandle<std::io::Result<()>>,
    manifest_watch: Option<JoinHandle<()>>,
}

impl Server {
    /// Serve until the process is interrupted (Ctrl-C) or the listener fails.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?.context("server stopped with an error")
    }

    /// Stop serving at once (tests).
    pub fn abort(&self) {
        self.task.abort();
        if let Some(watch) = &self.manifest_watch {
            watch.abort();
        }
    }
}

/// The experiments this process can run: every `register_experiment!` linked in (the demos must be among them) and
/// the manifest's command experiments.
fn experiments(config: &Config) -> anyhow::Result<(Option<Arc<CommandManifest>>, Registry)> {
    // Naming every demo keeps the linker from discarding the object files that hold their registrations; the
    // check after discovery turns a silently missing experiment into a start-up error.
    let demos = athanor_demos::definitions();
    let builtins = Registry::discover()?;
    if let Some(missing) = demos.iter().find(|demo| builtins.get(demo.name.as_str()).is_none()) {
        anyhow::bail!("demo experiment {} was not discovered; is athanor-demos linked?", missing.name);
    }
    let (manifest, registry) = match &config.experiments_manifest {
        None => (None, builtins),
        Some(path) => {
            let (manifest, registry) = CommandManifest::load(path, builtins).map_err(|problems| {
                anyhow::anyhow!(
                    "the experiment manifest has {} problem(s); fix them and start again:\n{}",
                    problems.len(),
                    problems.join("\n")
                )
            })?;
            tracing::info!(manifest = %path.display(), experiments = registry.len(), "read the experiment manifest");
            (Some(Arc::new(manifest)), registry)
        }
    };
    Ok((manifest, registry))
}

/// Discover the experiments and read the manifest, then connect to the database, migrate, seed demos if empty,
/// and start serving in a background task.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    let (manifest, registry) = experiments(&config)?;
    // Every client needs the token beyond loopback, behind a proxy (other machines reach a loopback server through
    // it), and whenever the operator set one; a server that cannot have a good token does not start.
    let behind_proxy = !extra_hosts().is_empty();
    let access = if config.addr.ip().is_loopback() && !behind_proxy && config.token.is_none() {
        None
    } else {
        let token = access::resolve_token(config.token.clone(), &config.token_file)?;
        Some(Arc::new(access::Access::new(token, config.site_root.clone())?))
    };
    // Opened only once the experiments are known to be fine: a refused start writes nothing.
    let store = Store::connect(&config.database_url).await?;
    if config.runtime.node.is_some() && store.backend() != athanor_store::Backend::Postgres {
        anyhow::bail!("ATHANOR_WORKERS shares the run queue with worker nodes, which needs DATABASE_URL=postgres://…");
    }
    if config.seed_demos {
        let created = seed_demo_instances(&store, &registry).await?;
        if created > 0 {
            tracing::info!(created, "empty database: created the demo instances");
        }
    }
    let runtime = Runtime::new(store.clone(), registry, config.runtime.clone());
    let recovered = runtime.recover().await?;
    if !recovered.interrupted.is_empty() || !recovered.requeued.is_empty() || !recovered.refused.is_empty() {
        tracing::info!(
            interrupted = recovered.interrupted.len(),
            requeued = recovered.requeued.len(),
            refused = recovered.refused.len(),
            "recovered runs left by the previous process"
        );
    }

    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("could not listen on {} (is another server running there?)", config.addr))?;
    let addr = listener.local_addr()?;

    let leptos_options = LeptosOptions::builder()
        .output_name("athanor")
        .site_root(config.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let manifest_watch = manifest.as_ref().map(|manifest| manifest.clone().watch(runtime.clone()));
    if runtime.node_config().is_some() {
        let node = runtime.clone();
        tokio::spawn(async move {
            if let Err(error) = node.run_node().await {
                tracing::error!(%error, "this server left the shared queue");
            }
        });
    }
    let service = Service::new(store, runtime, manifest);
    let state = AppState { leptos_options, service };
    let policy = Arc::new(guard::HostPolicy::for_address(addr, &extra_hosts()));
    let mut router = router(state.clone(), policy.hosts().to_vec(), LiveSockets::new(config.live));
    if let Some(access) = access {
        router = router
            .merge(access::routes(access.clone()))
            .layer(axum::middleware::from_fn_with_state(access, access::require_token));
    }
    // Outermost: a request from a foreign host or origin is refused before anything else looks at it.
    let router = router.layer(axum::middleware::from_fn_with_state(policy, guard::guard));
    let runtime = state.service.runtime().clone();
    let task = tokio::spawn(async move {
        // TCP_NODELAY: a page streams out in several writes, and with Nagle's algorithm each write after the first
        // waits for the client's delayed acknowledgement (40 ms), so half of all page loads took ~45 ms, not ~3.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        let serving = std::future::IntoFuture::into_future(axum::serve(listener, router.into_make_service()));
        tokio::select! {
            served = serving => served,
            () = stop_signal() => {
                stop_runs(&runtime).await;
                Ok(())
            }
        }
    });
    Ok(Server { addr, state, task, manifest_watch })
}

/// `ATHANOR_ALLOWED_HOSTS`: the `host:port` names a proxy in front of the server forwards.
fn extra_hosts() -> Vec<String> {
    std::env::var("ATHANOR_ALLOWED_HOSTS")
        .unwrap_or_default()
        .split(',')
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .collect()
}

/// Every front end over the one service: the pages and their server functions (`/api/<name>`), the JSON API
/// (`/api/v1`), the MCP endpoint (`/mcp`) and the downloads (`/export`). `allowed_hosts` is the host policy's list,
/// which the MCP transport checks again itself.
/// `sockets` bounds the live sockets of `/api/watch`: server functions find it in their context.
fn router(state: AppState, allowed_hosts: Vec<String>, sockets: LiveSockets) -> Router {
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let service = state.service.clone();
    Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(sockets.clone()),
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .with_state(state)
        .nest("/api/v1", athanor_api::router(service.clone()))
        .nest_service("/mcp", athanor_mcp::service(service.clone(), allowed_hosts))
        .merge(athanor_api::export_routes(service))
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (`systemctl stop`, `kill`). A signal whose handler cannot be installed
/// never completes: the server then runs until killed.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// The clean stop after a stop signal: no new connections, executing runs asked to stop (cooperatively, then by
/// force after the cancel grace period) and their records and terminal statuses committed; waiting runs stay
/// `pending` for the next start. A second signal exits at once (runs left `running` are then failed as "interrupted
/// by restart" at the next start).
async fn stop_runs(runtime: &Runtime) {
    tokio::spawn(async {
        stop_signal().await;
        tracing::warn!("second stop signal: exiting at once");
        std::process::exit(130);
    });
    let (executing, waiting) = runtime.busy();
    tracing::info!(executing, waiting, "stopping: ending the executing runs; waiting ones stay pending");
    runtime.shutdown().await;
    tracing::info!("stopped: every executing run has ended and its records are stored");
}

/// The whole server, configured from the environment ([`Config::from_env`]): log to stderr, start, serve until
/// Ctrl-C. The `athanor` binary's `main` is this call; so is the `main` of a crate that builds its own server with
/// its own Rust experiments linked in (every `register_experiment!` in the binary is discovered).
pub async fn main() -> anyhow::Result<()> {
    init_tracing();
    let config = Config::from_env()?;
    let server = start(config).await?;
    tracing::info!("Athanor is serving http://{}", server.addr);
    server.wait().await
}

/// Log to stderr, filtered by `RUST_LOG` (default: info for Athanor, warn for the rest).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,athanor=info,athanor_app=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// `athanor worker`: a node of the run queue shared on PostgreSQL, with no HTTP. It advertises itself, claims the
/// runs it can execute (its Rust experiments and the manifest's commands, as the server finds them), heartbeats
/// their leases, and on Ctrl-C or SIGTERM stops claiming and ends its runs the way a server does. `name` and
/// `capacity` override `host:pid` and `ATHANOR_MAX_CONCURRENT_RUNS`.
pub async fn worker_main(name: Option<String>, capacity: Option<usize>) -> anyhow::Result<()> {
    init_tracing();
    let config = Config::from_env()?;
    if !config.database_url.starts_with("postgres://") && !config.database_url.starts_with("postgresql://") {
        anyhow::bail!(
            "a worker executes runs from the queue of a PostgreSQL database that the server shares: set \
             DATABASE_URL=postgres://… (the server's)"
        );
    }
    let (_manifest, registry) = experiments(&config)?;
    let store = Store::connect(&config.database_url).await?;
    let mut node = config.runtime.node.clone().unwrap_or_else(athanor_runtime::node::NodeConfig::here);
    if let Some(name) = name {
        node.name = name;
    }
    let runtime = Runtime::new(
        store,
        registry,
        RuntimeConfig {
            max_concurrent_runs: capacity.unwrap_or(config.runtime.max_concurrent_runs),
            node: Some(node),
            ..config.runtime
        },
    );
    let node = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.run_node().await }
    });
    stop_signal().await;
    stop_runs(&runtime).await;
    node.await.context("the worker's queue task panicked")??;
    Ok(())
}
