//! [`Schema::check`]: the schema's own consistency, which an experiment's unit test asserts so that a mistake
//! in a schema (a default outside its own range, `min > max`) fails CI instead of a user's form.

use std::collections::BTreeSet;

use serde_json::Value;

use super::validate::{check_scalar, fill_value, Mode};
use super::{join_path, Field, FieldError, FieldKind, Schema, ValidationErrors};

impl Schema {
    /// Checks the schema itself: duplicate or malformed names, `min > max`, non-positive steps, empty options,
    /// defaults that their own field would reject, and list defaults that their items would reject.
    ///
    /// Errors are keyed by path; fields inside a list's item are written `list[].field`. Call this in each
    /// experiment's tests.
    ///
    /// # Errors
    ///
    /// [`ValidationErrors`] listing every inconsistency.
    pub fn check(&self) -> Result<(), ValidationErrors> {
        let mut errors = Vec::new();
        check_fields(&self.fields, "", &mut errors);
        ValidationErrors { errors }.into_result(())
    }
}

/// Names that would make error paths ambiguous (`a.b` vs group `a` field `b`).
pub(super) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("field name must not be empty")
    } else if name.contains(['.', '[', ']']) {
        Some("field name must not contain '.', '[' or ']'")
    } else if name.trim() != name {
        Some("field name must not start or end with whitespace")
    } else {
        None
    }
}

fn check_fields(fields: &[Field], prefix: &str, errors: &mut Vec<FieldError>) {
    let mut seen = BTreeSet::new();
    for (index, field) in fields.iter().enumerate() {
        if let Some(problem) = name_problem(&field.name) {
            // The name itself is unusable as a path, so point at the position instead.
            errors.push(FieldError::new(prefix, format!("{problem} (field #{} is {:?})", index + 1, field.name)));
            continue;
        }
        let path = join_path(prefix, &field.name);
        if !seen.insert(field.name.as_str()) {
            errors.push(FieldError::new(&path, "duplicate field name"));
        }
        check_field(field, &path, errors);
    }
}

fn check_field(field: &Field, path: &str, errors: &mut Vec<FieldError>) {
    let push = |errors: &mut Vec<FieldError>, message: String| {
        errors.push(FieldError::new(path, message));
    };
    match &field.kind {
        FieldKind::Integer { min, max, step, .. } => {
            if let (Some(min), Some(max)) = (min, max) {
                if min > max {
                    push(errors, format!("min ({min}) is greater than max ({max})"));
                }
            }
            if let Some(step) = step.filter(|&s| s <= 0) {
                push(errors, format!("step must be positive, got {step}"));
            }
        }
        FieldKind::Float { min, max, step, .. } => {
            for (name, bound) in [("min", min), ("max", max), ("step", step)] {
                if bound.is_some_and(|b| !b.is_finite()) {
                    push(errors, format!("{name} must be a finite number"));
                }
            }
            if let (Some(min), Some(max)) = (min, max) {
                if min > max {
                    push(errors, format!("min ({min}) is greater than max ({max})"));
                }
            }
            if let Some(step) = step.filter(|&s| s <= 0.0) {
                push(errors, format!("step must be positive, got {step}"));
            }
        }
        FieldKind::String { options, min_length, max_length, .. } => {
            if let Some(options) = options {
                if options.is_empty() {
                    push(errors, "options must not be empty".to_owned());
                }
                let mut seen = BTreeSet::new();
                for option in options {
                    if !seen.insert(option) {
                        push(errors, format!("option {option:?} is listed twice"));
                    }
                }
            }
            if let (Some(min), Some(max)) = (min_length, max_length) {
                if min > max {
                    push(errors, format!("min_length ({min}) is greater than max_length ({max})"));
                }
            }
        }
        FieldKind::Boolean { .. } => {}
        FieldKind::Group { fields } => {
            if fields.is_empty() {
                push(errors, "a group must declare at least one field".to_owned());
            }
            check_fields(fields, path, errors);
        }
        FieldKind::List { item, default, min_items, max_items } => {
            if item.is_empty() {
                push(errors, "a list must declare at least one item field".to_owned());
            }
            if let (Some(min), Some(max)) = (min_items, max_items) {
                if min > max {
                    push(errors, format!("min_items ({min}) is greater than max_items ({max})"));
                }
            }
            check_fields(item, &format!("{path}[]"), errors);
            match default {
                None => {}
                Some(items @ Value::Array(_)) => {
                    // Run the default through validation proper; its errors carry real item paths.
                    let mut found = Vec::new();
                    fill_value(field, items, path, Mode::Validate, &mut found);
                    errors.extend(
                        found.into_iter().map(|e| FieldError {
                            message: format!("in the default list, {}", e.message),
                            path: e.path,
                        }),
                    );
                }
                Some(_) => push(errors, "default must be a list".to_owned()),
            }
        }
    }
    if let Some(default) = field.default_value() {
        if !matches!(field.kind, FieldKind::List { .. }) {
            if let Err(message) = check_scalar(&field.kind, &default) {
                errors.push(FieldError::new(path, format!("default {message}")));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testing::{nested_schema, pairs};
    use serde_json::json;

    #[test]
    fn check_accepts_a_sane_schema() {
        assert_eq!(nested_schema().check(), Ok(()));
        let with_default = Schema::new()
            .field(Field::list("l", vec![Field::string("a").required()]).default_items(json!([{"a": "x"}])));
        assert_eq!(with_default.check(), Ok(()));
    }

    #[test]
    fn check_catches_schema_mistakes() {
        let schema = Schema::new()
            .field(Field::integer("epochs").default(0).min(1))
            .field(Field::integer("epochs"))
            .field(Field::integer("batch").min(10).max(1).step(0))
            .field(Field::integer("stride").step(4).default(6))
            .field(Field::float("lr").default(2.0).max(1.0))
            .field(Field::float("bad").min(f64::NAN))
            .field(Field::string("model").options(["a", "b", "a"]).default("c"))
            .field(Field::string("none").options(Vec::<String>::new()))
            .field(Field::string("text").min_length(5).max_length(2))
            .field(Field::group("api", vec![Field::integer("t").max(5).default(6), Field::boolean("t")]))
            .field(Field::group("empty", vec![]))
            .field(
                Field::list("pairs", vec![Field::string("a").required(), Field::integer("runs").min(1)])
                    .min_items(2)
                    .max_items(1)
                    .default_items(json!([{"runs": 0}])),
            )
            .field(Field::boolean("a.b"));
        let errors = schema.check().unwrap_err();
        let mut found: Vec<_> = errors.errors.into_iter().map(|e| (e.path, e.message)).collect();
        found.sort();
        assert_eq!(
            found,
            pairs(&[
                ("epochs", "default must be at least 1"),
                ("epochs", "duplicate field name"),
                ("batch", "min (10) is greater than max (1)"),
                ("batch", "step must be positive, got 0"),
                ("stride", "default must be a multiple of 4"),
                ("lr", "default must be at most 1"),
                ("bad", "min must be a finite number"),
                ("model", "option \"a\" is listed twice"),
                ("model", "default must be one of: a, b, a"),
                ("none", "options must not be empty"),
                ("text", "min_length (5) is greater than max_length (2)"),
                ("api.t", "default must be at most 5"),
                ("api.t", "duplicate field name"),
                ("empty", "a group must declare at least one field"),
                ("pairs", "min_items (2) is greater than max_items (1)"),
                ("pairs", "in the default list, must have at least 2 items"),
                ("pairs[0].a", "in the default list, is required"),
                ("pairs[0].runs", "in the default list, must be at least 1"),
                ("", "field name must not contain '.', '[' or ']' (field #13 is \"a.b\")"),
            ])
        );
    }

    #[test]
    fn check_reports_item_field_paths_with_brackets() {
        let schema = Schema::new().field(Field::list("pairs", vec![Field::integer("runs").min(3).max(2)]));
        assert_eq!(
            schema.check().unwrap_err().errors,
            vec![FieldError::new("pairs[].runs", "min (3) is greater than max (2)")]
        );
    }
}
