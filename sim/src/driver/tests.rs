//! The driver run with fake interpreters: delivery order, call loop, delays, inject,
//! drop and the step limit, checked step by step.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use braid_interpreter::{CallRequest, CallResults, RunParams, Tetraplet};
use serde_json::{Value, json};

use braid_interpreter::{LimitFlags, Outcome};

use super::{KeepInputs, Run, run_with};
use crate::error::SimError;
use crate::scenario::Scenario;
use crate::transcript::{Cause, End, HostAnswer};

/// What a fake sees of one invoke.
struct Seen<'a> {
    peer: &'a str,
    prev: &'a [u8],
    current: &'a [u8],
    results: &'a CallResults,
}

/// A fake's decision: call requests (service, function, arguments) and next peers.
#[derive(Default)]
struct Does {
    calls: Vec<(&'static str, &'static str, Value)>,
    next: Vec<&'static str>,
    ret_code: i32,
}

/// Runs `scenario` with a fake that returns `decide`'s requests and next peers, and as
/// data the text `peer@N` (N counts invokes from 1), so records show where data came from.
fn run_fake(scenario: Value, decide: impl Fn(&Seen<'_>) -> Does + Sync) -> Result<Run, SimError> {
    let scenario = Scenario::from_json(&scenario.to_string()).expect("valid scenario");
    let invokes = AtomicUsize::new(0);
    let next_id = Mutex::new(std::collections::BTreeMap::<String, u32>::new());
    let fake =
        |_script: &str, prev: &[u8], current: &[u8], params: &RunParams, results: &CallResults| {
            let n = invokes.fetch_add(1, Ordering::SeqCst) + 1;
            let peer = params.current_peer_id.as_str();
            let does = decide(&Seen {
                peer,
                prev,
                current,
                results,
            });
            let mut ids = next_id.lock().expect("not poisoned");
            let id = ids.entry(peer.to_owned()).or_insert(0);
            // Ids are handed out in reverse so that the driver must sort them.
            let first = *id;
            *id += does.calls.len() as u32;
            let call_requests = does
                .calls
                .into_iter()
                .enumerate()
                .rev()
                .map(|(i, (service, function, args))| CallRequest {
                    id: first + i as u32 + 1,
                    service_id: service.into(),
                    function_name: function.into(),
                    tetraplets: vec![
                        vec![Tetraplet {
                            peer_pk: peer.into(),
                            ..Tetraplet::default()
                        }];
                        args.as_array().map_or(0, Vec::len)
                    ],
                    arguments: args.to_string(),
                })
                .collect();
            Ok(Outcome::reported(
                format!("{peer}@{n}").into_bytes(),
                call_requests,
                does.next.into_iter().map(String::from).collect(),
                does.ret_code,
                if does.ret_code == 0 {
                    String::new()
                } else {
                    "failed".into()
                },
                LimitFlags::default(),
            ))
        };
    run_with(&scenario, KeepInputs::All, &fake)
}

fn scenario(peers: &[&str], rules: Value, extra: Value) -> Value {
    let mut s = json!({
        "name": "test/fake",
        "air": "(null)",
        "particle": {"id": "p", "init_peer": peers[0], "timestamp": 5, "ttl": 7},
        "peers": peers,
        "services": {"rules": rules, "default": {"error": {"code": 1, "message": "no such service"}}},
    });
    if let (Some(s), Some(extra)) = (s.as_object_mut(), extra.as_object()) {
        s.extend(extra.clone());
    }
    s
}

fn causes(run: &Run) -> Vec<(String, Cause)> {
    run.transcript
        .steps
        .iter()
        .map(|s| (s.peer.clone(), s.cause.clone()))
        .collect()
}

fn text(data: &[u8]) -> &str {
    std::str::from_utf8(data).expect("fake data is text")
}

fn deliver(from: &str, from_step: usize) -> Cause {
    Cause::Deliver {
        from: from.into(),
        from_step,
    }
}

#[test]
fn delayed_answer_waits_a_round_and_params_follow_format_section_2() {
    // issues/issue_310_split_results: [0] answered at once, [1] one round later.
    let s = scenario(
        &["init"],
        json!([
            {"args": [0], "result": {"ok": 0}},
            {"args": [1], "result": {"delay": {"rounds": 1, "result": {"ok": 0}}}}
        ]),
        json!({}),
    );
    let run = run_fake(s, |seen| Does {
        calls: if seen.prev.is_empty() {
            vec![("", "", json!([0])), ("", "", json!([1]))]
        } else {
            vec![]
        },
        ..Does::default()
    })
    .unwrap();
    let t = &run.transcript;
    assert_eq!(
        causes(&run),
        vec![
            ("init".into(), Cause::Start),
            ("init".into(), Cause::Results),
            ("init".into(), Cause::Results),
        ]
    );
    let results: Vec<Vec<u32>> = run
        .records
        .iter()
        .map(|r| r.call_results.keys().copied().collect())
        .collect();
    assert_eq!(results, vec![vec![], vec![1], vec![2]]);
    assert_eq!(
        serde_json::to_value(&t.steps[0].call_requests[1].result).unwrap(),
        json!({"ret_code": 0, "result": "0", "delay": 1})
    );
    assert_eq!(t.end, End::Quiescent);
    // prev is the stored data, current is empty on results steps
    assert_eq!(text(&run.records[1].prev_data), "init@1");
    assert!(run.records[1].current_data.is_empty());
    let params = &run.records[0].params;
    assert_eq!(
        (
            params.init_peer_id.as_str(),
            params.current_peer_id.as_str()
        ),
        ("init", "init")
    );
    assert_eq!(
        (params.timestamp, params.ttl, params.particle_id.as_str()),
        (5, 7, "p")
    );
    // FORMAT.md §2's key (secret: the SHA-256 of the name), in braid's format 1: the
    // secret, then its public key.
    assert_eq!(params.key.format, 1);
    assert_eq!(
        params.key.secret[32..],
        braid_interpreter::public_key_of(&params.key.secret[..32].try_into().unwrap())
    );
    let secret: String = params.key.secret[..32]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        secret,
        "bb54068aea85faa7e487530083366be9962390af822e4c71ef1aca7033c83e66"
    ); // sha256("init")
}

#[test]
fn only_delayed_answers_skip_ahead() {
    // [1] waits 5 rounds but nothing else is due: the host skips ahead to it. [2] waits
    // 2 rounds after [0]'s round: it comes 2 rounds later than it would otherwise.
    let s = scenario(
        &["init"],
        json!([
            {"args": [0], "result": {"ok": 0}},
            {"args": [1], "result": {"delay": {"rounds": 5, "result": {"echo": "first"}}}},
            {"args": [2], "result": {"delay": {"rounds": 2, "result": {"echo": "all"}}}}
        ]),
        json!({}),
    );
    let run = run_fake(s, |seen| Does {
        calls: match (seen.prev.is_empty(), seen.results.keys().next()) {
            (true, _) => vec![("", "", json!([1]))],
            (false, Some(1)) => vec![("", "", json!([0])), ("", "", json!([2]))],
            _ => vec![],
        },
        ..Does::default()
    })
    .unwrap();
    let results: Vec<Vec<u32>> = run
        .records
        .iter()
        .map(|r| r.call_results.keys().copied().collect())
        .collect();
    // step 3 gets [0] (id 2); [2] (id 3) would have come in step 3 but waits 2 more:
    // step 4 is empty of due answers, so the host skips to step 4 with it.
    assert_eq!(results, vec![vec![], vec![1], vec![2], vec![3]]);
    assert_eq!(run.records[1].call_results[&1].result, "1");
    assert_eq!(run.records[3].call_results[&3].result, "[2]");
}

#[test]
fn sends_to_the_union_of_the_chain_sorted_and_skips_unknown_peers() {
    let s = scenario(
        &["a", "b", "c"],
        json!([{"peer": "a", "result": {"ok": 1}}]),
        json!({}),
    );
    let run = run_fake(s, |seen| {
        match (seen.peer, seen.results.is_empty(), seen.prev.is_empty()) {
            ("a", true, true) => Does {
                calls: vec![("s", "f", json!([]))],
                next: vec!["c", "ghost"],
                ..Does::default()
            },
            ("a", false, _) => Does {
                next: vec!["b", "c", "b"],
                ..Does::default()
            },
            _ => Does::default(),
        }
    })
    .unwrap();
    assert_eq!(
        causes(&run),
        vec![
            ("a".into(), Cause::Start),
            ("a".into(), Cause::Results),
            ("b".into(), deliver("a", 2)),
            ("c".into(), deliver("a", 2)),
        ]
    );
    let t = &run.transcript;
    assert_eq!(t.steps[0].next_peers, ["c", "ghost"]);
    assert_eq!(t.steps[1].next_peers, ["b", "c"]);
    // the chain's final data is sent, to every peer
    assert_eq!(text(&run.records[2].current_data), "a@2");
    assert_eq!(text(&run.records[3].current_data), "a@2");
    assert!(run.records[2].prev_data.is_empty());
    assert!(!t.peers.contains_key("ghost"));
    assert_eq!(t.peers["b"].last_ret_code, Some(0));
}

#[test]
fn inject_and_drop_reorder_deliveries() {
    // issues/issue_222_reordered: other_id gets other_2's data before other_1's.
    let s = scenario(
        &["other_id", "other_1", "other_2"],
        json!([
            {"peer": "other_id", "result": {"echo": "first"}},
            {"peer": "other_1", "result": {"ok": [1]}},
            {"peer": "other_2", "result": {"ok": [2]}}
        ]),
        json!({
            "inject": [{"after_step": 7, "to": "other_id", "data_from_step": 3}],
            "drop": [{"from_step": 3, "to": "other_id"}]
        }),
    );
    let run = run_fake(s, |seen| {
        let fresh = seen.results.is_empty() && !seen.current.is_empty();
        match seen.peer {
            "other_id" if seen.prev.is_empty() && seen.current.is_empty() => Does {
                next: vec!["other_2", "other_1"],
                ..Does::default()
            },
            "other_id" if fresh => Does {
                calls: vec![("", "", json!([[0]]))],
                ..Does::default()
            },
            _ if fresh => Does {
                calls: vec![("", "", json!([]))],
                ..Does::default()
            },
            "other_1" | "other_2" if !seen.results.is_empty() => Does {
                next: vec!["other_id"],
                ..Does::default()
            },
            _ => Does::default(),
        }
    })
    .unwrap();
    let inject = Cause::Inject {
        data_from_step: Some(3),
        prev: crate::scenario::InjectPrev::Stored,
    };
    assert_eq!(
        causes(&run),
        vec![
            ("other_id".into(), Cause::Start),
            ("other_1".into(), deliver("other_id", 1)),
            ("other_1".into(), Cause::Results),
            ("other_2".into(), deliver("other_id", 1)),
            ("other_2".into(), Cause::Results),
            ("other_id".into(), deliver("other_2", 5)),
            ("other_id".into(), Cause::Results),
            ("other_id".into(), inject),
            ("other_id".into(), Cause::Results),
        ]
    );
    assert_eq!(text(&run.records[7].current_data), "other_1@3");
    assert_eq!(text(&run.records[7].prev_data), "other_id@7");
    // the transcript writes the cause as FORMAT.md §4 does
    assert_eq!(
        serde_json::to_value(&run.transcript.steps[7].cause).unwrap(),
        json!({"kind": "inject", "data_from_step": 3, "prev": "stored"})
    );
    let summary = serde_json::to_value(&run.transcript.peers["other_id"]).unwrap();
    assert_eq!(
        summary,
        json!({"invokes": 5, "failed_invokes": 0, "last_ret_code": 0, "calls": 2, "never_answered": 0})
    );
}

#[test]
fn inject_prev_choices_and_empty_data() {
    let s = scenario(
        &["a", "b"],
        json!([]),
        json!({"inject": [
            {"after_step": 1, "to": "b", "prev": 1},
            {"after_step": 1, "to": "a", "data_from_step": 1, "prev": "empty"}
        ]}),
    );
    let run = run_fake(s, |_| Does::default()).unwrap();
    // listed order, both at the front
    assert_eq!(
        run.transcript
            .steps
            .iter()
            .map(|s| s.peer.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "a"]
    );
    assert_eq!(text(&run.records[1].prev_data), "a@1");
    assert!(run.records[1].current_data.is_empty());
    assert!(run.records[2].prev_data.is_empty());
    assert_eq!(text(&run.records[2].current_data), "a@1");
    assert_eq!(
        serde_json::to_value(&run.transcript.steps[1].cause).unwrap(),
        json!({"kind": "inject", "data_from_step": null, "prev": 1})
    );

    let early = scenario(
        &["a"],
        json!([]),
        json!({"inject": [{"after_step": 1, "to": "a", "data_from_step": 2}]}),
    );
    assert!(matches!(
        run_fake(early, |_| Does::default()),
        Err(SimError::InjectTooEarly { step: 2 })
    ));
}

#[test]
fn step_limit_stops_the_run() {
    let s = scenario(&["a", "b"], json!([]), json!({"max_steps": 3}));
    let run = run_fake(s, |seen| Does {
        next: vec![if seen.peer == "a" { "b" } else { "a" }],
        ..Does::default()
    })
    .unwrap();
    assert_eq!(run.transcript.steps.len(), 3);
    assert_eq!(run.transcript.end, End::StepLimit);
    assert_eq!(
        serde_json::to_value(run.transcript.end).unwrap(),
        json!("step_limit")
    );
}

#[test]
fn unanswered_calls_stay_pending_and_failures_are_counted() {
    let s = scenario(
        &["a"],
        json!([{"function": "hang", "result": {"none": true}}]),
        json!({}),
    );
    let run = run_fake(s, |seen| Does {
        calls: if seen.prev.is_empty() {
            vec![("s", "hang", json!([])), ("s", "other", json!([]))]
        } else {
            vec![]
        },
        ret_code: if seen.prev.is_empty() { 0 } else { 10000 },
        ..Does::default()
    })
    .unwrap();
    let t = &run.transcript;
    assert_eq!(t.steps.len(), 2);
    let answers: Vec<&HostAnswer> = t.steps[0].call_requests.iter().map(|c| &c.result).collect();
    assert_eq!(
        answers,
        [
            &HostAnswer::Never,
            &HostAnswer::Given {
                ret_code: 1,
                result: "no such service".into(),
                delay: 0
            },
        ]
    );
    assert_eq!(serde_json::to_value(answers[0]).unwrap(), json!("never"));
    assert_eq!(
        run.records[1]
            .call_results
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [2]
    );
    let summary = serde_json::to_value(&t.peers["a"]).unwrap();
    assert_eq!(
        summary,
        json!({"invokes": 2, "failed_invokes": 1, "last_ret_code": 10000, "calls": 2, "never_answered": 1})
    );
}

#[test]
fn long_strings_are_abbreviated_in_the_transcript_only() {
    let long = "x".repeat(1025);
    let s = scenario(&["a"], json!([{"result": {"ok": long}}]), json!({}));
    let run = run_fake(s, |seen| Does {
        calls: if seen.prev.is_empty() {
            vec![("s", "f", json!(["x".repeat(1025), "short"]))]
        } else {
            vec![]
        },
        ..Does::default()
    })
    .unwrap();
    let hashed =
        "<1025 bytes, sha256 c6d8e9905300876046729949cc95c2385221270d389176f7234fe7ac00c4e430>";
    let call = &run.transcript.steps[0].call_requests[0];
    assert_eq!(call.arguments, json!([hashed, "short"]));
    // the result string is the JSON text, quotes included
    let quoted =
        "<1027 bytes, sha256 e09b46f2b01c5612484e305152f309de3fee1cab8c6e2c3c4b68430dc5b6bffb>";
    assert_eq!(
        call.result,
        HostAnswer::Given {
            ret_code: 0,
            result: quoted.into(),
            delay: 0
        }
    );
    // the interpreter gets the real answer: the JSON text of the long string
    assert_eq!(run.records[1].call_results[&1].result.len(), 1027);
}

#[test]
fn a_panicking_interpreter_is_an_error_naming_the_step() {
    let s = scenario(&["a"], json!([]), json!({}));
    let err = run_fake(s, |_| panic!("boom")).unwrap_err();
    assert!(
        matches!(&err, SimError::Panicked { step: 1, peer, message } if peer == "a" && message == "boom"),
        "{err}"
    );
}

#[test]
fn arguments_that_are_not_an_array_are_an_error() {
    let s = scenario(&["a"], json!([]), json!({}));
    let err = run_fake(s, |_| Does {
        calls: vec![("s", "f", json!({"not": "an array"}))],
        ..Does::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, SimError::BadArguments { step: 1, id: 1, .. }),
        "{err}"
    );
}
