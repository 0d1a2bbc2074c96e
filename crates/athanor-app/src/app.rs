//! The page frame (HTML shell, header, theme) and the route table.

use crate::live::{Connection, ConnectionStatus};
use crate::pages::banner::ManifestBanner;
use crate::pages::compare::ComparePage;
use crate::pages::dashboard::Dashboard;
use crate::pages::edit::{EditInstancePage, NewInstancePage};
use crate::pages::instance::InstancePage;
use crate::pages::run::RunPage;
use crate::pages::runs::{RunsListPage, Selection};
use crate::pages::workers::WorkersPage;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::path;

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <link rel="icon" type="image/svg+xml" href="/favicon.svg" />
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The whole application: header and routed pages.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(ConnectionStatus(RwSignal::new(Connection::Idle)));
    provide_context(Selection(RwSignal::new(Vec::new())));
    view! {
        <Stylesheet id="leptos" href="/pkg/athanor.css" />
        <Title text="Athanor" />
        <Router>
            <Header />
            <main class="page">
                <ManifestBanner />
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=Dashboard />
                    <Route path=path!("/instances/new") view=NewInstancePage />
                    <Route path=path!("/instances/:id") view=InstancePage />
                    <Route path=path!("/instances/:id/edit") view=EditInstancePage />
                    <Route path=path!("/runs/:id") view=RunPage />
                    <Route path=path!("/compare") view=ComparePage />
                    <Route path=path!("/runs") view=RunsListPage />
                    <Route path=path!("/workers") view=WorkersPage />
                </Routes>
            </main>
        </Router>
    }
}

/// Light, dark, or whatever the system prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Theme {
    System,
    Light,
    Dark,
}

impl Theme {
    fn next(self) -> Theme {
        match self {
            Theme::System => Theme::Dark,
            Theme::Dark => Theme::Light,
            Theme::Light => Theme::System,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Theme::System => "◐ system",
            Theme::Light => "☀ light",
            Theme::Dark => "☾ dark",
        }
    }

    /// Value of `data-theme` on `<html>`; the stylesheet falls back to `prefers-color-scheme` when absent.
    fn attribute(self) -> Option<&'static str> {
        match self {
            Theme::System => None,
            Theme::Light => Some("light"),
            Theme::Dark => Some("dark"),
        }
    }
}

#[component]
fn Header() -> impl IntoView {
    let theme = RwSignal::new(Theme::System);
    // Effects run only in the browser, after hydration: mark the body so tests (and curious users) can tell the
    // page is interactive now.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    Effect::new(move |_| {
        let theme = theme.get();
        if let Some(root) = document().document_element() {
            // Failing to set an attribute only leaves the previous theme showing; nothing to recover.
            let _ = match theme.attribute() {
                Some(value) => root.set_attribute("data-theme", value),
                None => root.remove_attribute("data-theme"),
            };
        }
    });
    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">
                "⚗ Athanor"
            </A>
            <nav>
                <A href="/" exact=true>"Instances"</A>
                <A href="/runs">"Runs"</A>
                <A href="/workers">"Workers"</A>
                <CompareLink />
            </nav>
            <span class="spacer"></span>
            <LiveIndicator />
            <button
                class="ghost theme-toggle"
                title="Switch between system, dark and light themes"
                on:click=move |_| theme.update(|t| *t = t.next())
            >
                {move || theme.get().label()}
            </button>
        </header>
    }
}

#[component]
fn CompareLink() -> impl IntoView {
    let selection = expect_context::<Selection>();
    view! {
        <a href=move || selection.compare_href() class:muted=move || selection.0.get().is_empty() title="Compare the runs you picked">
            {move || format!("Compare ({})", selection.0.get().len())}
        </a>
    }
}

#[component]
fn LiveIndicator() -> impl IntoView {
    let status = expect_context::<ConnectionStatus>().0;
    move || match status.get() {
        Connection::Idle => None,
        Connection::Live => {
            Some(view! { <span class="live on" title="Streaming live updates">"● live"</span> }.into_any())
        }
        Connection::Reconnecting(attempt) => Some(
            view! {
                <span class="live off" title="The live connection dropped; it resumes where it left off">
                    "● reconnecting… (" {attempt} ")"
                </span>
            }
            .into_any(),
        ),
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="empty">
            <h1>"Page not found"</h1>
            <p>"Nothing lives at this address. " <A href="/">"Back to the instances"</A></p>
        </section>
    }
}
