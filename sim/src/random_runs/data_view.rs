//! A structural reading of particle data, for property tests that compare traces by
//! content: every store reference is resolved (through the interpreter's
//! `testing::structure`), so two data are equal here exactly when they hold the same
//! trace, whatever order their stores were written in.

use serde_json::Value;

/// Decoded particle data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataView {
    /// The trace, state by state.
    pub trace: Vec<StateView>,
    /// The last call request id.
    pub last_call_id: u64,
    /// Per peer with results: peer, public key and signature, in hex.
    pub signatures: Vec<[String; 3]>,
}

/// One trace state (trace-and-merge.md §2), references resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum StateView {
    /// `Par(left, right)`.
    Par {
        /// States of the left subtree.
        left: u64,
        /// States of the right subtree.
        right: u64,
    },
    /// `Call Executed`.
    Executed {
        /// Scalar, stream (with its generation) or unused.
        output: Output,
        /// The result record.
        result: ResultView,
    },
    /// `Call Failed`.
    Failed(ResultView),
    /// `Call SentBy(peer)` or `SentBy(peer, request id)`.
    Sent {
        /// The sender.
        peer: String,
        /// The local request id, if the peer is the call's target.
        request: Option<u64>,
    },
    /// `Ap(generation)`.
    Ap {
        /// The generation.
        generation: u64,
    },
    /// `Fold(lore)`: per record value_pos, before (begin, len), after (begin, len).
    Fold(Vec<[u64; 5]>),
    /// `Canon SentBy(peer)`.
    CanonSent {
        /// The sender.
        peer: String,
    },
    /// `Canon Executed`.
    Canon(CanonView),
}

/// Where an executed call's result went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A scalar.
    Scalar,
    /// A stream, in this generation.
    Stream {
        /// The generation.
        generation: u64,
    },
    /// Nowhere: the call had no output.
    Unused,
}

/// A result record: value, argument fingerprint, tetraplet.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultView {
    /// The returned value.
    pub value: Value,
    /// The argument fingerprint, in hex.
    pub argument_hash: String,
    /// Peer, service, function, lens.
    pub tetraplet: [String; 4],
}

/// A canon result.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonView {
    /// The canon tetraplet.
    pub tetraplet: [String; 4],
    /// Per element: value, tetraplet, literal provenance.
    pub elements: Vec<(Value, [String; 4], bool)>,
}

impl DataView {
    /// The same data with every stream generation set to 0: what two bracketings of a
    /// merge need not agree on (trace-and-merge.md §5).
    pub fn without_generations(&self) -> DataView {
        let trace = self
            .trace
            .iter()
            .map(|s| match s {
                StateView::Executed {
                    output: Output::Stream { .. },
                    result,
                } => StateView::Executed {
                    output: Output::Stream { generation: 0 },
                    result: result.clone(),
                },
                StateView::Ap { .. } => StateView::Ap { generation: 0 },
                other => other.clone(),
            })
            .collect();
        DataView {
            trace,
            last_call_id: self.last_call_id,
            signatures: self.signatures.clone(),
        }
    }

    /// How many states hold a service result or a canon result (executed or failed calls
    /// and executed canons).
    pub fn results(&self) -> usize {
        self.trace
            .iter()
            .filter(|s| {
                matches!(
                    s,
                    StateView::Executed { .. } | StateView::Failed(_) | StateView::Canon(_)
                )
            })
            .count()
    }

    /// The states holding service or canon results that `other` does not hold (as a
    /// multiset, generations ignored).
    pub fn results_missing_from(&self, other: &DataView) -> Vec<StateView> {
        let mut theirs: Vec<StateView> = other.without_generations().trace;
        self.without_generations()
            .trace
            .into_iter()
            .filter(|s| {
                matches!(
                    s,
                    StateView::Executed { .. } | StateView::Failed(_) | StateView::Canon(_)
                )
            })
            .filter(|s| match theirs.iter().position(|t| t == s) {
                Some(i) => {
                    theirs.swap_remove(i);
                    false
                }
                None => true,
            })
            .collect()
    }
}

/// Reads data; empty bytes are empty data.
pub fn read(bytes: &[u8]) -> Result<DataView, String> {
    if bytes.is_empty() {
        return Ok(DataView::default());
    }
    let v = braid_interpreter::testing::structure(bytes)?;
    let strings = |v: &Value| -> [String; 4] {
        let s = |i: usize| v[i].as_str().unwrap_or_default().to_owned();
        [s(0), s(1), s(2), s(3)]
    };
    let result = |r: &Value| ResultView {
        value: r["value"].clone(),
        argument_hash: r["argument_hash"].as_str().unwrap_or_default().to_owned(),
        tetraplet: strings(&r["tetraplet"]),
    };
    let u = |v: &Value| v.as_u64().unwrap_or_default();
    let trace = v["trace"]
        .as_array()
        .ok_or("no trace")?
        .iter()
        .map(|s| {
            let (kind, x) = s
                .as_object()
                .and_then(|o| o.iter().next())
                .ok_or_else(|| format!("state {s}"))?;
            Ok(match kind.as_str() {
                "par" => StateView::Par {
                    left: u(&x[0]),
                    right: u(&x[1]),
                },
                "executed" => StateView::Executed {
                    output: match &x["output"] {
                        Value::String(o) if o == "scalar" => Output::Scalar,
                        Value::String(_) => Output::Unused,
                        o => Output::Stream {
                            generation: u(&o["stream"]),
                        },
                    },
                    result: result(&x["result"]),
                },
                "failed" => StateView::Failed(result(x)),
                "sent" => StateView::Sent {
                    peer: x[0].as_str().unwrap_or_default().to_owned(),
                    request: x[1].as_u64(),
                },
                "ap" => StateView::Ap { generation: u(x) },
                "fold" => StateView::Fold(
                    x.as_array()
                        .map(|rs| {
                            rs.iter()
                                .map(|r| [u(&r[0]), u(&r[1]), u(&r[2]), u(&r[3]), u(&r[4])])
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                "canon_sent" => StateView::CanonSent {
                    peer: x.as_str().unwrap_or_default().to_owned(),
                },
                "canon" => StateView::Canon(CanonView {
                    tetraplet: strings(&x["tetraplet"]),
                    elements: x["elements"]
                        .as_array()
                        .map(|es| {
                            es.iter()
                                .map(|e| (e[0].clone(), strings(&e[1]), e[2] == Value::Bool(true)))
                                .collect()
                        })
                        .unwrap_or_default(),
                }),
                other => return Err(format!("state kind {other}")),
            })
        })
        .collect::<Result<_, String>>()?;
    let signatures = v["signatures"]
        .as_array()
        .map(|ss| {
            ss.iter()
                .map(|s| {
                    let x = |i: usize| s[i].as_str().unwrap_or_default().to_owned();
                    [x(0), x(1), x(2)]
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DataView {
        trace,
        last_call_id: u(&v["last_call_id"]),
        signatures,
    })
}
