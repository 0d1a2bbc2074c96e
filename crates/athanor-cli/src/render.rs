//! What a person sees: aligned tables and detail views, built as strings from the wire types.
//!
//! Every function here is pure (data and a [`Palette`] in, text out, `now` passed in for relative times), so the
//! commands only fetch and print, and the tests check the text without a server or a terminal. Times are shown
//! in the local time zone; the JSON (`--json`) keeps the server's UTC timestamps.

use crate::style::{status_style, Palette};
use anstyle::{AnsiColor, Style};
use athanor_core::api::InstanceDetails;
use athanor_core::compare::{best_and_worst, lower_is_better, Comparison, Row};
use athanor_core::schema::{Field, FieldKind};
use athanor_core::{ExperimentDefinition, InstanceSummary, LogRecord, ResultRecord, Run, RunListing, RunStatus};
use chrono::{DateTime, Local, Utc};
use serde_json::Value;
use std::fmt::Write;

/// One table cell: its text and how to paint it.
#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    style: Style,
}

impl Cell {
    /// Unstyled text. Newlines and tabs become spaces: one row is one line.
    pub fn new(text: impl Into<String>) -> Cell {
        let text: String = text.into();
        let text = if text.contains(['\n', '\r', '\t']) { text.replace(['\n', '\r', '\t'], " ") } else { text };
        Cell { text, style: Style::new() }
    }

    /// Text in a style.
    pub fn styled(text: impl Into<String>, style: Style) -> Cell {
        Cell { style, ..Cell::new(text) }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::new(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::new(text)
    }
}

/// Columns aligned on the widest cell, two spaces apart, the header in bold.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these column headers (an empty header row is not printed).
    pub fn new(headers: &[&str]) -> Table {
        Table { headers: headers.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new() }
    }

    /// Add a row; missing cells are empty.
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The table as lines, each ending in `\n`. Padding is computed on the plain text and added outside the
    /// escape codes, so colours never disturb alignment; the last column is not padded (no trailing blanks).
    pub fn render(&self, palette: Palette) -> String {
        let columns = self.rows.iter().map(Vec::len).chain([self.headers.len()]).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        let header_cells = self.headers.iter().map(|h| h.chars().count());
        for (i, width) in header_cells.enumerate() {
            widths[i] = widths[i].max(width);
        }
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.text.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: Vec<(String, usize)>| {
            let last = cells.iter().rposition(|(_, len)| *len > 0).map_or(0, |i| i + 1);
            let mut text = String::new();
            for (i, (painted, len)) in cells.into_iter().take(last).enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                text.push_str(&painted);
                if i + 1 < last {
                    text.push_str(&" ".repeat(widths[i] - len));
                }
            }
            out.push_str(&text);
            out.push('\n');
        };
        if self.headers.iter().any(|h| !h.is_empty()) {
            line(self.headers.iter().map(|h| (palette.bold(h), h.chars().count())).collect());
        }
        for row in &self.rows {
            line(row.iter().map(|cell| (palette.paint(cell.style, &cell.text), cell.text.chars().count())).collect());
        }
        out
    }
}

/// `2026-11-26 08:09:30` in local time.
pub fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `08:09:30.123` in local time: the stamp of a log line.
pub fn clock_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%H:%M:%S%.3f").to_string()
}

pub use athanor_core::text::relative_time;

/// `850ms`, `12.3s`, `4m 05s`, `2h 03m`.
pub fn duration(duration: chrono::Duration) -> String {
    let millis = duration.num_milliseconds().max(0);
    let seconds = millis / 1_000;
    match seconds {
        0 => format!("{millis}ms"),
        1..=59 => format!("{:.1}s", millis as f64 / 1_000.0),
        60..=3_599 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3_600, (seconds % 3_600) / 60),
    }
}

/// A JSON value on one line (compact JSON: a string keeps its quotes, so `"3"` and `3` stay distinct).
pub fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Pretty-print JSON text as it came, keeping the server's key order (a `serde_json::Value` would sort the keys,
/// putting `completed_at` before `id`). Two-space indents like `serde_json::to_string_pretty`; empty objects and
/// lists stay `{}` and `[]`. `raw` must be valid JSON (it was parsed before), so this only re-spaces it: string
/// contents, escapes included, are copied untouched.
pub fn pretty_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    let mut depth = 0_usize;
    let mut chars = raw.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    out.push(c);
                    match c {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `text`, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The first line of a run's error, or nothing.
fn first_line(text: Option<&str>) -> &str {
    text.and_then(|text| text.lines().next()).unwrap_or("")
}

/// `athanor experiments`: name, version, description.
pub fn experiments(definitions: &[ExperimentDefinition], palette: Palette) -> String {
    if definitions.is_empty() {
        return "No experiments. Declare some in athanor.toml (see `athanor serve --help`).\n".to_owned();
    }
    let mut table = Table::new(&["NAME", "VERSION", "DESCRIPTION"]);
    for definition in definitions {
        table.row(vec![
            definition.name.as_str().into(),
            definition.version.as_str().into(),
            truncate(first_line(Some(&definition.description)), 100).into(),
        ]);
    }
    table.render(palette)
}

/// `athanor experiments NAME`: the definition and its fields, nested fields indented under their group or list.
pub fn experiment(definition: &ExperimentDefinition, palette: Palette) -> String {
    let mut out = format!("{} {}\n", palette.bold(definition.name.as_str()), palette.dim(&definition.version));
    if !definition.description.is_empty() {
        out.push_str(&definition.description);
        out.push('\n');
    }
    out.push('\n');
    if definition.schema.fields.is_empty() {
        out.push_str("No configuration fields.\n");
        return out;
    }
    let mut table = Table::new(&["FIELD", "TYPE", "DEFAULT", "CONSTRAINTS", "DESCRIPTION"]);
    field_rows(&definition.schema.fields, 0, &mut table);
    out.push_str(&table.render(palette));
    out
}

fn field_rows(fields: &[Field], depth: usize, table: &mut Table) {
    for field in fields {
        let indent = "  ".repeat(depth);
        let (kind, default, mut constraints, children) = describe_kind(&field.kind);
        let name = if children.is_some() && matches!(field.kind, FieldKind::List { .. }) {
            format!("{indent}{}[]", field.name)
        } else {
            format!("{indent}{}", field.name)
        };
        if field.required {
            constraints.insert(0, "required".to_owned());
        }
        let mut description = String::new();
        if field.label.as_deref().is_some_and(|label| label != field.name) {
            description.push_str(field.display_label());
        }
        if let Some(help) = &field.description {
            if !description.is_empty() {
                description.push_str(" — ");
            }
            description.push_str(help);
        }
        table.row(vec![
            name.into(),
            kind.into(),
            default.map(|d| truncate(&compact(&d), 40)).unwrap_or_default().into(),
            constraints.join(", ").into(),
            truncate(&description, 80).into(),
        ]);
        if let Some(children) = children {
            field_rows(children, depth + 1, table);
        }
    }
}

type KindParts<'a> = (&'static str, Option<Value>, Vec<String>, Option<&'a [Field]>);

/// A field kind's name, default, constraints as words, and nested fields.
fn describe_kind(kind: &FieldKind) -> KindParts<'_> {
    fn range<T: std::fmt::Display>(min: Option<T>, max: Option<T>, out: &mut Vec<String>) {
        match (min, max) {
            (Some(min), Some(max)) => out.push(format!("{min}..={max}")),
            (Some(min), None) => out.push(format!(">= {min}")),
            (None, Some(max)) => out.push(format!("<= {max}")),
            (None, None) => {}
        }
    }
    let mut constraints = Vec::new();
    match kind {
        FieldKind::Integer { default, min, max, step } => {
            range(*min, *max, &mut constraints);
            if let Some(step) = step {
                constraints.push(format!("step {step}"));
            }
            ("integer", default.map(Value::from), constraints, None)
        }
        FieldKind::Float { default, min, max, step } => {
            range(*min, *max, &mut constraints);
            if let Some(step) = step {
                constraints.push(format!("step {step}"));
            }
            ("float", default.map(Value::from), constraints, None)
        }
        FieldKind::String { default, options, min_length, max_length } => {
            if let Some(options) = options {
                constraints.push(format!("one of {}", options.join("|")));
            }
            match (min_length, max_length) {
                (Some(min), Some(max)) => constraints.push(format!("{min}..={max} chars")),
                (Some(min), None) => constraints.push(format!(">= {min} chars")),
                (None, Some(max)) => constraints.push(format!("<= {max} chars")),
                (None, None) => {}
            }
            ("string", default.clone().map(Value::from), constraints, None)
        }
        FieldKind::Boolean { default } => ("boolean", default.map(Value::from), constraints, None),
        FieldKind::Group { fields } => ("group", None, constraints, Some(fields.as_slice())),
        FieldKind::List { item, default, min_items, max_items } => {
            match (min_items, max_items) {
                (Some(min), Some(max)) => constraints.push(format!("{min}..={max} items")),
                (Some(min), None) => constraints.push(format!(">= {min} items")),
                (None, Some(max)) => constraints.push(format!("<= {max} items")),
                (None, None) => {}
            }
            ("list", default.clone(), constraints, Some(item.as_slice()))
        }
    }
}

/// `athanor instances list`.
pub fn instances(summaries: &[InstanceSummary], now: DateTime<Utc>, palette: Palette) -> String {
    if summaries.is_empty() {
        return "No instances. Create one with `athanor instances create`.\n".to_owned();
    }
    let mut table = Table::new(&["ID", "NAME", "EXPERIMENT", "RUNS", "LAST RUN"]);
    for summary in summaries {
        let instance = &summary.instance;
        let last = match &summary.last_run {
            Some(run) => {
                Cell::styled(format!("{} {}", run.status, relative_time(run.created_at, now)), status_style(run.status))
            }
            None => Cell::new("—"),
        };
        table.row(vec![
            instance.id.to_string().into(),
            truncate(instance.name.as_str(), 40).into(),
            instance.experiment.as_str().into(),
            summary.run_count.to_string().into(),
            last,
        ]);
    }
    table.render(palette)
}

/// `athanor instances show`: the instance, its configuration, its runs.
pub fn instance(details: &InstanceDetails, now: DateTime<Utc>, palette: Palette) -> String {
    let instance = &details.instance;
    let mut fields = Table::new(&[]);
    let mut field = |name: &str, value: String| fields.row(vec![name.into(), value.into()]);
    field("id", instance.id.to_string());
    field("name", instance.name.to_string());
    let experiment = match &details.experiment {
        Some(definition) => format!("{} {}", instance.experiment, palette.dim(&definition.version)),
        None => format!("{} (no longer on the server)", instance.experiment),
    };
    field("experiment", experiment);
    if !instance.description.as_str().is_empty() {
        field("description", instance.description.to_string());
    }
    field("created", local_time(instance.created_at));
    field("updated", local_time(instance.updated_at));
    // Only the last column holds painted text, and it is never padded, so this table needs no palette.
    let mut out = fields.render(Palette::plain());
    out.push_str(&format!("\n{}\n", palette.bold("Configuration")));
    out.push_str(&indent(&serde_json::to_string_pretty(&instance.config).unwrap_or_default(), 2));
    out.push_str(&format!("\n{}\n", palette.bold("Runs")));
    if details.runs.is_empty() {
        out.push_str("  none yet; start one with `athanor runs start ");
        out.push_str(&instance.id.to_string());
        out.push_str("`\n");
    } else {
        let listings: Vec<(&Run, Option<&str>)> = details.runs.iter().map(|run| (run, None)).collect();
        out.push_str(&indent(&runs_table(&listings, now, palette), 2));
    }
    out
}

/// `athanor runs list`.
pub fn runs(listings: &[RunListing], now: DateTime<Utc>, palette: Palette) -> String {
    if listings.is_empty() {
        return "No runs match.\n".to_owned();
    }
    let rows: Vec<(&Run, Option<&str>)> =
        listings.iter().map(|listing| (&listing.run, Some(listing.instance_name.as_str()))).collect();
    runs_table(&rows, now, palette)
}

/// A runs table; the INSTANCE column only when instance names are given.
fn runs_table(rows: &[(&Run, Option<&str>)], now: DateTime<Utc>, palette: Palette) -> String {
    let with_instance = rows.iter().any(|(_, name)| name.is_some());
    let mut headers = vec!["ID"];
    if with_instance {
        headers.push("INSTANCE");
    }
    headers.extend(["STATUS", "CREATED", "DURATION", "ERROR"]);
    let mut table = Table::new(&headers);
    for (run, name) in rows {
        let mut cells = vec![Cell::new(run.id.to_string())];
        if with_instance {
            cells.push(truncate(name.unwrap_or(""), 30).into());
        }
        cells.push(Cell::styled(run.status.as_str(), status_style(run.status)));
        cells.push(relative_time(run.created_at, now).into());
        cells.push(run.duration(now).map(duration).unwrap_or_default().into());
        cells.push(truncate(first_line(run.error.as_deref()), 80).into());
        table.row(cells);
    }
    table.render(palette)
}

/// `athanor runs show`: status, times, error, the configuration it ran with.
pub fn run(run: &Run, now: DateTime<Utc>, palette: Palette) -> String {
    let mut fields = Table::new(&[]);
    let mut field = |name: &str, value: String| fields.row(vec![name.into(), value.into()]);
    field("id", run.id.to_string());
    field("instance", run.instance_id.to_string());
    field("status", palette.status(run.status));
    field("version", run.experiment_version.clone());
    field("created", local_time(run.created_at));
    if let Some(started) = run.started_at {
        field("started", local_time(started));
    }
    if let Some(ended) = run.completed_at {
        field("ended", local_time(ended));
    }
    if let Some(took) = run.duration(now) {
        field("duration", duration(took));
    }
    // Only the last column holds painted text, and it is never padded, so this table needs no palette.
    let mut out = fields.render(Palette::plain());
    if let Some(error) = &run.error {
        out.push_str(&format!("\n{}\n{}", palette.bold("Error"), indent(error, 2)));
    }
    out.push_str(&format!("\n{}\n", palette.bold("Configuration")));
    out.push_str(&indent(&serde_json::to_string_pretty(&run.config).unwrap_or_default(), 2));
    out
}

/// One log line: local time, level (coloured), message; debug lines dimmed whole. Further lines of a multi-line
/// message are indented under the first.
pub fn log_line(record: &LogRecord, palette: Palette) -> String {
    let stamp = palette.dim(clock_time(record.ts));
    let message = record.message.replace('\n', "\n                   ");
    let message =
        if record.level == athanor_core::LogLevel::Debug { palette.dim(&message) } else { message.to_string() };
    format!("{stamp} {} {message}", palette.level(record.level))
}

/// One result as `key = value` (compact JSON), cut to `max` characters of value when given.
pub fn result_line(record: &ResultRecord, max: Option<usize>, palette: Palette) -> String {
    let value = compact(&record.value);
    let value = match max {
        Some(max) if value.chars().count() > max => {
            format!("{} {}", truncate(&value, max), palette.dim(format!("({} bytes)", value.len())))
        }
        _ => value,
    };
    format!("{} = {value}", palette.bold(&record.key))
}

/// The line that ends a followed or awaited run: `run <id> completed in 12.3s`, `… failed after 3.1s: why`.
pub fn summary(run: &Run, now: DateTime<Utc>, palette: Palette) -> String {
    let took = run.duration(now).map(duration);
    let mut text = format!("run {} {}", run.id, palette.status(run.status));
    match (run.status, took) {
        (RunStatus::Completed, Some(took)) => text.push_str(&format!(" in {took}")),
        (_, Some(took)) if run.status.is_terminal() => text.push_str(&format!(" after {took}")),
        _ => {}
    }
    if let Some(error) = &run.error {
        text.push_str(&format!(": {error}"));
    }
    text
}

/// `athanor compare`: one column per run; the runs' status and duration, the configuration keys that differ,
/// every result (best green, worst red, guessed from the key), and the numeric series found.
pub fn comparison(comparison: &Comparison, palette: Palette) -> String {
    let mut headers = vec![String::new()];
    headers.extend(comparison.runs.iter().map(|run| {
        let mut short = run.id.to_string();
        short.truncate(8);
        format!("{} ({short})", truncate(&run.instance_name, 24))
    }));
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();

    let mut out = String::new();
    let mut overview = Table::new(&headers);
    let mut status = vec![Cell::new("status")];
    status.extend(comparison.runs.iter().map(|run| Cell::styled(run.status.as_str(), status_style(run.status))));
    overview.row(status);
    let mut took = vec![Cell::new("duration")];
    took.extend(comparison.runs.iter().map(|run| {
        let seconds = run.duration_seconds.map(|s| chrono::Duration::milliseconds((s * 1000.0) as i64));
        Cell::new(seconds.map(duration).unwrap_or_default())
    }));
    overview.row(took);
    out.push_str(&overview.render(palette));

    let differing: Vec<&Row> = comparison.config.iter().filter(|row| row.differs).collect();
    let same = comparison.config.len() - differing.len();
    let _ = write!(out, "\n{} ", palette.bold("Configuration"));
    if differing.is_empty() {
        let _ = writeln!(out, "(identical, {same} keys)");
    } else {
        let _ = writeln!(out, "({} differ, {same} the same)", differing.len());
        out.push_str(&value_rows(&differing, &headers, false, palette));
    }

    let _ = write!(out, "\n{} ", palette.bold("Results"));
    if comparison.results.is_empty() {
        let _ = writeln!(out, "(none)");
    } else {
        let _ = writeln!(out, "({} keys)", comparison.results.len());
        let rows: Vec<&Row> = comparison.results.iter().collect();
        out.push_str(&value_rows(&rows, &headers, true, palette));
    }

    if !comparison.series.is_empty() {
        let _ = writeln!(out, "\n{}", palette.bold("Series"));
        for series in &comparison.series {
            let points: Vec<String> = series.lines.iter().map(|line| line.len().to_string()).collect();
            let _ = writeln!(out, "  {} ({} points)", series.name, points.join(" / "));
        }
    }
    out
}

fn value_rows(rows: &[&Row], headers: &[&str], mark_best: bool, palette: Palette) -> String {
    let mut table = Table::new(&vec![""; headers.len()]);
    for row in rows {
        let best_worst = if mark_best { best_and_worst(row, lower_is_better(&row.key)) } else { None };
        let mut cells = vec![Cell::new(row.key.as_str())];
        for (column, value) in row.values.iter().enumerate() {
            let text = value.as_ref().map(|v| truncate(&compact(v), 40)).unwrap_or_else(|| "—".to_owned());
            let style = match best_worst {
                Some((best, _)) if best == column => AnsiColor::Green.on_default(),
                Some((_, worst)) if worst == column => AnsiColor::Red.on_default(),
                _ => Style::new(),
            };
            cells.push(Cell::styled(text, style));
        }
        table.row(cells);
    }
    indent(&table.render(palette), 2)
}

/// Every line of `text` indented by `by` spaces; ends with a newline.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(&pad);
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use athanor_core::compare::{RunColumn, Series};
    use athanor_core::schema::{Field, Schema};
    use athanor_core::{InstanceId, LogLevel, RunId};
    use serde_json::json;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + seconds, 0).unwrap()
    }

    fn a_run(status: RunStatus, error: Option<&str>) -> Run {
        Run {
            id: RunId::parse("0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e11").unwrap(),
            instance_id: InstanceId::parse("0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e22").unwrap(),
            status,
            config: json!({"epochs": 3}),
            experiment_version: "1.0.0".into(),
            created_at: at(0),
            started_at: Some(at(1)),
            completed_at: status.is_terminal().then(|| at(13)),
            error: error.map(str::to_owned),
        }
    }

    #[test]
    fn tables_align_on_the_widest_cell_without_trailing_blanks() {
        let mut table = Table::new(&["A", "LONGER", "C"]);
        table.row(vec!["wide cell".into(), "x".into(), "".into()]);
        table.row(vec!["y".into(), "z".into(), "end".into()]);
        assert_eq!(table.render(Palette::plain()), "A          LONGER  C\nwide cell  x\ny          z       end\n");
    }

    #[test]
    fn pretty_json_keeps_the_key_order_and_the_strings() {
        let raw = r#" {"id":"x","b":[1, 2,{}],"a":{"s":"a, \"b\": [c]","e":[]},"z":null} "#;
        let pretty = pretty_json(raw);
        let expected = r#"{
  "id": "x",
  "b": [
    1,
    2,
    {}
  ],
  "a": {
    "s": "a, \"b\": [c]",
    "e": []
  },
  "z": null
}"#;
        assert_eq!(pretty, expected);
        // The same value serde_json would print, but in the order it came.
        let value: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&pretty).unwrap(), value);
        assert_eq!(pretty_json("[]"), "[]");
        assert_eq!(pretty_json("\"a\""), "\"a\"");
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(chrono::Duration::milliseconds(850)), "850ms");
        assert_eq!(duration(chrono::Duration::milliseconds(12_340)), "12.3s");
        assert_eq!(duration(chrono::Duration::seconds(245)), "4m 05s");
        assert_eq!(duration(chrono::Duration::seconds(7_380)), "2h 03m");
        assert_eq!(relative_time(at(0), at(200)), "3 min ago");
    }

    #[test]
    fn summaries_say_how_the_run_ended() {
        let now = at(100);
        let completed = summary(&a_run(RunStatus::Completed, None), now, Palette::plain());
        assert_eq!(completed, "run 0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e11 completed in 12.0s");
        let failed = summary(&a_run(RunStatus::Failed, Some("boom")), now, Palette::plain());
        assert!(failed.ends_with("failed after 12.0s: boom"), "{failed}");
        let cancelled = summary(&a_run(RunStatus::Cancelled, Some("cancelled by user")), now, Palette::plain());
        assert!(cancelled.ends_with("cancelled after 12.0s: cancelled by user"), "{cancelled}");
    }

    #[test]
    fn log_and_result_lines() {
        let record =
            LogRecord { seq: 1, ts: at(0), level: LogLevel::Warn, message: "two\nlines".into(), metadata: None };
        let line = log_line(&record, Palette::plain());
        assert!(line.ends_with(" warn  two\n                   lines"), "{line:?}");
        assert_eq!(line.split(' ').next().unwrap().len(), "00:00:00.000".len());
        let result = ResultRecord { seq: 2, ts: at(0), key: "accuracy".into(), value: json!(0.93) };
        assert_eq!(result_line(&result, None, Palette::plain()), "accuracy = 0.93");
        let big = ResultRecord { seq: 3, ts: at(0), key: "tree".into(), value: json!({"a": "x".repeat(100)}) };
        let cut = result_line(&big, Some(20), Palette::plain());
        assert!(cut.starts_with("tree = {\"a\":\"xxxxxxxxxxxxx…") && cut.ends_with("(108 bytes)"), "{cut}");
    }

    #[test]
    fn an_experiment_shows_its_fields_nested() {
        let definition = ExperimentDefinition::new("demo", "2.0").description("Does things.").schema(
            Schema::new()
                .field(Field::integer("epochs").label("Epochs").default(20).min(1).max(1000))
                .field(Field::string("model").options(["a", "b"]).required())
                .field(Field::list("pairs", vec![Field::integer("runs").default(3)]).min_items(1)),
        );
        let text = experiment(&definition, Palette::plain());
        let expected = "\
demo 2.0
Does things.

FIELD    TYPE     DEFAULT  CONSTRAINTS           DESCRIPTION
epochs   integer  20       1..=1000              Epochs
model    string            required, one of a|b
pairs[]  list              >= 1 items
  runs   integer  3
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_comparison_shows_differences_and_results() {
        let column = |id: &str, name: &str| RunColumn {
            id: RunId::parse(id).unwrap(),
            instance_id: InstanceId::parse(id).unwrap(),
            instance_name: name.into(),
            status: RunStatus::Completed,
            started_at: Some(at(0)),
            duration_seconds: Some(2.5),
            last_seq: 3,
        };
        let row = |key: &str, values: Vec<Option<Value>>, differs| Row { key: key.into(), values, differs };
        let compared = Comparison {
            runs: vec![
                column("11111111-6f1e-7a7b-9d1e-2b7c1f0a9e11", "base"),
                column("22222222-6f1e-7a7b-9d1e-2b7c1f0a9e11", "fast"),
            ],
            config: vec![
                row("lr", vec![Some(json!(0.1)), Some(json!(0.5))], true),
                row("epochs", vec![Some(json!(3)), Some(json!(3))], false),
            ],
            results: vec![row("loss", vec![Some(json!(0.2)), None], true)],
            series: vec![Series { name: "curve".into(), lines: vec![vec![(0.0, 1.0)], vec![]] }],
        };
        let text = comparison(&compared, Palette::plain());
        // The first line starts with the blank corner cell; `\` would swallow its leading spaces.
        let expected = "          base (11111111)  fast (22222222)
status    completed        completed
duration  2.5s             2.5s

Configuration (1 differ, 1 the same)
  lr  0.1  0.5

Results (1 keys)
  loss  0.2  —

Series
  curve (1 / 0 points)
";
        assert_eq!(text, expected);
    }
}
