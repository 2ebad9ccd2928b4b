//! The scenario format of FORMAT.md §1: serde types for every field, loading and
//! validation.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::SimError;
use crate::generate::AirGenerator;

/// One conformance scenario: a script run as one particle in a small simulated network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// `topic/name`, unique.
    pub name: String,
    /// What it exercises, in prose.
    #[serde(default)]
    pub description: String,
    /// The AquaVM test it was converted from, `new`, or a corpus file.
    #[serde(default)]
    pub source: Option<String>,
    /// The script every peer runs; a scenario has either this or `air_generator`.
    #[serde(default)]
    pub air: Option<String>,
    /// A generated script (FORMAT.md §8.2).
    #[serde(default)]
    pub air_generator: Option<AirGenerator>,
    /// The particle's id, init peer, timestamp and ttl.
    pub particle: Particle,
    /// Names of the peers that exist; a peer id is its name.
    pub peers: Vec<String>,
    /// The fake services.
    pub services: Services,
    /// Extra deliveries (FORMAT.md §3 step 5).
    #[serde(default)]
    pub inject: Vec<Inject>,
    /// Lost deliveries (FORMAT.md §3 step 6).
    #[serde(default)]
    pub drop: Vec<DropRule>,
    /// The run stops after this many invokes.
    #[serde(default = "default_max_steps")]
    pub max_steps: usize,
    /// Call arguments whose text is implementation specific (FORMAT.md §5).
    #[serde(default)]
    pub ignore_args: Vec<IgnoreArg>,
    /// Benchmarks only: the measured invoke (FORMAT.md §8.1).
    #[serde(default)]
    pub bench: Option<Bench>,
    /// The reference transcript, kept as JSON: it is only ever compared.
    #[serde(default)]
    pub expected: Option<Value>,
    /// Peers' Ed25519 secrets as 64 hex digits (FORMAT.md §2); a peer not listed has
    /// the SHA-256 of its name. Scenarios renamed to real peer ids carry them.
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, String>,
}

fn default_max_steps() -> usize {
    200
}

/// The particle of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Particle {
    /// The particle id.
    pub id: String,
    /// The init peer's name.
    pub init_peer: String,
    /// Timestamp in milliseconds.
    pub timestamp: u64,
    /// Time to live in milliseconds.
    pub ttl: u32,
}

/// The fake services: rules tried in order, then the mandatory default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    /// Tried in order; the first that matches answers.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The answer when no rule matches.
    pub default: Reply,
}

/// A service rule: match fields (all must hold; absent ones always do) and a result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The peer executing the call.
    #[serde(default)]
    pub peer: Option<String>,
    /// The call's service id.
    #[serde(default, alias = "service_id")]
    pub service: Option<String>,
    /// The call's function name.
    #[serde(default, alias = "function_name")]
    pub function: Option<String>,
    /// The whole argument list equals this.
    #[serde(default)]
    pub args: Option<Vec<Value>>,
    /// The argument list starts with these values.
    #[serde(default)]
    pub args_prefix: Option<Vec<Value>>,
    /// The answer.
    pub result: Reply,
}

/// A rule's `result` (or the `default`): how the host answers a call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Reply {
    /// `0` and the compact JSON text of the value.
    Ok(Value),
    /// A failed call: `code` and `message` verbatim.
    Error(ErrorReply),
    /// `0` and the JSON text of the first argument, or of all of them.
    Echo(EchoMode),
    /// The n-th call matched by the rule gets the n-th entry; the last one repeats.
    Sequence(Vec<Reply>),
    /// The call is never answered (the value must be `true`).
    None(bool),
    /// Exactly this `ret_code` and `result` text.
    Raw(RawReply),
    /// Another answer, given some re-invokes later.
    Delay(DelayReply),
    /// `0` and a value generated from a template (FORMAT.md §8.3).
    Generate(GenerateReply),
}

/// `{"error": {"code": N, "message": "M"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorReply {
    /// The call's ret code.
    pub code: i32,
    /// The error text, passed verbatim.
    #[serde(default)]
    pub message: String,
}

/// What `echo` sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EchoMode {
    /// The first argument (`null` when there is none).
    First,
    /// The whole argument array.
    All,
}

/// `{"raw": {"ret_code": N, "result": "S"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReply {
    /// The ret code.
    pub ret_code: i32,
    /// The result text, not necessarily JSON.
    pub result: String,
}

/// `{"delay": {"rounds": K, "result": R}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayReply {
    /// How many re-invokes later than otherwise the answer is given.
    pub rounds: u32,
    /// The answer: ok, error, echo, raw or generate.
    pub result: Box<Reply>,
}

/// `{"generate": {"seed": S, "value": T}}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateReply {
    /// The PRNG seed.
    pub seed: u64,
    /// The template.
    pub value: Value,
}

/// An extra delivery queued at the front once the chain holding `after_step` is over.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inject {
    /// The step whose chain triggers the delivery.
    pub after_step: usize,
    /// The receiving peer.
    pub to: String,
    /// The step whose returned data is delivered; empty data when absent.
    #[serde(default)]
    pub data_from_step: Option<usize>,
    /// The receiver's `prev_data`.
    #[serde(default)]
    pub prev: InjectPrev,
}

/// The `prev_data` of an injected invoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "InjectPrevRepr", into = "InjectPrevRepr")]
pub enum InjectPrev {
    /// The peer's stored data (`"stored"`, the default).
    #[default]
    Stored,
    /// No data (`"empty"`).
    Empty,
    /// The data returned by this step (a number).
    Step(usize),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum InjectPrevRepr {
    Step(usize),
    Name(String),
}

impl TryFrom<InjectPrevRepr> for InjectPrev {
    type Error = String;

    fn try_from(repr: InjectPrevRepr) -> Result<Self, String> {
        match repr {
            InjectPrevRepr::Step(n) => Ok(InjectPrev::Step(n)),
            InjectPrevRepr::Name(name) if name == "stored" => Ok(InjectPrev::Stored),
            InjectPrevRepr::Name(name) if name == "empty" => Ok(InjectPrev::Empty),
            InjectPrevRepr::Name(name) => Err(format!(
                "unknown inject prev {name:?}; expected \"stored\", \"empty\" or a step number"
            )),
        }
    }
}

impl From<InjectPrev> for InjectPrevRepr {
    fn from(prev: InjectPrev) -> Self {
        match prev {
            InjectPrev::Stored => InjectPrevRepr::Name("stored".into()),
            InjectPrev::Empty => InjectPrevRepr::Name("empty".into()),
            InjectPrev::Step(n) => InjectPrevRepr::Step(n),
        }
    }
}

/// A lost delivery: the one to `to` whose data comes from the chain ending at `from_step`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DropRule {
    /// The last step of the sending chain.
    pub from_step: usize,
    /// The receiver.
    pub to: String,
}

/// Selects call arguments (and the call's result) that comparison ignores.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnoreArg {
    /// The call's service id; any when absent.
    #[serde(default)]
    pub service: Option<String>,
    /// The call's function name; any when absent.
    #[serde(default)]
    pub function: Option<String>,
    /// The argument's index; all arguments when absent.
    #[serde(default)]
    pub index: Option<usize>,
}

/// The measured invoke of a benchmark (FORMAT.md §8.1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bench {
    /// The 1-based step number.
    pub step: usize,
    /// What the step stresses.
    pub what: String,
    /// How it differs from the AquaVM benchmark it mirrors.
    #[serde(default)]
    pub notes: String,
    /// A suggested number of timed runs.
    #[serde(default)]
    pub iters: Option<usize>,
}

impl Scenario {
    /// A peer's Ed25519 secret: from `keys`, else the SHA-256 of its name.
    pub fn secret_of(&self, peer: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        self.keys
            .get(peer)
            .and_then(|hex| parse_secret(hex))
            .unwrap_or_else(|| Sha256::digest(peer.as_bytes()).into())
    }

    /// Parses and validates a scenario.
    pub fn from_json(text: &str) -> Result<Scenario, SimError> {
        let scenario: Scenario = serde_json::from_str(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            path: path.to_owned(),
            source,
        })?;
        Scenario::from_json(&text)
    }

    /// The script every peer runs: `air`, or what `air_generator` describes.
    pub fn script(&self) -> Result<String, SimError> {
        match (&self.air, &self.air_generator) {
            (Some(air), None) => Ok(air.clone()),
            (None, Some(generator)) => Ok(generator.script()?),
            _ => Err(SimError::Invalid(
                "a scenario needs exactly one of `air` and `air_generator`".into(),
            )),
        }
    }

    /// Checks what serde cannot: one script source, a known init peer and inject
    /// targets, and well-formed results.
    pub fn validate(&self) -> Result<(), SimError> {
        let invalid = |message: String| Err(SimError::Invalid(message));
        if self.air.is_some() == self.air_generator.is_some() {
            return invalid("a scenario needs exactly one of `air` and `air_generator`".into());
        }
        if !self.peers.contains(&self.particle.init_peer) {
            return invalid(format!(
                "the init peer {:?} is not one of `peers`",
                self.particle.init_peer
            ));
        }
        if let Some(inject) = self.inject.iter().find(|i| !self.peers.contains(&i.to)) {
            return invalid(format!(
                "inject to {:?}, which is not one of `peers`",
                inject.to
            ));
        }
        if let Some((peer, _)) = self
            .keys
            .iter()
            .find(|(_, hex)| parse_secret(hex).is_none())
        {
            return invalid(format!("the key of {peer:?} is not 64 hex digits"));
        }
        self.services.default.validate(false)?;
        for rule in &self.services.rules {
            rule.result.validate(false)?;
        }
        Ok(())
    }
}

impl Reply {
    /// Checks the nesting rules: sequences are not nested or empty, `delay` wraps only
    /// ok, error, echo, raw or generate, `none` is `true`.
    fn validate(&self, in_sequence: bool) -> Result<(), SimError> {
        let invalid = |message: &str| Err(SimError::Invalid(message.to_owned()));
        match self {
            Reply::Sequence(_) if in_sequence => invalid("a sequence entry cannot be a sequence"),
            Reply::Sequence(entries) if entries.is_empty() => invalid("empty sequence"),
            Reply::Sequence(entries) => entries.iter().try_for_each(|r| r.validate(true)),
            Reply::None(false) => invalid("`none` must be true"),
            Reply::Delay(delay) => match *delay.result {
                Reply::Delay(_) | Reply::Sequence(_) | Reply::None(_) => {
                    invalid("delay must wrap ok, error, echo, raw or generate")
                }
                ref inner => inner.validate(in_sequence),
            },
            _ => Ok(()),
        }
    }
}

/// 64 hex digits as 32 bytes.
fn parse_secret(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
