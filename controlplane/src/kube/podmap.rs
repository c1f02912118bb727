//! The writer side of the IP → pod map: the watcher task's mutable view,
//! published to the capture cores' [`PodMap`] as a fresh immutable
//! [`PodIndex`] when it changed.
//!
//! An IP belongs to the pod that claimed it last; a pod giving an IP up
//! removes it only if the IP is still its own, so a new pod that reused the
//! IP before the old one's deletion arrived keeps it.

use std::collections::HashMap;
use std::net::IpAddr;

use reassembly::{PodIndex, PodMap, PodRef};

use super::events::PodKey;

pub struct PodMapWriter {
    map: PodMap,
    by_ip: HashMap<IpAddr, PodRef>,
    dirty: bool,
}

impl PodMapWriter {
    pub fn new(map: PodMap) -> Self {
        PodMapWriter { map, by_ip: HashMap::new(), dirty: false }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> PodKey {
        ("ns".into(), name.into())
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
