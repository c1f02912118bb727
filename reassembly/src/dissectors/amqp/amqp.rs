//! The AMQP 0-9-1 session of one connection.
//!
//! Invariants: frames of one channel arrive in order and a content header
//! and its body frames follow their method on the same channel without
//! other frames of that channel between them (frames of other channels
//! may interleave); so content is assembled per channel, for at most
//! `max_amqp_channels` channels. Synchronous methods wait, per channel,
//! for a reply from the other side; an asynchronous method is emitted as
//! soon as it (and its content) is complete. Body frames stream through
//! (only the first `max_field_bytes` are kept); method and header frames
//! are held whole up to the message buffer limit. After lost data a
//! direction skips to the next plausible frame and content in assembly is
//! emitted with a `gap` error.

use super::parser::{
    self, frame_type, FrameHeader, Value as Field, FRAME_END, FRAME_HEADER, PROTOCOL_HEADER,
};
use super::AmqpMessage;
use crate::dissectors::{
    Confidence, Direction, Dissector, ErrorKind, FinishReason, ParseCtx, ParseResult,
};
use crate::item::{set_error, Exchange, ItemError, ItemErrorKind, Message};

/// A method waiting for something: its reply (`awaiting`), or its content.
struct Tx {
    msg: AmqpMessage,
    ts: u64,
    size: u64,
    /// A synchronous request: the reply method ids it waits for.
    awaiting: &'static [u16],
    /// The request a content-bearing reply (`basic.get-ok`) answers.
    request: Option<Box<Tx>>,
    error: Option<ItemError>,
}

/// Content being assembled on one channel.
struct Content {
    dir: Direction,
    tx: Tx,
    header: bool,
    remaining: u64,
}

#[derive(Default)]
pub struct AmqpSession {
    /// Synchronous requests waiting for their replies, oldest first.
    pending: Vec<(u16, Direction, Tx)>,
    /// Content in assembly per channel.
    contents: Vec<(u16, Content)>,
    /// Body frame in progress per direction: (channel, bytes left).
    body: [Option<(u16, u32)>; 2],
    /// A frame-end octet is due after a streamed body frame.
    end_due: [bool; 2],
    skip: [u64; 2],
    resync: [bool; 2],
}

impl AmqpSession {
    pub fn new() -> Self {
        AmqpSession::default()
    }

    /// Content-based detection: the protocol header or a method frame.
    pub fn probe(bytes: &[u8], dir: Direction) -> Confidence {
        match dir {
            Direction::ToServer => parser::probe(bytes),
            // Only a method frame: the protocol header comes from the client.
            Direction::ToClient if !bytes.starts_with(b"AMQP") => parser::probe(bytes),
            Direction::ToClient => Confidence::None,
        }
    }

    fn emit(&mut self, tx: Tx, resp: Option<(Tx, Option<ItemError>)>, ctx: &mut ParseCtx<'_>) {
        let mut error = tx.error;
        let (response, resp_ts, resp_size) = match resp {
            Some((r, e)) => {
                if let Some(e) = e.or(r.error) {
                    set_error(&mut error, e.kind, e.msg);
                }
                (Some(Message::Amqp(r.msg)), r.ts, r.size)
            }
            None => (None, 0, 0),
        };
        ctx.out.push(Exchange {
            request: Some(Message::Amqp(tx.msg)),
            response,
            request_ts_ns: tx.ts,
            response_ts_ns: resp_ts,
            request_size: tx.size,
            response_size: resp_size,
            error,
        });
    }

    /// A complete method (with its content, if any).
    fn complete(&mut self, dir: Direction, mut tx: Tx, ctx: &mut ParseCtx<'_>) {
        let ch = tx.msg.channel;
        let (class, method) = (tx.msg.class_id, tx.msg.method_id);
        if let Some(req) = tx.request.take() {
            self.emit(*req, Some((tx, None)), ctx);
            return;
        }
        // A reply to a waiting request of the other side.
        let reply = self.pending.iter().position(|(c, d, p)| {
            *c == ch && *d != dir && p.msg.class_id == class && p.awaiting.contains(&method)
        });
        if let Some(i) = reply {
            let (_, _, req) = self.pending.remove(i);
            self.emit(req, Some((tx, None)), ctx);
            return;
        }
        if matches!((class, method), (10, 50) | (20, 40)) {
            // A close answers the requests it interrupts: on its channel
            // (every channel for the connection) from the other side.
            let mut k = 0;
            while k < self.pending.len() {
                let hit = self
                    .pending
                    .get(k)
                    .is_some_and(|(c, d, _)| *d != dir && (class == 10 || *c == ch));
                if hit {
                    let (_, _, req) = self.pending.remove(k);
                    let copy = Tx {
                        msg: tx.msg.clone(),
                        ts: tx.ts,
                        size: 0,
                        awaiting: &[],
                        request: None,
                        error: None,
                    };
                    self.emit(req, Some((copy, None)), ctx);
                } else {
                    k += 1;
                }
            }
        }
        let no_wait = matches!(tx.msg.argument("noWait"), Some(Field::Bool(true)));
        if !tx.awaiting.is_empty() && !no_wait {
            if self.pending.len() >= ctx.limits.max_pending {
                let (_, _, mut old) = self.pending.remove(0);
                ctx.errors.bump(ErrorKind::TooManyTransactions);
                set_error(
                    &mut old.error,
                    ItemErrorKind::Dissection,
                    ErrorKind::TooManyTransactions.name(),
                );
                self.emit(old, None, ctx);
            }
            self.pending.push((ch, dir, tx));
            return;
        }
        if method_is_reply(class, method) {
            ctx.errors.bump(ErrorKind::Unpaired);
            set_error(&mut tx.error, ItemErrorKind::PairNotFound, "reply without a request");
        }
        self.emit(tx, None, ctx);
    }

    fn method_frame(
        &mut self,
        dir: Direction,
        channel: u16,
        payload: &[u8],
        wire: u64,
        ctx: &mut ParseCtx<'_>,
    ) {
        let ids = payload
            .get(..4)
            .map(|x| (u16::from_be_bytes([x[0], x[1]]), u16::from_be_bytes([x[2], x[3]])));
        let Some((class, method)) = ids else {
            ctx.errors.bump(ErrorKind::AmqpMalformed);
            return;
        };
        let Some((name, spec)) = parser::method(class, method) else {
            ctx.errors.bump(ErrorKind::AmqpMalformed);
            return;
        };
        let msg = AmqpMessage {
            method: name,
            class_id: class,
            method_id: method,
            channel,
            from_client: dir == Direction::ToServer,
            arguments: parser::arguments(
                payload.get(4..).unwrap_or_default(),
                spec,
                ctx.limits.max_field_bytes,
            ),
            ..AmqpMessage::default()
        };
        let mut tx = Tx {
            msg,
            ts: ctx.ts_ns,
            size: wire,
            awaiting: parser::replies(class, method),
            request: None,
            error: None,
        };
        if !parser::has_content(class, method) {
            self.complete(dir, tx, ctx);
            return;
        }
        if (class, method) == (60, 71) {
            // basic.get-ok: the reply comes with content; pair it now.
            let i = self
                .pending
                .iter()
                .position(|(c, d, p)| *c == channel && *d != dir && p.awaiting.contains(&71));
            if let Some(i) = i {
                let (_, _, req) = self.pending.remove(i);
                tx.request = Some(Box::new(req));
            }
        }
        if let Some(k) = self.contents.iter().position(|(c, _)| *c == channel) {
            // The previous content never finished: emit what there is.
            let (_, mut old) = self.contents.remove(k);
            ctx.errors.bump(ErrorKind::TruncatedMessage);
            set_error(
                &mut old.tx.error,
                ItemErrorKind::Dissection,
                ErrorKind::TruncatedMessage.name(),
            );
            self.complete(old.dir, old.tx, ctx);
        }
        if self.contents.len() >= ctx.limits.max_amqp_channels {
            ctx.errors.bump(ErrorKind::TooManyTransactions);
            set_error(
                &mut tx.error,
                ItemErrorKind::Dissection,
                ErrorKind::TooManyTransactions.name(),
            );
            self.complete(dir, tx, ctx);
            return;
        }
        self.contents.push((channel, Content { dir, tx, header: false, remaining: 0 }));
    }

    fn content_done(&mut self, k: usize, ctx: &mut ParseCtx<'_>) {
        let (_, c) = self.contents.remove(k);
        self.complete(c.dir, c.tx, ctx);
    }

    fn header_frame(&mut self, channel: u16, payload: &[u8], wire: u64, ctx: &mut ParseCtx<'_>) {
        let Some(k) = self.contents.iter().position(|(c, x)| *c == channel && !x.header) else {
            ctx.errors.bump(ErrorKind::AmqpMalformed);
            return;
        };
        let Some((size, props)) = parser::content_header(payload, ctx.limits.max_field_bytes)
        else {
            ctx.errors.bump(ErrorKind::AmqpMalformed);
            return;
        };
        if let Some((_, c)) = self.contents.get_mut(k) {
            c.header = true;
            c.remaining = size;
            c.tx.size += wire;
            c.tx.msg.properties = props;
            c.tx.msg.body_size = Some(size);
        }
        if size == 0 {
            self.content_done(k, ctx);
        }
    }

    fn body_bytes(&mut self, channel: u16, bytes: &[u8], wire: u64, ctx: &mut ParseCtx<'_>) {
        let Some(k) = self.contents.iter().position(|(c, x)| *c == channel && x.header) else {
            return;
        };
        let keep = ctx.limits.max_field_bytes;
        let done = match self.contents.get_mut(k) {
            Some((_, c)) => {
                let room = keep.saturating_sub(c.tx.msg.body.len());
                c.tx.msg
                    .body
                    .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
                c.tx.size += wire;
                c.remaining = c.remaining.saturating_sub(bytes.len() as u64);
                c.remaining == 0
            }
            None => false,
        };
        if done {
            self.content_done(k, ctx);
        }
    }

    fn credit(&mut self, channel: u16, wire: u64) {
        if let Some((_, c)) = self.contents.iter_mut().find(|(c, _)| *c == channel) {
            c.tx.size += wire;
        }
    }

    fn resync(&mut self, dir: Direction, b: &[u8]) -> ParseResult {
        // A frame header whose frame-end octet is where it should be.
        let ok = |x: &[u8]| {
            parser::frame_header(x)
                .filter(parser::plausible)
                .and_then(|h| x.get(FRAME_HEADER + h.size as usize))
                .map(|e| *e == FRAME_END)
        };
        for i in 0..b.len() {
            match b.get(i..).and_then(ok) {
                Some(true) if i == 0 => {
                    self.resync[dir.idx()] = false;
                    return ParseResult::Continue { consumed: 0 };
                }
                Some(true) => return ParseResult::Continue { consumed: i },
                Some(false) => {}
                // Not enough bytes to tell: wait at a plausible header.
                None if b
                    .get(i..)
                    .and_then(parser::frame_header)
                    .is_some_and(|h| parser::plausible(&h) && h.size < 1 << 16) =>
                {
                    return if i == 0 {
                        ParseResult::Incomplete { consumed: 0, needed: 1 }
                    } else {
                        ParseResult::Continue { consumed: i }
                    };
                }
                None => {}
            }
        }
        ParseResult::Continue { consumed: b.len() }
    }
}

fn method_is_reply(class: u16, method: u16) -> bool {
    (10..200).contains(&method)
        && !parser::replies(class, method - 1).is_empty()
        && parser::replies(class, method - 1).contains(&method)
        || (class, method) == (40, 51)
        || (class, method) == (60, 72)
}

impl Dissector for AmqpSession {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if b.is_empty() {
            return ParseResult::Incomplete { consumed: 0, needed: 1 };
        }
        let i = dir.idx();
        if let Some((ch, left)) = self.body[i] {
            let n = (left as usize).min(b.len());
            let left = left - n as u32;
            self.body[i] = (left > 0).then_some((ch, left));
            self.end_due[i] = left == 0;
            self.body_bytes(ch, b.get(..n).unwrap_or_default(), n as u64, ctx);
            return ParseResult::Continue { consumed: n };
        }
        if self.end_due[i] {
            self.end_due[i] = false;
            if b.first() != Some(&FRAME_END) {
                ctx.errors.bump(ErrorKind::AmqpMalformed);
                self.resync[i] = true;
            }
            return ParseResult::Continue { consumed: 1 };
        }
        if self.skip[i] > 0 {
            let n = self.skip[i].min(b.len() as u64);
            self.skip[i] -= n;
            return ParseResult::Continue { consumed: n as usize };
        }
        if self.resync[i] {
            match self.resync(dir, b) {
                ParseResult::Continue { consumed: 0 } => {}
                r => return r,
            }
        }
        if b.first() == Some(&b'A') {
            // The protocol header (or a broker's counter-proposal).
            let n = b.len().min(PROTOCOL_HEADER.len());
            if b.get(..n.min(4)) == Some(&b"AMQP"[..n.min(4)]) {
                if b.len() < PROTOCOL_HEADER.len() {
                    return ParseResult::Incomplete {
                        consumed: 0,
                        needed: PROTOCOL_HEADER.len() - b.len(),
                    };
                }
                return ParseResult::Done { consumed: PROTOCOL_HEADER.len() };
            }
        }
        let Some(h) = parser::frame_header(b) else {
            return ParseResult::Incomplete { consumed: 0, needed: FRAME_HEADER - b.len() };
        };
        let FrameHeader { ty, channel, size } = h;
        if !parser::plausible(&h) {
            return ParseResult::Error(ErrorKind::AmqpMalformed);
        }
        let total = FRAME_HEADER + size as usize + 1;
        if ty == frame_type::BODY {
            self.credit(channel, FRAME_HEADER as u64 + 1);
            if size == 0 {
                self.end_due[i] = true;
            } else {
                self.body[i] = Some((channel, size));
            }
            return ParseResult::Continue { consumed: FRAME_HEADER };
        }
        if total > ctx.limits.max_head_bytes {
            // A method or header frame too large to hold: skipped whole.
            ctx.errors.bump(ErrorKind::HeaderTooLarge);
            self.skip[i] = total as u64 - FRAME_HEADER as u64;
            return ParseResult::Continue { consumed: FRAME_HEADER };
        }
        let Some(frame) = b.get(..total) else {
            return ParseResult::Incomplete { consumed: 0, needed: total - b.len() };
        };
        if frame.last() != Some(&FRAME_END) {
            ctx.errors.bump(ErrorKind::AmqpMalformed);
            self.resync[i] = true;
            return ParseResult::Continue { consumed: 1 };
        }
        let payload = frame.get(FRAME_HEADER..total - 1).unwrap_or_default();
        match ty {
            frame_type::METHOD => self.method_frame(dir, channel, payload, total as u64, ctx),
            frame_type::HEADER => self.header_frame(channel, payload, total as u64, ctx),
            _ => {}
        }
        ParseResult::Done { consumed: total }
    }

    fn on_gap(&mut self, dir: Direction, len: u32, ctx: &mut ParseCtx<'_>) {
        let i = dir.idx();
        self.body[i] = None;
        self.end_due[i] = false;
        self.skip[i] = 0;
        self.resync[i] = true;
        // Content this direction was sending is incomplete now.
        let mut k = 0;
        while k < self.contents.len() {
            if self.contents.get(k).is_some_and(|(_, c)| c.dir == dir) {
                let (_, mut c) = self.contents.remove(k);
                set_error(
                    &mut c.tx.error,
                    ItemErrorKind::Gap,
                    format!("{len} bytes lost in the content"),
                );
                self.complete(c.dir, c.tx, ctx);
            } else {
                k += 1;
            }
        }
    }

    fn on_end(&mut self, _dir: Direction, _ctx: &mut ParseCtx<'_>) {}

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        for (_, mut c) in std::mem::take(&mut self.contents) {
            ctx.errors.bump(ErrorKind::TruncatedMessage);
            set_error(
                &mut c.tx.error,
                ItemErrorKind::Dissection,
                ErrorKind::TruncatedMessage.name(),
            );
            match c.tx.request.take() {
                Some(req) => self.emit(*req, Some((c.tx, None)), ctx),
                None => self.emit(c.tx, None, ctx),
            }
        }
        for (_, _, mut tx) in std::mem::take(&mut self.pending) {
            // A close-ok never comes when the peer just drops the socket.
            match reason {
                FinishReason::Timeout => set_error(
                    &mut tx.error,
                    ItemErrorKind::Timeout,
                    "no reply before the flow timed out",
                ),
                FinishReason::Closed => {
                    ctx.errors.bump(ErrorKind::Unpaired);
                    set_error(
                        &mut tx.error,
                        ItemErrorKind::PairNotFound,
                        "connection closed without a reply",
                    );
                }
            }
            self.emit(tx, None, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::message_json;
    use super::super::parser::tests::{frame, method_frame, publish, shortstr};
    use super::*;
    use crate::dissectors::Limits;
    use serde_json::Value;

    enum Step {
        C(Vec<u8>),
        S(Vec<u8>),
        GapC,
    }
    use self::Step::*;
    use crate::dissectors::script;

    fn run(steps: &[Step]) -> Vec<Exchange> {
        let steps = steps.iter().map(|st| match st {
            C(b) => script::Step::C(b),
            S(b) => script::Step::S(b),
            GapC => script::Step::GapC,
        });
        script::run(
            &mut AmqpSession::new(),
            steps,
            &Limits { max_field_bytes: 10, ..Limits::default() },
            0,
            FinishReason::Closed,
        )
        .0
    }

    fn js(e: &Exchange) -> (Value, Value) {
        let j = |m: &Option<Message>| match m {
            Some(Message::Amqp(r)) => message_json(r),
            _ => Value::Null,
        };
        (j(&e.request), j(&e.response))
    }

    fn names(out: &[Exchange]) -> Vec<(String, String)> {
        out.iter()
            .map(|e| {
                let (q, r) = js(e);
                (
                    q["method"].as_str().unwrap_or("-").to_string(),
                    r["method"].as_str().unwrap_or("-").to_string(),
                )
            })
            .collect()
    }

    fn start() -> Vec<u8> {
        let props = [shortstr("product"), vec![b'S', 0, 0, 0, 8], b"RabbitMQ".to_vec()].concat();
        let args = [
            vec![0, 9],
            (props.len() as u32).to_be_bytes().to_vec(),
            props,
            vec![0, 0, 0, 5],
            b"PLAIN".to_vec(),
            vec![0, 0, 0, 5],
            b"en_US".to_vec(),
        ]
        .concat();
        method_frame(0, 10, 10, &args)
    }

    #[test]
    fn connection_and_channel_lifecycle_publish_and_deliver() {
        let start_ok = method_frame(
            0,
            10,
            11,
            &[&[0, 0, 0, 0][..], &shortstr("PLAIN"), &[0, 0, 0, 4], b"\0u\0p", &shortstr("en_US")]
                .concat(),
        );
        let tune = method_frame(0, 10, 30, &[0, 0, 0, 2, 0, 0, 0, 60]);
        let tune_ok = method_frame(0, 10, 31, &[0, 0, 0, 2, 0, 0, 0, 60]);
        let open = method_frame(0, 10, 40, &[&shortstr("/")[..], &[0, 0]].concat());
        let deliver_args = [
            shortstr("ctag"),
            1u64.to_be_bytes().to_vec(),
            vec![0],
            shortstr("ex"),
            shortstr("rk"),
        ]
        .concat();
        let mut deliver = method_frame(1, 60, 60, &deliver_args);
        deliver.extend_from_slice(
            &publish(1, "", "", b"", 1)[method_frame(1, 60, 40, &[0, 0, 0, 0, 0]).len()..],
        );
        let out = run(&[
            C(PROTOCOL_HEADER.to_vec()),
            S(start()),
            C(start_ok),
            S(tune),
            C([tune_ok, open].concat()),
            S(method_frame(0, 10, 41, &[0])),
            C(method_frame(1, 20, 10, &[0])),
            S(method_frame(1, 20, 11, &[0, 0, 0, 0])),
            C(publish(1, "ex", "orders.new", b"hello world", 4)),
            S(deliver),
            C(method_frame(1, 60, 80, &[0, 0, 0, 0, 0, 0, 0, 1, 0])),
            C(method_frame(1, 20, 40, &[&[0, 200][..], &shortstr("bye"), &[0, 0, 0, 0]].concat())),
            S(method_frame(1, 20, 41, &[])),
        ]);
        let want = [
            ("connection.start", "connection.start-ok"),
            ("connection.tune", "connection.tune-ok"),
            ("connection.open", "connection.open-ok"),
            ("channel.open", "channel.open-ok"),
            ("basic.publish", "-"),
            ("basic.deliver", "-"),
            ("basic.ack", "-"),
            ("channel.close", "channel.close-ok"),
        ];
        assert_eq!(
            names(&out),
            want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>()
        );
        let (q, r) = js(&out[0]);
        assert_eq!(
            (
                q["from"].as_str(),
                q["serverProperties"]["product"].as_str(),
                r["mechanism"].as_str()
            ),
            (Some("server"), Some("RabbitMQ"), Some("PLAIN"))
        );
        assert!(r.get("_response").is_none());
        let (q, _) = js(&out[4]);
        assert_eq!(
            (
                q["exchange"].as_str(),
                q["routingKey"].as_str(),
                q["bodySize"].as_u64(),
                q["body"].as_str()
            ),
            (Some("ex"), Some("orders.new"), Some(11), Some("hello worl"))
        );
        assert_eq!(
            (q["properties"]["contentType"].as_str(), q["properties"]["headers"]["x-n"].as_i64()),
            (Some("text/plain"), Some(7))
        );
        let (q, _) = js(&out[5]);
        assert_eq!(
            (q["from"].as_str(), q["deliveryTag"].as_u64(), q["bodySize"].as_u64()),
            (Some("server"), Some(1), Some(0))
        );
        assert!(out.iter().all(|e| e.error.is_none()), "{out:#?}");
    }

    #[test]
    fn interleaved_channels_get_ok_and_close_as_answer() {
        let p1 = publish(1, "a", "k1", b"0123456789", 3);
        let p2 = publish(2, "b", "k2", b"xyz", 1);
        // Interleave the two channels frame by frame.
        let split = |p: &[u8]| -> Vec<Vec<u8>> {
            let mut v = Vec::new();
            let mut at = 0;
            while let Some(h) = parser::frame_header(&p[at..]) {
                let n = FRAME_HEADER + h.size as usize + 1;
                v.push(p[at..at + n].to_vec());
                at += n;
            }
            v
        };
        let (f1, f2) = (split(&p1), split(&p2));
        let mut mixed = Vec::new();
        for k in 0..f1.len().max(f2.len()) {
            mixed.extend(f1.get(k).cloned().unwrap_or_default());
            mixed.extend(f2.get(k).cloned().unwrap_or_default());
        }
        let get = method_frame(3, 60, 70, &[&[0, 0][..], &shortstr("q"), &[0]].concat());
        let get_ok_args =
            [1u64.to_be_bytes().to_vec(), vec![0], shortstr(""), shortstr("q"), vec![0, 0, 0, 4]]
                .concat();
        let get_ok = [
            method_frame(3, 60, 71, &get_ok_args),
            publish(3, "", "", b"m", 1)[method_frame(3, 60, 40, &[0, 0, 0, 0, 0]).len()..].to_vec(),
        ]
        .concat();
        let declare = method_frame(
            4,
            50,
            10,
            &[&[0, 0][..], &shortstr("missing"), &[1], &[0, 0, 0, 0]].concat(),
        );
        let close = method_frame(
            4,
            20,
            40,
            &[&[1, 148][..], &shortstr("NOT_FOUND"), &[0, 50, 0, 10]].concat(),
        );
        let out = run(&[
            C(mixed),
            C(get),
            S(get_ok),
            C(declare),
            S(close),
            C(method_frame(4, 20, 41, &[])),
        ]);
        let n = names(&out);
        assert_eq!(
            n[..2],
            [
                ("basic.publish".to_string(), "-".to_string()),
                ("basic.publish".to_string(), "-".to_string())
            ]
        );
        let mut bodies: Vec<_> =
            out[..2].iter().map(|e| js(e).0["body"].as_str().unwrap_or("").to_string()).collect();
        bodies.sort();
        assert_eq!(bodies, vec!["0123456789", "xyz"]);
        assert_eq!(n[2], ("basic.get".to_string(), "basic.get-ok".to_string()));
        assert_eq!(js(&out[2]).1["body"], "m");
        assert_eq!(n[3], ("queue.declare".to_string(), "channel.close".to_string()));
        assert_eq!(js(&out[3]).1["replyCode"], 404);
        assert_eq!(n[4], ("channel.close".to_string(), "channel.close-ok".to_string()));
        assert!(out.iter().all(|e| e.error.is_none()), "{out:#?}");
    }

    #[test]
    fn gaps_no_wait_and_unanswered() {
        let decl_nowait = method_frame(
            1,
            50,
            10,
            &[&[0, 0][..], &shortstr("q"), &[0b1_0000], &[0, 0, 0, 0]].concat(),
        );
        let p = publish(1, "", "q", b"0123456789", 4);
        let out = run(&[
            C([decl_nowait, p[..p.len() - 8].to_vec()].concat()),
            GapC,
            C(frame(8, 0, &[])),
            C(method_frame(1, 60, 70, &[&[0, 0][..], &shortstr("q"), &[0]].concat())),
        ]);
        let n = names(&out);
        assert_eq!(n[0], ("queue.declare".to_string(), "-".to_string()));
        assert!(out[0].error.is_none());
        assert_eq!(out[1].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Gap));
        assert_eq!(n[2], ("basic.get".to_string(), "-".to_string()));
        assert_eq!(out[2].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
    }
}
