//! The run queue shared by several processes on PostgreSQL: worker nodes, claims, leases, fencing and rescue.
//!
//! On PostgreSQL any number of processes (the server, `athanor worker`s on other machines) can execute runs from
//! the same database. The `runs` table is the queue, built the way Oban, River or graphile-worker build theirs:
//!
//! - **Claim.** A node takes the oldest `pending` run of an experiment it can execute with
//!   `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on each other and never take the same run: the
//!   claim moves the run to `running`, names the node, bumps its `attempt` and gives it a lease.
//! - **Lease.** The owner renews its runs' leases on a heartbeat. A run whose lease has expired belongs to a node
//!   that stopped (killed, partitioned, frozen); whichever node holds the housekeeping advisory lock ends it as
//!   `failed`, naming the node. Nothing is retried silently: a run executes at most once.
//! - **Fencing.** The `attempt` read at claim time is the fencing token: the owner's status writes say
//!   `WHERE attempt = $n AND status = 'running'`, so a node that lost its lease (and its run was rescued) cannot
//!   overwrite the outcome when it wakes up.
//! - **Cancel.** A cancel marks the run (`cancel_requested`) and notifies its owner; an owner that missed the
//!   notification sees the mark on its next heartbeat.
//!
//! Every timestamp here is the database's `now()`, so clocks of different machines never disagree about a lease.
//! SQLite is single-node: these operations answer [`StoreError::NeedsPostgres`] there.

use crate::{Store, StoreError};
use athanor_core::{RunId, RunStatus};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgPool, Row};
use std::time::Duration;
use uuid::Uuid;

/// The `pg_notify` channel a cancel is announced on; the payload is the run id.
pub const CANCEL_CHANNEL: &str = "athanor_cancel";

/// The `pg_notify` channel on which a new `pending` run is announced, so idle nodes claim it at once.
pub const PENDING_CHANNEL: &str = "athanor_pending";

/// The `pg_notify` channel on which every status change of the shared queue (claimed, ended, rescued, cancelled)
/// is announced with the run id, so a server shows runs executing on other nodes live.
pub const STATUS_CHANNEL: &str = "athanor_status";

/// The `pg_notify` channel on which a node announces that it committed records of a run (the run id; one
/// notification per run and committed batch, never per row), so a server reads them for the viewers it has.
pub const RECORDS_CHANNEL: &str = "athanor_records";

/// The `pg_notify` channel on which a node passes on its runs' progress (`{"run_id", "current", "total",
/// "message"}`), at most a few times a second per run; payloads stay under PostgreSQL's 8,000 bytes.
pub const PROGRESS_CHANNEL: &str = "athanor_progress";

/// The advisory lock key of housekeeping (rescuing expired leases): one node at a time does it.
const HOUSEKEEPING_LOCK: i64 = 0x4154_4841_4e4f_5201; // "ATHANOR" + 1

/// An experiment a node can execute, at a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeExperiment {
    /// The experiment's name.
    pub name: String,
    /// Its version on that node.
    pub version: String,
}

/// A process that executes runs, as it advertises itself in the `workers` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Chosen by the node at start; a restarted process is a new node.
    pub id: Uuid,
    /// What people call it: `host:pid` unless given.
    pub name: String,
    /// The machine's host name.
    pub host: String,
    /// The process id on that machine.
    pub pid: i64,
    /// Runs it executes at once.
    pub capacity: i32,
    /// What it can execute.
    pub experiments: Vec<NodeExperiment>,
}

/// A node as the `workers` table shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    /// How it advertised itself.
    pub info: NodeInfo,
    /// When it registered.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Its last heartbeat.
    pub heartbeat_at: chrono::DateTime<chrono::Utc>,
    /// When it stopped cleanly (`None` while it runs, or if it died).
    pub stopped_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Runs it executes now.
    pub running: i64,
}

/// A run a node has claimed: it is `running` under the node's lease, and `attempt` fences its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The run.
    pub run_id: RunId,
    /// The fencing token: the run's attempt number when this node claimed it.
    pub attempt: i32,
}

/// A run of this node whose lease was renewed, and whether someone asked to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewed {
    /// The run.
    pub run_id: RunId,
    /// Whether a cancel was requested (and perhaps its notification missed).
    pub cancel_requested: bool,
}

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

impl Store {
    fn postgres(&self, what: &'static str) -> Result<&PgPool, StoreError> {
        match self {
            Store::Postgres(pool) => Ok(pool),
            Store::Sqlite(_) => Err(StoreError::NeedsPostgres(what)),
        }
    }

    /// Advertise a node in the `workers` table (or refresh what it advertises).
    pub async fn register_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        let pool = self.postgres("worker nodes")?;
        sqlx::query(
            "INSERT INTO workers (id, name, host, pid, capacity, experiments, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5, $6, now(), now())
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, capacity = excluded.capacity,
                 experiments = excluded.experiments, heartbeat_at = now(), stopped_at = NULL",
        )
        .bind(node.id)
        .bind(&node.name)
        .bind(&node.host)
        .bind(node.pid)
        .bind(node.capacity)
        .bind(Json(&node.experiments))
        .execute(pool)
        .await?;
        Ok(())
    }

    /// Mark a node as stopped cleanly (its runs have ended).
    pub async fn stop_node(&self, node: Uuid) -> Result<(), StoreError> {
        let pool = self.postgres("worker nodes")?;
        sqlx::query("UPDATE workers SET stopped_at = now(), heartbeat_at = now() WHERE id = $1")
            .bind(node)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Every node that ever registered, most recent heartbeat first, with how many runs each executes now.
    pub async fn list_nodes(&self) -> Result<Vec<NodeStatus>, StoreError> {
        let pool = self.postgres("worker nodes")?;
        let rows = sqlx::query(
            "SELECT w.id, w.name, w.host, w.pid, w.capacity, w.experiments, w.started_at, w.heartbeat_at,
                    w.stopped_at,
                    (SELECT count(*) FROM runs r WHERE r.node_id = w.id AND r.status = 'running') AS running
             FROM workers w ORDER BY w.heartbeat_at DESC",
        )
        .fetch_all(pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(NodeStatus {
                    info: NodeInfo {
                        id: row.try_get("id")?,
                        name: row.try_get("name")?,
                        host: row.try_get("host")?,
                        pid: row.try_get("pid")?,
                        capacity: row.try_get("capacity")?,
                        experiments: row.try_get::<Json<Vec<NodeExperiment>>, _>("experiments")?.0,
                    },
                    started_at: row.try_get("started_at")?,
                    heartbeat_at: row.try_get("heartbeat_at")?,
                    stopped_at: row.try_get("stopped_at")?,
                    running: row.try_get("running")?,
                })
            })
            .collect()
    }

    /// The name of the node a run executes (or executed) on, if a node claimed it.
    pub async fn run_node(&self, run_id: RunId) -> Result<Option<String>, StoreError> {
        let pool = self.postgres("worker nodes")?;
        Ok(sqlx::query_scalar("SELECT w.name FROM runs r JOIN workers w ON w.id = r.node_id WHERE r.id = $1")
            .bind(run_id.as_uuid())
            .fetch_optional(pool)
            .await?)
    }

    /// Claim the oldest `pending` run of one of `experiments` for `node`, under a lease of `lease`: the run is
    /// `running` on return. `None` when nothing is waiting that this node can execute. Concurrent claimers skip
    /// each other's rows (`SKIP LOCKED`), so a run is claimed once.
    pub async fn claim_run(
        &self,
        node: Uuid,
        experiments: &[String],
        lease: Duration,
    ) -> Result<Option<Claim>, StoreError> {
        let pool = self.postgres("worker nodes")?;
        let row = sqlx::query(
            "WITH claimed AS (
                 UPDATE runs SET status = 'running', started_at = now(), node_id = $1, attempt = attempt + 1,
                     lease_until = now() + make_interval(secs => $3)
                 WHERE id = (
                     SELECT r.id FROM runs r JOIN instances i ON i.id = r.instance_id
                     WHERE r.status = 'pending' AND NOT r.cancel_requested AND i.experiment = ANY($2)
                     ORDER BY r.created_at, r.id
                     LIMIT 1
                     FOR UPDATE OF r SKIP LOCKED
                 )
                 RETURNING id, attempt
             )
             SELECT id, attempt, pg_notify('athanor_status', id::text) FROM claimed",
        )
        .bind(node)
        .bind(experiments)
        .bind(seconds(lease))
        .fetch_optional(pool)
        .await?;
        row.map(|row| {
            Ok(Claim { run_id: RunId::from(row.try_get::<Uuid, _>("id")?), attempt: row.try_get("attempt")? })
        })
        .transpose()
    }

    /// Renew the leases of `node`'s running runs by `lease` from now (the heartbeat), and its own heartbeat.
    /// Returns the renewed runs with their cancel marks.
    pub async fn renew_leases(&self, node: Uuid, lease: Duration) -> Result<Vec<Renewed>, StoreError> {
        let pool = self.postgres("worker nodes")?;
        let mut tx = pool.begin().await?;
        sqlx::query("UPDATE workers SET heartbeat_at = now() WHERE id = $1").bind(node).execute(&mut *tx).await?;
        let rows = sqlx::query(
            "UPDATE runs SET lease_until = now() + make_interval(secs => $2)
             WHERE node_id = $1 AND status = 'running'
             RETURNING id, cancel_requested",
        )
        .bind(node)
        .bind(seconds(lease))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter()
            .map(|row| {
                Ok(Renewed {
                    run_id: RunId::from(row.try_get::<Uuid, _>("id")?),
                    cancel_requested: row.try_get("cancel_requested")?,
                })
            })
            .collect()
    }

    /// End a claimed run, fenced by its claim: only while it is still `running` under the same attempt. `false`
    /// when the claim was lost (the lease expired and the run was rescued, or it was cancelled meanwhile).
    pub async fn finish_claim(&self, claim: Claim, status: RunStatus, error: Option<&str>) -> Result<bool, StoreError> {
        let pool = self.postgres("worker nodes")?;
        let error = error.map(|text| text.replace('\0', "\u{FFFD}"));
        let ended = sqlx::query(
            "WITH ended AS (
                 UPDATE runs SET status = $1, completed_at = now(), error = COALESCE($2, error), lease_until = NULL
                 WHERE id = $3 AND attempt = $4 AND status = 'running'
                 RETURNING id
             )
             SELECT pg_notify('athanor_status', id::text) FROM ended",
        )
        .bind(status.as_str())
        .bind(error)
        .bind(claim.run_id.as_uuid())
        .bind(claim.attempt)
        .fetch_all(pool)
        .await?;
        Ok(ended.len() == 1)
    }

    /// Ask for a run to be cancelled: a `pending` one is cancelled at once (`Some(Cancelled)`), and so is a
    /// `running` one no node claimed (left by a process that executed it itself and is gone); a claimed `running`
    /// one is marked and its owner notified on [`CANCEL_CHANNEL`] (`Some(Running)`: the owner ends it). `None` when
    /// the run has ended or does not exist.
    pub async fn request_cancel(&self, run_id: RunId) -> Result<Option<RunStatus>, StoreError> {
        let pool = self.postgres("worker nodes")?;
        let mut tx = pool.begin().await?;
        let status: Option<String> = sqlx::query_scalar(
            "UPDATE runs SET cancel_requested = true,
                 status = CASE WHEN status = 'pending' OR node_id IS NULL THEN 'cancelled' ELSE status END,
                 completed_at = CASE WHEN status = 'pending' OR node_id IS NULL THEN now() ELSE completed_at END,
                 error = CASE WHEN status = 'pending' THEN 'cancelled before it started'
                              WHEN node_id IS NULL THEN 'cancelled by user' ELSE error END
             WHERE id = $1 AND status IN ('pending', 'running')
             RETURNING status",
        )
        .bind(run_id.as_uuid())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(status) = &status {
            // The owner of a running run stops it; anything else has changed status here and now.
            let channel = if status == "running" { CANCEL_CHANNEL } else { STATUS_CHANNEL };
            sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(run_id.to_string()).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(status.and_then(|status| status.parse().ok()))
    }

    /// The `running` runs no node claimed: on SQLite every running run, on PostgreSQL those a server executed from
    /// its own queue. What start-up recovery may settle; a claimed run belongs to its node and its lease.
    pub async fn unclaimed_running_runs(&self) -> Result<Vec<RunId>, StoreError> {
        match self {
            Store::Sqlite(_) => {
                Ok(self.runs_with_status(RunStatus::Running).await?.into_iter().map(|run| run.id).collect())
            }
            Store::Postgres(pool) => {
                let ids: Vec<Uuid> = sqlx::query_scalar(
                    "SELECT id FROM runs WHERE status = 'running' AND node_id IS NULL ORDER BY created_at",
                )
                .fetch_all(pool)
                .await?;
                Ok(ids.into_iter().map(RunId::from).collect())
            }
        }
    }

    /// Announce runs' progress on [`PROGRESS_CHANNEL`], one notification per `(run, JSON payload)`.
    pub async fn notify_progress(&self, payloads: &[String]) -> Result<(), StoreError> {
        let pool = self.postgres("notifications")?;
        sqlx::query("SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload")
            .bind(PROGRESS_CHANNEL)
            .bind(payloads)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Announce on [`RECORDS_CHANNEL`] that records of `runs` were committed (one notification per run).
    pub async fn notify_records(&self, runs: &[RunId]) -> Result<(), StoreError> {
        let pool = self.postgres("notifications")?;
        let ids: Vec<String> = runs.iter().map(ToString::to_string).collect();
        sqlx::query("SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id")
            .bind(RECORDS_CHANNEL)
            .bind(ids)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Announce on [`PENDING_CHANNEL`] that a run is waiting, so idle nodes claim it without waiting for a poll.
    pub async fn announce_pending(&self) -> Result<(), StoreError> {
        let pool = self.postgres("worker nodes")?;
        sqlx::query("SELECT pg_notify($1, '')").bind(PENDING_CHANNEL).execute(pool).await?;
        Ok(())
    }

    /// Housekeeping: end as `failed` every `running` run whose lease expired, naming its node. Done by one node
    /// at a time (an advisory lock; `None` when another node holds it). Returns the runs ended.
    pub async fn rescue_expired(&self) -> Result<Option<Vec<RunId>>, StoreError> {
        let pool = self.postgres("worker nodes")?;
        let mut tx = pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(HOUSEKEEPING_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !locked {
            return Ok(None);
        }
        let rows = sqlx::query(
            "WITH rescued AS (
                 UPDATE runs r SET status = 'failed', completed_at = now(), lease_until = NULL,
                     error = 'worker ' || COALESCE(w.name, 'unknown') || ' stopped responding'
                 FROM workers w
                 WHERE w.id = r.node_id AND r.status = 'running' AND r.lease_until < now()
                 RETURNING r.id
             )
             SELECT id, pg_notify('athanor_status', id::text) FROM rescued",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(|row| Ok(RunId::from(row.try_get::<Uuid, _>("id")?))).collect::<Result<_, _>>().map(Some)
    }
}

/// A notification received on a `LISTEN`ed channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The channel ([`CANCEL_CHANNEL`], [`PENDING_CHANNEL`]).
    pub channel: String,
    /// What the sender put in it (a run id for a cancel).
    pub payload: String,
}

/// A connection that receives notifications. It reconnects by itself after losing the database; notifications sent
/// meanwhile are lost, which is why every node also polls and heartbeats.
pub struct NoticeListener(sqlx::postgres::PgListener);

impl NoticeListener {
    /// The next notification (waits for one), or `None` when the connection was lost: it reconnects on the next
    /// call, and whatever was notified in between is lost, so the caller re-reads what it cares about.
    pub async fn recv(&mut self) -> Result<Option<Notice>, StoreError> {
        let notification = self.0.try_recv().await?;
        Ok(notification.map(|notification| Notice {
            channel: notification.channel().to_owned(),
            payload: notification.payload().to_owned(),
        }))
    }
}

impl Store {
    /// Listen on `channels` with a connection of its own.
    pub async fn listen(&self, channels: &[&str]) -> Result<NoticeListener, StoreError> {
        let pool = self.postgres("notifications")?;
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen_all(channels.iter().copied()).await?;
        Ok(NoticeListener(listener))
    }
}
