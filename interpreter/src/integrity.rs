//! Tamper-evident data, with the reference's scheme (data-integrity.md §2–3), so that
//! a signature either braid or AquaVM makes is accepted by the other.
//!
//! Every record in the data has a content id: blake3 of its JSON text (values as their
//! canonical text; tetraplets, call result records, canon elements and canon results
//! as the JSON objects the reference hashes), written as a CIDv1 (`ids.rs`). Call
//! results (executed into a scalar or stream, or failed) and canon results are
//! attributed to the peer in their tetraplet. At the end of every invocation the
//! current peer signs, with its Ed25519 key, the Borsh serialization of the sorted
//! multiset of its records' id texts and the particle id, and stores the signature
//! under its public key (key format byte 0, then the key).
//!
//! When checking is on, arriving data is verified before anything runs: the ids of
//! the stores' records (code 8), every signing key (9), every producing peer having a
//! key in the data (9), every signature of the current data over what its peer has in
//! it for this particle (9), and the merge of the two signature stores (9).
//!
//! A host may pass a [`SignatureCache`]: a set of signatures (and keys) it has seen
//! checked before. A signature found there is not verified again; the cache only saves
//! work, so every outcome is the one checking everything would give.

use std::collections::BTreeMap;

use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use ed25519_dalek::{Sha512, Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::ids::{cid_text, push_cid_text};
use crate::params::Tetraplet;
use crate::trace::{
    CallState, CanonResult, CanonState, ElementIds, Output, Provenance, ServiceResult, State,
};

pub(crate) use crate::ids::peer_id_of;
pub(crate) use crate::json::Cid;

/// Appends a JSON string as serde_json writes it.
fn json_str(out: &mut String, s: &str) {
    // serde_json escapes only `"`, `\\` and control characters: other text goes as it is.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    // Writing into a String cannot fail.
    let _ = serde_json::to_writer(StringWriter(out), s);
}

struct StringWriter<'s>(&'s mut String);

impl std::io::Write for StringWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // serde_json writes whole UTF-8 sequences.
        self.0
            .push_str(std::str::from_utf8(buf).map_err(std::io::Error::other)?);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn hash(text: &str) -> Cid {
    *blake3::hash(text.as_bytes()).as_bytes()
}

/// The id of a tetraplet: `{"peer_pk","service_id","function_name","lens"}`.
pub(crate) fn tetraplet_cid(t: &Tetraplet) -> Cid {
    let mut text = String::with_capacity(96 + t.peer_pk.len());
    for (i, (key, value)) in [
        ("peer_pk", &t.peer_pk),
        ("service_id", &t.service_id),
        ("function_name", &t.function_name),
        ("lens", &t.lens),
    ]
    .into_iter()
    .enumerate()
    {
        text.push(if i == 0 { '{' } else { ',' });
        text.push('"');
        text.push_str(key);
        text.push_str("\":");
        json_str(&mut text, value);
    }
    text.push('}');
    hash(&text)
}

/// The id of a call result record from the ids it holds:
/// `{"value_cid","argument_hash","tetraplet_cid"}`.
pub(crate) fn result_cid_of(value: &Cid, argument_hash: &Cid, tetraplet: &Cid) -> Cid {
    let mut text = String::with_capacity(240);
    text.push_str("{\"value_cid\":\"");
    push_cid_text(&mut text, value);
    text.push_str("\",\"argument_hash\":\"");
    push_cid_text(&mut text, argument_hash);
    text.push_str("\",\"tetraplet_cid\":\"");
    push_cid_text(&mut text, tetraplet);
    text.push_str("\"}");
    hash(&text)
}

/// The id of a call's record: what it returned, for which arguments, from where.
/// Computed once per result (or taken as stored in data).
pub(crate) fn result_cid(result: &ServiceResult<'_>) -> Cid {
    if let Some(cid) = result.cid.get() {
        return cid;
    }
    let cid = result_cid_of(
        &result.value.cid(),
        &result.argument_hash,
        &tetraplet_cid(&result.tetraplet),
    );
    result.cid.set(Some(cid));
    cid
}

/// The id of a canon element: `{"value","tetraplet","provenance"}`.
pub(crate) fn element_cid(value: &Cid, tetraplet: &Cid, provenance: &Provenance) -> Cid {
    let mut text = String::with_capacity(256);
    text.push_str("{\"value\":\"");
    push_cid_text(&mut text, value);
    text.push_str("\",\"tetraplet\":\"");
    push_cid_text(&mut text, tetraplet);
    text.push_str("\",\"provenance\":");
    match provenance {
        Provenance::Literal => text.push_str("{\"type\":\"literal\"}"),
        Provenance::ServiceResult(cid) | Provenance::Canon(cid) => {
            text.push_str(if matches!(provenance, Provenance::Canon(_)) {
                "{\"type\":\"canon\",\"cid\":\""
            } else {
                "{\"type\":\"service_result\",\"cid\":\""
            });
            push_cid_text(&mut text, cid);
            text.push_str("\"}");
        }
    }
    text.push('}');
    hash(&text)
}

/// The id of a canon result from its tetraplet's and elements' ids:
/// `{"tetraplet","values":[…]}`.
pub(crate) fn canon_cid_of(tetraplet: &Cid, elements: &[Cid]) -> Cid {
    let mut text = String::with_capacity(96 + elements.len() * 64);
    text.push_str("{\"tetraplet\":\"");
    push_cid_text(&mut text, tetraplet);
    text.push_str("\",\"values\":[");
    for (i, e) in elements.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push('"');
        push_cid_text(&mut text, e);
        text.push('"');
    }
    text.push_str("]}");
    hash(&text)
}

/// The id of the JSON text `[]`: the argument hash of the call result records braid
/// makes for canon elements of unknown origin.
pub(crate) fn empty_arguments_cid() -> Cid {
    hash("[]")
}

/// The ids of a canon's elements, computed once. Elements that share a tetraplet
/// (the usual case: one stream's values from one call) hash it once.
pub(crate) fn element_ids<'c>(canon: &'c CanonResult<'_>) -> &'c [ElementIds] {
    canon.element_ids.get_or_init(|| {
        let mut last: Option<(*const Tetraplet, Cid)> = None;
        canon
            .elements
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let address = std::rc::Rc::as_ptr(&e.tetraplet);
                let tetraplet = match last {
                    Some((a, cid)) if a == address => cid,
                    _ => {
                        let cid = tetraplet_cid(&e.tetraplet);
                        last = Some((address, cid));
                        cid
                    }
                };
                let value = e.json.cid();
                let provenance = match canon.stored_provenance(i) {
                    Some(p) => p,
                    None if e.literal => Provenance::Literal,
                    None => Provenance::ServiceResult(result_cid_of(
                        &value,
                        &empty_arguments_cid(),
                        &tetraplet,
                    )),
                };
                ElementIds {
                    value,
                    tetraplet,
                    provenance,
                    element: element_cid(&value, &tetraplet, &provenance),
                }
            })
            .collect()
    })
}

/// The id of a canonicalization. Computed once (or taken as stored in data).
pub(crate) fn canon_cid(canon: &CanonResult<'_>) -> Cid {
    if let Some(cid) = canon.cid.get() {
        return cid;
    }
    let elements: Vec<Cid> = element_ids(canon).iter().map(|e| e.element).collect();
    let cid = canon_cid_of(&tetraplet_cid(&canon.tetraplet), &elements);
    canon.cid.set(Some(cid));
    cid
}

/// What each peer produced in a trace: the sorted multiset of its records' id texts.
/// Unused call results have no record and are not attributed.
pub(crate) fn attributed(trace: &[State<'_>]) -> BTreeMap<String, Vec<String>> {
    let mut by_peer: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for state in trace {
        let (peer, cid) = match state {
            State::Call(CallState::Executed { result, output }) if *output != Output::Unused => {
                (&result.tetraplet.peer_pk, result_cid(result))
            }
            State::Call(CallState::Failed(result)) => {
                (&result.tetraplet.peer_pk, result_cid(result))
            }
            State::Canon(CanonState::Executed(canon)) => {
                (&canon.tetraplet.peer_pk, canon_cid(canon))
            }
            _ => continue,
        };
        by_peer
            .entry(peer.clone())
            .or_default()
            .push(cid_text(&cid));
    }
    for cids in by_peer.values_mut() {
        cids.sort_unstable();
    }
    by_peer
}

/// What `peer` produced in a trace: the sorted multiset of its records' id texts.
pub(crate) fn attributed_to(trace: &[State<'_>], peer: &str) -> Vec<String> {
    let mut cids = Vec::new();
    for state in trace {
        let cid = match state {
            State::Call(CallState::Executed { result, output })
                if *output != Output::Unused && result.tetraplet.peer_pk == peer =>
            {
                result_cid(result)
            }
            State::Call(CallState::Failed(result)) if result.tetraplet.peer_pk == peer => {
                result_cid(result)
            }
            State::Canon(CanonState::Executed(canon)) if canon.tetraplet.peer_pk == peer => {
                canon_cid(canon)
            }
            _ => continue,
        };
        cids.push(cid_text(&cid));
    }
    cids.sort_unstable();
    cids
}

/// The message a peer signs: Borsh of (its sorted record ids, the particle id).
fn message(cids: &[String], particle_id: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + cids.len() * 65 + particle_id.len());
    let put = |bytes: &mut Vec<u8>, s: &str| {
        bytes.extend_from_slice(&(s.len() as u32).to_le_bytes());
        bytes.extend_from_slice(s.as_bytes());
    };
    bytes.extend_from_slice(&(cids.len() as u32).to_le_bytes());
    for cid in cids {
        put(&mut bytes, cid);
    }
    put(&mut bytes, particle_id);
    bytes
}

/// The key format byte of Ed25519 keys and signatures in the signature store.
const ED25519: u8 = 0;

/// One entry of a data's signature store, as stored: the public key and the signature,
/// each with its key format byte first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredSignature {
    pub(crate) public_key: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

impl StoredSignature {
    /// The Ed25519 public key, if the entry holds one.
    pub(crate) fn ed25519_key(&self) -> Option<[u8; 32]> {
        match self.public_key.split_first() {
            Some((&ED25519, key)) => key.try_into().ok(),
            _ => None,
        }
    }
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

impl OwnKey {
    /// The public key's bytes (a format 1 key's as given: `sign` checks them).
    pub(crate) fn public_bytes(&self) -> [u8; 32] {
        match self {
            Self::Secret(secret) => public_key_of(secret),
            Self::Pair { public, .. } => *public,
        }
    }
}

/// Signs records (sorted id texts) for a particle. Fails only when a format 1 key's
/// public half is not an Ed25519 public key.
pub(crate) fn sign(
    key: &OwnKey,
    particle_id: &str,
    cids: &[String],
) -> Result<StoredSignature, String> {
    let message = message(cids, particle_id);
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
    let mut k = vec![ED25519];
    k.extend_from_slice(public_key.as_bytes());
    let mut s = vec![ED25519];
    s.extend_from_slice(&signature.to_bytes());
    Ok(StoredSignature {
        public_key: k,
        signature: s,
    })
}

/// Why arriving data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// A stored value does not hash to its id (code 8).
    #[error("value #{index} does not match its content id: its bytes were altered")]
    ValueMismatch {
        /// Its position in the data's value store.
        index: usize,
    },
    /// A stored record does not hash to its id (code 8).
    #[error("Value mismatch in the {store:?} store for CID {cid:?}")]
    StoreMismatch {
        /// Which store.
        store: &'static str,
        /// The id it is stored under.
        cid: String,
    },
    /// A record refers to a record the data does not hold (code 8).
    #[error("Reference CID from {cid:?} was not found")]
    MissingReference {
        /// The referring record's id.
        cid: String,
    },
    /// A key in a signature store is not an Ed25519 public key (code 9).
    #[error("malformed key: {detail}")]
    MalformedKey {
        /// What is wrong.
        detail: String,
    },
    /// Results attributed to a peer, but no key of that peer in the data (code 9).
    #[error("peer_id doens't match any available public key: {peer:?}")]
    UnknownPeer {
        /// The peer.
        peer: String,
    },
    /// The signature does not cover exactly the peer's results for this particle
    /// (code 9).
    #[error(
        "signature mismatch for {peer:?}: its results were altered, or the data comes from another particle"
    )]
    BadSignature {
        /// The peer.
        peer: String,
    },
    /// A peer's results in the two data are not one a continuation of the other (9).
    #[error("inconsistent CID multisets on merge for peer {peer:?}")]
    InconsistentMerge {
        /// The peer.
        peer: String,
    },
}

/// Signatures and keys a host has seen checked, kept across invocations (for example
/// one set per node): a node that sees the same signature over the same message again
/// does not verify it again.
///
/// Entries are opaque digests (blake3 of a domain tag and everything the check
/// depended on: the key, the signature and the whole message). `invoke` inserts only
/// what it checked and found valid, and the signatures it made with a key it knows to
/// be consistent, so a cache can only skip work, never change an outcome. A cache may
/// forget entries at any time (a bounded set); it must never hold an entry `invoke`
/// did not insert.
pub trait SignatureCache {
    /// Whether `entry` was inserted (and not forgotten since).
    fn contains(&self, entry: &[u8; 32]) -> bool;
    /// Remembers `entry`.
    fn insert(&self, entry: [u8; 32]);
    /// Told of each Ed25519 operation `invoke` performed (for hosts that count the
    /// cryptography a particle costs). Does nothing by default.
    fn performed(&self, _operation: SignatureOperation) {}
}

/// An Ed25519 operation [`SignatureCache::performed`] is told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureOperation {
    /// A data signature verified (it was not in the cache).
    Verified,
    /// A data signature made.
    Signed,
}

/// The cache entry of a valid Ed25519 signature of `key` over `message`.
fn signature_entry(key: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"braid: a valid Ed25519 signature\0");
    hasher.update(key);
    hasher.update(signature);
    hasher.update(message);
    *hasher.finalize().as_bytes()
}

/// The cache entry of 32 bytes that decompress to an Ed25519 public key.
fn key_entry(key: &[u8; 32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"braid: an Ed25519 public key\0");
    hasher.update(key);
    *hasher.finalize().as_bytes()
}

/// The cache entry of a format 1 key whose public half belongs to its secret.
fn pair_entry(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"braid: a consistent Ed25519 key pair\0");
    hasher.update(secret);
    hasher.update(public);
    *hasher.finalize().as_bytes()
}

/// The keys of one invocation's signature stores: each distinct key's peer and
/// decompressed point worked out once, and checks looked up in the host's cache.
struct KeyBook<'a> {
    trusted_keys: &'a BTreeMap<String, [u8; 32]>,
    cache: Option<&'a dyn SignatureCache>,
    /// Key, the peer it stands for, its point once decompressed.
    seen: Vec<([u8; 32], String, Option<VerifyingKey>)>,
}

impl<'a> KeyBook<'a> {
    fn new(
        trusted_keys: &'a BTreeMap<String, [u8; 32]>,
        cache: Option<&'a dyn SignatureCache>,
    ) -> Self {
        KeyBook {
            trusted_keys,
            cache,
            seen: Vec::new(),
        }
    }

    /// The store's keys, checked, with the peers they stand for.
    fn keys_of(
        &mut self,
        store: &[StoredSignature],
    ) -> Result<Vec<(String, [u8; 32])>, IntegrityError> {
        store
            .iter()
            .map(|s| {
                let malformed = || IntegrityError::MalformedKey {
                    detail: format!(
                        "{} bytes that are not an Ed25519 public key",
                        s.public_key.len()
                    ),
                };
                let key = s.ed25519_key().ok_or_else(malformed)?;
                if let Some((_, peer, _)) = self.seen.iter().find(|(k, _, _)| *k == key) {
                    return Ok((peer.clone(), key));
                }
                let entry = self.cache.map(|cache| (cache, key_entry(&key)));
                let point = match entry {
                    Some((cache, entry)) if cache.contains(&entry) => None,
                    _ => {
                        let point = VerifyingKey::from_bytes(&key).map_err(|_| malformed())?;
                        if let Some((cache, entry)) = entry {
                            cache.insert(entry);
                        }
                        Some(point)
                    }
                };
                let peer = peer_of(&key, self.trusted_keys);
                self.seen.push((key, peer.clone(), point));
                Ok((peer, key))
            })
            .collect()
    }

    /// Whether `signature` is `key`'s over `message` (a key [`Self::keys_of`] returned).
    fn verify(&mut self, key: &[u8; 32], signature: &[u8; 64], message: &[u8]) -> bool {
        let entry = self
            .cache
            .map(|cache| (cache, signature_entry(key, signature, message)));
        if entry.is_some_and(|(cache, entry)| cache.contains(&entry)) {
            return true;
        }
        let point = match self.seen.iter_mut().find(|(k, _, _)| k == key) {
            Some((_, _, Some(point))) => Ok(*point),
            Some((_, _, point)) => VerifyingKey::from_bytes(key).inspect(|p| *point = Some(*p)),
            None => VerifyingKey::from_bytes(key),
        };
        if let Some(cache) = self.cache {
            cache.performed(SignatureOperation::Verified);
        }
        let valid = point.is_ok_and(|point| {
            point
                .verify(message, &Signature::from_bytes(signature))
                .is_ok()
        });
        if let (true, Some((cache, entry))) = (valid, entry) {
            cache.insert(entry);
        }
        valid
    }
}

/// The peer id a stored key stands for: a trusted name bound to it, else its libp2p id.
fn peer_of(key: &[u8; 32], trusted_keys: &BTreeMap<String, [u8; 32]>) -> String {
    trusted_keys
        .iter()
        .find(|(_, k)| *k == key)
        .map(|(name, _)| name.clone())
        .unwrap_or_else(|| peer_id_of(key))
}

/// Verifies arriving data (data-integrity.md §3.3, steps 2–5) and merges the two
/// signature stores: per key, the signature of the larger multiset of results.
/// Signatures and keys in `cache` are not checked again; those checked here go in.
pub(crate) fn verify(
    prev: (&[State<'_>], &[StoredSignature]),
    current: (&[State<'_>], &[StoredSignature]),
    particle_id: &str,
    trusted_keys: &BTreeMap<String, [u8; 32]>,
    cache: Option<&dyn SignatureCache>,
) -> Result<Vec<StoredSignature>, IntegrityError> {
    let mut book = KeyBook::new(trusted_keys, cache);
    let prev_keys = book.keys_of(prev.1)?;
    let current_keys = book.keys_of(current.1)?;
    let prev_results = attributed(prev.0);
    let current_results = attributed(current.0);
    for (results, keys) in [
        (&prev_results, &prev_keys),
        (&current_results, &current_keys),
    ] {
        for peer in results.keys() {
            if !keys.iter().any(|(p, _)| p == peer) {
                return Err(IntegrityError::UnknownPeer { peer: peer.clone() });
            }
        }
    }
    let empty = Vec::new();
    for ((peer, key), stored) in current_keys.iter().zip(current.1) {
        let cids = current_results.get(peer).unwrap_or(&empty);
        let valid = match stored.signature.split_first() {
            Some((&ED25519, sig)) => <[u8; 64]>::try_from(sig)
                .is_ok_and(|sig| book.verify(key, &sig, &message(cids, particle_id))),
            _ => false,
        };
        if !valid {
            return Err(IntegrityError::BadSignature { peer: peer.clone() });
        }
    }
    // Merge: per key, the larger multiset must contain the smaller.
    let mut merged: Vec<StoredSignature> = Vec::new();
    for ((peer, key), stored) in prev_keys.iter().zip(prev.1) {
        let in_current = current_keys.iter().position(|(_, k)| k == key);
        let Some(c) = in_current else {
            merged.push(stored.clone());
            continue;
        };
        let a = prev_results.get(peer).unwrap_or(&empty);
        let b = current_results.get(peer).unwrap_or(&empty);
        let (small, large, larger) = if a.len() > b.len() {
            (b, a, stored)
        } else {
            (a, b, &current.1[c])
        };
        if !is_sub_multiset(small, large) {
            return Err(IntegrityError::InconsistentMerge { peer: peer.clone() });
        }
        merged.push(larger.clone());
    }
    for ((_, key), stored) in current_keys.iter().zip(current.1) {
        if !prev_keys.iter().any(|(_, k)| k == key) && !merged.iter().any(|m| m == stored) {
            merged.push(stored.clone());
        }
    }
    Ok(merged)
}

/// True if every element of `small` is in `large` at least as often (both sorted).
fn is_sub_multiset(small: &[String], large: &[String]) -> bool {
    let mut rest = large.iter();
    small.iter().all(|c| rest.any(|l| l == c))
}

/// The signature store the output data carries: the verified, merged store (empty
/// when nothing was checked, as the reference) with the current peer's signature over
/// its records in the output in place of its old one. A peer with no records needs no
/// signature (nothing is attributed to it) and gets none; a peer whose records are
/// those its stored data already signed keeps that signature (Ed25519 signatures are
/// deterministic: signing again would give the same bytes). `stored` is the current
/// peer's signature and records in its previous data.
pub(crate) fn sign_output(
    output: &[State<'_>],
    mut store: Vec<StoredSignature>,
    current_peer: &str,
    key: &OwnKey,
    particle_id: &str,
    stored: Option<(StoredSignature, Vec<String>)>,
    cache: Option<&dyn SignatureCache>,
) -> Result<Vec<StoredSignature>, String> {
    let own = attributed_to(output, current_peer);
    if !store.is_empty() {
        let public = key.public_bytes();
        store.retain(|s| s.ed25519_key() != Some(public));
    }
    if !own.is_empty() {
        let signature = match stored {
            Some((signature, signed)) if signed == own => signature,
            _ => {
                let signature = sign(key, particle_id, &own)?;
                if let Some(cache) = cache {
                    cache.performed(SignatureOperation::Signed);
                    remember_own(cache, key, &signature, &message(&own, particle_id));
                }
                signature
            }
        };
        store.push(signature);
    }
    store.sort_by(|a, b| a.public_key.cmp(&b.public_key));
    Ok(store)
}

/// Puts a signature this peer has just made in the cache, when its key is known to be
/// consistent (a format 1 key's public half is taken as given: checked once, then
/// remembered), so that the signature is not verified when the data comes back.
fn remember_own(
    cache: &dyn SignatureCache,
    key: &OwnKey,
    signature: &StoredSignature,
    message: &[u8],
) {
    let consistent = match key {
        OwnKey::Secret(_) => true,
        OwnKey::Pair { secret, public } => {
            let entry = pair_entry(secret, public);
            let known = cache.contains(&entry);
            if !known && public_key_of(secret) == *public {
                cache.insert(entry);
                true
            } else {
                known
            }
        }
    };
    let bytes = signature.signature.split_first().map(|(_, s)| s);
    let (Some(public), Some(Ok(bytes))) =
        (signature.ed25519_key(), bytes.map(<[u8; 64]>::try_from))
    else {
        return;
    };
    if consistent {
        cache.insert(signature_entry(&public, &bytes, message));
    }
}

/// The current peer's signature in its previous data, with the records it covers.
pub(crate) fn own_stored(
    prev_trace: &[State<'_>],
    prev_store: &[StoredSignature],
    current_peer: &str,
    key: &OwnKey,
) -> Option<(StoredSignature, Vec<String>)> {
    let public = key.public_bytes();
    let signature = prev_store
        .iter()
        .find(|s| s.ed25519_key() == Some(public))?;
    let signed = attributed_to(prev_trace, current_peer);
    Some((signature.clone(), signed))
}

/// A particle signature's message, as braid's particles carry it.
fn put_str(bytes: &mut Vec<u8>, s: &str) {
    bytes.extend_from_slice(&(s.len() as u64).to_le_bytes());
    bytes.extend_from_slice(s.as_bytes());
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
    fn message(&self) -> [u8; 32] {
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
