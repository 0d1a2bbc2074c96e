//! Tidy checks that guard the architecture, run by `cargo xtask tidy`, by `cargo xtask test` and as tests of this
//! crate (so `cargo test --workspace` runs them too):
//!
//! - **Crate layers.** Each workspace crate may depend only on the Athanor crates its row of [`LAYERS`] names: the
//!   domain at the bottom, the database above it, then the runtime, the service, the front ends, and the binary
//!   that wires them. The CLI is a pure client (the domain types only), and the domain stays free of I/O so it
//!   compiles to WebAssembly.
//! - **No module cycles.** Inside each crate, the graph of which source file names which module (through `crate::`,
//!   `super::` and `self::` paths, outside unit tests and doc comments) has no cycle, so every module can be read
//!   (and moved) after the ones it uses. A `mod.rs` naming its own submodules is nesting, not a dependency.
//! - **Self-contained docs.** Nothing in the repository sends a reader to design notes that do not ship with it.

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each crate and the Athanor crates it may depend on (normal dependencies; tests may use anything).
pub const LAYERS: &[(&str, &[&str])] = &[
    ("athanor-core", &[]),
    ("athanor-store", &["athanor-core"]),
    ("athanor-runtime", &["athanor-core", "athanor-store"]),
    ("athanor-service", &["athanor-core", "athanor-store", "athanor-runtime"]),
    ("athanor-demos", &["athanor-core", "athanor-runtime"]),
    // Front ends reach the database and the engine only through the service.
    ("athanor-api", &["athanor-core", "athanor-service"]),
    ("athanor-mcp", &["athanor-core", "athanor-service"]),
    ("athanor-cli", &["athanor-core"]),
    // The binary wires everything together: it opens the store and starts the runtime the service runs on.
    (
        "athanor-app",
        &[
            "athanor-core",
            "athanor-store",
            "athanor-runtime",
            "athanor-service",
            "athanor-demos",
            "athanor-api",
            "athanor-mcp",
            "athanor-cli",
        ],
    ),
    ("athanor-bench", &["athanor-core", "athanor-store", "athanor-runtime", "athanor-demos"]),
    ("xtask", &[]),
];

/// Crates the domain must never depend on: it is compiled to WebAssembly and must stay free of I/O.
const NOT_IN_CORE: &[&str] = &["tokio", "sqlx", "axum", "leptos", "reqwest"];

/// Run every check; the error lists every violation found.
pub fn check(root: &Path) -> Result<()> {
    let mut problems = crate_layer_violations(root)?;
    problems.extend(module_cycles(root)?);
    problems.extend(references_outside_repository(root)?);
    if !problems.is_empty() {
        bail!("tidy found {} problem(s):\n  {}", problems.len(), problems.join("\n  "));
    }
    eprintln!("tidy: crate layers hold, no module cycles, docs are self-contained");
    Ok(())
}

/// The workspace members' manifests, by package name.
fn member_manifests(root: &Path) -> Result<BTreeMap<String, toml::Table>> {
    let workspace: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))?.parse()?;
    let members = workspace
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(|m| m.as_array())
        .context("the root Cargo.toml has no [workspace] members")?;
    let mut manifests = BTreeMap::new();
    for member in members.iter().filter_map(|m| m.as_str()) {
        let path = root.join(member).join("Cargo.toml");
        let manifest: toml::Table = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .parse()
            .with_context(|| format!("parsing {}", path.display()))?;
        let name = manifest
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .with_context(|| format!("{} has no package name", path.display()))?
            .to_owned();
        manifests.insert(name, manifest);
    }
    Ok(manifests)
}

/// The packages a manifest depends on for building it (not its tests): `[dependencies]` and every
/// `[target.*.dependencies]`, by package name (a renamed dependency counts under its `package`).
fn normal_dependencies(manifest: &toml::Table) -> Vec<String> {
    let mut tables: Vec<&toml::Table> = manifest.get("dependencies").and_then(|d| d.as_table()).into_iter().collect();
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        tables.extend(targets.values().filter_map(|t| t.get("dependencies")).filter_map(|d| d.as_table()));
    }
    tables
        .into_iter()
        .flat_map(|table| table.iter())
        .map(|(key, value)| value.get("package").and_then(|p| p.as_str()).unwrap_or(key).to_owned())
        .collect()
}

/// Every normal dependency that breaks [`LAYERS`], and every workspace crate missing from it.
pub fn crate_layer_violations(root: &Path) -> Result<Vec<String>> {
    let manifests = member_manifests(root)?;
    let mut problems = Vec::new();
    for (name, manifest) in &manifests {
        let Some((_, allowed)) = LAYERS.iter().find(|(layer, _)| layer == name) else {
            problems.push(format!("crate {name} has no row in tidy::LAYERS: say what it may depend on"));
            continue;
        };
        for dependency in normal_dependencies(manifest) {
            let dependency = &dependency;
            let internal = manifests.contains_key(dependency.as_str());
            if internal && !allowed.contains(&dependency.as_str()) {
                problems.push(format!("{name} depends on {dependency}, which its layer does not allow"));
            }
            if name == "athanor-core" && NOT_IN_CORE.contains(&dependency.as_str()) {
                problems.push(format!("athanor-core depends on {dependency}: the domain must stay free of I/O"));
            }
        }
    }
    Ok(problems)
}

/// The module a `crate::a::b::c` path names, as the source file that defines it: the longest prefix of the path
/// that is a file of the crate (`a/b.rs` or `a/b/mod.rs`), or the crate root for a bare item.
fn module_of(src: &Path, segments: &[String], files: &BTreeSet<PathBuf>) -> Option<PathBuf> {
    for len in (1..=segments.len()).rev() {
        let prefix: PathBuf = segments[..len].iter().collect();
        for candidate in [src.join(&prefix).with_extension("rs"), src.join(&prefix).join("mod.rs")] {
            if files.contains(&candidate) {
                return Some(candidate);
            }
        }
    }
    None
}

fn rust_files(dir: &Path, out: &mut BTreeSet<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.insert(path);
        }
    }
    Ok(())
}

/// The module path of a source file: `src/pages/run.rs` → `[pages, run]`, `src/pages/mod.rs` → `[pages]`, the
/// crate root (`lib.rs`, `main.rs`) → `[]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut segments: Vec<String> = relative.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if matches!(segments.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        segments.pop();
    }
    segments
}

/// Every path to a module of this crate in a source text, made absolute: `crate::a::b`, and `super::…` and
/// `self::…` resolved from `here` (the module path of the file), each as its segments (identifiers only).
fn crate_paths(text: &str, here: &[String]) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        for (index, _) in text.match_indices(start) {
            // `$crate::` in macros, `athanor_crate::`, and the tail of a longer path are not paths of this crate.
            let before = text[..index].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                continue;
            }
            // The path runs while it is identifiers and `::`; a `{` group, `(`, `;` or space ends it.
            let rest = &text[index..];
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            let mut absolute: Vec<String> = Vec::new();
            let mut segments = rest[..end].split("::").filter(|segment| !segment.is_empty()).peekable();
            match segments.next() {
                Some("crate") => {}
                Some("self") => absolute.extend_from_slice(here),
                Some("super") => {
                    absolute.extend_from_slice(here);
                    absolute.pop();
                    while segments.peek() == Some(&"super") {
                        segments.next();
                        absolute.pop();
                    }
                }
                _ => continue,
            }
            absolute.extend(segments.map(str::to_owned));
            if !absolute.is_empty() {
                paths.push(absolute);
            }
        }
    }
    paths
}

/// Cycles between the source files of each workspace crate, through `crate::` paths.
pub fn module_cycles(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let crates_dir = root.join("crates");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&crates_dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path().join("src")))
        .filter(|src| src.is_dir())
        .collect();
    sources.push(root.join("xtask/src"));
    for src in sources {
        let mut files = BTreeSet::new();
        rust_files(&src, &mut files)?;
        let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
        for file in &files {
            let text = std::fs::read_to_string(file)?;
            // A file's unit tests may use anything; its architecture is what comes before them.
            let text = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
            // Doc links (`[`crate::failing`]`) point a reader elsewhere; they are not dependencies.
            let text: String =
                text.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            let targets = edges.entry(file.clone()).or_default();
            for path in crate_paths(&text, &module_path(&src, file)) {
                if let Some(target) = module_of(&src, &path, &files) {
                    // A module naming its own submodules (declaring or re-exporting them) is how Rust nests
                    // modules, not a dependency between peers.
                    let descendant =
                        file.ends_with("mod.rs") && file.parent().is_some_and(|folder| target.starts_with(folder));
                    if &target != file && !descendant {
                        targets.insert(target);
                    }
                }
            }
        }
        if let Some(cycle) = find_cycle(&edges) {
            let names: Vec<String> =
                cycle.iter().map(|p| p.strip_prefix(root).unwrap_or(p).display().to_string()).collect();
            problems.push(format!("module cycle: {}", names.join(" → ")));
        }
    }
    Ok(problems)
}

/// One cycle of the graph, first node repeated at the end, if there is any.
fn find_cycle(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        marks: &mut BTreeMap<PathBuf, Mark>,
        stack: &mut Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = stack.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(node.clone());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.clone(), Mark::Open);
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, marks, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        marks.insert(node.clone(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, edges, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

/// Text files that point a reader at the design notes' folder beside the checkout (`..` then `shared`), which
/// does not ship with the repository.
pub fn references_outside_repository(root: &Path) -> Result<Vec<String>> {
    let listed = std::process::Command::new("git").arg("ls-files").current_dir(root).output();
    let Some(listed) = listed.ok().filter(|out| out.status.success()) else {
        // Not a git checkout (an unpacked release): nothing to check against.
        return Ok(Vec::new());
    };
    // Built, not written out, so this file does not name the folder it forbids.
    let outside = ["..", "shared"].join("/");
    let mut problems = Vec::new();
    for file in String::from_utf8_lossy(&listed.stdout).lines() {
        let Ok(text) = std::fs::read_to_string(root.join(file)) else { continue };
        if text.contains(&outside) {
            problems.push(format!("{file} refers to {outside}, which does not ship with the repository"));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
    }

    #[test]
    fn crate_dependencies_follow_the_layers() {
        let problems = crate_layer_violations(&root()).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn no_crate_has_a_module_cycle() {
        let problems = module_cycles(&root()).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_repository_does_not_send_readers_outside_it() {
        let problems = references_outside_repository(&root()).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn paths_are_read_up_to_the_item_made_absolute_and_macro_paths_skipped() {
        let here = vec!["commands".to_owned(), "runs".to_owned()];
        let text = "use crate::pages::instance::{A, B};\nlet x = crate::state::service()?;\n$crate::Store\n\
                    use super::Ctx;\nuse super::super::exit;\nuse self::inner::X;";
        let paths = crate_paths(text, &here);
        let expected: Vec<Vec<&str>> = vec![
            vec!["pages", "instance"],
            vec!["state", "service"],
            vec!["commands", "Ctx"],
            vec!["exit"],
            vec!["commands", "runs", "inner", "X"],
        ];
        assert_eq!(paths, expected);
    }

    #[test]
    fn a_files_module_path_follows_the_folders() {
        let src = Path::new("/c/src");
        assert_eq!(module_path(src, Path::new("/c/src/pages/run.rs")), ["pages", "run"]);
        assert_eq!(module_path(src, Path::new("/c/src/pages/mod.rs")), ["pages"]);
        assert!(module_path(src, Path::new("/c/src/lib.rs")).is_empty());
    }

    #[test]
    fn renamed_and_target_specific_dependencies_count() {
        let manifest: toml::Table = r#"
            [dependencies]
            store = { package = "athanor-store", path = "../athanor-store" }
            [target.'cfg(unix)'.dependencies]
            athanor-runtime = { path = "../athanor-runtime" }
        "#
        .parse()
        .unwrap();
        assert_eq!(normal_dependencies(&manifest), ["athanor-store", "athanor-runtime"]);
    }

    #[test]
    fn a_cycle_is_found_and_named_in_order() {
        let (a, b, c) = (PathBuf::from("a.rs"), PathBuf::from("b.rs"), PathBuf::from("c.rs"));
        let mut edges = BTreeMap::new();
        edges.insert(a.clone(), BTreeSet::from([b.clone()]));
        edges.insert(b.clone(), BTreeSet::from([c.clone()]));
        edges.insert(c.clone(), BTreeSet::new());
        assert_eq!(find_cycle(&edges), None);
        edges.get_mut(&c).unwrap().insert(a.clone());
        assert_eq!(find_cycle(&edges), Some(vec![a.clone(), b, c, a]));
    }
}
