//! HTTP/1.x, HTTP/2 and gRPC variables. gRPC items are HTTP/2 streams, so
//! every HTTP variable reads them too (`http` is true for them, as in
//! Kubeshark, where gRPC is an HTTP/2 sub-protocol).
//!
//! [`Http`] is one view over both message types, so each variable is
//! written once. Header names are case-insensitive everywhere: a literal
//! lookup (`request.headers["Host"]`) ignores case, and the whole map, when
//! an expression iterates it, has lower-case names (HTTP/2's spelling) with
//! repeated fields joined by `, ` as the item's JSON joins them.

use std::borrow::Cow;

use super::{Var, VarTy};
use crate::config::AppProtocol;
use crate::dissectors::http::{percent_decode, split_target, HttpMessage};
use crate::dissectors::http2::Http2Message;
use crate::item::{Item, Message};
use crate::kfl::value::KVal;

/// One side of an HTTP exchange, whatever the version.
#[derive(Clone, Copy)]
pub(crate) enum Http<'a> {
    H1(&'a HttpMessage),
    H2(&'a Http2Message),
}

impl<'a> Http<'a> {
    pub(crate) fn of(m: Option<&'a Message>) -> Option<Http<'a>> {
        match m? {
            Message::Http(m) => Some(Http::H1(m)),
            Message::Http2(m) => Some(Http::H2(m)),
            Message::Grpc(g) => Some(Http::H2(&g.http)),
            _ => None,
        }
    }

    pub(crate) fn request(i: &'a Item) -> Option<Http<'a>> {
        Http::of(i.exchange.request.as_ref())
    }

    pub(crate) fn response(i: &'a Item) -> Option<Http<'a>> {
        Http::of(i.exchange.response.as_ref())
    }

    /// First field of that name, case-insensitively.
    pub(crate) fn header(self, name: &str) -> Option<&'a [u8]> {
        match self {
            Http::H1(m) => m.header(name),
            Http::H2(m) => m
                .headers
                .iter()
                .find(|(n, _)| n.first() != Some(&b':') && n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| v.as_slice())
                .or_else(|| {
                    // `host` is `:authority` in HTTP/2, as the JSON shows it.
                    if name.eq_ignore_ascii_case("host") {
                        self.pseudo(":authority")
                    } else {
                        None
                    }
                }),
        }
    }

    fn pseudo(self, name: &str) -> Option<&'a [u8]> {
        match self {
            Http::H1(_) => None,
            Http::H2(m) => m.header(name),
        }
    }

    /// Every field (lower-case names, repeats joined), pseudo-fields left out.
    pub(crate) fn headers(self) -> Entries<'a> {
        let mut out: Entries<'a> = Vec::new();
        let mut add = |n: &'a [u8], v: &'a [u8], sep: &str| {
            let name = String::from_utf8_lossy(n);
            let name = if name.bytes().any(|c| c.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                name
            };
            let value = String::from_utf8_lossy(v);
            match out.iter_mut().find(|(k, _)| *k == name) {
                Some((_, prev)) => {
                    let joined = format!("{prev}{sep}{value}");
                    *prev = Cow::Owned(joined);
                }
                None => out.push((name, value)),
            }
        };
        match self {
            Http::H1(m) => {
                for (n, v) in m.headers() {
                    add(n, v, ", ");
                }
            }
            Http::H2(m) => {
                for (n, v) in &m.headers {
                    if n.first() != Some(&b':') {
                        add(n, v, if n.as_slice() == b"cookie" { "; " } else { ", " });
                    }
                }
                if let (Some(a), true) = (m.header(":authority"), m.is_request) {
                    if !out.iter().any(|(k, _)| k == "host") {
                        out.push((Cow::Borrowed("host"), String::from_utf8_lossy(a)));
                    }
                }
            }
        }
        out
    }

    fn is_request(self) -> bool {
        match self {
            Http::H1(m) => m.is_request,
            Http::H2(m) => m.is_request,
        }
    }

    /// Request cookies (`Cookie`), or the names set by a response
    /// (`Set-Cookie`, first pair of each).
    pub(crate) fn cookies(self) -> Entries<'a> {
        let request = self.is_request();
        let wanted: &[u8] = if request { b"cookie" } else { b"set-cookie" };
        let fields: Vec<&'a [u8]> = match self {
            Http::H1(m) => m
                .headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case(wanted))
                .map(|(_, v)| v)
                .collect(),
            Http::H2(m) => m
                .headers
                .iter()
                .filter(|(n, _)| n.as_slice() == wanted)
                .map(|(_, v)| v.as_slice())
                .collect(),
        };
        let mut out = Vec::new();
        for v in fields {
            let pairs = v.split(|c| *c == b';').take(if request { usize::MAX } else { 1 });
            for pair in pairs {
                let mut kv = pair.splitn(2, |c| *c == b'=');
                let k = kv.next().unwrap_or_default().trim_ascii();
                if !k.is_empty() {
                    let v = kv.next().unwrap_or_default().trim_ascii();
                    out.push((String::from_utf8_lossy(k), String::from_utf8_lossy(v)));
                }
            }
        }
        out
    }

    pub(crate) fn method(self) -> &'a [u8] {
        match self {
            Http::H1(m) => m.method(),
            Http::H2(m) => m.header(":method").unwrap_or_default(),
        }
    }

    /// The request target as sent (`:path` in HTTP/2).
    pub(crate) fn url(self) -> &'a [u8] {
        match self {
            Http::H1(m) => m.target(),
            Http::H2(m) => m.header(":path").unwrap_or_default(),
        }
    }

    pub(crate) fn path(self) -> &'a [u8] {
        let url = self.url();
        match self {
            Http::H1(_) => split_target(url).0,
            Http::H2(_) => url.split(|c| *c == b'?').next().unwrap_or_default(),
        }
    }

    pub(crate) fn query_string(self) -> Entries<'a> {
        let url = self.url();
        let query = match url.iter().position(|c| *c == b'?') {
            Some(i) => url.get(i + 1..).unwrap_or_default(),
            None => b"",
        };
        let mut out = Vec::new();
        for pair in query.split(|c| *c == b'&').filter(|p| !p.is_empty()) {
            let mut kv = pair.splitn(2, |c| *c == b'=');
            let k = percent_decode(kv.next().unwrap_or_default(), true);
            let v = percent_decode(kv.next().unwrap_or_default(), true);
            out.push((
                Cow::Owned(String::from_utf8_lossy(&k).into_owned()),
                Cow::Owned(String::from_utf8_lossy(&v).into_owned()),
            ));
        }
        out
    }

    /// `HTTP/1.1`, `HTTP/1.0`, `HTTP/0.9` or `HTTP/2`.
    pub(crate) fn version(self) -> &'static str {
        match self {
            Http::H1(m) => match m.version_number() {
                "1.0" => "HTTP/1.0",
                "0.9" => "HTTP/0.9",
                _ => "HTTP/1.1",
            },
            Http::H2(_) => "HTTP/2",
        }
    }

    pub(crate) fn headers_size(self) -> u64 {
        match self {
            Http::H1(m) => u64::from(m.headers_size),
            Http::H2(m) => u64::from(m.headers_size),
        }
    }

    pub(crate) fn body_size(self) -> u64 {
        match self {
            Http::H1(m) => m.body_size,
            Http::H2(m) => m.body_size,
        }
    }
}

fn is_http(i: &Item) -> bool {
    matches!(i.protocol, AppProtocol::Http | AppProtocol::Http2 | AppProtocol::Grpc)
}

/// GraphQL over HTTP: a request to a `…graphql…` path or with a GraphQL
/// content type (Kubeshark's `gql`; skua does not parse the query).
fn is_gql(i: &Item) -> bool {
    let Some(r) = Http::request(i) else { return false };
    let has = |b: &[u8]| b.windows(7).any(|w| w.eq_ignore_ascii_case(b"graphql"));
    has(r.path()) || r.header("content-type").is_some_and(has)
}

fn req_str<'a>(i: &'a Item, f: fn(Http<'a>) -> &'a [u8]) -> KVal<'a> {
    Http::request(i).map_or_else(KVal::empty_str, |r| KVal::bytes(f(r)))
}

/// A string map's entries.
type Entries<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

fn map<'a>(m: Option<Http<'a>>, f: fn(Http<'a>) -> Entries<'a>) -> KVal<'a> {
    KVal::Map(m.map(f).unwrap_or_default())
}

fn size<'a>(m: Option<Http<'a>>, f: fn(Http<'a>) -> u64) -> KVal<'a> {
    KVal::size(m.map_or(0, f))
}

pub(super) const VARS: &[Var] = &[
    Var { name: "http", ty: VarTy::Bool, get: |i, _| KVal::Bool(is_http(i)) },
    Var { name: "gql", ty: VarTy::Bool, get: |i, _| KVal::Bool(is_gql(i)) },
    Var {
        name: "gqlv1",
        ty: VarTy::Bool,
        get: |i, _| KVal::Bool(i.protocol == AppProtocol::Http && is_gql(i)),
    },
    Var {
        name: "gqlv2",
        ty: VarTy::Bool,
        get: |i, _| KVal::Bool(i.protocol != AppProtocol::Http && is_gql(i)),
    },
    Var { name: "method", ty: VarTy::Str, get: |i, _| req_str(i, Http::method) },
    Var { name: "url", ty: VarTy::Str, get: |i, _| req_str(i, Http::url) },
    Var { name: "path", ty: VarTy::Str, get: |i, _| req_str(i, Http::path) },
    Var {
        name: "http_version",
        ty: VarTy::Str,
        get: |i, _| KVal::str(Http::request(i).or(Http::response(i)).map_or("", Http::version)),
    },
    Var {
        name: "query_string",
        ty: VarTy::StrMap,
        get: |i, _| map(Http::request(i), Http::query_string),
    },
    Var {
        name: "request.headers",
        ty: VarTy::StrMap,
        get: |i, _| map(Http::request(i), Http::headers),
    },
    Var {
        name: "response.headers",
        ty: VarTy::StrMap,
        get: |i, _| map(Http::response(i), Http::headers),
    },
    Var {
        name: "request.cookies",
        ty: VarTy::StrMap,
        get: |i, _| map(Http::request(i), Http::cookies),
    },
    Var {
        name: "response.cookies",
        ty: VarTy::StrMap,
        get: |i, _| map(Http::response(i), Http::cookies),
    },
    Var {
        name: "request_headers_size",
        ty: VarTy::Int,
        get: |i, _| size(Http::request(i), Http::headers_size),
    },
    Var {
        name: "request_body_size",
        ty: VarTy::Int,
        get: |i, _| size(Http::request(i), Http::body_size),
    },
    Var {
        name: "response_headers_size",
        ty: VarTy::Int,
        get: |i, _| size(Http::response(i), Http::headers_size),
    },
    Var {
        name: "response_body_size",
        ty: VarTy::Int,
        get: |i, _| size(Http::response(i), Http::body_size),
    },
];

fn grpc(
    i: &Item,
) -> Option<(&crate::dissectors::http2::GrpcInfo, Option<&crate::dissectors::http2::GrpcInfo>)> {
    let req = match &i.exchange.request {
        Some(Message::Grpc(g)) => Some(&g.grpc),
        _ => None,
    };
    let resp = match &i.exchange.response {
        Some(Message::Grpc(g)) => Some(&g.grpc),
        _ => None,
    };
    req.or(resp).map(|r| (r, resp))
}

pub(super) const GRPC_VARS: &[Var] = &[
    Var { name: "grpc", ty: VarTy::Bool, get: |i, _| KVal::Bool(i.protocol == AppProtocol::Grpc) },
    Var {
        name: "grpc_method",
        ty: VarTy::Str,
        get: |i, _| KVal::opt_bytes(grpc(i).and_then(|(r, _)| r.method.as_deref())),
    },
    Var {
        name: "grpc_service",
        ty: VarTy::Str,
        get: |i, _| KVal::opt_bytes(grpc(i).and_then(|(r, _)| r.service.as_deref())),
    },
    Var {
        // Kubeshark's default is -1 (not 0, which is OK) for non-gRPC items
        // and for an RPC whose status was not seen.
        name: "grpc_status",
        ty: VarTy::Int,
        get: |i, _| KVal::Int(grpc(i).and_then(|(_, resp)| resp?.status).map_or(-1, i64::from)),
    },
];
