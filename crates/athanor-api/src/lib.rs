//! Athanor's JSON API, served under `/api/v1`, with its OpenAPI document and the CSV/JSON downloads.
//!
//! Every handler is a thin translation: parse the request (path, query, JSON body) → one call on
//! [`athanor_service::Service`] → the answer as JSON. The rules of an operation live in the service; this crate
//! decides only the shape of URLs and the wire format, so the API, the dashboard and the MCP tools cannot disagree.
//!
//! - Answers are the types of [`athanor_core::api`] and [`athanor_core`] (`Run`, `Instance`, `Paged<T>`, …),
//!   serialized exactly as everywhere else.
//! - Every error is an [`ErrorBody`](athanor_core::api::ErrorBody) `{code, message, fields}` with the status
//!   [`ErrorCode::http_status`](athanor_core::api::ErrorCode::http_status) gives its code: a malformed body, a
//!   bad query parameter or a malformed id is `invalid_input` naming the field, never axum's plain-text refusal;
//!   an unknown path is `not_found`.
//! - The OpenAPI document is generated from the handlers' `#[utoipa::path]` attributes and the wire types'
//!   derived schemas, and each handler is registered once for both the router and the document (`utoipa-axum`),
//!   so a route cannot exist undocumented or be documented at a path it is not served at.
//!
//! ```no_run
//! # async fn serve(service: athanor_service::Service) -> std::io::Result<()> {
//! let app = axum::Router::new()
//!     .nest("/api/v1", athanor_api::router(service.clone()))
//!     .merge(athanor_api::export_routes(service));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! `docs/api.md` walks through every endpoint with `curl`.

mod error;
mod events;
mod experiments;
mod export;
mod extract;
mod instances;
mod records;
mod runs;

pub use export::export_routes;

use athanor_service::Service;
use axum::{Json, Router};
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi, SecurityRequirement};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The JSON API, to nest at `/api/v1`: `Router::new().nest("/api/v1", athanor_api::router(service))`.
///
/// Paths and methods it does not serve answer `not_found` as an [`ErrorBody`](athanor_core::api::ErrorBody).
/// It checks no token: whoever mounts it decides who may call it.
pub fn router(service: Service) -> Router {
    let (router, _document) = endpoints().split_for_parts();
    router.fallback(error::no_such_endpoint).method_not_allowed_fallback(error::no_such_endpoint).with_state(service)
}

/// The OpenAPI 3.1 document of [`router`]'s endpoints (also served at `/api/v1/openapi.json`): every path with
/// its parameters, request body and responses, including the error body, and the schemas of the wire types.
pub fn openapi() -> OpenApi {
    // Built once: the document is a pure function of the code.
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(|| endpoints().into_openapi()).clone()
}

/// Every endpoint, each registered once for both routing and the document. `routes!` groups the handlers of one
/// path.
fn endpoints() -> OpenApiRouter<Service> {
    OpenApiRouter::with_openapi(<ApiDoc as utoipa::OpenApi>::openapi())
        .routes(routes!(experiments::list_experiments))
        .routes(routes!(experiments::get_experiment))
        .routes(routes!(experiments::validate_config))
        .routes(routes!(instances::list_instances, instances::create_instance))
        .routes(routes!(instances::get_instance, instances::update_instance, instances::delete_instance))
        .routes(routes!(instances::clone_instance))
        .routes(routes!(instances::start_run))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::cancel_run))
        .routes(routes!(runs::wait_for_run))
        .routes(routes!(runs::list_workers))
        .routes(routes!(records::logs))
        .routes(routes!(records::results))
        .routes(routes!(events::run_events))
        .routes(routes!(records::compare))
        .routes(routes!(openapi_json))
}

/// This API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object))
)]
async fn openapi_json() -> Json<OpenApi> {
    Json(openapi())
}

/// What the document says besides its paths.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Athanor API",
        description = "Experiments, instances (saved configurations), runs, their logs and results, and \
            comparisons. Every error answer is an `ErrorBody` whose `code` decides the HTTP status: \
            `invalid_input` 400, `unauthorized` 401, `forbidden` 403, `not_found` 404, `conflict` 409, `too_large` 413, \
            `unavailable` 503, `internal` 500.",
    ),
    servers((url = "/api/v1", description = "This server")),
    tags(
        (name = "experiments", description = "What this server can run, and their configuration schemas"),
        (name = "instances", description = "Saved configurations of experiments"),
        (name = "runs", description = "Executions of instances: start, list, cancel, wait, follow live"),
        (name = "records", description = "What runs produced: logs, results, comparisons"),
        (name = "meta", description = "This document"),
    ),
    // Named in event descriptions and errors rather than in a `body`, so listed here to be in the document.
    components(schemas(athanor_core::api::ErrorCode, events::SnapshotData, events::RecordsData)),
    modifiers(&BearerToken),
)]
struct ApiDoc;

/// A server listening beyond loopback requires `Authorization: Bearer <token>`; on loopback nothing is required.
/// Both are allowed by the document (an empty requirement and the bearer one).
struct BearerToken;

impl utoipa::Modify for BearerToken {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description =
            Some("Required when the server listens on a non-loopback address: the value of `ATHANOR_TOKEN`.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
        openapi.security =
            Some(vec![SecurityRequirement::default(), SecurityRequirement::new("bearer", Vec::<String>::new())]);
    }
}
