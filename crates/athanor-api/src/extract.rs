//! Extractors whose every refusal is an `invalid_input` [`ErrorBody`](athanor_core::api::ErrorBody) naming the
//! field, where axum's own `Json`, `Query` and `Path` would answer in plain text.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use std::fmt::Display;
use std::str::FromStr;

/// A JSON request body. Refusals name the field (`name`, `config`, `body` for the body as a whole).
///
/// The body must be sent as `Content-Type: application/json`: a browser cannot send that type to another site
/// without asking first (a CORS preflight), so a foreign page cannot post forms at the API behind a user's back.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        require_json(request.headers())?;
        let bytes = read_body(request, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// `Option<JsonBody<T>>`: an empty body is `None` (with or without a content type), anything else must be JSON.
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let headers = request.headers().clone();
        let bytes = read_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        require_json(&headers)?;
        parse_json(&bytes).map(|value| Some(JsonBody(value)))
    }
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers.get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "body",
            format!(
                "send the body as JSON with the header Content-Type: application/json (got {})",
                if content_type.is_empty() { "no content type".to_owned() } else { format!("{content_type:?}") }
            ),
        ))
    }
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    // Axum's default body limit (2 MB) applies here; its rejection says so.
    Bytes::from_request(request, state).await.map_err(|rejection| ApiError::invalid("body", rejection.body_text()))
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let not_json = |error: serde_json::Error| ApiError::invalid("body", format!("the body is not valid JSON: {error}"));
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let error = error.into_inner();
        if error.is_syntax() || error.is_eof() {
            not_json(error)
        } else {
            refused_field(&path, error.to_string(), "body")
        }
    })?;
    // Trailing text after the value (`{…}{…}`) is as malformed as a missing brace.
    deserializer.end().map_err(not_json)?;
    Ok(value)
}

/// A query string, parsed into `T`; a refused parameter is named (`limit`, `status`).
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Params)
            .map_err(|error| refused_field(&error.path().to_string(), error.into_inner().to_string(), "query"))
    }
}

/// The field a deserialization error concerns: its path, or for an error about the whole object (a missing or
/// unknown key, which serde reports at the object's level) the key it names. `whole` names the input itself.
fn refused_field(path: &str, message: String, whole: &str) -> ApiError {
    // serde's own wording for these two errors is stable: "missing field `name`", "unknown field `nmae`, …".
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, _)| key);
    let field = match (path, named) {
        (".", Some(key)) => key.to_owned(),
        (".", None) => whole.to_owned(),
        (path, Some(key)) if path != key && !path.ends_with(&format!(".{key}")) => format!("{path}.{key}"),
        (path, _) => path.to_owned(),
    };
    ApiError::invalid(&field, message)
}

/// A typed id from the URL path (`/runs/{id}`): a malformed one is refused naming `run_id` or `instance_id`.
pub(crate) struct PathId<T>(pub T);

impl<S: Send + Sync, T: FromStr<Err = athanor_core::IdError>> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let PathText(text): PathText = PathText::from_request_parts(parts, state).await?;
        Ok(PathId(text.parse()?))
    }
}

/// The text parameters of a URL path, percent-decoded: a `String` for one (`/experiments/{name}`), a tuple for
/// several.
pub(crate) struct PathText<T = String>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathText<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(text) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::invalid("path", rejection.body_text()))?;
        Ok(PathText(text))
    }
}

/// For optional query parameters: absent or blank (`?status=`, as a form with an empty field sends) is `None`,
/// anything else must parse as `T`.
pub(crate) fn blank_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    match Option::<String>::deserialize(deserializer)?.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(D::Error::custom),
    }
}

/// [`blank_as_none`] for whole numbers, whose own parse errors ("invalid digit found in string") do not say
/// what was expected.
pub(crate) fn number_or_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
{
    match Option::<String>::deserialize(deserializer)?.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected a whole number in range, got {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use athanor_service::ServiceError;

    fn field_of(error: ApiError) -> String {
        match error.0 {
            ServiceError::Invalid { fields, .. } => fields[0].path.clone(),
            other => panic!("not invalid input: {other:?}"),
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // Only deserialized, to see which field an error names.
    struct Outer {
        name: String,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn a_refused_json_field_is_named_by_its_path_even_when_missing_or_unknown() {
        let cases = [
            (r#"{"name": 5}"#, "name"),
            (r#"{}"#, "name"),
            (r#"{"name": "x", "nmae": 1}"#, "nmae"),
            (r#"{"name": "x", "inner": {"count": -1}}"#, "inner.count"),
            (r#"{"name": "x", "inner": {}}"#, "inner.count"),
            (r#"{"name": "x", "inner": {"count": 1, "cuont": 2}}"#, "inner.cuont"),
            (r#"{"name": "#, "body"),
            (r#""just text""#, "body"),
            (r#"{"name": "x"} trailing"#, "body"),
        ];
        for (text, field) in cases {
            let refused = parse_json::<Outer>(text.as_bytes()).unwrap_err();
            assert_eq!(field_of(refused), field, "{text}");
        }
    }

    #[test]
    fn blank_query_values_count_as_left_out_and_bad_numbers_name_their_parameter() {
        #[derive(Debug, Deserialize)]
        struct Query {
            #[serde(default, deserialize_with = "number_or_none")]
            limit: Option<u32>,
        }
        let parse = |text: &str| {
            serde_path_to_error::deserialize::<_, Query>(serde_urlencoded::Deserializer::new(form_urlencoded::parse(
                text.as_bytes(),
            )))
        };
        assert_eq!(parse("limit=").unwrap().limit, None);
        assert_eq!(parse("limit=%2012%20").unwrap().limit, Some(12));
        let refused = parse("limit=-3").unwrap_err();
        assert_eq!(refused.path().to_string(), "limit");
        assert!(refused.inner().to_string().contains("\"-3\""), "{refused}");
    }
}
