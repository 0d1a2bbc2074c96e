//! `/runs/:id` — one run: status, progress, timing and Cancel; logs and results streaming in live.
//!
//! The page loads a window (the log tail, the first results, exact totals) in one round trip, renders it on the
//! server, and once hydrated follows the run from the last `seq` it shows. Only a bounded window of log lines
//! lives in the DOM, so a run with a million lines opens as fast as one with ten; earlier lines page in on demand.

use crate::calls::CancelRun;
use crate::components::{ErrorPanel, StatusBadge};
use crate::error::AppError;
use crate::format::{clock_duration, config_rows, short_id, thousands, utc_stamp};
use crate::pages::json_tree::JsonTree;
use athanor_core::api::RunOverview;
use athanor_core::{LogLevel, LogRecord, Progress, ResultRecord, Run, RunId};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

// The window and the resume cursor are only touched by the live stream, which exists in the browser build.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
/// Log lines kept in the page at most; older ones are dropped from view (not from the run) and page back in.
const LOG_WINDOW: usize = 1_000;
/// Lines fetched per "load earlier".
const LOG_PAGE: u32 = 200;
/// Results loaded with the page, and per "load more".
const RESULT_PAGE: u32 = 1_000;

/// Load a run's page: the log tail and first results at one cursor, from which the live stream resumes.
#[server(endpoint = "get_run_page")]
pub async fn get_run_page(run_id: RunId) -> Result<RunOverview, AppError> {
    Ok(crate::state::service()?.run_overview(run_id, LOG_PAGE, RESULT_PAGE).await?)
}

/// Earlier log lines, before `before_seq`, at the given levels (all when empty).
#[server(endpoint = "get_earlier_logs")]
pub async fn get_earlier_logs(
    run_id: RunId,
    before_seq: i64,
    levels: Vec<LogLevel>,
) -> Result<Vec<LogRecord>, AppError> {
    Ok(crate::state::service()?.logs_before(run_id, before_seq, &levels, LOG_PAGE).await?)
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
    log_total: RwSignal<i64>,
    results: RwSignal<Vec<ResultRecord>>,
    result_total: RwSignal<i64>,
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    last_seq: RwSignal<i64>,
    /// Whether lines older than the first shown exist (and can be loaded).
    more_above: RwSignal<bool>,
    /// Whether the reader follows the newest lines (off once they scroll up).
    follow_tail: RwSignal<bool>,
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
        log_total: RwSignal::new(data.log_total),
        results: RwSignal::new(data.results),
        result_total: RwSignal::new(data.result_total),
        last_seq: RwSignal::new(data.last_seq),
        more_above: RwSignal::new(more_above),
        follow_tail: RwSignal::new(true),
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
                            state.log_total.update(|total| *total += logs.len() as i64);
                            // While the reader follows, the window slides; while they read older lines, it grows
                            // (up to a hard cap) so the lines under their eyes are not pulled away.
                            let limit = if state.follow_tail.get_untracked() { LOG_WINDOW } else { LOG_WINDOW * 5 };
                            state.logs.update(|shown| {
                                shown.extend(logs);
                                if shown.len() > limit {
                                    shown.drain(..shown.len() - limit);
                                    state.more_above.set(true);
                                }
                            });
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
    let tab_button = move |which: Tab, label: &'static str, count: Option<RwSignal<i64>>| {
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
        <RunHeader state instance_name=data.instance_name />
        <nav class="tabs">
            {tab_button(Tab::Logs, "Logs", Some(state.log_total))}
            {tab_button(Tab::Results, "Results", Some(state.result_total))}
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
fn RunHeader(state: RunState, instance_name: String) -> impl IntoView {
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

#[component]
fn LogView(state: RunState, run_id: RunId) -> impl IntoView {
    let levels = RwSignal::new(LogLevel::ALL.to_vec());
    let text = RwSignal::new(String::new());
    let follow_tail = state.follow_tail;
    let loading = RwSignal::new(false);
    let scroller = NodeRef::<leptos::html::Div>::new();

    // Follow mode: after new lines render, jump to the bottom unless the reader scrolled up.
    Effect::new(move |_| {
        state.logs.track();
        if follow_tail.get_untracked() {
            // The new rows render in the same tick as this effect; scroll once the browser has laid them out.
            request_animation_frame(move || {
                if let Some(element) = scroller.get_untracked() {
                    element.set_scroll_top(element.scroll_height());
                }
            });
        }
    });
    let on_scroll = move |_| {
        if let Some(element) = scroller.get() {
            let at_bottom = element.scroll_top() + element.client_height() >= element.scroll_height() - 24;
            follow_tail.set(at_bottom);
        }
    };
    let load_earlier = move |_| {
        let Some(first) = state.logs.get_untracked().first().map(|l| l.seq) else { return };
        loading.set(true);
        leptos::task::spawn_local(async move {
            // All levels, filtered in the page: the window stays contiguous whatever the level toggles say.
            if let Ok(earlier) = get_earlier_logs(run_id, first, Vec::new()).await {
                // The window moved meanwhile (live lines trimmed its top): merging would leave a hole.
                if state.logs.get_untracked().first().map(|l| l.seq) != Some(first) {
                    loading.set(false);
                    return;
                }
                state.more_above.set(earlier.len() as u32 == LOG_PAGE);
                follow_tail.set(false);
                state.logs.update(|shown| {
                    let mut merged = earlier;
                    merged.append(shown);
                    *shown = merged;
                });
            }
            loading.set(false);
        });
    };
    let visible = move || {
        let wanted = levels.get();
        let needle = text.get().to_lowercase();
        state
            .logs
            .get()
            .into_iter()
            .filter(|log| wanted.contains(&log.level))
            .filter(|log| needle.is_empty() || log.message.to_lowercase().contains(&needle))
            .collect::<Vec<_>>()
    };
    let level_toggle = move |level: LogLevel| {
        view! {
            <button
                class=format!("level-toggle level-{}", level.as_str())
                class:off=move || !levels.get().contains(&level)
                aria-pressed=move || levels.get().contains(&level).to_string()
                on:click=move |_| {
                    levels
                        .update(|wanted| {
                            if let Some(index) = wanted.iter().position(|l| *l == level) {
                                wanted.remove(index);
                            } else {
                                wanted.push(level);
                            }
                        })
                }
            >
                {level.as_str()}
            </button>
        }
    };
    view! {
        <div class="log-toolbar">
            {LogLevel::ALL.into_iter().map(level_toggle).collect_view()}
            <input
                class="filter"
                type="search"
                placeholder="filter text…"
                prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
            />
            <span class="spacer"></span>
            <span class="muted">
                {move || format!("{} of {} lines loaded", thousands(state.logs.get().len() as i64), thousands(state.log_total.get()))}
            </span>
            <button
                class="ghost"
                class:active=move || follow_tail.get()
                title="Follow new lines (turns off when you scroll up)"
                on:click=move |_| follow_tail.set(true)
            >
                "⤓ follow"
            </button>
        </div>
        <div class="log-scroller" node_ref=scroller on:scroll=on_scroll>
            <Show when=move || state.more_above.get()>
                <button class="ghost load-earlier" disabled=move || loading.get() on:click=load_earlier>
                    "↑ load earlier lines"
                </button>
            </Show>
            <table class="logs">
                <tbody>
                    <For each=visible key=|log| log.seq let:log>
                        <LogLine log />
                    </For>
                </tbody>
            </table>
            <Show when=move || state.logs.get().is_empty()>
                <p class="muted empty-logs">"No log lines yet."</p>
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
