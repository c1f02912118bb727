//! Issue 30, fault 9: with script cores, one slow agent made the healthy
//! agents on its core lose items (4,096 of 63,000 seen): the core fell
//! behind, its ring filled and every agent lost what the ring dropped.
//!
//! The mechanism (`docs/architecture.md`, "Agents"): a script core that
//! falls behind (a ring past `scripting.shedAbovePercent`) *sheds* its
//! costliest agent — that agent's hook is skipped for items while the
//! backlog lasts, counted as its `shed` — and looks at its backlog at
//! least every millisecond of work, so the others keep up.
//!
//! Sent: 63,000 items at full replay speed to a counting agent beside an
//! agent that spends 1 ms on every item, with 1 and with 2 script cores.
//! Bound: the counting agent's calls equal the items captured, no item
//! is dropped at a script ring, the slow agent's calls plus its shed
//! items equal the items. Counter: the slow agent's `shed`
//! (`skua_agent_shed_total`).

use std::path::{Path, PathBuf};

use dataplane::synth::traffic::{SizeMix, Traffic, TrafficSpec};
use serde_json::Value;
use skua_suite::*;

const HEALTHY: &str = "var n = 0; function onItemCaptured(data) { n++; }";
const SLOW: &str =
    "function onItemCaptured(data) { var t = Date.now(); while (Date.now() - t < 1) {} }";

fn capture(dir: &Path) -> (PathBuf, u64) {
    let path = dir.join("api.pcap");
    let spec = TrafficSpec { exchanges: 60_000, mix: SizeMix::Api, ..TrafficSpec::default() };
    let sum = Traffic::write(spec, std::fs::File::create(&path).unwrap(), false).unwrap();
    (path, sum.http_exchanges + sum.dns_exchanges)
}

fn run(pcap: &Path, agents: &[(&str, &str)], script_cores: u16) -> Value {
    let dir = tempfile::tempdir().unwrap();
    for (name, src) in agents {
        std::fs::write(dir.path().join(format!("{name}.js")), src).unwrap();
    }
    let cores = format!("scripting.scriptCores={script_cores}");
    run_json(&[
        "--pcap",
        pcap.to_str().unwrap(),
        "--scripts",
        dir.path().to_str().unwrap(),
        "--set",
        "hub.listen=",
        "--set",
        "integrations.metrics_listen=",
        "--set",
        &cores,
    ])
}

fn total(v: &Value, agent: &str, key: &str) -> u64 {
    v["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["agent"] == agent && r["hook"] == "onItemCaptured")
        .map(|r| r[key].as_u64().unwrap_or(0))
        .sum()
}

fn check(script_cores: u16) {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, want) = capture(dir.path());
    assert_eq!(want, 63_000);

    // Alone, the healthy agent keeps up.
    let alone = run(&pcap, &[("healthy", HEALTHY)], script_cores);
    assert_eq!(alone["total"]["items"].as_u64(), Some(want));
    assert_eq!(total(&alone, "healthy", "calls"), want);

    let v = run(&pcap, &[("healthy", HEALTHY), ("slow", SLOW)], script_cores);
    assert_eq!(v["total"]["items"].as_u64(), Some(want));
    assert_eq!(
        total(&v, "healthy", "calls"),
        want,
        "the healthy agent beside a slow one sees every item ({script_cores} script cores): {}",
        v["agents"]
    );
    assert_eq!(v["scriptRingDrops"].as_u64(), Some(0), "nothing lost at a ring");
    let (slow_calls, slow_shed) = (total(&v, "slow", "calls"), total(&v, "slow", "shed"));
    assert_eq!(
        slow_calls + slow_shed,
        want,
        "every item either reached the slow agent or was shed"
    );
    assert!(slow_shed > 0 && slow_calls > 0, "calls {slow_calls}, shed {slow_shed}");
    assert_eq!(total(&v, "healthy", "shed"), 0);
}

#[test]
fn a_slow_agent_costs_the_healthy_agent_nothing_with_one_script_core() {
    check(1);
}

#[test]
fn a_slow_agent_costs_the_healthy_agent_nothing_with_two_script_cores() {
    check(2);
}
