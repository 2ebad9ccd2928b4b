//! Tamper-evident data: content ids of what peers produced, and their signatures.
//!
//! Every call result (executed, unused or failed) and every canon result in a trace is
//! attributed to the peer in its tetraplet. At the end of an invocation the current
//! peer signs, with its Ed25519 key, the sorted multiset of the content ids of the
//! results attributed to it, bound to the particle id. When checking is on, the data
//! that arrives is verified before anything runs: every peer with results in it must
//! have signed exactly those results, for this particle, with a key bound to its peer
//! id. A peer on the way can therefore neither alter nor forge another peer's results,
//! nor drop a signature, nor replay data from another particle.
//!
//! Content ids are blake3 hashes of canonical bytes (values as compact JSON with sorted
//! keys); a value's id is stored with it in the data and rechecked on arrival.

use std::collections::BTreeMap;

use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use ed25519_dalek::{Sha512, Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::params::Tetraplet;
use crate::trace::{CallState, CanonResult, CanonState, ServiceResult, State};

pub(crate) use crate::json::Cid;

// What is hashed is gathered into one buffer first: blake3 spreads one long input over
// its SIMD lanes, while many small updates go one 64-byte block at a time.

fn put_str(bytes: &mut Vec<u8>, s: &str) {
    bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
    bytes.extend_from_slice(s.as_bytes());
}

fn put_tetraplet(bytes: &mut Vec<u8>, t: &Tetraplet) {
    for part in [&t.peer_pk, &t.service_id, &t.function_name, &t.lens] {
        put_str(bytes, part);
    }
}

/// The id of a call's record: what it returned, for which arguments, from where.
/// Computed once per result and tag (data is checked, then carried and signed).
fn result_cid(tag: &'static str, result: &ServiceResult<'_>) -> Cid {
    if let Some((known, cid)) = result.cid.get() {
        if known == tag {
            return cid;
        }
    }
    let cid = compute_result_cid(tag, result);
    result.cid.set(Some((tag, cid)));
    cid
}

fn compute_result_cid(tag: &str, result: &ServiceResult<'_>) -> Cid {
    let mut bytes = Vec::with_capacity(256);
    put_str(&mut bytes, tag);
    bytes.extend_from_slice(&result.value.cid());
    bytes.extend_from_slice(&result.argument_hash);
    put_tetraplet(&mut bytes, &result.tetraplet);
    *blake3::hash(&bytes).as_bytes()
}

/// The id of a canonicalization: its peer and every element with its origin.
fn canon_cid(canon: &CanonResult<'_>) -> Cid {
    if let Some(cid) = canon.cid.get() {
        return cid;
    }
    let cid = compute_canon_cid(canon);
    canon.cid.set(Some(cid));
    cid
}

fn compute_canon_cid(canon: &CanonResult<'_>) -> Cid {
    // Per element: an id, a tetraplet (four lengths and the parts), a flag.
    let mut bytes = Vec::with_capacity(64 + canon.elements.len() * 160);
    put_str(&mut bytes, "canon");
    put_tetraplet(&mut bytes, &canon.tetraplet);
    bytes.extend_from_slice(&(canon.elements.len() as u64).to_le_bytes());
    for e in &canon.elements {
        bytes.extend_from_slice(&e.json.cid());
        put_tetraplet(&mut bytes, &e.tetraplet);
        bytes.extend_from_slice(&[u8::from(e.literal)]);
    }
    *blake3::hash(&bytes).as_bytes()
}

/// What each peer produced in a trace: its sorted multiset of record ids.
pub(crate) fn attributed(trace: &[State<'_>]) -> BTreeMap<String, Vec<Cid>> {
    let mut by_peer: BTreeMap<String, Vec<Cid>> = BTreeMap::new();
    for state in trace {
        let (peer, cid) = match state {
            State::Call(CallState::Executed { result, output }) => (
                &result.tetraplet.peer_pk,
                result_cid(output.describe(), result),
            ),
            State::Call(CallState::Failed(result)) => {
                (&result.tetraplet.peer_pk, result_cid("failed", result))
            }
            State::Canon(CanonState::Executed(canon)) => {
                (&canon.tetraplet.peer_pk, canon_cid(canon))
            }
            _ => continue,
        };
        by_peer.entry(peer.clone()).or_default().push(cid);
    }
    for cids in by_peer.values_mut() {
        cids.sort_unstable();
    }
    by_peer
}

/// The message a peer signs: its results in this particle.
fn message(particle_id: &str, peer: &str, cids: &[Cid]) -> Cid {
    let mut bytes = Vec::new();
    put_str(&mut bytes, "braid data signature v1");
    put_str(&mut bytes, particle_id);
    put_str(&mut bytes, peer);
    bytes.extend_from_slice(&(cids.len() as u64).to_le_bytes());
    for cid in cids {
        bytes.extend_from_slice(cid);
    }
    *blake3::hash(&bytes).as_bytes()
}

/// One peer's signature over its results, with the key to check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerSignature {
    pub(crate) peer: String,
    pub(crate) public_key: [u8; 32],
    pub(crate) signature: [u8; 64],
    /// The sorted multiset of result ids the signature covers. Replay may drop states
    /// (unreached branches, iterations no longer visited), so data can hold fewer of a
    /// peer's results than it signed, never one it did not sign.
    pub(crate) signed: Vec<Cid>,
}

/// The text form of the peer id of a public key: `braid-` and its lowercase hex.
pub fn peer_id_of(public_key: &[u8; 32]) -> String {
    let mut id = String::with_capacity(6 + 64);
    id.push_str("braid-");
    for b in public_key {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// The public key of a 32-byte Ed25519 secret key.
pub fn public_key_of(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

/// The current peer's key as the host gave it (`KeyPair` formats 0 and 1).
#[derive(Clone, Copy)]
pub(crate) enum OwnKey {
    /// The secret alone: its public key is derived when signing (a base-point
    /// multiplication, about half the cost of a signature).
    Secret([u8; 32]),
    /// The secret and its public key, derived once by the host.
    Pair { secret: [u8; 32], public: [u8; 32] },
}

/// Signs the current peer's results. Fails only when a format 1 key's public half is
/// not an Ed25519 public key.
pub(crate) fn sign(
    key: &OwnKey,
    particle_id: &str,
    peer: &str,
    cids: &[Cid],
) -> Result<PeerSignature, String> {
    let message = message(particle_id, peer, cids);
    let (public_key, signature) = match key {
        OwnKey::Secret(secret) => {
            let key = SigningKey::from_bytes(secret);
            (key.verifying_key(), key.sign(&message))
        }
        OwnKey::Pair { secret, public } => {
            let public = VerifyingKey::from_bytes(public)
                .map_err(|_| "the last 32 bytes of a format 1 key are not an Ed25519 public key")?;
            // The same signature as `SigningKey::sign`, without deriving the public key.
            let expanded = ExpandedSecretKey::from(secret);
            (public, raw_sign::<Sha512>(&expanded, &message, &public))
        }
    };
    Ok(PeerSignature {
        peer: peer.to_owned(),
        public_key: public_key.to_bytes(),
        signature: signature.to_bytes(),
        signed: cids.to_vec(),
    })
}

/// Why arriving data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// A stored value does not hash to its id.
    #[error("value #{index} does not match its content id: its bytes were altered")]
    ValueMismatch {
        /// Its position in the data's value table.
        index: usize,
    },
    /// Results attributed to a peer carry no signature of that peer.
    #[error("peer \"{peer}\" has {count} results in the data but no signature")]
    MissingSignature {
        /// The peer.
        peer: String,
        /// How many results are attributed to it.
        count: usize,
    },
    /// The signing key is not the peer's.
    #[error("the key that signed for peer \"{peer}\" is not bound to that peer id")]
    UnboundKey {
        /// The peer.
        peer: String,
    },
    /// The signature does not cover these results for this particle.
    #[error(
        "signature mismatch for \"{peer}\": its results were altered, or the data comes from another particle"
    )]
    BadSignature {
        /// The peer.
        peer: String,
    },
    /// The data holds a result of a peer that its signature does not cover.
    #[error(
        "peer \"{peer}\" has results in the data that it did not sign: they were added or altered"
    )]
    UnsignedResult {
        /// The peer.
        peer: String,
    },
    /// Two signatures claim to be the same peer's.
    #[error("two signatures for peer \"{peer}\"")]
    DuplicateSignature {
        /// The peer.
        peer: String,
    },
}

/// Verifies arriving data: every peer with results signed exactly them.
pub(crate) fn verify(
    trace: &[State<'_>],
    signatures: &[PeerSignature],
    particle_id: &str,
    trusted_keys: &BTreeMap<String, [u8; 32]>,
) -> Result<(), IntegrityError> {
    let mut by_peer: BTreeMap<&str, &PeerSignature> = BTreeMap::new();
    for s in signatures {
        if by_peer.insert(&s.peer, s).is_some() {
            return Err(IntegrityError::DuplicateSignature {
                peer: s.peer.clone(),
            });
        }
    }
    for (peer, cids) in attributed(trace) {
        let Some(signature) = by_peer.get(peer.as_str()) else {
            return Err(IntegrityError::MissingSignature {
                count: cids.len(),
                peer,
            });
        };
        let bound = match trusted_keys.get(&peer) {
            Some(key) => *key == signature.public_key,
            None => peer_id_of(&signature.public_key) == peer,
        };
        if !bound {
            return Err(IntegrityError::UnboundKey { peer });
        }
        let valid = VerifyingKey::from_bytes(&signature.public_key).is_ok_and(|key| {
            key.verify(
                &message(particle_id, &peer, &signature.signed),
                &Signature::from_bytes(&signature.signature),
            )
            .is_ok()
        });
        if !valid {
            return Err(IntegrityError::BadSignature { peer });
        }
        if !is_sub_multiset(&cids, &signature.signed) {
            return Err(IntegrityError::UnsignedResult { peer });
        }
    }
    Ok(())
}

/// True if every element of `small` is in `large` at least as often (both sorted).
fn is_sub_multiset(small: &[Cid], large: &[Cid]) -> bool {
    let mut rest = large.iter();
    small.iter().all(|c| rest.any(|l| l == c))
}

/// The multiset union (each element as often as in the side that has it more often)
/// of two sorted multisets.
fn multiset_union(a: &[Cid], b: &[Cid]) -> Vec<Cid> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x == y => {
                out.push(*x);
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x < y => {
                out.push(*x);
                i += 1;
            }
            (Some(_), Some(y)) | (None, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// The signatures the output data carries. For the current peer: its stored signature
/// if that covers what it has in the output, else a fresh one over what it signed
/// before and what it has now. For every other peer with results: an input's
/// signature that covers the output's results (the stored data's first), else the
/// widest one, for the next peer to judge. Fails when signing fails.
pub(crate) fn carry<E>(
    output: &[State<'_>],
    prev: &[PeerSignature],
    current: &[PeerSignature],
    current_peer: &str,
    sign_own: impl FnOnce(&[Cid]) -> Result<PeerSignature, E>,
) -> Result<Vec<PeerSignature>, E> {
    let produced = attributed(output);
    let find = |sigs: &[PeerSignature], peer: &str| sigs.iter().find(|s| s.peer == peer).cloned();
    let mut out = Vec::new();
    let mut sign_own = Some(sign_own);
    for (peer, cids) in &produced {
        if peer == current_peer {
            // Only our own stored signature is trusted for ourselves.
            let stored = find(prev, peer);
            match stored {
                Some(s) if is_sub_multiset(cids, &s.signed) => out.push(s),
                _ => {
                    let before = stored.map(|s| s.signed).unwrap_or_default();
                    let all = multiset_union(&before, cids);
                    if let Some(sign) = sign_own.take() {
                        out.push(sign(&all)?);
                    }
                }
            }
            continue;
        }
        let candidates = [find(prev, peer), find(current, peer)];
        let covering = candidates
            .iter()
            .flatten()
            .find(|s| is_sub_multiset(cids, &s.signed));
        let widest = || candidates.iter().flatten().max_by_key(|s| s.signed.len());
        out.extend(covering.or_else(widest).cloned());
    }
    Ok(out)
}

/// The identity of a particle, as its init peer signs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParticleIdentity<'p> {
    /// The particle id.
    pub id: &'p str,
    /// The init peer's id.
    pub init_peer_id: &'p str,
    /// Milliseconds since the epoch when the particle was created.
    pub timestamp: u64,
    /// Time to live, in milliseconds.
    pub ttl: u32,
    /// The script.
    pub script: &'p str,
}

impl ParticleIdentity<'_> {
    fn message(&self) -> Cid {
        let mut bytes = Vec::new();
        put_str(&mut bytes, "braid particle signature v1");
        put_str(&mut bytes, self.id);
        put_str(&mut bytes, self.init_peer_id);
        bytes.extend_from_slice(&self.timestamp.to_le_bytes());
        bytes.extend_from_slice(&self.ttl.to_le_bytes());
        bytes.extend_from_slice(blake3::hash(self.script.as_bytes()).as_bytes());
        *blake3::hash(&bytes).as_bytes()
    }

    /// Signs the particle with the init peer's secret key.
    pub fn sign(&self, secret: &[u8; 32]) -> [u8; 64] {
        SigningKey::from_bytes(secret)
            .sign(&self.message())
            .to_bytes()
    }

    /// Checks a particle signature against the init peer's public key.
    pub fn verify(&self, public_key: &[u8; 32], signature: &[u8; 64]) -> bool {
        VerifyingKey::from_bytes(public_key).is_ok_and(|key| {
            key.verify(&self.message(), &Signature::from_bytes(signature))
                .is_ok()
        })
    }
}
