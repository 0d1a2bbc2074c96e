//! The largest values a run may record, checked where values enter: [`RunContext`](crate::RunContext)'s methods
//! and the command protocol (`command/protocol.rs`).
//!
//! | what | limit |
//! | --- | --- |
//! | a log message | [`MAX_MESSAGE_BYTES`] (1 MiB) of UTF-8 |
//! | a log's metadata | [`MAX_METADATA_BYTES`] (1 MiB) serialized as JSON, nested at most [`MAX_DEPTH`] levels |
//! | a result key | [`MAX_KEY_BYTES`] (1 KiB) of UTF-8 |
//! | a result value | [`MAX_VALUE_BYTES`] (16 MiB) serialized as JSON, nested at most [`MAX_DEPTH`] levels |
//! | a progress message | [`MAX_PROGRESS_MESSAGE_BYTES`] (4 KiB); longer ones are cut, since progress is never stored |
//!
//! Why these numbers: a log message matches the 1 MiB cap on a line of command output, so a line is a line
//! whichever way it arrives. Metadata is a table of fields shown beside its line, where a megabyte is already far
//! more than a reader can use. A result may be a whole confusion matrix or a model's weights (the `big_result` demo
//! records about 8 MiB), so it gets 16 MiB, while staying small enough to read back, compare and send to a browser.
//! A key is a name. The depth limit is half of what serde_json reads back (it refuses to parse JSON nested deeper
//! than 128 levels), so a value that was stored can always be read again, by Athanor and by other JSON readers.

use serde_json::Value;
use std::fmt;
use std::io;

/// The most bytes of UTF-8 in a log message.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// The most bytes a log's metadata takes serialized as (compact) JSON.
pub const MAX_METADATA_BYTES: usize = 1 << 20;
/// The most bytes of UTF-8 in a result key (a series' `name/step` included).
pub const MAX_KEY_BYTES: usize = 1 << 10;
/// The most bytes a result value takes serialized as (compact) JSON.
pub const MAX_VALUE_BYTES: usize = 16 << 20;
/// The deepest nesting of arrays and objects in metadata and result values: `1` is depth 0, `[1]` depth 1,
/// `{"a": [1]}` depth 2.
pub const MAX_DEPTH: usize = 64;
/// The most bytes of UTF-8 in a progress message; a longer one is cut at a character boundary and ends with `…`.
pub const MAX_PROGRESS_MESSAGE_BYTES: usize = 4 << 10;

/// How much of a refused text an error quotes: enough to recognise it, short enough to read.
const PREVIEW_BYTES: usize = 200;

/// What is wrong with a value that breaks a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excess {
    /// It takes `found` bytes, more than `limit`.
    Bytes {
        /// Its size in bytes (as JSON, for metadata and result values).
        found: usize,
        /// The limit it broke.
        limit: usize,
    },
    /// It is nested `found` levels deep, more than `limit`.
    Depth {
        /// How deep it is.
        found: usize,
        /// The limit it broke.
        limit: usize,
    },
}

impl fmt::Display for Excess {
    /// "is 2000000 bytes, over the limit of 1048576 bytes (1 MiB)", "is nested 70 levels deep, over the limit of
    /// 64 levels": the subject ("its value") is the caller's.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Excess::Bytes { found, limit } => {
                write!(f, "is {found} bytes, over the limit of {limit} bytes ({})", human(limit))
            }
            Excess::Depth { found, limit } => {
                write!(f, "is nested {found} levels deep, over the limit of {limit} levels")
            }
        }
    }
}

/// "1 MiB", "16 MiB", "1 KiB", or the plain number of bytes.
fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// A text of at most `limit` bytes, or by how much it is over.
pub fn check_text(text: &str, limit: usize) -> Result<(), Excess> {
    if text.len() > limit {
        return Err(Excess::Bytes { found: text.len(), limit });
    }
    Ok(())
}

/// A JSON value nested at most [`MAX_DEPTH`] levels and at most `limit` bytes as JSON, or what is wrong with it.
/// On success, tells whether a string or key in it holds a NUL character (which storage replaces).
///
/// The walk uses a heap stack, not recursion, so any depth is measured without exhausting the thread's stack; the
/// exact size is only computed (by serializing into a counter) when a cheap upper bound exceeds the limit.
pub fn check_value(value: &Value, limit: usize) -> Result<bool, Excess> {
    let shape = Shape::of(value);
    if shape.depth > MAX_DEPTH {
        return Err(Excess::Depth { found: shape.depth, limit: MAX_DEPTH });
    }
    if shape.size_bound > limit {
        let found = json_len(value);
        if found > limit {
            return Err(Excess::Bytes { found, limit });
        }
    }
    Ok(shape.has_nul)
}

/// What one walk over a value finds out.
struct Shape {
    depth: usize,
    /// At least the length of the value's compact JSON.
    size_bound: usize,
    has_nul: bool,
}

impl Shape {
    fn of(value: &Value) -> Shape {
        let mut shape = Shape { depth: 0, size_bound: 0, has_nul: false };
        let mut stack = vec![(value, 0usize)];
        while let Some((value, depth)) = stack.pop() {
            // An array or object is a level of its own, empty or not; what it holds sits one level down.
            let level = if value.is_array() || value.is_object() { depth + 1 } else { depth };
            shape.depth = shape.depth.max(level);
            shape.size_bound = shape.size_bound.saturating_add(match value {
                Value::Null => 4,
                Value::Bool(_) => 5,
                // An i64 or u64 takes at most 20 characters, an f64 at most 24 (ryu's shortest form, such as
                // `-1.2345678901234567e-308`). The workspace does not enable serde_json's arbitrary precision.
                Value::Number(_) => 24,
                Value::String(text) => shape.string(text),
                Value::Array(items) => {
                    stack.extend(items.iter().map(|item| (item, depth + 1)));
                    // Brackets and commas.
                    2 + items.len()
                }
                Value::Object(map) => {
                    stack.extend(map.values().map(|item| (item, depth + 1)));
                    // Braces, commas and colons, plus every key as a JSON string.
                    2 + 2 * map.len() + map.keys().map(|key| shape.string(key)).sum::<usize>()
                }
            });
        }
        shape
    }

    /// An upper bound of `text`'s length as a JSON string (quotes and escapes included); notes a NUL.
    fn string(&mut self, text: &str) -> usize {
        let mut escapes = 0usize;
        for &byte in text.as_bytes() {
            if byte < 0x20 {
                // `\n` takes 2 bytes, `\u001f` 6: count the longer.
                escapes += 5;
                self.has_nul |= byte == 0;
            } else if byte == b'"' || byte == b'\\' {
                escapes += 1;
            }
        }
        text.len() + 2 + escapes
    }
}

/// The exact length of `value`'s compact JSON, without building it.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// `text` cut to at most [`MAX_PROGRESS_MESSAGE_BYTES`] at a character boundary, ending with `…` when cut.
pub(crate) fn cut_progress_message(text: &str) -> String {
    if text.len() <= MAX_PROGRESS_MESSAGE_BYTES {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut end = MAX_PROGRESS_MESSAGE_BYTES - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

/// The first 200 bytes of a text, with an ellipsis when there is more (never splitting a character).
pub(crate) fn preview(bytes: &[u8]) -> String {
    if bytes.len() <= PREVIEW_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    // Back up to the start of a UTF-8 character so the cut does not leave half of one (continuation bytes are
    // 0b10xx_xxxx; a character has at most three of them).
    let mut end = PREVIEW_BYTES;
    while end > PREVIEW_BYTES - 3 && bytes[end] & 0b1100_0000 == 0b1000_0000 {
        end -= 1;
    }
    format!("{}…", String::from_utf8_lossy(&bytes[..end]))
}

/// A JSON array nested `depth` levels deep around `leaf` (tests, here and in other crates' test suites).
#[doc(hidden)]
pub fn nested(depth: usize, leaf: Value) -> Value {
    (0..depth).fold(leaf, |inner, _| Value::Array(vec![inner]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn depth_counts_arrays_and_objects() {
        assert_eq!(Shape::of(&json!(1)).depth, 0);
        assert_eq!(Shape::of(&json!([1])).depth, 1);
        assert_eq!(Shape::of(&json!([])).depth, 1);
        assert_eq!(Shape::of(&json!({"a": [1], "b": 2})).depth, 2);
        assert_eq!(Shape::of(&json!({"a": [[]], "b": 2})).depth, 3);
        assert_eq!(Shape::of(&nested(MAX_DEPTH, json!({}))).depth, MAX_DEPTH + 1);
        assert_eq!(check_value(&nested(MAX_DEPTH, json!(1)), MAX_VALUE_BYTES), Ok(false));
        assert_eq!(
            check_value(&nested(MAX_DEPTH + 1, json!(1)), MAX_VALUE_BYTES),
            Err(Excess::Depth { found: MAX_DEPTH + 1, limit: MAX_DEPTH })
        );
    }

    #[test]
    fn a_very_deep_value_is_measured_without_recursion() {
        // Far deeper than a recursive walk could go on a test thread's stack; dropped without recursion too.
        let mut value = nested(200_000, json!(1));
        assert_eq!(Shape::of(&value).depth, 200_000);
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn the_size_bound_is_never_below_the_real_size_and_exact_sizes_decide() {
        let samples = [
            json!(null),
            json!(true),
            json!(-9_223_372_036_854_775_808i64),
            json!(u64::MAX),
            json!(-1.234_567_890_123_456_7e-308),
            json!("quote \" backslash \\ newline \n nul \0 bell \u{7} é"),
            json!({"k\"ey": [1, 2.5, {"n": null}], "": ""}),
            json!([[], {}, [[]]]),
        ];
        for sample in samples {
            let exact = serde_json::to_vec(&sample).unwrap().len();
            assert!(Shape::of(&sample).size_bound >= exact, "{sample}");
            assert_eq!(json_len(&sample), exact, "{sample}");
            assert_eq!(check_value(&sample, exact).map(|_| ()), Ok(()), "{sample}");
            assert_eq!(check_value(&sample, exact - 1), Err(Excess::Bytes { found: exact, limit: exact - 1 }));
        }
        assert_eq!(check_value(&json!({"a\0": 1}), 100), Ok(true));
        assert_eq!(check_value(&json!(["\0"]), 100), Ok(true));
        assert_eq!(check_value(&json!(["clean"]), 100), Ok(false));
    }

    #[test]
    fn excess_reads_as_a_sentence_with_the_limit_and_the_size_found() {
        let bytes = Excess::Bytes { found: 2_000_000, limit: MAX_MESSAGE_BYTES };
        assert_eq!(bytes.to_string(), "is 2000000 bytes, over the limit of 1048576 bytes (1 MiB)");
        assert_eq!(
            Excess::Bytes { found: 2_000, limit: MAX_KEY_BYTES }.to_string(),
            "is 2000 bytes, over the limit of 1024 bytes (1 KiB)"
        );
        let depth = Excess::Depth { found: 70, limit: MAX_DEPTH };
        assert_eq!(depth.to_string(), "is nested 70 levels deep, over the limit of 64 levels");
        assert_eq!(check_text("abc", 3), Ok(()));
        assert_eq!(check_text("abcd", 3), Err(Excess::Bytes { found: 4, limit: 3 }));
    }

    #[test]
    fn long_progress_messages_are_cut_at_a_character_boundary() {
        assert_eq!(cut_progress_message("short"), "short");
        let long = "é".repeat(MAX_PROGRESS_MESSAGE_BYTES);
        let cut = cut_progress_message(&long);
        assert!(cut.len() <= MAX_PROGRESS_MESSAGE_BYTES && cut.ends_with('…'), "{}", cut.len());
        assert!(cut.trim_end_matches('…').chars().all(|c| c == 'é'));
        let exact = "a".repeat(MAX_PROGRESS_MESSAGE_BYTES);
        assert_eq!(cut_progress_message(&exact), exact);
    }

    #[test]
    fn previews_are_short_and_never_split_a_character() {
        assert_eq!(preview(b"short"), "short");
        let long = "é".repeat(150); // 300 bytes, two per character
        assert_eq!(preview(long.as_bytes()), format!("{}…", "é".repeat(100)));
        let odd = format!("a{long}"); // the 200-byte mark falls inside a character
        assert_eq!(preview(odd.as_bytes()), format!("a{}…", "é".repeat(99)));
    }
}
