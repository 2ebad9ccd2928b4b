//! A node's set of signatures already checked, shared by its invoke threads: the
//! interpreter's [`SignatureCache`], bounded, with counters of the Ed25519 work done.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use braid_interpreter::{SignatureCache, SignatureOperation};

/// Entries in two generations of at most `capacity` each: when the newer is full it
/// becomes the older and the older is forgotten, so the set stays bounded and keeps
/// what was used recently (an entry found in the older generation moves to the newer).
pub(crate) struct SignatureSet {
    generations: Mutex<Generations>,
    capacity: usize,
    verified: AtomicU64,
    signed: AtomicU64,
}

#[derive(Default)]
struct Generations {
    newer: HashSet<[u8; 32]>,
    older: HashSet<[u8; 32]>,
}

impl SignatureSet {
    /// A set of at most about `2 * capacity` entries (32 bytes each).
    pub(crate) fn new(capacity: usize) -> Self {
        SignatureSet {
            generations: Mutex::new(Generations::default()),
            capacity: capacity.max(1),
            verified: AtomicU64::new(0),
            signed: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.generations
            .lock()
            .expect("the signature set's lock is never poisoned")
    }

    /// Data signatures verified (not found here) and made by this node's invocations.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.verified.load(Ordering::Relaxed),
            self.signed.load(Ordering::Relaxed),
        )
    }
}

impl Generations {
    fn insert(&mut self, entry: [u8; 32], capacity: usize) {
        if self.newer.len() >= capacity {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(entry);
    }
}

impl SignatureCache for SignatureSet {
    fn contains(&self, entry: &[u8; 32]) -> bool {
        let mut generations = self.lock();
        if generations.newer.contains(entry) {
            return true;
        }
        let found = generations.older.remove(entry);
        if found {
            generations.insert(*entry, self.capacity);
        }
        found
    }

    fn insert(&self, entry: [u8; 32]) {
        self.lock().insert(entry, self.capacity);
    }

    fn performed(&self, operation: SignatureOperation) {
        let counter = match operation {
            SignatureOperation::Verified => &self.verified,
            SignatureOperation::Signed => &self.signed,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_two_generations_and_what_is_used() {
        let set = SignatureSet::new(2);
        let entry = |n: u8| [n; 32];
        set.insert(entry(1));
        set.insert(entry(2));
        set.insert(entry(3)); // 1 and 2 become the older generation
        assert!(set.contains(&entry(1))); // found in the older: moves to the newer
        set.insert(entry(4)); // the newer {3, 1} is full: 2 is forgotten
        assert!(!set.contains(&entry(2)));
        for n in [1, 3, 4] {
            assert!(set.contains(&entry(n)), "entry {n}");
        }
    }

    #[test]
    fn counts_what_it_is_told() {
        let set = SignatureSet::new(8);
        set.performed(SignatureOperation::Verified);
        set.performed(SignatureOperation::Verified);
        set.performed(SignatureOperation::Signed);
        assert_eq!(set.counts(), (2, 1));
    }
}
