//! Builds the interpreter's Wasm module (the `braid-wasm` crate for
//! `wasm32-unknown-unknown`, release) for the Wasm backend, so that no manual step is
//! needed: `cargo build` of the host builds the module too.
//!
//! The module is built by a nested `cargo build` in its own target folder
//! (`<target>/braid-wasm-module`), which is incremental like any build. If it cannot be
//! built (most often: the `wasm32-unknown-unknown` target is not installed), the host
//! still builds, with an empty module and the reason, and the Wasm backend reports that
//! reason when it is asked for. `BRAID_WASM_MODULE=path` uses a prebuilt module instead.
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
        println!("cargo::rerun-if-changed={}", root.join(input).display());
    }

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
        Err(e) => return format!("cannot run cargo: {e}"),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            return format!("install the target with `rustup target add {TARGET}`");
        }
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return format!("building the module failed: {last}");
    }
    let built = target_dir.join(TARGET).join("release");
    let example = out_dir.join("example_service.wasm");
    for (from, to) in [
        ("braid_wasm.wasm", module),
        ("braid_example_service.wasm", &example),
    ] {
        if let Err(e) = std::fs::copy(built.join(from), to) {
            return format!("cannot copy {}: {e}", built.join(from).display());
        }
    }
    String::new()
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
}
