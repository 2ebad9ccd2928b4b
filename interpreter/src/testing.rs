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

/// The structure of data as JSON, every reference resolved (for property tests that
/// compare traces by content): `{"trace": [state…], "last_call_id": n, "signatures":
/// [[peer id of the key, key hex, signature hex]…]}`. States: `{"par": [l, r]}`,
/// `{"executed": {"output": "scalar" | "unused" | {"stream": g}, "result": R}}`,
/// `{"failed": R}`, `{"sent": [peer, request or null]}`, `{"ap": g}`, `{"fold":
/// [[value_pos, before begin, before len, after begin, after len]…]}`, `{"canon_sent":
/// peer}`, `{"canon": {"tetraplet": T, "elements": [[value, T, literal]…]}}`, where
/// `R = {"value", "argument_hash", "tetraplet"}` and `T = [peer, service, function,
/// lens]`. An unused result's value is not stored: its value is `"cid:<hex>"`.
pub fn structure(bytes: &[u8]) -> Result<serde_json::Value, String> {
    use serde_json::json;
    let data = data::decode(bytes, DataSide::Current, false)
        .map_err(|e| e.to_string())?
        .0;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let t =
        |t: &crate::params::Tetraplet| json!([t.peer_pk, t.service_id, t.function_name, t.lens]);
    let r = |r: &ServiceResult<'_>| {
        json!({"value": r.value.tree(), "argument_hash": hex(&r.argument_hash),
               "tetraplet": t(&r.tetraplet)})
    };
    use crate::trace::{CanonState, Output};
    let trace: Vec<serde_json::Value> = data
        .trace
        .iter()
        .map(|s| match s {
            State::Par { left, right } => json!({"par": [left, right]}),
            State::Call(CallState::Executed { result, output }) => match output {
                Output::Unused => json!({"executed": {"output": "unused", "result": {
                    "value": format!("cid:{}", hex(&result.value.cid())),
                    "argument_hash": "", "tetraplet": ["", "", "", ""]}}}),
                Output::Scalar => json!({"executed": {"output": "scalar", "result": r(result)}}),
                Output::Stream { generation } => json!({"executed": {
                    "output": {"stream": generation}, "result": r(result)}}),
            },
            State::Call(CallState::Failed(result)) => json!({"failed": r(result)}),
            State::Call(CallState::Sent { peer, request }) => {
                json!({"sent": [peer.to_string(), request]})
            }
            State::Ap { generation } => json!({"ap": generation}),
            State::Fold(records) => json!({"fold": records
                .iter()
                .map(|x| [x.value_pos, x.before.begin, x.before.len, x.after.begin, x.after.len])
                .collect::<Vec<_>>()}),
            State::Canon(CanonState::Sent { peer }) => json!({"canon_sent": peer.to_string()}),
            State::Canon(CanonState::Executed(c)) => json!({"canon": {
                "tetraplet": t(&c.tetraplet),
                "elements": c.elements.iter()
                    .map(|e| json!([e.json.tree(), t(&e.tetraplet), e.literal]))
                    .collect::<Vec<_>>()}}),
        })
        .collect();
    let signatures: Vec<serde_json::Value> = data
        .signatures
        .iter()
        .map(|s| {
            let peer = s
                .ed25519_key()
                .map(|k| crate::ids::peer_id_of(&k))
                .unwrap_or_default();
            json!([peer, hex(&s.public_key), hex(&s.signature)])
        })
        .collect();
    Ok(json!({"trace": trace, "last_call_id": data.last_call_id, "signatures": signatures}))
}
