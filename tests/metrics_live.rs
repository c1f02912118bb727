//! `/metrics` scraped from a running `skua run` on a DPDK port (`net_pcap`
//! replaying the demo capture without end) with an agent: the NIC's port
//! and per-queue counters, the dataplane's per-core counters and the
//! agent's hook stats are all there and advancing, and `promtool check
//! metrics` accepts the exposition.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skua_suite::*;

/// The value of the sample `series` (name with labels, as written).
fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse::<f64>().ok())
        .map(|v| v as u64)
}

#[test]
fn metrics_of_a_running_dpdk_capture_with_agents() {
    if !dpdk_usable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pcap, agents) = demo_pcap_and_counting_agent(dir.path());

    let eal =
        format!("--no-pci --no-huge --vdev net_pcap0,rx_pcap={},infinite_rx=1", pcap.display());
    let mut child = Command::new(skua_bin())
        .args(["run", "--dpdk", &eal, "--duration", "6", "--scripts", agents.to_str().unwrap()])
        .args(["--set", "integrations.metrics_listen=127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, said, drain) = metrics_address(&mut child);

    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let first = scrape_metrics(&addr);
    std::thread::sleep(Duration::from_millis(1000));
    let second = scrape_metrics(&addr);
    assert!(t0.elapsed() < Duration::from_secs(5), "both scrapes inside the 6 s run");

    let queue = r#"skua_nic_queue_received_packets_total{port="net_pcap0",queue="0"}"#;
    let (q1, q2) = (sample(&first, queue).expect(queue), sample(&second, queue).unwrap());
    assert!(q1 > 0 && q2 > q1, "the queue's counter advances: {q1} → {q2}");
    assert!(
        sample(&second, r#"skua_nic_missed_packets_total{port="net_pcap0"}"#).is_some(),
        "{second}"
    );
    let core = r#"skua_dataplane_packets_total{core="0"}"#;
    assert!(sample(&second, core).expect(core) > 0);
    let calls = r#"skua_agent_calls_total{runtime="rt0",agent="count",hook="onItemCaptured"}"#;
    assert!(sample(&second, calls).expect(calls) > 0, "{second}");

    if let Some(promtool) =
        ["/usr/bin/promtool"].into_iter().find(|p| std::path::Path::new(p).exists())
    {
        let (ok, said) = promtool_check(promtool, &second);
        assert!(ok, "promtool check metrics:\n{said}\n---\n{second}");
    } else {
        skip::missing("promtool (Debian package prometheus): the exposition is not checked by it");
    }

    let status = child.wait().unwrap();
    let rest = drain.join().unwrap();
    assert!(status.success(), "{said}{rest}");
}

/// Runs promtool on `text`: (accepted without a word, what it said).
fn promtool_check(promtool: &str, text: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success() && said.trim().is_empty(), said)
}
