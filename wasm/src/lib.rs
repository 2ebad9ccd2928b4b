//! braid's interpreter as a Wasm module (`wasm32-unknown-unknown`, no imports).
//!
//! The ABI, all lengths and pointers `u32`:
//!
//! - `braid_alloc(len) -> ptr`: reserve `len` bytes for the input;
//! - `braid_invoke(ptr, len) -> u64`: read an [`Input`] (MessagePack) at `ptr`, free it,
//!   run [`braid_interpreter::invoke`], and return `(out_ptr << 32) | out_len` of an
//!   [`Output`] (MessagePack);
//! - `braid_dealloc(ptr, len)`: free the output once read;
//! - `braid_test_fault(kind)`: a test hook that misbehaves on purpose, so that hosts can
//!   test that they contain a faulty module: 1 traps, 2 allocates until memory runs out
//!   (which traps), 3 loops forever; any other kind returns at once. A host calls it
//!   only when it wants that fault; a particle cannot reach it.
//!
//! Input that does not decode gives an [`Output`] with `ret_code` 5 and the previous
//! data empty: the host keeps what it stored.

use braid_interpreter::{
    CallRequest, CallResult, CallResults, Integrity, KeyPair, Limits, RunParams, Tetraplet,
};
use serde::{Deserialize, Serialize};

/// Everything `invoke` takes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Input {
    /// The script.
    pub script: String,
    /// The data this peer stored.
    #[serde(with = "serde_bytes")]
    pub prev_data: Vec<u8>,
    /// The data that arrived.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// `%init_peer_id%`.
    pub init_peer_id: String,
    /// This peer.
    pub current_peer_id: String,
    /// `%timestamp%`.
    pub timestamp: u64,
    /// `%ttl%`.
    pub ttl: u32,
    /// The particle id.
    pub particle_id: String,
    /// Key format (0: Ed25519).
    pub key_format: u8,
    /// The secret key.
    #[serde(with = "serde_bytes")]
    pub secret_key: Vec<u8>,
    /// Limits: AIR, particle, call result sizes, and whether they are hard.
    pub limits: (u64, u64, u64, bool),
    /// Call results: (id, ret_code, result).
    pub call_results: Vec<(u32, i32, String)>,
    /// Check arriving data (content ids and signatures).
    pub check: bool,
    /// Keys of peers whose ids are not braid key ids: (peer, 32-byte public key).
    pub trusted_keys: Vec<(String, serde_bytes::ByteBuf)>,
    /// The limit on the bytes of one invocation's call requests (always hard).
    pub call_requests_size: u64,
}

/// A tetraplet on the wire: (peer, service, function, lens).
pub type WireTetraplet = (String, String, String, String);

/// A call request on the wire: (id, service, function, arguments JSON, the tetraplets
/// of each argument).
pub type WireCallRequest = (u32, String, String, String, Vec<Vec<WireTetraplet>>);

/// What `invoke` returns.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Output {
    /// 0, or the error's code.
    pub ret_code: i32,
    /// Empty, or the error's message.
    pub error_message: String,
    /// The data to store and send.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Call requests.
    pub call_requests: Vec<WireCallRequest>,
    /// Peers to send the data to.
    pub next_peers: Vec<String>,
    /// Soft limits exceeded: the script, the current data, a call result.
    pub limits_exceeded: (bool, bool, bool),
}

/// An [`Input`] that borrows its parts, for hosts: encodes exactly as [`Input`] does
/// (MessagePack arrays, fields in the same order) without copying the data first.
#[derive(Serialize)]
struct InputRef<'a> {
    script: &'a str,
    #[serde(with = "serde_bytes")]
    prev_data: &'a [u8],
    #[serde(with = "serde_bytes")]
    data: &'a [u8],
    init_peer_id: &'a str,
    current_peer_id: &'a str,
    timestamp: u64,
    ttl: u32,
    particle_id: &'a str,
    key_format: u8,
    #[serde(with = "serde_bytes")]
    secret_key: &'a [u8],
    limits: (u64, u64, u64, bool),
    call_results: Vec<(u32, i32, &'a str)>,
    check: bool,
    trusted_keys: Vec<(&'a str, &'a serde_bytes::Bytes)>,
    call_requests_size: u64,
}

/// The encoded [`Input`] of one invocation, as a host passes it to `braid_invoke`.
pub fn encode_input(
    script: &str,
    prev_data: &[u8],
    data: &[u8],
    params: &RunParams,
    results: &CallResults,
) -> Vec<u8> {
    let limits = &params.limits;
    let input = InputRef {
        script,
        prev_data,
        data,
        init_peer_id: &params.init_peer_id,
        current_peer_id: &params.current_peer_id,
        timestamp: params.timestamp,
        ttl: params.ttl,
        particle_id: &params.particle_id,
        key_format: params.key.format,
        secret_key: &params.key.secret,
        limits: (
            limits.air_size,
            limits.particle_size,
            limits.call_result_size,
            limits.hard,
        ),
        call_requests_size: limits.call_requests_size,
        call_results: results
            .iter()
            .map(|(id, r)| (*id, r.ret_code, r.result.as_str()))
            .collect(),
        check: params.integrity.check,
        trusted_keys: params
            .integrity
            .trusted_keys
            .iter()
            .map(|(peer, key)| (peer.as_str(), serde_bytes::Bytes::new(key)))
            .collect(),
    };
    // Strings, numbers and bytes always serialize.
    rmp_serde::to_vec(&input).expect("input serializes")
}

impl Output {
    /// Decodes an output of `braid_invoke`.
    pub fn decode(bytes: &[u8]) -> Result<Self, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }

    /// The call requests in the interpreter's form.
    pub fn take_call_requests(&mut self) -> Vec<CallRequest> {
        std::mem::take(&mut self.call_requests)
            .into_iter()
            .map(
                |(id, service_id, function_name, arguments, tetraplets)| CallRequest {
                    id,
                    service_id,
                    function_name,
                    arguments,
                    tetraplets: tetraplets
                        .into_iter()
                        .map(|ts| {
                            ts.into_iter()
                                .map(|(peer_pk, service_id, function_name, lens)| Tetraplet {
                                    peer_pk,
                                    service_id,
                                    function_name,
                                    lens,
                                })
                                .collect()
                        })
                        .collect(),
                },
            )
            .collect()
    }
}

/// Runs `invoke` on an encoded [`Input`] and encodes its [`Output`].
pub fn invoke_encoded(input: &[u8]) -> Vec<u8> {
    let output = match rmp_serde::from_slice::<Input>(input) {
        Ok(input) => run(input),
        Err(e) => Output {
            ret_code: 5,
            error_message: format!("the module's input cannot be decoded: {e}"),
            data: Vec::new(),
            call_requests: Vec::new(),
            next_peers: Vec::new(),
            limits_exceeded: (false, false, false),
        },
    };
    // Plain structs of strings, numbers and bytes always serialize.
    rmp_serde::to_vec(&output).expect("output serializes")
}

fn run(input: Input) -> Output {
    let (air_size, particle_size, call_result_size, hard) = input.limits;
    let params = RunParams {
        init_peer_id: input.init_peer_id,
        current_peer_id: input.current_peer_id,
        timestamp: input.timestamp,
        ttl: input.ttl,
        particle_id: input.particle_id,
        key: KeyPair {
            format: input.key_format,
            secret: input.secret_key,
        },
        limits: Limits {
            air_size,
            particle_size,
            call_result_size,
            hard,
            call_requests_size: input.call_requests_size,
        },
        integrity: Integrity {
            check: input.check,
            trusted_keys: input
                .trusted_keys
                .into_iter()
                .filter_map(|(peer, key)| Some((peer, <[u8; 32]>::try_from(key.as_slice()).ok()?)))
                .collect(),
        },
    };
    let results: CallResults = input
        .call_results
        .into_iter()
        .map(|(id, ret_code, result)| (id, CallResult { ret_code, result }))
        .collect();
    let outcome = braid_interpreter::invoke(
        &input.script,
        &input.prev_data,
        &input.data,
        &params,
        &results,
    );
    Output {
        ret_code: outcome.ret_code(),
        error_message: outcome.error_message(),
        call_requests: outcome
            .call_requests
            .into_iter()
            .map(|r| {
                let tetraplets = r
                    .tetraplets
                    .into_iter()
                    .map(|ts| {
                        ts.into_iter()
                            .map(|t| (t.peer_pk, t.service_id, t.function_name, t.lens))
                            .collect()
                    })
                    .collect();
                (r.id, r.service_id, r.function_name, r.arguments, tetraplets)
            })
            .collect(),
        next_peers: outcome.next_peers,
        data: outcome.data,
        limits_exceeded: (
            outcome.limits_exceeded.air_size,
            outcome.limits_exceeded.particle_size,
            outcome.limits_exceeded.call_result_size,
        ),
    }
}

#[cfg(target_arch = "wasm32")]
pub mod abi {
    //! The raw exports. The only unsafe code in braid: taking buffers across the
    //! module boundary.
    #![allow(unsafe_code)]

    /// Reserves `len` bytes in the module's memory.
    #[unsafe(no_mangle)]
    pub extern "C" fn braid_alloc(len: u32) -> u32 {
        let mut buf = Vec::<u8>::with_capacity(len as usize);
        let ptr = buf.as_mut_ptr();
        std::mem::forget(buf);
        ptr as u32
    }

    /// Frees a buffer of `len` bytes at `ptr` returned by this module.
    ///
    /// # Safety
    /// `ptr` and `len` must come from `braid_alloc` or `braid_invoke`, once.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn braid_dealloc(ptr: u32, len: u32) {
        // SAFETY: the caller passes back a buffer this module allocated with this length.
        drop(unsafe { Vec::from_raw_parts(ptr as *mut u8, 0, len as usize) });
    }

    /// Misbehaves on purpose; see the crate docs.
    #[unsafe(no_mangle)]
    pub extern "C" fn braid_test_fault(kind: u32) {
        match kind {
            1 => core::arch::wasm32::unreachable(),
            2 => {
                let mut held: Vec<Vec<u8>> = Vec::new();
                loop {
                    held.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            3 => loop {
                std::hint::black_box(());
            },
            _ => {}
        }
    }

    /// Runs an invocation; see the crate docs.
    ///
    /// # Safety
    /// `ptr`/`len` must be a buffer from `braid_alloc` filled with the input; it is
    /// freed here.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn braid_invoke(ptr: u32, len: u32) -> u64 {
        // SAFETY: the caller allocated `len` bytes at `ptr` with `braid_alloc` and wrote them.
        let input = unsafe { Vec::from_raw_parts(ptr as *mut u8, len as usize, len as usize) };
        let output = super::invoke_encoded(&input);
        drop(input);
        let mut output = std::mem::ManuallyDrop::new(output.into_boxed_slice());
        let (out_ptr, out_len) = (output.as_mut_ptr() as u32, output.len() as u32);
        (u64::from(out_ptr) << 32) | u64::from(out_len)
    }
}
