//! Builds the interpreter's Wasm module (the `braid-wasm` crate for
//! `wasm32-unknown-unknown`, release) for the Wasm backend, so that no manual step is
//! needed: `cargo build` of the host builds the module too.
//!
//! The module is built by a nested `cargo build` in its own target folder
//! (`<target>/braid-wasm-module`), which is incremental like any build. The
//! `wasm32-unknown-unknown` target is named in `rust-toolchain.toml`; a toolchain that
//! rustup installed earlier without it gets it here, with `rustup target add` (rustup
//! installs a toolchain file's targets only with the toolchain itself). If the module
//! still cannot be built, the host builds with an empty module and the reason, and the
//! Wasm backend reports that reason when it is asked for. `BRAID_WASM_MODULE=path` uses a prebuilt module instead.
//! The same build makes the example service (`services/example`) for the host's tests.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("the host crate sits in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env("OUT_DIR"));
    let module = out_dir.join("braid_interpreter.wasm");

    println!("cargo::rerun-if-env-changed=BRAID_WASM_MODULE");
    println!("cargo::rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    for input in [
        "grammar/src",
        "grammar/Cargo.toml",
        "interpreter/src",
        "interpreter/Cargo.toml",
        "wasm/src",
        "wasm/Cargo.toml",
        "services/example/src",
        "services/example/Cargo.toml",
        "wasm/build.rs",
        "Cargo.lock",
    ] {
        // Relative to the package root: a target folder shared by several checkouts
        // (worktrees) keeps one run of this script for all of them (the package's
        // fingerprint does not depend on where it is), and absolute paths would watch
        // the checkout that ran it last, keeping its module for the others.
        println!("cargo::rerun-if-changed=../{input}");
    }
    // Where the module's sources were: the host's tests check that it is this checkout.
    println!(
        "cargo::rustc-env=BRAID_WASM_MODULE_SOURCE={}",
        root.display()
    );

    let status = match std::env::var_os("BRAID_WASM_MODULE") {
        Some(prebuilt) => std::fs::copy(&prebuilt, &module)
            .map(|_| String::new())
            .unwrap_or_else(|e| {
                format!("BRAID_WASM_MODULE={}: {e}", Path::new(&prebuilt).display())
            }),
        None => build(&root, &out_dir, &module),
    };
    if !status.is_empty() {
        println!("cargo::warning=the Wasm backend is unavailable: {status}");
        std::fs::write(&module, b"").expect("OUT_DIR is writable");
    }
    // The example service (for tests); empty when only a prebuilt module was given.
    let example = out_dir.join("example_service.wasm");
    if !example.exists() {
        std::fs::write(&example, b"").expect("OUT_DIR is writable");
    }
    println!("cargo::rustc-env=BRAID_WASM_MODULE_STATUS={status}");
}

/// Builds the module into `module`; returns why not, or an empty string.
fn build(root: &Path, out_dir: &Path, module: &Path) -> String {
    match build_once(root, out_dir, module) {
        Missing::Target => match add_target() {
            Ok(()) => match build_once(root, out_dir, module) {
                Missing::Target => format!("install the target with `rustup target add {TARGET}`"),
                Missing::Nothing => String::new(),
                Missing::Other(why) => why,
            },
            Err(why) => format!("install the target with `rustup target add {TARGET}` ({why})"),
        },
        Missing::Nothing => String::new(),
        Missing::Other(why) => why,
    }
}

/// What a build of the module lacked.
enum Missing {
    Nothing,
    /// The standard library for `wasm32-unknown-unknown`.
    Target,
    Other(String),
}

/// Installs the target into the toolchain this build runs on (rustup names it in
/// `RUSTUP_TOOLCHAIN`); without rustup there is nothing to do.
fn add_target() -> Result<(), String> {
    let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") else {
        return Err("the toolchain is not managed by rustup".into());
    };
    let output = Command::new("rustup")
        .args(["target", "add", TARGET, "--toolchain"])
        .arg(&toolchain)
        .output()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("rustup failed")
        .to_string())
}

fn build_once(root: &Path, out_dir: &Path, module: &Path) -> Missing {
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out.
    let target_dir = out_dir.ancestors().nth(4).map_or_else(
        || out_dir.join("wasm-module"),
        |t| t.join("braid-wasm-module"),
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--release", "--locked", "--target", TARGET])
        .args(["-p", "braid-wasm", "-p", "braid-example-service"])
        .arg("--target-dir")
        .arg(&target_dir)
        // The module sets its own link flags (wasm/build.rs); flags meant for this
        // build (sanitizers of a fuzz build, clippy's wrapper) must not leak into it.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false");
    let output = match command.output() {
        Ok(output) => output,
        Err(e) => return Missing::Other(format!("cannot run cargo: {e}")),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            return Missing::Target;
        }
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Missing::Other(format!("building the module failed: {last}"));
    }
    let built = target_dir.join(TARGET).join("release");
    let example = out_dir.join("example_service.wasm");
    for (from, to) in [
        ("braid_wasm.wasm", module),
        ("braid_example_service.wasm", &example),
    ] {
        // A new file, not a write into the old one: target folders seeded by hard links
        // (`cp -al`) share the old one's inode with other checkouts.
        let _ = std::fs::remove_file(to);
        if let Err(e) = std::fs::copy(built.join(from), to) {
            return Missing::Other(format!("cannot copy {}: {e}", built.join(from).display()));
        }
    }
    Missing::Nothing
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}
