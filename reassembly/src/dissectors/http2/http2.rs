//! The HTTP/2 session of one connection: frames of both directions, an
//! HPACK decoder per direction, and the open streams.
//!
//! Invariants: a direction's HPACK table is known only if that direction
//! was seen from its first frame (the client's preface; the server's
//! initial SETTINGS after it, or after an h2c upgrade); otherwise, and
//! after any lost data or undecodable block, headers referring to unseen
//! entries are left out and the item says so. DATA payloads stream through
//! (never buffered); only a header block (HEADERS/PUSH_PROMISE plus
//! CONTINUATIONs) is held whole, up to the message buffer limit. A stream
//! becomes an item when both sides ended it (END_STREAM or RST_STREAM), or
//! when the flow ends; at most `max_http2_streams` are open at once.

use super::hpack::Decoder as Hpack;
use super::parser::{self, flags, frame_type, GrpcFramer, HEADER_LEN, PREFACE};
use super::{GrpcInfo, GrpcMessage, Http2Message};
use crate::dissectors::http::http::{coding, Decoder as BodyDecoder, H2cUpgrade};
use crate::dissectors::{
    Confidence, Direction, Dissector, ErrorKind, FinishReason, ParseCtx, ParseResult,
};
use crate::item::{set_error, Exchange, ItemError, ItemErrorKind, Message};

#[derive(Default)]
struct Half {
    msg: Http2Message,
    /// A header block (the message's head) was seen.
    started: bool,
    ended: bool,
    ts: u64,
    wire: u64,
    body: Option<Box<BodyDecoder>>,
    coding_checked: bool,
    grpc: GrpcFramer,
    /// Data of this side was lost: gRPC framing cannot be checked.
    lost: bool,
}

struct Stream {
    id: u32,
    halves: [Half; 2],
    grpc: bool,
    error: Option<ItemError>,
}

struct DataFrame {
    stream: u32,
    remaining: u32,
    pad: u32,
    end: bool,
}

struct BlockState {
    stream: u32,
    promised: Option<u32>,
    end_stream: bool,
    bytes: Vec<u8>,
    wire: u64,
}

#[derive(Default)]
struct Dir {
    /// Decided by the first frame of the direction.
    hpack: Option<Hpack>,
    data: Option<DataFrame>,
    /// Payload bytes of the current frame still to skip, and the stream
    /// they count for (0: none).
    skip: (u64, u32),
    block: Option<BlockState>,
    resync: bool,
}

#[derive(Default)]
pub struct Http2Session {
    dirs: [Dir; 2],
    /// Open streams, oldest first.
    streams: Vec<Stream>,
    /// The connection was seen from its start (an h2c upgrade).
    from_start: bool,
    /// The client sent the preface: its HPACK table is known.
    preface: bool,
}

fn header_is(fields: &[(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<Vec<u8>> {
    fields.iter().find(|(n, _)| n.as_slice() == name).map(|(_, v)| v.clone())
}

fn is_grpc(fields: &[(Vec<u8>, Vec<u8>)]) -> bool {
    header_is(fields, b"content-type")
        .is_some_and(|v| v.len() >= 16 && v[..16].eq_ignore_ascii_case(b"application/grpc"))
}

impl Http2Session {
    pub fn new() -> Self {
        Http2Session::default()
    }

    /// Content-based detection: the preface, or frames back to back.
    pub fn probe(bytes: &[u8], _dir: Direction) -> Confidence {
        parser::probe(bytes)
    }

    /// Takes over a connection upgraded from HTTP/1.1 (h2c): the upgraded
    /// request is stream 1, whose response comes over HTTP/2.
    pub fn upgraded(up: H2cUpgrade, ctx: &mut ParseCtx<'_>) -> Self {
        let mut s = Http2Session { from_start: true, ..Http2Session::default() };
        let r = &up.request;
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b":method".to_vec(), r.method().to_vec()),
            (b":path".to_vec(), r.target().to_vec()),
            (b":scheme".to_vec(), b"http".to_vec()),
        ];
        if let Some(h) = r.header("host") {
            fields.push((b":authority".to_vec(), h.to_vec()));
        }
        for (n, v) in r.headers() {
            // Connection-specific fields stay with HTTP/1.1 (RFC 9113 §8.2.2).
            let skip = [
                &b"connection"[..],
                b"upgrade",
                b"http2-settings",
                b"host",
                b"keep-alive",
                b"transfer-encoding",
            ];
            if !skip.iter().any(|x| n.eq_ignore_ascii_case(x)) {
                fields.push((n.to_ascii_lowercase(), v.to_vec()));
            }
        }
        let grpc = ctx.limits.grpc && is_grpc(&fields);
        let mut req =
            Half { started: true, ended: true, ts: up.ts_ns, wire: up.size, ..Half::default() };
        req.msg = Http2Message {
            is_request: true,
            stream_id: 1,
            headers: fields,
            headers_size: r.headers_size,
            ..Http2Message::default()
        };
        s.streams.push(Stream { id: 1, halves: [req, Half::default()], grpc, error: None });
        s
    }

    fn stream_idx(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    /// The stream of that id, created if new (the oldest open one is
    /// emitted first when `max_http2_streams` are open).
    fn stream_or_new(&mut self, id: u32, ctx: &mut ParseCtx<'_>) -> usize {
        if let Some(i) = self.stream_idx(id) {
            return i;
        }
        if self.streams.len() >= ctx.limits.max_http2_streams && !self.streams.is_empty() {
            let mut old = self.streams.remove(0);
            ctx.errors.bump(ErrorKind::TooManyStreams);
            set_error(&mut old.error, ItemErrorKind::Dissection, ErrorKind::TooManyStreams.name());
            self.emit(old, None, ctx);
        }
        self.streams.push(Stream {
            id,
            halves: [Half::default(), Half::default()],
            grpc: false,
            error: None,
        });
        self.streams.len() - 1
    }

    fn credit(&mut self, dir: Direction, id: u32, wire: u64) {
        if let Some(i) = self.stream_idx(id) {
            if let Some(h) = self.streams.get_mut(i).and_then(|s| s.halves.get_mut(dir.idx())) {
                h.wire += wire;
            }
        }
    }

    /// Emits a stream as an item; `finish` says why an open one ends.
    fn emit(&mut self, st: Stream, finish: Option<FinishReason>, ctx: &mut ParseCtx<'_>) {
        let Stream { id, halves, grpc, mut error } = st;
        let [mut req, mut resp] = halves;
        let mut framing_bad = false;
        for h in [&mut req, &mut resp] {
            h.msg.stream_id = id;
            match h.body.take() {
                Some(dec) => {
                    let (kept, size, err) = dec.finish();
                    h.msg.body = kept;
                    h.msg.content_size = size;
                    h.msg.body_truncated = size as usize > h.msg.body.len();
                    if let Some(kind) = err {
                        ctx.errors.bump(kind);
                        set_error(&mut error, ItemErrorKind::Dissection, kind.name());
                    }
                }
                None => h.msg.content_size = h.msg.body_size,
            }
            if grpc && h.ended && !h.lost && !h.grpc.aligned() {
                framing_bad = true;
            }
        }
        if framing_bad {
            ctx.errors.bump(ErrorKind::GrpcFraming);
            set_error(&mut error, ItemErrorKind::Dissection, ErrorKind::GrpcFraming.name());
        }
        match (req.started, resp.started) {
            (false, true) => {
                ctx.errors.bump(ErrorKind::Unpaired);
                set_error(
                    &mut error,
                    ItemErrorKind::PairNotFound,
                    "response on a stream whose request was not captured",
                );
            }
            (true, false) if req.msg.reset.is_some() || resp.msg.reset.is_some() => {
                set_error(
                    &mut error,
                    ItemErrorKind::PairNotFound,
                    "stream reset before a response",
                );
            }
            (true, false) => match finish {
                Some(FinishReason::Timeout) => set_error(
                    &mut error,
                    ItemErrorKind::Timeout,
                    "no response before the flow timed out",
                ),
                _ => {
                    ctx.errors.bump(ErrorKind::Unpaired);
                    set_error(
                        &mut error,
                        ItemErrorKind::PairNotFound,
                        "connection closed without a response",
                    );
                }
            },
            (true, true) if !resp.ended && finish == Some(FinishReason::Timeout) => {
                set_error(
                    &mut error,
                    ItemErrorKind::Timeout,
                    "stream still open when the flow timed out",
                );
            }
            _ => {}
        }
        let wrap = |h: Half, request: bool| -> Option<Message> {
            if !h.started {
                return None;
            }
            let mut msg = h.msg;
            msg.is_request = request;
            if !grpc {
                return Some(Message::Http2(msg));
            }
            let mut info = GrpcInfo {
                messages: h.grpc.messages,
                compressed: h.grpc.compressed,
                ..GrpcInfo::default()
            };
            if request {
                if let Some((svc, m)) = msg.header(":path").and_then(parser::grpc_service_method) {
                    info.service = Some(svc.to_vec());
                    info.method = Some(m.to_vec());
                }
            } else {
                // Trailers carry the status; a trailers-only response has
                // it in its headers.
                let status = msg.trailer("grpc-status").or(msg.header("grpc-status"));
                info.status = status.and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok());
                info.message =
                    msg.trailer("grpc-message").or(msg.header("grpc-message")).map(<[u8]>::to_vec);
            }
            Some(Message::Grpc(Box::new(GrpcMessage { http: msg, grpc: info })))
        };
        let (req_ts, resp_ts, req_wire, resp_wire) = (req.ts, resp.ts, req.wire, resp.wire);
        let request = wrap(req, true);
        let response = wrap(resp, false);
        ctx.out.push(Exchange {
            request,
            response,
            request_ts_ns: req_ts,
            response_ts_ns: resp_ts,
            request_size: req_wire,
            response_size: resp_wire,
            error,
        });
    }

    fn maybe_complete(&mut self, i: usize, ctx: &mut ParseCtx<'_>) {
        let done = self.streams.get(i).is_some_and(|s| {
            let [q, r] = &s.halves;
            r.ended && (q.ended || !q.started)
        });
        if done {
            let st = self.streams.remove(i);
            self.emit(st, None, ctx);
        }
    }

    fn end_half(&mut self, dir: Direction, id: u32, ctx: &mut ParseCtx<'_>) {
        let Some(i) = self.stream_idx(id) else { return };
        if let Some(h) = self.streams.get_mut(i).and_then(|s| s.halves.get_mut(dir.idx())) {
            h.ended = true;
        }
        self.maybe_complete(i, ctx);
    }

    fn data(&mut self, dir: Direction, id: u32, bytes: &[u8], ctx: &mut ParseCtx<'_>) {
        let Some(s) = self.stream_idx(id).and_then(|i| self.streams.get_mut(i)) else { return };
        let grpc = s.grpc;
        let Some(h) = s.halves.get_mut(dir.idx()) else { return };
        h.wire += bytes.len() as u64;
        h.msg.body_size += bytes.len() as u64;
        if grpc {
            h.grpc.feed(bytes);
        }
        if !h.coding_checked {
            h.coding_checked = true;
            if let Some(c) = h.msg.header("content-encoding").and_then(coding) {
                h.body = Some(Box::new(BodyDecoder::new(
                    c,
                    ctx.limits.max_body_bytes,
                    ctx.limits.max_decompressed_bytes,
                )));
            }
        }
        match h.body.as_mut() {
            Some(d) => d.write(bytes),
            None => {
                let room = ctx.limits.max_body_bytes.saturating_sub(h.msg.body.len());
                h.msg
                    .body
                    .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
                h.msg.body_truncated |= bytes.len() > room;
            }
        }
    }

    /// A complete header block of `dir` for `stream` (or, for a
    /// PUSH_PROMISE, the promised request).
    fn header_block(&mut self, dir: Direction, b: BlockState, ctx: &mut ParseCtx<'_>) {
        let lim = ctx.limits;
        let Some(hp) = self.dirs[dir.idx()].hpack.as_mut() else { return };
        let (fields, unknown, failed) =
            match hp.decode(&b.bytes, lim.max_headers, lim.max_head_bytes) {
                Ok(block) => {
                    if block.dropped > 0 {
                        ctx.errors.bump(ErrorKind::TooManyHeaders);
                    }
                    (block.fields, block.unknown, false)
                }
                Err(kind) => {
                    ctx.errors.bump(kind);
                    (Vec::new(), 0, true)
                }
            };
        if unknown > 0 {
            ctx.errors.bump(ErrorKind::HpackUnknown);
        }
        let (target, side, pushed) = match b.promised {
            Some(p) if dir == Direction::ToClient => (p, Direction::ToServer, true),
            _ => (b.stream, dir, false),
        };
        if pushed {
            self.credit(dir, b.stream, b.wire);
        }
        let i = self.stream_or_new(target, ctx);
        let grpc_on = lim.grpc;
        let Some(s) = self.streams.get_mut(i) else { return };
        if failed {
            set_error(
                &mut s.error,
                ItemErrorKind::Dissection,
                "hpack_decode: a header block could not be decoded; its fields are missing",
            );
        } else if unknown > 0 {
            set_error(
                &mut s.error,
                ItemErrorKind::Dissection,
                "hpack_unknown: header fields referring to HPACK state never seen (connection picked up mid-way, or data lost) were left out",
            );
        }
        let ts = ctx.ts_ns;
        let Some(h) = s.halves.get_mut(side.idx()) else { return };
        if !pushed {
            h.wire += b.wire;
        }
        h.msg.headers_size += b.bytes.len() as u32;
        h.msg.unknown_headers += unknown;
        if !h.started {
            h.started = true;
            if h.ts == 0 {
                h.ts = ts;
            }
            h.msg.is_request = side == Direction::ToServer;
            h.msg.pushed = pushed;
            let status = header_is(&fields, b":status")
                .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u16>().ok());
            if let Some(st) = status {
                h.msg.status = st;
                if (100..200).contains(&st) && st != 101 {
                    // Interim: the final response's head comes next.
                    h.msg.info_code = Some(st);
                    h.started = false;
                }
            }
            if side == Direction::ToServer && grpc_on && is_grpc(&fields) {
                s.grpc = true;
            }
            let Some(h) = s.halves.get_mut(side.idx()) else { return };
            if h.started || h.msg.headers.is_empty() {
                h.msg.headers = fields;
            }
        } else {
            h.msg.trailers.extend(fields);
        }
        if pushed {
            if let Some(h) = s.halves.get_mut(Direction::ToServer.idx()) {
                h.ended = true;
            }
        }
        if b.end_stream && !pushed {
            self.end_half(dir, b.stream, ctx);
        }
    }

    /// Decides whether a direction's HPACK state is known from its first
    /// frame (or preface).
    fn start(&mut self, dir: Direction, b: &[u8], ctx: &ParseCtx<'_>) -> Option<ParseResult> {
        let cap = ctx.limits.max_hpack_table_bytes;
        match dir {
            Direction::ToServer => {
                let n = b.len().min(PREFACE.len());
                if b.get(..n) == PREFACE.get(..n) {
                    if n < PREFACE.len() {
                        return Some(ParseResult::Incomplete {
                            consumed: 0,
                            needed: PREFACE.len() - n,
                        });
                    }
                    self.preface = true;
                    self.dirs[0].hpack = Some(Hpack::new(cap, true));
                    return Some(ParseResult::Done { consumed: PREFACE.len() });
                }
                self.dirs[0].hpack = Some(Hpack::new(cap, false));
            }
            Direction::ToClient => {
                let Some(h) = parser::frame_header(b) else {
                    return Some(ParseResult::Incomplete {
                        consumed: 0,
                        needed: HEADER_LEN - b.len(),
                    });
                };
                // The server's preface is a SETTINGS frame (not an ACK).
                let first = h.ty == frame_type::SETTINGS && h.flags & flags::ACK == 0;
                let known =
                    first && (self.preface || self.from_start || self.dirs[0].hpack.is_none());
                self.dirs[1].hpack = Some(Hpack::new(cap, known));
            }
        }
        None
    }

    fn resync(&mut self, dir: Direction, b: &[u8]) -> ParseResult {
        let at = |i: usize| -> Option<bool> {
            let h = parser::frame_header(b.get(i..)?)?;
            if !parser::plausible(&h) {
                return Some(false);
            }
            let next = i + HEADER_LEN + h.len as usize;
            if next == b.len() {
                return Some(true);
            }
            // Two plausible frames in a row, or wait for the second.
            Some(parser::frame_header(b.get(next..)?).is_none_or(|h| parser::plausible(&h)))
        };
        for i in 0..b.len() {
            match at(i) {
                Some(true) if i == 0 => {
                    self.dirs[dir.idx()].resync = false;
                    return ParseResult::Continue { consumed: 0 };
                }
                Some(true) => return ParseResult::Continue { consumed: i },
                Some(false) => {}
                None if i == 0 => return ParseResult::Incomplete { consumed: 0, needed: 1 },
                None => return ParseResult::Continue { consumed: i },
            }
        }
        ParseResult::Continue { consumed: b.len() }
    }
}

impl Dissector for Http2Session {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if b.is_empty() {
            return ParseResult::Incomplete { consumed: 0, needed: 1 };
        }
        if let Some(df) = self.dirs[dir.idx()].data.as_mut() {
            let n = (df.remaining as usize).min(b.len());
            df.remaining -= n as u32;
            let (id, done, end, pad) = (df.stream, df.remaining == 0, df.end, df.pad);
            if done {
                self.dirs[dir.idx()].data = None;
                self.dirs[dir.idx()].skip = (u64::from(pad), id);
            }
            self.data(dir, id, b.get(..n).unwrap_or_default(), ctx);
            if done && end && pad == 0 {
                self.end_half(dir, id, ctx);
            } else if done && end {
                // Ends after its padding is skipped.
                self.dirs[dir.idx()].data =
                    Some(DataFrame { stream: id, remaining: 0, pad, end: true });
                self.dirs[dir.idx()].skip = (0, id);
            }
            return ParseResult::Continue { consumed: n };
        }
        let (left, sid) = self.dirs[dir.idx()].skip;
        if left > 0 {
            let n = left.min(b.len() as u64);
            self.dirs[dir.idx()].skip.0 -= n;
            self.credit(dir, sid, n);
            return ParseResult::Continue { consumed: n as usize };
        }
        if self.dirs[dir.idx()].resync {
            match self.resync(dir, b) {
                ParseResult::Continue { consumed: 0 } => {}
                r => return r,
            }
        }
        if self.dirs[dir.idx()].hpack.is_none() {
            if let Some(r) = self.start(dir, b, ctx) {
                return r;
            }
        }
        let Some(h) = parser::frame_header(b) else {
            return ParseResult::Incomplete { consumed: 0, needed: HEADER_LEN - b.len() };
        };
        let total = HEADER_LEN + h.len as usize;
        let open_block = self.dirs[dir.idx()].block.is_some();
        if open_block && h.ty != frame_type::CONTINUATION {
            // A header block cut off: what it inserted is unknown.
            ctx.errors.bump(ErrorKind::Http2Framing);
            self.dirs[dir.idx()].block = None;
            if let Some(hp) = self.dirs[dir.idx()].hpack.as_mut() {
                hp.lose();
            }
        }
        match h.ty {
            frame_type::DATA => {
                if h.stream == 0 {
                    ctx.errors.bump(ErrorKind::Http2Framing);
                    self.dirs[dir.idx()].skip = (u64::from(h.len), 0);
                    return ParseResult::Continue { consumed: HEADER_LEN };
                }
                let (mut head, mut pad) = (HEADER_LEN, 0u32);
                if h.flags & flags::PADDED != 0 && h.len == 0 {
                    // No room for the pad length: the flag is a lie.
                    ctx.errors.bump(ErrorKind::Http2Framing);
                    return ParseResult::Continue { consumed: HEADER_LEN };
                }
                if h.flags & flags::PADDED != 0 {
                    let Some(&p) = b.get(HEADER_LEN) else {
                        return ParseResult::Incomplete { consumed: 0, needed: 1 };
                    };
                    pad = u32::from(p);
                    head += 1;
                    if pad + 1 > h.len {
                        ctx.errors.bump(ErrorKind::Http2Framing);
                        self.dirs[dir.idx()].skip = (u64::from(h.len - 1), h.stream);
                        return ParseResult::Continue { consumed: head };
                    }
                }
                self.credit(dir, h.stream, head as u64);
                let remaining = h.len - (head - HEADER_LEN) as u32 - pad;
                let end = h.flags & flags::END_STREAM != 0;
                if remaining == 0 && pad == 0 {
                    if end {
                        self.end_half(dir, h.stream, ctx);
                    }
                } else if remaining == 0 {
                    self.dirs[dir.idx()].skip = (u64::from(pad), h.stream);
                    if end {
                        self.dirs[dir.idx()].data =
                            Some(DataFrame { stream: h.stream, remaining: 0, pad, end });
                    }
                } else {
                    self.dirs[dir.idx()].data =
                        Some(DataFrame { stream: h.stream, remaining, pad, end });
                }
                ParseResult::Continue { consumed: head }
            }
            frame_type::HEADERS | frame_type::PUSH_PROMISE | frame_type::CONTINUATION => {
                if h.stream == 0 {
                    ctx.errors.bump(ErrorKind::Http2Framing);
                    self.dirs[dir.idx()].skip = (u64::from(h.len), 0);
                    return ParseResult::Continue { consumed: HEADER_LEN };
                }
                let held = self.dirs[dir.idx()].block.as_ref().map_or(0, |x| x.bytes.len());
                if total + held > ctx.limits.max_head_bytes {
                    // Too large to hold: its insertions are lost with it.
                    ctx.errors.bump(ErrorKind::HeaderTooLarge);
                    self.dirs[dir.idx()].block = None;
                    if let Some(hp) = self.dirs[dir.idx()].hpack.as_mut() {
                        hp.lose();
                    }
                    if let Some(s) = self.stream_idx(h.stream).and_then(|i| self.streams.get_mut(i))
                    {
                        set_error(
                            &mut s.error,
                            ItemErrorKind::Dissection,
                            ErrorKind::HeaderTooLarge.name(),
                        );
                    }
                    self.dirs[dir.idx()].skip = (u64::from(h.len), h.stream);
                    return ParseResult::Continue { consumed: HEADER_LEN };
                }
                let Some(payload) = b.get(HEADER_LEN..total) else {
                    return ParseResult::Incomplete { consumed: 0, needed: total - b.len() };
                };
                let mut frag = payload;
                let mut promised = None;
                if h.ty != frame_type::CONTINUATION {
                    if h.flags & flags::PADDED != 0 {
                        let pad = usize::from(frag.first().copied().unwrap_or(0));
                        frag = frag
                            .get(1..frag.len().saturating_sub(pad))
                            .filter(|_| pad < payload.len())
                            .unwrap_or_default();
                    }
                    if h.ty == frame_type::HEADERS && h.flags & flags::PRIORITY != 0 {
                        frag = frag.get(5..).unwrap_or_default();
                    }
                    if h.ty == frame_type::PUSH_PROMISE {
                        promised = frag
                            .get(..4)
                            .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]) & 0x7fff_ffff);
                        frag = frag.get(4..).unwrap_or_default();
                    }
                }
                let d = &mut self.dirs[dir.idx()];
                let block = if h.ty == frame_type::CONTINUATION {
                    match d.block.take() {
                        Some(mut blk) if blk.stream == h.stream => {
                            blk.bytes.extend_from_slice(frag);
                            blk.wire += total as u64;
                            blk
                        }
                        _ => {
                            ctx.errors.bump(ErrorKind::Http2Framing);
                            if let Some(hp) = d.hpack.as_mut() {
                                hp.lose();
                            }
                            return ParseResult::Done { consumed: total };
                        }
                    }
                } else {
                    BlockState {
                        stream: h.stream,
                        promised,
                        end_stream: h.flags & flags::END_STREAM != 0,
                        bytes: frag.to_vec(),
                        wire: total as u64,
                    }
                };
                if h.flags & flags::END_HEADERS != 0 {
                    self.header_block(dir, block, ctx);
                } else {
                    self.dirs[dir.idx()].block = Some(block);
                }
                ParseResult::Done { consumed: total }
            }
            frame_type::RST_STREAM => {
                let Some(p) = b.get(HEADER_LEN..HEADER_LEN + 4).filter(|_| h.len == 4) else {
                    if h.len != 4 {
                        ctx.errors.bump(ErrorKind::Http2Framing);
                        self.dirs[dir.idx()].skip = (u64::from(h.len), 0);
                        return ParseResult::Continue { consumed: HEADER_LEN };
                    }
                    return ParseResult::Incomplete { consumed: 0, needed: total - b.len() };
                };
                let code = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                if let Some(i) = self.stream_idx(h.stream) {
                    if let Some(s) = self.streams.get_mut(i) {
                        if let Some(half) = s.halves.get_mut(dir.idx()) {
                            half.msg.reset = Some(code);
                            half.wire += total as u64;
                        }
                        for half in &mut s.halves {
                            half.ended = true;
                        }
                    }
                    self.maybe_complete(i, ctx);
                }
                ParseResult::Done { consumed: total }
            }
            _ => {
                // SETTINGS, PING, GOAWAY, WINDOW_UPDATE, PRIORITY and
                // unknown types carry nothing an item shows.
                self.dirs[dir.idx()].skip = (u64::from(h.len), 0);
                ParseResult::Continue { consumed: HEADER_LEN }
            }
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u32, ctx: &mut ParseCtx<'_>) {
        let cap = ctx.limits.max_hpack_table_bytes;
        let d = &mut self.dirs[dir.idx()];
        d.data = None;
        d.skip = (0, 0);
        d.block = None;
        d.resync = true;
        match d.hpack.as_mut() {
            Some(hp) => hp.lose(),
            None => d.hpack = Some(Hpack::new(cap, false)),
        }
        for s in &mut self.streams {
            let Some(h) = s.halves.get_mut(dir.idx()) else { continue };
            if !h.ended {
                h.lost = true;
                h.grpc.lose();
                set_error(
                    &mut s.error,
                    ItemErrorKind::Gap,
                    format!("{len} bytes of the connection lost"),
                );
            }
        }
    }

    fn on_end(&mut self, _dir: Direction, _ctx: &mut ParseCtx<'_>) {}

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        for st in std::mem::take(&mut self.streams) {
            if !st.halves[0].started && !st.halves[1].started {
                continue;
            }
            self.emit(st, Some(reason), ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::hpack::tests::literal;
    use super::super::parser::tests::frame;
    use super::super::{grpc_request_json, grpc_response_json, request_json, response_json};
    use super::*;
    use crate::counters::DissectionErrors;
    use crate::dissectors::Limits;
    use serde_json::Value;

    enum Step {
        C(Vec<u8>),
        S(Vec<u8>),
        GapC,
    }
    use self::Step::*;
    use crate::dissectors::script;

    fn run(steps: &[Step], reason: FinishReason) -> (Vec<Exchange>, DissectionErrors) {
        let steps = steps.iter().map(|st| match st {
            C(b) => script::Step::C(b),
            S(b) => script::Step::S(b),
            GapC => script::Step::GapC,
        });
        script::run(
            &mut Http2Session::new(),
            steps,
            &Limits { max_body_bytes: 64, ..Limits::default() },
            1,
            reason,
        )
    }

    pub fn js(e: &Exchange) -> (Value, Value) {
        let j = |m: &Option<Message>, req: bool| match (m, req) {
            (Some(Message::Http2(r)), true) => request_json(r),
            (Some(Message::Http2(r)), false) => response_json(r),
            (Some(Message::Grpc(r)), true) => grpc_request_json(r),
            (Some(Message::Grpc(r)), false) => grpc_response_json(r),
            _ => Value::Null,
        };
        (j(&e.request, true), j(&e.response, false))
    }

    fn settings() -> Vec<u8> {
        frame(frame_type::SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100])
    }

    fn get(stream: u32, path: &str) -> Vec<u8> {
        // :method GET, :scheme http, :path (literal, indexed), :authority.
        let mut blk = vec![0x82, 0x86, 0x44, path.len() as u8];
        blk.extend_from_slice(path.as_bytes());
        blk.extend(literal("user-agent", "t/1"));
        blk.extend_from_slice(&[0x41, 0x01, b'h']);
        frame(frame_type::HEADERS, flags::END_HEADERS | flags::END_STREAM, stream, &blk)
    }

    #[test]
    fn prior_knowledge_interleaved_streams_with_dynamic_table() {
        let (out, errors) = run(
            &[
                C([PREFACE.to_vec(), settings(), get(1, "/a"), get(3, "/b")].concat()),
                S(settings()),
                // Stream 3 answers first, its body in two DATA frames
                // interleaved with stream 1's response head.
                S([
                    frame(
                        1,
                        4,
                        3,
                        &[
                            0x88, 0x5f, 0x0a, b't', b'e', b'x', b't', b'/', b'p', b'l', b'a', b'i',
                            b'n',
                        ],
                    ),
                    frame(0, 0, 3, b"hel"),
                ]
                .concat()),
                S([
                    frame(1, 4, 1, &[0x8d]),
                    frame(0, 1, 3, b"lo"),
                    frame(0, flags::END_STREAM, 1, b""),
                ]
                .concat()),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(errors.total(), 0);
        assert_eq!(out.len(), 2);
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["url"].as_str(), q["headers"]["host"].as_str(), q["headers"]["user-agent"].as_str()),
            (Some("/b"), Some("h"), Some("t/1"))
        );
        assert_eq!(
            (q["httpVersion"].as_str(), q["targetUri"].as_str(), q["streamId"].as_u64()),
            (Some("2"), Some("http://h/b"), Some(3))
        );
        assert_eq!(
            (
                r["status"].as_u64(),
                r["content"]["text"].as_str(),
                r["content"]["mimeType"].as_str()
            ),
            (Some(200), Some("hello"), Some("text/plain"))
        );
        let (q, r) = js(&out[1]);
        // Stream 3's request referred to stream 1's `user-agent` entry.
        assert_eq!(
            (q["url"].as_str(), q["headers"]["user-agent"].as_str(), r["status"].as_u64()),
            (Some("/a"), Some("t/1"), Some(404))
        );
        assert!(out.iter().all(|e| e.error.is_none()));
        assert_eq!(out[0].response_size, 9 + 13 + 9 + 3 + 9 + 2);
    }

    #[test]
    fn mid_stream_pickup_leaves_unknown_headers_out() {
        // No preface: dynamic index 70 (`:path` sent before the capture).
        let req = frame(1, 5, 101, &[0x83, 0x86, 0xc4]);
        let (out, errors) = run(
            &[
                C([frame(4, 1, 0, &[]), req, frame(0, 1, 101, b"x")].concat()),
                S(frame(1, 5, 101, &[0x88, 0xbe])),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(out.len(), 1);
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["method"].as_str(), q["url"].clone(), q["unknownHeaders"].as_u64()),
            (Some("POST"), Value::Null, Some(1))
        );
        assert_eq!((r["status"].as_u64(), r["unknownHeaders"].as_u64()), (Some(200), Some(1)));
        let e = out[0].error.as_ref().unwrap();
        assert_eq!(e.kind, ItemErrorKind::Dissection);
        assert!(e.msg.starts_with("hpack_unknown"));
        assert_eq!(errors.get(ErrorKind::HpackUnknown), 2);
    }

    #[test]
    fn grpc_unary_and_streaming() {
        let mut req = vec![0x83, 0x86, 0x44, 21];
        req.extend_from_slice(b"/pkg.Greeter/SayHello");
        req.extend(literal("content-type", "application/grpc"));
        let msg = |n: u8| [vec![0, 0, 0, 0, 2], vec![n, n]].concat();
        let (out, _) = run(
            &[
                C([
                    PREFACE.to_vec(),
                    settings(),
                    frame(1, 4, 1, &req),
                    frame(0, 0, 1, &msg(1)),
                    frame(0, 1, 1, &[msg(2), msg(3)].concat()),
                ]
                .concat()),
                S([
                    settings(),
                    frame(
                        1,
                        4,
                        1,
                        &[
                            0x88, 0x5f, 0x10, b'a', b'p', b'p', b'l', b'i', b'c', b'a', b't', b'i',
                            b'o', b'n', b'/', b'g', b'r', b'p', b'c',
                        ],
                    ),
                ]
                .concat()),
                S(frame(0, 0, 1, &msg(4))),
                S(frame(
                    1,
                    5,
                    1,
                    &[literal("grpc-status", "14"), literal("grpc-message", "no%20backend")]
                        .concat(),
                )),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(out.len(), 1);
        assert!(matches!(out[0].request, Some(Message::Grpc(_))));
        let (q, r) = js(&out[0]);
        assert_eq!(
            (
                q["grpc"]["service"].as_str(),
                q["grpc"]["method"].as_str(),
                q["grpc"]["messages"].as_u64()
            ),
            (Some("pkg.Greeter"), Some("SayHello"), Some(3))
        );
        assert_eq!(
            (
                r["grpc"]["status"].as_u64(),
                r["grpc"]["statusName"].as_str(),
                r["grpc"]["message"].as_str()
            ),
            (Some(14), Some("UNAVAILABLE"), Some("no backend"))
        );
        assert_eq!(
            (r["grpc"]["messages"].as_u64(), r["trailers"]["grpc-status"].as_str()),
            (Some(1), Some("14"))
        );
        assert!(out[0].error.is_none());
    }

    #[test]
    fn continuation_padding_reset_and_push() {
        let blk = [vec![0x82, 0x86, 0x84], literal("x-long", "value")].concat();
        let (a, b2) = blk.split_at(3);
        let mut padded = vec![3];
        padded.extend_from_slice(b"abc");
        padded.extend_from_slice(&[0, 0, 0]);
        let push = [vec![0, 0, 0, 2], vec![0x82, 0x86, 0x44, 2, b'/', b'p']].concat();
        let (out, _) = run(
            &[
                C([
                    PREFACE.to_vec(),
                    settings(),
                    frame(1, 0, 1, a),
                    frame(9, 4, 1, b2),
                    frame(0, flags::PADDED | flags::END_STREAM, 1, &padded),
                ]
                .concat()),
                S([
                    settings(),
                    frame(5, 4, 1, &push),
                    frame(1, 5, 2, &[0x88]),
                    frame(1, 4, 1, &[0x88]),
                    frame(3, 0, 1, &8u32.to_be_bytes()),
                ]
                .concat()),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(out.len(), 2, "{out:#?}");
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["url"].as_str(), q["pushed"].as_bool(), r["status"].as_u64()),
            (Some("/p"), Some(true), Some(200))
        );
        let (q, r) = js(&out[1]);
        assert_eq!(
            (
                q["headers"]["x-long"].as_str(),
                q["bodySize"].as_u64(),
                q["postData"]["text"].as_str()
            ),
            (Some("value"), Some(3), Some("abc"))
        );
        assert_eq!(r["resetCode"], "CANCEL");
    }

    #[test]
    fn gap_makes_later_dynamic_references_unknown() {
        let (out, _) = run(
            &[
                C([PREFACE.to_vec(), settings(), get(1, "/a")].concat()),
                S([settings(), frame(1, 5, 1, &[0x88])].concat()),
                GapC,
                C([b"lost".to_vec(), frame(1, 5, 3, &[0x82, 0x86, 0xbe])].concat()),
                S(frame(1, 5, 3, &[0x88])),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(out.len(), 2);
        assert!(out[0].error.is_none());
        let (q, _) = js(&out[1]);
        assert_eq!((q["method"].as_str(), q["unknownHeaders"].as_u64()), (Some("GET"), Some(1)));
        assert!(out[1].error.as_ref().unwrap().msg.starts_with("hpack_unknown"));
    }

    #[test]
    fn unanswered_and_timeouts() {
        let (out, _) =
            run(&[C([PREFACE.to_vec(), settings(), get(1, "/a")].concat())], FinishReason::Closed);
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
        let (out, _) = run(
            &[
                C([PREFACE.to_vec(), settings(), get(1, "/a")].concat()),
                S([settings(), frame(1, 4, 1, &[0x88])].concat()),
            ],
            FinishReason::Timeout,
        );
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Timeout));
    }
}
