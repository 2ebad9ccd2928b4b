//! A node's identity: its Ed25519 key pair and the peer id derived from the public key.
//!
//! Peer ids are braid's text form of a public key (`braid-` and the key's 64 lowercase
//! hex digits, [`braid_interpreter::peer_id_of`]), so anyone holding a peer id holds
//! the key that verifies that peer's signatures: no directory is needed to check a
//! particle's signature against its init peer.

use braid_interpreter::{peer_id_of, public_key_of};

/// The prefix of braid peer ids.
const PEER_ID_PREFIX: &str = "braid-";

/// An Ed25519 key pair and the peer id it gives. Made from a secret the caller supplies
/// (the host draws fresh ones from the operating system).
#[derive(Clone)]
pub struct NodeKey {
    secret: [u8; 32],
    public: [u8; 32],
    peer_id: String,
}

impl NodeKey {
    /// The key pair of this 32-byte Ed25519 secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let public = public_key_of(&secret);
        Self {
            secret,
            public,
            peer_id: peer_id_of(&public),
        }
    }

    /// The secret key bytes (passed to `invoke`, which signs this peer's results).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The peer id: `braid-` and the public key in hex.
    pub fn peer_id(&self) -> &str {
        &self.peer_id
    }
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secret key bytes.
        f.debug_struct("NodeKey")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

/// The public key a braid peer id stands for, or `None` if the text is not one.
pub fn public_key_of_peer_id(peer_id: &str) -> Option<[u8; 32]> {
    let hex = peer_id.strip_prefix(PEER_ID_PREFIX)?;
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (byte, pair) in key.iter_mut().zip(hex.as_bytes().chunks(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_round_trips_to_the_public_key() {
        let key = NodeKey::from_secret([7; 32]);
        assert!(key.peer_id().starts_with("braid-"));
        assert_eq!(public_key_of_peer_id(key.peer_id()), Some(*key.public()));
        assert!(!format!("{key:?}").contains(&format!("{:?}", key.secret())));
    }

    #[test]
    fn other_texts_are_not_peer_ids() {
        for text in [
            "",
            "braid-",
            "braid-00",
            "12D3KooWBM3SdXWqGaawQDGQ6JprtwswEg3FWGvGhmgmMez1vRbR",
            &format!("braid-{}", "A".repeat(64)),
            &format!("braid-{}", "0".repeat(66)),
        ] {
            assert_eq!(public_key_of_peer_id(text), None, "{text}");
        }
    }
}
