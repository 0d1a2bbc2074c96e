//! `/instances`: saved configurations of experiments, and starting runs of them.

use crate::error::ApiError;
use crate::extract::{JsonBody, PathId};
use athanor_core::api::{ErrorBody, InstanceChanges, InstanceDetails, InstanceInput};
use athanor_core::{Instance, InstanceId, InstanceSummary, Run};
use athanor_service::Service;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

/// How to name a clone.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloneInput {
    /// The clone's name; left out or blank: the source's name followed by " (copy)".
    #[serde(default)]
    name: Option<String>,
}

/// List instances.
///
/// Newest first, each with its run count and latest run.
#[utoipa::path(
    get,
    path = "/instances",
    tag = "instances",
    responses((status = 200, description = "The instances, newest first", body = [InstanceSummary]))
)]
pub(crate) async fn list_instances(State(service): State<Service>) -> Result<Json<Vec<InstanceSummary>>, ApiError> {
    Ok(Json(service.list_instances().await?))
}

/// Create an instance.
///
/// The configuration is validated against the experiment's schema and completed with defaults; every refused
/// field is reported at once and nothing is saved unless all are fine.
#[utoipa::path(
    post,
    path = "/instances",
    tag = "instances",
    request_body = InstanceInput,
    responses(
        (status = 201, description = "Saved", body = Instance),
        (status = 400, description = "`invalid_input`: `fields` names each refused field (`name`, `description`, \
            `experiment`, `config.<path>`); nothing was saved", body = ErrorBody),
    )
)]
pub(crate) async fn create_instance(
    State(service): State<Service>,
    JsonBody(input): JsonBody<InstanceInput>,
) -> Result<(StatusCode, Json<Instance>), ApiError> {
    Ok((StatusCode::CREATED, Json(service.create_instance(input).await?)))
}

/// One instance, with its experiment and its runs.
///
/// The experiment's definition is absent when the server no longer has that experiment. Runs are newest first.
#[utoipa::path(
    get,
    path = "/instances/{id}",
    tag = "instances",
    params(("id" = InstanceId, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "The instance, its experiment and its runs, newest first", body = InstanceDetails),
        (status = 400, description = "`invalid_input`: `instance_id` is not a UUID", body = ErrorBody),
        (status = 404, description = "`not_found`: no instance with that id", body = ErrorBody),
    )
)]
pub(crate) async fn get_instance(
    State(service): State<Service>,
    PathId(id): PathId<InstanceId>,
) -> Result<Json<InstanceDetails>, ApiError> {
    Ok(Json(service.instance_details(id).await?))
}

/// Edit an instance.
///
/// Changes its name, description or configuration; fields left out keep their value. A new `config` replaces
/// the whole configuration (validated and completed like a new one). Past runs keep their own copies.
#[utoipa::path(
    patch,
    path = "/instances/{id}",
    tag = "instances",
    params(("id" = InstanceId, Path, description = "The instance's id")),
    request_body = InstanceChanges,
    responses(
        (status = 200, description = "The instance as saved", body = Instance),
        (status = 400, description = "`invalid_input`: `fields` names each refused field; nothing was saved",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no instance with that id", body = ErrorBody),
    )
)]
pub(crate) async fn update_instance(
    State(service): State<Service>,
    PathId(id): PathId<InstanceId>,
    JsonBody(changes): JsonBody<InstanceChanges>,
) -> Result<Json<Instance>, ApiError> {
    Ok(Json(service.update_instance(id, changes).await?))
}

/// Delete an instance.
///
/// Its runs, logs and results go with it; its active runs are cancelled first.
#[utoipa::path(
    delete,
    path = "/instances/{id}",
    tag = "instances",
    params(("id" = InstanceId, Path, description = "The instance's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_input`: `instance_id` is not a UUID", body = ErrorBody),
        (status = 404, description = "`not_found`: no instance with that id", body = ErrorBody),
    )
)]
pub(crate) async fn delete_instance(
    State(service): State<Service>,
    PathId(id): PathId<InstanceId>,
) -> Result<StatusCode, ApiError> {
    service.delete_instance(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clone an instance.
///
/// A new instance with the same experiment, description and configuration; runs are not copied.
#[utoipa::path(
    post,
    path = "/instances/{id}/clone",
    tag = "instances",
    params(("id" = InstanceId, Path, description = "The instance to copy")),
    request_body(content = Option<CloneInput>, description = "Optional: the body may be left out"),
    responses(
        (status = 201, description = "The new instance", body = Instance),
        (status = 400, description = "`invalid_input`: the name is refused", body = ErrorBody),
        (status = 404, description = "`not_found`: no instance with that id", body = ErrorBody),
    )
)]
pub(crate) async fn clone_instance(
    State(service): State<Service>,
    PathId(id): PathId<InstanceId>,
    body: Option<JsonBody<CloneInput>>,
) -> Result<(StatusCode, Json<Instance>), ApiError> {
    let JsonBody(input) = body.unwrap_or(JsonBody(CloneInput::default()));
    Ok((StatusCode::CREATED, Json(service.clone_instance(id, input.name).await?)))
}

/// Start a run of an instance.
///
/// The run gets its own copy of the configuration (re-validated against the experiment's current schema) and
/// waits as `pending` while the server is at its concurrency limit.
#[utoipa::path(
    post,
    path = "/instances/{id}/runs",
    tag = "runs",
    params(("id" = InstanceId, Path, description = "The instance to run")),
    responses(
        (status = 201, description = "The new run, `pending` or already `running`", body = Run),
        (status = 400, description = "`invalid_input`: the server no longer has the experiment, or the stored \
            configuration no longer fits its schema (`fields` says where)", body = ErrorBody),
        (status = 404, description = "`not_found`: no instance with that id", body = ErrorBody),
    )
)]
pub(crate) async fn start_run(
    State(service): State<Service>,
    PathId(id): PathId<InstanceId>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    Ok((StatusCode::CREATED, Json(service.start_run(id).await?)))
}
