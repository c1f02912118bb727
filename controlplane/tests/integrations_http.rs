//! The HTTP integrations against local servers that check what they
//! receive: vendor.webhook, vendor.slack, vendor.slackBot, vendor.influxdb
//! (v2); and the faults: refused, 500s, 429 + Retry-After, timeouts, an
//! unresolvable host, a dead endpoint beside a live one, a burst 10× over
//! the queue, the drain at shutdown.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use controlplane::executor::{Executor, ExecutorContext, ExecutorHandle};
use controlplane::integrations::config::IntegrationsConfig;
use controlplane::integrations::{Integration, IntegrationSnapshot};
use scripting::Effect;
use serde_json::{json, Value};
use support::*;

fn config() -> IntegrationsConfig {
    let mut c = IntegrationsConfig { metrics_listen: String::new(), ..Default::default() };
    c.retry.max_retries = 3;
    c.retry.initial_backoff_ms = 20;
    c.retry.max_backoff_ms = 100;
    c.webhook.timeout_ms = 2_000;
    c
}

fn start(cfg: IntegrationsConfig) -> (Executor, ExecutorHandle) {
    let ex = Executor::start(cfg, ExecutorContext::default(), None).unwrap();
    let h = ex.handle();
    (ex, h)
}

fn stats(h: &ExecutorHandle, i: Integration) -> IntegrationSnapshot {
    h.counters().into_iter().find(|s| s.integration == i).unwrap()
}

#[test]
fn webhook_sends_what_the_agent_gave_and_returns_the_response() {
    let srv =
        TestServer::start(|_, _| Answer::new(201, r#"{"created":true}"#).header("X-Reply", "yes"));
    let (_ex, h) = start(config());
    let mut headers = BTreeMap::new();
    headers.insert("X-Agent".to_string(), "a1".to_string());
    let body = r#"{"status":503,"path":"/api"}"#;
    let r = call(
        &h,
        "a",
        Effect::Webhook {
            method: "post".into(),
            url: srv.url("/hook?x=1"),
            body: body.into(),
            headers,
        },
    )
    .unwrap();
    assert_eq!(r["status"], 201);
    assert_eq!(r["headers"]["x-reply"], "yes");
    assert_eq!(r["body"], r#"{"created":true}"#);
    let got = srv.received();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].method.as_str(), got[0].uri.as_str()), ("POST", "/hook?x=1"));
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert_eq!(got[0].headers["x-agent"], "a1");
    assert!(got[0].headers["user-agent"].starts_with("skua/"));
    assert_eq!(got[0].body, body);
    let s = stats(&h, Integration::Webhook);
    assert_eq!((s.sent, s.failed, s.retried, s.rejected), (1, 0, 0, 0));
}

#[test]
fn webhook_follows_redirects_by_the_rules() {
    let other = TestServer::start(|_, _| Answer::new(200, "elsewhere"));
    let other_url = other.url("/final");
    let srv = TestServer::start(move |r, _| match r.uri.as_str() {
        "/302" => Answer::new(302, "").header("Location", "/landing"),
        "/307" => Answer::new(307, "").header("Location", "landing"),
        "/away" => Answer::new(301, "").header("Location", &other_url),
        _ => Answer::new(200, "landed"),
    });
    let (_ex, h) = start(config());
    let r = call(&h, "a", webhook("POST", &srv.url("/302"), "{}")).unwrap();
    assert_eq!((r["status"].as_u64(), r["body"].as_str()), (Some(200), Some("landed")));
    let r = call(&h, "a", webhook("POST", &srv.url("/307"), "payload")).unwrap();
    assert_eq!(r["status"], 200);
    let got = srv.received();
    assert_eq!(got.len(), 4);
    // 302 turns a POST into a GET without body; 307 keeps both.
    assert_eq!(
        (got[1].method.as_str(), got[1].uri.as_str(), got[1].body.as_str()),
        ("GET", "/landing", "")
    );
    assert_eq!((got[3].method.as_str(), got[3].body.as_str()), ("POST", "payload"));
    // Credentials are not carried to another origin.
    let mut headers = BTreeMap::new();
    headers.insert("Authorization".to_string(), "Bearer secret".to_string());
    headers.insert("X-Keep".to_string(), "1".to_string());
    let r = call(
        &h,
        "a",
        Effect::Webhook {
            method: "GET".into(),
            url: srv.url("/away"),
            body: String::new(),
            headers,
        },
    )
    .unwrap();
    assert_eq!(r["body"], "elsewhere");
    let o = other.received();
    assert_eq!(o.len(), 1);
    assert!(!o[0].headers.contains_key("authorization"));
    assert_eq!(o[0].headers["x-keep"], "1");
    // With redirects off, the 3xx itself is the answer.
    let mut cfg = config();
    cfg.webhook.max_redirects = 0;
    let (_ex2, h2) = start(cfg);
    assert_eq!(call(&h2, "a", webhook("GET", &srv.url("/302"), "")).unwrap()["status"], 302);
}

#[test]
fn webhook_4xx_is_an_answer_not_retried() {
    let srv = TestServer::start(|_, _| Answer::new(404, "no such hook"));
    let (_ex, h) = start(config());
    let r = call(&h, "a", webhook("POST", &srv.url("/x"), "{}")).unwrap();
    assert_eq!(r["status"], 404);
    assert_eq!(srv.count(), 1);
    assert_eq!(stats(&h, Integration::Webhook).retried, 0);
}

#[test]
fn fault_500s_are_retried_with_backoff_then_succeed_or_fail() {
    let srv = TestServer::start(|r, n| {
        if r.uri == "/flaky" && n < 2 {
            Answer::new(500, "boom")
        } else if r.uri == "/dead" {
            Answer::new(503, "down")
        } else {
            Answer::new(200, "ok")
        }
    });
    let (_ex, h) = start(config());
    let r = call(&h, "a", webhook("POST", &srv.url("/flaky"), "{}")).unwrap();
    assert_eq!(r["status"], 200);
    assert_eq!(srv.count(), 3);
    let s = stats(&h, Integration::Webhook);
    assert_eq!((s.sent, s.retried, s.failed), (1, 2, 0));

    let e = call(&h, "a", webhook("POST", &srv.url("/dead"), "{}")).unwrap_err();
    assert!(e.starts_with("vendor.webhook: HTTP 503: down (after 4 attempts)"), "{e}");
    let dead: Vec<_> = srv.received().into_iter().filter(|r| r.uri == "/dead").collect();
    assert_eq!(dead.len(), 4, "1 attempt + max_retries 3");
    // Back-off grows: each wait is at least half of 20, 40, 80 ms.
    for (i, w) in dead.windows(2).enumerate() {
        let gap = w[1].at - w[0].at;
        assert!(gap >= Duration::from_millis(10 << i), "wait {i} was {gap:?}");
    }
    let s = stats(&h, Integration::Webhook);
    assert_eq!((s.sent, s.retried, s.failed), (1, 5, 1));
}

#[test]
fn fault_connection_refused_is_retried_and_counted() {
    let port = closed_port();
    let (_ex, h) = start(config());
    let e =
        call(&h, "a", webhook("POST", &format!("http://127.0.0.1:{port}/x"), "{}")).unwrap_err();
    assert!(e.contains("connection failed") && e.contains("after 4 attempts"), "{e}");
    let s = stats(&h, Integration::Webhook);
    assert_eq!((s.failed, s.retried), (1, 3));
}

#[test]
fn fault_timeout_is_retried_and_counted() {
    let srv = TestServer::start(|_, _| Answer::new(200, "late").delay(Duration::from_secs(3)));
    let mut cfg = config();
    cfg.webhook.timeout_ms = 200;
    cfg.retry.max_retries = 1;
    let (_ex, h) = start(cfg);
    let t0 = Instant::now();
    let e = call(&h, "a", webhook("GET", &srv.url("/slow"), "")).unwrap_err();
    assert!(e.contains("timed out after 200ms") && e.contains("after 2 attempts"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(srv.count(), 2);
    assert_eq!(stats(&h, Integration::Webhook).retried, 1);
}

#[test]
fn fault_unresolvable_host_is_retried_and_counted() {
    // A label over 63 bytes: the resolver refuses the name itself, so the
    // test sends no DNS query off this machine.
    let host = format!("{}.skua-test.invalid", "a".repeat(70));
    let mut cfg = config();
    cfg.retry.max_retries = 2;
    let (_ex, h) = start(cfg);
    let e = call(&h, "a", webhook("GET", &format!("http://{host}/x"), "")).unwrap_err();
    assert!(e.contains("cannot resolve") && e.contains("after 3 attempts"), "{e}");
    let s = stats(&h, Integration::Webhook);
    assert_eq!((s.failed, s.retried), (1, 2));
}

#[test]
fn fault_429_retry_after_is_honoured() {
    let srv = TestServer::start(|_, n| {
        if n == 0 {
            Answer::new(429, "slow down").header("Retry-After", "1")
        } else {
            Answer::new(200, "ok")
        }
    });
    let (_ex, h) = start(config());
    let r = call(&h, "a", webhook("POST", &srv.url("/x"), "{}")).unwrap();
    assert_eq!(r["status"], 200);
    let got = srv.received();
    assert_eq!(got.len(), 2);
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_secs(1) && gap < Duration::from_secs(3), "{gap:?}");
    // A Retry-After past integrations.retry.max_retry_after_ms fails at once.
    let srv2 = TestServer::start(|_, _| Answer::new(429, "").header("Retry-After", "3600"));
    let e = call(&h, "a", webhook("POST", &srv2.url("/x"), "{}")).unwrap_err();
    assert!(e.contains("HTTP 429"), "{e}");
    assert_eq!(srv2.count(), 1);
}

#[test]
fn slack_incoming_webhook_payload_and_errors() {
    let srv = TestServer::start(|r, _| {
        if r.uri == "/bad" {
            Answer::new(400, "invalid_payload")
        } else {
            Answer::new(200, "ok")
        }
    });
    let (_ex, h) = start(config());
    let e = Effect::Slack {
        webhook_url: srv.url("/services/T/B/X"),
        pretext: "HTTP 5xx".into(),
        text: "GET /api → 503".into(),
        color: "danger".into(),
    };
    assert_eq!(call(&h, "a", e).unwrap(), json!({"ok": true}));
    let got = srv.received();
    assert_eq!(got[0].method, "POST");
    assert!(got[0].headers["content-type"].starts_with("application/json"));
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    let a = &body["attachments"][0];
    assert_eq!(
        (a["pretext"].as_str(), a["text"].as_str(), a["color"].as_str()),
        (Some("HTTP 5xx"), Some("GET /api → 503"), Some("danger"))
    );
    let e = Effect::Slack {
        webhook_url: srv.url("/bad"),
        pretext: "p".into(),
        text: "t".into(),
        color: String::new(),
    };
    let err = call(&h, "a", e).unwrap_err();
    assert_eq!(err, "vendor.slack: slack: invalid_payload (HTTP 400)");
    assert_eq!(srv.count(), 2, "a 400 is not retried");
}

#[test]
fn slack_bot_post_message_ok_false_and_429() {
    let srv = TestServer::start(|r, n| {
        let body: Value = serde_json::from_str(&r.body).unwrap_or_default();
        match body["channel"].as_str() {
            Some("C404") => Answer::new(200, r#"{"ok":false,"error":"channel_not_found"}"#),
            Some("CRL") if n == 1 => {
                Answer::new(429, r#"{"ok":false,"error":"ratelimited"}"#).header("Retry-After", "1")
            }
            Some("CTR") if n == 3 => Answer::new(200, r#"{"ok":false,"error":"ratelimited"}"#),
            Some(c) => Answer::new(
                200,
                &format!(r#"{{"ok":true,"channel":"{c}","ts":"1700000000.000100"}}"#),
            ),
            None => Answer::new(400, "no channel"),
        }
    });
    let mut cfg = config();
    cfg.slack_bot.api_url = srv.url("/api");
    let (_ex, h) = start(cfg);
    let bot = |channel: &str| Effect::SlackBot {
        token: "xoxb-test-token".into(),
        channel_id: channel.into(),
        pretext: "pre".into(),
        text: "text".into(),
        color: "#ff0000".into(),
        fields: Some(json!({"status": 503})),
        files: BTreeMap::new(),
    };
    let r = call(&h, "a", bot("C1")).unwrap();
    assert_eq!(r, json!({"ok": true, "channel": "C1", "ts": "1700000000.000100"}));
    let got = srv.received();
    assert_eq!(got[0].uri, "/api/chat.postMessage");
    assert_eq!(got[0].headers["authorization"], "Bearer xoxb-test-token");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(
        body["attachments"][0]["fields"][0],
        json!({"title": "status", "value": "503", "short": true})
    );
    assert_eq!(body["attachments"][0]["color"], "#ff0000");

    // HTTP 429 with Retry-After: waits, then succeeds.
    let t0 = Instant::now();
    let r = call(&h, "a", bot("CRL")).unwrap();
    assert_eq!(r["channel"], "CRL");
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    // ok:false with a transient error is retried; a permanent one is not.
    assert_eq!(call(&h, "a", bot("CTR")).unwrap()["ok"], true);
    let err = call(&h, "a", bot("C404")).unwrap_err();
    assert_eq!(err, "vendor.slackBot: slack: channel_not_found");
    let s = stats(&h, Integration::SlackBot);
    assert_eq!((s.sent, s.failed, s.retried), (3, 1, 2));
    assert_eq!(srv.count(), 6);
}

#[test]
fn influxdb_v2_write_api() {
    let srv = TestServer::start(|r, _| {
        if r.body.starts_with("bad") {
            Answer::new(400, r#"{"code":"invalid","message":"partial write: field type conflict"}"#)
        } else {
            Answer::new(204, "")
        }
    });
    let (_ex, h) = start(config());
    let mut tags = BTreeMap::new();
    tags.insert("service name".to_string(), "api,v2".to_string());
    let e = Effect::InfluxDb {
        url: srv.url(""),
        token: "tok-123".into(),
        org: "my org".into(),
        bucket: "skua".into(),
        measurement: "http status".into(),
        data: json!({"status": 503, "path": "/a \"b\""}),
        tags,
    };
    assert_eq!(call(&h, "a", e.clone()).unwrap(), json!({"ok": true, "status": 204}));
    let got = srv.received();
    assert_eq!(got[0].uri, "/api/v2/write?org=my+org&bucket=skua&precision=ns");
    assert_eq!(got[0].headers["authorization"], "Token tok-123");
    assert!(got[0].headers["content-type"].starts_with("text/plain"));
    let (head, ts) = got[0].body.rsplit_once(' ').unwrap();
    assert_eq!(head, r#"http\ status,service\ name=api\,v2 path="/a \"b\"",status=503"#);
    let ts: u128 = ts.parse().unwrap();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    assert!(now - ts < 60_000_000_000, "timestamp in ns, recent");
    // A refusal carries InfluxDB's message and is not retried.
    let mut e = e;
    if let Effect::InfluxDb { measurement, .. } = &mut e {
        *measurement = "bad".into();
    }
    let err = call(&h, "a", e).unwrap_err();
    assert_eq!(err, "vendor.influxdb: HTTP 400: partial write: field type conflict");
    assert_eq!(srv.count(), 2);
}

#[test]
fn a_dead_endpoint_does_not_slow_other_integrations() {
    let dead = TestServer::start(|_, _| Answer::new(200, "").delay(Duration::from_secs(5)));
    let live = TestServer::start(|_, _| Answer::new(200, "ok"));
    let mut cfg = config();
    cfg.webhook.queue = 8;
    cfg.webhook.concurrency = 2;
    cfg.webhook.timeout_ms = 3_000;
    cfg.retry.max_retries = 0;
    let (mut ex, h) = start(cfg);
    // Fill the webhook lane with requests to an endpoint that never answers in time.
    let stuck: Vec<_> =
        (0..30).map(|_| submit(&h, "a", webhook("POST", &dead.url("/"), "{}"))).collect();
    std::thread::sleep(Duration::from_millis(100));
    let rejected_fast = stuck.iter().filter(|rx| !rx.is_empty()).count();
    assert!(
        rejected_fast >= 30 - 8 - 2 - 1,
        "over-capacity requests are rejected at once ({rejected_fast})"
    );
    // Meanwhile Slack is delivered as fast as ever.
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t0 = Instant::now();
        let e = Effect::Slack {
            webhook_url: live.url("/s"),
            pretext: "p".into(),
            text: "t".into(),
            color: String::new(),
        };
        call(&h, "a", e).unwrap();
        worst = worst.max(t0.elapsed());
    }
    assert!(worst < Duration::from_millis(500), "slowest Slack delivery {worst:?}");
    let w = stats(&h, Integration::Webhook);
    assert!(w.rejected >= 19 && w.in_flight == 2, "{w:?}");
    println!("webhook lane stuck (in flight {}, queued {}, rejected {}), slowest of 20 Slack deliveries: {worst:?}", w.in_flight, w.queued, w.rejected);
    let report = ex.shutdown_within(Duration::from_millis(100));
    assert!(!report.complete);
    assert!(report.abandoned >= 2, "{report:?}");
    // Every request got an answer: abandoned ones reject, none is left hanging.
    let abandoned = stuck
        .iter()
        .filter_map(|rx| rx.recv_timeout(Duration::from_secs(5)).ok())
        .filter(|r| r.as_ref().is_err_and(|e| e.contains("abandoned")))
        .count();
    assert!(abandoned >= 2, "{abandoned}");
}

#[test]
fn burst_ten_times_over_capacity_is_dropped_and_counted_with_memory_bounded() {
    let srv = TestServer::start(|_, _| Answer::new(200, "ok").delay(Duration::from_millis(20)));
    let mut cfg = config();
    cfg.webhook.queue = 50;
    cfg.webhook.concurrency = 2;
    let (mut ex, h) = start(cfg);
    let rxs: Vec<_> = (0..500)
        .map(|i| submit(&h, "a", webhook("POST", &srv.url("/b"), &format!("{{\"i\":{i}}}"))))
        .collect();
    let results: Vec<_> =
        rxs.iter().map(|rx| rx.recv_timeout(Duration::from_secs(30)).unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let full =
        results.iter().filter(|r| r.as_ref().is_err_and(|e| e.contains("queue full"))).count();
    assert_eq!(ok + full, 500);
    assert!((50..=53).contains(&ok), "queue 50 + in flight ({ok})");
    let s = stats(&h, Integration::Webhook);
    assert_eq!((s.sent as usize, s.rejected as usize), (ok, full));
    assert_eq!(srv.count(), ok);

    // Memory: 200 000 requests (400× the queue) against the slow endpoint.
    // What is over capacity is answered at once and freed, so resident
    // memory grows by the queue's worth at most, not the burst's.
    let before = rss_kib();
    let t0 = Instant::now();
    let mut rejected = 0;
    for i in 0..200_000u32 {
        let rx = submit(
            &h,
            "a",
            webhook(
                "POST",
                &srv.url("/m"),
                &format!("{{\"payload\":\"{}\",\"i\":{i}}}", "x".repeat(200)),
            ),
        );
        if let Ok(Err(_)) = rx.try_recv() {
            rejected += 1;
        }
    }
    let took = t0.elapsed();
    let grew = rss_kib().saturating_sub(before);
    println!("burst of 200000: {rejected} rejected at once in {took:?}, RSS grew {grew} KiB");
    assert!(rejected >= 199_000, "{rejected}");
    assert!(grew < 64 * 1024, "RSS grew {grew} KiB");
    let report = ex.shutdown_within(Duration::from_secs(10));
    assert!(report.complete, "{report:?}");
}

#[test]
fn shutdown_drains_queued_deliveries() {
    let srv = TestServer::start(|_, _| Answer::new(200, "ok").delay(Duration::from_millis(10)));
    let mut cfg = config();
    cfg.webhook.queue = 200;
    cfg.webhook.concurrency = 4;
    let (mut ex, h) = start(cfg);
    let rxs: Vec<_> = (0..150)
        .map(|i| submit(&h, "a", webhook("POST", &srv.url("/d"), &i.to_string())))
        .collect();
    let report = ex.shutdown_within(Duration::from_secs(20));
    assert!(report.complete && report.abandoned == 0, "{report:?}");
    assert_eq!(srv.count(), 150, "every queued delivery reached the server");
    assert!(rxs.iter().all(|rx| rx.try_recv().is_ok_and(|r| r.is_ok())));
    let mut bodies: Vec<u32> = srv.received().iter().map(|r| r.body.parse().unwrap()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, (0..150).collect::<Vec<_>>());
    println!("drained 150 deliveries in {:?}", report.took);
    // After shutdown, new requests are rejected, not lost silently.
    let err = call(&h, "a", webhook("POST", &srv.url("/late"), "")).unwrap_err();
    assert!(err.contains("shutting down"), "{err}");
}

#[test]
fn webhook_over_https_verifies_the_certificate() {
    let port = start_tls_server(201, "secure");
    let url = format!("https://127.0.0.1:{port}/hook");
    // Trusted through integrations.tls_ca_file: the request goes through.
    let mut cfg = config();
    cfg.tls_ca_file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/test-ca.pem").into();
    let (_ex, h) = start(cfg);
    let r = call(&h, "a", webhook("POST", &url, "{}")).unwrap();
    assert_eq!((r["status"].as_u64(), r["body"].as_str()), (Some(201), Some("secure")));
    // Only the Mozilla roots: the certificate does not verify, and that is
    // not retried.
    let (_ex2, h2) = start(config());
    let e = call(&h2, "a", webhook("POST", &url, "{}")).unwrap_err();
    assert!(e.contains("TLS") && e.contains("invalid peer certificate"), "{e}");
    let s = stats(&h2, Integration::Webhook);
    assert_eq!((s.failed, s.retried), (1, 0));
    // A CA file that is not one is an error at start-up.
    let mut bad = config();
    bad.tls_ca_file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml").into();
    assert!(Executor::start(bad, ExecutorContext::default(), None).is_err());
}
