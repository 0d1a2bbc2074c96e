//! The `athanor` command line: a thin client of Athanor's JSON API.
//!
//! The `athanor` binary (in `athanor-app`) parses a [`Cli`]; `athanor serve` runs the server there, and every
//! other command comes here through [`run`]:
//!
//! ```no_run
//! use clap::Parser;
//!
//! # async fn main_of_the_binary() -> std::process::ExitCode {
//! let cli = athanor_cli::Cli::parse();
//! if cli.is_serve() {
//!     // athanor_app::server::main().await …
//!     # return std::process::ExitCode::SUCCESS;
//! }
//! athanor_cli::run(cli).await
//! # }
//! ```
//!
//! This crate knows the server only through HTTP and the wire types of `athanor_core`, so what the CLI can do is
//! exactly what any API client can do, and it builds without the database or the dashboard.
//!
//! One job per module:
//!
//! - `args` — the command tree (clap), with every command's help and examples;
//! - `config` — `--config`, `--config-file` and `--set path=value` into a configuration object;
//! - `client` — URLs under `--url`, the bearer token, and every failure as a `CliError`;
//! - `error` — `CliError` and how it is printed (`error: …`, field errors by path, a hint);
//! - `sse` — an incremental reader of server-sent events;
//! - `follow` — following a run live: lines, results, the progress bar, reconnecting by `seq`;
//! - `render` — tables and detail views as text;
//! - `style` — when to colour (a terminal, `NO_COLOR` unset) and how;
//! - `exit` — the exit statuses (`0` completed, `1` failed or error, `2` cancelled, `130` Ctrl-C);
//! - `commands` — each command: fetch, then print.

mod args;
mod client;
mod commands;
mod config;
mod error;
mod exit;
mod follow;
mod render;
mod sse;
mod style;

pub use args::Cli;

use std::process::ExitCode;

/// Run any command but `serve` (see [`Cli::is_serve`]) and say how it went as the process's exit status.
///
/// Errors are printed to standard error here (`error: …`, the server's field errors one per line, a hint when
/// there is an obvious next step) and exit with 1. Following a run (`--follow`, `--wait`) exits 0 when it
/// completed, 3 when it failed, 4 when it was cancelled, and 130 when Ctrl-C stopped the following (see `exit`).
pub async fn run(cli: Cli) -> ExitCode {
    match commands::run(cli).await {
        Ok(code) => code,
        // The reader of our output went away (`| head`): nothing to say, and no one to say it to.
        Err(error::CliError::BrokenPipe) => ExitCode::from(exit::BROKEN_PIPE),
        Err(error) => {
            eprintln!("{}", error.render(style::Palette::for_stderr()));
            ExitCode::from(exit::FAILURE)
        }
    }
}
