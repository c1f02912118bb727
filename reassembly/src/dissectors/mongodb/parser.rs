//! Pure MongoDB wire-protocol parsing over byte slices: the message
//! header, OP_MSG sections and flags, the legacy OP_QUERY/OP_REPLY (and
//! the fire-and-forget OP_INSERT/UPDATE/DELETE/KILL_CURSORS, OP_GET_MORE),
//! OP_COMPRESSED (noop and zlib inflated; snappy and zstd named), and BSON
//! documents turned into bounded JSON. BSON is read with the `bson` crate's
//! raw documents (zero-copy, lengths checked as they are walked); depth
//! and element count are bounded here, where the crate has no bound: a
//! document nested past `max_bson_depth` is a `mongodb_bson_depth` anomaly
//! and is cut there, never recursed into.

use bson::{RawBsonRef, RawDocument};
use serde_json::{json, Map, Value};

use crate::dissectors::Confidence;

pub const HEADER: usize = 16;
/// The server's `maxMessageSizeBytes` (48 MB): anything longer is malformed.
pub const MAX_MESSAGE: usize = 48_000_000;

pub mod op {
    pub const REPLY: i32 = 1;
    pub const UPDATE: i32 = 2001;
    pub const INSERT: i32 = 2002;
    pub const QUERY: i32 = 2004;
    pub const GET_MORE: i32 = 2005;
    pub const DELETE: i32 = 2006;
    pub const KILL_CURSORS: i32 = 2007;
    pub const COMPRESSED: i32 = 2012;
    pub const MSG: i32 = 2013;
}

/// OP_MSG flag bits.
pub mod flag {
    pub const CHECKSUM_PRESENT: u32 = 1;
    pub const MORE_TO_COME: u32 = 1 << 1;
    pub const EXHAUST_ALLOWED: u32 = 1 << 16;
}

pub fn op_name(code: i32) -> &'static str {
    match code {
        op::REPLY => "OP_REPLY",
        op::UPDATE => "OP_UPDATE",
        op::INSERT => "OP_INSERT",
        op::QUERY => "OP_QUERY",
        op::GET_MORE => "OP_GET_MORE",
        op::DELETE => "OP_DELETE",
        op::KILL_CURSORS => "OP_KILL_CURSORS",
        op::COMPRESSED => "OP_COMPRESSED",
        op::MSG => "OP_MSG",
        _ => "unknown",
    }
}

pub fn compressor_name(id: u8) -> &'static str {
    match id {
        0 => "noop",
        1 => "snappy",
        2 => "zlib",
        3 => "zstd",
        _ => "unknown",
    }
}

pub fn i32le(b: &[u8], at: usize) -> Option<i32> {
    let x = b.get(at..at + 4)?;
    Some(i32::from_le_bytes([x[0], x[1], x[2], x[3]]))
}

/// `(messageLength, requestID, responseTo, opCode)`.
pub fn header(b: &[u8]) -> Option<(i32, i32, i32, i32)> {
    Some((i32le(b, 0)?, i32le(b, 4)?, i32le(b, 8)?, i32le(b, 12)?))
}

/// A NUL-terminated string at `at`, and the index after its NUL.
pub fn cstr(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = b.get(at..)?;
    let n = rest.iter().position(|c| *c == 0)?;
    Some((rest.get(..n)?, at + n + 1))
}

/// The BSON document at `at`: its bytes (by its declared length) and the
/// index after it. `None` when the length lies about the bytes there.
pub fn document(b: &[u8], at: usize) -> Option<(&RawDocument, usize)> {
    let len = usize::try_from(i32le(b, at)?).ok()?;
    if len < 5 {
        return None;
    }
    let bytes = b.get(at..at.checked_add(len)?)?;
    Some((RawDocument::from_bytes(bytes).ok()?, at + len))
}

/// The first key of a document and its value, read from a possibly cut
/// document (its prefix): what names a command.
pub fn first_element(d: &RawDocument) -> Option<(&str, RawBsonRef<'_>)> {
    d.iter().next()?.ok().map(|(k, v)| (k.as_str(), v))
}

/// What walking a document into JSON ran into.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Elements left to show (shared by a document's whole tree).
    pub budget: usize,
    /// A sub-document lay deeper than the depth bound (a BSON bomb).
    pub too_deep: bool,
    /// A length inside did not add up.
    pub malformed: bool,
    /// Elements left out for the element bound.
    pub cut: bool,
}

/// Bounds for turning BSON into JSON.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub depth: usize,
    pub elements: usize,
    pub field_bytes: usize,
}

/// Values a document may hold that are secrets: SASL payloads, passwords.
const REDACTED_KEYS: [&str; 4] = ["payload", "pwd", "password", "saslPayload"];

fn cut_str(s: &str, keep: usize) -> String {
    if s.len() <= keep {
        return s.to_string();
    }
    let mut end = keep;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A BSON value as relaxed extended JSON, within `bounds`.
fn value_json(v: RawBsonRef<'_>, depth: usize, b: &Bounds, w: &mut Walk) -> Value {
    match v {
        RawBsonRef::Double(x) => json!(x),
        RawBsonRef::String(s) => Value::String(cut_str(s, b.field_bytes)),
        RawBsonRef::Document(d) => doc_json(d, depth + 1, b, w),
        RawBsonRef::Array(a) => {
            if depth + 1 > b.depth {
                w.too_deep = true;
                return Value::String("…".into());
            }
            let mut out = Vec::new();
            for e in a {
                match e {
                    Ok(x) if w.budget > 0 => {
                        w.budget -= 1;
                        out.push(value_json(x, depth + 1, b, w));
                    }
                    Ok(_) => {
                        w.cut = true;
                        break;
                    }
                    Err(_) => {
                        w.malformed = true;
                        break;
                    }
                }
            }
            Value::Array(out)
        }
        RawBsonRef::Binary(bin) => {
            let data = bin.bytes;
            let keep = data.get(..b.field_bytes.min(data.len())).unwrap_or_default();
            json!({"$binary": {"base64": crate::item::base64(keep), "subType": format!("{:02x}", u8::from(bin.subtype))}})
        }
        RawBsonRef::Undefined => json!({"$undefined": true}),
        RawBsonRef::ObjectId(o) => json!({"$oid": o.to_hex()}),
        RawBsonRef::Boolean(x) => json!(x),
        RawBsonRef::DateTime(d) => json!({"$date": d.timestamp_millis()}),
        RawBsonRef::Null => Value::Null,
        RawBsonRef::RegularExpression(r) => {
            json!({"$regularExpression": {"pattern": cut_str(r.pattern.as_str(), b.field_bytes), "options": r.options.as_str()}})
        }
        RawBsonRef::JavaScriptCode(c) => json!({"$code": cut_str(c, b.field_bytes)}),
        RawBsonRef::JavaScriptCodeWithScope(c) => json!({"$code": cut_str(c.code, b.field_bytes)}),
        RawBsonRef::Int32(x) => json!(x),
        RawBsonRef::Timestamp(t) => json!({"$timestamp": {"t": t.time, "i": t.increment}}),
        RawBsonRef::Int64(x) => json!(x),
        RawBsonRef::Decimal128(d) => json!({"$numberDecimal": hex(&d.bytes())}),
        RawBsonRef::MaxKey => json!({"$maxKey": 1}),
        RawBsonRef::MinKey => json!({"$minKey": 1}),
        RawBsonRef::DbPointer(_) => json!({"$dbPointer": true}),
        RawBsonRef::Symbol(s) => json!({"$symbol": cut_str(s, b.field_bytes)}),
    }
}

/// A BSON document as a JSON object, within `bounds` (secrets redacted).
pub fn doc_json(d: &RawDocument, depth: usize, b: &Bounds, w: &mut Walk) -> Value {
    if depth > b.depth {
        w.too_deep = true;
        return Value::String("…".into());
    }
    let mut m = Map::new();
    for e in d {
        match e {
            Ok((k, v)) if w.budget > 0 => {
                let k = k.as_str();
                w.budget -= 1;
                let value = if REDACTED_KEYS.contains(&k) {
                    Value::String("[REDACTED]".into())
                } else {
                    value_json(v, depth, b, w)
                };
                m.insert(cut_str(k, b.field_bytes), value);
            }
            Ok(_) => {
                w.cut = true;
                break;
            }
            Err(_) => {
                w.malformed = true;
                break;
            }
        }
    }
    Value::Object(m)
}

/// A document's JSON and what the walk ran into.
pub fn to_json(d: &RawDocument, b: &Bounds) -> (Value, Walk) {
    let mut w = Walk { budget: b.elements, ..Walk::default() };
    let v = doc_json(d, 1, b, &mut w);
    (v, w)
}

/// A string-valued element of `d`.
pub fn get_str<'a>(d: &'a RawDocument, key: &str) -> Option<&'a str> {
    match d.get(key).ok()?? {
        RawBsonRef::String(s) => Some(s),
        _ => None,
    }
}

/// A numeric element of `d` as an `f64` (`ok` is a double, an int or a bool).
pub fn get_num(d: &RawDocument, key: &str) -> Option<f64> {
    match d.get(key).ok()?? {
        RawBsonRef::Double(x) => Some(x),
        RawBsonRef::Int32(x) => Some(f64::from(x)),
        RawBsonRef::Int64(x) => Some(x as f64),
        RawBsonRef::Boolean(x) => Some(if x { 1.0 } else { 0.0 }),
        _ => None,
    }
}

/// `db.collection` split at its first dot.
pub fn namespace(ns: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    match ns.iter().position(|c| *c == b'.') {
        Some(i) => (
            ns.get(..i).unwrap_or_default().to_vec(),
            Some(ns.get(i + 1..).unwrap_or_default().to_vec()),
        ),
        None => (ns.to_vec(), None),
    }
}

/// Content-based detection: a request header (a known request opcode, no
/// `responseTo`, a length the bytes agree with) whose body starts as its
/// opcode says; a reply (`responseTo` set) from the server.
pub fn probe(b: &[u8], to_server: bool) -> Confidence {
    let Some((len, _, response_to, code)) = header(b) else { return Confidence::None };
    let Ok(len) = usize::try_from(len) else { return Confidence::None };
    if !(HEADER + 5..=MAX_MESSAGE).contains(&len) {
        return Confidence::None;
    }
    let body_ok = |at: usize| {
        // The first document's length fits in the message and it ends in NUL.
        i32le(b, at)
            .and_then(|l| usize::try_from(l).ok())
            .is_some_and(|l| l >= 5 && at + l <= len && b.get(at + l - 1).is_none_or(|c| *c == 0))
    };
    if to_server {
        if response_to != 0 {
            return Confidence::None;
        }
        match code {
            op::MSG => {
                let flags = i32le(b, HEADER).unwrap_or(-1) as u32;
                // Bits 2–15 are reserved and must be 0; section kind 0 or 1.
                if flags & 0xfffc != 0 || !matches!(b.get(HEADER + 4), Some(0 | 1)) {
                    return Confidence::None;
                }
                if b.get(HEADER + 4) == Some(&0) && body_ok(HEADER + 5) {
                    Confidence::High
                } else {
                    Confidence::Low
                }
            }
            op::QUERY => {
                let Some((ns, next)) = cstr(b, HEADER + 4) else { return Confidence::None };
                let printable = !ns.is_empty() && ns.iter().all(|c| (0x21..0x7f).contains(c));
                if printable && ns.contains(&b'.') && body_ok(next + 8) {
                    Confidence::High
                } else {
                    Confidence::None
                }
            }
            op::COMPRESSED => match i32le(b, HEADER) {
                Some(op::MSG | op::QUERY) if b.get(HEADER + 8).is_some_and(|c| *c <= 3) => {
                    Confidence::Medium
                }
                _ => Confidence::None,
            },
            _ => Confidence::None,
        }
    } else {
        if response_to == 0 {
            return Confidence::None;
        }
        match code {
            op::MSG if b.get(HEADER + 4) == Some(&0) && body_ok(HEADER + 5) => Confidence::Medium,
            op::REPLY if body_ok(HEADER + 20) => Confidence::Medium,
            _ => Confidence::None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A message: header then body.
    pub fn message(request_id: i32, response_to: i32, code: i32, body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + HEADER) as i32).to_le_bytes().to_vec();
        v.extend_from_slice(&request_id.to_le_bytes());
        v.extend_from_slice(&response_to.to_le_bytes());
        v.extend_from_slice(&code.to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    /// An OP_MSG body of one kind-0 section.
    pub fn op_msg(flags: u32, doc: &bson::Document) -> Vec<u8> {
        let mut v = flags.to_le_bytes().to_vec();
        v.push(0);
        v.extend_from_slice(&doc.to_vec().unwrap());
        v
    }

    #[test]
    fn bounds_deep_and_wide_documents() {
        // 200 levels: {a: {a: {…}}}.
        let mut d = bson::doc! {"x": 1};
        for _ in 0..200 {
            d = bson::doc! {"a": d};
        }
        let bytes = d.to_vec().unwrap();
        let raw = RawDocument::from_bytes(&bytes).unwrap();
        let b = Bounds { depth: 8, elements: 100, field_bytes: 16 };
        let (v, w) = to_json(raw, &b);
        assert!(w.too_deep);
        assert_eq!(v["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"], "…");
        let wide: bson::Document =
            (0..500).map(|i| (format!("k{i}"), bson::Bson::Int32(i))).collect();
        let bytes = wide.to_vec().unwrap();
        let (v, w) = to_json(RawDocument::from_bytes(&bytes).unwrap(), &b);
        assert!(w.cut);
        assert_eq!(v.as_object().unwrap().len(), 100);
        // Secrets are never kept.
        let sasl = bson::doc! {"saslContinue": 1, "payload": bson::Binary { subtype: bson::spec::BinarySubtype::Generic, bytes: b"c=biws".to_vec() }};
        let bytes = sasl.to_vec().unwrap();
        let (v, _) = to_json(RawDocument::from_bytes(&bytes).unwrap(), &b);
        assert_eq!(v["payload"], "[REDACTED]");
    }

    #[test]
    fn a_length_that_lies_is_not_a_document() {
        let mut bytes = bson::doc! {"find": "users"}.to_vec().unwrap();
        assert!(document(&bytes, 0).is_some());
        bytes[0] = 0xff;
        assert!(document(&bytes, 0).is_none());
        // A nested length that lies is found as the walk reaches it.
        let mut nested = bson::doc! {"a": {"b": "c"}}.to_vec().unwrap();
        nested[7] = 0x70;
        let raw = RawDocument::from_bytes(&nested).unwrap();
        let (_, w) = to_json(raw, &Bounds { depth: 8, elements: 100, field_bytes: 16 });
        assert!(w.malformed);
    }

    #[test]
    fn probes_requests_and_replies() {
        let m = message(7, 0, op::MSG, &op_msg(0, &bson::doc! {"ping": 1, "$db": "admin"}));
        assert_eq!(probe(&m, true), Confidence::High);
        assert_eq!(probe(&m, false), Confidence::None);
        let r = message(9, 7, op::MSG, &op_msg(0, &bson::doc! {"ok": 1.0}));
        assert_eq!(probe(&r, false), Confidence::Medium);
        assert_eq!(probe(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true), Confidence::None);
        assert_eq!(probe(&m[..10], true), Confidence::None);
    }
}
