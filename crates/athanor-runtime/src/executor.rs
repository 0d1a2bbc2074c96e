//! Where experiment code runs: a multi-threaded tokio runtime of its own (threads named `athanor-run`), apart from
//! the server's runtime, which keeps HTTP, the writer, cancels, timeouts and every status the supervisor writes.
//!
//! **Why.** A run's `run` is ordinary async Rust, and nothing stops it from computing for seconds between two
//! `.await`s (a training step, a simulation, a blocking library call). On the server's runtime such code would hold
//! one of its few worker threads, and a handful of such runs would hold them all: pages, API calls, the commits of
//! every run's records, cancels and timeouts would wait for the experiments. Here it can only hold experiment
//! threads; the supervisor, on the server's runtime, keeps answering and ends runs on schedule.
//!
//! **What it cannot do.** No runtime can take a thread back from code that never yields: tokio drops an aborted
//! task's future only between two polls. A forced cancel or a timeout therefore does not wait for such code — the
//! run ends on time, its records committed before its terminal status — but the code keeps its experiment thread
//! until it returns or awaits, and whatever it logs after the end is discarded. Well-behaved CPU-bound code checks
//! [`RunContext::is_cancelled`] between steps and returns when it is true; long blocking calls go through
//! [`RunContext::blocking`], so the experiment threads stay free for other runs' async code.
//!
//! The runtime is built on the first run (a server or test that runs nothing starts no threads) and shut down in
//! the background when the [`Runtime`](crate::Runtime) is dropped: dropping a tokio runtime must not block, since
//! it may happen inside another runtime's task.

use crate::context::RunContext;
use crate::experiment::RunResult;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::runtime::{Builder, Handle};
use tokio::task::{JoinError, JoinHandle};

/// The name of every thread experiment code runs on (workers and their blocking pool).
pub(crate) const THREAD_NAME: &str = "athanor-run";

/// How long [`RunTask::stop`] waits for an aborted run's future to be dropped when its code is not executing: the
/// drop kills a command's process group and removes its temporary folder, which takes microseconds unless every
/// experiment thread is busy, and then the run must end anyway.
const DROP_WAIT: Duration = Duration::from_millis(500);

/// The default number of experiment threads: one per core the process may use.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// The experiments' runtime, built on first use.
pub(crate) struct ExperimentThreads {
    threads: usize,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl ExperimentThreads {
    pub(crate) fn new(threads: usize) -> ExperimentThreads {
        ExperimentThreads { threads: threads.max(1), runtime: Mutex::new(None) }
    }

    fn handle(&self) -> io::Result<Handle> {
        let mut runtime = self.runtime.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(runtime) = runtime.as_ref() {
            return Ok(runtime.handle().clone());
        }
        let built =
            Builder::new_multi_thread().worker_threads(self.threads).thread_name(THREAD_NAME).enable_all().build()?;
        let handle = built.handle().clone();
        *runtime = Some(built);
        Ok(handle)
    }

    /// Start a run's future on an experiment thread.
    ///
    /// # Errors
    ///
    /// When the experiment threads cannot be started (the system refused a thread).
    pub(crate) fn spawn(&self, run: impl Future<Output = RunResult> + Send + 'static) -> io::Result<RunTask> {
        let polling = Arc::new(AtomicBool::new(false));
        let tracked = Tracked { future: Box::pin(run), polling: polling.clone() };
        Ok(RunTask { handle: self.handle()?.spawn(tracked), polling })
    }
}

impl Drop for ExperimentThreads {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.get_mut().unwrap_or_else(PoisonError::into_inner).take() {
            // Never waits: this may run inside the server's runtime (where a blocking drop panics), and a thread
            // still computing for an abandoned run would make it wait until that code returns.
            runtime.shutdown_background();
        }
    }
}

/// A run's future on the experiment runtime, as the supervisor holds it: await it for the run's outcome; dropping
/// it aborts the run.
pub(crate) struct RunTask {
    handle: JoinHandle<RunResult>,
    /// Whether an experiment thread is inside the run's code right now.
    polling: Arc<AtomicBool>,
}

impl RunTask {
    /// Abort the run. Waits (briefly) for its future to be dropped, which is what stops a command's process
    /// group, unless its code is executing right now: code that does not yield cannot be stopped, and the run must
    /// end on time all the same, so it is left to finish on its thread. Returns whether the future was dropped.
    pub(crate) async fn stop(&mut self) -> bool {
        self.handle.abort();
        if self.polling.load(Ordering::SeqCst) {
            return false;
        }
        tokio::time::timeout(DROP_WAIT, &mut self.handle).await.is_ok()
    }
}

impl Future for RunTask {
    type Output = Result<RunResult, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.handle).poll(cx)
    }
}

impl Drop for RunTask {
    fn drop(&mut self) {
        // A no-op once the run has ended; otherwise its supervisor is gone (the server's runtime is being torn
        // down), and a run nobody supervises must not go on.
        self.handle.abort();
    }
}

/// A future that records whether it is being polled.
struct Tracked {
    future: Pin<Box<dyn Future<Output = RunResult> + Send>>,
    polling: Arc<AtomicBool>,
}

impl Future for Tracked {
    type Output = RunResult;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RunResult> {
        let this = self.get_mut();
        let _polling = Polling::enter(&this.polling);
        this.future.as_mut().poll(cx)
    }
}

/// Sets the flag for as long as it lives, including when the poll unwinds from a panic.
struct Polling<'a>(&'a AtomicBool);

impl<'a> Polling<'a> {
    fn enter(flag: &'a AtomicBool) -> Polling<'a> {
        flag.store(true, Ordering::SeqCst);
        Polling(flag)
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl RunContext {
    /// Run blocking or long CPU-bound code — a synchronous library call, blocking file or network I/O, a
    /// computation that would go more than a few milliseconds without an `.await` — on a thread meant for blocking,
    /// and await its result. The experiment threads stay free for other runs meanwhile.
    ///
    /// The closure cannot be interrupted: a cancel or a timeout still ends the run on schedule, but the closure
    /// keeps its thread until it returns. To stop early, give it a clone of the context and check
    /// [`RunContext::is_cancelled`] between steps. A panic in the closure is a panic of the run: it fails, with the
    /// message.
    ///
    /// ```
    /// # use athanor_runtime::prelude::*;
    /// # async fn example(ctx: RunContext) -> RunResult {
    /// let steps = ctx.clone();
    /// let sum = ctx
    ///     .blocking(move || {
    ///         let mut sum = 0_u64;
    ///         for step in 0..10_000_000_u64 {
    ///             if step % 100_000 == 0 && steps.is_cancelled() {
    ///                 break;
    ///             }
    ///             sum = sum.wrapping_add(step * step);
    ///         }
    ///         sum
    ///     })
    ///     .await;
    /// ctx.result("sum", sum).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn blocking<T, F>(&self, work: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match tokio::task::spawn_blocking(work).await {
            Ok(value) => value,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Only a runtime shutting down cancels blocking work before it starts; the run is being dropped then.
            Err(error) => panic!("run {}: the blocking work was not run: {error}", self.run_id()),
        }
    }
}
