//! Reading the experiment manifest, `athanor.toml`, into checked [`CommandSpec`]s.
//!
//! ```toml
//! [[experiment]]
//! name = "llm_eval"
//! description = "Simulates evaluating a language model on a question set."
//! version = "1.0.0"
//! command = ["python3", "demos/python/llm_eval.py"]   # the program and its arguments, never a shell line
//! cwd = "."                                            # optional; relative to this file's folder
//! env = { PYTHONPATH = "clients/python" }              # optional; added to the server's environment
//!
//! [[experiment.field]]                                 # the configuration schema, one table per field
//! name = "model"
//! type = "string"
//! options = ["gpt-4", "claude-3"]
//! default = "gpt-4"
//! ```
//!
//! The field tables are the declared form of a schema ([`athanor_core::schema::DeclaredField`]): every kind and
//! setting a Rust experiment's schema has.
//!
//! A manifest is all or nothing: [`parse`] returns every experiment, or every problem in the file. Problems are
//! collected across all experiments (each `[[experiment]]` table and each of its keys is read on its own, so one
//! mistake never hides another) and each names the file, the experiment and the field it is about, because the
//! person reading them is editing that file.

use super::CommandSpec;
use athanor_core::schema::FieldError;
use athanor_core::{ExperimentDefinition, ExperimentName, NameError, Schema};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The keys an `[[experiment]]` table may have, in the order messages list them.
const EXPERIMENT_KEYS: [&str; 7] = ["name", "description", "version", "command", "cwd", "env", "field"];

/// Reads and checks the manifest at `path`.
///
/// # Errors
///
/// When the file cannot be read (one error), or every problem [`parse`] finds.
pub fn load(path: &Path) -> Result<Vec<CommandSpec>, ManifestErrors> {
    let text = std::fs::read_to_string(path).map_err(|error| ManifestErrors {
        errors: vec![ManifestError::about_file(path, format!("cannot read the experiment manifest: {error}"))],
    })?;
    parse(&text, path)
}

/// Reads and checks manifest text. `path` is where it came from: messages name it, and a relative `cwd` is
/// resolved against its folder. A manifest without experiments is valid and declares none.
///
/// # Errors
///
/// Every problem in the file: a TOML syntax error (one error, with line and column), or else every mistake in
/// every experiment.
pub fn parse(text: &str, path: &Path) -> Result<Vec<CommandSpec>, ManifestErrors> {
    let mut errors = Vec::new();
    let document: toml::Table = match toml::from_str(text) {
        Ok(document) => document,
        Err(error) => {
            return Err(ManifestErrors { errors: vec![ManifestError::about_file(path, syntax_message(text, &error))] })
        }
    };
    for key in document.keys().filter(|key| *key != "experiment") {
        errors.push(ManifestError::about_file(
            path,
            format!("unknown key {key:?}: the file holds only [[experiment]] tables"),
        ));
    }
    let tables: &[toml::Value] = match document.get("experiment") {
        None => &[],
        Some(toml::Value::Array(tables)) => tables,
        Some(other) => {
            errors.push(ManifestError::about_file(
                path,
                format!("experiment must be a list of tables, written [[experiment]], not {}", describe(other)),
            ));
            &[]
        }
    };
    let mut specs = Vec::new();
    let mut names_seen = BTreeSet::new();
    for (index, table) in tables.iter().enumerate() {
        let mut reader = ExperimentReader {
            file: path,
            which: ExperimentRef::Position(index + 1),
            errors: &mut errors,
            failed: false,
        };
        if let Some(spec) = reader.read(table, &mut names_seen) {
            specs.push(spec);
        }
    }
    if errors.is_empty() {
        Ok(specs)
    } else {
        Err(ManifestErrors { errors })
    }
}

/// Which experiment of a manifest an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExperimentRef {
    /// By its name, when it has a usable one.
    Name(String),
    /// By its position among the file's `[[experiment]]` tables, counting from 1, when it has no usable name.
    Position(usize),
}

impl fmt::Display for ExperimentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExperimentRef::Name(name) => write!(f, "experiment {name:?}"),
            ExperimentRef::Position(position) => write!(f, "experiment #{position}"),
        }
    }
}

/// One problem in a manifest, located as precisely as it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest file.
    pub file: PathBuf,
    /// The experiment it is about; `None` for the file as a whole (a syntax error, an unknown top-level key).
    pub experiment: Option<ExperimentRef>,
    /// The configuration field it is about, as a path (`temperature`, `api.timeout`, `pairs[].a`); `None` when
    /// it is about the experiment itself (its command, its name) or the file.
    pub field: Option<String>,
    /// What is wrong, in words for the person editing the file.
    pub message: String,
}

impl ManifestError {
    fn about_file(file: &Path, message: impl Into<String>) -> ManifestError {
        ManifestError { file: file.to_owned(), experiment: None, field: None, message: message.into() }
    }
}

/// `athanor.toml: experiment "llm_eval": field "temperature": min (2) is greater than max (1)`.
impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file.display())?;
        if let Some(experiment) = &self.experiment {
            write!(f, "{experiment}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field {field:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a manifest, in file order. Displays one problem per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestErrors {
    /// The problems, in file order; never empty when returned as an `Err`.
    pub errors: Vec<ManifestError>,
}

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// A TOML syntax error on one line: `line 3, column 7: invalid string` (toml's own rendering spans several lines
/// with a snippet of the file, and the server lists problems one per line).
fn syntax_message(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', "; ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or(before).chars().count() + 1;
            format!("TOML syntax error at line {line}, column {column}: {message}")
        }
        None => format!("TOML syntax error: {message}"),
    }
}

/// Reads one `[[experiment]]` table, reporting every problem in it.
struct ExperimentReader<'a> {
    file: &'a Path,
    /// How errors name the experiment: its position until its name has been read.
    which: ExperimentRef,
    errors: &'a mut Vec<ManifestError>,
    /// Whether any problem was reported for this experiment.
    failed: bool,
}

impl ExperimentReader<'_> {
    fn push(&mut self, field: Option<String>, message: impl Into<String>) {
        self.failed = true;
        self.errors.push(ManifestError {
            file: self.file.to_owned(),
            experiment: Some(self.which.clone()),
            field,
            message: message.into(),
        });
    }

    /// The spec, or `None` after reporting why not.
    fn read(&mut self, value: &toml::Value, names_seen: &mut BTreeSet<String>) -> Option<CommandSpec> {
        let Some(table) = value.as_table() else {
            self.push(None, format!("must be a table, written [[experiment]], not {}", describe(value)));
            return None;
        };
        let name = self.name(table, names_seen);
        for key in table.keys().filter(|key| !EXPERIMENT_KEYS.contains(&key.as_str())) {
            let hint = if key == "fields" {
                "the fields are [[experiment.field]] tables, singular".to_owned()
            } else {
                format!("an experiment's keys are: {}", EXPERIMENT_KEYS.join(", "))
            };
            self.push(None, format!("unknown key {key:?} ({hint})"));
        }
        let description = self.optional_string(table, "description").unwrap_or_default();
        let version = self.version(table);
        let command = self.command(table);
        let cwd = self.cwd(table);
        let env = self.env(table);
        let schema = self.schema(table);
        if self.failed {
            return None;
        }
        Some(CommandSpec {
            definition: ExperimentDefinition { name: name?, description, version: version?, schema: schema? },
            command: command?,
            cwd: cwd?,
            env: env?,
            manifest: self.file.to_owned(),
        })
    }

    fn name(&mut self, table: &toml::Table, names_seen: &mut BTreeSet<String>) -> Option<ExperimentName> {
        let raw = match table.get("name") {
            None => {
                self.push(None, "name is missing");
                return None;
            }
            Some(toml::Value::String(raw)) => raw,
            Some(other) => {
                self.push(None, format!("name must be a string, not {}", describe(other)));
                return None;
            }
        };
        let name = match ExperimentName::parse(raw) {
            Ok(name) => name,
            Err(NameError::Empty { .. }) => {
                self.push(None, "name must not be empty");
                return None;
            }
            Err(NameError::TooLong { max, len, .. }) => {
                self.push(None, format!("name must be at most {max} characters (it has {len})"));
                return None;
            }
            Err(NameError::Nul { .. }) => {
                self.push(None, "name must not contain NUL characters");
                return None;
            }
        };
        self.which = ExperimentRef::Name(name.to_string());
        if !names_seen.insert(name.to_string()) {
            self.push(None, "another experiment in this file has the same name; names must be unique");
        }
        Some(name)
    }

    fn optional_string(&mut self, table: &toml::Table, key: &str) -> Option<String> {
        match table.get(key)? {
            toml::Value::String(text) => Some(text.clone()),
            other => {
                self.push(None, format!("{key} must be a string, not {}", describe(other)));
                None
            }
        }
    }

    fn version(&mut self, table: &toml::Table) -> Option<String> {
        if !table.contains_key("version") {
            self.push(None, "version is missing, e.g. version = \"1.0.0\" (every run records it)");
            return None;
        }
        let version = self.optional_string(table, "version")?;
        if version.trim().is_empty() {
            self.push(None, "version must not be empty");
            return None;
        }
        Some(version)
    }

    fn command(&mut self, table: &toml::Table) -> Option<Vec<String>> {
        let arguments = match table.get("command") {
            None => {
                self.push(None, "command is missing: the program and its arguments, e.g. [\"python3\", \"eval.py\"]");
                return None;
            }
            Some(toml::Value::Array(arguments)) => arguments,
            Some(toml::Value::String(line)) => {
                self.push(
                    None,
                    format!(
                        "command must be an argument list such as [\"python3\", \"eval.py\"], not a shell line \
                         ({line:?}): no shell splits or expands it"
                    ),
                );
                return None;
            }
            Some(other) => {
                self.push(
                    None,
                    format!(
                        "command must be an argument list such as [\"python3\", \"eval.py\"], not {}",
                        describe(other)
                    ),
                );
                return None;
            }
        };
        if arguments.is_empty() {
            self.push(None, "command must not be empty: its first element is the program to run");
            return None;
        }
        let mut command = Vec::new();
        for (index, argument) in arguments.iter().enumerate() {
            match argument {
                toml::Value::String(text) if !text.is_empty() => command.push(text.clone()),
                toml::Value::String(_) => self.push(None, format!("command[{index}] must not be empty")),
                other => self.push(None, format!("command[{index}] must be a string, not {}", describe(other))),
            }
        }
        (command.len() == arguments.len()).then_some(command)
    }

    /// The working directory: `cwd` against the manifest's folder (an absolute `cwd` stays as it is), or the
    /// folder itself. It must exist now, so a typo is reported when the file is read, not when a run starts.
    fn cwd(&mut self, table: &toml::Table) -> Option<PathBuf> {
        let folder = match self.file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let written = if table.contains_key("cwd") { self.optional_string(table, "cwd")? } else { ".".to_owned() };
        // `components()` drops the inner `.`s, so `cwd = "."` is the folder itself, not `folder/.`.
        let cwd: PathBuf = folder.join(&written).components().collect();
        match std::fs::metadata(&cwd) {
            Ok(metadata) if metadata.is_dir() => Some(cwd),
            Ok(_) => {
                self.push(None, format!("cwd {written:?} ({}) is not a directory", cwd.display()));
                None
            }
            Err(error) => {
                self.push(None, format!("cwd {written:?} ({}) cannot be used: {error}", cwd.display()));
                None
            }
        }
    }

    fn env(&mut self, table: &toml::Table) -> Option<BTreeMap<String, String>> {
        let variables = match table.get("env") {
            None => return Some(BTreeMap::new()),
            Some(toml::Value::Table(variables)) => variables,
            Some(other) => {
                self.push(
                    None,
                    format!(
                        "env must be a table of strings such as {{ PYTHONPATH = \"lib\" }}, not {}",
                        describe(other)
                    ),
                );
                return None;
            }
        };
        let mut env = BTreeMap::new();
        let mut ok = true;
        for (key, value) in variables {
            // The operating system cannot carry these, so spawning would fail on every run.
            if key.is_empty() || key.contains(['=', '\0']) {
                self.push(None, format!("env: {key:?} is not a usable variable name"));
                ok = false;
            }
            match value {
                toml::Value::String(text) if text.contains('\0') => {
                    self.push(None, format!("env.{key} must not contain a NUL character"));
                    ok = false;
                }
                toml::Value::String(text) => {
                    env.insert(key.clone(), text.clone());
                }
                other => {
                    self.push(None, format!("env.{key} must be a string, not {}", describe(other)));
                    ok = false;
                }
            }
        }
        ok.then_some(env)
    }

    fn schema(&mut self, table: &toml::Table) -> Option<Schema> {
        let fields = match table.get("field") {
            None => return Some(Schema::new()),
            Some(toml::Value::Table(_)) => {
                self.push(None, "field must be a list of tables, written [[experiment.field]], not [experiment.field]");
                return None;
            }
            Some(fields) => fields,
        };
        match Schema::from_declared_json(&to_json(fields)) {
            Ok(schema) => Some(schema),
            Err(errors) => {
                for FieldError { path, message } in errors.errors {
                    self.push((!path.is_empty()).then_some(path), message);
                }
                None
            }
        }
    }
}

/// A TOML value as the JSON value tree the schema reader takes. TOML has two things JSON lacks: a date-time
/// becomes its TOML text (so it reads as a string), and `nan`/`inf` become the strings `"nan"`/`"inf"`, which
/// the reader then refuses where a number is needed, quoting them.
fn to_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(text) => serde_json::Value::from(text.as_str()),
        toml::Value::Integer(number) => serde_json::Value::from(*number),
        toml::Value::Float(number) => match serde_json::Number::from_f64(*number) {
            Some(finite) => serde_json::Value::Number(finite),
            // Spelled as in TOML, so the message quotes what the user wrote.
            None if number.is_nan() => serde_json::Value::from("nan"),
            None if *number > 0.0 => serde_json::Value::from("inf"),
            None => serde_json::Value::from("-inf"),
        },
        toml::Value::Boolean(flag) => serde_json::Value::Bool(*flag),
        toml::Value::Datetime(datetime) => serde_json::Value::from(datetime.to_string()),
        toml::Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        toml::Value::Table(table) => {
            serde_json::Value::Object(table.iter().map(|(key, value)| (key.clone(), to_json(value))).collect())
        }
    }
}

/// A value as a message quotes it: `"x"`, `3`, `true`, "a list", "a table".
fn describe(value: &toml::Value) -> String {
    match value {
        toml::Value::Array(_) => "a list".to_owned(),
        toml::Value::Table(_) => "a table".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use athanor_core::schema::Field;
    use serde_json::json;

    /// A folder to hold a manifest, with a `scripts` sub-folder for `cwd` to point at.
    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir(dir.path().join("scripts")).expect("the scripts folder");
        dir
    }

    /// The problems of a manifest that must be refused, one display line each.
    fn problems(text: &str, path: &Path) -> Vec<String> {
        parse(text, path).expect_err("the manifest must be refused").to_string().lines().map(str::to_owned).collect()
    }

    #[test]
    fn a_valid_manifest_with_every_field_kind() {
        let dir = folder();
        let path = dir.path().join("athanor.toml");
        let text = r#"
            [[experiment]]
            name = "everything"
            description = "Every field kind."
            version = "2.1"
            command = ["python3", "run.py", "--fast"]
            cwd = "scripts"
            env = { PYTHONPATH = "lib", MODE = "test" }

            [[experiment.field]]
            name = "epochs"
            type = "int"
            label = "Epochs"
            default = 20
            min = 1
            max = 1000

            [[experiment.field]]
            name = "lr"
            type = "float"
            default = 0.01
            min = 0
            max = 1
            step = 0.001

            [[experiment.field]]
            name = "model"
            type = "string"
            options = ["gpt-4", "claude-3"]
            required = true

            [[experiment.field]]
            name = "verbose"
            type = "bool"
            default = false
            description = "Log every step"

            [[experiment.field]]
            name = "api"
            type = "group"
              [[experiment.field.fields]]
              name = "timeout"
              type = "int"
              default = 30

            [[experiment.field]]
            name = "pairs"
            type = "list"
            min_items = 1
            default = [{ a = "x", b = "y" }]
              [[experiment.field.fields]]
              name = "a"
              type = "string"
              required = true
              [[experiment.field.fields]]
              name = "b"
              type = "string"
              required = true

            [[experiment]]
            name = "bare"
            version = "1"
            command = ["./bare"]
        "#;
        let specs = parse(text, &path).expect("a valid manifest");
        let schema = Schema::new()
            .field(Field::integer("epochs").label("Epochs").default(20).min(1).max(1000))
            .field(Field::float("lr").default(0.01).min(0.0).max(1.0).step(0.001))
            .field(Field::string("model").options(["gpt-4", "claude-3"]).required())
            .field(Field::boolean("verbose").default(false).description("Log every step"))
            .field(Field::group("api", vec![Field::integer("timeout").default(30)]))
            .field(
                Field::list("pairs", vec![Field::string("a").required(), Field::string("b").required()])
                    .min_items(1)
                    .default_items(json!([{"a": "x", "b": "y"}])),
            );
        assert_eq!(
            specs,
            vec![
                CommandSpec {
                    definition: ExperimentDefinition::new("everything", "2.1")
                        .description("Every field kind.")
                        .schema(schema),
                    command: vec!["python3".into(), "run.py".into(), "--fast".into()],
                    cwd: dir.path().join("scripts"),
                    env: BTreeMap::from([("MODE".into(), "test".into()), ("PYTHONPATH".into(), "lib".into())]),
                    manifest: path.clone(),
                },
                CommandSpec {
                    definition: ExperimentDefinition::new("bare", "1"),
                    command: vec!["./bare".into()],
                    cwd: dir.path().to_owned(),
                    env: BTreeMap::new(),
                    manifest: path.clone(),
                },
            ]
        );
    }

    #[test]
    fn an_empty_manifest_declares_nothing() {
        let dir = folder();
        let path = dir.path().join("athanor.toml");
        assert_eq!(parse("", &path), Ok(Vec::new()));
        assert_eq!(parse("# no experiments yet\n", &path), Ok(Vec::new()));
    }

    #[test]
    fn every_error_in_every_experiment_is_reported_with_file_experiment_and_field() {
        let dir = folder();
        let path = dir.path().join("athanor.toml");
        let text = r#"
            [[experiment]]
            name = "llm_eval"
            version = ""
            command = ["python3", "eval.py"]

            [[experiment.field]]
            name = "temperature"
            type = "float"
            min = 2
            max = 1

            [[experiment.field]]
            name = "model"
            type = "string"
            mni = 1

            [[experiment]]
            name = "second"
            version = "1"
            command = ["sh", 3]
            env = { PYTHONPATH = 5 }

            [[experiment.field]]
            name = "pairs"
            type = "list"
              [[experiment.field.fields]]
              name = "runs"
              type = "int"
              default = "three"

            [[experiment]]
            description = "no name"
            version = "1"
            command = ["true"]
        "#;
        let file = path.display();
        assert_eq!(
            problems(text, &path),
            vec![
                format!("{file}: experiment \"llm_eval\": version must not be empty"),
                format!(
                    "{file}: experiment \"llm_eval\": field \"model\": unknown key \"mni\" (did you mean \"min\"?)"
                ),
                format!("{file}: experiment \"llm_eval\": field \"temperature\": min (2) is greater than max (1)"),
                format!("{file}: experiment \"second\": command[1] must be a string, not 3"),
                format!("{file}: experiment \"second\": env.PYTHONPATH must be a string, not 5"),
                format!("{file}: experiment \"second\": field \"pairs[].runs\": default must be a number"),
                format!("{file}: experiment #3: name is missing"),
            ]
        );
        let errors = parse(text, &path).unwrap_err();
        let temperature = errors.errors.iter().find(|e| e.message.starts_with("min (2)")).unwrap();
        assert_eq!(temperature.file, path);
        assert_eq!(temperature.experiment, Some(ExperimentRef::Name("llm_eval".into())));
        assert_eq!(temperature.field.as_deref(), Some("temperature"));
    }

    #[test]
    fn a_command_written_as_a_shell_line_is_refused_with_the_list_form_shown() {
        let dir = folder();
        let path = dir.path().join("athanor.toml");
        let text = "[[experiment]]\nname = \"x\"\nversion = \"1\"\ncommand = \"python3 eval.py --fast\"\n";
        let file = path.display();
        assert_eq!(
            problems(text, &path),
            vec![format!(
                "{file}: experiment \"x\": command must be an argument list such as [\"python3\", \"eval.py\"], not a \
                 shell line (\"python3 eval.py --fast\"): no shell splits or expands it"
            )]
        );
        for (command, message) in [
            ("[]", "command must not be empty: its first element is the program to run"),
            ("[\"\"]", "command[0] must not be empty"),
            ("3", "command must be an argument list such as [\"python3\", \"eval.py\"], not 3"),
        ] {
            let text = format!("[[experiment]]\nname = \"x\"\nversion = \"1\"\ncommand = {command}\n");
            assert_eq!(problems(&text, &path), vec![format!("{file}: experiment \"x\": {message}")], "{command}");
        }
    }

    #[test]
    fn names_must_be_unique_and_present() {
        let dir = folder();
        let path = dir.path().join("athanor.toml");
        let text = r#"
            [[experiment]]
            name = "twice"
            version = "1"
            command = ["a"]
            [[experiment]]
            name = "twice"
            version = "1"
            command = ["b"]
            [[experiment]]
            name = "  "
            version = "1"
            command = ["c"]
        "#;
        let file = path.display();
        assert_eq!(
            problems(text, &path),
            vec![
                format!("{file}: experiment \"twice\": another experiment in this file has the same name; names must be unique"),
                format!("{file}: experiment #3: name must not be empty"),
            ]
        );
    }

    #[test]
    fn a_missing_or_wrong_cwd_is_reported_where_it_is_declared() {
        let dir = folder();
        let path = dir.path().join("athanor.toml");
        std::fs::write(dir.path().join("a_file"), "").unwrap();
        let file = path.display();
        for (cwd, problem) in [
            ("nowhere", format!("cwd \"nowhere\" ({}) cannot be used: ", dir.path().join("nowhere").display())),
            ("a_file", format!("cwd \"a_file\" ({}) is not a directory", dir.path().join("a_file").display())),
        ] {
            let text = format!("[[experiment]]\nname = \"x\"\nversion = \"1\"\ncommand = [\"a\"]\ncwd = \"{cwd}\"\n");
            let found = problems(&text, &path);
            assert_eq!(found.len(), 1, "{found:?}");
            assert!(found[0].starts_with(&format!("{file}: experiment \"x\": {problem}")), "{found:?}");
        }
        // An absolute cwd is taken as it is.
        let absolute = dir.path().join("scripts");
        let text = format!(
            "[[experiment]]\nname = \"x\"\nversion = \"1\"\ncommand = [\"a\"]\ncwd = {:?}\n",
            absolute.display().to_string()
        );
        assert_eq!(parse(&text, Path::new("/elsewhere/athanor.toml")).unwrap()[0].cwd, absolute);
    }

    #[test]
    fn unknown_keys_are_errors_at_every_level() {
        let dir = folder();
        let path = dir.path().join("athanor.toml");
        let text = r#"
            title = "mine"
            [[experiment]]
            name = "x"
            version = "1"
            comand = ["a"]
            [[experiment.fields]]
            name = "n"
        "#;
        let file = path.display();
        assert_eq!(
            problems(text, &path),
            vec![
                format!("{file}: unknown key \"title\": the file holds only [[experiment]] tables"),
                format!(
                    "{file}: experiment \"x\": unknown key \"comand\" (an experiment's keys are: name, description, \
                     version, command, cwd, env, field)"
                ),
                format!(
                    "{file}: experiment \"x\": unknown key \"fields\" (the fields are [[experiment.field]] tables, \
                     singular)"
                ),
                format!(
                    "{file}: experiment \"x\": command is missing: the program and its arguments, e.g. [\"python3\", \
                     \"eval.py\"]"
                ),
            ]
        );
    }

    #[test]
    fn a_syntax_error_is_one_error_with_line_and_column() {
        let path = Path::new("athanor.toml");
        let found = problems("[[experiment]]\nname = \"x\"\nversion = 1.0.0\n", path);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("athanor.toml: TOML syntax error at line 3, column "), "{found:?}");
    }

    #[test]
    fn load_reports_an_unreadable_file() {
        let dir = folder();
        let path = dir.path().join("missing.toml");
        let errors = load(&path).unwrap_err();
        assert_eq!(errors.errors.len(), 1);
        assert!(errors.to_string().starts_with(&format!("{}: cannot read the experiment manifest: ", path.display())));
    }

    #[test]
    fn the_repository_manifest_is_valid() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../athanor.toml"));
        let specs = load(path).unwrap_or_else(|errors| panic!("{errors}"));
        let names: Vec<&str> = specs.iter().map(|spec| spec.definition.name.as_str()).collect();
        assert_eq!(names, ["llm_eval", "crash_midline", "ignore_sigterm", "orphan_spawner", "shell_countdown"]);
        for spec in &specs {
            // What the runtime checks at start-up: the schema's own sample passes its own validation.
            let schema = &spec.definition.schema;
            assert_eq!(schema.validate(&schema.sample()).err(), None, "{}", spec.definition.name);
            assert!(spec.cwd.join(&spec.command[spec.command.len() - 1]).is_file(), "{:?}", spec.command);
        }
        let llm_eval = &specs[0].definition.schema;
        assert_eq!(
            llm_eval.defaults(),
            json!({"model": "gpt-4", "prompt_variant": "baseline", "questions": 40, "temperature": 0.0, "seed": 1,
                   "question_ms": 100})
        );
    }
}
