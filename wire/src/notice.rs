//! braid's notice protocol (`/braid/notice/1.0.0`): what braid peers tell each other
//! about particles beyond the field's particle protocol, which other peers simply do
//! not speak. One notice per stream, framed as an unsigned-varint length and a
//! MessagePack map tagged by `kind`: `{kind: "undeliverable", init_peer_id,
//! particle_id, signature, from, to, reason}`.

use serde::{Deserialize, Serialize};

use crate::length_prefix::{decode_length_prefix, encode_varint};
use crate::{Rejection, Undeliverable};

/// The libp2p protocol name of braid's notices.
pub const NOTICE_PROTOCOL: &str = "/braid/notice/1.0.0";
/// The largest notice frame read, counted after the length prefix.
pub const MAX_NOTICE_BYTES: usize = 64 << 10;

/// One notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Notice {
    /// A peer gave up delivering a particle (for its init peer).
    Undeliverable(Undeliverable),
}

impl Notice {
    /// The MessagePack map.
    pub fn encode(&self) -> Vec<u8> {
        // Invariant: strings and bytes always serialize.
        rmp_serde::to_vec_named(self).expect("a notice serializes")
    }

    /// Reads the MessagePack map.
    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        rmp_serde::from_slice(bytes).map_err(|e| Rejection::Malformed(format!("notice: {e}")))
    }

    /// The notice as one frame: its length as an unsigned varint, then the map.
    pub fn encode_frame(&self) -> Vec<u8> {
        let body = self.encode();
        let mut out = Vec::with_capacity(body.len() + 3);
        encode_varint(body.len() as u64, &mut out);
        out.extend_from_slice(&body);
        out
    }

    /// Reads exactly one whole frame of at most [`MAX_NOTICE_BYTES`].
    pub fn decode_frame(frame: &[u8]) -> Result<Self, Rejection> {
        let Some((length, at)) = decode_length_prefix(frame, MAX_NOTICE_BYTES)? else {
            return Err(Rejection::Malformed(
                "the notice ends inside its length prefix".into(),
            ));
        };
        if frame.len() - at != length {
            return Err(Rejection::Malformed(format!(
                "the notice announces {length} bytes but carries {}",
                frame.len() - at
            )));
        }
        Self::decode(&frame[at..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_tagged_by_kind() {
        let notice = Notice::Undeliverable(Undeliverable {
            init_peer_id: "a".into(),
            particle_id: "p-1".into(),
            signature: vec![7; 64],
            from: "b".into(),
            to: "c".into(),
            reason: "no route".into(),
        });
        let bytes = notice.encode();
        assert_eq!(&bytes[1..6], b"\xa4kind");
        assert_eq!(&bytes[6..20], b"\xadundeliverable");
        assert_eq!(Notice::decode(&bytes), Ok(notice.clone()));
        assert_eq!(Notice::decode_frame(&notice.encode_frame()), Ok(notice));
        assert!(Notice::decode(b"\x81\xa4kind\xa5other").is_err());
        assert!(Notice::decode_frame(b"\x05\x01").is_err());
    }
}
