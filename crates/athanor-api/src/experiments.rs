//! `/experiments`: what this server can run, and checking a configuration against an experiment's schema.

use crate::error::ApiError;
use crate::extract::{JsonBody, PathText};
use athanor_core::api::ErrorBody;
use athanor_core::ExperimentDefinition;
use athanor_service::Service;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A configuration the schema accepts, completed with every default: what an instance would store.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ValidatedConfig {
    /// The configuration with every default filled in.
    config: Value,
}

/// List the experiments this server can run.
///
/// Sorted by name; each with its description, version and configuration schema.
#[utoipa::path(
    get,
    path = "/experiments",
    tag = "experiments",
    responses((status = 200, description = "The experiments, sorted by name", body = [ExperimentDefinition]))
)]
pub(crate) async fn list_experiments(State(service): State<Service>) -> Json<Vec<ExperimentDefinition>> {
    Json(service.experiments())
}

/// One experiment.
///
/// Its description, version and configuration schema (the fields an instance's `config` may hold).
#[utoipa::path(
    get,
    path = "/experiments/{name}",
    tag = "experiments",
    params(("name" = String, Path, description = "The experiment's name, e.g. `training_curve`")),
    responses(
        (status = 200, description = "The experiment", body = ExperimentDefinition),
        (status = 404, description = "`not_found`: no experiment by that name", body = ErrorBody),
    )
)]
pub(crate) async fn get_experiment(
    State(service): State<Service>,
    PathText(name): PathText,
) -> Result<Json<ExperimentDefinition>, ApiError> {
    Ok(Json(service.experiment(&name)?))
}

/// Check a configuration without saving it.
///
/// The configuration is checked against the experiment's schema. Every refused field is reported at once, keyed
/// by its path (`epochs`, `model_pairs[1].runs`); an accepted one comes back completed with every default.
#[utoipa::path(
    post,
    path = "/experiments/{name}/validate",
    tag = "experiments",
    params(("name" = String, Path, description = "The experiment's name")),
    request_body(content = Object, description = "The configuration object; fields left out take their defaults"),
    responses(
        (status = 200, description = "Accepted: the configuration completed with defaults", body = ValidatedConfig),
        (status = 400, description = "`invalid_input`: one entry in `fields` per refused field, or `experiment` \
            when the server has no such experiment", body = ErrorBody),
    )
)]
pub(crate) async fn validate_config(
    State(service): State<Service>,
    PathText(name): PathText,
    JsonBody(config): JsonBody<Value>,
) -> Result<Json<ValidatedConfig>, ApiError> {
    Ok(Json(ValidatedConfig { config: service.validate_config(&name, &config)? }))
}
