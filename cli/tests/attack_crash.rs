//! Crash runs: a `braid node` process with a data dir, under load, every particle with
//! a service call in flight (a mock service that answers after a few seconds), is
//! stopped with `kill -9` (and, in a second run, SIGTERM), started again on the same
//! data dir and port, and every particle completes: the node resumes the particles it
//! stored and makes their calls again, and the client, which reconnects, gets every
//! response. Nothing is re-sent by the client.
//!
//! CI runs 100 particles per run, one `kill -9` run and one SIGTERM run. The issue's
//! runs (800 particles, three `kill -9` runs and one SIGTERM run):
//! `BRAID_CRASH_PARTICLES=800 BRAID_CRASH_KILLS=3 cargo test -p braid-cli --release
//! --test attack_crash -- --nocapture`.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use braid_host::p2p::{Multiaddr, NetConfig, P2pNetwork};
use braid_host::{Node, NodeConfig, NodeKey};
use serde_json::json;

/// How long the mock service takes to answer: longer than it takes to get every
/// particle's call under way, so that at the kill every call is in flight.
const CALL_DELAY_MS: u64 = 8_000;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Starts `braid node` on `listen` with `dir`'s key, data and mock services; returns
/// the process and its address (with `/p2p/<peer id>`).
fn start_node(dir: &Path, listen: &str) -> (Child, Multiaddr) {
    let mut node = Command::new(env!("CARGO_BIN_EXE_braid"))
        .args(["node", "--listen", listen, "--key-file"])
        .arg(dir.join("node.key"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--services")
        .arg(dir.join("mocks.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(node.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned();
    let address = address
        .parse()
        .unwrap_or_else(|e| panic!("no address in {line:?}: {e}"));
    (node, address)
}

fn stored_particles(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("data"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".particle"))
                .count()
        })
        .unwrap_or(0)
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    Kill9,
    Sigterm,
}

/// One run; returns how many particles completed after the restart.
async fn run(stop: Stop, particles: usize) -> usize {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mocks.json"),
        json!({"services": [{"service": "slow", "functions": [
            {"name": "work", "result": "done", "delay_ms": CALL_DELAY_MS}
        ]}]})
        .to_string(),
    )
    .unwrap();
    let (mut node, address) = start_node(dir.path(), "/ip4/127.0.0.1/tcp/0");
    let node_id = address
        .to_string()
        .rsplit("/p2p/")
        .next()
        .unwrap()
        .to_owned();
    let client_key = NodeKey::generate().unwrap();
    let client_net = P2pNetwork::start(NetConfig::new(*client_key.secret(), "braid"))
        .await
        .unwrap();
    client_net.connect(address.clone()).await.unwrap();
    let client = Node::builder()
        .key(client_key)
        .network(client_net.clone())
        .config(NodeConfig {
            send_timeout: Duration::from_secs(600),
            ..NodeConfig::standard()
        })
        .relay(node_id.clone())
        .build()
        .unwrap();
    client_net.serve(client.inbox(), None);

    let script = format!(
        r#"(seq (call "{node_id}" ("slow" "work") [] r) (call %init_peer_id% ("callbackSrv" "response") [r]))"#
    );
    let answered = Arc::new(AtomicUsize::new(0));
    let mut runs = Vec::new();
    for _ in 0..particles {
        let (client, script, answered) = (client.clone(), script.clone(), Arc::clone(&answered));
        runs.push(tokio::spawn(async move {
            let answer = client
                .execute_with_ttl(
                    script,
                    Vec::<(String, serde_json::Value)>::new(),
                    Duration::from_secs(120),
                )
                .await;
            answered.fetch_add(1, Ordering::SeqCst);
            answer
        }));
    }
    // Every particle stored (with its call in flight) and none answered: stop now.
    let started = Instant::now();
    while stored_particles(dir.path()) < particles {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "only {} of {particles} particles stored",
            stored_particles(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered_before = answered.load(Ordering::SeqCst);
    match stop {
        Stop::Kill9 => node.kill().unwrap(),
        Stop::Sigterm => {
            let sent = Command::new("kill")
                .args(["-TERM", &node.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
        }
    }
    node.wait().unwrap();
    assert_eq!(
        answered_before, 0,
        "some particles finished before the stop: not every call was in flight"
    );
    let in_flight = stored_particles(dir.path());

    // The same port and data dir; the client reconnects (it does not listen).
    let text = address.to_string();
    let listen = text.split("/p2p/").next().unwrap();
    let (mut node, _) = start_node(dir.path(), listen);
    let reconnect = Instant::now();
    while client_net.connect(address.clone()).await.is_err() {
        assert!(
            reconnect.elapsed() < Duration::from_secs(30),
            "cannot reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut completed = 0;
    for r in runs {
        if let Ok(Ok(answer)) = r.await {
            assert_eq!(answer, json!("done"));
            completed += 1;
        }
    }
    node.kill().unwrap();
    node.wait().unwrap();
    eprintln!(
        "{stop:?}: {particles} particles, {in_flight} stored with a call in flight at the stop, {completed} completed after the restart"
    );
    completed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_particle_with_a_call_in_flight_completes_after_kill_9_and_after_sigterm() {
    let particles = env_number("BRAID_CRASH_PARTICLES", 100);
    let kills = env_number("BRAID_CRASH_KILLS", 1);
    for _ in 0..kills {
        assert_eq!(run(Stop::Kill9, particles).await, particles);
    }
    assert_eq!(run(Stop::Sigterm, particles).await, particles);
}
