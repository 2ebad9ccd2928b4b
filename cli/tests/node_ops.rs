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
    assert!(exposition.contains("braid_working_particles "), "{exposition}");
    assert!(exposition.ends_with("# EOF\n"), "{exposition}");
}

/// Starts `braid node` on loopback in `dir` with `args`; the node (stopped when
/// dropped) and its address.
fn start_node(dir: &std::path::Path, args: &[&str]) -> (Stop, String, String) {
    let mut node = Command::new(env!("CARGO_BIN_EXE_braid"))
        .current_dir(dir)
        .args(["node", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = node.stdout.take().unwrap();
    let node = Stop(node);
    let listening = BufReader::new(stdout).lines().next().unwrap().unwrap();
    // "braid node <peer id> listening on <multiaddr>"
    let words: Vec<&str> = listening.split_whitespace().collect();
    (node, words[2].to_owned(), words[5].to_owned())
}

fn braid(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_braid"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn status(dir: &std::path::Path, address: &str) -> serde_json::Value {
    let out = braid(dir, &["status", "--json", "--node", address]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The example Wasm service (`services/example`), which the host's build script builds
/// into `<target>/braid-wasm-module`.
fn example_service() -> std::path::PathBuf {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_braid"));
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("braid-wasm-module/wasm32-unknown-unknown/release/braid_example_service.wasm");
    assert!(
        path.metadata().is_ok_and(|m| m.len() > 0),
        "the host's build script builds the example service at {}",
        path.display()
    );
    path
}

/// A script that runs `service.function("x")` on the relay and answers its result.
const ON_RELAY: &str = r#"(xor
 (seq
  (call %init_peer_id% ("getDataSrv" "-relay-") [] -relay-)
  (seq
   (call -relay- ("SERVICE" "FUNCTION") ["x"] r)
   (call %init_peer_id% ("callbackSrv" "response") [r])))
 (call %init_peer_id% ("errorHandlingSrv" "error") [%last_error% 0]))"#;

fn on_relay(dir: &std::path::Path, service: &str, function: &str) -> String {
    let name = format!("{service}.{function}.air");
    std::fs::write(
        dir.join(&name),
        ON_RELAY
            .replace("SERVICE", service)
            .replace("FUNCTION", function),
    )
    .unwrap();
    name
}

#[test]
fn status_counts_particles_at_work_apart_from_live_ones_and_not_its_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mocks.json"),
        r#"{"services": [{"service": "slow", "functions": [{"name": "f", "result": "done", "delay_ms": 3000}]}]}"#,
    )
    .unwrap();
    let (_node, _, address) = start_node(dir.path(), &["--services", "mocks.json"]);

    // Nobody else is connected: the asker's own connection is left out.
    let first = status(dir.path(), &address);
    assert_eq!(first["connected_peers"], serde_json::json!([]), "{first}");
    assert_eq!(first["counters"]["connected_peers"], 0, "{first}");
    assert_eq!(first["particles_in_flight"], 0, "{first}");

    // While a particle waits on a slow service call, it is in flight.
    let script = on_relay(dir.path(), "slow", "f");
    let mut sender = Command::new(env!("CARGO_BIN_EXE_braid"))
        .current_dir(dir.path())
        .args(["send", "--node", &address, &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Until the node works on it (or its call was answered, or the sender ended: the
    // asserts below tell these apart).
    let mut busy = status(dir.path(), &address);
    while busy["particles_in_flight"] == 0
        && busy["counters"]["calls"] == 0
        && sender.try_wait().unwrap().is_none()
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
        busy = status(dir.path(), &address);
    }
    let sent = sender.wait_with_output().unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&sent.stdout).trim(), "\"done\"");
    // It was seen at work (its call takes 3 s).
    assert_eq!(busy["counters"]["calls"], 0, "{busy}");
    assert_eq!(busy["particles_in_flight"], 1, "{busy}");
    assert_eq!(busy["counters"]["live_particles"], 1, "{busy}");

    // Answered: live until its ttl ends, but no longer in flight.
    let after = status(dir.path(), &address);
    assert_eq!(after["particles_in_flight"], 0, "{after}");
    assert_eq!(after["counters"]["live_particles"], 1, "{after}");
}

#[test]
fn the_owner_setting_governs_the_guarded_builtins_and_wasm_services_load_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let owner_key = dir.path().join("owner.key");
    std::fs::write(&owner_key, format!("{}\n", "07".repeat(32))).unwrap();
    // A key file others can read is refused.
    std::fs::set_permissions(
        &owner_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // The owner's peer id: that of a node with its key.
    let (probe, owner, _) = start_node(dir.path(), &["--key-file", "owner.key"]);
    drop(probe);
    let greeter = format!("greeter={}", example_service().display());
    let (_node, _, address) =
        start_node(dir.path(), &["--owner", &owner, "--wasm-service", &greeter]);

    // A Wasm service by path answers anyone.
    let greet = on_relay(dir.path(), "greeter", "greet");
    let out = braid(dir.path(), &["send", "--node", &address, &greet]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"Hello, x!\"");

    // The guarded built-ins answer the owner, and refuse a stranger.
    let print = on_relay(dir.path(), "run-console", "print");
    let create = on_relay(dir.path(), "srv", "create");
    let as_owner = |script: &str| {
        braid(
            dir.path(),
            &[
                "send",
                "--node",
                &address,
                "--key-file",
                "owner.key",
                script,
            ],
        )
    };
    let owned = as_owner(&print);
    assert!(
        owned.status.success(),
        "{}",
        String::from_utf8_lossy(&owned.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&owned.stdout).trim(), "\"\"");
    let owned = as_owner(&create);
    let err = String::from_utf8_lossy(&owned.stderr);
    assert!(err.contains("Blueprint 'x' not found"), "{err}");
    for script in [&print, &create] {
        let stranger = braid(dir.path(), &["send", "--node", &address, script]);
        assert!(!stranger.status.success());
        let err = String::from_utf8_lossy(&stranger.stderr);
        assert!(
            err.contains("This function is only available to the host or worker spells"),
            "{script}: {err}"
        );
    }
}
