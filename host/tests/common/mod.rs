//! What the node tests share: scripts that call one service function the way compiled
//! Aqua does, and running them from a client node.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::time::Duration;

use braid_host::{ExecuteError, Node};
use serde_json::{Value, json};

/// A script that loads `args` (as `a0`, `a1`, …) on the init peer, calls
/// `service.function(a0, a1, …)` on `target` (a peer id, or `%init_peer_id%`) and
/// returns the result, or reports the error as compiled Aqua does.
pub(crate) fn call_script(target: &str, service: &str, function: &str, n_args: usize) -> String {
    let peer = if target == "%init_peer_id%" {
        target.to_owned()
    } else {
        format!("\"{target}\"")
    };
    let body = format!(
        r#"(seq (call {peer} ("{service}" "{function}") [{}] r) (call %init_peer_id% ("callbackSrv" "response") [r]))"#,
        arg_names(n_args).join(" ")
    );
    with_args_and_catch(body, n_args)
}

/// [`call_script`] through the client's relay both ways (`-relay-`, loaded as an
/// argument; a worker is reached through the node that hosts it).
pub(crate) fn call_script_via_relay(
    target: &str,
    service: &str,
    function: &str,
    n_args: usize,
) -> String {
    let body = format!(
        r#"(seq (call -relay- ("op" "noop") []) (seq (call "{target}" ("{service}" "{function}") [{}] r) (seq (call -relay- ("op" "noop") []) (call %init_peer_id% ("callbackSrv" "response") [r]))))"#,
        arg_names(n_args).join(" ")
    );
    let body = format!(r#"(seq (call %init_peer_id% ("getDataSrv" "-relay-") [] -relay-) {body})"#);
    with_args_and_catch(body, n_args)
}

fn arg_names(n_args: usize) -> Vec<String> {
    (0..n_args).map(|i| format!("a{i}")).collect()
}

/// `body` after loading its arguments, its error caught and reported.
fn with_args_and_catch(mut body: String, n_args: usize) -> String {
    for name in arg_names(n_args).iter().rev() {
        body = format!(r#"(seq (call %init_peer_id% ("getDataSrv" "{name}") [] {name}) {body})"#);
    }
    format!(r#"(xor {body} (call %init_peer_id% ("errorHandlingSrv" "error") [:error: 0]))"#)
}

/// `script` run from `client` with `args` as `a0`, `a1`, …: its response, or the
/// message of the error it caught (or how the particle ended).
pub(crate) async fn run_call(
    client: &Node,
    script: String,
    args: Vec<Value>,
) -> Result<Value, String> {
    let args: Vec<(String, Value)> = args
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("a{i}"), v))
        .collect();
    match client.execute(script, args).await {
        Ok(value) => Ok(value),
        Err(ExecuteError::Script(error)) => Err(error["message"]
            .as_str()
            .expect("an error object has a message")
            .to_owned()),
        Err(other) => Err(format!("the particle ended: {other}")),
    }
}

/// Runs `service.function(args…)` on `target` from `client`.
pub(crate) async fn call_on(
    client: &Node,
    target: &str,
    service: &str,
    function: &str,
    args: Vec<Value>,
) -> Result<Value, String> {
    let script = call_script(target, service, function, args.len());
    run_call(client, script, args).await
}

/// Runs `service.function(args…)` on `node` itself.
pub(crate) async fn call(
    node: &Node,
    service: &str,
    function: &str,
    args: Vec<Value>,
) -> Result<Value, String> {
    call_on(node, "%init_peer_id%", service, function, args).await
}

/// A trigger config that never fires.
pub(crate) fn no_trigger() -> Value {
    json!({"clock": {"start_sec": 0, "end_sec": 0, "period_sec": 0},
           "connections": {"connect": false, "disconnect": false},
           "blockchain": {"start_block": 0, "end_block": 0}})
}

/// A clock trigger from now, every `period_sec` (0: once, now).
pub(crate) fn clock(period_sec: u64) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut config = no_trigger();
    config["clock"] = json!({"start_sec": now, "end_sec": 0, "period_sec": period_sec});
    config
}

/// `spell.install(script, init_data, trigger_config, alias?)` on `target` (a peer
/// id, or `%init_peer_id%`) from `client`: the spell's id, or the error.
pub(crate) async fn install_spell(
    client: &Node,
    target: &str,
    script: &str,
    init_data: Value,
    trigger_config: Value,
    alias: Option<&str>,
) -> Result<String, String> {
    let args = vec![
        json!(script),
        init_data,
        trigger_config,
        json!(alias.into_iter().collect::<Vec<_>>()),
    ];
    let id = call_on(client, target, "spell", "install", args).await?;
    Ok(id.as_str().expect("a spell id is a string").to_owned())
}

/// Asks until `f` gives `Some` (spells run on their own time; 20 s is far more than
/// their triggers need).
pub(crate) async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = f().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("it did not happen within 20 s");
}
