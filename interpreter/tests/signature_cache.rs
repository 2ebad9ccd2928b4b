//! The host's signature cache (`invoke_with_cache`): a signature checked or made once is
//! not verified again on the same node, every outcome is byte for byte the one of
//! `invoke`, and a cached signature never vouches for another message (a replay that
//! drops a result is still refused).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use braid_interpreter::{
    CallResult, CallResults, Integrity, KeyPair, Limits, Outcome, RunParams, SignatureCache,
    SignatureOperation, invoke, invoke_with_cache, public_key_of, testing,
};

/// A and M each produce a result; B reads both. Every peer runs twice on the way.
const SCRIPT: &str = r#"
(seq
 (seq
  (call "A" ("s" "f") [] x)
  (call "M" ("s" "g") [x] y))
 (seq
  (call "A" ("s" "h") [x y] z)
  (call "B" ("s" "k") [x y z])))
"#;

fn secret(peer: &str) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..peer.len()].copy_from_slice(peer.as_bytes());
    s
}

/// The host's key as a node passes it (format 1: secret and public key).
fn params(peer: &str) -> RunParams {
    let trusted_keys: BTreeMap<String, [u8; 32]> = ["A", "M", "B"]
        .iter()
        .map(|p| (p.to_string(), public_key_of(&secret(p))))
        .collect();
    RunParams {
        init_peer_id: "A".into(),
        current_peer_id: peer.into(),
        timestamp: 1,
        ttl: 1000,
        particle_id: "p1".into(),
        key: KeyPair::ed25519(&secret(peer)),
        limits: Limits::REFERENCE_MAXIMA,
        integrity: Integrity {
            check: true,
            trusted_keys,
        },
    }
}

/// A node's cache: a set, and the Ed25519 work it was told of.
#[derive(Default)]
struct Counting {
    entries: RefCell<BTreeSet<[u8; 32]>>,
    verified: Cell<u32>,
    signed: Cell<u32>,
}

impl SignatureCache for Counting {
    fn contains(&self, entry: &[u8; 32]) -> bool {
        self.entries.borrow().contains(entry)
    }
    fn insert(&self, entry: [u8; 32]) {
        self.entries.borrow_mut().insert(entry);
    }
    fn performed(&self, operation: SignatureOperation) {
        let counter = match operation {
            SignatureOperation::Verified => &self.verified,
            SignatureOperation::Signed => &self.signed,
            _ => return,
        };
        counter.set(counter.get() + 1);
    }
}

/// One invoke with the cache, checked against the same invoke without it.
fn step(cache: &Counting, peer: &str, prev: &[u8], data: &[u8], results: &CallResults) -> Outcome {
    let cached = invoke_with_cache(SCRIPT, prev, data, &params(peer), results, cache);
    let plain = invoke(SCRIPT, prev, data, &params(peer), results);
    assert_eq!(cached, plain, "the cache changed {peer}'s outcome");
    cached
}

/// Runs `peer` on arriving data until it has no calls left, answering each with
/// `"from <peer>"`.
fn visit(cache: &Counting, peer: &str, prev: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = step(cache, peer, prev, data, &CallResults::new());
    while !out.call_requests.is_empty() {
        assert_eq!(out.ret_code(), 0, "{}", out.error_message());
        let results = out
            .call_requests
            .iter()
            .map(|r| (r.id, CallResult::ok(format!("\"from {peer}\""))))
            .collect();
        out = step(cache, peer, &out.data, &[], &results);
    }
    assert_eq!(out.ret_code(), 0, "{}", out.error_message());
    out.data
}

#[test]
fn a_node_verifies_each_signature_once_and_not_its_own() {
    let (a, m, b) = (
        Counting::default(),
        Counting::default(),
        Counting::default(),
    );
    let a1 = visit(&a, "A", &[], &[]);
    assert_eq!((a.verified.get(), a.signed.get()), (0, 1));
    let m1 = visit(&m, "M", &[], &a1);
    assert_eq!(
        (m.verified.get(), m.signed.get()),
        (1, 1),
        "M checks A's signature"
    );
    // A again: M's signature is new to it, its own it made.
    let a2 = visit(&a, "A", &a1, &m1);
    assert_eq!((a.verified.get(), a.signed.get()), (1, 2));
    let verified = b.verified.get();
    visit(&b, "B", &[], &a2);
    assert_eq!(b.verified.get() - verified, 2, "B checks A's and M's");
    // The same data arriving again at B is not verified again.
    let verified = b.verified.get();
    visit(&b, "B", &[], &a2);
    assert_eq!(b.verified.get(), verified);
}

#[test]
fn a_cached_signature_does_not_vouch_for_other_results() {
    let (a, m, b) = (
        Counting::default(),
        Counting::default(),
        Counting::default(),
    );
    let a1 = visit(&a, "A", &[], &[]);
    let m1 = visit(&m, "M", &[], &a1);
    // B checks (and caches) A's and M's honest signatures.
    visit(&b, "B", &[], &m1);
    assert_eq!(b.verified.get(), 2);
    // A's result altered on the way, its id recomputed, A's signature kept: the
    // cached signature is over other results, so B verifies it again and refuses.
    let forged = testing::rewrite_result(&m1, r#""from A""#, r#""forged""#);
    let out = step(&b, "B", &[], &forged, &CallResults::new());
    assert_eq!(out.ret_code(), 9, "{}", out.error_message());
    assert!(out.error_message().contains("signature mismatch"));
    assert_eq!(b.verified.get(), 3);
}
