//! `braid up`, `ps`, `run --network` and `down` in a project folder, on loopback.

use std::path::Path;
use std::process::{Command, Output};

fn braid(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the braid binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stops the network however the test ends.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = braid(self.0, &["down"]);
    }
}

#[test]
fn a_local_network_stays_up_across_commands_and_keeps_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let up = braid(dir.path(), &["up", "--nodes", "2"]);
    let _down = Down(dir.path());
    assert!(up.status.success(), "{}", text(&up));
    assert!(dir.path().join(".braid/node1.log").exists());
    let ps = text(&braid(dir.path(), &["ps"]));
    assert_eq!(ps.matches(" up (pid ").count(), 2, "{ps}");
    let node1 = ps
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();

    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/examples/hello_world_remote.air"
    );
    let run = braid(
        dir.path(),
        &[
            "run",
            "--network",
            example,
            "--arg",
            r#"name="up""#,
            "--json",
        ],
    );
    assert!(run.status.success(), "{}", text(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["response"], format!("Hello, up! From {node1}"));

    // Already up: refused.
    assert!(!braid(dir.path(), &["up"]).status.success());
    let down = braid(dir.path(), &["down"]);
    assert!(down.status.success(), "{}", text(&down));
    let ps = text(&braid(dir.path(), &["ps"]));
    assert_eq!(ps.matches(" down").count(), 2, "{ps}");
    let run = braid(
        dir.path(),
        &["run", "--network", example, "--arg", r#"name="x""#],
    );
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));

    // Up again: the same peer ids.
    let up = braid(dir.path(), &["up"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(text(&up).contains(&node1), "{}", text(&up));
}

/// Stops the network of a project folder given with `--dir`.
struct DownDir<'a>(&'a Path, &'a str);

impl Drop for DownDir<'_> {
    fn drop(&mut self) {
        let _ = braid(self.0, &["down", "--dir", self.1]);
    }
}

#[test]
fn a_local_network_lives_in_the_folder_dir_names() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("project")).unwrap();
    let up = braid(cwd.path(), &["up", "--nodes", "1", "--dir", "project"]);
    let _down = DownDir(cwd.path(), "project");
    assert!(up.status.success(), "{}", text(&up));
    assert!(text(&up).contains("--dir project"), "{}", text(&up));
    assert!(cwd.path().join("project/.braid/network.json").exists());
    assert!(cwd.path().join("project/.braid/node1.log").exists());
    assert!(!cwd.path().join(".braid").exists());

    // Without --dir, this folder has no network.
    let ps = braid(cwd.path(), &["ps"]);
    assert!(!ps.status.success());
    assert!(text(&ps).contains("no local network in ."), "{}", text(&ps));
    let ps = text(&braid(cwd.path(), &["ps", "--dir", "project"]));
    assert_eq!(ps.matches(" up (pid ").count(), 1, "{ps}");
    let node1 = ps.split_whitespace().nth(1).unwrap().to_owned();

    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/examples/hello_world_remote.air"
    );
    let run = braid(
        cwd.path(),
        &[
            "run",
            "--network",
            "--dir",
            "project",
            example,
            "--arg",
            r#"name="dir""#,
            "--json",
        ],
    );
    assert!(run.status.success(), "{}", text(&run));
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["response"], format!("Hello, dir! From {node1}"));
    // --dir names the network's folder only with --network.
    let run = braid(cwd.path(), &["run", "--dir", "project", example]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));

    let down = braid(cwd.path(), &["down", "--dir", "project"]);
    assert!(down.status.success(), "{}", text(&down));
    let ps = text(&braid(cwd.path(), &["ps", "--dir", "project"]));
    assert_eq!(ps.matches(" down").count(), 1, "{ps}");
}
