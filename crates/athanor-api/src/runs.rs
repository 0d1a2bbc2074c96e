//! `/runs`: listing runs across instances, one run, cancelling, and waiting for the end.

use crate::error::ApiError;
use crate::extract::{blank_as_none, number_or_none, Params, PathId};
use athanor_core::api::{ErrorBody, Paged, WaitOutcome, WorkerNode};
use athanor_core::{InstanceId, Run, RunId, RunListing, RunStatus};
use athanor_service::{RunQuery, Service};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use std::time::Duration;

/// Which runs to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunsParams {
    /// Only runs of instances of this experiment.
    #[serde(default, deserialize_with = "blank_as_none")]
    experiment: Option<String>,
    /// Only runs of this instance (its id).
    #[serde(default, deserialize_with = "blank_as_none")]
    instance: Option<InstanceId>,
    /// Only runs with this status.
    #[serde(default, deserialize_with = "blank_as_none")]
    status: Option<RunStatus>,
    /// The `next_cursor` of the previous page; left out: the first page.
    #[serde(default, deserialize_with = "blank_as_none")]
    cursor: Option<String>,
    /// Runs per page: default 50, at most 500.
    #[serde(default, deserialize_with = "number_or_none")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// List runs across instances.
///
/// Newest first, a page at a time: pass `next_cursor` as `cursor` for the next page. Pages stay consistent while
/// runs are created (a cursor names the last run seen, not an offset).
#[utoipa::path(
    get,
    path = "/runs",
    tag = "runs",
    params(RunsParams),
    responses(
        (status = 200, description = "A page of runs; `next_cursor` is absent on the last page",
            body = Paged<RunListing>),
        (status = 400, description = "`invalid_input`: a parameter is refused (`status`, `instance`, `cursor`, \
            `limit`, or an unknown one)", body = ErrorBody),
    )
)]
pub(crate) async fn list_runs(
    State(service): State<Service>,
    Params(params): Params<RunsParams>,
) -> Result<Json<Paged<RunListing>>, ApiError> {
    let query = RunQuery {
        experiment: params.experiment,
        instance: params.instance,
        status: params.status,
        cursor: params.cursor,
        limit: params.limit,
    };
    Ok(Json(service.list_runs(query).await?))
}

/// One run.
///
/// Its status, configuration snapshot, experiment version, times and error.
#[utoipa::path(
    get,
    path = "/runs/{id}",
    tag = "runs",
    params(("id" = RunId, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = Run),
        (status = 400, description = "`invalid_input`: `run_id` is not a UUID", body = ErrorBody),
        (status = 404, description = "`not_found`: no run with that id", body = ErrorBody),
    )
)]
pub(crate) async fn get_run(State(service): State<Service>, PathId(id): PathId<RunId>) -> Result<Json<Run>, ApiError> {
    Ok(Json(service.run(id).await?))
}

/// Cancel a run.
///
/// A pending run ends at once; a running one is asked to stop, then stopped by force after the server's grace
/// period. Answers the run right after the request: a running run may still say `running` (wait for it with
/// `/runs/{id}/wait`).
#[utoipa::path(
    post,
    path = "/runs/{id}/cancel",
    tag = "runs",
    params(("id" = RunId, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run right after the request", body = Run),
        (status = 404, description = "`not_found`: no run with that id", body = ErrorBody),
        (status = 409, description = "`conflict`: the run has already ended", body = ErrorBody),
    )
)]
pub(crate) async fn cancel_run(
    State(service): State<Service>,
    PathId(id): PathId<RunId>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(service.cancel_run(id).await?))
}

/// How long to wait.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct WaitParams {
    /// Seconds to wait at most: default 30; larger values than 600 wait 600 (then ask again).
    #[serde(default, deserialize_with = "number_or_none")]
    #[param(value_type = Option<u64>, maximum = 600)]
    timeout_s: Option<u64>,
}

/// Wait for a run to end.
///
/// Answers once the run has ended or the timeout has passed, whichever is first; `ended` says which.
#[utoipa::path(
    get,
    path = "/runs/{id}/wait",
    tag = "runs",
    params(("id" = RunId, Path, description = "The run's id"), WaitParams),
    responses(
        (status = 200, description = "The run as it is now, and whether it has ended", body = WaitOutcome),
        (status = 400, description = "`invalid_input`: `timeout_s` is not a whole number", body = ErrorBody),
        (status = 404, description = "`not_found`: no run with that id", body = ErrorBody),
        (status = 503, description = "`unavailable`: as many streams and waits are open as the server holds",
            body = ErrorBody),
    )
)]
pub(crate) async fn wait_for_run(
    State(service): State<Service>,
    PathId(id): PathId<RunId>,
    Params(params): Params<WaitParams>,
) -> Result<Json<WaitOutcome>, ApiError> {
    // The service applies the default and the cap, the same for every front end.
    let timeout = params.timeout_s.map(Duration::from_secs);
    Ok(Json(service.wait_for_run(id, timeout).await?))
}

/// List the worker nodes.
///
/// Every process that executes runs from this database's shared queue (PostgreSQL only), most recent heartbeat
/// first: its capacity, what it runs now and what it can run, and its last heartbeat. Empty on SQLite, where the
/// server executes every run itself.
#[utoipa::path(
    get,
    path = "/workers",
    tag = "runs",
    responses((status = 200, description = "The nodes, most recent heartbeat first", body = [WorkerNode]))
)]
pub(crate) async fn list_workers(State(service): State<Service>) -> Result<Json<Vec<WorkerNode>>, ApiError> {
    Ok(Json(service.worker_nodes().await?))
}
