//! The consuming builders: `Field::integer("epochs").label("Epochs").default(20).min(1)`, one expression per
//! field, so a whole schema reads as one declaration.

use serde_json::Value;

use super::validate::{float_to_i64, json_integer};
use super::{Field, FieldKind, Num};

/// Builders. Each setter consumes and returns the field, so a whole schema is one expression.
///
/// # Panics
///
/// Kind-specific setters (`default`, `min`, `max`, `step`, `options`, `min_length`, `max_length`,
/// `min_items`, `max_items`, `default_items`) panic when applied to a kind they do not fit, e.g. `options` on
/// an integer, or a fractional `min` on an integer. Schemas are written by programmers in code and built by
/// every test that touches the experiment, so a loud panic at the offending line is the quickest feedback; the
/// alternative, silently ignoring the setter, would ship a constraint that is not enforced. Semantic mistakes
/// that only show across setters (a default outside `min..max`) are left to [`Schema::check`](super::Schema::check).
impl Field {
    fn new(name: impl Into<String>, kind: FieldKind) -> Self {
        Field { name: name.into(), label: None, description: None, required: false, kind }
    }

    /// A whole-number field (JSON integers; `3.0` is accepted as `3`).
    #[must_use]
    pub fn integer(name: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Integer { default: None, min: None, max: None, step: None })
    }

    /// A floating-point field (any finite JSON number).
    #[must_use]
    pub fn float(name: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Float { default: None, min: None, max: None, step: None })
    }

    /// A text field; with [`Field::options`] it becomes a choice among fixed strings.
    #[must_use]
    pub fn string(name: impl Into<String>) -> Self {
        Field::new(name, FieldKind::String { default: None, options: None, min_length: None, max_length: None })
    }

    /// A true/false field.
    #[must_use]
    pub fn boolean(name: impl Into<String>) -> Self {
        Field::new(name, FieldKind::Boolean { default: None })
    }

    /// A nested object with its own fields; errors inside it are reported as `name.child`.
    #[must_use]
    pub fn group(name: impl Into<String>, fields: Vec<Field>) -> Self {
        Field::new(name, FieldKind::Group { fields })
    }

    /// A repeatable list of objects shaped by `item`; errors inside it are reported as `name[i].child`.
    #[must_use]
    pub fn list(name: impl Into<String>, item: Vec<Field>) -> Self {
        Field::new(name, FieldKind::List { item, default: None, min_items: None, max_items: None })
    }

    /// Sets the human label.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the help text.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Marks the field as one the user must supply.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the default: a whole number for integers, any number for floats, a string, a bool, or an array of
    /// item objects for lists (same as [`Field::default_items`]). `Value::Null` (e.g. `None::<i64>`) clears it.
    ///
    /// # Panics
    ///
    /// If the value does not fit the kind, or the field is a group (groups take their children's defaults).
    #[must_use]
    pub fn default(mut self, value: impl Into<Value>) -> Self {
        let value = value.into();
        let clear = value.is_null();
        let name = &self.name;
        let misfit =
            |kind: &str| -> ! { panic!("Field::default on `{name}`: {value} is not a valid default for {kind} field") };
        match &mut self.kind {
            FieldKind::Integer { default, .. } => {
                *default =
                    if clear { None } else { Some(json_integer(&value).unwrap_or_else(|| misfit("an integer"))) };
            }
            FieldKind::Float { default, .. } => {
                *default = if clear { None } else { Some(value.as_f64().unwrap_or_else(|| misfit("a float"))) };
            }
            FieldKind::String { default, .. } => {
                *default =
                    if clear { None } else { Some(value.as_str().unwrap_or_else(|| misfit("a string")).to_owned()) };
            }
            FieldKind::Boolean { default } => {
                *default = if clear { None } else { Some(value.as_bool().unwrap_or_else(|| misfit("a boolean"))) };
            }
            FieldKind::List { default, .. } => {
                if !clear && !value.is_array() {
                    misfit("a list");
                }
                *default = (!clear).then_some(value);
            }
            FieldKind::Group { .. } => {
                panic!("Field::default on `{name}`: a group has no default of its own; set defaults on its fields")
            }
        }
        self
    }

    /// Sets the inclusive lower bound of an integer or float field.
    ///
    /// # Panics
    ///
    /// On other kinds, or with a fractional bound on an integer field.
    #[must_use]
    pub fn min(mut self, min: impl Into<Num>) -> Self {
        let bound = self.numeric_setting("min", min.into());
        match (&mut self.kind, bound) {
            (FieldKind::Integer { min, .. }, Num::Int(i)) => *min = Some(i),
            (FieldKind::Float { min, .. }, n) => *min = Some(n.as_f64()),
            _ => unreachable!("numeric_setting only returns a Num fitting the kind"),
        }
        self
    }

    /// Sets the inclusive upper bound of an integer or float field.
    ///
    /// # Panics
    ///
    /// On other kinds, or with a fractional bound on an integer field.
    #[must_use]
    pub fn max(mut self, max: impl Into<Num>) -> Self {
        let bound = self.numeric_setting("max", max.into());
        match (&mut self.kind, bound) {
            (FieldKind::Integer { max, .. }, Num::Int(i)) => *max = Some(i),
            (FieldKind::Float { max, .. }, n) => *max = Some(n.as_f64()),
            _ => unreachable!("numeric_setting only returns a Num fitting the kind"),
        }
        self
    }

    /// Sets the step of an integer or float field: valid values are `min + k * step` (or `k * step` without a
    /// `min`).
    ///
    /// # Panics
    ///
    /// On other kinds, or with a fractional step on an integer field.
    #[must_use]
    pub fn step(mut self, step: impl Into<Num>) -> Self {
        let bound = self.numeric_setting("step", step.into());
        match (&mut self.kind, bound) {
            (FieldKind::Integer { step, .. }, Num::Int(i)) => *step = Some(i),
            (FieldKind::Float { step, .. }, n) => *step = Some(n.as_f64()),
            _ => unreachable!("numeric_setting only returns a Num fitting the kind"),
        }
        self
    }

    /// Normalises a numeric setter's argument for this field's kind: integers get an `Int` (an integral float
    /// such as `1.0` is accepted, since it is harmless), floats accept anything.
    fn numeric_setting(&self, setter: &str, n: Num) -> Num {
        match (&self.kind, n) {
            (FieldKind::Integer { .. }, Num::Int(_)) | (FieldKind::Float { .. }, _) => n,
            (FieldKind::Integer { .. }, Num::Float(f)) => match float_to_i64(f) {
                Some(i) => Num::Int(i),
                None => panic!("Field::{setter} on `{}`: an integer field needs a whole number, got {f}", self.name),
            },
            (kind, _) => panic!(
                "Field::{setter} on `{}`: {setter} applies to integer and float fields, not {} field",
                self.name,
                kind.a_type_name()
            ),
        }
    }

    /// Restricts a string field to these values (rendered as a select), in this order.
    ///
    /// # Panics
    ///
    /// On non-string fields.
    #[must_use]
    pub fn options<I, S>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        match &mut self.kind {
            FieldKind::String { options, .. } => {
                *options = Some(values.into_iter().map(Into::into).collect());
            }
            kind => panic!(
                "Field::options on `{}`: options apply to string fields, not {} field",
                self.name,
                kind.a_type_name()
            ),
        }
        self
    }

    /// Sets a string field's minimum length, in characters.
    ///
    /// # Panics
    ///
    /// On non-string fields.
    #[must_use]
    pub fn min_length(mut self, length: usize) -> Self {
        match &mut self.kind {
            FieldKind::String { min_length, .. } => *min_length = Some(length),
            kind => panic!(
                "Field::min_length on `{}`: applies to string fields, not {} field",
                self.name,
                kind.a_type_name()
            ),
        }
        self
    }

    /// Sets a string field's maximum length, in characters.
    ///
    /// # Panics
    ///
    /// On non-string fields.
    #[must_use]
    pub fn max_length(mut self, length: usize) -> Self {
        match &mut self.kind {
            FieldKind::String { max_length, .. } => *max_length = Some(length),
            kind => panic!(
                "Field::max_length on `{}`: applies to string fields, not {} field",
                self.name,
                kind.a_type_name()
            ),
        }
        self
    }

    /// Sets the minimum number of items of a list field.
    ///
    /// # Panics
    ///
    /// On non-list fields.
    #[must_use]
    pub fn min_items(mut self, count: usize) -> Self {
        match &mut self.kind {
            FieldKind::List { min_items, .. } => *min_items = Some(count),
            kind => {
                panic!("Field::min_items on `{}`: applies to list fields, not {} field", self.name, kind.a_type_name())
            }
        }
        self
    }

    /// Sets the maximum number of items of a list field.
    ///
    /// # Panics
    ///
    /// On non-list fields.
    #[must_use]
    pub fn max_items(mut self, count: usize) -> Self {
        match &mut self.kind {
            FieldKind::List { max_items, .. } => *max_items = Some(count),
            kind => {
                panic!("Field::max_items on `{}`: applies to list fields, not {} field", self.name, kind.a_type_name())
            }
        }
        self
    }

    /// Sets a list field's starting items: a JSON array of objects, e.g. `json!([{"a": "x", "b": "y"}])`.
    /// Items may omit fields that have defaults; they are filled in.
    ///
    /// # Panics
    ///
    /// On non-list fields, or if `items` is not an array.
    #[must_use]
    pub fn default_items(self, items: impl Into<Value>) -> Self {
        assert!(
            matches!(self.kind, FieldKind::List { .. }),
            "Field::default_items on `{}`: applies to list fields, not {} field",
            self.name,
            self.kind.a_type_name()
        );
        self.default(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builder_setters_set_the_matching_kind() {
        assert_eq!(
            Field::integer("x").default(20).min(1).max(1000).step(1.0).kind,
            FieldKind::Integer { default: Some(20), min: Some(1), max: Some(1000), step: Some(1) }
        );
        assert_eq!(
            Field::float("y").default(1).min(0).max(0.5f32).kind,
            FieldKind::Float { default: Some(1.0), min: Some(0.0), max: Some(0.5), step: None }
        );
        assert_eq!(Field::integer("x").default(5).default(None::<i64>).default_value(), None);
        assert_eq!(Field::boolean("b").default(true).default_value(), Some(json!(true)));
    }

    #[test]
    #[should_panic(expected = "Field::options on `n`: options apply to string fields, not an integer field")]
    fn misapplied_setter_panics() {
        let _ = Field::integer("n").options(["a"]);
    }

    #[test]
    #[should_panic(expected = "an integer field needs a whole number, got 0.5")]
    fn fractional_integer_bound_panics() {
        let _ = Field::integer("n").step(0.5);
    }

    #[test]
    #[should_panic(expected = "is not a valid default for a boolean field")]
    fn mistyped_default_panics() {
        let _ = Field::boolean("b").default("yes");
    }
}
