//! Colour, decided once: only for a terminal, and never when `NO_COLOR` is set (<https://no-color.org>).
//!
//! Rendering code asks a [`Palette`] to paint text; a palette that is off returns the text untouched, so the
//! same rendering code produces clean text for files, pipes and tests.

use anstyle::{AnsiColor, Effects, Style};
use athanor_core::{LogLevel, RunStatus};
use std::fmt::Display;
use std::io::IsTerminal;

/// Paints text with ANSI styles, or leaves it plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    enabled: bool,
}

impl Palette {
    /// Colours for what goes to standard output: on when it is a terminal and `NO_COLOR` is unset or empty.
    pub fn for_stdout() -> Palette {
        Palette { enabled: wants_color(std::io::stdout().is_terminal()) }
    }

    /// The same decision for standard error, where error messages go.
    pub fn for_stderr() -> Palette {
        Palette { enabled: wants_color(std::io::stderr().is_terminal()) }
    }

    /// A palette that never colours (tests, `--json`).
    pub fn plain() -> Palette {
        Palette { enabled: false }
    }

    /// `text` in `style`, or `text` itself when colour is off.
    pub fn paint(self, style: Style, text: impl Display) -> String {
        if self.enabled && style != Style::new() {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// Dimmed: timestamps, debug lines, secondary detail.
    pub fn dim(self, text: impl Display) -> String {
        self.paint(Style::new().effects(Effects::DIMMED), text)
    }

    /// Bold: headings and table headers.
    pub fn bold(self, text: impl Display) -> String {
        self.paint(Style::new().effects(Effects::BOLD), text)
    }

    /// A log level's name, coloured by severity: debug dim, info plain, warn yellow, error red.
    pub fn level(self, level: LogLevel) -> String {
        // Padded before painting, so escape codes do not disturb the alignment.
        self.paint(level_style(level), format!("{:<5}", level.as_str()))
    }

    /// A status name, coloured by outcome.
    pub fn status(self, status: RunStatus) -> String {
        self.paint(status_style(status), status)
    }
}

/// Whether to colour a stream that is (or is not) a terminal, given the `NO_COLOR` convention.
fn wants_color(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// The style of a log line's level (and, for debug, of the whole line).
pub fn level_style(level: LogLevel) -> Style {
    match level {
        LogLevel::Debug => Style::new().effects(Effects::DIMMED),
        LogLevel::Info => Style::new(),
        LogLevel::Warn => AnsiColor::Yellow.on_default(),
        LogLevel::Error => AnsiColor::Red.on_default(),
    }
}

/// The style of a run status: green done, red failed, yellow cancelled, cyan while active.
pub fn status_style(status: RunStatus) -> Style {
    match status {
        RunStatus::Pending => Style::new().effects(Effects::DIMMED),
        RunStatus::Running => AnsiColor::Cyan.on_default(),
        RunStatus::Completed => AnsiColor::Green.on_default(),
        RunStatus::Failed => AnsiColor::Red.on_default(),
        RunStatus::Cancelled => AnsiColor::Yellow.on_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_palette_leaves_text_untouched() {
        let plain = Palette::plain();
        assert_eq!(plain.level(LogLevel::Warn), "warn ");
        assert_eq!(plain.status(RunStatus::Failed), "failed");
        assert_eq!(plain.bold("x"), "x");
    }

    #[test]
    fn an_enabled_palette_wraps_text_in_escape_codes_and_resets() {
        let colored = Palette { enabled: true };
        let error = colored.level(LogLevel::Error);
        assert!(error.starts_with("\u{1b}[") && error.contains("error") && error.ends_with("\u{1b}[0m"), "{error:?}");
        // Info is the default style: no escape codes at all.
        assert_eq!(colored.level(LogLevel::Info), "info ");
    }
}
