//! `/instances/:id` — one instance: its configuration and its runs.

use crate::calls::{get_instance_details, DeleteInstance, StartRun};
use crate::components::{on_shortcut, refresh_on_lifecycle, ConfirmDialog, ErrorPanel, StartForm, StatusBadge};
use crate::format::{config_rows, relative_time, short_id, utc_stamp};
use athanor_core::api::InstanceDetails;
use athanor_core::{InstanceId, Run};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

/// The instance page.
#[component]
pub fn InstancePage() -> impl IntoView {
    let params = use_params_map();
    let start = ServerAction::<StartRun>::new();
    let details = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), start.version().get()),
        |(id, _)| async move { get_instance_details(InstanceId::parse(&id)?).await },
    );
    provide_context(start);
    let watched = move || params.read_untracked().get("id").and_then(|id| InstanceId::parse(&id).ok());
    refresh_on_lifecycle(
        move || details.refetch(),
        move |event| watched().is_some_and(|id| event.concerns_instance(id)),
    );
    on_shortcut("r", move || {
        if let Some(id) = watched() {
            start.dispatch(StartRun { instance_id: id });
        }
    });
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading instance…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>
                {move || Suspend::new(async move {
                    details.await.map(|details| view! { <InstanceView details /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn InstanceView(details: InstanceDetails) -> impl IntoView {
    let InstanceDetails { instance, experiment, runs } = details;
    let experiment_line = match &experiment {
        Some(definition) => view! {
            <span class="mono">{definition.name.to_string()}</span>
            <span class="muted">" v" {definition.version.clone()}</span>
        }
        .into_any(),
        None => view! {
            <span class="mono">{instance.experiment.to_string()}</span>
            <span class="error-text">
                " — this server has no experiment of that name any more; the instance cannot run."
            </span>
        }
        .into_any(),
    };
    let description = (!instance.description.as_str().is_empty())
        .then(|| view! { <p class="description">{instance.description.to_string()}</p> });
    let config = config_rows(&instance.config)
        .into_iter()
        .map(|row| {
            view! {
                <tr>
                    <th style=format!("padding-left: {}rem", 0.6 + row.depth as f32 * 1.2)>{row.label}</th>
                    <td class="mono">{row.value}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="page-head">
            <nav class="crumbs">
                <a href="/">"Instances"</a>
                " / "
                <span>{instance.name.to_string()}</span>
            </nav>
            <div class="title-row">
                <h1>{instance.name.to_string()}</h1>
                <span class="spacer"></span>
                <InstanceActions instance_id=instance.id name=instance.name.to_string() run_count=runs.len() />
            </div>
            <p>{experiment_line}</p>
            {description}
        </section>
        <div class="columns">
            <section class="card">
                <h2>"Configuration"</h2>
                <table class="kv">
                    <tbody>{config}</tbody>
                </table>
            </section>
            <section class="card">
                <div class="title-row">
                    <h2>"Runs " <span class="muted">"(" {runs.len()} ")"</span></h2>
                    <a class="muted" href=format!("/runs?instance={}", instance.id)>"in the runs list"</a>
                    <span class="spacer"></span>
                    <CompareSelected />
                </div>
                <RunTable runs />
            </section>
        </div>
    }
}

#[component]
fn InstanceActions(instance_id: InstanceId, name: String, run_count: usize) -> impl IntoView {
    let confirm = RwSignal::new(false);
    let delete = ServerAction::<DeleteInstance>::new();
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(())) = delete.value().get() {
            navigate("/", Default::default());
        }
    });
    let error = move || match delete.value().get() {
        Some(Err(error)) => Some(view! { <span class="error-text">{error.to_string()}</span> }),
        _ => None,
    };
    let message = format!(
        "This deletes \"{name}\" and its {run_count} run{}, with every log and result. Runs still going are cancelled. This cannot be undone.",
        if run_count == 1 { "" } else { "s" }
    );
    view! {
        <StartForm instance_id with_shortcut=true />
        <A href=format!("/instances/{instance_id}/edit") attr:class="button">"Edit"</A>
        <button class="danger" on:click=move |_| confirm.set(true)>"Delete"</button>
        {error}
        <ConfirmDialog
            open=confirm
            title="Delete instance?".to_owned()
            message
            confirm_label="Delete instance"
            on_confirm=Callback::new(move |_| {
                delete.dispatch(DeleteInstance { id: instance_id });
            })
        />
    }
}

#[component]
fn CompareSelected() -> impl IntoView {
    let selection = expect_context::<crate::pages::runs::Selection>();
    view! {
        <Show when=move || { selection.0.get().len() >= 2 }>
            <a class="button" href=move || selection.compare_href()>
                {move || format!("Compare selected ({})", selection.0.get().len())}
            </a>
        </Show>
    }
}

#[component]
fn RunTable(runs: Vec<Run>) -> impl IntoView {
    if runs.is_empty() {
        return view! { <p class="muted">"No runs yet."</p> }.into_any();
    }
    let now = chrono::Utc::now();
    let rows = runs
        .into_iter()
        .map(|run| {
            let started = run.started_at.map(|at| {
                view! { <time datetime=at.to_rfc3339() title=utc_stamp(at)>{relative_time(at, now)}</time> }
            });
            let (duration, error) = crate::format::duration_and_error(&run, now);
            view! {
                <tr>
                    <td>
                        <crate::pages::runs::SelectRun run_id=run.id />
                    </td>
                    <td>
                        <StatusBadge status=run.status />
                    </td>
                    <td class="mono" title=run.id.to_string()>
                        <A href=format!("/runs/{}", run.id)>{short_id(run.id)}</A>
                    </td>
                    <td>{started}</td>
                    <td class="num">{duration}</td>
                    <td class="error-text">{error}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <table class="grid runs">
            <thead>
                <tr>
                    <th></th>
                    <th>"Status"</th>
                    <th>"Run"</th>
                    <th>"Started"</th>
                    <th class="num">"Duration"</th>
                    <th>"Error"</th>
                </tr>
            </thead>
            <tbody>{rows}</tbody>
        </table>
    }
    .into_any()
}
