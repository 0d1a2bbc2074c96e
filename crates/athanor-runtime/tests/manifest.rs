//! The manifest of command experiments while a server runs: edits are applied, refused edits keep the last good
//! experiments and say why, and nothing in a bad manifest ever starts.

use athanor_core::RunStatus;
use athanor_runtime::command::{CommandManifest, Reload};
use athanor_runtime::testing::TestRuntime;
use athanor_runtime::{Registry, RuntimeConfig, RuntimeError};
use serde_json::json;
use std::path::Path;

const HELLO: &str = r#"
[[experiment]]
name = "hello"
description = "Says hello."
version = "1"
command = ["sh", "-c", "echo hello from $ATHANOR_EXPERIMENT"]
"#;

const ANSWER: &str = r#"
[[experiment]]
name = "answer"
version = "2"
command = ["sh", "-c", "printf '{\"type\":\"result\",\"key\":\"answer\",\"value\":42}\n' >&3"]

[[experiment.field]]
name = "rounds"
type = "int"
default = 3
min = 1
"#;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write the manifest");
}

async fn serve(path: &Path) -> (CommandManifest, TestRuntime) {
    let (manifest, registry) = CommandManifest::load(path, Registry::default()).expect("a valid manifest");
    let runtime = TestRuntime::with_registry(registry, RuntimeConfig::default()).await.expect("a runtime");
    (manifest, runtime)
}

/// Look at the file until a version has settled (two looks agree) and been considered.
fn reload(manifest: &CommandManifest, runtime: &TestRuntime) -> Reload {
    let first = manifest.reload(runtime.runtime());
    if first != Reload::Settling {
        return first;
    }
    let second = manifest.reload(runtime.runtime());
    assert_ne!(second, Reload::Settling, "an unchanged file settles at the second look");
    second
}

fn names(runtime: &TestRuntime) -> Vec<String> {
    runtime.runtime().registry().definitions().map(|d| d.name.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_adds_changes_and_removes_experiments_and_runs_use_the_new_definition() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("athanor.toml");
    write(&path, HELLO);
    let (manifest, runtime) = serve(&path).await;
    assert_eq!(names(&runtime), ["hello"]);
    assert_eq!(reload(&manifest, &runtime), Reload::Unchanged, "an unchanged file is not re-applied");

    let report = runtime.run("hello", json!({})).await.unwrap();
    assert_eq!(report.status(), RunStatus::Completed);
    assert_eq!(report.messages(), ["hello from hello"]);

    write(&path, &format!("{HELLO}{ANSWER}"));
    assert_eq!(
        reload(&manifest, &runtime),
        Reload::Applied { added: vec!["answer".into()], changed: vec![], removed: vec![] }
    );
    let report = runtime.run("answer", json!({})).await.unwrap();
    assert_eq!(report.result("answer"), Some(&json!(42)));
    assert_eq!(report.run.experiment_version, "2");
    assert_eq!(report.run.config, json!({"rounds": 3}), "the declared default is in the run's snapshot");

    write(&path, &ANSWER.replace("version = \"2\"", "version = \"3\""));
    assert_eq!(
        reload(&manifest, &runtime),
        Reload::Applied { added: vec![], changed: vec!["answer".into()], removed: vec!["hello".into()] }
    );
    assert_eq!(names(&runtime), ["answer"]);
    let gone = runtime.start("hello", json!({})).await.unwrap_err();
    assert!(gone.to_string().contains("no experiment named \"hello\""), "{gone}");
    assert_eq!(manifest.problems(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_edit_keeps_the_last_good_experiments_and_names_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("athanor.toml");
    write(&path, &format!("{HELLO}{ANSWER}"));
    let (manifest, runtime) = serve(&path).await;
    let instance = runtime.instance("answer", json!({})).await.unwrap();

    let broken = format!("{HELLO}{ANSWER}").replace("min = 1", "min = \"one\"").replace("version = \"1\"", "");
    write(&path, &broken);
    let Reload::Refused(problems) = reload(&manifest, &runtime) else { panic!("a bad edit is refused") };
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("athanor.toml") && p.contains("\"hello\"") && p.contains("version")));
    assert!(problems.iter().any(|p| p.contains("\"answer\"") && p.contains("rounds") && p.contains("min")));
    assert_eq!(manifest.problems(), Some(problems));
    assert_eq!(names(&runtime), ["answer", "hello"], "the last good experiments stay in use");
    let run = runtime.runtime().start(instance.id).await.unwrap();
    assert_eq!(runtime.finish(&run).await.unwrap().status(), RunStatus::Completed);

    std::fs::remove_file(&path).unwrap();
    let Reload::Refused(problems) = reload(&manifest, &runtime) else { panic!("a missing file is refused") };
    assert!(problems[0].contains("cannot read the experiment manifest"), "{problems:?}");
    assert_eq!(reload(&manifest, &runtime), Reload::Unchanged, "reported once, not on every look");
    assert_eq!(names(&runtime), ["answer", "hello"]);

    write(&path, HELLO);
    assert!(matches!(reload(&manifest, &runtime), Reload::Applied { .. }));
    assert_eq!(manifest.problems(), None, "fixing the file clears the problems");
    let error = runtime.runtime().start(instance.id).await.unwrap_err();
    assert!(matches!(error, RuntimeError::UnknownExperiment { .. }), "{error}");
}

#[test]
fn a_bad_manifest_is_refused_at_start_with_every_problem_and_a_clash_with_a_builtin_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("athanor.toml");
    let shell_line = HELLO.replace(r#"["sh", "-c", "echo hello from $ATHANOR_EXPERIMENT"]"#, r#""echo hello""#);
    write(&path, &format!("{shell_line}{}", ANSWER.replace("type = \"int\"", "type = \"integr\"")));
    let problems = CommandManifest::load(&path, Registry::default()).err().expect("refused");
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("\"hello\"") && p.contains("not a shell line")), "{problems:#?}");
    assert!(problems.iter().any(|p| p.contains("\"answer\"") && p.contains("integr")), "{problems:#?}");

    write(&path, HELLO);
    let (_, builtins) = CommandManifest::load(&path, Registry::default()).expect("valid");
    let problems = CommandManifest::load(&path, builtins).err().expect("a name taken by a built-in is refused");
    assert_eq!(problems.len(), 1);
    assert!(problems[0].contains("a built-in experiment already has this name"), "{problems:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_caught_half_written_is_never_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("athanor.toml");
    write(&path, HELLO);
    let (manifest, runtime) = serve(&path).await;
    // An editor that truncates, then writes: one look sees an empty file (a valid manifest with no experiments).
    write(&path, "");
    assert_eq!(manifest.reload(runtime.runtime()), Reload::Settling);
    write(&path, HELLO);
    assert_eq!(manifest.reload(runtime.runtime()), Reload::Settling);
    assert_eq!(manifest.reload(runtime.runtime()), Reload::Unchanged, "the file ends as it was");
    assert_eq!(names(&runtime), ["hello"], "the experiments never vanished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_version_is_applied_once_what_it_refers_to_exists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("athanor.toml");
    write(&path, HELLO);
    let (manifest, runtime) = serve(&path).await;
    write(&path, &format!("{HELLO}cwd = \"later\"\n"));
    let Reload::Refused(problems) = reload(&manifest, &runtime) else { panic!("a missing cwd is refused") };
    assert!(problems[0].contains("later"), "{problems:?}");
    std::fs::create_dir(dir.path().join("later")).unwrap();
    assert!(matches!(reload(&manifest, &runtime), Reload::Applied { .. }), "the same file, now valid");
    assert_eq!(manifest.problems(), None);
}

#[test]
fn a_manifest_that_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let problems = CommandManifest::load(dir.path(), Registry::default()).err().expect("a folder is refused");
    assert!(problems[0].contains("must be a regular file"), "{problems:?}");
}
