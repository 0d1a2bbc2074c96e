//! `/instances/:id` — one instance: its configuration and its runs.

use crate::app::ErrorPanel;
use crate::error::AppError;
use crate::format::{config_rows, relative_time, short_id, utc_stamp};
use crate::pages::{on_shortcut, refresh_on_lifecycle, StatusBadge};
use athanor_core::{ExperimentDefinition, Instance, Run};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Everything the instance page shows, in one round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceDetails {
    /// The instance.
    pub instance: Instance,
    /// Its experiment's definition, or `None` when the server no longer has that experiment.
    pub experiment: Option<ExperimentDefinition>,
    /// Its runs, newest first.
    pub runs: Vec<Run>,
}

/// Load one instance with its runs. `id` is the text from the URL, parsed here so a bad one gets a clear error.
#[server(endpoint = "get_instance_details")]
pub async fn get_instance_details(id: String) -> Result<InstanceDetails, AppError> {
    let id = parse_id("instance id", &id)?;
    let state = crate::server::state()?;
    let instance =
        state.store.get_instance(id).await?.ok_or_else(|| AppError::NotFound(format!("no instance with id {id}")))?;
    let runs = state.store.list_runs(id).await?;
    let experiment = state.runtime.registry().get(instance.experiment.as_str()).map(|r| (*r.definition).clone());
    Ok(InstanceDetails { instance, experiment, runs })
}

/// Parse an id typed into a URL or form, naming the field when it is not a UUID.
pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(raw.trim()).map_err(|_| AppError::invalid_field(field, format!("{raw:?} is not a valid {field}")))
}

/// Start a run of an instance: it gets its own copy of the configuration and waits in the queue if the server
/// is at its concurrency limit.
#[server(endpoint = "start_run")]
pub async fn start_run(instance_id: String) -> Result<Run, AppError> {
    let instance_id = parse_id("instance_id", &instance_id)?;
    let state = crate::server::state()?;
    Ok(state.runtime.start(instance_id).await?)
}

/// Cancel a run: a pending one at once, a running one cooperatively, then by force after the grace period.
#[server(endpoint = "cancel_run")]
pub async fn cancel_run(run_id: String) -> Result<(), AppError> {
    let run_id = parse_id("run_id", &run_id)?;
    let state = crate::server::state()?;
    state.runtime.cancel(run_id).await?;
    Ok(())
}

/// The instance page.
#[component]
pub fn InstancePage() -> impl IntoView {
    let params = use_params_map();
    let start = ServerAction::<StartRun>::new();
    let details = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), start.version().get()),
        |(id, _)| get_instance_details(id),
    );
    provide_context(start);
    let watched = move || params.read_untracked().get("id").and_then(|id| Uuid::parse_str(&id).ok());
    refresh_on_lifecycle(
        move || details.refetch(),
        move |event| watched().is_some_and(|id| event.concerns_instance(id)),
    );
    on_shortcut("r", move || {
        if let Some(id) = watched() {
            start.dispatch(StartRun { instance_id: id.to_string() });
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

/// The Start button of one instance, a plain form post so it works before hydration too.
#[component]
pub fn StartForm(instance_id: Uuid, #[prop(optional)] with_shortcut: bool) -> impl IntoView {
    let start = expect_context::<ServerAction<StartRun>>();
    let error = move || match start.value().get() {
        Some(Err(error)) => Some(view! { <span class="error-text">{error.to_string()}</span> }),
        _ => None,
    };
    view! {
        <ActionForm action=start attr:class="inline">
            <input type="hidden" name="instance_id" value=instance_id.to_string() />
            <button type="submit" class="primary" title="Start a run of this instance">
                "▶ Start"
                {with_shortcut.then(|| view! { " " <kbd>"r"</kbd> })}
            </button>
        </ActionForm>
        {error}
    }
}

#[component]
fn InstanceActions(instance_id: Uuid, name: String, run_count: usize) -> impl IntoView {
    let confirm = RwSignal::new(false);
    let delete = ServerAction::<crate::pages::edit::DeleteInstance>::new();
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
        <crate::pages::ConfirmDialog
            open=confirm
            title="Delete instance?".to_owned()
            message
            confirm_label="Delete instance"
            on_confirm=Callback::new(move |_| {
                delete.dispatch(crate::pages::edit::DeleteInstance { id: instance_id.to_string() });
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
