//! Gap-free subscriptions: replay from the database after a `seq`, then follow live, and catch up again after
//! lagging.
//!
//! The order of operations is what makes it gap-free: subscribe to the live topic **first**, then read the
//! database. Anything committed before the subscription is in the database read; anything committed after it
//! arrives live; the overlap is removed by skipping `seq <= last seen`. Since the writer numbers records in commit
//! order and publishes only after commit, "last seen" is always a safe resume point, for this stream and for a
//! client reconnecting with it. Records the hub left out of the live topic for want of room
//! ([`RunTopicItem::Stored`]) are read from the database the same way as after lagging.

use crate::hub::{Hub, RunTopicItem};
use crate::supervisor::{Runtime, RuntimeError};
use athanor_core::RunId;
use athanor_core::{LifecycleEvent, LogRecord, ResultRecord, Run, RunEvent};
use athanor_store::{LogQuery, Store};
use futures::Stream;
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::RecvError};

/// Records read from the database per page while catching up.
const CATCH_UP_PAGE: u32 = 2_000;

/// Read the next stored records after `after_seq`, never skipping one.
///
/// Logs and results are two tables read by two statements, and a batch can commit between them. So first the
/// high-water mark is read: every record up to it is committed (the writer numbers records in commit order and
/// commits batches in order), and both reads keep only records at or below it. A later page picks up the rest.
/// When either page stops at its bound (rows, or bytes: a page holds at most [`athanor_store::PAGE_BYTES`], so
/// catching up on huge lines costs megabytes, not gigabytes), the page ends at the smaller of the two last
/// `seq`s, so nothing between is left behind in the other table.
async fn backlog_page(
    store: &Store,
    run_id: RunId,
    after_seq: i64,
) -> Result<(Vec<LogRecord>, Vec<ResultRecord>), RuntimeError> {
    let high_water = store.last_seq(run_id).await?;
    if high_water <= after_seq {
        return Ok((Vec::new(), Vec::new()));
    }
    let logs = store.logs(run_id, &LogQuery::first(CATCH_UP_PAGE).after(after_seq)).await?;
    let results = store.results(run_id, after_seq, CATCH_UP_PAGE).await?;
    let cutoff = [
        Some(high_water),
        logs.full.then(|| logs.items.last().map(|l| l.seq)).flatten(),
        results.full.then(|| results.items.last().map(|r| r.seq)).flatten(),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(high_water);
    let (mut logs, mut results) = (logs.items, results.items);
    logs.retain(|log| log.seq <= cutoff);
    results.retain(|result| result.seq <= cutoff);
    Ok((logs, results))
}

fn last_seq_of(logs: &[LogRecord], results: &[ResultRecord]) -> Option<i64> {
    logs.last().map(|l| l.seq).into_iter().chain(results.last().map(|r| r.seq)).max()
}

/// A run topic receiver that releases the topic when the subscription ends, so watching finished runs leaks
/// nothing.
struct LiveRun {
    receiver: broadcast::Receiver<Arc<RunTopicItem>>,
    hub: Arc<Hub>,
    run_id: RunId,
}

impl Drop for LiveRun {
    fn drop(&mut self) {
        // Swap in a receiver of a throwaway channel so ours is dropped before the release check counts receivers.
        let (_sender, detached) = broadcast::channel(1);
        drop(std::mem::replace(&mut self.receiver, detached));
        self.hub.release_run(self.run_id);
    }
}

impl Runtime {
    /// A run's events: a [`RunEvent::Snapshot`], the stored records after `after_seq`, then live records,
    /// progress and status changes. It ends with the terminal [`RunEvent::Status`], sent only after every record
    /// before it (also for a run that had already ended when the subscription began).
    pub fn run_events(
        &self,
        run_id: RunId,
        after_seq: i64,
    ) -> impl Stream<Item = Result<RunEvent, RuntimeError>> + Send + 'static {
        let runtime = self.clone();
        async_stream::try_stream! {
            let (live, progress) = runtime.hub().subscribe_run(run_id);
            let mut live = LiveRun { receiver: live, hub: runtime.hub_handle(), run_id };
            let run = runtime.store().get_run(run_id).await?.ok_or(RuntimeError::RunNotFound(run_id))?;
            // A terminal status is held back until the records before it have been sent, so a viewer that stops
            // at the terminal status has seen everything.
            let mut ended: Option<Run> = run.status.is_terminal().then(|| run.clone());
            yield RunEvent::Snapshot { run, progress };

            let mut last_seq = after_seq;
            'catch_up: loop {
                loop {
                    let (logs, results) = backlog_page(runtime.store(), run_id, last_seq).await?;
                    let Some(page_last) = last_seq_of(&logs, &results) else { break };
                    last_seq = page_last;
                    yield RunEvent::Records { logs, results };
                }
                if let Some(run) = ended.take() {
                    yield RunEvent::Status(run);
                    break 'catch_up;
                }
                loop {
                    match live.receiver.recv().await {
                        Ok(item) => {
                            // What to send is taken out of the shared item, which is let go before the send: a
                            // consumer that is slow to take it does not keep the item charged to the hub.
                            let next = match item.as_ref() {
                                RunTopicItem::Stored => {
                                    tracing::debug!(%run_id, "records left out of the live topic; reading the database");
                                    continue 'catch_up;
                                }
                                RunTopicItem::Event(RunEvent::Records { logs, results }, _) => {
                                    let logs: Vec<_> = logs.iter().filter(|l| l.seq > last_seq).cloned().collect();
                                    let results: Vec<_> =
                                        results.iter().filter(|r| r.seq > last_seq).cloned().collect();
                                    match last_seq_of(&logs, &results) {
                                        Some(page_last) => {
                                            last_seq = page_last;
                                            RunEvent::Records { logs, results }
                                        }
                                        None => continue,
                                    }
                                }
                                RunTopicItem::Event(RunEvent::Status(run), _) if run.status.is_terminal() => {
                                    // The final flush preceded this status, but this subscriber may have lagged
                                    // past some records: one last catch-up from the database, then the status.
                                    ended = Some(run.clone());
                                    continue 'catch_up;
                                }
                                RunTopicItem::Event(other, _) => other.clone(),
                            };
                            drop(item);
                            yield next;
                        }
                        Err(RecvError::Lagged(missed)) => {
                            tracing::debug!(%run_id, missed, "subscriber lagged; catching up from the database");
                            // The status may have changed while we were behind.
                            if let Some(run) = runtime.store().get_run(run_id).await? {
                                if run.status.is_terminal() {
                                    ended = Some(run);
                                } else {
                                    yield RunEvent::Status(run);
                                }
                            }
                            continue 'catch_up;
                        }
                        Err(RecvError::Closed) => break 'catch_up,
                    }
                }
            }
        }
    }

    /// Wait until the run has ended (returns at once for a run that already has), and return it.
    pub async fn wait_for_end(&self, run_id: RunId) -> Result<Run, RuntimeError> {
        use futures::StreamExt;
        // After `i64::MAX`: no records, only the snapshot, status changes and the closing terminal status.
        let mut events = std::pin::pin!(self.run_events(run_id, i64::MAX));
        while let Some(event) = events.next().await {
            if let RunEvent::Status(run) = event? {
                if run.status.is_terminal() {
                    return Ok(run);
                }
            }
        }
        Err(RuntimeError::RunNotFound(run_id))
    }

    /// Instance and run lifecycle changes, with [`LifecycleEvent::Resync`] when the subscriber fell behind.
    pub fn lifecycle_events(&self) -> impl Stream<Item = LifecycleEvent> + Send + 'static {
        let mut receiver = self.hub().subscribe_lifecycle();
        async_stream::stream! {
            loop {
                match receiver.recv().await {
                    Ok(event) => yield event,
                    Err(RecvError::Lagged(_)) => yield LifecycleEvent::Resync,
                    Err(RecvError::Closed) => break,
                }
            }
        }
    }
}
