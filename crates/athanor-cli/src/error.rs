//! Everything that can go wrong in a command, and how it is told to the user.
//!
//! The rule: one `error: …` line saying what happened, then the detail (the server's field errors, one per line,
//! keyed by path), then a `hint: …` when there is an obvious next step (start the server, set a token). Every
//! error exits with status 1; the run outcomes of `--follow` and `--wait` have their own codes ([`crate::exit`]).

use crate::style::Palette;
use anstyle::{AnsiColor, Effects};
use athanor_core::api::{ErrorBody, ErrorCode};
use std::fmt;

/// A failed command.
#[derive(Debug)]
pub enum CliError {
    /// The server answered with an error body (`{"code", "message", "fields"}`).
    Api {
        /// The HTTP status it came with.
        status: u16,
        /// What the server said.
        body: ErrorBody,
    },
    /// The server answered with an error status but no error body (a proxy, an old server, a wrong URL).
    Status {
        /// The HTTP status.
        status: u16,
        /// The URL asked.
        url: String,
        /// The start of the body, when it had text.
        text: String,
    },
    /// Nothing answered at the URL.
    Connect {
        /// The server's base URL, as given by `--url` or `ATHANOR_URL`.
        base: String,
        /// What the network layer said.
        detail: String,
    },
    /// The request failed on the way (reset connection, timeout, unreadable body).
    Transport(String),
    /// The answer did not have the expected shape: a server of another version, or not an Athanor server.
    Decode {
        /// The URL asked.
        url: String,
        /// What did not fit.
        detail: String,
    },
    /// A mistake found before asking anything (a file that does not exist, a bad `--set`).
    Local(String),
    /// Standard output was closed by its reader (`athanor runs logs … | head`): stop quietly.
    BrokenPipe,
}

impl CliError {
    /// A local mistake, in words.
    pub fn local(message: impl Into<String>) -> CliError {
        CliError::Local(message.into())
    }

    /// Turn a write error on standard output into an error (a closed pipe is not worth a message).
    pub fn output(error: std::io::Error) -> CliError {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Local(format!("writing output: {error}"))
        }
    }

    /// The error as the lines printed to standard error: `error: …`, field errors, and a hint.
    pub fn render(&self, palette: Palette) -> String {
        let label = palette.paint(AnsiColor::Red.on_default().effects(Effects::BOLD), "error:");
        let hint_label = palette.paint(AnsiColor::Cyan.on_default(), "hint:");
        let mut out = format!("{label} {self}");
        if let CliError::Api { body, .. } = self {
            // A single refusal often is the message itself ("config.message: is required"): say it once, as
            // `ErrorBody`'s own `Display` does.
            for field in body.fields.iter().filter(|field| !body.message.contains(&field.message)) {
                // An empty path is the configuration as a whole.
                let path = if field.path.is_empty() { "(config)" } else { &field.path };
                out.push_str(&format!("\n  {}: {}", palette.bold(path), field.message));
            }
        }
        if let Some(hint) = self.hint() {
            out.push_str(&format!("\n{hint_label} {hint}"));
        }
        out
    }

    /// What to do next, when there is something obvious.
    fn hint(&self) -> Option<String> {
        let status = match self {
            CliError::Connect { .. } => {
                return Some(
                    "start a server with `athanor serve`, or point ATHANOR_URL (or --url) at a running one".to_owned(),
                )
            }
            CliError::Api { status, .. } | CliError::Status { status, .. } => *status,
            _ => return None,
        };
        let code = match self {
            CliError::Api { body, .. } => Some(body.code),
            _ => None,
        };
        match (status, code) {
            (401, _) | (_, Some(ErrorCode::Unauthorized)) => Some(
                "this server wants its access token: set ATHANOR_TOKEN (or pass --token); the server keeps it in \
                 athanor.token beside it, or in its own ATHANOR_TOKEN"
                    .to_owned(),
            ),
            (403, _) | (_, Some(ErrorCode::Forbidden)) => Some(
                "the server refused this client; check the token, and that the URL's host is one it answers to \
                 (ATHANOR_ALLOWED_HOSTS on the server)"
                    .to_owned(),
            ),
            (404, None) => Some("is ATHANOR_URL (or --url) the address of an Athanor server?".to_owned()),
            _ => None,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Api { body, .. } => f.write_str(&body.message),
            CliError::Status { status, url, text } if text.is_empty() => write!(f, "{url} answered HTTP {status}"),
            CliError::Status { status, url, text } => write!(f, "{url} answered HTTP {status}: {text}"),
            CliError::Connect { base, detail } => write!(f, "could not reach the Athanor server at {base} ({detail})"),
            CliError::Transport(detail) => f.write_str(detail),
            CliError::Decode { url, detail } => {
                write!(f, "unexpected answer from {url}: {detail} (is the server the same version as this client?)")
            }
            CliError::Local(message) => f.write_str(message),
            CliError::BrokenPipe => f.write_str("output closed"),
        }
    }
}

impl std::error::Error for CliError {}

#[cfg(test)]
mod tests {
    use super::*;
    use athanor_core::FieldError;

    fn field(path: &str, message: &str) -> FieldError {
        serde_json::from_value(serde_json::json!({"path": path, "message": message})).unwrap()
    }

    #[test]
    fn field_errors_follow_the_message_one_per_line() {
        let body = ErrorBody {
            code: ErrorCode::InvalidInput,
            message: "the configuration has 2 errors".into(),
            fields: vec![field("config.epochs", "must be at least 1"), field("config.pairs[1].runs", "is required")],
        };
        let error = CliError::Api { status: 400, body };
        assert_eq!(
            error.render(Palette::plain()),
            "error: the configuration has 2 errors\n  config.epochs: must be at least 1\n  config.pairs[1].runs: is required"
        );
    }

    #[test]
    fn a_field_error_already_in_the_message_is_not_repeated() {
        let body = ErrorBody {
            code: ErrorCode::InvalidInput,
            message: "config.message: is required".into(),
            fields: vec![field("config.message", "is required")],
        };
        assert_eq!(CliError::Api { status: 400, body }.render(Palette::plain()), "error: config.message: is required");
    }

    #[test]
    fn connection_refused_names_the_url_and_suggests_serve() {
        let error = CliError::Connect { base: "http://127.0.0.1:3000".into(), detail: "connection refused".into() };
        let text = error.render(Palette::plain());
        assert!(text.starts_with("error: could not reach the Athanor server at http://127.0.0.1:3000"), "{text}");
        assert!(text.contains("athanor serve") && text.contains("ATHANOR_URL"), "{text}");
    }

    #[test]
    fn unauthorized_says_to_set_the_token_with_or_without_a_body() {
        let body = ErrorBody { code: ErrorCode::Unauthorized, message: "a token is required".into(), fields: vec![] };
        let with_body = CliError::Api { status: 401, body }.render(Palette::plain());
        assert!(
            with_body
                .starts_with("error: a token is required\nhint: this server wants its access token: set ATHANOR_TOKEN"),
            "{with_body}"
        );
        let bare = CliError::Status { status: 401, url: "http://x/api/v1/runs".into(), text: String::new() };
        assert!(bare.render(Palette::plain()).contains("set ATHANOR_TOKEN"));
    }
}
