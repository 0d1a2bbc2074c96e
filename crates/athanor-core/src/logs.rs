//! Reading a run's log lines selectively: which lines a reader wants ([`LogFilter`]) and how many a run has at
//! each level ([`LevelCounts`]).
//!
//! The same filter is applied in two places that must agree: the store answers it over everything a run has
//! logged, and a live viewer applies [`LogFilter::matches`] to the lines that stream in after that answer.

use crate::model::{LogLevel, LogRecord};
use serde::{Deserialize, Serialize};

/// The longest text a filter searches for, in bytes. Longer is refused: no log search needs a paragraph, and the
/// bound keeps the database's pattern matching cheap.
pub const MAX_FILTER_TEXT: usize = 1024;

/// Which log lines to read: lines at some levels (all when `levels` is empty) that contain a text (any when
/// `text` is `None`).
///
/// Text matching is a substring match that ignores letter case (ASCII letters on SQLite, whose `LIKE` folds only
/// those; every letter on PostgreSQL and in the browser). Metadata is not searched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    /// Only these levels; empty means every level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LogLevel>,
    /// Only lines whose message contains this, ignoring case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl LogFilter {
    /// Every line.
    pub fn all() -> Self {
        LogFilter::default()
    }

    /// Only lines at `levels` (every level when empty).
    pub fn levels(levels: &[LogLevel]) -> Self {
        LogFilter { levels: levels.to_vec(), text: None }
    }

    /// The same filter, also requiring `text` (blank text requires nothing).
    #[must_use]
    pub fn containing(mut self, text: &str) -> Self {
        self.text = Some(text.to_owned()).filter(|text| !text.trim().is_empty());
        self
    }

    /// Whether the filter lets every line through.
    pub fn is_all(&self) -> bool {
        self.text.is_none() && (self.levels.is_empty() || LogLevel::ALL.iter().all(|l| self.levels.contains(l)))
    }

    /// Whether `level` passes the level part of the filter.
    pub fn admits_level(&self, level: LogLevel) -> bool {
        self.levels.is_empty() || self.levels.contains(&level)
    }

    /// Whether `log` passes the filter: what the store's answer holds, applied to a line that arrived live.
    pub fn matches(&self, log: &LogRecord) -> bool {
        self.admits_level(log.level)
            && self.text.as_deref().is_none_or(|text| log.message.to_lowercase().contains(&text.to_lowercase()))
    }

    /// Refuse a filter the store will not run, naming the problem: a text longer than [`MAX_FILTER_TEXT`] or
    /// containing a NUL character.
    pub fn check(&self) -> Result<(), String> {
        match self.text.as_deref() {
            Some(text) if text.len() > MAX_FILTER_TEXT => {
                Err(format!("the search text is {} bytes; at most {MAX_FILTER_TEXT} are searched", text.len()))
            }
            Some(text) if text.contains('\0') => Err("the search text contains a NUL character".to_owned()),
            _ => Ok(()),
        }
    }
}

/// How many log lines a run has at each level. Kept by the store as records are committed, so reading it costs
/// one row however long the run is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LevelCounts {
    /// Lines at `debug`.
    pub debug: i64,
    /// Lines at `info`.
    pub info: i64,
    /// Lines at `warn`.
    pub warn: i64,
    /// Lines at `error`.
    pub error: i64,
}

impl LevelCounts {
    /// The count at `level`.
    pub fn get(&self, level: LogLevel) -> i64 {
        match level {
            LogLevel::Debug => self.debug,
            LogLevel::Info => self.info,
            LogLevel::Warn => self.warn,
            LogLevel::Error => self.error,
        }
    }

    /// Add `lines` at `level`.
    pub fn add(&mut self, level: LogLevel, lines: i64) {
        match level {
            LogLevel::Debug => self.debug += lines,
            LogLevel::Info => self.info += lines,
            LogLevel::Warn => self.warn += lines,
            LogLevel::Error => self.error += lines,
        }
    }

    /// Count `logs` in.
    pub fn add_logs<'a>(&mut self, logs: impl IntoIterator<Item = &'a LogRecord>) {
        for log in logs {
            self.add(log.level, 1);
        }
    }

    /// Lines at any level.
    pub fn total(&self) -> i64 {
        self.debug + self.info + self.warn + self.error
    }

    /// Lines at the levels `filter` admits (its text part is not counted here).
    pub fn admitted_by(&self, filter: &LogFilter) -> i64 {
        LogLevel::ALL.into_iter().filter(|level| filter.admits_level(*level)).map(|level| self.get(level)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn line(level: LogLevel, message: &str) -> LogRecord {
        LogRecord { seq: 1, ts: Utc::now(), level, message: message.to_owned(), metadata: None }
    }

    #[test]
    fn a_filter_matches_levels_and_text_ignoring_case() {
        let errors = LogFilter::levels(&[LogLevel::Error]);
        assert!(errors.matches(&line(LogLevel::Error, "disk full")));
        assert!(!errors.matches(&line(LogLevel::Warn, "disk full")));
        let disk = LogFilter::all().containing("DISK");
        assert!(disk.matches(&line(LogLevel::Info, "Disk full")));
        assert!(!disk.matches(&line(LogLevel::Info, "memory full")));
        let both = errors.clone().containing("full");
        assert!(both.matches(&line(LogLevel::Error, "disk full")) && !both.matches(&line(LogLevel::Info, "disk full")));
    }

    #[test]
    fn blank_text_and_every_level_are_no_filter_at_all() {
        assert!(LogFilter::all().is_all());
        assert!(LogFilter::all().containing("  ").is_all());
        assert!(LogFilter::levels(&LogLevel::ALL).is_all());
        assert!(!LogFilter::levels(&[LogLevel::Warn]).is_all());
        assert!(!LogFilter::all().containing("x").is_all());
    }

    #[test]
    fn a_search_text_too_long_or_with_nul_is_refused_by_name() {
        assert!(LogFilter::all().containing(&"x".repeat(MAX_FILTER_TEXT)).check().is_ok());
        let long = LogFilter::all().containing(&"x".repeat(MAX_FILTER_TEXT + 1)).check().unwrap_err();
        assert!(long.contains("search text") && long.contains("1025"), "{long}");
        assert!(LogFilter::all().containing("a\0b").check().unwrap_err().contains("NUL"));
    }

    #[test]
    fn counts_add_up_by_level_and_by_filter() {
        let mut counts = LevelCounts::default();
        counts.add_logs(&[line(LogLevel::Error, "a"), line(LogLevel::Error, "b"), line(LogLevel::Info, "c")]);
        counts.add(LogLevel::Debug, 10);
        assert_eq!((counts.error, counts.info, counts.debug, counts.total()), (2, 1, 10, 13));
        assert_eq!(counts.admitted_by(&LogFilter::levels(&[LogLevel::Error, LogLevel::Debug])), 12);
        assert_eq!(counts.admitted_by(&LogFilter::all()), 13);
    }
}
