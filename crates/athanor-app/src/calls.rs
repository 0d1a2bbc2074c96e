//! Server functions that more than one page calls. Each is a thin call into [`athanor_service::Service`]; the
//! rules (validation, cancel-before-delete, lifecycle events) live there. Ids arrive typed: a form posts the id as
//! text and it is parsed once, when the arguments are decoded.

use crate::error::AppError;
use athanor_core::api::InstanceDetails;
use athanor_core::{ExperimentDefinition, InstanceId, Run, RunId};
use leptos::prelude::*;

/// Every experiment this server can run, by name.
#[server(endpoint = "list_experiments")]
pub async fn list_experiments() -> Result<Vec<ExperimentDefinition>, AppError> {
    Ok(crate::state::service()?.experiments())
}

/// One instance with its experiment's definition and its runs, newest first.
#[server(endpoint = "get_instance_details")]
pub async fn get_instance_details(id: InstanceId) -> Result<InstanceDetails, AppError> {
    Ok(crate::state::service()?.instance_details(id).await?)
}

/// Start a run of an instance: it gets its own copy of the configuration and waits in the queue if the server
/// is at its concurrency limit.
#[server(endpoint = "start_run")]
pub async fn start_run(instance_id: InstanceId) -> Result<Run, AppError> {
    Ok(crate::state::service()?.start_run(instance_id).await?)
}

/// Cancel a run: a pending one at once, a running one cooperatively, then by force after the grace period.
#[server(endpoint = "cancel_run")]
pub async fn cancel_run(run_id: RunId) -> Result<(), AppError> {
    crate::state::service()?.cancel_run(run_id).await?;
    Ok(())
}

/// Delete an instance with its runs, logs and results; its active runs are cancelled first.
#[server(endpoint = "delete_instance")]
pub async fn delete_instance(id: InstanceId) -> Result<(), AppError> {
    Ok(crate::state::service()?.delete_instance(id).await?)
}
