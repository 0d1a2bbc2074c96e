//! What runs produced: `/runs/{id}/logs`, `/runs/{id}/results`, and `/compare`.

use crate::error::ApiError;
use crate::extract::{blank_as_none, number_or_none, Params, PathId};
use athanor_core::api::{ErrorBody, LogPage, ResultPage};
use athanor_core::compare::Comparison;
use athanor_core::{LogFilter, LogLevel, RunId};
use athanor_service::Service;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use std::str::FromStr;

/// Records per page when `limit` is not given.
const DEFAULT_LIMIT: u32 = 500;

/// `level=warn,error`: the levels to keep.
#[derive(Debug)]
pub(crate) struct Levels(Vec<LogLevel>);

impl FromStr for Levels {
    type Err = athanor_core::model::UnknownLevel;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(Levels)
    }
}

/// Which log lines to read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogsParams {
    /// Lines after this `seq`, oldest first (default 0: from the start). Pass the previous page's `next_after`.
    #[serde(default, deserialize_with = "number_or_none")]
    #[param(value_type = Option<i64>)]
    after: Option<i64>,
    /// Instead of `after`: the `limit` lines just before this `seq`, oldest first (a huge number: the last
    /// lines). To page further back, pass the first line's `seq`.
    #[serde(default, deserialize_with = "number_or_none")]
    #[param(value_type = Option<i64>)]
    before: Option<i64>,
    /// Only these levels, comma-separated (`warn,error`); left out: every level.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(value_type = Option<String>, example = "warn,error")]
    level: Option<Levels>,
    /// Only lines whose message contains this text, ignoring case (at most 1,024 bytes). Searched in the
    /// database over the whole run.
    #[serde(default, deserialize_with = "blank_as_none")]
    #[param(value_type = Option<String>, example = "out of memory")]
    q: Option<String>,
    /// Lines per page: default 500, at most 5,000.
    #[serde(default, deserialize_with = "number_or_none")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    limit: Option<u32>,
}

/// Read a run's log lines.
///
/// Oldest first, after a `seq` (or just before one), optionally at some levels only and containing a text.
#[utoipa::path(
    get,
    path = "/runs/{id}/logs",
    tag = "records",
    params(("id" = RunId, Path, description = "The run's id"), LogsParams),
    responses(
        (status = 200, description = "A page of lines; pass `next_after` as `after` to read on", body = LogPage),
        (status = 400, description = "`invalid_input`: a parameter is refused (`level` names an unknown level, \
            `after` and `before` both given, `q` too long, …)", body = ErrorBody),
        (status = 404, description = "`not_found`: no run with that id", body = ErrorBody),
    )
)]
pub(crate) async fn logs(
    State(service): State<Service>,
    PathId(id): PathId<RunId>,
    Params(params): Params<LogsParams>,
) -> Result<Json<LogPage>, ApiError> {
    let levels = params.level.map(|Levels(levels)| levels).unwrap_or_default();
    let filter = LogFilter::levels(&levels).containing(params.q.as_deref().unwrap_or_default());
    filter.check().map_err(|message| ApiError::invalid("q", message))?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    match (params.after, params.before) {
        (Some(_), Some(_)) => Err(ApiError::invalid("before", "give either `after` or `before`, not both")),
        (after, None) => Ok(Json(service.logs(id, after.unwrap_or(0), &filter, limit).await?)),
        (None, Some(before)) => {
            let items = service.logs_before(id, before, &filter, limit).await?;
            // Reading on forward continues after the last line returned (or from `before` when there was none).
            let next_after = items.last().map_or(before.saturating_sub(1).max(0), |line| line.seq);
            Ok(Json(LogPage { items, next_after }))
        }
    }
}

/// Which results to read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResultsParams {
    /// Only results recorded under this key (a key recorded many times, such as a curve's point, gives one
    /// record per value).
    #[serde(default, deserialize_with = "blank_as_none")]
    key: Option<String>,
    /// Results after this `seq` (default 0: from the start). Pass the previous page's `next_after`.
    #[serde(default, deserialize_with = "number_or_none")]
    #[param(value_type = Option<i64>)]
    after: Option<i64>,
    /// Results per page: default 500, at most 5,000.
    #[serde(default, deserialize_with = "number_or_none")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    limit: Option<u32>,
}

/// Read a run's results.
///
/// In `seq` order, all of them or those under one key.
#[utoipa::path(
    get,
    path = "/runs/{id}/results",
    tag = "records",
    params(("id" = RunId, Path, description = "The run's id"), ResultsParams),
    responses(
        (status = 200, description = "A page of results; pass `next_after` as `after` to read on", body = ResultPage),
        (status = 400, description = "`invalid_input`: a parameter is refused", body = ErrorBody),
        (status = 404, description = "`not_found`: no run with that id", body = ErrorBody),
    )
)]
pub(crate) async fn results(
    State(service): State<Service>,
    PathId(id): PathId<RunId>,
    Params(params): Params<ResultsParams>,
) -> Result<Json<ResultPage>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    Ok(Json(service.results(id, params.key.as_deref(), params.after.unwrap_or(0), limit).await?))
}

/// Which runs to compare.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompareParams {
    /// Run ids, comma-separated, in column order; repeats are ignored.
    #[serde(default)]
    #[param(required = true)]
    runs: String,
}

impl CompareParams {
    /// The ids asked for; a malformed one is refused naming `runs`.
    pub(crate) fn ids(&self) -> Result<Vec<RunId>, ApiError> {
        RunId::parse_list(&self.runs).map_err(|error| ApiError::invalid("runs", error.to_string()))
    }
}

/// Compare runs.
///
/// Side by side, in the order given: the configuration diff, results aligned by key, and numeric series.
#[utoipa::path(
    get,
    path = "/compare",
    tag = "records",
    params(CompareParams),
    responses(
        (status = 200, description = "The comparison", body = Comparison),
        (status = 400, description = "`invalid_input`: `runs` is empty, too long, or holds a malformed id",
            body = ErrorBody),
        (status = 404, description = "`not_found`: one of the runs does not exist (the message names it)",
            body = ErrorBody),
        (status = 413, description = "`too_large`: the runs hold more result data than a comparison loads",
            body = ErrorBody),
    )
)]
pub(crate) async fn compare(
    State(service): State<Service>,
    Params(params): Params<CompareParams>,
) -> Result<Json<Comparison>, ApiError> {
    Ok(Json(service.compare(&params.ids()?).await?))
}
