//! Kubernetes awareness through kube-rs: pod watchers that feed agents'
//! `onPodEvent` ([`events`], [`watcher`]) and the IP → pod map that names
//! items' endpoints ([`podmap`]; the reader, `reassembly::PodMap`, lives
//! where the dataplane can use it without depending on kube).
//!
//! Use: [`PodWatcher::from_config`] (or [`client`] and [`PodWatcher::new`]),
//! hand [`PodWatcher::pod_map`] to the capture cores
//! (`dataplane::dissect::Dissector::with_pod_map`), then
//! [`PodWatcher::spawn`] with the sender of [`pod_event_channel`]; the
//! receiver's [`PodEvent`]s go to each runtime's mailbox
//! ([`PodEvent::to_runtime_event`]).

pub mod events;
#[doc(hidden)]
pub mod fake_api;
pub mod history;
pub mod podmap;
pub mod watcher;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{KubernetesConfig, KubernetesScope};
pub use events::{PodEvent, PodEventKind};
pub use history::NameHistory;
pub use reassembly::PodMap;
pub use watcher::{PodWatcher, WatchOptions, WatchScope};

/// Why watching cannot start. Neither is helped by retrying: each needs a
/// change of configuration or environment.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// No kubeconfig and not in a cluster, or the config is unusable.
    /// Retrying does not help until the environment changes.
    #[error("kubernetes: no usable client configuration (in-cluster or KUBECONFIG)")]
    Config(#[source] ::kube::Error),
    #[error(
        "kubernetes.scope is node but no node name is known: set kubernetes.node_name or NODE_NAME"
    )]
    NoNodeName,
}

/// The watchers' counters, published as they change (relaxed atomics; the
/// watcher task is the only writer).
#[derive(Debug, Default)]
pub struct KubeCounters {
    /// Pod events handed to the event queue.
    pub pod_events: AtomicU64,
    /// Pod events dropped because the queue was full.
    pub pod_events_dropped: AtomicU64,
    /// Objects that did not decode as a Pod, skipped.
    pub malformed: AtomicU64,
    /// Watch errors (each followed by the watcher's back-off).
    pub watch_errors: AtomicU64,
    /// Full pod lists, the first one included (a relist follows `410 Gone`).
    pub relists: AtomicU64,
}

/// A copy of [`KubeCounters`] for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KubeSnapshot {
    pub pod_events: u64,
    pub pod_events_dropped: u64,
    pub malformed: u64,
    pub watch_errors: u64,
    pub relists: u64,
}

impl KubeCounters {
    pub fn snapshot(&self) -> KubeSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        KubeSnapshot {
            pod_events: get(&self.pod_events),
            pod_events_dropped: get(&self.pod_events_dropped),
            malformed: get(&self.malformed),
            watch_errors: get(&self.watch_errors),
            relists: get(&self.relists),
        }
    }

    fn send(&self, tx: &mpsc::Sender<PodEvent>, event: PodEvent) {
        match tx.try_send(event) {
            Ok(()) => self.pod_events.fetch_add(1, Ordering::Relaxed),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.pod_events_dropped.fetch_add(1, Ordering::Relaxed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => 0,
        };
    }
}

/// The event queue, bounded by `kubernetes.event_queue`.
pub fn pod_event_channel(
    cfg: &KubernetesConfig,
) -> (mpsc::Sender<PodEvent>, mpsc::Receiver<PodEvent>) {
    mpsc::channel(cfg.event_queue.max(1))
}

/// A client from the pod's service account, else `KUBECONFIG` /
/// `~/.kube/config`.
pub async fn client() -> Result<::kube::Client, KubeError> {
    ::kube::Client::try_default().await.map_err(KubeError::Config)
}

impl WatchOptions {
    /// Options from the `kubernetes` section; `default_scope` applies when
    /// `scope` is unset (`Node` for workers, `Cluster` for the hub).
    pub fn from_config(
        cfg: &KubernetesConfig,
        default_scope: KubernetesScope,
    ) -> Result<Self, KubeError> {
        let scope = match cfg.scope.unwrap_or(default_scope) {
            KubernetesScope::Cluster => WatchScope::Cluster,
            KubernetesScope::Node => {
                WatchScope::Node(cfg.node_name().ok_or(KubeError::NoNodeName)?)
            }
        };
        Ok(WatchOptions {
            scope,
            namespaces: cfg.namespaces.clone(),
            map_publish: Duration::from_millis(cfg.map_publish_ms.max(1)),
            services: cfg.services,
            name_history: cfg.name_history,
        })
    }
}

impl PodWatcher {
    /// The watcher the `kubernetes` section asks for; `None` when watching
    /// is off (`enabled: false`, or unset outside a cluster).
    pub async fn from_config(
        cfg: &KubernetesConfig,
        default_scope: KubernetesScope,
    ) -> Result<Option<PodWatcher>, KubeError> {
        if !cfg.is_enabled() {
            return Ok(None);
        }
        let options = WatchOptions::from_config(cfg, default_scope)?;
        Ok(Some(PodWatcher::new(client().await?, options)))
    }
}

/// A started watcher: the map it keeps, its counters, and its tasks (the
/// watch and the delivery loop; abort both to stop).
pub struct Watching {
    pub pod_map: PodMap,
    /// The maps published so far (`pcap.nameResolutionHistory`).
    pub names: std::sync::Arc<NameHistory>,
    pub counters: std::sync::Arc<KubeCounters>,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the watcher the `kubernetes` section asks for on `rt` and hands
/// each of its events to `deliver` (a runtime mailbox router) in order;
/// `None` when watching is off. Workers and the hub both start theirs here.
pub fn start_watching(
    cfg: &KubernetesConfig,
    default_scope: KubernetesScope,
    rt: &tokio::runtime::Handle,
    deliver: impl Fn(scripting::RuntimeEvent) + Send + 'static,
) -> Result<Option<Watching>, KubeError> {
    let Some(watcher) = rt.block_on(PodWatcher::from_config(cfg, default_scope))? else {
        return Ok(None);
    };
    let (pod_map, names, counters) = (watcher.pod_map(), watcher.names(), watcher.counters());
    let (tx, mut rx) = pod_event_channel(cfg);
    let watch = {
        let _guard = rt.enter();
        watcher.spawn(tx)
    };
    let fan_out = rt.spawn(async move {
        while let Some(e) = rx.recv().await {
            deliver(e.to_runtime_event());
        }
    });
    Ok(Some(Watching { pod_map, names, counters, tasks: vec![watch, fan_out] }))
}

#[cfg(test)]
mod testpods;
#[cfg(test)]
mod tests;
