//! The cluster script store end to end, against the loopback fake API
//! server named by a kubeconfig the test writes: `skua hub` with
//! `hub.store=kube` keeps agents and env across a restart (and never
//! returns env values), `skua scripts --kube` pushes a folder straight into
//! the ConfigMap (which the hub rereads and announces), and the hub's
//! agents get `onPodEvent` from its cluster-wide pod watcher.

#[path = "support/hub.rs"]
mod hub_support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use controlplane::kube::fake_api::FakeApi;
use serde_json::json;

const AGENT: &str = "var n = 0;\nfunction onItemCaptured(data) { n++; }\n";

/// The fake API server on its own runtime, and a kubeconfig naming it
/// (namespace `skua`, so the store's default namespace is the context's).
fn fake_cluster(dir: &Path) -> (tokio::runtime::Runtime, Arc<FakeApi>, std::path::PathBuf) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (api, url) = rt.block_on(FakeApi::start()).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {url}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: skua\ncurrent-context: fake\nusers:\n- name: fake\n  user: {{}}\n"
    );
    std::fs::write(&kubeconfig, text).unwrap();
    (rt, api, kubeconfig)
}

/// `skua hub` on the kube store; the child, its address and its token.
fn spawn_hub(
    kubeconfig: &Path,
    extra: &[&str],
) -> (std::process::Child, std::net::SocketAddr, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["hub", "--listen", "127.0.0.1:0", "--set", "hub.store=kube"])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut addr, mut token, mut said) = (String::new(), String::new(), String::new());
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if let Some(rest) = line.split_once("hub on http://").map(|(_, r)| r) {
            assert!(
                rest.contains("ConfigMap skua/skua-agents and Secret skua/skua-agents-env"),
                "{rest}"
            );
            addr = rest.split(' ').next().unwrap().to_string();
        }
        if let Some(t) =
            line.split_once("no hub tokens configured; generated admin token: ").map(|(_, r)| r)
        {
            token = t.to_string();
            break;
        }
    }
    assert!(!addr.is_empty() && !token.is_empty(), "{said}");
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr.parse().unwrap(), token)
}

fn stop(mut child: std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn skua_hub_keeps_agents_and_env_in_the_cluster_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, api, kubeconfig) = fake_cluster(dir.path());
    let (child, addr, token) = spawn_hub(&kubeconfig, &["--set", "hub.run_agents=false"]);
    let r = hub_support::request(
        addr,
        "PUT",
        "/api/agents/kept",
        Some(&token),
        Some(&json!({ "source": AGENT }).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = hub_support::request(
        addr,
        "PUT",
        "/api/env/API_KEY",
        Some(&token),
        Some(r#"{"value":"s3cret-value"}"#),
    );
    assert!(r.status < 300, "{} {}", r.status, r.body);
    stop(child);
    assert_eq!(api.object("configmaps/skua/skua-agents").unwrap()["data"]["kept.js"], AGENT);
    assert!(api.object("secrets/skua/skua-agents-env").unwrap()["data"]["API_KEY"].is_string());

    // A new hub pod: the same agents and env names; values stay hidden.
    let (child, addr, token) = spawn_hub(&kubeconfig, &["--set", "hub.run_agents=false"]);
    let r = hub_support::request(addr, "GET", "/api/agents/kept", Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["source"], AGENT);
    let r = hub_support::request(addr, "GET", "/api/env", Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("API_KEY") && !r.body.contains("s3cret-value"), "{}", r.body);
    stop(child);
}

fn push_folder(kubeconfig: &Path, agents: &Path, extra: &[&str]) -> std::process::Output {
    let source = format!("scripting.source={}", agents.display());
    Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["scripts", "--kube", "--once", "--set", source.as_str()])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap()
}

#[test]
fn hub_agents_get_pod_events_from_the_cluster_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, api, kubeconfig) = fake_cluster(dir.path());
    api.add_pod(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "checkout-7f", "namespace": "shop", "uid": "u1", "resourceVersion": "1"},
        "spec": {"nodeName": "node-9", "containers": [{"name": "app", "image": "app:1"}]},
        "status": {"phase": "Running", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}]}
    }));
    let agents = dir.path().join("agents");
    std::fs::create_dir(&agents).unwrap();
    let watcher = "function onPodEvent(event, pod) { console.log('pod ' + event + ' ' + pod.metadata.namespace + '/' + pod.metadata.name); }\n";
    std::fs::write(agents.join("pods.js"), watcher).unwrap();
    let out = push_folder(&kubeconfig, &agents, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let data = dir.path().join("data");
    let data = format!("scripting.dataDir={}", data.display());
    let (child, addr, token) = spawn_hub(
        &kubeconfig,
        &[
            "--set",
            "kubernetes.enabled=true",
            "--set",
            data.as_str(),
            "--set",
            "hub.store_poll_ms=100",
        ],
    );
    let t0 = std::time::Instant::now();
    loop {
        let console =
            hub_support::request(addr, "GET", "/api/console?limit=100", Some(&token), None).body;
        if console.contains("pod ADDED shop/checkout-7f") {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(15),
            "no onPodEvent on the hub: {console}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // An agent pushed around the hub: the hub rereads its ConfigMap and
    // its own runtime loads it.
    std::fs::write(agents.join("late.js"), "console.log('late agent loaded');\n").unwrap();
    let out = push_folder(&kubeconfig, &agents, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t0 = std::time::Instant::now();
    while !hub_support::request(addr, "GET", "/api/console?limit=100", Some(&token), None)
        .body
        .contains("late agent loaded")
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(15),
            "the pushed agent never loaded on the hub"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let metrics = hub_support::request(addr, "GET", "/metrics", Some(&token), None).body;
    assert!(
        metrics.contains("skua_kubernetes_pod_events_total{result=\"queued\"} 1\n"),
        "{metrics}"
    );
    // Cluster scope: one list of every namespace's pods, no node filter.
    assert!(api.requests().iter().any(|r| r == "GET /api/v1/pods"), "{:?}", api.requests());
    stop(child);
}

#[test]
fn skua_scripts_kube_pushes_a_folder_into_the_configmap() {
    let dir = tempfile::tempdir().unwrap();
    let (_rt, api, kubeconfig) = fake_cluster(dir.path());
    let agents = dir.path().join("agents");
    std::fs::create_dir(&agents).unwrap();
    std::fs::write(agents.join("good.js"), AGENT).unwrap();
    std::fs::write(agents.join("broken.js"), "function onItemCaptured( {").unwrap();
    let push = |extra: &[&str]| push_folder(&kubeconfig, &agents, extra);
    let out = push(&[]);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    // The broken agent is reported and not pushed: the exit says so.
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("broken.js not pushed") && said.contains("good.js pushed"), "{said}");
    let cm = api.object("configmaps/skua/skua-agents").expect("the ConfigMap is created");
    assert_eq!(cm["data"]["good.js"], AGENT);
    assert!(cm["data"].get("broken.js").is_none(), "{cm}");

    // --prune deletes what the folder no longer has.
    std::fs::remove_file(agents.join("broken.js")).unwrap();
    std::fs::remove_file(agents.join("good.js")).unwrap();
    std::fs::write(agents.join("other.js"), AGENT).unwrap();
    let out = push(&["--prune"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cm = api.object("configmaps/skua/skua-agents").unwrap();
    assert_eq!(cm["data"].as_object().unwrap().keys().collect::<Vec<_>>(), ["other.js"]);

    // Without --once it follows the folder's edits.
    let source = format!("scripting.source={}", agents.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_skua"))
        .args(["scripts", "--kube", "--set", source.as_str(), "--set", "scripting.watchMs=100"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(agents.join("other.js"), "var edited = 1;\n").unwrap();
    let t0 = std::time::Instant::now();
    while api.object("configmaps/skua/skua-agents").unwrap()["data"]["other.js"]
        != "var edited = 1;\n"
    {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(15),
            "the edit never reached the ConfigMap"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
