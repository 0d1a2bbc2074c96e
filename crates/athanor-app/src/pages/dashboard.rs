//! `/` — every instance with its experiment, run count and latest run.

use crate::calls::StartRun;
use crate::components::{on_shortcut, refresh_on_lifecycle, ErrorPanel, StartForm, StatusBadge};
use crate::error::AppError;
use crate::format::{relative_time, utc_stamp};
use athanor_core::InstanceSummary;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

/// Every instance, newest first, with a summary of its runs.
#[server(endpoint = "list_instances")]
pub async fn list_instances() -> Result<Vec<InstanceSummary>, AppError> {
    Ok(crate::state::service()?.list_instances().await?)
}

/// The dashboard page.
#[component]
pub fn Dashboard() -> impl IntoView {
    let start = ServerAction::<StartRun>::new();
    let instances = Resource::new(move || start.version().get(), |_| list_instances());
    provide_context(start);
    refresh_on_lifecycle(move || instances.refetch(), |_| true);
    let navigate = use_navigate();
    on_shortcut("n", move || navigate("/instances/new", Default::default()));
    view! {
        <section class="page-head title-row">
            <h1>"Instances"</h1>
            <span class="spacer"></span>
            <A href="/instances/new" attr:class="button primary" attr:title="New instance (n)">
                "+ New instance "
                <kbd>"n"</kbd>
            </A>
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
                <p>"No instances yet: an instance is an experiment with a saved configuration."</p>
                <A href="/instances/new" attr:class="button primary">"Create your first instance"</A>
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
                    <A href=format!("/runs/{}", run.id)>
                    <StatusBadge status=run.status />
                    " "
                    <time datetime=run.created_at.to_rfc3339() title=utc_stamp(run.created_at)>
                        {relative_time(run.created_at, now)}
                    </time>
                    </A>
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
                    <td class="actions">
                        <StartForm instance_id=summary.instance.id />
                    </td>
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
                    <th></th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
