//! Splitting a byte stream into lines without letting one line grow memory without bound.
//!
//! A child process decides how long its lines are, so the reader cannot simply buffer until the next newline: a
//! program that prints a gigabyte without one would take the server down with it. [`LineReader`] keeps at most
//! [`MAX_LINE_BYTES`] of any line, counts (and throws away) the rest up to the next newline, and goes on with the
//! following lines. Unlike `tokio_util`'s `LinesCodec` under `FramedRead`, an oversized line is an ordinary event
//! here, not an error that ends the stream.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most of one line that is kept: 1 MiB, not counting its newline. Longer lines are truncated to this.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// How much is read from the stream at once. A Linux pipe holds 64 KiB by default, so one read usually empties it.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// One line of the stream, borrowed from the reader's buffers until the callback returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// The line without its newline, or its first [`MAX_LINE_BYTES`] when it was longer.
    pub(crate) bytes: &'a [u8],
    /// How many bytes past the cap were discarded (0 for a line that fit).
    pub(crate) dropped: usize,
    /// False for a last line that the stream ended in the middle of (no newline), as when the writer crashed
    /// mid-write.
    pub(crate) terminated: bool,
}

impl Line<'_> {
    /// The line's full length as written, including any discarded bytes.
    pub(crate) fn written_len(&self) -> usize {
        self.bytes.len() + self.dropped
    }
}

/// Reads lines from `reader`, keeping at most a capped number of bytes of each.
///
/// Memory stays bounded by the cap plus one read chunk whatever the stream contains.
pub(crate) struct LineReader<R> {
    reader: R,
    cap: usize,
    chunk: Box<[u8]>,
    pending: PendingLine,
    at_end: bool,
}

/// The start of a line whose newline has not been read yet.
#[derive(Default)]
struct PendingLine {
    /// Its first bytes, never more than the cap.
    kept: Vec<u8>,
    /// Bytes of it past the cap, already discarded.
    dropped: usize,
}

impl PendingLine {
    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.dropped == 0
    }

    fn append(&mut self, piece: &[u8], cap: usize) {
        let kept = piece.len().min(cap - self.kept.len());
        self.kept.extend_from_slice(&piece[..kept]);
        self.dropped += piece.len() - kept;
    }

    fn clear(&mut self) {
        self.dropped = 0;
        if self.kept.capacity() > READ_CHUNK_BYTES {
            // One huge line should not pin a megabyte per stream for the rest of a long run.
            self.kept = Vec::new();
        } else {
            self.kept.clear();
        }
    }
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// A reader that keeps at most [`MAX_LINE_BYTES`] of each line.
    pub(crate) fn new(reader: R) -> LineReader<R> {
        LineReader::with_limits(reader, MAX_LINE_BYTES, READ_CHUNK_BYTES)
    }

    /// A reader with its own cap and read size (tests use tiny ones to hit every boundary).
    pub(crate) fn with_limits(reader: R, cap: usize, read_chunk: usize) -> LineReader<R> {
        LineReader {
            reader,
            cap,
            chunk: vec![0; read_chunk.max(1)].into_boxed_slice(),
            pending: PendingLine::default(),
            at_end: false,
        }
    }

    /// Read once from the stream and call `on_line` for every line that read completed, in order.
    ///
    /// Handing over every line of a read at once lets the caller forward them in one batch. Returns `Ok(false)` at
    /// the end of the stream, after passing on a last line that had no newline (with `terminated: false`), and on
    /// every call after that.
    pub(crate) async fn read_lines(&mut self, mut on_line: impl FnMut(Line<'_>)) -> io::Result<bool> {
        if self.at_end {
            return Ok(false);
        }
        let read = self.reader.read(&mut self.chunk).await?;
        if read == 0 {
            self.at_end = true;
            if !self.pending.is_empty() {
                on_line(Line { bytes: &self.pending.kept, dropped: self.pending.dropped, terminated: false });
                self.pending.clear();
            }
            return Ok(false);
        }
        split(&self.chunk[..read], self.cap, &mut self.pending, &mut on_line);
        Ok(true)
    }
}

/// Split `data` at its newlines; the piece after the last newline waits in `pending` for the next read.
fn split(data: &[u8], cap: usize, pending: &mut PendingLine, on_line: &mut impl FnMut(Line<'_>)) {
    let mut rest = data;
    while let Some(newline) = rest.iter().position(|&byte| byte == b'\n') {
        let piece = &rest[..newline];
        rest = &rest[newline + 1..];
        if pending.is_empty() {
            // The usual case, a whole line inside one read: hand it over without copying.
            let kept = piece.len().min(cap);
            on_line(Line { bytes: &piece[..kept], dropped: piece.len() - kept, terminated: true });
        } else {
            pending.append(piece, cap);
            on_line(Line { bytes: &pending.kept, dropped: pending.dropped, terminated: true });
            pending.clear();
        }
    }
    pending.append(rest, cap);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct Owned {
        text: String,
        dropped: usize,
        terminated: bool,
    }

    fn owned(text: &str, dropped: usize, terminated: bool) -> Owned {
        Owned { text: text.to_owned(), dropped, terminated }
    }

    async fn all_lines(input: &[u8], cap: usize, read_chunk: usize) -> Vec<Owned> {
        let mut reader = LineReader::with_limits(input, cap, read_chunk);
        let mut lines = Vec::new();
        let mut collect = |line: Line<'_>| {
            lines.push(Owned {
                text: String::from_utf8_lossy(line.bytes).into_owned(),
                dropped: line.dropped,
                terminated: line.terminated,
            })
        };
        while reader.read_lines(&mut collect).await.unwrap() {}
        assert!(!reader.read_lines(&mut collect).await.unwrap(), "the end of the stream stays the end");
        lines
    }

    #[tokio::test]
    async fn splits_lines_whatever_the_read_size() {
        let input = b"first\n\nthird line\nlast";
        let expected =
            vec![owned("first", 0, true), owned("", 0, true), owned("third line", 0, true), owned("last", 0, false)];
        for read_chunk in [1, 2, 3, 5, 7, 64] {
            assert_eq!(all_lines(input, 100, read_chunk).await, expected, "read size {read_chunk}");
        }
    }

    #[tokio::test]
    async fn a_final_newline_leaves_no_empty_line_behind() {
        assert_eq!(all_lines(b"a\nb\n", 100, 64).await, vec![owned("a", 0, true), owned("b", 0, true)]);
        assert_eq!(all_lines(b"", 100, 64).await, vec![]);
    }

    #[tokio::test]
    async fn an_oversized_line_is_truncated_and_the_next_line_is_intact() {
        let input = b"short\n0123456789abcdef\nafter\n0123456789";
        let expected = vec![
            owned("short", 0, true),
            owned("01234567", 8, true),
            owned("after", 0, true),
            owned("01234567", 2, false),
        ];
        for read_chunk in [1, 3, 4, 9, 64] {
            assert_eq!(all_lines(input, 8, read_chunk).await, expected, "read size {read_chunk}");
        }
    }

    #[tokio::test]
    async fn a_line_exactly_at_the_cap_is_whole() {
        assert_eq!(all_lines(b"12345678\n", 8, 3).await, vec![owned("12345678", 0, true)]);
    }

    #[tokio::test]
    async fn memory_stays_bounded_by_the_cap_for_a_huge_line() {
        let huge = vec![b'x'; 5 * MAX_LINE_BYTES];
        let mut input = huge.clone();
        input.extend_from_slice(b"\nnext\n");
        let mut reader = LineReader::new(&input[..]);
        let mut seen = Vec::new();
        while reader
            .read_lines(|line| {
                seen.push((line.bytes.len(), line.dropped));
            })
            .await
            .unwrap()
        {
            assert!(reader.pending.kept.capacity() <= 2 * MAX_LINE_BYTES, "the pending line grew past the cap");
        }
        assert_eq!(seen, vec![(MAX_LINE_BYTES, 4 * MAX_LINE_BYTES), (4, 0)]);
    }
}
