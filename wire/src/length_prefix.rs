//! The length prefix of libp2p stream messages: an unsigned varint (multiformats
//! `unsigned-varint`: 7 bits a byte, least significant group first, at most 9 bytes,
//! minimal), read and checked against a limit before the message itself is read.

use crate::Rejection;

/// The most bytes an unsigned varint may take (63 bits of value).
pub const MAX_VARINT_BYTES: usize = 9;

/// Appends `value` as an unsigned varint.
pub fn encode_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads the length prefix at the start of `bytes`.
///
/// `Ok(Some((length, prefix_bytes)))` when the prefix is complete and the length is
/// within `limit`; `Ok(None)` when `bytes` ends inside the prefix (read more);
/// an error when the prefix is not a minimal varint of at most 9 bytes, or announces
/// more than `limit` bytes. A caller reading a stream calls it after each byte and
/// allocates the message only once it has a length.
pub fn decode_length_prefix(
    bytes: &[u8],
    limit: usize,
) -> Result<Option<(usize, usize)>, Rejection> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(MAX_VARINT_BYTES) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(Rejection::Malformed(
                    "the length prefix is not a minimal varint".into(),
                ));
            }
            return match usize::try_from(value) {
                Ok(length) if length <= limit => Ok(Some((length, i + 1))),
                _ => Err(Rejection::TooLarge {
                    what: "frame",
                    actual: usize::try_from(value).unwrap_or(usize::MAX),
                    limit,
                }),
            };
        }
        if usize::try_from(value).map_or(true, |v| v > limit) {
            // The bytes still to come only add to the value.
            return Err(Rejection::TooLarge {
                what: "frame",
                actual: usize::try_from(value).unwrap_or(usize::MAX),
                limit,
            });
        }
    }
    if bytes.len() >= MAX_VARINT_BYTES {
        return Err(Rejection::Malformed(format!(
            "the length prefix is longer than {MAX_VARINT_BYTES} bytes"
        )));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_are_checked() {
        for value in [0u64, 1, 127, 128, 899, 300_000, (1 << 63) - 1] {
            let mut out = Vec::new();
            encode_varint(value, &mut out);
            assert_eq!(
                decode_length_prefix(&out, usize::MAX),
                Ok(Some((value as usize, out.len())))
            );
            assert_eq!(
                decode_length_prefix(&out[..out.len() - 1], usize::MAX),
                Ok(None)
            );
        }
        assert_eq!(
            decode_length_prefix(&[0x83, 0x07], 1000),
            Ok(Some((899, 2)))
        );
        assert_eq!(
            decode_length_prefix(&[0x83, 0x07], 898),
            Err(Rejection::TooLarge {
                what: "frame",
                actual: 899,
                limit: 898
            })
        );
        assert!(matches!(
            decode_length_prefix(&[0x80, 0x00], 1000),
            Err(Rejection::Malformed(_))
        ));
        assert!(matches!(
            decode_length_prefix(&[0xff; 10], usize::MAX),
            Err(Rejection::Malformed(_))
        ));
        // Over the limit is known from the first bytes: no need to read the rest.
        assert!(matches!(
            decode_length_prefix(&[0xff, 0xff, 0xff, 0xff, 0x7f], 100 << 20),
            Err(Rejection::TooLarge { .. })
        ));
    }
}
