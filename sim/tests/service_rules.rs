//! The service rules of FORMAT.md §1: which rule answers, what it answers, and how the
//! `sequence` counters advance.

use braid_sim::scenario::{Scenario, Services};
use braid_sim::service_rules::{Answer, CallSite, ServiceHost};
use serde_json::{Value, json};

fn services(rules: Value) -> Services {
    serde_json::from_value(json!({
        "rules": rules,
        "default": {"error": {"code": 1, "message": "no such service"}}
    }))
    .expect("valid services")
}

fn call<'a>(peer: &'a str, service: &'a str, function: &'a str, args: &'a [Value]) -> CallSite<'a> {
    CallSite {
        peer,
        service,
        function,
        args,
    }
}

fn given(ret_code: i32, result: &str) -> Answer {
    Answer::Given {
        ret_code,
        result: result.into(),
        delay: 0,
    }
}

#[test]
fn the_first_matching_rule_answers_and_every_field_must_hold() {
    let s = services(json!([
        {"peer": "A", "service": "s", "function": "f", "result": {"ok": 1}},
        {"service": "s", "result": {"ok": 2}},
        {"function_name": "g", "result": {"ok": 3}},
        {"args": [1, {"b": 2, "a": 1}], "result": {"ok": 4}},
        {"args_prefix": ["p"], "result": {"ok": 5}}
    ]));
    let mut host = ServiceHost::new(&s);
    let mut ask = |peer, service, function, args: Value| {
        let args = args.as_array().expect("an array").clone();
        host.answer(call(peer, service, function, &args))
            .expect("answers")
    };
    assert_eq!(ask("A", "s", "f", json!([])), given(0, "1"));
    assert_eq!(ask("B", "s", "f", json!([])), given(0, "2"));
    assert_eq!(ask("A", "t", "f", json!([])), given(1, "no such service"));
    assert_eq!(ask("A", "t", "g", json!([])), given(0, "3"));
    // `args` is the whole list; object key order does not matter
    assert_eq!(
        ask("A", "t", "h", json!([1, {"a": 1, "b": 2}])),
        given(0, "4")
    );
    assert_eq!(
        ask("A", "t", "h", json!([1, {"a": 1, "b": 2}, 3])),
        given(1, "no such service")
    );
    assert_eq!(ask("A", "t", "h", json!([1])), given(1, "no such service"));
    // `args_prefix` is a prefix, the whole list included
    assert_eq!(ask("A", "t", "h", json!(["p"])), given(0, "5"));
    assert_eq!(ask("A", "t", "h", json!(["p", 1, 2])), given(0, "5"));
    assert_eq!(
        ask("A", "t", "h", json!(["q", "p"])),
        given(1, "no such service")
    );
    assert_eq!(ask("A", "t", "h", json!([])), given(1, "no such service"));
}

#[test]
fn every_result_kind() {
    let s = services(json!([
        {"function": "ok", "result": {"ok": {"z": [1.5, null], "a": "x"}}},
        {"function": "error", "result": {"error": {"code": 7, "message": "not JSON: {"}}},
        {"function": "first", "result": {"echo": "first"}},
        {"function": "all", "result": {"echo": "all"}},
        {"function": "none", "result": {"none": true}},
        {"function": "raw", "result": {"raw": {"ret_code": 0, "result": "not json"}}},
        {"function": "delay", "result": {"delay": {"rounds": 3, "result": {"echo": "first"}}}},
        {"function": "generate", "result": {"generate": {"seed": 0, "value": {"b": {"$hex": 4}, "a": {"$hex": 4}}}}}
    ]));
    let mut host = ServiceHost::new(&s);
    let args = [json!({"y": 1, "x": [2]}), json!("two")];
    let mut ask = |function, args: &[Value]| {
        host.answer(call("A", "s", function, args))
            .expect("answers")
    };
    assert_eq!(ask("ok", &args), given(0, r#"{"a":"x","z":[1.5,null]}"#));
    assert_eq!(ask("error", &args), given(7, "not JSON: {"));
    assert_eq!(ask("first", &args), given(0, r#"{"x":[2],"y":1}"#));
    assert_eq!(ask("first", &[]), given(0, "null"));
    assert_eq!(ask("all", &args), given(0, r#"[{"x":[2],"y":1},"two"]"#));
    assert_eq!(ask("all", &[]), given(0, "[]"));
    assert_eq!(ask("none", &args), Answer::Never);
    assert_eq!(ask("raw", &args), given(0, "not json"));
    assert_eq!(
        ask("delay", &args),
        Answer::Given {
            ret_code: 0,
            result: r#"{"x":[2],"y":1}"#.into(),
            delay: 3
        }
    );
    // FORMAT.md §8.3's example; every answer of the rule is the same value
    assert_eq!(
        ask("generate", &args),
        given(0, r#"{"a":"e220","b":"6e78"}"#)
    );
    assert_eq!(
        ask("generate", &args),
        given(0, r#"{"a":"e220","b":"6e78"}"#)
    );
}

#[test]
fn sequence_counters_belong_to_the_rule_and_span_all_peers() {
    let s = serde_json::from_value::<Services>(json!({
        "rules": [
            {"function": "f", "result": {"sequence": [{"ok": 1}, {"error": {"code": 2, "message": "m"}}, {"ok": 3}]}},
            {"function": "g", "result": {"sequence": [{"ok": "g1"}, {"delay": {"rounds": 1, "result": {"ok": "g2"}}}]}}
        ],
        "default": {"sequence": [{"ok": "d1"}, {"none": true}]}
    }))
    .unwrap();
    let mut host = ServiceHost::new(&s);
    let mut ask = |peer, function| {
        host.answer(call(peer, "s", function, &[]))
            .expect("answers")
    };
    assert_eq!(ask("A", "f"), given(0, "1"));
    assert_eq!(ask("B", "g"), given(0, "\"g1\""));
    assert_eq!(ask("B", "f"), given(2, "m"));
    assert_eq!(ask("A", "x"), given(0, "\"d1\""));
    assert_eq!(ask("C", "f"), given(0, "3"));
    // the last entry repeats
    assert_eq!(ask("A", "f"), given(0, "3"));
    assert_eq!(
        ask("A", "g"),
        Answer::Given {
            ret_code: 0,
            result: "\"g2\"".into(),
            delay: 1
        }
    );
    assert_eq!(ask("A", "x"), Answer::Never);
    assert_eq!(ask("B", "x"), Answer::Never);
    // a new host starts new counters
    let mut fresh = ServiceHost::new(&s);
    assert_eq!(
        fresh.answer(call("A", "s", "f", &[])).unwrap(),
        given(0, "1")
    );
}

fn scenario_with(services: Value) -> Result<Scenario, braid_sim::SimError> {
    Scenario::from_json(
        &json!({
            "name": "t/t", "air": "(null)",
            "particle": {"id": "p", "init_peer": "A", "timestamp": 0, "ttl": 0},
            "peers": ["A"],
            "services": services
        })
        .to_string(),
    )
}

#[test]
fn malformed_results_are_rejected_with_a_clear_error() {
    let default = json!({"ok": null});
    let bad = |result: Value| {
        scenario_with(json!({"rules": [{"result": result}], "default": default}))
            .expect_err("rejected")
            .to_string()
    };
    let unknown = bad(json!({"okay": 1}));
    assert!(unknown.contains("unknown variant `okay`"), "{unknown}");
    assert!(
        unknown.contains(
            "expected one of `ok`, `error`, `echo`, `sequence`, `none`, `raw`, `delay`, `generate`"
        ),
        "{unknown}"
    );
    assert!(bad(json!({"echo": "second"})).contains("unknown variant `second`"));
    assert!(bad(json!({"sequence": [{"sequence": [{"ok": 1}]}]})).contains("cannot be a sequence"));
    assert!(bad(json!({"sequence": []})).contains("empty sequence"));
    assert!(bad(json!({"none": false})).contains("must be true"));
    assert!(
        bad(json!({"delay": {"rounds": 1, "result": {"none": true}}})).contains("delay must wrap")
    );
    assert!(bad(json!({"ok": 1, "error": {"code": 1}})).contains("bad scenario"));
    let unknown_field =
        scenario_with(json!({"rules": [{"result": {"ok": 1}, "peers": "A"}], "default": default}))
            .expect_err("rejected")
            .to_string();
    assert!(
        unknown_field.contains("unknown field `peers`"),
        "{unknown_field}"
    );
    let no_default = scenario_with(json!({"rules": []}))
        .expect_err("rejected")
        .to_string();
    assert!(
        no_default.contains("missing field `default`"),
        "{no_default}"
    );
    // a sequence may hold a delay
    scenario_with(json!({"rules": [], "default": {"sequence": [{"delay": {"rounds": 1, "result": {"ok": 1}}}]}}))
        .expect("valid");
}
