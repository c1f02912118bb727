//! The hub: one per cluster (or inside `skua run`). It owns the script
//! store, the recent items and console lines workers publish, the workers'
//! last reports, and the HTTP API and dashboard over them.
//!
//! Workers are linked through [`HubHandle`]: in-process by calling it
//! directly, remotely through the `/api/link/*` endpoints that call the
//! same methods. Agent changes, env changes, job commands and hub actions
//! go out to every [`HubHandle::subscribe`]r.
//!
//! Invariants: every buffer is bounded, in bytes where what it holds comes
//! from outside, with a counter when it is full (the item and console rings
//! evict the oldest; a live-stream client's queue drops; the event
//! broadcast lags a slow subscriber, which then resyncs from a snapshot);
//! env values leave the hub only towards workers; a worker's name (and so
//! its report, its jobs and its link) belongs to the token that first used
//! it, and `hub` to the hub itself.

pub mod api;
pub mod auth;
pub mod config;
mod dashboard;
mod feed;
pub mod filter;
pub mod guard;
pub mod kube_store;
mod metrics;
pub mod openapi;
pub mod runtime;
mod server;
pub mod store;
mod streams;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::broadcast;

pub use config::{AuthMode, HubConfig, StoreKind};
pub use metrics::HubCounters;

/// The bundled example agents (`examples/*.js`), name and source, sorted.
pub fn examples() -> &'static [(&'static str, &'static str)] {
    dashboard::EXAMPLES
}

/// The bundled agents `skua run` runs when given none: those that need no
/// endpoint or env to show something.
pub const DEMO_AGENTS: [&str; 4] =
    ["count-per-host", "latency-anomaly", "packets-per-minute", "top-dns-names"];
pub use filter::Filter;
pub use store::{DirStore, ScriptStore, StoreError, StoredAgent};

/// `skua hub`: the hub alone, as the Helm chart's Deployment runs it.
#[derive(clap::Args, Debug)]
pub struct HubArgs {
    /// Address to listen on (hub.listen).
    #[arg(long, value_name = "ADDR", env = "SKUA_LISTEN")]
    pub listen: Option<String>,
    /// Directory of the script store (hub.store_dir).
    #[arg(long, value_name = "DIR")]
    pub store: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("hub config: {0}")]
    Config(#[from] config::InvalidHubConfig),
    #[error(transparent)]
    Tokens(#[from] auth::TokensError),
    #[error("hub: listening on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Something every subscriber (worker link, in-process worker, hub-side
/// runtime) hears about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum HubEvent {
    /// An agent was saved, activated or deactivated. Workers load it when
    /// active and unload it when not.
    #[serde(rename_all = "camelCase")]
    AgentChanged { agent: StoredAgent },
    #[serde(rename_all = "camelCase")]
    AgentRemoved { name: String },
    /// The whole env after a change (values included: only workers see it).
    #[serde(rename_all = "camelCase")]
    EnvChanged { env: BTreeMap<String, String> },
    /// Run or remove a job (`tag` `None`: all of them) on one worker
    /// (`None`: every worker).
    #[serde(rename_all = "camelCase")]
    Job { worker: Option<String>, tag: Option<String>, op: JobOp },
    /// A `hub.action(action, object)` from a runtime on `from`, for the
    /// hub-side `onHubAction`.
    #[serde(rename_all = "camelCase")]
    HubAction { from: String, action: String, object: Value },
    /// Whether anyone wants items now (a live item stream is open, or items
    /// were queried within `hub.items_demand_ms`): workers send items only
    /// while this is so, so the hub never pulls traffic nobody looks at.
    #[serde(rename_all = "camelCase")]
    Demand { items: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobOp {
    Run,
    Remove,
}

/// What a worker needs to start: its agents and their env.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LinkSnapshot {
    pub agents: Vec<StoredAgent>,
    pub env: BTreeMap<String, String>,
    /// See [`HubEvent::Demand`].
    #[serde(rename = "itemsWanted")]
    pub items_wanted: bool,
}

/// One job as a worker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct JobView {
    pub tag: String,
    pub cron: String,
    pub agent: String,
    pub limit: u32,
    pub runs: u32,
    /// Milliseconds since the epoch.
    pub next_run: Option<u64>,
}

impl From<&scripting::JobInfo> for JobView {
    fn from(j: &scripting::JobInfo) -> Self {
        JobView {
            tag: j.tag.clone(),
            cron: j.cron.clone(),
            agent: j.agent.clone(),
            limit: j.limit,
            runs: j.runs,
            next_run: j
                .next_run
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64),
        }
    }
}

/// One agent hook's stats as a worker reports them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct HookView {
    pub runtime: u32,
    pub agent: String,
    pub hook: String,
    pub calls: u64,
    pub errors: u64,
    pub interrupts: u64,
    pub out_of_memory: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl From<&scripting::HookStats> for HookView {
    fn from(h: &scripting::HookStats) -> Self {
        HookView {
            runtime: h.runtime.0,
            agent: h.agent.clone(),
            hook: h.site_name().to_string(),
            calls: h.calls,
            errors: h.errors,
            interrupts: h.interrupts,
            out_of_memory: h.out_of_memory,
            p50_ns: h.p50_ns,
            p99_ns: h.p99_ns,
            max_ns: h.max_ns,
        }
    }
}

/// A worker's periodic report: free-form counters, its agents' hook stats
/// and its jobs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkerReport {
    /// The worker's name: owned by the token that first used it.
    pub name: String,
    pub version: String,
    /// Counters (packets, items, drops ...), shown as they are.
    #[schema(value_type = Object)]
    pub stats: Value,
    pub hooks: Vec<HookView>,
    pub jobs: Vec<JobView>,
}

/// The JSON of a console line, as the console view and stream show it.
pub fn console_line_json(l: &scripting::ConsoleLine) -> Value {
    json!({
        "ts": l.ts.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
        "node": &*l.node,
        "runtime": l.runtime.to_string(),
        "agent": &*l.agent,
        "level": l.level.as_str(),
        "text": l.text,
    })
}

fn bump(c: &prometheus_client::metrics::counter::Counter) {
    c.inc();
}

/// Who is reporting as (or linking) a worker: its name belongs to the
/// first of them, until the hub forgets the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reporter {
    /// The hub's own runtime: the only one that may be `hub`.
    Hub,
    /// The worker in this process (`skua run`).
    Local,
    /// A remote worker, by its token.
    Token(auth::TokenId),
}

struct WorkerEntry {
    report: WorkerReport,
    seen: Instant,
    seen_wall: SystemTime,
    owner: Reporter,
}

/// Why an agent was not saved.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// It does not compile (or is not ES5 with `scripting.es5Strict`).
    #[error(transparent)]
    Rejected(#[from] scripting::LoadError),
}

pub(crate) struct HubState {
    cfg: HubConfig,
    es5_strict: bool,
    store: Arc<dyn ScriptStore>,
    tokens: auth::Tokens,
    items: Mutex<feed::Feed>,
    console: Mutex<feed::Feed>,
    workers: Mutex<BTreeMap<String, WorkerEntry>>,
    events: broadcast::Sender<HubEvent>,
    counters: HubCounters,
    streams: streams::Streams,
    started: Instant,
    queried: Mutex<Option<crossbeam_channel::Sender<Value>>>,
    /// Whether workers are to send items ([`HubEvent::Demand`]).
    items_wanted: std::sync::atomic::AtomicBool,
    /// When items were last queried (`GET /api/items...`).
    items_queried_at: Mutex<Option<Instant>>,
    /// The hub's pod watcher's counters, once it runs (`/metrics`).
    kube: std::sync::OnceLock<Arc<crate::kube::KubeCounters>>,
    /// What subscribers were last told the store holds, to find changes
    /// made around the hub; `None` before the first look. Held across each
    /// store write and its announcement, so a look never sees one without
    /// the other.
    announced: Mutex<Option<Announced>>,
}

impl HubState {
    /// Milliseconds since the hub started (live streams' clocks).
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// The store as subscribers last heard of it.
struct Announced {
    agents: BTreeMap<String, StoredAgent>,
    env: BTreeMap<String, String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The hub's Rust API: cheap to clone, usable from any thread. Methods that
/// touch the store block (call them off the async executor).
#[derive(Clone)]
pub struct HubHandle {
    state: Arc<HubState>,
}

impl HubHandle {
    /// Adds one item (the agents' item shape, `reassembly::Item::to_json`)
    /// to the ring and to every live stream whose filter it matches.
    pub fn publish_item(&self, item: Value) {
        // While a hub agent defines onItemQueried, items pass through it
        // (on the hub runtime's thread) on their way in: every query and
        // stream then shows them as the agents leave them.
        let item = match lock(&self.state.queried).as_ref() {
            Some(tx) => match tx.try_send(item) {
                Ok(()) => return,
                Err(e) => {
                    bump(&self.state.counters.items_unqueried);
                    e.into_inner()
                }
            },
            None => item,
        };
        self.publish_queried(item);
    }

    /// Publishes an item that has been through `onItemQueried` (or needs
    /// not).
    pub fn publish_queried(&self, item: Value) {
        self.publish(true, item);
    }

    /// Notes an items query: workers are asked for items for
    /// `hub.items_demand_ms` after it.
    pub(crate) fn items_queried(&self) {
        *lock(&self.state.items_queried_at) = Some(Instant::now());
    }

    /// Capacity of the queue into the hub's `onItemQueried`.
    pub(crate) fn queried_queue(&self) -> usize {
        self.state.cfg.queried_queue.max(1)
    }

    /// Routes published items through `tx` (the hub runtime, while one of
    /// its agents defines `onItemQueried`), or straight in (`None`).
    pub fn set_queried(&self, tx: Option<crossbeam_channel::Sender<Value>>) {
        *lock(&self.state.queried) = tx;
    }

    /// [`HubHandle::publish_item`] for a captured item, in the agents' shape.
    pub fn publish_captured(&self, item: &reassembly::Item, node: &reassembly::NodeInfo) {
        self.publish_item(item.to_json(node));
    }

    /// [`HubHandle::publish_console`] for a runtime's console line.
    pub fn publish_console_line(&self, line: &scripting::ConsoleLine) {
        self.publish_console(console_line_json(line));
    }

    /// Adds one console line (see [`console_line_json`]).
    pub fn publish_console(&self, line: Value) {
        self.publish(false, line);
    }

    fn publish(&self, items: bool, v: Value) {
        let c = &self.state.counters;
        let (feed, published, evicted, oversize) = if items {
            (&self.state.items, &c.items_published, &c.items_evicted, &c.items_oversize)
        } else {
            (&self.state.console, &c.console_lines, &c.console_evicted, &c.console_oversize)
        };
        let p = lock(feed).publish(v);
        if p.oversize {
            bump(oversize);
            return;
        }
        bump(published);
        evicted.inc_by(p.evicted);
        c.sse_dropped.inc_by(p.dropped);
    }

    /// Records the report of the worker in this process (`skua run`).
    pub fn report_worker(&self, report: WorkerReport) -> Result<(), WorkerRefused> {
        self.report_worker_as(report, &Reporter::Local)
    }

    /// Records a worker's report made by `who`. Refused when the name is
    /// another reporter's (or `hub`, for anyone but the hub), or when
    /// `max_workers` others are known already.
    pub fn report_worker_as(
        &self,
        report: WorkerReport,
        who: &Reporter,
    ) -> Result<(), WorkerRefused> {
        let s = &self.state;
        let mut w = lock(&s.workers);
        self.claim(&mut w, &report.name, who)?;
        bump(&s.counters.worker_reports);
        let name = report.name.clone();
        let e = WorkerEntry {
            report,
            seen: Instant::now(),
            seen_wall: SystemTime::now(),
            owner: who.clone(),
        };
        w.insert(name, e);
        Ok(())
    }

    /// Makes `name` `who`'s (a link opening, a report coming in): a name
    /// the hub does not know yet is taken, one owned by `who` is kept, any
    /// other is refused and counted. Workers long gone (10 ×
    /// `hub.worker_timeout_ms`) are forgotten first when the table is full.
    fn claim(
        &self,
        w: &mut BTreeMap<String, WorkerEntry>,
        name: &str,
        who: &Reporter,
    ) -> Result<(), WorkerRefused> {
        let s = &self.state;
        let reserved = name == runtime::HUB_NODE && *who != Reporter::Hub;
        if reserved || w.get(name).is_some_and(|e| e.owner != *who) {
            s.counters.worker_refused("identity");
            return Err(WorkerRefused::Identity(name.to_string()));
        }
        if !w.contains_key(name) && w.len() >= s.cfg.max_workers {
            let timeout = Duration::from_millis(s.cfg.worker_timeout_ms) * 10;
            w.retain(|_, e| e.seen.elapsed() < timeout);
            if w.len() >= s.cfg.max_workers {
                s.counters.worker_refused("full");
                return Err(WorkerRefused::Full);
            }
        }
        Ok(())
    }

    /// A worker linking as `name`: takes the name for `who` (see
    /// [`HubHandle::report_worker_as`]); the worker shows in the workers
    /// view from now, before its first report.
    pub(crate) fn claim_link(&self, name: &str, who: &Reporter) -> Result<(), WorkerRefused> {
        let mut w = lock(&self.state.workers);
        self.claim(&mut w, name, who)?;
        let e = w.entry(name.to_string()).or_insert_with(|| WorkerEntry {
            report: WorkerReport { name: name.to_string(), ..Default::default() },
            seen: Instant::now(),
            seen_wall: SystemTime::now(),
            owner: who.clone(),
        });
        e.seen = Instant::now();
        e.seen_wall = SystemTime::now();
        Ok(())
    }

    /// Whether `who` may speak as worker `name` (`from` of a `hub.action`)
    /// without taking it.
    pub(crate) fn may_speak_as(&self, name: &str, who: &Reporter) -> bool {
        let w = lock(&self.state.workers);
        let reserved = name == runtime::HUB_NODE && *who != Reporter::Hub;
        !reserved && w.get(name).is_none_or(|e| e.owner == *who)
    }

    /// `hub.action(action, object)` from a runtime on `from`: goes to every
    /// subscriber (the hub-side runtime's `onHubAction`). `Ok(n)`: n
    /// subscribers took it.
    pub fn hub_action(
        &self,
        from: &str,
        action: &str,
        object: Value,
    ) -> Result<usize, ActionError> {
        if action.is_empty() {
            return Err(ActionError::EmptyAction);
        }
        bump(&self.state.counters.hub_actions);
        let ev = HubEvent::HubAction { from: from.to_string(), action: action.to_string(), object };
        match self.state.events.send(ev) {
            Ok(n) => Ok(n),
            Err(_) => {
                bump(&self.state.counters.hub_actions_unheard);
                Ok(0)
            }
        }
    }

    /// Shows the hub's pod watcher's counters on `/metrics` (the first
    /// call wins: there is one watcher per hub).
    pub fn show_kube_counters(&self, counters: Arc<crate::kube::KubeCounters>) {
        let _ = self.state.kube.set(counters);
    }

    /// Agent and env changes, job commands and hub actions from now on.
    /// Pair with [`HubHandle::snapshot`] to start from the current state.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.state.events.subscribe()
    }

    /// Every active agent and the env: what a worker loads at start (and
    /// again after missing events).
    pub fn snapshot(&self) -> Result<LinkSnapshot, StoreError> {
        let agents = self.state.store.list()?.into_iter().filter(|a| a.active).collect();
        Ok(LinkSnapshot {
            agents,
            env: self.state.store.env()?,
            items_wanted: self.state.items_wanted.load(Ordering::Relaxed),
        })
    }

    /// Saves an agent after checking that it compiles; subscribers hear of it.
    pub fn save_agent(
        &self,
        name: &str,
        source: &str,
        active: Option<bool>,
    ) -> Result<(StoredAgent, Vec<scripting::Es5Finding>), SaveError> {
        store::check_agent_name(name)?;
        let warnings = scripting::check_agent(name, source, self.state.es5_strict)?;
        let mut announced = lock(&self.state.announced);
        let agent = self.state.store.put(name, source, active)?;
        if let Some(a) = announced.as_mut() {
            a.agents.insert(agent.name.clone(), agent.clone());
        }
        let _ = self.state.events.send(HubEvent::AgentChanged { agent: agent.clone() });
        Ok((agent, warnings))
    }

    /// `None` if there is no such agent.
    pub fn set_active(&self, name: &str, active: bool) -> Result<Option<StoredAgent>, StoreError> {
        let mut announced = lock(&self.state.announced);
        let agent = self.state.store.set_active(name, active)?;
        if let Some(a) = &agent {
            if let Some(known) = announced.as_mut() {
                known.agents.insert(a.name.clone(), a.clone());
            }
            let _ = self.state.events.send(HubEvent::AgentChanged { agent: a.clone() });
        }
        Ok(agent)
    }

    /// `false` if there was no such agent.
    pub fn delete_agent(&self, name: &str) -> Result<bool, StoreError> {
        let mut announced = lock(&self.state.announced);
        let existed = self.state.store.delete(name)?;
        if existed {
            if let Some(a) = announced.as_mut() {
                a.agents.remove(name);
            }
            let _ = self.state.events.send(HubEvent::AgentRemoved { name: name.to_string() });
        }
        Ok(existed)
    }

    /// Sets or removes one env variable; `false` when removing one that
    /// did not exist.
    pub fn set_env(&self, name: &str, value: Option<&str>) -> Result<bool, StoreError> {
        let mut announced = lock(&self.state.announced);
        let changed = self.state.store.set_env(name, value)?;
        if changed {
            let env = self.state.store.env()?;
            if let Some(a) = announced.as_mut() {
                a.env = env.clone();
            }
            let _ = self.state.events.send(HubEvent::EnvChanged { env });
        }
        Ok(changed)
    }

    /// Rereads the store and announces what changed in it around the hub
    /// since the last look; the first look only records. Returns the
    /// number of events sent. Blocks (store calls).
    pub fn resync_store(&self) -> Result<usize, StoreError> {
        let mut announced = lock(&self.state.announced);
        let agents: BTreeMap<String, StoredAgent> =
            self.state.store.list()?.into_iter().map(|a| (a.name.clone(), a)).collect();
        let env = self.state.store.env()?;
        let mut events = Vec::new();
        if let Some(old) = announced.as_ref() {
            for (name, a) in &agents {
                if old.agents.get(name) != Some(a) {
                    events.push(HubEvent::AgentChanged { agent: a.clone() });
                }
            }
            for name in old.agents.keys().filter(|n| !agents.contains_key(*n)) {
                events.push(HubEvent::AgentRemoved { name: name.clone() });
            }
            if old.env != env {
                events.push(HubEvent::EnvChanged { env: env.clone() });
            }
        }
        *announced = Some(Announced { agents, env });
        let n = events.len();
        for e in events {
            let _ = self.state.events.send(e);
        }
        Ok(n)
    }

    /// Asks one worker (or all) to run or remove a job (or all jobs).
    /// Returns how many subscribers heard it.
    pub fn job_command(&self, worker: Option<&str>, tag: Option<&str>, op: JobOp) -> usize {
        let ev =
            HubEvent::Job { worker: worker.map(str::to_string), tag: tag.map(str::to_string), op };
        self.state.events.send(ev).unwrap_or(0)
    }

    pub fn store(&self) -> &Arc<dyn ScriptStore> {
        &self.state.store
    }

    pub fn counters(&self) -> &HubCounters {
        &self.state.counters
    }

    /// Live streams open now: viewer streams and worker links.
    pub fn streams_open(&self) -> (usize, usize) {
        let s = &self.state.streams;
        (s.open(streams::Class::Viewer), s.open(streams::Class::Link))
    }

    /// Items held by the ring now, and their bytes.
    pub fn items_held(&self) -> (usize, usize) {
        lock(&self.state.items).held()
    }
}

/// Why a worker's report or link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerRefused {
    #[error("too many workers (hub.max_workers)")]
    Full,
    #[error("worker name {0:?} belongs to another token (or to the hub)")]
    Identity(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("hub.action: action is empty")]
    EmptyAction,
}

/// A running hub: the listener and its handle. Dropping it stops accepting
/// connections.
pub struct HubServer {
    handle: HubHandle,
    local_addr: SocketAddr,
    generated_token: Option<String>,
    task: tokio::task::JoinHandle<()>,
    /// Rereads the store (`hub.store_poll_ms`).
    poller: Option<tokio::task::JoinHandle<()>>,
    /// Announces item demand to workers.
    demand: tokio::task::JoinHandle<()>,
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.task.abort();
        self.demand.abort();
        if let Some(p) = &self.poller {
            p.abort();
        }
    }
}

/// Every 250 ms: tells workers when items start and stop being wanted (a
/// live item stream is open, or items were queried within
/// `hub.items_demand_ms`), and closes stalled live streams.
async fn housekeeping(hub: HubHandle) {
    let window = Duration::from_millis(hub.state.cfg.items_demand_ms);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let st = &hub.state;
        streams::evict_stalled(st);
        let streams = lock(&st.items).live_clients() > 0;
        let queried = lock(&st.items_queried_at).is_some_and(|t| t.elapsed() < window);
        let wanted = streams || queried;
        if st.items_wanted.swap(wanted, Ordering::Relaxed) != wanted {
            let _ = st.events.send(HubEvent::Demand { items: wanted });
        }
    }
}

/// Every `every`, [`HubHandle::resync_store`] on the blocking pool. A
/// failing store is counted each time and said once until it recovers.
async fn poll_store(hub: HubHandle, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let h = hub.clone();
        match tokio::task::spawn_blocking(move || h.resync_store()).await {
            Ok(Err(e)) => {
                bump(&hub.state.counters.store_errors);
                if !failing {
                    tracing::warn!("hub store ({}): rereading it: {e}", hub.state.store.kind());
                }
                failing = true;
            }
            _ => failing = false,
        }
    }
}

impl HubServer {
    /// Binds `cfg.listen` now (a taken port is an error here, not later)
    /// and serves the API and dashboard on `rt`.
    pub fn start(
        cfg: &HubConfig,
        es5_strict: bool,
        store: Arc<dyn ScriptStore>,
        rt: &tokio::runtime::Handle,
    ) -> Result<HubServer, HubError> {
        cfg.validate()?;
        if cfg.listen.is_empty() {
            return Err(HubError::Config(config::InvalidHubConfig {
                key: "hub.listen".into(),
                reason: "empty: the hub needs an address".into(),
            }));
        }
        let (tokens, generated_token) = auth::Tokens::from_config(cfg)?;
        let (events, _) = broadcast::channel(cfg.event_queue);
        let state = Arc::new(HubState {
            items: Mutex::new(feed::Feed::new("item", cfg.items_capacity, cfg.items_max_bytes)),
            console: Mutex::new(feed::Feed::new(
                "console",
                cfg.console_capacity,
                cfg.console_max_bytes,
            )),
            cfg: cfg.clone(),
            es5_strict,
            store,
            tokens,
            workers: Mutex::new(BTreeMap::new()),
            events,
            counters: HubCounters::default(),
            streams: streams::Streams::default(),
            queried: Mutex::new(None),
            items_wanted: std::sync::atomic::AtomicBool::new(false),
            items_queried_at: Mutex::new(None),
            started: Instant::now(),
            kube: std::sync::OnceLock::new(),
            announced: Mutex::new(None),
        });
        let err = |source| HubError::Listen { addr: cfg.listen.clone(), source };
        let std_listener = std::net::TcpListener::bind(&cfg.listen).map_err(err)?;
        std_listener.set_nonblocking(true).map_err(err)?;
        let local_addr = std_listener.local_addr().map_err(err)?;
        let _guard = rt.enter();
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(err)?;
        let handle = HubHandle { state };
        let task = rt.spawn(server::serve(listener, api::router(handle.clone())));
        let poller = (cfg.store_poll_ms > 0).then(|| {
            rt.spawn(poll_store(handle.clone(), Duration::from_millis(cfg.store_poll_ms)))
        });
        let demand = rt.spawn(housekeeping(handle.clone()));
        Ok(HubServer { handle, local_addr, generated_token, task, poller, demand })
    }

    pub fn handle(&self) -> HubHandle {
        self.handle.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The admin token generated at start (no tokens were configured), to
    /// print once.
    pub fn generated_token(&self) -> Option<&str> {
        self.generated_token.as_deref()
    }
}

/// `skua hub`: serves until SIGINT/SIGTERM.
pub fn run(
    mut cfg: crate::config::Config,
    args: &HubArgs,
) -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context;
    if let Some(l) = &args.listen {
        cfg.hub.listen = l.clone();
    }
    if let Some(d) = &args.store {
        cfg.hub.store_dir = d.clone();
    }
    cfg.validate()?;
    // Before anything is printed: whoever reads the address may stop us at once.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.integrations.worker_threads)
        .thread_name("skua-hub")
        .enable_all()
        .build()
        .context("starting the hub's runtime")?;
    let (store, where_): (Arc<dyn ScriptStore>, String) = match cfg.hub.store {
        StoreKind::Dir => {
            (Arc::new(DirStore::open(&cfg.hub.store_dir)?), cfg.hub.store_dir.display().to_string())
        }
        StoreKind::Kube => {
            let s = kube_store::KubeStore::connect(&cfg.hub, rt.handle())?;
            let where_ = s.describe();
            (Arc::new(s), where_)
        }
    };
    let server = HubServer::start(&cfg.hub, cfg.scripting.es5_strict, store, rt.handle())?;
    tracing::info!("hub on http://{} (store {where_})", server.local_addr());
    if let Some(t) = server.generated_token() {
        // Printed once, to stderr only: the dashboard takes it from the
        // URL fragment, which browsers never send to the server.
        tracing::warn!("no hub tokens configured; generated admin token: {t}");
        tracing::info!("dashboard: http://{}/#token={t}", server.local_addr());
    }
    if cfg.hub.auth == AuthMode::None {
        tracing::warn!("hub.auth is none: anyone who can reach {} is admin", server.local_addr());
    }
    let agents = if cfg.hub.run_agents {
        Some(runtime::HubRuntime::start(server.handle(), &cfg.scripting, &cfg.integrations)?)
    } else {
        None
    };
    // Cluster-wide: the hub's agents see every pod's events (workers see
    // their node's). Nothing to deliver to without hub-side agents.
    let watching = match &agents {
        Some(a) if cfg.kubernetes.is_enabled() => {
            let inbox = a.inbox();
            let deliver = move |e: scripting::RuntimeEvent| {
                inbox.deliver(&e);
            };
            crate::kube::start_watching(
                &cfg.kubernetes,
                crate::config::KubernetesScope::Cluster,
                rt.handle(),
                deliver,
            )?
        }
        _ => None,
    };
    if let Some(w) = &watching {
        server.handle().show_kube_counters(w.counters.clone());
        tracing::info!("hub watching pods for onPodEvent");
    }
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for t in watching.iter().flat_map(|w| &w.tasks) {
        t.abort();
    }
    if let Some(a) = agents {
        a.shutdown();
    }
    drop(server);
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(std::process::ExitCode::SUCCESS)
}
