//! A hasher for keys no one chooses freely: addresses of live items and content ids
//! (blake3 digests, whose first eight bytes are as well spread as all 32). One multiply
//! per word, deterministic (no random keys in the core). Keys an attacker writes, such
//! as peer ids, keep the standard hasher.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub(crate) struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        // The product's well-mixed high bits become the low bits buckets are taken from.
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.write_u64(u64::from_le_bytes(word));
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }
}

/// A map keyed by addresses or content ids.
pub(crate) type MixMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn aligned_addresses_spread_over_the_low_bits() {
        let build = BuildHasherDefault::<MixHasher>::default();
        // 1024 addresses 16 bytes apart must fill most of 1024 buckets.
        let buckets: std::collections::BTreeSet<u64> = (0..1024usize)
            .map(|i| build.hash_one(0x5555_0000usize + 16 * i) & 1023)
            .collect();
        assert!(buckets.len() > 600, "only {} buckets used", buckets.len());
    }

    #[test]
    fn content_ids_are_told_apart_by_their_first_bytes() {
        let build = BuildHasherDefault::<MixHasher>::default();
        let a = [1u8; 32];
        let mut b = a;
        b[0] = 2;
        assert_ne!(build.hash_one(a), build.hash_one(b));
    }
}
