//! The module's ABI, natively: an encoded input gives the encoded outcome of
//! `invoke`, and undecodable input is an error output, not a trap.

use braid_wasm::{Input, Output, invoke_encoded};

fn input(script: &str, prev_data: Vec<u8>, call_results: Vec<(u32, i32, String)>) -> Input {
    Input {
        script: script.to_owned(),
        prev_data,
        data: Vec::new(),
        init_peer_id: "A".into(),
        current_peer_id: "A".into(),
        timestamp: 1,
        ttl: 1000,
        particle_id: "p".into(),
        key_format: 0,
        secret_key: vec![3; 32],
        limits: (16 << 20, 64 << 20, 32 << 20, false),
        call_results,
        check: true,
        trusted_keys: Vec::new(),
        call_requests_size: u64::MAX,
    }
}

fn call(input: &Input) -> Output {
    let bytes = invoke_encoded(&rmp_serde::to_vec(input).expect("input encodes"));
    rmp_serde::from_slice(&bytes).expect("output decodes")
}

#[test]
fn a_call_request_and_its_result_go_through_the_abi() {
    let script = r#"(seq (call "A" ("s" "f") [1 "x"] r) (call "B" ("s" "g") [r]))"#;
    let first = call(&input(script, Vec::new(), Vec::new()));
    assert_eq!(first.ret_code, 0, "{}", first.error_message);
    let (id, service, function, arguments, tetraplets) = &first.call_requests[0];
    assert_eq!(
        (service.as_str(), function.as_str(), arguments.as_str()),
        ("s", "f", r#"[1,"x"]"#)
    );
    assert_eq!(tetraplets.len(), 2);
    let second = call(&input(script, first.data, vec![(*id, 0, "42".into())]));
    assert_eq!(second.ret_code, 0, "{}", second.error_message);
    assert_eq!(second.next_peers, vec!["B".to_owned()]);
}

#[test]
fn garbage_input_is_an_error_output() {
    let output: Output =
        rmp_serde::from_slice(&invoke_encoded(b"\xff\x00garbage")).expect("output decodes");
    assert_eq!(output.ret_code, 5);
    assert!(output.data.is_empty());
}

#[test]
fn a_hosts_borrowed_input_decodes_as_the_modules_input() {
    use braid_interpreter::{CallResult, CallResults, Integrity, KeyPair, Limits, RunParams};
    let params = RunParams {
        init_peer_id: "init".into(),
        current_peer_id: "me".into(),
        timestamp: 7,
        ttl: 9,
        particle_id: "pid".into(),
        key: KeyPair {
            format: 0,
            secret: vec![5; 32],
        },
        limits: Limits::REFERENCE_MAXIMA,
        integrity: Integrity {
            check: true,
            trusted_keys: [("peer".to_owned(), [8u8; 32])].into_iter().collect(),
        },
    };
    let results: CallResults = [(3, CallResult::error(2, "\"no\""))].into_iter().collect();
    let bytes = braid_wasm::encode_input("(null)", b"prev", b"cur", &params, &results);
    let input: Input = rmp_serde::from_slice(&bytes).expect("the module decodes it");
    assert_eq!(
        (
            input.script.as_str(),
            input.prev_data.as_slice(),
            input.data.as_slice()
        ),
        ("(null)", &b"prev"[..], &b"cur"[..])
    );
    assert_eq!(
        (
            input.init_peer_id.as_str(),
            input.current_peer_id.as_str(),
            input.particle_id.as_str()
        ),
        ("init", "me", "pid")
    );
    assert_eq!((input.timestamp, input.ttl, input.key_format), (7, 9, 0));
    assert_eq!(input.secret_key, vec![5; 32]);
    let l = Limits::REFERENCE_MAXIMA;
    assert_eq!(
        input.limits,
        (l.air_size, l.particle_size, l.call_result_size, l.hard)
    );
    assert_eq!(input.call_requests_size, l.call_requests_size);
    assert_eq!(input.call_results, vec![(3, 2, "\"no\"".to_owned())]);
    assert!(input.check);
    assert_eq!(input.trusted_keys.len(), 1);
    assert_eq!(input.trusted_keys[0].0, "peer");
    assert_eq!(input.trusted_keys[0].1.as_ref(), &[8u8; 32]);
}
