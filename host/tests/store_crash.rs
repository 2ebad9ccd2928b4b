//! The disk store under a crash: a child process rewrites particle data in a loop and
//! is killed (SIGKILL) mid-way, several times; every stored file must then hold one
//! complete version, old or new, and reopening the store removes the leftovers.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use braid_host::{DataStore, DiskStore, StoreKey};

/// Set in the child: the store directory it writes to.
const CHILD_DIR: &str = "BRAID_STORE_CRASH_CHILD_DIR";
const KEYS: u8 = 4;
const SIZE: usize = 512 * 1024;

fn key(k: u8) -> StoreKey {
    StoreKey {
        particle_id: format!("particle-{k}"),
        signature: vec![k; 64],
    }
}

/// Version `v` of key `k`'s data: a 5-byte tag, then `SIZE` bytes all equal to a byte
/// derived from the version, so a torn write is visible anywhere in the file.
fn payload(k: u8, v: u32) -> Vec<u8> {
    let mut data = vec![k];
    data.extend_from_slice(&v.to_le_bytes());
    data.resize(5 + SIZE, (v % 251) as u8);
    data
}

/// Checks one stored value: returns its version.
fn check(k: u8, data: &[u8]) -> u32 {
    assert_eq!(
        data.len(),
        5 + SIZE,
        "key {k}: a torn file of {} bytes",
        data.len()
    );
    assert_eq!(data[0], k);
    let v = u32::from_le_bytes(data[1..5].try_into().unwrap());
    assert!(
        data[5..].iter().all(|&b| b == (v % 251) as u8),
        "key {k}: version {v} mixes old and new bytes"
    );
    v
}

/// The child: writes new versions of every key until it is killed. Does nothing in a
/// normal test run.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (store, _) = DiskStore::open(&dir, 0).unwrap();
        let start: u32 = std::fs::read_to_string(Path::new(&dir).join("next-version"))
            .map_or(1, |s| s.trim().parse().unwrap());
        for v in start.. {
            for k in 0..KEYS {
                store.write(&key(k), u64::MAX, payload(k, v)).await.unwrap();
            }
        }
    });
}

#[test]
fn a_crash_during_writes_leaves_old_or_new_data() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (store, _) = DiskStore::open(dir.path(), 0).unwrap();
        for k in 0..KEYS {
            store.write(&key(k), u64::MAX, payload(k, 0)).await.unwrap();
        }
    });
    let mut last = [0u32; KEYS as usize];
    let mut torn_rounds = 0;
    for round in 0..8u32 {
        let first = 1 + round * 1_000_000;
        std::fs::write(dir.path().join("next-version"), first.to_string()).unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR, dir.path())
            .spawn()
            .unwrap();
        // Once the child is writing, kill it at a different moment each round.
        let stored = dir.path().join(file_name_of_first_write(dir.path()));
        for _ in 0..500 {
            let version = std::fs::read(&stored).ok().and_then(|b| {
                (b.len() > 17).then(|| u32::from_le_bytes(b[13..17].try_into().unwrap()))
            });
            if version.is_some_and(|v| v >= first) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(u64::from(round * 13 % 40)));
        child.kill().unwrap(); // SIGKILL: no destructors, no flushing
        child.wait().unwrap();
        let torn = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "tmp")
            })
            .count();
        torn_rounds += usize::from(torn > 0);

        // Every stored file is one whole version, at least as new as before.
        runtime.block_on(async {
            let (store, _removed) = DiskStore::open(dir.path(), 0).unwrap();
            for k in 0..KEYS {
                let data = store
                    .read(&key(k))
                    .await
                    .unwrap()
                    .expect("the data is there");
                let v = check(k, &data);
                assert!(
                    v >= last[k as usize],
                    "key {k} went back from {} to {v}",
                    last[k as usize]
                );
                last[k as usize] = v;
            }
        });
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "tmp")
            })
            .count();
        assert_eq!(leftovers, 0, "opening the store removes temporary files");
    }
    eprintln!("{torn_rounds} of 8 kills interrupted a write; versions reached: {last:?}");
    assert!(
        last[0] > 7_000_000,
        "the child wrote in the last round: {last:?}"
    );
}

/// The file the store keeps key 0 in (the only `.particle` file whose tag byte is 0).
fn file_name_of_first_write(dir: &Path) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "particle")
                && std::fs::read(p).is_ok_and(|b| b.len() > 12 && b[12] == 0)
        })
        .expect("key 0 was written before the first round")
        .file_name()
        .unwrap()
        .into()
}
