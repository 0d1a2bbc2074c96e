//! Following a run live over its event stream (`GET /runs/{id}/events?after=N`): log lines and results print as
//! they arrive, a progress bar stays at the bottom, and the terminal status ends it.
//!
//! The stream is resumable by record `seq` (logs and results share one sequence), so a dropped connection is
//! picked up again with `after=<last seq seen>`: the server replays what was committed since, and nothing is
//! printed twice or skipped. The server ends the stream after the terminal status, and sends that status only
//! once every record before it was sent, so stopping at it loses nothing.
//!
//! The printing side ([`Screen`]) writes log lines to standard output inside [`ProgressBar::suspend`], which
//! clears the bar (drawn on standard error, and only when that is a terminal), prints, and redraws it below.

use crate::client::Client;
use crate::error::CliError;
use crate::render;
use crate::sse::{SseEvent, SseParser};
use crate::style::Palette;
use athanor_core::api::ErrorBody;
use athanor_core::{LogLevel, LogRecord, Progress, ResultRecord, Run, RunEvent, RunId};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::time::{Duration, Instant};

/// How many times in a row a dropped stream is reopened before giving up.
const MAX_RECONNECTS: u32 = 8;

/// A stream that stayed open this long counts as having worked: its drop starts a fresh series of retries. (A
/// proxy that cuts idle connections every minute is followed forever; a server that closes at once is not.)
const HEALTHY_STREAM: Duration = Duration::from_secs(10);

/// Results longer than this (as compact JSON) are cut when followed; `athanor runs results` shows them whole.
const RESULT_WIDTH: usize = 200;

/// The most characters of a progress message shown beside the bar (which takes about 50 columns itself).
const MESSAGE_WIDTH: usize = 40;

/// What to show while following.
#[derive(Debug, Clone, Default)]
pub struct FollowOptions {
    /// Start after this record `seq` (0: from the run's first record).
    pub after: i64,
    /// Print results as they arrive (`runs start --follow`), or only logs (`runs logs --follow`).
    pub results: bool,
    /// Only log lines at these levels; all when empty.
    pub levels: Vec<LogLevel>,
    /// One JSON object per event and line (`{"event": …, "data": …}`) instead of text and a progress bar.
    pub json: bool,
}

/// How following ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Followed {
    /// The run reached this terminal status.
    Ended(Run),
    /// Ctrl-C: the user stopped following; the run goes on.
    Interrupted,
}

/// The payload of a `snapshot` event.
#[derive(Debug, Deserialize)]
struct Snapshot {
    run: Run,
    progress: Option<Progress>,
}

/// The payload of a `records` event.
#[derive(Debug, Serialize, Deserialize)]
struct Records {
    #[serde(default)]
    logs: Vec<LogRecord>,
    #[serde(default)]
    results: Vec<ResultRecord>,
}

/// Read one server-sent event as a [`RunEvent`]. Unknown event names are skipped (`Ok(None)`), so a newer server
/// may add events without breaking this client; an `error` event carries the server's [`ErrorBody`].
pub fn decode(event: &SseEvent) -> Result<Option<RunEvent>, CliError> {
    fn parse<T: serde::de::DeserializeOwned>(event: &SseEvent) -> Result<T, CliError> {
        serde_json::from_str(&event.data).map_err(|error| CliError::Decode {
            url: format!("the run's event stream ({} event)", event.event),
            detail: error.to_string(),
        })
    }
    Ok(Some(match event.event.as_str() {
        "snapshot" => {
            let snapshot: Snapshot = parse(event)?;
            RunEvent::Snapshot { run: snapshot.run, progress: snapshot.progress }
        }
        "records" => {
            let records: Records = parse(event)?;
            RunEvent::Records { logs: records.logs, results: records.results }
        }
        "progress" => RunEvent::Progress(parse(event)?),
        "status" => RunEvent::Status(parse(event)?),
        "error" => {
            let body: ErrorBody = parse(event)?;
            return Err(CliError::Api { status: body.code.http_status(), body });
        }
        _ => return Ok(None),
    }))
}

/// What following has learnt so far.
#[derive(Debug, Default)]
struct State {
    /// The highest record `seq` received: where a reopened stream continues.
    after: i64,
    /// The run as last reported (snapshot or status event).
    run: Option<Run>,
}

impl State {
    /// Take in one event; returns the run when this event is its terminal status.
    fn apply(&mut self, event: &RunEvent) -> Option<Run> {
        match event {
            RunEvent::Snapshot { run, .. } => self.run = Some(run.clone()),
            RunEvent::Records { logs, results } => {
                let newest = logs.iter().map(|l| l.seq).chain(results.iter().map(|r| r.seq)).max();
                self.after = self.after.max(newest.unwrap_or(0));
            }
            RunEvent::Progress(_) => {}
            RunEvent::Status(run) => {
                self.run = Some(run.clone());
                if run.status.is_terminal() {
                    return Some(run.clone());
                }
            }
        }
        None
    }

    /// After the stream closed: the run, when the last thing heard of it is that it ended. (The server closes a
    /// run's stream after its terminal status event; a proxy may cut it after the snapshot of a finished run, which
    /// already says how it ended.)
    fn ended(&self) -> Option<Run> {
        self.run.clone().filter(|run| run.status.is_terminal())
    }
}

/// Follow `run` until it ends or the user presses Ctrl-C. Prints as it goes; the caller prints the summary.
pub async fn follow(client: &Client, run: RunId, options: &FollowOptions) -> Result<Followed, CliError> {
    let palette = if options.json { Palette::plain() } else { Palette::for_stdout() };
    let mut screen = Screen::new(options, palette, Box::new(std::io::stdout()));
    let mut state = State { after: options.after, run: None };
    let interrupted = interrupted();
    tokio::pin!(interrupted);
    let url = client.api(&["runs", &run.to_string(), "events"]);
    let mut failures = 0;
    // Every return below drops `screen`, which clears the progress bar before the caller prints anything.
    loop {
        let query = [("after", state.after.to_string())];
        let opened_at = Instant::now();
        let opened = tokio::select! {
            opened = client.open(url.clone(), &query, "text/event-stream") => opened,
            () = &mut interrupted => return Ok(Followed::Interrupted),
        };
        match opened {
            Ok(response) => {
                let mut stream = response.bytes_stream();
                let mut parser = SseParser::new();
                loop {
                    let chunk = tokio::select! {
                        chunk = stream.next() => chunk,
                        () = &mut interrupted => return Ok(Followed::Interrupted),
                    };
                    // A read error is a dropped connection like any other: reopen after the last `seq`.
                    let Some(Ok(bytes)) = chunk else { break };
                    for event in parser.push(&bytes) {
                        if let Some(ended) = handle(&event, &mut state, &mut screen)? {
                            return Ok(Followed::Ended(ended));
                        }
                    }
                }
                if let Some(ended) = state.ended() {
                    return Ok(Followed::Ended(ended));
                }
                if opened_at.elapsed() > HEALTHY_STREAM {
                    failures = 0;
                }
            }
            // Reachable before, so worth retrying; an error answer (404, 401) is not.
            Err(CliError::Connect { .. } | CliError::Transport(_)) if state.run.is_some() => {}
            Err(error) => return Err(error),
        }
        failures += 1;
        if failures > MAX_RECONNECTS {
            return Err(CliError::Transport(format!(
                "the event stream of run {run} kept closing before the run ended; `athanor runs show {run}` \
                 tells where it is"
            )));
        }
        // 0.25 s, 0.5 s, 1 s, … 8 s: quick for a blip, patient with a restarting server.
        let backoff = Duration::from_millis(250 << (failures - 1).min(5));
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = &mut interrupted => return Ok(Followed::Interrupted),
        }
    }
}

/// Handle one event: print what it carries, and say whether the run just ended.
fn handle(event: &SseEvent, state: &mut State, screen: &mut Screen) -> Result<Option<Run>, CliError> {
    let Some(decoded) = decode(event)? else { return Ok(None) };
    // Replayed records after a reconnect may start at or before what was seen; print each `seq` once.
    let decoded = match decoded {
        RunEvent::Records { mut logs, mut results } => {
            logs.retain(|log| log.seq > state.after);
            results.retain(|result| result.seq > state.after);
            RunEvent::Records { logs, results }
        }
        other => other,
    };
    screen.show(&event.event, &decoded)?;
    Ok(state.apply(&decoded))
}

/// Resolves when the user presses Ctrl-C. Never resolves when the handler cannot be installed, so a platform
/// without signals follows to the end instead of stopping at once.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The terminal side of following: text lines (or JSON lines) on standard output, the progress bar on standard
/// error.
struct Screen {
    palette: Palette,
    json: bool,
    results: bool,
    levels: Vec<LogLevel>,
    bar: Option<ProgressBar>,
    /// Whether the bar is styled for a known total (a bar) or not (a spinner and a count); `None` before styling.
    bar_has_total: Option<bool>,
    /// Standard output, or a buffer in tests.
    out: Box<dyn Write + Send>,
}

impl Screen {
    fn new(options: &FollowOptions, palette: Palette, out: Box<dyn Write + Send>) -> Screen {
        Screen {
            palette,
            json: options.json,
            results: options.results,
            levels: options.levels.clone(),
            bar: None,
            bar_has_total: None,
            out,
        }
    }

    fn wants(&self, level: LogLevel) -> bool {
        self.levels.is_empty() || self.levels.contains(&level)
    }

    /// Print what `event` carries (filtered by level, results only when asked).
    fn show(&mut self, name: &str, event: &RunEvent) -> Result<(), CliError> {
        if self.json {
            return self.show_json(name, event);
        }
        match event {
            RunEvent::Snapshot { progress: Some(progress), .. } | RunEvent::Progress(progress) => {
                self.progress(progress);
            }
            RunEvent::Records { logs, results } => {
                let mut text = String::new();
                for log in logs.iter().filter(|log| self.wants(log.level)) {
                    text.push_str(&render::log_line(log, self.palette));
                    text.push('\n');
                }
                if self.results {
                    for result in results {
                        text.push_str(&render::result_line(result, Some(RESULT_WIDTH), self.palette));
                        text.push('\n');
                    }
                }
                // One write per batch: a busy run sends thousands of lines, and each suspend redraws the bar.
                self.print(&text)?;
            }
            RunEvent::Snapshot { progress: None, .. } | RunEvent::Status(_) => {}
        }
        Ok(())
    }

    /// `{"event": name, "data": …}` on one line, with records filtered the same way as the text output. Typed
    /// values, not `json!`, so fields keep the server's order (`id` first).
    fn show_json(&mut self, name: &str, event: &RunEvent) -> Result<(), CliError> {
        #[derive(Serialize)]
        struct Line<'a, T> {
            event: &'a str,
            data: T,
        }
        #[derive(Serialize)]
        struct SnapshotData<'a> {
            run: &'a Run,
            progress: &'a Option<Progress>,
        }
        #[derive(Serialize)]
        struct RecordsData<'a> {
            logs: Vec<&'a LogRecord>,
            results: Vec<&'a ResultRecord>,
        }
        let line = match event {
            RunEvent::Snapshot { run, progress } => {
                serde_json::to_string(&Line { event: name, data: SnapshotData { run, progress } })
            }
            RunEvent::Records { logs, results } => {
                let logs: Vec<&LogRecord> = logs.iter().filter(|log| self.wants(log.level)).collect();
                let results: Vec<&ResultRecord> = if self.results { results.iter().collect() } else { Vec::new() };
                if logs.is_empty() && results.is_empty() {
                    return Ok(());
                }
                serde_json::to_string(&Line { event: name, data: RecordsData { logs, results } })
            }
            RunEvent::Progress(progress) => serde_json::to_string(&Line { event: name, data: progress }),
            RunEvent::Status(run) => serde_json::to_string(&Line { event: name, data: run }),
        };
        self.print(&format!("{}\n", line.unwrap_or_default()))
    }

    /// Write to standard output, with the bar cleared while it is written.
    fn print(&mut self, text: &str) -> Result<(), CliError> {
        if text.is_empty() {
            return Ok(());
        }
        let out = &mut self.out;
        let mut write = || out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(CliError::output);
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    fn progress(&mut self, progress: &Progress) {
        let bar = self.bar.get_or_insert_with(|| {
            // Standard error, so standard output stays the run's lines alone; hidden when it is not a terminal.
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let has_total = progress.total.is_some();
        if self.bar_has_total != Some(has_total) {
            bar.set_style(if has_total { bar_style() } else { spinner_style() });
            self.bar_has_total = Some(has_total);
        }
        match progress.total {
            Some(total) => bar.set_length(total),
            None => bar.unset_length(),
        }
        bar.set_position(progress.current);
        // Cut here rather than with `{wide_msg}`: a bar as wide as the terminal leaves the cursor at the edge, where
        // the `^C` a terminal echoes wraps to a new line and the bar can no longer be cleared.
        bar.set_message(render::truncate(progress.message.as_deref().unwrap_or(""), MESSAGE_WIDTH));
    }
}

impl Drop for Screen {
    /// Clear the bar, however following ended, so what is printed next (the summary, an error) stands alone.
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `⠹ [██████▌        ] 57/100 epoch 57 — evaluating`
fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {msg}")
        .expect("a valid template")
        .progress_chars("█▌ ")
}

/// `⠹ 57 scanning…` when the run reports no total.
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {pos} {msg}").expect("a valid template")
}

#[cfg(test)]
mod tests {
    use super::*;
    use athanor_core::{InstanceId, RunStatus};
    use serde_json::{json, Value};
    use std::sync::{Arc, Mutex};

    fn sse(event: &str, data: Value) -> SseEvent {
        SseEvent { event: event.to_owned(), data: data.to_string() }
    }

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn screen(options: &FollowOptions) -> (Screen, Buffer) {
        let buffer = Buffer::default();
        (Screen::new(options, Palette::plain(), Box::new(buffer.clone())), buffer)
    }

    fn records() -> SseEvent {
        let log = |seq: i64, level: &str, message: &str| json!({"seq": seq, "ts": "2026-01-01T00:00:00Z", "level": level, "message": message, "metadata": null});
        sse(
            "records",
            json!({"logs": [log(1, "debug", "detail"), log(2, "info", "start"), log(4, "error", "bad")],
                   "results": [{"seq": 3, "ts": "2026-01-01T00:00:00Z", "key": "acc", "value": 0.5}]}),
        )
    }

    fn run(status: RunStatus) -> Run {
        Run {
            id: RunId::parse("0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e11").unwrap(),
            instance_id: InstanceId::parse("0192f0c2-6f1e-7a7b-9d1e-2b7c1f0a9e22").unwrap(),
            status,
            config: json!({}),
            experiment_version: "1".into(),
            created_at: chrono::Utc::now(),
            started_at: None,
            completed_at: None,
            error: None,
        }
    }

    #[test]
    fn the_styles_templates_are_valid() {
        bar_style();
        spinner_style();
    }

    #[test]
    fn events_decode_by_name_and_unknown_ones_are_skipped() {
        let snapshot = sse("snapshot", json!({"run": run(RunStatus::Running), "progress": null}));
        assert!(matches!(decode(&snapshot).unwrap(), Some(RunEvent::Snapshot { progress: None, .. })));
        let progress = sse("progress", json!({"current": 3, "total": 10, "message": "x"}));
        assert!(matches!(decode(&progress).unwrap(), Some(RunEvent::Progress(Progress { current: 3, .. }))));
        let records = sse("records", json!({"logs": [], "results": []}));
        assert!(matches!(decode(&records).unwrap(), Some(RunEvent::Records { .. })));
        assert_eq!(decode(&sse("heartbeat", json!({}))).unwrap(), None);
        let error = sse("error", json!({"code": "internal", "message": "store unavailable"}));
        assert_eq!(decode(&error).unwrap_err().to_string(), "store unavailable");
        assert!(matches!(decode(&sse("status", json!({"nope": 1}))), Err(CliError::Decode { .. })));
    }

    #[test]
    fn state_tracks_the_last_seq_and_the_terminal_status() {
        let mut state = State::default();
        assert_eq!(state.apply(&RunEvent::Snapshot { run: run(RunStatus::Running), progress: None }), None);
        let log =
            |seq| LogRecord { seq, ts: chrono::Utc::now(), level: LogLevel::Info, message: "m".into(), metadata: None };
        let result = |seq| ResultRecord { seq, ts: chrono::Utc::now(), key: "k".into(), value: json!(1) };
        state.apply(&RunEvent::Records { logs: vec![log(1), log(2)], results: vec![result(3)] });
        assert_eq!(state.after, 3);
        assert_eq!(state.ended(), None);
        assert_eq!(state.apply(&RunEvent::Status(run(RunStatus::Running))), None);
        let ended = state.apply(&RunEvent::Status(run(RunStatus::Failed)));
        assert_eq!(ended.map(|run| run.status), Some(RunStatus::Failed));
        assert_eq!(state.ended().map(|run| run.status), Some(RunStatus::Failed));
    }

    #[test]
    fn replayed_records_are_not_shown_twice() {
        let mut state = State { after: 2, run: None };
        let (mut screen, out) = screen(&FollowOptions { results: true, ..FollowOptions::default() });
        assert_eq!(handle(&records(), &mut state, &mut screen).unwrap(), None);
        assert_eq!(state.after, 4);
        let text = out.text();
        assert!(!text.contains("detail") && !text.contains("start"), "{text}");
        assert!(text.contains("acc = 0.5") && text.contains("error bad"), "{text}");
    }

    #[test]
    fn text_lines_show_the_chosen_levels_and_results_only_when_asked() {
        let mut state = State::default();
        let options = FollowOptions { levels: vec![LogLevel::Info, LogLevel::Error], ..FollowOptions::default() };
        let (mut screen, out) = screen(&options);
        handle(&records(), &mut state, &mut screen).unwrap();
        let lines: Vec<String> = out.text().lines().map(|line| line.split_once(' ').unwrap().1.to_owned()).collect();
        assert_eq!(lines, ["info  start", "error bad"]);
    }

    #[test]
    fn json_lines_carry_each_event_filtered_the_same_way() {
        let mut state = State::default();
        let options = FollowOptions { json: true, levels: vec![LogLevel::Error], ..FollowOptions::default() };
        let (mut screen, out) = screen(&options);
        let snapshot = sse("snapshot", json!({"run": run(RunStatus::Running), "progress": null}));
        handle(&snapshot, &mut state, &mut screen).unwrap();
        handle(&records(), &mut state, &mut screen).unwrap();
        let mut failed = run(RunStatus::Failed);
        failed.error = Some("boom".into());
        let ended = handle(&sse("status", json!(failed)), &mut state, &mut screen).unwrap();
        assert_eq!(ended.map(|run| run.status), Some(RunStatus::Failed));
        let lines: Vec<Value> = out.text().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["event"], "snapshot");
        assert_eq!(lines[1]["data"]["logs"].as_array().unwrap().len(), 1);
        assert_eq!(lines[1]["data"]["logs"][0]["message"], "bad");
        assert_eq!(lines[1]["data"]["results"], json!([]));
        assert_eq!(lines[2]["data"]["error"], "boom");
    }
}
