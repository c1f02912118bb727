//! The MySQL session of one flow: the handshake, the commands and the
//! packets that answer each.
//!
//! Invariants: a client speaks one command at a time, each starting with
//! sequence id 0, and the server answers commands in order, its answer
//! starting with sequence id 1; so the oldest command still waiting owns
//! every server packet until its answer is complete (which the command's
//! kind and the packets themselves say: OK, ERR, the EOF or OK that ends
//! rows, the last column of a prepare), and a server packet with sequence
//! id 1 arriving while an answer is open starts the next answer (how an
//! answer whose end depends on capabilities not seen is closed). Client
//! packets with another sequence id continue the command in progress
//! (authentication data, LOCAL INFILE contents, a packet over 16 MiB).
//! After the login OK of a connection that agreed on compression, both
//! directions carry compressed frames, inflated here into the same packet
//! stream; after an SSL request the flow is handed to the TLS dissector.
//! After lost data a direction skips to the next plausible packet start
//! and items until the queue drains carry a `gap` error.

use std::collections::VecDeque;

use super::parser::{self, cap, com, status, Rd};
use super::{Error, MysqlMessage, MysqlRequest, MysqlResponse};
use crate::dissectors::{
    drive, Direction, Dissector, ErrorKind, FinishReason, ParseCtx, ParseResult, Session, StreamBuf,
};
use crate::item::{set_error, Exchange, ItemError, ItemErrorKind, Message};

/// What ends the answer to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Nothing comes back (`quit`, `stmt_close`, `stmt_send_long_data`).
    Nothing,
    /// One OK, ERR or EOF packet.
    OkErr,
    /// OK, ERR or result sets (text or binary).
    ResultSet,
    /// Column definitions up to EOF (`field_list`).
    FieldList,
    /// A prepare OK and its parameter and column definitions.
    Prepare,
    /// One string packet (`statistics`).
    Text,
    /// The authentication exchange up to OK or ERR (`login`, `change_user`).
    Auth,
    /// Rows up to EOF/OK or ERR (`stmt_fetch`, binlog streams).
    Rows,
}

/// Where an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    First,
    /// Column definitions left, then rows.
    Columns(u64),
    /// After the column definitions: an EOF may come before the rows.
    MaybeEof,
    Rows,
    /// Prepare: definitions left (parameters first), EOFs between them skipped.
    Defs {
        left: u32,
        params: u32,
    },
    /// The answer is complete but for an EOF that may still come (the
    /// capabilities that say so were not seen): it ends with that EOF or
    /// when something else comes.
    Tail,
    /// LOCAL INFILE: the client sends the file, then OK or ERR comes.
    Infile,
}

struct Tx {
    req: Option<MysqlRequest>,
    resp: MysqlResponse,
    expect: Expect,
    at: At,
    binary: bool,
    resp_seen: bool,
    resp_done: bool,
    req_ts: u64,
    resp_ts: u64,
    req_size: u64,
    resp_size: u64,
    error: Option<ItemError>,
}

impl Tx {
    fn new(req: Option<MysqlRequest>, expect: Expect, ts: u64) -> Tx {
        Tx {
            req,
            resp: MysqlResponse::default(),
            expect,
            at: At::First,
            binary: false,
            resp_seen: false,
            resp_done: expect == Expect::Nothing,
            req_ts: ts,
            resp_ts: 0,
            req_size: 0,
            resp_size: 0,
            error: None,
        }
    }

    fn command(&self) -> Option<u8> {
        self.req.as_ref().and_then(|r| r.command)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    /// Nothing seen yet (a capture may start mid-connection).
    #[default]
    Start,
    /// The greeting came; the client's login is next.
    Login,
    Commands,
    /// TLS from here on: the flow goes to the TLS dissector.
    Tls,
    /// Nothing more is dissected (zstd compression).
    Off,
}

/// The packet stream (after any decompression).
#[derive(Default)]
struct Packets {
    txs: VecDeque<Tx>,
    phase: Phase,
    /// Server and client capabilities (0 until seen).
    server_caps: u64,
    client_caps: u64,
    greeting: Option<parser::Greeting>,
    user: Option<Vec<u8>>,
    database: Option<Vec<u8>>,
    /// Prepared statements: id, query text, parameter count; oldest first.
    statements: VecDeque<(u32, Vec<u8>, u16)>,
    /// Bytes of a packet larger than the buffer still to skip.
    skip: [u64; 2],
    /// The last packet was full-sized: the next one continues it.
    cont: [bool; 2],
    resync: [bool; 2],
    uncertain: bool,
    /// Server packets with no command to answer were dropped (counted once
    /// per stretch).
    orphan: bool,
    /// Compression agreed on, effective after the login OK.
    compress_next: Option<&'static str>,
    /// The login OK came: compression starts with the next packet.
    compress_now: Option<&'static str>,
}

/// A MySQL flow: the packet stream, inflated from compressed frames once
/// the connection turns compression on.
#[derive(Default)]
pub struct MysqlSession {
    p: Packets,
    zlib: bool,
    /// Inflated bytes not yet a whole packet, per direction.
    zbuf: [StreamBuf; 2],
    /// Bytes of a compressed frame too large to inflate still to skip.
    zskip: [u64; 2],
}

fn cut(b: &[u8], keep: usize) -> Vec<u8> {
    b.get(..keep.min(b.len())).unwrap_or_default().to_vec()
}

fn exchange(tx: Tx) -> Exchange {
    Exchange {
        request: tx.req.map(|r| Message::Mysql(Box::new(MysqlMessage::Request(r)))),
        response: tx.resp_seen.then(|| Message::Mysql(Box::new(MysqlMessage::Response(tx.resp)))),
        request_ts_ns: tx.req_ts,
        response_ts_ns: tx.resp_ts,
        request_size: tx.req_size,
        response_size: tx.resp_size,
        error: tx.error,
    }
}

impl Packets {
    fn caps(&self) -> u64 {
        self.server_caps & self.client_caps
    }

    fn caps_known(&self) -> bool {
        self.server_caps != 0 && self.client_caps != 0
    }

    fn emit(&mut self, mut tx: Tx, ctx: &mut ParseCtx<'_>) {
        if self.uncertain {
            set_error(
                &mut tx.error,
                ItemErrorKind::Gap,
                "response pairing uncertain after lost data",
            );
        }
        ctx.out.push(exchange(tx));
    }

    fn emit_ready(&mut self, ctx: &mut ParseCtx<'_>) {
        while self.txs.front().is_some_and(|t| t.resp_done) {
            if let Some(tx) = self.txs.pop_front() {
                self.emit(tx, ctx);
            }
        }
        if self.txs.is_empty() {
            self.uncertain = false;
        }
    }

    fn push(&mut self, tx: Tx, ctx: &mut ParseCtx<'_>) {
        if self.txs.len() >= ctx.limits.max_pending {
            if let Some(mut old) = self.txs.pop_front() {
                ctx.errors.bump(ErrorKind::TooManyTransactions);
                set_error(
                    &mut old.error,
                    ItemErrorKind::Dissection,
                    ErrorKind::TooManyTransactions.name(),
                );
                self.emit(old, ctx);
            }
        }
        self.orphan = false;
        self.txs.push_back(tx);
    }

    /// The command whose answer is open (the oldest not done).
    fn open(&mut self) -> Option<&mut Tx> {
        self.txs.iter_mut().find(|t| !t.resp_done)
    }

    fn remember(&mut self, id: u32, query: Vec<u8>, params: u16, ctx: &ParseCtx<'_>) {
        self.statements.retain(|(i, _, _)| *i != id);
        if ctx.limits.max_mysql_statements == 0 {
            return;
        }
        if self.statements.len() >= ctx.limits.max_mysql_statements {
            self.statements.pop_front();
        }
        self.statements.push_back((id, query, params));
    }

    /// A request carrying the connection's user and schema.
    fn request(&self, command: Option<u8>) -> MysqlRequest {
        MysqlRequest {
            command,
            user: self.user.clone(),
            database: self.database.clone(),
            ..MysqlRequest::default()
        }
    }

    fn login(&mut self, p: &[u8], wire: u64, ctx: &mut ParseCtx<'_>) {
        let keep = ctx.limits.max_field_bytes;
        let Some(l) = parser::login(p, keep) else {
            ctx.errors.bump(Error::Malformed.into());
            self.phase = Phase::Commands;
            return;
        };
        self.client_caps = l.capabilities;
        let mut req = self.request(None);
        let mut tx = Tx::new(None, Expect::Auth, ctx.ts_ns);
        if let Some(g) = &self.greeting {
            tx.resp.server_version = Some(g.server_version.clone());
            tx.resp.connection_id = Some(g.connection_id);
            tx.resp.auth_plugin = g.auth_plugin.clone();
        }
        if l.ssl_request {
            // TLS follows; the login itself is encrypted.
            req.tls = true;
            tx.expect = Expect::Nothing;
            tx.resp_done = true;
            tx.resp_seen = self.greeting.is_some();
            tx.resp_ts = ctx.ts_ns;
            self.phase = Phase::Tls;
        } else {
            self.user = l.user.clone();
            self.database = l.database.clone();
            req.user = l.user;
            req.database = l.database;
            req.auth_plugin = l.auth_plugin;
            req.connect_attributes = l.attributes;
            let both = self.caps();
            req.compression = if both & cap::ZSTD_COMPRESSION != 0 {
                Some("zstd")
            } else if both & cap::COMPRESS != 0 {
                Some("zlib")
            } else {
                None
            };
            self.compress_next = req.compression;
            self.phase = Phase::Commands;
        }
        tx.req = Some(req);
        tx.req_size = wire;
        self.push(tx, ctx);
        self.emit_ready(ctx);
    }

    fn command(&mut self, p: &[u8], wire: u64, ctx: &mut ParseCtx<'_>) {
        let keep = ctx.limits.max_field_bytes;
        let Some(&c) = p.first() else { return };
        if parser::command_name(c).is_none() {
            ctx.errors.bump(Error::Malformed.into());
            return;
        }
        let arg = p.get(1..).unwrap_or_default();
        let mut req = self.request(Some(c));
        let mut binary = false;
        let expect = match c {
            com::QUIT | com::STMT_CLOSE | com::STMT_SEND_LONG_DATA => Expect::Nothing,
            com::QUERY => {
                let caps = self.caps();
                let attrs = self.caps_known().then_some(caps & cap::QUERY_ATTRIBUTES != 0);
                let (a, q) = parser::query(arg, attrs, keep);
                req.attributes = a;
                req.query = Some(cut(q, keep));
                Expect::ResultSet
            }
            com::INIT_DB => {
                req.database = Some(cut(arg, keep));
                Expect::OkErr
            }
            com::FIELD_LIST => {
                let end = arg.iter().position(|c| *c == 0).unwrap_or(arg.len());
                req.table = Some(cut(arg.get(..end).unwrap_or_default(), keep));
                Expect::FieldList
            }
            com::STATISTICS => Expect::Text,
            com::PROCESS_INFO => Expect::ResultSet,
            com::CHANGE_USER => {
                let l = parser::change_user(arg, self.caps().max(self.client_caps), keep);
                req.user = l.user;
                req.database = l.database.or(req.database);
                req.auth_plugin = l.auth_plugin;
                req.connect_attributes = l.attributes;
                Expect::Auth
            }
            com::BINLOG_DUMP | com::BINLOG_DUMP_GTID | com::STMT_FETCH => Expect::Rows,
            com::STMT_PREPARE => {
                req.query = Some(cut(arg, keep));
                Expect::Prepare
            }
            com::STMT_EXECUTE => {
                let id = parser::le32(arg, 0);
                req.statement_id = id;
                if let Some((_, q, n)) = self.statements.iter().find(|(i, _, _)| Some(*i) == id) {
                    req.query = (!q.is_empty()).then(|| q.clone());
                    req.param_count = Some(*n);
                }
                binary = true;
                Expect::ResultSet
            }
            _ => {
                if matches!(c, 0x18..=0x1a) {
                    req.statement_id = parser::le32(arg, 0);
                }
                Expect::OkErr
            }
        };
        if c == com::STMT_CLOSE {
            if let Some(id) = req.statement_id.or(parser::le32(arg, 0)) {
                req.statement_id = Some(id);
                if let Some((_, q, _)) = self.statements.iter().find(|(i, _, _)| *i == id) {
                    req.query = (!q.is_empty()).then(|| q.clone());
                }
                self.statements.retain(|(i, _, _)| *i != id);
            }
        }
        let mut tx = Tx::new(Some(req), expect, ctx.ts_ns);
        tx.binary = binary;
        tx.req_size = wire;
        self.push(tx, ctx);
        self.emit_ready(ctx);
    }

    /// A client packet with sequence id 0 (or a login).
    fn client_packet(&mut self, p: &[u8], seq: u8, wire: u64, ctx: &mut ParseCtx<'_>) {
        if self.cont[0] {
            self.add_request_bytes(wire);
            return;
        }
        match self.phase {
            Phase::Login if seq == 1 => return self.login(p, wire, ctx),
            // No greeting seen: a login still shows by its sequence id and shape.
            Phase::Start if seq == 1 && p.len() >= 32 => {
                let l = parser::login(p, 1);
                if l.is_some_and(|l| l.user.is_some() && l.capabilities & cap::PROTOCOL_41 != 0) {
                    return self.login(p, wire, ctx);
                }
            }
            _ => {}
        }
        if self.phase == Phase::Login || self.phase == Phase::Start {
            self.phase = Phase::Commands;
        }
        if seq != 0 {
            // Authentication data, LOCAL INFILE contents.
            if let Some(t) = self.open() {
                t.req_size += wire;
                if t.at == At::Infile && p.is_empty() {
                    t.at = At::First;
                }
            }
            return;
        }
        self.command(p, wire, ctx);
    }

    fn add_request_bytes(&mut self, wire: u64) {
        match self.txs.iter().position(|t| !t.resp_done) {
            Some(i) => {
                if let Some(t) = self.txs.get_mut(i) {
                    t.req_size += wire;
                }
            }
            None => {
                if let Some(t) = self.txs.back_mut() {
                    t.req_size += wire;
                }
            }
        }
    }

    /// A server packet.
    fn server_packet(&mut self, p: &[u8], seq: u8, wire: u64, ctx: &mut ParseCtx<'_>) {
        let keep = ctx.limits.max_field_bytes;
        if self.cont[1] {
            if let Some(t) = self.open() {
                t.resp_size += wire;
            }
            return;
        }
        if seq == 0 && self.phase == Phase::Start {
            match p.first() {
                Some(10) => {
                    if let Some(g) = parser::greeting(p) {
                        self.server_caps = g.capabilities;
                        self.greeting = Some(g);
                        self.phase = Phase::Login;
                        return;
                    }
                }
                Some(0xff) => {
                    // Refused before any login: an item of the ERR alone.
                    let mut tx = Tx::new(None, Expect::OkErr, ctx.ts_ns);
                    tx.resp_seen = true;
                    tx.resp_done = true;
                    tx.resp_ts = ctx.ts_ns;
                    tx.resp_size = wire;
                    tx.resp.error = parser::err(p, keep);
                    self.emit(tx, ctx);
                    return;
                }
                _ => {}
            }
        }
        if self.phase == Phase::Start {
            self.phase = Phase::Commands;
        }
        let eof_shaped = p.first() == Some(&0xfe) && p.len() <= 5;
        // An answer that may still take an EOF ends when something else comes.
        while let Some(t) = self.txs.iter_mut().find(|t| !t.resp_done) {
            if t.at == At::Tail && !eof_shaped {
                t.resp_done = true;
            } else {
                break;
            }
        }
        let known = self.caps_known();
        let caps = if known { self.caps() } else { 0 };
        let Some(t) = self.txs.iter_mut().find(|t| !t.resp_done) else {
            if !self.orphan {
                self.orphan = true;
                ctx.errors.bump(ErrorKind::Unpaired);
            }
            self.emit_ready(ctx);
            return;
        };
        if !t.resp_seen {
            t.resp_seen = true;
            t.resp_ts = ctx.ts_ns;
        }
        t.resp_size += wire;
        let first = p.first().copied();
        // After the last definitions: done, or an EOF may still come.
        let tail = if known && caps & cap::DEPRECATE_EOF != 0 { None } else { Some(At::Tail) };
        let r = &mut t.resp;
        let mut statement = None;
        match (t.expect, t.at) {
            (Expect::Auth, _) => match first {
                Some(0x00) => {
                    r.ok = parser::ok(p, caps, keep);
                    t.resp_done = true;
                }
                Some(0xff) => {
                    r.error = parser::err(p, keep);
                    t.resp_done = true;
                }
                Some(0xfe) => {
                    let mut rd = Rd::new(p, 1);
                    r.auth_switch = Some(rd.cstr().map(|x| cut(x, keep)).unwrap_or_default());
                }
                _ => {}
            },
            (Expect::Text, _) => {
                if first == Some(0xff) {
                    r.error = parser::err(p, keep);
                } else {
                    r.text = Some(cut(p, keep));
                }
                t.resp_done = true;
            }
            (_, At::Tail) => t.resp_done = true,
            (_, At::First | At::Infile) => match first {
                Some(0xff) => {
                    r.error = parser::err(p, keep);
                    t.resp_done = true;
                }
                Some(0x00) if t.expect == Expect::Prepare => {
                    // COM_STMT_PREPARE_OK, then its definitions.
                    let id = parser::le32(p, 1);
                    let cols = parser::le16(p, 5).unwrap_or(0);
                    let params = parser::le16(p, 7).unwrap_or(0);
                    r.statement_id = id;
                    r.param_count = Some(params);
                    r.columns = Some(u64::from(cols));
                    statement = id.map(|i| (i, params));
                    let defs = u32::from(params) + u32::from(cols);
                    if defs == 0 {
                        t.resp_done = true;
                    } else {
                        t.at = At::Defs { left: defs, params: u32::from(params) };
                    }
                }
                Some(0x00) => {
                    let o = parser::ok(p, caps, keep);
                    let more =
                        o.as_ref().is_some_and(|o| o.status & status::MORE_RESULTS_EXISTS != 0);
                    r.ok = o;
                    if t.expect == Expect::ResultSet {
                        r.result_sets += 1;
                    }
                    t.resp_done = !more || t.expect != Expect::ResultSet;
                }
                Some(0xfe) if t.expect != Expect::ResultSet || p.len() < 9 => {
                    // EOF (COM_DEBUG, COM_SET_OPTION, an empty field list).
                    let (w, s) = parser::eof(p);
                    r.ok = Some(parser::Ok { warnings: w, status: s, ..parser::Ok::default() });
                    t.resp_done = true;
                }
                Some(0xfb) if t.expect == Expect::ResultSet && t.at == At::First => {
                    t.at = At::Infile;
                }
                _ => match t.expect {
                    Expect::FieldList => {
                        r.columns = Some(r.columns.unwrap_or(0) + 1);
                        push_field(&mut r.fields, p, keep);
                    }
                    Expect::Rows => {
                        r.rows += 1;
                        t.at = At::Rows;
                    }
                    Expect::ResultSet => {
                        // A column count starts a result set.
                        let mut rd = Rd::new(p, 0);
                        let n = rd.lenenc().flatten().unwrap_or(0);
                        // Definitions the client cached may be left out.
                        let skipped = (caps & cap::OPTIONAL_RESULTSET_METADATA != 0
                            || (t.binary && caps & cap::MARIADB_CACHE_METADATA != 0))
                            && rd.u8() == Some(0);
                        r.result_sets += 1;
                        r.columns = Some(n);
                        r.fields.clear();
                        t.at = if skipped || n == 0 { At::MaybeEof } else { At::Columns(n) };
                    }
                    _ => {
                        ctx.errors.bump(Error::Malformed.into());
                        t.resp_done = true;
                    }
                },
            },
            (_, At::Columns(left)) => {
                push_field(&mut r.fields, p, keep);
                t.at = if left > 1 { At::Columns(left - 1) } else { At::MaybeEof };
            }
            (_, At::MaybeEof) if eof_shaped => {
                let (_, s) = parser::eof(p);
                // A cursor was opened: rows come with COM_STMT_FETCH.
                if s & status::CURSOR_EXISTS != 0 {
                    t.resp_done = true;
                } else {
                    t.at = At::Rows;
                }
            }
            (_, At::MaybeEof | At::Rows) => match first {
                Some(0xff) => {
                    r.error = parser::err(p, keep);
                    t.resp_done = true;
                }
                Some(0xfe) if p.len() < parser::MAX_PAYLOAD => {
                    let o = if p.len() <= 5 {
                        let (w, s) = parser::eof(p);
                        Some(parser::Ok { warnings: w, status: s, ..parser::Ok::default() })
                    } else {
                        parser::ok(p, caps | cap::PROTOCOL_41, keep)
                    };
                    let more =
                        o.as_ref().is_some_and(|o| o.status & status::MORE_RESULTS_EXISTS != 0);
                    r.ok = o;
                    if more && t.expect == Expect::ResultSet {
                        t.at = At::First;
                    } else {
                        t.resp_done = true;
                    }
                }
                _ => {
                    r.rows += 1;
                    t.at = At::Rows;
                }
            },
            // An EOF between parameter and column definitions.
            (_, At::Defs { .. }) if eof_shaped => {}
            (_, At::Defs { left, params }) => {
                if params == 0 {
                    push_field(&mut r.fields, p, keep);
                }
                if left > 1 {
                    t.at = At::Defs { left: left - 1, params: params.saturating_sub(1) };
                } else {
                    match tail {
                        Some(a) => t.at = a,
                        None => t.resp_done = true,
                    }
                }
            }
        }
        let ok = t.resp_done && t.resp.error.is_none();
        let auth_done = t.resp_done && t.expect == Expect::Auth;
        let command = t.command();
        let req = t.req.as_ref().map(|r| (r.user.clone(), r.database.clone(), r.query.clone()));
        if let (Some((id, n)), Some((_, _, q))) = (statement, req.clone()) {
            self.remember(id, q.unwrap_or_default(), n, ctx);
        }
        match command {
            Some(com::INIT_DB) if ok => self.database = req.and_then(|r| r.1),
            Some(com::CHANGE_USER) if ok => {
                if let Some((u, d, _)) = req {
                    self.user = u;
                    self.database = d;
                }
                self.statements.clear();
            }
            // The login: compression starts after its OK, or never.
            None if auth_done => {
                let kind = self.compress_next.take();
                self.compress_now = kind.filter(|_| ok);
            }
            _ => {}
        }
        self.emit_ready(ctx);
    }

    fn resync(&mut self, dir: Direction, b: &[u8]) -> ParseResult {
        let plausible = |x: &[u8]| {
            let Some((len, seq)) = parser::header(x) else { return false };
            let first = x.get(parser::HEADER).copied();
            len > 0
                && len < parser::MAX_PAYLOAD
                && match dir {
                    Direction::ToServer => {
                        seq == 0
                            && first.is_some_and(|c| parser::command_name(c).is_some() && c != 0)
                    }
                    Direction::ToClient => {
                        seq == 1 && matches!(first, Some(0x00 | 0xff | 0x01..=0x40))
                    }
                }
        };
        match (0..b.len().saturating_sub(parser::HEADER))
            .find(|&i| b.get(i..).is_some_and(plausible))
        {
            Some(0) => {
                self.resync[dir.idx()] = false;
                ParseResult::Continue { consumed: 0 }
            }
            Some(i) => ParseResult::Continue { consumed: i },
            None if b.len() > parser::HEADER + 1 => {
                ParseResult::Continue { consumed: b.len() - parser::HEADER - 1 }
            }
            None => ParseResult::Incomplete { consumed: 0, needed: 1 },
        }
    }
}

fn push_field(fields: &mut Vec<Vec<u8>>, def: &[u8], keep: usize) {
    let used: usize = fields.iter().map(Vec::len).sum();
    if used >= keep {
        return;
    }
    // A 4.1 column definition: catalog, schema, table, org_table, name …
    let mut r = Rd::new(def, 0);
    let name = (0..4).try_for_each(|_| r.lenenc_str().map(|_| ())).and_then(|_| r.lenenc_str());
    if let Some(n) = name {
        fields.push(cut(n, keep - used));
    }
}

impl Dissector for Packets {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if b.is_empty() {
            return ParseResult::Incomplete { consumed: 0, needed: 1 };
        }
        if matches!(self.phase, Phase::Tls | Phase::Off) {
            return ParseResult::Continue { consumed: b.len() };
        }
        let left = self.skip[dir.idx()];
        if left > 0 {
            let n = left.min(b.len() as u64);
            self.skip[dir.idx()] -= n;
            match dir {
                Direction::ToServer => self.add_request_bytes(n),
                Direction::ToClient => {
                    if let Some(t) = self.open() {
                        t.resp_size += n;
                    }
                }
            }
            return ParseResult::Continue { consumed: n as usize };
        }
        if self.resync[dir.idx()] {
            match self.resync(dir, b) {
                ParseResult::Continue { consumed: 0 } => {}
                r => return r,
            }
        }
        let Some((len, seq)) = parser::header(b) else {
            return ParseResult::Incomplete { consumed: 0, needed: parser::HEADER - b.len() };
        };
        let total = len + parser::HEADER;
        let want = ctx.limits.frame_want(total);
        if b.len() < want {
            return ParseResult::Incomplete { consumed: 0, needed: want - b.len() };
        }
        let have = total.min(b.len());
        let p = b.get(parser::HEADER..have).unwrap_or_default();
        match dir {
            Direction::ToServer => self.client_packet(p, seq, have as u64, ctx),
            Direction::ToClient => self.server_packet(p, seq, have as u64, ctx),
        }
        self.cont[dir.idx()] = len == parser::MAX_PAYLOAD;
        if have < total {
            self.skip[dir.idx()] = (total - have) as u64;
            return ParseResult::Continue { consumed: have };
        }
        ParseResult::Done { consumed: total }
    }

    fn on_gap(&mut self, dir: Direction, _len: u32, ctx: &mut ParseCtx<'_>) {
        self.skip[dir.idx()] = 0;
        self.cont[dir.idx()] = false;
        self.resync[dir.idx()] = true;
        self.uncertain = true;
        if self.phase == Phase::Start || self.phase == Phase::Login {
            self.phase = Phase::Commands;
        }
        if dir == Direction::ToClient {
            if let Some(t) = self.open() {
                set_error(&mut t.error, ItemErrorKind::Gap, "response stream lost data");
                if t.resp_seen {
                    t.resp_done = true;
                }
            }
        }
        self.emit_ready(ctx);
    }

    fn on_end(&mut self, _dir: Direction, _ctx: &mut ParseCtx<'_>) {}

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        while let Some(mut t) = self.txs.pop_front() {
            // An answer whose optional EOF never came is complete.
            if !t.resp_done && t.at != At::Tail {
                match reason {
                    FinishReason::Timeout => set_error(
                        &mut t.error,
                        ItemErrorKind::Timeout,
                        "no response before the flow timed out",
                    ),
                    FinishReason::Closed => {
                        ctx.errors.bump(ErrorKind::Unpaired);
                        let msg = if t.resp_seen {
                            "connection closed before the response ended"
                        } else {
                            "connection closed before the response"
                        };
                        set_error(&mut t.error, ItemErrorKind::PairNotFound, msg);
                    }
                }
            }
            self.emit(t, ctx);
        }
    }
}

impl MysqlSession {
    pub fn new() -> Self {
        MysqlSession::default()
    }

    /// A compressed frame: inflated into the packet stream.
    fn frame(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        let d = dir.idx();
        let left = self.zskip[d];
        if left > 0 {
            let n = left.min(b.len() as u64);
            self.zskip[d] -= n;
            return ParseResult::Continue { consumed: n as usize };
        }
        let Some(h) = b.get(..parser::COMPRESSED_HEADER) else {
            return ParseResult::Incomplete {
                consumed: 0,
                needed: parser::COMPRESSED_HEADER - b.len(),
            };
        };
        let clen = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
        let ulen = usize::from(h[4]) | usize::from(h[5]) << 8 | usize::from(h[6]) << 16;
        let total = clen + parser::COMPRESSED_HEADER;
        if total > ctx.limits.max_head_bytes {
            // Too large to inflate from the buffer: the packets in it are lost.
            self.zskip[d] = total as u64;
            self.zbuf[d].clear();
            self.p.on_gap(dir, ulen as u32, ctx);
            return ParseResult::Continue { consumed: 0 };
        }
        let Some(body) = b.get(parser::COMPRESSED_HEADER..total) else {
            return ParseResult::Incomplete { consumed: 0, needed: total - b.len() };
        };
        let limit = (ctx.limits.max_decompressed_bytes as usize).min(parser::MAX_PAYLOAD + 64);
        let data = if ulen == 0 {
            body.to_vec()
        } else if ulen > limit {
            ctx.errors.bump(Error::Decompression.into());
            self.zbuf[d].clear();
            self.p.on_gap(dir, ulen as u32, ctx);
            return ParseResult::Done { consumed: total };
        } else {
            let mut out = Vec::with_capacity(ulen);
            let mut z = flate2::Decompress::new(true);
            match z.decompress_vec(body, &mut out, flate2::FlushDecompress::Finish) {
                Ok(_) if out.len() == ulen => out,
                _ => {
                    ctx.errors.bump(Error::Decompression.into());
                    self.zbuf[d].clear();
                    self.p.on_gap(dir, ulen as u32, ctx);
                    return ParseResult::Done { consumed: total };
                }
            }
        };
        let max_buf = ctx.limits.max_head_bytes;
        if let Some(zb) = self.zbuf.get_mut(d) {
            drive(&mut self.p, zb, dir, &data, max_buf, ctx);
        }
        ParseResult::Done { consumed: total }
    }
}

impl Dissector for MysqlSession {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if self.zlib {
            return self.frame(b, dir, ctx);
        }
        let r = self.p.parse(b, dir, ctx);
        match self.p.compress_now.take() {
            Some("zlib") => self.zlib = true,
            Some(_) => {
                ctx.errors.bump(Error::Zstd.into());
                self.p.phase = Phase::Off;
            }
            None => {}
        }
        if self.p.phase == Phase::Tls {
            // Stop here: what follows is TLS, replayed to its dissector.
            if let ParseResult::Done { consumed } | ParseResult::Continue { consumed } = r {
                return ParseResult::Incomplete { consumed, needed: 1 };
            }
        }
        r
    }

    fn on_gap(&mut self, dir: Direction, len: u32, ctx: &mut ParseCtx<'_>) {
        self.zskip[dir.idx()] = 0;
        self.zbuf[dir.idx()].clear();
        self.p.on_gap(dir, len, ctx);
    }

    fn on_end(&mut self, dir: Direction, ctx: &mut ParseCtx<'_>) {
        self.p.on_end(dir, ctx);
    }

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        self.p.finish(reason, ctx);
    }

    /// After an SSL request the connection is TLS.
    fn handover(&mut self, _ctx: &mut ParseCtx<'_>) -> Option<Session> {
        (self.p.phase == Phase::Tls)
            .then(|| Session::Tls(Box::new(crate::dissectors::tls::TlsSession::new())))
    }
}

#[cfg(test)]
mod tests {
    use super::super::message_json;
    use super::super::parser::tests::{greeting_payload, login_payload, packet, CAPS};
    use super::*;
    use crate::dissectors::script::{self, Step};
    use crate::dissectors::Limits;
    use serde_json::Value;

    fn run_with(steps: &[(bool, Vec<u8>)], limits: &Limits) -> (Vec<Exchange>, u64) {
        let steps = steps.iter().map(|(c, b)| if *c { Step::C(b) } else { Step::S(b) });
        let (out, errors) =
            script::run(&mut MysqlSession::new(), steps, limits, 0, FinishReason::Closed);
        (out, errors.total())
    }

    fn run(steps: &[(bool, Vec<u8>)]) -> Vec<Exchange> {
        run_with(steps, &Limits::default()).0
    }

    fn js(e: &Exchange) -> (Value, Value) {
        let j = |m: &Option<Message>| match m {
            Some(Message::Mysql(r)) => message_json(r),
            _ => Value::Null,
        };
        (j(&e.request), j(&e.response))
    }

    fn lenenc_str(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn coldef(name: &str) -> Vec<u8> {
        let mut v = Vec::new();
        for part in ["def", "shop", "t", "t", name, name] {
            v.extend(lenenc_str(part));
        }
        v.extend_from_slice(&[0x0c, 0x21, 0, 0xff, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
        v
    }

    const OK: &[u8] = &[0, 0, 0, 2, 0, 0, 0];
    const EOF: &[u8] = &[0xfe, 0, 0, 2, 0];

    fn c(b: Vec<u8>) -> (bool, Vec<u8>) {
        (true, b)
    }

    fn s(b: Vec<u8>) -> (bool, Vec<u8>) {
        (false, b)
    }

    /// A result set: column count, definitions, EOF, rows, EOF (no DEPRECATE_EOF).
    fn result_set(cols: &[&str], rows: usize) -> Vec<u8> {
        let mut seq = 1u8;
        let mut out = packet(seq, &[cols.len() as u8]);
        for name in cols {
            seq += 1;
            out.extend(packet(seq, &coldef(name)));
        }
        seq += 1;
        out.extend(packet(seq, EOF));
        for i in 0..rows {
            seq += 1;
            let row: Vec<u8> = cols.iter().flat_map(|_| lenenc_str(&i.to_string())).collect();
            out.extend(packet(seq, &row));
        }
        out.extend(packet(seq + 1, EOF));
        out
    }

    fn handshake(caps: u32) -> Vec<(bool, Vec<u8>)> {
        vec![
            s(packet(0, &greeting_payload("8.0.36", 42, caps, "caching_sha2_password"))),
            c(packet(
                1,
                &login_payload(
                    caps | cap::CONNECT_WITH_DB as u32,
                    "app",
                    Some("shop"),
                    &[("_client_name", "libmysql")],
                ),
            )),
            s(packet(2, OK)),
        ]
    }

    #[test]
    fn login_queries_result_sets_and_quit() {
        let mut steps = handshake(CAPS);
        steps.extend([
            c(packet(0, b"\x03SELECT id, name FROM t")),
            s(result_set(&["id", "name"], 3)),
            c(packet(0, b"\x02other")),
            s(packet(1, OK)),
            c(packet(0, b"\x0e")),
            s(packet(1, OK)),
            c(packet(0, b"\x03DELETE FROM t")),
            s(packet(1, &[0, 5, 0, 2, 0, 0, 0])),
            c(packet(0, b"\x03SELEC")),
            s(packet(1, b"\xff\x28\x04#42000You have an error in your SQL syntax")),
            c(packet(0, b"\x01")),
        ]);
        let out = run(&steps);
        assert_eq!(out.len(), 7, "{out:#?}");
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["command"].as_str(), q["user"].as_str(), q["database"].as_str()),
            (Some("login"), Some("app"), Some("shop"))
        );
        assert_eq!(q["connectAttributes"]["_client_name"], "libmysql");
        assert_eq!(
            (r["success"].as_bool(), r["serverVersion"].as_str(), r["connectionId"].as_u64()),
            (Some(true), Some("8.0.36"), Some(42))
        );
        let (q, r) = js(&out[1]);
        assert_eq!(
            (q["command"].as_str(), q["query"].as_str()),
            (Some("query"), Some("SELECT id, name FROM t"))
        );
        assert_eq!((r["rows"].as_u64(), r["columns"].as_u64()), (Some(3), Some(2)));
        assert_eq!(r["fields"], serde_json::json!(["id", "name"]));
        let (q, r) = js(&out[2]);
        assert_eq!(
            (q["command"].as_str(), q["database"].as_str(), r["success"].as_bool()),
            (Some("init_db"), Some("other"), Some(true))
        );
        // The schema changed: later items carry it.
        let (q, _) = js(&out[3]);
        assert_eq!((q["command"].as_str(), q["database"].as_str()), (Some("ping"), Some("other")));
        assert_eq!(js(&out[4]).1["affectedRows"], 5);
        let (_, r) = js(&out[5]);
        assert_eq!(
            (r["success"].as_bool(), r["error"]["code"].as_u64()),
            (Some(false), Some(1064))
        );
        assert_eq!(r["error"]["sqlState"], "42000");
        let (q, r) = js(&out[6]);
        assert_eq!((q["command"].as_str(), r.is_null()), (Some("quit"), true));
        assert!(out.iter().all(|e| e.error.is_none()), "{out:#?}");
        assert_eq!(out[1].response_size, result_set(&["id", "name"], 3).len() as u64);
    }

    #[test]
    fn auth_switch_and_refused_logins() {
        let out = run(&[
            s(packet(0, &greeting_payload("5.7.44", 7, CAPS, "mysql_native_password"))),
            c(packet(1, &login_payload(CAPS, "root", None, &[]))),
            s(packet(2, b"\xfecaching_sha2_password\0abcdefghijklmnopqrst\0")),
            c(packet(3, &[9; 32])),
            s(packet(
                4,
                b"\xff\x15\x04#28000Access denied for user 'root'@'h' (using password: YES)",
            )),
        ]);
        assert_eq!(out.len(), 1);
        let (q, r) = js(&out[0]);
        assert_eq!(q["user"], "root");
        assert_eq!(
            (r["success"].as_bool(), r["authSwitch"].as_str()),
            (Some(false), Some("caching_sha2_password"))
        );
        assert_eq!(
            r["error"]["message"],
            "Access denied for user 'root'@'h' (using password: YES)"
        );
        assert_eq!(
            out[0].request_size,
            (4 + login_payload(CAPS, "root", None, &[]).len() + 36) as u64
        );
        // Refused at the greeting: the ERR alone.
        let out = run(&[s(packet(
            0,
            b"\xffj\x04Host 'x' is not allowed to connect to this MySQL server",
        ))]);
        assert_eq!(out.len(), 1);
        let (q, r) = js(&out[0]);
        assert!(q.is_null());
        assert_eq!((r["error"]["code"].as_u64(), out[0].error.is_none()), (Some(1130), true));
    }

    #[test]
    fn prepared_statements_remember_their_text() {
        let mut steps = handshake(CAPS);
        let mut prep = packet(1, &[0, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0]);
        prep.extend(packet(2, &coldef("?")));
        prep.extend(packet(3, &coldef("?")));
        prep.extend(packet(4, EOF));
        prep.extend(packet(5, &coldef("sum")));
        prep.extend(packet(6, EOF));
        let mut exec = packet(1, &[1]);
        exec.extend(packet(2, &coldef("sum")));
        exec.extend(packet(3, EOF));
        exec.extend(packet(4, &[0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]));
        exec.extend(packet(5, EOF));
        steps.extend([
            c(packet(0, b"\x16SELECT ? + ?")),
            s(prep),
            c(packet(
                0,
                &[
                    0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8, 0, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2,
                    0, 0, 0, 0, 0, 0, 0,
                ],
            )),
            s(exec),
            c(packet(0, &[0x19, 1, 0, 0, 0])),
            c(packet(0, b"\x0e")),
            s(packet(1, OK)),
        ]);
        let out = run(&steps);
        assert_eq!(out.len(), 5, "{out:#?}");
        let (q, r) = js(&out[1]);
        assert_eq!(
            (q["command"].as_str(), r["statementId"].as_u64(), r["paramCount"].as_u64()),
            (Some("stmt_prepare"), Some(1), Some(2))
        );
        assert_eq!(r["fields"], serde_json::json!(["sum"]));
        let (q, r) = js(&out[2]);
        assert_eq!(
            (q["command"].as_str(), q["query"].as_str(), q["paramCount"].as_u64()),
            (Some("stmt_execute"), Some("SELECT ? + ?"), Some(2))
        );
        assert_eq!(r["rows"], 1);
        let (q, r) = js(&out[3]);
        assert_eq!(
            (q["command"].as_str(), q["query"].as_str(), r.is_null()),
            (Some("stmt_close"), Some("SELECT ? + ?"), true)
        );
        assert_eq!(js(&out[4]).0["command"], "ping");
        assert!(out.iter().all(|e| e.error.is_none()), "{out:#?}");
    }

    #[test]
    fn deprecate_eof_multi_results_and_mid_stream_pick_up() {
        let caps = CAPS | cap::DEPRECATE_EOF as u32 | cap::QUERY_ATTRIBUTES as u32;
        let mut steps = handshake(caps);
        // Two result sets (a CALL): OK-terminated rows with MORE_RESULTS, then OK.
        let mut two = packet(1, &[1]);
        two.extend(packet(2, &coldef("a")));
        two.extend(packet(3, b"\x011"));
        two.extend(packet(4, &[0xfe, 0, 0, 0x0a, 0, 0, 0]));
        two.extend(packet(5, &[0, 0, 0, 2, 0, 0, 0]));
        steps.extend([
            c(packet(0, b"\x03\x01\x01\x00\x01\xfd\x00\x07traceid\x03abcCALL p()")),
            s(two),
        ]);
        let out = run(&steps);
        assert_eq!(out.len(), 2, "{out:#?}");
        let (q, r) = js(&out[1]);
        assert_eq!(
            (q["query"].as_str(), q["attributes"]["traceid"].as_str()),
            (Some("CALL p()"), Some("abc"))
        );
        assert_eq!((r["rows"].as_u64(), r["resultSets"].as_u64()), (Some(1), Some(2)));
        // Picked up mid-connection: no greeting, capabilities unknown.
        let out = run(&[
            c(packet(0, b"\x03SELECT 1")),
            s(result_set(&["1"], 1)),
            c(packet(0, b"\x03SHOW TABLES")),
            s(result_set(&["t"], 2)),
        ]);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(
            (js(&out[0]).1["rows"].as_u64(), js(&out[1]).1["rows"].as_u64()),
            (Some(1), Some(2))
        );
        assert_eq!(js(&out[0]).0["user"], Value::Null);
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn frame(seq: u8, inner: &[u8], compress: bool) -> Vec<u8> {
        let (body, ulen) = if compress { (zlib(inner), inner.len()) } else { (inner.to_vec(), 0) };
        let mut v = vec![body.len() as u8, (body.len() >> 8) as u8, (body.len() >> 16) as u8, seq];
        v.extend_from_slice(&[ulen as u8, (ulen >> 8) as u8, (ulen >> 16) as u8]);
        v.extend(body);
        v
    }

    #[test]
    fn the_compressed_protocol_is_inflated_and_reported() {
        let mut steps = handshake(CAPS | cap::COMPRESS as u32);
        let q = packet(0, b"\x03SELECT name FROM t WHERE name LIKE 'a%' OR name LIKE 'b%'");
        steps.push(c(frame(0, &q, true)));
        let rs = result_set(&["name"], 2);
        // The answer split over two frames, one stored raw.
        steps.push(s(frame(1, &rs[..20], false)));
        steps.push(s(frame(2, &rs[20..], true)));
        let out = run(&steps);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(js(&out[0]).0["compression"], "zlib");
        let (q, r) = js(&out[1]);
        assert_eq!(
            (q["query"].as_str().map(|x| x.starts_with("SELECT name")), r["rows"].as_u64()),
            (Some(true), Some(2))
        );
        // A frame that does not inflate is counted, not a panic.
        let mut steps = handshake(CAPS | cap::COMPRESS as u32);
        steps.push(c(vec![10, 0, 0, 0, 50, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
        let (out, errors) = run_with(&steps, &Limits::default());
        assert_eq!((out.len(), errors), (1, 1));
    }

    #[test]
    fn hostile_and_cut_packets_are_counted_never_a_panic() {
        // A query larger than the buffer: read from its prefix, skipped.
        let mut big = b"\x03SELECT '".to_vec();
        big.extend(std::iter::repeat_n(b'x', 300_000));
        let big = packet(0, &big);
        let limits = Limits { max_field_bytes: 16, ..Limits::default() };
        let mut steps: Vec<(bool, Vec<u8>)> = big.chunks(1448).map(|x| c(x.to_vec())).collect();
        steps.push(s(packet(1, OK)));
        let (out, _) = run_with(&steps, &limits);
        assert_eq!(out.len(), 1);
        assert_eq!(js(&out[0]).0["query"].as_str().map(str::len), Some(16));
        assert_eq!(out[0].request_size, big.len() as u64);
        // An unknown command byte, a header that promises more than comes.
        let (out, errors) = run_with(
            &[c(packet(0, b"\x7fwhat")), c(vec![0xff, 0xff, 0x0f, 0, 3, b'S'])],
            &Limits::default(),
        );
        assert!(out.is_empty());
        assert_eq!(errors, 1);
        // A query never answered: closed without a response.
        let out = run(&[c(packet(0, b"\x03SELECT SLEEP(100)"))]);
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
    }

    #[test]
    fn a_response_gap_closes_the_answer_and_resynchronises() {
        let out = script::run(
            &mut MysqlSession::new(),
            [
                Step::C(&packet(0, b"\x03SELECT 1")),
                Step::S(&packet(1, &[1])),
                Step::GapS,
                Step::S(&[0xaa, 0xbb, 0xcc]),
                Step::C(&packet(0, b"\x0e")),
                Step::S(&packet(1, OK)),
            ],
            &Limits::default(),
            0,
            FinishReason::Closed,
        )
        .0;
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Gap));
        assert_eq!(js(&out[1]).0["command"], "ping");
        assert_eq!(js(&out[1]).1["success"], true);
    }
}
