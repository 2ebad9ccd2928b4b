//! The `braid` node commands over libp2p on loopback: `demo`, `load`, `node` serving
//! `send` and `status` until SIGTERM, and a node with an owner refusing others' status
//! requests.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn braid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_braid"))
}

/// The first line a started `braid node` prints (its stdout piped): "braid node <peer
/// id> listening on <multiaddr>".
fn first_line(node: &mut std::process::Child) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(node.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    line
}

#[test]
fn braid_demo_runs_three_nodes() {
    let out = braid().arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("response \"ok\""), "{stdout}");
    for node in ["node1", "node2", "node3"] {
        assert!(
            stdout.contains(&format!("call {node:<7} peer.timestamp_ms()")),
            "{node}: {stdout}"
        );
    }
}

#[test]
fn braid_node_serves_send_and_status_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("node.key");
    let mut node = braid()
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--key-file"])
        .arg(&key_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = first_line(&mut node);
    // "braid node <peer id> listening on <multiaddr>" (one address, one listen flag)
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 6, "{line}");
    let (peer_id, address) = (words[2], words[5]);
    assert!(peer_id.starts_with("12D3KooW"), "{line}");
    assert!(
        address.starts_with("/ip4/127.0.0.1/tcp/") && address.ends_with(&format!("/p2p/{peer_id}")),
        "{line}"
    );
    assert!(key_file.exists());

    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/examples/hello_world_remote.air"
    );
    let sent = braid()
        .args(["send", "--node", address, example, "--arg", "name=\"tcp\""])
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&sent.stdout).trim(),
        format!("\"Hello, tcp! From {peer_id}\"")
    );

    let status = braid()
        .args(["status", "--json", "--node", address])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["peer_id"], json!(peer_id));
    assert!(status["counters"]["accepted"].as_u64().unwrap() >= 1);
    assert!(status["memory_bytes"].as_u64().is_some());
    // The status request is no particle, and the asker is not among the node's peers.
    assert_eq!(status["counters"]["accepted"], json!(1));
    assert_eq!(status["counters"]["status_answered"], json!(1));
    assert!(
        status["connected_peers"].as_array().unwrap().len() <= 1,
        "{status}"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = node.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
}

#[test]
fn braid_load_answers_every_particle() {
    let out = braid()
        .args(["load", "--particles", "50", "--concurrency", "10"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("50 answered, 0 lost"), "{stdout}");
}

/// With every result kept, each hop signs: the particle's signature is verified by n1
/// (once: it comes back), n2 and n3; the data signatures by each node once for each
/// signature over results it has not seen (1 + 2 + 3 + 2 + 3: a node never verifies
/// its own, nor one it verified before); 5 data signatures and the particle's are made.
#[test]
fn braid_load_counts_the_route_s_signatures() {
    let out = braid()
        .args([
            "load",
            "--particles",
            "20",
            "--concurrency",
            "5",
            "--with-results",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("20 answered, 0 lost"), "{stdout}");
    for count in [
        "3.0 particle signatures verified",
        "11.0 data signatures verified",
        "6.0 signed",
    ] {
        assert!(stdout.contains(count), "{count}: {stdout}");
    }
}

#[test]
fn a_node_with_an_owner_answers_only_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let owner_key = dir.path().join("owner.key");
    std::fs::write(&owner_key, format!("{}\n", "07".repeat(32))).unwrap();
    // A key file others can read is refused.
    std::fs::set_permissions(
        &owner_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // The peer id of the secret [7; 32] (braid_wire::NodeKey::from_secret([7; 32])).
    let owner = braid_host::NodeKey::from_secret([7; 32])
        .peer_id()
        .to_owned();
    let mut node = braid()
        .args([
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--owner",
            &owner,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = first_line(&mut node);
    let address = line.split_whitespace().nth(5).unwrap().to_owned();

    let stranger = braid()
        .args([
            "status",
            "--json",
            "--timeout-ms",
            "2000",
            "--node",
            &address,
        ])
        .output()
        .unwrap();
    assert!(!stranger.status.success());
    assert!(
        String::from_utf8_lossy(&stranger.stderr).contains("sent no status"),
        "{}",
        String::from_utf8_lossy(&stranger.stderr)
    );
    let asked = braid()
        .args(["status", "--json", "--node", &address, "--key-file"])
        .arg(&owner_key)
        .output()
        .unwrap();
    assert!(
        asked.status.success(),
        "{}",
        String::from_utf8_lossy(&asked.stderr)
    );
    let status: Value = serde_json::from_slice(&asked.stdout).unwrap();
    assert_eq!(status["counters"]["status_refused"], json!(1));

    let killed = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(node.wait().unwrap().success());
}
