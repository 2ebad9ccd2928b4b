//! A structural reading of braid's particle data, for property tests that compare traces
//! by content: every table reference is resolved, so two data are equal here exactly
//! when they hold the same trace, whatever order their tables were written in.
//!
//! It mirrors the private layout of `interpreter/src/data.rs` (format 2: an envelope
//! `[format, interpreter, body]`, body `[trace, last_call_id, values, tetraplets,
//! results, canons, peers, signatures]`, values `[content id, canonical JSON text]`, signatures
//! `[peer, public key, signature, [signed result id, …]]`, states as rmp-serde enums `{variant index:
//! payload}` with the variant's name) and must change with it; [`read`] refuses data of any other shape with a
//! message saying so.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The data format this module reads.
pub const FORMAT: u64 = 2;

/// Decoded particle data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataView {
    /// The trace, state by state.
    pub trace: Vec<StateView>,
    /// The last call request id.
    pub last_call_id: u64,
    /// Per peer with results: peer, public key and signature, in hex.
    pub signatures: Vec<[String; 3]>,
}

/// One trace state (trace-and-merge.md §2), references resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum StateView {
    /// `Par(left, right)`.
    Par {
        /// States of the left subtree.
        left: u64,
        /// States of the right subtree.
        right: u64,
    },
    /// `Call Executed`.
    Executed {
        /// Scalar, stream (with its generation) or unused.
        output: Output,
        /// The result record.
        result: ResultView,
    },
    /// `Call Failed`.
    Failed(ResultView),
    /// `Call SentBy(peer)` or `SentBy(peer, request id)`.
    Sent {
        /// The sender.
        peer: String,
        /// The local request id, if the peer is the call's target.
        request: Option<u64>,
    },
    /// `Ap(generation)`.
    Ap {
        /// The generation.
        generation: u64,
    },
    /// `Fold(lore)`: per record value_pos, before (begin, len), after (begin, len).
    Fold(Vec<[u64; 5]>),
    /// `Canon SentBy(peer)`.
    CanonSent {
        /// The sender.
        peer: String,
    },
    /// `Canon Executed`.
    Canon(CanonView),
}

/// Where an executed call's result went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A scalar.
    Scalar,
    /// A stream, in this generation.
    Stream {
        /// The generation.
        generation: u64,
    },
    /// Nowhere: the call had no output.
    Unused,
}

/// A result record: value, argument fingerprint, tetraplet.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultView {
    /// The returned value.
    pub value: Value,
    /// The argument fingerprint, in hex.
    pub argument_hash: String,
    /// Peer, service, function, lens.
    pub tetraplet: [String; 4],
}

/// A canon result.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonView {
    /// The canon tetraplet.
    pub tetraplet: [String; 4],
    /// Per element: value, tetraplet, literal provenance.
    pub elements: Vec<(Value, [String; 4], bool)>,
}

impl DataView {
    /// The same data with every stream generation set to 0: what two bracketings of a
    /// merge need not agree on (trace-and-merge.md §5).
    pub fn without_generations(&self) -> DataView {
        let trace = self
            .trace
            .iter()
            .map(|s| match s {
                StateView::Executed {
                    output: Output::Stream { .. },
                    result,
                } => StateView::Executed {
                    output: Output::Stream { generation: 0 },
                    result: result.clone(),
                },
                StateView::Ap { .. } => StateView::Ap { generation: 0 },
                other => other.clone(),
            })
            .collect();
        DataView {
            trace,
            last_call_id: self.last_call_id,
            signatures: self.signatures.clone(),
        }
    }

    /// How many states hold a service result or a canon result (executed or failed calls
    /// and executed canons).
    pub fn results(&self) -> usize {
        self.trace
            .iter()
            .filter(|s| {
                matches!(
                    s,
                    StateView::Executed { .. } | StateView::Failed(_) | StateView::Canon(_)
                )
            })
            .count()
    }

    /// The states holding service or canon results that `other` does not hold (as a
    /// multiset, generations ignored).
    pub fn results_missing_from(&self, other: &DataView) -> Vec<StateView> {
        let mut theirs: Vec<StateView> = other.without_generations().trace;
        self.without_generations()
            .trace
            .into_iter()
            .filter(|s| {
                matches!(
                    s,
                    StateView::Executed { .. } | StateView::Failed(_) | StateView::Canon(_)
                )
            })
            .filter(|s| match theirs.iter().position(|t| t == s) {
                Some(i) => {
                    theirs.swap_remove(i);
                    false
                }
                None => true,
            })
            .collect()
    }
}

/// Reads data; empty bytes are empty data.
pub fn read(bytes: &[u8]) -> Result<DataView, String> {
    if bytes.is_empty() {
        return Ok(DataView::default());
    }
    let envelope: Msg =
        rmp_serde::from_slice(bytes).map_err(|e| format!("not MessagePack: {e}"))?;
    let envelope = envelope.array("envelope")?;
    let format = field(envelope, 0, "format")?.uint("format")?;
    if format != FORMAT {
        return Err(format!(
            "data format {format}, data_view reads format {FORMAT}: {UPDATE}"
        ));
    }
    let body = field(envelope, 2, "body")?.array("body")?;
    if body.len() != BODY_FIELDS {
        return Err(format!(
            "the data body has {} fields, data_view reads {BODY_FIELDS}: {UPDATE}",
            body.len()
        ));
    }
    let values: Vec<Value> = field(body, 2, "values")?
        .array("values")?
        .iter()
        .map(|v| match v.array("value")? {
            [Msg::Bin(_), Msg::Str(text)] => {
                serde_json::from_str(text).map_err(|e| format!("value {text:?}: {e}"))
            }
            _ => Err(format!("value entry {v:?}: {UPDATE}")),
        })
        .collect::<Result<_, _>>()?;
    let tetraplets: Vec<[String; 4]> = field(body, 3, "tetraplets")?
        .array("tetraplets")?
        .iter()
        .map(|t| {
            let t = t.array("tetraplet")?;
            Ok([
                field(t, 0, "peer")?.string()?,
                field(t, 1, "service")?.string()?,
                field(t, 2, "function")?.string()?,
                field(t, 3, "lens")?.string()?,
            ])
        })
        .collect::<Result<_, String>>()?;
    let pick = |table_len: usize, index: &Msg, what: &str| -> Result<usize, String> {
        let i = index.uint(what)? as usize;
        if i < table_len {
            Ok(i)
        } else {
            Err(format!("{what} #{i} of {table_len}"))
        }
    };
    let results: Vec<ResultView> = field(body, 4, "results")?
        .array("results")?
        .iter()
        .map(|r| {
            let r = r.array("result")?;
            let hash = match field(r, 1, "argument hash")? {
                Msg::Bin(bytes) => hex(bytes),
                other => return Err(format!("argument hash is {other:?}")),
            };
            Ok(ResultView {
                value: values[pick(values.len(), field(r, 0, "value")?, "value")?].clone(),
                argument_hash: hash,
                tetraplet: tetraplets
                    [pick(tetraplets.len(), field(r, 2, "tetraplet")?, "tetraplet")?]
                .clone(),
            })
        })
        .collect::<Result<_, String>>()?;
    let canons: Vec<CanonView> = field(body, 5, "canons")?
        .array("canons")?
        .iter()
        .map(|c| {
            let c = c.array("canon")?;
            let elements = field(c, 1, "elements")?
                .array("elements")?
                .iter()
                .map(|e| {
                    let e = e.array("element")?;
                    Ok((
                        values[pick(values.len(), field(e, 0, "value")?, "value")?].clone(),
                        tetraplets[pick(tetraplets.len(), field(e, 1, "tetraplet")?, "tetraplet")?]
                            .clone(),
                        matches!(field(e, 2, "literal")?, Msg::Bool(true)),
                    ))
                })
                .collect::<Result<_, String>>()?;
            Ok(CanonView {
                tetraplet: tetraplets
                    [pick(tetraplets.len(), field(c, 0, "tetraplet")?, "tetraplet")?]
                .clone(),
                elements,
            })
        })
        .collect::<Result<_, String>>()?;
    let peers: Vec<String> = field(body, 6, "peers")?
        .array("peers")?
        .iter()
        .map(Msg::string)
        .collect::<Result<_, _>>()?;
    let signatures: Vec<[String; 3]> = field(body, 7, "signatures")?
        .array("signatures")?
        .iter()
        .map(|s| match s.array("signature")? {
            // The signed ids are implied by the signature; the view keeps who signed.
            [
                Msg::Str(peer),
                Msg::Bin(key),
                Msg::Bin(signature),
                Msg::Array(_),
            ] => Ok([peer.clone(), hex(key), hex(signature)]),
            _ => Err(format!("signature entry {s:?}: {UPDATE}")),
        })
        .collect::<Result<_, String>>()?;
    let trace = field(body, 0, "trace")?
        .array("trace")?
        .iter()
        .map(|s| state(s, &results, &canons, &peers))
        .collect::<Result<_, _>>()?;
    Ok(DataView {
        trace,
        last_call_id: field(body, 1, "last call id")?.uint("last call id")?,
        signatures,
    })
}

const BODY_FIELDS: usize = 8;
const UPDATE: &str = "update sim/src/random_runs/data_view.rs to interpreter/src/data.rs";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `EncState`'s variants, in order.
const VARIANTS: [&str; 10] = [
    "Par",
    "CallScalar",
    "CallStream",
    "CallUnused",
    "CallFailed",
    "CallSent",
    "Ap",
    "Fold",
    "CanonSent",
    "CanonExecuted",
];

/// One state: `{variant: payload}`, the variant named or numbered as in `EncState`.
fn state(
    msg: &Msg,
    results: &[ResultView],
    canons: &[CanonView],
    peers: &[String],
) -> Result<StateView, String> {
    let Msg::Map(entries) = msg else {
        return Err(format!("state is {msg:?}"));
    };
    let [(variant, payload)] = entries.as_slice() else {
        return Err(format!("state is {msg:?}"));
    };
    let get = |table_len: usize, index: &Msg, what: &str| -> Result<usize, String> {
        let i = index.uint(what)? as usize;
        if i < table_len {
            Ok(i)
        } else {
            Err(format!("{what} #{i} of {table_len}"))
        }
    };
    let result = |m: &Msg| -> Result<ResultView, String> {
        Ok(results[get(results.len(), m, "result")?].clone())
    };
    let peer =
        |m: &Msg| -> Result<String, String> { Ok(peers[get(peers.len(), m, "peer")?].clone()) };
    let executed = |output, m: &Msg| -> Result<StateView, String> {
        Ok(StateView::Executed {
            output,
            result: result(m)?,
        })
    };
    let variant = match variant {
        Msg::Str(name) => VARIANTS
            .iter()
            .position(|v| v == name)
            .ok_or_else(|| format!("unknown state variant {name}: {UPDATE}"))?
            as u64,
        other => other.uint("state variant")?,
    };
    Ok(match variant {
        0 => {
            let p = payload.array("par")?;
            StateView::Par {
                left: field(p, 0, "left")?.uint("left")?,
                right: field(p, 1, "right")?.uint("right")?,
            }
        }
        1 => executed(Output::Scalar, payload)?,
        2 => {
            let p = payload.array("stream call")?;
            executed(
                Output::Stream {
                    generation: field(p, 1, "generation")?.uint("generation")?,
                },
                field(p, 0, "result")?,
            )?
        }
        3 => executed(Output::Unused, payload)?,
        4 => StateView::Failed(result(payload)?),
        5 => {
            let p = payload.array("sent")?;
            StateView::Sent {
                peer: peer(field(p, 0, "peer")?)?,
                request: match field(p, 1, "request")? {
                    Msg::Nil => None,
                    id => Some(id.uint("request")?),
                },
            }
        }
        6 => StateView::Ap {
            generation: payload.uint("generation")?,
        },
        7 => StateView::Fold(
            payload
                .array("fold")?
                .iter()
                .map(|r| {
                    let r = r.array("fold record")?;
                    let mut out = [0; 5];
                    for (i, o) in out.iter_mut().enumerate() {
                        *o = field(r, i, "fold record")?.uint("fold record")?;
                    }
                    Ok(out)
                })
                .collect::<Result<_, String>>()?,
        ),
        8 => StateView::CanonSent {
            peer: peer(payload)?,
        },
        9 => StateView::Canon(canons[get(canons.len(), payload, "canon")?].clone()),
        other => return Err(format!("unknown state variant {other}")),
    })
}

fn field<'m>(items: &'m [Msg], i: usize, what: &str) -> Result<&'m Msg, String> {
    items.get(i).ok_or_else(|| format!("{what} is missing"))
}

/// Any MessagePack value.
#[derive(Debug, Clone, PartialEq)]
enum Msg {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Msg>),
    Map(Vec<(Msg, Msg)>),
}

impl Msg {
    fn array(&self, what: &str) -> Result<&[Msg], String> {
        match self {
            Msg::Array(items) => Ok(items),
            other => Err(format!("{what} is {other:?}, not an array")),
        }
    }

    fn uint(&self, what: &str) -> Result<u64, String> {
        match self {
            Msg::Int(i) => u64::try_from(*i).map_err(|_| format!("{what} is {i}")),
            other => Err(format!("{what} is {other:?}, not a number")),
        }
    }

    fn string(&self) -> Result<String, String> {
        match self {
            Msg::Str(s) => Ok(s.clone()),
            other => Err(format!("{other:?} is not a string")),
        }
    }

}

impl<'de> Deserialize<'de> for Msg {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Msg, D::Error> {
        d.deserialize_any(MsgVisitor)
    }
}

struct MsgVisitor;

impl<'de> Visitor<'de> for MsgVisitor {
    type Value = Msg;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a MessagePack value")
    }
    fn visit_unit<E>(self) -> Result<Msg, E> {
        Ok(Msg::Nil)
    }
    fn visit_none<E>(self) -> Result<Msg, E> {
        Ok(Msg::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Msg, D::Error> {
        Msg::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Msg, E> {
        Ok(Msg::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Msg, E> {
        Ok(Msg::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Msg, E> {
        Ok(Msg::Int(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Msg, E> {
        Ok(Msg::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Msg, E> {
        Ok(Msg::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Msg, E> {
        Ok(Msg::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Msg, E> {
        Ok(Msg::Bin(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Msg, E> {
        Ok(Msg::Bin(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Msg, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Msg::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Msg, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Msg::Map(entries))
    }
}
