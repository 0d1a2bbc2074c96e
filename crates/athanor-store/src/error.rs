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
    /// The operation needs several processes to share the database, which only PostgreSQL offers.
    #[error("{0} need PostgreSQL (DATABASE_URL=postgres://…); SQLite is for a single server")]
    NeedsPostgres(&'static str),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the same operation may succeed if simply tried again: the connection was lost or could not be had
    /// (pool timeout, server restarting, network), the database was busy or locked, or it ran out of a resource
    /// that comes back (disk, memory, connections). Anything else — a constraint violation, a value the database
    /// refuses, a statement it cannot run — fails the same way every time, so retrying it would stall forever.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Database(error) => transient_sqlx(error),
            _ => false,
        }
    }
}

fn transient_sqlx(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(error) => {
            if error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended result code; the primary code is its low byte. BUSY, LOCKED, NOMEM, READONLY,
                // INTERRUPT, IOERR, FULL, CANTOPEN, PROTOCOL. Not CONSTRAINT (19), TOOBIG (18), MISMATCH (20)…
                let code = error.code().and_then(|code| code.parse::<i32>().ok()).unwrap_or(0);
                matches!(code & 0xff, 5..=10 | 13..=15)
            } else {
                // PostgreSQL's SQLSTATE: connection exceptions (08), serialization failures and deadlocks (40),
                // insufficient resources (53), shutdown and cancellation (57), I/O errors (58), a lock not
                // available or an object in use (55P03, 55006), a read-only transaction during a failover
                // (25006). Not integrity violations (23), data exceptions (22) or program limits (54).
                let code = error.code().unwrap_or_default();
                matches!(code.get(..2), Some("08" | "40" | "53" | "57" | "58"))
                    || matches!(code.as_ref(), "55P03" | "55006" | "25006")
            }
        }
        _ => false,
    }
}
