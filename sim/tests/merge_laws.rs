//! The algebraic laws of data merging (trace-and-merge.md §5) over random multi-peer runs.
//!
//! `merge(a, b)` on peer P is `invoke(script, prev = a, data = b, P's run parameters, no
//! call results).data`. Inputs are real data from runs of generated scenarios
//! (`braid_sim::random_runs`), so every input is part of one consistent history of one
//! script and particle. "Equal" is equal bytes; when bytes differ the data are also read
//! structurally (`data_view`), and data that read the same but differ in bytes would be a
//! bug of the encoding (it is deterministic), reported as such.
//!
//! The laws hold only for inputs *saturated* for P (replaying them adds nothing). Each
//! law says how it restricts its inputs; cases where an invoke fails (uncatchable or
//! preparation errors) or the inputs are not saturated are skipped and counted, and every
//! law asserts that enough of its cases really exercised it. Found while writing them and
//! kept as fixtures under `fixtures/laws/` with tests of the documented behaviour: the
//! left identity holds for the trace but not for the call counter; a `canon` whose peer
//! fails to evaluate makes its peer refuse its own data or silently drop a canon result
//! on replay (as in the reference; the generator no longer gives canons variable peers);
//! associativity needs saturated inputs.
//!
//! `PROPTEST_CASES=10000 cargo test --release -p braid-sim --test merge_laws` runs
//! longer; `BRAID_LAWS_VERIFY=1` also verifies arriving data in every merge (slow).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use braid_interpreter::{CallResults, Outcome};
use braid_sim::random_runs::data_view::{self, DataView};
use braid_sim::random_runs::{Observed, PeerData, RandomScenario, arb_scenario_for_laws, observe};
use braid_sim::{Scenario, run_params};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{
    Config, FileFailurePersistence, TestCaseError, TestCaseResult, TestRunner, contextualize_config,
};

/// Cases per law in CI.
const CASES: u32 = 256;

// ---------------------------------------------------------------------------------------
// Laws of one peer's own last data x (saturated for it by construction).

/// Idempotence, right and left identity, for every peer that ran, on its own last data.
#[test]
fn laws_of_own_data() {
    let tallies = [
        Tally::new("idempotence: merge(x, x) = x"),
        Tally::new("right identity: merge(x, e) = x"),
        Tally::new("left identity: merge(e, x) = x, call counter aside"),
    ];
    run_laws(&[
        (&tallies[0], idempotence),
        (&tallies[1], right_identity),
        (&tallies[2], left_identity),
    ]);
    for tally in &tallies {
        tally.finish(0.9);
    }
}

/// Absorption, associativity (on a peer's data and on any data of the run) and how often
/// merging is not commutative.
#[test]
fn laws_of_known_data() {
    let tallies = [
        Tally::new("absorption: c = merge(a, b) => merge(c, b) = c = merge(c, a)"),
        Tally::new("associativity: merge(merge(a, b), c) ~ merge(a, merge(b, c))"),
        Tally::new("associativity over any data of the run"),
        Tally::new("non-commutativity witnessed: merge(a, b) != merge(b, a)"),
    ];
    run_laws(&[
        (&tallies[0], absorption),
        (&tallies[1], associativity),
        (&tallies[2], associativity_any),
        (&tallies[3], non_commutativity),
    ]);
    for (tally, min) in tallies.iter().zip([0.8, 0.6, 0.3, 0.05]) {
        tally.finish(min);
    }
    // Not only merges of a history with an earlier state of itself: some results
    // combine what their inputs knew.
    for tally in &tallies[..3] {
        let (cases, combined) = (tally.cases.load(Relaxed), tally.combined.load(Relaxed));
        assert!(
            combined * 10 >= cases,
            "{}: only {combined} checks in {cases} cases combined their inputs",
            tally.name
        );
    }
}

/// `merge(x, x) = x`.
fn idempotence(tally: &Tally, observed: &Observed, _: &[Index]) -> TestCaseResult {
    for peer in &observed.peers {
        let x = peer.last();
        if x.is_empty() {
            continue;
        }
        let out = merge(observed, peer, x, x);
        if tally.failed(&out) {
            continue;
        }
        tally.expect_equal(&out.data, x, || format!("merge(x, x) on {}", peer.peer))?;
    }
    Ok(())
}

/// `merge(x, empty) = x`.
fn right_identity(tally: &Tally, observed: &Observed, _: &[Index]) -> TestCaseResult {
    for peer in &observed.peers {
        let x = peer.last();
        if x.is_empty() {
            continue;
        }
        let out = merge(observed, peer, x, &[]);
        if tally.failed(&out) {
            continue;
        }
        tally.expect_equal(&out.data, x, || format!("merge(x, e) on {}", peer.peer))?;
    }
    Ok(())
}

/// `merge(empty, x) = x` up to the call request counter: an invocation starts counting
/// from the *previous* data's counter (execution-model.md §10), so with empty previous
/// data the result's counter is 0 whatever x's was. trace-and-merge.md §5 states this law
/// "up to the trace being identical state by state". Compared: the data read
/// structurally with the counter left out; the bytes differ exactly when x's counter is
/// not 0 (fixture `laws/left_identity_call_counter`, test
/// `left_identity_resets_the_call_counter`).
fn left_identity(tally: &Tally, observed: &Observed, _: &[Index]) -> TestCaseResult {
    for peer in &observed.peers {
        let x = peer.last();
        if x.is_empty() {
            continue;
        }
        let out = merge(observed, peer, &[], x);
        if tally.failed(&out) {
            continue;
        }
        let what = || format!("merge(e, x) on {}", peer.peer);
        if out.data == **x {
            tally.equal_bytes.fetch_add(1, Relaxed);
            tally.checks.fetch_add(1, Relaxed);
            continue;
        }
        let (got, want) = (view(&out.data)?, view(x)?);
        prop_assert!(
            got != want,
            "{}: two encodings of one trace (an encoding bug)",
            what()
        );
        prop_assert_eq!(got.last_call_id, 0, "{}: call counter", what());
        prop_assert!(
            want.last_call_id != 0,
            "{}: bytes differ, counters do not",
            what()
        );
        let got = DataView {
            last_call_id: want.last_call_id,
            ..got
        };
        prop_assert!(got == want, "{}: {}", what(), first_difference(&got, &want));
        tally.equal_projection.fetch_add(1, Relaxed);
        tally.checks.fetch_add(1, Relaxed);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Laws over data a peer stored or received during a run.

/// Absorption: for a, b that peer P stored or received in the run and c = merge(a, b) on
/// P, if c is saturated for P then `merge(c, b) = c` and `merge(c, a) = c`. Saturated:
/// replaying c on P (`merge(c, e)`) asks for no call and gives back c; other cases are
/// skipped as unsaturated (none so far: c has done whatever P could do).
fn absorption(tally: &Tally, observed: &Observed, picks: &[Index]) -> TestCaseResult {
    for peer in &observed.peers {
        let known = peer.known();
        if known.is_empty() {
            // Its every invoke failed before it stored anything.
            continue;
        }
        let [a, b] = [
            &known[picks[0].index(known.len())],
            &known[picks[1].index(known.len())],
        ];
        let c = merge(observed, peer, a, b);
        if tally.failed(&c) {
            continue;
        }
        let replay = merge(observed, peer, &c.data, &[]);
        if tally.failed(&replay) || !replay.call_requests.is_empty() || replay.data != c.data {
            tally.skipped_unsaturated.fetch_add(1, Relaxed);
            continue;
        }
        if c.data != **a && c.data != **b {
            tally.combined.fetch_add(1, Relaxed);
        }
        for (name, other) in [("b", b), ("a", a)] {
            let out = merge(observed, peer, &c.data, other);
            prop_assert!(
                !failed(&out),
                "merge(c, {name}) on {} failed: {}",
                peer.peer,
                out.error_message()
            );
            tally.expect_equal(&out.data, &c.data, || {
                format!("merge(c, {name}) on {}", peer.peer)
            })?;
        }
    }
    Ok(())
}

/// Associativity for executed calls, canons and the par/fold structure: for a, b, c
/// that peer P stored or received, `merge(merge(a, b), c)` and `merge(a, merge(b, c))`
/// hold the same trace state by state once stream generation numbers are left out
/// (trace-and-merge.md §5: generation numbering is not guaranteed to agree). Skipped
/// unless all four invokes are pure merges (`pure`): otherwise the inputs are not
/// saturated for P and the law does not apply (fixture
/// `laws/associativity_unsaturated_forward`).
fn associativity(tally: &Tally, observed: &Observed, picks: &[Index]) -> TestCaseResult {
    for peer in &observed.peers {
        let known = peer.known();
        if known.is_empty() {
            // Its every invoke failed before it stored anything.
            continue;
        }
        let [a, b, c] = [0, 1, 2].map(|i| &known[picks[i].index(known.len())]);
        associate(tally, observed, peer, [a, b, c])?;
    }
    Ok(())
}

/// Associativity as above, with a, b, c any data of the run (any peer's output), merged on
/// each peer in turn.
fn associativity_any(tally: &Tally, observed: &Observed, picks: &[Index]) -> TestCaseResult {
    let all = observed.all_data();
    if all.is_empty() {
        return Ok(());
    }
    for peer in &observed.peers {
        let [a, b, c] = [0, 1, 2].map(|i| &all[picks[i].index(all.len())]);
        associate(tally, observed, peer, [a, b, c])?;
    }
    Ok(())
}

fn associate(
    tally: &Tally,
    observed: &Observed,
    peer: &PeerData,
    [a, b, c]: [&Arc<Vec<u8>>; 3],
) -> TestCaseResult {
    let ab = merge(observed, peer, a, b);
    let bc = merge(observed, peer, b, c);
    if tally.failed(&ab) || tally.failed(&bc) {
        return Ok(());
    }
    if !pure(&ab, a, b)? || !pure(&bc, b, c)? {
        tally.skipped_unsaturated.fetch_add(1, Relaxed);
        return Ok(());
    }
    let left = merge(observed, peer, &ab.data, c);
    let right = merge(observed, peer, a, &bc.data);
    if tally.failed(&left) || tally.failed(&right) {
        return Ok(());
    }
    if !pure(&left, &ab.data, c)? || !pure(&right, a, &bc.data)? {
        tally.skipped_unsaturated.fetch_add(1, Relaxed);
        return Ok(());
    }
    let what = || format!("associativity on {}", peer.peer);
    tally.checks.fetch_add(1, Relaxed);
    if [a, b, c].iter().all(|x| left.data != ***x) {
        tally.combined.fetch_add(1, Relaxed);
    }
    if left.data == right.data {
        tally.equal_bytes.fetch_add(1, Relaxed);
        return Ok(());
    }
    let (l, r) = (view(&left.data)?, view(&right.data)?);
    prop_assert!(
        l != r,
        "{}: two encodings of one trace (an encoding bug)",
        what()
    );
    let (l, r) = (l.without_generations(), r.without_generations());
    prop_assert!(l == r, "{}: {}", what(), first_difference(&l, &r));
    tally.equal_projection.fetch_add(1, Relaxed);
    Ok(())
}

/// Whether an invoke only merged its inputs: it asked for no call (a request id comes
/// from whichever data is previous), named no next peer (a forward records its sender)
/// and made no canonicalization (one made now sees whatever the stream holds now): no
/// canon result occurs in the output more often than in either input. Conservative: a
/// result that sits at one canon in the previous data and at another in the current one
/// makes a pure merge look impure, which only skips a case.
fn pure(out: &Outcome, prev: &[u8], current: &[u8]) -> Result<bool, TestCaseError> {
    if !out.call_requests.is_empty() || !out.next_peers.is_empty() {
        return Ok(false);
    }
    let canons = |data: &[u8]| -> Result<Vec<data_view::CanonView>, TestCaseError> {
        Ok(view(data)?
            .trace
            .into_iter()
            .filter_map(|s| match s {
                data_view::StateView::Canon(c) => Some(c),
                _ => None,
            })
            .collect())
    };
    let (out, prev, current) = (canons(&out.data)?, canons(prev)?, canons(current)?);
    let count = |list: &[data_view::CanonView], c: &data_view::CanonView| {
        list.iter().filter(|x| *x == c).count()
    };
    Ok(out
        .iter()
        .all(|c| count(&out, c) <= count(&prev, c).max(count(&current, c))))
}

// ---------------------------------------------------------------------------------------
// Non-commutativity.

/// Peers A and B each add a value to `$s` in one branch of a `par`; C merges their data in
/// both orders and canonicalizes: each order puts the previous data's value first
/// (trace-and-merge.md §3.7), and C's call sees the two orders.
#[test]
fn merge_is_not_commutative() {
    let scenario = Scenario::from_json(
        &serde_json::json!({
            "name": "laws/non_commutative",
            "air": r#"(seq
                (par (call "A" ("s" "f") ["a"] $s) (call "B" ("s" "f") ["b"] $s))
                (seq (canon "C" $s #c) (call "C" ("log" "f") [#c])))"#,
            "particle": {"id": "p", "init_peer": "A", "timestamp": 1, "ttl": 100000},
            "peers": ["A", "B", "C"],
            "services": {"rules": [], "default": {"echo": "first"}}
        })
        .to_string(),
    )
    .expect("the witness scenario is valid");
    let script = scenario.script().expect("plain script");
    let step = |peer: &str, prev: &[u8], current: &[u8], results: CallResults| {
        braid_interpreter::invoke(
            &script,
            prev,
            current,
            &run_params(&scenario, peer),
            &results,
        )
    };
    let answered = |peer: &str| {
        let asked = step(peer, &[], &[], CallResults::new());
        assert_eq!(asked.call_requests.len(), 1, "{peer} asks for its call");
        let id = asked.call_requests[0].id;
        let arg = serde_json::from_str::<serde_json::Value>(&asked.call_requests[0].arguments)
            .expect("JSON arguments")[0]
            .to_string();
        let results = CallResults::from([(id, braid_interpreter::CallResult::ok(arg))]);
        let out = step(peer, &asked.data, &[], results);
        assert_eq!(out.ret_code(), 0, "{}", out.error_message());
        out.data
    };
    let (a, b) = (answered("A"), answered("B"));
    let ab = step("C", &a, &b, CallResults::new());
    let ba = step("C", &b, &a, CallResults::new());
    assert_eq!((ab.ret_code(), ba.ret_code()), (0, 0));
    assert_ne!(ab.data, ba.data, "merge(a, b) = merge(b, a)");
    let logged = |o: &Outcome| o.call_requests[0].arguments.clone();
    assert_eq!(logged(&ab), r#"[["a","b"]]"#);
    assert_eq!(logged(&ba), r#"[["b","a"]]"#);
}

/// Non-commutativity is common in random runs, not only in a hand-made case: counts the
/// cases where some peer's merge of two data it knows differs in the two orders.
fn non_commutativity(tally: &Tally, observed: &Observed, picks: &[Index]) -> TestCaseResult {
    for peer in &observed.peers {
        let known = peer.known();
        if known.is_empty() {
            // Its every invoke failed before it stored anything.
            continue;
        }
        let [a, b] = [
            &known[picks[0].index(known.len())],
            &known[picks[1].index(known.len())],
        ];
        if a == b {
            continue;
        }
        let (ab, ba) = (merge(observed, peer, a, b), merge(observed, peer, b, a));
        if tally.failed(&ab) || tally.failed(&ba) {
            continue;
        }
        if ab.data != ba.data {
            tally.checks.fetch_add(1, Relaxed);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Documented counter-examples.

/// `merge(e, x) != x` in bytes when x's peer asked for calls: the counter restarts from
/// the empty previous data (execution-model.md §10); the trace is the same.
#[test]
fn left_identity_resets_the_call_counter() {
    let scenario = fixture("left_identity_call_counter");
    let observed = observe(&scenario).expect("the fixture runs");
    let peer = &observed.peers[0];
    let x = peer.last();
    let out = merge(&observed, peer, &[], x);
    assert_eq!(out.ret_code(), 0, "{}", out.error_message());
    assert_ne!(out.data, **x);
    let (got, want) = (view(&out.data).unwrap(), view(x).unwrap());
    assert_eq!((got.last_call_id, want.last_call_id), (0, 1));
    assert_eq!(
        DataView {
            last_call_id: 1,
            ..got
        },
        want
    );
}

/// A peer's own last data is refused by that peer when a `canon` whose peer failed to
/// evaluate (a catchable error) is followed, in the same xor, by a state at its position:
/// fixture `laws/canon_peer_error_replay`. The laws skip such failed invokes.
#[test]
fn canon_peer_error_breaks_replay() {
    let scenario = fixture("canon_peer_error_replay");
    let observed = observe(&scenario).expect("the fixture runs");
    let codes: Vec<i32> = observed.steps.iter().map(|s| s.ret_code).collect();
    assert_eq!(codes, [0, 0, 20000], "A cannot take the answer to its call");
    let peer = &observed.peers[0];
    let x = observed.steps[1].output.clone();
    assert_eq!(
        peer.last(),
        &x,
        "the failed step returns the data unchanged"
    );
    for (prev, current) in [(&x[..], &x[..]), (&x[..], &[][..]), (&[][..], &x[..])] {
        let out = merge(&observed, peer, prev, current);
        assert_eq!(out.ret_code(), 20000);
        assert!(
            out.error_message()
                .contains("expected a canon state at position 1, found a call state"),
            "{}",
            out.error_message()
        );
    }
}

/// The same order makes a replay lose a canon result without failing: fixture
/// `laws/canon_peer_error_drops_result`. B's data after its first step holds A's canon
/// result for #c2 and B's forward of #c3; merging it with nothing on B leaves only the
/// forward, and so does B's own next step.
#[test]
fn canon_peer_error_drops_a_result() {
    let scenario = fixture("canon_peer_error_drops_result");
    let observed = observe(&scenario).expect("the fixture runs");
    let peer = observed
        .peers
        .iter()
        .find(|p| p.peer == "B")
        .expect("B runs");
    let canons = |data: &[u8]| -> Vec<String> {
        view(data)
            .unwrap()
            .trace
            .into_iter()
            .filter_map(|s| match s {
                data_view::StateView::Canon(c) => Some(format!("executed on {}", c.tetraplet[0])),
                data_view::StateView::CanonSent { peer } => Some(format!("sent by {peer}")),
                _ => None,
            })
            .collect()
    };
    let x = &peer.stored[0];
    assert_eq!(canons(x), ["executed on A", "sent by B"]);
    let out = merge(&observed, peer, x, &[]);
    assert_eq!(out.ret_code(), 0, "{}", out.error_message());
    assert_eq!(canons(&out.data), ["sent by B"], "A's canon result is lost");
    // As current data, x is refused: A's signature covers a result x no longer holds
    // (the reference's checking build refuses it too, code 9).
    let out = merge(&observed, peer, x, x);
    assert_eq!(out.ret_code(), 9, "{}", out.error_message());
    assert_eq!(canons(peer.last()), ["sent by B"]);
}

/// Associativity fails when a merge forwards a call itself: fixture
/// `laws/associativity_unsaturated_forward`.
#[test]
fn associativity_needs_saturated_inputs() {
    let scenario = fixture("associativity_unsaturated_forward");
    let observed = observe(&scenario).expect("the fixture runs");
    let c = observed.steps[0].output.clone();
    assert_eq!(observed.steps[0].peer, "B");
    let a_peer = PeerData {
        peer: "A".into(),
        params: run_params(&scenario, "A"),
        stored: Vec::new(),
        received: Vec::new(),
    };
    let ab = merge(&observed, &a_peer, &[], &[]);
    assert_eq!(ab.next_peers, ["C"], "merge(a, b) forwards the call");
    let left = merge(&observed, &a_peer, &ab.data, &c);
    let right = merge(
        &observed,
        &a_peer,
        &[],
        &merge(&observed, &a_peer, &[], &c).data,
    );
    let sender = |data: &[u8]| match &view(data).unwrap().trace[..] {
        [
            data_view::StateView::Sent {
                peer,
                request: None,
            },
        ] => peer.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (sender(&left.data), sender(&right.data)),
        ("A".into(), "B".into())
    );
}

/// The fixtures' runs are the reference's: their transcripts (recorded with the oracle)
/// match braid's exactly, signatures checked. (`canon_peer_error_drops_result` used to
/// differ: B's data loses one of A's results, which A's signature then covered more
/// than; signatures now may cover more than the data holds.)
#[test]
fn law_fixtures_run_as_in_the_reference() {
    for name in [
        "left_identity_call_counter",
        "canon_peer_error_replay",
        // Not `canon_peer_error_drops_result`: its transcript was recorded with the
        // reference's non-checking build; with checking, braid refuses B's data with 9
        // at step 5 (A's signature no longer matches A's results in it), as the
        // reference's checking build does on the scenario renamed to real peer ids.
        "associativity_unsaturated_forward",
    ] {
        let differences: Vec<String> =
            braid_sim::check(&fixture(name), braid_sim::SHOWN_DIFFERENCES)
                .expect("the fixture runs")
                .iter()
                .map(|d| format!("{}: {}", d.path, d.detail))
                .collect();
        assert_eq!(differences, Vec::<String>::new(), "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Machinery.

fn fixture(name: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/laws")
        .join(format!("{name}.json"));
    Scenario::load(&path).expect("the fixture loads")
}

/// One invoke of `peer` with these inputs and no call results.
///
/// With the run's parameters, arriving data verified: as in the reference, a peer that
/// checks nothing carries no other peer's signature, so verification decides what a
/// merge writes, not only whether data is accepted.
fn merge(observed: &Observed, peer: &PeerData, prev: &[u8], current: &[u8]) -> Outcome {
    let mut params = peer.params.clone();
    params.integrity.check = true;
    braid_interpreter::invoke(
        &observed.script,
        prev,
        current,
        &params,
        &CallResults::new(),
    )
}

/// An invoke that failed before or during execution and returned its previous data:
/// preparation errors (1–10, integrity checks included) and uncatchable ones (2xxxx).
/// A catchable error at the top still produces data and is not a failure here.
fn failed(out: &Outcome) -> bool {
    let code = out.ret_code();
    (1..=10).contains(&code) || (20000..30000).contains(&code)
}

fn view(bytes: &[u8]) -> Result<DataView, TestCaseError> {
    data_view::read(bytes).map_err(|e| TestCaseError::fail(format!("cannot read data: {e}")))
}

/// Where two data differ, for a failure message.
fn first_difference(got: &DataView, want: &DataView) -> String {
    if got.trace.len() != want.trace.len() {
        return format!(
            "{} states instead of {}:\n got {:?}\nwant {:?}",
            got.trace.len(),
            want.trace.len(),
            got.trace,
            want.trace
        );
    }
    if let Some((i, (g, w))) = got
        .trace
        .iter()
        .zip(&want.trace)
        .enumerate()
        .find(|(_, (g, w))| g != w)
    {
        return format!("state {i}:\n got {g:?}\nwant {w:?}");
    }
    if got.last_call_id != want.last_call_id {
        return format!(
            "call counter {} instead of {}",
            got.last_call_id, want.last_call_id
        );
    }
    format!(
        "signatures:\n got {:?}\nwant {:?}",
        got.signatures, want.signatures
    )
}

/// What one law's cases did.
struct Tally {
    name: &'static str,
    cases: AtomicUsize,
    exercised: AtomicUsize,
    checks: AtomicUsize,
    equal_bytes: AtomicUsize,
    equal_projection: AtomicUsize,
    /// Checks whose merged result differs from every input: it combined them.
    combined: AtomicUsize,
    skipped_failed: AtomicUsize,
    skipped_unsaturated: AtomicUsize,
    /// Per kind of failed invoke (code, message without numbers): how many, and the first
    /// message.
    failures: Mutex<BTreeMap<(i32, String), (usize, String)>>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Tally {
            name,
            cases: AtomicUsize::new(0),
            exercised: AtomicUsize::new(0),
            checks: AtomicUsize::new(0),
            equal_bytes: AtomicUsize::new(0),
            equal_projection: AtomicUsize::new(0),
            combined: AtomicUsize::new(0),
            skipped_failed: AtomicUsize::new(0),
            skipped_unsaturated: AtomicUsize::new(0),
            failures: Mutex::default(),
        }
    }

    /// Whether an invoke failed; counts it.
    fn failed(&self, out: &Outcome) -> bool {
        let failed = failed(out);
        if failed {
            self.skipped_failed.fetch_add(1, Relaxed);
            // Failures are told apart by code and message, positions and names aside.
            let message = out.error_message();
            let kind: String = message
                .split_once("error: ")
                .map_or(message.as_str(), |(_, m)| m)
                .split(" (at ")
                .next()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect();
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            failures
                .entry((out.ret_code(), kind))
                .or_insert_with(|| (0, message))
                .0 += 1;
        }
        failed
    }

    /// Checks `got == want` in bytes; counts the check.
    fn expect_equal(
        &self,
        got: &[u8],
        want: &[u8],
        what: impl Fn() -> String,
    ) -> Result<(), TestCaseError> {
        if got != want {
            let (g, w) = (view(got)?, view(want)?);
            prop_assert!(
                g != w,
                "{}: two encodings of one trace (an encoding bug)",
                what()
            );
            return Err(TestCaseError::fail(format!(
                "{}: {}",
                what(),
                first_difference(&g, &w)
            )));
        }
        self.checks.fetch_add(1, Relaxed);
        self.equal_bytes.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Prints the counts and asserts that at least `min_fraction` of the cases made a
    /// check.
    fn finish(&self, min_fraction: f64) {
        let get = |c: &AtomicUsize| c.load(Relaxed);
        let (cases, exercised) = (get(&self.cases), get(&self.exercised));
        eprintln!(
            "{}: {cases} cases, {exercised} exercised it ({} checks: {} equal bytes, {} equal \
             projections, {} of a result unlike every input); skipped: {} failed invokes, {} \
             unsaturated inputs",
            self.name,
            get(&self.checks),
            get(&self.equal_bytes),
            get(&self.equal_projection),
            get(&self.combined),
            get(&self.skipped_failed),
            get(&self.skipped_unsaturated),
        );
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for ((code, _), (count, message)) in failures.iter() {
            eprintln!("  {count} failed with {code}, e.g. {message}");
        }
        assert!(
            exercised as f64 >= min_fraction * cases as f64,
            "{}: only {exercised} of {cases} cases exercised the law",
            self.name
        );
    }
}

/// A law: checks one generated run with a few random picks, counting into its tally.
type Law = fn(&Tally, &Observed, &[Index]) -> TestCaseResult;

/// Runs every law on each of `CASES` generated scenarios (or `PROPTEST_CASES`), on a
/// thread with the driver's stack; counts per law the cases and those that made at least
/// one check.
fn run_laws(laws: &[(&Tally, Law)]) {
    let mut config = contextualize_config(Config::with_cases(CASES));
    config.failure_persistence = Some(Box::new(FileFailurePersistence::Direct(
        "proptest-regressions/merge_laws.txt",
    )));
    config.source_file = Some(file!());
    config.test_name = Some(laws[0].0.name);
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(braid_sim::driver::DRIVER_STACK_BYTES)
            .spawn_scoped(scope, || {
                let strategy = (
                    arb_scenario_for_laws(),
                    proptest::collection::vec(any::<Index>(), 3),
                );
                let mut runner = TestRunner::new(config);
                let result = runner.run(
                    &strategy,
                    |(generated, picks): (RandomScenario, Vec<Index>)| {
                        let observed = observe(&generated.scenario())
                            .map_err(|e| TestCaseError::fail(format!("the run failed: {e}")))?;
                        for (tally, law) in laws {
                            let before = tally.checks.load(Relaxed);
                            tally.cases.fetch_add(1, Relaxed);
                            let outcome = law(tally, &observed, &picks).map_err(|e| {
                                TestCaseError::fail(format!(
                                    "{}: {e}\nscript:\n{}",
                                    tally.name, observed.script
                                ))
                            });
                            if tally.checks.load(Relaxed) > before {
                                tally.exercised.fetch_add(1, Relaxed);
                            }
                            outcome?;
                        }
                        Ok(())
                    },
                );
                if let Err(e) = result {
                    panic!("{e}");
                }
            })
            .expect("the law thread starts")
            .join()
            .expect("the laws hold");
    });
}
