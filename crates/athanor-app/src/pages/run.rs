//! `/runs/:id` — one run: status, progress, timing and Cancel; logs and results streaming in live.
//!
//! The page loads a window (the log tail, the first results, exact totals) in one round trip, renders it on the
//! server, and once hydrated follows the run from the last `seq` it shows. Only a bounded window of log lines
//! lives in the DOM, and the totals per level come from one row the writer keeps, so a run with a million lines
//! opens as fast as one with ten; earlier lines page in on demand.
//!
//! Choosing a level or typing a text searches the whole run in the database (not just the lines on screen):
//! the page asks for the last matches before its cursor and their exact count, then applies the same
//! [`LogFilter`] to the lines that stream in after it, so the filtered view stays live with no gap.

use crate::calls::CancelRun;
use crate::components::{ErrorPanel, StatusBadge};
use crate::error::AppError;
use crate::format::{clock_duration, config_rows, short_id, thousands, utc_stamp};
use crate::pages::json_tree::JsonTree;
use athanor_core::api::RunOverview;
use athanor_core::{LevelCounts, LogFilter, LogLevel, LogRecord, Progress, ResultRecord, Run, RunId};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

// The window and the resume cursor are only touched by the live stream, which exists in the browser build.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
/// Log lines kept in the page at most; older ones are dropped from view (not from the run) and page back in.
const LOG_WINDOW: usize = 1_000;
/// Lines fetched per "load earlier" (read by the server functions, which the browser build only calls).
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
const LOG_PAGE: u32 = 200;
/// Results loaded with the page, and per "load more".
const RESULT_PAGE: u32 = 1_000;

/// Load a run's page: the log tail and first results at one cursor, from which the live stream resumes.
#[server(endpoint = "get_run_page")]
pub async fn get_run_page(run_id: RunId) -> Result<RunOverview, AppError> {
    Ok(crate::state::service()?.run_overview(run_id, LOG_PAGE, RESULT_PAGE).await?)
}

/// The last lines before a cursor that pass a filter, and, when asked, how many do in all.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogsBefore {
    /// Up to a page of lines, oldest first.
    pub lines: Vec<LogRecord>,
    /// How many lines before the cursor pass the filter (when counted).
    pub matching: Option<i64>,
}

/// The page of log lines before `before_seq` that pass `filter` (searched in the database over the whole run),
/// with their exact number when `count` is set.
#[server(endpoint = "get_logs_before")]
pub async fn get_logs_before(
    run_id: RunId,
    before_seq: i64,
    filter: LogFilter,
    count: bool,
) -> Result<LogsBefore, AppError> {
    let service = crate::state::service()?;
    let lines = service.logs_before(run_id, before_seq, &filter, LOG_PAGE).await?;
    let matching = if count { Some(service.count_logs(run_id, &filter, before_seq).await?) } else { None };
    Ok(LogsBefore { lines, matching })
}

/// The next results after `after_seq`, up to `through_seq` (the page's cursor; later ones arrive live).
#[server(endpoint = "get_more_results")]
pub async fn get_more_results(run_id: RunId, after_seq: i64, through_seq: i64) -> Result<Vec<ResultRecord>, AppError> {
    let page = crate::state::service()?.results(run_id, None, after_seq, RESULT_PAGE).await?;
    Ok(page.items.into_iter().filter(|result| result.seq <= through_seq).collect())
}

/// The run page.
#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let data = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        |id| async move { get_run_page(RunId::parse(&id)?).await },
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading run…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>
                {move || Suspend::new(async move { data.await.map(|data| view! { <RunView data /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tab {
    Logs,
    Results,
    Config,
}

/// The live state of one run page.
#[derive(Clone, Copy)]
struct RunState {
    run: RwSignal<Run>,
    progress: RwSignal<Option<Progress>>,
    logs: RwSignal<Vec<LogRecord>>,
    /// Lines per level in the whole run, kept current by the live stream.
    log_levels: RwSignal<LevelCounts>,
    results: RwSignal<Vec<ResultRecord>>,
    result_total: RwSignal<i64>,
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    last_seq: RwSignal<i64>,
    /// Whether lines older than the first shown exist (and can be loaded).
    more_above: RwSignal<bool>,
    /// Whether the reader follows the newest lines (off once they scroll up).
    follow_tail: RwSignal<bool>,
    /// The search in force; [`LogFilter::all`] shows the plain window above.
    filter: RwSignal<LogFilter>,
    /// Lines that pass the filter: the last page found in the database, then every matching live line.
    found: RwSignal<Vec<LogRecord>>,
    /// How many lines pass the filter in the whole run (`None` while the first answer is on its way).
    found_total: RwSignal<Option<i64>>,
    /// Whether matching lines older than the first found one exist.
    found_more_above: RwSignal<bool>,
    /// Results up to this `seq` are loaded page by page; later ones arrive live.
    results_through: i64,
    /// The last `seq` of the results loaded so far by paging.
    results_cursor: RwSignal<i64>,
    /// Whether more results up to `results_through` may exist.
    more_results: RwSignal<bool>,
}

#[component]
fn RunView(data: RunOverview) -> impl IntoView {
    let more_above = data.logs.first().is_some_and(|first| first.seq > 1) && data.log_total > data.logs.len() as i64;
    let state = RunState {
        run: RwSignal::new(data.run.clone()),
        progress: RwSignal::new(None),
        logs: RwSignal::new(data.logs),
        log_levels: RwSignal::new(data.log_levels),
        results: RwSignal::new(data.results),
        result_total: RwSignal::new(data.result_total),
        last_seq: RwSignal::new(data.last_seq),
        more_above: RwSignal::new(more_above),
        follow_tail: RwSignal::new(true),
        filter: RwSignal::new(LogFilter::all()),
        found: RwSignal::new(Vec::new()),
        found_total: RwSignal::new(None),
        found_more_above: RwSignal::new(false),
        results_through: data.last_seq,
        results_cursor: RwSignal::new(0),
        more_results: RwSignal::new(false),
    };
    state.results_cursor.set(state.results.with_untracked(|r| r.last().map_or(0, |r| r.seq)));
    state.more_results.set((state.result_total.get_untracked() as usize) > state.results.with_untracked(Vec::len));
    let run_id = data.run.id;
    // Set by the stream's final terminal status (sent after every record), not by the opening snapshot: a run
    // that ends while the page loads still delivers its last records before the page stops listening.
    let ended = RwSignal::new(data.run.status.is_terminal());

    #[cfg(feature = "hydrate")]
    {
        use crate::live::{follow, LiveEvent, WatchRequest};
        use athanor_core::RunEvent;
        follow(
            move || WatchRequest::Run { run_id, after_seq: state.last_seq.get_untracked() },
            move |event| {
                let LiveEvent::Run(event) = event else { return };
                match event {
                    RunEvent::Snapshot { run, progress } => {
                        state.run.set(run);
                        state.progress.set(progress);
                    }
                    RunEvent::Status(run) => {
                        if run.status.is_terminal() {
                            ended.set(true);
                        }
                        state.run.set(run);
                    }
                    RunEvent::Progress(progress) => state.progress.set(Some(progress)),
                    RunEvent::Records { logs, results } => {
                        let newest = logs.iter().map(|l| l.seq).chain(results.iter().map(|r| r.seq)).max();
                        if let Some(newest) = newest {
                            state.last_seq.update(|seq| *seq = (*seq).max(newest));
                        }
                        if !logs.is_empty() {
                            state.log_levels.update(|counts| counts.add_logs(&logs));
                            // While the reader follows, the window slides; while they read older lines, it grows
                            // (up to a hard cap) so the lines under their eyes are not pulled away.
                            let limit = if state.follow_tail.get_untracked() { LOG_WINDOW } else { LOG_WINDOW * 5 };
                            let filter = state.filter.get_untracked();
                            if !filter.is_all() {
                                // Appended even while the search's first answer is on its way: that answer holds
                                // only lines before the cursor these come after, and is put in front of them.
                                let matching: Vec<LogRecord> =
                                    logs.iter().filter(|log| filter.matches(log)).cloned().collect();
                                if !matching.is_empty() {
                                    state.found_total.update(|total| {
                                        if let Some(total) = total {
                                            *total += matching.len() as i64;
                                        }
                                    });
                                    append_to_window(state.found, state.found_more_above, matching, limit);
                                }
                            }
                            append_to_window(state.logs, state.more_above, logs, limit);
                        }
                        if !results.is_empty() {
                            state.result_total.update(|total| *total += results.len() as i64);
                            state.results.update(|shown| shown.extend(results));
                        }
                    }
                }
            },
            move || ended.get_untracked(),
        );
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = ended;

    let tab = RwSignal::new(Tab::Logs);
    let config = data.run.config.clone();
    let config_note = data.instance_config_changed.then(|| {
        view! {
            <p class="note">
                "This is the run's own snapshot. The instance's configuration has changed since this run started."
            </p>
        }
    });
    let tab_button = move |which: Tab, label: &'static str, count: Option<Signal<i64>>| {
        view! {
            <button
                class="tab"
                class:active=move || tab.get() == which
                on:click=move |_| tab.set(which)
            >
                {label}
                {count.map(|count| view! { <span class="count">" (" {move || thousands(count.get())} ")"</span> })}
            </button>
        }
    };

    view! {
        <RunHeader state instance_name=data.instance_name node=data.node />
        <nav class="tabs">
            {tab_button(Tab::Logs, "Logs", Some(Signal::derive(move || state.log_levels.get().total())))}
            {tab_button(Tab::Results, "Results", Some(state.result_total.into()))}
            {tab_button(Tab::Config, "Config", None)}
            <span class="spacer"></span>
            <span class="exports muted">
                "Export: "
                <a href=format!("/export/runs/{run_id}/results.csv") download>"results.csv"</a>
                " · "
                <a href=format!("/export/runs/{run_id}/results.json") download>"results.json"</a>
                " · "
                <a href=format!("/export/runs/{run_id}/logs.csv") download>"logs.csv"</a>
                " · "
                <a href=format!("/export/runs/{run_id}/logs.json") download>"logs.json"</a>
            </span>
        </nav>
        <div class="tab-body" class:hidden=move || tab.get() != Tab::Logs>
            <LogView state run_id />
        </div>
        <div class="tab-body" class:hidden=move || tab.get() != Tab::Results>
            <ResultView state />
        </div>
        <div class="tab-body" class:hidden=move || tab.get() != Tab::Config>
            {config_note}
            <table class="kv card">
                <tbody>
                    {config_rows(&config)
                        .into_iter()
                        .map(|row| {
                            view! {
                                <tr>
                                    <th style=format!(
                                        "padding-left: {}rem",
                                        0.6 + row.depth as f32 * 1.2,
                                    )>{row.label}</th>
                                    <td class="mono">{row.value}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn RunHeader(state: RunState, instance_name: String, node: Option<String>) -> impl IntoView {
    let cancel = ServerAction::<CancelRun>::new();
    // Ticks once a second in the browser so the elapsed time of a running run moves.
    let now = RwSignal::new(chrono::Utc::now());
    #[cfg(feature = "hydrate")]
    {
        if let Ok(handle) =
            set_interval_with_handle(move || now.set(chrono::Utc::now()), std::time::Duration::from_secs(1))
        {
            on_cleanup(move || handle.clear());
        }
    }
    let run = state.run;
    let instance_href = move || format!("/instances/{}", run.get().instance_id);
    let timing = move || {
        let run = run.get();
        let started = run.started_at.map(|at| {
            view! { <span title=utc_stamp(at)>"started " {at.format("%H:%M:%S UTC").to_string()}</span> }
        });
        let duration = run.duration(now.get()).map(|d| {
            let label = if run.status.is_terminal() { "took " } else { "" };
            let suffix = if run.status.is_terminal() { "" } else { " elapsed" };
            format!("{label}{}{suffix}", clock_duration(d))
        });
        view! {
            {started}
            {duration.map(|d| view! { " · " <span class="mono">{d}</span> })}
        }
    };
    let progress_bar = move || {
        let progress = state.progress.get()?;
        if run.get().status.is_terminal() {
            return None;
        }
        let percent = progress.fraction().map(|f| f * 100.0);
        let label = match (percent, progress.total) {
            (Some(p), Some(total)) => format!("{p:.0}%  {}/{}", progress.current, total),
            _ => format!("{}", progress.current),
        };
        Some(view! {
            <div class="progress" role="progressbar" aria-valuenow=percent.unwrap_or(0.0)>
                <div class="bar" style=format!("width: {}%", percent.unwrap_or(100.0))></div>
            </div>
            <p class="progress-text">
                <span class="mono">{label}</span>
                {progress.message.map(|m| view! { " — " <span>{m}</span> })}
            </p>
        })
    };
    let error = move || {
        run.get().error.map(|error| {
            let class = if run.get().status == athanor_core::RunStatus::Failed { "run-error" } else { "run-note" };
            view! { <pre class=class>{error}</pre> }
        })
    };
    let crumb_name = instance_name.clone();
    let cancel_error = move || match cancel.value().get() {
        Some(Err(error)) => Some(view! { <span class="error-text">{error.to_string()}</span> }),
        _ => None,
    };
    view! {
        <section class="page-head run-head">
            <nav class="crumbs">
                <a href="/">"Instances"</a>
                " / "
                <A href=instance_href>{crumb_name}</A>
                " / "
                <span>"Run " {short_id(run.get_untracked().id)}</span>
            </nav>
            <div class="title-row">
                {move || view! { <StatusBadge status=run.get().status /> }}
                <h1>{instance_name.clone()} <span class="muted mono">" · " {short_id(run.get_untracked().id)}</span></h1>
                <span class="spacer"></span>
                <span class="muted">{timing}</span>
                {node.map(|node| view! { <span class="muted">" · on " <a href="/workers" class="mono">{node}</a></span> })}
                <Show when=move || !run.get().status.is_terminal()>
                    <button
                        class="danger"
                        disabled=move || cancel.pending().get()
                        on:click=move |_| {
                            cancel.dispatch(CancelRun { run_id: run.get_untracked().id });
                        }
                    >
                        "■ Cancel"
                    </button>
                </Show>
                {cancel_error}
            </div>
            {progress_bar}
            {error}
        </section>
    }
}

/// Append live `lines` to a window of lines, dropping its oldest past `limit` (they can be paged back in).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
fn append_to_window(window: RwSignal<Vec<LogRecord>>, more_above: RwSignal<bool>, lines: Vec<LogRecord>, limit: usize) {
    window.update(|shown| {
        shown.extend(lines);
        if shown.len() > limit {
            shown.drain(..shown.len() - limit);
            more_above.set(true);
        }
    });
}

/// How long typing must pause before the text is searched: one search per word typed, not per key.
const SEARCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

#[component]
fn LogView(state: RunState, run_id: RunId) -> impl IntoView {
    let filter = state.filter;
    let typed = RwSignal::new(String::new());
    let follow_tail = state.follow_tail;
    let loading = RwSignal::new(false);
    let search_error = RwSignal::new(None::<String>);
    // Which search the answers on their way belong to: an answer to an older filter is dropped.
    let generation = StoredValue::new(0_u64);
    let scroller = NodeRef::<leptos::html::Div>::new();
    let searching = move || !filter.with(LogFilter::is_all);

    // Follow mode: after new lines render, jump to the bottom unless the reader scrolled up.
    Effect::new(move |_| {
        state.logs.track();
        state.found.track();
        if follow_tail.get_untracked() {
            // The new rows render in the same tick as this effect; scroll once the browser has laid them out.
            request_animation_frame(move || {
                if let Some(element) = scroller.get_untracked() {
                    element.set_scroll_top(element.scroll_height());
                }
            });
        }
    });
    // A new filter: ask the database for the last matches before the page's cursor and how many there are. Lines
    // after the cursor arrive live and are matched in the page (see the stream above).
    Effect::new(move |previous: Option<LogFilter>| {
        let wanted = filter.get();
        if previous.as_ref() == Some(&wanted) {
            return wanted;
        }
        generation.update_value(|g| *g += 1);
        let this_search = generation.get_value();
        state.found.set(Vec::new());
        state.found_more_above.set(false);
        search_error.set(None);
        if wanted.is_all() {
            state.found_total.set(Some(0));
            return wanted;
        }
        state.found_total.set(None);
        follow_tail.set(true);
        let before_seq = state.last_seq.get_untracked() + 1;
        let query = wanted.clone();
        leptos::task::spawn_local(async move {
            let answer = get_logs_before(run_id, before_seq, query, true).await;
            if generation.get_value() != this_search {
                return;
            }
            match answer {
                Ok(LogsBefore { lines, matching }) => {
                    let matching = matching.unwrap_or(lines.len() as i64);
                    // The found lines are the newest matches, contiguous: any not shown are above them.
                    state.found_more_above.set(matching > lines.len() as i64);
                    let live_since = state.found.get_untracked().len() as i64;
                    state.found_total.set(Some(matching + live_since));
                    state.found.update(|live| {
                        let mut merged = lines;
                        merged.append(live);
                        *live = merged;
                    });
                }
                Err(error) => search_error.set(Some(error.to_string())),
            }
        });
        wanted
    });

    let load_earlier = move |_| {
        let (window, more_above, page_filter) = if searching() {
            (state.found, state.found_more_above, filter.get_untracked())
        } else {
            // The plain window asks for every level, so it stays contiguous.
            (state.logs, state.more_above, LogFilter::all())
        };
        let Some(first) = window.get_untracked().first().map(|l| l.seq) else { return };
        let this_search = generation.get_value();
        loading.set(true);
        leptos::task::spawn_local(async move {
            if let Ok(earlier) = get_logs_before(run_id, first, page_filter, false).await {
                // The filter changed, or the window moved meanwhile (live lines trimmed its top): merging would
                // leave a hole.
                if generation.get_value() != this_search || window.get_untracked().first().map(|l| l.seq) != Some(first)
                {
                    loading.set(false);
                    return;
                }
                follow_tail.set(false);
                window.update(|shown| {
                    let mut merged = earlier.lines;
                    merged.append(shown);
                    *shown = merged;
                });
                // Both windows hold the newest lines of what they show, with no hole, so the lines above them
                // are the total less the window. (A short page proves nothing: pages also stop at a byte bound.)
                let total = if searching() {
                    state.found_total.get_untracked().unwrap_or(0)
                } else {
                    state.log_levels.get_untracked().total()
                };
                more_above.set(total > window.with_untracked(Vec::len) as i64);
            }
            loading.set(false);
        });
    };
    let visible = move || if searching() { state.found.get() } else { state.logs.get() };
    let more_above = move || if searching() { state.found_more_above.get() } else { state.more_above.get() };

    // One click shows one level only; the same click again shows every level. Shift- or Ctrl-click adds or
    // removes a level from the choice.
    let choose_level = move |level: LogLevel, add: bool| {
        filter.update(|filter| {
            let levels = &mut filter.levels;
            if add {
                if levels.is_empty() {
                    levels.extend(LogLevel::ALL.into_iter().filter(|l| *l != level));
                } else if let Some(index) = levels.iter().position(|l| *l == level) {
                    levels.remove(index);
                } else {
                    levels.push(level);
                }
                if levels.len() == LogLevel::ALL.len() {
                    levels.clear();
                }
            } else if levels.as_slice() == [level] {
                levels.clear();
            } else {
                *levels = vec![level];
            }
        })
    };
    let level_button = move |level: LogLevel| {
        let chosen = move || filter.with(|f| f.levels.contains(&level));
        view! {
            <button
                class=format!("level-toggle level-{}", level.as_str())
                class:chosen=chosen
                aria-pressed=move || chosen().to_string()
                title=format!("Show only {} lines (Shift-click to add or remove a level)", level.as_str())
                on:click=move |ev| choose_level(level, ev.shift_key() || ev.ctrl_key() || ev.meta_key())
            >
                {level.as_str()}
                <span class="count">{move || thousands(state.log_levels.get().get(level))}</span>
            </button>
        }
    };
    let on_text = move |ev| {
        let text = event_target_value(&ev);
        typed.set(text.clone());
        set_timeout(
            move || {
                // Only the text the reader stopped at is searched.
                if typed.get_untracked() == text {
                    filter.update(|filter| *filter = LogFilter::levels(&filter.levels).containing(&text));
                }
            },
            SEARCH_PAUSE,
        );
    };
    let summary = move || {
        if !searching() {
            return format!(
                "{} of {} lines loaded",
                thousands(state.logs.get().len() as i64),
                thousands(state.log_levels.get().total())
            );
        }
        match state.found_total.get() {
            None => "searching the whole run…".to_owned(),
            Some(total) => format!(
                "{} matching {} in the whole run · {} shown",
                thousands(total),
                if total == 1 { "line" } else { "lines" },
                thousands(state.found.get().len() as i64)
            ),
        }
    };
    view! {
        <div class="log-toolbar">
            <button
                class="level-toggle level-all"
                class:chosen=move || filter.with(|f| f.levels.is_empty())
                title="Show every level"
                on:click=move |_| filter.update(|filter| filter.levels.clear())
            >
                "all"
                <span class="count">{move || thousands(state.log_levels.get().total())}</span>
            </button>
            {LogLevel::ALL.into_iter().map(level_button).collect_view()}
            <input
                class="filter"
                type="search"
                placeholder="search the whole run…"
                aria-label="Search log lines"
                prop:value=move || typed.get()
                on:input=on_text
            />
            <span class="spacer"></span>
            <span class="muted log-summary">{summary}</span>
            <button
                class="ghost"
                class:active=move || follow_tail.get()
                title="Follow new lines (turns off when you scroll up)"
                on:click=move |_| follow_tail.set(true)
            >
                "⤓ follow"
            </button>
        </div>
        {move || search_error.get().map(|error| view! { <p class="error-text">{error}</p> })}
        <div class="log-scroller" node_ref=scroller on:scroll=move |_| {
            if let Some(element) = scroller.get() {
                let at_bottom = element.scroll_top() + element.client_height() >= element.scroll_height() - 24;
                follow_tail.set(at_bottom);
            }
        }>
            <Show when=more_above>
                <button class="ghost load-earlier" disabled=move || loading.get() on:click=load_earlier>
                    {move || if searching() { "↑ load earlier matches" } else { "↑ load earlier lines" }}
                </button>
            </Show>
            <table class="logs">
                <tbody>
                    <For each=visible key=|log| log.seq let:log>
                        <LogLine log />
                    </For>
                </tbody>
            </table>
            <Show when=move || visible().is_empty()>
                <p class="muted empty-logs">
                    {move || {
                        if !searching() {
                            "No log lines yet."
                        } else if state.found_total.get().is_none() {
                            "Searching…"
                        } else {
                            "No line matches."
                        }
                    }}
                </p>
            </Show>
        </div>
    }
}

#[component]
fn LogLine(log: LogRecord) -> impl IntoView {
    let metadata = log.metadata.map(|metadata| {
        let text = serde_json::to_string_pretty(&metadata).unwrap_or_default();
        let preview: String = metadata.to_string().chars().take(60).collect();
        view! {
            <details class="metadata">
                <summary class="mono muted">{preview}</summary>
                <pre>{text}</pre>
            </details>
        }
    });
    view! {
        <tr class=format!("log level-{}", log.level.as_str()) data-seq=log.seq>
            <td class="ts mono" title=utc_stamp(log.ts)>{log.ts.format("%H:%M:%S%.3f").to_string()}</td>
            <td class="lvl mono">{log.level.as_str().to_uppercase()}</td>
            <td class="msg mono">{log.message} {metadata}</td>
        </tr>
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResultSort {
    Time,
    Key,
}

#[component]
fn ResultView(state: RunState) -> impl IntoView {
    let sort = RwSignal::new(ResultSort::Time);
    let sorted = move || {
        let mut results = state.results.get();
        if sort.get() == ResultSort::Key {
            results.sort_by(|a, b| natural_key(&a.key).cmp(&natural_key(&b.key)).then(a.seq.cmp(&b.seq)));
        }
        results
    };
    view! {
        <div class="log-toolbar">
            <span class="muted">"Sort by"</span>
            <button class="ghost" class:active=move || sort.get() == ResultSort::Time on:click=move |_| sort.set(ResultSort::Time)>
                "time"
            </button>
            <button class="ghost" class:active=move || sort.get() == ResultSort::Key on:click=move |_| sort.set(ResultSort::Key)>
                "key"
            </button>
        </div>
        <table class="grid results">
            <thead>
                <tr>
                    <th>"Key"</th>
                    <th>"Time"</th>
                    <th>"Value"</th>
                </tr>
            </thead>
            <tbody>
                <For each=sorted key=|result| result.seq let:result>
                    <tr data-key=result.key.clone()>
                        <td class="mono">{result.key.clone()}</td>
                        <td class="mono muted" title=utc_stamp(result.ts)>{result.ts.format("%H:%M:%S").to_string()}</td>
                        <td>
                            <JsonTree value=result.value.clone() />
                        </td>
                    </tr>
                </For>
            </tbody>
        </table>
        <Show when=move || state.more_results.get()>
            <button class="ghost" on:click=move |_| {
                let run_id = state.run.get_untracked().id;
                let after = state.results_cursor.get_untracked();
                let through = state.results_through;
                leptos::task::spawn_local(async move {
                    if let Ok(more) = get_more_results(run_id, after, through).await {
                        state.more_results.set(more.len() as u32 == RESULT_PAGE);
                        if let Some(last) = more.last() {
                            state.results_cursor.set(last.seq);
                        }
                        // Paged results go before the ones that arrived live (all of which are newer).
                        state.results.update(|shown| {
                            let live_from = shown.iter().position(|r| r.seq > through).unwrap_or(shown.len());
                            shown.splice(live_from..live_from, more);
                        });
                    }
                });
            }>
                "load more results"
            </button>
        </Show>
        <Show when=move || state.results.get().is_empty()>
            <p class="muted">"No results yet."</p>
        </Show>
    }
}

/// A piece of a result key: text, or a whole number compared by value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum KeyChunk {
    Text(String),
    Number(u64),
}

/// Sort key that puts `loss/2` before `loss/10`.
fn natural_key(key: &str) -> Vec<KeyChunk> {
    let mut chunks = Vec::new();
    let mut rest = key;
    while let Some(first) = rest.chars().next() {
        let is_digit = first.is_ascii_digit();
        let end = rest.find(|c: char| c.is_ascii_digit() != is_digit).unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(end);
        chunks.push(match chunk.parse::<u64>() {
            Ok(number) if is_digit => KeyChunk::Number(number),
            _ => KeyChunk::Text(chunk.to_owned()),
        });
        rest = tail;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_naturally() {
        let mut keys = vec!["loss/10", "loss/2", "accuracy", "loss/1"];
        keys.sort_by_key(|k| natural_key(k));
        assert_eq!(keys, vec!["accuracy", "loss/1", "loss/2", "loss/10"]);
    }
}
