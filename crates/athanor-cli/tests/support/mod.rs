//! A scripted HTTP server on a loopback port, so the CLI's requests, error handling and event-stream following can
//! be tested through real sockets without the real Athanor server (which lives in athanor-app; the end-to-end
//! scenarios against it are listed in `tests/e2e_notes.md`).
//!
//! Each request is answered by the test's `respond` function from its method, path and query; every request is
//! recorded so a test can check what was asked (the token, the `after` of a reconnect). A [`Reply`] may be sent in
//! several chunks, each written and flushed on its own, which is how event streams arrive; the connection then
//! closes. (Splitting at every byte is the SSE reader's own unit test.)

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// What the server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string (empty when none).
    pub query: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// What to answer.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// Written one after another, each flushed on its own.
    pub chunks: Vec<Vec<u8>>,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply { status, content_type: "application/json", chunks: vec![body.to_string().into_bytes()] }
    }

    /// An event stream of `events` (`(name, data)`), cut into chunks at `cut` bytes so that lines, and the
    /// characters in them, arrive in pieces.
    pub fn events(events: &[(&str, serde_json::Value)], cut: usize) -> Reply {
        let mut text = String::from(": connected\n\n");
        for (name, data) in events {
            text.push_str(&format!("event: {name}\ndata: {data}\n\n"));
        }
        let chunks = text.as_bytes().chunks(cut).map(<[u8]>::to_vec).collect();
        Reply { status: 200, content_type: "text/event-stream", chunks }
    }
}

/// A running fake server: its base URL and what it was asked.
pub struct FakeServer {
    pub url: String,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    /// Serve on a free loopback port, on plain threads (so it needs nothing of the runtime under test), until
    /// the test process ends.
    pub async fn start(respond: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let respond = Arc::new(respond);
        let seen = requests.clone();
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(mut socket) = socket else { return };
                let respond = respond.clone();
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let Some(request) = read_request(&mut socket) else { return };
                    seen.lock().unwrap().push(request.clone());
                    let reply = respond(&request);
                    let head = format!(
                        "HTTP/1.1 {} X\r\ncontent-type: {}\r\nconnection: close\r\n\r\n",
                        reply.status, reply.content_type
                    );
                    // No length: the body ends when the connection closes, as a stream does.
                    if socket.write_all(head.as_bytes()).is_err() {
                        return;
                    }
                    for chunk in reply.chunks {
                        if socket.write_all(&chunk).and_then(|()| socket.flush()).is_err() {
                            return;
                        }
                    }
                    let _ = socket.shutdown(Shutdown::Both);
                });
            }
        });
        FakeServer { url, requests }
    }

    /// The requests so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(socket: &mut TcpStream) -> Option<Request> {
    let mut bytes = Vec::new();
    let mut buffer = [0_u8; 4096];
    let head_end = loop {
        let read = socket.read(&mut buffer).ok()?;
        if read == 0 {
            return None;
        }
        bytes.extend_from_slice(&buffer[..read]);
        if let Some(end) = bytes.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize =
        headers.iter().find(|(name, _)| name == "content-length").map_or(0, |(_, v)| v.parse().unwrap_or(0));
    let mut body = bytes[head_end + 4..].to_vec();
    while body.len() < length {
        let read = socket.read(&mut buffer).ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&buffer[..read]);
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
