//! A node's identity: its key pair, drawn fresh from the operating system's random
//! number generator, and random particle ids.
//!
//! The key itself and its peer id (the libp2p peer id of the public key) are
//! [`braid_wire::NodeKey`], which is pure; this module adds what needs randomness. A
//! [`NodeKey`] derefs to the wire key, so it goes wherever one is asked for
//! (`Particle::new_signed`).

use crate::error::HostError;

/// An Ed25519 key pair and the peer id it gives.
#[derive(Clone)]
pub struct NodeKey(braid_wire::NodeKey);

impl NodeKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, HostError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| HostError::Randomness(e.to_string()))?;
        Ok(Self::from_secret(secret))
    }

    /// The key pair of this 32-byte Ed25519 secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        NodeKey(braid_wire::NodeKey::from_secret(secret))
    }
}

impl std::ops::Deref for NodeKey {
    type Target = braid_wire::NodeKey;

    fn deref(&self) -> &braid_wire::NodeKey {
        &self.0
    }
}

impl From<braid_wire::NodeKey> for NodeKey {
    fn from(key: braid_wire::NodeKey) -> Self {
        NodeKey(key)
    }
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The wire key's Debug never prints secret key bytes.
        self.0.fmt(f)
    }
}

/// 16 random bytes as a UUID v4 text, the conventional particle id.
pub(crate) fn random_uuid() -> Result<String, HostError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| HostError::Randomness(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ() {
        let a = NodeKey::generate().unwrap();
        let b = NodeKey::generate().unwrap();
        assert_ne!(a.peer_id(), b.peer_id());
        assert!(!format!("{a:?}").contains(&format!("{:?}", a.secret())));
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let id = random_uuid().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, random_uuid().unwrap());
    }
}
