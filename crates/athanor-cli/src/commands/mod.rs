//! The commands: each fetches what it needs through [`Client`], then prints it with [`crate::render`] (or, with
//! `--json`, prints the server's JSON as it came).

mod experiments;
mod instances;
mod runs;

use crate::args::{Cli, Command};
use crate::client::{Answer, Client};
use crate::error::CliError;
use crate::render;
use crate::style::Palette;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

/// What every command needs: the client, the output mode and the moment "now" (one per command, so every
/// relative time in one table is measured from the same instant).
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) json: bool,
    pub(crate) palette: Palette,
    pub(crate) now: DateTime<Utc>,
}

impl Ctx {
    /// Write `text` to standard output as is.
    pub(crate) fn print(&self, text: &str) -> Result<(), CliError> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(CliError::output)
    }

    /// Write a line to standard error (notes and hints that must not mix with output a script reads).
    pub(crate) fn note(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{text}");
    }

    /// A wire value as pretty JSON and a newline; fields in their declared order, as the server writes them.
    pub(crate) fn print_json(&self, value: &impl Serialize) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        self.print(&format!("{text}\n"))
    }

    /// Print an answer: with `--json`, the server's JSON as it came (re-indented); else `human` applied to it
    /// decoded as `T`.
    pub(crate) fn show<T: DeserializeOwned>(
        &self,
        answer: &Answer,
        human: impl FnOnce(&T) -> String,
    ) -> Result<(), CliError> {
        if self.json {
            self.print(&format!("{}\n", render::pretty_json(&answer.raw)))
        } else {
            self.print(&human(&answer.decode::<T>()?))
        }
    }
}

/// Run one parsed command line.
pub(crate) async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let client = Client::new(cli.url, cli.token)?;
    let palette = if cli.json { Palette::plain() } else { Palette::for_stdout() };
    let ctx = Ctx { client, json: cli.json, palette, now: Utc::now() };
    match cli.command {
        None | Some(Command::Serve) | Some(Command::Worker { .. }) => Err(CliError::local(
            "`athanor serve` and `athanor worker` are run by the athanor binary itself, not by the client library",
        )),
        Some(Command::Experiments { name }) => experiments::run(&ctx, name.as_deref()).await,
        Some(Command::Instances(command)) => instances::run(&ctx, command).await,
        Some(Command::Runs(command)) => runs::run(&ctx, command).await,
        Some(Command::Compare { runs }) => runs::compare(&ctx, &runs).await,
    }
}
