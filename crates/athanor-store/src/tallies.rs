//! Per-run totals (`run_tallies`): lines per level, results, and the cursor they are exact at.
//!
//! Counting a run's lines with `COUNT(*)` costs time in proportion to the run: a run page that recounts a million
//! lines on every load opens several times slower than a short run's. Instead, every append adds what it stored
//! to its runs' rows in the same transaction, so the totals are exact at every commit and reading them costs one
//! row.
//!
//! Appends are idempotent (a retried batch skips rows already stored), so the totals must not count a skipped row
//! twice: an `INSERT` that stored fewer rows than it carried marks its runs for an exact recount from the tables,
//! done in the same transaction. That happens only on a retry after a lost acknowledgement.

use crate::{on_backend, Store, StoreError};
use athanor_core::{LevelCounts, LogRecord, ResultRecord, RunId};

/// A run's totals at one cursor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTally {
    /// The highest `seq` stored across the run's logs and results (0 when it has none): the counts below count
    /// exactly the records with `seq <= last_seq`.
    pub last_seq: i64,
    /// Log lines per level.
    pub levels: LevelCounts,
    /// Results.
    pub results: i64,
}

/// What one append adds to each of its runs' totals.
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    runs: Vec<(RunId, RunTally)>,
    /// Runs whose rows were partly skipped as already stored: their totals are recounted instead of added to.
    recount: Vec<RunId>,
}

impl Deltas {
    /// The totals that `logs` and `results` add, per run.
    pub(crate) fn of(logs: &[(RunId, &LogRecord)], results: &[(RunId, &ResultRecord)]) -> Self {
        let mut deltas = Deltas::default();
        for (run_id, log) in logs {
            let tally = deltas.entry(*run_id);
            tally.levels.add(log.level, 1);
            tally.last_seq = tally.last_seq.max(log.seq);
        }
        for (run_id, result) in results {
            let tally = deltas.entry(*run_id);
            tally.results += 1;
            tally.last_seq = tally.last_seq.max(result.seq);
        }
        deltas
    }

    fn entry(&mut self, run_id: RunId) -> &mut RunTally {
        // Batches hold few runs (one per live run at most), so a linear search beats hashing.
        let index = match self.runs.iter().position(|(id, _)| *id == run_id) {
            Some(index) => index,
            None => {
                self.runs.push((run_id, RunTally::default()));
                self.runs.len() - 1
            }
        };
        &mut self.runs[index].1
    }

    /// Note that an `INSERT` of `rows` stored only `stored` of them: their runs get recounted.
    pub(crate) fn note_insert(&mut self, run_ids: impl Iterator<Item = RunId>, rows: usize, stored: u64) {
        if stored < rows as u64 {
            for run_id in run_ids {
                if !self.recount.contains(&run_id) {
                    self.recount.push(run_id);
                }
            }
        }
    }
}

const COLUMNS: &str = "run_id, last_seq, debug, info, warn, error, results";

/// An exact recount of one run (`$1`) from its rows; `{greatest}` is the engine's two-argument maximum.
fn recount_sql(greatest: &str) -> String {
    let level = |name: &str| format!("(SELECT count(*) FROM run_logs WHERE run_id = $1 AND level = '{name}')");
    format!(
        "INSERT INTO run_tallies ({COLUMNS}) SELECT $1, \
         {greatest}(coalesce((SELECT max(seq) FROM run_logs WHERE run_id = $1), 0), \
                    coalesce((SELECT max(seq) FROM run_results WHERE run_id = $1), 0)), \
         {}, {}, {}, {}, (SELECT count(*) FROM run_results WHERE run_id = $1) \
         WHERE true \
         ON CONFLICT (run_id) DO UPDATE SET last_seq = excluded.last_seq, debug = excluded.debug, \
         info = excluded.info, warn = excluded.warn, error = excluded.error, results = excluded.results",
        level("debug"),
        level("info"),
        level("warn"),
        level("error"),
    )
}

/// Add one run's delta to its row (creating it).
fn add_sql(greatest: &str) -> String {
    format!(
        "INSERT INTO run_tallies ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (run_id) DO UPDATE SET last_seq = {greatest}(run_tallies.last_seq, excluded.last_seq), \
         debug = run_tallies.debug + excluded.debug, info = run_tallies.info + excluded.info, \
         warn = run_tallies.warn + excluded.warn, error = run_tallies.error + excluded.error, \
         results = run_tallies.results + excluded.results"
    )
}

/// Apply `deltas` inside the append's transaction, on SQLite (`max` is SQLite's two-argument maximum).
pub(crate) async fn apply_sqlite(tx: &mut sqlx::SqliteConnection, deltas: &Deltas) -> Result<(), StoreError> {
    for (run_id, tally) in &deltas.runs {
        let id = crate::SqliteId::from(run_id.as_uuid());
        let query = if deltas.recount.contains(run_id) { recount_sql("max") } else { add_sql("max") };
        bind_delta(sqlx::query(&query).bind(id), deltas, run_id, tally).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Apply `deltas` inside the append's transaction, on PostgreSQL.
pub(crate) async fn apply_postgres(tx: &mut sqlx::PgConnection, deltas: &Deltas) -> Result<(), StoreError> {
    for (run_id, tally) in &deltas.runs {
        let id = crate::PgId::from(run_id.as_uuid());
        let query = if deltas.recount.contains(run_id) { recount_sql("greatest") } else { add_sql("greatest") };
        bind_delta(sqlx::query(&query).bind(id), deltas, run_id, tally).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Bind the delta's numbers after the run id, unless the run is recounted (that statement takes the id only).
fn bind_delta<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    deltas: &Deltas,
    run_id: &RunId,
    tally: &RunTally,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if deltas.recount.contains(run_id) {
        return query;
    }
    query
        .bind(tally.last_seq)
        .bind(tally.levels.debug)
        .bind(tally.levels.info)
        .bind(tally.levels.warn)
        .bind(tally.levels.error)
        .bind(tally.results)
}

impl Store {
    /// A run's totals: lines per level and results, exact at `last_seq`, read from one row. All zero for a run
    /// with no records (or none at all).
    pub async fn tally(&self, run_id: RunId) -> Result<RunTally, StoreError> {
        use sqlx::Row;
        on_backend!(self, |pool, Id| {
            let row =
                sqlx::query("SELECT last_seq, debug, info, warn, error, results FROM run_tallies WHERE run_id = $1")
                    .bind(Id::from(run_id.as_uuid()))
                    .fetch_optional(pool)
                    .await?;
            let Some(row) = row else { return Ok(RunTally::default()) };
            Ok(RunTally {
                last_seq: row.try_get("last_seq")?,
                levels: LevelCounts {
                    debug: row.try_get("debug")?,
                    info: row.try_get("info")?,
                    warn: row.try_get("warn")?,
                    error: row.try_get("error")?,
                },
                results: row.try_get("results")?,
            })
        })
    }
}
