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
//! direction counts its own Noise nonces from 0.

use std::time::Duration;

use snow::StatelessTransportState;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::NetError;

/// Bytes of a frame header before encryption.
pub const HEADER_BYTES: usize = 4;
/// The Noise authentication tag of every encrypted piece.
pub const TAG_BYTES: usize = 16;
/// The largest Noise message.
pub const NOISE_MAX_MESSAGE: usize = 65_535;
/// The most plaintext one chunk carries.
pub const CHUNK_BYTES: usize = NOISE_MAX_MESSAGE - TAG_BYTES;

/// Reads a decrypted frame header: the message length, if it is within `limit`.
pub fn decode_frame_header(header: &[u8], limit: usize) -> Result<usize, NetError> {
    let bytes: [u8; HEADER_BYTES] = header
        .try_into()
        .map_err(|_| NetError::BadHeader(header.len()))?;
    let size = u32::from_be_bytes(bytes);
    match usize::try_from(size) {
        Ok(size) if size <= limit => Ok(size),
        _ => Err(NetError::FrameTooLarge {
            size: u64::from(size),
            limit,
        }),
    }
}

/// The frame header of a message of `len` bytes (at most `u32::MAX`).
pub fn encode_frame_header(len: usize) -> Result<[u8; HEADER_BYTES], NetError> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| NetError::FrameTooLarge {
            size: len as u64,
            limit: u32::MAX as usize,
        })
}

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
        let n = noise.write_message(self.nonce, plain, &mut self.buf[start..])?;
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
        let n = noise.read_message(self.nonce, sealed, out)?;
        self.nonce += 1;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_within_the_limit_give_the_length() {
        assert_eq!(decode_frame_header(&[0, 0, 1, 0], 256), Ok(256));
        assert_eq!(
            decode_frame_header(&encode_frame_header(7).unwrap(), 7),
            Ok(7)
        );
    }

    #[test]
    fn headers_over_the_limit_or_of_another_size_are_errors() {
        assert_eq!(
            decode_frame_header(&[0, 0, 1, 1], 256),
            Err(NetError::FrameTooLarge {
                size: 257,
                limit: 256
            })
        );
        assert_eq!(decode_frame_header(&[], 256), Err(NetError::BadHeader(0)));
        assert_eq!(
            decode_frame_header(&[1, 2, 3, 4, 5], 256),
            Err(NetError::BadHeader(5))
        );
    }
}
