//! Issue 30, fault 8 (hub): a client that stalls its request cannot hold
//! a connection.
//!
//! What is sent, what bound holds, what counter moves:
//!
//! - `a_stalled_body_is_cut_off`: an authenticated `PUT` whose body stops
//!   after 10 of 1000 bytes, and one that trickles a byte every 200 ms, get
//!   408 and a closed connection once `hub.body_timeout_ms` (1 s here) has
//!   passed since the body began: a deadline for the whole body, not per
//!   read (`skua_hub_body_timeouts_total`). The agent is not saved.
//! - `a_stalled_header_is_cut_off`: a request line without the end of its
//!   header (slowloris) is closed after the hub's 10 s header timeout.

#[path = "support/hub.rs"]
mod hub_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hub_support::*;

fn open(addr: std::net::SocketAddr, head: &str) -> Stream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    Stream { s, seen: String::new() }
}

#[test]
fn a_stalled_body_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |c| c.body_timeout_ms = 1000);
    let head = format!(
        "PUT /api/agents/slow HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
        hub.addr
    );
    // Stops after 10 bytes.
    let t0 = Instant::now();
    let mut stalled = open(hub.addr, &head);
    stalled.s.write_all(br#"{"source":"#).unwrap();
    assert!(stalled.closed_within(Duration::from_secs(5)), "the stalled body held the connection");
    let took = t0.elapsed();
    assert!(stalled.seen.starts_with("HTTP/1.1 408"), "{}", stalled.seen);
    assert!(stalled.seen.contains("hub.body_timeout_ms"));
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "{took:?}");

    // Trickles: each byte arrives well within the timeout, the whole never.
    let t0 = Instant::now();
    let mut trickle = open(hub.addr, &head);
    let mut closed = false;
    for _ in 0..40 {
        if trickle.s.write_all(b" ").is_err() || trickle.closed_within(Duration::from_millis(200)) {
            closed = true;
            break;
        }
    }
    let took = t0.elapsed();
    assert!(closed && took < Duration::from_secs(3), "the trickle held the connection {took:?}");
    assert!(trickle.seen.starts_with("HTTP/1.1 408"), "{}", trickle.seen);

    let m = hub.get("/metrics", Some(ADMIN)).body;
    assert_eq!(metric(&m, "skua_hub_body_timeouts_total"), 2);
    assert_eq!(hub.get("/api/agents/slow", Some(READ)).status, 404, "nothing was saved");
    // A body that arrives in time is fine.
    let r = hub.send("PUT", "/api/agents/fast", Some(ADMIN), r#"{"source":"var x;"}"#);
    assert_eq!(r.status, 200);
}

#[test]
fn a_stalled_header_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let hub = TestHub::start(dir.path(), |_| {});
    let t0 = Instant::now();
    let mut s = open(hub.addr, "GET /api/agents HTTP/1.1\r\nHost: x\r\n");
    assert!(s.closed_within(Duration::from_secs(15)), "the header was waited for forever");
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(12), "{took:?}");
}
