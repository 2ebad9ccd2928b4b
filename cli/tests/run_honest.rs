//! `braid run` ends honestly and takes services without Rust: a quiet script fails and
//! names what waits, `--arg`s are checked before anything runs, `@N` is replaced at any
//! depth, callbacks are answered, and mock, command and Wasm services are registered.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn braid_run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .current_dir(dir)
        .arg("run")
        .args(args)
        .output()
        .expect("the braid binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    name.to_owned()
}

fn json_of(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../fixtures/examples/{name}.air"))
        .to_str()
        .unwrap()
        .to_owned()
}

const ECHO: &str = r#"
(seq
  (call %init_peer_id% ("getDataSrv" "x") [] x)
  (call %init_peer_id% ("callbackSrv" "response") [x]))"#;

#[test]
fn a_script_that_stops_without_a_response_fails() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(
        dir.path(),
        "quiet.air",
        r#"(xor (match 1 2 (call %init_peer_id% ("callbackSrv" "response") [1])) (null))"#,
    );
    let out = braid_run(dir.path(), &[&script]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out)
            .contains("no response: the particle stopped without calling callbackSrv.response"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_run_without_a_response_names_what_still_waits() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(
        dir.path(),
        "slow.air",
        r#"(seq
  (par
    (call %init_peer_id% ("slow" "get") [] x)
    (null))
  (seq
    (call %init_peer_id% ("op" "identity") [x] y)
    (call %init_peer_id% ("callbackSrv" "response") [y])))"#,
    );
    let mocks = write(
        dir.path(),
        "slow.json",
        r#"{"services": [{"service": "slow", "functions": [{"name": "get", "result": 5, "delay_ms": 2500}]}]}"#,
    );
    let out = braid_run(dir.path(), &[&script, "--services", &mocks, "--ttl", "500"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("still waiting:"), "{all}");
    assert!(
        all.contains(r#"client 3:5 (call %init_peer_id% ("slow" "get") [] x) # [1] waits for the result of call request #1"#),
        "{all}"
    );
    assert!(
        all.contains(
            "client 6:5 (call %init_peer_id% (\"op\" \"identity\") [x] y) # waits for a variable"
        ),
        "{all}"
    );
}

#[test]
fn missing_and_unused_args_are_named_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = braid_run(dir.path(), &[&example("hello_world")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("the script needs `name` (give each as --arg NAME=JSON)"),
        "{}",
        text(&out)
    );
    assert!(out.stdout.is_empty(), "nothing ran: {}", text(&out));
    let out = braid_run(
        dir.path(),
        &[
            &example("hello_world"),
            "--arg",
            r#"name="a""#,
            "--arg",
            "nmae=1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("the script never asks for `nmae` (it asks for `name`)"),
        "{}",
        text(&out)
    );
}

#[test]
fn node_references_are_replaced_at_any_depth() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "echo.air", ECHO);
    let bad = braid_run(dir.path(), &[&script, "--arg", r#"x=["@x"]"#]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).contains("`@N` needs a node number"),
        "{}",
        text(&bad)
    );
    let out = braid_run(
        dir.path(),
        &[
            &script,
            "--peers",
            "2",
            "--json",
            "--arg",
            r#"x={"nodes": ["@0", ["@1"]], "n": 1}"#,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let report = json_of(&out);
    let (client, relay) = (&report["nodes"]["client"], &report["nodes"]["relay"]);
    assert_eq!(
        report["response"],
        json!({"nodes": [client, [relay]], "n": 1})
    );
}

#[test]
fn callbacks_are_answered_by_json_and_by_a_command() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(
        dir.path(),
        "callbacks.air",
        r#"(seq
  (call %init_peer_id% ("callbackSrv" "pick") [1 2] a)
  (seq
    (call %init_peer_id% ("callbackSrv" "double") [21] b)
    (call %init_peer_id% ("callbackSrv" "response") [a b])))"#,
    );
    let out = braid_run(
        dir.path(),
        &[
            &script,
            "--json",
            "--callback",
            r#"pick="left""#,
            "--callback-command",
            r#"double=grep -q '"args":\[21\],"function":"double"' && echo 42"#,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json_of(&out)["response"], json!(["left", 42]));
}

#[test]
fn mock_services_answer_fail_and_match_any_function() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(
        dir.path(),
        "mocks.air",
        r#"(seq
  (call %init_peer_id% ("weather" "today") ["Paris"] t)
  (seq
    (xor
      (call %init_peer_id% ("weather" "broken") [] b)
      (ap :error:.$.message b))
    (seq
      (call %init_peer_id% ("any" "whatever") [] w)
      (call %init_peer_id% ("callbackSrv" "response") [t b w]))))"#,
    );
    // The Fluence CLI's form (serviceId) and braid's (service), in two files.
    let first = write(
        dir.path(),
        "weather.json",
        r#"{"name": "Weather", "serviceId": "weather", "functions": [
             {"name": "today", "result": {"temp": 21}},
             {"name": "broken", "error": "out of order"}]}"#,
    );
    let second = write(
        dir.path(),
        "any.json",
        r#"[{"service": "any", "functions": [{"name": "*", "result": "wild"}]}]"#,
    );
    let out = braid_run(
        dir.path(),
        &[
            &script,
            "--json",
            "--services",
            &first,
            "--services",
            &second,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let response = json_of(&out)["response"].clone();
    assert_eq!(response[0], json!({"temp": 21}));
    assert!(
        response[1]
            .as_str()
            .unwrap()
            .contains(r#"'"out of order"'"#),
        "{response}"
    );
    assert_eq!(response[2], json!("wild"));
}

#[test]
fn a_command_service_gets_the_call_on_stdin_and_may_fail_or_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(
        dir.path(),
        "cmd.air",
        r#"(seq
  (call %init_peer_id% ("calc" "add") [2 3] sum)
  (seq
    (xor
      (call %init_peer_id% ("bad" "f") [] b)
      (ap :error:.$.message b))
    (seq
      (xor
        (call %init_peer_id% ("sleepy" "f") [] s)
        (ap :error:.$.message s))
      (call %init_peer_id% ("callbackSrv" "response") [sum b s]))))"#,
    );
    let out = braid_run(
        dir.path(),
        &[
            &script,
            "--json",
            "--service-command",
            r#"calc=grep -q '"args":\[2,3\],"function":"add"' && echo 5"#,
            "--service-command",
            "bad=echo broken >&2; exit 3",
            "--service-command",
            "sleepy=sleep 5",
            "--command-timeout",
            "1500",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let response = json_of(&out)["response"].clone();
    assert_eq!(response[0], json!(5));
    let bad = response[1].as_str().unwrap();
    assert!(
        bad.contains("broken") && bad.contains("exit status: 3"),
        "{bad}"
    );
    let sleepy = response[2].as_str().unwrap();
    assert!(sleepy.contains("no answer within 1500 ms"), "{sleepy}");
}

#[test]
fn text_output_streams_calls_before_the_end() {
    // The call lines come before the end line, in the order the calls ran.
    let dir = tempfile::tempdir().unwrap();
    let out = braid_run(
        dir.path(),
        &[&example("hello_world"), "--arg", r#"name="x""#],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("node client"), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("call client  op.concat_strings")),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&r#"response "Hello, x""#), "{stdout}");
}

#[test]
fn records_leave_the_secret_key_out_unless_asked_and_still_replay() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "echo.air", ECHO);
    let out = braid_run(dir.path(), &[&script, "--arg", "x=1", "--record", "rec"]);
    assert!(out.status.success(), "{}", text(&out));
    let files: Vec<_> = std::fs::read_dir(dir.path().join("rec"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty());
    for file in &files {
        let record: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(record["params"]["secret_key"], Value::Null);
        assert!(
            record["params"]["secret_key_note"]
                .as_str()
                .unwrap()
                .contains("--key-file")
        );
    }
    // braid run's keys are fixed test keys: replay finds them.
    let replay = Command::new(env!("CARGO_BIN_EXE_braid"))
        .current_dir(dir.path())
        .args(["replay", "rec"])
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", text(&replay));
    // A wrong key given explicitly is not used for a peer it does not belong to.
    let replay = Command::new(env!("CARGO_BIN_EXE_braid"))
        .current_dir(dir.path())
        .args(["replay", "rec", "--key", &"ab".repeat(32)])
        .output()
        .unwrap();
    assert!(replay.status.success(), "{}", text(&replay));
    // Asked for, the keys are written.
    let out = braid_run(
        dir.path(),
        &[
            &script,
            "--arg",
            "x=1",
            "--record",
            "keys",
            "--record-secret-keys",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let file = std::fs::read_dir(dir.path().join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert!(record["params"]["secret_key"].as_str().unwrap().len() >= 64);
}

#[test]
fn version_completions_and_man_page() {
    let braid = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_braid"))
            .args(args)
            .output()
            .unwrap()
    };
    let version = braid(&["--version"]);
    let version = String::from_utf8_lossy(&version.stdout);
    // "braid 0.1.0 (<commit or unknown>)"
    assert!(
        version.starts_with("braid ") && version.contains(" ("),
        "{version}"
    );
    let bash = braid(&["completions", "bash"]);
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("_braid()"));
    let man = braid(&["man"]);
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH braid 1"), "{man}");
    assert!(man.contains(".TH run 1"), "{man}");
}
