//! The particle protocol's frame (`/fluence/particle/2.0.0`, one frame per stream), as
//! Nox and the JS client write it:
//!
//! ```text
//! unsigned varint L | 81 04 (multicodec 0x0201) | MessagePack map   (L = 2 + map bytes)
//! ```
//!
//! The length covers the multicodec and the map; it is at most 100 MiB by default and
//! is checked against the caller's limit before the rest is read.

use crate::length_prefix::{decode_length_prefix, encode_varint};
use crate::{Particle, Rejection};

/// The libp2p protocol name of the particle protocol.
pub const PARTICLE_PROTOCOL: &str = "/fluence/particle/2.0.0";
/// braid's own particle protocol: the same frames, many after one another on one
/// long-lived stream per connection and direction. braid peers offer it first and fall
/// back to [`PARTICLE_PROTOCOL`] when the remote does not speak it.
pub const PARTICLE_STREAM_PROTOCOL: &str = "/braid/particle-stream/1.0.0";
/// The multicodec 0x0201 as an unsigned varint: the first two bytes of a frame's body.
pub const PARTICLE_MULTICODEC: [u8; 2] = [0x81, 0x04];
/// The field's frame limit: 100 MiB, counted from the multicodec on.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 << 20;

/// A particle as one frame of the particle protocol.
pub fn encode_particle_frame(particle: &Particle) -> Vec<u8> {
    frame_of_encoded(&particle.encode())
}

/// An already encoded particle ([`Particle::encode`]) as one frame.
pub fn frame_of_encoded(encoded: &[u8]) -> Vec<u8> {
    let body = PARTICLE_MULTICODEC.len() + encoded.len();
    let mut out = Vec::with_capacity(body + 5);
    encode_varint(body as u64, &mut out);
    out.extend_from_slice(&PARTICLE_MULTICODEC);
    out.extend_from_slice(encoded);
    out
}

/// The encoded particle inside a frame's body (what follows the length prefix): the
/// body without its multicodec.
pub fn particle_of_frame_body(body: &[u8]) -> Result<&[u8], Rejection> {
    body.strip_prefix(&PARTICLE_MULTICODEC).ok_or_else(|| {
        Rejection::Malformed(
            "the frame does not start with the particle multicodec 0x0201 (81 04)".into(),
        )
    })
}

/// Reads exactly one whole frame: the length prefix (within `limit`), the multicodec
/// and the particle. Checks only the format, as [`Particle::decode`] does.
pub fn decode_particle_frame(frame: &[u8], limit: usize) -> Result<Particle, Rejection> {
    let Some((length, at)) = decode_length_prefix(frame, limit)? else {
        return Err(Rejection::Malformed(
            "the frame ends inside its length prefix".into(),
        ));
    };
    let body = &frame[at..];
    if body.len() != length {
        return Err(Rejection::Malformed(format!(
            "the frame announces {length} bytes but carries {}",
            body.len()
        )));
    }
    Particle::decode(particle_of_frame_body(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeKey;

    #[test]
    fn a_frame_round_trips_and_its_layout_is_the_fields() {
        let key = NodeKey::from_secret([5; 32]);
        let mut p = Particle::new_signed(&key, "f-1".into(), 1_700_000_000_000, 9, "(null)".into());
        p.data = vec![0; 300];
        let frame = encode_particle_frame(&p);
        let encoded = p.encode();
        let body = encoded.len() + 2;
        assert_eq!(frame[0] as usize, 0x80 | (body & 0x7f));
        assert_eq!(frame[1] as usize, body >> 7);
        assert_eq!(&frame[2..4], &PARTICLE_MULTICODEC);
        assert_eq!(&frame[4..], &encoded[..]);
        assert_eq!(
            decode_particle_frame(&frame, DEFAULT_MAX_FRAME_BYTES),
            Ok(p)
        );
        assert_eq!(
            decode_particle_frame(&frame, body - 1).unwrap_err().kind(),
            "too_large"
        );
        for bad in [&frame[..frame.len() - 1], &frame[..1], &[]] {
            assert!(matches!(
                decode_particle_frame(bad, DEFAULT_MAX_FRAME_BYTES),
                Err(Rejection::Malformed(_))
            ));
        }
        let mut other = frame.clone();
        other[2] = 0x80;
        let err = decode_particle_frame(&other, DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        assert!(err.to_string().contains("multicodec"), "{err}");
    }
}
