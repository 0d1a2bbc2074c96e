//! A form generated from an experiment's configuration schema, validated as the user types by the very
//! validator the server runs (`athanor-core` compiles to WebAssembly for exactly this).
//!
//! The form edits one JSON value held in a signal. Each input knows its path in that value (`api.timeout`,
//! `model_pairs[1].runs`) and shows the validation message for that path beneath itself.

use athanor_core::schema::{Field, FieldKind};
use athanor_core::ValidationErrors;
use leptos::prelude::*;
use serde_json::{Map, Value};

/// One step into a JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// `model_pairs[1].runs` — the same spelling the validator uses for error paths.
pub fn path_text(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Step::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// The value at `path`, if present.
pub fn get_at<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(value, |current, step| match step {
        Step::Key(key) => current.get(key),
        Step::Index(index) => current.get(index),
    })
}

/// Set (or with `None`, remove) the value at `path`, creating objects on the way.
pub fn set_at(value: &mut Value, path: &[Step], new: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        if let Some(new) = new {
            *value = new;
        }
        return;
    };
    let mut current = value;
    for step in parents {
        current = match step {
            Step::Key(key) => {
                if !current.is_object() {
                    *current = Value::Object(Map::new());
                }
                let Value::Object(map) = current else { return };
                map.entry(key.clone()).or_insert(Value::Object(Map::new()))
            }
            Step::Index(index) => match current.get_mut(*index) {
                Some(item) => item,
                None => return,
            },
        };
    }
    match (last, new) {
        (Step::Key(key), Some(new)) => {
            if !current.is_object() {
                *current = Value::Object(Map::new());
            }
            if let Value::Object(map) = current {
                map.insert(key.clone(), new);
            }
        }
        (Step::Key(key), None) => {
            if let Value::Object(map) = current {
                map.remove(key);
            }
        }
        (Step::Index(index), Some(new)) => {
            if let Some(item) = current.get_mut(*index) {
                *item = new;
            }
        }
        (Step::Index(index), None) => {
            if let Value::Array(items) = current {
                if *index < items.len() {
                    items.remove(*index);
                }
            }
        }
    }
}

/// Everything a field needs to read and write the form's value and show its errors.
#[derive(Clone, Copy)]
pub struct FormState {
    /// The configuration being edited.
    pub value: RwSignal<Value>,
    /// Validation errors of the current value (client-side, then the server's on a refused submit).
    pub errors: Signal<ValidationErrors>,
    /// Whether errors are shown yet (after the first edit or submit, so a fresh form is not all red).
    pub show_errors: RwSignal<bool>,
}

impl FormState {
    fn error_at(&self, path: &str) -> Option<String> {
        if !self.show_errors.get() {
            return None;
        }
        self.errors.with(|errors| errors.for_path(path).map(str::to_owned))
    }

    fn set(&self, path: &[Step], new: Option<Value>) {
        self.value.update(|value| set_at(value, path, new));
        self.show_errors.set(true);
    }
}

/// What a number input's text becomes in the configuration: a number when it parses (an integer field keeps a
/// whole number as an integer), else the text itself, so the validator names the problem ("must be a number").
fn typed_number(text: &str, integer: bool) -> Value {
    if integer {
        if let Ok(whole) = text.parse::<i64>() {
            return Value::from(whole);
        }
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or_else(|| Value::String(text.to_owned()), Value::Number)
}

/// The constraint hint shown beside a number field: "1–100, step 1".
fn hint(kind: &FieldKind) -> Option<String> {
    let range = |min: Option<String>, max: Option<String>, step: Option<String>| {
        let range = match (min, max) {
            (Some(min), Some(max)) => Some(format!("{min}–{max}")),
            (Some(min), None) => Some(format!("≥ {min}")),
            (None, Some(max)) => Some(format!("≤ {max}")),
            (None, None) => None,
        };
        match (range, step) {
            (Some(range), Some(step)) => Some(format!("{range}, step {step}")),
            (Some(range), None) => Some(range),
            (None, Some(step)) => Some(format!("step {step}")),
            (None, None) => None,
        }
    };
    match kind {
        FieldKind::Integer { min, max, step, .. } => {
            range(min.map(|v| v.to_string()), max.map(|v| v.to_string()), step.map(|v| v.to_string()))
        }
        FieldKind::Float { min, max, step, .. } => {
            range(min.map(|v| v.to_string()), max.map(|v| v.to_string()), step.map(|v| v.to_string()))
        }
        _ => None,
    }
}

/// The generated fields for `fields` at `path`.
///
/// Inputs carry no `name`: the form posts the whole configuration as one JSON field, so the browser's own form
/// encoding never sees (and never mangles) nested paths like `model_pairs[0].a`.
#[component]
pub fn SchemaFields(fields: Vec<Field>, path: Vec<Step>, form: FormState) -> impl IntoView {
    fields
        .into_iter()
        .map(|field| {
            let mut child = path.clone();
            child.push(Step::Key(field.name.clone()));
            view! { <SchemaField field path=child form /> }
        })
        .collect_view()
}

#[component]
fn SchemaField(field: Field, path: Vec<Step>, form: FormState) -> impl IntoView {
    let key = path_text(&path);
    let id = format!("field-{}", key.replace(['.', '[', ']'], "-"));
    let label = field.display_label().to_owned();
    let description = field.description.clone();
    let required = field.required;
    let error_key = key.clone();
    let error =
        move || form.error_at(&error_key).map(|message| view! { <p class="field-error" role="alert">{message}</p> });
    let help = description.map(|text| view! { <p class="help">{text}</p> });
    let hint_text = hint(&field.kind).map(|text| view! { <span class="hint">{text}</span> });
    let stored_path = StoredValue::new(path.clone());
    let current = move || stored_path.with_value(|path| form.value.with(|value| get_at(value, path).cloned()));

    let control = match field.kind.clone() {
        FieldKind::Integer { .. } | FieldKind::Float { .. } => {
            let (min, max, step) = match &field.kind {
                FieldKind::Integer { min, max, step, .. } => {
                    (min.map(|v| v.to_string()), max.map(|v| v.to_string()), step.map(|v| v.to_string()))
                }
                FieldKind::Float { min, max, step, .. } => (
                    min.map(|v| v.to_string()),
                    max.map(|v| v.to_string()),
                    Some(step.map_or("any".to_owned(), |v| v.to_string())),
                ),
                _ => (None, None, None),
            };
            let integer = matches!(field.kind, FieldKind::Integer { .. });
            view! {
                <input
                    id=id.clone()
                    type="number"
                    min=min
                    max=max
                    step=step
                    prop:value=move || match current() {
                        Some(Value::Number(n)) => n.to_string(),
                        Some(Value::String(s)) => s,
                        _ => String::new(),
                    }
                    on:input=move |ev| {
                        let text = event_target_value(&ev);
                        let text = text.trim();
                        let new = (!text.is_empty()).then(|| typed_number(text, integer));
                        stored_path.with_value(|path| form.set(path, new));
                    }
                />
            }
            .into_any()
        }
        FieldKind::String { options: Some(options), .. } => view! {
            <select
                id=id.clone()
                prop:value=move || current().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
                on:change=move |ev| {
                    let text = event_target_value(&ev);
                    let new = (!text.is_empty()).then_some(Value::String(text));
                    stored_path.with_value(|path| form.set(path, new));
                }
            >
                <option value="">"— choose —"</option>
                {options.into_iter().map(|option| view! { <option value=option.clone()>{option.clone()}</option> }).collect_view()}
            </select>
        }
        .into_any(),
        FieldKind::String { .. } => view! {
            <input
                id=id.clone()
                type="text"
                prop:value=move || current().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
                on:input=move |ev| {
                    let text = event_target_value(&ev);
                    stored_path.with_value(|path| form.set(path, Some(Value::String(text))));
                }
            />
        }
        .into_any(),
        FieldKind::Boolean { .. } => view! {
            <input
                id=id.clone()
                type="checkbox"
                prop:checked=move || current().and_then(|v| v.as_bool()).unwrap_or(false)
                on:change=move |ev| {
                    let checked = event_target_checked(&ev);
                    stored_path.with_value(|path| form.set(path, Some(Value::Bool(checked))));
                }
            />
        }
        .into_any(),
        FieldKind::Group { fields } => {
            return view! {
                <fieldset class="group" data-path=key.clone()>
                    <legend>{label}</legend>
                    {help}
                    <SchemaFields fields path=path.clone() form />
                    {error}
                </fieldset>
            }
            .into_any();
        }
        FieldKind::List { item, .. } => {
            let help = help.map(IntoAny::into_any);
            return view! { <ListField label help item path form error_key=key.clone() /> }.into_any();
        }
    };
    view! {
        <div class="field" class:invalid=move || form.error_at(&key).is_some()>
            <label for=id>{label} {required.then_some(" *")} {hint_text}</label>
            {control}
            {help}
            {error}
        </div>
    }
    .into_any()
}

/// A repeatable group: one card per item, with remove, and "+ add".
#[component]
fn ListField(
    label: String,
    help: Option<AnyView>,
    item: Vec<Field>,
    path: Vec<Step>,
    form: FormState,
    error_key: String,
) -> impl IntoView {
    let item = StoredValue::new(item);
    let stored_path = StoredValue::new(path);
    let length = move || {
        stored_path.with_value(|path| {
            form.value.with(|value| get_at(value, path).and_then(Value::as_array).map_or(0, Vec::len))
        })
    };
    let add = move |_| {
        let defaults = item.with_value(|fields| athanor_core::Schema { fields: fields.clone() }.defaults());
        stored_path.with_value(|path| {
            form.value.update(|value| {
                if get_at(value, path).and_then(Value::as_array).is_none() {
                    set_at(value, path, Some(Value::Array(Vec::new())));
                }
                let mut items = get_at(value, path).and_then(Value::as_array).cloned().unwrap_or_default();
                items.push(defaults);
                set_at(value, path, Some(Value::Array(items)));
            });
        });
        form.show_errors.set(true);
    };
    let error =
        move || form.error_at(&error_key).map(|message| view! { <p class="field-error" role="alert">{message}</p> });
    view! {
        <fieldset class="list">
            <legend>{label}</legend>
            {help}
            {move || {
                (0..length())
                    .map(|index| {
                        let mut item_path = stored_path.get_value();
                        item_path.push(Step::Index(index));
                        let remove_path = item_path.clone();
                        view! {
                            <div class="list-item card">
                                <div class="list-item-head">
                                    <span class="muted">"#" {index + 1}</span>
                                    <button
                                        type="button"
                                        class="ghost"
                                        on:click=move |_| form.set(&remove_path, None)
                                    >
                                        "remove"
                                    </button>
                                </div>
                                <SchemaFields fields=item.get_value() path=item_path form />
                            </div>
                        }
                    })
                    .collect_view()
            }}
            <button type="button" class="ghost add-item" on:click=add>
                "+ add"
            </button>
            {error}
        </fieldset>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn number_inputs_keep_their_type_or_their_text() {
        assert_eq!(typed_number("12", true), json!(12));
        assert_eq!(typed_number("2.5", true), json!(2.5));
        assert_eq!(typed_number("0.05", false), json!(0.05));
        assert_eq!(typed_number("1e", false), json!("1e"));
    }

    #[test]
    fn paths_read_like_validator_paths() {
        let path = [Step::Key("model_pairs".into()), Step::Index(1), Step::Key("runs".into())];
        assert_eq!(path_text(&path), "model_pairs[1].runs");
    }

    #[test]
    fn set_and_get_follow_paths() {
        let mut value = json!({"model_pairs": [{"runs": 1}, {"runs": 2}]});
        let path = [Step::Key("model_pairs".into()), Step::Index(1), Step::Key("runs".into())];
        set_at(&mut value, &path, Some(json!(7)));
        assert_eq!(get_at(&value, &path), Some(&json!(7)));
        set_at(&mut value, &[Step::Key("api".into()), Step::Key("timeout".into())], Some(json!(30)));
        assert_eq!(value["api"]["timeout"], json!(30));
        set_at(&mut value, &[Step::Key("model_pairs".into()), Step::Index(0)], None);
        assert_eq!(value["model_pairs"], json!([{"runs": 7}]));
        set_at(&mut value, &[Step::Key("api".into())], None);
        assert!(value.get("api").is_none());
    }
}
