//! The live socket at `/api/watch` against the real server, spoken as the browser speaks it (server_fn's websocket
//! framing: binary messages, a tag byte — 0 a value, 1 an error — then JSON): its answers, and its bounds.

use athanor_app::error::AppError;
use athanor_app::live::{LiveEvent, WatchRequest};
use athanor_app::server::{start, Config, Server};
use athanor_app::socket::LiveLimits;
use athanor_core::api::InstanceInput;
use athanor_core::{RunEvent, RunId};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A safety net so a regression fails instead of hanging; nothing waits for it to pass.
const HANG_LIMIT: Duration = Duration::from_secs(30);

struct App {
    server: Server,
    _dir: tempfile::TempDir,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn app(live: LiveLimits) -> App {
    let dir = tempfile::tempdir().unwrap();
    let server = start(Config { live, ..Config::in_folder(dir.path()) }).await.unwrap();
    App { server, _dir: dir }
}

impl App {
    fn url(&self) -> String {
        format!("ws://{}/api/watch", self.server.addr)
    }

    async fn connect(&self) -> Socket {
        tokio_tungstenite::connect_async(self.url()).await.expect("the upgrade is accepted").0
    }
}

/// A request as the browser sends it.
fn request(request: &WatchRequest) -> Message {
    let mut bytes = vec![0];
    bytes.extend(serde_json::to_vec(request).unwrap());
    Message::binary(bytes)
}

/// What the server sent next: an event, an error, or the close frame's code and reason; `None` when the connection
/// ended without one.
#[derive(Debug)]
enum Received {
    Event(Box<LiveEvent>),
    Error(AppError),
    Close(Option<(u16, String)>),
    Ended,
}

async fn receive(socket: &mut Socket) -> Received {
    loop {
        let message = tokio::time::timeout(HANG_LIMIT, socket.next()).await.expect("the server answers in time");
        return match message {
            Some(Ok(Message::Binary(bytes))) => match bytes.split_first() {
                Some((0, json)) => Received::Event(Box::new(serde_json::from_slice(json).unwrap())),
                Some((1, json)) => Received::Error(serde_json::from_slice(json).unwrap()),
                other => panic!("not server_fn's framing: {other:?}"),
            },
            Some(Ok(Message::Close(frame))) => {
                Received::Close(frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("unexpected message {other:?}"),
            Some(Err(_)) | None => Received::Ended,
        };
    }
}

/// The error and the close code the server ends a socket with when the client broke a rule.
async fn closed_for(socket: &mut Socket) -> (String, u16) {
    let error = match receive(socket).await {
        Received::Error(AppError::Invalid { message, .. }) => message,
        other => panic!("expected the reason as an error first, got {other:?}"),
    };
    match receive(socket).await {
        Received::Close(Some((code, reason))) => {
            assert!(error.starts_with(&reason), "the close reason {reason:?} is the error's start: {error:?}");
            (error, code)
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_streams_to_its_end_and_an_unknown_run_is_an_error() {
    let app = app(LiveLimits::default()).await;
    let service = &app.server.state.service;
    let input = InstanceInput {
        experiment: "chatty".into(),
        name: "five lines".into(),
        description: String::new(),
        config: json!({"lines": 5}),
    };
    let instance = service.create_instance(input).await.unwrap();
    let run = service.start_run(instance.id).await.unwrap();

    let mut socket = app.connect().await;
    socket.send(request(&WatchRequest::Run { run_id: run.id, after_seq: 0 })).await.unwrap();
    let mut lines = 0;
    loop {
        match receive(&mut socket).await {
            Received::Event(event) => match *event {
                LiveEvent::Run(RunEvent::Records { logs, .. }) => lines += logs.len(),
                LiveEvent::Run(RunEvent::Status(run)) if run.status.is_terminal() => break,
                _ => {}
            },
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(lines, 5);

    let mut socket = app.connect().await;
    let unknown = RunId::from(uuid::Uuid::new_v4());
    socket.send(request(&WatchRequest::Run { run_id: unknown, after_seq: 0 })).await.unwrap();
    assert!(matches!(receive(&mut socket).await, Received::Error(AppError::NotFound(_))));
    assert!(matches!(receive(&mut socket).await, Received::Close(_) | Received::Ended));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_nothing_is_closed_within_the_time_limit() {
    let limit = Duration::from_millis(300);
    let app = app(LiveLimits { first_message_within: limit, ..LiveLimits::default() }).await;
    let opened = Instant::now();
    let mut socket = app.connect().await;
    let (error, code) = closed_for(&mut socket).await;
    let waited = opened.elapsed();
    assert_eq!(code, 1008);
    assert_eq!(error, "no watch request within 0.3 s; closing");
    assert!(waited >= limit && waited < limit + Duration::from_secs(5), "closed after {waited:?}");
    assert!(matches!(receive(&mut socket).await, Received::Ended));
    assert_eq!(app.server.state.service.runtime().hub().run_topic_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_message_closes_the_socket() {
    let app = app(LiveLimits::default()).await;
    let mut socket = app.connect().await;
    socket.send(request(&WatchRequest::Lifecycle)).await.unwrap();
    socket.send(Message::Ping(b"still there?".to_vec().into())).await.unwrap();
    socket.send(request(&WatchRequest::Lifecycle)).await.unwrap();
    let (error, code) = closed_for(&mut socket).await;
    assert_eq!(code, 1008);
    assert_eq!(error, "this socket takes one request and then only listens; open another to ask again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_closes_the_socket() {
    let app = app(LiveLimits { max_message_bytes: 1024, ..LiveLimits::default() }).await;
    let mut socket = app.connect().await;
    // Still a valid request, padded with JSON whitespace to 2 KiB.
    let mut padded = vec![0];
    padded.extend(serde_json::to_vec(&WatchRequest::Lifecycle).unwrap());
    padded.resize(2048, b' ');
    let _ = socket.send(Message::binary(padded)).await;
    match receive(&mut socket).await {
        // The server reads the frame's header, refuses it, says why and closes; the client may see the reset first.
        Received::Error(AppError::Invalid { message, .. }) => {
            assert_eq!(message, "a message may be at most 1024 bytes");
            assert!(matches!(receive(&mut socket).await, Received::Close(Some((1009, _))) | Received::Ended));
        }
        Received::Ended => {}
        other => panic!("expected the socket to close, got {other:?}"),
    }

    // A request within the limit is served as usual.
    let mut socket = app.connect().await;
    let unknown = RunId::from(uuid::Uuid::new_v4());
    socket.send(request(&WatchRequest::Run { run_id: unknown, after_seq: 0 })).await.unwrap();
    assert!(matches!(receive(&mut socket).await, Received::Error(AppError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_socket_limit_an_upgrade_is_refused_until_a_place_is_free() {
    let app = app(LiveLimits { max_sockets: 3, ..LiveLimits::default() }).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut socket = app.connect().await;
        socket.send(request(&WatchRequest::Lifecycle)).await.unwrap();
        open.push(socket);
    }

    let refused = tokio_tungstenite::connect_async(app.url()).await.expect_err("a fourth socket is refused");
    let WsError::Http(response) = refused else { panic!("expected an HTTP refusal, got {refused:?}") };
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").and_then(|value| value.to_str().ok()), Some("10"));
    let error: AppError = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
    assert_eq!(
        error,
        AppError::Unavailable(
            "too many live connections: 3 are open, the most this server keeps; close other tabs or try again later"
                .into()
        )
    );

    // One closes; the server frees its place once it has seen the close, and the next upgrade gets it.
    let mut leaving = open.pop().unwrap();
    leaving
        .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .unwrap();
    let accepted = tokio::time::timeout(HANG_LIMIT, async {
        loop {
            match tokio_tungstenite::connect_async(app.url()).await {
                Ok((socket, _)) => return socket,
                // Refused while the server has not yet seen the close: each attempt awaits its answer.
                Err(WsError::Http(response)) if response.status() == 503 => tokio::task::yield_now().await,
                Err(other) => panic!("{other:?}"),
            }
        }
    })
    .await
    .expect("a place frees up");
    drop(accepted);
    drop(open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_answering_pings_is_dropped() {
    let every = Duration::from_millis(200);
    let app = app(LiveLimits { ping_every: every, ..LiveLimits::default() }).await;
    // By hand, since a websocket library answers pings on its own: the upgrade, then the request as one masked
    // binary frame, then nothing but reading.
    let addr = app.server.addr;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let upgrade = format!(
        "GET /api/watch HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(upgrade.as_bytes()).await.unwrap();
    let mut payload = vec![0];
    payload.extend(serde_json::to_vec(&WatchRequest::Lifecycle).unwrap());
    let mask = [7u8, 1, 9, 4];
    let mut frame = vec![0x82, 0x80 | u8::try_from(payload.len()).unwrap()];
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
    let sent = Instant::now();
    tcp.write_all(&frame).await.unwrap();

    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(HANG_LIMIT, tcp.read(&mut chunk)).await.expect("dropped in time") {
            Ok(0) | Err(_) => break,
            Ok(read) => received.extend_from_slice(&chunk[..read]),
        }
    }
    let waited = sent.elapsed();
    assert!(received.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&received));
    assert!(received.windows(2).any(|bytes| bytes == [0x89, 0x00]), "it was pinged first");
    assert!(waited >= 2 * every && waited < 2 * every + Duration::from_secs(5), "dropped after {waited:?}");
}
