//! The typed configuration schema an experiment declares, and validation of configuration values against it.
//!
//! An experiment describes the knobs it accepts as a [`Schema`]: an ordered list of [`Field`]s, each an
//! integer, float, string, boolean, a nested group, or a repeatable list of items. Three parties read it:
//!
//! - **the experiment author**, who builds it in Rust with the consuming builders below and calls
//!   [`Schema::check`] in a unit test, so a default outside its own `min..max` fails CI rather than a user;
//! - **the browser**, which receives it serialised as JSON and generates a form from it (field order is form
//!   order, `options` become a select, `min`/`max`/`step` become input attributes);
//! - **the server and the browser alike**, which run [`Schema::validate`] on a submitted configuration. It
//!   reports *every* problem at once, keyed by a path such as `api.timeout` or `model_pairs[1].runs`, so the
//!   form can mark every faulty input in one round trip, and it fills in defaults so the stored snapshot of a
//!   configuration is complete: re-running an instance later never depends on what the defaults *were*.
//!
//! ```
//! use athanor_core::schema::{Field, Schema};
//! use serde_json::json;
//!
//! let schema = Schema::new()
//!     .field(Field::integer("epochs").label("Epochs").default(20).min(1).max(1000))
//!     .field(Field::float("learning_rate").default(0.01).min(0.0).max(1.0).step(0.001))
//!     .field(Field::string("model").options(["gpt-4", "claude-3"]).required())
//!     .field(Field::group("api", vec![Field::integer("timeout").default(30)]))
//!     .field(
//!         Field::list("model_pairs", vec![
//!             Field::string("a").required(),
//!             Field::string("b").required(),
//!             Field::integer("runs").default(3).min(1),
//!         ])
//!         .min_items(1),
//!     );
//! schema.check().expect("the schema is consistent");
//!
//! // Missing optional fields are filled in, recursively.
//! let config = schema
//!     .validate(&json!({"model": "gpt-4", "model_pairs": [{"a": "x", "b": "y"}]}))
//!     .expect("valid");
//! assert_eq!(config["epochs"], json!(20));
//! assert_eq!(config["api"]["timeout"], json!(30));
//! assert_eq!(config["model_pairs"][0]["runs"], json!(3));
//!
//! // Every error is reported, each at its path.
//! let errors = schema
//!     .validate(&json!({"epochs": 0, "model": "gpt-5", "model_pairs": [{"a": "x", "b": "y", "runs": 0}]}))
//!     .unwrap_err();
//! assert_eq!(errors.for_path("epochs"), Some("must be at least 1"));
//! assert_eq!(errors.for_path("model"), Some("must be one of: gpt-4, claude-3"));
//! assert_eq!(errors.for_path("model_pairs[0].runs"), Some("must be at least 1"));
//! assert_eq!(errors.len(), 3);
//! ```
//!
//! # Conventions
//!
//! - **Absent and `null` mean the same thing.** A required field that is either is reported as "is required";
//!   an optional one takes its default, or, if it has none, is left *absent* from the output (never `null`).
//! - **Groups are always present in the output.** A missing optional group is validated as `{}`, so its
//!   children's defaults are filled in (and its required children reported). `required` on a group means the
//!   user must supply the object itself.
//! - **A missing optional list** takes its declared default, or `[]`, and is then validated like a supplied
//!   one: its items get their defaults filled, and `min_items` still applies.
//! - **One error per scalar field**: the first problem found (type, then range, then step), because "must be
//!   at least 1" already tells the user what to do and a second message about the step would be noise.
//! - **Unknown keys are errors** ("is not a field of this experiment"): a typo such as `epoch` for `epochs`
//!   would otherwise be silently dropped and the run would use the default without anyone noticing.
//!
//! # Where things are
//!
//! - this file: the types ([`Schema`], [`Field`], [`FieldKind`], the errors) and reading a schema;
//! - `builder.rs`: the consuming setters (`Field::integer("x").label("X").min(1)`);
//! - `validate.rs`: [`Schema::validate`] and [`Schema::defaults`], the one walk that checks and fills values;
//! - `sample.rs`: [`Schema::sample`], a configuration the schema accepts, for start-up self-tests;
//! - `check.rs`: [`Schema::check`], the schema's own consistency;
//! - `declared.rs`: [`DeclaredField`], the same schema written as data (a manifest's `[[experiment.field]]`
//!   tables), and its conversion through the builders with every mistake reported by path.

mod builder;
mod check;
mod declared;
mod sample;
#[cfg(test)]
mod testing;
mod validate;

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use declared::{DeclaredField, DeclaredType};

/// A configuration schema: the ordered fields of a configuration object.
///
/// The order of `fields` is meaningful: it is the order in which a form shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Schema {
    /// The top-level fields, in form order; names must be unique (see [`Schema::check`]).
    pub fields: Vec<Field>,
}

/// One named entry of a configuration object.
///
/// Serialised flat, with the kind's tag inline, e.g. `{"name":"epochs","type":"integer","default":20,"min":1}`,
/// so the form generator reads one object per input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// The key of this field in the configuration's JSON object.
    pub name: String,
    /// The human label; see [`Field::display_label`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text shown next to the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the user must supply a value. A required field's default is only the form's starting value; it
    /// is never filled in silently, because "required" means the user has to decide.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// The value's type and its constraints; serialised inline, tagged by `"type"`.
    #[serde(flatten)]
    pub kind: FieldKind,
}

/// What kind of value a [`Field`] holds, and the constraints on it.
///
/// Bounds are inclusive. A `step` is counted from `min` when one is set, otherwise from zero, the way an HTML
/// `<input type="number">` counts it, so the browser's spinner and the validator agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    /// A whole number (`i64`); integral floats such as `3.0` are accepted and stored as integers.
    Integer {
        /// The value used when none is given; `None` leaves an optional field absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<i64>,
        /// Smallest accepted value, inclusive; `None` means no lower bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        /// Largest accepted value, inclusive; `None` means no upper bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
        /// Accepted values are `min + k * step` (from zero without `min`); must be positive. `None`: any integer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<i64>,
    },
    /// A finite floating-point number (`f64`); integers such as `1` are accepted and stored as `1.0`.
    Float {
        /// The value used when none is given; `None` leaves an optional field absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<f64>,
        /// Smallest accepted value, inclusive; `None` means no lower bound. Must be finite.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        /// Largest accepted value, inclusive; `None` means no upper bound. Must be finite.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        /// Accepted values are `min + k * step` (from zero without `min`), within a small rounding tolerance;
        /// must be positive and finite. `None`: any number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<f64>,
    },
    /// Text, optionally limited to a set of options and a length range.
    String {
        /// The value used when none is given; `None` leaves an optional field absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<String>,
        /// The allowed values; a form renders them as a select.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        options: Option<Vec<String>>,
        /// Minimum length in characters (Unicode scalar values), not bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_length: Option<usize>,
        /// Maximum length in characters (Unicode scalar values), not bytes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_length: Option<usize>,
    },
    /// `true` or `false`.
    Boolean {
        /// The value used when none is given; `None` leaves an optional field absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<bool>,
    },
    /// A nested object with its own named fields.
    Group {
        /// The group's fields, in form order; the group has no default of its own, only theirs.
        fields: Vec<Field>,
    },
    /// An array of objects, each shaped by `item` (e.g. pairs of models to compare).
    List {
        /// The fields of every item, in form order.
        item: Vec<Field>,
        /// The starting items: a JSON array of objects. Items may omit fields that have defaults.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<Value>,
        /// Fewest items accepted, inclusive; `None` means no lower limit (an empty list is fine).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_items: Option<usize>,
        /// Most items accepted, inclusive; `None` means no upper limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_items: Option<usize>,
    },
}

// serde's `skip_serializing_if` needs a `fn(&T) -> bool`.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// A number handed to the numeric builder setters ([`Field::min`], [`Field::max`], [`Field::step`]).
///
/// You never name this type: it exists so that `Field::integer("x").min(1)` and `Field::float("y").min(0.5)`
/// both compile with plain literals. Converts from `i8`–`i64`, `u8`–`u32`, `f32` and `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// An integer literal, widened to `i64`.
    Int(i64),
    /// A floating-point literal, widened to `f64`.
    Float(f64),
}

macro_rules! num_from {
    ($variant:ident as $target:ty: $($t:ty),*) => {$(
        impl From<$t> for Num {
            fn from(n: $t) -> Self {
                Num::$variant(<$target>::from(n))
            }
        }
    )*};
}
num_from!(Int as i64: i8, i16, i32, i64, u8, u16, u32);
num_from!(Float as f64: f32, f64);

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            // Precision loss above 2^53 is irrelevant for a float field's bounds.
            #[allow(clippy::cast_precision_loss)]
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// Reading a field.
impl Field {
    /// The label to show a human: the declared label, or the field's name when there is none.
    #[must_use]
    pub fn display_label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }

    /// The field's own default as JSON, if it declares one. Groups have none (their children do).
    #[must_use]
    pub fn default_value(&self) -> Option<Value> {
        match &self.kind {
            FieldKind::Integer { default, .. } => default.map(Value::from),
            FieldKind::Float { default, .. } => default.map(Value::from),
            FieldKind::String { default, .. } => default.clone().map(Value::from),
            FieldKind::Boolean { default } => default.map(Value::from),
            FieldKind::List { default, .. } => default.clone(),
            FieldKind::Group { .. } => None,
        }
    }

    /// The nested fields of a group, or the item fields of a list.
    #[must_use]
    pub fn children(&self) -> Option<&[Field]> {
        match &self.kind {
            FieldKind::Group { fields } => Some(fields),
            FieldKind::List { item, .. } => Some(item),
            _ => None,
        }
    }
}

impl FieldKind {
    /// The type name with its article, for messages: "an integer", "a list".
    fn a_type_name(&self) -> &'static str {
        match self {
            FieldKind::Integer { .. } => "an integer",
            FieldKind::Float { .. } => "a float",
            FieldKind::String { .. } => "a string",
            FieldKind::Boolean { .. } => "a boolean",
            FieldKind::Group { .. } => "a group",
            FieldKind::List { .. } => "a list",
        }
    }

    /// The kind's tag as it appears in JSON (`"integer"`, `"list"`, …).
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldKind::Integer { .. } => "integer",
            FieldKind::Float { .. } => "float",
            FieldKind::String { .. } => "string",
            FieldKind::Boolean { .. } => "boolean",
            FieldKind::Group { .. } => "group",
            FieldKind::List { .. } => "list",
        }
    }
}

/// One problem with a configuration (or a schema), at a path such as `model_pairs[1].runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Where: `epochs`, `api.timeout`, `model_pairs[1].runs`, `model_pairs`; `""` for the configuration as a
    /// whole.
    pub path: String,
    /// What, in words for the user: "must be at most 100".
    pub message: String,
}

impl FieldError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in one validation, in schema order (unknown keys after the fields of their object).
///
/// Displays as `path: message; path2: message2`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", join_errors(.errors))]
pub struct ValidationErrors {
    /// The problems, in the order described above; never empty when returned as an `Err`.
    pub errors: Vec<FieldError>,
}

fn join_errors(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl ValidationErrors {
    /// The (first) message for exactly this path, e.g. `for_path("api.timeout")`.
    #[must_use]
    pub fn for_path(&self, path: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.path == path).map(|e| e.message.as_str())
    }

    /// Whether no problem was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// How many problems were recorded (a path may appear more than once).
    #[must_use]
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// The problems in order, the same as iterating over `&errors`.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.errors.iter()
    }

    fn into_result<T>(self, ok: T) -> Result<T, ValidationErrors> {
        if self.errors.is_empty() {
            Ok(ok)
        } else {
            Err(self)
        }
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

impl Schema {
    /// An empty schema, to which [`Schema::field`] appends fields.
    #[must_use]
    pub fn new() -> Self {
        Schema::default()
    }

    /// Appends a field; fields appear in forms in the order they are added.
    #[must_use]
    pub fn field(mut self, field: Field) -> Self {
        self.fields.push(field);
        self
    }

    /// Finds the field at a path. List indices are ignored, so `model_pairs[2].runs`, `model_pairs[].runs`
    /// and `model_pairs.runs` all name the `runs` field of the list's items; this lets a form map an error's
    /// path back to the field that renders it.
    #[must_use]
    pub fn field_at(&self, path: &str) -> Option<&Field> {
        let mut fields: &[Field] = &self.fields;
        let mut found = None;
        for segment in path.split('.') {
            let name = segment.split('[').next().unwrap_or(segment);
            let field = fields.iter().find(|f| f.name == name)?;
            fields = field.children().unwrap_or(&[]);
            found = Some(field);
        }
        found
    }
}

fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testing::nested_schema;
    use serde_json::json;

    #[test]
    fn field_json_shape_snapshot() {
        let field = Field::integer("epochs").default(20).min(1);
        assert_eq!(
            serde_json::to_string(&field).unwrap(),
            r#"{"name":"epochs","type":"integer","default":20,"min":1}"#
        );
        let field = Field::string("model").label("Model").required().options(["a", "b"]);
        assert_eq!(
            serde_json::to_value(&field).unwrap(),
            json!({"name": "model", "label": "Model", "required": true, "type": "string", "options": ["a", "b"]})
        );
        let list = Field::list("pairs", vec![Field::boolean("on")]).min_items(1);
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            json!({"name": "pairs", "type": "list", "item": [{"name": "on", "type": "boolean"}], "min_items": 1})
        );
    }

    #[test]
    fn schema_json_round_trip() {
        let schema = nested_schema()
            .field(
                Field::float("lr")
                    .label("Learning rate")
                    .description("Step size")
                    .default(0.01)
                    .min(0.0)
                    .max(1.0)
                    .step(0.001),
            )
            .field(Field::boolean("verbose").default(true))
            .field(Field::string("name").min_length(1).max_length(20))
            .field(Field::list("l", vec![Field::integer("n")]).default_items(json!([{"n": 1}])));
        let text = serde_json::to_string(&schema).unwrap();
        let back: Schema = serde_json::from_str(&text).unwrap();
        assert_eq!(back, schema);
    }

    #[test]
    fn deserialises_hand_written_json() {
        // A float bound written as an integer, and omitted options, must both be accepted.
        let schema: Schema = serde_json::from_value(json!({"fields": [
            {"name": "lr", "type": "float", "min": 0, "max": 1},
            {"name": "api", "type": "group", "fields": [{"name": "t", "type": "integer"}]},
        ]}))
        .unwrap();
        assert_eq!(
            schema,
            Schema::new()
                .field(Field::float("lr").min(0.0).max(1.0))
                .field(Field::group("api", vec![Field::integer("t")]))
        );
        assert!(serde_json::from_value::<Field>(json!({"name": "x", "type": "decimal"})).is_err());
    }

    #[test]
    fn field_at_and_labels() {
        let schema = nested_schema();
        assert_eq!(schema.field_at("iterations").map(|f| f.name.as_str()), Some("iterations"));
        assert_eq!(schema.field_at("api.timeout").map(|f| f.name.as_str()), Some("timeout"));
        for path in ["model_pairs[2].runs", "model_pairs[].runs", "model_pairs.runs"] {
            assert_eq!(schema.field_at(path).map(|f| f.name.as_str()), Some("runs"), "{path}");
        }
        assert!(schema.field_at("model_pairs[0].nope").is_none());
        assert!(schema.field_at("iterations.x").is_none());
        assert!(schema.field_at("").is_none());
        assert_eq!(Field::integer("epochs").display_label(), "epochs");
        assert_eq!(Field::integer("epochs").label("Epochs").display_label(), "Epochs");
    }
}
