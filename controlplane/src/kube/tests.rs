//! The pod watcher against a mocked `Client` (tower-test, kube-rs' documented
//! way) and against a loopback fake API server (hyper on 127.0.0.1) that
//! speaks list and watch, `410 Gone` included.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::kube::client::Body;
use ::kube::Client;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::testpods::{crash_looping, pod, restarted, with_rv};
use super::*;

fn pod_list(resource_version: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": resource_version}, "items": items})
}

fn watch_lines(events: &[(&str, Value)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (kind, object) in events {
        serde_json::to_writer(&mut body, &json!({"type": kind, "object": object})).unwrap();
        body.push(b'\n');
    }
    body
}

fn gone() -> (&'static str, Value) {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "too old resource version: 11 (13)", "reason": "Expired", "code": 410});
    ("ERROR", status)
}

fn options(scope: WatchScope) -> WatchOptions {
    WatchOptions {
        scope,
        namespaces: Vec::new(),
        map_publish: Duration::from_millis(10),
        services: false,
        name_history: 8,
    }
}

/// The next `n` events as "EVENT name", failing after 10 s.
async fn next_events(rx: &mut mpsc::Receiver<PodEvent>, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out after {got:?}"))
            .expect("watcher stopped");
        got.push(format!(
            "{} {}",
            e.kind.as_str(),
            e.pod["metadata"]["name"].as_str().unwrap_or("?")
        ));
    }
    got
}

async fn assert_quiet(rx: &mut mpsc::Receiver<PodEvent>) {
    if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("unexpected event {} {}", e.kind.as_str(), e.pod["metadata"]["name"]);
    }
}

/// Waits until the map names `ip` as `name` (or, with `None`, not at all).
async fn map_settles(map: &PodMap, ip: &str, name: Option<&str>) {
    let ip: IpAddr = ip.parse().unwrap();
    for _ in 0..500 {
        if map.load().get(&ip).map(|p| &*p.name) == name {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{ip} never mapped to {name:?}");
}

#[tokio::test]
async fn events_derived_through_a_mocked_client() {
    let (service, mut handle) =
        tower_test::mock::pair::<http::Request<Body>, http::Response<Body>>();
    let client = Client::new(service, "default");
    let watcher = PodWatcher::new(client, options(WatchScope::Node("node-1".into())));
    let map = watcher.pod_map();
    let (tx, mut rx) = mpsc::channel(64);
    let task = watcher.spawn(tx);

    let (request, send) = handle.next_request().await.expect("list");
    let uri = request.uri().to_string();
    assert!(
        uri.starts_with("/api/v1/pods?") && uri.contains("fieldSelector=spec.nodeName%3Dnode-1"),
        "{uri}"
    );
    assert!(!uri.contains("watch=true"), "{uri}");
    let list = pod_list("1", vec![pod("a", "shop", "1", "10.1.0.5")]);
    send.send_response(http::Response::new(Body::from(serde_json::to_vec(&list).unwrap())));

    let (request, send) = handle.next_request().await.expect("watch");
    let uri = request.uri().to_string();
    assert!(uri.contains("watch=true") && uri.contains("resourceVersion=1"), "{uri}");
    let a = || pod("a", "shop", "1", "10.1.0.5");
    let body = watch_lines(&[
        ("MODIFIED", with_rv(restarted(a(), 1), "2")),
        ("MODIFIED", with_rv(crash_looping(restarted(a(), 1)), "3")),
        ("MODIFIED", with_rv(crash_looping(restarted(a(), 1)), "4")),
        ("ADDED", pod("b", "shop", "5", "10.1.0.6")),
        ("DELETED", with_rv(pod("b", "shop", "5", "10.1.0.6"), "6")),
    ]);
    send.send_response(http::Response::new(Body::from(body)));

    let got = next_events(&mut rx, 8).await;
    let want = [
        "ADDED a",
        "MODIFIED a",
        "RESTARTED a",
        "MODIFIED a",
        "CRASHED a",
        "MODIFIED a",
        "ADDED b",
        "DELETED b",
    ];
    assert_eq!(got, want);
    map_settles(&map, "10.1.0.5", Some("a")).await;
    map_settles(&map, "10.1.0.6", None).await;
    // The watch body ended: the watcher resumes from the last version seen
    // (and the mock leaves that request pending).
    let (request, _send) = handle.next_request().await.expect("re-watch");
    assert!(request.uri().to_string().contains("resourceVersion=6"), "{}", request.uri());
    assert_quiet(&mut rx).await;
    task.abort();
}

/// A fake API server for pods: the n-th list answers `lists[n]` (the last
/// one repeats), the n-th watch streams `watches[n]` and ends; a watch past
/// the script hangs, as a quiet watch does. Services: one fixed list, and a
/// watch that hangs.
struct FakeApi {
    lists: Mutex<VecDeque<Value>>,
    watches: Mutex<VecDeque<Vec<u8>>>,
    requests: Mutex<Vec<String>>,
}

impl FakeApi {
    async fn start(lists: Vec<Value>, watches: Vec<Vec<u8>>) -> (Arc<FakeApi>, String) {
        let api = Arc::new(FakeApi {
            lists: Mutex::new(lists.into()),
            watches: Mutex::new(watches.into()),
            requests: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        super::fake_api::serve(listener, api.clone());
        (api, url)
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl super::fake_api::Answer for FakeApi {
    async fn answer(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> hyper::Response<Full<Bytes>> {
        let uri = req.uri().to_string();
        self.requests.lock().unwrap().push(uri.clone());
        let body = if uri.contains("/services") {
            if uri.contains("watch=true") {
                std::future::pending::<()>().await;
            }
            let api = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "shop", "resourceVersion": "3"},
                             "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"]}});
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ServiceList", "metadata": {"resourceVersion": "3"}, "items": [api]})).unwrap()
        } else if !uri.contains("/pods") {
            return hyper::Response::builder().status(404).body(Full::default()).unwrap();
        } else if uri.contains("watch=true") {
            let script = self.watches.lock().unwrap().pop_front();
            match script {
                Some(lines) => lines,
                None => std::future::pending().await,
            }
        } else {
            let mut lists = self.lists.lock().unwrap();
            let list = if lists.len() > 1 { lists.pop_front() } else { lists.front().cloned() };
            serde_json::to_vec(&list.unwrap()).unwrap()
        };
        hyper::Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    }
}

fn client_for(url: &str) -> Client {
    Client::try_from(::kube::Config::new(url.parse().unwrap())).unwrap()
}

#[tokio::test]
async fn relists_after_410_gone_without_losing_or_repeating_events() {
    let a = || pod("a", "shop", "10", "10.1.0.5");
    let b = pod("b", "shop", "11", "10.1.0.6");
    let lists = vec![
        pod_list("11", vec![a(), b]),
        // After the relist: a unchanged since the watch saw it, b deleted
        // while we were not watching, c created.
        pod_list("15", vec![with_rv(restarted(a(), 1), "12"), pod("c", "web", "14", "10.1.0.7")]),
    ];
    let watches = vec![
        watch_lines(&[("MODIFIED", with_rv(restarted(a(), 1), "12")), gone()]),
        watch_lines(&[(
            "MODIFIED",
            with_rv(crash_looping(pod("c", "web", "14", "10.1.0.7")), "16"),
        )]),
    ];
    let (api, url) = FakeApi::start(lists, watches).await;
    let mut opts = options(WatchScope::Node("node-1".into()));
    opts.services = true;
    let watcher = PodWatcher::new(client_for(&url), opts);
    let (map, counters) = (watcher.pod_map(), watcher.counters());
    let (tx, mut rx) = mpsc::channel(64);
    let task = watcher.spawn(tx);

    let got = next_events(&mut rx, 8).await;
    let want = [
        "ADDED a",
        "ADDED b",
        "MODIFIED a",
        "RESTARTED a",
        "ADDED c",
        "DELETED b",
        "MODIFIED c",
        "CRASHED c",
    ];
    assert_eq!(got, want);
    assert_quiet(&mut rx).await;

    map_settles(&map, "10.1.0.5", Some("a")).await;
    map_settles(&map, "10.1.0.7", Some("c")).await;
    map_settles(&map, "10.1.0.6", None).await;
    assert_eq!(&*map.load().get(&"10.1.0.7".parse().unwrap()).unwrap().namespace, "web");
    map_settles(&map, "10.96.0.20", Some("api")).await;

    let requests = api.requests();
    let lists: Vec<&String> =
        requests.iter().filter(|r| r.contains("/pods") && !r.contains("watch=true")).collect();
    assert_eq!(lists.len(), 2, "{requests:?}");
    assert!(
        lists.iter().all(|r| r.contains("fieldSelector=spec.nodeName%3Dnode-1")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|r| r.contains("watch=true") && r.contains("resourceVersion=15")),
        "{requests:?}"
    );
    assert_eq!(counters.relists.load(Ordering::Relaxed), 2);
    assert_eq!(counters.pod_events.load(Ordering::Relaxed), 8);
    task.abort();
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let list = pod_list(
        "3",
        vec![
            pod("a", "ns", "1", "10.1.0.1"),
            pod("b", "ns", "2", "10.1.0.2"),
            pod("c", "ns", "3", "10.1.0.3"),
        ],
    );
    let (_api, url) = FakeApi::start(vec![list], Vec::new()).await;
    let mut opts = options(WatchScope::Cluster);
    opts.namespaces = vec!["ns".into()];
    let watcher = PodWatcher::new(client_for(&url), opts);
    let (map, counters) = (watcher.pod_map(), watcher.counters());
    let (tx, mut rx) = mpsc::channel(1);
    let task = watcher.spawn(tx);
    map_settles(&map, "10.1.0.3", Some("c")).await;
    assert_eq!(next_events(&mut rx, 1).await, ["ADDED a"]);
    assert_eq!(counters.pod_events_dropped.load(Ordering::Relaxed), 2);
    task.abort();
}

#[tokio::test]
async fn options_from_the_config() {
    let mut cfg = KubernetesConfig { enabled: Some(false), ..Default::default() };
    assert!(PodWatcher::from_config(&cfg, KubernetesScope::Node).await.unwrap().is_none());
    cfg.node_name = Some("node-7".into());
    cfg.namespaces = vec!["shop".into()];
    let o = WatchOptions::from_config(&cfg, KubernetesScope::Node).unwrap();
    assert_eq!(
        (o.scope, o.namespaces, o.services),
        (WatchScope::Node("node-7".into()), vec!["shop".to_string()], true)
    );
    cfg.scope = Some(KubernetesScope::Cluster);
    assert_eq!(
        WatchOptions::from_config(&cfg, KubernetesScope::Node).unwrap().scope,
        WatchScope::Cluster
    );
}

/// Against a real cluster; run with a kubeconfig for a cluster you may
/// read pods of:
/// `KUBECONFIG=~/.kube/config cargo test -p controlplane --lib kube -- --ignored`
#[tokio::test]
#[ignore = "needs a Kubernetes cluster (KUBECONFIG)"]
async fn real_cluster_lists_pods() {
    let client = client().await.expect("KUBECONFIG or in-cluster config");
    let watcher = PodWatcher::new(client, options(WatchScope::Cluster));
    let map = watcher.pod_map();
    let (tx, mut rx) = mpsc::channel(4096);
    let task = watcher.spawn(tx);
    let first = tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("no pod event in 30 s")
        .unwrap();
    assert_eq!(first.kind, PodEventKind::Added);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!map.load().is_empty(), "no pod IP mapped");
    task.abort();
}
