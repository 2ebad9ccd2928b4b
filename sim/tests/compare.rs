//! Comparison of transcripts (FORMAT.md §5), on small handwritten transcripts.

use braid_sim::scenario::IgnoreArg;
use braid_sim::{diff, normalize};
use serde_json::{Value, json};

fn transcript(steps: Value) -> Value {
    json!({"steps": steps, "peers": {"A": {"invokes": 1, "failed_invokes": 0, "last_ret_code": 0, "calls": 1, "never_answered": 0}}, "end": "quiescent"})
}

fn step(error_message: &str, call_requests: Value) -> Value {
    json!({
        "step": 1, "peer": "A", "cause": {"kind": "start"}, "ret_code": 0,
        "error_message": error_message, "next_peers": [], "call_requests": call_requests
    })
}

fn request(function: &str, arguments: Value, result: &str) -> Value {
    json!({"service": "s", "function": function, "arguments": arguments, "tetraplets": [],
           "result": {"ret_code": 0, "result": result}})
}

fn lines(expected: &Value, actual: &Value, ignore: &[IgnoreArg]) -> Vec<String> {
    diff(expected, actual, ignore, 20)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn equal_transcripts_have_no_difference() {
    let t = transcript(json!([step("", json!([request("f", json!([1]), "1")]))]));
    assert!(lines(&t, &t, &[]).is_empty());
}

#[test]
fn error_messages_are_never_compared() {
    let e = transcript(json!([step("one text", json!([]))]));
    let a = transcript(json!([step("another", json!([]))]));
    assert!(lines(&e, &a, &[]).is_empty());
    assert!(
        normalize(&e, &[])["steps"][0]
            .get("error_message")
            .is_none()
    );
}

#[test]
fn error_objects_keep_their_code_and_peer_but_not_their_texts() {
    let error = |message: &str, instruction: &str, code: i64| json!({"error_code": code, "message": message, "instruction": instruction, "peer_id": "A"});
    let e = transcript(json!([step(
        "",
        json!([request(
            "f",
            json!([error("m1", "i1", 10000), [{"x": error("m", "i", 1)}]]),
            "r"
        )])
    )]));
    let a = transcript(json!([step(
        "",
        json!([request(
            "f",
            json!([error("m2", "i2", 10000), [{"x": error("n", "j", 1)}]]),
            "r"
        )])
    )]));
    assert!(lines(&e, &a, &[]).is_empty());
    let normalized = normalize(&e, &[]);
    assert_eq!(
        normalized["steps"][0]["call_requests"][0]["arguments"][0],
        json!({"error_code": 10000, "message": "<ignored>", "instruction": "<ignored>", "peer_id": "A"})
    );
    // codes are compared
    let a = transcript(json!([step(
        "",
        json!([request(
            "f",
            json!([error("m", "i", 10001), [{"x": error("m", "i", 1)}]]),
            "r"
        )])
    )]));
    assert_eq!(
        lines(&e, &a, &[]),
        ["/steps/0/call_requests/0/arguments/0/error_code: expected 10000, got 10001"]
    );
    // the keys must be there
    let a = transcript(json!([step(
        "",
        json!([request(
            "f",
            json!([{"error_code": 10000, "peer_id": "A", "message": "m"}, [{"x": error("m", "i", 1)}]]),
            "r"
        )])
    )]));
    assert_eq!(
        lines(&e, &a, &[]),
        [r#"/steps/0/call_requests/0/arguments/0/instruction: missing (expected "<ignored>")"#]
    );
    // only inside arguments: a result text is compared
    let a = transcript(json!([step(
        "",
        json!([request(
            "f",
            json!([error("m", "i", 10000), [{"x": error("m", "i", 1)}]]),
            "other"
        )])
    )]));
    assert_eq!(
        lines(&e, &a, &[]),
        [r#"/steps/0/call_requests/0/result/result: expected "r", got "other""#]
    );
}

#[test]
fn ignore_args_selects_calls_by_service_function_and_index() {
    let e = transcript(json!([step(
        "",
        json!([
            request("msg", json!(["text one", 1]), "\"text one\""),
            request("other", json!(["kept"]), "r")
        ])
    )]));
    let a = transcript(json!([step(
        "",
        json!([
            request("msg", json!(["text two", 1]), "\"text two\""),
            request("other", json!(["kept"]), "r")
        ])
    )]));
    let by_index = [IgnoreArg {
        function: Some("msg".into()),
        index: Some(0),
        ..IgnoreArg::default()
    }];
    assert!(lines(&e, &a, &by_index).is_empty());
    assert_eq!(
        normalize(&e, &by_index)["steps"][0]["call_requests"][0],
        json!({"service": "s", "function": "msg", "arguments": ["<ignored>", 1], "tetraplets": [], "result": "<ignored>"})
    );
    // all arguments when index is absent
    let all = [IgnoreArg {
        service: Some("s".into()),
        function: Some("msg".into()),
        index: None,
    }];
    assert_eq!(
        normalize(&e, &all)["steps"][0]["call_requests"][0]["arguments"],
        json!(["<ignored>", "<ignored>"])
    );
    // a rule whose service does not match selects nothing
    let elsewhere = [IgnoreArg {
        service: Some("t".into()),
        ..IgnoreArg::default()
    }];
    assert_eq!(lines(&e, &a, &elsewhere).len(), 2);
    // without rules the texts differ (the call sorts after `["kept"]`)
    assert_eq!(
        lines(&e, &a, &[]),
        [
            r#"/steps/0/call_requests/1/arguments/0: expected "text one", got "text two""#,
            r#"/steps/0/call_requests/1/result/result: expected "\"text one\"", got "\"text two\"""#,
        ]
    );
}

#[test]
fn call_requests_are_re_sorted_after_normalization() {
    // sorted by their texts before normalization, the two calls are in opposite orders
    let error = |message: &str| json!({"error_code": 1, "message": message, "instruction": "i", "peer_id": "A"});
    let e = transcript(json!([step(
        "",
        json!([
            request("f", json!([error("a")]), "r"),
            request("f", json!([error("b"), 2]), "r")
        ])
    )]));
    let a = transcript(json!([step(
        "",
        json!([
            request("f", json!([error("a"), 2]), "r"),
            request("f", json!([error("b")]), "r")
        ])
    )]));
    assert!(lines(&e, &a, &[]).is_empty());
}

#[test]
fn numbers_are_equal_when_numerically_equal() {
    let e = transcript(json!([step(
        "",
        json!([request(
            "f",
            json!([1, 2.5, -3, 18446744073709551615u64]),
            "r"
        )])
    )]));
    let a = transcript(json!([step(
        "",
        json!([request(
            "f",
            json!([1.0, 2.5, -3.0, 18446744073709551615u64]),
            "r"
        )])
    )]));
    assert!(lines(&e, &a, &[]).is_empty());
    let a = transcript(json!([step(
        "",
        json!([request(
            "f",
            json!([1.0, 2.5, -3.0, 18446744073709551614u64]),
            "r"
        )])
    )]));
    assert_eq!(
        lines(&e, &a, &[]),
        [
            "/steps/0/call_requests/0/arguments/3: expected 18446744073709551615, got 18446744073709551614"
        ]
    );
    // a number is not a string
    let a = transcript(json!([step(
        "",
        json!([request(
            "f",
            json!(["1", 2.5, -3, 18446744073709551615u64]),
            "r"
        )])
    )]));
    assert_eq!(
        lines(&e, &a, &[]),
        [r#"/steps/0/call_requests/0/arguments/0: expected 1, got "1""#]
    );
}

#[test]
fn differences_are_json_paths() {
    let e = transcript(json!([
        step("", json!([request("f", json!([1, 2]), "r")])),
        step("", json!([]))
    ]));
    let mut a = transcript(json!([step("", json!([request("f", json!([1, 3]), "r")]))]));
    a["peers"]["A"]["calls"] = json!(2);
    a["peers"]["A"].as_object_mut().unwrap().remove("invokes");
    a["peers"]["B"] = json!({});
    a["end"] = json!("step_limit");
    assert_eq!(
        lines(&e, &a, &[]),
        [
            r#"/end: expected "quiescent", got "step_limit""#,
            "/peers/A/calls: expected 1, got 2",
            "/peers/A/invokes: missing (expected 1)",
            "/peers/B: unexpected {}",
            "/steps/0/call_requests/0/arguments/1: expected 2, got 3",
            "/steps: expected 2 items, got 1",
        ]
    );
    // at most `limit`
    assert_eq!(diff(&e, &a, &[], 2).len(), 2);
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "y".repeat(500);
    let e = json!({"end": long});
    let a = json!({"end": "x"});
    let line = lines(&e, &a, &[]).remove(0);
    assert!(line.starts_with(r#"/end: expected "yyy"#), "{line}");
    assert!(line.ends_with(r#"..., got "x""#), "{line}");
    assert!(line.len() < 250, "{line}");
}
