//! The oracles of braid's fuzz targets, as plain functions: the targets in
//! `fuzz_targets/` are one line each, and `cargo test` runs the same oracles over
//! seeded inputs so they cannot rot.
//!
//! Every oracle asserts what must hold for *any* input: no panic, the same output
//! twice (the interpreter is a pure function), and data the interpreter returns is
//! accepted back as previous data.
//!
//! Targets: `parse` (any text), `invoke_bytes` (arbitrary data on fixed real scripts),
//! `call_results` (arbitrary answers to a real script's requests), `data` (the data
//! decoder and encoder, [`data_decoder`]), `invoke_step` (every input of one invoke,
//! seeded from conformance runs and the AIR corpus, [`step`]), `generated` (valid
//! multi-peer programs of the property-test generator, [`generated`]), `particle`
//! (a node's intake of a particle, [`particle`]), `particle_frame` (the libp2p
//! particle protocol's frame, [`particle::particle_frame`]).

pub mod data_decoder;
pub mod generated;
pub mod particle;
pub mod step;

pub use data_decoder::data_decoder;
pub use generated::generated_run;
pub use particle::{particle, particle_frame};
pub use step::{Step, invoke_step};

use braid_interpreter::{CallResult, CallResults, Integrity, KeyPair, Limits, Outcome, RunParams};

/// Real scripts the invoke targets run: compiled Aqua and conformance scripts, chosen
/// to cover streams, canons, maps, folds and errors.
pub const SCRIPTS: &[&str] = &[
    include_str!("../../fixtures/examples/get_relay_time.air"),
    r#"(seq (seq (call "A" ("s" "f") [] x) (par (call "A" ("s" "g") [x.$.a] $s) (ap x $s))) (seq (canon "A" $s #c) (fold #c i (seq (call "B" ("s" "h") [i]) (next i)))))"#,
    r#"(seq (ap ("k" 1) %m) (seq (canon "A" %m #%c) (xor (call "A" ("s" "f") [#%c.$.k #%c.length]) (fail :error:))))"#,
    r#"(seq (call "A" ("s" "list") [] xs) (fold xs i (par (seq (call i ("s" "f") [i] $r) (ap i $r)) (next i)) (never)))"#,
    r#"(xor (seq (call "A" ("s" "f") [] $s) (fold $s v (seq (call "A" ("s" "g") [v.$.a] $t) (next v)) (null))) (call "A" ("errorHandlingSrv" "error") [:error: %last_error%]))"#,
];

/// The run parameters every oracle uses, on `peer` ("A" or "B").
pub fn params(peer: &str, check: bool) -> RunParams {
    RunParams {
        init_peer_id: "A".into(),
        current_peer_id: peer.into(),
        timestamp: 1_700_000_000_000,
        ttl: 60_000,
        particle_id: "fuzz".into(),
        key: KeyPair {
            format: 0,
            secret: vec![if peer == "A" { 1 } else { 2 }; 32],
        },
        limits: Limits::REFERENCE_MAXIMA,
        integrity: Integrity {
            check,
            trusted_keys: Default::default(),
        },
    }
}

fn invoke(
    script: &str,
    prev: &[u8],
    data: &[u8],
    params: &RunParams,
    results: &CallResults,
) -> Outcome {
    braid_interpreter::invoke(script, prev, data, params, results)
}

/// The stack `invoke` runs on in the host: the interpreter recurses as deep as a script
/// nests.
pub const STACK_BYTES: usize = 256 << 20;

/// Runs `f` on a thread with a [`STACK_BYTES`] stack, as the host runs `invoke`.
pub fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .stack_size(STACK_BYTES)
            .spawn_scoped(scope, f)
            .expect("a thread starts");
        match handle.join() {
            Ok(value) => value,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Whether an outcome with this return code keeps the previous data unchanged: data
/// errors (1–10) and uncatchable errors (20000–29999).
pub(crate) fn keeps_data(code: i32) -> bool {
    (1..=10).contains(&code) || (20000..30000).contains(&code)
}

/// Any text: the parser returns a tree or an error, and a tree prints as canonical AIR
/// that parses back to the same tree.
pub fn parse(src: &str) {
    if let Ok(ast) = braid_grammar::parse(src) {
        let printed = ast.to_string();
        let again = braid_grammar::parse(&printed).expect("canonical AIR parses");
        assert!(
            ast.eq_ignoring_positions(&again),
            "print/parse round trip changed the tree"
        );
        assert_eq!(
            again.to_string(),
            printed,
            "canonical form is not a fixed point"
        );
    } else if let Err(err) = braid_grammar::parse(src) {
        let _ = err.render(src, "fuzz");
    }
}

/// Arbitrary previous and current data on a real script.
pub fn invoke_bytes(script: usize, prev: &[u8], data: &[u8], check: bool) {
    let script = SCRIPTS[script % SCRIPTS.len()];
    for peer in ["A", "B"] {
        let params = params(peer, check);
        let out = invoke(script, prev, data, &params, &CallResults::new());
        let again = invoke(script, prev, data, &params, &CallResults::new());
        assert_eq!(out, again, "same inputs, different outcome");
        if keeps_data(out.ret_code()) {
            assert_eq!(
                out.data, prev,
                "a failed invocation must keep the previous data"
            );
            assert!(out.call_requests.is_empty() && out.next_peers.is_empty());
            continue;
        }
        let replay = invoke(script, &out.data, &[], &params, &CallResults::new());
        assert!(
            !(1..=10).contains(&replay.ret_code()),
            "own output refused as previous data: {}",
            replay.error_message()
        );
    }
}

/// The `invoke_bytes` target's input: byte 0 picks the script, byte 1's low bit turns
/// checking on, bytes 2–3 (little endian) say where the rest splits into previous and
/// current data.
pub fn split_invoke_input(input: &[u8]) -> Option<(usize, bool, &[u8], &[u8])> {
    let (&[script, check, lo, hi], rest) = input.split_first_chunk::<4>()?;
    let at = usize::from(u16::from_le_bytes([lo, hi])).min(rest.len());
    let (prev, data) = rest.split_at(at);
    Some((usize::from(script), check & 1 == 1, prev, data))
}

/// The same layout, built: for seeding corpora.
pub fn join_invoke_input(script: usize, check: bool, prev: &[u8], data: &[u8]) -> Vec<u8> {
    let at = u16::try_from(prev.len()).unwrap_or(u16::MAX).to_le_bytes();
    let mut out = vec![script as u8, u8::from(check), at[0], at[1]];
    out.extend_from_slice(prev);
    out.extend_from_slice(data);
    out
}

/// Arbitrary call results (ids, codes, texts) answering a real script's requests.
pub fn call_results(script: usize, answers: &[(u32, i32, String)]) {
    let script = SCRIPTS[script % SCRIPTS.len()];
    let params = params("A", false);
    let first = invoke(script, &[], &[], &params, &CallResults::new());
    let ids: Vec<u32> = first.call_requests.iter().map(|r| r.id).collect();
    let results: CallResults = answers
        .iter()
        .map(|(id, code, text)| {
            // Mostly answer real requests, sometimes unknown ids.
            let id = if ids.is_empty() || *id % 4 == 3 {
                *id
            } else {
                ids[*id as usize % ids.len()]
            };
            (
                id,
                CallResult {
                    ret_code: *code,
                    result: text.clone(),
                },
            )
        })
        .collect();
    let out = invoke(script, &first.data, &[], &params, &results);
    let again = invoke(script, &first.data, &[], &params, &results);
    assert_eq!(out, again, "same inputs, different outcome");
    if !keeps_data(out.ret_code()) {
        let replay = invoke(script, &out.data, &[], &params, &CallResults::new());
        assert!(
            !(1..=10).contains(&replay.ret_code()),
            "{}",
            replay.error_message()
        );
    }
}

/// Valid data to start mutating from: each script run on A with every call answered,
/// then on B. Used to seed fuzz corpora and the seeded tests.
pub fn valid_data() -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, script) in SCRIPTS.iter().enumerate() {
        let params_a = params("A", false);
        let mut data = Vec::new();
        let mut results = CallResults::new();
        for _ in 0..6 {
            let o = invoke(script, &data, &[], &params_a, &results);
            data = o.data;
            results = o
                .call_requests
                .iter()
                .map(|r| (r.id, CallResult::ok(r#"{"a":[1,2],"b":"B"}"#)))
                .collect();
            if results.is_empty() {
                break;
            }
        }
        out.push((i, data.clone()));
        let b = invoke(script, &[], &data, &params("B", false), &CallResults::new());
        out.push((i, b.data));
    }
    out
}

/// The fuzz targets, by name.
pub const TARGETS: &[&str] = &[
    "parse",
    "invoke_bytes",
    "call_results",
    "data",
    "invoke_step",
    "generated",
    "particle",
    "particle_frame",
];

/// Runs one input through the oracle of the target named `target`, exactly as that
/// fuzz target does: for replaying crashes (`fixtures/regressions/`). `None` if there
/// is no such target.
pub fn replay(target: &str, input: &[u8]) -> Option<()> {
    match target {
        "parse" => {
            if let Ok(src) = std::str::from_utf8(input) {
                parse(src);
            }
        }
        "invoke_bytes" => {
            if let Some((script, check, prev, data)) = split_invoke_input(input) {
                invoke_bytes(script, prev, data, check);
            }
        }
        "call_results" => {
            use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
            type Input = (u8, Vec<(u32, i32, String)>);
            if let Ok((script, answers)) = Input::arbitrary_take_rest(Unstructured::new(input)) {
                call_results(usize::from(script), &answers);
            }
        }
        "data" => {
            if let Some((_, check, prev, data)) = split_invoke_input(input) {
                data_decoder(prev, data, check);
            }
        }
        "invoke_step" => invoke_step(&Step::decode(input)),
        "generated" => generated_run(input),
        "particle" => particle(input),
        "particle_frame" => particle_frame(input),
        _ => return None,
    }
    Some(())
}
