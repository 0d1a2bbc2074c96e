//! The declared form of a schema: the same fields written as data rather than as Rust builder calls.
//!
//! Experiments written in other languages are declared in a manifest (`athanor.toml`), where each field is a
//! table of settings:
//!
//! ```toml
//! [[experiment.field]]
//! name = "temperature"
//! type = "float"          # int | integer | float | string | bool | boolean | group | list
//! label = "Temperature"
//! default = 0.0
//! min = 0.0
//! max = 2.0
//! step = 0.1
//!
//! [[experiment.field]]
//! name = "pairs"
//! type = "list"
//! min_items = 1
//!   [[experiment.field.fields]]   # a list's item fields, or a group's fields
//!   name = "a"
//!   type = "string"
//!   required = true
//! ```
//!
//! [`DeclaredField`] is that table as a serde type, so any format serde reads can carry it. Turning it into a
//! [`Schema`] goes through the builders and then [`Schema::check`], and reports **every** mistake keyed by the
//! field's path (`pairs[].a`, the way `check` names item fields): a setting that does not fit the field's type
//! (`min` on a string), a default of the wrong type, a fractional bound on an integer, `min > max`, a default
//! outside its own range, duplicate names, and so on.
//!
//! Two entry points:
//!
//! - [`Schema::from_declared_json`] reads a JSON value tree (what a manifest reader has after parsing its format)
//!   one setting at a time, so an unknown key (`mni = 1`) or a mistyped one (`min = "1"`) is reported with the
//!   field's path and the key's name, next to every other mistake; this is what a manifest reader should call.
//! - [`Schema::from_declared`] converts fields that serde already deserialised. Deserialising [`DeclaredField`]
//!   directly rejects unknown keys too (`deny_unknown_fields`), but serde stops at the first problem and cannot
//!   say in which field it was.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::check::name_problem;
use super::validate::check_scalar;
use super::{is_false, join_path, Field, FieldError, FieldKind, Num, Schema, ValidationErrors};

/// What kind of value a declared field holds: the `type = "…"` of a field table.
///
/// Written in lowercase; `int` and `bool` are accepted as short forms of `integer` and `boolean`, since both
/// spellings are common in the languages experiments are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeclaredType {
    /// A whole number.
    #[serde(alias = "int")]
    Integer,
    /// Any finite number.
    Float,
    /// Text, optionally restricted to `options`.
    String,
    /// True or false.
    #[serde(alias = "bool")]
    Boolean,
    /// A nested table with its own `fields`.
    Group,
    /// A repeatable list of items, each shaped by `fields`.
    List,
}

impl DeclaredType {
    /// Reads a `type` value, accepting every spelling serde accepts.
    #[must_use]
    pub fn parse(text: &str) -> Option<DeclaredType> {
        match text {
            "int" | "integer" => Some(DeclaredType::Integer),
            "float" => Some(DeclaredType::Float),
            "string" => Some(DeclaredType::String),
            "bool" | "boolean" => Some(DeclaredType::Boolean),
            "group" => Some(DeclaredType::Group),
            "list" => Some(DeclaredType::List),
            _ => None,
        }
    }

    /// The type with its article, for messages: "an integer", "a list".
    fn a_name(self) -> &'static str {
        match self {
            DeclaredType::Integer => "an integer",
            DeclaredType::Float => "a float",
            DeclaredType::String => "a string",
            DeclaredType::Boolean => "a boolean",
            DeclaredType::Group => "a group",
            DeclaredType::List => "a list",
        }
    }
}

/// The accepted `type` values, as a message lists them.
const TYPE_CHOICES: &str = "int, float, string, bool, group, list";

/// One field of a configuration, written as data: a `[[experiment.field]]` table of a manifest.
///
/// Only `name` and `type` are needed; every other setting is optional and must fit the type (see the table).
/// Unknown keys are refused, so a typo is an error rather than a constraint that silently does not apply.
///
/// | setting | for | meaning |
/// | --- | --- | --- |
/// | `label`, `description` | all | what the form shows: the input's label and its help text |
/// | `required` | all | the user must supply a value (a default is then only the form's starting value) |
/// | `default` | all but group | the value used when the user gives none; for a list, an array of item tables |
/// | `min`, `max`, `step` | integer, float | inclusive bounds; valid values are `min + k * step` |
/// | `options` | string | the allowed values, shown as a select |
/// | `min_length`, `max_length` | string | length limits, in characters |
/// | `min_items`, `max_items` | list | how many items the list may have |
/// | `fields` | group, list | the group's fields, or the fields of each list item |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredField {
    /// The key of this field in the configuration.
    pub name: String,
    /// What kind of value it holds.
    #[serde(rename = "type")]
    pub kind: DeclaredType,
    /// The input's label in a form; `None` shows the field's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text shown next to the input; `None` shows none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the user must supply a value; a `default` is then only the form's starting value.
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// Any value here; whether it fits the type is checked when the field becomes a [`Field`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Smallest accepted value, inclusive; `None` means no lower bound. Integer and float fields only, and
    /// must be whole for an integer field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<Number>,
    /// Largest accepted value, inclusive; `None` means no upper bound. Integer and float fields only, and
    /// must be whole for an integer field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<Number>,
    /// Positive spacing of accepted values, counted from `min` (or zero); `None` means any value. Integer and
    /// float fields only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Number>,
    /// The only values a string field accepts, shown as a select; `None` means any text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    /// Shortest accepted string, inclusive, in characters (not bytes); `None` means no lower limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    /// Longest accepted string, inclusive, in characters (not bytes); `None` means no upper limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// Fewest items a list field accepts, inclusive; `None` means no lower limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<usize>,
    /// Most items a list field accepts, inclusive; `None` means no upper limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<usize>,
    /// A group's fields, or a list's item fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<DeclaredField>>,
}

/// Every key a field table may have, in the order a message lists them. A test keeps it equal to the keys of
/// [`DeclaredField`]'s serde form.
const KEYS: [&str; 15] = [
    "name",
    "type",
    "label",
    "description",
    "required",
    "default",
    "min",
    "max",
    "step",
    "options",
    "min_length",
    "max_length",
    "min_items",
    "max_items",
    "fields",
];

impl DeclaredField {
    /// A field with only a name and a type; set the other public fields as needed.
    #[must_use]
    pub fn new(name: impl Into<String>, kind: DeclaredType) -> DeclaredField {
        DeclaredField {
            name: name.into(),
            kind,
            label: None,
            description: None,
            required: false,
            default: None,
            min: None,
            max: None,
            step: None,
            options: None,
            min_length: None,
            max_length: None,
            min_items: None,
            max_items: None,
            fields: None,
        }
    }

    /// A message for each setting that is present but does not fit this field's type, e.g. `min` on a string.
    fn misplaced_settings(&self) -> Vec<String> {
        let numeric = matches!(self.kind, DeclaredType::Integer | DeclaredType::Float);
        let string = self.kind == DeclaredType::String;
        let list = self.kind == DeclaredType::List;
        let container = matches!(self.kind, DeclaredType::Group | DeclaredType::List);
        #[rustfmt::skip]
        let settings = [
            ("min", self.min.is_some(), numeric, "integer and float fields"),
            ("max", self.max.is_some(), numeric, "integer and float fields"),
            ("step", self.step.is_some(), numeric, "integer and float fields"),
            ("options", self.options.is_some(), string, "string fields"),
            ("min_length", self.min_length.is_some(), string, "string fields"),
            ("max_length", self.max_length.is_some(), string, "string fields"),
            ("min_items", self.min_items.is_some(), list, "list fields"),
            ("max_items", self.max_items.is_some(), list, "list fields"),
            ("fields", self.fields.is_some(), container, "group and list fields"),
        ];
        let mut messages: Vec<String> = settings
            .into_iter()
            .filter(|&(_, set, fits, _)| set && !fits)
            .map(|(setting, _, _, fits)| format!("{setting:?} applies to {fits}, not to {} field", self.kind.a_name()))
            .collect();
        if self.kind == DeclaredType::Group && self.default.is_some() {
            messages.push("a group has no default of its own; set defaults on its fields".to_owned());
        }
        messages
    }
}

impl Schema {
    /// Builds the schema that `fields` declare, or returns every mistake in them.
    ///
    /// The result is what the builders would make from the same settings, and it has passed [`Schema::check`].
    ///
    /// ```
    /// use athanor_core::schema::{DeclaredField, DeclaredType, Field, Schema};
    ///
    /// let mut epochs = DeclaredField::new("epochs", DeclaredType::Integer);
    /// epochs.default = Some(20.into());
    /// epochs.min = Some(1.into());
    /// assert_eq!(Schema::from_declared(&[epochs]), Ok(Schema::new().field(Field::integer("epochs").default(20).min(1))));
    ///
    /// let mut name = DeclaredField::new("name", DeclaredType::String);
    /// name.min = Some(1.into());
    /// let errors = Schema::from_declared(&[name]).unwrap_err();
    /// assert_eq!(errors.for_path("name"), Some("\"min\" applies to integer and float fields, not to a string field"));
    /// ```
    ///
    /// # Errors
    ///
    /// [`ValidationErrors`] keyed by field path (`api.timeout`, `pairs[].runs`).
    pub fn from_declared(fields: &[DeclaredField]) -> Result<Schema, ValidationErrors> {
        let mut errors = Vec::new();
        let schema = Schema { fields: convert_fields(fields, "", &mut errors) };
        finish(schema, errors, &[])
    }

    /// Reads declared fields from a JSON value tree (an array of field tables, as a manifest holds them) and
    /// builds their schema, or returns every mistake, each keyed by field path.
    ///
    /// Unlike deserialising [`DeclaredField`] with serde, this reads each setting on its own, so it reports all
    /// unknown keys and wrongly typed settings at once, each naming its field and key. `null` means absent, as
    /// it does in configurations.
    ///
    /// ```
    /// use athanor_core::schema::Schema;
    /// use serde_json::json;
    ///
    /// let errors = Schema::from_declared_json(&json!([
    ///     {"name": "epochs", "type": "int", "mni": 1},
    ///     {"name": "lr", "type": "float", "min": "0", "default": 0.1},
    ///     {"name": "api", "type": "group", "fields": [{"name": "timeout", "type": "integr"}]},
    /// ]))
    /// .unwrap_err();
    /// assert_eq!(errors.for_path("epochs"), Some("unknown key \"mni\" (did you mean \"min\"?)"));
    /// assert_eq!(errors.for_path("lr"), Some("min must be a number, not \"0\""));
    /// assert_eq!(
    ///     errors.for_path("api.timeout"),
    ///     Some("type must be one of: int, float, string, bool, group, list; not \"integr\"")
    /// );
    /// ```
    ///
    /// # Errors
    ///
    /// [`ValidationErrors`] keyed by field path. A field without a usable name is reported at its parent's
    /// path (`""` at the top) as "field #2: …", counting from 1.
    pub fn from_declared_json(fields: &Value) -> Result<Schema, ValidationErrors> {
        let mut reader = Reader::default();
        let declared = reader.read_list(fields, "", "", "the field list");
        let mut errors = reader.errors;
        let schema = Schema { fields: convert_fields(&declared, "", &mut errors) };
        finish(schema, errors, &reader.incomplete)
    }
}

/// Adds `check`'s findings to the conversion's. Containers some of whose fields could not be read are built
/// without them, so `check` would blame them for that ("is not a field" in a list default, "must declare at
/// least one field"); its findings at or under those paths are dropped, as the reading errors already cover
/// them.
fn finish(schema: Schema, mut errors: Vec<FieldError>, incomplete: &[String]) -> Result<Schema, ValidationErrors> {
    if let Err(found) = schema.check() {
        let within = |path: &str, container: &String| {
            path.strip_prefix(container.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        errors.extend(found.errors.into_iter().filter(|e| !incomplete.iter().any(|c| within(&e.path, c))));
    }
    ValidationErrors { errors }.into_result(schema)
}

/// Converts each field, reporting settings that do not fit at the field's path and leaving them out, so that
/// the rest of the field is still built and checked.
fn convert_fields(fields: &[DeclaredField], prefix: &str, errors: &mut Vec<FieldError>) -> Vec<Field> {
    fields.iter().map(|declared| convert_field(declared, &join_path(prefix, &declared.name), errors)).collect()
}

fn convert_field(declared: &DeclaredField, path: &str, errors: &mut Vec<FieldError>) -> Field {
    let mut problems = declared.misplaced_settings();
    // The children's errors follow the field's own, so a message list reads top-down.
    let mut children_errors = Vec::new();
    let mut children = |prefix: &str| match &declared.fields {
        Some(fields) => convert_fields(fields, prefix, &mut children_errors),
        None => Vec::new(),
    };
    let name = declared.name.as_str();
    let mut field = match declared.kind {
        DeclaredType::Integer => Field::integer(name),
        DeclaredType::Float => Field::float(name),
        DeclaredType::String => Field::string(name),
        DeclaredType::Boolean => Field::boolean(name),
        DeclaredType::Group => Field::group(name, children(path)),
        DeclaredType::List => Field::list(name, children(&format!("{path}[]"))),
    };
    // Each builder setter below runs only on a kind it fits, with a value of the right type, so none can panic.
    if let Some(label) = &declared.label {
        field = field.label(label);
    }
    if let Some(description) = &declared.description {
        field = field.description(description);
    }
    if declared.required {
        field = field.required();
    }
    if matches!(declared.kind, DeclaredType::Integer | DeclaredType::Float) {
        for (setting, value) in [("min", &declared.min), ("max", &declared.max), ("step", &declared.step)] {
            let Some(number) = value else { continue };
            match numeric_bound(&field.kind, number) {
                Ok(bound) if setting == "min" => field = field.min(bound),
                Ok(bound) if setting == "max" => field = field.max(bound),
                Ok(bound) => field = field.step(bound),
                Err(message) => problems.push(format!("{setting} {message}")),
            }
        }
    }
    if declared.kind == DeclaredType::String {
        if let Some(options) = &declared.options {
            field = field.options(options.iter().cloned());
        }
        if let Some(length) = declared.min_length {
            field = field.min_length(length);
        }
        if let Some(length) = declared.max_length {
            field = field.max_length(length);
        }
    }
    if declared.kind == DeclaredType::List {
        if let Some(count) = declared.min_items {
            field = field.min_items(count);
        }
        if let Some(count) = declared.max_items {
            field = field.max_items(count);
        }
    }
    if let Some(default) = declared.default.as_ref().filter(|_| declared.kind != DeclaredType::Group) {
        match default_problem(&field.kind, default) {
            None => field = field.default(default.clone()),
            Some(message) => problems.push(format!("default {message}")),
        }
    }
    errors.extend(problems.into_iter().map(|message| FieldError::new(path, message)));
    errors.append(&mut children_errors);
    field
}

/// A bound for this numeric field: any number for a float, a whole one for an integer.
fn numeric_bound(kind: &FieldKind, number: &Number) -> Result<Num, String> {
    match kind {
        FieldKind::Integer { .. } => {
            // Validating against an unconstrained integer gives the usual "must be a whole number".
            let unconstrained = FieldKind::Integer { default: None, min: None, max: None, step: None };
            let whole = check_scalar(&unconstrained, &Value::Number(number.clone()))?;
            Ok(Num::Int(whole.as_i64().expect("check_scalar returns an i64 for an integer kind")))
        }
        _ => Ok(Num::Float(number.as_f64().ok_or("must be a finite number")?)),
    }
}

/// Whether a default has the field's type. Its range, options and length are `check`'s business, so they are
/// reported once, in `check`'s words.
fn default_problem(kind: &FieldKind, value: &Value) -> Option<String> {
    let unconstrained = match kind {
        FieldKind::Integer { .. } => FieldKind::Integer { default: None, min: None, max: None, step: None },
        FieldKind::Float { .. } => FieldKind::Float { default: None, min: None, max: None, step: None },
        FieldKind::String { .. } => {
            FieldKind::String { default: None, options: None, min_length: None, max_length: None }
        }
        FieldKind::Boolean { .. } => FieldKind::Boolean { default: None },
        FieldKind::List { .. } => {
            return (!value.is_array()).then(|| format!("must be a list of item tables, not {}", describe(value)));
        }
        FieldKind::Group { .. } => return None,
    };
    check_scalar(&unconstrained, value).err()
}

/// Reads field tables from a value tree one setting at a time, collecting every problem.
#[derive(Default)]
struct Reader {
    errors: Vec<FieldError>,
    /// Paths of groups and lists with a field that could not be read at all.
    incomplete: Vec<String>,
}

impl Reader {
    /// Reads an array of field tables. `owner` is the path errors about the array itself go to, `prefix` the
    /// one its fields' paths start with (`pairs[]` for a list's items), and `what` names the array in messages.
    fn read_list(&mut self, value: &Value, owner: &str, prefix: &str, what: &str) -> Vec<DeclaredField> {
        let Some(tables) = value.as_array() else {
            self.errors.push(FieldError::new(
                owner,
                format!("{what} must be a list of field tables, not {}", describe(value)),
            ));
            return Vec::new();
        };
        let mut fields = Vec::new();
        for (index, table) in tables.iter().enumerate() {
            match self.read_field(table, index + 1, prefix) {
                Some(field) => fields.push(field),
                // At the top level nothing can be blamed on a missing field, so nothing needs excusing.
                None if !owner.is_empty() => self.incomplete.push(owner.to_owned()),
                None => {}
            }
        }
        fields
    }

    /// Reads one field table; `None` when it lacks a usable name or type, after reporting every problem in it.
    fn read_field(&mut self, value: &Value, number: usize, prefix: &str) -> Option<DeclaredField> {
        let Some(table) = value.as_object() else {
            self.errors
                .push(FieldError::new(prefix, format!("field #{number} must be a table, not {}", describe(value))));
            return None;
        };
        let name = match table.get("name") {
            Some(Value::String(name)) => Some(name.clone()),
            None | Some(Value::Null) => None,
            Some(other) => {
                self.errors.push(FieldError::new(
                    prefix,
                    format!("field #{number}: name must be a string, not {}", describe(other)),
                ));
                None
            }
        };
        // A name that cannot be part of a path (empty, or with '.') is reported by `check`; meanwhile problems
        // are located by position, as they are for a missing name.
        let (path, note) = match &name {
            Some(name) if name_problem(name).is_none() => (join_path(prefix, name), String::new()),
            _ => (prefix.to_owned(), format!("field #{number}: ")),
        };
        if name.is_none() && table.get("name").is_none_or(Value::is_null) {
            self.errors.push(FieldError::new(prefix, format!("field #{number} has no name")));
        }
        let mut at = FieldSettings { table, path: &path, note: &note, errors: &mut self.errors };
        let kind = at.kind();
        let mut declared = DeclaredField::new(name.clone().unwrap_or_default(), kind.unwrap_or(DeclaredType::Group));
        declared.label = at.take("label", "a string");
        declared.description = at.take("description", "a string");
        declared.required = at.take("required", "true or false").unwrap_or(false);
        declared.default = table.get("default").filter(|v| !v.is_null()).cloned();
        declared.min = at.take("min", "a number");
        declared.max = at.take("max", "a number");
        declared.step = at.take("step", "a number");
        declared.options = at.take("options", "a list of strings");
        declared.min_length = at.take("min_length", "a whole number, 0 or more");
        declared.max_length = at.take("max_length", "a whole number, 0 or more");
        declared.min_items = at.take("min_items", "a whole number, 0 or more");
        declared.max_items = at.take("max_items", "a whole number, 0 or more");
        at.unknown_keys();
        if let Some(fields) = table.get("fields").filter(|v| !v.is_null()) {
            let children_prefix = if kind == Some(DeclaredType::List) { format!("{path}[]") } else { path.clone() };
            declared.fields = Some(self.read_list(fields, &path, &children_prefix, "fields"));
        }
        (name.is_some() && kind.is_some()).then_some(declared)
    }
}

/// One field table being read, and where its problems are reported.
struct FieldSettings<'a> {
    table: &'a Map<String, Value>,
    path: &'a str,
    /// "field #2: " when the field has no usable name, so the message says which one.
    note: &'a str,
    errors: &'a mut Vec<FieldError>,
}

impl FieldSettings<'_> {
    fn push(&mut self, message: String) {
        self.errors.push(FieldError::new(self.path, format!("{}{message}", self.note)));
    }

    fn kind(&mut self) -> Option<DeclaredType> {
        match self.table.get("type") {
            None | Some(Value::Null) => {
                self.push(format!("type is missing (one of: {TYPE_CHOICES})"));
                None
            }
            Some(value) => {
                let kind = value.as_str().and_then(DeclaredType::parse);
                if kind.is_none() {
                    self.push(format!("type must be one of: {TYPE_CHOICES}; not {}", describe(value)));
                }
                kind
            }
        }
    }

    /// The setting `key` as a `T`, or `None` when it is absent, `null`, or not a `T` (then reported as "`key`
    /// must be `expected`, not …").
    fn take<T: serde::de::DeserializeOwned>(&mut self, key: &str, expected: &str) -> Option<T> {
        let value = self.table.get(key).filter(|v| !v.is_null())?;
        match T::deserialize(value) {
            Ok(parsed) => Some(parsed),
            Err(_) => {
                self.push(format!("{key} must be {expected}, not {}", describe(value)));
                None
            }
        }
    }

    fn unknown_keys(&mut self) {
        let unknown: Vec<&String> = self.table.keys().filter(|k| !KEYS.contains(&k.as_str())).collect();
        for key in unknown {
            let hint = match KEYS.iter().find(|known| looks_like(key, known)) {
                Some(known) => format!("did you mean {known:?}?"),
                None => format!("a field's keys are: {}", KEYS.join(", ")),
            };
            self.push(format!("unknown key {key:?} ({hint})"));
        }
    }
}

/// A value as a message quotes it: `"1"`, `3`, `true`, "a list", "a table".
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_owned(),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => value.to_string(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a table".to_owned(),
    }
}

/// Whether `typed` is probably a misspelling of `known`: one edit away (a letter wrong, missing, extra, or two
/// neighbours swapped, as in `mni`), or two for longer words. Short keys get only one, or `id` would suggest `min`.
fn looks_like(typed: &str, known: &str) -> bool {
    let allowed = if known.chars().count() <= 4 { 1 } else { 2 };
    edit_distance(typed, known) <= allowed
}

/// Edit distance counting a swap of neighbouring characters as one edit (optimal string alignment), in
/// characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between the first i characters of a and the first j of b.
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitution.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::testing::pairs;
    use serde_json::json;

    /// The `[[field]]` tables of a TOML text, read the way a manifest reader reads them.
    fn from_toml(text: &str) -> Result<Schema, ValidationErrors> {
        let document: toml::Table = toml::from_str(text).expect("the test's TOML parses");
        let fields = document.get("field").cloned().unwrap_or(toml::Value::Array(Vec::new()));
        Schema::from_declared_json(&serde_json::to_value(fields).expect("TOML values are JSON values"))
    }

    /// The same tables deserialised by serde into [`DeclaredField`]s, then converted.
    fn from_toml_typed(text: &str) -> Result<Schema, ValidationErrors> {
        #[derive(Deserialize)]
        struct Document {
            #[serde(default)]
            field: Vec<DeclaredField>,
        }
        let document: Document = toml::from_str(text).expect("the test's TOML deserialises");
        Schema::from_declared(&document.field)
    }

    fn sorted_errors(result: Result<Schema, ValidationErrors>) -> Vec<(String, String)> {
        let mut found: Vec<_> =
            result.expect_err("expected errors").errors.into_iter().map(|e| (e.path, e.message)).collect();
        found.sort();
        found
    }

    #[test]
    fn every_kind_and_setting_reads_into_the_schema_the_builders_make() {
        let cases: Vec<(&str, &str, Field)> = vec![
            (
                "int, every setting",
                r#"
                [[field]]
                name = "epochs"
                type = "int"
                label = "Epochs"
                description = "Passes over the data"
                required = true
                default = 20
                min = 1
                max = 1000
                step = 1
                "#,
                Field::integer("epochs")
                    .label("Epochs")
                    .description("Passes over the data")
                    .required()
                    .default(20)
                    .min(1)
                    .max(1000)
                    .step(1),
            ),
            ("integer spelled out", "[[field]]\nname = \"n\"\ntype = \"integer\"", Field::integer("n")),
            ("int bound written as 5.0", "[[field]]\nname = \"n\"\ntype = \"int\"\nmin = 5.0", Field::integer("n").min(5)),
            (
                "float with integer bounds",
                "[[field]]\nname = \"t\"\ntype = \"float\"\ndefault = 0.0\nmin = 0\nmax = 2\nstep = 0.1",
                Field::float("t").default(0.0).min(0.0).max(2.0).step(0.1),
            ),
            (
                "float default written as an integer",
                "[[field]]\nname = \"t\"\ntype = \"float\"\ndefault = 1",
                Field::float("t").default(1.0),
            ),
            (
                "string with options",
                "[[field]]\nname = \"model\"\ntype = \"string\"\noptions = [\"gpt-4\", \"claude-3\"]\ndefault = \"gpt-4\"",
                Field::string("model").options(["gpt-4", "claude-3"]).default("gpt-4"),
            ),
            (
                "string with lengths",
                "[[field]]\nname = \"s\"\ntype = \"string\"\nmin_length = 1\nmax_length = 20",
                Field::string("s").min_length(1).max_length(20),
            ),
            ("bool", "[[field]]\nname = \"b\"\ntype = \"bool\"\ndefault = true", Field::boolean("b").default(true)),
            ("boolean spelled out", "[[field]]\nname = \"b\"\ntype = \"boolean\"", Field::boolean("b")),
            (
                "group",
                r#"
                [[field]]
                name = "api"
                type = "group"
                label = "API"
                  [[field.fields]]
                  name = "timeout"
                  type = "int"
                  default = 30
                  [[field.fields]]
                  name = "region"
                  type = "string"
                "#,
                Field::group("api", vec![Field::integer("timeout").default(30), Field::string("region")]).label("API"),
            ),
            (
                "list with every setting",
                r#"
                [[field]]
                name = "pairs"
                type = "list"
                min_items = 1
                max_items = 3
                default = [{ a = "x" }]
                  [[field.fields]]
                  name = "a"
                  type = "string"
                  required = true
                  [[field.fields]]
                  name = "runs"
                  type = "int"
                  default = 3
                "#,
                Field::list("pairs", vec![Field::string("a").required(), Field::integer("runs").default(3)])
                    .min_items(1)
                    .max_items(3)
                    .default_items(json!([{"a": "x"}])),
            ),
            (
                "list inside a group",
                r#"
                [[field]]
                name = "g"
                type = "group"
                  [[field.fields]]
                  name = "l"
                  type = "list"
                    [[field.fields.fields]]
                    name = "on"
                    type = "bool"
                "#,
                Field::group("g", vec![Field::list("l", vec![Field::boolean("on")])]),
            ),
        ];
        for (name, text, expected) in cases {
            let expected = Schema::new().field(expected);
            assert_eq!(from_toml(text), Ok(expected.clone()), "case {name:?}, read setting by setting");
            assert_eq!(from_toml_typed(text), Ok(expected), "case {name:?}, deserialised by serde");
        }
    }

    #[test]
    fn fields_keep_their_order_and_no_fields_is_an_empty_schema() {
        let text = "[[field]]\nname = \"b\"\ntype = \"int\"\n[[field]]\nname = \"a\"\ntype = \"bool\"";
        assert_eq!(from_toml(text), Ok(Schema::new().field(Field::integer("b")).field(Field::boolean("a"))));
        assert_eq!(from_toml(""), Ok(Schema::new()));
        assert_eq!(Schema::from_declared(&[]), Ok(Schema::new()));
    }

    #[test]
    fn every_kind_of_mistake_is_reported_at_its_field_path() {
        /// The case's name, one field's TOML table, and the `(path, message)` errors it must produce.
        type MistakeCase = (&'static str, &'static str, Vec<(&'static str, &'static str)>);
        let cases: Vec<MistakeCase> = vec![
            (
                "min on a string",
                "name = \"s\"\ntype = \"string\"\nmin = 1",
                vec![("s", "\"min\" applies to integer and float fields, not to a string field")],
            ),
            (
                "options on a boolean",
                "name = \"b\"\ntype = \"bool\"\noptions = [\"a\"]",
                vec![("b", "\"options\" applies to string fields, not to a boolean field")],
            ),
            (
                "min_items on an int",
                "name = \"n\"\ntype = \"int\"\nmin_items = 1",
                vec![("n", "\"min_items\" applies to list fields, not to an integer field")],
            ),
            (
                "fields on an int",
                "name = \"n\"\ntype = \"int\"\nfields = [{ name = \"x\", type = \"int\" }]",
                vec![("n", "\"fields\" applies to group and list fields, not to an integer field")],
            ),
            (
                "default on a group",
                "name = \"g\"\ntype = \"group\"\ndefault = 1\nfields = [{ name = \"x\", type = \"int\" }]",
                vec![("g", "a group has no default of its own; set defaults on its fields")],
            ),
            (
                "group without fields",
                "name = \"g\"\ntype = \"group\"",
                vec![("g", "a group must declare at least one field")],
            ),
            (
                "list without fields",
                "name = \"l\"\ntype = \"list\"",
                vec![("l", "a list must declare at least one item field")],
            ),
            (
                "int default of the wrong type",
                "name = \"n\"\ntype = \"int\"\ndefault = \"5\"",
                vec![("n", "default must be a number")],
            ),
            (
                "int default fractional",
                "name = \"n\"\ntype = \"int\"\ndefault = 2.5",
                vec![("n", "default must be a whole number")],
            ),
            (
                "float default of the wrong type",
                "name = \"f\"\ntype = \"float\"\ndefault = \"0.1\"",
                vec![("f", "default must be a number")],
            ),
            (
                "string default of the wrong type",
                "name = \"s\"\ntype = \"string\"\ndefault = 5",
                vec![("s", "default must be a string")],
            ),
            (
                "bool default of the wrong type",
                "name = \"b\"\ntype = \"bool\"\ndefault = \"yes\"",
                vec![("b", "default must be true or false")],
            ),
            (
                "list default not a list",
                "name = \"l\"\ntype = \"list\"\ndefault = 3\nfields = [{ name = \"x\", type = \"int\" }]",
                vec![("l", "default must be a list of item tables, not 3")],
            ),
            (
                "fractional int bound",
                "name = \"n\"\ntype = \"int\"\nmin = 0.5\nstep = 1.5",
                vec![("n", "min must be a whole number"), ("n", "step must be a whole number")],
            ),
            (
                "min greater than max",
                "name = \"t\"\ntype = \"float\"\nmin = 2\nmax = 1",
                vec![("t", "min (2) is greater than max (1)")],
            ),
            (
                "default outside its range",
                "name = \"n\"\ntype = \"int\"\ndefault = 0\nmin = 1",
                vec![("n", "default must be at least 1")],
            ),
            (
                "default not an option",
                "name = \"s\"\ntype = \"string\"\noptions = [\"a\"]\ndefault = \"b\"",
                vec![("s", "default must be one of: a")],
            ),
            (
                "typo in a key",
                "name = \"n\"\ntype = \"int\"\nmni = 1",
                vec![("n", "unknown key \"mni\" (did you mean \"min\"?)")],
            ),
            (
                "unknown key",
                "name = \"n\"\ntype = \"int\"\ncolour = \"red\"",
                vec![(
                    "n",
                    "unknown key \"colour\" (a field's keys are: name, type, label, description, required, \
                    default, min, max, step, options, min_length, max_length, min_items, max_items, fields)",
                )],
            ),
            (
                "min written as a string",
                "name = \"n\"\ntype = \"int\"\nmin = \"1\"",
                vec![("n", "min must be a number, not \"1\"")],
            ),
            (
                "required written as a string",
                "name = \"n\"\ntype = \"int\"\nrequired = \"yes\"",
                vec![("n", "required must be true or false, not \"yes\"")],
            ),
            (
                "options written as a string",
                "name = \"s\"\ntype = \"string\"\noptions = \"a, b\"",
                vec![("s", "options must be a list of strings, not \"a, b\"")],
            ),
            (
                "negative length",
                "name = \"s\"\ntype = \"string\"\nmin_length = -1",
                vec![("s", "min_length must be a whole number, 0 or more, not -1")],
            ),
            (
                "label not a string",
                "name = \"s\"\ntype = \"string\"\nlabel = 3",
                vec![("s", "label must be a string, not 3")],
            ),
            (
                "missing type",
                "name = \"n\"",
                vec![("n", "type is missing (one of: int, float, string, bool, group, list)")],
            ),
            (
                "unknown type",
                "name = \"n\"\ntype = \"integr\"",
                vec![("n", "type must be one of: int, float, string, bool, group, list; not \"integr\"")],
            ),
            ("missing name", "type = \"int\"", vec![("", "field #1 has no name")]),
            (
                "name not a string",
                "name = 5\ntype = \"int\"\nmni = 1",
                vec![
                    ("", "field #1: name must be a string, not 5"),
                    ("", "field #1: unknown key \"mni\" (did you mean \"min\"?)"),
                ],
            ),
            (
                "name unusable in a path",
                "name = \"a.b\"\ntype = \"int\"\nmin = \"x\"",
                vec![
                    ("", "field #1: min must be a number, not \"x\""),
                    ("", "field name must not contain '.', '[' or ']' (field #1 is \"a.b\")"),
                ],
            ),
            (
                "fields not a list",
                "name = \"g\"\ntype = \"group\"\nfields = 3",
                vec![
                    ("g", "fields must be a list of field tables, not 3"),
                    ("g", "a group must declare at least one field"),
                ],
            ),
        ];
        for (name, table, expected) in cases {
            let text = format!("[[field]]\n{table}");
            assert_eq!(sorted_errors(from_toml(&text)), pairs(&expected), "case {name:?}");
        }
    }

    #[test]
    fn nested_mistakes_carry_group_and_item_paths() {
        let text = r#"
            [[field]]
            name = "api"
            type = "group"
              [[field.fields]]
              name = "timeout"
              type = "string"
              min = 1
            [[field]]
            name = "pairs"
            type = "list"
              [[field.fields]]
              name = "a"
              type = "string"
              max = 3
              [[field.fields]]
              name = "runs"
              type = "int"
              min = 5
              max = 1
            [[field]]
            name = "pairs"
            type = "bool"
        "#;
        assert_eq!(
            sorted_errors(from_toml(text)),
            pairs(&[
                ("api.timeout", "\"min\" applies to integer and float fields, not to a string field"),
                ("pairs[].a", "\"max\" applies to integer and float fields, not to a string field"),
                ("pairs[].runs", "min (5) is greater than max (1)"),
                ("pairs", "duplicate field name"),
            ])
        );
    }

    #[test]
    fn an_unreadable_item_field_is_not_also_blamed_on_the_list_default() {
        // `b` has no type, so the list is built without it; its default item's `b` is not "not a field".
        let text = r#"
            [[field]]
            name = "pairs"
            type = "list"
            default = [{ a = "x", b = "y" }]
              [[field.fields]]
              name = "a"
              type = "string"
              [[field.fields]]
              name = "b"
            [[field]]
            name = "n"
            type = "int"
            default = 0
            min = 1
        "#;
        assert_eq!(
            sorted_errors(from_toml(text)),
            pairs(&[
                ("pairs[].b", "type is missing (one of: int, float, string, bool, group, list)"),
                ("n", "default must be at least 1"),
            ])
        );
    }

    #[test]
    fn a_malformed_field_list_is_one_error_not_a_crash() {
        assert_eq!(
            sorted_errors(Schema::from_declared_json(&json!({"name": "x"}))),
            pairs(&[("", "the field list must be a list of field tables, not a table")])
        );
        assert_eq!(
            sorted_errors(Schema::from_declared_json(&json!([1, {"name": "ok", "type": "int"}]))),
            pairs(&[("", "field #1 must be a table, not 1")])
        );
        // `null` means absent, as in configurations.
        assert_eq!(
            Schema::from_declared_json(&json!([{"name": "n", "type": "int", "min": null, "default": null}])),
            Ok(Schema::new().field(Field::integer("n")))
        );
    }

    #[test]
    fn misspelt_keys_get_a_suggestion_and_strangers_the_list() {
        let suggestion = |typed: &str| KEYS.iter().find(|known| looks_like(typed, known)).copied();
        assert_eq!(suggestion("mni"), Some("min"));
        assert_eq!(suggestion("lable"), Some("label"));
        assert_eq!(suggestion("defualt"), Some("default"));
        assert_eq!(suggestion("min_lenght"), Some("min_length"));
        assert_eq!(suggestion("requird"), Some("required"));
        assert_eq!(suggestion("id"), None);
        assert_eq!(suggestion("colour"), None);
    }

    #[test]
    fn serde_rejects_unknown_keys_too() {
        let error = toml::from_str::<DeclaredField>("name = \"n\"\ntype = \"int\"\nmni = 1").unwrap_err();
        assert!(error.to_string().contains("unknown field `mni`"), "{error}");
        let error = toml::from_str::<DeclaredField>("name = \"n\"\ntype = \"integr\"").unwrap_err();
        assert!(error.to_string().contains("unknown variant `integr`"), "{error}");
    }

    #[test]
    fn the_reader_knows_exactly_the_keys_serde_knows() {
        let mut full = DeclaredField::new("pairs", DeclaredType::List);
        full.label = Some("Pairs".into());
        full.description = Some("Models to compare".into());
        full.required = true;
        full.default = Some(json!([]));
        full.min = Some(1.into());
        full.max = Some(2.into());
        full.step = Some(1.into());
        full.options = Some(vec!["a".into()]);
        full.min_length = Some(1);
        full.max_length = Some(2);
        full.min_items = Some(1);
        full.max_items = Some(2);
        full.fields = Some(vec![DeclaredField::new("a", DeclaredType::String)]);
        let serialised = serde_json::to_value(&full).unwrap();
        let mut serde_keys: Vec<&str> = serialised.as_object().unwrap().keys().map(String::as_str).collect();
        let mut reader_keys = KEYS.to_vec();
        serde_keys.sort_unstable();
        reader_keys.sort_unstable();
        assert_eq!(serde_keys, reader_keys);
        // And the reader reads back what serde wrote (conversion errors aside: this field is deliberately overfull).
        let mut reader = Reader::default();
        assert_eq!(reader.read_list(&json!([serialised]), "", "", "the field list"), vec![full]);
        assert!(reader.errors.is_empty(), "{:?}", reader.errors);
    }
}
