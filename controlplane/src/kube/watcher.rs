//! The pod watcher task: kube-rs watchers (one per namespace watched, or one
//! for all) with the default back-off, merged into one [`PodTracker`] that
//! sends [`PodEvent`]s on a bounded channel and keeps the IP → pod map;
//! optionally the same for services, whose cluster IPs join the map.
//!
//! Pods are watched as `DynamicObject`s and decoded one by one, so a pod the
//! API server serves malformed is counted and skipped instead of failing a
//! whole list page (and, with it, every relist). No reflector store: the
//! tracker needs each pod's previous state to derive transitions, which a
//! reflector has already overwritten when it hands the event on, so the
//! tracker keeps its own (trimmed) store.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ::kube::api::{Api, ApiResource, DynamicObject};
use ::kube::runtime::{watcher, WatchStreamExt};
use ::kube::Client;
use futures::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use reassembly::PodMap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::events::{PodEvent, PodTracker};
use super::history::NameHistory;
use super::podmap::{PodMapWriter, ServiceTracker};
use super::KubeCounters;

/// Which pods a watcher follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchScope {
    /// Pods scheduled on this node (a worker).
    Node(String),
    /// Every pod (the hub).
    Cluster,
}

/// What to watch and how often to publish the map.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub scope: WatchScope,
    /// Empty: all namespaces.
    pub namespaces: Vec<String>,
    /// The IP → pod map is published at most this often.
    pub map_publish: Duration,
    /// Also watch services (always cluster-wide, or in `namespaces`) and
    /// name their cluster IPs.
    pub services: bool,
    /// Published maps kept for `pcap.nameResolutionHistory` (0: none).
    pub name_history: usize,
}

/// Which watch a stream item came from, and its index among that kind.
#[derive(Debug, Clone, Copy)]
enum Source {
    Pods(usize),
    Services(usize),
}

type Watch = BoxStream<'static, (Source, Result<watcher::Event<DynamicObject>, watcher::Error>)>;

/// Watches pods; see the module docs.
pub struct PodWatcher {
    client: Client,
    options: WatchOptions,
    pods: PodMap,
    names: Arc<NameHistory>,
    counters: Arc<KubeCounters>,
}

impl PodWatcher {
    pub fn new(client: Client, options: WatchOptions) -> Self {
        let names = NameHistory::new(options.name_history);
        PodWatcher { client, options, pods: PodMap::new(), names, counters: Arc::default() }
    }

    /// The map capture cores read (a handle: clone it per core).
    pub fn pod_map(&self) -> PodMap {
        self.pods.clone()
    }

    /// The maps published so far.
    pub fn names(&self) -> Arc<NameHistory> {
        self.names.clone()
    }

    pub fn counters(&self) -> Arc<KubeCounters> {
        self.counters.clone()
    }

    /// Starts watching on the current tokio runtime. Events go to `events`
    /// without waiting: when it is full an event is dropped and counted
    /// (`pod_events_dropped`); when its receiver is gone, events stop but
    /// the map is still kept. Abort the handle to stop.
    pub fn spawn(self, events: mpsc::Sender<PodEvent>) -> JoinHandle<()> {
        tokio::spawn(self.run(events))
    }

    /// One watch per namespace (or one for all) of `resource`, each item
    /// tagged with `source(index)`.
    fn watches(
        &self,
        resource: &ApiResource,
        config: &watcher::Config,
        source: fn(usize) -> Source,
    ) -> Vec<Watch> {
        let apis: Vec<Api<DynamicObject>> = if self.options.namespaces.is_empty() {
            vec![Api::all_with(self.client.clone(), resource)]
        } else {
            self.options
                .namespaces
                .iter()
                .map(|ns| Api::namespaced_with(self.client.clone(), ns, resource))
                .collect()
        };
        apis.into_iter()
            .enumerate()
            .map(|(i, api)| {
                watcher(api, config.clone()).default_backoff().map(move |r| (source(i), r)).boxed()
            })
            .collect()
    }

    async fn run(self, events: mpsc::Sender<PodEvent>) {
        let mut pods_config = watcher::Config::default();
        if let WatchScope::Node(node) = &self.options.scope {
            pods_config = pods_config.fields(&format!("spec.nodeName={node}"));
        }
        let pod_watches = self.watches(&ApiResource::erase::<Pod>(&()), &pods_config, Source::Pods);
        let mut tracker = PodTracker::new(
            pod_watches.len(),
            PodMapWriter::new(self.pods.clone()).with_history(self.names.clone()),
            self.counters.clone(),
        );
        let mut all = pod_watches;
        if self.options.services {
            all.extend(self.watches(
                &ApiResource::erase::<Service>(&()),
                &watcher::Config::default(),
                Source::Services,
            ));
        }
        let mut services =
            ServiceTracker::new(self.options.namespaces.len().max(1), self.counters.clone());
        let mut merged = stream::select_all(all);
        let mut publish = tokio::time::interval(self.options.map_publish);
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut out = Vec::new();
        loop {
            tokio::select! {
                next = merged.next() => match next {
                    Some((Source::Pods(i), Ok(event))) => {
                        tracker.apply(i, event, &mut out);
                        for e in out.drain(..) {
                            self.counters.send(&events, e);
                        }
                    }
                    Some((Source::Services(i), Ok(event))) => services.apply(i, event, tracker.map()),
                    Some((source, Err(e))) => {
                        self.counters.watch_errors.fetch_add(1, Ordering::Relaxed);
                        let what = if matches!(source, Source::Pods(_)) { "pods" } else { "services" };
                        tracing::warn!("kubernetes: {what} watch: {e}");
                    }
                    None => break,
                },
                _ = publish.tick() => {
                    tracker.map().publish();
                    tracker.publish_targeted();
                }
            }
        }
        tracker.map().publish();
        tracker.publish_targeted();
    }
}
