//! `braid node --metrics ADDR`: a minimal HTTP server with `/metrics` (the node's
//! counters in the Prometheus text format, by `prometheus-client`) and `/health`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use braid_host::p2p::NetStats;
use braid_host::{Node, NodeStats};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The network's counters, read on each request for `/metrics`.
pub(crate) type NetStatsSource = Arc<dyn Fn() -> NetStats + Send + Sync>;

/// Binds `addr` and serves until the runtime stops; returns the bound address.
pub(crate) async fn serve(
    addr: &str,
    node: Node,
    net_stats: NetStatsSource,
) -> anyhow::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics {addr}: cannot listen"))?;
    let bound = listener.local_addr()?;
    let started = Instant::now();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let node = node.clone();
            let net_stats = Arc::clone(&net_stats);
            tokio::spawn(async move {
                let Some(request) = read_head(&mut stream).await else {
                    return;
                };
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let (status, kind, body) = match path {
                    "/metrics" => (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        exposition(&node.stats(), &net_stats(), started),
                    ),
                    "/health" => ("200 OK", "text/plain", "ok\n".to_owned()),
                    _ => (
                        "404 Not Found",
                        "text/plain",
                        "try /metrics or /health\n".to_owned(),
                    ),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(bound)
}

/// Reads a request's head (up to the blank line, at most 8 KiB, within 5 s).
async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The node's counters as a Prometheus (OpenMetrics) text.
fn exposition(stats: &NodeStats, net: &NetStats, started: Instant) -> String {
    let mut registry = Registry::with_prefix("braid");
    let counters: [(&str, &str, u64); 16] = [
        ("particles_accepted", "Particles let in", stats.accepted),
        (
            "intake_pressure",
            "Times a full intake queue made a sender wait",
            stats.intake_pressure,
        ),
        ("invokes", "Invocations run", stats.invokes),
        (
            "failed_invokes",
            "Invocations with a non-zero return code",
            stats.failed_invokes,
        ),
        ("calls", "Service calls answered", stats.calls),
        (
            "call_timeouts",
            "Service calls that timed out",
            stats.call_timeouts,
        ),
        ("particles_sent", "Particles sent to peers", stats.sent),
        ("send_failures", "Sends that failed", stats.send_failures),
        (
            "particles_expired",
            "Particles that reached their deadline here",
            stats.expired,
        ),
        (
            "cancelled_calls",
            "Service calls cancelled by expiry",
            stats.cancelled_calls,
        ),
        (
            "store_failures",
            "Failed reads and writes of the data store",
            stats.store_failures,
        ),
        (
            "particles_rejected",
            "Particles refused at intake",
            stats.rejected.values().sum(),
        ),
        (
            "net_streams_rejected",
            "Inbound streams the network refused (over a limit or the read budget, stalled, not decodable)",
            net.rejected,
        ),
        (
            "net_connections_established",
            "Connections established, both ways",
            net.connections_established,
        ),
        (
            "net_undeliverable",
            "Particles and notices the network gave up on",
            net.undeliverable,
        ),
        (
            "particles_over_budget",
            "Particles dropped because an invocation's call requests were over the particle's memory budget",
            stats.particles_over_budget,
        ),
    ];
    for (name, help, value) in counters {
        let counter: Counter = Counter::default();
        counter.inc_by(value);
        registry.register(name, help, counter);
    }
    let live: Gauge = Gauge::default();
    live.set(i64::try_from(stats.live_particles).unwrap_or(i64::MAX));
    registry.register("live_particles", "Particles alive on the node now", live);
    let working: Gauge = Gauge::default();
    working.set(i64::try_from(stats.working_particles).unwrap_or(i64::MAX));
    registry.register(
        "working_particles",
        "Particles being invoked or waiting on their service calls now",
        working,
    );
    let uptime: Gauge = Gauge::default();
    uptime.set(i64::try_from(started.elapsed().as_secs()).unwrap_or(i64::MAX));
    registry.register("uptime_seconds", "Seconds since the node started", uptime);
    if let Some(live) = crate::counting_alloc::live_heap() {
        let heap: Gauge = Gauge::default();
        heap.set(live);
        registry.register(
            "live_heap_bytes",
            "Heap bytes of the process allocated and not freed (counted from its start)",
            heap,
        );
    }
    if let Some(rss) = resident_bytes() {
        let resident: Gauge = Gauge::default();
        resident.set(i64::try_from(rss).unwrap_or(i64::MAX));
        registry.register("resident_bytes", "Resident memory of the process", resident);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

/// The process's resident memory, from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
