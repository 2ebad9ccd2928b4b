//! The attack suite: one attack at a time against a real `braid node` process over
//! real sockets, while a legitimate client of another identity sends a particle every
//! 250 ms. For each attack it measures the legitimate particles' answer times, the
//! node's live heap (`braid_live_heap_bytes` of its `/metrics`, counted by the
//! binary's allocator) and resident memory (`/proc/<pid>/status`), at idle, during
//! the attack and for 10 s after it.
//!
//! CI runs the short version (small volumes, 3 s per attack, a debug build), which
//! checks that every legitimate particle is answered, within 5 s, and that the heap
//! stays within the budget, and prints what it measured. The full version checks the
//! issue's bounds (answered within 1 s, heap within 512 MiB, back within 20 % of idle,
//! plus 1 MiB, within 10 s after the attack) and prints a table:
//! `BRAID_ATTACK_FULL=1 cargo test -p braid-cli --release --test attack -- --nocapture`.
//! `BRAID_ATTACK_ONLY=name` runs one attack.
//!
//! Attacker addresses: raw-socket attackers bind 127.0.0.2–127.0.0.4 (the node limits
//! inbound connections per IP address; on Linux all of 127/8 is loopback); the
//! legitimate client and the libp2p attackers dial from 127.0.0.1, so the address's
//! share of particle slots is theirs together, and the sender's (peer id's) share is
//! what keeps an attacker to its part.

use std::io::{BufRead, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use braid_host::p2p::{Multiaddr, NetConfig, P2pNetwork, PeerId};
use braid_host::{Node, NodeConfig, NodeKey, Particle};

/// The heap budget of the issue.
const HEAP_BUDGET: i64 = 512 << 20;

fn full() -> bool {
    std::env::var("BRAID_ATTACK_FULL").is_ok_and(|v| v == "1")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A `braid node` process with `/metrics`.
struct NodeProcess {
    child: Child,
    addr: Multiaddr,
    peer_id: String,
    metrics: SocketAddr,
}

impl NodeProcess {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_braid"))
            .args([
                "node",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--metrics",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let mut second = String::new();
        out.read_line(&mut second).unwrap();
        // Keep reading what it prints, so that it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let addr: Multiaddr = first.split_whitespace().last().unwrap().parse().unwrap();
        let peer_id = first.split_whitespace().nth(2).unwrap().to_owned();
        let metrics = second
            .trim_start_matches("metrics on http://")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{second:?}: {e}"));
        NodeProcess {
            child,
            addr,
            peer_id,
            metrics,
        }
    }

    fn port(&self) -> u16 {
        let text = self.addr.to_string();
        let after = text.split("/tcp/").nth(1).unwrap();
        after.split('/').next().unwrap().parse().unwrap()
    }

    /// One metric of `/metrics`.
    fn metric(&self, name: &str) -> Option<i64> {
        let mut stream = std::net::TcpStream::connect(self.metrics).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).ok()?;
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
    }

    fn heap(&self) -> i64 {
        self.metric("braid_live_heap_bytes").unwrap_or(0)
    }

    fn rss(&self) -> i64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
            .map_or(0, |kb| kb * 1024)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `particle` to `target` from `net`, waiting at most `wait`: whether the node
/// takes it is what the attack tests, not the sender.
async fn send(net: &P2pNetwork, target: PeerId, particle: &Particle, wait: Duration) {
    let deadline = tokio::time::Instant::now() + wait;
    let _ = net
        .handle()
        .send_encoded(target, &particle.encode(), deadline)
        .await;
}

/// A peer of its own identity, served (so its events are drained), not listening
/// unless `listen`.
async fn peer(key: &NodeKey, listen: Option<&str>) -> (Node, Arc<P2pNetwork>) {
    let mut config = NetConfig::new(*key.secret(), "braid");
    if let Some(addr) = listen {
        config.listen = vec![addr.parse().unwrap()];
    }
    let net = P2pNetwork::start(config).await.unwrap();
    let node = Node::builder()
        .key(key.clone())
        .network(net.clone())
        .config(NodeConfig {
            send_timeout: Duration::from_secs(600),
            ..NodeConfig::standard()
        })
        .build()
        .unwrap();
    net.serve(node.inbox(), None);
    (node, net)
}

/// Connects `net` to `addr`, trying again for a few seconds.
async fn connect(net: &P2pNetwork, addr: &Multiaddr) {
    for _ in 0..50 {
        if net.connect(addr.clone()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the attacker cannot connect to {addr}");
}

/// What one attack measured.
#[derive(Debug, Default)]
struct Report {
    name: &'static str,
    legit_sent: usize,
    legit_answered: usize,
    legit_max: Duration,
    idle_heap: i64,
    max_heap: i64,
    idle_rss: i64,
    max_rss: i64,
    after_heap: i64,
    after_rss: i64,
    recovered_in: Option<Duration>,
    rejected: i64,
    /// Inbound streams the network refused.
    streams_rejected: i64,
}

fn mib(bytes: i64) -> String {
    format!("{:.1}", bytes as f64 / (1 << 20) as f64)
}

/// The attacks, by name.
const ATTACKS: &[&str] = &[
    "idle_sockets_and_unfinished_handshakes",
    "connect_flood",
    "garbage_on_the_wire",
    "one_identity_many_connections",
    "particle_flood_one_identity_max_ttl",
    "particle_flood_fresh_identities",
    "oversized_frames",
    "huge_scripts",
    "parallel_calls_on_a_big_value",
    "forged_particle_ids",
    "trickled_frames",
];

/// Runs `name` against `node` until it ends or `for_` has passed.
async fn attack(name: &str, node: &NodeProcess, for_: Duration) {
    let port = node.port();
    let target: PeerId = node.peer_id.parse().unwrap();
    let scale = |short: usize, long: usize| if full() { long } else { short };
    let deadline = tokio::time::Instant::now() + for_;
    match name {
        "idle_sockets_and_unfinished_handshakes" => {
            let mut held = Vec::new();
            for i in 0..scale(300, 2000) {
                let socket = tokio::net::TcpSocket::new_v4().unwrap();
                socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
                if let Ok(mut s) = socket.connect(([127, 0, 0, 1], port).into()).await {
                    if i % 2 == 0 {
                        // Half a multistream header, then nothing.
                        let _ = tokio::io::AsyncWriteExt::write_all(&mut s, b"\x13/multistream/1.")
                            .await;
                    }
                    held.push(s);
                }
            }
            tokio::time::sleep_until(deadline).await;
            drop(held);
        }
        "connect_flood" => {
            let mut tasks = Vec::new();
            for _ in 0..32 {
                tasks.push(tokio::spawn(async move {
                    while tokio::time::Instant::now() < deadline {
                        let socket = tokio::net::TcpSocket::new_v4().unwrap();
                        socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
                        let _ = socket.connect(([127, 0, 0, 1], port).into()).await;
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        "garbage_on_the_wire" => {
            let mut tasks = Vec::new();
            for t in 0..16u64 {
                tasks.push(tokio::spawn(async move {
                    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ t;
                    while tokio::time::Instant::now() < deadline {
                        let socket = tokio::net::TcpSocket::new_v4().unwrap();
                        socket.bind("127.0.0.4:0".parse().unwrap()).unwrap();
                        let Ok(mut s) = socket.connect(([127, 0, 0, 1], port).into()).await else {
                            continue;
                        };
                        let bytes: Vec<u8> = (0..64 << 10)
                            .map(|_| {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                x as u8
                            })
                            .collect();
                        let _ = tokio::time::timeout(
                            Duration::from_secs(1),
                            tokio::io::AsyncWriteExt::write_all(&mut s, &bytes),
                        )
                        .await;
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        "one_identity_many_connections" => {
            let key = NodeKey::generate().unwrap();
            let mut peers = Vec::new();
            for _ in 0..scale(12, 64) {
                let (node_, net) = peer(&key, None).await;
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), net.connect(node.addr.clone()))
                        .await;
                peers.push((node_, net));
            }
            tokio::time::sleep_until(deadline).await;
            drop(peers);
        }
        "particle_flood_one_identity_max_ttl" | "particle_flood_fresh_identities" => {
            let fresh = name.ends_with("fresh_identities");
            let key = NodeKey::generate().unwrap();
            let (_attacker, net) = peer(&key, None).await;
            connect(&net, &node.addr).await;
            let total = scale(3000, 30_000);
            let sem = Arc::new(tokio::sync::Semaphore::new(128));
            let mut tasks = Vec::new();
            for n in 0..total {
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                let key = if fresh {
                    NodeKey::generate().unwrap()
                } else {
                    key.clone()
                };
                // Every tenth asks for u32::MAX ms; the rest for the cap.
                let ttl = if n % 10 == 0 { u32::MAX } else { 600_000 };
                let p = Particle::new_signed(
                    &key,
                    format!("flood-{n}"),
                    now_ms(),
                    ttl,
                    "(null)".into(),
                );
                let permit = Arc::clone(&sem).acquire_owned().await.unwrap();
                let net = Arc::clone(&net);
                tasks.push(tokio::spawn(async move {
                    let _permit = permit;
                    send(&net, target, &p, Duration::from_secs(5)).await;
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            tokio::time::sleep_until(deadline).await;
        }
        "oversized_frames" => {
            let key = NodeKey::generate().unwrap();
            let (_attacker, net) = peer(&key, None).await;
            connect(&net, &node.addr).await;
            let mut tasks = Vec::new();
            // Over the data limit (64 MiB) and under the frame limit, so the node reads
            // them; and over the frame limit (100 MiB), refused at the length.
            for (n, size) in [70usize << 20, 70 << 20, 101 << 20]
                .into_iter()
                .chain(std::iter::repeat_n(70 << 20, scale(0, 5)))
                .enumerate()
            {
                let mut p = Particle::new_signed(
                    &key,
                    format!("big-{n}"),
                    now_ms(),
                    60_000,
                    "(null)".into(),
                );
                p.data = vec![7; size];
                let net = Arc::clone(&net);
                tasks.push(tokio::spawn(async move {
                    send(&net, target, &p, Duration::from_secs(20)).await;
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            tokio::time::sleep_until(deadline).await;
        }
        "huge_scripts" => {
            let key = NodeKey::generate().unwrap();
            let (_attacker, net) = peer(&key, None).await;
            connect(&net, &node.addr).await;
            let script = format!("{}(null)", " ".repeat((16 << 20) - 16));
            for n in 0..scale(4, 20) {
                let p = Particle::new_signed(
                    &key,
                    format!("huge-{n}"),
                    now_ms(),
                    600_000,
                    script.clone(),
                );
                send(&net, target, &p, Duration::from_secs(20)).await;
            }
            tokio::time::sleep_until(deadline).await;
        }
        "parallel_calls_on_a_big_value" => {
            let key = NodeKey::generate().unwrap();
            let (_attacker, net) = peer(&key, None).await;
            connect(&net, &node.addr).await;
            let value = "v".repeat(800 << 10);
            let mut calls = String::from("(null)");
            for n in 0..1024 {
                calls = format!(
                    r#"(par (call "{}" ("op" "identity") [big] r{n}) {calls})"#,
                    node.peer_id
                );
            }
            // The value is a literal of the script; `ap` puts it in a variable.
            let script = format!(r#"(seq (ap "{value}" big) {calls})"#);
            for n in 0..scale(1, 3) {
                let p = Particle::new_signed(
                    &key,
                    format!("calls-{n}"),
                    now_ms(),
                    60_000,
                    script.clone(),
                );
                send(&net, target, &p, Duration::from_secs(20)).await;
            }
            tokio::time::sleep_until(deadline).await;
        }
        "forged_particle_ids" => {
            let key = NodeKey::generate().unwrap();
            let (_attacker, net) = peer(&key, None).await;
            connect(&net, &node.addr).await;
            for n in 0..scale(200, 2000) {
                let id = match n % 3 {
                    0 => format!("x{n}\n2026-12-07T00:00:00Z INFO braid_host: forged line"),
                    1 => "i".repeat(10_000),
                    _ => format!("\u{1b}[31m{n}"),
                };
                let p = Particle::new_signed(&key, id, now_ms(), 60_000, "(null)".into());
                send(&net, target, &p, Duration::from_secs(5)).await;
            }
            tokio::time::sleep_until(deadline).await;
        }
        "trickled_frames" => {
            // Ten authenticated connections, each with streams of both particle
            // protocols that announce a frame just under the frame limit and then send
            // it a few KiB at a time: together more than the node's budget of unfinished
            // frames (256 MiB). A stream the node drops is opened again.
            let streams = scale(4, 30);
            let mut peers = Vec::new();
            let mut tasks = Vec::new();
            for _ in 0..10 {
                let (swarm, control) = raw_peer(node.addr.clone());
                peers.push(swarm);
                let protocols = std::iter::repeat_n(PARTICLE_PROTOCOL, streams)
                    .chain(std::iter::repeat_n(PARTICLE_STREAM_PROTOCOL, 2));
                for protocol in protocols {
                    tasks.push(tokio::spawn(trickle(
                        control.clone(),
                        target,
                        protocol,
                        deadline,
                    )));
                }
            }
            let (mut opened, mut cut, mut sent) = (0, 0, 0);
            for t in tasks {
                if let Ok((o, c, s)) = t.await {
                    (opened, cut, sent) = (opened + o, cut + c, sent + s);
                }
            }
            eprintln!(
                "trickled_frames: {opened} streams opened, {cut} dropped by the node before the end, {} MiB sent",
                mib(sent as i64)
            );
            // Dropping the swarms closes their connections.
            for p in peers {
                p.abort();
            }
        }
        other => panic!("no attack {other}"),
    }
}

#[derive(libp2p::swarm::NetworkBehaviour)]
struct RawBehaviour {
    identify: libp2p::identify::Behaviour,
    stream: libp2p_stream::Behaviour,
}

/// The field's particle protocol (one frame per stream).
const PARTICLE_PROTOCOL: &str = "/fluence/particle/2.0.0";
/// The protocol of braid's long-lived particle streams.
const PARTICLE_STREAM_PROTOCOL: &str = "/braid/particle-stream/1.0.0";

/// A libp2p peer of a new identity dialing `addr`, with nothing but identify and raw
/// streams of any protocol; its swarm runs until the task is aborted.
fn raw_peer(addr: Multiaddr) -> (tokio::task::JoinHandle<()>, libp2p_stream::Control) {
    use libp2p::futures::StreamExt;
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| RawBehaviour {
            identify: libp2p::identify::Behaviour::new(libp2p::identify::Config::new(
                "ipfs/0.1.0".into(),
                key.public(),
            )),
            stream: libp2p_stream::Behaviour::new(),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let mut control = swarm.behaviour().stream.new_control();
    // Identify must name the particle protocol, or the node disconnects the peer.
    let incoming = control
        .accept(libp2p::StreamProtocol::new(PARTICLE_PROTOCOL))
        .unwrap();
    swarm.dial(addr).unwrap();
    let task = tokio::spawn(async move {
        let _incoming = incoming;
        loop {
            swarm.select_next_some().await;
        }
    });
    (task, control)
}

/// Opens streams of `protocol` to `target` until `deadline`, one after another: each
/// announces a frame of just under 100 MiB, then sends 8 KiB every 100 ms until the
/// node drops it. Returns the streams opened, those the node dropped before the
/// deadline, and the bytes sent.
async fn trickle(
    mut control: libp2p_stream::Control,
    target: PeerId,
    protocol: &'static str,
    deadline: tokio::time::Instant,
) -> (usize, usize, usize) {
    let (mut opened, mut cut, mut sent) = (0, 0, 0);
    use libp2p::futures::AsyncWriteExt;
    let mut prefix = Vec::new();
    let mut n = (100u64 << 20) - 1;
    while n >= 0x80 {
        prefix.push(n as u8 | 0x80);
        n >>= 7;
    }
    prefix.push(n as u8);
    let chunk = vec![0x55u8; 8 << 10];
    while tokio::time::Instant::now() < deadline {
        let open = tokio::time::timeout_at(
            deadline,
            control.open_stream(target, libp2p::StreamProtocol::new(protocol)),
        )
        .await;
        let Ok(Ok(mut stream)) = open else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        opened += 1;
        let mut ok = stream.write_all(&prefix).await.is_ok();
        while ok && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, stream.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len(),
                Ok(Err(_)) => {
                    ok = false;
                    cut += 1;
                }
                Err(_) => break,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    (opened, cut, sent)
}

/// Samples the node's heap and RSS every 100 ms until `stop`.
fn sample(node: &NodeProcess, report: &Mutex<Report>, stop: &std::sync::atomic::AtomicBool) {
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let (heap, rss) = (node.heap(), node.rss());
        let mut r = report.lock().unwrap();
        r.max_heap = r.max_heap.max(heap);
        r.max_rss = r.max_rss.max(rss);
        drop(r);
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn run_one(name: &'static str) -> Report {
    let node = Arc::new(NodeProcess::start());
    let client_key = NodeKey::generate().unwrap();
    let (client, client_net) = peer(&client_key, None).await;
    client_net.connect(node.addr.clone()).await.unwrap();
    let ping = format!(
        r#"(seq (call "{}" ("op" "identity") ["ping"] r) (call %init_peer_id% ("callbackSrv" "response") [r]))"#,
        node.peer_id
    );
    // Warm up, then the idle level.
    for _ in 0..3 {
        client
            .execute_with_ttl(
                ping.clone(),
                Vec::<(String, serde_json::Value)>::new(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = Arc::new(Mutex::new(Report {
        name,
        idle_heap: node.heap(),
        idle_rss: node.rss(),
        ..Report::default()
    }));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (node, report, stop) = (Arc::clone(&node), Arc::clone(&report), Arc::clone(&stop));
        std::thread::spawn(move || sample(&node, &report, &stop))
    };
    let attack_for = if full() {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(3)
    };
    let attacker = {
        let node = Arc::clone(&node);
        tokio::spawn(async move { attack(name, &node, attack_for).await })
    };
    // The legitimate client: a particle every 250 ms while the attack runs.
    let mut legit = Vec::new();
    let started = Instant::now();
    while started.elapsed() < attack_for {
        let (client, ping) = (client.clone(), ping.clone());
        legit.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer = client
                .execute_with_ttl(
                    ping,
                    Vec::<(String, serde_json::Value)>::new(),
                    Duration::from_secs(10),
                )
                .await;
            answer.ok().map(|_| sent.elapsed())
        }));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(60), attacker).await;
    for l in legit {
        let took = l.await.unwrap();
        let mut r = report.lock().unwrap();
        r.legit_sent += 1;
        if let Some(took) = took {
            r.legit_answered += 1;
            r.legit_max = r.legit_max.max(took);
        }
    }
    // After the attack: back within 20 % of the idle heap within 10 s? The heap is
    // the node's whole live heap (counted from the start of its `main`), about 2 MiB
    // at idle, so 20 % of it is about 0.4 MiB: 1 MiB is allowed beside the 20 %,
    // because the legitimate client's own particles (one every 250 ms, each kept on
    // the node until its 10 s ttl ends) are still there in the 10 s after the attack.
    let ended = Instant::now();
    let idle = report.lock().unwrap().idle_heap;
    let mut recovered = None;
    let wait = if full() {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(3)
    };
    while ended.elapsed() < wait {
        if node.heap() <= idle + idle / 5 + (1 << 20) {
            recovered = Some(ended.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    sampler.join().unwrap();
    let mut r = Arc::try_unwrap(report).unwrap().into_inner().unwrap();
    r.recovered_in = recovered;
    r.after_heap = node.heap();
    r.after_rss = node.rss();
    r.rejected = node.metric("braid_particles_rejected_total").unwrap_or(0);
    r.streams_rejected = node.metric("braid_net_streams_rejected_total").unwrap_or(0);
    drop(client);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_under_attack_answers_a_legitimate_client_within_its_memory_budget() {
    let only = std::env::var("BRAID_ATTACK_ONLY").ok();
    let mut reports = Vec::new();
    for &name in ATTACKS {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let r = run_one(name).await;
        eprintln!(
            "{:<40} legit {}/{} max {:>5} ms | heap idle {} max {} after {} MiB, back in {} | rss idle {} max {} after {} MiB | rejected {} particles, {} streams",
            r.name,
            r.legit_answered,
            r.legit_sent,
            r.legit_max.as_millis(),
            mib(r.idle_heap),
            mib(r.max_heap),
            mib(r.after_heap),
            r.recovered_in
                .map_or("no".to_owned(), |d| format!("{} ms", d.as_millis())),
            mib(r.idle_rss),
            mib(r.max_rss),
            mib(r.after_rss),
            r.rejected,
            r.streams_rejected,
        );
        reports.push(r);
    }
    let limit = if full() {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    for r in &reports {
        assert_eq!(
            r.legit_answered, r.legit_sent,
            "{}: legitimate particles lost",
            r.name
        );
        assert!(
            r.legit_max <= limit,
            "{}: a legitimate particle took {:?}",
            r.name,
            r.legit_max
        );
        assert!(
            r.max_heap <= HEAP_BUDGET,
            "{}: heap {} MiB",
            r.name,
            mib(r.max_heap)
        );
    }
    if full() {
        let slow: Vec<_> = reports
            .iter()
            .filter(|r| r.recovered_in.is_none())
            .map(|r| r.name)
            .collect();
        assert!(
            slow.is_empty(),
            "not back within 20 % of idle within 10 s: {slow:?}"
        );
    }
}
