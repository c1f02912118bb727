//! The worker's end of the worker↔hub link (`link.hub`).
//!
//! Down: one long-lived `GET /api/link/events?worker=NAME` stream of
//! server-sent events — a `snapshot` (the active agents and the env), then
//! every change — applied to the local runtimes through their mailboxes
//! (agent load/remove, env, job commands), between hook calls, without
//! pausing capture. Up: console lines and items in batches
//! (`POST /api/link/console`, `/api/link/items`) and a stats report every
//! `link.stats_every_ms` (`POST /api/link/stats`).
//!
//! The hub asks for items rather than receiving them all: the snapshot and
//! `demand` events say whether anyone is watching, and even then at most
//! `link.max_items_per_s` go up (a sample of a busy link).
//!
//! When the hub is away the worker keeps capturing with the agents it has;
//! the link reconnects with exponential back-off (with jitter) and the next
//! snapshot brings it up to date. Everything queued for the hub is bounded:
//! the oldest console lines and the newest items are dropped and counted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{HeaderMap, Method};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use scripting::RuntimeEvent;

use crate::executor::ExecutorHandle;
use crate::integrations::http::{parse_url, HttpClient, HttpRequest, SendOptions};

/// `link`: how a worker reaches its hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// The hub's base URL (`http://skua-hub:8899`). Empty: no hub; the
    /// worker runs the agents of `scripting.source`.
    pub hub: String,
    /// Bearer token for the hub: a worker token (`hub.worker_tokens`, or a
    /// `worker` line of `hub.tokens_file`); the link refuses other roles.
    /// Empty: the `SKUA_TOKEN` environment variable.
    pub token: String,
    /// This worker's name on the hub. Empty: the node name.
    pub name: String,
    /// Console lines waiting to go to the hub (kept while it is away). When
    /// full, the oldest line is dropped and counted.
    pub console_queue: usize,
    /// Items waiting to go to the hub while it asks for them. When full,
    /// new items are dropped and counted.
    pub item_queue: usize,
    /// Most items sent to the hub per second; a busier link sends a sample.
    pub max_items_per_s: u32,
    /// How often the worker's stats (counters, hooks, jobs) are sent, in
    /// milliseconds.
    pub stats_every_ms: u64,
    /// Longest wait between two attempts to reach the hub, in milliseconds
    /// (the wait starts at 250 ms and doubles).
    pub reconnect_max_ms: u64,
    /// Largest event the hub may send (an agent's source), in bytes; a
    /// larger one drops the connection, which is then made again.
    pub max_event_bytes: usize,
    /// How long a worker holds capture at start until its agents have come
    /// from the hub (the first snapshot applied to every runtime), in
    /// milliseconds. Past it capture starts with the agents the worker has
    /// (a warning says so) and the hub's load when it answers. `0` does not
    /// wait.
    pub agents_wait_ms: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            hub: String::new(),
            token: String::new(),
            name: String::new(),
            console_queue: 4_096,
            item_queue: 1_024,
            max_items_per_s: 200,
            stats_every_ms: 2_000,
            reconnect_max_ms: 10_000,
            max_event_bytes: 8 << 20,
            agents_wait_ms: 10_000,
        }
    }
}

impl LinkConfig {
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, r: &str| Err((format!("link.{k}"), r.to_string()));
        if !self.hub.is_empty() && parse_url(&self.hub).is_err() {
            return bad("hub", "not an http(s) URL with a host");
        }
        if self.console_queue == 0 || self.item_queue == 0 {
            return bad("console_queue", "queues hold at least 1");
        }
        if self.stats_every_ms < 100 || self.reconnect_max_ms < 250 {
            return bad("stats_every_ms", "at least 100 ms (reconnect_max_ms at least 250 ms)");
        }
        Ok(())
    }
}

/// The link's counters (`/metrics`, the exit summary).
#[derive(Debug, Default)]
pub struct LinkCounters {
    pub connected: AtomicBool,
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub events_applied: AtomicU64,
    pub console_sent: AtomicU64,
    pub console_dropped: AtomicU64,
    pub items_sent: AtomicU64,
    pub items_dropped: AtomicU64,
    pub actions_sent: AtomicU64,
    pub actions_dropped: AtomicU64,
    pub send_failures: AtomicU64,
}

/// What the capture side hands the link; cheap to clone, never blocks.
#[derive(Clone)]
pub struct LinkTap {
    inner: Arc<TapInner>,
}

struct TapInner {
    /// Whether the hub wants items now (someone is watching).
    wanted: AtomicBool,
    items: Mutex<ItemQueue>,
    console: Mutex<VecDeque<Value>>,
    /// `hub.action` calls on their way to the hub-side `onHubAction`.
    actions: Mutex<VecDeque<Value>>,
    console_cap: usize,
    counters: Arc<LinkCounters>,
}

struct ItemQueue {
    q: VecDeque<Value>,
    cap: usize,
    /// Token bucket for `max_items_per_s`.
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl LinkTap {
    fn new(cfg: &LinkConfig, counters: Arc<LinkCounters>) -> Self {
        let rate = f64::from(cfg.max_items_per_s.max(1));
        LinkTap {
            inner: Arc::new(TapInner {
                wanted: AtomicBool::new(false),
                items: Mutex::new(ItemQueue {
                    q: VecDeque::new(),
                    cap: cfg.item_queue,
                    tokens: rate,
                    rate,
                    last: Instant::now(),
                }),
                console: Mutex::new(VecDeque::new()),
                actions: Mutex::new(VecDeque::new()),
                console_cap: cfg.console_queue,
                counters,
            }),
        }
    }

    /// Whether an item offered now could be taken: the hub wants items and
    /// the rate allows one. Cheap enough to ask for every item.
    #[inline]
    pub fn wants_item(&self) -> bool {
        self.inner.wanted.load(Ordering::Relaxed)
    }

    /// Offers an item (its JSON built by the caller only when
    /// [`LinkTap::wants_item`] said yes).
    pub fn offer_item(&self, item: impl FnOnce() -> Value) {
        let Ok(mut q) = self.inner.items.try_lock() else {
            self.inner.counters.items_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let now = Instant::now();
        let refill = now.duration_since(q.last).as_secs_f64() * q.rate;
        q.tokens = (q.tokens + refill).min(q.rate);
        q.last = now;
        if q.tokens < 1.0 || q.q.len() >= q.cap {
            drop(q);
            self.inner.counters.items_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.tokens -= 1.0;
        q.q.push_back(item());
    }

    /// Queues a console line for the hub; the oldest goes when full.
    pub fn console(&self, line: Value) {
        let Ok(mut q) = self.inner.console.lock() else { return };
        if q.len() >= self.inner.console_cap {
            q.pop_front();
            self.inner.counters.console_dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back(line);
    }

    /// Queues a `hub.action` for the hub; `false` (counted) when full.
    pub fn hub_action(&self, action: &str, object: &Value, from: &str) -> bool {
        let Ok(mut q) = self.inner.actions.lock() else { return false };
        if q.len() >= self.inner.console_cap {
            self.inner.counters.actions_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        q.push_back(serde_json::json!({ "action": action, "object": object, "from": from }));
        true
    }

    fn take_actions(&self) -> Vec<Value> {
        self.inner.actions.lock().map(|mut q| q.drain(..).collect()).unwrap_or_default()
    }

    fn take_console(&self, max: usize) -> Vec<Value> {
        self.inner
            .console
            .lock()
            .map(|mut q| {
                let n = q.len().min(max);
                q.drain(..n).collect()
            })
            .unwrap_or_default()
    }

    fn take_items(&self, max: usize) -> Vec<Value> {
        self.inner
            .items
            .lock()
            .map(|mut q| {
                let n = q.q.len().min(max);
                q.q.drain(..n).collect()
            })
            .unwrap_or_default()
    }

    fn set_wanted(&self, wanted: bool) {
        self.inner.wanted.store(wanted, Ordering::Relaxed);
        if !wanted {
            if let Ok(mut q) = self.inner.items.lock() {
                q.q.clear();
            }
        }
    }
}

/// The worker's report to the hub, built by the caller each time.
pub type Report = Arc<dyn Fn() -> Value + Send + Sync>;

/// A running link; stops when dropped.
pub struct Link {
    pub tap: LinkTap,
    pub counters: Arc<LinkCounters>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shared: Arc<Shared>,
    rt: tokio::runtime::Handle,
}

/// How the link reaches its hub.
enum Transport {
    /// Over HTTP (`skua worker` with `link.hub`).
    Remote { client: Box<HttpClient>, token: Option<String> },
    /// The hub in the same process (`skua run`): the same events and
    /// uplink, as calls.
    Local(crate::hub::HubHandle),
}

struct Shared {
    cfg: LinkConfig,
    name: String,
    transport: Transport,
    executor: ExecutorHandle,
    tap: LinkTap,
    counters: Arc<LinkCounters>,
    /// Agents this link loaded, so a snapshot can remove the others.
    loaded: Mutex<BTreeSet<String>>,
    /// Set once the first snapshot has been applied (`Link::wait_ready`).
    ready: (Mutex<bool>, std::sync::Condvar),
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("link.hub {0:?}: {1}")]
    Url(String, String),
    #[error("link: HTTP client: {0}")]
    Client(String),
}

impl Link {
    /// Starts the link on `rt` (the control plane's runtime). Agents the
    /// worker already runs (`initial`) are taken as loaded by the link: a
    /// snapshot without them removes them.
    pub fn start(
        cfg: &LinkConfig,
        node_name: &str,
        executor: ExecutorHandle,
        rt: &tokio::runtime::Handle,
        report: Report,
        initial: &[String],
    ) -> Result<Link, LinkError> {
        parse_url(&cfg.hub).map_err(|e| LinkError::Url(cfg.hub.clone(), e.to_string()))?;
        let client = {
            let _guard = rt.enter();
            HttpClient::new(Duration::from_secs(5), None)
                .map_err(|e| LinkError::Client(e.to_string()))?
        };
        let token = Some(cfg.token.clone())
            .filter(|t| !t.is_empty())
            .or_else(|| std::env::var("SKUA_TOKEN").ok().filter(|t| !t.is_empty()));
        Ok(Self::spawn(
            cfg,
            node_name,
            Transport::Remote { client: Box::new(client), token },
            executor,
            rt,
            report,
            initial,
        ))
    }

    /// Links to the hub of this process (`skua run`).
    pub fn start_local(
        cfg: &LinkConfig,
        node_name: &str,
        hub: crate::hub::HubHandle,
        executor: ExecutorHandle,
        rt: &tokio::runtime::Handle,
        report: Report,
        initial: &[String],
    ) -> Link {
        Self::spawn(cfg, node_name, Transport::Local(hub), executor, rt, report, initial)
    }

    fn spawn(
        cfg: &LinkConfig,
        node_name: &str,
        transport: Transport,
        executor: ExecutorHandle,
        rt: &tokio::runtime::Handle,
        report: Report,
        initial: &[String],
    ) -> Link {
        let counters = Arc::new(LinkCounters::default());
        let tap = LinkTap::new(cfg, counters.clone());
        let name = if cfg.name.is_empty() { node_name.to_string() } else { cfg.name.clone() };
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            name,
            transport,
            executor,
            tap: tap.clone(),
            counters: counters.clone(),
            loaded: Mutex::new(initial.iter().cloned().collect()),
            ready: (Mutex::new(false), std::sync::Condvar::new()),
        });
        let tasks = vec![
            rt.spawn(events_loop(shared.clone())),
            rt.spawn(uplink_loop(shared.clone(), report)),
        ];
        Link { tap, counters, tasks, shared, rt: rt.clone() }
    }

    /// Waits until the hub's first snapshot (its agents and env) has been
    /// handed to the runtimes, at most `timeout`; `false` if it has not.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let (lock, cv) = &self.shared.ready;
        let Ok(guard) = lock.lock() else { return false };
        match cv.wait_timeout_while(guard, timeout, |ready| !*ready) {
            Ok((ready, _)) => *ready,
            Err(_) => false,
        }
    }

    /// Sends what is queued (console lines, a last report) within
    /// `timeout`, then stops.
    pub fn shutdown(self, report: Report, timeout: Duration) {
        for t in &self.tasks {
            t.abort();
        }
        let shared = self.shared.clone();
        let _ = self
            .rt
            .block_on(async move { tokio::time::timeout(timeout, flush(&shared, &report)).await });
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Shared {
    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Option<(&HttpClient, HttpRequest)> {
        let Transport::Remote { client, token } = &self.transport else { return None };
        let url = parse_url(&format!("{}{path}", self.cfg.hub.trim_end_matches('/'))).ok()?;
        let mut headers = HeaderMap::new();
        if let Some(t) = token {
            headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {t}")).ok()?);
        }
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        Some((client, HttpRequest { method, url, headers, body: body.unwrap_or_default() }))
    }

    /// One uplink call: `path` is the hub's endpoint for it.
    async fn post(&self, path: &str, v: &Value) -> bool {
        let ok = match &self.transport {
            Transport::Local(hub) => post_local(hub, path, v),
            Transport::Remote { .. } => {
                let Some((client, req)) =
                    self.request(Method::POST, path, Some(Bytes::from(v.to_string())))
                else {
                    return false;
                };
                let opts = SendOptions {
                    timeout: Duration::from_secs(10),
                    max_redirects: 0,
                    max_body_bytes: 64 << 10,
                };
                matches!(client.send(&req, opts).await, Ok(r) if (200..300).contains(&r.status))
            }
        };
        if !ok {
            self.counters.send_failures.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    fn broadcast(&self, e: RuntimeEvent) {
        self.executor.hub().broadcast(&e);
    }

    /// Applies one event from the hub.
    fn apply(&self, name: &str, v: &Value) {
        self.counters.events_applied.fetch_add(1, Ordering::Relaxed);
        match name {
            "snapshot" => {
                if let Some(env) = env_of(&v["env"]) {
                    self.broadcast(RuntimeEvent::SetEnv { env });
                }
                let mut active = BTreeSet::new();
                for a in v["agents"].as_array().into_iter().flatten() {
                    if let (Some(n), Some(src), true) = (
                        a["name"].as_str(),
                        a["source"].as_str(),
                        a["active"].as_bool().unwrap_or(true),
                    ) {
                        active.insert(n.to_string());
                        self.broadcast(RuntimeEvent::LoadAgent {
                            name: n.into(),
                            source: src.into(),
                        });
                    }
                }
                let Ok(mut loaded) = self.loaded.lock() else { return };
                for gone in loaded.difference(&active) {
                    self.broadcast(RuntimeEvent::RemoveAgent { name: gone.clone() });
                }
                *loaded = active;
                drop(loaded);
                self.tap.set_wanted(v["itemsWanted"].as_bool().unwrap_or(false));
                let (lock, cv) = &self.ready;
                if let Ok(mut ready) = lock.lock() {
                    *ready = true;
                    cv.notify_all();
                }
            }
            "agentChanged" => {
                let a = &v["agent"];
                let Some(n) = a["name"].as_str() else { return };
                let Ok(mut loaded) = self.loaded.lock() else { return };
                match (a["source"].as_str(), a["active"].as_bool().unwrap_or(true)) {
                    (Some(src), true) => {
                        loaded.insert(n.to_string());
                        self.broadcast(RuntimeEvent::LoadAgent {
                            name: n.into(),
                            source: src.into(),
                        });
                    }
                    _ => {
                        loaded.remove(n);
                        self.broadcast(RuntimeEvent::RemoveAgent { name: n.into() });
                    }
                }
            }
            "agentRemoved" => {
                if let Some(n) = v["name"].as_str() {
                    if let Ok(mut l) = self.loaded.lock() {
                        l.remove(n);
                    }
                    self.broadcast(RuntimeEvent::RemoveAgent { name: n.into() });
                }
            }
            "envChanged" => {
                if let Some(env) = env_of(&v["env"]) {
                    self.broadcast(RuntimeEvent::SetEnv { env });
                }
            }
            "job" => {
                let tag = v["tag"].as_str().map(str::to_string);
                let remove = v["op"].as_str() == Some("remove");
                self.broadcast(RuntimeEvent::Job { tag, remove });
            }
            "demand" => self.tap.set_wanted(v["items"].as_bool().unwrap_or(false)),
            _ => {}
        }
    }
}

/// The uplink to a hub in this process: what its `/api/link/*` and
/// `/api/hub/action` handlers would do with `v`.
fn post_local(hub: &crate::hub::HubHandle, path: &str, v: &Value) -> bool {
    match path {
        "/api/link/console" => {
            v.as_array().into_iter().flatten().for_each(|l| hub.publish_console(l.clone()))
        }
        "/api/link/items" => {
            v.as_array().into_iter().flatten().for_each(|i| hub.publish_item(i.clone()))
        }
        "/api/link/stats" => match serde_json::from_value(v.clone()) {
            Ok(report) => return hub.report_worker(report).is_ok(),
            Err(_) => return false,
        },
        "/api/hub/action" => {
            let (action, from) =
                (v["action"].as_str().unwrap_or(""), v["from"].as_str().unwrap_or(""));
            return hub.hub_action(from, action, v["object"].clone()).is_ok();
        }
        _ => return false,
    }
    true
}

fn env_of(v: &Value) -> Option<BTreeMap<String, String>> {
    v.as_object()
        .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
}

/// Keeps the event stream open, reconnecting with back-off.
async fn events_loop(sh: Arc<Shared>) {
    if let Transport::Local(hub) = &sh.transport {
        return follow_local(&sh, hub.clone()).await;
    }
    let mut backoff = Duration::from_millis(250);
    let max = Duration::from_millis(sh.cfg.reconnect_max_ms);
    loop {
        match follow_events(&sh).await {
            Ok(()) => backoff = Duration::from_millis(250),
            Err(e) => {
                sh.counters.connect_failures.fetch_add(1, Ordering::Relaxed);
                if sh.counters.connect_failures.load(Ordering::Relaxed) == 1 || backoff >= max {
                    tracing::warn!(
                        "hub {}: {e}; capture goes on with the current agents, retrying",
                        sh.cfg.hub
                    );
                }
            }
        }
        sh.counters.connected.store(false, Ordering::Relaxed);
        sh.tap.set_wanted(false);
        // Jitter: workers that lost the hub together do not all return at once.
        let jitter = Duration::from_millis(
            u64::from(std::process::id() % 97) * backoff.as_millis() as u64 / 400,
        );
        tokio::time::sleep(backoff + jitter).await;
        backoff = (backoff * 2).min(max);
    }
}

/// The hub of this process: its snapshot, then its events, as a remote
/// link would get them (a lagging subscriber gets a fresh snapshot).
async fn follow_local(sh: &Shared, hub: crate::hub::HubHandle) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = hub.subscribe();
    let snapshot = |hub: crate::hub::HubHandle| async move {
        tokio::task::spawn_blocking(move || hub.snapshot()).await.ok()?.ok()
    };
    if let Some(s) = snapshot(hub.clone()).await {
        sh.apply("snapshot", &serde_json::json!(s));
    }
    sh.counters.connected.store(true, Ordering::Relaxed);
    loop {
        match events.recv().await {
            Ok(ev) => {
                let v = serde_json::json!(ev);
                let name = v["type"].as_str().unwrap_or("").to_string();
                // Hub actions are the hub-side runtime's; jobs for another worker are not ours.
                let ours = match &ev {
                    crate::hub::HubEvent::HubAction { .. } => false,
                    crate::hub::HubEvent::Job { worker: Some(w), .. } => *w == sh.name,
                    _ => true,
                };
                if ours {
                    sh.apply(&name, &v);
                }
            }
            Err(RecvError::Lagged(_)) => {
                if let Some(s) = snapshot(hub.clone()).await {
                    sh.apply("snapshot", &serde_json::json!(s));
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// One connection: reads events until the stream ends.
async fn follow_events(sh: &Shared) -> Result<(), String> {
    let path = format!(
        "/api/link/events?worker={}",
        url::form_urlencoded::byte_serialize(sh.name.as_bytes()).collect::<String>()
    );
    let (client, mut req) =
        sh.request(Method::GET, &path, None).ok_or("bad link.hub URL or token")?;
    req.headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    let resp = client.open(&req, Duration::from_secs(10)).await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
    }
    sh.counters.connects.fetch_add(1, Ordering::Relaxed);
    sh.counters.connected.store(true, Ordering::Relaxed);
    tracing::info!("linked to hub {} as {}", sh.cfg.hub, sh.name);
    let mut body = resp.into_body();
    let mut parser = SseParser::new(sh.cfg.max_event_bytes);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("event stream: {e}"))?;
        let Ok(data) = frame.into_data() else { continue };
        for (name, data) in parser.push(&data)? {
            match serde_json::from_str::<Value>(&data) {
                Ok(v) => sh.apply(&name, &v),
                Err(e) => tracing::warn!("hub event {name:?} is not JSON ({e}); ignored"),
            }
        }
    }
    Err("the hub closed the event stream".into())
}

/// Splits a server-sent-events byte stream into (event, data) pairs.
struct SseParser {
    buf: Vec<u8>,
    max: usize,
}

impl SseParser {
    fn new(max: usize) -> Self {
        SseParser { buf: Vec::new(), max }
    }

    fn push(&mut self, bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = find_blank_line(&self.buf) {
            let block: Vec<u8> = self.buf.drain(..end.1).collect();
            let text = String::from_utf8_lossy(&block[..end.0]);
            let (mut name, mut data) = ("message".to_string(), String::new());
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if !data.is_empty() {
                out.push((name, data));
            }
        }
        if self.buf.len() > self.max {
            return Err(format!("an event over link.max_event_bytes ({} bytes)", self.max));
        }
        Ok(out)
    }
}

/// (end of the block, end of the separator) of the first blank line.
fn find_blank_line(b: &[u8]) -> Option<(usize, usize)> {
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(c)) => Some(if a.0 <= c.0 { a } else { c }),
        (a, c) => a.or(c),
    }
}

/// Sends console lines and items every 250 ms and a report every
/// `stats_every_ms`.
async fn uplink_loop(sh: Arc<Shared>, report: Report) {
    let every = Duration::from_millis(sh.cfg.stats_every_ms);
    let mut last_report = Instant::now() - every;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if !sh.counters.connected.load(Ordering::Relaxed) {
            continue;
        }
        send_queued(&sh).await;
        if last_report.elapsed() >= every {
            last_report = Instant::now();
            let r = report();
            sh.post("/api/link/stats", &r).await;
        }
    }
}

async fn send_queued(sh: &Shared) {
    const BATCH: usize = 512;
    for a in sh.tap.take_actions() {
        let counter = if sh.post("/api/hub/action", &a).await {
            &sh.counters.actions_sent
        } else {
            &sh.counters.actions_dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    loop {
        let lines = sh.tap.take_console(BATCH);
        if lines.is_empty() {
            break;
        }
        let n = lines.len() as u64;
        if sh.post("/api/link/console", &Value::Array(lines)).await {
            sh.counters.console_sent.fetch_add(n, Ordering::Relaxed);
        } else {
            sh.counters.console_dropped.fetch_add(n, Ordering::Relaxed);
            break;
        }
    }
    let items = sh.tap.take_items(BATCH);
    if !items.is_empty() {
        let n = items.len() as u64;
        let counter = if sh.post("/api/link/items", &Value::Array(items)).await {
            &sh.counters.items_sent
        } else {
            &sh.counters.items_dropped
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

async fn flush(sh: &Shared, report: &Report) {
    send_queued(sh).await;
    let r = report();
    sh.post("/api/link/stats", &r).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_split_across_reads_and_line_endings() {
        let mut p = SseParser::new(1 << 20);
        assert!(p.push(b"event: snapshot\ndata: {\"a\"").unwrap().is_empty());
        let got = p
            .push(
                b":1}\n\n: keep-alive\n\nevent: demand\r\ndata: {\"items\":true}\r\n\r\nevent: x\n",
            )
            .unwrap();
        assert_eq!(
            got,
            [
                ("snapshot".to_string(), "{\"a\":1}".to_string()),
                ("demand".to_string(), "{\"items\":true}".to_string())
            ]
        );
        assert!(SseParser::new(8).push(b"event: big\ndata: 0123456789").is_err());
    }

    #[test]
    fn the_item_tap_is_off_until_wanted_then_rate_limited_and_bounded() {
        let cfg = LinkConfig {
            max_items_per_s: 5,
            item_queue: 3,
            console_queue: 2,
            ..LinkConfig::default()
        };
        let counters = Arc::new(LinkCounters::default());
        let tap = LinkTap::new(&cfg, counters.clone());
        assert!(!tap.wants_item());
        tap.set_wanted(true);
        for i in 0..10 {
            tap.offer_item(|| serde_json::json!({ "i": i }));
        }
        assert_eq!(tap.take_items(100).len(), 3, "the queue's bound");
        assert_eq!(counters.items_dropped.load(Ordering::Relaxed), 7);
        for i in 0..3 {
            tap.console(serde_json::json!({ "text": i }));
        }
        assert_eq!(
            tap.take_console(10),
            [serde_json::json!({"text": 1}), serde_json::json!({"text": 2})],
            "the oldest line went"
        );
        assert_eq!(counters.console_dropped.load(Ordering::Relaxed), 1);
    }
}
