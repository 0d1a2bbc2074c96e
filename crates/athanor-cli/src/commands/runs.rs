//! `athanor runs list | show | start | cancel | logs | results | export`, and `athanor compare`.

use super::Ctx;
use crate::args::{ExportFormat, ExportWhat, RunsCommand};
use crate::error::CliError;
use crate::exit;
use crate::follow::{follow, FollowOptions, Followed};
use crate::render;
use athanor_core::api::{LogPage, Paged, ResultPage, WaitOutcome};
use athanor_core::compare::Comparison;
use athanor_core::{InstanceId, LogLevel, ResultRecord, Run, RunId, RunListing, RunStatus};
use futures::StreamExt;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Records asked for per page when reading a whole run: the server's maximum, so a long run takes few requests.
const RECORD_PAGE: u32 = 5_000;

/// How long one `/wait` request may hold (the server's limit is what it is; 30 s keeps proxies happy).
const WAIT_SECONDS: u32 = 30;

pub(super) async fn run(ctx: &Ctx, command: RunsCommand) -> Result<ExitCode, CliError> {
    match command {
        RunsCommand::List { instance, experiment, status, limit, all } => {
            list(ctx, instance, experiment, status, limit, all).await?;
        }
        RunsCommand::Show { id } => {
            let answer = ctx.client.get(run_url(ctx, id, &[]), &[]).await?;
            ctx.show(&answer, |run: &Run| render::run(run, ctx.now, ctx.palette))?;
        }
        RunsCommand::Start { instance, follow, wait } => return start(ctx, instance, follow, wait).await,
        RunsCommand::Cancel { id } => {
            let answer = ctx.client.post(run_url(ctx, id, &["cancel"]), None::<&Value>).await?;
            ctx.show(&answer, |run: &Run| {
                if run.status.is_terminal() {
                    format!("Run {} is {}.\n", run.id, run.status)
                } else {
                    format!("Cancelling run {}: asked to stop, it ends within the server's grace period.\n", run.id)
                }
            })?;
        }
        RunsCommand::Logs { id, level, tail, follow } => return logs(ctx, id, level, tail, follow).await,
        RunsCommand::Results { id, key } => results(ctx, id, key).await?,
        RunsCommand::Export { id, what, format, output } => export(ctx, id, what, format, output.as_deref()).await?,
    }
    Ok(ExitCode::SUCCESS)
}

fn run_url(ctx: &Ctx, id: RunId, rest: &[&str]) -> reqwest::Url {
    let id = id.to_string();
    let mut segments = vec!["runs", id.as_str()];
    segments.extend_from_slice(rest);
    ctx.client.api(&segments)
}

/// One page, or every page with `--all` (the cursor names the last run seen, so pages stay consistent while new
/// runs are created).
async fn list(
    ctx: &Ctx,
    instance: Option<InstanceId>,
    experiment: Option<String>,
    status: Option<RunStatus>,
    limit: Option<u32>,
    all: bool,
) -> Result<(), CliError> {
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(instance) = instance {
        query.push(("instance", instance.to_string()));
    }
    if let Some(experiment) = experiment {
        query.push(("experiment", experiment));
    }
    if let Some(status) = status {
        query.push(("status", status.to_string()));
    }
    if let Some(limit) = limit {
        query.push(("limit", limit.to_string()));
    }
    let url = ctx.client.api(&["runs"]);
    let first = ctx.client.get(url.clone(), &query).await?;
    if !all {
        ctx.show(&first, |page: &Paged<RunListing>| render::runs(&page.items, ctx.now, ctx.palette))?;
        if !ctx.json && first.value.get("next_cursor").is_some_and(|cursor| !cursor.is_null()) {
            ctx.note("More runs match: --all lists every one, --limit N more per page.");
        }
        return Ok(());
    }
    let mut items: Vec<RunListing> = Vec::new();
    let mut answer = first;
    loop {
        let page: Paged<RunListing> = answer.decode()?;
        items.extend(page.items);
        let Some(cursor) = page.next_cursor else { break };
        let mut next = query.clone();
        next.push(("cursor", cursor));
        answer = ctx.client.get(url.clone(), &next).await?;
    }
    // With --json, one page holding every item (and no cursor: there is no next page).
    let merged = Paged { items, next_cursor: None };
    if ctx.json {
        ctx.print_json(&merged)
    } else {
        ctx.print(&render::runs(&merged.items, ctx.now, ctx.palette))
    }
}

/// Start a run; then print it, follow it, or wait for it.
async fn start(ctx: &Ctx, instance: InstanceId, follow_it: bool, wait: bool) -> Result<ExitCode, CliError> {
    let url = ctx.client.api(&["instances", &instance.to_string(), "runs"]);
    let answer = ctx.client.post(url, None::<&Value>).await?;
    let run: Run = answer.decode()?;
    if follow_it {
        if !ctx.json {
            ctx.note(&format!("Following run {} (Ctrl-C stops following; the run goes on).", run.id));
        }
        let options = FollowOptions { after: 0, results: true, levels: Vec::new(), json: ctx.json };
        return followed(ctx, run.id, &options).await;
    }
    if wait {
        return wait_for(ctx, run.id).await;
    }
    ctx.show(&answer, |run: &Run| {
        format!("Started run {} ({}).\nFollow it with `athanor runs logs {} --follow`.\n", run.id, run.status, run.id)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Follow and turn the outcome into a summary line and an exit status.
async fn followed(ctx: &Ctx, id: RunId, options: &FollowOptions) -> Result<ExitCode, CliError> {
    match follow(&ctx.client, id, options).await? {
        Followed::Ended(run) => {
            if !ctx.json {
                ctx.print(&format!("{}\n", render::summary(&run, chrono::Utc::now(), ctx.palette)))?;
            }
            Ok(exit::code_for_status(run.status))
        }
        Followed::Interrupted => Ok(interrupted(ctx, id)),
    }
}

fn interrupted(ctx: &Ctx, id: RunId) -> ExitCode {
    ctx.note(&format!("Stopped following run {id}; it goes on. Cancel it with `athanor runs cancel {id}`."));
    ExitCode::from(exit::INTERRUPTED)
}

/// Long-poll `/wait` until the run ends, quietly.
async fn wait_for(ctx: &Ctx, id: RunId) -> Result<ExitCode, CliError> {
    let url = run_url(ctx, id, &["wait"]);
    let query = [("timeout_s", WAIT_SECONDS.to_string())];
    let interrupted_by_user = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(interrupted_by_user);
    loop {
        let answer = tokio::select! {
            answer = ctx.client.get(url.clone(), &query) => answer?,
            () = &mut interrupted_by_user => return Ok(interrupted(ctx, id)),
        };
        let outcome: WaitOutcome = answer.decode()?;
        if outcome.ended || outcome.run.status.is_terminal() {
            if ctx.json {
                ctx.print_json(&outcome.run)?;
            } else {
                ctx.print(&format!("{}\n", render::summary(&outcome.run, chrono::Utc::now(), ctx.palette)))?;
            }
            return Ok(exit::code_for_status(outcome.run.status));
        }
    }
}

/// Print a run's logs (all, or the last N), then follow when asked.
async fn logs(
    ctx: &Ctx,
    id: RunId,
    levels: Vec<LogLevel>,
    tail: Option<u32>,
    follow_too: bool,
) -> Result<ExitCode, CliError> {
    let level_query = (!levels.is_empty())
        .then(|| ("level", levels.iter().map(|level| level.as_str()).collect::<Vec<_>>().join(",")));
    let url = run_url(ctx, id, &["logs"]);

    if follow_too {
        // The event stream replays stored records after `after`, so history and live lines come one way: from
        // the start, or from just before the tail's first line.
        let mut after = 0;
        if let Some(tail) = tail {
            let mut query = vec![("before", i64::MAX.to_string()), ("limit", tail.max(1).to_string())];
            query.extend(level_query.clone());
            let page: LogPage = ctx.client.get(url, &query).await?.decode()?;
            // No line at these levels yet: replay from the start, and the stream's level filter shows only what
            // matches. (`next_after` is no help here: after a `before` read that found nothing, it is `before`.)
            after = page.items.first().map_or(0, |first| first.seq - 1);
        }
        let options = FollowOptions { after, results: false, levels, json: ctx.json };
        return followed(ctx, id, &options).await;
    }

    if let Some(tail) = tail {
        let mut query = vec![("before", i64::MAX.to_string()), ("limit", tail.to_string())];
        query.extend(level_query);
        let answer = ctx.client.get(url, &query).await?;
        ctx.show(&answer, |page: &LogPage| {
            page.items.iter().map(|log| render::log_line(log, ctx.palette) + "\n").collect::<String>()
        })?;
        return Ok(ExitCode::SUCCESS);
    }

    // Every line, page by page, printed as it comes so a million-line run does not have to fit in memory. With
    // --json the pages are streamed as one document shaped like a single page: {"items": [...], "next_after": N}.
    let mut after = 0_i64;
    let mut first = true;
    if ctx.json {
        ctx.print("{\"items\": [")?;
    }
    loop {
        let mut query = vec![("after", after.to_string()), ("limit", RECORD_PAGE.to_string())];
        query.extend(level_query.clone());
        let page: LogPage = ctx.client.get(url.clone(), &query).await?.decode()?;
        if ctx.json {
            let mut text = String::new();
            for item in &page.items {
                text.push_str(if first { "\n  " } else { ",\n  " });
                text.push_str(&serde_json::to_string(item).unwrap_or_default());
                first = false;
            }
            ctx.print(&text)?;
        } else {
            ctx.print(&page.items.iter().map(|log| render::log_line(log, ctx.palette) + "\n").collect::<String>())?;
        }
        if page.items.is_empty() || page.next_after <= after {
            break;
        }
        after = page.next_after;
    }
    if ctx.json {
        ctx.print(&format!("\n], \"next_after\": {after}}}\n"))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Every result (or those of one key) as `key = value`; with `--json`, one page-shaped document.
async fn results(ctx: &Ctx, id: RunId, key: Option<String>) -> Result<(), CliError> {
    let url = run_url(ctx, id, &["results"]);
    let mut after = 0_i64;
    let mut items: Vec<ResultRecord> = Vec::new();
    loop {
        let mut query = vec![("after", after.to_string()), ("limit", RECORD_PAGE.to_string())];
        if let Some(key) = &key {
            query.push(("key", key.clone()));
        }
        let page: ResultPage = ctx.client.get(url.clone(), &query).await?.decode()?;
        if ctx.json {
            // Held for one document: results are few enough (a run records them deliberately, unlike log lines).
            items.extend(page.items.iter().cloned());
        } else {
            let text: String =
                page.items.iter().map(|result| render::result_line(result, None, ctx.palette) + "\n").collect();
            ctx.print(&text)?;
        }
        if page.items.is_empty() || page.next_after <= after {
            break;
        }
        after = page.next_after;
    }
    if ctx.json {
        ctx.print_json(&ResultPage { items, next_after: after })?;
    }
    Ok(())
}

/// Download `/export/runs/{id}/{logs|results}.{csv|json}` to a file (through a `.part` file renamed at the end,
/// so an interrupted download never looks complete) or to standard output.
async fn export(
    ctx: &Ctx,
    id: RunId,
    what: ExportWhat,
    format: ExportFormat,
    output: Option<&Path>,
) -> Result<(), CliError> {
    let file = format!(
        "{}.{}",
        match what {
            ExportWhat::Logs => "logs",
            ExportWhat::Results => "results",
        },
        match format {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    );
    let url = ctx.client.url(&["export", "runs", &id.to_string(), &file]);
    let response = ctx.client.open(url, &[], "*/*").await?;
    let mut stream = response.bytes_stream();
    let (mut sink, part): (Box<dyn Write>, Option<PathBuf>) = match output {
        Some(path) => {
            let mut part = path.as_os_str().to_owned();
            part.push(".part");
            let part = PathBuf::from(part);
            let created = std::fs::File::create(&part)
                .map_err(|error| CliError::local(format!("creating {}: {error}", part.display())))?;
            (Box::new(std::io::BufWriter::new(created)), Some(part))
        }
        None => (Box::new(std::io::stdout().lock()), None),
    };
    let written: Result<(), CliError> = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| CliError::Transport(format!("downloading {file}: {error}")))?;
            sink.write_all(&chunk).map_err(CliError::output)?;
        }
        sink.flush().map_err(CliError::output)
    }
    .await;
    drop(sink);
    match (written, part, output) {
        (Ok(()), Some(part), Some(path)) => {
            std::fs::rename(&part, path)
                .map_err(|error| CliError::local(format!("moving {} into place: {error}", part.display())))?;
            ctx.note(&format!("Wrote {}.", path.display()));
            Ok(())
        }
        (Err(error), Some(part), _) => {
            let _ = std::fs::remove_file(part);
            Err(error)
        }
        (result, _, _) => result,
    }
}

/// `athanor compare RUN RUN…`.
pub(super) async fn compare(ctx: &Ctx, runs: &[RunId]) -> Result<ExitCode, CliError> {
    let ids: Vec<String> = runs.iter().map(RunId::to_string).collect();
    let answer = ctx.client.get(ctx.client.api(&["compare"]), &[("runs", ids.join(","))]).await?;
    ctx.show(&answer, |comparison: &Comparison| render::comparison(comparison, ctx.palette))?;
    Ok(ExitCode::SUCCESS)
}
