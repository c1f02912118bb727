//! HTTP/1.0 and HTTP/1.1 (and HTTP/0.9 simple requests).
//!
//! `parser.rs` parses heads and body framing from byte slices; `http.rs`
//! holds a flow's session (both directions, the queue of transactions,
//! pairing by order for pipelining); this file has the Rust value of one
//! message and its `AGENTS_API.md` JSON.
//!
//! A message keeps its raw header block as bytes; the start-line parts and
//! headers are spans into it, and the header spans are kept after the
//! bytes in the same buffer, so a message holds one allocation for its
//! head whatever its header count: one free wherever the item ends (on a
//! script core, once per item).

// The Suricata layout names the stateful file after the protocol.
#[allow(clippy::module_inception)]
pub mod http;
pub mod parser;

pub use http::HttpSession;

use serde_json::{json, Map, Value};

/// Byte range `[start, end)` into [`HttpMessage::head`].
pub type Span = (u32, u32);

/// Bytes one header's spans take in [`HttpMessage`]'s buffer: name start
/// and end, value start and end, each a little-endian `u32`.
const HEADER_SPAN_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpMessage {
    /// Start line and header block as captured (`head_len` bytes), then
    /// each header's name and value spans ([`HEADER_SPAN_BYTES`] each).
    buf: Box<[u8]>,
    head_len: u32,
    pub is_request: bool,
    /// Request: method, target, version. Response: version, status, reason.
    pub start: [Span; 3],
    /// Final status of a response (0 for an HTTP/0.9 response).
    pub status: u16,
    /// Last interim (1xx) status seen before the final response, as Zeek's
    /// `info_code`.
    pub info_code: Option<u16>,
    /// An HTTP/0.9 simple request or its response.
    pub http09: bool,
    pub headers_size: u32,
    /// Body length after de-chunking, gaps included.
    pub body_size: u64,
    /// Body length after content decoding (gzip/deflate), as Zeek's
    /// `*_body_len`; equal to `body_size` when not encoded.
    pub content_size: u64,
    /// First `max_body_bytes` of the (decoded) body.
    pub body: Vec<u8>,
    pub body_truncated: bool,
}

impl HttpMessage {
    /// A message whose head is `head` with these header spans into it;
    /// every other field empty.
    pub fn with_head(head: &[u8], headers: &[(Span, Span)]) -> HttpMessage {
        let mut buf = Vec::with_capacity(head.len() + headers.len() * HEADER_SPAN_BYTES);
        buf.extend_from_slice(head);
        for &((n0, n1), (v0, v1)) in headers {
            let spans =
                u128::from(n0) | u128::from(n1) << 32 | u128::from(v0) << 64 | u128::from(v1) << 96;
            buf.extend_from_slice(&spans.to_le_bytes());
        }
        HttpMessage {
            buf: buf.into_boxed_slice(),
            head_len: head.len() as u32,
            ..HttpMessage::default()
        }
    }

    /// Start line and header block as captured.
    pub fn head(&self) -> &[u8] {
        self.buf.get(..self.head_len as usize).unwrap_or_default()
    }

    pub fn span(&self, s: Span) -> &[u8] {
        self.head().get(s.0 as usize..s.1 as usize).unwrap_or_default()
    }

    /// Each header's name and value spans, in order.
    pub fn header_spans(&self) -> impl ExactSizeIterator<Item = (Span, Span)> + '_ {
        self.buf
            .get(self.head_len as usize..)
            .unwrap_or_default()
            .chunks_exact(HEADER_SPAN_BYTES)
            .map(|c| {
                let spans = <[u8; HEADER_SPAN_BYTES]>::try_from(c).map_or(0, u128::from_le_bytes);
                let word = |i: u32| (spans >> (32 * i)) as u32;
                ((word(0), word(1)), (word(2), word(3)))
            })
    }

    pub fn method(&self) -> &[u8] {
        if self.is_request {
            self.span(self.start[0])
        } else {
            b""
        }
    }

    pub fn target(&self) -> &[u8] {
        if self.is_request {
            self.span(self.start[1])
        } else {
            b""
        }
    }

    /// `HTTP/1.1` etc. as sent (empty for HTTP/0.9).
    pub fn version(&self) -> &[u8] {
        self.span(if self.is_request { self.start[2] } else { self.start[0] })
    }

    pub fn reason(&self) -> &[u8] {
        if self.is_request {
            b""
        } else {
            self.span(self.start[2])
        }
    }

    pub fn version_number(&self) -> &'static str {
        if self.http09 {
            return "0.9";
        }
        match self.version() {
            v if v.eq_ignore_ascii_case(b"HTTP/1.0") => "1.0",
            v if v.eq_ignore_ascii_case(b"HTTP/0.9") => "0.9",
            _ => "1.1",
        }
    }

    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.header_spans().map(|(n, v)| (self.span(n), self.span(v)))
    }

    /// First header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        // Lengths first, from the spans: most names are not even sliced.
        self.header_spans()
            .find(|(n, _)| {
                n.1.wrapping_sub(n.0) as usize == name.len()
                    && self.span(*n).eq_ignore_ascii_case(name)
            })
            .map(|(_, v)| self.span(v))
    }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn headers_json(m: &HttpMessage) -> Value {
    let mut out = Map::new();
    for (n, v) in m.headers() {
        let name = s(n);
        let value = s(v);
        // Repeated headers are joined as RFC 9110 allows for list headers.
        match out.get_mut(&name) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&value);
            }
            _ => {
                out.insert(name, Value::String(value));
            }
        }
    }
    Value::Object(out)
}

fn cookies_json(m: &HttpMessage) -> Value {
    let mut out = Map::new();
    for (n, v) in m.headers() {
        if m.is_request && n.eq_ignore_ascii_case(b"cookie") {
            for pair in v.split(|c| *c == b';') {
                let mut kv = pair.splitn(2, |c| *c == b'=');
                let k = s(kv.next().unwrap_or_default().trim_ascii());
                if !k.is_empty() {
                    out.insert(k, Value::String(s(kv.next().unwrap_or_default().trim_ascii())));
                }
            }
        } else if !m.is_request && n.eq_ignore_ascii_case(b"set-cookie") {
            let first = v.split(|c| *c == b';').next().unwrap_or_default();
            let mut kv = first.splitn(2, |c| *c == b'=');
            let k = s(kv.next().unwrap_or_default().trim_ascii());
            if !k.is_empty() {
                out.insert(k, Value::String(s(kv.next().unwrap_or_default().trim_ascii())));
            }
        }
    }
    Value::Object(out)
}

/// Decodes `%XX` (and `+` as space in query strings).
pub fn percent_decode(b: &[u8], plus_as_space: bool) -> Vec<u8> {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'%' => {
                match (b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c))) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(c),
                }
            }
            b'+' if plus_as_space => out.push(b' '),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

fn body_text(m: &HttpMessage) -> (String, &'static str) {
    match std::str::from_utf8(&m.body) {
        Ok(t) => (t.to_owned(), ""),
        Err(_) => (crate::item::base64(&m.body), "base64"),
    }
}

/// A request target split into (path, query string); the path of an
/// absolute-form target (`http://host/p`) is what follows its authority.
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let (path, query) = match target.iter().position(|c| *c == b'?') {
        Some(i) => (target.get(..i).unwrap_or_default(), target.get(i + 1..).unwrap_or_default()),
        None => (target, &b""[..]),
    };
    let path_only = if path.starts_with(b"http://") || path.starts_with(b"https://") {
        let after = path.iter().skip(8).position(|c| *c == b'/').map(|i| i + 8);
        after.and_then(|i| path.get(i..)).unwrap_or(b"/")
    } else {
        path
    };
    (path_only, query)
}

pub fn request_json(m: &HttpMessage) -> Value {
    let target = m.target();
    let (path_only, query) = split_target(target);
    let segments: Vec<Value> = path_only
        .split(|c| *c == b'/')
        .filter(|p| !p.is_empty())
        .map(|p| Value::String(s(&percent_decode(p, false))))
        .collect();
    let mut qs = Map::new();
    for pair in query.split(|c| *c == b'&').filter(|p| !p.is_empty()) {
        let mut kv = pair.splitn(2, |c| *c == b'=');
        let k = s(&percent_decode(kv.next().unwrap_or_default(), true));
        let v = s(&percent_decode(kv.next().unwrap_or_default(), true));
        qs.insert(k, Value::String(v));
    }
    let target_uri = if target.starts_with(b"/") {
        match m.header("host") {
            Some(h) => format!("http://{}{}", s(h), s(target)),
            None => s(target),
        }
    } else {
        s(target)
    };
    let version = if m.http09 { "HTTP/0.9".to_owned() } else { s(m.version()) };
    let (text, _) = body_text(m);
    json!({
        "method": s(m.method()),
        "url": s(target),
        "path": s(path_only),
        "pathSegments": segments,
        "targetUri": target_uri,
        "httpVersion": version,
        "headers": headers_json(m),
        "cookies": cookies_json(m),
        "queryString": Value::Object(qs),
        "headersSize": m.headers_size,
        "bodySize": m.body_size,
        "postData": {
            "mimeType": s(m.header("content-type").unwrap_or_default()),
            "text": text,
        },
    })
}

pub fn response_json(m: &HttpMessage) -> Value {
    let (text, encoding) = body_text(m);
    let version = if m.http09 { "HTTP/0.9".to_owned() } else { s(m.version()) };
    json!({
        "status": m.status,
        "statusText": s(m.reason()),
        "httpVersion": version,
        "headers": headers_json(m),
        "cookies": cookies_json(m),
        "headersSize": m.headers_size,
        "bodySize": m.body_size,
        "infoCode": m.info_code,
        "content": {
            "encoding": encoding,
            "mimeType": s(m.header("content-type").unwrap_or_default()),
            "size": m.content_size,
            "text": text,
        },
    })
}

/// HTTP/1.x in the protocol registry.
pub struct Http;

impl super::Protocol for Http {
    const ITEM_NAME: &'static str = "http";
    const ABBR: &'static str = "HTTP";
    const VERSION: &'static str = "1.1";
    const LONG_NAME: &'static str = "Hypertext Transfer Protocol -- HTTP/1.1";
    type Session = HttpSession;
    type Message = HttpMessage;

    #[inline]
    fn probe(bytes: &[u8], dir: super::Direction) -> super::Confidence {
        parser::probe(bytes, dir)
    }

    fn session(_tcp: bool) -> super::Session {
        super::Session::Http(HttpSession::new())
    }

    /// The version the message's start line says (`1.1`, `1.0`, `0.9`).
    fn version(item: &crate::item::Item) -> std::borrow::Cow<'static, str> {
        let m = item.http_request().or(item.http_response());
        std::borrow::Cow::Borrowed(m.map(|m| m.version_number()).unwrap_or(Self::VERSION))
    }

    fn long_name(item: &crate::item::Item) -> std::borrow::Cow<'static, str> {
        use std::borrow::Cow;
        match Self::version(item).as_ref() {
            "1.1" => Cow::Borrowed(Self::LONG_NAME),
            "1.0" => Cow::Borrowed("Hypertext Transfer Protocol -- HTTP/1.0"),
            v => Cow::Owned(format!("Hypertext Transfer Protocol -- HTTP/{v}")),
        }
    }
}

impl super::ProtocolMessage for HttpMessage {
    fn request_json(&self) -> Value {
        request_json(self)
    }

    fn response_json(&self) -> Value {
        response_json(self)
    }
}
