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

pub mod dns;
pub mod http;

use crate::counters::DissectionErrors;
use crate::item::Exchange;

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
        /// Dissection errors and anomalies (small and `Copy`: hot-path values).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorKind { $($(#[$m])* $v,)* }
        impl ErrorKind {
            pub const ALL: [ErrorKind; [$($name),*].len()] = [$(ErrorKind::$v),*];
            pub const COUNT: usize = Self::ALL.len();
            /// Stable snake_case name (counters, logs).
            pub fn name(self) -> &'static str {
                match self { $(ErrorKind::$v => $name,)* }
            }
        }
    };
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

/// Feeds in-order `data` to `d`, keeping what it leaves unconsumed.
/// Zero-copy when nothing is held over from the previous call.
pub fn drive<D: Dissector>(d: &mut D, sb: &mut StreamBuf, dir: Direction, data: &[u8], max_buf: usize, ctx: &mut ParseCtx<'_>) {
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

/// A flow's dissector, dispatched statically.
pub enum Session {
    Http(http::HttpSession),
    Dns(dns::DnsSession),
}

impl Session {
    pub fn protocol(&self) -> crate::config::AppProtocol {
        match self {
            Session::Http(_) => crate::config::AppProtocol::Http,
            Session::Dns(_) => crate::config::AppProtocol::Dns,
        }
    }

    pub fn drive(&mut self, sb: &mut StreamBuf, dir: Direction, data: &[u8], max_buf: usize, ctx: &mut ParseCtx<'_>) {
        match self {
            Session::Http(s) => drive(s, sb, dir, data, max_buf, ctx),
            Session::Dns(s) => drive(s, sb, dir, data, max_buf, ctx),
        }
    }

    pub fn on_gap(&mut self, dir: Direction, len: u32, ctx: &mut ParseCtx<'_>) {
        match self {
            Session::Http(s) => s.on_gap(dir, len, ctx),
            Session::Dns(s) => s.on_gap(dir, len, ctx),
        }
    }

    pub fn on_end(&mut self, dir: Direction, ctx: &mut ParseCtx<'_>) {
        match self {
            Session::Http(s) => s.on_end(dir, ctx),
            Session::Dns(s) => s.on_end(dir, ctx),
        }
    }

    pub fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        match self {
            Session::Http(s) => s.finish(reason, ctx),
            Session::Dns(s) => s.finish(reason, ctx),
        }
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
