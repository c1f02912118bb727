//! The Redis session of one flow: a RESP reader per direction and the
//! queue of commands between them.
//!
//! Invariants: commands are queued in the order sent and replies pair with
//! them in that order (the server answers in order; pipelining is just a
//! deeper queue). A command the server was told not to answer (`CLIENT
//! REPLY OFF`, `SKIP`, and the `CLIENT REPLY OFF|SKIP` commands
//! themselves) waits its turn in the queue and leaves it without a reply,
//! so items still come out in command order. Pushes (RESP3 `>`, pub/sub
//! messages on a subscribed RESP2 connection, `MONITOR` output) never
//! consume a queued command. After lost data the pairing is only a guess
//! until the queue drains: items of that stretch carry a `gap` error.

use std::collections::VecDeque;

use super::parser::{self, AggKind, RespLimits, RespReader, RespValue, Step};
use super::{RedisCommand, RedisMessage, RedisReply};
use crate::dissectors::{
    Confidence, Direction, Dissector, ErrorKind, FinishReason, ParseCtx, ParseResult,
};
use crate::item::{set_error, Exchange, ItemError, ItemErrorKind, Message};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ReplyMode {
    #[default]
    On,
    Off,
    /// The next command goes unanswered.
    Skip,
}

struct Pending {
    cmd: RedisCommand,
    ts: u64,
    size: u64,
    error: Option<ItemError>,
    expects_reply: bool,
}

#[derive(Default)]
pub struct RedisSession {
    readers: [RespReader; 2],
    /// Capture time of the first byte of the value being read.
    start_ts: [Option<u64>; 2],
    pending: VecDeque<Pending>,
    reply_mode: ReplyMode,
    resp3: bool,
    subscribed: bool,
    monitor: bool,
    /// Further confirmations of a multi-channel (un)subscribe already paired.
    absorb: (Vec<u8>, u64),
    /// Data was lost: pairing is a guess until the queue drains.
    uncertain: bool,
    /// A direction lost its framing and skips to a plausible value start.
    resync: [bool; 2],
}

const SUBSCRIBE_KINDS: &[&[u8]] =
    &[b"subscribe", b"psubscribe", b"ssubscribe", b"unsubscribe", b"punsubscribe", b"sunsubscribe"];
const MESSAGE_KINDS: &[&[u8]] = &[b"message", b"pmessage", b"smessage"];

fn limits(ctx: &ParseCtx<'_>) -> RespLimits {
    RespLimits {
        max_field_bytes: ctx.limits.max_field_bytes,
        max_values: ctx.limits.max_redis_values,
        max_depth: ctx.limits.max_resp_depth,
    }
}

impl RedisSession {
    pub fn new() -> Self {
        RedisSession::default()
    }

    /// Content-based detection: a client's RESP array or inline command.
    pub fn probe(bytes: &[u8], dir: Direction) -> Confidence {
        match dir {
            Direction::ToServer => parser::probe(bytes),
            Direction::ToClient => Confidence::None,
        }
    }

    /// Commands waiting (for tests and introspection).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn emit(&mut self, p: Pending, reply: Option<(RedisReply, u64, u64)>, ctx: &mut ParseCtx<'_>) {
        let mut error = p.error;
        if self.uncertain {
            set_error(&mut error, ItemErrorKind::Gap, "reply pairing uncertain after lost data");
        }
        let (resp, resp_ts, resp_size) = match reply {
            Some((r, ts, size)) => (Some(Message::Redis(RedisMessage::Reply(r))), ts, size),
            None => (None, 0, 0),
        };
        ctx.out.push(Exchange {
            request: Some(Message::Redis(RedisMessage::Command(p.cmd))),
            response: resp,
            request_ts_ns: p.ts,
            response_ts_ns: resp_ts,
            request_size: p.size,
            response_size: resp_size,
            error,
        });
    }

    /// Emits the unanswered commands at the front of the queue.
    fn drain_unanswered(&mut self, ctx: &mut ParseCtx<'_>) {
        while self.pending.front().is_some_and(|p| !p.expects_reply) {
            if let Some(p) = self.pending.pop_front() {
                self.emit(p, None, ctx);
            }
        }
        if self.pending.is_empty() {
            self.uncertain = false;
        }
    }

    fn command(
        &mut self,
        args: Vec<Vec<u8>>,
        arg_count: u64,
        inline: bool,
        ts: u64,
        wire: u64,
        ctx: &mut ParseCtx<'_>,
    ) {
        let mut it = args.into_iter();
        let Some(name) = it.next() else {
            ctx.errors.bump(ErrorKind::RedisMalformed);
            return;
        };
        let name = String::from_utf8_lossy(&name).to_ascii_uppercase();
        let args: Vec<Vec<u8>> = it.collect();
        let arg = |i: usize| args.get(i).map(|a| a.to_ascii_uppercase());
        let mut expects_reply = self.reply_mode == ReplyMode::On;
        if self.reply_mode == ReplyMode::Skip {
            self.reply_mode = ReplyMode::On;
        }
        if name == "CLIENT" && arg(0).as_deref() == Some(b"REPLY") {
            match arg(1).as_deref() {
                Some(b"ON") => {
                    self.reply_mode = ReplyMode::On;
                    expects_reply = true;
                }
                Some(b"OFF") => {
                    self.reply_mode = ReplyMode::Off;
                    expects_reply = false;
                }
                Some(b"SKIP") => {
                    // SKIP under OFF changes nothing: everything is unanswered.
                    if self.reply_mode != ReplyMode::Off {
                        self.reply_mode = ReplyMode::Skip;
                    }
                    expects_reply = false;
                }
                _ => {}
            }
        }
        match name.as_str() {
            "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" => self.subscribed = true,
            "RESET" => {
                // The server forgets subscriptions, MONITOR and CLIENT REPLY.
                self.subscribed = false;
                self.monitor = false;
                self.reply_mode = ReplyMode::On;
            }
            _ => {}
        }
        if self.pending.len() >= ctx.limits.max_pending {
            // The oldest command is given up to bound memory.
            if let Some(mut old) = self.pending.pop_front() {
                ctx.errors.bump(ErrorKind::TooManyTransactions);
                set_error(
                    &mut old.error,
                    ItemErrorKind::Dissection,
                    ErrorKind::TooManyTransactions.name(),
                );
                self.emit(old, None, ctx);
            }
        }
        let cmd = RedisCommand {
            name,
            args,
            arg_count: arg_count.saturating_sub(1),
            inline,
            no_reply: !expects_reply,
            resp3: self.resp3,
        };
        self.pending.push_back(Pending { cmd, ts, size: wire, error: None, expects_reply });
        self.drain_unanswered(ctx);
    }

    /// Whether a server value is out-of-band (`Some(true)`), the next reply
    /// (`Some(false)`) or the rest of a reply already paired (`None`).
    fn is_push(&mut self, v: &RespValue) -> Option<bool> {
        let front =
            self.pending.iter().find(|p| p.expects_reply).map(|p| p.cmd.name.to_ascii_lowercase());
        if let RespValue::Aggregate {
            kind: kind @ (AggKind::Push | AggKind::Array), items, ..
        } = v
        {
            let tag = items.first().and_then(RespValue::as_bytes).map(|t| t.to_ascii_lowercase());
            if let Some(tag) = tag {
                if SUBSCRIBE_KINDS.contains(&tag.as_slice()) {
                    if self.absorb.1 > 0 && self.absorb.0 == tag {
                        // A further channel of an (un)subscribe already
                        // paired: part of that reply, not an item.
                        self.absorb.1 -= 1;
                        return None;
                    }
                    if front.as_deref().map(str::as_bytes) == Some(tag.as_slice()) {
                        return Some(false);
                    }
                    return Some(*kind == AggKind::Push || self.subscribed);
                }
                if *kind == AggKind::Array
                    && self.subscribed
                    && MESSAGE_KINDS.contains(&tag.as_slice())
                {
                    return Some(true);
                }
            }
            if *kind == AggKind::Push {
                return Some(true);
            }
        }
        Some(
            self.monitor
                && matches!(v, RespValue::Simple(_))
                && front.as_deref() != Some("monitor"),
        )
    }

    fn reply(&mut self, v: RespValue, ts: u64, wire: u64, ctx: &mut ParseCtx<'_>) {
        let Some(push) = self.is_push(&v) else { return };
        if push {
            let push = RedisReply { value: v, push: true, resp3: self.resp3 };
            ctx.out.push(Exchange {
                request: None,
                response: Some(Message::Redis(RedisMessage::Reply(push))),
                request_ts_ns: 0,
                response_ts_ns: ts,
                request_size: 0,
                response_size: wire,
                error: None,
            });
            return;
        }
        self.drain_unanswered(ctx);
        let Some(p) = self.pending.pop_front() else {
            ctx.errors.bump(ErrorKind::Unpaired);
            let mut error = None;
            set_error(&mut error, ItemErrorKind::PairNotFound, "reply without a command");
            let r = RedisReply { value: v, push: false, resp3: self.resp3 };
            ctx.out.push(Exchange {
                request: None,
                response: Some(Message::Redis(RedisMessage::Reply(r))),
                request_ts_ns: 0,
                response_ts_ns: ts,
                request_size: 0,
                response_size: wire,
                error,
            });
            return;
        };
        let ok = !v.is_error();
        let arg0 = p.cmd.args.first().map(|a| a.as_slice());
        match p.cmd.name.as_str() {
            "HELLO" if ok && arg0 == Some(b"3") => self.resp3 = true,
            "HELLO" if ok && arg0 == Some(b"2") => self.resp3 = false,
            "MONITOR" if ok => self.monitor = true,
            "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE"
            | "SUNSUBSCRIBE" => {
                self.absorb = (
                    p.cmd.name.to_ascii_lowercase().into_bytes(),
                    (p.cmd.args.len() as u64).saturating_sub(1),
                );
                if p.cmd.name.starts_with("UN")
                    || p.cmd.name.starts_with("PUN")
                    || p.cmd.name.starts_with("SUN")
                {
                    // The last confirmation says how many subscriptions remain.
                    let left = v
                        .items()
                        .and_then(|i| i.get(2))
                        .map(|c| matches!(c, RespValue::Integer(n) if *n > 0));
                    self.subscribed = left.unwrap_or(self.subscribed);
                }
            }
            _ => {}
        }
        let r = RedisReply { value: v, push: false, resp3: self.resp3 };
        self.emit(p, Some((r, ts, wire)), ctx);
        self.drain_unanswered(ctx);
    }

    fn resync(&mut self, dir: Direction, b: &[u8]) -> ParseResult {
        let plausible = |x: &[u8]| match dir {
            Direction::ToServer => {
                x.first() == Some(&b'*') && x.get(1).is_some_and(u8::is_ascii_digit)
            }
            Direction::ToClient => x.first().is_some_and(|c| b"+-:$*%~>_#,(!=|".contains(c)),
        };
        if plausible(b) {
            self.resync[dir.idx()] = false;
            return ParseResult::Continue { consumed: 0 };
        }
        match b.iter().position(|c| *c == b'\n') {
            Some(i) => ParseResult::Continue { consumed: i + 1 },
            None => ParseResult::Continue { consumed: b.len() },
        }
    }
}

impl Dissector for RedisSession {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if b.is_empty() {
            return ParseResult::Incomplete { consumed: 0, needed: 1 };
        }
        if self.resync[dir.idx()] {
            match self.resync(dir, b) {
                ParseResult::Continue { consumed: 0 } => {}
                r => return r,
            }
        }
        let ts = *self.start_ts[dir.idx()].get_or_insert(ctx.ts_ns);
        let reader = &mut self.readers[dir.idx()];
        if dir == Direction::ToServer && reader.idle() && b.first() != Some(&b'*') {
            // An inline command: one line, arguments split on whitespace.
            let Some(nl) = b.iter().position(|c| *c == b'\n') else {
                return ParseResult::Incomplete { consumed: 0, needed: 1 };
            };
            self.start_ts[dir.idx()] = None;
            let line = b.get(..nl).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match parser::split_inline(line) {
                Some(args) if args.is_empty() => {}
                Some(mut args) => {
                    let count = args.len() as u64;
                    let lim = limits(ctx);
                    args.truncate(lim.max_values.saturating_add(1));
                    for a in &mut args {
                        a.truncate(lim.max_field_bytes);
                    }
                    self.command(args, count, true, ts, nl as u64 + 1, ctx);
                }
                None => ctx.errors.bump(ErrorKind::RedisMalformed),
            }
            return ParseResult::Done { consumed: nl + 1 };
        }
        match reader.feed(b, &limits(ctx)) {
            Step::NeedMore { consumed } => ParseResult::Incomplete { consumed, needed: 1 },
            Step::Error(kind) => ParseResult::Error(kind),
            Step::Value { value, consumed, wire } => {
                self.start_ts[dir.idx()] = None;
                match dir {
                    Direction::ToServer => match value {
                        RespValue::Aggregate { kind: AggKind::Array, items, count } => {
                            let args: Vec<Vec<u8>> = items
                                .into_iter()
                                .map(|v| match v.as_bytes() {
                                    Some(x) => x.to_vec(),
                                    None => super::value_json(&v).to_string().into_bytes(),
                                })
                                .collect();
                            self.command(args, count, false, ts, wire, ctx);
                        }
                        _ => ctx.errors.bump(ErrorKind::RedisMalformed),
                    },
                    Direction::ToClient => self.reply(value, ts, wire, ctx),
                }
                ParseResult::Done { consumed }
            }
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _ctx: &mut ParseCtx<'_>) {
        self.readers[dir.idx()].reset();
        self.start_ts[dir.idx()] = None;
        self.resync[dir.idx()] = true;
        // Lost commands or lost replies: which reply answers which command
        // is unknown until the queue drains.
        self.uncertain = true;
        self.absorb.1 = 0;
    }

    fn on_end(&mut self, dir: Direction, ctx: &mut ParseCtx<'_>) {
        if !self.readers[dir.idx()].idle() {
            ctx.errors.bump(ErrorKind::TruncatedMessage);
            self.readers[dir.idx()].reset();
        }
    }

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        while let Some(mut p) = self.pending.pop_front() {
            if p.expects_reply {
                match reason {
                    FinishReason::Timeout => set_error(
                        &mut p.error,
                        ItemErrorKind::Timeout,
                        "no reply before the flow timed out",
                    ),
                    FinishReason::Closed => {
                        ctx.errors.bump(ErrorKind::Unpaired);
                        set_error(
                            &mut p.error,
                            ItemErrorKind::PairNotFound,
                            "connection closed without a reply",
                        );
                    }
                }
            }
            self.emit(p, None, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::DissectionErrors;
    use crate::dissectors::redis::message_json;
    use crate::dissectors::Limits;

    enum Step<'a> {
        C(&'a [u8]),
        S(&'a [u8]),
        GapC,
        GapS,
    }
    use self::Step::*;
    use crate::dissectors::script;

    fn run(steps: &[Step<'_>]) -> (Vec<Exchange>, DissectionErrors) {
        let steps = steps.iter().map(|st| match st {
            C(b) => script::Step::C(b),
            S(b) => script::Step::S(b),
            GapC => script::Step::GapC,
            GapS => script::Step::GapS,
        });
        script::run(
            &mut RedisSession::new(),
            steps,
            &Limits { max_field_bytes: 16, ..Limits::default() },
            0,
            FinishReason::Timeout,
        )
    }

    fn js(e: &Exchange) -> (serde_json::Value, serde_json::Value) {
        let j = |m: &Option<Message>| match m {
            Some(Message::Redis(r)) => message_json(r),
            _ => serde_json::Value::Null,
        };
        (j(&e.request), j(&e.response))
    }

    #[test]
    fn pipelined_resp_commands_pair_in_order_across_splits() {
        let (out, errors) = run(&[
            C(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n*2\r\n$3\r\nGET\r\n$1\r"),
            C(b"\nk\r\n*1\r\n$4\r\nPING\r\n"),
            S(b"+OK\r\n$5\r\nhel"),
            S(b"lo\r\n+PONG\r\n"),
        ]);
        assert_eq!(errors.total(), 0);
        assert_eq!(out.len(), 3);
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["command"].as_str(), q["key"].as_str(), q["args"][1].as_str()),
            (Some("SET"), Some("k"), Some("hello"))
        );
        assert_eq!(r["value"], "OK");
        let (q, r) = js(&out[1]);
        assert_eq!(
            (q["command"].as_str(), r["type"].as_str(), r["value"].as_str()),
            (Some("GET"), Some("bulk"), Some("hello"))
        );
        assert_eq!(out[1].request_size, 20);
        assert_eq!(out[1].response_size, 11);
        let (q, _) = js(&out[2]);
        assert_eq!(q["key"], serde_json::Value::Null);
        assert!(out.iter().all(|e| e.error.is_none()));
    }

    #[test]
    fn inline_commands_and_client_reply_off_on_skip() {
        let (out, _) = run(&[
            C(b"PING\r\nCLIENT REPLY OFF\r\nPING\r\nCLIENT REPLY ON\r\nPING\r\nCLIENT REPLY SKIP\r\nPING\r\nPING\r\n"),
            S(b"+PONG\r\n+OK\r\n+PONG\r\n+PONG\r\n"),
        ]);
        let got: Vec<(String, bool, Option<String>)> = out
            .iter()
            .map(|e| {
                let (q, r) = js(e);
                (
                    q["command"].as_str().unwrap_or("").to_string(),
                    q["noReply"].as_bool().unwrap_or(false),
                    r["value"].as_str().map(str::to_string),
                )
            })
            .collect();
        let want = [
            ("PING", false, Some("PONG")),
            ("CLIENT", true, None),
            ("PING", true, None),
            ("CLIENT", false, Some("OK")),
            ("PING", false, Some("PONG")),
            ("CLIENT", true, None),
            ("PING", true, None),
            ("PING", false, Some("PONG")),
        ];
        let want: Vec<(String, bool, Option<String>)> =
            want.iter().map(|(a, b, c)| (a.to_string(), *b, c.map(str::to_string))).collect();
        assert_eq!(got, want);
        assert!(out.iter().all(|e| e.error.is_none()), "{out:?}");
        assert!(js(&out[0]).0["inline"].as_bool().unwrap());
    }

    #[test]
    fn pubsub_messages_are_pushes_not_replies() {
        let (out, _) = run(&[
            C(b"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n"),
            S(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"),
            S(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n"),
            C(b"*1\r\n$4\r\nPING\r\n"),
            S(b"*4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$1\r\na\r\n$2\r\nyo\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
        ]);
        assert_eq!(out.len(), 4, "{out:#?}");
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["command"].as_str(), r["value"][0].as_str()),
            (Some("SUBSCRIBE"), Some("subscribe"))
        );
        let (q, r) = js(&out[1]);
        assert!(q.is_null());
        assert_eq!(
            (r["push"].as_bool(), r["channel"].as_str(), r["value"][2].as_str()),
            (Some(true), Some("a"), Some("hi"))
        );
        let (_, r) = js(&out[2]);
        assert_eq!((r["kind"].as_str(), r["pattern"].as_str()), (Some("pmessage"), Some("a*")));
        let (q, r) = js(&out[3]);
        assert_eq!((q["command"].as_str(), r["value"][0].as_str()), (Some("PING"), Some("pong")));
        assert!(out.iter().all(|e| e.error.is_none()));
    }

    #[test]
    fn resp3_hello_push_and_map() {
        let (out, _) = run(&[
            C(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"),
            S(b"%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n"),
            C(b"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n"),
            S(b">3\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\ny\r\n_\r\n_\r\n"),
        ]);
        assert_eq!(out.len(), 3);
        let (_, r) = js(&out[0]);
        assert_eq!(r["value"]["proto"], 3);
        assert!(matches!(&out[0].response, Some(Message::Redis(m)) if m.resp3()));
        let (q, r) = js(&out[1]);
        assert!(q.is_null() && r["push"].as_bool().unwrap());
        let (q, r) = js(&out[2]);
        assert_eq!((q["command"].as_str(), r["type"].as_str()), (Some("GET"), Some("null")));
    }

    #[test]
    fn gaps_mark_uncertain_pairing_until_the_queue_drains() {
        let (out, _) = run(&[
            C(b"*1\r\n$4\r\nPING\r\n"),
            GapC,
            C(b"\r\n*1\r\n$4\r\nPING\r\n"),
            S(b"+PONG\r\n+PONG\r\n"),
            C(b"*1\r\n$4\r\nPING\r\n"),
            S(b"+PONG\r\n"),
            GapS,
            S(b"lo\r\n+OK\r\n"),
        ]);
        assert_eq!(out.len(), 4, "{out:#?}");
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Gap));
        assert_eq!(out[1].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Gap));
        assert!(out[2].error.is_none());
        // After the server-side gap, a reply nobody asked for.
        assert_eq!(out[3].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
    }

    #[test]
    fn unanswered_and_malformed() {
        let (out, _) = run(&[C(b"*1\r\n$4\r\nPING\r\n")]);
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Timeout));
        let (out, errors) = run(&[C(b"*1\r\n$x\r\n"), S(b"+OK\r\n")]);
        assert_eq!(errors.get(ErrorKind::RedisMalformed), 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
    }
}
