//! A node's intake of a particle from the network: decoding the wire form and the
//! checks in order (sizes, format, signature, expiry); and the particle protocol's
//! frame around it (`/fluence/particle/2.0.0`: varint length, multicodec, map).

use braid_wire::{
    DEFAULT_CLOCK_SKEW_MS, DEFAULT_MAX_FRAME_BYTES, IntakeLimits, Particle, check,
    decode_length_prefix, decode_particle_frame, encode_particle_frame,
};

/// The clock the intake checks run with (14 November 2023), as in the seeds.
pub const NOW: u64 = 1_700_000_000_000;

/// The oracle: no panic at any clock; decoding is deterministic; a decoded particle
/// encodes to bytes that decode to the same particle, and encoding is a fixed point;
/// a particle let in is exactly the decoded one.
pub fn particle(bytes: &[u8]) {
    let decoded = Particle::decode(bytes);
    assert_eq!(
        decoded,
        Particle::decode(bytes),
        "decoding is not deterministic"
    );
    for now in [0, NOW, u64::MAX] {
        if let Ok(admitted) = check(bytes, &IntakeLimits::REFERENCE, now, DEFAULT_CLOCK_SKEW_MS) {
            assert_eq!(
                Ok(&admitted),
                decoded.as_ref(),
                "intake changed the particle"
            );
        }
    }
    let tight = IntakeLimits {
        wire: 64,
        script: 16,
        data: 16,
    };
    let _ = check(bytes, &tight, NOW, 0);
    if let Ok(particle) = decoded {
        let encoded = particle.encode();
        let again = Particle::decode(&encoded).expect("an encoded particle decodes");
        assert_eq!(again, particle, "encode/decode changed the particle");
        assert_eq!(again.encode(), encoded, "encoding is not a fixed point");
        let _ = particle.deadline();
    }
}

/// The frame limits the length prefix is checked against: none, tiny, small, the
/// field's 100 MiB, all.
const FRAME_LIMITS: [usize; 5] = [0, 3, 1024, DEFAULT_MAX_FRAME_BYTES, usize::MAX];

/// The `particle_frame` oracle, on the bytes of one particle-protocol stream: the
/// length prefix decodes to a length within each limit or an error, never reading past
/// its 9 bytes; a prefix that decodes under a limit decodes the same under a larger
/// one; a frame that decodes re-encodes to a frame that decodes to the same particle,
/// and encoding is a fixed point; its particle goes through the [`particle`] oracle.
pub fn particle_frame(bytes: &[u8]) {
    let mut previous: Option<(usize, usize)> = None;
    for limit in FRAME_LIMITS {
        match decode_length_prefix(bytes, limit) {
            Ok(Some((length, at))) => {
                assert!(length <= limit, "a length over the limit was accepted");
                assert!((1..=braid_wire::MAX_VARINT_BYTES).contains(&at));
                if let Some(p) = previous {
                    assert_eq!(p, (length, at), "the prefix decodes differently");
                }
                previous = Some((length, at));
            }
            Ok(None) => assert!(bytes.len() < braid_wire::MAX_VARINT_BYTES),
            Err(_) => assert!(previous.is_none(), "a larger limit refused a prefix"),
        }
    }
    let decoded = decode_particle_frame(bytes, DEFAULT_MAX_FRAME_BYTES);
    assert_eq!(
        decoded,
        decode_particle_frame(bytes, DEFAULT_MAX_FRAME_BYTES),
        "decoding is not deterministic"
    );
    if let Ok(p) = decoded {
        let frame = encode_particle_frame(&p);
        let again = decode_particle_frame(&frame, DEFAULT_MAX_FRAME_BYTES)
            .expect("an encoded frame decodes");
        assert_eq!(again, p, "encode/decode changed the particle");
        assert_eq!(
            encode_particle_frame(&again),
            frame,
            "encoding is not a fixed point"
        );
        particle(&p.encode());
    }
}
