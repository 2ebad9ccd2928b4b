//! A braid-net node for trying the field's clients by hand (the JS client, a Nox):
//! listens on the addresses given (default `/ip4/127.0.0.1/tcp/9991/ws` and
//! `/ip4/127.0.0.1/tcp/9990`) with the key whose 32 secret bytes are all 7
//! (`12D3KooWRawPbxPtP1eZaJpumGnyWX2DcUyd3RQnydr3eAto4Az7`), prints every event, checks
//! each particle's signature against the key in its init peer id, and sends each
//! particle back once, unchanged, to the peer it came from.
//!
//! `cargo run -p braid-net --example echo_node [MULTIADDR...]`; `js-client/run.mjs`
//! drives the JS client 0.9.0 against it.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use braid_net::{NetConfig, NetEvent, Network, PeerId};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = NetConfig::new([7; 32], "dev");
    config.listen = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    if config.listen.is_empty() {
        config.listen = vec![
            "/ip4/127.0.0.1/tcp/9991/ws".parse()?,
            "/ip4/127.0.0.1/tcp/9990".parse()?,
        ];
    }
    let (net, mut events) = Network::start(config).await?;
    for addr in net.listen_addrs().await? {
        println!("listening on {addr}/p2p/{}", net.local_peer_id());
    }
    let mut echoed = HashSet::new();
    while let Some(event) = events.recv().await {
        match event {
            NetEvent::Particle { from, particle, .. } => {
                let verified = PeerId::from_str(&particle.init_peer_id)
                    .ok()
                    .and_then(|id| {
                        libp2p::identity::PublicKey::try_decode_protobuf(id.as_ref().digest()).ok()
                    })
                    .and_then(|key| key.try_into_ed25519().ok())
                    .is_some_and(|key| particle.verify(&key.to_bytes()));
                println!(
                    "particle {} from {from}: init peer {}, ttl {} ms, {} script bytes, {} data bytes, signature verified: {verified}",
                    particle.id,
                    particle.init_peer_id,
                    particle.ttl,
                    particle.script.len(),
                    particle.data.len()
                );
                if echoed.insert(particle.id.clone()) {
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                    match net.send(from, &particle, deadline).await {
                        Ok(()) => println!("sent {} back to {from}", particle.id),
                        Err(e) => println!("sending {} back failed: {e}", particle.id),
                    }
                }
            }
            other => println!("{other:?}"),
        }
    }
    Ok(())
}
