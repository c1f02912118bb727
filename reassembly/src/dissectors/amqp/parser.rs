//! Pure AMQP 0-9-1 parsing over byte slices: the protocol header, frame
//! headers, method arguments by a per-method field list, content-header
//! properties and field tables (RabbitMQ's field types).

use crate::dissectors::Confidence;

pub const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";
pub const FRAME_END: u8 = 0xce;
pub const FRAME_HEADER: usize = 7;
/// Largest frame believed (brokers negotiate `frame_max` ≤ 128 KiB by
/// default; the protocol allows 2^32-1).
pub const MAX_FRAME: u32 = 1 << 26;
/// Nesting of field tables and arrays kept (a protocol-shape bound:
/// headers rarely nest past two levels).
pub const MAX_TABLE_DEPTH: usize = 8;
/// Entries kept per field table (the rest are parsed and dropped).
pub const MAX_TABLE_ENTRIES: usize = 64;

pub mod frame_type {
    pub const METHOD: u8 = 1;
    pub const HEADER: u8 = 2;
    pub const BODY: u8 = 3;
    pub const HEARTBEAT: u8 = 8;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub ty: u8,
    pub channel: u16,
    pub size: u32,
}

pub fn frame_header(b: &[u8]) -> Option<FrameHeader> {
    let h = b.get(..FRAME_HEADER)?;
    Some(FrameHeader {
        ty: h[0],
        channel: u16::from_be_bytes([h[1], h[2]]),
        size: u32::from_be_bytes([h[3], h[4], h[5], h[6]]),
    })
}

pub fn plausible(h: &FrameHeader) -> bool {
    matches!(
        h.ty,
        frame_type::METHOD | frame_type::HEADER | frame_type::BODY | frame_type::HEARTBEAT
    ) && h.size <= MAX_FRAME
}

/// A field value (AMQP 0-9-1 with RabbitMQ's type letters).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    Table(Vec<(Vec<u8>, Value)>),
    Array(Vec<Value>),
    Void,
}

/// Argument types of a method's field list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum T {
    Octet,
    Short,
    Long,
    LongLong,
    ShortStr,
    LongStr,
    Bit,
    Table,
}

/// A reader over one frame payload; every read is `None` past its end.
pub struct Rd<'a> {
    pub b: &'a [u8],
    pub pos: usize,
    pub keep: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|x| x[0])
    }

    pub fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|x| u16::from_be_bytes([x[0], x[1]]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|x| u64::from_be_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]))
    }

    fn cut(&self, s: &[u8]) -> Vec<u8> {
        s.get(..self.keep.min(s.len())).unwrap_or_default().to_vec()
    }

    pub fn shortstr(&mut self) -> Option<Vec<u8>> {
        let n = usize::from(self.u8()?);
        let s = self.take(n)?;
        Some(self.cut(s))
    }

    pub fn longstr(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        let s = self.take(n)?;
        Some(self.cut(s))
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        let ty = self.u8()?;
        Some(match ty {
            b't' => Value::Bool(self.u8()? != 0),
            b'b' => Value::Int(i64::from(self.u8()? as i8)),
            b'B' => Value::Int(i64::from(self.u8()?)),
            b's' | b'U' => Value::Int(i64::from(self.u16()? as i16)),
            b'u' => Value::Int(i64::from(self.u16()?)),
            b'I' => Value::Int(i64::from(self.u32()? as i32)),
            b'i' => Value::Int(i64::from(self.u32()?)),
            b'l' | b'L' | b'T' => Value::Int(self.u64()? as i64),
            b'f' => Value::Float(f64::from(f32::from_bits(self.u32()?))),
            b'd' => Value::Float(f64::from_bits(self.u64()?)),
            b'D' => {
                let scale = self.u8()?;
                let v = self.u32()? as i32;
                Value::Float(f64::from(v) / 10f64.powi(i32::from(scale)))
            }
            b'S' | b'x' => Value::Str(self.longstr()?),
            b'F' => self.table(depth + 1)?,
            b'A' => {
                let n = self.u32()? as usize;
                let end = self.pos.checked_add(n)?;
                let inner = self.b.get(..end)?;
                let mut r = Rd { b: inner, pos: self.pos, keep: self.keep };
                let mut items = Vec::new();
                while r.pos < end {
                    let v = if depth < MAX_TABLE_DEPTH { r.value(depth + 1)? } else { Value::Void };
                    if items.len() < MAX_TABLE_ENTRIES {
                        items.push(v);
                    }
                    if depth >= MAX_TABLE_DEPTH {
                        r.pos = end;
                    }
                }
                self.pos = end;
                Value::Array(items)
            }
            b'V' => Value::Void,
            _ => return None,
        })
    }

    /// A field table (u32 length, then name/value pairs).
    pub fn table(&mut self, depth: usize) -> Option<Value> {
        let n = self.u32()? as usize;
        let end = self.pos.checked_add(n)?;
        let inner = self.b.get(..end)?;
        let mut r = Rd { b: inner, pos: self.pos, keep: self.keep };
        let mut out = Vec::new();
        if depth < MAX_TABLE_DEPTH {
            while r.pos < end {
                let k = r.shortstr()?;
                let v = r.value(depth)?;
                if out.len() < MAX_TABLE_ENTRIES {
                    out.push((k, v));
                }
            }
        }
        self.pos = end;
        Some(Value::Table(out))
    }
}

/// Name and argument list of a method (`_`-prefixed arguments are read
/// and dropped: reserved fields and secrets such as SASL responses).
pub fn method(class: u16, method: u16) -> Option<(&'static str, &'static [(&'static str, T)])> {
    use T::*;
    const CLOSE: &[(&str, T)] =
        &[("replyCode", Short), ("replyText", ShortStr), ("classId", Short), ("methodId", Short)];
    const TUNE: &[(&str, T)] = &[("channelMax", Short), ("frameMax", Long), ("heartbeat", Short)];
    const EX_BIND: &[(&str, T)] = &[
        ("_r", Short),
        ("destination", ShortStr),
        ("source", ShortStr),
        ("routingKey", ShortStr),
        ("noWait", Bit),
        ("arguments", Table),
    ];
    Some(match (class, method) {
        (10, 10) => (
            "connection.start",
            &[
                ("versionMajor", Octet),
                ("versionMinor", Octet),
                ("serverProperties", Table),
                ("mechanisms", LongStr),
                ("locales", LongStr),
            ],
        ),
        (10, 11) => (
            "connection.start-ok",
            &[
                ("clientProperties", Table),
                ("mechanism", ShortStr),
                ("_response", LongStr),
                ("locale", ShortStr),
            ],
        ),
        (10, 20) => ("connection.secure", &[("_challenge", LongStr)]),
        (10, 21) => ("connection.secure-ok", &[("_response", LongStr)]),
        (10, 30) => ("connection.tune", TUNE),
        (10, 31) => ("connection.tune-ok", TUNE),
        (10, 40) => {
            ("connection.open", &[("virtualHost", ShortStr), ("_r", ShortStr), ("_r2", Bit)])
        }
        (10, 41) => ("connection.open-ok", &[("_r", ShortStr)]),
        (10, 50) => ("connection.close", CLOSE),
        (10, 51) => ("connection.close-ok", &[]),
        (10, 60) => ("connection.blocked", &[("reason", ShortStr)]),
        (10, 61) => ("connection.unblocked", &[]),
        (10, 70) => ("connection.update-secret", &[("_secret", LongStr), ("reason", ShortStr)]),
        (10, 71) => ("connection.update-secret-ok", &[]),
        (20, 10) => ("channel.open", &[("_r", ShortStr)]),
        (20, 11) => ("channel.open-ok", &[("_r", LongStr)]),
        (20, 20) => ("channel.flow", &[("active", Bit)]),
        (20, 21) => ("channel.flow-ok", &[("active", Bit)]),
        (20, 40) => ("channel.close", CLOSE),
        (20, 41) => ("channel.close-ok", &[]),
        (40, 10) => (
            "exchange.declare",
            &[
                ("_r", Short),
                ("exchange", ShortStr),
                ("type", ShortStr),
                ("passive", Bit),
                ("durable", Bit),
                ("autoDelete", Bit),
                ("internal", Bit),
                ("noWait", Bit),
                ("arguments", Table),
            ],
        ),
        (40, 11) => ("exchange.declare-ok", &[]),
        (40, 20) => (
            "exchange.delete",
            &[("_r", Short), ("exchange", ShortStr), ("ifUnused", Bit), ("noWait", Bit)],
        ),
        (40, 21) => ("exchange.delete-ok", &[]),
        (40, 30) => ("exchange.bind", EX_BIND),
        (40, 31) => ("exchange.bind-ok", &[]),
        (40, 40) => ("exchange.unbind", EX_BIND),
        (40, 51) => ("exchange.unbind-ok", &[]),
        (50, 10) => (
            "queue.declare",
            &[
                ("_r", Short),
                ("queue", ShortStr),
                ("passive", Bit),
                ("durable", Bit),
                ("exclusive", Bit),
                ("autoDelete", Bit),
                ("noWait", Bit),
                ("arguments", Table),
            ],
        ),
        (50, 11) => (
            "queue.declare-ok",
            &[("queue", ShortStr), ("messageCount", Long), ("consumerCount", Long)],
        ),
        (50, 20) => (
            "queue.bind",
            &[
                ("_r", Short),
                ("queue", ShortStr),
                ("exchange", ShortStr),
                ("routingKey", ShortStr),
                ("noWait", Bit),
                ("arguments", Table),
            ],
        ),
        (50, 21) => ("queue.bind-ok", &[]),
        (50, 30) => ("queue.purge", &[("_r", Short), ("queue", ShortStr), ("noWait", Bit)]),
        (50, 31) => ("queue.purge-ok", &[("messageCount", Long)]),
        (50, 40) => (
            "queue.delete",
            &[
                ("_r", Short),
                ("queue", ShortStr),
                ("ifUnused", Bit),
                ("ifEmpty", Bit),
                ("noWait", Bit),
            ],
        ),
        (50, 41) => ("queue.delete-ok", &[("messageCount", Long)]),
        (50, 50) => (
            "queue.unbind",
            &[
                ("_r", Short),
                ("queue", ShortStr),
                ("exchange", ShortStr),
                ("routingKey", ShortStr),
                ("arguments", Table),
            ],
        ),
        (50, 51) => ("queue.unbind-ok", &[]),
        (60, 10) => {
            ("basic.qos", &[("prefetchSize", Long), ("prefetchCount", Short), ("global", Bit)])
        }
        (60, 11) => ("basic.qos-ok", &[]),
        (60, 20) => (
            "basic.consume",
            &[
                ("_r", Short),
                ("queue", ShortStr),
                ("consumerTag", ShortStr),
                ("noLocal", Bit),
                ("noAck", Bit),
                ("exclusive", Bit),
                ("noWait", Bit),
                ("arguments", Table),
            ],
        ),
        (60, 21) => ("basic.consume-ok", &[("consumerTag", ShortStr)]),
        (60, 30) => ("basic.cancel", &[("consumerTag", ShortStr), ("noWait", Bit)]),
        (60, 31) => ("basic.cancel-ok", &[("consumerTag", ShortStr)]),
        (60, 40) => (
            "basic.publish",
            &[
                ("_r", Short),
                ("exchange", ShortStr),
                ("routingKey", ShortStr),
                ("mandatory", Bit),
                ("immediate", Bit),
            ],
        ),
        (60, 50) => (
            "basic.return",
            &[
                ("replyCode", Short),
                ("replyText", ShortStr),
                ("exchange", ShortStr),
                ("routingKey", ShortStr),
            ],
        ),
        (60, 60) => (
            "basic.deliver",
            &[
                ("consumerTag", ShortStr),
                ("deliveryTag", LongLong),
                ("redelivered", Bit),
                ("exchange", ShortStr),
                ("routingKey", ShortStr),
            ],
        ),
        (60, 70) => ("basic.get", &[("_r", Short), ("queue", ShortStr), ("noAck", Bit)]),
        (60, 71) => (
            "basic.get-ok",
            &[
                ("deliveryTag", LongLong),
                ("redelivered", Bit),
                ("exchange", ShortStr),
                ("routingKey", ShortStr),
                ("messageCount", Long),
            ],
        ),
        (60, 72) => ("basic.get-empty", &[("_r", ShortStr)]),
        (60, 80) => ("basic.ack", &[("deliveryTag", LongLong), ("multiple", Bit)]),
        (60, 90) => ("basic.reject", &[("deliveryTag", LongLong), ("requeue", Bit)]),
        (60, 100) => ("basic.recover-async", &[("requeue", Bit)]),
        (60, 110) => ("basic.recover", &[("requeue", Bit)]),
        (60, 111) => ("basic.recover-ok", &[]),
        (60, 120) => {
            ("basic.nack", &[("deliveryTag", LongLong), ("multiple", Bit), ("requeue", Bit)])
        }
        (85, 10) => ("confirm.select", &[("noWait", Bit)]),
        (85, 11) => ("confirm.select-ok", &[]),
        (90, 10) => ("tx.select", &[]),
        (90, 11) => ("tx.select-ok", &[]),
        (90, 20) => ("tx.commit", &[]),
        (90, 21) => ("tx.commit-ok", &[]),
        (90, 30) => ("tx.rollback", &[]),
        (90, 31) => ("tx.rollback-ok", &[]),
        _ => return None,
    })
}

/// The method ids that answer a synchronous method of `class`.
pub fn replies(class: u16, method: u16) -> &'static [u16] {
    match (class, method) {
        (60, 70) => &[71, 72],
        (40, 40) => &[51],
        (10, 10 | 20 | 30 | 40 | 50 | 70)
        | (20, 10 | 20 | 40)
        | (40, 10 | 20 | 30)
        | (50, 10 | 20 | 30 | 40 | 50)
        | (60, 10 | 20 | 30 | 110)
        | (85, 10)
        | (90, 10 | 20 | 30) => match method {
            10 => &[11],
            20 => &[21],
            30 => &[31],
            40 => &[41],
            50 => &[51],
            70 => &[71],
            110 => &[111],
            _ => &[],
        },
        _ => &[],
    }
}

/// Methods followed by a content header and body frames.
pub fn has_content(class: u16, method: u16) -> bool {
    matches!((class, method), (60, 40) | (60, 50) | (60, 60) | (60, 71))
}

/// Reads a method's arguments (`payload` after class and method ids).
pub fn arguments(
    payload: &[u8],
    spec: &[(&'static str, T)],
    keep: usize,
) -> Vec<(&'static str, Value)> {
    let mut r = Rd { b: payload, pos: 0, keep };
    let mut out = Vec::new();
    let mut bits: Option<(u8, u8)> = None;
    for (name, t) in spec {
        let v = match t {
            T::Bit => {
                let (byte, n) = match bits {
                    Some((byte, n)) if n < 8 => (byte, n),
                    _ => match r.u8() {
                        Some(b) => (b, 0),
                        None => break,
                    },
                };
                bits = Some((byte, n + 1));
                Value::Bool(byte >> n & 1 == 1)
            }
            other => {
                bits = None;
                let v = match other {
                    T::Octet => r.u8().map(|x| Value::Int(i64::from(x))),
                    T::Short => r.u16().map(|x| Value::Int(i64::from(x))),
                    T::Long => r.u32().map(|x| Value::Int(i64::from(x))),
                    T::LongLong => r.u64().map(|x| Value::Int(x as i64)),
                    T::ShortStr => r.shortstr().map(Value::Str),
                    T::LongStr => r.longstr().map(Value::Str),
                    _ => r.table(0),
                };
                match v {
                    Some(v) => v,
                    None => break,
                }
            }
        };
        if !name.starts_with('_') {
            out.push((*name, v));
        }
    }
    out
}

/// Content-header properties (class, weight, body size, flags, values).
pub fn content_header(payload: &[u8], keep: usize) -> Option<(u64, Vec<(&'static str, Value)>)> {
    const PROPS: [(&str, T); 14] = [
        ("contentType", T::ShortStr),
        ("contentEncoding", T::ShortStr),
        ("headers", T::Table),
        ("deliveryMode", T::Octet),
        ("priority", T::Octet),
        ("correlationId", T::ShortStr),
        ("replyTo", T::ShortStr),
        ("expiration", T::ShortStr),
        ("messageId", T::ShortStr),
        ("timestamp", T::LongLong),
        ("type", T::ShortStr),
        ("userId", T::ShortStr),
        ("appId", T::ShortStr),
        ("clusterId", T::ShortStr),
    ];
    let mut r = Rd { b: payload, pos: 0, keep };
    r.u16()?; // class
    r.u16()?; // weight
    let size = r.u64()?;
    let flags = r.u16()?;
    let mut out = Vec::new();
    for (i, (name, t)) in PROPS.iter().enumerate() {
        if flags & (1 << (15 - i)) == 0 {
            continue;
        }
        let v = match t {
            T::ShortStr => r.shortstr().map(Value::Str),
            T::Octet => r.u8().map(|x| Value::Int(i64::from(x))),
            T::LongLong => r.u64().map(|x| Value::Int(x as i64)),
            _ => r.table(0),
        };
        match v {
            Some(v) => out.push((*name, v)),
            None => break,
        }
    }
    Some((size, out))
}

/// Content-based detection: the protocol header, or a method frame.
pub fn probe(b: &[u8]) -> Confidence {
    let n = b.len().min(PROTOCOL_HEADER.len());
    if n >= 4 && b.get(..n) == PROTOCOL_HEADER.get(..n) {
        return Confidence::High;
    }
    if n >= 4 && b.starts_with(b"AMQP") {
        // Another protocol version: still AMQP, not dissected further.
        return Confidence::Medium;
    }
    let Some(h) = frame_header(b) else { return Confidence::None };
    let end = FRAME_HEADER + h.size as usize;
    let ids = b
        .get(FRAME_HEADER..FRAME_HEADER + 4)
        .map(|x| (u16::from_be_bytes([x[0], x[1]]), u16::from_be_bytes([x[2], x[3]])));
    match (h.ty, ids, b.get(end)) {
        (frame_type::METHOD, Some((c, m)), Some(&FRAME_END)) if method(c, m).is_some() => {
            Confidence::Medium
        }
        _ => Confidence::None,
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn frame(ty: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![ty];
        v.extend_from_slice(&channel.to_be_bytes());
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v.push(FRAME_END);
        v
    }

    pub fn shortstr(s: &str) -> Vec<u8> {
        let mut v = vec![s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    pub fn method_frame(channel: u16, class: u16, method: u16, args: &[u8]) -> Vec<u8> {
        let mut p = class.to_be_bytes().to_vec();
        p.extend_from_slice(&method.to_be_bytes());
        p.extend_from_slice(args);
        frame(frame_type::METHOD, channel, &p)
    }

    /// basic.publish + content header (content-type, headers) + body frames.
    pub fn publish(
        channel: u16,
        exchange: &str,
        key: &str,
        body: &[u8],
        frame_max: usize,
    ) -> Vec<u8> {
        let mut args = vec![0, 0];
        args.extend(shortstr(exchange));
        args.extend(shortstr(key));
        args.push(0);
        let mut v = method_frame(channel, 60, 40, &args);
        let mut h = vec![0, 60, 0, 0];
        h.extend_from_slice(&(body.len() as u64).to_be_bytes());
        h.extend_from_slice(&0xa000u16.to_be_bytes());
        h.extend(shortstr("text/plain"));
        let table = [shortstr("x-n"), vec![b'I', 0, 0, 0, 7]].concat();
        h.extend_from_slice(&(table.len() as u32).to_be_bytes());
        h.extend(table);
        v.extend(frame(frame_type::HEADER, channel, &h));
        for c in body.chunks(frame_max.max(1)) {
            v.extend(frame(frame_type::BODY, channel, c));
        }
        v
    }

    #[test]
    fn arguments_bits_and_tables() {
        let mut args = vec![0, 0];
        args.extend(shortstr("q1"));
        args.push(0b0000_0110); // durable, exclusive
        args.extend_from_slice(&[0, 0, 0, 15]);
        args.extend(shortstr("x-ttl"));
        args.extend_from_slice(&[b'l', 0, 0, 0, 0, 0, 0, 0, 9]);
        let (name, spec) = method(50, 10).unwrap();
        let a = arguments(&args, spec, 64);
        assert_eq!(name, "queue.declare");
        assert_eq!(a[0], ("queue", Value::Str(b"q1".to_vec())));
        assert_eq!(a[2], ("durable", Value::Bool(true)));
        assert_eq!(a[5], ("noWait", Value::Bool(false)));
        assert_eq!(a[6], ("arguments", Value::Table(vec![(b"x-ttl".to_vec(), Value::Int(9))])));
        // Secrets are read past, never kept.
        let (_, spec) = method(10, 11).unwrap();
        let a = arguments(
            &[&[0, 0, 0, 0][..], &shortstr("PLAIN"), &[0, 0, 0, 3, 1, 2, 3], &shortstr("en_US")]
                .concat(),
            spec,
            64,
        );
        assert_eq!(
            a.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec!["clientProperties", "mechanism", "locale"]
        );
        assert_eq!(replies(60, 70), &[71, 72]);
        assert_eq!(replies(40, 40), &[51]);
        assert!(replies(60, 40).is_empty());
    }

    #[test]
    fn content_header_and_probe() {
        let p = publish(1, "ex", "rk", b"hello", 4);
        let h = frame_header(&p[p.iter().position(|_| true).unwrap()..]).unwrap();
        assert_eq!(h.ty, frame_type::METHOD);
        let hdr_at = FRAME_HEADER + h.size as usize + 1;
        let hh = frame_header(&p[hdr_at..]).unwrap();
        let (size, props) =
            content_header(&p[hdr_at + FRAME_HEADER..hdr_at + FRAME_HEADER + hh.size as usize], 64)
                .unwrap();
        assert_eq!(size, 5);
        assert_eq!(props[0], ("contentType", Value::Str(b"text/plain".to_vec())));
        assert_eq!(props[1], ("headers", Value::Table(vec![(b"x-n".to_vec(), Value::Int(7))])));
        assert_eq!(probe(PROTOCOL_HEADER), Confidence::High);
        assert_eq!(probe(&p), Confidence::Medium);
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), Confidence::None);
        // Nesting past the bound is read past, not kept.
        let mut t = Vec::new();
        for _ in 0..20 {
            let inner =
                [shortstr("k"), vec![b'F'], (t.len() as u32).to_be_bytes().to_vec(), t].concat();
            t = inner;
        }
        let mut r = Rd {
            b: &[(t.len() as u32).to_be_bytes().to_vec(), t.clone()].concat(),
            pos: 0,
            keep: 64,
        };
        assert!(r.table(0).is_some());
    }
}
