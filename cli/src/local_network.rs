//! `braid up`, `braid down`, `braid ps`: a local network of `braid node` processes that
//! stays up across commands, kept in a project folder (`.braid/` in the current
//! directory, or in `--dir DIR`): one key file, data dir and log per node, and
//! `network.json` with each node's peer id, address and process id. Keys and ports
//! persist across `down` and `up`. `braid run --network [--dir DIR]` runs a script
//! through it. How the nodes talk (today braid's TCP transport) is the
//! `braid node` command's business; this file only starts processes and reads their
//! first line.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The folder of the network's files, in the project folder.
const DIR: &str = ".braid";

/// Which project folder's network.
#[derive(clap::Args)]
pub(crate) struct ProjectArgs {
    /// The project folder: the network's files are in `DIR/.braid` (default: the
    /// current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

impl ProjectArgs {
    /// `DIR/.braid`.
    fn folder(&self) -> PathBuf {
        self.dir.join(DIR)
    }
}

/// Arguments of `braid up`.
#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// How many nodes (the first time; later `up`s reuse the folder's nodes).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    #[command(flatten)]
    project: ProjectArgs,
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
    fn path(project: &Path) -> PathBuf {
        project.join(DIR).join("network.json")
    }

    /// The network of the project folder `project`, if `braid up` ever ran there.
    pub(crate) fn load(project: &Path) -> anyhow::Result<Option<Self>> {
        let path = Self::path(project);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
                format!("{} is not a network file", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn save(&self, project: &Path) -> anyhow::Result<()> {
        let path = Self::path(project);
        std::fs::write(&path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("cannot write {}", path.display()))
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
    let project = args.project.dir.as_path();
    let dir = args.project.folder();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
    let mut network = LocalNetwork::load(project)?.unwrap_or_default();
    if network.nodes.iter().any(|n| alive(n.pid)) {
        bail!("the local network is already up (braid ps; braid down stops it)");
    }
    if network.nodes.is_empty() {
        if args.nodes == 0 {
            bail!("--nodes must be at least 1");
        }
        for i in 1..=args.nodes {
            let name = format!("node{i}");
            let key = crate::node_command::load_or_make_key(&dir.join(format!("{name}.key")))?;
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
        let log = std::fs::File::create(dir.join(format!("{}.log", node.name)))?;
        let mut command = Command::new(&exe);
        command
            .args(["node", "--listen", &node.address, "--key-file"])
            .arg(dir.join(format!("{}.key", node.name)))
            .arg("--data-dir")
            .arg(dir.join(format!("{}.data", node.name)));
        // Each node joins through the ones started before it; Kademlia finds the rest.
        for other in &all[..i] {
            command.args([
                "--bootstrap",
                &format!("{}/p2p/{}", other.address, other.peer_id),
            ]);
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
    network.save(project)?;
    let with_dir = if project == Path::new(".") {
        String::new()
    } else {
        format!(" --dir {}", project.display())
    };
    println!(
        "up: {} nodes (logs in {}/*.log; braid run --network{with_dir} SCRIPT; braid down{with_dir})",
        network.nodes.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn down(args: &ProjectArgs) -> anyhow::Result<ExitCode> {
    let Some(mut network) = LocalNetwork::load(&args.dir)? else {
        bail!(
            "no local network in {} (braid up starts one)",
            args.dir.display()
        );
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
    network.save(&args.dir)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn ps(args: &ProjectArgs) -> anyhow::Result<ExitCode> {
    let Some(network) = LocalNetwork::load(&args.dir)? else {
        bail!(
            "no local network in {} (braid up starts one)",
            args.dir.display()
        );
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
