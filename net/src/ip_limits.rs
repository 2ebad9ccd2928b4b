//! Inbound connections per remote IP address: a behaviour that refuses a new inbound
//! connection, before its handshake, when its address already has as many connections
//! in their handshake or established as it may. Keys cost nothing, addresses do: with
//! it, one host cannot take every handshake slot or connection of the node.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// The IP address of a multiaddr, if it starts with one.
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Why a connection was refused, for the swarm's error.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already has {limit} inbound connections, its limit")]
pub(crate) struct TooManyFromIp {
    ip: IpAddr,
    limit: u32,
}

/// The behaviour: counts inbound connections by remote IP address.
pub(crate) struct Behaviour {
    limit: Option<u32>,
    per_ip: HashMap<IpAddr, u32>,
    connections: HashMap<ConnectionId, IpAddr>,
}

impl Behaviour {
    pub(crate) fn new(limit: Option<u32>) -> Self {
        Behaviour {
            limit,
            per_ip: HashMap::new(),
            connections: HashMap::new(),
        }
    }

    fn release(&mut self, connection: ConnectionId) {
        if let Some(ip) = self.connections.remove(&connection)
            && let Some(n) = self.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let (Some(limit), Some(ip)) = (self.limit, ip_of(remote)) else {
            return Ok(());
        };
        let n = self.per_ip.entry(ip).or_default();
        if *n >= limit {
            tracing::debug!(%ip, limit, "refused an inbound connection: too many from its address");
            return Err(ConnectionDenied::new(TooManyFromIp { ip, limit }));
        }
        *n += 1;
        self.connections.insert(connection, ip);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(e) => self.release(e.connection_id),
            FromSwarm::ListenFailure(e) => self.release(e.connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}
