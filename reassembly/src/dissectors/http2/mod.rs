//! HTTP/2 (RFC 9113) with HPACK (RFC 7541), and gRPC on top of it.
//!
//! `parser.rs` reads frame headers, recognises HTTP/2 without a preface
//! and counts gRPC's length-prefixed messages; `hpack.rs` decodes header
//! blocks with a dynamic table that knows what it has not seen;
//! `http2.rs` holds a connection's session: frames of both directions,
//! multiplexed streams (one item each, emitted when the stream ends), and
//! the h2c upgrade from HTTP/1.1. This file has the Rust values and their
//! JSON.
//!
//! How a connection is found: the client preface (prior knowledge); an
//! HTTP/1.1 `Upgrade: h2c` request answered `101` (that request becomes
//! stream 1, the HTTP/1.1 exchange is an item of its own); or, picked up
//! mid-connection, frames that follow RFC 9113's per-type rules back to
//! back. Picked up mid-way, the HPACK dynamic tables hold entries never
//! seen: a header that refers to one is left out and the item's `error` is
//! `{type: "dissection", msg: "hpack_unknown: …"}`, never a wrong value.
//!
//! HTTP/2 items (`protocol: {name: "http", version: "2", abbr: "HTTP/2"}`)
//! have the HTTP shape of `AGENTS_API.md`:
//! - `request: {method, url, path, pathSegments[], targetUri, httpVersion:
//!   "2", headers{}, cookies{}, queryString{}, headersSize, bodySize,
//!   postData{mimeType, text}}` — `method` is `:method`, `url` `:path`,
//!   `targetUri` `:scheme://:authority:path`; `headers` holds the regular
//!   header fields (lower-case, as HTTP/2 sends them) and `host` from
//!   `:authority` when the request has no `host` field; pseudo-header
//!   fields that were left out are `null` (`method`, `url`, `path`).
//!   `headersSize` is the HPACK-encoded header block size.
//! - `response: {status, statusText, httpVersion: "2", headers{}, cookies{},
//!   headersSize, bodySize, content{encoding, mimeType, size, text}}` —
//!   `status` from `:status`, `statusText` the standard reason phrase
//!   (HTTP/2 sends none); `content.size` after gzip/deflate decoding.
//! - Beyond the contract, on both: `streamId`; `trailers{}` (a trailing
//!   header block, `{}` if none); `unknownHeaders` (fields left out, see
//!   above); `resetCode` (the RST_STREAM error name this side sent, or
//!   `null`); `infoCode` (response: the last 1xx status before the final
//!   one); `pushed` (request: promised by the server with PUSH_PROMISE).
//!
//! gRPC items (`protocol: {name: "grpc", version: "2", abbr: "gRPC"}`) are
//! HTTP/2 streams whose request content-type is `application/grpc…`; they
//! carry every HTTP/2 field above plus a `grpc` object:
//! - `request.grpc: {service, method, messages, compressed}` — `service`
//!   and `method` split from `:path` (`/pkg.Service/Method`); `messages`
//!   the length-prefixed messages the client sent (more than one: a
//!   client-streaming or bidirectional RPC) and `compressed` how many had
//!   the compressed flag.
//! - `response.grpc: {status, statusName, message, messages, compressed}` —
//!   `status` the `grpc-status` of the trailers (or of the headers of a
//!   trailers-only response), `statusName` its name (`OK`, `UNAVAILABLE`
//!   …), `message` the percent-decoded `grpc-message`; `null` when absent.
//!   A streaming RPC is one item, emitted when its stream ends.

pub mod hpack;
// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod http2;
pub mod parser;

pub use http2::Http2Session;

use serde_json::{json, Map, Value};

/// One side of an HTTP/2 stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Http2Message {
    pub is_request: bool,
    pub stream_id: u32,
    /// Header fields in order, pseudo-header fields included.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// A trailing header block.
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Fields left out: they referred to HPACK state never seen.
    pub unknown_headers: u32,
    /// Response `:status` (0 when unknown).
    pub status: u16,
    pub info_code: Option<u16>,
    /// HPACK-encoded bytes of the header blocks.
    pub headers_size: u32,
    /// DATA payload bytes (padding excluded), lost bytes included.
    pub body_size: u64,
    /// After content decoding (equal to `body_size` when not encoded).
    pub content_size: u64,
    /// First `max_body_bytes` of the (decoded) body.
    pub body: Vec<u8>,
    pub body_truncated: bool,
    /// RST_STREAM error code this side sent.
    pub reset: Option<u32>,
    /// A request promised by the server (PUSH_PROMISE).
    pub pushed: bool,
}

impl Http2Message {
    /// First field of that (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    pub fn trailer(&self, name: &str) -> Option<&[u8]> {
        self.trailers
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

/// gRPC fields of one side of an RPC.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GrpcInfo {
    pub service: Option<Vec<u8>>,
    pub method: Option<Vec<u8>>,
    pub messages: u64,
    pub compressed: u64,
    pub status: Option<u32>,
    pub message: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct GrpcMessage {
    pub http: Http2Message,
    pub grpc: GrpcInfo,
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn fields_json<'a>(fields: impl Iterator<Item = &'a (Vec<u8>, Vec<u8>)>) -> Map<String, Value> {
    let mut out = Map::new();
    for (n, v) in fields {
        if n.first() == Some(&b':') {
            continue;
        }
        let (name, value) = (s(n), s(v));
        match out.get_mut(&name) {
            // Repeated fields join as HTTP/1 list headers do (cookies with
            // "; " as RFC 9113 §8.2.3 says).
            Some(Value::String(prev)) => {
                prev.push_str(if n == b"cookie" { "; " } else { ", " });
                prev.push_str(&value);
            }
            _ => {
                out.insert(name, Value::String(value));
            }
        }
    }
    out
}

fn cookies_json(m: &Http2Message) -> Value {
    let mut out = Map::new();
    let name = if m.is_request { &b"cookie"[..] } else { b"set-cookie" };
    for (_, v) in m.headers.iter().filter(|(n, _)| n.as_slice() == name) {
        let pairs: Vec<&[u8]> = if m.is_request {
            v.split(|c| *c == b';').collect()
        } else {
            v.split(|c| *c == b';').take(1).collect()
        };
        for pair in pairs {
            let mut kv = pair.splitn(2, |c| *c == b'=');
            let k = s(kv.next().unwrap_or_default().trim_ascii());
            if !k.is_empty() {
                out.insert(k, Value::String(s(kv.next().unwrap_or_default().trim_ascii())));
            }
        }
    }
    Value::Object(out)
}

fn body_text(m: &Http2Message) -> (String, &'static str) {
    match std::str::from_utf8(&m.body) {
        Ok(t) => (t.to_owned(), ""),
        Err(_) => (crate::item::base64(&m.body), "base64"),
    }
}

fn extras(m: &Http2Message, o: &mut Map<String, Value>) {
    o.insert("streamId".into(), m.stream_id.into());
    o.insert("trailers".into(), Value::Object(fields_json(m.trailers.iter())));
    o.insert("unknownHeaders".into(), m.unknown_headers.into());
    o.insert(
        "resetCode".into(),
        m.reset.map_or(Value::Null, |c| parser::error_code_name(c).into()),
    );
}

pub fn request_json(m: &Http2Message) -> Value {
    let path = m.header(":path");
    let (p, query) = match path {
        Some(t) => match t.iter().position(|c| *c == b'?') {
            Some(i) => (Some(t.get(..i).unwrap_or_default()), t.get(i + 1..).unwrap_or_default()),
            None => (Some(t), &b""[..]),
        },
        None => (None, &b""[..]),
    };
    let segments: Vec<Value> = p
        .unwrap_or_default()
        .split(|c| *c == b'/')
        .filter(|x| !x.is_empty())
        .map(|x| Value::String(s(&super::http::percent_decode(x, false))))
        .collect();
    let mut qs = Map::new();
    for pair in query.split(|c| *c == b'&').filter(|x| !x.is_empty()) {
        let mut kv = pair.splitn(2, |c| *c == b'=');
        let k = s(&super::http::percent_decode(kv.next().unwrap_or_default(), true));
        qs.insert(
            k,
            Value::String(s(&super::http::percent_decode(kv.next().unwrap_or_default(), true))),
        );
    }
    let mut headers = fields_json(m.headers.iter());
    let authority = m.header(":authority");
    if let (Some(a), false) = (authority, headers.contains_key("host")) {
        headers.insert("host".into(), Value::String(s(a)));
    }
    let host = authority.or(m.header("host"));
    let target_uri = match (path, host) {
        (Some(p), Some(h)) => Value::String(format!(
            "{}://{}{}",
            s(m.header(":scheme").unwrap_or(b"http")),
            s(h),
            s(p)
        )),
        (Some(p), None) => Value::String(s(p)),
        _ => Value::Null,
    };
    let (text, _) = body_text(m);
    let mut o = Map::new();
    o.insert("method".into(), m.header(":method").map_or(Value::Null, |x| s(x).into()));
    o.insert("url".into(), path.map_or(Value::Null, |x| s(x).into()));
    o.insert("path".into(), p.map_or(Value::Null, |x| s(x).into()));
    o.insert("pathSegments".into(), Value::Array(segments));
    o.insert("targetUri".into(), target_uri);
    o.insert("httpVersion".into(), "2".into());
    o.insert("headers".into(), Value::Object(headers));
    o.insert("cookies".into(), cookies_json(m));
    o.insert("queryString".into(), Value::Object(qs));
    o.insert("headersSize".into(), m.headers_size.into());
    o.insert("bodySize".into(), m.body_size.into());
    o.insert(
        "postData".into(),
        json!({"mimeType": s(m.header("content-type").unwrap_or_default()), "text": text}),
    );
    o.insert("pushed".into(), m.pushed.into());
    extras(m, &mut o);
    Value::Object(o)
}

pub fn response_json(m: &Http2Message) -> Value {
    let (text, encoding) = body_text(m);
    let mut o = Map::new();
    o.insert("status".into(), m.status.into());
    o.insert("statusText".into(), parser::reason(m.status).into());
    o.insert("httpVersion".into(), "2".into());
    o.insert("headers".into(), Value::Object(fields_json(m.headers.iter())));
    o.insert("cookies".into(), cookies_json(m));
    o.insert("headersSize".into(), m.headers_size.into());
    o.insert("bodySize".into(), m.body_size.into());
    o.insert("infoCode".into(), m.info_code.into());
    o.insert(
        "content".into(),
        json!({"encoding": encoding, "mimeType": s(m.header("content-type").unwrap_or_default()), "size": m.content_size, "text": text}),
    );
    extras(m, &mut o);
    Value::Object(o)
}

fn opt(b: &Option<Vec<u8>>) -> Value {
    b.as_deref().map_or(Value::Null, |x| s(x).into())
}

pub fn grpc_request_json(m: &GrpcMessage) -> Value {
    let mut v = request_json(&m.http);
    if let Value::Object(o) = &mut v {
        let g = &m.grpc;
        o.insert("grpc".into(), json!({"service": opt(&g.service), "method": opt(&g.method), "messages": g.messages, "compressed": g.compressed}));
    }
    v
}

pub fn grpc_response_json(m: &GrpcMessage) -> Value {
    let mut v = response_json(&m.http);
    if let Value::Object(o) = &mut v {
        let g = &m.grpc;
        o.insert(
            "grpc".into(),
            json!({
                "status": g.status,
                "statusName": g.status.map(parser::grpc_status_name),
                "message": g.message.as_deref().map(|x| s(&super::http::percent_decode(x, false))),
                "messages": g.messages,
                "compressed": g.compressed,
            }),
        );
    }
    v
}

/// HTTP/2 in the protocol registry.
pub struct Http2;

impl super::Protocol for Http2 {
    const ITEM_NAME: &'static str = "http";
    const ABBR: &'static str = "HTTP/2";
    const VERSION: &'static str = "2";
    const LONG_NAME: &'static str = "Hypertext Transfer Protocol Version 2 (HTTP/2)";
    type Session = Http2Session;
    type Message = Http2Message;

    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        Http2Session::probe(bytes, dir)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Http2(Http2Session::new())
    }
}

/// gRPC in the protocol registry: no probe or session of its own (HTTP/2
/// streams with a gRPC content-type become its items).
pub struct Grpc;

impl super::Protocol for Grpc {
    const ITEM_NAME: &'static str = "grpc";
    const ABBR: &'static str = "gRPC";
    const VERSION: &'static str = "2";
    const LONG_NAME: &'static str = "gRPC Remote Procedure Calls over HTTP/2";
    type Session = super::NoSession;
    type Message = Box<GrpcMessage>;

    fn session(_tcp: bool) -> super::Session {
        super::Session::Http2(Http2Session::new())
    }
}

impl super::ProtocolMessage for Http2Message {
    fn request_json(&self) -> Value {
        request_json(self)
    }

    fn response_json(&self) -> Value {
        response_json(self)
    }
}

impl super::ProtocolMessage for GrpcMessage {
    fn request_json(&self) -> Value {
        grpc_request_json(self)
    }

    fn response_json(&self) -> Value {
        grpc_response_json(self)
    }
}
