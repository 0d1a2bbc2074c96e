//! Tidy checks that guard the architecture, run by `cargo xtask tidy`, by `cargo xtask test` and as tests of this
//! crate (so `cargo test --workspace` runs them too):
//!
//! - **Crate layers.** Each workspace crate may depend only on the Athanor crates its row of [`LAYERS`] names: the
//!   domain at the bottom, the database above it, then the runtime, the service, the front ends, and the binary
//!   that wires them. The CLI is a pure client (the domain types only), and the domain stays free of I/O so it
//!   compiles to WebAssembly.
//! - **No module cycles.** Inside each crate, the graph of which source file names which module through `crate::`
//!   paths has no cycle, so every module can be read (and moved) after the ones it uses.
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

/// Every normal dependency that breaks [`LAYERS`], and every workspace crate missing from it.
pub fn crate_layer_violations(root: &Path) -> Result<Vec<String>> {
    let manifests = member_manifests(root)?;
    let mut problems = Vec::new();
    for (name, manifest) in &manifests {
        let Some((_, allowed)) = LAYERS.iter().find(|(layer, _)| layer == name) else {
            problems.push(format!("crate {name} has no row in tidy::LAYERS: say what it may depend on"));
            continue;
        };
        let dependencies: Vec<&String> =
            manifest.get("dependencies").and_then(|d| d.as_table()).map(|d| d.keys().collect()).unwrap_or_default();
        for dependency in dependencies {
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
fn module_of(src: &Path, segments: &[&str], files: &BTreeSet<PathBuf>) -> Option<PathBuf> {
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

/// Every `crate::…` path in a source text, as its segments (identifiers only).
fn crate_paths(text: &str) -> Vec<Vec<&str>> {
    let mut paths = Vec::new();
    for (index, _) in text.match_indices("crate::") {
        // `$crate::` in macros and `athanor_crate::` are not this crate's paths.
        let before = text[..index].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &text[index + "crate::".len()..];
        // The path runs while it is identifiers and `::`; a `{` group, `(`, `;` or space ends it.
        let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
        let segments: Vec<&str> = rest[..end].split("::").filter(|segment| !segment.is_empty()).collect();
        if !segments.is_empty() {
            paths.push(segments);
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
            // Doc links (`[`crate::failing`]`) point a reader elsewhere; they are not dependencies.
            let text: String = std::fs::read_to_string(file)?
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let targets = edges.entry(file.clone()).or_default();
            for path in crate_paths(&text) {
                if let Some(target) = module_of(&src, &path, &files) {
                    if &target != file {
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

/// Text files that point a reader at `../shared`, design notes that live outside the repository.
pub fn references_outside_repository(root: &Path) -> Result<Vec<String>> {
    let listed = std::process::Command::new("git").arg("ls-files").current_dir(root).output();
    let Some(listed) = listed.ok().filter(|out| out.status.success()) else {
        // Not a git checkout (an unpacked release): nothing to check against.
        return Ok(Vec::new());
    };
    let mut problems = Vec::new();
    for file in String::from_utf8_lossy(&listed.stdout).lines() {
        // This file names the pattern it looks for.
        if file.ends_with("xtask/src/tidy.rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(file)) else { continue };
        if text.contains("../shared") {
            problems.push(format!("{file} refers to ../shared, which does not ship with the repository"));
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
    fn crate_paths_are_read_up_to_the_item_and_skip_macro_paths() {
        let text = "use crate::pages::instance::{A, B};\nlet x = crate::state::service()?;\n$crate::Store";
        assert_eq!(crate_paths(text), vec![vec!["pages", "instance"], vec!["state", "service"]]);
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
