//! The MongoDB session of one flow: requests waiting for their replies.
//!
//! Invariants: a reply names its request by `responseTo`; several requests
//! may be in flight on one connection, so a reply pairs with the pending
//! request of that id wherever it is, and the pending list is bounded by
//! `max_pending_requests` (the oldest is emitted unanswered past it). A
//! request with `moreToCome`, and the legacy writes, get no reply and are
//! emitted at once. An exhaust stream (replies with `moreToCome`, each
//! answering the one before) is one item, emitted at its last reply. A
//! message larger than the buffer is parsed from its prefix (the command
//! name and fields that lie in it) and the rest skipped. After lost data a
//! direction skips to the next plausible header.

use std::collections::VecDeque;

use bson::RawDocument;

use super::parser::{self, flag, op};
use super::{Error, MongoMessage, MongoRequest, MongoResponse};
use crate::dissectors::{
    framed, skip_rest, unanswered, Confidence, Direction, Dissector, ErrorKind, FinishReason,
    ParseCtx, ParseResult,
};
use crate::item::{set_error, Exchange, ItemError, ItemErrorKind, Message};

/// Commands whose first value is a collection name.
const COLLECTION_COMMANDS: [&str; 22] = [
    "find",
    "insert",
    "update",
    "delete",
    "findAndModify",
    "findandmodify",
    "aggregate",
    "count",
    "distinct",
    "create",
    "drop",
    "createIndexes",
    "dropIndexes",
    "listIndexes",
    "collMod",
    "mapReduce",
    "validate",
    "compact",
    "collStats",
    "shardCollection",
    "cleanupOrphaned",
    "reIndex",
];

struct Pending {
    /// The id a reply answers (the request's, then the last exhaust reply's).
    id: i32,
    req: MongoRequest,
    resp: Option<MongoResponse>,
    req_ts: u64,
    resp_ts: u64,
    req_size: u64,
    resp_size: u64,
    error: Option<ItemError>,
}

#[derive(Default)]
pub struct MongoSession {
    pending: VecDeque<Pending>,
    skip: [u64; 2],
    resync: [bool; 2],
}

fn exchange(p: Pending) -> Exchange {
    Exchange {
        request: Some(Message::Mongodb(Box::new(MongoMessage::Request(p.req)))),
        response: p.resp.map(|r| Message::Mongodb(Box::new(MongoMessage::Response(r)))),
        request_ts_ns: p.req_ts,
        response_ts_ns: p.resp_ts,
        request_size: p.req_size,
        response_size: p.resp_size,
        error: p.error,
    }
}

/// A message body, after any OP_COMPRESSED wrapper: (opcode, body, compressor).
fn unwrap_compressed<'a>(
    code: i32,
    body: &'a [u8],
    ctx: &mut ParseCtx<'_>,
    scratch: &'a mut Vec<u8>,
) -> Option<(i32, &'a [u8], Option<&'static str>)> {
    if code != op::COMPRESSED {
        return Some((code, body, None));
    }
    let original = parser::i32le(body, 0)?;
    let size = usize::try_from(parser::i32le(body, 4)?).ok()?;
    let compressor = *body.get(8)?;
    let data = body.get(9..)?;
    let name = Some(parser::compressor_name(compressor));
    match compressor {
        0 => Some((original, data, name)),
        2 => {
            let limit = (ctx.limits.max_decompressed_bytes as usize).min(parser::MAX_MESSAGE);
            if size > limit {
                ctx.errors.bump(Error::Decompression.into());
                return Some((original, &[], name));
            }
            scratch.reserve(size);
            let mut z = flate2::Decompress::new(true);
            match z.decompress_vec(data, scratch, flate2::FlushDecompress::Finish) {
                Ok(_) if scratch.len() == size => Some((original, scratch.as_slice(), name)),
                _ => {
                    ctx.errors.bump(Error::Decompression.into());
                    Some((original, &[], name))
                }
            }
        }
        // snappy and zstd: named, not inflated.
        _ => Some((original, &[], name)),
    }
}

impl MongoSession {
    pub fn new() -> Self {
        MongoSession::default()
    }

    fn bounds(ctx: &ParseCtx<'_>) -> parser::Bounds {
        parser::Bounds {
            depth: ctx.limits.max_bson_depth,
            elements: ctx.limits.max_bson_elements,
            field_bytes: ctx.limits.max_field_bytes,
        }
    }

    /// A document's JSON; a bomb or a lie is counted (and named on the item).
    fn doc(
        d: &RawDocument,
        ctx: &mut ParseCtx<'_>,
        err: &mut Option<ItemError>,
    ) -> serde_json::Value {
        let (v, w) = parser::to_json(d, &Self::bounds(ctx));
        if w.too_deep {
            ctx.errors.bump(Error::BsonDepth.into());
            set_error(err, ItemErrorKind::Dissection, "mongodb_bson_depth");
        }
        if w.malformed {
            ctx.errors.bump(Error::Malformed.into());
            set_error(err, ItemErrorKind::Dissection, "mongodb_malformed");
        }
        v
    }

    /// The command a document names and the fields that go with it: the
    /// collection is the string argument of a command that takes one
    /// (`{getLog: "startupWarnings"}` names a log, not a collection).
    fn command_of(d: &RawDocument, req: &mut MongoRequest) {
        // A legacy query wraps the command: {$query: {...}, $readPreference}.
        let inner = match parser::first_element(d) {
            Some(("$query" | "query", bson::RawBsonRef::Document(q))) => q,
            _ => d,
        };
        if let Some((name, v)) = parser::first_element(inner) {
            req.command = Some(name.to_string());
            if let (bson::RawBsonRef::String(c), true) = (v, COLLECTION_COMMANDS.contains(&name)) {
                req.collection = Some(c.to_string());
            }
        }
        if req.command.as_deref() == Some("getMore") {
            req.collection = parser::get_str(inner, "collection").map(str::to_string);
        }
        if let Some(db) = parser::get_str(d, "$db") {
            req.database = Some(db.to_string());
        }
    }

    fn request(&mut self, m: &[u8], total: usize, ctx: &mut ParseCtx<'_>) {
        let Some((_, id, _, code)) = parser::header(m) else { return };
        let mut scratch = Vec::new();
        let body = m.get(parser::HEADER..).unwrap_or_default();
        let Some((code2, body, compressor)) = unwrap_compressed(code, body, ctx, &mut scratch)
        else {
            ctx.errors.bump(Error::Malformed.into());
            return;
        };
        let mut req =
            MongoRequest { op_code: code, request_id: id, compressor, ..MongoRequest::default() };
        let mut error = None;
        let mut expects_reply = true;
        match code2 {
            op::MSG => {
                let flags = parser::i32le(body, 0).unwrap_or(0) as u32;
                req.flags = flags;
                expects_reply = flags & flag::MORE_TO_COME == 0;
                let end = if flags & flag::CHECKSUM_PRESENT != 0 && m.len() == total {
                    body.len().saturating_sub(4)
                } else {
                    body.len()
                };
                let mut at = 4;
                while at < end {
                    match body.get(at) {
                        Some(0) => match parser::document(body, at + 1) {
                            Some((d, next)) => {
                                Self::command_of(d, &mut req);
                                req.document = Some(Self::doc(d, ctx, &mut error));
                                at = next;
                            }
                            None => {
                                // Cut (a large message) or lying.
                                if m.len() == total {
                                    ctx.errors.bump(Error::Malformed.into());
                                    set_error(
                                        &mut error,
                                        ItemErrorKind::Dissection,
                                        "mongodb_malformed",
                                    );
                                }
                                break;
                            }
                        },
                        Some(1) => {
                            let size =
                                parser::i32le(body, at + 1).and_then(|s| usize::try_from(s).ok());
                            let Some(size) = size.filter(|s| *s >= 4) else {
                                ctx.errors.bump(Error::Malformed.into());
                                break;
                            };
                            let seq_end = (at + 1 + size).min(end);
                            if let Some((ident, mut d)) = parser::cstr(body, at + 5) {
                                let mut n = 0u32;
                                while d < seq_end {
                                    let Some(l) = parser::i32le(body, d)
                                        .and_then(|l| usize::try_from(l).ok())
                                    else {
                                        break;
                                    };
                                    if l < 5 {
                                        break;
                                    }
                                    n += 1;
                                    d += l;
                                }
                                if req.sequences.len() < 8 {
                                    req.sequences
                                        .push((String::from_utf8_lossy(ident).into_owned(), n));
                                }
                            }
                            at += 1 + size;
                        }
                        _ => {
                            ctx.errors.bump(Error::Malformed.into());
                            set_error(&mut error, ItemErrorKind::Dissection, "mongodb_malformed");
                            break;
                        }
                    }
                }
            }
            op::QUERY => {
                if let Some((ns, next)) = parser::cstr(body, 4) {
                    let (db, coll) = parser::namespace(ns);
                    req.database = Some(String::from_utf8_lossy(&db).into_owned());
                    req.skip = parser::i32le(body, next);
                    req.limit = parser::i32le(body, next + 4);
                    let is_cmd = coll.as_deref() == Some(b"$cmd");
                    if !is_cmd {
                        req.command = Some("find".into());
                        req.collection = coll.map(|c| String::from_utf8_lossy(&c).into_owned());
                    }
                    if let Some((d, _)) = parser::document(body, next + 8) {
                        if is_cmd {
                            let db = req.database.take();
                            Self::command_of(d, &mut req);
                            req.database = req.database.or(db);
                        }
                        req.document = Some(Self::doc(d, ctx, &mut error));
                    }
                }
            }
            op::GET_MORE | op::INSERT | op::UPDATE | op::DELETE | op::KILL_CURSORS => {
                req.command = Some(
                    match code2 {
                        op::GET_MORE => "getMore",
                        op::INSERT => "insert",
                        op::UPDATE => "update",
                        op::DELETE => "delete",
                        _ => "killCursors",
                    }
                    .into(),
                );
                // OP_INSERT's flags, the others' reserved zero, then the namespace.
                if code2 != op::KILL_CURSORS {
                    if let Some((ns, _)) = parser::cstr(body, 4) {
                        let (db, coll) = parser::namespace(ns);
                        req.database = Some(String::from_utf8_lossy(&db).into_owned());
                        req.collection = coll.map(|c| String::from_utf8_lossy(&c).into_owned());
                    }
                }
                expects_reply = code2 == op::GET_MORE;
            }
            _ => {
                ctx.errors.bump(Error::Malformed.into());
                return;
            }
        }
        let p = Pending {
            id,
            req,
            resp: None,
            req_ts: ctx.ts_ns,
            resp_ts: 0,
            req_size: total as u64,
            resp_size: 0,
            error,
        };
        if !expects_reply {
            ctx.out.push(exchange(p));
            return;
        }
        if self.pending.len() >= ctx.limits.max_pending {
            if let Some(mut old) = self.pending.pop_front() {
                ctx.errors.bump(ErrorKind::TooManyTransactions);
                set_error(
                    &mut old.error,
                    ItemErrorKind::Dissection,
                    ErrorKind::TooManyTransactions.name(),
                );
                ctx.out.push(exchange(old));
            }
        }
        self.pending.push_back(p);
    }

    fn reply(&mut self, m: &[u8], total: usize, ctx: &mut ParseCtx<'_>) {
        let Some((_, id, response_to, code)) = parser::header(m) else { return };
        let Some(i) = self.pending.iter().position(|p| p.id == response_to) else {
            // Its request was not captured: nothing names what it answers.
            ctx.errors.bump(ErrorKind::Unpaired);
            return;
        };
        let mut scratch = Vec::new();
        let body = m.get(parser::HEADER..).unwrap_or_default();
        let Some((code2, body, compressor)) = unwrap_compressed(code, body, ctx, &mut scratch)
        else {
            ctx.errors.bump(Error::Malformed.into());
            return;
        };
        let mut error = None;
        let mut r =
            MongoResponse { op_code: code, response_to, compressor, ..MongoResponse::default() };
        let mut more = false;
        let doc = match code2 {
            op::MSG => {
                let flags = parser::i32le(body, 0).unwrap_or(0) as u32;
                more = flags & flag::MORE_TO_COME != 0;
                match body.get(4) {
                    Some(0) => parser::document(body, 5).map(|(d, _)| d),
                    _ => None,
                }
            }
            op::REPLY => {
                let flags = parser::i32le(body, 0).unwrap_or(0);
                // QueryFailure, or CursorNotFound.
                r.failed = flags & 0b11 != 0;
                r.documents = parser::i32le(body, 16).and_then(|n| u64::try_from(n).ok());
                parser::document(body, 20).map(|(d, _)| d)
            }
            _ => {
                ctx.errors.bump(Error::Malformed.into());
                None
            }
        };
        if let Some(d) = doc {
            r.ok = parser::get_num(d, "ok");
            r.errmsg =
                parser::get_str(d, "errmsg").or(parser::get_str(d, "$err")).map(str::to_string);
            r.code = parser::get_num(d, "code").map(|c| c as i64);
            r.code_name = parser::get_str(d, "codeName").map(str::to_string);
            if parser::get_str(d, "$err").is_some() {
                r.failed = true;
            }
            // A write that partly failed: `ok: 1` with write errors.
            if let Ok(Some(bson::RawBsonRef::Array(errs))) = d.get("writeErrors") {
                if let Some(Ok(bson::RawBsonRef::Document(e))) = errs.into_iter().next() {
                    r.failed = true;
                    r.code = r.code.or(parser::get_num(e, "code").map(|c| c as i64));
                    r.errmsg = r.errmsg.or(parser::get_str(e, "errmsg").map(str::to_string));
                }
            }
            if let Ok(Some(bson::RawBsonRef::Document(c))) = d.get("cursor") {
                for key in ["firstBatch", "nextBatch"] {
                    if let Ok(Some(bson::RawBsonRef::Array(b))) = c.get(key) {
                        r.documents = Some(b.into_iter().count() as u64);
                    }
                }
            }
            r.document = Some(Self::doc(d, ctx, &mut error));
        } else if code2 == op::MSG && m.len() == total {
            ctx.errors.bump(Error::Malformed.into());
            set_error(&mut error, ItemErrorKind::Dissection, "mongodb_malformed");
        }
        let Some(p) = self.pending.get_mut(i) else { return };
        if let Some(e) = error {
            set_error(&mut p.error, e.kind, e.msg);
        }
        let replies = p.resp.as_ref().map_or(0, |x| x.replies);
        if p.resp.is_none() {
            p.resp_ts = ctx.ts_ns;
        }
        r.replies = replies + 1;
        p.resp = Some(r);
        p.resp_size += total as u64;
        if more {
            // The next reply of the stream answers this one.
            p.id = id;
            return;
        }
        if let Some(p) = self.pending.remove(i) {
            ctx.out.push(exchange(p));
        }
    }

    fn resync(&mut self, dir: Direction, b: &[u8]) -> ParseResult {
        let pending: Vec<i32> = self.pending.iter().map(|p| p.id).collect();
        let plausible = |x: &[u8]| match dir {
            Direction::ToServer => parser::probe(x, true) >= Confidence::Medium,
            Direction::ToClient => parser::header(x).is_some_and(|(len, _, to, code)| {
                len >= 21
                    && pending.contains(&to)
                    && matches!(code, op::MSG | op::REPLY | op::COMPRESSED)
            }),
        };
        match (0..b.len().saturating_sub(parser::HEADER))
            .find(|&i| b.get(i..).is_some_and(plausible))
        {
            Some(0) => {
                self.resync[dir.idx()] = false;
                ParseResult::Continue { consumed: 0 }
            }
            Some(i) => ParseResult::Continue { consumed: i },
            None if b.len() > parser::HEADER + 64 => {
                ParseResult::Continue { consumed: b.len() - parser::HEADER - 64 }
            }
            None => ParseResult::Incomplete { consumed: 0, needed: 1 },
        }
    }
}

impl Dissector for MongoSession {
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
        let Some(len) = parser::i32le(b, 0) else {
            return ParseResult::Incomplete { consumed: 0, needed: 4 - b.len() };
        };
        let total = match usize::try_from(len) {
            Ok(t) if (parser::HEADER..=parser::MAX_MESSAGE).contains(&t) => t,
            _ => return ParseResult::Error(Error::Malformed.into()),
        };
        let mut skip = 0;
        let r = framed(b, total, parser::HEADER, &mut skip, ctx, |m, ctx| match dir {
            Direction::ToServer => self.request(m, total, ctx),
            Direction::ToClient => self.reply(m, total, ctx),
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
        while let Some(mut p) = self.pending.pop_front() {
            if p.resp.is_none() {
                let e = unanswered(reason, ctx);
                set_error(&mut p.error, e.kind, e.msg);
            }
            ctx.out.push(exchange(p));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::message_json;
    use super::super::parser::tests::{message, op_msg};
    use super::*;
    use crate::dissectors::script::{self, Step};
    use crate::dissectors::Limits;
    use bson::doc;
    use serde_json::Value;

    fn run(steps: &[(bool, Vec<u8>)], limits: &Limits) -> (Vec<Exchange>, u64) {
        let steps = steps.iter().map(|(c, b)| if *c { Step::C(b) } else { Step::S(b) });
        let (out, e) =
            script::run(&mut MongoSession::new(), steps, limits, 0, FinishReason::Closed);
        (out, e.total())
    }

    fn js(e: &Exchange) -> (Value, Value) {
        let j = |m: &Option<Message>| match m {
            Some(Message::Mongodb(r)) => message_json(r),
            _ => Value::Null,
        };
        (j(&e.request), j(&e.response))
    }

    fn op_query(id: i32, ns: &str, q: &bson::Document) -> Vec<u8> {
        let mut b = 0i32.to_le_bytes().to_vec();
        b.extend_from_slice(ns.as_bytes());
        b.push(0);
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(&(-1i32).to_le_bytes());
        b.extend(q.to_vec().unwrap());
        message(id, 0, op::QUERY, &b)
    }

    fn op_reply(id: i32, to: i32, flags: i32, docs: &[bson::Document]) -> Vec<u8> {
        let mut b = flags.to_le_bytes().to_vec();
        b.extend_from_slice(&0i64.to_le_bytes());
        b.extend_from_slice(&0i32.to_le_bytes());
        b.extend_from_slice(&(docs.len() as i32).to_le_bytes());
        for d in docs {
            b.extend(d.to_vec().unwrap());
        }
        message(id, to, op::REPLY, &b)
    }

    #[test]
    fn op_msg_commands_pair_by_response_to_even_out_of_order() {
        let find = message(
            1,
            0,
            op::MSG,
            &op_msg(0, &doc! {"find": "users", "filter": {"age": {"$gt": 30}}, "$db": "shop"}),
        );
        let ins = message(2, 0, op::MSG, &op_msg(0, &doc! {"insert": "orders", "$db": "shop"}));
        let ok_find = message(
            10,
            1,
            op::MSG,
            &op_msg(
                0,
                &doc! {"cursor": {"firstBatch": [{"a": 1}, {"a": 2}], "id": 0i64, "ns": "shop.users"}, "ok": 1.0},
            ),
        );
        let dup = message(
            11,
            2,
            op::MSG,
            &op_msg(
                0,
                &doc! {"n": 0, "writeErrors": [{"index": 0, "code": 11000, "errmsg": "E11000 duplicate key"}], "ok": 1.0},
            ),
        );
        let (out, errors) =
            run(&[(true, find), (true, ins), (false, dup), (false, ok_find)], &Limits::default());
        assert_eq!((out.len(), errors), (2, 0), "{out:#?}");
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["command"].as_str(), q["collection"].as_str(), q["database"].as_str()),
            (Some("insert"), Some("orders"), Some("shop"))
        );
        assert_eq!(
            (r["success"].as_bool(), r["code"].as_i64(), r["errmsg"].as_str()),
            (Some(false), Some(11000), Some("E11000 duplicate key"))
        );
        let (q, r) = js(&out[1]);
        assert_eq!(
            (q["command"].as_str(), q["document"]["filter"]["age"]["$gt"].as_i64()),
            (Some("find"), Some(30))
        );
        assert_eq!(
            (r["success"].as_bool(), r["documents"].as_u64(), r["responseTo"].as_i64()),
            (Some(true), Some(2), Some(1))
        );
    }

    #[test]
    fn legacy_query_reply_errors_sequences_and_more_to_come() {
        let is_master = op_query(
            5,
            "admin.$cmd",
            &doc! {"isMaster": 1, "client": {"driver": {"name": "mongo-go"}}},
        );
        let reply = op_reply(6, 5, 0, &[doc! {"ismaster": true, "maxWireVersion": 17, "ok": 1.0}]);
        let failed =
            message(7, 0, op::MSG, &op_msg(0, &doc! {"replSetGetStatus": 1, "$db": "admin"}));
        let failed_r = message(
            8,
            7,
            op::MSG,
            &op_msg(
                0,
                &doc! {"ok": 0.0, "errmsg": "not running with --replSet", "code": 76, "codeName": "NoReplicationEnabled"},
            ),
        );
        // A bulk insert: body plus a kind-1 sequence of 3 documents, sent
        // unacknowledged (moreToCome) with a trailing checksum.
        let mut bulk = 3u32.to_le_bytes().to_vec();
        bulk.push(0);
        bulk.extend(
            doc! {"insert": "logs", "$db": "app", "writeConcern": {"w": 0}}.to_vec().unwrap(),
        );
        let docs: Vec<u8> = (0..3).flat_map(|i| doc! {"i": i}.to_vec().unwrap()).collect();
        bulk.push(1);
        bulk.extend_from_slice(&((4 + 10 + docs.len()) as i32).to_le_bytes());
        bulk.extend_from_slice(b"documents\0");
        bulk.extend(docs);
        bulk.extend_from_slice(&[1, 2, 3, 4]);
        let bulk = message(9, 0, op::MSG, &bulk);
        let (out, errors) = run(
            &[(true, is_master), (false, reply), (true, failed), (false, failed_r), (true, bulk)],
            &Limits::default(),
        );
        assert_eq!((out.len(), errors), (3, 0), "{out:#?}");
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["opCode"].as_str(), q["command"].as_str(), q["database"].as_str()),
            (Some("OP_QUERY"), Some("isMaster"), Some("admin"))
        );
        assert_eq!(
            (r["opCode"].as_str(), r["success"].as_bool(), r["documents"].as_u64()),
            (Some("OP_REPLY"), Some(true), Some(1))
        );
        let (_, r) = js(&out[1]);
        assert_eq!(
            (r["success"].as_bool(), r["code"].as_i64(), r["codeName"].as_str()),
            (Some(false), Some(76), Some("NoReplicationEnabled"))
        );
        let (q, r) = js(&out[2]);
        assert_eq!(
            (q["command"].as_str(), q["sequences"]["documents"].as_u64()),
            (Some("insert"), Some(3))
        );
        assert_eq!(
            (q["checksum"].as_bool(), q["moreToCome"].as_bool(), r.is_null()),
            (Some(true), Some(true), true)
        );
        assert!(out[2].error.is_none());
    }

    #[test]
    fn bson_bombs_lying_lengths_and_compression() {
        let mut d = doc! {"x": 1};
        for _ in 0..100 {
            d = doc! {"a": d};
        }
        let bomb = message(1, 0, op::MSG, &op_msg(0, &doc! {"find": "c", "filter": d, "$db": "t"}));
        let (out, errors) = run(&[(true, bomb)], &Limits::default());
        assert_eq!(errors, 2, "the bomb and the close without a reply");
        let (q, _) = js(&out[0]);
        assert_eq!(
            (q["command"].as_str(), out[0].error.as_ref().map(|e| e.msg.as_ref())),
            (Some("find"), Some("mongodb_bson_depth"))
        );
        // A body whose document length lies.
        let mut lie = op_msg(0, &doc! {"ping": 1});
        lie[5] = 0x7f;
        let (_, errors) = run(&[(true, message(2, 0, op::MSG, &lie))], &Limits::default());
        assert!(errors >= 1);
        // A message length that is not a message.
        let (out, errors) = run(&[(true, vec![3, 0, 0, 0, 1, 2, 3, 4])], &Limits::default());
        assert_eq!((out.len(), errors), (0, 1));
        // OP_COMPRESSED (zlib) around an OP_MSG.
        use std::io::Write;
        let inner = op_msg(0, &doc! {"count": "events", "$db": "metrics"});
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&inner).unwrap();
        let zdata = z.finish().unwrap();
        let mut body = op::MSG.to_le_bytes().to_vec();
        body.extend_from_slice(&(inner.len() as i32).to_le_bytes());
        body.push(2);
        body.extend(zdata);
        let (out, _) = run(
            &[
                (true, message(3, 0, op::COMPRESSED, &body)),
                (false, message(4, 3, op::MSG, &op_msg(0, &doc! {"n": 5, "ok": 1}))),
            ],
            &Limits::default(),
        );
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["compressor"].as_str(), q["command"].as_str(), q["collection"].as_str()),
            (Some("zlib"), Some("count"), Some("events"))
        );
        assert_eq!(r["success"], true);
    }
}
