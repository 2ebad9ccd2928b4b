//! `braid run`: runs a script as a particle on local nodes with the built-in services,
//! and prints what happened: every service call, interpreter errors, the response.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use braid_host::{ExecuteError, MemoryNetwork, Node, NodeEvent, NodeKey};

use crate::user_services::{MockFunction, ServiceArgs, UserServices};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Arguments of `braid run`.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The script file (`-` for standard input): AIR, or Aqua source (`.aqua`, with
    /// `--func`).
    script: PathBuf,
    /// With an `.aqua` file: the function call to compile and run, e.g.
    /// `--func 'greet(1, "a")'` (variables in it are `--arg`s). Needs Node.js and
    /// `npm ci` in `clients/aqua`.
    #[arg(short = 'f', long = "func", value_name = "CALL")]
    func: Option<String>,
    /// What `getDataSrv.NAME` answers: NAME=JSON (a string needs its quotes:
    /// `name='"braid"'`). `NAME=@N` is node N's peer id (0 the client, 1 its relay).
    #[arg(long = "arg", value_name = "NAME=JSON")]
    args: Vec<String>,
    /// How many in-process nodes: the first runs the script as the client, the second
    /// is its relay (`-relay-`), the others are peers reachable by id.
    #[arg(long, default_value_t = 1)]
    peers: usize,
    /// The particle's time to live, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    ttl: u32,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Write every invocation's inputs and outcome to DIR as JSON (for `braid replay`).
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// With --record: keep each node's secret key in the records (braid run's keys are
    /// fixed test keys; `braid replay` finds them without this).
    #[arg(long, requires = "record")]
    record_secret_keys: bool,
    /// Run on the local network of this folder (`braid up`) instead of in-process
    /// nodes: the client connects to its first node, its relay; `@N` is node N (1…).
    #[arg(long, conflicts_with = "peers")]
    network: bool,
    /// With --network: the project folder of the local network (`braid up --dir`;
    /// default: the current directory).
    #[arg(long = "dir", value_name = "DIR", requires = "network")]
    network_dir: Option<PathBuf>,
    /// Answer an arrow (callback) argument NAME of the function, i.e. calls of
    /// `callbackSrv.NAME` on the client: NAME=JSON.
    #[arg(long = "callback", value_name = "NAME=JSON")]
    callbacks: Vec<String>,
    /// Answer callback NAME by running a command (the call as JSON on stdin, the answer
    /// as JSON on stdout): NAME=COMMAND.
    #[arg(long = "callback-command", value_name = "NAME=COMMAND")]
    callback_commands: Vec<String>,
    #[command(flatten)]
    services: ServiceArgs,
}

/// Fixed keys for the nodes of `braid run`: the secret of node N is the SHA-256 of
/// `braid run node N`, so their peer ids are the same on every run (like the JS
/// client's test network). Never use them outside this command.
fn node_key(index: usize) -> NodeKey {
    NodeKey::from_secret(Sha256::digest(format!("braid run node {index}")).into())
}

fn node_name(index: usize) -> String {
    match index {
        0 => "client".to_owned(),
        1 => "relay".to_owned(),
        n => format!("peer{n}"),
    }
}

pub(crate) fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let aqua = args.script.extension().is_some_and(|x| x == "aqua");
    if args.peers == 0 {
        bail!("--peers must be at least 1");
    }
    let local = if args.network {
        let project = args
            .network_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("."));
        let Some(network) = crate::local_network::LocalNetwork::load(&project)? else {
            bail!(
                "--network: no local network in {} (braid up starts one)",
                project.display()
            );
        };
        if network.nodes.iter().all(|n| n.pid.is_none()) {
            bail!("--network: the local network is down (braid up)");
        }
        Some(network)
    } else {
        None
    };
    // With --network only the client (node 0) runs here, with a fresh key.
    let keys: Vec<NodeKey> = match &local {
        Some(_) => vec![NodeKey::generate()?],
        None => (0..args.peers).map(node_key).collect(),
    };
    let mut peer_ids: Vec<String> = keys.iter().map(|k| k.peer_id().to_owned()).collect();
    if let Some(network) = &local {
        peer_ids.extend(network.nodes.iter().map(|n| n.peer_id.clone()));
    }
    let data = parse_args(&args.args, &peer_ids)?;
    let script = match (&args.func, aqua) {
        (Some(call), true) => crate::aqua::compile(&args.script, call, &data)?,
        (None, true) => bail!(
            "{} is Aqua source: name the function to run with --func 'name(args)'",
            args.script.display()
        ),
        (Some(_), false) => bail!("--func needs an .aqua file"),
        (None, false) => crate::read(&args.script)?,
    };
    let services = UserServices::load(&args.services)?;
    let callbacks = callback_services(args, &peer_ids)?;
    check_args(&script, &data, &services)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let names: Vec<(String, String)> = match &local {
        Some(network) => std::iter::once((peer_ids[0].clone(), node_name(0)))
            .chain(
                network
                    .nodes
                    .iter()
                    .map(|n| (n.peer_id.clone(), n.name.clone())),
            )
            .collect(),
        None => peer_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), node_name(i)))
            .collect(),
    };
    // Every run is recorded: the records tell what still waits when no response came.
    let scratch = ScratchDir::new()?;
    let record_dir = args.record.clone().unwrap_or_else(|| scratch.0.clone());
    let stream = !args.json;
    if stream {
        for (id, name) in &names {
            println!("node {name:<7} {id}");
        }
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let ttl = Duration::from_millis(u64::from(args.ttl));
    // Every node of the run, the client first: recorded, observed, with the services.
    let builder = |key: &NodeKey| {
        Node::builder()
            .key(key.clone())
            .record_dir(&record_dir)
            .observer(observer(names.clone(), Arc::clone(&events), stream))
    };
    let register = |node: &Node, client: bool| {
        services.register(node);
        if client {
            callbacks.register(node);
        }
    };
    let result = runtime.block_on(async {
        // The other nodes stay alive (in `_peers`) while the client runs the script.
        let (client, _peers) = if let Some(network) = &local {
            // On the local network: the client alone here, its relay the first node.
            let key = &keys[0];
            let address: braid_host::p2p::Multiaddr = network.nodes[0]
                .address
                .parse()
                .with_context(|| format!("{} is not a multiaddr", network.nodes[0].address))?;
            let net = braid_host::p2p::P2pNetwork::start(braid_host::p2p::NetConfig::new(
                *key.secret(),
                crate::settings::DEFAULT_NETWORK,
            ))
            .await?;
            let relay = net
                .connect(address)
                .await
                .with_context(|| format!("cannot connect to {}", network.nodes[0].address))?;
            let node = builder(key)
                .network(net.clone())
                .config(crate::node_command::p2p_node_config())
                .relay(relay.to_string())
                .build()?;
            net.serve(node.inbox(), None);
            register(&node, true);
            // The node holds its transport: dropping the node stops it.
            (node, Vec::new())
        } else {
            // In process: node 0 the client, node 1 its relay, all on one network.
            let net = MemoryNetwork::new();
            let mut nodes = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                let mut node = builder(key).network(net.clone());
                if i == 0 && keys.len() > 1 {
                    node = node.relay(keys[1].peer_id());
                }
                let node = node.build()?;
                register(&node, i == 0);
                net.attach(&node);
                nodes.push(node);
            }
            let client = nodes.remove(0);
            (client, nodes)
        };
        anyhow::Ok(client.execute_with_ttl(script, data, ttl).await)
    })?;
    // Dropping the runtime waits for record writes in progress.
    drop(runtime);
    if args.record_secret_keys {
        add_secret_keys(&record_dir)?;
    }
    let events = events.lock().expect("no panics while logging").clone();
    let responded = events.iter().any(|e| {
        matches!(e, NodeEvent::Call { service, function, .. }
            if service == "callbackSrv" && function == "response")
    });
    let outcome = match result {
        Ok(_) if !responded => Err(RunEnd::Quiet),
        Ok(v) => Ok(v),
        Err(e) => Err(RunEnd::Failed(e)),
    };
    let waiting = match &outcome {
        Ok(_) => Vec::new(),
        Err(_) => waiting(&record_dir, &peer_ids[0], &names),
    };
    if args.json {
        println!("{}", report_json(&names, &events, &outcome, &waiting));
    } else {
        print_end(&outcome, &waiting);
    }
    Ok(if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Writes the test key of `braid run`'s node into each record of `dir` without one.
fn add_secret_keys(dir: &std::path::Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let Ok(json) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let Ok(record) = braid_host::InvokeRecord::from_json(&json) else {
            continue;
        };
        if record.has_secret_key() {
            continue;
        }
        if let Some(secret) = key_for(&record.params.current_peer_id, None) {
            let text = serde_json::to_string_pretty(
                &record.with_secret_key(secret).to_json_with_secret_key(),
            )?;
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

/// How a run ended without a response.
pub(crate) enum RunEnd {
    /// The particle stopped everywhere without calling `callbackSrv.response`.
    Quiet,
    /// The node said why.
    Failed(ExecuteError),
}

/// A fresh folder under the system's temporary folder, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("braid-run-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `callbackSrv` functions `--callback` and `--callback-command` define.
fn callback_services(args: &RunArgs, keys: &[String]) -> anyhow::Result<UserServices> {
    let mut functions = Vec::new();
    for entry in &args.callbacks {
        let Some((name, text)) = entry.split_once('=') else {
            bail!("--callback {entry}: expected NAME=JSON");
        };
        let mut value: Value = serde_json::from_str(text).with_context(|| {
            format!("--callback {entry}: the value is not JSON (a string needs quotes)")
        })?;
        replace_node_refs(&mut value, keys).with_context(|| format!("--callback {entry}"))?;
        functions.push(MockFunction::answer(name, value));
    }
    for entry in &args.callback_commands {
        let Some((name, command)) = entry.split_once('=') else {
            bail!("--callback-command {entry}: expected NAME=COMMAND");
        };
        functions.push(MockFunction::command(name, command));
    }
    let mut services = UserServices::default();
    if !functions.is_empty() {
        services.add_mocks("callbackSrv".to_owned(), functions);
    }
    Ok(services)
}

/// The names the script asks `getDataSrv` for (its `--arg`s), in order of appearance.
fn data_names(script: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = script;
    while let Some(at) = rest.find("\"getDataSrv\"") {
        rest = &rest[at + "\"getDataSrv\"".len()..];
        let after = rest.trim_start();
        let Some(quoted) = after.strip_prefix('"') else {
            continue;
        };
        let Some(end) = quoted.find('"') else {
            continue;
        };
        let name = &quoted[..end];
        if name != "-relay-" && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// Fails, before anything runs, when the script asks for data no `--arg` gives, or an
/// `--arg` names data the script never asks for.
fn check_args(
    script: &str,
    data: &Map<String, Value>,
    services: &UserServices,
) -> anyhow::Result<()> {
    let wanted = data_names(script);
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|n| !data.contains_key(n.as_str()) && !services.defines("getDataSrv", n))
        .collect();
    let unused: Vec<&String> = data.keys().filter(|n| !wanted.contains(n)).collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "the script needs {} (give each as --arg NAME=JSON)",
            list(&missing)
        ));
    }
    if !unused.is_empty() {
        let known = if wanted.is_empty() {
            "it asks for none".to_owned()
        } else {
            format!("it asks for {}", list(&wanted.iter().collect::<Vec<_>>()))
        };
        problems.push(format!(
            "the script never asks for {} ({known})",
            list(&unused)
        ));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    Ok(())
}

fn list(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What still waits, from the records of the client's particle: one line per
/// instruction that waits on the last step of each peer (`peer line:col instruction #
/// why`).
fn waiting(dir: &std::path::Path, client: &str, names: &[(String, String)]) -> Vec<String> {
    // The records get braid run's test keys back as they are read.
    let Ok(records) = crate::explain_command::read_records(dir) else {
        return Vec::new();
    };
    // The client's latest particle (a --record folder may hold earlier runs).
    let Some(latest) = records
        .iter()
        .filter(|r| r.params.init_peer_id == client)
        .max_by_key(|r| r.params.timestamp)
        .map(|r| r.params.particle_id.clone())
    else {
        return Vec::new();
    };
    let Ok(life) = crate::explain_command::life_of_records(records, Some(&latest)) else {
        return Vec::new();
    };
    let Ok(ast) = braid_grammar::parse(&life.script) else {
        return Vec::new();
    };
    let lines = braid_explain::script_lines(&ast);
    let mut last = std::collections::BTreeMap::new();
    for step in &life.steps {
        last.insert(step.peer.clone(), step);
    }
    let mut out = Vec::new();
    for (peer, step) in last {
        let notes = braid_explain::annotate(&ast, step);
        for line in &lines {
            for note in notes.notes.get(&line.instr).into_iter().flatten() {
                if note.contains("waits") {
                    out.push(format!(
                        "{} {}:{} {} # {note}",
                        name_in(names, &peer),
                        line.location.line,
                        line.location.column,
                        line.text
                    ));
                }
            }
        }
    }
    out
}

fn parse_args(args: &[String], keys: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for arg in args {
        let Some((name, text)) = arg.split_once('=') else {
            bail!("--arg {arg}: expected NAME=JSON");
        };
        let mut value = if text.starts_with('@') {
            Value::String(text.to_owned())
        } else {
            serde_json::from_str(text).with_context(|| {
                format!("--arg {arg}: the value is not JSON (a string needs quotes: {name}='\"{text}\"')")
            })?
        };
        replace_node_refs(&mut value, keys).with_context(|| format!("--arg {arg}"))?;
        out.insert(name.to_owned(), value);
    }
    Ok(out)
}

/// Replaces every string `@N` in `value` (at any depth) with node N's peer id.
fn replace_node_refs(value: &mut Value, keys: &[String]) -> anyhow::Result<()> {
    match value {
        Value::String(text) => {
            if let Some(index) = text.strip_prefix('@') {
                let index: usize = index
                    .parse()
                    .with_context(|| format!("`{text}`: `@N` needs a node number"))?;
                let key = keys.get(index).with_context(|| {
                    format!("there is no node {index} (nodes 0 to {})", keys.len() - 1)
                })?;
                *text = key.clone();
            }
        }
        Value::Array(items) => {
            for item in items {
                replace_node_refs(item, keys)?;
            }
        }
        Value::Object(fields) => {
            for item in fields.values_mut() {
                replace_node_refs(item, keys)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn compact(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The name `names` (peer id, name) gives `peer`, else the peer id itself.
pub(crate) fn name_in(names: &[(String, String)], peer: &str) -> String {
    names
        .iter()
        .find(|(id, _)| id == peer)
        .map_or_else(|| peer.to_owned(), |(_, name)| name.clone())
}

pub(crate) fn print_report(
    names: &[(String, String)],
    events: &[NodeEvent],
    result: &Result<Value, ExecuteError>,
) {
    for (id, name) in names {
        println!("node {name:<7} {id}");
    }
    for event in events {
        print_event(names, event);
    }
    match result {
        Ok(value) => println!("response {value}"),
        Err(ExecuteError::Script(error)) => println!("script error {error}"),
        Err(e) => println!("failed: {e}"),
    }
}

/// Prints one event as a line (nothing for the events not shown).
/// A node's observer for `braid run`: prints each event as it happens (unless `--json`)
/// and keeps it for the report.
fn observer(
    names: Vec<(String, String)>,
    log: Arc<Mutex<Vec<NodeEvent>>>,
    stream: bool,
) -> impl Fn(&NodeEvent) + Send + Sync + 'static {
    move |event| {
        if stream {
            print_event(&names, event);
        }
        log.lock()
            .expect("no panics while logging")
            .push(event.clone())
    }
}

pub(crate) fn print_event(names: &[(String, String)], event: &NodeEvent) {
    let name_of = |peer: &str| name_in(names, peer);
    match event {
        NodeEvent::Call {
            peer,
            service,
            function,
            args,
            result,
            ..
        } => {
            let answer = match result {
                Ok(v) => format!("= {v}"),
                Err(e) => format!("failed: {}", e.0),
            };
            println!(
                "call {:<7} {service}.{function}({}) {answer}",
                name_of(peer),
                compact(args)
            );
        }
        NodeEvent::InvokeFailed {
            peer,
            code,
            message,
            ..
        } => println!(
            "error {:<6} interpreter error {code}: {message}",
            name_of(peer)
        ),
        NodeEvent::Rejected { peer, reason, .. } => {
            println!("error {:<6} particle rejected: {reason}", name_of(peer));
        }
        NodeEvent::SendFailed {
            peer, to, error, ..
        } => {
            println!(
                "error {:<6} not sent to {}: {error}",
                name_of(peer),
                name_of(to)
            );
        }
        _ => {}
    }
}

/// The last lines of `braid run`: the response, or why there was none and what waits.
fn print_end(outcome: &Result<Value, RunEnd>, waiting: &[String]) {
    match outcome {
        Ok(value) => {
            println!("response {value}");
            return;
        }
        Err(RunEnd::Quiet) => {
            println!("no response: the particle stopped without calling callbackSrv.response")
        }
        Err(RunEnd::Failed(ExecuteError::Script(error))) => println!("script error {error}"),
        Err(RunEnd::Failed(e)) => println!("failed: {e}"),
    }
    if !waiting.is_empty() {
        println!("still waiting:");
        for line in waiting {
            println!("  {line}");
        }
    }
}

fn report_json(
    names: &[(String, String)],
    events: &[NodeEvent],
    outcome: &Result<Value, RunEnd>,
    waiting: &[String],
) -> Value {
    let name_of = |peer: &str| name_in(names, peer);
    let nodes: Map<String, Value> = names
        .iter()
        .map(|(id, name)| (name.clone(), json!(id)))
        .collect();
    let mut calls = Vec::new();
    let mut errors = Vec::new();
    for event in events {
        match event {
            NodeEvent::Call {
                peer,
                service,
                function,
                args,
                result,
                ..
            } => {
                let (key, value) = match result {
                    Ok(v) => ("result", v.clone()),
                    Err(e) => ("error", e.0.clone()),
                };
                calls.push(json!({
                    "peer": name_of(peer), "service": service, "function": function,
                    "args": args, key: value,
                }));
            }
            NodeEvent::InvokeFailed {
                peer,
                code,
                message,
                ..
            } => errors.push(json!({"peer": name_of(peer), "code": code, "message": message})),
            NodeEvent::Rejected { peer, reason, .. } => {
                errors.push(json!({"peer": name_of(peer), "rejected": reason.to_string()}));
            }
            NodeEvent::SendFailed {
                peer, to, error, ..
            } => errors.push(
                json!({"peer": name_of(peer), "to": name_of(to), "send_failed": error.to_string()}),
            ),
            _ => {}
        }
    }
    let mut report = json!({"nodes": nodes, "calls": calls, "errors": errors});
    let (key, value) = match outcome {
        Ok(v) => ("response", v.clone()),
        Err(RunEnd::Quiet) => (
            "failed",
            json!("no response: the particle stopped without calling callbackSrv.response"),
        ),
        Err(RunEnd::Failed(ExecuteError::Script(e))) => ("script_error", e.clone()),
        Err(RunEnd::Failed(e)) => ("failed", json!(e.to_string())),
    };
    report[key] = value;
    if !waiting.is_empty() {
        report["waiting"] = json!(waiting);
    }
    report
}

/// The secret key for a record written without one: `given` (`--key`, `--key-file`)
/// when it is the key of the recorded peer, else one of `braid run`'s fixed test keys
/// when the peer is one of its nodes.
pub(crate) fn key_for(peer_id: &str, given: Option<[u8; 32]>) -> Option<[u8; 32]> {
    let matches = |secret: [u8; 32]| NodeKey::from_secret(secret).peer_id() == peer_id;
    if let Some(secret) = given.filter(|s| matches(*s)) {
        return Some(secret);
    }
    (0..256)
        .map(|i| Sha256::digest(format!("braid run node {i}")).into())
        .find(|s| matches(*s))
}

/// 64 hex digits as a 32-byte key.
pub(crate) fn parse_key(text: &str) -> anyhow::Result<[u8; 32]> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        bail!("a key is 64 hex digits");
    }
    let mut secret = [0u8; 32];
    for (i, byte) in secret.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).context("a key is hex")?;
    }
    Ok(secret)
}

/// `braid replay`: re-runs recorded invocations and compares their outcomes. Records
/// without the node's secret key take it from `key` (`--key`, `--key-file`) or, for
/// `braid run`'s nodes, from their fixed test keys.
pub(crate) fn replay(paths: &[PathBuf], key: Option<[u8; 32]>) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            found.retain(|p| p.extension().is_some_and(|x| x == "json"));
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", file.display()))?;
        let mut record = braid_host::InvokeRecord::from_json(&json)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        if !record.has_secret_key() {
            let peer = &record.params.current_peer_id;
            let Some(secret) = key_for(peer, key) else {
                bail!(
                    "{}: the record has no secret key and none given is {peer}'s: pass the node's key with --key-file FILE or --key HEX",
                    file.display()
                );
            };
            record = record.with_secret_key(secret);
        }
        // The interpreter recurses as deep as the script nests: give it a big stack.
        let differences = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || record.replay())
            .context("cannot start the replay thread")?
            .join()
            .map_err(|_| anyhow::anyhow!("{}: the interpreter panicked", file.display()))?;
        if differences.is_empty() {
            passed += 1;
        } else {
            failed += 1;
            println!("{}: differs", file.display());
            for d in differences {
                println!("  {d}");
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
