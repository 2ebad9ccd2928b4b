//! `braid run app.aqua --func 'f(…)'`: compiled by the real Aqua compiler when Node.js
//! and `clients/aqua/node_modules` are there (`npm ci` in `clients/aqua`); a clear
//! message when they are not.

use std::path::Path;
use std::process::{Command, Output};

const APP: &str =
    "aqua App\n\nexport greet\n\nfunc greet(n: u32, name: string) -> string:\n  <- name\n";

fn braid(dir: &Path, args: &[&str], glue: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_braid"));
    command.current_dir(dir).args(args);
    if let Some(glue) = glue {
        command.env("BRAID_AQUA_DIR", glue);
    }
    command.output().expect("the braid binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn without_the_compiler_the_message_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.aqua"), APP).unwrap();
    let out = braid(
        dir.path(),
        &["run", "app.aqua", "-f", r#"greet(1, "a")"#],
        Some(dir.path()),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("npm ci"), "{}", text(&out));
    let out = braid(dir.path(), &["run", "app.aqua"], Some(dir.path()));
    assert!(text(&out).contains("--func"), "{}", text(&out));
}

#[test]
fn aqua_source_runs_when_the_compiler_is_installed() {
    let glue = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/aqua"));
    let node = Command::new("node").arg("--version").output();
    if !glue.join("node_modules/@fluencelabs/aqua-api").is_dir() || node.is_err() {
        eprintln!("skipped: no Node.js or no clients/aqua/node_modules (npm ci there)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.aqua"), APP).unwrap();
    let out = braid(
        dir.path(),
        &["run", "app.aqua", "-f", r#"greet(1, "a")"#, "--json"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["response"], "a");
    // A variable in the call is an --arg.
    let out = braid(
        dir.path(),
        &[
            "run",
            "app.aqua",
            "-f",
            "greet(2, who)",
            "--arg",
            r#"who="bee""#,
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["response"], "bee");
    // A compile error is the compiler's message.
    let out = braid(dir.path(), &["run", "app.aqua", "-f", "nope()"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("the Aqua compiler failed"),
        "{}",
        text(&out)
    );
}
