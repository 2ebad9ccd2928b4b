//! A node's intake of a particle from the network: decoding the wire form and the
//! checks in order (sizes, format, signature, expiry).

use braid_wire::{DEFAULT_CLOCK_SKEW_MS, IntakeLimits, Particle, check};

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
