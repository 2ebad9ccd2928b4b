//! The transcript of FORMAT.md §4: what every invoke asked for and where the particle
//! went, with long strings replaced by their size and SHA-256.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical::canonical_json;
use crate::scenario::InjectPrev;

/// The record of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// One entry per invoke, in order.
    pub steps: Vec<Step>,
    /// One entry per scenario peer.
    pub peers: BTreeMap<String, PeerSummary>,
    /// Why the run stopped.
    pub end: End,
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The queue of deliveries ran empty.
    Quiescent,
    /// `max_steps` invokes were made.
    StepLimit,
}

/// One invoke.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// 1-based number.
    pub step: usize,
    /// The invoked peer.
    pub peer: String,
    /// Why it was invoked.
    pub cause: Cause,
    /// The interpreter's return code.
    pub ret_code: i32,
    /// The interpreter's error message (never compared).
    pub error_message: String,
    /// This invoke's next peers, sorted, without duplicates.
    pub next_peers: Vec<String>,
    /// This invoke's new call requests, sorted by canonical JSON text.
    pub call_requests: Vec<CallRecord>,
}

/// Why a peer was invoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// The first invoke of the run, on the init peer.
    Start,
    /// The data sent by the chain of `from` that ended at `from_step`.
    Deliver {
        /// The sending peer.
        from: String,
        /// The last step of the sending chain.
        from_step: usize,
    },
    /// Answers to this peer's call requests.
    Results,
    /// An `inject` entry.
    Inject {
        /// The step whose data was delivered (`null`: empty data).
        data_from_step: Option<usize>,
        /// The `prev_data` used.
        prev: InjectPrev,
    },
}

/// One call request and the host's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The service id.
    pub service: String,
    /// The function name.
    pub function: String,
    /// The argument array, long strings replaced.
    pub arguments: Value,
    /// One list of tetraplets per argument.
    pub tetraplets: Vec<Vec<TetrapletRecord>>,
    /// The host's answer.
    pub result: HostAnswer,
}

/// A tetraplet as the transcript writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TetrapletRecord {
    /// Peer id.
    pub peer_pk: String,
    /// Service id.
    pub service_id: String,
    /// Function name.
    pub function_name: String,
    /// Lens text.
    pub lens: String,
}

/// The host's answer to a call as the transcript writes it: `"never"`, or
/// `{"ret_code", "result"}` plus `"delay"` when delayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HostAnswerRepr", into = "HostAnswerRepr")]
pub enum HostAnswer {
    /// The call is never answered.
    Never,
    /// The call is answered.
    Given {
        /// The ret code.
        ret_code: i32,
        /// The result text, long strings replaced.
        result: String,
        /// Extra re-invokes waited (0: none, and not written).
        delay: u32,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum HostAnswerRepr {
    Given {
        ret_code: i32,
        result: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        delay: u32,
    },
    Never(String),
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TryFrom<HostAnswerRepr> for HostAnswer {
    type Error = String;

    fn try_from(repr: HostAnswerRepr) -> Result<Self, String> {
        match repr {
            HostAnswerRepr::Given {
                ret_code,
                result,
                delay,
            } => Ok(HostAnswer::Given {
                ret_code,
                result,
                delay,
            }),
            HostAnswerRepr::Never(text) if text == "never" => Ok(HostAnswer::Never),
            HostAnswerRepr::Never(text) => Err(format!("unknown answer {text:?}")),
        }
    }
}

impl From<HostAnswer> for HostAnswerRepr {
    fn from(answer: HostAnswer) -> Self {
        match answer {
            HostAnswer::Never => HostAnswerRepr::Never("never".into()),
            HostAnswer::Given {
                ret_code,
                result,
                delay,
            } => HostAnswerRepr::Given {
                ret_code,
                result,
                delay,
            },
        }
    }
}

/// A peer's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSummary {
    /// Number of invokes.
    pub invokes: usize,
    /// Number of invokes with a non-zero ret code.
    pub failed_invokes: usize,
    /// The last ret code; `null` if never invoked.
    pub last_ret_code: Option<i32>,
    /// Number of call requests.
    pub calls: usize,
    /// Number of call requests never answered.
    pub never_answered: usize,
}

impl Transcript {
    /// The transcript as a JSON value.
    pub fn to_json(&self) -> Value {
        // Every field serializes to JSON: strings, integers, and `Value`s.
        serde_json::to_value(self).expect("a transcript serializes")
    }
}

/// Strings longer than this many bytes are written as `<N bytes, sha256 H>`.
pub const LONG_STRING_BYTES: usize = 1024;

/// `s` itself, or `<N bytes, sha256 H>` when it is longer than [`LONG_STRING_BYTES`].
pub fn abbreviate_str(s: &str) -> Cow<'_, str> {
    if s.len() <= LONG_STRING_BYTES {
        return Cow::Borrowed(s);
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(s.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    Cow::Owned(format!("<{} bytes, sha256 {hex}>", s.len()))
}

/// `value` with every long string, at any depth, abbreviated (object keys are kept).
pub fn abbreviate_long_strings(value: Value) -> Value {
    match value {
        Value::String(s) if s.len() > LONG_STRING_BYTES => {
            Value::String(abbreviate_str(&s).into_owned())
        }
        Value::Array(items) => {
            Value::Array(items.into_iter().map(abbreviate_long_strings).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, abbreviate_long_strings(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Sorts call records by their canonical JSON text.
pub fn sort_call_records(records: &mut [CallRecord]) {
    records.sort_by_cached_key(|record| {
        // A record serializes to JSON: strings, integers, and `Value`s.
        canonical_json(&serde_json::to_value(record).expect("a call record serializes"))
    });
}
