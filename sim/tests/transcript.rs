//! The transcript's pure parts (FORMAT.md §4): canonical JSON text, long-string
//! replacement, sorting of call requests, the pending answers of a chain, and the
//! transcript types against every recorded transcript.

use std::path::Path;

use braid_interpreter::CallResult;
use braid_sim::pending_answers::PendingAnswers;
use braid_sim::transcript::{
    CallRecord, HostAnswer, TetrapletRecord, abbreviate_long_strings, abbreviate_str,
    sort_call_records,
};
use braid_sim::{Scenario, Transcript, canonical_json, scenario_files};
use serde_json::{Value, json};

#[test]
fn canonical_json_sorts_keys_at_every_level_by_bytes() {
    let v: Value = serde_json::from_str(
        r#"{"b": [ {"z": 1, "é": 2, "Z": 3} ], "a": 1.50, "": null, "c": "\u0001\"é"}"#,
    )
    .unwrap();
    assert_eq!(
        canonical_json(&v),
        r#"{"":null,"a":1.5,"b":[{"Z":3,"z":1,"é":2}],"c":"\u0001\"é"}"#
    );
    assert_eq!(canonical_json(&json!(1e300)), "1e+300");
    assert_eq!(canonical_json(&json!(-0.1)), "-0.1");
    assert_eq!(canonical_json(&json!(u64::MAX)), "18446744073709551615");
}

#[test]
fn strings_over_1024_bytes_are_replaced_by_size_and_sha256() {
    let at_limit = "a".repeat(1024);
    assert_eq!(abbreviate_str(&at_limit), at_limit.as_str());
    // 1025 bytes of "x": see `printf 'x%.0s' {1..1025} | sha256sum`
    assert_eq!(
        abbreviate_str(&"x".repeat(1025)),
        "<1025 bytes, sha256 c6d8e9905300876046729949cc95c2385221270d389176f7234fe7ac00c4e430>"
    );
    // bytes, not characters: 600 two-byte characters are 1200 bytes
    assert!(abbreviate_str(&"é".repeat(600)).starts_with("<1200 bytes, sha256 "));
    assert_eq!(abbreviate_str(&"é".repeat(512)), "é".repeat(512));
    // at any depth, keys kept
    let long = "x".repeat(1025);
    let v = abbreviate_long_strings(json!([{"k": [long.clone()], long.clone(): 1}, "short", 5]));
    let hashed = abbreviate_str(&long).into_owned();
    assert_eq!(v, json!([{"k": [hashed], long: 1}, "short", 5]));
}

fn record(args: Value, result: HostAnswer) -> CallRecord {
    CallRecord {
        service: "s".into(),
        function: "f".into(),
        arguments: args,
        tetraplets: vec![vec![TetrapletRecord {
            peer_pk: "A".into(),
            service_id: String::new(),
            function_name: String::new(),
            lens: String::new(),
        }]],
        result,
    }
}

#[test]
fn call_requests_sort_by_canonical_text() {
    let ok = |r: &str| HostAnswer::Given {
        ret_code: 0,
        result: r.into(),
        delay: 0,
    };
    let mut records = vec![
        record(json!([2]), ok("1")),
        record(json!([{"b": 1, "a": 2}]), ok("1")),
        record(json!([10]), ok("1")),
        record(json!([1]), HostAnswer::Never),
        record(json!([1]), ok("0")),
    ];
    sort_call_records(&mut records);
    let order: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                canonical_json(&r.arguments),
                serde_json::to_string(&r.result).unwrap()
            )
        })
        .collect();
    // texts, not values: `[10` sorts before `[1]`; `arguments` is the first key;
    // `"never"` sorts before `{`
    assert_eq!(
        order,
        [
            r#"[10] {"ret_code":0,"result":"1"}"#,
            r#"[1] "never""#,
            r#"[1] {"ret_code":0,"result":"0"}"#,
            r#"[2] {"ret_code":0,"result":"1"}"#,
            r#"[{"a":2,"b":1}] {"ret_code":0,"result":"1"}"#,
        ]
    );
}

#[test]
fn pending_answers_give_due_ones_and_skip_ahead_to_delayed_ones() {
    let answer = |n: i32| CallResult::error(n, "x");
    let keys = |p: &mut PendingAnswers| {
        p.next_round()
            .map(|r| r.keys().copied().collect::<Vec<_>>())
    };
    let mut p = PendingAnswers::new();
    assert_eq!(keys(&mut p), None);
    p.push(0, 1, answer(1));
    p.push(2, 2, answer(2));
    p.push(1, 3, answer(3));
    assert_eq!(keys(&mut p), Some(vec![1]));
    // a new answer due now joins the round of those whose delay has run out
    p.push(0, 4, answer(4));
    assert_eq!(keys(&mut p), Some(vec![3, 4]));
    assert_eq!(keys(&mut p), Some(vec![2]));
    assert!(p.is_empty());
    // only delayed ones: skip ahead to the earliest, the rest keep their distance
    p.push(5, 5, answer(5));
    p.push(7, 6, answer(6));
    let round = p.next_round().unwrap();
    assert_eq!(round[&5], answer(5));
    assert_eq!(keys(&mut p), Some(vec![6]));
    assert_eq!(keys(&mut p), None);
}

#[test]
fn every_recorded_transcript_reads_and_writes_back_unchanged() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
    let dirs = ["conformance/scenarios", "conformance/real", "bench"].map(|d| root.join(d));
    let files = scenario_files(&dirs).unwrap();
    assert!(files.len() > 1000, "found {} scenarios", files.len());
    for file in files {
        let scenario = Scenario::load(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let expected = scenario.expected.expect("recorded");
        let transcript: Transcript = serde_json::from_value(expected.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", scenario.name));
        assert_eq!(transcript.to_json(), expected, "{}", scenario.name);
    }
}
