//! A node's identity: its Ed25519 key pair and the peer id derived from the public key.
//!
//! Peer ids are libp2p peer ids, as every Aqua peer uses them (`12D3KooW…`: base58 of
//! the identity multihash of the protobuf-encoded Ed25519 public key,
//! [`braid_interpreter::peer_id_of`]), so anyone holding a peer id holds the key that
//! verifies that peer's signatures: no directory is needed to check a particle's
//! signature against its init peer.

use braid_interpreter::peer_id_of;
use ed25519_dalek::{Signer, SigningKey};

/// An Ed25519 key pair and the peer id it gives. Made from a secret the caller supplies
/// (the host draws fresh ones from the operating system).
#[derive(Clone)]
pub struct NodeKey {
    secret: [u8; 32],
    public: [u8; 32],
    peer_id: String,
    /// The key pair ready to sign: deriving the public key from the secret again for
    /// each signature costs as much as a third of the signature.
    signing: SigningKey,
}

impl NodeKey {
    /// The key pair of this 32-byte Ed25519 secret.
    pub fn from_secret(secret: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&secret);
        let public = signing.verifying_key().to_bytes();
        Self {
            secret,
            public,
            peer_id: peer_id_of(&public),
            signing,
        }
    }

    /// The Ed25519 signature of `message` with this key pair.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The secret key bytes (passed to `invoke`, which signs this peer's results).
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The public key.
    pub fn public(&self) -> &[u8; 32] {
        &self.public
    }

    /// The peer id: the libp2p peer id of the public key.
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

/// The Ed25519 public key a libp2p peer id stands for, or `None` if the text is not
/// the peer id of an Ed25519 key.
pub fn public_key_of_peer_id(peer_id: &str) -> Option<[u8; 32]> {
    braid_interpreter::public_key_of_peer_id(peer_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_round_trips_to_the_public_key() {
        let key = NodeKey::from_secret([7; 32]);
        assert!(key.peer_id().starts_with("12D3KooW"));
        assert_eq!(public_key_of_peer_id(key.peer_id()), Some(*key.public()));
        assert!(!format!("{key:?}").contains(&format!("{:?}", key.secret())));
    }

    #[test]
    fn peer_ids_are_the_references() {
        // The secret sha256("A") and its peer id as the oracle's `peerids.py` (and
        // libp2p) derive it.
        let hex = "559aead08264d5795d3909718cdd05abd49572e84fe55590eef31a88a08fdffd";
        let mut secret = [0u8; 32];
        for (i, b) in secret.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        let key = NodeKey::from_secret(secret);
        assert_eq!(
            key.peer_id(),
            "12D3KooWNJFKt8hyd7W9PV466DwJ8yh5qeX2Ma3n3o26akpAHtCi"
        );
        assert_eq!(public_key_of_peer_id(key.peer_id()), Some(*key.public()));
    }

    #[test]
    fn other_texts_are_not_peer_ids() {
        for text in [
            "",
            "braid-",
            "braid-00",
            "12D3KooW",
            "12D3KooWBM3SdXWqGaawQDGQ6JprtwswEg3FWGvGhmgmMez1vRbr0",
            &format!("braid-{}", "0".repeat(64)),
            // An RSA-style (non identity multihash) id.
            "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
        ] {
            assert_eq!(public_key_of_peer_id(text), None, "{text}");
        }
    }
}
