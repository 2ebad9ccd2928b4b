//! Mixed runs: some peers of a scenario run on the reference (AquaVM behind
//! `oracle serve`, one invoke per JSON line with exact data bytes), the others on
//! braid, and the particle's data passes between them as it is. This is the test of
//! whether braid and AquaVM peers can share a particle.
//!
//! The choice of backend per peer is an [`Interpreter`] closure ([`mixed`]), so the
//! driver is unchanged: it calls the closure for every invoke, and the closure sends
//! the invoke to the reference when the current peer is one of [`PeerSet`].

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use braid_interpreter::{CallRequest, CallResults, LimitFlags, Outcome, RunParams, Tetraplet};
use serde_json::{Value, json};

use crate::driver::Interpreter;
use crate::error::SimError;
use crate::scenario::Scenario;

/// Which peers run on the reference: `odd`, `even` (by position in the scenario's
/// `peers`, counting from 1), `all`, or a comma-separated list of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSet {
    /// Peers 1, 3, 5, …
    Odd,
    /// Peers 2, 4, 6, …
    Even,
    /// Every peer.
    All,
    /// These peers.
    Names(Vec<String>),
}

impl std::str::FromStr for PeerSet {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        Ok(match spec {
            "odd" => Self::Odd,
            "even" => Self::Even,
            "all" => Self::All,
            "" => return Err("an empty set of reference peers".into()),
            names => Self::Names(names.split(',').map(|n| n.trim().to_owned()).collect()),
        })
    }
}

impl PeerSet {
    /// True if `peer` of `scenario` runs on the reference.
    pub fn contains(&self, scenario: &Scenario, peer: &str) -> bool {
        let position = scenario.peers.iter().position(|p| p == peer);
        match self {
            Self::Odd => position.is_some_and(|i| i % 2 == 0),
            Self::Even => position.is_some_and(|i| i % 2 == 1),
            Self::All => true,
            Self::Names(names) => names.iter().any(|n| n == peer),
        }
    }
}

/// A running `oracle serve`: the reference as a black-box peer.
pub struct OracleServe {
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    child: Mutex<Child>,
}

impl OracleServe {
    /// Starts `ORACLE serve`.
    pub fn spawn(oracle: &Path) -> Result<Self, SimError> {
        let mut child = Command::new(oracle)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| SimError::Io {
                path: oracle.to_owned(),
                source,
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(SimError::Invalid("the oracle's pipes are missing".into()));
        };
        Ok(Self {
            io: Mutex::new((stdin, BufReader::new(stdout))),
            child: Mutex::new(child),
        })
    }

    /// One invoke on the reference, with the peer's Ed25519 `secret`.
    pub fn invoke(
        &self,
        script: &str,
        prev: &[u8],
        current: &[u8],
        params: &RunParams,
        secret: &[u8],
        results: &CallResults,
    ) -> Result<Outcome, String> {
        let call_results: serde_json::Map<String, Value> = results
            .iter()
            .map(|(id, r)| {
                (
                    id.to_string(),
                    json!({"ret_code": r.ret_code, "result": r.result}),
                )
            })
            .collect();
        let request = json!({
            "air": script,
            "prev_data": hex(prev),
            "data": hex(current),
            "params": {
                "init_peer_id": params.init_peer_id,
                "current_peer_id": params.current_peer_id,
                "timestamp": params.timestamp,
                "ttl": params.ttl,
                "particle_id": params.particle_id,
                "secret_key": hex(secret),
            },
            "call_results": call_results,
        });
        let line = {
            let mut io = self
                .io
                .lock()
                .map_err(|_| "the oracle's lock is poisoned")?;
            let (stdin, stdout) = &mut *io;
            writeln!(stdin, "{request}").map_err(|e| format!("writing to the oracle: {e}"))?;
            stdin
                .flush()
                .map_err(|e| format!("writing to the oracle: {e}"))?;
            let mut line = String::new();
            stdout
                .read_line(&mut line)
                .map_err(|e| format!("reading from the oracle: {e}"))?;
            line
        };
        if line.is_empty() {
            return Err("the oracle closed its output".into());
        }
        answer(&line)
    }
}

impl Drop for OracleServe {
    fn drop(&mut self) {
        // Closing stdin ends `oracle serve`; wait for it so no zombie is left.
        if let Ok(mut child) = self.child.lock() {
            if let Ok(mut io) = self.io.lock() {
                let _ = io.0.flush();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads an answer line of `oracle serve`.
fn answer(line: &str) -> Result<Outcome, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("the oracle's answer: {e}"))?;
    if let Some(error) = v.get("error") {
        return Err(format!("the oracle refused the request: {error}"));
    }
    let field = |name: &str| {
        v.get(name)
            .ok_or_else(|| format!("the oracle's answer has no {name}"))
    };
    let ret_code = field("ret_code")?
        .as_i64()
        .and_then(|c| i32::try_from(c).ok())
        .ok_or("ret_code is not a number")?;
    let error_message = field("error_message")?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let data = unhex(field("data")?.as_str().ok_or("data is not a string")?)?;
    let next_peers = field("next_peer_pks")?
        .as_array()
        .ok_or("next_peer_pks is not an array")?
        .iter()
        .map(|p| {
            p.as_str()
                .map(str::to_owned)
                .ok_or("a next peer is not a string")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut call_requests = Vec::new();
    if let Some(requests) = field("call_requests")?.as_object() {
        for (id, r) in requests {
            let id: u32 = id.parse().map_err(|_| format!("call request id {id:?}"))?;
            let text = |name: &str| {
                r.get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| format!("call request {id} has no {name}"))
            };
            let tetraplets = r
                .get("tetraplets")
                .and_then(Value::as_array)
                .map(|per_argument| {
                    per_argument
                        .iter()
                        .map(|list| {
                            list.as_array()
                                .map(|ts| ts.iter().map(tetraplet).collect())
                                .unwrap_or_default()
                        })
                        .collect()
                })
                .unwrap_or_default();
            call_requests.push(CallRequest {
                id,
                service_id: text("service_id")?,
                function_name: text("function_name")?,
                arguments: r.get("arguments").cloned().unwrap_or(json!([])).to_string(),
                tetraplets,
            });
        }
    }
    call_requests.sort_by_key(|r| r.id);
    Ok(Outcome::reported(
        data,
        call_requests,
        next_peers,
        ret_code,
        error_message,
        LimitFlags::default(),
    ))
}

fn tetraplet(v: &Value) -> Tetraplet {
    let s = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Tetraplet {
        peer_pk: s("peer_pk"),
        service_id: s("service_id"),
        function_name: s("function_name"),
        lens: s("lens"),
    }
}

/// An interpreter that runs `reference` peers on the oracle and the others on
/// `braid`; with `braid_checks` false, braid's peers check no arriving signatures
/// (they still sign).
pub fn mixed<'a>(
    scenario: &'a Scenario,
    reference: &'a PeerSet,
    oracle: &'a OracleServe,
    braid: &'a Interpreter<'a>,
    braid_checks: bool,
) -> impl Fn(&str, &[u8], &[u8], &RunParams, &CallResults) -> Result<Outcome, String> + Sync + 'a {
    move |script, prev, current, params, results| {
        if reference.contains(scenario, &params.current_peer_id) {
            let secret = scenario.secret_of(&params.current_peer_id);
            oracle.invoke(script, prev, current, params, &secret, results)
        } else if braid_checks {
            braid(script, prev, current, params, results)
        } else {
            let mut params = params.clone();
            params.integrity.check = false;
            braid(script, prev, current, &params, results)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return Err("data is not hex".into());
    }
    (0..text.len() / 2)
        .map(|i| {
            u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| "data is not hex".into())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_sets_parse_and_select_by_position() {
        let scenario = Scenario::from_json(
            r#"{"name": "t/t", "air": "(null)", "particle": {"id": "p", "init_peer": "a",
                "timestamp": 0, "ttl": 1}, "peers": ["a", "b", "c"],
                "services": {"default": {"ok": 1}}}"#,
        )
        .unwrap();
        let odd: PeerSet = "odd".parse().unwrap();
        let even: PeerSet = "even".parse().unwrap();
        let names: PeerSet = "b, c".parse().unwrap();
        let pick = |set: &PeerSet| -> Vec<bool> {
            ["a", "b", "c"]
                .iter()
                .map(|p| set.contains(&scenario, p))
                .collect()
        };
        assert_eq!(pick(&odd), [true, false, true]);
        assert_eq!(pick(&even), [false, true, false]);
        assert_eq!(pick(&names), [false, true, true]);
        assert_eq!(pick(&PeerSet::All), [true, true, true]);
        assert!("".parse::<PeerSet>().is_err());
    }

    #[test]
    fn answers_of_the_oracle_are_read() {
        let line = r#"{"ret_code": 0, "error_message": "", "data": "0aff", "next_peer_pks": ["b"],
            "call_requests": {"2": {"service_id": "s", "function_name": "f", "arguments": [1, {"b": 2, "a": 1}],
            "tetraplets": [[{"peer_pk": "a", "service_id": "", "function_name": "", "lens": ""}], []]}}}"#;
        let out = answer(line).unwrap();
        assert_eq!(out.data, vec![0x0a, 0xff]);
        assert_eq!(out.next_peers, ["b"]);
        assert_eq!(out.call_requests[0].id, 2);
        assert_eq!(out.call_requests[0].arguments, r#"[1,{"a":1,"b":2}]"#);
        assert_eq!(out.call_requests[0].tetraplets[0][0].peer_pk, "a");
        assert!(answer(r#"{"error": "bad"}"#).is_err());
    }
}
