//! Tampering on a particle's path, in the scenario driver: in `fixtures/tamper/relay.json`
//! peer M receives A's result, adds its own and sends the data to B. Here M misbehaves
//! on the data it sends, and the honest B must refuse it before anything runs, with
//! the documented code (README, "Integrity"):
//!
//! | what M does | B's `ret_code` |
//! | --- | --- |
//! | alters the bytes of a value it received | 8 (a value does not match its content id) |
//! | rewrites A's result (content id recomputed) | 9 (A's signature does not cover it) |
//! | drops A's signature | 9 (A's results, but no key of A in the data) |
//! | signs A's rewritten result with its own key | 9 (A's signature does not verify) |
//! | sends data of another particle | 9 (signatures are bound to the particle id) |

use std::path::Path;

use braid_interpreter::{CallResults, Outcome, RunParams, public_key_of, testing};
use braid_sim::{KeepInputs, Scenario, Transcript, native_invoke, run_with};
use sha2::{Digest, Sha256};

fn scenario() -> Scenario {
    Scenario::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tamper/relay.json"))
        .expect("the fixture loads")
}

/// Runs the scenario with M's outgoing data passed through `tamper`.
fn run_with_m(scenario: &Scenario, tamper: impl Fn(Vec<u8>) -> Vec<u8> + Sync) -> Transcript {
    let interpreter = |script: &str,
                       prev: &[u8],
                       current: &[u8],
                       params: &RunParams,
                       results: &CallResults|
     -> Result<Outcome, String> {
        let mut out = native_invoke(script, prev, current, params, results)?;
        if params.current_peer_id == "M" && !out.next_peers.is_empty() {
            out.data = tamper(out.data);
        }
        Ok(out)
    };
    run_with(scenario, KeepInputs::Nothing, &interpreter)
        .expect("the run completes")
        .transcript
}

/// B's first step: the one on M's data.
fn b_step(transcript: &Transcript) -> (i32, String, usize) {
    let step = transcript
        .steps
        .iter()
        .find(|s| s.peer == "B")
        .expect("B is invoked");
    (
        step.ret_code,
        step.error_message.clone(),
        step.call_requests.len(),
    )
}

fn assert_refused(transcript: &Transcript, code: i32, words: &str) {
    let (ret_code, message, calls) = b_step(transcript);
    assert_eq!(ret_code, code, "{message}");
    assert!(message.contains(words), "{message}");
    assert_eq!(calls, 0, "B ran nothing on tampered data");
}

#[test]
fn honest_data_is_accepted_and_used() {
    let transcript = run_with_m(&scenario(), |data| data);
    let step = transcript.steps.iter().find(|s| s.peer == "B").unwrap();
    assert_eq!(step.ret_code, 0, "{}", step.error_message);
    assert_eq!(step.call_requests.len(), 1);
    assert_eq!(
        step.call_requests[0].arguments,
        serde_json::json!(["from A", "from M"])
    );
}

#[test]
fn a_value_altered_on_the_way_is_refused_with_8() {
    let transcript = run_with_m(&scenario(), |mut data| {
        let at = data
            .windows(6)
            .position(|w| w == b"from A")
            .expect("A's value is in M's data");
        data[at..at + 6].copy_from_slice(b"from X");
        data
    });
    assert_refused(&transcript, 8, "does not match its content id");
}

#[test]
fn another_peers_rewritten_result_is_refused_with_9() {
    let transcript = run_with_m(&scenario(), |data| {
        testing::rewrite_result(&data, r#""from A""#, r#""forged""#)
    });
    assert_refused(&transcript, 9, "\"A\"");
}

#[test]
fn a_dropped_signature_is_refused_with_9() {
    let a_secret: [u8; 32] = Sha256::digest(b"A").into();
    let transcript = run_with_m(&scenario(), |data| {
        testing::drop_signature(&data, &public_key_of(&a_secret))
    });
    assert_refused(&transcript, 9, "match any available public key: \"A\"");
}

#[test]
fn a_result_signed_in_another_peers_name_is_refused_with_9() {
    // The driver's keys: the secret of a peer is the SHA-256 of its name (FORMAT §2).
    let m_secret: [u8; 32] = Sha256::digest(b"M").into();
    let a_public = public_key_of(&Sha256::digest(b"A").into());
    let transcript = run_with_m(&scenario(), |data| {
        let forged = testing::rewrite_result(&data, r#""from A""#, r#""forged""#);
        testing::resign(&forged, "A", &a_public, &m_secret, "p1")
    });
    assert_refused(&transcript, 9, "signature mismatch for \"A\"");
}

#[test]
fn data_replayed_from_another_particle_is_refused_with_9() {
    // M keeps what it sent in particle p2 and sends it again in p1.
    let mut other = scenario();
    other.particle.id = "p2".into();
    let replayed = std::sync::Mutex::new(None);
    run_with_m(&other, |data| {
        *replayed.lock().unwrap() = Some(data.clone());
        data
    });
    let replayed = replayed.into_inner().unwrap().expect("M sent data in p2");
    let transcript = run_with_m(&scenario(), |_| replayed.clone());
    let (ret_code, message, calls) = b_step(&transcript);
    assert_eq!(ret_code, 9, "{message}");
    assert_eq!(calls, 0);
}
