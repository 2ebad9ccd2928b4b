//! The spell library's scripts of the public corpus (`fluencelabs+spell`, 70 compiled
//! Aqua functions) on braid nodes: a client (the node's owner) and its relay node, the
//! cases in `fixtures/spells-corpus/cases.json` in order, each with inputs that make it
//! meaningful and the result its Aqua source says. A client function runs as the
//! client's particle; a function written to run inside a spell is installed as a spell
//! on a worker and triggered once. Every script of the folder is a case: one that needs
//! services braid does not have says which (`not_runnable`), one that does not finish
//! says why (`fails`), and the test fails when any case does otherwise, so the counts it
//! prints are the counts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use braid_host::{ExecuteError, MemoryNetwork, Node, NodeEvent, NodeKey};
use serde::Deserialize;
use serde_json::{Map, Value, json};

mod common;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    script: String,
    /// Run as a spell on a worker instead of as the client's particle.
    #[serde(default)]
    spell: Option<SpellRun>,
    /// `getDataSrv` values (a spell's first store values).
    #[serde(default)]
    args: Map<String, Value>,
    /// The response (a pattern: `"*"` is anything, objects match the keys given).
    #[serde(default)]
    expect: Option<Value>,
    /// Variables taken from the response: name → JSON pointer.
    #[serde(default)]
    capture: BTreeMap<String, String>,
    /// Ask again until the response matches (what a spell does on its own time).
    #[serde(default)]
    retry: bool,
    /// A client function that returns nothing (its particle ends on the relay): it
    /// runs with a short ttl, and only a reported error fails it.
    #[serde(default)]
    no_response: bool,
    /// What shows it did what it says, asked after it ran.
    #[serde(default)]
    check: Option<Probe>,
    /// Why it cannot run on braid nodes (services braid does not have).
    #[serde(default)]
    not_runnable: Option<String>,
    /// Why it does not finish as its source says, on braid.
    #[serde(default)]
    fails: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpellRun {
    /// The peer it is installed on (a variable).
    on: String,
    #[serde(default)]
    alias: Option<String>,
    /// Calls made after installing it and before it runs.
    #[serde(default)]
    pre: Vec<Probe>,
    /// What shows it ran: asked until it matches.
    #[serde(default)]
    check: Option<Probe>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Probe {
    peer: String,
    service: String,
    function: String,
    #[serde(default)]
    args: Vec<Value>,
    #[serde(default)]
    expect: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/air/fluencelabs+spell")
}

/// `service.function(args…)` on `target`, through the client's relay both ways (a
/// worker is reached through the node that hosts it).
async fn call_on(
    client: &Node,
    target: &str,
    service: &str,
    function: &str,
    args: Vec<Value>,
) -> Result<Value, String> {
    let script = common::call_script_via_relay(target, service, function, args.len());
    common::run_call(client, script, args).await
}

fn outcome(result: Result<Value, ExecuteError>) -> Result<Value, String> {
    match result {
        Ok(value) => Ok(value),
        Err(ExecuteError::Script(error)) => Err(format!("the script failed: {error}")),
        Err(other) => Err(format!("the particle ended: {other}")),
    }
}

/// `"@name"` strings replaced by the variable's value.
fn substitute(value: &Value, vars: &BTreeMap<String, Value>) -> Value {
    match value {
        // An unknown variable stays as written (the case that needed it fails).
        Value::String(s) if s.starts_with('@') => {
            vars.get(&s[1..]).cloned().unwrap_or_else(|| value.clone())
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn matches(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::String(p), _) if p == "*" => true,
        (Value::Object(p), Value::Object(v)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| matches(pv, vv))),
        (Value::Array(p), Value::Array(v)) => {
            p.len() == v.len() && p.iter().zip(v).all(|(p, v)| matches(p, v))
        }
        (p, v) => p == v,
    }
}

fn now_sec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn config(start_sec: u64) -> Value {
    json!({"clock": {"start_sec": start_sec, "end_sec": 0, "period_sec": 0},
           "connections": {"connect": false, "disconnect": false},
           "blockchain": {"start_block": 0, "end_block": 0}})
}

type Calls = Arc<Mutex<Vec<(String, String, String, Vec<Value>)>>>;

struct World {
    client: Node,
    calls: Calls,
    vars: BTreeMap<String, Value>,
    _host: Node,
}

impl World {
    async fn probe(&self, probe: &Probe) -> Result<(), String> {
        let peer = substitute(&Value::String(probe.peer.clone()), &self.vars);
        let args = probe
            .args
            .iter()
            .map(|a| substitute(a, &self.vars))
            .collect();
        let service = substitute(&Value::String(probe.service.clone()), &self.vars);
        let got = call_on(
            &self.client,
            peer.as_str().unwrap_or_default(),
            service.as_str().unwrap_or_default(),
            &probe.function,
            args,
        )
        .await?;
        match &probe.expect {
            Some(expect) if !matches(&substitute(expect, &self.vars), &got) => Err(format!(
                "{}.{} answered {got}, not {expect}",
                probe.service, probe.function
            )),
            _ => Ok(()),
        }
    }

    async fn run(&mut self, case: &Case) -> Result<(), String> {
        let script = std::fs::read_to_string(corpus_dir().join(&case.script))
            .map_err(|e| format!("cannot read {}: {e}", case.script))?;
        let args: Vec<(String, Value)> = case
            .args
            .iter()
            .map(|(k, v)| (k.clone(), substitute(v, &self.vars)))
            .collect();
        let response = match &case.spell {
            None if case.no_response => {
                match self
                    .client
                    .execute_with_ttl(&*script, args.clone(), Duration::from_secs(2))
                    .await
                {
                    Ok(value) => value,
                    Err(ExecuteError::Timeout { .. }) => Value::Null,
                    Err(other) => return Err(format!("the particle ended: {other}")),
                }
            }
            None => {
                let mut attempts = if case.retry { 50 } else { 1 };
                loop {
                    let got = outcome(
                        self.client
                            .execute_with_ttl(&*script, args.clone(), Duration::from_secs(20))
                            .await,
                    );
                    attempts -= 1;
                    let done = match (&got, &case.expect) {
                        (Ok(v), Some(e)) => matches(&substitute(e, &self.vars), v),
                        _ => true,
                    };
                    if done || attempts == 0 {
                        break got?;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Some(run) => self.run_spell(run, &script, args).await?,
        };
        if let Some(expect) = &case.expect {
            let expect = substitute(expect, &self.vars);
            if !matches(&expect, &response) {
                return Err(format!("responded {response}, not {expect}"));
            }
        }
        for (name, pointer) in &case.capture {
            let value = response
                .pointer(pointer)
                .cloned()
                .ok_or_else(|| format!("no {pointer} in {response}"))?;
            self.vars.insert(name.clone(), value);
        }
        if let Some(check) = &case.check {
            self.probe(check).await?;
        }
        Ok(())
    }

    /// Whether the particle calls `callbackSrv.response` or `errorHandlingSrv.error`
    /// within a moment (its effect may show before its last call).
    async fn responds(&self, particle: &str) -> bool {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.calls.lock().unwrap().iter().any(|(p, s, f, _)| {
            p == particle
                && ((s == "callbackSrv" && f == "response")
                    || (s == "errorHandlingSrv" && f == "error"))
        })
    }

    /// Installs `script` as a spell, triggers it once, and waits for its end: its
    /// response, its error, or its `check`.
    async fn run_spell(
        &mut self,
        run: &SpellRun,
        script: &str,
        args: Vec<(String, Value)>,
    ) -> Result<Value, String> {
        let on = substitute(&Value::String(run.on.clone()), &self.vars);
        let on = on.as_str().unwrap_or_default().to_owned();
        let data: Map<String, Value> = args.into_iter().collect();
        let alias = json!(run.alias.iter().collect::<Vec<_>>());
        let id = call_on(
            &self.client,
            &on,
            "spell",
            "install",
            vec![json!(script), Value::Object(data), config(0), alias],
        )
        .await?;
        let id = id.as_str().unwrap_or_default().to_owned();
        self.vars.insert("this".into(), json!(id));
        for probe in &run.pre {
            self.probe(probe).await?;
        }
        call_on(
            &self.client,
            &on,
            "spell",
            "update_trigger_config",
            vec![json!(id), config(now_sec())],
        )
        .await?;
        let particle = format!("spell_{id}_1");
        for _ in 0..100 {
            let ended = {
                let calls = self.calls.lock().unwrap();
                calls
                    .iter()
                    .filter(|(p, s, f, _)| {
                        *p == particle
                            && ((s == "callbackSrv" && f == "response")
                                || (s == "errorHandlingSrv" && f == "error"))
                    })
                    .map(|(_, s, _, a)| (s.clone(), a.clone()))
                    .next()
            };
            match ended {
                Some((service, args)) if service == "errorHandlingSrv" => {
                    return Err(format!(
                        "the spell failed: {}",
                        args.first().cloned().unwrap_or_default()
                    ));
                }
                Some((_, args)) => {
                    if let Some(check) = &run.check {
                        self.probe(check).await?;
                    }
                    // As `execute` answers: nothing, the value, or all of them.
                    return Ok(match args.as_slice() {
                        [] => Value::Null,
                        [one] => one.clone(),
                        many => Value::Array(many.to_vec()),
                    });
                }
                None => {}
            }
            if let Some(check) = &run.check {
                if self.probe(check).await.is_ok() && !self.responds(&particle).await {
                    return Ok(Value::Null);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match &run.check {
            Some(check) => Err(format!(
                "the spell did not finish: {}",
                self.probe(check).await.unwrap_err()
            )),
            None => Err("the spell did not finish".into()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spell_librarys_corpus_scripts_on_braid_nodes() {
    let cases: Cases = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/spells-corpus/cases.json"),
        )
        .unwrap(),
    )
    .unwrap();
    // Every script of the folder is a case, once.
    let mut scripts: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    scripts.sort();
    let mut listed: Vec<String> = cases.cases.iter().map(|c| c.script.clone()).collect();
    listed.sort();
    listed.dedup();
    assert_eq!(listed, scripts, "cases.json lists every script once");

    let net = Arc::new(MemoryNetwork::default());
    let owner = NodeKey::from_secret([2; 32]);
    let calls: Calls = Arc::default();
    let seen = Arc::clone(&calls);
    let host = Node::builder()
        .key(NodeKey::from_secret([1; 32]))
        .owner(owner.peer_id())
        .network(net.clone())
        .observer(move |event| {
            if let NodeEvent::Call {
                particle_id,
                service,
                function,
                args,
                ..
            } = event
            {
                seen.lock().unwrap().push((
                    particle_id.clone(),
                    service.clone(),
                    function.clone(),
                    args.clone(),
                ));
            }
        })
        .build()
        .unwrap();
    net.attach(&host);
    let client = Node::builder()
        .key(owner.clone())
        .relay(host.peer_id())
        .network(net.clone())
        .build()
        .unwrap();
    net.attach(&client);
    let mut vars = BTreeMap::new();
    vars.insert("host".to_owned(), json!(host.peer_id()));
    vars.insert("client".to_owned(), json!(client.peer_id()));
    vars.insert(
        "deal".to_owned(),
        json!(format!("dummy-deal-id{}", client.peer_id())),
    );
    vars.insert(
        "host_deal".to_owned(),
        json!(format!("dummy-deal-id{}", host.peer_id())),
    );
    vars.insert("now".to_owned(), json!(now_sec()));
    vars.insert("once_now".to_owned(), config(now_sec()));
    vars.insert("no_trigger".to_owned(), config(0));
    let mut world = World {
        client,
        calls,
        vars,
        _host: host,
    };

    // Each script's worst outcome over its cases: ran, does not run, not runnable.
    let mut outcome_of: BTreeMap<String, u8> = BTreeMap::new();
    let mut worst = |script: &str, rank: u8| {
        let entry = outcome_of.entry(script.to_owned()).or_insert(rank);
        *entry = (*entry).max(rank);
    };
    let mut surprises = Vec::new();
    for case in &cases.cases {
        if let Some(reason) = &case.not_runnable {
            worst(&case.script, 2);
            println!("not runnable  {}: {reason}", case.script);
            continue;
        }
        let result = world.run(case).await;
        match (&result, &case.fails) {
            (Ok(()), None) => {
                worst(&case.script, 0);
                println!("ran           {}", case.script);
            }
            (Err(e), Some(reason)) => {
                worst(&case.script, 1);
                println!("does not run  {}: {reason} ({e})", case.script);
            }
            (Ok(()), Some(reason)) => surprises.push(format!(
                "{} now runs (it was listed as failing: {reason})",
                case.script
            )),
            (Err(e), None) => surprises.push(format!("{}: {e}", case.script)),
        }
    }
    let count = |rank| outcome_of.values().filter(|r| **r == rank).count();
    println!(
        "{} scripts ({} cases): {} run to completion, {} do not, {} need services braid does not have",
        outcome_of.len(),
        cases.cases.len(),
        count(0),
        count(1),
        count(2)
    );
    assert!(surprises.is_empty(), "{surprises:#?}");
}
