//! `athanor instances list | show | create | edit | clone | rm`.

use super::Ctx;
use crate::args::{ConfigArgs, InstancesCommand};
use crate::config;
use crate::error::CliError;
use crate::render;
use athanor_core::api::{InstanceChanges, InstanceDetails, InstanceInput};
use athanor_core::{Instance, InstanceId, InstanceSummary};
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

pub(super) async fn run(ctx: &Ctx, command: InstancesCommand) -> Result<ExitCode, CliError> {
    match command {
        InstancesCommand::List => {
            let answer = ctx.client.get(ctx.client.api(&["instances"]), &[]).await?;
            ctx.show(&answer, |summaries: &Vec<InstanceSummary>| render::instances(summaries, ctx.now, ctx.palette))?;
        }
        InstancesCommand::Show { id } => {
            let answer = details(ctx, id).await?;
            ctx.show(&answer, |details: &InstanceDetails| render::instance(details, ctx.now, ctx.palette))?;
        }
        InstancesCommand::Create { experiment, name, description, config } => {
            let config = config::build(config.config.as_ref(), config.config_file.as_ref(), &config.sets, None)?;
            let input = InstanceInput {
                experiment,
                name,
                description: description.unwrap_or_default(),
                config: config.unwrap_or_else(|| json!({})),
            };
            let answer = ctx.client.post(ctx.client.api(&["instances"]), Some(&input)).await?;
            ctx.show(&answer, |instance: &Instance| {
                format!(
                    "Created instance {} \"{}\" ({}).\nStart it with `athanor runs start {} --follow`.\n",
                    instance.id, instance.name, instance.experiment, instance.id
                )
            })?;
        }
        InstancesCommand::Edit { id, name, description, config } => edit(ctx, id, name, description, &config).await?,
        InstancesCommand::Clone { id, name } => {
            let url = ctx.client.api(&["instances", &id.to_string(), "clone"]);
            let answer = ctx.client.post(url, Some(&json!({ "name": name }))).await?;
            ctx.show(&answer, |instance: &Instance| {
                format!("Cloned {id} into instance {} \"{}\".\n", instance.id, instance.name)
            })?;
        }
        InstancesCommand::Rm { id, yes } => remove(ctx, id, yes).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn details(ctx: &Ctx, id: InstanceId) -> Result<crate::client::Answer, CliError> {
    ctx.client.get(ctx.client.api(&["instances", &id.to_string()]), &[]).await
}

/// Send only what changes. `--set` alone edits the current configuration, which is read first: the API replaces
/// a configuration whole, and a user who sets one value means to keep the others.
async fn edit(
    ctx: &Ctx,
    id: InstanceId,
    name: Option<String>,
    description: Option<String>,
    args: &ConfigArgs,
) -> Result<(), CliError> {
    let current: Option<Value> = if args.config.is_none() && args.config_file.is_none() && !args.sets.is_empty() {
        let details: InstanceDetails = details(ctx, id).await?.decode()?;
        Some(details.instance.config)
    } else {
        None
    };
    let config = config::build(args.config.as_ref(), args.config_file.as_ref(), &args.sets, current.as_ref())?;
    let changes = InstanceChanges { name, description, config };
    if changes == InstanceChanges::default() {
        return Err(CliError::local("nothing to change: give --name, --description, --config, --config-file or --set"));
    }
    let answer = ctx.client.patch(ctx.client.api(&["instances", &id.to_string()]), &changes).await?;
    ctx.show(&answer, |instance: &Instance| format!("Updated instance {} \"{}\".\n", instance.id, instance.name))
}

/// Delete after saying what goes with it (its runs, logs and results), and asking unless `--yes`.
async fn remove(ctx: &Ctx, id: InstanceId, yes: bool) -> Result<(), CliError> {
    // Read first: the question names the instance, and a wrong id fails before anything is asked.
    let details: InstanceDetails = details(ctx, id).await?.decode()?;
    if !yes {
        let name = &details.instance.name;
        let question = match details.runs.len() {
            0 => format!("Delete instance \"{name}\" ({id})? [y/N] "),
            1 => format!("Delete instance \"{name}\" ({id}) and its run, with its logs and results? [y/N] "),
            runs => {
                format!("Delete instance \"{name}\" ({id}) and its {runs} runs, with their logs and results? [y/N] ")
            }
        };
        if !confirm(&question)? {
            ctx.note("Nothing deleted.");
            return Ok(());
        }
    }
    ctx.client.delete(ctx.client.api(&["instances", &id.to_string()])).await?;
    if !ctx.json {
        ctx.print(&format!("Deleted instance {id} \"{}\".\n", details.instance.name))?;
    }
    Ok(())
}

/// Ask on the terminal; refuse (rather than guess) when there is no one to ask.
fn confirm(question: &str) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::local(
            "refusing to delete without confirmation: standard input is not a terminal (pass --yes)",
        ));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question}");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|error| CliError::local(format!("reading the answer: {error}")))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
