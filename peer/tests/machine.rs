//! The particle machine's policy, step by step: batching, persistence before effects,
//! settling, recovery after a restart, expiry; and the snapshot's byte form.

use std::sync::Arc;

use braid_interpreter::{CallRequest, CallResult, LimitFlags, Outcome, Tetraplet};
use braid_peer::{
    Action, Batching, InvokeInput, MachineConfig, ParticleMachine, Persisted, Settled, Snapshot,
};
use proptest::prelude::*;

fn config(batching: Batching, durable: bool) -> MachineConfig {
    MachineConfig {
        deadline_ms: 1_000,
        batching,
        durable,
    }
}

fn request(id: u32) -> Arc<CallRequest> {
    Arc::new(CallRequest {
        id,
        service_id: "srv".into(),
        function_name: format!("f{id}"),
        arguments: "[1]".into(),
        tetraplets: vec![vec![Tetraplet {
            peer_pk: "p".into(),
            service_id: "s".into(),
            function_name: "f".into(),
            lens: ".$.a".into(),
        }]],
    })
}

fn outcome(data: &[u8], calls: &[u32], next_peers: &[&str]) -> Outcome {
    Outcome::reported(
        data.to_vec(),
        calls
            .iter()
            .map(|&id| Arc::unwrap_or_clone(request(id)))
            .collect(),
        next_peers.iter().map(|p| p.to_string()).collect(),
        0,
        String::new(),
        LimitFlags::default(),
    )
}

fn invoke(m: &mut ParticleMachine) -> InvokeInput {
    match m.poll_action() {
        Some(Action::Invoke(input)) => input,
        other => panic!("expected an invoke, got {other:?}"),
    }
}

fn drain(m: &mut ParticleMachine) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

#[test]
fn all_ready_results_and_one_arrival_share_an_invoke() {
    let mut m = ParticleMachine::new(config(Batching::AllReady, false));
    m.handle_arrival(Arc::new(b"d1".to_vec()));
    let first = invoke(&mut m);
    assert_eq!(
        (first.prev_data.as_slice(), first.data.as_slice()),
        (&b""[..], &b"d1"[..])
    );
    // While it runs, more arrives: nothing else is asked for.
    m.handle_arrival(Arc::new(b"d2".to_vec()));
    m.handle_arrival(Arc::new(b"d3".to_vec()));
    assert_eq!(m.poll_action(), None);
    m.handle_invoked(outcome(b"s1", &[1, 2], &[]));
    assert_eq!(
        drain(&mut m)[..2],
        [Action::Call(request(1)), Action::Call(request(2))]
    );
    // The invoke that followed the calls took d2; its outcome comes back now.
    assert!(m.handle_call_result(1, CallResult::ok("1")));
    assert!(m.handle_call_result(2, CallResult::ok("2")));
    assert!(
        !m.handle_call_result(2, CallResult::ok("again")),
        "answered twice"
    );
    assert!(!m.handle_call_result(9, CallResult::ok("never asked")));
    m.handle_invoked(outcome(b"s2", &[], &[]));
    let next = invoke(&mut m);
    assert_eq!(next.prev_data.as_slice(), b"s2");
    assert_eq!(next.data.as_slice(), b"d3");
    assert_eq!(
        next.call_results.keys().copied().collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn one_at_a_time_takes_arrivals_then_results_by_id() {
    let mut m = ParticleMachine::new(config(Batching::OneAtATime, false));
    m.handle_arrival(Arc::new(b"d1".to_vec()));
    invoke(&mut m);
    m.handle_invoked(outcome(b"s1", &[1, 2], &[]));
    drain(&mut m);
    m.handle_call_result(2, CallResult::ok("2"));
    m.handle_call_result(1, CallResult::ok("1"));
    assert_eq!(
        invoke(&mut m)
            .call_results
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [1]
    );
    m.handle_invoked(outcome(b"s2", &[], &[]));
    assert_eq!(
        invoke(&mut m)
            .call_results
            .keys()
            .copied()
            .collect::<Vec<_>>(),
        [2]
    );
}

#[test]
fn effects_wait_until_the_snapshot_is_durable() {
    let mut m = ParticleMachine::new(config(Batching::AllReady, true));
    m.handle_arrival(Arc::new(b"d".to_vec()));
    invoke(&mut m);
    m.handle_invoked(outcome(b"s", &[7], &["peer-b"]));
    let Some(Action::Persist(snapshot)) = m.poll_action() else {
        panic!("the snapshot comes first");
    };
    assert_eq!(snapshot.data.as_slice(), b"s");
    assert_eq!(snapshot.calls, [request(7)]);
    assert_eq!(m.poll_action(), None, "nothing leaves before the write");
    m.handle_persisted(Persisted::Durable);
    assert_eq!(
        drain(&mut m),
        [
            Action::Call(request(7)),
            Action::Send {
                peers: vec!["peer-b".into()],
                data: Arc::new(b"s".to_vec())
            }
        ]
    );
}

#[test]
fn a_failed_write_drops_the_invokes_effects() {
    let mut m = ParticleMachine::new(config(Batching::AllReady, true));
    m.handle_arrival(Arc::new(b"d".to_vec()));
    invoke(&mut m);
    m.handle_invoked(outcome(b"s", &[7], &["peer-b"]));
    assert!(matches!(m.poll_action(), Some(Action::Persist(_))));
    m.handle_persisted(Persisted::Failed);
    assert_eq!(drain(&mut m), []);
    assert_eq!(m.calls_in_flight(), 0);
}

#[test]
fn a_particle_settles_when_nothing_is_left_and_it_never_left() {
    let mut m = ParticleMachine::new(config(Batching::AllReady, false));
    m.handle_arrival(Arc::new(Vec::new()));
    invoke(&mut m);
    m.handle_invoked(outcome(b"s", &[1], &[]));
    assert_eq!(drain(&mut m), [Action::Call(request(1))]);
    m.handle_call_result(1, CallResult::ok("1"));
    invoke(&mut m);
    m.handle_invoked(outcome(b"s2", &[], &[]));
    assert_eq!(
        drain(&mut m),
        [Action::Settled(Settled {
            ret_code: 0,
            error_message: String::new()
        })]
    );
    // A particle that was sent on never settles here.
    let mut sent = ParticleMachine::new(config(Batching::AllReady, false));
    sent.handle_arrival(Arc::new(Vec::new()));
    invoke(&mut sent);
    sent.handle_invoked(outcome(b"s", &[], &["b"]));
    assert!(
        drain(&mut sent)
            .iter()
            .all(|a| !matches!(a, Action::Settled(_)))
    );
}

#[test]
fn a_quiet_particle_sleeps_and_wakes_as_it_was() {
    let mut m = ParticleMachine::new(config(Batching::AllReady, false));
    m.handle_arrival(Arc::new(Vec::new()));
    invoke(&mut m);
    m.handle_invoked(outcome(b"s", &[1], &["b"]));
    // Actions to poll, then a call in flight: not quiet.
    assert_eq!(m.dormant(), None);
    drain(&mut m);
    assert_eq!(m.dormant(), None);
    m.handle_call_result(1, CallResult::ok("1"));
    assert!(!m.is_quiet(), "a result is ready");
    invoke(&mut m);
    m.handle_invoked(outcome(b"s2", &[], &[]));
    assert!(m.is_quiet());
    let dormant = m.dormant().expect("quiet");
    assert_eq!(**dormant.data(), b"s2");
    assert_eq!(dormant.deadline_ms(), 1_000);
    // Woken by new data: it merges with what it had, and (sent on before) never
    // settles, as the machine that never slept.
    let mut m = ParticleMachine::wake(dormant);
    m.handle_arrival(Arc::new(b"d".to_vec()));
    let input = invoke(&mut m);
    assert_eq!((&**input.prev_data, &**input.data), (&b"s2"[..], &b"d"[..]));
    m.handle_invoked(outcome(b"s3", &[], &[]));
    assert!(drain(&mut m).is_empty());
    assert!(m.handle_tick(1_000));
}

#[test]
fn a_restored_particle_asks_again_for_its_calls_in_flight() {
    let snapshot = Snapshot {
        data: Arc::new(b"s".to_vec()),
        calls: vec![request(3), request(4)],
    };
    let bytes = snapshot.encode();
    let mut m = ParticleMachine::restore(
        config(Batching::AllReady, true),
        Snapshot::decode(&bytes).unwrap(),
    );
    assert_eq!(
        drain(&mut m),
        [Action::Call(request(3)), Action::Call(request(4))]
    );
    m.handle_call_result(3, CallResult::ok("3"));
    m.handle_call_result(4, CallResult::ok("4"));
    let input = invoke(&mut m);
    assert_eq!(input.prev_data.as_slice(), b"s");
    assert_eq!(input.call_results.len(), 2);
}

#[test]
fn at_the_deadline_calls_are_cancelled_and_nothing_more_happens() {
    let mut m = ParticleMachine::new(config(Batching::AllReady, false));
    m.handle_arrival(Arc::new(Vec::new()));
    invoke(&mut m);
    m.handle_invoked(outcome(b"s", &[1, 2], &[]));
    drain(&mut m);
    assert!(!m.handle_tick(999));
    assert!(m.handle_tick(1_000));
    assert_eq!(
        drain(&mut m),
        [Action::Expire {
            cancelled_calls: vec![1, 2]
        }]
    );
    assert!(m.is_over());
    assert!(!m.handle_call_result(1, CallResult::ok("late")));
    m.handle_arrival(Arc::new(Vec::new()));
    assert_eq!(m.poll_action(), None);
    assert!(!m.handle_tick(2_000), "expires once");
}

#[test]
fn a_failed_invoke_stops_the_particle() {
    let mut m = ParticleMachine::new(config(Batching::AllReady, false));
    m.handle_arrival(Arc::new(Vec::new()));
    invoke(&mut m);
    m.handle_invoke_failed();
    assert!(m.is_over());
    m.handle_arrival(Arc::new(Vec::new()));
    assert_eq!(m.poll_action(), None);
}

#[test]
fn a_call_in_flight_is_one_request_shared_by_the_machine_its_snapshot_and_its_action() {
    let mut m = ParticleMachine::new(config(Batching::AllReady, true));
    m.handle_arrival(Arc::new(b"d".to_vec()));
    invoke(&mut m);
    m.handle_invoked(outcome(b"s", &[1, 2], &[]));
    let Some(Action::Persist(snapshot)) = m.poll_action() else {
        panic!("the snapshot comes first");
    };
    m.handle_persisted(Persisted::Durable);
    let Some(Action::Call(call)) = m.poll_action() else {
        panic!("then the calls");
    };
    assert!(Arc::ptr_eq(&call, &snapshot.calls[0]));
    // The machine's in-flight entry, the snapshot and the action: one allocation.
    assert_eq!(Arc::strong_count(&call), 3);
    assert!(m.handle_call_result(1, CallResult::ok("1")));
    assert_eq!(Arc::strong_count(&call), 2);
}

#[test]
fn a_failed_invoke_lets_go_of_the_calls_in_flight() {
    let mut m = ParticleMachine::new(config(Batching::AllReady, false));
    m.handle_arrival(Arc::new(b"d".to_vec()));
    invoke(&mut m);
    m.handle_invoked(outcome(b"s", &[1], &[]));
    let Some(Action::Call(call)) = m.poll_action() else {
        panic!("a call");
    };
    assert_eq!(Arc::strong_count(&call), 2);
    m.handle_arrival(Arc::new(b"d2".to_vec()));
    invoke(&mut m);
    // The backend could not run it (e.g. its call requests were over the limit).
    m.handle_invoke_failed();
    assert!(m.is_over());
    assert_eq!(Arc::strong_count(&call), 1, "the machine holds no copy");
    assert_eq!(m.calls_in_flight(), 0);
    assert!(!m.handle_call_result(1, CallResult::ok("1")));
    assert!(drain(&mut m).is_empty());
}

#[test]
fn garbage_is_not_a_snapshot() {
    assert!(Snapshot::decode(b"").is_err());
    assert!(
        Snapshot::decode(&[0x93, 0x02, 0xc4, 0x00, 0x90]).is_err(),
        "format 2"
    );
}

proptest! {
    #[test]
    fn snapshots_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..64),
        ids in proptest::collection::btree_set(any::<u32>(), 0..5),
        text in ".{0,12}",
    ) {
        let calls = ids
            .into_iter()
            .map(|id| Arc::new(CallRequest { arguments: format!("[{:?}]", text), ..Arc::unwrap_or_clone(request(id)) }))
            .collect();
        let snapshot = Snapshot { data: Arc::new(data), calls };
        prop_assert_eq!(Snapshot::decode(&snapshot.encode()).unwrap(), snapshot);
    }
}
