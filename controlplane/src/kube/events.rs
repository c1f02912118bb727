//! Pod events for `onPodEvent`: the watcher's list/watch stream turned into
//! `ADDED` / `MODIFIED` / `DELETED`, plus `RESTARTED` and `CRASHED` derived
//! from container statuses.
//!
//! Invariants of [`PodTracker`]: every pod it reports `ADDED` is later
//! reported `DELETED` exactly once (by a delete event, or by a relist that
//! no longer contains it); an object whose `resourceVersion` it already saw
//! produces nothing, so a relist after `410 Gone` repeats no event;
//! `RESTARTED` and `CRASHED` fire on the transition (a `restartCount` going
//! up, a container entering a crashed state), never again for the same
//! state. Objects that do not decode as a Pod are counted and skipped.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use ::kube::core::DynamicObject;
use ::kube::runtime::watcher;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde_json::Value;

use super::podmap::PodMapWriter;
use super::KubeCounters;

/// `event` of `onPodEvent(event, pod)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PodEventKind {
    Added,
    Modified,
    Deleted,
    /// A container's `restartCount` went up.
    Restarted,
    /// A container entered `CrashLoopBackOff` or terminated with a non-zero
    /// exit code (`Error`, `OOMKilled`, ...).
    Crashed,
}

impl PodEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PodEventKind::Added => "ADDED",
            PodEventKind::Modified => "MODIFIED",
            PodEventKind::Deleted => "DELETED",
            PodEventKind::Restarted => "RESTARTED",
            PodEventKind::Crashed => "CRASHED",
        }
    }
}

/// One `onPodEvent(event, pod)` call: `pod` is the Pod object as the API
/// server serves it, `metadata.managedFields` removed. Events derived from
/// one update share the object.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEvent {
    pub kind: PodEventKind,
    pub pod: Arc<Value>,
}

impl PodEvent {
    /// The event as a runtime's mailbox takes it.
    pub fn to_runtime_event(&self) -> scripting::RuntimeEvent {
        scripting::RuntimeEvent::PodEvent {
            event: self.kind.as_str().to_string(),
            pod: (*self.pod).clone(),
        }
    }
}

/// The container facts transitions are derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub name: String,
    pub restarts: i32,
    pub crashed: bool,
}

/// Summaries of a pod's init and app containers.
pub fn summarize(pod: &Pod) -> Vec<ContainerSummary> {
    let Some(status) = &pod.status else { return Vec::new() };
    let init = status.init_container_statuses.iter().flatten();
    let app = status.container_statuses.iter().flatten();
    init.chain(app)
        .map(|c| ContainerSummary {
            name: c.name.clone(),
            restarts: c.restart_count,
            crashed: is_crashed(c),
        })
        .collect()
}

/// `CrashLoopBackOff`, or terminated with a non-zero exit code (OOMKilled
/// is 137). The last state is not looked at: a container that crashed and
/// now runs again is not crashed.
fn is_crashed(c: &ContainerStatus) -> bool {
    let Some(state) = &c.state else { return false };
    let backoff =
        state.waiting.as_ref().is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"));
    let failed = state.terminated.as_ref().is_some_and(|t| t.exit_code != 0);
    backoff || failed
}

/// (restarted, crashed) going from `prev` to `next`. A container not in
/// `prev` counts from zero restarts and not crashed, except that a pod seen
/// for the first time (`prev` is `None`) never counts as restarted: its
/// restarts happened before we looked.
pub fn transitions(prev: Option<&[ContainerSummary]>, next: &[ContainerSummary]) -> (bool, bool) {
    let before = |name: &str| prev.and_then(|p| p.iter().find(|c| c.name == name));
    let restarted = prev.is_some()
        && next.iter().any(|c| c.restarts > before(&c.name).map_or(0, |p| p.restarts));
    let crashed = next.iter().any(|c| c.crashed && !before(&c.name).is_some_and(|p| p.crashed));
    (restarted, crashed)
}

/// Namespace and name.
pub type PodKey = (String, String);

/// Per watch stream, the objects seen since its relist began: what the
/// relist's end reports as gone is what was known and not seen again.
pub struct Relists(Vec<Option<HashSet<PodKey>>>);

impl Relists {
    pub fn new(streams: usize) -> Self {
        Relists((0..streams).map(|_| None).collect())
    }

    pub fn begin(&mut self, stream: usize) {
        if let Some(slot) = self.0.get_mut(stream) {
            *slot = Some(HashSet::new());
        }
    }

    pub fn seen(&mut self, stream: usize, key: PodKey) {
        if let Some(Some(seen)) = self.0.get_mut(stream) {
            seen.insert(key);
        }
    }

    /// Ends the relist of `stream`: the keys of `known` (key, stream) that
    /// belong to it and were not seen. `None` outside a relist.
    pub fn done<'a>(
        &mut self,
        stream: usize,
        known: impl Iterator<Item = (&'a PodKey, usize)>,
    ) -> Option<Vec<PodKey>> {
        let seen = self.0.get_mut(stream)?.take()?;
        Some(
            known
                .filter(|(k, s)| *s == stream && !seen.contains(*k))
                .map(|(k, _)| k.clone())
                .collect(),
        )
    }
}

struct Tracked {
    uid: String,
    resource_version: String,
    containers: Vec<ContainerSummary>,
    ips: Vec<IpAddr>,
    /// The watch stream (one per namespace watched) it came from.
    stream: usize,
    pod: Arc<Value>,
}

/// Turns watcher events into pod events and keeps the IP map in step.
pub struct PodTracker {
    pods: HashMap<PodKey, Tracked>,
    relists: Relists,
    map: PodMapWriter,
    counters: Arc<KubeCounters>,
    /// Pods changed since `hub.targeted()` was last published.
    targets_changed: bool,
}

impl PodTracker {
    pub fn new(streams: usize, map: PodMapWriter, counters: Arc<KubeCounters>) -> Self {
        PodTracker {
            pods: HashMap::new(),
            relists: Relists::new(streams),
            map,
            counters,
            targets_changed: true,
        }
    }

    /// What agents' `hub.targeted()` returns: the pods watched (this
    /// node's for a worker, the cluster's for the hub) as `targets`, in
    /// Kubernetes' JSON, sorted by namespace and name; `excluded` is empty
    /// (skua captures every pod it watches).
    pub fn targeted_json(&self) -> Value {
        let mut keys: Vec<&PodKey> = self.pods.keys().collect();
        keys.sort();
        let targets: Vec<Value> =
            keys.into_iter().filter_map(|k| self.pods.get(k)).map(|t| (*t.pod).clone()).collect();
        serde_json::json!({"targets": targets, "excluded": []})
    }

    /// Publishes [`PodTracker::targeted_json`] to the agents' runtimes if
    /// the pods changed since the last time.
    pub fn publish_targeted(&mut self) {
        if std::mem::take(&mut self.targets_changed) {
            scripting::publish_targeted(self.targeted_json().to_string());
        }
    }

    pub fn map(&mut self) -> &mut PodMapWriter {
        &mut self.map
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Applies one event of watch stream `stream`, appending pod events to
    /// `out`.
    pub fn apply(
        &mut self,
        stream: usize,
        event: watcher::Event<DynamicObject>,
        out: &mut Vec<PodEvent>,
    ) {
        match event {
            watcher::Event::Init => {
                self.counters.relists.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.relists.begin(stream);
            }
            watcher::Event::InitApply(obj) => {
                if let Some(key) = self.upsert(stream, obj, out) {
                    self.relists.seen(stream, key);
                }
            }
            watcher::Event::InitDone => {
                let Some(gone) =
                    self.relists.done(stream, self.pods.iter().map(|(k, t)| (k, t.stream)))
                else {
                    return;
                };
                for key in gone {
                    self.remove(&key, None, out);
                }
            }
            watcher::Event::Apply(obj) => {
                self.upsert(stream, obj, out);
            }
            watcher::Event::Delete(obj) => {
                let key = key_of(&obj);
                let pod = decode(obj).ok().map(|p| Arc::new(trimmed_json(p)));
                if let Some(key) = key {
                    self.remove(&key, pod, out);
                } else {
                    self.malformed();
                }
            }
        }
    }

    fn malformed(&self) {
        self.counters.malformed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn upsert(
        &mut self,
        stream: usize,
        obj: DynamicObject,
        out: &mut Vec<PodEvent>,
    ) -> Option<PodKey> {
        let Some(key) = key_of(&obj) else {
            self.malformed();
            return None;
        };
        let pod = match decode(obj) {
            Ok(p) => p,
            Err(_) => {
                self.malformed();
                // Still seen by the relist: a pod that turned unreadable is
                // not gone.
                return Some(key);
            }
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let resource_version = pod.metadata.resource_version.clone().unwrap_or_default();
        match self.pods.get(&key).map(|t| (t.uid == uid, t.resource_version == resource_version)) {
            // Deleted and re-created under the same name while we were not
            // watching.
            Some((false, _)) => self.remove(&key, None, out),
            Some((true, true)) => return Some(key),
            _ => {}
        }
        self.targets_changed = true;
        let containers = summarize(&pod);
        let ips = map_ips(&pod);
        let json = Arc::new(trimmed_json(pod));
        let prev = self.pods.get(&key);
        let (restarted, crashed) = transitions(prev.map(|t| t.containers.as_slice()), &containers);
        let kind = if prev.is_some() { PodEventKind::Modified } else { PodEventKind::Added };
        let old_ips = prev.map(|t| t.ips.clone()).unwrap_or_default();
        self.map.set_pod(&key, &old_ips, &ips);
        out.push(PodEvent { kind, pod: json.clone() });
        if restarted {
            out.push(PodEvent { kind: PodEventKind::Restarted, pod: json.clone() });
        }
        if crashed {
            out.push(PodEvent { kind: PodEventKind::Crashed, pod: json.clone() });
        }
        self.pods.insert(
            key.clone(),
            Tracked { uid, resource_version, containers, ips, stream, pod: json },
        );
        Some(key)
    }

    /// Reports `key` deleted (with `last` as the object, else the last one
    /// seen) if it was known.
    fn remove(&mut self, key: &PodKey, last: Option<Arc<Value>>, out: &mut Vec<PodEvent>) {
        if let Some(t) = self.pods.remove(key) {
            self.targets_changed = true;
            self.map.set_pod(key, &t.ips, &[]);
            out.push(PodEvent { kind: PodEventKind::Deleted, pod: last.unwrap_or(t.pod) });
        }
    }
}

pub(super) fn key_of(obj: &DynamicObject) -> Option<PodKey> {
    let name = obj.metadata.name.clone().filter(|n| !n.is_empty())?;
    Some((obj.metadata.namespace.clone().unwrap_or_default(), name))
}

fn decode(obj: DynamicObject) -> Result<Pod, ::kube::core::dynamic::ParseDynamicObjectError> {
    obj.try_parse::<Pod>()
}

fn trimmed_json(mut pod: Pod) -> Value {
    pod.metadata.managed_fields = None;
    serde_json::to_value(&pod).unwrap_or(Value::Null)
}

/// The IPs that name this pod on items: none for host-network pods (their
/// IP is the node's) or finished ones (their IP may already be reused).
pub fn map_ips(pod: &Pod) -> Vec<IpAddr> {
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return Vec::new();
    }
    let Some(status) = &pod.status else { return Vec::new() };
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return Vec::new();
    }
    let mut ips: Vec<IpAddr> =
        status.pod_ips.iter().flatten().filter_map(|p| p.ip.parse().ok()).collect();
    if let Some(ip) = status.pod_ip.as_deref().and_then(|s| s.parse().ok()) {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

#[cfg(test)]
mod tests {
    use super::super::testpods::{crash_looping, pod, restarted, with_rv};
    use super::*;
    use reassembly::PodMap;

    fn tracker() -> (PodTracker, PodMap) {
        let map = PodMap::new();
        (PodTracker::new(1, PodMapWriter::new(map.clone()), Arc::default()), map)
    }

    fn dynobj(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    fn kinds(out: &mut Vec<PodEvent>) -> Vec<&'static str> {
        out.drain(..).map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn targeted_lists_the_watched_pods_in_kubernetes_json() {
        let (mut t, _) = tracker();
        let mut out = Vec::new();
        assert_eq!(t.targeted_json(), serde_json::json!({"targets": [], "excluded": []}));
        t.apply(0, watcher::Event::Apply(dynobj(pod("web-2", "shop", "1", "10.1.0.6"))), &mut out);
        t.apply(0, watcher::Event::Apply(dynobj(pod("api-1", "shop", "1", "10.1.0.5"))), &mut out);
        let v = t.targeted_json();
        let names: Vec<&str> = v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["api-1", "web-2"]);
        assert_eq!(v["targets"][0]["metadata"]["namespace"], "shop");
        assert!(v["excluded"].as_array().unwrap().is_empty());
    }

    #[test]
    fn added_modified_deleted() {
        let (mut t, map) = tracker();
        let mut out = Vec::new();
        t.apply(0, watcher::Event::Apply(dynobj(pod("api-1", "shop", "1", "10.1.0.5"))), &mut out);
        t.apply(
            0,
            watcher::Event::Apply(dynobj(with_rv(pod("api-1", "shop", "1", "10.1.0.5"), "2"))),
            &mut out,
        );
        t.map().publish();
        assert_eq!(map.load().get(&"10.1.0.5".parse().unwrap()).unwrap().name.as_ref(), "api-1");
        t.apply(
            0,
            watcher::Event::Delete(dynobj(with_rv(pod("api-1", "shop", "1", "10.1.0.5"), "3"))),
            &mut out,
        );
        assert_eq!(kinds(&mut out), ["ADDED", "MODIFIED", "DELETED"]);
        t.map().publish();
        assert!(map.load().is_empty());
    }

    #[test]
    fn one_restarted_per_restart_count_bump() {
        let (mut t, _) = tracker();
        let mut out = Vec::new();
        t.apply(
            0,
            watcher::Event::Apply(dynobj(restarted(pod("a", "ns", "1", "10.1.0.1"), 3))),
            &mut out,
        );
        assert_eq!(kinds(&mut out), ["ADDED"], "restarts before we looked are not news");
        t.apply(
            0,
            watcher::Event::Apply(dynobj(with_rv(
                restarted(pod("a", "ns", "1", "10.1.0.1"), 4),
                "2",
            ))),
            &mut out,
        );
        t.apply(
            0,
            watcher::Event::Apply(dynobj(with_rv(
                restarted(pod("a", "ns", "1", "10.1.0.1"), 4),
                "3",
            ))),
            &mut out,
        );
        assert_eq!(kinds(&mut out), ["MODIFIED", "RESTARTED", "MODIFIED"]);
    }

    #[test]
    fn crash_loop_is_crashed_once() {
        let (mut t, _) = tracker();
        let mut out = Vec::new();
        t.apply(0, watcher::Event::Apply(dynobj(pod("a", "ns", "1", "10.1.0.1"))), &mut out);
        t.apply(
            0,
            watcher::Event::Apply(dynobj(with_rv(
                crash_looping(pod("a", "ns", "1", "10.1.0.1")),
                "2",
            ))),
            &mut out,
        );
        t.apply(
            0,
            watcher::Event::Apply(dynobj(with_rv(
                crash_looping(pod("a", "ns", "1", "10.1.0.1")),
                "3",
            ))),
            &mut out,
        );
        assert_eq!(kinds(&mut out), ["ADDED", "MODIFIED", "CRASHED", "MODIFIED"]);
    }

    /// A full list of `pods` (name, ip), as the watcher delivers one.
    fn relist(t: &mut PodTracker, pods: &[(&str, &str)], out: &mut Vec<PodEvent>) {
        t.apply(0, watcher::Event::Init, out);
        for (name, ip) in pods {
            t.apply(0, watcher::Event::InitApply(dynobj(pod(name, "ns", "1", ip))), out);
        }
        t.apply(0, watcher::Event::InitDone, out);
    }

    #[test]
    fn relist_repeats_nothing_and_reports_the_missing() {
        let (mut t, _) = tracker();
        let mut out = Vec::new();
        relist(&mut t, &[("a", "10.1.0.1"), ("b", "10.1.0.2")], &mut out);
        assert_eq!(kinds(&mut out), ["ADDED", "ADDED"]);
        relist(&mut t, &[("a", "10.1.0.1"), ("c", "10.1.0.3")], &mut out);
        let evs: Vec<(&str, String)> = out
            .drain(..)
            .map(|e| (e.kind.as_str(), e.pod["metadata"]["name"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(evs, [("ADDED", "c".to_string()), ("DELETED", "b".to_string())]);
        assert_eq!(t.len(), 2);
    }

    /// The events, through a runtime's mailbox, drive the bundled example
    /// agent: it reads `pod.metadata` and asks for a capture on RESTARTED.
    #[test]
    fn events_drive_the_pod_restart_example_agent() {
        use scripting::{
            AgentRuntime, Clock, ConsoleSink, Effect, EffectSink, RuntimeId, RuntimeOptions,
        };
        let (effects, effects_rx) = EffectSink::new(16);
        let (console, _console_rx) = ConsoleSink::new(16);
        let mut rt = AgentRuntime::new(RuntimeOptions {
            id: RuntimeId(0),
            node: reassembly::NodeInfo { ip: "127.0.0.1".into(), name: "node-1".into() },
            config: Default::default(),
            console,
            effects,
            clock: Clock::Manual,
        })
        .unwrap();
        let example = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/pod-restart-capture.js"
        ));
        rt.load_agent("pod-restart-capture", example).unwrap();

        let (mut t, _) = tracker();
        let mut out = Vec::new();
        t.apply(0, watcher::Event::Apply(dynobj(pod("a", "ns", "1", "10.1.0.1"))), &mut out);
        t.apply(
            0,
            watcher::Event::Apply(dynobj(with_rv(
                restarted(pod("a", "ns", "1", "10.1.0.1"), 1),
                "2",
            ))),
            &mut out,
        );
        let mailbox = rt.mailbox();
        for e in &out {
            assert!(mailbox.event(e.to_runtime_event()));
        }
        rt.poll_completions();
        let asked: Vec<Effect> = effects_rx.try_iter().map(|r| r.effect).collect();
        assert_eq!(
            asked,
            [Effect::PcapSnapshot { select: scripting::PcapSelect::Seconds(30), dir: None }],
            "one snapshot, for RESTARTED only"
        );
        assert_eq!(rt.counters().faults, 0);
    }

    #[test]
    fn malformed_objects_are_counted_and_skipped() {
        let (mut t, _) = tracker();
        let mut out = Vec::new();
        let mut bad = pod("a", "ns", "1", "10.1.0.1");
        bad["spec"]["containers"] = serde_json::json!("not a list");
        t.apply(0, watcher::Event::Apply(dynobj(bad)), &mut out);
        t.apply(0, watcher::Event::Apply(dynobj(serde_json::json!({"metadata": {}}))), &mut out);
        assert!(out.is_empty());
        assert_eq!(t.counters.malformed.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn managed_fields_are_trimmed_and_host_network_is_not_mapped() {
        let (mut t, map) = tracker();
        let mut out = Vec::new();
        let mut p = pod("a", "ns", "1", "192.168.0.10");
        p["metadata"]["managedFields"] = serde_json::json!([{"manager": "kubelet"}]);
        p["spec"]["hostNetwork"] = true.into();
        t.apply(0, watcher::Event::Apply(dynobj(p)), &mut out);
        assert!(out[0].pod["metadata"].get("managedFields").is_none());
        assert_eq!(out[0].pod["kind"], "Pod");
        t.map().publish();
        assert!(map.load().is_empty());
    }
}
