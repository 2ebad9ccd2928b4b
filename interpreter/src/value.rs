//! Run-time values: JSON with its origin (tetraplet), shared rather than copied, and the
//! canon streams and canon maps built from them.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value as JValue;

use crate::params::Tetraplet;

/// A JSON value and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Val {
    pub(crate) json: Rc<JValue>,
    pub(crate) tetraplet: Rc<Tetraplet>,
    /// True for values that started as literals in the script (through `ap`, streams
    /// and canons). The reference keeps this provenance, and it shows in the
    /// tetraplet of an `ap` of `.length`.
    pub(crate) literal: bool,
}

impl Val {
    pub(crate) fn new(json: impl Into<Rc<JValue>>, tetraplet: Rc<Tetraplet>) -> Self {
        Self {
            json: json.into(),
            tetraplet,
            literal: false,
        }
    }

    pub(crate) fn with_literal(mut self, literal: bool) -> Self {
        self.literal = literal;
        self
    }
}

/// The compact JSON text of a value, keys sorted (serde_json's map is ordered).
pub(crate) fn compact(json: &JValue) -> String {
    serde_json::to_string(json).unwrap_or_default()
}

/// A literal's tetraplet: `{init peer, "", "", ""}`.
pub(crate) fn literal_tetraplet(init_peer_id: &str) -> Tetraplet {
    Tetraplet {
        peer_pk: init_peer_id.to_owned(),
        ..Tetraplet::default()
    }
}

/// The tetraplet of something produced by a peer with no service: `{peer, "", "", ""}`.
pub(crate) fn peer_tetraplet(peer: &str) -> Tetraplet {
    literal_tetraplet(peer)
}

/// A canonicalized stream: an immutable snapshot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CanonStream {
    /// `{canon peer, "", "", ""}`.
    pub(crate) tetraplet: Rc<Tetraplet>,
    pub(crate) elements: Vec<Val>,
}

impl CanonStream {
    pub(crate) fn to_json(&self) -> JValue {
        JValue::Array(self.elements.iter().map(|v| (*v.json).clone()).collect())
    }
}

impl PartialEq for Val {
    fn eq(&self, other: &Self) -> bool {
        (Rc::ptr_eq(&self.json, &other.json) || self.json == other.json)
            && self.tetraplet == other.tetraplet
            && self.literal == other.literal
    }
}

/// A key of a stream map: typed, so `1` and `"1"` differ.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MapKey {
    Int(i128),
    Str(String),
}

impl MapKey {
    /// The key of a JSON value, if it can be one: a string, or an integer in the range
    /// of i64 or u64.
    pub(crate) fn of(json: &JValue) -> Option<Self> {
        match json {
            JValue::String(s) => Some(Self::Str(s.clone())),
            JValue::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .map(Self::Int),
            _ => None,
        }
    }

    pub(crate) fn to_json(&self) -> JValue {
        match self {
            // i128 holds only i64 and u64 values here.
            Self::Int(i) => match i64::try_from(*i) {
                Ok(i) => JValue::from(i),
                Err(_) => JValue::from(u64::try_from(*i).unwrap_or(u64::MAX)),
            },
            Self::Str(s) => JValue::String(s.clone()),
        }
    }

    pub(crate) fn string_form(&self) -> String {
        match self {
            Self::Int(i) => i.to_string(),
            Self::Str(s) => s.clone(),
        }
    }
}

/// A canonicalized stream map: all entries in order, and the values of each key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CanonMap {
    pub(crate) tetraplet: Rc<Tetraplet>,
    /// Entry objects `{"key": K, "value": V}`, each with its value's tetraplet.
    pub(crate) entries: Vec<Val>,
    /// Indexes into `entries` of each key's entries, in order.
    pub(crate) index: BTreeMap<MapKey, Vec<usize>>,
}

impl CanonMap {
    /// Builds the index; `None` if an entry is not a `{key, value}` object with a valid key.
    pub(crate) fn new(tetraplet: Rc<Tetraplet>, entries: Vec<Val>) -> Result<Self, &'static str> {
        let mut index: BTreeMap<MapKey, Vec<usize>> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let JValue::Object(obj) = &*entry.json else {
                return Err("the value must be an object with key and value fields");
            };
            let key = obj
                .get("key")
                .ok_or("the value must be an object with key and value fields")?;
            if !obj.contains_key("value") {
                return Err("there must be a \"value\" field in kvpair object");
            }
            let key = MapKey::of(key).ok_or("unsupported kvpair object or map key type")?;
            index.entry(key).or_default().push(i);
        }
        Ok(Self {
            tetraplet,
            entries,
            index,
        })
    }

    pub(crate) fn value_of(entry: &Val) -> &JValue {
        entry.json.get("value").unwrap_or(&JValue::Null)
    }

    /// The map as a JSON object: string form of each key → array of its values. When two
    /// keys share a string form (`1` and `"1"`), the one that sorts last wins
    /// (deterministic; the reference leaves it unspecified).
    pub(crate) fn to_json(&self) -> JValue {
        let mut obj = serde_json::Map::new();
        for (key, positions) in &self.index {
            let values = positions
                .iter()
                .map(|&i| Self::value_of(&self.entries[i]).clone())
                .collect();
            obj.insert(key.string_form(), JValue::Array(values));
        }
        JValue::Object(obj)
    }

    /// The values of `key`, with their tetraplets.
    pub(crate) fn values_of(&self, key: &MapKey) -> Vec<Val> {
        self.index.get(key).map_or_else(Vec::new, |positions| {
            positions
                .iter()
                .map(|&i| {
                    let e = &self.entries[i];
                    Val::new(Self::value_of(e).clone(), e.tetraplet.clone()).with_literal(e.literal)
                })
                .collect()
        })
    }
}
