//! The particle protocol (`/fluence/particle/2.0.0`), braid's long-lived particle
//! streams (`/braid/particle-stream/1.0.0`) and braid's notice protocol
//! (`/braid/notice/1.0.0`) as a libp2p behaviour and its connection handler.
//!
//! One message per stream in the field's particle protocol and in the notice
//! protocol: the sender opens an outbound stream, writes one frame and closes it; the
//! receiver reads one frame (the length checked against the limit before the body is
//! read, the body buffered only as it arrives) within a timeout, and drops the stream.
//! A connection reads at most `max_inbound_streams` streams at once; further ones are
//! dropped.
//!
//! Between braid peers the same particle frames go one after another on one
//! long-lived stream per connection and direction, saving a stream, a protocol
//! negotiation and several Noise frames and syscalls per particle. A connection's
//! first particle stream offers `/braid/particle-stream/1.0.0` first and the field's
//! protocol second; what the peer picks is remembered for the connection (a peer of
//! the field gets exactly the one-frame streams it gets from Nox). On a long-lived
//! stream the writer sends whatever is queued in one write and one flush; the reader
//! keeps every limit per frame (frame limit, read budget, a stall timeout from a
//! frame's first byte on) and holds no budget and no timer while idle between frames.
//!
//! The behaviour does not dial: the network loop ([`crate::network`]) sends on peers
//! it is connected to and reports each send's result.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use braid_wire::{
    MAX_NOTICE_BYTES, MAX_VARINT_BYTES, NOTICE_PROTOCOL, Notice, PARTICLE_PROTOCOL,
    PARTICLE_STREAM_PROTOCOL, Particle, Rejection, decode_length_prefix, particle_of_frame_body,
};
use futures::channel::mpsc;
use futures::stream::{BoxStream, SelectAll};
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt, StreamExt};
use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{InboundUpgrade, OutboundUpgrade, UpgradeInfo};
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, Stream, StreamProtocol, StreamUpgradeError, SubstreamProtocol,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};

/// Which of the two protocols a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Particle,
    Notice,
}

impl Kind {
    fn protocol(self) -> StreamProtocol {
        StreamProtocol::new(match self {
            Kind::Particle => PARTICLE_PROTOCOL,
            Kind::Notice => NOTICE_PROTOCOL,
        })
    }
}

/// Limits of the handler.
#[derive(Debug, Clone)]
pub(crate) struct ProtocolConfig {
    /// Largest particle frame read, after its length prefix.
    pub(crate) max_frame_bytes: usize,
    /// How long an inbound stream may take to deliver its frame, and an outbound one
    /// to take it.
    pub(crate) stream_timeout: Duration,
    /// Inbound streams read at once on one connection.
    pub(crate) max_inbound_streams: usize,
    /// Bytes of unfinished inbound frames buffered by all connections at once.
    pub(crate) buffered: Arc<ReadBudget>,
    /// Whether to offer and accept [`PARTICLE_STREAM_PROTOCOL`] (off: the field's
    /// protocol only, as Nox and the JS client speak it).
    pub(crate) particle_streams: bool,
}

/// Frames up to this size are read without asking [`ReadBudget`]: whatever the
/// budget, small particles get through (their memory is bounded by the streams a
/// connection may read at once).
pub(crate) const SMALL_FRAME: usize = 64 << 10;

/// The bytes all inbound frames being read may hold at once, beyond [`SMALL_FRAME`]
/// each: a peer that trickles big frames on many streams and connections holds at most
/// this, and it is given back as each stream ends.
#[derive(Debug)]
pub(crate) struct ReadBudget {
    held: std::sync::atomic::AtomicUsize,
    limit: usize,
}

impl ReadBudget {
    pub(crate) fn new(limit: usize) -> Self {
        ReadBudget {
            held: std::sync::atomic::AtomicUsize::new(0),
            limit,
        }
    }

    fn take(&self, n: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held.saturating_add(n) <= self.limit).then_some(held + n)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.held.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// What one frame took of the [`ReadBudget`], given back when dropped.
struct Taken<'a> {
    budget: Option<&'a ReadBudget>,
    bytes: usize,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(budget) = self.budget {
            budget.give_back(self.bytes);
        }
    }
}

/// One frame to write on a new stream.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    /// The network loop's number for this attempt.
    pub(crate) id: u64,
    pub(crate) kind: Kind,
    /// The whole frame, length prefix included.
    pub(crate) frame: Arc<Vec<u8>>,
}

/// What the behaviour reports to the network loop.
#[derive(Debug)]
pub(crate) enum Event {
    /// A particle arrived (format checked only), over a connection from `ip`.
    Particle {
        from: PeerId,
        ip: Option<std::net::IpAddr>,
        particle: Particle,
    },
    /// A notice arrived.
    Notice { from: PeerId, notice: Notice },
    /// An inbound stream was refused, and why.
    Rejected {
        from: PeerId,
        kind: &'static str,
        reason: String,
    },
    /// An outbound frame was written and its stream closed, or why not.
    Sent {
        id: u64,
        result: Result<(), Failure>,
    },
}

/// Why a send attempt failed.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) reason: String,
    /// Whether another attempt may succeed (a peer that does not speak the protocol
    /// will not start to).
    pub(crate) retry: bool,
}

impl Failure {
    pub(crate) fn retry(reason: impl Into<String>) -> Self {
        Failure {
            reason: reason.into(),
            retry: true,
        }
    }
}

/// The behaviour: routes sends to a connection of their peer and reports what the
/// handlers read and wrote.
pub(crate) struct Behaviour {
    config: ProtocolConfig,
    connections: HashMap<PeerId, Vec<ConnectionId>>,
    /// The remote IP address of each connection.
    ips: HashMap<ConnectionId, std::net::IpAddr>,
    /// Attempts handed to a handler, by connection, to fail when it closes.
    in_flight: HashMap<ConnectionId, HashSet<u64>>,
    events: VecDeque<ToSwarm<Event, Outbound>>,
}

impl Behaviour {
    pub(crate) fn new(config: ProtocolConfig) -> Self {
        Self {
            config,
            connections: HashMap::new(),
            ips: HashMap::new(),
            in_flight: HashMap::new(),
            events: VecDeque::new(),
        }
    }

    /// Writes `outbound` on a stream of a connection to `peer`; its result comes as
    /// [`Event::Sent`]. Fails at once if there is no connection.
    pub(crate) fn send(&mut self, peer: PeerId, outbound: Outbound) -> Result<(), Outbound> {
        // The newest connection: older ones may be on their way out.
        let Some(&connection) = self.connections.get(&peer).and_then(|c| c.last()) else {
            return Err(outbound);
        };
        self.in_flight
            .entry(connection)
            .or_default()
            .insert(outbound.id);
        self.events.push_back(ToSwarm::NotifyHandler {
            peer_id: peer,
            handler: NotifyHandler::One(connection),
            event: outbound,
        });
        Ok(())
    }

    fn handler(&self) -> Handler {
        Handler::new(self.config.clone())
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Event;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(self.handler())
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                if let Some(ip) = crate::ip_limits::ip_of(e.endpoint.get_remote_address()) {
                    self.ips.insert(e.connection_id, ip);
                }
                self.connections
                    .entry(e.peer_id)
                    .or_default()
                    .push(e.connection_id);
            }
            FromSwarm::ConnectionClosed(e) => {
                self.ips.remove(&e.connection_id);
                if let Some(list) = self.connections.get_mut(&e.peer_id) {
                    list.retain(|c| *c != e.connection_id);
                    if list.is_empty() {
                        self.connections.remove(&e.peer_id);
                    }
                }
                for id in self.in_flight.remove(&e.connection_id).unwrap_or_default() {
                    self.events.push_back(ToSwarm::GenerateEvent(Event::Sent {
                        id,
                        result: Err(Failure::retry(
                            "the connection closed before the frame was written",
                        )),
                    }));
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        let event = match event {
            HandlerEvent::Particle(particle) => Event::Particle {
                from: peer,
                ip: self.ips.get(&connection).copied(),
                particle,
            },
            HandlerEvent::Notice(notice) => Event::Notice { from: peer, notice },
            HandlerEvent::Rejected { kind, reason } => Event::Rejected {
                from: peer,
                kind,
                reason,
            },
            HandlerEvent::Sent { id, result } => {
                if let Some(ids) = self.in_flight.get_mut(&connection) {
                    ids.remove(&id);
                }
                Event::Sent { id, result }
            }
        };
        self.events.push_back(ToSwarm::GenerateEvent(event));
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        match self.events.pop_front() {
            Some(event) => Poll::Ready(event),
            None => Poll::Pending,
        }
    }
}

/// What a handler tells the behaviour.
#[derive(Debug)]
pub(crate) enum HandlerEvent {
    Particle(Particle),
    Notice(Notice),
    Rejected {
        /// A short stable name: a `Rejection::kind`, `io`, `stalled` or
        /// `too_many_streams`.
        kind: &'static str,
        reason: String,
    },
    Sent {
        id: u64,
        result: Result<(), Failure>,
    },
}

/// The protocols a stream may be negotiated for.
#[derive(Debug, Clone)]
pub(crate) struct Protocols(Vec<StreamProtocol>);

impl UpgradeInfo for Protocols {
    type Info = StreamProtocol;
    type InfoIter = std::vec::IntoIter<StreamProtocol>;

    fn protocol_info(&self) -> Self::InfoIter {
        self.0.clone().into_iter()
    }
}

impl InboundUpgrade<Stream> for Protocols {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}

impl OutboundUpgrade<Stream> for Protocols {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = Ready<Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        ready(Ok((stream, protocol)))
    }
}

/// One connection's streams of the protocols.
pub(crate) struct Handler {
    config: ProtocolConfig,
    /// How particles go to this connection's peer.
    route: Route,
    /// The particle whose stream is to find out which protocol the peer speaks.
    probe: Option<Outbound>,
    /// Particles waiting for the probe's answer.
    waiting: VecDeque<Outbound>,
    /// Sends waiting for a stream of their own to be opened.
    queued: VecDeque<Outbound>,
    /// Streams requested and not yet negotiated.
    opening: usize,
    /// Frames handed to a long-lived outbound stream and not yet reported.
    unsent: usize,
    /// Long-lived outbound streams still running (the current one, and one that
    /// failed and is still reporting).
    writers: usize,
    /// The number of the newest long-lived outbound stream.
    generation: u64,
    /// Long-lived inbound streams being read.
    readers: usize,
    inbound: SelectAll<BoxStream<'static, Progress>>,
    outbound: SelectAll<BoxStream<'static, Progress>>,
    /// Events decided outside a stream (refusals, negotiation failures).
    events: VecDeque<HandlerEvent>,
}

/// How particles go to the peer of one connection.
enum Route {
    /// Not known yet: the next particle's stream offers [`PARTICLE_STREAM_PROTOCOL`]
    /// first, the field's protocol second.
    Unknown,
    /// That stream is being negotiated.
    Probing,
    /// On the long-lived stream of this generation.
    Stream {
        generation: u64,
        frames: mpsc::UnboundedSender<Outbound>,
    },
    /// One frame per stream: the peer speaks only the field's protocol (or this node
    /// offers only that).
    OnePerStream,
}

/// What the handler's streams yield.
enum Progress {
    /// Passed on to the behaviour.
    Event(HandlerEvent),
    /// A frame handed to the long-lived outbound stream was written, or why not
    /// (an [`HandlerEvent::Sent`]).
    StreamSent(HandlerEvent),
    /// The long-lived outbound stream of this generation failed; every frame handed to
    /// it has been reported.
    WriterEnded(u64),
    /// A long-lived inbound stream ended.
    ReaderEnded,
}

impl Handler {
    fn new(config: ProtocolConfig) -> Self {
        let route = if config.particle_streams {
            Route::Unknown
        } else {
            Route::OnePerStream
        };
        Self {
            config,
            route,
            probe: None,
            waiting: VecDeque::new(),
            queued: VecDeque::new(),
            opening: 0,
            unsent: 0,
            writers: 0,
            generation: 0,
            readers: 0,
            inbound: SelectAll::new(),
            outbound: SelectAll::new(),
            events: VecDeque::new(),
        }
    }

    /// Takes note of one of the streams' progress; what the behaviour must hear of.
    fn handle_progress(&mut self, progress: Progress) -> Option<HandlerEvent> {
        match progress {
            Progress::Event(event) => Some(event),
            Progress::StreamSent(event) => {
                self.unsent = self.unsent.saturating_sub(1);
                Some(event)
            }
            Progress::WriterEnded(generation) => {
                self.writers = self.writers.saturating_sub(1);
                if matches!(self.route, Route::Stream { generation: g, .. } if g == generation) {
                    self.route = Route::Unknown;
                }
                None
            }
            Progress::ReaderEnded => {
                self.readers = self.readers.saturating_sub(1);
                None
            }
        }
    }

    /// The long-lived stream was negotiated: `first` and the waiting particles go on it.
    fn start_writer(&mut self, stream: Stream, first: Outbound) {
        let (frames, queue) = mpsc::unbounded();
        for outbound in std::iter::once(first).chain(self.waiting.drain(..)) {
            // The receiver is alive: it was made just above.
            let _ = frames.unbounded_send(outbound);
            self.unsent += 1;
        }
        self.generation += 1;
        self.writers += 1;
        self.route = Route::Stream {
            generation: self.generation,
            frames,
        };
        self.outbound.push(write_stream(
            stream,
            queue,
            self.generation,
            self.config.stream_timeout,
        ));
    }

    /// The probe failed: it and the particles waiting for it fail alike.
    fn fail_probe(&mut self, probe: Outbound, failure: Failure) {
        self.route = Route::Unknown;
        for outbound in std::iter::once(probe).chain(self.waiting.drain(..)) {
            self.events.push_back(HandlerEvent::Sent {
                id: outbound.id,
                result: Err(failure.clone()),
            });
        }
    }
}

/// How many streams one connection may be opening at once.
const MAX_OPENING: usize = 16;

/// Long-lived inbound particle streams one connection may hold at once (one, and one
/// more while a broken one is being noticed).
const MAX_READERS: usize = 2;

/// Bytes of frames written to a long-lived stream at once.
const MAX_BATCH_BYTES: usize = 256 << 10;

impl ConnectionHandler for Handler {
    type FromBehaviour = Outbound;
    type ToBehaviour = HandlerEvent;
    type InboundProtocol = Protocols;
    type OutboundProtocol = Protocols;
    type InboundOpenInfo = ();
    /// The frame, and whether its stream is the probe.
    type OutboundOpenInfo = (Outbound, bool);

    fn listen_protocol(&self) -> SubstreamProtocol<Protocols, ()> {
        let mut protocols = vec![Kind::Particle.protocol(), Kind::Notice.protocol()];
        if self.config.particle_streams {
            protocols.insert(0, StreamProtocol::new(PARTICLE_STREAM_PROTOCOL));
        }
        SubstreamProtocol::new(Protocols(protocols), ()).with_timeout(self.config.stream_timeout)
    }

    fn connection_keep_alive(&self) -> bool {
        // Idle long-lived streams do not keep the connection alive; frames in them do
        // (on the sending side).
        !(self.queued.is_empty()
            && self.probe.is_none()
            && self.waiting.is_empty()
            && self.opening == 0
            && self.unsent == 0
            && self.inbound.len() <= self.readers
            && self.outbound.len() <= self.writers)
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Protocols, (Outbound, bool), HandlerEvent>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
        }
        while let Poll::Ready(Some(progress)) = self.inbound.poll_next_unpin(cx) {
            if let Some(event) = self.handle_progress(progress) {
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
            }
        }
        while let Poll::Ready(Some(progress)) = self.outbound.poll_next_unpin(cx) {
            if let Some(event) = self.handle_progress(progress) {
                return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(event));
            }
        }
        if self.opening < MAX_OPENING
            && let Some(outbound) = self.probe.take()
        {
            self.opening += 1;
            let protocols = vec![
                StreamProtocol::new(PARTICLE_STREAM_PROTOCOL),
                Kind::Particle.protocol(),
            ];
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(Protocols(protocols), (outbound, true))
                    .with_timeout(self.config.stream_timeout),
            });
        }
        if self.opening < MAX_OPENING
            && let Some(outbound) = self.queued.pop_front()
        {
            self.opening += 1;
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(
                    Protocols(vec![outbound.kind.protocol()]),
                    (outbound, false),
                )
                .with_timeout(self.config.stream_timeout),
            });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, outbound: Outbound) {
        if outbound.kind == Kind::Notice {
            self.queued.push_back(outbound);
            return;
        }
        match &self.route {
            Route::OnePerStream => self.queued.push_back(outbound),
            Route::Unknown => {
                self.route = Route::Probing;
                self.probe = Some(outbound);
            }
            Route::Probing => self.waiting.push_back(outbound),
            Route::Stream { frames, .. } => match frames.unbounded_send(outbound) {
                Ok(()) => self.unsent += 1,
                // The stream failed a moment ago: find a new one.
                Err(e) => {
                    self.route = Route::Unknown;
                    self.on_behaviour_event(e.into_inner());
                }
            },
        }
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Protocols, Protocols, (), (Outbound, bool)>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (mut stream, protocol),
                ..
            }) => {
                let long_lived = protocol.as_ref() == PARTICLE_STREAM_PROTOCOL;
                if self.inbound.len() >= self.config.max_inbound_streams
                    || (long_lived && self.readers >= MAX_READERS)
                {
                    drop(stream);
                    let reason = if long_lived && self.readers >= MAX_READERS {
                        format!(
                            "over {MAX_READERS} long-lived particle streams at once on one connection; stream dropped"
                        )
                    } else {
                        format!(
                            "over {} inbound streams at once on one connection; stream dropped",
                            self.config.max_inbound_streams
                        )
                    };
                    self.events.push_back(HandlerEvent::Rejected {
                        kind: "too_many_streams",
                        reason,
                    });
                    return;
                }
                let config = self.config.clone();
                if long_lived {
                    // An idle stream between frames must not keep the connection open.
                    stream.ignore_for_keep_alive();
                    self.readers += 1;
                    self.inbound.push(read_stream(stream, config));
                    return;
                }
                let kind = if protocol.as_ref() == NOTICE_PROTOCOL {
                    Kind::Notice
                } else {
                    Kind::Particle
                };
                self.inbound
                    .push(one_event(read_inbound(stream, kind, config)));
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (mut stream, protocol),
                info: (outbound, probe),
            }) => {
                self.opening = self.opening.saturating_sub(1);
                if protocol.as_ref() == PARTICLE_STREAM_PROTOCOL {
                    stream.ignore_for_keep_alive();
                    self.start_writer(stream, outbound);
                    return;
                }
                if probe {
                    // The peer speaks only the field's protocol: one frame per stream
                    // from now on, on this connection.
                    self.route = Route::OnePerStream;
                    self.queued.extend(self.waiting.drain(..));
                }
                let timeout = self.config.stream_timeout;
                self.outbound
                    .push(one_event(write_outbound(stream, outbound, timeout)));
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError {
                info: (outbound, probe),
                error,
            }) => {
                self.opening = self.opening.saturating_sub(1);
                let failure = match error {
                    StreamUpgradeError::NegotiationFailed => Failure {
                        reason: format!("the peer does not speak {}", outbound.kind.protocol()),
                        retry: false,
                    },
                    StreamUpgradeError::Timeout => Failure::retry("opening a stream timed out"),
                    StreamUpgradeError::Io(e) => {
                        Failure::retry(format!("opening a stream failed: {e}"))
                    }
                    StreamUpgradeError::Apply(never) => match never {},
                };
                if probe {
                    self.fail_probe(outbound, failure);
                } else {
                    self.events.push_back(HandlerEvent::Sent {
                        id: outbound.id,
                        result: Err(failure),
                    });
                }
            }
            _ => {}
        }
    }
}

/// A one-frame stream's future as one of the handler's streams of progress.
fn one_event(
    event: impl std::future::Future<Output = HandlerEvent> + Send + 'static,
) -> BoxStream<'static, Progress> {
    event.map(Progress::Event).into_stream().boxed()
}

/// Writes one frame and closes the stream, within `timeout`.
async fn write_outbound(mut stream: Stream, outbound: Outbound, timeout: Duration) -> HandlerEvent {
    let write = async {
        stream.write_all(&outbound.frame).await?;
        stream.close().await
    };
    let result = match tokio::time::timeout(timeout, write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Failure::retry(format!("writing the frame failed: {e}"))),
        Err(_) => Err(Failure::retry(format!(
            "writing the frame took over {timeout:?}"
        ))),
    };
    HandlerEvent::Sent {
        id: outbound.id,
        result,
    }
}

/// The long-lived outbound stream: writes the frames handed to it as they come, all
/// those queued at once in one write and one flush (each batch within `timeout`), and
/// reports each frame. When a write fails, it stops taking frames, reports every frame
/// it was handed as failed (the sender may retry), then [`Progress::WriterEnded`].
fn write_stream(
    stream: Stream,
    frames: mpsc::UnboundedReceiver<Outbound>,
    generation: u64,
    timeout: Duration,
) -> BoxStream<'static, Progress> {
    struct Writer {
        stream: Option<Stream>,
        frames: mpsc::UnboundedReceiver<Outbound>,
        reports: VecDeque<Progress>,
        batch: Vec<u8>,
    }
    let writer = Writer {
        stream: Some(stream),
        frames,
        reports: VecDeque::new(),
        batch: Vec::new(),
    };
    futures::stream::unfold(writer, move |mut w| async move {
        loop {
            if let Some(report) = w.reports.pop_front() {
                return Some((report, w));
            }
            let mut stream = w.stream.take()?;
            // Idle between frames: no timeout. None: the handler is gone.
            let first = w.frames.next().await?;
            let mut batch = vec![first];
            let mut bytes = batch[0].frame.len();
            while bytes < MAX_BATCH_BYTES
                && let Ok(outbound) = w.frames.try_recv()
            {
                bytes += outbound.frame.len();
                batch.push(outbound);
            }
            w.batch.clear();
            for outbound in &batch {
                w.batch.extend_from_slice(&outbound.frame);
            }
            let write = async {
                stream.write_all(&w.batch).await?;
                stream.flush().await
            };
            let failure = match tokio::time::timeout(timeout, write).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(Failure::retry(format!("writing the frame failed: {e}"))),
                Err(_) => Some(Failure::retry(format!(
                    "writing the frame took over {timeout:?}"
                ))),
            };
            if failure.is_some() {
                // Take no more; what was handed over already fails with this batch.
                w.frames.close();
                while let Ok(outbound) = w.frames.try_recv() {
                    batch.push(outbound);
                }
            } else {
                w.stream = Some(stream);
            }
            w.reports.extend(batch.into_iter().map(|outbound| {
                Progress::StreamSent(HandlerEvent::Sent {
                    id: outbound.id,
                    result: failure.clone().map_or(Ok(()), Err),
                })
            }));
            if failure.is_some() {
                w.reports.push_back(Progress::WriterEnded(generation));
            }
        }
    })
    .boxed()
}

/// The long-lived inbound stream: reads frames one after another until the stream
/// ends. Between frames it may idle without a timeout and holds no budget; once a
/// frame's first byte has come, the whole frame must come within the stream timeout,
/// under the frame limit and the read budget, as on a one-frame stream. A frame that
/// breaks a limit ends the stream (its frames can no longer be told apart); one that
/// only does not decode is refused and the next is read.
fn read_stream<S>(stream: S, config: ProtocolConfig) -> BoxStream<'static, Progress>
where
    S: futures::AsyncRead + Unpin + Send + 'static,
{
    enum Reader<S> {
        Reading(S),
        Ending,
        Ended,
    }
    futures::stream::unfold(Reader::Reading(stream), move |reader| {
        let config = config.clone();
        async move {
            let mut stream = match reader {
                Reader::Reading(stream) => stream,
                Reader::Ending => return Some((Progress::ReaderEnded, Reader::Ended)),
                Reader::Ended => return None,
            };
            let mut first = [0u8];
            if stream.read_exact(&mut first).await.is_err() {
                // Closed or reset between frames: nothing was lost.
                return Some((Progress::ReaderEnded, Reader::Ended));
            }
            let read = tokio::time::timeout(
                config.stream_timeout,
                read_frame_from(
                    &mut stream,
                    first[0],
                    config.max_frame_bytes,
                    Some(&config.buffered),
                ),
            )
            .await;
            let broken = !matches!(read, Ok(Ok(_)));
            let event = frame_event(read, Kind::Particle, &config);
            let next = if broken {
                // Dropping the stream resets it.
                Reader::Ending
            } else {
                Reader::Reading(stream)
            };
            Some((Progress::Event(event), next))
        }
    })
    .boxed()
}

/// Reads one frame of `kind` within the timeout and decodes it.
async fn read_inbound(mut stream: Stream, kind: Kind, config: ProtocolConfig) -> HandlerEvent {
    let limit = match kind {
        Kind::Particle => config.max_frame_bytes,
        Kind::Notice => MAX_NOTICE_BYTES,
    };
    let read = tokio::time::timeout(
        config.stream_timeout,
        read_frame(&mut stream, limit, Some(&config.buffered)),
    )
    .await;
    // Dropping the stream resets it: one frame per stream.
    drop(stream);
    frame_event(read, kind, &config)
}

/// What the behaviour hears of one frame read within the stream timeout (or not).
fn frame_event(
    read: Result<Result<Vec<u8>, FrameReadError>, tokio::time::error::Elapsed>,
    kind: Kind,
    config: &ProtocolConfig,
) -> HandlerEvent {
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(FrameReadError::Rejected(r))) => return rejected(&r),
        Ok(Err(FrameReadError::OverBudget { announced })) => {
            return HandlerEvent::Rejected {
                kind: "read_budget",
                reason: format!(
                    "a {kind:?} frame of {announced} bytes would take the node over its budget of {} bytes of unfinished frames; stream dropped",
                    config.buffered.limit
                ),
            };
        }
        Ok(Err(FrameReadError::Io(e))) => {
            return HandlerEvent::Rejected {
                kind: "io",
                reason: format!("reading a {kind:?} frame failed: {e}"),
            };
        }
        Err(_) => {
            return HandlerEvent::Rejected {
                kind: "stalled",
                reason: format!(
                    "no whole {kind:?} frame within {:?}; stream dropped",
                    config.stream_timeout
                ),
            };
        }
    };
    let decoded = match kind {
        Kind::Particle => particle_of_frame_body(&body)
            .and_then(Particle::decode)
            .map(HandlerEvent::Particle),
        Kind::Notice => Notice::decode(&body).map(HandlerEvent::Notice),
    };
    decoded.unwrap_or_else(|r| rejected(&r))
}

fn rejected(r: &Rejection) -> HandlerEvent {
    HandlerEvent::Rejected {
        kind: r.kind(),
        reason: r.to_string(),
    }
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameReadError {
    Rejected(Rejection),
    /// The frame would take the node over its [`ReadBudget`].
    OverBudget {
        announced: usize,
    },
    Io(io::Error),
}

/// Reads a length prefix (byte by byte, checked against `limit` as it grows), then
/// exactly that many bytes, buffered only as they arrive (the buffer never holds more
/// than the announced length, which is within `limit`). Growing the buffer past
/// [`SMALL_FRAME`] takes from `budget` (given back when this returns); a frame the
/// budget cannot hold is refused.
pub(crate) async fn read_frame<R: futures::AsyncRead + Unpin>(
    reader: &mut R,
    limit: usize,
    budget: Option<&ReadBudget>,
) -> Result<Vec<u8>, FrameReadError> {
    let mut first = [0u8];
    reader
        .read_exact(&mut first)
        .await
        .map_err(FrameReadError::Io)?;
    read_frame_from(reader, first[0], limit, budget).await
}

/// [`read_frame`] once the first byte of the length prefix has been read.
pub(crate) async fn read_frame_from<R: futures::AsyncRead + Unpin>(
    reader: &mut R,
    first: u8,
    limit: usize,
    budget: Option<&ReadBudget>,
) -> Result<Vec<u8>, FrameReadError> {
    let mut taken = Taken { budget, bytes: 0 };
    let mut prefix = Vec::with_capacity(MAX_VARINT_BYTES);
    prefix.push(first);
    let length = loop {
        match decode_length_prefix(&prefix, limit) {
            Ok(Some((length, _))) => break length,
            Ok(None) => {}
            Err(r) => return Err(FrameReadError::Rejected(r)),
        }
        let mut byte = [0u8];
        reader
            .read_exact(&mut byte)
            .await
            .map_err(FrameReadError::Io)?;
        prefix.push(byte[0]);
    };
    // Grow the buffer as bytes arrive, doubling but never past `length`: a peer that
    // announces a large frame and sends little costs little.
    let mut body = Vec::new();
    let mut chunk = [0u8; 8 << 10];
    while body.len() < length {
        let want = (length - body.len()).min(chunk.len());
        let n = reader
            .read(&mut chunk[..want])
            .await
            .map_err(FrameReadError::Io)?;
        if n == 0 {
            return Err(FrameReadError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the stream ended after {} of {length} bytes", body.len()),
            )));
        }
        if body.capacity() - body.len() < n {
            let grow = body.capacity().max(chunk.len()).min(length - body.len());
            let after = body.capacity() + grow;
            if let Some(budget) = budget
                && after > SMALL_FRAME
            {
                let more = after - SMALL_FRAME.max(body.capacity());
                if !budget.take(more) {
                    return Err(FrameReadError::OverBudget { announced: length });
                }
                taken.bytes += more;
            }
            body.reserve_exact(grow);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], limit: usize) -> Result<Vec<u8>, FrameReadError> {
        futures::executor::block_on(read_frame(
            &mut futures::io::Cursor::new(bytes),
            limit,
            None,
        ))
    }

    #[test]
    fn frames_are_read_within_the_limit_and_buffered_as_they_arrive() {
        let mut frame = Vec::new();
        braid_wire::encode_varint(100_000, &mut frame);
        frame.extend(std::iter::repeat_n(7u8, 100_000));
        let body = read(&frame, 100_000).unwrap();
        assert_eq!(body.len(), 100_000);
        assert!(body.capacity() <= 100_000, "{}", body.capacity());
        assert!(matches!(
            read(&frame, 99_999),
            Err(FrameReadError::Rejected(Rejection::TooLarge { .. }))
        ));
        // Announced 100 000, sent 10: an error, and nothing near 100 000 allocated.
        let short = &frame[..13];
        match read(short, 100_000) {
            Err(FrameReadError::Io(e)) => assert!(e.to_string().contains("after 10 of 100000")),
            other => panic!("{:?}", other.map(|b| b.len())),
        }
        assert!(matches!(read(&[], 10), Err(FrameReadError::Io(_))));
        assert!(matches!(read(&[0], 10), Ok(b) if b.is_empty()));
    }

    fn config(max_frame_bytes: usize) -> ProtocolConfig {
        ProtocolConfig {
            max_frame_bytes,
            stream_timeout: Duration::from_secs(30),
            max_inbound_streams: 8,
            buffered: Arc::new(ReadBudget::new(1 << 20)),
            particle_streams: true,
        }
    }

    fn particle_frame(n: u8) -> Vec<u8> {
        let key = braid_wire::NodeKey::from_secret([n; 32]);
        let particle = Particle::new_signed(
            &key,
            format!("p-{n}"),
            1_700_000_000_000,
            10_000,
            "(null)".into(),
        );
        braid_wire::encode_particle_frame(&particle)
    }

    /// What a long-lived stream carrying `bytes` yields, in short: a particle's id, a
    /// refusal's kind, or `ended`.
    fn read_long_lived(bytes: Vec<u8>, config: &ProtocolConfig) -> Vec<String> {
        let stream = read_stream(futures::io::Cursor::new(bytes), config.clone());
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
            .block_on(stream.collect::<Vec<_>>())
            .into_iter()
            .map(|progress| match progress {
                Progress::Event(HandlerEvent::Particle(p)) => p.id,
                Progress::Event(HandlerEvent::Rejected { kind, .. }) => kind.to_owned(),
                Progress::ReaderEnded => "ended".to_owned(),
                _ => "other".to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_long_lived_stream_carries_many_frames_and_stops_at_a_broken_one() {
        let config = config(64 << 10);
        let frames: Vec<Vec<u8>> = (1..=3).map(particle_frame).collect();
        assert_eq!(
            read_long_lived(frames.concat(), &config),
            ["p-1", "p-2", "p-3", "ended"]
        );
        // A frame that does not decode is refused; the frames around it still come.
        let mut garbage = Vec::new();
        braid_wire::encode_varint(3, &mut garbage);
        garbage.extend([1, 2, 3]);
        let bytes = [frames[0].clone(), garbage, frames[1].clone()].concat();
        let got = read_long_lived(bytes, &config);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!([&got[0], &got[2], &got[3]], ["p-1", "p-2", "ended"]);
        // Cut off in the middle of the second frame: the first arrives, the second is
        // an error, and the stream ends.
        let cut = [frames[0].clone(), frames[1][..frames[1].len() / 2].to_vec()].concat();
        assert_eq!(read_long_lived(cut, &config), ["p-1", "io", "ended"]);
        // An over-limit frame mid-stream is refused before its body is read, and ends
        // the stream: the frame after it is not read.
        let mut big = Vec::new();
        braid_wire::encode_varint(100 << 10, &mut big);
        big.extend(std::iter::repeat_n(0u8, 100 << 10));
        let bytes = [frames[0].clone(), big, frames[2].clone()].concat();
        assert_eq!(
            read_long_lived(bytes, &config),
            ["p-1", "too_large", "ended"]
        );
        // Whatever happened, no budget is held afterwards.
        assert_eq!(config.buffered.held(), 0);
    }

    #[test]
    fn big_frames_take_from_the_budget_and_give_it_back() {
        let budget = ReadBudget::new(200_000);
        let mut frame = Vec::new();
        braid_wire::encode_varint(150_000, &mut frame);
        frame.extend(std::iter::repeat_n(7u8, 150_000));
        let read = |bytes: &[u8]| {
            futures::executor::block_on(read_frame(
                &mut futures::io::Cursor::new(bytes),
                1 << 20,
                Some(&budget),
            ))
        };
        assert_eq!(read(&frame).unwrap().len(), 150_000);
        assert_eq!(budget.held(), 0, "given back");
        // Announced 150 000 but cut short: what it took is given back too.
        assert!(read(&frame[..100_000]).is_err());
        assert_eq!(budget.held(), 0);
        // A budget that cannot hold it refuses it; a small frame needs none.
        assert!(budget.take(150_000));
        assert!(matches!(
            read(&frame),
            Err(FrameReadError::OverBudget { announced: 150_000 })
        ));
        let mut small = Vec::new();
        braid_wire::encode_varint(1000, &mut small);
        small.extend(std::iter::repeat_n(1u8, 1000));
        assert!(read(&small).is_ok());
    }
}
