//! Athanor's persistence: instances, runs, and the logs and results runs produce.
//!
//! One [`Store`] hides two backends. SQLite is the embedded default (a single file in WAL mode, nothing to
//! install); PostgreSQL is chosen by a `postgres://` URL. Every query is written once: the [`on_backend!`] macro
//! expands a body for each concrete pool type, so the SQL text is shared and only the id representation differs
//! (hyphenated text on SQLite so the file stays readable with plain SQL, native `UUID` on PostgreSQL).
//!
//! The store trusts its inputs: names are parsed and configurations validated in `athanor-core` before they get
//! here. What the store does check is the one rule the database must enforce for everyone — a run's status only
//! moves along the legal transitions, atomically (see [`Store::transition_run`]).

// `on_backend!` bodies convert ids with `Uuid::from(..)`, which is the identity on PostgreSQL (native UUID) and a
// real conversion on SQLite (hyphenated text). Clippy sees only the PostgreSQL expansion as useless.
#![allow(clippy::useless_conversion)]

mod error;
mod instances;
mod nodes;
mod records;
mod runs;
mod tallies;

pub use error::StoreError;
pub use nodes::{
    Claim, NodeExperiment, NodeInfo, NodeStatus, Notice, NoticeListener, Renewed, CANCEL_CHANNEL, PENDING_CHANNEL,
    PROGRESS_CHANNEL, RECORDS_CHANNEL, STATUS_CHANNEL,
};
pub use records::{approx_json_bytes, LogQuery, Page, PAGE_BYTES};
pub use runs::{RunFilter, RunKey};
pub use tallies::RunTally;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

/// The URL used when `DATABASE_URL` is not set: a file next to where the server starts.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://athanor.db";

/// How long a PostgreSQL query waits for a connection (a pooled one, or a new one being opened) before it fails
/// with [`sqlx::Error::PoolTimedOut`]. While the server is unreachable (down, restarting, a network partition that
/// swallows packets), this is how long a request that needs the database takes to answer with an error instead of
/// hanging; the runtime retries its own writes (records, status changes) until the database is back. A healthy pool
/// of 16 connections hands one out in microseconds, so 5 s is never reached in normal operation.
pub const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A connection pool to Athanor's database. Cheap to clone (the pools are reference counted).
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// The id type bound and decoded on SQLite: UUIDs as hyphenated text.
pub(crate) type SqliteId = uuid::fmt::Hyphenated;
/// The id type bound and decoded on PostgreSQL: native UUID.
pub(crate) type PgId = uuid::Uuid;

/// Run `$body` with `$pool` bound to the concrete pool and `$Id` to the backend's id column type.
///
/// The body is compiled twice, once per backend, so it may use any sqlx API generically; bind ids with
/// `$Id::from(uuid)` and read them with `Uuid::from(row.try_get::<$Id, _>(..)?)`.
macro_rules! on_backend {
    ($store:expr, |$pool:ident, $Id:ident| $body:expr) => {
        match $store {
            $crate::Store::Sqlite($pool) => {
                #[allow(unused)]
                type $Id = $crate::SqliteId;
                $body
            }
            $crate::Store::Postgres($pool) => {
                #[allow(unused)]
                type $Id = $crate::PgId;
                $body
            }
        }
    };
}
pub(crate) use on_backend;

impl Store {
    /// Connect to `url`, creating the SQLite file if needed, and apply pending migrations.
    ///
    /// `sqlite://path` (or `sqlite::memory:`) selects SQLite; `postgres://` or `postgresql://` selects PostgreSQL.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                .connect(url)
                .await
                .map_err(|source| StoreError::Connect { url: redact(url), source })?;
            Store::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|source| StoreError::Connect { url: redact(url), source })?
                .create_if_missing(true)
                .foreign_keys(true)
                // WAL lets the dashboard read while a run's writer commits; NORMAL sync in WAL mode survives a
                // killed process (only an OS crash can lose the last commits), which is the promise we make.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                // 64 MiB of page cache per connection: log tables grow fast and index pages stay hot.
                .pragma("cache_size", "-65536")
                // Checkpoint the WAL every ~40 MB instead of every 4 MB: a log firehose otherwise spends much of
                // its time copying pages back into the main file.
                .pragma("wal_autocheckpoint", "10000");
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Connect { url: redact(url), source })?;
            Store::Sqlite(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(redact(url)));
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Apply the migrations under `migrations/<backend>/` that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pool) => sqlx::migrate!("../../migrations/sqlite").run(pool).await?,
            Store::Postgres(pool) => sqlx::migrate!("../../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Which engine this store talks to.
    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Close every pooled connection, waiting for queries in flight.
    pub async fn close(&self) {
        on_backend!(self, |pool, _Id| pool.close().await)
    }
}

/// Hide a password in a connection URL before it reaches a log or an error page.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(super::redact("postgres://bob:secret@db:5432/x"), "postgres://bob:***@db:5432/x");
        assert_eq!(super::redact("postgres://bob@db/x"), "postgres://bob@db/x");
        assert_eq!(super::redact("sqlite://athanor.db"), "sqlite://athanor.db");
    }
}
