//! What a node reads from a TCP connection: the frame header, the message a frame
//! carries (and the particle in it), and the peer's handshake payload.

use braid_wire::frame::{HEADER_BYTES, encode_frame_header};
use braid_wire::{HandshakePayload, Message, decode_frame_header};

/// The frame limits the header is checked against: none, small, the reference's
/// 100 MiB, all.
const LIMITS: [usize; 4] = [0, 1024, 100 << 20, usize::MAX];

/// The `frame` oracle on a decrypted frame: 4 header bytes, then one message. A header
/// within a limit gives a length within it that encodes back to the same header; a
/// message decodes deterministically, re-encodes to bytes that decode to it (a fixed
/// point), and a particle it carries goes through the [`crate::particle`] oracle.
pub fn frame(input: &[u8]) {
    let (header, body) = input.split_at(HEADER_BYTES.min(input.len()));
    for limit in LIMITS {
        if let Ok(len) = decode_frame_header(header, limit) {
            assert!(len <= limit, "a header over the limit was accepted");
            assert_eq!(
                encode_frame_header(len).expect("a decoded length encodes"),
                header,
                "the header does not round-trip"
            );
        }
    }
    let message = Message::decode(body);
    assert_eq!(
        message,
        Message::decode(body),
        "decoding is not deterministic"
    );
    let Ok(message) = message else {
        return;
    };
    let encoded = message.encode();
    let again = Message::decode(&encoded).expect("an encoded message decodes");
    assert_eq!(again, message, "encode/decode changed the message");
    assert_eq!(again.encode(), encoded, "encoding is not a fixed point");
    if let Message::Particle { particle, .. } | Message::Forward { particle, .. } = &message {
        crate::particle(particle);
    }
}

/// The `handshake` oracle: 32 bytes of the Noise static key the connection saw, then
/// the peer's payload. Decoding is deterministic and round-trips; verifying never
/// panics and gives the same answer twice; a payload that verifies for one key does not
/// verify for another.
pub fn handshake(input: &[u8]) {
    let (noise, payload) = input.split_at(32.min(input.len()));
    let decoded = HandshakePayload::decode(payload);
    assert_eq!(
        decoded,
        HandshakePayload::decode(payload),
        "decoding is not deterministic"
    );
    let Ok(decoded) = decoded else {
        return;
    };
    let encoded = decoded.encode();
    let again = HandshakePayload::decode(&encoded).expect("an encoded payload decodes");
    assert_eq!(again, decoded, "encode/decode changed the payload");
    let verified = decoded.verify(noise);
    assert_eq!(
        verified,
        decoded.verify(noise),
        "verifying is not deterministic"
    );
    if verified.is_ok() {
        let mut other = noise.to_vec();
        other.push(0);
        assert!(
            decoded.verify(&other).is_err(),
            "a payload verified for two noise keys"
        );
    }
}
