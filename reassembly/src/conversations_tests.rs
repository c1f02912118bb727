//! Generated conversations of every TCP protocol through the whole
//! reassembler: one segment per message yields the expected items without
//! errors, and any packetisation (segments cut anywhere, reordered within
//! what a wire allows, duplicated) yields the same items.

use super::*;
use crate::item::{Item, NodeInfo};
use crate::testutil::{run, Conv, OwnedPkt};
use crate::ReassemblyConfig;

const PROTOCOLS: [AppProtocol; 9] = [
    AppProtocol::Http2,
    AppProtocol::Redis,
    AppProtocol::Kafka,
    AppProtocol::Postgresql,
    AppProtocol::Amqp,
    AppProtocol::Mysql,
    AppProtocol::Mongodb,
    AppProtocol::Tls,
    AppProtocol::Websocket,
];

#[derive(Debug, Clone)]
struct Seg {
    client: bool,
    off: usize,
    data: Vec<u8>,
    /// Bytes of the other direction that must be on the wire first.
    after: usize,
}

/// Wire order, one segment per message.
fn reference(c: &Conversation) -> Vec<Seg> {
    let (mut co, mut so) = (0, 0);
    c.msgs
        .iter()
        .map(|m| {
            let off = if m.from_client { &mut co } else { &mut so };
            let s = Seg { client: m.from_client, off: *off, data: m.data.clone(), after: m.after };
            *off += m.data.len();
            s
        })
        .collect()
}

/// One direction's bytes cut at `cuts` (positions taken modulo the length).
fn cut(c: &Conversation, client: bool, cuts: &[usize]) -> Vec<Seg> {
    let msgs: Vec<&Msg> = c.msgs.iter().filter(|m| m.from_client == client).collect();
    let stream: Vec<u8> = msgs.iter().flat_map(|m| m.data.iter().copied()).collect();
    if stream.is_empty() {
        return Vec::new();
    }
    // What each byte waits for: the message it belongs to.
    let mut needs = Vec::with_capacity(stream.len());
    for m in &msgs {
        needs.extend(std::iter::repeat_n(m.after, m.data.len()));
    }
    // Message boundaries are always cuts: a segment never spans messages
    // that the other direction's data separates on a real wire.
    let bounds = msgs.iter().scan(0, |at, m| {
        *at += m.data.len();
        Some(*at)
    });
    let mut points: Vec<usize> =
        cuts.iter().map(|c| c % stream.len()).chain([0, stream.len()]).chain(bounds).collect();
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| Seg {
            client,
            off: w[0],
            data: stream[w[0]..w[1]].to_vec(),
            after: needs[w[0]..w[1]].iter().copied().max().unwrap_or(0),
        })
        .collect()
}

fn packets(segs: &[Seg], port: u16, isn_c: u32, isn_s: u32) -> Vec<OwnedPkt> {
    Conv::new(45000, port, isn_c, isn_s)
        .handshake_then(segs.iter().map(|s| (s.client, s.off, &s.data[..])))
}

/// What must not depend on packetisation: the item's JSON without times,
/// ids and its index (HTTP/2 streams and AMQP channels complete in an
/// order that depends on how the two directions interleave).
fn key(i: &Item) -> String {
    let mut j = i.to_json(&NodeInfo::default());
    if let Some(o) = j.as_object_mut() {
        for k in ["timestamp", "startTime", "elapsedTime", "id", "index"] {
            o.remove(k);
        }
    }
    j.to_string()
}

fn keys(items: &[Item]) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(key).collect();
    v.sort();
    v
}

#[test]
fn every_generated_conversation_yields_its_items_without_errors() {
    let cfg = ReassemblyConfig::default();
    for p in PROTOCOLS {
        for seed in 0..20 {
            let c = generate(p, seed, 1 + seed as usize % 9, 1 + seed as usize % 5);
            let (items, r) = run(&cfg, &packets(&reference(&c), c.server_port, 1000, 9000));
            assert_eq!(
                items.len(),
                c.items,
                "{} seed {seed}: {:#?}",
                p.name(),
                items.iter().map(key).collect::<Vec<_>>()
            );
            for i in &items {
                assert!(i.exchange.error.is_none(), "{} seed {seed}: {}", p.name(), key(i));
                let want = match p {
                    AppProtocol::Http2 => {
                        matches!(i.protocol, AppProtocol::Http2 | AppProtocol::Grpc)
                    }
                    // The upgrade is an HTTP item.
                    AppProtocol::Websocket => {
                        matches!(i.protocol, AppProtocol::Websocket | AppProtocol::Http)
                    }
                    _ => i.protocol == p,
                };
                assert!(want, "{} seed {seed}: item of {}", p.name(), i.protocol.name());
            }
            assert_eq!(
                r.counters().dissection_errors.total(),
                0,
                "{} seed {seed}: {:?}",
                p.name(),
                r.counters().dissection_errors
            );
        }
    }
}

#[test]
fn http2_conversation_has_grpc_streaming_and_interleaving() {
    let c = generate(AppProtocol::Http2, 3, 12, 4);
    let (items, _) =
        run(&ReassemblyConfig::default(), &packets(&reference(&c), c.server_port, 1, 2));
    let grpc: Vec<_> = items.iter().filter(|i| i.protocol == AppProtocol::Grpc).collect();
    assert!(!grpc.is_empty());
    let j = grpc[0].to_json(&NodeInfo::default());
    assert_eq!(j["protocol"]["name"], "grpc");
    assert!(j["request"]["grpc"]["service"] == "gen.Svc");
    assert!(j["response"]["grpc"]["status"].is_u64());
    // The authority came from the dynamic table on all but the first.
    assert!(items.iter().all(
        |i| i.to_json(&NodeInfo::default())["request"]["headers"]["host"] == "api.example:8443"
    ));
}

mod packetisation {
    use super::*;
    use proptest::prelude::*;

    #[allow(clippy::too_many_arguments)]
    fn check(
        p: AppProtocol,
        seed: u64,
        exchanges: usize,
        depth: usize,
        ccuts: &[usize],
        scuts: &[usize],
        order: &[u32],
        dups: &[u8],
        isn_c: u32,
    ) -> Result<(), TestCaseError> {
        let cfg = ReassemblyConfig::default();
        let c = generate(p, seed, exchanges, depth);
        let isn_s = isn_c.wrapping_mul(7).wrapping_add(12345);
        let (want, _) = run(&cfg, &packets(&reference(&c), c.server_port, isn_c, isn_s));
        prop_assert_eq!(want.len(), c.items);
        let mut segs = cut(&c, true, ccuts);
        segs.extend(cut(&c, false, scuts));
        let n = segs.len();
        for k in 0..n {
            if dups.get(k).copied().unwrap_or(1) % 5 == 0 {
                segs.push(segs[k].clone());
            }
        }
        let mut keyed: Vec<(u32, Seg)> = segs
            .into_iter()
            .enumerate()
            .map(|(k, s)| {
                (
                    order
                        .get(k % order.len().max(1))
                        .copied()
                        .unwrap_or(0)
                        .wrapping_add((k as u32).wrapping_mul(2_654_435_761)),
                    s,
                )
            })
            .collect();
        keyed.sort_by_key(|(k, _)| *k);
        let mut pending: Vec<Seg> = keyed.into_iter().map(|(_, s)| s).collect();
        // A segment goes on the wire only once every segment of the other
        // direction before the bytes it answers (or waited for) has.
        let mut schedule = Vec::new();
        while !pending.is_empty() {
            let pos = pending
                .iter()
                .position(|s| !pending.iter().any(|o| o.client != s.client && o.off < s.after))
                .unwrap_or(0);
            schedule.push(pending.remove(pos));
        }
        let (got, r) = run(&cfg, &packets(&schedule, c.server_port, isn_c, isn_s));
        prop_assert_eq!(keys(&got), keys(&want), "{}", p.name());
        prop_assert_eq!(r.ooo_memory(), 0);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn packetisation_does_not_change_items(
            proto in 0usize..PROTOCOLS.len(),
            seed in any::<u64>(),
            exchanges in 1usize..7,
            depth in 1usize..5,
            ccuts in proptest::collection::vec(any::<usize>(), 0..16),
            scuts in proptest::collection::vec(any::<usize>(), 0..16),
            order in proptest::collection::vec(any::<u32>(), 64),
            dups in proptest::collection::vec(any::<u8>(), 64),
            isn_c in any::<u32>(),
        ) {
            check(PROTOCOLS[proto], seed, exchanges, depth, &ccuts, &scuts, &order, &dups, isn_c)?;
        }
    }

    /// Every protocol, a few fixed packetisations (the proptest above
    /// draws the protocol at random).
    #[test]
    fn each_protocol_survives_fine_cuts_and_reordering() {
        for (k, p) in PROTOCOLS.into_iter().enumerate() {
            let cuts: Vec<usize> = (0..40).map(|i| i * 97 + k).collect();
            let order: Vec<u32> =
                (0..64u32).map(|i| i.wrapping_mul(2_246_822_519).rotate_left(k as u32)).collect();
            let dups: Vec<u8> = (0..64).map(|i| i as u8).collect();
            check(p, 11 + k as u64, 6, 3, &cuts, &cuts, &order, &dups, u32::MAX - 500)
                .unwrap_or_else(|e| panic!("{}: {e}", p.name()));
        }
    }
}
