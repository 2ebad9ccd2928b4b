//! The tamper cases of the README's "Integrity" table across implementations: in
//! `fixtures/tamper/relay.json`, renamed to real peer ids, peer M receives A's result,
//! adds its own and sends the data to B, and M misbehaves on what it sends. Both
//! directions: A and M on the reference with B on braid, then A and M on braid with B
//! on the reference; either way the honest B must refuse the data before anything runs,
//! with the same code. Honest data is accepted both ways.
//!
//! Needs the oracle's checking build (`--features signatures`): run with
//! `BRAID_ORACLE=PATH BRAID_ORACLE_CHECKS=1`; otherwise the test prints why and does
//! nothing.

use std::path::Path;

use braid_interpreter::{CallResults, Outcome, RunParams, peer_id_of, public_key_of, testing};
use braid_sim::{
    KeepInputs, OracleServe, PeerSet, Scenario, Transcript, mixed, native_invoke, run_with,
};
use sha2::{Digest, Sha256};

/// The secret the scenario gives a plain peer name (FORMAT §2): SHA-256 of the name.
fn secret(name: &str) -> [u8; 32] {
    Sha256::digest(name.as_bytes()).into()
}

fn id(name: &str) -> String {
    peer_id_of(&public_key_of(&secret(name)))
}

/// `relay.json` with A, M and B renamed to the peer ids of their keys, as
/// `../shared/oracle/peerids.py` does.
fn scenario() -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/tamper/relay.json");
    let mut text = std::fs::read_to_string(path).expect("the fixture reads");
    for name in ["A", "M", "B"] {
        text = text
            .replace(&format!(r#"\"{name}\""#), &format!(r#"\"{}\""#, id(name)))
            .replace(&format!(r#""{name}""#), &format!(r#""{}""#, id(name)));
    }
    let mut scenario = Scenario::from_json(&text).expect("the renamed fixture is valid");
    for name in ["A", "M", "B"] {
        let hex: String = secret(name).iter().map(|b| format!("{b:02x}")).collect();
        scenario.keys.insert(id(name), hex);
    }
    scenario
}

/// Which side B, the receiver of M's data, runs on.
#[derive(Debug, Clone, Copy)]
enum Receiver {
    Braid,
    Reference,
}

struct Mixed {
    serve: OracleServe,
}

impl Mixed {
    /// Runs the scenario with M's outgoing data passed through `tamper`.
    fn run(
        &self,
        scenario: &Scenario,
        receiver: Receiver,
        tamper: impl Fn(Vec<u8>) -> Vec<u8> + Sync,
    ) -> Transcript {
        let on_reference = match receiver {
            Receiver::Braid => PeerSet::Names(vec![id("A"), id("M")]),
            Receiver::Reference => PeerSet::Names(vec![id("B")]),
        };
        let both = mixed(scenario, &on_reference, &self.serve, &native_invoke, true);
        let m = id("M");
        let interpreter = |script: &str,
                           prev: &[u8],
                           current: &[u8],
                           params: &RunParams,
                           results: &CallResults|
         -> Result<Outcome, String> {
            let mut out = both(script, prev, current, params, results)?;
            if params.current_peer_id == m && !out.next_peers.is_empty() {
                out.data = tamper(out.data);
            }
            Ok(out)
        };
        run_with(scenario, KeepInputs::Nothing, &interpreter)
            .expect("the run completes")
            .transcript
    }
}

/// B's first step: the one on M's data (ret_code, message, call requests).
fn b_step(transcript: &Transcript) -> (i32, String, usize) {
    let b = id("B");
    let step = transcript
        .steps
        .iter()
        .find(|s| s.peer == b)
        .expect("B is invoked");
    (
        step.ret_code,
        step.error_message.clone(),
        step.call_requests.len(),
    )
}

fn assert_refused(transcript: &Transcript, receiver: Receiver, case: &str, code: i32) {
    let (ret_code, message, calls) = b_step(transcript);
    eprintln!("{case}, received by {receiver:?}: {ret_code} {message}");
    assert_eq!(ret_code, code, "{case} ({receiver:?}): {message}");
    assert_eq!(
        calls, 0,
        "{case} ({receiver:?}): B ran nothing on tampered data"
    );
}

#[test]
fn each_side_refuses_what_the_other_side_tampered_with() {
    let Ok(oracle) = std::env::var("BRAID_ORACLE") else {
        eprintln!("BRAID_ORACLE is not set: no mixed tamper runs");
        return;
    };
    if !std::env::var("BRAID_ORACLE_CHECKS").is_ok_and(|v| v == "1") {
        eprintln!(
            "BRAID_ORACLE_CHECKS=1 is not set: the oracle's default build checks no \
             signatures, so no mixed tamper runs"
        );
        return;
    }
    let mixed = Mixed {
        serve: OracleServe::spawn(Path::new(&oracle)).expect("the oracle starts"),
    };
    let scenario = scenario();
    let a_public = public_key_of(&secret("A"));
    let m_secret = secret("M");
    let mut other = scenario.clone();
    other.particle.id = "p2".into();

    for receiver in [Receiver::Braid, Receiver::Reference] {
        // Honest data: B calls h with both values.
        let transcript = mixed.run(&scenario, receiver, |data| data);
        let b = id("B");
        let step = transcript.steps.iter().find(|s| s.peer == b).unwrap();
        assert_eq!(step.ret_code, 0, "{receiver:?}: {}", step.error_message);
        assert_eq!(
            step.call_requests[0].arguments,
            serde_json::json!(["from A", "from M"]),
            "{receiver:?}"
        );

        let altered = mixed.run(&scenario, receiver, |mut data| {
            let at = data
                .windows(6)
                .position(|w| w == b"from A")
                .expect("A's value is in M's data");
            data[at..at + 6].copy_from_slice(b"from X");
            data
        });
        assert_refused(&altered, receiver, "a value altered", 8);

        let rewritten = mixed.run(&scenario, receiver, |data| {
            testing::rewrite_result(&data, r#""from A""#, r#""forged""#)
        });
        assert_refused(&rewritten, receiver, "A's result rewritten", 9);

        let dropped = mixed.run(&scenario, receiver, |data| {
            testing::drop_signature(&data, &a_public)
        });
        assert_refused(&dropped, receiver, "A's signature dropped", 9);

        let resigned = mixed.run(&scenario, receiver, |data| {
            let forged = testing::rewrite_result(&data, r#""from A""#, r#""forged""#);
            testing::resign(&forged, &id("A"), &a_public, &m_secret, "p1")
        });
        assert_refused(&resigned, receiver, "A's result signed by M", 9);

        // M keeps what it sent in particle p2 and sends it again in p1.
        let replayed = std::sync::Mutex::new(None);
        mixed.run(&other, receiver, |data| {
            *replayed.lock().unwrap() = Some(data.clone());
            data
        });
        let replayed = replayed.into_inner().unwrap().expect("M sent data in p2");
        let transcript = mixed.run(&scenario, receiver, |_| replayed.clone());
        assert_refused(&transcript, receiver, "data of another particle", 9);
    }
}
