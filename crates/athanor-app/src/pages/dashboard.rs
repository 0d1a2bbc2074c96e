//! `/` — every instance with its experiment, run count and latest run.

use crate::app::ErrorPanel;
use crate::error::AppError;
use crate::format::{relative_time, utc_stamp};
use crate::pages::StatusBadge;
use athanor_core::InstanceSummary;
use leptos::prelude::*;
use leptos_router::components::A;

/// Every instance, newest first, with a summary of its runs.
#[server]
pub async fn list_instances() -> Result<Vec<InstanceSummary>, AppError> {
    let state = crate::server::state()?;
    Ok(state.store.list_instances().await?)
}

/// The dashboard page.
#[component]
pub fn Dashboard() -> impl IntoView {
    let instances = Resource::new(|| (), |_| list_instances());
    view! {
        <section class="page-head">
            <h1>"Instances"</h1>
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading instances…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>
                {move || Suspend::new(async move {
                    instances.await.map(|list| view! { <InstanceTable list /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn InstanceTable(list: Vec<InstanceSummary>) -> impl IntoView {
    if list.is_empty() {
        return view! {
            <section class="empty">
                <p>"No instances yet. Restart the server on an empty database to get the demo instances."</p>
            </section>
        }
        .into_any();
    }
    let now = chrono::Utc::now();
    let rows = list
        .into_iter()
        .map(|summary| {
            let href = format!("/instances/{}", summary.instance.id);
            let last_run = summary.last_run.map(|run| {
                view! {
                    <StatusBadge status=run.status />
                    " "
                    <time datetime=run.created_at.to_rfc3339() title=utc_stamp(run.created_at)>
                        {relative_time(run.created_at, now)}
                    </time>
                }
                .into_any()
            });
            view! {
                <tr>
                    <td>
                        <A href=href>{summary.instance.name.to_string()}</A>
                    </td>
                    <td class="mono">{summary.instance.experiment.to_string()}</td>
                    <td class="num">{summary.run_count}</td>
                    <td>{last_run.unwrap_or_else(|| view! { <span class="muted">"never run"</span> }.into_any())}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid instances">
            <thead>
                <tr>
                    <th>"Name"</th>
                    <th>"Experiment"</th>
                    <th class="num">"Runs"</th>
                    <th>"Last run"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
