//! Fan-out of live events: one broadcast topic per watched run, one for lifecycle changes.
//!
//! The hub never stores records; it only relays what the writer has already committed. A subscriber that falls
//! behind a broadcast channel is told it lagged and catches up from the database (see [`crate::subscribe`]).

use athanor_core::RunId;
use athanor_core::{LifecycleEvent, Progress, RunEvent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Events a run's topic buffers per subscriber before that subscriber counts as lagging, by default. Each event
/// is a whole committed batch, so this is seconds of output even for a chatty run.
pub const DEFAULT_RUN_TOPIC_CAPACITY: usize = 256;
/// Lifecycle events buffered per subscriber.
const LIFECYCLE_CAPACITY: usize = 1024;

struct RunTopic {
    sender: broadcast::Sender<Arc<RunEvent>>,
    /// Latest progress of an active run: a new viewer sees it at once instead of waiting for the next report.
    progress: Option<Progress>,
}

/// The event hub shared by the supervisor, the writer and every subscription.
pub struct Hub {
    runs: Mutex<HashMap<RunId, RunTopic>>,
    lifecycle: broadcast::Sender<LifecycleEvent>,
    run_topic_capacity: usize,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new(DEFAULT_RUN_TOPIC_CAPACITY)
    }
}

impl Hub {
    /// A hub whose run topics buffer `run_topic_capacity` events per subscriber.
    pub fn new(run_topic_capacity: usize) -> Hub {
        Hub {
            runs: Mutex::new(HashMap::new()),
            lifecycle: broadcast::channel(LIFECYCLE_CAPACITY).0,
            run_topic_capacity: run_topic_capacity.max(1),
        }
    }

    fn runs(&self) -> MutexGuard<'_, HashMap<RunId, RunTopic>> {
        // A panic while holding this lock cannot leave the map half-updated (every critical section is a single
        // insert/remove/send), so a poisoned lock is still consistent.
        self.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn topic<'a>(&self, runs: &'a mut HashMap<RunId, RunTopic>, run_id: RunId) -> &'a mut RunTopic {
        let capacity = self.run_topic_capacity;
        runs.entry(run_id).or_insert_with(|| RunTopic { sender: broadcast::channel(capacity).0, progress: None })
    }

    /// Start receiving a run's live events, and get its latest progress.
    pub fn subscribe_run(&self, run_id: RunId) -> (broadcast::Receiver<Arc<RunEvent>>, Option<Progress>) {
        let mut runs = self.runs();
        let topic = self.topic(&mut runs, run_id);
        (topic.sender.subscribe(), topic.progress.clone())
    }

    /// Whether anyone watches this run now (the writer skips building events nobody would receive).
    pub fn is_watched(&self, run_id: RunId) -> bool {
        self.runs().get(&run_id).is_some_and(|topic| topic.sender.receiver_count() > 0)
    }

    /// Send an event to a run's watchers, if any.
    pub fn publish_run(&self, run_id: RunId, event: RunEvent) {
        if let Some(topic) = self.runs().get(&run_id) {
            // An error only means nobody listens right now.
            let _ = topic.sender.send(Arc::new(event));
        }
    }

    /// Record and broadcast a run's progress (latest wins).
    pub fn set_progress(&self, run_id: RunId, progress: Progress) {
        let mut runs = self.runs();
        let topic = self.topic(&mut runs, run_id);
        topic.progress = Some(progress.clone());
        let _ = topic.sender.send(Arc::new(RunEvent::Progress(progress)));
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
}
