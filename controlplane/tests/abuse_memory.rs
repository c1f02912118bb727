//! Issue 30, fault 3: the hub's rings are bounded in bytes.
//!
//! What is sent: 400 items of 1 MB each (and 200 console lines of 1 MB) to
//! a `skua hub` process through the worker link's endpoints, as the
//! review did (it took the hub from 23 MB to 837 MB).
//!
//! What holds: the item ring holds at most `hub.items_max_bytes` (32 MiB
//! here; `skua_hub_items_held_bytes`), the console ring at most
//! `hub.console_max_bytes` (8 MiB), the oldest go first
//! (`skua_hub_items_evicted_total`, `skua_hub_console_evicted_total`), the
//! newest stay queryable, and the process' resident memory grows by less
//! than three times the two budgets (the JSON, its parsed form and the
//! allocator's slack), not by the 600 MB sent.

#[path = "support/hub.rs"]
mod hub_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use hub_support::*;
use serde_json::json;

const ITEMS_BUDGET: u64 = 32 << 20;
const CONSOLE_BUDGET: u64 = 8 << 20;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn posted_items_and_lines_stay_within_the_byte_budgets() {
    let dir = tempfile::tempdir().unwrap();
    let mut hub = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_skua"))
            .args(["hub", "--listen", "127.0.0.1:0", "--store", dir.path().to_str().unwrap()])
            .args(["--set", &format!("hub.admin_tokens=[{ADMIN}]")])
            .args(["--set", &format!("hub.worker_tokens=[{WORKER}]")])
            .args(["--set", &format!("hub.items_max_bytes={ITEMS_BUDGET}")])
            .args(["--set", &format!("hub.console_max_bytes={CONSOLE_BUDGET}")])
            .args(["--set", "hub.max_body_bytes=1100000", "--set", "hub.run_agents=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(hub.0.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| Some(l.split_once("hub on http://")?.1.split(' ').next()?.to_string()))
        .expect("the hub's address")
        .parse()
        .unwrap();
    std::thread::spawn(move || lines.for_each(drop));
    let pid = hub.0.id();
    // Warm up (the allocator, the runtime's threads), then measure.
    for i in 0..20 {
        let r = request(
            addr,
            "POST",
            "/api/link/items",
            Some(WORKER),
            Some(&json!([{"id": format!("warm/{i}")}]).to_string()),
        );
        assert_eq!(r.status, 202);
    }
    let before = rss_kib(pid);

    let mb = "m".repeat(1_000_000);
    let t0 = Instant::now();
    for i in 0..400 {
        let batch = json!([{ "id": format!("w1/{i}"), "response": {"content": {"text": mb}} }]);
        let r = request(addr, "POST", "/api/link/items", Some(WORKER), Some(&batch.to_string()));
        assert_eq!(r.status, 202, "item {i}: {}", r.body);
    }
    for i in 0..200 {
        let line = json!([{ "ts": 1, "node": "w1", "agent": "a", "level": "log", "text": format!("{i} {mb}") }]);
        let r = request(addr, "POST", "/api/link/console", Some(WORKER), Some(&line.to_string()));
        assert_eq!(r.status, 202, "line {i}: {}", r.body);
    }
    let took = t0.elapsed();
    let after = rss_kib(pid);
    let m = request(addr, "GET", "/metrics", Some(ADMIN), None).body;
    let held = metric(&m, "skua_hub_items_held_bytes");
    let console_held = metric(&m, "skua_hub_console_held_bytes");
    let grew = (after.saturating_sub(before)) << 10;
    eprintln!(
        "600 MB posted in {took:?}: item ring {held} bytes ({} items), console ring {console_held} bytes; RSS {before} KiB -> {after} KiB (+{} MiB)",
        metric(&m, "skua_hub_items_held"),
        grew >> 20
    );
    assert!(held <= ITEMS_BUDGET && held > ITEMS_BUDGET / 2, "{held}");
    assert!(console_held <= CONSOLE_BUDGET && console_held > CONSOLE_BUDGET / 2, "{console_held}");
    assert!(metric(&m, "skua_hub_items_evicted_total") >= 380, "{m}");
    assert!(metric(&m, "skua_hub_console_evicted_total") >= 190);
    assert!(grew < 3 * (ITEMS_BUDGET + CONSOLE_BUDGET), "RSS grew by {} MiB", grew >> 20);
    // The newest stay, the oldest went.
    let q = request(addr, "GET", "/api/items?limit=1", Some(ADMIN), None).json();
    assert_eq!(q["items"][0]["id"], "w1/399");
    assert_eq!(request(addr, "GET", "/api/items/w1%2F0", Some(ADMIN), None).status, 404);
}
