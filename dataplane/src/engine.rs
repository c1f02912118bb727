//! The dataplane cores: one pinned thread per core, each running
//! poll → parse → hand-off on packets it alone owns.
//!
//! Two shapes, chosen by the source:
//! - **per-core sources** (DPDK queues fed by symmetric RSS): core `k`
//!   polls its own source and parses what it gets;
//! - **one stream** (a capture file, AF_PACKET, a port without RSS): a
//!   dispatcher thread polls the source, parses each frame once, hashes it
//!   with the symmetric Toeplitz function and appends frame and parse
//!   result to core `k`'s current batch. Batches travel over a bounded SPSC
//!   ring and come back empty over a second one, so steady state allocates
//!   nothing. With one core the core polls the stream itself.
//!
//! A full ring never blocks a live source: the batch is dropped and its
//! frames counted as `ring_full`. A replay waits instead, so a file loses
//! nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::counters::{CoreCounters, DropReason, SharedCounters};
use crate::hash::{core_for, Toeplitz};
use crate::parse::{parse, PacketMeta};
use crate::source::{DeviceProbe, DeviceSample, Frame, PacketSource, Poll, SourceError};
use crate::wire::{IpProtocol, LinkType};

/// What a dataplane core does with each decoded packet: the hand-off
/// point for reassembly ([`crate::dissect::Dissector`]).
///
/// A handler is built on its core's thread by the factory given to
/// [`start`] and never leaves it, so it need not be `Send` (an agent
/// runtime running inline on the core is not).
pub trait PacketHandler {
    fn packet(&mut self, frame: &Frame<'_>, meta: &PacketMeta, counters: &mut CoreCounters);

    /// Called when the core found nothing to do (timers may run here).
    fn idle(&mut self, _counters: &mut CoreCounters) {}

    /// Called once when the core stops, after its last packet.
    fn finish(&mut self, _counters: &mut CoreCounters) {}

    /// The reassembly stage's counters, when this handler has one.
    fn reassembly(&self) -> Option<reassembly::ReassemblyCounters> {
        None
    }
}

/// Engine knobs; see `DataplaneConfig` for their documentation.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub cores: usize,
    pub pin_cores: bool,
    /// CPUs the cores are pinned to, in order (core k → cpus[k % len]).
    pub cpus: Vec<usize>,
    pub batch_frames: usize,
    pub ring_batches: usize,
    /// Stop after this long without a packet (once one was seen); 0 = never.
    pub idle_timeout: Duration,
    /// Stop after this long in total; 0 = never.
    pub duration: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            cores: 1,
            pin_cores: false,
            cpus: Vec::new(),
            batch_frames: 256,
            ring_batches: 64,
            idle_timeout: Duration::ZERO,
            duration: Duration::ZERO,
        }
    }
}

/// Where packets come from.
pub enum Sources {
    /// One stream for all cores (software dispatch).
    Single(Box<dyn PacketSource>),
    /// One source per core (hardware RSS); the length sets the core count.
    PerCore(Vec<Box<dyn PacketSource>>),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("could not start dataplane thread: {0}")]
    Spawn(std::io::Error),
    #[error("a dataplane thread panicked")]
    Panicked,
}

/// One core's result.
#[derive(Debug, Clone)]
pub struct CoreReport {
    pub core: usize,
    pub cpu: Option<usize>,
    pub counters: CoreCounters,
    pub reassembly: Option<reassembly::ReassemblyCounters>,
}

/// What a finished run counted.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub sources: Vec<String>,
    pub cores: Vec<CoreReport>,
    /// The dispatcher's counters (frames read and parse drops) when the
    /// source was a single stream spread over several cores.
    pub dispatcher: Option<CoreCounters>,
    /// Drops counted below skua (NIC, kernel, file), by name.
    pub source_drops: Vec<(String, u64)>,
    pub elapsed: Duration,
    /// Whether the run ended because a stop was requested.
    pub stopped: bool,
}

impl RunReport {
    /// Frames received and their bytes, and every drop by reason (dataplane
    /// reasons first, then the source's).
    pub fn total(&self) -> (u64, u64, Vec<(String, u64)>) {
        let mut all = CoreCounters::default();
        for c in &self.cores {
            all.add(&c.counters);
        }
        let (packets, bytes) = match &self.dispatcher {
            Some(d) => {
                all.add(d);
                (d.packets, d.bytes)
            }
            None => (all.packets, all.bytes),
        };
        let mut drops: Vec<(String, u64)> = DropReason::ALL
            .iter()
            .map(|r| (r.name().to_string(), all.drops[*r as usize]))
            .collect();
        drops.extend(self.source_drops.iter().cloned());
        (packets, bytes, drops)
    }

    /// Everything the cores (and dispatcher) counted, summed.
    pub fn sum(&self) -> CoreCounters {
        let mut all = CoreCounters::default();
        for c in &self.cores {
            all.add(&c.counters);
        }
        if let Some(d) = &self.dispatcher {
            all.add(d);
        }
        all
    }
}

/// Live view of a running engine, for progress lines and metrics.
#[derive(Clone)]
pub struct Monitor {
    pub cores: Arc<[SharedCounters]>,
    pub dispatcher: Option<Arc<SharedCounters>>,
    pub started: Instant,
    /// Readers of the sources' device counters (DPDK ports).
    pub devices: Arc<[DeviceProbe]>,
}

impl Monitor {
    /// Frames received so far and their bytes.
    pub fn received(&self) -> (u64, u64) {
        match &self.dispatcher {
            Some(d) => {
                let s = d.snapshot();
                (s.packets, s.bytes)
            }
            None => self
                .cores
                .iter()
                .map(|c| c.snapshot())
                .fold((0, 0), |a, s| (a.0 + s.packets, a.1 + s.bytes)),
        }
    }

    pub fn dropped(&self) -> u64 {
        let cores: u64 = self.cores.iter().map(|c| c.snapshot().dropped()).sum();
        cores + self.dispatcher.as_ref().map_or(0, |d| d.snapshot().dropped())
    }

    /// The devices' live port and queue counters (empty without DPDK).
    pub fn devices(&self) -> DeviceSample {
        let mut out = DeviceSample::default();
        self.devices.iter().for_each(|probe| probe(&mut out));
        out
    }
}

/// A started engine.
pub struct Running {
    monitor: Monitor,
    handles: Vec<thread::JoinHandle<Result<CoreResult, SourceError>>>,
    dispatcher: Option<thread::JoinHandle<Result<DispatchResult, SourceError>>>,
    stop: Arc<AtomicBool>,
}

struct CoreResult {
    report: CoreReport,
    source: Option<(String, Vec<(String, u64)>)>,
}

struct DispatchResult {
    counters: CoreCounters,
    source: (String, Vec<(String, u64)>),
}

impl Running {
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(|h| h.is_finished())
            && self.dispatcher.as_ref().is_none_or(|d| d.is_finished())
    }

    /// Waits for every thread and gathers their counts.
    pub fn wait(self) -> Result<RunReport, EngineError> {
        let mut report = RunReport {
            sources: Vec::new(),
            cores: Vec::new(),
            dispatcher: None,
            source_drops: Vec::new(),
            elapsed: Duration::ZERO,
            stopped: self.stop.load(Ordering::Relaxed),
        };
        let mut first_err = None;
        if let Some(d) = self.dispatcher {
            match d.join().map_err(|_| EngineError::Panicked)? {
                Ok(r) => {
                    report.dispatcher = Some(r.counters);
                    report.sources.push(r.source.0);
                    report.source_drops.extend(r.source.1);
                }
                Err(e) => first_err = Some(e),
            }
        }
        for h in self.handles {
            match h.join().map_err(|_| EngineError::Panicked)? {
                Ok(r) => {
                    if let Some((name, drops)) = r.source {
                        report.sources.push(name);
                        merge_drops(&mut report.source_drops, drops);
                    }
                    report.cores.push(r.report);
                }
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        report.cores.sort_by_key(|c| c.core);
        report.elapsed = self.monitor.started.elapsed();
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(report),
        }
    }
}

fn merge_drops(into: &mut Vec<(String, u64)>, from: Vec<(String, u64)>) {
    for (name, n) in from {
        match into.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => *v += n,
            None => into.push((name, n)),
        }
    }
}

fn source_drops(src: &dyn PacketSource) -> Vec<(String, u64)> {
    src.stats().drops.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Starts the cores (and the dispatcher when needed).
/// Starts the dataplane cores. `make_handler(core)` runs on each core's
/// thread, after pinning, so what it allocates is local to that core.
pub fn start<H, F>(
    sources: Sources,
    cfg: &EngineConfig,
    make_handler: F,
    stop: Arc<AtomicBool>,
) -> Result<Running, EngineError>
where
    H: PacketHandler + 'static,
    F: Fn(usize) -> H + Send + Sync + 'static,
{
    start_shared(sources, cfg, Arc::new(make_handler), stop)
}

fn start_shared<H, F>(
    sources: Sources,
    cfg: &EngineConfig,
    make_handler: Arc<F>,
    stop: Arc<AtomicBool>,
) -> Result<Running, EngineError>
where
    H: PacketHandler + 'static,
    F: Fn(usize) -> H + Send + Sync + 'static,
{
    let started = Instant::now();
    let deadline = (!cfg.duration.is_zero()).then(|| started + cfg.duration);
    match sources {
        Sources::PerCore(list) => {
            let shared: Arc<[SharedCounters]> =
                (0..list.len()).map(|_| SharedCounters::default()).collect();
            let devices: Arc<[DeviceProbe]> =
                list.iter().filter_map(|s| s.device_probe()).collect();
            let mut handles = Vec::new();
            for (core, mut source) in list.into_iter().enumerate() {
                let make = make_handler.clone();
                let (cpu, shared, stop, cfg2) =
                    (pick_cpu(cfg, core), shared.clone(), stop.clone(), cfg.clone());
                let h = thread::Builder::new()
                    .name(format!("skua-dp{core}"))
                    .spawn(move || {
                        pin(cpu);
                        source.on_thread_start()?;
                        let handler = make(core);
                        let mut core_loop = CoreLoop::new(core, handler, &shared[core]);
                        core_loop.run_source(source.as_mut(), &stop, &cfg2, deadline)?;
                        let desc = source.describe();
                        Ok(CoreResult {
                            report: core_loop.finish(cpu),
                            source: Some((desc, source_drops(source.as_ref()))),
                        })
                    })
                    .map_err(EngineError::Spawn)?;
                handles.push(h);
            }
            Ok(Running {
                monitor: Monitor { cores: shared, dispatcher: None, started, devices },
                handles,
                dispatcher: None,
                stop,
            })
        }
        // One core polls a single stream itself: no dispatcher needed.
        Sources::Single(source) if cfg.cores <= 1 => {
            start_shared(Sources::PerCore(vec![source]), cfg, make_handler, stop)
        }
        Sources::Single(source) => {
            start_dispatched(source, cfg, make_handler, stop, started, deadline)
        }
    }
}

fn pick_cpu(cfg: &EngineConfig, core: usize) -> Option<usize> {
    (cfg.pin_cores && !cfg.cpus.is_empty()).then(|| cfg.cpus[core % cfg.cpus.len()])
}

fn pin(cpu: Option<usize>) {
    if let Some(cpu) = cpu {
        let mut set = nix::sched::CpuSet::new();
        if set.set(cpu).is_ok() {
            // Pinning is best effort: a cpuset that forbids the CPU leaves
            // the thread where the scheduler puts it.
            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
        }
    }
}

/// The CPUs this process may run on (its affinity: the pod's cpuset).
pub fn affinity() -> Vec<usize> {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => {
            (0..nix::sched::CpuSet::count()).filter(|&i| set.is_set(i).unwrap_or(false)).collect()
        }
        Err(_) => Vec::new(),
    }
}

/// Idle back-off: spin briefly, then yield, then sleep, so an idle
/// replay or a quiet interface does not burn a core while a busy one
/// never sleeps.
struct Backoff(u32);

impl Backoff {
    fn reset(&mut self) {
        self.0 = 0;
    }

    fn wait(&mut self) {
        self.0 = self.0.saturating_add(1);
        match self.0 {
            0..=64 => std::hint::spin_loop(),
            65..=256 => thread::yield_now(),
            _ => thread::sleep(Duration::from_micros(50)),
        }
    }
}

struct CoreLoop<'a, H> {
    core: usize,
    handler: H,
    counters: CoreCounters,
    shared: &'a SharedCounters,
    /// When the reassembly counters were last copied out.
    reassembly_at: Instant,
}

impl<'a, H: PacketHandler> CoreLoop<'a, H> {
    fn new(core: usize, handler: H, shared: &'a SharedCounters) -> Self {
        let reassembly_at = Instant::now() - crate::counters::REASSEMBLY_PUBLISH_EVERY;
        Self { core, handler, counters: CoreCounters::default(), shared, reassembly_at }
    }

    /// Publishes the core's counters (every burst), and its reassembly
    /// counters every `REASSEMBLY_PUBLISH_EVERY` (`now`: the caller's clock
    /// reading, taken anyway).
    #[inline]
    fn publish(&mut self, now: Instant) {
        self.shared.publish(&self.counters);
        if now.duration_since(self.reassembly_at) >= crate::counters::REASSEMBLY_PUBLISH_EVERY {
            self.reassembly_at = now;
            if let Some(r) = self.handler.reassembly() {
                self.shared.publish_reassembly(r);
            }
        }
    }

    /// A frame this core received itself: count, parse, hand off.
    #[inline]
    fn frame(&mut self, f: &Frame<'_>) {
        let c = &mut self.counters;
        c.count_frame(f.wire_len, f.data.len());
        match parse(f.link, f.data, f.wire_len) {
            Ok(meta) => self.parsed(f, &meta),
            Err(reason) => c.drop(reason),
        }
    }

    /// A frame parsed here or by the dispatcher.
    #[inline]
    fn parsed(&mut self, f: &Frame<'_>, meta: &PacketMeta) {
        classify(&mut self.counters, meta);
        self.handler.packet(f, meta, &mut self.counters);
    }

    fn run_source(
        &mut self,
        source: &mut dyn PacketSource,
        stop: &AtomicBool,
        cfg: &EngineConfig,
        deadline: Option<Instant>,
    ) -> Result<(), SourceError> {
        let mut backoff = Backoff(0);
        let mut last_packet = Instant::now();
        let mut seen_any = false;
        loop {
            if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            match source.poll(&mut |f| self.frame(&f))? {
                Poll::Frames(_) => {
                    last_packet = Instant::now();
                    self.publish(last_packet);
                    backoff.reset();
                    seen_any = true;
                }
                Poll::Idle => {
                    self.handler.idle(&mut self.counters);
                    self.publish(Instant::now());
                    if seen_any
                        && !cfg.idle_timeout.is_zero()
                        && last_packet.elapsed() >= cfg.idle_timeout
                    {
                        break;
                    }
                    backoff.wait();
                }
                Poll::End => break,
            }
        }
        Ok(())
    }

    fn finish(mut self, cpu: Option<usize>) -> CoreReport {
        self.handler.finish(&mut self.counters);
        self.shared.publish(&self.counters);
        let reassembly = self.handler.reassembly();
        if let Some(r) = &reassembly {
            self.shared.publish_reassembly(r.clone());
        }
        CoreReport { core: self.core, cpu, counters: self.counters, reassembly }
    }
}

#[inline]
fn classify(c: &mut CoreCounters, m: &PacketMeta) {
    if m.ip_version == 4 {
        c.ipv4 += 1;
    } else {
        c.ipv6 += 1;
    }
    match m.protocol {
        IpProtocol::Tcp => c.tcp += 1,
        IpProtocol::Udp => c.udp += 1,
        IpProtocol::Icmp | IpProtocol::Icmpv6 => c.icmp += 1,
        _ => c.other_l4 += 1,
    }
    if m.fragment.is_some() {
        c.fragments += 1;
    }
    if m.snap_truncated {
        c.snap_truncated += 1;
    }
    if m.vlan_tags > 0 {
        c.vlan_tagged += 1;
    }
}

/// A frame as carried in a batch: bytes in the batch's buffer, decoded
/// headers beside them.
#[derive(Clone, Copy)]
struct Slot {
    offset: u32,
    len: u32,
    wire_len: u32,
    ts_ns: u64,
    link: LinkType,
    meta: PacketMeta,
}

struct Batch {
    data: Vec<u8>,
    slots: Vec<Slot>,
}

/// Bytes of frame data a batch holds before it is sent on.
const BATCH_BYTES: usize = 256 * 1024;

impl Batch {
    fn new(frames: usize) -> Self {
        Self { data: Vec::with_capacity(BATCH_BYTES), slots: Vec::with_capacity(frames) }
    }

    fn fits(&self, len: usize) -> bool {
        self.slots.len() < self.slots.capacity()
            && self.data.len() + len <= self.data.capacity().max(len)
    }

    fn clear(&mut self) {
        self.data.clear();
        self.slots.clear();
    }
}

struct Lane {
    tx: rtrb::Producer<Batch>,
    back: rtrb::Consumer<Batch>,
    current: Batch,
    /// Batches created for this lane so far; bounded by the ring size + 2.
    created: usize,
}

fn start_dispatched<H, F>(
    mut source: Box<dyn PacketSource>,
    cfg: &EngineConfig,
    make_handler: Arc<F>,
    stop: Arc<AtomicBool>,
    started: Instant,
    deadline: Option<Instant>,
) -> Result<Running, EngineError>
where
    H: PacketHandler + 'static,
    F: Fn(usize) -> H + Send + Sync + 'static,
{
    let n = cfg.cores.max(1);
    let shared: Arc<[SharedCounters]> = (0..n).map(|_| SharedCounters::default()).collect();
    let dispatch_shared = Arc::new(SharedCounters::default());
    let devices: Arc<[DeviceProbe]> = source.device_probe().into_iter().collect();
    let done = Arc::new(AtomicBool::new(false));
    let mut lanes = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for core in 0..n {
        let (tx, mut rx) = rtrb::RingBuffer::<Batch>::new(cfg.ring_batches.max(1));
        let (mut back_tx, back) = rtrb::RingBuffer::<Batch>::new(cfg.ring_batches.max(1) + 2);
        lanes.push(Lane { tx, back, current: Batch::new(cfg.batch_frames), created: 1 });
        let make = make_handler.clone();
        let (cpu, shared, done, stop) =
            (pick_cpu(cfg, core), shared.clone(), done.clone(), stop.clone());
        let h = thread::Builder::new()
            .name(format!("skua-dp{core}"))
            .spawn(move || {
                pin(cpu);
                let handler = make(core);
                let mut core_loop = CoreLoop::new(core, handler, &shared[core]);
                let mut backoff = Backoff(0);
                loop {
                    match rx.pop() {
                        Ok(mut batch) => {
                            for s in &batch.slots {
                                let data =
                                    &batch.data[s.offset as usize..(s.offset + s.len) as usize];
                                let f = Frame {
                                    data,
                                    wire_len: s.wire_len,
                                    ts_ns: s.ts_ns,
                                    link: s.link,
                                };
                                core_loop.counters.count_frame(s.wire_len, s.len as usize);
                                core_loop.parsed(&f, &s.meta);
                            }
                            core_loop.publish(Instant::now());
                            batch.clear();
                            // The return ring holds every batch this lane can own.
                            let _ = back_tx.push(batch);
                            backoff.reset();
                        }
                        Err(_) => {
                            if done.load(Ordering::Acquire) && rx.is_empty() {
                                break;
                            }
                            if stop.load(Ordering::Relaxed) && done.load(Ordering::Acquire) {
                                break;
                            }
                            core_loop.handler.idle(&mut core_loop.counters);
                            core_loop.publish(Instant::now());
                            backoff.wait();
                        }
                    }
                }
                Ok(CoreResult { report: core_loop.finish(cpu), source: None })
            })
            .map_err(EngineError::Spawn)?;
        handles.push(h);
    }

    let live = source.is_live();
    let (ring_batches, batch_frames) = (cfg.ring_batches.max(1), cfg.batch_frames.max(1));
    let idle_timeout = cfg.idle_timeout;
    let ds = dispatch_shared.clone();
    let stop2 = stop.clone();
    let dispatcher = thread::Builder::new()
        .name("skua-dispatch".into())
        .spawn(move || {
            let result = (|| {
                source.on_thread_start()?;
                let toeplitz = Toeplitz::default();
                let mut counters = CoreCounters::default();
                let mut backoff = Backoff(0);
                let mut last_packet = Instant::now();
                let mut seen_any = false;
                loop {
                    if stop2.load(Ordering::Relaxed)
                        || deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        break;
                    }
                    let polled = source.poll(&mut |f: Frame<'_>| {
                        counters.count_frame(f.wire_len, f.data.len());
                        let meta = match parse(f.link, f.data, f.wire_len) {
                            Ok(m) => m,
                            Err(r) => return counters.drop(r),
                        };
                        let lane = &mut lanes[core_for(toeplitz.packet(&meta), n)];
                        if !lane.current.fits(f.data.len()) {
                            send(lane, live, batch_frames, ring_batches, &mut counters, &stop2);
                        }
                        let b = &mut lane.current;
                        b.slots.push(Slot {
                            offset: b.data.len() as u32,
                            len: f.data.len() as u32,
                            wire_len: f.wire_len,
                            ts_ns: f.ts_ns,
                            link: f.link,
                            meta,
                        });
                        b.data.extend_from_slice(f.data);
                    })?;
                    match polled {
                        Poll::Frames(_) => {
                            ds.publish(&counters);
                            backoff.reset();
                            seen_any = true;
                            last_packet = Instant::now();
                        }
                        Poll::Idle => {
                            // Nothing arriving: send partial batches on so
                            // a quiet link does not hold packets back.
                            for lane in lanes.iter_mut() {
                                if !lane.current.slots.is_empty() {
                                    send(
                                        lane,
                                        live,
                                        batch_frames,
                                        ring_batches,
                                        &mut counters,
                                        &stop2,
                                    );
                                }
                            }
                            ds.publish(&counters);
                            if seen_any
                                && !idle_timeout.is_zero()
                                && last_packet.elapsed() >= idle_timeout
                            {
                                break;
                            }
                            backoff.wait();
                        }
                        Poll::End => break,
                    }
                }
                for lane in lanes.iter_mut() {
                    if !lane.current.slots.is_empty() {
                        send(
                            lane,
                            false,
                            batch_frames,
                            ring_batches,
                            &mut counters,
                            &AtomicBool::new(false),
                        );
                    }
                }
                ds.publish(&counters);
                Ok(DispatchResult {
                    counters,
                    source: (source.describe(), source_drops(source.as_ref())),
                })
            })();
            done.store(true, Ordering::Release);
            result
        })
        .map_err(EngineError::Spawn)?;

    Ok(Running {
        monitor: Monitor { cores: shared, dispatcher: Some(dispatch_shared), started, devices },
        handles,
        dispatcher: Some(dispatcher),
        stop,
    })
}

/// Sends the lane's current batch to its core and takes an empty one.
/// A live source never waits: with the ring full (or no batch free) the
/// batch's frames are dropped and counted. A replay waits for its core.
fn send(
    lane: &mut Lane,
    live: bool,
    batch_frames: usize,
    ring_batches: usize,
    counters: &mut CoreCounters,
    stop: &AtomicBool,
) {
    let give_up = |lane: &mut Lane, counters: &mut CoreCounters| {
        if live {
            counters.drops[DropReason::RingFull as usize] += lane.current.slots.len() as u64;
        }
        lane.current.clear();
    };
    while lane.tx.slots() == 0 {
        if live || stop.load(Ordering::Relaxed) {
            return give_up(lane, counters);
        }
        thread::yield_now();
    }
    let fresh = loop {
        match lane.back.pop() {
            Ok(b) => break b,
            Err(_) if lane.created < ring_batches + 2 => {
                lane.created += 1;
                break Batch::new(batch_frames);
            }
            Err(_) if live || stop.load(Ordering::Relaxed) => return give_up(lane, counters),
            Err(_) => thread::yield_now(),
        }
    };
    let full = std::mem::replace(&mut lane.current, fresh);
    // Room was checked above and this thread is the ring's only producer.
    let _ = lane.tx.push(full);
}
