//! An attacker's tools, for tests of integrity checking (feature `testing`): they
//! rewrite particle data the way a malicious peer on a particle's path could.

use std::rc::Rc;

use crate::data::{self, Data};
use crate::error::DataSide;
use crate::integrity;
use crate::json::Json;
use crate::trace::{CallState, ServiceResult, State};

fn decode(bytes: &[u8]) -> Data<'_> {
    data::decode(bytes, DataSide::Current, false)
        .expect("test data decodes")
        .0
}

fn encode(data: &Data<'_>) -> Vec<u8> {
    data::encode(data)
}

/// Replaces every call result whose value is `from` with `to`, keeping the data
/// well-formed (content ids recomputed) and the signatures as they were.
pub fn rewrite_result(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let from = Json::parse_result(from).expect("`from` is JSON");
    let to = Rc::new(Json::parse_result(to).expect("`to` is JSON"));
    let mut data = decode(bytes);
    for state in &mut data.trace {
        let result = match state {
            State::Call(CallState::Executed { result, .. } | CallState::Failed(result)) => result,
            _ => continue,
        };
        if *result.value == from {
            *result = Rc::new(ServiceResult::new(
                to.clone(),
                result.argument_hash,
                result.tetraplet.clone(),
            ));
        }
    }
    encode(&data)
}

/// Removes the signature made with `public_key`.
pub fn drop_signature(bytes: &[u8], public_key: &[u8; 32]) -> Vec<u8> {
    let mut data = decode(bytes);
    data.signatures
        .retain(|s| s.ed25519_key().as_ref() != Some(public_key));
    encode(&data)
}

/// Signs `peer`'s results again with `secret` instead of the peer's own key, and
/// stores that signature under the peer's `public_key` (a forged signature).
pub fn resign(
    bytes: &[u8],
    peer: &str,
    public_key: &[u8; 32],
    secret: &[u8; 32],
    particle_id: &str,
) -> Vec<u8> {
    let mut data = decode(bytes);
    let cids = integrity::attributed(&data.trace)
        .remove(peer)
        .unwrap_or_default();
    let key = integrity::OwnKey::Secret(*secret);
    // A format 0 key always signs.
    if let Ok(mut forged) = integrity::sign(&key, particle_id, &cids) {
        forged.public_key = [&[0u8][..], public_key].concat();
        data.signatures
            .retain(|s| s.ed25519_key().as_ref() != Some(public_key));
        data.signatures.push(forged);
    }
    encode(&data)
}
