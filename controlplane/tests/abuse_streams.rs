//! Issue 30, fault 1: live streams cannot lock workers out of the hub.
//!
//! What is sent, what bound holds, what counter moves:
//!
//! - `viewers_and_links_have_their_own_slots`: 64 viewer streams opened
//!   with read tokens (16 per token at most: the 17th of one token gets 429,
//!   `skua_hub_streams_refused_total{class="viewer",reason="token"}`; the
//!   65th overall 503, `reason="full"`), then 80 worker links with the
//!   worker token (every one gets its snapshot: links have their own pool,
//!   `hub.max_worker_links`), then a real `skua worker` process: it links,
//!   loads its agent from the snapshot and reports within seconds.
//! - `stalled_streams_are_evicted`: clients that never read while items
//!   (and, for links, agent changes) keep coming are closed after
//!   `hub.stream_stall_ms` and their slots come back
//!   (`skua_hub_streams_evicted_total{reason="stalled"}`); a client that
//!   reads beside them is not touched.
//! - `a_worker_linking_again_replaces_its_old_link`: the old link is
//!   closed (`reason="replaced"`).

#[path = "support/hub.rs"]
mod hub_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hub_support::*;
use serde_json::json;

const READS: [&str; 5] = [
    "read-token-for-tests-00001",
    "read-token-for-tests-00002",
    "read-token-for-tests-00003",
    "read-token-for-tests-00004",
    "read-token-for-tests-00005",
];

/// The tests of this file load the machine (hundreds of MB through
/// sockets, a worker process): one at a time, so each measures itself.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < within, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metrics(hub: &TestHub) -> String {
    hub.get("/metrics", Some(ADMIN)).body
}

#[test]
fn viewers_and_links_have_their_own_slots() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |c| {
        c.read_only_tokens = READS.iter().map(|t| t.to_string()).collect();
    });
    let agent = "console.log('agent up on', utils.nodeName());\nfunction onItemCaptured(d) {}\n";
    let r =
        hub.send("PUT", "/api/agents/probe", Some(ADMIN), &json!({ "source": agent }).to_string());
    assert_eq!(r.status, 200, "{}", r.body);

    // 16 streams of one read token: the 17th is that token's cap.
    let mut viewers = Vec::new();
    for _ in 0..16 {
        let mut s = Stream::open(hub.addr, "/api/items/stream", READS[0]);
        assert_eq!(s.status(), 200);
        viewers.push(s);
    }
    assert_eq!(Stream::open(hub.addr, "/api/items/stream", READS[0]).status(), 429);
    // Three more tokens fill the 64 viewer slots; a fifth token finds them full.
    for t in &READS[1..4] {
        for _ in 0..16 {
            let mut s = Stream::open(hub.addr, "/api/items/stream", t);
            assert_eq!(s.status(), 200);
            viewers.push(s);
        }
    }
    eventually("64 viewer streams", Duration::from_secs(5), || hub.handle().streams_open().0 == 64);
    assert_eq!(Stream::open(hub.addr, "/api/items/stream", READS[4]).status(), 503);
    let m = metrics(&hub);
    assert_eq!(metric(&m, r#"skua_hub_streams_refused_total{class="viewer",reason="token"}"#), 1);
    assert!(metric(&m, r#"skua_hub_streams_refused_total{class="viewer",reason="full"}"#) >= 1);

    // 80 linking workers: every one gets its snapshot.
    let mut links = Vec::new();
    for i in 0..80 {
        links.push(Stream::open(hub.addr, &format!("/api/link/events?worker=fake-{i}"), WORKER));
    }
    for l in &mut links {
        l.wait_for("event: snapshot", Duration::from_secs(10));
    }
    assert_eq!(hub.handle().streams_open(), (64, 80));
    let m = metrics(&hub);
    assert_eq!(metric(&m, r#"skua_hub_streams_refused_total{class="link",reason="full"}"#), 0);

    // A real worker still links, loads its agent and reports.
    let data = tempfile::tempdir().unwrap();
    let pcap = data.path().join("demo.pcap");
    std::fs::write(&pcap, dataplane::synth::demo_capture()).unwrap();
    let t0 = Instant::now();
    let worker = ChildGuard(
        Command::new(env!("CARGO_BIN_EXE_skua"))
            .args(["worker", "--pcap", pcap.to_str().unwrap(), "--loop", "0", "--pace", "recorded"])
            .args(["--cores", "1", "--quiet", "--set", "integrations.metrics_listen="])
            .args(["--set", &format!("link.hub=http://{}", hub.addr)])
            .args(["--set", &format!("link.token={WORKER}"), "--set", "link.name=real"])
            .args(["--set", "link.stats_every_ms=300"])
            .args(["--set", &format!("scripting.dataDir={}", data.path().display())])
            .env("SKUA_NODE_NAME", "real")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data.path().join("worker.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let online = || {
        let w = hub.get("/api/workers", Some(ADMIN)).json();
        w["workers"].as_array().unwrap().iter().any(|w| {
            w["name"] == "real" && w["online"] == true && w["version"].as_str() != Some("")
        })
    };
    let loaded =
        || hub.get("/api/console?limit=1000", Some(ADMIN)).body.contains("agent up on real");
    let linked = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        online() && loaded()
    });
    let took = t0.elapsed();
    let links_open = hub.handle().streams_open().1;
    drop(worker);
    assert!(
        linked,
        "the real worker did not link, load its agent and report within 30 s; workers: {}\nits stderr:\n{}",
        hub.get("/api/workers", Some(ADMIN)).body,
        std::fs::read_to_string(data.path().join("worker.log")).unwrap_or_default()
    );
    eprintln!("a real worker linked beside 64 viewer streams and 80 links in {took:?}");
    assert_eq!(links_open, 81, "its link took a link slot");
    drop((viewers, links));
}

#[test]
fn stalled_streams_are_evicted() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |c| {
        c.stream_stall_ms = 1000;
        c.sse_client_queue = 64;
        c.sse_client_queue_bytes = 1 << 20;
        c.items_max_bytes = 32 << 20;
    });
    let h = hub.handle();
    // Five viewers and two worker links that never read a byte.
    let mut stalled: Vec<Stream> =
        (0..5).map(|_| Stream::open(hub.addr, "/api/items/stream", READ)).collect();
    for i in 0..2 {
        stalled.push(Stream::open(hub.addr, &format!("/api/link/events?worker=mute-{i}"), WORKER));
    }
    // One viewer that reads everything, on its own thread.
    let mut healthy = Stream::open(hub.addr, "/api/items/stream", READ);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut got = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = std::io::Read::read(&mut healthy.s, &mut buf) {
                    if n == 0 {
                        return (got, true);
                    }
                    got += n;
                }
            }
            (got, false)
        })
    };
    eventually("8 streams", Duration::from_secs(5), || h.streams_open() == (6, 2));
    // Items for the viewers, big agents for the links: far more than the
    // sockets' buffers hold.
    let body = "x".repeat(200_000);
    let big_agent = json!({ "source": format!("var blob = '{}';\n", "y".repeat(900_000)) });
    let t0 = Instant::now();
    let mut i = 0;
    while t0.elapsed() < Duration::from_secs(15) && h.streams_open() != (1, 0) {
        for _ in 0..20 {
            h.publish_item(json!({"id": format!("w/{i}"), "body": body}));
            i += 1;
        }
        let r = hub.send(
            "PUT",
            &format!("/api/agents/big{}", i % 7),
            Some(ADMIN),
            &big_agent.to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        std::thread::sleep(Duration::from_millis(20));
    }
    let t1 = Instant::now();
    while h.streams_open() != (1, 0) {
        if t1.elapsed() > Duration::from_secs(10) {
            panic!(
                "the stalled streams were not evicted: {:?}\n{}",
                h.streams_open(),
                metrics(&hub)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for s in &mut stalled {
        assert!(s.closed_within(Duration::from_secs(10)), "a stalled stream was not closed");
    }
    let m = metrics(&hub);
    assert_eq!(metric(&m, r#"skua_hub_streams_evicted_total{class="viewer",reason="stalled"}"#), 5);
    assert_eq!(metric(&m, r#"skua_hub_streams_evicted_total{class="link",reason="stalled"}"#), 2);
    assert!(metric(&m, "skua_hub_sse_dropped_total") > 0, "their queues were full");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (got, closed) = reader.join().unwrap();
    assert!(!closed && got > 10 << 20, "the reading client kept its stream: {got} bytes");
    // Slots came back: new streams open.
    assert_eq!(Stream::open(hub.addr, "/api/items/stream", READ).status(), 200);
}

#[test]
fn a_worker_linking_again_replaces_its_old_link() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let mut old = Stream::open(hub.addr, "/api/link/events?worker=w1", WORKER);
    old.wait_for("event: snapshot", Duration::from_secs(5));
    let mut new = Stream::open(hub.addr, "/api/link/events?worker=w1", WORKER);
    new.wait_for("event: snapshot", Duration::from_secs(5));
    assert!(old.closed_within(Duration::from_secs(5)), "the old link was closed");
    eventually("one link", Duration::from_secs(5), || hub.handle().streams_open().1 == 1);
    let m = metrics(&hub);
    assert_eq!(metric(&m, r#"skua_hub_streams_evicted_total{class="link",reason="replaced"}"#), 1);
}
