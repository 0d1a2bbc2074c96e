//! Instances: create, read, edit, delete (with their runs, logs and results), and the dashboard summary.

use crate::{on_backend, Store, StoreError};
use athanor_core::{
    model::InstanceSummary, Description, ExperimentName, Instance, InstanceDraft, InstanceName, RunStatus, RunSummary,
};
use athanor_core::{InstanceId, RunId};
use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

/// Now, truncated to microseconds: PostgreSQL keeps no more, and a value must read back equal on every backend.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table: "instances", detail: detail.to_string() }
}

const INSTANCE_COLUMNS: &str = "i.id, i.experiment, i.name, i.description, i.config, i.created_at, i.updated_at";
/// The same columns unqualified, for `RETURNING` (SQLite allows no table alias in an `UPDATE`).
const INSTANCE_RETURNING: &str = "id, experiment, name, description, config, created_at, updated_at";

/// Decode the instance columns of `row` (selected with [`INSTANCE_COLUMNS`]).
macro_rules! instance_from_row {
    ($row:expr, $Id:ty) => {{
        let row = $row;
        Instance {
            id: InstanceId::from(Uuid::from(row.try_get::<$Id, _>("id")?)),
            experiment: ExperimentName::parse(row.try_get::<&str, _>("experiment")?).map_err(corrupt)?,
            name: InstanceName::parse(row.try_get::<&str, _>("name")?).map_err(corrupt)?,
            description: Description::parse(row.try_get::<&str, _>("description")?).map_err(corrupt)?,
            config: row.try_get::<Json<serde_json::Value>, _>("config")?.0,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Store {
    /// Save a new instance. Its configuration must already be validated and complete.
    pub async fn create_instance(&self, draft: &InstanceDraft) -> Result<Instance, StoreError> {
        let created = now();
        let instance = Instance {
            id: InstanceId::from(Uuid::new_v4()),
            experiment: draft.experiment.clone(),
            name: draft.name.clone(),
            description: draft.description.clone(),
            config: draft.config.clone(),
            created_at: created,
            updated_at: created,
        };
        on_backend!(self, |pool, Id| {
            sqlx::query(
                "INSERT INTO instances (id, experiment, name, description, config, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(Id::from(instance.id.as_uuid()))
            .bind(instance.experiment.as_str())
            .bind(instance.name.as_str())
            .bind(instance.description.as_str())
            .bind(Json(&instance.config))
            .bind(instance.created_at)
            .bind(instance.updated_at)
            .execute(pool)
            .await?;
        });
        Ok(instance)
    }

    /// The instance with `id`, if it exists.
    pub async fn get_instance(&self, id: InstanceId) -> Result<Option<Instance>, StoreError> {
        on_backend!(self, |pool, Id| {
            let row = sqlx::query(&format!("SELECT {INSTANCE_COLUMNS} FROM instances i WHERE i.id = $1"))
                .bind(Id::from(id.as_uuid()))
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                Some(row) => Some(instance_from_row!(row, Id)),
                None => None,
            })
        })
    }

    /// Replace an instance's name, description and configuration. Past runs keep their own configuration.
    ///
    /// The experiment of an instance never changes: a different experiment is a different instance.
    pub async fn update_instance(&self, id: InstanceId, draft: &InstanceDraft) -> Result<Instance, StoreError> {
        let updated = now();
        on_backend!(self, |pool, Id| {
            let row = sqlx::query(&format!(
                "UPDATE instances SET name = $2, description = $3, config = $4, updated_at = $5
                 WHERE id = $1 RETURNING {INSTANCE_RETURNING}"
            ))
            .bind(Id::from(id.as_uuid()))
            .bind(draft.name.as_str())
            .bind(draft.description.as_str())
            .bind(Json(&draft.config))
            .bind(updated)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(instance_from_row!(row, Id)),
                None => Err(StoreError::InstanceNotFound(id)),
            }
        })
    }

    /// Delete an instance and, by cascade, its runs, logs and results. Returns whether it existed.
    pub async fn delete_instance(&self, id: InstanceId) -> Result<bool, StoreError> {
        on_backend!(self, |pool, Id| {
            let done =
                sqlx::query("DELETE FROM instances WHERE id = $1").bind(Id::from(id.as_uuid())).execute(pool).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// How many instances exist.
    pub async fn count_instances(&self) -> Result<i64, StoreError> {
        on_backend!(self, |pool, _Id| {
            Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM instances").fetch_one(pool).await?)
        })
    }

    /// Every instance, newest first, with its run count and latest run: one query, whatever the number of runs.
    pub async fn list_instances(&self) -> Result<Vec<InstanceSummary>, StoreError> {
        on_backend!(self, |pool, Id| {
            let rows = sqlx::query(&format!(
                "SELECT {INSTANCE_COLUMNS},
                        (SELECT COUNT(*) FROM runs c WHERE c.instance_id = i.id) AS run_count,
                        l.id AS last_id, l.status AS last_status, l.created_at AS last_created_at
                 FROM instances i
                 LEFT JOIN runs l ON l.id = (
                     SELECT r.id FROM runs r WHERE r.instance_id = i.id
                     ORDER BY r.created_at DESC, r.id DESC LIMIT 1)
                 ORDER BY i.created_at DESC, i.id DESC"
            ))
            .fetch_all(pool)
            .await?;
            let mut summaries = Vec::with_capacity(rows.len());
            for row in rows {
                let last_run = match row.try_get::<Option<Id>, _>("last_id")? {
                    Some(last_id) => Some(RunSummary {
                        id: RunId::from(Uuid::from(last_id)),
                        status: row.try_get::<&str, _>("last_status")?.parse::<RunStatus>().map_err(corrupt)?,
                        created_at: row.try_get("last_created_at")?,
                    }),
                    None => None,
                };
                summaries.push(InstanceSummary {
                    run_count: row.try_get("run_count")?,
                    last_run,
                    instance: instance_from_row!(&row, Id),
                });
            }
            Ok(summaries)
        })
    }
}
