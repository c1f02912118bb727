//! Agents end to end through the `skua` binary: the seed's complete example
//! verbatim under `skua test-agent`, with per-minute totals computed here
//! from the capture independently; and `skua run --scripts` with broken
//! agents next to a good one — capture and the good agent lose nothing.

use std::collections::BTreeMap;

use serde_json::Value;
use skua_suite::*;

/// The seed's complete example: `examples/packets-per-minute.js` is its
/// text, unchanged.
const SEED_EXAMPLE: &str = include_str!("../examples/packets-per-minute.js");

/// (timestamp ns, wire length) of every record, read with pcap-parser.
fn records(bytes: &[u8]) -> Vec<(u64, u32)> {
    use pcap_parser::traits::PcapReaderIterator;
    let mut reader = pcap_parser::LegacyPcapReader::new(1 << 16, bytes).unwrap();
    let mut out = Vec::new();
    loop {
        match reader.next() {
            Ok((n, pcap_parser::PcapBlockOwned::Legacy(b))) => {
                out.push((u64::from(b.ts_sec) * 1_000_000_000 + u64::from(b.ts_usec) * 1_000, b.origlen));
                reader.consume(n);
            }
            Ok((n, _)) => reader.consume(n),
            Err(pcap_parser::PcapError::Eof) => break,
            Err(pcap_parser::PcapError::Incomplete(_)) => reader.refill().unwrap(),
            Err(e) => panic!("{e:?}"),
        }
    }
    out
}

#[test]
fn the_seed_example_prints_correct_per_minute_totals() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("demo.pcap");
    let bytes = dataplane::synth::demo_capture();
    std::fs::write(&pcap, &bytes).unwrap();
    let agent = dir.path().join("seed.js");
    std::fs::write(&agent, SEED_EXAMPLE).unwrap();

    // Expected: the job fires at every minute boundary of capture time and
    // prints what arrived since the previous firing.
    let mut windows: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let recs = records(&bytes);
    let last_minute = recs.last().unwrap().0 / 60_000_000_000;
    for (ts, len) in &recs {
        let boundary = ts / 60_000_000_000 + 1;
        if boundary <= last_minute {
            let w = windows.entry(boundary).or_default();
            w.0 += 1;
            w.1 += u64::from(*len);
        }
    }
    assert!(windows.len() >= 2, "the demo capture spans minutes");

    let out = skua(&["test-agent", agent.to_str().unwrap(), "--pcap", pcap.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let counts: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.split("Captured packet count per minute: ").nth(1))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    let kbs: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.split("Total KB captured per minute: ").nth(1))
        .map(|v| v.trim().parse().unwrap())
        .collect();
    let want_counts: Vec<u64> = windows.values().map(|w| w.0).collect();
    let want_kb: Vec<f64> = windows.values().map(|w| w.1 as f64 / 1000.0).collect();
    assert_eq!(counts, want_counts, "{stdout}");
    assert_eq!(kbs.len(), want_kb.len());
    for (got, want) in kbs.iter().zip(&want_kb) {
        assert!((got - want).abs() < 1e-6, "{got} KB vs {want} KB");
    }
}

#[test]
fn broken_agents_do_not_stall_capture_or_the_good_agent() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, src: &str| std::fs::write(dir.path().join(name), src).unwrap();
    w("good.js", "var n = 0; function onItemCaptured(data) { n++; }");
    w("runaway.js", "function onItemCaptured(data) { while (true) {} }");
    w("thrower.js", "function onItemCaptured(data) { null.boom(); }");
    w("broken.js", "var a = 1;\nfunction onItemCaptured(data) {\n  if (data { }\n}\n");
    let out = skua(&[
        "run",
        "--scripts",
        dir.path().to_str().unwrap(),
        "--summary",
        "json",
        "--quiet",
        "--set",
        "integrations.metrics_listen=",
        "--set",
        "scripting.hookBudgetMs=50",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("agent broken rejected") && stderr.contains("3:"), "the syntax error names its line: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let (packets, _) = totals(&v);
    assert_eq!(packets, 7789, "capture lost nothing");
    let items = v["total"]["items"].as_u64().unwrap();
    let hook = |agent: &str| -> Value {
        v["agents"].as_array().unwrap().iter().find(|s| s["agent"] == agent && s["hook"] == "onItemCaptured").cloned().unwrap_or(Value::Null)
    };
    assert_eq!(hook("good")["calls"].as_u64(), Some(items), "the good agent saw every item");
    let runaway = hook("runaway");
    assert!(runaway["interrupts"].as_u64().unwrap() >= 1, "{runaway}");
    // Quarantined after `quarantineAfter` (10) consecutive faults.
    assert!(runaway["calls"].as_u64().unwrap() <= 10, "{runaway}");
    let thrower = hook("thrower");
    assert_eq!(thrower["errors"].as_u64(), Some(10), "{thrower}");
    assert!(stdout.contains("[") && stdout.contains("thrower"), "the exception was logged with the agent");
}

#[test]
fn every_bundled_example_runs_clean_on_the_demo_capture() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut args = vec!["test-agent".to_string(), examples.to_str().unwrap().to_string()];
    for kv in [
        "KINESIS_STREAM=har",
        "SLACK_WEBHOOK_URL=http://127.0.0.1:9/slack",
        "WEBHOOK_URL=http://127.0.0.1:9/hook",
        "INFLUXDB_URL=http://127.0.0.1:9",
        "INFLUXDB_TOKEN=t",
        "INFLUXDB_ORGANIZATION=o",
        "INFLUXDB_BUCKET=b",
    ] {
        args.extend(["--set".to_string(), format!("scripting.env.{kv}")]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = skua(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a bundled example faulted or was quarantined: {}", String::from_utf8_lossy(&out.stderr));
    // No row of the table reports an error, an interrupt or a heap-limit hit.
    let table = stdout.split("agent                    rt").nth(1).unwrap();
    for row in table.lines().skip(1) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cols[4..7], ["0", "0", "0"], "{row}");
    }
    // hub.action from a job reached onHubAction; helpers were called.
    assert!(table.lines().any(|r| r.starts_with("top-dns-names") && r.contains("onHubAction")), "{table}");
    for call in [
        "[effect har-to-kinesis] vendor.kinesis.put(",
        "[effect influxdb-status-counts] vendor.influxdb(",
        "[effect slack-on-5xx] vendor.slack(",
        "[effect webhook-health-check] vendor.webhook(",
    ] {
        assert!(stdout.contains(call), "{call} is shown");
    }
}
