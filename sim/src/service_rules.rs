//! The fake services of FORMAT.md §1 "Service rules": which rule answers a call, and
//! what it answers, with each rule's `sequence` counter kept over the whole run.

use serde_json::Value;

use crate::canonical::canonical_json;
use crate::error::SimError;
use crate::generate::generate_value;
use crate::scenario::{EchoMode, Reply, Rule, Services};

/// One call request as the rules see it.
#[derive(Debug, Clone, Copy)]
pub struct CallSite<'a> {
    /// The peer executing the call (the current peer).
    pub peer: &'a str,
    /// The service id.
    pub service: &'a str,
    /// The function name.
    pub function: &'a str,
    /// The arguments.
    pub args: &'a [Value],
}

/// What the host does with one call request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Answer with this ret code and text, `delay` re-invokes later than otherwise.
    Given {
        /// The call's ret code.
        ret_code: i32,
        /// JSON text on success, any text on failure.
        result: String,
        /// Extra re-invokes to wait.
        delay: u32,
    },
    /// Never answer.
    Never,
}

/// The services of one run: the rules and how often each has matched so far.
#[derive(Debug, Clone)]
pub struct ServiceHost<'s> {
    services: &'s Services,
    /// Matches per rule; the last entry counts the default's.
    counters: Vec<usize>,
}

impl<'s> ServiceHost<'s> {
    /// Fresh counters for a new run.
    pub fn new(services: &'s Services) -> Self {
        ServiceHost {
            services,
            counters: vec![0; services.rules.len() + 1],
        }
    }

    /// Answers one call by the first matching rule, or the default. Calls must come in
    /// the order the host processes them, since `sequence` counters depend on it.
    pub fn answer(&mut self, call: CallSite<'_>) -> Result<Answer, SimError> {
        let index = self
            .services
            .rules
            .iter()
            .position(|rule| rule.matches(call))
            .unwrap_or(self.services.rules.len());
        let reply = self
            .services
            .rules
            .get(index)
            .map_or(&self.services.default, |rule| &rule.result);
        let nth = self.counters[index];
        self.counters[index] += 1;
        let reply = match reply {
            // Validation rejects empty sequences, so `len() - 1` does not underflow.
            Reply::Sequence(entries) => &entries[nth.min(entries.len() - 1)],
            other => other,
        };
        let (reply, delay) = match reply {
            Reply::Delay(d) => (&*d.result, d.rounds),
            other => (other, 0),
        };
        let (ret_code, result) = match reply {
            Reply::Ok(value) => (0, canonical_json(value)),
            Reply::Error(e) => (e.code, e.message.clone()),
            Reply::Echo(EchoMode::First) => (
                0,
                call.args
                    .first()
                    .map_or_else(|| "null".to_owned(), canonical_json),
            ),
            Reply::Echo(EchoMode::All) => (0, canonical_json(&Value::Array(call.args.to_vec()))),
            Reply::Raw(raw) => (raw.ret_code, raw.result.clone()),
            Reply::Generate(g) => (0, generate_value(g.seed, &g.value)?),
            Reply::None(_) => return Ok(Answer::Never),
            Reply::Sequence(_) | Reply::Delay(_) => {
                return Err(SimError::Internal(
                    "a nested sequence or delay passed validation".into(),
                ));
            }
        };
        Ok(Answer::Given {
            ret_code,
            result,
            delay,
        })
    }
}

impl Rule {
    /// Whether every match field present holds for `call`.
    pub fn matches(&self, call: CallSite<'_>) -> bool {
        let field = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        field(&self.peer, call.peer)
            && field(&self.service, call.service)
            && field(&self.function, call.function)
            && self.args.as_deref().is_none_or(|a| a == call.args)
            && self
                .args_prefix
                .as_deref()
                .is_none_or(|p| call.args.starts_with(p))
    }
}
