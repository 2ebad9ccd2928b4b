//! `braid bench` through the built binary: the FORMAT.md §8.5 line on a real workload,
//! and exit 1 without timing when the replay differs from `expected`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn braid_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .arg("bench")
        .args(args)
        .output()
        .expect("the braid binary runs")
}

fn shared_bench(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../shared/bench/{name}.json"))
}

/// A one-call scenario measuring its results step, with the reference's transcript
/// (or a spoiled one) as `expected`.
fn tiny_scenario(name: &str, answer_in_expected: &str) -> PathBuf {
    let scenario = json!({
        "name": format!("bench/{name}"),
        "description": "one call and its answer",
        "air": r#"(call %init_peer_id% ("s" "f") [] x)"#,
        "particle": {"id": "p", "init_peer": "A", "timestamp": 1, "ttl": 1000},
        "peers": ["A"],
        "services": {"rules": [], "default": {"ok": 1}},
        "bench": {"step": 2, "what": "absorbing the answer"},
        "expected": {
            "steps": [
                {"step": 1, "peer": "A", "cause": {"kind": "start"}, "ret_code": 0,
                 "error_message": "", "next_peers": [],
                 "call_requests": [{"service": "s", "function": "f", "arguments": [],
                                    "tetraplets": [],
                                    "result": {"ret_code": 0, "result": answer_in_expected}}]},
                {"step": 2, "peer": "A", "cause": {"kind": "results"}, "ret_code": 0,
                 "error_message": "", "next_peers": [], "call_requests": []}
            ],
            "peers": {"A": {"invokes": 2, "failed_invokes": 0, "last_ret_code": 0,
                            "calls": 1, "never_answered": 0}},
            "end": "quiescent"
        }
    });
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.json"));
    std::fs::write(&path, scenario.to_string()).expect("the temp dir is writable");
    path
}

fn the_line(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8 output");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stdout}");
    serde_json::from_str(lines[0]).expect("the line is JSON")
}

#[test]
fn the_null_workload_gives_every_member_of_the_line() {
    let path = shared_bench("null");
    let line = the_line(&braid_bench(&[path.to_str().unwrap(), "--iters", "3"]));
    assert_eq!(line["impl"], format!("braid {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(line["scenario"], "bench/null");
    assert_eq!(line["step"], 1);
    assert_eq!(line["peer"], "init_peer");
    assert_eq!(line["iters"], 3);
    assert_eq!(line["air_bytes"], "(null)".len());
    assert_eq!(line["prev_data_bytes"], 0);
    assert_eq!(line["current_data_bytes"], 0);
    assert_eq!(line["call_results"], 0);
    assert_eq!(line["call_results_bytes"], "{}".len());
    assert_eq!(line["ret_code"], 0);
    assert_eq!(line["checked"], true);
    let number = |key: &str| {
        line[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} is a number: {line}"))
    };
    let (min, median, max) = (number("min_us"), number("median_us"), number("max_us"));
    assert!(0.0 < min && min <= median && median <= max, "{line}");
    assert!(max < 1e6, "an empty script takes under a second: {line}");
    assert!(number("peak_heap_bytes") > 0.0, "{line}");
    assert!(number("output_data_bytes") > 0.0, "{line}");
}

#[test]
fn the_measured_step_gets_its_call_results() {
    let path = tiny_scenario("tiny-agrees", "1");
    let line = the_line(&braid_bench(&[path.to_str().unwrap(), "--iters", "2"]));
    assert_eq!(line["scenario"], "bench/tiny-agrees");
    assert_eq!(line["step"], 2);
    assert_eq!(line["iters"], 2);
    assert_eq!(line["call_results"], 1);
    // {"<id>":{"ret_code":0,"result":"1"}}
    let bytes = line["call_results_bytes"].as_u64().unwrap();
    assert!(
        bytes >= r#"{"0":{"ret_code":0,"result":"1"}}"#.len() as u64,
        "{line}"
    );
    assert_eq!(line["checked"], true);
}

#[test]
fn a_replay_that_differs_from_expected_exits_1_and_times_nothing() {
    let path = tiny_scenario("tiny-differs", "2");
    let output = braid_bench(&[path.to_str().unwrap(), "--iters", "2"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "nothing timed, no line");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bench/tiny-differs"), "{stderr}");
    assert!(
        stderr.contains("/steps/0/call_requests/0/result"),
        "{stderr}"
    );

    let output = braid_bench(&[path.to_str().unwrap(), "--allow-differences"]);
    assert_eq!(the_line(&output)["checked"], false);
}

#[test]
fn all_prints_a_table_of_every_workload_of_a_folder() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-all");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(shared_bench("null"), dir.join("null.json")).unwrap();
    std::fs::copy(shared_bench("call"), dir.join("call.json")).unwrap();
    let json = dir.join("lines.jsonl");
    let output = braid_bench(&[
        "--all",
        dir.to_str().unwrap(),
        "--iters",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let table = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "header, rule, two workloads: {table}");
    assert!(rows[2].starts_with("| call | 1 |"), "sorted: {table}");
    assert!(rows[3].starts_with("| null | 1 |"), "sorted: {table}");
    let lines = std::fs::read_to_string(&json).unwrap();
    assert_eq!(lines.lines().count(), 2);
}
