//! Run-time values: JSON with its origin (tetraplet), shared rather than copied, and the
//! canon streams and canon maps built from them.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value as JValue;

use crate::json::{Access, Json};
use crate::params::Tetraplet;

/// A JSON value and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Val<'a> {
    pub(crate) json: Rc<Json<'a>>,
    pub(crate) tetraplet: Rc<Tetraplet>,
    /// True for values that started as literals in the script (through `ap`, streams
    /// and canons). The reference keeps this provenance, and it shows in the
    /// tetraplet of an `ap` of `.length`.
    pub(crate) literal: bool,
}

impl<'a> Val<'a> {
    pub(crate) fn new(json: impl Into<Rc<Json<'a>>>, tetraplet: Rc<Tetraplet>) -> Self {
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
pub(crate) struct CanonStream<'a> {
    /// `{canon peer, "", "", ""}`.
    pub(crate) tetraplet: Rc<Tetraplet>,
    pub(crate) elements: Vec<Val<'a>>,
}

impl<'a> CanonStream<'a> {
    pub(crate) fn to_json(&self) -> Json<'a> {
        Json::array(self.elements.iter().map(|v| v.json.clone()).collect())
    }
}

impl PartialEq for Val<'_> {
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
    pub(crate) fn of(json: &Json<'_>) -> Option<Self> {
        // Keys are strings or numbers: small, so their tree is cheap.
        if json.is_container() {
            return None;
        }
        match json.tree() {
            JValue::String(s) => Some(Self::Str(s.clone())),
            JValue::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .map(Self::Int),
            _ => None,
        }
    }

    /// Whether a value can be a key (what `of` accepts), without making the key.
    pub(crate) fn valid(json: &Json<'_>) -> bool {
        // `of` copies only strings.
        json.as_str().is_some() || Self::of(json).is_some()
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
pub(crate) struct CanonMap<'a> {
    pub(crate) tetraplet: Rc<Tetraplet>,
    /// Entry objects `{"key": K, "value": V}`, each with its value's tetraplet.
    pub(crate) entries: Vec<Val<'a>>,
    /// Indexes into `entries` of each key's entries, in order.
    pub(crate) index: BTreeMap<MapKey, Vec<usize>>,
}

impl<'a> CanonMap<'a> {
    /// Builds the index; `None` if an entry is not a `{key, value}` object with a valid key.
    pub(crate) fn new(
        tetraplet: Rc<Tetraplet>,
        entries: Vec<Val<'a>>,
    ) -> Result<Self, &'static str> {
        let mut index: BTreeMap<MapKey, Vec<usize>> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let key = match entry.json.field("key") {
                Access::Found(key) => key,
                Access::Missing | Access::WrongType => {
                    return Err("the value must be an object with key and value fields");
                }
            };
            if !matches!(entry.json.field("value"), Access::Found(_)) {
                return Err("there must be a \"value\" field in kvpair object");
            }
            let key = MapKey::of(&key).ok_or("unsupported kvpair object or map key type")?;
            index.entry(key).or_default().push(i);
        }
        Ok(Self {
            tetraplet,
            entries,
            index,
        })
    }

    /// The `value` of an entry object (checked when the map was built).
    pub(crate) fn value_of(entry: &Val<'a>) -> Rc<Json<'a>> {
        match entry.json.field("value") {
            Access::Found(value) => value,
            Access::Missing | Access::WrongType => Rc::new(Json::from(JValue::Null)),
        }
    }

    /// The map as a JSON object: string form of each key → array of its values. When two
    /// keys share a string form (`1` and `"1"`), the one that sorts last wins
    /// (deterministic; the reference leaves it unspecified).
    pub(crate) fn to_json(&self) -> Json<'a> {
        let mut obj = BTreeMap::new();
        for (key, positions) in &self.index {
            let values = positions
                .iter()
                .map(|&i| Self::value_of(&self.entries[i]))
                .collect();
            obj.insert(key.string_form(), Rc::new(Json::array(values)));
        }
        Json::object(obj)
    }

    /// The values of `key`, with their tetraplets.
    pub(crate) fn values_of(&self, key: &MapKey) -> Vec<Val<'a>> {
        self.index.get(key).map_or_else(Vec::new, |positions| {
            positions
                .iter()
                .map(|&i| {
                    let e = &self.entries[i];
                    Val::new(Self::value_of(e), e.tetraplet.clone()).with_literal(e.literal)
                })
                .collect()
        })
    }
}
