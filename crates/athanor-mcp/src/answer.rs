//! How a tool answers: a JSON object on success, the service's [`ErrorBody`] as a tool error on failure.
//!
//! MCP has two ways to fail a call. A *protocol* error (JSON-RPC `error`) is for a request the server cannot
//! route; clients tend to show it as an opaque failure and the model never reads it. A *tool* error (a result with
//! `isError: true`) is put in front of the model like any answer. Every mistake an agent can make here (an unknown
//! id, a configuration out of range, a misspelt argument) is something it can fix, so all of them are tool errors
//! whose text is the JSON of an [`ErrorBody`]: `{"code": "invalid_input", "message": "…", "fields": [{"path":
//! "configuration.epochs", "message": "must be at most 10000"}]}`.
//!
//! Field paths name the tool's own arguments: the service says `config.epochs` and `experiment` (the names in
//! its JSON API), the tools take `configuration` and `experiment_module`, so the paths are renamed at this edge.

use athanor_core::api::{ErrorBody, ErrorCode};
use athanor_core::{FieldError, InstanceId, RunId};
use athanor_service::ServiceError;
use rmcp::model::{CallToolResponse, CallToolResult};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Display;
use std::str::FromStr;

/// The result of a tool: `value` as structured content (plus the same JSON as a text block, for clients that
/// read only text), or the error as a tool error.
pub fn answer<T: Serialize>(result: Result<T, ServiceError>) -> CallToolResult {
    match result.and_then(|value| {
        serde_json::to_value(value).map_err(|error| ServiceError::Internal(format!("answer not serializable: {error}")))
    }) {
        Ok(value) => CallToolResult::structured(value),
        Err(error) => refusal(&error.body()),
    }
}

/// A tool error carrying `body` both as structured content and as its JSON text.
pub fn refusal(body: &ErrorBody) -> CallToolResult {
    CallToolResult::structured_error(serde_json::to_value(body).unwrap_or(Value::Null))
}

/// Give a plain-text tool error the shape of every other error.
///
/// rmcp answers arguments that do not deserialize into a tool's argument struct (a missing `name`, a string where
/// a number belongs, an unknown argument) with a tool error whose text is serde's message. An agent should not
/// have to parse two error formats, so that text becomes an `invalid_input` [`ErrorBody`], with the argument named
/// in `fields` when serde's message names one.
pub fn with_error_body(response: CallToolResponse) -> CallToolResponse {
    match response {
        CallToolResponse::Complete(result) if result.is_error == Some(true) && result.structured_content.is_none() => {
            let text: Vec<&str> = result.content.iter().filter_map(|c| c.as_text()).map(|t| t.text.as_str()).collect();
            refusal(&argument_error(&text.join("\n"))).into()
        }
        other => other,
    }
}

/// serde's "missing field `name`" or "unknown field `nmae`, expected one of …" as an error body naming `name`.
fn argument_error(message: &str) -> ErrorBody {
    let message = message.strip_prefix("failed to deserialize parameters: ").unwrap_or(message).trim().to_owned();
    let field = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|start| message.split_once(start))
        .and_then(|(_, rest)| rest.split_once('`'))
        .map(|(name, _)| name.to_owned());
    let fields = field.map(|path| vec![FieldError { path, message: message.clone() }]).unwrap_or_default();
    ErrorBody { code: ErrorCode::InvalidInput, message: format!("invalid arguments: {message}"), fields }
}

/// A run id given as the argument `argument`; a malformed one is refused naming that argument.
pub fn run_id(text: &str, argument: &str) -> Result<RunId, ServiceError> {
    RunId::parse(text).map_err(|error| ServiceError::invalid_field(argument, error.to_string()))
}

/// An instance id given as the argument `argument`; a malformed one is refused naming that argument.
pub fn instance_id(text: &str, argument: &str) -> Result<InstanceId, ServiceError> {
    InstanceId::parse(text).map_err(|error| ServiceError::invalid_field(argument, error.to_string()))
}

/// A value named by text, such as a run status or a log level, given as the argument `argument`; text that names
/// none is refused naming that argument, with the parser's message (which lists the accepted values).
pub fn parsed<T: FromStr>(text: &str, argument: &str) -> Result<T, ServiceError>
where
    T::Err: Display,
{
    text.trim().parse().map_err(|error: T::Err| ServiceError::invalid_field(argument, error.to_string()))
}

/// The service's field paths renamed to the tools' argument names: `config…` → `configuration…`, `experiment` →
/// `experiment_module`. The summary message is rebuilt from the renamed paths.
pub fn in_argument_names(error: ServiceError) -> ServiceError {
    match error {
        ServiceError::Invalid { fields, .. } if !fields.is_empty() => ServiceError::invalid_fields(
            fields
                .into_iter()
                .map(|field| {
                    let path = match field.path.as_str() {
                        "experiment" => "experiment_module".to_owned(),
                        path => match path.strip_prefix("config") {
                            Some(rest) if rest.is_empty() || rest.starts_with(['.', '[']) => {
                                format!("configuration{rest}")
                            }
                            _ => field.path,
                        },
                    };
                    FieldError { path, message: field.message }
                })
                .collect(),
        ),
        other => other,
    }
}

/// A path inside a configuration (`epochs`, `pairs[1].runs`, or empty for the whole value) as a path inside the
/// argument `configuration`.
pub fn configuration_path(path: &str) -> String {
    if path.is_empty() {
        "configuration".to_owned()
    } else if path.starts_with('[') {
        format!("configuration{path}")
    } else {
        format!("configuration.{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_paths_are_renamed_to_argument_names() {
        let error = ServiceError::invalid_fields(vec![
            FieldError { path: "config.epochs".into(), message: "must be at most 10000".into() },
            FieldError { path: "config".into(), message: "must be an object".into() },
            FieldError { path: "experiment".into(), message: "no experiment named \"x\"".into() },
            FieldError { path: "configuration_note".into(), message: "kept".into() },
            FieldError { path: "name".into(), message: "must not be empty".into() },
        ]);
        let body = in_argument_names(error).body();
        let paths: Vec<&str> = body.fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["configuration.epochs", "configuration", "experiment_module", "configuration_note", "name"]);
        assert_eq!(body.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn a_single_refused_field_is_named_in_the_message_too() {
        let error = ServiceError::invalid_fields(vec![FieldError {
            path: "config.epochs".into(),
            message: "must be at most 10000".into(),
        }]);
        assert_eq!(in_argument_names(error).body().message, "configuration.epochs: must be at most 10000");
    }

    #[test]
    fn serde_messages_name_the_argument_when_they_can() {
        let missing = argument_error("failed to deserialize parameters: missing field `name`");
        assert_eq!(missing.fields[0].path, "name");
        assert_eq!(missing.message, "invalid arguments: missing field `name`");
        let unknown = argument_error("unknown field `instanceId`, expected one of `instance_id`, `status`");
        assert_eq!(unknown.fields[0].path, "instanceId");
        let typed = argument_error("invalid type: string \"ten\", expected u32");
        assert!(typed.fields.is_empty());
        assert_eq!(typed.code, ErrorCode::InvalidInput);
    }

    #[test]
    fn a_malformed_id_is_refused_by_the_argument_that_carried_it() {
        let body = run_id("nope", "run_ids[1]").unwrap_err().body();
        assert_eq!(body.fields[0].path, "run_ids[1]");
        assert!(body.fields[0].message.contains("is not a valid run id"), "{body:?}");
    }

    #[test]
    fn a_word_that_names_no_status_is_refused_listing_the_ones_that_do() {
        let body = parsed::<athanor_core::RunStatus>("done", "status").unwrap_err().body();
        assert_eq!(body.fields[0].path, "status");
        assert!(body.fields[0].message.contains("expected pending, running"), "{body:?}");
        assert_eq!(parsed::<athanor_core::LogLevel>(" warn ", "level").unwrap(), athanor_core::LogLevel::Warn);
    }

    #[test]
    fn configuration_paths_keep_their_shape() {
        assert_eq!(configuration_path(""), "configuration");
        assert_eq!(configuration_path("epochs"), "configuration.epochs");
        assert_eq!(configuration_path("pairs[1].runs"), "configuration.pairs[1].runs");
    }

    #[test]
    fn an_error_answer_is_flagged_and_carries_the_body_as_json_text() {
        let result = answer::<()>(Err(ServiceError::NotFound("no run with id x".into())));
        assert_eq!(result.is_error, Some(true));
        let text = &result.content[0].as_text().unwrap().text;
        let body: ErrorBody = serde_json::from_str(text).unwrap();
        assert_eq!(body.code, ErrorCode::NotFound);
        assert_eq!(result.structured_content, Some(serde_json::to_value(&body).unwrap()));
    }
}
