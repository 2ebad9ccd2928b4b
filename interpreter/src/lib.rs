//! The pure AIR interpreter.
//!
//! [`invoke`] runs one step of a particle on one peer: it merges the data this peer
//! stored with the data that arrived, replays the script over it, executes what can run
//! here now, and returns the new data, the service calls the host must make and the
//! peers to send the data to.
//!
//! ```
//! use braid_interpreter::{invoke, CallResults, KeyPair, Limits, RunParams};
//!
//! let params = RunParams {
//!     init_peer_id: "client".into(),
//!     current_peer_id: "client".into(),
//!     timestamp: 0,
//!     ttl: 1000,
//!     particle_id: "p1".into(),
//!     key: KeyPair { format: 0, secret: vec![7; 32] },
//!     limits: Limits::REFERENCE_MAXIMA,
//!     integrity: Default::default(),
//! };
//! let script = r#"(call %init_peer_id% ("peer" "identify") [] info)"#;
//! let out = invoke(script, &[], &[], &params, &CallResults::new());
//! assert_eq!(out.ret_code(), 0);
//! assert_eq!(out.call_requests[0].service_id, "peer");
//! ```
//!
//! It is a function of its arguments: no I/O, no clock, no randomness, no threads, no
//! async. The same inputs give the same bytes out on every platform, wasm32 included.
//! It recurses as deep as the script nests (up to a limit, error 20022): hosts run it
//! on a thread with a generous stack.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod data;
mod error;
mod execute;
mod ids;
mod inspect;
mod integrity;
mod json;
mod merge;
mod mixhash;
mod outcome;
mod params;
mod scopes;
mod streams;
#[cfg(feature = "testing")]
pub mod testing;
mod trace;
mod value;

pub use braid_grammar as grammar;
pub use error::{CatchableError, DataSide, InterpreterError, SizeLimit, UncatchableError};
pub use ids::{peer_id_of, public_key_of_peer_id};
pub use inspect::{
    DataView, ExecEvent, FaultView, IterationView, StateView, TracePoint, decode_for_inspection,
    invoke_inspected,
};
pub use integrity::{
    IntegrityError, ParticleIdentity, SignatureCache, SignatureOperation, public_key_of,
};
pub use outcome::Outcome;
pub use params::{
    CallRequest, CallResult, CallResults, Integrity, KeyPair, LimitFlags, Limits, RunParams,
    Tetraplet,
};

use execute::{Execution, Fault};
use integrity::Cid;
use json::Json;
use mixhash::MixMap;

/// Runs one step of a particle. Pure: no I/O, no clock, no randomness.
pub fn invoke(
    script: &str,
    prev_data: &[u8],
    data: &[u8],
    params: &RunParams,
    call_results: &CallResults,
) -> Outcome {
    invoke_logged(script, prev_data, data, params, call_results, None, None)
}

/// [`invoke`], with the host's set of signatures already checked: one found there is
/// not verified again, and those verified or made here go in. The outcome is the
/// same as [`invoke`]'s; only the work differs.
pub fn invoke_with_cache(
    script: &str,
    prev_data: &[u8],
    data: &[u8],
    params: &RunParams,
    call_results: &CallResults,
    signatures: &dyn SignatureCache,
) -> Outcome {
    invoke_logged(
        script,
        prev_data,
        data,
        params,
        call_results,
        None,
        Some(signatures),
    )
}

/// [`invoke`], filling `log` (when given) with the execution log of
/// [`invoke_inspected`], with the host's signature cache when given.
fn invoke_logged(
    script: &str,
    prev_data: &[u8],
    data: &[u8],
    params: &RunParams,
    call_results: &CallResults,
    log: Option<&mut Vec<ExecEvent>>,
    cache: Option<&dyn SignatureCache>,
) -> Outcome {
    let mut flags = LimitFlags::default();
    let unchanged = |error: InterpreterError, flags: LimitFlags| Outcome {
        data: prev_data.to_vec(),
        call_requests: Vec::new(),
        next_peers: Vec::new(),
        error: Some(error),
        limits_exceeded: flags,
    };
    let limits = params.limits;
    // 1. Size limits.
    let air_size = script.len() as u64;
    if air_size > limits.air_size {
        flags.air_size = true;
        if limits.hard {
            return unchanged(
                InterpreterError::SizeLimit(SizeLimit::Air {
                    actual: air_size,
                    limit: limits.air_size,
                }),
                flags,
            );
        }
    }
    let data_size = data.len() as u64;
    if data_size > limits.particle_size {
        flags.particle_size = true;
        if limits.hard {
            let limit = limits.particle_size;
            return unchanged(
                InterpreterError::SizeLimit(SizeLimit::Particle {
                    actual: data_size,
                    limit,
                }),
                flags,
            );
        }
    }
    // 2–3. Decode the data. The previous data is this peer's own: only the current
    // data's records are checked against their ids.
    let check = params.integrity.check;
    let (prev, prev_ids) = match data::decode(prev_data, DataSide::Prev, false) {
        Ok(d) => d,
        Err(e) => return unchanged(e, flags),
    };
    let (current, current_ids) = match data::decode(data, DataSide::Current, check) {
        Ok(d) => d,
        Err(e) => return unchanged(e, flags),
    };
    // 4. Integrity of the arriving data.
    for (value, cid) in &prev_ids {
        value.know_cid(*cid);
    }
    // A value the stored data holds with the same id and text needs no hashing.
    let stored: MixMap<Cid, &Json<'_>> = if check && !current_ids.is_empty() {
        prev_ids
            .iter()
            .map(|(value, cid)| (*cid, &**value))
            .collect()
    } else {
        MixMap::default()
    };
    for (index, (value, cid)) in current_ids.iter().enumerate() {
        let known = stored.get(cid).is_some_and(|s| s.same_text(value));
        if !check || known {
            value.know_cid(*cid);
        } else if value.cid() != *cid {
            return unchanged(
                InterpreterError::Integrity(integrity::IntegrityError::ValueMismatch { index }),
                flags,
            );
        }
    }
    // Without checking no arriving signature is read (as the reference): the output
    // carries the current peer's signature only.
    let mut signatures = Vec::new();
    if check {
        match integrity::verify(
            (&prev.trace, &prev.signatures),
            (&current.trace, &current.signatures),
            &params.particle_id,
            &params.integrity.trusted_keys,
            cache,
        ) {
            Ok(merged) => signatures = merged,
            Err(e) => return unchanged(InterpreterError::Integrity(e), flags),
        }
    }
    // 5. Parse.
    let ast = match grammar::parse(script) {
        Ok(ast) => ast,
        Err(e) => return unchanged(InterpreterError::Parse(e.render(script, "script")), flags),
    };
    // 6. Call result sizes.
    if call_results
        .values()
        .any(|r| r.result.len() as u64 > limits.call_result_size)
    {
        flags.call_result_size = true;
        if limits.hard {
            let limit = limits.call_result_size;
            return unchanged(
                InterpreterError::SizeLimit(SizeLimit::CallResult { limit }),
                flags,
            );
        }
    }
    // 7. The key.
    let key = match own_key(&params.key) {
        Ok(key) => key,
        Err(detail) => return unchanged(InterpreterError::MalformedKeyPair(detail), flags),
    };
    // 8. Execute.
    let own_stored = if prev.signatures.is_empty() {
        None
    } else {
        integrity::own_stored(&prev.trace, &prev.signatures, &params.current_peer_id, &key)
    };
    let merger = merge::Merger::new(prev.trace, current.trace);
    let mut execution = Execution::new(&ast, params, call_results, merger, prev.last_call_id);
    execution.log = log.is_some().then(Vec::new);
    let result = execution.run();
    if let (Some(out), Some(events)) = (log, execution.log.take()) {
        *out = events;
    }
    let error = match result {
        Ok(()) => None,
        Err(Fault::Catchable(e)) => Some(InterpreterError::Catchable(e)),
        Err(Fault::Uncatchable(error, at)) => {
            let span = ast.instr(at).span;
            let location = grammar::Location::of(script, span.start);
            let at = format!("{location}, `{}`", ast.display(at));
            return unchanged(
                InterpreterError::Uncatchable {
                    error,
                    at: Some(at),
                },
                flags,
            );
        }
    };
    execution.finish_generations();
    // 9. Sign and serialize.
    let Execution {
        merger,
        requests,
        next_peers,
        last_call_id,
        consumed,
        ..
    } = execution;
    let trace = merger.into_result();
    let peer = params.current_peer_id.as_str();
    let signatures = match integrity::sign_output(
        &trace,
        signatures,
        peer,
        &key,
        &params.particle_id,
        own_stored,
        cache,
    ) {
        Ok(signatures) => signatures,
        Err(detail) => return unchanged(InterpreterError::MalformedKeyPair(detail), flags),
    };
    let out_data = data::encode(&data::Data {
        trace,
        last_call_id,
        signatures,
    });
    // 10. Unconsumed call results.
    let error = error.or_else(|| {
        let leftover: Vec<String> = call_results
            .iter()
            .filter(|(id, _)| !consumed.contains(id))
            .map(|(id, r)| format!("{id}: ret_code {}, result {:?}", r.ret_code, r.result))
            .collect();
        (!leftover.is_empty()).then(|| {
            InterpreterError::UnprocessedCallResults(format!("{{{}}}", leftover.join(", ")))
        })
    });
    Outcome {
        data: out_data,
        call_requests: requests,
        next_peers: next_peers.into_iter().collect(),
        error,
        limits_exceeded: flags,
    }
}

/// The current peer's key, checked for its format and length.
fn own_key(key: &KeyPair) -> Result<integrity::OwnKey, String> {
    let bytes = key.secret.as_slice();
    // The 32 bytes at `at`, once the length is checked.
    let half = |at: usize| {
        let mut out = [0; 32];
        out.copy_from_slice(&bytes[at..at + 32]);
        out
    };
    match (key.format, bytes.len()) {
        (0, 32) => Ok(integrity::OwnKey::Secret(half(0))),
        (1, 64) => Ok(integrity::OwnKey::Pair {
            secret: half(0),
            public: half(32),
        }),
        (0, len) => Err(format!("an Ed25519 secret key is 32 bytes, got {len}")),
        (1, len) => Err(format!(
            "a format 1 key is 64 bytes (Ed25519 secret, then public key), got {len}"
        )),
        (format, _) => Err(format!(
            "key format {format} is not supported; only 0 and 1 (Ed25519) are"
        )),
    }
}
