//! The single writer: records from every run flow through one bounded channel into batched transactions.
//!
//! **Back-pressure policy.** The channel holds at most `capacity` messages, and a message carries at most
//! [`MAX_LINES_PER_MESSAGE`] records, so memory is bounded whatever the log rate. While the writer keeps up, a
//! `log` call is a channel send (tens of nanoseconds) and never touches the database. When the channel is full,
//! `log(..).await` waits for room: experiments slow down to the database's pace. Nothing accepted is ever
//! dropped — a failed commit is retried (with backoff) until it succeeds, holding the batch; the only records
//! discarded are those of a run whose row no longer exists (its instance was deleted).
//!
//! **Latency.** The writer commits whatever has arrived as soon as the previous commit ends, so under light load
//! a line is stored within one commit's time, and under heavy load batches grow (up to [`MAX_MESSAGES_PER_COMMIT`]
//! messages) and throughput rises. Either way no record waits more than one commit plus the batch it joins —
//! far inside the 100 ms the design asks for.
//!
//! **Order.** The writer assigns each run's `seq` as records leave the channel, so `seq` order is commit order:
//! once a viewer has seen `seq = N`, everything below N is already in the database.

use crate::hub::Hub;
use athanor_core::RunId;
use athanor_core::{LogRecord, NewLog, NewResult, ResultRecord, RunEvent};
use athanor_store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// `log_batch` splits larger batches into messages of this many lines, so one message never holds more.
pub const MAX_LINES_PER_MESSAGE: usize = 64;
/// Messages taken from the channel for one transaction.
pub const MAX_MESSAGES_PER_COMMIT: usize = 4_096;

/// What flows to the writer.
pub(crate) enum WriterMessage {
    /// A run is starting: accept its records, numbering from `last_seq + 1`.
    Open {
        run_id: RunId,
        last_seq: i64,
    },
    Log {
        run_id: RunId,
        log: NewLog,
    },
    Logs {
        run_id: RunId,
        logs: Vec<NewLog>,
    },
    Result {
        run_id: RunId,
        result: NewResult,
    },
    /// The run has ended: commit everything before this message, then acknowledge. Records after it are refused.
    Close {
        run_id: RunId,
        done: oneshot::Sender<()>,
    },
}

/// Records assigned their `seq`, waiting for the next commit.
#[derive(Default)]
struct Pending {
    logs: Vec<(RunId, LogRecord)>,
    results: Vec<(RunId, ResultRecord)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.results.is_empty()
    }
}

/// Work for the committer, in order.
enum CommitJob {
    Batch(Pending),
    /// Acknowledge once every batch before this one is committed.
    Ack(oneshot::Sender<()>),
}

/// Takes records off the channel, numbers them and groups them into batches.
///
/// Committing happens in a separate task ([`Committer`]) so the next batch is assembled while the previous one is
/// in the database: on two cores that overlap is worth a good third of the throughput.
pub(crate) struct Writer {
    receiver: mpsc::Receiver<WriterMessage>,
    commits: mpsc::Sender<CommitJob>,
    /// Last `seq` handed out per open run.
    last_seq: HashMap<RunId, i64>,
}

impl Writer {
    /// Build the writer and spawn its committer.
    pub(crate) fn new(store: Store, hub: Arc<Hub>, receiver: mpsc::Receiver<WriterMessage>) -> Writer {
        // One batch in the database, one waiting: memory stays bounded, the pipeline stays full.
        let (commits, jobs) = mpsc::channel(1);
        tokio::spawn(Committer { store, hub }.run(jobs));
        Writer { receiver, commits, last_seq: HashMap::new() }
    }

    /// Run until every sender is gone, committing all that arrived.
    pub(crate) async fn run(mut self) {
        let mut inbox = Vec::with_capacity(MAX_MESSAGES_PER_COMMIT);
        let mut pending = Pending::default();
        while self.receiver.recv_many(&mut inbox, MAX_MESSAGES_PER_COMMIT).await > 0 {
            for message in inbox.drain(..) {
                self.accept(message, &mut pending).await;
            }
            self.commit(&mut pending).await;
        }
        self.commit(&mut pending).await;
    }

    /// Hand the pending records to the committer (waits while it is a batch behind: back-pressure).
    async fn commit(&mut self, pending: &mut Pending) {
        if !pending.is_empty() {
            // The committer lives as long as this writer; a send error means the runtime is being torn down.
            let _ = self.commits.send(CommitJob::Batch(std::mem::take(pending))).await;
        }
    }

    async fn accept(&mut self, message: WriterMessage, pending: &mut Pending) {
        match message {
            WriterMessage::Open { run_id, last_seq } => {
                self.last_seq.insert(run_id, last_seq);
            }
            WriterMessage::Log { run_id, log } => {
                if let Some(seq) = self.next_seq(run_id) {
                    pending.logs.push((run_id, into_record(seq, log)));
                }
            }
            WriterMessage::Logs { run_id, logs } => {
                for log in logs {
                    if let Some(seq) = self.next_seq(run_id) {
                        pending.logs.push((run_id, into_record(seq, log)));
                    }
                }
            }
            WriterMessage::Result { run_id, result } => {
                if let Some(seq) = self.next_seq(run_id) {
                    let NewResult { ts, key, value } = result;
                    pending.results.push((run_id, ResultRecord { seq, ts, key, value }));
                }
            }
            WriterMessage::Close { run_id, done } => {
                self.commit(pending).await;
                self.last_seq.remove(&run_id);
                let _ = self.commits.send(CommitJob::Ack(done)).await;
            }
        }
    }

    fn next_seq(&mut self, run_id: RunId) -> Option<i64> {
        match self.last_seq.get_mut(&run_id) {
            Some(seq) => {
                *seq += 1;
                Some(*seq)
            }
            None => {
                // Only a task the experiment left running after `run` returned can get here: the run is over and
                // its final status written, so the line is not part of it.
                tracing::debug!(%run_id, "record after the run ended; ignored");
                None
            }
        }
    }
}

/// Commits batches in order, retrying until each lands, then tells watchers.
struct Committer {
    store: Store,
    hub: Arc<Hub>,
}

impl Committer {
    async fn run(self, mut jobs: mpsc::Receiver<CommitJob>) {
        while let Some(job) = jobs.recv().await {
            match job {
                CommitJob::Batch(mut pending) => self.commit(&mut pending).await,
                CommitJob::Ack(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Commit `pending` (retrying until it lands), then hand the records to watchers.
    async fn commit(&self, pending: &mut Pending) {
        if pending.is_empty() {
            return;
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            let logs: Vec<(RunId, &LogRecord)> = pending.logs.iter().map(|(run, log)| (*run, log)).collect();
            let results: Vec<(RunId, &ResultRecord)> = pending.results.iter().map(|(run, r)| (*run, r)).collect();
            match self.store.append_rows(&logs, &results).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, records = logs.len() + results.len(), "commit of run records failed; retrying");
                    drop((logs, results));
                    self.drop_records_of_deleted_runs(pending).await;
                    if pending.is_empty() {
                        return;
                    }
                    // Backoff between retries of a failing database, not a synchronisation: nothing to await.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.publish(std::mem::take(pending));
    }

    /// A run deleted with its instance cannot take records; everything else must be kept and retried.
    async fn drop_records_of_deleted_runs(&self, pending: &mut Pending) {
        let mut runs: Vec<RunId> =
            pending.logs.iter().map(|(run, _)| *run).chain(pending.results.iter().map(|(run, _)| *run)).collect();
        runs.sort_unstable();
        runs.dedup();
        for run_id in runs {
            match self.store.get_run(run_id).await {
                Ok(None) => {
                    tracing::info!(%run_id, "run was deleted; discarding its unsaved records");
                    pending.logs.retain(|(run, _)| *run != run_id);
                    pending.results.retain(|(run, _)| *run != run_id);
                }
                Ok(Some(_)) => {}
                Err(error) => tracing::warn!(%run_id, %error, "cannot check whether the run still exists"),
            }
        }
    }

    fn publish(&self, pending: Pending) {
        let mut by_run: HashMap<RunId, (Vec<LogRecord>, Vec<ResultRecord>)> = HashMap::new();
        for (run_id, log) in pending.logs {
            by_run.entry(run_id).or_default().0.push(log);
        }
        for (run_id, result) in pending.results {
            by_run.entry(run_id).or_default().1.push(result);
        }
        for (run_id, (logs, results)) in by_run {
            if self.hub.is_watched(run_id) {
                self.hub.publish_run(run_id, RunEvent::Records { logs, results });
            }
        }
    }
}

fn into_record(seq: i64, log: NewLog) -> LogRecord {
    let NewLog { ts, level, message, metadata } = log;
    LogRecord { seq, ts, level, message, metadata }
}
