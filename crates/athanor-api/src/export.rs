//! Plain HTTP downloads: a run's results and logs, and a comparison, as CSV or JSON.
//!
//! CSV is long format — one row per record, a header, RFC 4180 quoting (the `csv` crate) — so
//! `pandas.read_csv` or Python's `csv` module read it without options. A run's records stream out page by page, so
//! a run with millions of lines never sits in memory whole; a JSON download is one array with a record per line.

use crate::error::ApiError;
use crate::extract::{Params, PathText};
use crate::records::CompareParams;
use athanor_core::api::{LogPage, ResultPage};
use athanor_core::compare::Comparison;
use athanor_core::{LogRecord, ResultRecord, RunId};
use athanor_service::{Service, ServiceError, ServiceResult};
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use serde::Serialize;
use serde_json::Value;

/// Records per page while streaming a download out.
const EXPORT_PAGE: u32 = 5_000;

/// The download routes: `/export/runs/{id}/{file}` (`results.csv`, `results.json`, `logs.csv`, `logs.json`),
/// `/export/compare.csv?runs=…` and `/export/compare.json?runs=…`. Errors are [`ErrorBody`] JSON like the API's.
///
/// [`ErrorBody`]: athanor_core::api::ErrorBody
pub fn export_routes(service: Service) -> Router {
    Router::new()
        .route("/export/runs/{id}/{file}", get(run_file))
        .route("/export/compare.csv", get(compare_csv))
        .route("/export/compare.json", get(compare_json))
        .with_state(service)
}

/// The files a run can be downloaded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunFile {
    ResultsCsv,
    ResultsJson,
    LogsCsv,
    LogsJson,
}

impl RunFile {
    fn parse(name: &str) -> Result<RunFile, ApiError> {
        match name {
            "results.csv" => Ok(RunFile::ResultsCsv),
            "results.json" => Ok(RunFile::ResultsJson),
            "logs.csv" => Ok(RunFile::LogsCsv),
            "logs.json" => Ok(RunFile::LogsJson),
            other => Err(ApiError(ServiceError::NotFound(format!(
                "no export called {other:?}; try results.csv, results.json, logs.csv or logs.json"
            )))),
        }
    }
}

/// `/export/runs/{id}/{file}`: a run's records as one file.
async fn run_file(
    State(service): State<Service>,
    PathText((id, file)): PathText<(String, String)>,
) -> Result<Response, ApiError> {
    let id = RunId::parse(&id)?;
    let file = RunFile::parse(&file)?;
    // Checked before the download starts, so an unknown run is a 404 answer rather than a broken download.
    service.run(id).await?;
    let short: String = id.as_uuid().simple().to_string().chars().take(8).collect();
    Ok(match file {
        RunFile::ResultsCsv => download(
            "text/csv; charset=utf-8",
            format!("run-{short}-results.csv"),
            stream_pages(ResultPages { service, id }, Format::Csv),
        ),
        RunFile::ResultsJson => download(
            "application/json",
            format!("run-{short}-results.json"),
            stream_pages(ResultPages { service, id }, Format::Json),
        ),
        RunFile::LogsCsv => download(
            "text/csv; charset=utf-8",
            format!("run-{short}-logs.csv"),
            stream_pages(LogPages { service, id }, Format::Csv),
        ),
        RunFile::LogsJson => download(
            "application/json",
            format!("run-{short}-logs.json"),
            stream_pages(LogPages { service, id }, Format::Json),
        ),
    })
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

/// A kind of record read page by page through the service, and how one becomes a CSV row.
trait Pages: Clone + Send + Sync + 'static {
    type Record: Serialize + Send;
    const CSV_HEADER: &'static [&'static str];

    /// The records after `after`, and the `seq` to continue from.
    fn page(&self, after: i64) -> impl std::future::Future<Output = ServiceResult<(Vec<Self::Record>, i64)>> + Send;

    fn csv_row(record: &Self::Record) -> Vec<String>;
}

#[derive(Clone)]
struct LogPages {
    service: Service,
    id: RunId,
}

impl Pages for LogPages {
    type Record = LogRecord;
    const CSV_HEADER: &'static [&'static str] = &["seq", "ts", "level", "message", "metadata"];

    async fn page(&self, after: i64) -> ServiceResult<(Vec<LogRecord>, i64)> {
        let LogPage { items, next_after } =
            self.service.logs(self.id, after, &athanor_core::LogFilter::all(), EXPORT_PAGE).await?;
        Ok((items, next_after))
    }

    fn csv_row(log: &LogRecord) -> Vec<String> {
        vec![
            log.seq.to_string(),
            log.ts.to_rfc3339(),
            log.level.to_string(),
            log.message.clone(),
            log.metadata.as_ref().map(Value::to_string).unwrap_or_default(),
        ]
    }
}

#[derive(Clone)]
struct ResultPages {
    service: Service,
    id: RunId,
}

impl Pages for ResultPages {
    type Record = ResultRecord;
    const CSV_HEADER: &'static [&'static str] = &["seq", "ts", "key", "value"];

    async fn page(&self, after: i64) -> ServiceResult<(Vec<ResultRecord>, i64)> {
        let ResultPage { items, next_after } = self.service.results(self.id, None, after, EXPORT_PAGE).await?;
        Ok((items, next_after))
    }

    fn csv_row(result: &ResultRecord) -> Vec<String> {
        vec![result.seq.to_string(), result.ts.to_rfc3339(), result.key.clone(), cell(&result.value)]
    }
}

/// Where a streamed download is.
struct Cursor {
    after: i64,
    started: bool,
    done: bool,
}

/// Every record of `pages` as one body, a page at a time. The first chunk carries the CSV header or the opening
/// bracket; the stream ends at the first empty page (a page shorter than asked does not prove the end, since the
/// service may cap a page lower). A failed read ends the body early, so the client sees a broken download rather
/// than a silently short one.
fn stream_pages<P: Pages>(pages: P, format: Format) -> Body {
    let chunks = futures::stream::unfold(Cursor { after: 0, started: false, done: false }, move |cursor| {
        let pages = pages.clone();
        async move {
            if cursor.done {
                return None;
            }
            let (records, next_after) = match pages.page(cursor.after).await {
                Ok(page) => page,
                Err(error) => {
                    let error = std::io::Error::other(error.to_string());
                    return Some((Err(error), Cursor { done: true, ..cursor }));
                }
            };
            let last = records.is_empty();
            let bytes = match format {
                Format::Csv => csv_chunk::<P>(&records, !cursor.started),
                Format::Json => json_chunk(&records, !cursor.started, last),
            };
            Some((bytes, Cursor { after: next_after, started: true, done: last }))
        }
    });
    Body::from_stream(chunks)
}

fn csv_chunk<P: Pages>(records: &[P::Record], header: bool) -> std::io::Result<Vec<u8>> {
    csv_bytes(|writer| {
        if header {
            writer.write_record(P::CSV_HEADER)?;
        }
        for record in records {
            writer.write_record(P::csv_row(record))?;
        }
        Ok(())
    })
}

/// One piece of a JSON array: `[` on the first, a record per line, `]` on the last.
fn json_chunk<T: Serialize>(records: &[T], first: bool, last: bool) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    for (index, record) in records.iter().enumerate() {
        out.extend_from_slice(if first && index == 0 { b"[\n" } else { b",\n" });
        serde_json::to_writer(&mut out, record)?;
    }
    match (first, last) {
        (true, true) => out.extend_from_slice(b"[]\n"),
        (false, true) => out.extend_from_slice(b"\n]\n"),
        _ => {}
    }
    Ok(out)
}

/// A JSON value as one CSV cell: text as is, numbers and booleans as written, anything else as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn csv_bytes(write: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>) -> std::io::Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    write(&mut writer).map_err(std::io::Error::other)?;
    writer.into_inner().map_err(|error| std::io::Error::other(error.to_string()))
}

async fn compare_json(
    State(service): State<Service>,
    Params(params): Params<CompareParams>,
) -> Result<Response, ApiError> {
    let comparison = service.compare(&params.ids()?).await?;
    let body = serde_json::to_vec_pretty(&comparison)
        .map_err(|error| ApiError(ServiceError::Internal(format!("could not write JSON: {error}"))))?;
    Ok(download("application/json", "comparison.json".into(), Body::from(body)))
}

/// Long format: one row per (run, section, key[, step]) so pandas can pivot it any way.
async fn compare_csv(
    State(service): State<Service>,
    Params(params): Params<CompareParams>,
) -> Result<Response, ApiError> {
    let comparison = service.compare(&params.ids()?).await?;
    let bytes = comparison_csv(&comparison)
        .map_err(|error| ApiError(ServiceError::Internal(format!("could not write CSV: {error}"))))?;
    Ok(download("text/csv; charset=utf-8", "comparison.csv".into(), Body::from(bytes)))
}

fn comparison_csv(comparison: &Comparison) -> std::io::Result<Vec<u8>> {
    csv_bytes(|w| {
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
    })
}
