//! Athanor's dashboard: one crate compiled twice.
//!
//! With the `ssr` feature it is the server: axum routes, server functions (each one call into the
//! `athanor_service::Service`), and HTML rendered on the first request. With `hydrate` it is the browser half,
//! compiled to WebAssembly, which takes over the server-rendered page and makes it interactive. Components and the
//! server functions only they call sit side by side in [`pages`]; shared server functions are in [`calls`], shared
//! components in [`components`]; everything that exists only on the server lives in [`server`] and [`state`].

// `#[server]` and `#[component]` generate public structs whose fields are the functions' arguments; those fields
// cannot carry doc comments, so the workspace's `missing_docs` lint would flag every server function and component.
// The functions themselves are documented.
#![allow(missing_docs)]

pub mod app;
pub mod calls;
pub mod components;
pub mod error;
pub mod format;
pub mod live;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;
pub mod socket;
#[cfg(feature = "ssr")]
pub mod state;

/// Entry point the generated JavaScript calls once the WebAssembly module has loaded.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
