//! The node's built-in services through the node: every node-side call of the public
//! corpus is a built-in; the guarded functions refuse everyone but the host and its
//! owner; Wasm services deployed at run time answer by id and alias and survive a
//! restart; `peer` and `kad` answer from the transport's `NetworkInfo`; `sig`, `vault`;
//! and one particle running the worst case of the built-ins does not stop another.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use braid_host::{
    Access, BUILTIN_SERVICES, BoxFuture, Contact, MemoryNetwork, NetworkInfo, Node, NodeConfig,
    NodeEvent, NodeKey, ServiceError,
};
use serde_json::{Value, json};

static EXAMPLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/example_service.wasm"));

mod common;
use common::{call, call_on};

const GUARD: &str = "This function is only available to the host or worker spells";

fn key(n: u8) -> NodeKey {
    NodeKey::from_secret([n; 32])
}

/// A node built for the in-memory network `net`, attached to it.
fn attach(net: &Arc<MemoryNetwork>, node: Node) -> Node {
    net.attach(&node);
    node
}

/// A node of `key` on the in-memory network `net`.
fn peer(net: &Arc<MemoryNetwork>, key: NodeKey) -> Node {
    let node = Node::builder()
        .key(key)
        .network(net.clone())
        .build()
        .unwrap();
    attach(net, node)
}

/// A node of `key` owned by `owner` on the in-memory network `net`.
fn owned_peer(net: &Arc<MemoryNetwork>, key: NodeKey, owner: &str) -> Node {
    let node = Node::builder()
        .key(key)
        .owner(owner)
        .network(net.clone())
        .build()
        .unwrap();
    attach(net, node)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    while out.len() % 4 != 0 {
        out.push('=');
    }
    out
}

/// Every `(service, function)` called on a peer other than `%init_peer_id%` in the
/// corpus, for the services of this issue.
fn node_side_calls() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/air");
    let services: BTreeSet<&str> = [
        "peer",
        "kad",
        "srv",
        "dist",
        "sig",
        "vault",
        "stat",
        "op",
        "math",
        "cmp",
        "array",
        "json",
        "debug",
        "run-console",
    ]
    .into_iter()
    .collect();
    let mut pairs = BTreeSet::new();
    let mut files = 0;
    let dirs = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("the corpus at {}: {e}", root.display()));
    for dir in dirs {
        for file in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.extension().is_none_or(|e| e != "air") {
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            for call in text.split("(call ").skip(1) {
                let Some((peer, rest)) = call.split_once(' ') else {
                    continue;
                };
                if peer == "%init_peer_id%" {
                    continue;
                }
                let Some(rest) = rest.strip_prefix("(\"") else {
                    continue;
                };
                let Some((service, rest)) = rest.split_once("\" \"") else {
                    continue;
                };
                let Some((function, _)) = rest.split_once("\")") else {
                    continue;
                };
                if services.contains(service) {
                    pairs.insert((service.to_owned(), function.to_owned()));
                }
            }
        }
    }
    assert!(files > 700, "the corpus has {files} scripts");
    pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_side_call_of_the_corpus_is_a_builtin_and_answered() {
    // aqua's own test scripts declare a service of their own with the id "op"
    // (`op.neighborhood`, `op.timestamp`): not Nox's `op`, and not built-ins anywhere.
    let not_nox = [("op", "neighborhood"), ("op", "timestamp")];
    let pairs = node_side_calls();
    assert!(pairs.len() > 30, "{pairs:?}");
    let node = Node::builder().build().unwrap();
    for (service, function) in &pairs {
        if not_nox.contains(&(service.as_str(), function.as_str())) {
            continue;
        }
        let listed = BUILTIN_SERVICES
            .iter()
            .any(|(s, fs)| s == service && fs.contains(&function.as_str()));
        assert!(
            listed,
            "{service}.{function} is called by the corpus and not a built-in"
        );
        // Called with no arguments it may refuse them, but never as unknown.
        if let Err(message) = call(&node, service, function, vec![]).await {
            assert!(
                !message.contains("not found (function") && !message.contains("has no function"),
                "{service}.{function}: {message}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_a_builtin_service_lacks_is_named_as_such() {
    let node = Node::builder().build().unwrap();
    let error = call(&node, "peer", "teleport", vec![]).await.unwrap_err();
    assert!(
        error.contains("the node's service peer has no function teleport"),
        "{error}"
    );
    let error = call(&node, "nosuch", "f", vec![]).await.unwrap_err();
    assert!(
        error.contains("Service with id 'nosuch' not found (function f)"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_functions_refuse_strangers_and_answer_the_host_and_owner() {
    let net = MemoryNetwork::new();
    let owner_key = key(2);
    let node = owned_peer(&net, key(1), owner_key.peer_id());
    let owner = peer(&net, owner_key);
    let stranger = peer(&net, key(3));
    let target = node.peer_id().to_owned();
    let guarded: Vec<(&str, &str, Vec<Value>)> = vec![
        ("srv", "create", vec![json!("bp")]),
        ("srv", "add_alias", vec![json!("a"), json!("s")]),
        ("srv", "remove", vec![json!("s")]),
        (
            "dist",
            "add_module",
            vec![json!(base64(EXAMPLE)), json!({"name": "m"})],
        ),
        (
            "dist",
            "add_module_from_vault",
            vec![json!("/tmp/vault/x/y"), json!({"name": "m"})],
        ),
        (
            "dist",
            "add_module_bytes_from_vault",
            vec![json!("m"), json!("/tmp/vault/x/y")],
        ),
        (
            "dist",
            "add_blueprint",
            vec![json!(r#"{"name":"b","dependencies":[]}"#)],
        ),
        ("peer", "connect", vec![json!("braid-00"), json!([])]),
        ("run-console", "print", vec![json!("hello")]),
    ];
    for (service, function, args) in &guarded {
        let refused = call_on(&stranger, &target, service, function, args.clone()).await;
        let error = refused.expect_err("a stranger is refused");
        assert!(error.contains(GUARD), "{service}.{function}: {error}");
        for caller in [&owner, &node] {
            if let Err(e) = call_on(caller, &target, service, function, args.clone()).await {
                assert!(
                    !e.contains(GUARD),
                    "{service}.{function} refused its owner or host: {e}"
                );
            }
        }
    }
    // `sig.sign` refuses strangers with its own message (Nox's).
    let error = call_on(&stranger, &target, "sig", "sign", vec![json!([1, 2])])
        .await
        .unwrap_err();
    assert!(error.contains("is not allowed to sign data on"), "{error}");
    // Unguarded functions answer anyone.
    assert_eq!(
        call_on(&stranger, &target, "srv", "list", vec![]).await,
        Ok(json!([]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_service_answers_only_whom_its_access_rule_allows() {
    let net = MemoryNetwork::new();
    let owner_key = key(5);
    let node = owned_peer(&net, key(4), owner_key.peer_id());
    let owner = peer(&net, owner_key);
    let stranger = peer(&net, key(6));
    node.register_service_with_access("admin", Access::HostAndOwner, |_| async {
        Ok(json!("done"))
    });
    node.register_service_with_access(
        "picky",
        Access::Check(Arc::new(|call| {
            if call.args.first() == Some(&json!("please")) {
                Ok(())
            } else {
                Err(ServiceError::new("say please"))
            }
        })),
        |_| async { Ok(json!("ok")) },
    );
    let target = node.peer_id().to_owned();
    assert_eq!(
        call_on(&owner, &target, "admin", "run", vec![]).await,
        Ok(json!("done"))
    );
    let e = call_on(&stranger, &target, "admin", "run", vec![])
        .await
        .unwrap_err();
    assert!(e.contains(GUARD), "{e}");
    let e = call_on(&stranger, &target, "picky", "f", vec![json!("now")])
        .await
        .unwrap_err();
    assert!(e.contains("say please"), "{e}");
    assert_eq!(
        call_on(&stranger, &target, "picky", "f", vec![json!("please")]).await,
        Ok(json!("ok"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_service_answers_by_id_and_alias_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::builder()
        .key(key(7))
        .data_dir(dir.path())
        .build()
        .unwrap();
    let hash = call(
        &node,
        "dist",
        "add_module",
        vec![json!(base64(EXAMPLE)), json!({"name": "greeter"})],
    )
    .await
    .unwrap();
    let modules = call(&node, "dist", "list_modules", vec![]).await.unwrap();
    assert_eq!(modules[0]["hash"], hash);
    assert_eq!(modules[0]["name"], "greeter");
    let hash_dep = format!("hash:{}", hash.as_str().unwrap());
    let blueprint = call(
        &node,
        "dist",
        "make_blueprint",
        vec![json!("greeter"), json!([hash_dep])],
    )
    .await
    .unwrap();
    let blueprint_id = call(&node, "dist", "add_blueprint", vec![blueprint])
        .await
        .unwrap();
    let got = call(&node, "dist", "get_blueprint", vec![blueprint_id.clone()])
        .await
        .unwrap();
    assert_eq!(got["name"], "greeter");
    let id = call(&node, "srv", "create", vec![blueprint_id.clone()])
        .await
        .unwrap();
    let id = id.as_str().unwrap().to_owned();
    assert_eq!(
        call(&node, &id, "greet", vec![json!("braid")]).await,
        Ok(json!("Hello, braid!"))
    );
    assert_eq!(
        call(&node, "srv", "add_alias", vec![json!("greeter"), json!(id)]).await,
        Ok(json!(""))
    );
    assert_eq!(
        call(&node, "srv", "resolve_alias", vec![json!("greeter")]).await,
        Ok(json!(id))
    );
    assert_eq!(
        call(&node, "srv", "resolve_alias_opt", vec![json!("nope")]).await,
        Ok(json!([]))
    );
    assert_eq!(
        call(&node, "greeter", "sum", vec![json!([1, 2])]).await,
        Ok(json!(3))
    );
    // The interface is what the module says of its functions, in Nox's shape.
    let interface = call(&node, "srv", "get_interface", vec![json!("greeter")])
        .await
        .unwrap();
    assert_eq!(
        interface["function_signatures"][0],
        json!({"name": "greet", "arguments": [["name", "string"]], "output_types": ["string"]})
    );
    assert_eq!(interface["function_signatures"][1]["name"], "sum");
    assert_eq!(interface["record_types"], json!([]));
    assert_eq!(
        call(&node, "dist", "get_module_interface", vec![hash.clone()]).await,
        Ok(interface)
    );
    let info = call(&node, "srv", "info", vec![json!("greeter")])
        .await
        .unwrap();
    assert_eq!(info["id"], id);
    assert_eq!(info["aliases"], json!(["greeter"]));
    let stat = call(&node, "stat", "service_stat", vec![json!("greeter")])
        .await
        .unwrap();
    assert_eq!(stat["status"], true);
    assert_eq!(stat["result"][0]["functions"]["sum"]["calls"], 1);
    // An alias may not shadow a built-in.
    let e = call(&node, "srv", "add_alias", vec![json!("op"), json!(id)])
        .await
        .unwrap_err();
    assert!(e.contains("Cannot add alias 'op'"), "{e}");
    drop(node);

    let node = Node::builder()
        .key(key(7))
        .data_dir(dir.path())
        .build()
        .unwrap();
    assert_eq!(
        call(&node, "greeter", "greet", vec![json!("again")]).await,
        Ok(json!("Hello, again!"))
    );
    let listed = call(&node, "srv", "list", vec![]).await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        call(&node, "srv", "remove", vec![json!("greeter")]).await,
        Ok(json!(""))
    );
    let e = call(&node, "greeter", "greet", vec![json!("x")])
        .await
        .unwrap_err();
    assert!(e.contains("not found"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blueprint_of_several_modules_is_refused_saying_why() {
    let node = Node::builder().key(key(7)).build().unwrap();
    let hash = call(
        &node,
        "dist",
        "add_module",
        vec![json!(base64(EXAMPLE)), json!({"name": "first"})],
    )
    .await
    .unwrap();
    let hash = format!("hash:{}", hash.as_str().unwrap());
    let blueprint = call(
        &node,
        "dist",
        "make_blueprint",
        vec![json!("pair"), json!(["name:first", hash])],
    )
    .await
    .unwrap();
    let e = call(&node, "dist", "add_blueprint", vec![blueprint])
        .await
        .unwrap_err();
    assert!(
        e.contains("blueprint 'pair' has 2 modules") && e.contains("cannot call each other"),
        "{e}"
    );
    assert_eq!(
        call(&node, "dist", "list_blueprints", vec![]).await,
        Ok(json!([]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_that_does_not_describe_itself_says_so_when_asked_its_interface() {
    let node = Node::builder().key(key(7)).build().unwrap();
    // The ABI's three exports and nothing else: every call answers {"ok":1}.
    let quiet = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (data (i32.const 64) "{\"ok\":1}")
             (func (export "braid_service_alloc") (param i32) (result i32) i32.const 1024)
             (func (export "braid_service_call") (param i32 i32 i32 i32) (result i64)
               i64.const 274877906952))"#,
    )
    .unwrap();
    let hash = call(
        &node,
        "dist",
        "add_module",
        vec![json!(base64(&quiet)), json!({"name": "quiet"})],
    )
    .await
    .unwrap();
    let e = call(&node, "dist", "get_module_interface", vec![hash])
        .await
        .unwrap_err();
    assert!(
        e.contains("does not describe its functions") && e.contains("braid_service_interface"),
        "{e}"
    );
    // One whose description is not an interface is refused when it is added.
    let garbled = wat::parse_str(
        r#"(module
             (memory (export "memory") 1)
             (data (i32.const 64) "{\"functions\":[]}")
             (func (export "braid_service_alloc") (param i32) (result i32) i32.const 1024)
             (func (export "braid_service_call") (param i32 i32 i32 i32) (result i64)
               i64.const 274877906952)
             (func (export "braid_service_interface") (result i64)
               i64.const 274877906960))"#,
    )
    .unwrap();
    let e = call(
        &node,
        "dist",
        "add_module",
        vec![json!(base64(&garbled)), json!({"name": "garbled"})],
    )
    .await
    .unwrap_err();
    assert!(
        e.contains("module 'garbled' cannot run here") && e.contains("gave no interface"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_module_built_for_marine_is_refused_saying_so() {
    let node = Node::builder().build().unwrap();
    let marine = wat::parse_str(
        r#"(module
             (import "host" "log_utf8_string" (func (param i32 i32 i32 i32)))
             (memory (export "memory") 1)
             (func (export "allocate") (param i32) (result i32) i32.const 0))"#,
    )
    .unwrap();
    let e = call(
        &node,
        "dist",
        "add_module",
        vec![json!(base64(&marine)), json!({"name": "m"})],
    )
    .await
    .unwrap_err();
    assert!(e.contains("built for Nox's Marine runtime"), "{e}");
}

/// A network that knows two peers, one connected.
struct FakeInfo {
    connects: Mutex<Vec<(String, Vec<String>)>>,
}

impl NetworkInfo for FakeInfo {
    fn listen_addresses(&self) -> Vec<String> {
        vec!["/ip4/0.0.0.0/tcp/977".into()]
    }
    fn external_addresses(&self) -> Vec<String> {
        vec!["/ip4/1.2.3.4/tcp/977".into()]
    }
    fn is_connected(&self, peer_id: &str) -> bool {
        peer_id == "near"
    }
    fn connect(&self, peer_id: &str, addresses: Vec<String>) -> BoxFuture<bool> {
        self.connects
            .lock()
            .unwrap()
            .push((peer_id.to_owned(), addresses));
        Box::pin(async { true })
    }
    fn contact(&self, peer_id: &str) -> BoxFuture<Option<Contact>> {
        let contact = (peer_id == "near").then(|| Contact {
            peer_id: "near".into(),
            addresses: vec!["/ip4/5.6.7.8/tcp/977".into()],
        });
        Box::pin(async move { contact })
    }
    fn neighborhood(&self, key: Vec<u8>, count: usize) -> BoxFuture<Vec<String>> {
        // Nox's key: the bytes as the digest of a SHA-256 multihash.
        assert_eq!(key, [&[0x12, 8][..], b"some key"].concat());
        let peers: Vec<String> = ["near", "far"]
            .iter()
            .take(count)
            .map(|s| s.to_string())
            .collect();
        Box::pin(async move { peers })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_and_kad_answer_from_the_network_info() {
    let info = Arc::new(FakeInfo {
        connects: Mutex::new(Vec::new()),
    });
    let node = Node::builder().network_info(info.clone()).build().unwrap();
    let id = call(&node, "peer", "identify", vec![]).await.unwrap();
    assert_eq!(id["external_addresses"], json!(["/ip4/1.2.3.4/tcp/977"]));
    assert_eq!(id["listen_addresses"], json!(["/ip4/0.0.0.0/tcp/977"]));
    assert_eq!(
        call(&node, "peer", "is_connected", vec![json!("near")]).await,
        Ok(json!(true))
    );
    assert_eq!(
        call(&node, "peer", "is_connected", vec![json!("far")]).await,
        Ok(json!(false))
    );
    let contact = call(&node, "peer", "get_contact", vec![json!("near")])
        .await
        .unwrap();
    assert_eq!(
        contact,
        json!({"peer_id": "near", "addresses": ["/ip4/5.6.7.8/tcp/977"]})
    );
    assert_eq!(
        call(&node, "peer", "get_contact", vec![json!("far")]).await,
        Ok(json!(""))
    );
    let addr = json!(["/ip4/9.9.9.9/tcp/1"]);
    assert_eq!(
        call(&node, "peer", "connect", vec![json!("far"), json!([addr])]).await,
        Ok(json!(true))
    );
    assert_eq!(
        info.connects.lock().unwrap()[0],
        ("far".to_owned(), vec!["/ip4/9.9.9.9/tcp/1".to_owned()])
    );
    let key = bs58::encode(b"some key").into_string();
    assert_eq!(
        call(
            &node,
            "kad",
            "neighborhood",
            vec![json!(key), json!([]), json!([1])]
        )
        .await,
        Ok(json!(["near"]))
    );
    let with = call(&node, "kad", "neigh_with_addrs", vec![json!(key)])
        .await
        .unwrap();
    assert_eq!(
        with,
        json!([{"peer_id": "near", "addresses": ["/ip4/5.6.7.8/tcp/977"]}, {"peer_id": "far", "addresses": []}])
    );
    let ts = call(&node, "peer", "timestamp_sec", vec![]).await.unwrap();
    assert!(ts.as_u64().unwrap() > 1_600_000_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_network_tells_its_peers() {
    let net = MemoryNetwork::new();
    let a = peer(&net, key(8));
    let b = peer(&net, key(9));
    let b_id = json!(b.peer_id());
    assert_eq!(
        call(&a, "peer", "is_connected", vec![b_id.clone()]).await,
        Ok(json!(true))
    );
    let key = bs58::encode(b"k").into_string();
    let near = call(&a, "kad", "neighborhood", vec![json!(key)])
        .await
        .unwrap();
    assert_eq!(near.as_array().unwrap().len(), 2);
    assert!(near.as_array().unwrap().contains(&b_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sig_signs_only_registry_records_and_verifies_with_the_node_key() {
    let node = Node::builder().key(key(10)).build().unwrap();
    node.register_service("registry", |_| async { Ok(json!([1, 2, 3])) });
    let script = r#"
      (xor
        (seq
          (call %init_peer_id% ("registry" "get_record_bytes") [] data)
          (seq
            (call %init_peer_id% ("sig" "sign") [data] signed)
            (seq
              (call %init_peer_id% ("sig" "verify") [signed.$.signature.[0] data] ok)
              (call %init_peer_id% ("callbackSrv" "response") [signed ok]))))
        (call %init_peer_id% ("errorHandlingSrv" "error") [%last_error%]))"#;
    let answer = node
        .execute(script, Vec::<(String, Value)>::new())
        .await
        .unwrap();
    assert_eq!(answer[0]["success"], true, "{answer}");
    assert_eq!(answer[0]["signature"][0].as_array().unwrap().len(), 64);
    assert_eq!(answer[1], true);
    // Bytes a script made up are not signed.
    let made_up = call(&node, "sig", "sign", vec![json!([1, 2, 3])])
        .await
        .unwrap();
    assert_eq!(made_up["success"], false);
    assert!(
        made_up["error"][0]
            .as_str()
            .unwrap()
            .contains("registry.get_record_bytes"),
        "{made_up}"
    );
    assert_eq!(
        call(&node, "sig", "get_peer_id", vec![]).await,
        Ok(json!(node.peer_id()))
    );
    assert_eq!(
        call(
            &node,
            "sig",
            "verify",
            vec![json!(vec![0u8; 64]), json!([1, 2, 3])]
        )
        .await,
        Ok(json!(false))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_files_belong_to_their_particle() {
    let node = Node::builder().build().unwrap();
    let script = r#"
      (seq
        (call %init_peer_id% ("vault" "put") ["the most important data ever"] path)
        (seq
          (call %init_peer_id% ("vault" "cat") [path] back)
          (call %init_peer_id% ("callbackSrv" "response") [path back])))"#;
    let answer = node
        .execute(script, Vec::<(String, Value)>::new())
        .await
        .unwrap();
    assert_eq!(answer[1], "the most important data ever");
    let path = answer[0].as_str().unwrap();
    assert!(path.starts_with("/tmp/vault/"), "{path}");
    // Another particle cannot read it.
    let e = call(&node, "vault", "cat", vec![json!(path)])
        .await
        .unwrap_err();
    assert!(e.contains("Error reading vault file"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_files_of_a_node_with_a_data_dir_are_files_removed_with_their_particle() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::builder()
        .key(key(9))
        .data_dir(dir.path())
        .build()
        .unwrap();
    let script = r#"
      (seq
        (call %init_peer_id% ("vault" "put") ["kept on disk"] path)
        (seq
          (call %init_peer_id% ("vault" "cat") [path] back)
          (call %init_peer_id% ("callbackSrv" "response") [path back])))"#;
    let answer = node
        .execute_with_ttl(
            script,
            Vec::<(String, Value)>::new(),
            Duration::from_millis(1500),
        )
        .await
        .unwrap();
    assert_eq!(answer[1], "kept on disk");
    // Nox's virtual path; the file itself is under the data dir.
    let path = answer[0].as_str().unwrap();
    let name = path.rsplit('/').next().unwrap();
    assert!(
        path.starts_with("/tmp/vault/") && !path.contains(".."),
        "{path}"
    );
    let vault = dir.path().join("vault");
    let particle_dirs: Vec<_> = std::fs::read_dir(&vault).unwrap().flatten().collect();
    assert_eq!(particle_dirs.len(), 1);
    assert_eq!(
        std::fs::read(particle_dirs[0].path().join(name)).unwrap(),
        b"kept on disk"
    );
    // The particle ends at its deadline (plus the clock skew allowance), and its files
    // with it.
    while node.stats().expired == 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read_dir(&vault).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_timeout_ends_at_the_particles_deadline() {
    let node = Node::builder().build().unwrap();
    let script = r#"
      (seq
        (call %init_peer_id% ("peer" "timeout") [600000 "late"] r)
        (call %init_peer_id% ("callbackSrv" "response") [r]))"#;
    // A ten-minute timeout in a particle of two seconds answers at its deadline, within
    // the clock skew allowance that the particle lives on.
    let answer = node
        .execute_with_ttl(
            script,
            Vec::<(String, Value)>::new(),
            Duration::from_secs(2),
        )
        .await;
    assert_eq!(answer, Ok(json!("late")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_are_bounded_per_init_peer() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&calls);
    let node = Node::builder()
        .config(NodeConfig {
            max_calls_per_init_peer: 2,
            ..NodeConfig::standard()
        })
        .observer(move |e| {
            if let NodeEvent::Call { result, .. } = e {
                log.lock().unwrap().push(result.clone());
            }
        })
        .build()
        .unwrap();
    let script = r#"
      (seq
        (par (call %init_peer_id% ("peer" "timeout") [300] a)
          (par (call %init_peer_id% ("peer" "timeout") [300] b)
            (call %init_peer_id% ("peer" "timeout") [300] c)))
        (call %init_peer_id% ("callbackSrv" "response") []))"#;
    let _ = node.execute(script, Vec::<(String, Value)>::new()).await;
    let results = calls.lock().unwrap().clone();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.to_string().contains("too many calls in flight")))
        .count();
    assert_eq!(refused, 1, "{results:?}");
}

/// While an attacker's particle runs the worst case of the built-ins on a node, a
/// victim's particle through the same node is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_particle_running_the_worst_cases_does_not_stop_another() {
    let net = MemoryNetwork::new();
    let node = peer(&net, key(11));
    let attacker = attach(
        &net,
        Node::builder()
            .key(key(12))
            .network(net.clone())
            .default_ttl(Duration::from_secs(120))
            .build()
            .unwrap(),
    );
    let victim = peer(&net, key(13));
    let target = node.peer_id().to_owned();

    // The biggest base58 input, a big JSON text, big set operations, many kad keys, big
    // texts, arrays, signature checks and vault files, and a thousand ten-minute
    // timeouts, all at once.
    let big = "x".repeat(16 * 1024);
    let items: Vec<u32> = (0..8).collect();
    let strings: Vec<String> = (0..20_000).map(|i| format!("s{i}")).collect();
    let json_text = json!(strings).to_string();
    let keys: Vec<String> = (0..2_000u32)
        .map(|i| bs58::encode(i.to_be_bytes()).into_string())
        .collect();
    let timeouts: Vec<u32> = (0..1_000).collect();
    let attack = format!(
        r#"(seq
             (seq
               (seq (call %init_peer_id% ("getDataSrv" "big") [] big)
                    (call %init_peer_id% ("getDataSrv" "items") [] items))
               (seq (seq (call %init_peer_id% ("getDataSrv" "strings") [] strings)
                         (call %init_peer_id% ("getDataSrv" "json") [] json_text))
                    (seq (call %init_peer_id% ("getDataSrv" "keys") [] keys)
                         (seq (call %init_peer_id% ("getDataSrv" "timeouts") [] timeouts)
                              (call %init_peer_id% ("getDataSrv" "bytes") [] bytes)))))
             (par
               (fold timeouts t (par (call "{target}" ("peer" "timeout") [600000] $slept) (next t)))
               (fold items i
                 (par
                   (seq
                     (call "{target}" ("op" "string_to_b58") [big] $b58)
                     (seq
                       (call "{target}" ("json" "parse") [json_text] $parsed)
                       (seq
                         (call "{target}" ("array" "intersect") [strings strings] $common)
                         (seq
                           (call "{target}" ("kad" "merge") [keys.$.[0] keys keys] $merged)
                           (seq
                             (call "{target}" ("debug" "stringify") [strings strings] $text)
                             (seq
                               (call "{target}" ("op" "concat") [strings strings] $all)
                               (seq
                                 (call "{target}" ("sig" "verify") [bytes bytes] $valid)
                                 (call "{target}" ("vault" "put") [json_text] $path))))))))
                   (next i)))))"#
    );
    let attack_args = vec![
        ("big", json!(big)),
        ("items", json!(items)),
        ("strings", json!(strings)),
        ("json", json!(json_text)),
        ("keys", json!(keys)),
        ("timeouts", json!(timeouts)),
        ("bytes", json!(vec![7u8; 100_000])),
    ];
    let running = tokio::spawn({
        let attacker = attacker.clone();
        async move { attacker.execute(attack, attack_args).await }
    });
    // Wait until the node is busy with the attack.
    while node.stats().calls == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies = Vec::new();
    let mut big_latencies = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let answer = call_on(&victim, &target, "peer", "timestamp_ms", vec![]).await;
        latencies.push(started.elapsed());
        assert!(answer.is_ok(), "{answer:?}");
        let answer = call_on(
            &victim,
            &target,
            "op",
            "string_to_b58",
            vec![json!("hello world")],
        )
        .await;
        assert_eq!(answer, Ok(json!("StV1DL6CwTryKyV")));
        // A big argument takes the blocking threads, where the victim has its share.
        let started = Instant::now();
        let long = "y".repeat(8 * 1024);
        let answer = call_on(&victim, &target, "op", "string_to_b58", vec![json!(long)]).await;
        big_latencies.push(started.elapsed());
        assert_eq!(answer, Ok(json!(bs58::encode(&long).into_string())));
    }
    let busy = !running.is_finished();
    eprintln!(
        "victim latency during the attack (attack still running: {busy}): small calls {:?}, 8 KiB base58 {:?}; node stats: {:?}",
        latencies,
        big_latencies,
        node.stats()
    );
    running.abort();
}

/// `peer.timeout` holds no call slot while it sleeps: a node with four call slots and
/// sixteen sleeping timeouts of one particle still answers another particle's calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleeping_timeouts_hold_no_call_slot() {
    let net = MemoryNetwork::new();
    let node = attach(
        &net,
        Node::builder()
            .key(key(14))
            .network(net.clone())
            .config(NodeConfig {
                max_calls_in_flight: 4,
                ..NodeConfig::standard()
            })
            .build()
            .unwrap(),
    );
    let sleeper = attach(
        &net,
        Node::builder()
            .key(key(15))
            .network(net.clone())
            .default_ttl(Duration::from_secs(60))
            .build()
            .unwrap(),
    );
    let victim = peer(&net, key(16));
    let target = node.peer_id().to_owned();
    let sleep = format!(
        r#"(seq
             (call %init_peer_id% ("getDataSrv" "n") [] n)
             (fold n i (par (call "{target}" ("peer" "timeout") [600000] $slept) (next i))))"#
    );
    let running = tokio::spawn({
        let sleeper = sleeper.clone();
        async move {
            sleeper
                .execute(sleep, [("n", json!((0..16).collect::<Vec<u32>>()))])
                .await
        }
    });
    // Wait until the sleeper's particle has reached the node and its calls are made.
    while node.stats().invokes == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..8 {
        assert_eq!(
            call_on(&victim, &target, "op", "identity", vec![json!(1)]).await,
            Ok(json!(1))
        );
    }
    assert!(!running.is_finished(), "the timeouts still sleep");
    running.abort();
}
