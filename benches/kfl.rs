//! KFL filter evaluation on Rust items, one core: items/s for compiled
//! filters (issue 29's goals: ≥ 10 M items/s for `http && status_code >=
//! 500`, ≥ 2 M for a 6-clause query).
//!
//! The items are generated shop traffic (`dataplane::synth`: HTTP/1.1
//! keep-alive, 89 % 200, 6 % 404, 3 % 500, 2 % 503, eight hosts and paths,
//! 5 % DNS) dissected by the real reassembly stage, so header blocks,
//! spans and bodies are what a core hands over. Each iteration evaluates
//! one filter on every item; throughput is items per second.
//!
//! Groups: `kfl2` (the four queries of the issue, plus a miss on the
//! protocol flag), `kfl1` (the same checks in KFL1), `compile`.
//!
//! `cargo bench --bench kfl [-- --quick]`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dataplane::dissect::Dissector;
use dataplane::synth::traffic::{SizeMix, Traffic, TrafficSpec};
use dataplane::wire::LinkType;
use dataplane::{parse, CoreCounters, Frame, PacketHandler};
use reassembly::kfl::Filter;
use reassembly::{Item, NodeInfo, ReassemblyConfig};

fn items() -> Vec<Item> {
    let spec =
        TrafficSpec { exchanges: 20_000, mix: SizeMix::Api, seed: 29, ..TrafficSpec::default() };
    let (pkts, _) = Traffic::collect_all(spec);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(1 << 20);
    let mut d = Dissector::new(&ReassemblyConfig::default(), 0, tx);
    let mut counters = CoreCounters::default();
    for p in &pkts {
        let frame = Frame {
            data: &p.data,
            wire_len: p.data.len() as u32,
            ts_ns: p.ts_ns,
            link: LinkType::Ethernet,
        };
        if let Ok(meta) = parse(LinkType::Ethernet, &p.data, frame.wire_len) {
            d.packet(&frame, &meta, &mut counters);
        }
    }
    d.finish(&mut counters);
    drop(d);
    rx.into_iter().collect()
}

const KFL2: &[(&str, &str)] = &[
    ("http-status", "http && status_code >= 500"),
    ("header", "request.headers[\"host\"] == \"payments.shop.svc\""),
    ("regex", "path.matches(\"^/v[0-9]+/items\")"),
    (
        "six-clauses",
        "http && method == \"GET\" && status_code >= 200 && path.startsWith(\"/v1\") \
         && request.headers[\"host\"] != \"cdn.shop.example\" && elapsed_time < 1000000",
    ),
    (
        // Two clauses cel evaluates (a list literal and `in`, a call of
        // `size`), four it does not (see BENCHMARKS.md).
        "six-clauses-cel",
        "http && method in [\"GET\", \"HEAD\"] && status_code >= 200 && size(path) > 3 \
         && request.headers[\"host\"] != \"cdn.shop.example\" && elapsed_time < 1000000",
    ),
    ("flag-miss", "dns && dns_questions.exists(q, q.endsWith(\".svc\"))"),
];

const KFL1: &[(&str, &str)] = &[
    ("http-status", "http and response.status >= 500"),
    ("header", "request.headers[\"Host\"] == \"payments.shop.svc\""),
    ("regex", "request.path == r\"^/v[0-9]+/items\""),
];

fn evaluate(c: &mut Criterion) {
    let items = items();
    let node = NodeInfo { ip: "10.0.0.1".into(), name: "bench".into() };
    for (group, queries) in [("kfl2", KFL2), ("kfl1", KFL1)] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(items.len() as u64));
        for (name, q) in queries {
            let f = Filter::compile(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            let hits = items.iter().filter(|i| f.matches(i, &node)).count();
            eprintln!("{group}/{name}: {hits} of {} items match {q:?}", items.len());
            g.bench_function(*name, |b| {
                b.iter(|| {
                    let mut n = 0usize;
                    for i in &items {
                        n += usize::from(f.matches(black_box(i), &node));
                    }
                    black_box(n)
                })
            });
        }
        g.finish();
    }
}

fn compile(c: &mut Criterion) {
    let mut g = c.benchmark_group("compile");
    g.throughput(Throughput::Elements(1));
    g.bench_function("six-clauses", |b| b.iter(|| Filter::compile(black_box(KFL2[3].1))));
    g.finish();
}

criterion_group!(benches, evaluate, compile);
criterion_main!(benches);
