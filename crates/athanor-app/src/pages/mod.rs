//! One module per page: the component and the server functions it calls, side by side.

pub mod dashboard;
pub mod instance;
pub mod json_tree;
pub mod run;

use athanor_core::RunStatus;
use leptos::prelude::*;

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
