//! Agents on the capture path: loading a folder of `.js` agents, the item
//! sinks that hand a dataplane core's items and packets to them (a pool of
//! script cores over SPSC rings, or a runtime inline on the core), the
//! console printer, the control plane their I/O helpers go to, and the
//! per-agent table printed at exit.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use dataplane::dissect::ItemSink;
use dataplane::{Frame, PacketMeta};
use reassembly::{Item, NodeInfo};
use scripting::{
    AgentRuntime, Clock, ConsoleLine, ConsoleSink, EffectSink, HookStats, PacketInfo,
    PacketProtocol, Producer, RuntimeCounters, RuntimeId, RuntimeOptions, ScriptingConfig,
};

/// The `.js` files of `dir`, sorted, as (agent name = file stem, source).
pub fn load_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    let out = crate::watch::read_agents(dir)
        .with_context(|| format!("reading agents from {}", dir.display()))?;
    if out.is_empty() {
        bail!("no .js agents in {}", dir.display());
    }
    Ok(out)
}

/// A symmetric hash of a flow's endpoints: both directions, its packets and
/// its items, meet the same script runtime.
fn flow_hash(a: (IpAddr, u16), b: (IpAddr, u16), proto: u8) -> u64 {
    use std::hash::{Hash, Hasher};
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (lo, hi, proto).hash(&mut h);
    h.finish()
}

fn ip(version: u8, raw: &[u8; 16]) -> IpAddr {
    if version == 4 {
        IpAddr::from([raw[0], raw[1], raw[2], raw[3]])
    } else if version == 6 {
        IpAddr::from(*raw)
    } else {
        IpAddr::from([0u8, 0, 0, 0])
    }
}

fn item_hash(item: &Item) -> u64 {
    let proto = match item.layer4 {
        reassembly::item::Layer4::Tcp => 6,
        reassembly::item::Layer4::Udp => 17,
    };
    flow_hash((item.src.ip, item.src.port), (item.dst.ip, item.dst.port), proto)
}

/// The `info` of `onPacketCaptured` for a decoded packet.
pub fn packet_info(frame: &Frame<'_>, m: &PacketMeta, core: u16) -> PacketInfo {
    PacketInfo {
        ts_ns: frame.ts_ns,
        capture_length: frame.data.len() as u32,
        length: frame.wire_len,
        truncated: (frame.data.len() as u32) < frame.wire_len,
        fragmented: m.fragment.is_some(),
        src_ip: ip(m.ip_version, &m.src_ip),
        dst_ip: ip(m.ip_version, &m.dst_ip),
        src_port: m.src_port,
        dst_port: m.dst_port,
        protocol: PacketProtocol::from_ip_proto(u8::from(m.protocol)),
        vlan: (m.vlan_tags > 0).then_some(m.vlan),
        core,
    }
}

fn packet_hash(m: &PacketMeta) -> u64 {
    flow_hash(
        (ip(m.ip_version, &m.src_ip), m.src_port),
        (ip(m.ip_version, &m.dst_ip), m.dst_port),
        u8::from(m.protocol),
    )
}

/// A dataplane core's sink into the script pool: a full ring is a counted
/// drop inside the producer, never a wait.
pub struct PoolSink {
    producer: Producer,
    core: u16,
    tap: Option<HubTap>,
}

impl PoolSink {
    pub fn new(producer: Producer, core: u16, tap: Option<HubTap>) -> Self {
        PoolSink { producer, core, tap }
    }
}

/// Items for the hub's live view, taken from a capture core only while the
/// hub asks for them and at most `link.max_items_per_s`.
#[derive(Clone)]
pub struct HubTap {
    pub tap: crate::link::LinkTap,
    pub node: NodeInfo,
}

impl HubTap {
    #[inline]
    fn offer(&self, item: &Item) {
        if self.tap.wants_item() {
            self.tap.offer_item(|| item.to_json(&self.node));
        }
    }
}

impl ItemSink for PoolSink {
    #[inline]
    fn item(&mut self, item: Item) {
        if let Some(t) = &self.tap {
            t.offer(&item);
        }
        if self.producer.wants_items() {
            let h = item_hash(&item);
            self.producer.push_item(h, item);
        }
    }

    #[inline]
    fn wants_packets(&self) -> bool {
        self.producer.wants_packets()
    }

    fn packet(&mut self, frame: &Frame<'_>, meta: &PacketMeta) {
        let info = packet_info(frame, meta, self.core);
        self.producer.push_packet(packet_hash(meta), info);
    }
}

/// What inline runtimes leave behind when their core stops.
#[derive(Default)]
pub struct InlineResults {
    pub stats: Vec<HookStats>,
    pub counters: Vec<(RuntimeId, RuntimeCounters)>,
    /// Hook stats and jobs of the runtimes still running, by core,
    /// republished every [`PUBLISH_EVERY`] for `/metrics` and the hub.
    pub live: std::collections::BTreeMap<u16, (Vec<HookStats>, Vec<scripting::JobInfo>)>,
}

impl InlineResults {
    /// Every runtime's hook stats: the final ones of stopped runtimes and
    /// the last published ones of running runtimes.
    pub fn all_stats(&self) -> Vec<HookStats> {
        self.stats.iter().chain(self.live.values().flat_map(|(s, _)| s)).cloned().collect()
    }
}

/// An agent runtime running on the dataplane core itself
/// (`scripting.scriptCores = 0`): hooks run between packets; completions
/// and jobs are serviced every few milliseconds of work or when idle.
///
/// Items wait in `pending` (at most `scripting.batchSize`) and enter the
/// engine together: one entry per batch instead of per item saves the
/// entry's fixed cost (the context lock, restoring the hook functions and
/// the reused item object). Order is kept: the batch is handed over before
/// a packet hook, before completions and jobs, when the core goes idle and
/// when it stops.
pub struct InlineSink {
    rt: AgentRuntime,
    pending: Vec<Item>,
    batch: usize,
    core: u16,
    wants_packets: bool,
    wants_items: bool,
    events: u32,
    last_service: Instant,
    last_publish: Instant,
    results: Arc<Mutex<InlineResults>>,
    tap: Option<HubTap>,
}

/// Events between two looks at the clock for servicing.
const SERVICE_EVERY_EVENTS: u32 = 256;
const SERVICE_EVERY: Duration = Duration::from_millis(5);
/// How often an inline runtime publishes its hook stats (a histogram copy
/// each); a scrape sees them at most this old.
pub const PUBLISH_EVERY: Duration = Duration::from_secs(1);

impl InlineSink {
    /// Builds the runtime on the calling (core) thread and loads `agents`;
    /// an agent that fails to load is reported on the console and left out.
    pub fn new(
        opts: RuntimeOptions,
        agents: &[(String, String)],
        core: u16,
        results: Arc<Mutex<InlineResults>>,
        tap: Option<HubTap>,
    ) -> Result<Self> {
        let batch = (opts.config.batch_size as usize).max(1);
        let mut rt = AgentRuntime::new(opts)?;
        for (name, src) in agents {
            if let Err(e) = rt.load_agent(name, src) {
                tracing::warn!("agent {name}: {e}");
            }
        }
        let (wants_packets, wants_items) = (rt.wants_packets(), rt.wants_items());
        let now = Instant::now();
        Ok(InlineSink {
            rt,
            pending: Vec::with_capacity(batch),
            batch,
            core,
            wants_packets,
            wants_items,
            events: 0,
            last_service: now,
            last_publish: now,
            results,
            tap,
        })
    }

    /// Hands the waiting items to `onItemCaptured`, in order.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.rt.on_items_captured(self.pending.drain(..));
        }
    }

    pub fn mailbox(&self) -> scripting::Mailbox {
        self.rt.mailbox()
    }

    /// Applies what the runtime's mailbox holds now (the agents and env a
    /// hub link sent), before the core's first packet.
    pub fn apply_events(&mut self) {
        self.rt.poll_completions();
        self.wants_packets = self.rt.wants_packets();
        self.wants_items = self.rt.wants_items();
    }

    fn service(&mut self) {
        self.flush();
        self.rt.poll_completions();
        let now = SystemTime::now();
        if self.rt.next_job_due().is_some_and(|due| due <= now) {
            self.rt.run_due_jobs(now);
        }
        self.wants_packets = self.rt.wants_packets();
        self.wants_items = self.rt.wants_items();
        self.last_service = Instant::now();
        if self.last_publish.elapsed() >= PUBLISH_EVERY {
            // Never wait on a scrape: skip this round if it holds the lock.
            if let Ok(mut r) = self.results.try_lock() {
                r.live.insert(self.core, (self.rt.stats(), self.rt.jobs()));
                self.last_publish = self.last_service;
            }
        }
    }

    #[inline]
    fn tick(&mut self) {
        self.events += 1;
        if self.events.is_multiple_of(SERVICE_EVERY_EVENTS)
            && self.last_service.elapsed() >= SERVICE_EVERY
        {
            self.service();
        }
    }
}

impl ItemSink for InlineSink {
    fn item(&mut self, item: Item) {
        if let Some(t) = &self.tap {
            t.offer(&item);
        }
        if self.wants_items {
            self.pending.push(item);
            if self.pending.len() >= self.batch {
                self.flush();
            }
        }
        self.tick();
    }

    #[inline]
    fn wants_packets(&self) -> bool {
        self.wants_packets
    }

    fn packet(&mut self, frame: &Frame<'_>, meta: &PacketMeta) {
        // Items of earlier packets meet their hooks before this packet does.
        self.flush();
        let info = packet_info(frame, meta, self.core);
        self.rt.on_packets_captured(std::iter::once(info));
        self.tick();
    }

    fn idle(&mut self) {
        self.flush();
        if self.last_service.elapsed() >= SERVICE_EVERY {
            self.service();
        }
    }

    fn finish(&mut self) {
        self.service();
        if let Ok(mut r) = self.results.lock() {
            r.live.remove(&self.core);
            r.stats.extend(self.rt.stats());
            r.counters.push((self.rt.id(), self.rt.counters()));
        }
    }
}

/// Writes agents' console lines to stderr as they come (`logging`'s
/// format), on its own thread, and hands them to the hub's link.
pub fn spawn_console_printer(
    rx: crossbeam_channel::Receiver<ConsoleLine>,
    hub: Option<crate::link::LinkTap>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("skua-console".into())
        .spawn(move || {
            use std::io::Write;
            let stderr = std::io::stderr();
            let emit = |out: &mut std::io::StderrLock<'_>, line: &ConsoleLine| {
                let _ = crate::logging::console_line(out, line);
                if let Some(tap) = &hub {
                    tap.console(crate::hub::console_line_json(line));
                }
            };
            for line in rx.iter() {
                let mut out = stderr.lock();
                emit(&mut out, &line);
                // Drain what is already queued before flushing.
                for more in rx.try_iter().take(1024) {
                    emit(&mut out, &more);
                }
                let _ = out.flush();
            }
        })
        .expect("spawning the console thread")
}

/// Runtime options for runtime `id` on `node`.
pub fn runtime_options(
    id: u32,
    node: &NodeInfo,
    cfg: &ScriptingConfig,
    console: &ConsoleSink,
    effects: &EffectSink,
    clock: Clock,
) -> RuntimeOptions {
    RuntimeOptions {
        id: RuntimeId(id),
        node: node.clone(),
        config: cfg.clone(),
        console: console.clone(),
        effects: effects.clone(),
        clock,
    }
}

/// The per-agent table printed at exit: one row per agent, runtime and
/// hook or job.
pub fn table(stats: &[HookStats]) -> String {
    let mut rows: Vec<&HookStats> = stats.iter().filter(|s| s.calls > 0 || s.errors > 0).collect();
    rows.sort_by(|a, b| {
        (&a.agent, a.runtime, a.site_name()).cmp(&(&b.agent, b.runtime, b.site_name()))
    });
    let mut out = format!(
        "{:<24} {:<5} {:<18} {:>10} {:>7} {:>6} {:>4} {:>9} {:>9} {:>9}\n",
        "agent", "rt", "hook", "calls", "errors", "intr", "oom", "p50 µs", "p99 µs", "p999 µs"
    );
    for s in rows {
        out.push_str(&format!(
            "{:<24} {:<5} {:<18} {:>10} {:>7} {:>6} {:>4} {:>9.1} {:>9.1} {:>9.1}\n",
            s.agent,
            s.runtime.to_string(),
            s.site_name(),
            s.calls,
            s.errors,
            s.interrupts,
            s.out_of_memory,
            s.p50_ns as f64 / 1e3,
            s.p99_ns as f64 / 1e3,
            s.p999_ns as f64 / 1e3
        ));
    }
    out
}

/// Where the edits of a watched agent folder go.
pub enum WatchTarget {
    /// Straight to the local runtimes.
    Runtimes(crate::executor::ExecutorHandle),
    /// Into the hub of this process (`skua run`): its store, dashboard and
    /// hub-side runtime see them, and its link hands them to the runtimes.
    Hub(crate::hub::HubHandle),
}

/// Applies the changes of an agent folder until `stop`: every `every`, a
/// changed or new agent that compiles is loaded into every runtime (the
/// others keep their state, capture does not pause); one that does not
/// compile is reported once and the running version kept; a removed file
/// removes the agent.
pub fn spawn_watcher(
    mut dir: crate::watch::AgentDir,
    every: Duration,
    es5_strict: bool,
    target: WatchTarget,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    use crate::watch::Change;
    use scripting::RuntimeEvent;
    use std::sync::atomic::Ordering;
    std::thread::Builder::new().name("skua-watch".into()).spawn(move || {
        let mut unreadable = false;
        while !stop.load(Ordering::Relaxed) {
            let until = Instant::now() + every;
            while Instant::now() < until && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(every.min(Duration::from_millis(50)));
            }
            let changes = match dir.look() {
                Ok(c) => {
                    unreadable = false;
                    c
                }
                Err(e) => {
                    if !std::mem::replace(&mut unreadable, true) {
                        tracing::warn!(
                            "watching {}: {e}; agents stay as they are",
                            dir.dir().display()
                        );
                    }
                    continue;
                }
            };
            for change in changes {
                if let Change::Upsert { name, source } = &change {
                    if let Err(e) = scripting::check_agent(name, source, es5_strict) {
                        tracing::warn!("agent {name} rejected, the running version is kept: {e}");
                        continue;
                    }
                }
                match (&target, change) {
                    (WatchTarget::Runtimes(executor), Change::Upsert { name, source }) => {
                        let n = executor.hub().broadcast(&RuntimeEvent::LoadAgent {
                            name: name.clone(),
                            source: source.into(),
                        });
                        tracing::info!("agent {name} (re)loaded into {n} runtimes");
                    }
                    (WatchTarget::Runtimes(executor), Change::Removed { name }) => {
                        let n = executor
                            .hub()
                            .broadcast(&RuntimeEvent::RemoveAgent { name: name.clone() });
                        tracing::info!("agent {name} removed from {n} runtimes");
                    }
                    (WatchTarget::Hub(hub), Change::Upsert { name, source }) => {
                        match hub.save_agent(&name, &source, Some(true)) {
                            Ok(_) => tracing::info!("agent {name} (re)loaded"),
                            Err(e) => tracing::warn!("agent {name} not saved: {e}"),
                        }
                    }
                    (WatchTarget::Hub(hub), Change::Removed { name }) => {
                        match hub.delete_agent(&name) {
                            Ok(_) => tracing::info!("agent {name} removed"),
                            Err(e) => tracing::warn!("agent {name} not removed: {e}"),
                        }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_hash_is_symmetric() {
        let a = (IpAddr::from([10, 0, 0, 1]), 40_000);
        let b = (IpAddr::from([10, 0, 0, 2]), 80);
        assert_eq!(flow_hash(a, b, 6), flow_hash(b, a, 6));
        assert_ne!(flow_hash(a, b, 6), flow_hash(a, b, 17));
    }

    /// A UDP/IPv4 packet in an Ethernet frame.
    fn udp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 29, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 9, 0, 0, b'x']);
        f
    }

    #[test]
    fn an_inline_runtime_takes_items_in_batches_and_keeps_their_order() {
        use scripting::testkit::http_get;
        let src = "function onItemCaptured(d) { console.log(d.request.path); }\n\
                   function onPacketCaptured(p) { console.log('packet ' + p.length); }";
        let (console, lines) = ConsoleSink::new(1024);
        let (effects, _requests) = EffectSink::new(16);
        let node = NodeInfo { ip: "127.0.0.1".into(), name: "t".into() };
        let cfg = ScriptingConfig { batch_size: 4, ..ScriptingConfig::default() };
        let opts = runtime_options(0, &node, &cfg, &console, &effects, Clock::System);
        let results = Arc::new(Mutex::new(InlineResults::default()));
        let mut sink =
            InlineSink::new(opts, &[("order".into(), src.into())], 0, results.clone(), None)
                .unwrap();
        let said = || lines.try_iter().map(|l| l.text).collect::<Vec<_>>();

        sink.item(http_get(1, "h", "/1", 200));
        sink.item(http_get(2, "h", "/2", 200));
        assert!(said().is_empty(), "items wait for their batch");
        // A packet hook sees the items of earlier packets first.
        let data = udp_frame();
        let frame = Frame {
            data: &data,
            wire_len: data.len() as u32,
            ts_ns: 1,
            link: dataplane::wire::LinkType::Ethernet,
        };
        let meta = dataplane::parse(frame.link, frame.data, frame.wire_len).unwrap();
        sink.packet(&frame, &meta);
        assert_eq!(said(), ["/1", "/2", "packet 43"]);

        for i in 3..=9 {
            sink.item(http_get(i, "h", &format!("/{i}"), 200));
        }
        // A full batch goes at once; the rest waits for idle or the end.
        assert_eq!(said(), ["/3", "/4", "/5", "/6"]);
        sink.item(http_get(10, "h", "/10", 200));
        sink.idle();
        assert_eq!(said(), ["/7", "/8", "/9", "/10"]);
        sink.item(http_get(11, "h", "/11", 200));
        sink.finish();
        assert_eq!(said(), ["/11"]);
        let r = results.lock().unwrap();
        let calls: u64 = r
            .stats
            .iter()
            .filter(|s| s.site == scripting::CallSite::Hook(scripting::Hook::ItemCaptured))
            .map(|s| s.calls)
            .sum();
        assert_eq!(calls, 11);
    }

    #[test]
    fn only_js_files_are_agents() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b.js"), "var x;").unwrap();
        std::fs::write(d.path().join("a.js"), "var y;").unwrap();
        std::fs::write(d.path().join("notes.txt"), "no").unwrap();
        let l = load_dir(d.path()).unwrap();
        assert_eq!(l.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        let empty = tempfile::tempdir().unwrap();
        assert!(load_dir(empty.path()).unwrap_err().to_string().contains("no .js agents"));
    }
}
