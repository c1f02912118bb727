//! Reassembly and dissection per core: frames already in memory are
//! decoded, reassembled and dissected into items by one dataplane core's
//! handler (`dataplane::dissect::Dissector`), the way a core runs them
//! after a receive burst.
//!
//! - `http-mix`: generated HTTP/1.1 keep-alive traffic with a realistic
//!   spread of response sizes (70 % API calls under 4 KiB … 1 % downloads
//!   up to 8 MiB), 10 % chunked, 20 % POSTs, 5 % DNS, 256 connections
//!   interleaved packet by packet. Throughput in bytes (Gbps = GB/s × 8).
//! - `http-api`: the same with API-sized responses only: items/s is the
//!   figure of merit there.
//! - `corpus`: the HTTP/1.x and DNS captures of `../shared/corpus` that
//!   have expected transactions, concatenated (skipped when absent).
//! - `http2`, `redis`, `kafka`, `postgresql`, `amqp`, `mysql`, `mongodb`,
//!   `tls`: generated conversations of each protocol
//!   (`reassembly::conversations`: HTTP/2 streams interleaved with gRPC
//!   among them, pipelined Redis commands and pub/sub, Kafka Produce/Fetch,
//!   PostgreSQL simple and extended queries, AMQP publishes and deliveries
//!   on interleaved channels, MySQL result sets and prepared statements,
//!   MongoDB OP_MSG commands after a legacy hello, a TLS 1.2 handshake
//!   then application data: two items per connection), 128
//!   connections interleaved message by message, messages cut at a
//!   1448-byte MSS. Bytes and items per second.
//!
//! Before the timed runs it measures the resident memory of one million
//! idle tracked flows (SYNs to distinct ports) and prints bytes per flow.
//!
//! `cargo bench --bench reassembly [-- --quick]`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, Criterion, Throughput};
use dataplane::dissect::{CountingSink, Dissector};
use dataplane::source::file::{FileSource, Input, Pace};
use dataplane::source::{PacketSource, Poll};
use dataplane::synth::traffic::{SizeMix, Traffic, TrafficSpec};
use dataplane::wire::LinkType;
use dataplane::{parse, CoreCounters, Frame, PacketHandler};
use reassembly::{AppProtocol, Packet, Reassembler, ReassemblyConfig};

/// A capture held in memory: (timestamp, link, bytes).
type Frames = Vec<(u64, LinkType, Vec<u8>)>;

/// One dataplane core's decode + reassembly + dissection stage, kept
/// across iterations as a core keeps it: the flow table stays allocated and
/// warm. Each pass replays the frames an hour later than the last, so every
/// connection is new and the previous pass's flows expire.
struct Core {
    dissector: Dissector<CountingSink>,
    counters: CoreCounters,
    offset_ns: u64,
}

impl Core {
    fn new(cfg: &ReassemblyConfig) -> Self {
        Core {
            dissector: Dissector::new(cfg, 0, CountingSink),
            counters: CoreCounters::default(),
            offset_ns: 0,
        }
    }

    /// Runs every frame through the stage; returns the items produced.
    fn pass(&mut self, frames: &Frames) -> u64 {
        let before = self.counters.items;
        let mut last = 0;
        for (ts, link, data) in frames {
            last = *ts + self.offset_ns;
            let frame = Frame { data, wire_len: data.len() as u32, ts_ns: last, link: *link };
            if let Ok(meta) = parse(*link, data, data.len() as u32) {
                self.dissector.packet(&frame, &meta, &mut self.counters);
            }
        }
        self.offset_ns = last + 3_600_000_000_000 - frames.first().map_or(0, |f| f.0);
        self.counters.items - before
    }
}

/// A fresh core, the frames, and what is left at the end of the capture.
fn run(frames: &Frames, cfg: &ReassemblyConfig) -> u64 {
    let mut core = Core::new(cfg);
    core.pass(frames);
    core.dissector.finish(&mut core.counters);
    core.counters.items
}

fn generated(mix: SizeMix, exchanges: u32) -> (Frames, u64, u64) {
    let spec = TrafficSpec { exchanges, mix, seed: 7, ..TrafficSpec::default() };
    let (pkts, summary) = Traffic::collect_all(spec);
    let frames: Frames = pkts.into_iter().map(|p| (p.ts_ns, LinkType::Ethernet, p.data)).collect();
    (frames, summary.bytes, summary.http_exchanges + summary.dns_exchanges)
}

/// Generated conversations of `protocol` over `flows` connections, their
/// messages interleaved across connections: (frames, payload bytes on
/// the wire incl. headers, items).
fn protocol_frames(protocol: AppProtocol, flows: u16, exchanges: usize) -> (Frames, u64, u64) {
    use dataplane::synth::tcp4;
    const MSS: usize = 1448;
    const ACK: u8 = 0x10;
    const PSH_ACK: u8 = 0x18;
    let convs: Vec<_> = (0..flows)
        .map(|i| reassembly::conversations::generate(protocol, u64::from(i), exchanges, 4))
        .collect();
    let items: u64 = convs.iter().map(|c| c.items as u64).sum();
    let mut frames = Frames::new();
    let mut ts = 1_000_000_000u64;
    let mut push = |frames: &mut Frames, f: Vec<u8>| {
        ts += 1_000;
        frames.push((ts, LinkType::Ethernet, f));
    };
    let ends = |i: u16| ([10, 7, (i >> 8) as u8, i as u8], [10, 8, 0, 1], 20_000 + i);
    let mut seq = vec![(1_000u32, 500_000u32); usize::from(flows)];
    for i in 0..flows {
        let (c, s, cp) = ends(i);
        let sp = convs[usize::from(i)].server_port;
        let (cs, ss) = seq[usize::from(i)];
        push(&mut frames, tcp4(c, s, cp, sp, cs, 0, 0x02, &[]));
        push(&mut frames, tcp4(s, c, sp, cp, ss, cs + 1, 0x12, &[]));
        push(&mut frames, tcp4(c, s, cp, sp, cs + 1, ss + 1, ACK, &[]));
        seq[usize::from(i)] = (cs + 1, ss + 1);
    }
    let most = convs.iter().map(|c| c.msgs.len()).max().unwrap_or(0);
    for k in 0..most {
        for i in 0..flows {
            let Some(m) = convs[usize::from(i)].msgs.get(k) else { continue };
            let (c, s, cp) = ends(i);
            let sp = convs[usize::from(i)].server_port;
            for part in m.data.chunks(MSS) {
                let (cs, ss) = &mut seq[usize::from(i)];
                let f = if m.from_client {
                    tcp4(c, s, cp, sp, *cs, *ss, PSH_ACK, part)
                } else {
                    tcp4(s, c, sp, cp, *ss, *cs, PSH_ACK, part)
                };
                if m.from_client {
                    *cs = cs.wrapping_add(part.len() as u32);
                } else {
                    *ss = ss.wrapping_add(part.len() as u32);
                }
                push(&mut frames, f);
            }
        }
    }
    for i in 0..flows {
        let (c, s, cp) = ends(i);
        let sp = convs[usize::from(i)].server_port;
        let (cs, ss) = seq[usize::from(i)];
        push(&mut frames, tcp4(c, s, cp, sp, cs, ss, 0x11, &[]));
        push(&mut frames, tcp4(s, c, sp, cp, ss, cs + 1, 0x11, &[]));
        push(&mut frames, tcp4(c, s, cp, sp, cs + 1, ss + 1, ACK, &[]));
    }
    let bytes = frames.iter().map(|(_, _, f)| f.len() as u64).sum();
    (frames, bytes, items)
}

fn corpus() -> Option<(Frames, u64)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("expected"))
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            (n.ends_with(".http.jsonl") || n.ends_with(".dns.jsonl"))
                && !n.contains("http2")
                && !n.contains("grpc")
        })
        .filter_map(|n| Some(n.rsplit_once('.')?.0.rsplit_once('.')?.0.to_string()))
        .collect();
    names.sort();
    names.dedup();
    let mut frames = Frames::new();
    let mut bytes = 0;
    // Each capture starts where the last ended, so timers see one timeline.
    let mut offset = 0u64;
    for name in names {
        let mut src =
            FileSource::open(Input::Path(dir.join("pcaps").join(name)), Pace::Fast, 1).ok()?;
        let base = offset;
        let mut first = None;
        loop {
            let p = src
                .poll(&mut |f: Frame<'_>| {
                    let t0 = *first.get_or_insert(f.ts_ns);
                    offset = offset.max(base + (f.ts_ns - t0.min(f.ts_ns)) + 1);
                    bytes += u64::from(f.wire_len);
                    frames.push((base + (f.ts_ns - t0.min(f.ts_ns)), f.link, f.data.to_vec()));
                })
                .ok()?;
            if p == Poll::End {
                break;
            }
        }
        offset += 600_000_000_000; // ten minutes between captures: all flows expire
    }
    Some((frames, bytes))
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

/// Resident bytes per idle tracked flow: one million SYNs to distinct
/// ports into a table sized for them.
fn idle_flow_memory() {
    const FLOWS: u32 = 1_000_000;
    let cfg = ReassemblyConfig { max_flows: FLOWS, ..ReassemblyConfig::default() };
    let before = rss_bytes();
    let mut r = Reassembler::new(&cfg, 0);
    let mut sink = |_| {};
    for i in 0..FLOWS {
        let src = [10, 3, (i >> 16) as u8, (i >> 8) as u8];
        let p = Packet::tcp_v4(
            1_000_000_000 + u64::from(i),
            src,
            1024 + (i & 0xff) as u16,
            [10, 4, 0, 1],
            443,
            0x02,
            i,
            0,
            &[],
        );
        r.packet(&p, &mut sink);
    }
    let after = rss_bytes();
    assert_eq!(r.flows(), FLOWS as usize);
    println!(
        "idle flows: {} tracked, {:.0} resident bytes per flow (table slot {} bytes)",
        r.flows(),
        (after - before) as f64 / f64::from(FLOWS),
        Reassembler::bytes_per_idle_flow()
    );
    black_box(r);
}

fn benches(c: &mut Criterion) {
    let cfg = ReassemblyConfig::default();
    let mut g = c.benchmark_group("reassembly+dissection 1 core");
    g.sample_size(10);
    for (name, mix, exchanges) in
        [("http-mix", SizeMix::Mixed, 2_000), ("http-api", SizeMix::Api, 40_000)]
    {
        let (frames, bytes, items) = generated(mix, exchanges);
        // Every exchange must come out as an item, or the figure is wrong.
        assert_eq!(run(&frames, &cfg), items, "{name}: items");
        println!("{name}: {} frames, {} bytes, {} items per iteration", frames.len(), bytes, items);
        // Every item a pass produces must be an exchange of the capture
        // (connections all close with FINs, so none waits for a timeout).
        let mut core = Core::new(&cfg);
        assert_eq!(core.pass(&frames), items, "{name}: items of a warm pass");
        g.throughput(Throughput::BytesDecimal(bytes));
        g.bench_function(format!("{name} bytes"), |b| b.iter(|| core.pass(black_box(&frames))));
        g.throughput(Throughput::Elements(items));
        g.bench_function(format!("{name} items"), |b| b.iter(|| core.pass(black_box(&frames))));
    }
    for protocol in [
        AppProtocol::Http2,
        AppProtocol::Redis,
        AppProtocol::Kafka,
        AppProtocol::Postgresql,
        AppProtocol::Amqp,
        AppProtocol::Mysql,
        AppProtocol::Mongodb,
        AppProtocol::Tls,
        AppProtocol::Websocket,
    ] {
        let name = protocol.name();
        let (frames, bytes, items) = protocol_frames(protocol, 128, 40);
        // Every generated exchange must come out as an item.
        assert_eq!(run(&frames, &cfg), items, "{name}: items");
        println!("{name}: {} frames, {bytes} bytes, {items} items per iteration", frames.len());
        g.throughput(Throughput::BytesDecimal(bytes));
        g.bench_function(format!("{name} bytes"), |b| b.iter(|| run(black_box(&frames), &cfg)));
        g.throughput(Throughput::Elements(items));
        g.bench_function(format!("{name} items"), |b| b.iter(|| run(black_box(&frames), &cfg)));
    }
    match corpus() {
        Some((frames, bytes)) => {
            let items = run(&frames, &cfg);
            println!("corpus: {} frames, {bytes} bytes, {items} items per iteration", frames.len());
            g.throughput(Throughput::BytesDecimal(bytes));
            let mut core = Core::new(&cfg);
            g.bench_function("corpus bytes", |b| b.iter(|| core.pass(black_box(&frames))));
        }
        None => println!("note: ../shared/corpus is absent; the corpus row is skipped"),
    }
    g.finish();
}

criterion_group!(group, benches);

fn main() {
    idle_flow_memory();
    group();
    Criterion::default().configure_from_args().final_summary();
}
