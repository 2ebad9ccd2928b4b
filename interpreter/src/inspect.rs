//! Read-only views for tools that explain a particle (`braid explain`): the decoded
//! trace of some data, and an invoke that also logs which instruction ran, in which
//! order, and where in the result trace its states went. Nothing here changes what
//! [`invoke`](crate::invoke) computes: [`invoke_inspected`] is the same function with a
//! log switched on.

use braid_grammar::InstrId;
use serde_json::Value as JValue;

use crate::error::{DataSide, InterpreterError};
use crate::outcome::Outcome;
use crate::params::{CallResults, RunParams};
use crate::trace::{CallState, CanonState, Output, State};

/// Decoded particle data, for display.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DataView {
    /// The trace, one state per recorded event.
    pub states: Vec<StateView>,
    /// The last call request id used.
    pub last_call_id: u32,
    /// The peers whose signatures the data carries.
    pub signers: Vec<String>,
}

/// One trace state, for display.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StateView {
    /// A `par`: the sizes of its left and right subtraces, which follow it.
    Par {
        /// States of the left branch.
        left: u32,
        /// States of the right branch.
        right: u32,
    },
    /// A call the service answered.
    CallExecuted {
        /// The call's tetraplet: the peer that ran it, its service and function.
        tetraplet: [String; 3],
        /// The returned value.
        value: JValue,
        /// Where the value went: `None` unused, `Some(None)` a scalar, `Some(Some(g))`
        /// a stream, generation `g`.
        stream_generation: Option<Option<u32>>,
    },
    /// A call the service failed; `value` is `{"ret_code", "message"}`.
    CallFailed {
        /// The call's tetraplet.
        tetraplet: [String; 3],
        /// The error object.
        value: JValue,
    },
    /// A call sent: by `peer` to the call's target (`request` is `None`), or by the
    /// target itself as call request `request`, awaiting its result.
    CallSent {
        /// The peer that recorded it.
        peer: String,
        /// The call request id, if the target asked its host.
        request: Option<u32>,
    },
    /// An `ap` to a stream or stream map, with the value's generation.
    Ap {
        /// The generation.
        generation: u32,
    },
    /// A fold over a stream: its iterations.
    Fold(Vec<IterationView>),
    /// A `canon` forwarded by `peer` to the canon peer.
    CanonSent {
        /// The forwarding peer.
        peer: String,
    },
    /// A `canon` executed by `peer`, with the snapshot's elements.
    CanonExecuted {
        /// The peer of the canon's tetraplet.
        peer: String,
        /// The elements.
        elements: Vec<JValue>,
    },
}

/// One iteration of a stream fold: the state that produced its value and the two parts
/// of its states (`[begin, len]`, absolute positions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IterationView {
    /// Position of the state that produced the iterated value.
    pub value_pos: u32,
    /// The states up to the iteration's `next`.
    pub before: [u32; 2],
    /// The states after its `next` returned.
    pub after: [u32; 2],
}

/// Decodes data for display: the same checks as `invoke` makes (no integrity check).
pub fn decode_for_inspection(bytes: &[u8]) -> Result<DataView, InterpreterError> {
    let (data, _) = crate::data::decode(bytes, DataSide::Current, false)?;
    Ok(DataView {
        states: data.trace.iter().map(view_state).collect(),
        last_call_id: data.last_call_id,
        signers: data
            .signatures
            .iter()
            .map(|s| match s.ed25519_key() {
                Some(key) => crate::ids::peer_id_of(&key),
                None => format!("(a key of {} bytes)", s.public_key.len()),
            })
            .collect(),
    })
}

fn view_state(state: &State) -> StateView {
    let triplet = |t: &crate::params::Tetraplet| {
        [
            t.peer_pk.clone(),
            t.service_id.clone(),
            t.function_name.clone(),
        ]
    };
    match state {
        State::Par { left, right } => StateView::Par {
            left: *left,
            right: *right,
        },
        State::Call(CallState::Executed { result, output }) => StateView::CallExecuted {
            tetraplet: triplet(&result.tetraplet),
            value: result.value.tree().clone(),
            stream_generation: match output {
                Output::Unused => None,
                Output::Scalar => Some(None),
                Output::Stream { generation } => Some(Some(*generation)),
            },
        },
        State::Call(CallState::Failed(result)) => StateView::CallFailed {
            tetraplet: triplet(&result.tetraplet),
            value: result.value.tree().clone(),
        },
        State::Call(CallState::Sent { peer, request }) => StateView::CallSent {
            peer: peer.to_string(),
            request: *request,
        },
        State::Ap { generation } => StateView::Ap {
            generation: *generation,
        },
        State::Fold(records) => StateView::Fold(
            records
                .iter()
                .map(|r| IterationView {
                    value_pos: r.value_pos,
                    before: [r.before.begin, r.before.len],
                    after: [r.after.begin, r.after.len],
                })
                .collect(),
        ),
        State::Canon(CanonState::Sent { peer }) => StateView::CanonSent {
            peer: peer.to_string(),
        },
        State::Canon(CanonState::Executed(c)) => StateView::CanonExecuted {
            peer: c.tetraplet.peer_pk.clone(),
            elements: c.elements.iter().map(|e| e.json.tree().clone()).collect(),
        },
    }
}

/// Where the merger stood: the result trace's length and the two input cursors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TracePoint {
    /// Length of the result trace.
    pub result: u32,
    /// Position of the cursor in `prev_data`'s trace.
    pub prev: u32,
    /// Position of the cursor in the current data's trace.
    pub current: u32,
}

/// One entry of an execution log. `Enter` and `Leave` nest like the execution: the
/// states an instruction pushed itself are those between its `Enter` and `Leave`
/// points that none of its children pushed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ExecEvent {
    /// An instruction starts.
    Enter {
        /// The instruction (ids of `braid_grammar::parse` of the same script).
        instr: InstrId,
        /// Where the merger stood.
        at: TracePoint,
        /// When the instruction is a fold's body: the iteration's index in its pass
        /// and the iterated value.
        iteration: Option<(usize, JValue)>,
    },
    /// The instruction ends.
    Leave {
        /// The instruction.
        instr: InstrId,
        /// Where the merger stood.
        at: TracePoint,
        /// Whether the instruction completed (`false`: something in it waits).
        complete: bool,
        /// The error it ended with.
        fault: Option<FaultView>,
    },
}

/// An error an instruction ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultView {
    /// The reference's error code.
    pub code: i32,
    /// The message.
    pub message: String,
    /// Whether an `xor` can catch it.
    pub catchable: bool,
}

/// [`invoke`](crate::invoke) with an execution log. The outcome is the one `invoke`
/// returns for the same arguments; the log is empty when execution never started
/// (bad data, a script that does not parse, …).
pub fn invoke_inspected(
    script: &str,
    prev_data: &[u8],
    data: &[u8],
    params: &RunParams,
    call_results: &CallResults,
) -> (Outcome, Vec<ExecEvent>) {
    let mut log = Vec::new();
    let outcome = crate::invoke_logged(
        script,
        prev_data,
        data,
        params,
        call_results,
        Some(&mut log),
        None,
    );
    (outcome, log)
}
