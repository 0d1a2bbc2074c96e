//! [`Schema::sample`]: a complete configuration the schema accepts, made up without asking anyone.
//!
//! The runtime feeds it to an experiment's typed `Config` at start-up: if the struct cannot hold what the schema
//! lets through (a field renamed in one place only, an `i64` where the schema says float), the server says so
//! before any user starts a run, instead of the first run failing on a deserialisation error.

use serde_json::{Map, Value};

use super::{Field, FieldKind, Schema};

impl Schema {
    /// A configuration with **every** field present, which [`Schema::validate`] accepts whenever
    /// [`Schema::check`] passes.
    ///
    /// Each field takes its default when it has one (required fields included). A field without one gets a
    /// synthetic value that satisfies its constraints:
    ///
    /// | kind | sample |
    /// | --- | --- |
    /// | integer, float | `min`; without one, 0, or the largest value on the `step` grid at or below a negative `max` |
    /// | string | the first option that fits the length limits; without options, `min_length` times `"x"` |
    /// | boolean | `false` |
    /// | group | its fields' samples |
    /// | list | its default items, completed like a configuration; without a default, `min_items` sample items but at least one (when `max_items` allows), so the item type is exercised too |
    ///
    /// Optional fields are filled as well (never left absent), so a typed configuration has to accept a value
    /// for each of them.
    ///
    /// ```
    /// use athanor_core::schema::{Field, Schema};
    /// use serde_json::json;
    ///
    /// let schema = Schema::new()
    ///     .field(Field::integer("epochs").default(20))
    ///     .field(Field::string("model").options(["gpt-4", "claude-3"]).required())
    ///     .field(Field::list("pairs", vec![Field::string("a").required()]).min_items(2));
    /// let sample = schema.sample();
    /// assert_eq!(sample, json!({"epochs": 20, "model": "gpt-4", "pairs": [{"a": ""}, {"a": ""}]}));
    /// assert!(schema.validate(&sample).is_ok());
    /// ```
    #[must_use]
    pub fn sample(&self) -> Value {
        complete_object(&self.fields, &Map::new())
    }
}

/// `given` with every field of `fields` it lacks (or holds as `null`) filled by its sample, recursing into the
/// groups and list items it does hold. Values it holds are kept as they are.
fn complete_object(fields: &[Field], given: &Map<String, Value>) -> Value {
    let mut out = given.clone();
    for field in fields {
        let value = match given.get(&field.name) {
            None | Some(Value::Null) => sample_field(field),
            Some(value) => complete_value(field, value),
        };
        out.insert(field.name.clone(), value);
    }
    Value::Object(out)
}

/// A held value, completed inside when it is a group or a list (a list default may omit item fields).
fn complete_value(field: &Field, value: &Value) -> Value {
    match (&field.kind, value) {
        (FieldKind::Group { fields }, Value::Object(object)) => complete_object(fields, object),
        (FieldKind::List { item, .. }, Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|it| match it {
                    Value::Object(object) => complete_object(item, object),
                    other => other.clone(),
                })
                .collect(),
        ),
        _ => value.clone(),
    }
}

fn sample_field(field: &Field) -> Value {
    if let Some(default) = field.default_value() {
        return complete_value(field, &default);
    }
    match &field.kind {
        FieldKind::Integer { min, max, step, .. } => Value::from(sample_integer(*min, *max, *step)),
        FieldKind::Float { min, max, step, .. } => Value::from(sample_float(*min, *max, *step)),
        FieldKind::String { options, min_length, max_length, .. } => {
            Value::from(sample_string(options.as_deref(), *min_length, *max_length))
        }
        FieldKind::Boolean { .. } => Value::Bool(false),
        FieldKind::Group { fields } => complete_object(fields, &Map::new()),
        FieldKind::List { item, min_items, max_items, .. } => {
            let count = min_items.unwrap_or(0).max(1).min(max_items.unwrap_or(usize::MAX));
            Value::Array((0..count).map(|_| complete_object(item, &Map::new())).collect())
        }
    }
}

/// `min` is on the grid by definition (the grid counts from it); without it the grid counts from 0, so 0 is on
/// it, unless `max` is negative, where the grid's largest value at or below `max` is taken.
fn sample_integer(min: Option<i64>, max: Option<i64>, step: Option<i64>) -> i64 {
    match (min, max) {
        (Some(min), _) => min,
        (None, Some(max)) if max < 0 => {
            let step = step.filter(|&s| s > 0).unwrap_or(1);
            // i128: the multiple of `step` below `max` can fall below i64::MIN; then no valid value exists and
            // `max` is as good an answer as any (`check` cannot see that case, so `validate` will say so).
            let on_grid = i128::from(max.div_euclid(step)) * i128::from(step);
            i64::try_from(on_grid).unwrap_or(max)
        }
        (None, _) => 0,
    }
}

/// As [`sample_integer`], for floats.
fn sample_float(min: Option<f64>, max: Option<f64>, step: Option<f64>) -> f64 {
    match (min, max) {
        (Some(min), _) => min,
        (None, Some(max)) if max < 0.0 => match step.filter(|&s| s > 0.0 && s.is_finite()) {
            Some(step) => {
                let on_grid = (max / step).floor() * step;
                // Binary rounding can land one ulp above `max`; one step lower is on the grid and below it.
                if on_grid > max {
                    on_grid - step
                } else {
                    on_grid
                }
            }
            None => max,
        },
        (None, _) => 0.0,
    }
}

fn sample_string(options: Option<&[String]>, min_length: Option<usize>, max_length: Option<usize>) -> String {
    let min = min_length.unwrap_or(0);
    let max = max_length.unwrap_or(usize::MAX);
    match options {
        // `check` does not compare options with the length limits, so prefer one that fits them.
        Some(options) => options
            .iter()
            .find(|o| (min..=max).contains(&o.chars().count()))
            .or(options.first())
            .cloned()
            .unwrap_or_default(),
        None => "x".repeat(min),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_samples_to_a_value_validate_accepts() {
        #[rustfmt::skip]
        let cases: Vec<(&str, Field, Value)> = vec![
            ("int plain", Field::integer("x"), json!(0)),
            ("int required, no default", Field::integer("x").required(), json!(0)),
            ("int default wins", Field::integer("x").default(7).min(1), json!(7)),
            ("int min", Field::integer("x").min(5).max(9).step(2), json!(5)),
            ("int negative min", Field::integer("x").min(-5).max(5), json!(-5)),
            ("int max only, positive", Field::integer("x").max(10).step(4), json!(0)),
            ("int negative max on step grid", Field::integer("x").max(-3).step(2), json!(-4)),
            ("int negative max no step", Field::integer("x").max(-3), json!(-3)),
            ("float plain", Field::float("x"), json!(0.0)),
            ("float min", Field::float("x").min(0.5).max(1.0).step(0.25), json!(0.5)),
            ("float negative max on step grid", Field::float("x").max(-0.25).step(0.1), json!(-0.30000000000000004)),
            ("float negative max no step", Field::float("x").max(-0.5), json!(-0.5)),
            ("float required default", Field::float("x").default(0.1).required(), json!(0.1)),
            ("string plain", Field::string("x"), json!("")),
            ("string min_length", Field::string("x").min_length(3).max_length(5), json!("xxx")),
            ("string first option", Field::string("x").options(["gpt-4", "claude-3"]).required(), json!("gpt-4")),
            ("string option that fits length", Field::string("x").options(["a", "abc"]).min_length(2), json!("abc")),
            ("string default", Field::string("x").default("hi"), json!("hi")),
            ("boolean", Field::boolean("x").required(), json!(false)),
            ("boolean default", Field::boolean("x").default(true), json!(true)),
            ("group recurses", Field::group("x", vec![Field::integer("t").min(3), Field::boolean("on")]),
                json!({"t": 3, "on": false})),
            ("list min_items", Field::list("x", vec![Field::string("a").required()]).min_items(2),
                json!([{"a": ""}, {"a": ""}])),
            ("list at least one item", Field::list("x", vec![Field::integer("n").default(4)]), json!([{"n": 4}])),
            ("list max_items 0", Field::list("x", vec![Field::integer("n")]).max_items(0), json!([])),
            ("list default completed", Field::list("x", vec![Field::string("a"), Field::integer("n").default(2)])
                .default_items(json!([{"a": "q"}, {}])),
                json!([{"a": "q", "n": 2}, {"a": "", "n": 2}])),
            ("list in group in list", Field::list("x", vec![Field::group("g", vec![Field::float("f").min(1)])])
                .required(), json!([{"g": {"f": 1.0}}])),
        ];
        for (name, field, expected) in cases {
            let schema = Schema::new().field(field);
            assert_eq!(schema.check(), Ok(()), "case {name:?}: the case's schema itself must be consistent");
            let sample = schema.sample();
            assert_eq!(sample, json!({ "x": expected }), "case {name:?}");
            assert!(schema.validate(&sample).is_ok(), "case {name:?}: {:?}", schema.validate(&sample));
        }
    }

    #[test]
    fn every_field_is_present_even_optional_ones_without_default() {
        let schema = Schema::new()
            .field(Field::integer("seed"))
            .field(Field::string("note"))
            .field(Field::group("api", vec![Field::integer("timeout")]));
        assert_eq!(schema.sample(), json!({"seed": 0, "note": "", "api": {"timeout": 0}}));
        assert_eq!(Schema::new().sample(), json!({}));
    }
}
