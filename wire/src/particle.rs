//! Particles: what travels between peers, its wire form, and the checks a node makes
//! before it lets one in.
//!
//! Wire form: MessagePack of `[FORMAT_VERSION, {id, init_peer_id, timestamp, ttl,
//! script, signature, data}]` (fields by name, byte fields as `bin`). The signature is
//! the init peer's Ed25519 signature over [`ParticleIdentity`] (id, init peer, timestamp,
//! ttl and a hash of the script); `data` is not signed, as every hop rewrites it (its
//! integrity is the interpreter's job).
//!
//! Intake order: size limits on the wire bytes, decoding, size limits on script and
//! data, the signature against the init peer's key (decoded from its peer id), then
//! expiry against this node's clock.

use braid_interpreter::ParticleIdentity;
use serde::{Deserialize, Serialize};

use crate::identity::{NodeKey, public_key_of_peer_id};

/// The version of the particle wire format written first in every encoded particle.
pub const FORMAT_VERSION: u8 = 1;

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
        particle.signature = particle.identity().sign(key.secret()).to_vec();
        particle
    }

    /// What the init peer signs.
    pub fn identity(&self) -> ParticleIdentity<'_> {
        ParticleIdentity {
            id: &self.id,
            init_peer_id: &self.init_peer_id,
            timestamp: self.timestamp,
            ttl: self.ttl,
            script: &self.script,
        }
    }

    /// When the particle expires (ms since the epoch); `None` if that overflows.
    pub fn deadline(&self) -> Option<u64> {
        self.timestamp.checked_add(u64::from(self.ttl))
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: serializing plain strings, integers and bytes cannot fail.
        rmp_serde::to_vec_named(&(FORMAT_VERSION, self)).expect("a particle serializes")
    }

    /// Reads the wire form; checks only the format, not the contents.
    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        let (version, particle): (u8, Particle) = rmp_serde::from_slice(bytes).map_err(|e| {
            match rmp_serde::from_slice::<(u8, serde::de::IgnoredAny)>(bytes) {
                Ok((v, _)) if v != FORMAT_VERSION => Rejection::UnsupportedVersion(v),
                _ => Rejection::Malformed(e.to_string()),
            }
        })?;
        if version != FORMAT_VERSION {
            return Err(Rejection::UnsupportedVersion(version));
        }
        Ok(particle)
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
        /// `particle`, `script` or `data`.
        what: &'static str,
        /// Its size.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a particle in the wire format.
    #[error("malformed particle: {0}")]
    Malformed(String),
    /// A wire format version this node does not read.
    #[error("particle format version {0} is not supported; this node reads version 1")]
    UnsupportedVersion(u8),
    /// The init peer id is not a braid key id, so the signature cannot be checked.
    #[error("init peer id `{0}` is not a braid peer id (`braid-` and 64 hex digits)")]
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
}

impl Rejection {
    /// A short stable name for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::TooLarge { .. } => "too_large",
            Rejection::Malformed(_) => "malformed",
            Rejection::UnsupportedVersion(_) => "unsupported_version",
            Rejection::UnknownInitPeer(_) => "unknown_init_peer",
            Rejection::BadSignature => "bad_signature",
            Rejection::Expired { .. } => "expired",
            Rejection::FromTheFuture { .. } => "from_the_future",
            Rejection::Busy(_) => "busy",
            Rejection::MailboxFull => "mailbox_full",
            Rejection::Stopped => "stopped",
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
    let signature: [u8; 64] = particle
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| Rejection::BadSignature)?;
    if particle.identity().verify(&key, &signature) {
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
        assert_eq!(bytes[0], 0x92, "a two-element array");
        assert_eq!(bytes[1], FORMAT_VERSION);
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
    fn garbage_and_other_versions_are_refused() {
        assert!(matches!(
            check_now(b"\x00\x01"),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(check_now(&[]), Err(Rejection::Malformed(_))));
        let (_, p) = signed();
        let bytes = rmp_serde::to_vec_named(&(2u8, &p)).unwrap();
        assert_eq!(check_now(&bytes), Err(Rejection::UnsupportedVersion(2)));
    }

    #[test]
    fn byte_fields_may_arrive_as_arrays_of_numbers() {
        // The JS client writes `signature` and `data` as arrays of small integers.
        #[derive(Serialize)]
        struct Loose<'a> {
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
            id: &p.id,
            init_peer_id: &p.init_peer_id,
            timestamp: p.timestamp,
            ttl: p.ttl,
            script: &p.script,
            signature: p.signature.clone(),
            data: p.data.clone(),
        };
        let bytes = rmp_serde::to_vec_named(&(FORMAT_VERSION, loose)).unwrap();
        assert_eq!(check_now(&bytes), Ok(p));
    }
}
