//! Agent runtime benchmark: ns per item and items/s for a count-per-host
//! agent (`counts[data.request.headers.host]++`) on hand-built HTTP items,
//! inline in one runtime and through the script pool's ring; the same
//! items with no agent hook (the agent-less pipeline) against dropping them
//! (no scripting at all); and the cost of each level an agent reads
//! (`agents/levels`). Hook latency quantiles are printed after the inline
//! run. `count-per-host+webhook` adds a fire-and-forget `vendor.webhook`
//! per item, its effects answered by a local executor on another thread
//! (the runtime's side of an I/O helper: building the effect, the queue,
//! the result object; the delivery itself is the control plane's).
//! `count-per-host+kfl.match` adds `kfl.match("http && status_code >= 500",
//! data)` per item: the query from the runtime's cache, evaluated on the
//! Rust item.
//!
//! `cargo bench --bench agents`

use std::time::{Duration, Instant};

/// The skua binary's allocator, so items are freed as they are in skua.
#[global_allocator]
static ALLOCATOR: dataplane::alloc::Allocator = dataplane::alloc::Allocator;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use reassembly::NodeInfo;
use scripting::testkit::{host_items, runtime_with, COUNT_PER_HOST};
use scripting::{
    AgentRuntime, CallSite, ConsoleSink, EffectSink, Hook, PoolOptions, ScriptPool, ScriptingConfig,
};

const BATCH: usize = 4096;

const NO_ITEM_HOOK: &str = "function onHubAction(action, object) {}";

const COUNT_PER_HOST_WEBHOOK: &str = r#"
var counts = {};
for (var i = 0; i < 16; i++) counts["host-" + i + ".example.com"] = 0;
function onItemCaptured(data) {
  counts[data.request.headers.host]++;
  vendor.webhook("POST", "http://127.0.0.1:9/hook", data.request.path);
}
"#;

/// count-per-host that also counts server errors with `kfl.match`.
const COUNT_PER_HOST_KFL: &str = r#"
var counts = {};
var errors = 0;
for (var i = 0; i < 16; i++) counts["host-" + i + ".example.com"] = 0;
function onItemCaptured(data) {
  counts[data.request.headers.host]++;
  if (kfl.match("http && status_code >= 500", data)) errors++;
}
"#;

/// A runtime whose effects a local executor thread answers.
fn runtime_with_executor(source: &str) -> (AgentRuntime, std::thread::JoinHandle<()>) {
    let _ = dataplane::alloc::transparent_huge_pages(false);
    let config = ScriptingConfig::default();
    let (console, _console_rx) = ConsoleSink::new(1024);
    let (effects, effects_rx) = EffectSink::new(config.effect_queue as usize);
    let dir = std::env::temp_dir().join("skua-bench-agents");
    let (executor, executed) = scripting::LocalExecutor::new(effects_rx, dir)
        .spawn_streaming()
        .expect("starting the effect thread");
    // What it executed is not kept.
    std::thread::spawn(move || executed.into_iter().for_each(drop));
    let mut rt = AgentRuntime::new(scripting::RuntimeOptions {
        id: scripting::RuntimeId(0),
        node: NodeInfo { ip: "127.0.0.1".into(), name: "bench".into() },
        config,
        console,
        effects,
        clock: scripting::Clock::System,
    })
    .expect("runtime");
    rt.load_agent("agent", source).expect("agent loads");
    (rt, executor)
}

fn runtime(source: &str) -> AgentRuntime {
    // The heap as skua runs it: without transparent huge pages
    // (`dataplane.transparent_huge_pages`).
    let _ = dataplane::alloc::transparent_huge_pages(false);
    runtime_with(source).expect("runtime with the agent loaded")
}

fn inline(c: &mut Criterion) {
    let template = host_items(BATCH);
    let mut g = c.benchmark_group("agents/inline");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut rt = runtime(COUNT_PER_HOST);
    g.bench_function("count-per-host", |b| {
        b.iter_batched(
            || template.clone(),
            |batch| rt.on_items_captured(batch),
            BatchSize::LargeInput,
        )
    });
    if let Some(s) = rt.stats().into_iter().find(|s| s.site == CallSite::Hook(Hook::ItemCaptured)) {
        eprintln!(
            "onItemCaptured latency over {} calls: p50 {} ns, p99 {} ns, p999 {} ns, mean {} ns",
            s.calls,
            s.p50_ns,
            s.p99_ns,
            s.p999_ns,
            s.sum_ns / s.calls.max(1)
        );
    }
    // The bundled example (`skua run`'s default agent): it also checks
    // `data.protocol.name` and falls back from `Host` to `host`.
    let mut example = runtime(include_str!("../examples/count-per-host.js"));
    g.bench_function("examples/count-per-host.js", |b| {
        b.iter_batched(
            || template.clone(),
            |batch| example.on_items_captured(batch),
            BatchSize::LargeInput,
        )
    });
    // `kfl.match` per item: its cost is this row minus count-per-host's.
    let mut filtering = runtime(COUNT_PER_HOST_KFL);
    g.bench_function("count-per-host+kfl.match", |b| {
        b.iter_batched(
            || template.clone(),
            |batch| filtering.on_items_captured(batch),
            BatchSize::LargeInput,
        )
    });
    let c = filtering.counters();
    eprintln!(
        "count-per-host+kfl.match: {} items, {} compiles, {} cache hits",
        c.items, c.kfl_compiles, c.kfl_cache_hits
    );
    // Fire-and-forget: one webhook per item, the result ignored.
    let (mut posting, answered) = runtime_with_executor(COUNT_PER_HOST_WEBHOOK);
    g.bench_function("count-per-host+webhook", |b| {
        b.iter_batched(
            || template.clone(),
            |batch| {
                posting.on_items_captured(batch);
                posting.poll_completions();
            },
            BatchSize::LargeInput,
        )
    });
    let c = posting.counters();
    eprintln!(
        "count-per-host+webhook: {} items, {} webhooks submitted, {} refused (queue full), {} refused (pending), {} result waits",
        c.items, c.effects_submitted, c.effects_rejected_full, c.effects_rejected_pending, c.result_waits
    );
    drop(posting);
    let _ = answered.join();
    let mut idle = runtime(NO_ITEM_HOOK);
    g.bench_function("no-item-hook", |b| {
        b.iter_batched(
            || template.clone(),
            |batch| idle.on_items_captured(batch),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("no-scripting", |b| {
        b.iter_batched(|| template.clone(), drop, BatchSize::LargeInput)
    });
    g.finish();
}

/// Where an item's time goes: the same items through agents that read one
/// level deeper each, from a hook that reads nothing to the header value.
/// Each row less the one before is the cost of that step. Nothing is kept
/// past the hook (so each item's objects are reused for the next one),
/// except in the last row, which keeps the request as a global.
fn levels(c: &mut Criterion) {
    let template = host_items(BATCH);
    let mut g = c.benchmark_group("agents/levels");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, source) in [
        ("call", "function onItemCaptured(data) {}"),
        ("data.request", "function onItemCaptured(data) { data.request; }"),
        ("data.request.headers", "function onItemCaptured(data) { data.request.headers; }"),
        (
            "data.request.headers.host",
            "var x; function onItemCaptured(data) { x = data.request.headers.host; }",
        ),
        // Keeping the request past the hook: its objects cannot be reused.
        ("data.request kept", "var x; function onItemCaptured(data) { x = data.request; }"),
    ] {
        let mut rt = runtime(source);
        g.bench_function(name, |b| {
            b.iter_batched(
                || template.clone(),
                |batch| rt.on_items_captured(batch),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

fn pool(c: &mut Criterion) {
    let _ = dataplane::alloc::transparent_huge_pages(false);
    let template = host_items(BATCH);
    let (console, _rx) = ConsoleSink::new(1024);
    let (effects, _erx) = EffectSink::new(1024);
    let config = ScriptingConfig {
        script_cores: 1,
        ring_capacity: 8192,
        batch_size: 256,
        idle_sleep_us: 20,
        ..Default::default()
    };
    let (pool, mut producers) = ScriptPool::start(PoolOptions {
        node: NodeInfo { ip: "127.0.0.1".into(), name: "bench".into() },
        config,
        producers: 1,
        console,
        effects,
        first_runtime_id: 0,
    })
    .expect("pool");
    pool.load_agent("agent", COUNT_PER_HOST).expect("agent loads");
    let producer = &mut producers[0];
    let mut g = c.benchmark_group("agents/pool");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("count-per-host-1-core", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let batch = template.clone();
                let before = pool.counters().expect("counters")[0].1.items;
                let t = Instant::now();
                // The ring holds a whole batch and the previous one is done:
                // nothing is dropped, the consumer is what is measured.
                for (i, item) in batch.into_iter().enumerate() {
                    producer.push_item(i as u64, item);
                }
                while pool.counters().expect("counters")[0].1.items < before + BATCH as u64 {
                    std::hint::spin_loop();
                }
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
    let report = pool.shutdown();
    let p = &report.producers[0];
    eprintln!("pool: pushed {} dropped(ring full) {}", p.items_pushed, p.items_dropped_ring_full);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = inline, levels, pool
}
criterion_main!(benches);
