//! Records of invocations: every input of one `invoke` and what it returned, as a JSON
//! file that `braid replay` runs again and compares. Because `invoke` is a function of
//! its arguments, a record reproduces the step exactly, on any machine.
//!
//! The interpreter signs with the node's secret key, so the output depends on it; a
//! record leaves the key out (`"secret_key": null`, and a note saying so) unless it is
//! written with [`InvokeRecord::to_json_with_secret_key`]. A record without its key
//! needs one from elsewhere to be replayed ([`InvokeRecord::with_secret_key`]).

use std::collections::BTreeMap;
use std::path::Path;

use braid_interpreter::{
    CallRequest, CallResult, CallResults, Integrity, KeyPair, LimitFlags, Limits, Outcome,
    RunParams, Tetraplet,
};
use serde_json::{Map, Value, json};

/// The record format's version.
const VERSION: u64 = 1;

/// One invocation: its inputs and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeRecord {
    /// The script.
    pub script: String,
    /// The stored data passed as `prev_data`.
    pub prev_data: Vec<u8>,
    /// The arrived data.
    pub data: Vec<u8>,
    /// The run parameters, key included.
    pub params: RunParams,
    /// The call results.
    pub call_results: CallResults,
    /// What `invoke` returned (its error, read back from a file, as
    /// [`braid_interpreter::InterpreterError::Reported`]).
    pub outcome: Outcome,
}

impl InvokeRecord {
    /// Runs `invoke` again on the recorded inputs and lists how its outcome differs
    /// from the recorded one (empty: identical). Call it on a thread with a big stack.
    pub fn replay(&self) -> Vec<String> {
        let outcome = braid_interpreter::invoke(
            &self.script,
            &self.prev_data,
            &self.data,
            &self.params,
            &self.call_results,
        );
        let (now, was) = (&outcome, &self.outcome);
        let mut differences = Vec::new();
        if now.ret_code() != was.ret_code() || now.error_message() != was.error_message() {
            differences.push(format!(
                "ret_code {} `{}`, recorded {} `{}`",
                now.ret_code(),
                now.error_message(),
                was.ret_code(),
                was.error_message()
            ));
        }
        if now.data != was.data {
            differences.push(format!(
                "data differs: {} bytes, recorded {} bytes",
                now.data.len(),
                was.data.len()
            ));
        }
        if now.next_peers != was.next_peers {
            differences.push(format!(
                "next peers {:?}, recorded {:?}",
                now.next_peers, was.next_peers
            ));
        }
        if now.call_requests != was.call_requests {
            differences.push(format!(
                "call requests {}, recorded {}",
                requests_json(&now.call_requests),
                requests_json(&was.call_requests)
            ));
        }
        differences
    }

    /// Whether the record holds the node's secret key (needed to replay it).
    pub fn has_secret_key(&self) -> bool {
        !self.params.key.secret.is_empty()
    }

    /// The record with this Ed25519 secret key in its parameters (as a node passes it).
    pub fn with_secret_key(mut self, secret: [u8; 32]) -> Self {
        self.params.key = KeyPair::ed25519(&secret);
        self
    }

    /// The JSON form, without the node's secret key.
    pub fn to_json(&self) -> Value {
        let mut v = self.to_json_with_secret_key();
        v["params"]["secret_key"] = Value::Null;
        v["params"]["secret_key_note"] = json!(
            "left out: replaying needs the node's key (braid replay --key-file FILE or --key HEX)"
        );
        v
    }

    /// The JSON form with the node's secret key in plain text: only for test keys.
    pub fn to_json_with_secret_key(&self) -> Value {
        let p = &self.params;
        let trusted: Map<String, Value> = p
            .integrity
            .trusted_keys
            .iter()
            .map(|(peer, key)| (peer.clone(), json!(hex(key))))
            .collect();
        let results: Map<String, Value> = self
            .call_results
            .iter()
            .map(|(id, r)| {
                (
                    id.to_string(),
                    json!({"ret_code": r.ret_code, "result": r.result}),
                )
            })
            .collect();
        let o = &self.outcome;
        json!({
            "braid_invoke_record": VERSION,
            "script": self.script,
            "prev_data": hex(&self.prev_data),
            "data": hex(&self.data),
            "params": {
                "init_peer_id": p.init_peer_id,
                "current_peer_id": p.current_peer_id,
                "timestamp": p.timestamp,
                "ttl": p.ttl,
                "particle_id": p.particle_id,
                "key_format": p.key.format,
                "secret_key": hex(&p.key.secret),
                "limits": {
                    "air_size": p.limits.air_size,
                    "particle_size": p.limits.particle_size,
                    "call_result_size": p.limits.call_result_size,
                    "hard": p.limits.hard,
                    "call_requests_size": p.limits.call_requests_size,
                },
                "integrity": {"check": p.integrity.check, "trusted_keys": trusted},
            },
            "call_results": results,
            "outcome": {
                "ret_code": o.ret_code(),
                "error_message": o.error_message(),
                "data": hex(&o.data),
                "next_peers": o.next_peers,
                "call_requests": requests_json(&o.call_requests),
            },
        })
    }

    /// Reads the JSON form.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        if v["braid_invoke_record"] != json!(VERSION) {
            return Err(format!(
                "not a braid invoke record of version {VERSION} (field `braid_invoke_record`)"
            ));
        }
        let p = &v["params"];
        let o = &v["outcome"];
        let mut trusted_keys = BTreeMap::new();
        for (peer, key) in object(
            &p["integrity"]["trusted_keys"],
            "params.integrity.trusted_keys",
        )? {
            let key = unhex(string(key, "a trusted key")?)?;
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| format!("the trusted key of {peer} is not 32 bytes"))?;
            trusted_keys.insert(peer.clone(), key);
        }
        let mut call_results = CallResults::new();
        for (id, r) in object(&v["call_results"], "call_results")? {
            let id: u32 = id
                .parse()
                .map_err(|_| format!("call result id `{id}` is not a u32"))?;
            call_results.insert(
                id,
                CallResult {
                    ret_code: int(&r["ret_code"], "ret_code")? as i32,
                    result: string(&r["result"], "result")?.to_owned(),
                },
            );
        }
        let limits = &p["limits"];
        Ok(InvokeRecord {
            script: string(&v["script"], "script")?.to_owned(),
            prev_data: unhex(string(&v["prev_data"], "prev_data")?)?,
            data: unhex(string(&v["data"], "data")?)?,
            params: RunParams {
                init_peer_id: string(&p["init_peer_id"], "init_peer_id")?.to_owned(),
                current_peer_id: string(&p["current_peer_id"], "current_peer_id")?.to_owned(),
                timestamp: uint(&p["timestamp"], "timestamp")?,
                ttl: uint(&p["ttl"], "ttl")? as u32,
                particle_id: string(&p["particle_id"], "particle_id")?.to_owned(),
                key: KeyPair {
                    format: uint(&p["key_format"], "key_format")? as u8,
                    secret: match &p["secret_key"] {
                        Value::Null => Vec::new(),
                        key => unhex(string(key, "secret_key")?)?,
                    },
                },
                limits: Limits {
                    air_size: uint(&limits["air_size"], "air_size")?,
                    particle_size: uint(&limits["particle_size"], "particle_size")?,
                    call_result_size: uint(&limits["call_result_size"], "call_result_size")?,
                    hard: limits["hard"]
                        .as_bool()
                        .ok_or("limits.hard is not a boolean")?,
                    // Records written before this limit have none: unbounded.
                    call_requests_size: match &limits["call_requests_size"] {
                        Value::Null => u64::MAX,
                        size => uint(size, "call_requests_size")?,
                    },
                },
                integrity: Integrity {
                    check: p["integrity"]["check"]
                        .as_bool()
                        .ok_or("integrity.check is not a boolean")?,
                    trusted_keys,
                },
            },
            call_results,
            outcome: Outcome::reported(
                unhex(string(&o["data"], "outcome.data")?)?,
                requests_from_json(&o["call_requests"])?,
                o["next_peers"]
                    .as_array()
                    .ok_or("outcome.next_peers is not an array")?
                    .iter()
                    .map(|p| string(p, "a next peer").map(str::to_owned))
                    .collect::<Result<_, _>>()?,
                int(&o["ret_code"], "outcome.ret_code")? as i32,
                string(&o["error_message"], "outcome.error_message")?.to_owned(),
                LimitFlags::default(),
            ),
        })
    }

    /// Writes the record as `dir/name.json`, without the secret key.
    pub fn write(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(&self.to_json())?;
        std::fs::write(dir.join(format!("{name}.json")), text)
    }

    /// Writes the record as `dir/name.json` with the secret key in plain text.
    pub fn write_with_secret_key(&self, dir: &Path, name: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let text = serde_json::to_string_pretty(&self.to_json_with_secret_key())?;
        std::fs::write(dir.join(format!("{name}.json")), text)
    }
}

fn requests_json(requests: &[CallRequest]) -> Value {
    Value::Array(
        requests
            .iter()
            .map(|r| {
                let tetraplets: Vec<Vec<Value>> = r
                    .tetraplets
                    .iter()
                    .map(|arg| {
                        arg.iter()
                            .map(|t| {
                                json!({"peer_pk": t.peer_pk, "service_id": t.service_id,
                                       "function_name": t.function_name, "lens": t.lens})
                            })
                            .collect()
                    })
                    .collect();
                json!({"id": r.id, "service_id": r.service_id, "function_name": r.function_name,
                       "arguments": r.arguments, "tetraplets": tetraplets})
            })
            .collect(),
    )
}

fn requests_from_json(v: &Value) -> Result<Vec<CallRequest>, String> {
    let field = |t: &Value, name: &str| string(&t[name], name).map(str::to_owned);
    v.as_array()
        .ok_or("outcome.call_requests is not an array")?
        .iter()
        .map(|r| {
            let tetraplets = r["tetraplets"]
                .as_array()
                .ok_or("tetraplets is not an array")?
                .iter()
                .map(|arg| {
                    arg.as_array()
                        .ok_or("a tetraplet list is not an array")?
                        .iter()
                        .map(|t| {
                            Ok(Tetraplet {
                                peer_pk: field(t, "peer_pk")?,
                                service_id: field(t, "service_id")?,
                                function_name: field(t, "function_name")?,
                                lens: field(t, "lens")?,
                            })
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(CallRequest {
                id: uint(&r["id"], "id")? as u32,
                service_id: field(r, "service_id")?,
                function_name: field(r, "function_name")?,
                arguments: field(r, "arguments")?,
                tetraplets,
            })
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 || !text.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("`{}…` is not hex", &text[..text.len().min(16)]));
    }
    Ok((0..text.len())
        .step_by(2)
        // Invariant: two ASCII hex digits always parse.
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect())
}

fn string<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("{what} is not a string"))
}

fn uint(v: &Value, what: &str) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("{what} is not a non-negative integer"))
}

fn int(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("{what} is not an integer"))
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} is not an object"))
}
