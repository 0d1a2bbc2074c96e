//! Building a configuration from the command line: `--config JSON`, `--config-file PATH` and `--set key=value`.
//!
//! `--set` edits one value inside the configuration, addressed by the same paths the server's field errors use
//! (`epochs`, `api.timeout`, `model_pairs[1].runs`), so a refused field can be fixed by copying its path. The
//! value is read as JSON when it is JSON (`3`, `0.5`, `true`, `null`, `[1,2]`, `{"a":1}`, `"quoted"`) and as a
//! plain string otherwise (`--set model=gpt-4`): the common cases need no quoting, and a string that looks like
//! JSON can still be forced with quotes (`--set 'version="1.0"'`).
//!
//! Nothing is validated here beyond the syntax: the server validates against the experiment's schema and answers
//! with every field error at once, which the CLI prints.

use crate::error::CliError;
use serde_json::{Map, Value};
use std::fmt;
use std::path::{Path, PathBuf};

/// One step of a path: a field of an object or an item of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// `.name`
    Key(String),
    /// `[index]`
    Index(usize),
}

/// A parsed `--set path=value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Where, from the configuration's root.
    pub path: Vec<Segment>,
    /// What, already read as JSON (or as a string).
    pub value: Value,
}

/// Prints a path the way the server's field errors do: `model_pairs[1].runs`.
pub struct PathDisplay<'a>(pub &'a [Segment]);

impl fmt::Display for PathDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Parse `path=value` (clap's value parser for `--set`). Only the first `=` splits, so values may contain `=`.
pub fn parse_assignment(text: &str) -> Result<Assignment, String> {
    let (path, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE (e.g. epochs=20 or api.timeout=30), got {text:?}"))?;
    Ok(Assignment { path: parse_path(path.trim())?, value: parse_value(value) })
}

/// Parse `a.b[1].c` into segments.
pub fn parse_path(text: &str) -> Result<Vec<Segment>, String> {
    let bad =
        |why: &str| format!("{text:?} is not a field path ({why}); write it like epochs, api.timeout or pairs[0].runs");
    let mut segments = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let close = after.find(']').ok_or_else(|| bad("a `[` is not closed"))?;
            let index = after[..close].trim().parse::<usize>().map_err(|_| bad("a list index must be a number"))?;
            if segments.is_empty() {
                return Err(bad("it must start with a field name"));
            }
            segments.push(Segment::Index(index));
            rest = &after[close + 1..];
            if let Some(next) = rest.strip_prefix('.') {
                rest = next;
                if rest.is_empty() {
                    return Err(bad("it ends with `.`"));
                }
            } else if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad("expected `.` or `[` after `]`"));
            }
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let key = &rest[..end];
            if key.is_empty() {
                return Err(bad("a field name is empty"));
            }
            if key.contains(']') {
                return Err(bad("a `]` has no `[`"));
            }
            segments.push(Segment::Key(key.to_owned()));
            rest = &rest[end..];
            if let Some(next) = rest.strip_prefix('.') {
                rest = next;
                if rest.is_empty() {
                    return Err(bad("it ends with `.`"));
                }
            }
        }
    }
    if segments.is_empty() {
        return Err(bad("it is empty"));
    }
    Ok(segments)
}

/// JSON when the text is JSON, else the text as a string.
pub fn parse_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Parse `--config`: a JSON object (clap's value parser).
pub fn parse_json_object(text: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err("the configuration must be a JSON object, e.g. '{\"epochs\": 20}'".to_owned())
    }
}

impl Assignment {
    /// Write the value at the path inside `config`, creating the objects and lists on the way. A list index may
    /// be one past the end, which appends; anything further is refused, since the items between would be empty.
    pub fn apply(&self, config: &mut Value) -> Result<(), String> {
        let mut here = config;
        for (depth, segment) in self.path.iter().enumerate() {
            let so_far = PathDisplay(&self.path[..depth]);
            let next_is_index = matches!(self.path.get(depth + 1), Some(Segment::Index(_)));
            let fresh = || if next_is_index { Value::Array(Vec::new()) } else { Value::Object(Map::new()) };
            here = match segment {
                Segment::Key(key) => {
                    if here.is_null() {
                        *here = Value::Object(Map::new());
                    }
                    let Value::Object(map) = here else {
                        return Err(format!(
                            "cannot set {}: {so_far} is {}, not an object",
                            self.display(),
                            kind(here)
                        ));
                    };
                    map.entry(key.clone()).or_insert_with(fresh)
                }
                Segment::Index(index) => {
                    if here.is_null() {
                        *here = Value::Array(Vec::new());
                    }
                    let Value::Array(items) = here else {
                        return Err(format!("cannot set {}: {so_far} is {}, not a list", self.display(), kind(here)));
                    };
                    if *index > items.len() {
                        return Err(format!(
                            "cannot set {}: {so_far} has {} item(s), so the index can be at most {} (which appends)",
                            self.display(),
                            items.len(),
                            items.len()
                        ));
                    }
                    if *index == items.len() {
                        items.push(fresh());
                    }
                    &mut items[*index]
                }
            };
        }
        *here = self.value.clone();
        Ok(())
    }

    fn display(&self) -> PathDisplay<'_> {
        PathDisplay(&self.path)
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Read `--config-file`: a JSON object from a file, or from standard input for `-`.
pub fn read_config_file(path: &Path) -> Result<Value, CliError> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|error| CliError::local(format!("reading stdin: {error}")))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|error| CliError::local(format!("reading {}: {error}", path.display())))?
    };
    parse_json_object(&text).map_err(|why| CliError::local(format!("{}: {why}", path.display())))
}

/// The configuration the command line describes: `base` (from `--config` or `--config-file`, else `current`),
/// with every `--set` applied in order. `None` when the command line says nothing about the configuration.
pub fn build(
    config: Option<&Value>,
    config_file: Option<&PathBuf>,
    sets: &[Assignment],
    current: Option<&Value>,
) -> Result<Option<Value>, CliError> {
    let mut value = match (config, config_file) {
        (Some(config), _) => config.clone(),
        (None, Some(path)) => read_config_file(path)?,
        (None, None) if sets.is_empty() => return Ok(None),
        (None, None) => current.cloned().unwrap_or_else(|| Value::Object(Map::new())),
    };
    for set in sets {
        set.apply(&mut value).map_err(CliError::local)?;
    }
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(config: &mut Value, text: &str) -> Result<(), String> {
        parse_assignment(text)?.apply(config)
    }

    #[test]
    fn values_are_json_when_they_are_json_and_strings_otherwise() {
        let cases = [
            ("n=3", json!(3)),
            ("x=0.5", json!(0.5)),
            ("b=true", json!(true)),
            ("z=null", json!(null)),
            ("l=[1, 2]", json!([1, 2])),
            ("o={\"a\": 1}", json!({"a": 1})),
            ("s=gpt-4", json!("gpt-4")),
            ("q=\"1.0\"", json!("1.0")),
            ("e=", json!("")),
            ("eq=a=b", json!("a=b")),
        ];
        for (text, value) in cases {
            assert_eq!(parse_assignment(text).unwrap().value, value, "{text}");
        }
    }

    #[test]
    fn paths_read_like_the_servers_field_errors() {
        use Segment::*;
        assert_eq!(parse_path("a.b").unwrap(), vec![Key("a".into()), Key("b".into())]);
        assert_eq!(parse_path("pairs[1].runs").unwrap(), vec![Key("pairs".into()), Index(1), Key("runs".into())]);
        assert_eq!(parse_path("grid[0][2]").unwrap(), vec![Key("grid".into()), Index(0), Index(2)]);
        assert_eq!(PathDisplay(&parse_path("pairs[1].runs").unwrap()).to_string(), "pairs[1].runs");
        for bad in ["", ".a", "a.", "a..b", "[0]", "a[x]", "a[1", "a]", "a[0]b", "a[0]."] {
            assert!(parse_path(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_assignment("epochs").unwrap_err().contains("KEY=VALUE"));
    }

    #[test]
    fn set_builds_nested_objects_and_lists() {
        let mut config = json!({"epochs": 1, "api": {"timeout": 5}});
        set(&mut config, "a.b=3").unwrap();
        set(&mut config, "api.timeout=30").unwrap();
        set(&mut config, "pairs[0].a=x").unwrap();
        set(&mut config, "pairs[0].runs=2").unwrap();
        set(&mut config, "pairs[1].a=y").unwrap();
        assert_eq!(
            config,
            json!({"epochs": 1, "api": {"timeout": 30}, "a": {"b": 3}, "pairs": [{"a": "x", "runs": 2}, {"a": "y"}]})
        );
    }

    #[test]
    fn set_refuses_to_go_through_a_scalar_or_leave_holes_in_a_list() {
        let mut config = json!({"epochs": 1, "pairs": []});
        let error = set(&mut config, "epochs.x=1").unwrap_err();
        assert_eq!(error, "cannot set epochs.x: epochs is a number, not an object");
        let error = set(&mut config, "pairs[2].a=1").unwrap_err();
        assert!(error.contains("pairs has 0 item(s), so the index can be at most 0"), "{error}");
        assert_eq!(config, json!({"epochs": 1, "pairs": []}));
    }

    #[test]
    fn build_starts_from_the_given_config_or_the_current_one() {
        let sets = vec![parse_assignment("epochs=5").unwrap()];
        let current = json!({"epochs": 1, "lr": 0.1});
        assert_eq!(build(None, None, &[], Some(&current)).unwrap(), None);
        assert_eq!(build(None, None, &sets, Some(&current)).unwrap(), Some(json!({"epochs": 5, "lr": 0.1})));
        assert_eq!(build(None, None, &sets, None).unwrap(), Some(json!({"epochs": 5})));
        let given = json!({"epochs": 2});
        assert_eq!(build(Some(&given), None, &sets, Some(&current)).unwrap(), Some(json!({"epochs": 5})));
    }

    #[test]
    fn a_config_file_must_hold_a_json_object() {
        let dir = std::env::temp_dir().join(format!("athanor-cli-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(&good, r#"{"epochs": 3}"#).unwrap();
        assert_eq!(read_config_file(&good).unwrap(), json!({"epochs": 3}));
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "[1]").unwrap();
        assert!(read_config_file(&bad).unwrap_err().to_string().contains("must be a JSON object"));
        assert!(read_config_file(&dir.join("missing.json")).unwrap_err().to_string().contains("missing.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
