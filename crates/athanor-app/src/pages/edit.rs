//! `/instances/new` and `/instances/:id/edit` — an instance's name, description and generated configuration form.
//!
//! The browser validates as the user types (same validator as the server); the server validates again and answers
//! with messages keyed by field path, which the form shows beside the fields. Editing an instance never touches its
//! past runs: each run keeps its own configuration snapshot.

use crate::calls::{get_instance_details, list_experiments};
use crate::components::{refresh_on_lifecycle, ErrorPanel};
use crate::error::AppError;
use crate::pages::schema_form::{FormState, SchemaFields};
use athanor_core::{ExperimentDefinition, FieldError, Instance, InstanceId, LifecycleEvent, ValidationErrors};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use serde_json::Value;

/// Create (no `id`) or update an instance. `config_json` is the configuration as JSON text, so the form also
/// works as a plain HTML form post. Refused fields come back keyed as the form names them: configuration fields by
/// their path in the configuration (`epochs`, `model_pairs[1].runs`).
#[server(endpoint = "save_instance")]
pub async fn save_instance(
    id: Option<String>,
    experiment: String,
    name: String,
    description: String,
    config_json: String,
) -> Result<Instance, AppError> {
    use athanor_core::api::{InstanceChanges, InstanceInput};
    let config: Value = serde_json::from_str(&config_json)
        .map_err(|e| AppError::invalid_field("config_json", format!("is not valid JSON: {e}")))?;
    let service = crate::state::service()?;
    let saved = match id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => {
            let id = InstanceId::parse(id)?;
            if service.instance(id).await?.experiment.as_str() != experiment.trim() {
                return Err(AppError::invalid_field(
                    "experiment",
                    "an instance's experiment cannot change; create a new instance",
                ));
            }
            let changes = InstanceChanges { name: Some(name), description: Some(description), config: Some(config) };
            service.update_instance(id, changes).await
        }
        None => service.create_instance(InstanceInput { experiment, name, description, config }).await,
    };
    saved.map_err(|error| as_form_fields(error.into()))
}

/// The service names configuration fields `config.<path>` (the configuration is one field of an instance); the
/// form shows them beside inputs named by `<path>` alone.
#[cfg(feature = "ssr")]
fn as_form_fields(error: AppError) -> AppError {
    match error {
        AppError::Invalid { message, fields } => AppError::Invalid {
            message,
            fields: fields
                .into_iter()
                .map(|field| {
                    let path = match field.path.strip_prefix("config") {
                        Some(rest) => rest.strip_prefix('.').unwrap_or(rest).to_owned(),
                        None => field.path,
                    };
                    FieldError { path, ..field }
                })
                .collect(),
        },
        other => other,
    }
}

/// `/instances/new`.
#[component]
pub fn NewInstancePage() -> impl IntoView {
    let experiments = Resource::new(|| (), |_| list_experiments());
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading experiments…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>
                {move || Suspend::new(async move {
                    experiments.await.map(|experiments| view! { <InstanceForm experiments existing=None /> })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

/// `/instances/:id/edit`.
#[component]
pub fn EditInstancePage() -> impl IntoView {
    let params = use_params_map();
    let details = Resource::new(
        move || params.read().get("id").unwrap_or_default(),
        |id| async move { get_instance_details(InstanceId::parse(&id)?).await },
    );
    view! {
        <Transition fallback=|| view! { <p class="muted">"Loading instance…"</p> }>
            <ErrorBoundary fallback=|errors| view! { <ErrorPanel errors /> }>
                {move || Suspend::new(async move {
                    details.await.and_then(|details| {
                        let experiment = details.experiment.ok_or_else(|| {
                            AppError::Invalid {
                                message: format!(
                                    "experiment {} is not available on this server, so this instance cannot be edited",
                                    details.instance.experiment
                                ),
                                fields: Vec::new(),
                            }
                        })?;
                        Ok(view! { <InstanceForm experiments=vec![experiment] existing=Some(details.instance) /> })
                    })
                })}
            </ErrorBoundary>
        </Transition>
    }
}

#[component]
fn InstanceForm(experiments: Vec<ExperimentDefinition>, existing: Option<Instance>) -> impl IntoView {
    let editing = existing.is_some();
    let first = experiments.first().map(|d| d.name.to_string()).unwrap_or_default();
    let experiments = RwSignal::new(experiments);
    let experiment = RwSignal::new(existing.as_ref().map(|i| i.experiment.to_string()).unwrap_or(first));
    let definition = Memo::new(move |_| {
        let wanted = experiment.get();
        experiments.with(|all| all.iter().find(|d| d.name.as_str() == wanted).cloned())
    });
    let name = RwSignal::new(existing.as_ref().map(|i| i.name.to_string()).unwrap_or_default());
    let description = RwSignal::new(existing.as_ref().map(|i| i.description.to_string()).unwrap_or_default());
    let config = RwSignal::new(existing.as_ref().map(|i| i.config.clone()).unwrap_or_else(|| {
        definition.get_untracked().map(|d| d.schema.defaults()).unwrap_or(Value::Object(Default::default()))
    }));
    let show_errors = RwSignal::new(false);
    let save = ServerAction::<SaveInstance>::new();

    // The same checks the server makes, live: name, then the configuration against the schema.
    let client_errors = Signal::derive(move || {
        let mut errors = Vec::new();
        if let Err(error) = athanor_core::InstanceName::parse(&name.get()) {
            errors.push(FieldError { path: "name".into(), message: error.to_string() });
        }
        if let Some(definition) = definition.get() {
            if let Err(found) = config.with(|value| definition.schema.validate(value)) {
                errors.extend(found.errors);
            }
        }
        ValidationErrors { errors }
    });
    let server_error = move || save.value().get().and_then(|result| result.err());
    let errors = Signal::derive(move || {
        let mut all = client_errors.get();
        if let Some(AppError::Invalid { fields, .. }) = server_error() {
            for field in fields {
                if all.for_path(&field.path).is_none() {
                    all.errors.push(field);
                }
            }
        }
        all
    });
    let form = FormState { value: config, errors, show_errors };

    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(instance)) = save.value().get() {
            navigate(&format!("/instances/{}", instance.id), Default::default());
        }
    });

    if !editing {
        // The manifest of command experiments can change while this form is open: follow it, so an experiment
        // just added to `athanor.toml` appears in the picker without a reload.
        refresh_on_lifecycle(
            move || {
                leptos::task::spawn_local(async move {
                    if let Ok(list) = list_experiments().await {
                        experiments.set(list);
                    }
                })
            },
            |event| matches!(event, LifecycleEvent::ExperimentsChanged),
        );
        // The chosen experiment was removed (or there was none): fall back to the first one there is.
        Effect::new(move |_| {
            let names: Vec<String> = experiments.with(|all| all.iter().map(|d| d.name.to_string()).collect());
            if !names.contains(&experiment.get_untracked()) {
                if let Some(first) = names.first() {
                    experiment.set(first.clone());
                    if let Some(definition) = definition.get_untracked() {
                        config.set(definition.schema.defaults());
                    }
                }
            }
        });
    }

    let on_experiment_change = move |ev| {
        experiment.set(event_target_value(&ev));
        if let Some(definition) = definition.get_untracked() {
            config.set(definition.schema.defaults());
        }
    };
    let name_error =
        move || (show_errors.get()).then(|| errors.with(|e| e.for_path("name").map(str::to_owned))).flatten();
    let remaining = move || errors.with(|e| e.len());
    let general_error = move || match server_error() {
        Some(AppError::Invalid { fields, .. }) if !fields.is_empty() => None,
        Some(error) => Some(view! { <p class="field-error" role="alert">{error.to_string()}</p> }),
        None => None,
    };
    let title = if editing { "Edit instance" } else { "New instance" };
    let instance_id = existing.as_ref().map(|i| i.id.to_string()).unwrap_or_default();
    let cancel_href = existing.as_ref().map_or("/".to_owned(), |i| format!("/instances/{}", i.id));
    let leave = use_navigate();
    let leave_to = cancel_href.clone();
    crate::components::on_shortcut("Escape", move || leave(&leave_to, Default::default()));
    let form_ref = NodeRef::<leptos::html::Form>::new();
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            show_errors.set(true);
            if let Some(form) = form_ref.get() {
                let _ = form.request_submit();
            }
        }
    };

    view! {
        <section class="page-head">
            <nav class="crumbs">
                <a href="/">"Instances"</a>
                " / "
                <span>{title}</span>
            </nav>
            <h1>{title}</h1>
        </section>
        <ActionForm action=save node_ref=form_ref attr:class="instance-form card" on:keydown=on_keydown>
            <input type="hidden" name="id" value=instance_id />
            <input type="hidden" name="config_json" prop:value=move || config.with(|c| c.to_string()) />
            <div class="field">
                <label for="field-experiment">"Experiment"</label>
                <select id="field-experiment" name="experiment" disabled=editing on:change=on_experiment_change prop:value=move || experiment.get()>
                    {move || {
                        experiments
                            .get()
                            .into_iter()
                            .map(|d| view! { <option value=d.name.to_string()>{d.name.to_string()}</option> })
                            .collect_view()
                    }}
                </select>
                {editing.then(|| view! { <input type="hidden" name="experiment" prop:value=move || experiment.get() /> })}
                <p class="help">{move || definition.get().map(|d| format!("{} (version {})", d.description, d.version))}</p>
            </div>
            <div class="field" class:invalid=move || name_error().is_some()>
                <label for="field-name">"Name *"</label>
                <input
                    id="field-name"
                    name="name"
                    type="text"
                    autocomplete="off"
                    prop:value=move || name.get()
                    on:input=move |ev| {
                        name.set(event_target_value(&ev));
                        show_errors.set(true);
                    }
                />
                {move || name_error().map(|m| view! { <p class="field-error" role="alert">{m}</p> })}
            </div>
            <div class="field">
                <label for="field-description">"Description"</label>
                <textarea
                    id="field-description"
                    name="description"
                    rows="2"
                    prop:value=move || description.get()
                    on:input=move |ev| description.set(event_target_value(&ev))
                ></textarea>
            </div>
            <h2>"Configuration"</h2>
            {move || {
                definition
                    .get()
                    .map(|definition| view! { <SchemaFields fields=definition.schema.fields path=Vec::new() form /> })
            }}
            {general_error}
            <div class="form-actions">
                <a href=cancel_href class="button ghost">"Cancel"</a>
                <button
                    type="submit"
                    class="primary"
                    on:click=move |ev| {
                        show_errors.set(true);
                        if remaining() > 0 {
                            ev.prevent_default();
                        }
                    }
                >
                    {move || match (remaining(), editing) {
                        (0, true) => "Save".to_owned(),
                        (0, false) => "Create instance".to_owned(),
                        (1, _) => "Fix 1 error".to_owned(),
                        (n, _) => format!("Fix {n} errors"),
                    }}
                </button>
                <span class="muted">"Ctrl+Enter submits · Esc cancels"</span>
            </div>
        </ActionForm>
    }
}
