//! What packet retention (`dataplane::retention`) costs a dataplane core:
//! the core's whole stage after a receive burst (L2–L4 decode,
//! reassembly, dissection into items, as `benches/reassembly.rs` in the
//! workspace root times it) over generated HTTP/1.1 traffic
//! (`dataplane::synth::traffic`: `http-api`, responses of 50 B–4 KiB, and
//! `http-mix`, the realistic spread up to 8 MiB), with retention
//!
//! - `off`: no writer (`dataplane.retention_bytes: 0`);
//! - `idle`: a writer, but no agent uses `pcap.*` (the default until one
//!   does): one flag read per packet;
//! - `on`: every packet copied into the core's 32 MiB ring.
//!
//! It lives in the dataplane crate so that a before/after comparison
//! builds only the dataplane and reassembly crates.
//! `cargo bench -p dataplane --bench retention [-- --quick]`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::config::{DataplaneConfig, DEFAULT_RETENTION_BYTES};
use dataplane::dissect::{CountingSink, Dissector};
use dataplane::retention::Retention;
use dataplane::synth::traffic::{SizeMix, Traffic, TrafficSpec};
use dataplane::wire::LinkType;
use dataplane::{parse, CoreCounters, Frame, PacketHandler};
use reassembly::ReassemblyConfig;

/// One core's stage, kept warm across passes; each pass replays the frames
/// an hour later, so every connection is new.
struct Core {
    dissector: Dissector<CountingSink>,
    counters: CoreCounters,
    offset_ns: u64,
}

impl Core {
    /// `retention`: `None` off, `Some(false)` idle, `Some(true)` on.
    fn new(retention: Option<bool>) -> Core {
        let cfg = ReassemblyConfig::default();
        let mut dissector = Dissector::new(&cfg, 0, CountingSink);
        if let Some(active) = retention {
            let dp =
                DataplaneConfig { retention_bytes: DEFAULT_RETENTION_BYTES, ..Default::default() };
            let r = Retention::new(dp.retention(cfg.fragment_timeout_ms), 1);
            if active {
                r.activate();
            }
            dissector = dissector.with_retention(r.writer(0));
        }
        Core { dissector, counters: CoreCounters::default(), offset_ns: 0 }
    }

    fn pass(&mut self, frames: &[(u64, Vec<u8>)]) -> u64 {
        let before = self.counters.items;
        let mut last = 0;
        for (ts, data) in frames {
            last = *ts + self.offset_ns;
            let frame =
                Frame { data, wire_len: data.len() as u32, ts_ns: last, link: LinkType::Ethernet };
            if let Ok(meta) = parse(LinkType::Ethernet, data, data.len() as u32) {
                self.dissector.packet(&frame, &meta, &mut self.counters);
            }
        }
        self.offset_ns = last + 3_600_000_000_000 - frames.first().map_or(0, |f| f.0);
        self.counters.items - before
    }
}

fn retention(c: &mut Criterion) {
    let mut g = c.benchmark_group("retention");
    g.sample_size(20);
    for (name, mix, exchanges) in
        [("http-api", SizeMix::Api, 40_000), ("http-mix", SizeMix::Mixed, 2_000)]
    {
        let spec = TrafficSpec { exchanges, mix, seed: 7, ..TrafficSpec::default() };
        let (pkts, summary) = Traffic::collect_all(spec);
        let frames: Vec<(u64, Vec<u8>)> = pkts.into_iter().map(|p| (p.ts_ns, p.data)).collect();
        println!("{name}: {} frames, {} bytes per iteration", frames.len(), summary.bytes);
        g.throughput(Throughput::Elements(frames.len() as u64));
        for (mode, r) in [("off", None), ("idle", Some(false)), ("on", Some(true))] {
            let mut core = Core::new(r);
            g.bench_function(format!("{name} {mode}"), |b| {
                b.iter(|| core.pass(black_box(&frames)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, retention);
criterion_main!(benches);
