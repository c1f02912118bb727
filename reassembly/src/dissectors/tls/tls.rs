//! The TLS session of one flow: records of both directions, handshake
//! messages reassembled across records, and the two items of a connection
//! (see the module doc of `tls/mod.rs` for why two).
//!
//! Invariants: a direction's handshake messages are read only while it is
//! in the clear (before its ChangeCipherSpec in TLS ≤ 1.2; the server's
//! after its ServerHello, and the client's after its first encrypted
//! record, in TLS 1.3); records are framed by their 5-byte headers and
//! bytes of records that are not read (application data, encrypted
//! handshake) are skipped as they stream by, never buffered; the handshake
//! reassembly buffer holds at most `max_message_buffer_bytes` per
//! direction. The handshake item is emitted once; the connection item at
//! `finish`, only after a handshake item.

use super::parser::{self, content, hs};
use super::{Error, TlsAlert, TlsMessage, TlsRequest, TlsResponse};
use crate::dissectors::{Direction, Dissector, FinishReason, ParseCtx, ParseResult};
use crate::item::{set_error, Exchange, ItemError, ItemErrorKind, Message};

#[derive(Default)]
struct Half {
    /// Handshake bytes not yet a whole message.
    hs: Vec<u8>,
    /// Bytes of an oversized handshake message still to drop.
    hs_skip: usize,
    /// Bytes of the current record still to skip.
    rec_skip: u64,
    /// Past its ChangeCipherSpec (or encrypted by TLS 1.3).
    encrypted: bool,
    ccs: bool,
    /// The record after its ChangeCipherSpec (its Finished) came.
    finished: bool,
    /// Bytes and records during, then after, the handshake.
    hs_bytes: u64,
    records: u64,
    bytes: u64,
    alerts: u64,
}

#[derive(Default)]
pub struct TlsSession {
    half: [Half; 2],
    req: TlsRequest,
    resp: TlsResponse,
    client_seen: bool,
    server_seen: bool,
    /// A HelloRetryRequest came: the next ClientHello and ServerHello redo the hello.
    retry: bool,
    tls13: bool,
    /// The server sent a Certificate, ServerKeyExchange or ServerHelloDone:
    /// a full handshake.
    server_full: bool,
    hello_ts: u64,
    server_ts: u64,
    done_ts: u64,
    last_ts: u64,
    /// The handshake item was emitted.
    emitted: bool,
    error: Option<ItemError>,
    /// Neither direction can be framed any more.
    broken: bool,
}

impl TlsSession {
    pub fn new() -> Self {
        TlsSession::default()
    }

    /// Emits the handshake item (once).
    fn complete(&mut self, established: bool, ctx: &mut ParseCtx<'_>) {
        if self.emitted {
            return;
        }
        self.emitted = true;
        self.done_ts = ctx.ts_ns;
        self.resp.established = established;
        let [c, s] = &self.half;
        let mut error = self.error.take();
        if !self.server_seen && self.client_seen && self.resp.alert.is_none() {
            set_error(&mut error, ItemErrorKind::PairNotFound, "no ServerHello");
        }
        if !self.client_seen {
            set_error(&mut error, ItemErrorKind::PairNotFound, "ClientHello not captured");
        }
        ctx.out.push(Exchange {
            request: self
                .client_seen
                .then(|| Message::Tls(Box::new(TlsMessage::Request(self.req.clone())))),
            response: (self.server_seen || self.resp.alert.is_some())
                .then(|| Message::Tls(Box::new(TlsMessage::Response(self.resp.clone())))),
            request_ts_ns: self.hello_ts,
            response_ts_ns: if self.server_seen { self.server_ts } else { ctx.ts_ns },
            request_size: c.hs_bytes,
            response_size: s.hs_bytes,
            error,
        });
    }

    fn handshake_message(
        &mut self,
        msg: &[u8],
        dir: Direction,
        whole: bool,
        ctx: &mut ParseCtx<'_>,
    ) {
        let keep = ctx.limits.max_field_bytes;
        let Some(&ty) = msg.first() else { return };
        match (dir, ty) {
            (Direction::ToServer, hs::CLIENT_HELLO) => {
                let Some(ch) = parser::client_hello(msg, keep).filter(|_| whole) else {
                    ctx.errors.bump(Error::Malformed.into());
                    set_error(&mut self.error, ItemErrorKind::Dissection, "tls_malformed");
                    return;
                };
                if self.client_seen {
                    // The second ClientHello, after a HelloRetryRequest.
                    self.req.hello_retry = true;
                    return;
                }
                self.client_seen = true;
                self.hello_ts = ctx.ts_ns;
                self.req.ja3 = Some(parser::ja3(&ch));
                self.req.ja4 = Some(parser::ja4(&ch));
                self.req.hello = Some(ch);
            }
            (Direction::ToClient, hs::SERVER_HELLO) => {
                let Some(sh) = parser::server_hello(msg, keep).filter(|_| whole) else {
                    ctx.errors.bump(Error::Malformed.into());
                    set_error(&mut self.error, ItemErrorKind::Dissection, "tls_malformed");
                    return;
                };
                if !self.server_seen {
                    self.server_ts = ctx.ts_ns;
                }
                self.server_seen = true;
                if let Some(g) = sh.group {
                    self.resp.curve = Some(g);
                }
                if sh.hello_retry {
                    // Only TLS 1.3 retries a hello: its CCS changes nothing.
                    self.retry = true;
                    self.tls13 = true;
                    self.resp.hello = Some(sh);
                    return;
                }
                let hrr = self.retry;
                self.tls13 = sh.version == 0x0304 || (0x7f00..=0x7fff).contains(&sh.version);
                self.resp.resumed = sh.psk;
                self.resp.hello = Some(parser::ServerHello { hello_retry: hrr, ..sh });
                if self.tls13 {
                    // Everything the server sends after this is encrypted.
                    self.half[1].encrypted = true;
                }
            }
            (Direction::ToClient, hs::CERTIFICATE) => {
                self.server_full = true;
                let (chain, n) = parser::certificate_chain(msg);
                self.resp.chain_length = n as u32;
                if let Some(leaf) = chain.first() {
                    self.resp.certificate = parser::certificate(leaf, keep);
                }
            }
            (Direction::ToClient, hs::SERVER_KEY_EXCHANGE) => {
                self.server_full = true;
                if let Some(g) = parser::key_exchange_group(msg) {
                    self.resp.curve = Some(g);
                }
            }
            // ServerHelloDone.
            (Direction::ToClient, 14) => self.server_full = true,
            _ => {}
        }
    }

    /// Takes the whole messages out of a direction's handshake buffer.
    fn handshake_bytes(&mut self, data: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) {
        let max = ctx.limits.max_head_bytes.max(1024);
        let d = dir.idx();
        let mut data = data;
        // The tail of an oversized message.
        let skip = self.half[d].hs_skip.min(data.len());
        if skip > 0 {
            self.half[d].hs_skip -= skip;
            data = data.get(skip..).unwrap_or_default();
        }
        let mut buf = std::mem::take(&mut self.half[d].hs);
        buf.extend_from_slice(data);
        let mut at = 0;
        while let Some(h) = buf.get(at..at + 4) {
            let len = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
            let total = 4 + len;
            if let Some(msg) = buf.get(at..at + total) {
                let msg = msg.to_vec();
                self.handshake_message(&msg, dir, true, ctx);
                at += total;
                continue;
            }
            if total > max {
                // Read what the buffer holds (a chain's leaf), skip the rest.
                ctx.errors.bump(Error::Oversized.into());
                let have = buf.len() - at;
                if have >= max.min(total) || have >= 4 + 3 + 3 {
                    if h[0] == hs::CERTIFICATE {
                        let part = buf.get(at..).unwrap_or_default().to_vec();
                        self.handshake_message(&part, dir, false, ctx);
                    }
                    self.half[d].hs_skip = total - have;
                    at = buf.len();
                }
            }
            break;
        }
        buf.drain(..at.min(buf.len()));
        if buf.len() > max {
            ctx.errors.bump(Error::Oversized.into());
            buf.clear();
        }
        self.half[d].hs = buf;
    }

    /// The end of the handshake, as the records so far say.
    fn check_done(&mut self, ctx: &mut ParseCtx<'_>) {
        if self.emitted {
            return;
        }
        let [c, s] = &self.half;
        if !self.tls13 && c.ccs && s.ccs && self.server_seen {
            self.complete(true, ctx);
        }
    }

    fn record(
        &mut self,
        ty: u8,
        payload: &[u8],
        len: usize,
        dir: Direction,
        ctx: &mut ParseCtx<'_>,
    ) {
        let d = dir.idx();
        let wire = (len + parser::RECORD_HEADER) as u64;
        self.last_ts = ctx.ts_ns;
        {
            let h = &mut self.half[d];
            // A direction's Finished (the record after its CCS) is the
            // handshake's even when the other side's CCS ended it first.
            if self.emitted && (h.finished || self.tls13) {
                h.records += 1;
                h.bytes += wire;
            } else {
                h.hs_bytes += wire;
            }
            if h.ccs && ty != content::CHANGE_CIPHER_SPEC {
                h.finished = true;
            }
        }
        match ty {
            content::HANDSHAKE if !self.half[d].encrypted => {
                self.handshake_bytes(payload, dir, ctx)
            }
            // TLS 1.3's middlebox-compatibility CCS changes nothing.
            content::CHANGE_CIPHER_SPEC if !self.tls13 => {
                if dir == Direction::ToClient && !self.server_full && self.server_seen {
                    // An abbreviated handshake: the session was resumed.
                    self.resp.resumed = true;
                }
                let h = &mut self.half[d];
                h.ccs = true;
                h.encrypted = true;
                self.check_done(ctx);
            }
            content::ALERT if !self.half[d].encrypted && payload.len() == 2 => {
                let alert = TlsAlert {
                    level: payload[0],
                    description: payload[1],
                    from_server: dir == Direction::ToClient,
                };
                let fatal = alert.level == 2;
                self.resp.alert = Some(alert);
                if fatal && !self.emitted {
                    self.complete(false, ctx);
                }
            }
            content::ALERT => self.half[d].alerts += 1,
            content::APPLICATION_DATA => {
                if self.emitted {
                    return;
                }
                if self.tls13 && dir == Direction::ToServer && self.server_seen {
                    // The client's Finished, encrypted: the handshake is over.
                    self.half[d].encrypted = true;
                    // That record belongs to the handshake.
                    self.complete(true, ctx);
                } else if !self.client_seen && !self.server_seen {
                    // Picked up after the handshake: nothing to say of it.
                    self.half[d].encrypted = true;
                }
            }
            _ => {}
        }
    }
}

impl Dissector for TlsSession {
    fn parse(&mut self, b: &[u8], dir: Direction, ctx: &mut ParseCtx<'_>) -> ParseResult {
        if b.is_empty() {
            return ParseResult::Incomplete { consumed: 0, needed: 1 };
        }
        if self.broken {
            return ParseResult::Continue { consumed: b.len() };
        }
        let d = dir.idx();
        let left = self.half[d].rec_skip;
        if left > 0 {
            let n = left.min(b.len() as u64);
            self.half[d].rec_skip -= n;
            return ParseResult::Continue { consumed: n as usize };
        }
        let Some((ty, version, len)) = parser::record_header(b) else {
            return ParseResult::Incomplete {
                consumed: 0,
                needed: parser::RECORD_HEADER - b.len(),
            };
        };
        if !parser::record_plausible(ty, version, len) {
            // Not TLS any more (or never was): stop framing this direction.
            set_error(&mut self.error, ItemErrorKind::Dissection, "tls_malformed");
            return ParseResult::Error(Error::Malformed.into());
        }
        let total = parser::RECORD_HEADER + len;
        let read = match ty {
            content::HANDSHAKE | content::ALERT => !self.half[d].encrypted,
            _ => false,
        };
        if !read {
            // Counted, not buffered: skip the payload as it streams by.
            self.record(ty, &[], len, dir, ctx);
            let have = total.min(b.len());
            self.half[d].rec_skip = (total - have) as u64;
            return ParseResult::Continue { consumed: have };
        }
        if b.len() < total {
            return ParseResult::Incomplete { consumed: 0, needed: total - b.len() };
        }
        let payload = b.get(parser::RECORD_HEADER..total).unwrap_or_default();
        self.record(ty, payload, len, dir, ctx);
        ParseResult::Done { consumed: total }
    }

    fn on_gap(&mut self, dir: Direction, len: u32, _ctx: &mut ParseCtx<'_>) {
        let h = &mut self.half[dir.idx()];
        h.hs.clear();
        h.hs_skip = 0;
        h.rec_skip = 0;
        if !self.emitted {
            set_error(&mut self.error, ItemErrorKind::Gap, "handshake data lost");
        }
        // Records can no longer be framed in this direction: the rest is
        // counted as one lump, not parsed.
        h.bytes += u64::from(len);
        self.broken = true;
    }

    fn on_end(&mut self, _dir: Direction, _ctx: &mut ParseCtx<'_>) {}

    fn finish(&mut self, reason: FinishReason, ctx: &mut ParseCtx<'_>) {
        if !self.emitted {
            if !self.client_seen && !self.server_seen {
                return;
            }
            if reason == FinishReason::Timeout && !self.server_seen {
                set_error(
                    &mut self.error,
                    ItemErrorKind::Timeout,
                    "no ServerHello before the flow timed out",
                );
            }
            let ts = self.last_ts;
            ctx.ts_ns = ts;
            self.complete(false, ctx);
            return;
        }
        if !self.resp.established {
            // A handshake that failed has no connection after it.
            return;
        }
        let [c, s] = &self.half;
        let req = TlsRequest {
            connection: true,
            hello: self.req.hello.clone(),
            ja4: self.req.ja4.clone(),
            records: c.records,
            bytes: c.bytes,
            ..TlsRequest::default()
        };
        let resp = TlsResponse {
            connection: true,
            hello: self.resp.hello.clone(),
            records: s.records,
            bytes: s.bytes,
            alerts: s.alerts + c.alerts,
            ..TlsResponse::default()
        };
        ctx.out.push(Exchange {
            request: Some(Message::Tls(Box::new(TlsMessage::Request(req)))),
            response: Some(Message::Tls(Box::new(TlsMessage::Response(resp)))),
            request_ts_ns: self.done_ts,
            response_ts_ns: self.last_ts.max(self.done_ts),
            request_size: c.bytes,
            response_size: s.bytes,
            error: None,
        });
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::message_json;
    use super::*;
    use crate::dissectors::script::{self, Step};
    use crate::dissectors::Limits;
    use serde_json::Value;

    /// A self-signed P-256 certificate (openssl, CN api.example.test, SANs
    /// api.example.test, *.example.test and 10.1.2.3, serial 0x0a1b2c).
    pub const CERT: &[u8] = include_bytes!("testdata/cert.der");

    fn u16s(v: &[u16]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut v = ty.to_be_bytes().to_vec();
        v.extend_from_slice(&(data.len() as u16).to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    fn with_len16(data: &[u8]) -> Vec<u8> {
        let mut v = (data.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(data);
        v
    }

    fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
        let n = body.len();
        let mut v = vec![ty, (n >> 16) as u8, (n >> 8) as u8, n as u8];
        v.extend_from_slice(body);
        v
    }

    pub fn record(ty: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![ty, 3, 3];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    /// A ClientHello: TLS 1.2 legacy version, ciphers 1301 1302 c02f and a
    /// GREASE one; GREASE, SNI `example.com`, ALPN h2 + http/1.1,
    /// supported_versions 1.3/1.2, groups x25519/secp256r1, point formats
    /// [0], signature algorithms 0403 0804 0401.
    pub fn client_hello() -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(0);
        b.extend(with_len16(&u16s(&[0x1301, 0x1302, 0xc02f, 0x0a0a])));
        b.extend_from_slice(&[1, 0]);
        let mut sni = vec![0];
        sni.extend(with_len16(b"example.com"));
        let mut alpn = vec![2];
        alpn.extend_from_slice(b"h2");
        alpn.push(8);
        alpn.extend_from_slice(b"http/1.1");
        let exts = [
            ext(0x0a0a, &[]),
            ext(0x0000, &with_len16(&sni)),
            ext(0x0010, &with_len16(&alpn)),
            ext(0x002b, &[4, 3, 4, 3, 3]),
            ext(0x000a, &with_len16(&u16s(&[0x001d, 0x0017]))),
            ext(0x000b, &[1, 0]),
            ext(0x000d, &with_len16(&u16s(&[0x0403, 0x0804, 0x0401]))),
        ]
        .concat();
        b.extend(with_len16(&exts));
        handshake(1, &b)
    }

    fn server_hello(version: u16, cipher: u16, random: [u8; 32], exts: &[u8]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&random);
        b.push(0);
        b.extend_from_slice(&cipher.to_be_bytes());
        b.push(0);
        let mut e = exts.to_vec();
        if version == 0x0304 {
            e.extend(ext(0x002b, &[3, 4]));
        }
        b.extend(with_len16(&e));
        handshake(2, &b)
    }

    fn certificate(chain: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for c in chain {
            let n = c.len();
            list.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
            list.extend_from_slice(c);
        }
        let n = list.len();
        let mut body = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8];
        body.extend(list);
        handshake(11, &body)
    }

    fn run(steps: &[Step<'_>], limits: &Limits) -> (Vec<Exchange>, u64) {
        let (out, e) = script::run(
            &mut TlsSession::new(),
            steps.iter().map(copy),
            limits,
            0,
            FinishReason::Closed,
        );
        (out, e.total())
    }

    fn copy<'a>(s: &Step<'a>) -> Step<'a> {
        match s {
            Step::C(b) => Step::C(b),
            Step::S(b) => Step::S(b),
            Step::GapC => Step::GapC,
            Step::GapS => Step::GapS,
        }
    }

    fn js(e: &Exchange) -> (Value, Value) {
        let j = |m: &Option<Message>| match m {
            Some(Message::Tls(r)) => message_json(r),
            _ => Value::Null,
        };
        (j(&e.request), j(&e.response))
    }

    #[test]
    fn fingerprints_match_values_computed_by_hand() {
        let ch = parser::client_hello(&client_hello(), 64).unwrap();
        // JA3: 771, ciphers 4865-4866-49199, extensions 0-16-43-10-11-13,
        // groups 29-23, point format 0 (GREASE left out); MD5 by hand.
        let (s, h) = parser::ja3(&ch);
        assert_eq!(s, "771,4865-4866-49199,0-16-43-10-11-13,29-23,0");
        assert_eq!(h, "15afe134ace4a7b3211321dbccda0f39");
        // JA4: TLS 1.3 offered, SNI, 3 ciphers, 6 extensions, ALPN h2;
        // sha256("1301,1302,c02f")[..12], sha256("000a,000b,000d,002b_0403,0804,0401")[..12].
        assert_eq!(parser::ja4(&ch), "t13d0306h2_40b44b994229_0d385148b956");
    }

    #[test]
    fn tls12_handshake_with_certificate_then_the_connection_item() {
        let hello = record(22, &client_hello());
        let mut flight = server_hello(0x0303, 0xc02f, [1; 32], &[]);
        flight.extend(certificate(&[CERT, &[0x30, 0x03, 1, 2, 3]]));
        // ServerKeyExchange: named curve secp256r1.
        flight.extend(handshake(12, &[3, 0, 23, 1, 4]));
        flight.extend(handshake(14, &[]));
        let flight = record(22, &flight);
        let ckx =
            [record(22, &handshake(16, &[1, 2, 3])), record(20, &[1]), record(22, &[0xaa; 40])]
                .concat();
        let sfin = [record(20, &[1]), record(22, &[0xbb; 40])].concat();
        let data = record(23, &[0xcc; 3000]);
        let (out, errors) = run(
            &[
                Step::C(&hello),
                Step::S(&flight),
                Step::C(&ckx),
                Step::S(&sfin),
                Step::C(&data),
                Step::S(&data),
                Step::S(&data),
            ],
            &Limits::default(),
        );
        assert_eq!(errors, 0);
        assert_eq!(out.len(), 2, "{out:#?}");
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["type"].as_str(), q["sni"].as_str(), q["alpn"][1].as_str()),
            (Some("handshake"), Some("example.com"), Some("http/1.1"))
        );
        assert_eq!(q["ciphers"][2], "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        assert_eq!(q["versions"], serde_json::json!(["TLS 1.3", "TLS 1.2"]));
        assert_eq!(
            (
                r["version"].as_str(),
                r["cipherId"].as_str(),
                r["curve"].as_str(),
                r["established"].as_bool()
            ),
            (Some("TLS 1.2"), Some("0xc02f"), Some("secp256r1"), Some(true))
        );
        let cert = &r["certificate"];
        assert_eq!(cert["subject"], "C=FR, O=Skua Test, CN=api.example.test");
        assert_eq!(cert["serial"], "0A:1B:2C");
        assert_eq!(
            cert["san"],
            serde_json::json!(["api.example.test", "*.example.test", "10.1.2.3"])
        );
        assert_eq!(
            cert["fingerprint"],
            "e2:63:ec:da:01:59:6a:77:bb:78:54:6c:7f:6c:3e:39:91:79:78:dc"
        );
        assert_eq!(
            (cert["notBefore"].as_str().map(|s| s.len()), r["chainLength"].as_u64()),
            (Some(20), Some(2))
        );
        assert_eq!(r["resumed"], false);
        assert_eq!(out[0].request_size, (hello.len() + ckx.len()) as u64);
        let (q, r) = js(&out[1]);
        assert_eq!(
            (q["type"].as_str(), q["records"].as_u64(), r["records"].as_u64()),
            (Some("connection"), Some(1), Some(2))
        );
        assert_eq!(
            (out[1].request_size, out[1].response_size),
            (data.len() as u64, 2 * data.len() as u64)
        );
    }

    #[test]
    fn tls13_hello_retry_resumption_and_alerts() {
        let hello = record(22, &client_hello());
        let hrr =
            record(22, &server_hello(0x0304, 0x1302, parser::HRR_RANDOM, &ext(0x0033, &[0, 0x17])));
        let sh = record(
            22,
            &server_hello(
                0x0304,
                0x1302,
                [2; 32],
                &[ext(0x0033, &[0, 0x1d, 0, 2, 9, 9]), ext(0x0029, &[0, 0])].concat(),
            ),
        );
        let enc = record(23, &[0xdd; 200]);
        let (out, _) = run(
            &[
                Step::C(&hello),
                Step::S(&hrr),
                Step::C(&hello),
                Step::S(&sh),
                Step::S(&enc),
                Step::C(&record(20, &[1])),
                Step::C(&enc),
            ],
            &Limits::default(),
        );
        assert_eq!(out.len(), 2, "{out:#?}");
        let (q, r) = js(&out[0]);
        assert_eq!(
            (q["helloRetry"].as_bool(), r["helloRetryRequest"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(
            (
                r["version"].as_str(),
                r["cipher"].as_str(),
                r["curve"].as_str(),
                r["resumed"].as_bool()
            ),
            (Some("TLS 1.3"), Some("TLS_AES_256_GCM_SHA384"), Some("x25519"), Some(true))
        );
        assert!(r["certificate"].is_null());
        // Refused with a fatal alert: one item, not established.
        let alert = record(21, &[2, 40]);
        let (out, _) = run(&[Step::C(&hello), Step::S(&alert)], &Limits::default());
        assert_eq!(out.len(), 1);
        let (_, r) = js(&out[0]);
        assert_eq!(
            (r["established"].as_bool(), r["alert"]["description"].as_str()),
            (Some(false), Some("handshake_failure"))
        );
        // No answer at all.
        let (out, _) = run(&[Step::C(&hello)], &Limits::default());
        assert_eq!(out[0].error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
    }

    #[test]
    fn hellos_split_over_records_and_oversized_chains_are_bounded() {
        let ch = client_hello();
        let split = [record(22, &ch[..10]), record(22, &ch[10..])].concat();
        let mut chain = server_hello(0x0303, 0x009c, [3; 32], &[]);
        // A chain of 200 KiB: its leaf comes first and is read from the prefix.
        let filler = vec![0x30; 200 * 1024];
        chain.extend(certificate(&[CERT, &filler]));
        let records: Vec<Vec<u8>> = chain.chunks(16_384).map(|c| record(22, c)).collect();
        let mut steps = vec![Step::C(&split)];
        steps.extend(records.iter().map(|r| Step::S(r)));
        let (out, errors) = run(&steps, &Limits::default());
        assert!(errors >= 1);
        assert_eq!(out.len(), 1);
        let (q, r) = js(&out[0]);
        assert_eq!(q["sni"], "example.com");
        assert_eq!(r["certificate"]["subject"], "C=FR, O=Skua Test, CN=api.example.test");
        // Not TLS: a record header no version writes.
        let (_, errors) = run(&[Step::C(b"\x16\x09\x09\x00\x10abcdefgh")], &Limits::default());
        assert_eq!(errors, 1);
    }
}
