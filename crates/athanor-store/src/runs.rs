//! Runs: creation with their own configuration snapshot, guarded status changes, and lists.

use crate::instances::now;
use crate::{on_backend, Store, StoreError};
use athanor_core::{InstanceId, RunId};
use athanor_core::{ResultRecord, Run, RunListing, RunStatus};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::QueryBuilder;
use sqlx::Row;
use uuid::Uuid;

const RUN_COLUMNS: &str =
    "id, instance_id, status, config, experiment_version, created_at, started_at, completed_at, error";

/// Ids bound per `IN (…)` list: far below both engines' parameter limits.
const ID_CHUNK: usize = 500;

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table: "runs", detail: detail.to_string() }
}

macro_rules! run_from_row {
    ($row:expr, $Id:ty) => {{
        let row = $row;
        Run {
            id: RunId::from(Uuid::from(row.try_get::<$Id, _>("id")?)),
            instance_id: InstanceId::from(Uuid::from(row.try_get::<$Id, _>("instance_id")?)),
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

/// Which runs a listing shows; every field left `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of instances of this experiment.
    pub experiment: Option<String>,
    /// Only runs of this instance.
    pub instance: Option<InstanceId>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
}

/// A run's place in the newest-first order of listings: where the next page continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunKey {
    /// The run's creation time.
    pub created_at: DateTime<Utc>,
    /// The run's id, which breaks ties between runs created in the same instant.
    pub id: RunId,
}

/// The columns of a [`RunListing`]: the run and its instance's name and experiment.
const LISTING_SELECT: &str = "SELECT r.id, r.instance_id, r.status, r.config, r.experiment_version, r.created_at,
        r.started_at, r.completed_at, r.error, i.name AS instance_name, i.experiment AS experiment
     FROM runs r JOIN instances i ON i.id = r.instance_id";

macro_rules! listing_from_row {
    ($row:expr, $Id:ty) => {{
        let row = $row;
        RunListing {
            instance_name: row.try_get("instance_name")?,
            experiment: row.try_get("experiment")?,
            run: run_from_row!(row, $Id),
        }
    }};
}

impl Store {
    /// Create a `pending` run of `instance_id` that keeps its own copy of `config` and the experiment version.
    pub async fn create_run(
        &self,
        instance_id: InstanceId,
        config: &Value,
        experiment_version: &str,
    ) -> Result<Run, StoreError> {
        let run = Run {
            id: RunId::from(Uuid::new_v4()),
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
            .bind(Id::from(run.id.as_uuid()))
            .bind(Id::from(instance_id.as_uuid()))
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
    pub async fn get_run(&self, id: RunId) -> Result<Option<Run>, StoreError> {
        on_backend!(self, |pool, Id| {
            let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
                .bind(Id::from(id.as_uuid()))
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(run_from_row!(row, Id)),
                None => None,
            })
        })
    }

    /// The runs of one instance, newest first.
    pub async fn list_runs(&self, instance_id: InstanceId) -> Result<Vec<Run>, StoreError> {
        on_backend!(self, |pool, Id| {
            let rows = sqlx::query(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE instance_id = $1 ORDER BY created_at DESC, id DESC"
            ))
            .bind(Id::from(instance_id.as_uuid()))
            .fetch_all(pool)
            .await?;
            rows.into_iter().map(|row| Ok(run_from_row!(row, Id))).collect()
        })
    }

    /// The runs with these ids and their instance names, in the order asked for; unknown ids are left out.
    /// One statement per 500 ids, whatever their number.
    pub async fn runs_by_ids(&self, ids: &[RunId]) -> Result<Vec<(Run, String)>, StoreError> {
        let mut found: Vec<(Run, String)> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(ID_CHUNK) {
            on_backend!(self, |pool, Id| {
                let mut sql = QueryBuilder::new(
                    "SELECT r.id, r.instance_id, r.status, r.config, r.experiment_version, r.created_at, r.started_at,
                            r.completed_at, r.error, i.name AS instance_name
                     FROM runs r JOIN instances i ON i.id = r.instance_id WHERE r.id IN (",
                );
                let mut list = sql.separated(", ");
                for id in chunk {
                    list.push_bind(Id::from(id.as_uuid()));
                }
                sql.push(")");
                for row in sql.build().fetch_all(pool).await? {
                    let name: String = row.try_get("instance_name")?;
                    found.push((run_from_row!(row, Id), name));
                }
            });
        }
        let position: std::collections::HashMap<RunId, usize> =
            ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        found.sort_by_key(|(run, _)| position.get(&run.id).copied().unwrap_or(usize::MAX));
        Ok(found)
    }

    /// About how many bytes the results of these runs take as stored (keys and values as text): what loading
    /// them all would cost, known before loading them.
    pub async fn results_size_of_runs(&self, ids: &[RunId]) -> Result<i64, StoreError> {
        let mut total = 0_i64;
        // The one expression that differs by backend: JSONB has to be turned into text to be measured.
        let size = match self.backend() {
            crate::Backend::Sqlite => "COALESCE(SUM(LENGTH(value) + LENGTH(key)), 0)",
            crate::Backend::Postgres => "COALESCE(SUM(OCTET_LENGTH(value::text) + OCTET_LENGTH(key)), 0)::BIGINT",
        };
        for chunk in ids.chunks(ID_CHUNK) {
            on_backend!(self, |pool, Id| {
                let mut sql = QueryBuilder::new(format!("SELECT {size} FROM run_results WHERE run_id IN ("));
                let mut list = sql.separated(", ");
                for id in chunk {
                    list.push_bind(Id::from(id.as_uuid()));
                }
                sql.push(")");
                total += sql.build_query_scalar::<i64>().fetch_one(pool).await?;
            });
        }
        Ok(total)
    }

    /// Every result of these runs, one statement per 500 runs.
    pub async fn results_of_runs(&self, ids: &[RunId]) -> Result<Vec<(RunId, ResultRecord)>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(ID_CHUNK) {
            on_backend!(self, |pool, Id| {
                let mut sql =
                    QueryBuilder::new("SELECT run_id, seq, ts, key, value FROM run_results WHERE run_id IN (");
                let mut list = sql.separated(", ");
                for id in chunk {
                    list.push_bind(Id::from(id.as_uuid()));
                }
                sql.push(") ORDER BY run_id, seq");
                for row in sql.build().fetch_all(pool).await? {
                    let run_id = RunId::from(Uuid::from(row.try_get::<Id, _>("run_id")?));
                    out.push((
                        run_id,
                        ResultRecord {
                            seq: row.try_get("seq")?,
                            ts: row.try_get("ts")?,
                            key: row.try_get("key")?,
                            value: row.try_get::<Json<Value>, _>("value")?.0,
                        },
                    ));
                }
            });
        }
        Ok(out)
    }

    /// A page of runs across all instances, newest first, optionally filtered; plus the exact total matching.
    pub async fn list_all_runs(
        &self,
        experiment: Option<&str>,
        instance_id: Option<InstanceId>,
        status: Option<RunStatus>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<RunListing>, i64), StoreError> {
        on_backend!(self, |pool, Id| {
            let filters = |sql: &mut QueryBuilder<'_, _>| {
                sql.push(" WHERE 1 = 1");
                if let Some(experiment) = experiment {
                    sql.push(" AND i.experiment = ").push_bind(experiment.to_owned());
                }
                if let Some(instance_id) = instance_id {
                    sql.push(" AND r.instance_id = ").push_bind(Id::from(instance_id.as_uuid()));
                }
                if let Some(status) = status {
                    sql.push(" AND r.status = ").push_bind(status.as_str());
                }
            };
            let mut count = QueryBuilder::new("SELECT COUNT(*) FROM runs r JOIN instances i ON i.id = r.instance_id");
            filters(&mut count);
            let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
            let mut page = QueryBuilder::new(LISTING_SELECT);
            filters(&mut page);
            page.push(" ORDER BY r.created_at DESC, r.id DESC LIMIT ")
                .push_bind(limit)
                .push(" OFFSET ")
                .push_bind(offset);
            let mut listings = Vec::new();
            for row in page.build().fetch_all(pool).await? {
                listings.push(listing_from_row!(row, Id));
            }
            Ok((listings, total))
        })
    }

    /// Up to `limit` runs across all instances, newest first, that match `filter` and come after `after` in that
    /// order: keyset pagination, so a page stays correct while new runs are created and costs the same at any depth.
    pub async fn runs_after(
        &self,
        filter: &RunFilter,
        after: Option<RunKey>,
        limit: i64,
    ) -> Result<Vec<RunListing>, StoreError> {
        on_backend!(self, |pool, Id| {
            let mut page = QueryBuilder::new(format!("{LISTING_SELECT} WHERE 1 = 1"));
            if let Some(experiment) = &filter.experiment {
                page.push(" AND i.experiment = ").push_bind(experiment.clone());
            }
            if let Some(instance_id) = filter.instance {
                page.push(" AND r.instance_id = ").push_bind(Id::from(instance_id.as_uuid()));
            }
            if let Some(status) = filter.status {
                page.push(" AND r.status = ").push_bind(status.as_str());
            }
            if let Some(after) = after {
                page.push(" AND (r.created_at < ")
                    .push_bind(after.created_at)
                    .push(" OR (r.created_at = ")
                    .push_bind(after.created_at)
                    .push(" AND r.id < ")
                    .push_bind(Id::from(after.id.as_uuid()))
                    .push("))");
            }
            page.push(" ORDER BY r.created_at DESC, r.id DESC LIMIT ").push_bind(limit);
            let mut listings = Vec::new();
            for row in page.build().fetch_all(pool).await? {
                listings.push(listing_from_row!(row, Id));
            }
            Ok(listings)
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
    pub async fn transition_run(&self, id: RunId, to: RunStatus, error: Option<&str>) -> Result<Run, StoreError> {
        // An error message quotes what failed (a program's stderr, a panic payload) and may hold NUL, which
        // PostgreSQL cannot store: one unstorable message must not leave the run without its terminal status.
        let cleaned = error.filter(|text| text.contains('\0')).map(|text| text.replace('\0', "\u{FFFD}"));
        let error = cleaned.as_deref().or(error);
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
                .bind(Id::from(id.as_uuid()))
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
