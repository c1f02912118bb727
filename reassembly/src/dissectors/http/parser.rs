//! Pure HTTP/1.x parsing over byte slices: probe, head (start line and
//! headers), body framing and the chunked decoder. No state beyond what the
//! caller passes in; nothing here allocates except a head's header spans.
//!
//! Heads go through `httparse` first. It rejects shapes a monitor must still
//! record (bogus method characters, `HTTP/1.2`, header lines without a colon,
//! obsolete folding); those fall back to a lenient line parser and the
//! message carries a `Malformed` anomaly instead of being dropped.

use std::mem::MaybeUninit;

use super::Span;
use crate::dissectors::{Confidence, Direction, ErrorKind};

/// Methods recognised with certainty by the probe (RFC 9110, WebDAV, PATCH,
/// and the QUERY draft). Other tokens are accepted at lower confidence.
const METHODS: &[&[u8]] = &[
    b"GET",
    b"POST",
    b"PUT",
    b"DELETE",
    b"HEAD",
    b"OPTIONS",
    b"PATCH",
    b"CONNECT",
    b"TRACE",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"QUERY",
    b"SEARCH",
    b"REPORT",
    b"MKCALENDAR",
];

/// Longest chunk-size or trailer line accepted before the message is
/// declared malformed.
pub const MAX_CHUNK_LINE: usize = 4096;
/// Header slots parsed on the stack by `httparse`.
const STACK_HEADERS: usize = 256;
/// Longest method token a lenient parse accepts.
const MAX_METHOD_LEN: usize = 32;

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Does `b` begin a request line? `Some(true)` for a known method,
/// `Some(false)` for another plausible token, `None` otherwise (or when too
/// few bytes are there to tell).
pub fn request_start(b: &[u8]) -> Option<bool> {
    let sp = b.iter().take(MAX_METHOD_LEN + 1).position(|c| *c == b' ')?;
    let method = b.get(..sp)?;
    if method.is_empty() || !method.iter().all(|c| is_tchar(*c)) {
        return None;
    }
    if METHODS.contains(&method) {
        return Some(true);
    }
    // An unknown method must look like one: upper-case letters followed by
    // an origin-form or absolute-form target.
    let next = b.get(sp + 1).copied();
    let upper = method.iter().all(|c| c.is_ascii_uppercase() || *c == b'-' || *c == b'_');
    (upper && matches!(next, Some(b'/') | Some(b'h') | Some(b'*'))).then_some(false)
}

pub fn response_start(b: &[u8]) -> bool {
    b.len() >= 5 && b.get(..5).is_some_and(|p| p.eq_ignore_ascii_case(b"HTTP/"))
}

pub fn probe(b: &[u8], dir: Direction) -> Confidence {
    match dir {
        Direction::ToServer => match request_start(b) {
            Some(true) => Confidence::High,
            Some(false) => Confidence::Medium,
            None => Confidence::None,
        },
        Direction::ToClient => {
            if b.len() >= 12 && response_start(b) && b.get(8) == Some(&b' ') {
                Confidence::High
            } else {
                Confidence::None
            }
        }
    }
}

/// Index just past the blank line ending a head, searching from `from`.
pub fn find_head_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(off) = memchr::memchr(b'\n', b.get(i..)?) {
        let nl = i + off;
        match b.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if b.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

/// Index just past the first line feed.
pub fn line_end(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b).map(|i| i + 1)
}

/// A parsed head: spans into the slice it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    pub start: [Span; 3],
    pub headers: Vec<(Span, Span)>,
    pub status: u16,
    pub http09: bool,
    pub anomaly: Option<ErrorKind>,
}

fn trim_span(b: &[u8], mut s: usize, mut e: usize) -> Span {
    while s < e && b.get(s).is_some_and(|c| c.is_ascii_whitespace()) {
        s += 1;
    }
    while e > s && b.get(e - 1).is_some_and(|c| c.is_ascii_whitespace()) {
        e -= 1;
    }
    (s as u32, e as u32)
}

/// Splits a start line into three parts: up to the first space, up to the
/// next space, and the rest.
fn start_line(b: &[u8]) -> ([Span; 3], usize) {
    let end = line_end(b).unwrap_or(b.len());
    let line = trim_span(b, 0, end);
    let (ls, le) = (line.0 as usize, line.1 as usize);
    let tok = |from: usize| -> (usize, usize) {
        let mut s = from;
        while s < le && b.get(s).is_some_and(|c| *c == b' ' || *c == b'\t') {
            s += 1;
        }
        let mut e = s;
        while e < le && b.get(e).is_some_and(|c| *c != b' ' && *c != b'\t') {
            e += 1;
        }
        (s, e)
    };
    let a = tok(ls);
    let bb = tok(a.1);
    let rest = trim_span(b, bb.1, le);
    ([(a.0 as u32, a.1 as u32), (bb.0 as u32, bb.1 as u32), rest], end)
}

/// The start-line spans of a request httparse accepted: method and target
/// are its slices, and the version (`HTTP/1.x`, all it accepts) follows
/// the target after one space. `None` when the head does not have that
/// shape, for [`start_line`] to read.
fn request_line_spans(b: &[u8], method: Option<&str>, path: Option<&str>) -> Option<[Span; 3]> {
    let (method, path) = (method?.as_bytes(), path?.as_bytes());
    let m = offset_in(b, method);
    let p = offset_in(b, path);
    let v = p + path.len() as u32 + 1;
    let version = b.get(v as usize..v as usize + 8)?;
    version.starts_with(b"HTTP/").then_some([(m, m + method.len() as u32), (p, v - 1), (v, v + 8)])
}

/// The start-line spans of a response httparse accepted: `HTTP/1.x`, one
/// space, the three-digit code, and the reason (trimmed; empty at the
/// code's end when there is none). `None` unless the head starts with the
/// version.
fn status_line_spans(b: &[u8], reason: Option<&str>) -> Option<[Span; 3]> {
    if !b.starts_with(b"HTTP/") {
        return None;
    }
    let reason = match reason.map(str::as_bytes).filter(|r| !r.is_empty()) {
        Some(r) => {
            let s = offset_in(b, r) as usize;
            trim_span(b, s, s + r.len())
        }
        // httparse also reports a reason with non-ASCII bytes as empty:
        // only a line that really ends at the code is read here.
        None if matches!(b.get(12), Some(b'\r' | b'\n')) => (12, 12),
        None => return None,
    };
    Some([(0, 8), (9, 12), reason])
}

fn offset_in(base: &[u8], part: &[u8]) -> u32 {
    (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize) as u32
}

/// Header slots for `httparse`, left uninitialised: it writes only the
/// slots a head fills, where a zeroed array of 256 would be 8 KiB of stores
/// per head.
fn uninit_headers<'b>() -> [MaybeUninit<httparse::Header<'b>>; STACK_HEADERS] {
    [const { MaybeUninit::uninit() }; STACK_HEADERS]
}

fn httparse_headers(b: &[u8], hdrs: &[httparse::Header<'_>]) -> Vec<(Span, Span)> {
    hdrs.iter()
        .map(|h| {
            let n = offset_in(b, h.name.as_bytes());
            let v = offset_in(b, h.value) as usize;
            let v = trim_span(b, v, v + h.value.len());
            ((n, n + h.name.len() as u32), v)
        })
        .collect()
}

/// Header lines after the start line, lenient: lines without a colon and
/// continuation lines are skipped and reported.
fn lenient_headers(b: &[u8], from: usize, max: usize) -> (Vec<(Span, Span)>, Option<ErrorKind>) {
    let mut out = Vec::new();
    let mut anomaly = None;
    let mut i = from;
    while i < b.len() {
        let end = b.get(i..).and_then(line_end).map_or(b.len(), |e| i + e);
        let (s, e) = trim_span(b, i, end);
        if s == e {
            break;
        }
        let first = b.get(i).copied().unwrap_or(b' ');
        let line = b.get(s as usize..e as usize).unwrap_or_default();
        match line.iter().position(|c| *c == b':') {
            Some(colon) if first != b' ' && first != b'\t' => {
                if out.len() >= max {
                    anomaly = Some(ErrorKind::TooManyHeaders);
                    break;
                }
                let c = s as usize + colon;
                out.push((trim_span(b, s as usize, c), trim_span(b, c + 1, e as usize)));
            }
            _ => anomaly = Some(ErrorKind::Malformed),
        }
        i = end;
    }
    (out, anomaly)
}

/// Parses a request head. `b` is the head, through its blank line (or, for
/// HTTP/0.9, through its only line). Never fails: what cannot be parsed is
/// recorded as an anomaly.
pub fn parse_request_head(b: &[u8], max_headers: usize) -> Head {
    let mut hdrs = uninit_headers();
    let (parsed, req) = httparse_request(b, &mut hdrs, max_headers);
    if let Some((head, _)) = whole_request(b, &parsed, &req) {
        return head;
    }
    let (mut start, first_end) = start_line(b);
    let version = b.get(start[2].0 as usize..start[2].1 as usize).unwrap_or_default();
    let target_present = start[1].0 < start[1].1;
    if version.is_empty() {
        let second = b.get(start[1].0 as usize..start[1].1 as usize).unwrap_or_default();
        if is_version_token(second) {
            // "OPTIONS HTTP/1.1": the target is missing, not the version.
            // Servers answer these with a 400 after reading the headers, so
            // the headers are kept.
            start[2] = start[1];
            start[1] = (start[1].0, start[1].0);
            let (headers, _) = lenient_headers(b, first_end, max_headers);
            return Head {
                start,
                headers,
                status: 0,
                http09: false,
                anomaly: Some(ErrorKind::Malformed),
            };
        }
        if looks_like_header_line(b.get(first_end..).unwrap_or_default()) {
            // "GET /HTTP/1.1" followed by header lines: a request whose
            // version was glued to its target. Not HTTP/0.9 (which has no
            // headers); the server reads the headers and answers with a
            // full response, so both are dissected as HTTP/1.x.
            let (headers, _) = lenient_headers(b, first_end, max_headers);
            return Head {
                start,
                headers,
                status: 0,
                http09: false,
                anomaly: Some(ErrorKind::Malformed),
            };
        }
        // "GET /path" alone is an HTTP/0.9 simple request: no headers.
        let anomaly = (!target_present).then_some(ErrorKind::Malformed);
        return Head { start, headers: Vec::new(), status: 0, http09: true, anomaly };
    }
    let (headers, anomaly) = match parsed {
        Ok(httparse::Status::Complete(_)) => (httparse_headers(b, req.headers), None),
        Err(httparse::Error::TooManyHeaders) => {
            let (h, _) = lenient_headers(b, first_end, max_headers);
            (h, Some(ErrorKind::TooManyHeaders))
        }
        _ => {
            let (h, a) = lenient_headers(b, first_end, max_headers);
            (h, Some(a.unwrap_or(ErrorKind::Malformed)))
        }
    };
    Head { start, headers, status: 0, http09: false, anomaly }
}

/// The request head at the front of `b` and its length, when httparse
/// reads it whole: most heads, found this way without a scan for the
/// head's end before the parse. `None` for a head not complete yet and
/// for one [`parse_request_head`] must read leniently; the caller then
/// finds the end with [`find_head_end`].
pub fn whole_request_head(b: &[u8], max_headers: usize) -> Option<(Head, usize)> {
    let mut hdrs = uninit_headers();
    let (parsed, req) = httparse_request(b, &mut hdrs, max_headers);
    whole_request(b, &parsed, &req)
}

/// [`whole_request_head`] for a response head.
pub fn whole_response_head(b: &[u8], max_headers: usize) -> Option<(Head, usize)> {
    let mut hdrs = uninit_headers();
    let (parsed, resp) = httparse_response(b, &mut hdrs, max_headers);
    whole_response(b, &parsed, &resp)
}

type Headers<'b> = [MaybeUninit<httparse::Header<'b>>; STACK_HEADERS];

fn httparse_request<'h, 'b>(
    b: &'b [u8],
    hdrs: &'h mut Headers<'b>,
    max_headers: usize,
) -> (httparse::Result<usize>, httparse::Request<'h, 'b>) {
    let slots = max_headers.clamp(1, STACK_HEADERS);
    let mut req = httparse::Request::new(&mut []);
    let parsed = req.parse_with_uninit_headers(b, hdrs.get_mut(..slots).unwrap_or_default());
    (parsed, req)
}

fn httparse_response<'h, 'b>(
    b: &'b [u8],
    hdrs: &'h mut Headers<'b>,
    max_headers: usize,
) -> (httparse::Result<usize>, httparse::Response<'h, 'b>) {
    let slots = max_headers.clamp(1, STACK_HEADERS);
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .parse_response_with_uninit_headers(
            &mut resp,
            b,
            hdrs.get_mut(..slots).unwrap_or_default(),
        );
    (parsed, resp)
}

/// A head httparse read whole, with the start line's spans taken from its
/// slices (no second scan of the line); `None` when the line does not
/// have the shape those spans assume.
fn whole_request(
    b: &[u8],
    parsed: &httparse::Result<usize>,
    req: &httparse::Request<'_, '_>,
) -> Option<(Head, usize)> {
    let Ok(httparse::Status::Complete(len)) = parsed else { return None };
    let start = request_line_spans(b, req.method, req.path)?;
    Some((
        Head {
            start,
            headers: httparse_headers(b, req.headers),
            status: 0,
            http09: false,
            anomaly: None,
        },
        *len,
    ))
}

fn whole_response(
    b: &[u8],
    parsed: &httparse::Result<usize>,
    resp: &httparse::Response<'_, '_>,
) -> Option<(Head, usize)> {
    let (Ok(httparse::Status::Complete(len)), Some(status)) = (parsed, resp.code) else {
        return None;
    };
    let start = status_line_spans(b, resp.reason)?;
    Some((
        Head {
            start,
            headers: httparse_headers(b, resp.headers),
            status,
            http09: false,
            anomaly: None,
        },
        *len,
    ))
}

/// `HTTP/` followed by a digit: a version where a target was expected.
fn is_version_token(t: &[u8]) -> bool {
    t.len() > 5
        && t.get(..5).is_some_and(|p| p.eq_ignore_ascii_case(b"HTTP/"))
        && t.get(5).is_some_and(u8::is_ascii_digit)
}

/// Whether `rest` (what follows a start line) opens with `name:`, a header
/// line rather than a body or the next request.
pub fn looks_like_header_line(rest: &[u8]) -> bool {
    let mut i = 0;
    while rest.get(i).is_some_and(|c| *c == b'\r' || *c == b'\n') && i < 2 {
        i += 1;
    }
    let name = rest.get(i..).unwrap_or_default();
    let len = name
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(c))
        .count();
    len > 0 && name.get(len) == Some(&b':')
}

/// Parses a response head (`b` through its blank line).
pub fn parse_response_head(b: &[u8], max_headers: usize) -> Result<Head, ErrorKind> {
    let mut hdrs = uninit_headers();
    let (parsed, resp) = httparse_response(b, &mut hdrs, max_headers);
    if let Some((head, _)) = whole_response(b, &parsed, &resp) {
        return Ok(head);
    }
    let (start, first_end) = start_line(b);
    let code = b.get(start[1].0 as usize..start[1].1 as usize).unwrap_or_default();
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(ErrorKind::Malformed);
    }
    let status = code.iter().fold(0u16, |a, c| a * 10 + u16::from(c - b'0'));
    let (headers, anomaly) = match parsed {
        Ok(httparse::Status::Complete(_)) => (httparse_headers(b, resp.headers), None),
        Err(httparse::Error::TooManyHeaders) => {
            (lenient_headers(b, first_end, max_headers).0, Some(ErrorKind::TooManyHeaders))
        }
        _ => {
            let (h, a) = lenient_headers(b, first_end, max_headers);
            (h, Some(a.unwrap_or(ErrorKind::Malformed)))
        }
    };
    Ok(Head { start, headers, status, http09: false, anomaly })
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// Body framing from the headers (RFC 9112 §6.3), with the anomalies found.
/// `default` is what applies without Content-Length or Transfer-Encoding.
pub fn framing<'a>(
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    default: Framing,
) -> (Framing, Option<ErrorKind>) {
    let mut cl: Option<u64> = None;
    let mut cl_bad = false;
    let mut te_seen = false;
    let mut te_last_chunked = false;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(b"content-length") {
            for part in v.split(|c| *c == b',') {
                let part = part.trim_ascii();
                let parsed =
                    (!part.is_empty() && part.len() <= 19 && part.iter().all(u8::is_ascii_digit))
                        .then(|| part.iter().fold(0u64, |a, c| a * 10 + u64::from(c - b'0')));
                match (parsed, cl) {
                    (Some(x), None) => cl = Some(x),
                    (Some(x), Some(y)) if x == y => {}
                    _ => cl_bad = true,
                }
            }
        } else if n.eq_ignore_ascii_case(b"transfer-encoding") {
            te_seen = true;
            if let Some(last) =
                v.split(|c| *c == b',').map(<[u8]>::trim_ascii).rfind(|t| !t.is_empty())
            {
                te_last_chunked = last.eq_ignore_ascii_case(b"chunked");
            }
        }
    }
    if te_seen {
        // Transfer-Encoding overrides Content-Length; both is a smuggling shape.
        let anomaly = if cl.is_some() || cl_bad { Some(ErrorKind::TeClConflict) } else { None };
        if te_last_chunked {
            return (Framing::Chunked, anomaly);
        }
        return (
            if default == Framing::None { Framing::None } else { Framing::UntilClose },
            anomaly.or(Some(ErrorKind::InvalidChunk)),
        );
    }
    if cl_bad {
        return (cl.map_or(default, Framing::Length), Some(ErrorKind::InvalidContentLength));
    }
    (cl.map_or(default, Framing::Length), None)
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkStep {
    /// `consumed` bytes of body data.
    Data {
        consumed: usize,
    },
    /// `consumed` bytes of framing (size line, CRLF, trailer line).
    Framing {
        consumed: usize,
    },
    /// The body ended after `consumed` framing bytes.
    Done {
        consumed: usize,
    },
    NeedMore,
    /// The chunk framing is broken at a line of `consumed` bytes.
    Error {
        kind: ErrorKind,
        consumed: usize,
    },
}

/// Parses a chunk-size line: hex digits, then optional extensions.
pub fn chunk_size(line: &[u8]) -> Result<u64, ErrorKind> {
    let line = line.trim_ascii();
    let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ErrorKind::InvalidChunk);
    }
    let mut v: u64 = 0;
    for c in line.iter().take(digits) {
        let d = u64::from((*c as char).to_digit(16).unwrap_or(0));
        v = v.checked_mul(16).and_then(|v| v.checked_add(d)).ok_or(ErrorKind::ChunkSizeOverflow)?;
    }
    match line.get(digits..).unwrap_or_default().trim_ascii_start().first() {
        None | Some(b';') => Ok(v),
        Some(_) => Err(ErrorKind::InvalidChunk),
    }
}

/// One step of the chunked decoder.
pub fn chunk_step(state: &mut ChunkState, b: &[u8]) -> ChunkStep {
    match *state {
        ChunkState::Size | ChunkState::Trailer => {
            let Some(end) = line_end(b) else {
                return if b.len() > MAX_CHUNK_LINE {
                    ChunkStep::Error { kind: ErrorKind::InvalidChunk, consumed: b.len() }
                } else {
                    ChunkStep::NeedMore
                };
            };
            let line = b.get(..end).unwrap_or_default();
            if *state == ChunkState::Trailer {
                return if line.trim_ascii().is_empty() {
                    ChunkStep::Done { consumed: end }
                } else {
                    ChunkStep::Framing { consumed: end }
                };
            }
            if line.trim_ascii().is_empty() {
                // A stray blank line before a size line: tolerated.
                return ChunkStep::Framing { consumed: end };
            }
            match chunk_size(line) {
                Ok(0) => {
                    *state = ChunkState::Trailer;
                    ChunkStep::Framing { consumed: end }
                }
                Ok(n) => {
                    *state = ChunkState::Data(n);
                    ChunkStep::Framing { consumed: end }
                }
                Err(kind) => ChunkStep::Error { kind, consumed: end },
            }
        }
        ChunkState::Data(rem) => {
            if b.is_empty() {
                return ChunkStep::NeedMore;
            }
            let n = rem.min(b.len() as u64);
            *state = if rem == n { ChunkState::DataEnd } else { ChunkState::Data(rem - n) };
            ChunkStep::Data { consumed: n as usize }
        }
        ChunkState::DataEnd => match b {
            [] | [b'\r'] => ChunkStep::NeedMore,
            [b'\r', b'\n', ..] => {
                *state = ChunkState::Size;
                ChunkStep::Framing { consumed: 2 }
            }
            [b'\n', ..] => {
                *state = ChunkState::Size;
                ChunkStep::Framing { consumed: 1 }
            }
            _ => {
                // A missing CRLF after chunk data: read on as a size line.
                *state = ChunkState::Size;
                ChunkStep::Framing { consumed: 0 }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(b: &[u8], s: Span) -> &[u8] {
        &b[s.0 as usize..s.1 as usize]
    }

    #[test]
    fn probes() {
        assert_eq!(probe(b"GET / HTTP/1.1\r\n", Direction::ToServer), Confidence::High);
        assert_eq!(probe(b"FOO /x HTTP/1.1\r\n", Direction::ToServer), Confidence::Medium);
        assert_eq!(probe(b"\x16\x03\x01\x02\x00", Direction::ToServer), Confidence::None);
        assert_eq!(probe(b"HTTP/1.1 200 OK\r\n", Direction::ToClient), Confidence::High);
        assert_eq!(probe(b"SSH-2.0-OpenSSH\r\n", Direction::ToClient), Confidence::None);
        assert_eq!(probe(b"", Direction::ToServer), Confidence::None);
    }

    #[test]
    fn finds_head_end() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody", 0), Some(24));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nA: b\n\nbody", 0), Some(21));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n", 0), None);
    }

    #[test]
    fn parses_request_head_with_httparse() {
        let b = b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nCookie: k=v  \r\n\r\n";
        let h = parse_request_head(b, 16);
        assert_eq!(h.anomaly, None);
        assert_eq!(span(b, h.start[0]), b"GET");
        assert_eq!(span(b, h.start[1]), b"/a?b=c");
        assert_eq!(span(b, h.start[2]), b"HTTP/1.1");
        assert_eq!(h.headers.len(), 2);
        assert_eq!(span(b, h.headers[1].1), b"k=v");
    }

    #[test]
    fn bogus_requests_are_recorded_with_an_anomaly() {
        let b = b"G{T /x HTTP/1.1\r\nHost: y\r\nno colon here\r\n\r\n";
        let h = parse_request_head(b, 16);
        assert_eq!(h.anomaly, Some(ErrorKind::Malformed));
        assert_eq!(span(b, h.start[0]), b"G{T");
        assert_eq!(h.headers.len(), 1);
        let b = b"GET /x HTTP/1.2\r\nHost: y\r\n\r\n";
        let h = parse_request_head(b, 16);
        assert_eq!(span(b, h.start[2]), b"HTTP/1.2");
        assert_eq!(h.headers.len(), 1);
        let h = parse_request_head(b"GET /old\r\n", 16);
        assert!(h.http09);
        assert_eq!(h.anomaly, None);
        // A missing target: the lone token is the version, headers are kept.
        let b = b"OPTIONS HTTP/1.1\r\nHost: www.example\r\n\r\n";
        let h = parse_request_head(b, 16);
        assert!(!h.http09);
        assert_eq!(span(b, h.start[1]), b"");
        assert_eq!(span(b, h.start[2]), b"HTTP/1.1");
        assert_eq!(h.headers.len(), 1);
        assert_eq!(h.anomaly, Some(ErrorKind::Malformed));
        // A version glued to the target, then headers: not HTTP/0.9.
        let b = b"GET /HTTP/1.1\r\nHost: www.example\r\n\r\n";
        let h = parse_request_head(b, 16);
        assert!(!h.http09);
        assert_eq!(span(b, h.start[1]), b"/HTTP/1.1");
        assert_eq!(h.headers.len(), 1);
    }

    #[test]
    fn start_lines_from_httparse_match_the_line_scanner() {
        let requests: [&[u8]; 5] = [
            b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST http://h.example/p HTTP/1.0\r\n\r\n",
            b"OPTIONS * HTTP/1.1\nHost: x\n\n",
            b"M-SEARCH /x%20y HTTP/1.1\r\nA: b\r\n\r\n",
            b"DELETE /items/7 HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ];
        for b in requests {
            let h = parse_request_head(b, 16);
            assert_eq!(h.anomaly, None, "{}", String::from_utf8_lossy(b));
            assert_eq!(h.start, start_line(b).0, "{}", String::from_utf8_lossy(b));
        }
        let responses: [&[u8]; 6] = [
            b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\n\r\n",
            b"HTTP/1.0 204\r\n\r\n",
            b"HTTP/1.1 200 \r\n\r\n",
            b"HTTP/1.1 500 Internal  Error  \r\n\r\n",
            b"HTTP/1.1 200 D\xc3\xa9j\xc3\xa0 vu\r\n\r\n",
        ];
        for b in responses {
            let h = parse_response_head(b, 16).expect("valid");
            assert_eq!(h.start, start_line(b).0, "{}", String::from_utf8_lossy(b));
            assert_eq!(
                h.status,
                u16::from(b[9] - b'0') * 100
                    + u16::from(b[10] - b'0') * 10
                    + u16::from(b[11] - b'0')
            );
        }
        // A reason httparse reports as empty (non-ASCII) keeps its bytes.
        let b = b"HTTP/1.1 200 \xffok\r\n\r\n";
        let h = parse_response_head(b, 16).expect("valid");
        assert_eq!(span(b, h.start[2]), b"\xffok");
    }

    #[test]
    fn too_many_headers_is_flagged() {
        let b = b"GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
        let h = parse_request_head(b, 2);
        assert_eq!(h.anomaly, Some(ErrorKind::TooManyHeaders));
        assert_eq!(h.headers.len(), 2);
    }

    #[test]
    fn parses_response_head() {
        let b = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let h = parse_response_head(b, 16).expect("valid");
        assert_eq!(h.status, 404);
        assert_eq!(span(b, h.start[2]), b"Not Found");
        assert_eq!(parse_response_head(b"HTTP/1.1 2x0 OK\r\n\r\n", 16), Err(ErrorKind::Malformed));
        let h = parse_response_head(b"HTTP/1.0 200\r\n\r\n", 16).expect("no reason is fine");
        assert_eq!(h.status, 200);
    }

    #[test]
    fn framing_rules() {
        let h = |v: &[(&'static [u8], &'static [u8])]| v.to_vec();
        let f = |v: Vec<(&'static [u8], &'static [u8])>, d| framing(v.into_iter(), d);
        assert_eq!(f(h(&[(b"Content-Length", b"5")]), Framing::None), (Framing::Length(5), None));
        assert_eq!(
            f(h(&[(b"Transfer-Encoding", b"gzip, chunked")]), Framing::None),
            (Framing::Chunked, None)
        );
        assert_eq!(
            f(h(&[(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"5")]), Framing::None),
            (Framing::Chunked, Some(ErrorKind::TeClConflict))
        );
        assert_eq!(
            f(h(&[(b"Content-Length", b"5"), (b"Content-Length", b"6")]), Framing::None),
            (Framing::Length(5), Some(ErrorKind::InvalidContentLength))
        );
        assert_eq!(
            f(h(&[(b"Content-Length", b"5, 5")]), Framing::None),
            (Framing::Length(5), None)
        );
        assert_eq!(f(h(&[]), Framing::UntilClose), (Framing::UntilClose, None));
        assert_eq!(
            f(h(&[(b"Content-Length", b"99999999999999999999999")]), Framing::None).1,
            Some(ErrorKind::InvalidContentLength)
        );
    }

    #[test]
    fn chunk_sizes() {
        assert_eq!(chunk_size(b"1a\r\n"), Ok(26));
        assert_eq!(chunk_size(b"1a;ext=1\r\n"), Ok(26));
        assert_eq!(chunk_size(b"ffffffffffffffff\r\n"), Ok(u64::MAX));
        assert_eq!(chunk_size(b"10000000000000000\r\n"), Err(ErrorKind::ChunkSizeOverflow));
        assert_eq!(chunk_size(b"zz\r\n"), Err(ErrorKind::InvalidChunk));
        assert_eq!(chunk_size(b"5 x\r\n"), Err(ErrorKind::InvalidChunk));
    }

    #[test]
    fn chunked_decoder_walks_a_body_with_trailers() {
        let body = b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer: 1\r\n\r\nNEXT";
        let mut st = ChunkState::default();
        let (mut pos, mut data) = (0usize, Vec::new());
        loop {
            match chunk_step(&mut st, &body[pos..]) {
                ChunkStep::Data { consumed } => {
                    data.extend_from_slice(&body[pos..pos + consumed]);
                    pos += consumed
                }
                ChunkStep::Framing { consumed } => pos += consumed,
                ChunkStep::Done { consumed } => {
                    pos += consumed;
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(data, b"abcde");
        assert_eq!(&body[pos..], b"NEXT");
    }
}
