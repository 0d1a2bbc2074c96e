//! Live updates over a Leptos websocket server function, with reconnect-and-resume in the browser.
//!
//! One server function, [`watch`], serves every topic: the browser opens the socket and sends one
//! [`WatchRequest`]; the server answers with a stream of [`LiveEvent`]s. For a run, the request carries the last
//! `seq` the page has, so a reconnect (after a network blip or a server restart) resumes exactly there: the
//! runtime replays what was committed meanwhile from the database, then follows live — no gap, no duplicate.
//!
//! The socket is bounded ([`crate::socket::Websocket`]): at most 1,000 open at once (the next upgrade gets
//! `503`), a request of at most 4 KiB sent within 10 seconds of opening, nothing sent after it (a second message
//! closes the socket), and a ping every 30 seconds that a live browser answers on its own.

use crate::error::AppError;
use crate::socket;
use athanor_core::{LifecycleEvent, RunEvent, RunId};
use leptos::prelude::*;
use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::BoxedStream;
use serde::{Deserialize, Serialize};

/// What a page wants to follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WatchRequest {
    /// One run's status, progress, logs and results, after the given `seq`.
    Run {
        /// The run.
        run_id: RunId,
        /// The last `seq` the page already shows (0 for none).
        after_seq: i64,
    },
    /// Instance and run changes (dashboard, instance pages).
    Lifecycle,
}

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LiveEvent {
    /// For [`WatchRequest::Run`].
    Run(RunEvent),
    /// For [`WatchRequest::Lifecycle`].
    Lifecycle(LifecycleEvent),
}

/// Follow a topic. The first message on `requests` says which; it is the only one: the socket's protocol closes a
/// socket whose client sends another, or none within its time limit.
#[server(protocol = socket::Websocket<JsonEncoding, JsonEncoding>, endpoint = "watch")]
pub async fn watch(
    requests: BoxedStream<WatchRequest, AppError>,
) -> Result<BoxedStream<LiveEvent, AppError>, AppError> {
    use futures::stream::{self, StreamExt};
    let service = crate::state::service()?;
    let mut requests = requests;
    // The socket is only upgraded once this function has returned, so the request must be read inside the
    // returned stream: awaiting it here would wait for a message the browser cannot send yet. The protocol passes
    // on the first message only, so `requests` ends after it.
    let events = stream::once(async move {
        let request = match requests.next().await {
            Some(Ok(request)) => request,
            Some(Err(error)) => return stream::iter([Err(error)]).boxed(),
            None => {
                let error = AppError::Invalid { message: "no watch request was sent".into(), fields: Vec::new() };
                return stream::iter([Err(error)]).boxed();
            }
        };
        match request {
            WatchRequest::Run { run_id, after_seq } => match service.run_events(run_id, after_seq).await {
                // After the run's last event the socket stays open until the browser, having seen the terminal
                // status, closes it: a server-side close would surface as an error in the browser's console.
                Ok(events) => events
                    .map(|event| event.map(LiveEvent::Run).map_err(AppError::from))
                    .chain(stream::pending())
                    .boxed(),
                Err(error) => stream::iter([Err(AppError::from(error))]).boxed(),
            },
            WatchRequest::Lifecycle => service.lifecycle_events().map(|event| Ok(LiveEvent::Lifecycle(event))).boxed(),
        }
    })
    .flatten();
    Ok(events.into())
}

/// The state of the page's live connection, shown in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Nothing live on this page.
    Idle,
    /// Streaming.
    Live,
    /// Lost; trying again (attempt number).
    Reconnecting(u32),
}

/// Shared by the header's indicator and every page that streams.
#[derive(Clone, Copy)]
pub struct ConnectionStatus(pub RwSignal<Connection>);

/// Wait `ms` milliseconds in the browser (reconnect backoff).
#[cfg(feature = "hydrate")]
async fn pause(ms: u64) {
    let (done, wait) = futures::channel::oneshot::channel::<()>();
    set_timeout(
        move || {
            let _ = done.send(());
        },
        std::time::Duration::from_millis(ms),
    );
    let _ = wait.await;
}

/// Follow `request` for as long as the page lives, reconnecting with backoff. `next_request` builds the request
/// for each (re)connection, so a run page can resume after the last `seq` it shows; `on_event` receives every
/// event; `should_stop` ends the loop (a finished run needs no reconnect).
#[cfg(feature = "hydrate")]
pub fn follow(
    next_request: impl Fn() -> WatchRequest + 'static,
    on_event: impl Fn(LiveEvent) + 'static,
    should_stop: impl Fn() -> bool + 'static,
) {
    use futures::{SinkExt, StreamExt};
    let status = use_context::<ConnectionStatus>();
    use futures::future::{select, Either};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    // Cleared when the page that asked goes away, so its stream stops and never reconnects; the oneshot wakes a
    // stream that is waiting for an event, so its socket closes at once instead of at the next event.
    let alive = Arc::new(AtomicBool::new(true));
    let alive_for_cleanup = alive.clone();
    let (gone, mut page_gone) = futures::channel::oneshot::channel::<()>();
    let gone = Mutex::new(Some(gone));
    on_cleanup(move || {
        alive_for_cleanup.store(false, Ordering::Relaxed);
        if let Some(gone) = gone.lock().ok().and_then(|mut slot| slot.take()) {
            let _ = gone.send(());
        }
    });
    let alive = move || alive.load(Ordering::Relaxed);
    leptos::task::spawn_local(async move {
        let mut attempt = 0u32;
        while alive() && !should_stop() {
            let (mut sender, receiver) = futures::channel::mpsc::channel(1);
            if sender.send(Ok(next_request())).await.is_err() {
                break;
            }
            match watch(receiver.into()).await {
                Ok(mut events) => {
                    if let Some(status) = status {
                        status.0.set(Connection::Live);
                    }
                    loop {
                        let event = match select(events.next(), &mut page_gone).await {
                            Either::Left((Some(event), _)) => event,
                            Either::Left((None, _)) => break,
                            Either::Right(_) => return,
                        };
                        if !alive() {
                            return;
                        }
                        match event {
                            Ok(event) => {
                                attempt = 0;
                                on_event(event);
                                if should_stop() {
                                    return;
                                }
                            }
                            // Nothing to follow (the run was deleted): reconnecting would not help.
                            Err(AppError::NotFound(_)) => return,
                            Err(_) => break,
                        }
                    }
                }
                Err(AppError::NotFound(_)) => break,
                Err(_) => {}
            }
            // Keep the request side open until the answer ended: dropping it would close the socket.
            drop(sender);
            if !alive() || should_stop() {
                break;
            }
            attempt += 1;
            if let Some(status) = status {
                status.0.set(Connection::Reconnecting(attempt));
            }
            pause(u64::from(attempt.min(10)) * 500).await;
        }
        if let Some(status) = status {
            if alive() {
                status.0.set(Connection::Idle);
            }
        }
    });
}
