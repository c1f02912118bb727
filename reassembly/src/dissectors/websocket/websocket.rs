//! The WebSocket session of one flow: frames joined into messages, per
//! direction.
//!
//! Invariants: a direction reads a frame header (waiting for all of it),
//! then streams the payload by (never holding more than the header: the
//! payload is unmasked into the message's bounded buffer as it passes);
//! control frames (≤ 125 bytes, never fragmented) may sit between the
//! frames of a fragmented data message and are items of their own. A
//! message's kept payload is at most `max_body_bytes` (after inflating;
//! inflating stops at `max_decompressed_bytes`), its frames at most
//! `max_websocket_fragments`. Pings wait for a pong from the other side
//! (at most `max_pending_requests`, the oldest emitted unanswered past
//! it), the first close for the other side's. Data lost inside a frame's
//! payload costs that payload only; lost across a header ends the
//! direction (a frame boundary cannot be found again reliably).

use std::collections::VecDeque;
use std::sync::Arc;

use flate2::{Decompress, FlushDecompress, Status};

use super::parser::{self, opcode, FrameHead};
use super::{Error, WsHandshake, WsMessage};
use crate::dissectors::{
    unanswered, Direction, Dissector, ErrorKind, FinishReason, ParseCtx, ParseResult,
};
use crate::item::{set_error, Exchange, ItemError, ItemErrorKind, Message};

/// The permessage-deflate trailer a sender strips from each message (RFC
/// 7692 §7.2.2), put back before inflating the message's end.
const DEFLATE_TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// A message being assembled.
struct Partial {
    msg: WsMessage,
    ts: u64,
    /// Bytes on the wire (frame headers included).
    wire: u64,
    error: Option<ItemError>,
}

/// The frame whose payload is passing.
struct Frame {
    head: FrameHead,
    /// Payload bytes still to come.
    left: u64,
    /// Payload bytes already seen (the masking key's phase).
    done: u64,
}

#[derive(Default)]
struct Dir {
    frame: Option<Frame>,
    /// The data message in progress.
    data: Option<Partial>,
    /// A control frame's payload (at most 125 bytes).
    control: Vec<u8>,
    inflate: Option<Decompress>,
    /// The compression context is lost (a gap, an error): compressed
    /// messages are no longer inflated.
    inflate_lost: bool,
    /// A gap took a frame header: nothing more is parsed.
    lost: bool,
}

/// A sent message waiting for its answer (a ping for a pong, a close for
/// a close).
struct Waiting {
    part: Partial,
    dir: Direction,
}

pub struct WsSession {
    handshake: Option<Arc<WsHandshake>>,
    dirs: [Dir; 2],
    pings: VecDeque<Waiting>,
    close: Option<Waiting>,
}

fn side(dir: Direction, m: Box<WsMessage>) -> (Option<Message>, Option<Message>) {
    match dir {
        Direction::ToServer => (Some(Message::Websocket(m)), None),
        Direction::ToClient => (None, Some(Message::Websocket(m))),
    }
}

fn exchange(first: Waiting, answer: Option<Waiting>) -> Exchange {
    let (mut request, mut response) = side(first.dir, Box::new(first.part.msg));
    let mut ex = Exchange {
        request: None,
        response: None,
        request_ts_ns: first.part.ts,
        response_ts_ns: 0,
        request_size: first.part.wire,
        response_size: 0,
        error: first.part.error,
    };
    if first.dir == Direction::ToClient {
        // A server's message is the item's response side.
        ex.response_ts_ns = ex.request_ts_ns;
        ex.response_size = ex.request_size;
        ex.request_ts_ns = 0;
        ex.request_size = 0;
    }
    if let Some(a) = answer {
        let (q, r) = side(a.dir, Box::new(a.part.msg));
        request = request.or(q);
        response = response.or(r);
        ex.response_ts_ns = a.part.ts;
        ex.response_size = a.part.wire;
        if ex.error.is_none() {
            ex.error = a.part.error;
        }
    }
    ex.request = request;
    ex.response = response;
    ex
}

fn flag(err: &mut Option<ItemError>, ctx: &mut ParseCtx<'_>, e: Error) {
    let kind: ErrorKind = e.into();
    ctx.errors.bump(kind);
    set_error(err, ItemErrorKind::Dissection, kind.name());
}

impl WsSession {
    pub fn new(handshake: Option<WsHandshake>) -> Self {
        WsSession {
            handshake: handshake.map(Arc::new),
            dirs: Default::default(),
            pings: VecDeque::new(),
            close: None,
        }
    }

    fn new_message(&self, dir: Direction, h: &FrameHead, ts: u64) -> Partial {
        Partial {
            msg: WsMessage {
                from_client: dir == Direction::ToServer,
                opcode: h.opcode,
                mask: h.mask_u32(),
                compressed: h.rsv & 0x4 != 0 && !h.is_control(),
                handshake: self.handshake.clone(),
                ..WsMessage::default()
            },
            ts,
            wire: 0,
            error: None,
        }
    }

    /// A message is complete: data goes out, a ping waits for its pong, a
    /// pong and a close find what they answer.
    fn deliver(&mut self, dir: Direction, mut part: Partial, ctx: &mut ParseCtx<'_>) {
        let m = &part.msg;
        if m.opcode == opcode::TEXT
            && !m.compressed
            && m.payload.len() as u64 == m.payload_size
            && std::str::from_utf8(&m.payload).is_err()
        {
            flag(&mut part.error, ctx, Error::Utf8);
        }
        match part.msg.opcode {
            opcode::PING => {
                if self.pings.len() >= ctx.limits.max_pending {
                    if let Some(mut old) = self.pings.pop_front() {
                        ctx.errors.bump(ErrorKind::TooManyTransactions);
                        set_error(
                            &mut old.part.error,
                            ItemErrorKind::Dissection,
                            ErrorKind::TooManyTransactions.name(),
                        );
                        ctx.out.push(exchange(old, None));
                    }
                }
                self.pings.push_back(Waiting { part, dir });
            }
            opcode::PONG => {
                let ping = self.pings.iter().position(|w| w.dir != dir);
                let ping = ping.and_then(|i| self.pings.remove(i));
                let me = Waiting { part, dir };
                ctx.out.push(match ping {
                    Some(p) => exchange(p, Some(me)),
                    // An unsolicited pong (a heartbeat, §5.5.3).
                    None => exchange(me, None),
                });
            }
            opcode::CLOSE => {
                let me = Waiting { part, dir };
                match self.close.take() {
                    Some(first) if first.dir != dir => ctx.out.push(exchange(first, Some(me))),
                    Some(first) => {
                        ctx.out.push(exchange(first, None));
                        self.close = Some(me);
                    }
                    None => self.close = Some(me),
                }
            }
            _ => ctx.out.push(exchange(Waiting { part, dir }, None)),
        }
    }

    /// Payload bytes of the current frame (already unmasked) into the
    /// message they belong to.
    fn payload(&mut self, dir: Direction, data: &[u8], ctx: &mut ParseCtx<'_>) {
        let keep = ctx.limits.max_body_bytes;
        let max_inflated = ctx.limits.max_decompressed_bytes;
        let d = &mut self.dirs[dir.idx()];
        let Some(f) = d.frame.as_ref() else { return };
        if f.head.is_control() {
            let room = 125usize.saturating_sub(d.control.len());
            d.control.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
            return;
        }
        let Some(p) = d.data.as_mut() else { return };
        p.msg.size += data.len() as u64;
        if !p.msg.compressed {
            p.msg.payload_size += data.len() as u64;
            let room = keep.saturating_sub(p.msg.payload.len());
            p.msg.payload.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
            return;
        }
        if d.inflate_lost {
            return;
        }
        let z = d.inflate.get_or_insert_with(|| Decompress::new(false));
        if inflate(z, data, &mut p.msg, keep, max_inflated).is_err() {
            d.inflate_lost = true;
            flag(&mut p.error, ctx, Error::Decompression);
        }
    }

    /// The end of the current frame.
    fn frame_end(&mut self, dir: Direction, ctx: &mut ParseCtx<'_>) {
        let client = dir == Direction::ToServer;
        let takeover = self.handshake.as_deref().is_none_or(|h| !h.no_context_takeover(client));
        let max_frames = ctx.limits.max_websocket_fragments;
        let keep = ctx.limits.max_body_bytes;
        let max_inflated = ctx.limits.max_decompressed_bytes;
        let ts = ctx.ts_ns;
        let d = &mut self.dirs[dir.idx()];
        let Some(f) = d.frame.take() else { return };
        if f.head.is_control() {
            let mut part = self.new_message(dir, &f.head, ts);
            let d = &mut self.dirs[dir.idx()];
            let body = std::mem::take(&mut d.control);
            part.wire = f.head.head_len as u64 + f.head.len;
            part.msg.frames = 1;
            part.msg.size = f.head.len;
            part.msg.payload_size = f.head.len;
            if f.head.opcode == opcode::CLOSE {
                match parser::close_payload(&body) {
                    Ok((code, reason)) => {
                        part.msg.close_code = code;
                        part.msg.close_reason = Some(String::from_utf8_lossy(reason).into_owned())
                            .filter(|r| !r.is_empty());
                    }
                    Err(e) => flag(&mut part.error, ctx, e),
                }
            }
            part.msg.payload = body;
            self.deliver(dir, part, ctx);
            return;
        }
        let Some(p) = d.data.as_mut() else { return };
        if !f.head.fin && p.msg.frames < max_frames {
            return;
        }
        let Some(mut part) = d.data.take() else { return };
        if part.msg.compressed && !d.inflate_lost {
            let z = d.inflate.get_or_insert_with(|| Decompress::new(false));
            if inflate(z, &DEFLATE_TAIL, &mut part.msg, keep, max_inflated).is_err() {
                d.inflate_lost = true;
                flag(&mut part.error, ctx, Error::Decompression);
            }
            if !takeover {
                d.inflate = None;
            }
        } else if part.msg.compressed && part.error.is_none() {
            // The context was lost before this message (a gap, an earlier
            // error): it cannot be inflated.
            flag(&mut part.error, ctx, Error::Decompression);
        }
        if !f.head.fin {
            // Too many frames: this much is a message; the rest follows as
            // a continuation.
            flag(&mut part.error, ctx, Error::FragmentFlood);
            let mut rest = self.new_message(dir, &f.head, ts);
            rest.msg.opcode = opcode::CONTINUATION;
            rest.msg.compressed = part.msg.compressed;
            self.dirs[dir.idx()].data = Some(rest);
        }
        self.deliver(dir, part, ctx);
    }

    /// A frame header: starts or continues a message.
    fn frame_start(&mut self, dir: Direction, h: FrameHead, ctx: &mut ParseCtx<'_>) {
        let deflate = self.handshake.as_deref().is_none_or(WsHandshake::deflate);
        let client = dir == Direction::ToServer;
        let ts = ctx.ts_ns;
        let mut odd = (h.mask.is_some() != client) || h.rsv & 0x3 != 0;
        if h.rsv & 0x4 != 0 && (!deflate || h.is_control() || h.opcode == opcode::CONTINUATION) {
            odd = true;
        }
        if !h.is_control() {
            let d = &self.dirs[dir.idx()];
            match (h.opcode, d.data.is_some()) {
                (opcode::CONTINUATION, true) => {}
                (opcode::CONTINUATION, false) => {
                    // The start was not seen (picked up mid-message): what
                    // follows is a message of its own.
                    let mut part = self.new_message(dir, &h, ts);
                    flag(&mut part.error, ctx, Error::Continuation);
                    self.dirs[dir.idx()].data = Some(part);
                }
                (_, busy) => {
                    if busy {
                        // A new message inside a fragmented one: the old one
                        // is given up as it stands.
                        if let Some(mut old) = self.dirs[dir.idx()].data.take() {
                            flag(&mut old.error, ctx, Error::Continuation);
                            self.deliver(dir, old, ctx);
                        }
                    }
                    let part = self.new_message(dir, &h, ts);
                    self.dirs[dir.idx()].data = Some(part);
                }
            }
        }
        let d = &mut self.dirs[dir.idx()];
        if let (false, Some(p)) = (h.is_control(), d.data.as_mut()) {
            p.msg.frames += 1;
            p.wire += h.head_len as u64 + h.len;
            if odd {
                flag(&mut p.error, ctx, Error::Framing);
            }
        } else if odd {
            ctx.errors.bump(Error::Framing.into());
        }
        d.control.clear();
        d.frame = Some(Frame { head: h, left: h.len, done: 0 });
    }
}

/// Inflates `data` into `m` (its `payload_size` counts all of it, `payload`
/// keeps `keep` bytes); an error when the stream is corrupt or passes
/// `max` bytes.
fn inflate(
    z: &mut Decompress,
    data: &[u8],
    m: &mut WsMessage,
    keep: usize,
    max: u64,
) -> Result<(), ()> {
    let mut out = [0u8; 4096];
    let mut input = data;
    loop {
        let (in0, out0) = (z.total_in(), z.total_out());
        let status = z.decompress(input, &mut out, FlushDecompress::Sync).map_err(|_| ())?;
        let used = (z.total_in() - in0) as usize;
        let made = (z.total_out() - out0) as usize;
        input = input.get(used..).unwrap_or_default();
        m.payload_size += made as u64;
        if m.payload_size > max {
            return Err(());
        }
        let room = keep.saturating_sub(m.payload.len());
        m.payload.extend_from_slice(out.get(..made.min(room)).unwrap_or_default());
        if status == Status::StreamEnd {
            // A final block: the sender started over; so does the reader.
            z.reset(false);
            if input.is_empty() {
                return Ok(());
            }
            continue;
        }
        if (input.is_empty() && made < out.len()) || (used == 0 && made == 0) {
            return Ok(());
        }
    }
}

impl Dissector for WsSession {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if self.dirs[dir.idx()].lost {
            return ParseResult::Continue { consumed: b.len() };
        }
        if let Some(f) = self.dirs[dir.idx()].frame.as_mut() {
            let n = f.left.min(b.len() as u64) as usize;
            let (key, done) = (f.head.mask, f.done);
            f.left -= n as u64;
            f.done += n as u64;
            let left = f.left;
            let chunk = b.get(..n).unwrap_or_default();
            match key {
                Some(k) => {
                    let mut owned = chunk.to_vec();
                    parser::unmask(&mut owned, k, done);
                    self.payload(dir, &owned, ctx);
                }
                None => self.payload(dir, chunk, ctx),
            }
            if left == 0 {
                self.frame_end(dir, ctx);
                return ParseResult::Done { consumed: n };
            }
            return ParseResult::Continue { consumed: n };
        }
        match parser::frame_head(b) {
            Ok(Some(h)) => {
                self.frame_start(dir, h, ctx);
                if h.len == 0 {
                    self.frame_end(dir, ctx);
                    return ParseResult::Done { consumed: h.head_len };
                }
                ParseResult::Continue { consumed: h.head_len }
            }
            Ok(None) => ParseResult::Incomplete { consumed: 0, needed: 1 },
            Err(e) => {
                // The direction stops: what it was assembling goes out with
                // the reason.
                if let Some(mut p) = self.dirs[dir.idx()].data.take() {
                    set_error(&mut p.error, ItemErrorKind::Dissection, ErrorKind::from(e).name());
                    self.deliver(dir, p, ctx);
                }
                ParseResult::Error(e.into())
            }
        }
    }

    fn on_gap(&mut self, dir: Direction, len: u32, ctx: &mut ParseCtx<'_>) {
        let d = &mut self.dirs[dir.idx()];
        if let Some(f) = d.frame.as_mut() {
            if f.left > u64::from(len) {
                // Inside one payload: the frame goes on, its bytes are lost.
                f.left -= u64::from(len);
                f.done += u64::from(len);
                if let Some(p) = d.data.as_mut().filter(|_| !f.head.is_control()) {
                    p.msg.size += u64::from(len);
                    if p.msg.compressed {
                        d.inflate_lost = true;
                    } else {
                        p.msg.payload_size += u64::from(len);
                    }
                    set_error(&mut p.error, ItemErrorKind::Gap, "payload lost in a gap");
                }
                return;
            }
        }
        d.lost = true;
        d.frame = None;
        if let Some(mut p) = d.data.take() {
            set_error(&mut p.error, ItemErrorKind::Gap, "message cut by a gap");
            self.deliver(dir, p, ctx);
        }
    }

    fn on_end(&mut self, dir: Direction, ctx: &mut ParseCtx<'_>) {
        let d = &mut self.dirs[dir.idx()];
        let cut = d.frame.take().is_some();
        if let Some(mut p) = d.data.take() {
            ctx.errors.bump(ErrorKind::TruncatedMessage);
            set_error(&mut p.error, ItemErrorKind::Dissection, ErrorKind::TruncatedMessage.name());
            self.deliver(dir, p, ctx);
        } else if cut {
            ctx.errors.bump(ErrorKind::TruncatedMessage);
        }
        self.dirs[dir.idx()].lost = true;
    }

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            self.on_end(dir, ctx);
        }
        while let Some(mut w) = self.pings.pop_front() {
            let e = unanswered(reason, ctx);
            w.part.error.get_or_insert(e);
            ctx.out.push(exchange(w, None));
        }
        // A close the peer never answered: the TCP connection ended it.
        if let Some(w) = self.close.take() {
            ctx.out.push(exchange(w, None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissectors::script::{run, Step::*};
    use crate::dissectors::Limits;
    use crate::item::Message;

    use crate::conversations::ws_frame as frame;

    const K: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

    fn ws(m: &Option<Message>) -> &WsMessage {
        match m {
            Some(Message::Websocket(w)) => w,
            other => panic!("not a websocket message: {other:?}"),
        }
    }

    #[test]
    fn messages_fragments_and_control_frames_in_between() {
        let mut s = WsSession::new(None);
        let c1 = frame(true, opcode::TEXT, K, b"hello");
        let mut c2 = frame(false, opcode::TEXT, K, b"Hel");
        c2.extend(frame(true, opcode::PING, K, b"p"));
        c2.extend(frame(true, opcode::CONTINUATION, K, b"lo"));
        let s1 = frame(true, opcode::PONG, None, b"p");
        let s2 = frame(true, opcode::BINARY, None, &[0, 1, 2, 0xff]);
        let (out, errors) = run(
            &mut s,
            [C(&c1), C(&c2[..4]), C(&c2[4..]), S(&s1), S(&s2)],
            &Limits::default(),
            100,
            FinishReason::Closed,
        );
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(errors.total(), 0);
        let hello = ws(&out[0].request);
        assert_eq!((hello.opcode, hello.payload.as_slice(), hello.frames), (1, &b"hello"[..], 1));
        assert_eq!(hello.mask, Some(0x37fa_213d));
        assert!(out[0].response.is_none());
        let joined = ws(&out[1].request);
        assert_eq!((joined.payload.as_slice(), joined.frames, joined.size), (&b"Hello"[..], 2, 5));
        // The ping (between the fragments) with its pong.
        assert_eq!(ws(&out[2].request).opcode, opcode::PING);
        assert_eq!(ws(&out[2].response).opcode, opcode::PONG);
        let bin = ws(&out[3].response);
        assert!(out[3].request.is_none());
        assert_eq!((bin.opcode, bin.mask), (opcode::BINARY, None));
        let j = super::super::message_json(bin);
        assert_eq!(j["payload"], "AAEC/w==");
        assert_eq!(j["payloadEncoding"], "base64");
    }

    #[test]
    fn close_pairs_with_the_answering_close() {
        let mut s = WsSession::new(None);
        let c = frame(true, opcode::CLOSE, K, b"\x03\xe8done");
        let r = frame(true, opcode::CLOSE, None, b"\x03\xe8");
        let (out, _) = run(&mut s, [C(&c), S(&r)], &Limits::default(), 0, FinishReason::Closed);
        assert_eq!(out.len(), 1);
        let q = ws(&out[0].request);
        assert_eq!((q.close_code, q.close_reason.as_deref()), (Some(1000), Some("done")));
        let j = super::super::message_json(q);
        assert_eq!(j["closeCodeName"], "normal_closure");
        assert_eq!(ws(&out[0].response).close_code, Some(1000));
    }

    #[test]
    fn permessage_deflate_inflates_with_context_takeover() {
        use flate2::{Compress, Compression, FlushCompress};
        let hs = WsHandshake {
            server_extensions: Some("permessage-deflate".into()),
            ..WsHandshake::default()
        };
        let mut s = WsSession::new(Some(hs));
        let mut z = Compress::new(Compression::default(), false);
        let mut deflate = |text: &[u8]| {
            let mut out = Vec::with_capacity(256);
            z.compress_vec(text, &mut out, FlushCompress::Sync).unwrap();
            assert!(out.ends_with(&DEFLATE_TAIL));
            out.truncate(out.len() - 4);
            out
        };
        let a = deflate(b"the same words the same words");
        let b = deflate(b"the same words the same words");
        let mut fa = frame(true, opcode::TEXT, None, &a);
        fa[0] |= 0x40;
        let mut fb = frame(true, opcode::TEXT, None, &b);
        fb[0] |= 0x40;
        let (out, errors) =
            run(&mut s, [S(&fa), S(&fb)], &Limits::default(), 0, FinishReason::Closed);
        assert_eq!(errors.total(), 0);
        for ex in &out {
            let m = ws(&ex.response);
            assert!(m.compressed);
            assert_eq!(m.payload, b"the same words the same words");
        }
        // The second message leans on the first's window: fewer bytes.
        assert!(ws(&out[1].response).size < ws(&out[0].response).size);
    }

    #[test]
    fn hostile_frames_are_counted_and_bounded() {
        let limits = Limits { max_body_bytes: 8, max_websocket_fragments: 4, ..Limits::default() };
        // A fragment flood: 10 one-byte fragments make three messages.
        let mut flood = frame(false, opcode::TEXT, K, b"a");
        for _ in 0..8 {
            flood.extend(frame(false, opcode::CONTINUATION, K, b"a"));
        }
        flood.extend(frame(true, opcode::CONTINUATION, K, b"a"));
        let (out, errors) =
            run(&mut WsSession::new(None), [C(&flood)], &limits, 0, FinishReason::Closed);
        assert_eq!(out.len(), 3);
        assert_eq!(errors.get(Error::FragmentFlood.into()), 2);
        assert_eq!(ws(&out[2].request).opcode, opcode::CONTINUATION);
        // A 1 MB message keeps 8 bytes and counts them all.
        let big = frame(true, opcode::BINARY, None, &vec![7u8; 1 << 20]);
        let (out, _) = run(
            &mut WsSession::new(None),
            big.chunks(1460).map(S),
            &limits,
            0,
            FinishReason::Closed,
        );
        let m = ws(&out[0].response);
        assert_eq!((m.payload.len(), m.payload_size), (8, 1 << 20));
        // A reserved opcode stops the direction, a length with the top bit
        // set too; a bad close code and invalid UTF-8 are named.
        for (bytes, e) in [
            (b"\x83\x00".to_vec(), Error::Opcode),
            (b"\x82\x7f\xff\0\0\0\0\0\0\0".to_vec(), Error::Length),
            (frame(true, opcode::CLOSE, None, b"\x03"), Error::Close),
            (frame(true, opcode::CLOSE, None, b"\x00\x10"), Error::CloseCode),
            (frame(true, opcode::TEXT, None, b"\xc3\x28"), Error::Utf8),
            (frame(true, opcode::CONTINUATION, None, b"x"), Error::Continuation),
            (frame(true, opcode::TEXT, K, b"x"), Error::Framing),
        ] {
            let (_, errors) =
                run(&mut WsSession::new(None), [S(&bytes)], &limits, 0, FinishReason::Closed);
            assert_eq!(errors.get(e.into()), 1, "{e:?}");
        }
        // Corrupt deflate data is an error, not a panic.
        let hs = WsHandshake {
            server_extensions: Some("permessage-deflate".into()),
            ..WsHandshake::default()
        };
        let mut bad = frame(true, opcode::TEXT, None, b"\xff\xff\xff\xff");
        bad[0] |= 0x40;
        let (_, errors) =
            run(&mut WsSession::new(Some(hs)), [S(&bad)], &limits, 0, FinishReason::Closed);
        assert_eq!(errors.get(Error::Decompression.into()), 1);
    }

    #[test]
    fn gaps_inside_a_payload_keep_the_framing() {
        let big = frame(true, opcode::BINARY, None, &[1u8; 100]);
        let after = frame(true, opcode::TEXT, None, b"next");
        let (out, _) = run(
            &mut WsSession::new(None),
            [S(&big[..20]), GapS, S(&big[30..]), S(&after)],
            &Limits::default(),
            0,
            FinishReason::Closed,
        );
        assert_eq!(out.len(), 2);
        assert_eq!(ws(&out[0].response).payload_size, 100);
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Gap));
        assert_eq!(ws(&out[1].response).payload, b"next");
        // Unanswered pings at the end are emitted with the reason.
        let ping = frame(true, opcode::PING, K, b"");
        let (out, errors) = run(
            &mut WsSession::new(None),
            [C(&ping), C(&frame(true, opcode::TEXT, K, b"hello")[..8])],
            &Limits::default(),
            0,
            FinishReason::Closed,
        );
        assert_eq!(out.len(), 2, "the ping and the cut message");
        assert_eq!(errors.get(ErrorKind::Unpaired), 1);
        assert_eq!(errors.get(ErrorKind::TruncatedMessage), 1);
    }
}
