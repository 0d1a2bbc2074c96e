//! Athanor's operations, written once for every front end.
//!
//! The dashboard's server functions, the JSON API under `/api/v1`, the MCP tools and (through the API) the
//! `athanor` CLI are thin translations of their own request format into calls on [`Service`]; none of them talks
//! to the store or the runtime directly. So an operation's rules — what is validated, what is written, which
//! lifecycle event is published, which error comes back — live in exactly one place, and a new front end cannot
//! forget one.
//!
//! Inputs come in as the shapes of [`athanor_core::api`] or as typed ids ([`RunId`], [`InstanceId`]) that the
//! front end parsed at its edge. Every failure is a [`ServiceError`], whose [`ErrorCode`] decides the HTTP status
//! wherever one is needed.
//!
//! - [`experiments`](Service::experiments), [`experiment`](Service::experiment),
//!   [`validate_config`](Service::validate_config), [`manifest_report`](Service::manifest_report)
//! - instances: [`list_instances`](Service::list_instances), [`instance`](Service::instance),
//!   [`create_instance`](Service::create_instance), [`update_instance`](Service::update_instance),
//!   [`clone_instance`](Service::clone_instance), [`delete_instance`](Service::delete_instance)
//! - runs: [`start_run`](Service::start_run), [`cancel_run`](Service::cancel_run), [`run`](Service::run),
//!   [`list_runs`](Service::list_runs), [`wait_for_run`](Service::wait_for_run),
//!   [`run_events`](Service::run_events), [`hold_answer`](Service::hold_answer)
//! - records: [`logs`](Service::logs), [`logs_before`](Service::logs_before), [`results`](Service::results),
//!   [`compare`](Service::compare)
//! - nodes: [`worker_nodes`](Service::worker_nodes), [`run_node`](Service::run_node)
//! - nodes: [`worker_nodes`](Service::worker_nodes), [`run_node`](Service::run_node)

mod error;
mod experiments;
mod gate;
mod instances;
mod nodes;
mod records;
mod runs;

pub use error::ServiceError;
pub use records::{DEFAULT_COMPARE_BUDGET, MAX_COMPARED, MAX_RECORDS};
pub use runs::{RunQuery, DEFAULT_WAIT, MAX_PAGE, MAX_WAIT};

use athanor_core::{InstanceId, RunId};
use athanor_runtime::command::CommandManifest;
use athanor_runtime::Runtime;
use athanor_store::Store;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Answers held open at once by default: event streams and waits, which each keep a connection, a task and a
/// live subscription while they last. Past it, a new one is refused as `unavailable` (503) rather than letting
/// a client that opens streams in a loop grow the server without bound. (The dashboard's live sockets have
/// their own limit.)
pub const DEFAULT_MAX_HELD_ANSWERS: usize = 1_000;

/// A place among the answers held open ([`Service::hold_answer`]); the place frees when this is dropped.
#[derive(Debug)]
pub struct HeldAnswer(#[allow(dead_code)] OwnedSemaphorePermit);

/// What every operation returns.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// Every operation of Athanor, over one database and one runtime. Cheap to clone: front ends keep a copy each.
#[derive(Clone)]
pub struct Service {
    store: Store,
    runtime: Runtime,
    manifest: Option<Arc<CommandManifest>>,
    /// Keeps runs from starting while their instance is being deleted.
    gate: Arc<gate::InstanceGate>,
    /// The most result data, in bytes, one comparison loads.
    compare_budget: u64,
    /// Places for answers held open (streams, waits); see [`Service::hold_answer`].
    held: Arc<Semaphore>,
    held_limit: usize,
}

impl Service {
    /// The service over `store` and `runtime` (which must use the same store), and the manifest of command
    /// experiments when the server reads one.
    pub fn new(store: Store, runtime: Runtime, manifest: Option<Arc<CommandManifest>>) -> Service {
        Service {
            store,
            runtime,
            manifest,
            gate: Arc::default(),
            compare_budget: DEFAULT_COMPARE_BUDGET,
            held: Arc::new(Semaphore::new(DEFAULT_MAX_HELD_ANSWERS)),
            held_limit: DEFAULT_MAX_HELD_ANSWERS,
        }
    }

    /// The same service with room for `answers` held open at once instead of [`DEFAULT_MAX_HELD_ANSWERS`].
    #[must_use]
    pub fn with_max_held_answers(mut self, answers: usize) -> Service {
        self.held = Arc::new(Semaphore::new(answers));
        self.held_limit = answers;
        self
    }

    /// A place for an answer that stays open (an event stream, a wait), or `Unavailable` when every place is
    /// taken. Keep it for as long as the answer is open. [`Service::wait_for_run`] takes one itself; a front
    /// end that streams [`Service::run_events`] to a client takes one per stream.
    pub fn hold_answer(&self) -> ServiceResult<HeldAnswer> {
        self.held.clone().try_acquire_owned().map(HeldAnswer).map_err(|_| {
            ServiceError::Unavailable(format!(
                "{} event streams and waits are open, the most this server holds at once; try again when one ends",
                self.held_limit
            ))
        })
    }

    /// The same service with another comparison budget in bytes (a small machine, or a test).
    #[must_use]
    pub fn with_compare_budget(mut self, bytes: u64) -> Service {
        self.compare_budget = bytes;
        self
    }

    /// The runtime, for what is not an operation: live streams, shutdown, recovery at start.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The database itself, for tests and tools that inspect it; front ends go through the operations above.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

fn instance_not_found(id: InstanceId) -> ServiceError {
    ServiceError::NotFound(format!("no instance with id {id}"))
}

fn run_not_found(id: RunId) -> ServiceError {
    ServiceError::NotFound(format!("no run with id {id}"))
}
