//! `braid node`, `braid send`, `braid status`, `braid demo` and `braid load`: nodes on
//! libp2p ([`braid_host::p2p`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use braid_host::p2p::{Multiaddr, NetConfig, NetStats, P2pNetwork, Status, request_status};

use crate::settings::{DEFAULT_NETWORK, NodeSettings};
use braid_host::{Node, NodeConfig, NodeEvent, NodeKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Arguments of `braid node`.
#[derive(clap::Args)]
pub(crate) struct NodeArgs {
    /// A TOML settings file (see the README); environment variables `BRAID_*` override
    /// it, and flags override both.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A multiaddr to listen on, e.g. `/ip4/0.0.0.0/tcp/7001` or
    /// `/ip4/0.0.0.0/tcp/7002/ws`; repeat for more (`BRAID_LISTEN`, comma-separated;
    /// default: both of those).
    #[arg(long, value_name = "MULTIADDR")]
    listen: Vec<String>,
    /// A multiaddr peers are told to reach this node at (`BRAID_EXTERNAL`).
    #[arg(long, value_name = "MULTIADDR")]
    external: Vec<String>,
    /// A peer to join the network through, ending in `/p2p/<peer id>`; repeat for more
    /// (`BRAID_BOOTSTRAP`, comma-separated).
    #[arg(long, value_name = "MULTIADDR")]
    bootstrap: Vec<String>,
    /// The Kademlia network name: `/fluence/kad/<NAME>/1.0.0` (`BRAID_NETWORK`; default
    /// `braid`).
    #[arg(long, value_name = "NAME")]
    network: Option<String>,
    /// The node key file: 64 hex digits, made if missing (`BRAID_KEY_FILE`). Without
    /// one, the node has a fresh key and peer id on every start.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Keep particle data here, so that live particles survive a restart
    /// (`BRAID_DATA_DIR`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// What `getDataSrv.-relay-` answers for particles this node starts
    /// (`BRAID_RELAY`; default: the node itself).
    #[arg(long, value_name = "PEER_ID")]
    relay: Option<String>,
    /// The node's owner (Nox's management peer id; `BRAID_OWNER`): besides the node
    /// itself, the only peer whose particles may call the guarded built-ins
    /// (`srv.create`, `dist.add_module`, `peer.connect`, `sig.sign`, …), and the only
    /// one whose `braid status` requests are answered. Default: none (the guarded
    /// built-ins answer the node alone; status requests are answered for everyone).
    #[arg(long, value_name = "PEER_ID")]
    owner: Option<String>,
    /// How long a connection without streams stays open, ms (`BRAID_IDLE_TIMEOUT_MS`;
    /// default 180000).
    #[arg(long, value_name = "MS")]
    idle_timeout_ms: Option<u64>,
    /// Most connections open at once (`BRAID_MAX_CONNECTIONS`; default 1024).
    #[arg(long, value_name = "N")]
    max_connections: Option<u32>,
    /// Most inbound connections from one IP address, handshakes included
    /// (`BRAID_MAX_CONNECTIONS_PER_IP`; default 32).
    #[arg(long, value_name = "N")]
    max_connections_per_ip: Option<u32>,
    /// The longest ttl of a particle let in, ms; a particle with a longer one is
    /// refused (`BRAID_MAX_TTL_MS`; default 600000).
    #[arg(long, value_name = "MS")]
    max_ttl_ms: Option<u64>,
    /// The interpreter backend (`BRAID_BACKEND`).
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
    /// Serve `/metrics` (Prometheus) and `/health` over HTTP on this address
    /// (`127.0.0.1:9100`; port 0 picks one, printed at start).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    #[command(flatten)]
    services: crate::user_services::ServiceArgs,
}

/// Arguments of `braid send`.
#[derive(clap::Args)]
pub(crate) struct SendArgs {
    /// The node to connect to, a multiaddr (`/ip4/127.0.0.1/tcp/7001`, optionally
    /// ending in `/p2p/<peer id>`); it is the script's relay.
    #[arg(long, value_name = "MULTIADDR")]
    node: Multiaddr,
    /// The script file (`-` for standard input).
    script: PathBuf,
    /// What `getDataSrv.NAME` answers: NAME=JSON (a string needs its quotes).
    #[arg(long = "arg", value_name = "NAME=JSON")]
    args: Vec<String>,
    /// The particle's time to live, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    ttl: u32,
    /// Send as the peer of this key file (e.g. the node's owner, to call the guarded
    /// built-ins); default: a fresh key.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

/// Arguments of `braid status`.
#[derive(clap::Args)]
pub(crate) struct StatusArgs {
    /// The node, a multiaddr.
    #[arg(long, value_name = "MULTIADDR")]
    node: Multiaddr,
    /// Ask as the peer of this key file (the node's owner, for a node that answers only
    /// its owner); default: a fresh key.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// How long to wait for the answer, ms.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    timeout_ms: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `braid demo`.
#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// The script (default: `fixtures/examples/par_seq_timestamps.air`, with `relay1`,
    /// `relay2`, `relay3` the three nodes).
    script: Option<PathBuf>,
    /// What `getDataSrv.NAME` answers: NAME=JSON; `NAME=@N` is node N's peer id (1-3).
    #[arg(long = "arg", value_name = "NAME=JSON")]
    args: Vec<String>,
}

/// Arguments of `braid load`.
#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    /// Particles to send.
    #[arg(long, default_value_t = 10_000)]
    particles: usize,
    /// Particles in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Particles offered per second (default: as fast as `--concurrency` allows).
    #[arg(long, value_name = "N")]
    rate: Option<f64>,
    /// Each call keeps its result in a variable, so every hop signs the data and the
    /// next ones verify its signature (without it no call result is kept, and the only
    /// signature is the particle's).
    #[arg(long)]
    with_results: bool,
}

/// The demo's script: a compiled Aqua function that asks three peers for their time
/// in parallel, twice (see `fixtures/examples/README.md`).
const DEMO_SCRIPT: &str = include_str!("../../fixtures/examples/par_seq_timestamps.air");

pub(crate) fn node(args: &NodeArgs) -> anyhow::Result<ExitCode> {
    let file = match &args.config {
        Some(path) => NodeSettings::from_toml(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        )
        .with_context(|| format!("{}", path.display()))?,
        None => NodeSettings::default(),
    };
    let env = NodeSettings::from_env(|name| std::env::var(name).ok())?;
    let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    let flags = NodeSettings {
        listen: list(&args.listen),
        external: list(&args.external),
        bootstrap: list(&args.bootstrap),
        network: args.network.clone(),
        key_file: args.key_file.clone(),
        data_dir: args.data_dir.clone(),
        relay: args.relay.clone(),
        owner: args.owner.clone(),
        backend: args.backend.clone(),
        idle_timeout_ms: args.idle_timeout_ms,
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        max_ttl_ms: args.max_ttl_ms,
        ..NodeSettings::default()
    };
    let settings = flags.over(env.over(file));
    let backend = braid_host::backend_by_name(settings.backend.as_deref().unwrap_or("native"))?;
    let services = settings
        .wasm_services
        .iter()
        .map(|config| braid_host::WasmService::load(config).map(std::sync::Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let user_services = crate::user_services::UserServices::load(&args.services)?;
    let key = match &settings.key_file {
        Some(path) => load_or_make_key(path)?,
        None => {
            tracing::warn!("no key file: this node's peer id changes on every start");
            NodeKey::generate()?
        }
    };
    let net_config = settings.net_config(*key.secret())?;
    let owner = settings.owner()?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let net = P2pNetwork::start(net_config).await?;
        let mut node_config = p2p_node_config();
        if let Some(ms) = settings.max_ttl_ms {
            node_config.max_ttl = Duration::from_millis(ms);
        }
        let mut builder = Node::builder()
            .key(key.clone())
            .network(net.clone())
            .config(node_config)
            .backend(backend);
        if let Some(dir) = &settings.data_dir {
            builder = builder.data_dir(dir);
        }
        if let Some(relay) = &settings.relay {
            builder = builder.relay(relay);
        }
        // The owner is the management peer: the guarded built-ins, spells and workers
        // answer it as they answer the node itself.
        if let Some(owner) = &owner {
            builder = builder.owner(owner.to_string());
        }
        let node = builder.build()?;
        for service in services {
            service.register(&node);
        }
        user_services.register(&node);
        net.serve(node.inbox(), owner);
        // Particles stored before a stop go on, now that the services are there.
        node.resume();
        let addrs: Vec<String> = net
            .listen_addrs()
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        if addrs.is_empty() {
            println!("braid node {} (not listening)", key.peer_id());
        } else {
            println!(
                "braid node {} listening on {}",
                key.peer_id(),
                addrs.join(" ")
            );
        }
        match owner {
            Some(owner) => eprintln!(
                "braid node: owned by {owner}: its particles may call the guarded built-ins, and only its status requests are answered"
            ),
            None => eprintln!(
                "braid node: no --owner: the guarded built-ins answer only this node, and everyone's status requests are answered"
            ),
        }
        if let Some(addr) = &args.metrics {
            let handle = net.handle().clone();
            let net_stats: crate::metrics_server::NetStatsSource = Arc::new(move || handle.stats());
            let bound = crate::metrics_server::serve(addr, node.clone(), net_stats).await?;
            println!("metrics on http://{bound}/metrics, health on http://{bound}/health");
        }
        shutdown_signal().await?;
        let stats = node.stats();
        let net_stats = net.handle().stats();
        drop(node);
        eprintln!(
            "braid node: stopped; {} particles still live{}; {} particles sent, {} undeliverable",
            stats.live_particles,
            if settings.data_dir.is_some() {
                " (their data is in the data dir)"
            } else {
                " (no data dir: their data is dropped)"
            },
            net_stats.sent,
            net_stats.undeliverable,
        );
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGINT or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot watch SIGINT")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch Ctrl-C")?;
    Ok(())
}

/// Reads a key file (64 hex digits).
pub(crate) fn load_key(path: &Path) -> anyhow::Result<NodeKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    key_of_hex(path, &text)
}

fn key_of_hex(path: &Path, text: &str) -> anyhow::Result<NodeKey> {
    let text = text.trim();
    let mut secret = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        bail!("{}: expected 64 hex digits", path.display());
    }
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .with_context(|| format!("{}: not hex", path.display()))?;
    }
    Ok(NodeKey::from_secret(secret))
}

/// Reads a key file (64 hex digits), or makes one.
pub(crate) fn load_or_make_key(path: &Path) -> anyhow::Result<NodeKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            braid_host::check_key_file_mode(path)?;
            key_of_hex(path, &text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = NodeKey::generate()?;
            let hex: String = key.secret().iter().map(|b| format!("{b:02x}")).collect();
            write_secret(path, &hex).with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("braid node: made a new key in {}", path.display());
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn write_secret(path: &Path, hex: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(format!("{hex}\n").as_bytes())
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Node settings for libp2p: braid-net retries each send until the particle's
/// deadline, so the node's own send timeout only guards against a stuck network.
pub(crate) fn p2p_node_config() -> NodeConfig {
    let mut config = NodeConfig::standard();
    config.send_timeout = Duration::from_secs(600);
    config
}

/// A client peer with this key (a fresh one, or the owner's for `braid send --key-file`
/// and `braid spell`): a node that does not listen, connected to `addr` (its relay).
pub(crate) async fn client_as(
    addr: &Multiaddr,
    key: NodeKey,
) -> anyhow::Result<(Node, Arc<P2pNetwork>)> {
    let net = P2pNetwork::start(NetConfig::new(*key.secret(), DEFAULT_NETWORK)).await?;
    let relay = net
        .connect(addr.clone())
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let node = Node::builder()
        .key(key)
        .network(net.clone())
        .config(p2p_node_config())
        .relay(relay.to_string())
        .build()?;
    net.serve(node.inbox(), None);
    Ok((node, net))
}

pub(crate) fn send(args: &SendArgs) -> anyhow::Result<ExitCode> {
    let script = crate::read(&args.script)?;
    let data = parse_args(&args.args, &[])?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let key = match &args.key_file {
            Some(path) => load_key(path)?,
            None => NodeKey::generate()?,
        };
        let (node, _net) = client_as(&args.node, key).await?;
        let ttl = Duration::from_millis(u64::from(args.ttl));
        anyhow::Ok(node.execute_with_ttl(script, data, ttl).await)
    })?;
    match result {
        Ok(value) => {
            println!("{value}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("braid send: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub(crate) fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let key = match &args.key_file {
        Some(path) => load_key(path)?,
        None => NodeKey::generate()?,
    };
    let runtime = runtime()?;
    let status = runtime.block_on(request_status(
        *key.secret(),
        args.node.clone(),
        Duration::from_millis(args.timeout_ms),
    ))?;
    if args.json {
        println!("{}", status_json(&status));
    } else {
        print_status(&status);
    }
    Ok(ExitCode::SUCCESS)
}

fn status_json(status: &Status) -> Value {
    json!({
        "peer_id": status.peer_id,
        "particles_in_flight": status.particles_in_flight,
        "connected_peers": status.connected_peers,
        "services": status.services,
        "intake_pressure": status.intake_pressure,
        "sends_in_flight": status.sends_in_flight,
        "memory_bytes": status.memory_bytes,
        "counters": status.counters,
    })
}

fn print_status(status: &Status) {
    println!("peer id             {}", status.peer_id);
    println!(
        "particles in flight {} (an invoke or service calls under way)",
        status.particles_in_flight
    );
    if let Some(live) = status.counters.get("live_particles") {
        println!("particles live      {live} (each until its ttl ends, finished or not)");
    }
    println!("sends in flight     {}", status.sends_in_flight);
    println!(
        "intake pressure     {} (times a full queue made a sender wait)",
        status.intake_pressure
    );
    match status.memory_bytes {
        Some(bytes) => println!(
            "memory              {:.1} MiB resident",
            bytes as f64 / (1 << 20) as f64
        ),
        None => println!("memory              unknown"),
    }
    println!("services            {}", status.services.join(", "));
    println!("connected peers     {}", status.connected_peers.len());
    for peer in &status.connected_peers {
        println!("  {peer}");
    }
    println!("counters");
    for (name, value) in &status.counters {
        println!("  {name:<28} {value}");
    }
}

fn parse_args(args: &[String], keys: &[NodeKey]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for arg in args {
        let Some((name, text)) = arg.split_once('=') else {
            bail!("--arg {arg}: expected NAME=JSON");
        };
        let value = match text.strip_prefix('@') {
            Some(n) if !keys.is_empty() => {
                let key = n
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| keys.get(n.checked_sub(1)?))
                    .with_context(|| format!("--arg {arg}: `@N` needs a node number 1-{}", keys.len()))?;
                Value::String(key.peer_id().to_owned())
            }
            _ => serde_json::from_str(text).with_context(|| {
                format!("--arg {arg}: the value is not JSON (a string needs quotes: {name}='\"{text}\"')")
            })?,
        };
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// Three nodes on loopback, connected to each other (nodes 2 and 3 bootstrap from
/// node 1), and a client (node 0) connected to node 1, which does not listen.
struct Cluster {
    nodes: Vec<Node>,
    nets: Vec<Arc<P2pNetwork>>,
    keys: Vec<NodeKey>,
    /// Each node's listen address (none for the client).
    addrs: Vec<Option<Multiaddr>>,
}

/// Fixed keys for `braid demo` and `braid load`: node N's secret is the SHA-256 of
/// `braid demo node N`. Never use them outside these commands.
fn demo_key(index: usize) -> NodeKey {
    NodeKey::from_secret(Sha256::digest(format!("braid demo node {index}")).into())
}

/// Sees every event of the cluster's node N (0 is the client).
type ClusterObserver = Arc<dyn Fn(usize, &NodeEvent) + Send + Sync>;

async fn cluster(observe: ClusterObserver) -> anyhow::Result<Cluster> {
    let keys: Vec<NodeKey> = (0..4).map(demo_key).collect();
    let mut nets: Vec<Arc<P2pNetwork>> = Vec::new();
    let mut addrs: Vec<Option<Multiaddr>> = vec![None];
    for (i, key) in keys.iter().enumerate() {
        let mut config = NetConfig::new(*key.secret(), "braid-demo");
        if i > 0 {
            config.listen = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        }
        if i > 1 {
            config.bootstrap = addrs[1].iter().cloned().collect();
        }
        let net = P2pNetwork::start(config).await?;
        if i > 0 {
            addrs.push(net.listen_addrs().await?.into_iter().next());
        }
        nets.push(net);
    }
    // Everyone dials node 1; node 2 dials node 3: the demo does not wait for Kademlia.
    for (i, j) in [(0, 1), (2, 1), (3, 1), (2, 3)] {
        let addr = addrs[j].clone().context("a listen address")?;
        nets[i].connect(addr).await?;
    }
    let mut nodes = Vec::new();
    for (i, (key, net)) in keys.iter().zip(&nets).enumerate() {
        let observe = Arc::clone(&observe);
        // One client sends everything (`braid load`: 10,000 particles of 60 s), through
        // one connection per hop: the shares of one init peer and one sender are the
        // whole node here.
        let mut config = p2p_node_config();
        config.max_particles_per_init_peer = config.max_particles;
        config.max_particles_per_sender = config.max_particles;
        config.max_particles_per_address = config.max_particles;
        let mut builder = Node::builder()
            .key(key.clone())
            .network(net.clone())
            .config(config)
            .observer(move |event| observe(i, event));
        if i == 0 {
            builder = builder.relay(keys[1].peer_id());
        }
        let node = builder.build()?;
        net.serve(node.inbox(), None);
        nodes.push(node);
    }
    Ok(Cluster {
        nodes,
        nets,
        keys,
        addrs,
    })
}

fn demo_name(index: usize) -> String {
    match index {
        0 => "client".to_owned(),
        n => format!("node{n}"),
    }
}

pub(crate) fn demo(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let script = match &args.script {
        Some(path) => crate::read(path)?,
        None => DEMO_SCRIPT.to_owned(),
    };
    let keys: Vec<NodeKey> = (1..4).map(demo_key).collect();
    let mut data = parse_args(&args.args, &keys)?;
    if args.script.is_none() {
        for (i, key) in keys.iter().enumerate() {
            data.insert(format!("relay{}", i + 1), json!(key.peer_id()));
        }
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let runtime = runtime()?;
    let (result, nets): (_, Vec<NetStats>) = runtime.block_on(async {
        let log = Arc::clone(&events);
        let cluster = cluster(Arc::new(move |_, event: &NodeEvent| {
            log.lock()
                .expect("no panics while logging")
                .push(event.clone());
        }))
        .await?;
        println!(
            "three nodes on loopback and a client connected to node1 (libp2p: TCP, Noise, yamux):"
        );
        for (i, addr) in cluster.addrs.iter().enumerate() {
            let place = addr
                .as_ref()
                .map_or("(client, not listening)".to_owned(), ToString::to_string);
            println!(
                "  {:<7} {place:<28} {}",
                demo_name(i),
                cluster.keys[i].peer_id()
            );
        }
        println!();
        let result = cluster.nodes[0]
            .execute_with_ttl(script, data, Duration::from_secs(20))
            .await;
        // Let the last sends' answers arrive before reading the counters.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let nets = cluster.nets.iter().map(|n| n.handle().stats()).collect();
        anyhow::Ok((result, nets))
    })?;
    let events = events.lock().expect("no panics while logging").clone();
    let names: Vec<(String, String)> = (0..4)
        .map(|i| (demo_key(i).peer_id().to_owned(), demo_name(i)))
        .collect();
    let name_of = |peer: &str| crate::run_command::name_in(&names, peer);
    crate::run_command::print_report(&names, &events, &result);
    println!();
    println!("what each node did:");
    for (i, stats) in nets.iter().enumerate() {
        let calls = events
            .iter()
            .filter(|e| matches!(e, NodeEvent::Call { peer, .. } if name_of(peer) == demo_name(i)))
            .count();
        println!(
            "  {:<7} {calls} service calls, took {} particles from peers, sent {}, {} connections, {} retries, {} undeliverable",
            demo_name(i),
            stats.particles_received,
            stats.sent,
            stats.connections_established,
            stats.retries,
            stats.undeliverable,
        );
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The Ed25519 operations of a `braid load` run, all nodes together.
#[derive(Debug, Default, Clone, Copy)]
struct Ed25519Work {
    /// Particle signatures verified on arrival (`verify_strict`).
    particle_verified: u64,
    /// Data signatures verified by invocations.
    data_verified: u64,
    /// Signatures made: data signatures and the particles' own.
    signed: u64,
}

/// The cryptographic floor: the Ed25519 operations the run needed per particle, each
/// timed here in CPU time (key decompression included, as the nodes do it), spread
/// over every core; beside the rate the run reached and the CPU time it took.
fn print_floor(work: &Ed25519Work, particles: usize, rate: f64, run_cpu: Duration) {
    let n = particles as f64;
    let (verify_strict, verify, sign) = ed25519_costs();
    let per_particle = [
        (work.particle_verified as f64 / n, verify_strict),
        (work.data_verified as f64 / n, verify),
        (work.signed as f64 / n, sign),
    ];
    let cpu: Duration = per_particle.iter().map(|(k, t)| t.mul_f64(*k)).sum();
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let floor = cores as f64 / cpu.as_secs_f64();
    println!(
        "Ed25519 a particle: {:.1} particle signatures verified ({:.1} µs each), {:.1} data signatures verified ({:.1} µs), {:.1} signed ({:.1} µs): {:.0} µs of CPU",
        per_particle[0].0,
        verify_strict.as_secs_f64() * 1e6,
        per_particle[1].0,
        verify.as_secs_f64() * 1e6,
        per_particle[2].0,
        sign.as_secs_f64() * 1e6,
        cpu.as_secs_f64() * 1e6,
    );
    println!(
        "cryptographic floor on {cores} cores: {floor:.0} particles/s; reached {rate:.0} ({:.2}x the floor's time)",
        floor / rate
    );
    let run_per_particle = run_cpu.as_secs_f64() / n;
    println!(
        "CPU time of the run (all threads, user and system): {:.0} µs a particle, {:.2}x its Ed25519 work",
        run_per_particle * 1e6,
        run_per_particle / cpu.as_secs_f64()
    );
}

/// Which CPU clock [`cpu_time`] reads.
#[derive(Clone, Copy)]
enum CpuClock {
    /// Every thread of the process.
    Process,
    /// The calling thread.
    Thread,
}

/// The CPU time `clock` has counted (where there is no CPU clock, the time since an
/// arbitrary start).
fn cpu_time(clock: CpuClock) -> Duration {
    #[cfg(unix)]
    {
        use rustix::time::{ClockId, clock_gettime};
        let t = clock_gettime(match clock {
            CpuClock::Process => ClockId::ProcessCPUTime,
            CpuClock::Thread => ClockId::ThreadCPUTime,
        });
        Duration::new(
            t.tv_sec.max(0) as u64,
            t.tv_nsec.clamp(0, 999_999_999) as u32,
        )
    }
    #[cfg(not(unix))]
    {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let _ = clock;
        START.get_or_init(Instant::now).elapsed()
    }
}

/// The CPU time of one particle signature check, one data signature check and one
/// signature, each with its key decompressed as the nodes do (median of several
/// rounds, on this machine now).
fn ed25519_costs() -> (Duration, Duration, Duration) {
    use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
    const ROUNDS: usize = 7;
    const EACH: u32 = 200;
    let key = SigningKey::from_bytes(&Sha256::digest(b"braid load: ed25519 costs").into());
    let public = key.verifying_key().to_bytes();
    // About the size of what the route's nodes sign: a few content ids and an id.
    let message = vec![7u8; 300];
    let signature = key.sign(&message);
    let median = |f: &dyn Fn()| {
        let mut rounds: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let started = cpu_time(CpuClock::Thread);
                for _ in 0..EACH {
                    f();
                }
                (cpu_time(CpuClock::Thread) - started) / EACH
            })
            .collect();
        rounds.sort();
        rounds[ROUNDS / 2]
    };
    let strict = median(&|| {
        let key = VerifyingKey::from_bytes(std::hint::black_box(&public)).expect("a key");
        assert!(key.verify_strict(&message, &signature).is_ok());
    });
    let plain = median(&|| {
        let key = VerifyingKey::from_bytes(std::hint::black_box(&public)).expect("a key");
        assert!(key.verify(&message, &signature).is_ok());
    });
    let sign = median(&|| {
        let _ = VerifyingKey::from_bytes(std::hint::black_box(&public)).expect("a key");
        std::hint::black_box(key.sign(std::hint::black_box(&message)));
    });
    (strict, plain, sign)
}

/// The load script: a call on the client, then on node1, node2, node3 and node1 again
/// (back towards the client, which does not listen), then the response. Six service
/// calls, five network hops. `with_results`: the first five calls keep their results
/// (`r0` … `r4`), which their peers sign.
fn load_script(keys: &[NodeKey], with_results: bool) -> String {
    let output = |n: usize| {
        if with_results {
            format!(" r{n}")
        } else {
            String::new()
        }
    };
    let end = "(call %init_peer_id% (\"callbackSrv\" \"response\") [\"done\"])".to_owned();
    let chain = [1, 2, 3, 1]
        .iter()
        .enumerate()
        .rev()
        .fold(end, |rest, (n, &i)| {
            format!(
                "(seq (call \"{}\" (\"op\" \"noop\") []{}) {rest})",
                keys[i].peer_id(),
                output(n + 1)
            )
        });
    format!(
        "(seq (call %init_peer_id% (\"op\" \"noop\") []{}) {chain})",
        output(0)
    )
}

pub(crate) fn load(args: &LoadArgs) -> anyhow::Result<ExitCode> {
    if args.particles == 0 || args.concurrency == 0 {
        bail!("--particles and --concurrency must be at least 1");
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of particles per second");
    }
    type Marks = HashMap<String, Vec<(usize, Instant)>>;
    let marks: Arc<Mutex<Marks>> = Arc::new(Mutex::new(HashMap::new()));
    let runtime = runtime()?;
    let outcome = runtime.block_on(async {
        let log = Arc::clone(&marks);
        let cluster = cluster(Arc::new(move |i, event: &NodeEvent| {
            if let NodeEvent::Call { particle_id, .. } = event {
                let now = Instant::now();
                log.lock()
                    .expect("no panics while logging")
                    .entry(particle_id.clone())
                    .or_default()
                    .push((i, now));
            }
        }))
        .await?;
        let script = load_script(&cluster.keys, args.with_results);
        let slots = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
        let started = Instant::now();
        let cpu_started = cpu_time(CpuClock::Process);
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..args.particles {
            if let Some(rate) = args.rate {
                let at = started + Duration::from_secs_f64(n as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
            }
            let permit = Arc::clone(&slots).acquire_owned().await?;
            let client = cluster.nodes[0].clone();
            let script = script.clone();
            tasks.spawn(async move {
                let result = client
                    .execute_with_ttl(
                        script,
                        Vec::<(String, Value)>::new(),
                        Duration::from_secs(60),
                    )
                    .await;
                drop(permit);
                result
            });
        }
        let mut failures = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done? {
                Ok(v) if v == json!("done") => {}
                other => failures.push(format!("{other:?}")),
            }
        }
        let elapsed = started.elapsed();
        let cpu = cpu_time(CpuClock::Process) - cpu_started;
        let undeliverable: u64 = cluster
            .nets
            .iter()
            .map(|n| n.handle().stats().undeliverable)
            .sum();
        let retries: u64 = cluster
            .nets
            .iter()
            .map(|n| n.handle().stats().retries)
            .sum();
        let work = cluster
            .nodes
            .iter()
            .map(Node::stats)
            .fold(Ed25519Work::default(), |sum, s| Ed25519Work {
                particle_verified: sum.particle_verified + s.particle_signatures_verified,
                data_verified: sum.data_verified + s.data_signatures_verified,
                signed: sum.signed + s.data_signatures_made,
            });
        anyhow::Ok((elapsed, cpu, failures, undeliverable, retries, work))
    })?;
    let (elapsed, cpu, failures, undeliverable, retries, mut work) = outcome;
    // Each particle is signed once by the client (`execute`).
    work.signed += args.particles as u64;
    let marks = marks.lock().expect("no panics while logging");
    // Per hop: from a call on one node to the next call, on the next node of the chain.
    let route = [0usize, 1, 2, 3, 1, 0];
    let mut hops: Vec<Vec<f64>> = vec![Vec::new(); route.len() - 1];
    for points in marks.values() {
        let mut points = points.clone();
        points.sort_by_key(|(_, at)| *at);
        if points.iter().map(|(i, _)| *i).collect::<Vec<_>>() != route {
            continue;
        }
        for (h, pair) in points.windows(2).enumerate() {
            hops[h].push((pair[1].1 - pair[0].1).as_secs_f64() * 1000.0);
        }
    }
    let done = args.particles - failures.len();
    println!(
        "{} particles through three nodes over libp2p ({} at once{}{}): {done} answered, {} lost",
        args.particles,
        args.concurrency,
        args.rate
            .map_or(String::new(), |r| format!(", {r} offered per second")),
        if args.with_results {
            ", every call's result kept"
        } else {
            ""
        },
        failures.len()
    );
    let rate = done as f64 / elapsed.as_secs_f64();
    println!(
        "{:.1} s, {rate:.0} particles/s, {retries} retries, {undeliverable} undeliverable",
        elapsed.as_secs_f64(),
    );
    print_floor(&work, args.particles, rate, cpu);
    println!("latency per hop (a call on one node to the call on the next), ms:");
    for (h, samples) in hops.iter_mut().enumerate() {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| {
            samples
                .get(((samples.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        println!(
            "  {:<7} -> {:<7} p50 {:>7.2}  p99 {:>7.2}  ({} samples)",
            demo_name(route[h]),
            demo_name(route[h + 1]),
            at(0.5),
            at(0.99),
            samples.len()
        );
    }
    for failure in failures.iter().take(5) {
        println!("failed: {failure}");
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
