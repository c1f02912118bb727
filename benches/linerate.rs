//! The line-rate benchmark: the real worker pipeline, end to end.
//!
//! - **Maximum rate**: `skua run` (the real binary, a subprocess) on DPDK
//!   `net_pcap` with `infinite_rx=1` over a generated HTTP mix, with N
//!   dataplane cores and M script cores; modes: raw rx and rx + parse
//!   (a child process of this bench polling the port itself), then
//!   reassembly and dissection with no agent, with count-per-host, with
//!   the seed's per-minute example and with a heavy agent (strings built
//!   per item, `vendor.webhook` on 1 % of items into a local server).
//! - **Per-stage cost** in ns and cycles per packet (parse, flow,
//!   reassembly, dissection, script hand-off, hook), on frames in memory,
//!   plus rx from the DPDK child; hook latency quantiles (hdrhistogram).
//! - **Zero-loss throughput**: a child process offers the mix through
//!   `net_ring` from a rate-limited generator thread to the full pipeline
//!   (count-per-host agent inline); a binary search over the offered rate
//!   finds the highest with no drop anywhere for the step's duration.
//! - **Peer**: the same generated API capture through tshark with a Lua
//!   listener counting HTTP requests per host, and through `skua run` with
//!   the equivalent agent: whole-process CPU seconds of each, and the
//!   per-host counts compared with each other and with the generator's.
//!   Each side runs 5 times (once with `--quick`), alternating with the
//!   other; its least CPU time is its figure, the slowest is shown too.
//!
//! `cargo bench --bench linerate [-- --quick] [-- --peer]` (`--peer`: only
//! the comparison with tshark). Prints a table, writes
//! `linerate.json`, `linerate-cores.png` and `linerate-hook-cdf.png` under
//! `$CARGO_TARGET_DIR/skua-bench/` (or `target/skua-bench/`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::dissect::{CountingSink, Dissector, ItemSink};
use dataplane::engine::{self, EngineConfig, Sources};
use dataplane::source::file::{FileSource, Input, Pace};
use dataplane::source::{PacketSource, Poll};
use dataplane::synth::traffic::{SizeMix, Summary, Traffic, TrafficSpec};
use dataplane::synth::{tcp4, PcapWriter};
use dataplane::wire::LinkType;
use dataplane::{parse, CoreCounters, Frame, PacketHandler};
use hdrhistogram::Histogram;
use reassembly::{Item, NodeInfo, ReassemblyConfig};
use serde_json::{json, Value};

/// Knobs of one run; `--quick` shrinks them.
struct Plan {
    quick: bool,
    /// Exchanges in the HTTP mix replayed at maximum rate.
    mix_exchanges: u32,
    /// Requests in the capture compared with tshark.
    peer_exchanges: u32,
    /// Seconds of each maximum-rate run.
    run_secs: f64,
    /// Seconds of each offered-rate step, and the number of steps.
    step_secs: f64,
    steps: u32,
    /// Runs of tshark and of skua on the peer capture (alternating).
    peer_runs: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                quick,
                mix_exchanges: 400,
                peer_exchanges: 10_000,
                run_secs: 3.0,
                step_secs: 2.0,
                steps: 4,
                peer_runs: 1,
            }
        } else {
            Plan {
                quick,
                mix_exchanges: 2_000,
                peer_exchanges: 100_000,
                run_secs: 10.0,
                step_secs: 30.0,
                steps: 7,
                peer_runs: 5,
            }
        }
    }
}

const HOST_MARKER: &str = "skua-bench.end";

// ---------------------------------------------------------------- inputs

fn write_traffic(path: &Path, spec: TrafficSpec, marker: bool) -> Summary {
    let file = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).expect("creating capture"),
    );
    let start = spec.start_ns;
    let (pkts, summary) = Traffic::collect_all(spec);
    let mut w = PcapWriter::new(file, LinkType::Ethernet, true).expect("pcap header");
    let mut last = start;
    for p in &pkts {
        w.write(p.ts_ns, &p.data, p.data.len() as u32).expect("writing capture");
        last = p.ts_ns;
    }
    if marker {
        // One last request, after every generated exchange, to a host the
        // generator never uses: the agent prints its counts when it sees it.
        for (i, f) in marker_exchange().iter().enumerate() {
            w.write(last + 1_000_000 * (i as u64 + 1), f, f.len() as u32).expect("writing capture");
        }
    }
    w.into_inner().flush().expect("flushing capture");
    summary
}

fn marker_exchange() -> Vec<Vec<u8>> {
    let (c, s, cp, sp) = ([10, 99, 0, 1], [10, 99, 0, 2], 40_000, 80);
    let req = format!("GET /end HTTP/1.1\r\nHost: {HOST_MARKER}\r\n\r\n");
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (a, b) = (1000u32, 5000u32);
    vec![
        tcp4(c, s, cp, sp, a, 0, 0x02, b""),
        tcp4(s, c, sp, cp, b, a + 1, 0x12, b""),
        tcp4(c, s, cp, sp, a + 1, b + 1, 0x10, b""),
        tcp4(c, s, cp, sp, a + 1, b + 1, 0x18, req.as_bytes()),
        tcp4(s, c, sp, cp, b + 1, a + 1 + req.len() as u32, 0x18, resp),
        tcp4(c, s, cp, sp, a + 1 + req.len() as u32, b + 1 + resp.len() as u32, 0x11, b""),
        tcp4(s, c, sp, cp, b + 1 + resp.len() as u32, a + 2 + req.len() as u32, 0x11, b""),
    ]
}

/// A capture read into memory: (timestamp, bytes).
fn load_frames(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let mut src =
        FileSource::open(Input::Path(path.to_path_buf()), Pace::Fast, 1).expect("opening capture");
    let mut out = Vec::new();
    while src
        .poll(&mut |f: Frame<'_>| out.push((f.ts_ns, f.data.to_vec())))
        .expect("reading capture")
        != Poll::End
    {}
    out
}

const COUNT_PER_HOST_MARKED: &str = r#"
// examples/count-per-host.js, printing its counts once the end marker is seen.
var counts = {};
function onItemCaptured(data) {
  if (data.protocol.name !== "http") return;
  var host = data.request.headers.Host || data.request.headers.host || data.dst.ip;
  if (host === "skua-bench.end") { console.log("SKUA-COUNTS " + JSON.stringify(counts)); return; }
  counts[host] = (counts[host] || 0) + 1;
}
"#;

fn heavy_agent(url: &str) -> String {
    format!(
        r#"
// Builds strings from every item and posts 1 % of them to a webhook.
var seen = 0, posted = 0, failed = 0;
function onItemCaptured(data) {{
  seen++;
  var line = data.protocol.name + " " + data.src.ip + ":" + data.src.port + " -> " + data.dst.ip + ":" + data.dst.port;
  if (data.protocol.name === "http") {{
    line += " " + data.request.method + " " + data.request.path + " " + data.response.status;
    line = line.toUpperCase() + " " + JSON.stringify(data.request.headers);
  }}
  if (seen % 100 === 0) {{
    vendor.webhook("POST", "{url}", JSON.stringify({{ line: line, n: seen }}))
      .then(function () {{ posted++; }}, function () {{ failed++; }});
  }}
}}
"#
    )
}

/// A local webhook receiver: answers every request 200 and counts them.
fn webhook_server() -> (String, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding webhook server");
    let url = format!("http://{}/hook", listener.local_addr().expect("local addr"));
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let c = c.clone();
            std::thread::spawn(move || serve_webhook(stream, &c));
        }
    });
    (url, count)
}

fn serve_webhook(mut s: std::net::TcpStream, count: &AtomicU64) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Whole requests in `buf`: head, then Content-Length bytes of body.
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            buf.drain(..end + 4 + len);
            count.fetch_add(1, Ordering::Relaxed);
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").is_err() {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

// ------------------------------------------------------------- processes

/// A finished child process: its output and whole-process costs.
struct Measured {
    stdout: String,
    stderr: String,
    ok: bool,
    /// User + system CPU seconds (getrusage RUSAGE_CHILDREN around the wait).
    cpu_s: f64,
    wall_s: f64,
    /// Peak resident set, sampled from /proc while it ran.
    peak_rss: u64,
}

fn children_cpu_s() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Runs `cmd` to completion (one child at a time, so RUSAGE_CHILDREN's
/// difference is this child's).
fn measure(mut cmd: Command) -> Measured {
    let before = children_cpu_s();
    let start = Instant::now();
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning child");
    let pid = child.id();
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let ereader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut peak = 0;
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for child") {
            break st;
        }
        peak = peak.max(rss_of(pid));
        std::thread::sleep(Duration::from_millis(20));
    };
    Measured {
        stdout: reader.join().unwrap_or_default(),
        stderr: ereader.join().unwrap_or_default(),
        ok: status.success(),
        cpu_s: children_cpu_s() - before,
        wall_s: start.elapsed().as_secs_f64(),
        peak_rss: peak,
    }
}

fn skua_bin() -> PathBuf {
    skua_suite::skua_bin()
}

fn hugepages() -> bool {
    let free = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    free >= 256
        && std::fs::read_to_string("/proc/mounts").unwrap_or_default().contains(" hugetlbfs ")
}

/// Mbufs for a pool that holds a whole `net_pcap` in-memory ring plus
/// the descriptors: the next 2^k − 1.
fn mbufs_for(frames: usize) -> u32 {
    ((frames + 8192).next_power_of_two() - 1) as u32
}

fn pcap_eal(path: &Path) -> String {
    format!(
        "--no-pci {} --vdev net_pcap0,rx_pcap={},infinite_rx=1",
        if hugepages() { "" } else { "--no-huge" },
        path.display()
    )
}

/// One maximum-rate run of the real `skua run` on `net_pcap` infinite rx.
struct RateRow {
    mode: String,
    cores: usize,
    script_cores: usize,
    packets: u64,
    bytes: u64,
    items: u64,
    flows: u64,
    secs: f64,
    cpu_s: f64,
    peak_rss: u64,
    drops: BTreeMap<String, u64>,
    hook: Option<(u64, u64, u64)>,
    extra: String,
}

impl RateRow {
    fn mpps(&self) -> f64 {
        self.packets as f64 / self.secs / 1e6
    }
    fn gbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.secs / 1e9
    }
    fn items_s(&self) -> f64 {
        self.items as f64 / self.secs
    }
    fn json(&self) -> Value {
        json!({
            "mode": self.mode, "dataplane_cores": self.cores, "script_cores": self.script_cores,
            "packets": self.packets, "bytes": self.bytes, "items": self.items, "flows": self.flows, "secs": self.secs,
            "mpps": self.mpps(), "gbps": self.gbps(), "gbps_per_dataplane_core": self.gbps() / self.cores as f64,
            "items_per_s": self.items_s(), "cpu_s": self.cpu_s, "peak_rss_bytes": self.peak_rss, "drops": self.drops,
            "hook_p50_ns": self.hook.map(|h| h.0), "hook_p99_ns": self.hook.map(|h| h.1), "hook_p999_ns": self.hook.map(|h| h.2),
            "note": self.extra,
        })
    }
}

fn skua_rate(
    mode: &str,
    pcap: &Path,
    frames: usize,
    cores: usize,
    script_cores: usize,
    scripts: Option<&Path>,
    secs: f64,
) -> Option<RateRow> {
    let mut cmd = Command::new(skua_bin());
    cmd.args(["worker", "--quiet", "--summary", "json", "--dpdk", &pcap_eal(pcap)])
        .args(["--cores", &cores.to_string(), "--duration", &secs.to_string()])
        .args(["--set", &format!("dpdk.mbufs={}", mbufs_for(frames))])
        .args(["--set", "dpdk.burst=64"])
        .args(["--set", &format!("scripting.scriptCores={script_cores}")])
        // No /metrics listener: another skua on a shared machine may hold
        // the default port, and a run that cannot bind it fails.
        .args(["--set", "integrations.metrics_listen="]);
    if let Some(dir) = scripts {
        cmd.arg("--scripts").arg(dir);
    }
    let m = measure(cmd);
    let Some(v) =
        m.stdout.lines().rev().find_map(|l| {
            serde_json::from_str::<Value>(l).ok().filter(|v| v.get("total").is_some())
        })
    else {
        eprintln!("skua run ({mode}, {cores} cores) gave no summary: {}", m.stderr.trim());
        return None;
    };
    if !m.ok {
        eprintln!("skua run ({mode}) failed: {}", m.stderr.trim());
    }
    let t = &v["total"];
    let mut drops: BTreeMap<String, u64> = t["drops"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    if let Some(n) = v["scriptRingDrops"].as_u64() {
        drops.insert("script_ring_full".into(), n);
    }
    let hook = v["agents"].as_array().and_then(|a| {
        a.iter()
            .filter(|s| {
                s["hook"].as_str().is_some_and(|h| h.contains("Item") || h.contains("Packet"))
            })
            .max_by_key(|s| s["calls"].as_u64().unwrap_or(0))
            .map(|s| {
                (
                    s["p50Ns"].as_u64().unwrap_or(0),
                    s["p99Ns"].as_u64().unwrap_or(0),
                    s["p999Ns"].as_u64().unwrap_or(0),
                )
            })
    });
    Some(RateRow {
        mode: mode.into(),
        cores,
        script_cores,
        packets: t["packets"].as_u64().unwrap_or(0),
        bytes: t["bytes"].as_u64().unwrap_or(0),
        items: t["items"].as_u64().unwrap_or(0),
        flows: t["flows"].as_u64().unwrap_or(0),
        secs: v["elapsed_s"].as_f64().unwrap_or(secs),
        cpu_s: m.cpu_s,
        peak_rss: m.peak_rss,
        drops,
        hook,
        extra: String::new(),
    })
}

// ------------------------------------------------------------ child modes

/// `--child rx PCAP SECS`: DPDK `net_pcap` infinite rx polled here, rx only
/// and rx + parse; prints one JSON line.
fn child_rx(pcap: &Path, frames: usize, secs: f64) {
    let cfg = dataplane::config::DpdkConfig {
        eal_args: pcap_eal(pcap),
        burst: 64,
        mbufs: mbufs_for(frames),
        ..Default::default()
    };
    let cpus = engine::affinity();
    let Ok(Sources::Single(mut src)) =
        dataplane::source::open_dpdk(&cfg, 1, &cpus[..1.min(cpus.len())])
    else {
        println!("{}", json!({"error": "net_pcap did not open as one stream"}));
        return;
    };
    if src.on_thread_start().is_err() {
        println!("{}", json!({"error": "thread registration"}));
        return;
    }
    let mut res = serde_json::Map::new();
    for parse_too in [false, true] {
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_millis(300) {
            let _ = src.poll(&mut |f: Frame<'_>| {
                std::hint::black_box(f.data.len());
            });
        }
        let (mut n, mut bytes, mut bad) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        let dur = Duration::from_secs_f64(secs);
        while start.elapsed() < dur {
            for _ in 0..64 {
                let _ = src.poll(&mut |f: Frame<'_>| {
                    n += 1;
                    bytes += u64::from(f.wire_len);
                    if parse_too {
                        bad += u64::from(parse(f.link, f.data, f.wire_len).is_err());
                    } else {
                        std::hint::black_box(f.data.as_ptr());
                    }
                });
            }
        }
        let s = start.elapsed().as_secs_f64();
        res.insert(
            if parse_too { "rx+parse" } else { "rx" }.into(),
            json!({"packets": n, "bytes": bytes, "secs": s, "parse_errors": bad}),
        );
    }
    println!("{}", Value::Object(res));
}

/// The full pipeline's per-core handler in the offered-load child: the
/// dissector with a count-per-host agent inline.
fn inline_agent_handler(core: usize, agent: &str) -> Dissector<controlplane::agents::InlineSink> {
    use scripting::{Clock, ConsoleSink, EffectSink, ScriptingConfig};
    let (console, rx) = ConsoleSink::new(1024);
    // Console lines are not needed here: drain them on a side thread.
    std::thread::spawn(move || for _ in rx.iter() {});
    let (effects, erx) = EffectSink::new(1024);
    // count-per-host makes no helper calls; the receiver stays open for
    // the process's life so the sink never reports a closed queue.
    std::mem::forget(erx);
    let node = NodeInfo { ip: "127.0.0.1".into(), name: "bench".into() };
    let opts = controlplane::agents::runtime_options(
        core as u32,
        &node,
        &ScriptingConfig::default(),
        &console,
        &effects,
        Clock::System,
    );
    let list = vec![("count-per-host".to_string(), agent.to_string())];
    let sink =
        controlplane::agents::InlineSink::new(opts, &list, core as u16, Arc::default(), None)
            .expect("agent runtime");
    Dissector::new(&ReassemblyConfig::default(), core as u16, sink)
}

/// `--child offered PCAP CORES`: reads `RATE_PPS SECS` lines on stdin, one
/// offered-rate step each, and answers each with a JSON line. A generator
/// thread sends the capture's frames round and round through `net_ring` at
/// the step's rate; the dataplane runs the full pipeline.
fn child_offered(pcap: &Path, cores: usize) {
    let frames = load_frames(pcap);
    let huge = if hugepages() { "" } else { "--no-huge" };
    let cfg = dataplane::config::DpdkConfig {
        eal_args: format!("--no-pci {huge} --vdev net_ring0"),
        burst: 64,
        mbufs: 32_767,
        ..Default::default()
    };
    let cpus = engine::affinity();
    let (sources, mut sender) = match dataplane::source::open_dpdk_loopback(&cfg, &cpus) {
        Ok(x) => x,
        Err(e) => {
            println!("{}", json!({"error": e.to_string()}));
            return;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let ecfg = EngineConfig { cores, pin_cores: false, ..EngineConfig::default() };
    let running = engine::start(
        sources,
        &ecfg,
        |core| inline_agent_handler(core, COUNT_PER_HOST_MARKED),
        stop.clone(),
    )
    .expect("engine");
    let monitor = running.monitor().clone();
    let (step_tx, step_rx) = std::sync::mpsc::channel::<(f64, f64)>();
    let (res_tx, res_rx) = std::sync::mpsc::channel::<(u64, u64, f64)>();
    let gen = std::thread::spawn(move || {
        let _ = sender.on_thread_start();
        let mut i = 0usize;
        for (rate, secs) in step_rx.iter() {
            let (mut offered, mut accepted) = (0u64, 0u64);
            let start = Instant::now();
            let dur = Duration::from_secs_f64(secs);
            let mut burst: Vec<&[u8]> = Vec::with_capacity(32);
            while start.elapsed() < dur {
                let due = (start.elapsed().as_secs_f64() * rate) as u64;
                if offered >= due {
                    // Ahead of the rate: give the CPU to the dataplane when
                    // the next burst is more than 50 µs away (this machine
                    // may have fewer CPUs than threads), else spin.
                    let next = (offered + 32) as f64 / rate;
                    let wait = next - start.elapsed().as_secs_f64();
                    if wait > 50e-6 {
                        std::thread::sleep(Duration::from_secs_f64(wait - 20e-6));
                    } else {
                        std::hint::spin_loop();
                    }
                    continue;
                }
                let n = (due - offered).min(32) as usize;
                burst.clear();
                for _ in 0..n {
                    burst.push(&frames[i].1);
                    i = (i + 1) % frames.len();
                }
                accepted += sender.offer(&burst) as u64;
                offered += n as u64;
            }
            let _ = res_tx.send((offered, accepted, start.elapsed().as_secs_f64()));
        }
    });
    for line in std::io::stdin().lines().map_while(Result::ok) {
        let mut it = line.split_whitespace().filter_map(|w| w.parse::<f64>().ok());
        let (Some(rate), Some(secs)) = (it.next(), it.next()) else { break };
        let (rx0, drops0) = (monitor.received().0, monitor.dropped());
        if step_tx.send((rate, secs)).is_err() {
            break;
        }
        let Ok((offered, accepted, s)) = res_rx.recv() else { break };
        // Let the cores finish what is queued before reading the counters.
        std::thread::sleep(Duration::from_millis(300));
        let (rx1, drops1) = (monitor.received().0, monitor.dropped());
        println!(
            "{}",
            json!({"rate_pps": rate, "offered": offered, "rejected_by_port": offered - accepted,
                   "received": rx1 - rx0, "dataplane_drops": drops1 - drops0, "secs": s})
        );
        let _ = std::io::stdout().flush();
    }
    drop(step_tx);
    let _ = gen.join();
    stop.store(true, Ordering::Relaxed);
    let _ = running.wait();
}

fn bench_exe() -> PathBuf {
    std::env::current_exe().expect("bench executable")
}

fn run_child_rx(pcap: &Path, frames: usize, secs: f64) -> Option<Value> {
    let mut cmd = Command::new(bench_exe());
    cmd.args(["--child", "rx"]).arg(pcap).args([frames.to_string(), secs.to_string()]);
    let m = measure(cmd);
    let v: Value = m.stdout.lines().find_map(|l| serde_json::from_str(l).ok())?;
    if v.get("error").is_some() {
        eprintln!("rx child: {v} {}", m.stderr.trim());
        return None;
    }
    Some(v)
}

/// One offered-rate step's outcome.
#[derive(Clone, Debug)]
struct Step {
    rate_pps: f64,
    offered: u64,
    lost: u64,
    secs: f64,
}

/// Binary search for the highest offered rate with no drop anywhere (the
/// port refusing a frame, a dataplane ring, the flow table, ...).
fn zero_loss(pcap: &Path, cores: usize, plan: &Plan, hi_pps: f64) -> (Option<f64>, Vec<Step>) {
    let mut child = match Command::new(bench_exe())
        .args(["--child", "offered"])
        .arg(pcap)
        .arg(cores.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("offered-load child: {e}");
            return (None, Vec::new());
        }
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    use std::io::BufRead;
    let (mut lo, mut hi) = (0.0f64, hi_pps);
    let mut best = None;
    let mut steps = Vec::new();
    for _ in 0..plan.steps {
        let rate = if steps.is_empty() { hi_pps / 2.0 } else { (lo + hi) / 2.0 };
        if writeln!(stdin, "{rate} {}", plan.step_secs).is_err() {
            break;
        }
        let Some(Ok(line)) = lines.next() else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else { break };
        if v.get("error").is_some() {
            eprintln!("offered-load child: {v}");
            break;
        }
        let offered = v["offered"].as_u64().unwrap_or(0);
        let lost = v["rejected_by_port"].as_u64().unwrap_or(0)
            + v["dataplane_drops"].as_u64().unwrap_or(0);
        let secs = v["secs"].as_f64().unwrap_or(plan.step_secs);
        // A generator that could not keep up did not offer the rate.
        let achieved = offered as f64 / secs >= 0.98 * rate;
        let step = Step { rate_pps: rate, offered, lost, secs };
        eprintln!(
            "  {cores} core(s): offered {:.3} Mpps → refused by the port {}, dropped in the dataplane {} ({})",
            rate / 1e6,
            v["rejected_by_port"],
            v["dataplane_drops"],
            if achieved { "offered in full" } else { "generator short" }
        );
        if lost == 0 && achieved {
            lo = rate;
            best = Some(offered as f64 / secs);
        } else {
            hi = rate;
        }
        steps.push(step);
    }
    drop(stdin);
    let _ = child.wait();
    (best, steps)
}

// --------------------------------------------------------- stage costs

/// ns per packet of each stage, measured on frames in memory.
struct Stages {
    parse_ns: f64,
    /// The flow-table step: the packet's canonical key, a lookup, an
    /// insert for a new flow or a touch (timer list) for a known one.
    flow_ns: f64,
    /// TCP stream work with no dissector enabled: sequence tracking,
    /// in-order delivery, out-of-order buffering, the content probes a flow
    /// gets before it is given up as undetected.
    reassembly_ns: f64,
    /// What enabling the dissectors adds: probing to a match, HTTP/DNS
    /// parsing, items built and emitted (to a sink that drops them).
    dissect_ns: f64,
    handoff_ns: f64,
    hook_ns: f64,
    items: u64,
    packets: u64,
}

fn pass_time<S: ItemSink>(
    frames: &[(u64, Vec<u8>)],
    make: impl Fn() -> Dissector<S>,
    passes: u32,
) -> (f64, u64) {
    let mut best = f64::MAX;
    let mut items = 0;
    for p in 0..passes {
        let mut d = make();
        let mut c = CoreCounters::default();
        let off = u64::from(p) * 3_600_000_000_000;
        let start = Instant::now();
        for (ts, data) in frames {
            let f = Frame {
                data,
                wire_len: data.len() as u32,
                ts_ns: ts + off,
                link: LinkType::Ethernet,
            };
            if let Ok(m) = parse(LinkType::Ethernet, data, data.len() as u32) {
                d.packet(&f, &m, &mut c);
            }
        }
        d.finish(&mut c);
        best = best.min(start.elapsed().as_secs_f64());
        items = c.items;
    }
    (best * 1e9 / frames.len() as f64, items)
}

/// ns per packet of parse plus the flow-table step the reassembler takes
/// first for every TCP or UDP packet (`FlowKey::from_packet`, lookup, then
/// insert or touch), on a table of the default size. Timing that step
/// inside `Reassembler` would put clock reads on the production hot path;
/// here it is the same calls on the same frames, in the bench only. The
/// slots hold no flow state, so this is a little cheaper than the real
/// table, whose slots are bigger.
fn flow_pass(frames: &[(u64, Vec<u8>)], passes: u32) -> f64 {
    use reassembly::flow::{FlowKey, FlowTable, TimerClass};
    use reassembly::packet::ip_proto;
    let cfg = ReassemblyConfig::default();
    let mut best = f64::MAX;
    for _ in 0..passes {
        let mut table = FlowTable::<u64>::new(cfg.max_flows);
        let start = Instant::now();
        for (ts, data) in frames {
            let f =
                Frame { data, wire_len: data.len() as u32, ts_ns: *ts, link: LinkType::Ethernet };
            let Ok(m) = parse(LinkType::Ethernet, data, data.len() as u32) else { continue };
            let pkt = dataplane::dissect::to_packet(&f, &m);
            let class = match pkt.protocol {
                ip_proto::TCP => TimerClass::Established,
                ip_proto::UDP => TimerClass::Udp,
                _ => continue,
            };
            let (key, _) = FlowKey::from_packet(&pkt);
            match table.lookup(&key) {
                Some(id) => table.touch(id, class, *ts),
                None => {
                    if table.is_full() {
                        if let Some(v) = table.victim() {
                            table.remove(v);
                        }
                    }
                    let _ = table.insert(key, *ts, class, *ts);
                }
            }
        }
        std::hint::black_box(&table);
        best = best.min(start.elapsed().as_secs_f64());
    }
    best * 1e9 / frames.len() as f64
}

fn stage_costs(frames: &[(u64, Vec<u8>)], passes: u32) -> Stages {
    let mut parse_best = f64::MAX;
    for _ in 0..passes {
        let start = Instant::now();
        for (_, data) in frames {
            std::hint::black_box(
                parse(LinkType::Ethernet, std::hint::black_box(data), data.len() as u32).ok(),
            );
        }
        parse_best = parse_best.min(start.elapsed().as_secs_f64());
    }
    let parse_ns = parse_best * 1e9 / frames.len() as f64;
    let flow_total = flow_pass(frames, passes);
    let bare = ReassemblyConfig { protocols: Vec::new(), ..ReassemblyConfig::default() };
    let (reassembly_total, _) =
        pass_time(frames, || Dissector::new(&bare, 0, CountingSink), passes);
    let cfg = ReassemblyConfig::default();
    let (dissect_total, items) =
        pass_time(frames, || Dissector::new(&cfg, 0, CountingSink), passes);
    // The hand-off is an item reaching an onItemCaptured that does
    // nothing (the item wrapped for JS, the call); an agent with no item
    // hook would measure nothing, as the runtime then asks for no items.
    let (handoff_total, _) =
        pass_time(frames, || inline_agent_handler(0, "function onItemCaptured(data) {}"), passes);
    let (hook_total, _) =
        pass_time(frames, || inline_agent_handler(0, COUNT_PER_HOST_MARKED), passes);
    Stages {
        parse_ns,
        flow_ns: (flow_total - parse_ns).max(0.0),
        reassembly_ns: (reassembly_total - flow_total).max(0.0),
        dissect_ns: (dissect_total - reassembly_total).max(0.0),
        handoff_ns: (handoff_total - dissect_total).max(0.0),
        hook_ns: (hook_total - handoff_total).max(0.0),
        items,
        packets: frames.len() as u64,
    }
}

/// Hook latency of count-per-host over the capture's items, one call
/// timed at a time.
fn hook_latency(frames: &[(u64, Vec<u8>)]) -> Histogram<u64> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Item>(1 << 20);
    let mut d = Dissector::new(&ReassemblyConfig::default(), 0, tx);
    let mut c = CoreCounters::default();
    for (ts, data) in frames {
        let f = Frame { data, wire_len: data.len() as u32, ts_ns: *ts, link: LinkType::Ethernet };
        if let Ok(m) = parse(LinkType::Ethernet, data, data.len() as u32) {
            d.packet(&f, &m, &mut c);
        }
    }
    d.finish(&mut c);
    drop(d);
    let items: Vec<Item> = rx.try_iter().collect();
    use scripting::{AgentRuntime, Clock, ConsoleSink, EffectSink, ScriptingConfig};
    let (console, _crx) = ConsoleSink::new(1024);
    let (effects, _erx) = EffectSink::new(1024);
    let node = NodeInfo { ip: "127.0.0.1".into(), name: "bench".into() };
    let opts = controlplane::agents::runtime_options(
        0,
        &node,
        &ScriptingConfig::default(),
        &console,
        &effects,
        Clock::System,
    );
    let mut rt = AgentRuntime::new(opts).expect("runtime");
    rt.load_agent("count-per-host", COUNT_PER_HOST_MARKED).expect("agent loads");
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
    for _ in 0..20 {
        for item in &items {
            let item = item.clone();
            let t = Instant::now();
            rt.on_item_captured(item);
            let _ = h.record(t.elapsed().as_nanos() as u64);
        }
    }
    h
}

fn rss_bytes() -> u64 {
    rss_of(std::process::id())
}

/// Resident bytes per idle tracked flow: SYNs to distinct ports.
fn bytes_per_flow(flows: u32) -> f64 {
    let cfg = ReassemblyConfig { max_flows: flows, ..ReassemblyConfig::default() };
    let mut d = Dissector::new(&cfg, 0, CountingSink);
    let mut c = CoreCounters::default();
    let before = rss_bytes();
    for i in 0..flows {
        let f = tcp4(
            [10, 50, (i >> 16) as u8, (i >> 8) as u8],
            [10, 51, 0, 1],
            1024 + (i % 60_000) as u16,
            80,
            i,
            0,
            0x02,
            b"",
        );
        let frame = Frame {
            data: &f,
            wire_len: f.len() as u32,
            ts_ns: 1_000_000_000 + u64::from(i),
            link: LinkType::Ethernet,
        };
        if let Ok(m) = parse(LinkType::Ethernet, &f, f.len() as u32) {
            d.packet(&frame, &m, &mut c);
        }
    }
    let after = rss_bytes();
    std::hint::black_box(&d);
    after.saturating_sub(before) as f64 / f64::from(flows)
}

// ------------------------------------------------------------------ peer

const TSHARK_LUA: &str = r#"
-- HTTP requests per Host header, printed at the end of the capture.
local host_f = Field.new("http.host")
local tap = Listener.new("http", "http.request")
local counts = {}
function tap.packet(pinfo, tvb)
  for _, h in ipairs({ host_f() }) do
    local k = tostring(h.value)
    counts[k] = (counts[k] or 0) + 1
  end
end
function tap.draw()
  for k, v in pairs(counts) do print("HOST\t" .. k .. "\t" .. v) end
end
"#;

struct Peer {
    requests: u64,
    /// Runs of each side; the figures are each side's least CPU time.
    runs: usize,
    tshark_cpu_s: f64,
    tshark_wall_s: f64,
    tshark_cpu_max_s: f64,
    skua_cpu_s: f64,
    skua_wall_s: f64,
    skua_cpu_max_s: f64,
    /// Every run counted the same as the first of its side.
    consistent: bool,
    tshark_counts: BTreeMap<String, u64>,
    skua_counts: BTreeMap<String, u64>,
    generator_counts: BTreeMap<String, u64>,
}

impl Peer {
    /// Every run of both sides counted what the generator wrote.
    fn same(&self) -> bool {
        self.consistent
            && self.tshark_counts == self.skua_counts
            && self.skua_counts == self.generator_counts
    }

    /// tshark's CPU time over skua's.
    fn ratio(&self) -> f64 {
        self.tshark_cpu_s / self.skua_cpu_s.max(1e-9)
    }
}

/// tshark + Lua and skua on the same capture, `runs` times each,
/// alternating; each side's least CPU time is its figure (the run the
/// shared VM disturbed least) and the range is kept. Every run's counts
/// must agree: a run whose counts differ from the first is reported.
fn peer(dir: &Path, pcap: &Path, summary: &Summary, runs: usize) -> Option<Peer> {
    let lua = dir.join("count.lua");
    std::fs::write(&lua, TSHARK_LUA).ok()?;
    let scripts = dir.join("peer-agent");
    std::fs::create_dir_all(&scripts).ok()?;
    std::fs::write(scripts.join("count-per-host.js"), COUNT_PER_HOST_MARKED).ok()?;

    let (mut tshark, mut skua) = (Vec::new(), Vec::new());
    let (mut tshark_counts, mut skua_counts) =
        (None::<BTreeMap<String, u64>>, None::<BTreeMap<String, u64>>);
    let mut consistent = true;
    for _ in 0..runs.max(1) {
        let mut t = Command::new("tshark");
        t.args(["-q", "-n", "-r"]).arg(pcap).arg("-X").arg(format!("lua_script:{}", lua.display()));
        let tm = measure(t);
        if !tm.ok {
            eprintln!("tshark failed (is it installed? .ci/run installs it): {}", tm.stderr.trim());
            return None;
        }
        let mut counts: BTreeMap<String, u64> = tm
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("HOST\t"))
            .filter_map(|l| {
                l.rsplit_once('\t').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            })
            .collect();
        counts.remove(HOST_MARKER);
        consistent &= tshark_counts.get_or_insert_with(|| counts.clone()) == &counts;
        tshark.push((tm.cpu_s, tm.wall_s));

        let mut s = Command::new(skua_bin());
        s.args(["run", "--quiet", "--summary", "json", "--cores", "1", "--pcap"])
            .arg(pcap)
            .arg("--scripts")
            .arg(&scripts);
        let sm = measure(s);
        let counts: BTreeMap<String, u64> = sm
            .stdout
            .lines()
            .find_map(|l| l.split_once("SKUA-COUNTS ").map(|(_, j)| j.to_string()))
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        if !sm.ok || counts.is_empty() {
            eprintln!("skua run on the peer capture printed no counts: {}", sm.stderr.trim());
        }
        consistent &= skua_counts.get_or_insert_with(|| counts.clone()) == &counts;
        skua.push((sm.cpu_s, sm.wall_s));
    }
    if !consistent {
        eprintln!("peer: the counts of one run differ from another's");
    }
    let least = |v: &[(f64, f64)]| {
        v.iter().copied().fold((f64::MAX, f64::MAX), |a, b| if b.0 < a.0 { b } else { a })
    };
    let (tshark_cpu_s, tshark_wall_s) = least(&tshark);
    let (skua_cpu_s, skua_wall_s) = least(&skua);
    let most = |v: &[(f64, f64)]| v.iter().map(|r| r.0).fold(0.0, f64::max);
    Some(Peer {
        requests: summary.requests_per_host.values().sum(),
        runs: tshark.len(),
        tshark_cpu_s,
        tshark_wall_s,
        tshark_cpu_max_s: most(&tshark),
        skua_cpu_s,
        skua_wall_s,
        skua_cpu_max_s: most(&skua),
        consistent,
        tshark_counts: tshark_counts.unwrap_or_default(),
        skua_counts: skua_counts.unwrap_or_default(),
        generator_counts: summary.requests_per_host.clone(),
    })
}

/// The peer comparison's line of the report.
fn print_peer(p: &Peer) {
    let runs = if p.runs == 1 {
        "one run each".to_string()
    } else {
        format!("least CPU of {} alternating runs each", p.runs)
    };
    println!(
        "\npeer, {} HTTP requests, {runs}: tshark+Lua {:.2} CPU s ({:.2} s wall; slowest run {:.2}), skua {:.2} CPU s ({:.2} s wall; slowest run {:.2}): {:.1}x less CPU; per-host counts {}",
        p.requests,
        p.tshark_cpu_s,
        p.tshark_wall_s,
        p.tshark_cpu_max_s,
        p.skua_cpu_s,
        p.skua_wall_s,
        p.skua_cpu_max_s,
        p.ratio(),
        if p.same() { "identical (tshark = skua = generator)".to_string() } else { format!("DIFFER: tshark {:?} skua {:?} generator {:?}", p.tshark_counts, p.skua_counts, p.generator_counts) }
    );
}

// ------------------------------------------------------------------ plots

fn plot_cores(path: &Path, series: &[(String, Vec<(f64, f64)>)]) -> Result<(), String> {
    use plotters::prelude::*;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ymax = series.iter().flat_map(|s| s.1.iter().map(|p| p.1)).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption("skua throughput vs. dataplane cores (net_pcap, HTTP mix)", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..2.5f64, 0.0..ymax)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("dataplane cores")
        .y_desc("Gbps")
        .x_labels(3)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let color = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK][i % 6];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)).point_size(4))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

fn plot_cdf(path: &Path, h: &Histogram<u64>) -> Result<(), String> {
    use plotters::prelude::*;
    let pts: Vec<(f64, f64)> = h
        .iter_quantiles(4)
        .map(|v| ((v.value_iterated_to().max(1) as f64).log10(), v.quantile_iterated_to()))
        .collect();
    let xmax = pts.iter().map(|p| p.0).fold(1.0, f64::max) + 0.2;
    let xmin = pts.iter().map(|p| p.0).fold(xmax, f64::min) - 0.2;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("onItemCaptured latency CDF (count-per-host)", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(xmin..xmax, 0.0..1.0)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("latency (ns, log scale)")
        .y_desc("fraction of calls")
        .x_label_formatter(&|x| format!("{:.0}", 10f64.powf(*x)))
        .draw()
        .map_err(|e| e.to_string())?;
    chart.draw_series(LineSeries::new(pts, BLUE.stroke_width(2))).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Registers a system font for the plots' labels (Debian's
/// fonts-dejavu-core, which .ci/run installs).
fn register_font() -> bool {
    const CANDIDATES: [&str; 2] =
        ["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"];
    for p in CANDIDATES {
        if let Ok(bytes) = std::fs::read(p) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font(
                "sans-serif",
                plotters::style::FontStyle::Normal,
                bytes,
            )
            .is_ok()
            {
                return true;
            }
        }
    }
    false
}

// ------------------------------------------------------------------ main

fn out_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = base.join("skua-bench");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

fn cpu_info() -> (String, f64) {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name).and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string())
        })
    };
    (
        field("model name").unwrap_or_else(|| "unknown CPU".into()),
        field("cpu MHz").and_then(|v| v.parse().ok()).unwrap_or(0.0),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let kind = args.get(i + 1).map(String::as_str);
        let pcap = PathBuf::from(args.get(i + 2).cloned().unwrap_or_default());
        let num = |k: usize| args.get(i + k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(1.0);
        match kind {
            Some("rx") => child_rx(&pcap, num(3) as usize, num(4)),
            Some("offered") => child_offered(&pcap, num(3) as usize),
            _ => eprintln!("unknown child mode"),
        }
        return;
    }
    let plan = Plan::new(args.iter().any(|a| a == "--quick"));
    let t0 = Instant::now();
    let (cpu, mhz) = cpu_info();
    let ncpu = engine::affinity().len();
    let dir = tempfile::tempdir().expect("temp dir");
    let api = dir.path().join("http-api.pcap");
    let api_summary = write_traffic(
        &api,
        TrafficSpec {
            exchanges: plan.peer_exchanges,
            mix: SizeMix::Api,
            seed: 11,
            ..TrafficSpec::default()
        },
        true,
    );
    let _ = skua_bin();
    if args.iter().any(|a| a == "--peer") {
        // Only the comparison with tshark (at the plan's size).
        if let Some(p) = peer(dir.path(), &api, &api_summary, plan.peer_runs) {
            print_peer(&p);
        }
        return;
    }
    let mix = dir.path().join("http-mix.pcap");
    let mix_summary = write_traffic(
        &mix,
        TrafficSpec {
            exchanges: plan.mix_exchanges,
            mix: SizeMix::Mixed,
            seed: 7,
            ..TrafficSpec::default()
        },
        false,
    );
    let frames = load_frames(&mix);
    eprintln!(
        "captures: HTTP mix {} exchanges, {} frames, {:.1} MB; API {} requests, {} frames ({:.1} s)",
        mix_summary.http_exchanges,
        mix_summary.packets,
        mix_summary.bytes as f64 / 1e6,
        api_summary.http_exchanges,
        api_summary.packets,
        t0.elapsed().as_secs_f64()
    );

    // Raw rx and rx + parse on the DPDK port, in a child (one EAL each).
    let rx = if dataplane::DPDK_AVAILABLE {
        run_child_rx(&mix, frames.len(), plan.run_secs.min(5.0))
    } else {
        None
    };
    let rx_rate = |k: &str| {
        rx.as_ref().map(|v| {
            (
                v[k]["packets"].as_f64().unwrap_or(0.0) / v[k]["secs"].as_f64().unwrap_or(1.0),
                v[k]["bytes"].as_f64().unwrap_or(0.0) * 8.0
                    / v[k]["secs"].as_f64().unwrap_or(1.0)
                    / 1e9,
            )
        })
    };

    // Agents.
    let (hook_url, hook_count) = webhook_server();
    let agent_dirs: Vec<(&str, PathBuf)> = [
        (
            "count-per-host",
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/count-per-host.js"),
            )
            .expect("example"),
        ),
        (
            "per-minute",
            std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/packets-per-minute.js"),
            )
            .expect("example"),
        ),
        ("heavy+webhook", heavy_agent(&hook_url)),
    ]
    .into_iter()
    .map(|(name, src)| {
        let d = dir.path().join(format!("agent-{}", name.replace('+', "-")));
        std::fs::create_dir_all(&d).expect("agent dir");
        std::fs::write(d.join("agent.js"), src).expect("agent file");
        (name, d)
    })
    .collect();

    // Maximum rate through the real worker.
    let mut rows = Vec::new();
    if dataplane::DPDK_AVAILABLE {
        let core_counts: &[usize] = if ncpu >= 2 { &[1, 2] } else { &[1] };
        for &cores in core_counts {
            rows.extend(skua_rate(
                "dissect (no agent)",
                &mix,
                frames.len(),
                cores,
                0,
                None,
                plan.run_secs,
            ));
            for (name, d) in &agent_dirs {
                let before = hook_count.load(Ordering::Relaxed);
                if let Some(mut r) =
                    skua_rate(name, &mix, frames.len(), cores, 0, Some(d), plan.run_secs)
                {
                    if name.contains("webhook") {
                        r.extra = format!(
                            "{} webhook posts received",
                            hook_count.load(Ordering::Relaxed) - before
                        );
                    }
                    rows.push(r);
                }
            }
        }
        // M script cores: the agent in a pool beside one dataplane core.
        rows.extend(skua_rate(
            "count-per-host",
            &mix,
            frames.len(),
            1,
            1,
            Some(&agent_dirs[0].1),
            plan.run_secs,
        ));
    }

    // Per-stage costs and hook latency on frames in memory.
    let stages = stage_costs(&frames, if plan.quick { 2 } else { 5 });
    let hist = hook_latency(&frames);
    let per_flow = bytes_per_flow(if plan.quick { 100_000 } else { 1_000_000 });

    // Zero-loss throughput through net_ring, 1 and 2 dataplane cores.
    let mut zl = Vec::new();
    if dataplane::DPDK_AVAILABLE {
        let full_row =
            rows.iter().find(|r| r.mode == "count-per-host" && r.cores == 1 && r.script_cores == 0);
        let hi = full_row.map_or(2e6, |r| r.packets as f64 / r.secs * 1.5).max(1e5);
        let core_counts: &[usize] = if ncpu >= 2 { &[1, 2] } else { &[1] };
        for &cores in core_counts {
            eprintln!("zero-loss search, {cores} dataplane core(s), up to {:.2} Mpps", hi / 1e6);
            let (best, steps) = zero_loss(&mix, cores, &plan, hi);
            zl.push((cores, best, steps));
        }
    }

    // tshark + Lua against skua on the same capture.
    let peer = peer(dir.path(), &api, &api_summary, plan.peer_runs);

    // ---- report
    let gbps_of_pps =
        |pps: f64| pps * mix_summary.bytes as f64 / mix_summary.packets as f64 * 8.0 / 1e9;
    let cyc = |ns: f64| ns * mhz / 1e3;
    println!(
        "\nskua line rate — {cpu} ({ncpu} CPUs, {mhz:.0} MHz){}",
        if plan.quick { ", --quick" } else { "" }
    );
    println!(
        "input: generated HTTP/1.1 mix (seed 7), {} exchanges, {} frames, {:.1} MB, mean frame {:.0} B",
        mix_summary.http_exchanges,
        mix_summary.packets,
        mix_summary.bytes as f64 / 1e6,
        mix_summary.bytes as f64 / mix_summary.packets as f64
    );
    println!(
        "\n{:<28} {:>3} {:>3} {:>8} {:>8} {:>10} {:>10} {:>8} {:>8}  drops / note",
        "mode (net_pcap infinite_rx)",
        "dp",
        "sc",
        "Mpps",
        "Gbps",
        "Gbps/core",
        "items/s",
        "CPU s",
        "RSS MB"
    );
    if let (Some((rp, rg)), Some((pp, pg))) = (rx_rate("rx"), rx_rate("rx+parse")) {
        println!(
            "{:<28} {:>3} {:>3} {:>8.2} {:>8.2} {:>10.2} {:>10} {:>8} {:>8}",
            "raw rx",
            1,
            0,
            rp / 1e6,
            rg,
            rg,
            "-",
            "-",
            "-"
        );
        println!(
            "{:<28} {:>3} {:>3} {:>8.2} {:>8.2} {:>10.2} {:>10} {:>8} {:>8}  {:.0} % of raw rx",
            "rx + parse",
            1,
            0,
            pp / 1e6,
            pg,
            pg,
            "-",
            "-",
            "-",
            pp / rp * 100.0
        );
    }
    for r in &rows {
        let drops: Vec<String> =
            r.drops.iter().filter(|(_, v)| **v > 0).map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{:<28} {:>3} {:>3} {:>8.2} {:>8.2} {:>10.2} {:>10.0} {:>8.2} {:>8.0}  {} {}",
            r.mode,
            r.cores,
            r.script_cores,
            r.mpps(),
            r.gbps(),
            r.gbps() / r.cores as f64,
            r.items_s(),
            r.cpu_s,
            r.peak_rss as f64 / 1e6,
            if drops.is_empty() { "no drops".to_string() } else { drops.join(" ") },
            r.extra
        );
    }
    println!(
        "\nper packet, one core, frames in memory ({} packets, {} items):",
        stages.packets, stages.items
    );
    if let Some((rp, _)) = rx_rate("rx") {
        println!(
            "  {:<34} {:>8.1} ns {:>8.0} cycles",
            "rx (DPDK net_pcap burst + free)",
            1e9 / rp,
            cyc(1e9 / rp)
        );
    }
    for (name, ns) in [
        ("parse (L2-L4)", stages.parse_ns),
        ("flow (key, lookup, insert/touch)", stages.flow_ns),
        ("reassembly (TCP, no dissector)", stages.reassembly_ns),
        ("dissect (probe, HTTP/DNS, items)", stages.dissect_ns),
        ("script hand-off (empty item hook)", stages.handoff_ns),
        ("hook (count-per-host)", stages.hook_ns),
    ] {
        println!("  {name:<34} {ns:>8.1} ns {:>8.0} cycles", cyc(ns));
    }
    println!(
        "hook latency (onItemCaptured, count-per-host, {} calls): p50 {} ns, p99 {} ns, p999 {} ns",
        hist.len(),
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999)
    );
    println!("bytes per idle tracked flow: {per_flow:.0}");
    println!("\nzero-loss throughput (net_ring, generator thread in the same process, full pipeline + count-per-host):");
    for (cores, best, steps) in &zl {
        let s = steps.last().map_or(0.0, |s| s.secs);
        match best {
            Some(pps) => println!(
                "  {cores} dataplane core(s): {:.3} Mpps = {:.2} Gbps ({} steps of {s:.0} s)",
                pps / 1e6,
                gbps_of_pps(*pps),
                steps.len()
            ),
            None => println!(
                "  {cores} dataplane core(s): no step without loss ({} steps)",
                steps.len()
            ),
        }
    }
    if let Some(p) = &peer {
        print_peer(p);
    }

    let out = out_dir();
    let fonts = register_font();
    let mut plots = Vec::new();
    if fonts {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.script_cores == 0) {
            series.entry(r.mode.clone()).or_default().push((r.cores as f64, r.gbps()));
        }
        let p1 = out.join("linerate-cores.png");
        let p2 = out.join("linerate-hook-cdf.png");
        for (p, res) in [
            (&p1, plot_cores(&p1, &series.into_iter().collect::<Vec<_>>())),
            (&p2, plot_cdf(&p2, &hist)),
        ] {
            match res {
                Ok(()) => plots.push(p.display().to_string()),
                Err(e) => eprintln!("plot {}: {e}", p.display()),
            }
        }
    } else {
        eprintln!("no DejaVu font found (Debian: fonts-dejavu-core): plots skipped");
    }
    let doc = json!({
        "cpu": cpu, "cpus": ncpu, "mhz": mhz, "quick": plan.quick, "hugepages": hugepages(),
        "input": {"exchanges": mix_summary.http_exchanges, "frames": mix_summary.packets, "bytes": mix_summary.bytes},
        "rx": rx,
        "rows": rows.iter().map(RateRow::json).collect::<Vec<_>>(),
        "stages_ns": {"parse": stages.parse_ns, "flow": stages.flow_ns, "reassembly": stages.reassembly_ns, "dissect": stages.dissect_ns,
                      "flow_reassembly_dissect": stages.flow_ns + stages.reassembly_ns + stages.dissect_ns, "script_handoff": stages.handoff_ns, "hook": stages.hook_ns,
                      "rx": rx_rate("rx").map(|r| 1e9 / r.0)},
        "hook_latency_ns": {"p50": hist.value_at_quantile(0.5), "p99": hist.value_at_quantile(0.99), "p999": hist.value_at_quantile(0.999), "calls": hist.len()},
        "bytes_per_flow": per_flow,
        "zero_loss": zl.iter().map(|(c, b, s)| json!({"dataplane_cores": c, "pps": b, "gbps": b.map(gbps_of_pps),
            "steps": s.iter().map(|s| json!({"rate_pps": s.rate_pps, "offered": s.offered, "lost": s.lost, "secs": s.secs})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "peer": peer.as_ref().map(|p| json!({"requests": p.requests, "runs": p.runs, "tshark_cpu_s": p.tshark_cpu_s, "skua_cpu_s": p.skua_cpu_s,
            "tshark_cpu_max_s": p.tshark_cpu_max_s, "skua_cpu_max_s": p.skua_cpu_max_s,
            "ratio": p.ratio(), "tshark_counts": p.tshark_counts, "skua_counts": p.skua_counts,
            "generator_counts": p.generator_counts, "same": p.same()})),
        "plots": plots,
        "elapsed_s": t0.elapsed().as_secs_f64(),
    });
    let path = out.join("linerate.json");
    if std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap_or_default()).is_ok() {
        println!("\nwritten: {} {}", path.display(), plots.join(" "));
    }
    println!("total {:.0} s", t0.elapsed().as_secs_f64());
}
