//! The HTTP/1.x session of one flow: a parser per direction and the queue of
//! transactions between them.
//!
//! Invariants: transactions are created in request order (or for a response
//! nobody asked for), pair with responses in order (pipelining), and are
//! emitted strictly from the front once both halves are complete, so items
//! of a flow come out in request order. A direction in `Passthrough` (after
//! an Upgrade/101, a CONNECT tunnel or the end of its stream) consumes bytes
//! without parsing them. Interim 1xx responses are not final: they set the
//! transaction's `info_code` and the next response is parsed for it too.
//! A `101` to an `Upgrade: h2c` request puts both directions in `Handover`:
//! they hold their bytes (consume nothing) until the flow's session is
//! replaced by HTTP/2, which takes the upgraded request as its stream 1 and
//! replays the held bytes (`take_h2c_upgrade`).

use std::collections::VecDeque;
use std::io::Write;

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};

use super::parser::{self, chunk_step, ChunkState, ChunkStep, Framing};
use super::HttpMessage;
use crate::dissectors::{
    Confidence, Direction, Dissector, ErrorKind, FinishReason, ParseCtx, ParseResult,
};
use crate::item::{set_error, Exchange, ItemErrorKind, Message};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Idle,
    Body,
    Resync,
    Passthrough,
    /// Waiting for the flow to be handed over to HTTP/2 (h2c).
    Handover,
}

/// An HTTP/1.1 request that upgraded its connection to HTTP/2 (h2c,
/// RFC 7540 §3.2): its response comes as HTTP/2 stream 1.
#[derive(Debug, Clone, PartialEq)]
pub struct H2cUpgrade {
    pub request: HttpMessage,
    pub ts_ns: u64,
    pub size: u64,
}

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Counts and keeps decoded bytes; refuses past the decompression limit,
/// which makes the decoder stop.
struct Sink {
    kept: Vec<u8>,
    total: u64,
    keep: usize,
    max: u64,
    over: bool,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.total + b.len() as u64 > self.max {
            self.total = self.max;
            self.over = true;
            return Err(std::io::Error::other("decompression limit"));
        }
        self.total += b.len() as u64;
        let room = self.keep.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(b.get(..room.min(b.len())).unwrap_or_default());
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Gzip(GzDecoder<Sink>),
    Zlib(ZlibDecoder<Sink>),
    Deflate(DeflateDecoder<Sink>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Deflate,
}

/// Content decoding of one body; the decoder is created on the first body
/// bytes because `deflate` may or may not carry its zlib header.
pub(crate) struct Decoder {
    coding: Coding,
    inner: Option<Inner>,
    sink: Option<Sink>,
    error: Option<ErrorKind>,
}

impl Decoder {
    pub(crate) fn new(coding: Coding, keep: usize, max: u64) -> Decoder {
        Decoder {
            coding,
            inner: None,
            sink: Some(Sink { kept: Vec::new(), total: 0, keep, max, over: false }),
            error: None,
        }
    }

    pub(crate) fn write(&mut self, data: &[u8]) {
        if self.error.is_some() || data.is_empty() {
            return;
        }
        if self.inner.is_none() {
            let Some(sink) = self.sink.take() else { return };
            self.inner = Some(match self.coding {
                Coding::Gzip => Inner::Gzip(GzDecoder::new(sink)),
                Coding::Deflate => {
                    // RFC 9110 says zlib; some servers send raw deflate.
                    let b0 = data.first().copied().unwrap_or(0);
                    if b0 & 0x0f == 8 && b0 >> 4 <= 7 {
                        Inner::Zlib(ZlibDecoder::new(sink))
                    } else {
                        Inner::Deflate(DeflateDecoder::new(sink))
                    }
                }
            });
        }
        let r = match self.inner.as_mut() {
            Some(Inner::Gzip(d)) => d.write_all(data),
            Some(Inner::Zlib(d)) => d.write_all(data),
            Some(Inner::Deflate(d)) => d.write_all(data),
            None => Ok(()),
        };
        if r.is_err() {
            self.error = Some(if self.sink_ref().is_some_and(|s| s.over) {
                ErrorKind::DecompressionLimit
            } else {
                ErrorKind::Decompression
            });
        }
    }

    fn sink_ref(&self) -> Option<&Sink> {
        match &self.inner {
            Some(Inner::Gzip(d)) => Some(d.get_ref()),
            Some(Inner::Zlib(d)) => Some(d.get_ref()),
            Some(Inner::Deflate(d)) => Some(d.get_ref()),
            None => self.sink.as_ref(),
        }
    }

    /// Flushes and returns (decoded bytes kept, decoded size, error).
    pub(crate) fn finish(mut self) -> (Vec<u8>, u64, Option<ErrorKind>) {
        if self.error.is_none() {
            // A body that does not end as a complete stream is flagged; what
            // decoded so far still counts in the size.
            let r = match self.inner.as_mut() {
                Some(Inner::Gzip(d)) => d.try_finish(),
                Some(Inner::Zlib(d)) => d.try_finish(),
                Some(Inner::Deflate(d)) => d.try_finish(),
                None => Ok(()),
            };
            if r.is_err() {
                self.error = Some(ErrorKind::Decompression);
            }
        }
        let sink = match self.inner {
            Some(Inner::Gzip(d)) => d.finish().ok(),
            Some(Inner::Zlib(d)) => d.finish().ok(),
            Some(Inner::Deflate(d)) => d.finish().ok(),
            None => self.sink.take(),
        };
        match sink {
            Some(s) => (s.kept, s.total, self.error),
            None => (Vec::new(), 0, self.error),
        }
    }
}

#[derive(Default)]
struct DirParser {
    state: State,
    /// Bytes of the current head already searched for its blank line.
    scanned: usize,
    in_head: bool,
    start_ts: u64,
    /// Transaction whose message is in `Body`.
    tx: u64,
    framing: Option<Framing>,
    remaining: u64,
    chunk: ChunkState,
    decoder: Option<Box<Decoder>>,
}

struct Tx {
    id: u64,
    req: Option<HttpMessage>,
    resp: Option<HttpMessage>,
    req_done: bool,
    resp_done: bool,
    req_ts: u64,
    resp_ts: u64,
    req_size: u64,
    resp_size: u64,
    error: Option<crate::item::ItemError>,
    info_code: Option<u16>,
    head: bool,
    connect: bool,
    upgrade: bool,
    /// `Upgrade: h2c` (and HTTP/2 enabled).
    h2c: bool,
    /// `Upgrade: websocket` (and WebSocket enabled).
    websocket: bool,
    http09: bool,
}

impl Tx {
    fn new(id: u64) -> Tx {
        Tx {
            id,
            req: None,
            resp: None,
            req_done: false,
            resp_done: false,
            req_ts: 0,
            resp_ts: 0,
            req_size: 0,
            resp_size: 0,
            error: None,
            info_code: None,
            head: false,
            connect: false,
            upgrade: false,
            h2c: false,
            websocket: false,
            http09: false,
        }
    }

    fn into_exchange(self) -> Exchange {
        Exchange {
            request: self.req.map(Message::Http),
            response: self.resp.map(Message::Http),
            request_ts_ns: self.req_ts,
            response_ts_ns: self.resp_ts,
            request_size: self.req_size,
            response_size: self.resp_size,
            error: self.error,
        }
    }
}

#[derive(Default)]
pub struct HttpSession {
    dirs: [DirParser; 2],
    txs: VecDeque<Tx>,
    next_id: u64,
    h2c: Option<H2cUpgrade>,
    /// The handshake once a `101` switched the flow to WebSocket.
    ws: Option<Box<crate::dissectors::websocket::WsHandshake>>,
}

fn flag(tx: &mut Tx, errors: &mut crate::counters::DissectionErrors, kind: ErrorKind) {
    errors.bump(kind);
    set_error(&mut tx.error, ItemErrorKind::Dissection, kind.name());
}

impl HttpSession {
    pub fn new() -> Self {
        HttpSession::default()
    }

    /// Content-based detection (any port).
    pub fn probe(bytes: &[u8], dir: Direction) -> Confidence {
        parser::probe(bytes, dir)
    }

    /// The upgraded request once a `101` switched the flow to h2c: the
    /// caller replaces this session with HTTP/2.
    pub fn take_h2c_upgrade(&mut self) -> Option<H2cUpgrade> {
        self.h2c.take()
    }

    /// Transactions waiting for a half (for tests and introspection).
    pub fn pending(&self) -> usize {
        self.txs.len()
    }

    fn tx_mut(&mut self, id: u64) -> Option<&mut Tx> {
        self.txs.iter_mut().find(|t| t.id == id)
    }

    fn new_tx(&mut self) -> Tx {
        self.next_id += 1;
        Tx::new(self.next_id)
    }

    /// A request start was lost in a gap: a placeholder keeps the responses
    /// pairing in order (the one it gets is emitted without a request).
    fn lost_request(&mut self) {
        if self.txs.back().is_some_and(|t| t.req.is_none() && !t.resp_done) {
            return; // one placeholder per run of lost data
        }
        let mut tx = self.new_tx();
        tx.req_done = true;
        set_error(&mut tx.error, ItemErrorKind::Gap, "request lost in a gap");
        self.txs.push_back(tx);
    }

    fn emit_ready(&mut self, ctx: &mut ParseCtx<'_>) {
        while self.txs.front().is_some_and(|t| t.req_done && t.resp_done) {
            if let Some(tx) = self.txs.pop_front() {
                ctx.out.push(tx.into_exchange());
            }
        }
    }

    fn parse_request_head(&mut self, b: &[u8], ctx: &mut ParseCtx<'_>) -> ParseResult {
        let d = &mut self.dirs[Direction::ToServer.idx()];
        let lead = b.iter().take_while(|c| **c == b'\r' || **c == b'\n').count();
        if lead > 0 {
            return ParseResult::Continue { consumed: lead };
        }
        if self.txs.back().is_some_and(|t| t.h2c && !t.resp_done) {
            let n = b.len().min(H2_PREFACE.len());
            if b.get(..n) == H2_PREFACE.get(..n) {
                // The HTTP/2 preface before the 101 was parsed: held for
                // the HTTP/2 session.
                d.state = State::Handover;
                return ParseResult::Incomplete { consumed: 0, needed: 1 };
            }
        }
        let start = parser::request_start(b);
        if start.is_none() {
            if let Some(last) = self.txs.back() {
                if (last.upgrade || last.connect) && !last.resp_done {
                    // Bytes after an upgrade or CONNECT request that are not
                    // another request belong to the new protocol.
                    d.state = State::Passthrough;
                    return ParseResult::Continue { consumed: b.len() };
                }
            }
            let plausible = b.first().is_some_and(|c| c.is_ascii_alphabetic());
            if !plausible {
                ctx.errors.bump(ErrorKind::Malformed);
                d.state = State::Resync;
                return self.resync(Direction::ToServer, b);
            }
        }
        if !d.in_head {
            d.in_head = true;
            d.start_ts = ctx.ts_ns;
        }
        let whole = whole_head(d.scanned, || parser::whole_request_head(b, ctx.limits.max_headers));
        let found = whole
            .as_ref()
            .map(|(_, len)| *len)
            .or_else(|| parser::find_head_end(b, d.scanned.saturating_sub(3)));
        let end = match found {
            Some(e) => e,
            None => {
                // An HTTP/0.9 request is one line; wait for more only when
                // a header line follows it (a versionless request with headers).
                let first = parser::line_end(b).and_then(|le| {
                    let h = parser::parse_request_head(b.get(..le)?, 1);
                    let rest = b.get(le..).unwrap_or_default();
                    (h.http09 && !parser::looks_like_header_line(rest)).then_some(le)
                });
                match first {
                    Some(le) => le,
                    None if b.len() > ctx.limits.max_head_bytes => {
                        return ParseResult::Error(ErrorKind::HeaderTooLarge)
                    }
                    None => {
                        d.scanned = b.len();
                        return ParseResult::Incomplete { consumed: 0, needed: 1 };
                    }
                }
            }
        };
        let head = b.get(..end).unwrap_or_default();
        let h = match whole {
            Some((h, _)) => h,
            None => parser::parse_request_head(head, ctx.limits.max_headers),
        };
        let start_ts = d.start_ts;
        d.in_head = false;
        d.scanned = 0;
        let method = head.get(h.start[0].0 as usize..h.start[0].1 as usize).unwrap_or_default();
        let method_ok = method.len() <= 32 && method.iter().all(u8::is_ascii_graphic);
        let no_target = h.start[1].0 == h.start[1].1 && h.start[2].0 == h.start[2].1;
        if method.is_empty() || !method_ok || no_target {
            // Not a request line at all (e.g. mid-body after a pickup):
            // counted and skipped rather than recorded as a request.
            ctx.errors.bump(ErrorKind::Malformed);
            d.state = State::Resync;
            return ParseResult::Continue { consumed: parser::line_end(b).unwrap_or(end) };
        }
        let msg = HttpMessage {
            is_request: true,
            start: h.start,
            http09: h.http09,
            headers_size: end as u32,
            ..HttpMessage::with_head(head, &h.headers)
        };
        let (framing, anomaly) = if msg.http09 {
            (Framing::None, None)
        } else {
            parser::framing(msg.headers(), Framing::None)
        };
        if self.txs.len() >= ctx.limits.max_pending {
            // The oldest transaction is given up to bound memory.
            if let Some(mut old) = self.txs.pop_front() {
                flag(&mut old, ctx.errors, ErrorKind::TooManyTransactions);
                ctx.out.push(old.into_exchange());
            }
        }
        let mut tx = self.new_tx();
        tx.head = msg.method().eq_ignore_ascii_case(b"HEAD");
        tx.connect = msg.method().eq_ignore_ascii_case(b"CONNECT");
        let upgrade = msg.header("upgrade");
        tx.upgrade = upgrade.is_some();
        let names = |token: &[u8]| {
            upgrade.is_some_and(|v| {
                v.split(|c| *c == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
            })
        };
        tx.h2c = ctx.limits.h2c && names(b"h2c");
        tx.websocket = ctx.limits.websocket && names(b"websocket");
        tx.http09 = msg.http09;
        tx.req_ts = start_ts;
        tx.req_size = end as u64;
        for kind in [h.anomaly, anomaly].into_iter().flatten() {
            flag(&mut tx, ctx.errors, kind);
        }
        let coding = content_coding(&msg);
        tx.req = Some(msg);
        let id = tx.id;
        self.txs.push_back(tx);
        self.start_body(Direction::ToServer, id, framing, coding, ctx, end)
    }

    fn parse_response_head(&mut self, b: &[u8], ctx: &mut ParseCtx<'_>) -> ParseResult {
        let lead = b.iter().take_while(|c| **c == b'\r' || **c == b'\n').count();
        if lead > 0 {
            return ParseResult::Continue { consumed: lead };
        }
        let d = &mut self.dirs[Direction::ToClient.idx()];
        if !d.in_head {
            d.in_head = true;
            d.start_ts = ctx.ts_ns;
        }
        let start_ts = d.start_ts;
        let waiting = self.txs.iter().position(|t| !t.resp_done);
        if !parser::response_start(b) {
            if b.len() < 5 && b.eq_ignore_ascii_case(b"HTTP/".get(..b.len()).unwrap_or_default()) {
                return ParseResult::Incomplete { consumed: 0, needed: 5 - b.len() };
            }
            if let Some(i) = waiting.filter(|i| self.txs.get(*i).is_some_and(|t| t.http09)) {
                // An HTTP/0.9 response: no head, the body runs to the close.
                let id = self.txs.get(i).map_or(0, |t| t.id);
                if let Some(tx) = self.txs.get_mut(i) {
                    tx.resp_ts = start_ts;
                    tx.resp = Some(HttpMessage { http09: true, ..HttpMessage::default() });
                }
                self.dirs[Direction::ToClient.idx()].in_head = false;
                let _ = self.start_body(Direction::ToClient, id, Framing::UntilClose, None, ctx, 0);
                return self.parse_body(Direction::ToClient, b, ctx);
            }
            ctx.errors.bump(ErrorKind::Malformed);
            let d = &mut self.dirs[Direction::ToClient.idx()];
            d.in_head = false;
            d.state = State::Resync;
            return self.resync(Direction::ToClient, b);
        }
        let d = &mut self.dirs[Direction::ToClient.idx()];
        let whole =
            whole_head(d.scanned, || parser::whole_response_head(b, ctx.limits.max_headers));
        let found = whole
            .as_ref()
            .map(|(_, len)| *len)
            .or_else(|| parser::find_head_end(b, d.scanned.saturating_sub(3)));
        let Some(end) = found else {
            if b.len() > ctx.limits.max_head_bytes {
                return ParseResult::Error(ErrorKind::HeaderTooLarge);
            }
            d.scanned = b.len();
            return ParseResult::Incomplete { consumed: 0, needed: 1 };
        };
        d.in_head = false;
        d.scanned = 0;
        let head = b.get(..end).unwrap_or_default();
        let parsed = match whole {
            Some((h, _)) => Ok(h),
            None => parser::parse_response_head(head, ctx.limits.max_headers),
        };
        let h = match parsed {
            Ok(h) => h,
            Err(kind) => {
                ctx.errors.bump(kind);
                if let Some(tx) = waiting.and_then(|i| self.txs.get_mut(i)) {
                    set_error(&mut tx.error, ItemErrorKind::Dissection, kind.name());
                }
                return ParseResult::Continue { consumed: end };
            }
        };
        let idx = match waiting {
            Some(i) => i,
            None => {
                let mut tx = self.new_tx();
                tx.req_done = true;
                ctx.errors.bump(ErrorKind::Unpaired);
                set_error(&mut tx.error, ItemErrorKind::PairNotFound, "response without a request");
                self.txs.push_back(tx);
                self.txs.len() - 1
            }
        };
        let Some(tx) = self.txs.get_mut(idx) else {
            return ParseResult::Continue { consumed: end };
        };
        tx.resp_size += end as u64;
        if (100..200).contains(&h.status) && h.status != 101 {
            tx.info_code = Some(h.status);
            return ParseResult::Done { consumed: end };
        }
        let msg = HttpMessage {
            is_request: false,
            start: h.start,
            status: h.status,
            info_code: tx.info_code,
            headers_size: end as u32,
            ..HttpMessage::with_head(head, &h.headers)
        };
        let no_body = tx.head
            || h.status == 204
            || h.status == 304
            || h.status == 101
            || (tx.connect && (200..300).contains(&h.status));
        let (framing, anomaly) = if no_body {
            (Framing::None, None)
        } else {
            parser::framing(msg.headers(), Framing::UntilClose)
        };
        for kind in [h.anomaly, anomaly].into_iter().flatten() {
            flag(tx, ctx.errors, kind);
        }
        tx.resp_ts = start_ts;
        let coding = content_coding(&msg);
        tx.resp = Some(msg);
        let id = tx.id;
        self.start_body(Direction::ToClient, id, framing, coding, ctx, end)
    }

    fn start_body(
        &mut self,
        dir: Direction,
        id: u64,
        framing: Framing,
        coding: Option<Coding>,
        ctx: &mut ParseCtx<'_>,
        consumed: usize,
    ) -> ParseResult {
        let d = &mut self.dirs[dir.idx()];
        d.tx = id;
        d.chunk = ChunkState::default();
        d.decoder = coding.map(|c| {
            Box::new(Decoder::new(c, ctx.limits.max_body_bytes, ctx.limits.max_decompressed_bytes))
        });
        match framing {
            Framing::None | Framing::Length(0) => {
                d.framing = None;
                self.complete(dir, None, ctx);
                ParseResult::Done { consumed }
            }
            f => {
                d.framing = Some(f);
                d.remaining = if let Framing::Length(n) = f { n } else { 0 };
                d.state = State::Body;
                if let (Framing::Length(n), None) = (f, d.decoder.as_ref()) {
                    // The kept body's size is known: one allocation of it
                    // (at most max_body_bytes) rather than doubling as the
                    // segments arrive, a copy of the body per doubling.
                    let keep =
                        usize::try_from(n).unwrap_or(usize::MAX).min(ctx.limits.max_body_bytes);
                    if let Some(m) =
                        self.txs.iter_mut().find(|t| t.id == id).and_then(|t| match dir {
                            Direction::ToServer => t.req.as_mut(),
                            Direction::ToClient => t.resp.as_mut(),
                        })
                    {
                        m.body.reserve_exact(keep.saturating_sub(m.body.len()));
                    }
                }
                ParseResult::Continue { consumed }
            }
        }
    }

    /// Ends the message in `Body` (or one without a body) of `dir`.
    fn complete(&mut self, dir: Direction, error: Option<ErrorKind>, ctx: &mut ParseCtx<'_>) {
        let d = &mut self.dirs[dir.idx()];
        d.state = State::Idle;
        d.framing = None;
        let id = d.tx;
        let decoded = d.decoder.take().map(|dec| dec.finish());
        let mut upgraded = false;
        let mut h2c = false;
        if let Some(tx) = self.tx_mut(id) {
            if let Some(kind) = error {
                flag(tx, ctx.errors, kind);
            }
            let (done, msg) = match dir {
                Direction::ToServer => (&mut tx.req_done, tx.req.as_mut()),
                Direction::ToClient => (&mut tx.resp_done, tx.resp.as_mut()),
            };
            *done = true;
            if let Some(m) = msg {
                match decoded {
                    Some((kept, size, err)) => {
                        m.body = kept;
                        m.content_size = size;
                        m.body_truncated = size as usize > m.body.len();
                        if let Some(kind) = err {
                            ctx.errors.bump(kind);
                            set_error(&mut tx.error, ItemErrorKind::Dissection, kind.name());
                        }
                    }
                    None => m.content_size = m.body_size,
                }
            }
            if dir == Direction::ToClient {
                let status = tx.resp.as_ref().map_or(0, |m| m.status);
                upgraded = status == 101 || (tx.connect && (200..300).contains(&status));
                if status == 101 && tx.h2c {
                    h2c = true;
                    if let Some(req) = tx.req.clone() {
                        self.h2c =
                            Some(H2cUpgrade { request: req, ts_ns: tx.req_ts, size: tx.req_size });
                    }
                } else if status == 101 && tx.websocket {
                    if let (Some(req), Some(resp)) = (tx.req.as_ref(), tx.resp.as_ref()) {
                        h2c = true;
                        self.ws =
                            Some(Box::new(crate::dissectors::websocket::handshake(req, resp)));
                    }
                }
            }
        }
        if upgraded {
            for d in &mut self.dirs {
                // h2c or WebSocket: held for the session taking over.
                d.state = if h2c { State::Handover } else { State::Passthrough };
            }
        }
        self.emit_ready(ctx);
    }

    fn add_body(
        &mut self,
        dir: Direction,
        data: &[u8],
        wire: u64,
        lost: u64,
        ctx: &mut ParseCtx<'_>,
    ) {
        let keep = ctx.limits.max_body_bytes;
        let d = &mut self.dirs[dir.idx()];
        let id = d.tx;
        if let Some(dec) = d.decoder.as_mut() {
            dec.write(data);
        }
        let decoding = d.decoder.is_some();
        if let Some(tx) = self.txs.iter_mut().find(|t| t.id == id) {
            let (size, msg) = match dir {
                Direction::ToServer => (&mut tx.req_size, tx.req.as_mut()),
                Direction::ToClient => (&mut tx.resp_size, tx.resp.as_mut()),
            };
            *size += wire;
            if let Some(m) = msg {
                m.body_size += data.len() as u64 + lost;
                if !decoding {
                    let room = keep.saturating_sub(m.body.len());
                    m.body.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
                    m.body_truncated |= data.len() > room;
                }
            }
        }
    }

    fn parse_body(&mut self, dir: Direction, b: &[u8], ctx: &mut ParseCtx<'_>) -> ParseResult {
        let d = &mut self.dirs[dir.idx()];
        match d.framing {
            Some(Framing::Length(_)) => {
                let n = d.remaining.min(b.len() as u64);
                d.remaining -= n;
                let done = d.remaining == 0;
                let data = b.get(..n as usize).unwrap_or_default();
                self.add_body(dir, data, n, 0, ctx);
                if done {
                    self.complete(dir, None, ctx);
                    ParseResult::Done { consumed: n as usize }
                } else {
                    ParseResult::Continue { consumed: n as usize }
                }
            }
            Some(Framing::Chunked) => loop {
                let d = &mut self.dirs[dir.idx()];
                match chunk_step(&mut d.chunk, b) {
                    ChunkStep::Data { consumed } => {
                        self.add_body(
                            dir,
                            b.get(..consumed).unwrap_or_default(),
                            consumed as u64,
                            0,
                            ctx,
                        );
                        return ParseResult::Continue { consumed };
                    }
                    ChunkStep::Framing { consumed: 0 } => continue,
                    ChunkStep::Framing { consumed } => {
                        self.add_body(dir, &[], consumed as u64, 0, ctx);
                        return ParseResult::Continue { consumed };
                    }
                    ChunkStep::Done { consumed } => {
                        self.add_body(dir, &[], consumed as u64, 0, ctx);
                        self.complete(dir, None, ctx);
                        return ParseResult::Done { consumed };
                    }
                    ChunkStep::NeedMore => {
                        return ParseResult::Incomplete { consumed: 0, needed: 1 }
                    }
                    ChunkStep::Error { kind, consumed } => {
                        // The message ends at the broken framing; what follows
                        // is parsed as the next message (as Zeek does with a
                        // 2^64 chunk size, which exposes a smuggled request).
                        self.add_body(dir, &[], consumed as u64, 0, ctx);
                        self.complete(dir, Some(kind), ctx);
                        return ParseResult::Done { consumed };
                    }
                }
            },
            Some(Framing::UntilClose) => {
                self.add_body(dir, b, b.len() as u64, 0, ctx);
                ParseResult::Continue { consumed: b.len() }
            }
            Some(Framing::None) | None => {
                self.complete(dir, None, ctx);
                ParseResult::Continue { consumed: 0 }
            }
        }
    }

    /// Skips to the next line that starts a message.
    fn resync(&mut self, dir: Direction, b: &[u8]) -> ParseResult {
        let starts = |x: &[u8]| match dir {
            Direction::ToServer => parser::request_start(x).is_some(),
            Direction::ToClient => parser::response_start(x),
        };
        if starts(b) {
            // Consuming nothing tells `parse` to go on through `Idle`.
            self.dirs[dir.idx()].state = State::Idle;
            return ParseResult::Continue { consumed: 0 };
        }
        match parser::line_end(b) {
            Some(e) => ParseResult::Continue { consumed: e },
            None => ParseResult::Continue { consumed: b.len() },
        }
    }
}

/// A head httparse reads whole from the buffer, with its length: it
/// needs no scan for its end first. Tried on a head's first bytes only: a
/// head still incomplete then is found by the incremental scan from
/// `scanned` on and parsed once, not parsed again from its start with
/// every segment that adds to it.
fn whole_head(
    scanned: usize,
    parse: impl FnOnce() -> Option<(parser::Head, usize)>,
) -> Option<(parser::Head, usize)> {
    if scanned == 0 {
        parse()
    } else {
        None
    }
}

fn content_coding(m: &HttpMessage) -> Option<Coding> {
    coding(m.header("content-encoding")?)
}

/// The content coding a `Content-Encoding` value names, if decoded here.
pub(crate) fn coding(v: &[u8]) -> Option<Coding> {
    let v = v.trim_ascii();
    if v.eq_ignore_ascii_case(b"gzip") || v.eq_ignore_ascii_case(b"x-gzip") {
        Some(Coding::Gzip)
    } else if v.eq_ignore_ascii_case(b"deflate") {
        Some(Coding::Deflate)
    } else {
        None
    }
}

impl Dissector for HttpSession {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if b.is_empty() {
            return ParseResult::Incomplete { consumed: 0, needed: 1 };
        }
        match self.dirs[dir.idx()].state {
            State::Passthrough => ParseResult::Continue { consumed: b.len() },
            // Held for the HTTP/2 session that replaces this one.
            State::Handover => ParseResult::Incomplete { consumed: 0, needed: 1 },
            State::Body => self.parse_body(dir, b, ctx),
            State::Resync => match self.resync(dir, b) {
                ParseResult::Continue { consumed: 0 } => self.parse(b, dir, ctx),
                r => r,
            },
            State::Idle => match dir {
                Direction::ToServer => self.parse_request_head(b, ctx),
                Direction::ToClient => self.parse_response_head(b, ctx),
            },
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u32, ctx: &mut ParseCtx<'_>) {
        let d = &mut self.dirs[dir.idx()];
        let id = d.tx;
        let len = u64::from(len);
        match (d.state, d.framing) {
            (State::Body, Some(Framing::Length(_))) => {
                let n = d.remaining.min(len);
                d.remaining -= n;
                d.decoder = None;
                let done = d.remaining == 0;
                self.add_body(dir, &[], n, n, ctx);
                if let Some(tx) = self.tx_mut(id) {
                    set_error(&mut tx.error, ItemErrorKind::Gap, format!("{n} bytes of body lost"));
                }
                if done {
                    self.complete(dir, None, ctx);
                    if len > n {
                        self.dirs[dir.idx()].state = State::Resync;
                        if dir == Direction::ToServer {
                            self.lost_request();
                        }
                    }
                }
            }
            (State::Body, Some(Framing::Chunked)) if matches!(d.chunk, ChunkState::Data(_)) => {
                let ChunkState::Data(rem) = d.chunk else { return };
                let n = rem.min(len);
                d.chunk = if n == rem { ChunkState::DataEnd } else { ChunkState::Data(rem - n) };
                d.decoder = None;
                self.add_body(dir, &[], n, n, ctx);
                if let Some(tx) = self.tx_mut(id) {
                    set_error(&mut tx.error, ItemErrorKind::Gap, format!("{n} bytes of body lost"));
                }
                if len > n {
                    self.complete(dir, None, ctx);
                    self.dirs[dir.idx()].state = State::Resync;
                    if dir == Direction::ToServer {
                        self.lost_request();
                    }
                }
            }
            (State::Body, Some(Framing::UntilClose)) => {
                d.decoder = None;
                self.add_body(dir, &[], len, len, ctx);
                if let Some(tx) = self.tx_mut(id) {
                    set_error(
                        &mut tx.error,
                        ItemErrorKind::Gap,
                        format!("{len} bytes of body lost"),
                    );
                }
            }
            (State::Body, _) => {
                if let Some(tx) = self.tx_mut(id) {
                    set_error(
                        &mut tx.error,
                        ItemErrorKind::Gap,
                        "stream lost inside chunk framing",
                    );
                }
                self.complete(dir, None, ctx);
                self.dirs[dir.idx()].state = State::Resync;
            }
            (State::Passthrough, _) | (State::Handover, _) => {}
            (State::Idle, _) | (State::Resync, _) => {
                d.in_head = false;
                d.scanned = 0;
                d.state = State::Resync;
                if dir == Direction::ToServer {
                    self.lost_request();
                } else {
                    // A response may have been lost: the next one seen would
                    // pair with the wrong request, so say so on the oldest.
                    if let Some(tx) = self.txs.iter_mut().find(|t| !t.resp_done) {
                        set_error(&mut tx.error, ItemErrorKind::Gap, "response stream lost data");
                    }
                }
            }
        }
    }

    fn on_end(&mut self, dir: Direction, ctx: &mut ParseCtx<'_>) {
        let d = &self.dirs[dir.idx()];
        if d.state == State::Body {
            let truncated = !matches!(d.framing, Some(Framing::UntilClose));
            self.complete(dir, truncated.then_some(ErrorKind::TruncatedMessage), ctx);
        } else if d.in_head {
            ctx.errors.bump(ErrorKind::TruncatedMessage);
        }
        self.dirs[dir.idx()].state = State::Passthrough;
    }

    /// After a `101` to h2c, the flow continues as HTTP/2; to WebSocket, as
    /// WebSocket.
    #[inline]
    fn handover(&mut self, ctx: &mut ParseCtx<'_>) -> Option<crate::dissectors::Session> {
        if let Some(hs) = self.ws.take() {
            return Some(crate::dissectors::Session::Websocket(Box::new(
                crate::dissectors::websocket::WsSession::new(Some(*hs)),
            )));
        }
        let up = self.take_h2c_upgrade()?;
        Some(crate::dissectors::Session::Http2(crate::dissectors::http2::Http2Session::upgraded(
            up, ctx,
        )))
    }

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            if self.dirs[dir.idx()].state == State::Body {
                self.on_end(dir, ctx);
            }
        }
        while let Some(mut tx) = self.txs.pop_front() {
            if tx.req.is_none() && tx.resp.is_none() {
                continue; // a lost-request placeholder nothing answered
            }
            if tx.req.is_some() && tx.resp.is_none() {
                match reason {
                    FinishReason::Timeout => set_error(
                        &mut tx.error,
                        ItemErrorKind::Timeout,
                        "no response before the flow timed out",
                    ),
                    FinishReason::Closed => {
                        ctx.errors.bump(ErrorKind::Unpaired);
                        set_error(
                            &mut tx.error,
                            ItemErrorKind::PairNotFound,
                            "connection closed without a response",
                        )
                    }
                }
            }
            ctx.out.push(tx.into_exchange());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::DissectionErrors;
    use crate::dissectors::{drive, Limits, StreamBuf};

    enum Step<'a> {
        C(&'a [u8]),
        S(&'a [u8]),
        GapC(u32),
        GapS(u32),
        EndS,
    }
    use Step::*;

    struct Run {
        out: Vec<Exchange>,
        errors: DissectionErrors,
    }

    fn run(steps: &[Step<'_>], reason: FinishReason) -> Run {
        let mut out = Vec::new();
        let mut errors = DissectionErrors::default();
        let limits = Limits { max_body_bytes: 64, ..Limits::default() };
        let mut s = HttpSession::new();
        let mut bufs = [StreamBuf::default(), StreamBuf::default()];
        for (i, st) in steps.iter().enumerate() {
            let mut ctx = ParseCtx {
                ts_ns: i as u64 * 1_000_000,
                out: &mut out,
                errors: &mut errors,
                limits: &limits,
            };
            match st {
                C(b) => drive(&mut s, &mut bufs[0], Direction::ToServer, b, 1 << 16, &mut ctx),
                S(b) => drive(&mut s, &mut bufs[1], Direction::ToClient, b, 1 << 16, &mut ctx),
                GapC(n) => {
                    bufs[0].clear();
                    s.on_gap(Direction::ToServer, *n, &mut ctx)
                }
                GapS(n) => {
                    bufs[1].clear();
                    s.on_gap(Direction::ToClient, *n, &mut ctx)
                }
                EndS => s.on_end(Direction::ToClient, &mut ctx),
            }
        }
        let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits: &limits };
        s.finish(reason, &mut ctx);
        Run { out, errors }
    }

    fn req(e: &Exchange) -> &HttpMessage {
        match &e.request {
            Some(Message::Http(m)) => m,
            _ => panic!("no request"),
        }
    }

    fn resp(e: &Exchange) -> &HttpMessage {
        match &e.response {
            Some(Message::Http(m)) => m,
            _ => panic!("no response"),
        }
    }

    #[test]
    fn keep_alive_pipelining_chunked_with_trailers() {
        let r = run(
            &[
                C(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nxyz"),
                S(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"),
                S(b"loHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"),
                S(b"2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n"),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(r.out.len(), 2);
        assert_eq!(req(&r.out[0]).target(), b"/a");
        assert_eq!(resp(&r.out[0]).body, b"hello");
        assert_eq!(req(&r.out[1]).body, b"xyz");
        assert_eq!(r.out[1].request_size, 48 + 3);
        let m = resp(&r.out[1]);
        assert_eq!((m.status, m.body_size, m.content_size), (201, 5, 5));
        assert_eq!(m.body, b"abcde");
        assert!(r.out.iter().all(|e| e.error.is_none()));
        assert_eq!(r.out[0].response_ts_ns - r.out[0].request_ts_ns, 1_000_000);
    }

    /// Heads that arrive whole and heads that arrive a few bytes at a time
    /// (found by the incremental scan, parsed once) give the same messages,
    /// a lenient head among them.
    #[test]
    fn heads_split_over_segments_parse_as_whole_ones() {
        let client: &[u8] = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nX-Bad header\r\nContent-Length: 3\r\n\r\nxyz";
        let server: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Fold: a\r\n b\r\n\r\nhiHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let shape = |r: &Run| -> Vec<String> {
            let mut v: Vec<String> = r
                .out
                .iter()
                .map(|e| {
                    let (q, a) = (req(e), resp(e));
                    format!(
                        "{:?} {:?} {:?} {} {:?} {:?} {}",
                        q.start,
                        q.header_spans().collect::<Vec<_>>(),
                        q.body,
                        a.status,
                        a.header_spans().collect::<Vec<_>>(),
                        a.body,
                        e.request_size + e.response_size
                    )
                })
                .collect();
            v.push(format!("{:?}", r.errors));
            v
        };
        let whole = run(&[C(client), S(server)], FinishReason::Timeout);
        assert_eq!(whole.out.len(), 2);
        for n in [1, 3, 7] {
            let mut steps: Vec<Step<'_>> = client.chunks(n).map(C).collect();
            steps.extend(server.chunks(n).map(S));
            assert_eq!(
                shape(&run(&steps, FinishReason::Timeout)),
                shape(&whole),
                "{n}-byte segments"
            );
        }
    }

    #[test]
    fn no_body_for_head_204_304() {
        let r = run(
            &[
                C(b"HEAD / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n"),
                S(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
                S(b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(r.out.len(), 3);
        assert_eq!(resp(&r.out[0]).body_size, 0);
        assert_eq!(resp(&r.out[2]).status, 304);
        assert!(r.out.iter().all(|e| e.error.is_none()), "{:?}", r.out);
    }

    #[test]
    fn expect_100_continue_records_info_code() {
        let r = run(
            &[
                C(b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
                S(b"HTTP/1.1 100 Continue\r\n\r\n"),
                C(b"data"),
                S(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(r.out.len(), 1);
        let m = resp(&r.out[0]);
        assert_eq!((m.status, m.info_code), (200, Some(100)));
        assert_eq!(req(&r.out[0]).body, b"data");
        assert_eq!(r.out[0].response_size, 25 + 38 + 2);
    }

    #[test]
    fn upgrade_101_stops_http_parsing() {
        let r = run(
            &[
                C(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
                S(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
                C(b"\x81\x85abcdefghi"),
                S(b"HTTP/1.1 200 OK\r\n\r\n"),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(r.out.len(), 1);
        assert_eq!(resp(&r.out[0]).status, 101);
        assert_eq!(r.errors.total(), 0);
    }

    #[test]
    fn body_ended_by_close_and_http10() {
        let r = run(
            &[C(b"GET / HTTP/1.0\r\n\r\n"), S(b"HTTP/1.0 200 OK\r\n\r\nall of "), S(b"this"), EndS],
            FinishReason::Closed,
        );
        assert_eq!(r.out.len(), 1);
        assert_eq!(resp(&r.out[0]).body, b"all of this");
        assert!(r.out[0].error.is_none());
    }

    #[test]
    fn gzip_and_deflate_decoded_sizes() {
        use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
        let plain = vec![b'a'; 1000];
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap();
        let z = z.finish().unwrap();
        let mut raw = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&plain).unwrap();
        let raw = raw.finish().unwrap();
        for (enc, body) in [("gzip", gz), ("deflate", z), ("deflate", raw)] {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: {enc}\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let mut s = head.into_bytes();
            s.extend_from_slice(&body);
            let r = run(&[C(b"GET / HTTP/1.1\r\n\r\n"), S(&s)], FinishReason::Timeout);
            let m = resp(&r.out[0]);
            assert_eq!(m.body_size, body.len() as u64);
            assert_eq!(m.content_size, 1000, "{enc}");
            assert_eq!(m.body.len(), 64, "kept bytes bounded by max_body_bytes");
            assert!(m.body_truncated);
            assert!(r.out[0].error.is_none());
        }
        let r = run(
            &[
                C(b"GET / HTTP/1.1\r\n\r\n"),
                S(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope"),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(r.errors.get(ErrorKind::Decompression), 1);
    }

    #[test]
    fn smuggling_shapes_are_flagged_and_parsing_goes_on() {
        let r = run(
            &[
                C(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                C(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(r.out.len(), 3);
        assert_eq!(r.out[0].error.as_ref().map(|e| e.msg.as_ref()), Some("te_cl_conflict"));
        assert_eq!(r.out[1].error.as_ref().map(|e| e.msg.as_ref()), Some("chunk_size_overflow"));
        assert_eq!(req(&r.out[2]).target(), b"/smuggled");
        assert_eq!(r.errors.get(ErrorKind::ChunkSizeOverflow), 1);
        assert_eq!(r.out[2].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Timeout));
    }

    #[test]
    fn http09_and_bogus_methods_are_recorded() {
        let r = run(&[C(b"GET /old\r\n"), S(b"<html>hi</html>"), EndS], FinishReason::Closed);
        assert_eq!(r.out.len(), 1);
        assert!(req(&r.out[0]).http09);
        assert_eq!(resp(&r.out[0]).body, b"<html>hi</html>");
        let r =
            run(&[C(b"G{T /x HTTP/1.1\r\n\r\nQUERY /q HTTP/1.1\r\n\r\n")], FinishReason::Timeout);
        assert_eq!(r.out.len(), 2);
        assert_eq!(req(&r.out[0]).method(), b"G{T");
        assert_eq!(r.out[0].error.as_ref().map(|e| e.msg.as_ref()), Some("malformed"));
        assert_eq!(req(&r.out[1]).method(), b"QUERY");
        // A version glued to the target, then headers: the server's full
        // response is parsed as HTTP/1.x, not swallowed as an HTTP/0.9 body.
        let r = run(
            &[
                C(b"GET /HTTP/1.1\r\nHost: h\r\n\r\n"),
                S(b"HTTP/1.0 403 Forbidden\r\nContent-Length: 2\r\n\r\nno"),
                EndS,
            ],
            FinishReason::Closed,
        );
        assert_eq!(r.out.len(), 1);
        assert_eq!(req(&r.out[0]).header("host"), Some(&b"h"[..]));
        assert_eq!(resp(&r.out[0]).status, 403);
        assert_eq!(resp(&r.out[0]).body, b"no");
    }

    #[test]
    fn gaps_in_bodies_and_heads() {
        let r = run(
            &[
                C(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n"),
                S(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"),
                GapS(5),
                S(b"hij"),
                S(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(r.out.len(), 2);
        assert_eq!(resp(&r.out[0]).body_size, 10);
        assert_eq!(r.out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Gap));
        assert!(r.out[1].error.is_none());
        // A gap in a head: resynchronise on the next request line.
        let r = run(
            &[
                C(b"GET /lost HTTP/1.1\r\nHo"),
                GapC(40),
                C(b"st: x\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(r.out.len(), 1);
        assert_eq!(req(&r.out[0]).target(), b"/next");
    }

    #[test]
    fn unpaired_and_unanswered() {
        let r = run(&[S(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")], FinishReason::Timeout);
        assert_eq!(r.out.len(), 1);
        assert!(r.out[0].request.is_none());
        assert_eq!(r.out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
        let r = run(&[C(b"GET / HTTP/1.1\r\n\r\n")], FinishReason::Closed);
        assert_eq!(r.out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
        let r = run(&[C(b"GET / HTTP/1.1\r\n\r\n")], FinishReason::Timeout);
        assert_eq!(r.out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Timeout));
    }

    #[test]
    fn oversized_head_is_an_error_not_a_panic() {
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'a', 70_000));
        let r = run(&[C(&big)], FinishReason::Timeout);
        assert!(r.out.is_empty());
        assert_eq!(
            r.errors.get(ErrorKind::HeaderTooLarge) + r.errors.get(ErrorKind::BufferLimit),
            1
        );
    }

    #[test]
    fn json_shape_of_a_request() {
        let r = run(
            &[C(b"GET /api/v1/items?id=1&q=a%20b HTTP/1.1\r\nHost: example.com\r\nCookie: s=1; t=2\r\n\r\n"), S(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: k=v; Path=/\r\nContent-Length: 2\r\n\r\nhi")],
            FinishReason::Timeout,
        );
        let j = crate::dissectors::http::request_json(req(&r.out[0]));
        assert_eq!(j["method"], "GET");
        assert_eq!(j["path"], "/api/v1/items");
        assert_eq!(j["pathSegments"], serde_json::json!(["api", "v1", "items"]));
        assert_eq!(j["queryString"]["q"], "a b");
        assert_eq!(j["cookies"]["t"], "2");
        assert_eq!(j["targetUri"], "http://example.com/api/v1/items?id=1&q=a%20b");
        assert_eq!(j["httpVersion"], "HTTP/1.1");
        let j = crate::dissectors::http::response_json(resp(&r.out[0]));
        assert_eq!(j["status"], 200);
        assert_eq!(j["statusText"], "OK");
        assert_eq!(j["content"]["text"], "hi");
        assert_eq!(j["content"]["mimeType"], "text/plain");
        assert_eq!(j["cookies"]["k"], "v");
    }
}
