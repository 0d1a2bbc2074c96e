//! What runs produced: log lines, results, and comparisons of several runs.

use crate::{run_not_found, Service, ServiceError, ServiceResult};
use athanor_core::api::{LogPage, ResultPage, RunOverview};
use athanor_core::compare::Comparison;
use athanor_core::{LogFilter, LogRecord, RunId};
use athanor_store::LogQuery;

/// The most log lines or results one read returns, whatever `limit` asks for.
pub const MAX_RECORDS: u32 = 5_000;

/// The most runs one comparison takes.
pub const MAX_COMPARED: usize = 1_000;

/// The most result data (keys and values, as stored) one comparison loads by default: a comparison is built in
/// memory, so past this it is refused (`too_large`) instead of growing the server by gigabytes.
pub const DEFAULT_COMPARE_BUDGET: u64 = 64 * 1024 * 1024;

impl Service {
    /// A run's log lines after `after` (0: from the start), oldest first, that pass `filter`.
    pub async fn logs(&self, id: RunId, after: i64, filter: &LogFilter, limit: u32) -> ServiceResult<LogPage> {
        check_filter(filter)?;
        self.run(id).await?;
        let query = LogQuery { after_seq: after, filter: filter.clone(), limit: limit.clamp(1, MAX_RECORDS) };
        let page = self.store.logs(id, &query).await?;
        Ok(LogPage { items: page.items, next_after: page.next_after_seq })
    }

    /// The `limit` log lines just before `before` (`i64::MAX`: the run's last lines) that pass `filter`, oldest
    /// first. The filter runs in the database over the whole run, so the thousand errors among a million lines
    /// are one request away.
    pub async fn logs_before(
        &self,
        id: RunId,
        before: i64,
        filter: &LogFilter,
        limit: u32,
    ) -> ServiceResult<Vec<LogRecord>> {
        check_filter(filter)?;
        self.run(id).await?;
        Ok(self.store.logs_before(id, before, filter, limit.clamp(1, MAX_RECORDS)).await?)
    }

    /// How many of a run's log lines before `before` pass `filter`: the total of a search whose last page
    /// [`Service::logs_before`] gives. A level-only filter is answered from the run's per-level totals when it
    /// covers the whole run; a text filter reads the run's lines in the database.
    pub async fn count_logs(&self, id: RunId, filter: &LogFilter, before: i64) -> ServiceResult<i64> {
        check_filter(filter)?;
        self.run(id).await?;
        if filter.text.is_none() {
            let tally = self.store.tally(id).await?;
            if before > tally.last_seq {
                return Ok(tally.levels.admitted_by(filter));
            }
        }
        Ok(self.store.count_matching(id, filter, before).await?)
    }

    /// A run's results after `after`, in `seq` order; only those named `key` when given (a key recorded many
    /// times, such as a curve, gives one record per value).
    pub async fn results(&self, id: RunId, key: Option<&str>, after: i64, limit: u32) -> ServiceResult<ResultPage> {
        self.run(id).await?;
        let limit = limit.clamp(1, MAX_RECORDS);
        let page = match key {
            Some(key) => self.store.results_with_key(id, key, after, limit).await?,
            None => self.store.results(id, after, limit).await?,
        };
        Ok(ResultPage { items: page.items, next_after: page.next_after_seq })
    }

    /// A run with its last `log_tail` log lines and first `result_head` results, read at one cursor (`last_seq`)
    /// from which a live stream continues with no gap and no duplicate.
    pub async fn run_overview(&self, id: RunId, log_tail: u32, result_head: u32) -> ServiceResult<RunOverview> {
        let run = self.run(id).await?;
        // The totals and their cursor come from one row the writer keeps, so they agree with each other however
        // the run goes on meanwhile, and cost the same for a million lines as for ten. Anything committed after
        // the cursor arrives through the live stream instead.
        let tally = self.store.tally(id).await?;
        let last_seq = tally.last_seq;
        let logs = self.store.logs_before(id, last_seq + 1, &LogFilter::all(), log_tail.clamp(1, MAX_RECORDS)).await?;
        let results = self
            .store
            .results(id, 0, result_head.clamp(1, MAX_RECORDS))
            .await?
            .items
            .into_iter()
            .filter(|r| r.seq <= last_seq)
            .collect();
        let instance = self.store.get_instance(run.instance_id).await?;
        Ok(RunOverview {
            instance_name: instance.as_ref().map(|i| i.name.to_string()).unwrap_or_default(),
            instance_config_changed: instance.is_some_and(|i| i.config != run.config),
            log_total: tally.levels.total(),
            log_levels: tally.levels,
            result_total: tally.results,
            run,
            logs,
            results,
            last_seq,
            node: self.run_node(id).await?,
        })
    }

    /// Runs side by side, in the order given: configuration diff, results aligned by key, numeric series. Refused
    /// (`TooLarge`) when their results exceed the comparison budget ([`DEFAULT_COMPARE_BUDGET`] unless set with
    /// [`Service::with_compare_budget`]).
    pub async fn compare(&self, ids: &[RunId]) -> ServiceResult<Comparison> {
        if ids.is_empty() {
            return Err(ServiceError::invalid_field("runs", "choose at least one run to compare"));
        }
        if ids.len() > MAX_COMPARED {
            return Err(ServiceError::invalid_field(
                "runs",
                format!("{} runs asked for; a comparison takes at most {MAX_COMPARED}", ids.len()),
            ));
        }
        let size = u64::try_from(self.store.results_size_of_runs(ids).await?).unwrap_or(0);
        if size > self.compare_budget {
            return Err(ServiceError::TooLarge(format!(
                "these {} runs have {} of results, more than the {} a comparison loads; compare fewer runs",
                ids.len(),
                mebibytes(size),
                mebibytes(self.compare_budget)
            )));
        }
        let found = self.store.runs_by_ids(ids).await?;
        if let Some(missing) = ids.iter().find(|id| !found.iter().any(|(run, _)| run.id == **id)) {
            return Err(run_not_found(*missing));
        }
        let results = self.store.results_of_runs(ids).await?;
        Ok(athanor_core::compare::compare(&found, &results, chrono::Utc::now()))
    }
}

/// Refuse a filter the store will not run, naming the `text` field.
fn check_filter(filter: &LogFilter) -> ServiceResult<()> {
    filter.check().map_err(|message| ServiceError::invalid_field("text", message))
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
