//! A hub and two workers as separate `skua` processes on loopback:
//!
//! - an agent pushed with `skua scripts` runs on both workers within 2 s and
//!   its console lines show on the hub (what the dashboard's console view
//!   reads), and the workers' items reach the hub's item view;
//! - `hub.action` from both workers aggregates in the one hub-side
//!   `onHubAction`;
//! - the hub killed (SIGKILL) and started again on its store loses no
//!   agent, the workers keep capturing (their job keeps counting, never
//!   reset) and link again.

#[path = "support/hub.rs"]
mod hub_support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hub_support::request;
use serde_json::Value;

const ADMIN: &str = "admin-token-0123456789";
const WORKER: &str = "worker-token-0123456789";

const AGENT: &str = r#"
var items = 0;
console.log("loaded v1 on", utils.nodeName());
function onItemCaptured(data) { items++; }
jobs.schedule("tick", "* * * * * *", function () {
  console.log("items so far", items);
  hub.action("items", { node: utils.nodeName(), items: items });
});
var seen = {};
function onHubAction(action, object) {
  if (action !== "items") return;
  seen[object.node] = object.items;
  console.log("hub sees", Object.keys(seen).sort().join(","));
}
"#;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A child whose stdout and stderr lines are collected as they come.
struct Proc {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(args: &[&str], node: &str) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skua"))
            .args(args)
            .env("SKUA_NODE_NAME", node)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out: Arc<Mutex<Vec<String>>> = Arc::default();
        for r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    out.lock().unwrap().push(line);
                }
            });
        }
        Proc { child, out }
    }

    fn lines(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    fn said(&self) -> String {
        self.lines().join("\n")
    }

    /// The counts the agent's job printed so far.
    fn counts(&self) -> Vec<u64> {
        self.lines()
            .iter()
            .filter_map(|l| l.split("items so far ").nth(1)?.trim().parse().ok())
            .collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_hub(addr: SocketAddr, store: &Path) -> Proc {
    let hub = Proc::spawn(
        &[
            "hub",
            "--listen",
            &addr.to_string(),
            "--store",
            store.to_str().unwrap(),
            "--set",
            &format!("hub.admin_tokens=[{ADMIN}]"),
            "--set",
            &format!("hub.worker_tokens=[{WORKER}]"),
            "--set",
            "scripting.dataDir=/tmp/skua-test-hub-data",
            "--set",
            "hub.items_demand_ms=1500",
        ],
        "hub-node",
    );
    wait_until(Duration::from_secs(20), "the hub to answer", || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    hub
}

fn start_worker(name: &str, hub: SocketAddr, pcap: &Path) -> Proc {
    Proc::spawn(
        &[
            "worker",
            "--pcap",
            pcap.to_str().unwrap(),
            "--loop",
            "0",
            "--pace",
            "recorded",
            "--cores",
            "1",
            "--quiet",
            "--set",
            "pcap.speed=50",
            "--set",
            "integrations.metrics_listen=",
            "--set",
            &format!("link.hub=http://{hub}"),
            "--set",
            &format!("link.token={WORKER}"),
            "--set",
            &format!("link.name={name}"),
            "--set",
            "link.stats_every_ms=500",
            "--set",
            "link.reconnect_max_ms=500",
            "--set",
            &format!("scripting.dataDir=/tmp/skua-test-{name}-data"),
        ],
        name,
    )
}

fn wait_until(limit: Duration, what: &str, f: impl FnMut() -> bool) {
    assert!(within(limit, f), "timed out waiting for {what}");
}

fn within(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while !f() {
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

fn get(addr: SocketAddr, path: &str) -> Value {
    let r = request(addr, "GET", path, Some(ADMIN), None);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()
}

fn online_workers(addr: SocketAddr) -> Vec<String> {
    let v = get(addr, "/api/workers");
    let list = v["workers"].as_array().or(v.as_array()).cloned().unwrap_or_default();
    list.iter()
        .filter(|w| w["online"] == true)
        .filter_map(|w| w["name"].as_str().map(String::from))
        .collect()
}

/// w1 and w2 report to the hub (the hub lists itself as worker `hub` too).
fn both_online(addr: SocketAddr) -> bool {
    let online = online_workers(addr);
    ["w1", "w2"].iter().all(|w| online.iter().any(|o| o == w))
}

fn console(addr: SocketAddr) -> Vec<Value> {
    get(addr, "/api/console?limit=1000")["lines"].as_array().cloned().unwrap_or_default()
}

#[test]
fn agents_pushed_to_a_hub_run_on_its_workers_and_survive_a_hub_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let agents = dir.path().join("agents");
    std::fs::create_dir(&agents).unwrap();
    let pcap = dir.path().join("demo.pcap");
    std::fs::write(&pcap, dataplane::synth::demo_capture()).unwrap();
    let addr = free_addr();

    let hub = start_hub(addr, &store);
    let w1 = start_worker("w1", addr, &pcap);
    let w2 = start_worker("w2", addr, &pcap);
    wait_until(Duration::from_secs(20), "both workers to link", || both_online(addr));

    // Pushed with `skua scripts`; running on both workers within 2 s.
    std::fs::write(agents.join("counter.js"), AGENT).unwrap();
    let t0 = Instant::now();
    let push = Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["scripts", "--once", "--hub", &format!("http://{addr}"), "--token", ADMIN, "--set"])
        .arg(format!("scripting.source={}", agents.display()))
        .output()
        .unwrap();
    assert!(push.status.success(), "{}", String::from_utf8_lossy(&push.stderr));
    let loaded_on = |node: &str| {
        console(addr)
            .iter()
            .any(|l| l["text"].as_str().is_some_and(|t| t == format!("loaded v1 on {node}")))
    };
    if !within(Duration::from_secs(5), || loaded_on("w1") && loaded_on("w2")) {
        panic!("the agent's first console line never reached the hub\nhub console: {:?}\nw1: {}\nhub: {}", console(addr), w1.said(), hub.said());
    }
    let took = t0.elapsed();
    eprintln!("pushed agent live on both workers and shown on the hub after {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "pushed agent ran on the workers and showed on the hub after {took:?}"
    );
    assert!(w1.said().contains("loaded v1 on w1"), "{}", w1.said());

    // Both workers' hub actions meet in the one hub-side onHubAction.
    wait_until(Duration::from_secs(10), "onHubAction to see both workers", || {
        // (The hub's own runtime runs the job too: it reports as "hub".)
        console(addr).iter().any(|l| l["node"] == "hub" && l["text"] == "hub sees hub,w1,w2")
    });
    // Items go up only while someone asks: none so far, then a query
    // brings them for hub.items_demand_ms (1.5 s here), then they stop.
    let published = || -> u64 {
        let m = request(addr, "GET", "/metrics", Some(ADMIN), None).body;
        m.lines()
            .find_map(|l| l.strip_prefix("skua_hub_items_published_total ")?.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(published(), 0, "no item went to the hub before anyone asked");
    wait_until(Duration::from_secs(10), "items on the hub", || {
        get(addr, "/api/items?limit=5")["items"].as_array().is_some_and(|a| !a.is_empty())
    });
    std::thread::sleep(Duration::from_millis(2500));
    let settled = published();
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(published(), settled, "items stop once nobody asks");

    // The hub dies; the workers go on capturing with their agent.
    let before: Vec<u64> = w1.counts();
    drop(hub);
    std::thread::sleep(Duration::from_millis(2500));
    let during = w1.counts();
    assert!(
        during.len() > before.len() && during.last() > before.last(),
        "w1 kept counting with the hub down: {before:?} → {during:?}"
    );

    // Back on the same store: the agent is still there and the workers link again.
    let hub = start_hub(addr, &store);
    let list = get(addr, "/api/agents");
    let names: Vec<&str> = list["agents"]
        .as_array()
        .or(list.as_array())
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["counter"], "{list}");
    wait_until(Duration::from_secs(20), "both workers to link again", || both_online(addr));
    let counts = w1.counts();
    assert!(
        counts.windows(2).all(|p| p[0] <= p[1]),
        "the agent's state was never reset: {counts:?}"
    );
    wait_until(Duration::from_secs(10), "console lines after the restart", || {
        console(addr)
            .iter()
            .any(|l| l["text"].as_str().is_some_and(|t| t.starts_with("items so far")))
    });
    drop(hub);
    drop((w1, w2));
}
