//! The text forms the reference uses for content ids and peer ids.
//!
//! - A content id (`Cid`, the 32-byte blake3 digest) is written as a CIDv1 with the
//!   JSON codec (`0x0200`) and a blake3-256 multihash, in multibase base32 lowercase:
//!   `b` + base32(`01 80 04 1e 20` + digest), 61 characters starting `bagaaihra`.
//! - A peer id is a libp2p peer id: base58 of the identity multihash (`00 24`) of the
//!   protobuf-encoded Ed25519 public key (`08 01 12 20` + key), `12D3KooW…`.

use crate::json::Cid;

/// The bytes before the digest in a blake3 JSON CIDv1.
const CID_PREFIX: [u8; 5] = [0x01, 0x80, 0x04, 0x1e, 0x20];
/// The length of a content id's text form.
pub(crate) const CID_TEXT_LEN: usize = 61;

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The value of each base32 digit; 0xff for any other byte.
const BASE32_VALUE: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut i = 0;
    while i < 32 {
        table[BASE32[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The text form of a content id.
pub(crate) fn cid_text(cid: &Cid) -> String {
    let mut out = String::with_capacity(CID_TEXT_LEN);
    push_cid_text(&mut out, cid);
    out
}

/// Appends the text form of a content id.
pub(crate) fn push_cid_text(out: &mut String, cid: &Cid) {
    out.push_str(cid_text_bytes(cid).as_str());
}

/// The text form of a content id, on the stack.
pub(crate) struct CidText([u8; CID_TEXT_LEN]);

impl CidText {
    pub(crate) fn as_str(&self) -> &str {
        // Only base32 letters and digits were written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Base32 of the CID's 37 bytes: seven 5-byte groups of 8 digits, then 2 bytes of 4.
pub(crate) fn cid_text_bytes(cid: &Cid) -> CidText {
    let mut bytes = [0u8; 40];
    bytes[..5].copy_from_slice(&CID_PREFIX);
    bytes[5..37].copy_from_slice(cid);
    let mut out = [0u8; CID_TEXT_LEN];
    out[0] = b'b';
    for group in 0..8 {
        let chunk = &bytes[group * 5..group * 5 + 5];
        let n = chunk.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        let digits = if group == 7 { 4 } else { 8 };
        for d in 0..digits {
            out[1 + group * 8 + d] = BASE32[((n >> (35 - 5 * d)) & 31) as usize];
        }
    }
    CidText(out)
}

/// The digest of a content id's text form, if it is a blake3 JSON CIDv1 in base32.
pub(crate) fn parse_cid(text: &str) -> Result<Cid, String> {
    parse_cid_bytes(text.as_bytes())
}

/// [`parse_cid`] of bytes.
pub(crate) fn parse_cid_bytes(t: &[u8]) -> Result<Cid, String> {
    let bad = || {
        format!(
            "unsupported content id {:?}: expected a blake3 JSON CIDv1 in base32",
            String::from_utf8_lossy(t)
        )
    };
    if t.len() != CID_TEXT_LEN || t[0] != b'b' {
        return Err(bad());
    }
    let mut bytes = [0u8; 40];
    for group in 0..8 {
        let digits = if group == 7 { 4 } else { 8 };
        let mut n = 0u64;
        let mut invalid = 0u8;
        for d in 0..8 {
            let v = if d < digits {
                BASE32_VALUE[usize::from(t[1 + group * 8 + d])]
            } else {
                0
            };
            invalid |= v;
            n = (n << 5) | u64::from(v & 31);
        }
        if invalid & 0x80 != 0 {
            return Err(bad());
        }
        for (i, b) in bytes[group * 5..group * 5 + 5].iter_mut().enumerate() {
            *b = (n >> (32 - 8 * i)) as u8;
        }
    }
    // The last digit's low bit is padding and must be zero; the rest is the CID.
    if bytes[37..] != [0, 0, 0] || bytes[..5] != CID_PREFIX {
        return Err(bad());
    }
    let mut cid = [0u8; 32];
    cid.copy_from_slice(&bytes[5..37]);
    Ok(cid)
}

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The identity multihash of a protobuf-encoded Ed25519 public key.
fn peer_id_bytes(public_key: &[u8; 32]) -> [u8; 38] {
    let mut bytes = [0u8; 38];
    bytes[..6].copy_from_slice(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
    bytes[6..].copy_from_slice(public_key);
    bytes
}

/// The libp2p peer id of an Ed25519 public key (`12D3KooW…`).
pub fn peer_id_of(public_key: &[u8; 32]) -> String {
    let bytes = peer_id_bytes(public_key);
    // Base58: repeated division of the big-endian number by 58.
    let mut digits: Vec<u8> = Vec::with_capacity(52);
    for &b in &bytes {
        let mut carry = u32::from(b);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(digits.iter().rev().map(|&d| BASE58[d as usize] as char));
    out
}

/// The Ed25519 public key in a libp2p peer id, if it is one.
pub fn public_key_of_peer_id(peer_id: &str) -> Option<[u8; 32]> {
    if peer_id.len() > 60 {
        return None;
    }
    let mut bytes: Vec<u8> = Vec::with_capacity(38);
    for c in peer_id.bytes() {
        let mut carry = BASE58.iter().position(|&d| d == c)? as u32;
        for b in bytes.iter_mut() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = peer_id.bytes().take_while(|&c| c == b'1').count();
    bytes.extend(std::iter::repeat_n(0, zeros));
    bytes.reverse();
    let key: [u8; 32] = bytes.get(6..)?.try_into().ok()?;
    (peer_id_bytes(&key)[..] == bytes[..]).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_texts_are_the_references() {
        // air-interpreter-cid's own test vector: the CID of the JSON text `"test"`.
        let cid = *blake3::hash(br#""test""#).as_bytes();
        let text = cid_text(&cid);
        assert_eq!(
            text,
            "bagaaihrarcyykpv4oj7zwdbepczyfthxya4og7s2rwvrzolm5kg2eu5dz3xa"
        );
        assert_eq!(parse_cid(&text), Ok(cid));
        assert!(parse_cid("bagaaihra").is_err());
        assert!(parse_cid(&text.replace('b', "c")).is_err());
    }

    #[test]
    fn peer_ids_are_libp2p_ids() {
        let key = [7u8; 32];
        let id = peer_id_of(&key);
        assert!(id.starts_with("12D3KooW"), "{id}");
        assert_eq!(public_key_of_peer_id(&id), Some(key));
        assert_eq!(public_key_of_peer_id("12D3KooW"), None);
        assert_eq!(public_key_of_peer_id("A"), None);
        assert_eq!(public_key_of_peer_id("0OIl"), None);
    }
}
