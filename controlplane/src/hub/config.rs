//! `HubConfig`: the `hub` section of the config. Every limit of the hub
//! (rings, queues, clients, request bodies) is one named field with a
//! default; the doc comments of the fields are the user documentation
//! (`docs/config.md` repeats them).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How the hub decides who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Bearer tokens (`admin_tokens`, `read_only_tokens`, `worker_tokens`,
    /// `tokens_file`). With none configured the hub generates an admin
    /// token at start and prints it once.
    #[default]
    Tokens,
    /// No authentication: every caller is admin and worker. Only accepted
    /// when `listen` is a loopback address (a laptop, a demo).
    None,
}

/// Where the hub keeps agents and env.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// A directory (`store_dir`): standalone, or a pod with a volume.
    #[default]
    Dir,
    /// A ConfigMap (agents) and a Secret (env) in the hub's namespace, so
    /// agents saved in the dashboard survive a restart of the hub's pod.
    Kube,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// Address the hub's HTTP API and dashboard listen on (`skua hub`, and
    /// `skua run` while there is something to watch: the demo, a live
    /// source, an endless replay). Empty: `skua run` serves no dashboard.
    pub listen: String,
    /// Directory of the standalone script store: one `NAME.js` per agent in
    /// `agents/`, which of them are inactive in `inactive.json`, agents' env
    /// in `env.json` (mode 0600). Created if missing.
    pub store_dir: PathBuf,
    /// `dir` (`store_dir`) or `kube` (`kube_configmap` and `kube_secret`).
    pub store: StoreKind,
    /// Namespace of the kube store's ConfigMap and Secret. Empty: the
    /// client's default namespace (in a pod: the pod's own, from its
    /// service account; else the kubeconfig context's; else `default`).
    pub kube_namespace: String,
    /// ConfigMap holding the agents: one key `NAME.js` per agent; the
    /// names of inactive agents are the annotation `skua.io/inactive` (a
    /// JSON list). Created when missing.
    pub kube_configmap: String,
    /// Secret holding the agents' env: one key per variable. Created when
    /// missing. Values are never logged.
    pub kube_secret: String,
    /// Attempts of one write to the ConfigMap or Secret when another writer
    /// changed it in between (409 Conflict); each re-reads it first.
    pub kube_write_attempts: u32,
    /// Largest ConfigMap or Secret the kube store writes, in bytes of keys
    /// and values (the API server refuses objects over 1 MiB); a save past
    /// it fails with an error naming the size.
    pub kube_max_object_bytes: usize,
    /// Time one call to the API server may take (milliseconds).
    pub kube_timeout_ms: u64,
    /// How often (milliseconds) the hub rereads its store to announce
    /// changes made around it (the ConfigMap written by `skua scripts
    /// --kube` or kubectl, files edited by hand) to workers and its own
    /// runtime; 0: never.
    pub store_poll_ms: u64,
    /// `tokens` (bearer tokens; the default) or `none` (loopback only).
    pub auth: AuthMode,
    /// Tokens with every right: agents, env, jobs, `hub.action`.
    pub admin_tokens: Vec<String>,
    /// Tokens that may read (items, agents, console, jobs, workers,
    /// `/metrics`) and change nothing.
    pub read_only_tokens: Vec<String>,
    /// Tokens of workers: the worker link (`/api/link/*`: agents with their
    /// env, items, console lines, stats) and `hub.action`. Only this role
    /// ever receives env values.
    pub worker_tokens: Vec<String>,
    /// File of further tokens, one `ROLE TOKEN` a line (`admin`, `read`,
    /// `worker`; `#` starts a comment); empty: none. Read at start.
    pub tokens_file: String,
    /// Recent items the hub keeps (a ring; the oldest is evicted and
    /// counted) for queries and the dashboard.
    pub items_capacity: usize,
    /// Bytes the item ring may hold (each item's JSON and its parsed form,
    /// as estimated when it comes in); the oldest items are evicted to stay
    /// under it and counted. An item larger than this alone is dropped and
    /// counted (`skua_hub_items_oversize_total`).
    pub items_max_bytes: usize,
    /// Recent console lines the hub keeps for the console view.
    pub console_capacity: usize,
    /// Bytes the console ring may hold, as `items_max_bytes`.
    pub console_max_bytes: usize,
    /// Events waiting to be written to one live-stream (SSE) client. When
    /// full, further events for that client are dropped and counted
    /// (`skua_hub_sse_dropped_total`); a slow client never slows the hub.
    pub sse_client_queue: usize,
    /// Bytes of events waiting for one live-stream client (worker links
    /// included); past it, events for that client are dropped and counted
    /// as with `sse_client_queue`.
    pub sse_client_queue_bytes: usize,
    /// Viewer streams (items and console, for read and admin tokens) at
    /// once; past it a new one is refused with 503 and counted. Worker
    /// links have their own slots (`max_worker_links`).
    pub max_sse_clients: usize,
    /// Viewer streams one token may hold at once (a leaked or looping
    /// client cannot take every slot); past it 429, counted.
    pub max_streams_per_token: usize,
    /// Worker links (`/api/link/events`) at once, apart from viewer
    /// streams, so dashboards and API clients can never keep a worker from
    /// linking; past it 503, counted.
    pub max_worker_links: usize,
    /// Worker links one worker token may hold at once; past it 429,
    /// counted. Workers sharing one token (a DaemonSet) need it at least
    /// their number.
    pub max_links_per_token: usize,
    /// A live stream (viewer or worker link) whose client has taken no
    /// event for this long while events were waiting for it is closed and
    /// its slot freed (`skua_hub_streams_evicted_total`), in milliseconds.
    pub stream_stall_ms: u64,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Time a request's whole body may take to arrive, in milliseconds; a
    /// client still sending after it gets 408 and its connection is closed
    /// (`skua_hub_body_timeouts_total`).
    pub body_timeout_ms: u64,
    /// Host names (without port) accepted in the `Host` header besides
    /// loopback names and addresses. With `auth: none` any other Host is
    /// refused (403), which defeats DNS rebinding; with tokens, an empty
    /// list accepts any Host.
    pub allowed_hosts: Vec<String>,
    /// Origins (`https://dash.example:8443`) allowed to call the API from a
    /// browser besides the hub's own; a request with any other `Origin` is
    /// refused (403), whatever the auth mode.
    pub allowed_origins: Vec<String>,
    /// Most items one query (`GET /api/items?limit=`) returns.
    pub max_query_items: usize,
    /// Agent changes, job commands and hub actions waiting for each
    /// subscriber (a worker link, the in-process worker). A subscriber that
    /// falls behind loses the oldest (counted) and is sent a fresh snapshot.
    pub event_queue: usize,
    /// A worker not heard from for this long (milliseconds) is shown as
    /// offline.
    pub worker_timeout_ms: u64,
    /// Workers remembered at once; a report from one more is refused (429).
    pub max_workers: usize,
    /// Items waiting for the hub's `onItemQueried` (while a hub agent
    /// defines it). When full, an item is published as it came and counted
    /// (`skua_hub_items_unqueried_total`).
    pub queried_queue: usize,
    /// How long after an items query (`GET /api/items`) workers keep
    /// sending items, in milliseconds; a live item stream asks for them as
    /// long as it is open. Otherwise workers send none.
    pub items_demand_ms: u64,
    /// Run the store's active agents on the hub too (node `hub`): their
    /// `onHubAction` receives every `hub.action`, their jobs run on the hub.
    /// Its I/O helpers use the `integrations` section.
    pub run_agents: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            listen: "127.0.0.1:8899".into(),
            store_dir: PathBuf::from("/var/lib/skua/hub"),
            store: StoreKind::Dir,
            kube_namespace: String::new(),
            kube_configmap: "skua-agents".into(),
            kube_secret: "skua-agents-env".into(),
            kube_write_attempts: 5,
            kube_max_object_bytes: 1_000_000,
            kube_timeout_ms: 10_000,
            store_poll_ms: 5_000,
            auth: AuthMode::Tokens,
            admin_tokens: Vec::new(),
            read_only_tokens: Vec::new(),
            worker_tokens: Vec::new(),
            tokens_file: String::new(),
            items_capacity: 10_000,
            items_max_bytes: 64 << 20,
            console_capacity: 2_000,
            console_max_bytes: 8 << 20,
            sse_client_queue: 1_024,
            sse_client_queue_bytes: 8 << 20,
            max_sse_clients: 64,
            max_streams_per_token: 16,
            max_worker_links: 1_024,
            max_links_per_token: 1_024,
            stream_stall_ms: 30_000,
            max_body_bytes: 1 << 20,
            body_timeout_ms: 10_000,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_query_items: 1_000,
            event_queue: 1_024,
            worker_timeout_ms: 30_000,
            max_workers: 1_024,
            queried_queue: 1_024,
            items_demand_ms: 30_000,
            run_agents: true,
        }
    }
}

/// A field that failed validation, named by its full key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct InvalidHubConfig {
    pub key: String,
    pub reason: String,
}

impl HubConfig {
    pub fn validate(&self) -> Result<(), InvalidHubConfig> {
        let bad = |key: &str, reason: &str| {
            Err(InvalidHubConfig { key: format!("hub.{key}"), reason: reason.into() })
        };
        // Empty: no hub in `skua run` (`skua hub` refuses to start).
        let addr = match self.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) if self.listen.is_empty() => None,
            Err(_) => return bad("listen", "must be an address like 127.0.0.1:8899"),
        };
        if self.auth == AuthMode::None && !addr.is_some_and(|a| a.ip().is_loopback()) {
            return bad("auth", "`none` is only allowed when hub.listen is a loopback address");
        }
        for (key, v) in [
            ("items_capacity", self.items_capacity),
            ("console_capacity", self.console_capacity),
            ("sse_client_queue", self.sse_client_queue),
            ("max_sse_clients", self.max_sse_clients),
            ("max_query_items", self.max_query_items),
            ("event_queue", self.event_queue),
            ("max_workers", self.max_workers),
            ("queried_queue", self.queried_queue),
            ("max_streams_per_token", self.max_streams_per_token),
            ("max_worker_links", self.max_worker_links),
            ("max_links_per_token", self.max_links_per_token),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1");
            }
        }
        if self.kube_write_attempts == 0 {
            return bad("kube_write_attempts", "must be at least 1");
        }
        if self.kube_max_object_bytes > 1 << 20 {
            return bad(
                "kube_max_object_bytes",
                "the API server refuses objects over 1 MiB (1048576 bytes)",
            );
        }
        if self.kube_max_object_bytes < 1024 {
            return bad("kube_max_object_bytes", "must be at least 1024");
        }
        if self.kube_timeout_ms == 0 {
            return bad("kube_timeout_ms", "must be at least 1");
        }
        if self.store == StoreKind::Kube
            && (self.kube_configmap.is_empty() || self.kube_secret.is_empty())
        {
            return bad("kube_configmap", "hub.store is kube: name the ConfigMap and the Secret");
        }
        if self.max_body_bytes < 1024 {
            return bad("max_body_bytes", "must be at least 1024");
        }
        if self.items_max_bytes < 64 << 10 || self.console_max_bytes < 64 << 10 {
            return bad("items_max_bytes", "the rings hold at least 65536 bytes");
        }
        if self.sse_client_queue_bytes < 64 << 10 {
            return bad("sse_client_queue_bytes", "must be at least 65536");
        }
        if self.stream_stall_ms < 100 || self.body_timeout_ms < 100 {
            return bad("stream_stall_ms", "at least 100 ms (body_timeout_ms too)");
        }
        for o in &self.allowed_origins {
            if super::guard::parse_origin(o).is_none() {
                return bad(
                    "allowed_origins",
                    "each is scheme://host[:port], e.g. https://dash.example",
                );
            }
        }
        if self.worker_timeout_ms == 0 {
            return bad("worker_timeout_ms", "must be at least 1");
        }
        let tokens =
            self.admin_tokens.iter().chain(&self.read_only_tokens).chain(&self.worker_tokens);
        if tokens.into_iter().any(|t| t.len() < 16) {
            return bad("admin_tokens", "every token must be at least 16 characters");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_none_only_on_loopback() {
        let mut c = HubConfig { auth: AuthMode::None, ..Default::default() };
        assert!(c.validate().is_ok());
        c.listen = "0.0.0.0:8899".into();
        assert_eq!(c.validate().unwrap_err().key, "hub.auth");
        c.listen = "[::1]:8899".into();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn limits_and_tokens_checked() {
        let c = HubConfig { items_capacity: 0, ..Default::default() };
        assert_eq!(c.validate().unwrap_err().key, "hub.items_capacity");
        let c = HubConfig { admin_tokens: vec!["short".into()], ..Default::default() };
        assert!(c.validate().unwrap_err().reason.contains("16 characters"));
        let c = HubConfig { listen: "nowhere".into(), ..Default::default() };
        assert_eq!(c.validate().unwrap_err().key, "hub.listen");
    }

    #[test]
    fn kube_store_limits_checked() {
        let c = HubConfig { kube_max_object_bytes: 2 << 20, ..Default::default() };
        assert!(c.validate().unwrap_err().reason.contains("1 MiB"));
        let c = HubConfig { kube_write_attempts: 0, ..Default::default() };
        assert_eq!(c.validate().unwrap_err().key, "hub.kube_write_attempts");
        let c =
            HubConfig { store: StoreKind::Kube, kube_secret: String::new(), ..Default::default() };
        assert_eq!(c.validate().unwrap_err().key, "hub.kube_configmap");
        let c: HubConfig = serde_yaml::from_str("store: kube\nkube_namespace: skua").unwrap();
        assert_eq!((c.store, c.kube_namespace.as_str()), (StoreKind::Kube, "skua"));
    }
}
