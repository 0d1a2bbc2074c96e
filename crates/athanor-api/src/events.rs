//! `/runs/{id}/events`: a run's live events as server-sent events (SSE).
//!
//! One SSE event per [`RunEvent`]; its `event:` line is the variant's name and its `data:` the variant's inner
//! JSON, so a client needs no wrapper type: `snapshot` → [`SnapshotData`], `records` → [`RecordsData`],
//! `progress` → [`Progress`], `status` → [`Run`]. The stream ends after the terminal `status`, which the runtime
//! sends only once every record before it was sent. A `records` event carries the highest `seq` in it as its SSE
//! `id`, so a client that reconnects (an `EventSource` does by itself) resumes after it through `Last-Event-ID`.

use crate::error::ApiError;
use crate::extract::{number_or_none, Params, PathId};
use athanor_core::api::ErrorBody;
use athanor_core::{LogRecord, Progress, ResultRecord, Run, RunEvent, RunId};
use athanor_service::{Service, ServiceError};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::ToSchema;

/// How often a comment line goes out while nothing happens, so proxies and clients keep an idle stream open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `data` of a `snapshot` event: the run as it is now and its latest progress. Always the first event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SnapshotData {
    /// The run now.
    run: Run,
    /// Its latest progress, if it is active and has reported any.
    progress: Option<Progress>,
}

/// The `data` of a `records` event: newly committed log lines and results, each in `seq` order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecordsData {
    /// New log lines.
    logs: Vec<LogRecord>,
    /// New results.
    results: Vec<ResultRecord>,
}

/// Where the stream starts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsParams {
    /// Replay stored records after this `seq` first (default 0: all of them; the `Last-Event-ID` header when it
    /// is left out).
    #[serde(default, deserialize_with = "number_or_none")]
    #[param(value_type = Option<i64>)]
    after: Option<i64>,
}

/// Follow a run live (server-sent events).
///
/// A run's events as `text/event-stream`: `snapshot` first, then `records` (stored ones after `after`, then live
/// ones), `progress` and `status`; the stream ends after the terminal `status`. A comment line goes out every
/// 15 s while nothing happens. Should the stream fail midway, a last `error` event carries an `ErrorBody`.
#[utoipa::path(
    get,
    path = "/runs/{id}/events",
    tag = "runs",
    params(
        ("id" = RunId, Path, description = "The run's id"),
        EventsParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "Set by a reconnecting `EventSource`: the `id` of \
            the last `records` event seen; used when `after` is left out"),
    ),
    responses(
        (status = 200, content_type = "text/event-stream", body = String, description = "Events named `snapshot` \
            (data: `SnapshotData`), `records` (`RecordsData`, with the highest `seq` as the event id), `progress` \
            (`Progress`) and `status` (`Run`); the stream ends after the terminal `status`."),
        (status = 400, description = "`invalid_input`: `run_id` or `after` is malformed", body = ErrorBody),
        (status = 404, description = "`not_found`: no run with that id", body = ErrorBody),
        (status = 503, description = "`unavailable`: as many streams and waits are open as the server holds",
            body = ErrorBody),
    )
)]
pub(crate) async fn run_events(
    State(service): State<Service>,
    PathId(id): PathId<RunId>,
    Params(params): Params<EventsParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = match params.after {
        Some(after) => after,
        None => last_event_id(&headers)?,
    };
    let held = service.hold_answer()?;
    let events = service.run_events(id, after).await?;
    // After an error the stream stops: what follows it could have a gap.
    let stream = events
        .scan(false, move |failed, item| {
            // The stream owns its place among the answers held open, and frees it when it ends or its client goes.
            let _held = &held;
            let event = match item {
                _ if *failed => None,
                Ok(event) => Some(sse_event(event)),
                Err(error) => {
                    *failed = true;
                    Some(error_event(&error))
                }
            };
            futures::future::ready(event.map(Ok))
        })
        .boxed();
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn last_event_id(headers: &HeaderMap) -> Result<i64, ApiError> {
    let Some(value) = headers.get("last-event-id") else { return Ok(0) };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| ApiError::invalid("Last-Event-ID", "expected the `seq` of the last records event seen"))
}

fn sse_event(event: RunEvent) -> Event {
    match event {
        RunEvent::Snapshot { run, progress } => json_event("snapshot", &SnapshotData { run, progress }),
        RunEvent::Records { logs, results } => {
            let last = logs.iter().map(|l| l.seq).chain(results.iter().map(|r| r.seq)).max();
            let event = json_event("records", &RecordsData { logs, results });
            match last {
                Some(seq) => event.id(seq.to_string()),
                None => event,
            }
        }
        RunEvent::Progress(progress) => json_event("progress", &progress),
        RunEvent::Status(run) => json_event("status", &run),
    }
}

fn json_event(name: &str, data: &impl Serialize) -> Event {
    Event::default().event(name).json_data(data).unwrap_or_else(|error| {
        error_event(&ServiceError::Internal(format!("could not encode a {name} event: {error}")))
    })
}

fn error_event(error: &ServiceError) -> Event {
    let body: ErrorBody = error.body();
    // An ErrorBody always serializes; the fallback keeps the stream well-formed whatever happens.
    Event::default().event("error").json_data(&body).unwrap_or_else(|_| Event::default().event("error").data("{}"))
}
