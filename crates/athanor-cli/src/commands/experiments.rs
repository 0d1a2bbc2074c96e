//! `athanor experiments [NAME]`.

use super::Ctx;
use crate::error::CliError;
use crate::render;
use athanor_core::ExperimentDefinition;
use std::process::ExitCode;

/// List the experiments, or show the one named.
pub(super) async fn run(ctx: &Ctx, name: Option<&str>) -> Result<ExitCode, CliError> {
    match name {
        None => {
            let answer = ctx.client.get(ctx.client.api(&["experiments"]), &[]).await?;
            ctx.show(&answer, |definitions: &Vec<ExperimentDefinition>| render::experiments(definitions, ctx.palette))?;
        }
        Some(name) => {
            let answer = ctx.client.get(ctx.client.api(&["experiments", name]), &[]).await?;
            ctx.show(&answer, |definition: &ExperimentDefinition| render::experiment(definition, ctx.palette))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
