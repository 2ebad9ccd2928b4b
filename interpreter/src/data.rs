//! braid's data format: a small versioned envelope, then the body (the trace, the call
//! request counter, and tables where each distinct value, tetraplet, service result,
//! canon result and peer id is stored once and referenced by index).
//!
//! Both levels are MessagePack. Layout, version 2:
//!
//! ```text
//! envelope = [format: u32, interpreter: str, body]
//! body     = [trace, last_call_id, values, tetraplets, results, canons, peers, signatures]
//! values   = [[content id: 32 bytes, canonical JSON text: str], …]  (each distinct value once)
//! signatures = [[peer, public key: 32 bytes, signature: 64 bytes, [signed result id, …]], …]
//! ```
//!
//! A value is stored as its canonical JSON text (compact, keys sorted: `json.rs`), and
//! its content id is the blake3 hash of that text, stored so that arriving data can be
//! checked value by value. Decoding borrows the texts from the input bytes: a value
//! that passes through an invocation is never parsed or copied, only written out again.
//!
//! Decoding never trusts the bytes: every index is checked, sizes are bounded by the
//! input, and any problem is an `InterpreterError` (codes 2–4), never a panic.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::error::{DataSide, InterpreterError};
use crate::integrity::{Cid, PeerSignature};
use crate::json::Json;
use crate::mixhash::MixMap;
use crate::params::Tetraplet;
use crate::trace::{
    CallState, CanonResult, CanonState, IterationRecord, Output, ServiceResult, State, Subtrace,
};
use crate::value::Val;

/// The data format this interpreter writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 2;
/// This interpreter's version, recorded in the data it writes.
pub(crate) const INTERPRETER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Decoded particle data.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Data<'a> {
    pub(crate) trace: Vec<State<'a>>,
    pub(crate) last_call_id: u32,
    pub(crate) signatures: Vec<PeerSignature>,
}

/// The values of decoded data with the content ids stored for them.
pub(crate) type StoredIds<'a> = Vec<(Rc<Json<'a>>, Cid)>;

/// The body as read; `values` holds the value table, whose texts are borrowed from the
/// input bytes. Writing assembles the same layout by hand (`encode`).
#[derive(Deserialize, Default)]
struct Body<'a> {
    trace: Vec<EncState>,
    last_call_id: u32,
    #[serde(borrow)]
    values: Vec<EncValue<'a>>,
    tetraplets: Vec<EncTetraplet>,
    results: Vec<EncResult>,
    canons: Vec<EncCanon>,
    peers: Vec<String>,
    signatures: Vec<EncSignature>,
}

/// A value's content id and canonical JSON text.
#[derive(Deserialize)]
struct EncValue<'a>(#[serde(with = "fixed_bytes")] [u8; 32], &'a str);

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

#[derive(Deserialize)]
struct EncTetraplet(String, String, String, String);

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Hash)]
struct EncResult {
    value: u32,
    #[serde(with = "fixed_bytes")]
    argument_hash: [u8; 32],
    tetraplet: u32,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq, Hash)]
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
pub(crate) fn decode(
    bytes: &[u8],
    side: DataSide,
) -> Result<(Data<'_>, StoredIds<'_>), InterpreterError> {
    if bytes.is_empty() {
        return Ok((Data::default(), Vec::new()));
    }
    let (format, interpreter, body) =
        read_envelope(bytes).map_err(|detail| InterpreterError::EnvelopeDecode { side, detail })?;
    if format != FORMAT_VERSION {
        return Err(InterpreterError::IncompatibleDataVersion {
            side,
            format,
            interpreter: interpreter.to_owned(),
            expected: FORMAT_VERSION,
            ours: INTERPRETER_VERSION,
        });
    }
    let body: Body<'_> = rmp_serde::from_slice(body).map_err(|e| InterpreterError::DataDecode {
        side,
        detail: e.to_string(),
    })?;
    Decoder::new(body)
        .and_then(Decoder::finish)
        .map_err(|detail| InterpreterError::DataDecode { side, detail })
}

/// The envelope's format and interpreter version, and the body's bytes, read without
/// walking the body (its layout depends on the format).
fn read_envelope(bytes: &[u8]) -> Result<(u32, &str, &[u8]), String> {
    let mut rest = bytes;
    let len = rmp::decode::read_array_len(&mut rest).map_err(|e| e.to_string())?;
    if len != 3 {
        return Err(format!("the envelope is an array of 3, got {len} elements"));
    }
    let format: u32 = rmp::decode::read_int(&mut rest).map_err(|e| format!("format: {e}"))?;
    let (interpreter, body) =
        rmp::decode::read_str_from_slice(rest).map_err(|e| format!("interpreter: {e}"))?;
    Ok((format, interpreter, body))
}

struct Decoder<'a> {
    body: Body<'a>,
    stored_ids: StoredIds<'a>,
    results: Vec<Rc<ServiceResult<'a>>>,
    canons: Vec<Rc<CanonResult<'a>>>,
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

impl<'a> Decoder<'a> {
    fn new(mut body: Body<'a>) -> Result<Self, String> {
        let stored_ids: StoredIds<'a> = std::mem::take(&mut body.values)
            .into_iter()
            .enumerate()
            .map(|(i, EncValue(cid, text))| {
                Json::stored(text)
                    .map(|v| (Rc::new(v), cid))
                    .map_err(|e| format!("value #{i}: {e}"))
            })
            .collect::<Result<_, String>>()?;
        let values: Vec<Rc<Json<'a>>> = stored_ids.iter().map(|(v, _)| v.clone()).collect();
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
                Ok(Rc::new(ServiceResult::new(
                    get(&values, r.value, "value")?,
                    r.argument_hash,
                    get(&tetraplets, r.tetraplet, "tetraplet")?,
                )))
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
                Ok(Rc::new(CanonResult::new(
                    get(&tetraplets, c.tetraplet, "tetraplet")?,
                    elements,
                )))
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

    fn finish(mut self) -> Result<(Data<'a>, StoredIds<'a>), String> {
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

    fn state(&self, s: EncState) -> Result<State<'a>, String> {
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

/// Encodes data. Deterministic: tables are filled in order of first use. The output
/// is allocated once, at its exact size.
pub(crate) fn encode(data: &Data<'_>) -> Vec<u8> {
    let mut enc = Encoder::default();
    let trace: Vec<EncState> = data.trace.iter().map(|s| enc.state(s)).collect();
    let signatures: Vec<EncSignature> = data
        .signatures
        .iter()
        .map(|s| {
            let signed = s.signed.iter().map(|c| EncCid(*c)).collect();
            EncSignature(s.peer.clone(), s.public_key, s.signature, signed)
        })
        .collect();
    // The body's parts after the values, in order (written with rmp-serde; the
    // values are written by hand so that their texts go straight into the output).
    let tail = (
        enc.tables.tetraplet_rows(),
        &enc.tables.results,
        &enc.tables.canons,
        &enc.tables.peers,
        signatures,
    );
    // Serializing plain structs, strings and numbers into a Vec cannot fail.
    let mut head = Vec::new();
    let _ = rmp::encode::write_array_len(&mut head, 3);
    let _ = rmp::encode::write_uint(&mut head, u64::from(FORMAT_VERSION));
    let _ = rmp::encode::write_str(&mut head, INTERPRETER_VERSION);
    // The body: [trace, last_call_id, values, tetraplets, results, canons, peers,
    // signatures].
    let _ = rmp::encode::write_array_len(&mut head, 8);
    rmp_serde::encode::write(&mut head, &trace).expect("the trace serializes");
    let _ = rmp::encode::write_uint(&mut head, u64::from(data.last_call_id));
    let _ = rmp::encode::write_array_len(&mut head, len32(enc.values.len()));
    let mut tail_bytes = Vec::new();
    rmp_serde::encode::write(&mut tail_bytes, &tail).expect("the tables serialize");
    // The tuple is written as an array of 5 (a one-byte header); the body continues
    // with its elements.
    let tail_fields = &tail_bytes[1..];
    // Composite values are rendered twice: once to count, once into the output.
    let texts: Vec<usize> = enc.values.iter().map(|(v, _)| v.text_len()).collect();
    // Per value: a 2-array header, a bin8 header and the id, the text's header and text.
    let values_len: usize = texts
        .iter()
        .map(|&len| 1 + 2 + 32 + str_header_len(len) + len)
        .sum();
    let mut out = Vec::with_capacity(head.len() + values_len + tail_fields.len());
    out.extend_from_slice(&head);
    for ((value, cid), len) in enc.values.iter().zip(texts) {
        let _ = rmp::encode::write_array_len(&mut out, 2);
        let _ = rmp::encode::write_bin(&mut out, cid);
        let _ = rmp::encode::write_str_len(&mut out, len32(len));
        value.write(&mut out);
    }
    out.extend_from_slice(tail_fields);
    out
}

fn len32(len: usize) -> u32 {
    // Data is bounded by the particle size limit, far below 4 GiB.
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The size of a MessagePack str header for a text of `len` bytes.
fn str_header_len(len: usize) -> usize {
    match len {
        0..32 => 1,
        32..256 => 2,
        256..65536 => 3,
        _ => 5,
    }
}

/// Values are deduplicated by content id (equal JSON has equal ids); the other tables
/// by their encoded form. Shared items (`Rc`) are looked up by address first, so each
/// is keyed by content once. Tables borrow what they list from the data being encoded.
#[derive(Default)]
struct Encoder<'e, 'a> {
    values: Vec<(&'e Json<'a>, Cid)>,
    value_index: MixMap<Cid, u32>,
    /// Table index of each shared item met, by address. One map serves every kind:
    /// all the items are alive while the data is encoded, so addresses are distinct.
    by_address: MixMap<usize, u32>,
    tables: Tables<'e>,
}

/// The other tables, deduplicated by their encoded form.
#[derive(Default)]
struct Tables<'e> {
    tetraplets: Vec<&'e Tetraplet>,
    tetraplet_index: HashMap<&'e Tetraplet, u32, Sip>,
    results: Vec<EncResult>,
    result_index: HashMap<EncResult, u32, Sip>,
    canons: Vec<EncCanon>,
    canon_index: HashMap<EncCanon, u32, Sip>,
    peers: Vec<&'e str>,
    peer_index: HashMap<&'e str, u32, Sip>,
}

/// The hasher of the tables' indexes. Their keys hold text other peers wrote (peer ids
/// in tetraplets), so the standard hasher, not the mixing one; with fixed keys, as the
/// core uses no randomness. Only looked up: nothing iterates them into the output.
type Sip = BuildHasherDefault<DefaultHasher>;

impl Tables<'_> {
    /// The tetraplet table as written: `[peer, service, function, lens]` each.
    fn tetraplet_rows(&self) -> Vec<[&str; 4]> {
        self.tetraplets
            .iter()
            .map(|t| [t.peer_pk.as_str(), &t.service_id, &t.function_name, &t.lens])
            .collect()
    }
}

/// The index of `key` in `table`, which gets `item(key)` if it has no such item yet.
fn intern<K: Eq + std::hash::Hash, T, S: std::hash::BuildHasher>(
    table: &mut Vec<T>,
    index: &mut HashMap<K, u32, S>,
    key: K,
    item: impl FnOnce(&K) -> T,
) -> u32 {
    match index.entry(key) {
        std::collections::hash_map::Entry::Occupied(e) => *e.get(),
        std::collections::hash_map::Entry::Vacant(e) => {
            let i = len32(table.len());
            table.push(item(e.key()));
            e.insert(i);
            i
        }
    }
}

impl<'e, 'a> Encoder<'e, 'a> {
    /// The index of a shared item: `add` runs once per item.
    fn shared<T>(&mut self, item: &Rc<T>, add: impl FnOnce(&mut Self) -> u32) -> u32 {
        let address = Rc::as_ptr(item) as usize;
        if let Some(&i) = self.by_address.get(&address) {
            return i;
        }
        let i = add(self);
        self.by_address.insert(address, i);
        i
    }

    fn value(&mut self, value: &'e Rc<Json<'a>>) -> u32 {
        self.shared(value, |enc| {
            let cid = value.cid();
            intern(&mut enc.values, &mut enc.value_index, cid, |&cid| {
                (&**value, cid)
            })
        })
    }

    fn tetraplet(&mut self, t: &'e Rc<Tetraplet>) -> u32 {
        self.shared(t, |enc| {
            let tables = &mut enc.tables;
            intern(
                &mut tables.tetraplets,
                &mut tables.tetraplet_index,
                &**t,
                |&t| t,
            )
        })
    }

    fn result(&mut self, r: &'e Rc<ServiceResult<'a>>) -> u32 {
        self.shared(r, |enc| {
            let key = EncResult {
                value: enc.value(&r.value),
                argument_hash: r.argument_hash,
                tetraplet: enc.tetraplet(&r.tetraplet),
            };
            let tables = &mut enc.tables;
            intern(
                &mut tables.results,
                &mut tables.result_index,
                key,
                Clone::clone,
            )
        })
    }

    fn canon(&mut self, c: &'e Rc<CanonResult<'a>>) -> u32 {
        self.shared(c, |enc| {
            let key = EncCanon {
                tetraplet: enc.tetraplet(&c.tetraplet),
                elements: c
                    .elements
                    .iter()
                    .map(|e| (enc.value(&e.json), enc.tetraplet(&e.tetraplet), e.literal))
                    .collect(),
            };
            let tables = &mut enc.tables;
            intern(
                &mut tables.canons,
                &mut tables.canon_index,
                key,
                Clone::clone,
            )
        })
    }

    fn peer(&mut self, p: &'e str) -> u32 {
        let tables = &mut self.tables;
        intern(&mut tables.peers, &mut tables.peer_index, p, |&p| p)
    }

    fn state(&mut self, s: &'e State<'a>) -> EncState {
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
