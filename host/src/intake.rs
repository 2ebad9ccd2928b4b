//! Fair shares at intake: particle ids checked, particle slots shared out per init
//! peer and per sending peer, and the bytes of service-call arguments a particle and
//! the node may hold.
//!
//! A new key costs nothing, so a share per init peer alone would not stop a flood of
//! particles from fresh keys: the peer at the other end of the connection (the
//! *sender*) has a share too, and the transport bounds connections per IP and per
//! peer. A slot is taken when a particle is let in, before the transport is told the
//! particle was taken, and given back when its actor ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use braid_wire::{Particle, Rejection};

use crate::node::MAX_PARTICLE_ID_BYTES;

/// Refuses a particle id that is empty, longer than [`MAX_PARTICLE_ID_BYTES`] or has
/// a character that is not printable ASCII (a newline would forge a log line).
pub(crate) fn check_id(id: &str) -> Result<(), Rejection> {
    if id.is_empty() {
        return Err(Rejection::BadId("is empty".into()));
    }
    if id.len() > MAX_PARTICLE_ID_BYTES {
        return Err(Rejection::BadId(format!(
            "{} is {} bytes, over the limit of {MAX_PARTICLE_ID_BYTES}",
            escape_id(id),
            id.len()
        )));
    }
    if let Some(c) = id.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(Rejection::BadId(format!(
            "{} has the character {:?}; ids are printable ASCII",
            escape_id(id),
            c
        )));
    }
    Ok(())
}

/// An id as it may go into a log: quoted, escaped, and cut after 64 characters.
pub(crate) fn escape_id(id: &str) -> String {
    let cut: String = id.chars().take(64).collect();
    let more = if cut.len() < id.len() { "…" } else { "" };
    format!("\"{}\"{more}", cut.escape_default())
}

/// Who holds a particle slot, and the bytes of its script and data. The peers and
/// address are the keys of their shares' entries, shared: a flood of particles from
/// one peer holds one copy of its id.
#[derive(Debug)]
struct Holder {
    init_peer: Option<Arc<str>>,
    sender: Option<Arc<str>>,
    address: Option<Arc<str>>,
    bytes: usize,
}

/// Particles and bytes held.
#[derive(Debug, Default, Clone, Copy)]
struct Held {
    particles: usize,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Table {
    live: HashMap<(String, Vec<u8>), Holder>,
    per_init_peer: HashMap<Arc<str>, Held>,
    per_sender: HashMap<Arc<str>, Held>,
    per_address: HashMap<Arc<str>, Held>,
    bytes: usize,
}

/// Gives back what a map no longer needs after a burst (capacity is kept up to four
/// times what is held, so that steady traffic does not grow and shrink it each time).
pub(crate) fn shrink_after_burst<K: Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// The shares of [`Slots`]: particles, and bytes (script and data as they arrived).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shares {
    pub(crate) particles: usize,
    pub(crate) particles_per_init_peer: usize,
    pub(crate) particles_per_sender: usize,
    pub(crate) bytes: usize,
    pub(crate) bytes_per_init_peer: usize,
    pub(crate) bytes_per_sender: usize,
    pub(crate) particles_per_address: usize,
    pub(crate) bytes_per_address: usize,
}

/// The node's particle slots, by particle (id and signature), init peer and sender.
#[derive(Debug)]
pub(crate) struct Slots {
    table: Mutex<Table>,
    shares: Shares,
    /// The node's own peer id: its particles count only towards the node's totals.
    local: String,
}

impl Slots {
    pub(crate) fn new(shares: Shares, local: String) -> Self {
        Slots {
            table: Mutex::default(),
            shares,
            local,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Invariant: nothing panics while holding it (map updates only).
        self.table.lock().expect("the slots lock is never poisoned")
    }

    /// Takes a slot for `particle`, arrived from the peer `sender` over a connection
    /// from `address` (`None`: from this node, or from a transport that does not say),
    /// unless it holds one already. With `enforce_shares` false (particles resumed
    /// after a restart) only counts.
    pub(crate) fn take(
        &self,
        particle: &Particle,
        sender: Option<&str>,
        address: Option<&str>,
        enforce_shares: bool,
    ) -> Result<(), Rejection> {
        let key = (particle.id.clone(), particle.signature.clone());
        let mut guard = self.lock();
        let table = &mut *guard;
        if table.live.contains_key(&key) {
            return Ok(()); // it came back: its actor lives
        }
        let init_peer =
            (particle.init_peer_id != self.local).then_some(particle.init_peer_id.as_str());
        let sender = sender.filter(|s| *s != self.local);
        let size = particle.script.len() + particle.data.len();
        if enforce_shares {
            let s = &self.shares;
            if table.live.len() >= s.particles {
                return Err(Rejection::Busy(s.particles));
            }
            if table.bytes + size > s.bytes {
                return Err(Rejection::OverMemoryShare {
                    whose: "node",
                    peer: "in all".into(),
                    held: table.bytes,
                    size,
                    limit: s.bytes,
                });
            }
            for (whose, peer, counts, particles, bytes) in [
                (
                    "init peer",
                    &init_peer,
                    &table.per_init_peer,
                    s.particles_per_init_peer,
                    s.bytes_per_init_peer,
                ),
                (
                    "sender",
                    &sender,
                    &table.per_sender,
                    s.particles_per_sender,
                    s.bytes_per_sender,
                ),
                (
                    "address",
                    &address,
                    &table.per_address,
                    s.particles_per_address,
                    s.bytes_per_address,
                ),
            ] {
                let Some(peer) = *peer else { continue };
                let held = counts.get(peer).copied().unwrap_or_default();
                if held.particles >= particles {
                    return Err(Rejection::OverShare {
                        whose,
                        peer: peer.to_owned(),
                        limit: particles,
                    });
                }
                if held.bytes + size > bytes {
                    return Err(Rejection::OverMemoryShare {
                        whose,
                        peer: peer.to_owned(),
                        held: held.bytes,
                        size,
                        limit: bytes,
                    });
                }
            }
        }
        let mut holders = [init_peer, sender, address].into_iter();
        let mut count = |counts: &mut HashMap<Arc<str>, Held>| {
            let peer = holders.next().flatten()?;
            let shared = match counts.get_key_value(peer) {
                Some((shared, _)) => Arc::clone(shared),
                None => Arc::from(peer),
            };
            let held = counts.entry(Arc::clone(&shared)).or_default();
            held.particles += 1;
            held.bytes += size;
            Some(shared)
        };
        let holder = Holder {
            init_peer: count(&mut table.per_init_peer),
            sender: count(&mut table.per_sender),
            address: count(&mut table.per_address),
            bytes: size,
        };
        table.bytes += size;
        table.live.insert(key, holder);
        Ok(())
    }

    /// Gives back the slot of the particle `id` signed `signature` (nothing if it
    /// holds none).
    pub(crate) fn give_back(&self, id: &str, signature: &[u8]) {
        let mut guard = self.lock();
        let table = &mut *guard;
        let Some(holder) = table.live.remove(&(id.to_owned(), signature.to_vec())) else {
            return;
        };
        table.bytes -= holder.bytes;
        for (peer, counts) in [
            (holder.init_peer, &mut table.per_init_peer),
            (holder.sender, &mut table.per_sender),
            (holder.address, &mut table.per_address),
        ] {
            if let Some(peer) = peer
                && let Some(held) = counts.get_mut(&peer)
            {
                held.particles -= 1;
                held.bytes -= holder.bytes;
                if held.particles == 0 {
                    counts.remove(&peer);
                    shrink_after_burst(counts);
                }
            }
        }
        shrink_after_burst(&mut table.live);
    }

    /// Slots held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.lock().live.len()
    }
}

/// Bytes of call arguments in flight.
#[derive(Debug)]
pub(crate) struct CallBytes {
    held: AtomicUsize,
    limit: usize,
}

impl CallBytes {
    pub(crate) fn new(limit: usize) -> Self {
        CallBytes {
            held: AtomicUsize::new(0),
            limit,
        }
    }

    /// Takes `n` bytes if that keeps the node within its limit.
    pub(crate) fn take(&self, n: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held.saturating_add(n) <= self.limit).then_some(held + n)
            })
            .is_ok()
    }

    pub(crate) fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn particle(id: &str, init: &str) -> Particle {
        Particle {
            id: id.into(),
            init_peer_id: init.into(),
            timestamp: 0,
            ttl: 1000,
            script: String::new(),
            signature: vec![1],
            data: Vec::new(),
        }
    }

    #[test]
    fn ids_are_printable_ascii_and_short() {
        assert!(check_id("6f1c5a2e-2b1d-4a8e-9f3e-0c6a1b2d3e4f").is_ok());
        assert!(check_id("spell_abc_12").is_ok());
        assert_eq!(check_id("").unwrap_err().kind(), "bad_id");
        let forged = check_id("a\n2026-12-07 INFO forged line").unwrap_err();
        let text = forged.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("\\n"), "{text}");
        assert!(check_id(&"x".repeat(MAX_PARTICLE_ID_BYTES)).is_ok());
        assert!(check_id(&"x".repeat(MAX_PARTICLE_ID_BYTES + 1)).is_err());
        assert!(check_id("é").is_err());
        assert!(escape_id(&"y".repeat(1000)).len() < 80);
    }

    #[test]
    fn shares_bound_one_init_peer_and_one_sender() {
        let slots = Slots::new(
            Shares {
                particles: 10,
                particles_per_init_peer: 2,
                particles_per_sender: 3,
                bytes: 1 << 20,
                bytes_per_init_peer: 1 << 20,
                bytes_per_sender: 1 << 20,
                particles_per_address: 100,
                bytes_per_address: 1 << 20,
            },
            "me".into(),
        );
        slots
            .take(&particle("a", "alice"), Some("relay"), None, true)
            .unwrap();
        slots
            .take(&particle("b", "alice"), Some("relay"), None, true)
            .unwrap();
        // The same particle again takes no new slot.
        slots
            .take(&particle("b", "alice"), Some("relay"), None, true)
            .unwrap();
        let refused = slots.take(&particle("c", "alice"), Some("relay"), None, true);
        assert_eq!(refused.unwrap_err().kind(), "init_peer_share");
        slots
            .take(&particle("d", "bob"), Some("relay"), None, true)
            .unwrap();
        let refused = slots.take(&particle("e", "carol"), Some("relay"), None, true);
        assert_eq!(refused.unwrap_err().kind(), "sender_share");
        // Another connection still gets in; the node's own particles are not shared.
        slots
            .take(&particle("e", "carol"), Some("other"), None, true)
            .unwrap();
        for id in ["f", "g", "h"] {
            slots.take(&particle(id, "me"), None, None, true).unwrap();
        }
        assert_eq!(slots.held(), 7);
        slots.give_back("a", &[1]);
        slots
            .take(&particle("c", "alice"), Some("other"), None, true)
            .unwrap();
        for id in ["i", "j", "k"] {
            let _ = slots.take(&particle(id, "me"), None, None, true);
        }
        let refused = slots.take(&particle("l", "me"), None, None, true);
        assert_eq!(refused.unwrap_err().kind(), "busy");
        // Resumed particles are counted even over the shares.
        slots
            .take(&particle("m", "alice"), Some("relay"), None, false)
            .unwrap();
    }

    #[test]
    fn bytes_are_shared_too() {
        let slots = Slots::new(
            Shares {
                particles: 100,
                particles_per_init_peer: 100,
                particles_per_sender: 100,
                bytes: 200,
                bytes_per_init_peer: 100,
                bytes_per_sender: 150,
                particles_per_address: 100,
                bytes_per_address: 1000,
            },
            "me".into(),
        );
        let mut big = particle("a", "alice");
        big.script = "x".repeat(60);
        slots.take(&big, Some("ip 1"), None, true).unwrap();
        big.id = "b".into();
        let over = slots.take(&big, Some("ip 1"), None, true).unwrap_err();
        assert_eq!(over.kind(), "memory_share");
        assert!(over.to_string().contains("init peer"), "{over}");
        let mut other = big.clone();
        other.init_peer_id = "bob".into();
        slots.take(&other, Some("ip 1"), None, true).unwrap();
        other.id = "c".into();
        other.init_peer_id = "carol".into();
        let over = slots.take(&other, Some("ip 1"), None, true).unwrap_err();
        assert!(over.to_string().contains("sender ip 1"), "{over}");
        slots.take(&other, Some("ip 2"), None, true).unwrap();
        other.id = "d".into();
        other.init_peer_id = "dave".into();
        let over = slots.take(&other, Some("ip 3"), None, true).unwrap_err();
        assert!(over.to_string().contains("the node"), "{over}");
        slots.give_back("a", &[1]);
        slots.take(&other, Some("ip 3"), None, true).unwrap();
    }

    #[test]
    fn call_bytes_stay_within_the_limit() {
        let bytes = CallBytes::new(100);
        assert!(bytes.take(60));
        assert!(!bytes.take(41));
        assert!(bytes.take(40));
        bytes.give_back(60);
        assert!(bytes.take(50));
    }
}
