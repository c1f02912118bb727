//! The values a filter's variables take ([`KVal`]), their static types
//! ([`Ty`], what the compile-time check reasons with) and their conversion
//! to cel-rust's values.
//!
//! A `KVal` borrows from the item wherever the item holds the text as UTF-8
//! already (a method, a header value), so reading a variable copies nothing
//! in the common case; it is converted to a cel value (still borrowing)
//! only when the expression reads it.

use std::borrow::Cow;
use std::collections::HashMap;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelTimestamp,
    CelUInt,
};
use cel::common::value::{CowVal, Val};

/// The static type of a variable or sub-expression, as the checker knows
/// it. `Dyn` is "not known before evaluation" and passes every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    Uint,
    Double,
    Str,
    Bytes,
    Null,
    Timestamp,
    Duration,
    /// A list of elements of one type.
    List(Box<Ty>),
    /// A map from strings to strings (headers, cookies, query strings).
    StrMap,
    /// A map of unknown value types (`node`).
    Map,
    Type,
    Dyn,
}

impl Ty {
    pub fn name(&self) -> String {
        match self {
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::Str => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Null => "null".into(),
            Ty::Timestamp => "timestamp".into(),
            Ty::Duration => "duration".into(),
            Ty::List(e) => format!("list({})", e.name()),
            Ty::StrMap => "map(string, string)".into(),
            Ty::Map => "map".into(),
            Ty::Type => "type".into(),
            Ty::Dyn => "dyn".into(),
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }

    pub fn str_list() -> Ty {
        Ty::List(Box::new(Ty::Str))
    }

    /// The type of the elements an iteration over a value of this type
    /// yields (a map's keys).
    pub fn element(&self) -> Ty {
        match self {
            Ty::List(e) => (**e).clone(),
            Ty::StrMap => Ty::Str,
            _ => Ty::Dyn,
        }
    }
}

/// A variable's value for one item.
#[derive(Debug, Clone, PartialEq)]
pub enum KVal<'a> {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(Cow<'a, str>),
    List(Vec<Cow<'a, str>>),
    /// A string map; keys are unique (the first value of a key wins where
    /// the item holds several and did not join them).
    Map(Vec<(Cow<'a, str>, Cow<'a, str>)>),
    /// Nanoseconds since the epoch.
    Timestamp(u64),
    Null,
    /// A value from an item's JSON shape (KFL1 paths the Rust item has no
    /// direct accessor for, and the JSON view of an item).
    Json(Cow<'a, serde_json::Value>),
}

impl<'a> KVal<'a> {
    pub fn str(s: &'a str) -> KVal<'a> {
        KVal::Str(Cow::Borrowed(s))
    }

    /// Text from captured bytes: borrowed when they are UTF-8.
    pub fn bytes(b: &'a [u8]) -> KVal<'a> {
        // `from_utf8` first: its validation is several times faster than
        // the lossy decoder's on the short ASCII fields items are made of.
        match std::str::from_utf8(b) {
            Ok(s) => KVal::Str(Cow::Borrowed(s)),
            Err(_) => KVal::Str(String::from_utf8_lossy(b)),
        }
    }

    pub fn opt_bytes(b: Option<&'a [u8]>) -> KVal<'a> {
        b.map_or_else(KVal::empty_str, KVal::bytes)
    }

    pub fn int(v: impl Into<i64>) -> KVal<'a> {
        KVal::Int(v.into())
    }

    /// A count or size held as `u64` (saturating: nothing on the wire is
    /// that large).
    pub fn size(v: u64) -> KVal<'a> {
        KVal::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }

    pub fn empty_str() -> KVal<'a> {
        KVal::Str(Cow::Borrowed(""))
    }

    /// This value as a cel value, borrowing what it borrows.
    pub fn into_cel<'b>(self) -> CowVal<'b, 'b>
    where
        'a: 'b,
    {
        match self {
            KVal::Bool(b) => CowVal::owned(CelBool::from(b)),
            KVal::Int(i) => CowVal::owned(CelInt::from(i)),
            KVal::Double(d) => CowVal::owned(CelDouble::from(d)),
            KVal::Str(s) => CowVal::owned(cel_str(s)),
            KVal::List(l) => {
                let items: Vec<Box<dyn Val + 'b>> =
                    l.into_iter().map(|s| Box::new(cel_str(s)) as Box<dyn Val + 'b>).collect();
                CowVal::owned(CelList::from(items))
            }
            KVal::Map(m) => {
                let mut map: HashMap<CelMapKey<'b>, Box<dyn Val + 'b>> =
                    HashMap::with_capacity(m.len());
                for (k, v) in m {
                    let key = match k {
                        Cow::Borrowed(k) => CelMapKey::from(k),
                        Cow::Owned(k) => CelMapKey::from(k),
                    };
                    map.entry(key).or_insert_with(|| Box::new(cel_str(v)));
                }
                CowVal::owned(CelMap::from(map))
            }
            KVal::Timestamp(ns) => CowVal::owned(timestamp(ns)),
            KVal::Null => CowVal::owned(CelNull),
            KVal::Json(j) => json_to_cel(&j),
        }
    }
}

fn cel_str<'b>(s: Cow<'b, str>) -> CelString<'b> {
    match s {
        Cow::Borrowed(s) => CelString::from(s),
        Cow::Owned(s) => CelString::from(s),
    }
}

/// A cel timestamp (UTC) of nanoseconds since the epoch.
pub fn timestamp(ns: u64) -> CelTimestamp {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = (ns % 1_000_000_000) as u32;
    let utc = chrono::DateTime::from_timestamp(secs, nanos).unwrap_or_default();
    CelTimestamp::from(utc.fixed_offset())
}

/// A JSON value as a cel value (owned: JSON values are built per item).
pub fn json_to_cel<'b>(j: &serde_json::Value) -> CowVal<'b, 'b> {
    use serde_json::Value as J;
    match j {
        J::Null => CowVal::owned(CelNull),
        J::Bool(b) => CowVal::owned(CelBool::from(*b)),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                CowVal::owned(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                CowVal::owned(CelUInt::from(u))
            } else {
                CowVal::owned(CelDouble::from(n.as_f64().unwrap_or(0.0)))
            }
        }
        J::String(s) => CowVal::owned(CelString::from(s.clone())),
        J::Array(a) => {
            let items: Vec<Box<dyn Val + 'b>> =
                a.iter().map(|x| json_to_cel(x).into_owned()).collect();
            CowVal::owned(CelList::from(items))
        }
        J::Object(o) => {
            let map: HashMap<CelMapKey<'b>, Box<dyn Val + 'b>> = o
                .iter()
                .map(|(k, v)| (CelMapKey::from(k.clone()), json_to_cel(v).into_owned()))
                .collect();
            CowVal::owned(CelMap::from(map))
        }
    }
}
