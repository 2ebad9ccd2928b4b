//! Spells on a real `braid node`: installed by the owner with `braid spell`, run by a
//! 1-second clock, their store in the node's database, surviving `kill -9`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The spell: reads `counter` from its store, adds one, writes it back, then prints it
/// (on the node's log, target `run-console`).
const COUNTER: &str = r#"(seq
  (call %init_peer_id% ("getDataSrv" "spell_id") [] spell_id)
  (seq
    (call %init_peer_id% (spell_id "get_u32") ["counter"] got)
    (seq
      (call %init_peer_id% ("math" "add") [got.$.num 1] n)
      (seq
        (call %init_peer_id% (spell_id "set_u32") ["counter" n] set)
        (call %init_peer_id% ("run-console" "print") ["spell-counter" n])))))"#;

/// Kills the node however the test ends.
struct Running {
    child: Child,
    address: String,
    /// The values the spell printed, as they come.
    counts: mpsc::Receiver<u64>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn braid(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_braid"));
    command.current_dir(dir);
    command
}

/// Makes the key file `name` in `dir` (`braid spell owner`); its peer id.
fn make_key(dir: &Path, name: &str) -> String {
    let mut command = braid(dir);
    command.args(["spell", "owner", "--key-file", name]);
    stdout_of(command, "braid spell owner").trim().to_owned()
}

/// Runs `command`, which must succeed; its standard output.
fn stdout_of(mut command: Command, what: &str) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn start_node(dir: &Path, owner: &str) -> Running {
    let mut child = braid(dir)
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .args([
            "--key-file",
            "node.key",
            "--data-dir",
            "data",
            "--owner",
            owner,
        ])
        .env("RUST_LOG", "run-console=info,warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines.next().unwrap().unwrap();
    let address = listening.split_whitespace().nth(5).unwrap().to_owned();
    let (tx, counts) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("\"spell-counter\",").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(n) = digits.parse() {
                    let _ = tx.send(n);
                }
            }
        }
    });
    Running {
        child,
        address,
        counts,
    }
}

/// The next value the spell prints (a run a second: 30 s is far more than enough).
fn next_count(node: &Running) -> u64 {
    node.counts
        .recv_timeout(Duration::from_secs(30))
        .expect("the spell printed its counter")
}

fn spell(dir: &Path, node: &Running, args: &[&str]) -> String {
    let mut command = braid(dir);
    command
        .arg("spell")
        .arg(args[0])
        .args(["--node", &node.address, "--key-file", "owner.key"])
        .args(&args[1..]);
    stdout_of(command, &format!("braid spell {args:?}"))
}

#[test]
fn a_clock_spell_counts_across_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("counter.air"), COUNTER).unwrap();
    let owner = make_key(dir.path(), "owner.key");

    let node = start_node(dir.path(), &owner);
    let id = spell(
        dir.path(),
        &node,
        &["install", "counter.air", "--period-sec", "1"],
    );
    let id = id.trim().to_owned();
    assert_eq!(id.len(), 36, "a spell id: {id}");
    let before: Vec<u64> = (0..5).map(|_| next_count(&node)).collect();
    assert_eq!(before, [1, 2, 3, 4, 5]);
    // Killed between runs 5 and 6 (the next run is about a second away).
    drop(node);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/braid.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the database is the node user's only");
    }

    let node = start_node(dir.path(), &owner);
    // Run 5's particle may be resumed from its stored data and print 5 again (a call
    // is made at least once); the store's counter was written once, so the next run
    // counts on from it.
    let mut first = next_count(&node);
    if first == 5 {
        first = next_count(&node);
    }
    let mut after = vec![first];
    while after.len() < 5 {
        after.push(next_count(&node));
    }
    assert_eq!(
        after,
        [6, 7, 8, 9, 10],
        "counting goes on from the store's 5"
    );

    let listed = spell(dir.path(), &node, &["list"]);
    assert_eq!(listed.lines().collect::<Vec<_>>(), [id.as_str()]);
    spell(dir.path(), &node, &["remove", &id]);
    assert_eq!(spell(dir.path(), &node, &["list"]).trim(), "");
}

#[test]
fn only_the_owner_installs_spells() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("counter.air"), COUNTER).unwrap();
    let owner = make_key(dir.path(), "owner.key");
    // Another key: a stranger to the node.
    make_key(dir.path(), "stranger.key");
    let node = start_node(dir.path(), &owner);
    let out = braid(dir.path())
        .args(["spell", "install", "--node", &node.address])
        .args([
            "--key-file",
            "stranger.key",
            "counter.air",
            "--period-sec",
            "1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Only the host, its management peer"),
        "{stderr}"
    );
}

#[test]
fn a_spell_runs_when_a_peer_connects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("counter.air"), COUNTER).unwrap();
    let owner = make_key(dir.path(), "owner.key");
    let node = start_node(dir.path(), &owner);
    spell(
        dir.path(),
        &node,
        &["install", "counter.air", "--on-connect"],
    );
    // No timer: nothing runs until a peer connects. `braid spell list` is a peer that
    // connects (and disconnects, which this spell does not watch).
    assert!(
        node.counts
            .recv_timeout(Duration::from_millis(1500))
            .is_err()
    );
    spell(dir.path(), &node, &["list"]);
    assert_eq!(next_count(&node), 1);
    spell(dir.path(), &node, &["list"]);
    assert_eq!(next_count(&node), 2);
}
