//! `braid explain` and `braid sim --html/--save-data` through the command line: the life
//! recorded by a multi-node `braid run --record`, records saved by the simulator, one
//! record, bare data, and bad input. (Every conformance scenario is rendered by the
//! explain crate's own test.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn braid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .expect("braid runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("text")
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the folder exists")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The annotated script: from "The script as of" on.
fn script_part(text: &str) -> &str {
    &text[text.find("The script as of").expect("an annotated script")..]
}

#[test]
fn explains_the_life_recorded_by_four_nodes() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let records = dir.path().join("records");
    let script = "fixtures/examples/par_seq_timestamps.air";
    let run = braid(&[
        "run",
        script,
        "--peers",
        "4",
        "--arg",
        "relay1=@1",
        "--arg",
        "relay2=@2",
        "--arg",
        "relay3=@3",
        "--record",
        path(&records),
    ]);
    stdout(&run);
    let n = json_files(&records).len();
    assert!(n > 10, "{n} records");
    let page = dir.path().join("life.html");
    let text = stdout(&braid(&[
        "explain",
        script,
        path(&records),
        "--html",
        path(&page),
    ]));
    assert!(text.contains(&format!(": {n} steps on 4 peers")), "{text}");
    // Every step after the first got data from another node or its call results.
    let steps: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(steps.len(), n, "{text}");
    assert!(steps[0].contains(" start | "), "{}", steps[0]);
    for line in &steps[1..] {
        assert!(
            line.contains(" data from 12D3") || line.contains(" call results"),
            "{line}"
        );
    }
    // The relays' timestamps are recorded with the peer that ran them.
    let script_text = script_part(&text);
    assert!(
        script_text.contains(" ran (\"peer\" \"timestamp_ms\"): "),
        "{script_text}"
    );
    assert!(
        script_text.contains("(call %init_peer_id% (\"callbackSrv\" \"response\") [\"ok\"])"),
        "{script_text}"
    );
    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert!(html.contains(&format!("data-lanes=\"4\" data-steps=\"{n}\"")));
    assert!(!html.contains("src=\"http"), "the page loads nothing");
}

#[test]
fn records_saved_by_the_simulator_explain_like_the_scenario() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let scenario = "../shared/conformance/scenarios/canon/basic.json";
    let saved = dir.path().join("saved");
    let page = dir.path().join("sim.html");
    let transcript = stdout(&braid(&[
        "sim",
        scenario,
        "--html",
        path(&page),
        "--save-data",
        path(&saved),
    ]));
    let transcript: serde_json::Value = serde_json::from_str(&transcript).expect("JSON");
    let steps = transcript["steps"].as_array().expect("steps").len();
    assert_eq!(json_files(&saved).len(), steps);
    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert!(html.contains(&format!("data-lanes=\"2\" data-steps=\"{steps}\"")));

    let air = dir.path().join("script.air");
    let scenario_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(scenario);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(scenario_path).expect("the scenario reads"))
            .expect("JSON");
    std::fs::write(&air, json["air"].as_str().expect("air")).expect("written");
    let from_records = stdout(&braid(&["explain", path(&air), path(&saved)]));
    let from_scenario = stdout(&braid(&["explain", path(&air), scenario]));
    assert_eq!(script_part(&from_records), script_part(&from_scenario));
    assert!(from_records.contains(&format!(": {steps} steps on 2 peers")));

    // One record alone: that step.
    let first = json_files(&saved).remove(0);
    let one = stdout(&braid(&["explain", path(&air), path(&first)]));
    assert!(one.contains(": 1 steps on 1 peers"), "{one}");
    assert!(
        one.contains("waits for the result of call request #1 on set_variable"),
        "{one}"
    );

    // Bare data: the last step's output, read by an observer.
    let last = json_files(&saved).pop().expect("records");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&last).expect("reads")).expect("JSON");
    let hex = record["outcome"]["data"].as_str().expect("hex data");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    let data = dir.path().join("data.bin");
    std::fs::write(&data, bytes).expect("written");
    let bare = stdout(&braid(&[
        "explain",
        path(&air),
        path(&data),
        "--init-peer",
        "set_variable",
    ]));
    assert!(
        bare.contains("#canon_stream = [\"1\",\"2\",\"3\",\"4\",\"5\"] (5 elements, on A)"),
        "{bare}"
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let air = dir.path().join("script.air");
    std::fs::write(&air, "(null)").expect("written");
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, b"\x93not data").expect("written");
    let out = braid(&["explain", path(&air), path(&junk)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not braid's particle data"), "{err}");
    let out = braid(&["explain", path(&air), path(&dir.path().join("missing"))]);
    assert_eq!(out.status.code(), Some(2));
}
