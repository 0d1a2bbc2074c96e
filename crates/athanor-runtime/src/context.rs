//! [`RunContext`]: everything an experiment's `run` can do.

use crate::hub::Hub;
use crate::limits::{self, Excess};
use crate::writer::{WriterHandle, WriterMessage, MAX_LINES_PER_MESSAGE};
use athanor_core::RunId;
use athanor_core::{LogLevel, NewLog, NewResult, Progress};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// PostgreSQL cannot store NUL in text or JSONB, and one unstorable record would stall the writer's retries for
/// every run; so NUL characters become U+FFFD (the replacement character) on the way in, on both backends alike.
pub(crate) fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// [`storable`] for every string and key inside a JSON value (already checked to be at most
/// [`limits::MAX_DEPTH`] deep, so the recursion is shallow).
fn storable_json(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(storable(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (storable(k), storable_json(v))).collect()),
        other => other,
    }
}

/// A value that was refused: why, in the words the run's log shows.
///
/// Returned by [`RunContext::result`]; the same sentence is recorded as an `error` log line of the run, so a
/// refusal is visible even where the error is ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RecordError {
    message: String,
    excess: Option<Excess>,
}

impl RecordError {
    /// The limit broken and the size found; `None` when the value could not be represented as JSON at all.
    pub fn excess(&self) -> Option<Excess> {
        self.excess
    }
}

/// "its message is 2000000 bytes, over the limit of 1048576 bytes (1 MiB)"; `json` says the size is of a JSON
/// serialization.
fn describe(subject: &str, excess: Excess, json: bool) -> String {
    match excess {
        Excess::Bytes { .. } if json => format!("{subject} as JSON {excess}"),
        _ => format!("{subject} {excess}"),
    }
}

/// A log line as it will be stored, or, when it breaks a limit, the `error` line that takes its place.
fn accept_log(ts: DateTime<Utc>, level: LogLevel, message: String, metadata: Option<Value>) -> NewLog {
    let checked = limits::check_text(&message, limits::MAX_MESSAGE_BYTES)
        .map_err(|excess| describe("its message", excess, false))
        .and_then(|()| match &metadata {
            None => Ok(false),
            Some(metadata) => limits::check_value(metadata, limits::MAX_METADATA_BYTES)
                .map_err(|excess| describe("its metadata", excess, true)),
        });
    match checked {
        Ok(has_nul) => NewLog {
            ts,
            level,
            message: storable(message),
            metadata: if has_nul { metadata.map(storable_json) } else { metadata },
        },
        Err(problem) => {
            let refusal = format!("log line refused: {problem}; it began: {}", limits::preview(message.as_bytes()));
            NewLog { ts, level: LogLevel::Error, message: storable(refusal), metadata: None }
        }
    }
}

/// How a key is named in a refusal: quoted, or its start when the key itself is what is too long.
fn key_in_error(key: &str) -> String {
    format!("{:?}", limits::preview(key.as_bytes()))
}

/// A result as it will be stored, or why it is refused.
fn accept_result(key: String, value: Value) -> Result<NewResult, RecordError> {
    if let Err(excess) = limits::check_text(&key, limits::MAX_KEY_BYTES) {
        let message =
            format!("result refused: {}; the key began: {}", describe("its key", excess, false), key_in_error(&key));
        return Err(RecordError { message, excess: Some(excess) });
    }
    match limits::check_value(&value, limits::MAX_VALUE_BYTES) {
        Ok(has_nul) => Ok(NewResult {
            ts: Utc::now(),
            key: storable(key),
            value: if has_nul { storable_json(value) } else { value },
        }),
        Err(excess) => {
            let message = format!("result {} refused: {}", key_in_error(&key), describe("its value", excess, true));
            Err(RecordError { message, excess: Some(excess) })
        }
    }
}

struct Inner {
    run_id: RunId,
    config: Value,
    writer: WriterHandle,
    hub: Arc<Hub>,
    cancel: CancellationToken,
}

/// The handle a run receives: its configuration, logging, results, progress and cancellation.
///
/// Cheap to clone; clones share the run. Logging and results are `async` because they apply back-pressure: while
/// the database keeps up they complete at once (a channel send, well under a microsecond), and under sustained
/// overload they wait for room rather than drop a line or grow memory without bound.
///
/// # Limits
///
/// Every value is checked as it enters, against the limits in [`crate::limits`]:
///
/// | what | limit |
/// | --- | --- |
/// | a log message | 1 MiB ([`limits::MAX_MESSAGE_BYTES`]) |
/// | a log's metadata | 1 MiB as JSON ([`limits::MAX_METADATA_BYTES`]), nested at most 64 levels ([`limits::MAX_DEPTH`]) |
/// | a result key (a series' `name/step` too) | 1 KiB ([`limits::MAX_KEY_BYTES`]) |
/// | a result value | 16 MiB as JSON ([`limits::MAX_VALUE_BYTES`]), nested at most 64 levels |
/// | a progress message | 4 KiB ([`limits::MAX_PROGRESS_MESSAGE_BYTES`]) |
///
/// Nothing over a limit is stored, and nothing is lost silently: the value is refused and an **`error` log line**
/// takes its place in the run's log, naming the limit and the size found (`log line refused: its message is
/// 2000000 bytes, over the limit of 1048576 bytes (1 MiB); it began: …`). So experiment code needs no error
/// handling for the limits: `log` and `series` return nothing, and the run goes on. [`RunContext::result`] also
/// returns the refusal as a [`RecordError`], for code that wants to react (`?` fails the run with it). A progress
/// message is never stored, so a longer one is cut to 4 KiB instead of refused.
#[derive(Clone)]
pub struct RunContext {
    inner: Arc<Inner>,
}

impl RunContext {
    pub(crate) fn new(
        run_id: RunId,
        config: Value,
        writer: WriterHandle,
        hub: Arc<Hub>,
        cancel: CancellationToken,
    ) -> RunContext {
        RunContext { inner: Arc::new(Inner { run_id, config, writer, hub, cancel }) }
    }

    /// This run's id.
    pub fn run_id(&self) -> RunId {
        self.inner.run_id
    }

    /// The run's configuration: the instance's, validated, with every default filled in.
    pub fn config(&self) -> &Value {
        &self.inner.config
    }

    async fn send(&self, message: WriterMessage) {
        // The writer outlives every run (the runtime owns it), so it refuses only when it has stopped (it panicked,
        // which it reports loudly, or the process is ending); the run is then stopped and ends `failed`.
        if self.inner.writer.send(message).await.is_err() {
            tracing::warn!(run_id = %self.inner.run_id, "record lost: the record writer has stopped");
        }
    }

    /// Append a log line, with optional structured metadata.
    ///
    /// A message over 1 MiB, or metadata over 1 MiB as JSON or nested more than 64 levels, is refused: an `error`
    /// line saying why (and quoting the start of the message) is stored in its place (see "Limits" above).
    pub async fn log(&self, level: LogLevel, message: impl Into<String>, metadata: Option<Value>) {
        let log = accept_log(Utc::now(), level, message.into(), metadata);
        self.send(WriterMessage::Log { run_id: self.inner.run_id, log }).await;
    }

    /// Shorthand for `log(LogLevel::Debug, message, None)`.
    pub async fn debug(&self, message: impl Into<String>) {
        self.log(LogLevel::Debug, message, None).await;
    }

    /// Shorthand for `log(LogLevel::Info, message, None)`.
    pub async fn info(&self, message: impl Into<String>) {
        self.log(LogLevel::Info, message, None).await;
    }

    /// Shorthand for `log(LogLevel::Warn, message, None)`.
    pub async fn warn(&self, message: impl Into<String>) {
        self.log(LogLevel::Warn, message, None).await;
    }

    /// Shorthand for `log(LogLevel::Error, message, None)`.
    pub async fn error(&self, message: impl Into<String>) {
        self.log(LogLevel::Error, message, None).await;
    }

    /// Append many log lines at once: one timestamp, fewer channel operations. Lines keep their order; a line over
    /// a limit is replaced by its `error` line, in its place, as with [`RunContext::log`].
    pub async fn log_batch<M: Into<String>>(&self, lines: impl IntoIterator<Item = (LogLevel, M, Option<Value>)>) {
        let ts = Utc::now();
        let mut chunk = Vec::with_capacity(MAX_LINES_PER_MESSAGE);
        for (level, message, metadata) in lines {
            chunk.push(accept_log(ts, level, message.into(), metadata));
            if chunk.len() == MAX_LINES_PER_MESSAGE {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(MAX_LINES_PER_MESSAGE));
                self.send(WriterMessage::Logs { run_id: self.inner.run_id, logs: full }).await;
            }
        }
        if !chunk.is_empty() {
            self.send(WriterMessage::Logs { run_id: self.inner.run_id, logs: chunk }).await;
        }
    }

    /// Record a result under a key: anything serde can serialize — a number, a string, a struct, a map, a
    /// `serde_json::Value`. Compare runs by the keys you record at the end (`accuracy`, `loss`); record a series
    /// with [`RunContext::series`].
    ///
    /// # Errors
    ///
    /// When `value` cannot be represented as JSON (a map with non-string keys, a `Serialize` impl that fails), or
    /// the key is over 1 KiB, or the value is over 16 MiB as JSON or nested more than 64 levels. Nothing is
    /// recorded under the key then, and the same sentence is stored as an `error` log line of the run, so ignoring
    /// the error (`let _ =`) loses nothing silently; `?` fails the run with it.
    pub async fn result(&self, key: impl Into<String>, value: impl Serialize) -> Result<(), RecordError> {
        let key = key.into();
        let accepted = match serde_json::to_value(value) {
            Ok(value) => accept_result(key, value),
            Err(error) => Err(RecordError {
                message: format!(
                    "result {} refused: its value cannot be represented as JSON: {error}",
                    key_in_error(&key)
                ),
                excess: None,
            }),
        };
        self.record(accepted).await
    }

    /// Record one point of a numeric series, such as a loss per step: the compare page draws one line per run.
    ///
    /// Stored as the result `name/step` (`loss/12`), the convention every reader of results (charts, exports,
    /// plain SQL) understands, so a series needs no schema of its own. A non-finite value is stored as `null`. A
    /// key over 1 KiB is refused with an `error` log line, like [`RunContext::result`]'s.
    pub async fn series(&self, name: &str, step: u64, value: f64) {
        let _ = self.record(accept_result(format!("{name}/{step}"), Value::from(value))).await;
    }

    /// Send an accepted result to the writer, or the refusal's `error` line in its place.
    async fn record(&self, accepted: Result<NewResult, RecordError>) -> Result<(), RecordError> {
        match accepted {
            Ok(result) => {
                self.send(WriterMessage::Result { run_id: self.inner.run_id, result }).await;
                Ok(())
            }
            Err(refused) => {
                let log = NewLog {
                    ts: Utc::now(),
                    level: LogLevel::Error,
                    message: storable(refused.to_string()),
                    metadata: None,
                };
                self.send(WriterMessage::Log { run_id: self.inner.run_id, log }).await;
                Err(refused)
            }
        }
    }

    /// Report progress. Latest wins: it is broadcast to viewers, not stored per call, so call it as often as you
    /// like. A message over 4 KiB is cut there (ending with `…`).
    pub fn progress(&self, current: u64, total: Option<u64>, message: Option<&str>) {
        let progress = Progress { current, total, message: message.map(limits::cut_progress_message) };
        self.inner.hub.set_progress(self.inner.run_id, progress);
    }

    /// Whether a cancel was requested. Check it between steps and return early (with `Ok` or `Err`) when true;
    /// after the grace period a run that has not returned is aborted.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Completes when a cancel is requested; use in `tokio::select!` beside long awaits.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_characters_become_replacement_characters_everywhere() {
        assert_eq!(storable("a\0b".into()), "a\u{FFFD}b");
        assert_eq!(storable("clean".into()), "clean");
        let log = accept_log(Utc::now(), LogLevel::Info, "m\0".into(), Some(json!({"k\0": ["x\0", 1, {"n": "\0"}]})));
        assert_eq!(log.message, "m\u{FFFD}");
        assert_eq!(log.metadata, Some(json!({"k\u{FFFD}": ["x\u{FFFD}", 1, {"n": "\u{FFFD}"}]})));
        let result = accept_result("k\0".into(), json!(["\0"])).unwrap();
        assert_eq!((result.key.as_str(), result.value), ("k\u{FFFD}", json!(["\u{FFFD}"])));
    }

    #[test]
    fn a_log_line_over_a_limit_becomes_an_error_line_that_says_why() {
        let long = "x".repeat(limits::MAX_MESSAGE_BYTES + 1);
        let log = accept_log(Utc::now(), LogLevel::Debug, long, None);
        assert_eq!(log.level, LogLevel::Error);
        assert!(log.message.starts_with("log line refused: its message is 1048577 bytes, over the limit of 1048576 bytes (1 MiB); it began: xxx"), "{}", &log.message[..200]);
        assert!(log.message.len() < 1_000 && log.metadata.is_none());

        let deep = limits::nested(limits::MAX_DEPTH, json!(1));
        let log = accept_log(Utc::now(), LogLevel::Info, "deep".into(), Some(json!({ "a": deep })));
        assert_eq!(
            log.message,
            "log line refused: its metadata is nested 65 levels deep, over the limit of 64 levels; it began: deep"
        );
        let fits =
            accept_log(Utc::now(), LogLevel::Info, "ok".into(), Some(limits::nested(limits::MAX_DEPTH, json!(1))));
        assert_eq!((fits.level, fits.message.as_str()), (LogLevel::Info, "ok"));
    }
}
