//! Frames: how messages and handshake messages are laid out on the socket.
//!
//! Handshake messages (three, Noise `XX`) are a 2-byte big-endian length and that many
//! bytes. After the handshake, a message of `L` bytes is sent as:
//!
//! ```text
//! Noise(header: L as 4 bytes big-endian)         20 bytes (4 + 16-byte tag)
//! Noise(chunk 1), Noise(chunk 2), …              each min(65 519, rest) + 16 bytes
//! ```
//!
//! The length is encrypted and authenticated like the rest, and checked against the
//! limit ([`decode_frame_header`]) before anything more is read or allocated. Each
//! direction counts its own Noise nonces from 0. The header's encoding is
//! `braid_wire::frame`'s; this module encrypts, writes and reads frames.

use std::time::Duration;

use snow::StatelessTransportState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{NetError, noise_error};

pub use braid_wire::frame::{
    CHUNK_BYTES, HEADER_BYTES, NOISE_MAX_MESSAGE, TAG_BYTES, decode_frame_header,
    encode_frame_header,
};

/// Writes one handshake message (2-byte length, bytes).
pub(crate) async fn write_handshake(
    w: &mut (impl AsyncWrite + Unpin),
    message: &[u8],
) -> Result<(), NetError> {
    let len = u16::try_from(message.len())
        .map_err(|_| NetError::Noise("handshake message over 65535 bytes".into()))?;
    let mut out = Vec::with_capacity(2 + message.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one handshake message.
pub(crate) async fn read_handshake(r: &mut (impl AsyncRead + Unpin)) -> Result<Vec<u8>, NetError> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut message).await?;
    Ok(message)
}

/// The sending side of a connection: encrypts messages into frames.
pub(crate) struct FrameWriter<W> {
    io: W,
    nonce: u64,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) fn new(io: W) -> Self {
        FrameWriter {
            io,
            nonce: 0,
            buf: Vec::new(),
        }
    }

    /// Encrypts and writes one message.
    pub(crate) async fn write(
        &mut self,
        noise: &StatelessTransportState,
        message: &[u8],
    ) -> Result<(), NetError> {
        self.buf.clear();
        let header = encode_frame_header(message.len())?;
        self.seal(noise, &header)?;
        for chunk in message.chunks(CHUNK_BYTES) {
            self.seal(noise, chunk)?;
        }
        self.io.write_all(&self.buf).await?;
        self.io.flush().await?;
        Ok(())
    }

    fn seal(&mut self, noise: &StatelessTransportState, plain: &[u8]) -> Result<(), NetError> {
        let start = self.buf.len();
        self.buf.resize(start + plain.len() + TAG_BYTES, 0);
        let n = noise
            .write_message(self.nonce, plain, &mut self.buf[start..])
            .map_err(noise_error)?;
        self.buf.truncate(start + n);
        self.nonce += 1;
        Ok(())
    }
}

/// Limits of the receiving side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadLimits {
    /// Largest message.
    pub(crate) max_message: usize,
    /// How long to wait for the next frame to start.
    pub(crate) idle: Duration,
    /// How long each piece of a started frame may take to arrive.
    pub(crate) frame: Duration,
}

/// The receiving side of a connection: reads frames and decrypts them.
pub(crate) struct FrameReader<R> {
    io: R,
    nonce: u64,
    buf: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(io: R) -> Self {
        FrameReader {
            io,
            nonce: 0,
            buf: Vec::new(),
        }
    }

    /// Reads one message: waits up to `idle` for it to start, then `frame` for each
    /// piece. Errors on a closed, stalled, oversized or undecryptable frame.
    pub(crate) async fn read(
        &mut self,
        noise: &StatelessTransportState,
        limits: ReadLimits,
    ) -> Result<Vec<u8>, NetError> {
        let mut sealed_header = [0u8; HEADER_BYTES + TAG_BYTES];
        let first = tokio::time::timeout(limits.idle, self.io.read(&mut sealed_header[..1]))
            .await
            .map_err(|_| NetError::Idle(limits.idle.as_millis() as u64))??;
        if first == 0 {
            return Err(NetError::Closed);
        }
        tokio::time::timeout(limits.frame, self.io.read_exact(&mut sealed_header[1..]))
            .await
            .map_err(|_| NetError::Timeout("the rest of a frame header"))??;
        let mut header = [0u8; HEADER_BYTES + TAG_BYTES];
        let n = self.open(noise, &sealed_header, &mut header)?;
        let len = decode_frame_header(&header[..n], limits.max_message)?;
        let mut message = Vec::with_capacity(len.min(1 << 20));
        let mut rest = len;
        while rest > 0 {
            let chunk = rest.min(CHUNK_BYTES);
            self.buf.resize(chunk + TAG_BYTES, 0);
            tokio::time::timeout(limits.frame, self.io.read_exact(&mut self.buf))
                .await
                .map_err(|_| NetError::Timeout("a frame chunk"))??;
            let start = message.len();
            message.resize(start + chunk + TAG_BYTES, 0);
            let sealed = std::mem::take(&mut self.buf);
            let opened = self.open(noise, &sealed, &mut message[start..]);
            self.buf = sealed;
            message.truncate(start + opened?);
            rest -= chunk;
        }
        Ok(message)
    }

    fn open(
        &mut self,
        noise: &StatelessTransportState,
        sealed: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NetError> {
        let n = noise
            .read_message(self.nonce, sealed, out)
            .map_err(noise_error)?;
        self.nonce += 1;
        Ok(n)
    }
}
