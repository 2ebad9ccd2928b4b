//! What crosses the interpreter's boundary: run parameters and call results in, the
//! outcome with its call requests out. Plain owned data only.

use std::collections::BTreeMap;

/// The per-invocation parameters the host passes in. Time enters the interpreter only
/// here (`timestamp`, `ttl`), as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunParams {
    /// The peer that started the particle: the value of `%init_peer_id%`.
    pub init_peer_id: String,
    /// The peer running this invocation: decides which calls are local.
    pub current_peer_id: String,
    /// The particle's timestamp in milliseconds: the value of `%timestamp%`.
    pub timestamp: u64,
    /// The particle's time to live in milliseconds: the value of `%ttl%`.
    pub ttl: u32,
    /// The particle's id (binds signatures to the particle).
    pub particle_id: String,
    /// The current peer's key: format (only 0, Ed25519, is accepted) and secret bytes.
    pub key: KeyPair,
    /// Size limits.
    pub limits: Limits,
    /// Whether arriving data is checked, and the keys of peers whose ids are not
    /// derived from their keys.
    pub integrity: Integrity,
}

/// Checking of arriving data (see the crate docs on integrity).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Integrity {
    /// Verify the current data before running: content ids of values, and every
    /// producing peer's signature over its results for this particle (errors 8, 9).
    pub check: bool,
    /// Public keys of peers whose ids are not braid key ids (`peer_id_of`), e.g. the
    /// plain names of test networks. A peer id neither derived from its key nor listed
    /// here cannot be verified.
    pub trusted_keys: BTreeMap<String, [u8; 32]>,
}

/// The current peer's signing key as the host passes it.
///
/// Format 0 is the 32-byte Ed25519 secret alone; the interpreter then derives the
/// public key each time it signs. Format 1 is the secret followed by its 32-byte
/// public key, which a host derives once ([`KeyPair::ed25519`]) and which halves the
/// cost of each signature. The public half of a format 1 key is taken as given: one
/// that does not belong to the secret makes signatures the next peers refuse.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// Key type: 0 (Ed25519 secret) or 1 (Ed25519 secret and public key).
    pub format: u8,
    /// The key bytes: 32 for format 0, 64 for format 1.
    pub secret: Vec<u8>,
}

impl KeyPair {
    /// A format 1 key: the secret with its public key, derived here once.
    pub fn ed25519(secret: &[u8; 32]) -> Self {
        let mut bytes = secret.to_vec();
        bytes.extend_from_slice(&crate::integrity::public_key_of(secret));
        Self {
            format: 1,
            secret: bytes,
        }
    }
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secret key bytes.
        f.debug_struct("KeyPair")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Size limits of one invocation (execution-model.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest script, in bytes.
    pub air_size: u64,
    /// Largest current data, in bytes.
    pub particle_size: u64,
    /// Largest `result` text of one call result, in bytes.
    pub call_result_size: u64,
    /// If true an exceeded limit fails the invocation (error 10); if false it only sets
    /// a flag in the outcome.
    pub hard: bool,
    /// Largest total, in bytes, of the call requests one invocation may produce (the
    /// text of each request's service id, function name, arguments and tetraplets),
    /// counted as they are built. Always hard: an invocation over it fails as a
    /// resource failure (error 20023, the data left as it was), as the reference's
    /// would when its Wasm memory runs out; no request is made.
    pub call_requests_size: u64,
}

impl Limits {
    /// The reference hosts' maxima: AIR 16 MiB, particle 64 MiB, call result 32 MiB,
    /// soft; call requests unbounded (the reference's bound is its Wasm memory, which
    /// a host sets apart from these).
    pub const REFERENCE_MAXIMA: Limits = Limits {
        air_size: 16 << 20,
        particle_size: 64 << 20,
        call_result_size: 32 << 20,
        hard: false,
        call_requests_size: u64::MAX,
    };
}

/// Answers to call requests, by request id.
pub type CallResults = BTreeMap<u32, CallResult>;

/// A service's answer to one call request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// 0 for success; anything else is a failure whose `result` is the error text.
    pub ret_code: i32,
    /// JSON text of the result on success; any text on failure.
    pub result: String,
}

impl CallResult {
    /// A successful answer with this JSON text.
    pub fn ok(json: impl Into<String>) -> Self {
        Self {
            ret_code: 0,
            result: json.into(),
        }
    }

    /// A failed answer.
    pub fn error(ret_code: i32, message: impl Into<String>) -> Self {
        Self {
            ret_code,
            result: message.into(),
        }
    }
}

/// A service call the host must perform, then answer with a [`CallResult`] under `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// The request id; answers are keyed by it.
    pub id: u32,
    /// Service id.
    pub service_id: String,
    /// Function name.
    pub function_name: String,
    /// Compact JSON text of the argument array.
    pub arguments: String,
    /// One list of tetraplets per argument: where each argument's value came from.
    pub tetraplets: Vec<Vec<Tetraplet>>,
}

impl CallRequest {
    /// The bytes its text takes (service id, function name, arguments, tetraplets): what
    /// counts against [`Limits::call_requests_size`].
    pub fn text_bytes(&self) -> u64 {
        let tetraplets: usize = self
            .tetraplets
            .iter()
            .flatten()
            .map(Tetraplet::text_bytes)
            .sum();
        (self.service_id.len() + self.function_name.len() + self.arguments.len() + tetraplets)
            as u64
    }
}

/// The origin of a value: the peer, service and function that produced it and the lens
/// applied since (execution-model.md §7).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Tetraplet {
    /// Peer id.
    pub peer_pk: String,
    /// Service id.
    pub service_id: String,
    /// Function name.
    pub function_name: String,
    /// Lens text, e.g. `.$.field.[0]`.
    pub lens: String,
}

impl Tetraplet {
    /// The bytes of its four texts.
    pub fn text_bytes(&self) -> usize {
        self.peer_pk.len() + self.service_id.len() + self.function_name.len() + self.lens.len()
    }
}

/// Which soft limits were exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitFlags {
    /// The script was over `air_size`.
    pub air_size: bool,
    /// The current data was over `particle_size`.
    pub particle_size: bool,
    /// A call result was over `call_result_size`.
    pub call_result_size: bool,
}
