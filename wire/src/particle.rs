//! Particles: what travels between peers, their wire form (the field's: Nox's and the
//! JS client's), and the checks a node makes before it lets one in.
//!
//! Wire form: a MessagePack map `{action: "Particle", id, init_peer_id, timestamp,
//! ttl, script, signature, data}` ([`Particle::encode`]); on a libp2p stream it is
//! framed by [`crate::particle_frame`]. `signature` and `data` are written as
//! MessagePack `bin`, and read as `bin` or as arrays of integers (the JS client sends
//! arrays). `ttl` must be positive (the JS client refuses a zero ttl).
//!
//! The signature is the init peer's Ed25519 signature over `id` (UTF-8) ‖ `timestamp`
//! (u64 little-endian) ‖ `ttl` (u32 little-endian) ‖ `script` (UTF-8)
//! ([`Particle::signed_bytes`]); `data` is not signed, as every hop rewrites it (its
//! integrity is the interpreter's job).
//!
//! Intake order: size limits on the wire bytes, decoding, size limits on script and
//! data, the signature against the init peer's key (decoded from its peer id), then
//! expiry against this node's clock.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::identity::{NodeKey, public_key_of_peer_id};

/// The value of the `action` key of a particle's MessagePack map.
pub const PARTICLE_ACTION: &str = "Particle";

/// How far the node's clock may be behind or ahead of an init peer's: a particle is
/// expired only once `timestamp + ttl + skew` has passed, and refused when its
/// timestamp is more than `skew` in the future. The reference has no allowance, which
/// drops particles of clients whose clock runs a little behind (nox issue 1194).
pub const DEFAULT_CLOCK_SKEW_MS: u64 = 2_000;

/// One particle: a script, its identity, and the data of its execution so far.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Particle {
    /// Particle id (a UUID by convention).
    pub id: String,
    /// The peer that started the particle and signed it.
    pub init_peer_id: String,
    /// Creation time at the init peer, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Time to live from `timestamp`, in milliseconds.
    pub ttl: u32,
    /// The AIR script.
    pub script: String,
    /// The init peer's signature (64 bytes).
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    /// The interpreter data of the execution so far.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Particle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Particle")
            .field("id", &self.id)
            .field("init_peer_id", &self.init_peer_id)
            .field("timestamp", &self.timestamp)
            .field("ttl", &self.ttl)
            .field("script_bytes", &self.script.len())
            .field("data_bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// The wire form as written: `action` first, byte fields as `bin`, keys in the order
/// the JS client writes them.
#[derive(Serialize)]
struct WireOut<'a> {
    action: &'static str,
    id: &'a str,
    init_peer_id: &'a str,
    timestamp: u64,
    ttl: u32,
    script: &'a str,
    #[serde(with = "serde_bytes")]
    signature: &'a [u8],
    #[serde(with = "serde_bytes")]
    data: &'a [u8],
}

/// The wire form as read: byte fields as `bin` or arrays of integers (`serde_bytes`
/// accepts both, and grows a buffer from an array as its elements arrive rather than
/// trusting the announced length); unknown keys are ignored, duplicate keys refused.
#[derive(Deserialize)]
struct WireIn {
    action: String,
    id: String,
    init_peer_id: String,
    timestamp: u64,
    ttl: u32,
    script: String,
    #[serde(with = "serde_bytes")]
    signature: Vec<u8>,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

impl Particle {
    /// A new particle started and signed by `key`, with empty data.
    pub fn new_signed(key: &NodeKey, id: String, timestamp: u64, ttl: u32, script: String) -> Self {
        let mut particle = Particle {
            id,
            init_peer_id: key.peer_id().to_owned(),
            timestamp,
            ttl,
            script,
            signature: Vec::new(),
            data: Vec::new(),
        };
        particle.signature = key.sign(&particle.signed_bytes()).to_vec();
        particle
    }

    /// What the init peer signs: `id` ‖ `timestamp` (u64 LE) ‖ `ttl` (u32 LE) ‖
    /// `script`, the field's particle signature scheme.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.id.len() + 12 + self.script.len());
        bytes.extend_from_slice(self.id.as_bytes());
        bytes.extend_from_slice(&self.timestamp.to_le_bytes());
        bytes.extend_from_slice(&self.ttl.to_le_bytes());
        bytes.extend_from_slice(self.script.as_bytes());
        bytes
    }

    /// The signature of [`Self::signed_bytes`] with this Ed25519 secret key.
    pub fn sign(&self, secret: &[u8; 32]) -> [u8; 64] {
        SigningKey::from_bytes(secret)
            .sign(&self.signed_bytes())
            .to_bytes()
    }

    /// Whether `signature` is this Ed25519 public key's signature of
    /// [`Self::signed_bytes`] (strict verification: no malleable signatures).
    pub fn verify(&self, public_key: &[u8; 32]) -> bool {
        let Ok(signature) = <[u8; 64]>::try_from(self.signature.as_slice()) else {
            return false;
        };
        VerifyingKey::from_bytes(public_key).is_ok_and(|key| {
            key.verify_strict(&self.signed_bytes(), &Signature::from_bytes(&signature))
                .is_ok()
        })
    }

    /// When the particle expires (ms since the epoch); `None` if that overflows.
    pub fn deadline(&self) -> Option<u64> {
        self.timestamp.checked_add(u64::from(self.ttl))
    }

    /// The wire form: the field's MessagePack map, byte fields as `bin`.
    pub fn encode(&self) -> Vec<u8> {
        let out = WireOut {
            action: PARTICLE_ACTION,
            id: &self.id,
            init_peer_id: &self.init_peer_id,
            timestamp: self.timestamp,
            ttl: self.ttl,
            script: &self.script,
            signature: &self.signature,
            data: &self.data,
        };
        // Invariant: serializing plain strings, integers and bytes cannot fail.
        rmp_serde::to_vec_named(&out).expect("a particle serializes")
    }

    /// Reads the wire form; checks only the format (a map with every key, `action`
    /// `"Particle"`, a positive `ttl`), not the contents.
    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        match bytes.first() {
            Some(0x80..=0x8f | 0xde | 0xdf) => {}
            Some(_) => {
                return Err(Rejection::Malformed(
                    "a particle is a MessagePack map".into(),
                ));
            }
            None => return Err(Rejection::Malformed("no bytes".into())),
        }
        let wire: WireIn =
            rmp_serde::from_slice(bytes).map_err(|e| Rejection::Malformed(e.to_string()))?;
        if wire.action != PARTICLE_ACTION {
            return Err(Rejection::Malformed(format!(
                "action is `{}`; expected `{PARTICLE_ACTION}`",
                wire.action.escape_debug()
            )));
        }
        if wire.ttl == 0 {
            return Err(Rejection::Malformed("ttl is 0; it must be positive".into()));
        }
        Ok(Particle {
            id: wire.id,
            init_peer_id: wire.init_peer_id,
            timestamp: wire.timestamp,
            ttl: wire.ttl,
            script: wire.script,
            signature: wire.signature,
            data: wire.data,
        })
    }
}

/// Size limits a node applies to arriving particles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeLimits {
    /// Largest encoded particle, in bytes (the reference's frame limit is 100 MiB).
    pub wire: usize,
    /// Largest script, in bytes (the interpreter's AIR limit: 16 MiB).
    pub script: usize,
    /// Largest data, in bytes (the interpreter's particle limit: 64 MiB).
    pub data: usize,
}

impl IntakeLimits {
    /// The reference's limits.
    pub const REFERENCE: IntakeLimits = IntakeLimits {
        wire: 100 << 20,
        script: 16 << 20,
        data: 64 << 20,
    };
}

/// Why a particle was not let in. Every rejection is logged and counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Over a size limit.
    #[error("{what} is {actual} bytes, over the limit of {limit}")]
    TooLarge {
        /// `frame`, `particle`, `script` or `data`.
        what: &'static str,
        /// Its size.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a particle in the wire format.
    #[error("malformed particle: {0}")]
    Malformed(String),
    /// The init peer id names no Ed25519 key, so the signature cannot be checked.
    #[error("init peer id `{0}` names no Ed25519 public key")]
    UnknownInitPeer(String),
    /// The signature does not verify against the init peer's key.
    #[error("the signature does not match the init peer's key")]
    BadSignature,
    /// `timestamp + ttl` (plus the skew allowance) has passed.
    #[error("expired {ago_ms} ms ago (deadline {deadline} ms)")]
    Expired {
        /// The particle's deadline, ms since the epoch.
        deadline: u64,
        /// How long ago, by this node's clock.
        ago_ms: u64,
    },
    /// The timestamp is further in the future than the skew allowance.
    #[error("timestamp is {ahead_ms} ms in the future")]
    FromTheFuture {
        /// How far ahead of this node's clock.
        ahead_ms: u64,
    },
    /// The node runs as many particles as it may.
    #[error("the node is at its limit of {0} live particles")]
    Busy(usize),
    /// The particle's mailbox on this node is full (the same particle arriving faster
    /// than it can be processed).
    #[error("the particle's mailbox is full")]
    MailboxFull,
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
    /// The particle id is too long or has characters other than printable ASCII
    /// (shown escaped).
    #[error("particle id {0}")]
    BadId(String),
    /// The ttl is over the node's cap (the ttl is signed, so it cannot be shortened).
    #[error("ttl of {ttl_ms} ms is over this node's cap of {cap_ms} ms")]
    TtlTooLong {
        /// The particle's ttl.
        ttl_ms: u32,
        /// The node's cap.
        cap_ms: u64,
    },
    /// One init peer, or one connection's peer, holds its whole share of the node's
    /// particle slots.
    #[error("the {whose} {peer} already has {limit} live particles on this node, its share")]
    OverShare {
        /// `init peer`, `sender` or `address`.
        whose: &'static str,
        /// Its peer id.
        peer: String,
        /// Its share.
        limit: usize,
    },
    /// The particle's script and data would take one init peer, one sender or the
    /// whole node over its share of the bytes live particles hold.
    #[error(
        "the {whose} {peer} holds {held} bytes of live particles on this node; {size} more would pass its share of {limit}"
    )]
    OverMemoryShare {
        /// `init peer`, `sender` or `node`.
        whose: &'static str,
        /// Its peer id or address (`in all` for the node).
        peer: String,
        /// What it holds now.
        held: usize,
        /// This particle's script and data.
        size: usize,
        /// Its share.
        limit: usize,
    },
}

impl Rejection {
    /// A short stable name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "too_large",
            Rejection::Malformed(_) => "malformed",
            Rejection::UnknownInitPeer(_) => "unknown_init_peer",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired { .. } => "expired",
            Rejection::FromTheFuture { .. } => "from_the_future",
            Rejection::Busy(_) => "busy",
            Rejection::MailboxFull => "mailbox_full",
            Rejection::Stopped => "stopped",
            Rejection::BadId(_) => "bad_id",
            Rejection::TtlTooLong { .. } => "ttl_too_long",
            Rejection::OverShare {
                whose: "init peer", ..
            } => "init_peer_share",
            Rejection::OverShare {
                whose: "address", ..
            } => "address_share",
            Rejection::OverShare { .. } => "sender_share",
            Rejection::OverMemoryShare { .. } => "memory_share",
        }
    }
}

/// Runs the intake checks on an encoded particle, in order: sizes, format, signature,
/// expiry. `now` is this node's clock in ms since the epoch.
pub fn check(
    bytes: &[u8],
    limits: &IntakeLimits,
    now: u64,
    skew_ms: u64,
) -> Result<Particle, Rejection> {
    if bytes.len() > limits.wire {
        return Err(Rejection::TooLarge {
            what: "particle",
            actual: bytes.len(),
            limit: limits.wire,
        });
    }
    let particle = Particle::decode(bytes)?;
    check_sizes(&particle, limits)?;
    check_signature(&particle)?;
    check_expiry(&particle, now, skew_ms)?;
    Ok(particle)
}

/// The script and data size checks alone.
pub fn check_sizes(particle: &Particle, limits: &IntakeLimits) -> Result<(), Rejection> {
    for (what, actual, limit) in [
        ("script", particle.script.len(), limits.script),
        ("data", particle.data.len(), limits.data),
    ] {
        if actual > limit {
            return Err(Rejection::TooLarge {
                what,
                actual,
                limit,
            });
        }
    }
    Ok(())
}

/// The signature check alone.
pub fn check_signature(particle: &Particle) -> Result<(), Rejection> {
    let key = public_key_of_peer_id(&particle.init_peer_id)
        .ok_or_else(|| Rejection::UnknownInitPeer(particle.init_peer_id.clone()))?;
    if particle.verify(&key) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

/// The expiry check alone: expired once `timestamp + ttl + skew < now`.
pub fn check_expiry(particle: &Particle, now: u64, skew_ms: u64) -> Result<(), Rejection> {
    let Some(deadline) = particle.deadline() else {
        return Err(Rejection::Expired {
            deadline: u64::MAX,
            ago_ms: 0,
        });
    };
    if deadline.saturating_add(skew_ms) < now {
        return Err(Rejection::Expired {
            deadline,
            ago_ms: now - deadline,
        });
    }
    if particle.timestamp > now.saturating_add(skew_ms) {
        return Err(Rejection::FromTheFuture {
            ahead_ms: particle.timestamp - now,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn signed() -> (NodeKey, Particle) {
        let key = NodeKey::from_secret([3; 32]);
        let mut p = Particle::new_signed(&key, "p-1".into(), NOW, 7_000, "(null)".into());
        p.data = vec![1, 2, 3];
        (key, p)
    }

    fn check_now(bytes: &[u8]) -> Result<Particle, Rejection> {
        check(
            bytes,
            &IntakeLimits::REFERENCE,
            NOW + 1,
            DEFAULT_CLOCK_SKEW_MS,
        )
    }

    #[test]
    fn a_signed_particle_round_trips_and_passes() {
        let (_, p) = signed();
        let bytes = p.encode();
        assert_eq!(bytes[0], 0x88, "a map of 8 entries");
        assert_eq!(&bytes[1..17], b"\xa6action\xa8Particle");
        assert_eq!(check_now(&bytes), Ok(p));
    }

    #[test]
    fn data_is_not_signed() {
        let (_, mut p) = signed();
        p.data = b"rewritten by a hop".to_vec();
        assert!(check_now(&p.encode()).is_ok());
    }

    #[test]
    fn every_signed_field_is_covered() {
        let (_, p) = signed();
        let edits: [fn(&mut Particle); 5] = [
            |p| p.id.push('x'),
            |p| p.timestamp += 1,
            |p| p.ttl += 1,
            |p| p.script.push(' '),
            |p| p.signature[0] ^= 1,
        ];
        for edit in edits {
            let mut q = p.clone();
            edit(&mut q);
            assert_eq!(check_now(&q.encode()), Err(Rejection::BadSignature));
        }
        let mut q = p.clone();
        q.init_peer_id = NodeKey::from_secret([4; 32]).peer_id().to_owned();
        assert_eq!(check_now(&q.encode()), Err(Rejection::BadSignature));
        q.init_peer_id = "12D3KooW".into();
        assert!(matches!(
            check_now(&q.encode()),
            Err(Rejection::UnknownInitPeer(_))
        ));
        q = p.clone();
        q.signature.pop();
        assert_eq!(check_now(&q.encode()), Err(Rejection::BadSignature));
    }

    #[test]
    fn sizes_are_checked_first() {
        let (_, mut p) = signed();
        p.signature = vec![0; 64]; // a bad signature, but sizes come first
        let limits = IntakeLimits {
            wire: 1 << 20,
            script: 3,
            data: 1 << 20,
        };
        let err = check(&p.encode(), &limits, NOW, 0).unwrap_err();
        assert_eq!(err.kind(), "too_large");
        assert!(err.to_string().contains("script is 6 bytes"), "{err}");
        let limits = IntakeLimits { wire: 10, ..limits };
        assert!(
            check(&p.encode(), &limits, NOW, 0)
                .unwrap_err()
                .to_string()
                .starts_with("particle is")
        );
    }

    #[test]
    fn expiry_allows_the_documented_skew() {
        let (_, p) = signed();
        let bytes = p.encode();
        let deadline = NOW + 7_000;
        let skew = DEFAULT_CLOCK_SKEW_MS;
        let limits = IntakeLimits::REFERENCE;
        assert!(check(&bytes, &limits, deadline + skew, skew).is_ok());
        assert_eq!(
            check(&bytes, &limits, deadline + skew + 1, skew),
            Err(Rejection::Expired {
                deadline,
                ago_ms: skew + 1
            })
        );
        assert!(check(&bytes, &limits, NOW - skew, skew).is_ok());
        assert_eq!(
            check(&bytes, &limits, NOW - skew - 1, skew),
            Err(Rejection::FromTheFuture { ahead_ms: skew + 1 })
        );
    }

    #[test]
    fn expiry_is_checked_after_the_signature() {
        let (_, mut p) = signed();
        p.signature[5] ^= 0xff;
        let far_future = NOW + 1_000_000;
        assert_eq!(
            check(&p.encode(), &IntakeLimits::REFERENCE, far_future, 0),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn garbage_other_actions_and_a_zero_ttl_are_refused() {
        for bytes in [
            &b"\x00\x01"[..],
            &[],
            b"\x92\x01\x80",
            b"\x81\xa6action\xa8Particle",
        ] {
            assert!(
                matches!(check_now(bytes), Err(Rejection::Malformed(_))),
                "{bytes:?}"
            );
        }
        let (_, p) = signed();
        let edited = |action: &str, ttl: u32, extra: Option<u8>| {
            #[derive(Serialize)]
            struct Edited<'a> {
                action: &'a str,
                id: &'a str,
                init_peer_id: &'a str,
                timestamp: u64,
                ttl: u32,
                script: &'a str,
                #[serde(with = "serde_bytes")]
                signature: &'a [u8],
                #[serde(with = "serde_bytes")]
                data: &'a [u8],
                #[serde(skip_serializing_if = "Option::is_none")]
                unknown: Option<u8>,
            }
            rmp_serde::to_vec_named(&Edited {
                action,
                id: &p.id,
                init_peer_id: &p.init_peer_id,
                timestamp: p.timestamp,
                ttl,
                script: &p.script,
                signature: &p.signature,
                data: &p.data,
                unknown: extra,
            })
            .unwrap()
        };
        assert_eq!(edited("Particle", p.ttl, None), p.encode());
        let err = check_now(&edited("Upgrade", p.ttl, None)).unwrap_err();
        assert!(err.to_string().contains("action is `Upgrade`"), "{err}");
        assert_eq!(
            check_now(&edited("Particle", p.ttl, Some(1))),
            Ok(p.clone())
        );
        let err = check_now(&edited("Particle", 0, None)).unwrap_err();
        assert!(err.to_string().contains("ttl is 0"), "{err}");
    }

    #[test]
    fn the_signed_bytes_match_the_field_test_vector() {
        let p = Particle {
            id: "2883f959-e9e7-4843-8c37-205d393ca372".into(),
            init_peer_id: String::new(),
            timestamp: 1_696_934_545_662,
            ttl: 7_000,
            script: "abc".into(),
            signature: Vec::new(),
            data: Vec::new(),
        };
        // base64 `Mjg4M2Y5NTktZTllNy00ODQzLThjMzctMjA1ZDM5M2NhMzcy/kguGYsBAABYGwAAYWJj`.
        let mut expected = b"2883f959-e9e7-4843-8c37-205d393ca372".to_vec();
        expected.extend_from_slice(&[0xfe, 0x48, 0x2e, 0x19, 0x8b, 0x01, 0, 0]);
        expected.extend_from_slice(&[0x58, 0x1b, 0, 0]);
        expected.extend_from_slice(b"abc");
        assert_eq!(p.signed_bytes(), expected);
        let secret = [9; 32];
        let public = braid_interpreter::public_key_of(&secret);
        let mut signed = p.clone();
        signed.signature = p.sign(&secret).to_vec();
        assert!(signed.verify(&public));
        assert!(!signed.verify(&braid_interpreter::public_key_of(&[8; 32])));
        signed.ttl += 1;
        assert!(!signed.verify(&public));
    }

    /// One particle as `@fluencelabs/js-client` 0.9.0 sent it (`fixtures/interop/`):
    /// `signature` and `data` as arrays of integers.
    const JS_CLIENT_FRAME: &[u8] =
        include_bytes!("../../fixtures/interop/js-client-0.9.0-particle-frame.bin");
    /// The Ed25519 public key inside the frame's init peer id,
    /// `12D3KooWHHA75eHnfbqJrnWZR4wrh7Bv7XxiFhytwfYHWAxai9tf` (braid-net's tests check
    /// this against libp2p's reading of the id).
    pub(crate) const JS_CLIENT_KEY: &str =
        "6eded9b814a45bb9b9e039954e71cc9785bc6807873203f2eefb8d9182b8d06c";

    #[test]
    fn the_js_client_frame_decodes_and_its_signature_verifies() {
        let (length, at) = crate::decode_length_prefix(JS_CLIENT_FRAME, 100 << 20)
            .unwrap()
            .unwrap();
        assert_eq!((length, at), (899, 2));
        let body = &JS_CLIENT_FRAME[at..];
        assert_eq!(&body[..2], &[0x81, 0x04]);
        let p = Particle::decode(&body[2..]).unwrap();
        assert_eq!(p.id, "b791d8e3-bd04-4a9e-8577-8c4c6b851464");
        assert_eq!(
            p.init_peer_id,
            "12D3KooWHHA75eHnfbqJrnWZR4wrh7Bv7XxiFhytwfYHWAxai9tf"
        );
        assert_eq!(p.ttl, 4_000);
        assert!(p.script.starts_with("(xor (seq (call \"12D3KooWRaw"));
        assert_eq!(p.signature.len(), 64);
        assert_eq!(p.data.len(), 317);
        let mut key = [0u8; 32];
        for (byte, pair) in key.iter_mut().zip(JS_CLIENT_KEY.as_bytes().chunks(2)) {
            *byte = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
        }
        assert!(p.verify(&key));
        // What braid writes back has the same keys, byte fields as `bin`.
        let again = p.encode();
        assert_eq!(Particle::decode(&again), Ok(p.clone()));
        assert!(
            again.len() < body.len() - 2,
            "bin is shorter than integer arrays"
        );
    }

    #[test]
    fn byte_fields_may_arrive_as_arrays_of_numbers() {
        // The JS client writes `signature` and `data` as arrays of small integers.
        #[derive(Serialize)]
        struct Loose<'a> {
            action: &'a str,
            id: &'a str,
            init_peer_id: &'a str,
            timestamp: u64,
            ttl: u32,
            script: &'a str,
            signature: Vec<u8>,
            data: Vec<u8>,
        }
        let (_, p) = signed();
        let loose = Loose {
            action: "Particle",
            id: &p.id,
            init_peer_id: &p.init_peer_id,
            timestamp: p.timestamp,
            ttl: p.ttl,
            script: &p.script,
            signature: p.signature.clone(),
            data: p.data.clone(),
        };
        let bytes = rmp_serde::to_vec_named(&loose).unwrap();
        assert_eq!(check_now(&bytes), Ok(p));
    }
}
