//! Runs: creation with their own configuration snapshot, guarded status changes, and lists.

use crate::instances::now;
use crate::{on_backend, Store, StoreError};
use athanor_core::{Run, RunStatus};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

const RUN_COLUMNS: &str =
    "id, instance_id, status, config, experiment_version, created_at, started_at, completed_at, error";

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table: "runs", detail: detail.to_string() }
}

macro_rules! run_from_row {
    ($row:expr, $Id:ty) => {{
        let row = $row;
        Run {
            id: Uuid::from(row.try_get::<$Id, _>("id")?),
            instance_id: Uuid::from(row.try_get::<$Id, _>("instance_id")?),
            status: row.try_get::<&str, _>("status")?.parse::<RunStatus>().map_err(corrupt)?,
            config: row.try_get::<Json<Value>, _>("config")?.0,
            experiment_version: row.try_get("experiment_version")?,
            created_at: row.try_get("created_at")?,
            started_at: row.try_get("started_at")?,
            completed_at: row.try_get("completed_at")?,
            error: row.try_get("error")?,
        }
    }};
}

impl Store {
    /// Create a `pending` run of `instance_id` that keeps its own copy of `config` and the experiment version.
    pub async fn create_run(
        &self,
        instance_id: Uuid,
        config: &Value,
        experiment_version: &str,
    ) -> Result<Run, StoreError> {
        let run = Run {
            id: Uuid::new_v4(),
            instance_id,
            status: RunStatus::Pending,
            config: config.clone(),
            experiment_version: experiment_version.to_owned(),
            created_at: now(),
            started_at: None,
            completed_at: None,
            error: None,
        };
        on_backend!(self, |pool, Id| {
            let inserted = sqlx::query(
                "INSERT INTO runs (id, instance_id, status, config, experiment_version, created_at)
                 SELECT $1, i.id, $3, $4, $5, $6 FROM instances i WHERE i.id = $2",
            )
            .bind(Id::from(run.id))
            .bind(Id::from(instance_id))
            .bind(run.status.as_str())
            .bind(Json(&run.config))
            .bind(&run.experiment_version)
            .bind(run.created_at)
            .execute(pool)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::InstanceNotFound(instance_id));
            }
        });
        Ok(run)
    }

    /// The run with `id`, if it exists.
    pub async fn get_run(&self, id: Uuid) -> Result<Option<Run>, StoreError> {
        on_backend!(self, |pool, Id| {
            let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
                .bind(Id::from(id))
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(run_from_row!(row, Id)),
                None => None,
            })
        })
    }

    /// The runs of one instance, newest first.
    pub async fn list_runs(&self, instance_id: Uuid) -> Result<Vec<Run>, StoreError> {
        on_backend!(self, |pool, Id| {
            let rows = sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE instance_id = $1 ORDER BY created_at DESC, id DESC"
            ))
            .bind(Id::from(instance_id))
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(|row| Ok(run_from_row!(row, Id))).collect()
        })
    }

    /// Every run with `status`, oldest first (the order a queue starts them in).
    pub async fn runs_with_status(&self, status: RunStatus) -> Result<Vec<Run>, StoreError> {
        on_backend!(self, |pool, Id| {
            let rows =
                sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE status = $1 ORDER BY created_at, id"))
                    .bind(status.as_str())
                    .fetch_all(pool)
                    .await?;
            rows.into_iter().map(|row| Ok(run_from_row!(row, Id))).collect()
        })
    }

    /// Move a run to `to`, if the status machine allows it from the status the run has **now**.
    ///
    /// Entering `running` stamps `started_at`; entering a terminal status stamps `completed_at` and records
    /// `error` (the failure message, or how it was cancelled). The update is conditional on the status read, so
    /// two racing writers (say, a cancel and a completion) cannot both win: the loser gets
    /// [`StoreError::IllegalTransition`] naming the status it lost to.
    pub async fn transition_run(&self, id: Uuid, to: RunStatus, error: Option<&str>) -> Result<Run, StoreError> {
        loop {
            let current = self.get_run(id).await?.ok_or(StoreError::RunNotFound(id))?;
            current.status.transition(to).map_err(|source| StoreError::IllegalTransition { run: id, source })?;
            let at = now();
            let started_at: Option<DateTime<Utc>> = (to == RunStatus::Running).then_some(at);
            let completed_at: Option<DateTime<Utc>> = to.is_terminal().then_some(at);
            let updated = on_backend!(self, |pool, Id| {
                let row = sqlx::query(&format!(
                    "UPDATE runs SET status = $1, started_at = COALESCE($2, started_at),
                         completed_at = COALESCE($3, completed_at), error = COALESCE($4, error)
                     WHERE id = $5 AND status = $6 RETURNING {RUN_COLUMNS}"
                ))
                .bind(to.as_str())
                .bind(started_at)
                .bind(completed_at)
                .bind(error)
                .bind(Id::from(id))
                .bind(current.status.as_str())
                .fetch_optional(pool)
                .await?;
                match row {
                    Some(row) => Some(run_from_row!(row, Id)),
                    None => None,
                }
            });
            // None: someone changed the status between our read and write; judge again against the new status.
            if let Some(run) = updated {
                return Ok(run);
            }
        }
    }
}
