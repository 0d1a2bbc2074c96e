//! Helpers shared by the schema's unit tests.

use super::{Field, Schema, ValidationErrors};
use serde_json::Value;

/// The errors of a failed validation as sorted `(path, message)` pairs; panics if it succeeded.
pub(super) fn errs(result: Result<Value, ValidationErrors>) -> Vec<(String, String)> {
    let mut found: Vec<_> =
        result.expect_err("expected validation errors").errors.into_iter().map(|e| (e.path, e.message)).collect();
    found.sort();
    found
}

/// Expected `(path, message)` pairs, sorted like [`errs`] sorts, so order never makes a test flaky.
pub(super) fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<_> = expected.iter().map(|(p, m)| ((*p).to_owned(), (*m).to_owned())).collect();
    v.sort();
    v
}

/// A schema with a required bounded integer, a group and a bounded list of pairs: the shapes most tests need.
pub(super) fn nested_schema() -> Schema {
    Schema::new()
        .field(Field::integer("iterations").min(1).max(100).required())
        .field(Field::group(
            "api",
            vec![Field::integer("timeout").default(30).min(1), Field::string("region").options(["eu", "us"])],
        ))
        .field(
            Field::list(
                "model_pairs",
                vec![
                    Field::string("a").required(),
                    Field::string("b").required(),
                    Field::integer("runs").default(3).min(1),
                ],
            )
            .min_items(1)
            .max_items(3),
        )
}
