//! `peer` and `kad`: the node's clock, identity and view of the network
//! ([`NetworkInfo`](crate::network_info::NetworkInfo)), as Nox answers them.

use std::time::Duration;

use serde_json::{Value, json};

use super::Builtins;
use super::pure::{arg_error, array_arg, decode_b58, empty, optional, string_arg};
use crate::network_info::{distance, kad_key};
use crate::services::{ServiceCall, ServiceError, ServiceResult};

/// Kademlia's K: how many peers `kad.neighborhood` returns by default (Nox's value).
pub(crate) const K_VALUE: usize = 20;

/// The longest key or peer id `kad` decodes from base58 (peer ids and multihashes are
/// under 100 characters).
const MAX_KAD_KEY: usize = 256;

/// `peer.timeout(duration_ms, message?)`: how long to wait and what to answer then
/// (the message, or `""`).
pub(crate) fn timeout(args: &[Value]) -> Result<(Duration, Value), ServiceError> {
    let ms = match args.first() {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| arg_error("duration_ms", "a non-negative integer", args.first()))?;
    let message = match optional(args, 1) {
        None => Value::String(String::new()),
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(other) => return Err(arg_error("message", "a string", Some(other))),
    };
    Ok((Duration::from_millis(ms), message))
}

/// `peer.*` but `timeout`.
pub(crate) async fn peer(b: &Builtins, call: &ServiceCall, now_ms: u64) -> ServiceResult {
    let args = &call.args;
    match call.function_name.as_str() {
        "timestamp_ms" => Ok(json!(now_ms)),
        "timestamp_sec" => Ok(json!(now_ms / 1000)),
        "identify" => Ok(identify(b)),
        "is_connected" => {
            let peer = string_arg(args, 0, "peer_id")?;
            Ok(json!(b.info().is_connected(peer)))
        }
        "connect" => {
            let peer = string_arg(args, 0, "peer_id")?.to_owned();
            let addresses = match optional(args, 1) {
                None => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|a| a.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| arg_error("addresses", "an array of strings", args.get(1)))?,
                Some(other) => {
                    return Err(arg_error("addresses", "an array of strings", Some(other)));
                }
            };
            b.guard(call)?;
            Ok(json!(b.info().connect(&peer, addresses).await))
        }
        "get_contact" => {
            let peer = string_arg(args, 0, "peer_id")?;
            match b.info().contact(peer).await {
                Some(contact) => Ok(json!(contact)),
                None => empty(),
            }
        }
        other => Err(ServiceError::new(format!(
            "internal error, please report: peer.{other} is listed but not built"
        ))),
    }
}

/// `peer.identify`: the node's addresses and versions (Nox's `Info` and more).
fn identify(b: &Builtins) -> Value {
    let version = format!("braid-{}", env!("CARGO_PKG_VERSION"));
    let info = b.info();
    let mut external = info.external_addresses();
    if external.is_empty() {
        external = info.listen_addresses();
    }
    json!({
        "external_addresses": external,
        "listen_addresses": info.listen_addresses(),
        "node_version": version,
        "air_version": version,
        "spell_version": "",
        "allowed_binaries": [],
    })
}

/// `kad.neighborhood` and `kad.neigh_with_addrs`.
pub(crate) async fn kad(b: &Builtins, call: &ServiceCall) -> ServiceResult {
    let args = &call.args;
    let key = decode_key(string_arg(args, 0, "key")?)?;
    let already_hashed = match optional(args, 1) {
        None => false,
        Some(Value::Bool(x)) => *x,
        Some(other) => return Err(arg_error("already_hashed", "a boolean", Some(other))),
    };
    let count = match optional(args, 2) {
        None => K_VALUE,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| arg_error("count", "a u32", Some(v)))?,
    };
    // The key as a multihash: as given, or, as Nox makes it, the key's bytes wrapped
    // as the digest of a SHA-256 multihash (code 0x12; a digest of at most 64 bytes).
    let key = if already_hashed {
        key
    } else if key.len() > 64 {
        return Err(ServiceError::new(format!(
            "a key of {} bytes; kad wraps keys of at most 64 bytes in a multihash",
            key.len()
        )));
    } else {
        [0x12, key.len() as u8].into_iter().chain(key).collect()
    };
    let info = b.info();
    let peers = info.neighborhood(key, count).await;
    if call.function_name == "neighborhood" {
        return Ok(json!(peers));
    }
    let mut out = Vec::with_capacity(peers.len());
    for peer in peers {
        let addresses = info
            .contact(&peer)
            .await
            .map(|c| c.addresses)
            .unwrap_or_default();
        out.push(json!({"peer_id": peer, "addresses": addresses}));
    }
    Ok(Value::Array(out))
}

fn decode_key(text: &str) -> Result<Vec<u8>, ServiceError> {
    if text.len() > MAX_KAD_KEY {
        return Err(ServiceError::new(format!(
            "a key of {} characters; kad takes keys of at most {MAX_KAD_KEY}",
            text.len()
        )));
    }
    decode_b58(text)
}

/// `kad.merge(target, left, right, count?)`: the base58 keys of both lists, without
/// duplicates, sorted by the XOR distance of their Kademlia keys (SHA-256 of the decoded
/// bytes) to the target's, the first `count` (default K).
pub(crate) fn merge(args: &[Value]) -> ServiceResult {
    let target = kad_key(&decode_key(string_arg(args, 0, "target")?)?);
    let left = array_arg(args, 1, "left")?;
    let right = array_arg(args, 2, "right")?;
    let count = match optional(args, 3) {
        None => K_VALUE,
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| arg_error("count", "a u32", Some(v)))?,
    };
    let mut keyed = Vec::with_capacity(left.len() + right.len());
    for item in left.iter().chain(right) {
        let text = item
            .as_str()
            .ok_or_else(|| arg_error("left and right", "arrays of base58 strings", Some(item)))?;
        let bytes = decode_key(text)?;
        keyed.push((distance(&target, &kad_key(&bytes)), bytes));
    }
    keyed.sort();
    keyed.dedup();
    Ok(json!(
        keyed
            .into_iter()
            .take(count)
            .map(|(_, bytes)| bs58::encode(bytes).into_string())
            .collect::<Vec<_>>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_arguments() {
        assert_eq!(
            timeout(&[json!(1500), json!("late")]).unwrap(),
            (Duration::from_millis(1500), json!("late"))
        );
        assert_eq!(
            timeout(&[json!("20")]).unwrap(),
            (Duration::from_millis(20), json!(""))
        );
        assert!(timeout(&[json!(-1)]).is_err());
        assert!(timeout(&[json!(1), json!(2)]).is_err());
    }

    #[test]
    fn merge_sorts_by_distance_and_dedups() {
        let keys: Vec<String> = (1u8..8)
            .map(|i| bs58::encode([i, i, i]).into_string())
            .collect();
        let target = bs58::encode([9u8]).into_string();
        let merged =
            merge(&[json!(target), json!(keys[..4]), json!(keys[2..]), json!([])]).unwrap();
        let merged: Vec<String> = serde_json::from_value(merged).unwrap();
        assert_eq!(merged.len(), 7, "duplicates removed");
        let t = kad_key(&[9]);
        let dist = |k: &String| distance(&t, &kad_key(&bs58::decode(k).into_vec().unwrap()));
        assert!(merged.windows(2).all(|w| dist(&w[0]) <= dist(&w[1])));
        let two = merge(&[json!(target), json!(keys), json!([]), json!([2])]).unwrap();
        assert_eq!(two, json!(merged[..2]));
        assert!(merge(&[json!(target), json!(["0OIl"]), json!([])]).is_err());
    }
}
