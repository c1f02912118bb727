//! KFL1 selectors: paths over the item's JSON shape (`AGENTS_API.md`),
//! read from the Rust item.
//!
//! The paths agents use most (`request.method`, `request.path`,
//! `request.headers["x"]`, `response.status`, `src.ip`, `protocol.name`,
//! `elapsedTime` …) are read directly from the item. Any other path under
//! `request` or `response` builds that one side's JSON for this evaluation
//! and walks it (protocol fields such as `request.questions[0].name`); any
//! other top-level path builds the item's JSON. Both are correct for every
//! path the JSON has, and the common ones cost no JSON at all.

use std::borrow::Cow;

use serde_json::Value;

use super::binding::Source;
use super::value::KVal;
use super::vars::http::Http;
use crate::item::{Endpoint, Item, JSON_KEYS};

/// One step of a selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Key(String),
    Index(i64),
}

/// A selector: `request.headers["Host"]` is `[request, headers, Host]`.
pub type Path = Vec<Seg>;

/// Whether a KFL1 selector may start with `key`: a top-level key of the
/// item's JSON, or `data`, Kubeshark's raw-TCP payload object, which
/// skua's items do not have (selectors under it find nothing, as in
/// Kubeshark for an item without it).
pub fn is_root(key: &str) -> bool {
    key == "data" || JSON_KEYS.contains(&key)
}

fn key(p: &Path, k: usize) -> Option<&str> {
    match p.get(k)? {
        Seg::Key(s) => Some(s),
        Seg::Index(_) => None,
    }
}

fn endpoint<'a>(e: &'a Endpoint, field: &str) -> Option<KVal<'a>> {
    Some(match field {
        "ip" => KVal::Str(Cow::Owned(e.ip.to_string())),
        // A string, as in the item's JSON (and Kubeshark's).
        "port" => KVal::Str(Cow::Owned(e.port.to_string())),
        "name" => KVal::str(&e.name),
        "namespace" => KVal::str(&e.namespace),
        _ => return None,
    })
}

/// The value at `p`, or `None` when the item's JSON has nothing there.
pub(crate) fn path<'a>(src: Source<'a>, p: &Path) -> Option<KVal<'a>> {
    let i = src.item;
    let root = key(p, 0)?;
    if let Some(v) = direct(i, root, p) {
        return v;
    }
    let rest = p.get(1..).unwrap_or_default();
    let built = match root {
        "request" => i.exchange.request.as_ref().map_or(Value::Null, |m| m.request_json()),
        "response" => i.exchange.response.as_ref().map_or(Value::Null, |m| m.response_json()),
        _ => return walk(&i.to_json(src.node), p).map(|v| KVal::Json(Cow::Owned(v.clone()))),
    };
    // A missing side is `{}` (never null) in the item's JSON.
    let built = if built.is_null() { Value::Object(Default::default()) } else { built };
    walk(&built, rest).map(|v| KVal::Json(Cow::Owned(v.clone())))
}

/// The paths read straight from the item: `Some(answer)` when `p` is one
/// of them, `None` to fall back to the JSON.
fn direct<'a>(i: &'a Item, root: &str, p: &Path) -> Option<Option<KVal<'a>>> {
    let n = p.len();
    let second = key(p, 1);
    Some(match (root, second, n) {
        ("src", Some(f), 2) => endpoint(&i.src, f),
        ("dst", Some(f), 2) => endpoint(&i.dst, f),
        ("protocol", Some(f), 2) => {
            let info = i.protocol_info();
            Some(match f {
                "name" => KVal::str(info.name),
                "abbr" => KVal::str(info.abbr),
                "layer4" => KVal::str(info.layer4),
                "layer3" => KVal::str(info.layer3),
                "version" => KVal::Str(Cow::Owned(info.version.into_owned())),
                "longName" => KVal::Str(Cow::Owned(info.long_name.into_owned())),
                _ => None?,
            })
        }
        ("timestamp", None, 1) => Some(KVal::size(i.ts_ns() / 1_000_000)),
        ("elapsedTime", None, 1) => {
            let ex = &i.exchange;
            let us = if ex.request.is_some() && ex.response.is_some() {
                ex.response_ts_ns.saturating_sub(ex.request_ts_ns) / 1_000
            } else {
                0
            };
            Some(KVal::size(us))
        }
        ("requestSize", None, 1) => Some(KVal::size(i.exchange.request_size)),
        ("responseSize", None, 1) => Some(KVal::size(i.exchange.response_size)),
        ("size", None, 1) => {
            Some(KVal::size(i.exchange.request_size.saturating_add(i.exchange.response_size)))
        }
        ("passed", None, 1) => Some(KVal::Bool(i.passed)),
        ("failed", None, 1) => Some(KVal::Bool(i.failed)),
        ("stream", None, 1) => Some(KVal::Str(Cow::Owned(i.stream.to_string()))),
        ("index", None, 1) => Some(KVal::int(i.index)),
        ("data", _, _) => None,
        ("request", Some(f), _) => {
            let r = Http::request(i)?;
            match (f, n) {
                ("method", 2) => Some(KVal::bytes(r.method())),
                ("url", 2) => Some(KVal::bytes(r.url())),
                ("path", 2) => Some(KVal::bytes(r.path())),
                ("headers", 3) => r.header(key(p, 2)?).map(KVal::bytes),
                _ => return None,
            }
        }
        ("response", Some(f), _) => {
            let r = Http::response(i)?;
            match (f, n, r) {
                ("status", 2, Http::H1(m)) => Some(KVal::int(m.status)),
                ("status", 2, Http::H2(m)) => Some(KVal::int(m.status)),
                ("headers", 3, _) => r.header(key(p, 2)?).map(KVal::bytes),
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Walks `p` from `v`.
fn walk<'v>(v: &'v Value, p: &[Seg]) -> Option<&'v Value> {
    let mut cur = v;
    for s in p {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Object(o)) => o.get(k).or_else(|| {
                // Header names are case-insensitive.
                o.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v)
            })?,
            (Seg::Index(i), Value::Array(a)) => {
                let i = if *i < 0 { a.len() as i64 + *i } else { *i };
                a.get(usize::try_from(i).ok()?)?
            }
            _ => return None,
        };
    }
    Some(cur)
}
