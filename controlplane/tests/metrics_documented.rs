//! Issue 30, fault 7: every family `docs/metrics.md` documents is served,
//! and every family served is documented, with its type.
//!
//! The worker's table is diffed against a live `/metrics` of `skua run`
//! capturing from a DPDK port (`net_pcap` replaying the demo capture
//! without end) through an agent, with the Kubernetes pod watcher on
//! against the loopback fake API server: the run where every family has
//! samples (NIC, dataplane, reassembly, items, agents, integrations,
//! Kubernetes). The hub's table is diffed against a running hub's
//! `/metrics`.

#[path = "support/hub.rs"]
mod hub_support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use hub_support::*;

/// Families of the tables under `## heading` (up to the next `## `):
/// name → type.
fn documented(section: &str) -> BTreeMap<String, String> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .unwrap();
    let start = doc.find(&format!("\n## {section}")).unwrap_or_else(|| panic!("no ## {section}"));
    let body = &doc[start + 4..];
    let body = &body[..body.find("\n## ").unwrap_or(body.len())];
    body.lines()
        .filter_map(|l| {
            let mut cells = l.strip_prefix("| `")?.split('|');
            let name = cells.next()?.trim().trim_end_matches('`').to_string();
            Some((name, cells.next()?.trim().to_string()))
        })
        .collect()
}

/// Families in an exposition: name → type (from `# TYPE`).
fn served(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("# TYPE ")?.split(' ');
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect()
}

fn diff(what: &str, doc: &BTreeMap<String, String>, live: &BTreeMap<String, String>, text: &str) {
    let missing: Vec<&String> = doc.keys().filter(|k| !live.contains_key(*k)).collect();
    let undocumented: Vec<&String> = live.keys().filter(|k| !doc.contains_key(*k)).collect();
    let mistyped: Vec<String> = doc
        .iter()
        .filter_map(|(k, t)| live.get(k).filter(|l| *l != t).map(|l| format!("{k}: {t} vs {l}")))
        .collect();
    assert!(
        missing.is_empty() && undocumented.is_empty() && mistyped.is_empty(),
        "{what}: documented but not served {missing:?}; served but not documented \
         {undocumented:?}; types {mistyped:?}\n---\n{text}"
    );
}

#[test]
fn every_documented_worker_family_is_served_by_skua_run() {
    if !skua_suite::dpdk_usable() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pcap, agents) = skua_suite::demo_pcap_and_counting_agent(dir.path());
    // The fake API server (its own runtime) and a kubeconfig naming it.
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (_api, url) = rt.block_on(controlplane::kube::fake_api::FakeApi::start()).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: skua\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n"),
    )
    .unwrap();

    let eal =
        format!("--no-pci --no-huge --vdev net_pcap0,rx_pcap={},infinite_rx=1", pcap.display());
    let data = dir.path().join("data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["run", "--dpdk", &eal, "--duration", "8", "--scripts", agents.to_str().unwrap()])
        .args(["--set", "integrations.metrics_listen=127.0.0.1:0", "--set", "hub.listen="])
        .args(["--set", "kubernetes.enabled=true"])
        .args(["--set", &format!("scripting.dataDir={}", data.display())])
        .env("KUBECONFIG", &kubeconfig)
        .env("SKUA_NODE_NAME", "node-a")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, said, drain) = skua_suite::metrics_address(&mut child);
    // Reassembly counters are published every 100 ms, items need a few
    // flows to finish, inline agents' hook stats come once a second:
    // scrape once they are all there.
    let mut text = String::new();
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(200));
        text = skua_suite::scrape_metrics(&addr);
        if metric(&text, r#"skua_items_total{core="0",protocol="http"}"#) > 0
            && text.contains("\nskua_agent_calls_total{")
        {
            break;
        }
    }
    assert!(metric(&text, r#"skua_reassembly_packets_total{core="0"}"#) > 0, "{text}");
    let documented = documented("Families");
    assert!(documented.len() > 60, "{documented:?}");
    diff("skua run", &documented, &served(&text), &text);
    let status = child.wait().unwrap();
    let rest = drain.join().unwrap();
    assert!(status.success(), "{said}{rest}");
}

#[test]
fn every_documented_hub_family_is_served_by_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let text = hub.get("/metrics", Some(ADMIN)).body;
    let mut documented = documented("The hub's `/metrics`");
    // The hub also serves the two families every skua process does (the
    // worker's table documents them).
    let shared = documented_shared();
    documented.extend(shared);
    assert!(documented.len() > 25, "{documented:?}");
    diff("skua hub", &documented, &served(&text), &text);
}

fn documented_shared() -> BTreeMap<String, String> {
    documented("Families")
        .into_iter()
        .filter(|(k, _)| k == "skua_build_info" || k == "skua_uptime_seconds")
        .collect()
}
