//! A JSON viewer for results of any size: children are created only when their parent is opened, a hundred at a
//! time, so a 10,000-node result costs one line of DOM until someone looks inside.

use leptos::prelude::*;
use serde_json::Value;

/// Children rendered per "show more".
const CHUNK: usize = 100;

/// A collapsible view of `value`, closed at the top level unless it is a scalar.
#[component]
pub fn JsonTree(value: Value) -> impl IntoView {
    view! {
        <div class="json-tree mono">
            <JsonNode label=None value />
        </div>
    }
}

fn summary(value: &Value) -> String {
    match value {
        Value::Array(items) => format!("Array({})", group_digits(items.len())),
        Value::Object(map) => format!("Object{{{} keys}}", group_digits(map.len())),
        other => other.to_string(),
    }
}

fn group_digits(n: usize) -> String {
    crate::format::thousands(n as i64)
}

#[component]
fn JsonNode(label: Option<String>, value: Value) -> impl IntoView {
    let label_view = label.map(|label| view! { <span class="json-key">{label} ": "</span> });
    match value {
        Value::Array(_) | Value::Object(_) => {
            let open = RwSignal::new(false);
            let shown = RwSignal::new(CHUNK);
            let title = summary(&value);
            let value = StoredValue::new(value);
            let total = value.with_value(|v| match v {
                Value::Array(items) => items.len(),
                Value::Object(map) => map.len(),
                _ => 0,
            });
            let children = move || {
                let limit = shown.get();
                value.with_value(|v| match v {
                    Value::Array(items) => items
                        .iter()
                        .take(limit)
                        .enumerate()
                        .map(|(i, item)| {
                            view! { <JsonNode label=Some(format!("[{i}]")) value=item.clone() /> }.into_any()
                        })
                        .collect::<Vec<_>>(),
                    Value::Object(map) => map
                        .iter()
                        .take(limit)
                        .map(|(key, item)| view! { <JsonNode label=Some(key.clone()) value=item.clone() /> }.into_any())
                        .collect::<Vec<_>>(),
                    _ => Vec::new(),
                })
            };
            view! {
                <div class="json-node" class:open=move || open.get()>
                    <button class="json-toggle" aria-expanded=move || open.get().to_string() on:click=move |_| open.update(|o| *o = !*o)>
                        {move || if open.get() { "▾ " } else { "▸ " }}
                        {label_view}
                        <span class="json-summary">{title}</span>
                    </button>
                    <Show when=move || open.get()>
                        <div class="json-children">
                            {children}
                            <Show when=move || { shown.get() < total }>
                                <button class="ghost json-more" on:click=move |_| shown.update(|s| *s += CHUNK)>
                                    {move || format!("show {} more (of {})", CHUNK.min(total - shown.get()), group_digits(total - shown.get()))}
                                </button>
                            </Show>
                        </div>
                    </Show>
                </div>
            }
            .into_any()
        }
        scalar => view! {
            <div class="json-leaf">
                {label_view}
                <span class=format!("json-{}", kind(&scalar))>{scalar.to_string()}</span>
            </div>
        }
        .into_any(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        _ => "composite",
    }
}
