//! What every request handler and server function can reach on the server. A leaf: it imports no other module of
//! this crate but [`crate::error`], so any module may depend on it without a cycle.

use crate::error::AppError;
use athanor_service::Service;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use leptos::prelude::use_context;

/// The server's shared state: Leptos' settings and the service every operation goes through.
#[derive(Clone)]
pub struct AppState {
    /// Leptos' own settings (site root, output name), needed by the router.
    pub leptos_options: LeptosOptions,
    /// Every operation: experiments, instances, runs, records.
    pub service: Service,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// The service, from inside a server function (the router provides the state as context to each request).
pub fn service() -> Result<Service, AppError> {
    use_context::<AppState>()
        .map(|state| state.service)
        .ok_or_else(|| AppError::Server("server state is not available to this request".into()))
}
