//! Generated conversations, one generator per TCP protocol, for the
//! packetisation property tests, the benchmark and fuzz seeds. Each is a
//! list of messages in wire order with the client bytes a server message
//! answers, so a test may cut and reorder segments the way a real wire
//! can (a reply never leaves before its request), and the number of items
//! the conversation must yield.
//!
//! The conversations exercise what each dissector must get right beyond a
//! single exchange: pipelining (several requests before any response),
//! interleaving (HTTP/2 streams and AMQP channels whose frames alternate),
//! messages larger than a segment, dynamic state (HPACK's table, Redis'
//! `CLIENT REPLY`, PostgreSQL's named statements).

use crate::config::AppProtocol;

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub from_client: bool,
    pub data: Vec<u8>,
    /// Bytes of the other direction (from the start of its stream) that
    /// must be on the wire before this message: what it answers, or what
    /// a client waited for before sending it.
    pub after: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conversation {
    pub server_port: u16,
    pub msgs: Vec<Msg>,
    /// Items the conversation yields.
    pub items: usize,
}

impl Conversation {
    /// A client message sent before the last server message arrived (a
    /// pipelining client does not wait for every reply).
    fn client(&mut self, data: Vec<u8>) {
        let last = self.msgs.iter().rposition(|m| !m.from_client);
        let after = self
            .msgs
            .iter()
            .take(last.unwrap_or(0))
            .filter(|m| !m.from_client)
            .map(|m| m.data.len())
            .sum();
        self.msgs.push(Msg { from_client: true, data, after });
    }

    /// A client message sent after everything the server sent so far (a
    /// handshake step).
    fn client_strict(&mut self, data: Vec<u8>) {
        let after = self.server_bytes();
        self.msgs.push(Msg { from_client: true, data, after });
    }

    /// A server message answering everything the client sent so far.
    fn server(&mut self, data: Vec<u8>) {
        let after = self.client_bytes();
        self.msgs.push(Msg { from_client: false, data, after });
    }

    pub fn server_bytes(&self) -> usize {
        self.msgs.iter().filter(|m| !m.from_client).map(|m| m.data.len()).sum()
    }

    pub fn client_bytes(&self) -> usize {
        self.msgs.iter().filter(|m| m.from_client).map(|m| m.data.len()).sum()
    }

    pub fn bytes(&self) -> usize {
        self.msgs.iter().map(|m| m.data.len()).sum()
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// `lo` plus up to `hi - 1` random letters.
    fn rbytes(&mut self, lo: usize, hi: u64) -> Vec<u8> {
        let n = lo + self.below(hi) as usize;
        self.bytes(n)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| b'a' + self.below(26) as u8).collect()
    }
}

/// A generated conversation of `protocol` with about `exchanges`
/// request/response exchanges (pipelined in batches of up to `depth`).
pub fn generate(protocol: AppProtocol, seed: u64, exchanges: usize, depth: usize) -> Conversation {
    let mut rng = Rng::new(seed);
    let depth = depth.max(1);
    match protocol {
        AppProtocol::Http2 | AppProtocol::Grpc => http2(&mut rng, exchanges, depth),
        AppProtocol::Redis => redis(&mut rng, exchanges, depth),
        AppProtocol::Kafka => kafka(&mut rng, exchanges, depth),
        AppProtocol::Postgresql => postgresql(&mut rng, exchanges, depth),
        AppProtocol::Amqp => amqp(&mut rng, exchanges, depth),
        AppProtocol::Mysql => mysql(&mut rng, exchanges),
        AppProtocol::Mongodb => mongodb(&mut rng, exchanges, depth),
        AppProtocol::Tls => tls(&mut rng, exchanges),
        AppProtocol::Websocket => websocket(&mut rng, exchanges),
        _ => Conversation::default(),
    }
}

// ---- HTTP/2 and gRPC ----------------------------------------------------

fn h2_frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut v = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An HPACK literal: `prefix` is 0x40 (indexed) or 0x00 (not indexed);
/// `index` the name's table index (0: literal name).
fn hpack_literal(prefix: u8, index: u8, name: &str, value: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let max = if prefix == 0x40 { 63 } else { 15 };
    if index < max {
        v.push(prefix | index);
    } else {
        v.push(prefix | max);
        v.push(index - max);
    }
    if index == 0 {
        v.push(name.len() as u8);
        v.extend_from_slice(name.as_bytes());
    }
    // Values up to 126 bytes keep a one-byte length.
    v.push(value.len().min(126) as u8);
    v.extend_from_slice(value.get(..126.min(value.len())).unwrap_or_default());
    v
}

fn grpc_msg(rng: &mut Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&(n as u32).to_be_bytes());
    v.extend(rng.bytes(n));
    v
}

fn http2(rng: &mut Rng, exchanges: usize, depth: usize) -> Conversation {
    let mut c = Conversation { server_port: 8443, ..Conversation::default() };
    let settings = h2_frame(4, 0, 0, &[0, 3, 0, 0, 0, 100, 0, 4, 0, 1, 0, 0]);
    c.client([b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), settings.clone()].concat());
    c.server([settings, h2_frame(4, 1, 0, &[])].concat());
    c.client_strict(h2_frame(4, 1, 0, &[]));
    let mut next_id = 1u32;
    let mut first_req = true;
    let mut first_resp = true;
    let mut done = 0;
    while done < exchanges {
        let batch = (exchanges - done).min(1 + rng.below(depth as u64) as usize);
        // Requests: every HEADERS of the batch, then DATA round-robin.
        let mut streams = Vec::new();
        let mut heads = Vec::new();
        let mut bodies: Vec<(u32, Vec<Vec<u8>>)> = Vec::new();
        for _ in 0..batch {
            let id = next_id;
            next_id += 2;
            let kind = rng.below(3); // 0 GET, 1 POST, 2 gRPC
            let mut blk = vec![if kind == 0 { 0x82 } else { 0x83 }, 0x86];
            if first_req {
                // Inserted once, referred to by index afterwards: 63 is
                // :authority, 62 user-agent.
                blk.extend(hpack_literal(0x40, 1, "", b"api.example:8443"));
                blk.extend(hpack_literal(0x40, 58, "", b"skua-gen/1.0"));
                first_req = false;
            } else {
                blk.extend_from_slice(&[0xbf, 0xbe]);
            }
            let path = if kind == 2 {
                format!("/gen.Svc/Call{}", rng.below(4))
            } else {
                format!("/v1/items/{}?q={}", rng.below(1000), rng.below(9))
            };
            blk.extend(hpack_literal(0x00, 4, "", path.as_bytes()));
            blk.extend(hpack_literal(0x00, 0, "x-request-id", format!("{id:08x}").as_bytes()));
            let frames: Vec<Vec<u8>> = match kind {
                0 => Vec::new(),
                1 => {
                    let body = rng.rbytes(1, 3000);
                    let cut = body.len() / 2;
                    vec![body[..cut].to_vec(), body[cut..].to_vec()]
                }
                _ => {
                    blk.extend(hpack_literal(0x00, 31, "", b"application/grpc"));
                    blk.extend(hpack_literal(0x00, 0, "te", b"trailers"));
                    // One message, or a client stream of several.
                    (0..1 + rng.below(3))
                        .map(|_| {
                            let n = 1 + rng.below(600) as usize;
                            grpc_msg(rng, n)
                        })
                        .collect()
                }
            };
            let end = if frames.is_empty() { 1 } else { 0 };
            heads.push(h2_frame(1, 4 | end, id, &blk));
            streams.push((id, kind));
            bodies.push((id, frames));
        }
        let mut wire = heads.concat();
        let most = bodies.iter().map(|(_, f)| f.len()).max().unwrap_or(0);
        for k in 0..most {
            for (id, frames) in &bodies {
                if let Some(f) = frames.get(k) {
                    let end = if k + 1 == frames.len() { 1 } else { 0 };
                    wire.extend(h2_frame(0, end, *id, f));
                }
            }
        }
        c.client(wire);
        // Responses in reverse order, DATA interleaved across streams.
        let mut heads = Vec::new();
        let mut bodies: Vec<(u32, u64, Vec<Vec<u8>>)> = Vec::new();
        for (id, kind) in streams.iter().rev() {
            let mut blk = vec![if rng.below(5) == 0 { 0x8d } else { 0x88 }];
            if first_resp {
                blk.extend(hpack_literal(0x40, 54, "", b"skua-gen-server"));
                first_resp = false;
            } else {
                blk.push(0xbe);
            }
            let frames: Vec<Vec<u8>> = if *kind == 2 {
                blk.extend(hpack_literal(0x00, 31, "", b"application/grpc"));
                (0..1 + rng.below(3))
                    .map(|_| {
                        let n = rng.below(800) as usize;
                        grpc_msg(rng, n)
                    })
                    .collect()
            } else {
                blk.extend(hpack_literal(0x00, 31, "", b"application/json"));
                let body = rng.rbytes(0, 5000);
                body.chunks(1200).map(<[u8]>::to_vec).collect()
            };
            heads.push(h2_frame(1, if frames.is_empty() && *kind != 2 { 5 } else { 4 }, *id, &blk));
            bodies.push((*id, *kind, frames));
        }
        let mut wire = heads.concat();
        let most = bodies.iter().map(|(_, _, f)| f.len()).max().unwrap_or(0);
        for k in 0..=most {
            for (id, kind, frames) in &bodies {
                if let Some(f) = frames.get(k) {
                    let end = if k + 1 == frames.len() && *kind != 2 { 1 } else { 0 };
                    wire.extend(h2_frame(0, end, *id, f));
                } else if k == frames.len() && *kind == 2 {
                    let status = rng.below(3).to_string();
                    let t = [
                        hpack_literal(0x00, 0, "grpc-status", status.as_bytes()),
                        hpack_literal(0x00, 0, "grpc-message", b""),
                    ]
                    .concat();
                    wire.extend(h2_frame(1, 5, *id, &t));
                }
            }
        }
        c.server(wire);
        c.items += batch;
        done += batch;
    }
    c
}

// ---- Redis ------------------------------------------------------------

fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend(format!("${}\r\n", a.len()).into_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn resp_bulk(b: &[u8]) -> Vec<u8> {
    [format!("${}\r\n", b.len()).into_bytes(), b.to_vec(), b"\r\n".to_vec()].concat()
}

fn redis(rng: &mut Rng, exchanges: usize, depth: usize) -> Conversation {
    let mut c = Conversation { server_port: 6379, ..Conversation::default() };
    let mut done = 0;
    let mut round = 0u64;
    while done < exchanges {
        let batch = (exchanges - done).min(1 + rng.below(depth as u64) as usize);
        let (mut q, mut r) = (Vec::new(), Vec::new());
        for _ in 0..batch {
            let key = format!("key:{}", rng.below(100));
            match rng.below(6) {
                0 => {
                    let v = rng.rbytes(0, 3000);
                    q.extend(resp_command(&[b"SET", key.as_bytes(), &v]));
                    r.extend_from_slice(b"+OK\r\n");
                }
                1 => {
                    q.extend(resp_command(&[b"GET", key.as_bytes()]));
                    r.extend(if rng.below(4) == 0 {
                        b"$-1\r\n".to_vec()
                    } else {
                        resp_bulk(&rng.rbytes(0, 2500))
                    });
                }
                2 => {
                    q.extend(resp_command(&[b"INCR", key.as_bytes()]));
                    r.extend(format!(":{}\r\n", rng.below(1 << 40)).into_bytes());
                }
                3 => {
                    q.extend(resp_command(&[b"LRANGE", key.as_bytes(), b"0", b"-1"]));
                    let n = rng.below(5);
                    r.extend(format!("*{n}\r\n").into_bytes());
                    for _ in 0..n {
                        r.extend(resp_bulk(&rng.rbytes(0, 40)));
                    }
                }
                4 => {
                    q.extend_from_slice(b"PING\r\n");
                    r.extend_from_slice(b"+PONG\r\n");
                }
                _ => {
                    q.extend(resp_command(&[b"NOSUCH", key.as_bytes()]));
                    r.extend_from_slice(b"-ERR unknown command 'NOSUCH'\r\n");
                }
            }
        }
        c.client(q);
        c.server(r);
        c.items += batch;
        done += batch;
        round += 1;
        if round.is_multiple_of(4) {
            // Commands the server does not answer.
            c.client(
                [
                    resp_command(&[b"CLIENT", b"REPLY", b"OFF"]),
                    resp_command(&[b"SET", b"quiet", b"1"]),
                    resp_command(&[b"CLIENT", b"REPLY", b"ON"]),
                ]
                .concat(),
            );
            c.server(b"+OK\r\n".to_vec());
            c.items += 3;
        }
    }
    // Pub/sub: a subscription, then pushes nobody asked for.
    c.client(resp_command(&[b"SUBSCRIBE", b"news"]));
    c.server(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n".to_vec());
    c.items += 1;
    for _ in 0..1 + rng.below(3) {
        let m = rng.rbytes(0, 200);
        c.server([b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n".to_vec(), resp_bulk(&m)].concat());
        c.items += 1;
    }
    c
}

// ---- Kafka ------------------------------------------------------------

fn kafka_request(key: i16, version: i16, corr: i32, body: &[u8]) -> Vec<u8> {
    let flexible = crate::dissectors::kafka::parser::flexible(key, version);
    let mut v = key.to_be_bytes().to_vec();
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(&corr.to_be_bytes());
    v.extend_from_slice(&9i16.to_be_bytes());
    v.extend_from_slice(b"skua-test");
    if flexible {
        v.push(0);
    }
    v.extend_from_slice(body);
    [(v.len() as u32).to_be_bytes().to_vec(), v].concat()
}

fn kafka_response(corr: i32, tags: bool, body: &[u8]) -> Vec<u8> {
    let mut v = corr.to_be_bytes().to_vec();
    if tags {
        v.push(0);
    }
    v.extend_from_slice(body);
    [(v.len() as u32).to_be_bytes().to_vec(), v].concat()
}

fn kafka(rng: &mut Rng, exchanges: usize, depth: usize) -> Conversation {
    let mut c = Conversation { server_port: 9092, ..Conversation::default() };
    let mut corr = 1i32;
    c.client(kafka_request(18, 3, corr, b"\x05skua\x041.0\0"));
    c.server(kafka_response(corr, false, &[&[0, 0, 1][..], &[0, 0, 0, 0, 0]].concat()));
    c.items += 1;
    let mut done = 0;
    while done < exchanges {
        let batch = (exchanges - done).min(1 + rng.below(depth as u64) as usize);
        let (mut q, mut r) = (Vec::new(), Vec::new());
        let mut answered = 0;
        for _ in 0..batch {
            corr += 1;
            let topic = format!("topic-{}", rng.below(5));
            let partition = rng.below(4) as i32;
            match rng.below(3) {
                0 | 1 => {
                    // Produce v2 with a record batch of random size.
                    let acks: i16 = if rng.below(5) == 0 { 0 } else { 1 };
                    let records = rng.rbytes(0, 4000);
                    let mut b = acks.to_be_bytes().to_vec();
                    b.extend_from_slice(&1000i32.to_be_bytes());
                    b.extend_from_slice(&1i32.to_be_bytes());
                    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
                    b.extend_from_slice(topic.as_bytes());
                    b.extend_from_slice(&1i32.to_be_bytes());
                    b.extend_from_slice(&partition.to_be_bytes());
                    b.extend_from_slice(&(records.len() as i32).to_be_bytes());
                    b.extend(records);
                    q.extend(kafka_request(0, 2, corr, &b));
                    if acks != 0 {
                        let mut rb = 1i32.to_be_bytes().to_vec();
                        rb.extend_from_slice(&(topic.len() as i16).to_be_bytes());
                        rb.extend_from_slice(topic.as_bytes());
                        rb.extend_from_slice(&1i32.to_be_bytes());
                        rb.extend_from_slice(&partition.to_be_bytes());
                        rb.extend_from_slice(
                            &(if rng.below(6) == 0 { 6i16 } else { 0 }).to_be_bytes(),
                        );
                        rb.extend_from_slice(&[0; 16]);
                        rb.extend_from_slice(&0i32.to_be_bytes());
                        r.extend(kafka_response(corr, false, &rb));
                        answered += 1;
                    }
                }
                _ => {
                    // Fetch v12 (flexible) and a response carrying records.
                    let mut b = vec![
                        0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0xf4, 0, 0, 0, 1, 3, 0x20, 0, 0, 0, 0, 0,
                        0, 1, 0, 0, 0, 1,
                    ];
                    b.push(2);
                    b.push(topic.len() as u8 + 1);
                    b.extend_from_slice(topic.as_bytes());
                    b.push(2);
                    b.extend_from_slice(&partition.to_be_bytes());
                    b.extend_from_slice(&[0; 4]);
                    b.extend_from_slice(&[0; 8]);
                    b.extend_from_slice(&[0xff; 4]);
                    b.extend_from_slice(&[0xff; 8]);
                    b.extend_from_slice(&[0, 0x10, 0, 0, 0, 0, 1, 1, 0]);
                    q.extend(kafka_request(1, 12, corr, &b));
                    let records = rng.rbytes(0, 6000);
                    let mut rb = vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2];
                    rb.push(topic.len() as u8 + 1);
                    rb.extend_from_slice(topic.as_bytes());
                    rb.push(2);
                    rb.extend_from_slice(&partition.to_be_bytes());
                    rb.extend_from_slice(&[0, 0]);
                    rb.extend_from_slice(&[0; 24]);
                    rb.push(1); // no aborted transactions
                    rb.extend_from_slice(&[0xff; 4]);
                    let mut len = records.len() as u64 + 1;
                    while len >= 0x80 {
                        rb.push((len as u8 & 0x7f) | 0x80);
                        len >>= 7;
                    }
                    rb.push(len as u8);
                    rb.extend(records);
                    rb.extend_from_slice(&[0, 0, 0]);
                    r.extend(kafka_response(corr, true, &rb));
                    answered += 1;
                }
            }
        }
        c.client(q);
        if answered > 0 {
            c.server(r);
        }
        c.items += batch;
        done += batch;
    }
    c
}

// ---- PostgreSQL -------------------------------------------------------

fn pg(ty: u8, payload: &[u8]) -> Vec<u8> {
    [vec![ty], (payload.len() as u32 + 4).to_be_bytes().to_vec(), payload.to_vec()].concat()
}

fn cstr(s: &[u8]) -> Vec<u8> {
    [s, &[0]].concat()
}

fn postgresql(rng: &mut Rng, exchanges: usize, depth: usize) -> Conversation {
    let mut c = Conversation { server_port: 5432, ..Conversation::default() };
    let mut params = 196_608u32.to_be_bytes().to_vec();
    for (k, v) in [("user", "app"), ("database", "shop"), ("application_name", "gen")] {
        params.extend(cstr(k.as_bytes()));
        params.extend(cstr(v.as_bytes()));
    }
    params.push(0);
    c.client([(params.len() as u32 + 4).to_be_bytes().to_vec(), params].concat());
    c.server(pg(b'R', &[&10u32.to_be_bytes()[..], b"SCRAM-SHA-256\0\0"].concat()));
    c.client_strict(pg(b'p', &[&b"SCRAM-SHA-256\0"[..], &[0, 0, 0, 4], b"n,,x"].concat()));
    c.server(pg(b'R', &[&11u32.to_be_bytes()[..], b"r=abc"].concat()));
    c.client_strict(pg(b'p', b"c=biws,p=xyz"));
    c.server(
        [
            pg(b'R', &[&12u32.to_be_bytes()[..], b"v=ok"].concat()),
            pg(b'R', &0u32.to_be_bytes()),
            pg(b'S', b"server_version\x0016.1\0"),
            pg(b'K', &[0, 0, 0, 42, 1, 2, 3, 4]),
            pg(b'Z', b"I"),
        ]
        .concat(),
    );
    c.items += 1;
    let mut done = 0;
    let mut prepared = false;
    while done < exchanges {
        let batch = (exchanges - done).min(1 + rng.below(depth as u64) as usize);
        let (mut q, mut r) = (Vec::new(), Vec::new());
        for _ in 0..batch {
            let rows = rng.below(20) as usize;
            let row = |rng: &mut Rng| {
                pg(b'D', &[&[0, 1][..], &(40u32).to_be_bytes(), &rng.bytes(40)].concat())
            };
            match rng.below(4) {
                0 => {
                    let text = format!(
                        "SELECT * FROM items WHERE id > {} /* {} */",
                        rng.below(100),
                        String::from_utf8_lossy(&rng.rbytes(0, 400))
                    );
                    q.extend(pg(b'Q', &cstr(text.as_bytes())));
                    r.extend(pg(
                        b'T',
                        &[
                            0, 1, b'x', 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0, 0,
                        ],
                    ));
                    for _ in 0..rows {
                        r.extend(row(rng));
                    }
                    r.extend(pg(b'C', &cstr(format!("SELECT {rows}").as_bytes())));
                    r.extend(pg(b'Z', b"I"));
                }
                1 => {
                    q.extend(pg(b'Q', b"SELECT 1/0;\0"));
                    r.extend(pg(b'E', b"SERROR\0VERROR\0C22012\0Mdivision by zero\0\0"));
                    r.extend(pg(b'Z', b"I"));
                }
                _ => {
                    // Extended protocol; the statement is named once and
                    // reused by name afterwards.
                    if !prepared {
                        q.extend(pg(b'P', b"get_item\0SELECT * FROM items WHERE id = $1\0\0\0"));
                        r.extend(pg(b'1', b""));
                        prepared = true;
                    }
                    q.extend(pg(b'B', b"\0get_item\0\0\0\0\x01\0\0\0\x0242\0\0"));
                    q.extend(pg(b'E', b"\0\0\0\0\0"));
                    q.extend(pg(b'S', b""));
                    r.extend(pg(b'2', b""));
                    for _ in 0..rows {
                        r.extend(row(rng));
                    }
                    r.extend(pg(b'C', &cstr(format!("SELECT {rows}").as_bytes())));
                    r.extend(pg(b'Z', b"I"));
                }
            }
        }
        c.client(q);
        c.server(r);
        c.items += batch;
        done += batch;
    }
    c.client(pg(b'X', b""));
    c.items += 1;
    c
}

// ---- AMQP 0-9-1 -------------------------------------------------------

fn amqp_frame(ty: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    [
        vec![ty],
        channel.to_be_bytes().to_vec(),
        (payload.len() as u32).to_be_bytes().to_vec(),
        payload.to_vec(),
        vec![0xce],
    ]
    .concat()
}

fn amqp_method(channel: u16, class: u16, method: u16, args: &[u8]) -> Vec<u8> {
    amqp_frame(
        1,
        channel,
        &[class.to_be_bytes().to_vec(), method.to_be_bytes().to_vec(), args.to_vec()].concat(),
    )
}

fn shortstr(s: &[u8]) -> Vec<u8> {
    [vec![s.len() as u8], s.to_vec()].concat()
}

/// A method with content: its frames (method, header, body frames).
fn amqp_content(
    channel: u16,
    class: u16,
    method: u16,
    args: &[u8],
    body: &[u8],
    frame_max: usize,
) -> Vec<Vec<u8>> {
    let mut frames = vec![amqp_method(channel, class, method, args)];
    let mut h = vec![0, 60, 0, 0];
    h.extend_from_slice(&(body.len() as u64).to_be_bytes());
    h.extend_from_slice(&0x9000u16.to_be_bytes()); // content-type, delivery-mode
    h.extend(shortstr(b"application/json"));
    h.push(2);
    frames.push(amqp_frame(2, channel, &h));
    frames.extend(body.chunks(frame_max).map(|c| amqp_frame(3, channel, c)));
    frames
}

fn amqp(rng: &mut Rng, exchanges: usize, depth: usize) -> Conversation {
    let mut c = Conversation { server_port: 5672, ..Conversation::default() };
    c.client(b"AMQP\x00\x00\x09\x01".to_vec());
    c.server(amqp_method(
        0,
        10,
        10,
        &[&[0, 9, 0, 0, 0, 0][..], &[0, 0, 0, 5], b"PLAIN", &[0, 0, 0, 5], b"en_US"].concat(),
    ));
    c.client_strict(amqp_method(
        0,
        10,
        11,
        &[&[0, 0, 0, 0][..], &shortstr(b"PLAIN"), &[0, 0, 0, 6], b"\0u\0pwd", &shortstr(b"en_US")]
            .concat(),
    ));
    c.server(amqp_method(0, 10, 30, &[0, 2, 0, 0, 16, 0, 0, 60]));
    c.client_strict(
        [
            amqp_method(0, 10, 31, &[0, 2, 0, 0, 16, 0, 0, 60]),
            amqp_method(0, 10, 40, &[&shortstr(b"/")[..], &[0, 0]].concat()),
        ]
        .concat(),
    );
    c.server(amqp_method(0, 10, 41, &[0]));
    c.client_strict([amqp_method(1, 20, 10, &[0]), amqp_method(2, 20, 10, &[0])].concat());
    c.server(
        [amqp_method(1, 20, 11, &[0, 0, 0, 0]), amqp_method(2, 20, 11, &[0, 0, 0, 0])].concat(),
    );
    c.client_strict(amqp_method(
        1,
        50,
        10,
        &[&[0, 0][..], &shortstr(b"jobs"), &[0b10], &[0, 0, 0, 0]].concat(),
    ));
    c.server(amqp_method(1, 50, 11, &[&shortstr(b"jobs")[..], &[0, 0, 0, 0, 0, 0, 0, 0]].concat()));
    c.client_strict(amqp_method(
        2,
        60,
        20,
        &[&[0, 0][..], &shortstr(b"jobs"), &shortstr(b"ctag"), &[0], &[0, 0, 0, 0]].concat(),
    ));
    c.server(amqp_method(2, 60, 21, &shortstr(b"ctag")));
    c.items += 7;
    let mut done = 0;
    let mut tag = 0u64;
    while done < exchanges {
        let batch = (exchanges - done).min(1 + rng.below(depth as u64) as usize);
        // Publishes on both channels, their frames interleaved.
        let pubs: Vec<Vec<Vec<u8>>> = (0..batch)
            .map(|i| {
                let ch = 1 + (i % 2) as u16;
                let args = [
                    &[0, 0][..],
                    &shortstr(b"amq.direct"),
                    &shortstr(format!("jobs.{}", rng.below(9)).as_bytes()),
                    &[0],
                ]
                .concat();
                amqp_content(ch, 60, 40, &args, &rng.rbytes(0, 2000), 512)
            })
            .collect();
        let most = pubs.iter().map(Vec::len).max().unwrap_or(0);
        let mut wire = Vec::new();
        // Channels interleave, but one channel's frames stay in order and
        // one publish's content is not interleaved with another publish of
        // the same channel.
        for pair in pubs.chunks(2) {
            for k in 0..most {
                for p in pair {
                    if let Some(f) = p.get(k) {
                        wire.extend_from_slice(f);
                    }
                }
            }
        }
        c.client(wire);
        // Deliveries to the consumer, then its acks.
        let mut d = Vec::new();
        let mut acks = Vec::new();
        for _ in 0..batch {
            tag += 1;
            let args = [
                shortstr(b"ctag"),
                tag.to_be_bytes().to_vec(),
                vec![0],
                shortstr(b"amq.direct"),
                shortstr(b"jobs"),
            ]
            .concat();
            d.extend(amqp_content(2, 60, 60, &args, &rng.rbytes(0, 1500), 512).concat());
            acks.extend(amqp_method(2, 60, 80, &[&tag.to_be_bytes()[..], &[0]].concat()));
        }
        c.server(d);
        // A consumer acks what it received.
        c.client_strict(acks);
        c.items += 3 * batch;
        done += batch;
    }
    c.client_strict(amqp_method(
        1,
        20,
        40,
        &[&[0, 200][..], &shortstr(b"bye"), &[0, 0, 0, 0]].concat(),
    ));
    c.server(amqp_method(1, 20, 41, &[]));
    c.client_strict(amqp_method(
        0,
        10,
        50,
        &[&[0, 200][..], &shortstr(b"bye"), &[0, 0, 0, 0]].concat(),
    ));
    c.server(amqp_method(0, 10, 51, &[]));
    c.items += 2;
    c
}

#[cfg(test)]
#[path = "conversations_tests.rs"]
mod tests;

// ---- MySQL --------------------------------------------------------------

fn my_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    [&[n as u8, (n >> 8) as u8, (n >> 16) as u8, seq][..], payload].concat()
}

fn lenenc_str(s: &[u8]) -> Vec<u8> {
    [&[s.len() as u8][..], s].concat()
}

fn my_column(name: &[u8]) -> Vec<u8> {
    let parts: [&[u8]; 6] = [b"def", b"shop", b"items", b"items", name, name];
    let mut v: Vec<u8> = parts.iter().flat_map(|p| lenenc_str(p)).collect();
    v.extend_from_slice(&[0x0c, 0x21, 0, 0xff, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]);
    v
}

/// A MySQL 8 session (no DEPRECATE_EOF): greeting, login, then one command
/// at a time (MySQL clients do not pipeline): result sets of up to 20 rows,
/// writes, an error, a prepared statement executed repeatedly, a ping; quit.
fn mysql(rng: &mut Rng, exchanges: usize) -> Conversation {
    let mut c = Conversation { server_port: 3306, ..Conversation::default() };
    // PROTOCOL_41, TRANSACTIONS, SECURE_CONNECTION, MULTI_RESULTS,
    // PLUGIN_AUTH, CONNECT_ATTRS.
    let caps: u32 = 0x0000_0200 | 0x2000 | 0x8000 | 1 << 17 | 1 << 19 | 1 << 20;
    let mut g = vec![10];
    g.extend_from_slice(b"8.0.36\0");
    g.extend_from_slice(&7u32.to_le_bytes());
    g.extend_from_slice(b"abcdefgh\0");
    g.extend_from_slice(&(caps as u16).to_le_bytes());
    g.extend_from_slice(&[0x21, 2, 0]);
    g.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
    g.push(21);
    g.extend_from_slice(&[0; 10]);
    g.extend_from_slice(b"ijklmnopqrst\0caching_sha2_password\0");
    c.server(my_packet(0, &g));
    let mut login = (caps | 8).to_le_bytes().to_vec();
    login.extend_from_slice(&(1u32 << 24).to_le_bytes());
    login.push(0x21);
    login.extend_from_slice(&[0; 23]);
    login.extend_from_slice(b"app\0");
    login.push(32);
    login.extend(rng.bytes(32));
    login.extend_from_slice(b"shop\0caching_sha2_password\0");
    let attrs = [lenenc_str(b"_client_name"), lenenc_str(b"libmysql")].concat();
    login.push(attrs.len() as u8);
    login.extend(attrs);
    c.client_strict(my_packet(1, &login));
    c.server([my_packet(2, &[1, 3]), my_packet(3, &[0, 0, 0, 2, 0, 0, 0])].concat());
    c.items += 1;
    let eof = [0xfe, 0, 0, 2, 0];
    let mut prepared = false;
    for _ in 0..exchanges {
        match rng.below(5) {
            0 | 1 => {
                let q = format!(
                    "SELECT id, name FROM items WHERE id > {} /* {} */",
                    rng.below(1000),
                    String::from_utf8_lossy(&rng.rbytes(0, 300))
                );
                c.client_strict(my_packet(0, &[&[3][..], q.as_bytes()].concat()));
                let mut r = my_packet(1, &[2]);
                r.extend(my_packet(2, &my_column(b"id")));
                r.extend(my_packet(3, &my_column(b"name")));
                r.extend(my_packet(4, &eof));
                let rows = rng.below(20) as u8;
                for i in 0..rows {
                    let row =
                        [lenenc_str(i.to_string().as_bytes()), lenenc_str(&rng.rbytes(1, 60))]
                            .concat();
                    r.extend(my_packet(5 + i, &row));
                }
                r.extend(my_packet(5 + rows, &eof));
                c.server(r);
            }
            2 => {
                let q =
                    format!("UPDATE items SET stock = stock - 1 WHERE id = {}", rng.below(1000));
                c.client_strict(my_packet(0, &[&[3][..], q.as_bytes()].concat()));
                c.server(my_packet(1, &[0, rng.below(5) as u8, 0, 2, 0, 0, 0]));
            }
            3 => {
                c.client_strict(my_packet(0, b"\x03SELECT * FROM nowhere"));
                c.server(my_packet(1, b"\xff\x7a\x04#42S02Table 'shop.nowhere' doesn't exist"));
            }
            _ => {
                if !prepared {
                    c.client_strict(my_packet(0, b"\x16SELECT name FROM items WHERE id = ?"));
                    let mut r = my_packet(1, &[0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0]);
                    r.extend(my_packet(2, &my_column(b"?")));
                    r.extend(my_packet(3, &eof));
                    r.extend(my_packet(4, &my_column(b"name")));
                    r.extend(my_packet(5, &eof));
                    c.server(r);
                    c.items += 1;
                    prepared = true;
                }
                let mut e = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 8, 0];
                e.extend_from_slice(&rng.below(1000).to_le_bytes());
                c.client_strict(my_packet(0, &e));
                let mut r = my_packet(1, &[1]);
                r.extend(my_packet(2, &my_column(b"name")));
                r.extend(my_packet(3, &eof));
                r.extend(my_packet(4, &[&[0, 0][..], &lenenc_str(&rng.rbytes(1, 40))].concat()));
                r.extend(my_packet(5, &eof));
                c.server(r);
            }
        }
        c.items += 1;
    }
    c.client_strict(my_packet(0, &[1]));
    c.items += 1;
    c
}

// ---- MongoDB ------------------------------------------------------------

fn mongo_msg(id: i32, to: i32, code: i32, body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 16) as i32).to_le_bytes().to_vec();
    for x in [id, to, code] {
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.extend_from_slice(body);
    v
}

fn op_msg_body(doc: &bson::Document) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 0, 0];
    v.extend(doc.to_vec().unwrap_or_default());
    v
}

/// A driver's session: the legacy OP_QUERY hello and its OP_REPLY, then
/// OP_MSG commands pipelined up to `depth` (finds with batches, inserts
/// with a document sequence, an aggregate, a failing command).
fn mongodb(rng: &mut Rng, exchanges: usize, depth: usize) -> Conversation {
    use bson::doc;
    let mut c = Conversation { server_port: 27017, ..Conversation::default() };
    let mut q = 0i32.to_le_bytes().to_vec();
    q.extend_from_slice(b"admin.$cmd\0");
    q.extend_from_slice(&0i32.to_le_bytes());
    q.extend_from_slice(&(-1i32).to_le_bytes());
    q.extend(
        (doc! {"isMaster": 1, "client": {"driver": {"name": "gen", "version": "1"}}})
            .to_vec()
            .unwrap_or_default(),
    );
    c.client(mongo_msg(1, 0, 2004, &q));
    let mut r = 0i32.to_le_bytes().to_vec();
    r.extend_from_slice(&0i64.to_le_bytes());
    r.extend_from_slice(&0i32.to_le_bytes());
    r.extend_from_slice(&1i32.to_le_bytes());
    r.extend(doc! {"ismaster": true, "maxWireVersion": 17, "ok": 1.0}.to_vec().unwrap_or_default());
    c.server(mongo_msg(2, 1, 1, &r));
    c.items += 1;
    let mut id = 10;
    let mut done = 0;
    while done < exchanges {
        let batch = (exchanges - done).min(1 + rng.below(depth as u64) as usize);
        let (mut reqs, mut resps) = (Vec::new(), Vec::new());
        for _ in 0..batch {
            id += 2;
            let (req, resp) = match rng.below(4) {
                0 | 1 => {
                    let n = rng.below(10) as i32;
                    let docs: Vec<bson::Bson> = (0..n)
                        .map(|i| bson::Bson::Document(doc! {"_id": i, "name": String::from_utf8_lossy(&rng.rbytes(1, 80)).into_owned()}))
                        .collect();
                    (
                        op_msg_body(
                            &doc! {"find": "items", "filter": {"stock": {"$gt": rng.below(50) as i32}}, "$db": "shop"},
                        ),
                        op_msg_body(
                            &doc! {"cursor": {"firstBatch": docs, "id": 0i64, "ns": "shop.items"}, "ok": 1.0},
                        ),
                    )
                }
                2 => {
                    let mut body =
                        op_msg_body(&doc! {"insert": "events", "ordered": true, "$db": "shop"});
                    let docs: Vec<u8> = (0..3)
                        .flat_map(|i| doc! {"i": i, "payload": String::from_utf8_lossy(&rng.rbytes(1, 100)).into_owned()}.to_vec().unwrap_or_default())
                        .collect();
                    body.push(1);
                    body.extend_from_slice(&((4 + 10 + docs.len()) as i32).to_le_bytes());
                    body.extend_from_slice(b"documents\0");
                    body.extend(docs);
                    (body, op_msg_body(&doc! {"n": 3, "ok": 1.0}))
                }
                _ => (
                    op_msg_body(&doc! {"replSetGetStatus": 1, "$db": "admin"}),
                    op_msg_body(
                        &doc! {"ok": 0.0, "errmsg": "not running with --replSet", "code": 76, "codeName": "NoReplicationEnabled"},
                    ),
                ),
            };
            reqs.extend(mongo_msg(id, 0, 2013, &req));
            resps.extend(mongo_msg(id + 1, id, 2013, &resp));
        }
        c.client(reqs);
        c.server(resps);
        c.items += batch;
        done += batch;
    }
    c
}

// ---- TLS ----------------------------------------------------------------

fn tls_record(ty: u8, payload: &[u8]) -> Vec<u8> {
    [&[ty, 3, 3][..], &(payload.len() as u16).to_be_bytes(), payload].concat()
}

fn tls_handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len();
    [&[ty, (n >> 16) as u8, (n >> 8) as u8, n as u8][..], body].concat()
}

fn len16(b: &[u8]) -> Vec<u8> {
    [&(b.len() as u16).to_be_bytes()[..], b].concat()
}

/// A TLS 1.2 connection (full handshake: ClientHello with SNI and ALPN,
/// ServerHello, a certificate chain, ServerKeyExchange, the client's key
/// exchange, both ChangeCipherSpecs), then `exchanges` requests and
/// responses of application data: two items (handshake, connection).
fn tls(rng: &mut Rng, exchanges: usize) -> Conversation {
    let mut c = Conversation { server_port: 443, ..Conversation::default() };
    let mut ch = vec![3, 3];
    ch.extend(rng.bytes(32));
    ch.push(0);
    ch.extend(len16(&[0x13, 1, 0x13, 2, 0xc0, 0x2f, 0xc0, 0x30, 0, 0x9c]));
    ch.extend_from_slice(&[1, 0]);
    let host = format!("svc{}.example.test", rng.below(100));
    let sni = [&[0][..], &len16(host.as_bytes())].concat();
    let exts = [
        [&[0, 0][..], &len16(&len16(&sni))].concat(),
        [&[0, 0x10][..], &len16(&len16(b"\x02h2\x08http/1.1"))].concat(),
        [&[0, 0x0a][..], &len16(&len16(&[0, 0x1d, 0, 0x17]))].concat(),
        [&[0, 0x0b][..], &len16(&[1, 0])].concat(),
        [&[0, 0x0d][..], &len16(&len16(&[4, 3, 8, 4, 4, 1]))].concat(),
    ]
    .concat();
    ch.extend(len16(&exts));
    c.client(tls_record(22, &tls_handshake(1, &ch)));
    let mut sh = vec![3, 3];
    sh.extend(rng.bytes(32));
    sh.push(0);
    sh.extend_from_slice(&[0xc0, 0x2f, 0]);
    sh.extend(len16(&[&[0, 0x10][..], &len16(&len16(b"\x02h2"))].concat()));
    // A chain of two made-up certificates (not DER: counted, not parsed).
    let certs: Vec<u8> = (0..2)
        .flat_map(|_| {
            let der = rng.rbytes(600, 400);
            [&[0, (der.len() >> 8) as u8, der.len() as u8][..], &der].concat()
        })
        .collect();
    let cert = [&[0, (certs.len() >> 8) as u8, certs.len() as u8][..], &certs].concat();
    let flight = [
        tls_handshake(2, &sh),
        tls_handshake(11, &cert),
        tls_handshake(12, &[3, 0, 0x17, 4, 1, 2, 3, 4]),
        tls_handshake(14, &[]),
    ]
    .concat();
    c.server(tls_record(22, &flight));
    c.client_strict(
        [
            tls_record(22, &tls_handshake(16, &rng.bytes(66))),
            tls_record(20, &[1]),
            tls_record(22, &rng.bytes(40)),
        ]
        .concat(),
    );
    c.server([tls_record(20, &[1]), tls_record(22, &rng.bytes(40))].concat());
    c.items += 1;
    for _ in 0..exchanges {
        let n = 100 + rng.below(600) as usize;
        c.client_strict(tls_record(23, &rng.bytes(n)));
        let mut resp = Vec::new();
        let mut left = 200 + rng.below(20_000) as usize;
        while left > 0 {
            let n = left.min(16_384);
            resp.extend(tls_record(23, &rng.bytes(n)));
            left -= n;
        }
        c.server(resp);
    }
    c.items += 1;
    c
}

// ---- WebSocket ------------------------------------------------------------

/// A WebSocket frame; a client's is masked with `key`.
pub(crate) fn ws_frame(fin: bool, opcode: u8, key: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![(u8::from(fin) << 7) | opcode];
    let m = if key.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => v.push(m | n as u8),
        n if n < 65536 => {
            v.push(m | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            v.push(m | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match key {
        Some(k) => {
            v.extend_from_slice(&k);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

/// An HTTP/1.1 upgrade to WebSocket, then `exchanges` client messages
/// (some fragmented, with a ping between the fragments) each answered by
/// a server message, and a close answered by a close: items are the
/// upgrade's `http` item, one per message, one per ping/pong and one for
/// the closes.
fn websocket(rng: &mut Rng, exchanges: usize) -> Conversation {
    let mut c = Conversation { server_port: 8080, ..Conversation::default() };
    c.client(
        format!(
            "GET /chat/{} HTTP/1.1\r\nHost: ws.example.test\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n",
            rng.below(1000)
        )
        .into_bytes(),
    );
    c.server(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
            .to_vec(),
    );
    c.items += 1;
    let key = |rng: &mut Rng| Some((rng.next() as u32).to_be_bytes());
    for _ in 0..exchanges {
        let text = rng.rbytes(1, 300);
        if rng.below(3) == 0 {
            let cut = text.len() / 2;
            let mut m = ws_frame(false, 1, key(rng), &text[..cut]);
            m.extend(ws_frame(true, 9, key(rng), b"hb"));
            m.extend(ws_frame(true, 0, key(rng), &text[cut..]));
            c.client_strict(m);
            c.server(ws_frame(true, 10, None, b"hb"));
            c.items += 1;
        } else {
            c.client_strict(ws_frame(true, 1, key(rng), &text));
        }
        let reply = if rng.below(2) == 0 { rng.rbytes(1, 2000) } else { rng.rbytes(200, 70_000) };
        c.server(ws_frame(true, 2, None, &reply));
        c.items += 2;
    }
    c.client_strict(ws_frame(true, 8, key(rng), b"\x03\xe8bye"));
    c.server(ws_frame(true, 8, None, b"\x03\xe8"));
    c.items += 1;
    c
}
