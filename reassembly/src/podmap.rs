//! The IP → pod (or service) view that names an item's endpoints: an
//! immutable [`PodIndex`] snapshot that capture cores read through a
//! [`PodMap`] handle, replaced whole by the control plane's Kubernetes
//! watcher.
//!
//! Why `arc-swap` rather than a seqlock: a reader's `load` is a few atomic
//! operations on a per-thread debt slot; it never blocks, never allocates
//! and never retries, however often the writer publishes. The writer (one
//! control-plane task) builds the next index off to the side and swaps it
//! in; the previous index is freed by whichever side drops the last
//! reference, so a reader holding a guard keeps a consistent view. A seqlock
//! would need the map in fixed-size storage, `unsafe` reads and a retry loop
//! on every collision with a writer.
//!
//! Nothing here knows about Kubernetes: the dataplane and reassembly use it
//! without the control plane's dependencies.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::item::{Endpoint, Item};

/// What an IP is in the cluster: a pod, or a service's cluster IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    /// The pod's (or service's) name.
    pub name: Box<str>,
    pub namespace: Box<str>,
}

impl PodRef {
    pub fn new(name: &str, namespace: &str) -> Self {
        PodRef { name: name.into(), namespace: namespace.into() }
    }
}

/// One immutable snapshot of the cluster's IPs.
#[derive(Debug, Default)]
pub struct PodIndex {
    by_ip: HashMap<IpAddr, PodRef, foldhash::fast::RandomState>,
}

impl PodIndex {
    pub fn from_map(by_ip: impl IntoIterator<Item = (IpAddr, PodRef)>) -> Self {
        PodIndex { by_ip: by_ip.into_iter().collect() }
    }

    pub fn get(&self, ip: &IpAddr) -> Option<&PodRef> {
        self.by_ip.get(ip)
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// Names `e` when its IP is known; leaves it as it was otherwise.
    pub fn name_endpoint(&self, e: &mut Endpoint) {
        if let Some(p) = self.by_ip.get(&e.ip) {
            e.name.clear();
            e.name.push_str(&p.name);
            e.namespace.clear();
            e.namespace.push_str(&p.namespace);
        }
    }
}

/// A handle on the current [`PodIndex`]; cheap to clone, one per core.
/// Starts empty, so endpoints stay unnamed until a watcher publishes.
#[derive(Debug, Clone, Default)]
pub struct PodMap {
    current: Arc<ArcSwap<PodIndex>>,
}

impl PodMap {
    pub fn new() -> Self {
        PodMap::default()
    }

    /// Replaces the snapshot; readers see the new one on their next load.
    pub fn publish(&self, index: PodIndex) {
        self.current.store(Arc::new(index));
    }

    /// The current snapshot. Hold the guard briefly (for one item or one
    /// burst): a guard kept forever pins an old index in memory.
    pub fn load(&self) -> arc_swap::Guard<Arc<PodIndex>> {
        self.current.load()
    }

    /// Names both endpoints of `item` from the current snapshot. The lookup
    /// neither locks nor allocates; copying a name into the item's empty
    /// `String` allocates once per named endpoint, like the rest of the
    /// item's fields.
    pub fn name_item(&self, item: &mut Item) {
        let index = self.current.load();
        index.name_endpoint(&mut item.src);
        index.name_endpoint(&mut item.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ip: [u8; 4]) -> Endpoint {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&ip);
        Endpoint::new(4, raw, 80)
    }

    #[test]
    fn names_known_ips_and_leaves_others() {
        let map = PodMap::new();
        let mut e = ep([10, 0, 0, 7]);
        map.load().name_endpoint(&mut e);
        assert_eq!((e.name.as_str(), e.namespace.as_str()), ("", ""));

        map.publish(PodIndex::from_map([(
            "10.0.0.7".parse().unwrap(),
            PodRef::new("api-1", "shop"),
        )]));
        map.load().name_endpoint(&mut e);
        assert_eq!((e.name.as_str(), e.namespace.as_str()), ("api-1", "shop"));
        let mut other = ep([10, 0, 0, 8]);
        map.load().name_endpoint(&mut other);
        assert_eq!(other.name, "");
    }

    #[test]
    fn a_held_guard_keeps_its_snapshot() {
        let map = PodMap::new();
        map.publish(PodIndex::from_map([("10.0.0.7".parse().unwrap(), PodRef::new("a", "ns"))]));
        let old = map.load();
        map.clone().publish(PodIndex::default());
        assert_eq!(old.len(), 1);
        assert!(map.load().is_empty());
    }
}
