//! The writer side of the IP → pod map: the watcher task's mutable view,
//! published to the capture cores' [`PodMap`] as a fresh immutable
//! [`PodIndex`] when it changed.
//!
//! An IP belongs to the pod (or service) that claimed it last; an owner
//! giving an IP up removes it only if the IP is still its own, so a new pod
//! that reused the IP before the old one's deletion arrived keeps it.
//!
//! Services enter the map by their cluster IPs: a capture on a pod's side
//! of its veth sees the cluster IP before kube-proxy translates it, and the
//! item then names the service. Traffic already translated to a pod IP
//! names the pod.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use ::kube::core::DynamicObject;
use ::kube::runtime::watcher;
use k8s_openapi::api::core::v1::Service;
use reassembly::{PodIndex, PodMap, PodRef};

use super::events::{key_of, PodKey, Relists};
use super::history::NameHistory;
use super::KubeCounters;

pub struct PodMapWriter {
    map: PodMap,
    by_ip: HashMap<IpAddr, PodRef>,
    dirty: bool,
    history: Option<Arc<NameHistory>>,
}

impl PodMapWriter {
    pub fn new(map: PodMap) -> Self {
        PodMapWriter { map, by_ip: HashMap::new(), dirty: false, history: None }
    }

    /// Also records each published map in `history`.
    pub fn with_history(mut self, history: Arc<NameHistory>) -> Self {
        self.history = Some(history);
        self
    }

    /// Pod `key` held `old` and now holds `new` (empty when it is gone).
    pub fn set_pod(&mut self, key: &PodKey, old: &[IpAddr], new: &[IpAddr]) {
        let (namespace, name) = key;
        let owned = |r: &PodRef| *r.name == **name && *r.namespace == **namespace;
        for ip in old.iter().filter(|ip| !new.contains(ip)) {
            if self.by_ip.get(ip).is_some_and(owned) {
                self.by_ip.remove(ip);
                self.dirty = true;
            }
        }
        for ip in new {
            if !self.by_ip.get(ip).is_some_and(owned) {
                self.by_ip.insert(*ip, PodRef::new(name, namespace));
                self.dirty = true;
            }
        }
    }

    /// Publishes the map if it changed since the last publish.
    pub fn publish(&mut self) {
        if std::mem::take(&mut self.dirty) {
            self.map.publish(PodIndex::from_map(self.by_ip.iter().map(|(ip, r)| (*ip, r.clone()))));
            if let Some(h) = &self.history {
                let entries = self.by_ip.iter().map(|(ip, r)| (*ip, r.clone())).collect();
                h.record(std::time::SystemTime::now(), Arc::new(entries));
            }
        }
    }
}

/// Keeps services' cluster IPs in the map.
pub struct ServiceTracker {
    /// Cluster IPs and watch stream of each service.
    services: HashMap<PodKey, (Vec<IpAddr>, usize)>,
    relists: Relists,
    counters: Arc<KubeCounters>,
}

impl ServiceTracker {
    pub fn new(streams: usize, counters: Arc<KubeCounters>) -> Self {
        ServiceTracker { services: HashMap::new(), relists: Relists::new(streams), counters }
    }

    pub fn apply(
        &mut self,
        stream: usize,
        event: watcher::Event<DynamicObject>,
        map: &mut PodMapWriter,
    ) {
        match event {
            watcher::Event::Init => self.relists.begin(stream),
            watcher::Event::InitApply(obj) => {
                if let Some(key) = self.upsert(stream, obj, map) {
                    self.relists.seen(stream, key);
                }
            }
            watcher::Event::Apply(obj) => {
                self.upsert(stream, obj, map);
            }
            watcher::Event::InitDone => {
                let Some(gone) =
                    self.relists.done(stream, self.services.iter().map(|(k, (_, s))| (k, *s)))
                else {
                    return;
                };
                for key in gone {
                    self.remove(&key, map);
                }
            }
            watcher::Event::Delete(obj) => match key_of(&obj) {
                Some(key) => self.remove(&key, map),
                None => self.malformed(),
            },
        }
    }

    fn malformed(&self) {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
    }

    fn upsert(
        &mut self,
        stream: usize,
        obj: DynamicObject,
        map: &mut PodMapWriter,
    ) -> Option<PodKey> {
        let Some(key) = key_of(&obj) else {
            self.malformed();
            return None;
        };
        let Ok(service) = obj.try_parse::<Service>() else {
            self.malformed();
            return Some(key);
        };
        let ips = cluster_ips(&service);
        let old = self.services.get(&key).map(|(ips, _)| ips.as_slice()).unwrap_or_default();
        map.set_pod(&key, old, &ips);
        self.services.insert(key.clone(), (ips, stream));
        Some(key)
    }

    fn remove(&mut self, key: &PodKey, map: &mut PodMapWriter) {
        if let Some((ips, _)) = self.services.remove(key) {
            map.set_pod(key, &ips, &[]);
        }
    }
}

/// A service's cluster IPs; none for a headless service (`None`) or an
/// `ExternalName` one.
pub fn cluster_ips(service: &Service) -> Vec<IpAddr> {
    let Some(spec) = &service.spec else { return Vec::new() };
    let mut ips: Vec<IpAddr> =
        spec.cluster_ips.iter().flatten().filter_map(|ip| ip.parse().ok()).collect();
    if let Some(ip) = spec.cluster_ip.as_deref().and_then(|s| s.parse().ok()) {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> PodKey {
        ("ns".into(), name.into())
    }

    fn service(name: &str, cluster_ip: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1"},
            "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": [{"port": 80}]}
        }))
        .unwrap()
    }

    #[test]
    fn services_are_named_by_cluster_ip_and_headless_ones_not_at_all() {
        let map = PodMap::new();
        let mut w = PodMapWriter::new(map.clone());
        let mut t = ServiceTracker::new(1, Arc::default());
        t.apply(0, watcher::Event::Init, &mut w);
        t.apply(0, watcher::Event::InitApply(service("api", "10.96.0.20")), &mut w);
        t.apply(0, watcher::Event::InitApply(service("db", "None")), &mut w);
        t.apply(0, watcher::Event::InitApply(service("old", "10.96.0.21")), &mut w);
        t.apply(0, watcher::Event::InitDone, &mut w);
        w.publish();
        assert_eq!(&*map.load().get(&"10.96.0.20".parse().unwrap()).unwrap().name, "api");
        assert_eq!(map.load().len(), 2);
        // A relist without `old`, and `api` deleted after it.
        t.apply(0, watcher::Event::Init, &mut w);
        t.apply(0, watcher::Event::InitApply(service("api", "10.96.0.20")), &mut w);
        t.apply(0, watcher::Event::InitDone, &mut w);
        w.publish();
        assert_eq!(map.load().len(), 1);
        t.apply(0, watcher::Event::Delete(service("api", "10.96.0.20")), &mut w);
        w.publish();
        assert!(map.load().is_empty());
    }

    #[test]
    fn a_reused_ip_stays_with_its_new_pod() {
        let map = PodMap::new();
        let mut w = PodMapWriter::new(map.clone());
        let ip: IpAddr = "10.1.0.9".parse().unwrap();
        w.set_pod(&key("old"), &[], &[ip]);
        w.set_pod(&key("new"), &[], &[ip]);
        w.set_pod(&key("old"), &[ip], &[]);
        w.publish();
        assert_eq!(&*map.load().get(&ip).unwrap().name, "new");
        w.set_pod(&key("new"), &[ip], &[]);
        w.publish();
        assert!(map.load().is_empty());
    }
}
