//! Entry points for the cargo-fuzz targets in `reassembly/fuzz/` (one per
//! dissector and one for the whole reassembler). They live in the crate so
//! that the unit tests below run them on pseudo-random and mutated inputs:
//! the fuzz targets cannot rot unnoticed, and the invariant "no input
//! panics" is checked by every `cargo test`.

use crate::config::{AppProtocol, ReassemblyConfig};
use crate::counters::DissectionErrors;
use crate::dissectors::dns::{parser as dns_parser, DnsSession};
use crate::dissectors::http::HttpSession;
use crate::dissectors::{
    drive, Direction, Dissector, FinishReason, Limits, ParseCtx, Session, StreamBuf,
};
use crate::item::NodeInfo;
use crate::packet::{Fragment, Packet};
use crate::Reassembler;

/// Splits fuzz input into (selector, chunk) records: one length byte each.
fn records(data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (&sel, tail) = rest.split_first()?;
        let (&len, tail) = tail.split_first().unwrap_or((&0, tail));
        let n = usize::from(len).min(tail.len());
        let (chunk, tail) = tail.split_at(n);
        rest = tail;
        Some((sel, chunk))
    })
}

/// HTTP session: records alternate direction by the selector's low bit;
/// bit 1 turns the record into a gap of its length.
pub fn http(data: &[u8]) {
    let limits = Limits { max_body_bytes: 256, max_head_bytes: 4096, ..Limits::default() };
    let mut out = Vec::new();
    let mut errors = DissectionErrors::default();
    let mut s = HttpSession::new();
    let mut bufs = [StreamBuf::default(), StreamBuf::default()];
    for (sel, chunk) in records(data) {
        let dir = if sel & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits: &limits };
        if sel & 2 != 0 {
            bufs[dir.idx()].clear();
            s.on_gap(dir, chunk.len() as u32, &mut ctx);
        } else if sel & 4 != 0 && sel & 8 != 0 {
            s.on_end(dir, &mut ctx);
        } else {
            drive(&mut s, &mut bufs[dir.idx()], dir, chunk, 4096, &mut ctx);
        }
    }
    let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits: &limits };
    s.finish(FinishReason::Timeout, &mut ctx);
    for ex in &out {
        if let Some(crate::item::Message::Http(m)) = &ex.request {
            let _ = crate::dissectors::http::request_json(m);
        }
        if let Some(crate::item::Message::Http(m)) = &ex.response {
            let _ = crate::dissectors::http::response_json(m);
        }
    }
}

/// Drives `s` with records as `http` does (direction by the selector's low
/// bit, bit 1 a gap, bits 2+3 the end of a direction), finishes it, and
/// builds every item's JSON.
fn session<D: Dissector>(mut s: D, data: &[u8], limits: &Limits) {
    let mut out = Vec::new();
    let mut errors = DissectionErrors::default();
    let mut bufs = [StreamBuf::default(), StreamBuf::default()];
    for (sel, chunk) in records(data) {
        let dir = if sel & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        let mut ctx =
            ParseCtx { ts_ns: u64::from(sel), out: &mut out, errors: &mut errors, limits };
        if sel & 2 != 0 {
            bufs[dir.idx()].clear();
            s.on_gap(dir, chunk.len() as u32, &mut ctx);
        } else if sel & 4 != 0 && sel & 8 != 0 {
            s.on_end(dir, &mut ctx);
        } else {
            drive(&mut s, &mut bufs[dir.idx()], dir, chunk, 4096, &mut ctx);
        }
    }
    let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits };
    s.finish(
        if data.len().is_multiple_of(2) { FinishReason::Timeout } else { FinishReason::Closed },
        &mut ctx,
    );
    for ex in &out {
        for m in [&ex.request, &ex.response].into_iter().flatten() {
            let _ = m.request_json();
            let _ = m.response_json();
        }
    }
}

/// Small limits, so that fuzzing reaches them.
fn small_limits() -> Limits {
    Limits {
        max_body_bytes: 64,
        max_head_bytes: 4096,
        max_field_bytes: 32,
        max_redis_values: 8,
        max_resp_depth: 4,
        max_kafka_topics: 4,
        max_pg_statements: 4,
        max_http2_streams: 4,
        max_hpack_table_bytes: 256,
        max_amqp_channels: 4,
        max_mysql_statements: 4,
        max_bson_depth: 4,
        max_bson_elements: 16,
        max_decompressed_bytes: 4096,
        max_websocket_fragments: 8,
        max_pending: 8,
        ..Limits::default()
    }
}

/// HTTP/2 and gRPC: the input as an HPACK block (fresh and mid-stream
/// decoders), as a probe, then as records through a session.
pub fn http2(data: &[u8]) {
    use crate::dissectors::http2::{hpack, parser};
    for known in [true, false] {
        let mut d = hpack::Decoder::new(128, known);
        let _ = d.decode(data, 16, 512);
        let _ = d.decode(data, 16, 512);
    }
    let _ = parser::probe(data);
    let mut g = parser::GrpcFramer::default();
    g.feed(data);
    session(crate::dissectors::http2::Http2Session::new(), data, &small_limits());
}

/// Redis: the input as RESP values, as a probe, then as records.
pub fn redis(data: &[u8]) {
    use crate::dissectors::redis::parser;
    let lim = parser::RespLimits { max_field_bytes: 16, max_values: 8, max_depth: 4 };
    let mut r = parser::RespReader::default();
    let mut rest = data;
    while let parser::Step::Value { consumed, value, .. } = r.feed(rest, &lim) {
        let _ = crate::dissectors::redis::value_json(&value);
        rest = rest.get(consumed.max(1)..).unwrap_or_default();
    }
    let _ = parser::split_inline(data);
    let _ = parser::probe(data);
    session(crate::dissectors::redis::RedisSession::new(), data, &small_limits());
}

/// Kafka: the input as a request and as a response of every API key in
/// a few versions, as a probe, then as records.
pub fn kafka(data: &[u8]) {
    use crate::dissectors::kafka::parser;
    if let Some(h) = parser::request_header(data, 16) {
        let _ = parser::request_topics(data, &h, 4, 16);
    }
    for key in [0i16, 1, 3, 10, 11, 18, 36] {
        for version in [0i16, 2, 5, 9, 12, 13, 15] {
            let _ = parser::response_body(data, key, version, 4, 16);
        }
    }
    let _ = parser::probe(data);
    session(crate::dissectors::kafka::KafkaSession::new(), data, &small_limits());
}

/// PostgreSQL: the input's pure readers, then records through a session.
pub fn postgresql(data: &[u8]) {
    use crate::dissectors::postgresql::parser;
    let _ = parser::startup_header(data);
    let _ = parser::startup_params(data);
    let _ = parser::error_fields(data, 16);
    let _ = parser::tag_rows(data);
    let _ = parser::sasl_initial(data);
    let _ = parser::probe(data, true);
    session(crate::dissectors::postgresql::PgSession::new(), data, &small_limits());
}

/// AMQP: the input as the arguments of every method and as a content
/// header, as a probe, then as records.
pub fn amqp(data: &[u8]) {
    use crate::dissectors::amqp::parser;
    for class in [10u16, 20, 40, 50, 60, 85, 90] {
        for method in [10u16, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 70, 71, 72, 80, 120] {
            if let Some((_, spec)) = parser::method(class, method) {
                let _ = parser::arguments(data, spec, 16);
            }
        }
    }
    let _ = parser::content_header(data, 16);
    let _ = parser::probe(data);
    session(crate::dissectors::amqp::AmqpSession::new(), data, &small_limits());
}

/// MySQL: the input's pure readers (greeting, login, OK/ERR, query
/// attributes, the probe), then records through a session (compressed
/// frames included once a login agrees on them).
pub fn mysql(data: &[u8]) {
    use crate::dissectors::mysql::parser;
    let _ = parser::greeting(data);
    let _ = parser::login(data, 16);
    let _ = parser::change_user(data, u64::MAX, 16);
    let _ = parser::ok(data, parser::cap::PROTOCOL_41 | parser::cap::SESSION_TRACK, 16);
    let _ = parser::err(data, 16);
    let _ = parser::query(data, Some(true), 16);
    let _ = parser::probe(data, true);
    let _ = parser::probe(data, false);
    session(crate::dissectors::mysql::MysqlSession::new(), data, &small_limits());
}

/// MongoDB: the input as BSON (deep and wide documents bounded), as a
/// probe, then records through a session.
pub fn mongodb(data: &[u8]) {
    use crate::dissectors::mongodb::parser;
    if let Some((d, _)) = parser::document(data, 0) {
        let _ = parser::to_json(d, &parser::Bounds { depth: 4, elements: 16, field_bytes: 16 });
    }
    let _ = parser::probe(data, true);
    let _ = parser::probe(data, false);
    session(crate::dissectors::mongodb::MongoSession::new(), data, &small_limits());
}

/// TLS: the input as hellos, a certificate and a certificate chain, their
/// fingerprints, as a probe, then records through a session.
pub fn tls(data: &[u8]) {
    use crate::dissectors::tls::parser;
    if let Some(c) = parser::client_hello(data, 16) {
        let _ = parser::ja3(&c);
        let _ = parser::ja4(&c);
    }
    if let Some(s) = parser::server_hello(data, 16) {
        let _ = parser::ja3s(&s);
    }
    let _ = parser::certificate(data, 16);
    let _ = parser::certificate_chain(data);
    let _ = parser::key_exchange_group(data);
    let _ = parser::probe(data, true);
    session(crate::dissectors::tls::TlsSession::new(), data, &small_limits());
}

/// WebSocket: the input as a frame header, a close payload and a probe,
/// then records through a session that saw a permessage-deflate upgrade
/// (so compressed frames are inflated).
pub fn websocket(data: &[u8]) {
    use crate::dissectors::websocket::{parser, WsHandshake, WsSession};
    let _ = parser::frame_head(data);
    let _ = parser::close_payload(data);
    let _ = parser::probe(data, true);
    let _ = parser::probe(data, false);
    let hs = WsHandshake {
        server_extensions: Some("permessage-deflate".into()),
        ..WsHandshake::default()
    };
    session(Box::new(WsSession::new(Some(hs))), data, &small_limits());
}

/// Records (the `session` format) of a generated conversation: seeds for
/// the fuzz corpus and for the tests below.
pub fn conversation_records(protocol: AppProtocol, seed: u64) -> Vec<u8> {
    let c = crate::conversations::generate(protocol, seed, 3, 2);
    // A WebSocket target's session starts after the HTTP upgrade.
    let skip = if protocol == AppProtocol::Websocket { 2 } else { 0 };
    let mut v = Vec::new();
    for m in c.msgs.iter().skip(skip) {
        for part in m.data.chunks(255) {
            v.push(u8::from(!m.from_client));
            v.push(part.len() as u8);
            v.extend_from_slice(part);
        }
    }
    v
}

/// Any protocol's session picked by probing the first record, as the
/// reassembler would.
pub fn any_session(data: &[u8]) {
    let first = records(data).next().map(|(_, c)| c).unwrap_or_default();
    for p in AppProtocol::ALL {
        if Session::probe(p, first, Direction::ToServer) >= crate::dissectors::Confidence::Medium {
            let _ = Session::new(p, true);
        }
    }
}

/// DNS: the whole input as one message, then as UDP datagrams and as a TCP
/// stream through sessions.
pub fn dns(data: &[u8]) {
    if let Ok((m, _)) = dns_parser::parse_message(data) {
        let _ = crate::dissectors::dns::request_json(&m);
        let _ = crate::dissectors::dns::response_json(&m);
    }
    let _ = dns_parser::probe(data, true);
    let limits = Limits { max_pending_dns: 4, ..Limits::default() };
    let mut out = Vec::new();
    let mut errors = DissectionErrors::default();
    let mut udp = DnsSession::new(false);
    let mut tcp = DnsSession::new(true);
    let mut bufs = [StreamBuf::default(), StreamBuf::default()];
    for (sel, chunk) in records(data) {
        let dir = if sel & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
        let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits: &limits };
        let _ = udp.parse(chunk, dir, &mut ctx);
        if sel & 2 != 0 {
            tcp.on_gap(dir, 1, &mut ctx);
        } else {
            drive(&mut tcp, &mut bufs[dir.idx()], dir, chunk, 1 << 16, &mut ctx);
        }
    }
    let mut ctx = ParseCtx { ts_ns: 0, out: &mut out, errors: &mut errors, limits: &limits };
    udp.finish(FinishReason::Timeout, &mut ctx);
    tcp.finish(FinishReason::Closed, &mut ctx);
}

/// The reassembler: each record is a packet of one of a few flows, with
/// flags, sequence offset and protocol taken from the selector and chunk.
pub fn reassembler(data: &[u8]) {
    let cfg = ReassemblyConfig {
        max_flows: 4,
        max_ooo_bytes_per_flow: 512,
        max_ooo_bytes_per_core: 2048,
        max_message_buffer_bytes: 1024,
        max_fragment_datagrams: 2,
        max_fragment_bytes: 4096,
        ..ReassemblyConfig::default()
    };
    let mut r = Reassembler::new(&cfg, 1);
    let mut items = Vec::new();
    let mut ts = 0u64;
    let mut seqs = [[1000u32; 2]; 4];
    for (sel, chunk) in records(data) {
        ts += u64::from(sel) * 50_000_000;
        let flow = usize::from(sel >> 6);
        let from_a = sel & 1 == 0;
        let (head, payload) = chunk.split_at(chunk.len().min(2));
        let flags = head.first().copied().unwrap_or(0x18);
        let jitter = head.get(1).copied().unwrap_or(0);
        let side = usize::from(!from_a);
        let seq = seqs[flow][side].wrapping_add(u32::from(jitter)).wrapping_sub(64);
        seqs[flow][side] = seqs[flow][side].wrapping_add(payload.len() as u32);
        let (a, b) = ([10, 0, 0, flow as u8], [10, 0, 1, 1]);
        let ports = (40000 + flow as u16, if sel & 2 == 0 { 80 } else { 53 });
        let mut p = if sel & 4 == 0 {
            Packet::tcp_v4(ts, a, ports.0, b, ports.1, flags, seq, seqs[flow][1 - side], payload)
        } else {
            Packet::udp_v4(ts, a, ports.0, b, ports.1, payload)
        };
        if !from_a {
            std::mem::swap(&mut p.src_ip, &mut p.dst_ip);
            std::mem::swap(&mut p.src_port, &mut p.dst_port);
        }
        if sel & 0x38 == 0x38 {
            p.fragment = Some(Fragment {
                ident: u32::from(jitter & 3),
                offset: u16::from(flags & 0x0f) * 8,
                more: flags & 0x10 != 0,
            });
        }
        r.packet(&p, &mut |i| items.push(i));
        if sel == 0xff {
            r.advance(ts + 400_000_000_000, &mut |i| items.push(i));
        }
    }
    r.finish(&mut |i| items.push(i));
    let node = NodeInfo::default();
    for i in &items {
        let _ = i.to_json(&node);
    }
    assert_eq!(r.ooo_memory(), 0, "all out-of-order memory returned");
    assert!(r.flows() == 0);
}

/// Items of a few protocols (HTTP request/response, a Redis command) made
/// by the real reassembler, for the KFL target to evaluate filters on.
fn kfl_items() -> &'static [crate::Item] {
    use crate::packet::tcp_flags::{ACK, FIN, PSH, SYN};
    static ITEMS: std::sync::LazyLock<Vec<crate::Item>> = std::sync::LazyLock::new(|| {
        let mut items = Vec::new();
        let flows: [(u16, &[u8], &[u8]); 2] = [
            (
                8080,
                b"POST /graphql?x=1 HTTP/1.1\r\nHost: a\r\nCookie: s=1\r\nContent-Length: 2\r\n\r\n{}",
                b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nSet-Cookie: t=2\r\n\r\n",
            ),
            (6379, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"$1\r\nv\r\n"),
        ];
        for (port, req, resp) in flows {
            let mut r = Reassembler::new(&ReassemblyConfig::default(), 0);
            let (c, s) = ([10, 0, 0, 1], [10, 0, 0, 2]);
            let (cs, ss) = (100u32, 900u32);
            let n = |b: &[u8]| b.len() as u32;
            let pkts = [
                Packet::tcp_v4(1_000, c, 40_000, s, port, SYN, cs, 0, b""),
                Packet::tcp_v4(2_000, s, port, c, 40_000, SYN | ACK, ss, cs + 1, b""),
                Packet::tcp_v4(3_000, c, 40_000, s, port, ACK, cs + 1, ss + 1, b""),
                Packet::tcp_v4(4_000, c, 40_000, s, port, ACK | PSH, cs + 1, ss + 1, req),
                Packet::tcp_v4(9_000, s, port, c, 40_000, ACK | PSH, ss + 1, cs + 1 + n(req), resp),
                Packet::tcp_v4(
                    10_000,
                    c,
                    40_000,
                    s,
                    port,
                    FIN | ACK,
                    cs + 1 + n(req),
                    ss + 1 + n(resp),
                    b"",
                ),
            ];
            for p in &pkts {
                r.packet(p, &mut |i| items.push(i));
            }
            r.finish(&mut |i| items.push(i));
        }
        items
    });
    &ITEMS
}

/// KFL: the input is a query (any bytes); when it compiles, it is
/// evaluated on a few items. Neither may panic.
pub fn kfl(data: &[u8]) {
    if let Ok(f) = crate::kfl::Filter::compile_bytes(data) {
        let node = NodeInfo::default();
        for item in kfl_items() {
            let _ = f.matches(item, &node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfl_target_has_items_and_survives_mutated_queries() {
        assert_eq!(kfl_items().len(), 2);
        let f = crate::kfl::Filter::compile("http && status_code == 500 && gql").unwrap();
        assert!(f.matches(&kfl_items()[0], &NodeInfo::default()));
        let mut rng = XorShift(7);
        let seeds: [&[u8]; 3] = [
            b"http && request.headers[\"host\"] == \"a\" || redis_key.matches(\"k+\")",
            b"http and response.status == r\"5.*\" and request.queryString.x == 1",
            b"[1, 2].exists(x, x in [status_code]) ? timestamp < now() : false",
        ];
        for _ in 0..300 {
            for s in seeds {
                kfl(&mutate(&mut rng, s));
            }
        }
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    /// Mutates a valid seed: byte flips, truncation, duplication of a slice.
    fn mutate(rng: &mut XorShift, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..(rng.next() % 6) {
            if v.is_empty() {
                break;
            }
            let i = (rng.next() as usize) % v.len();
            match rng.next() % 4 {
                0 => v[i] = rng.next() as u8,
                1 => v.truncate(i),
                2 => {
                    let j = (i + (rng.next() as usize % 32)).min(v.len());
                    let dup = v[i..j].to_vec();
                    v.splice(i..i, dup);
                }
                _ => v.insert(i, rng.next() as u8),
            }
        }
        v
    }

    fn http_seed() -> Vec<u8> {
        let msgs: [&[u8]; 4] = [
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"5\r\nhello\r\n0\r\nT: 1\r\n\r\n",
            b"fffffffffffffffff\r\nGET / HTTP/1.0\r\n\r\n",
        ];
        let mut v = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            for part in m.chunks(255) {
                v.push((i % 2) as u8);
                v.push(part.len() as u8);
                v.extend_from_slice(part);
            }
        }
        v
    }

    #[test]
    fn fuzz_entry_points_survive_random_and_mutated_inputs() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let http_seed = http_seed();
        let dns_seed = crate::dissectors::dns::parser::tests::response(
            1,
            "a.example",
            16,
            &[(16, b"\x03abc".to_vec()), (6, vec![0xc0, 12])],
        );
        for _ in 0..2_000 {
            let n = (rng.next() % 300) as usize;
            let random = rng.bytes(n);
            http(&random);
            dns(&random);
            reassembler(&random);
            http(&mutate(&mut rng, &http_seed));
            dns(&mutate(&mut rng, &dns_seed));
            reassembler(&mutate(&mut rng, &http_seed));
        }
    }

    /// Writes the seed corpus of the new targets (`fuzz/seeds/<target>/`,
    /// generated conversations): `cargo test -p reassembly -- --ignored
    /// write_fuzz_seeds`.
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
        for (p, name) in [
            (AppProtocol::Http2, "http2"),
            (AppProtocol::Redis, "redis"),
            (AppProtocol::Kafka, "kafka"),
            (AppProtocol::Postgresql, "postgresql"),
            (AppProtocol::Amqp, "amqp"),
            (AppProtocol::Mysql, "mysql"),
            (AppProtocol::Mongodb, "mongodb"),
            (AppProtocol::Tls, "tls"),
            (AppProtocol::Websocket, "websocket"),
        ] {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).expect("seed dir");
            for seed in 0..4 {
                std::fs::write(
                    dir.join(format!("conversation-{seed}")),
                    conversation_records(p, seed),
                )
                .expect("seed file");
            }
        }
    }

    #[test]
    fn new_protocol_fuzz_entry_points_survive_random_and_mutated_inputs() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        type Target = (AppProtocol, fn(&[u8]));
        let targets: [Target; 9] = [
            (AppProtocol::Http2, http2),
            (AppProtocol::Redis, redis),
            (AppProtocol::Kafka, kafka),
            (AppProtocol::Postgresql, postgresql),
            (AppProtocol::Amqp, amqp),
            (AppProtocol::Mysql, mysql),
            (AppProtocol::Mongodb, mongodb),
            (AppProtocol::Tls, tls),
            (AppProtocol::Websocket, websocket),
        ];
        for (p, target) in targets {
            let seeds: Vec<Vec<u8>> = (0..4).map(|s| conversation_records(p, s)).collect();
            for seed in &seeds {
                // The unmutated seed: a whole conversation, every item.
                target(seed);
                any_session(seed);
            }
            for i in 0..1_500 {
                let n = (rng.next() % 300) as usize;
                target(&rng.bytes(n));
                target(&mutate(&mut rng, &seeds[i % seeds.len()]));
            }
        }
    }
}
