//! Data from other peers is untrusted: truncated, bit-flipped and random bytes, and
//! odd call results, give a clear error code and never a panic, and a failed
//! invocation leaves this peer's stored data as it was.

use braid_interpreter::{CallResult, CallResults, KeyPair, Limits, Outcome, RunParams, invoke};
use proptest::prelude::*;

const SCRIPT: &str = r#"
(seq
 (seq
  (call "A" ("s" "f") [] x)
  (par
   (call "A" ("s" "g") [x.$.a] $s)
   (ap x $s)))
 (seq
  (canon "A" $s #c)
  (fold #c i (seq (call "B" ("s" "h") [i]) (next i)))))
"#;

fn params(peer: &str) -> RunParams {
    RunParams {
        init_peer_id: "A".into(),
        current_peer_id: peer.into(),
        timestamp: 1,
        ttl: 1000,
        particle_id: "p".into(),
        key: KeyPair {
            format: 0,
            secret: vec![1; 32],
        },
        limits: Limits::REFERENCE_MAXIMA,
        integrity: Default::default(),
    }
}

/// Runs A until it has nothing more to do, answering every call.
fn data_of_a() -> Vec<u8> {
    let mut data = Vec::new();
    let mut results = CallResults::new();
    for _ in 0..5 {
        let out = invoke(SCRIPT, &data, &[], &params("A"), &results);
        assert_eq!(out.ret_code(), 0, "{}", out.error_message());
        data = out.data;
        results = out
            .call_requests
            .iter()
            .map(|r| (r.id, CallResult::ok(r#"{"a": [1, 2], "b": "text"}"#)))
            .collect();
        if results.is_empty() {
            break;
        }
    }
    data
}

fn check_failure_keeps_prev(out: &Outcome, prev: &[u8]) {
    let code = out.ret_code();
    if (1..=10).contains(&code) || (20000..30000).contains(&code) {
        assert_eq!(
            out.data, prev,
            "a failed invocation must return the previous data"
        );
        assert!(out.call_requests.is_empty() && out.next_peers.is_empty());
    }
}

#[test]
fn valid_data_replays_on_another_peer() {
    let data = data_of_a();
    let out = invoke(SCRIPT, &[], &data, &params("B"), &CallResults::new());
    assert_eq!(out.ret_code(), 0, "{}", out.error_message());
    assert_eq!(
        out.call_requests.len(),
        1,
        "B calls h for the first canon element"
    );
}

#[test]
fn every_truncation_is_an_error_or_a_prefix_that_decodes() {
    let data = data_of_a();
    let prev = invoke(SCRIPT, &[], &data, &params("B"), &CallResults::new()).data;
    for len in 0..data.len() {
        let out = invoke(
            SCRIPT,
            &prev,
            &data[..len],
            &params("B"),
            &CallResults::new(),
        );
        if len > 0 {
            assert!(
                out.ret_code() != 0,
                "truncated data at {len} of {} was accepted",
                data.len()
            );
        }
        check_failure_keeps_prev(&out, &prev);
    }
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = data
        .windows(from.len())
        .position(|w| w == from)
        .expect("the text is in the data");
    let mut out = data.to_vec();
    out[at..at + to.len()].copy_from_slice(to);
    out
}

#[test]
fn versions_have_their_own_errors() {
    let data = data_of_a();
    // The envelope is a map of three fields.
    assert_eq!(data[0], 0x83);
    // Current data of an interpreter older than 0.61.0: error 6, as the reference.
    let old = replace(&data, b"\xb20.64.1+braid.", b"\xb20.60.9+braid.");
    let out = invoke(SCRIPT, &[], &old, &params("B"), &CallResults::new());
    assert_eq!(out.ret_code(), 6, "{}", out.error_message());
    assert!(
        out.error_message().contains("`0.60.9+braid."),
        "{}",
        out.error_message()
    );
    // Another data version whose inner data does not decode: error 4.
    let mut other = replace(&data, b"0.17.2", b"0.99.9");
    let root = other.len() - 60;
    other[root..root + 4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    let out = invoke(SCRIPT, &[], &other, &params("B"), &CallResults::new());
    assert_eq!(out.ret_code(), 4, "{}", out.error_message());
    assert!(
        out.error_message()
            .contains("Supplied data version is 0.99.9"),
        "{}",
        out.error_message()
    );
    let out = invoke(
        SCRIPT,
        &[],
        b"\xc1garbage",
        &params("B"),
        &CallResults::new(),
    );
    assert_eq!(out.ret_code(), 3, "{}", out.error_message());
}

#[test]
fn odd_call_results_are_errors_not_panics() {
    let first = invoke(SCRIPT, &[], &[], &params("A"), &CallResults::new());
    let id = first.call_requests[0].id;
    for (ret_code, text) in [
        (0, "not json"),
        (0, ""),
        (0, &"[".repeat(10_000) as &str),
        (1, "boom"),
        (i32::MIN, "\u{0}"),
        (0, "18446744073709551616"),
    ] {
        let results: CallResults = [(
            id,
            CallResult {
                ret_code,
                result: text.to_owned(),
            },
        )]
        .into();
        let out = invoke(SCRIPT, &first.data, &[], &params("A"), &results);
        assert!(
            out.ret_code() == 10000 || out.ret_code() == 0,
            "{ret_code} {text:.20}: {}",
            out.error_message()
        );
        // The failure is recorded: replaying gives the same error again.
        let again = invoke(SCRIPT, &out.data, &[], &params("A"), &CallResults::new());
        assert_eq!(again.ret_code(), out.ret_code());
    }
    // A result for an id nobody waits for is reported, with the normal outcome.
    let results: CallResults = [(999, CallResult::ok("1"))].into();
    let out = invoke(SCRIPT, &first.data, &[], &params("A"), &results);
    assert_eq!(out.ret_code(), 30000);
    assert!(!out.data.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn flipped_bits_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8)) {
        let data = data_of_a();
        let mut bad = data.clone();
        for (at, bit) in flips {
            let i = at.index(bad.len());
            bad[i] ^= 1 << bit;
        }
        let prev = invoke(SCRIPT, &[], &data, &params("B"), &CallResults::new()).data;
        let out = invoke(SCRIPT, &prev, &bad, &params("B"), &CallResults::new());
        check_failure_keeps_prev(&out, &prev);
        // As prev data too.
        let out = invoke(SCRIPT, &bad, &[], &params("B"), &CallResults::new());
        check_failure_keeps_prev(&out, &bad);
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let out = invoke(SCRIPT, &[], &bytes, &params("B"), &CallResults::new());
        check_failure_keeps_prev(&out, &[]);
        let out = invoke(SCRIPT, &bytes, &[], &params("B"), &CallResults::new());
        check_failure_keeps_prev(&out, &bytes);
    }
}
