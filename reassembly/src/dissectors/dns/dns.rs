//! The DNS session of one flow (a UDP conversation or a TCP connection).
//!
//! Queries wait in a bounded list until a response with the same
//! transaction id arrives. An answered query stays (marked) so that a second
//! response to it is still paired; unanswered queries become items with a
//! timeout or pair-not-found error when the flow ends. Over TCP, messages
//! carry a 2-byte length and several may share a segment; a gap loses the
//! framing, so that direction is skipped from then on.

use super::parser;
use super::DnsMessage;
use crate::dissectors::{
    Confidence, Direction, Dissector, ErrorKind, FinishReason, ParseCtx, ParseResult,
};
use crate::item::{set_error, Exchange, ItemError, ItemErrorKind, Message};

struct Pending {
    msg: DnsMessage,
    ts: u64,
    size: u64,
    answered: bool,
    error: Option<ItemError>,
}

pub struct DnsSession {
    tcp: bool,
    pending: Vec<Pending>,
    lost: [bool; 2],
}

impl DnsSession {
    pub fn new(tcp: bool) -> Self {
        DnsSession { tcp, pending: Vec::new(), lost: [false; 2] }
    }

    pub fn probe(bytes: &[u8], tcp: bool) -> Confidence {
        parser::probe(bytes, tcp)
    }

    fn message(&mut self, m: &[u8], wire: u64, ctx: &mut ParseCtx<'_>) {
        let (msg, anomaly) = match parser::parse_message(m) {
            Ok(x) => x,
            Err(kind) => {
                ctx.errors.bump(kind);
                return;
            }
        };
        let mut error = None;
        if let Some(kind) = anomaly {
            ctx.errors.bump(kind);
            set_error(&mut error, ItemErrorKind::Dissection, kind.name());
        }
        if !msg.is_response() {
            if self.pending.len() >= ctx.limits.max_pending_dns {
                // Forget an answered query first; else give up the oldest.
                let i = self.pending.iter().position(|p| p.answered).unwrap_or(0);
                let old = self.pending.remove(i);
                if !old.answered {
                    ctx.errors.bump(ErrorKind::TooManyTransactions);
                    let mut e = old.error;
                    set_error(
                        &mut e,
                        ItemErrorKind::Dissection,
                        ErrorKind::TooManyTransactions.name(),
                    );
                    ctx.out.push(exchange(Some(old.msg), old.ts, old.size, None, 0, 0, e));
                }
            }
            self.pending.push(Pending { msg, ts: ctx.ts_ns, size: wire, answered: false, error });
            return;
        }
        let found = self
            .pending
            .iter()
            .position(|p| p.msg.id == msg.id && !p.answered)
            .or_else(|| self.pending.iter().position(|p| p.msg.id == msg.id));
        match found.and_then(|i| self.pending.get_mut(i)) {
            Some(p) => {
                p.answered = true;
                let mut e = p.error.clone();
                if let Some(x) = error {
                    set_error(&mut e, x.kind, x.msg);
                }
                ctx.out.push(exchange(
                    Some(p.msg.clone()),
                    p.ts,
                    p.size,
                    Some(msg),
                    ctx.ts_ns,
                    wire,
                    e,
                ));
            }
            None => {
                ctx.errors.bump(ErrorKind::Unpaired);
                set_error(&mut error, ItemErrorKind::PairNotFound, "response without a query");
                ctx.out.push(exchange(None, 0, 0, Some(msg), ctx.ts_ns, wire, error));
            }
        }
    }
}

fn exchange(
    req: Option<DnsMessage>,
    req_ts: u64,
    req_size: u64,
    resp: Option<DnsMessage>,
    resp_ts: u64,
    resp_size: u64,
    error: Option<ItemError>,
) -> Exchange {
    Exchange {
        request: req.map(Message::Dns),
        response: resp.map(Message::Dns),
        request_ts_ns: req_ts,
        response_ts_ns: resp_ts,
        request_size: req_size,
        response_size: resp_size,
        error,
    }
}

impl Dissector for DnsSession {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if !self.tcp {
            self.message(b, b.len() as u64, ctx);
            return ParseResult::Done { consumed: b.len() };
        }
        if self.lost[dir.idx()] {
            return ParseResult::Continue { consumed: b.len() };
        }
        let Some(len) = b.get(..2).map(|x| usize::from(u16::from_be_bytes([x[0], x[1]]))) else {
            return ParseResult::Incomplete { consumed: 0, needed: 2 - b.len() };
        };
        match b.get(2..2 + len) {
            Some(m) => {
                self.message(m, 2 + len as u64, ctx);
                ParseResult::Done { consumed: 2 + len }
            }
            None => ParseResult::Incomplete { consumed: 0, needed: 2 + len - b.len() },
        }
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _ctx: &mut ParseCtx<'_>) {
        if self.tcp {
            self.lost[dir.idx()] = true;
        }
    }

    fn on_end(&mut self, _dir: Direction, _ctx: &mut ParseCtx<'_>) {}

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        for p in self.pending.drain(..) {
            if p.answered {
                continue;
            }
            let mut e = p.error;
            match reason {
                FinishReason::Timeout => set_error(
                    &mut e,
                    ItemErrorKind::Timeout,
                    "no response before the flow timed out",
                ),
                FinishReason::Closed => set_error(
                    &mut e,
                    ItemErrorKind::PairNotFound,
                    "connection closed without a response",
                ),
            }
            ctx.out.push(exchange(Some(p.msg), p.ts, p.size, None, 0, 0, e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::tests::{query, response};
    use super::*;
    use crate::counters::DissectionErrors;
    use crate::dissectors::{drive, Limits, StreamBuf};

    fn run(tcp: bool, msgs: &[(&[u8], u64)]) -> (Vec<Exchange>, DissectionErrors) {
        let mut out = Vec::new();
        let mut errors = DissectionErrors::default();
        let limits = Limits::default();
        let mut s = DnsSession::new(tcp);
        for (m, ts) in msgs {
            let mut ctx =
                ParseCtx { ts_ns: *ts, out: &mut out, errors: &mut errors, limits: &limits };
            s.parse(m, Direction::ToServer, &mut ctx);
        }
        let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits: &limits };
        s.finish(FinishReason::Timeout, &mut ctx);
        (out, errors)
    }

    #[test]
    fn pairs_by_id_and_handles_two_responses() {
        let q = query(5, "www.cmu.edu", 1);
        let r1 = response(5, "www.cmu.edu", 1, &[(1, vec![128, 2, 10, 163])]);
        let r2 = response(5, "www.cmu.edu", 1, &[(1, vec![128, 2, 10, 164])]);
        let q2 = query(6, "never.answered", 1);
        let (out, _) = run(false, &[(&q, 1_000), (&r1, 3_000), (&r2, 4_000), (&q2, 5_000)]);
        assert_eq!(out.len(), 3);
        assert!(out[0].request.is_some() && out[0].response.is_some() && out[0].error.is_none());
        assert_eq!(out[0].response_ts_ns - out[0].request_ts_ns, 2_000);
        assert!(out[1].request.is_some() && out[1].response.is_some(), "second response pairs too");
        assert!(out[2].response.is_none());
        assert_eq!(out[2].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Timeout));
    }

    #[test]
    fn orphan_response_is_pair_not_found() {
        let r = response(5, "x.org", 1, &[]);
        let (out, errors) = run(false, &[(&r, 0)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
        assert_eq!(errors.get(ErrorKind::Unpaired), 1);
    }

    #[test]
    fn tcp_framing_several_messages_per_segment_and_split() {
        let q = query(1, "a.example", 28);
        let r = response(1, "a.example", 28, &[(28, vec![0; 16])]);
        let q2 = query(2, "b.example", 1);
        let mut client = Vec::new();
        for m in [&q, &q2] {
            client.extend_from_slice(&(m.len() as u16).to_be_bytes());
            client.extend_from_slice(m);
        }
        let mut server = (r.len() as u16).to_be_bytes().to_vec();
        server.extend_from_slice(&r);
        let mut out = Vec::new();
        let mut errors = DissectionErrors::default();
        let limits = Limits::default();
        let mut s = DnsSession::new(true);
        let (mut b0, mut b1) = (StreamBuf::default(), StreamBuf::default());
        let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits: &limits };
        drive(&mut s, &mut b0, Direction::ToServer, &client, 1 << 16, &mut ctx);
        for piece in server.chunks(3) {
            drive(&mut s, &mut b1, Direction::ToClient, piece, 1 << 16, &mut ctx);
        }
        s.finish(FinishReason::Closed, &mut ctx);
        assert_eq!(out.len(), 2);
        assert!(out[0].response.is_some());
        assert_eq!(out[0].request_size, q.len() as u64 + 2);
        assert_eq!(out[1].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
    }

    #[test]
    fn malformed_response_is_flagged_not_dropped() {
        let q = query(9, "loop.test", 1);
        let mut r = response(9, "loop.test", 1, &[(1, vec![1, 2, 3, 4])]);
        let n = r.len();
        r[n - 16] = 0xc0; // answer owner name: pointer to itself
        r[n - 15] = (n - 16) as u8;
        let (out, errors) = run(false, &[(&q, 0), (&r, 1)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Dissection));
        assert_eq!(errors.get(ErrorKind::DnsPointerLoop), 1);
        let (out, errors) = run(false, &[(&[1, 2, 3], 0)]);
        assert!(out.is_empty());
        assert_eq!(errors.get(ErrorKind::DnsTruncated), 1);
    }
}
