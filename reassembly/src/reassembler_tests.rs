//! End-to-end tests of the entry point: packets in, items out.

use super::*;
use crate::dissectors::dns::parser::tests::{query, response};
use crate::item::{ItemErrorKind, NodeInfo};
use crate::packet::Fragment;
use crate::testutil::{run, Conv};

const GET: &[u8] = b"GET /index.html?a=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello";

fn cfg() -> ReassemblyConfig {
    ReassemblyConfig::default()
}

#[test]
fn idle_flow_fits_the_memory_target() {
    let per_flow = Reassembler::bytes_per_idle_flow();
    println!("idle flow: {per_flow} bytes (Flow {} bytes)", core::mem::size_of::<Flow>());
    assert!(per_flow <= 512, "{per_flow} bytes per idle flow");
    assert!(core::mem::size_of::<Flow>() <= 160, "{}", core::mem::size_of::<Flow>());
}

#[test]
fn handshake_get_response_fin_gives_one_item_with_the_contract_shape() {
    let mut c = Conv::new(40000, 80, 1000, 5000);
    let mut pkts = c.handshake();
    pkts.push(c.client(GET));
    pkts.push(c.server(OK));
    pkts.push(c.fin(true));
    pkts.push(c.fin(false));
    let (items, r) = run(&cfg(), &pkts);
    assert_eq!(items.len(), 1);
    let j = items[0].to_json(&NodeInfo { ip: "10.9.9.9".into(), name: "node-a".into() });
    assert_eq!(j["protocol"]["name"], "http");
    assert_eq!(j["protocol"]["version"], "1.1");
    assert_eq!(j["protocol"]["layer4"], "tcp");
    assert_eq!(j["protocol"]["layer3"], "ipv4");
    assert_eq!(j["src"]["ip"], "10.0.0.1");
    assert_eq!(j["src"]["port"], "40000");
    assert_eq!(j["dst"]["port"], "80");
    assert_eq!(j["index"], 0);
    assert_eq!(j["id"], format!("node-a/{}-0", items[0].stream));
    assert_eq!(j["worker"]["name"], "node-a");
    assert_eq!(j["timestamp"], 1_700_000_000_004u64);
    assert_eq!(j["startTime"], "2023-11-14T22:13:20.004Z");
    assert_eq!(j["elapsedTime"], 1_000);
    assert_eq!(j["request"]["method"], "GET");
    assert_eq!(j["request"]["queryString"]["a"], "1");
    assert_eq!(j["response"]["status"], 200);
    assert_eq!(j["response"]["content"]["size"], 5);
    assert_eq!(j["requestSize"], GET.len());
    assert_eq!(j["responseSize"], OK.len());
    assert_eq!(j["size"], GET.len() + OK.len());
    assert_eq!(j["passed"], false);
    assert!(j["error"].is_null());
    let c = r.counters();
    assert_eq!((c.flows_created, c.items.get(AppProtocol::Http)), (1, 1));
    // serde_json's view of the item is the same JSON.
    assert_eq!(serde_json::to_value(&items[0]).expect("serializes")["request"], j["request"]);
}

#[test]
fn mid_stream_pickup_infers_roles_from_content() {
    // The server listens on the higher port: the port guess is wrong and
    // the content corrects it.
    let mut c = Conv::new(80, 8000, 7, 9);
    let pkts = vec![c.client(GET), c.server(OK)];
    let (items, _) = run(&cfg(), &pkts);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].src.port, 80);
    assert_eq!(items[0].dst.port, 8000);
    assert!(items[0].exchange.error.is_none());
}

#[test]
fn http_is_found_on_any_port() {
    let mut c = Conv::new(50000, 22, 1, 1);
    let mut pkts = c.handshake();
    pkts.push(c.client(GET));
    pkts.push(c.server(OK));
    let (items, _) = run(&cfg(), &pkts);
    assert_eq!(items.len(), 1);
}

#[test]
fn data_in_syn_is_delivered() {
    let mut c = Conv::new(40000, 80, 100, 200);
    let syn = c.syn_with_data(GET);
    let pkts = vec![syn, c.server(OK)];
    // The SYN-ACK is not needed: the server's data starts where it starts.
    let (items, _) = run(&cfg(), &pkts);
    assert_eq!(items.len(), 1);
    assert!(items[0].exchange.response.is_some());
}

#[test]
fn rst_closes_and_unanswered_request_is_pair_not_found() {
    let mut c = Conv::new(40000, 80, 1, 1);
    let mut pkts = c.handshake();
    pkts.push(c.client(GET));
    pkts.push(c.rst(false));
    let (items, r) = run(&cfg(), &pkts);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].exchange.error.as_ref().map(|e| e.kind), Some(ItemErrorKind::PairNotFound));
    assert_eq!(r.flows(), 0);
}

#[test]
fn idle_timeout_expires_with_a_timeout_item() {
    let mut c = Conv::new(40000, 80, 1, 1);
    let mut pkts = c.handshake();
    pkts.push(c.client(GET));
    let mut r = Reassembler::new(&cfg(), 0);
    let mut items = Vec::new();
    for p in &pkts {
        r.packet(&p.packet(), &mut |i| items.push(i));
    }
    let last = pkts.last().map_or(0, |p| p.ts);
    r.advance(last + 299 * NS_PER_MS * 1000, &mut |i| items.push(i));
    assert!(items.is_empty());
    r.advance(last + 301 * NS_PER_MS * 1000, &mut |i| items.push(i));
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].exchange.error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Timeout));
    assert_eq!(r.counters().flows_expired, 1);
    assert_eq!(r.flows(), 0);
}

#[test]
fn half_open_flows_time_out_quickly() {
    let mut r = Reassembler::new(&cfg(), 0);
    let syn = Packet::tcp_v4(0, [1, 1, 1, 1], 1234, [2, 2, 2, 2], 80, tcp_flags::SYN, 1, 0, &[]);
    r.packet(&syn, &mut |_| {});
    assert_eq!(r.flows(), 1);
    r.advance(10_001 * NS_PER_MS, &mut |_| {});
    assert_eq!(r.flows(), 0);
    let ack = Packet::tcp_v4(0, [1, 1, 1, 1], 1234, [2, 2, 2, 2], 80, tcp_flags::ACK, 1, 0, &[]);
    r.packet(&ack, &mut |_| {});
    assert_eq!(r.flows(), 0, "a lone ACK does not create a flow");
    assert_eq!(r.counters().packets_without_flow, 1);
}

#[test]
fn reordered_segments_and_a_lost_one() {
    let mut c = Conv::new(40000, 80, u32::MAX - 20, 5000);
    let mut pkts = c.handshake();
    let (a, b) = GET.split_at(30);
    let p1 = c.client(a);
    let p2 = c.client(b);
    pkts.push(p2);
    pkts.push(p1);
    let r1 = c.server(&OK[..64]);
    let _lost = c.server(&OK[64..66]);
    let r3 = c.server(&OK[66..]);
    pkts.push(r1);
    pkts.push(r3);
    let (items, r) = run(&cfg(), &pkts);
    assert_eq!(items.len(), 1);
    let resp = items[0].http_response().expect("response");
    assert_eq!(resp.status, 200);
    assert_eq!(items[0].exchange.error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Gap));
    assert_eq!(r.counters().tcp.gaps, 1);
    assert_eq!(r.ooo_memory(), 0);
}

#[test]
fn ack_past_a_hole_delivers_without_waiting_for_the_end() {
    let mut c = Conv::new(40000, 80, 1, 1);
    let mut pkts = c.handshake();
    let lost = c.client(b"GET /lost HTTP/1.1\r\n\r\n");
    let _ = lost;
    pkts.push(c.client(b"GET /two HTTP/1.1\r\n\r\n"));
    pkts.push(c.server(OK)); // acknowledges both requests
    pkts.push(c.server(OK));
    let mut r = Reassembler::new(&cfg(), 0);
    let mut items = Vec::new();
    for p in &pkts {
        r.packet(&p.packet(), &mut |i| items.push(i));
    }
    // The lost request is a placeholder, so the responses pair in order.
    assert_eq!(items.len(), 2, "paired before finish: {items:?}");
    assert!(items[0].exchange.request.is_none());
    assert_eq!(items[0].exchange.error.as_ref().map(|e| e.kind), Some(ItemErrorKind::Gap));
    assert_eq!(items[1].http_request().map(|m| m.target()), Some(&b"/two"[..]));
    assert!(items[1].exchange.error.is_none());
}

#[test]
fn dns_over_udp_pairs_and_counts() {
    let q = query(77, "example.com", 1);
    let a = response(77, "example.com", 1, &[(1, vec![1, 2, 3, 4])]);
    let mut r = Reassembler::new(&cfg(), 3);
    let mut items = Vec::new();
    r.packet(&Packet::udp_v4(1_000_000, [10, 0, 0, 1], 5353, [8, 8, 8, 8], 53, &q), &mut |i| {
        items.push(i)
    });
    r.packet(&Packet::udp_v4(3_500_000, [8, 8, 8, 8], 53, [10, 0, 0, 1], 5353, &a), &mut |i| {
        items.push(i)
    });
    assert_eq!(items.len(), 1);
    let j = items[0].to_json(&NodeInfo::default());
    assert_eq!(j["protocol"]["name"], "dns");
    assert_eq!(j["protocol"]["layer4"], "udp");
    assert_eq!(j["src"]["port"], "5353");
    assert_eq!(j["request"]["questions"][0]["name"], "example.com");
    assert_eq!(j["request"]["questions"][0]["type"], "A");
    assert_eq!(j["request"]["opCode"], "Query");
    assert_eq!(j["response"]["answers"][0]["ip"], "1.2.3.4");
    assert_eq!(j["elapsedTime"], 2_500);
    assert_eq!(items[0].stream >> 48, 3, "core in the stream id");
    assert_eq!(r.counters().items.get(AppProtocol::Dns), 1);
}

#[test]
fn dns_over_tcp() {
    let q = query(1, "a.example", 1);
    let a = response(1, "a.example", 1, &[(1, vec![9, 9, 9, 9])]);
    let frame = |m: &[u8]| {
        let mut v = (m.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(m);
        v
    };
    let mut c = Conv::new(40000, 53, 1, 1);
    let mut pkts = c.handshake();
    pkts.push(c.client(&frame(&q)));
    pkts.push(c.server(&frame(&a)));
    let (items, _) = run(&cfg(), &pkts);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].layer4, Layer4::Tcp);
    assert!(items[0].dns_response().is_some());
}

#[test]
fn fragmented_udp_datagram_is_reassembled() {
    let q = query(5, "frag.example", 1);
    let a = response(5, "frag.example", 1, &[(16, vec![200; 201])]);
    let mut dgram = Vec::new();
    dgram.extend_from_slice(&53u16.to_be_bytes());
    dgram.extend_from_slice(&4000u16.to_be_bytes());
    dgram.extend_from_slice(&((a.len() + 8) as u16).to_be_bytes());
    dgram.extend_from_slice(&[0, 0]);
    dgram.extend_from_slice(&a);
    let mut r = Reassembler::new(&cfg(), 0);
    let mut items = Vec::new();
    r.packet(&Packet::udp_v4(1, [10, 0, 0, 1], 4000, [10, 0, 0, 53], 53, &q), &mut |i| {
        items.push(i)
    });
    let (first, second) = dgram.split_at(128);
    for (off, part, more) in [(128u16, second, false), (0u16, first, true)] {
        let mut p = Packet::udp_v4(2, [10, 0, 0, 53], 0, [10, 0, 0, 1], 0, part);
        p.fragment = Some(Fragment { ident: 42, offset: off, more });
        r.packet(&p, &mut |i| items.push(i));
    }
    assert_eq!(items.len(), 1);
    assert!(items[0].dns_response().is_some());
    assert_eq!(r.counters().fragment_datagrams_reassembled, 1);
}

#[test]
fn unknown_protocols_are_tracked_but_not_dissected() {
    let mut c = Conv::new(40000, 443, 1, 1);
    let mut pkts = c.handshake();
    for _ in 0..10 {
        pkts.push(c.client(b"\x16\x03\x01\x00\x05hello"));
    }
    let (items, r) = run(&cfg(), &pkts);
    assert!(items.is_empty());
    assert_eq!(r.counters().flows_undetected, 1);
    assert_eq!(r.ooo_memory(), 0);
}

#[test]
fn disabled_protocol_is_not_dissected() {
    let mut cfg = cfg();
    cfg.protocols = vec![AppProtocol::Dns];
    let mut c = Conv::new(40000, 80, 1, 1);
    let mut pkts = c.handshake();
    pkts.push(c.client(GET));
    pkts.push(c.server(OK));
    let (items, _) = run(&cfg, &pkts);
    assert!(items.is_empty());
}

#[test]
fn port_reuse_after_close_starts_a_new_flow() {
    let mut c = Conv::new(40000, 80, 1, 1);
    let mut pkts = c.handshake();
    pkts.push(c.client(GET));
    pkts.push(c.server(OK));
    pkts.push(c.fin(true));
    pkts.push(c.fin(false));
    let mut c2 = Conv::new(40000, 80, 900_000, 1);
    pkts.extend(c2.handshake());
    pkts.push(c2.client(GET));
    pkts.push(c2.server(OK));
    let (items, r) = run(&cfg(), &pkts);
    assert_eq!(items.len(), 2);
    assert_ne!(items[0].stream, items[1].stream);
    assert_eq!(r.counters().flows_created, 2);
}

#[test]
fn eviction_finishes_the_evicted_flow() {
    let mut cfg = cfg();
    cfg.max_flows = 1;
    let mut c = Conv::new(40000, 80, 1, 1);
    let mut pkts = c.handshake();
    pkts.push(c.client(GET));
    let mut c2 = Conv::new(40001, 80, 1, 1);
    pkts.extend(c2.handshake());
    let (items, r) = run(&cfg, &pkts);
    assert_eq!(items.len(), 1, "the evicted flow's request is not lost");
    assert_eq!(r.counters().flows_evicted, 1);
    assert_eq!(r.counters().flow_table_full, 1);
}

/// SYN flood: each SYN is a new half-open flow; with the table full, the
/// oldest half-open flow is evicted first, so the established conversation
/// interleaved with the flood survives and is dissected in full.
fn syn_flood(syns: u32) {
    let mut cfg = cfg();
    cfg.max_flows = 4096;
    let mut r = Reassembler::new(&cfg, 0);
    let mut c = Conv::new(40000, 80, 77, 99);
    let mut conv = c.handshake();
    let exchanges = 40;
    for i in 0..exchanges {
        conv.push(c.client(format!("GET /item/{i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes()));
        conv.push(c.server(OK));
    }
    let every = (syns as usize / conv.len()).max(1);
    let mut items = Vec::new();
    let mut conv_iter = conv.iter();
    let mut ts = 1_000_000_000u64;
    for n in 0..syns {
        ts += 1_000;
        let dst = [172, 16, (n >> 16) as u8, (n >> 8) as u8];
        let syn = Packet::tcp_v4(
            ts,
            [198, 51, 100, 7],
            1024 + (n % 60_000) as u16,
            dst,
            (n & 0xff) as u16 + 1,
            tcp_flags::SYN,
            n,
            0,
            &[],
        );
        r.packet(&syn, &mut |i| items.push(i));
        if (n as usize).is_multiple_of(every) {
            if let Some(p) = conv_iter.next() {
                let mut p = p.clone();
                p.ts = ts;
                r.packet(&p.packet(), &mut |i| items.push(i));
            }
        }
        assert!(r.flows() <= cfg.max_flows as usize);
    }
    for p in conv_iter {
        r.packet(&p.packet(), &mut |i| items.push(i));
    }
    let c = r.counters().clone();
    assert_eq!(items.len(), exchanges, "{c:?}");
    assert!(items.iter().all(|i| i.exchange.error.is_none() && i.exchange.response.is_some()));
    assert!(c.flows_evicted >= u64::from(syns) - 4096, "{c:?}");
    assert_eq!(c.flow_table_full, c.flows_evicted);
    let table_bytes = cfg.max_flows as usize * Reassembler::bytes_per_idle_flow();
    assert!(table_bytes <= 4096 * 512, "flow memory bound {table_bytes}");
}

/// A million SYNs take about 4 s in a debug build on this machine, well
/// inside the suite's budget, so the test always runs.
#[test]
fn syn_flood_1m_keeps_the_table_bounded_and_the_conversation_dissected() {
    syn_flood(1_000_000);
}

mod props {
    use super::*;
    use crate::testutil::OwnedPkt;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    struct Ex {
        method: u8,
        req_body: usize,
        status: u16,
        resp_body: usize,
        chunked: bool,
    }

    fn ex() -> impl Strategy<Value = Ex> {
        (
            0u8..3,
            0usize..300,
            prop_oneof![Just(200u16), Just(404), Just(204), Just(500)],
            0usize..2000,
            any::<bool>(),
        )
            .prop_map(|(method, req_body, status, resp_body, chunked)| Ex {
                method,
                req_body,
                status,
                resp_body,
                chunked,
            })
    }

    fn messages(exs: &[Ex]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut reqs = Vec::new();
        let mut resps = Vec::new();
        for (i, e) in exs.iter().enumerate() {
            let method = ["GET", "POST", "PUT"][e.method as usize];
            let body: Vec<u8> = if e.method == 0 {
                Vec::new()
            } else {
                (0..e.req_body).map(|k| b'a' + (k % 26) as u8).collect()
            };
            let mut r = format!("{method} /r/{i}?k={i} HTTP/1.1\r\nHost: h\r\n").into_bytes();
            if e.method != 0 {
                r.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            }
            r.extend_from_slice(b"\r\n");
            r.extend_from_slice(&body);
            reqs.push(r);
            let rbody: Vec<u8> = if e.status == 204 {
                Vec::new()
            } else {
                (0..e.resp_body).map(|k| b'A' + (k % 26) as u8).collect()
            };
            let mut s = format!("HTTP/1.1 {} X\r\n", e.status).into_bytes();
            if e.status == 204 {
                s.extend_from_slice(b"\r\n");
            } else if e.chunked {
                s.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                for part in rbody.chunks(700) {
                    s.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                    s.extend_from_slice(part);
                    s.extend_from_slice(b"\r\n");
                }
                s.extend_from_slice(b"0\r\n\r\n");
            } else {
                s.extend_from_slice(format!("Content-Length: {}\r\n\r\n", rbody.len()).as_bytes());
                s.extend_from_slice(&rbody);
            }
            resps.push(s);
        }
        (reqs, resps)
    }

    /// A segment: direction, offset in its stream, bytes, and the exchange
    /// whose request must all be on the wire before it (for responses).
    #[derive(Debug, Clone)]
    struct Seg {
        client: bool,
        off: usize,
        data: Vec<u8>,
        first_ex: usize,
        last_ex: usize,
    }

    fn segments(msgs: &[Vec<u8>], client: bool, cuts: &[usize]) -> Vec<Seg> {
        let stream: Vec<u8> = msgs.concat();
        let mut owner = Vec::with_capacity(stream.len());
        for (i, m) in msgs.iter().enumerate() {
            owner.extend(std::iter::repeat_n(i, m.len()));
        }
        let mut points: Vec<usize> =
            cuts.iter().map(|c| c % stream.len().max(1)).filter(|c| *c > 0).collect();
        points.push(0);
        points.push(stream.len());
        points.sort_unstable();
        points.dedup();
        points
            .windows(2)
            .map(|w| Seg {
                client,
                off: w[0],
                data: stream[w[0]..w[1]].to_vec(),
                first_ex: owner[w[0]],
                last_ex: owner[w[1] - 1],
            })
            .collect()
    }

    /// Projection of an item that must not depend on packetisation.
    fn key(i: &Item) -> String {
        let ex = &i.exchange;
        let req = i.http_request().map(|m| {
            (
                String::from_utf8_lossy(m.method()).into_owned(),
                String::from_utf8_lossy(m.target()).into_owned(),
                m.body.clone(),
                m.body_size,
            )
        });
        let resp = i.http_response().map(|m| (m.status, m.body.len(), m.body_size, m.content_size));
        format!(
            "{req:?} {resp:?} {} {} {:?} {}",
            ex.request_size, ex.response_size, ex.error, i.index
        )
    }

    fn packets(segs: &[Seg], isn_c: u32, isn_s: u32) -> Vec<OwnedPkt> {
        Conv::new(45000, 8080, isn_c, isn_s)
            .handshake_then(segs.iter().map(|s| (s.client, s.off, &s.data[..])))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn packetisation_does_not_change_items(
            exs in proptest::collection::vec(ex(), 1..5),
            ccuts in proptest::collection::vec(any::<usize>(), 0..12),
            scuts in proptest::collection::vec(any::<usize>(), 0..12),
            order in proptest::collection::vec(any::<u32>(), 64),
            dups in proptest::collection::vec(any::<u8>(), 64),
            isn_c in any::<u32>(),
            near_wrap in any::<bool>(),
        ) {
            let isn_c = if near_wrap { u32::MAX - (isn_c % 3000) } else { isn_c };
            let isn_s = isn_c.wrapping_mul(7).wrapping_add(12345);
            let (reqs, resps) = messages(&exs);
            // Reference: one segment per message, in conversation order.
            let mut reference = Vec::new();
            for (i, (q, s)) in reqs.iter().zip(&resps).enumerate() {
                let off_q: usize = reqs[..i].iter().map(Vec::len).sum();
                let off_s: usize = resps[..i].iter().map(Vec::len).sum();
                reference.push(Seg { client: true, off: off_q, data: q.clone(), first_ex: i, last_ex: i });
                reference.push(Seg { client: false, off: off_s, data: s.clone(), first_ex: i, last_ex: i });
            }
            let (want, _) = run(&cfg(), &packets(&reference, isn_c, isn_s));
            prop_assert_eq!(want.len(), exs.len());

            let mut segs = segments(&reqs, true, &ccuts);
            segs.extend(segments(&resps, false, &scuts));
            // Duplicates (retransmissions) of some segments.
            let n = segs.len();
            for k in 0..n {
                if dups.get(k).copied().unwrap_or(0) % 4 == 0 {
                    segs.push(segs[k].clone());
                }
            }
            // Random order, except that bytes of response k only go on the
            // wire after every request segment up to exchange k (as ACKs
            // order them on a real wire).
            let mut keyed: Vec<(u32, Seg)> = segs.into_iter().enumerate().map(|(k, s)| (order.get(k % 64).copied().unwrap_or(0).wrapping_add((k as u32).wrapping_mul(2_654_435_761)), s)).collect();
            keyed.sort_by_key(|(k, _)| *k);
            let mut pending: Vec<Seg> = keyed.into_iter().map(|(_, s)| s).collect();
            let mut sent_client: Vec<bool> = Vec::new();
            let client_total = pending.iter().filter(|s| s.client).count();
            let mut schedule = Vec::new();
            while !pending.is_empty() {
                let pos = pending.iter().position(|s| {
                    s.client || pending.iter().all(|o| !(o.client && o.first_ex <= s.last_ex))
                }).unwrap_or(0);
                let s = pending.remove(pos);
                if s.client { sent_client.push(true); }
                schedule.push(s);
            }
            prop_assert_eq!(sent_client.len(), client_total);
            let (got, r) = run(&cfg(), &packets(&schedule, isn_c, isn_s));
            let want: Vec<String> = want.iter().map(key).collect();
            let got: Vec<String> = got.iter().map(key).collect();
            prop_assert_eq!(got, want);
            prop_assert_eq!(r.ooo_memory(), 0);
        }
    }
}

/// HTTP/1.1 `Upgrade: h2c` answered `101`: the HTTP/1.1 exchange is an
/// item, and the upgraded request is HTTP/2 stream 1 with its response;
/// the client's preface may even be parsed before the 101.
#[test]
fn h2c_upgrade_hands_the_flow_to_http2() {
    fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
        v.extend_from_slice(&stream.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }
    let upgrade = b"GET /robots.txt HTTP/1.1\r\nHost: example.org\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    let switching =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    let preface = [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), frame(4, 0, 0, &[])].concat();
    let server_h2 =
        [frame(4, 0, 0, &[]), frame(1, 4, 1, &[0x88]), frame(0, 1, 1, b"User-agent: *")].concat();
    let next =
        frame(1, 5, 3, &[0x82, 0x86, 0x44, 0x04, b'/', b'x', b'y', b'z', 0x41, 0x02, b'e', b'x']);
    for preface_first in [false, true] {
        let mut c = Conv::new(40001, 8080, 10, 20);
        let mut pkts = c.handshake();
        pkts.push(c.client(upgrade));
        if preface_first {
            pkts.push(c.client(&preface));
            pkts.push(c.server(&[switching.to_vec(), server_h2.clone()].concat()));
        } else {
            pkts.push(c.server(&[switching.to_vec(), server_h2.clone()].concat()));
            pkts.push(c.client(&preface));
        }
        pkts.push(c.client(&next));
        pkts.push(c.server(&frame(1, 5, 3, &[0x8d])));
        let (items, _) = run(&cfg(), &pkts);
        let js: Vec<serde_json::Value> =
            items.iter().map(|i| i.to_json(&NodeInfo::default())).collect();
        assert_eq!(js.len(), 3, "{js:#?}");
        assert_eq!(
            (js[0]["protocol"]["version"].as_str(), js[0]["response"]["status"].as_u64()),
            (Some("1.1"), Some(101))
        );
        assert_eq!(
            (
                js[1]["protocol"]["version"].as_str(),
                js[1]["request"]["url"].as_str(),
                js[1]["request"]["streamId"].as_u64()
            ),
            (Some("2"), Some("/robots.txt"), Some(1))
        );
        assert_eq!(
            (js[1]["request"]["headers"]["host"].as_str(), js[1]["response"]["status"].as_u64()),
            (Some("example.org"), Some(200))
        );
        assert_eq!(js[1]["response"]["content"]["text"], "User-agent: *");
        assert_eq!(
            (js[2]["request"]["url"].as_str(), js[2]["response"]["status"].as_u64()),
            (Some("/xyz"), Some(404))
        );
        assert!(js.iter().all(|j| j["error"].is_null()), "{js:#?}");
    }
}
