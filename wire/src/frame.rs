//! Frames: how messages and handshake messages are laid out on the socket, and the
//! frame header's encoding (the host encrypts and reads the frames).
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

use crate::NetError;

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
