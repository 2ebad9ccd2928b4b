//! Every limit on hostile input is a clear error with the reference's code where the
//! spec gives one (execution-model.md §12, errors.md): AIR, data and call result sizes
//! (10, or a flag with soft limits), stream size (20013), nesting and recursion depth
//! (braid's 20022), and deeply nested data and call results.

use braid_fuzz::{on_big_stack, params};
use braid_interpreter::{CallResult, CallResults, Limits, Outcome, RunParams};

fn hard(limits: Limits) -> RunParams {
    let mut p = params("A", false);
    p.limits = Limits {
        hard: true,
        ..limits
    };
    p
}

fn run(script: &str, prev: &[u8], data: &[u8], p: &RunParams, results: &CallResults) -> Outcome {
    let out = braid_interpreter::invoke(script, prev, data, p, results);
    assert_eq!(
        out,
        braid_interpreter::invoke(script, prev, data, p, results),
        "not deterministic"
    );
    out
}

/// Data of `script` on A after one round with every call answered by `answer`.
fn answered(script: &str, answer: &str) -> Outcome {
    let p = params("A", false);
    let first = run(script, &[], &[], &p, &CallResults::new());
    let results = first
        .call_requests
        .iter()
        .map(|r| (r.id, CallResult::ok(answer)))
        .collect();
    run(script, &first.data, &[], &p, &results)
}

fn assert_kept(out: &Outcome, prev: &[u8]) {
    assert_eq!(out.data, prev, "the previous data must be kept");
    assert!(out.call_requests.is_empty() && out.next_peers.is_empty());
}

const CALL: &str = r#"(call "A" ("s" "f") [] x)"#;

#[test]
fn air_size_over_a_hard_limit_is_error_10() {
    let limits = Limits {
        air_size: 10,
        ..Limits::REFERENCE_MAXIMA
    };
    let out = run(CALL, &[], &[], &hard(limits), &CallResults::new());
    assert_eq!(out.ret_code(), 10);
    assert_eq!(
        out.error_message(),
        format!(
            "air size: {} bytes is bigger than the limit allowed: 10 bytes",
            CALL.len()
        )
    );
    assert!(out.limits_exceeded.air_size);
    assert_kept(&out, &[]);
    // Exactly at the limit is within it.
    let at = Limits {
        air_size: CALL.len() as u64,
        ..limits
    };
    assert_eq!(
        run(CALL, &[], &[], &hard(at), &CallResults::new()).ret_code(),
        0
    );
    // A soft limit only raises the flag.
    let mut soft = params("A", false);
    soft.limits = limits;
    let out = run(CALL, &[], &[], &soft, &CallResults::new());
    assert_eq!(out.ret_code(), 0, "{}", out.error_message());
    assert!(out.limits_exceeded.air_size);
    assert_eq!(out.call_requests.len(), 1);
}

#[test]
fn current_data_over_a_hard_limit_is_error_10() {
    let data = answered(CALL, "1").data;
    let limits = Limits {
        particle_size: 16,
        ..Limits::REFERENCE_MAXIMA
    };
    let prev = b"previous bytes, never decoded";
    let out = run(CALL, prev, &data, &hard(limits), &CallResults::new());
    assert_eq!(out.ret_code(), 10);
    assert_eq!(
        out.error_message(),
        format!(
            "Current_data particle size: {} bytes is bigger than the limit allowed: 16 bytes",
            data.len()
        )
    );
    assert!(out.limits_exceeded.particle_size);
    assert_kept(&out, prev);
    let mut soft = params("A", false);
    soft.limits = limits;
    let out = run(CALL, &[], &data, &soft, &CallResults::new());
    assert_eq!(out.ret_code(), 0, "{}", out.error_message());
    assert!(out.limits_exceeded.particle_size);
}

#[test]
fn a_call_result_over_a_hard_limit_is_error_10_even_for_an_unknown_id() {
    let limits = Limits {
        call_result_size: 8,
        ..Limits::REFERENCE_MAXIMA
    };
    let p = hard(limits);
    let first = run(CALL, &[], &[], &params("A", false), &CallResults::new());
    for id in [first.call_requests[0].id, 999] {
        let results: CallResults = [(id, CallResult::ok("\"123456789\""))].into();
        let out = run(CALL, &first.data, &[], &p, &results);
        assert_eq!(out.ret_code(), 10, "id {id}");
        assert_eq!(
            out.error_message(),
            "Call result size is bigger than the limit allowed: 8 bytes"
        );
        assert!(out.limits_exceeded.call_result_size);
        assert_kept(&out, &first.data);
    }
}

#[test]
fn the_1024th_value_of_a_stream_is_error_20013() {
    let script = r#"(seq (call "A" ("s" "list") [] xs) (fold xs i (seq (ap i $s) (next i))))"#;
    let list = |n: usize| format!("[{}]", vec!["1"; n].join(","));
    let full = on_big_stack(|| answered(script, &list(1023)));
    assert_eq!(full.ret_code(), 0, "{}", full.error_message());
    let over = on_big_stack(|| answered(script, &list(1024)));
    assert_eq!(over.ret_code(), 20013);
    assert!(
        over.error_message()
            .starts_with("stream size goes over the allowed limit of 1024"),
        "{}",
        over.error_message()
    );
}

#[test]
fn deep_nesting_and_deep_fold_recursion_are_error_20022() {
    let nested = format!(
        "{}(null){}",
        "(seq (null) ".repeat(25_000),
        ")".repeat(25_000)
    );
    let out = on_big_stack(|| run(&nested, &[], &[], &params("A", false), &CallResults::new()));
    assert_eq!(out.ret_code(), 20022, "{}", out.error_message());
    assert!(
        out.error_message()
            .starts_with("execution nested deeper than 20000 levels"),
        "{}",
        out.error_message()
    );
    assert_kept(&out, &[]);
    // A fold recurses once per element through `next`.
    let fold = r#"(seq (call "A" ("s" "list") [] xs) (fold xs i (next i)))"#;
    let list = format!("[{}]", vec!["1"; 25_000].join(","));
    let out = on_big_stack(|| answered(fold, &list));
    assert_eq!(out.ret_code(), 20022, "{}", out.error_message());
    // A shallower fold runs.
    let list = format!("[{}]", vec!["1"; 2_000].join(","));
    assert_eq!(on_big_stack(|| answered(fold, &list)).ret_code(), 0);
}

#[test]
fn deeply_nested_call_results_and_data_are_errors() {
    // A call result nested past the JSON reader's limit fails the call (catchable),
    // which `xor` can handle.
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let script = r#"(xor (call "A" ("s" "f") [] x) (call "A" ("s" "err") [:error:.$.message]))"#;
    let out = answered(script, &deep);
    assert_eq!(out.ret_code(), 0, "{}", out.error_message());
    assert_eq!(out.call_requests.len(), 1, "the error handler is called");
    assert!(
        out.call_requests[0]
            .arguments
            .contains("can't be serialized")
    );
    // Data that is a hundred thousand nested MessagePack arrays is refused as data.
    let data = vec![0x91u8; 100_000];
    let out = run(CALL, &[], &data, &params("A", true), &CallResults::new());
    assert!((2..=3).contains(&out.ret_code()), "{}", out.error_message());
    assert_kept(&out, &[]);
}
