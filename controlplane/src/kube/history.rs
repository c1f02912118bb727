//! The history of the IP → pod/service maps published to the capture
//! cores, for `pcap.nameResolutionHistory()`: a pcap written now may hold
//! packets of pods that have gone since, and the history names them as
//! they were then.
//!
//! Owns: the last `kubernetes.name_history` published maps, each with the
//! Unix second it was published at (a later map in the same second
//! replaces the earlier one). The watcher task records (a few times a
//! second at most, `kubernetes.map_publish_ms`); agents' calls read, on the
//! control plane's threads; a mutex is enough off the capture path. Maps
//! are shared (`Arc`), never copied on record.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use reassembly::PodRef;
use serde_json::{json, Map, Value};

/// One published map: IP → pod or service.
pub type NameMap = Arc<Vec<(IpAddr, PodRef)>>;

/// The last published maps, oldest first.
#[derive(Debug)]
pub struct NameHistory {
    max: usize,
    maps: Mutex<VecDeque<(u64, NameMap)>>,
    /// Maps dropped to stay within `max`.
    dropped: AtomicU64,
}

impl NameHistory {
    /// Keeps at most `max` maps (0: none).
    pub fn new(max: usize) -> Arc<NameHistory> {
        Arc::new(NameHistory { max, maps: Mutex::default(), dropped: AtomicU64::new(0) })
    }

    /// Records the map published at `at`.
    pub fn record(&self, at: SystemTime, map: NameMap) {
        if self.max == 0 {
            return;
        }
        let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        if maps.back().is_some_and(|(s, _)| *s == secs) {
            maps.pop_back();
        }
        maps.push_back((secs, map));
        while maps.len() > self.max {
            maps.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Maps dropped for the limit so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Kubeshark's shape: `{"<unix s>": {"<ip>": {"FullAddress":
    /// "<name>.<namespace>", "Namespace": "<namespace>"}}}`.
    pub fn to_json(&self) -> Value {
        let maps: Vec<(u64, NameMap)> =
            self.maps.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect();
        let mut out = Map::new();
        for (secs, map) in maps {
            let mut m = Map::new();
            for (ip, r) in map.iter() {
                m.insert(
                    ip.to_string(),
                    json!({"FullAddress": format!("{}.{}", r.name, r.namespace), "Namespace": &*r.namespace}),
                );
            }
            out.insert(secs.to_string(), Value::Object(m));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keeps_the_last_maps_one_per_second() {
        let h = NameHistory::new(2);
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        let ip: IpAddr = "10.1.0.7".parse().unwrap();
        let map = |n: &str| Arc::new(vec![(ip, PodRef::new(n, "shop"))]);
        h.record(at(100), map("a"));
        h.record(at(101), map("b"));
        h.record(at(101), map("c"));
        h.record(at(102), map("d"));
        assert_eq!(
            h.to_json(),
            json!({
                "101": {"10.1.0.7": {"FullAddress": "c.shop", "Namespace": "shop"}},
                "102": {"10.1.0.7": {"FullAddress": "d.shop", "Namespace": "shop"}},
            })
        );
        assert_eq!(h.dropped(), 1);
        let off = NameHistory::new(0);
        off.record(at(1), map("a"));
        assert_eq!(off.to_json(), json!({}));
    }
}
