//! The streaming contract every dissector follows, and the driver that feeds
//! a dissector from in-order stream data.
//!
//! One folder per protocol, the same files in each (Suricata's layout):
//! `mod.rs` (the Rust values of a request/response and their JSON),
//! `parser.rs` (pure, stateless parsing of byte slices) and `<proto>.rs` (the
//! stateful session: probe, transactions, pairing).
//!
//! Contract: `parse(bytes)` answers [`ParseResult`]; it never panics and
//! never consumes more than it was given. Bytes it did not consume are kept
//! by the driver ([`StreamBuf`]) and handed back, with what follows, on the
//! next call. Lost data arrives as `on_gap(len)`; the end of a direction as
//! `on_end`; the end of the flow as `finish`, which must emit every
//! transaction still open. Anomalies become an [`ErrorKind`] counted per core
//! and an `error` on the item, never a panic or a silent drop.

pub mod amqp;
/// A scripted session for dissector tests: bytes each way and gaps, fed
/// through the real driver, then `finish`.
#[cfg(test)]
pub(crate) mod script {
    use super::{drive, Direction, Dissector, FinishReason, Limits, ParseCtx, StreamBuf};
    use crate::counters::DissectionErrors;
    use crate::item::Exchange;

    pub enum Step<'a> {
        C(&'a [u8]),
        S(&'a [u8]),
        /// 10 bytes lost client → server.
        GapC,
        /// 10 bytes lost server → client.
        GapS,
    }

    /// Runs `steps` (step i at time `ts0 + i`) through `s`, then finishes
    /// the flow for `reason`.
    pub fn run<'a, D: Dissector>(
        s: &mut D,
        steps: impl IntoIterator<Item = Step<'a>>,
        limits: &Limits,
        ts0: u64,
        reason: FinishReason,
    ) -> (Vec<Exchange>, DissectionErrors) {
        let mut out = Vec::new();
        let mut errors = DissectionErrors::default();
        let mut bufs = [StreamBuf::default(), StreamBuf::default()];
        for (i, st) in steps.into_iter().enumerate() {
            let mut ctx =
                ParseCtx { ts_ns: ts0 + i as u64, out: &mut out, errors: &mut errors, limits };
            match st {
                Step::C(b) => drive(s, &mut bufs[0], Direction::ToServer, b, 1 << 16, &mut ctx),
                Step::S(b) => drive(s, &mut bufs[1], Direction::ToClient, b, 1 << 16, &mut ctx),
                Step::GapC => {
                    bufs[0].clear();
                    s.on_gap(Direction::ToServer, 10, &mut ctx)
                }
                Step::GapS => {
                    bufs[1].clear();
                    s.on_gap(Direction::ToClient, 10, &mut ctx)
                }
            }
        }
        let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits };
        s.finish(reason, &mut ctx);
        (out, errors)
    }
}

pub mod dns;
pub mod http;
pub mod http2;
pub mod kafka;
pub mod mongodb;
pub mod mysql;
pub mod postgresql;
pub mod redis;
pub mod registry;
pub mod tls;
pub mod websocket;

use std::borrow::Cow;

use crate::counters::DissectionErrors;
use crate::item::{Exchange, Item};
pub use registry::{NoSession, Protocol, ProtocolMessage};

// The registry: one line per protocol, in the order probes try them (a
// `High` answer ends the search: HTTP/2 and HTTP first, so protocols after
// them cost an HTTP flow nothing). A new protocol is its folder (declared
// above) and one line here; see `registry.rs` for what the line generates.
registry::protocols! {
    /// HTTP/2 with prior knowledge, after an h2c upgrade, or picked up
    /// mid-connection (`http2`).
    Http2 = "http2" => http2::Http2,
    /// HTTP/1.0 and HTTP/1.1 (`http`).
    Http = "http" => http::Http,
    /// DNS over UDP and TCP (`dns`).
    Dns = "dns" => dns::Dns,
    /// gRPC over HTTP/2 (`grpc`): HTTP/2 streams whose content-type is
    /// `application/grpc*` become gRPC items; without it they stay HTTP/2.
    Grpc = "grpc" => http2::Grpc,
    /// RESP2/RESP3 (`redis`).
    Redis = "redis" => redis::Redis,
    /// The Kafka wire protocol (`kafka`).
    Kafka = "kafka" => kafka::Kafka,
    /// The PostgreSQL frontend/backend protocol 3.0 (`postgresql`).
    Postgresql = "postgresql" => postgresql::Postgresql,
    /// AMQP 0-9-1 (`amqp`).
    Amqp = "amqp" => amqp::Amqp,
    /// The MySQL/MariaDB client/server protocol (`mysql`).
    Mysql = "mysql" => mysql::Mysql,
    /// The MongoDB wire protocol (`mongodb`).
    Mongodb = "mongodb" => mongodb::Mongodb,
    /// TLS handshakes, no decryption (`tls`).
    Tls = "tls" => tls::Tls,
    /// WebSocket after an HTTP/1.1 upgrade, or picked up after it
    /// (`websocket`); last: its probe is the loosest.
    Websocket = "websocket" => websocket::Websocket,
}

/// Direction of stream data relative to the flow's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    ToServer = 0,
    ToClient = 1,
}

impl Direction {
    pub fn idx(self) -> usize {
        self as usize
    }

    pub fn other(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }
}

/// How sure a probe is that bytes start a message of its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    None = 0,
    Low = 1,
    Medium = 2,
    High = 3,
}

/// Answer of one `parse` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseResult {
    /// A message ended after `consumed` bytes.
    Done { consumed: usize },
    /// `consumed` bytes were used and the message goes on; call again.
    Continue { consumed: usize },
    /// `consumed` bytes were used; at least `needed` more are required
    /// before progress is possible.
    Incomplete { consumed: usize, needed: usize },
    /// The direction cannot be dissected further.
    Error(ErrorKind),
}

macro_rules! error_kinds {
    ($($(#[$m:meta])* $v:ident => $name:literal,)*) => {
        /// The generic kinds' indices.
        #[allow(clippy::enum_variant_names)]
        enum Generic { $($v,)* }

        /// Dissection errors and anomalies: the kinds every protocol may
        /// report (associated constants, written like enum variants), then
        /// each protocol's own (`ErrorKind::protocol`, see
        /// `protocol_errors!`). One byte, `Copy`: a hot-path value that
        /// sits in every transaction a session holds.
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct ErrorKind(u8);

        #[allow(non_upper_case_globals)]
        impl ErrorKind {
            $($(#[$m])* pub const $v: ErrorKind = ErrorKind(Generic::$v as u8);)*

            /// The kinds every protocol may report.
            pub const GENERIC: [ErrorKind; [$($name),*].len()] = [$(ErrorKind::$v),*];
            const GENERIC_NAMES: [&'static str; [$($name),*].len()] = [$($name),*];
        }
    };
}

impl ErrorKind {
    /// Every kind: the generic ones, then each protocol's own.
    pub const COUNT: usize = Self::GENERIC.len() + ERROR_OFFSETS[AppProtocol::COUNT];

    /// Reason `r` of protocol `p`'s own anomalies (its `Protocol::ERRORS`).
    pub const fn protocol(p: AppProtocol, r: u8) -> ErrorKind {
        let i = Self::GENERIC.len() + ERROR_OFFSETS[p as usize] + r as usize;
        assert!(i < Self::COUNT && Self::COUNT <= 256, "an error reason past its protocol's list");
        ErrorKind(i as u8)
    }

    /// Dense index of the kind (counters).
    #[inline]
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Stable snake_case name (counters, logs).
    pub fn name(self) -> &'static str {
        let i = self.index();
        if let Some(n) = Self::GENERIC_NAMES.get(i) {
            return n;
        }
        let j = i - Self::GENERIC.len();
        AppProtocol::ALL
            .into_iter()
            .find_map(|p| {
                let (lo, hi) = (ERROR_OFFSETS[p as usize], ERROR_OFFSETS[p as usize + 1]);
                (lo..hi).contains(&j).then(|| p.errors().get(j - lo).copied()).flatten()
            })
            .unwrap_or("protocol_error")
    }

    /// Every kind, in index order.
    pub fn all() -> impl Iterator<Item = ErrorKind> {
        (0..Self::COUNT).map(|i| ErrorKind(i as u8))
    }
}

impl std::fmt::Debug for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

error_kinds! {
    /// A start line or header block that does not follow the grammar.
    Malformed => "malformed",
    /// A header block larger than the message buffer limit.
    HeaderTooLarge => "header_too_large",
    TooManyHeaders => "too_many_headers",
    /// Content-Length unparsable, or several that disagree.
    InvalidContentLength => "invalid_content_length",
    InvalidChunk => "invalid_chunk",
    /// A chunk size that does not fit in 64 bits (a smuggling shape).
    ChunkSizeOverflow => "chunk_size_overflow",
    /// Both Transfer-Encoding and Content-Length (a smuggling shape).
    TeClConflict => "te_cl_conflict",
    Decompression => "decompression",
    DecompressionLimit => "decompression_limit",
    /// A message cut short by the end of its stream.
    TruncatedMessage => "truncated_message",
    /// More transactions waiting than the pending limit.
    TooManyTransactions => "too_many_transactions",
    /// An incomplete message outgrew the per-direction buffer.
    BufferLimit => "buffer_limit",
    /// A DNS message shorter than its counts say.
    DnsTruncated => "dns_truncated",
    /// A DNS compression pointer loop or forward pointer.
    DnsPointerLoop => "dns_pointer_loop",
    DnsMalformed => "dns_malformed",
    /// A response whose request was never seen (or the reverse).
    Unpaired => "unpaired",
    /// An HTTP/2 frame that breaks RFC 9113 framing (a length wrong for
    /// its type, stream 0 where a stream is needed, CONTINUATION out of place).
    Http2Framing => "http2_framing",
    /// An HPACK header block that does not decode (integer, string or
    /// Huffman code cut or invalid, an index beyond both tables).
    HpackDecode => "hpack_decode",
    /// A header field referring to HPACK dynamic-table state never seen
    /// (picked up mid-connection, data lost): the field is left out.
    HpackUnknown => "hpack_unknown",
    /// More open HTTP/2 streams than `max_http2_streams`.
    TooManyStreams => "too_many_streams",
    /// gRPC length-prefixed messages that do not add up to the DATA sent.
    GrpcFraming => "grpc_framing",
    /// A RESP value that does not follow the grammar (or nests deeper than
    /// `max_resp_depth`).
    RedisMalformed => "redis_malformed",
    /// A Kafka message shorter than its fields, or with an impossible size.
    KafkaMalformed => "kafka_malformed",
    /// A PostgreSQL message with an impossible length or unknown type.
    PostgresqlMalformed => "postgresql_malformed",
    /// An AMQP frame without its frame-end octet, or a method shorter than
    /// its arguments.
    AmqpMalformed => "amqp_malformed",
}

/// Limits a dissector reads (copied from the config once per core).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_decompressed_bytes: u64,
    pub max_headers: usize,
    pub max_head_bytes: usize,
    pub max_pending: usize,
    pub max_pending_dns: usize,
    pub max_field_bytes: usize,
    pub max_redis_values: usize,
    pub max_resp_depth: usize,
    pub max_kafka_topics: usize,
    pub max_pg_statements: usize,
    pub max_http2_streams: usize,
    pub max_hpack_table_bytes: usize,
    pub max_amqp_channels: usize,
    pub max_mysql_statements: usize,
    pub max_bson_depth: usize,
    pub max_bson_elements: usize,
    pub max_websocket_fragments: u32,
    /// gRPC recognised on HTTP/2 streams (`grpc` in `protocols`).
    pub grpc: bool,
    /// HTTP/1.1 hands an `Upgrade: h2c` flow over to HTTP/2 (`http2` in
    /// `protocols`).
    pub h2c: bool,
    /// HTTP/1.1 hands an upgraded `Upgrade: websocket` flow over to
    /// WebSocket (`websocket` in `protocols`).
    pub websocket: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&crate::config::ReassemblyConfig::default())
    }
}

impl From<&crate::config::ReassemblyConfig> for Limits {
    fn from(c: &crate::config::ReassemblyConfig) -> Self {
        Limits {
            max_body_bytes: c.max_body_bytes as usize,
            max_decompressed_bytes: c.max_decompressed_bytes,
            max_headers: usize::from(c.max_http_headers).max(1),
            max_head_bytes: c.max_message_buffer_bytes as usize,
            max_pending: usize::from(c.max_pending_requests).max(1),
            max_pending_dns: usize::from(c.max_pending_dns_queries).max(1),
            max_field_bytes: c.max_field_bytes as usize,
            max_redis_values: usize::from(c.max_redis_values),
            max_resp_depth: usize::from(c.max_resp_depth).max(1),
            max_kafka_topics: usize::from(c.max_kafka_topics),
            max_pg_statements: usize::from(c.max_pg_statements),
            max_http2_streams: usize::from(c.max_http2_streams).max(1),
            max_hpack_table_bytes: c.max_hpack_table_bytes as usize,
            max_amqp_channels: usize::from(c.max_amqp_channels).max(1),
            max_mysql_statements: usize::from(c.max_mysql_statements),
            max_bson_depth: usize::from(c.max_bson_depth).max(1),
            max_bson_elements: c.max_bson_elements as usize,
            max_websocket_fragments: c.max_websocket_fragments.max(1),
            grpc: c.protocols.contains(&AppProtocol::Grpc),
            h2c: c.protocols.contains(&AppProtocol::Http2),
            websocket: c.protocols.contains(&AppProtocol::Websocket),
        }
    }
}

impl Limits {
    /// Bytes of a length-framed message of `total` bytes to wait for before
    /// parsing it: all of it when it fits the message buffer, else a prefix
    /// long enough for the fields an item keeps (the rest is skipped as it
    /// streams by, so a large message never has to be buffered whole).
    pub fn frame_want(&self, total: usize) -> usize {
        if total <= self.max_head_bytes {
            total
        } else {
            self.max_field_bytes
                .saturating_add(1024)
                .clamp(64, self.max_head_bytes.max(64))
                .min(total)
        }
    }
}

/// What a dissector call may touch besides its own state.
pub struct ParseCtx<'a> {
    /// Capture time of the segment being parsed.
    pub ts_ns: u64,
    pub out: &'a mut Vec<Exchange>,
    pub errors: &'a mut DissectionErrors,
    pub limits: &'a Limits,
}

/// Why a flow's dissection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// FIN or RST: an unanswered request will never be answered.
    Closed,
    /// Idle timeout, eviction or end of capture.
    Timeout,
}

pub trait Dissector {
    fn parse(&mut self, bytes: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult;
    fn on_gap(&mut self, dir: Direction, len: u32, ctx: &mut ParseCtx<'_>);
    fn on_end(&mut self, dir: Direction, ctx: &mut ParseCtx<'_>);
    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>);

    /// The session this flow continues with, when this protocol hands it
    /// over (HTTP/1.1 to HTTP/2 after an h2c upgrade): asked after every
    /// delivery; the bytes each direction held back are replayed to it.
    #[inline]
    fn handover(&mut self, _ctx: &mut ParseCtx<'_>) -> Option<Session> {
        None
    }
}

/// Bytes a direction holds between `parse` calls.
#[derive(Debug, Default)]
pub struct StreamBuf {
    buf: Vec<u8>,
    failed: bool,
}

impl StreamBuf {
    pub fn failed(&self) -> bool {
        self.failed
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Holds bytes before a dissector is chosen (a probe needs a few more).
    pub fn hold(&mut self, data: &[u8], max: usize) {
        let room = max.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(data.get(..room.min(data.len())).unwrap_or_default());
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// The rest of a message larger than the buffer, skipped as it streams by:
/// `Some` while `skip` bytes are left (and counts them down).
#[inline]
pub fn skip_rest(skip: &mut u64, b: &[u8]) -> Option<ParseResult> {
    if *skip == 0 {
        return None;
    }
    let n = (*skip).min(b.len() as u64);
    *skip -= n;
    Some(ParseResult::Continue { consumed: n as usize })
}

/// A length-framed message of `total` bytes starting `b`: waits for the
/// bytes [`Limits::frame_want`] asks (at least `min`), hands `f` the
/// message or its prefix, and leaves the rest of a large one in `skip`.
pub fn framed(
    b: &[u8],
    total: usize,
    min: usize,
    skip: &mut u64,
    ctx: &mut ParseCtx<'_>,
    f: impl FnOnce(&[u8], &mut ParseCtx<'_>),
) -> ParseResult {
    let want = ctx.limits.frame_want(total).max(min.min(total));
    if b.len() < want {
        return ParseResult::Incomplete { consumed: 0, needed: want - b.len() };
    }
    let have = total.min(b.len());
    f(b.get(..have).unwrap_or_default(), ctx);
    if have < total {
        *skip = (total - have) as u64;
        return ParseResult::Continue { consumed: have };
    }
    ParseResult::Done { consumed: total }
}

/// The error of a request still waiting when its flow ends (`Closed` also
/// counts it as `unpaired`).
pub fn unanswered(reason: FinishReason, ctx: &mut ParseCtx<'_>) -> crate::item::ItemError {
    use crate::item::{ItemError, ItemErrorKind};
    match reason {
        FinishReason::Timeout => {
            ItemError::new(ItemErrorKind::Timeout, "no response before the flow timed out")
        }
        FinishReason::Closed => {
            ctx.errors.bump(ErrorKind::Unpaired);
            ItemError::new(ItemErrorKind::PairNotFound, "connection closed without a response")
        }
    }
}

/// Feeds in-order `data` to `d`, keeping what it leaves unconsumed.
/// Zero-copy when nothing is held over from the previous call.
pub fn drive<D: Dissector>(
    d: &mut D,
    sb: &mut StreamBuf,
    dir: Direction,
    data: &[u8],
    max_buf: usize,
    ctx: &mut ParseCtx<'_>,
) {
    if sb.failed || data.is_empty() {
        return;
    }
    let mut held = std::mem::take(&mut sb.buf);
    let from_held = !held.is_empty();
    let input: &[u8] = if !from_held {
        data
    } else {
        held.extend_from_slice(data);
        &held
    };
    let mut pos = 0usize;
    while pos < input.len() {
        let rest = input.get(pos..).unwrap_or_default();
        match d.parse(rest, dir, ctx) {
            ParseResult::Done { consumed } | ParseResult::Continue { consumed } => {
                if consumed == 0 {
                    break; // no progress: wait for more data rather than spin
                }
                pos += consumed.min(rest.len());
            }
            ParseResult::Incomplete { consumed, .. } => {
                pos += consumed.min(rest.len());
                break;
            }
            ParseResult::Error(kind) => {
                ctx.errors.bump(kind);
                sb.failed = true;
                pos = input.len();
            }
        }
    }
    let left = input.len().saturating_sub(pos);
    if left > max_buf {
        ctx.errors.bump(ErrorKind::BufferLimit);
        sb.failed = true;
        held.clear();
    } else if from_held {
        held.drain(..pos.min(held.len()));
    } else {
        held.extend_from_slice(data.get(pos..).unwrap_or_default());
    }
    sb.buf = held;
}

impl Session {
    /// Content-based detection of a TCP flow's protocol from the first bytes
    /// of one direction (`dir` as the flow's roles say now).
    pub fn probe(protocol: AppProtocol, bytes: &[u8], dir: Direction) -> Confidence {
        protocol.probe(bytes, dir)
    }

    /// A session that hands the flow over to another protocol (HTTP/1.1 →
    /// HTTP/2 after `101 Switching Protocols` to h2c): replaces `self` and
    /// replays the bytes each direction held back for the new session.
    #[inline]
    pub fn handover(&mut self, bufs: &mut [StreamBuf; 2], max_buf: usize, ctx: &mut ParseCtx<'_>) {
        if let Some(next) = self.take_handover(ctx) {
            self.replace(next, bufs, max_buf, ctx);
        }
    }

    #[inline(never)]
    fn replace(
        &mut self,
        mut next: Session,
        bufs: &mut [StreamBuf; 2],
        max_buf: usize,
        ctx: &mut ParseCtx<'_>,
    ) {
        for dir in [Direction::ToServer, Direction::ToClient] {
            let Some(b) = bufs.get_mut(dir.idx()) else { continue };
            let held = b.take();
            *b = StreamBuf::default();
            if !held.is_empty() {
                next.drive(b, dir, &held, max_buf, ctx);
            }
        }
        *self = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses lines ending in '\n' and counts them.
    #[derive(Default)]
    struct Lines(Vec<Vec<u8>>, u32);

    impl Dissector for Lines {
        fn parse(&mut self, b: &[u8], _: Direction, _: &mut ParseCtx<'_>) -> ParseResult {
            match b.iter().position(|c| *c == b'\n') {
                Some(i) => {
                    self.0.push(b[..i].to_vec());
                    ParseResult::Done { consumed: i + 1 }
                }
                None if b.starts_with(b"!") => ParseResult::Error(ErrorKind::Malformed),
                None => ParseResult::Incomplete { consumed: 0, needed: 1 },
            }
        }
        fn on_gap(&mut self, _: Direction, len: u32, _: &mut ParseCtx<'_>) {
            self.1 += len;
        }
        fn on_end(&mut self, _: Direction, _: &mut ParseCtx<'_>) {}
        fn finish(&mut self, _: FinishReason, _: &mut ParseCtx<'_>) {}
    }

    #[test]
    fn driver_holds_incomplete_bytes_and_enforces_the_buffer_limit() {
        let mut out = Vec::new();
        let mut errors = DissectionErrors::default();
        let limits = Limits::default();
        let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits: &limits };
        let mut d = Lines::default();
        let mut sb = StreamBuf::default();
        drive(&mut d, &mut sb, Direction::ToServer, b"ab\ncd", 8, &mut ctx);
        assert_eq!(sb.len(), 2);
        drive(&mut d, &mut sb, Direction::ToServer, b"e\nf", 8, &mut ctx);
        assert_eq!(d.0, vec![b"ab".to_vec(), b"cde".to_vec()]);
        drive(&mut d, &mut sb, Direction::ToServer, b"0123456789", 8, &mut ctx);
        assert!(sb.failed());
        assert_eq!(ctx.errors.get(ErrorKind::BufferLimit), 1);
        let mut sb = StreamBuf::default();
        drive(&mut d, &mut sb, Direction::ToServer, b"!x", 8, &mut ctx);
        assert!(sb.failed());
        assert_eq!(ctx.errors.get(ErrorKind::Malformed), 1);
    }
}
