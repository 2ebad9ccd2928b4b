//! The host's limit on the bytes of one invocation's call requests
//! (`Limits::call_requests_size`): at the limit and under it the outcome is the one of
//! an unbounded run, byte for byte; one byte over, the invocation fails with 20023, no
//! request made and the stored data left as it was.

use braid_interpreter::{
    CallResult, CallResults, KeyPair, Limits, Outcome, RunParams, UncatchableError, invoke,
};

/// Two local calls on the same big value, in parallel, after one that gives it.
const SCRIPT: &str = r#"
(seq
 (call "A" ("s" "give") [] big)
 (par
  (call "A" ("op" "identity") [big "x"] r1)
  (call "A" ("op" "identity") [big] r2)))
"#;

fn params(limit: u64) -> RunParams {
    RunParams {
        init_peer_id: "A".into(),
        current_peer_id: "A".into(),
        timestamp: 1,
        ttl: 1000,
        particle_id: "p".into(),
        key: KeyPair {
            format: 0,
            secret: vec![1; 32],
        },
        limits: Limits {
            call_requests_size: limit,
            ..Limits::REFERENCE_MAXIMA
        },
        integrity: Default::default(),
    }
}

/// The data after the first call is answered with a 10 KiB string, and the outcome of
/// the invocation that takes that answer (it asks for the two parallel calls) under
/// `limit`.
fn second_step(limit: u64) -> (Vec<u8>, Outcome) {
    let first = invoke(SCRIPT, &[], &[], &params(u64::MAX), &CallResults::new());
    assert_eq!(first.ret_code(), 0, "{}", first.error_message());
    assert_eq!(first.call_requests.len(), 1);
    let answer = format!("\"{}\"", "v".repeat(10 << 10));
    let results: CallResults = [(first.call_requests[0].id, CallResult::ok(answer))].into();
    let out = invoke(SCRIPT, &first.data, &[], &params(limit), &results);
    (first.data, out)
}

#[test]
fn requests_at_and_under_the_limit_are_made_as_without_it() {
    let (_, unbounded) = second_step(u64::MAX);
    assert_eq!(unbounded.ret_code(), 0, "{}", unbounded.error_message());
    assert_eq!(unbounded.call_requests.len(), 2);
    let total: u64 = unbounded.call_requests.iter().map(|r| r.text_bytes()).sum();
    // Both requests carry the 10 KiB value.
    assert!(total > 20 << 10, "{total}");
    for limit in [total, total + 1] {
        let (_, out) = second_step(limit);
        assert_eq!(out, unbounded, "limit {limit}");
    }
}

#[test]
fn one_byte_over_the_limit_fails_the_invocation_and_keeps_the_data() {
    let (_, unbounded) = second_step(u64::MAX);
    let total: u64 = unbounded.call_requests.iter().map(|r| r.text_bytes()).sum();
    // Just over: the second request does not fit; under the first alone: neither.
    let first_alone = unbounded.call_requests[0].text_bytes();
    for limit in [total - 1, first_alone, first_alone - 1, 0] {
        let (prev, out) = second_step(limit);
        assert_eq!(
            out.ret_code(),
            UncatchableError::CALL_REQUESTS_SIZE,
            "limit {limit}"
        );
        assert!(
            out.error_message()
                .contains(&format!("limit of {limit} bytes")),
            "{}",
            out.error_message()
        );
        assert!(out.call_requests.is_empty());
        assert!(out.next_peers.is_empty());
        assert_eq!(out.data, prev, "the stored data is kept");
    }
}
