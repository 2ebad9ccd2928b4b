//! `braid run` through the built binary, on the real compiled Aqua functions of
//! `fixtures/examples` (see its README for where each comes from).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../fixtures/examples/{name}.air"))
}

fn braid_run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .arg("run")
        .args(args)
        .output()
        .expect("the braid binary runs")
}

/// Runs an example with `--json` and returns the report and whether it exited 0.
fn run_json(name: &str, args: &[&str]) -> (Value, bool) {
    let path = example(name);
    let mut all = vec![path.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = braid_run(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.success())
}

fn response(name: &str, args: &[&str]) -> Value {
    let (report, ok) = run_json(name, args);
    assert!(ok, "{name} failed: {report:#}");
    assert_eq!(report["errors"], json!([]), "{name}: {report:#}");
    report["response"].clone()
}

/// The calls of a report as `peer service.function`.
fn calls(report: &Value) -> Vec<String> {
    report["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}.{}",
                c["peer"].as_str().unwrap(),
                c["service"].as_str().unwrap(),
                c["function"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn hello_world_concatenates_on_the_client() {
    assert_eq!(
        response("hello_world", &["--arg", r#"name="braid""#]),
        json!("Hello, braid")
    );
}

#[test]
fn hello_world_remote_runs_on_the_relay() {
    let (report, ok) = run_json(
        "hello_world_remote",
        &["--peers", "2", "--arg", r#"name="braid""#],
    );
    assert!(ok, "{report:#}");
    let relay = report["nodes"]["relay"].as_str().unwrap();
    assert_eq!(
        report["response"],
        json!(format!("Hello, braid! From {relay}"))
    );
    assert_eq!(
        calls(&report),
        [
            "client getDataSrv.-relay-",
            "client getDataSrv.name",
            "relay op.concat_strings",
            "relay op.concat_strings",
            "relay op.concat_strings",
            "client callbackSrv.response",
        ]
    );
}

#[test]
fn get_relay_time_asks_the_relay_for_its_clock() {
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let before = now();
    let (report, ok) = run_json(
        "get_relay_time",
        &["--peers", "2", "--arg", "relayPeerId=@1"],
    );
    let after = now();
    assert!(ok, "{report:#}");
    let time = report["response"].as_u64().expect("a timestamp");
    assert!(
        (before..=after).contains(&time),
        "{before} <= {time} <= {after}"
    );
    assert!(calls(&report).contains(&"relay peer.timestamp_ms".to_owned()));
}

#[test]
fn bool_algebra_compares_with_math_and_cmp() {
    assert_eq!(response("bool_algebra_foo", &["--arg", "x=2"]), json!(true));
    assert_eq!(
        response("bool_algebra_foo", &["--arg", "x=4"]),
        json!(false)
    );
}

#[test]
fn error_json_string_builds_an_object() {
    assert_eq!(
        response("error_json_string", &["--arg", r#"msg="boom""#]),
        json!({"error": "boom", "success": false, "value": ""})
    );
}

#[test]
fn structural_typing_concatenates_four_strings() {
    let args = [
        "--arg",
        r#"s1="a""#,
        "--arg",
        r#"s2="b""#,
        "--arg",
        r#"s3="c""#,
        "--arg",
        r#"s4="d""#,
    ];
    assert_eq!(response("structural_typing_ss", &args), json!("abcd"));
}

#[test]
fn a_missing_argument_is_named_before_the_run() {
    let out = braid_run(&[example("hello_world").to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the script needs `name`"), "{stderr}");
}

#[test]
fn text_output_lists_nodes_calls_and_the_response() {
    let out = braid_run(&[
        example("hello_world").to_str().unwrap(),
        "--arg",
        r#"name="text""#,
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("node client  12D3KooW"), "{text}");
    assert!(
        lines.contains(&r#"call client  op.concat_strings("Hello, ", "text") = "Hello, text""#),
        "{text}"
    );
    assert_eq!(lines.last(), Some(&r#"response "Hello, text""#));
}

#[test]
fn bad_arguments_and_scripts_are_reported() {
    let out = braid_run(&[
        example("hello_world").to_str().unwrap(),
        "--arg",
        "name=braid",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"a string needs quotes: name='"braid"'"#),
        "{stderr}"
    );

    let out = braid_run(&[example("hello_world").to_str().unwrap(), "--arg", "x=@3"]);
    assert_eq!(out.status.code(), Some(2));

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let broken = dir.join("broken.air");
    std::fs::write(&broken, "(seq (call").unwrap();
    let out = braid_run(&[broken.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["failed"].as_str().unwrap().contains("error 1"),
        "{report:#}"
    );
    assert_eq!(report["errors"][0]["code"], json!(1));
}

#[test]
fn range_builds_a_list_through_a_recursive_stream() {
    assert_eq!(
        response("range", &["--arg", "a=1", "--arg", "b=3"]),
        json!([1, 2])
    );
    assert_eq!(
        response("range", &["--arg", "a=3", "--arg", "b=1"]),
        json!([])
    );
}

/// The reference (AquaVM 0.64.1; checked with the oracle on a conformance scenario with
/// these answers) folds over the third generation of `$iterator` and returns
/// `[1, 2, 3, 4]`. FIXME(interpreter): braid's interpreter up to commit 70211ad stops
/// after the second round (no call request after `ap add $iterator`), so the script
/// ends without a response and `execute` resolves with `null`; the stream-fold work in
/// progress in `interpreter/src` gives the reference's answer. Once it is committed,
/// accept only `[1, 2, 3, 4]`.
#[test]
fn range_over_four_rounds_matches_the_reference() {
    let result = response("range", &["--arg", "a=1", "--arg", "b=5"]);
    assert_eq!(result, json!([1, 2, 3, 4]));
}

#[test]
fn recorded_invocations_replay_identically_and_tampering_shows() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("record-hello-remote");
    let _ = std::fs::remove_dir_all(&dir);
    let script = example("hello_world_remote");
    let out = braid_run(&[
        script.to_str().unwrap(),
        "--peers",
        "2",
        "--arg",
        r#"name="rec""#,
        "--record",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8, "client and relay invocations: {files:?}");

    let replay = |paths: &[&std::path::Path]| {
        Command::new(env!("CARGO_BIN_EXE_braid"))
            .arg("replay")
            .args(paths)
            .output()
            .unwrap()
    };
    let out = replay(&[&dir]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.trim(), format!("{} passed, 0 failed", files.len()));

    // A record whose outcome was edited no longer matches.
    let mut record: Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    record["outcome"]["ret_code"] = json!(7);
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, record.to_string()).unwrap();
    let out = replay(&[&tampered]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("ret_code 0 ``, recorded 7"), "{text}");
    assert!(text.ends_with("0 passed, 1 failed\n"), "{text}");
}

#[test]
fn a_wasm_service_by_path_answers_on_every_node() {
    // The example service (`services/example`), which the host's build script builds
    // into `<target>/braid-wasm-module`.
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_braid"));
    let module = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("braid-wasm-module/wasm32-unknown-unknown/release/braid_example_service.wasm");
    assert!(
        module.metadata().is_ok_and(|m| m.len() > 0),
        "the host's build script builds the example service at {}",
        module.display()
    );
    let greeter = format!("greeter={}", module.display());
    let (report, ok) = run_json(
        "greeter_wasm_service",
        &[
            "--peers",
            "2",
            "--arg",
            r#"name="braid""#,
            "--wasm-service",
            &greeter,
        ],
    );
    assert!(ok, "{report:#}");
    assert_eq!(report["response"], json!("Hello, braid!"));
    assert!(
        calls(&report).contains(&"relay greeter.greet".to_owned()),
        "{report:#}"
    );
    // A module that is not one is refused before anything runs, saying which.
    let out = braid_run(&[
        example("greeter_wasm_service").to_str().unwrap(),
        "--wasm-service",
        &format!("greeter={}", example("greeter_wasm_service").display()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a Wasm module"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
