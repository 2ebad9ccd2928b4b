//! `braid node` with services from the command line, `/metrics` and `/health`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

fn get(addr: &str, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// Stops the node however the test ends.
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
fn a_node_serves_mock_services_metrics_and_health() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mocks.json"),
        r#"{"services": [{"service": "weather", "functions": [{"name": "today", "result": "sunny"}]}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("ask.air"),
        r#"(seq
  (call %init_peer_id% ("getDataSrv" "-relay-") [] -relay-)
  (seq
    (call -relay- ("weather" "today") [] w)
    (call %init_peer_id% ("callbackSrv" "response") [w])))"#,
    )
    .unwrap();
    let mut node = Command::new(env!("CARGO_BIN_EXE_braid"))
        .current_dir(dir.path())
        .args([
            "node",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .args(["--services", "mocks.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = node.stdout.take().unwrap();
    let node = Stop(node);
    let mut lines = BufReader::new(stdout).lines();
    let listening = lines.next().unwrap().unwrap();
    let address = listening.split_whitespace().nth(5).unwrap().to_owned();
    let metrics_line = lines.next().unwrap().unwrap();
    // "metrics on http://ADDR/metrics, health on http://ADDR/health"
    let metrics = metrics_line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap()
        .to_owned();

    let sent = Command::new(env!("CARGO_BIN_EXE_braid"))
        .current_dir(dir.path())
        .args(["send", "--node", &address, "ask.air"])
        .output()
        .unwrap();
    let health = get(&metrics, "/health");
    let exposition = get(&metrics, "/metrics");
    drop(node);

    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&sent.stdout).trim(), "\"sunny\"");
    assert!(
        health.starts_with("HTTP/1.1 200 OK") && health.ends_with("ok\n"),
        "{health}"
    );
    assert!(exposition.starts_with("HTTP/1.1 200 OK"), "{exposition}");
    assert!(
        exposition.contains("# TYPE braid_particles_accepted counter"),
        "{exposition}"
    );
    assert!(exposition.contains("braid_calls_total 1"), "{exposition}");
    assert!(exposition.contains("braid_live_particles "), "{exposition}");
    assert!(exposition.ends_with("# EOF\n"), "{exposition}");
}
