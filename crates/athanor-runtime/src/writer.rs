//! The single writer: records from every run flow through one channel into batched transactions.
//!
//! **Back-pressure policy.** Memory is bounded in bytes: before a message enters the channel its sender takes room
//! for the message's approximate size from the [`RecordBudget`] (64 MiB by default), and the room is given back
//! once the message's records are committed; a message larger than the whole budget takes all of it. The channel
//! also holds at most `capacity` messages of at most [`MAX_LINES_PER_MESSAGE`] records. While the writer keeps up,
//! a `log` call is an uncontended atomic and a channel send and never touches the database; when the budget or the
//! channel is spent, `log(..).await` waits for room: experiments slow down to the database's pace.
//!
//! **Failures.** A commit that fails for a passing reason (the connection lost, no connection to be had, the
//! database busy or locked: [`StoreError::is_transient`]) is retried with backoff until it succeeds, holding the
//! batch, however long the database is gone; the outage is logged once as an error when it starts (again every
//! 30 s while it lasts) and as a warning when the database is back (`DatabaseHealth`). Appends are idempotent,
//! so retrying a commit whose first attempt did land stores nothing twice. A commit the database refuses for good
//! (a constraint, a value it cannot store) is split — by runs, then in halves — until the refused records are
//! isolated: the run they belong to keeps its records before the first refused one, is stopped and ends `failed`
//! ("its records could not be stored: …"), its later records are discarded, and every other run goes on. The
//! records of a run whose row was deleted (with its instance) are discarded the same way.
//!
//! **If the writer dies** (a panic), it says so with `tracing::error!`; every open run is stopped and ends
//! `failed` ("the record writer stopped: …"), and further records are refused instead of silently piling up.
//!
//! **Latency.** The writer commits whatever has arrived as soon as the previous commit ends, so under light load
//! a line is stored within one commit's time, and under heavy load batches grow (up to [`MAX_MESSAGES_PER_COMMIT`]
//! messages) and throughput rises. Either way no record waits more than one commit plus the batch it joins —
//! far inside the 100 ms the design asks for.
//!
//! **Order.** The writer assigns each run's `seq` as records leave the channel, and batches (and the parts of a
//! split batch, in `seq` order within each run) are committed one after another, so `seq` order is commit order:
//! once a viewer has seen `seq = N`, everything below N is already in the database. Records reach viewers only
//! after their commit.

use crate::budget::RecordBudget;
use crate::hub::Hub;
use athanor_core::RunId;
use athanor_core::{LogRecord, NewLog, NewResult, ResultRecord, RunEvent};
use athanor_store::{approx_json_bytes, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

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
    /// The run has ended: commit everything before this message, then acknowledge with the reason the run must
    /// fail if some of its records could not be stored. Records after it are refused.
    Close {
        run_id: RunId,
        done: oneshot::Sender<Option<String>>,
    },
}

impl WriterMessage {
    /// Roughly the bytes this message's records hold from the send until their commit.
    fn approx_bytes(&self) -> usize {
        fn log_bytes(log: &NewLog) -> usize {
            size_of::<(RunId, LogRecord)>() + log.message.len() + log.metadata.as_ref().map_or(0, approx_json_bytes)
        }
        match self {
            WriterMessage::Log { log, .. } => log_bytes(log),
            WriterMessage::Logs { logs, .. } => logs.iter().map(log_bytes).sum(),
            WriterMessage::Result { result, .. } => {
                size_of::<(RunId, ResultRecord)>() + result.key.len() + approx_json_bytes(&result.value)
            }
            WriterMessage::Open { .. } | WriterMessage::Close { .. } => 0,
        }
    }
}

/// A message in the channel, with the room it took from the budget.
pub(crate) struct Envelope {
    pub(crate) message: WriterMessage,
    permits: u32,
}

/// The record writer has stopped: nothing more can be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriterStopped;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a single map operation or a loop of cancels: nothing is left half-done.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How often a database that stays unavailable is mentioned again at `error` level (every failure is at `debug`).
const OUTAGE_REMINDER: Duration = Duration::from_secs(30);

/// Whether the database took the runtime's last write: the one place that says, loudly and once per outage, that
/// it has become unavailable and, when a write goes through again, that it is back and for how long it was gone.
/// The committer (records) and the supervisor (status changes) both report here, so an outage is announced once
/// however many writes it holds up.
pub(crate) struct DatabaseHealth {
    /// Set while an outage lasts: the fast path of [`DatabaseHealth::reachable`], taken after every commit.
    down: AtomicBool,
    outage: Mutex<Option<Outage>>,
}

struct Outage {
    since: Instant,
    last_said: Instant,
    failures: u64,
}

impl DatabaseHealth {
    fn new() -> DatabaseHealth {
        DatabaseHealth { down: AtomicBool::new(false), outage: Mutex::new(None) }
    }

    /// A write failed for a passing reason (`doing` says which, for the message); it will be retried.
    pub(crate) fn unreachable(&self, error: &StoreError, doing: &str) {
        let now = Instant::now();
        let mut outage = lock(&self.outage);
        match outage.as_mut() {
            None => {
                self.down.store(true, Ordering::SeqCst);
                *outage = Some(Outage { since: now, last_said: now, failures: 1 });
                tracing::error!(
                    %error,
                    "the database is unavailable ({doing} failed). Run records and status changes are held and \
                     retried until it is back, nothing is dropped; runs that log wait for it once the record budget \
                     is full, and requests that need the database fail meanwhile"
                );
            }
            Some(outage) => {
                outage.failures += 1;
                if now.duration_since(outage.last_said) >= OUTAGE_REMINDER {
                    outage.last_said = now;
                    let down_for = now.duration_since(outage.since).as_secs();
                    tracing::error!(%error, down_for_s = down_for, "the database is still unavailable; retrying");
                } else {
                    tracing::debug!(%error, "{doing} failed; the database is still unavailable");
                }
            }
        }
    }

    /// A write went through: if the database had been unavailable, say that it is back.
    pub(crate) fn reachable(&self) {
        if !self.down.load(Ordering::SeqCst) {
            return;
        }
        if let Some(outage) = lock(&self.outage).take() {
            self.down.store(false, Ordering::SeqCst);
            let down_for = outage.since.elapsed();
            tracing::warn!(
                down_for_s = down_for.as_secs(),
                failed_attempts = outage.failures,
                "the database is available again after {:.1} s; writing the records and status changes held meanwhile",
                down_for.as_secs_f64()
            );
        }
    }
}

/// What the senders, the writer and the committer share.
struct Shared {
    budget: RecordBudget,
    /// Whether the database is taking writes (for the log; see [`DatabaseHealth`]).
    database: DatabaseHealth,
    /// The cancellation of each open run: the committer stops a run whose records cannot be stored, and every
    /// open run when the writer dies.
    open_runs: Mutex<HashMap<RunId, CancellationToken>>,
    /// Why the writer stopped, once it has.
    stopped: OnceLock<String>,
    /// Cancelled once `stopped` is set.
    stopped_signal: CancellationToken,
}

impl Shared {
    fn stop(&self, reason: String) {
        let _ = self.stopped.set(reason);
        self.budget.close();
        for run in lock(&self.open_runs).values() {
            run.cancel();
        }
        self.stopped_signal.cancel();
    }

    async fn stopped_reason(&self) -> String {
        self.stopped_signal.cancelled().await;
        self.stopped.get().cloned().unwrap_or_else(|| "the record writer stopped".to_owned())
    }
}

/// The senders' side of the writer: records in, and the supervisor's opening and closing of runs. Cheap to clone.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    sender: mpsc::Sender<Envelope>,
    shared: Arc<Shared>,
}

impl WriterHandle {
    /// Start the writer and its committer over `store`: a channel of `capacity` messages and a budget of
    /// `budget_bytes` bytes accepted and not yet committed.
    /// `announce_commits`: say on PostgreSQL which runs each commit had records of, for the servers of a shared
    /// queue that show runs executing here (see `crate::node`).
    pub(crate) fn spawn(
        store: Store,
        hub: Arc<Hub>,
        capacity: usize,
        budget_bytes: usize,
        announce_commits: bool,
    ) -> WriterHandle {
        let (handle, receiver) = WriterHandle::unstarted(capacity, budget_bytes);
        // One batch in the database, one waiting: the pipeline stays full (their bytes are in the budget).
        let (commits, jobs) = mpsc::channel(1);
        let shared = handle.shared.clone();
        let committer = Committer { store, hub, shared: shared.clone(), failed: HashMap::new(), announce_commits };
        watch("committer", shared.clone(), committer.run(jobs));
        watch("batcher", shared.clone(), Writer { receiver, commits, last_seq: HashMap::new(), shared }.run());
        handle
    }

    /// A handle whose messages go to the returned receiver, with nothing started (tests read the channel
    /// themselves).
    pub(crate) fn unstarted(capacity: usize, budget_bytes: usize) -> (WriterHandle, mpsc::Receiver<Envelope>) {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let shared = Arc::new(Shared {
            budget: RecordBudget::new(budget_bytes),
            database: DatabaseHealth::new(),
            open_runs: Mutex::new(HashMap::new()),
            stopped: OnceLock::new(),
            stopped_signal: CancellationToken::new(),
        });
        (WriterHandle { sender, shared }, receiver)
    }

    /// The byte budget of records accepted and not yet committed.
    pub(crate) fn budget(&self) -> &RecordBudget {
        &self.shared.budget
    }

    /// Whether the database is taking writes; the supervisor reports its status changes here too.
    pub(crate) fn database(&self) -> &DatabaseHealth {
        &self.shared.database
    }

    /// Hand records to the writer, waiting while the budget or the channel is full.
    pub(crate) async fn send(&self, message: WriterMessage) -> Result<(), WriterStopped> {
        let room = self.shared.budget.acquire(message.approx_bytes()).await.map_err(|_| WriterStopped)?;
        // Reserve the channel slot first: a sender cancelled while waiting for it gives its room back (`room` is
        // dropped); once the message is queued, the room travels with it until its records are committed.
        let slot = self.sender.reserve().await.map_err(|_| WriterStopped)?;
        slot.send(Envelope { message, permits: room.hand_over() });
        Ok(())
    }

    /// A run is starting: accept its records. `stop` is cancelled if its records cannot be stored (or the writer
    /// dies), so the run ends early; [`WriterHandle::close`] then says why it failed. Refused, with the reason,
    /// when the writer has stopped.
    pub(crate) async fn open(&self, run_id: RunId, last_seq: i64, stop: CancellationToken) -> Result<(), String> {
        lock(&self.shared.open_runs).insert(run_id, stop);
        // Checked after registering, so a writer dying now either is seen here or cancels the run.
        let refused = match self.shared.stopped.get() {
            Some(reason) => Some(reason.clone()),
            None => {
                match self.sender.send(Envelope { message: WriterMessage::Open { run_id, last_seq }, permits: 0 }).await
                {
                    Ok(()) => None,
                    Err(_) => Some(self.shared.stopped_reason().await),
                }
            }
        };
        match refused {
            None => Ok(()),
            Some(reason) => {
                lock(&self.shared.open_runs).remove(&run_id);
                Err(reason)
            }
        }
    }

    /// The run has ended: wait until every record it sent is committed. Returns why it must fail instead of
    /// ending as it did, if some of its records could not be stored or the writer stopped.
    pub(crate) async fn close(&self, run_id: RunId) -> Option<String> {
        let (done, acknowledged) = oneshot::channel();
        let close = Envelope { message: WriterMessage::Close { run_id, done }, permits: 0 };
        let answer = match self.sender.send(close).await {
            Ok(()) => acknowledged.await.ok(),
            Err(_) => None,
        };
        lock(&self.shared.open_runs).remove(&run_id);
        match answer {
            Some(failure) => failure,
            // The message or its acknowledgement was dropped: only a writer that stopped does that.
            None => Some(self.shared.stopped_reason().await),
        }
    }
}

/// Run one of the writer's tasks; when it panics (or is torn down), say so and stop the writer, so runs fail and
/// senders are refused instead of waiting forever.
fn watch(task: &'static str, shared: Arc<Shared>, work: impl Future<Output = ()> + Send + 'static) {
    let running = tokio::spawn(work);
    tokio::spawn(async move {
        let reason = match running.await {
            // The batcher ends when every sender is gone (nobody is left to tell) or when the committer is gone
            // (whose own watch tells why); the committer ends only after the batcher.
            Ok(()) => return,
            Err(error) if error.is_panic() => {
                let reason = format!("the record writer stopped: its {task} panicked: {}", panic_text(error));
                tracing::error!(
                    "{reason}. Every open run fails and no more records can be stored until the server restarts"
                );
                reason
            }
            Err(_) => "the record writer stopped: the server is shutting down".to_owned(),
        };
        shared.stop(reason);
    });
}

fn panic_text(error: tokio::task::JoinError) -> String {
    let payload = error.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-text panic payload)".to_owned())
}

/// Records of any runs, each with its `seq`.
#[derive(Default)]
struct Records {
    logs: Vec<(RunId, LogRecord)>,
    results: Vec<(RunId, ResultRecord)>,
}

impl Records {
    fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.results.is_empty()
    }

    fn len(&self) -> usize {
        self.logs.len() + self.results.len()
    }

    /// The runs these records belong to, each once, in a fixed order.
    fn runs(&self) -> Vec<RunId> {
        let mut runs: Vec<RunId> =
            self.logs.iter().map(|(run, _)| *run).chain(self.results.iter().map(|(run, _)| *run)).collect();
        runs.sort_unstable();
        runs.dedup();
        runs
    }

    fn retain(&mut self, keep: impl Fn(RunId) -> bool) {
        self.logs.retain(|(run, _)| keep(*run));
        self.results.retain(|(run, _)| keep(*run));
    }

    fn partition(self, first: impl Fn(RunId, i64) -> bool) -> (Records, Records) {
        let (logs_a, logs_b) = self.logs.into_iter().partition(|(run, log)| first(*run, log.seq));
        let (results_a, results_b) = self.results.into_iter().partition(|(run, result)| first(*run, result.seq));
        (Records { logs: logs_a, results: results_a }, Records { logs: logs_b, results: results_b })
    }

    /// Two smaller parts to commit in this order: the runs in two groups, or one run's records in two halves by
    /// `seq` (earlier first). `Err` gives back a single record, which cannot be split.
    fn split(self) -> Result<(Records, Records), Records> {
        let runs = self.runs();
        if runs.len() > 1 {
            let first: HashSet<RunId> = runs[..runs.len() / 2].iter().copied().collect();
            Ok(self.partition(|run, _| first.contains(&run)))
        } else if self.len() > 1 {
            let mut seqs: Vec<i64> =
                self.logs.iter().map(|(_, log)| log.seq).chain(self.results.iter().map(|(_, r)| r.seq)).collect();
            seqs.sort_unstable();
            let middle = seqs[seqs.len() / 2];
            Ok(self.partition(|_, seq| seq < middle))
        } else {
            Err(self)
        }
    }
}

/// Records assigned their `seq`, waiting for the next commit, with the budget permits they hold.
#[derive(Default)]
struct Pending {
    records: Records,
    permits: usize,
}

/// Work for the committer, in order.
enum CommitJob {
    Batch(Pending),
    /// Acknowledge once every batch before this one is committed, with the run's failure if it has one.
    Ack {
        run_id: RunId,
        done: oneshot::Sender<Option<String>>,
    },
}

/// The committer is gone (it panicked): the writer stops too.
struct CommitterGone;

/// Takes records off the channel, numbers them and groups them into batches.
///
/// Committing happens in a separate task ([`Committer`]) so the next batch is assembled while the previous one is
/// in the database: on two cores that overlap is worth a good third of the throughput.
struct Writer {
    receiver: mpsc::Receiver<Envelope>,
    commits: mpsc::Sender<CommitJob>,
    /// Last `seq` handed out per open run.
    last_seq: HashMap<RunId, i64>,
    shared: Arc<Shared>,
}

impl Writer {
    /// Run until every sender is gone, committing all that arrived, or until the committer is gone.
    async fn run(mut self) {
        let mut inbox = Vec::with_capacity(MAX_MESSAGES_PER_COMMIT);
        let mut pending = Pending::default();
        while self.receiver.recv_many(&mut inbox, MAX_MESSAGES_PER_COMMIT).await > 0 {
            for envelope in inbox.drain(..) {
                if self.accept(envelope, &mut pending).await.is_err() {
                    return;
                }
            }
            if self.commit(&mut pending).await.is_err() {
                return;
            }
        }
        let _ = self.commit(&mut pending).await;
    }

    /// Hand the pending records to the committer (waits while it is a batch behind: back-pressure).
    async fn commit(&mut self, pending: &mut Pending) -> Result<(), CommitterGone> {
        if pending.records.is_empty() {
            // Only records nobody takes any more (their run had ended): their room is free at once.
            self.shared.budget.release(std::mem::take(&mut pending.permits));
            return Ok(());
        }
        self.commits.send(CommitJob::Batch(std::mem::take(pending))).await.map_err(|_| CommitterGone)
    }

    async fn accept(&mut self, envelope: Envelope, pending: &mut Pending) -> Result<(), CommitterGone> {
        pending.permits += envelope.permits as usize;
        let records = &mut pending.records;
        match envelope.message {
            WriterMessage::Open { run_id, last_seq } => {
                self.last_seq.insert(run_id, last_seq);
            }
            WriterMessage::Log { run_id, log } => {
                if let Some(seq) = self.next_seq(run_id) {
                    records.logs.push((run_id, into_record(seq, log)));
                }
            }
            WriterMessage::Logs { run_id, logs } => {
                for log in logs {
                    if let Some(seq) = self.next_seq(run_id) {
                        records.logs.push((run_id, into_record(seq, log)));
                    }
                }
            }
            WriterMessage::Result { run_id, result } => {
                if let Some(seq) = self.next_seq(run_id) {
                    let NewResult { ts, key, value } = result;
                    records.results.push((run_id, ResultRecord { seq, ts, key, value }));
                }
            }
            WriterMessage::Close { run_id, done } => {
                self.commit(pending).await?;
                self.last_seq.remove(&run_id);
                self.commits.send(CommitJob::Ack { run_id, done }).await.map_err(|_| CommitterGone)?;
            }
        }
        Ok(())
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

/// A log message that makes the committer panic, in this crate's unit tests only.
#[cfg(test)]
pub(crate) const PANIC_THE_COMMITTER: &str = "test hook: the record committer panics on this line";

/// Commits batches in order, then tells watchers; isolates records the database refuses.
struct Committer {
    store: Store,
    hub: Arc<Hub>,
    shared: Arc<Shared>,
    /// Runs whose records could not be stored, with the reason, until their `Close` is acknowledged: their
    /// later records are discarded.
    failed: HashMap<RunId, String>,
    /// Announce each commit's runs on PostgreSQL (a node of the shared queue).
    announce_commits: bool,
}

impl Committer {
    async fn run(mut self, mut jobs: mpsc::Receiver<CommitJob>) {
        while let Some(job) = jobs.recv().await {
            match job {
                CommitJob::Batch(batch) => self.store_batch(batch).await,
                CommitJob::Ack { run_id, done } => {
                    let _ = done.send(self.failed.remove(&run_id));
                }
            }
        }
    }

    /// Commit a batch, splitting it when the database refuses it, then give its room back to the budget.
    async fn store_batch(&mut self, batch: Pending) {
        let Pending { records, permits } = batch;
        #[cfg(test)]
        if records.logs.iter().any(|(_, log)| log.message == PANIC_THE_COMMITTER) {
            panic!("asked to by a test");
        }
        // A stack of parts, the next to commit on top: a split part's earlier half is committed first.
        let mut parts = vec![records];
        while let Some(mut part) = parts.pop() {
            if !self.failed.is_empty() {
                part.retain(|run| !self.failed.contains_key(&run));
            }
            if part.is_empty() {
                continue;
            }
            match self.commit(&part).await {
                Ok(()) => {
                    if self.announce_commits {
                        self.announce(&part).await;
                    }
                    self.publish(part)
                }
                Err(refused) => match part.split() {
                    Ok((first, second)) => {
                        parts.push(second);
                        parts.push(first);
                    }
                    Err(record) => {
                        if let Some(run_id) = record.runs().first() {
                            self.fail_run(*run_id, &refused).await;
                        }
                    }
                },
            }
        }
        self.shared.budget.release(permits);
    }

    /// Commit `part`, retrying through passing errors until it lands; a refusal retrying cannot change is
    /// returned.
    async fn commit(&self, part: &Records) -> Result<(), StoreError> {
        let logs: Vec<(RunId, &LogRecord)> = part.logs.iter().map(|(run, log)| (*run, log)).collect();
        let results: Vec<(RunId, &ResultRecord)> = part.results.iter().map(|(run, r)| (*run, r)).collect();
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.store.append_rows(&logs, &results).await {
                Ok(()) => {
                    self.shared.database.reachable();
                    return Ok(());
                }
                Err(error) if error.is_transient() => {
                    self.shared.database.unreachable(&error, "committing run records");
                    // Backoff between retries of a failing database, not a synchronisation: nothing to await.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    tracing::debug!(%error, records = part.len(), "the database refused run records; splitting");
                    return Err(error);
                }
            }
        }
    }

    /// The database refuses a record of `run_id` for good: the run fails (its later records are discarded) and is
    /// stopped; a run that was deleted just loses its unsaved records.
    async fn fail_run(&mut self, run_id: RunId, refused: &StoreError) {
        let reason = match self.store.get_run(run_id).await {
            Ok(None) => {
                tracing::info!(%run_id, "run was deleted; discarding its unsaved records");
                "the run was deleted".to_owned()
            }
            _ => {
                let cause = match refused {
                    StoreError::Database(source) => {
                        source.as_database_error().map_or_else(|| source.to_string(), ToString::to_string)
                    }
                    other => other.to_string(),
                };
                tracing::error!(%run_id, %refused, "the database refused a run's records; the run fails");
                format!("its records could not be stored: {cause}")
            }
        };
        self.failed.insert(run_id, reason);
        if let Some(run) = lock(&self.shared.open_runs).get(&run_id) {
            run.cancel();
        }
    }

    /// One notification per run of a committed part. A lost one costs a viewer elsewhere only latency: servers
    /// re-read the runs they show after reconnecting, and a run's end is announced on its own.
    async fn announce(&self, part: &Records) {
        let runs = part.runs();
        if let Err(error) = self.store.notify_records(&runs).await {
            tracing::debug!(%error, "could not announce committed records");
        }
    }

    fn publish(&self, records: Records) {
        let mut by_run: HashMap<RunId, (Vec<LogRecord>, Vec<ResultRecord>)> = HashMap::new();
        for (run_id, log) in records.logs {
            by_run.entry(run_id).or_default().0.push(log);
        }
        for (run_id, result) in records.results {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::{AnyExperiment, Experiment, RunResult};
    use crate::testing::TestRuntime;
    use crate::RunContext;
    use athanor_core::{ExperimentDefinition, LogLevel, RunStatus};
    use chrono::Utc;
    use serde_json::Value;

    fn log(run: RunId, seq: i64) -> (RunId, LogRecord) {
        (run, LogRecord { seq, ts: Utc::now(), level: LogLevel::Info, message: String::new(), metadata: None })
    }

    fn result(run: RunId, seq: i64) -> (RunId, ResultRecord) {
        (run, ResultRecord { seq, ts: Utc::now(), key: "k".into(), value: Value::Null })
    }

    fn seqs(records: &Records) -> Vec<(RunId, i64)> {
        let mut all: Vec<(RunId, i64)> = records
            .logs
            .iter()
            .map(|(run, log)| (*run, log.seq))
            .chain(records.results.iter().map(|(run, result)| (*run, result.seq)))
            .collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn a_refused_part_splits_by_runs_then_in_seq_halves_down_to_one_record() {
        let (a, b) = {
            let mut ids = [RunId::from(uuid::Uuid::new_v4()), RunId::from(uuid::Uuid::new_v4())];
            ids.sort_unstable();
            (ids[0], ids[1])
        };
        let records =
            Records { logs: vec![log(a, 1), log(b, 1), log(a, 3)], results: vec![result(b, 2), result(a, 2)] };
        let Ok((first, second)) = records.split() else { panic!("two runs split") };
        assert_eq!(seqs(&first), [(a, 1), (a, 2), (a, 3)], "each run whole on one side");
        assert_eq!(seqs(&second), [(b, 1), (b, 2)]);

        let Ok((earlier, later)) = first.split() else { panic!("three records split") };
        assert_eq!(seqs(&earlier), [(a, 1)], "the earlier half first, so commit order stays seq order");
        assert_eq!(seqs(&later), [(a, 2), (a, 3)]);
        assert!(earlier.split().is_err(), "one record is where splitting stops");
    }

    /// Logs the line that makes the committer panic, then keeps logging until it is stopped.
    struct Doomed;
    impl Experiment for Doomed {
        type Config = Value;
        fn definition(&self) -> ExperimentDefinition {
            ExperimentDefinition::new("doomed", "1")
        }
        async fn run(&self, ctx: RunContext, _config: Value) -> RunResult {
            ctx.info("before").await;
            ctx.info(PANIC_THE_COMMITTER).await;
            while !ctx.is_cancelled() {
                ctx.info("after").await;
                tokio::task::yield_now().await;
            }
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn when_the_committer_dies_runs_fail_saying_so_instead_of_losing_records_silently() {
        let experiments: Vec<Box<dyn AnyExperiment>> = vec![Box::new(Doomed)];
        let h = TestRuntime::new(experiments).await.unwrap();
        let report = h.run("doomed", Value::Null).await.unwrap();
        assert_eq!(report.status(), RunStatus::Failed);
        let reason = "the record writer stopped: its committer panicked: asked to by a test";
        assert_eq!(report.error(), Some(reason));

        // Later runs are refused the same way, not accepted into a writer that cannot store them.
        let later = h.run("doomed", Value::Null).await.unwrap();
        assert_eq!((later.status(), later.error()), (RunStatus::Failed, Some(reason)));
        assert!(later.logs.is_empty());
    }
}
