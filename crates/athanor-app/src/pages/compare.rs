//! `/compare?runs=a,b,c` — runs side by side: what differs in configuration, results aligned by key with the best
//! and worst of each numeric row marked, numeric series charted, and CSV/JSON export. The URL is the selection, so
//! a comparison can be shared by copying it.

use crate::components::{ErrorPanel, StatusBadge};
use crate::error::AppError;
use crate::format::clock_duration;
use crate::pages::chart::LineChart;
use athanor_core::compare::{best_and_worst, lower_is_better, Comparison, Row, RunColumn};
use athanor_core::RunId;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use serde_json::Value;
use std::collections::HashMap;

/// The comparison of the runs listed in `runs` (comma-separated ids, as in the page's URL).
#[server(endpoint = "get_comparison")]
pub async fn get_comparison(runs: String) -> Result<Comparison, AppError> {
    let ids = RunId::parse_list(&runs).map_err(|error| AppError::invalid_field("runs", error.to_string()))?;
    Ok(crate::state::service()?.compare(&ids).await?)
}

/// Live: each compared run that is still going is followed once for the life of the page (from the last result
/// the comparison saw), and a new result or a status change reloads the comparison — throttled, so a busy run
/// costs at most two reloads a second. Log lines alone reload nothing.
fn follow_running_runs(data: Resource<Result<Comparison, AppError>>) {
    #[cfg(feature = "hydrate")]
    {
        use crate::live::{follow, LiveEvent, WatchRequest};
        use athanor_core::RunEvent;
        use std::collections::HashSet;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        // Follows belong to the page, not to the effect: an effect's re-run would otherwise end them.
        let page = Owner::current();
        let followed = StoredValue::new(HashSet::<RunId>::new());
        let reload = crate::components::throttled(500, move || data.refetch());
        Effect::new(move |_| {
            let Some(Ok(comparison)) = data.get() else { return };
            for column in comparison.runs.iter().filter(|c| !c.status.is_terminal()) {
                if followed.with_value(|seen| seen.contains(&column.id)) {
                    continue;
                }
                followed.update_value(|seen| {
                    seen.insert(column.id);
                });
                let (run_id, after_seq) = (column.id, column.last_seq);
                let finished = Arc::new(AtomicBool::new(false));
                let done = finished.clone();
                let reload = reload.clone();
                let start = move || {
                    follow(
                        move || WatchRequest::Run { run_id, after_seq },
                        move |event| {
                            let LiveEvent::Run(event) = event else { return };
                            match event {
                                RunEvent::Status(run) => {
                                    if run.status.is_terminal() {
                                        finished.store(true, Ordering::Relaxed);
                                    }
                                    reload();
                                }
                                RunEvent::Records { results, .. } if !results.is_empty() => reload(),
                                _ => {}
                            }
                        },
                        move || done.load(Ordering::Relaxed),
                    )
                };
                match &page {
                    Some(owner) => owner.with(start),
                    None => start(),
                }
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = data;
}

/// The compare page.
#[component]
pub fn ComparePage() -> impl IntoView {
    let query = use_query_map();
    let runs = move || query.read().get("runs").unwrap_or_default();
    let data = Resource::new(runs, get_comparison);
    follow_running_runs(data);
    view! {
        <section class="page-head">
            <nav class="crumbs">
                <a href="/runs">"Runs"</a>
                " / "
                <span>"Compare"</span>
            </nav>
            <div class="title-row">
                <h1>"Compare runs"</h1>
                <span class="spacer"></span>
                <a class="button" href=move || format!("/export/compare.csv?runs={}", runs()) download>"⤓ CSV"</a>
                <a class="button" href=move || format!("/export/compare.json?runs={}", runs()) download>"⤓ JSON"</a>
            </div>
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading comparison…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>
                {move || Suspend::new(async move {
                    data.await.map(|comparison| view! { <CompareView comparison /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn CompareView(comparison: Comparison) -> impl IntoView {
    let only_differences = RwSignal::new(true);
    let columns = comparison.runs.clone();
    let config = StoredValue::new(comparison.config);
    let visible_config = move || {
        let only = only_differences.get();
        config.with_value(|rows| rows.iter().filter(|row| !only || row.differs).cloned().collect::<Vec<_>>())
    };
    let differing = config.with_value(|rows| rows.iter().filter(|r| r.differs).count());
    let total_config = config.with_value(Vec::len);
    let names: Vec<String> =
        columns.iter().map(|c| format!("{} · {}", c.instance_name, crate::format::short_id(c.id))).collect();

    view! {
        <section class="card compare-section">
            <div class="title-row">
                <h2>"Configuration"</h2>
                <span class="muted">{format!("{differing} of {total_config} keys differ")}</span>
                <span class="spacer"></span>
                <label class="toggle">
                    <input
                        type="checkbox"
                        prop:checked=move || only_differences.get()
                        on:change=move |ev| only_differences.set(event_target_checked(&ev))
                    />
                    " only differences"
                </label>
            </div>
            <div class="scroll-x">
                <table class="grid compare config-diff">
                    <thead>
                        <tr>
                            <th>"Key"</th>
                            {run_headers(&columns)}
                        </tr>
                    </thead>
                    <tbody>
                        <For each=visible_config key=|row| row.key.clone() let:row>
                            <tr class:differs=row.differs data-key=row.key.clone()>
                                <th class="mono">{row.key.clone()}</th>
                                {row.values.iter().map(|value| view! { <td class="mono">{cell(value)}</td> }).collect_view()}
                            </tr>
                        </For>
                    </tbody>
                </table>
            </div>
            <Show when=move || visible_config().is_empty()>
                <p class="muted">"The configurations are identical."</p>
            </Show>
        </section>
        <section class="card compare-section">
            <h2>"Results"</h2>
            <ResultsTable rows=comparison.results columns=columns.clone() />
        </section>
        <section class="compare-section">
            <h2>"Charts"</h2>
            {if comparison.series.is_empty() {
                view! { <p class="muted">"No numeric series in these results."</p> }.into_any()
            } else {
                view! {
                    <div class="charts">
                        {comparison
                            .series
                            .into_iter()
                            .map(|series| view! { <LineChart series names=names.clone() /> })
                            .collect_view()}
                    </div>
                }
                .into_any()
            }}
        </section>
    }
}

/// One header cell per compared run: instance, short id, status, duration.
fn run_headers(columns: &[RunColumn]) -> impl IntoView + use<> {
    columns
        .iter()
        .map(|column| {
            let duration = column
                .duration_seconds
                .map(|s| clock_duration(chrono::Duration::milliseconds((s * 1000.0) as i64)))
                .unwrap_or_default();
            let name = column.instance_name.clone();
            let short = crate::format::short_id(column.id);
            view! {
                <th class="run-col">
                    <A href=format!("/runs/{}", column.id)>{name}</A>
                    <div class="mono muted">{short}</div>
                    <StatusBadge status=column.status />
                    <span class="muted mono">" " {duration}</span>
                </th>
            }
        })
        .collect_view()
}

fn cell(value: &Option<Value>) -> String {
    match value {
        None => "—".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => match number.as_f64() {
            Some(f) if number.is_f64() => format!("{}", (f * 1e6).round() / 1e6),
            _ => number.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

#[component]
fn ResultsTable(rows: Vec<Row>, columns: Vec<RunColumn>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No results recorded."</p> }.into_any();
    }
    // The reader's choice of direction per key, remembered in this browser.
    let overrides = RwSignal::new(load_directions());
    let rows = rows
        .into_iter()
        .map(|row| {
            let numeric = row.is_numeric();
            let key = row.key.clone();
            let guess = lower_is_better(&key);
            let key_for_lower = key.clone();
            let lower = Memo::new(move |_| overrides.with(|o| o.get(&key_for_lower).copied().unwrap_or(guess)));
            let row = StoredValue::new(row);
            let marks = move || if numeric { row.with_value(|r| best_and_worst(r, lower.get())) } else { None };
            let toggle_key = key.clone();
            let toggle = move |_| {
                let next = !lower.get_untracked();
                overrides.update(|o| {
                    o.insert(toggle_key.clone(), next);
                });
                save_directions(&overrides.get_untracked());
            };
            let cells = move || {
                let marks = marks();
                row.with_value(|r| {
                    // Ties share the mark: every run with the best value is best.
                    let number = |i: usize| r.values.get(i).and_then(|v| v.as_ref()?.as_f64());
                    let best = marks.and_then(|(best, _)| number(best));
                    let worst = marks.and_then(|(_, worst)| number(worst));
                    r.values
                        .iter()
                        .enumerate()
                        .map(|(i, value)| {
                            let this = number(i);
                            let class = if this.is_some() && this == best {
                                "num best"
                            } else if this.is_some() && this == worst {
                                "num worst"
                            } else if numeric {
                                "num"
                            } else {
                                ""
                            };
                            view! { <td class=format!("mono {class}")>{cell(value)}</td> }
                        })
                        .collect_view()
                })
            };
            view! {
                <tr class:differs=row.with_value(|r| r.differs) data-key=key.clone()>
                    <th class="mono">
                        {key.clone()}
                        {numeric
                            .then(|| {
                                view! {
                                    <button class="ghost direction" title="Which way is better for this row" on:click=toggle>
                                        {move || if lower.get() { "↓ lower is better" } else { "↑ higher is better" }}
                                    </button>
                                }
                            })}
                    </th>
                    {cells}
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="scroll-x">
            <table class="grid compare results-diff">
                <thead>
                    <tr>
                        <th>"Result"</th>
                        {run_headers(&columns)}
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

const DIRECTIONS_KEY: &str = "athanor.compare.directions";

fn load_directions() -> HashMap<String, bool> {
    #[cfg(feature = "hydrate")]
    {
        let stored = window().local_storage().ok().flatten().and_then(|s| s.get_item(DIRECTIONS_KEY).ok().flatten());
        if let Some(map) = stored.and_then(|text| serde_json::from_str(&text).ok()) {
            return map;
        }
    }
    let _ = DIRECTIONS_KEY;
    HashMap::new()
}

fn save_directions(directions: &HashMap<String, bool>) {
    #[cfg(feature = "hydrate")]
    {
        if let (Some(storage), Ok(text)) = (window().local_storage().ok().flatten(), serde_json::to_string(directions))
        {
            // Not remembering a preference is harmless; the page still works.
            let _ = storage.set_item(DIRECTIONS_KEY, &text);
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = directions;
}
