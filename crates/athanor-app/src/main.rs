//! The `athanor` binary: the server (`athanor serve`, or no command at all) and the command line that talks to a
//! server (`athanor experiments`, `instances`, `runs`, `compare`; see `athanor --help`), and a worker node
//! (`athanor worker`) that executes runs from the queue a server shares on PostgreSQL.
//!
//! The server is configured from the environment: `DATABASE_URL` selects the database (default
//! `sqlite://athanor.db`), `ATHANOR_ADDR` the address (default `127.0.0.1:3000`), `ATHANOR_EXPERIMENTS` the manifest
//! of command experiments (default `./athanor.toml` when present), `ATHANOR_TOKEN` the token a non-loopback address
//! requires.
//!
//! A crate of your own can be the server too, with your Rust experiments compiled in: depend on `athanor-app`
//! (feature `ssr`) and `athanor-runtime`, `register_experiment!` your types, and call
//! [`athanor_app::server::main`] from your `main`.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = athanor_cli::Cli::parse();
    if let Some((name, capacity)) = cli.worker() {
        return match athanor_app::server::worker_main(name, capacity).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    if !cli.is_serve() {
        return athanor_cli::run(cli).await;
    }
    match athanor_app::server::main().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
