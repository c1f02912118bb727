//! The executor: answers agents' I/O helpers on the control plane.
//!
//! It owns a tokio multi-thread runtime whose threads (workers and the
//! blocking pool) are pinned to the housekeeping CPUs, never to a capture or
//! script core; and one intake thread that drains the runtimes' bounded
//! effect channel (`scripting::EffectSink`). Each request goes to its
//! integration's *lane*: a bounded queue (`integrations.<name>.queue`)
//! served by at most `concurrency` deliveries at once. A full lane rejects
//! the request at once (the agent's Promise rejects with `queue full`) and
//! counts it; lanes share nothing, so a slow or dead endpoint fills only its
//! own lane. `hub.action` and `prometheus.metric` need no I/O and are
//! answered on the intake thread.
//!
//! Every request is answered exactly once: with its result, with its error
//! after the last retry, with a rejection, or — if the executor is dropped
//! mid-delivery — with "abandoned at shutdown" (the reply's `Drop`).
//!
//! Shutdown ([`Executor::shutdown`]): the intake drains what is still in the
//! effect channel, the lanes close and finish their queues, all within
//! `integrations.drain_timeout_ms`; what is unfinished then is abandoned
//! and counted.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use scripting::{Completion, Effect, EffectRequest, EffectResult, PcapSelect};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

use crate::integrations::config::LaneConfig;
use crate::integrations::counters::IntegrationCounters;
use crate::integrations::file::{FileLimits, FileOp, FileStore, Roots};
use crate::integrations::http::HttpClient;
use crate::integrations::hub::HubRouter;
use crate::integrations::pcap::{PcapStore, Selection, StoreStats};
use crate::integrations::prometheus::{AgentFamily, AgentMetrics};
use crate::integrations::retry::{with_retries, Failed};
use crate::integrations::storage::{self, AzureAuth, NodePrefix, Stores, Target};
use crate::integrations::{block_pod, chatgpt, elastic, influxdb, kinesis, slack, webhook};
use crate::integrations::{Integration, IntegrationError, IntegrationSnapshot, IntegrationsConfig};
use crate::kube::NameHistory;
use dataplane::retention::Retention;

/// Where the executor runs and what it needs from the rest of skua.
#[derive(Debug, Clone, Default)]
pub struct ExecutorContext {
    /// CPUs for the control plane's threads: the housekeeping CPUs (see
    /// [`housekeeping_cpus`]). Empty: not pinned.
    pub cpus: Vec<usize>,
    /// `scripting.dataDir`: each agent's `file.*` folder is under it, and
    /// `pcap.snapshot` writes to its `pcap` folder unless
    /// `integrations.pcap.dir` says otherwise.
    pub data_dir: PathBuf,
    /// This node's name and IP: object keys of `vendor.s3/gcs/azure` are
    /// `<node>_<ip>[_<runId>]/...`. Empty: `skua` and `127.0.0.1`.
    pub node_name: String,
    pub node_ip: String,
}

/// The CPUs of `affinity` not in `busy` (dataplane and script cores). When
/// none is left (a machine with as many cores as skua's poll loops), all of
/// `affinity`: the control plane then shares, and the caller should say so.
pub fn housekeeping_cpus(affinity: &[usize], busy: &[usize]) -> Vec<usize> {
    let free: Vec<usize> = affinity.iter().copied().filter(|c| !busy.contains(c)).collect();
    if free.is_empty() {
        affinity.to_vec()
    } else {
        free
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("integrations config: {0}")]
    Config(#[from] crate::integrations::config::InvalidIntegrationsConfig),
    #[error("starting the control-plane runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("starting the HTTP client: {0}")]
    Http(IntegrationError),
    #[error("starting the effect intake thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The answer path of one request: called exactly once.
pub struct Reply(Option<Box<dyn FnOnce(EffectResult) + Send>>);

impl Reply {
    pub fn new(f: impl FnOnce(EffectResult) + Send + 'static) -> Self {
        Reply(Some(Box::new(f)))
    }

    pub fn send(mut self, result: EffectResult) {
        if let Some(f) = self.0.take() {
            f(result);
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err("abandoned: the control plane shut down before this request finished".into()));
        }
    }
}

/// One request for the executor.
pub struct Job {
    /// The agent whose helper call this is.
    pub agent: Arc<str>,
    pub effect: Effect,
    pub reply: Reply,
}

impl Job {
    pub fn new(
        agent: impl Into<Arc<str>>,
        effect: Effect,
        reply: impl FnOnce(EffectResult) + Send + 'static,
    ) -> Self {
        Job { agent: agent.into(), effect, reply: Reply::new(reply) }
    }

    /// A request from a script runtime: answered on its mailbox.
    pub fn from_request(req: EffectRequest) -> Self {
        let mailbox = req.reply_to().clone();
        let EffectRequest { runtime, agent, request_id, effect, .. } = req;
        Job {
            agent,
            effect,
            reply: Reply::new(move |result| {
                mailbox.complete(Completion { runtime, request_id, result });
            }),
        }
    }
}

/// Which integration serves an effect.
pub fn integration_of(e: &Effect) -> Integration {
    match e {
        Effect::Webhook { .. } => Integration::Webhook,
        Effect::Slack { .. } => Integration::Slack,
        Effect::SlackBot { .. } => Integration::SlackBot,
        Effect::InfluxDb { .. } => Integration::InfluxDb,
        Effect::KinesisPut { .. } => Integration::Kinesis,
        Effect::HubAction { .. } => Integration::Hub,
        Effect::PrometheusMetric { .. } => Integration::Prometheus,
        Effect::FileWrite { .. }
        | Effect::FileAppend { .. }
        | Effect::FileRead { .. }
        | Effect::FileDelete { .. }
        | Effect::FileMkdir { .. }
        | Effect::FileMove { .. }
        | Effect::FileCopy { .. }
        | Effect::FileTar { .. }
        | Effect::FileTemp { .. }
        | Effect::FileMkdirTemp { .. } => Integration::File,
        Effect::PcapSnapshot { .. } | Effect::PcapPath { .. } | Effect::PcapNameHistory => {
            Integration::Pcap
        }
        Effect::WebhookForm { .. } => Integration::Webhook,
        Effect::Elastic { .. } => Integration::Elastic,
        Effect::ChatgptPrompt { .. } => Integration::Chatgpt,
        Effect::PrometheusVector { .. } => Integration::Prometheus,
        Effect::HubBlockPod { .. } => Integration::Kube,
        Effect::S3Put { .. } | Effect::S3Clear { .. } => Integration::S3,
        Effect::GcsPut { .. } | Effect::GcsClear { .. } => Integration::Gcs,
        Effect::AzurePut { .. } => Integration::Azure,
    }
}

/// Counts of named limits hit outside any one integration's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitHits {
    /// `file.*` calls refused at `integrations.file.quota_bytes`.
    pub file_quota_exceeded: u64,
    /// New agent metric series refused at `integrations.prometheus.max_series`.
    pub agent_series_refused: u64,
}

struct Queued {
    job: Job,
    /// Ordered effects: the previous one of the same agent, to wait for.
    after: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Ordered effects: dropped when this one has finished (or was never
    /// run), releasing the next.
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Effects that read or write an agent's files: one agent's run in the
/// order it called them, across lanes, as Kubeshark's synchronous helpers
/// did (`file.write(f)` then `vendor.s3.put(.., f)`; `file.delete(d)` then
/// `file.mkdir(d)`). Other agents' are not held up.
fn ordered(e: &Effect) -> bool {
    integration_of(e) == Integration::File
        || matches!(
            e,
            Effect::PcapSnapshot { .. }
                | Effect::S3Put { .. }
                | Effect::GcsPut { .. }
                | Effect::AzurePut { .. }
        )
        || matches!(e, Effect::SlackBot { files, .. } if !files.is_empty())
}

struct Shared {
    cfg: IntegrationsConfig,
    ctx: ExecutorContext,
    counters: Vec<Arc<IntegrationCounters>>,
    http: HttpClient,
    kinesis: kinesis::Clients,
    hub: HubRouter,
    agent_metrics: AgentMetrics,
    files: FileStore,
    file_quota_exceeded: AtomicU64,
    stores: Stores,
    /// Clients for `vendor.elastic`'s pinned certificates, by fingerprint.
    pinned: std::sync::Mutex<Vec<([u8; 32], HttpClient)>>,
    /// Per agent, the completion of its last ordered effect ([`ordered`]).
    order:
        std::sync::Mutex<std::collections::HashMap<Arc<str>, tokio::sync::oneshot::Receiver<()>>>,
    /// The Kubernetes client of `hub.blockPod`, made on first use.
    kube: tokio::sync::OnceCell<kube::Client>,
    /// The capture's packet retention (`pcap.path`, `pcap.snapshot`).
    retention: RwLock<Option<Arc<Retention>>>,
    /// The pcap folder the files go to.
    store: PcapStore,
    /// Kubernetes name maps seen (`pcap.nameResolutionHistory`).
    names: RwLock<Option<Arc<NameHistory>>>,
    last_log_s: Vec<AtomicU64>,
    suppressed: Vec<AtomicU64>,
    started: Instant,
}

impl Shared {
    fn counters(&self, i: Integration) -> &IntegrationCounters {
        &self.counters[i.index()]
    }

    /// Absolute, so that an absolute path an agent got back (from
    /// `pcap.snapshot`) is recognised under them.
    fn roots(&self) -> Roots {
        let data_dir = std::path::absolute(&self.ctx.data_dir).unwrap_or(self.ctx.data_dir.clone());
        Roots { data_dir, pcap_dir: self.pcap_dir() }
    }

    /// Where `pcap.snapshot` (and `pcap.path`) write, absolute.
    fn pcap_dir(&self) -> PathBuf {
        pcap_dir(&self.cfg, &self.ctx)
    }

    fn node_prefix(&self) -> NodePrefix {
        let or = |s: &str, d: &str| if s.trim().is_empty() { d.to_string() } else { s.to_string() };
        NodePrefix {
            node: or(&self.ctx.node_name, "skua"),
            ip: or(&self.ctx.node_ip, "127.0.0.1"),
            run_id: self.cfg.storage.run_id.clone(),
        }
    }

    /// The client for a pinned certificate, made on first use.
    fn pinned_client(&self, fingerprint: [u8; 32]) -> Result<HttpClient, IntegrationError> {
        let mut m = self.pinned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = m.iter().find(|(f, _)| *f == fingerprint) {
            return Ok(c.clone());
        }
        let c = HttpClient::pinned(
            Duration::from_millis(self.cfg.webhook.connect_timeout_ms),
            fingerprint,
        )?;
        if m.len() >= self.cfg.elastic.pinned_clients.max(1) {
            m.remove(0);
        }
        m.push((fingerprint, c.clone()));
        Ok(c)
    }

    /// One place that reports a failed delivery (the message starts with the
    /// helper's name): at most one line per integration every 10 s, with the
    /// number of lines held back.
    fn log_failure(&self, i: Integration, msg: &str) {
        let now = self.started.elapsed().as_secs() + 10;
        let last = &self.last_log_s[i.index()];
        let prev = last.load(Ordering::Relaxed);
        if now >= prev + 10
            && last.compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            let held = self.suppressed[i.index()].swap(0, Ordering::Relaxed);
            let more = if held > 0 {
                format!(" ({held} more failures since the last report)")
            } else {
                String::new()
            };
            tracing::warn!("{msg}{more}");
        } else {
            self.suppressed[i.index()].fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn lane_config(cfg: &IntegrationsConfig, i: Integration) -> Option<LaneConfig> {
    match i {
        Integration::Webhook => Some(cfg.webhook.lane()),
        Integration::Slack => Some(cfg.slack),
        Integration::SlackBot => Some(cfg.slack_bot.lane()),
        Integration::InfluxDb => Some(cfg.influxdb.lane()),
        Integration::Kinesis => Some(cfg.kinesis.lane()),
        Integration::File => Some(cfg.file.lane()),
        Integration::Pcap => Some(cfg.pcap.lane()),
        Integration::Elastic => Some(cfg.elastic.lane()),
        Integration::Chatgpt => Some(cfg.chatgpt.lane()),
        Integration::Kube => Some(cfg.kube),
        Integration::S3 => Some(cfg.s3.lane()),
        Integration::Gcs => Some(cfg.gcs.lane()),
        Integration::Azure => Some(cfg.azure.lane()),
        Integration::Hub | Integration::Prometheus => None,
    }
}

type Router = Vec<Option<mpsc::Sender<Queued>>>;

/// A cheap handle for submitting requests and reading counters; any thread.
#[derive(Clone)]
pub struct ExecutorHandle {
    shared: Arc<Shared>,
    router: Arc<RwLock<Option<Router>>>,
}

impl ExecutorHandle {
    /// Queues one request, never waiting. `false` if it was rejected (queue
    /// full or shutting down); its reply has then been sent already.
    pub fn submit(&self, job: Job) -> bool {
        dispatch(&self.shared, &self.router, job)
    }

    /// Counters of every integration.
    pub fn counters(&self) -> Vec<IntegrationSnapshot> {
        self.shared.counters.iter().map(|c| c.snapshot()).collect()
    }

    /// Agents' `prometheus.metric` and `prometheus.vector` series.
    pub fn agent_metrics(&self) -> Vec<AgentFamily> {
        self.shared.agent_metrics.snapshot()
    }

    /// Named limits hit so far.
    pub fn limit_hits(&self) -> LimitHits {
        LimitHits {
            file_quota_exceeded: self.shared.file_quota_exceeded.load(Ordering::Relaxed),
            agent_series_refused: self.shared.agent_metrics.series_refused(),
        }
    }

    /// The hub-side mailboxes `hub.action` delivers to.
    pub fn hub(&self) -> &HubRouter {
        &self.shared.hub
    }

    /// Gives `pcap.path` and `pcap.snapshot` the capture's packets.
    pub fn attach_retention(&self, retention: Arc<Retention>) {
        if let Ok(mut r) = self.shared.retention.write() {
            *r = Some(retention);
        }
    }

    /// The capture's packet retention, when attached (the hub's pcap
    /// download: `integrations::pcap::stream_pcapng`).
    pub fn retention(&self) -> Option<Arc<Retention>> {
        self.shared.retention.read().ok().and_then(|r| r.clone())
    }

    /// Gives `pcap.nameResolutionHistory` the Kubernetes name maps.
    pub fn attach_name_history(&self, names: Arc<NameHistory>) {
        if let Ok(mut n) = self.shared.names.write() {
            *n = Some(names);
        }
    }

    /// The pcap folder's counters.
    pub fn pcap_store(&self) -> StoreStats {
        self.shared.store.stats()
    }
}

/// What the drain at shutdown achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct DrainReport {
    /// Every queued delivery finished within the drain timeout.
    pub complete: bool,
    pub took: Duration,
    /// Deliveries abandoned at the timeout, over all integrations.
    pub abandoned: u64,
    pub integrations: Vec<IntegrationSnapshot>,
}

pub struct Executor {
    runtime: Option<tokio::runtime::Runtime>,
    handle: ExecutorHandle,
    lanes: Vec<tokio::task::JoinHandle<()>>,
    intake: Option<std::thread::JoinHandle<()>>,
    stop_intake: Option<crossbeam_channel::Sender<()>>,
}

fn pin_current_thread(cpus: &[usize]) {
    if cpus.is_empty() {
        return;
    }
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        let _ = set.set(c);
    }
    // Best effort: outside the process' affinity (a container that changed
    // its cpuset) the kernel refuses, and the thread stays where it was.
    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
}

impl Executor {
    /// Starts the runtime, the lanes and — when `effects` is given — the
    /// intake thread that drains it. Call (and drop) from a plain thread,
    /// not from inside a tokio runtime.
    pub fn start(
        cfg: IntegrationsConfig,
        ctx: ExecutorContext,
        effects: Option<Receiver<EffectRequest>>,
    ) -> Result<Executor, ExecutorError> {
        cfg.validate()?;
        let cpus = ctx.cpus.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.worker_threads)
            .max_blocking_threads(cfg.file.concurrency.max(cfg.pcap.concurrency).max(2) * 2)
            .thread_name("skua-ctl")
            .on_thread_start(move || pin_current_thread(&cpus))
            .enable_all()
            .build()
            .map_err(ExecutorError::Runtime)?;
        let guard = runtime.enter();
        let ca = (!cfg.tls_ca_file.is_empty()).then(|| PathBuf::from(&cfg.tls_ca_file));
        let connect_timeout = Duration::from_millis(cfg.webhook.connect_timeout_ms);
        let http = HttpClient::new(connect_timeout, ca.as_deref()).map_err(ExecutorError::Http)?;
        let tls =
            crate::integrations::http::tls_config(ca.as_deref()).map_err(ExecutorError::Http)?;
        let stores = Stores::new(&cfg, tls, connect_timeout).map_err(ExecutorError::Http)?;
        let counters = Integration::ALL
            .iter()
            .map(|&i| {
                Arc::new(IntegrationCounters::new(i, lane_config(&cfg, i).map_or(0, |l| l.queue)))
            })
            .collect();
        let pcap_dir = pcap_dir(&cfg, &ctx);
        let max_store_bytes = cfg.pcap.max_store_bytes;
        let shared = Arc::new(Shared {
            kinesis: kinesis::Clients::new(&cfg.kinesis),
            agent_metrics: AgentMetrics::new(cfg.prometheus.max_series),
            files: FileStore::default(),
            file_quota_exceeded: AtomicU64::new(0),
            stores,
            pinned: Default::default(),
            order: Default::default(),
            kube: tokio::sync::OnceCell::new(),
            cfg,
            ctx,
            counters,
            http,
            hub: HubRouter::default(),
            retention: RwLock::new(None),
            store: PcapStore::new(pcap_dir, max_store_bytes),
            names: RwLock::new(None),
            last_log_s: Integration::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            suppressed: Integration::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            started: Instant::now(),
        });
        let mut router: Router = Integration::ALL.iter().map(|_| None).collect();
        let mut lanes = Vec::new();
        for &i in &Integration::ALL {
            let Some(lane) = lane_config(&shared.cfg, i) else { continue };
            let (tx, rx) = mpsc::channel(lane.queue);
            router[i.index()] = Some(tx);
            let sem = Arc::new(Semaphore::new(lane.concurrency));
            let task = if i == Integration::Kinesis {
                runtime.spawn(kinesis_lane(shared.clone(), rx, sem, lane.concurrency))
            } else {
                runtime.spawn(lane_loop(shared.clone(), i, rx, sem, lane.concurrency))
            };
            lanes.push(task);
        }
        drop(guard);
        let handle = ExecutorHandle { shared, router: Arc::new(RwLock::new(Some(router))) };
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let intake = match effects {
            Some(rx) => {
                let h = handle.clone();
                Some(
                    std::thread::Builder::new()
                        .name("skua-effects".into())
                        .spawn(move || {
                            pin_current_thread(&h.shared.ctx.cpus);
                            intake_loop(&h, &rx, &stop_rx);
                        })
                        .map_err(ExecutorError::Thread)?,
                )
            }
            None => None,
        };
        Ok(Executor { runtime: Some(runtime), handle, lanes, intake, stop_intake: Some(stop_tx) })
    }

    pub fn handle(&self) -> ExecutorHandle {
        self.handle.clone()
    }

    /// The runtime, for other control-plane services (the `/metrics`
    /// server, cron, the hub link) to spawn on.
    pub fn tokio(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref().map(|r| r.handle())
    }

    /// Drains and stops, within `integrations.drain_timeout_ms`.
    pub fn shutdown(mut self) -> DrainReport {
        let t = Duration::from_millis(self.handle.shared.cfg.drain_timeout_ms);
        self.shutdown_within(t)
    }

    /// Drains and stops within `drain`: the effect channel is emptied into
    /// the lanes, the lanes finish their queues; what is left when `drain`
    /// runs out is abandoned (its Promise rejects) and counted.
    pub fn shutdown_within(&mut self, drain: Duration) -> DrainReport {
        let t0 = Instant::now();
        if let Some(stop) = self.stop_intake.take() {
            let _ = stop.try_send(());
        }
        if let Some(t) = self.intake.take() {
            let _ = t.join();
        }
        // Closing the lanes' senders lets each lane finish its queue and end.
        if let Ok(mut r) = self.handle.router.write() {
            *r = None;
        }
        let lanes = std::mem::take(&mut self.lanes);
        let mut complete = true;
        let mut abandoned = 0;
        if let Some(rt) = self.runtime.take() {
            let deadline = tokio::time::Instant::now() + drain;
            complete = rt.block_on(async move {
                for l in lanes {
                    if tokio::time::timeout_at(deadline, l).await.is_err() {
                        return false;
                    }
                }
                true
            });
            if !complete {
                for c in &self.handle.shared.counters {
                    abandoned += c.abandon_unfinished();
                }
            }
            // Dropping the tasks drops their replies: abandoned Promises reject.
            rt.shutdown_timeout(Duration::from_millis(200));
        }
        DrainReport {
            complete,
            took: t0.elapsed(),
            abandoned,
            integrations: self.handle.counters(),
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if self.runtime.is_some() {
            let t = Duration::from_millis(self.handle.shared.cfg.drain_timeout_ms);
            self.shutdown_within(t);
        }
    }
}

fn intake_loop(h: &ExecutorHandle, rx: &Receiver<EffectRequest>, stop: &Receiver<()>) {
    loop {
        select! {
            recv(rx) -> msg => match msg {
                Ok(req) => { dispatch(&h.shared, &h.router, Job::from_request(req)); }
                Err(_) => return,
            },
            recv(stop) -> _ => {
                // What runtimes asked for before the stop is still delivered.
                while let Ok(req) = rx.try_recv() {
                    dispatch(&h.shared, &h.router, Job::from_request(req));
                }
                return;
            }
        }
    }
}

/// The pcap folder (`integrations.pcap.dir`, else `<dataDir>/pcap`),
/// absolute.
fn pcap_dir(cfg: &IntegrationsConfig, ctx: &ExecutorContext) -> PathBuf {
    let dir = if cfg.pcap.dir.is_empty() {
        ctx.data_dir.join("pcap")
    } else {
        PathBuf::from(&cfg.pcap.dir)
    };
    std::path::absolute(&dir).unwrap_or(dir)
}

fn helper_error(effect_helper: &str, msg: impl std::fmt::Display) -> String {
    format!("{effect_helper}: {msg}")
}

/// Routes one job: inline for hub/prometheus, else to its lane.
fn dispatch(shared: &Arc<Shared>, router: &RwLock<Option<Router>>, job: Job) -> bool {
    let i = integration_of(&job.effect);
    let counters = shared.counters(i);
    let helper = job.effect.helper();
    match i {
        Integration::Hub | Integration::Prometheus => {
            let t0 = Instant::now();
            let result = inline(shared, &job.effect).map_err(|e| helper_error(helper, e));
            counters.record(result.is_ok(), t0.elapsed());
            if let Err(e) = &result {
                shared.log_failure(i, e);
            }
            job.reply.send(result);
            true
        }
        _ => {
            let guard = router.read();
            let tx = match guard
                .as_ref()
                .ok()
                .and_then(|r| r.as_ref())
                .and_then(|r| r[i.index()].as_ref())
            {
                Some(tx) => tx,
                None => {
                    counters.rejected();
                    job.reply.send(Err(helper_error(
                        helper,
                        "rejected: the control plane is shutting down",
                    )));
                    return false;
                }
            };
            counters.enqueued();
            // Dispatch runs in submission order (one intake thread), so the
            // chain follows the agent's calls.
            let (after, done) = if ordered(&job.effect) {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let mut order = shared.order.lock().unwrap_or_else(|e| e.into_inner());
                (order.insert(job.agent.clone(), rx), Some(tx))
            } else {
                (None, None)
            };
            match tx.try_send(Queued { job, after, done }) {
                Ok(()) => true,
                Err(e) => {
                    counters.dequeued_unstarted();
                    counters.rejected();
                    let q = match e {
                        mpsc::error::TrySendError::Full(q)
                        | mpsc::error::TrySendError::Closed(q) => q,
                    };
                    let cap = counters.capacity();
                    q.job.reply.send(Err(helper_error(
                        helper,
                        format!("queue full ({cap} requests waiting); request dropped"),
                    )));
                    false
                }
            }
        }
    }
}

fn inline(shared: &Shared, effect: &Effect) -> Result<Value, IntegrationError> {
    match effect {
        Effect::HubAction { action, object } => {
            shared.hub.deliver(action, object).map(|n| json!(n))
        }
        Effect::PrometheusMetric { name, help, kind, value, labels } => {
            shared.agent_metrics.update(name, help, *kind, *value, labels).map(|v| json!(v))
        }
        Effect::PrometheusVector { name, help, kind, value, labels } => {
            shared.agent_metrics.update_vector(name, help, *kind, *value, labels).map(|v| json!(v))
        }
        _ => Err(IntegrationError::Unavailable("not an inline effect".into())),
    }
}

async fn lane_loop(
    shared: Arc<Shared>,
    i: Integration,
    mut rx: mpsc::Receiver<Queued>,
    sem: Arc<Semaphore>,
    concurrency: usize,
) {
    while let Some(q) = rx.recv().await {
        let Ok(permit) = sem.clone().acquire_owned().await else { break };
        let shared = shared.clone();
        tokio::spawn(async move {
            let counters = shared.counters(i);
            counters.started();
            if let Some(prev) = q.after {
                // Closed (the previous one was rejected or dropped) is as
                // good as done.
                let _ = prev.await;
            }
            let t0 = Instant::now();
            let Job { agent, effect, reply } = q.job;
            let result = deliver(&shared, &agent, &effect)
                .await
                .map_err(|f| helper_error(effect.helper(), f.message()));
            counters.finished(result.is_ok(), t0.elapsed());
            if let Err(e) = &result {
                shared.log_failure(i, e);
            }
            reply.send(result);
            drop(q.done);
            drop(permit);
        });
    }
    // Closed: wait until every delivery in flight has finished.
    let _ = sem.acquire_many(concurrency as u32).await;
}

fn once(e: IntegrationError) -> Failed {
    Failed { error: e, attempts: 1 }
}

/// Delivers one (non-Kinesis) request with its retries.
async fn deliver(shared: &Arc<Shared>, agent: &Arc<str>, effect: &Effect) -> Result<Value, Failed> {
    let cfg = &shared.cfg;
    let retry = &cfg.retry;
    let counters = shared.counters(integration_of(effect));
    match effect {
        Effect::Webhook { method, url, body, headers } => {
            let req = webhook::build_request(method, url, body, headers).map_err(once)?;
            let opts = webhook::send_options(&cfg.webhook);
            with_retries(retry, counters, |_| webhook::attempt(&shared.http, &req, opts)).await
        }
        Effect::Slack { webhook_url, pretext, text, color } => {
            let req =
                slack::build_webhook_request(webhook_url, pretext, text, color).map_err(once)?;
            let t = Duration::from_millis(cfg.slack.timeout_ms);
            with_retries(retry, counters, |_| slack::webhook_attempt(&shared.http, &req, t)).await
        }
        Effect::SlackBot { token, channel_id, pretext, text, color, fields, files } => {
            let req = slack::build_bot_request(
                &cfg.slack_bot.api_url,
                token,
                channel_id,
                pretext,
                text,
                color,
                fields.as_ref(),
            )
            .map_err(once)?;
            let t = Duration::from_millis(cfg.slack_bot.timeout_ms);
            // The files are read before anything is sent: a missing or too
            // large one fails the call whole.
            let attachments = read_attachments(shared, agent, files).await.map_err(once)?;
            let mut answer =
                with_retries(retry, counters, |_| slack::bot_attempt(&shared.http, &req, t))
                    .await?;
            if !attachments.is_empty() {
                let api = &cfg.slack_bot.api_url;
                let mut ids = Vec::new();
                for (name, bytes) in attachments {
                    let id = with_retries(retry, counters, |_| {
                        slack::upload_file(&shared.http, api, token, &name, bytes.clone(), t)
                    })
                    .await?;
                    ids.push((id, name));
                }
                let ts = answer["ts"].as_str().map(str::to_string);
                with_retries(retry, counters, |_| {
                    slack::complete_uploads(
                        &shared.http,
                        api,
                        token,
                        channel_id,
                        ts.as_deref(),
                        &ids,
                        t,
                    )
                })
                .await?;
                answer["files"] = json!(ids.iter().map(|(id, _)| id).collect::<Vec<_>>());
            }
            Ok(answer)
        }
        Effect::WebhookForm { method, url, fields } => {
            let req = webhook::build_form_request(method, url, fields).map_err(once)?;
            let opts = webhook::send_options(&cfg.webhook);
            with_retries(retry, counters, |_| webhook::form_attempt(&shared.http, &req, opts)).await
        }
        Effect::Elastic {
            url,
            index,
            doc,
            user,
            password,
            cloud_id,
            api_key,
            service_token,
            cert_fingerprint,
        } => {
            let d = elastic::Doc {
                url,
                index,
                doc,
                user: user.as_deref(),
                password: password.as_deref(),
                cloud_id: cloud_id.as_deref(),
                api_key: api_key.as_deref(),
                service_token: service_token.as_deref(),
            };
            let req = elastic::build_request(&d).map_err(once)?;
            let client = match cert_fingerprint {
                Some(f) => shared
                    .pinned_client(elastic::parse_fingerprint(f).map_err(once)?)
                    .map_err(once)?,
                None => shared.http.clone(),
            };
            let opts = elastic::send_options(Duration::from_millis(cfg.elastic.timeout_ms));
            with_retries(retry, counters, |_| client.send_then(&req, opts, elastic::answer)).await
        }
        Effect::ChatgptPrompt { api_key, prompt, max_tokens } => {
            let req =
                chatgpt::build_request(&cfg.chatgpt, api_key, prompt, *max_tokens).map_err(once)?;
            let opts = chatgpt::send_options(&cfg.chatgpt);
            with_retries(retry, counters, |_| shared.http.send_then(&req, opts, chatgpt::answer))
                .await
        }
        Effect::HubBlockPod { name, namespace } => {
            let t = Duration::from_millis(cfg.kube.timeout_ms);
            with_retries(retry, counters, |_| async move {
                let client = shared
                    .kube
                    .get_or_try_init(|| async {
                        crate::kube::client().await.map_err(|e| {
                            IntegrationError::Unavailable(format!(
                                "hub.blockPod: no Kubernetes API: {e}"
                            ))
                        })
                    })
                    .await?;
                match tokio::time::timeout(t, block_pod::block(client, name, namespace)).await {
                    Ok(r) => r,
                    Err(_) => Err(IntegrationError::Timeout(t)),
                }
            })
            .await
        }
        Effect::S3Put { .. }
        | Effect::S3Clear { .. }
        | Effect::GcsPut { .. }
        | Effect::GcsClear { .. }
        | Effect::AzurePut { .. } => object_storage(shared, agent, effect).await.map_err(once),
        Effect::InfluxDb { url, token, org, bucket, measurement, data, tags } => {
            let p = influxdb::Point { url, token, org, bucket, measurement, data, tags };
            let req =
                influxdb::build_request(&p, &cfg.influxdb, influxdb::now_ns()).map_err(once)?;
            let t = Duration::from_millis(cfg.influxdb.timeout_ms);
            with_retries(retry, counters, |_| influxdb::attempt(&shared.http, &req, t)).await
        }
        Effect::FileWrite { .. }
        | Effect::FileAppend { .. }
        | Effect::FileRead { .. }
        | Effect::FileDelete { .. }
        | Effect::FileMkdir { .. }
        | Effect::FileMove { .. }
        | Effect::FileCopy { .. }
        | Effect::FileTar { .. }
        | Effect::FileTemp { .. }
        | Effect::FileMkdirTemp { .. } => {
            let op = match effect.clone() {
                Effect::FileWrite { path, content } => FileOp::Write { path, content },
                Effect::FileAppend { path, content } => FileOp::Append { path, content },
                Effect::FileRead { path } => FileOp::Read { path },
                Effect::FileDelete { path } => FileOp::Delete { path },
                Effect::FileMkdir { path } => FileOp::Mkdir { path },
                Effect::FileMove { from, to } => FileOp::Move { from, to },
                Effect::FileCopy { from, to } => FileOp::Copy { from, to },
                Effect::FileTar { dir } => FileOp::Tar { dir },
                Effect::FileTemp { name, dir, ext } => FileOp::Temp { name, dir, ext },
                Effect::FileMkdirTemp { name, dir } => FileOp::MkdirTemp { name, dir },
                _ => return Err(once(IntegrationError::Invalid("not a file effect".into()))),
            };
            let roots = shared.roots();
            let agent = agent.clone();
            let limits = FileLimits {
                max_read_bytes: cfg.file.max_read_bytes,
                quota_bytes: cfg.file.quota_bytes,
            };
            let sh = shared.clone();
            let r = blocking(Duration::from_millis(cfg.file.timeout_ms), move || {
                sh.files.run(&roots, &agent, &op, limits)
            })
            .await;
            if let Err(IntegrationError::Quota(_)) = &r {
                shared.file_quota_exceeded.fetch_add(1, Ordering::Relaxed);
            }
            r.map_err(once)
        }
        Effect::PcapPath { .. } | Effect::PcapSnapshot { .. } => {
            let ret = shared.retention.read().ok().and_then(|r| r.clone()).ok_or_else(|| {
                once(IntegrationError::Unavailable(
                    "this capture keeps no packets (packet retention is off: dataplane.retention_bytes = 0)".into(),
                ))
            })?;
            // An agent loaded later than the capture started (the hub, the
            // folder watcher) starts retention with its first call.
            ret.activate();
            let (shared2, effect, agent) = (shared.clone(), effect.clone(), agent.clone());
            let max_s = cfg.pcap.max_seconds.max(1);
            blocking(Duration::from_millis(cfg.pcap.timeout_ms), move || {
                let store = &shared2.store;
                let path = match effect {
                    Effect::PcapPath { stream } => store.path(&ret, stream),
                    Effect::PcapSnapshot { select, dir } => {
                        let sel = match select {
                            PcapSelect::All => Selection::All,
                            PcapSelect::Streams(s) => Selection::Streams(s),
                            PcapSelect::Seconds(n) => {
                                Selection::Last(Duration::from_secs(u64::from(n.clamp(1, max_s))))
                            }
                        };
                        store.snapshot(&ret, &sel, dir.as_deref(), &agent)
                    }
                    _ => Err(IntegrationError::Invalid("not a pcap effect".into())),
                };
                path.map(|p| Value::String(p.to_string_lossy().into_owned()))
            })
            .await
            .map_err(once)
        }
        Effect::PcapNameHistory => Ok(shared
            .names
            .read()
            .ok()
            .and_then(|n| n.as_ref().map(|n| n.to_json()))
            .unwrap_or_else(|| json!({}))),
        Effect::KinesisPut { .. }
        | Effect::HubAction { .. }
        | Effect::PrometheusMetric { .. }
        | Effect::PrometheusVector { .. } => {
            Err(once(IntegrationError::Unavailable("routed elsewhere".into())))
        }
    }
}

/// `vendor.slackBot`'s files: `(name, bytes)`, read from where the agent
/// may read, each at most `integrations.slack_bot.max_file_bytes`.
async fn read_attachments(
    shared: &Shared,
    agent: &str,
    files: &std::collections::BTreeMap<String, PathBuf>,
) -> Result<Vec<(String, bytes::Bytes)>, IntegrationError> {
    let roots = shared.roots();
    let max = shared.cfg.slack_bot.max_file_bytes;
    let mut out = Vec::new();
    for (name, path) in files {
        let full = crate::integrations::file::resolve_source(&roots, agent, path)?;
        let len = tokio::fs::metadata(&full)
            .await
            .map_err(|e| IntegrationError::Invalid(format!("slackBot: {}: {e}", path.display())))?
            .len();
        if len > max {
            return Err(IntegrationError::Invalid(format!(
                "slackBot: {} is {len} bytes, over integrations.slack_bot.max_file_bytes ({max})",
                path.display()
            )));
        }
        let bytes = tokio::fs::read(&full)
            .await
            .map_err(|e| IntegrationError::Io(format!("slackBot: {}: {e}", path.display())))?;
        out.push((name.clone(), bytes::Bytes::from(bytes)));
    }
    Ok(out)
}

/// `vendor.s3/gcs/azure.*`: where to, then the upload or the clear, within
/// the lane's timeout.
async fn object_storage(
    shared: &Shared,
    agent: &str,
    effect: &Effect,
) -> Result<Value, IntegrationError> {
    let cfg = &shared.cfg;
    let keys = |k: &Option<String>, s: &Option<String>| match (k, s) {
        (Some(k), Some(s)) => Ok(Some((k.clone(), s.clone()))),
        (None, None) => Ok(None),
        _ => Err(IntegrationError::Invalid(
            "s3: keyId and secret go together (or give neither for the standard chain)".into(),
        )),
    };
    let region = |r: &str| {
        let r = if r.trim().is_empty() { cfg.s3.region.trim() } else { r.trim() };
        if r.is_empty() {
            "us-east-1".to_string()
        } else {
            r.to_string()
        }
    };
    let (target, file, timeout) = match effect {
        Effect::S3Put { bucket, path, region: r, key_id, secret } => (
            Target::S3 { bucket: bucket.clone(), region: region(r), keys: keys(key_id, secret)? },
            Some(path),
            cfg.s3.timeout_ms,
        ),
        Effect::S3Clear { bucket, region: r, key_id, secret } => (
            Target::S3 { bucket: bucket.clone(), region: region(r), keys: keys(key_id, secret)? },
            None,
            cfg.s3.timeout_ms,
        ),
        Effect::GcsPut { bucket, path, service_account_key } => (
            Target::Gcs {
                bucket: bucket.clone(),
                service_account_key: service_account_key.clone(),
            },
            Some(path),
            cfg.gcs.timeout_ms,
        ),
        Effect::GcsClear { bucket, service_account_key } => (
            Target::Gcs {
                bucket: bucket.clone(),
                service_account_key: service_account_key.clone(),
            },
            None,
            cfg.gcs.timeout_ms,
        ),
        Effect::AzurePut { container, path, account, key, connection_string } => {
            let auth = match (connection_string, account, key) {
                (Some(cs), _, _) => storage::parse_connection_string(cs)?,
                (None, Some(a), Some(k)) => AzureAuth::Key { account: a.clone(), key: k.clone() },
                (None, a, None) => AzureAuth::Env { account: a.clone() },
                (None, None, Some(_)) => {
                    return Err(IntegrationError::Invalid("azure: a key needs its account".into()))
                }
            };
            (Target::Azure { container: container.clone(), auth }, Some(path), cfg.azure.timeout_ms)
        }
        _ => return Err(IntegrationError::Invalid("not an object storage effect".into())),
    };
    let t = Duration::from_millis(timeout);
    let prefix = shared.node_prefix();
    let work = async {
        match file {
            Some(f) => {
                storage::put(&shared.stores, &shared.roots(), agent, &prefix, &target, f).await
            }
            None => storage::clear(&shared.stores, &prefix, &target).await,
        }
    };
    match tokio::time::timeout(t, work).await {
        Ok(r) => r,
        Err(_) => Err(IntegrationError::Timeout(t)),
    }
}

async fn blocking<F>(timeout: Duration, f: F) -> Result<Value, IntegrationError>
where
    F: FnOnce() -> Result<Value, IntegrationError> + Send + 'static,
{
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(IntegrationError::Io(format!("worker failed: {e}"))),
        Err(_) => Err(IntegrationError::Timeout(timeout)),
    }
}

/// The Kinesis lane: gathers queued records for up to `linger_ms`, groups
/// them by target and sends each group in `PutRecords` calls within AWS's
/// limits, at most `concurrency` calls at once.
async fn kinesis_lane(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Queued>,
    sem: Arc<Semaphore>,
    concurrency: usize,
) {
    let kc = shared.cfg.kinesis.clone();
    let counters = shared.counters(Integration::Kinesis);
    let mut open = true;
    while open {
        let Some(first) = rx.recv().await else { break };
        let mut gathered = vec![first];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(kc.linger_ms);
        while gathered.len() < kc.max_batch_records {
            let next = if kc.linger_ms == 0 {
                match rx.try_recv() {
                    Ok(q) => Some(q),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            } else {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(q) => q,
                    Err(_) => break,
                }
            };
            match next {
                Some(q) => gathered.push(q),
                None => {
                    open = false;
                    break;
                }
            }
        }
        // Group by target, in arrival order; refuse what cannot be sent.
        let mut groups: Vec<(kinesis::Target, Vec<(kinesis::Record, Queued)>)> = Vec::new();
        for q in gathered {
            counters.started();
            let Effect::KinesisPut { stream, payload, region, key_id, secret } = &q.job.effect
            else {
                counters.finished(false, Duration::ZERO);
                q.job.reply.send(Err("vendor.kinesis.put: misrouted".into()));
                continue;
            };
            match kinesis::build_record(
                &kc,
                stream,
                payload,
                region,
                key_id.as_deref(),
                secret.as_deref(),
            ) {
                Ok((target, record)) => match groups.iter_mut().find(|(t, _)| *t == target) {
                    Some((_, v)) => v.push((record, q)),
                    None => groups.push((target, vec![(record, q)])),
                },
                Err(e) => {
                    counters.finished(false, Duration::ZERO);
                    let msg = helper_error("vendor.kinesis.put", e);
                    shared.log_failure(Integration::Kinesis, &msg);
                    q.job.reply.send(Err(msg));
                }
            }
        }
        for (target, items) in groups {
            let sizes: Vec<usize> = items.iter().map(|(r, _)| r.size()).collect();
            let plan =
                kinesis::plan_batches(&sizes, kc.max_batch_records, kinesis::MAX_BYTES_PER_REQUEST);
            let mut items = items.into_iter();
            for n in plan {
                let batch: Vec<(kinesis::Record, Queued)> = items.by_ref().take(n).collect();
                let Ok(permit) = sem.clone().acquire_owned().await else { return };
                let shared = shared.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let counters = shared.counters(Integration::Kinesis);
                    let t0 = Instant::now();
                    let client = shared.kinesis.client(&target).await;
                    let (records, jobs): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                    let timeout = Duration::from_millis(shared.cfg.kinesis.timeout_ms);
                    let outcomes = kinesis::put_batch(
                        &client,
                        &target.stream,
                        &records,
                        &shared.cfg.retry,
                        timeout,
                        counters,
                    )
                    .await;
                    let elapsed = t0.elapsed();
                    for (q, outcome) in jobs.into_iter().zip(outcomes) {
                        let result =
                            outcome.map_err(|f| helper_error("vendor.kinesis.put", f.message()));
                        counters.finished(result.is_ok(), elapsed);
                        if let Err(e) = &result {
                            shared.log_failure(Integration::Kinesis, e);
                        }
                        q.job.reply.send(result);
                    }
                    drop(permit);
                });
            }
        }
    }
    let _ = sem.acquire_many(concurrency as u32).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn housekeeping_is_what_capture_leaves() {
        assert_eq!(housekeeping_cpus(&[0, 1, 2, 3], &[1, 2]), vec![0, 3]);
        assert_eq!(housekeeping_cpus(&[0, 1], &[0, 1]), vec![0, 1]);
    }
}
