//! `braid up`, `braid down`, `braid ps`: a local network of `braid node` processes that
//! stays up across commands, kept in a project folder (`.braid/`): one key file, data
//! dir and log per node, and `network.json` with each node's peer id, address and
//! process id. Keys and ports persist across `down` and `up`. `braid run --network`
//! runs a script through it. How the nodes talk (today braid's TCP transport) is the
//! `braid node` command's business; this file only starts processes and reads their
//! first line.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The project folder.
const DIR: &str = ".braid";

/// Arguments of `braid up`.
#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// How many nodes (the first time; later `up`s reuse the folder's nodes).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
}

/// One node of the local network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LocalNode {
    pub(crate) name: String,
    pub(crate) peer_id: String,
    pub(crate) address: String,
    pub(crate) pid: Option<u32>,
}

/// `.braid/network.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct LocalNetwork {
    pub(crate) nodes: Vec<LocalNode>,
}

impl LocalNetwork {
    fn path() -> PathBuf {
        Path::new(DIR).join("network.json")
    }

    /// The network of this folder, if `braid up` ever ran here.
    pub(crate) fn load() -> anyhow::Result<Option<Self>> {
        match std::fs::read_to_string(Self::path()) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("{} is not a network file", Self::path().display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", Self::path().display())),
        }
    }

    fn save(&self) -> anyhow::Result<()> {
        std::fs::write(Self::path(), serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", Self::path().display()))
    }
}

/// Whether process `pid` is alive (`kill -0`).
fn alive(pid: Option<u32>) -> bool {
    pid.is_some_and(|pid| {
        Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A free loopback port (bound and released).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) fn up(args: &UpArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(DIR).with_context(|| format!("cannot make {DIR}"))?;
    let mut network = LocalNetwork::load()?.unwrap_or_default();
    if network.nodes.iter().any(|n| alive(n.pid)) {
        bail!("the local network is already up (braid ps; braid down stops it)");
    }
    if network.nodes.is_empty() {
        if args.nodes == 0 {
            bail!("--nodes must be at least 1");
        }
        for i in 1..=args.nodes {
            let name = format!("node{i}");
            let key =
                crate::node_command::load_or_make_key(&Path::new(DIR).join(format!("{name}.key")))?;
            network.nodes.push(LocalNode {
                peer_id: key.peer_id().to_owned(),
                address: format!("/ip4/127.0.0.1/tcp/{}", free_port()?),
                name,
                pid: None,
            });
        }
    }
    let exe = std::env::current_exe().context("cannot find the braid binary")?;
    let all = network.nodes.clone();
    for (i, node) in network.nodes.iter_mut().enumerate() {
        let dir = Path::new(DIR);
        let log = std::fs::File::create(dir.join(format!("{}.log", node.name)))?;
        let mut command = Command::new(&exe);
        command
            .args(["node", "--listen", &node.address, "--key-file"])
            .arg(dir.join(format!("{}.key", node.name)))
            .arg("--data-dir")
            .arg(dir.join(format!("{}.data", node.name)));
        // Each node joins through the ones started before it; Kademlia finds the rest.
        for other in &all[..i] {
            command.args(["--bootstrap", &format!("{}/p2p/{}", other.address, other.peer_id)]);
        }
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", node.name))?;
        // It is up when its log says it listens.
        let log_path = dir.join(format!("{}.log", node.name));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.contains("listening on") {
                break;
            }
            if Instant::now() > deadline || child.try_wait()?.is_some() {
                bail!(
                    "{} did not start (see {}): {text}",
                    node.name,
                    log_path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        node.pid = Some(child.id());
        println!(
            "{:<6} {} {} pid {}",
            node.name,
            node.peer_id,
            node.address,
            child.id()
        );
    }
    network.save()?;
    println!(
        "up: {} nodes (logs in {DIR}/*.log; braid run --network SCRIPT; braid down)",
        network.nodes.len()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn down() -> anyhow::Result<ExitCode> {
    let Some(mut network) = LocalNetwork::load()? else {
        bail!("no local network here (braid up starts one)");
    };
    for node in &mut network.nodes {
        if let Some(pid) = node.pid.filter(|_| alive(node.pid)) {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while alive(Some(pid)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            println!("{:<6} stopped", node.name);
        }
        node.pid = None;
    }
    network.save()?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn ps() -> anyhow::Result<ExitCode> {
    let Some(network) = LocalNetwork::load()? else {
        bail!("no local network here (braid up starts one)");
    };
    for node in &network.nodes {
        let state = match node.pid {
            Some(pid) if alive(Some(pid)) => format!("up (pid {pid})"),
            _ => "down".to_owned(),
        };
        println!("{:<6} {} {} {state}", node.name, node.peer_id, node.address);
    }
    Ok(ExitCode::SUCCESS)
}
