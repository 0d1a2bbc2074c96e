//! The messages a command writes on file descriptor 3: protocol version 1 (`docs/protocol.md`).
//!
//! One JSON object per line, told apart by its `type`:
//!
//! ```text
//! {"type":"log","level":"info","message":"epoch 3 done","metadata":{"loss":0.12}}
//! {"type":"result","key":"accuracy","value":0.91}
//! {"type":"progress","current":3,"total":10,"message":"training"}
//! {"type":"fail","error":"the model diverged"}
//! ```
//!
//! A log's `level` defaults to `info`; `metadata` (an object, or `null`), `total` and `message` (of progress) may be
//! left out; a result's `key` must not be empty. Fields this version does not know are ignored, so a newer client can
//! add some without breaking an older server. Empty and whitespace-only lines are skipped. A line that cannot be
//! understood is never fatal: [`decode`] describes what is wrong with it, and the caller logs that as a warning and
//! goes on with the next line. A message that breaks one of [`crate::limits`] (a result key over 1 KiB, a value or
//! metadata nested more than 64 levels, …) is such a line too: it is checked here, where it enters.

use super::lines::{Line, MAX_LINE_BYTES};
use crate::limits::preview;
use crate::limits::{self, Excess};
use athanor_core::LogLevel;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The protocol version this runtime speaks, passed to the process as `ATHANOR_PROTOCOL`.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// The message types this version knows, in the order the documentation lists them.
const KNOWN_TYPES: [&str; 4] = ["log", "result", "progress", "fail"];

/// One understood protocol message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum Message {
    /// A log line for the run.
    Log {
        /// Severity; `info` when left out.
        #[serde(default = "default_level")]
        level: LogLevel,
        /// The text.
        message: String,
        /// Structured detail shown beside the line: always an object (`null` counts as left out).
        #[serde(default, deserialize_with = "object_or_null")]
        metadata: Option<Value>,
    },
    /// A named result (any JSON value).
    Result {
        /// Its name, e.g. `accuracy`; never empty.
        #[serde(deserialize_with = "non_empty")]
        key: String,
        /// Its value; `null` is a value, a missing `value` is an error.
        value: Value,
    },
    /// How far the run has got; latest wins.
    Progress {
        /// Steps done.
        current: u64,
        /// Steps in all, when known.
        #[serde(default)]
        total: Option<u64>,
        /// What is happening now.
        #[serde(default)]
        message: Option<String>,
    },
    /// The run failed, whatever the exit status turns out to be; the first `fail` a run sends is its error.
    Fail {
        /// Why, for the reader.
        error: String,
    },
}

fn default_level() -> LogLevel {
    LogLevel::Info
}

/// Metadata is shown as a table of fields beside its log line, and stored as such: a number or a list there would
/// break that for every reader, so it is refused at the door rather than stored as something else.
fn object_or_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        object @ Value::Object(_) => Ok(Some(object)),
        _ => Err(D::Error::custom("metadata must be an object")),
    }
}

/// A result without a name could not be told apart from any other, nor compared across runs.
fn non_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let key = String::deserialize(deserializer)?;
    if key.is_empty() {
        return Err(D::Error::custom("a result's key must not be empty"));
    }
    Ok(key)
}

/// Read one line of the protocol stream: the message, nothing for a blank line, or the text of a warning that says
/// why the line was ignored (quoting its start).
pub(crate) fn decode(line: &Line<'_>) -> Result<Option<Message>, String> {
    // JSON's own whitespace (a `\r` left by CRLF included): a blank line carries nothing, so it is no mistake to warn
    // about, even the last one without its line feed.
    if line.dropped == 0 && line.bytes.iter().all(|byte| matches!(byte, b' ' | b'\t' | b'\r' | b'\n')) {
        return Ok(None);
    }
    if line.dropped > 0 {
        return Err(format!(
            "protocol line ignored: it is {} bytes long, over the limit of {} bytes (1 MiB); it began: {}",
            line.written_len(),
            MAX_LINE_BYTES,
            preview(line.bytes)
        ));
    }
    if !line.terminated {
        // docs/protocol.md: every message ends with a line feed, the last one included. A line without one is
        // what a crash mid-write leaves behind, so it is never applied, even when what arrived happens to parse.
        return Err(format!(
            "protocol line ignored: the stream ended before its line feed (did the process exit or crash while \
             writing?); it began: {}",
            preview(line.bytes)
        ));
    }
    parse(line.bytes)
        .map(Some)
        .map_err(|problem| format!("protocol line ignored: {problem}; the line: {}", preview(line.bytes)))
}

/// Parse a complete line, or say in a few words what is wrong with it.
fn parse(bytes: &[u8]) -> Result<Message, String> {
    // The typed parse is the fast path for well-formed lines; only a failure pays for the closer look that finds
    // a message a person can act on.
    let message = serde_json::from_slice::<Message>(bytes).map_err(|typed_error| diagnose(bytes, &typed_error))?;
    within_limits(&message)?;
    Ok(message)
}

/// The limits every run's values obey ([`crate::limits`]), checked on a parsed message.
fn within_limits(message: &Message) -> Result<(), String> {
    let problem = |kind: &str, subject: &str, excess: Excess, json: bool| {
        let size = if json && matches!(excess, Excess::Bytes { .. }) { " as JSON" } else { "" };
        format!("invalid {kind:?} message: {subject}{size} {excess}")
    };
    match message {
        Message::Log { message, metadata, .. } => {
            limits::check_text(message, limits::MAX_MESSAGE_BYTES)
                .map_err(|excess| problem("log", "its message", excess, false))?;
            if let Some(metadata) = metadata {
                limits::check_value(metadata, limits::MAX_METADATA_BYTES)
                    .map_err(|excess| problem("log", "its metadata", excess, true))?;
            }
        }
        Message::Result { key, value } => {
            limits::check_text(key, limits::MAX_KEY_BYTES)
                .map_err(|excess| problem("result", "its key", excess, false))?;
            limits::check_value(value, limits::MAX_VALUE_BYTES)
                .map_err(|excess| problem("result", "its value", excess, true))?;
        }
        // A progress message is cut to its limit by `RunContext::progress`; a `fail` text is the run's error, within
        // the line cap.
        Message::Progress { .. } | Message::Fail { .. } => {}
    }
    Ok(())
}

fn diagnose(bytes: &[u8], typed_error: &serde_json::Error) -> String {
    let value = match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => value,
        // serde_json stops at 128 levels (so a line in which something is nested that deep is valid JSON that it
        // cannot read), far beyond the limit for a value anyway.
        Err(error) if error.to_string().starts_with("recursion limit exceeded") => {
            return format!(
                "it is nested more than 127 levels deep, over the limit of {} levels for metadata and result values",
                limits::MAX_DEPTH
            );
        }
        Err(error) => return format!("it is not valid JSON ({})", without_position(&error)),
    };
    let Value::Object(object) = value else {
        return "it is JSON but not an object (each line must be one JSON object with a \"type\")".to_owned();
    };
    match object.get("type") {
        None => "it has no \"type\" field".to_owned(),
        Some(Value::String(kind)) if !KNOWN_TYPES.contains(&kind.as_str()) => {
            format!("unknown message type {kind:?} (this server knows {})", KNOWN_TYPES.join(", "))
        }
        Some(Value::String(kind)) => format!("invalid {kind:?} message: {}", without_position(typed_error)),
        Some(_) => "its \"type\" is not a string".to_owned(),
    }
}

/// serde_json ends its messages with "at line 1 column N", which says nothing useful about a one-line message.
fn without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    text.strip_suffix(&position).map(str::to_owned).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(text: &str) -> Line<'_> {
        Line { bytes: text.as_bytes(), dropped: 0, terminated: true }
    }

    /// What a non-blank line decodes to.
    fn message(text: &str) -> Result<Message, String> {
        decode(&line(text)).map(|message| message.expect("a message, not a blank line"))
    }

    fn problem(text: &str) -> String {
        decode(&line(text)).expect_err("the line should be rejected")
    }

    #[test]
    fn every_message_type_parses_with_its_optional_fields_defaulted() {
        assert_eq!(
            message(r#"{"type":"log","message":"hello"}"#),
            Ok(Message::Log { level: LogLevel::Info, message: "hello".into(), metadata: None })
        );
        assert_eq!(
            message(r#"{"type":"log","level":"error","message":"bad","metadata":{"step":3}}"#),
            Ok(Message::Log { level: LogLevel::Error, message: "bad".into(), metadata: Some(json!({"step": 3})) })
        );
        assert_eq!(
            message(r#"{"type":"result","key":"curve","value":[0.5,0.7]}"#),
            Ok(Message::Result { key: "curve".into(), value: json!([0.5, 0.7]) })
        );
        assert_eq!(
            message(r#"{"type":"result","key":"nothing","value":null}"#),
            Ok(Message::Result { key: "nothing".into(), value: Value::Null })
        );
        assert_eq!(
            message(r#"{"type":"progress","current":3}"#),
            Ok(Message::Progress { current: 3, total: None, message: None })
        );
        assert_eq!(
            message(r#"{"type":"progress","current":3,"total":10,"message":"training"}"#),
            Ok(Message::Progress { current: 3, total: Some(10), message: Some("training".into()) })
        );
        assert_eq!(message(r#"{"type":"fail","error":"diverged"}"#), Ok(Message::Fail { error: "diverged".into() }));
    }

    #[test]
    fn unknown_fields_are_ignored_for_forward_compatibility() {
        assert_eq!(
            message(r#"{"type":"fail","error":"x","code":7,"since":"v2"}"#),
            Ok(Message::Fail { error: "x".into() })
        );
    }

    #[test]
    fn each_kind_of_bad_line_is_explained() {
        assert!(problem("epoch 3 done").contains("not valid JSON"), "{}", problem("epoch 3 done"));
        assert!(problem("[1, 2]").contains("not an object"));
        assert!(problem(r#"{"message":"hi"}"#).contains("no \"type\" field"));
        assert!(problem(r#"{"type":7}"#).contains("\"type\" is not a string"));
        let unknown = problem(r#"{"type":"metric","key":"a"}"#);
        assert!(unknown.contains("unknown message type \"metric\""), "{unknown}");
        let missing = problem(r#"{"type":"result","key":"accuracy"}"#);
        assert!(missing.contains("invalid \"result\" message: missing field `value`"), "{missing}");
        assert!(!missing.contains("at line 1"), "positions are noise on a one-line message: {missing}");
        let bad_level = problem(r#"{"type":"log","level":"fatal","message":"x"}"#);
        assert!(bad_level.contains("fatal"), "{bad_level}");
        assert!(problem("epoch 3 done").ends_with("the line: epoch 3 done"));
    }

    #[test]
    fn blank_lines_are_skipped_without_a_warning() {
        for blank in ["", " ", "\t \r", "  \r\n"] {
            assert_eq!(decode(&line(blank)), Ok(None), "{blank:?}");
            let unterminated = Line { bytes: blank.as_bytes(), dropped: 0, terminated: false };
            assert_eq!(decode(&unterminated), Ok(None), "{blank:?} at the end of the stream");
        }
        // JSON whitespace only: a form feed is not, so a line of them is garbage to report.
        assert!(problem("\u{c}").contains("not valid JSON"));
    }

    #[test]
    fn metadata_must_be_an_object_and_null_counts_as_left_out() {
        assert_eq!(
            message(r#"{"type":"log","message":"m","metadata":null}"#),
            Ok(Message::Log { level: LogLevel::Info, message: "m".into(), metadata: None })
        );
        for metadata in ["[1,2]", "3", "\"text\"", "true"] {
            let warning = problem(&format!(r#"{{"type":"log","message":"m","metadata":{metadata}}}"#));
            assert!(warning.contains("invalid \"log\" message: metadata must be an object;"), "{warning}");
        }
    }

    #[test]
    fn a_result_needs_a_key() {
        let warning = problem(r#"{"type":"result","key":"","value":1}"#);
        assert!(warning.contains("invalid \"result\" message: a result's key must not be empty;"), "{warning}");
        assert_eq!(
            message(r#"{"type":"result","key":" ","value":1}"#),
            Ok(Message::Result { key: " ".into(), value: json!(1) })
        );
    }

    #[test]
    fn an_oversized_line_is_rejected_with_its_size_and_start() {
        let start = r#"{"type":"log","message":"aaaa"#;
        let oversized = Line { bytes: start.as_bytes(), dropped: 5_000_000, terminated: true };
        let warning = decode(&oversized).unwrap_err();
        assert!(warning.contains(&format!("{} bytes long", start.len() + 5_000_000)), "{warning}");
        assert!(warning.ends_with(start), "{warning}");
    }

    #[test]
    fn a_line_cut_off_by_the_end_of_the_stream_is_reported_as_such() {
        let cut = Line { bytes: br#"{"type":"result","key":"acc"#, dropped: 0, terminated: false };
        let warning = decode(&cut).unwrap_err();
        assert!(warning.contains("the stream ended before its line feed"), "{warning}");
        assert!(warning.ends_with(r#"it began: {"type":"result","key":"acc"#), "{warning}");
        // Every message ends with a line feed, the last one included.
        let complete_but_unterminated =
            Line { bytes: br#"{"type":"fail","error":"x"}"#, dropped: 0, terminated: false };
        assert!(decode(&complete_but_unterminated).unwrap_err().contains("the stream ended before its line feed"));
    }

    #[test]
    fn messages_over_a_limit_are_explained_with_the_limit_and_the_size_found() {
        let key = "k".repeat(limits::MAX_KEY_BYTES + 1);
        let warning = problem(&format!(r#"{{"type":"result","key":"{key}","value":1}}"#));
        assert!(
            warning
                .contains("invalid \"result\" message: its key is 1025 bytes, over the limit of 1024 bytes (1 KiB);"),
            "{warning}"
        );
        let fits = "k".repeat(limits::MAX_KEY_BYTES);
        assert!(message(&format!(r#"{{"type":"result","key":"{fits}","value":1}}"#)).is_ok());

        let deep = |depth: usize| serde_json::to_string(&limits::nested(depth, json!(1))).unwrap();
        let warning = problem(&format!(r#"{{"type":"result","key":"deep","value":{}}}"#, deep(limits::MAX_DEPTH + 1)));
        assert!(
            warning.contains(
                "invalid \"result\" message: its value is nested 65 levels deep, over the limit of 64 levels;"
            ),
            "{warning}"
        );
        assert!(message(&format!(r#"{{"type":"result","key":"deep","value":{}}}"#, deep(limits::MAX_DEPTH))).is_ok());
        let warning =
            problem(&format!(r#"{{"type":"log","message":"m","metadata":{{"a":{}}}}}"#, deep(limits::MAX_DEPTH)));
        assert!(warning.contains("invalid \"log\" message: its metadata is nested 65 levels deep"), "{warning}");
        // Deeper than serde_json reads at all.
        let warning = problem(&format!(r#"{{"type":"result","key":"deep","value":{}}}"#, deep(200)));
        assert!(warning.contains("it is nested more than 127 levels deep, over the limit of 64 levels"), "{warning}");
    }
}
