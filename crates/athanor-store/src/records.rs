//! The logs and results a run produces: batched appends and paged reads.
//!
//! Logs and results share one per-run sequence (`seq`), assigned by the run's single writer before records reach
//! the store. A viewer that has seen everything up to `seq = N` asks for "after N" in both tables and can never
//! miss or repeat a record.

use crate::tallies::{self, Deltas};
use crate::{on_backend, Store, StoreError};
use athanor_core::{LogFilter, LogLevel, LogRecord, ResultRecord, RunId};
use futures::{Stream, TryStreamExt};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};

/// Rows per multi-row `INSERT` on SQLite. 1,024 × 6 parameters stays far below SQLite's parameter limit (32,766)
/// while making the per-statement overhead negligible; a fixed size keeps the statement cache hitting. PostgreSQL
/// binds arrays instead, see [`PG_ROWS_PER_INSERT`].
const ROWS_PER_INSERT: usize = 1024;

/// Bytes of row data per multi-row `INSERT`, about: large lines make statements of fewer rows, so no statement
/// comes near what an engine accepts in one message (PostgreSQL refuses one over 1 GB) or needs that much memory.
/// A single row larger than this gets a statement of its own.
const BYTES_PER_INSERT: usize = 4 * 1024 * 1024;

/// Fixed cost of a row beyond its text and JSON, for [`BYTES_PER_INSERT`]: id, `seq`, timestamp, level.
const ROW_OVERHEAD: usize = 64;

/// Roughly how many bytes a JSON value takes, in memory or encoded: string and key lengths plus a fixed cost per
/// node. An over-estimate of the encoded size for all but strings full of escaped control characters; cheap
/// (one walk, no allocation).
pub fn approx_json_bytes(value: &Value) -> usize {
    const NODE: usize = 32;
    match value {
        Value::String(text) => NODE + text.len(),
        Value::Array(items) => NODE + items.iter().map(approx_json_bytes).sum::<usize>(),
        Value::Object(map) => {
            NODE + map.iter().map(|(key, value)| NODE + key.len() + approx_json_bytes(value)).sum::<usize>()
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => NODE,
    }
}

fn log_row_bytes(log: &LogRecord) -> usize {
    ROW_OVERHEAD + log.message.len() + log.metadata.as_ref().map_or(0, approx_json_bytes)
}

fn result_row_bytes(result: &ResultRecord) -> usize {
    ROW_OVERHEAD + result.key.len() + approx_json_bytes(&result.value)
}

/// `rows` cut into consecutive statements of at most `max_rows` rows and about [`BYTES_PER_INSERT`] bytes (by
/// `bytes`) each; a row larger than that alone.
fn statements<T>(rows: &[T], max_rows: usize, bytes: impl Fn(&T) -> usize) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut total = 0;
        let mut end = 0;
        while end < rest.len().min(max_rows) {
            total += bytes(&rest[end]);
            if end > 0 && total > BYTES_PER_INSERT {
                break;
            }
            end += 1;
        }
        let (statement, after) = rest.split_at(end);
        rest = after;
        Some(statement)
    })
}

/// Makes a retried append idempotent: when a commit's acknowledgement was lost (the connection dropped after
/// `COMMIT`), its rows are already stored, and the retry skips them instead of failing on the primary key.
const SKIP_STORED: &str = " ON CONFLICT (run_id, seq) DO NOTHING";

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { table: "run_logs", detail: detail.to_string() }
}

/// SQLite's side of [`Store::append_rows`], the hot path of every log line.
///
/// Two encodings are done by hand because they dominate the per-row cost through sqlx's generic path: the run id
/// is rendered to text once per run instead of once per row, and timestamps are written by [`rfc3339_micros`]
/// instead of chrono's general formatter. Both produce exactly what sqlx would store and read back.
async fn append_rows_sqlite(
    pool: &sqlx::SqlitePool,
    logs: &[(RunId, &LogRecord)],
    results: &[(RunId, &ResultRecord)],
) -> Result<(), StoreError> {
    let mut id_text: Vec<(RunId, String)> = Vec::new();
    for run_id in logs.iter().map(|(id, _)| *id).chain(results.iter().map(|(id, _)| *id)) {
        if !id_text.iter().any(|(id, _)| *id == run_id) {
            id_text.push((run_id, run_id.as_uuid().hyphenated().to_string()));
        }
    }
    let text_of =
        |run_id: &RunId| -> &str { id_text.iter().find(|(id, _)| id == run_id).map_or("", |(_, text)| text.as_str()) };
    let mut deltas = Deltas::of(logs, results);
    let mut tx = pool.begin().await?;
    for chunk in statements(logs, ROWS_PER_INSERT, |(_, log)| log_row_bytes(log)) {
        let stamps: Vec<String> = chunk.iter().map(|(_, log)| rfc3339_micros(log.ts)).collect();
        let stored = QueryBuilder::new("INSERT INTO run_logs (run_id, seq, ts, level, message, metadata) ")
            .push_values(chunk.iter().zip(&stamps), |mut row, ((run_id, log), stamp)| {
                row.push_bind(text_of(run_id))
                    .push_bind(log.seq)
                    .push_bind(stamp.as_str())
                    .push_bind(log.level.as_str())
                    .push_bind(log.message.as_str())
                    .push_bind(log.metadata.as_ref().map(Json));
            })
            .push(SKIP_STORED)
            .build()
            .execute(&mut *tx)
            .await?;
        deltas.note_insert(chunk.iter().map(|(id, _)| *id), chunk.len(), stored.rows_affected());
    }
    for chunk in statements(results, ROWS_PER_INSERT, |(_, result)| result_row_bytes(result)) {
        let stamps: Vec<String> = chunk.iter().map(|(_, result)| rfc3339_micros(result.ts)).collect();
        let stored = QueryBuilder::new("INSERT INTO run_results (run_id, seq, ts, key, value) ")
            .push_values(chunk.iter().zip(&stamps), |mut row, ((run_id, result), stamp)| {
                row.push_bind(text_of(run_id))
                    .push_bind(result.seq)
                    .push_bind(stamp.as_str())
                    .push_bind(result.key.as_str())
                    .push_bind(Json(&result.value));
            })
            .push(SKIP_STORED)
            .build()
            .execute(&mut *tx)
            .await?;
        deltas.note_insert(chunk.iter().map(|(id, _)| *id), chunk.len(), stored.rows_affected());
    }
    tallies::apply_sqlite(&mut tx, &deltas).await?;
    tx.commit().await?;
    Ok(())
}

/// Rows per PostgreSQL `INSERT`. Its statements bind one array per column, so they take 5 or 6 parameters
/// whatever their rows: the cap is not set by the parameter limit but by measurement, and past a few thousand rows
/// a statement's fixed cost is lost in the noise. [`BYTES_PER_INSERT`] caps its size in bytes as on SQLite.
const PG_ROWS_PER_INSERT: usize = 4_096;

/// Logs as one array per column, expanded into rows by `UNNEST` on the server: six parameters whatever the rows,
/// and the SQL text never changes, so one prepared statement serves every chunk. Against a multi-row `VALUES` of
/// six parameters a row, it halves the client's time per line and spares the server planning thousands of
/// parameters; the server's time per line is mostly the insert itself (foreign key check, indexes, WAL).
const PG_INSERT_LOGS: &str = "INSERT INTO run_logs (run_id, seq, ts, level, message, metadata) \
     SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::timestamptz[], $4::text[], $5::text[], $6::jsonb[])";

/// Results as [`PG_INSERT_LOGS`] does logs.
const PG_INSERT_RESULTS: &str = "INSERT INTO run_results (run_id, seq, ts, key, value) \
     SELECT * FROM UNNEST($1::uuid[], $2::int8[], $3::timestamptz[], $4::text[], $5::jsonb[])";

/// PostgreSQL's side of [`Store::append_rows`].
///
/// `ON CONFLICT … DO NOTHING` costs PostgreSQL an index probe and a WAL record more per row (about a fifth of the
/// server's time per line, measured), to skip rows that are almost never there: only a retry after a lost
/// acknowledgement finds any. So the rows go in with plain `INSERT`s first; if one of them is already stored, the
/// primary key refuses it, the transaction is rolled back whole (nothing of it was committed, totals included),
/// and the append is done again with [`SKIP_STORED`] — exactly what an append always did, in one new transaction.
async fn append_rows_postgres(
    pool: &sqlx::PgPool,
    logs: &[(RunId, &LogRecord)],
    results: &[(RunId, &ResultRecord)],
) -> Result<(), StoreError> {
    match insert_postgres(pool, logs, results, "").await {
        // The primary keys are the only unique constraints of `run_logs` and `run_results` (and the totals are
        // upserted): any other cause would fail the second attempt the same way, and be reported from there.
        Err(StoreError::Database(sqlx::Error::Database(error)))
            if error.kind() == sqlx::error::ErrorKind::UniqueViolation =>
        {
            insert_postgres(pool, logs, results, SKIP_STORED).await
        }
        outcome => outcome,
    }
}

/// Append `logs` and `results` in one transaction, each `INSERT` followed by `on_conflict` ("" or
/// [`SKIP_STORED`]), with the runs' totals.
async fn insert_postgres(
    pool: &sqlx::PgPool,
    logs: &[(RunId, &LogRecord)],
    results: &[(RunId, &ResultRecord)],
    on_conflict: &str,
) -> Result<(), StoreError> {
    let insert_logs = format!("{PG_INSERT_LOGS}{on_conflict}");
    let insert_results = format!("{PG_INSERT_RESULTS}{on_conflict}");
    let mut deltas = Deltas::of(logs, results);
    let mut tx = pool.begin().await?;
    for chunk in statements(logs, PG_ROWS_PER_INSERT, |(_, log)| log_row_bytes(log)) {
        let stored = sqlx::query(&insert_logs)
            .bind(chunk.iter().map(|(run_id, _)| run_id.as_uuid()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, log)| log.seq).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, log)| log.ts).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, log)| log.level.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, log)| log.message.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, log)| log.metadata.as_ref().map(Json)).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        deltas.note_insert(chunk.iter().map(|(id, _)| *id), chunk.len(), stored.rows_affected());
    }
    for chunk in statements(results, PG_ROWS_PER_INSERT, |(_, result)| result_row_bytes(result)) {
        let stored = sqlx::query(&insert_results)
            .bind(chunk.iter().map(|(run_id, _)| run_id.as_uuid()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, result)| result.seq).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, result)| result.ts).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, result)| result.key.as_str()).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, result)| Json(&result.value)).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        deltas.note_insert(chunk.iter().map(|(id, _)| *id), chunk.len(), stored.rows_affected());
    }
    tallies::apply_postgres(&mut tx, &deltas).await?;
    tx.commit().await?;
    Ok(())
}

/// `2026-11-26T07:44:33.546123+00:00`: RFC 3339 in UTC with microseconds, the form sqlx reads back as a
/// `DateTime<Utc>` (sub-microsecond digits are dropped, as PostgreSQL drops them too). Several times faster than
/// chrono's general formatter, which matters at hundreds of thousands of rows per second.
fn rfc3339_micros(ts: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::{Datelike, Timelike};
    fn digits(out: &mut String, value: u32, width: u32) {
        for power in (0..width).rev() {
            out.push(char::from(b'0' + ((value / 10u32.pow(power)) % 10) as u8));
        }
    }
    let year = ts.year();
    if !(0..=9_999).contains(&year) {
        return ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    }
    let mut out = String::with_capacity(32);
    digits(&mut out, year as u32, 4);
    out.push('-');
    digits(&mut out, ts.month(), 2);
    out.push('-');
    digits(&mut out, ts.day(), 2);
    out.push('T');
    digits(&mut out, ts.hour(), 2);
    out.push(':');
    digits(&mut out, ts.minute(), 2);
    out.push(':');
    digits(&mut out, ts.second(), 2);
    out.push('.');
    // A leap second shows as 1,000,000+ µs in chrono; keep it inside the second, as the format requires.
    digits(&mut out, ts.timestamp_subsec_micros().min(999_999), 6);
    out.push_str("+00:00");
    out
}

#[cfg(test)]
mod tests {
    use super::rfc3339_micros;
    use chrono::{DateTime, SecondsFormat, Utc};

    #[test]
    fn statements_are_capped_in_rows_and_in_bytes() {
        use super::{statements, BYTES_PER_INSERT, PG_ROWS_PER_INSERT, ROWS_PER_INSERT};
        let sizes = |rows: &[usize], max_rows| {
            statements(rows, max_rows, |bytes| *bytes).map(<[usize]>::len).collect::<Vec<_>>()
        };
        assert_eq!(sizes(&[], ROWS_PER_INSERT), Vec::<usize>::new());
        assert_eq!(sizes(&[10; 2_500], ROWS_PER_INSERT), vec![ROWS_PER_INSERT, ROWS_PER_INSERT, 452], "by count");
        assert_eq!(sizes(&[10; 9_000], PG_ROWS_PER_INSERT), vec![PG_ROWS_PER_INSERT, PG_ROWS_PER_INSERT, 808]);
        let mb = 1024 * 1024;
        for max_rows in [ROWS_PER_INSERT, PG_ROWS_PER_INSERT] {
            assert_eq!(sizes(&[mb; 10], max_rows), vec![4, 4, 2], "large rows: by bytes");
            assert_eq!(sizes(&[10, 3 * BYTES_PER_INSERT, 10, 10], max_rows), vec![1, 1, 2], "a huge row goes alone");
            for rows in [vec![mb / 3; 100], vec![7; 5_000], vec![1_000; 10_000]] {
                for statement in statements(&rows, max_rows, |bytes| *bytes) {
                    assert!(statement.len() <= max_rows);
                    assert!(statement.len() == 1 || statement.iter().sum::<usize>() <= BYTES_PER_INSERT);
                }
            }
        }
    }

    #[test]
    fn fast_timestamps_match_chrono() {
        for micros in [0_i64, 1, 999_999, 1_764_140_673_546_123, 1_764_140_673_000_000, 253_402_300_799_999_999] {
            let ts = DateTime::<Utc>::from_timestamp_micros(micros).unwrap();
            assert_eq!(rfc3339_micros(ts), ts.to_rfc3339_opts(SecondsFormat::Micros, false));
        }
    }
}

/// Decode a `seq, ts, level, message, metadata` row of either backend.
fn log_from_row<'r, R: Row>(row: &'r R) -> Result<LogRecord, StoreError>
where
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    chrono::DateTime<chrono::Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<Json<Value>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(LogRecord {
        seq: row.try_get("seq")?,
        ts: row.try_get("ts")?,
        level: row.try_get::<&str, _>("level")?.parse::<LogLevel>().map_err(corrupt)?,
        message: row.try_get("message")?,
        metadata: row.try_get::<Option<Json<Value>>, _>("metadata")?.map(|json| json.0),
    })
}

/// Decode a `seq, ts, key, value` row of either backend.
fn result_from_row<'r, R: Row>(row: &'r R) -> Result<ResultRecord, StoreError>
where
    &'static str: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    chrono::DateTime<chrono::Utc>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Json<Value>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(ResultRecord {
        seq: row.try_get("seq")?,
        ts: row.try_get("ts")?,
        key: row.try_get("key")?,
        value: row.try_get::<Json<Value>, _>("value")?.0,
    })
}

/// Which logs to read: those after a sequence number that pass a filter, at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// Only records with `seq > after_seq` (0 for the start).
    pub after_seq: i64,
    /// Only lines at these levels containing this text.
    pub filter: LogFilter,
    /// At most this many rows.
    pub limit: u32,
}

impl LogQuery {
    /// The first `limit` logs of any level.
    pub fn first(limit: u32) -> Self {
        LogQuery { after_seq: 0, filter: LogFilter::all(), limit }
    }

    /// The same query, only for lines that pass `filter`.
    #[must_use]
    pub fn filtered(mut self, filter: LogFilter) -> Self {
        self.filter = filter;
        self
    }

    /// The same query starting after `seq`.
    #[must_use]
    pub fn after(mut self, seq: i64) -> Self {
        self.after_seq = seq;
        self
    }
}

/// A page of records plus where to continue from.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The records, in `seq` order.
    pub items: Vec<T>,
    /// Pass as `after_seq` to get the next page (the last `seq` seen, or the one passed in if none).
    pub next_after_seq: i64,
    /// Whether the page stopped at its bound (`limit` records, or [`PAGE_BYTES`]) rather than at the end of
    /// what matched: more records may follow.
    pub full: bool,
}

/// Bytes of records one page read holds at most, about (text lengths and JSON sizes): a page stops early, after
/// at least one record, once its records pass this. Rows are decoded as they stream from the database and the
/// rest of the answer is never kept, so a page of a thousand 1 MiB lines costs a few MiB of memory, not a GiB;
/// readers page on from `next_after_seq` as usual.
pub const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Decode rows from `rows` until `limit` records or [`PAGE_BYTES`] of them; the rest of the answer is dropped
/// unread. Returns the records and whether a bound stopped the read.
async fn collect_bounded<'r, R, T>(
    rows: impl Stream<Item = Result<R, sqlx::Error>> + 'r,
    decode: impl Fn(&R) -> Result<T, StoreError>,
    bytes: impl Fn(&T) -> usize,
    limit: u32,
) -> Result<(Vec<T>, bool), StoreError> {
    let mut rows = std::pin::pin!(rows);
    let mut items = Vec::new();
    let mut total = 0;
    while let Some(row) = rows.try_next().await? {
        let item = decode(&row)?;
        total += bytes(&item);
        items.push(item);
        if items.len() >= limit as usize || total >= PAGE_BYTES {
            return Ok((items, true));
        }
    }
    Ok((items, false))
}

/// Append `filter`'s conditions to a query over `run_logs`. `like` is the engine's case-insensitive `LIKE`.
fn push_filter<'a, DB: sqlx::Database>(query: &mut QueryBuilder<'a, DB>, filter: &LogFilter, like: &str)
where
    String: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    push_level_filter(query, &filter.levels);
    if let Some(text) = &filter.text {
        // `%`, `_` and the escape character itself are literal in what the reader typed.
        let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        query.push(format_args!(" AND message {like} ")).push_bind(format!("%{escaped}%")).push(" ESCAPE '\\'");
    }
}

impl Store {
    /// The case-insensitive `LIKE` of this engine: SQLite's `LIKE` ignores ASCII case already.
    fn like(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "LIKE",
            Store::Postgres(_) => "ILIKE",
        }
    }
}

fn push_level_filter<DB: sqlx::Database>(query: &mut QueryBuilder<'_, DB>, levels: &[LogLevel]) {
    // Levels are written as literals (they come from the enum, never from user text) so that SQLite can match
    // `level = 'warn'` against the partial index `WHERE level = 'warn'`; a bound parameter cannot be matched.
    match levels {
        [] => {}
        [level] => {
            query.push(format_args!(" AND level = '{}'", level.as_str()));
        }
        several => {
            let list: Vec<String> = several.iter().map(|level| format!("'{}'", level.as_str())).collect();
            query.push(format_args!(" AND level IN ({})", list.join(", ")));
        }
    }
}

impl Store {
    /// Append logs and results of one run in a single transaction: either all of them are stored or none.
    ///
    /// A record whose `seq` is already stored for the run is skipped, not refused: appending is idempotent, so a
    /// retry of a batch whose first attempt did commit (its acknowledgement lost with the connection) succeeds
    /// without writing anything twice. `seq`s are assigned by the run's single writer, never reused.
    pub async fn append_records(
        &self,
        run_id: RunId,
        logs: &[LogRecord],
        results: &[ResultRecord],
    ) -> Result<(), StoreError> {
        let logs: Vec<(RunId, &LogRecord)> = logs.iter().map(|log| (run_id, log)).collect();
        let results: Vec<(RunId, &ResultRecord)> = results.iter().map(|result| (run_id, result)).collect();
        self.append_rows(&logs, &results).await
    }

    /// Append records of any number of runs in one transaction (the runtime's writer batches across runs this
    /// way, since both engines commit one transaction far faster than many small ones). Idempotent like
    /// [`Store::append_records`]; rows go in `INSERT`s of many rows each (multi-row `VALUES` on SQLite, one array
    /// per column on PostgreSQL), capped in rows and in bytes.
    pub async fn append_rows(
        &self,
        logs: &[(RunId, &LogRecord)],
        results: &[(RunId, &ResultRecord)],
    ) -> Result<(), StoreError> {
        if logs.is_empty() && results.is_empty() {
            return Ok(());
        }
        match self {
            Store::Sqlite(pool) => append_rows_sqlite(pool, logs, results).await,
            Store::Postgres(pool) => append_rows_postgres(pool, logs, results).await,
        }
    }

    /// A page of a run's logs, in `seq` order.
    pub async fn logs(&self, run_id: RunId, query: &LogQuery) -> Result<Page<LogRecord>, StoreError> {
        let like = self.like();
        let items = on_backend!(self, |pool, Id| {
            let mut sql = QueryBuilder::new("SELECT seq, ts, level, message, metadata FROM run_logs WHERE run_id = ");
            sql.push_bind(Id::from(run_id.as_uuid())).push(" AND seq > ").push_bind(query.after_seq);
            push_filter(&mut sql, &query.filter, like);
            sql.push(" ORDER BY seq LIMIT ").push_bind(i64::from(query.limit));
            collect_bounded(sql.build().fetch(pool), |row| log_from_row(row), log_row_bytes, query.limit).await?
        });
        let (items, full) = items;
        let next_after_seq = items.last().map_or(query.after_seq, |log| log.seq);
        Ok(Page { items, next_after_seq, full })
    }

    /// The `limit` logs just before `before_seq` that pass `filter`, in ascending `seq` order: the tail of a run
    /// with `i64::MAX`, or the page above what a viewer already shows. Fewer when they pass [`PAGE_BYTES`].
    pub async fn logs_before(
        &self,
        run_id: RunId,
        before_seq: i64,
        filter: &LogFilter,
        limit: u32,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let like = self.like();
        let mut items = on_backend!(self, |pool, Id| {
            let mut sql = QueryBuilder::new("SELECT seq, ts, level, message, metadata FROM run_logs WHERE run_id = ");
            sql.push_bind(Id::from(run_id.as_uuid())).push(" AND seq < ").push_bind(before_seq);
            push_filter(&mut sql, filter, like);
            sql.push(" ORDER BY seq DESC LIMIT ").push_bind(i64::from(limit));
            collect_bounded(sql.build().fetch(pool), |row| log_from_row(row), log_row_bytes, limit).await?.0
        });
        items.reverse();
        Ok(items)
    }

    /// The exact number of a run's logs at `levels` (all levels when empty).
    pub async fn count_logs(&self, run_id: RunId, levels: &[LogLevel]) -> Result<i64, StoreError> {
        on_backend!(self, |pool, Id| {
            let mut sql = QueryBuilder::new("SELECT COUNT(*) FROM run_logs WHERE run_id = ");
            sql.push_bind(Id::from(run_id.as_uuid()));
            push_level_filter(&mut sql, levels);
            Ok(sql.build_query_scalar::<i64>().fetch_one(pool).await?)
        })
    }

    /// The exact number of a run's logs before `before_seq` that pass `filter`: what a search found in all, of
    /// which [`Store::logs_before`] returns the last page. Text searches read every line of the run (levels
    /// alone are read from their index); lines per level in all are in [`Store::tally`] for free.
    pub async fn count_matching(&self, run_id: RunId, filter: &LogFilter, before_seq: i64) -> Result<i64, StoreError> {
        let like = self.like();
        on_backend!(self, |pool, Id| {
            let mut sql = QueryBuilder::new("SELECT COUNT(*) FROM run_logs WHERE run_id = ");
            sql.push_bind(Id::from(run_id.as_uuid())).push(" AND seq < ").push_bind(before_seq);
            push_filter(&mut sql, filter, like);
            Ok(sql.build_query_scalar::<i64>().fetch_one(pool).await?)
        })
    }

    /// A page of a run's results after `after_seq`, in `seq` order.
    pub async fn results(&self, run_id: RunId, after_seq: i64, limit: u32) -> Result<Page<ResultRecord>, StoreError> {
        self.results_page(run_id, None, after_seq, limit).await
    }

    /// A page of one result key's values after `after_seq`, in `seq` order (an experiment may record a key many
    /// times: a curve, or a value refined as the run goes).
    pub async fn results_with_key(
        &self,
        run_id: RunId,
        key: &str,
        after_seq: i64,
        limit: u32,
    ) -> Result<Page<ResultRecord>, StoreError> {
        self.results_page(run_id, Some(key), after_seq, limit).await
    }

    async fn results_page(
        &self,
        run_id: RunId,
        key: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Page<ResultRecord>, StoreError> {
        let items = on_backend!(self, |pool, Id| {
            let mut sql = QueryBuilder::new("SELECT seq, ts, key, value FROM run_results WHERE run_id = ");
            sql.push_bind(Id::from(run_id.as_uuid()));
            if let Some(key) = key {
                // Served by the index on (run_id, key).
                sql.push(" AND key = ").push_bind(key.to_owned());
            }
            sql.push(" AND seq > ").push_bind(after_seq).push(" ORDER BY seq LIMIT ").push_bind(i64::from(limit));
            collect_bounded(sql.build().fetch(pool), |row| result_from_row(row), result_row_bytes, limit).await?
        });
        let (items, full) = items;
        let next_after_seq = items.last().map_or(after_seq, |result| result.seq);
        Ok(Page { items, next_after_seq, full })
    }

    /// The exact number of a run's results.
    pub async fn count_results(&self, run_id: RunId) -> Result<i64, StoreError> {
        on_backend!(self, |pool, Id| {
            Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM run_results WHERE run_id = $1")
                .bind(Id::from(run_id.as_uuid()))
                .fetch_one(pool)
                .await?)
        })
    }

    /// The highest `seq` stored for a run across logs and results (0 if none): where its writer continues.
    pub async fn last_seq(&self, run_id: RunId) -> Result<i64, StoreError> {
        on_backend!(self, |pool, Id| {
            let id = Id::from(run_id.as_uuid());
            let logs: Option<i64> =
                sqlx::query_scalar("SELECT MAX(seq) FROM run_logs WHERE run_id = $1").bind(id).fetch_one(pool).await?;
            let results: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM run_results WHERE run_id = $1")
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(logs.unwrap_or(0).max(results.unwrap_or(0)))
        })
    }
}
