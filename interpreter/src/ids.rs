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

/// The text form of a content id.
pub(crate) fn cid_text(cid: &Cid) -> String {
    let mut out = String::with_capacity(CID_TEXT_LEN);
    push_cid_text(&mut out, cid);
    out
}

/// Appends the text form of a content id.
pub(crate) fn push_cid_text(out: &mut String, cid: &Cid) {
    let mut bytes = [0u8; 37];
    bytes[..5].copy_from_slice(&CID_PREFIX);
    bytes[5..].copy_from_slice(cid);
    out.push('b');
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in &bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
    }
}

/// The digest of a content id's text form, if it is a blake3 JSON CIDv1 in base32.
pub(crate) fn parse_cid(text: &str) -> Result<Cid, String> {
    let bad = || format!("unsupported content id {text:?}: expected a blake3 JSON CIDv1 in base32");
    let body = text.strip_prefix('b').ok_or_else(bad)?;
    if text.len() != CID_TEXT_LEN {
        return Err(bad());
    }
    let mut bytes = [0u8; 37];
    let (mut acc, mut bits, mut n) = (0u32, 0, 0);
    for c in body.bytes() {
        let v = match c {
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(bad()),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if n < bytes.len() {
                bytes[n] = (acc >> bits) as u8;
            }
            n += 1;
        }
        acc &= (1 << bits) - 1;
    }
    if n != bytes.len() || acc != 0 || bytes[..5] != CID_PREFIX {
        return Err(bad());
    }
    let mut cid = [0u8; 32];
    cid.copy_from_slice(&bytes[5..]);
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
