//! The raw path — receive and L2–L4 parse, no reassembly — in Mpps per
//! core, on 64-byte frames (60 bytes captured, the FCS stripped):
//!
//! - `parse`: the decoder alone over frames already in memory (the goal:
//!   ≥ 50 Mpps per core);
//! - `parse+hash`: plus the symmetric Toeplitz hash (the dispatcher's cost);
//! - `pcap file rx+parse`: the pcap-file source read from disk (page cache)
//!   and parsed, on one core;
//! - `engine pcap 1 core`: the same through the engine's core loop;
//! - `dpdk rx`: DPDK `net_pcap` with `infinite_rx=1` (frames replayed from
//!   memory), receive and free only: the ceiling to compare against;
//! - `dpdk rx+parse`: the same with every frame parsed.
//!
//! `cargo bench --bench rawpath [-- --quick]`. Prints a table and writes
//! `rawpath.json` under `$CARGO_TARGET_DIR/skua-bench/` (or `target/`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::engine::{self, EngineConfig, Sources};
use dataplane::hash::Toeplitz;
use dataplane::source::file::{FileSource, Input, Pace};
use dataplane::source::{PacketSource, Poll};
use dataplane::synth::{self, PcapWriter};
use dataplane::wire::LinkType;
use dataplane::{parse, CoreCounters, Frame, PacketHandler, PacketMeta};

struct Row {
    name: &'static str,
    packets: u64,
    secs: f64,
    note: String,
}

impl Row {
    fn mpps(&self) -> f64 {
        self.packets as f64 / self.secs / 1e6
    }
}

/// 64-byte frames (60 captured): Ethernet + IPv4 + TCP + 6 bytes of padding,
/// over `flows` distinct 4-tuples.
fn small_frames(flows: u32) -> Vec<Vec<u8>> {
    (0..flows)
        .map(|i| {
            let src = [10, 0, (i >> 8) as u8, i as u8];
            let mut f =
                synth::tcp4(src, [10, 1, 0, 1], 1024 + (i % 60000) as u16, 80, i, 0, 0x10, b"");
            f.resize(60, 0);
            f
        })
        .collect()
}

fn bench_parse(frames: &[Vec<u8>], dur: Duration) -> Row {
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < dur {
        for _ in 0..64 {
            for f in frames {
                black_box(parse(LinkType::Ethernet, black_box(f), 64).ok());
            }
        }
        n += 64 * frames.len() as u64;
    }
    Row {
        name: "parse",
        packets: n,
        secs: start.elapsed().as_secs_f64(),
        note: "decoder only, frames in L1/L2".into(),
    }
}

fn bench_parse_hash(frames: &[Vec<u8>], dur: Duration) -> Row {
    let t = Toeplitz::default();
    let mut n = 0u64;
    let mut acc = 0u32;
    let start = Instant::now();
    while start.elapsed() < dur {
        for _ in 0..64 {
            for f in frames {
                if let Ok(m) = parse(LinkType::Ethernet, black_box(f), 64) {
                    acc ^= t.packet(&m);
                }
            }
        }
        n += 64 * frames.len() as u64;
    }
    black_box(acc);
    Row {
        name: "parse+hash",
        packets: n,
        secs: start.elapsed().as_secs_f64(),
        note: "decoder + symmetric Toeplitz".into(),
    }
}

fn write_capture(path: &Path, frames: &[Vec<u8>], count: usize) {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut w = PcapWriter::new(file, LinkType::Ethernet, false).unwrap();
    for i in 0..count {
        let f = &frames[i % frames.len()];
        w.write(1_700_000_000_000_000_000 + i as u64 * 1_000, f, 64).unwrap();
    }
}

fn bench_file(path: &Path) -> Row {
    let mut src = FileSource::open(Input::Path(path.to_path_buf()), Pace::Fast, 1).unwrap();
    let mut n = 0u64;
    let mut ok = 0u64;
    let start = Instant::now();
    loop {
        let p = src
            .poll(&mut |f: Frame<'_>| {
                n += 1;
                if parse(f.link, f.data, f.wire_len).is_ok() {
                    ok += 1;
                }
            })
            .unwrap();
        if p == Poll::End {
            break;
        }
    }
    assert_eq!(n, ok);
    Row {
        name: "pcap file rx+parse",
        packets: n,
        secs: start.elapsed().as_secs_f64(),
        note: "pcap-parser reader, page cache".into(),
    }
}

struct Null;
impl PacketHandler for Null {
    fn packet(&mut self, _f: &Frame<'_>, m: &PacketMeta, _c: &mut CoreCounters) {
        black_box(m);
    }
}

fn bench_engine(path: &Path) -> Row {
    let src = FileSource::open(Input::Path(path.to_path_buf()), Pace::Fast, 1).unwrap();
    let cfg = EngineConfig { cores: 1, ..EngineConfig::default() };
    let start = Instant::now();
    let running = engine::start(
        Sources::Single(Box::new(src)),
        &cfg,
        |_| Null,
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    let report = running.wait().unwrap();
    Row {
        name: "engine pcap 1 core",
        packets: report.total().0,
        secs: start.elapsed().as_secs_f64(),
        note: "file source + core loop + counters".into(),
    }
}

fn hugepages_free() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn bench_dpdk(path: &Path, dur: Duration) -> Vec<Row> {
    if !dataplane::DPDK_AVAILABLE {
        eprintln!("DPDK not built in: dpdk rows skipped");
        return Vec::new();
    }
    let huge = hugepages_free() >= 256
        && std::fs::read_to_string("/proc/mounts").unwrap_or_default().contains(" hugetlbfs ");
    let eal = format!(
        "--no-pci {} --vdev net_pcap0,rx_pcap={},infinite_rx=1",
        if huge { "" } else { "--no-huge" },
        path.display()
    );
    let mut cfg = dataplane::config::DpdkConfig { eal_args: eal, ..Default::default() };
    cfg.burst = 64;
    let cpus = engine::affinity();
    let Sources::Single(mut src) =
        dataplane::source::open_dpdk(&cfg, 1, &cpus[..1.min(cpus.len())]).unwrap()
    else {
        panic!("net_pcap has no RSS: expected one stream");
    };
    src.on_thread_start().unwrap();
    let mem = if huge { "hugepages" } else { "--no-huge" };
    let mut rows = Vec::new();
    for parse_too in [false, true] {
        // Warm the ring and caches.
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_millis(200) {
            src.poll(&mut |f: Frame<'_>| {
                black_box(f.data.len());
            })
            .unwrap();
        }
        let mut n = 0u64;
        let mut bad = 0u64;
        let start = Instant::now();
        while start.elapsed() < dur {
            for _ in 0..256 {
                src.poll(&mut |f: Frame<'_>| {
                    n += 1;
                    if parse_too {
                        if parse(f.link, f.data, f.wire_len).is_err() {
                            bad += 1;
                        }
                    } else {
                        black_box(f.data.as_ptr());
                    }
                })
                .unwrap();
            }
        }
        assert_eq!(bad, 0);
        rows.push(Row {
            name: if parse_too { "dpdk rx+parse" } else { "dpdk rx" },
            packets: n,
            secs: start.elapsed().as_secs_f64(),
            note: format!("net_pcap infinite_rx=1, burst 64, {mem}"),
        });
    }
    rows
}

fn out_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = base.join("skua-bench");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    // Read before EAL pins this thread to one CPU.
    let cpus = engine::affinity().len();
    let dur = if quick { Duration::from_millis(700) } else { Duration::from_secs(3) };
    let frames = small_frames(4096);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.pcap");
    write_capture(&file, &frames, if quick { 1_000_000 } else { 5_000_000 });
    let ring = dir.path().join("ring.pcap");
    write_capture(&ring, &frames, 4096);
    // Read once so the page cache holds the file, as in a repeated replay.
    let _ = std::fs::read(&file);

    let mut rows = vec![
        bench_parse(&frames, dur),
        bench_parse_hash(&frames, dur),
        bench_file(&file),
        bench_engine(&file),
    ];
    rows.extend(bench_dpdk(&ring, dur));

    println!("\nskua raw path, 64-byte frames, one core — {} ({} CPUs)", cpu_model(), cpus);
    println!("{:<22} {:>12} {:>8} {:>10}  method", "stage", "packets", "secs", "Mpps");
    for r in &rows {
        println!("{:<22} {:>12} {:>8.2} {:>10.2}  {}", r.name, r.packets, r.secs, r.mpps(), r.note);
    }
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| serde_json::json!({"stage": r.name, "packets": r.packets, "secs": r.secs, "mpps": r.mpps(), "method": r.note}))
        .collect();
    let path = out_dir().join("rawpath.json");
    let doc = serde_json::json!({"cpu": cpu_model(), "quick": quick, "rows": json});
    if std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).is_ok() {
        println!("written: {}", path.display());
    }
}
