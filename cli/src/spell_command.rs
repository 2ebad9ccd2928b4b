//! `braid spell`: the node's owner manages its spells from a terminal. Each command is
//! a particle to the node's `spell` service, signed with the owner's key file, so the
//! node (started with `--owner <that key's peer id>`) knows its management peer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use braid_host::p2p::Multiaddr;
use serde_json::{Value, json};

use crate::node_command::{client_as, load_key, load_or_make_key, runtime};

/// Arguments of `braid spell`.
#[derive(clap::Args)]
pub(crate) struct SpellArgs {
    #[command(subcommand)]
    command: SpellCommand,
}

#[derive(clap::Subcommand)]
enum SpellCommand {
    /// Install a spell: SCRIPT runs on the node on every trigger; prints its id.
    Install {
        #[command(flatten)]
        to: Management,
        /// The spell's AIR script (`-` for standard input).
        script: PathBuf,
        /// Run every N seconds.
        #[arg(long, value_name = "N", default_value_t = 0)]
        period_sec: u32,
        /// Run once (at `--start-sec`, or now).
        #[arg(long)]
        once: bool,
        /// First run, seconds since the Unix epoch (default: now, with `--period-sec`
        /// or `--once`; without them and without this, no timer: the spell runs on
        /// connection events only).
        #[arg(long, value_name = "SECS")]
        start_sec: Option<u32>,
        /// Last run, seconds since the Unix epoch (default: none).
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        end_sec: u32,
        /// Run when a peer connects to the node.
        #[arg(long)]
        on_connect: bool,
        /// Run when a peer disconnects from the node.
        #[arg(long)]
        on_disconnect: bool,
        /// The spell's first store values: a JSON object (each field a key).
        #[arg(long, value_name = "JSON", default_value = "{}")]
        data: String,
        /// An alias for the spell (a service name on the node).
        #[arg(long)]
        alias: Option<String>,
    },
    /// List the ids of the node's spells.
    List {
        #[command(flatten)]
        to: Management,
    },
    /// Remove a spell by id or alias.
    Remove {
        #[command(flatten)]
        to: Management,
        /// The spell's id or alias.
        spell: String,
    },
    /// Print the peer id of a key file, making the key if the file is missing: the id
    /// to start the node with (`braid node --owner <id>`).
    Owner {
        /// The owner's key file (64 hex digits).
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
}

/// Which node, as whom.
#[derive(clap::Args)]
struct Management {
    /// The node, a multiaddr.
    #[arg(long, value_name = "MULTIADDR")]
    node: Multiaddr,
    /// The owner's key file (the node's `--owner`).
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// How long to wait for the node's answer, ms.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    ttl: u32,
}

/// A call of the node's `spell` service with the arguments `getDataSrv` gives.
fn script(function: &str, args: &[&str]) -> String {
    let mut steps = vec![r#"(call %init_peer_id% ("getDataSrv" "-relay-") [] relay)"#.to_owned()];
    for a in args {
        steps.push(format!(
            r#"(call %init_peer_id% ("getDataSrv" "{a}") [] {a})"#
        ));
    }
    steps.push(format!(
        r#"(call relay ("spell" "{function}") [{}] result)"#,
        args.join(" ")
    ));
    steps.push(r#"(call %init_peer_id% ("callbackSrv" "response") [result])"#.to_owned());
    let body = steps
        .into_iter()
        .rev()
        .reduce(|rest, step| format!("(seq {step} {rest})"))
        .unwrap_or_default();
    format!(r#"(xor {body} (call %init_peer_id% ("errorHandlingSrv" "error") [:error: 0]))"#)
}

pub(crate) fn spell(args: &SpellArgs) -> anyhow::Result<ExitCode> {
    let (to, function, data): (&Management, &str, Vec<(&str, Value)>) = match &args.command {
        SpellCommand::Owner { key_file } => {
            let key = load_or_make_key(key_file)?;
            println!("{}", key.peer_id());
            return Ok(ExitCode::SUCCESS);
        }
        SpellCommand::Install {
            to,
            script,
            period_sec,
            once,
            start_sec,
            end_sec,
            on_connect,
            on_disconnect,
            data,
            alias,
        } => {
            let source = crate::read(script)?;
            braid_grammar::parse(&source)
                .map_err(|e| anyhow::anyhow!("{}: {e}", script.display()))?;
            let init: Value = serde_json::from_str(data).context("--data is not JSON")?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let timed = *period_sec > 0 || *once;
            let start = start_sec.unwrap_or(if timed {
                u32::try_from(now).unwrap_or(u32::MAX)
            } else {
                0
            });
            let config = json!({
                "clock": {"start_sec": start, "end_sec": end_sec, "period_sec": period_sec},
                "connections": {"connect": on_connect, "disconnect": on_disconnect},
                "blockchain": {"start_block": 0, "end_block": 0},
            });
            let alias: Vec<&String> = alias.iter().collect();
            (
                to,
                "install",
                vec![
                    ("script", Value::String(source)),
                    ("data", init),
                    ("config", config),
                    ("alias", json!(alias)),
                ],
            )
        }
        SpellCommand::List { to } => (to, "list", Vec::new()),
        SpellCommand::Remove { to, spell } => (
            to,
            "remove",
            vec![("spell_id", Value::String(spell.clone()))],
        ),
    };
    let names: Vec<&str> = data.iter().map(|(n, _)| *n).collect();
    let air = script(function, &names);
    let key = load_key(&to.key_file)?;
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let (node, _net) = client_as(&to.node, key).await?;
        let ttl = Duration::from_millis(u64::from(to.ttl));
        anyhow::Ok(node.execute_with_ttl(air, data, ttl).await)
    })?;
    match result {
        Ok(Value::String(s)) if function == "install" => {
            println!("{s}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Value::Array(ids)) => {
            for id in ids {
                println!("{}", id.as_str().map_or(id.to_string(), str::to_owned));
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("braid spell {function}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_parse() {
        for (function, args) in [
            ("install", &["script", "data", "config", "alias"][..]),
            ("list", &[][..]),
            ("remove", &["spell_id"][..]),
        ] {
            let air = script(function, args);
            braid_grammar::parse(&air).unwrap_or_else(|e| panic!("{air}\n{e}"));
        }
    }
}
