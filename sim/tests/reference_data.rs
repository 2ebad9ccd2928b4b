//! Data the reference wrote, replayed under braid: `fixtures/reference-data/*.json` hold,
//! for a set of public scenarios renamed to real peer ids (`peerids.py`) and run
//! entirely on AquaVM 0.64.1 as production peers run it (`oracle serve`, `signatures`
//! build: it signs what each peer produced and checks the others), every invoke's
//! exact inputs (prev and current data in the reference's bytes, call results,
//! parameters, the peer's key) and what AquaVM answered. braid runs each invoke on the
//! same bytes with signature checking on (so it verifies the reference's ids and
//! signatures) and must answer the same: return code, next peers and call requests;
//! and it must read the data AquaVM wrote.
//!
//! To record the fixtures again (needs the oracle's `signatures` build and the
//! scenarios renamed with `peerids.py` into DIR, recorded with that oracle):
//!
//! ```sh
//! BRAID_ORACLE=path/to/oracle BRAID_MIXED_DIR=DIR BRAID_RECORD_FIXTURES=1 \
//!   cargo test -p braid-sim --test reference_data
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use braid_interpreter::{CallResult, CallResults, Integrity, KeyPair, Limits, RunParams};
use braid_sim::{KeepInputs, OracleServe, PeerSet, Scenario, mixed, native_invoke, run_with};
use serde_json::{Value, json};

/// The scenarios recorded (public set, `../shared/conformance/scenarios`).
const SCENARIOS: &[&str] = &[
    "ap/canon_stream_with_lambda",
    "call/cid_unused",
    "call/merged_two_peers",
    "canon/fixes_stream",
    "canon/merge_then_other_peer",
    "canon/two_canons_same_stream_two_peers",
    "fold/rfold",
    "join/canon_map_peer_var",
    "maps/canon_map_scalar_with_par",
    "maps/fold_stream_map",
    "merging/stream_merge",
    "merging/stream_merging_v2",
    "new/streams_with_errors",
    "par/remote_remote",
    "streams/fold_over_aps_calls",
    "xor/par",
    "errors/last_error_with_match",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/reference-data")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn record(oracle: &str) {
    let serve = OracleServe::spawn(Path::new(oracle)).expect("the oracle starts");
    let scenarios = std::env::var("BRAID_MIXED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/scenarios")
        });
    std::fs::create_dir_all(dir()).expect("the fixture folder");
    for name in SCENARIOS {
        let path = scenarios.join(format!("{name}.json"));
        let Ok(scenario) = Scenario::load(&path) else {
            eprintln!("no scenario {name}");
            continue;
        };
        let all = PeerSet::All;
        let interpreter = mixed(&scenario, &all, &serve, &native_invoke, true);
        let run = run_with(&scenario, KeepInputs::All, &interpreter).expect("the run completes");
        let steps: Vec<Value> = run
            .records
            .iter()
            .zip(&run.transcript.steps)
            .map(|(r, s)| {
                let results: BTreeMap<String, Value> = r
                    .call_results
                    .iter()
                    .map(|(id, c)| {
                        (
                            id.to_string(),
                            json!({"ret_code": c.ret_code, "result": c.result}),
                        )
                    })
                    .collect();
                json!({
                    "peer": r.peer,
                    "prev_data": hex(&r.prev_data),
                    "data": hex(&r.current_data),
                    "call_results": results,
                    "ret_code": s.ret_code,
                    "next_peers": s.next_peers,
                    "call_requests": s.call_requests.iter().map(|c| json!({
                        "service_id": c.service,
                        "function_name": c.function,
                        "arguments": c.arguments,
                    })).collect::<Vec<_>>(),
                    "output": hex(&r.output),
                })
            })
            .collect();
        let secrets: BTreeMap<&String, String> = scenario
            .peers
            .iter()
            .map(|p| (p, hex(&scenario.secret_of(p))))
            .collect();
        let air = run
            .records
            .first()
            .map(|r| r.script.to_string())
            .unwrap_or_default();
        let fixture = json!({
            "scenario": name,
            "air": air,
            "particle": {
                "id": scenario.particle.id,
                "init_peer": scenario.particle.init_peer,
                "timestamp": scenario.particle.timestamp,
                "ttl": scenario.particle.ttl,
            },
            "keys": secrets,
            "steps": steps,
        });
        let file = dir().join(format!("{}.json", name.replace('/', "__")));
        std::fs::write(
            &file,
            serde_json::to_string_pretty(&fixture).unwrap() + "\n",
        )
        .expect("the fixture is written");
    }
}

#[test]
fn braid_continues_data_the_reference_wrote() {
    if let (Ok(oracle), Ok(_)) = (
        std::env::var("BRAID_ORACLE"),
        std::env::var("BRAID_RECORD_FIXTURES"),
    ) {
        record(&oracle);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("fixtures/reference-data")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the fixtures are missing");
    let mut steps_checked = 0;
    for file in files {
        let f: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let name = f["scenario"].as_str().unwrap();
        let keys: BTreeMap<String, [u8; 32]> = f["keys"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(p, k)| (p.clone(), unhex(k.as_str().unwrap()).try_into().unwrap()))
            .collect();
        let trusted_keys = keys
            .iter()
            .map(|(p, k)| (p.clone(), braid_interpreter::public_key_of(k)))
            .collect::<BTreeMap<_, _>>();
        for (i, step) in f["steps"].as_array().unwrap().iter().enumerate() {
            let peer = step["peer"].as_str().unwrap();
            let params = RunParams {
                init_peer_id: f["particle"]["init_peer"].as_str().unwrap().into(),
                current_peer_id: peer.into(),
                timestamp: f["particle"]["timestamp"].as_u64().unwrap(),
                ttl: f["particle"]["ttl"].as_u64().unwrap() as u32,
                particle_id: f["particle"]["id"].as_str().unwrap().into(),
                key: KeyPair::ed25519(&keys[peer]),
                limits: Limits::REFERENCE_MAXIMA,
                integrity: Integrity {
                    check: true,
                    trusted_keys: trusted_keys.clone(),
                },
            };
            let results: CallResults = step["call_results"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(id, r)| {
                    (
                        id.parse().unwrap(),
                        CallResult {
                            ret_code: r["ret_code"].as_i64().unwrap() as i32,
                            result: r["result"].as_str().unwrap().into(),
                        },
                    )
                })
                .collect();
            let out = braid_interpreter::invoke(
                f["air"].as_str().unwrap(),
                &unhex(step["prev_data"].as_str().unwrap()),
                &unhex(step["data"].as_str().unwrap()),
                &params,
                &results,
            );
            let at = format!("{name}, step {} on {peer}", i + 1);
            assert_eq!(
                i64::from(out.ret_code()),
                step["ret_code"].as_i64().unwrap(),
                "{at}: {}",
                out.error_message()
            );
            let next: Vec<&str> = step["next_peers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            assert_eq!(out.next_peers, next, "{at}");
            let expected: Vec<(String, String, Value)> = step["call_requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["service_id"].as_str().unwrap().to_owned(),
                        c["function_name"].as_str().unwrap().to_owned(),
                        c["arguments"].clone(),
                    )
                })
                .collect();
            let got: Vec<(String, String, Value)> = out
                .call_requests
                .iter()
                .map(|c| {
                    (
                        c.service_id.clone(),
                        c.function_name.clone(),
                        serde_json::from_str(&c.arguments).unwrap(),
                    )
                })
                .collect();
            assert_eq!(got, expected, "{at}");
            // braid reads what AquaVM wrote.
            let output = unhex(step["output"].as_str().unwrap());
            braid_interpreter::decode_for_inspection(&output)
                .unwrap_or_else(|e| panic!("{at}: the reference's output: {e}"));
            steps_checked += 1;
        }
    }
    assert!(steps_checked >= 30, "only {steps_checked} steps");
}
