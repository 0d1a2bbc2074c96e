//! Small pieces every page uses: keyboard shortcuts, live refresh, the confirmation dialog, the status badge, the
//! error panel and the Start button. Depends only on [`crate::live`], [`crate::calls`] and [`crate::error`], so pages can share these without importing
//! each other or the app shell.

use crate::calls::StartRun;
use athanor_core::{InstanceId, RunStatus};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::components::A;

/// Run `action` when `key` is pressed outside text inputs (single-key shortcuts such as `n` and `r`); `Escape`
/// also works from inside a field.
pub fn on_shortcut(key: &'static str, action: impl Fn() + 'static) {
    #[cfg(feature = "hydrate")]
    {
        use leptos::wasm_bindgen::JsCast;
        let handle = window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() != key || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
            let tag = ev
                .target()
                .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
                .map(|element| element.tag_name())
                .unwrap_or_default();
            // Esc leaves a form or a dialog even from inside a text field, which has no use of its own for it; a
            // select does (it closes its list). Letter shortcuts stay off while typing.
            let shortcut_allowed = match tag.as_str() {
                "INPUT" | "TEXTAREA" => key == "Escape",
                "SELECT" => false,
                _ => true,
            };
            if shortcut_allowed {
                ev.prevent_default();
                action();
            }
        });
        on_cleanup(move || handle.remove());
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (key, action);
}

/// Wrap `action` so that calls within `delay_ms` of the first collapse into one call at the end of the delay:
/// a burst of live events causes one reload, not hundreds.
#[cfg(feature = "hydrate")]
pub fn throttled(delay_ms: u64, action: impl Fn() + Clone + 'static) -> impl Fn() + Clone + 'static {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let scheduled = Arc::new(AtomicBool::new(false));
    move || {
        if scheduled.swap(true, Ordering::Relaxed) {
            return;
        }
        let scheduled = scheduled.clone();
        let action = action.clone();
        set_timeout(
            move || {
                scheduled.store(false, Ordering::Relaxed);
                action();
            },
            std::time::Duration::from_millis(delay_ms),
        );
    }
}

/// Refetch `refresh` whenever a lifecycle event passes `concerns`, at most every half second, for the life of the
/// page: a run started or an instance created in another tab shows up here without reload.
pub fn refresh_on_lifecycle(
    refresh: impl Fn() + Clone + 'static,
    concerns: impl Fn(&athanor_core::LifecycleEvent) -> bool + 'static,
) {
    #[cfg(feature = "hydrate")]
    {
        use crate::live::{follow, LiveEvent, WatchRequest};
        // Many events (a thousand runs finishing) collapse into one reload.
        let reload = throttled(300, refresh);
        follow(
            || WatchRequest::Lifecycle,
            move |event| {
                if let LiveEvent::Lifecycle(event) = event {
                    if concerns(&event) {
                        reload();
                    }
                }
            },
            || false,
        );
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (refresh, concerns);
}

/// A modal confirmation: `Esc` or Cancel closes it, the danger button confirms.
#[component]
pub fn ConfirmDialog(
    open: RwSignal<bool>,
    title: String,
    message: String,
    confirm_label: &'static str,
    on_confirm: Callback<()>,
) -> impl IntoView {
    on_shortcut("Escape", move || open.set(false));
    view! {
        <Show when=move || open.get()>
            <div class="backdrop" on:click=move |_| open.set(false)>
                <div class="dialog card" role="dialog" aria-modal="true" aria-label=title.clone() on:click=|ev| ev.stop_propagation()>
                    <h2>{title.clone()}</h2>
                    <p>{message.clone()}</p>
                    <div class="form-actions">
                        <button class="ghost" on:click=move |_| open.set(false)>"Cancel"</button>
                        <button class="danger" on:click=move |_| {
                            open.set(false);
                            on_confirm.run(());
                        }>{confirm_label}</button>
                    </div>
                </div>
            </div>
        </Show>
    }
}

/// A coloured status pill; the colour comes from the `status-<name>` class in the stylesheet.
#[component]
pub fn StatusBadge(status: RunStatus) -> impl IntoView {
    let glyph = match status {
        RunStatus::Pending => "◌",
        RunStatus::Running => "◐",
        RunStatus::Completed => "●",
        RunStatus::Failed => "✕",
        RunStatus::Cancelled => "■",
    };
    view! { <span class=format!("badge status-{}", status.as_str())>{glyph} " " {status.as_str()}</span> }
}

/// A readable error box for a failed load, used inside every page's `ErrorBoundary`.
#[component]
pub fn ErrorPanel(errors: ArcRwSignal<Errors>) -> impl IntoView {
    view! {
        <section class="error-panel" role="alert">
            <h2>"Something went wrong"</h2>
            <ul>
                {move || {
                    errors
                        .get()
                        .into_iter()
                        .map(|(_, error)| view! { <li>{error.to_string()}</li> })
                        .collect_view()
                }}
            </ul>
            <p>
                "Reload to try again, or " <A href="/">"go back to the instances"</A> "."
            </p>
        </section>
    }
}

/// The Start button of one instance, a plain form post so it works before hydration too.
#[component]
pub fn StartForm(instance_id: InstanceId, #[prop(optional)] with_shortcut: bool) -> impl IntoView {
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
