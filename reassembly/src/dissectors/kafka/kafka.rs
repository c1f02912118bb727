//! The Kafka session of one flow: requests waiting for their responses.
//!
//! Invariants: a response names its request by correlation id, and a
//! broker answers a connection's requests in order; so a response pairs
//! with the pending request of the same id, and requests sent before it
//! that are still waiting will never be answered (they are emitted with a
//! `pair-not-found` error then, which also bounds memory). A Produce with
//! `acks=0` expects no response and is emitted at once. A message larger
//! than the buffer is parsed from its first bytes and the rest skipped as
//! it streams by. After lost data a direction skips to the next plausible
//! message start: a request header for the client, a size followed by a
//! pending correlation id for the server.

use std::collections::VecDeque;

use super::parser::{self, Rd};
use super::{KafkaMessage, KafkaRequest, KafkaResponse};
use crate::dissectors::{
    framed, skip_rest, unanswered, Confidence, Direction, Dissector, ErrorKind, FinishReason,
    ParseCtx, ParseResult,
};
use crate::item::{set_error, Exchange, ItemError, ItemErrorKind, Message};

struct Pending {
    req: KafkaRequest,
    ts: u64,
    size: u64,
    error: Option<ItemError>,
}

#[derive(Default)]
pub struct KafkaSession {
    pending: VecDeque<Pending>,
    /// Bytes of a message larger than the buffer still to skip.
    skip: [u64; 2],
    resync: [bool; 2],
}

fn exchange(
    p: Option<Pending>,
    resp: Option<(KafkaResponse, u64, u64)>,
    error: Option<ItemError>,
) -> Exchange {
    let (req, req_ts, req_size, mut err) = match p {
        Some(p) => (Some(p.req), p.ts, p.size, p.error),
        None => (None, 0, 0, None),
    };
    if let Some(e) = error {
        set_error(&mut err, e.kind, e.msg);
    }
    let (resp, resp_ts, resp_size) = match resp {
        Some((r, ts, size)) => (Some(r), ts, size),
        None => (None, 0, 0),
    };
    Exchange {
        request: req.map(|r| Message::Kafka(KafkaMessage::Request(r))),
        response: resp.map(|r| Message::Kafka(KafkaMessage::Response(r))),
        request_ts_ns: req_ts,
        response_ts_ns: resp_ts,
        request_size: req_size,
        response_size: resp_size,
        error: err,
    }
}

impl KafkaSession {
    pub fn new() -> Self {
        KafkaSession::default()
    }

    /// Content-based detection: a request header from the client.
    pub fn probe(bytes: &[u8], dir: Direction) -> Confidence {
        match dir {
            Direction::ToServer => parser::probe(bytes),
            Direction::ToClient => Confidence::None,
        }
    }

    fn request(&mut self, m: &[u8], total: usize, ctx: &mut ParseCtx<'_>) {
        let lim = ctx.limits;
        let Some(h) = parser::request_header(m, lim.max_field_bytes) else {
            ctx.errors.bump(ErrorKind::KafkaMalformed);
            return;
        };
        if !(0..=parser::MAX_API_VERSION).contains(&h.api_version) || h.api_key < 0 {
            ctx.errors.bump(ErrorKind::KafkaMalformed);
            return;
        }
        let (acks, topics) =
            parser::request_topics(m, &h, lim.max_kafka_topics, lim.max_field_bytes);
        let truncated = m.len() < total;
        let req = KafkaRequest {
            api_key: h.api_key,
            api_version: h.api_version,
            correlation_id: h.correlation_id,
            client_id: h.client_id,
            acks,
            topics,
            length: (total - 4) as u32,
            truncated,
        };
        let p = Pending { req, ts: ctx.ts_ns, size: total as u64, error: None };
        if h.api_key == parser::PRODUCE && acks == Some(0) {
            // No response will come.
            ctx.out.push(exchange(Some(p), None, None));
            return;
        }
        if self.pending.len() >= lim.max_pending {
            if let Some(old) = self.pending.pop_front() {
                ctx.errors.bump(ErrorKind::TooManyTransactions);
                let e = ItemError::new(
                    ItemErrorKind::Dissection,
                    ErrorKind::TooManyTransactions.name(),
                );
                ctx.out.push(exchange(Some(old), None, Some(e)));
            }
        }
        self.pending.push_back(p);
    }

    fn response(&mut self, m: &[u8], total: usize, ctx: &mut ParseCtx<'_>) {
        let lim = ctx.limits;
        let Some(corr) = Rd::new(m, 4, false).i32() else {
            ctx.errors.bump(ErrorKind::KafkaMalformed);
            return;
        };
        let truncated = m.len() < total;
        let found = self.pending.iter().position(|p| p.req.correlation_id == corr);
        let Some(i) = found else {
            ctx.errors.bump(ErrorKind::Unpaired);
            let resp = KafkaResponse {
                correlation_id: corr,
                api_key: -1,
                api_version: -1,
                error_code: None,
                throttle_ms: None,
                topics: parser::Topics::default(),
                length: (total - 4) as u32,
                truncated,
            };
            let e = ItemError::new(ItemErrorKind::PairNotFound, "response without a request");
            ctx.out.push(exchange(None, Some((resp, ctx.ts_ns, total as u64)), Some(e)));
            return;
        };
        // Answers come in order: requests before this one were not answered.
        for _ in 0..i {
            if let Some(old) = self.pending.pop_front() {
                ctx.errors.bump(ErrorKind::Unpaired);
                let e = ItemError::new(
                    ItemErrorKind::PairNotFound,
                    "a later request was answered first",
                );
                ctx.out.push(exchange(Some(old), None, Some(e)));
            }
        }
        let Some(p) = self.pending.pop_front() else { return };
        let (key, version) = (p.req.api_key, p.req.api_version);
        let body =
            parser::response_body(m, key, version, lim.max_kafka_topics, lim.max_field_bytes);
        let resp = KafkaResponse {
            correlation_id: corr,
            api_key: key,
            api_version: version,
            error_code: body.error_code,
            throttle_ms: body.throttle_ms,
            topics: body.topics,
            length: (total - 4) as u32,
            truncated,
        };
        ctx.out.push(exchange(Some(p), Some((resp, ctx.ts_ns, total as u64)), None));
    }

    fn resync(&mut self, dir: Direction, b: &[u8]) -> ParseResult {
        let plausible = |x: &[u8]| match dir {
            Direction::ToServer => parser::request_plausible(x),
            Direction::ToClient => {
                let mut r = Rd::new(x, 0, false);
                match (r.i32(), r.i32()) {
                    (Some(size), Some(corr)) => {
                        size >= 4 && self.pending.iter().any(|p| p.req.correlation_id == corr)
                    }
                    _ => false,
                }
            }
        };
        match (0..b.len().saturating_sub(13)).find(|&i| b.get(i..).is_some_and(plausible)) {
            Some(0) => {
                self.resync[dir.idx()] = false;
                ParseResult::Continue { consumed: 0 }
            }
            Some(i) => ParseResult::Continue { consumed: i },
            // Keep a possible header cut by the segment end.
            None if b.len() > 14 => ParseResult::Continue { consumed: b.len() - 14 },
            None => ParseResult::Incomplete { consumed: 0, needed: 1 },
        }
    }
}

impl Dissector for KafkaSession {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if b.is_empty() {
            return ParseResult::Incomplete { consumed: 0, needed: 1 };
        }
        if let Some(r) = skip_rest(&mut self.skip[dir.idx()], b) {
            return r;
        }
        if self.resync[dir.idx()] {
            match self.resync(dir, b) {
                ParseResult::Continue { consumed: 0 } => {}
                r => return r,
            }
        }
        let Some(size) = Rd::new(b, 0, false).i32() else {
            return ParseResult::Incomplete { consumed: 0, needed: 4 - b.len() };
        };
        if !(4..parser::MAX_MESSAGE as i32).contains(&size) {
            return ParseResult::Error(ErrorKind::KafkaMalformed);
        }
        let total = size as usize + 4;
        let mut skip = 0;
        let r = framed(b, total, 8, &mut skip, ctx, |m, ctx| match dir {
            Direction::ToServer => self.request(m, total, ctx),
            Direction::ToClient => self.response(m, total, ctx),
        });
        self.skip[dir.idx()] = skip;
        r
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, _ctx: &mut ParseCtx<'_>) {
        self.skip[dir.idx()] = 0;
        self.resync[dir.idx()] = true;
    }

    fn on_end(&mut self, _dir: Direction, _ctx: &mut ParseCtx<'_>) {}

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        while let Some(p) = self.pending.pop_front() {
            let e = unanswered(reason, ctx);
            ctx.out.push(exchange(Some(p), None, Some(e)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::message_json;
    use super::super::parser::tests::{framed, produce_v2, produce_v2_response, request};
    use super::*;
    use crate::dissectors::Limits;
    use serde_json::Value;

    enum Step {
        C(Vec<u8>),
        S(Vec<u8>),
        GapC,
        GapS,
    }
    use self::Step::*;
    use crate::dissectors::script;

    fn run(steps: &[Step]) -> Vec<Exchange> {
        let steps = steps.iter().map(|st| match st {
            C(b) => script::Step::C(b),
            S(b) => script::Step::S(b),
            GapC => script::Step::GapC,
            GapS => script::Step::GapS,
        });
        script::run(&mut KafkaSession::new(), steps, &Limits::default(), 0, FinishReason::Timeout).0
    }

    fn js(e: &Exchange) -> (Value, Value) {
        let j = |m: &Option<Message>| match m {
            Some(Message::Kafka(r)) => message_json(r),
            _ => Value::Null,
        };
        (j(&e.request), j(&e.response))
    }

    fn api_versions_response(corr: i32, error: i16) -> Vec<u8> {
        let mut b = corr.to_be_bytes().to_vec();
        b.extend_from_slice(&error.to_be_bytes());
        b.extend_from_slice(&[1, 0, 0, 0, 0]);
        framed(&b)
    }

    #[test]
    fn pipelined_requests_pair_by_correlation_id_across_splits() {
        let reqs = [
            produce_v2(7, "orders", &[0, 1], 100, 1),
            request(18, 3, 8, "c", b"\x01\x01\0"),
            produce_v2(9, "fire", &[2], 10, 0),
        ]
        .concat();
        let resps =
            [produce_v2_response(7, "orders", &[(0, 0), (1, 0)]), api_versions_response(8, 35)]
                .concat();
        let (a, b) = reqs.split_at(37);
        let (c, d) = resps.split_at(5);
        let out = run(&[C(a.to_vec()), C(b.to_vec()), S(c.to_vec()), S(d.to_vec())]);
        assert_eq!(out.len(), 3, "{out:#?}");
        // acks=0 first: it was emitted as soon as it was read.
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["acks"].as_i64(), r.is_null(), out[0].error.is_none()),
            (Some(0), true, true)
        );
        let (q, r) = js(&out[1]);
        assert_eq!(
            (
                q["apiKey"].as_str(),
                q["topics"][0]["name"].as_str(),
                q["topics"][0]["partitions"][1].as_i64()
            ),
            (Some("Produce"), Some("orders"), Some(1))
        );
        assert_eq!((r["errorCode"].as_i64(), r["errorName"].as_str()), (Some(0), Some("NONE")));
        let (q, r) = js(&out[2]);
        assert_eq!(
            (q["apiKey"].as_str(), q["flexible"].as_bool(), q["clientId"].as_str()),
            (Some("ApiVersions"), Some(true), Some("c"))
        );
        assert_eq!(r["errorName"], "UNSUPPORTED_VERSION");
        assert_eq!(out[1].request_size, produce_v2(7, "orders", &[0, 1], 100, 1).len() as u64);
    }

    #[test]
    fn large_messages_are_parsed_from_a_prefix() {
        let big = produce_v2(1, "big", &[0, 1, 2], 100_000, -1);
        let mut steps: Vec<Step> = big.chunks(1460).map(|c| C(c.to_vec())).collect();
        steps.push(S(produce_v2_response(1, "big", &[(0, 0), (1, 0), (2, 0)])));
        let out = run(&steps);
        assert_eq!(out.len(), 1);
        let (q, _) = js(&out[0]);
        assert_eq!(
            (q["truncated"].as_bool(), q["topics"][0]["name"].as_str(), q["topicCount"].as_u64()),
            (Some(true), Some("big"), Some(1))
        );
        assert_eq!(out[0].request_size, big.len() as u64);
        assert!(out[0].error.is_none());
    }

    #[test]
    fn skipped_answers_gaps_and_orphans() {
        let out = run(&[
            C([request(18, 0, 1, "a", b""), request(18, 0, 2, "a", b"")].concat()),
            S(api_versions_response(2, 0)),
            S(api_versions_response(99, 0)),
            C(request(18, 0, 3, "a", b"")),
            GapS,
            S([b"junk".to_vec(), api_versions_response(3, 0)].concat()),
            GapC,
            C([b"xx".to_vec(), request(18, 0, 4, "a", b"")].concat()),
        ]);
        let kinds: Vec<_> = out
            .iter()
            .map(|e| (js(e).0["correlationId"].as_i64(), e.error.as_ref().map(|x| x.kind)))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (Some(1), Some(ItemErrorKind::PairNotFound)),
                (Some(2), None),
                (None, Some(ItemErrorKind::PairNotFound)),
                (Some(3), None),
                (Some(4), Some(ItemErrorKind::Timeout)),
            ]
        );
    }
}
