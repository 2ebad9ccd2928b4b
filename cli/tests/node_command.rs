//! The `braid` node commands over real sockets on loopback: `demo`, and `node` serving
//! `send` and `status` until SIGTERM.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn braid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_braid"))
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
        .args(["node", "--listen", "127.0.0.1:0", "--key-file"])
        .arg(&key_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(node.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    // "braid node <peer id> listening on <addr>"
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 6, "{line}");
    let (peer_id, address) = (words[2], words[5]);
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
    assert!(status.status.success());
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["peer_id"], json!(peer_id));
    assert!(status["counters"]["accepted"].as_u64().unwrap() >= 1);
    assert!(status["memory_bytes"].as_u64().is_some());

    let killed = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = node.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
}
