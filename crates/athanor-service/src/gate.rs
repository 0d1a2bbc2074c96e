//! [`InstanceGate`]: no run of an instance starts while the instance is being deleted.
//!
//! Deleting an instance cancels its active runs, waits for them to end, then deletes the rows. A start that slipped
//! in between would create a run the delete never cancelled, executing while its rows vanish. The gate closes that
//! window: a delete first marks the instance (new starts are refused from then on), then waits until the starts
//! already in flight have created their runs, and only then lists the runs to cancel.

use athanor_core::InstanceId;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// Starts in flight and deletes in progress, per instance. Entries exist only while one of them is non-zero.
#[derive(Default)]
pub(crate) struct InstanceGate {
    state: Mutex<HashMap<InstanceId, Entry>>,
    /// Woken whenever a start ends, so a waiting delete looks again.
    start_ended: Notify,
}

#[derive(Default)]
struct Entry {
    starting: usize,
    deleting: bool,
}

impl InstanceGate {
    fn state(&self) -> MutexGuard<'_, HashMap<InstanceId, Entry>> {
        // Each critical section is a few map operations that cannot panic midway.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Let a start of `id` through, unless the instance is being deleted. The start counts as in flight until the
    /// permit is dropped.
    pub(crate) fn start(&self, id: InstanceId) -> Option<StartPermit<'_>> {
        let mut state = self.state();
        let entry = state.entry(id).or_default();
        if entry.deleting {
            return None;
        }
        entry.starting += 1;
        Some(StartPermit { gate: self, id })
    }

    /// Refuse new starts of `id`, then wait until the starts already in flight have finished. `None` when another
    /// delete of the same instance is under way. New starts stay refused until the permit is dropped.
    pub(crate) async fn close(&self, id: InstanceId) -> Option<DeletePermit<'_>> {
        {
            let mut state = self.state();
            let entry = state.entry(id).or_default();
            if entry.deleting {
                return None;
            }
            entry.deleting = true;
        }
        let permit = DeletePermit { gate: self, id };
        loop {
            // Registered before looking, so a start that ends between the look and the wait still wakes us.
            let ended = self.start_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.state().get(&id).is_none_or(|entry| entry.starting == 0) {
                return Some(permit);
            }
            ended.await;
        }
    }

    fn forget_if_idle(state: &mut HashMap<InstanceId, Entry>, id: InstanceId) {
        if state.get(&id).is_some_and(|entry| entry.starting == 0 && !entry.deleting) {
            state.remove(&id);
        }
    }
}

/// A start in flight; dropping it ends the start.
pub(crate) struct StartPermit<'a> {
    gate: &'a InstanceGate,
    id: InstanceId,
}

impl Drop for StartPermit<'_> {
    fn drop(&mut self) {
        let mut state = self.gate.state();
        if let Some(entry) = state.get_mut(&self.id) {
            entry.starting -= 1;
        }
        InstanceGate::forget_if_idle(&mut state, self.id);
        drop(state);
        self.gate.start_ended.notify_waiters();
    }
}

/// A delete in progress; dropping it lets starts through again (they then find no instance, or a new one).
pub(crate) struct DeletePermit<'a> {
    gate: &'a InstanceGate,
    id: InstanceId,
}

impl Drop for DeletePermit<'_> {
    fn drop(&mut self) {
        let mut state = self.gate.state();
        if let Some(entry) = state.get_mut(&self.id) {
            entry.deleting = false;
        }
        InstanceGate::forget_if_idle(&mut state, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> InstanceId {
        InstanceId::from(uuid::Uuid::new_v4())
    }

    #[tokio::test]
    async fn starts_are_refused_while_a_delete_is_under_way_and_allowed_after() {
        let gate = InstanceGate::default();
        let (deleted, other) = (id(), id());
        let closing = gate.close(deleted).await.expect("nothing in flight");
        assert!(gate.start(deleted).is_none(), "a start during the delete is refused");
        assert!(gate.start(other).is_some(), "other instances are not affected");
        assert!(gate.close(deleted).await.is_none(), "a second delete of the same instance is refused");
        drop(closing);
        assert!(gate.start(deleted).is_some());
    }

    #[tokio::test]
    async fn a_delete_waits_for_the_starts_already_in_flight() {
        let gate = std::sync::Arc::new(InstanceGate::default());
        let instance = id();
        let first = gate.start(instance).unwrap();
        let second = gate.start(instance).unwrap();
        let closing = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.close(instance).await.is_some() })
        };
        // The delete has marked the instance once new starts are refused; it cannot finish before the starts do.
        while gate.start(instance).is_some() {
            tokio::task::yield_now().await;
        }
        assert!(!closing.is_finished());
        drop(first);
        tokio::task::yield_now().await;
        assert!(!closing.is_finished(), "one start is still in flight");
        drop(second);
        assert!(closing.await.unwrap(), "the delete goes ahead once no start is in flight");
        assert!(gate.state().is_empty(), "nothing is kept once all is done");
    }
}
