//! The banner every page shows while the experiment manifest (`athanor.toml`) has errors: the server keeps the last
//! good experiments in use and says why the file as it is now was refused.

use crate::components::refresh_on_lifecycle;
use crate::error::AppError;
use athanor_core::api::ManifestReport;
use athanor_core::LifecycleEvent;
use leptos::prelude::*;

/// The manifest's problems, or `None` when the experiments in use are the file's current ones (or the server reads
/// no manifest).
#[server(endpoint = "manifest_problems")]
pub async fn manifest_problems() -> Result<Option<ManifestReport>, AppError> {
    Ok(crate::state::service()?.manifest_report())
}

/// Shown above every page while the manifest has errors; follows edits to the file live.
#[component]
pub fn ManifestBanner() -> impl IntoView {
    let problems = Resource::new(|| (), |_| manifest_problems());
    refresh_on_lifecycle(move || problems.refetch(), |event| matches!(event, LifecycleEvent::ExperimentsChanged));
    view! {
        <Transition fallback=|| ()>
            {move || Suspend::new(async move {
                // A banner that cannot load has nothing useful to say; the page below reports real failures.
                problems.await.ok().flatten().map(|found| view! { <Banner found /> })
            })}
        </Transition>
    }
}

#[component]
fn Banner(found: ManifestReport) -> impl IntoView {
    let count = found.problems.len();
    view! {
        <section class="manifest-banner" role="alert">
            <strong>
                {format!(
                    "{} has {count} problem{}: the experiments from its last good version stay in use.",
                    found.file,
                    if count == 1 { "" } else { "s" },
                )}
            </strong>
            <ul>{found.problems.into_iter().map(|problem| view! { <li><code>{problem}</code></li> }).collect_view()}</ul>
            <p class="muted">"Fix the file and save it: this banner goes away by itself."</p>
        </section>
    }
}
