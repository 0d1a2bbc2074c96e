//! Fan-out of live events: one broadcast topic per watched run, one for lifecycle changes.
//!
//! The hub never stores records; it only relays what the writer has already committed. A subscriber that falls
//! behind a broadcast channel is told it lagged and catches up from the database (see [`crate::subscribe`]).
//!
//! **Bytes, not only events.** A run topic buffers a bounded number of events, but one event can be a batch of
//! large records. So every event carries a [`Charge`]: its estimated size, counted against its topic's byte budget
//! and the hub's for as long as anything holds the event (a slot of the channel, a subscriber handling it). A batch
//! of records that does not fit either budget is not buffered: [`RunTopicItem::Stored`] goes out in its place,
//! telling subscribers to read those records from the database, where they already are. Progress and status events
//! are always sent (they are small: a progress message is cut to 4 KiB, and a run changes status a few times).

use athanor_core::RunId;
use athanor_core::{LifecycleEvent, LogRecord, Progress, ResultRecord, Run, RunEvent};
use serde_json::Value;
use std::collections::HashMap;
use std::mem::size_of;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Events a run's topic buffers per subscriber before that subscriber counts as lagging, by default. Each event
/// is a whole committed batch, so this is seconds of output even for a chatty run.
pub const DEFAULT_RUN_TOPIC_CAPACITY: usize = 256;
/// The most bytes (estimated) of events one run topic holds at once, by default: buffered for its subscribers or
/// being handled by them. A batch of records that would go beyond it reaches subscribers from the database instead.
pub const DEFAULT_RUN_TOPIC_BYTES: usize = 16 << 20;
/// The most bytes (estimated) of events all run topics together hold at once, by default.
pub const DEFAULT_HUB_BYTES: usize = 256 << 20;
/// Lifecycle events buffered per subscriber.
const LIFECYCLE_CAPACITY: usize = 1024;

/// What a run topic carries.
// Each item is allocated once, behind the `Arc` every subscriber shares: boxing the event would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum RunTopicItem {
    /// An event, with its charge against the byte budgets (given back when the last holder drops it).
    Event(RunEvent, Charge),
    /// Committed records were left out here because they did not fit the byte budgets: read what follows the last
    /// `seq` you have from the database.
    Stored,
}

/// An event's estimated size, counted against its topic's budget and the hub's while the event is held.
#[derive(Debug)]
pub struct Charge {
    bytes: usize,
    topic: Arc<AtomicUsize>,
    hub: Arc<AtomicUsize>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.topic.fetch_sub(self.bytes, Ordering::AcqRel);
        self.hub.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

struct RunTopic {
    sender: broadcast::Sender<Arc<RunTopicItem>>,
    /// Latest progress of an active run: a new viewer sees it at once instead of waiting for the next report.
    progress: Option<Progress>,
    /// Bytes of this topic's events held now.
    held: Arc<AtomicUsize>,
}

/// The event hub shared by the supervisor, the writer and every subscription.
pub struct Hub {
    runs: Mutex<HashMap<RunId, RunTopic>>,
    lifecycle: broadcast::Sender<LifecycleEvent>,
    run_topic_capacity: usize,
    run_topic_bytes: usize,
    hub_bytes: usize,
    /// Bytes of all run topics' events held now.
    held: Arc<AtomicUsize>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(DEFAULT_RUN_TOPIC_CAPACITY)
    }
}

impl Hub {
    /// A hub whose run topics buffer `run_topic_capacity` events per subscriber, within the default byte budgets
    /// ([`DEFAULT_RUN_TOPIC_BYTES`] per topic, [`DEFAULT_HUB_BYTES`] in all).
    pub fn new(run_topic_capacity: usize) -> Hub {
        Hub::with_byte_budgets(run_topic_capacity, DEFAULT_RUN_TOPIC_BYTES, DEFAULT_HUB_BYTES)
    }

    /// A hub whose run topics buffer `run_topic_capacity` events per subscriber and hold at most `run_topic_bytes`
    /// (estimated) of events each, `hub_bytes` all together.
    pub fn with_byte_budgets(run_topic_capacity: usize, run_topic_bytes: usize, hub_bytes: usize) -> Hub {
        Hub {
            runs: Mutex::new(HashMap::new()),
            lifecycle: broadcast::channel(LIFECYCLE_CAPACITY).0,
            run_topic_capacity: run_topic_capacity.max(1),
            run_topic_bytes,
            hub_bytes,
            held: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn runs(&self) -> MutexGuard<'_, HashMap<RunId, RunTopic>> {
        // A panic while holding this lock cannot leave the map half-updated (every critical section is a single
        // insert/remove/send), so a poisoned lock is still consistent.
        self.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn topic<'a>(&self, runs: &'a mut HashMap<RunId, RunTopic>, run_id: RunId) -> &'a mut RunTopic {
        let capacity = self.run_topic_capacity;
        runs.entry(run_id).or_insert_with(|| RunTopic {
            sender: broadcast::channel(capacity).0,
            progress: None,
            held: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Charge `bytes` to a topic and the hub: only within both budgets, unless `always`.
    fn charge(&self, topic: &RunTopic, bytes: usize, always: bool) -> Option<Charge> {
        let add = |held: &AtomicUsize, budget: usize| {
            if always {
                held.fetch_add(bytes, Ordering::AcqRel);
                return true;
            }
            held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_add(bytes).filter(|&after| after <= budget)
            })
            .is_ok()
        };
        if !add(&topic.held, self.run_topic_bytes) {
            return None;
        }
        if !add(&self.held, self.hub_bytes) {
            topic.held.fetch_sub(bytes, Ordering::AcqRel);
            return None;
        }
        Some(Charge { bytes, topic: topic.held.clone(), hub: self.held.clone() })
    }

    /// Start receiving a run's live events, and get its latest progress.
    pub fn subscribe_run(&self, run_id: RunId) -> (broadcast::Receiver<Arc<RunTopicItem>>, Option<Progress>) {
        let mut runs = self.runs();
        let topic = self.topic(&mut runs, run_id);
        (topic.sender.subscribe(), topic.progress.clone())
    }

    /// Whether anyone watches this run now (the writer skips building events nobody would receive).
    pub fn is_watched(&self, run_id: RunId) -> bool {
        self.runs().get(&run_id).is_some_and(|topic| topic.sender.receiver_count() > 0)
    }

    /// Send an event to a run's watchers, if any. Records that do not fit the byte budgets are announced as
    /// [`RunTopicItem::Stored`] instead.
    pub fn publish_run(&self, run_id: RunId, event: RunEvent) {
        // Measured before taking the lock; never past the topic's budget, beyond which the size does not matter.
        let bytes = estimate_event(&event, self.run_topic_bytes.saturating_add(1));
        let records = matches!(event, RunEvent::Records { .. });
        if let Some(topic) = self.runs().get(&run_id) {
            if topic.sender.receiver_count() == 0 {
                return;
            }
            let item = match self.charge(topic, bytes, !records) {
                Some(charge) => RunTopicItem::Event(event, charge),
                None => RunTopicItem::Stored,
            };
            // An error only means nobody listens right now.
            let _ = topic.sender.send(Arc::new(item));
        }
    }

    /// Tell a run's watchers, if any, that it has records they have not been sent: they read them from the
    /// database (records committed by another node, or anything missed while a listener was away).
    pub fn announce_stored(&self, run_id: RunId) {
        if let Some(topic) = self.runs().get(&run_id) {
            if topic.sender.receiver_count() > 0 {
                let _ = topic.sender.send(Arc::new(RunTopicItem::Stored));
            }
        }
    }

    /// The runs someone watches now.
    pub fn watched_runs(&self) -> Vec<RunId> {
        self.runs().iter().filter(|(_, topic)| topic.sender.receiver_count() > 0).map(|(id, _)| *id).collect()
    }

    /// Record and broadcast a run's progress (latest wins).
    pub fn set_progress(&self, run_id: RunId, progress: Progress) {
        let bytes = size_of::<RunEvent>() + progress.message.as_ref().map_or(0, String::len);
        let mut runs = self.runs();
        let topic = self.topic(&mut runs, run_id);
        topic.progress = Some(progress.clone());
        if topic.sender.receiver_count() == 0 {
            return;
        }
        if let Some(charge) = self.charge(topic, bytes, true) {
            let _ = topic.sender.send(Arc::new(RunTopicItem::Event(RunEvent::Progress(progress), charge)));
        }
    }

    /// A run's latest progress, if it reported any and is active here.
    pub fn progress(&self, run_id: RunId) -> Option<Progress> {
        self.runs().get(&run_id).and_then(|topic| topic.progress.clone())
    }

    /// Drop a run's topic if nobody watches it and it holds no progress (a viewer left, or the run ended).
    pub fn release_run(&self, run_id: RunId) {
        let mut runs = self.runs();
        if runs.get(&run_id).is_some_and(|topic| topic.sender.receiver_count() == 0 && topic.progress.is_none()) {
            runs.remove(&run_id);
        }
    }

    /// Forget a finished run's progress, and its topic once nobody watches it.
    pub fn retire_run(&self, run_id: RunId) {
        let mut runs = self.runs();
        if let Some(topic) = runs.get_mut(&run_id) {
            topic.progress = None;
            if topic.sender.receiver_count() == 0 {
                runs.remove(&run_id);
            }
        }
    }

    /// Start receiving instance and run lifecycle changes.
    pub fn subscribe_lifecycle(&self) -> broadcast::Receiver<LifecycleEvent> {
        self.lifecycle.subscribe()
    }

    /// Announce an instance or run change.
    pub fn publish_lifecycle(&self, event: LifecycleEvent) {
        let _ = self.lifecycle.send(event);
    }

    /// How many run topics exist (tests check that finished runs do not leak topics).
    pub fn run_topic_count(&self) -> usize {
        self.runs().len()
    }

    /// Bytes (estimated) of run events held now, all topics together: in channel slots or being handled by
    /// subscribers.
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

/// Roughly how much memory an event takes, counting up to `cap` (beyond it, the exact figure does not matter).
fn estimate_event(event: &RunEvent, cap: usize) -> usize {
    let mut total = size_of::<RunEvent>();
    match event {
        RunEvent::Records { logs, results } => {
            for log in logs {
                total += size_of::<LogRecord>() + log.message.len();
                if let Some(metadata) = &log.metadata {
                    total += estimate_value(metadata, cap.saturating_sub(total));
                }
                if total >= cap {
                    return total;
                }
            }
            for result in results {
                total += size_of::<ResultRecord>() + result.key.len();
                total += estimate_value(&result.value, cap.saturating_sub(total));
                if total >= cap {
                    return total;
                }
            }
        }
        RunEvent::Snapshot { run, progress } => {
            total += estimate_run(run, cap) + progress.as_ref().and_then(|p| p.message.as_ref()).map_or(0, String::len);
        }
        RunEvent::Status(run) => total += estimate_run(run, cap),
        RunEvent::Progress(progress) => total += progress.message.as_ref().map_or(0, String::len),
    }
    total
}

fn estimate_run(run: &Run, cap: usize) -> usize {
    size_of::<Run>()
        + run.experiment_version.len()
        + run.error.as_ref().map_or(0, String::len)
        + estimate_value(&run.config, cap)
}

/// Roughly how much memory a JSON value takes: every node, string and key, plus the containers' own overhead;
/// counting stops past `cap`. A heap stack, not recursion, so any depth is safe.
fn estimate_value(value: &Value, cap: usize) -> usize {
    // Per object entry: its key (a `String`), and the map's bookkeeping, about a pointer pair.
    const ENTRY: usize = size_of::<String>() + 2 * size_of::<usize>();
    let mut total = 0usize;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        total += size_of::<Value>();
        match value {
            Value::String(text) => total += text.len(),
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => {
                total += map.keys().map(|key| ENTRY + key.len()).sum::<usize>();
                stack.extend(map.values());
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        if total > cap {
            break;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use athanor_core::LogLevel;
    use chrono::Utc;
    use uuid::Uuid;

    fn records(seq: i64, message_bytes: usize) -> RunEvent {
        let log = LogRecord {
            seq,
            ts: Utc::now(),
            level: LogLevel::Info,
            message: "x".repeat(message_bytes),
            metadata: None,
        };
        RunEvent::Records { logs: vec![log], results: Vec::new() }
    }

    fn seqs(item: &RunTopicItem) -> Option<i64> {
        match item {
            RunTopicItem::Event(RunEvent::Records { logs, .. }, _) => logs.last().map(|log| log.seq),
            _ => None,
        }
    }

    #[test]
    fn a_topic_never_holds_more_bytes_than_its_budget_and_says_what_it_left_out() {
        let hub = Hub::with_byte_budgets(1_000, 10_000, 1 << 30);
        let run = RunId::from(Uuid::new_v4());
        // A subscriber that reads nothing: everything sent stays in the channel.
        let (mut stalled, _) = hub.subscribe_run(run);
        for seq in 1..=100 {
            hub.publish_run(run, records(seq, 1_000));
            assert!(hub.held_bytes() <= 10_000, "{} bytes held after {seq} events", hub.held_bytes());
        }
        // One record larger than the whole budget never enters it.
        hub.publish_run(run, records(101, 50_000));
        assert!(hub.held_bytes() <= 10_000);

        let mut live = Vec::new();
        let mut stored = 0;
        while let Ok(item) = stalled.try_recv() {
            match seqs(&item) {
                Some(seq) => live.push(seq),
                None => stored += 1,
            }
        }
        assert!(!live.is_empty() && live.windows(2).all(|pair| pair[0] < pair[1]), "{live:?}");
        assert_eq!(live.len() + stored, 101, "every event was sent, as itself or as a `Stored` marker");
        assert!(stored > 0);
        assert_eq!(hub.held_bytes(), 0, "read and dropped, every event gave its bytes back");

        // Once the budget has room again, records go live.
        hub.publish_run(run, records(102, 1_000));
        let item = stalled.try_recv().unwrap();
        assert_eq!(seqs(&item), Some(102));
        drop(item);
        assert_eq!(hub.held_bytes(), 0);
    }

    #[test]
    fn the_hub_budget_bounds_all_topics_together_and_progress_always_goes_through() {
        let hub = Hub::with_byte_budgets(1_000, 10_000, 15_000);
        let (a, b) = (RunId::from(Uuid::new_v4()), RunId::from(Uuid::new_v4()));
        let (mut receiver_a, _) = hub.subscribe_run(a);
        let (mut receiver_b, _) = hub.subscribe_run(b);
        for seq in 1..=20 {
            hub.publish_run(a, records(seq, 1_000));
            hub.publish_run(b, records(seq, 1_000));
            assert!(hub.held_bytes() <= 15_000, "{}", hub.held_bytes());
        }
        hub.set_progress(a, Progress { current: 1, total: None, message: Some("p".into()) });
        let mut last = None;
        while let Ok(item) = receiver_a.try_recv() {
            last = Some(item);
        }
        assert!(matches!(last.as_deref(), Some(RunTopicItem::Event(RunEvent::Progress(_), _))));
        drop(last);
        while receiver_b.try_recv().is_ok() {}
        assert_eq!(hub.held_bytes(), 0);
    }

    #[test]
    fn estimates_grow_with_content_and_stop_at_the_cap() {
        let small = estimate_event(&records(1, 10), usize::MAX);
        let large = estimate_event(&records(1, 10_000), usize::MAX);
        assert!(large >= small + 9_990);
        let value = Value::Array((0..100_000).map(Value::from).collect());
        assert!(estimate_value(&value, usize::MAX) >= 100_000 * size_of::<Value>());
        assert!(estimate_value(&value, 1_000) < 2_000, "counting stops soon after the cap");
    }
}
