//! Pure RESP2/RESP3 parsing over byte slices: a streaming reader that
//! builds one value at a time, and the inline-command splitter.
//!
//! The reader never needs a whole value in memory: a bulk string is consumed
//! as it arrives (its first `max_field_bytes` kept), so a multi-megabyte
//! `GET` reply costs no more than its kept prefix. Only a line (a type byte
//! and its header or simple value) must be complete before it is read; the
//! driver's buffer limit bounds that. Aggregates keep at most
//! `max_redis_values` elements in all (the rest are parsed and counted) and
//! nest at most `max_resp_depth` deep.

use crate::dissectors::ErrorKind;

/// A RESP value as kept: strings cut at `max_field_bytes`, aggregates at
/// `max_redis_values` elements (their `count` is the full one).
#[derive(Debug, Clone, PartialEq)]
pub enum RespValue {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    /// `$`: `len` is the full length; `data` its kept prefix.
    Bulk {
        data: Vec<u8>,
        len: u64,
    },
    /// `!` (RESP3 blob error).
    BlobError {
        data: Vec<u8>,
        len: u64,
    },
    /// `=` (RESP3 verbatim string), format prefix (`txt:`) included.
    Verbatim {
        data: Vec<u8>,
        len: u64,
    },
    /// RESP2 null bulk/array (`$-1`, `*-1`) and RESP3 `_`.
    Null,
    Bool(bool),
    /// `,` as sent (`inf`, `-inf`, `nan` are valid).
    Double(Vec<u8>),
    /// `(` as sent.
    BigNumber(Vec<u8>),
    /// `*`, `%`, `~`, `>`; a map's items are its keys and values in turn.
    Aggregate {
        kind: AggKind,
        items: Vec<RespValue>,
        count: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    Array,
    Map,
    Set,
    Push,
    /// `|`: metadata before a reply; read and dropped.
    Attribute,
}

impl RespValue {
    /// The bytes of a string-like value (simple, error, bulk, verbatim).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            RespValue::Simple(b)
            | RespValue::Error(b)
            | RespValue::Double(b)
            | RespValue::BigNumber(b) => Some(b),
            RespValue::Bulk { data, .. }
            | RespValue::BlobError { data, .. }
            | RespValue::Verbatim { data, .. } => Some(data),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, RespValue::Error(_) | RespValue::BlobError { .. })
    }

    /// Elements of an array, set or push.
    pub fn items(&self) -> Option<&[RespValue]> {
        match self {
            RespValue::Aggregate {
                kind: AggKind::Array | AggKind::Set | AggKind::Push,
                items,
                ..
            } => Some(items),
            _ => None,
        }
    }
}

/// Limits the reader applies (copied from the config).
#[derive(Debug, Clone, Copy)]
pub struct RespLimits {
    pub max_field_bytes: usize,
    pub max_values: usize,
    pub max_depth: usize,
}

/// What one `feed` call found.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// A whole top-level value ended after `consumed` bytes of this call;
    /// `wire` is its size over all calls.
    Value {
        value: RespValue,
        consumed: usize,
        wire: u64,
    },
    /// `consumed` bytes were used; the value needs more.
    NeedMore {
        consumed: usize,
    },
    Error(ErrorKind),
}

#[derive(Debug)]
struct Agg {
    kind: AggKind,
    remaining: u64,
    count: u64,
    items: Vec<RespValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlobKind {
    Bulk,
    Error,
    Verbatim,
}

#[derive(Debug)]
struct Blob {
    kind: BlobKind,
    len: u64,
    /// Bytes still to come, the closing CRLF included.
    remaining: u64,
    data: Vec<u8>,
}

/// Streaming reader of one direction's RESP values.
#[derive(Debug, Default)]
pub struct RespReader {
    stack: Vec<Agg>,
    blob: Option<Blob>,
    /// Values kept so far in the current top-level value.
    kept: usize,
    /// Bytes of the current top-level value consumed by earlier calls.
    wire: u64,
}

/// Parses a decimal `i64` header or integer value.
fn int(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.trim().parse().ok()
}

impl RespReader {
    /// Between values (an inline command may start here).
    pub fn idle(&self) -> bool {
        self.stack.is_empty() && self.blob.is_none() && self.wire == 0
    }

    /// Forgets a value in progress (after a gap).
    pub fn reset(&mut self) {
        *self = RespReader::default();
    }

    /// Reads from `b` until a top-level value completes or data runs out.
    pub fn feed(&mut self, b: &[u8], lim: &RespLimits) -> Step {
        let mut pos = 0usize;
        loop {
            if let Some(blob) = self.blob.as_mut() {
                let avail = b.len().saturating_sub(pos);
                let n = (blob.remaining.min(avail as u64)) as usize;
                let chunk = b.get(pos..pos + n).unwrap_or_default();
                // The kept part is the string itself, never its CRLF.
                let already = blob.len + 2 - blob.remaining;
                let data_left = blob.len.saturating_sub(already) as usize;
                let room = lim.max_field_bytes.saturating_sub(blob.data.len()).min(data_left);
                blob.data.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                blob.remaining -= n as u64;
                pos += n;
                if blob.remaining > 0 {
                    self.wire += pos as u64;
                    return Step::NeedMore { consumed: pos };
                }
                let Some(blob) = self.blob.take() else { continue };
                let v = match blob.kind {
                    BlobKind::Bulk => RespValue::Bulk { data: blob.data, len: blob.len },
                    BlobKind::Error => RespValue::BlobError { data: blob.data, len: blob.len },
                    BlobKind::Verbatim => RespValue::Verbatim { data: blob.data, len: blob.len },
                };
                if let Some(done) = self.complete(v, lim) {
                    return self.done(done, pos);
                }
                continue;
            }
            let rest = b.get(pos..).unwrap_or_default();
            let Some(nl) = rest.iter().position(|c| *c == b'\n') else {
                self.wire += pos as u64;
                return Step::NeedMore { consumed: pos };
            };
            let line = rest.get(..nl).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            pos += nl + 1;
            let Some((&ty, body)) = line.split_first() else {
                return Step::Error(ErrorKind::RedisMalformed);
            };
            let keep =
                |x: &[u8]| x.get(..lim.max_field_bytes.min(x.len())).unwrap_or_default().to_vec();
            let scalar = match ty {
                b'+' => Some(RespValue::Simple(keep(body))),
                b'-' => Some(RespValue::Error(keep(body))),
                b':' => match int(body) {
                    Some(n) => Some(RespValue::Integer(n)),
                    None => return Step::Error(ErrorKind::RedisMalformed),
                },
                b'_' => Some(RespValue::Null),
                b'#' => match body {
                    b"t" => Some(RespValue::Bool(true)),
                    b"f" => Some(RespValue::Bool(false)),
                    _ => return Step::Error(ErrorKind::RedisMalformed),
                },
                b',' => Some(RespValue::Double(keep(body))),
                b'(' => Some(RespValue::BigNumber(keep(body))),
                b'$' | b'!' | b'=' => match int(body) {
                    Some(-1) => Some(RespValue::Null),
                    Some(n) if n >= 0 => {
                        let kind = match ty {
                            b'$' => BlobKind::Bulk,
                            b'!' => BlobKind::Error,
                            _ => BlobKind::Verbatim,
                        };
                        let len = n as u64;
                        self.blob = Some(Blob { kind, len, remaining: len + 2, data: Vec::new() });
                        None
                    }
                    _ => return Step::Error(ErrorKind::RedisMalformed),
                },
                b'*' | b'%' | b'~' | b'>' | b'|' => {
                    let kind = match ty {
                        b'*' => AggKind::Array,
                        b'%' => AggKind::Map,
                        b'~' => AggKind::Set,
                        b'>' => AggKind::Push,
                        _ => AggKind::Attribute,
                    };
                    match int(body) {
                        Some(-1) if kind == AggKind::Array => Some(RespValue::Null),
                        Some(n) if n >= 0 => {
                            let n = n as u64;
                            let count = if matches!(kind, AggKind::Map | AggKind::Attribute) {
                                n.saturating_mul(2)
                            } else {
                                n
                            };
                            if count == 0 {
                                if kind == AggKind::Attribute {
                                    continue;
                                }
                                Some(RespValue::Aggregate { kind, items: Vec::new(), count: 0 })
                            } else {
                                if self.stack.len() >= lim.max_depth {
                                    return Step::Error(ErrorKind::RedisMalformed);
                                }
                                self.stack.push(Agg {
                                    kind,
                                    remaining: count,
                                    count,
                                    items: Vec::new(),
                                });
                                None
                            }
                        }
                        _ => return Step::Error(ErrorKind::RedisMalformed),
                    }
                }
                _ => return Step::Error(ErrorKind::RedisMalformed),
            };
            if let Some(v) = scalar {
                if let Some(done) = self.complete(v, lim) {
                    return self.done(done, pos);
                }
            }
        }
    }

    fn done(&mut self, value: RespValue, consumed: usize) -> Step {
        let wire = self.wire + consumed as u64;
        self.wire = 0;
        self.kept = 0;
        Step::Value { value, consumed, wire }
    }

    /// Places a finished value in its parent; returns the top-level value
    /// when it is complete.
    fn complete(&mut self, mut v: RespValue, lim: &RespLimits) -> Option<RespValue> {
        loop {
            let Some(top) = self.stack.last_mut() else { return Some(v) };
            if self.kept < lim.max_values {
                top.items.push(v);
                self.kept += 1;
            }
            top.remaining -= 1;
            if top.remaining > 0 {
                return None;
            }
            let agg = self.stack.pop()?;
            if agg.kind == AggKind::Attribute {
                // An attribute annotates the value that follows it in the
                // same position: that value is still to come.
                return None;
            }
            v = RespValue::Aggregate { kind: agg.kind, items: agg.items, count: agg.count };
        }
    }
}

/// Splits an inline command line the way the server does: whitespace
/// separates arguments; double quotes allow escapes, single quotes none.
/// `None` for unbalanced quotes.
pub fn split_inline(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while line.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        let Some(&c) = line.get(i) else { break };
        let mut arg = Vec::new();
        match c {
            b'"' => {
                i += 1;
                loop {
                    match line.get(i)? {
                        b'\\' => {
                            let e = *line.get(i + 1)?;
                            let hex = |c: u8| (c as char).to_digit(16);
                            match e {
                                b'x' => match (
                                    line.get(i + 2).and_then(|c| hex(*c)),
                                    line.get(i + 3).and_then(|c| hex(*c)),
                                ) {
                                    (Some(h), Some(l)) => {
                                        arg.push((h * 16 + l) as u8);
                                        i += 4;
                                        continue;
                                    }
                                    _ => arg.push(e),
                                },
                                b'n' => arg.push(b'\n'),
                                b'r' => arg.push(b'\r'),
                                b't' => arg.push(b'\t'),
                                b'b' => arg.push(8),
                                b'a' => arg.push(7),
                                _ => arg.push(e),
                            }
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        &x => {
                            arg.push(x);
                            i += 1;
                        }
                    }
                }
            }
            b'\'' => {
                i += 1;
                loop {
                    match line.get(i)? {
                        b'\\' if line.get(i + 1) == Some(&b'\'') => {
                            arg.push(b'\'');
                            i += 2;
                        }
                        b'\'' => {
                            i += 1;
                            break;
                        }
                        &x => {
                            arg.push(x);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while let Some(&x) = line.get(i).filter(|c| !c.is_ascii_whitespace()) {
                    arg.push(x);
                    i += 1;
                }
            }
        }
        out.push(arg);
    }
    Some(out)
}

/// Commands whose first argument is not a key (for `request.key`).
const KEYLESS: &[&str] = &[
    "ACL",
    "AUTH",
    "BGREWRITEAOF",
    "BGSAVE",
    "CLIENT",
    "CLUSTER",
    "COMMAND",
    "CONFIG",
    "DBSIZE",
    "DEBUG",
    "DISCARD",
    "ECHO",
    "EVAL",
    "EVALSHA",
    "EVAL_RO",
    "EVALSHA_RO",
    "EXEC",
    "FAILOVER",
    "FCALL",
    "FCALL_RO",
    "FLUSHALL",
    "FLUSHDB",
    "FUNCTION",
    "HELLO",
    "INFO",
    "KEYS",
    "LASTSAVE",
    "LATENCY",
    "LOLWUT",
    "MEMORY",
    "MODULE",
    "MONITOR",
    "MULTI",
    "OBJECT",
    "PING",
    "PSUBSCRIBE",
    "PSYNC",
    "PUBLISH",
    "PUBSUB",
    "PUNSUBSCRIBE",
    "QUIT",
    "RANDOMKEY",
    "READONLY",
    "READWRITE",
    "REPLCONF",
    "REPLICAOF",
    "RESET",
    "ROLE",
    "SAVE",
    "SCAN",
    "SCRIPT",
    "SELECT",
    "SHUTDOWN",
    "SLAVEOF",
    "SLOWLOG",
    "SPUBLISH",
    "SSUBSCRIBE",
    "SUBSCRIBE",
    "SUNSUBSCRIBE",
    "SWAPDB",
    "SYNC",
    "TIME",
    "UNSUBSCRIBE",
    "UNWATCH",
    "WAIT",
    "WAITAOF",
    "XINFO",
];

/// Whether `cmd` (upper case) takes a key as its first argument.
pub fn has_key(cmd: &str) -> bool {
    !KEYLESS.contains(&cmd)
}

/// Commands a probe recognises as the start of an inline command.
const INLINE_PROBE: &[&[u8]] = &[
    b"PING",
    b"AUTH",
    b"HELLO",
    b"SELECT",
    b"INFO",
    b"CLIENT",
    b"COMMAND",
    b"ECHO",
    b"SET",
    b"DEL",
    b"EXISTS",
    b"INCR",
    b"KEYS",
    b"SCAN",
    b"MONITOR",
    b"SUBSCRIBE",
    b"PSUBSCRIBE",
    b"PUBLISH",
    b"QUIT",
    b"FLUSHALL",
    b"DBSIZE",
    b"CONFIG",
];

/// Content-based detection of a client's first bytes.
pub fn probe(b: &[u8]) -> crate::dissectors::Confidence {
    use crate::dissectors::Confidence;
    match b.first() {
        // `*<n>\r\n$<len>\r\n`: a command as every client library sends it.
        Some(b'*') => {
            let digits = b.iter().skip(1).take_while(|c| c.is_ascii_digit()).count();
            if digits == 0 || digits > 6 {
                return Confidence::None;
            }
            let rest = b.get(1 + digits..).unwrap_or_default();
            if rest.len() < 3 {
                return if b"\r\n$".starts_with(rest) && !rest.is_empty() {
                    Confidence::Low
                } else {
                    Confidence::None
                };
            }
            if rest.starts_with(b"\r\n$") {
                Confidence::High
            } else {
                Confidence::None
            }
        }
        Some(_) => {
            let word_len = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
            let word = b.get(..word_len).unwrap_or_default();
            let after = b.get(word_len).copied();
            let known = INLINE_PROBE.iter().any(|k| k.eq_ignore_ascii_case(word));
            if known && matches!(after, Some(b' ') | Some(b'\r') | Some(b'\n')) {
                // An inline command ends its line with a line feed; without
                // one yet, it is only a guess.
                if b.iter().take(4096).any(|c| *c == b'\n') {
                    Confidence::Medium
                } else {
                    Confidence::Low
                }
            } else {
                Confidence::None
            }
        }
        None => Confidence::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissectors::Confidence;

    const LIM: RespLimits = RespLimits { max_field_bytes: 8, max_values: 4, max_depth: 3 };

    fn one(b: &[u8]) -> (RespValue, usize) {
        let mut r = RespReader::default();
        match r.feed(b, &LIM) {
            Step::Value { value, consumed, .. } => (value, consumed),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn resp2_scalars_and_arrays() {
        assert_eq!(one(b"+OK\r\n"), (RespValue::Simple(b"OK".to_vec()), 5));
        assert_eq!(one(b"-ERR no\r\n").0, RespValue::Error(b"ERR no".to_vec()));
        assert_eq!(one(b":-42\r\n").0, RespValue::Integer(-42));
        assert_eq!(one(b"$-1\r\n").0, RespValue::Null);
        assert_eq!(one(b"*-1\r\n").0, RespValue::Null);
        assert_eq!(one(b"$0\r\n\r\n"), (RespValue::Bulk { data: vec![], len: 0 }, 6));
        let (v, n) = one(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n+extra");
        assert_eq!(n, 20);
        assert_eq!(v.items().map(|i| i.len()), Some(2));
    }

    #[test]
    fn resp3_types_and_attributes() {
        assert_eq!(one(b"_\r\n").0, RespValue::Null);
        assert_eq!(one(b"#t\r\n").0, RespValue::Bool(true));
        assert_eq!(one(b",3.5\r\n").0, RespValue::Double(b"3.5".to_vec()));
        assert_eq!(one(b"(12345678901234567890\r\n").0, RespValue::BigNumber(b"12345678".to_vec()));
        assert_eq!(one(b"!3\r\nERR\r\n").0, RespValue::BlobError { data: b"ERR".to_vec(), len: 3 });
        assert_eq!(
            one(b"=8\r\ntxt:abcd\r\n").0,
            RespValue::Verbatim { data: b"txt:abcd".to_vec(), len: 8 }
        );
        let (v, _) = one(b"%1\r\n+a\r\n:1\r\n");
        assert!(matches!(v, RespValue::Aggregate { kind: AggKind::Map, count: 2, .. }));
        // An attribute is dropped; the value after it is the reply.
        let (v, n) = one(b"|1\r\n+ttl\r\n:3\r\n:7\r\n");
        assert_eq!((v, n), (RespValue::Integer(7), 18));
        let (v, _) = one(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n");
        assert!(matches!(v, RespValue::Aggregate { kind: AggKind::Push, count: 3, .. }));
    }

    #[test]
    fn streams_bulk_strings_and_keeps_a_prefix() {
        let mut r = RespReader::default();
        let mut msg = b"$20\r\n".to_vec();
        msg.extend_from_slice(b"0123456789abcdefghij\r\n");
        // One byte at a time: the reader never needs the whole value.
        let mut got = None;
        let mut held = Vec::new();
        for b in &msg {
            held.push(*b);
            match r.feed(&held, &LIM) {
                Step::NeedMore { consumed } => {
                    held.drain(..consumed);
                }
                Step::Value { value, consumed, wire } => {
                    assert_eq!(consumed, held.len());
                    got = Some((value, wire));
                }
                Step::Error(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(got, Some((RespValue::Bulk { data: b"01234567".to_vec(), len: 20 }, 27)));
    }

    #[test]
    fn limits_on_values_and_depth() {
        let (v, _) = one(b"*6\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n:6\r\n");
        match v {
            RespValue::Aggregate { items, count, .. } => assert_eq!((items.len(), count), (4, 6)),
            _ => panic!(),
        }
        let mut r = RespReader::default();
        assert_eq!(
            r.feed(b"*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", &LIM),
            Step::Error(ErrorKind::RedisMalformed)
        );
        for bad in [&b":x\r\n"[..], b"$-5\r\n", b"?\r\n", b"\r\n", b"#x\r\n"] {
            assert_eq!(
                RespReader::default().feed(bad, &LIM),
                Step::Error(ErrorKind::RedisMalformed),
                "{bad:?}"
            );
        }
        assert_eq!(RespReader::default().feed(b"*2\r\n:1\r", &LIM), Step::NeedMore { consumed: 4 });
    }

    #[test]
    fn inline_commands_and_probe() {
        assert_eq!(
            split_inline(b"SET k \"a b\\x41\\n\" 'c d'"),
            Some(vec![b"SET".to_vec(), b"k".to_vec(), b"a bA\n".to_vec(), b"c d".to_vec()])
        );
        assert_eq!(split_inline(b"  PING  "), Some(vec![b"PING".to_vec()]));
        assert_eq!(split_inline(b"SET \"open"), None);
        assert_eq!(probe(b"*1\r\n$4\r\nPING\r\n"), Confidence::High);
        assert_eq!(probe(b"PING\r\n"), Confidence::Medium);
        assert_eq!(probe(b"PING"), Confidence::None);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Confidence::None);
        assert_eq!(probe(b"*12x"), Confidence::None);
        assert!(has_key("GET") && !has_key("PUBLISH"));
    }
}
