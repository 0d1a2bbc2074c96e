//! `/workers` — the processes that execute runs from a shared PostgreSQL queue: capacity, load, what each can run,
//! last heartbeat.

use crate::components::ErrorPanel;
use crate::error::AppError;
use crate::format::{relative_time, utc_stamp};
use athanor_core::api::WorkerNode;
use leptos::prelude::*;

/// A node whose heartbeat is older than this is shown as silent: it renews leases every 10 s, so three missed
/// beats mean it is stopped, frozen or cut off (its runs fail when their leases run out).
const SILENT_AFTER: chrono::Duration = chrono::Duration::seconds(30);

/// Every worker node, most recent heartbeat first.
#[server(endpoint = "list_workers")]
pub async fn list_workers() -> Result<Vec<WorkerNode>, AppError> {
    Ok(crate::state::service()?.worker_nodes().await?)
}

/// The workers page.
#[component]
pub fn WorkersPage() -> impl IntoView {
    let nodes = Resource::new(|| (), |_| list_workers());
    view! {
        <section class="page-head title-row">
            <h1>"Workers"</h1>
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading workers…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>
                {move || Suspend::new(async move { nodes.await.map(|list| view! { <WorkerTable list /> }) })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn WorkerTable(list: Vec<WorkerNode>) -> impl IntoView {
    if list.is_empty() {
        return view! {
            <section class="empty">
                <p>
                    "No worker nodes. This server executes every run itself. With PostgreSQL, start "
                    <code>"DATABASE_URL=postgres://… athanor worker"</code>
                    " on any machine to add its cores to the queue."
                </p>
            </section>
        }
        .into_any();
    }
    let now = chrono::Utc::now();
    let rows = list
        .into_iter()
        .map(|node| {
            let state = match node.stopped_at {
                Some(_) => ("stopped", "muted"),
                None if now - node.heartbeat_at > SILENT_AFTER => ("silent", "error-text"),
                None => ("up", "ok-text"),
            };
            view! {
                <tr>
                    <td class="mono">{node.name}</td>
                    <td class=state.1>{state.0}</td>
                    <td class="num">{format!("{} / {}", node.running, node.capacity)}</td>
                    <td class="mono small">{node.experiments.join(", ")}</td>
                    <td>
                        <time datetime=node.heartbeat_at.to_rfc3339() title=utc_stamp(node.heartbeat_at)>
                            {relative_time(node.heartbeat_at, now)}
                        </time>
                    </td>
                    <td class="muted">{format!("{} · pid {}", node.host, node.pid)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid workers">
            <thead>
                <tr>
                    <th>"Node"</th>
                    <th>"State"</th>
                    <th class="num">"Running / capacity"</th>
                    <th>"Can run"</th>
                    <th>"Last heartbeat"</th>
                    <th>"Where"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
