//! The record writer's byte budget: how many bytes of records may be accepted and not yet committed.
//!
//! A sender takes permits for its message's approximate size before the message enters the writer's channel, and
//! the committer gives them back once the message's records are in the database (or were discarded). So the bytes
//! held anywhere between `log(..)` and the database — the channel, the batch being assembled, the batch waiting
//! and the batch being committed — never exceed the budget, however large the lines. When it is spent, `log`
//! waits: experiments slow to the database's pace.

use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{watch, Semaphore, SemaphorePermit, TryAcquireError};

/// The default budget: 64 MiB of records accepted and not yet committed.
pub const DEFAULT_RECORD_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// The writer has stopped: nothing more can be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BudgetClosed;

/// Bytes of records accepted and not yet committed, bounded (see the module documentation).
#[derive(Debug)]
pub struct RecordBudget {
    permits: Semaphore,
    capacity: usize,
    /// The most bytes ever held at once.
    high_water: AtomicUsize,
    /// How many times a sender found the budget spent and had to wait (touched only on that slow path).
    waits: watch::Sender<u64>,
}

impl RecordBudget {
    /// A budget of `bytes` (at least 1, at most what one acquisition can take).
    pub(crate) fn new(bytes: usize) -> RecordBudget {
        let capacity = bytes.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
        RecordBudget {
            permits: Semaphore::new(capacity),
            capacity,
            high_water: AtomicUsize::new(0),
            waits: watch::Sender::new(0),
        }
    }

    /// The budget, in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes accepted and not yet committed now.
    pub fn queued(&self) -> usize {
        self.capacity - self.permits.available_permits().min(self.capacity)
    }

    /// The most bytes that were ever accepted and not yet committed at once: never more than
    /// [`RecordBudget::capacity`].
    pub fn high_water(&self) -> usize {
        self.high_water.load(Ordering::Relaxed)
    }

    /// How many times a sender has had to wait for room so far.
    pub fn waits(&self) -> u64 {
        *self.waits.borrow()
    }

    /// Completes once senders have had to wait for room at least `count` times in all: back-pressure is in
    /// effect (tests await it instead of guessing with the clock).
    pub async fn waited(&self, count: u64) {
        let mut waits = self.waits.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = waits.wait_for(|waits| *waits >= count).await;
    }

    /// Take room for a message of about `bytes`, waiting while the budget is spent. A message larger than the
    /// whole budget takes all of it (it waits for everything else to be committed, and cannot deadlock). The room
    /// goes back by itself if the [`Room`] is dropped (a sender cancelled before its message was queued);
    /// [`Room::hand_over`] passes it on to the message, and [`RecordBudget::release`] gives it back.
    pub(crate) async fn acquire(&self, bytes: usize) -> Result<Room<'_>, BudgetClosed> {
        // `capacity` fits in a `u32` (see `new`).
        let permits = bytes.min(self.capacity) as u32;
        let permit = match self.permits.try_acquire_many(permits) {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(BudgetClosed),
            Err(TryAcquireError::NoPermits) => {
                self.waits.send_modify(|waits| *waits += 1);
                self.permits.acquire_many(permits).await.map_err(|_| BudgetClosed)?
            }
        };
        let queued = self.queued();
        if queued > self.high_water.load(Ordering::Relaxed) {
            self.high_water.fetch_max(queued, Ordering::Relaxed);
        }
        Ok(Room { permit })
    }

    /// Give back permits of records that are committed (or discarded).
    pub(crate) fn release(&self, permits: usize) {
        if permits > 0 {
            self.permits.add_permits(permits);
        }
    }

    /// The writer stopped: every waiting and future [`RecordBudget::acquire`] fails.
    pub(crate) fn close(&self) {
        self.permits.close();
    }
}

/// Room taken from the budget for one message, given back when dropped unless handed over.
#[must_use = "room is given back when dropped"]
pub(crate) struct Room<'a> {
    permit: SemaphorePermit<'a>,
}

impl Room<'_> {
    /// The message is queued: its room stays taken until [`RecordBudget::release`]. Returns how much.
    pub(crate) fn hand_over(self) -> u32 {
        let permits = self.permit.num_permits() as u32;
        self.permit.forget();
        permits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn a_spent_budget_makes_senders_wait_until_bytes_are_committed() {
        let budget = RecordBudget::new(1_000);
        assert_eq!(budget.acquire(600).await.map(Room::hand_over), Ok(600));
        assert_eq!(budget.acquire(400).await.map(Room::hand_over), Ok(400));
        assert_eq!((budget.queued(), budget.high_water()), (1_000, 1_000));

        let mut waiting = Box::pin(async { budget.acquire(300).await.map(Room::hand_over) });
        assert!(waiting.as_mut().now_or_never().is_none(), "no room: the sender waits");
        budget.waited(1).now_or_never().expect("the wait was counted");
        budget.release(200);
        assert!(waiting.as_mut().now_or_never().is_none(), "200 bytes free are not room for 300");
        budget.release(100);
        assert_eq!(waiting.now_or_never(), Some(Ok(300)));
        assert_eq!(budget.queued(), 1_000);
        assert!(budget.high_water() <= budget.capacity());
    }

    #[tokio::test]
    async fn a_message_larger_than_the_budget_takes_all_of_it_instead_of_waiting_forever() {
        let budget = RecordBudget::new(1_000);
        assert_eq!(budget.acquire(10).await.map(Room::hand_over), Ok(10));
        let mut huge = Box::pin(async { budget.acquire(50_000).await.map(Room::hand_over) });
        assert!(huge.as_mut().now_or_never().is_none(), "it waits for what is queued to be committed");
        budget.release(10);
        assert_eq!(huge.now_or_never(), Some(Ok(1_000)));
        assert_eq!(budget.high_water(), 1_000);
        budget.release(1_000);
        assert_eq!(budget.queued(), 0);
    }

    #[tokio::test]
    async fn a_sender_cancelled_before_its_message_is_queued_gives_its_room_back() {
        let budget = RecordBudget::new(100);
        let room = budget.acquire(60).await.unwrap();
        assert_eq!(budget.queued(), 60);
        drop(room);
        assert_eq!(budget.queued(), 0);
        let first = budget.acquire(80).await.unwrap();
        let mut waiting = Box::pin(budget.acquire(50));
        assert!(waiting.as_mut().now_or_never().is_none(), "20 bytes free are not room for 50");
        // Cancelled while waiting (the run was aborted): what it was partly given goes back too.
        drop(waiting);
        drop(first);
        assert_eq!(budget.queued(), 0);
        assert_eq!(budget.acquire(100).await.map(Room::hand_over), Ok(100), "all of it is free again");
    }

    #[tokio::test]
    async fn closing_wakes_waiting_senders_with_an_error() {
        let budget = RecordBudget::new(10);
        assert_eq!(budget.acquire(10).await.map(Room::hand_over), Ok(10));
        let mut waiting = Box::pin(async { budget.acquire(1).await.map(Room::hand_over) });
        assert!(waiting.as_mut().now_or_never().is_none());
        budget.close();
        assert_eq!(waiting.now_or_never(), Some(Err(BudgetClosed)));
        assert!(budget.acquire(1).await.is_err());
    }
}
