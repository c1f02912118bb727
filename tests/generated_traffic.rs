//! Generated traffic through `skua dissect`: what the generator counted as
//! it wrote the capture (requests per host, statuses, DNS lookups) is what
//! the dissected items say, with segments reordered, and with segments lost
//! every exchange still comes out, the damaged ones flagged.

use std::collections::BTreeMap;

use dataplane::synth::traffic::{SizeMix, Summary, Traffic, TrafficSpec};
use serde_json::Value;
use skua_suite::*;

fn dissect(spec: TrafficSpec, pcapng: bool) -> (Summary, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(if pcapng { "gen.pcapng" } else { "gen.pcap" });
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let summary = Traffic::write(spec, file, pcapng).unwrap();
    let out = skua(&["dissect", path.to_str().unwrap(), "--jsonl"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let items = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (summary, items)
}

fn http(items: &[Value]) -> impl Iterator<Item = &Value> {
    items.iter().filter(|i| i["protocol"]["name"] == "http")
}

#[test]
fn reordered_keepalive_traffic_gives_every_exchange() {
    let spec = TrafficSpec {
        exchanges: 1_500,
        concurrent: 64,
        reorder: 0.1,
        mix: SizeMix::Mixed,
        seed: 11,
        ..TrafficSpec::default()
    };
    let (summary, items) = dissect(spec, true);
    assert!(summary.reordered_segments > 100, "{summary:?}");
    let mut hosts: BTreeMap<String, u64> = BTreeMap::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for i in http(&items) {
        assert!(i["error"].is_null(), "{i}");
        *hosts.entry(i["request"]["headers"]["Host"].as_str().unwrap().to_string()).or_default() +=
            1;
        *statuses.entry(i["response"]["status"].as_u64().unwrap() as u16).or_default() += 1;
    }
    assert_eq!(hosts, summary.requests_per_host);
    assert_eq!(statuses, summary.statuses);
    let dns =
        items.iter().filter(|i| i["protocol"]["name"] == "dns" && i["error"].is_null()).count()
            as u64;
    assert_eq!(dns, summary.dns_exchanges);
}

#[test]
fn lost_segments_are_gaps_not_lost_exchanges() {
    let spec = TrafficSpec {
        exchanges: 800,
        concurrent: 32,
        loss: 0.01,
        mix: SizeMix::Mixed,
        seed: 5,
        ..TrafficSpec::default()
    };
    let (summary, items) = dissect(spec, false);
    assert!(summary.lost_segments > 10, "{summary:?}");
    let http: Vec<&Value> = http(&items).collect();
    let clean = http.iter().filter(|i| i["error"].is_null()).count() as u64;
    let flagged = http.len() as u64 - clean;
    // A lost segment damages at most the exchanges of its connection.
    assert!(
        clean + summary.lost_segments * 8 >= summary.http_exchanges,
        "{clean} clean of {}",
        summary.http_exchanges
    );
    assert!(flagged > 0);
    assert!(http.iter().any(|i| i["error"]["type"] == "gap"), "a body gap is reported as a gap");
}
