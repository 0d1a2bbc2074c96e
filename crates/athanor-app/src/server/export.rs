//! Plain HTTP downloads: a run's results and logs, and a comparison, as CSV or JSON.
//!
//! CSV is long format — one row per record, a header, RFC 4180 quoting (the `csv` crate) — so
//! `pandas.read_csv` or Python's `csv` module read it without options. Log exports stream page by page, so a run
//! with millions of lines never sits in memory whole.

use crate::error::AppError;
use crate::state::AppState;
use athanor_core::LogRecord;
use athanor_core::RunId;
use athanor_store::LogQuery;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::Value;

/// Rows per page while streaming logs out.
const EXPORT_PAGE: u32 = 5_000;

/// The export routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/export/runs/{id}/{file}", get(run_file))
        .route("/export/compare.csv", get(compare_csv))
        .route("/export/compare.json", get(compare_json))
}

async fn load_comparison(state: &AppState, runs: &str) -> Result<athanor_core::compare::Comparison, AppError> {
    let ids = RunId::parse_list(runs).map_err(|error| AppError::invalid_field("runs", error.to_string()))?;
    Ok(state.service.compare(&ids).await?)
}

fn error_response(error: AppError) -> Response {
    let status = StatusCode::from_u16(error.code().http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{error}\n")).into_response()
}

fn download(content_type: &'static str, filename: String, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        body,
    )
        .into_response()
}

/// A JSON value as one CSV cell: text as is, numbers and booleans as written, anything else as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn csv_bytes(write: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>) -> Result<Vec<u8>, AppError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    write(&mut writer).map_err(|e| AppError::Server(format!("could not write CSV: {e}")))?;
    writer.into_inner().map_err(|e| AppError::Server(format!("could not write CSV: {e}")))
}

async fn run_file(State(state): State<AppState>, Path((id, file)): Path<(String, String)>) -> Response {
    let run_id = match RunId::parse(&id) {
        Ok(id) => id,
        Err(error) => return error_response(AppError::from(athanor_service::ServiceError::from(error))),
    };
    match state.service.store().get_run(run_id).await {
        Ok(Some(_)) => {}
        Ok(None) => return error_response(AppError::NotFound(format!("no run with id {run_id}"))),
        Err(error) => return error_response(athanor_service::ServiceError::from(error).into()),
    }
    let short = crate::format::short_id(run_id);
    match file.as_str() {
        "results.json" | "results.csv" => {
            let results = match state.service.store().results(run_id, 0, u32::MAX).await {
                Ok(page) => page.items,
                Err(error) => return error_response(AppError::from(athanor_service::ServiceError::from(error))),
            };
            if file.ends_with(".json") {
                let body = serde_json::to_vec_pretty(&results).unwrap_or_default();
                return download("application/json", format!("run-{short}-results.json"), Body::from(body));
            }
            let bytes = csv_bytes(|w| {
                w.write_record(["seq", "ts", "key", "value"])?;
                for r in &results {
                    w.write_record([r.seq.to_string(), r.ts.to_rfc3339(), r.key.clone(), cell(&r.value)])?;
                }
                Ok(())
            });
            match bytes {
                Ok(bytes) => download("text/csv; charset=utf-8", format!("run-{short}-results.csv"), Body::from(bytes)),
                Err(error) => error_response(error),
            }
        }
        "logs.csv" | "logs.json" => {
            let csv = file.ends_with(".csv");
            let store = state.service.store().clone();
            // Pages of logs, each turned into bytes; the first page carries the CSV header or the opening bracket.
            let pages = futures::stream::unfold((0_i64, true, false), move |(after, first, done)| {
                let store = store.clone();
                async move {
                    if done {
                        return None;
                    }
                    let page = match store.logs(run_id, &LogQuery::first(EXPORT_PAGE).after(after)).await {
                        Ok(page) => page,
                        Err(error) => {
                            return Some((Err(std::io::Error::other(error.to_string())), (after, false, true)))
                        }
                    };
                    let last = page.items.len() < EXPORT_PAGE as usize;
                    let bytes = if csv { logs_csv(&page.items, first) } else { logs_json(&page.items, first, last) };
                    Some((bytes.map_err(|e| std::io::Error::other(e.to_string())), (page.next_after_seq, false, last)))
                }
            });
            let (content_type, extension) =
                if csv { ("text/csv; charset=utf-8", "csv") } else { ("application/json", "json") };
            download(content_type, format!("run-{short}-logs.{extension}"), Body::from_stream(pages))
        }
        other => error_response(AppError::NotFound(format!(
            "no export called {other:?}; try results.csv, results.json, logs.csv or logs.json"
        ))),
    }
}

fn logs_csv(logs: &[LogRecord], header: bool) -> Result<Vec<u8>, AppError> {
    csv_bytes(|w| {
        if header {
            w.write_record(["seq", "ts", "level", "message", "metadata"])?;
        }
        for log in logs {
            let metadata = log.metadata.as_ref().map(Value::to_string).unwrap_or_default();
            w.write_record([
                log.seq.to_string(),
                log.ts.to_rfc3339(),
                log.level.to_string(),
                log.message.clone(),
                metadata,
            ])?;
        }
        Ok(())
    })
}

fn logs_json(logs: &[LogRecord], first: bool, last: bool) -> Result<Vec<u8>, AppError> {
    let mut out = Vec::new();
    if first {
        out.push(b'[');
    }
    for (i, log) in logs.iter().enumerate() {
        if !(first && i == 0) {
            out.push(b',');
        }
        out.extend(serde_json::to_vec(log).map_err(|e| AppError::Server(e.to_string()))?);
    }
    if last {
        out.push(b']');
    }
    Ok(out)
}

/// `?runs=a,b,c`.
#[derive(Debug, Deserialize)]
struct RunsQuery {
    #[serde(default)]
    runs: String,
}

async fn compare_json(State(state): State<AppState>, Query(query): Query<RunsQuery>) -> Response {
    match load_comparison(&state, &query.runs).await {
        Ok(comparison) => {
            let body = serde_json::to_vec_pretty(&comparison).unwrap_or_default();
            download("application/json", "comparison.json".into(), Body::from(body))
        }
        Err(error) => error_response(error),
    }
}

/// Long format: one row per (run, section, key[, step]) so pandas can pivot it any way.
async fn compare_csv(State(state): State<AppState>, Query(query): Query<RunsQuery>) -> Response {
    let comparison = match load_comparison(&state, &query.runs).await {
        Ok(comparison) => comparison,
        Err(error) => return error_response(error),
    };
    let bytes = csv_bytes(|w| {
        w.write_record(["run_id", "instance", "status", "section", "key", "step", "value"])?;
        for (section, rows) in [("config", &comparison.config), ("result", &comparison.results)] {
            for row in rows {
                for (column, value) in comparison.runs.iter().zip(&row.values) {
                    if let Some(value) = value {
                        w.write_record([
                            column.id.to_string(),
                            column.instance_name.clone(),
                            column.status.to_string(),
                            section.to_owned(),
                            row.key.clone(),
                            String::new(),
                            cell(value),
                        ])?;
                    }
                }
            }
        }
        for series in &comparison.series {
            for (column, line) in comparison.runs.iter().zip(&series.lines) {
                for (x, y) in line {
                    w.write_record([
                        column.id.to_string(),
                        column.instance_name.clone(),
                        column.status.to_string(),
                        "series".to_owned(),
                        series.name.clone(),
                        x.to_string(),
                        y.to_string(),
                    ])?;
                }
            }
        }
        Ok(())
    });
    match bytes {
        Ok(bytes) => download("text/csv; charset=utf-8", "comparison.csv".into(), Body::from(bytes)),
        Err(error) => error_response(error),
    }
}
