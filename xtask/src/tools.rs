//! Installing what the build needs, only when it is missing, at the versions this workspace pins.

use crate::run;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// cargo-leptos 0.3.6 is the newest that builds with rustc 1.95 (0.3.11 needs 1.96).
const CARGO_LEPTOS_VERSION: &str = "0.3.6";

/// What `serve` needs: the wasm32 target, cargo-leptos, and the wasm-bindgen CLI matching Cargo.lock.
pub fn ensure_build_tools(root: &Path) -> Result<()> {
    ensure_wasm_target()?;
    ensure_cargo_leptos()?;
    ensure_wasm_bindgen(root)?;
    Ok(())
}

/// What the browser tests need on top: Debian's Chromium and the npm packages of `end2end/`.
pub fn ensure_browser_tools(root: &Path) -> Result<()> {
    ensure_chromium()?;
    let end2end = root.join("end2end");
    if !end2end.join("node_modules/playwright-core").exists() {
        run(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&end2end))?;
    }
    Ok(())
}

fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ensure_wasm_target() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed.lines().any(|line| line.trim() == "wasm32-unknown-unknown") {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    Ok(())
}

fn ensure_cargo_leptos() -> Result<()> {
    let version = output(Command::new("cargo").args(["leptos", "--version"])).unwrap_or_default();
    if !version.contains(CARGO_LEPTOS_VERSION) {
        eprintln!(
            "cargo-leptos {CARGO_LEPTOS_VERSION} is missing (found {:?}); building it once (~20 min on 2 cores)",
            version.trim()
        );
        // `no_downloads`: take wasm-bindgen and wasm-opt from PATH instead of fetching binaries from GitHub.
        run(Command::new("cargo").args([
            "install",
            "cargo-leptos",
            "--locked",
            "--version",
            CARGO_LEPTOS_VERSION,
            "--features",
            "no_downloads",
        ]))?;
    }
    Ok(())
}

/// The wasm-bindgen CLI must be exactly the version of the `wasm-bindgen` crate in Cargo.lock.
fn ensure_wasm_bindgen(root: &Path) -> Result<()> {
    let wanted = locked_version(root, "wasm-bindgen")?;
    let found = output(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if found.split_whitespace().nth(1) != Some(wanted.as_str()) {
        eprintln!("wasm-bindgen CLI {wanted} is missing (found {:?}); building it once (~4 min)", found.trim());
        // Not `--locked`: one of its locked dependencies is not on the registry mirror we can reach.
        run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", &wanted]))?;
    }
    Ok(())
}

fn locked_version(root: &Path, package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == format!("name = \"{package}\"") {
            if let Some(version) = lines.next().and_then(|l| l.trim().strip_prefix("version = ")) {
                return Ok(version.trim_matches('"').to_owned());
            }
        }
    }
    bail!("{package} is not in Cargo.lock")
}

/// A Python virtual environment with MLflow, for the comparison row of `cargo xtask bench`.
pub fn ensure_mlflow_venv(target: &Path) -> Result<std::path::PathBuf> {
    let venv = target.join("bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    if output(Command::new(&python).args(["-c", "import mlflow"])).is_none() {
        run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "mlflow"]))?;
    }
    Ok(python)
}

fn ensure_chromium() -> Result<()> {
    if Path::new("/usr/bin/chromium").exists() {
        return Ok(());
    }
    eprintln!("Chromium is missing; installing Debian's package (browser tests never download a browser)");
    let sudo = |args: &[&str]| {
        let mut command = if is_root() { Command::new(args[0]) } else { Command::new("sudo") };
        if is_root() {
            command.args(&args[1..]);
        } else {
            command.args(args);
        }
        command.env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    run(&mut sudo(&["apt-get", "update"]))?;
    run(&mut sudo(&["apt-get", "install", "-y", "--no-install-recommends", "chromium"]))?;
    Ok(())
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}
