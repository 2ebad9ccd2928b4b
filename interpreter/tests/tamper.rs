//! Integrity: a peer on a particle's path that alters a value, rewrites another peer's
//! result, drops a signature, signs in another peer's name or replays data from
//! another particle is caught by the next honest peer (errors 8 and 9), which keeps
//! its own data unchanged.

use std::collections::BTreeMap;

use braid_interpreter::{
    CallResult, CallResults, Integrity, KeyPair, Limits, RunParams, invoke, peer_id_of,
    public_key_of, testing,
};

const SCRIPT: &str = r#"
(seq
 (call "A" ("s" "f") [] x)
 (seq
  (call "M" ("s" "g") [x] y)
  (call "B" ("s" "h") [x y])))
"#;

fn secret(peer: &str) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..peer.len()].copy_from_slice(peer.as_bytes());
    s
}

fn params(peer: &str, particle: &str) -> RunParams {
    params_with_key(peer, &secret(peer), particle)
}

fn params_with_key(peer: &str, key: &[u8; 32], particle: &str) -> RunParams {
    let trusted_keys: BTreeMap<String, [u8; 32]> = ["A", "M", "B"]
        .iter()
        .map(|p| (p.to_string(), public_key_of(&secret(p))))
        .collect();
    RunParams {
        init_peer_id: "A".into(),
        current_peer_id: peer.into(),
        timestamp: 1,
        ttl: 1000,
        particle_id: particle.into(),
        key: KeyPair {
            format: 0,
            secret: key.to_vec(),
        },
        limits: Limits::REFERENCE_MAXIMA,
        integrity: Integrity {
            check: true,
            trusted_keys,
        },
    }
}

/// Runs `peer` on arriving data until it has no more calls, answering them all with
/// `answer`; returns its final data.
fn run(peer: &str, data: &[u8], answer: &str, particle: &str) -> Result<Vec<u8>, (i32, String)> {
    let mut out = invoke(
        SCRIPT,
        &[],
        data,
        &params(peer, particle),
        &CallResults::new(),
    );
    loop {
        if out.ret_code() != 0 {
            return Err((out.ret_code(), out.error_message()));
        }
        if out.call_requests.is_empty() {
            return Ok(out.data);
        }
        let results = out
            .call_requests
            .iter()
            .map(|r| (r.id, CallResult::ok(answer)))
            .collect();
        out = invoke(SCRIPT, &out.data, &[], &params(peer, particle), &results);
    }
}

/// The honest path: A computes x, M computes y; returns M's data for B.
fn data_from_m() -> Vec<u8> {
    let a = run("A", &[], r#""from A""#, "p1").expect("A runs");
    run("M", &a, r#""from M""#, "p1").expect("M runs")
}

#[test]
fn honest_data_is_accepted() {
    let b = run("B", &data_from_m(), r#""from B""#, "p1");
    assert!(b.is_ok(), "{b:?}");
}

#[test]
fn altered_value_bytes_are_caught() {
    let mut data = data_from_m();
    let at = data
        .windows(6)
        .position(|w| w == b"from A")
        .expect("A's value is in the data");
    data[at..at + 6].copy_from_slice(b"from X");
    let (code, message) = run("B", &data, "1", "p1").expect_err("tampering is detected");
    assert_eq!(code, 8, "{message}");
}

#[test]
fn rewritten_result_of_another_peer_is_caught() {
    let data = testing::rewrite_result(&data_from_m(), r#""from A""#, r#""forged""#);
    let (code, message) = run("B", &data, "1", "p1").expect_err("forgery is detected");
    assert_eq!(code, 9, "{message}");
    assert!(message.contains("\"A\""), "{message}");
}

#[test]
fn dropped_signature_is_caught() {
    let data = testing::drop_signature(&data_from_m(), &public_key_of(&secret("A")));
    let (code, message) = run("B", &data, "1", "p1").expect_err("missing signature is detected");
    assert_eq!(code, 9, "{message}");
    assert!(
        message.contains("doens't match any available public key: \"A\""),
        "{message}"
    );
}

#[test]
fn signing_in_another_peers_name_is_caught() {
    let forged = testing::rewrite_result(&data_from_m(), r#""from A""#, r#""forged""#);
    let a = public_key_of(&secret("A"));
    let data = testing::resign(&forged, "A", &a, &secret("M"), "p1");
    let (code, message) = run("B", &data, "1", "p1").expect_err("a foreign key is detected");
    assert_eq!(code, 9, "{message}");
    assert!(
        message.contains("signature mismatch for \"A\""),
        "{message}"
    );
}

#[test]
fn data_replayed_into_another_particle_is_caught() {
    let (code, message) = run("B", &data_from_m(), "1", "p2").expect_err("replay is detected");
    assert_eq!(code, 9, "{message}");
}

#[test]
fn a_failed_check_keeps_the_stored_data() {
    let stored = run("B", &[], "1", "p1").expect("B's own first run");
    let bad = testing::drop_signature(&data_from_m(), &public_key_of(&secret("M")));
    let out = invoke(
        SCRIPT,
        &stored,
        &bad,
        &params("B", "p1"),
        &CallResults::new(),
    );
    assert_eq!(out.ret_code(), 9);
    assert_eq!(out.data, stored);
}

#[test]
fn key_derived_peer_ids_need_no_trusted_keys() {
    let a = peer_id_of(&public_key_of(&secret("A")));
    let script = format!(r#"(seq (call "{a}" ("s" "f") [] x) (call "B" ("s" "g") [x]))"#);
    let mut p = params_with_key(&a, &secret("A"), "p1");
    p.integrity.trusted_keys.clear();
    let first = invoke(&script, &[], &[], &p, &CallResults::new());
    let results: CallResults = [(first.call_requests[0].id, CallResult::ok("1"))].into();
    let second = invoke(&script, &first.data, &[], &p, &results);
    assert_eq!(second.next_peers, vec!["B".to_owned()]);
    let mut b = params("B", "p1");
    b.integrity.trusted_keys.clear();
    let out = invoke(&script, &[], &second.data, &b, &CallResults::new());
    assert_eq!(out.ret_code(), 0, "{}", out.error_message());
}

#[test]
fn particle_signatures_cover_every_identity_field() {
    use braid_interpreter::ParticleIdentity;
    let particle = ParticleIdentity {
        id: "p1",
        init_peer_id: "A",
        timestamp: 5,
        ttl: 1000,
        script: SCRIPT,
    };
    let signature = particle.sign(&secret("A"));
    let key = public_key_of(&secret("A"));
    assert!(particle.verify(&key, &signature));
    assert!(
        !particle.verify(&public_key_of(&secret("M")), &signature),
        "another key"
    );
    let changed = [
        ParticleIdentity {
            id: "p2",
            ..particle
        },
        ParticleIdentity {
            init_peer_id: "M",
            ..particle
        },
        ParticleIdentity {
            timestamp: 6,
            ..particle
        },
        ParticleIdentity {
            ttl: 999_999,
            ..particle
        },
        ParticleIdentity {
            script: "(null)",
            ..particle
        },
    ];
    for other in changed {
        assert!(
            !other.verify(&key, &signature),
            "{other:?} verified with the original signature"
        );
    }
}

/// A's first step with `key`.
fn a_step(key: KeyPair) -> braid_interpreter::Outcome {
    let mut p = params("A", "p1");
    p.key = key;
    let first = invoke(SCRIPT, &[], &[], &p, &CallResults::new());
    let results = first
        .call_requests
        .iter()
        .map(|r| (r.id, CallResult::ok("1")))
        .collect();
    invoke(SCRIPT, &first.data, &[], &p, &results)
}

#[test]
fn a_key_with_its_public_half_signs_exactly_as_the_secret_alone() {
    let alone = a_step(KeyPair {
        format: 0,
        secret: secret("A").to_vec(),
    });
    let pair = a_step(KeyPair::ed25519(&secret("A")));
    assert_eq!(alone.ret_code(), 0, "{}", alone.error_message());
    assert_eq!(pair.ret_code(), 0, "{}", pair.error_message());
    assert_eq!(pair.data, alone.data);
}

#[test]
fn a_wrong_public_half_gives_data_the_next_peer_refuses() {
    let mut key = KeyPair::ed25519(&secret("A"));
    key.secret[32..].copy_from_slice(&public_key_of(&secret("B")));
    let data = a_step(key).data;
    let (code, message) = run("M", &data, "2", "p1").unwrap_err();
    assert_eq!(code, 9, "{message}");
}

#[test]
fn malformed_keys_are_error_7() {
    let not_a_point = {
        // A y coordinate whose x^2 is not a square: no curve point has it.
        let mut key = KeyPair::ed25519(&secret("A"));
        key.secret[32..].copy_from_slice(&[0xff; 32]);
        key.secret[32] = 2;
        key
    };
    let cases = [
        (
            KeyPair {
                format: 0,
                secret: vec![1; 31],
            },
            "32 bytes, got 31",
        ),
        (
            KeyPair {
                format: 1,
                secret: vec![1; 32],
            },
            "64 bytes",
        ),
        (
            KeyPair {
                format: 2,
                secret: vec![1; 32],
            },
            "format 2 is not supported",
        ),
        (not_a_point, "not an Ed25519 public key"),
    ];
    for (key, expected) in cases {
        let out = a_step(key);
        assert_eq!(out.ret_code(), 7, "{}", out.error_message());
        assert!(
            out.error_message().contains(expected),
            "{}",
            out.error_message()
        );
    }
}
