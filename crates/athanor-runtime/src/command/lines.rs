//! Splitting a byte stream into lines without letting one line grow memory without bound.
//!
//! A child process decides how long its lines are, so the reader cannot simply buffer until the next newline: a
//! program that prints a gigabyte without one would take the server down with it. [`LineReader`] keeps at most
//! [`MAX_LINE_BYTES`] of any line, counts (and throws away) the rest up to the next newline, and goes on with the
//! following lines. Unlike `tokio_util`'s `LinesCodec` under `FramedRead`, an oversized line is an ordinary event
//! here, not an error that ends the stream.
//!
//! A carriage return right before a line's end is never part of the line, so a program that writes CRLF (Windows
//! habits, some loggers) gets the same lines as one that writes LF. On standard output and error a lone carriage
//! return ends a line too ([`LineEnds::AnyBreak`]): progress bars (tqdm and the like) redraw themselves with `\r`
//! and never write a newline until they finish, so without this a whole training loop's bar would pile up into one
//! line and be cut at the cap.

use std::io;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The most of one line that is kept: 1 MiB, not counting its line end. Longer lines are truncated to this.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// How much is read from the stream at once. A Linux pipe holds 64 KiB by default, so one read usually empties it.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// What ends a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineEnds {
    /// `\n` (or `\r\n`) only; a `\r` elsewhere is part of the line. The protocol's framing: a `\r` inside a JSON
    /// line can only be whitespace between tokens, and must not split a message in two.
    Newline,
    /// `\n`, `\r\n` and a lone `\r`, as a terminal shows text: each redraw of a progress bar becomes a line.
    AnyBreak,
}

/// One line of the stream, borrowed from the reader's buffers until the callback returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Line<'a> {
    /// The line without its line end, or its first [`MAX_LINE_BYTES`] when it was longer.
    pub(crate) bytes: &'a [u8],
    /// How many bytes past the cap were discarded (0 for a line that fit).
    pub(crate) dropped: usize,
    /// False for a last line that the stream ended in the middle of (no line end), as when the writer crashed
    /// mid-write, or that reading stopped in the middle of ([`LineReader::stop`]).
    pub(crate) terminated: bool,
}

impl Line<'_> {
    /// The line's full length as written, including any discarded bytes.
    pub(crate) fn written_len(&self) -> usize {
        self.bytes.len() + self.dropped
    }

    /// Whether the line has nothing in it at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.written_len() == 0
    }
}

/// Reads lines from `reader`, keeping at most a capped number of bytes of each.
///
/// Memory stays bounded by the cap plus one read chunk whatever the stream contains.
pub(crate) struct LineReader<R> {
    reader: R,
    ends: LineEnds,
    cap: usize,
    chunk: Box<[u8]>,
    pending: PendingLine,
    /// The last read ended with a `\r` that ended a line ([`LineEnds::AnyBreak`]): a `\n` starting the next read is
    /// the second half of a CRLF, not an empty line.
    after_cr: bool,
    bytes_read: u64,
    at_end: bool,
}

/// The start of a line whose end has not been read yet.
#[derive(Default)]
struct PendingLine {
    /// Its first bytes, never more than the cap.
    kept: Vec<u8>,
    /// Bytes of it past the cap, already discarded.
    dropped: usize,
    /// Whether its last byte (kept or discarded) is a `\r`, to be removed if the line ends right after it.
    ends_with_cr: bool,
}

impl PendingLine {
    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.dropped == 0
    }

    fn append(&mut self, piece: &[u8], cap: usize) {
        let Some(&last) = piece.last() else { return };
        let kept = piece.len().min(cap - self.kept.len());
        self.kept.extend_from_slice(&piece[..kept]);
        self.dropped += piece.len() - kept;
        self.ends_with_cr = last == b'\r';
    }

    /// Remove the line's trailing `\r`, if any. It is the last byte written, so it is the last one discarded when
    /// the line went past the cap: then the line may turn out to fit after all.
    fn strip_trailing_cr(&mut self) {
        if std::mem::take(&mut self.ends_with_cr) {
            if self.dropped > 0 {
                self.dropped -= 1;
            } else {
                self.kept.pop();
            }
        }
    }

    fn clear(&mut self) {
        self.dropped = 0;
        self.ends_with_cr = false;
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
    pub(crate) fn new(reader: R, ends: LineEnds) -> LineReader<R> {
        LineReader::with_limits(reader, ends, MAX_LINE_BYTES, READ_CHUNK_BYTES)
    }

    /// A reader with its own cap and read size (tests use tiny ones to hit every boundary).
    pub(crate) fn with_limits(reader: R, ends: LineEnds, cap: usize, read_chunk: usize) -> LineReader<R> {
        LineReader {
            reader,
            ends,
            cap,
            chunk: vec![0; read_chunk.max(1)].into_boxed_slice(),
            pending: PendingLine::default(),
            after_cr: false,
            bytes_read: 0,
            at_end: false,
        }
    }

    /// How many bytes have been read from the stream so far.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Read once from the stream and call `on_line` for every line that read completed, in order.
    ///
    /// Handing over every line of a read at once lets the caller forward them in one batch. Returns `Ok(false)` at
    /// the end of the stream, after passing on a last line that had no line end (with `terminated: false`), and on
    /// every call after that.
    ///
    /// Cancel-safe: dropping the future before it completes loses nothing, as the only await is the read itself.
    pub(crate) async fn read_lines(&mut self, mut on_line: impl FnMut(Line<'_>)) -> io::Result<bool> {
        if self.at_end {
            return Ok(false);
        }
        let read = self.reader.read(&mut self.chunk).await?;
        if read == 0 {
            self.stop(on_line);
            return Ok(false);
        }
        self.bytes_read += read as u64;
        let data = &self.chunk[..read];
        let data = match (std::mem::take(&mut self.after_cr), data) {
            (true, [b'\n', rest @ ..]) => rest,
            _ => data,
        };
        self.after_cr = split(data, self.ends, self.cap, &mut self.pending, &mut on_line);
        Ok(true)
    }

    /// Treat the stream as ended here: pass on the line in progress, if any (with `terminated: false`), and read
    /// nothing more. For a caller that gives up on a stream that is still open, so what was read is not lost.
    pub(crate) fn stop(&mut self, mut on_line: impl FnMut(Line<'_>)) {
        if self.at_end {
            return;
        }
        self.at_end = true;
        self.pending.strip_trailing_cr();
        if !self.pending.is_empty() {
            on_line(Line { bytes: &self.pending.kept, dropped: self.pending.dropped, terminated: false });
        }
        self.pending.clear();
    }
}

/// Split `data` at its line ends; the piece after the last one waits in `pending` for the next read. Returns whether
/// `data` ended with a `\r` that ended a line (so a `\n` starting the next read belongs to it).
fn split(
    data: &[u8],
    ends: LineEnds,
    cap: usize,
    pending: &mut PendingLine,
    on_line: &mut impl FnMut(Line<'_>),
) -> bool {
    let find_end = |bytes: &[u8]| match ends {
        LineEnds::Newline => bytes.iter().position(|&byte| byte == b'\n'),
        LineEnds::AnyBreak => bytes.iter().position(|&byte| byte == b'\n' || byte == b'\r'),
    };
    let mut rest = data;
    while let Some(end) = find_end(rest) {
        let piece = &rest[..end];
        let ended_by_cr = rest[end] == b'\r';
        rest = &rest[end + 1..];
        emit(piece, cap, pending, on_line);
        if ended_by_cr {
            // A lone `\r` or the first half of a CRLF: the line has ended either way, and the `\n` is no new line.
            match rest {
                [b'\n', tail @ ..] => rest = tail,
                [] => return true,
                _ => {}
            }
        }
    }
    pending.append(rest, cap);
    false
}

/// Hand over the line that `pending` began and `piece` finishes, without its line end or a `\r` before it.
///
/// With [`LineEnds::AnyBreak`] a line cannot end in `\r` (that would have ended it sooner), so only a `\r` before a
/// `\n` under [`LineEnds::Newline`] is ever removed here.
fn emit(piece: &[u8], cap: usize, pending: &mut PendingLine, on_line: &mut impl FnMut(Line<'_>)) {
    if pending.is_empty() {
        // The usual case, a whole line inside one read: hand it over without copying.
        let piece = piece.strip_suffix(b"\r").unwrap_or(piece);
        let kept = piece.len().min(cap);
        on_line(Line { bytes: &piece[..kept], dropped: piece.len() - kept, terminated: true });
    } else {
        pending.append(piece, cap);
        pending.strip_trailing_cr();
        on_line(Line { bytes: &pending.kept, dropped: pending.dropped, terminated: true });
        pending.clear();
    }
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

    fn whole(text: &str) -> Owned {
        owned(text, 0, true)
    }

    fn collect(lines: &mut Vec<Owned>) -> impl FnMut(Line<'_>) + '_ {
        |line: Line<'_>| {
            lines.push(Owned {
                text: String::from_utf8_lossy(line.bytes).into_owned(),
                dropped: line.dropped,
                terminated: line.terminated,
            })
        }
    }

    async fn all_lines(input: &[u8], ends: LineEnds, cap: usize, read_chunk: usize) -> Vec<Owned> {
        let mut reader = LineReader::with_limits(input, ends, cap, read_chunk);
        let mut lines = Vec::new();
        while reader.read_lines(collect(&mut lines)).await.unwrap() {}
        assert!(!reader.read_lines(collect(&mut lines)).await.unwrap(), "the end of the stream stays the end");
        assert_eq!(reader.bytes_read(), input.len() as u64);
        lines
    }

    /// Every read size from one byte up, so each boundary (a CRLF split across reads, say) falls between reads.
    const READ_SIZES: [usize; 8] = [1, 2, 3, 4, 5, 7, 9, 64];

    #[tokio::test]
    async fn splits_lines_whatever_the_read_size() {
        let input = b"first\n\nthird line\nlast";
        let expected = vec![whole("first"), whole(""), whole("third line"), owned("last", 0, false)];
        for read_chunk in READ_SIZES {
            assert_eq!(all_lines(input, LineEnds::Newline, 100, read_chunk).await, expected, "read size {read_chunk}");
        }
    }

    #[tokio::test]
    async fn a_final_newline_leaves_no_empty_line_behind() {
        assert_eq!(all_lines(b"a\nb\n", LineEnds::Newline, 100, 64).await, vec![whole("a"), whole("b")]);
        assert_eq!(all_lines(b"", LineEnds::Newline, 100, 64).await, vec![]);
    }

    #[tokio::test]
    async fn a_carriage_return_before_a_newline_is_not_part_of_the_line() {
        // Only the `\r` right before the `\n` goes; one inside a line stays under `Newline`, and a last line cut off
        // by the end of the stream loses its trailing `\r` as well.
        let input = b"crlf\r\n\r\nin\rside\r\nlast\r";
        let expected = vec![whole("crlf"), whole(""), whole("in\rside"), owned("last", 0, false)];
        for read_chunk in READ_SIZES {
            assert_eq!(all_lines(input, LineEnds::Newline, 100, read_chunk).await, expected, "read size {read_chunk}");
        }
    }

    #[tokio::test]
    async fn a_lone_carriage_return_ends_a_line_under_any_break() {
        // A progress bar as tqdm draws it: each redraw starts with `\r`, and a `\n` comes only at the end.
        let input = b"\r 10%\r 50%\r100%\ndone\r\n\nwindows\r\nlast\r";
        let expected = vec![
            whole(""),
            whole(" 10%"),
            whole(" 50%"),
            whole("100%"),
            whole("done"),
            whole(""),
            whole("windows"),
            whole("last"),
        ];
        for read_chunk in READ_SIZES {
            let lines = all_lines(input, LineEnds::AnyBreak, 100, read_chunk).await;
            assert_eq!(lines, expected, "read size {read_chunk}");
        }
    }

    #[tokio::test]
    async fn an_oversized_line_is_truncated_and_the_next_line_is_intact() {
        let input = b"short\n0123456789abcdef\nafter\n0123456789";
        let expected = vec![whole("short"), owned("01234567", 8, true), whole("after"), owned("01234567", 2, false)];
        for ends in [LineEnds::Newline, LineEnds::AnyBreak] {
            for read_chunk in READ_SIZES {
                assert_eq!(all_lines(input, ends, 8, read_chunk).await, expected, "{ends:?}, read size {read_chunk}");
            }
        }
        let progress = b"0123456789\rabcdefghij\r\nk";
        let expected = vec![owned("01234567", 2, true), owned("abcdefgh", 2, true), owned("k", 0, false)];
        for read_chunk in READ_SIZES {
            assert_eq!(all_lines(progress, LineEnds::AnyBreak, 8, read_chunk).await, expected, "{read_chunk}");
        }
    }

    #[tokio::test]
    async fn a_line_exactly_at_the_cap_is_whole_even_with_a_crlf() {
        for read_chunk in READ_SIZES {
            for ends in [LineEnds::Newline, LineEnds::AnyBreak] {
                let lines = all_lines(b"12345678\n12345678\r\n", ends, 8, read_chunk).await;
                assert_eq!(lines, vec![whole("12345678"), whole("12345678")], "{ends:?}, read size {read_chunk}");
            }
            // Past the cap the `\r` is among the discarded bytes; it is no more counted as part of the line there.
            let lines = all_lines(b"123456789\r\n", LineEnds::Newline, 8, read_chunk).await;
            assert_eq!(lines, vec![owned("12345678", 1, true)], "read size {read_chunk}");
        }
    }

    #[tokio::test]
    async fn stopping_passes_on_the_line_in_progress_and_ends_the_stream() {
        let input = b"whole\npart";
        let mut reader = LineReader::with_limits(&input[..], LineEnds::Newline, 100, 64);
        let mut lines = Vec::new();
        assert!(reader.read_lines(collect(&mut lines)).await.unwrap());
        reader.stop(collect(&mut lines));
        reader.stop(collect(&mut lines));
        assert!(!reader.read_lines(collect(&mut lines)).await.unwrap(), "nothing is read after a stop");
        assert_eq!(lines, vec![whole("whole"), owned("part", 0, false)]);
    }

    #[tokio::test]
    async fn memory_stays_bounded_by_the_cap_for_a_huge_line() {
        let huge = vec![b'x'; 5 * MAX_LINE_BYTES];
        let mut input = huge.clone();
        input.extend_from_slice(b"\nnext\n");
        let mut reader = LineReader::new(&input[..], LineEnds::AnyBreak);
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
