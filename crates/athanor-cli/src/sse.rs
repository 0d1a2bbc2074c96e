//! An incremental reader of `text/event-stream` (server-sent events), fed whatever chunks the network delivers.
//!
//! The format is small enough to read by hand, which keeps a dependency (and its parser combinator library) out
//! of the client. An event is a block of `field: value` lines ended by a blank line:
//!
//! ```text
//! : keep-alive comments start with a colon and are ignored
//! event: progress
//! data: {"current": 3, "total": 10, "message": null}
//!
//! ```
//!
//! What this reader guarantees, whatever the chunk boundaries (the tests split streams at every byte):
//!
//! - lines end at `\n`, `\r\n` or a lone `\r`, even when `\r` and `\n` arrive in different chunks;
//! - bytes are decoded only once a line is complete, so a multi-byte UTF-8 character split between chunks is
//!   decoded whole;
//! - several `data:` lines of one event are joined with `\n`; one space after the colon is dropped;
//! - a block with no `data:` line dispatches nothing, as the specification says (so comment-only keep-alives
//!   produce no event); `id:` and `retry:` are read and ignored, since resuming uses the records' own `seq`.

/// One dispatched event: its type (`message` when the block named none) and its joined data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, e.g. `snapshot`, `records`, `progress`, `status`.
    pub event: String,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Reads events out of a byte stream, one chunk at a time. See the module documentation.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line not yet ended.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next chunk belongs to that line ending.
    after_cr: bool,
    /// The `event:` of the block being read.
    event: Option<String>,
    /// The `data:` of the block being read, `None` until a `data:` line arrives.
    data: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feed the next chunk; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut bytes = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let is_cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if is_cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    // The `\n` of a `\r\n` may be the first byte of the next chunk.
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.line_ended(&String::from_utf8_lossy(&line)) {
                events.push(event);
            }
        }
        self.line.extend_from_slice(bytes);
        events
    }

    /// Handle one complete line; a blank line dispatches the block read so far.
    fn line_ended(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            let data = self.data.take()?;
            return Some(SseEvent { event: event.unwrap_or_else(|| "message".to_owned()), data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            // A line with no colon is a field with an empty value.
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // `id` and `retry` steer a browser's reconnection; this client resumes from record `seq`s instead.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into() }
    }

    /// Parse `input` delivered in chunks ending at each of `cuts`.
    fn parse_split(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain([input.len()].iter()) {
            events.extend(parser.push(&input[start..cut]));
            start = cut;
        }
        events
    }

    const STREAM: &str = ": keep-alive\n\
        event: snapshot\n\
        data: {\"run\":1,\"progress\":null}\n\
        \n\
        : another comment\n\
        \n\
        event: records\r\n\
        data: {\"logs\":[{\"message\":\"héllo ✓\"}],\r\n\
        data: \"results\":[]}\r\n\
        \r\n\
        data:no space\r\r\
        event: status\n\
        id: 17\n\
        retry: 1000\n\
        data\n\
        \n";

    fn expected() -> Vec<SseEvent> {
        vec![
            event("snapshot", "{\"run\":1,\"progress\":null}"),
            event("records", "{\"logs\":[{\"message\":\"héllo ✓\"}],\n\"results\":[]}"),
            event("message", "no space"),
            event("status", ""),
        ]
    }

    #[test]
    fn reads_events_delivered_whole() {
        assert_eq!(parse_split(STREAM.as_bytes(), &[]), expected());
    }

    #[test]
    fn reads_the_same_events_whatever_the_chunk_boundaries() {
        let bytes = STREAM.as_bytes();
        // Every single cut, including inside `\r\n`, inside `data:` and inside the multi-byte `é` and `✓`.
        for cut in 0..=bytes.len() {
            assert_eq!(parse_split(bytes, &[cut]), expected(), "cut at byte {cut}");
        }
        // And one byte at a time.
        let every: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(parse_split(bytes, &every), expected());
    }

    #[test]
    fn keep_alive_comments_and_dataless_blocks_dispatch_nothing() {
        let mut parser = SseParser::new();
        assert!(parser.push(b": ping\n\n: ping\n\nevent: status\n\n").is_empty());
        // The `event:` of a dataless block does not leak into the next one.
        assert_eq!(parser.push(b"data: x\n\n"), vec![event("message", "x")]);
    }

    #[test]
    fn an_unfinished_event_waits_for_its_blank_line() {
        let mut parser = SseParser::new();
        assert!(parser.push(b"event: progress\ndata: {}\n").is_empty());
        assert_eq!(parser.push(b"\n"), vec![event("progress", "{}")]);
    }
}
