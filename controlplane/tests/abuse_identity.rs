//! Issue 30, fault 8 (hub): a worker cannot speak for another.
//!
//! A worker's name belongs to the token that first used it (a link or a
//! report), `hub` to the hub's own runtime and the `skua run` worker's
//! name to that worker; a `worker TOKEN NAME` line of `hub.tokens_file`
//! pins a token to one name.
//!
//! What is sent: reports, links and `hub.action`s under names held by
//! others, with two worker tokens and a pinned one. What holds: each gets
//! 403 and changes nothing (the owner's report stays); the owner goes on.
//! What moves: `skua_hub_workers_refused_total{reason="identity"}`.

#[path = "support/hub.rs"]
mod hub_support;

use std::time::Duration;

use controlplane::hub::{HubEvent, WorkerReport};
use hub_support::*;
use serde_json::json;

const OTHER: &str = "worker-token-for-tests-002";
const PINNED: &str = "pinned-token-for-tests-003";

fn report(name: &str, packets: u64) -> String {
    json!({"name": name, "version": "1", "stats": {"packets": packets}}).to_string()
}

fn packets_of(hub: &TestHub, name: &str) -> Option<u64> {
    let w = hub.get("/api/workers", Some(ADMIN)).json();
    w["workers"].as_array().unwrap().iter().find(|w| w["name"] == name)?["stats"]["packets"]
        .as_u64()
}

#[test]
fn names_belong_to_their_first_token() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("worker {PINNED} node-7\n")).unwrap();
    let store = dir.path().join("store");
    let hub = TestHub::start(&store, |c| {
        c.worker_tokens.push(OTHER.into());
        c.tokens_file = tokens.display().to_string();
    });
    let h = hub.handle();
    // The worker of this process (skua run) and the hub's runtime hold theirs.
    h.report_worker(WorkerReport { name: "local-node".into(), ..Default::default() }).unwrap();

    assert_eq!(hub.send("POST", "/api/link/stats", Some(WORKER), &report("w1", 10)).status, 204);
    let mut link = Stream::open(hub.addr, "/api/link/events?worker=w1", WORKER);
    link.wait_for("event: snapshot", Duration::from_secs(5));

    // Another token: not w1, not hub, not the local worker.
    for name in ["w1", "hub", "local-node"] {
        let r = hub.send("POST", "/api/link/stats", Some(OTHER), &report(name, 666));
        assert_eq!(r.status, 403, "{name}: {}", r.body);
        assert!(r.body.contains("belongs to another token"), "{}", r.body);
        let mut l = Stream::open(hub.addr, &format!("/api/link/events?worker={name}"), OTHER);
        assert_eq!(l.status(), 403, "a link as {name}");
    }
    assert_eq!(packets_of(&hub, "w1"), Some(10), "w1's report stands");
    assert!(!link.closed_within(Duration::from_millis(500)), "w1's link stands");
    // Nor may it speak as w1 through hub.action.
    let mut heard = h.subscribe();
    let r = hub.send("POST", "/api/hub/action", Some(OTHER), r#"{"action":"x","from":"w1"}"#);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(heard.try_recv().is_err());
    let r = hub.send("POST", "/api/hub/action", Some(OTHER), r#"{"action":"x","from":"w2"}"#);
    assert_eq!(r.status, 202, "its own name: {}", r.body);
    assert!(matches!(heard.try_recv(), Ok(HubEvent::HubAction { from, .. }) if from == "w2"));

    // A pinned token speaks as its name only.
    assert_eq!(hub.send("POST", "/api/link/stats", Some(PINNED), &report("node-8", 1)).status, 403);
    assert_eq!(hub.send("POST", "/api/link/stats", Some(PINNED), &report("node-7", 1)).status, 204);

    // The owner goes on.
    assert_eq!(hub.send("POST", "/api/link/stats", Some(WORKER), &report("w1", 11)).status, 204);
    assert_eq!(packets_of(&hub, "w1"), Some(11));
    let m = hub.get("/metrics", Some(ADMIN)).body;
    assert_eq!(metric(&m, r#"skua_hub_workers_refused_total{reason="identity"}"#), 8);
}
