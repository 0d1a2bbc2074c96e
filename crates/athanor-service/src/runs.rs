//! Runs: start, cancel, read, list, wait for the end, follow live.

use crate::{run_not_found, Service, ServiceError, ServiceResult};
use athanor_core::api::{Paged, WaitOutcome};
use athanor_core::{InstanceId, LifecycleEvent, Run, RunEvent, RunId, RunListing, RunStatus};
use athanor_store::{RunFilter, RunKey};
use futures::{Stream, StreamExt};
use std::time::Duration;

/// The most runs one page lists, whatever `limit` asks for.
pub const MAX_PAGE: u32 = 500;

/// How long [`Service::wait_for_run`] waits when the caller names no time.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The longest one wait lasts, whatever the caller asks: a client that wants longer asks again (the answer says
/// whether the run ended), so no request holds a connection for hours.
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// Which runs to list, newest first, and from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// Only runs of instances of this experiment.
    pub experiment: Option<String>,
    /// Only runs of this instance.
    pub instance: Option<InstanceId>,
    /// Only runs with this status.
    pub status: Option<RunStatus>,
    /// Continue after the page that answered with this `next_cursor`.
    pub cursor: Option<String>,
    /// At most this many (default 50, at most [`MAX_PAGE`]).
    pub limit: Option<u32>,
}

impl Service {
    /// Start a run of an instance: it gets its own copy of the configuration and waits as `pending` while the
    /// server is at its concurrency limit.
    /// Refused (`Conflict`) while the instance is being deleted, and while the queue is full.
    pub async fn start_run(&self, instance: InstanceId) -> ServiceResult<Run> {
        let _in_flight = self
            .gate
            .start(instance)
            .ok_or_else(|| ServiceError::Conflict(format!("instance {instance} is being deleted")))?;
        Ok(self.runtime.start(instance).await?)
    }

    /// Cancel a run: a pending one ends at once; a running one is asked to stop, then stopped by force after the
    /// cancel grace period. Answers the run as it is right after the request (still `running` while it stops).
    pub async fn cancel_run(&self, id: RunId) -> ServiceResult<Run> {
        self.runtime.cancel(id).await?;
        self.run(id).await
    }

    /// One run: status, configuration snapshot, times, error.
    pub async fn run(&self, id: RunId) -> ServiceResult<Run> {
        self.store.get_run(id).await?.ok_or_else(|| run_not_found(id))
    }

    /// A page of runs across instances, newest first, with a cursor to the next page. Pages stay consistent while
    /// runs are created: a cursor names the last run seen, not an offset.
    pub async fn list_runs(&self, query: RunQuery) -> ServiceResult<Paged<RunListing>> {
        let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
        let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
        let filter = RunFilter { experiment: query.experiment, instance: query.instance, status: query.status };
        // One more than asked tells whether a next page exists without a count.
        let mut items = self.store.runs_after(&filter, after, i64::from(limit) + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|last| encode_cursor(&last.run))
        } else {
            None
        };
        Ok(Paged { items, next_cursor })
    }

    /// Page number `page` (from 0) of `page_size` runs matching the filters of `query` (its cursor and limit are
    /// not used), and the exact total matching: the dashboard's runs list, with numbered page links.
    pub async fn runs_page(
        &self,
        query: &RunQuery,
        page: i64,
        page_size: i64,
    ) -> ServiceResult<(Vec<RunListing>, i64)> {
        let page_size = page_size.max(1);
        // Clamped so a hand-typed `?page=` cannot overflow the offset.
        let offset = page.clamp(0, i64::MAX / page_size) * page_size;
        Ok(self
            .store
            .list_all_runs(query.experiment.as_deref(), query.instance, query.status, offset, page_size)
            .await?)
    }

    /// Wait until the run has ended or `timeout` has passed, whichever is first; answers the run as it is then.
    /// `None` waits [`DEFAULT_WAIT`]; no wait lasts longer than [`MAX_WAIT`].
    pub async fn wait_for_run(&self, id: RunId, timeout: Option<Duration>) -> ServiceResult<WaitOutcome> {
        let timeout = timeout.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
        let _held = self.hold_answer()?;
        match tokio::time::timeout(timeout, self.runtime.wait_for_end(id)).await {
            Ok(ended) => Ok(WaitOutcome { run: ended?, ended: true }),
            Err(_) => Ok(WaitOutcome { run: self.run(id).await?, ended: false }),
        }
    }

    /// A run's live events: a snapshot, the stored records after `after_seq`, then live records, progress and
    /// status changes, ending with the terminal status once every record before it was sent.
    pub async fn run_events(
        &self,
        id: RunId,
        after_seq: i64,
    ) -> ServiceResult<impl Stream<Item = ServiceResult<RunEvent>> + Send + 'static> {
        // Checked first so an unknown run is an error answer, not an error inside an already started stream.
        self.run(id).await?;
        Ok(self.runtime.run_events(id, after_seq).map(|event| event.map_err(ServiceError::from)))
    }
}

impl Service {
    /// Instance and run lifecycle changes as they happen (created, edited, deleted, status changed, experiments
    /// changed), with [`LifecycleEvent::Resync`] when the subscriber fell behind and should reload.
    pub fn lifecycle_events(&self) -> impl Stream<Item = LifecycleEvent> + Send + 'static {
        self.runtime.lifecycle_events()
    }
}

/// `<created_at as RFC 3339 with nanoseconds>_<run id>`: readable in a log, opaque to clients.
fn encode_cursor(run: &Run) -> String {
    format!("{}_{}", run.created_at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true), run.id)
}

fn decode_cursor(text: &str) -> ServiceResult<RunKey> {
    let refused = || ServiceError::invalid_field("cursor", format!("{text:?} is not a cursor this server handed out"));
    let (time, id) = text.rsplit_once('_').ok_or_else(refused)?;
    let created_at = chrono::DateTime::parse_from_rfc3339(time).map_err(|_| refused())?.with_timezone(&chrono::Utc);
    let id = RunId::parse(id).map_err(|_| refused())?;
    Ok(RunKey { created_at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_the_run_it_names_and_junk_is_refused_by_field() {
        let run = Run {
            id: RunId::from(uuid::Uuid::new_v4()),
            instance_id: InstanceId::from(uuid::Uuid::new_v4()),
            status: RunStatus::Pending,
            config: serde_json::Value::Null,
            experiment_version: "1".into(),
            created_at: chrono::Utc::now(),
            started_at: None,
            completed_at: None,
            error: None,
        };
        let key = decode_cursor(&encode_cursor(&run)).unwrap();
        assert_eq!((key.created_at, key.id), (run.created_at, run.id));
        let refused = decode_cursor("page-2").unwrap_err();
        assert!(matches!(&refused, ServiceError::Invalid { fields, .. } if fields[0].path == "cursor"), "{refused:?}");
    }
}
