//! The README's Rust example is the doc example of `athanor_runtime::experiment`, which `cargo test` compiles and
//! runs: this keeps the README from showing code that no longer builds.

#[test]
fn the_readme_rust_example_is_the_compiled_doc_example() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).expect("README.md");
    let module = std::fs::read_to_string(format!("{root}/crates/athanor-runtime/src/experiment.rs")).unwrap();
    let (_, after) = readme.split_once("## Writing an experiment in Rust\n\n```rust\n").expect("the README section");
    let (example, _) = after.split_once("```").expect("the end of the code block");
    let documented: String = module
        .lines()
        .map_while(|line| line.strip_prefix("//!"))
        .map(|line| format!("{}\n", line.strip_prefix(' ').unwrap_or(line)))
        .collect();
    assert!(
        documented.contains(&format!("```\n{example}```")),
        "README.md's Rust example differs from the doc example in crates/athanor-runtime/src/experiment.rs; \
         update both together"
    );
}
