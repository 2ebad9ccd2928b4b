//! braid's data format: a small versioned envelope, then the body (the trace, the call
//! request counter, and tables where each distinct value, tetraplet, service result,
//! canon result and peer id is stored once and referenced by index).
//!
//! Both levels are MessagePack (rmp-serde). Layout, version 1:
//!
//! ```text
//! envelope = [format: u32, interpreter: str, body]
//! body     = [trace, last_call_id, values, tetraplets, results, canons, peers, signatures]
//! values   = [[content id: 32 bytes, value], …]     (each distinct value once)
//! signatures = [[peer, public key: 32 bytes, signature: 64 bytes, [signed result id, …]], …]
//! ```
//!
//! A value's content id is the blake3 hash of its compact JSON text (`integrity.rs`);
//! it is stored so that arriving data can be checked value by value.
//!
//! Decoding never trusts the bytes: every index is checked, sizes are bounded by the
//! input, and any problem is an `InterpreterError` (codes 2–4), never a panic.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::Value as JValue;

use crate::error::{DataSide, InterpreterError};
use crate::integrity::{Cid, CidCache, PeerSignature};
use crate::params::Tetraplet;
use crate::trace::{
    CallState, CanonResult, CanonState, IterationRecord, Output, ServiceResult, State, Subtrace,
};
use crate::value::Val;

/// The data format this interpreter writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// This interpreter's version, recorded in the data it writes.
pub(crate) const INTERPRETER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Decoded particle data.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Data {
    pub(crate) trace: Vec<State>,
    pub(crate) last_call_id: u32,
    pub(crate) signatures: Vec<PeerSignature>,
}

/// The values of decoded data with the content ids stored for them.
pub(crate) type StoredIds = Vec<(Rc<JValue>, Cid)>;

#[derive(Serialize, Deserialize)]
struct Envelope<B> {
    format: u32,
    interpreter: String,
    body: B,
}

#[derive(Serialize, Deserialize, Default)]
struct Body {
    trace: Vec<EncState>,
    last_call_id: u32,
    values: Vec<EncValue>,
    tetraplets: Vec<EncTetraplet>,
    results: Vec<EncResult>,
    canons: Vec<EncCanon>,
    peers: Vec<String>,
    signatures: Vec<EncSignature>,
}

#[derive(Serialize, Deserialize)]
struct EncValue(#[serde(with = "fixed_bytes")] [u8; 32], JValue);

/// Peer, public key, signature, and the sorted result ids it covers.
#[derive(Serialize, Deserialize)]
struct EncSignature(
    String,
    #[serde(with = "fixed_bytes")] [u8; 32],
    #[serde(with = "fixed_bytes")] [u8; 64],
    Vec<EncCid>,
);

#[derive(Serialize, Deserialize)]
struct EncCid(#[serde(with = "fixed_bytes")] [u8; 32]);

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EncTetraplet(String, String, String, String);

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EncResult {
    value: u32,
    #[serde(with = "fixed_bytes")]
    argument_hash: [u8; 32],
    tetraplet: u32,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EncCanon {
    tetraplet: u32,
    /// (value, tetraplet, literal provenance) per element.
    elements: Vec<(u32, u32, bool)>,
}

#[derive(Serialize, Deserialize)]
enum EncState {
    Par(u32, u32),
    CallScalar(u32),
    CallStream(u32, u32),
    CallUnused(u32),
    CallFailed(u32),
    CallSent(u32, Option<u32>),
    Ap(u32),
    /// Per record: value_pos, before begin, before len, after begin, after len.
    Fold(Vec<[u32; 5]>),
    CanonSent(u32),
    CanonExecuted(u32),
}

mod fixed_bytes {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        struct V<const N: usize>;
        impl<'de, const N: usize> serde::de::Visitor<'de> for V<N> {
            type Value = [u8; N];
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{N} bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<[u8; N], E> {
                v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<[u8; N], A::Error> {
                let mut out = [0u8; N];
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(V::<N>)
    }
}

/// Decodes data; empty bytes are empty data. Returns the values with their stored
/// content ids too.
pub(crate) fn decode(bytes: &[u8], side: DataSide) -> Result<(Data, StoredIds), InterpreterError> {
    if bytes.is_empty() {
        return Ok((Data::default(), Vec::new()));
    }
    let header: Envelope<serde::de::IgnoredAny> =
        rmp_serde::from_slice(bytes).map_err(|e| InterpreterError::EnvelopeDecode {
            side,
            detail: e.to_string(),
        })?;
    if header.format != FORMAT_VERSION {
        return Err(InterpreterError::IncompatibleDataVersion {
            side,
            format: header.format,
            interpreter: header.interpreter,
            expected: FORMAT_VERSION,
            ours: INTERPRETER_VERSION,
        });
    }
    let envelope: Envelope<Body> =
        rmp_serde::from_slice(bytes).map_err(|e| InterpreterError::DataDecode {
            side,
            detail: e.to_string(),
        })?;
    Decoder::new(envelope.body)
        .and_then(Decoder::finish)
        .map_err(|detail| InterpreterError::DataDecode { side, detail })
}

struct Decoder {
    body: Body,
    stored_ids: StoredIds,
    results: Vec<Rc<ServiceResult>>,
    canons: Vec<Rc<CanonResult>>,
    peers: Vec<Rc<str>>,
}

fn get<T: Clone>(table: &[T], index: u32, what: &str) -> Result<T, String> {
    table.get(index as usize).cloned().ok_or_else(|| {
        format!(
            "{what} #{index} is referenced but the data has {}",
            table.len()
        )
    })
}

impl Decoder {
    fn new(mut body: Body) -> Result<Self, String> {
        let stored_ids: StoredIds = std::mem::take(&mut body.values)
            .into_iter()
            .map(|EncValue(cid, v)| (Rc::new(v), cid))
            .collect();
        let values: Vec<Rc<JValue>> = stored_ids.iter().map(|(v, _)| v.clone()).collect();
        let tetraplets: Vec<Rc<Tetraplet>> = std::mem::take(&mut body.tetraplets)
            .into_iter()
            .map(|EncTetraplet(peer_pk, service_id, function_name, lens)| {
                Rc::new(Tetraplet {
                    peer_pk,
                    service_id,
                    function_name,
                    lens,
                })
            })
            .collect();
        let results = std::mem::take(&mut body.results)
            .into_iter()
            .map(|r| {
                Ok(Rc::new(ServiceResult {
                    value: get(&values, r.value, "value")?,
                    argument_hash: r.argument_hash,
                    tetraplet: get(&tetraplets, r.tetraplet, "tetraplet")?,
                }))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let canons = std::mem::take(&mut body.canons)
            .into_iter()
            .map(|c| {
                let elements = c
                    .elements
                    .iter()
                    .map(|&(v, t, literal)| {
                        Ok(
                            Val::new(get(&values, v, "value")?, get(&tetraplets, t, "tetraplet")?)
                                .with_literal(literal),
                        )
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(Rc::new(CanonResult {
                    tetraplet: get(&tetraplets, c.tetraplet, "tetraplet")?,
                    elements,
                }))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let peers = std::mem::take(&mut body.peers)
            .into_iter()
            .map(Rc::from)
            .collect();
        Ok(Self {
            body,
            stored_ids,
            results,
            canons,
            peers,
        })
    }

    fn finish(mut self) -> Result<(Data, StoredIds), String> {
        let trace = std::mem::take(&mut self.body.trace)
            .into_iter()
            .map(|s| self.state(s))
            .collect::<Result<Vec<_>, String>>()?;
        let signatures = std::mem::take(&mut self.body.signatures)
            .into_iter()
            .map(
                |EncSignature(peer, public_key, signature, signed)| PeerSignature {
                    signed: signed.into_iter().map(|EncCid(c)| c).collect(),
                    peer,
                    public_key,
                    signature,
                },
            )
            .collect();
        let data = Data {
            trace,
            last_call_id: self.body.last_call_id,
            signatures,
        };
        Ok((data, self.stored_ids))
    }

    fn state(&self, s: EncState) -> Result<State, String> {
        let result = |i| get(&self.results, i, "service result");
        Ok(match s {
            EncState::Par(left, right) => State::Par { left, right },
            EncState::CallScalar(r) => State::Call(CallState::Executed {
                result: result(r)?,
                output: Output::Scalar,
            }),
            EncState::CallStream(r, generation) => State::Call(CallState::Executed {
                result: result(r)?,
                output: Output::Stream { generation },
            }),
            EncState::CallUnused(r) => State::Call(CallState::Executed {
                result: result(r)?,
                output: Output::Unused,
            }),
            EncState::CallFailed(r) => State::Call(CallState::Failed(result(r)?)),
            EncState::CallSent(p, request) => State::Call(CallState::Sent {
                peer: get(&self.peers, p, "peer")?,
                request,
            }),
            EncState::Ap(generation) => State::Ap { generation },
            EncState::Fold(records) => State::Fold(
                records
                    .into_iter()
                    .map(|[value_pos, bb, bl, ab, al]| IterationRecord {
                        value_pos,
                        before: Subtrace { begin: bb, len: bl },
                        after: Subtrace { begin: ab, len: al },
                    })
                    .collect(),
            ),
            EncState::CanonSent(p) => State::Canon(CanonState::Sent {
                peer: get(&self.peers, p, "peer")?,
            }),
            EncState::CanonExecuted(c) => {
                State::Canon(CanonState::Executed(get(&self.canons, c, "canon result")?))
            }
        })
    }
}

/// Encodes data. Deterministic: tables are filled in order of first use.
pub(crate) fn encode(data: &Data, cids: &mut CidCache) -> Vec<u8> {
    let mut enc = Encoder {
        cids,
        values: Vec::new(),
        value_index: BTreeMap::new(),
        tables: Tables::default(),
    };
    let trace = data.trace.iter().map(|s| enc.state(s)).collect();
    let body = Body {
        trace,
        last_call_id: data.last_call_id,
        values: enc.values,
        tetraplets: enc.tables.tetraplets,
        results: enc.tables.results,
        canons: enc.tables.canons,
        peers: enc.tables.peers,
        signatures: data
            .signatures
            .iter()
            .map(|s| {
                let signed = s.signed.iter().map(|c| EncCid(*c)).collect();
                EncSignature(s.peer.clone(), s.public_key, s.signature, signed)
            })
            .collect(),
    };
    let envelope = Envelope {
        format: FORMAT_VERSION,
        interpreter: INTERPRETER_VERSION.to_owned(),
        body,
    };
    // Serializing plain structs, strings, numbers and JSON values into a Vec cannot fail.
    rmp_serde::to_vec(&envelope).expect("data serializes")
}

/// Values are deduplicated by content id (the id of equal JSON is equal), which the
/// cache computes once per shared value.
struct Encoder<'c> {
    cids: &'c mut CidCache,
    values: Vec<EncValue>,
    value_index: BTreeMap<Cid, u32>,
    tables: Tables,
}

/// The other tables, deduplicated by their encoded form.
#[derive(Default)]
struct Tables {
    tetraplets: Vec<EncTetraplet>,
    tetraplet_index: BTreeMap<EncTetraplet, u32>,
    results: Vec<EncResult>,
    result_index: BTreeMap<EncResult, u32>,
    canons: Vec<EncCanon>,
    canon_index: BTreeMap<EncCanon, u32>,
    peers: Vec<String>,
    peer_index: BTreeMap<String, u32>,
}

fn intern<K: Ord + Clone, T>(
    table: &mut Vec<T>,
    index: &mut BTreeMap<K, u32>,
    key: K,
    item: impl FnOnce() -> T,
) -> u32 {
    if let Some(&i) = index.get(&key) {
        return i;
    }
    let i = table.len() as u32;
    table.push(item());
    index.insert(key, i);
    i
}

impl Encoder<'_> {
    fn value(&mut self, value: &Rc<JValue>) -> u32 {
        let cid = self.cids.cid(value);
        intern(&mut self.values, &mut self.value_index, cid, || {
            EncValue(cid, (**value).clone())
        })
    }

    fn tetraplet(&mut self, t: &Tetraplet) -> u32 {
        let key = EncTetraplet(
            t.peer_pk.clone(),
            t.service_id.clone(),
            t.function_name.clone(),
            t.lens.clone(),
        );
        intern(
            &mut self.tables.tetraplets,
            &mut self.tables.tetraplet_index,
            key.clone(),
            || key,
        )
    }

    fn result(&mut self, r: &ServiceResult) -> u32 {
        let key = EncResult {
            value: self.value(&r.value),
            argument_hash: r.argument_hash,
            tetraplet: self.tetraplet(&r.tetraplet),
        };
        intern(
            &mut self.tables.results,
            &mut self.tables.result_index,
            key.clone(),
            || key,
        )
    }

    fn canon(&mut self, c: &CanonResult) -> u32 {
        let key = EncCanon {
            tetraplet: self.tetraplet(&c.tetraplet),
            elements: c
                .elements
                .iter()
                .map(|e| (self.value(&e.json), self.tetraplet(&e.tetraplet), e.literal))
                .collect(),
        };
        intern(
            &mut self.tables.canons,
            &mut self.tables.canon_index,
            key.clone(),
            || key,
        )
    }

    fn peer(&mut self, p: &str) -> u32 {
        intern(
            &mut self.tables.peers,
            &mut self.tables.peer_index,
            p.to_owned(),
            || p.to_owned(),
        )
    }

    fn state(&mut self, s: &State) -> EncState {
        match s {
            State::Par { left, right } => EncState::Par(*left, *right),
            State::Call(CallState::Executed { result, output }) => {
                let r = self.result(result);
                match output {
                    Output::Scalar => EncState::CallScalar(r),
                    Output::Stream { generation } => EncState::CallStream(r, *generation),
                    Output::Unused => EncState::CallUnused(r),
                }
            }
            State::Call(CallState::Failed(result)) => EncState::CallFailed(self.result(result)),
            State::Call(CallState::Sent { peer, request }) => {
                EncState::CallSent(self.peer(peer), *request)
            }
            State::Ap { generation } => EncState::Ap(*generation),
            State::Fold(records) => EncState::Fold(
                records
                    .iter()
                    .map(|r| {
                        [
                            r.value_pos,
                            r.before.begin,
                            r.before.len,
                            r.after.begin,
                            r.after.len,
                        ]
                    })
                    .collect(),
            ),
            State::Canon(CanonState::Sent { peer }) => EncState::CanonSent(self.peer(peer)),
            State::Canon(CanonState::Executed(c)) => EncState::CanonExecuted(self.canon(c)),
        }
    }
}
