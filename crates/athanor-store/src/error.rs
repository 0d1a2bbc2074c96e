use athanor_core::IllegalTransition;
use athanor_core::{InstanceId, RunId};

/// Everything that can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names neither SQLite nor PostgreSQL.
    #[error("unsupported DATABASE_URL {0:?}: expected sqlite://path or postgres://…")]
    UnsupportedUrl(String),
    /// Could not open the database.
    #[error("could not connect to {url}: {source}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// What sqlx said.
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed to apply.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The instance does not exist (or was deleted).
    #[error("no instance with id {0}")]
    InstanceNotFound(InstanceId),
    /// The run does not exist (or its instance was deleted).
    #[error("no run with id {0}")]
    RunNotFound(RunId),
    /// The run is not in a status from which the requested change is legal.
    #[error("run {run}: {source}")]
    IllegalTransition {
        /// The run.
        run: RunId,
        /// Which change was refused.
        #[source]
        source: IllegalTransition,
    },
    /// A stored value could not be read back into the domain type (a corrupted row or a foreign writer).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}
