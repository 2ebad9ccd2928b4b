//! `braid run`: runs a script as a particle on local nodes with the built-in services,
//! and prints what happened: every service call, interpreter errors, the response.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use braid_host::{ExecuteError, MemoryNetwork, Node, NodeEvent, NodeKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Arguments of `braid run`.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The script file (`-` for standard input).
    script: PathBuf,
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
    let script = crate::read(&args.script)?;
    if args.peers == 0 {
        bail!("--peers must be at least 1");
    }
    let keys: Vec<NodeKey> = (0..args.peers).map(node_key).collect();
    let data = parse_args(&args.args, &keys)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let events = Arc::new(Mutex::new(Vec::new()));
    let ttl = Duration::from_millis(u64::from(args.ttl));
    let result = runtime.block_on(async {
        let net = MemoryNetwork::new();
        let mut nodes = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let log = Arc::clone(&events);
            let mut builder = Node::builder()
                .key(key.clone())
                .network(net.clone())
                .observer(move |event| {
                    log.lock()
                        .expect("no panics while logging")
                        .push(event.clone())
                });
            if let Some(dir) = &args.record {
                builder = builder.record_dir(dir);
            }
            if i == 0 && keys.len() > 1 {
                builder = builder.relay(keys[1].peer_id());
            }
            let node = builder.build()?;
            net.attach(&node);
            nodes.push(node);
        }
        let result = nodes[0].execute_with_ttl(script, data, ttl).await;
        anyhow::Ok(result)
    })?;
    let events = events.lock().expect("no panics while logging").clone();
    let names: Vec<(String, String)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.peer_id().to_owned(), node_name(i)))
        .collect();
    if args.json {
        println!("{}", report_json(&names, &events, &result));
    } else {
        print_report(&names, &events, &result);
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse_args(args: &[String], keys: &[NodeKey]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for arg in args {
        let Some((name, text)) = arg.split_once('=') else {
            bail!("--arg {arg}: expected NAME=JSON");
        };
        let value = if let Some(index) = text.strip_prefix('@') {
            let index: usize = index
                .parse()
                .with_context(|| format!("--arg {arg}: `@N` needs a node number"))?;
            let key = keys.get(index).with_context(|| {
                format!(
                    "--arg {arg}: there is no node {index} (--peers {})",
                    keys.len()
                )
            })?;
            Value::String(key.peer_id().to_owned())
        } else {
            serde_json::from_str(text).with_context(|| {
                format!("--arg {arg}: the value is not JSON (a string needs quotes: {name}='\"{text}\"')")
            })?
        };
        out.insert(name.to_owned(), value);
    }
    Ok(out)
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
    let name_of = |peer: &str| name_in(names, peer);
    for (id, name) in names {
        println!("node {name:<7} {id}");
    }
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
            NodeEvent::Expired { .. } => {}
            _ => {}
        }
    }
    match result {
        Ok(value) => println!("response {value}"),
        Err(ExecuteError::Script(error)) => println!("script error {error}"),
        Err(e) => println!("failed: {e}"),
    }
}

fn report_json(
    names: &[(String, String)],
    events: &[NodeEvent],
    result: &Result<Value, ExecuteError>,
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
    let (key, value) = match result {
        Ok(v) => ("response", v.clone()),
        Err(ExecuteError::Script(e)) => ("script_error", e.clone()),
        Err(e) => ("failed", json!(e.to_string())),
    };
    report[key] = value;
    report
}

/// `braid replay`: re-runs recorded invocations and compares their outcomes.
pub(crate) fn replay(paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
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
        let record = braid_host::InvokeRecord::from_json(&json)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
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
