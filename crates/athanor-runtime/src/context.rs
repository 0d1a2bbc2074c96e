//! [`RunContext`]: everything an experiment's `run` can do.

use crate::hub::Hub;
use crate::writer::{WriterMessage, MAX_LINES_PER_MESSAGE};
use athanor_core::RunId;
use athanor_core::{LogLevel, NewLog, NewResult, Progress};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::mpsc;
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

/// [`storable`] for every string and key inside a JSON value.
fn storable_json(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(storable(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(storable_json).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (storable(k), storable_json(v))).collect()),
        other => other,
    }
}

/// Whether any string in `value` holds a NUL (cheap check, so clean values are not rebuilt).
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn clean(value: Value) -> Value {
    if has_nul(&value) {
        storable_json(value)
    } else {
        value
    }
}

struct Inner {
    run_id: RunId,
    config: Value,
    writer: mpsc::Sender<WriterMessage>,
    hub: Arc<Hub>,
    cancel: CancellationToken,
}

/// The handle a run receives: its configuration, logging, results, progress and cancellation.
///
/// Cheap to clone; clones share the run. Logging and results are `async` because they apply back-pressure: while
/// the database keeps up they complete at once (a channel send, well under a microsecond), and under sustained
/// overload they wait for room rather than drop a line or grow memory without bound.
#[derive(Clone)]
pub struct RunContext {
    inner: Arc<Inner>,
}

impl RunContext {
    pub(crate) fn new(
        run_id: RunId,
        config: Value,
        writer: mpsc::Sender<WriterMessage>,
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
        // The writer outlives every run (the runtime owns it), so a closed channel means the process is shutting
        // down; the record cannot be kept then, and the run is about to be interrupted anyway.
        if self.inner.writer.send(message).await.is_err() {
            tracing::warn!(run_id = %self.inner.run_id, "record lost: the runtime is shutting down");
        }
    }

    /// Append a log line, with optional structured metadata.
    pub async fn log(&self, level: LogLevel, message: impl Into<String>, metadata: Option<Value>) {
        let log = NewLog { ts: Utc::now(), level, message: storable(message.into()), metadata: metadata.map(clean) };
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

    /// Append many log lines at once: one timestamp, fewer channel operations. Lines keep their order.
    pub async fn log_batch<M: Into<String>>(&self, lines: impl IntoIterator<Item = (LogLevel, M, Option<Value>)>) {
        let ts = Utc::now();
        let mut chunk = Vec::with_capacity(MAX_LINES_PER_MESSAGE);
        for (level, message, metadata) in lines {
            chunk.push(NewLog { ts, level, message: storable(message.into()), metadata: metadata.map(clean) });
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
    /// When `value` cannot be represented as JSON (a map with non-string keys, a `Serialize` impl that fails).
    /// Nothing is recorded then.
    pub async fn result(&self, key: impl Into<String>, value: impl Serialize) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(value)?;
        self.record(key.into(), value).await;
        Ok(())
    }

    /// Record one point of a numeric series, such as a loss per step: the compare page draws one line per run.
    ///
    /// Stored as the result `name/step` (`loss/12`), the convention every reader of results (charts, exports,
    /// plain SQL) understands, so a series needs no schema of its own. A non-finite value is stored as `null`.
    pub async fn series(&self, name: &str, step: u64, value: f64) {
        self.record(format!("{name}/{step}"), Value::from(value)).await;
    }

    async fn record(&self, key: String, value: Value) {
        let result = NewResult { ts: Utc::now(), key: storable(key), value: clean(value) };
        self.send(WriterMessage::Result { run_id: self.inner.run_id, result }).await;
    }

    /// Report progress. Latest wins: it is broadcast to viewers, not stored per call, so call it as often as you
    /// like.
    pub fn progress(&self, current: u64, total: Option<u64>, message: Option<&str>) {
        let progress = Progress { current, total, message: message.map(str::to_owned) };
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
        let dirty = json!({"k\0": ["x\0", 1, {"n": "\0"}]});
        assert!(has_nul(&dirty));
        let cleaned = clean(dirty);
        assert!(!has_nul(&cleaned));
        assert_eq!(cleaned, json!({"k\u{FFFD}": ["x\u{FFFD}", 1, {"n": "\u{FFFD}"}]}));
    }
}
