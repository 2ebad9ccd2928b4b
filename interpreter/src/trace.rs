//! The execution trace: what the script did so far, one state per recorded event
//! (trace-and-merge.md §2). This is the in-memory form; `data.rs` encodes it.

use std::cell::Cell;
use std::rc::Rc;

use crate::json::{Cid, Json};
use crate::params::Tetraplet;
use crate::value::Val;

/// One trace state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum State<'a> {
    /// A `par`: the number of states of its left and right subtrees, which follow.
    Par { left: u32, right: u32 },
    /// A `call`.
    Call(CallState<'a>),
    /// An `ap` to a stream or a stream map: the generation of the appended value.
    Ap { generation: u32 },
    /// A fold over a stream or stream map: its iteration records.
    Fold(Vec<IterationRecord>),
    /// A `canon`.
    Canon(CanonState<'a>),
}

impl State<'_> {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Par { .. } => "par",
            Self::Call(_) => "call",
            Self::Ap { .. } => "ap",
            Self::Fold(_) => "fold",
            Self::Canon(_) => "canon",
        }
    }
}

/// What a `call` recorded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallState<'a> {
    /// The service answered; the result went to `output`.
    Executed {
        result: Rc<ServiceResult<'a>>,
        output: Output,
    },
    /// The service failed; the result's value is `{"ret_code", "message"}`.
    Failed(Rc<ServiceResult<'a>>),
    /// Sent: by `peer` to the call's target (no request id), or by the target itself
    /// as call request `request`, awaiting its result.
    Sent { peer: Rc<str>, request: Option<u32> },
}

/// Where an executed call's result went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Scalar,
    Stream { generation: u32 },
    Unused,
}

impl Output {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Stream { .. } => "stream",
            Self::Unused => "unused",
        }
    }
}

/// A service's answer bound to what it answered: the returned value, a fingerprint of
/// the evaluated arguments and the call's tetraplet.
#[derive(Debug, Clone)]
pub(crate) struct ServiceResult<'a> {
    pub(crate) value: Rc<Json<'a>>,
    pub(crate) argument_hash: [u8; 32],
    pub(crate) tetraplet: Rc<Tetraplet>,
    /// The content id of the record (`integrity`), once computed or as stored.
    pub(crate) cid: Cell<Option<Cid>>,
}

impl<'a> ServiceResult<'a> {
    pub(crate) fn new(
        value: Rc<Json<'a>>,
        argument_hash: [u8; 32],
        tetraplet: Rc<Tetraplet>,
    ) -> Self {
        Self {
            value,
            argument_hash,
            tetraplet,
            cid: Cell::new(None),
        }
    }
}

impl PartialEq for ServiceResult<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
            && self.argument_hash == other.argument_hash
            && self.tetraplet == other.tetraplet
    }
}

/// What a `canon` recorded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CanonState<'a> {
    /// `peer` forwarded the canonicalization to the canon peer.
    Sent { peer: Rc<str> },
    /// The canon peer's snapshot.
    Executed(Rc<CanonResult<'a>>),
}

/// A canonicalization: the canon tetraplet and the element list.
#[derive(Debug, Clone)]
pub(crate) struct CanonResult<'a> {
    pub(crate) tetraplet: Rc<Tetraplet>,
    pub(crate) elements: Vec<Val<'a>>,
    /// Each element's provenance as stored in data (empty for a canon made here:
    /// every element is then recorded as a literal, see `Provenance`).
    provenance: Vec<Provenance>,
    /// The call result records that stored provenance refers to, so that the data
    /// written keeps them (the stores are rebuilt from the trace).
    pub(crate) origins: Vec<Rc<ServiceResult<'a>>>,
    /// The content id of the snapshot (`integrity`), once computed or as stored.
    pub(crate) cid: Cell<Option<Cid>>,
    /// Per element, once computed: the ids of its value, tetraplet and record, and
    /// its provenance (`integrity::element_ids`).
    pub(crate) element_ids: std::cell::OnceCell<Vec<ElementIds>>,
}

/// The ids of a canon element and what it refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ElementIds {
    pub(crate) value: Cid,
    pub(crate) tetraplet: Cid,
    pub(crate) provenance: Provenance,
    pub(crate) element: Cid,
}

impl<'a> CanonResult<'a> {
    pub(crate) fn new(tetraplet: Rc<Tetraplet>, elements: Vec<Val<'a>>) -> Self {
        Self::with_provenance(tetraplet, elements, Vec::new())
    }

    /// A canon as decoded, with its elements' stored provenance.
    pub(crate) fn with_provenance(
        tetraplet: Rc<Tetraplet>,
        elements: Vec<Val<'a>>,
        provenance: Vec<Provenance>,
    ) -> Self {
        Self {
            tetraplet,
            elements,
            provenance,
            origins: Vec::new(),
            cid: Cell::new(None),
            element_ids: std::cell::OnceCell::new(),
        }
    }

    /// The provenance of element `i` as stored in data, if this canon came in data.
    pub(crate) fn stored_provenance(&self, i: usize) -> Option<Provenance> {
        self.provenance.get(i).copied()
    }
}

/// Where a canon element's value came from, as the reference records it in the canon
/// element's record (data-integrity.md §2.2). Only whether it is a literal matters to
/// the language (`Val::literal`). braid keeps what data records; for a canon it makes
/// it records literals as such and, not tracing a value back to its call, any other
/// element as coming from a call result record of the element itself (its value, its
/// tetraplet, the empty argument list), which it adds to the data
/// (`integrity::element_ids`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provenance {
    Literal,
    /// The id of the call result record the value came from.
    ServiceResult(Cid),
    /// The id of the canon result the value came from.
    Canon(Cid),
}

impl PartialEq for CanonResult<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.tetraplet == other.tetraplet && self.elements == other.elements
    }
}

/// One iteration of a fold over a stream (trace-and-merge.md §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IterationRecord {
    /// Position of the state that produced the iterated value.
    pub(crate) value_pos: u32,
    /// States from the start of the iteration to its `next`.
    pub(crate) before: Subtrace,
    /// States after its `next` returned.
    pub(crate) after: Subtrace,
}

/// A run of states: absolute start position and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Subtrace {
    pub(crate) begin: u32,
    pub(crate) len: u32,
}

/// Fingerprint of an evaluated argument list: blake3 of its compact JSON text.
pub(crate) fn argument_hash(arguments_json: &str) -> [u8; 32] {
    *blake3::hash(arguments_json.as_bytes()).as_bytes()
}
