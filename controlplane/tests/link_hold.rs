//! Issue 30, fault 8 (worker side): a linked worker captured before its
//! agents arrived (227–256 items missed per start; with the hub down at
//! start, 73 % of an 11 s run).
//!
//! Sent: a worker (`skua worker --pcap`) linked to a hub whose store holds
//! one agent counting items, with the agent inline on the capture core and
//! on a script core; then a worker whose hub is down. Bound: with the hub
//! up the agent sees every item of the capture (capture waits for the
//! hub's snapshot, and runtimes started after it get the agents the link
//! already broadcast); with the hub down capture starts after
//! `link.agents_wait_ms`, and the log says so. Counter: the agent's calls
//! in the exit summary against the items captured.

#[path = "support/hub.rs"]
mod hub_support;

use std::path::Path;
use std::time::{Duration, Instant};

use hub_support::{TestHub, WORKER};
use serde_json::Value;

const COUNT: &str = "var n = 0; function onItemCaptured(data) { n++; }";

fn demo_pcap(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("demo.pcap");
    std::fs::write(&p, dataplane::synth::demo_capture()).unwrap();
    p
}

fn worker(hub: &str, pcap: &Path, sets: &[&str]) -> (Value, String, Duration) {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_skua"));
    cmd.args(["worker", "--pcap", pcap.to_str().unwrap(), "--summary", "json", "--quiet"])
        .args(["--set", "integrations.metrics_listen="])
        .args(["--set", &format!("link.hub={hub}"), "--set", &format!("link.token={WORKER}")])
        .args(["--set", &format!("scripting.dataDir={}", data.path().display())])
        .env("SKUA_NODE_NAME", "w-hold");
    for s in sets {
        cmd.args(["--set", s]);
    }
    let t0 = Instant::now();
    let out = cmd.output().unwrap();
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr, took)
}

fn calls(v: &Value, agent: &str) -> u64 {
    v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["agent"] == agent && r["hook"] == "onItemCaptured")
        .map(|r| r["calls"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn a_linked_worker_holds_capture_until_its_agents_are_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("agents")).unwrap();
    std::fs::write(store.join("agents/count.js"), COUNT).unwrap();
    let hub = TestHub::start(&store, |_| {});
    let pcap = demo_pcap(dir.path());
    let url = format!("http://{}", hub.addr);
    for script_cores in ["0", "1"] {
        let sc = format!("scripting.scriptCores={script_cores}");
        let (v, stderr, _) = worker(&url, &pcap, &[&sc]);
        let items = v["total"]["items"].as_u64().unwrap();
        assert!(items > 100, "{items}");
        assert_eq!(
            calls(&v, "count"),
            items,
            "scriptCores={script_cores}: the hub's agent saw every item\n{stderr}"
        );
        assert!(
            stderr.contains("agents from hub") && stderr.contains("capture starts"),
            "{stderr}"
        );
    }
}

#[test]
fn with_the_hub_down_capture_starts_after_the_named_timeout_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = demo_pcap(dir.path());
    // Nothing listens there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (v, stderr, took) = worker(
        &format!("http://{addr}"),
        &pcap,
        &["link.agents_wait_ms=1500", "link.reconnect_max_ms=250"],
    );
    assert!(took >= Duration::from_millis(1_500), "capture was held: {took:?}");
    assert!(
        stderr.contains("no agents from hub") && stderr.contains("link.agents_wait_ms"),
        "{stderr}"
    );
    assert_eq!(v["total"]["packets"].as_u64(), Some(7_789), "then the whole capture ran");
}
