//! `/runs` — every run across instances, newest first, filtered by experiment, instance or status, paged; pick
//! runs with the checkboxes and compare them.

use crate::components::{ErrorPanel, StatusBadge};
use crate::error::AppError;
use crate::format::{relative_time, utc_stamp};
use athanor_core::{RunId, RunListing, RunStatus};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};
use serde::{Deserialize, Serialize};

/// Runs per page.
const PAGE_SIZE: i64 = 50;

/// The runs picked for comparison anywhere in the app; the header's "Compare (n)" shows them.
#[derive(Clone, Copy)]
pub struct Selection(pub RwSignal<Vec<RunId>>);

impl Selection {
    /// The compare page's address for the current pick.
    pub fn compare_href(&self) -> String {
        let ids: Vec<String> = self.0.get().iter().map(RunId::to_string).collect();
        format!("/compare?runs={}", ids.join(","))
    }
}

/// A checkbox that adds or removes a run from the comparison.
#[component]
pub fn SelectRun(run_id: RunId) -> impl IntoView {
    let selection = expect_context::<Selection>().0;
    view! {
        <input
            type="checkbox"
            class="select-run"
            aria-label="Select for comparison"
            prop:checked=move || selection.get().contains(&run_id)
            on:change=move |ev| {
                let checked = event_target_checked(&ev);
                selection.update(|picked| {
                    picked.retain(|id| *id != run_id);
                    if checked {
                        picked.push(run_id);
                    }
                });
            }
        />
    }
}

/// A page of runs and how many match in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunsPage {
    /// The runs on this page.
    pub runs: Vec<RunListing>,
    /// Runs matching the filters in all.
    pub total: i64,
}

/// A filtered page of runs across instances. Empty filter strings mean "any".
#[server(endpoint = "list_runs")]
pub async fn list_runs(
    experiment: String,
    instance_id: String,
    status: String,
    page: i64,
) -> Result<RunsPage, AppError> {
    let instance = match instance_id.trim() {
        "" => None,
        text => Some(athanor_core::InstanceId::parse(text)?),
    };
    let status = match status.trim() {
        "" => None,
        text => Some(text.parse::<RunStatus>().map_err(|e| AppError::invalid_field("status", e.to_string()))?),
    };
    let experiment = Some(experiment.trim().to_owned()).filter(|e| !e.is_empty());
    let query = athanor_service::RunQuery { experiment, instance, status, ..Default::default() };
    let (runs, total) = crate::state::service()?.runs_page(&query, page, PAGE_SIZE).await?;
    Ok(RunsPage { runs, total })
}

/// The runs page.
#[component]
pub fn RunsListPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.read().get(name).unwrap_or_default();
    let page = move || param("page").parse::<i64>().unwrap_or(0).max(0);
    let data = Resource::new(
        move || (param("experiment"), param("instance"), param("status"), page()),
        |(experiment, instance, status, page)| list_runs(experiment, instance, status, page),
    );
    let navigate = use_navigate();
    let set_param = move |name: &'static str, value: String| {
        let mut pairs: Vec<(String, String)> = ["experiment", "instance", "status"]
            .into_iter()
            .map(|key| (key.to_owned(), if key == name { value.clone() } else { param(key) }))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        pairs.sort();
        let query: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        navigate(&format!("/runs?{}", query.join("&")), Default::default());
    };
    let selection = expect_context::<Selection>();
    view! {
        <section class="page-head title-row">
            <h1>"Runs"</h1>
            <Show when=move || !param("instance").is_empty()>
                <span class="muted">"of one instance · " <A href="/runs">"show all"</A></span>
            </Show>
            <span class="spacer"></span>
            <select
                aria-label="Filter by status"
                prop:value=move || param("status")
                on:change={
                    let set_param = set_param.clone();
                    move |ev| set_param("status", event_target_value(&ev))
                }
            >
                <option value="">"any status"</option>
                {RunStatus::ALL.into_iter().map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> }).collect_view()}
            </select>
            <input
                class="filter"
                placeholder="experiment…"
                aria-label="Filter by experiment"
                prop:value=move || param("experiment")
                on:change=move |ev| set_param("experiment", event_target_value(&ev))
            />
            <a
                class="button primary"
                class:disabled=move || selection.0.get().len() < 2
                href=move || selection.compare_href()
            >
                {move || format!("Compare selected ({})", selection.0.get().len())}
            </a>
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading runs…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>
                {move || Suspend::new(async move {
                    data.await.map(|data| view! { <RunsTable data page=page() /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn RunsTable(data: RunsPage, page: i64) -> impl IntoView {
    let now = chrono::Utc::now();
    let query = use_query_map();
    let link_to_page = move |target: i64| {
        let mut parts: Vec<String> = ["experiment", "instance", "status"]
            .into_iter()
            .filter_map(|k| query.read_untracked().get(k).filter(|v| !v.is_empty()).map(|v| format!("{k}={v}")))
            .collect();
        parts.push(format!("page={target}"));
        format!("/runs?{}", parts.join("&"))
    };
    let pages = (data.total + PAGE_SIZE - 1) / PAGE_SIZE;
    let rows = data
        .runs
        .into_iter()
        .map(|listing| {
            let run = listing.run;
            let (duration, error) = crate::format::duration_and_error(&run, now);
            view! {
                <tr>
                    <td><SelectRun run_id=run.id /></td>
                    <td><StatusBadge status=run.status /></td>
                    <td>
                        <A href=format!("/runs/{}", run.id)>{listing.instance_name.clone()} " · " {crate::format::short_id(run.id)}</A>
                    </td>
                    <td class="mono">{listing.experiment.clone()}</td>
                    <td title=utc_stamp(run.created_at)>{relative_time(run.created_at, now)}</td>
                    <td class="num mono">{duration}</td>
                    <td class="error-text">{error}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="muted">{format!("{} runs", crate::format::thousands(data.total))}</p>
        <table class="grid runs-all">
            <thead>
                <tr>
                    <th></th>
                    <th>"Status"</th>
                    <th>"Run"</th>
                    <th>"Experiment"</th>
                    <th>"Created"</th>
                    <th class="num">"Duration"</th>
                    <th>"Error"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
        <nav class="pager">
            {(page > 0).then(|| view! { <A href=link_to_page(page - 1)>"← newer"</A> })}
            <span class="muted">{format!("page {} of {}", page + 1, pages.max(1))}</span>
            {(page + 1 < pages).then(|| view! { <A href=link_to_page(page + 1)>"older →"</A> })}
        </nav>
    }
}
