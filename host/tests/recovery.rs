//! A node that stops while a particle has a service call in flight finishes that
//! particle when it starts again on the same data dir: the call is made again (at least
//! once) and the script goes on, with no particle re-delivered.

use std::time::Duration;

use braid_host::{Node, NodeKey};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const SCRIPT: &str = r#"
  (seq
    (call %init_peer_id% ("slow" "work") [] x)
    (call %init_peer_id% ("done" "record") [x]))"#;

fn key() -> NodeKey {
    NodeKey::from_secret([7; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_is_made_again_after_a_restart_and_the_particle_finishes() {
    let dir = tempfile::tempdir().unwrap();

    // The first life: `slow.work` is called and never answers.
    let (called_tx, mut called) = mpsc::unbounded_channel();
    let first = Node::builder()
        .key(key())
        .data_dir(dir.path())
        .build()
        .unwrap();
    first.register_service("slow", move |_| {
        let called = called_tx.clone();
        async move {
            let _ = called.send(());
            std::future::pending::<()>().await;
            Ok(Value::Null)
        }
    });
    let running = {
        let first = first.clone();
        tokio::spawn(async move {
            first
                .execute_with_ttl(
                    SCRIPT,
                    Vec::<(String, Value)>::new(),
                    Duration::from_secs(60),
                )
                .await
        })
    };
    tokio::time::timeout(Duration::from_secs(10), called.recv())
        .await
        .expect("the call is made")
        .expect("the service runs");
    // The node stops with the call in flight (its data and the call are on disk: a
    // call is made only after that is durable).
    running.abort();
    drop(first);

    // The second life, on the same data dir: nothing is delivered again.
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let second = Node::builder()
        .key(key())
        .data_dir(dir.path())
        .build()
        .unwrap();
    second.register_service("slow", |_| async { Ok(json!(42)) });
    second.register_service("done", move |call| {
        let done = done_tx.clone();
        async move {
            let _ = done.send(call.args.clone());
            Ok(Value::Null)
        }
    });
    second.resume();
    let args = tokio::time::timeout(Duration::from_secs(10), done.recv())
        .await
        .expect("the particle finishes after the restart")
        .expect("the service runs");
    assert_eq!(args, [json!(42)]);
}
