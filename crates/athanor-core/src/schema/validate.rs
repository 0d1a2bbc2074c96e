//! Validation of a configuration against its schema, and the starting configuration of a form.
//!
//! Both are one walk, [`fill_object`], over the schema and the value: it checks what is there, fills in what is
//! missing, and collects every error with its path. Keeping one walk means `validate`, `defaults` and `check`
//! (which validates a list's default items with it) cannot disagree about what a value means.

use serde_json::{Map, Value};

use super::{join_path, Field, FieldError, FieldKind, Schema, ValidationErrors};

impl Schema {
    /// Validates a configuration, returning it with every missing optional field filled with its default
    /// (recursively, into groups and each list item), or every error found.
    ///
    /// Integers given as integral floats (`3.0`) come back as integers, and floats given as integers (`1`)
    /// come back as floats (`1.0`), so the stored snapshot's JSON types match the schema.
    ///
    /// # Errors
    ///
    /// [`ValidationErrors`] listing every problem; see the [module docs](crate::schema) for the rules.
    pub fn validate(&self, value: &Value) -> Result<Value, ValidationErrors> {
        let mut errors = ValidationErrors { errors: Vec::new() };
        if !value.is_object() {
            errors.errors.push(FieldError::new("", "configuration must be a JSON object"));
            return Err(errors);
        }
        let filled = fill_object(&self.fields, value, "", Mode::Validate, &mut errors.errors);
        errors.into_result(filled)
    }

    /// The configuration a "new instance" form starts from: every declared default, including those of
    /// required fields (a default there is a suggestion, which [`Schema::validate`] would not fill in).
    /// Scalars without a default are absent; groups recurse; lists take their default (with item defaults
    /// filled in) or `[]`.
    #[must_use]
    pub fn defaults(&self) -> Value {
        // Problems with the defaults themselves are `check`'s business; here they are irrelevant.
        let mut ignored = Vec::new();
        fill_object(&self.fields, &Value::Object(Map::new()), "", Mode::Defaults, &mut ignored)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// User input: required fields must be supplied.
    Validate,
    /// Building the starting configuration: required fields take their default like any other.
    Defaults,
}

/// Validates `value` as an object of `fields` and returns it with defaults filled in. A value that fails
/// validation is carried over unchanged, so a form can redisplay what the user typed next to the error.
fn fill_object(fields: &[Field], value: &Value, prefix: &str, mode: Mode, errors: &mut Vec<FieldError>) -> Value {
    let Some(object) = value.as_object() else {
        errors.push(FieldError::new(prefix, "must be an object"));
        return value.clone();
    };
    let mut out = Map::new();
    for field in fields {
        let path = join_path(prefix, &field.name);
        let filled = match object.get(&field.name) {
            None | Some(Value::Null) => fill_missing(field, &path, mode, errors),
            Some(given) => Some(fill_value(field, given, &path, mode, errors)),
        };
        if let Some(filled) = filled {
            out.insert(field.name.clone(), filled);
        }
    }
    for key in object.keys() {
        if !fields.iter().any(|f| &f.name == key) {
            errors.push(FieldError::new(join_path(prefix, key), "is not a field of this experiment"));
        }
    }
    Value::Object(out)
}

/// What an absent (or `null`) field becomes; `None` leaves it absent.
fn fill_missing(field: &Field, path: &str, mode: Mode, errors: &mut Vec<FieldError>) -> Option<Value> {
    if field.required && mode == Mode::Validate {
        errors.push(FieldError::new(path, "is required"));
        return None;
    }
    match &field.kind {
        FieldKind::Group { fields } => Some(fill_object(fields, &Value::Object(Map::new()), path, mode, errors)),
        FieldKind::List { default, .. } => {
            let items = default.clone().unwrap_or_else(|| Value::Array(Vec::new()));
            Some(fill_value(field, &items, path, mode, errors))
        }
        _ => field.default_value(),
    }
}

pub(super) fn fill_value(field: &Field, value: &Value, path: &str, mode: Mode, errors: &mut Vec<FieldError>) -> Value {
    match &field.kind {
        FieldKind::Group { fields } => fill_object(fields, value, path, mode, errors),
        FieldKind::List { item, min_items, max_items, .. } => {
            let Some(items) = value.as_array() else {
                errors.push(FieldError::new(path, "must be a list"));
                return value.clone();
            };
            if let Some(message) = item_count_error(items.len(), *min_items, *max_items) {
                errors.push(FieldError::new(path, message));
            }
            let filled = items
                .iter()
                .enumerate()
                .map(|(i, it)| fill_object(item, it, &format!("{path}[{i}]"), mode, errors))
                .collect();
            Value::Array(filled)
        }
        scalar => match check_scalar(scalar, value) {
            Ok(normalised) => normalised,
            Err(message) => {
                errors.push(FieldError::new(path, message));
                value.clone()
            }
        },
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn item_count_error(len: usize, min: Option<usize>, max: Option<usize>) -> Option<String> {
    match (min, max) {
        (Some(min), _) if len < min => Some(format!("must have at least {}", plural(min, "item"))),
        (_, Some(max)) if len > max => Some(format!("must have at most {}", plural(max, "item"))),
        _ => None,
    }
}

/// Validates a scalar value against its kind, returning it normalised to the kind's JSON type, or the first
/// problem as a message. Shared by `validate` and `check` (which runs it on defaults) so the two cannot drift.
pub(super) fn check_scalar(kind: &FieldKind, value: &Value) -> Result<Value, String> {
    match kind {
        FieldKind::Integer { min, max, step, .. } => {
            let n = match value {
                Value::Number(_) => json_integer(value).ok_or_else(|| {
                    if value.as_u64().is_some() {
                        "is too large".to_owned()
                    } else {
                        "must be a whole number".to_owned()
                    }
                })?,
                _ => return Err("must be a number".to_owned()),
            };
            check_integer_bounds(n, *min, *max, *step)?;
            Ok(Value::from(n))
        }
        FieldKind::Float { min, max, step, .. } => {
            let x = value.as_f64().ok_or("must be a number")?;
            check_float_bounds(x, *min, *max, *step)?;
            Ok(Value::from(x))
        }
        FieldKind::String { options, min_length, max_length, .. } => {
            let s = value.as_str().ok_or("must be a string")?;
            // PostgreSQL cannot store NUL inside JSON text: refused here, by field, before anything is written.
            if s.contains('\0') {
                return Err("must not contain NUL characters".to_owned());
            }
            if let Some(options) = options {
                if !options.iter().any(|o| o == s) {
                    return Err(format!("must be one of: {}", options.join(", ")));
                }
            }
            let len = s.chars().count();
            match (min_length, max_length) {
                (Some(min), _) if len < *min => Err(format!("must be at least {} long", plural(*min, "character"))),
                (_, Some(max)) if len > *max => Err(format!("must be at most {} long", plural(*max, "character"))),
                _ => Ok(value.clone()),
            }
        }
        FieldKind::Boolean { .. } => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => Err("must be true or false".to_owned()),
        },
        FieldKind::Group { .. } | FieldKind::List { .. } => {
            unreachable!("check_scalar is only called on scalar kinds")
        }
    }
}

/// A JSON number as an `i64`, accepting integral floats such as `3.0`: some clients (and JavaScript's
/// `JSON.stringify` of computed values) do not distinguish, and no information is lost.
pub(super) fn json_integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_f64().and_then(float_to_i64))
}

pub(super) fn float_to_i64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; every integral f64 in [-2^63, 2^63) fits an i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    #[allow(clippy::cast_possible_truncation)]
    (f.is_finite() && f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

fn check_integer_bounds(n: i64, min: Option<i64>, max: Option<i64>, step: Option<i64>) -> Result<(), String> {
    if let Some(min) = min.filter(|&m| n < m) {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = max.filter(|&m| n > m) {
        return Err(format!("must be at most {max}"));
    }
    // A non-positive step is a schema bug reported by `check`; validating against it would be meaningless.
    if let Some(step) = step.filter(|&s| s > 0) {
        let base = min.unwrap_or(0);
        // i128: `n - base` can overflow i64 when they have opposite signs.
        if (i128::from(n) - i128::from(base)) % i128::from(step) != 0 {
            return Err(if base == 0 {
                format!("must be a multiple of {step}")
            } else {
                let examples = (0..3)
                    .map(|k| (i128::from(base) + k * i128::from(step)).to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("must be {base} plus a multiple of {step} ({examples}, …)")
            });
        }
    }
    Ok(())
}

fn check_float_bounds(x: f64, min: Option<f64>, max: Option<f64>, step: Option<f64>) -> Result<(), String> {
    // serde_json cannot carry NaN or infinities, but a builder-set default can.
    if !x.is_finite() {
        return Err("must be a finite number".to_owned());
    }
    if let Some(min) = min.filter(|&m| x < m) {
        return Err(format!("must be at least {min}"));
    }
    if let Some(max) = max.filter(|&m| x > m) {
        return Err(format!("must be at most {max}"));
    }
    if let Some(step) = step.filter(|&s| s > 0.0 && s.is_finite()) {
        let base = min.filter(|m| m.is_finite()).unwrap_or(0.0);
        let k = ((x - base) / step).round();
        // Decimal steps such as 0.001 are not exact in binary, so `0.003` is off its grid by ~1e-19; allow
        // a tolerance relative to the value's magnitude.
        let tolerance = 1e-9 * x.abs().max(1.0);
        if (x - (base + k * step)).abs() > tolerance {
            return Err(if base == 0.0 {
                format!("must be a multiple of {step}")
            } else {
                format!("must be {base} plus a multiple of {step}")
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testing::{errs, nested_schema, pairs};
    use serde_json::json;

    /// Validates `{"x": value}` against a one-field schema.
    fn one(field: Field, value: Value) -> Result<Value, String> {
        Schema::new().field(field).validate(&json!({ "x": value })).map(|v| v["x"].clone()).map_err(|e| {
            assert_eq!(e.len(), 1, "expected one error, got {e}");
            assert_eq!(e.errors[0].path, "x");
            e.errors[0].message.clone()
        })
    }

    #[test]
    fn scalar_table() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Field, Value, Result<Value, &str>)> = vec![
            // integer
            ("int ok", Field::integer("x"), json!(5), Ok(json!(5))),
            ("int negative", Field::integer("x"), json!(-7), Ok(json!(-7))),
            ("int integral float coerced", Field::integer("x"), json!(3.0), Ok(json!(3))),
            ("int fractional", Field::integer("x"), json!(2.5), Err("must be a whole number")),
            ("int string", Field::integer("x"), json!("5"), Err("must be a number")),
            ("int bool", Field::integer("x"), json!(true), Err("must be a number")),
            ("int array", Field::integer("x"), json!([1]), Err("must be a number")),
            ("int too large", Field::integer("x"), json!(u64::MAX), Err("is too large")),
            ("int at min", Field::integer("x").min(1), json!(1), Ok(json!(1))),
            ("int below min", Field::integer("x").min(1), json!(0), Err("must be at least 1")),
            ("int at max", Field::integer("x").max(100), json!(100), Ok(json!(100))),
            ("int above max", Field::integer("x").max(100), json!(101), Err("must be at most 100")),
            ("int step ok", Field::integer("x").step(5), json!(15), Ok(json!(15))),
            ("int step bad", Field::integer("x").step(5), json!(7), Err("must be a multiple of 5")),
            ("int step negative ok", Field::integer("x").step(5), json!(-10), Ok(json!(-10))),
            ("int step from min ok", Field::integer("x").min(1).step(5), json!(11), Ok(json!(11))),
            ("int step from min bad", Field::integer("x").min(1).step(5), json!(10),
                Err("must be 1 plus a multiple of 5 (1, 6, 11, …)")),
            ("int range before step", Field::integer("x").min(1).step(5), json!(-3), Err("must be at least 1")),
            // float
            ("float ok", Field::float("x"), json!(0.5), Ok(json!(0.5))),
            ("float from integer", Field::float("x"), json!(1), Ok(json!(1.0))),
            ("float string", Field::float("x"), json!("0.5"), Err("must be a number")),
            ("float null-ish object", Field::float("x"), json!({}), Err("must be a number")),
            ("float below min", Field::float("x").min(0.0), json!(-0.1), Err("must be at least 0")),
            ("float above max", Field::float("x").max(1.0), json!(1.5), Err("must be at most 1")),
            ("float at max", Field::float("x").max(1.0), json!(1.0), Ok(json!(1.0))),
            ("float step ok despite binary", Field::float("x").step(0.001), json!(0.003), Ok(json!(0.003))),
            ("float step ok large", Field::float("x").step(0.1), json!(12345.7), Ok(json!(12345.7))),
            ("float step bad", Field::float("x").step(0.25), json!(0.3), Err("must be a multiple of 0.25")),
            ("float step from min ok", Field::float("x").min(0.1).step(0.25), json!(0.6), Ok(json!(0.6))),
            ("float step from min bad", Field::float("x").min(0.1).step(0.25), json!(0.5),
                Err("must be 0.1 plus a multiple of 0.25")),
            ("float int bounds", Field::float("x").min(1).max(2), json!(1.5), Ok(json!(1.5))),
            // string
            ("string ok", Field::string("x"), json!("hi"), Ok(json!("hi"))),
            ("string empty ok", Field::string("x"), json!(""), Ok(json!(""))),
            ("string number", Field::string("x"), json!(5), Err("must be a string")),
            ("string option ok", Field::string("x").options(["a", "b", "c"]), json!("b"), Ok(json!("b"))),
            ("string option bad", Field::string("x").options(["a", "b", "c"]), json!("d"),
                Err("must be one of: a, b, c")),
            ("string min_length", Field::string("x").min_length(3), json!("ab"),
                Err("must be at least 3 characters long")),
            ("string max_length chars not bytes", Field::string("x").max_length(2), json!("éé"), Ok(json!("éé"))),
            ("string max_length", Field::string("x").max_length(1), json!("ab"),
                Err("must be at most 1 character long")),
            // boolean
            ("bool true", Field::boolean("x"), json!(true), Ok(json!(true))),
            ("bool false", Field::boolean("x"), json!(false), Ok(json!(false))),
            ("bool string", Field::boolean("x"), json!("true"), Err("must be true or false")),
            ("bool number", Field::boolean("x"), json!(1), Err("must be true or false")),
            // composites given the wrong type
            ("group not object", Field::group("x", vec![Field::integer("y")]), json!(3), Err("must be an object")),
            ("list not array", Field::list("x", vec![Field::integer("y")]), json!({}), Err("must be a list")),
        ];
        for (name, field, input, expected) in cases {
            let got = one(field, input);
            let expected = expected.map_err(str::to_owned);
            assert_eq!(got, expected, "case {name:?}");
        }
    }

    #[test]
    fn float_results_are_json_floats_and_ints_are_json_ints() {
        let schema = Schema::new().field(Field::float("f")).field(Field::integer("i"));
        let out = schema.validate(&json!({"f": 2, "i": 4.0})).unwrap();
        assert!(out["f"].is_f64());
        assert!(out["i"].is_i64());
    }

    #[test]
    fn required_fields_reject_absent_and_null() {
        let schema = Schema::new()
            .field(Field::integer("a").required())
            .field(Field::string("b").required().default("suggested"))
            .field(Field::group("g", vec![Field::integer("t")]).required())
            .field(Field::list("l", vec![Field::integer("t")]).required());
        assert_eq!(
            errs(schema.validate(&json!({"a": null}))),
            pairs(&[("a", "is required"), ("b", "is required"), ("g", "is required"), ("l", "is required"),])
        );
        let ok = schema.validate(&json!({"a": 1, "b": "x", "g": {}, "l": []})).unwrap();
        assert_eq!(ok, json!({"a": 1, "b": "x", "g": {}, "l": []}));
    }

    #[test]
    fn defaults_fill_missing_optional_fields_recursively() {
        let schema = Schema::new()
            .field(Field::integer("epochs").default(20))
            .field(Field::float("lr").default(0.01))
            .field(Field::string("model").default("gpt-4"))
            .field(Field::boolean("verbose").default(false))
            .field(Field::integer("seed")) // no default: stays absent
            .field(Field::group(
                "api",
                vec![
                    Field::integer("timeout").default(30),
                    Field::group("retry", vec![Field::integer("count").default(2)]),
                ],
            ))
            .field(Field::list("pairs", vec![Field::string("a"), Field::integer("runs").default(3)]))
            .field(
                Field::list("seeded", vec![Field::integer("runs").default(3)]).default_items(json!([{}, {"runs": 5}])),
            );
        let out = schema
            .validate(&json!({
                "epochs": 5,
                "verbose": null,
                "api": {"retry": {}},
                "pairs": [{"a": "x"}, {"a": "y", "runs": 9}],
            }))
            .unwrap();
        assert_eq!(
            out,
            json!({
                "epochs": 5,
                "lr": 0.01,
                "model": "gpt-4",
                "verbose": false,
                "api": {"timeout": 30, "retry": {"count": 2}},
                "pairs": [{"a": "x", "runs": 3}, {"a": "y", "runs": 9}],
                "seeded": [{"runs": 3}, {"runs": 5}],
            })
        );
        assert!(out.get("seed").is_none(), "no default means absent, not null");
    }

    #[test]
    fn unknown_keys_are_reported_at_every_level() {
        let schema = Schema::new()
            .field(Field::integer("epochs"))
            .field(Field::group("api", vec![Field::integer("timeout")]))
            .field(Field::list("pairs", vec![Field::string("a")]));
        assert_eq!(
            errs(schema.validate(&json!({
                "epoch": 3,
                "api": {"timeuot": 1},
                "pairs": [{"a": "x"}, {"a": "y", "b": "z"}],
            }))),
            pairs(&[
                ("epoch", "is not a field of this experiment"),
                ("api.timeuot", "is not a field of this experiment"),
                ("pairs[1].b", "is not a field of this experiment"),
            ])
        );
    }

    #[test]
    fn nested_errors_are_all_reported_with_paths() {
        let result = nested_schema().validate(&json!({
            "iterations": 500,
            "api": {"timeout": "soon", "region": "mars"},
            "model_pairs": [
                {"a": "x", "b": "y"},
                {"a": "x", "runs": 0},
                "not an object",
            ],
        }));
        assert_eq!(
            errs(result),
            pairs(&[
                ("iterations", "must be at most 100"),
                ("api.timeout", "must be a number"),
                ("api.region", "must be one of: eu, us"),
                ("model_pairs[1].b", "is required"),
                ("model_pairs[1].runs", "must be at least 1"),
                ("model_pairs[2]", "must be an object"),
            ])
        );
    }

    #[test]
    fn list_item_counts() {
        let schema = nested_schema();
        let item = json!({"a": "x", "b": "y"});
        assert_eq!(
            errs(schema.validate(&json!({"iterations": 1, "model_pairs": []}))),
            pairs(&[("model_pairs", "must have at least 1 item")])
        );
        assert_eq!(
            errs(schema.validate(&json!({"iterations": 1}))),
            pairs(&[("model_pairs", "must have at least 1 item")]),
            "an absent list without a default is [] and still subject to min_items"
        );
        assert_eq!(
            errs(schema.validate(&json!({"iterations": 1, "model_pairs": [item, item, item, item]}))),
            pairs(&[("model_pairs", "must have at most 3 items")])
        );
        let ok = schema.validate(&json!({"iterations": 1, "model_pairs": [item, item, item]})).unwrap();
        assert_eq!(ok["model_pairs"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn root_must_be_an_object() {
        for value in [json!([]), json!(1), json!(null), json!("x")] {
            let e = nested_schema().validate(&value).unwrap_err();
            assert_eq!(e.errors, vec![FieldError::new("", "configuration must be a JSON object")]);
            assert_eq!(e.to_string(), "configuration must be a JSON object");
        }
    }

    #[test]
    fn errors_display_and_lookup() {
        let e = nested_schema()
            .validate(&json!({"iterations": 0, "api": {"timeout": 0}, "model_pairs": [{"a": "x", "b": "y"}]}))
            .unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(!e.is_empty());
        assert_eq!(e.for_path("api.timeout"), Some("must be at least 1"));
        assert_eq!(e.for_path("api"), None);
        assert_eq!(e.to_string(), "iterations: must be at least 1; api.timeout: must be at least 1");
        assert_eq!(e.iter().count(), 2);
    }

    #[test]
    fn defaults_builds_the_starting_configuration() {
        let schema = nested_schema()
            .field(Field::string("model").default("gpt-4").required())
            .field(Field::boolean("verbose"))
            .field(Field::list("seeded", vec![Field::integer("runs").default(3)]).default_items(json!([{}])));
        assert_eq!(
            schema.defaults(),
            json!({
                "api": {"timeout": 30},
                "model_pairs": [],
                "model": "gpt-4",
                "seeded": [{"runs": 3}],
            })
        );
        assert_eq!(Schema::new().defaults(), json!({}));
    }
}
