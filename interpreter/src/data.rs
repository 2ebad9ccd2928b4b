//! The particle data format of the reference (`air-interpreter-data` 0.17.2), which
//! every Aqua peer in the field reads and writes: the JS client's AquaVM 0.62, Nox's
//! 0.63 and the reference 0.64.1.
//!
//! ```text
//! envelope   = MessagePack map {version: "0.17.2", interpreter_version: str, inner_data: bin}
//! inner_data = rkyv 0.7 archive (32-bit sizes, big-endian, `strict` layout) of
//!              {trace, lcid, cid_info: {values, tetraplets, canon elements,
//!               canon results, service results}, signatures}
//! ```
//!
//! The archive is read and written here by hand, field by field, with the layout the
//! reference's derived types have (offsets in the comments below). Reading borrows every
//! value text from the input (no aligned copy of the archive, unlike the reference);
//! writing puts the archive straight after the envelope's header in one buffer, in the
//! order rkyv writes it (children before parents, fields in order), so that the
//! reference's validator (`check_archived_root`) accepts it. Each content id's text is
//! written once, where it is first referenced, and shared by every later reference,
//! as rkyv shares an `Rc`.
//!
//! The trace refers to records by content id (`ids.rs`); the stores map ids to
//! records, each stored once. Decoding never trusts the bytes: every offset, length,
//! tag, alignment and reference is checked, and any problem is an `InterpreterError`
//! (codes 2–4, 6, 8), never a panic.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::rc::Rc;

use crate::error::{DataSide, InterpreterError};
use crate::ids::{cid_text, parse_cid};
use crate::integrity::{
    self, Cid, IntegrityError, StoredSignature, canon_cid, element_cid, result_cid, tetraplet_cid,
};
use crate::json::Json;
use crate::mixhash::MixMap;
use crate::params::Tetraplet;
use crate::trace::{
    CallState, CanonResult, CanonState, ElementIds, IterationRecord, Output, Provenance,
    ServiceResult, State, Subtrace,
};
use crate::value::Val;

/// The data format version this interpreter reads and writes.
pub(crate) const DATA_VERSION: &str = "0.17.2";
/// The interpreter version written into the data: the reference version whose
/// behaviour braid implements, tagged with braid's own version as semver build
/// metadata. AquaVM refuses current data from interpreters below 0.61.0, and build
/// metadata does not lower a version, so the JS client's AquaVM 0.62.0, Nox's 0.63.0 and
/// the reference 0.64.1 all accept it.
pub(crate) const INTERPRETER_VERSION: &str = concat!("0.64.1+braid.", env!("CARGO_PKG_VERSION"));
/// The oldest interpreter whose data is accepted as current data (as the reference).
const MIN_INTERPRETER_VERSION: (u64, u64, u64) = (0, 61, 0);

/// Decoded particle data.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Data<'a> {
    pub(crate) trace: Vec<State<'a>>,
    pub(crate) last_call_id: u32,
    pub(crate) signatures: Vec<StoredSignature>,
}

/// The values of decoded data with the content ids stored for them.
pub(crate) type StoredIds<'a> = Vec<(Rc<Json<'a>>, Cid)>;

/// Decodes data; empty bytes are empty data. Returns the values with their stored
/// content ids too. With `check`, the ids of the other stores' records are verified
/// against their contents (values are verified by the caller, which can skip those it
/// already knows); without, the stored ids are taken as they are.
pub(crate) fn decode(
    bytes: &[u8],
    side: DataSide,
    check: bool,
) -> Result<(Data<'_>, StoredIds<'_>), InterpreterError> {
    if bytes.is_empty() {
        return Ok((Data::default(), Vec::new()));
    }
    let envelope =
        read_envelope(bytes).map_err(|detail| InterpreterError::EnvelopeDecode { side, detail })?;
    if side == DataSide::Current && !at_least(envelope.interpreter_version, MIN_INTERPRETER_VERSION)
    {
        return Err(InterpreterError::UnsupportedInterpreterVersion {
            version: envelope.interpreter_version.to_owned(),
        });
    }
    let decoded = Reader::new(envelope.inner_data).and_then(|r| r.decode(check));
    match decoded {
        Ok(d) => Ok(d),
        Err(Failure::Integrity(e)) => Err(InterpreterError::Integrity(e)),
        Err(Failure::Format(detail)) if envelope.version != DATA_VERSION => {
            Err(InterpreterError::IncompatibleDataVersion {
                side,
                detail,
                format: envelope.version.to_owned(),
                interpreter: envelope.interpreter_version.to_owned(),
                expected: DATA_VERSION,
                ours: INTERPRETER_VERSION,
            })
        }
        Err(Failure::Format(detail)) => Err(InterpreterError::DataDecode { side, detail }),
    }
}

struct Envelope<'a> {
    version: &'a str,
    interpreter_version: &'a str,
    inner_data: &'a [u8],
}

/// Reads the envelope: a map of the three fields in any order (others are skipped).
fn read_envelope(bytes: &[u8]) -> Result<Envelope<'_>, String> {
    use rmp::decode::{read_bin_len, read_map_len, read_str_from_slice};
    let mut rest = bytes;
    let len = read_map_len(&mut rest).map_err(|e| format!("the envelope is not a map: {e}"))?;
    let (mut version, mut interpreter_version, mut inner_data) = (None, None, None);
    for _ in 0..len {
        let (key, after) = read_str_from_slice(rest).map_err(|e| format!("a key: {e}"))?;
        rest = after;
        match key {
            "version" | "interpreter_version" => {
                let (value, after) =
                    read_str_from_slice(rest).map_err(|e| format!("{key}: {e}"))?;
                rest = after;
                if !is_semver(value) {
                    return Err(format!("{key} {value:?} is not a semantic version"));
                }
                if key == "version" {
                    version = Some(value);
                } else {
                    interpreter_version = Some(value);
                }
            }
            "inner_data" => {
                let n = read_bin_len(&mut rest).map_err(|e| format!("inner_data: {e}"))? as usize;
                if rest.len() < n {
                    return Err("inner_data is cut short".into());
                }
                inner_data = Some(&rest[..n]);
                rest = &rest[n..];
            }
            other => return Err(format!("unknown field {other:?}")),
        }
    }
    if !rest.is_empty() {
        return Err("bytes after the envelope".into());
    }
    match (version, interpreter_version, inner_data) {
        (Some(version), Some(interpreter_version), Some(inner_data)) => Ok(Envelope {
            version,
            interpreter_version,
            inner_data,
        }),
        _ => Err(
            "missing field: the envelope has version, interpreter_version and inner_data".into(),
        ),
    }
}

/// `MAJOR.MINOR.PATCH[-PRE][+BUILD]`, numbers without leading zeros.
fn semver_parts(v: &str) -> Option<((u64, u64, u64), bool)> {
    let (core, _build) = v.split_once('+').unwrap_or((v, ""));
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) if !p.is_empty() => (c, true),
        Some(_) => return None,
        None => (core, false),
    };
    let mut n = core.split('.').map(|p| {
        let ok = !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p == "0" || !p.starts_with('0'));
        if ok { p.parse::<u64>().ok() } else { None }
    });
    let parts = (n.next()??, n.next()??, n.next()??);
    n.next().is_none().then_some((parts, pre))
}

fn is_semver(v: &str) -> bool {
    semver_parts(v).is_some()
}

/// Semantic-version order: a pre-release sorts before its release.
fn at_least(v: &str, min: (u64, u64, u64)) -> bool {
    match semver_parts(v) {
        Some((parts, pre)) => parts > min || (parts == min && !pre),
        None => false,
    }
}

enum Failure {
    Format(String),
    Integrity(IntegrityError),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Self::Format(s)
    }
}

type R<T> = Result<T, Failure>;

// ---------------------------------------------------------------------------------
// Layout (rkyv 0.7 with `size_32`, `strict` and `archive_be`, as aquavm-air builds it:
// integers big-endian, structs repr(C), enums repr(u8) with repr(C) variants).
// Sizes and field offsets:
//   String (inline ≤ 7 bytes, else len u32 + offset i32)  8, align 4
//   Box<str>, Rc<str> (CID), Box<[u8]>: offset i32, len u32     8, align 4
//   Rc<String>: offset i32 to an ArchivedString                  4, align 4
//   Vec<T>: offset i32, len u32                                  8, align 4
//   root: trace Vec @0, lcid @8, values @12, tetraplets @20, canon elements @28,
//         canon results @36, service results @44, signatures @52      60
//   ExecutedState 24: tag @0 (Par 0, Call 1, Fold 2, Ap 3, Canon 4)
//     Par: left @4, right @8
//     Call: tag @4 (SentBy 0, Executed 1, Failed 2)
//       SentBy: tag @8 (PeerId 0: Rc<String> @12; WithCallId 1: @12, call id @16)
//       Executed: tag @8 (Scalar 0: CID @12; Stream 1: CID @12, generation @20;
//                 Unused 2: value CID @12)
//       Failed: CID @8
//     Fold: Vec<lore 12: value_pos @0, Vec<desc 8: begin @0, len @4> @4> @4
//     Ap: Vec<u32> @4
//     Canon: tag @4 (SentBy 0: Rc<String> @8; Executed 1: CID @8)
//   store entries: CID key @0, Rc<record> @8 (12); records:
//     RawValue: Box<str> (8); Tetraplet: 4 Strings (32);
//     canon element: value CID @0, tetraplet CID @8, provenance @16 (tag @16:
//       Literal 0, ServiceResult 1: CID @20, Canon 2: CID @20) (28);
//     canon result: tetraplet CID @0, Vec<CID> @8 (16);
//     service result: value CID @0, argument hash Rc<str> @8, tetraplet CID @16 (24)
//   signature entries: public key Box<[u8]> @0, signature Box<[u8]> @8 (16)
// ---------------------------------------------------------------------------------

const ROOT_SIZE: usize = 60;
const STATE_SIZE: usize = 24;
const ENTRY_SIZE: usize = 12;
const LORE_SIZE: usize = 12;
const DESC_SIZE: usize = 8;
const TETRAPLET_SIZE: usize = 32;
const ELEMENT_SIZE: usize = 28;
const CANON_SIZE: usize = 16;
const RESULT_SIZE: usize = 24;
const SIGNATURE_ENTRY_SIZE: usize = 16;
const STRING_SIZE: usize = 8;
const INLINE_CAPACITY: usize = 7;

/// Checked reads of the archive. Positions are relative to its start, whose
/// alignment the reference guarantees by copying it; here nothing is copied, so
/// reads are unaligned but alignment is checked relative to the start, as the
/// reference does.
struct Archive<'a> {
    b: &'a [u8],
    /// Content ids parsed, by the position of their text: the reference shares the
    /// text of an id among its references, so each is parsed once.
    cids: std::cell::RefCell<MixMap<usize, Cid>>,
}

impl<'a> Archive<'a> {
    fn bytes(&self, pos: usize, len: usize) -> R<&'a [u8]> {
        pos.checked_add(len)
            .and_then(|end| self.b.get(pos..end))
            .ok_or_else(|| Failure::Format(format!("{len} bytes at {pos} are out of bounds")))
    }

    fn u8(&self, pos: usize) -> R<u8> {
        Ok(self.bytes(pos, 1)?[0])
    }

    fn u32(&self, pos: usize) -> R<u32> {
        let b = self.bytes(pos, 4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The target of a relative pointer at `pos`, `size` bytes there, aligned.
    fn target(&self, pos: usize, size: usize, align: usize) -> R<usize> {
        let offset = self.u32(pos)? as i32;
        let target = (pos as i64) + i64::from(offset);
        let ok = target >= 0
            && (target as u64)
                .checked_add(size as u64)
                .is_some_and(|end| end <= self.b.len() as u64);
        if !ok {
            return Err(Failure::Format(format!(
                "a pointer at {pos} is out of bounds"
            )));
        }
        let target = target as usize;
        if target % align != 0 {
            return Err(Failure::Format(format!("a pointer at {pos} is unaligned")));
        }
        Ok(target)
    }

    /// A slice pointer (`Box<str>`, `Rc<str>`, `Box<[u8]>`): its bytes.
    fn slice(&self, pos: usize) -> R<&'a [u8]> {
        let len = self.u32(pos + 4)? as usize;
        let target = self.target(pos, len, 1)?;
        self.bytes(target, len)
    }

    fn str_ptr(&self, pos: usize) -> R<&'a str> {
        utf8(self.slice(pos)?)
    }

    /// An `ArchivedString` at `pos`.
    fn string(&self, pos: usize) -> R<&'a str> {
        let repr = self.bytes(pos, STRING_SIZE)?;
        let last = repr[7];
        if last & 0x80 == 0 {
            let len = last as usize;
            if len > INLINE_CAPACITY {
                return Err(Failure::Format(format!(
                    "an inline string at {pos} is too long"
                )));
            }
            return utf8(&repr[..len]);
        }
        let len = self.u32(pos)? as usize;
        // The offset (little-endian, last) is relative to the representation's start.
        let offset = i32::from_le_bytes([repr[4], repr[5], repr[6], repr[7]]);
        let target = usize::try_from(pos as i64 + i64::from(offset))
            .map_err(|_| Failure::Format(format!("a string at {pos} points before the archive")))?;
        utf8(self.bytes(target, len)?)
    }

    /// A `Vec<T>` at `pos`: the start of its elements and their number.
    fn vec(&self, pos: usize, element_size: usize) -> R<(usize, usize)> {
        let len = self.u32(pos + 4)? as usize;
        let size = len
            .checked_mul(element_size)
            .ok_or_else(|| Failure::Format("a vector is too long".into()))?;
        Ok((self.target(pos, size, 4)?, len))
    }

    fn cid(&self, pos: usize) -> R<Cid> {
        let len = self.u32(pos + 4)? as usize;
        let target = self.target(pos, len, 1)?;
        if let Some(cid) = self.cids.borrow().get(&target) {
            if len == crate::ids::CID_TEXT_LEN {
                return Ok(*cid);
            }
        }
        // A content id is ASCII: no UTF-8 check is needed before parsing it.
        let bytes = self.bytes(target, len)?;
        let cid = crate::ids::parse_cid_bytes(bytes)?;
        self.cids.borrow_mut().insert(target, cid);
        Ok(cid)
    }

    fn tetraplet(&self, pos: usize) -> R<Tetraplet> {
        Ok(Tetraplet {
            peer_pk: self.string(pos)?.to_owned(),
            service_id: self.string(pos + 8)?.to_owned(),
            function_name: self.string(pos + 16)?.to_owned(),
            lens: self.string(pos + 24)?.to_owned(),
        })
    }

    /// An `Rc<String>` at `pos`.
    fn rc_string(&self, pos: usize) -> R<&'a str> {
        let target = self.target(pos, STRING_SIZE, 4)?;
        self.string(target)
    }
}

fn utf8(b: &[u8]) -> R<&str> {
    std::str::from_utf8(b).map_err(|_| Failure::Format("a string is not UTF-8".into()))
}

/// A record as stored, before its references are resolved.
struct StoredResult<'a> {
    value: Cid,
    argument_hash: &'a str,
    tetraplet: Cid,
}

struct StoredElement {
    value: Cid,
    tetraplet: Cid,
    provenance: Provenance,
}

struct Reader<'a> {
    a: Archive<'a>,
    root: usize,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> R<Self> {
        if b.len() < ROOT_SIZE || b.len() % 4 != 0 {
            return Err(Failure::Format(format!(
                "an archive of {} bytes cannot hold the data",
                b.len()
            )));
        }
        Ok(Self {
            a: Archive {
                b,
                cids: Default::default(),
            },
            root: b.len() - ROOT_SIZE,
        })
    }

    fn decode(self, check: bool) -> R<(Data<'a>, StoredIds<'a>)> {
        let a = &self.a;
        let root = self.root;
        // Values.
        let (start, n) = a.vec(root + 12, ENTRY_SIZE)?;
        let mut stored_ids: StoredIds<'a> = Vec::with_capacity(n);
        let mut values: MixMap<Cid, Rc<Json<'a>>> = MixMap::default();
        for i in 0..n {
            let entry = start + i * ENTRY_SIZE;
            let cid = a.cid(entry)?;
            let raw = a.target(entry + 8, 8, 4)?;
            let text = a.str_ptr(raw)?;
            let json = Rc::new(
                Json::stored(text)
                    .map_err(|e| Failure::Format(format!("value {}: {e}", cid_text(&cid))))?,
            );
            values.insert(cid, json.clone());
            stored_ids.push((json, cid));
        }
        // Tetraplets.
        let (start, n) = a.vec(root + 20, ENTRY_SIZE)?;
        let mut tetraplets: MixMap<Cid, Rc<Tetraplet>> = MixMap::default();
        for i in 0..n {
            let entry = start + i * ENTRY_SIZE;
            let cid = a.cid(entry)?;
            let t = a.target(entry + 8, TETRAPLET_SIZE, 4)?;
            let tetraplet = a.tetraplet(t)?;
            if check && tetraplet_cid(&tetraplet) != cid {
                return Err(mismatch("tetraplet", &cid));
            }
            tetraplets.insert(cid, Rc::new(tetraplet));
        }
        let tetraplet = |cid: &Cid, from: &Cid, what: &str| {
            tetraplets
                .get(cid)
                .cloned()
                .ok_or_else(|| missing(cid, from, what, "tetraplet"))
        };
        let value = |cid: &Cid, from: &Cid, what: &str| {
            values
                .get(cid)
                .cloned()
                .ok_or_else(|| missing(cid, from, what, "value"))
        };
        // Service results.
        let (start, n) = a.vec(root + 44, ENTRY_SIZE)?;
        let mut results: MixMap<Cid, Rc<ServiceResult<'a>>> = MixMap::default();
        for i in 0..n {
            let entry = start + i * ENTRY_SIZE;
            let cid = a.cid(entry)?;
            let r = a.target(entry + 8, RESULT_SIZE, 4)?;
            let stored = StoredResult {
                value: a.cid(r)?,
                argument_hash: a.str_ptr(r + 8)?,
                tetraplet: a.cid(r + 16)?,
            };
            let argument_hash = parse_cid(stored.argument_hash)?;
            let result = ServiceResult::new(
                value(&stored.value, &cid, "service result")?,
                argument_hash,
                tetraplet(&stored.tetraplet, &cid, "service result")?,
            );
            if check
                && integrity::result_cid_of(&stored.value, &argument_hash, &stored.tetraplet) != cid
            {
                return Err(mismatch("service result", &cid));
            }
            result.cid.set(Some(cid));
            results.insert(cid, Rc::new(result));
        }
        // Canon elements.
        let (start, n) = a.vec(root + 28, ENTRY_SIZE)?;
        let mut elements: MixMap<Cid, StoredElement> = MixMap::default();
        for i in 0..n {
            let entry = start + i * ENTRY_SIZE;
            let cid = a.cid(entry)?;
            let e = a.target(entry + 8, ELEMENT_SIZE, 4)?;
            let provenance = match a.u8(e + 16)? {
                0 => Provenance::Literal,
                1 => Provenance::ServiceResult(a.cid(e + 20)?),
                2 => Provenance::Canon(a.cid(e + 20)?),
                t => return Err(Failure::Format(format!("provenance tag {t}"))),
            };
            let element = StoredElement {
                value: a.cid(e)?,
                tetraplet: a.cid(e + 8)?,
                provenance,
            };
            if check && element_cid(&element.value, &element.tetraplet, &element.provenance) != cid
            {
                return Err(mismatch("canon element", &cid));
            }
            elements.insert(cid, element);
        }
        // Canon results.
        let (start, n) = a.vec(root + 36, ENTRY_SIZE)?;
        let mut canons: MixMap<Cid, Rc<CanonResult<'a>>> = MixMap::default();
        let mut canon_ids: MixMap<Cid, ()> = MixMap::default();
        if check {
            for i in 0..n {
                canon_ids.insert(a.cid(start + i * ENTRY_SIZE)?, ());
            }
        }
        for i in 0..n {
            let entry = start + i * ENTRY_SIZE;
            let cid = a.cid(entry)?;
            let c = a.target(entry + 8, CANON_SIZE, 4)?;
            let canon_tetraplet_cid = a.cid(c)?;
            let canon_tetraplet = tetraplet(&canon_tetraplet_cid, &cid, "canon result")?;
            let (vstart, vn) = a.vec(c + 8, 8)?;
            let mut vals = Vec::with_capacity(vn);
            let mut provenance = Vec::with_capacity(vn);
            let mut element_ids = Vec::with_capacity(vn);
            let mut stored_ids = Vec::with_capacity(vn);
            for j in 0..vn {
                let ecid = a.cid(vstart + j * 8)?;
                element_ids.push(ecid);
                let element = elements
                    .get(&ecid)
                    .ok_or_else(|| missing(&ecid, &cid, "canon result", "canon element"))?;
                stored_ids.push(ElementIds {
                    value: element.value,
                    tetraplet: element.tetraplet,
                    provenance: element.provenance,
                    element: ecid,
                });
                vals.push(
                    Val::new(
                        value(&element.value, &ecid, "canon element")?,
                        tetraplet(&element.tetraplet, &ecid, "canon element")?,
                    )
                    .with_literal(element.provenance == Provenance::Literal),
                );
                provenance.push(element.provenance);
            }
            if check {
                for p in &provenance {
                    let found = match p {
                        Provenance::Literal => true,
                        Provenance::ServiceResult(c) => results.contains_key(c),
                        // A canon refers to an earlier canon, which the store has.
                        Provenance::Canon(c) => canon_ids.contains_key(c),
                    };
                    if !found {
                        return Err(Failure::Integrity(IntegrityError::MissingReference {
                            cid: cid_text(&cid),
                        }));
                    }
                }
            }
            if check && integrity::canon_cid_of(&canon_tetraplet_cid, &element_ids) != cid {
                return Err(mismatch("canon result", &cid));
            }
            let origins = provenance
                .iter()
                .filter_map(|p| match p {
                    Provenance::ServiceResult(c) => results.get(c).cloned(),
                    _ => None,
                })
                .collect();
            let mut canon = CanonResult::with_provenance(canon_tetraplet, vals, provenance);
            canon.origins = origins;
            canon.cid.set(Some(cid));
            // The elements' ids as stored (checked above with `check`, trusted like the
            // canon's own id without): writing the data again hashes none of them.
            let _ = canon.element_ids.set(stored_ids);
            canons.insert(cid, Rc::new(canon));
        }
        // The trace.
        let (start, n) = a.vec(root, STATE_SIZE)?;
        let mut trace = Vec::with_capacity(n);
        for i in 0..n {
            let p = start + i * STATE_SIZE;
            trace.push(self.state(p, &values, &results, &canons)?);
        }
        // Signatures: kept as stored; read only when checking.
        let (start, n) = a.vec(root + 52, SIGNATURE_ENTRY_SIZE)?;
        let mut signatures = Vec::with_capacity(n);
        for i in 0..n {
            let entry = start + i * SIGNATURE_ENTRY_SIZE;
            signatures.push(StoredSignature {
                public_key: a.slice(entry)?.to_vec(),
                signature: a.slice(entry + 8)?.to_vec(),
            });
        }
        let data = Data {
            trace,
            last_call_id: a.u32(root + 8)?,
            signatures,
        };
        Ok((data, stored_ids))
    }

    fn state(
        &self,
        p: usize,
        values: &MixMap<Cid, Rc<Json<'a>>>,
        results: &MixMap<Cid, Rc<ServiceResult<'a>>>,
        canons: &MixMap<Cid, Rc<CanonResult<'a>>>,
    ) -> R<State<'a>> {
        let a = &self.a;
        let result = |pos: usize| -> R<Rc<ServiceResult<'a>>> {
            let cid = a.cid(pos)?;
            results
                .get(&cid)
                .cloned()
                .ok_or_else(|| missing_in_trace(&cid, "service result"))
        };
        Ok(match a.u8(p)? {
            0 => State::Par {
                left: a.u32(p + 4)?,
                right: a.u32(p + 8)?,
            },
            1 => State::Call(match a.u8(p + 4)? {
                0 => match a.u8(p + 8)? {
                    0 => CallState::Sent {
                        peer: Rc::from(a.rc_string(p + 12)?),
                        request: None,
                    },
                    1 => CallState::Sent {
                        peer: Rc::from(a.rc_string(p + 12)?),
                        request: Some(a.u32(p + 16)?),
                    },
                    t => return Err(Failure::Format(format!("sender tag {t}"))),
                },
                1 => match a.u8(p + 8)? {
                    0 => CallState::Executed {
                        result: result(p + 12)?,
                        output: Output::Scalar,
                    },
                    1 => CallState::Executed {
                        result: result(p + 12)?,
                        output: Output::Stream {
                            generation: a.u32(p + 20)?,
                        },
                    },
                    2 => {
                        // Only the value's id is recorded; the value may be unknown.
                        let cid = a.cid(p + 12)?;
                        let value = values.get(&cid).cloned().unwrap_or_else(|| {
                            let unknown = Json::from(serde_json::Value::Null);
                            unknown.know_cid(cid);
                            Rc::new(unknown)
                        });
                        CallState::Executed {
                            result: Rc::new(ServiceResult::new(
                                value,
                                [0; 32],
                                Rc::new(Tetraplet::default()),
                            )),
                            output: Output::Unused,
                        }
                    }
                    t => return Err(Failure::Format(format!("value tag {t}"))),
                },
                2 => CallState::Failed(result(p + 8)?),
                t => return Err(Failure::Format(format!("call result tag {t}"))),
            }),
            2 => {
                let (start, n) = a.vec(p + 4, LORE_SIZE)?;
                let mut records = Vec::with_capacity(n);
                for i in 0..n {
                    let lore = start + i * LORE_SIZE;
                    let (d, dn) = a.vec(lore + 4, DESC_SIZE)?;
                    if dn != 2 {
                        return Err(Failure::Format(format!(
                            "a fold iteration has {dn} subtraces, not 2"
                        )));
                    }
                    records.push(IterationRecord {
                        value_pos: a.u32(lore)?,
                        before: Subtrace {
                            begin: a.u32(d)?,
                            len: a.u32(d + 4)?,
                        },
                        after: Subtrace {
                            begin: a.u32(d + 8)?,
                            len: a.u32(d + 12)?,
                        },
                    });
                }
                State::Fold(records)
            }
            3 => {
                let (g, gn) = a.vec(p + 4, 4)?;
                if gn != 1 {
                    return Err(Failure::Format(format!(
                        "an ap records {gn} generations, not 1"
                    )));
                }
                State::Ap {
                    generation: a.u32(g)?,
                }
            }
            4 => State::Canon(match a.u8(p + 4)? {
                0 => CanonState::Sent {
                    peer: Rc::from(a.rc_string(p + 8)?),
                },
                1 => {
                    let cid = a.cid(p + 8)?;
                    CanonState::Executed(
                        canons
                            .get(&cid)
                            .cloned()
                            .ok_or_else(|| missing_in_trace(&cid, "canon result"))?,
                    )
                }
                t => return Err(Failure::Format(format!("canon tag {t}"))),
            }),
            t => return Err(Failure::Format(format!("state tag {t}"))),
        })
    }
}

fn mismatch(store: &'static str, cid: &Cid) -> Failure {
    Failure::Integrity(IntegrityError::StoreMismatch {
        store,
        cid: cid_text(cid),
    })
}

fn missing(cid: &Cid, from: &Cid, source: &str, target: &str) -> Failure {
    Failure::Format(format!(
        "reference {} from {source} {} to {target} was not found",
        cid_text(cid),
        cid_text(from)
    ))
}

fn missing_in_trace(cid: &Cid, target: &str) -> Failure {
    Failure::Format(format!(
        "the trace refers to {target} {} which the data does not hold",
        cid_text(cid)
    ))
}

// ---------------------------------------------------------------------------------
// Writing.
// ---------------------------------------------------------------------------------

/// The archive under construction, after the envelope's header. Positions are
/// relative to the archive's start.
struct Out {
    buf: Vec<u8>,
    base: usize,
    /// Where each content id's text was written: every later reference points there
    /// (a shared `Rc<str>`, as rkyv writes one; the validator checks the first
    /// reference in its order, which is the one written first, and only bounds for the
    /// others).
    cids: MixMap<Cid, usize>,
}

/// Where an `ArchivedString`'s text went.
#[derive(Clone, Copy)]
enum StrAt {
    Inline,
    At(usize),
}

impl Out {
    fn pos(&self) -> usize {
        self.buf.len() - self.base
    }

    fn align(&mut self) {
        while self.pos() % 4 != 0 {
            self.buf.push(0);
        }
    }

    fn bytes(&mut self, b: &[u8]) -> usize {
        let p = self.pos();
        self.buf.extend_from_slice(b);
        p
    }

    fn string_text(&mut self, s: &str) -> StrAt {
        if s.len() <= INLINE_CAPACITY {
            StrAt::Inline
        } else {
            StrAt::At(self.bytes(s.as_bytes()))
        }
    }

    fn cid_text(&mut self, cid: &Cid) -> usize {
        if let Some(&at) = self.cids.get(cid) {
            return at;
        }
        let at = self.bytes(crate::ids::cid_text_bytes(cid).as_str().as_bytes());
        self.cids.insert(*cid, at);
        at
    }

    /// Appends a struct of `N` bytes built by `fill(at, bytes)` at the next aligned
    /// position; returns that position.
    fn emit<const N: usize>(&mut self, fill: impl FnOnce(usize, &mut [u8; N])) -> usize {
        self.align();
        let at = self.pos();
        let mut bytes = [0u8; N];
        fill(at, &mut bytes);
        self.buf.extend_from_slice(&bytes);
        at
    }
}

fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// A relative pointer at `at + off` to `target`.
fn put_rel(b: &mut [u8], at: usize, off: usize, target: usize) {
    let offset = target as i64 - (at + off) as i64;
    // Data is bounded by the particle size limit, far below 2 GiB.
    put_u32(b, off, offset as i32 as u32);
}

/// A slice pointer (offset, length).
fn put_slice(b: &mut [u8], at: usize, off: usize, target: usize, len: usize) {
    put_rel(b, at, off, target);
    put_u32(b, off + 4, len32(len));
}

fn put_string(b: &mut [u8], at: usize, off: usize, s: &str, where_: StrAt) {
    match where_ {
        StrAt::Inline => {
            b[off..off + s.len()].copy_from_slice(s.as_bytes());
            b[off + 7] = s.len() as u8;
        }
        StrAt::At(target) => {
            put_u32(b, off, len32(s.len()));
            // Relative to the representation's start, always little-endian (its sign
            // bit, last, marks the out-of-line form).
            let offset = target as i64 - (at + off) as i64;
            b[off + 4..off + 8].copy_from_slice(&(offset as i32).to_le_bytes());
        }
    }
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Encodes data. Deterministic: stores list records in order of first use.
pub(crate) fn encode(data: &Data<'_>) -> Vec<u8> {
    let stores = Stores::collect(&data.trace);
    // The envelope's header, then the archive, whose length is patched in at the end.
    let mut head = Vec::with_capacity(96);
    let _ = rmp::encode::write_map_len(&mut head, 3);
    let _ = rmp::encode::write_str(&mut head, "version");
    let _ = rmp::encode::write_str(&mut head, DATA_VERSION);
    let _ = rmp::encode::write_str(&mut head, "interpreter_version");
    let _ = rmp::encode::write_str(&mut head, INTERPRETER_VERSION);
    let _ = rmp::encode::write_str(&mut head, "inner_data");
    head.push(0xc6); // bin 32
    let len_at = head.len();
    head.extend_from_slice(&[0; 4]);
    let texts: usize = stores.values.iter().map(|(v, _)| v.text_len_hint()).sum();
    let estimate = head.len() + texts + 160 * data.trace.len() + 256 * stores.len() + 1024;
    let mut buf = Vec::with_capacity(estimate);
    buf.extend_from_slice(&head);
    let mut out = Out {
        base: buf.len(),
        buf,
        cids: MixMap::default(),
    };
    let trace = write_trace(&mut out, &data.trace);
    let values = write_values(&mut out, &stores);
    let tetraplets = write_tetraplets(&mut out, &stores);
    let elements = write_elements(&mut out, &stores);
    let canons = write_canons(&mut out, &stores);
    let results = write_results(&mut out, &stores);
    let signatures = write_signatures(&mut out, &data.signatures);
    let last_call_id = data.last_call_id;
    out.emit::<ROOT_SIZE>(|at, b| {
        for (off, (target, len)) in [
            (0, trace),
            (12, values),
            (20, tetraplets),
            (28, elements),
            (36, canons),
            (44, results),
            (52, signatures),
        ] {
            put_slice(b, at, off, target, len);
        }
        put_u32(b, 8, last_call_id);
    });
    let inner_len = len32(out.pos());
    let mut buf = out.buf;
    buf[len_at..len_at + 4].copy_from_slice(&inner_len.to_be_bytes());
    buf
}

/// The records the trace refers to, each once, in order of first use, with their ids.
#[derive(Default)]
struct Stores<'e, 'a> {
    values: Vec<(&'e Json<'a>, Cid)>,
    tetraplets: Vec<(&'e Tetraplet, Cid)>,
    /// Call result records: value, argument hash, tetraplet and own ids.
    results: Vec<[Cid; 4]>,
    elements: Vec<(Cid, Cid, Provenance, Cid)>,
    canons: Vec<(&'e CanonResult<'a>, Cid, Vec<Cid>)>,
    seen: MixMap<Cid, ()>,
    by_address: MixMap<usize, Cid>,
    tetraplet_by_text: HashMap<&'e Tetraplet, Cid, Sip>,
}

/// Tetraplets hold text other peers wrote: SipHash with fixed keys, only looked up.
type Sip = BuildHasherDefault<DefaultHasher>;

impl<'e, 'a> Stores<'e, 'a> {
    fn collect(trace: &'e [State<'a>]) -> Self {
        let mut s = Self::default();
        for state in trace {
            match state {
                State::Call(CallState::Executed { result, output })
                    if *output != Output::Unused =>
                {
                    s.result(result);
                }
                State::Call(CallState::Failed(result)) => {
                    s.result(result);
                }
                State::Canon(CanonState::Executed(canon)) => {
                    s.canon(canon);
                }
                _ => {}
            }
        }
        s
    }

    fn len(&self) -> usize {
        self.values.len()
            + self.tetraplets.len()
            + self.results.len()
            + self.elements.len()
            + self.canons.len()
    }

    /// True the first time `cid` of a kind (`tag` keeps kinds apart) is met.
    fn first(&mut self, tag: u8, cid: &Cid) -> bool {
        let mut key = *cid;
        key[0] ^= tag;
        self.seen.insert(key, ()).is_none()
    }

    fn value(&mut self, value: &'e Rc<Json<'a>>) -> Cid {
        let cid = value.cid();
        if self.first(1, &cid) {
            self.values.push((&**value, cid));
        }
        cid
    }

    fn tetraplet(&mut self, t: &'e Rc<Tetraplet>) -> Cid {
        let address = Rc::as_ptr(t) as usize;
        if let Some(cid) = self.by_address.get(&address) {
            return *cid;
        }
        let cid = match self.tetraplet_by_text.get(&**t) {
            Some(cid) => *cid,
            None => {
                let cid = tetraplet_cid(t);
                self.tetraplet_by_text.insert(&**t, cid);
                if self.first(5, &cid) {
                    self.tetraplets.push((&**t, cid));
                }
                cid
            }
        };
        self.by_address.insert(address, cid);
        cid
    }

    /// [`Self::tetraplet`] of one whose id is known (a canon element's).
    fn known_tetraplet(&mut self, t: &'e Rc<Tetraplet>, cid: Cid) {
        let address = Rc::as_ptr(t) as usize;
        if self.by_address.contains_key(&address) {
            return;
        }
        if self.first(5, &cid) {
            self.tetraplets.push((&**t, cid));
        }
        self.by_address.insert(address, cid);
    }

    fn result(&mut self, r: &'e Rc<ServiceResult<'a>>) -> Cid {
        let address = Rc::as_ptr(r) as usize;
        if let Some(cid) = self.by_address.get(&address) {
            return *cid;
        }
        let value = self.value(&r.value);
        let tetraplet = self.tetraplet(&r.tetraplet);
        let cid = r.cid.get().unwrap_or_else(|| {
            let cid = integrity::result_cid_of(&value, &r.argument_hash, &tetraplet);
            r.cid.set(Some(cid));
            cid
        });
        if self.first(2, &cid) {
            self.results.push([value, r.argument_hash, tetraplet, cid]);
        }
        self.by_address.insert(address, cid);
        cid
    }

    fn canon(&mut self, c: &'e Rc<CanonResult<'a>>) -> Cid {
        let address = Rc::as_ptr(c) as usize;
        if let Some(cid) = self.by_address.get(&address) {
            return *cid;
        }
        let tetraplet = self.tetraplet(&c.tetraplet);
        let ids = integrity::element_ids(c);
        let mut element_ids = Vec::with_capacity(ids.len());
        let mut origins = c.origins.iter();
        for (e, id) in c.elements.iter().zip(ids) {
            // Adds the value and tetraplet (their ids are known).
            self.value(&e.json);
            self.known_tetraplet(&e.tetraplet, id.tetraplet);
            if let Provenance::ServiceResult(record) = id.provenance {
                if c.stored_provenance(element_ids.len()).is_some() {
                    // The record stored provenance refers to, where the element that
                    // first referred to it put it (data read and written again keeps
                    // its order).
                    for origin in origins.by_ref() {
                        if origin.cid.get() == Some(record) {
                            self.result(origin);
                            break;
                        }
                    }
                } else if self.first(2, &record) {
                    // The record of an element of unknown origin (`Provenance`).
                    let arguments = integrity::empty_arguments_cid();
                    self.results
                        .push([id.value, arguments, id.tetraplet, record]);
                }
            }
            if self.first(3, &id.element) {
                self.elements
                    .push((id.value, id.tetraplet, id.provenance, id.element));
            }
            element_ids.push(id.element);
        }
        let cid = c.cid.get().unwrap_or_else(|| {
            let cid = integrity::canon_cid_of(&tetraplet, &element_ids);
            c.cid.set(Some(cid));
            cid
        });
        if self.first(4, &cid) {
            self.canons.push((&**c, tetraplet, element_ids));
        }
        self.by_address.insert(address, cid);
        cid
    }
}

/// Writes each record's out-of-line parts, then the array of entries. Returns the
/// array's position and length.
fn write_store<T>(
    out: &mut Out,
    items: &[T],
    mut record: impl FnMut(&mut Out, &T) -> (usize, usize),
) -> (usize, usize) {
    let mut entries = Vec::with_capacity(items.len());
    for item in items {
        // The key's text first, then the record's parts and the record itself (the
        // closure writes them and says where the key's text and the record are).
        entries.push(record(out, item));
    }
    out.align();
    let start = out.pos();
    for (key_at, record_at) in entries {
        out.emit::<ENTRY_SIZE>(|at, b| {
            put_slice(b, at, 0, key_at, crate::ids::CID_TEXT_LEN);
            put_rel(b, at, 8, record_at);
        });
    }
    (start, items.len())
}

fn write_values(out: &mut Out, s: &Stores<'_, '_>) -> (usize, usize) {
    write_store(out, &s.values, |out, (value, cid)| {
        let key = out.cid_text(cid);
        let text_at = out.pos();
        let before = out.buf.len();
        value.write(&mut out.buf);
        let len = out.buf.len() - before;
        let at = out.emit::<8>(|at, b| put_slice(b, at, 0, text_at, len));
        (key, at)
    })
}

fn write_tetraplets(out: &mut Out, s: &Stores<'_, '_>) -> (usize, usize) {
    write_store(out, &s.tetraplets, |out, (t, cid)| {
        let key = out.cid_text(cid);
        let parts = [&t.peer_pk, &t.service_id, &t.function_name, &t.lens];
        let places = parts.map(|p| out.string_text(p));
        let at = out.emit::<TETRAPLET_SIZE>(|at, b| {
            for (i, (p, w)) in parts.iter().zip(places).enumerate() {
                put_string(b, at, i * 8, p, w);
            }
        });
        (key, at)
    })
}

fn write_elements(out: &mut Out, s: &Stores<'_, '_>) -> (usize, usize) {
    write_store(
        out,
        &s.elements,
        |out, (value, tetraplet, provenance, cid)| {
            let key = out.cid_text(cid);
            let v = out.cid_text(value);
            let t = out.cid_text(tetraplet);
            let (tag, p) = match provenance {
                Provenance::Literal => (0, None),
                Provenance::ServiceResult(c) => (1, Some(out.cid_text(c))),
                Provenance::Canon(c) => (2, Some(out.cid_text(c))),
            };
            let at = out.emit::<ELEMENT_SIZE>(|at, b| {
                put_slice(b, at, 0, v, crate::ids::CID_TEXT_LEN);
                put_slice(b, at, 8, t, crate::ids::CID_TEXT_LEN);
                b[16] = tag;
                if let Some(p) = p {
                    put_slice(b, at, 20, p, crate::ids::CID_TEXT_LEN);
                }
            });
            (key, at)
        },
    )
}

fn write_canons(out: &mut Out, s: &Stores<'_, '_>) -> (usize, usize) {
    write_store(out, &s.canons, |out, (canon, tetraplet, element_ids)| {
        let cid = canon.cid.get().unwrap_or_default();
        let key = out.cid_text(&cid);
        let t = out.cid_text(tetraplet);
        let texts: Vec<usize> = element_ids.iter().map(|e| out.cid_text(e)).collect();
        out.align();
        let values_at = out.pos();
        for text in texts {
            out.emit::<8>(|at, b| put_slice(b, at, 0, text, crate::ids::CID_TEXT_LEN));
        }
        let n = element_ids.len();
        let at = out.emit::<CANON_SIZE>(|at, b| {
            put_slice(b, at, 0, t, crate::ids::CID_TEXT_LEN);
            put_slice(b, at, 8, values_at, n);
        });
        (key, at)
    })
}

fn write_results(out: &mut Out, s: &Stores<'_, '_>) -> (usize, usize) {
    write_store(
        out,
        &s.results,
        |out, [value, arguments, tetraplet, cid]| {
            let key = out.cid_text(cid);
            let v = out.cid_text(value);
            let h = out.cid_text(arguments);
            let t = out.cid_text(tetraplet);
            let at = out.emit::<RESULT_SIZE>(|at, b| {
                put_slice(b, at, 0, v, crate::ids::CID_TEXT_LEN);
                put_slice(b, at, 8, h, crate::ids::CID_TEXT_LEN);
                put_slice(b, at, 16, t, crate::ids::CID_TEXT_LEN);
            });
            (key, at)
        },
    )
}

fn write_signatures(out: &mut Out, signatures: &[StoredSignature]) -> (usize, usize) {
    let places: Vec<(usize, usize)> = signatures
        .iter()
        .map(|s| (out.bytes(&s.public_key), out.bytes(&s.signature)))
        .collect();
    out.align();
    let start = out.pos();
    for (s, (k, g)) in signatures.iter().zip(places) {
        out.emit::<SIGNATURE_ENTRY_SIZE>(|at, b| {
            put_slice(b, at, 0, k, s.public_key.len());
            put_slice(b, at, 8, g, s.signature.len());
        });
    }
    (start, signatures.len())
}

/// Writes the trace: every state's out-of-line parts in order, then the states.
fn write_trace(out: &mut Out, trace: &[State<'_>]) -> (usize, usize) {
    /// What a state's fixed part points to.
    enum Parts {
        None,
        /// An `Rc<String>`'s `ArchivedString` position.
        Peer(usize),
        Cid(usize),
        Vec(usize, usize),
    }
    let mut parts = Vec::with_capacity(trace.len());
    for state in trace {
        let p = match state {
            State::Par { .. } => Parts::None,
            State::Call(CallState::Sent { peer, .. }) | State::Canon(CanonState::Sent { peer }) => {
                let text = out.string_text(peer);
                let peer: &str = peer;
                Parts::Peer(out.emit::<STRING_SIZE>(|at, b| put_string(b, at, 0, peer, text)))
            }
            State::Call(CallState::Executed { result, output }) => {
                let cid = if *output == Output::Unused {
                    result.value.cid()
                } else {
                    result.cid.get().unwrap_or_else(|| result_cid(result))
                };
                Parts::Cid(out.cid_text(&cid))
            }
            State::Call(CallState::Failed(result)) => {
                let cid = result.cid.get().unwrap_or_else(|| result_cid(result));
                Parts::Cid(out.cid_text(&cid))
            }
            State::Canon(CanonState::Executed(canon)) => {
                let cid = canon.cid.get().unwrap_or_else(|| canon_cid(canon));
                Parts::Cid(out.cid_text(&cid))
            }
            State::Ap { generation } => {
                let at = out.emit::<4>(|_, b| put_u32(b, 0, *generation));
                Parts::Vec(at, 1)
            }
            State::Fold(records) => {
                let descs: Vec<usize> = records
                    .iter()
                    .map(|r| {
                        out.emit::<16>(|_, b| {
                            put_u32(b, 0, r.before.begin);
                            put_u32(b, 4, r.before.len);
                            put_u32(b, 8, r.after.begin);
                            put_u32(b, 12, r.after.len);
                        })
                    })
                    .collect();
                out.align();
                let start = out.pos();
                for (r, d) in records.iter().zip(descs) {
                    out.emit::<LORE_SIZE>(|at, b| {
                        put_u32(b, 0, r.value_pos);
                        put_slice(b, at, 4, d, 2);
                    });
                }
                Parts::Vec(start, records.len())
            }
        };
        parts.push(p);
    }
    out.align();
    let start = out.pos();
    for (state, p) in trace.iter().zip(parts) {
        out.emit::<STATE_SIZE>(|at, b| match (state, p) {
            (State::Par { left, right }, _) => {
                b[0] = 0;
                put_u32(b, 4, *left);
                put_u32(b, 8, *right);
            }
            (State::Call(CallState::Sent { request, .. }), Parts::Peer(s)) => {
                b[0] = 1;
                b[4] = 0;
                put_rel(b, at, 12, s);
                if let Some(id) = request {
                    b[8] = 1;
                    put_u32(b, 16, *id);
                }
            }
            (State::Call(CallState::Executed { output, .. }), Parts::Cid(c)) => {
                b[0] = 1;
                b[4] = 1;
                put_slice(b, at, 12, c, crate::ids::CID_TEXT_LEN);
                match output {
                    Output::Scalar => b[8] = 0,
                    Output::Stream { generation } => {
                        b[8] = 1;
                        put_u32(b, 20, *generation);
                    }
                    Output::Unused => b[8] = 2,
                }
            }
            (State::Call(CallState::Failed(_)), Parts::Cid(c)) => {
                b[0] = 1;
                b[4] = 2;
                put_slice(b, at, 8, c, crate::ids::CID_TEXT_LEN);
            }
            (State::Fold(_), Parts::Vec(v, n)) => {
                b[0] = 2;
                put_slice(b, at, 4, v, n);
            }
            (State::Ap { .. }, Parts::Vec(v, n)) => {
                b[0] = 3;
                put_slice(b, at, 4, v, n);
            }
            (State::Canon(CanonState::Sent { .. }), Parts::Peer(s)) => {
                b[0] = 4;
                b[4] = 0;
                put_rel(b, at, 8, s);
            }
            (State::Canon(CanonState::Executed(_)), Parts::Cid(c)) => {
                b[0] = 4;
                b[4] = 1;
                put_slice(b, at, 8, c, crate::ids::CID_TEXT_LEN);
            }
            // Each state's parts were made for it just above.
            _ => {}
        });
    }
    (start, trace.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_semver() {
        let min = MIN_INTERPRETER_VERSION;
        assert!(at_least("0.61.0", min));
        assert!(at_least("0.64.1", min));
        assert!(at_least(INTERPRETER_VERSION, min));
        assert!(at_least("1.0.1-feat-x", min));
        assert!(!at_least("0.61.0-rc1", min));
        assert!(!at_least("0.31.1-feat-x", min));
        assert!(!at_least("0.60.9", min));
        assert!(!at_least("x", min));
    }
}
