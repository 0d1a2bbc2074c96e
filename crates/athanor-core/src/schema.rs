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

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A configuration schema: the ordered fields of a configuration object.
///
/// The order of `fields` is meaningful: it is the order in which a form shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Schema {
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
    Integer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<i64>,
    },
    Float {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<f64>,
    },
    String {
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
    Boolean {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<bool>,
    },
    /// A nested object with its own named fields.
    Group { fields: Vec<Field> },
    /// An array of objects, each shaped by `item` (e.g. pairs of models to compare).
    List {
        item: Vec<Field>,
        /// The starting items: a JSON array of objects. Items may omit fields that have defaults.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_items: Option<usize>,
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
    Int(i64),
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

/// Builders. Each setter consumes and returns the field, so a whole schema is one expression.
///
/// # Panics
///
/// Kind-specific setters (`default`, `min`, `max`, `step`, `options`, `min_length`, `max_length`,
/// `min_items`, `max_items`, `default_items`) panic when applied to a kind they do not fit, e.g. `options` on
/// an integer, or a fractional `min` on an integer. Schemas are written by programmers in code and built by
/// every test that touches the experiment, so a loud panic at the offending line is the quickest feedback; the
/// alternative, silently ignoring the setter, would ship a constraint that is not enforced. Semantic mistakes
/// that only show across setters (a default outside `min..max`) are left to [`Schema::check`].
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

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.errors.len()
    }

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

    /// Validates a configuration, returning it with every missing optional field filled with its default
    /// (recursively, into groups and each list item), or every error found.
    ///
    /// Integers given as integral floats (`3.0`) come back as integers, and floats given as integers (`1`)
    /// come back as floats (`1.0`), so the stored snapshot's JSON types match the schema.
    ///
    /// # Errors
    ///
    /// [`ValidationErrors`] listing every problem; see the [module docs](self) for the rules.
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

fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
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

fn fill_value(field: &Field, value: &Value, path: &str, mode: Mode, errors: &mut Vec<FieldError>) -> Value {
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
fn check_scalar(kind: &FieldKind, value: &Value) -> Result<Value, String> {
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
fn json_integer(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| value.as_f64().and_then(float_to_i64))
}

fn float_to_i64(f: f64) -> Option<i64> {
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

/// Names that would make error paths ambiguous (`a.b` vs group `a` field `b`).
fn name_problem(name: &str) -> Option<&'static str> {
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
    use serde_json::json;

    fn errs(result: Result<Value, ValidationErrors>) -> Vec<(String, String)> {
        let mut found: Vec<_> =
            result.expect_err("expected validation errors").errors.into_iter().map(|e| (e.path, e.message)).collect();
        found.sort();
        found
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = expected.iter().map(|(p, m)| ((*p).to_owned(), (*m).to_owned())).collect();
        v.sort();
        v
    }

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

    fn nested_schema() -> Schema {
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
