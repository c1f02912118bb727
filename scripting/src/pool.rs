//! `ScriptPool`: N runtimes on N threads (script cores, optionally pinned),
//! fed by lock-free SPSC rings. Each producer (a capture core) owns one
//! item ring and one packet ring per script core; `flow_hash % N` picks the
//! core, so one flow always meets the same agent state. A full ring drops
//! and counts; a producer never blocks, locks or allocates. Agents are
//! (re)loaded through a control channel to every core while the rings keep
//! flowing.
//!
//! Each core's loop: control messages, packet rings, item rings (a batch of
//! at most `batchSize` per ring per turn), completions and events, due
//! jobs; when there was nothing to do it waits on its control channel for
//! `idleSleepUs`. Shutdown drains the rings, fires no more jobs, and
//! returns each core's final stats.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use reassembly::{Item, NodeInfo};

use crate::config::ScriptingConfig;
use crate::console::{ConsoleSink, RuntimeId};
use crate::effects::{EffectSink, Mailbox};
use crate::error::{Es5Finding, LoadError, ScriptError};
use crate::jobs::JobInfo;
use crate::packet::PacketInfo;
use crate::runtime::{AgentRuntime, AgentStatus, Clock, RuntimeCounters, RuntimeOptions};
use crate::stats::{Hook, HookStats};

/// How long pool calls wait for a busy core to answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a script core works through one ring read before it looks at
/// its backlog again (`AgentRuntime::inputs_per`): with a slow agent
/// loaded, a batch of `batchSize` items could take long enough to
/// overflow the rings before the core sheds it.
const SHED_SLICE: Duration = Duration::from_millis(1);

/// What a pool is built from.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub node: NodeInfo,
    /// `scriptCores` runtimes (at least 1 here; 0 means inline, which is not
    /// a pool), pinned to `scriptCpus` when given.
    pub config: ScriptingConfig,
    /// Capture cores that will push: one [`Producer`] each.
    pub producers: usize,
    pub console: ConsoleSink,
    pub effects: EffectSink,
    /// Id of the first core's runtime; the others follow.
    pub first_runtime_id: u32,
}

type Reply<T> = Sender<T>;

enum Control {
    Load {
        name: String,
        source: String,
        reply: Reply<Result<Vec<Es5Finding>, LoadError>>,
    },
    Remove {
        name: String,
        reply: Reply<bool>,
    },
    Agents(Reply<Vec<AgentStatus>>),
    Stats(Reply<Vec<HookStats>>),
    Counters(Reply<RuntimeCounters>),
    Jobs(Reply<Vec<JobInfo>>),
    RunJob {
        tag: String,
        reply: Reply<bool>,
    },
    /// Applies what the mailbox holds now (agent loads, env), then answers.
    Sync(Reply<()>),
    Shutdown,
}

/// Totals of one producer, readable from any thread.
#[derive(Debug, Default)]
struct ProducerShared {
    items_pushed: AtomicU64,
    items_dropped_ring_full: AtomicU64,
    items_skipped_no_hook: AtomicU64,
    packets_pushed: AtomicU64,
    packets_dropped_ring_full: AtomicU64,
}

/// Counters of one producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProducerCounters {
    pub items_pushed: u64,
    /// Items dropped because the script core's ring was full.
    pub items_dropped_ring_full: u64,
    /// Items not queued because no agent on that core defines
    /// `onItemCaptured`.
    pub items_skipped_no_hook: u64,
    pub packets_pushed: u64,
    pub packets_dropped_ring_full: u64,
}

impl ProducerShared {
    fn snapshot(&self) -> ProducerCounters {
        ProducerCounters {
            items_pushed: self.items_pushed.load(Ordering::Relaxed),
            items_dropped_ring_full: self.items_dropped_ring_full.load(Ordering::Relaxed),
            items_skipped_no_hook: self.items_skipped_no_hook.load(Ordering::Relaxed),
            packets_pushed: self.packets_pushed.load(Ordering::Relaxed),
            packets_dropped_ring_full: self.packets_dropped_ring_full.load(Ordering::Relaxed),
        }
    }
}

/// A capture core's end of the rings: owned by that core alone.
pub struct Producer {
    items: Vec<rtrb::Producer<Item>>,
    packets: Vec<rtrb::Producer<PacketInfo>>,
    /// Per script core, the hooks its agents define (bit `1 << Hook`).
    masks: Arc<[AtomicU8]>,
    local: ProducerCounters,
    shared: Arc<ProducerShared>,
}

impl Producer {
    #[inline]
    fn core(&self, flow_hash: u64) -> usize {
        (flow_hash % self.items.len().max(1) as u64) as usize
    }

    /// Some script core runs an agent with `onPacketCaptured`: only then
    /// build and push packet infos.
    #[inline]
    pub fn wants_packets(&self) -> bool {
        let bit = Hook::PacketCaptured.bit();
        self.masks.iter().any(|m| m.load(Ordering::Relaxed) & bit != 0)
    }

    /// Some script core runs an agent with `onItemCaptured`.
    #[inline]
    pub fn wants_items(&self) -> bool {
        let bit = Hook::ItemCaptured.bit();
        self.masks.iter().any(|m| m.load(Ordering::Relaxed) & bit != 0)
    }

    /// Queues an item for the script core of its flow. `false` when it was
    /// not queued: the ring is full (counted as `items_dropped_ring_full`)
    /// or no agent there wants items (`items_skipped_no_hook`). Never blocks.
    #[inline]
    pub fn push_item(&mut self, flow_hash: u64, item: Item) -> bool {
        let j = self.core(flow_hash);
        let wanted = self
            .masks
            .get(j)
            .is_some_and(|m| m.load(Ordering::Relaxed) & Hook::ItemCaptured.bit() != 0);
        if !wanted {
            self.local.items_skipped_no_hook += 1;
            self.shared
                .items_skipped_no_hook
                .store(self.local.items_skipped_no_hook, Ordering::Relaxed);
            return false;
        }
        // The item comes back inside the error on a full ring; it is dropped
        // right here either way.
        match self.items.get_mut(j).map(|r| r.push(item).is_ok()) {
            Some(true) => {
                self.local.items_pushed += 1;
                self.shared.items_pushed.store(self.local.items_pushed, Ordering::Relaxed);
                true
            }
            _ => {
                self.local.items_dropped_ring_full += 1;
                self.shared
                    .items_dropped_ring_full
                    .store(self.local.items_dropped_ring_full, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues a packet info for the script core of its flow; `false` (and
    /// counted) when the ring is full. Call only while
    /// [`Producer::wants_packets`].
    #[inline]
    pub fn push_packet(&mut self, flow_hash: u64, info: PacketInfo) -> bool {
        let j = self.core(flow_hash);
        match self.packets.get_mut(j).map(|r| r.push(info)) {
            Some(Ok(())) => {
                self.local.packets_pushed += 1;
                self.shared.packets_pushed.store(self.local.packets_pushed, Ordering::Relaxed);
                true
            }
            _ => {
                self.local.packets_dropped_ring_full += 1;
                self.shared
                    .packets_dropped_ring_full
                    .store(self.local.packets_dropped_ring_full, Ordering::Relaxed);
                false
            }
        }
    }

    pub fn counters(&self) -> ProducerCounters {
        self.local
    }
}

/// What a script core reports when it stops.
#[derive(Debug, Clone)]
pub struct CoreReport {
    pub runtime: RuntimeId,
    pub stats: Vec<HookStats>,
    pub counters: RuntimeCounters,
    pub agents: Vec<AgentStatus>,
}

/// What the pool reports at shutdown.
#[derive(Debug, Clone)]
pub struct PoolReport {
    pub cores: Vec<CoreReport>,
    pub producers: Vec<ProducerCounters>,
}

impl PoolReport {
    /// All cores' hook stats.
    pub fn stats(&self) -> Vec<HookStats> {
        self.cores.iter().flat_map(|c| c.stats.iter().cloned()).collect()
    }
}

struct Core {
    id: RuntimeId,
    control: Sender<Control>,
    mailbox: Mailbox,
    thread: Option<JoinHandle<CoreReport>>,
}

pub struct ScriptPool {
    cores: Vec<Core>,
    masks: Arc<[AtomicU8]>,
    producers: Vec<Arc<ProducerShared>>,
}

struct CoreLoop {
    rt: AgentRuntime,
    control: Receiver<Control>,
    items: Vec<rtrb::Consumer<Item>>,
    packets: Vec<rtrb::Consumer<PacketInfo>>,
    mask: Arc<[AtomicU8]>,
    index: usize,
    batch: usize,
    idle: Duration,
}

impl CoreLoop {
    fn publish_mask(&self) {
        if let Some(m) = self.mask.get(self.index) {
            m.store(self.rt.hook_mask(), Ordering::Relaxed);
        }
    }

    /// Handles one control message; `true` on shutdown.
    fn control(&mut self, c: Control) -> bool {
        match c {
            // The hook mask is published before the answer, so a caller that
            // loaded an agent finds producers routing to it.
            Control::Load { name, source, reply } => {
                let r = self.rt.load_agent(&name, &source);
                self.publish_mask();
                let _ = reply.send(r);
            }
            Control::Remove { name, reply } => {
                let r = self.rt.remove_agent(&name);
                self.publish_mask();
                let _ = reply.send(r);
            }
            Control::Agents(r) => {
                let _ = r.send(self.rt.agents());
            }
            Control::Stats(r) => {
                let _ = r.send(self.rt.stats());
            }
            Control::Counters(r) => {
                let _ = r.send(self.rt.counters());
            }
            Control::Jobs(r) => {
                let _ = r.send(self.rt.jobs());
            }
            Control::RunJob { tag, reply } => {
                let _ = reply.send(self.rt.run_job_now(&tag));
            }
            Control::Sync(reply) => {
                self.rt.poll_completions();
                self.publish_mask();
                let _ = reply.send(());
            }
            Control::Shutdown => return true,
        }
        self.publish_mask();
        false
    }

    /// How full the fullest input ring is, 0 to 1.
    fn fill(&self) -> f32 {
        let fill = |slots: usize, cap: usize| slots as f32 / cap.max(1) as f32;
        let items = self.items.iter().map(|c| fill(c.slots(), c.buffer().capacity()));
        let packets = self.packets.iter().map(|c| fill(c.slots(), c.buffer().capacity()));
        items.chain(packets).fold(0.0, f32::max)
    }

    /// One pass over the rings; returns inputs handled. The runtime hears
    /// the backlog first (it may shed its costliest agent), and each read
    /// takes no more inputs than the agents it calls get through in
    /// [`SHED_SLICE`].
    fn drain_rings(&mut self) -> usize {
        let mut work = 0;
        let fill = self.fill();
        self.rt.backlog(fill);
        let batch = self.batch.min(self.rt.inputs_per(Hook::PacketCaptured, SHED_SLICE));
        for c in &mut self.packets {
            let n = c.slots().min(batch);
            if n == 0 {
                continue;
            }
            if let Ok(chunk) = c.read_chunk(n) {
                work += n;
                if self.rt.wants_packets() {
                    self.rt.on_packets_captured(chunk);
                } else {
                    // Queued before the last agent with the hook left.
                    chunk.commit_all();
                }
            }
        }
        let batch = self.batch.min(self.rt.inputs_per(Hook::ItemCaptured, SHED_SLICE));
        for c in &mut self.items {
            let n = c.slots().min(batch);
            if n == 0 {
                continue;
            }
            if let Ok(chunk) = c.read_chunk(n) {
                work += n;
                if self.rt.wants_items() {
                    self.rt.on_items_captured(chunk);
                } else {
                    // Queued before the last agent with the hook left.
                    chunk.commit_all();
                }
            }
        }
        work
    }

    fn run(mut self) -> CoreReport {
        let mut stopping = false;
        loop {
            while let Ok(c) = self.control.try_recv() {
                stopping |= self.control(c);
            }
            let mut work = self.drain_rings();
            work += self.rt.poll_completions();
            if !stopping {
                let now = SystemTime::now();
                if self.rt.next_job_due().is_some_and(|d| d <= now) {
                    work += self.rt.run_due_jobs(now);
                }
            }
            // Quarantines change the mask between control messages.
            self.publish_mask();
            if stopping && work == 0 {
                break;
            }
            if work == 0 {
                match self.control.recv_timeout(self.idle) {
                    Ok(c) => stopping |= self.control(c),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => stopping = true,
                }
            }
        }
        if let Some(m) = self.mask.get(self.index) {
            m.store(0, Ordering::Relaxed);
        }
        CoreReport {
            runtime: self.rt.id(),
            stats: self.rt.stats(),
            counters: self.rt.counters(),
            agents: self.rt.agents(),
        }
    }
}

fn pin(cpu: usize) -> Result<(), String> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| format!("pin to CPU {cpu}: {e}"))
}

impl ScriptPool {
    /// Starts `scriptCores` runtimes and returns the pool and one
    /// [`Producer`] per capture core.
    pub fn start(opts: PoolOptions) -> Result<(ScriptPool, Vec<Producer>), ScriptError> {
        opts.config.validate()?;
        let n = usize::from(opts.config.script_cores.max(1));
        let masks: Arc<[AtomicU8]> = (0..n).map(|_| AtomicU8::new(0)).collect();
        let ring = opts.config.ring_capacity as usize;
        let pring = opts.config.packet_ring_capacity as usize;
        // rings[core][producer]
        let mut item_consumers: Vec<Vec<rtrb::Consumer<Item>>> =
            (0..n).map(|_| Vec::new()).collect();
        let mut packet_consumers: Vec<Vec<rtrb::Consumer<PacketInfo>>> =
            (0..n).map(|_| Vec::new()).collect();
        let mut producers = Vec::with_capacity(opts.producers);
        let mut shared = Vec::with_capacity(opts.producers);
        for _ in 0..opts.producers {
            let mut items = Vec::with_capacity(n);
            let mut packets = Vec::with_capacity(n);
            for j in 0..n {
                let (p, c) = rtrb::RingBuffer::new(ring);
                items.push(p);
                if let Some(v) = item_consumers.get_mut(j) {
                    v.push(c);
                }
                let (p, c) = rtrb::RingBuffer::new(pring);
                packets.push(p);
                if let Some(v) = packet_consumers.get_mut(j) {
                    v.push(c);
                }
            }
            let s = Arc::new(ProducerShared::default());
            shared.push(s.clone());
            producers.push(Producer {
                items,
                packets,
                masks: masks.clone(),
                local: ProducerCounters::default(),
                shared: s,
            });
        }
        let stack =
            (opts.config.max_stack_kb as usize).saturating_mul(1024).saturating_add(2 << 20);
        let mut cores = Vec::with_capacity(n);
        let mut failed: Option<ScriptError> = None;
        for (j, (items, packets)) in item_consumers.into_iter().zip(packet_consumers).enumerate() {
            let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
            let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<Mailbox, String>>(1);
            let id = RuntimeId(opts.first_runtime_id.saturating_add(j as u32));
            let ropts = RuntimeOptions {
                id,
                node: opts.node.clone(),
                config: opts.config.clone(),
                console: opts.console.clone(),
                effects: opts.effects.clone(),
                clock: Clock::System,
            };
            let cpu = opts.config.script_cpus.get(j).copied();
            let mask = masks.clone();
            let batch = opts.config.batch_size as usize;
            let idle = Duration::from_micros(opts.config.idle_sleep_us);
            let spawn = std::thread::Builder::new()
                .name(format!("skua-script-{j}"))
                .stack_size(stack)
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        if let Err(e) = pin(cpu) {
                            let _ = ready_tx.send(Err(e));
                            return CoreReport {
                                runtime: id,
                                stats: Vec::new(),
                                counters: RuntimeCounters::default(),
                                agents: Vec::new(),
                            };
                        }
                    }
                    let rt = match AgentRuntime::new(ropts) {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return CoreReport {
                                runtime: id,
                                stats: Vec::new(),
                                counters: RuntimeCounters::default(),
                                agents: Vec::new(),
                            };
                        }
                    };
                    let _ = ready_tx.send(Ok(rt.mailbox()));
                    CoreLoop { rt, control: ctl_rx, items, packets, mask, index: j, batch, idle }
                        .run()
                });
            let thread = match spawn {
                Ok(t) => t,
                Err(source) => {
                    failed = Some(ScriptError::Spawn { core: j, source });
                    break;
                }
            };
            match ready_rx.recv() {
                Ok(Ok(mailbox)) => {
                    cores.push(Core { id, control: ctl_tx, mailbox, thread: Some(thread) })
                }
                Ok(Err(msg)) => {
                    let _ = thread.join();
                    failed = Some(ScriptError::Engine(format!("script core {j}: {msg}")));
                    break;
                }
                Err(_) => {
                    let _ = thread.join();
                    failed = Some(ScriptError::CoreGone { core: j });
                    break;
                }
            }
        }
        let pool = ScriptPool { cores, masks, producers: shared };
        if let Some(e) = failed {
            pool.shutdown();
            return Err(e);
        }
        Ok((pool, producers))
    }

    pub fn len(&self) -> usize {
        self.cores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cores.is_empty()
    }

    pub fn runtime_ids(&self) -> Vec<RuntimeId> {
        self.cores.iter().map(|c| c.id).collect()
    }

    /// Each core's mailbox (pod events go to all of them).
    pub fn mailboxes(&self) -> Vec<Mailbox> {
        self.cores.iter().map(|c| c.mailbox.clone()).collect()
    }

    pub fn wants_packets(&self) -> bool {
        self.masks.iter().any(|m| m.load(Ordering::Relaxed) & Hook::PacketCaptured.bit() != 0)
    }

    fn ask<T>(&self, make: impl Fn(Reply<T>) -> Control) -> Result<Vec<T>, ScriptError> {
        let mut waiting = Vec::with_capacity(self.cores.len());
        for (j, c) in self.cores.iter().enumerate() {
            let (tx, rx) = crossbeam_channel::bounded(1);
            c.control.send(make(tx)).map_err(|_| ScriptError::CoreGone { core: j })?;
            waiting.push(rx);
        }
        waiting
            .into_iter()
            .enumerate()
            .map(|(j, rx)| {
                rx.recv_timeout(CONTROL_TIMEOUT).map_err(|e| match e {
                    crossbeam_channel::RecvTimeoutError::Timeout => ScriptError::CoreTimeout {
                        core: j,
                        waited_ms: CONTROL_TIMEOUT.as_millis() as u64,
                    },
                    crossbeam_channel::RecvTimeoutError::Disconnected => {
                        ScriptError::CoreGone { core: j }
                    }
                })
            })
            .collect()
    }

    /// Loads (or reloads) an agent on every core, while the rings keep
    /// flowing. Returns its ES5 warnings.
    pub fn load_agent(&self, name: &str, source: &str) -> Result<Vec<Es5Finding>, ScriptError> {
        let answers = self.ask(|reply| Control::Load {
            name: name.to_owned(),
            source: source.to_owned(),
            reply,
        })?;
        let mut warnings = Vec::new();
        for a in answers {
            warnings = a?;
        }
        Ok(warnings)
    }

    /// Removes an agent from every core; `true` if some core had it.
    pub fn remove_agent(&self, name: &str) -> Result<bool, ScriptError> {
        Ok(self
            .ask(|reply| Control::Remove { name: name.to_owned(), reply })?
            .into_iter()
            .any(|x| x))
    }

    /// Agent status per core (quarantine is per core).
    pub fn agents(&self) -> Result<Vec<(RuntimeId, Vec<AgentStatus>)>, ScriptError> {
        let ids = self.runtime_ids();
        Ok(ids.into_iter().zip(self.ask(Control::Agents)?).collect())
    }

    pub fn stats(&self) -> Result<Vec<HookStats>, ScriptError> {
        Ok(self.ask(Control::Stats)?.into_iter().flatten().collect())
    }

    pub fn counters(&self) -> Result<Vec<(RuntimeId, RuntimeCounters)>, ScriptError> {
        let ids = self.runtime_ids();
        Ok(ids.into_iter().zip(self.ask(Control::Counters)?).collect())
    }

    pub fn jobs(&self) -> Result<Vec<(RuntimeId, Vec<JobInfo>)>, ScriptError> {
        let ids = self.runtime_ids();
        Ok(ids.into_iter().zip(self.ask(Control::Jobs)?).collect())
    }

    /// `jobs.run(tag)` on every core; `true` if some core had the job.
    pub fn run_job(&self, tag: &str) -> Result<bool, ScriptError> {
        Ok(self.ask(|reply| Control::RunJob { tag: tag.to_owned(), reply })?.into_iter().any(|x| x))
    }

    /// Returns once every core has applied what its mailbox held when
    /// this was called (agents and env sent to it): a worker holds capture
    /// on it until the hub's agents run.
    pub fn sync(&self) -> Result<(), ScriptError> {
        self.ask(Control::Sync).map(|_| ())
    }

    /// Producers' counters so far.
    pub fn producer_counters(&self) -> Vec<ProducerCounters> {
        self.producers.iter().map(|p| p.snapshot()).collect()
    }

    /// Stops every core after it drained its rings (no job fires once
    /// shutdown began) and returns the final stats.
    pub fn shutdown(mut self) -> PoolReport {
        for c in &self.cores {
            let _ = c.control.send(Control::Shutdown);
        }
        let mut reports = Vec::with_capacity(self.cores.len());
        for c in &mut self.cores {
            if let Some(t) = c.thread.take() {
                match t.join() {
                    Ok(r) => reports.push(r),
                    Err(_) => reports.push(CoreReport {
                        runtime: c.id,
                        stats: Vec::new(),
                        counters: RuntimeCounters::default(),
                        agents: Vec::new(),
                    }),
                }
            }
        }
        PoolReport { cores: reports, producers: self.producer_counters() }
    }
}

impl Drop for ScriptPool {
    fn drop(&mut self) {
        for c in &self.cores {
            let _ = c.control.send(Control::Shutdown);
        }
        for c in &mut self.cores {
            if let Some(t) = c.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::console::ConsoleLine;
    use crate::testkit::{http_get, packet, BASE_TS_NS};

    fn start(
        cores: u16,
        tweak: impl FnOnce(&mut ScriptingConfig),
    ) -> (ScriptPool, Vec<Producer>, crossbeam_channel::Receiver<ConsoleLine>) {
        let mut config = ScriptingConfig {
            script_cores: cores,
            idle_sleep_us: 50,
            ..ScriptingConfig::default()
        };
        tweak(&mut config);
        let (console, rx) = ConsoleSink::new(65_536);
        let (effects, _erx) = EffectSink::new(16);
        let (pool, producers) = ScriptPool::start(PoolOptions {
            node: NodeInfo { ip: "127.0.0.1".into(), name: "n1".into() },
            config,
            producers: 2,
            console,
            effects,
            first_runtime_id: 10,
        })
        .unwrap();
        (pool, producers, rx)
    }

    fn wait_items(pool: &ScriptPool, n: u64) {
        let t = Instant::now();
        while pool.counters().unwrap().iter().map(|(_, c)| c.items).sum::<u64>() < n {
            assert!(t.elapsed() < Duration::from_secs(10), "items not processed");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn items_meet_the_core_of_their_flow() {
        let (pool, mut producers, rx) = start(2, |_| {});
        assert_eq!(pool.runtime_ids(), vec![RuntimeId(10), RuntimeId(11)]);
        pool.load_agent("flows", "var seen = {}; function onItemCaptured(d) { seen[d.stream] = true; }\nfunction onHubAction() { console.log(Object.keys(seen).sort().join(',')); }").unwrap();
        for i in 0..40u64 {
            let p = &mut producers[(i % 2) as usize];
            assert!(p.push_item(i, http_get(i, "h", "/", 200)));
        }
        wait_items(&pool, 40);
        for mb in pool.mailboxes() {
            assert!(mb.hub_action("dump", serde_json::Value::Null));
        }
        let t = Instant::now();
        let mut lines = Vec::new();
        while lines.len() < 2 && t.elapsed() < Duration::from_secs(5) {
            lines.extend(rx.try_iter());
            std::thread::sleep(Duration::from_millis(2));
        }
        let by_rt = |rt: u32| {
            lines.iter().find(|l| l.runtime == RuntimeId(rt)).map(|l| l.text.clone()).unwrap()
        };
        let even: Vec<String> =
            (0..40).filter(|i| i % 2 == 0).map(|i: u64| i.to_string()).collect();
        let mut even_sorted = even.clone();
        even_sorted.sort();
        assert_eq!(by_rt(10), even_sorted.join(","), "flow hash % 2 == 0 → core 0");
        let report = pool.shutdown();
        assert_eq!(report.cores.len(), 2);
        let calls: u64 = report
            .stats()
            .iter()
            .filter(|s| s.site == crate::CallSite::Hook(Hook::ItemCaptured))
            .map(|s| s.calls)
            .sum();
        assert_eq!(calls, 40);
        assert_eq!(report.producers.iter().map(|p| p.items_pushed).sum::<u64>(), 40);
    }

    #[test]
    fn a_full_ring_drops_and_counts_never_blocks() {
        let (pool, mut producers, _rx) = start(1, |c| c.ring_capacity = 8);
        pool.load_agent(
            "slow",
            "function onItemCaptured(d) { var t = Date.now(); while (Date.now() - t < 2) {} }",
        )
        .unwrap();
        let t = Instant::now();
        let mut accepted = 0u64;
        for i in 0..500u64 {
            if producers[0].push_item(i, http_get(i, "h", "/", 200)) {
                accepted += 1;
            }
        }
        assert!(t.elapsed() < Duration::from_millis(500), "pushing never waits: {:?}", t.elapsed());
        let c = producers[0].counters();
        assert_eq!(c.items_pushed, accepted);
        assert_eq!(c.items_pushed + c.items_dropped_ring_full, 500);
        assert!(c.items_dropped_ring_full > 400, "{c:?}");
        let report = pool.shutdown();
        // Shutdown drains what was queued.
        assert_eq!(report.cores[0].counters.items, accepted);
        assert_eq!(report.producers[0].items_dropped_ring_full, c.items_dropped_ring_full);
    }

    #[test]
    fn hooks_gate_the_producer_and_reload_is_hot() {
        let (pool, mut producers, rx) = start(1, |c| c.script_cpus = vec![0]);
        assert!(!producers[0].wants_items() && !producers[0].wants_packets());
        assert!(!producers[0].push_item(1, http_get(1, "h", "/", 200)), "no agent: nothing queued");
        assert_eq!(producers[0].counters().items_skipped_no_hook, 1);
        pool.load_agent("keep", "var n = 0; function onItemCaptured(d) { n++; } function onHubAction() { console.log('keep', n); }").unwrap();
        pool.load_agent("pk", "var bytes = 0; function onPacketCaptured(i) { bytes += i.length; } function onHubAction() { console.log('pk', bytes); }").unwrap();
        assert!(producers[0].wants_items() && producers[0].wants_packets() && pool.wants_packets());
        for i in 0..10u64 {
            assert!(producers[0].push_item(i, http_get(i, "h", "/", 200)));
            assert!(producers[0].push_packet(i, packet(BASE_TS_NS + i, 100)));
        }
        wait_items(&pool, 10);
        // Reload one agent while the other keeps its state.
        pool.load_agent("pk", "function onHubAction() { console.log('pk2'); }").unwrap();
        assert!(!producers[0].wants_packets());
        for i in 10..15u64 {
            assert!(producers[0].push_item(i, http_get(i, "h", "/", 200)));
        }
        wait_items(&pool, 15);
        pool.mailboxes()[0].hub_action("x", serde_json::Value::Null);
        let t = Instant::now();
        let mut lines: Vec<String> = Vec::new();
        while lines.len() < 2 && t.elapsed() < Duration::from_secs(5) {
            lines.extend(rx.try_iter().map(|l| l.text));
            std::thread::sleep(Duration::from_millis(2));
        }
        lines.sort();
        assert_eq!(lines, vec!["keep 15", "pk2"]);
        let err = pool.load_agent("bad", "var x = ;").unwrap_err();
        assert!(err.to_string().contains("bad.js:1:"), "{err}");
        assert_eq!(pool.agents().unwrap()[0].1.len(), 2);
        pool.shutdown();
    }
}
