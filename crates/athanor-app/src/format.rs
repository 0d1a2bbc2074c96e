//! Small text helpers shared by pages: times, durations, configuration rows.

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use athanor_core::text::relative_time;

/// `2026-11-26 07:09:30 UTC`, for `title` attributes.
pub fn utc_stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `48,213` — counts with thousands separators, as tables show them.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first 8 hex digits of an id (ids are random v4): enough to tell runs apart on a page; show the full id on
/// hover.
pub fn short_id(id: impl Into<uuid::Uuid>) -> String {
    let mut text = id.into().simple().to_string();
    text.truncate(8);
    text
}

/// What a runs table shows of a run's timing and error: its duration (live while running) and the first line
/// of its error, each empty when there is none.
pub fn duration_and_error(run: &athanor_core::Run, now: DateTime<Utc>) -> (String, String) {
    let duration = run.duration(now).map(clock_duration).unwrap_or_default();
    let error = run.error.as_deref().and_then(|e| e.lines().next()).unwrap_or_default().to_owned();
    (duration, error)
}

/// `0:42`, `12:05`, `1:02:03`.
pub fn clock_duration(duration: chrono::Duration) -> String {
    let total = duration.num_seconds().max(0);
    let (hours, minutes, seconds) = (total / 3_600, (total % 3_600) / 60, total % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

/// One row of a configuration table: how deep it is nested, its label, and its value as text (empty for a
/// group or list heading).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRow {
    /// Nesting depth, 0 for top-level keys.
    pub depth: usize,
    /// The key, or `[i]` for a list item.
    pub label: String,
    /// The value as compact JSON, or empty for a heading.
    pub value: String,
}

/// Flatten a configuration into indented rows, keeping object key order.
pub fn config_rows(config: &Value) -> Vec<ConfigRow> {
    fn walk(value: &Value, depth: usize, label: String, rows: &mut Vec<ConfigRow>) {
        match value {
            Value::Object(map) => {
                // The root object has no heading of its own; its keys are the top-level rows.
                let is_root = depth == 0 && label.is_empty();
                let child_depth = if is_root { 0 } else { depth + 1 };
                if !is_root {
                    rows.push(ConfigRow { depth, label, value: String::new() });
                }
                for (key, child) in map {
                    walk(child, child_depth, key.clone(), rows);
                }
            }
            Value::Array(items) if items.iter().any(|item| item.is_object() || item.is_array()) => {
                rows.push(ConfigRow { depth, label, value: String::new() });
                for (index, item) in items.iter().enumerate() {
                    walk(item, depth + 1, format!("[{index}]"), rows);
                }
            }
            Value::String(text) => rows.push(ConfigRow { depth, label, value: text.clone() }),
            other => rows.push(ConfigRow { depth, label, value: other.to_string() }),
        }
    }
    let mut rows = Vec::new();
    walk(config, 0, String::new(), &mut rows);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn relative_times_are_coarse() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00Z").unwrap().with_timezone(&Utc);
        let ago = |s| relative_time(now - chrono::Duration::seconds(s), now);
        assert_eq!(ago(1), "just now");
        assert_eq!(ago(30), "30 s ago");
        assert_eq!(ago(150), "2 min ago");
        assert_eq!(ago(7_300), "2 h ago");
        assert_eq!(ago(200_000), "2 d ago");
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(48_213), "48,213");
        assert_eq!(thousands(-1_000_000), "-1,000,000");
    }

    #[test]
    fn durations_read_like_a_clock() {
        assert_eq!(clock_duration(chrono::Duration::seconds(42)), "0:42");
        assert_eq!(clock_duration(chrono::Duration::seconds(725)), "12:05");
        assert_eq!(clock_duration(chrono::Duration::seconds(3_723)), "1:02:03");
    }

    #[test]
    fn nested_configuration_is_indented() {
        let rows = config_rows(&json!({"api": {"timeout": 30}, "epochs": 5, "pairs": [{"a": "x"}]}));
        let shown: Vec<_> = rows.iter().map(|r| (r.depth, r.label.as_str(), r.value.as_str())).collect();
        assert_eq!(
            shown,
            vec![
                (0, "api", ""),
                (1, "timeout", "30"),
                (0, "epochs", "5"),
                (0, "pairs", ""),
                (1, "[0]", ""),
                (2, "a", "x")
            ]
        );
    }
}
