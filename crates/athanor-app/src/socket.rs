//! [`Websocket`]: server_fn's websocket protocol for a socket that asks once and then listens, with the bounds the
//! stock protocol cannot be given.
//!
//! server_fn's own `Websocket` protocol upgrades with axum's defaults (messages up to 64 MiB, frames up to 16 MiB),
//! queues up to 2,048 incoming messages the server function has not read, and keeps a client that never says
//! anything for as long as its TCP connection lives; none of that can be configured from a server function. This
//! protocol speaks the same wire format — binary messages, each a tag byte (0 a value, 1 an error) and the encoded
//! value — so the browser half is server_fn's own (`run_client` delegates to it). The server half is ours
//! ([`LiveSockets`], server only):
//!
//! - beyond [`LiveLimits::max_sockets`] open sockets, an upgrade is refused: `503 Service Unavailable`, with the
//!   error in the body;
//! - an incoming message (and frame) over [`LiveLimits::max_message_bytes`] closes the socket (close code 1009);
//! - a client that sends no message within [`LiveLimits::first_message_within`] gets an error and is closed (1008);
//! - the first message goes to the server function; any later one gets an error and closes the socket (1008): such
//!   a socket asks once, then only listens. Pings are answered and never count as messages;
//! - every [`LiveLimits::ping_every`] the server pings; a client that has sent nothing (a pong included) since the
//!   previous ping, or that does not take a message within that time, is gone: its socket is dropped, so a vanished
//!   peer does not hold a place for ever.

#[cfg(not(feature = "ssr"))]
use futures::Future;
#[cfg(not(feature = "ssr"))]
use leptos::server_fn::{client::Client, server::Server, Protocol, Websocket as StockWebsocket};
use std::marker::PhantomData;

/// The websocket protocol of a server function whose client sends one request and then receives a stream (see the
/// module documentation). Written like server_fn's: `socket::Websocket<JsonEncoding, JsonEncoding>`. It has the
/// same name because the `#[server]` macro recognises a websocket protocol by it (a streaming argument is neither
/// cloned nor serialized).
pub struct Websocket<InputEncoding, OutputEncoding>(PhantomData<(InputEncoding, OutputEncoding)>);

/// In the browser (and any build without `ssr`), everything is server_fn's `Websocket`: the server half is never
/// run there, and the client half is the same on both.
#[cfg(not(feature = "ssr"))]
impl<
        Input,
        Output,
        ClientType,
        ServerType,
        Error,
        InputStreamError,
        OutputStreamError,
        InputEncoding,
        OutputEncoding,
    > Protocol<Input, Output, ClientType, ServerType, Error, InputStreamError, OutputStreamError>
    for Websocket<InputEncoding, OutputEncoding>
where
    ServerType: Server<Error, InputStreamError, OutputStreamError>,
    ClientType: Client<Error, InputStreamError, OutputStreamError>,
    StockWebsocket<InputEncoding, OutputEncoding>:
        Protocol<Input, Output, ClientType, ServerType, Error, InputStreamError, OutputStreamError>,
{
    const METHOD: http::Method = <StockWebsocket<InputEncoding, OutputEncoding> as Protocol<
        Input,
        Output,
        ClientType,
        ServerType,
        Error,
        InputStreamError,
        OutputStreamError,
    >>::METHOD;

    fn run_server<F, Fut>(
        request: ServerType::Request,
        server_fn: F,
    ) -> impl Future<Output = Result<ServerType::Response, Error>> + Send
    where
        F: Fn(Input) -> Fut + Send,
        Fut: Future<Output = Result<Output, Error>> + Send,
    {
        <StockWebsocket<InputEncoding, OutputEncoding> as Protocol<
            Input,
            Output,
            ClientType,
            ServerType,
            Error,
            InputStreamError,
            OutputStreamError,
        >>::run_server(request, server_fn)
    }

    fn run_client(path: &str, input: Input) -> impl Future<Output = Result<Output, Error>> + Send {
        <StockWebsocket<InputEncoding, OutputEncoding> as Protocol<
            Input,
            Output,
            ClientType,
            ServerType,
            Error,
            InputStreamError,
            OutputStreamError,
        >>::run_client(path, input)
    }
}

#[cfg(feature = "ssr")]
pub use server::{LiveLimits, LiveSockets};

#[cfg(feature = "ssr")]
mod server {
    use super::Websocket;
    use crate::error::AppError;
    use axum::body::Body;
    use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
    use axum::extract::FromRequest;
    use axum::http::{header, Request, Response, StatusCode};
    use futures::channel::mpsc;
    use futures::{Future, SinkExt, Stream, StreamExt};
    use leptos::prelude::use_context;
    use leptos::server_fn::axum::AxumServerFnBackend;
    use leptos::server_fn::client::Client;
    use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
    use leptos::server_fn::{BoxedStream, Bytes, Decodes, Encodes, Protocol, Websocket as StockWebsocket};
    use std::ops::Deref;
    use std::pin::{pin, Pin};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::time::{Instant, MissedTickBehavior};

    /// Tag of a message carrying a value (server_fn's framing).
    const OK_TAG: u8 = 0;
    /// Tag of a message carrying an error.
    const ERROR_TAG: u8 = 1;
    /// Close code: the client broke the socket's rules (no request in time, a second message).
    const POLICY_VIOLATION: u16 = 1008;
    /// Close code: a message over the size limit.
    const MESSAGE_TOO_BIG: u16 = 1009;

    /// Bytes a live socket buffers for reading: twice the largest message a client may send.
    const SOCKET_READ_BUFFER: usize = 8 * 1024;

    /// Bytes a live socket gathers before writing to the network; events larger than this go out at once.
    const SOCKET_WRITE_BUFFER: usize = 32 * 1024;

    /// The bounds of every live socket (see the module documentation).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct LiveLimits {
        /// Sockets open at once; one more is refused before the upgrade. Default 1,000: far more than the tabs of
        /// the people who share a server, with 8 KiB read buffers (about 50 MiB for all of them at most, measured).
        pub max_sockets: usize,
        /// The largest message (and frame) a client may send. Default 4 KiB: a request is about a hundred bytes.
        pub max_message_bytes: usize,
        /// How long a client may take to send its request before it is closed. Default 10 s: a page sends it as
        /// soon as the socket opens.
        pub first_message_within: Duration,
        /// How often the server pings a socket; also how long a client may take to take one message. Default 30 s.
        pub ping_every: Duration,
    }

    impl Default for LiveLimits {
        fn default() -> Self {
            LiveLimits {
                max_sockets: 1_000,
                max_message_bytes: 4 * 1024,
                first_message_within: Duration::from_secs(10),
                ping_every: Duration::from_secs(30),
            }
        }
    }

    /// The server's live sockets: their limits, and how many are open. The router provides it as context to
    /// server functions (`server/mod.rs`).
    #[derive(Debug, Clone)]
    pub struct LiveSockets {
        limits: LiveLimits,
        open: Arc<AtomicUsize>,
    }

    impl LiveSockets {
        /// No socket open yet.
        pub fn new(limits: LiveLimits) -> LiveSockets {
            LiveSockets { limits, open: Arc::new(AtomicUsize::new(0)) }
        }

        /// How many sockets are open (or being upgraded) now.
        pub fn open(&self) -> usize {
            self.open.load(Ordering::Acquire)
        }

        /// A place for one more socket, unless every place is taken.
        fn admit(&self) -> Option<Admission> {
            let max = self.limits.max_sockets;
            self.open
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| (open < max).then_some(open + 1))
                .ok()
                .map(|_| Admission(self.open.clone()))
        }
    }

    /// One socket's place; given back when dropped (the socket closed, or its upgrade never completed).
    struct Admission(Arc<AtomicUsize>);

    impl Drop for Admission {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }

    fn tagged(tag: u8, content: &[u8]) -> Bytes {
        let mut bytes = Vec::with_capacity(1 + content.len());
        bytes.push(tag);
        bytes.extend_from_slice(content);
        Bytes::from(bytes)
    }

    /// A refusal as a websocket message: server_fn's error framing, which the browser half decodes.
    fn error_message(message: String) -> Message {
        let error = AppError::Invalid { message, fields: Vec::new() };
        Message::Binary(tagged(ERROR_TAG, &error.ser()))
    }

    /// The answer to an upgrade beyond the socket limit: `unavailable` (503) with the error, as other
    /// server-function errors carry it (server_fn's `Res::error_response` would say 500 for what is a temporary
    /// refusal).
    fn refusal(max_sockets: usize) -> Response<Body> {
        let error = AppError::Unavailable(format!(
            "too many live connections: {max_sockets} are open, the most this server keeps; close other tabs or try \
             again later"
        ));
        let mut response = Response::new(Body::from(error.ser()));
        *response.status_mut() =
            StatusCode::from_u16(error.code().http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
        response
    }

    impl<Input, InputItem, OutputItem, InputEncoding, OutputEncoding, ClientType>
        Protocol<
            Input,
            BoxedStream<OutputItem, AppError>,
            ClientType,
            AxumServerFnBackend,
            AppError,
            AppError,
            AppError,
        > for Websocket<InputEncoding, OutputEncoding>
    where
        Input: Deref<Target = BoxedStream<InputItem, AppError>>
            + Into<BoxedStream<InputItem, AppError>>
            + From<BoxedStream<InputItem, AppError>>,
        InputEncoding: Encodes<InputItem> + Decodes<InputItem>,
        OutputEncoding: Encodes<OutputItem> + Decodes<OutputItem>,
        ClientType: Client<AppError, AppError, AppError>,
        InputItem: Send + 'static,
        OutputItem: Send + 'static,
        StockWebsocket<InputEncoding, OutputEncoding>: Protocol<
            Input,
            BoxedStream<OutputItem, AppError>,
            ClientType,
            AxumServerFnBackend,
            AppError,
            AppError,
            AppError,
        >,
    {
        const METHOD: http::Method = http::Method::GET;

        async fn run_server<F, Fut>(request: Request<Body>, server_fn: F) -> Result<Response<Body>, AppError>
        where
            F: Fn(Input) -> Fut + Send,
            Fut: Future<Output = Result<BoxedStream<OutputItem, AppError>, AppError>> + Send,
        {
            let sockets = use_context::<LiveSockets>()
                .ok_or_else(|| AppError::Server("live sockets are not set up on this server".into()))?;
            // Taken before the upgrade, so sockets being opened count too.
            let Some(admission) = sockets.admit() else {
                return Ok(refusal(sockets.limits.max_sockets));
            };
            let limits = sockets.limits;
            let upgrade = WebSocketUpgrade::from_request(request, &())
                .await
                .map_err(|rejection| AppError::from_server_fn_error(ServerFnErrorErr::Request(rejection.body_text())))?
                .max_message_size(limits.max_message_bytes)
                .max_frame_size(limits.max_message_bytes)
                // tungstenite's default read buffer is 128 KiB, zero-filled per socket: a thousand idle viewers
                // would hold 128 MiB. Clients send one message of at most a few KiB, so a small buffer does.
                .read_buffer_size(SOCKET_READ_BUFFER)
                .write_buffer_size(SOCKET_WRITE_BUFFER);

            // The first message, decoded; the stream ends after it.
            let (first_sender, first) = mpsc::channel::<Bytes>(1);
            let input = first.map(|bytes: Bytes| match bytes.first() {
                Some(&OK_TAG) => InputEncoding::decode(bytes.slice(1..)).map_err(|error| {
                    AppError::from_server_fn_error(ServerFnErrorErr::Deserialization(error.to_string()))
                }),
                Some(&ERROR_TAG) => Err(AppError::de(bytes.slice(1..))),
                _ => Err(AppError::from_server_fn_error(ServerFnErrorErr::Deserialization(
                    "a message must start with the tag byte 0 or 1".into(),
                ))),
            });
            let output = server_fn(BoxedStream::from(input).into()).await?;
            let output: Pin<Box<dyn Stream<Item = Result<OutputItem, AppError>> + Send>> = output.into();
            let output = output.map(|item| match item {
                Ok(item) => match OutputEncoding::encode(&item) {
                    Ok(bytes) => tagged(OK_TAG, &bytes),
                    Err(error) => tagged(
                        ERROR_TAG,
                        &AppError::from_server_fn_error(ServerFnErrorErr::Serialization(error.to_string())).ser(),
                    ),
                },
                Err(error) => tagged(ERROR_TAG, &error.ser()),
            });
            Ok(upgrade.on_upgrade(move |mut socket| async move {
                serve(&mut socket, first_sender, output, limits).await;
                // The place is free before the client can see the socket end.
                drop(admission);
            }))
        }

        fn run_client(
            path: &str,
            input: Input,
        ) -> impl Future<Output = Result<BoxedStream<OutputItem, AppError>, AppError>> + Send {
            <StockWebsocket<InputEncoding, OutputEncoding> as Protocol<
                Input,
                BoxedStream<OutputItem, AppError>,
                ClientType,
                AxumServerFnBackend,
                AppError,
                AppError,
                AppError,
            >>::run_client(path, input)
        }
    }

    /// What arrived from the client.
    enum Incoming {
        /// A message (binary or text).
        Message(Bytes),
        /// A ping was answered, or a pong arrived: nothing to act on.
        Control,
        /// The client closed the socket, or it failed (the reason was logged and, when it can be, sent).
        Gone,
    }

    async fn receive(
        socket: &mut WebSocket,
        limits: &LiveLimits,
        received: Option<Result<Message, axum::Error>>,
    ) -> Incoming {
        match received {
            Some(Ok(Message::Binary(bytes))) => Incoming::Message(bytes),
            Some(Ok(Message::Text(text))) => Incoming::Message(Bytes::from(text)),
            Some(Ok(Message::Ping(payload))) => {
                if !send(socket, Message::Pong(payload), limits).await {
                    return Incoming::Gone;
                }
                Incoming::Control
            }
            Some(Ok(Message::Pong(_))) => Incoming::Control,
            Some(Ok(Message::Close(_))) | None => Incoming::Gone,
            Some(Err(error)) => {
                // tungstenite refuses an oversized message or frame while reading it ("Space limit exceeded:
                // Message too long"); any other error means the connection is broken.
                let text = error.to_string();
                tracing::debug!(%text, "live socket read failed");
                if text.contains("too long") || text.contains("Space limit") {
                    let reason = format!("a message may be at most {} bytes", limits.max_message_bytes);
                    close(socket, MESSAGE_TOO_BIG, reason, limits).await;
                }
                Incoming::Gone
            }
        }
    }

    /// Send one message; false when the socket failed or the client did not take it within
    /// [`LiveLimits::ping_every`] (a client that stopped reading must not hold its place, nor this task, for ever).
    async fn send(socket: &mut WebSocket, message: Message, limits: &LiveLimits) -> bool {
        matches!(tokio::time::timeout(limits.ping_every, socket.send(message)).await, Ok(Ok(())))
    }

    /// Tell the client why, as an error it can decode, then close with `code`.
    async fn close(socket: &mut WebSocket, code: u16, reason: String, limits: &LiveLimits) {
        if !send(socket, error_message(reason.clone()), limits).await {
            return;
        }
        // A close reason may hold at most 123 bytes.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let frame = CloseFrame { code, reason: reason[..end].into() };
        send(socket, Message::Close(Some(frame)), limits).await;
    }

    /// Run one socket: wait (boundedly) for the request, pass it on, then send the answers until either side ends.
    async fn serve(
        socket: &mut WebSocket,
        mut first_sender: mpsc::Sender<Bytes>,
        output: impl Stream<Item = Bytes> + Send,
        limits: LiveLimits,
    ) {
        let deadline = tokio::time::sleep(limits.first_message_within);
        let mut deadline = pin!(deadline);
        let first = loop {
            let received = tokio::select! {
                () = &mut deadline => {
                    let waited = limits.first_message_within.as_secs_f64();
                    let reason = format!("no watch request within {waited} s; closing");
                    close(socket, POLICY_VIOLATION, reason, &limits).await;
                    return;
                }
                received = socket.recv() => received,
            };
            match receive(socket, &limits, received).await {
                Incoming::Message(bytes) => break bytes,
                Incoming::Control => {}
                Incoming::Gone => return,
            }
        };
        if first_sender.send(first).await.is_err() {
            return;
        }
        drop(first_sender);

        let mut output = pin!(output);
        let mut heartbeat = tokio::time::interval_at(Instant::now() + limits.ping_every, limits.ping_every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Whether the client sent anything (a pong included) since the last ping.
        let mut heard = true;
        loop {
            tokio::select! {
                answer = output.next() => match answer {
                    Some(bytes) => {
                        if !send(socket, Message::Binary(bytes), &limits).await {
                            return;
                        }
                    }
                    None => {
                        send(socket, Message::Close(None), &limits).await;
                        return;
                    }
                },
                received = socket.recv() => match receive(socket, &limits, received).await {
                    Incoming::Message(_) => {
                        let reason = "this socket takes one request and then only listens; open another to ask again";
                        close(socket, POLICY_VIOLATION, reason.into(), &limits).await;
                        return;
                    }
                    Incoming::Control => heard = true,
                    Incoming::Gone => return,
                },
                _ = heartbeat.tick() => {
                    if !heard {
                        tracing::debug!("live socket: no answer to the last ping; dropping it");
                        return;
                    }
                    heard = false;
                    if !send(socket, Message::Ping(Bytes::new()), &limits).await {
                        return;
                    }
                }
            }
        }
    }
}
