//! One invoke with every input chosen by the fuzzer: script, peers, particle, previous
//! and current data, call results. Its corpus starts from the real steps of the
//! conformance scenarios and the scripts of the AIR corpus, so mutations begin from
//! inputs a network really produces.

use braid_interpreter::{CallResult, CallResults, Integrity, Limits, RunParams};

use crate::{keeps_data, on_big_stack};

/// The inputs of one invoke. Peers' keys are the scenario driver's (the SHA-256 of the
/// name), so conformance data verifies when `check` is on and its peers are `trusted`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    /// Check the arriving data (content ids, signatures).
    pub check: bool,
    /// The particle's id.
    pub particle_id: String,
    /// The particle's timestamp.
    pub timestamp: u64,
    /// The particle's time to live.
    pub ttl: u32,
    /// `%init_peer_id%`.
    pub init_peer: String,
    /// The peer that runs the step.
    pub peer: String,
    /// Peers whose driver keys are trusted.
    pub trusted: Vec<String>,
    /// The script.
    pub script: String,
    /// `prev_data`.
    pub prev: Vec<u8>,
    /// `current_data`.
    pub data: Vec<u8>,
    /// The call results.
    pub call_results: CallResults,
}

impl Step {
    /// Reads a fuzz input. Every byte string is a step: a length running past the end
    /// takes what is left, missing fields are empty.
    pub fn decode(input: &[u8]) -> Step {
        let mut r = Reader(input);
        let flags = r.bytes(1).first().copied().unwrap_or(0);
        let timestamp = u64::from_le_bytes(r.array());
        let ttl = u32::from_le_bytes(r.array());
        let particle_id = r.text();
        let init_peer = r.text();
        let peer = r.text();
        let trusted = r
            .text()
            .split('\n')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let script = r.text();
        let prev = r.field().to_vec();
        let data = r.field().to_vec();
        let mut call_results = CallResults::new();
        while r.0.len() >= 8 {
            let id = u32::from_le_bytes(r.array());
            let ret_code = i32::from_le_bytes(r.array());
            let result = r.text();
            call_results.insert(id, CallResult { ret_code, result });
        }
        Step {
            check: flags & 1 == 1,
            particle_id,
            timestamp,
            ttl,
            init_peer,
            peer,
            trusted,
            script,
            prev,
            data,
            call_results,
        }
    }

    /// The fuzz input that decodes to this step: for seeding corpora.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![u8::from(self.check)];
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        out.extend_from_slice(&self.ttl.to_le_bytes());
        let trusted = self.trusted.join("\n");
        for field in [
            self.particle_id.as_bytes(),
            self.init_peer.as_bytes(),
            self.peer.as_bytes(),
            trusted.as_bytes(),
            self.script.as_bytes(),
            &self.prev,
            &self.data,
        ] {
            put_field(&mut out, field);
        }
        for (id, result) in &self.call_results {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&result.ret_code.to_le_bytes());
            put_field(&mut out, result.result.as_bytes());
        }
        out
    }

    /// A step the scenario driver ran, with checking on and `trusted` peers.
    pub fn of_record(record: &braid_sim::StepRecord, trusted: &[String]) -> Step {
        Step {
            check: true,
            particle_id: record.params.particle_id.clone(),
            timestamp: record.params.timestamp,
            ttl: record.params.ttl,
            init_peer: record.params.init_peer_id.clone(),
            peer: record.peer.clone(),
            trusted: trusted.to_vec(),
            script: record.script.to_string(),
            prev: record.prev_data.to_vec(),
            data: record.current_data.to_vec(),
            call_results: record.call_results.clone(),
        }
    }

    /// The run parameters of the step.
    pub fn params(&self) -> RunParams {
        RunParams {
            init_peer_id: self.init_peer.clone(),
            current_peer_id: self.peer.clone(),
            timestamp: self.timestamp,
            ttl: self.ttl,
            particle_id: self.particle_id.clone(),
            key: braid_sim::peer_key(&self.peer),
            limits: Limits::REFERENCE_MAXIMA,
            integrity: Integrity {
                check: self.check,
                trusted_keys: self
                    .trusted
                    .iter()
                    .map(|p| (p.clone(), braid_sim::driver::peer_public_key(p)))
                    .collect(),
            },
        }
    }
}

/// The oracle: no panic (on a stack as big as the host's), the same outcome twice, a
/// failure that keeps the previous data keeps it exactly, and the data returned is
/// accepted back as previous data.
pub fn invoke_step(step: &Step) {
    let params = step.params();
    let run = |prev: &[u8], data: &[u8], results: &CallResults| {
        braid_interpreter::invoke(&step.script, prev, data, &params, results)
    };
    on_big_stack(|| {
        let out = run(&step.prev, &step.data, &step.call_results);
        let again = run(&step.prev, &step.data, &step.call_results);
        assert_eq!(out, again, "same inputs, different outcome");
        if keeps_data(out.ret_code()) {
            assert_eq!(
                out.data, step.prev,
                "a failed invocation must keep the previous data"
            );
            assert!(out.call_requests.is_empty() && out.next_peers.is_empty());
            return;
        }
        let replay = run(&out.data, &[], &CallResults::new());
        assert!(
            !(1..=10).contains(&replay.ret_code()),
            "own output refused as previous data: {}",
            replay.error_message()
        );
    });
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    // Fuzz inputs are far below 4 GiB.
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(field);
}

/// Reads fields off the front of a fuzz input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.0.split_at(n.min(self.0.len()));
        self.0 = tail;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let head = self.bytes(N);
        out[..head.len()].copy_from_slice(head);
        out
    }

    fn field(&mut self) -> &'a [u8] {
        let len = u32::from_le_bytes(self.array());
        self.bytes(usize::try_from(len).unwrap_or(usize::MAX))
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.field()).into_owned()
    }
}
