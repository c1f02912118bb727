//! The exit summary of a capture run: per-core and total packets, bytes and
//! drops per reason, as a table for people or one JSON object for scripts.

use serde_json::{json, Map, Value};

use dataplane::engine::RunReport;
use dataplane::{CoreCounters, DropReason};

fn drops_object(pairs: impl IntoIterator<Item = (String, u64)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k, json!(v));
    }
    Value::Object(m)
}

fn core_drops(c: &CoreCounters) -> Vec<(String, u64)> {
    DropReason::ALL.iter().map(|r| (r.name().to_string(), c.drops[*r as usize])).collect()
}

fn counters_json(c: &CoreCounters) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("packets".into(), json!(c.packets));
    m.insert("bytes".into(), json!(c.bytes));
    m.insert("captured_bytes".into(), json!(c.captured_bytes));
    m.insert("drops".into(), drops_object(core_drops(c)));
    m.insert("flows".into(), json!(c.flows));
    m.insert("items".into(), json!(c.items));
    m.insert("flow_table_full".into(), json!(c.flow_table_full));
    m.insert("ipv4".into(), json!(c.ipv4));
    m.insert("ipv6".into(), json!(c.ipv6));
    m.insert("tcp".into(), json!(c.tcp));
    m.insert("udp".into(), json!(c.udp));
    m.insert("icmp".into(), json!(c.icmp));
    m.insert("other_l4".into(), json!(c.other_l4));
    m.insert("fragments".into(), json!(c.fragments));
    m.insert("snap_truncated".into(), json!(c.snap_truncated));
    m.insert("vlan_tagged".into(), json!(c.vlan_tagged));
    m
}

/// The `--summary json` object:
/// `{"total": {"packets", "bytes", "drops": {reason: n}}, "cores": [...], ...}`.
pub fn to_json(r: &RunReport) -> Value {
    let (packets, bytes, drops) = r.total();
    let sum = r.sum();
    let cores: Vec<Value> = r
        .cores
        .iter()
        .map(|c| {
            let mut m = counters_json(&c.counters);
            m.insert("core".into(), json!(c.core));
            m.insert("cpu".into(), json!(c.cpu));
            m.insert("reassembly".into(), json!(c.reassembly));
            Value::Object(m)
        })
        .collect();
    json!({
        "total": {
            "packets": packets,
            "bytes": bytes,
            "captured_bytes": sum_captured(r),
            "drops": drops_object(drops),
            "flows": sum.flows,
            "flow_table_full": sum.flow_table_full,
            "items": sum.items,
        },
        "cores": cores,
        "dispatcher": r.dispatcher.as_ref().map(|d| Value::Object(counters_json(d))),
        "sources": r.sources,
        "elapsed_s": r.elapsed.as_secs_f64(),
        "stopped": r.stopped,
    })
}

fn human_bytes(b: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn sum_captured(r: &RunReport) -> u64 {
    match &r.dispatcher {
        Some(d) => d.captured_bytes,
        None => r.cores.iter().map(|c| c.counters.captured_bytes).sum(),
    }
}

/// The table printed at exit.
pub fn to_text(r: &RunReport) -> String {
    use std::fmt::Write;
    let (packets, bytes, drops) = r.total();
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "skua: {} — {:.2} s{}",
        r.sources.join(", "),
        r.elapsed.as_secs_f64(),
        if r.stopped { " (stopped)" } else { "" }
    );
    let _ = writeln!(
        s,
        "{:>6} {:>5} {:>14} {:>16} {:>10} {:>10} {:>12}",
        "core", "cpu", "packets", "bytes", "flows", "items", "drops"
    );
    for c in &r.cores {
        let k = &c.counters;
        let cpu = c.cpu.map_or("-".to_string(), |x| x.to_string());
        let _ = writeln!(
            s,
            "{:>6} {:>5} {:>14} {:>16} {:>10} {:>10} {:>12}",
            c.core,
            cpu,
            k.packets,
            k.bytes,
            k.flows,
            k.items,
            k.dropped()
        );
    }
    if let Some(d) = &r.dispatcher {
        let _ = writeln!(
            s,
            "{:>6} {:>5} {:>14} {:>16} {:>10} {:>10} {:>12}",
            "disp",
            "-",
            d.packets,
            d.bytes,
            "-",
            "-",
            d.dropped()
        );
    }
    let dropped: u64 = drops.iter().map(|(_, v)| v).sum();
    let sum = r.sum();
    let _ = writeln!(
        s,
        "{:>6} {:>5} {:>14} {:>16} {:>10} {:>10} {:>12}",
        "total", "", packets, bytes, sum.flows, sum.items, dropped
    );
    let _ = writeln!(
        s,
        "rate: {:.3} Mpps, {:.3} Gbps ({})",
        packets as f64 / secs / 1e6,
        bytes as f64 * 8.0 / secs / 1e9,
        human_bytes(bytes)
    );
    let nonzero: Vec<_> = drops.iter().filter(|(_, v)| *v > 0).collect();
    if nonzero.is_empty() {
        let _ = writeln!(s, "drops: none");
    } else {
        let _ = writeln!(s, "drops by reason:");
        for (k, v) in nonzero {
            let _ = writeln!(s, "  {k:<26} {v:>12}");
        }
    }
    if sum.flow_table_full > 0 {
        let _ = writeln!(s, "flows not tracked (flow table full): {}", sum.flow_table_full);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::engine::CoreReport;
    use std::time::Duration;

    #[test]
    fn json_shape() {
        let mut c = CoreCounters { packets: 10, bytes: 1000, flows: 2, ..Default::default() };
        c.drop(DropReason::NonIp);
        let r = RunReport {
            sources: vec!["pcap:x".into()],
            cores: vec![CoreReport { core: 0, cpu: Some(0), counters: c, reassembly: None }],
            dispatcher: None,
            source_drops: vec![("truncated_capture".into(), 1)],
            elapsed: Duration::from_millis(5),
            stopped: false,
        };
        let v = to_json(&r);
        assert_eq!(v["total"]["packets"], 10);
        assert_eq!(v["total"]["bytes"], 1000);
        assert_eq!(v["total"]["drops"]["non_ip"], 1);
        assert_eq!(v["total"]["drops"]["truncated_capture"], 1);
        assert_eq!(v["total"]["drops"]["ring_full"], 0);
        assert_eq!(v["cores"][0]["flows"], 2);
        let t = to_text(&r);
        assert!(t.contains("non_ip"), "{t}");
    }
}
