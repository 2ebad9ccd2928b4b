//! Aqua source in: `braid run app.aqua --func 'f(1, x)'` compiles the call with the real
//! Aqua compiler (`@fluencelabs/aqua-api` under Node.js), through the glue script
//! `clients/aqua/compile.mjs`. `BRAID_AQUA_DIR` names another folder holding the glue
//! and its `node_modules`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Map, Value};

/// The glue's folder: `BRAID_AQUA_DIR`, else `clients/aqua` of this source tree.
fn glue_dir() -> PathBuf {
    std::env::var_os("BRAID_AQUA_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/aqua")),
        PathBuf::from,
    )
}

/// How to get the compiler, for the error messages.
fn how_to_install(dir: &Path) -> String {
    format!(
        "install Node.js (18 or later), then the Aqua compiler: `cd {} && npm ci` (or set BRAID_AQUA_DIR to a folder with compile.mjs and node_modules/@fluencelabs/aqua-api)",
        dir.display()
    )
}

/// Compiles `call` of the Aqua file `path` to AIR; `data` are the `--arg`s.
pub(crate) fn compile(
    path: &Path,
    call: &str,
    data: &Map<String, Value>,
) -> anyhow::Result<String> {
    let dir = glue_dir();
    if !dir.join("node_modules/@fluencelabs/aqua-api").is_dir() {
        bail!(
            "the Aqua compiler is not installed: {}",
            how_to_install(&dir)
        );
    }
    let file =
        std::fs::canonicalize(path).with_context(|| format!("cannot read {}", path.display()))?;
    let out = Command::new("node")
        .arg(dir.join("compile.mjs"))
        .arg(&file)
        .arg(call)
        .arg(Value::Object(data.clone()).to_string())
        .output();
    let out = match out {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("Node.js (`node`) is not on PATH: {}", how_to_install(&dir))
        }
        Err(e) => return Err(e).context("cannot run node"),
    };
    if !out.status.success() {
        bail!(
            "the Aqua compiler failed on {}:\n{}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    String::from_utf8(out.stdout).context("the compiler's output is not UTF-8")
}
